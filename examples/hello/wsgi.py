# The deployment guide's app. Run it with:
#
#     rustcorn -b 0.0.0.0:8080 --workers=5 --chdir examples/hello wsgi
#
# A WSGI body is an iterable of bytes (PEP 3333), hence b'Hello!'.
def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'Hello!']
