"""Endpoints for the HTTP-level tests, one per path.

    /ok                 b'ok' with Content-Length
    /hello              b'Hello!' without Content-Length (like hello.py)
    /empty              Content-Length: 0
    /no_content         204, no body
    /overlong           declares Content-Length: 5, yields b'0123456789'
    /overlong_multi     declares Content-Length: 5, yields b'012' b'345' b'6789'
    /stream?n=N         stream.py's generator (no Content-Length)
    /write              write_app.py (write() callable, then an iterable)
    /file_wrapper       this file's bytes through wsgi.file_wrapper
    /echo               the request body back, with Content-Length
    /slow?ms=N          logs 'slow request started' to wsgi.errors, then sleeps
    /pid                the worker's pid
"""
import os
import time
from urllib.parse import parse_qs

import stream
import write_app

TEXT = [('Content-Type', 'text/plain')]


def _query(environ, key, default):
    return parse_qs(environ.get('QUERY_STRING', '')).get(key, [default])[0]


def _fixed(start_response, body, status='200 OK'):
    start_response(status, TEXT + [('Content-Length', str(len(body)))])
    return [body]


def ok(environ, start_response):
    return _fixed(start_response, b'ok')


def hello(environ, start_response):
    start_response('200 OK', TEXT)
    return [b'Hello!']


def empty(environ, start_response):
    return _fixed(start_response, b'')


def no_content(environ, start_response):
    start_response('204 No Content', [])
    return []


def overlong(environ, start_response):
    start_response('200 OK', TEXT + [('Content-Length', '5')])
    return [b'0123456789']


def overlong_multi(environ, start_response):
    start_response('200 OK', TEXT + [('Content-Length', '5')])
    return [b'012', b'345', b'6789']


def file_wrapper(environ, start_response):
    size = os.path.getsize(__file__)
    start_response('200 OK', TEXT + [('Content-Length', str(size))])
    return environ['wsgi.file_wrapper'](open(__file__, 'rb'), 4096)


def echo(environ, start_response):
    return _fixed(start_response, environ['wsgi.input'].read())


def slow(environ, start_response):
    errors = environ['wsgi.errors']
    errors.write('slow request started\n')
    errors.flush()
    time.sleep(int(_query(environ, 'ms', '1000')) / 1000.0)
    return _fixed(start_response, b'slow done')


def pid(environ, start_response):
    return _fixed(start_response, str(os.getpid()).encode())


ROUTES = {
    '/ok': ok,
    '/hello': hello,
    '/empty': empty,
    '/no_content': no_content,
    '/overlong': overlong,
    '/overlong_multi': overlong_multi,
    '/stream': stream.application,
    '/write': write_app.application,
    '/file_wrapper': file_wrapper,
    '/echo': echo,
    '/slow': slow,
    '/pid': pid,
}


def application(environ, start_response):
    handler = ROUTES.get(environ['PATH_INFO'])
    if handler is None:
        return _fixed(start_response, b'not found', '404 Not Found')
    return handler(environ, start_response)
