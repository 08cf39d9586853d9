"""Uses the legacy write() callable returned by start_response, then returns
an iterable with the rest: the body must be b'one' b'two' b'three' in order."""


def application(environ, start_response):
    write = start_response('200 OK', [('Content-Type', 'text/plain')])
    write(b'one')
    write(b'two')
    return [b'three']
