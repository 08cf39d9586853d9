"""Raw ASGI apps for tests/integration/asgi.rs (no framework)."""

import asyncio
import json


async def hello(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["greeting"] = "hello from lifespan"
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    assert scope["type"] == "http"
    body = b"Hello, World!"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")]})
    await send({"type": "http.response.body", "body": body})


async def read_body(receive):
    """The whole request body, and how many http.request messages brought it."""
    chunks = []
    while True:
        message = await receive()
        assert message["type"] == "http.request", message
        chunks.append(message["body"])
        if not message.get("more_body"):
            return b"".join(chunks), len(chunks)


async def echo(scope, receive, send):
    """The scope (JSON-able parts) and the whole request body, as JSON."""
    if scope["type"] != "http":
        return await hello(scope, receive, send)
    body, messages = await read_body(receive)
    doc = {k: v for k, v in scope.items() if k in (
        "type", "http_version", "method", "scheme", "path", "root_path", "server", "client", "asgi")}
    doc["raw_path"] = scope["raw_path"].decode("latin-1")
    doc["query_string"] = scope["query_string"].decode("latin-1")
    doc["headers"] = [[n.decode("latin-1"), v.decode("latin-1")] for n, v in scope["headers"]]
    doc["state"] = dict(scope.get("state", {}))
    doc["body_len"] = len(body)
    doc["body_head"] = body[:64].decode("latin-1")
    doc["messages"] = messages
    out = json.dumps(doc).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": out})


async def echo_body(scope, receive, send):
    """The request body itself, back with its length (tests/integration/large_bodies.rs)."""
    if scope["type"] != "http":
        return await hello(scope, receive, send)
    body, _ = await read_body(receive)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def stream(scope, receive, send):
    """Ten chunks without a length (chunked on HTTP/1.1)."""
    if scope["type"] != "http":
        return await hello(scope, receive, send)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for i in range(10):
        await send({"type": "http.response.body", "body": b"chunk %d\n" % i, "more_body": True})
        await asyncio.sleep(0)
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def fails(scope, receive, send):
    if scope["type"] != "http":
        return await hello(scope, receive, send)
    raise RuntimeError("boom in the app")


def wsgi_app(environ, start_response):
    start_response("200 OK", [])
    return [b"wsgi"]


sent_before_wait = {"chunks": 0}


async def flood(scope, receive, send):
    """/flood: 64 MiB in 1 MiB chunks (the client decides how fast); /progress: how
    many chunks the flood's send() has accepted so far."""
    if scope["type"] != "http":
        return await hello(scope, receive, send)
    if scope["path"] == "/progress":
        body = str(sent_before_wait["chunks"]).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
        return
    sent_before_wait["chunks"] = 0
    chunk = b"x" * (1 << 20)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(64 << 20).encode())]})
    for _ in range(64):
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
        sent_before_wait["chunks"] += 1
    await send({"type": "http.response.body", "body": b""})


background = {"done": 0}


async def background_task(scope, receive, send):
    """/slow-tail: answers at once, then keeps its task busy 3 s (like Starlette's
    BackgroundTasks); /count: how many such tails finished."""
    if scope["type"] != "http":
        return await hello(scope, receive, send)
    body = str(background["done"]).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
    if scope["path"] == "/slow-tail":
        await asyncio.sleep(3)
        background["done"] += 1


disconnects = {"seen": 0}


async def wait_for_disconnect(scope, receive, send):
    """/hold: starts a stream, then waits on receive() until the client goes away;
    /seen: how many such disconnects were received."""
    if scope["type"] != "http":
        return await hello(scope, receive, send)
    if scope["path"] == "/seen":
        body = str(disconnects["seen"]).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
        return
    await receive()  # the (empty) body
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"event: hello\n\n", "more_body": True})
    message = await receive()
    if message["type"] == "http.disconnect":
        disconnects["seen"] += 1


async def startup_fails(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "the database is not there"})
        return
    await hello(scope, receive, send)


async def ws_echo(scope, receive, send):
    """Echoes every WebSocket message (the Autobahn cases' peer); offers to speak the
    client's first subprotocol; /deny refuses with a 403-style denial response."""
    if scope["type"] == "lifespan":
        return await hello(scope, receive, send)
    if scope["type"] == "http":
        return await hello(scope, receive, send)
    message = await receive()
    assert message["type"] == "websocket.connect", message
    if scope["path"] == "/deny":
        await send({"type": "websocket.http.response.start", "status": 401,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "websocket.http.response.body", "body": b"no entry"})
        return
    if scope["path"] == "/close-first":
        await send({"type": "websocket.close"})
        return
    sub = scope["subprotocols"][0] if scope["subprotocols"] else None
    await send({"type": "websocket.accept", "subprotocol": sub})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") == "close-please":
            await send({"type": "websocket.close", "code": 4001, "reason": "asked to"})
            continue
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def ops(scope, receive, send):
    """/block: blocks the event loop with a synchronous sleep (a --timeout case);
    /slow: answers after 1 s of asyncio sleep; /pid: the worker's pid."""
    import os
    import time
    if scope["type"] != "http":
        return await hello(scope, receive, send)
    if scope["path"] == "/block":
        time.sleep(60)
    if scope["path"] == "/slow":
        await asyncio.sleep(1)
    body = str(os.getpid()).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


outcomes = {"cancelled": 0, "finished": 0}


async def ignores_disconnect(scope, receive, send):
    """/linger: starts a response, then sleeps 30 s without reading or writing (it
    ignores that its client left); /outcomes: how such requests ended."""
    if scope["type"] != "http":
        return await hello(scope, receive, send)
    if scope["path"] == "/outcomes":
        body = json.dumps(outcomes).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"started\n", "more_body": True})
    try:
        await asyncio.sleep(30)
        outcomes["finished"] += 1
    except asyncio.CancelledError:
        outcomes["cancelled"] += 1
        raise


async def early_hints(scope, receive, send):
    """103 Early Hints, then the response."""
    if scope["type"] != "http":
        return await hello(scope, receive, send)
    await send({"type": "http.response.informational", "status": 103,
                "headers": [(b"link", b"</style.css>; rel=preload; as=style")]})
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


async def pathsend(scope, receive, send):
    """`http.response.pathsend` of the file named by the query string (`rel=...` sends
    it as given, relative; `len=N` declares a content-length), when the scope offers
    the extension; without it, a 501."""
    if scope["type"] != "http":
        return await hello(scope, receive, send)
    from urllib.parse import parse_qs
    query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
    if "http.response.pathsend" not in scope.get("extensions", {}):
        await send({"type": "http.response.start", "status": 501, "headers": []})
        await send({"type": "http.response.body", "body": b"no pathsend"})
        return
    headers = [(b"content-type", b"application/octet-stream")]
    if "len" in query:
        headers.append((b"content-length", query["len"].encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.pathsend", "path": query["path"]})


BAD_STARTS = {
    "/status-99": {"type": "http.response.start", "status": 99},
    "/status-text": {"type": "http.response.start", "status": "200"},
    "/no-status": {"type": "http.response.start"},
    "/header-str": {"type": "http.response.start", "status": 200, "headers": [("x-a", "b")]},
    "/header-crlf": {"type": "http.response.start", "status": 200,
                     "headers": [(b"x-a", b"b\r\nInjected: 1")]},
    "/header-name": {"type": "http.response.start", "status": 200, "headers": [(b"x a", b"b")]},
}


async def bad_messages(scope, receive, send):
    """Each path sends one malformed http.response.start (see BAD_STARTS)."""
    if scope["type"] != "http":
        return await hello(scope, receive, send)
    await send(BAD_STARTS[scope["path"]])
    await send({"type": "http.response.body", "body": b"never"})


async def ignores_lifespan(scope, receive, send):
    """Returns at once for any scope but http: the common way to ignore lifespan."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


async def _text(send, text):
    body = text.encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def current_task(scope, receive, send):
    """Answers with what asyncio.current_task() is inside the request (anyio and
    Starlette need a real Task), and whether the receive() awaitable gave the body."""
    if scope["type"] != "http":
        return
    task = asyncio.current_task()
    message = await receive()
    await _text(send, "%s %s %r" % (isinstance(task, asyncio.Task), task.get_name(),
                                    message.get("body")))


async def task_factory(scope, receive, send):
    """Sets a task factory at lifespan startup: the server's request tasks must then
    come from it, as loop.create_task's do."""
    if scope["type"] == "lifespan":
        message = await receive()
        loop = asyncio.get_running_loop()

        def factory(loop, coro, **kwargs):
            task = asyncio.Task(coro, loop=loop, **kwargs)
            task.set_name("made by the app's factory")
            return task

        loop.set_task_factory(factory)
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        await send({"type": "lifespan.shutdown.complete"})
        return
    await _text(send, asyncio.current_task().get_name())
