# The app's Python logging, set up as Gunicorn's glogging sets it up in its workers:
# the "gunicorn.error" logger writes Gunicorn's error-log lines to the error log (apps
# commonly hand its handlers to their own loggers), and a logging.config.dictConfig
# configuration is laid over Gunicorn's CONFIG_DEFAULTS (a shallow update).
import logging

ERROR_FMT = r"%(asctime)s [%(process)d] [%(levelname)s] %(message)s"
DATEFMT = r"[%Y-%m-%d %H:%M:%S %z]"
LEVELS = {
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
}

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


def error_logger(stream, level):
    # `stream` writes into the server's own error log (stderr or the file it holds
    # open, reopened on USR1): a worker that runs as --user never opens the path,
    # which a rotation may have renamed away in a directory it cannot write.
    log = logging.getLogger("gunicorn.error")
    log.propagate = False
    log.setLevel(LEVELS[level])
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(ERROR_FMT, DATEFMT))
    handler._gunicorn = True
    log.addHandler(handler)


def apply(text):
    import json
    import logging.config

    config = CONFIG_DEFAULTS.copy()
    config.update(json.loads(text))
    logging.config.dictConfig(config)


def apply_ini(path):
    # Gunicorn's --log-config: fileConfig with the file's own name and directory as
    # interpolation defaults (%(__file__)s, %(here)s), existing loggers kept.
    import logging.config
    import os

    defaults = {"__file__": path, "here": os.path.dirname(path)}
    logging.config.fileConfig(path, defaults=defaults, disable_existing_loggers=False)


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
