# The app's Python logging, set up as Gunicorn's glogging sets it up in its workers:
# the "gunicorn.error" logger writes Gunicorn's error-log lines to the error log (apps
# commonly hand its handlers to their own loggers), and a logging.config.dictConfig
# configuration is laid over Gunicorn's CONFIG_DEFAULTS (a shallow update).
#
# An app that never imports logging does not get it imported for it (with what it
# pulls in, about 1.5 MB per worker): the gunicorn.error logger is set up the moment
# the app, or anything it uses, first imports logging (a meta path finder wraps that
# one import), so it is there whenever someone can look at it.
import sys

ERROR_FMT = r"%(asctime)s [%(process)d] [%(levelname)s] %(message)s"
DATEFMT = r"[%Y-%m-%d %H:%M:%S %z]"

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
    """Sets up gunicorn.error now if logging is loaded, else when it first is."""
    if "logging" in sys.modules:
        _set_up_error_logger(stream, level)
    else:
        sys.meta_path.insert(0, _AfterImport("logging", lambda: _set_up_error_logger(stream, level)))


class _AfterImport:
    """A meta path finder for one module: it finds the module as the other finders
    do, and runs `then()` once the module has executed."""

    def __init__(self, name, then):
        self.name = name
        self.then = then

    def find_spec(self, name, path=None, target=None):
        if name != self.name:
            return None
        sys.meta_path.remove(self)
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(name, path, target) if find else None
            if spec is not None:
                spec.loader = _ThenLoader(spec.loader, self.then)
                return spec
        return None


class _ThenLoader:
    def __init__(self, loader, then):
        self.loader = loader
        self.then = then

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        module.__loader__ = module.__spec__.loader = self.loader
        self.then()


def _set_up_error_logger(stream, level):
    # `stream` writes into the server's own error log (stderr or the file it holds
    # open, reopened on USR1): a worker that runs as --user never opens the path,
    # which a rotation may have renamed away in a directory it cannot write.
    import logging

    log = logging.getLogger("gunicorn.error")
    log.propagate = False
    log.setLevel(getattr(logging, level.upper()))
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
    if "logging" not in sys.modules:
        return
    import logging

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
