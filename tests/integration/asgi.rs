//! `-k asgi` with raw ASGI apps (tests/apps/asgi_app.py): the scope, request bodies
//! small and large, response framing, keep-alive and pipelining, flow control both
//! ways, background tasks, client disconnects, app errors, lifespan, and the checks
//! that stop a start with the wrong kind of app.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::client::{get, request, Conn, Framing};
use crate::harness::{Server, ServerBuilder, IO_TIMEOUT};
use crate::json::Json;

pub fn serve_asgi(app: &str, extra: &[&str]) -> Server {
    let mut args = vec!["-k", "asgi", "-b", "127.0.0.1:0", "--chdir", "tests/apps"];
    args.extend_from_slice(extra);
    args.push(app);
    ServerBuilder::new(&args).start()
}

fn text_of(port: u16, path: &str) -> String {
    get(port, path).text()
}

#[test]
fn the_scope_carries_the_request_and_the_lifespan_state() {
    let server = serve_asgi("asgi_app:echo", &["--root-path", "/mnt/"]);
    let mut conn = Conn::open(server.port());
    let headers = [("Host", "app.example"), ("X-Thing", "Yes")];
    let r = conn.roundtrip(&request(
        "POST",
        "/a%20b/%C3%A9?q=1&r=%20",
        &headers,
        b"abc",
    ));
    assert_eq!(r.status, 200, "{r:?}");
    let doc = Json::parse(&r.text());
    let got: Vec<&str> = [
        "type",
        "http_version",
        "method",
        "scheme",
        "path",
        "raw_path",
        "query_string",
        "root_path",
        "body_head",
    ]
    .iter()
    .map(|k| doc.str_at(k))
    .collect();
    assert_eq!(
        got,
        [
            "http",
            "1.1",
            "POST",
            "http",
            "/a b/é",
            "/a%20b/%C3%A9",
            "q=1&r=%20",
            "/mnt",
            "abc"
        ]
    );
    assert_eq!(doc.at("asgi").str_at("version"), "3.0");
    assert_eq!(doc.at("asgi").str_at("spec_version"), "2.4");
    assert_eq!(doc.at("state").str_at("greeting"), "hello from lifespan");
    let pairs: Vec<(String, String)> = doc
        .at("headers")
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let h = h.as_array().unwrap();
            (
                h[0].as_str().unwrap().to_string(),
                h[1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        pairs.contains(&("host".into(), "app.example".into())),
        "{pairs:?}"
    );
    assert!(
        pairs.contains(&("x-thing".into(), "Yes".into())),
        "{pairs:?}"
    );
    let client = doc.at("client").as_array().unwrap();
    assert_eq!(client[0].as_str(), Some("127.0.0.1"));
    assert_eq!(
        client[1].as_i64(),
        Some(i64::from(conn.local_addr().port()))
    );
    let server_addr = doc.at("server").as_array().unwrap();
    assert_eq!(server_addr[1].as_i64(), Some(i64::from(server.port())));
    // A method and header names the worker keeps no shared objects for, and a
    // shared name sent in capitals, arrive as they would otherwise.
    let r = conn.roundtrip(&request(
        "PURGE",
        "/",
        &[("USER-AGENT", "caps"), ("X-Other", "1")],
        b"",
    ));
    let doc = Json::parse(&r.text());
    assert_eq!(doc.str_at("method"), "PURGE");
    let headers = format!("{:?}", doc.at("headers"));
    assert!(
        headers.contains("\"user-agent\"") && headers.contains("\"x-other\""),
        "{headers}"
    );
    assert!(!headers.contains("USER-AGENT"), "{headers}");
    // `client` is the connection's own address on each of its requests (the worker
    // shares one tuple per peer address), and another connection's on its own.
    let port_of = |doc: &Json| doc.at("client").as_array().unwrap()[1].as_i64();
    let own = Some(i64::from(conn.local_addr().port()));
    assert_eq!(port_of(&doc), own, "the second request's client");
    let mut other = Conn::open(server.port());
    let r = other.roundtrip(&request("GET", "/", &[], b""));
    let doc = Json::parse(&r.text());
    assert_eq!(port_of(&doc), Some(i64::from(other.local_addr().port())));
}

#[test]
fn large_bodies_arrive_whole_in_several_messages() {
    let server = serve_asgi("asgi_app:echo", &[]);
    let body: Vec<u8> = (0..(3 << 20)).map(|i| b'a' + (i % 26) as u8).collect();
    let r = Conn::open(server.port()).roundtrip(&request("PUT", "/big", &[], &body));
    let doc = Json::parse(&r.text());
    assert_eq!(doc.at("body_len").as_i64(), Some(3 << 20));
    assert!(
        doc.at("messages").as_i64().unwrap() > 1,
        "a 3 MiB body comes in chunks"
    );
    // A chunked upload too.
    let chunked = crate::client::chunked(&body[..100_000], 7_000);
    let te = [("Transfer-Encoding", "chunked")];
    let r = Conn::open(server.port()).roundtrip(&request("POST", "/c", &te, &chunked));
    assert_eq!(
        Json::parse(&r.text()).at("body_len").as_i64(),
        Some(100_000)
    );
}

#[test]
fn keep_alive_and_pipelined_requests_are_answered_in_order() {
    let server = serve_asgi("asgi_app:echo", &["--access-logfile", "-"]);
    let mut conn = Conn::open(server.port());
    for i in 0..3 {
        let r = conn.roundtrip(&request("GET", &format!("/k{i}"), &[], b""));
        assert_eq!(Json::parse(&r.text()).str_at("path"), format!("/k{i}"));
    }
    let mut burst = Vec::new();
    for i in 0..5 {
        burst.extend(request("GET", &format!("/p{i}"), &[], b""));
    }
    conn.send(&burst);
    for i in 0..5 {
        let r = conn.response();
        assert_eq!(Json::parse(&r.text()).str_at("path"), format!("/p{i}"));
    }
    assert!(
        server.stdout().wait(0, IO_TIMEOUT, |out| out
            .contains("\"GET /p4 HTTP/1.1\" 200")),
        "access log:\n{}",
        server.stdout().text()
    );
}

#[test]
fn a_response_without_length_is_chunked_on_1_1_and_closes_on_1_0() {
    let server = serve_asgi("asgi_app:stream", &[]);
    let r = Conn::open(server.port()).roundtrip(&request("GET", "/", &[], b""));
    assert_eq!((r.framing, r.complete), (Framing::Chunked, true), "{r:?}");
    assert!(r.text().starts_with("chunk 0\n") && r.text().ends_with("chunk 9\n"));
    let mut conn = Conn::open(server.port());
    conn.send(b"GET / HTTP/1.0\r\n\r\n");
    let r = conn.response();
    assert_eq!((r.framing, r.complete), (Framing::Close, true), "{r:?}");
    assert!(r.text().ends_with("chunk 9\n"));
}

#[test]
fn an_app_error_is_a_500_with_its_traceback_and_the_worker_serves_on() {
    let mut server = serve_asgi("asgi_app:fails", &[]);
    let r = get(server.port(), "/");
    assert_eq!(r.status, 500);
    server.wait_for_log("RuntimeError: boom in the app", IO_TIMEOUT);
    assert!(server.log().contains("Error in ASGI application"));
    assert_eq!(
        get(server.port(), "/again").status,
        500,
        "the worker still answers"
    );
    assert_eq!(server.booted_pids().len(), 1, "no worker was replaced");
}

/// The app produces 64 MiB as fast as it can; a client that does not read makes its
/// send() wait instead of the worker buffering it all.
#[test]
fn a_slow_reader_makes_the_apps_send_wait() {
    let server = serve_asgi("asgi_app:flood", &[]);
    let mut flood = Conn::open(server.port());
    flood.send(&request("GET", "/flood", &[], b""));
    std::thread::sleep(Duration::from_millis(500));
    let progress: usize = text_of(server.port(), "/progress").parse().unwrap();
    assert!(
        progress < 16,
        "{progress} MiB accepted by send() while the client read nothing"
    );
    let r = flood.response();
    assert_eq!((r.body.len(), r.complete), (64 << 20, true));
    assert_eq!(text_of(server.port(), "/progress"), "64");
}

/// Starlette's BackgroundTasks run after the response: the connection is free for
/// the next request meanwhile (Gunicorn 27.0.1's fix).
#[test]
fn the_next_request_is_served_while_a_background_task_runs() {
    let server = serve_asgi("asgi_app:background_task", &[]);
    let mut conn = Conn::open(server.port());
    let started = Instant::now();
    assert_eq!(
        conn.roundtrip(&request("GET", "/slow-tail", &[], b""))
            .text(),
        "0"
    );
    assert_eq!(
        conn.roundtrip(&request("GET", "/count", &[], b"")).text(),
        "0"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_client_that_leaves_mid_stream_is_a_disconnect_for_the_app() {
    let server = serve_asgi("asgi_app:wait_for_disconnect", &[]);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
        .write_all(&request("GET", "/hold", &[], b""))
        .unwrap();
    let mut first = [0u8; 64];
    let n = stream.read(&mut first).unwrap();
    assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));
    drop(stream);
    let deadline = Instant::now() + IO_TIMEOUT;
    while text_of(server.port(), "/seen") != "1" {
        assert!(
            Instant::now() < deadline,
            "the app never saw http.disconnect"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_failed_lifespan_startup_stops_the_server() {
    let args = [
        "-k",
        "asgi",
        "-w",
        "2",
        "-b",
        "127.0.0.1:0",
        "--chdir",
        "tests/apps",
        "asgi_app:startup_fails",
    ];
    let out = ServerBuilder::new(&args).run_to_exit(Duration::from_secs(60));
    assert!(!out.status.success());
    assert!(
        out.stderr.contains("ASGI lifespan startup failed")
            && out.stderr.contains("the database is not there"),
        "{}",
        out.stderr
    );
    assert!(
        crate::harness::booted_pids(&out.stderr).len() <= 2,
        "no respawn loop:\n{}",
        out.stderr
    );
    assert!(!out.leftover_workers);
}

#[test]
fn the_wrong_kind_of_app_stops_the_start_naming_the_worker_class() {
    let cases: &[(&[&str], &str)] = &[
        (&["asgi_app:hello"], "run it with -k asgi"),
        (
            &["-k", "gthread", "asgi_app:hello"],
            "run it with -k asgi, not -k gthread",
        ),
        (
            &["-k", "asgi", "asgi_app:wsgi_app"],
            "runs with -k sync or -k gthread",
        ),
        (
            &["-k", "asgi", "--preload", "asgi_app:wsgi_app"],
            "runs with -k sync or -k gthread",
        ),
    ];
    for (flags, needle) in cases {
        let mut args = vec!["-b", "127.0.0.1:0", "--chdir", "tests/apps"];
        args.extend_from_slice(flags);
        let out = ServerBuilder::new(&args).run_to_exit(Duration::from_secs(60));
        assert!(
            !out.status.success() && out.stderr.contains(needle),
            "{flags:?}:\n{}",
            out.stderr
        );
    }
}

#[test]
fn uvicorns_worker_class_is_served_by_the_asgi_worker() {
    let args = [
        "-k",
        "uvicorn.workers.UvicornWorker",
        "-b",
        "127.0.0.1:0",
        "--chdir",
        "tests/apps",
        "asgi_app:hello",
    ];
    let server = ServerBuilder::new(&args).start();
    assert_eq!(get(server.port(), "/").text(), "Hello, World!");
    assert!(
        server
            .log()
            .contains("uvicorn.workers.UvicornWorker is served by rustcorn's own asgi worker"),
        "{}",
        server.log()
    );
}

/// `--user`: the worker imports its event loop while still root (the standard library
/// may be unreadable for `nobody`), then serves as `nobody`.
#[test]
fn an_asgi_worker_switches_user_and_serves() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test runs the server as root"
    );
    let server = serve_asgi("asgi_app:hello", &["--user", "nobody"]);
    assert_eq!(get(server.port(), "/").text(), "Hello, World!");
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", server.worker_pids[0])).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(uid.split_whitespace().nth(1) == Some("65534"), "{uid}");
}

/// A synchronous call that blocks the event loop stops the heartbeat: the master
/// aborts the worker after --timeout and a new one serves.
#[test]
fn a_blocked_event_loop_is_aborted_after_the_timeout() {
    let mut server = serve_asgi("asgi_app:ops", &["--timeout", "2"]);
    let first = server.worker_pids[0];
    let _ = crate::client::try_get(server.port(), "/block");
    server.wait_for_log("WORKER TIMEOUT", Duration::from_secs(30));
    server.wait_for(Duration::from_secs(30), "a new worker", |log| {
        crate::harness::booted_pids(log).len() >= 2
    });
    let pid: u32 = text_of(server.port(), "/pid").parse().unwrap();
    assert_ne!(pid, first);
}

/// TERM lets an in-flight request finish; --max-requests replaces the worker
/// without a failed request.
#[test]
fn term_is_graceful_and_max_requests_recycles() {
    let mut server = serve_asgi("asgi_app:ops", &["--max-requests", "3"]);
    let mut pids = std::collections::BTreeSet::new();
    for _ in 0..7 {
        let r = get(server.port(), "/pid");
        assert_eq!(r.status, 200);
        pids.insert(r.text());
    }
    assert!(pids.len() >= 2, "the worker was recycled: {pids:?}");
    let port = server.port();
    let slow = std::thread::spawn(move || get(port, "/slow"));
    std::thread::sleep(Duration::from_millis(300));
    let status = server.stop_with("TERM");
    assert!(status.success(), "{status:?}");
    let r = slow.join().unwrap();
    assert_eq!(r.status, 200, "the in-flight request finished");
}

/// `pre_request` and `post_request` from a Gunicorn config file run around an ASGI
/// request too; a `pre_request` that raises makes it a 500.
#[test]
fn request_hooks_run_around_asgi_requests() {
    let dir = crate::harness::Scratch::new("asgi-hooks");
    let record = dir.path().join("calls");
    let args = [
        "-k",
        "asgi",
        "-c",
        "tests/configs/hooks_record.py",
        "-b",
        "127.0.0.1:0",
        "--chdir",
        "tests/apps",
        "asgi_app:echo",
    ];
    let mut server = ServerBuilder::new(&args)
        .env("HOOKS_RECORD", record.to_str().unwrap())
        .start();
    let r = get(server.port(), "/a/b?x=1");
    assert_eq!(r.status, 200);
    let calls = crate::harness::wait_for_file(&record, IO_TIMEOUT, |t| t.contains("post_request"));
    let line = |name: &str| {
        calls
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {calls}"))
            .to_string()
    };
    let pre: Vec<String> = line("pre_request ")
        .split(' ')
        .map(str::to_string)
        .collect();
    assert_eq!(pre[2..5], ["GET", "/a/b", "x=1"], "{calls}");
    let post: Vec<String> = line("post_request ")
        .split(' ')
        .map(str::to_string)
        .collect();
    assert_eq!(
        (
            post[2].as_str(),
            post[4].as_str(),
            post[5].as_str(),
            post[6].as_str()
        ),
        ("/a/b", "200", "OK", "200"),
        "{calls}"
    );
    let mark = server.log_mark();
    assert_eq!(get(server.port(), "/hook-raises").status, 500);
    server.wait_for_log_since(mark, "RuntimeError: pre_request refuses", IO_TIMEOUT);
}

/// `--asgi-disconnect-grace-period`: an app that ignores its client leaving is
/// cancelled once the grace period is over.
#[test]
fn an_app_that_ignores_a_disconnect_is_cancelled_after_the_grace_period() {
    let server = serve_asgi(
        "asgi_app:ignores_disconnect",
        &["--asgi-disconnect-grace-period", "1"],
    );
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
        .write_all(&request("GET", "/linger", &[], b""))
        .unwrap();
    let mut first = [0u8; 32];
    assert!(stream.read(&mut first).unwrap() > 0);
    drop(stream);
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        let doc = Json::parse(&text_of(server.port(), "/outcomes"));
        if doc.at("cancelled").as_i64() == Some(1) {
            assert_eq!(doc.at("finished").as_i64(), Some(0));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the task was never cancelled: {doc:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `http.response.informational`: 103 Early Hints go out before the response.
#[test]
fn early_hints_come_before_the_response() {
    let server = serve_asgi("asgi_app:early_hints", &[]);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
        .write_all(&request("GET", "/", &[("Connection", "close")], b""))
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload; as=style\r\n\r\nHTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\nok"), "{text}");
}

#[test]
fn a_malformed_response_message_is_a_500_naming_the_problem() {
    let mut server = serve_asgi("asgi_app:bad_messages", &[]);
    let cases = [
        ("/status-99", "invalid status 99 for http.response.start"),
        (
            "/status-text",
            "http.response.start: the status must be an int",
        ),
        ("/no-status", "http.response.start without a status"),
        ("/header-str", "header names must be bytes"),
        ("/header-crlf", "invalid header value for x-a"),
        ("/header-name", "invalid header name \"x a\""),
    ];
    for (path, message) in cases {
        let mark = server.log_mark();
        let resp = get(server.port(), path);
        assert_eq!(resp.status, 500, "{path}");
        assert!(!resp.text().contains("never"), "{path}");
        server.wait_for_log_since(mark, message, IO_TIMEOUT);
    }
}

/// An app that returns at once from the lifespan scope has no lifespan support under
/// `--asgi-lifespan auto` (it is served, as Uvicorn serves it); under `on` its startup
/// never completed, and the start stops saying so.
#[test]
fn an_app_returning_from_lifespan_is_served_under_auto_and_stops_the_start_under_on() {
    let server = serve_asgi("asgi_app:ignores_lifespan", &[]);
    assert_eq!(text_of(server.port(), "/"), "ok");
    let args = [
        "-k",
        "asgi",
        "--asgi-lifespan",
        "on",
        "-b",
        "127.0.0.1:0",
        "--chdir",
        "tests/apps",
        "asgi_app:ignores_lifespan",
    ];
    let out = ServerBuilder::new(&args).run_to_exit(Duration::from_secs(60));
    assert!(!out.status.success());
    assert!(
        out.stderr
            .contains("returned from the lifespan scope before lifespan.startup.complete"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_request_runs_in_an_asyncio_task_and_receive_gives_its_body() {
    let server = serve_asgi("asgi_app:current_task", &[]);
    let mut conn = Conn::open(server.port());
    let r = conn.roundtrip(&request("POST", "/", &[], b"abc"));
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "True rustcorn request b'abc'");
}

#[test]
fn a_task_factory_the_app_sets_at_startup_makes_the_request_tasks() {
    let server = serve_asgi("asgi_app:task_factory", &[]);
    assert_eq!(text_of(server.port(), "/"), "made by the app's factory");
}
