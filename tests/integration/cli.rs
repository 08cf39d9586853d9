//! The command line: Gunicorn's flags and spellings, usage errors (exit 2,
//! one line naming the flag, nothing started), start-up log lines,
//! APP_MODULE forms, `$PORT`.

use crate::client::{get, request, try_get, Conn};
use crate::harness::{free_port, serve, Listener, Server, ServerBuilder, EXIT_TIMEOUT};
use crate::json::Json;

#[test]
fn usage_errors_exit_2_with_one_line_naming_the_flag() {
    // (arguments, the line must name one of these)
    let cases: &[(&[&str], &[&str])] = &[
        (&["--no-such-flag", "hello"], &["--no-such-flag"]),
        (&["--workers=abc", "hello"], &["--workers"]),
        (&["--workers", "abc", "hello"], &["--workers"]),
        (&["-w", "abc", "hello"], &["--workers", "-w"]),
        (&["--timeout=soon", "hello"], &["--timeout"]),
        (
            &["--graceful-timeout=later", "hello"],
            &["--graceful-timeout"],
        ),
        (&["--keep-alive=x", "hello"], &["--keep-alive"]),
        (&["--threads", "0", "hello"], &["--threads"]),
        (&["--threads=0", "-k", "gthread", "hello"], &["--threads"]),
        (&["--threads=many", "hello"], &["--threads"]),
        (&["--backlog=many", "hello"], &["--backlog"]),
        (
            &["--worker-connections=lots", "hello"],
            &["--worker-connections"],
        ),
        (&["-k", "gevent", "hello"], &["--worker-class", "gevent"]),
        (
            &["--worker-class=eventlet", "hello"],
            &["--worker-class", "eventlet"],
        ),
        (&["-k", "tornado", "hello"], &["--worker-class", "tornado"]),
        (
            &["-k", "asgi", "--asgi-lifespan", "maybe", "hello"],
            &["--asgi-lifespan", "maybe"],
        ),
    ];
    let mut failures = Vec::new();
    for (args, names) in cases {
        let mut full = vec!["-b", "127.0.0.1:0", "--chdir", "tests/apps"];
        full.extend_from_slice(args);
        let out = ServerBuilder::new(&full).run_to_exit(EXIT_TIMEOUT);
        let lines: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        let problem = if out.status.code() != Some(2) {
            Some(format!("exit status {:?}, want 2", out.status))
        } else if lines.len() != 1 {
            Some(format!("{} stderr lines, want 1", lines.len()))
        } else if !names.iter().any(|n| lines[0].contains(n)) {
            Some(format!("message names none of {names:?}"))
        } else if out.stderr.contains("Listening at")
            || out.stderr.contains("Booting worker")
            || !out.stdout.is_empty()
        {
            Some("the server started anyway".to_string())
        } else {
            None
        };
        if let Some(problem) = problem {
            failures.push(format!(
                "{args:?}: {problem}\n  stderr: {:?}\n  stdout: {:?}",
                out.stderr, out.stdout
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "usage errors handled wrongly:\n{}",
        failures.join("\n")
    );
}

#[test]
fn version_and_help_exit_0() {
    let out = ServerBuilder::new(&["--version"]).run_to_exit(EXIT_TIMEOUT);
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(
        out.status.success() && text.contains("rustcorn") && text.contains("0.1.0"),
        "--version: {:?} {text:?}",
        out.status
    );
    let out = ServerBuilder::new(&["--help"]).run_to_exit(EXIT_TIMEOUT);
    assert!(out.status.success(), "--help: {:?}", out.status);
    for flag in [
        "--bind",
        "--workers",
        "--worker-class",
        "--timeout",
        "--chdir",
        "--access-logfile",
    ] {
        assert!(
            out.stdout.contains(flag),
            "--help does not mention {flag}:\n{}",
            out.stdout
        );
    }
}

/// Every long flag `--help` lists is written in README.md, so a flag added to the
/// command line without a word in the README (which promises "every flag") fails here.
#[test]
fn every_flag_of_help_is_in_the_readme() {
    let out = ServerBuilder::new(&["--help"]).run_to_exit(EXIT_TIMEOUT);
    assert!(out.status.success(), "--help: {:?}", out.status);
    let readme =
        std::fs::read_to_string(crate::harness::repo_root().join("README.md")).expect("README.md");
    let flags: std::collections::BTreeSet<&str> = out
        .stdout
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|word| word.starts_with("--") && word.len() > 2)
        .collect();
    assert!(
        flags.len() > 50,
        "--help lists only {} long flags:\n{}",
        flags.len(),
        out.stdout
    );
    let missing: Vec<&str> = flags
        .into_iter()
        .filter(|flag| !readme.contains(flag))
        .collect();
    assert!(missing.is_empty(), "README.md does not mention {missing:?}");
}

/// `[2026-11-23 21:09:48 +0000] [PID] [LEVEL] message` → (pid, level, message).
pub fn parse_log_line(line: &str) -> Option<(u32, &str, &str)> {
    let rest = line.strip_prefix('[')?;
    let (stamp, rest) = rest.split_once("] [")?;
    let b = stamp.as_bytes();
    let stamp_ok = stamp.len() == 25
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b' '
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b' '
        && (b[20] == b'+' || b[20] == b'-');
    let (pid, rest) = rest.split_once("] [")?;
    let (level, message) = rest.split_once("] ")?;
    stamp_ok.then_some(())?;
    Some((pid.parse().ok()?, level, message))
}

#[test]
fn start_up_log_lines_follow_gunicorns_format() {
    let server = serve("hello", &["--workers=2"]);
    let log = server.log();
    let port = server.port();
    let parsed: Vec<(u32, &str, &str)> = log.lines().filter_map(parse_log_line).collect();
    let master = server.pid;
    let want = [
        (master, "INFO", "Starting rustcorn 0.1.0".to_string()),
        (
            master,
            "INFO",
            format!("Listening at: http://127.0.0.1:{port} ({master})"),
        ),
        (master, "INFO", "Using worker: sync".to_string()),
    ];
    for (pid, level, message) in &want {
        assert!(
            parsed
                .iter()
                .any(|(p, l, m)| p == pid && l == level && m == message),
            "no line [{pid}] [{level}] {message} in:\n{log}"
        );
    }
    let boots: Vec<&str> = parsed
        .iter()
        .filter(|(_, l, m)| *l == "INFO" && m.starts_with("Booting worker with pid: "))
        .map(|(_, _, m)| *m)
        .collect();
    assert_eq!(boots.len(), 2, "{log}");
    for pid in &server.worker_pids {
        assert_ne!(*pid, master);
    }
}

#[test]
fn workers_flag_accepts_every_spelling() {
    let spellings: &[(&[&str], usize)] = &[
        (&["--workers", "5"], 5),
        (&["--workers=5"], 5),
        (&["-w", "2"], 2),
        (&["-w3"], 3),
    ];
    for (flag, count) in spellings {
        let server = serve("hello", flag);
        assert_eq!(server.worker_pids.len(), *count, "{flag:?}");
        let r = get(server.port(), "/");
        assert_eq!((r.status, r.text().as_str()), (200, "Hello!"), "{flag:?}");
    }
}

#[test]
fn app_module_forms_all_load() {
    let cases = [
        ("hello", "Hello!"),
        ("hello:application", "Hello!"),
        ("pkg.module:obj.attr", "pkg.module:obj.attr"),
        ("factories:create()", "made by create()"),
        (
            "factories:create_with('arg', 2)",
            "made by create_with(str:arg, int:2)",
        ),
    ];
    for (app, body) in cases {
        let server = serve(app, &[]);
        let r = try_get(server.port(), "/")
            .unwrap_or_else(|e| panic!("{app}: {e}; log:\n{}", server.log()));
        assert_eq!((r.status, r.text().as_str()), (200, body), "{app}");
    }
}

#[test]
fn port_env_var_sets_the_default_bind_to_all_interfaces() {
    let port = free_port();
    let server = ServerBuilder::new(&["--chdir", "tests/apps", "hello"])
        .env("PORT", &port.to_string())
        .start();
    assert_eq!(
        server.listeners,
        [Listener::Tcp(([0, 0, 0, 0], port).into())],
        "log:\n{}",
        server.log()
    );
    assert_eq!(get(port, "/").text(), "Hello!");
}

#[test]
fn pythonpath_and_env_flags_reach_the_app() {
    // No --chdir: the app is found through --pythonpath (comma-separated).
    let server = Server::start(&[
        "-b",
        "127.0.0.1:0",
        "--pythonpath",
        "tests/no-such-dir,tests/apps",
        "-e",
        "RUSTCORN_TEST_E=one=two",
        "--env",
        "RUSTCORN_TEST_F=three",
        "echo_environ",
    ]);
    let r =
        Conn::open(server.port()).roundtrip(&request("GET", "/", &[("Connection", "close")], b""));
    assert_eq!(r.status, 200);
    let doc = Json::parse(&r.text());
    let env = doc.at("os_environ");
    assert_eq!(
        (env.str_at("RUSTCORN_TEST_E"), env.str_at("RUSTCORN_TEST_F")),
        ("one=two", "three")
    );
}
