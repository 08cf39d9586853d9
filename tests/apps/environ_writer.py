"""Writes into its environ as middleware does, or keeps it, and answers with the
environ it was given: for the guard of the environ's reuse between requests
(tests/integration/wsgi_env.rs, src/wsgi/environ/reuse.rs).

What the app does after reading its environ, by path:
  /add      environ['x.app'] = 1
  /replace  environ['SCRIPT_NAME'] = '/mounted'
  /delete   del environ['HTTP_USER_AGENT']
  /clear    environ.clear()
  /keep     keeps the environ (in a module global)
  /poke     before reading: environ['x.poked'] = 1 into the environ /keep kept
  /check    answers with the kept environ instead of its own
  anything else: reads only
Body: {"items": [[key, value], ...] in iteration order, values that are not str by
their type's name; "is_kept": whether this environ is the one /keep kept}.
"""
import json

KEPT = []


def _items(environ):
    return [[k, v if isinstance(v, str) else type(v).__name__] for k, v in environ.items()]


def application(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/poke' and KEPT:
        KEPT[-1]['x.poked'] = 1
    shown = KEPT[-1] if path == '/check' and KEPT else environ
    doc = {'items': _items(shown), 'is_kept': any(e is environ for e in KEPT)}
    if path == '/add':
        environ['x.app'] = 1
    elif path == '/replace':
        environ['SCRIPT_NAME'] = '/mounted'
    elif path == '/delete':
        del environ['HTTP_USER_AGENT']
    elif path == '/clear':
        environ.clear()
    elif path == '/keep':
        KEPT.append(environ)
    out = json.dumps(doc, ensure_ascii=True).encode('ascii')
    start_response('200 OK', [
        ('Content-Type', 'application/json'),
        ('Content-Length', str(len(out))),
    ])
    return [out]
