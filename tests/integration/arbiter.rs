//! The master: stop signals, graceful shutdown, replacing a killed worker.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::client::{request, try_get, Conn};
use crate::harness::{booted_pids, process_alive, serve, signal, IO_TIMEOUT, STARTUP};

#[test]
fn master_exits_0_on_stop_signals_and_takes_its_workers_along() {
    for sig in ["TERM", "INT", "QUIT"] {
        let mut server = serve("hello", &["--workers=2"]);
        assert_eq!(try_get(server.port(), "/").expect("GET").status, 200);
        let status = server.stop_with(sig);
        assert_eq!(
            status.code(),
            Some(0),
            "SIG{sig}: {status}; log:\n{}",
            server.log()
        );
        let left = server.workers_left();
        assert!(
            left.is_empty(),
            "SIG{sig}: workers {left:?} outlived the master; log:\n{}",
            server.log()
        );
    }
}

#[test]
fn term_lets_the_request_in_flight_finish() {
    let mut server = serve(
        "basics:application",
        &["--workers=1", "--graceful-timeout=30"],
    );
    let mut conn = Conn::open(server.port());
    conn.send(&request(
        "GET",
        "/slow?ms=1500",
        &[("Connection", "close")],
        b"",
    ));
    // The app says when it is inside the request; then stop the master.
    server.wait_for_log("slow request started", IO_TIMEOUT);
    signal(server.pid, "TERM");
    let r = conn.response();
    assert_eq!((r.status, r.text().as_str()), (200, "slow done"));
    let status = server
        .wait_exit(Duration::from_secs(40))
        .expect("master exit after TERM");
    assert_eq!(status.code(), Some(0), "log:\n{}", server.log());
}

#[test]
fn killed_worker_is_replaced_while_the_others_keep_serving() {
    let mut server = serve("basics:application", &["--workers=3"]);
    let port = server.port();
    let victim = server.worker_pids[0];

    // One client, one request at a time, for the whole test.
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let client = {
        let (stop, served, failures) = (stop.clone(), served.clone(), failures.clone());
        thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(180);
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                match try_get(port, "/pid") {
                    Ok(r) if r.status == 200 => {
                        served.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(r) => failures
                        .lock()
                        .unwrap()
                        .push(format!("status {}", r.status)),
                    Err(e) => failures.lock().unwrap().push(e.to_string()),
                }
            }
        })
    };
    let wait_served = |n: usize| {
        let deadline = Instant::now() + STARTUP;
        while served.load(Ordering::SeqCst) < n {
            assert!(
                Instant::now() < deadline,
                "client stalled at {} requests",
                served.load(Ordering::SeqCst)
            );
            thread::sleep(Duration::from_millis(10));
        }
    };

    wait_served(20);
    signal(victim, "KILL");
    server.wait_for_log(&format!("(pid:{victim})"), STARTUP);
    server.wait_for(STARTUP, "a replacement worker", |log| {
        booted_pids(log).len() >= 4
    });
    let replacement = *server.booted_pids().last().unwrap();
    wait_served(served.load(Ordering::SeqCst) + 20);
    stop.store(true, Ordering::SeqCst);
    client.join().expect("client thread");

    // Only the request the victim may have been holding can fail.
    let failures = failures.lock().unwrap();
    assert!(
        failures.len() <= 1,
        "requests failed while a worker was replaced: {failures:?}"
    );
    assert!(
        !process_alive(victim),
        "killed worker {victim} still running"
    );
    assert!(
        process_alive(replacement),
        "replacement worker {replacement} is not running; log:\n{}",
        server.log()
    );
    assert_ne!(replacement, victim);
}
