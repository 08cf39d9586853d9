"""Reads wsgi.input in the way named by the path and echoes what each call gave.

    /read            one read()
    /read_none       one read(None)
    /read_minus1     one read(-1)
    /read_n?n=N      read(N) until b''
    /readline        readline() until b''
    /readline_n?n=N  readline(N) until b''
    /readlines       readlines()
    /iter            for line in wsgi.input

Body: {"mode": ..., "chunks": [latin-1 str per call result], "data": joined}.
The empty b'' that ends a loop is not listed.
"""
import json
from urllib.parse import parse_qs


def _read_all(stream, mode, n):
    if mode == 'read':
        return [stream.read()]
    if mode == 'read_none':
        return [stream.read(None)]
    if mode == 'read_minus1':
        return [stream.read(-1)]
    if mode == 'readlines':
        return stream.readlines()
    if mode == 'iter':
        return [line for line in stream]
    if mode in ('read_n', 'readline', 'readline_n'):
        call = {
            'read_n': lambda: stream.read(n),
            'readline': stream.readline,
            'readline_n': lambda: stream.readline(n),
        }[mode]
        chunks = []
        for _ in range(1_000_000):  # bounded: a broken stream must not hang
            chunk = call()
            if not chunk:
                break
            chunks.append(chunk)
        return chunks
    raise ValueError('unknown mode %r' % mode)


def application(environ, start_response):
    mode = environ['PATH_INFO'].strip('/')
    n = int(parse_qs(environ.get('QUERY_STRING', '')).get('n', ['0'])[0])
    chunks = _read_all(environ['wsgi.input'], mode, n)
    for chunk in chunks:
        if not isinstance(chunk, bytes):
            raise TypeError('wsgi.input gave %r, not bytes' % type(chunk))
    doc = {
        'mode': mode,
        'chunks': [c.decode('latin-1') for c in chunks],
        'data': b''.join(chunks).decode('latin-1'),
    }
    out = json.dumps(doc, ensure_ascii=True).encode('ascii')
    start_response('200 OK', [
        ('Content-Type', 'application/json'),
        ('Content-Length', str(len(out))),
    ])
    return [out]
