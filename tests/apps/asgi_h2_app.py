"""An ASGI app for tests/integration/http2_asgi.rs (-k asgi over HTTP/2): FastAPI
routes, and raw ASGI handlers under /raw/ for what frameworks do not send
(trailers, 103 Early Hints, pathsend) and for watching a client that resets."""

import asyncio
import json
import os
import sys

from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

api = FastAPI()
# What the raw handlers saw, for /raw/events.
events = []


class Item(BaseModel):
    name: str
    price: float


@api.get("/items/{item_id}")
async def read_item(item_id: int, q: str | None = None):
    return {"item_id": item_id, "q": q}


@api.post("/items")
async def create_item(item: Item):
    return {"name": item.name, "price": item.price, "taxed": round(item.price * 1.2, 2)}


@api.get("/stream")
async def stream():
    async def numbers():
        for i in range(5):
            yield b"line %d\n" % i
            await asyncio.sleep(0)

    return StreamingResponse(numbers(), media_type="text/plain")


@api.get("/slow")
async def slow(s: float = 0.5):
    print("asgi h2 slow start", file=sys.stderr, flush=True)
    await asyncio.sleep(s)
    return {"slept": s}


# Byte i of /big's body is i % 251: any 64 KiB piece is a slice of this.
PATTERN = bytes(i % 251 for i in range(251 * 300))


@api.get("/big")
async def big(n: int = 8 * 1024 * 1024):
    async def pieces():
        at = 0
        while at < n:
            take = min(64 * 1024, n - at)
            yield PATTERN[at % 251:at % 251 + take]
            at += take

    return StreamingResponse(pieces(), media_type="application/octet-stream")


async def start(send, status=200, headers=(), trailers=False):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain")] + list(headers),
                "trailers": trailers})


async def raw(scope, receive, send):
    path = scope["path"]
    if path == "/raw/scope":
        body = json.dumps({"http_version": scope["http_version"],
                           "extensions": sorted(scope.get("extensions", {}))}).encode()
        await start(send)
        await send({"type": "http.response.body", "body": body})
    elif path == "/raw/trailers":
        await start(send, trailers=True)
        await send({"type": "http.response.body", "body": b"hello ", "more_body": True})
        await send({"type": "http.response.body", "body": b"trailers"})
        await send({"type": "http.response.trailers",
                    "headers": [(b"x-checksum", b"abc123")], "more_trailers": True})
        await send({"type": "http.response.trailers",
                    "headers": [(b"x-status", b"done")], "more_trailers": False})
    elif path == "/raw/hints":
        await send({"type": "http.response.informational", "status": 103,
                    "headers": [(b"link", b"</style.css>; rel=preload; as=style")]})
        await start(send)
        await send({"type": "http.response.body", "body": b"hinted"})
    elif path == "/raw/pathsend":
        await start(send)
        await send({"type": "http.response.pathsend", "path": os.path.abspath(__file__)})
    elif path == "/raw/echo":
        got = bytearray()
        while True:
            message = await receive()
            got += message.get("body", b"")
            if not message.get("more_body"):
                break
        await start(send)
        await send({"type": "http.response.body", "body": bytes(got)})
    elif path == "/raw/endless":
        await endless(receive, send)
    elif path == "/raw/events":
        await start(send)
        await send({"type": "http.response.body", "body": json.dumps(events).encode()})
    else:
        await start(send, status=404)
        await send({"type": "http.response.body", "body": b"no such raw path"})


async def endless(receive, send):
    """Sends 16 KiB pieces until the client resets the stream: records what send()
    and receive() did about it."""

    async def listen():
        await receive()  # the (empty) body
        message = await receive()
        events.append("receive: " + message["type"])

    listener = asyncio.ensure_future(listen())
    await start(send)
    events.append("endless started")
    try:
        while True:
            await send({"type": "http.response.body", "body": b"x" * 16384, "more_body": True})
    except OSError as e:
        events.append("send raised " + type(e).__name__)
    await asyncio.wait_for(listener, 10)


async def application(scope, receive, send):
    if scope["type"] == "http" and scope["path"].startswith("/raw/"):
        return await raw(scope, receive, send)
    return await api(scope, receive, send)
