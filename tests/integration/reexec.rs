//! USR2: the master re-executes itself and hands its listening sockets to the new
//! master; old and new serve side by side until the old one is stopped, and no client
//! sees a refused connection or a failed request. A master started with
//! `GUNICORN_FD`/`RUSTCORN_FD` serves on those sockets instead of binding.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use crate::client::get;
use crate::harness::{
    booted_pids, process_alive, serve, signal, wait_until, ServerBuilder, EXIT_TIMEOUT, STARTUP,
};
use crate::systemd::master_pids;
use crate::timeouts::{check_polled, pid_client, Answers};

const BASICS: &str = "basics:application";

#[test]
fn usr2_then_term_of_the_old_master_loses_no_connection_and_no_request() {
    let mut server = serve(BASICS, &["--workers=2"]);
    let port = server.port();
    let old_workers: BTreeSet<u32> = server.worker_pids.iter().copied().collect();
    let stop = Arc::new(AtomicBool::new(false));
    let answers: Answers = Arc::default();
    let client = pid_client(port, stop.clone(), answers.clone());
    let count = |answers: &Answers| answers.lock().unwrap().len();
    wait_until(STARTUP, "answers before USR2", || count(&answers) >= 5);

    signal(server.pid, "USR2");
    server.wait_for(STARTUP, "a new master with two booted workers", |log| {
        master_pids(log).len() >= 2 && booted_pids(log).len() >= 4
    });
    let new_master = master_pids(&server.log())[1];
    let new_workers: BTreeSet<u32> = booted_pids(&server.log())[2..].iter().copied().collect();
    // A second USR2 while the new master runs is ignored.
    let mark = server.log_mark();
    signal(server.pid, "USR2");
    server.wait_for_log_since(mark, "USR2 signal ignored. Child exists.", STARTUP);
    // The new master's workers take their share of the shared listen queue.
    let seen_new = || {
        answers.lock().unwrap().iter().any(|a| match a {
            Ok(pid) => new_workers.contains(pid),
            Err(_) => false,
        })
    };
    wait_until(STARTUP, "an answer from a new worker", seen_new);

    signal(server.pid, "TERM");
    let status = server.wait_exit(EXIT_TIMEOUT).expect("old master exits");
    assert_eq!(status.code(), Some(0), "log:\n{}", server.log());
    server.wait_for_log("Master has been promoted.", STARTUP);
    wait_until(STARTUP, "old workers to exit", || {
        old_workers.iter().all(|&w| !process_alive(w))
    });
    let after_old = count(&answers);
    wait_until(STARTUP, "10 answers after the old master", || {
        count(&answers) >= after_old + 10
    });
    check_polled(
        &stop,
        client,
        &answers,
        after_old,
        &new_workers,
        "USR2 and TERM of the old master",
        &server.log(),
    );

    signal(new_master, "TERM");
    wait_until(EXIT_TIMEOUT, "the new master to exit", || {
        !process_alive(new_master)
    });
    server.wait_for_log("Shutting down: Master", STARTUP);
}

/// Binds a listening socket, prints its port, lists it in the variable named by
/// the first argument and execs the rest (std cannot clear CLOEXEC).
const FD_ENV_LAUNCHER: &str = r#"
import os, socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(64)
s.set_inheritable(True)
print(s.getsockname()[1], flush=True)
os.environ[sys.argv[1]] = str(s.fileno())
os.execv(sys.argv[2], sys.argv[2:])
"#;

#[test]
fn a_master_started_with_gunicorn_fd_or_rustcorn_fd_serves_on_that_socket() {
    // (variable, extra args): with no --bind the default must not be bound; with
    // -b 127.0.0.1:0 the inherited socket stands for it.
    let cases: &[(&str, &[&str])] = &[
        ("GUNICORN_FD", &[]),
        ("RUSTCORN_FD", &["-b", "127.0.0.1:0"]),
    ];
    for (var, extra) in cases {
        let mut args: Vec<&str> = extra.to_vec();
        args.extend(["--chdir", "tests/apps", "hello"]);
        let server = ServerBuilder::new(&args)
            .launcher(&["python3", "-c", FD_ENV_LAUNCHER, var])
            .start();
        let printed = server.stdout().text();
        let port: u16 = printed
            .trim()
            .parse()
            .expect("the launcher prints its port");
        assert_eq!(
            server.listeners,
            [crate::harness::Listener::Tcp(([127, 0, 0, 1], port).into())],
            "{var}: log:\n{}",
            server.log()
        );
        let r = get(port, "/");
        assert_eq!((r.status, r.text().as_str()), (200, "Hello!"), "{var}");
    }
}

#[test]
fn a_malformed_fd_variable_stops_the_master_naming_it() {
    let out = ServerBuilder::new(&crate::harness::app_args("hello", &[]))
        .env("GUNICORN_FD", "3,x")
        .run_to_exit(Duration::from_secs(60));
    assert!(!out.status.success());
    assert!(
        out.stderr.contains("GUNICORN_FD") && out.stderr.contains("'x'"),
        "log:\n{}",
        out.stderr
    );
}

/// Sends USR2 to `server` and waits for the new master and its `workers` booted
/// workers (beside the ones already booted); returns the new master's pid.
fn usr2(server: &mut crate::harness::Server, workers: usize) -> u32 {
    let masters = master_pids(&server.log()).len();
    let booted = booted_pids(&server.log()).len();
    signal(server.pid, "USR2");
    server.wait_for(STARTUP, "a new master and its workers", |log| {
        master_pids(log).len() > masters && booted_pids(log).len() >= booted + workers
    });
    master_pids(&server.log())[masters]
}

#[test]
fn backing_out_keeps_the_old_master_serving_and_usr2_works_again() {
    let mut server = serve(BASICS, &["--workers=1"]);
    let old_worker = server.worker_pids[0];
    let new_master = usr2(&mut server, 1);
    signal(new_master, "TERM");
    server.wait_for_log(
        &format!("Re-executed master (pid:{new_master}) exited with code 0"),
        STARTUP,
    );
    let r = get(server.port(), "/pid");
    assert_eq!((r.status, r.text()), (200, old_worker.to_string()));
    // The child is gone, so USR2 starts another one.
    let third = usr2(&mut server, 1);
    assert_ne!(third, new_master);
    signal(third, "TERM");
    wait_until(EXIT_TIMEOUT, "the second new master to exit", || {
        !process_alive(third)
    });
}

#[test]
fn a_unix_socket_file_outlives_the_old_master_and_goes_with_the_last() {
    let scratch = crate::harness::Scratch::new("usr2unix");
    let sock = scratch.path().join("s.sock");
    let bind = format!("unix:{}", sock.display());
    let mut server = crate::harness::Server::start(&[
        "-b",
        &bind,
        "--workers=1",
        "--chdir",
        "tests/apps",
        BASICS,
    ]);
    let new_master = usr2(&mut server, 1);
    server.stop_with("TERM");
    server.wait_for_log("Master has been promoted.", STARTUP);
    assert!(
        sock.exists(),
        "the old master removed the socket file in use"
    );
    let r = crate::systemd::get_over_unix(&sock, "/pid");
    assert_eq!(r.status, 200);
    signal(new_master, "TERM");
    wait_until(EXIT_TIMEOUT, "the new master to exit", || {
        !process_alive(new_master)
    });
    assert!(
        !sock.exists(),
        "the last master left its socket file behind"
    );
}

/// With `--pid F`, a USR2 child writes `F.2` (its title says `[NAME.2]`) until the old
/// master is gone, then takes over `F`, as Gunicorn's does.
#[test]
fn usr2_child_writes_pidfile_2_and_takes_over_the_pid_file_when_promoted() {
    let scratch = crate::os::Scratch::new("usr2-pid");
    let pid_path = scratch.path().join("app.pid");
    let second = scratch.path().join("app.pid.2");
    let pid_arg = pid_path.display().to_string();
    let mut server = serve(BASICS, &["--workers=1", "--pid", &pid_arg]);
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    assert_eq!(read(&pid_path).trim(), server.pid.to_string());
    let new_master = usr2(&mut server, 1);
    wait_until(STARTUP, "app.pid.2 naming the new master", || {
        read(&second).trim() == new_master.to_string()
    });
    assert_eq!(read(&pid_path).trim(), server.pid.to_string());
    let title = std::fs::read_to_string(format!("/proc/{new_master}/cmdline")).unwrap();
    assert!(title.contains(".2]"), "{title:?}");
    signal(server.pid, "TERM");
    server.wait_exit(EXIT_TIMEOUT).expect("old master exits");
    wait_until(STARTUP, "app.pid naming the promoted master", || {
        read(&pid_path).trim() == new_master.to_string() && !second.exists()
    });
    signal(new_master, "TERM");
    wait_until(
        EXIT_TIMEOUT,
        "the new master to exit and remove app.pid",
        || !process_alive(new_master) && !pid_path.exists(),
    );
}
