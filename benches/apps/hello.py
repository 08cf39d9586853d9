"""Plain WSGI app for the side-by-side benchmark (benches/compare.sh).

Routes:
  GET  /      -> 13-byte text body ("Hello, World!")
  GET  /64k   -> 64 KiB body, one bytes object
  POST /echo  -> the request body, read fully from wsgi.input, sent back
Anything else is a 404, so a mis-wired workload shows up as wrk's
"Non-2xx or 3xx responses" instead of silently measuring the wrong thing.
"""

HELLO = b"Hello, World!"
BODY_64K = b"x" * (64 * 1024)


def _send(start_response, status, body, ctype=b"text/plain"):
    start_response(
        status,
        [("Content-Type", ctype.decode()), ("Content-Length", str(len(body)))],
    )
    return [body]


def _read_body(environ):
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    stream = environ["wsgi.input"]
    if length <= 0:
        return b""
    chunks = []
    remaining = length
    while remaining > 0:
        chunk = stream.read(min(remaining, 256 * 1024))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def application(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    method = environ.get("REQUEST_METHOD", "GET")
    if path == "/" and method in ("GET", "HEAD"):
        return _send(start_response, "200 OK", HELLO)
    if path == "/64k" and method in ("GET", "HEAD"):
        return _send(start_response, "200 OK", BODY_64K)
    if path == "/echo" and method == "POST":
        return _send(start_response, "200 OK", _read_body(environ), b"application/octet-stream")
    return _send(start_response, "404 Not Found", b"not found\n")
