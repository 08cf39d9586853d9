//! The WSGI environ (PEP 3333) as the app sees it, read back as JSON from
//! tests/apps/echo_environ.py; and the validator-wrapped app.

use crate::client::{chunked, request, Conn, Response};
use crate::harness::{app_args, serve, ServerBuilder};
use crate::json::Json;

pub const ECHO: &str = "echo_environ:application";

/// Sends `raw` on a new connection and returns the echoed document.
pub fn echo(port: u16, raw: &[u8]) -> Json {
    let r = Conn::open(port).roundtrip(raw);
    echo_doc(&r, raw)
}

fn echo_doc(r: &Response, raw: &[u8]) -> Json {
    assert_eq!(
        r.status,
        200,
        "request {:?} got {r:?}",
        String::from_utf8_lossy(raw)
    );
    Json::parse(&r.text())
}

#[test]
fn environ_string_values_follow_the_request() {
    let server = serve(ECHO, &["--workers=2"]);
    let port = server.port();
    let host = format!("127.0.0.1:{port}");
    let port_str = port.to_string();
    // (what, request, environ key, expected value)
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "PATH_INFO percent-decoded as latin-1",
            request("GET", "/caf%C3%A9", &[], b""),
            "PATH_INFO",
            "/caf\u{c3}\u{a9}",
        ),
        (
            "PATH_INFO %20 decoded",
            request("GET", "/a%20b", &[], b""),
            "PATH_INFO",
            "/a b",
        ),
        (
            "QUERY_STRING is raw",
            request("GET", "/q?a=1&b=%20x&c", &[], b""),
            "QUERY_STRING",
            "a=1&b=%20x&c",
        ),
        (
            "QUERY_STRING empty without ?",
            request("GET", "/q", &[], b""),
            "QUERY_STRING",
            "",
        ),
        (
            "RAW_URI is the request target",
            request("GET", "/caf%C3%A9?x=%41", &[], b""),
            "RAW_URI",
            "/caf%C3%A9?x=%41",
        ),
        (
            "REQUEST_METHOD",
            request("PUT", "/m", &[], b"x"),
            "REQUEST_METHOD",
            "PUT",
        ),
        (
            "REQUEST_METHOD DELETE",
            request("DELETE", "/m", &[], b""),
            "REQUEST_METHOD",
            "DELETE",
        ),
        (
            "SERVER_PROTOCOL 1.1",
            request("GET", "/", &[], b""),
            "SERVER_PROTOCOL",
            "HTTP/1.1",
        ),
        (
            "SERVER_PROTOCOL 1.0",
            b"GET / HTTP/1.0\r\n\r\n".to_vec(),
            "SERVER_PROTOCOL",
            "HTTP/1.0",
        ),
        (
            "SCRIPT_NAME empty by default",
            request("GET", "/x", &[], b""),
            "SCRIPT_NAME",
            "",
        ),
        (
            "repeated headers joined with a comma, as Gunicorn",
            request("GET", "/", &[("X-Dup", "a"), ("X-Dup", "b")], b""),
            "HTTP_X_DUP",
            "a,b",
        ),
        (
            "a remembered header repeated with one value, joined too",
            request("GET", "/", &[("Accept", "a/b"), ("Accept", "a/b")], b""),
            "HTTP_ACCEPT",
            "a/b,a/b",
        ),
        (
            "header name mapped",
            request("GET", "/", &[("X-Custom-Thing", "v 1")], b""),
            "HTTP_X_CUSTOM_THING",
            "v 1",
        ),
        (
            "HTTP_HOST",
            request("GET", "/", &[("Host", "example.test:8080")], b""),
            "HTTP_HOST",
            "example.test:8080",
        ),
        (
            "CONTENT_TYPE",
            request(
                "POST",
                "/",
                &[("Content-Type", "text/plain; charset=utf-8")],
                b"hello",
            ),
            "CONTENT_TYPE",
            "text/plain; charset=utf-8",
        ),
        (
            "CONTENT_LENGTH",
            request("POST", "/", &[], b"hello"),
            "CONTENT_LENGTH",
            "5",
        ),
        (
            "SERVER_NAME",
            request("GET", "/", &[("Host", &host)], b""),
            "SERVER_NAME",
            "127.0.0.1",
        ),
        (
            "SERVER_NAME from a non-ASCII Host, each byte one latin-1 char",
            request("GET", "/", &[("Host", "caf\u{e9}.test")], b""),
            "SERVER_NAME",
            "caf\u{c3}\u{a9}.test",
        ),
        (
            "SERVER_PORT",
            request("GET", "/", &[("Host", &host)], b""),
            "SERVER_PORT",
            &port_str,
        ),
        (
            "REMOTE_ADDR",
            request("GET", "/", &[], b""),
            "REMOTE_ADDR",
            "127.0.0.1",
        ),
        (
            "wsgi.url_scheme",
            request("GET", "/", &[], b""),
            "wsgi.url_scheme",
            "http",
        ),
    ];
    let mut failures = Vec::new();
    for (what, raw, key, want) in &cases {
        let doc = echo(port, raw);
        let got = doc.at("environ").get(key).cloned();
        if got.as_ref().and_then(Json::as_str) != Some(*want) {
            failures.push(format!("{what}: {key} = {got:?}, want {want:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "environ mismatches:\n{}",
        failures.join("\n")
    );
}

/// The worker shares the string of a value that repeats (Host, User-Agent, REMOTE_ADDR…)
/// between requests; each request must still see its own value, whatever came before,
/// on one connection and across connections (one worker, so every request meets the
/// values the last one left).
#[test]
fn repeated_and_changing_values_each_reach_their_own_request() {
    let server = serve(ECHO, &["--workers=1"]);
    let port = server.port();
    let long_agent = "a".repeat(300);
    // (Host, User-Agent)
    let steps: [(&str, &str); 7] = [
        ("one.test", "agent/1"),
        ("one.test", "agent/1"),
        ("two.test:81", "agent/2"),
        ("one.test", "agent/1"),
        ("one.test", &long_agent),
        ("one.test", &long_agent),
        ("caf\u{e9}.test", "agent/\u{e9}"),
    ];
    let mut conn = Conn::open(port);
    for (i, (host, agent)) in steps.iter().enumerate() {
        for fresh in [false, true] {
            let raw = request("GET", "/", &[("Host", host), ("User-Agent", agent)], b"");
            let doc = if fresh {
                echo(port, &raw)
            } else {
                echo_doc(&conn.roundtrip(&raw), &raw)
            };
            let env = doc.at("environ");
            // The client writes UTF-8; the environ holds each byte as one latin-1 char.
            let latin1 = |s: &str| s.bytes().map(char::from).collect::<String>();
            let (name, port_part) = host.split_once(':').unwrap_or((host, "80"));
            for (key, want) in [
                ("HTTP_HOST", latin1(host)),
                ("HTTP_USER_AGENT", latin1(agent)),
                ("SERVER_NAME", latin1(name)),
                ("SERVER_PORT", port_part.to_string()),
                ("REMOTE_ADDR", "127.0.0.1".to_string()),
            ] {
                assert_eq!(
                    env.str_at(key),
                    want,
                    "step {i} ({host}, {agent}), fresh connection {fresh}: {key}"
                );
            }
            if !fresh {
                let own_port = conn.local_addr().port().to_string();
                assert_eq!(env.str_at("REMOTE_PORT"), own_port, "step {i}: REMOTE_PORT");
            }
        }
    }
}

#[test]
fn environ_has_pep3333_types_and_flags() {
    let server = serve(ECHO, &["--workers=2"]);
    let doc = echo(server.port(), &request("GET", "/", &[], b""));
    let env = doc.at("environ");
    let flags = [
        ("wsgi.multithread", Json::Bool(false)),
        ("wsgi.multiprocess", Json::Bool(true)),
        ("wsgi.run_once", Json::Bool(false)),
        ("wsgi.input_terminated", Json::Bool(true)),
        (
            "wsgi.version",
            Json::Arr(vec![Json::Num(1.0), Json::Num(0.0)]),
        ),
    ];
    for (key, want) in flags {
        assert_eq!(env.get(key), Some(&want), "{key}");
    }
    for key in [
        "wsgi.input",
        "wsgi.errors",
        "wsgi.file_wrapper",
        "REMOTE_PORT",
        "SERVER_NAME",
        "SERVER_PORT",
    ] {
        assert!(env.get(key).is_some(), "{key} missing from environ");
    }
    // CGI variables (no dot in the name) are all native strings.
    for (key, value) in env.members() {
        if !key.contains('.') {
            assert!(value.as_str().is_some(), "{key} = {value:?} is not a str");
        }
    }
    // Body metadata is CONTENT_*, never HTTP_CONTENT_*.
    let doc = echo(
        server.port(),
        &request("POST", "/", &[("Content-Type", "a/b")], b"x"),
    );
    for key in ["HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"] {
        assert!(
            doc.at("environ").get(key).is_none(),
            "{key} must not be set"
        );
    }
}

#[test]
fn multiprocess_is_false_with_one_worker() {
    let server = serve(ECHO, &["--workers=1"]);
    let doc = echo(server.port(), &request("GET", "/", &[], b""));
    assert_eq!(
        doc.at("environ").get("wsgi.multiprocess"),
        Some(&Json::Bool(false))
    );
}

#[test]
fn remote_port_is_the_clients_port() {
    let server = serve(ECHO, &[]);
    let mut conn = Conn::open(server.port());
    let raw = request("GET", "/", &[], b"");
    let doc = echo_doc(&conn.roundtrip(&raw), &raw);
    assert_eq!(
        doc.at("environ").str_at("REMOTE_PORT"),
        conn.local_addr().port().to_string()
    );
}

#[test]
fn request_body_reaches_the_app_byte_for_byte() {
    let server = serve(ECHO, &[]);
    let body: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let latin1: String = body.iter().map(|&b| b as char).collect();
    let framings = [
        ("Content-Length", request("POST", "/", &[], &body)),
        (
            "chunked",
            request(
                "POST",
                "/",
                &[("Transfer-Encoding", "chunked")],
                &chunked(&body, 4096),
            ),
        ),
    ];
    for (name, raw) in framings {
        let doc = echo(server.port(), &raw);
        assert!(
            doc.str_at("body") == latin1,
            "{name}: body differs ({} chars echoed)",
            doc.str_at("body").len()
        );
    }
}

#[test]
fn script_name_comes_from_the_server_environment_and_is_stripped_from_path_info() {
    let server = ServerBuilder::new(&app_args(ECHO, &[]))
        .env("SCRIPT_NAME", "/prefix")
        .start();
    let cases = [
        ("/prefix/x", "/prefix", "/x"),
        ("/prefix/caf%C3%A9", "/prefix", "/caf\u{c3}\u{a9}"),
    ];
    for (target, script_name, path_info) in cases {
        let doc = echo(server.port(), &request("GET", target, &[], b""));
        let env = doc.at("environ");
        assert_eq!(
            (env.str_at("SCRIPT_NAME"), env.str_at("PATH_INFO")),
            (script_name, path_info),
            "{target}"
        );
    }
}

#[test]
fn validator_wrapped_app_passes_for_every_request_shape() {
    let server = serve("validated:application", &[]);
    let body: Vec<u8> = b"validated body "
        .iter()
        .copied()
        .cycle()
        .take(5000)
        .collect();
    let sum: u32 = body.iter().map(|&b| u32::from(b)).sum();
    let posted = format!("validated POST {} bytes:{sum}", body.len());
    let cases: Vec<(&str, Vec<u8>, bool, &str)> = vec![
        (
            "GET",
            request("GET", "/v?x=1", &[], b""),
            false,
            "validated GET",
        ),
        ("HEAD", request("HEAD", "/v", &[], b""), true, ""),
        (
            "POST with Content-Length",
            request("POST", "/v", &[("Content-Type", "text/plain")], &body),
            false,
            &posted,
        ),
        (
            "POST chunked",
            request(
                "POST",
                "/v",
                &[
                    ("Content-Type", "text/plain"),
                    ("Transfer-Encoding", "chunked"),
                ],
                &chunked(&body, 999),
            ),
            false,
            &posted,
        ),
    ];
    for (name, raw, head, want) in &cases {
        let mut conn = Conn::open(server.port());
        conn.send(raw);
        let r = if *head {
            conn.head_response()
        } else {
            conn.response()
        };
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, *want),
            "{name}; log:\n{}",
            server.log()
        );
    }
    // A validator complaint (including "iterator garbage collected without
    // being closed") shows up in the log even when the response went out.
    assert_eq!(
        Conn::open(server.port())
            .roundtrip(&request("GET", "/", &[("Connection", "close")], b""))
            .status,
        200
    );
    let log = server.log();
    for bad in ["Traceback", "AssertionError", "WSGIWarning"] {
        assert!(!log.contains(bad), "{bad} in the log:\n{log}");
    }
}

/// The environ of a request the app left alone is reused for the next one
/// (src/wsgi/environ/reuse.rs): whatever an app did to or kept of one environ, the
/// next request's environ is exactly what the server builds for it, and an environ
/// the app kept is never touched again by the server.
#[test]
fn what_an_app_writes_into_or_keeps_of_an_environ_never_reaches_the_next_request() {
    let server = serve("environ_writer:application", &["--workers=1"]);
    let mut conn = Conn::open(server.port());
    let headers = [("Host", "reuse.test"), ("User-Agent", "agent/1")];
    let mut ask = |path: &str| {
        let raw = request("GET", path, &headers, b"");
        let doc = echo_doc(&conn.roundtrip(&raw), &raw);
        let Json::Arr(items) = doc.at("items") else {
            panic!("{path}: no items in {doc:?}");
        };
        let items: Vec<(String, String)> = items
            .iter()
            .map(|pair| match pair {
                Json::Arr(kv) => (
                    kv[0].as_str().unwrap().to_string(),
                    kv[1].as_str().unwrap().to_string(),
                ),
                other => panic!("{path}: {other:?}"),
            })
            .collect();
        (items, doc.at("is_kept").as_bool().unwrap())
    };
    // The first requests make the worker's templates warm; from the third on, every
    // plain request's environ has one shape.
    ask("/");
    ask("/");
    let (base, _) = ask("/");
    let expected = |path: &str| -> Vec<(String, String)> {
        base.iter()
            .map(|(k, v)| match k.as_str() {
                "PATH_INFO" | "RAW_URI" => (k.clone(), path.to_string()),
                _ => (k.clone(), v.clone()),
            })
            .collect()
    };
    let mut kept = None;
    for path in [
        "/", "/add", "/", "/replace", "/", "/delete", "/", "/clear", "/", "/keep", "/", "/",
        "/check", "/poke", "/", "/", "/add", "/add", "/",
    ] {
        let (items, is_kept) = ask(path);
        assert!(!is_kept, "{path}: the environ an app kept came back");
        match path {
            "/check" => assert_eq!(Some(&items), kept.as_ref(), "the kept environ changed"),
            _ => assert_eq!(items, expected(path), "{path}"),
        }
        if path == "/keep" {
            kept = Some(items);
        }
    }
}

/// Each kept-alive connection keeps its own REMOTE_PORT string: requests on three
/// connections, interleaved, each see their own connection's port, every time.
#[test]
fn interleaved_connections_each_see_their_own_remote_port() {
    let server = serve(ECHO, &["--workers=1"]);
    let mut conns: Vec<Conn> = (0..3).map(|_| Conn::open(server.port())).collect();
    let raw = request("GET", "/", &[("Host", "one.test")], b"");
    for round in 0..3 {
        for (i, conn) in conns.iter_mut().enumerate() {
            let doc = echo_doc(&conn.roundtrip(&raw), &raw);
            assert_eq!(
                doc.at("environ").str_at("REMOTE_PORT"),
                conn.local_addr().port().to_string(),
                "round {round}, connection {i}"
            );
        }
    }
}
