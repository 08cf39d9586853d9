//! Real ASGI frameworks from the test venv under `-k asgi`: FastAPI (with
//! python-multipart), Starlette with sse-starlette, Django's ASGI handler, Quart and
//! Litestar. Each is served on port 0 and driven over raw sockets.

use std::io::{BufRead, BufReader, Write};
use std::time::{Duration, Instant};

use crate::asgi::serve_asgi;
use crate::client::{get, multipart, post, Framing};
use crate::harness::IO_TIMEOUT;
use crate::json::Json;

fn json(port: u16, path: &str) -> Json {
    let r = get(port, path);
    assert_eq!(r.status, 200, "{path}: {r:?}");
    Json::parse(&r.text())
}

#[test]
fn fastapi_json_params_validation_upload_and_lifespan_state() {
    let server = serve_asgi("asgi_fastapi:app", &[]);
    let port = server.port();
    let doc = json(port, "/items/42?q=corn");
    assert_eq!(
        (doc.at("item_id").as_i64(), doc.str_at("q")),
        (Some(42), "corn")
    );
    let r = post(
        port,
        "/items",
        "application/json",
        br#"{"name": "pen", "price": 2.5}"#,
    );
    assert_eq!(
        Json::parse(&r.text()).at("taxed").as_f64(),
        Some(3.0),
        "{r:?}"
    );
    let bad = post(port, "/items", "application/json", br#"{"name": "pen"}"#);
    assert_eq!(bad.status, 422, "{bad:?}");
    assert!(bad.text().contains("price"), "{bad:?}");
    let wrong_type = get(port, "/items/not-a-number");
    assert_eq!(wrong_type.status, 422);
    let data: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let body = multipart("XyZ", &[("note", "hi")], ("file", "data.bin", &data));
    let r = post(port, "/upload", "multipart/form-data; boundary=XyZ", &body);
    let doc = Json::parse(&r.text());
    assert_eq!(
        (
            doc.str_at("note"),
            doc.str_at("filename"),
            doc.at("size").as_i64(),
            doc.str_at("head")
        ),
        ("hi", "data.bin", Some(200_000), "abcdefghij"),
        "{r:?}"
    );
    assert_eq!(json(port, "/state").str_at("db"), "connected at startup");
}

#[test]
fn fastapi_streaming_response_and_background_tasks() {
    let server = serve_asgi("asgi_fastapi:app", &[]);
    let port = server.port();
    let r = get(port, "/stream");
    assert_eq!((r.framing, r.complete), (Framing::Chunked, true));
    assert_eq!(r.text(), "line 0\nline 1\nline 2\nline 3\nline 4\n");
    assert_eq!(json(port, "/background").at("queued").as_bool(), Some(true));
    let deadline = Instant::now() + IO_TIMEOUT;
    while json(port, "/tails").at("done").as_i64() != Some(1) {
        assert!(Instant::now() < deadline, "the background task never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Server-sent events arrive one by one, as they are produced.
#[test]
fn starlette_sse_events_are_read_one_by_one() {
    let server = serve_asgi("asgi_sse:app", &[]);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
        .write_all(b"GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(stream);
    let mut seen = Vec::new();
    let mut line = String::new();
    let started = Instant::now();
    while seen.len() < 3 {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "stream ended after {seen:?}"
        );
        if let Some(data) = line.trim_end().strip_prefix("data: ") {
            seen.push((data.to_string(), started.elapsed()));
        }
    }
    let data: Vec<&str> = seen.iter().map(|(d, _)| d.as_str()).collect();
    assert_eq!(data, ["tick 0", "tick 1", "tick 2"]);
    // Event by event: the first came before the generator had produced the last.
    assert!(seen[0].1 < seen[2].1, "{seen:?}");
}

#[test]
fn django_asgi_serves_an_async_view_and_a_sync_view() {
    let server = serve_asgi("djangoproj.asgi:application", &[]);
    let doc = json(server.port(), "/async?q=1");
    assert_eq!(
        (doc.str_at("kind"), doc.str_at("path"), doc.str_at("q")),
        ("async", "/async", "1")
    );
    let doc = json(server.port(), "/sync");
    assert_eq!(doc.str_at("kind"), "sync");
    let r = get(server.port(), "/?name=ASGI");
    assert!(r.text().contains("ASGI"), "{r:?}");
}

#[test]
fn quart_and_litestar_serve() {
    let quart = serve_asgi("asgi_quart:app", &[]);
    let doc = json(quart.port(), "/hello/corn?q=2");
    assert_eq!((doc.str_at("hello"), doc.str_at("q")), ("corn", "2"));
    let r = post(
        quart.port(),
        "/echo",
        "application/octet-stream",
        &[7u8; 5000],
    );
    assert_eq!(Json::parse(&r.text()).at("len").as_i64(), Some(5000));
    drop(quart);
    let litestar = serve_asgi("asgi_litestar:app", &[]);
    assert_eq!(json(litestar.port(), "/hello/corn").str_at("hello"), "corn");
    let r = post(
        litestar.port(),
        "/double",
        "application/json",
        br#"{"n": 21}"#,
    );
    assert_eq!(Json::parse(&r.text()).at("n").as_i64(), Some(42), "{r:?}");
}

#[test]
fn asgi_loop_picks_the_event_loop() {
    for (choice, module) in [
        ("uvloop", "uvloop"),
        ("auto", "uvloop"),
        ("asyncio", "asyncio.unix_events"),
    ] {
        let server = serve_asgi("asgi_fastapi:app", &["--asgi-loop", choice]);
        assert_eq!(
            json(server.port(), "/loop").str_at("module"),
            module,
            "--asgi-loop {choice}"
        );
    }
}
