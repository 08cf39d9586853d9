"""Answers every request with its WSGI environ as JSON.

Body: {"pid": <worker pid>, "body": <request body, latin-1>, "environ": {...},
"os_environ": {every os.environ entry whose name starts with RUSTCORN_TEST_}}.
Values JSON cannot hold (wsgi.input, wsgi.errors, file_wrapper…) are given as
their repr(); tuples become lists. ASCII-only output so any client can parse it.
"""
import json
import os


def _jsonable(value):
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return repr(value)


def application(environ, start_response):
    body = environ['wsgi.input'].read()
    doc = {
        'pid': os.getpid(),
        'body': body.decode('latin-1'),
        'environ': {k: _jsonable(v) for k, v in environ.items()},
        'os_environ': {k: v for k, v in os.environ.items()
                       if k.startswith('RUSTCORN_TEST_')},
    }
    out = json.dumps(doc, sort_keys=True, ensure_ascii=True).encode('ascii')
    start_response('200 OK', [
        ('Content-Type', 'application/json'),
        ('Content-Length', str(len(out))),
    ])
    return [out]
