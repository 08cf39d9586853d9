//! Log rotation: logrotate renames the files, then USR1 (or a HUP, as with
//! Gunicorn's reload) makes the server write to fresh files at the original
//! paths — the master's and every worker's lines, as root or with `--user`.

use std::collections::BTreeSet;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::client::{get, try_get};
use crate::daemon::{free_bind, wait_serving};
use crate::harness::{
    booted_pids, signal, wait_for_file, wait_until, Scratch, ServerBuilder, STARTUP,
};
use crate::ops::OPS_APP;

/// The lines of `path` (empty if it does not exist).
fn lines_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn usr1_reopens_renamed_logs_so_new_lines_go_to_fresh_files() {
    // As root, and with workers as nobody: the master recreates the files and
    // gives them to the workers' user before the workers reopen them (the
    // directory is root's: nobody could not create them).
    for user in [&[][..], &["--user", "nobody"]] {
        reopens_after_rotation(user);
    }
}

fn reopens_after_rotation(user: &[&str]) {
    assert!(
        user.is_empty() || nix::unistd::geteuid().is_root(),
        "--user needs the server to run as root"
    );
    let scratch = Scratch::new("usr1");
    let access = scratch.path().join("access.log");
    let errors = scratch.path().join("error.log");
    let (bind, port) = free_bind();
    let mut args = vec![
        "-b",
        &bind,
        "--chdir",
        "tests/apps",
        "--workers=2",
        "--access-logfile",
        access.to_str().unwrap(),
        "--error-logfile",
        errors.to_str().unwrap(),
    ];
    args.extend_from_slice(user);
    args.push(OPS_APP);
    let mut server = ServerBuilder::new(&args).spawn();
    let log = wait_for_file(&errors, STARTUP, |t| booted_pids(t).len() >= 2);
    let workers: BTreeSet<u32> = booted_pids(&log).into_iter().collect();
    wait_serving(port, "/log?before");

    let (access_old, errors_old) = (
        access.with_extension("log.1"),
        errors.with_extension("log.1"),
    );
    std::fs::rename(&access, &access_old).unwrap();
    std::fs::rename(&errors, &errors_old).unwrap();
    signal(server.pid, "USR1");
    // Each worker reopens on its own USR1: probe until both have written to
    // the fresh access log.
    let mut reopened = BTreeSet::new();
    let deadline = Instant::now() + STARTUP;
    for k in 0.. {
        let answer = try_get(port, &format!("/pid?probe-{k}")).unwrap_or_else(|e| {
            panic!(
                "{user:?}: probe {k}: {e}; log:\n{}{}",
                lines_of(&errors_old),
                lines_of(&errors)
            )
        });
        let pid: u32 = answer.text().parse().unwrap();
        if lines_of(&access).contains(&format!("/pid?probe-{k} ")) {
            reopened.insert(pid);
        }
        if reopened == workers {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "workers {workers:?}, reopened {reopened:?}"
        );
        thread::sleep(Duration::from_millis(20));
    }
    for k in 0..20 {
        assert_eq!(get(port, &format!("/log?after-{k}")).status, 200);
    }
    signal(server.pid, "TTIN");
    wait_for_file(&errors, STARTUP, |t| {
        // The new worker booted (its signal handlers are in place before TERM).
        t.contains("Handling signal: ttin")
            && !booted_pids(t).is_empty()
            && (0..20).all(|k| t.contains(&format!("log: after-{k}\n")))
    });
    // An access line is written just after its response is sent: wait for the
    // last one instead of reading the file the moment the answers are in.
    wait_for_file(&access, STARTUP, |t| {
        t.contains("\"GET /log?after-19 HTTP/1.1\" 200")
    });
    let (new_access, old_access) = (lines_of(&access), lines_of(&access_old));
    for k in 0..20 {
        let line = format!("\"GET /log?after-{k} HTTP/1.1\" 200");
        assert!(
            new_access.contains(&line),
            "{line} not in the fresh access log:\n{new_access}"
        );
        assert!(
            !old_access.contains(&line),
            "{line} in the rotated access log"
        );
    }
    assert!(old_access.contains("GET /log?before "), "{old_access}");
    let old_errors = lines_of(&errors_old);
    assert!(old_errors.contains("Handling signal: usr1"), "{old_errors}");
    assert!(!old_errors.contains("log: after-"), "{old_errors}");
    assert_eq!(server.stop_with("TERM").code(), Some(0));
}

#[test]
fn hup_reopens_the_masters_logs_for_the_new_workers() {
    // Gunicorn's reload reopens the log files: after a rotation, HUP alone
    // sends the new generation's lines to fresh files.
    let scratch = Scratch::new("hup-logs");
    let (access, errors) = (
        scratch.path().join("access.log"),
        scratch.path().join("error.log"),
    );
    let (bind, port) = free_bind();
    let mut server = ServerBuilder::new(&[
        "-b",
        &bind,
        "--chdir",
        "tests/apps",
        "--access-logfile",
        access.to_str().unwrap(),
        "--error-logfile",
        errors.to_str().unwrap(),
        OPS_APP,
    ])
    .spawn();
    wait_for_file(&errors, STARTUP, |t| !booted_pids(t).is_empty());
    wait_serving(port, "/log?before");
    std::fs::rename(&access, scratch.path().join("access.log.1")).unwrap();
    std::fs::rename(&errors, scratch.path().join("error.log.1")).unwrap();
    signal(server.pid, "HUP");
    let log = wait_for_file(&errors, STARTUP, |t| !booted_pids(t).is_empty());
    let new_worker = booted_pids(&log)[0];
    wait_until(STARTUP, "the new worker to serve", || {
        try_get(port, "/pid").is_ok_and(|r| r.text() == new_worker.to_string())
    });
    assert_eq!(get(port, "/log?after").status, 200);
    wait_for_file(&errors, STARTUP, |t| t.contains("log: after\n"));
    wait_for_file(&access, STARTUP, |t| t.contains("GET /log?after "));
    assert_eq!(server.stop_with("TERM").code(), Some(0));
}
