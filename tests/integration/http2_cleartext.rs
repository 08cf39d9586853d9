//! Cleartext HTTP/2 (h2c, `--http2-cleartext`) with the gthread and asgi workers, driven by real
//! clients from the test setup (curl, nghttp, httpx) and by raw bytes: prior
//! knowledge (the preface, its 400 and its 1 s budget), `Upgrade: h2c` (101, then the
//! request as stream 1, with its body), `both`, trust (`--forwarded-allow-ips`: any
//! other peer is served HTTP/1 as with `off`), and the sync worker's fallback. The
//! app is tests/apps/h2_app.py.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::client::{request, Conn};
use crate::harness::{self, require_venv, Server};
use crate::http2::{curl_url, program, run};
use crate::json::Json;

const APP: &str = "h2_app:application";

/// curl's Upgrade request, as it sends it (HTTP2-Settings from curl 7.88).
const UPGRADE: &[(&str, &str)] = &[
    ("Host", "localhost"),
    ("Connection", "Upgrade, HTTP2-Settings"),
    ("Upgrade", "h2c"),
    ("HTTP2-Settings", "AAMAAABkAAQCAAAAAAIAAAAA"),
];

/// Serves the test app with gthread, `h2` listed and `--http2-cleartext mode`.
fn serve_h2c(mode: &str, extra: &[&str]) -> Server {
    let mut args = vec![
        "-k",
        "gthread",
        "--http-protocols",
        "h2,h1",
        "--http2-cleartext",
        mode,
    ];
    args.extend_from_slice(extra);
    harness::serve(APP, &args)
}

/// `curl -s` over http:// with `flags`; returns (http_version, body).
fn curl(port: u16, path: &str, flags: &[&str]) -> (String, Vec<u8>) {
    curl_url(&format!("http://127.0.0.1:{port}{path}"), flags)
}

fn environ(body: &[u8]) -> Json {
    Json::parse(&String::from_utf8_lossy(body))
}

/// A body of `n` bytes that shows any byte out of place.
fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

/// POSTs `body` to /echo with curl and `flags`; checks it comes back whole, over
/// HTTP/2.
fn curl_echo(port: u16, body: &[u8], flags: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("body.bin");
    std::fs::write(&file, body).unwrap();
    let data = format!("@{}", file.display());
    let mut all = vec!["--data-binary", &data];
    all.extend_from_slice(flags);
    let (version, echoed) = curl(port, "/echo", &all);
    assert_eq!(version, "2");
    assert!(echoed == body, "echo of {} bytes differs", body.len());
}

#[test]
fn prior_knowledge_serves_curl_and_httpx_gets_and_posts() {
    let server = serve_h2c("prior-knowledge", &["--access-logfile", "-"]);
    let port = server.port();
    let (version, body) = curl(port, "/environ", &["--http2-prior-knowledge"]);
    assert_eq!(version, "2");
    let doc = environ(&body);
    assert_eq!(doc.str_at("SERVER_PROTOCOL"), "HTTP/2.0");
    assert_eq!(doc.str_at("wsgi.url_scheme"), "http");
    curl_echo(port, &pattern(300_000), &["--http2-prior-knowledge"]);
    // A file_wrapper body is framed as DATA too: no sendfile(2) around HTTP/2 on a
    // plain socket (Gunicorn's 27.0 fix).
    let (version, body) = curl(port, "/file?n=300000", &["--http2-prior-knowledge"]);
    assert_eq!(version, "2");
    assert_eq!(body.len(), 300_000);
    assert!(body.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
    let script = "import httpx, sys\n\
        with httpx.Client(http1=False, http2=True, timeout=60) as c:\n\
        \x20   r = c.get(f'http://127.0.0.1:{sys.argv[1]}/environ')\n\
        \x20   p = c.post(f'http://127.0.0.1:{sys.argv[1]}/echo', content=b'x' * 70000)\n\
        print(r.http_version, r.json()['SERVER_PROTOCOL'], p.http_version, len(p.content))\n";
    let python = require_venv().join("bin/python");
    let out = run(Command::new(python)
        .args(["-c", script])
        .arg(port.to_string()));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "HTTP/2 HTTP/2.0 HTTP/2 70000"
    );
    let logged = "\"POST /echo HTTP/2.0\" 200 70000";
    let found = server
        .stdout()
        .wait(0, harness::STARTUP, |log| log.contains(logged));
    assert!(found, "{}", server.stdout().text());
}

#[test]
fn prior_knowledge_alone_answers_anything_else_400_with_gunicorns_line() {
    let mut server = serve_h2c("prior-knowledge", &[]);
    let port = server.port();
    let mut conn = Conn::open(port);
    let answer = conn.roundtrip(&request("GET", "/pid", &[("Host", "x")], b""));
    assert_eq!(answer.status, 400, "{answer:?}");
    server.wait_for_log(
        "Invalid request from ip=127.0.0.1: Expected HTTP/2 connection preface, \
         got b'GET /pid HTTP/1.1\\r\\nHost:'",
        harness::STARTUP,
    );
    // A preface cut short and stalled: its second is up, then the 400.
    let mark = server.log_mark();
    let mut conn = Conn::open(port);
    let started = Instant::now();
    conn.send(b"PRI * HTTP/2.0\r\n");
    let answer = conn.response();
    let took = started.elapsed();
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(took >= Duration::from_millis(900), "took {took:?}");
    assert!(took < Duration::from_secs(15), "took {took:?}");
    server.wait_for_log_since(
        mark,
        "Expected HTTP/2 connection preface, got b'PRI * HTTP/2.0\\r\\n'",
        harness::STARTUP,
    );
    // The worker serves on.
    let (version, _) = curl(port, "/pid", &["--http2-prior-knowledge"]);
    assert_eq!(version, "2");
}

#[test]
fn upgrade_serves_the_request_as_stream_1_for_curl_and_nghttp() {
    let server = serve_h2c("upgrade", &["--access-logfile", "-"]);
    let port = server.port();
    let (version, body) = curl(port, "/environ?a=1", &["--http2"]);
    assert_eq!(version, "2");
    let doc = environ(&body);
    assert_eq!(doc.str_at("SERVER_PROTOCOL"), "HTTP/2.0");
    assert_eq!(doc.str_at("QUERY_STRING"), "a=1");
    // The connection's own fields stay with HTTP/1.
    let names = doc.at("http").as_array().unwrap();
    assert!(
        !names.iter().any(|n| n.as_str() == Some("HTTP_UPGRADE")),
        "{doc:?}"
    );
    curl_echo(port, &pattern(20_000), &["--http2"]);
    let url = format!("http://127.0.0.1:{port}/environ");
    let out = run(Command::new(program("nghttp")).args(["-u", &url]));
    assert_eq!(environ(&out.stdout).str_at("SERVER_PROTOCOL"), "HTTP/2.0");
    let logged = "\"POST /echo HTTP/2.0\" 200 20000";
    let found = server
        .stdout()
        .wait(0, harness::STARTUP, |log| log.contains(logged));
    assert!(found, "{}", server.stdout().text());
}

#[test]
fn raw_upgrade_gets_101_and_an_invalid_one_plain_http1() {
    let server = serve_h2c("upgrade", &[]);
    let port = server.port();
    let mut conn = Conn::open(port);
    conn.send(&request("GET", "/pid", UPGRADE, b""));
    let answer = conn.head_response();
    assert_eq!(answer.status, 101, "{answer:?}");
    assert_eq!(answer.header("upgrade"), Some("h2c"));
    // Anything short of a well-formed upgrade is an ordinary HTTP/1.1 request.
    let bad_settings: Vec<(&str, &str)> = UPGRADE
        .iter()
        .map(|&(n, v)| match n {
            "HTTP2-Settings" => (n, "AAIAAAAC"), // ENABLE_PUSH=2
            _ => (n, v),
        })
        .collect();
    let no_token = [
        UPGRADE[0],
        ("Connection", "Upgrade"),
        UPGRADE[2],
        UPGRADE[3],
    ];
    for headers in [&bad_settings[..], &no_token[..]] {
        let mut conn = Conn::open(port);
        let answer = conn.roundtrip(&request("GET", "/pid", headers, b""));
        assert_eq!((answer.version.as_str(), answer.status), ("HTTP/1.1", 200));
    }
    // Under upgrade alone a preface is not HTTP/2: the HTTP/1 parser refuses it.
    let mut conn = Conn::open(port);
    conn.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    assert_eq!(conn.response().status, 400);
}

#[test]
fn both_serves_http1_prior_knowledge_and_upgrade_also_behind_a_proxy_header() {
    let server = serve_h2c("both", &["--proxy-protocol", "auto"]);
    let port = server.port();
    let mut conn = Conn::open(port);
    let answer = conn.roundtrip(&request("GET", "/pid", &[("Host", "x")], b""));
    assert_eq!((answer.version.as_str(), answer.status), ("HTTP/1.1", 200));
    // Keep-alive goes on in HTTP/1.
    let answer = conn.roundtrip(&request("GET", "/pid", &[("Host", "x")], b""));
    assert_eq!(answer.status, 200);
    assert_eq!(curl(port, "/pid", &["--http1.1"]).0, "1.1");
    assert_eq!(curl(port, "/pid", &["--http2-prior-knowledge"]).0, "2");
    assert_eq!(curl(port, "/pid", &["--http2"]).0, "2");
    // The PROXY header comes first, then the preface or the upgrade.
    let proxied = ["--haproxy-protocol", "--http2-prior-knowledge"];
    assert_eq!(curl(port, "/pid", &proxied).0, "2");
    assert_eq!(
        curl(port, "/pid", &["--haproxy-protocol", "--http2"]).0,
        "2"
    );
}

#[test]
fn untrusted_peers_get_http1_as_with_off_and_unix_sockets_are_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("h2c.sock");
    let bind = format!("unix:{}", sock.display());
    let server = serve_h2c("both", &["--forwarded-allow-ips", "10.0.0.1", "-b", &bind]);
    let port = server.port();
    let sock = sock.to_str().unwrap();
    let unix = ["--unix-socket", sock, "--http2-prior-knowledge"];
    assert_eq!(curl(port, "/pid", &unix).0, "2");
    let mut conn = Conn::open(port);
    conn.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    assert_eq!(conn.response().status, 400);
    let mut conn = Conn::open(port);
    let answer = conn.roundtrip(&request("GET", "/pid", UPGRADE, b""));
    assert_eq!((answer.version.as_str(), answer.status), ("HTTP/1.1", 200));
    assert_eq!(curl(port, "/pid", &["--http2"]).0, "1.1");
}

#[test]
fn the_sync_worker_warns_and_stays_http1() {
    let mut server = harness::serve(
        APP,
        &["--http-protocols", "h2,h1", "--http2-cleartext", "both"],
    );
    server.wait_for_log(
        "HTTP/2 is not supported by the sync worker. Use gthread, gevent, or asgi workers \
         for HTTP/2 support. Falling back to HTTP/1.1 only.",
        harness::STARTUP,
    );
    let port = server.port();
    let mut conn = Conn::open(port);
    let answer = conn.roundtrip(&request("GET", "/pid", UPGRADE, b""));
    assert_eq!((answer.version.as_str(), answer.status), ("HTTP/1.1", 200));
    let mut conn = Conn::open(port);
    conn.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    assert_eq!(conn.response().status, 400);
}

#[test]
fn the_asgi_worker_serves_prior_knowledge_and_upgrade_as_tasks() {
    let server = harness::serve(
        "asgi_h2_app:application",
        &[
            "-k",
            "asgi",
            "--http-protocols",
            "h2,h1",
            "--http2-cleartext",
            "both",
        ],
    );
    let (version, body) = curl(server.port(), "/raw/scope", &["--http2-prior-knowledge"]);
    assert_eq!(version, "2");
    let scope = Json::parse(&String::from_utf8_lossy(&body));
    assert_eq!(scope.str_at("http_version"), "2");
    let (version, body) = curl(
        server.port(),
        "/raw/echo",
        &["--http2", "--data-binary", "over the upgrade"],
    );
    assert_eq!(version, "2", "Upgrade: h2c must switch for asgi too");
    assert_eq!(body, b"over the upgrade");
    // Plain HTTP/1 is still served beside them under `both`.
    let (version, body) = curl(server.port(), "/raw/echo", &["--http1.1", "-d", "h1"]);
    assert_eq!((version.as_str(), body.as_slice()), ("1.1", &b"h1"[..]));
}
