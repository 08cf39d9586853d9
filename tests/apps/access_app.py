# Fixture for the access-log tests (tests/integration/access_log.rs): the same app runs
# under Gunicorn and rustcorn, so every response it gives must not depend on the
# server. It sets an environ key ("app.user") and response headers with quotes, for the
# {..}e and {..}o atoms and Gunicorn's `"` escaping.
import logging
import sys


def application(environ, start_response):
    path = environ["PATH_INFO"]
    environ["app.user"] = 'alice "the" admin'
    if path == "/proxied":
        # What werkzeug's ProxyFix and DispatcherMiddleware do: rewrite in place.
        environ["REMOTE_ADDR"] = "203.0.113.9"
        environ["PATH_INFO"] = "/rewritten"
        environ["REQUEST_METHOD"] = "PATCH"
        del environ["QUERY_STRING"]
    if path == "/missing":
        body = b"not here"
        start_response("404 Not Found", [("Content-Type", "text/plain"),
                                         ("Content-Length", str(len(body)))])
        return [body]
    if path == "/post":
        data = environ["wsgi.input"].read()
        body = b"got " + str(len(data)).encode()
        start_response("201 Created", [("Content-Type", "text/plain"),
                                       ("Content-Length", str(len(body)))])
        return [body]
    if path == "/nolength":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"no length given"]
    if path == "/print":
        # --capture-output: what the app prints lands in the error log.
        print("app says hello on stdout", flush=True)
        print("app says hello on stderr", file=sys.stderr, flush=True)
    if path == "/applog":
        # --log-config-json: the app's logger writes where the config says.
        logging.getLogger("app.audit").warning("audit event from the app")
    if path == "/gunicorn_logger":
        # The logger Gunicorn sets up in its workers, which apps borrow.
        logging.getLogger("gunicorn.error").info("hello from the app via gunicorn.error")
        logging.getLogger("gunicorn.error").debug("not shown at --log-level info")
    if path == "/boom":
        raise RuntimeError("boom")
    if path == "/nostart":
        # Returns without calling start_response: an error-log line, no traceback.
        return [b"never sent"]
    body = b"Hello!"
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body))),
                              ("X-Resp", ' value "quoted" '),
                              ("X-Resp", "second")])
    return [body]
