//! What the app hands start_response never reaches the wire raw: a status that is
//! not `NNN Reason`, header names that are not tokens, values with CR, LF, NUL or
//! other control bytes, or outside latin-1 → 500 and an error log line naming the
//! problem, and the same worker goes on. Hop-by-hop headers, Server and Date from the
//! app are dropped, as Gunicorn 27 drops them (tests/apps/response_safety.py).

use crate::client::{request, send_raw, Conn};
use crate::faults::{assert_faults_before_headers, worker_pid};
use crate::harness::serve;

const APP: &str = "response_safety:application";

#[test]
fn unsafe_statuses_and_headers_give_500_and_a_log_line_naming_the_problem() {
    let server = serve(APP, &["--workers=1"]);
    let pid = worker_pid(&server);
    let cases: &[(&str, &[&str])] = &[
        ("/bad/nul_value", &["ValueError", "X-Bad", "CR, LF or NUL"]),
        ("/bad/cr_value", &["ValueError", "X-Bad", "CR, LF or NUL"]),
        (
            "/bad/bel_value",
            &["ValueError", "X-Bad", "control character"],
        ),
        (
            "/bad/del_value",
            &["ValueError", "X-Bad", "control character"],
        ),
        (
            "/bad/non_latin1_value",
            &["ValueError", "X-Bad", "not latin-1"],
        ),
        ("/bad/space_in_name", &["ValueError", "invalid header name"]),
        ("/bad/colon_in_name", &["ValueError", "invalid header name"]),
        ("/bad/empty_name", &["ValueError", "invalid header name"]),
        ("/bad/nul_in_name", &["ValueError", "invalid header name"]),
        (
            "/bad/status_without_reason",
            &["ValueError", "invalid status"],
        ),
        ("/bad/status_word", &["ValueError", "invalid status"]),
        ("/bad/status_two_digits", &["ValueError", "invalid status"]),
        ("/bad/status_crlf", &["ValueError", "invalid status"]),
        ("/bad/status_lf", &["ValueError", "invalid status"]),
        ("/bad/status_nul", &["ValueError", "invalid status"]),
        ("/bad/status_non_latin1", &["ValueError", "invalid status"]),
        (
            "/bad/list_not_tuple",
            &["TypeError", "is not a (name, value) tuple"],
        ),
        (
            "/bad/three_tuple",
            &["TypeError", "is not a (name, value) tuple"],
        ),
    ];
    assert_faults_before_headers(&server, &pid, cases);
}

#[test]
fn hop_by_hop_server_and_date_headers_from_the_app_are_dropped() {
    let server = serve(APP, &[]);
    let mut conn = Conn::open(server.port());
    let r = conn.roundtrip(&request("GET", "/hop", &[], b""));
    assert_eq!((r.status, r.text().as_str()), (200, "ok"), "{r:?}");
    for name in [
        "Keep-Alive",
        "Transfer-Encoding",
        "Upgrade",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Proxy-Connection",
        "TE",
        "Trailer",
        "Trailers",
    ] {
        assert!(r.header(name).is_none(), "{name} was passed on: {r:?}");
    }
    assert_eq!(r.headers_named("Connection"), ["keep-alive"], "{r:?}");
    assert_eq!(r.headers_named("Server"), ["rustcorn"], "{r:?}");
    let dates = r.headers_named("Date");
    assert!(dates.len() == 1 && !dates[0].contains("1970"), "{r:?}");
    assert_eq!(r.header("X-Kept"), Some("yes"));
    assert_eq!(r.header("Content-Length"), Some("2"));
    // The connection is still usable: the app's framing headers changed nothing.
    let again = conn.roundtrip(&request("GET", "/pid", &[], b""));
    assert_eq!(again.status, 200);
}

#[test]
fn the_apps_connection_close_closes_after_the_response() {
    let server = serve(APP, &[]);
    let mut conn = Conn::open(server.port());
    let r = conn.roundtrip(&request("GET", "/close", &[], b""));
    assert_eq!((r.status, r.text().as_str()), (200, "bye"));
    assert_eq!(r.headers_named("Connection"), ["close"], "{r:?}");
    assert!(conn.closed_within(std::time::Duration::from_secs(20)));
}

#[test]
fn header_values_go_out_as_latin1_and_trimmed() {
    let server = serve(APP, &[]);
    let raw = send_raw(
        server.port(),
        &request("GET", "/latin1", &[("Connection", "close")], b""),
    );
    assert!(
        raw.windows(13).any(|w| w == b"X-Name: caf\xe9\r"),
        "{:?}",
        String::from_utf8_lossy(&raw)
    );
    let raw = send_raw(
        server.port(),
        &request("GET", "/padded", &[("Connection", "close")], b""),
    );
    assert!(
        raw.windows(11).any(|w| w == b"\nX-Pad: v\r\n"),
        "{:?}",
        String::from_utf8_lossy(&raw)
    );
}

/// A plain list is read by index (the fast path); any other iterable, a list subclass
/// with its own `__iter__` included, goes through its iterator, with the same result.
#[test]
fn headers_given_as_any_iterable_of_pairs_go_out() {
    let server = serve(APP, &[]);
    for kind in ["tuple", "generator", "list_subclass"] {
        let raw = send_raw(
            server.port(),
            &request(
                "GET",
                &format!("/shape/{kind}"),
                &[("Connection", "close")],
                b"",
            ),
        );
        let text = String::from_utf8_lossy(&raw);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{kind}: {text:?}");
        assert!(
            text.contains(&format!("\r\nX-Shape: {kind}\r\n")),
            "{kind}: {text:?}"
        );
        assert!(text.ends_with("\r\n\r\nok"), "{kind}: {text:?}");
        // In the iterator's order (the subclass stores them reversed).
        let at = |name: &str| {
            text.find(name)
                .unwrap_or_else(|| panic!("{name}: {text:?}"))
        };
        assert!(at("Content-Type:") < at("X-Shape:"), "{kind}: {text:?}");
    }
}
