"""HTTP/2 clients for tests/integration/http2.rs, run with the test venv's Python.

    client.py httpx PORT            httpx (http2=True): GET /environ, then POST /echo
                                    with a 2 MiB body; prints JSON
    client.py raw PORT REQUESTS [SETTINGS]
                                    the `h2` package over TLS, header validation off:
                                    REQUESTS is a JSON list of requests (a header list,
                                    or {"headers": [...], "body": N} to send N bytes in
                                    DATA as flow control allows), sent one after another
                                    on ONE connection; prints JSON of each answer's
                                    status, body and reset code, and any GOAWAY;
                                    SETTINGS: the client's own, as JSON
                                    ({"initial_window_size": 0})
    client.py flood PORT KIND N     N abusive frames of KIND (ping, settings, empty-data,
                                    reset, continuation, hpack-bomb, streams) after the preface,
                                    sent in pieces with reads between; prints the
                                    server's GOAWAY code and whether it closed
    client.py alpn PORT             which protocol the server picks when a client
                                    offers h2 and http/1.1
"""
import json
import socket
import ssl
import sys
import time


def tls_context(protocols):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(protocols)
    return ctx


def connect(port, protocols):
    sock = socket.create_connection(('127.0.0.1', port), timeout=30)
    return tls_context(protocols).wrap_socket(sock, server_hostname='localhost')


def run_httpx(port):
    import httpx
    body = bytes((i * 7 + 3) % 256 for i in range(2 * 1024 * 1024))
    with httpx.Client(http2=True, verify=False, timeout=60) as client:
        got = client.get(f'https://127.0.0.1:{port}/environ')
        echo = client.post(f'https://127.0.0.1:{port}/echo', content=body)
    return {
        'get_version': got.http_version,
        'get_status': got.status_code,
        'environ': got.json(),
        'echo_version': echo.http_version,
        'echo_status': echo.status_code,
        'echo_intact': echo.content == body,
        'echo_length': len(echo.content),
    }


def run_raw(port, requests, settings=None):
    import h2.config
    import h2.connection
    conn = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=True, validate_outbound_headers=False,
        normalize_outbound_headers=False, validate_inbound_headers=False))
    if settings:
        import h2.settings
        codes = {name: getattr(h2.settings.SettingCodes, name.upper()) for name in settings}
        conn.local_settings = h2.settings.Settings(
            client=True, initial_values={codes[k]: v for k, v in settings.items()})
    sock = connect(port, ['h2'])
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    state = {'goaway': None}
    answers = []
    for request in requests:
        if isinstance(request, dict):
            headers, body_len = request['headers'], request.get('body', 0)
        else:
            headers, body_len = request, 0
        stream_id = conn.get_next_available_stream_id()
        answer = {'status': None, 'body': '', 'reset': None, 'ended': False}
        conn.send_headers(stream_id, [(n, v) for n, v in headers], end_stream=body_len == 0)
        sock.sendall(conn.data_to_send())
        left = body_len
        while left > 0 and not answer['ended'] and state['goaway'] is None:
            n = min(left, conn.local_flow_control_window(stream_id), conn.max_outbound_frame_size)
            if n > 0:
                conn.send_data(stream_id, b'x' * n, end_stream=n == left)
                left -= n
                sock.sendall(conn.data_to_send())
            elif not receive(sock, conn, stream_id, answer, state):
                break
        while not answer['ended'] and state['goaway'] is None:
            if not receive(sock, conn, stream_id, answer, state):
                break
        answers.append(answer)
    return {'answers': answers, 'goaway': state['goaway']}


def run_batch(port, requests, step):
    """All the requests' frames (HEADERS, DATA, trailers) written at once, then sent
    `step` bytes per write (0: in one), so the server reads several header blocks,
    or parts of them, per read; then every answer, in the requests' order."""
    import h2.config
    import h2.connection
    conn = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=True, validate_outbound_headers=False,
        normalize_outbound_headers=False, validate_inbound_headers=False))
    sock = connect(port, ['h2'])
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    ids, answers = [], {}
    for request in requests:
        stream_id = conn.get_next_available_stream_id()
        body, trailers = request.get('body', 0), request.get('trailers')
        conn.send_headers(stream_id, request['headers'],
                          end_stream=body == 0 and not trailers)
        if body:
            conn.send_data(stream_id, b'x' * body, end_stream=not trailers)
        if trailers:
            conn.send_headers(stream_id, trailers, end_stream=True)
        ids.append(stream_id)
        answers[stream_id] = {'status': None, 'body': '', 'reset': None, 'ended': False}
    data = conn.data_to_send()
    for at in range(0, len(data), step or len(data)):
        sock.sendall(data[at:at + (step or len(data))])
    state = {'goaway': None}
    import h2.events
    while not all(a['ended'] for a in answers.values()) and state['goaway'] is None:
        chunk = sock.recv(65536)
        if not chunk:
            break
        for event in conn.receive_data(chunk):
            answer = answers.get(getattr(event, 'stream_id', None))
            if isinstance(event, h2.events.ResponseReceived):
                answer['status'] = int(dict(event.headers)[b':status'])
            elif isinstance(event, h2.events.DataReceived):
                answer['body'] += event.data.decode('latin-1')
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                answer['ended'] = True
            elif isinstance(event, h2.events.StreamReset):
                answer['reset'] = int(event.error_code)
                answer['ended'] = True
            elif isinstance(event, h2.events.ConnectionTerminated):
                state['goaway'] = int(event.error_code)
        sock.sendall(conn.data_to_send())
    return {'answers': [answers[i] for i in ids], 'goaway': state['goaway']}


def receive(sock, conn, stream_id, answer, state):
    """Reads once and records the events of `stream_id`; False when the socket closed."""
    import h2.events
    data = sock.recv(65536)
    if not data:
        return False
    for event in conn.receive_data(data):
        mine = getattr(event, 'stream_id', None) == stream_id
        if isinstance(event, h2.events.ResponseReceived) and mine:
            answer['status'] = int(dict(event.headers)[b':status'])
        elif isinstance(event, h2.events.DataReceived) and mine:
            answer['body'] += event.data.decode('latin-1')
            conn.acknowledge_received_data(event.flow_controlled_length, stream_id)
        elif isinstance(event, h2.events.StreamEnded) and mine:
            answer['ended'] = True
        elif isinstance(event, h2.events.StreamReset) and mine:
            answer['reset'] = int(event.error_code)
            answer['ended'] = True
        elif isinstance(event, h2.events.ConnectionTerminated):
            state['goaway'] = int(event.error_code)
    sock.sendall(conn.data_to_send())
    return True


def flood_frames(kind, count):
    """The abusive frames after the preface and SETTINGS, as bytes."""
    import hpack
    from hyperframe.frame import (ContinuationFrame, DataFrame, HeadersFrame, PingFrame,
                                  RstStreamFrame, SettingsFrame)
    encoder = hpack.Encoder()
    get = [(':method', 'GET'), (':path', '/pid'), (':scheme', 'https'),
           (':authority', 'localhost')]
    out = []
    if kind == 'ping':
        out = [PingFrame(0, b'%08d' % i).serialize() for i in range(count)]
    elif kind == 'settings':
        out = [SettingsFrame(0, {SettingsFrame.INITIAL_WINDOW_SIZE: 65535}).serialize()
               for _ in range(count)]
    elif kind == 'empty-data':
        out = [HeadersFrame(1, encoder.encode(get + [(':method', 'POST')][:0]),
                            flags=['END_HEADERS']).serialize()]
        out += [DataFrame(1, b'').serialize() for _ in range(count)]
    elif kind == 'reset':
        for i in range(count):
            sid = 2 * i + 1
            out.append(HeadersFrame(sid, encoder.encode(get),
                                    flags=['END_HEADERS', 'END_STREAM']).serialize())
            out.append(RstStreamFrame(sid, 8).serialize())
    elif kind == 'continuation':
        out = [HeadersFrame(1, encoder.encode(get)).serialize()]
        for i in range(count):
            block = encoder.encode([('x-pad-%d' % i, 'v' * 40)])
            out.append(ContinuationFrame(1, block).serialize())
    elif kind == 'hpack-bomb':
        # One 4 KiB entry in the dynamic table, then a block naming it over and over.
        block = encoder.encode(get + [('x-bomb', 'b' * 4000)])
        out = [HeadersFrame(1, block, flags=['END_HEADERS', 'END_STREAM']).serialize()]
        index = 62  # the newest dynamic entry
        ref = bytes([0x80 | index])
        for sid in (3, 5):
            head = encoder.encode(get)
            out.append(HeadersFrame(sid, head + ref * 16000,
                                    flags=['END_HEADERS', 'END_STREAM']).serialize())
        # Then an ordinary request on the same connection.
        out.append(HeadersFrame(7, encoder.encode(get),
                                flags=['END_HEADERS', 'END_STREAM']).serialize())
    elif kind == 'streams':
        for i in range(count):
            out.append(HeadersFrame(2 * i + 1, encoder.encode(get),
                                    flags=['END_HEADERS', 'END_STREAM']).serialize())
    else:
        raise SystemExit(f'unknown flood {kind}')
    return out


def run_flood(port, kind, count):
    """Sends the flood in pieces, reading between them; reports the server's GOAWAY
    code and whether it closed the connection."""
    import select
    from hyperframe.frame import Frame, GoAwayFrame, HeadersFrame, RstStreamFrame, SettingsFrame
    # Built first: under load, building them can take longer than the server's
    # keep-alive, which would close the idle connection before the flood.
    frames = flood_frames(kind, count)
    sock = connect(port, ['h2'])
    sock.sendall(b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' + SettingsFrame(0).serialize())
    received = bytearray()
    closed = False

    def parsed():
        at = 0
        while len(received) - at >= 9:
            frame, length = Frame.parse_frame_header(memoryview(received[at:at + 9]))
            if len(received) - at - 9 < length:
                break
            frame.parse_body(memoryview(received[at + 9:at + 9 + length]))
            yield frame
            at += 9 + length

    def goaway_code():
        codes = [f.error_code for f in parsed() if isinstance(f, GoAwayFrame)]
        return codes[0] if codes else None

    def read(timeout):
        nonlocal closed
        while not closed and select.select([sock], [], [], timeout)[0]:
            try:
                data = sock.recv(65536)
            except (ConnectionError, ssl.SSLError):
                closed = True
                return
            if not data:
                closed = True
                return
            received.extend(data)
            timeout = 0

    for at in range(0, len(frames), 50):
        if closed or goaway_code() is not None:
            break
        try:
            sock.sendall(b''.join(frames[at:at + 50]))
        except (ConnectionError, ssl.SSLError):
            break
        read(0)
    # Until the server closes (after a GOAWAY, or --keep-alive once all is answered).
    deadline = time.monotonic() + 30
    while not closed and time.monotonic() < deadline:
        read(1)
    resets = {str(f.stream_id): f.error_code for f in parsed() if isinstance(f, RstStreamFrame)}
    answered = sorted(f.stream_id for f in parsed() if isinstance(f, HeadersFrame))
    return {'goaway': goaway_code(), 'closed': closed, 'sent_all': at + 50 >= len(frames),
            'resets': resets, 'answered': answered}


def run_reset(port, big, then):
    """GET `big`, reset it (CANCEL) after its first DATA, then GET `then` on the same
    connection: what each stream got."""
    import h2.config
    import h2.connection
    import h2.errors
    import h2.events
    import h2.exceptions
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    sock = connect(port, ['h2'])
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    got, status, ended, bodies = {}, {}, set(), {}

    def get(path):
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(':method', 'GET'), (':scheme', 'https'),
                                (':authority', f'127.0.0.1:{port}'), (':path', path)],
                          end_stream=True)
        sock.sendall(conn.data_to_send())
        got[sid], bodies[sid] = 0, b''
        return sid

    def pump(done):
        while not done():
            data = sock.recv(65536)
            if not data:
                return
            for event in conn.receive_data(data):
                sid = getattr(event, 'stream_id', None)
                if isinstance(event, h2.events.DataReceived):
                    got[sid] = got.get(sid, 0) + len(event.data)
                    bodies[sid] = bodies.get(sid, b'') + event.data
                    try:
                        conn.acknowledge_received_data(event.flow_controlled_length, sid)
                    except h2.exceptions.StreamClosedError:
                        pass
                elif isinstance(event, h2.events.ResponseReceived):
                    status[sid] = int(dict(event.headers)[b':status'])
                elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                    ended.add(sid)
            sock.sendall(conn.data_to_send())

    first = get(big)
    pump(lambda: got[first] > 0)
    conn.reset_stream(first, h2.errors.ErrorCodes.CANCEL)
    sock.sendall(conn.data_to_send())
    second = get(then)
    pump(lambda: second in ended)
    sock.close()
    return {'first_bytes': got[first], 'second_status': status.get(second),
            'second_body': bodies[second].decode('latin-1')}


def run_alpn(port):
    sock = connect(port, ['h2', 'http/1.1'])
    chosen = sock.selected_alpn_protocol()
    sock.close()
    return {'alpn': chosen}


def main():
    command, port = sys.argv[1], int(sys.argv[2])
    if command == 'httpx':
        out = run_httpx(port)
    elif command == 'raw':
        settings = json.loads(sys.argv[4]) if len(sys.argv) > 4 else None
        out = run_raw(port, json.loads(sys.argv[3]), settings)
    elif command == 'batch':
        out = run_batch(port, json.loads(sys.argv[3]), int(sys.argv[4]))
    elif command == 'flood':
        out = run_flood(port, sys.argv[3], int(sys.argv[4]))
    elif command == 'reset':
        out = run_reset(port, sys.argv[3], sys.argv[4])
    elif command == 'alpn':
        out = run_alpn(port)
    else:
        raise SystemExit(f'unknown command {command}')
    print(json.dumps(out))


if __name__ == '__main__':
    main()
