//! HTTP/2 over TLS (`--http-protocols h2,h1`, ALPN) with the gthread worker, driven
//! by real clients: curl, nghttp (Debian's nghttp2-client), Python's httpx and, for
//! hand-made header lists, the `h2` package (tests/integration/http2/client.py).
//! Certificates come from the `openssl` CLI (the TLS tests' `Certs`); the app is
//! tests/apps/h2_app.py, and Flask's fixture for a framework.
//!
//! Covered: ALPN choices (h2, http/1.1, none without `h2` listed, none from the sync
//! worker), GET and a 2 MiB POST both ways, 100 streams on one connection served in
//! parallel, responses far larger than a small client window (generator and
//! file_wrapper bodies), the HTTP/1 header policy on streams (a refused stream leaves
//! the connection serving), `--limit-request-body`, SETTINGS from the flags, graceful
//! TERM, Gunicorn's setting messages and warnings.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::harness::{self, repo_root, require_venv, Server, ServerBuilder};
use crate::json::Json;
use crate::tls::support::Certs;

const APP: &str = "h2_app:application";

/// A client program from the test setup: present, or the test fails saying so.
pub(crate) fn program(name: &str) -> PathBuf {
    let path = PathBuf::from("/usr/bin").join(name);
    assert!(
        path.exists(),
        "{name} is missing: run scripts/setup-test-env.sh (apt nghttp2-client, curl)"
    );
    path
}

pub(crate) fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("client runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Waits for a client program spawned with its stdout piped, at most
/// [`harness::IO_TIMEOUT`] after the server has its work: a client that hangs is
/// killed and the test fails with what it printed and the server's log, instead of
/// blocking the suite until the CI's own timeout.
pub(crate) fn wait_client(mut client: std::process::Child, server: &Server) -> Output {
    let deadline = Instant::now() + harness::IO_TIMEOUT;
    while client.try_wait().expect("client status").is_none() {
        if Instant::now() >= deadline {
            let _ = client.kill();
            let out = client.wait_with_output().expect("client output");
            panic!(
                "the client hung for {:?}; it printed:\n{}\nserver log:\n{}",
                harness::IO_TIMEOUT,
                String::from_utf8_lossy(&out.stdout),
                server.log()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    client.wait_with_output().expect("client output")
}

/// Serves `app` over TLS with the gthread worker and `extra` flags.
pub(crate) fn serve_h2(certs: &Certs, app: &str, extra: &[&str]) -> Server {
    let mut args: Vec<String> = certs.server_args();
    args.extend(["-k", "gthread"].map(String::from));
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ServerBuilder::new(&harness::app_args(app, &args)).start()
}

/// `curl -sk` with `flags`; returns (http_version, body).
pub(crate) fn curl(port: u16, path: &str, flags: &[&str]) -> (String, Vec<u8>) {
    curl_url(&format!("https://127.0.0.1:{port}{path}"), flags)
}

/// `curl -sk url` with `flags` (http:// or https://); returns (http_version, body).
pub(crate) fn curl_url(url: &str, flags: &[&str]) -> (String, Vec<u8>) {
    let out = run(Command::new(program("curl"))
        .args([
            "-sk",
            "--max-time",
            "60",
            "-o",
            "-",
            "-w",
            "\n%{http_version}",
        ])
        .args(flags)
        .arg(url));
    let text = out.stdout;
    let cut = text.iter().rposition(|&b| b == b'\n').unwrap();
    (
        String::from_utf8_lossy(&text[cut + 1..]).into_owned(),
        text[..cut].to_vec(),
    )
}

/// tests/integration/http2/client.py with the test venv's Python; its JSON output.
pub(crate) fn python_client(args: &[&str]) -> Json {
    let python = require_venv().join("bin/python");
    let script = repo_root().join("tests/integration/http2/client.py");
    let out = run(Command::new(python).arg(script).args(args));
    Json::parse(&String::from_utf8_lossy(&out.stdout))
}

/// Byte i of tests/apps/h2_app.py's bodies is i % 251.
fn assert_pattern(body: &[u8], n: usize) {
    assert_eq!(body.len(), n, "body length");
    if let Some(i) = (0..n).find(|&i| body[i] != (i % 251) as u8) {
        panic!("byte {i} of {n} is {} not {}", body[i], i % 251);
    }
}

#[test]
fn alpn_chooses_h2_or_http11_as_the_client_asks() {
    let certs = Certs::new();
    let server = serve_h2(&certs, APP, &["--http-protocols", "h2,h1"]);
    let port = server.port();
    let (version, body) = curl(port, "/environ", &["--http2"]);
    assert_eq!(version, "2");
    let doc = Json::parse(&String::from_utf8_lossy(&body));
    assert_eq!(doc.str_at("SERVER_PROTOCOL"), "HTTP/2.0");
    assert_eq!(doc.str_at("wsgi.url_scheme"), "https");
    assert_eq!(doc.str_at("HTTP_HOST"), format!("127.0.0.1:{port}"));
    let (version, body) = curl(port, "/environ", &["--http1.1"]);
    assert_eq!(version, "1.1");
    assert!(String::from_utf8_lossy(&body).contains("\"HTTP/1.1\""));
    let port_s = port.to_string();
    assert_eq!(python_client(&["alpn", &port_s]).str_at("alpn"), "h2");
}

#[test]
fn without_h2_listed_no_client_gets_http2() {
    let certs = Certs::new();
    let server = serve_h2(&certs, APP, &[]);
    assert_eq!(curl(server.port(), "/pid", &["--http2"]).0, "1.1");
    let alpn = python_client(&["alpn", &server.port().to_string()]);
    assert!(matches!(alpn.at("alpn"), Json::Null), "{alpn:?}");
    // `h2` alone still serves an HTTP/1.1 client (http/1.1 is appended to ALPN).
    let server = serve_h2(&certs, APP, &["--http-protocols", "h2"]);
    assert_eq!(curl(server.port(), "/pid", &["--http1.1"]).0, "1.1");
    assert_eq!(curl(server.port(), "/pid", &["--http2"]).0, "2");
}

#[test]
fn httpx_gets_and_posts_2_mib_both_ways_over_h2() {
    let certs = Certs::new();
    let server = serve_h2(
        &certs,
        APP,
        &["--http-protocols", "h2,h1", "--access-logfile", "-"],
    );
    let out = python_client(&["httpx", &server.port().to_string()]);
    assert_eq!(out.str_at("get_version"), "HTTP/2");
    assert_eq!(out.at("get_status").as_i64(), Some(200));
    assert_eq!(out.at("environ").str_at("SERVER_PROTOCOL"), "HTTP/2.0");
    assert_eq!(
        out.at("environ").at("wsgi.multithread").as_bool(),
        Some(true)
    );
    assert_eq!(out.str_at("echo_version"), "HTTP/2");
    assert_eq!(out.at("echo_status").as_i64(), Some(200));
    assert_eq!(out.at("echo_length").as_i64(), Some(2 * 1024 * 1024));
    assert_eq!(out.at("echo_intact").as_bool(), Some(true));
    let logged = "\"POST /echo HTTP/2.0\" 200 2097152";
    let found = server
        .stdout()
        .wait(0, harness::STARTUP, |log| log.contains(logged));
    assert!(found, "{}", server.stdout().text());
}

#[test]
fn streams_of_one_connection_run_in_parallel_on_the_threads() {
    let certs = Certs::new();
    let server = serve_h2(
        &certs,
        APP,
        &["--http-protocols", "h2,h1", "--threads", "4"],
    );
    let url = format!("https://127.0.0.1:{}/slow?s=0.2", server.port());
    let started = Instant::now();
    let out = run(Command::new(program("nghttp")).args(["-ns", "-m", "100", &url]));
    let took = started.elapsed();
    let stats = String::from_utf8_lossy(&out.stdout);
    let answered = stats.lines().filter(|l| l.contains(" 200 ")).count();
    assert_eq!(answered, 100, "{stats}");
    // One after another: 100 × 0.2 s = 20 s. Four threads: about 5 s.
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn responses_far_larger_than_a_small_client_window_arrive_intact() {
    let certs = Certs::new();
    let server = serve_h2(&certs, APP, &["--http-protocols", "h2"]);
    // 5,000 bytes: the whole body still in the writer's buffer when the app is done,
    // so the head and body would leave as one burst, but the window is shorter: the
    // sink's slow path (the head first, then the body as the window opens).
    for (path, n) in [("big", 3_000_000), ("file", 3_000_000), ("big", 5_000)] {
        let url = format!("https://127.0.0.1:{}/{path}?n={n}", server.port());
        // 2^10-byte stream and connection windows: ~3000 WINDOW_UPDATE rounds.
        let out = run(Command::new(program("nghttp")).args(["-w", "10", "-W", "10", &url]));
        assert_pattern(&out.stdout, n);
    }
}

#[test]
fn the_http1_header_policy_applies_to_streams_and_a_refusal_ends_only_its_stream() {
    let certs = Certs::new();
    let server = serve_h2(&certs, APP, &["--http-protocols", "h2,h1"]);
    let request = |extra: &str| {
        format!(
            r#"[[":method","GET"],[":path","/environ"],[":scheme","https"],[":authority","localhost"]{extra}]"#
        )
    };
    let requests = format!(
        "[{},{},{}]",
        request(r#",["x_forwarded_for","10.9.9.9"],["x-ok","1"]"#),
        request(r#",["host","a"],["host","b"]"#),
        request(""),
    );
    let out = python_client(&["raw", &server.port().to_string(), &requests]);
    let answers = out.at("answers").as_array().unwrap();
    // `_` names are dropped as HTTP/1 drops them (--header-map drop).
    assert_eq!(answers[0].at("status").as_i64(), Some(200), "{out:?}");
    let doc = Json::parse(answers[0].str_at("body"));
    let http: Vec<&str> = doc
        .at("http")
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j.as_str().unwrap())
        .collect();
    assert_eq!(http, ["HTTP_HOST", "HTTP_X_OK"], "{doc:?}");
    assert_eq!(doc.str_at("HTTP_HOST"), "localhost");
    // Two Host fields: 400 on that stream, logged as Gunicorn logs it.
    assert_eq!(answers[1].at("status").as_i64(), Some(400), "{out:?}");
    assert!(
        answers[1].str_at("body").contains("more than one host"),
        "{out:?}"
    );
    // The same connection goes on.
    assert_eq!(answers[2].at("status").as_i64(), Some(200), "{out:?}");
    assert!(matches!(out.at("goaway"), Json::Null), "{out:?}");
    assert!(
        server.log().contains("Invalid request from ip=127.0.0.1"),
        "{}",
        server.log()
    );
}

#[test]
fn a_body_over_limit_request_body_gets_413_on_its_stream() {
    let certs = Certs::new();
    let server = serve_h2(
        &certs,
        APP,
        &[
            "--http-protocols",
            "h2,h1",
            "--limit-request-body",
            "100000",
        ],
    );
    let head = |length: &str| {
        format!(
            r#"[[":method","POST"],[":path","/echo"],[":scheme","https"],[":authority","localhost"]{length}]"#
        )
    };
    // A declared length over the limit is refused from the head; without one, when
    // the DATA passes it. Then a body within the limit, on the same connection.
    let requests = format!(
        r#"[{{"headers":{},"body":300000}},{{"headers":{},"body":300000}},{{"headers":{},"body":99000}}]"#,
        head(r#",["content-length","300000"]"#),
        head(""),
        head(""),
    );
    let out = python_client(&["raw", &server.port().to_string(), &requests]);
    let answers = out.at("answers").as_array().unwrap();
    for refused in &answers[..2] {
        assert_eq!(refused.at("status").as_i64(), Some(413), "{out:?}");
        assert!(
            refused
                .str_at("body")
                .contains("over the limit of 100000 bytes"),
            "{out:?}"
        );
    }
    assert_eq!(answers[2].at("status").as_i64(), Some(200), "{out:?}");
    assert_eq!(answers[2].str_at("body").len(), 99000, "{out:?}");
    assert!(matches!(out.at("goaway"), Json::Null), "{out:?}");
}

#[test]
fn a_flask_app_is_served_over_h2() {
    require_venv();
    let certs = Certs::new();
    let server = serve_h2(&certs, "flask_app:app", &["--http-protocols", "h2,h1"]);
    let (version, body) = curl(server.port(), "/?name=h2", &["--http2"]);
    assert_eq!((version.as_str(), &body[..]), ("2", &b"Hello, h2!"[..]));
    let (version, body) = curl(
        server.port(),
        "/json",
        &[
            "--http2",
            "-H",
            "content-type: application/json",
            "--data",
            r#"{"a": 2, "b": 3}"#,
        ],
    );
    assert_eq!(version, "2");
    assert_eq!(
        Json::parse(&String::from_utf8_lossy(&body))
            .at("sum")
            .as_i64(),
        Some(5)
    );
    let (version, body) = curl(server.port(), "/stream?n=3", &["--http2"]);
    assert_eq!(version, "2");
    assert_eq!(body, b"line 0\nline 1\nline 2\n");
}

#[test]
fn the_http2_flags_become_the_servers_settings() {
    let certs = Certs::new();
    let server = serve_h2(
        &certs,
        APP,
        &[
            "--http-protocols",
            "h2",
            "--http2-max-concurrent-streams",
            "7",
            "--http2-initial-window-size",
            "0x20000",
            "--http2-max-frame-size",
            "32768",
            "--http2-max-header-list-size",
            "20000",
        ],
    );
    let url = format!("https://127.0.0.1:{}/pid", server.port());
    let out = run(Command::new(program("nghttp")).args(["-nv", &url]));
    let trace = String::from_utf8_lossy(&out.stdout);
    let settings = trace
        .split("recv SETTINGS frame")
        .nth(1)
        .expect("the server's SETTINGS");
    for expected in [
        "SETTINGS_MAX_CONCURRENT_STREAMS(0x03):7",
        "SETTINGS_INITIAL_WINDOW_SIZE(0x04):131072",
        "SETTINGS_MAX_FRAME_SIZE(0x05):32768",
        "SETTINGS_MAX_HEADER_LIST_SIZE(0x06):20000",
    ] {
        assert!(settings.contains(expected), "{expected} not in:\n{trace}");
    }
}

#[test]
fn term_sends_goaway_and_running_streams_finish() {
    let certs = Certs::new();
    let server = serve_h2(&certs, APP, &["--http-protocols", "h2", "--threads", "4"]);
    term_during_four_slow_streams_lets_them_finish(server, "h2 slow start");
}

/// Asks for `/big?n=100000` (a body far beyond any window) from a client whose
/// initial window is 0, and asserts the stream gets its 200 head, no body byte, and
/// RST_STREAM(CANCEL) no sooner than `timeout`, the server's `--timeout`: a reader that
/// never opens its window cannot hold the stream, or its app thread, for longer.
pub(crate) fn zero_window_stream_is_cancelled_after(server: &Server, timeout: Duration) {
    let port = server.port().to_string();
    let requests = r#"[[[":method","GET"],[":path","/big?n=100000"],[":scheme","https"],[":authority","localhost"]]]"#;
    let started = Instant::now();
    let out = python_client(&["raw", &port, requests, r#"{"initial_window_size": 0}"#]);
    let answer = &out.at("answers").as_array().unwrap()[0];
    assert_eq!(answer.at("status").as_i64(), Some(200), "{out:?}");
    assert_eq!(answer.str_at("body"), "", "{out:?}");
    assert_eq!(answer.at("reset").as_i64(), Some(8), "{out:?}");
    assert!(started.elapsed() >= timeout, "{:?}", started.elapsed());
}

/// Opens four streams of `/slow?s=1.5` on one connection (nghttp), sends TERM once
/// the app has logged `started` for all four, and asserts that each stream is still
/// answered 200 and the server then exits: the GOAWAY lets running streams finish.
pub(crate) fn term_during_four_slow_streams_lets_them_finish(mut server: Server, started: &str) {
    let url = format!("https://127.0.0.1:{}/slow?s=1.5", server.port());
    let client = Command::new(program("nghttp"))
        .args(["-ns", "-m", "4", &url])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    server.wait_for(harness::STARTUP, "4 streams running", |log| {
        log.matches(started).count() >= 4
    });
    crate::os::signal(server.pid, "TERM");
    let out = wait_client(client, &server);
    let stats = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stats.lines().filter(|l| l.contains(" 200 ")).count(),
        4,
        "{stats}"
    );
    assert!(server.wait_exit(harness::EXIT_TIMEOUT).is_some());
}

/// The CLI refuses each bad value with Gunicorn's message, naming the flag.
#[test]
fn bad_http2_settings_are_refused_with_gunicorns_messages() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--http-protocols", "h2,h3"],
            "Invalid protocol 'h3'. Valid protocols: h1, h2",
        ),
        (
            &["--http-protocols", "h1,h1"],
            "Duplicate protocols specified",
        ),
        (
            &["--http2-cleartext", "sometimes"],
            "Invalid http2_cleartext: sometimes",
        ),
        (
            &["--http2-max-concurrent-streams", "0"],
            "must be at least 1: 0",
        ),
        (
            &["--http2-initial-window-size", "2147483648"],
            "must be at most 2147483647",
        ),
        (
            &["--http2-max-frame-size", "1000"],
            "between 16384 and 16777215, got 1000",
        ),
        (
            &["--http2-max-header-list-size", "-1"],
            "Value must be positive: -1",
        ),
    ];
    for (flags, message) in cases {
        let exited =
            ServerBuilder::new(&harness::app_args(APP, flags)).run_to_exit(harness::EXIT_TIMEOUT);
        assert_eq!(
            exited.status.code(),
            Some(2),
            "{flags:?}: {}",
            exited.stderr
        );
        assert!(
            exited.stderr.contains(message),
            "{flags:?}: {}",
            exited.stderr
        );
        assert!(
            exited.stderr.contains(flags[0]),
            "{flags:?}: {}",
            exited.stderr
        );
    }
}

#[test]
fn sync_falls_back_to_http11_with_gunicorns_warning() {
    let certs = Certs::new();
    let mut args: Vec<String> = certs.server_args();
    args.extend(["-k", "sync", "--http-protocols", "h2,h1"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = ServerBuilder::new(&harness::app_args(APP, &args)).start();
    let warning = "HTTP/2 is not supported by the sync worker. Use gthread, gevent, or asgi \
                   workers for HTTP/2 support. Falling back to HTTP/1.1 only.";
    assert_eq!(server.log().matches(warning).count(), 1, "{}", server.log());
    assert_eq!(curl(server.port(), "/pid", &["--http2"]).0, "1.1");
    let alpn = python_client(&["alpn", &server.port().to_string()]);
    assert!(
        matches!(alpn.at("alpn"), Json::Null),
        "no h2 offered: {alpn:?}"
    );
}

#[test]
fn h2_without_tls_is_warned_about() {
    let server = crate::harness::serve(APP, &["-k", "gthread", "--http-protocols", "h2,h1"]);
    let warning = "Warning: http_protocols includes h2 but there is no TLS and \
                   http2_cleartext is off, so HTTP/2 will never be negotiated.";
    assert!(server.log().contains(warning), "{}", server.log());
}

#[test]
fn max_requests_counts_streams_and_lets_the_connection_finish() {
    let certs = Certs::new();
    let mut server = serve_h2(
        &certs,
        APP,
        &[
            "--http-protocols",
            "h2",
            "--threads",
            "4",
            "--max-requests",
            "3",
        ],
    );
    let first = server.worker_pids[0];
    let url = format!("https://127.0.0.1:{}/slow?s=0.1", server.port());
    let out = run(Command::new(program("nghttp")).args(["-ns", "-m", "10", &url]));
    let stats = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stats.lines().filter(|l| l.contains(" 200 ")).count(),
        10,
        "{stats}"
    );
    server.wait_for_log(&format!("Worker exiting (pid: {first})"), harness::STARTUP);
    server.wait_for(harness::STARTUP, "a new worker", |log| {
        crate::harness::booted_pids(log).len() >= 2
    });
    let (version, pid) = curl(server.port(), "/pid", &["--http2"]);
    assert_eq!(version, "2");
    assert_ne!(String::from_utf8_lossy(&pid), first.to_string());
}

#[test]
fn a_client_that_never_opens_its_window_is_cut_after_the_timeout() {
    let certs = Certs::new();
    let server = serve_h2(&certs, APP, &["--http-protocols", "h2", "--timeout", "4"]);
    let worker = server.worker_pids[0];
    zero_window_stream_is_cancelled_after(&server, Duration::from_secs(4));
    // The same worker serves on (the app thread stamped the heartbeat meanwhile).
    let (version, pid) = curl(server.port(), "/pid", &["--http2"]);
    assert_eq!(
        (version.as_str(), String::from_utf8_lossy(&pid).as_ref()),
        ("2", worker.to_string().as_str())
    );
}
