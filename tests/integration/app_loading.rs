//! APP_MODULE that cannot be loaded: the master exits non-zero, in bounded
//! time, with an error naming what failed — never a respawn loop.

use std::time::Duration;

use crate::harness::{booted_pids, ServerBuilder};

#[test]
fn app_loading_errors_stop_the_master_with_a_clear_message() {
    // (APP_MODULE, the log must contain all of these)
    let cases: &[(&str, &[&str])] = &[
        ("no_such_module_xyz", &["no_such_module_xyz", "Traceback"]),
        (
            "no_such_module_xyz:application",
            &["no_such_module_xyz", "Traceback"],
        ),
        (
            "broken_import:application",
            &["rustcorn_missing_dependency", "Traceback"],
        ),
        ("hello:no_such_attr", &["no_such_attr"]),
        (
            "not_callable:application",
            &["not_callable", "must be callable"],
        ),
        ("factories:no_such_factory()", &["no_such_factory"]),
        ("pkg.module:obj.missing", &["missing"]),
    ];
    let mut failures = Vec::new();
    for (app, needles) in cases {
        let args = [
            "-b",
            "127.0.0.1:0",
            "--workers=2",
            "--chdir",
            "tests/apps",
            app,
        ];
        // Bounded: a master that keeps respawning fails here.
        let out = ServerBuilder::new(&args).run_to_exit(Duration::from_secs(60));
        let boots = booted_pids(&out.stderr).len();
        let mut problems = Vec::new();
        if out.status.success() {
            problems.push(format!("exit status {:?}, want non-zero", out.status));
        }
        for needle in needles.iter().filter(|n| !out.stderr.contains(*n)) {
            problems.push(format!("log lacks {needle:?}"));
        }
        if boots > 2 {
            problems.push(format!(
                "{boots} workers booted for 2 slots: a respawn loop"
            ));
        }
        if out.leftover_workers {
            problems.push("workers outlived the master".to_string());
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{app}: {}\n  log:\n{}",
                problems.join("; "),
                out.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A worker imports only what it uses: an app that does not import logging, ast or
/// traceback does not get them (with what they pull in, megabytes per worker), and
/// the `gunicorn.error` logger is still set up the moment the app imports logging.
#[test]
fn a_worker_carries_no_module_its_app_does_not_use() {
    let server = crate::harness::serve("modules_app:application", &[]);
    let modules = crate::client::get(server.port(), "/").text();
    for unused in ["logging", "ast", "traceback", "json", "asyncio", "tempfile"] {
        assert!(
            !modules.lines().any(|m| m == unused),
            "the worker imported {unused}: {modules}"
        );
    }
    let late = crate::client::get(server.port(), "/import-logging").text();
    assert_eq!(late, "1 gunicorn.error handlers\n");
}
