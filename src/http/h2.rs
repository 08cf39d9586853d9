//! HTTP/2 glue: a request the `h2` crate decoded (pseudo-headers already checked
//! against RFC 9113 §8.3: none missing or repeated, none after a regular field, no
//! connection-specific fields, `te` only `trailers`) becomes a [`Head`] through the
//! same policy as an HTTP/1 head ([`Head::from_fields`]); and a response head becomes
//! the `http` value h2 sends. No I/O here: the connection is driven in
//! [`crate::worker::h2conn`].

use super::request::{self, Head, Limits};
use super::response::{self, SERVER};
use super::HttpError;

/// The head of an HTTP/2 request. `:authority` stands in for `Host` (Gunicorn's rule),
/// replacing one Host field; two Host fields are kept, so the singleton rule refuses
/// them as it does over HTTP/1. `:path` is the target (the authority for CONNECT).
/// The head is a served one's when the thread has one ([`request::spare_head`]): its
/// box, bytes and field list were three allocations and three frees per stream.
pub fn head_from_parts(
    parts: &http::request::Parts,
    limits: &Limits,
) -> Result<Box<Head>, HttpError> {
    let target = if parts.method == http::Method::CONNECT {
        parts.uri.authority().map_or("", |a| a.as_str())
    } else {
        parts.uri.path_and_query().map_or("", |p| p.as_str())
    };
    let hosts = parts.headers.get_all(http::header::HOST).iter().count();
    let authority = parts.uri.authority().map(|a| a.as_str().as_bytes());
    let mut fields = Fields::default();
    if let (Some(authority), 0 | 1) = (authority, hosts) {
        fields.push((b"host", authority));
    }
    for (name, value) in &parts.headers {
        if name == http::header::HOST && authority.is_some() && hosts == 1 {
            continue;
        }
        fields.push((name.as_str().as_bytes(), value.as_bytes()));
    }
    let mut head = request::spare_head();
    match head.fill_from_fields(parts.method.as_str(), target, fields.as_slice(), limits) {
        Ok(()) => Ok(head),
        Err(e) => {
            request::recycle(head);
            Err(e)
        }
    }
}

/// Fields a request usually has at most (h2load sends 2 besides the pseudo-headers,
/// curl 3, a browser about 15): those are listed on the stack, not in an allocation
/// of their own per stream.
const FIELDS_ON_STACK: usize = 24;

/// A request's fields as [`Head::from_fields`] takes them.
#[derive(Default)]
struct Fields<'a> {
    stack: [(&'a [u8], &'a [u8]); FIELDS_ON_STACK],
    len: usize,
    /// All of them, once there are more than the stack holds.
    heap: Vec<(&'a [u8], &'a [u8])>,
}

impl<'a> Fields<'a> {
    fn push(&mut self, field: (&'a [u8], &'a [u8])) {
        if self.len < FIELDS_ON_STACK {
            self.stack[self.len] = field;
        } else {
            if self.heap.is_empty() {
                self.heap.extend_from_slice(&self.stack);
            }
            self.heap.push(field);
        }
        self.len += 1;
    }

    fn as_slice(&self) -> &[(&'a [u8], &'a [u8])] {
        if self.len > FIELDS_ON_STACK {
            &self.heap
        } else {
            &self.stack[..self.len]
        }
    }
}

/// The response head h2 sends: names lowercased (HTTP/2 requires it;
/// `HeaderName::from_bytes` does it), `server` and `date` added as HTTP/1 adds them.
/// The app's hop-by-hop fields were dropped by `start_response` already; a name or
/// value h2's `http` types refuse is an error.
pub fn response_head(
    status: u16,
    headers: &[(String, String)],
) -> Result<http::Response<()>, HttpError> {
    let mut head = http::Response::new(());
    *head.status_mut() = http::StatusCode::from_u16(status).map_err(|e| refused(&e))?;
    let fields = head.headers_mut();
    fields.reserve(headers.len() + 2);
    fields.insert(http::header::SERVER, http::HeaderValue::from_static(SERVER));
    fields.insert(http::header::DATE, date());
    for (name, value) in headers {
        if response::is_hop_by_hop(name) {
            continue;
        }
        let name = http::HeaderName::from_bytes(name.as_bytes()).map_err(|e| refused(&e))?;
        fields.append(name, latin1(value));
    }
    Ok(head)
}

/// The response head h2 sends, from the app's header lines as `start_response` keeps
/// them (`Name: value\r\n` each, latin-1, hop-by-hop ones already dropped: see
/// [`crate::wsgi::start_response::StartResponse::header_lines`]) and a length the
/// server computed. The same fields as [`response_head`] gives for the same headers,
/// without turning each line into two `String`s first (about 2,300 instructions per
/// hello stream, a third of them malloc and free).
pub fn response_head_from_lines(
    status: u16,
    lines: &[u8],
    content_length: Option<u64>,
) -> Result<http::Response<()>, HttpError> {
    let mut head = http::Response::new(());
    *head.status_mut() = http::StatusCode::from_u16(status).map_err(|e| refused(&e))?;
    *head.headers_mut() = fields_as_last_time(lines, content_length)?;
    Ok(head)
}

fn refused(e: &dyn std::fmt::Display) -> HttpError {
    HttpError::bad(format!("response head cannot go over HTTP/2: {e}"))
}

/// A thread's last response fields, for apps that answer with the same header lines
/// and length over and over (an API's `content-type`, a fixed page): cloning the map
/// built last time copies it, where building it hashes and inserts each field again
/// and parses each name (about 1,000 instructions for hello's four fields).
struct LastFields {
    /// The lines and length of the thread's last response.
    lines: Vec<u8>,
    content_length: Option<u64>,
    /// What they gave, kept once they came twice in a row (an app whose lines differ
    /// each time costs a copy of them here, not a map), and the second of its `date`.
    built: Option<(i64, http::HeaderMap)>,
}

thread_local! {
    static LAST_FIELDS: std::cell::RefCell<LastFields> = const {
        std::cell::RefCell::new(LastFields {
            lines: Vec::new(),
            content_length: None,
            built: None,
        })
    };
}

/// The fields for these lines and length, as [`fields_from_lines`] builds them, or a
/// clone of the ones this thread built for the same lines and length this second.
fn fields_as_last_time(
    lines: &[u8],
    content_length: Option<u64>,
) -> Result<http::HeaderMap, HttpError> {
    LAST_FIELDS.with(|cell| {
        let mut last = cell.borrow_mut();
        if last.content_length != content_length || last.lines != lines {
            last.lines.clear();
            last.lines.extend_from_slice(lines);
            last.content_length = content_length;
            last.built = None;
            return fields_from_lines(lines, content_length);
        }
        let now = crate::log::time::unix_now();
        if let Some((second, fields)) = &last.built {
            if *second == now {
                return Ok(fields.clone());
            }
        }
        let fields = fields_from_lines(lines, content_length)?;
        last.built = Some((now, fields.clone()));
        Ok(fields)
    })
}

/// `server`, `date`, the app's fields from its lines, then the length.
fn fields_from_lines(
    lines: &[u8],
    content_length: Option<u64>,
) -> Result<http::HeaderMap, HttpError> {
    let mut fields = http::HeaderMap::new();
    let count = lines.iter().filter(|&&b| b == b'\n').count();
    fields.reserve(count + 3);
    fields.insert(http::header::SERVER, http::HeaderValue::from_static(SERVER));
    fields.insert(http::header::DATE, date());
    for line in lines.split(|&b| b == b'\n') {
        let Some(line) = line.strip_suffix(b"\r") else {
            continue;
        };
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line.get(colon + 2..).unwrap_or_default());
        if response::is_hop_by_hop_bytes(name) {
            continue;
        }
        let name = http::HeaderName::from_bytes(name).map_err(|e| refused(&e))?;
        fields.append(name, recent_value(value));
    }
    if let Some(n) = content_length {
        let mut digits = [0; 20];
        let value = recent_value(super::decimal(n, &mut digits));
        fields.append(http::header::CONTENT_LENGTH, value);
    }
    Ok(fields)
}

/// Values up to this long are remembered by [`recent_value`].
const RECENT_VALUE_MAX: usize = 64;
/// How many values each thread remembers.
const RECENT_VALUES: usize = 16;

thread_local! {
    /// The response header values this thread made last, round-robin: an app sends
    /// the same few (`text/html; charset=utf-8`, a fixed length) over and over, and a
    /// new `HeaderValue` copies its bytes into an allocation of its own (malloc, copy
    /// and free were about 400 instructions per value) where a remembered one is shared.
    static RECENT: std::cell::RefCell<(usize, Vec<http::HeaderValue>)> =
        const { std::cell::RefCell::new((0, Vec::new())) };
}

/// A header value with these bytes (already checked by the caller's policy; bytes
/// `http` refuses give an empty value), shared with an earlier one when this thread
/// made it recently.
fn recent_value(bytes: &[u8]) -> http::HeaderValue {
    let make = |bytes: &[u8]| {
        http::HeaderValue::from_bytes(bytes).unwrap_or_else(|_| http::HeaderValue::from_static(""))
    };
    if bytes.len() > RECENT_VALUE_MAX {
        return make(bytes);
    }
    RECENT.with(|cell| {
        let mut recent = cell.borrow_mut();
        if let Some(value) = recent.1.iter().find(|v| v.as_bytes() == bytes) {
            return value.clone();
        }
        let value = make(bytes);
        let (next, values) = &mut *recent;
        if values.len() < RECENT_VALUES {
            values.push(value.clone());
        } else {
            values[*next] = value.clone();
            *next = (*next + 1) % RECENT_VALUES;
        }
        value
    })
}

thread_local! {
    /// The `date` value of the current second, made at most once a second per thread
    /// (cloning it shares its bytes).
    static DATE: std::cell::RefCell<(i64, http::HeaderValue)> =
        const { std::cell::RefCell::new((i64::MIN, http::HeaderValue::from_static(""))) };
}

fn date() -> http::HeaderValue {
    let now = crate::log::time::unix_now();
    DATE.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != now {
            let text = crate::log::time::http_date(now);
            let value = http::HeaderValue::from_str(&text)
                .unwrap_or_else(|_| http::HeaderValue::from_static(""));
            *cached = (now, value);
        }
        cached.1.clone()
    })
}

/// A header value as PEP 3333 has it: latin-1 code points, one byte each.
fn latin1(text: &str) -> http::HeaderValue {
    let value = if text.is_ascii() {
        http::HeaderValue::from_str(text)
    } else {
        let bytes: Vec<u8> = text.chars().map(|c| c as u32 as u8).collect();
        http::HeaderValue::from_bytes(&bytes)
    };
    value.unwrap_or_else(|_| http::HeaderValue::from_static(""))
}

/// The server's own error page for a refused stream: its head and HTML body.
pub fn error_response(err: &HttpError) -> (http::Response<()>, bytes::Bytes) {
    let (code, reason) = err.status();
    let body = response::error_body(reason, &err.to_string());
    let headers = [
        ("content-type".to_string(), "text/html".to_string()),
        ("content-length".to_string(), body.len().to_string()),
    ];
    let head = response_head(code, &headers).unwrap_or_else(|_| http::Response::new(()));
    (head, bytes::Bytes::from(body))
}

/// The client's connection preface, which precedes its first frame.
const PREFACE_LEN: usize = 24;
/// The window over which frames are counted (Gunicorn's and Netty's style of limit).
const FLOOD_WINDOW_MS: u64 = 10_000;
/// RST_STREAM frames a client may send per window (rapid reset, CVE-2023-44487).
pub const MAX_RESETS: u32 = 200;
/// PING, SETTINGS, PRIORITY and empty non-final DATA frames a client may send per
/// window: each costs the server work (and a PING or SETTINGS an answer) for no request.
pub const MAX_CONTROL: u32 = 1000;

/// Which limit a client went over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flood {
    Resets,
    Control,
}

impl std::fmt::Display for Flood {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Flood::Resets => write!(f, "more than {MAX_RESETS} RST_STREAM frames in 10 s"),
            Flood::Control => write!(
                f,
                "more than {MAX_CONTROL} PING, SETTINGS, PRIORITY or empty DATA frames in 10 s"
            ),
        }
    }
}

/// Counts the client's frames from the raw bytes, before h2 sees them: h2 bounds what
/// it buffers but not how often a client may make it work for nothing. A pure
/// function of bytes and the clock (table tests below); it follows the 9-byte frame
/// headers and skips payloads without copying them.
#[derive(Debug)]
pub struct FrameTap {
    preface_left: usize,
    header: [u8; 9],
    have: usize,
    payload_left: usize,
    window_start: u64,
    resets: u32,
    control: u32,
    /// RST_STREAM frames since the connection began (never reset by the window).
    resets_seen: u64,
    /// The frame whose payload is being skipped ends a header block (END_HEADERS).
    ends_block: bool,
    /// Header blocks complete in what was fed (see [`FrameTap::header_blocks`]).
    blocks: u64,
}

impl FrameTap {
    pub fn new(now_ms: u64) -> FrameTap {
        FrameTap {
            preface_left: PREFACE_LEN,
            header: [0; 9],
            have: 0,
            payload_left: 0,
            window_start: now_ms,
            resets: 0,
            control: 0,
            resets_seen: 0,
            ends_block: false,
            blocks: 0,
        }
    }

    /// How many header blocks (HEADERS, or its last CONTINUATION, with END_HEADERS)
    /// have come whole so far. Each stream h2 hands over was opened by one of them,
    /// so once h2 has read everything fed and handed over as many streams as there
    /// are blocks (less trailers and refusals), asking it for another stream would
    /// only poll the connection to hear `Pending` (about 1,100 instructions).
    pub fn header_blocks(&self) -> u64 {
        self.blocks
    }

    /// Counts a header block the server put into h2's input itself (stream 1 of an
    /// h2c upgrade), which the client never sent as a frame.
    pub fn add_block(&mut self) {
        self.blocks += 1;
    }

    /// How many RST_STREAM frames the client has sent so far: the connection looks
    /// for reset streams among those waiting only when this moved.
    pub fn resets_seen(&self) -> u64 {
        self.resets_seen
    }

    /// Counts the frames that start in `bytes`; `Err` when a limit is passed.
    pub fn feed(&mut self, mut bytes: &[u8], now_ms: u64) -> Result<(), Flood> {
        if now_ms.saturating_sub(self.window_start) >= FLOOD_WINDOW_MS {
            self.window_start = now_ms;
            self.resets = 0;
            self.control = 0;
        }
        while !bytes.is_empty() {
            let skip = if self.preface_left > 0 {
                &mut self.preface_left
            } else {
                &mut self.payload_left
            };
            if *skip > 0 {
                let n = (*skip).min(bytes.len());
                *skip -= n;
                bytes = &bytes[n..];
                if self.ends_block && self.payload_left == 0 {
                    self.ends_block = false;
                    self.blocks += 1;
                }
                continue;
            }
            let n = (9 - self.have).min(bytes.len());
            self.header[self.have..self.have + n].copy_from_slice(&bytes[..n]);
            self.have += n;
            bytes = &bytes[n..];
            if self.have == 9 {
                self.have = 0;
                self.count()?;
            }
        }
        Ok(())
    }

    fn count(&mut self) -> Result<(), Flood> {
        let h = &self.header;
        let len = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
        let (kind, flags) = (h[3], h[4]);
        self.payload_left = len;
        match kind {
            0x3 => {
                self.resets += 1;
                self.resets_seen += 1;
            }
            // PRIORITY, SETTINGS, PING.
            0x2 | 0x4 | 0x6 => self.control += 1,
            // DATA carrying nothing and not ending its stream.
            0x0 if len == 0 && flags & 0x1 == 0 => self.control += 1,
            // HEADERS or CONTINUATION with END_HEADERS: the block is whole once its
            // payload is.
            0x1 | 0x9 if flags & 0x4 != 0 => {
                if len == 0 {
                    self.blocks += 1;
                } else {
                    self.ends_block = true;
                }
            }
            _ => {}
        }
        if self.resets > MAX_RESETS {
            return Err(Flood::Resets);
        }
        if self.control > MAX_CONTROL {
            return Err(Flood::Control);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
