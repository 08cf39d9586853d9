//! Request heads: httparse does the tokenising; this module applies the framing rules
//! of RFC 9112 (body length, keep-alive, Expect) and the size limits.

use std::mem::MaybeUninit;

use super::HttpError;

/// Size limits on a request head (Gunicorn's `limit_request_*` defaults).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub request_line: usize,
    pub fields: usize,
    pub field_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_line: 4094,
            fields: 100,
            field_size: 8190,
        }
    }
}

/// How the request body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    None,
    Length(u64),
    Chunked,
}

/// A parsed request head.
#[derive(Clone, Debug)]
pub struct Head {
    pub method: String,
    /// The request target exactly as sent (RAW_URI).
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// Header names as sent, values as raw bytes, in order.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: BodyFraming,
    /// The client allows the connection to stay open after this request.
    pub keep_alive: bool,
    pub expect_continue: bool,
    /// What a trusted proxy's secure-scheme headers said (`Some(true)`: https); set
    /// by the worker before the app call, see [`super::forwarded`].
    pub forwarded_https: Option<bool>,
}

impl Head {
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub fn protocol(&self) -> &'static str {
        if self.minor_version == 0 {
            "HTTP/1.0"
        } else {
            "HTTP/1.1"
        }
    }

    /// The first value of a header, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// Whether this is a HEAD request (its response carries no body bytes).
    pub fn is_head(&self) -> bool {
        self.method == "HEAD"
    }
}

/// Header slots kept on the stack while parsing (more only for larger limits).
const STACK_SLOTS: usize = 128;

/// Tries to parse a head at the start of `buf`. `Ok(None)` means more bytes are needed
/// (a state, not an error); `Ok(Some((head, n)))` consumed `n` bytes.
pub fn parse_head(buf: &[u8], limits: &Limits) -> Result<Option<(Head, usize)>, HttpError> {
    check_request_line_length(buf, limits)?;
    // Header slots live on the stack for the usual limits; no allocation, no init.
    let mut stack = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_SLOTS];
    let mut heap = Vec::new();
    let slots: &mut [MaybeUninit<httparse::Header<'_>>] = if limits.fields < STACK_SLOTS {
        &mut stack[..limits.fields + 1]
    } else {
        heap.resize_with(limits.fields + 1, MaybeUninit::uninit);
        &mut heap
    };
    let mut req = httparse::Request::new(&mut []);
    let consumed = match req.parse_with_uninit_headers(buf, slots) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            let max_head = limits.request_line + 2 + (limits.fields + 1) * (limits.field_size + 2);
            if buf.len() > max_head {
                return Err(HttpError::HeadersTooLarge("request head too large".into()));
            }
            return Ok(None);
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HttpError::HeadersTooLarge(format!(
                "more than {} header fields",
                limits.fields
            )))
        }
        Err(e) => return Err(HttpError::bad(format!("invalid request: {e}"))),
    };
    if req.headers.len() > limits.fields {
        return Err(HttpError::HeadersTooLarge(format!(
            "more than {} header fields",
            limits.fields
        )));
    }
    let method = req.method.unwrap_or_default().to_string();
    let target = req.path.unwrap_or_default().to_string();
    let minor_version = req.version.unwrap_or(1);
    let mut headers = Vec::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        if h.name.len() + h.value.len() + 2 > limits.field_size {
            return Err(HttpError::HeadersTooLarge(format!(
                "header {} is too large",
                h.name
            )));
        }
        headers.push((h.name.to_string(), h.value.to_vec()));
    }
    if target.is_empty() {
        return Err(HttpError::bad("empty request target"));
    }
    let body = body_framing(&headers, minor_version)?;
    let keep_alive = wants_keep_alive(&headers, minor_version);
    let expect_continue = expects_continue(&headers, minor_version)?;
    Ok(Some((
        Head {
            method,
            target,
            minor_version,
            headers,
            body,
            keep_alive,
            expect_continue,
            forwarded_https: None,
        },
        consumed,
    )))
}

fn check_request_line_length(buf: &[u8], limits: &Limits) -> Result<(), HttpError> {
    let line_end = buf.iter().position(|&b| b == b'\n');
    let line_len = line_end.unwrap_or(buf.len());
    if line_len > limits.request_line + 1 {
        return Err(HttpError::RequestLineTooLong(line_len, limits.request_line));
    }
    Ok(())
}

fn header_values<'a>(
    headers: &'a [(String, Vec<u8>)],
    name: &'a str,
) -> impl Iterator<Item = &'a [u8]> + 'a {
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

/// Comma-separated tokens of every instance of a header, trimmed and lowercased.
fn tokens(headers: &[(String, Vec<u8>)], name: &str) -> Vec<String> {
    header_values(headers, name)
        .flat_map(|v| v.split(|&b| b == b','))
        .map(|t| String::from_utf8_lossy(t).trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// RFC 9112 §6.3: Transfer-Encoding wins only when it is alone and ends in chunked;
/// Content-Length must be one plain decimal number.
fn body_framing(headers: &[(String, Vec<u8>)], minor: u8) -> Result<BodyFraming, HttpError> {
    let has_te = header_values(headers, "transfer-encoding").next().is_some();
    let lengths: Vec<&[u8]> = header_values(headers, "content-length").collect();
    if has_te {
        if !lengths.is_empty() {
            return Err(HttpError::bad("both Content-Length and Transfer-Encoding"));
        }
        if minor == 0 {
            return Err(HttpError::bad("Transfer-Encoding on HTTP/1.0"));
        }
        let codings = tokens(headers, "transfer-encoding");
        return match codings.last().map(String::as_str) {
            Some("chunked") if codings.iter().filter(|c| *c == "chunked").count() == 1 => {
                if codings.len() > 1 {
                    Err(HttpError::NotImplemented(format!(
                        "transfer coding {}",
                        codings[..codings.len() - 1].join(", ")
                    )))
                } else {
                    Ok(BodyFraming::Chunked)
                }
            }
            Some("chunked") => Err(HttpError::bad("chunked applied more than once")),
            _ => Err(HttpError::NotImplemented(format!(
                "transfer coding {}",
                codings.join(", ")
            ))),
        };
    }
    match lengths.as_slice() {
        [] => Ok(BodyFraming::None),
        [one] => {
            let text =
                std::str::from_utf8(one).map_err(|_| HttpError::bad("bad Content-Length"))?;
            if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(HttpError::bad(format!("bad Content-Length {text:?}")));
            }
            let n = text
                .parse::<u64>()
                .map_err(|_| HttpError::bad("Content-Length too large"))?;
            Ok(if n == 0 {
                BodyFraming::None
            } else {
                BodyFraming::Length(n)
            })
        }
        _ => Err(HttpError::bad("more than one Content-Length")),
    }
}

fn wants_keep_alive(headers: &[(String, Vec<u8>)], minor: u8) -> bool {
    let conn = tokens(headers, "connection");
    if conn.iter().any(|t| t == "close") {
        return false;
    }
    minor >= 1 || conn.iter().any(|t| t == "keep-alive")
}

fn expects_continue(headers: &[(String, Vec<u8>)], minor: u8) -> Result<bool, HttpError> {
    let expect = tokens(headers, "expect");
    match expect.as_slice() {
        [] => Ok(false),
        [one] if one == "100-continue" => Ok(minor >= 1),
        _ => Err(HttpError::ExpectationFailed(expect.join(", "))),
    }
}

#[cfg(test)]
mod tests;
