//! Response framing: the status line and default headers, how the body is delimited,
//! chunk encoding, and the canned error pages.

use std::cell::RefCell;
use std::io::Write;

use crate::log::time;

/// The `Server` header value.
pub const SERVER: &str = "rustcorn";

/// How a response body goes on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// The app declared Content-Length: send at most that many bytes.
    Length(u64),
    /// HTTP/1.1 without a declared length.
    Chunked,
    /// HTTP/1.0 without a declared length: the end of the body is the connection closing.
    UntilClose,
    /// HEAD, 1xx, 204 and 304 carry no body bytes.
    NoBody,
}

/// The framing of one response and whether the connection survives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    pub framing: Framing,
    pub keep_alive: bool,
}

/// What the request and the app's headers say about framing.
pub struct PlanInput {
    pub minor_version: u8,
    pub is_head: bool,
    pub status: u16,
    pub content_length: Option<u64>,
    /// The client and server both allow keep-alive, and the app did not ask to close.
    pub keep_alive: bool,
}

/// Decides framing the way Gunicorn does, with RFC 9110's no-body statuses.
pub fn plan(input: &PlanInput) -> Plan {
    let bodyless =
        input.is_head || input.status < 200 || input.status == 204 || input.status == 304;
    let framing = match input.content_length {
        Some(_) if bodyless => Framing::NoBody,
        Some(n) => Framing::Length(n),
        None if bodyless => Framing::NoBody,
        None if input.minor_version >= 1 => Framing::Chunked,
        None => Framing::UntilClose,
    };
    let keep_alive = input.keep_alive && framing != Framing::UntilClose;
    Plan {
        framing,
        keep_alive,
    }
}

/// Headers the app's response may not carry, dropped as Gunicorn 27 drops them
/// (`util.is_hoppish`): hop-by-hop headers describe this connection, which the server
/// owns, and Server and Date are the server's own. Gunicorn's list (connection,
/// keep-alive, proxy-authenticate, proxy-authorization, te, trailers,
/// transfer-encoding, upgrade, server, date) plus `trailer` and `proxy-connection`,
/// which are hop-by-hop too (RFC 9110 §7.6.1). The app's `Connection: close` still
/// closes the connection after the response.
/// Why a character (its code point) cannot be in a response header value (RFC 9110
/// §5.5: no CR, LF, NUL or other control; headers are latin-1), or None when it can.
/// Both WSGI's `start_response` and ASGI's messages check with it.
pub fn header_value_problem(c: u32) -> Option<&'static str> {
    match c {
        0x0d | 0x0a | 0x00 => Some("contains CR, LF or NUL"),
        0x09 => None,
        0..=0x1f | 0x7f => Some("contains a control character"),
        0x100.. => Some("is not latin-1"),
        _ => None,
    }
}

pub fn is_hop_by_hop(name: &str) -> bool {
    is_hop_by_hop_bytes(name.as_bytes())
}

/// [`is_hop_by_hop`] for a name as bytes (HTTP/2 heads are built from header lines:
/// checking there cost a UTF-8 validation per header).
pub fn is_hop_by_hop_bytes(name: &[u8]) -> bool {
    // By length first: every response header is checked, and most are none of these.
    let hop: &[&[u8]] = match name.len() {
        2 => &[b"te"],
        4 => &[b"date"],
        6 => &[b"server"],
        7 => &[b"trailer", b"upgrade"],
        8 => &[b"trailers"],
        10 => &[b"connection", b"keep-alive"],
        16 => &[b"proxy-connection"],
        17 => &[b"transfer-encoding"],
        18 => &[b"proxy-authenticate"],
        19 => &[b"proxy-authorization"],
        _ => return false,
    };
    hop.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// Appends `text` as latin-1 (PEP 3333: header strings are latin-1 code points; the
/// caller has checked that every char is below U+0100).
pub(crate) fn push_latin1(out: &mut Vec<u8>, text: &str) {
    if text.is_ascii() {
        out.extend_from_slice(text.as_bytes());
    } else {
        out.extend(text.chars().map(|c| c as u32 as u8));
    }
}

thread_local! {
    static DATE: RefCell<(i64, String)> = const { RefCell::new((i64::MIN, String::new())) };
}

/// Appends `Date: <now>\r\n`, formatting at most once a second per thread.
fn push_date(out: &mut Vec<u8>) {
    let now = time::unix_now();
    DATE.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != now {
            *cached = (now, time::http_date(now));
        }
        out.extend_from_slice(b"Date: ");
        out.extend_from_slice(cached.1.as_bytes());
        out.extend_from_slice(b"\r\n");
    });
}

/// Writes the status line, Server, Date, Connection, the app's headers (already
/// validated, hop-by-hop ones removed) and Transfer-Encoding when chunked.
pub fn write_head(
    out: &mut Vec<u8>,
    minor_version: u8,
    status: &str,
    headers: &[(String, String)],
    plan: &Plan,
) {
    start_head(out, minor_version, status, plan);
    for (name, value) in headers {
        push_header_line(out, name, value);
    }
    end_head(out, plan);
}

/// The head up to the app's headers: the status line, Server, Date and Connection.
/// [`write_head`] in two halves, for a caller that holds the app's headers as wire-ready
/// lines already (the WSGI worker's `start_response`).
pub fn start_head(out: &mut Vec<u8>, minor_version: u8, status: &str, plan: &Plan) {
    // Plain appends: `write!` went through the formatting machinery, ~5% of the
    // server's own instructions per hello request.
    out.extend_from_slice(if minor_version == 0 {
        b"HTTP/1.0 "
    } else {
        b"HTTP/1.1 "
    });
    push_latin1(out, status);
    out.extend_from_slice(b"\r\nServer: ");
    out.extend_from_slice(SERVER.as_bytes());
    out.extend_from_slice(b"\r\n");
    push_date(out);
    out.extend_from_slice(if plan.keep_alive {
        b"Connection: keep-alive\r\n"
    } else {
        b"Connection: close\r\n"
    });
}

/// `name: value\r\n`, the value in latin-1 (both already validated).
pub fn push_header_line(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    push_latin1(out, value);
    out.extend_from_slice(b"\r\n");
}

/// `name: value\r\n` from the bytes that go on the wire (both already validated), for
/// headers an app gave as bytes (ASGI).
pub fn push_header_bytes(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// `Content-Length: n\r\n`, for a length the server computed.
pub fn push_content_length(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(b"Content-Length: ");
    out.extend_from_slice(super::decimal(n, &mut [0; 20]));
    out.extend_from_slice(b"\r\n");
}

/// The head after the app's headers: Transfer-Encoding when chunked, the blank line.
pub fn end_head(out: &mut Vec<u8>, plan: &Plan) {
    if plan.framing == Framing::Chunked {
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends one chunk (`size CRLF data CRLF`); empty data writes nothing, since a
/// zero-size chunk would end the body.
pub fn push_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    push_hex(out, data.len());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// `n` in lowercase hex, as a chunk size (without the formatting machinery).
fn push_hex(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 16];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b"0123456789abcdef"[n & 15];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

/// The last-chunk and empty trailer section.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Parses a WSGI status (`"200 OK"`) into its code; the reason may be empty but the
/// three digits and the space may not be missing, and no control bytes are allowed.
pub fn parse_status(status: &str) -> Result<u16, String> {
    let bytes = status.as_bytes();
    let well_formed = bytes.len() >= 4
        && bytes[..3].iter().all(u8::is_ascii_digit)
        && bytes[3] == b' '
        && bytes[0] != b'0'
        // Tab, space and visible ASCII (the usual status) pass without a per-char look.
        && (crate::http::request::is_plain_value(bytes)
            || !status
                .chars()
                .any(|c| header_value_problem(c as u32).is_some()));
    if !well_formed {
        return Err(format!("invalid status {status:?}: expected 'NNN Reason'"));
    }
    Ok(status[..3].parse().expect("three digits"))
}

/// The standard reason phrase of a status code (RFC 9110 and the registry's common
/// ones), for statuses that come as numbers (ASGI); "Unknown" otherwise, as Gunicorn.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        208 => "Already Reported",
        226 => "IM Used",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        418 => "I'm a Teapot",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        510 => "Not Extended",
        511 => "Network Authentication Required",
        _ => "Unknown",
    }
}

/// A complete canned answer (errors the server produces itself), always closing.
pub fn error_page(minor_version: u8, code: u16, reason: &str, detail: &str) -> Vec<u8> {
    let body = error_body(reason, detail);
    let mut out = Vec::with_capacity(body.len() + 160);
    let _ = write!(
        out,
        "HTTP/1.{} {} {}\r\nServer: {}\r\n",
        minor_version, code, reason, SERVER
    );
    push_date(&mut out);
    let _ = write!(
        out,
        "Connection: close\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{}",
        body.len(),
        body
    );
    out
}

/// The HTML of a canned error page (HTTP/2 sends it in DATA frames).
pub fn error_body(reason: &str, detail: &str) -> String {
    format!(
        "<html>\n  <head>\n    <title>{reason}</title>\n  </head>\n  <body>\n    <h1><p>{reason}</p></h1>\n    {}\n  </body>\n</html>\n",
        html_escape(detail)
    )
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_known_in_any_case_and_others_are_not() {
        for name in [
            "Connection",
            "keep-alive",
            "Proxy-Authenticate",
            "proxy-authorization",
            "Proxy-Connection",
            "TE",
            "Trailer",
            "trailers",
            "Transfer-Encoding",
            "Upgrade",
            "Server",
            "DATE",
        ] {
            assert!(is_hop_by_hop(name), "{name}");
        }
        for name in [
            "Content-Type",
            "Content-Length",
            "X-TE",
            "Dates",
            "",
            "Upgrades",
        ] {
            assert!(!is_hop_by_hop(name), "{name}");
        }
    }

    #[test]
    fn content_length_lines_hold_every_digit() {
        for (n, want) in [
            (0u64, "Content-Length: 0\r\n"),
            (13, "Content-Length: 13\r\n"),
            (u64::MAX, "Content-Length: 18446744073709551615\r\n"),
        ] {
            let mut out = Vec::new();
            push_content_length(&mut out, n);
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
    }

    fn input(minor: u8, head: bool, status: u16, len: Option<u64>) -> PlanInput {
        PlanInput {
            minor_version: minor,
            is_head: head,
            status,
            content_length: len,
            keep_alive: true,
        }
    }

    #[test]
    fn framing_follows_version_method_and_status() {
        let cases = [
            (input(1, false, 200, Some(5)), Framing::Length(5), true),
            (input(1, false, 200, None), Framing::Chunked, true),
            (input(0, false, 200, None), Framing::UntilClose, false),
            (input(0, false, 200, Some(3)), Framing::Length(3), true),
            (input(1, true, 200, None), Framing::NoBody, true),
            (input(1, true, 200, Some(9)), Framing::NoBody, true),
            (input(1, false, 204, None), Framing::NoBody, true),
            (input(1, false, 304, None), Framing::NoBody, true),
        ];
        for (i, want_framing, want_keep) in cases {
            let p = plan(&i);
            assert_eq!((p.framing, p.keep_alive), (want_framing, want_keep));
        }
    }

    #[test]
    fn status_must_be_three_digits_space_reason() {
        assert_eq!(parse_status("200 OK"), Ok(200));
        assert_eq!(parse_status("404 "), Ok(404));
        // Latin-1 and tabs in the reason are allowed, DEL and other controls not.
        assert_eq!(parse_status("200 Caf\u{e9}\tok"), Ok(200));
        assert_eq!(parse_status("201 a long reason phrase, ok"), Ok(201));
        for bad in [
            "200 OK\u{7f}",
            "200 a long reason\u{1}phrase",
            "200",
            "OK 200",
            "2000 OK",
            "20 OK",
            "200\tOK",
            "200 OK\r\nX: y",
            "200 OK\nX: y",
            "200 O\0K",
            "200 \u{2603}",
            "099 X",
            "",
        ] {
            assert!(parse_status(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn chunks_are_hex_sized_and_empty_ones_skipped() {
        let mut out = Vec::new();
        push_chunk(&mut out, b"");
        push_chunk(&mut out, &[b'x'; 26]);
        assert_eq!(out, [&b"1a\r\n"[..], &[b'x'; 26], b"\r\n"].concat());
    }
}
