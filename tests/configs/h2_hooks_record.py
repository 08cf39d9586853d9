# pre_request/post_request for tests/integration/http2_asgi.rs (-k asgi over HTTP/2):
# each call appends one line to $HOOKS_RECORD with what the hook read.
import os

workers = 1


def record(*fields):
    with open(os.environ["HOOKS_RECORD"], "a") as f:
        f.write(" ".join(str(x) for x in fields) + "\n")


def pre_request(worker, req):
    if req.path == "/hook-raises":
        raise RuntimeError("pre_request refuses " + req.path)
    record("pre", req.method, req.path, req.query, "%d.%d" % req.version)


def post_request(worker, req, environ, resp):
    headers = {name.lower(): value for name, value in resp.headers}
    record("post", req.path, req.query or "-", resp.status_code,
           headers.get("content-type", "-").replace(" ", ""), resp.sent)
