//! The gthread worker (`-k gthread --threads N`, or `--threads N` > 1 alone,
//! as in Gunicorn): N app threads per worker, while the worker's event loop
//! keeps accepting, parsing and keeping keep-alive books. Concurrency is
//! proved by construction with tests/apps/blocking.py, never by timing: a
//! barrier that only N calls inside the app at once can pass, and requests
//! parked in the app until the test releases them.

use std::thread;
use std::time::Duration;

use crate::client::{parse_responses, request, try_get, Conn, Framing, Response};
use crate::faults::{assert_faults_before_headers, worker_pid, FAULTS};
use crate::harness::{app_args, serve, Scratch, Server, ServerBuilder, IO_TIMEOUT, STARTUP};
use crate::json::Json;
use crate::wsgi_env::{echo, ECHO};

/// The fixture app with the barrier, park and sleep endpoints.
pub const BLOCKING: &str = "blocking:application";

/// GETs every path at once, each on its own connection and client thread;
/// (status, body) or the error, per path in order.
fn get_all_at_once(port: u16, paths: &[String]) -> Vec<Result<(u16, String), String>> {
    let clients: Vec<_> = paths
        .iter()
        .cloned()
        .map(|path| {
            thread::spawn(move || {
                try_get(port, &path)
                    .map(|r| (r.status, r.text()))
                    .map_err(|e| format!("GET {path}: {e}"))
            })
        })
        .collect();
    clients
        .into_iter()
        .map(|c| c.join().expect("client thread"))
        .collect()
}

/// A blocking.py server whose `/park` waits for files in `scratch`.
/// One gthread worker with two app threads and long keep-alive.
const TWO_THREADS_KEPT_ALIVE: &[&str] = &[
    "-k",
    "gthread",
    "--threads=2",
    "--workers=1",
    "--keep-alive=120",
];

fn serve_parking(scratch: &Scratch, extra: &[&str]) -> Server {
    ServerBuilder::new(&app_args(BLOCKING, extra))
        .env("RUSTCORN_TEST_PARK_DIR", scratch.path().to_str().unwrap())
        .start()
}

/// Sends `GET /park?key=K` (keep-alive) on a new connection and waits until
/// the call is inside the app; the response comes after [`release`].
fn park(server: &mut Server, key: &str) -> Conn {
    let mut conn = Conn::open(server.port());
    conn.send(&request("GET", &format!("/park?key={key}"), &[], b""));
    server.wait_for_log(&format!("parked key={key}\n"), STARTUP);
    conn
}

/// Lets the app call parked under `key` return.
fn release(scratch: &Scratch, key: &str) {
    std::fs::write(scratch.path().join(key), b"").expect("write the release file");
}

fn pid_request() -> Vec<u8> {
    request("GET", "/pid", &[], b"")
}

/// What a test compares: status and body text.
fn served(r: Response) -> (u16, String) {
    (r.status, r.text())
}

#[test]
fn threads_flag_runs_exactly_that_many_app_calls_at_once() {
    // (flags, calls that must meet at the barrier, barrier timeout in s,
    // the status every call gets: 200 only if all were in the app at once)
    let cases: &[(&[&str], usize, u32, u16)] = &[
        (&["--threads", "4"], 4, 20, 200),
        (&["-k", "gthread", "--threads=4"], 4, 20, 200),
        // One more call than threads: the barrier can never fill.
        (&["--worker-class", "gthread", "--threads", "2"], 3, 3, 500),
        // sync: one app call at a time per process.
        (&[], 2, 3, 500),
    ];
    for (flags, n, timeout, status) in cases {
        let mut extra = vec!["--workers=1"];
        extra.extend_from_slice(flags);
        let server = serve(BLOCKING, &extra);
        let paths: Vec<String> = (0..*n)
            .map(|_| format!("/barrier?n={n}&key=k&timeout={timeout}"))
            .collect();
        let body = if *status == 200 {
            format!("met {n}")
        } else {
            "barrier broken".to_string()
        };
        assert_eq!(
            get_all_at_once(server.port(), &paths),
            vec![Ok((*status, body)); *n],
            "{flags:?}: {n} concurrent calls; log:\n{}",
            server.log()
        );
    }
}

#[test]
fn a_fresh_workers_first_requests_on_every_thread_at_once_are_all_served() {
    // A worker's first requests build the first environs, which initialise the
    // interned environ keys: one thread did that (letting go of the GIL) while it
    // held the environ's value memo, and another took the GIL and waited for the
    // memo: both app threads hung and no request was ever answered. Each round is
    // a fresh worker whose first calls all arrive at once.
    let threads = 8;
    for round in 0..10 {
        let server = serve(BLOCKING, &["--workers=1", "--threads=8"]);
        let paths: Vec<String> = (0..threads)
            .map(|_| format!("/barrier?n={threads}&key=first&timeout=20"))
            .collect();
        assert_eq!(
            get_all_at_once(server.port(), &paths),
            vec![Ok((200, format!("met {threads}"))); threads],
            "round {round}: {threads} first calls at once; log:\n{}",
            server.log()
        );
    }
}

#[test]
fn worker_class_and_wsgi_multithread_follow_threads_and_k() {
    // (flags, the `Using worker:` the master logs, environ's wsgi.multithread)
    let cases: &[(&[&str], &str, bool)] = &[
        (&[], "sync", false),
        (&["-k", "sync"], "sync", false),
        (&["-k", "gthread"], "gthread", true),
        (&["--threads=3"], "gthread", true),
        (&["-k", "sync", "--threads", "2"], "gthread", true),
        (
            &["--worker-class=gthread", "--threads", "2"],
            "gthread",
            true,
        ),
    ];
    for (flags, class, multithread) in cases {
        let server = serve(ECHO, flags);
        let log = server.log();
        assert!(
            log.contains(&format!("] [INFO] Using worker: {class}\n")),
            "{flags:?}: want `Using worker: {class}` in:\n{log}"
        );
        let doc = echo(
            server.port(),
            &request("GET", "/", &[("Connection", "close")], b""),
        );
        assert_eq!(
            doc.at("environ").get("wsgi.multithread"),
            Some(&Json::Bool(*multithread)),
            "{flags:?}"
        );
    }
}

#[test]
fn parked_app_call_leaves_the_worker_serving_other_connections() {
    let scratch = Scratch::new("park");
    let mut server = serve_parking(&scratch, TWO_THREADS_KEPT_ALIVE);
    let port = server.port();
    let by_worker = (200, server.worker_pids[0].to_string());
    // A keep-alive connection in use before anything is parked.
    let mut kept = Conn::open(port);
    assert_eq!(served(kept.roundtrip(&pid_request())), by_worker);

    let mut parked = park(&mut server, "a");
    for round in 0..10 {
        let fresh = try_get(port, "/pid").map(served);
        assert_eq!(
            fresh.ok(),
            Some(by_worker.clone()),
            "new connection {round}"
        );
        assert_eq!(
            served(kept.roundtrip(&pid_request())),
            by_worker,
            "kept connection {round}"
        );
    }
    release(&scratch, "a");
    assert_eq!(served(parked.response()), (200, "released a".to_string()));
    assert_eq!(served(parked.roundtrip(&pid_request())), by_worker);
}

#[test]
fn event_loop_reads_and_parses_kept_connections_while_every_app_thread_is_busy() {
    let scratch = Scratch::new("busy");
    let mut server = serve_parking(&scratch, TWO_THREADS_KEPT_ALIVE);
    let port = server.port();
    let by_worker = (200, server.worker_pids[0].to_string());
    let (mut kept, mut waiting) = (Conn::open(port), Conn::open(port));
    for conn in [&mut kept, &mut waiting] {
        assert_eq!(served(conn.roundtrip(&pid_request())), by_worker);
    }
    let mut parked = [park(&mut server, "a"), park(&mut server, "b")];
    // No app thread is free: the 400 can only come from the event loop.
    kept.send(b"GARBAGE\r\n\r\n");
    let statuses: Vec<u16> = parse_responses(&kept.read_rest(), &[])
        .expect("a response")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [400], "malformed request on a kept connection");
    // A valid request waits for a thread and is answered once one is free.
    waiting.send(&pid_request());
    release(&scratch, "a");
    release(&scratch, "b");
    for (conn, key) in parked.iter_mut().zip(["a", "b"]) {
        assert_eq!(served(conn.response()), (200, format!("released {key}")));
    }
    assert_eq!(served(waiting.response()), by_worker);
}

/// Accept policy: a worker whose every app thread is busy leaves new connections in
/// the shared listen queue, so an idle worker serves them instead of the client
/// queueing behind a slow call.
#[test]
fn new_connections_go_to_a_worker_with_an_idle_app_thread() {
    let scratch = Scratch::new("accept-idle");
    let mut server = serve_parking(&scratch, &["-k", "gthread", "--threads=1", "--workers=2"]);
    let port = server.port();
    let mut parked = park(&mut server, "busy");
    let mut answered_by = Vec::new();
    for _ in 0..10 {
        let mut conn = Conn::open(port);
        let (status, pid) =
            served(conn.roundtrip(&request("GET", "/pid", &[("Connection", "close")], b"")));
        assert_eq!(status, 200);
        answered_by.push(pid);
    }
    release(&scratch, "busy");
    assert_eq!(
        served(parked.response()),
        (200, "released busy".to_string())
    );
    let (_, busy_pid) = served(parked.roundtrip(&pid_request()));
    assert!(
        !answered_by.contains(&busy_pid),
        "the worker with its only thread parked ({busy_pid}) took new connections: {answered_by:?}"
    );
}

/// With one worker and its only thread busy, a new connection waits in the listen
/// queue and is answered once the thread is free: nothing is lost.
#[test]
fn a_new_connection_waits_for_the_busy_single_worker_and_is_answered() {
    let scratch = Scratch::new("accept-wait");
    let mut server = serve_parking(&scratch, &["-k", "gthread", "--threads=1", "--workers=1"]);
    let port = server.port();
    let mut parked = park(&mut server, "only");
    let mut waiting = Conn::open(port);
    waiting.send(&pid_request());
    release(&scratch, "only");
    assert_eq!(
        served(parked.response()),
        (200, "released only".to_string())
    );
    assert_eq!(
        served(waiting.response()),
        (200, server.worker_pids[0].to_string())
    );
}

#[test]
fn pipelined_requests_on_gthread_are_answered_in_order() {
    let scratch = Scratch::new("pipe");
    let mut server = serve_parking(&scratch, &["--threads=4", "--workers=1"]);
    let port = server.port();
    let worker = server.worker_pids[0].to_string();
    let mut conn = Conn::open(port);
    // The first request stays in the app until released; the later ones
    // would be done long before it if they were answered out of order.
    let mut batch = request("GET", "/park?key=first", &[], b"");
    batch.extend(request("GET", "/pid", &[], b""));
    batch.extend(request("GET", "/barrier?n=1&key=one", &[], b""));
    batch.extend(request("GET", "/nowhere", &[], b""));
    conn.send(&batch);
    server.wait_for_log("parked key=first\n", STARTUP);
    // Other connections are served meanwhile.
    let other = try_get(port, "/pid").map(served);
    assert_eq!(other.ok(), Some((200, worker.clone())));
    release(&scratch, "first");
    let mut got: Vec<(u16, String)> = (0..4).map(|_| served(conn.response())).collect();
    // The connection stays usable: a second pipelined batch.
    let mut batch = request("GET", "/barrier?n=1&key=two", &[], b"");
    batch.extend(request("GET", "/pid", &[("Connection", "close")], b""));
    conn.send(&batch);
    got.extend((0..2).map(|_| served(conn.response())));
    let want: Vec<(u16, String)> = [
        (200, "released first"),
        (200, worker.as_str()),
        (200, "met 1"),
        (404, "not found"),
        (200, "met 1"),
        (200, worker.as_str()),
    ]
    .iter()
    .map(|(s, b)| (*s, b.to_string()))
    .collect();
    assert_eq!(got, want);
    assert!(conn.closed_within(IO_TIMEOUT), "Connection: close ignored");
}

#[test]
fn event_loop_closes_idle_keep_alive_connections_while_every_app_thread_is_busy() {
    let scratch = Scratch::new("idle");
    let mut server = serve_parking(
        &scratch,
        &[
            "-k",
            "gthread",
            "--threads=1",
            "--workers=1",
            "--keep-alive=2",
        ],
    );
    let port = server.port();
    // The idle connection must still be open once the only app thread is
    // parked, so that its close provably comes from the event loop while
    // the thread is busy. On a slow machine parking may take longer than
    // the keep-alive; then try again (bounded).
    for attempt in 0..5 {
        let mut idle = Conn::open(port);
        assert_eq!(idle.roundtrip(&pid_request()).status, 200);
        let key = format!("attempt{attempt}");
        let mut parked = park(&mut server, &key);
        let open_while_parked = !idle.closed_within(Duration::from_millis(1));
        if open_while_parked {
            assert!(
                idle.closed_within(IO_TIMEOUT),
                "idle keep-alive connection not closed while the app thread was busy; log:\n{}",
                server.log()
            );
        }
        release(&scratch, &key);
        assert_eq!(served(parked.response()), (200, format!("released {key}")));
        if open_while_parked {
            return;
        }
    }
    panic!(
        "parking never took less than --keep-alive=2; log:\n{}",
        server.log()
    );
}

#[test]
fn app_faults_on_app_threads_give_500_and_the_worker_goes_on() {
    let server = serve(FAULTS, &["-k", "gthread", "--threads=2", "--workers=1"]);
    let port = server.port();
    let pid = worker_pid(&server);
    let cases: &[(&str, &[&str])] = &[
        (
            "/raise",
            &["Traceback", "RuntimeError: fault: app raised on purpose"],
        ),
        (
            "/iter_raises_first",
            &["RuntimeError: fault: generator raised before its first chunk"],
        ),
        ("/no_start_response", &["[ERROR]", "start_response"]),
    ];
    assert_faults_before_headers(&server, &pid, cases);

    // After the headers: the connection is cut mid-body.
    let mut conn = Conn::open(port);
    let r = conn.roundtrip(&request("GET", "/gen_fail_after_first", &[], b""));
    assert_eq!(
        (r.status, r.framing, r.complete),
        (200, Framing::Chunked, false)
    );
    assert!(conn.closed_within(IO_TIMEOUT), "connection left open");

    // Faults on both app threads at once.
    let paths = vec!["/raise".to_string(); 4];
    let statuses: Vec<Option<u16>> = get_all_at_once(port, &paths)
        .into_iter()
        .map(|r| r.ok().map(|(status, _)| status))
        .collect();
    assert_eq!(statuses, vec![Some(500); 4]);
    assert_eq!(worker_pid(&server), pid, "the worker was replaced");
}
