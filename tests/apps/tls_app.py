"""Endpoints for the HTTPS tests (tests/integration/tls.rs), one per path.

Bodies of N bytes follow one pattern, byte i == i % 251, so the test checks every
byte without holding a copy.

    /environ        JSON: wsgi.url_scheme, SERVER_NAME, SERVER_PORT, REQUEST_METHOD,
                    PATH_INFO, and the request body's length and first 100 bytes
    /big?n=N        N bytes with Content-Length, as a list of 64 KiB parts
    /stream?n=N     N bytes from a generator, no Content-Length (chunked on HTTP/1.1)
    /file?n=N       N bytes from a temporary file through wsgi.file_wrapper
    /pid            the worker's pid
    /echo           the request body back, read in 256 KiB pieces
"""
import json
import os
import tempfile
from urllib.parse import parse_qs

PATTERN = bytes(i % 251 for i in range(251 * 1024))
PART = 64 * 1024


def _n(environ):
    return int(parse_qs(environ.get('QUERY_STRING', '')).get('n', ['0'])[0])


def _pattern(n):
    """The first n bytes of the pattern, as parts of at most PART bytes."""
    parts, offset = [], 0
    while offset < n:
        size = min(PART, n - offset)
        start = offset % 251
        parts.append(PATTERN[start:start + size])
        offset += size
    return parts


def environ_doc(environ, start_response):
    length = int(environ.get('CONTENT_LENGTH') or 0)
    body = environ['wsgi.input'].read(length)
    doc = {key: environ.get(key) for key in (
        'wsgi.url_scheme', 'SERVER_NAME', 'SERVER_PORT', 'REQUEST_METHOD', 'PATH_INFO')}
    doc['body_length'] = len(body)
    doc['body'] = body[:100].decode('latin-1')
    out = json.dumps(doc).encode()
    start_response('200 OK', [('Content-Type', 'application/json'),
                              ('Content-Length', str(len(out)))])
    return [out]


def big(environ, start_response):
    n = _n(environ)
    start_response('200 OK', [('Content-Type', 'application/octet-stream'),
                              ('Content-Length', str(n))])
    return _pattern(n)


def stream(environ, start_response):
    parts = _pattern(_n(environ))
    start_response('200 OK', [('Content-Type', 'application/octet-stream')])
    return (part for part in parts)


def file(environ, start_response):
    n = _n(environ)
    f = tempfile.TemporaryFile()
    for part in _pattern(n):
        f.write(part)
    f.seek(0)
    start_response('200 OK', [('Content-Type', 'application/octet-stream'),
                              ('Content-Length', str(n))])
    return environ['wsgi.file_wrapper'](f, PART)


def pid(environ, start_response):
    body = str(os.getpid()).encode()
    start_response('200 OK', [('Content-Length', str(len(body)))])
    return [body]


def echo(environ, start_response):
    stream = environ['wsgi.input']
    body = b''.join(iter(lambda: stream.read(256 * 1024), b''))
    start_response('200 OK', [('Content-Length', str(len(body)))])
    return [body]


ROUTES = {
    '/environ': environ_doc,
    '/big': big,
    '/stream': stream,
    '/file': file,
    '/pid': pid,
    '/echo': echo,
}


def application(environ, start_response):
    route = ROUTES.get(environ['PATH_INFO'])
    if route is None:
        start_response('404 Not Found', [('Content-Length', '0')])
        return []
    return route(environ, start_response)
