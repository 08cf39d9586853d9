"""App for the `gthread-sleep` workload of benches/compare.sh: each request sleeps
10 ms (an app waiting on I/O), so four threads can serve at most 400 requests/s."""

import time

BODY = b"slept 10 ms"


def application(environ, start_response):
    time.sleep(0.01)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))])
    return [BODY]
