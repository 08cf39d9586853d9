"""What an app may pass to start_response, and what the server does with it.

    /pid              the worker's pid
    /hop              sets every hop-by-hop header, Server and Date, plus X-Kept
    /close            Connection: close from the app
    /latin1           a header value with U+00E9 (must go out as the byte 0xE9)
    /padded           a header value with surrounding spaces and tabs
    /bad/<case>       start_response with one unsafe status or header (CASES)
    /shape/<kind>     the headers as another iterable than a list (SHAPES), with X-Shape
"""
import os

TEXT = [('Content-Type', 'text/plain')]

CASES = {
    'nul_value': ('200 OK', [('X-Bad', 'a\0b')]),
    'cr_value': ('200 OK', [('X-Bad', 'a\rX-Injected: 1')]),
    'bel_value': ('200 OK', [('X-Bad', 'a\x07b')]),
    'del_value': ('200 OK', [('X-Bad', 'a\x7fb')]),
    'non_latin1_value': ('200 OK', [('X-Bad', 'snow \u2603')]),
    'space_in_name': ('200 OK', [('X Bad', 'v')]),
    'colon_in_name': ('200 OK', [('X-Injected:', 'v')]),
    'empty_name': ('200 OK', [('', 'v')]),
    'nul_in_name': ('200 OK', [('X-\0', 'v')]),
    'status_without_reason': ('200', []),
    'status_word': ('OK', []),
    'status_two_digits': ('20 OK', []),
    'status_crlf': ('200 OK\r\nX-Injected: 1', []),
    'status_lf': ('200 OK\nX-Injected: 1', []),
    'status_nul': ('200 O\0K', []),
    'status_non_latin1': ('200 \u2603', []),
    'list_not_tuple': ('200 OK', [['X-Bad', 'v']]),
    'three_tuple': ('200 OK', [('X-Bad', 'v', 'w')]),
}


class ReversedList(list):
    """A list that iterates its own way: the server must use its iterator."""

    def __iter__(self):
        return reversed(self[:])


def _shape(kind, headers):
    if kind == 'tuple':
        return tuple(headers)
    if kind == 'generator':
        return (h for h in headers)
    if kind == 'list_subclass':
        return ReversedList(reversed(headers))
    raise KeyError(kind)


def _fixed(start_response, body, headers=(), status='200 OK'):
    start_response(status, TEXT + list(headers) + [('Content-Length', str(len(body)))])
    return [body]


def application(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/pid':
        return _fixed(start_response, str(os.getpid()).encode())
    if path == '/hop':
        return _fixed(start_response, b'ok', [
            ('Connection', 'keep-alive, X-Kept'),
            ('Keep-Alive', 'timeout=99'),
            ('Transfer-Encoding', 'chunked'),
            ('Upgrade', 'websocket'),
            ('Proxy-Authenticate', 'Basic'),
            ('Proxy-Authorization', 'Basic Zm9vOmJhcg=='),
            ('Proxy-Connection', 'keep-alive'),
            ('TE', 'trailers'),
            ('Trailer', 'X-T'),
            ('Trailers', 'X-T'),
            ('Server', 'evil/1.0'),
            ('Date', 'Thu, 01 Jan 1970 00:00:00 GMT'),
            ('X-Kept', 'yes'),
        ])
    if path == '/close':
        return _fixed(start_response, b'bye', [('Connection', 'close')])
    if path == '/latin1':
        return _fixed(start_response, b'ok', [('X-Name', 'caf\u00e9')])
    if path == '/padded':
        return _fixed(start_response, b'ok', [('X-Pad', ' \t v \t ')])
    if path.startswith('/shape/'):
        headers = TEXT + [('X-Shape', path[len('/shape/'):]), ('Content-Length', '2')]
        start_response('200 OK', _shape(path[len('/shape/'):], headers))
        return [b'ok']
    if path.startswith('/bad/'):
        status, headers = CASES[path[len('/bad/'):]]
        start_response(status, TEXT + headers)
        return [b'must never be sent']
    return _fixed(start_response, b'not found', status='404 Not Found')
