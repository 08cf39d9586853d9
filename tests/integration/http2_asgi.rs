//! `-k asgi` over HTTP/2 (TLS with ALPN `h2`): tests/apps/asgi_h2_app.py (FastAPI
//! routes, raw ASGI handlers under /raw/) driven by real clients — httpx, curl, nghttp
//! — and, for trailers, 103 Early Hints and resets, Python's `h2` package
//! (tests/integration/http2/asgi_client.py).
//!
//! Covered: FastAPI GET/POST/422/StreamingResponse and the scope over h2, 100 streams
//! of one connection running as concurrent tasks, a response far beyond the client's
//! window arriving whole with the worker's memory flat, `http.response.trailers`,
//! `http.response.informational`, `http.response.pathsend`, a client resetting a
//! stream mid-response (the app's send raises and receive says `http.disconnect`;
//! the worker serves on), the access log per stream, graceful TERM, and
//! `pre_request`/`post_request` once around each stream.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::{self, repo_root, require_venv, Server, ServerBuilder};
use crate::http2::{curl, program, run, zero_window_stream_is_cancelled_after};
use crate::json::Json;
use crate::tls::support::Certs;

const APP: &str = "asgi_h2_app:application";

/// Serves the app over TLS with `-k asgi`, h2 offered first, and `extra` flags.
fn serve_asgi_h2(certs: &Certs, extra: &[&str]) -> Server {
    let mut args: Vec<String> = certs.server_args();
    args.extend(["-k", "asgi", "--http-protocols", "h2,h1"].map(String::from));
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ServerBuilder::new(&harness::app_args(APP, &args)).start()
}

/// tests/integration/http2/asgi_client.py with the test venv's Python; its JSON.
fn asgi_client(mode: &str, port: u16) -> Json {
    let python = require_venv().join("bin/python");
    let script = repo_root().join("tests/integration/http2/asgi_client.py");
    let out = run(Command::new(python)
        .arg(script)
        .args([mode, &port.to_string()]));
    Json::parse(&String::from_utf8_lossy(&out.stdout))
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Byte i of /big's body is i % 251.
fn assert_pattern(body: &[u8], n: usize) {
    assert_eq!(body.len(), n, "body length");
    if let Some(i) = (0..n).find(|&i| body[i] != (i % 251) as u8) {
        panic!("byte {i} of {n} is {} not {}", body[i], i % 251);
    }
}

#[test]
fn fastapi_over_h2_answers_httpx_and_curl_and_logs_each_stream() {
    let certs = Certs::new();
    let server = serve_asgi_h2(&certs, &["--access-logfile", "-"]);
    let out = asgi_client("fastapi", server.port());
    assert_eq!(
        out.at("versions").as_array().unwrap()[0].as_str(),
        Some("HTTP/2"),
        "{out:?}"
    );
    assert_eq!(out.at("item").at("item_id").as_i64(), Some(5));
    assert_eq!(out.at("item").str_at("q"), "x");
    assert_eq!(out.at("created").at("taxed").as_f64(), Some(3.0));
    assert_eq!(out.at("invalid_status").as_i64(), Some(422));
    assert_eq!(
        out.at("invalid_loc").as_array().unwrap()[1].as_str(),
        Some("price")
    );
    assert_eq!(
        out.str_at("stream"),
        "line 0\nline 1\nline 2\nline 3\nline 4\n"
    );
    assert_eq!(out.at("scope").str_at("http_version"), "2");
    let extensions = out.at("scope").at("extensions");
    assert_eq!(
        extensions.as_array().unwrap()[1].as_str(),
        Some("http.response.trailers")
    );
    assert_eq!(out.at("echo_status").as_i64(), Some(200));
    assert_eq!(out.at("echo_intact").as_bool(), Some(true));

    let (version, body) = curl(server.port(), "/items/7?q=curl", &["--http2"]);
    assert_eq!(version, "2");
    assert_eq!(
        String::from_utf8_lossy(&body),
        r#"{"item_id":7,"q":"curl"}"#
    );
    let logged = "\"GET /items/7?q=curl HTTP/2.0\" 200 24";
    let found = server
        .stdout()
        .wait(0, harness::STARTUP, |log| log.contains(logged));
    assert!(found, "{}", server.stdout().text());
}

#[test]
fn a_hundred_streams_of_one_connection_run_as_concurrent_tasks() {
    let certs = Certs::new();
    let server = serve_asgi_h2(&certs, &[]);
    let url = format!("https://127.0.0.1:{}/slow?s=0.5", server.port());
    let started = Instant::now();
    let out = run(Command::new(program("nghttp")).args(["-ns", "-m", "100", &url]));
    let took = started.elapsed();
    let stats = String::from_utf8_lossy(&out.stdout);
    let answered = stats.lines().filter(|l| l.contains(" 200 ")).count();
    assert_eq!(answered, 100, "{stats}");
    // One after another: 100 × 0.5 s = 50 s; as tasks of one worker, about 0.5 s.
    assert!(took < Duration::from_secs(15), "took {took:?}");
}

#[test]
fn a_response_far_beyond_the_window_arrives_whole_and_memory_stays_flat() {
    let certs = Certs::new();
    let server = serve_asgi_h2(&certs, &[]);
    let worker = server.worker_pids[0];
    let port = server.port();
    // 2^10-byte stream and connection windows: thousands of WINDOW_UPDATE rounds.
    let n = 8 * 1024 * 1024;
    let url = format!("https://127.0.0.1:{port}/big?n={n}");
    let out = run(Command::new(program("nghttp")).args(["-w", "10", "-W", "10", &url]));
    assert_pattern(&out.stdout, n);
    let before = rss_kib(worker);
    // 32 MiB to a client reading as its 64 KiB window allows: the app waits in
    // send(), so the worker holds a few pieces, not the response.
    let n = 32 * 1024 * 1024;
    let url = format!("https://127.0.0.1:{port}/big?n={n}");
    let out = run(Command::new(program("nghttp")).arg(&url));
    assert_pattern(&out.stdout, n);
    let after = rss_kib(worker);
    assert!(
        after < before + 16 * 1024,
        "worker RSS grew from {before} KiB to {after} KiB"
    );
}

#[test]
fn trailers_early_hints_and_pathsend_reach_an_h2_client() {
    let certs = Certs::new();
    let server = serve_asgi_h2(&certs, &[]);
    let out = asgi_client("frames", server.port());
    let trailers = out.at("trailers");
    assert_eq!(trailers.at("headers").str_at(":status"), "200");
    assert_eq!(trailers.str_at("body"), "hello trailers");
    assert_eq!(trailers.at("trailers").str_at("x-checksum"), "abc123");
    assert_eq!(trailers.at("trailers").str_at("x-status"), "done");
    let hints = out.at("hints");
    let hint = &hints.at("informational").as_array().unwrap()[0];
    assert_eq!(hint.str_at(":status"), "103", "{out:?}");
    assert_eq!(hint.str_at("link"), "</style.css>; rel=preload; as=style");
    assert_eq!(hints.at("headers").str_at(":status"), "200");
    assert_eq!(hints.str_at("body"), "hinted");

    let (version, body) = curl(server.port(), "/raw/pathsend", &["--http2"]);
    assert_eq!(version, "2");
    let file = std::fs::read(repo_root().join("tests/apps/asgi_h2_app.py")).unwrap();
    assert!(body == file, "pathsend body differs from the file");
}

#[test]
fn a_stream_reset_mid_response_reaches_the_app_and_the_worker_serves_on() {
    let certs = Certs::new();
    let server = serve_asgi_h2(&certs, &[]);
    let port = server.port();
    let out = asgi_client("reset", port);
    assert!(out.at("received").as_i64().unwrap() >= 64 * 1024, "{out:?}");
    // A new connection: the app recorded what its send() and receive() saw.
    let deadline = Instant::now() + harness::IO_TIMEOUT;
    let events = loop {
        let (version, body) = curl(port, "/raw/events", &["--http2"]);
        assert_eq!(version, "2");
        let events = String::from_utf8_lossy(&body).into_owned();
        if events.contains("send raised") || Instant::now() > deadline {
            break events;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        events.contains("send raised ClientDisconnected"),
        "{events}"
    );
    assert!(events.contains("receive: http.disconnect"), "{events}");
    assert_eq!(server.booted_pids().len(), 1, "{}", server.log());
}

#[test]
fn term_lets_running_asgi_streams_finish() {
    let certs = Certs::new();
    let server = serve_asgi_h2(&certs, &[]);
    crate::http2::term_during_four_slow_streams_lets_them_finish(server, "asgi h2 slow start");
}

#[test]
fn a_client_that_never_opens_its_window_has_the_stream_cancelled_after_the_timeout() {
    let certs = Certs::new();
    // Not shorter: --timeout also bounds a worker's boot (the app's import), which took
    // over 4 s on a CI machine loaded tenfold, and the arbiter then killed each new worker.
    let server = serve_asgi_h2(&certs, &["--timeout", "8"]);
    let worker = server.worker_pids[0];
    // RST_STREAM(CANCEL) once send() waited --timeout for the window.
    zero_window_stream_is_cancelled_after(&server, Duration::from_secs(8));
    // The same worker serves on, and the cancel was no app error.
    let (version, _) = curl(server.port(), "/items/1", &["--http2"]);
    assert_eq!(version, "2");
    assert_eq!(server.booted_pids(), vec![worker], "{}", server.log());
    assert!(
        !server.log().contains("Error in ASGI application"),
        "{}",
        server.log()
    );
}

#[test]
fn max_requests_counts_streams_and_the_connection_finishes_its_tasks() {
    let certs = Certs::new();
    let mut server = serve_asgi_h2(&certs, &["--max-requests", "3"]);
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
    let (version, _) = curl(server.port(), "/items/2", &["--http2"]);
    assert_eq!(version, "2");
}

/// `pre_request` and `post_request` from a config file run once around each stream
/// (five at once on one connection, each seeing its own request and response), and
/// a `pre_request` that raises answers its stream 500 with the hook named in the log,
/// as for an HTTP/1 request.
#[test]
fn request_hooks_run_once_around_each_concurrent_stream() {
    let certs = Certs::new();
    let dir = harness::Scratch::new("asgi-h2-hooks");
    let record = dir.path().join("calls");
    let mut args: Vec<String> = certs.server_args();
    args.extend(["-k", "asgi", "--http-protocols", "h2,h1", "-c"].map(String::from));
    args.push(
        repo_root()
            .join("tests/configs/h2_hooks_record.py")
            .display()
            .to_string(),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut server = ServerBuilder::new(&harness::app_args(APP, &args))
        .env("HOOKS_RECORD", record.to_str().unwrap())
        .start();
    let base = format!("https://127.0.0.1:{}", server.port());
    // Each /slow stream sleeps 2 s: all five are running before the first ends.
    let mut urls: Vec<String> = (0..5).map(|n| format!("{base}/slow?s=2&n={n}")).collect();
    urls.push(format!("{base}/hook-raises"));
    let mark = server.log_mark();
    let out = run(Command::new(program("nghttp")).arg("-ns").args(&urls));
    let stats = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stats.matches(" 200 ").count(), 5, "{stats}");
    assert_eq!(stats.matches(" 500 ").count(), 1, "{stats}");
    server.wait_for_log_since(mark, "Exception in pre_request hook", harness::IO_TIMEOUT);
    server.wait_for_log_since(
        mark,
        "RuntimeError: pre_request refuses",
        harness::IO_TIMEOUT,
    );

    let calls = harness::wait_for_file(&record, harness::IO_TIMEOUT, |t| {
        t.matches("post ").count() >= 6
    });
    let lines: Vec<&str> = calls.lines().collect();
    for n in 0..5 {
        let query = format!("s=2&n={n}");
        let pre = format!("pre GET /slow {query} 2.0");
        let post = format!("post /slow {query} 200 application/json 13");
        assert_eq!(lines.iter().filter(|l| **l == pre).count(), 1, "{calls}");
        assert_eq!(lines.iter().filter(|l| **l == post).count(), 1, "{calls}");
    }
    let last_pre = lines.iter().rposition(|l| l.starts_with("pre ")).unwrap();
    let first_post = lines
        .iter()
        .position(|l| l.starts_with("post /slow"))
        .unwrap();
    assert!(last_pre < first_post, "the streams ran one by one: {calls}");
    let refused = "post /hook-raises - 500 text/plain ";
    let refusals = lines.iter().filter(|l| l.starts_with(refused)).count();
    assert_eq!(refusals, 1, "{calls}");
    assert_eq!(lines.len(), 11, "{calls}");
}
