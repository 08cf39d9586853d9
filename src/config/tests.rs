//! Flag parsing and validation: Gunicorn's spellings in, one Config out.

use super::*;

fn parse(args: &[&str]) -> Result<Config, ConfigError> {
    parse_env(args, Environment::default())
}

fn parse_env(args: &[&str], env: Environment) -> Result<Config, ConfigError> {
    let mut argv = vec!["rustcorn"];
    argv.extend_from_slice(args);
    Config::from_args(argv, &env)
}

fn error_of(args: &[&str]) -> String {
    match parse(args) {
        Err(e) => e.to_string(),
        Ok(c) => panic!("{args:?} should be refused, got {c:?}"),
    }
}

#[test]
fn both_value_spellings_are_accepted() {
    for args in [
        &["--workers=5", "app"][..],
        &["--workers", "5", "app"],
        &["-w", "5", "app"],
        &["-w5", "app"],
    ] {
        assert_eq!(parse(args).unwrap().workers, 5, "{args:?}");
    }
}

#[test]
fn defaults_match_gunicorn() {
    let c = parse(&["wsgi"]).unwrap();
    assert_eq!(c.app_module, "wsgi");
    assert_eq!(
        c.binds,
        vec![BindAddress::Tcp {
            host: "127.0.0.1".into(),
            port: 8000
        }]
    );
    assert_eq!(
        (c.workers, c.timeout, c.graceful_timeout, c.keep_alive),
        (1, 30, 30, 2)
    );
    assert_eq!((c.backlog, c.worker_connections), (2048, 1000));
    assert_eq!(c.worker_class, WorkerClass::Sync);
    assert_eq!(c.error_logfile, "-");
    assert!(c.access_logfile.is_none());
}

#[test]
fn port_and_web_concurrency_change_defaults() {
    let env = Environment {
        port: Some("9090".into()),
        web_concurrency: Some("3".into()),
        ..Environment::default()
    };
    let c = parse_env(&["wsgi"], env.clone()).unwrap();
    assert_eq!(
        c.binds,
        vec![BindAddress::Tcp {
            host: "0.0.0.0".into(),
            port: 9090
        }]
    );
    assert_eq!(c.workers, 3);
    let c = parse_env(&["-b", "unix:/tmp/x.sock", "-w", "2", "wsgi"], env).unwrap();
    assert_eq!(c.binds, vec![BindAddress::Unix("/tmp/x.sock".into())]);
    assert_eq!(c.workers, 2);
}

#[test]
fn repeated_flags_accumulate() {
    let c = parse(&[
        "-b",
        "127.0.0.1:1",
        "--bind=[::1]:2",
        "-e",
        "A=1",
        "--env",
        "B=x=y",
        "wsgi",
    ])
    .unwrap();
    assert_eq!(c.binds.len(), 2);
    assert_eq!(
        c.env,
        vec![("A".into(), "1".into()), ("B".into(), "x=y".into())]
    );
    let c = parse(&["--pythonpath", "/a, /b", "wsgi"]).unwrap();
    assert_eq!(c.pythonpath, vec![PathBuf::from("/a"), PathBuf::from("/b")]);
}

#[test]
fn bad_input_is_one_line_naming_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&["--workers=abc", "wsgi"], "--workers"),
        (&["--workers=0", "wsgi"], "--workers"),
        (&["--no-such-flag", "wsgi"], "--no-such-flag"),
        (&["-b", "host:notaport", "wsgi"], "--bind"),
        (&["-k", "gevent", "wsgi"], "--worker-class"),
        (&["-k", "eventlet", "wsgi"], "--worker-class"),
        (&["-k", "tornado", "wsgi"], "--worker-class"),
        (
            &["-k", "asgi", "--asgi-loop", "tokio", "wsgi"],
            "--asgi-loop",
        ),
        (&["-k", "nosuch", "wsgi"], "--worker-class"),
        (&["-e", "NOEQUALS", "wsgi"], "--env"),
        (&["--timeout", "-1", "wsgi"], "-1"),
        (&["--log-level", "loud", "wsgi"], "--log-level"),
        (&["--chdir", "/no/such/dir", "wsgi"], "--chdir"),
    ];
    for (args, flag) in cases {
        let msg = error_of(args);
        assert!(msg.contains(flag), "{args:?}: {msg}");
        assert_eq!(msg.lines().count(), 1, "{args:?}: {msg}");
    }
}

#[test]
fn refused_worker_classes_say_what_to_use() {
    assert!(error_of(&["-k", "gevent", "wsgi"]).contains("-k sync"));
}

#[test]
fn version_and_help_are_informational() {
    assert!(
        matches!(parse(&["--version"]), Err(ConfigError::Info(v)) if v.contains(env!("CARGO_PKG_VERSION")))
    );
    assert!(
        matches!(parse(&["--help"]), Err(ConfigError::Info(h)) if h.contains("--worker-class"))
    );
}

#[test]
fn a_missing_app_module_is_an_error() {
    assert!(error_of(&["-w", "2"]).contains("APP_MODULE"));
}

#[test]
fn threads_select_gthread_as_in_gunicorn() {
    let c = parse(&["--threads", "4", "wsgi"]).unwrap();
    assert_eq!((c.worker_class, c.threads), (WorkerClass::Gthread, 4));
    let c = parse(&["-k", "gthread", "wsgi"]).unwrap();
    assert_eq!((c.worker_class, c.threads), (WorkerClass::Gthread, 1));
    let c = parse(&["-k", "sync", "wsgi"]).unwrap();
    assert_eq!((c.worker_class, c.threads), (WorkerClass::Sync, 1));
    assert!(error_of(&["--threads", "0", "wsgi"]).contains("--threads"));
}
