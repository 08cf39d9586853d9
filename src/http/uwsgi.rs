//! The uWSGI binary protocol (nginx's `uwsgi_pass`), as Gunicorn 27 speaks it: a 4-byte
//! header (modifier1, vars-block size as a little-endian u16, modifier2), then the vars
//! block (pairs of u16-LE-length-prefixed key and value), then the body, framed by
//! `CONTENT_LENGTH`. Only modifier1 0 (a WSGI request) is served.
//!
//! The vars become the same [`Head`] the HTTP/1 parser makes — they are written out as an
//! HTTP/1 head and parsed by [`parse_head`] — so the limits, the header policy
//! (`--header-map`, singletons…), the environ, hooks and access log are shared, not
//! repeated. The response is plain HTTP/1.x, which is what a uWSGI front end reads.

use std::net::{IpAddr, SocketAddr};

use super::request::{parse_head, Head, Limits};
use super::HttpError;

/// Most vars in one packet (Gunicorn's bound), whatever the size limits say.
pub const MAX_VARS: usize = 1000;
/// CGI vars a front end sends besides the headers (nginx's `uwsgi_params` has 15);
/// they count against the packet-size bound on top of `--limit-request-fields`.
const CGI_VARS: usize = 32;

/// A complete packet head: the request, and what the front end said about the client.
#[derive(Debug)]
pub struct Packet {
    pub head: Head,
    /// `HTTPS` was `on`, `1` or `true`: the client came over TLS.
    pub https: bool,
    /// `REMOTE_ADDR` (and `REMOTE_PORT`, 0 when absent), when they form an address.
    pub remote: Option<SocketAddr>,
}

/// Why a packet is refused; each names the problem for the error log.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UwsgiError {
    #[error("uwsgi: unsupported modifier1 {0} (only 0, a WSGI request, is served)")]
    Modifier(u8),
    #[error("uwsgi: vars block of {size} bytes exceeds the limit of {max}")]
    TooLarge { size: usize, max: usize },
    #[error("uwsgi: malformed vars block: {0}")]
    Malformed(String),
    #[error("uwsgi: {0}")]
    Http(#[from] HttpError),
}

impl UwsgiError {
    /// The HTTP error the front end is answered with.
    pub fn to_http(&self) -> HttpError {
        match self {
            UwsgiError::Http(e) => e.clone(),
            UwsgiError::TooLarge { .. } => HttpError::HeadersTooLarge(self.to_string()),
            other => HttpError::bad(other.to_string()),
        }
    }
}

/// The largest vars block the limits allow: the request line, the header fields and the
/// CGI vars, each at its size bound, capped by what the u16 size can say anyway.
pub fn max_vars_block(limits: &Limits) -> usize {
    let line = limits.request_line.unwrap_or(8190) + 4;
    let field = limits.field_size + 4;
    (line + (limits.fields + CGI_VARS) * field).min(u16::MAX as usize)
}

/// Parses the packet head at the start of `buf`. `Ok(None)` means more bytes are
/// needed (a state, not an error); `Ok(Some((packet, n)))` consumed `n` bytes, and the
/// body (`packet.head.body`) follows. Never panics; allocates in proportion to `buf`.
pub fn parse(buf: &[u8], limits: &Limits) -> Result<Option<(Packet, usize)>, UwsgiError> {
    if buf.len() < 4 {
        return match buf.first() {
            Some(&m) if m != 0 => Err(UwsgiError::Modifier(m)),
            _ => Ok(None),
        };
    }
    if buf[0] != 0 {
        return Err(UwsgiError::Modifier(buf[0]));
    }
    let size = u16::from_le_bytes([buf[1], buf[2]]) as usize;
    let max = max_vars_block(limits);
    if size > max {
        return Err(UwsgiError::TooLarge { size, max });
    }
    let Some(block) = buf.get(4..4 + size) else {
        return Ok(None);
    };
    let vars = split_vars(block)?;
    Ok(Some((to_packet(&vars, limits)?, 4 + size)))
}

/// One var: key and value bytes, borrowed from the packet.
pub type Var<'a> = (&'a [u8], &'a [u8]);

/// The vars block as (key, value) pairs, in order.
pub fn split_vars(mut block: &[u8]) -> Result<Vec<Var<'_>>, UwsgiError> {
    let mut vars = Vec::new();
    while !block.is_empty() {
        if vars.len() == MAX_VARS {
            return Err(UwsgiError::Malformed(format!("more than {MAX_VARS} vars")));
        }
        let (key, rest) = take_string(block, "key")?;
        let (value, rest) = take_string(rest, "value")?;
        vars.push((key, value));
        block = rest;
    }
    Ok(vars)
}

/// One u16-LE-length-prefixed string, and the bytes after it.
fn take_string<'a>(bytes: &'a [u8], what: &str) -> Result<(&'a [u8], &'a [u8]), UwsgiError> {
    let truncated = || UwsgiError::Malformed(format!("truncated {what}"));
    let len = bytes.get(..2).ok_or_else(truncated)?;
    let len = u16::from_le_bytes([len[0], len[1]]) as usize;
    let value = bytes.get(2..2 + len).ok_or_else(truncated)?;
    Ok((value, &bytes[2 + len..]))
}

/// Header vars not passed on: the body is framed by `CONTENT_LENGTH` alone, and
/// `CONTENT_*` come from their CGI vars.
const DROPPED: [&str; 3] = ["CONTENT_LENGTH", "CONTENT_TYPE", "TRANSFER_ENCODING"];

/// Writes the vars out as an HTTP/1 head and parses it with the HTTP/1 rules.
fn to_packet(vars: &[Var<'_>], limits: &Limits) -> Result<Packet, UwsgiError> {
    let get = |name: &str| {
        vars.iter()
            .rev()
            .find(|(k, _)| *k == name.as_bytes())
            .map(|&(_, v)| v)
    };
    for &(key, value) in vars {
        if let Some(&b) = key
            .iter()
            .chain(value)
            .find(|&&b| matches!(b, b'\r' | b'\n' | 0))
        {
            return Err(UwsgiError::Malformed(format!(
                "control byte {b:#04x} in var {}",
                String::from_utf8_lossy(key)
            )));
        }
    }
    let mut raw = Vec::with_capacity(256);
    raw.extend_from_slice(get("REQUEST_METHOD").unwrap_or(b"GET"));
    raw.push(b' ');
    match get("REQUEST_URI").filter(|u| !u.is_empty()) {
        Some(uri) => raw.extend_from_slice(uri),
        None => {
            raw.extend_from_slice(get("PATH_INFO").filter(|p| !p.is_empty()).unwrap_or(b"/"));
            if let Some(q) = get("QUERY_STRING").filter(|q| !q.is_empty()) {
                raw.push(b'?');
                raw.extend_from_slice(q);
            }
        }
    }
    raw.push(b' ');
    raw.extend_from_slice(get("SERVER_PROTOCOL").unwrap_or(b"HTTP/1.1"));
    raw.extend_from_slice(b"\r\n");
    for &(key, value) in vars {
        let name = match key {
            b"CONTENT_TYPE" => b"CONTENT_TYPE".as_slice(),
            b"CONTENT_LENGTH" if !value.is_empty() => b"CONTENT_LENGTH",
            _ => match key.strip_prefix(b"HTTP_") {
                Some(n) if !DROPPED.iter().any(|d| d.as_bytes() == n) => n,
                _ => continue,
            },
        };
        raw.extend(name.iter().map(|&b| if b == b'_' { b'-' } else { b }));
        raw.extend_from_slice(b": ");
        raw.extend_from_slice(value);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"\r\n");
    // Names come `_`-joined (CGI style) and go back with `-`, as Gunicorn maps them.
    let (mut head, _) = parse_head(&raw, limits)?
        .ok_or_else(|| UwsgiError::Malformed("incomplete request in vars".into()))?;
    // The front end answered any `Expect: 100-continue` itself.
    head.expect_continue = false;
    head.uwsgi = true;
    let https = get("HTTPS").is_some_and(|v| {
        [&b"on"[..], b"1", b"true"]
            .iter()
            .any(|t| v.eq_ignore_ascii_case(t))
    });
    Ok(Packet {
        head,
        https,
        remote: remote_addr(get("REMOTE_ADDR"), get("REMOTE_PORT")),
    })
}

/// `REMOTE_ADDR`/`REMOTE_PORT` as a socket address, when they are one.
fn remote_addr(addr: Option<&[u8]>, port: Option<&[u8]>) -> Option<SocketAddr> {
    let ip: IpAddr = std::str::from_utf8(addr?).ok()?.parse().ok()?;
    let port = port
        .and_then(|p| std::str::from_utf8(p).ok()?.parse().ok())
        .unwrap_or(0);
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests;
