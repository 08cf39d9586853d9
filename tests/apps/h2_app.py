"""Endpoints for the HTTP/2 tests (tests/integration/http2.rs), one per path.

Bodies of N bytes follow one pattern, byte i == i % 251, so clients check every byte.

    /environ        JSON: SERVER_PROTOCOL, HTTP_HOST, wsgi.url_scheme, wsgi.multithread,
                    the HTTP_* keys, and the request body's length
    /echo           the request body, with Content-Length
    /slow?s=S       logs `h2 slow start`, sleeps S seconds (default 0.2), then answers
                    the worker's pid
    /big?n=N        N bytes from a generator, no Content-Length
    /file?n=N       N bytes from a temporary file through wsgi.file_wrapper
    /pid            the worker's pid
"""
import json
import os
import tempfile
import time
from urllib.parse import parse_qs

PATTERN = bytes(i % 251 for i in range(251 * 256))


def _arg(environ, name, default):
    return parse_qs(environ.get('QUERY_STRING', '')).get(name, [default])[0]


def _pattern(n):
    offset = 0
    while offset < n:
        size = min(len(PATTERN) - 251, n - offset)
        start = offset % 251
        yield PATTERN[start:start + size]
        offset += size


def application(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/echo':
        body = environ['wsgi.input'].read()
        start_response('200 OK', [('Content-Type', 'application/octet-stream'),
                                  ('Content-Length', str(len(body)))])
        return [body]
    if path == '/slow':
        environ['wsgi.errors'].write('h2 slow start\n')
        environ['wsgi.errors'].flush()
        time.sleep(float(_arg(environ, 's', '0.2')))
        return _text(start_response, str(os.getpid()))
    if path == '/big':
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        return _pattern(int(_arg(environ, 'n', '0')))
    if path == '/file':
        f = tempfile.TemporaryFile()
        for part in _pattern(int(_arg(environ, 'n', '0'))):
            f.write(part)
        f.seek(0)
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        return environ['wsgi.file_wrapper'](f)
    if path == '/pid':
        return _text(start_response, str(os.getpid()))
    body = environ['wsgi.input'].read()
    doc = {key: environ.get(key) for key in (
        'SERVER_PROTOCOL', 'HTTP_HOST', 'wsgi.url_scheme', 'wsgi.multithread',
        'REQUEST_METHOD', 'PATH_INFO', 'QUERY_STRING')}
    doc['http'] = sorted(k for k in environ if k.startswith('HTTP_'))
    doc['body_length'] = len(body)
    return _text(start_response, json.dumps(doc), 'application/json')


def _text(start_response, text, ctype='text/plain'):
    out = text.encode()
    start_response('200 OK', [('Content-Type', ctype), ('Content-Length', str(len(out)))])
    return [out]
