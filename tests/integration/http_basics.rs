//! HTTP/1.x as a client on a raw socket sees it: keep-alive, pipelining,
//! HTTP/1.0, HEAD, framing, `Expect: 100-continue`, malformed requests.
//! Apps: examples/hello/wsgi.py and tests/apps/basics.py.

use std::thread;
use std::time::Duration;

use crate::client::{get, parse_responses, request, send_raw, Conn, Framing, Response};
use crate::harness::{serve, Server, IO_TIMEOUT};

const BASICS: &str = "basics:application";

/// `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 IMF-fixdate).
fn is_http_date(value: &str) -> bool {
    let days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    value.len() == 29
        && value.ends_with(" GMT")
        && days.contains(&&value[..3])
        && &value[3..5] == ", "
}

fn http10(method: &str, path: &str, extra: &str) -> Vec<u8> {
    format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n{extra}\r\n").into_bytes()
}

fn only_response(bytes: &[u8], head: bool) -> Response {
    let mut all = parse_responses(bytes, &[head])
        .unwrap_or_else(|e| panic!("{e} in {:?}", String::from_utf8_lossy(bytes)));
    assert_eq!(
        all.len(),
        1,
        "expected one response in {:?}",
        String::from_utf8_lossy(bytes)
    );
    all.remove(0)
}

#[test]
fn guide_hello_app_serves_concurrent_clients_with_five_workers() {
    let server = Server::start(&crate::harness::GUIDE_ARGS);
    assert_eq!(server.worker_pids.len(), 5, "log:\n{}", server.log());
    let port = server.port();
    let clients: Vec<_> = (0..16)
        .map(|_| thread::spawn(move || (0..25).map(|_| get(port, "/")).collect::<Vec<_>>()))
        .collect();
    let mut served = 0;
    for client in clients {
        for r in client.join().expect("client thread") {
            assert_eq!((r.status, r.text().as_str()), (200, "Hello!"));
            served += 1;
        }
    }
    assert_eq!(served, 400);
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let server = serve(BASICS, &[]);
    let mut conn = Conn::open(server.port());
    let cases = [
        ("/ok", "ok"),
        ("/hello", "Hello!"),
        ("/stream?n=3", "chunk 0\nchunk 1\nchunk 2\n"),
        ("/write", "onetwothree"),
        ("/empty", ""),
        ("/ok", "ok"),
    ];
    for (path, body) in cases {
        let r = conn.roundtrip(&request("GET", path, &[], b""));
        assert_eq!(
            (r.status, r.text().as_str(), r.complete),
            (200, body, true),
            "GET {path}"
        );
        assert!(
            !r.connection_has("close"),
            "GET {path} closed a keep-alive connection: {r:?}"
        );
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = serve(BASICS, &[]);
    let mut conn = Conn::open(server.port());
    let mut batch = request("GET", "/ok", &[], b"");
    batch.extend(request("POST", "/echo", &[], b"second body"));
    batch.extend(request("GET", "/stream?n=2", &[], b""));
    conn.send(&batch);
    let bodies: Vec<(u16, String)> = (0..3)
        .map(|_| conn.response())
        .map(|r| (r.status, r.text()))
        .collect();
    assert_eq!(
        bodies,
        [
            (200, "ok".to_string()),
            (200, "second body".to_string()),
            (200, "chunk 0\nchunk 1\n".to_string())
        ]
    );
}

#[test]
fn http10_without_keep_alive_gets_one_response_and_a_close() {
    let server = serve(BASICS, &[]);
    // send_raw returns only once the server closed the connection.
    let r = only_response(&send_raw(server.port(), &http10("GET", "/ok", "")), false);
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
}

#[test]
fn http10_with_keep_alive_keeps_the_connection() {
    let server = serve(BASICS, &[]);
    let mut conn = Conn::open(server.port());
    for _ in 0..3 {
        let r = conn.roundtrip(&http10("GET", "/ok", "Connection: keep-alive\r\n"));
        assert_eq!((r.status, r.text().as_str()), (200, "ok"));
        assert!(
            r.connection_has("keep-alive"),
            "HTTP/1.0 keep-alive answer lacks Connection: keep-alive: {r:?}"
        );
    }
    // Without the header the server closes after answering.
    let r = conn.roundtrip(&http10("GET", "/ok", ""));
    assert_eq!(r.status, 200);
    assert!(
        conn.closed_within(IO_TIMEOUT),
        "HTTP/1.0 connection without keep-alive stayed open"
    );
}

#[test]
fn head_responses_carry_no_body_bytes() {
    let server = serve(BASICS, &[]);
    for path in ["/ok", "/hello", "/stream?n=3", "/write", "/file_wrapper"] {
        // HEAD then GET in one write: any body byte after HEAD's head would
        // be parsed as the start of the second response and fail.
        let mut conn = Conn::open(server.port());
        let mut batch = request("HEAD", path, &[], b"");
        batch.extend(request("GET", "/ok", &[("Connection", "close")], b""));
        conn.send(&batch);
        let head = conn.head_response();
        assert_eq!(head.status, 200, "HEAD {path}");
        let next = conn.response();
        assert_eq!(
            (next.status, next.text().as_str()),
            (200, "ok"),
            "GET after HEAD {path}"
        );
        assert!(
            conn.read_rest().is_empty(),
            "bytes after the last response (HEAD {path})"
        );
    }
}

#[test]
fn every_response_has_date_and_server_headers() {
    let server = serve(BASICS, &[]);
    let cases: &[(&str, &[u8], bool, u16)] = &[
        (
            "200 with length",
            b"GET /ok HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
            false,
            200,
        ),
        (
            "200 chunked",
            b"GET /hello HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
            false,
            200,
        ),
        (
            "204",
            b"GET /no_content HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
            false,
            204,
        ),
        (
            "404",
            b"GET /missing HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
            false,
            404,
        ),
        (
            "HEAD",
            b"HEAD /ok HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
            true,
            200,
        ),
        ("HTTP/1.0", b"GET /ok HTTP/1.0\r\n\r\n", false, 200),
        (
            "400",
            b"GET / HTTP/1.1\r\nHost: h\r\nBad Name: v\r\n\r\n",
            false,
            400,
        ),
    ];
    for (name, raw, head, status) in cases {
        let r = only_response(&send_raw(server.port(), raw), *head);
        assert_eq!(r.status, *status, "{name}");
        let date = r
            .header("date")
            .unwrap_or_else(|| panic!("{name}: no Date header: {r:?}"));
        assert!(
            is_http_date(date),
            "{name}: Date {date:?} is not an IMF-fixdate"
        );
        let server_header = r
            .header("server")
            .unwrap_or_else(|| panic!("{name}: no Server header: {r:?}"));
        assert!(!server_header.is_empty(), "{name}: empty Server header");
    }
}

#[test]
fn bodies_without_length_are_chunked_on_http11_and_close_delimited_on_http10() {
    let server = serve(BASICS, &[]);
    // (path, body, whether the server may compute a Content-Length: PEP 3333
    // allows it when the iterable is a one-item list)
    let cases = [
        ("/stream?n=4", "chunk 0\nchunk 1\nchunk 2\nchunk 3\n", false),
        ("/write", "onetwothree", false),
        ("/hello", "Hello!", true),
    ];
    let mut failures = Vec::new();
    for (path, body, may_compute) in cases {
        let computed = Framing::Length(body.len());
        let raw = request("GET", path, &[("Connection", "close")], b"");
        let r = only_response(&send_raw(server.port(), &raw), false);
        let framing_ok = r.framing == Framing::Chunked || (may_compute && r.framing == computed);
        if !framing_ok || !r.complete || r.text() != body {
            failures.push(format!("HTTP/1.1 {path}: want chunked {body:?}, got {r:?}"));
        }

        let r = only_response(&send_raw(server.port(), &http10("GET", path, "")), false);
        let framing_ok = r.framing == Framing::Close || (may_compute && r.framing == computed);
        if !framing_ok || r.text() != body || r.header("transfer-encoding").is_some() {
            failures.push(format!(
                "HTTP/1.0 {path}: want close-delimited {body:?}, got {r:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // A declared length is kept on both versions.
    let r = only_response(&send_raw(server.port(), &http10("GET", "/ok", "")), false);
    assert_eq!((r.framing, r.text().as_str()), (Framing::Length(2), "ok"));
}

#[test]
fn body_longer_than_declared_content_length_is_truncated() {
    let server = serve(BASICS, &[]);
    for path in ["/overlong", "/overlong_multi"] {
        // Read to EOF: bytes past the declared 5 would make a second,
        // unparsable "response".
        let raw = request("GET", path, &[("Connection", "close")], b"");
        let r = only_response(&send_raw(server.port(), &raw), false);
        assert_eq!(
            (r.status, r.framing, r.text().as_str()),
            (200, Framing::Length(5), "01234"),
            "{path}"
        );
    }
}

#[test]
fn no_content_response_has_no_body_on_a_kept_connection() {
    let server = serve(BASICS, &[]);
    let mut conn = Conn::open(server.port());
    let mut batch = request("GET", "/no_content", &[], b"");
    batch.extend(request("GET", "/ok", &[], b""));
    conn.send(&batch);
    assert_eq!(conn.response().status, 204);
    let r = conn.response();
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
}

#[test]
fn expect_100_continue_is_answered_before_the_body_is_sent() {
    let server = serve(BASICS, &[]);
    let body: &[u8] = b"body sent only after 100 Continue";
    let framings: [(&str, Vec<u8>); 2] = [
        ("Content-Length", body.to_vec()),
        ("chunked", crate::client::chunked(body, 7)),
    ];
    for (name, wire_body) in framings {
        let mut conn = Conn::open(server.port());
        let length = body.len().to_string();
        let framing_header = if name == "chunked" {
            ("Transfer-Encoding", "chunked")
        } else {
            ("Content-Length", length.as_str())
        };
        let head = request(
            "POST",
            "/echo",
            &[("Expect", "100-continue"), framing_header],
            b"",
        );
        conn.send(&head);
        // Blocks until the server answers; it must not wait for the body.
        let interim = conn.response();
        assert_eq!(
            (
                interim.version.as_str(),
                interim.status,
                interim.reason.as_str(),
                interim.headers.len()
            ),
            ("HTTP/1.1", 100, "Continue", 0),
            "{name}: want exactly HTTP/1.1 100 Continue"
        );
        conn.send(&wire_body);
        let r = conn.response();
        assert_eq!((r.status, &r.body[..]), (200, body), "{name}");
    }
}

#[test]
fn malformed_requests_get_400_and_the_connection_closed() {
    let server = serve(BASICS, &[]);
    let cases: &[(&str, &[u8])] = &[
        ("garbage request line", b"GARBAGE\r\n\r\n"),
        ("method only", b"GET\r\n\r\n"),
        ("space inside the target", b"GET /a b HTTP/1.1\r\nHost: h\r\n\r\n"),
        ("header without colon", b"GET / HTTP/1.1\r\nHost: h\r\nNoColonHere\r\n\r\n"),
        ("space in header name", b"GET / HTTP/1.1\r\nHost: h\r\nBad Name: v\r\n\r\n"),
        ("non-numeric Content-Length", b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: abc\r\n\r\n"),
        (
            "conflicting Content-Lengths",
            b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        ),
        (
            "bad chunk size",
            b"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        ),
    ];
    for (name, raw) in cases {
        let got = send_raw(server.port(), raw);
        let responses = parse_responses(&got, &[])
            .unwrap_or_else(|e| panic!("{name}: {e} in {:?}", String::from_utf8_lossy(&got)));
        let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
        assert_eq!(statuses, [400], "{name}");
    }
    // The worker is still fine.
    assert_eq!(get(server.port(), "/ok").status, 200);
}

#[test]
fn file_wrapper_sends_the_whole_file() {
    let server = serve(BASICS, &[]);
    let want = std::fs::read(crate::harness::repo_root().join("tests/apps/basics.py")).unwrap();
    let r = get(server.port(), "/file_wrapper");
    assert_eq!(r.status, 200);
    assert!(
        r.body == want,
        "file_wrapper body differs from tests/apps/basics.py ({} vs {} bytes)",
        r.body.len(),
        want.len()
    );
}

#[test]
fn idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout() {
    let server = serve(BASICS, &["--keep-alive=1"]);
    let mut conn = Conn::open(server.port());
    for _ in 0..2 {
        assert_eq!(conn.roundtrip(&request("GET", "/ok", &[], b"")).status, 200);
    }
    assert!(
        conn.closed_within(Duration::from_secs(20)),
        "idle connection still open 20 s after --keep-alive=1"
    );
}

#[test]
fn access_log_uses_gunicorns_default_format() {
    let server = serve(BASICS, &["--access-logfile", "-"]);
    let headers = [
        ("Referer", "http://ref.test/"),
        ("User-Agent", "rustcorn-tests/1.0"),
        ("Connection", "close"),
    ];
    let r = Conn::open(server.port()).roundtrip(&request("GET", "/ok?x=1", &headers, b""));
    assert_eq!(r.status, 200);
    let needle = "\"GET /ok?x=1 HTTP/1.1\" 200 2 \"http://ref.test/\" \"rustcorn-tests/1.0\"";
    let stdout = server.stdout();
    assert!(
        stdout.wait(0, IO_TIMEOUT, |text| text.contains(needle)),
        "no access log line with {needle}; stdout:\n{}",
        stdout.text()
    );
    let text = stdout.text();
    let line = text.lines().find(|l| l.contains(needle)).unwrap();
    // %(h)s %(l)s %(u)s %(t)s: 127.0.0.1 - - [23/Nov/2026:21:09:48 +0000]
    assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
    let time = &line["127.0.0.1 - - [".len()..line.find(']').unwrap()];
    assert_eq!(
        (time.len(), &time[2..3], &time[6..7], &time[11..12]),
        (26, "/", "/", ":"),
        "time {time:?} in {line}"
    );
    assert!(line.ends_with(needle), "{line}");
}

#[test]
fn large_request_body_is_passed_whole() {
    let server = serve(BASICS, &[]);
    // Bigger than any sensible in-memory body buffer.
    let body: Vec<u8> = (0..4 * 1024 * 1024).map(|i: u32| (i % 251) as u8).collect();
    let r = crate::client::post(server.port(), "/echo", "application/octet-stream", &body);
    assert_eq!(r.status, 200);
    assert!(
        r.body == body,
        "echoed {} bytes of {}, or different bytes",
        r.body.len(),
        body.len()
    );
}
