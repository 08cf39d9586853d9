//! The wheels: `pip install rustcorn` in a fresh virtualenv of each CPython 3.10–3.13,
//! then that venv's `rustcorn` console script — the extension module, in the user's own
//! interpreter — serving as the binary does.
//!
//! The venvs are made by `scripts/setup-wheel-venvs.sh` (which the test command runs
//! after `scripts/build-wheels.sh`) under `$RUSTCORN_WHEEL_VENVS` (default
//! `<repo>/.venv-wheels`): `3.10/` … `3.13/` from the wheels, `sdist/` from the sdist.
//! A missing venv fails its tests with the command that makes it; none is skipped.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::{get, request, Conn};
use crate::harness::{
    booted_pids, repo_root, signal, wait_until, Server, ServerBuilder, IO_TIMEOUT, STARTUP,
};
use crate::json::Json;
use crate::timeouts::{check_polled, pid_client, Answers};

/// The venv `name` (`3.12`, `sdist`) the setup made, failing the test without it.
fn wheel_venv(name: &str) -> PathBuf {
    let root = match std::env::var_os("RUSTCORN_WHEEL_VENVS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => repo_root().join(".venv-wheels"),
    };
    let venv = root.join(name);
    assert!(
        venv.join("bin/rustcorn").exists(),
        "no rustcorn script in {}: run scripts/build-wheels.sh and \
         scripts/setup-wheel-venvs.sh (scripts/test.sh runs both)",
        venv.display()
    );
    venv
}

/// Starts `venv`'s `rustcorn` script with `args`, that venv active as a user's
/// `source bin/activate` makes it.
fn start_in(venv: &std::path::Path, args: &[&str]) -> Server {
    let path = std::env::var("PATH").unwrap_or_default();
    ServerBuilder::new(args)
        .program(venv.join("bin/rustcorn"))
        .env("VIRTUAL_ENV", &venv.display().to_string())
        .env("PATH", &format!("{}:{path}", venv.join("bin").display()))
        .start()
}

/// What `ps -o args=` shows for `pid`.
fn ps_args(pid: u32) -> String {
    let out = std::process::Command::new("ps")
        .args(["-o", "args=", "-p", &pid.to_string()])
        .output()
        .expect("run ps");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The guide's command, `--workers=5 wsgi`, from the wheel: answers, and `ps` shows
/// the master's and every worker's title.
fn serves_the_guides_app_with_five_workers(venv_name: &str) {
    let venv = wheel_venv(venv_name);
    let server = start_in(&venv, &crate::harness::GUIDE_ARGS);
    assert_eq!(server.worker_pids.len(), 5);
    let r = get(server.port(), "/");
    assert_eq!((r.status, r.text().as_str()), (200, "Hello!"), "{r:?}");
    assert_eq!(ps_args(server.pid), "rustcorn: master [wsgi]");
    for pid in &server.worker_pids {
        assert_eq!(ps_args(*pid), "rustcorn: worker [wsgi]", "worker {pid}");
    }
}

/// A Flask app installed in the venv runs in that venv's interpreter.
fn flask_runs_in_the_venvs_interpreter(venv_name: &str, version: &str) {
    let venv = wheel_venv(venv_name);
    let server = start_in(
        &venv,
        &[
            "-b",
            "127.0.0.1:0",
            "--chdir",
            "tests/apps",
            "flask_app:app",
        ],
    );
    let r = get(server.port(), "/python");
    assert_eq!(r.status, 200, "{r:?}; log:\n{}", server.log());
    let doc = Json::parse(&r.text());
    let canonical = |p: &str| std::fs::canonicalize(p).unwrap_or_else(|e| panic!("{p}: {e}"));
    assert_eq!(
        canonical(doc.str_at("prefix")),
        canonical(&venv.display().to_string())
    );
    assert_eq!(doc.str_at("version"), version);
    assert!(
        canonical(doc.str_at("flask")).starts_with(canonical(&venv.display().to_string())),
        "flask imported from {}, not from {}",
        doc.str_at("flask"),
        venv.display()
    );
    assert!(doc.str_at("server").starts_with("rustcorn/"), "{r:?}");
}

/// HUP replaces every worker while a client polls: no request fails.
fn hup_under_a_polling_client_fails_no_request(venv_name: &str) {
    let venv = wheel_venv(venv_name);
    let mut server = start_in(
        &venv,
        &crate::harness::app_args("basics:application", &["--workers=2"]),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let answers: Answers = Arc::default();
    let client = pid_client(server.port(), stop.clone(), answers.clone());
    wait_until(STARTUP, "5 answers before HUP", || {
        answers.lock().unwrap().len() >= 5
    });
    signal(server.pid, "HUP");
    server.wait_for(STARTUP, "two new workers", |log| {
        booted_pids(log).len() >= 4
    });
    let new = booted_pids(&server.log())[2..].iter().copied().collect();
    let before = answers.lock().unwrap().len();
    wait_until(STARTUP, "10 answers after HUP", || {
        answers.lock().unwrap().len() >= before + 10
    });
    // Answers right after the new workers booted may still come from old ones.
    let settled = answers.lock().unwrap().len();
    wait_until(STARTUP, "10 more answers", || {
        answers.lock().unwrap().len() >= settled + 10
    });
    check_polled(&stop, client, &answers, settled, &new, "HUP", &server.log());
}

/// TERM lets the request in flight finish; INT stops at once, without a Python
/// traceback (the master owns SIGINT, not Python's KeyboardInterrupt).
fn term_is_graceful_and_int_is_fast(venv_name: &str) {
    let venv = wheel_venv(venv_name);
    let args = crate::harness::app_args("basics:application", &["--graceful-timeout=60"]);
    for (sig, ms) in [("TERM", "1500"), ("INT", "30000")] {
        let mut server = start_in(&venv, &args);
        let mut conn = Conn::open(server.port());
        let target = format!("/slow?ms={ms}");
        conn.send(&request("GET", &target, &[("Connection", "close")], b""));
        server.wait_for_log("slow request started", IO_TIMEOUT);
        let sent = Instant::now();
        signal(server.pid, sig);
        if sig == "TERM" {
            let r = conn.response();
            assert_eq!((r.status, r.text().as_str()), (200, "slow done"));
        }
        let status = server
            .wait_exit(Duration::from_secs(50))
            .unwrap_or_else(|| panic!("no exit after SIG{sig}; log:\n{}", server.log()));
        let log = server.log();
        assert_eq!(status.code(), Some(0), "SIG{sig}; log:\n{log}");
        if sig == "INT" {
            // Far below the 30 s the request would take and the 60 s graceful timeout.
            assert!(
                sent.elapsed() < Duration::from_secs(15),
                "INT took {:?}",
                sent.elapsed()
            );
        }
        for word in ["Traceback", "KeyboardInterrupt"] {
            assert!(!log.contains(word), "SIG{sig}: {word} in the log:\n{log}");
        }
    }
}

macro_rules! per_version {
    ($($module:ident => $version:literal),* $(,)?) => {$(
        /// The wheel of one CPython version, installed by pip in a fresh venv.
        mod $module {
            #[test]
            fn serves_the_guides_app_with_five_workers_and_ps_shows_their_titles() {
                super::serves_the_guides_app_with_five_workers($version);
            }

            #[test]
            fn flask_in_the_venv_runs_in_the_venvs_interpreter() {
                super::flask_runs_in_the_venvs_interpreter($version, $version);
            }

            #[test]
            fn hup_under_a_polling_client_fails_no_request() {
                super::hup_under_a_polling_client_fails_no_request($version);
            }

            #[test]
            fn term_is_graceful_and_int_is_fast_without_a_traceback() {
                super::term_is_graceful_and_int_is_fast($version);
            }
        }
    )*};
}

per_version! {
    cpython_3_10 => "3.10",
    cpython_3_11 => "3.11",
    cpython_3_12 => "3.12",
    cpython_3_13 => "3.13",
}

/// `pip install rustcorn-<version>.tar.gz` built the extension from source; it serves.
#[test]
fn sdist_built_by_pip_serves_the_guides_app() {
    let venv = wheel_venv("sdist");
    let server = start_in(
        &venv,
        &["-b", "127.0.0.1:0", "--chdir", "examples/hello", "wsgi"],
    );
    let r = get(server.port(), "/");
    assert_eq!((r.status, r.text().as_str()), (200, "Hello!"), "{r:?}");
}

/// `python -m rustcorn` is the same server; USR2 re-executes that very command line —
/// the venv's `python`, `-m rustcorn`, the flags — so the new master's workers run in
/// the same venv.
#[test]
fn python_m_rustcorn_serves_and_usr2_reexecutes_the_same_command_line() {
    let venv = wheel_venv("3.13");
    let path = std::env::var("PATH").unwrap_or_default();
    let mut args = vec!["-m", "rustcorn"];
    args.extend(crate::harness::app_args("flask_app:app", &["--workers=1"]));
    let mut server = ServerBuilder::new(&args)
        .program(venv.join("bin/python"))
        .env("VIRTUAL_ENV", &venv.display().to_string())
        .env("PATH", &format!("{}:{path}", venv.join("bin").display()))
        .start();
    let old_worker = server.worker_pids[0];
    signal(server.pid, "USR2");
    server.wait_for(STARTUP, "a new master with its worker", |log| {
        crate::systemd::master_pids(log).len() >= 2 && booted_pids(log).len() >= 2
    });
    let new_master = crate::systemd::master_pids(&server.log())[1];
    assert_eq!(
        std::fs::read_link(format!("/proc/{new_master}/exe")).ok(),
        std::fs::read_link(format!("/proc/{}/exe", server.pid)).ok(),
        "the new master runs another program"
    );
    signal(server.pid, "TERM");
    server
        .wait_exit(crate::harness::EXIT_TIMEOUT)
        .expect("the old master exits");
    wait_until(STARTUP, "the old worker to exit", || {
        !crate::harness::process_alive(old_worker)
    });
    let r = get(server.port(), "/python");
    assert_eq!(r.status, 200, "{r:?}; log:\n{}", server.log());
    let doc = Json::parse(&r.text());
    assert_eq!(doc.str_at("version"), "3.13");
    assert_eq!(
        std::fs::canonicalize(doc.str_at("prefix")).ok(),
        std::fs::canonicalize(&venv).ok()
    );
    signal(new_master, "TERM");
    wait_until(
        crate::harness::EXIT_TIMEOUT,
        "the new master to exit",
        || !crate::harness::process_alive(new_master),
    );
}
