//! Signals to the master that change its workers: HUP (a new generation of
//! workers, the old one retires), TTIN and TTOU (one worker more or fewer,
//! never fewer than one).

use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::client::{get, request, Conn};
use crate::harness::{
    booted_pids, process_alive, serve, signal, signal_quietly, wait_until, Server, EXIT_TIMEOUT,
    STARTUP,
};
use crate::timeouts::{check_polled, pid_client, Answers};

const BASICS: &str = "basics:application";

/// Sends `sig` to the master and waits until its log says it handled it.
fn signal_handled(server: &mut Server, sig: &str) {
    let mark = server.log_mark();
    signal(server.pid, sig);
    let handled = format!("Handling signal: {}", sig.to_ascii_lowercase());
    server.wait_for_log_since(mark, &handled, STARTUP);
}

/// The live workers, as a set.
fn live_workers(server: &Server) -> BTreeSet<u32> {
    server.workers_left().into_iter().collect()
}

/// Waits until the live workers satisfy `ok`; returns them.
fn wait_for_live(
    server: &Server,
    what: &str,
    ok: impl Fn(&BTreeSet<u32>) -> bool,
) -> BTreeSet<u32> {
    let deadline = Instant::now() + STARTUP;
    loop {
        let live = live_workers(server);
        if ok(&live) {
            return live;
        }
        assert!(
            Instant::now() < deadline,
            "want live workers {what}, have {live:?} after {STARTUP:?}; log:\n{}",
            server.log()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until exactly `want` are the live workers.
fn wait_for_workers(server: &Server, want: &BTreeSet<u32>) {
    wait_for_live(server, &format!("{want:?}"), |live| live == want);
}

/// Sends TTIN and returns the pid of the worker it booted.
fn ttin(server: &mut Server) -> u32 {
    let booted = server.booted_pids().len();
    signal_handled(server, "TTIN");
    server.wait_for(STARTUP, "one more worker", |log| {
        booted_pids(log).len() > booted
    });
    server.booted_pids()[booted]
}

/// The worker that answers `GET /pid`.
fn served_by(port: u16) -> u32 {
    let r = get(port, "/pid");
    assert_eq!(r.status, 200, "{r:?}");
    r.text().parse().expect("a pid")
}

/// The raw ASGI app with `/pid`, for the same signals under `-k asgi`.
const ASGI_OPS: &str = "asgi_app:ops";

#[test]
fn hup_replaces_every_worker_and_no_request_fails_meanwhile() {
    hup_replaces_every_worker(BASICS, &[]);
}

#[test]
fn hup_replaces_every_asgi_worker_and_no_request_fails_meanwhile() {
    hup_replaces_every_worker(ASGI_OPS, &["-k", "asgi"]);
}

fn hup_replaces_every_worker(app: &str, extra: &[&str]) {
    let mut server = serve(app, &[extra, &["--workers=2"]].concat());
    let port = server.port();
    let old: BTreeSet<u32> = server.worker_pids.iter().copied().collect();

    let stop = Arc::new(AtomicBool::new(false));
    let answers: Answers = Arc::default();
    let client = pid_client(port, stop.clone(), answers.clone());
    wait_until(STARTUP, "5 answers before HUP", || {
        answers.lock().unwrap().len() >= 5
    });

    signal_handled(&mut server, "HUP");
    server.wait_for(STARTUP, "two new workers", |log| {
        booted_pids(log).len() >= 4
    });
    let new: BTreeSet<u32> = booted_pids(&server.log())[2..].iter().copied().collect();
    assert!(old.is_disjoint(&new), "old {old:?}, new {new:?}");
    wait_for_workers(&server, &new);
    let served_before = answers.lock().unwrap().len();
    wait_until(STARTUP, "10 answers after the reload", || {
        answers.lock().unwrap().len() >= served_before + 10
    });
    check_polled(
        &stop,
        client,
        &answers,
        served_before,
        &new,
        "the reload",
        &server.log(),
    );
    for pid in &old {
        assert!(!process_alive(*pid), "old worker {pid} still running");
    }
}

#[test]
fn graceful_stop_and_reload_answer_a_connection_accepted_before_its_request() {
    let mut failures = Vec::new();
    for sig in ["HUP", "TERM"] {
        let mut server = serve(
            BASICS,
            &["--workers=1", "--graceful-timeout=60", "--keep-alive=120"],
        );
        let port = server.port();
        let old = server.worker_pids[0];
        // Connected, request begun but not finished. (Our listeners defer a
        // connection until its first bytes: one that sent nothing would still be
        // the kernel's, not the worker's; see the test after this one.)
        let whole = request("GET", "/pid", &[("Connection", "close")], b"");
        let (begun, rest) = whole.split_at(5);
        let mut early = Conn::open(port);
        early.send(begun);
        // The listen queue is FIFO: once the worker has answered a later
        // connection it has accepted the early one too.
        let mut marker = Conn::open(port);
        let r = marker.roundtrip(&request("GET", "/pid", &[], b""));
        assert_eq!((r.status, r.text()), (200, old.to_string()));
        signal_handled(&mut server, sig);
        // A draining worker closes its idle kept-alive connections at once
        // (long before --keep-alive=120): the marker's close says the drain
        // has begun.
        assert!(
            marker.closed_within(STARTUP),
            "SIG{sig}: idle kept-alive connection not closed by the drain"
        );
        early.send(rest);
        let got = early.try_response(false).map(|r| (r.status, r.text()));
        if got.as_ref().ok() != Some(&(200, old.to_string())) {
            failures.push(format!(
                "SIG{sig}: want 200 from worker {old}, got {got:?}; log:\n{}",
                server.log()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "a request on a connection the draining worker had accepted was lost:\n{}",
        failures.join("\n")
    );
}

/// A client that connected but has not spoken yet is still the kernel's (our
/// listeners defer connections until their first bytes): across a reload its request
/// goes to a new worker, through the same listener, and is answered.
#[test]
fn a_reload_answers_a_connection_that_had_sent_nothing_yet() {
    let mut server = serve(BASICS, &["--workers=1", "--graceful-timeout=60"]);
    let port = server.port();
    let old = server.worker_pids[0];
    let mut silent = Conn::open(port);
    signal_handled(&mut server, "HUP");
    server.wait_for(STARTUP, "a new worker", |log| booted_pids(log).len() >= 2);
    wait_until(STARTUP, "the old worker's exit", || !process_alive(old));
    silent.send(&request("GET", "/pid", &[("Connection", "close")], b""));
    let r = silent.response();
    assert_eq!(r.status, 200);
    assert_ne!(
        r.text(),
        old.to_string(),
        "answered by the worker that left"
    );
}

#[test]
fn hup_while_stopping_starts_no_workers_and_the_stop_is_prompt() {
    let mut server = serve(BASICS, &["--workers=1", "--graceful-timeout=60"]);
    // A request in flight keeps the master stopping for a while.
    let mut slow = Conn::open(server.port());
    slow.send(&request(
        "GET",
        "/slow?ms=3000",
        &[("Connection", "close")],
        b"",
    ));
    server.wait_for_log("slow request started", STARTUP);
    signal_handled(&mut server, "TERM");
    let stopping = server.log_mark();
    signal_quietly(server.pid, "HUP");
    let r = slow.response();
    assert_eq!((r.status, r.text().as_str()), (200, "slow done"));
    let status = server.wait_exit(EXIT_TIMEOUT);
    let log = server.log();
    assert!(
        status.is_some_and(|s| s.code() == Some(0)),
        "master not stopped ({status:?}) {EXIT_TIMEOUT:?} after TERM (graceful timeout 60 s); \
         log:\n{log}"
    );
    assert!(
        !log[stopping..].contains("Booting worker"),
        "workers started after TERM; log:\n{log}"
    );
}

#[test]
fn ttin_adds_a_worker_and_ttou_retires_the_oldest_but_never_the_last() {
    ttin_and_ttou(BASICS, &[]);
}

#[test]
fn ttin_and_ttou_change_the_asgi_workers_alike() {
    ttin_and_ttou(ASGI_OPS, &["-k", "asgi"]);
}

fn ttin_and_ttou(app: &str, extra: &[&str]) {
    let mut server = serve(app, &[extra, &["--workers=2"]].concat());
    let port = server.port();
    // Spawned together, the first two have no observable order between them.
    let first: BTreeSet<u32> = server.worker_pids.iter().copied().collect();
    let third = ttin(&mut server);
    let fourth = ttin(&mut server);
    let mut want = first.clone();
    want.extend([third, fourth]);
    wait_for_workers(&server, &want);
    assert!(want.contains(&served_by(port)));

    // TTOU retires the oldest: the first two, then the third.
    signal_handled(&mut server, "TTOU");
    wait_for_live(&server, "one of the first two and the newer two", |live| {
        live.len() == 3 && live.is_superset(&[third, fourth].into()) && !live.is_superset(&first)
    });
    signal_handled(&mut server, "TTOU");
    wait_for_workers(&server, &[third, fourth].into());
    signal_handled(&mut server, "TTOU");
    wait_for_workers(&server, &[fourth].into());
    assert_eq!(served_by(port), fourth);

    // At one worker TTOU changes nothing...
    for _ in 0..2 {
        signal_handled(&mut server, "TTOU");
    }
    // ...as a TTIN handled after them shows: it adds a second worker next to
    // the same last one (had TTOU gone below one, there would be one).
    let fifth = ttin(&mut server);
    wait_for_workers(&server, &[fourth, fifth].into());
    assert_eq!(server.booted_pids().len(), 5, "log:\n{}", server.log());
}
