"""Says where it was imported: `<import pid> <worker pid> <gc freeze count>`.

With --preload the import pid is the master's; without, each worker's own.
`?sleep=S` holds the worker S seconds first, so parallel clients reach every worker.
"""
import gc
import os
import time
from urllib.parse import parse_qs

IMPORT_PID = os.getpid()


def application(environ, start_response):
    sleep = parse_qs(environ.get('QUERY_STRING', '')).get('sleep', ['0'])[0]
    time.sleep(float(sleep))
    body = ('%d %d %d' % (IMPORT_PID, os.getpid(), gc.get_freeze_count())).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(body)))])
    return [body]


async def asgi_application(scope, receive, send):
    """The same answer for -k asgi."""
    import asyncio

    if scope["type"] != "http":
        return
    sleep = parse_qs(scope["query_string"].decode()).get("sleep", ["0"])[0]
    await asyncio.sleep(float(sleep))
    body = ('%d %d %d' % (IMPORT_PID, os.getpid(), gc.get_freeze_count())).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
