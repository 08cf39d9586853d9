# Applies a logging.config.dictConfig configuration the way Gunicorn's glogging does:
# the user's dict is laid over Gunicorn's CONFIG_DEFAULTS (a shallow update), so the
# "gunicorn.error" and "gunicorn.access" loggers apps reach for keep working.
import json
import logging.config

CONFIG_DEFAULTS = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "INFO", "handlers": ["console"]},
    "loggers": {
        "gunicorn.error": {
            "level": "INFO",
            "handlers": ["error_console"],
            "propagate": True,
            "qualname": "gunicorn.error",
        },
        "gunicorn.access": {
            "level": "INFO",
            "handlers": ["console"],
            "propagate": True,
            "qualname": "gunicorn.access",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "generic",
            "stream": "ext://sys.stdout",
        },
        "error_console": {
            "class": "logging.StreamHandler",
            "formatter": "generic",
            "stream": "ext://sys.stderr",
        },
    },
    "formatters": {
        "generic": {
            "format": "%(asctime)s [%(process)d] [%(levelname)s] %(message)s",
            "datefmt": "[%Y-%m-%d %H:%M:%S %z]",
            "class": "logging.Formatter",
        }
    },
}


def apply(text):
    config = CONFIG_DEFAULTS.copy()
    config.update(json.loads(text))
    logging.config.dictConfig(config)


def reopen():
    # Gunicorn's reopen_files for the handlers dictConfig made.
    root = logging.root
    for log in [root] + [logging.getLogger(n) for n in list(root.manager.loggerDict)]:
        for handler in getattr(log, "handlers", []):
            if isinstance(handler, logging.FileHandler):
                handler.acquire()
                try:
                    if handler.stream:
                        handler.close()
                        handler.stream = handler._open()
                finally:
                    handler.release()
