"""App loading for rustcorn, with Gunicorn's APP_MODULE grammar, or from PasteDeploy.

`module`, `module:name`, `pkg.module:obj.attr`, `module:factory()` and
`module:factory('arg', 2)` (literal arguments only). The default name is `application`.
"""

import importlib
import os
import sys

# `ast` is imported only for a factory call: a worker serving `module:app` does not
# carry it (about 1.5 MB of memory per process).


class AppImportError(Exception):
    """The app could not be found; the message says what and where."""


def setup_path(pythonpath):
    """The working directory and --pythonpath entries go first on sys.path, as in Gunicorn."""
    for entry in reversed([os.getcwd()] + list(pythonpath)):
        entry = os.path.abspath(entry)
        if entry in sys.path:
            sys.path.remove(entry)
        sys.path.insert(0, entry)


def _resolve_dotted(obj, spec, module):
    """`name` or `obj.attr.attr`: getattr along the dots."""
    parts = spec.split(".")
    for depth, part in enumerate(parts):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            shown = ".".join(parts[: depth + 1])
            raise AppImportError("Failed to find attribute %r in %r." % (shown, module)) from None
    return obj


def _is_dotted_name(spec):
    return all(part.isidentifier() for part in spec.split("."))


def load(uri, pythonpath=()):
    setup_path(pythonpath)
    module, sep, spec = uri.partition(":")
    if not sep:
        spec = "application"
    if not module or not spec:
        raise AppImportError("Invalid APP_MODULE %r: expected 'module' or 'module:name'." % uri)
    spec = spec.strip()
    args = kwargs = None
    # The dotted name to look up: the spec, or the function a factory call names; None
    # for anything else, refused once the module imported (import errors come first).
    target = spec
    if not _is_dotted_name(spec):
        import ast

        try:
            expr = ast.parse(spec, mode="eval").body
        except SyntaxError:
            raise AppImportError("Failed to parse %r as an attribute name or function call." % spec) from None
        target = None
        if isinstance(expr, ast.Call):
            try:
                args = [ast.literal_eval(a) for a in expr.args]
                kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in expr.keywords if kw.arg}
            except ValueError:
                raise AppImportError("Failed to parse arguments as literal values: %r." % spec) from None
            func = ast.unparse(expr.func)
            target = func if _is_dotted_name(func) else None
    try:
        mod = importlib.import_module(module)
    except ImportError:
        if module.endswith(".py") and os.path.exists(module):
            raise ImportError(
                "Failed to find application, did you mean '%s:%s'?" % (module.rsplit(".", 1)[0], spec)
            ) from None
        raise
    if target is None:
        raise AppImportError("Failed to parse %r as an attribute name or function call." % spec)
    app = _resolve_dotted(mod, target, module)
    if args is not None:
        if not callable(app):
            raise AppImportError("%r in %r is not callable, so it cannot be a factory." % (spec, module))
        app = app(*args, **kwargs)
    if app is None:
        raise AppImportError("Failed to find application object: %r." % spec)
    if not callable(app):
        raise AppImportError("Application object %r in %r must be callable." % (spec, module))
    return app


def load_paste(config_uri, global_conf, pythonpath=()):
    """`--paste FILE[#NAME]`: the app PasteDeploy builds from the file, as Gunicorn loads it."""
    setup_path(pythonpath)
    try:
        from paste.deploy import loadapp
    except ImportError as e:
        raise AppImportError(
            "--paste needs PasteDeploy in the app's environment (pip install PasteDeploy): %s" % e
        ) from None
    app = loadapp(config_uri, relative_to=os.getcwd(), global_conf=dict(global_conf) or None)
    if not callable(app):
        raise AppImportError("The PasteDeploy app from %r is not callable." % config_uri)
    return app


def make_fail_app(text):
    """An app answering 500 with `text`: what --reload serves while the code has a SyntaxError."""
    body = text.encode("utf-8", "replace")

    def app(environ, start_response):
        start_response("500 Internal Server Error", [
            ("Content-Type", "text/plain"),
            ("Content-Length", str(len(body))),
        ])
        return [body]

    return app
