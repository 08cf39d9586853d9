"""App factories for the `module:factory()` and `module:factory('arg', 2)` forms."""


def _app_saying(text):
    body = text.encode('utf-8')

    def application(environ, start_response):
        start_response('200 OK', [
            ('Content-Type', 'text/plain'),
            ('Content-Length', str(len(body))),
        ])
        return [body]

    return application


def create():
    return _app_saying('made by create()')


def create_with(name, count):
    # Literal arguments keep their Python types: a str and an int.
    return _app_saying('made by create_with(%s:%s, %s:%s)' % (
        type(name).__name__, name, type(count).__name__, count))
