# The deployment guide's wsgi.py, returning bytes as PEP 3333 requires.
def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'Hello!']
