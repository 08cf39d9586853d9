//! Gunicorn config files: the corpus in tests/configs/ (one file per kind of value and
//! per kind of failure) loaded and compared through `--print-config`; precedence of
//! file < `$GUNICORN_CMD_ARGS` < flags; `./gunicorn.conf.py` picked up from the working
//! directory; `--check-config`; and a server started from a config file alone.

use std::collections::BTreeMap;

use crate::client::get;
use crate::harness::{require_venv, Exited, ServerBuilder, EXIT_TIMEOUT, STARTUP};

/// The app every `--print-config` run loads (Gunicorn loads it too).
const APP: [&str; 3] = ["--chdir", "tests/apps", "hello"];

/// Runs `rustcorn args... --print-config` with `env`.
fn print_config(args: &[&str], env: &[(&str, &str)]) -> (Exited, BTreeMap<String, String>) {
    let mut full = vec!["--print-config"];
    full.extend_from_slice(args);
    let mut builder = ServerBuilder::new(&full);
    for (k, v) in env {
        builder = builder.env(k, v);
    }
    let out = builder.run_to_exit(EXIT_TIMEOUT);
    let settings = parse_settings(&out.stdout);
    (out, settings)
}

/// `name   = value` lines → name → value.
fn parse_settings(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .filter_map(|line| line.split_once(" = "))
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .collect()
}

/// A config file, the values `--print-config` must show, and what stderr must say.
struct Case {
    file: &'static str,
    want: &'static [(&'static str, &'static str)],
    stderr: &'static [&'static str],
}

const LOADS: &[Case] = &[
    Case {
        file: "tests/configs/int.py",
        want: &[
            ("workers", "3"),
            ("timeout", "17"),
            ("backlog", "64"),
            ("graceful_timeout", "5"),
            ("keepalive", "4"),
            ("worker_connections", "50"),
            ("threads", "2"),
        ],
        stderr: &[],
    },
    Case {
        file: "tests/configs/bool.py",
        want: &[("sendfile", "False"), ("reuse_port", "False")],
        stderr: &[],
    },
    Case {
        file: "tests/configs/string.py",
        want: &[
            ("worker_class", "gthread"),
            ("loglevel", "debug"),
            ("proc_name", "corpus"),
            ("accesslog", "None"),
            ("pythonpath", "/srv/a,/srv/b"),
        ],
        stderr: &[],
    },
    Case {
        file: "tests/configs/list.py",
        want: &[
            (
                "bind",
                "['127.0.0.1:8123', 'unix:/tmp/rustcorn-corpus.sock']",
            ),
            ("raw_env", "['A=1', 'B=x=y']"),
        ],
        stderr: &[],
    },
    Case {
        file: "tests/configs/list_string.py",
        want: &[("bind", "['127.0.0.1:8124']")],
        stderr: &[],
    },
    Case {
        file: "tests/configs/dict.py",
        want: &[
            ("secure_scheme_headers", "{'X-Scheme': 'yes'}"),
            (
                "logconfig_dict",
                "{'version': 1, 'root': {'level': 'INFO'}}",
            ),
        ],
        stderr: &[],
    },
    Case {
        file: "tests/configs/hook.py",
        want: &[
            ("post_fork", "<post_fork()>"),
            ("on_exit", "<<lambda>()>"),
            ("when_ready", "<WhenReady.when_ready()>"),
        ],
        stderr: &[],
    },
    Case {
        file: "python:tests.configs.module_conf",
        want: &[
            ("workers", "5"),
            ("config", "python:tests.configs.module_conf"),
        ],
        stderr: &[],
    },
    Case {
        file: "tests/configs/unknown_names.py",
        want: &[("workers", "2")],
        stderr: &[],
    },
    Case {
        file: "tests/configs/no_extension.conf",
        want: &[("workers", "2")],
        stderr: &["should have a valid Python extension"],
    },
    Case {
        file: "tests/configs/argv.py",
        want: &[("proc_name", "argv:hello")],
        stderr: &[],
    },
    Case {
        file: "tests/configs/ignored.py",
        want: &[("spew", "True"), ("tmp_upload_dir", "/var/tmp/uploads")],
        stderr: &[
            "ignored.py:2: `spew` is ignored",
            "ignored.py:3: `tmp_upload_dir`",
        ],
    },
];

#[test]
fn corpus_files_load_and_print_their_settings() {
    let mut failures = Vec::new();
    for case in LOADS {
        let mut args = vec!["-c", case.file];
        args.extend_from_slice(&APP);
        let (out, got) = print_config(&args, &[]);
        let mut problems = Vec::new();
        if !out.status.success() {
            problems.push(format!("exit {:?}", out.status));
        }
        for (name, value) in case.want {
            if got.get(*name).map(String::as_str) != Some(*value) {
                problems.push(format!("{name} = {:?}, want {value:?}", got.get(*name)));
            }
        }
        for needle in case.stderr {
            if !out.stderr.contains(needle) {
                problems.push(format!("stderr lacks {needle:?}"));
            }
        }
        if case.stderr.is_empty() && out.stderr.contains("WARNING") {
            problems.push("unexpected warning".into());
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{}: {}\n  stderr: {}",
                case.file,
                problems.join("; "),
                out.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_file_runs_in_the_virtualenv_the_workers_use() {
    let venv = require_venv();
    let mut args = vec!["-c", "tests/configs/venv.py"];
    args.extend_from_slice(&APP);
    let (out, got) = print_config(&args, &[]);
    assert!(out.status.success(), "{}", out.stderr);
    let prefix = std::fs::canonicalize(&got["proc_name"]).unwrap();
    assert_eq!(prefix, std::fs::canonicalize(venv).unwrap());
}

#[test]
fn every_gunicorn_setting_is_printed_sorted_as_gunicorn_does() {
    let (out, got) = print_config(&APP, &[]);
    assert!(out.status.success(), "{}", out.stderr);
    let names: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.split_once(" = "))
        .map(|(k, _)| k.trim())
        .collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "sorted by name");
    let width = out.stdout.lines().next().unwrap().find(" = ").unwrap();
    assert!(
        out.stdout.lines().all(|l| l.find(" = ") == Some(width)),
        "names padded to one width"
    );
    // Gunicorn 27 has 120 settings; a few spot checks of defaults.
    assert!(names.len() >= 120, "{}", out.stdout);
    for (name, value) in [
        ("bind", "['127.0.0.1:8000']"),
        ("workers", "1"),
        ("timeout", "30"),
        ("worker_class", "sync"),
        ("limit_request_line", "4094"),
        ("forwarded_allow_ips", "['127.0.0.1', '::1']"),
        ("wsgi_app", "hello"),
    ] {
        assert_eq!(got.get(name).map(String::as_str), Some(value), "{name}");
    }
}

/// (config file, line the message must contain)
const FAILURES: &[(&str, &[&str])] = &[
    (
        "tests/configs/syntax_error.py",
        &["syntax_error.py:3", "SyntaxError"],
    ),
    (
        "tests/configs/wrong_type.py",
        &["wrong_type.py:4", "`timeout`", "expected an integer"],
    ),
    (
        "tests/configs/exception.py",
        &[
            "exception.py:3",
            "KeyError",
            "RUSTCORN_TEST_NO_SUCH_VARIABLE",
        ],
    ),
    (
        "tests/configs/refused.py",
        &["refused.py:2", "--worker-class", "gevent"],
    ),
    (
        "tests/configs/reload.py",
        &[
            "reload.py:3",
            "--reload-extra-file",
            "templates/no-such-page.html",
        ],
    ),
    (
        "tests/configs/no_such_file.py",
        &["no_such_file.py", "doesn't exist"],
    ),
];

#[test]
fn broken_config_files_stop_with_file_line_and_reason() {
    let mut failures = Vec::new();
    for (file, needles) in FAILURES {
        let mut args = vec!["-c", file];
        args.extend_from_slice(&APP);
        let out = ServerBuilder::new(&args).run_to_exit(EXIT_TIMEOUT);
        let first = out.stderr.lines().next().unwrap_or_default();
        let missing: Vec<_> = needles
            .iter()
            .filter(|n| !out.stderr.contains(*n))
            .collect();
        if out.status.code() != Some(2)
            || !missing.is_empty()
            || !first.starts_with("rustcorn: error:")
        {
            failures.push(format!(
                "{file}: {:?}, missing {missing:?}\n  {}",
                out.status, out.stderr
            ));
        }
        if out.stderr.contains("Listening at") {
            failures.push(format!("{file}: the server started anyway"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn file_then_gunicorn_cmd_args_then_flags_and_lists_are_replaced() {
    let file = ["-c", "tests/configs/list.py"];
    let with = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = file.to_vec();
        args.extend_from_slice(extra);
        args.extend_from_slice(&APP);
        let (out, got) = print_config(&args, env);
        assert!(out.status.success(), "{}", out.stderr);
        got
    };
    let got = with(&[], &[]);
    assert_eq!(
        got["bind"],
        "['127.0.0.1:8123', 'unix:/tmp/rustcorn-corpus.sock']"
    );

    let env = [("GUNICORN_CMD_ARGS", "-b 127.0.0.1:9 --workers 4 -e 'C=x y'")];
    let got = with(&[], &env);
    assert_eq!(
        got["bind"], "['127.0.0.1:9']",
        "env replaces the file's list"
    );
    assert_eq!(got["raw_env"], "['C=x y']");
    assert_eq!(got["workers"], "4");

    let got = with(&["-w", "7", "--bind", "127.0.0.1:10"], &env);
    assert_eq!(
        (got["workers"].as_str(), got["bind"].as_str()),
        ("7", "['127.0.0.1:10']")
    );
    assert_eq!(
        got["raw_env"], "['C=x y']",
        "what the flags leave alone keeps env's value"
    );

    // -c itself may come from $GUNICORN_CMD_ARGS.
    let mut args = vec![];
    args.extend_from_slice(&APP);
    let (out, got) = print_config(&args, &[("GUNICORN_CMD_ARGS", "-c tests/configs/int.py")]);
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(got["workers"], "3");
}

#[test]
fn gunicorn_conf_py_in_the_working_directory_is_read_without_c() {
    let out = ServerBuilder::new(&["--print-config"])
        .launcher(&["sh", "-c", "cd tests/configs/default && exec \"$@\"", "sh"])
        .run_to_exit(EXIT_TIMEOUT);
    assert!(out.status.success(), "{}", out.stderr);
    let got = parse_settings(&out.stdout);
    assert_eq!(got["workers"], "6");
    assert_eq!(got["wsgi_app"], "hello");
    assert_eq!(got["config"], "gunicorn.conf.py");
    assert!(got["chdir"].ends_with("tests/apps"), "{}", got["chdir"]);
}

#[test]
fn check_config_exits_0_when_the_app_loads_and_1_when_not() {
    let out = ServerBuilder::new(&[
        "--check-config",
        "-c",
        "tests/configs/int.py",
        "--chdir",
        "tests/apps",
        "hello",
    ])
    .run_to_exit(EXIT_TIMEOUT);
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    assert!(
        out.stdout.is_empty() && !out.stderr.contains("Listening at"),
        "{}",
        out.stderr
    );
    // The example from the README.
    let out = ServerBuilder::new(&["--check-config", "-c", "examples/gunicorn.conf.py"])
        .run_to_exit(EXIT_TIMEOUT);
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    for app in ["broken_import", "not_callable", "no_such_module"] {
        let out = ServerBuilder::new(&["--check-config", "--chdir", "tests/apps", app])
            .run_to_exit(EXIT_TIMEOUT);
        assert_eq!(out.status.code(), Some(1), "{app}: {}", out.stderr);
        assert!(
            out.stderr.contains("Error while loading the application"),
            "{app}: {}",
            out.stderr
        );
    }
}

#[test]
fn unsupported_gunicorn_flags_are_accepted_with_a_warning_or_refused() {
    let (out, got) = print_config(
        &[
            "--spew",
            "--dirty-timeout",
            "60",
            "--http-parser",
            "auto",
            "hello",
            "--chdir",
            "tests/apps",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(got["spew"], "True");
    assert!(
        out.stderr.contains("--spew: `spew` is ignored"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("`dirty_timeout` is ignored"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("http_parser"),
        "a default value is no cause for a warning"
    );
    for flag in ["--dirty-workers=2", "--dirty-app=tasks:app"] {
        let out =
            ServerBuilder::new(&[flag, "--chdir", "tests/apps", "hello"]).run_to_exit(EXIT_TIMEOUT);
        assert_eq!(out.status.code(), Some(2), "{flag}: {}", out.stderr);
        assert!(
            out.stderr.contains("is not supported"),
            "{flag}: {}",
            out.stderr
        );
    }
}

#[test]
fn a_server_runs_from_a_config_file_alone() {
    let mut server = ServerBuilder::new(&["-c", "tests/configs/serve.py"]).start();
    // `workers = 2` comes from the file too.
    server.wait_for(STARTUP, "2 booted workers", |log| {
        log.matches("Booting worker with pid").count() >= 2
    });
    let response = get(server.port(), "/");
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"Hello!");
}
