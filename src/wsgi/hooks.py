"""Gunicorn's server hooks for rustcorn: loads them from the config file and builds
the objects they receive (`server`, `worker`, `req`, `resp`) with the attributes real
hooks read. rustcorn runs this module in the embedded interpreter (the master's when a
master-side hook is defined, otherwise each worker's) and calls `call(name, *args)`.

`_emit(level, message)` is injected by rustcorn: it writes one Gunicorn-format line
into the error log.
"""

import ast
import importlib
import importlib.machinery
import importlib.util
import inspect
import os
import sys
import traceback

HOOKS = {}
_emit = None  # set by rustcorn


class Log:
    """`server.log` / `worker.log`: Gunicorn's logger methods, into the error log."""

    def _log(self, level, msg, args, exc_info=False):
        text = str(msg) % args if args else str(msg)
        if exc_info:
            tb = traceback.format_exc()
            if tb and tb != "NoneType: None\n":
                text = text + "\n" + tb.rstrip()
        _emit(level, text)

    def debug(self, msg, *args, **kw):
        self._log("debug", msg, args, kw.get("exc_info", False))

    def info(self, msg, *args, **kw):
        self._log("info", msg, args, kw.get("exc_info", False))

    def warning(self, msg, *args, **kw):
        self._log("warning", msg, args, kw.get("exc_info", False))

    warn = warning

    def error(self, msg, *args, **kw):
        self._log("error", msg, args, kw.get("exc_info", False))

    def critical(self, msg, *args, **kw):
        self._log("critical", msg, args, kw.get("exc_info", False))

    def exception(self, msg, *args, **kw):
        self._log("error", msg, args, True)

    def log(self, level, msg, *args, **kw):
        names = {10: "debug", 20: "info", 30: "warning", 40: "error", 50: "critical"}
        self._log(names.get(level, "info"), msg, args, kw.get("exc_info", False))

    def reopen_files(self):
        pass

    def close_on_exec(self):
        pass


class Config:
    """`server.cfg`: every setting by its Gunicorn name, as Python values."""

    def __init__(self):
        self.settings = {}

    def update(self, triples):
        for name, kind, text in triples:
            self.settings[name] = _value(kind, text)

    def __getattr__(self, name):
        settings = self.__dict__.get("settings", {})
        if name in settings:
            return settings[name]
        raise AttributeError("No configuration setting for: %s" % name)

    @property
    def address(self):
        return self.settings.get("bind")

    @property
    def worker_class_str(self):
        return self.settings.get("worker_class")


def _value(kind, text):
    if kind in ("Str", "AppModule", "Scalar") or kind == "Hook":
        return None if text == "None" else text
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


LOG = Log()
CFG = Config()


class Server:
    """The arbiter as hooks see it (Gunicorn's `Arbiter`)."""

    def __init__(self):
        self.pid = os.getpid()
        self.cfg = CFG
        self.log = LOG
        self.num_workers = CFG.settings.get("workers", 1)
        self.WORKERS = {}
        self.proc_name = CFG.settings.get("proc_name") or "rustcorn"
        self.master_name = "Master"
        self.timeout = CFG.settings.get("timeout")
        self.app = None

    @property
    def LISTENERS(self):
        return list(self.cfg.settings.get("bind") or [])


class Worker:
    """A worker as hooks see it (Gunicorn's `Worker`)."""

    def __init__(self, age, ppid):
        self.age = age
        self.pid = None
        self.ppid = ppid
        self.cfg = CFG
        self.log = LOG
        self.alive = True
        self.booted = False
        self.nr = 0
        self.timeout = CFG.settings.get("timeout")

    def __repr__(self):
        return "<Worker %s>" % self.pid


class Request:
    """What pre_request/post_request read of the request (Gunicorn's `Request`)."""

    def __init__(self, method, uri, path, query, fragment, version, headers, peer):
        self.method = method
        self.uri = uri
        self.path = path
        self.query = query
        self.fragment = fragment
        self.version = version
        self.headers = headers
        self.peer_addr = peer
        self.scheme = "http"
        self.trailers = []

    def __repr__(self):
        return "<Request %s %s>" % (self.method, self.uri)


class Response:
    """What post_request reads of the response (Gunicorn's `Response`)."""

    def __init__(self, status, headers, sent, headers_sent):
        self.status = status
        try:
            self.status_code = int(status.split()[0]) if status else None
        except ValueError:
            self.status_code = None
        self.headers = headers
        self.sent = sent
        self.headers_sent = headers_sent


SERVER = None
# The Worker object of the worker being forked, set by the master before fork(2).
PENDING_WORKER = None


def _arity(fn):
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


def _execute(location):
    if location.startswith("python:"):
        return vars(importlib.import_module(location[len("python:"):]))
    filename = location[len("file:"):] if location.startswith("file:") else location
    name = "__config__"
    loader = importlib.machinery.SourceFileLoader(name, filename)
    spec = importlib.util.spec_from_file_location(name, filename, loader=loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return vars(module)


def _resolve(value):
    if isinstance(value, str):
        mod_name, obj_name = value.rsplit(".", 1)
        return getattr(__import__(mod_name, fromlist=[obj_name]), obj_name)
    return value


def _post_request(fn):
    arity = _arity(fn)
    if arity == 3:
        return lambda worker, req, env, _r: fn(worker, req, env)
    if arity == 2:
        return lambda worker, req, _e, _r: fn(worker, req)
    return fn


def load(location, cwd, names, triples):
    """Runs the config file; keeps the hooks in `names` it defines. Returns their names.

    `cwd` is the directory the server started in: Gunicorn puts it first on sys.path
    before reading the file, and `--chdir` may have left it since."""
    CFG.update(triples)
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    namespace = _execute(location)
    HOOKS.clear()
    for name in names:
        value = namespace.get(name)
        if value is None:
            continue
        fn = _resolve(value)
        HOOKS[name] = _post_request(fn) if name == "post_request" else fn
    global SERVER
    if SERVER is None:
        SERVER = Server()
    return sorted(HOOKS)


def call(name, *args):
    """Calls a hook; returns None, or the exception's traceback text."""
    fn = HOOKS.get(name)
    if fn is None:
        return None
    try:
        fn(*args)
    except BaseException as e:
        # The traceback from the hook's own frame on, without this function's.
        tb = e.__traceback__.tb_next if e.__traceback__ else None
        return "".join(traceback.format_exception(type(e), e, tb)).rstrip()
    return None
