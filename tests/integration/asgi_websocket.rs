//! WebSockets under `-k asgi`: the handshake and its refusals, echo of text and binary,
//! ping/pong, closing from either side, the message size limit, a FastAPI endpoint,
//! and the Autobahn conformance cases 1–8 and 10 through PyPI's `kosoku`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::asgi::serve_asgi;
use crate::client::get;
use crate::harness::{venv_dir, IO_TIMEOUT};
use crate::json::Json;

/// A minimal RFC 6455 client: masked frames out, frames in.
struct WsClient {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl WsClient {
    /// Opens `path` and returns the client with the server's response head.
    fn connect(port: u16, path: &str, extra: &str) -> (WsClient, String) {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut client = WsClient {
            stream,
            buf: Vec::new(),
        };
        let head = loop {
            if let Some(end) = client.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&client.buf[..end + 4]).into_owned();
                client.buf.drain(..end + 4);
                break head;
            }
            assert!(client.fill(), "closed before the handshake answer");
        };
        (client, head)
    }

    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 65536];
        match self.stream.read(&mut chunk) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    fn send(&mut self, opcode: u8, payload: &[u8]) {
        let mask = [0x37u8, 0xfa, 0x21, 0x3d];
        let mut out = vec![0x80 | opcode];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n <= 0xffff => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&out).unwrap();
    }

    /// The next frame (opcode, payload), or None when the server closed the socket.
    fn frame(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if self.buf.len() >= 2 {
                let (len, at) = match self.buf[1] & 0x7f {
                    126 if self.buf.len() >= 4 => {
                        (u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize, 4)
                    }
                    127 if self.buf.len() >= 10 => (
                        u64::from_be_bytes(self.buf[2..10].try_into().unwrap()) as usize,
                        10,
                    ),
                    126 | 127 => (usize::MAX, 0),
                    n => (n as usize, 2),
                };
                if len != usize::MAX && self.buf.len() >= at + len {
                    let opcode = self.buf[0] & 0x0f;
                    let payload = self.buf[at..at + len].to_vec();
                    self.buf.drain(..at + len);
                    return Some((opcode, payload));
                }
            }
            if !self.fill() {
                return None;
            }
        }
    }
}

#[test]
fn echo_ping_subprotocol_and_a_close_from_the_app() {
    let server = serve_asgi("asgi_app:ws_echo", &[]);
    let (mut ws, head) = WsClient::connect(
        server.port(),
        "/chat",
        "Sec-WebSocket-Protocol: chat, superchat\r\n",
    );
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(
        head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
        "{head}"
    );
    assert!(head.contains("Sec-WebSocket-Protocol: chat\r\n"), "{head}");
    ws.send(0x1, "héllo".as_bytes());
    assert_eq!(ws.frame(), Some((0x1, "héllo".as_bytes().to_vec())));
    let big: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
    ws.send(0x2, &big);
    assert_eq!(ws.frame(), Some((0x2, big)));
    ws.send(0x9, b"are you there");
    assert_eq!(ws.frame(), Some((0xA, b"are you there".to_vec())));
    ws.send(0x1, b"close-please");
    let (opcode, payload) = ws.frame().unwrap();
    assert_eq!((opcode, &payload[..2]), (0x8, &4001u16.to_be_bytes()[..]));
    assert_eq!(&payload[2..], b"asked to");
    ws.send(0x8, &4001u16.to_be_bytes());
    assert_eq!(
        ws.frame(),
        None,
        "the server closes the socket after the closing handshake"
    );
}

#[test]
fn a_close_from_the_client_is_answered_and_a_protocol_error_closes_with_1002() {
    let server = serve_asgi("asgi_app:ws_echo", &[]);
    let (mut ws, _) = WsClient::connect(server.port(), "/", "");
    ws.send(0x8, &[0x03, 0xe8, b'b', b'y', b'e']);
    assert_eq!(ws.frame(), Some((0x8, vec![0x03, 0xe8])));
    assert_eq!(ws.frame(), None);
    let (mut ws, _) = WsClient::connect(server.port(), "/", "");
    ws.stream.write_all(&[0x81, 0x02, b'h', b'i']).unwrap(); // unmasked: forbidden
    let (opcode, payload) = ws.frame().unwrap();
    assert_eq!((opcode, &payload[..2]), (0x8, &1002u16.to_be_bytes()[..]));
    assert_eq!(
        get(server.port(), "/").text(),
        "Hello, World!",
        "the worker serves on"
    );
}

#[test]
fn a_message_over_the_size_limit_closes_with_1009() {
    let server = serve_asgi(
        "asgi_app:ws_echo",
        &["--websocket-max-message-size", "1000"],
    );
    let (mut ws, _) = WsClient::connect(server.port(), "/", "");
    ws.send(0x2, &[1u8; 999]);
    assert_eq!(ws.frame().map(|f| f.1.len()), Some(999));
    ws.send(0x2, &[1u8; 1001]);
    let (opcode, payload) = ws.frame().unwrap();
    assert_eq!((opcode, &payload[..2]), (0x8, &1009u16.to_be_bytes()[..]));
}

#[test]
fn refused_handshakes_get_http_answers() {
    let server = serve_asgi("asgi_app:ws_echo", &[]);
    let (_, head) = WsClient::connect(server.port(), "/close-first", "");
    assert!(head.starts_with("HTTP/1.1 403 Forbidden"), "{head}");
    let (mut ws, head) = WsClient::connect(server.port(), "/deny", "");
    assert!(head.starts_with("HTTP/1.1 401 Unauthorized"), "{head}");
    assert!(head.contains("content-type: text/plain"), "{head}");
    while ws.fill() {}
    assert_eq!(ws.buf, b"no entry");
    // A handshake that is not RFC 6455's never reaches the app.
    let mut bad = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    bad.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    bad.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = bad.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request") && answer.contains("Sec-WebSocket-Key"),
        "{answer}"
    );
}

#[test]
fn a_fastapi_websocket_endpoint_echoes_json_and_sees_the_disconnect() {
    let server = serve_asgi("asgi_fastapi:app", &[]);
    let (mut ws, head) = WsClient::connect(server.port(), "/ws/lobby", "");
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    ws.send(0x1, b"hi");
    let (opcode, payload) = ws.frame().unwrap();
    assert_eq!(opcode, 0x1);
    let doc = Json::parse(std::str::from_utf8(&payload).unwrap());
    assert_eq!(
        (doc.str_at("room"), doc.str_at("echo"), doc.str_at("db")),
        ("lobby", "hi", "connected at startup")
    );
    ws.send(0x8, &1000u16.to_be_bytes());
    assert!(matches!(ws.frame(), Some((0x8, _))));
    let deadline = std::time::Instant::now() + IO_TIMEOUT;
    loop {
        let doc = Json::parse(&get(server.port(), "/ws-disconnects").text());
        if doc.at("disconnects").as_i64() == Some(1) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "FastAPI never saw WebSocketDisconnect"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Autobahn's cases 1–8 and 10 (9 is performance, 12 and 13 compression) with PyPI's
/// kosoku runner against the echo app: every case must pass.
#[test]
fn autobahn_cases_pass_through_kosoku() {
    let kosoku = venv_dir().join("bin/kosoku");
    assert!(
        kosoku.exists(),
        "{} is missing: the test setup installs kosoku",
        kosoku.display()
    );
    let server = serve_asgi("asgi_app:ws_echo", &[]);
    let out_dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(&kosoku)
        .args(["-x", "9.*", "-x", "12.*", "-x", "13.*", "-p", "4", "-o"])
        .arg(out_dir.path())
        .arg(format!("127.0.0.1:{}", server.port()))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "kosoku failed:\n{text}\n{}",
        failed_reports(out_dir.path())
    );
    assert!(text.contains("247 cases passed"), "{text}");
}

/// The reports kosoku wrote for failed cases (the events it expected and saw), so a
/// failure says what differed without rerunning it.
fn failed_reports(dir: &std::path::Path) -> String {
    let mut shown = String::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    // One JSON file per case (index.json lists them all, the .html repeat them).
    let per_case = |p: &std::path::Path| {
        p.extension().is_some_and(|e| e == "json") && !p.ends_with("index.json")
    };
    for path in files.into_iter().filter(|p| per_case(p)) {
        let Ok(report) = std::fs::read_to_string(&path) else {
            continue;
        };
        if report.contains("FAILED") && shown.len() < 20_000 {
            let end = report.len().min(6_000);
            let cut = (0..=end)
                .rev()
                .find(|&i| report.is_char_boundary(i))
                .unwrap_or(0);
            shown += &format!("--- {}\n{}\n", path.display(), &report[..cut]);
        }
    }
    shown
}

/// Many clients opening WebSockets at once are all answered: the worker keeps
/// accepting while the open sockets keep it busy (no socket event announces the
/// connections still queued on the listener).
#[test]
fn fifty_websockets_opened_at_once_are_all_accepted() {
    let server = serve_asgi("asgi_app:ws_echo", &[]);
    let port = server.port();
    let barrier = std::sync::Barrier::new(50);
    let opened = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..50)
            .map(|i| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    let (mut ws, head) = WsClient::connect(port, "/", "");
                    assert!(head.starts_with("HTTP/1.1 101 "), "client {i}: {head}");
                    ws.send(0x1, format!("hi {i}").as_bytes());
                    let echo = ws.frame();
                    barrier.wait(); // every socket stays open until all have echoed
                    echo == Some((0x1, format!("hi {i}").into_bytes()))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|ok| *ok)
            .count()
    });
    assert_eq!(opened, 50);
    assert_eq!(get(port, "/").text(), "Hello, World!");
}
