//! Where else the logs go: syslog (`--log-syslog*`, compared with Gunicorn's own
//! datagrams), statsd metrics (`--statsd-host`, `--statsd-prefix`, `--dogstatsd-tags`,
//! compared with Gunicorn's), `--capture-output`, `--log-config-json`, and the
//! `gunicorn.error` Python logger apps borrow. The syslog and statsd servers are UDP
//! sockets of the test's own on 127.0.0.1.

use std::net::UdpSocket;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::access_log::Gunicorn;
use crate::client::get;
use crate::harness::{app_args, serve, wait_for_file, wait_until, Scratch, ServerBuilder, STARTUP};
use crate::logging::{free_bind, wait_serving};

const WAIT: Duration = Duration::from_secs(30);

/// A UDP server recording every datagram it gets, as text.
struct UdpSink {
    port: u16,
    got: Arc<Mutex<Vec<String>>>,
}

impl UdpSink {
    fn bind() -> UdpSink {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = socket.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let store = got.clone();
        // The thread ends with the test process; the socket is only ever read.
        thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while let Ok(n) = socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                store.lock().unwrap().push(text);
            }
        });
        UdpSink { port, got }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Waits for a datagram satisfying `want`; returns it.
    fn wait(&self, what: &str, want: impl Fn(&str) -> bool) -> String {
        let mut found = None;
        wait_until(WAIT, what, || {
            found = self.got.lock().unwrap().iter().find(|d| want(d)).cloned();
            found.is_some()
        });
        found.unwrap()
    }

    fn all(&self) -> Vec<String> {
        self.got.lock().unwrap().clone()
    }
}

/// `<PRI>tag: [pid] message\0` with the pid and any `[stamp]` replaced, for comparing
/// two servers' datagrams.
fn mask_syslog(datagram: &str) -> String {
    let (head, rest) = datagram.split_once(": [").expect("tag: [pid]");
    let (pid, message) = rest.split_once("] ").expect("[pid] message");
    let message = message.replace(pid, "PID");
    let message = match (message.find(" ["), message.find("] \"")) {
        (Some(a), Some(b)) if a < b => format!("{}[T]{}", &message[..a + 1], &message[b + 1..]),
        _ => message.to_string(),
    };
    format!("{head}: [PID] {message}")
}

#[test]
fn syslog_datagrams_are_gunicorns() {
    let flags = |sink: &UdpSink| {
        vec![
            "--log-syslog".to_string(),
            "--log-syslog-to".to_string(),
            format!("udp://{}", sink.addr()),
            "--log-syslog-prefix".to_string(),
            "myapp".to_string(),
            "--log-syslog-facility".to_string(),
            "local3".to_string(),
        ]
    };
    let booting = |d: &str| d.contains("Booting worker with pid:");
    let access = |d: &str| d.contains(".access: ");

    let g_sink = UdpSink::bind();
    let g_flags = flags(&g_sink);
    let g_args: Vec<&str> = g_flags.iter().map(String::as_str).collect();
    let gunicorn = Gunicorn::start(&g_args);
    get(gunicorn.port, "/hello");
    let g_boot = g_sink.wait("gunicorn's Booting line on syslog", booting);
    let g_access = g_sink.wait("gunicorn's access line on syslog", access);
    drop(gunicorn);

    let r_sink = UdpSink::bind();
    let r_flags = flags(&r_sink);
    let r_args: Vec<&str> = r_flags.iter().map(String::as_str).collect();
    let rustcorn = serve("access_app", &r_args);
    get(rustcorn.port(), "/hello");
    let r_boot = r_sink.wait("rustcorn's Booting line on syslog", booting);
    let r_access = r_sink.wait("rustcorn's access line on syslog", access);

    // local3 (19) * 8 + info (6) = 158; the worker's own pid in brackets.
    let pid = rustcorn.worker_pids[0];
    assert_eq!(
        r_boot,
        format!("<158>gunicorn.myapp.error: [{pid}] Booting worker with pid: {pid}\0")
    );
    assert_eq!(mask_syslog(&r_boot), mask_syslog(&g_boot));
    assert_eq!(mask_syslog(&r_access), mask_syslog(&g_access));
    assert!(r_access.starts_with(&format!(
        "<158>gunicorn.myapp.access: [{pid}] 127.0.0.1 - - ["
    )));
}

#[test]
fn statsd_gets_gunicorns_metrics_with_prefix_and_tags() {
    let sink = UdpSink::bind();
    let addr = sink.addr();
    // --log-level critical hides the errors below and the warning about the missing
    // log config, but Gunicorn still counts them.
    let (bind, port) = free_bind();
    let mut rustcorn = ServerBuilder::new(&[
        "-b",
        &bind,
        "--chdir",
        "tests/apps",
        "-w",
        "2",
        "--log-level",
        "critical",
        "--log-config-json",
        "/nonexistent/logging.json",
        "--statsd-host",
        &addr,
        "--statsd-prefix",
        "myapp",
        "--dogstatsd-tags",
        "env:test,team:web",
        "access_app",
    ])
    .spawn();
    assert_eq!(wait_serving(&mut rustcorn, port, "/hello").status, 200);
    assert_eq!(get(port, "/missing").status, 404);
    assert_eq!(get(port, "/boom").status, 500);
    assert_eq!(get(port, "/nostart").status, 500);
    let tags = "|#env:test,team:web";
    for exact in [
        "myapp.gunicorn.workers:2|g",
        "myapp.gunicorn.requests:1|c|@1.0",
        "myapp.gunicorn.request.status.200:1|c|@1.0",
        "myapp.gunicorn.request.status.404:1|c|@1.0",
        "myapp.gunicorn.request.status.500:1|c|@1.0",
        "myapp.gunicorn.log.exception:1|c|@1.0",
        "myapp.gunicorn.log.error:1|c|@1.0",
        "myapp.gunicorn.log.warning:1|c|@1.0",
    ] {
        let want = format!("{exact}{tags}");
        sink.wait(&format!("{want:?}; got {:?}", sink.all()), |d| d == want);
    }
    // The timer: milliseconds as a Python float.
    let timer = sink.wait("the request duration timer", |d| {
        d.starts_with("myapp.gunicorn.request.duration:")
    });
    let value = timer
        .strip_prefix("myapp.gunicorn.request.duration:")
        .and_then(|t| t.strip_suffix(&format!("|ms{tags}")))
        .unwrap_or_else(|| panic!("timer datagram {timer:?}"));
    let ms: f64 = value.parse().unwrap_or_else(|_| panic!("{value:?}"));
    assert!(
        value.contains('.') && (0.0..60_000.0).contains(&ms),
        "{value}"
    );
    // One `requests` counter per response (the last may trail its error line).
    let requests = || {
        sink.all()
            .iter()
            .filter(|d| d.starts_with("myapp.gunicorn.requests:"))
            .count()
    };
    wait_until(WAIT, "four request counters", || requests() >= 4);
    thread::sleep(Duration::from_millis(200));
    assert_eq!(requests(), 4, "{:?}", sink.all());
    let log = rustcorn.log();
    assert!(!log.contains("[ERROR]") && !log.contains("[INFO]"), "{log}");
}

/// The datagrams for two requests (200 and 404), the timer's value masked, sorted.
fn statsd_run(sink: &UdpSink, port: u16) -> Vec<String> {
    assert_eq!(get(port, "/hello").status, 200);
    assert_eq!(get(port, "/missing").status, 404);
    let counted = |d: &String| d.contains("gunicorn.request.status.");
    // The master's gauge comes from its own loop, maybe after the requests.
    wait_until(WAIT, "two status counters and the workers gauge", || {
        let all = sink.all();
        all.iter().filter(|d| counted(d)).count() >= 2
            && all.iter().any(|d| d.contains("gunicorn.workers:"))
    });
    let mut got: Vec<String> = sink
        .all()
        .into_iter()
        .map(|d| match d.split_once(".request.duration:") {
            Some((name, rest)) => {
                let kind = rest.split_once('|').map_or("", |(_, k)| k);
                format!("{name}.request.duration:MS|{kind}")
            }
            None => d,
        })
        .collect();
    got.sort();
    got
}

#[test]
fn statsd_datagrams_match_gunicorns() {
    let flags = |sink: &UdpSink| {
        let addr = sink.addr();
        vec![
            "--statsd-host".to_string(),
            addr,
            "--statsd-prefix".to_string(),
            "web.".to_string(),
            "--dogstatsd-tags".to_string(),
            "env:ci".to_string(),
        ]
    };
    let g_sink = UdpSink::bind();
    let g_flags = flags(&g_sink);
    let g_args: Vec<&str> = g_flags.iter().map(String::as_str).collect();
    let gunicorn = Gunicorn::start(&g_args);
    let expected = statsd_run(&g_sink, gunicorn.port);
    drop(gunicorn);
    let r_sink = UdpSink::bind();
    let r_flags = flags(&r_sink);
    let r_args: Vec<&str> = r_flags.iter().map(String::as_str).collect();
    let rustcorn = serve("access_app", &r_args);
    let got = statsd_run(&r_sink, rustcorn.port());
    assert!(
        expected.contains(&"web.gunicorn.workers:1|g|#env:ci".to_string()),
        "{expected:?}"
    );
    assert_eq!(got, expected);
}

#[test]
fn capture_output_sends_the_apps_prints_to_the_error_log() {
    let scratch = Scratch::new("capture");
    let log = scratch.path().join("error.log");
    let log_arg = log.display().to_string();
    let (bind, port) = free_bind();
    let mut server = ServerBuilder::new(&[
        "-b",
        &bind,
        "--chdir",
        "tests/apps",
        "--error-logfile",
        &log_arg,
        "--capture-output",
        "access_app",
    ])
    .spawn();
    wait_serving(&mut server, port, "/hello");
    assert_eq!(get(port, "/print").status, 200);
    let text = wait_for_file(&log, WAIT, |t| {
        t.contains("app says hello on stdout") && t.contains("app says hello on stderr")
    });
    assert!(text.contains("[INFO] Booting worker with pid: "), "{text}");
    assert!(!server.log().contains("app says hello"), "{}", server.log());
}

#[test]
fn log_config_json_configures_the_apps_loggers() {
    // The same logging config from --log-config-json and from `logconfig_dict` in a
    // Python config file.
    for source in ["json", "config file"] {
        let scratch = Scratch::new("logcfg");
        let audit = scratch.path().join("audit.log");
        let json = format!(
            // Gunicorn lays this over its CONFIG_DEFAULTS with a shallow update, so a
            // config that replaces "handlers" must also say what "root" uses.
            r#"{{"version": 1,
            "root": {{"level": "WARNING", "handlers": []}},
            "formatters": {{"plain": {{"format": "%(levelname)s %(name)s %(message)s"}}}},
            "handlers": {{"audit": {{"class": "logging.FileHandler",
                                    "filename": "{}", "formatter": "plain"}}}},
            "loggers": {{"app.audit": {{"level": "INFO", "handlers": ["audit"],
                                       "propagate": false}}}}}}"#,
            audit.display()
        );
        let (flag, path) = if source == "json" {
            let path = scratch.path().join("logging.json");
            std::fs::write(&path, json).unwrap();
            ("--log-config-json", path)
        } else {
            let path = scratch.path().join("conf.py");
            let python = format!("import json\nlogconfig_dict = json.loads(r'''{json}''')\n");
            std::fs::write(&path, python).unwrap();
            ("-c", path)
        };
        let path_arg = path.display().to_string();
        let server = serve("access_app", &[flag, &path_arg]);
        assert_eq!(get(server.port(), "/applog").status, 200, "{source}");
        let text = wait_for_file(&audit, WAIT, |t| t.contains("audit event"));
        assert_eq!(
            text, "WARNING app.audit audit event from the app\n",
            "{source}"
        );
    }
}

/// `--log-config`: an INI file for `logging.config.fileConfig`, as Gunicorn reads it —
/// with `%(here)s` its directory — and a missing one stops the start, naming it.
#[test]
fn log_config_ini_configures_the_apps_loggers() {
    let scratch = Scratch::new("logini");
    let ini = scratch.path().join("logging.ini");
    std::fs::write(
        &ini,
        "[loggers]\nkeys=root,audit\n\n\
         [handlers]\nkeys=audit\n\n\
         [formatters]\nkeys=plain\n\n\
         [logger_root]\nlevel=WARNING\nhandlers=\n\n\
         [logger_audit]\nlevel=INFO\nhandlers=audit\nqualname=app.audit\npropagate=0\n\n\
         [handler_audit]\nclass=FileHandler\nformatter=plain\nargs=('%(here)s/audit.log',)\n\n\
         [formatter_plain]\nformat=%(levelname)s %(name)s %(message)s\n",
    )
    .unwrap();
    let ini_arg = ini.display().to_string();
    let server = serve("access_app", &["--log-config", &ini_arg]);
    assert_eq!(get(server.port(), "/applog").status, 200);
    let audit = scratch.path().join("audit.log");
    let text = wait_for_file(&audit, WAIT, |t| t.contains("audit event"));
    assert_eq!(text, "WARNING app.audit audit event from the app\n");

    let missing = scratch.path().join("nope.ini").display().to_string();
    let exited = ServerBuilder::new(&app_args("access_app", &["--log-config", &missing]))
        .run_to_exit(STARTUP);
    assert_eq!(exited.status.code(), Some(2), "{}", exited.stderr);
    assert!(
        exited.stderr.contains("--log-config") && exited.stderr.contains("nope.ini"),
        "{}",
        exited.stderr
    );
}

#[test]
fn a_log_config_dictconfig_refuses_stops_the_server() {
    let scratch = Scratch::new("badcfg");
    let config = scratch.path().join("logging.json");
    std::fs::write(
        &config,
        r#"{"version": 1, "handlers": {"h": {"class": "no.such.Handler"}}}"#,
    )
    .unwrap();
    let config_arg = config.display().to_string();
    let exited = ServerBuilder::new(&[
        "-b",
        "127.0.0.1:0",
        "--chdir",
        "tests/apps",
        "--log-config-json",
        &config_arg,
        "access_app",
    ])
    .run_to_exit(STARTUP);
    assert_eq!(exited.status.code(), Some(3), "{}", exited.stderr);
    assert!(
        exited.stderr.contains("Error applying the log config")
            && exited.stderr.contains("no.such"),
        "{}",
        exited.stderr
    );
}

#[test]
fn bad_logging_flags_are_one_line_errors() {
    for (args, flag) in [
        (
            &["--log-syslog", "--log-syslog-to", "carrier-pigeon://x"][..],
            "--log-syslog-to",
        ),
        (
            &["--log-syslog", "--log-syslog-facility", "nope"],
            "--log-syslog-facility",
        ),
        (&["--statsd-host", "host:port"], "--statsd-host"),
        (&["--access-logformat", "%(h)"], "--access-logformat"),
    ] {
        let mut argv = args.to_vec();
        argv.push("access_app");
        let exited = ServerBuilder::new(&argv).run_to_exit(STARTUP);
        assert_eq!(exited.status.code(), Some(2), "{args:?}: {}", exited.stderr);
        assert!(
            exited.stderr.contains(flag) && exited.stderr.trim().lines().count() == 1,
            "{args:?}: {}",
            exited.stderr
        );
    }
}

/// Datagrams from a unix socket, as text (the reader thread ends with the process).
fn unix_sink(path: &std::path::Path) -> Arc<Mutex<Vec<String>>> {
    let socket = std::os::unix::net::UnixDatagram::bind(path).expect("bind unix dgram");
    let got = Arc::new(Mutex::new(Vec::new()));
    let store = got.clone();
    thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while let Ok(n) = socket.recv(&mut buf) {
            store
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    });
    got
}

#[test]
fn syslog_and_statsd_reach_unix_sockets() {
    let scratch = Scratch::new("unixlog");
    let syslog_path = scratch.path().join("log.sock");
    let statsd_path = scratch.path().join("statsd.sock");
    let syslog = unix_sink(&syslog_path);
    let statsd = unix_sink(&statsd_path);
    let syslog_to = format!("unix://{}", syslog_path.display());
    let statsd_host = format!("unix://{}", statsd_path.display());
    let server = serve(
        "access_app",
        &[
            "--log-syslog",
            "--log-syslog-to",
            &syslog_to,
            "--log-syslog-facility",
            "daemon",
            "--statsd-host",
            &statsd_host,
        ],
    );
    assert_eq!(get(server.port(), "/hello").status, 200);
    let pid = server.worker_pids[0];
    // daemon (3) * 8 + info (6) = 30; the tag is the APP_MODULE by default.
    let boot = format!("<30>gunicorn.access_app.error: [{pid}] Booting worker with pid: {pid}\0");
    wait_until(WAIT, "the Booting line on the unix syslog socket", || {
        syslog.lock().unwrap().contains(&boot)
    });
    wait_until(
        WAIT,
        "the request counter on the unix statsd socket",
        || {
            statsd
                .lock()
                .unwrap()
                .iter()
                .any(|d| d == "gunicorn.requests:1|c|@1.0")
        },
    );
}

#[test]
fn syslog_over_tcp_sends_nul_terminated_messages() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let to = format!("tcp://{}", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::<u8>::new()));
    let store = got.clone();
    thread::spawn(move || {
        use std::io::Read;
        // One connection: the master opened it before forking, workers share it.
        if let Ok((mut stream, _)) = listener.accept() {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    break;
                }
                store.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        }
    });
    let server = serve(
        "access_app",
        &["--log-syslog", "--log-syslog-to", &to, "-n", "shop"],
    );
    assert_eq!(get(server.port(), "/hello").status, 200);
    let pid = server.worker_pids[0];
    let boot = format!("<14>gunicorn.shop.error: [{pid}] Booting worker with pid: {pid}");
    wait_until(WAIT, "the access line over tcp", || {
        let text = String::from_utf8_lossy(&got.lock().unwrap()).into_owned();
        text.split('\0').any(|m| m == boot)
            && text.split('\0').any(|m| {
                m.starts_with(&format!(
                    "<14>gunicorn.shop.access: [{pid}] 127.0.0.1 - - ["
                ))
            })
    });
}

#[test]
fn the_apps_gunicorn_error_logger_writes_gunicorns_lines() {
    let message = "hello from the app via gunicorn.error";
    let gunicorn = Gunicorn::start(&[]);
    get(gunicorn.port, "/gunicorn_logger");
    assert!(
        gunicorn.stderr.wait(0, WAIT, |t| t.contains(message)),
        "{}",
        gunicorn.stderr.text()
    );
    let mut rustcorn = serve("access_app", &[]);
    get(rustcorn.port(), "/gunicorn_logger");
    let log = rustcorn.wait_for_log(message, WAIT);
    for (log, worker) in [
        (gunicorn.stderr.text(), gunicorn.worker),
        (log, rustcorn.worker_pids[0]),
    ] {
        let line = log.lines().find(|l| l.contains(message)).unwrap();
        assert_eq!(
            crate::cli::parse_log_line(line),
            Some((worker, "INFO", message)),
            "{line}"
        );
        assert!(!log.contains("not shown at --log-level info"), "{log}");
    }
}

/// `--enable-backlog-metric`: the master sends `gunicorn.backlog` as a histogram, the
/// connections waiting in the listen queue — none while idle, and those queued behind
/// a sync worker busy in a call.
#[test]
fn backlog_metric_reports_the_connections_waiting_to_be_accepted() {
    let sink = UdpSink::bind();
    let mut server = serve(
        "blocking:application",
        &["--statsd-host", &sink.addr(), "--enable-backlog-metric"],
    );
    sink.wait("an idle backlog", |d| d == "gunicorn.backlog:0|h");
    let port = server.port();
    let mut busy = crate::client::Conn::open(port);
    busy.send(&crate::client::request(
        "GET",
        "/sleep?s=20",
        &[("Connection", "close")],
        b"",
    ));
    server.wait_for_log("sleeping in pid ", STARTUP);
    // The only worker is in the call: these wait in the listen queue.
    let queued: Vec<std::net::TcpStream> = (0..3)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    sink.wait("three connections in the backlog", |d| {
        d == "gunicorn.backlog:3|h"
    });
    drop(queued);
    // A fast stop: the call in hand need not run out.
    server.stop_with("INT");
}
