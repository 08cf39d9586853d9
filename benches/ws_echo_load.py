"""WebSocket echo load generator for the `ws-echo` workload of compare.sh.

    ws_echo_load.py HOST PORT PATH CONNS SECONDS   load: CONNS connections, each
                                                   sends a 32-byte text message and
                                                   waits for its echo, again and again
    ws_echo_load.py --check HOST PORT PATH         one connection, one message: exit 0
                                                   if it comes back intact

The load prints a report in wrk's format (latency mean and percentiles, "N
requests in S", "Requests/sec:", socket errors), a request being one message
echoed, so compare.sh parses and reports it like wrk's output.

Why our own: wrk speaks no WebSocket, and the packaged generators either measure
something else (connection rate, throughput of one connection) or cost more CPU per
message than the servers under test. This one is asyncio protocols on uvloop with
one pre-built masked frame (RFC 6455 5.3: the key need not vary for a benchmark),
so each message costs the client a write and a few slices; it runs pinned to the
client CPU, and the figure that counts is messages per *server* CPU-second.
"""

import asyncio
import base64
import os
import sys
import time

PAYLOAD = b"m" * 32
MASK = b"\x12\x34\x56\x78"
FRAME = bytes([0x81, 0x80 | len(PAYLOAD)]) + MASK + bytes(b ^ MASK[i % 4] for i, b in enumerate(PAYLOAD))
OP_CLOSE, OP_PING = 0x8, 0x9


def pong(payload):
    masked = bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))
    return bytes([0x8A, 0x80 | len(payload)]) + MASK + masked


class Conn(asyncio.Protocol):
    """One WebSocket connection echoing PAYLOAD until `stats["stop"]`."""

    def __init__(self, host, port, path, stats, ready):
        self.stats, self.ready, self.buf, self.open = stats, ready, b"", False
        key = base64.b64encode(os.urandom(16)).decode()
        self.request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n").encode()
        self.transport, self.sent_at = None, 0.0

    def connection_made(self, transport):
        self.transport = transport
        transport.write(self.request)

    def send(self):
        self.sent_at = time.perf_counter()
        self.transport.write(FRAME)

    def fail(self, why):
        self.stats["errors"][why] = self.stats["errors"].get(why, 0) + 1
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(why))
        self.transport.close()

    def data_received(self, data):
        self.buf += data
        if not self.open:
            head, sep, rest = self.buf.partition(b"\r\n\r\n")
            if not sep:
                return
            if not head.startswith(b"HTTP/1.1 101"):
                return self.fail("handshake: " + head.split(b"\r\n")[0].decode("latin-1"))
            self.open, self.buf = True, rest
            self.ready.set_result(self)
        while len(self.buf) >= 2:
            op, n = self.buf[0] & 0x0F, self.buf[1] & 0x7F
            start = 2
            if n == 126:
                start, n = 4, int.from_bytes(self.buf[2:4], "big")
            elif n == 127:
                start, n = 10, int.from_bytes(self.buf[2:10], "big")
            if len(self.buf) < start + n:
                return
            payload, self.buf = self.buf[start:start + n], self.buf[start + n:]
            if op == OP_PING:
                self.transport.write(pong(payload))
            elif op == OP_CLOSE:
                return self.fail("read")
            elif payload != PAYLOAD:
                return self.fail("read")
            else:
                self.echoed()

    def echoed(self):
        st = self.stats
        if st["measuring"]:
            st["count"] += 1
            st["lat"].append(time.perf_counter() - self.sent_at)
        if not st["stop"]:
            self.send()

    def connection_lost(self, exc):
        if not self.stats["stop"]:
            self.fail("connect" if not self.open else "read")


def fmt_ms(seconds):
    return f"{seconds * 1000:.2f}ms"


async def run(host, port, path, conns, seconds):
    loop = asyncio.get_running_loop()
    stats = {"count": 0, "lat": [], "errors": {}, "stop": False, "measuring": False}
    ready = []
    for _ in range(conns):
        fut = loop.create_future()
        await loop.create_connection(lambda f=fut: Conn(host, port, path, stats, f), host, port)
        ready.append(fut)
    # Handshakes get 10 s: a server that leaves some unanswered is measured on the
    # others (and the report says how many opened) rather than hanging the run.
    await asyncio.wait(ready, timeout=10)
    for fut in ready:
        if not fut.done():
            stats["errors"]["timeout"] = stats["errors"].get("timeout", 0) + 1
    opened = [f.result() for f in ready if f.done() and not f.exception()]
    stats["measuring"] = True
    t0 = time.perf_counter()
    for c in opened:
        c.send()
    await asyncio.sleep(seconds)
    stats["stop"], stats["measuring"] = True, False
    wall = time.perf_counter() - t0
    for c in opened:
        c.transport.close()
    lat = sorted(stats["lat"])
    n = len(lat)
    pct = (lambda q: fmt_ms(lat[min(n - 1, int(q * n))])) if n else (lambda q: "nan")
    mean = fmt_ms(sum(lat) / n) if n else "0ms"
    print(f"Running {seconds}s WebSocket echo test @ ws://{host}:{port}{path}")
    print(f"  {conns} connections ({len(opened)} opened), {len(PAYLOAD)}-byte text messages")
    print(f"    Latency   {mean}")
    print("  Latency Distribution")
    for q in (50, 75, 90, 99):
        print(f"     {q}%   {pct(q / 100)}")
    print(f"  {n} requests in {wall:.2f}s")
    errs = stats["errors"]
    if errs:
        print(f"  Socket errors: connect {errs.get('connect', 0)}, read {errs.get('read', 0)}, "
              f"write 0, timeout {errs.get('timeout', 0)}")
        for why in sorted(k for k in errs if k not in ("connect", "read", "timeout")):
            print(f"  ({why}: {errs[why]})")
    print(f"Requests/sec: {n / wall:.2f}")


async def check(host, port, path):
    loop = asyncio.get_running_loop()
    stats = {"count": 0, "lat": [], "errors": {}, "stop": False, "measuring": True}
    fut = loop.create_future()
    await loop.create_connection(lambda: Conn(host, port, path, stats, fut), host, port)
    conn = await asyncio.wait_for(fut, 10)
    stats["stop"] = True  # one echo, then stop sending
    conn.send()
    deadline = time.monotonic() + 10
    while stats["count"] == 0 and not stats["errors"] and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    conn.transport.close()
    if stats["count"] != 1:
        sys.exit(f"no echo of a {len(PAYLOAD)}-byte text message ({stats['errors'] or 'timeout'})")


def main(argv):
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    if argv[:1] == ["--check"]:
        host, port, path = argv[1:4]
        asyncio.run(check(host, int(port), path))
    else:
        host, port, path, conns, seconds = argv[:5]
        asyncio.run(run(host, int(port), path, int(conns), float(seconds)))


if __name__ == "__main__":
    main(sys.argv[1:])
