"""A streamed response: a generator, no Content-Length.

/?n=N yields N chunks b'chunk <i>\n' (default 5).
"""
from urllib.parse import parse_qs


def application(environ, start_response):
    n = int(parse_qs(environ.get('QUERY_STRING', '')).get('n', ['5'])[0])
    start_response('200 OK', [('Content-Type', 'text/plain')])

    def chunks():
        for i in range(n):
            yield b'chunk %d\n' % i

    return chunks()
