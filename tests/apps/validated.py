"""An app wrapped in wsgiref.validate.validator: any PEP 3333 violation by the
server (environ types, wsgi.input API, start_response use, close() not
called, …) raises AssertionError inside the app, which the server turns into a
500 with a traceback in the log.

GET/HEAD answer b'validated GET'; POST answers b'validated POST <n> bytes:<sum>'
where n is the body length and sum the sum of its bytes. The body is read with
read(n) only (the validator forbids read() without an argument) until b''.
"""
from wsgiref.validate import validator


def _inner(environ, start_response):
    method = environ['REQUEST_METHOD']
    if method == 'POST':
        stream = environ['wsgi.input']
        data = b''
        for _ in range(1_000_000):
            chunk = stream.read(1024)
            if not chunk:
                break
            data += chunk
        body = b'validated POST %d bytes:%d' % (len(data), sum(data))
    else:
        body = b'validated ' + method.encode('ascii')
    start_response('200 OK', [
        ('Content-Type', 'text/plain'),
        ('Content-Length', str(len(body))),
    ])
    return [body]


application = validator(_inner)
