"""Raw ASGI app for the ASGI workloads of the side-by-side benchmark
(benches/compare.sh): no framework, so the server's own cost shows.

Routes (scope type "http"):
  GET  /        -> 13-byte text body ("Hello, World!"), with a content-length
  GET  /stream  -> 16 chunks of 1 KiB, each its own http.response.body message
                   with more_body (no content-length: chunked on HTTP/1.1)
  POST /echo    -> the request body, gathered from every http.request message,
                   sent back in one message
Scope type "websocket", any path: accepts, then echoes every message (text as
text, bytes as bytes) until the client disconnects.
Lifespan is answered (startup and shutdown complete), so every server runs it
the same way. Anything else is a 404.
"""

HELLO = b"Hello, World!"
CHUNK = b"x" * 1024
CHUNKS = 16
TEXT = [(b"content-type", b"text/plain")]


async def _lifespan(receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _websocket(receive, send):
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif kind == "websocket.receive":
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})
        else:  # websocket.disconnect
            return


async def _read_body(receive):
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None  # http.disconnect
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _respond(send, status, body, headers=TEXT):
    headers = headers + [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def app(scope, receive, send):
    kind = scope["type"]
    if kind == "lifespan":
        return await _lifespan(receive, send)
    if kind == "websocket":
        return await _websocket(receive, send)
    path, method = scope["path"], scope["method"]
    if path == "/" and method in ("GET", "HEAD"):
        return await _respond(send, 200, HELLO)
    if path == "/stream" and method == "GET":
        await send({"type": "http.response.start", "status": 200, "headers": TEXT})
        for _ in range(CHUNKS):
            await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/echo" and method == "POST":
        body = await _read_body(receive)
        if body is not None:
            await _respond(send, 200, body, [(b"content-type", b"application/octet-stream")])
        return
    await _respond(send, 404, b"not found\n")


application = app
