# Importing this module fails: it depends on a module that does not exist.
import rustcorn_missing_dependency  # noqa: F401


def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'unreachable']
