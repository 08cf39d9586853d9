"""Hold N idle keep-alive connections open against a server, for the `idle-1000`
workload of benches/compare.sh.

    python3 benches/hold_idle.py PORT N

Each connection sends one GET / and reads its answer (so the server has accepted and
served it, and holds it as an idle keep-alive connection), then stays open and silent.
Prints "holding N" once all are established, then waits until stdin closes or it is
terminated. Connections the server closed (or reset, or wrote to) while they were held
are counted and reported on exit.
"""

import socket
import sys


def main() -> int:
    port, count = int(sys.argv[1]), int(sys.argv[2])
    request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    held = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                raise SystemExit("server closed a connection during setup")
            data += chunk
        held.append(s)
    print(f"holding {len(held)}", flush=True)
    sys.stdin.read()
    closed = 0
    for s in held:
        s.setblocking(False)
        try:
            s.recv(1)  # b"" (closed) or unsolicited bytes (e.g. a 408 before closing)
            closed += 1
        except BlockingIOError:
            pass  # still open and silent
        except OSError:
            closed += 1  # reset
    print(f"closed by server while held: {closed}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
