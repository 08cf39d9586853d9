//! The accept policy: a busy worker leaves queued connections to idle workers, but
//! only briefly — a client that keeps one worker busy (here: many pipelined slow
//! requests on one kept-alive connection) must not starve a new connection. And
//! kept-alive connections spread evenly over the workers of a listener.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use crate::client::{request, Conn};
use crate::harness::serve;

const BASICS: &str = "basics:application";
/// Pipelined requests on the busy connection, each sleeping SLOW_MS in the app: the
/// busy client needs at least a second of app time.
const PIPELINED: usize = 50;
const SLOW_MS: u32 = 20;

/// A new connection is answered while another client still has requests queued on
/// the only worker, and before that client's last answer.
fn new_connection_is_served_before_a_busy_pipeline_ends(extra: &[&str]) {
    let server = serve(BASICS, extra);
    let port = server.port();
    let mut busy = Conn::open(port);
    let one = request("GET", &format!("/slow?ms={SLOW_MS}"), &[], b"");
    busy.send(&one.repeat(PIPELINED));
    let answered = Arc::new(AtomicUsize::new(0));
    let reader = {
        let answered = answered.clone();
        thread::spawn(move || {
            for i in 0..PIPELINED {
                let r = busy.response();
                assert_eq!(r.status, 200, "pipelined answer {i}");
                answered.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    // Let the pipeline start: the first slow call is logged when it begins.
    let mut server = server;
    server.wait_for_log("slow request started", crate::harness::STARTUP);
    let mut newcomer = Conn::open(port);
    let r = newcomer.roundtrip(&request("GET", "/pid", &[("Connection", "close")], b""));
    let busy_answered = answered.load(Ordering::SeqCst);
    assert_eq!(r.status, 200);
    reader.join().expect("busy client");
    // Served in turn with the busy client, the newcomer waits for a request or two of
    // it, not for the whole pipeline (a tenth of it is still a wide margin).
    assert!(
        busy_answered < PIPELINED - PIPELINED / 10,
        "the new connection was answered only after {busy_answered} of the busy client's {PIPELINED} pipelined requests"
    );
}

#[test]
fn sync_worker_busy_with_a_pipeline_still_accepts_a_new_connection() {
    new_connection_is_served_before_a_busy_pipeline_ends(&["--workers=1"]);
}

#[test]
fn gthread_worker_with_its_thread_busy_still_accepts_a_new_connection() {
    new_connection_is_served_before_a_busy_pipeline_ends(&[
        "--workers=1",
        "-k",
        "gthread",
        "--threads=1",
    ]);
}

/// Which worker (pid) answers on `conn`.
fn worker_of(conn: &mut Conn) -> String {
    let r = conn.roundtrip(&request("GET", "/pid", &[], b""));
    assert_eq!(r.status, 200);
    r.text()
}

#[test]
fn kept_alive_connections_spread_evenly_over_the_workers() {
    const WORKERS: usize = 4;
    const CONNECTIONS: usize = 40;
    let server = serve(BASICS, &["-w", "4"]);
    let port = server.port();
    // Every worker is up once each has answered (a booting worker takes nothing).
    let deadline = std::time::Instant::now() + crate::harness::STARTUP;
    let mut seen = std::collections::HashSet::new();
    while seen.len() < WORKERS {
        assert!(
            std::time::Instant::now() < deadline,
            "only {seen:?} answered"
        );
        let mut once = Conn::open(port);
        let r = once.roundtrip(&request("GET", "/pid", &[("Connection", "close")], b""));
        seen.insert(r.text());
    }
    // Opened all at once, as a load balancer or wrk opens its pool: without
    // balancing, the worker that woke first took most of them.
    let mut held: Vec<Conn> = (0..CONNECTIONS).map(|_| Conn::open(port)).collect();
    let mut per_worker = std::collections::HashMap::<String, usize>::new();
    for conn in &mut held {
        *per_worker.entry(worker_of(conn)).or_default() += 1;
    }
    // Balanced, the busiest holds about the mean. The bound is loose (2x, where the
    // benchmark's target is 1.5x): on a loaded machine a peer that is not scheduled
    // within the accept grace leaves its share to the others. Unbalanced, one worker
    // held 21 to 33 of the 40.
    let busiest = per_worker.values().copied().max().unwrap_or(0);
    let mean = CONNECTIONS / WORKERS;
    assert!(
        busiest <= 2 * mean,
        "connections per worker {per_worker:?}: the busiest holds more than 2x the mean {mean}"
    );
    // Each still answers on its own worker.
    for conn in &mut held {
        worker_of(conn);
    }
}
