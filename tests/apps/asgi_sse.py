"""Starlette with sse-starlette: three events, one every 100 ms."""

import asyncio

from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.routing import Route


async def events(request):
    async def generate():
        for i in range(3):
            yield {"event": "tick", "id": str(i), "data": "tick %d" % i}
            await asyncio.sleep(0.1)

    return EventSourceResponse(generate())


app = Starlette(routes=[Route("/events", events)])
