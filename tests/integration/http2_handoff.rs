//! How an app thread hands an HTTP/2 stream's end back (gthread): on a connection
//! with one stream out, the thread writes the response's last frames itself and
//! does not wake the event loop (`src/worker/h2conn/wire.rs`). What must hold
//! whatever the thread does: every response and access-log line arrives without
//! stalls, a stream that blocks its thread delays no other connection, and a client
//! that resets a stream mid-response keeps its connection.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::{self, Server};
use crate::http2::{curl, program, python_client, run, serve_h2, wait_client};
use crate::json::Json;
use crate::tls::support::Certs;

const APP: &str = "h2_app:application";

/// h2load: `n` requests for /pid on one connection, one stream at a time; panics
/// unless all succeed.
fn h2load_one_at_a_time(url: &str, n: usize, server: &Server) -> Duration {
    let started = Instant::now();
    let out = run(Command::new(program("h2load")).args([
        "-n",
        &n.to_string(),
        "-c",
        "1",
        "-m",
        "1",
        url,
    ]));
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&out.stdout);
    let ok = format!("{n} succeeded, 0 failed");
    assert!(text.contains(&ok), "{text}\nserver log:\n{}", server.log());
    took
}

/// Sequential streams on one connection, with `--http2-max-concurrent-streams 1`:
/// a stream that arrives before the loop took back the previous one (its thread
/// wrote the response, then handed it back without a wake-up) waits for that
/// hand-back, which the connection then asks to be woken for. A missed hand-back
/// would stall the stream until the loop's half-second timer; 300 of them, minutes.
/// Every stream's access-log line arrives too. Over TLS and over h2c.
#[test]
fn one_stream_at_a_time_on_a_connection_never_waits_for_the_loops_timer() {
    let certs = Certs::new();
    let flags = [
        "--http2-max-concurrent-streams",
        "1",
        "--threads",
        "2",
        "--access-logfile",
        "-",
    ];
    let mut tls_flags = vec!["--http-protocols", "h2"];
    tls_flags.extend(flags);
    let tls = serve_h2(&certs, APP, &tls_flags);
    let mut h2c_flags = vec![
        "-k",
        "gthread",
        "--http-protocols",
        "h2,h1",
        "--http2-cleartext",
        "prior-knowledge",
    ];
    h2c_flags.extend(flags);
    let h2c = harness::serve(APP, &h2c_flags);
    for (server, scheme) in [(&tls, "https"), (&h2c, "http")] {
        let url = format!("{scheme}://127.0.0.1:{}/pid", server.port());
        let took = h2load_one_at_a_time(&url, 300, server);
        assert!(took < Duration::from_secs(30), "{scheme}: took {took:?}");
        let logged = server.stdout().wait(0, harness::STARTUP, |log| {
            log.matches("\"GET /pid HTTP/2.0\" 200").count() >= 300
        });
        assert!(logged, "{scheme}: {}", server.stdout().text());
    }
}

/// A stream whose app call blocks its thread delays neither the event loop nor a
/// stream on another connection.
#[test]
fn a_blocking_stream_does_not_delay_another_connections_stream() {
    let certs = Certs::new();
    let mut server = serve_h2(&certs, APP, &["--http-protocols", "h2", "--threads", "2"]);
    let url = format!("https://127.0.0.1:{}/slow?s=8", server.port());
    let slow = Command::new(program("curl"))
        .args(["-sk", "--http2", "--max-time", "60", &url])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    server.wait_for(harness::STARTUP, "the slow stream running", |log| {
        log.contains("h2 slow start")
    });
    let started = Instant::now();
    for _ in 0..5 {
        let (version, body) = curl(server.port(), "/pid", &["--http2"]);
        assert_eq!(version, "2");
        assert!(!body.is_empty());
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(6),
        "5 quick streams took {took:?}"
    );
    let out = wait_client(slow, &server);
    assert!(!out.stdout.is_empty(), "the slow stream got no answer");
}

/// The client resets a stream while its thread still sends (the body is far beyond
/// the window): the thread gives up on it, and the connection serves the next
/// stream; the worker serves other connections as before.
#[test]
fn a_client_reset_mid_response_leaves_the_connection_serving() {
    let certs = Certs::new();
    let server = serve_h2(&certs, APP, &["--http-protocols", "h2", "--threads", "2"]);
    let port = server.port().to_string();
    for _ in 0..3 {
        let out = python_client(&["reset", &port, "/big?n=4000000", "/pid"]);
        let first = out.at("first_bytes").as_i64().unwrap_or(0);
        assert!(first > 0 && first < 4_000_000, "{out:?}");
        assert_eq!(out.at("second_status").as_i64(), Some(200), "{out:?}");
        assert!(!out.str_at("second_body").is_empty(), "{out:?}");
    }
    assert_eq!(curl(server.port(), "/pid", &["--http2"]).0, "2");
    assert!(!server.log().contains("panicked"), "{}", server.log());
}

/// Regression guard for the loop's accounting of header blocks
/// (`FrameTap::header_blocks`): it asks h2 for another stream only while h2 may
/// hold one. Several streams' frames in one read, split mid-frame, with trailers
/// (a block that opens no stream), a refused stream, a body and a 100-continue:
/// every stream is answered, whatever the split.
#[test]
fn streams_whose_frames_arrive_together_or_in_pieces_are_all_answered() {
    let certs = Certs::new();
    let server = serve_h2(&certs, APP, &["--http-protocols", "h2,h1"]);
    let head = |method: &str, path: &str, extra: &str| {
        format!(
            r#"[[":method","{method}"],[":path","{path}"],[":scheme","https"],[":authority","localhost"]{extra}]"#
        )
    };
    let requests = format!(
        r#"[{{"headers":{}}},{{"headers":{},"body":700,"trailers":[["x-sum","1"]]}},{{"headers":{}}},{{"headers":{},"body":5}},{{"headers":{}}},{{"headers":{},"trailers":[["x-t","2"]]}},{{"headers":{}}}]"#,
        head("GET", "/environ", ""),
        head("POST", "/echo", ""),
        head("GET", "/environ", r#",["host","a"],["host","b"]"#),
        head("POST", "/echo", r#",["expect","100-continue"]"#),
        head("GET", "/environ", ""),
        head("POST", "/echo", ""),
        head("GET", "/environ", ""),
    );
    let port = server.port().to_string();
    for step in ["0", "1", "7", "100"] {
        let out = python_client(&["batch", &port, &requests, step]);
        let answers = out.at("answers").as_array().unwrap();
        let statuses: Vec<Option<i64>> = answers.iter().map(|a| a.at("status").as_i64()).collect();
        let ok = Some(200);
        assert_eq!(
            statuses,
            [ok, ok, Some(400), ok, ok, ok, ok],
            "step {step}: {out:?}"
        );
        assert_eq!(answers[1].str_at("body").len(), 700, "step {step}: {out:?}");
        assert_eq!(answers[3].str_at("body"), "xxxxx", "step {step}: {out:?}");
        assert_eq!(answers[5].str_at("body"), "", "step {step}: {out:?}");
        assert!(matches!(out.at("goaway"), Json::Null), "{out:?}");
    }
}

/// Streams that arrive together are dispatched in one batch of the loop's events, and
/// their threads are woken at the batch's end (`Pool::submit`): one thread for each
/// stream still queued then, so they run at once. Four streams on one connection (in
/// one write, h2load -m 4) meet at a barrier of four with `--threads 4`, round after
/// round; a thread too few, and the barrier breaks (500) after its timeout.
#[test]
fn streams_that_arrive_together_all_get_a_thread_at_once() {
    let certs = Certs::new();
    let server = serve_h2(
        &certs,
        "blocking:application",
        &["--http-protocols", "h2", "--threads", "4"],
    );
    for round in 0..3 {
        let url = format!(
            "https://127.0.0.1:{}/barrier?n=4&key=round{round}&timeout=20",
            server.port()
        );
        let out =
            run(Command::new(program("h2load")).args(["-n", "4", "-c", "1", "-m", "4", &url]));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("4 succeeded, 0 failed") && text.contains("status codes: 4 2xx"),
            "round {round}: {text}\nserver log:\n{}",
            server.log()
        );
    }
}
