//! `--paste FILE[#NAME]` and `--paste-global`: the app comes from a PasteDeploy file
//! (tests/apps/paste_app.ini) loaded by the real PasteDeploy in the test venv, its
//! logging sections apply as Gunicorn applies them, and every mistake stops the start
//! with a line naming it.

use std::time::Duration;

use crate::client::get;
use crate::harness::{venv_dir, Server, ServerBuilder, BIN, IO_TIMEOUT};
use crate::json::Json;

const INI: &str = "tests/apps/paste_app.ini";

fn start(paste: &str, extra: &[&str]) -> Server {
    let mut args = vec![
        "-b",
        "127.0.0.1:0",
        "--pythonpath",
        "tests/apps",
        "--paste",
        paste,
    ];
    args.extend_from_slice(extra);
    ServerBuilder::new(&args).start()
}

fn body(server: &Server) -> Json {
    let r = get(server.port(), "/hi");
    assert_eq!(r.status, 200, "{}", server.log());
    Json::parse(&r.text())
}

#[test]
fn the_main_app_gets_the_globals_and_the_file_configures_logging() {
    let server = start(
        INI,
        &["--paste-global", "who=world", "--paste-global", r"a\=b=c=d"],
    );
    let doc = body(&server);
    assert_eq!(doc.str_at("greeting"), "hello");
    let globals = doc.at("global_conf");
    assert_eq!(globals.str_at("who"), "world");
    assert_eq!(globals.str_at("a=b"), "c=d");
    let file = std::fs::canonicalize(INI).unwrap();
    assert_eq!(globals.str_at("__file__"), file.display().to_string());
    // The file's [loggers] section is the logging config, as with --log-config.
    assert!(
        server.stdout().wait(0, IO_TIMEOUT, |out| out
            .contains("paste-ini-logging served /hi")),
        "stdout:\n{}",
        server.stdout().text()
    );
}

#[test]
fn a_section_or_a_pipeline_is_picked_with_a_hash() {
    let admin = start(&format!("{INI}#admin"), &[]);
    assert_eq!(body(&admin).str_at("greeting"), "admin");
    drop(admin);
    // --paster is Gunicorn's alias.
    let args = [
        "-b",
        "127.0.0.1:0",
        "--pythonpath",
        "tests/apps",
        "--paster",
        "tests/apps/paste_app.ini#tagged",
    ];
    let tagged = ServerBuilder::new(&args).start();
    let doc = body(&tagged);
    assert_eq!(doc.str_at("greeting"), "hello");
    let tags: Vec<&str> = doc
        .at("tags")
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Json::as_str)
        .collect();
    assert_eq!(tags, ["from-the-filter"]);
}

#[test]
fn print_config_shows_the_paste_settings() {
    let args = [
        "--pythonpath",
        "tests/apps",
        "--paste",
        INI,
        "--paste-global",
        "who=world",
        "--print-config",
    ];
    let out = ServerBuilder::new(&args).run_to_exit(Duration::from_secs(60));
    assert!(out.status.success(), "{}", out.stderr);
    let line = |name: &str| {
        out.stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no {name} in:\n{}", out.stdout))
            .split_once(" = ")
            .unwrap()
            .1
            .to_string()
    };
    assert_eq!(line("paste"), INI);
    assert_eq!(line("raw_paste_global_conf"), "['who=world']");
    assert_eq!(line("wsgi_app"), "None");
}

#[test]
fn paste_mistakes_stop_the_start_naming_the_problem() {
    // (arguments, what the error output must contain)
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--paste", "tests/apps/no_such.ini"],
            &["--paste", "no_such.ini"],
        ),
        (&["--paste", INI, "hello"], &["--paste", "not both"]),
        (
            &["--paste", INI, "--paste-global", "NOEQUALS"],
            &["--paste-global", "NOEQUALS", "KEY=VALUE"],
        ),
        (
            &["--paste-global", "a=b", "hello"],
            &["--paste-global", "--paste"],
        ),
        (&["--paste", "tests/apps/paste_app.ini#nope"], &["nope"]),
    ];
    let mut failures = Vec::new();
    for (flags, needles) in cases {
        let mut args = vec![
            "-b",
            "127.0.0.1:0",
            "--workers=2",
            "--pythonpath",
            "tests/apps",
        ];
        args.extend_from_slice(flags);
        let out = ServerBuilder::new(&args).run_to_exit(Duration::from_secs(60));
        let text = format!("{}{}", out.stdout, out.stderr);
        let missing: Vec<_> = needles.iter().filter(|n| !text.contains(*n)).collect();
        if out.status.success() || !missing.is_empty() || out.leftover_workers {
            failures.push(format!(
                "{flags:?}: {:?}, lacks {missing:?}:\n{text}",
                out.status
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// An environment without PasteDeploy: a bare venv of the test venv's Python, served by
/// the binary (the wheel's script is bound to the test venv, which has PasteDeploy).
#[test]
fn without_pastedeploy_the_start_stops_saying_what_to_install() {
    let dir = tempfile::tempdir().unwrap();
    let venv = dir.path().join("bare");
    let made = std::process::Command::new(venv_dir().join("bin/python"))
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .status()
        .unwrap();
    assert!(made.success(), "python -m venv --without-pip failed");
    let args = [
        "-b",
        "127.0.0.1:0",
        "--pythonpath",
        "tests/apps",
        "--paste",
        INI,
    ];
    let out = ServerBuilder::new(&args)
        .program(BIN.into())
        .env("VIRTUAL_ENV", &venv.display().to_string())
        .run_to_exit(Duration::from_secs(60));
    assert!(!out.status.success(), "{}", out.stderr);
    assert!(
        out.stderr.contains("--paste needs PasteDeploy")
            && out.stderr.contains("pip install PasteDeploy"),
        "{}",
        out.stderr
    );
}
