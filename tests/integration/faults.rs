//! Misbehaving apps (tests/apps/faults.py): before headers are sent the
//! client gets a 500; after, the connection is cut. Either way the error log
//! says what went wrong (with the traceback of a Python exception) and the
//! same worker serves the next request.

use std::time::Duration;

use crate::client::{get, parse_responses, request, send_raw, Conn, Framing};
use crate::harness::{app_args, serve, wait_for_file, Scratch, Server, ServerBuilder, IO_TIMEOUT};

pub const FAULTS: &str = "faults:application";
/// How long a fault's log lines may lag behind its response.
const LOG_WAIT: Duration = Duration::from_secs(15);

pub fn worker_pid(server: &Server) -> String {
    let r = get(server.port(), "/pid");
    assert_eq!(r.status, 200, "/pid after a fault; log:\n{}", server.log());
    r.text()
}

/// What one fault before the headers left behind, or what was wrong.
pub fn check_fault_before_headers(
    server: &Server,
    pid: &str,
    path: &str,
    needles: &[&str],
) -> Result<(), String> {
    let mark = server.log_mark();
    let raw = send_raw(
        server.port(),
        &request("GET", path, &[("Connection", "close")], b""),
    );
    let responses = parse_responses(&raw, &[])
        .map_err(|e| format!("{e} in {:?}", String::from_utf8_lossy(&raw)))?;
    let r = &responses[0];
    if (responses.len(), r.status) != (1, 500) {
        return Err(format!("want one 500 response, got {responses:?}"));
    }
    if r.header("date").is_none() || r.header("server").is_none() {
        return Err(format!("500 without Date/Server: {r:?}"));
    }
    if r.headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("X-Injected"))
    {
        return Err(format!("a header was injected: {r:?}"));
    }
    for needle in needles {
        if !server.log_shows_since(mark, needle, LOG_WAIT) {
            return Err(format!(
                "log lacks {needle:?}: {:?}",
                server.log().get(mark..).unwrap_or("")
            ));
        }
    }
    let after = get(server.port(), "/pid");
    if (after.status, after.text()) != (200, pid.to_string()) {
        return Err(format!(
            "next request: want 200 from worker {pid}, got {} {:?}",
            after.status,
            after.text()
        ));
    }
    Ok(())
}

/// Runs every (path, log needles) case through [`check_fault_before_headers`] and
/// fails with all the cases that went wrong at once.
pub fn assert_faults_before_headers(server: &Server, pid: &str, cases: &[(&str, &[&str])]) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(path, needles)| {
            check_fault_before_headers(server, pid, path, needles)
                .err()
                .map(|e| format!("{path}: {e}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn faults_before_headers_give_500_an_error_log_and_the_worker_survives() {
    let server = serve(FAULTS, &["--workers=1"]);
    let pid = worker_pid(&server);
    // (path, what the error log must say). A fault raised as a Python
    // exception logs its traceback; one the server detects itself (wrong
    // types, bad status or headers, no start_response) logs an ERROR line
    // saying what the app did.
    let cases: &[(&str, &[&str])] = &[
        (
            "/raise",
            &["Traceback", "RuntimeError: fault: app raised on purpose"],
        ),
        (
            "/iter_raises_first",
            &[
                "Traceback",
                "RuntimeError: fault: generator raised before its first chunk",
            ],
        ),
        ("/start_response_twice", &["Traceback"]),
        // Must name the type the app yielded (the app's text has no "str").
        ("/yield_text", &["[ERROR]", "str"]),
        ("/bad_status", &["[ERROR]"]),
        ("/crlf_header_value", &["[ERROR]"]),
        ("/crlf_header_name", &["[ERROR]"]),
        ("/lf_header_value", &["[ERROR]"]),
        ("/no_start_response", &["[ERROR]", "start_response"]),
        ("/non_iterable", &["[ERROR]"]),
        ("/header_not_str", &["[ERROR]"]),
        (
            "/write_text",
            &["TypeError: write() argument must be bytes, not str"],
        ),
        (
            "/headers_missing",
            &["TypeError: start_response() missing 1 required positional argument: 'headers'"],
        ),
    ];
    assert_faults_before_headers(&server, &pid, cases);
}

#[test]
fn start_response_with_exc_info_before_headers_replaces_the_status() {
    let server = serve(FAULTS, &[]);
    let r = get(server.port(), "/exc_info_before_headers");
    assert_eq!((r.status, r.text().as_str()), (503, "recovered"));
}

#[test]
fn faults_after_headers_close_the_connection_mid_body() {
    let mut server = serve(FAULTS, &["--workers=1"]);
    let pid = worker_pid(&server);
    // (path, framing the headers announced)
    let cases = [
        ("/gen_fail_after_first", Framing::Chunked),
        ("/gen_fail_after_first_cl", Framing::Length(100)),
        ("/exc_info_after_headers", Framing::Chunked),
    ];
    for (path, framing) in cases {
        let mark = server.log_mark();
        // Keep-alive request: the server must close on its own.
        let mut conn = Conn::open(server.port());
        let r = conn.roundtrip(&request("GET", path, &[], b""));
        assert_eq!(
            (r.status, r.framing, r.complete),
            (200, framing, false),
            "{path}: {r:?}"
        );
        assert_eq!(r.text(), "first", "{path}");
        assert!(
            conn.closed_within(IO_TIMEOUT),
            "{path}: connection left open after a mid-body fault"
        );
        server.wait_for_log_since(mark, "Traceback", IO_TIMEOUT);
        assert_eq!(worker_pid(&server), pid, "{path}: the worker was replaced");
    }
}

#[test]
fn close_is_called_on_the_returned_iterable_every_time() {
    let scratch = Scratch::new("close");
    let record = scratch.path().join("closed.txt");
    let args = app_args(FAULTS, &["--workers=1"]);
    let server = ServerBuilder::new(&args)
        .env("RUSTCORN_CLOSE_LOG", record.to_str().unwrap())
        .start();
    // (method, path with a unique tag)
    let cases = [
        ("GET", "/close_record?tag=get"),
        ("HEAD", "/close_record?tag=head"),
        ("GET", "/close_record_fail?tag=failing"),
    ];
    for (method, target) in cases {
        let mut conn = Conn::open(server.port());
        conn.send(&request(method, target, &[("Connection", "close")], b""));
        let r = conn
            .try_response(method == "HEAD")
            .expect("a response head");
        assert_eq!(r.status, 200, "{method} {target}");
        let tag = target.split("tag=").nth(1).unwrap();
        wait_for_file(&record, IO_TIMEOUT, |text| text.lines().any(|l| l == tag));
    }
    let text = std::fs::read_to_string(&record).unwrap();
    assert_eq!(
        text.lines().count(),
        cases.len(),
        "close() called more than once per response:\n{text}"
    );
    assert_eq!(get(server.port(), "/ok").status, 200);
}
