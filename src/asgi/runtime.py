"""rustcorn's asgi worker, the Python half: the event loop, the lifespan protocol, and
the coroutine that runs one HTTP request. Everything on the wire (accepting, parsing,
framing, writing) is Rust's (`src/asgi/`); this file only awaits."""

import asyncio
import functools
import traceback


class ClientDisconnected(OSError):
    """send() after the client went away (ASGI 2.4: an OSError subclass)."""


def new_loop(kind):
    """`--asgi-loop`: uvloop when asked for (or, for auto, when installed), else asyncio."""
    if kind in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise RuntimeError(
                    "--asgi-loop uvloop: uvloop is not installed in the app's environment "
                    "(pip install uvloop)"
                ) from None
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


class Lifespan:
    """The lifespan protocol: one long-lived call of the app with a `lifespan` scope."""

    def __init__(self, app, mode, state):
        self.app = app
        self.mode = mode
        self.state = state
        self.inbox = asyncio.Queue()
        self.startup_done = asyncio.Event()
        self.shutdown_done = asyncio.Event()
        self.failure = None
        self.unsupported = False
        self.task = None

    async def receive(self):
        return await self.inbox.get()

    async def send(self, message):
        kind = message.get("type")
        if kind == "lifespan.startup.complete":
            self.startup_done.set()
        elif kind == "lifespan.startup.failed":
            self.failure = message.get("message", "") or "lifespan.startup.failed"
            self.startup_done.set()
        elif kind == "lifespan.shutdown.complete":
            self.shutdown_done.set()
        elif kind == "lifespan.shutdown.failed":
            self.failure = message.get("message", "") or "lifespan.shutdown.failed"
            self.shutdown_done.set()
        else:
            raise RuntimeError("unexpected lifespan message %r" % (kind,))

    async def run(self):
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.4"},
                 "state": self.state}
        try:
            await self.app(scope, self.receive, self.send)
        except BaseException:
            if not self.startup_done.is_set():
                if self.mode == "on":
                    self.failure = traceback.format_exc()
                else:
                    # auto: an app without lifespan support raises on the unknown scope.
                    self.unsupported = True
        else:
            if not self.startup_done.is_set():
                # It returned at once (`if scope["type"] != "http": return`, a common
                # way to ignore lifespan): under auto that is no lifespan support, as
                # Uvicorn reads it; under on, a startup that never completed.
                if self.mode == "on":
                    self.failure = "the app returned from the lifespan scope before lifespan.startup.complete"
                else:
                    self.unsupported = True
        self.startup_done.set()
        self.shutdown_done.set()

    async def startup(self):
        """None when the app started (or has no lifespan support under auto), else why not."""
        if self.mode == "off":
            return None
        self.task = asyncio.ensure_future(self.run())
        await self.inbox.put({"type": "lifespan.startup"})
        await self.startup_done.wait()
        return self.failure

    async def shutdown(self):
        if self.task is None or self.unsupported or self.task.done():
            return None
        await self.inbox.put({"type": "lifespan.shutdown"})
        await self.shutdown_done.wait()
        return self.failure


# While a send() waits for a slow client, it goes on once this little is queued.
LOW_WATER = 64 * 1024


def arm_flush(loop, cycle, waiter=None):
    """Writes the cycle's queued output whenever the socket takes more; resolves
    `waiter` (a send() that found too much queued) once little is left."""
    fd = cycle.fd()

    def on_writable():
        left = cycle.flush_pending()
        if waiter is not None and left <= LOW_WATER and not waiter.done():
            waiter.set_result(None)
        if left <= 0:
            loop.remove_writer(fd)

    loop.add_writer(fd, on_writable)
    cycle.armed()


async def sent(loop, cycle, status, gone_message):
    # The HTTP cycle's send (`asend` in cycle.rs) calls this only for status 1 to 3.
    """Acts on what cycle.send() said (see `send_status` in cycle.rs)."""
    if status == 3:
        arm_flush(loop, cycle)
    elif status == 1:
        waiter = loop.create_future()
        arm_flush(loop, cycle, waiter)
        await waiter
        if cycle.client_gone():
            raise ClientDisconnected(gone_message)
    elif status == 2:
        raise ClientDisconnected(gone_message)


async def h2_sent(loop, cycle, timeout):
    """An HTTP/2 send() whose bytes the flow-control window holds back (or whose
    client is gone): waits until the connection's turns have sent them, at most
    `timeout` seconds (--timeout; 0 waits forever), then the stream is cancelled."""
    if not cycle.client_gone():
        waiter = loop.create_future()
        cycle.wait_capacity(waiter)
        try:
            await (asyncio.wait_for(waiter, timeout) if timeout else waiter)
        except asyncio.TimeoutError:
            cycle.timed_out()
    if cycle.client_gone():
        raise ClientDisconnected("the client reset the HTTP/2 stream")


async def disconnected(loop, cycle):
    """receive() once the body is delivered: waits for the response to end or the
    client to go (the cycle's `areceive` returns this only then)."""
    waiter = loop.create_future()
    cycle.wait_disconnect(waiter)
    await waiter
    return {"type": "http.disconnect"}


# The exceptions that only say the client went away: for HTTP also a cancel (the
# client left and --asgi-disconnect-grace-period ran out).
HTTP_GONE = (ClientDisconnected, asyncio.CancelledError)


async def run_app(app, scope, receive, send, cycle, client_gone):
    """Runs the app and tells the cycle how it ended; `client_gone` are the exceptions
    that only say the client went away. For HTTP the worker calls it directly with
    the cycle's own receive and send, which answer at once with an awaitable that is
    already complete unless they must wait (see `sent` and `disconnected`)."""
    try:
        await app(scope, receive, send)
    except client_gone:
        cycle.app_returned()
    except BaseException as e:
        cycle.app_failed(traceback.format_exc())
        if not isinstance(e, Exception):
            raise
    else:
        cycle.app_returned()


async def run_websocket(loop, app, scope, cycle):
    """One WebSocket: the app with receive/send bound to the Rust `cycle`; frames are
    read by the worker's event loop and queued on the cycle."""

    async def receive():
        while True:
            message = cycle.receive()
            if message is not None:
                return message
            waiter = loop.create_future()
            cycle.wait(waiter)
            await waiter

    async def send(message):
        status = cycle.send(message)
        if status:
            await sent(loop, cycle, status, "the WebSocket is closed")
        if message.get("type") == "websocket.close":
            # The client has this long to answer our close frame.
            loop.call_later(5.0, cycle.close_timeout)

    await run_app(app, scope, receive, send, cycle, (ClientDisconnected,))


def serve(driver, app, loop_kind, lifespan_mode, state, grace, tick_seconds=1.0):
    """Runs the worker: lifespan startup, then the Rust event loop's readiness and a
    periodic tick on this asyncio loop until the driver says the worker is done, then
    lifespan shutdown. Returns None, or the text of a failed startup."""
    loop = new_loop(loop_kind)
    asyncio.set_event_loop(loop)
    lifespan = Lifespan(app, lifespan_mode, state)
    try:
        failure = loop.run_until_complete(lifespan.startup())
        if failure is not None:
            return failure
        done = loop.create_future()

        def tick():
            driver.tick()
            if not done.done():
                loop.call_later(tick_seconds, tick)

        def on_gone(task):
            # --asgi-disconnect-grace-period: the app may still finish on its own.
            def cancel():
                if not task.done():
                    task.cancel()
            loop.call_later(grace, cancel)

        # driver.turn handles what is ready and resolves `done` when the worker is.
        loop.add_reader(driver.fd(), driver.turn)
        driver.start(loop, done, (run_app, HTTP_GONE, functools.partial(run_websocket, loop)),
                     (functools.partial(loop.call_soon, driver.turn), on_gone,
                      functools.partial(sent, loop), functools.partial(disconnected, loop),
                      functools.partial(h2_sent, loop)))
        loop.call_soon(driver.turn)
        loop.call_later(tick_seconds, tick)
        loop.run_until_complete(done)
        loop.remove_reader(driver.fd())
        failure = loop.run_until_complete(lifespan.shutdown())
        if failure is not None:
            driver.log_error("ASGI lifespan shutdown failed: %s" % failure)
        return None
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
