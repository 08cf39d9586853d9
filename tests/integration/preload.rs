//! `--preload`: the app is imported once, in the master, before the workers are
//! forked (tests/apps/preload_app.py reports the pid that imported it); a HUP forks
//! new workers from the same loaded app; an app that cannot be imported stops the
//! master with the status and message a worker's failed import gives.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::client::get;
use crate::harness::{booted_pids, serve, signal, Server, ServerBuilder, STARTUP};

const APP: &str = "preload_app:application";

/// (import pid, worker pid, gc freeze count) from one request to `target`.
fn where_imported_at(port: u16, target: &str) -> (u32, u32, u64) {
    let r = get(port, target);
    assert_eq!(r.status, 200, "{r:?}");
    let fields: Vec<u64> = r
        .text()
        .split(' ')
        .map(|f| f.parse().expect("numbers"))
        .collect();
    (fields[0] as u32, fields[1] as u32, fields[2])
}

fn where_imported(port: u16) -> (u32, u32, u64) {
    where_imported_at(port, "/")
}

/// Asks in parallel (each call holds its worker a moment) until every worker has
/// answered at least once.
fn answers_from_all(server: &Server) -> Vec<(u32, u32, u64)> {
    let workers: BTreeSet<u32> = server.worker_pids.iter().copied().collect();
    let port = server.port();
    let mut answers = Vec::new();
    for _ in 0..20 {
        let clients: Vec<_> = (0..workers.len())
            .map(|_| std::thread::spawn(move || where_imported_at(port, "/?sleep=0.3")))
            .collect();
        answers.extend(clients.into_iter().map(|c| c.join().expect("client")));
        let seen: BTreeSet<u32> = answers.iter().map(|a| a.1).collect();
        if seen == workers {
            return answers;
        }
    }
    panic!("not every worker of {workers:?} answered: {answers:?}");
}

#[test]
fn preload_imports_the_app_once_in_the_master_and_workers_share_it() {
    // Every worker class: gthread's app threads attach to the forked interpreter, and
    // asgi's event loop is made after the fork, in the worker.
    for (class, app) in [
        ("sync", APP),
        ("gthread", APP),
        ("asgi", "preload_app:asgi_application"),
    ] {
        let server = serve(app, &["--workers=2", "--preload", "-k", class]);
        for (import_pid, worker, frozen) in answers_from_all(&server) {
            assert_eq!(
                import_pid, server.pid,
                "{class}: worker {worker} imported the app itself"
            );
            assert!(
                frozen > 0,
                "{class}: gc.freeze() was not called before the fork"
            );
        }
    }
}

#[test]
fn without_preload_each_worker_imports_the_app() {
    let server = serve(APP, &["--workers=2"]);
    for (import_pid, worker, _) in answers_from_all(&server) {
        assert_eq!(import_pid, worker);
    }
}

#[test]
fn hup_with_preload_forks_new_workers_from_the_loaded_app() {
    let mut server = serve(APP, &["--workers=1", "--preload"]);
    let mark = server.log_mark();
    signal(server.pid, "HUP");
    server.wait_for_log_since(mark, "Booting worker", STARTUP);
    let old = server.worker_pids[0];
    let new = *booted_pids(&server.log()).last().unwrap();
    // The old worker retires; every answer is then the new one's.
    crate::harness::wait_until(STARTUP, "the new worker to answer", || {
        where_imported(server.port()).1 == new
    });
    let (import_pid, worker, _) = where_imported(server.port());
    assert_eq!((import_pid, worker), (server.pid, new), "old worker {old}");
}

#[test]
fn preload_load_failure_stops_the_master_like_a_worker_load_failure() {
    // (APP_MODULE, what the log must say)
    let cases: &[(&str, &str)] = &[
        ("hello:no_such_attr", "no_such_attr"),
        ("broken_import:application", "rustcorn_missing_dependency"),
        ("no_such_module_xyz", "no_such_module_xyz"),
    ];
    let mut failures = Vec::new();
    for (app, needle) in cases {
        let run = |extra: &[&str]| {
            let mut args = vec!["-b", "127.0.0.1:0", "--workers=2", "--chdir", "tests/apps"];
            args.extend_from_slice(extra);
            args.push(app);
            ServerBuilder::new(&args).run_to_exit(Duration::from_secs(60))
        };
        let in_worker = run(&[]);
        let preloaded = run(&["--preload"]);
        let mut problems = Vec::new();
        if preloaded.status.success() || preloaded.status.code() != in_worker.status.code() {
            problems.push(format!(
                "exit {:?} with --preload, {:?} without",
                preloaded.status, in_worker.status
            ));
        }
        if !preloaded.stderr.contains(needle) {
            problems.push(format!("log lacks {needle:?}"));
        }
        if preloaded.stderr.contains("Booting worker") {
            problems.push("a worker was forked".into());
        }
        let reason = |log: &str| {
            log.lines()
                .find(|l| l.contains("Reason:"))
                .map(|l| l.split("Reason:").nth(1).unwrap_or("").trim().to_string())
        };
        if reason(&preloaded.stderr) != reason(&in_worker.stderr) {
            problems.push("a different shutdown reason".into());
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{app}: {}\n  log:\n{}",
                problems.join("; "),
                preloaded.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
