"""Endpoints that hold an app call open until the test says, so tests can
prove concurrency (or its absence) by construction instead of by timing.

    /pid                         the worker's pid
    /barrier?n=N&key=K&timeout=S waits on a threading.Barrier(N) shared by
                                 every call with key K: 200 b'met N' if N
                                 calls were inside the app at the same time,
                                 500 b'barrier broken' if not within S seconds
                                 (default 20) or the barrier already broke
    /park?key=K&timeout=S        logs 'parked key=K' to wsgi.errors, then
                                 waits until the file K exists in the
                                 directory $RUSTCORN_TEST_PARK_DIR (the test
                                 creates it): 200 b'released K', or 500
                                 b'park timed out' after S seconds (default 60)
    /sleep?s=S                   logs 'sleeping in pid P' to wsgi.errors, then
                                 time.sleep(S); 200 b'woke up'
"""
import os
import threading
import time
from urllib.parse import parse_qs

TEXT = [('Content-Type', 'text/plain')]

_lock = threading.Lock()
_barriers = {}


def _query(environ, key, default):
    return parse_qs(environ.get('QUERY_STRING', '')).get(key, [default])[0]


def _fixed(start_response, body, status='200 OK'):
    start_response(status, TEXT + [('Content-Length', str(len(body)))])
    return [body]


def _log(environ, text):
    errors = environ['wsgi.errors']
    errors.write(text + '\n')
    errors.flush()


def pid(environ, start_response):
    return _fixed(start_response, str(os.getpid()).encode())


def barrier(environ, start_response):
    n = int(_query(environ, 'n', '4'))
    key = _query(environ, 'key', 'default')
    timeout = float(_query(environ, 'timeout', '20'))
    with _lock:
        b = _barriers.setdefault(key, threading.Barrier(n))
    try:
        b.wait(timeout)
    except threading.BrokenBarrierError:
        return _fixed(start_response, b'barrier broken', '500 Internal Server Error')
    return _fixed(start_response, b'met %d' % n)


def park(environ, start_response):
    key = _query(environ, 'key', 'default')
    if not key.isalnum():
        return _fixed(start_response, b'bad key', '400 Bad Request')
    timeout = float(_query(environ, 'timeout', '60'))
    flag = os.path.join(os.environ['RUSTCORN_TEST_PARK_DIR'], key)
    _log(environ, 'parked key=%s' % key)
    deadline = time.monotonic() + timeout
    while not os.path.exists(flag):
        if time.monotonic() > deadline:
            return _fixed(start_response, b'park timed out', '500 Internal Server Error')
        time.sleep(0.01)
    return _fixed(start_response, b'released ' + key.encode())


def sleep(environ, start_response):
    _log(environ, 'sleeping in pid %d' % os.getpid())
    time.sleep(float(_query(environ, 's', '1')))
    return _fixed(start_response, b'woke up')


ROUTES = {
    '/pid': pid,
    '/barrier': barrier,
    '/park': park,
    '/sleep': sleep,
}


def application(environ, start_response):
    handler = ROUTES.get(environ['PATH_INFO'])
    if handler is None:
        return _fixed(start_response, b'not found', '404 Not Found')
    return handler(environ, start_response)
