"""Runs a Gunicorn config file for rustcorn and reports the settings it defines.

rustcorn runs this with the Python of the user's virtualenv (the one its workers embed):

    python -c "$(cat config_file.py)" LOCATION ARGV... < "name kind" lines

LOCATION is PATH, file:PATH or python:MODULE, as in Gunicorn. The file is executed the
way Gunicorn executes it (as module `__config__`, or imported by name), then every
module-level name that is a setting is checked against the setting's kind and reported,
with the line where it is assigned (found with `ast`). Other names are ignored, as
Gunicorn ignores them.

Records go to the original stdout, NUL-separated fields, one record after another:

    file   PATH
    warn   MESSAGE
    set    NAME LINE COUNT VALUE...     (COUNT string values)
    unset  NAME LINE                    (the value is None: the default stays)
    hook   NAME LINE DESCRIPTION
    bad    NAME LINE MESSAGE            (wrong type)
    fatal  PATH LINE MESSAGE TRACEBACK  (syntax error, exception)

Whatever the config file prints goes to stderr, so it cannot corrupt the records.
"""

import ast
import importlib
import json
import importlib.machinery
import importlib.util
import os
import sys
import traceback

_records = []


def emit(*fields):
    _records.append(fields)


def flush(out):
    data = b"".join(
        b"".join(str(f).encode("utf-8", "surrogateescape") + b"\0" for f in r)
        for r in _records
    )
    out.write(data)
    out.flush()


def execute(location):
    """Runs the file or imports the module; returns (namespace, filename)."""
    if location.startswith("python:"):
        module = importlib.import_module(location[len("python:"):])
        return vars(module), getattr(module, "__file__", None) or location
    filename = location[len("file:"):] if location.startswith("file:") else location
    if not os.path.exists(filename):
        raise FileNotFoundError("%r doesn't exist" % filename)
    name = "__config__"
    if os.path.splitext(filename)[1] in (".py", ".pyc"):
        spec = importlib.util.spec_from_file_location(name, filename)
    else:
        emit("warn", "configuration file should have a valid Python extension.")
        loader = importlib.machinery.SourceFileLoader(name, filename)
        spec = importlib.util.spec_from_file_location(name, filename, loader=loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return vars(module), filename


def assignment_lines(filename):
    """Name -> line of its last module-level binding (not inside functions/classes)."""
    try:
        with open(filename, "rb") as f:
            tree = ast.parse(f.read(), filename)
    except (OSError, SyntaxError, ValueError):
        return {}
    lines = {}

    def visit(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                lines[child.name] = child.lineno
                continue
            if isinstance(child, ast.Lambda):
                continue
            if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
                lines[child.id] = child.lineno
            elif isinstance(child, ast.alias):
                bound = child.asname or child.name.split(".")[0]
                lines[bound] = getattr(child, "lineno", None) or node.lineno
            visit(child)

    visit(tree)
    return lines


def describe(value):
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return "%s %s" % (type(value).__name__, text)


def strings(value, what):
    if not isinstance(value, (list, tuple)):
        raise TypeError("expected %s, got %s" % (what, describe(value)))
    for item in value:
        if not isinstance(item, str):
            raise TypeError("expected %s, got an item %s" % (what, describe(item)))
    return [item.strip() for item in value]


def convert(kind, value):
    """The setting's value as strings for its flag; None leaves the default."""
    if value is None and kind not in ("Flag", "NegFlag", "Hook"):
        return None
    if kind == "Int":
        if isinstance(value, int):
            return [str(int(value))]
        if isinstance(value, str):
            return [value.strip()]
        raise TypeError("expected an integer, got %s" % describe(value))
    if kind in ("Str", "AppModule"):
        if isinstance(value, str):
            return [value.strip()]
        raise TypeError("expected a string, got %s" % describe(value))
    if kind == "StrOrBool":
        if isinstance(value, bool):
            return ["true" if value else "false"]
        if isinstance(value, str):
            return [value.strip()]
        raise TypeError("expected a string or True/False, got %s" % describe(value))
    if kind == "Scalar":
        if isinstance(value, (int, str)) and not isinstance(value, bool):
            return [str(value).strip()]
        raise TypeError("expected a string or an integer, got %s" % describe(value))
    if kind in ("Flag", "NegFlag"):
        if isinstance(value, bool):
            return ["true" if value else "false"]
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return [value.strip().lower()]
        raise TypeError("expected True or False, got %s" % describe(value))
    if kind == "List":
        if isinstance(value, str):
            return [value.strip()]
        return strings(value, "a string or a list of strings")
    if kind == "CommaList":
        if isinstance(value, str):
            return [value.strip()]
        return [",".join(strings(value, "a string or a list of strings"))]
    if kind == "JsonDict":
        if not isinstance(value, dict):
            raise TypeError("expected a dictionary, got %s" % describe(value))
        try:
            return [json.dumps(value), repr(value)]
        except (TypeError, ValueError) as e:
            raise TypeError("expected a dictionary of JSON values (%s)" % e)
    if kind == "Dict":
        if not isinstance(value, dict):
            raise TypeError("expected a dictionary, got %s" % describe(value))
        out = []
        for k, v in value.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError("expected a dictionary of strings, got %s" % describe(value))
            out += [k, v]
        return out
    raise TypeError("unknown kind %s" % kind)


def hook_description(value):
    if isinstance(value, str) and "." in value:
        return value
    if callable(value):
        return getattr(value, "__qualname__", None) or repr(value)
    raise TypeError("expected a callable, got %s" % describe(value))


def report(namespace, filename, kinds):
    lines = assignment_lines(filename) if filename and os.path.exists(filename) else {}
    for name, value in namespace.items():
        kind = kinds.get(name)
        if kind is None:
            continue
        line = lines.get(name, 0)
        try:
            if kind == "Hook":
                emit("hook", name, line, hook_description(value))
                continue
            values = convert(kind, value)
        except TypeError as e:
            emit("bad", name, line, str(e))
            continue
        if values is None:
            emit("unset", name, line)
        elif any("\0" in v for v in values):
            emit("bad", name, line, "contains a NUL byte")
        else:
            emit("set", name, line, len(values), *values)


def failure_line(exc, filename):
    if isinstance(exc, SyntaxError) and exc.filename == filename:
        return exc.lineno or 0
    line = 0
    for frame in traceback.extract_tb(exc.__traceback__):
        if filename and os.path.abspath(frame.filename) == os.path.abspath(filename):
            line = frame.lineno
    return line


def user_traceback(exc):
    """The traceback without this script's and importlib's frames."""
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__)
        if f.filename != "<string>" and not f.filename.startswith("<frozen ")
    ]
    text = "".join(traceback.format_exception_only(type(exc), exc))
    if frames and not isinstance(exc, SyntaxError):
        text = "Traceback (most recent call last):\n%s%s" % (
            "".join(traceback.format_list(frames)), text)
    return text


def main():
    location = sys.argv[1]
    # The config file sees the server's command line, as under Gunicorn.
    sys.argv = sys.argv[2:] or ["rustcorn"]
    kinds = dict(line.split() for line in sys.stdin.read().splitlines() if line.strip())
    # Anything the config file writes to fd 1 goes to stderr; records use a copy of it.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    # Gunicorn puts the working directory first on sys.path before loading the file.
    sys.path.insert(0, os.getcwd())
    if location.startswith("python:"):
        filename = None
    else:
        filename = location[len("file:"):] if location.startswith("file:") else location
    try:
        namespace, filename = execute(location)
        emit("file", filename)
        report(namespace, filename, kinds)
    except BaseException as exc:  # SystemExit in a config file is a failure too
        where = getattr(exc, "filename", None) if isinstance(exc, SyntaxError) else None
        where = where or filename or location
        if isinstance(exc, SyntaxError):
            message = "%s: %s" % (type(exc).__name__, exc.msg)
        else:
            message = traceback.format_exception_only(type(exc), exc)[-1].strip()
        emit("fatal", where, failure_line(exc, where), message, user_traceback(exc))
    flush(out)


main()
