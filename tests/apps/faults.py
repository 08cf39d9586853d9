"""One app, one misbehaviour per path, for the server's fault handling.

Healthy endpoints:
    /pid                      the worker's pid (so tests can see it survived)
    /ok                       b'ok'
    /exc_info_before_headers  error caught before any body: start_response
                              again with exc_info → 503 b'recovered' (allowed)
    /close_record?tag=T       iterable whose close() appends T to the file
                              named by $RUSTCORN_CLOSE_LOG

Faults before headers are sent (server must answer 500, log a traceback and
keep the worker):
    /raise /iter_raises_first /yield_text /bad_status /crlf_header_value
    /crlf_header_name /lf_header_value /no_start_response /non_iterable
    /start_response_twice /header_not_str /write_text /headers_missing

Faults after headers are sent (server must close the connection):
    /gen_fail_after_first      no Content-Length, so chunked on HTTP/1.1
    /gen_fail_after_first_cl   declares Content-Length: 100, sends 5 bytes
    /exc_info_after_headers    start_response(..., exc_info) after the first chunk
    /close_record_fail?tag=T   like close_record but iteration raises
"""
import os
import sys
from urllib.parse import parse_qs

TEXT = [('Content-Type', 'text/plain')]


def _fixed(start_response, body, status='200 OK'):
    start_response(status, TEXT + [('Content-Length', str(len(body)))])
    return [body]


class _ClosingBody:
    """An iterable whose close() leaves a trace a test can read."""

    def __init__(self, tag, fail):
        self.tag = tag
        self.fail = fail

    def __iter__(self):
        yield b'first'
        if self.fail:
            raise RuntimeError('fault: closing body failed mid-stream')
        yield b' second'

    def close(self):
        with open(os.environ['RUSTCORN_CLOSE_LOG'], 'a') as f:
            f.write(self.tag + '\n')


def _tag(environ):
    return parse_qs(environ.get('QUERY_STRING', '')).get('tag', ['untagged'])[0]


def pid(environ, start_response):
    return _fixed(start_response, str(os.getpid()).encode())


def ok(environ, start_response):
    return _fixed(start_response, b'ok')


def exc_info_before_headers(environ, start_response):
    start_response('200 OK', TEXT)
    try:
        raise ValueError('fault: caught before any body was sent')
    except ValueError:
        start_response('503 Service Unavailable', TEXT, sys.exc_info())
    return [b'recovered']


def close_record(environ, start_response):
    start_response('200 OK', TEXT)
    return _ClosingBody(_tag(environ), fail=False)


def close_record_fail(environ, start_response):
    start_response('200 OK', TEXT)
    return _ClosingBody(_tag(environ), fail=True)


def raise_(environ, start_response):
    raise RuntimeError('fault: app raised on purpose')


def iter_raises_first(environ, start_response):
    start_response('200 OK', TEXT)

    def body():
        raise RuntimeError('fault: generator raised before its first chunk')
        yield b'never'

    return body()


def yield_text(environ, start_response):
    start_response('200 OK', TEXT)
    return ['some text']  # str, not bytes


def bad_status(environ, start_response):
    start_response('bogus', TEXT)
    return [b'bad status']


def crlf_header_value(environ, start_response):
    start_response('200 OK', TEXT + [('X-Bad', 'a\r\nX-Injected: 1')])
    return [b'crlf in value']


def crlf_header_name(environ, start_response):
    start_response('200 OK', TEXT + [('X-Bad\r\nX-Injected', '1')])
    return [b'crlf in name']


def lf_header_value(environ, start_response):
    start_response('200 OK', TEXT + [('X-Bad', 'a\nX-Injected: 1')])
    return [b'lf in value']


def no_start_response(environ, start_response):
    return [b'start_response was never called']


def non_iterable(environ, start_response):
    start_response('200 OK', TEXT)
    return None


def start_response_twice(environ, start_response):
    start_response('200 OK', TEXT)
    start_response('201 Created', TEXT)
    return [b'twice']


def write_text(environ, start_response):
    write = start_response('200 OK', TEXT)
    write('fault: text given to write()')
    return [b'unreachable']


def headers_missing(environ, start_response):
    start_response('200 OK')
    return [b'unreachable']


def header_not_str(environ, start_response):
    start_response('200 OK', TEXT + [('X-Number', 5)])
    return [b'int header value']


def gen_fail_after_first(environ, start_response):
    start_response('200 OK', TEXT)

    def body():
        yield b'first'
        raise RuntimeError('fault: generator failed mid-stream')

    return body()


def gen_fail_after_first_cl(environ, start_response):
    start_response('200 OK', TEXT + [('Content-Length', '100')])

    def body():
        yield b'first'
        raise RuntimeError('fault: generator failed mid-stream')

    return body()


def exc_info_after_headers(environ, start_response):
    start_response('200 OK', TEXT)

    def body():
        yield b'first'
        try:
            raise ValueError('fault: error after headers were sent')
        except ValueError:
            # PEP 3333: with headers sent, start_response must re-raise.
            start_response('500 Internal Server Error', TEXT, sys.exc_info())
        yield b'must not be sent'

    return body()


ROUTES = {
    '/pid': pid,
    '/ok': ok,
    '/exc_info_before_headers': exc_info_before_headers,
    '/close_record': close_record,
    '/close_record_fail': close_record_fail,
    '/raise': raise_,
    '/iter_raises_first': iter_raises_first,
    '/yield_text': yield_text,
    '/bad_status': bad_status,
    '/crlf_header_value': crlf_header_value,
    '/crlf_header_name': crlf_header_name,
    '/lf_header_value': lf_header_value,
    '/no_start_response': no_start_response,
    '/non_iterable': non_iterable,
    '/start_response_twice': start_response_twice,
    '/header_not_str': header_not_str,
    '/write_text': write_text,
    '/headers_missing': headers_missing,
    '/gen_fail_after_first': gen_fail_after_first,
    '/gen_fail_after_first_cl': gen_fail_after_first_cl,
    '/exc_info_after_headers': exc_info_after_headers,
}


def application(environ, start_response):
    handler = ROUTES.get(environ['PATH_INFO'])
    if handler is None:
        return _fixed(start_response, b'no such fault', '404 Not Found')
    return handler(environ, start_response)
