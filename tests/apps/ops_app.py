"""Endpoints for the operations tests (tests/integration/ops*.rs).

Imports nothing beyond what the interpreter loads at start-up (os, sys), so it
also loads in a worker that runs as `nobody` and cannot read the stdlib.

    /pid                the worker's pid
    /ids                "uid gid groups umask" of the worker (umask in octal)
    /argv               sys.argv, one item per line
    /exit?N             os._exit(N): the worker dies with status N
    /signal?N           os.kill(os.getpid(), N): the worker dies by signal N
    /segfault           reads address 0 through ctypes: the worker dies by SIGSEGV
    /log?TEXT           writes 'log: TEXT' to wsgi.errors
    /stderr?TEXT        writes 'stderr: TEXT' to the process's own stderr
"""
import os
import sys


def _text(start_response, body, status='200 OK'):
    data = body.encode()
    start_response(status, [('Content-Type', 'text/plain'),
                            ('Content-Length', str(len(data)))])
    return [data]


def ids():
    mask = os.umask(0)
    os.umask(mask)
    groups = ','.join(str(g) for g in sorted(os.getgroups()))
    return '%d %d %s %03o' % (os.getuid(), os.getgid(), groups or '-', mask)


def application(environ, start_response):
    path = environ['PATH_INFO']
    query = environ.get('QUERY_STRING', '')
    if path == '/pid':
        return _text(start_response, str(os.getpid()))
    if path == '/ids':
        return _text(start_response, ids())
    if path == '/argv':
        return _text(start_response, '\n'.join(sys.argv))
    if path == '/exit':
        os._exit(int(query))
    if path == '/signal':
        os.kill(os.getpid(), int(query))
    if path == '/segfault':
        import ctypes
        ctypes.string_at(0)
    if path == '/stderr':
        sys.stderr.write('stderr: %s\n' % query)
        sys.stderr.flush()
        return _text(start_response, 'written')
    if path == '/log':
        environ['wsgi.errors'].write('log: %s\n' % query)
        environ['wsgi.errors'].flush()
        return _text(start_response, 'logged')
    return _text(start_response, 'not found', '404 Not Found')
