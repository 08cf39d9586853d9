//! Where the logs go and what they hold: `--error-logfile PATH`,
//! `--log-level`, `--access-logfile PATH` in Gunicorn's default format, and
//! `-n/--name` in the process names.
//!
//! Servers whose log leaves stderr cannot tell the harness their port, so
//! these tests bind a port found free and poll the file or the port.

use std::thread;
use std::time::{Duration, Instant};

use crate::cli::parse_log_line;
use crate::client::{get, request, send_raw, try_get, Conn, Response};
use crate::faults::FAULTS;
use crate::harness::{
    booted_pids, free_port, serve, wait_for_file, Scratch, Server, ServerBuilder, IO_TIMEOUT,
    STARTUP,
};

/// Polls `GET path` until the server answers; panics if the master exits
/// or [`STARTUP`] passes first.
pub fn wait_serving(server: &mut Server, port: u16, path: &str) -> Response {
    let deadline = Instant::now() + STARTUP;
    loop {
        if let Ok(r) = try_get(port, path) {
            return r;
        }
        if let Some(status) = server.wait_exit(Duration::ZERO) {
            panic!(
                "rustcorn exited ({status}) before serving; stderr:\n{}",
                server.log()
            );
        }
        assert!(
            Instant::now() < deadline,
            "nothing served on port {port} after {STARTUP:?}; stderr:\n{}",
            server.log()
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// A `-b` value on a port free right now, and that port: for servers whose log does
/// not go to stderr, so the harness cannot read the port from `Listening at:`.
pub fn free_bind() -> (String, u16) {
    let port = free_port();
    (format!("127.0.0.1:{port}"), port)
}

#[test]
fn error_logfile_gets_the_log_lines_instead_of_stderr() {
    let scratch = Scratch::new("errlog");
    let path = scratch.path().join("error.log");
    let (bind, port) = free_bind();
    let mut server = ServerBuilder::new(&[
        "-b",
        &bind,
        "--chdir",
        "tests/apps",
        "--workers=2",
        "--error-logfile",
        path.to_str().unwrap(),
        "basics:application",
    ])
    .spawn();
    wait_for_file(&path, STARTUP, |text| {
        text.contains("Listening at: ") && booted_pids(text).len() >= 2
    });
    // wsgi.errors goes to the error log too.
    let r = get(port, "/slow?ms=1");
    assert_eq!((r.status, r.text().as_str()), (200, "slow done"));
    wait_for_file(&path, IO_TIMEOUT, |text| {
        text.contains("slow request started\n")
    });
    let served_by: u32 = get(port, "/pid").text().parse().expect("a pid");
    let status = server.stop_with("TERM");
    assert_eq!(status.code(), Some(0), "stderr:\n{}", server.log());

    let text = std::fs::read_to_string(&path).unwrap();
    let parsed: Vec<(u32, &str, &str)> = text.lines().filter_map(parse_log_line).collect();
    let master = server.pid;
    let want = [
        "Starting rustcorn 0.1.0".to_string(),
        format!("Listening at: http://{bind} ({master})"),
        "Using worker: sync".to_string(),
        "Shutting down: Master".to_string(),
    ];
    for message in &want {
        assert!(
            parsed.contains(&(master, "INFO", message.as_str())),
            "no line [{master}] [INFO] {message} in {}:\n{text}",
            path.display()
        );
    }
    // Each worker announces itself, under its own pid.
    let boots: Vec<u32> = parsed
        .iter()
        .filter(|(pid, level, m)| {
            *level == "INFO" && *m == format!("Booting worker with pid: {pid}")
        })
        .map(|(pid, _, _)| *pid)
        .collect();
    assert_eq!(boots.len(), 2, "{text}");
    assert!(
        !boots.contains(&master) && boots.contains(&served_by),
        "{text}"
    );

    let stderr = server.log();
    assert!(
        stderr.lines().all(|l| parse_log_line(l).is_none())
            && !stderr.contains("slow request started"),
        "log lines on stderr despite --error-logfile:\n{stderr}"
    );
}

#[test]
fn log_level_warning_hides_info_lines_but_keeps_errors() {
    let (bind, port) = free_bind();
    let mut server = ServerBuilder::new(&[
        "-b",
        &bind,
        "--chdir",
        "tests/apps",
        "--workers=2",
        "--log-level",
        "warning",
        FAULTS,
    ])
    .spawn();
    assert_eq!(wait_serving(&mut server, port, "/ok").status, 200);
    assert_eq!(get(port, "/raise").status, 500);
    server.wait_for_log("RuntimeError: fault: app raised on purpose", IO_TIMEOUT);
    let status = server.stop_with("TERM");
    assert_eq!(status.code(), Some(0));

    let log = server.log();
    let levels: Vec<&str> = log
        .lines()
        .filter_map(parse_log_line)
        .map(|(_, level, _)| level)
        .collect();
    assert!(
        levels.contains(&"ERROR") && levels.iter().all(|l| *l == "ERROR" || *l == "WARNING"),
        "want ERROR lines and nothing below WARNING, got levels {levels:?}:\n{log}"
    );
    assert!(!log.contains("Booting worker"), "{log}");
}

/// `host ident user [time] "request" status bytes "referer" "agent"`, split
/// into those nine fields (brackets and quotes removed).
fn parse_access_line(line: &str) -> Option<[&str; 9]> {
    let (host, rest) = line.split_once(' ')?;
    let (ident, rest) = rest.split_once(' ')?;
    let (user, rest) = rest.split_once(" [")?;
    let (time, rest) = rest.split_once("] \"")?;
    let (request, rest) = rest.split_once("\" ")?;
    let (status, rest) = rest.split_once(' ')?;
    let (bytes, rest) = rest.split_once(' ')?;
    let quoted = rest.strip_prefix('"')?.strip_suffix('"')?;
    let (referer, agent) = quoted.split_once("\" \"")?;
    Some([
        host, ident, user, time, request, status, bytes, referer, agent,
    ])
}

/// `23/Nov/2026:21:09:48 +0000`.
fn is_access_log_time(t: &str) -> bool {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let digits = |from: usize, to: usize| {
        t.get(from..to)
            .is_some_and(|s| s.bytes().all(|c| c.is_ascii_digit()))
    };
    let at = |i: usize, c: u8| t.as_bytes().get(i) == Some(&c);
    t.len() == 26
        && digits(0, 2)
        && at(2, b'/')
        && t.get(3..6).is_some_and(|m| MONTHS.contains(&m))
        && at(6, b'/')
        && digits(7, 11)
        && at(11, b':')
        && digits(12, 14)
        && at(14, b':')
        && digits(15, 17)
        && at(17, b':')
        && digits(18, 20)
        && at(20, b' ')
        && (at(21, b'+') || at(21, b'-'))
        && digits(22, 26)
}

#[test]
fn access_logfile_gets_one_gunicorn_format_line_per_request() {
    let scratch = Scratch::new("access");
    let path = scratch.path().join("access.log");
    let server = serve(
        "basics:application",
        &["--workers=1", "--access-logfile", path.to_str().unwrap()],
    );
    let port = server.port();
    let mut conn = Conn::open(port);
    let ua = |agent| ("User-Agent", agent);
    // (request, status; the line's request, status, bytes, referer, agent)
    let cases: Vec<(Vec<u8>, u16, [&str; 5])> = vec![
        (
            request("GET", "/ok?q=1", &[ua("agent")], b""),
            200,
            ["GET /ok?q=1 HTTP/1.1", "200", "2", "-", "agent"],
        ),
        (
            request(
                "POST",
                "/echo",
                &[("Referer", "http://ref.test/page"), ua("agent/2.0 (x; y)")],
                b"hello",
            ),
            200,
            [
                "POST /echo HTTP/1.1",
                "200",
                "5",
                "http://ref.test/page",
                "agent/2.0 (x; y)",
            ],
        ),
        (
            request("GET", "/nowhere", &[], b""),
            404,
            ["GET /nowhere HTTP/1.1", "404", "9", "-", "-"],
        ),
        // Body bytes, not the chunked framing.
        (
            request("GET", "/stream?n=2", &[], b""),
            200,
            ["GET /stream?n=2 HTTP/1.1", "200", "16", "-", "-"],
        ),
    ];
    for (raw, status, _) in &cases {
        assert_eq!(conn.roundtrip(raw).status, *status);
    }
    let http10 = send_raw(port, b"GET /hello HTTP/1.0\r\nUser-Agent: old\r\n\r\n");
    assert!(http10.starts_with(b"HTTP/1.1 200") || http10.starts_with(b"HTTP/1.0 200"));
    // A last request: once its line is there, every earlier one is too.
    assert_eq!(get(port, "/ok?last").status, 200);
    let text = wait_for_file(&path, IO_TIMEOUT, |t| {
        t.contains("\"GET /ok?last HTTP/1.1\"")
    });

    let mut want: Vec<[&str; 5]> = cases.iter().map(|(_, _, fields)| *fields).collect();
    want.push(["GET /hello HTTP/1.0", "200", "6", "-", "old"]);
    want.push(["GET /ok?last HTTP/1.1", "200", "2", "-", "-"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), want.len(), "one line per request:\n{text}");
    for (line, want) in lines.iter().zip(&want) {
        let fields = parse_access_line(line)
            .unwrap_or_else(|| panic!("not in Gunicorn's default format: {line}"));
        let [host, ident, user, time, rest @ ..] = fields;
        assert_eq!((host, ident, user), ("127.0.0.1", "-", "-"), "{line}");
        assert!(is_access_log_time(time), "time {time:?} in {line}");
        assert_eq!(&rest, want, "{line}");
    }
    assert!(
        server.stdout().text().is_empty(),
        "access log lines on stdout too"
    );
}

/// A process's name as the kernel keeps it (at most 15 bytes).
fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/comm: {e}"))
        .trim_end_matches('\n')
        .to_string()
}

#[test]
fn name_flag_names_the_master_and_worker_processes() {
    // (flags, master's comm, each worker's comm): the comm is the first 15
    // bytes of the title (`rustcorn: master [NAME]`), as setproctitle sets it
    // for Gunicorn; `ops::process_titles_show_the_role_and_the_name_in_ps`
    // checks the whole title.
    let cases: &[(&[&str], &str, &str)] = &[
        (&["-n", "myname"], "rustcorn: maste", "rustcorn: worke"),
        (
            &["--name=a-much-longer-name"],
            "rustcorn: maste",
            "rustcorn: worke",
        ),
        (&[], "rustcorn: maste", "rustcorn: worke"),
    ];
    for (flags, master, worker) in cases {
        let mut extra = vec!["--workers=2"];
        extra.extend_from_slice(flags);
        let server = serve("hello", &extra);
        assert_eq!(comm(server.pid), *master, "{flags:?}");
        let name = flags
            .last()
            .map_or("hello", |f| f.trim_start_matches("--name="));
        assert_eq!(
            crate::ops::cmdline(server.pid),
            format!("rustcorn: master [{name}]"),
            "{flags:?}"
        );
        for pid in &server.worker_pids {
            assert_eq!(comm(*pid), *worker, "{flags:?}");
        }
    }
}
