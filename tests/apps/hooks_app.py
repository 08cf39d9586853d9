"""For tests/integration/hooks.rs: answers `HOOKS_GREETING pid` (HOOKS_GREETING comes
from the config file's raw_env, so a reload shows a new value), or sleeps on /sleep."""
import os
import time


def application(environ, start_response):
    if environ["PATH_INFO"] == "/sleep":
        time.sleep(60)
    body = ("%s %d" % (os.environ.get("HOOKS_GREETING"), os.getpid())).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
