//! Sources and precedence, with config-file settings given directly (the Python side
//! is exercised end to end by tests/integration/config_file.rs).

use std::ffi::OsString;
use std::path::Path;

use super::file::{FileSettings, FileValue, HookDef};
use super::load::{load, split_shell};
use super::settings::{self, Status, SETTINGS};
use super::*;

fn value(name: &str, line: u32, values: &[&str]) -> FileValue {
    FileValue {
        name: settings::lookup(name).unwrap().name,
        line,
        values: Some(values.iter().map(|v| v.to_string()).collect()),
    }
}

fn file_with(values: Vec<FileValue>) -> FileSettings {
    FileSettings {
        path: "gunicorn.conf.py".into(),
        values,
        ..FileSettings::default()
    }
}

/// Loads `args` with `$GUNICORN_CMD_ARGS` = `env_args` and `-c` pointing at `file`.
fn load_with(
    file: &FileSettings,
    env_args: Option<&str>,
    args: &[&str],
) -> Result<Config, ConfigError> {
    let env = Environment {
        gunicorn_cmd_args: env_args.map(str::to_string),
        ..Environment::default()
    };
    let mut argv: Vec<OsString> = vec!["rustcorn".into(), "-c".into(), "Cargo.toml".into()];
    argv.extend(args.iter().map(OsString::from));
    load(argv, &env, Path::new("."), &|_| Ok(file.clone()))
}

#[test]
fn file_then_env_then_command_line_and_lists_are_replaced() {
    let file = file_with(vec![
        value("bind", 1, &["127.0.0.1:1", "127.0.0.1:2"]),
        value("workers", 2, &["3"]),
        value("timeout", 3, &["7"]),
        value("raw_env", 4, &["A=1", "B=2"]),
        value("keepalive", 5, &["9"]),
    ]);
    let c = load_with(&file, None, &["app"]).unwrap();
    assert_eq!(
        (c.binds.len(), c.workers, c.timeout, c.keep_alive),
        (2, 3, 7, 9)
    );
    assert_eq!(c.env.len(), 2);

    let c = load_with(
        &file,
        Some("-b 127.0.0.1:3 --timeout=8 -e 'C=x y'"),
        &["app"],
    )
    .unwrap();
    assert_eq!(c.binds.len(), 1, "env's bind replaces the file's list");
    assert_eq!(c.timeout, 8);
    assert_eq!(c.env, vec![("C".to_string(), "x y".to_string())]);
    assert_eq!(
        (c.workers, c.keep_alive),
        (3, 9),
        "untouched settings keep the file's value"
    );

    let c = load_with(
        &file,
        Some("--timeout=8 -e C=3"),
        &["-t", "11", "-e", "D=4", "app"],
    )
    .unwrap();
    assert_eq!(c.timeout, 11);
    assert_eq!(c.env, vec![("D".to_string(), "4".to_string())]);
}

#[test]
fn wsgi_app_supplies_app_module_unless_the_command_line_has_one() {
    let file = file_with(vec![value("wsgi_app", 1, &["from_file:app"])]);
    assert_eq!(
        load_with(&file, None, &[]).unwrap().app_module,
        "from_file:app"
    );
    assert_eq!(load_with(&file, None, &["cli"]).unwrap().app_module, "cli");
}

#[test]
fn a_bad_file_value_names_the_setting_and_line() {
    let file = file_with(vec![value("workers", 4, &["many"])]);
    let e = load_with(&file, None, &["app"]).unwrap_err().to_string();
    assert!(
        e.contains("gunicorn.conf.py:4") && e.contains("`workers`"),
        "{e}"
    );
    let file = file_with(vec![value("workers", 6, &["0"])]);
    let e = load_with(&file, None, &["app"]).unwrap_err().to_string();
    assert!(
        e.contains("--workers") && e.contains("gunicorn.conf.py:6"),
        "{e}"
    );
    // The same value from the command line names no file.
    let e = load_with(&file_with(vec![]), None, &["-w", "0", "app"])
        .unwrap_err()
        .to_string();
    assert!(!e.contains("gunicorn.conf.py"), "{e}");
}

#[test]
fn unsupported_settings_warn_or_refuse_unless_left_at_their_default() {
    let ok = |values| load_with(&file_with(values), None, &["app"]);
    assert!(ok(vec![value(
        "logger_class",
        1,
        &["gunicorn.glogging.Logger"]
    )])
    .unwrap()
    .sources
    .warnings
    .is_empty());
    let e = ok(vec![value("logger_class", 2, &["my.Logger"])])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("gunicorn.conf.py:2") && e.contains("logger_class"),
        "{e}"
    );
    let c = ok(vec![
        value("spew", 3, &["true"]),
        value("dirty_workers", 4, &["0"]),
    ])
    .unwrap();
    assert_eq!(c.sources.warnings.len(), 1, "{:?}", c.sources.warnings);
    assert!(c.sources.warnings[0].contains("spew"));
    let e = ok(vec![value("dirty_workers", 4, &["2"])])
        .unwrap_err()
        .to_string();
    assert!(e.contains("dirty_workers"), "{e}");
    // On the command line too, under Gunicorn's spelling.
    let c = load_with(
        &file_with(vec![]),
        None,
        &["--spew", "--dirty-timeout", "60", "app"],
    )
    .unwrap();
    assert_eq!(c.sources.warnings.len(), 2, "{:?}", c.sources.warnings);
    assert!(load_with(&file_with(vec![]), None, &["--paste", "x.ini", "app"]).is_err());
}

#[test]
fn hooks_are_kept_and_file_only_values_recorded() {
    let mut file = file_with(vec![]);
    file.hooks.push(HookDef {
        name: "post_fork",
        line: 3,
        target: "post_fork".into(),
    });
    file.values.push(value(
        "secure_scheme_headers",
        5,
        &["X-Scheme", "yes", "k", "v"],
    ));
    file.values
        .push(value("tmp_upload_dir", 6, &["/var/tmp/uploads"]));
    let c = load_with(&file, None, &["app"]).unwrap();
    assert_eq!(c.sources.hooks, file.hooks);
    assert_eq!(
        c.sources.file_dict("secure_scheme_headers").unwrap(),
        vec![("X-Scheme".into(), "yes".into()), ("k".into(), "v".into())]
    );
    // Applied, with names upper-cased as Gunicorn compares them.
    assert_eq!(
        c.proxy.secure_scheme_headers,
        vec![("X-SCHEME".into(), "yes".into()), ("K".into(), "v".into())]
    );
    // An ignored file-only setting is recorded and warned about with its line.
    assert_eq!(c.sources.warnings.len(), 1, "{:?}", c.sources.warnings);
    assert!(
        c.sources.warnings[0].contains("gunicorn.conf.py:6"),
        "{:?}",
        c.sources.warnings
    );
    assert_eq!(c.sources.config_file.as_deref(), Some("gunicorn.conf.py"));
}

#[test]
fn gunicorn_cmd_args_is_split_like_python_shlex() {
    let cases: &[(&str, &[&str])] = &[
        (
            "-w 2  --bind=127.0.0.1:1",
            &["-w", "2", "--bind=127.0.0.1:1"],
        ),
        (
            "--name 'my app' -e \"A=b c\"",
            &["--name", "my app", "-e", "A=b c"],
        ),
        ("a\\ b \"q\\\"t\" ''", &["a b", "q\"t", ""]),
        ("  ", &[]),
    ];
    for (text, want) in cases {
        let got = split_shell(text).unwrap();
        assert_eq!(
            got,
            want.iter().map(OsString::from).collect::<Vec<_>>(),
            "{text}"
        );
    }
    assert!(split_shell("'open").is_err());
}

#[test]
fn the_settings_table_and_the_command_line_agree() {
    let cmd = layers_command();
    let mut names: Vec<&str> = SETTINGS.iter().map(|s| s.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), SETTINGS.len(), "a setting is declared twice");
    for s in SETTINGS {
        let declared = s
            .long()
            .is_some_and(|long| cmd.get_arguments().any(|a| a.get_long() == Some(long)));
        let want = s.long().is_some()
            && matches!(
                s.status,
                Status::Implemented | Status::Ignored(_) | Status::Refused(_)
            );
        assert_eq!(
            declared, want,
            "{}: flag {:?} declared={declared}",
            s.name, s.flags
        );
    }
    // Every flag rustcorn has is a Gunicorn setting's (or --version/--help).
    for arg in cmd.get_arguments() {
        if let Some(long) = arg.get_long() {
            assert!(
                settings::by_flag(long).is_some() || long == "version" || long == "help",
                "--{long} has no line in the settings table"
            );
        }
    }
}

fn layers_command() -> clap::Command {
    let mut cmd = super::layers::command();
    cmd.build();
    cmd
}

#[test]
fn docs_settings_md_is_generated_from_the_table() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/settings.md");
    let doc = std::fs::read_to_string(path).unwrap_or_default();
    let table = settings::markdown_table();
    if std::env::var_os("RUSTCORN_BLESS").is_some() {
        // `RUSTCORN_BLESS=1 cargo test --lib docs_settings` rewrites the table in place.
        let start = doc
            .find("| setting |")
            .expect("docs/settings.md has a table");
        let end = doc[start..]
            .find("\n\n")
            .map_or(doc.len(), |i| start + i + 1);
        let updated = format!("{}{}{}", &doc[..start], table, &doc[end..]);
        std::fs::write(path, updated).expect("write docs/settings.md");
        return;
    }
    assert!(
        doc.contains(&table),
        "docs/settings.md is out of date; its table should be:\n{table}"
    );
}

#[test]
fn reload_settings_come_from_the_file_and_the_command_line_replaces_them() {
    let file = file_with(vec![
        value("reload", 1, &["true"]),
        value("reload_engine", 2, &["poll"]),
        value("reload_extra_files", 3, &["Cargo.toml", "tests/apps/*.py"]),
    ]);
    let c = load_with(&file, None, &["app"]).unwrap();
    assert!(c.reload.enabled);
    assert_eq!(c.reload.engine, reload::Engine::Poll);
    assert_eq!(c.reload.extra_files.len(), 1);
    assert!(c.reload.extra_patterns[0].ends_with("tests/apps/*.py"));
    assert!(c.sources.warnings.is_empty(), "{:?}", c.sources.warnings);
    let c = load_with(&file, None, &["--reload-engine", "inotify", "app"]).unwrap();
    assert_eq!(c.reload.engine, reload::Engine::Inotify);
    let bad = file_with(vec![value("reload_engine", 4, &["kqueue"])]);
    let e = load_with(&bad, None, &["app"]).unwrap_err().to_string();
    assert!(
        e.contains("--reload-engine") && e.contains("gunicorn.conf.py:4"),
        "{e}"
    );
}
