"""For the dotted APP_MODULE form `pkg.module:obj.attr`."""


class _Holder:
    @staticmethod
    def attr(environ, start_response):
        body = b'pkg.module:obj.attr'
        start_response('200 OK', [
            ('Content-Type', 'text/plain'),
            ('Content-Length', str(len(body))),
        ])
        return [body]


obj = _Holder()
