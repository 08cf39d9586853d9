//! ASGI's `http.response.pathsend`: a file sent by the server (sendfile(2), or in
//! pieces under `--no-sendfile` and TLS), its framing, keep-alive and pipelining
//! behind it, a slow reader, the errors an app can make, and Starlette's
//! FileResponse using it.

use std::io::{Read, Write};

use crate::asgi::serve_asgi;
use crate::client::{request, Conn};
use crate::harness::IO_TIMEOUT;

/// A file of `len` bytes whose content shows any misplaced byte.
fn sample_file(dir: &tempfile::TempDir, name: &str, len: usize) -> (String, Vec<u8>) {
    let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    let path = dir.path().join(name);
    std::fs::write(&path, &data).unwrap();
    (path.to_str().unwrap().to_string(), data)
}

fn target(path: &str) -> String {
    format!("/?path={path}")
}

#[test]
fn a_file_is_sent_whole_with_its_length_and_the_connection_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (path, data) = sample_file(&dir, "big.bin", 3 << 20);
    for extra in [&[][..], &["--no-sendfile"][..]] {
        let server = serve_asgi("asgi_app:pathsend", extra);
        let mut conn = Conn::open(server.port());
        for _ in 0..2 {
            let resp = conn.roundtrip(&request("GET", &target(&path), &[], b""));
            assert_eq!(resp.status, 200, "{extra:?}");
            assert_eq!(resp.header("content-length"), Some("3145728"));
            assert!(
                resp.body == data,
                "{extra:?}: the body differs from the file"
            );
        }
        let head = {
            conn.send(&request("HEAD", &target(&path), &[], b""));
            conn.head_response()
        };
        assert_eq!(head.header("content-length"), Some("3145728"));
        assert!(head.body.is_empty());
        let declared = conn.roundtrip(&request(
            "GET",
            &format!("{}&len={}", target(&path), data.len()),
            &[],
            b"",
        ));
        assert!(declared.body == data);
    }
}

#[test]
fn pipelined_requests_behind_a_file_are_answered_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (big, big_data) = sample_file(&dir, "big.bin", 2 << 20);
    let (small, small_data) = sample_file(&dir, "small.bin", 1000);
    for extra in [&[][..], &["--no-sendfile"][..]] {
        let server = serve_asgi("asgi_app:pathsend", extra);
        let mut conn = Conn::open(server.port());
        let mut batch = request("GET", &target(&big), &[], b"");
        batch.extend(request("GET", &target(&small), &[], b""));
        batch.extend(request("GET", &target(&big), &[], b""));
        conn.send(&batch);
        for expected in [&big_data, &small_data, &big_data] {
            let resp = conn.response();
            assert_eq!(resp.status, 200);
            assert!(resp.body == *expected, "{extra:?}: a response out of order");
        }
    }
}

#[test]
fn a_slow_reader_gets_the_whole_file_while_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let (path, data) = sample_file(&dir, "big.bin", 8 << 20);
    let server = serve_asgi("asgi_app:pathsend", &[]);
    let mut slow = std::net::TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    slow.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    slow.write_all(&request(
        "GET",
        &target(&path),
        &[("Connection", "close")],
        b"",
    ))
    .unwrap();
    // The file cannot fit in the socket buffers: the worker must serve others while
    // it waits for this reader.
    let mut first = vec![0u8; 64 * 1024];
    slow.read_exact(&mut first).unwrap();
    let other =
        Conn::open(server.port()).roundtrip(&request("GET", "/?path=/etc/hostname", &[], b""));
    assert_eq!(other.status, 200);
    let mut rest = Vec::new();
    slow.read_to_end(&mut rest).unwrap();
    first.extend(rest);
    let body_at = first.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(
        first[body_at..] == data[..],
        "the slow reader's body differs"
    );
}

#[test]
fn a_bad_pathsend_is_a_500_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let (path, data) = sample_file(&dir, "f.bin", 100);
    let missing = dir.path().join("missing.bin");
    let mut server = serve_asgi("asgi_app:pathsend", &[]);
    let cases = [
        ("/?path=relative.bin".to_string(), "is not an absolute path"),
        (target(missing.to_str().unwrap()), "missing.bin"),
        (
            target(dir.path().to_str().unwrap()),
            "is not a regular file",
        ),
        (format!("{}&len=99", target(&path)), "content-length 99 but"),
    ];
    for (target, message) in cases {
        let mark = server.log_mark();
        let resp = Conn::open(server.port()).roundtrip(&request("GET", &target, &[], b""));
        assert_eq!(resp.status, 500, "{target}");
        server.wait_for_log_since(mark, message, IO_TIMEOUT);
    }
    let resp = Conn::open(server.port()).roundtrip(&request("GET", &target(&path), &[], b""));
    assert!(resp.body == data, "the worker serves on");
}

#[test]
fn starlettes_file_response_uses_pathsend() {
    let dir = tempfile::tempdir().unwrap();
    let (path, data) = sample_file(&dir, "report.pdf", 1 << 20);
    let server = serve_asgi("asgi_fastapi:app", &[]);
    let resp = Conn::open(server.port()).roundtrip(&request(
        "GET",
        &format!("/file?path={path}"),
        &[],
        b"",
    ));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("application/pdf"));
    assert_eq!(resp.header("x-pathsend"), Some("offered"));
    assert!(resp.body == data);
}
