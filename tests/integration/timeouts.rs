//! `-t/--timeout`: a worker stuck in an app call longer than the timeout is
//! sent SIGABRT by the master (`WORKER TIMEOUT (pid:N)` at CRITICAL, as in Gunicorn) and
//! replaced, while the other workers keep serving.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::cli::parse_log_line;
use crate::client::{request, try_get, Conn};
use crate::gthread::BLOCKING;
use crate::harness::{booted_pids, process_alive, serve, wait_until, Server, STARTUP};

/// The pid a `sleeping in pid N` line from blocking.py names.
fn sleeping_pid(server: &mut Server) -> u32 {
    let log = server.wait_for_log("sleeping in pid ", STARTUP);
    log.lines()
        .find_map(|l| l.strip_prefix("sleeping in pid "))
        .and_then(|pid| pid.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pid in the sleeping line; log:\n{log}"))
}

/// What a client asking `/pid` in a loop saw: each answer's pid, or why not.
pub type Answers = Arc<Mutex<Vec<Result<u32, String>>>>;

/// Stops a [`pid_client`] and checks what it saw: no request failed `across` the
/// operation, and every answer after the first `before` ones (but the one in flight
/// then, which the old workers may still have answered) came from one of `new`.
pub fn check_polled(
    stop: &AtomicBool,
    client: thread::JoinHandle<()>,
    answers: &Answers,
    before: usize,
    new: &std::collections::BTreeSet<u32>,
    across: &str,
    log: &str,
) {
    stop.store(true, Ordering::SeqCst);
    client.join().expect("client thread");
    let answers = answers.lock().unwrap();
    let failed: Vec<&String> = answers.iter().filter_map(|a| a.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed across {across}: {failed:?}; log:\n{log}",
        failed.len(),
        answers.len(),
    );
    let late: Vec<u32> = answers[before + 1..]
        .iter()
        .filter_map(|a| a.as_ref().ok().copied())
        .collect();
    assert!(
        late.iter().all(|pid| new.contains(pid)),
        "answered by {late:?} after {across}; new workers {new:?}"
    );
}

/// Asks `/pid` on a new connection, one request at a time, until `stop`
/// (bounded: 180 s).
pub fn pid_client(port: u16, stop: Arc<AtomicBool>, answers: Answers) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(180);
        while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
            let answer = match try_get(port, "/pid") {
                Ok(r) if r.status == 200 => r.text().parse().map_err(|_| r.text()),
                Ok(r) => Err(format!("status {}", r.status)),
                Err(e) => Err(e.to_string()),
            };
            answers.lock().unwrap().push(answer);
        }
    })
}

#[test]
fn worker_stuck_past_timeout_is_aborted_and_replaced_while_others_serve() {
    let mut server = serve(BLOCKING, &["--workers=2", "--timeout=2"]);
    let port = server.port();
    let mut stuck_conn = Conn::open(port);
    stuck_conn.send(&request(
        "GET",
        "/sleep?s=60",
        &[("Connection", "close")],
        b"",
    ));
    let stuck = sleeping_pid(&mut server);
    let other = *server
        .worker_pids
        .iter()
        .find(|&&p| p != stuck)
        .unwrap_or_else(|| panic!("{stuck} is not a booted worker; log:\n{}", server.log()));

    let stop = Arc::new(AtomicBool::new(false));
    let answers: Answers = Arc::default();
    let client = pid_client(port, stop.clone(), answers.clone());

    let timeout_line = format!("WORKER TIMEOUT (pid:{stuck})");
    let log = server.wait_for_log(&timeout_line, Duration::from_secs(60));
    let line = log.lines().find(|l| l.contains(&timeout_line)).unwrap();
    assert_eq!(
        parse_log_line(line),
        Some((server.pid, "CRITICAL", timeout_line.as_str())),
        "{line}"
    );
    server.wait_for(STARTUP, "a replacement worker", |log| {
        booted_pids(log).len() >= 3
    });
    let replacement = booted_pids(&server.log())[2];
    // The stuck request's connection is closed without a response.
    assert!(
        stuck_conn.closed_within(Duration::from_secs(60)),
        "the timed-out request got bytes or its connection stayed open"
    );
    wait_until(STARTUP, "the stuck worker to exit", || {
        !process_alive(stuck)
    });
    // The client goes on being served after the stuck worker is gone.
    let served_before = answers.lock().unwrap().len();
    wait_until(STARTUP, "10 more answers", || {
        answers.lock().unwrap().len() >= served_before + 10
    });
    stop.store(true, Ordering::SeqCst);
    client.join().expect("client thread");

    let answers = answers.lock().unwrap();
    let wrong: Vec<&Result<u32, String>> = answers
        .iter()
        .filter(|a| !matches!(a, Ok(p) if *p == other || *p == replacement))
        .collect();
    assert!(
        wrong.is_empty(),
        "of {} requests, these were not answered by worker {other} or its \
         new peer {replacement}: {wrong:?}; log:\n{}",
        answers.len(),
        server.log()
    );
    assert!(process_alive(other) && process_alive(replacement));
    let log = server.log();
    assert_eq!(
        log.matches("WORKER TIMEOUT").count(),
        1,
        "only the stuck worker may time out; log:\n{log}"
    );
}

/// A worker retired while an app call is stuck in it — by TTOU, or by HUP's new
/// generation — is still under `--timeout`: the master aborts it, as it would a
/// serving one, instead of leaving the stuck call running forever.
#[test]
fn a_retiring_worker_stuck_in_a_call_is_still_aborted_after_timeout() {
    for sig in ["TTOU", "HUP"] {
        // One worker takes the stuck request; `--graceful-timeout` is far longer than
        // the test, so only `--timeout` can end it.
        let mut server = serve(
            BLOCKING,
            &["--workers=1", "--timeout=3", "--graceful-timeout=600"],
        );
        let mut stuck_conn = Conn::open(server.port());
        stuck_conn.send(&request(
            "GET",
            "/sleep?s=600",
            &[("Connection", "close")],
            b"",
        ));
        let stuck = sleeping_pid(&mut server);
        if sig == "TTOU" {
            // A younger worker first, so TTOU retires the stuck (oldest) one.
            crate::harness::signal(server.pid, "TTIN");
            server.wait_for(STARTUP, "a second worker", |log| {
                booted_pids(log).len() >= 2
            });
        }
        let mark = server.log_mark();
        crate::harness::signal(server.pid, sig);
        server.wait_for_log_since(
            mark,
            &format!("WORKER TIMEOUT (pid:{stuck})"),
            Duration::from_secs(60),
        );
        wait_until(STARTUP, "the stuck worker to exit", || {
            !process_alive(stuck)
        });
        assert!(
            stuck_conn.closed_within(Duration::from_secs(60)),
            "{sig}: the aborted request's connection stayed open"
        );
        // The worker that replaced it serves.
        let r = try_get(server.port(), "/pid").expect("a serving worker");
        assert_eq!(r.status, 200, "{sig}: {r:?}");
        assert_ne!(r.text(), stuck.to_string());
    }
}
