//! Request bodies on their fast path and at its edges: a Content-Length body that stays
//! in memory (up to 1 MiB) is read from the socket straight into the buffer the app
//! reads; one byte more spools to a temporary file. Each worker class echoes bodies
//! just under, at and over that limit, sent whole, after the head, in small pieces and
//! with a request pipelined right behind; a body cut short is a 400 and the worker
//! serves on. Apps: tests/apps/basics.py (`/echo`), tests/apps/asgi_app.py (`echo_body`).

use std::io::Write;
use std::net::TcpStream;

use crate::client::{request, Conn, Response};
use crate::harness::{serve, Server, IO_TIMEOUT};

/// The most a body kept in memory may hold (src/http/body.rs `MEMORY_LIMIT`).
const MEMORY_LIMIT: usize = 1024 * 1024;

/// A body whose bytes say where they are, so a shifted or dropped piece shows.
fn body_of(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ (i >> 16) as u8)
        .collect()
}

fn post(len: usize) -> (Vec<u8>, Vec<u8>) {
    let body = body_of(len);
    let length = len.to_string();
    let head = request("POST", "/echo", &[("Content-Length", length.as_str())], b"");
    (head, body)
}

fn assert_echo(r: &Response, body: &[u8], what: &str) {
    assert_eq!(r.status, 200, "{what}: {r:?}");
    let first_difference = r.body.iter().zip(body).position(|(a, b)| a != b);
    assert!(
        r.body.len() == body.len() && first_difference.is_none(),
        "{what}: echoed {} bytes of {}, first difference at {first_difference:?}",
        r.body.len(),
        body.len()
    );
}

/// The three worker classes, each with an app that echoes the body it reads.
fn servers() -> Vec<(&'static str, Server)> {
    vec![
        ("sync", serve("basics:application", &[])),
        (
            "gthread",
            serve("basics:application", &["-k", "gthread", "--threads", "2"]),
        ),
        ("asgi", serve("asgi_app:echo_body", &["-k", "asgi"])),
    ]
}

#[test]
fn bodies_around_the_memory_limit_are_echoed_whole_however_they_arrive() {
    for (class, server) in servers() {
        let mut conn = Conn::open(server.port());
        for len in [3, MEMORY_LIMIT - 1, MEMORY_LIMIT, MEMORY_LIMIT + 1] {
            let (head, body) = post(len);
            // Head and body in one write: part of the body comes with the head.
            let mut whole = head.clone();
            whole.extend_from_slice(&body);
            assert_echo(
                &conn.roundtrip(&whole),
                &body,
                &format!("{class} {len} whole"),
            );
            // The head alone first: the body arrives from its first byte on.
            conn.send(&head);
            assert_echo(
                &conn.roundtrip(&body),
                &body,
                &format!("{class} {len} after"),
            );
            // A request right behind the body, in the same write: nothing of it may
            // be taken for body, and it is answered next.
            let mut pipelined = whole.clone();
            pipelined.extend(request("POST", "/echo", &[("Content-Length", "2")], b"ok"));
            conn.send(&pipelined);
            assert_echo(&conn.response(), &body, &format!("{class} {len} pipelined"));
            assert_echo(&conn.response(), b"ok", &format!("{class} {len} behind"));
        }
    }
}

#[test]
fn a_body_arriving_in_small_pieces_is_assembled_in_order() {
    let server = serve("basics:application", &[]);
    let mut conn = Conn::open(server.port());
    for len in [5000, 300 * 1024] {
        let (head, body) = post(len);
        conn.send(&head);
        // Byte by byte at first, then pieces of every size up to 997 bytes.
        let (bytewise, rest) = body.split_at(2000);
        for byte in bytewise {
            conn.send(std::slice::from_ref(byte));
        }
        for (i, piece) in rest.chunks(997).enumerate() {
            conn.send(&piece[..piece.len().min(i % 997 + 1)]);
            conn.send(&piece[piece.len().min(i % 997 + 1)..]);
        }
        assert_echo(&conn.response(), &body, &format!("{len} in pieces"));
    }
}

#[test]
fn a_body_cut_short_is_a_400_and_the_worker_serves_on() {
    for (class, server) in servers() {
        let (head, body) = post(MEMORY_LIMIT);
        let mut sock = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
        sock.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        sock.write_all(&head).unwrap();
        sock.write_all(&body[..300 * 1024]).unwrap();
        let mut conn = Conn::from_stream(sock).unwrap();
        conn.shutdown_write();
        let r = conn.response();
        assert_eq!(r.status, 400, "{class}: {r:?}");
        assert!(r.text().contains("truncated"), "{class}: {r:?}");
        let (head, body) = post(1000);
        let mut whole = head;
        whole.extend_from_slice(&body);
        let mut conn = Conn::open(server.port());
        assert_echo(&conn.roundtrip(&whole), &body, &format!("{class} after"));
    }
}

#[test]
fn the_body_limit_holds_at_the_memory_limit() {
    let limit = MEMORY_LIMIT.to_string();
    let server = serve("basics:application", &["--limit-request-body", &limit]);
    let (head, body) = post(MEMORY_LIMIT);
    let mut conn = Conn::open(server.port());
    conn.send(&head);
    assert_echo(&conn.roundtrip(&body), &body, "at the limit");
    let (head, _) = post(MEMORY_LIMIT + 1);
    let r = Conn::open(server.port()).roundtrip(&head);
    assert_eq!(r.status, 413, "{r:?}");
}
