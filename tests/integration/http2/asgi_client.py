"""HTTP/2 clients for tests/integration/http2_asgi.rs (tests/apps/asgi_h2_app.py
under -k asgi), run with the test venv's Python; each prints JSON.

    asgi_client.py fastapi PORT   httpx (http2=True): FastAPI GET with path and query
                                  params, POST JSON, a 422, a StreamingResponse, the
                                  scope, a 3 MiB echo
    asgi_client.py frames PORT    the `h2` package: /raw/trailers (headers, body,
                                  trailers) and /raw/hints (the 103 before the 200)
    asgi_client.py reset PORT     the `h2` package: reads 64 KiB of /raw/endless, then
                                  resets the stream (CANCEL)
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from client import connect  # noqa: E402


def run_fastapi(port):
    import httpx
    base = f'https://127.0.0.1:{port}'
    body = bytes((i * 7 + 3) % 256 for i in range(3 * 1024 * 1024))
    with httpx.Client(http2=True, verify=False, timeout=60) as client:
        item = client.get(f'{base}/items/5', params={'q': 'x'})
        created = client.post(f'{base}/items', json={'name': 'pen', 'price': 2.5})
        invalid = client.post(f'{base}/items', json={'name': 'pen'})
        stream = client.get(f'{base}/stream')
        scope = client.get(f'{base}/raw/scope')
        echo = client.post(f'{base}/raw/echo', content=body)
    return {
        'versions': sorted({r.http_version for r in (item, created, invalid, stream, echo)}),
        'item': item.json(),
        'created': created.json(),
        'invalid_status': invalid.status_code,
        'invalid_loc': invalid.json()['detail'][0]['loc'],
        'stream': stream.text,
        'scope': scope.json(),
        'echo_status': echo.status_code,
        'echo_intact': echo.content == body,
    }


def h2_connection():
    import h2.config
    import h2.connection
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    return conn


def get(sock, conn, port, path):
    """One GET on the connection: every event of its stream, as JSON-able dicts."""
    import h2.events
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(':method', 'GET'), (':path', path), (':scheme', 'https'),
                            (':authority', f'127.0.0.1:{port}')], end_stream=True)
    sock.sendall(conn.data_to_send())
    seen = {'informational': [], 'headers': None, 'body': '', 'trailers': None}
    ended = False
    while not ended:
        data = sock.recv(65536)
        if not data:
            break
        for event in conn.receive_data(data):
            if getattr(event, 'stream_id', None) != sid:
                continue
            if isinstance(event, h2.events.InformationalResponseReceived):
                seen['informational'].append(decode(event.headers))
            elif isinstance(event, h2.events.ResponseReceived):
                seen['headers'] = decode(event.headers)
            elif isinstance(event, h2.events.DataReceived):
                seen['body'] += event.data.decode('latin-1')
                conn.acknowledge_received_data(event.flow_controlled_length, sid)
            elif isinstance(event, h2.events.TrailersReceived):
                seen['trailers'] = decode(event.headers)
            elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                ended = True
        sock.sendall(conn.data_to_send())
    return seen


def decode(headers):
    return {(n.decode() if isinstance(n, bytes) else n): (v.decode() if isinstance(v, bytes) else v)
            for n, v in headers}


def run_frames(port):
    sock = connect(port, ['h2'])
    conn = h2_connection()
    sock.sendall(conn.data_to_send())
    return {'trailers': get(sock, conn, port, '/raw/trailers'),
            'hints': get(sock, conn, port, '/raw/hints')}


def run_reset(port):
    import h2.errors
    import h2.events
    sock = connect(port, ['h2'])
    conn = h2_connection()
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(':method', 'GET'), (':path', '/raw/endless'), (':scheme', 'https'),
                            (':authority', f'127.0.0.1:{port}')], end_stream=True)
    sock.sendall(conn.data_to_send())
    received = 0
    while received < 64 * 1024:
        data = sock.recv(65536)
        if not data:
            break
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.DataReceived):
                received += len(event.data)
                conn.acknowledge_received_data(event.flow_controlled_length, sid)
        sock.sendall(conn.data_to_send())
    conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
    sock.sendall(conn.data_to_send())
    # The server must see the reset while the connection is still up.
    time.sleep(1.0)
    sock.close()
    return {'received': received}


if __name__ == '__main__':
    mode, port = sys.argv[1], int(sys.argv[2])
    run = {'fastapi': run_fastapi, 'frames': run_frames, 'reset': run_reset}[mode]
    print(json.dumps(run(port)))
