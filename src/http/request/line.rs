//! The request line, `method SP request-target SP HTTP-version`, checked the way
//! Gunicorn 27 checks it (RFC 9112 §3 plus its conventions on methods and versions).

use super::Limits;
use crate::http::HttpError;

/// A validated request line, borrowing from the received bytes.
#[derive(Debug, PartialEq, Eq)]
pub struct RequestLine<'a> {
    pub method: &'a str,
    pub target: &'a str,
    /// 0 for HTTP/1.0 (and, when permitted, anything older), 1 otherwise.
    pub minor_version: u8,
    /// The version is not literally `HTTP/1.0` or `HTTP/1.1` (permitted by
    /// `--permit-unconventional-http-version`).
    pub unconventional_version: bool,
}

/// Where the request line ends: `Ok(Some(i))` with `buf[i..i + 2] == "\r\n"`,
/// `Ok(None)` when more bytes are needed. A line longer than the limit is a 414 even
/// before it is complete; a bare LF is a 400.
pub fn find_end(buf: &[u8], limits: &Limits) -> Result<Option<usize>, HttpError> {
    let limit = limits.request_line;
    // memchr: a byte-by-byte search was ~5 instructions a byte of every request line.
    let Some(lf) = memchr::memchr(b'\n', buf) else {
        return match limit {
            Some(max) if buf.len() > max + 1 => Err(HttpError::RequestLineTooLong(buf.len(), max)),
            None if buf.len() > UNLIMITED_LINE_CAP => {
                Err(HttpError::RequestLineTooLong(buf.len(), UNLIMITED_LINE_CAP))
            }
            _ => Ok(None),
        };
    };
    if lf == 0 || buf[lf - 1] != b'\r' {
        return Err(HttpError::bad("Invalid Request Line: bare LF line ending"));
    }
    let end = lf - 1;
    match limit {
        Some(max) if end > max => Err(HttpError::RequestLineTooLong(end, max)),
        _ => Ok(Some(end)),
    }
}

/// With `--limit-request-line 0` the line is unlimited, but a buffer must still end
/// somewhere: this is where (Gunicorn's fast parser uses the same bound).
pub const UNLIMITED_LINE_CAP: usize = 1024 * 1024;

/// Checks the line (without its CRLF).
pub fn parse<'a>(line: &'a [u8], limits: &Limits) -> Result<RequestLine<'a>, HttpError> {
    let invalid = || {
        HttpError::bad(format!(
            "Invalid Request Line '{}'",
            String::from_utf8_lossy(&line[..line.len().min(200)])
        ))
    };
    let mut parts = line.splitn(3, |&b| b == b' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    check_method(method, limits)?;
    let method = ascii_str(method);
    if target.is_empty() || !target.iter().all(|&b| is_target_byte(b)) {
        return Err(invalid());
    }
    let target = ascii_str(target);
    if !target_form_allowed(method, target) {
        return Err(invalid());
    }
    let (minor_version, unconventional_version) = parse_version(version, limits)?;
    Ok(RequestLine {
        method,
        target,
        minor_version,
        unconventional_version,
    })
}

pub use crate::http::is_token_byte;

/// Bytes the checks above found to be ASCII (tokens, visible ASCII), as text without
/// a second pass: UTF-8 validation of the method and target was ~90 instructions per
/// request.
fn ascii_str(bytes: &[u8]) -> &str {
    debug_assert!(bytes.is_ascii());
    // SAFETY: every caller has checked each byte to be a token byte or visible ASCII
    // (0x21..=0x7e), and ASCII is valid UTF-8.
    unsafe { std::str::from_utf8_unchecked(bytes) }
}

/// Visible ASCII only (RFC 9112 §3.2 as Gunicorn 27 reads it): no space, no control
/// bytes, no DEL, no raw non-ASCII byte (UTF-8 included; clients percent-encode it).
pub(super) fn is_target_byte(b: u8) -> bool {
    matches!(b, 0x21..=0x7e)
}

/// Methods are tokens; unless permitted, also Gunicorn's conventions: 3 to 20
/// characters, no lowercase letters, no `#`.
pub(super) fn check_method(method: &[u8], limits: &Limits) -> Result<(), HttpError> {
    // The usual ones pass every rule below.
    if matches!(method, b"GET" | b"POST" | b"HEAD") {
        return Ok(());
    }
    let conventional = || {
        (3..=20).contains(&method.len())
            && !method.iter().any(|&b| b.is_ascii_lowercase() || b == b'#')
    };
    let ok = !method.is_empty()
        && method.iter().all(|&b| is_token_byte(b))
        && (limits.permit_unconventional_method || conventional());
    if ok {
        Ok(())
    } else {
        Err(HttpError::bad(format!(
            "Invalid Method '{}'",
            String::from_utf8_lossy(&method[..method.len().min(40)])
        )))
    }
}

/// RFC 9112 §3.2: `*` only with OPTIONS, authority-form only with CONNECT, and
/// everything else is origin-form (`/…`) or absolute-form (`scheme://…`).
pub(super) fn target_form_allowed(method: &str, target: &str) -> bool {
    if target == "*" {
        return method == "OPTIONS";
    }
    if method == "CONNECT" || target.starts_with('/') {
        return true;
    }
    match target.split_once("://") {
        Some((scheme, rest)) => {
            let scheme_ok = scheme
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic())
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
            scheme_ok && authority_ok(rest.split(['/', '?', '#']).next().unwrap_or(""))
        }
        None => false,
    }
}

/// A bracketed IPv6 host must be closed, and brackets appear nowhere else.
fn authority_ok(authority: &str) -> bool {
    let host_port = authority.rsplit('@').next().unwrap_or("");
    match host_port.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((host, after)) => {
                !host.contains(['[', ']']) && (after.is_empty() || after.starts_with(':'))
            }
            None => false,
        },
        None => !host_port.contains(['[', ']']),
    }
}

/// `HTTP/D.D`. HTTP/1.0 and HTTP/1.1 always; other versions only when permitted,
/// served as HTTP/1.0 below 1.0 and as HTTP/1.1 otherwise.
fn parse_version(version: &[u8], limits: &Limits) -> Result<(u8, bool), HttpError> {
    let invalid = || {
        HttpError::bad(format!(
            "Invalid HTTP Version '{}'",
            String::from_utf8_lossy(&version[..version.len().min(40)])
        ))
    };
    let [b'H', b'T', b'T', b'P', b'/', major, b'.', minor] = *version else {
        return Err(invalid());
    };
    if !major.is_ascii_digit() || !minor.is_ascii_digit() {
        return Err(invalid());
    }
    match (major, minor) {
        (b'1', b'0') => Ok((0, false)),
        (b'1', b'1') => Ok((1, false)),
        _ if limits.permit_unconventional_version => Ok((u8::from(major != b'0'), true)),
        _ => Err(invalid()),
    }
}
