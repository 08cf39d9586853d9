"""The modules the worker has imported, one per line: a plain app must not make the
worker carry what it does not use (logging, ast, traceback: memory per worker)."""
import sys


def application(environ, start_response):
    if environ["PATH_INFO"] == "/import-logging":
        import logging

        handlers = logging.getLogger("gunicorn.error").handlers
        body = ("%d gunicorn.error handlers\n" % len(handlers)).encode()
    else:
        body = "\n".join(sorted(sys.modules)).encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
