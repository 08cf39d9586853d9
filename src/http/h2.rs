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
mod tests {
    use super::*;
    use crate::http::request::HeaderMap;

    fn parts(build: http::request::Builder) -> http::request::Parts {
        build.body(()).unwrap().into_parts().0
    }

    fn get(uri: &str) -> http::request::Builder {
        http::Request::builder().method("GET").uri(uri)
    }

    #[test]
    fn authority_becomes_host_and_path_the_target() {
        let p = parts(get("https://example.com:8443/a?b=1").header("accept", "*/*"));
        let head = head_from_parts(&p, &Limits::default()).unwrap();
        assert_eq!((head.method(), head.target()), ("GET", "/a?b=1"));
        assert_eq!(head.header("host"), Some(&b"example.com:8443"[..]));
        assert_eq!(head.header("accept"), Some(&b"*/*"[..]));
        assert!(head.http2 && head.keep_alive && !head.client_closes);
        assert_eq!(head.protocol(), "HTTP/2.0");
    }

    #[test]
    fn the_http1_policy_applies() {
        let two_hosts = parts(get("https://a/").header("host", "b").header("host", "c"));
        let err = head_from_parts(&two_hosts, &Limits::default()).unwrap_err();
        assert!(err.to_string().contains("more than one host"), "{err}");
        let one_host = parts(get("https://a/").header("host", "b"));
        let head = head_from_parts(&one_host, &Limits::default()).unwrap();
        assert_eq!(head.values("host").collect::<Vec<_>>(), [&b"a"[..]]);
        let underscore = parts(get("https://a/").header("x_forwarded_for", "1.2.3.4"));
        let refuse = Limits {
            header_map: HeaderMap::Refuse,
            ..Limits::default()
        };
        assert!(head_from_parts(&underscore, &refuse).is_err());
        assert!(head_from_parts(&underscore, &Limits::default()).is_ok());
        let long = parts(get(&format!("https://a/{}", "x".repeat(5000))));
        assert_eq!(
            head_from_parts(&long, &Limits::default())
                .unwrap_err()
                .status()
                .0,
            414
        );
        let big = parts(get("https://a/").header("x-big", "v".repeat(8189)));
        assert_eq!(
            head_from_parts(&big, &Limits::default())
                .unwrap_err()
                .status()
                .0,
            431
        );
        let body = parts(
            http::Request::builder()
                .method("POST")
                .uri("https://a/")
                .header("content-length", "11"),
        );
        let small = Limits {
            body: Some(10),
            ..Limits::default()
        };
        assert_eq!(head_from_parts(&body, &small).unwrap_err().status().0, 413);
    }

    #[test]
    fn requests_with_more_fields_than_the_stack_holds_keep_them_all_in_order() {
        for count in [
            FIELDS_ON_STACK - 1,
            FIELDS_ON_STACK,
            FIELDS_ON_STACK + 1,
            60,
        ] {
            let mut build = get("https://a/");
            for i in 0..count {
                build = build.header(format!("x-f{i}"), i.to_string());
            }
            let head = head_from_parts(&parts(build), &Limits::default()).unwrap();
            assert_eq!(head.header("host"), Some(&b"a"[..]));
            for i in 0..count {
                let value = i.to_string();
                assert_eq!(head.header(&format!("x-f{i}")), Some(value.as_bytes()));
            }
            let names: Vec<&str> = head.fields().map(|(n, _)| n).collect();
            let mut want = vec!["host".to_string()];
            want.extend((0..count).map(|i| format!("x-f{i}")));
            assert_eq!(names, want);
        }
    }

    #[test]
    fn a_recycled_head_keeps_nothing_of_the_stream_it_served() {
        let big = parts(
            get("https://a/old?x=1")
                .header("x-old", "1")
                .header("content-length", "5")
                .header("expect", "100-continue"),
        );
        let fresh = |p: &http::request::Parts| {
            let h = head_from_parts(p, &Limits::default()).unwrap();
            let fields: Vec<(String, Vec<u8>)> = h
                .fields()
                .map(|(n, v)| (n.to_string(), v.to_vec()))
                .collect();
            (
                h.method().to_string(),
                h.target().to_string(),
                fields,
                h.expect_continue,
            )
        };
        let small = parts(get("https://b/new").header("accept", "*/*"));
        let want = fresh(&small);
        for _ in 0..3 {
            request::recycle(head_from_parts(&big, &Limits::default()).unwrap());
            assert_eq!(fresh(&small), want);
            let two_hosts = parts(get("https://a/").header("host", "b").header("host", "c"));
            assert!(head_from_parts(&two_hosts, &Limits::default()).is_err());
            assert_eq!(fresh(&small), want);
        }
        assert_eq!(
            want.2,
            [
                ("host".to_string(), b"b".to_vec()),
                ("accept".to_string(), b"*/*".to_vec())
            ]
        );
        assert!(!want.3);
    }

    /// A frame header: length, type, flags, stream 1; then `len` zero bytes.
    fn frame(kind: u8, flags: u8, len: usize) -> Vec<u8> {
        let mut f = vec![
            (len >> 16) as u8,
            (len >> 8) as u8,
            len as u8,
            kind,
            flags,
            0,
            0,
            0,
            1,
        ];
        f.resize(9 + len, 0);
        f
    }

    fn frames(kind: u8, flags: u8, len: usize, count: usize) -> Vec<u8> {
        let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        for _ in 0..count {
            out.extend(frame(kind, flags, len));
        }
        out
    }

    #[test]
    fn the_frame_tap_counts_floods_whatever_the_split() {
        let cases: &[(u8, u8, usize, usize, Option<Flood>)] = &[
            (0x3, 0, 4, MAX_RESETS as usize, None),
            (0x3, 0, 4, MAX_RESETS as usize + 1, Some(Flood::Resets)),
            (0x6, 0, 8, MAX_CONTROL as usize + 1, Some(Flood::Control)),
            (0x4, 0, 0, MAX_CONTROL as usize + 1, Some(Flood::Control)),
            (0x2, 0, 5, MAX_CONTROL as usize + 1, Some(Flood::Control)),
            (0x0, 0, 0, MAX_CONTROL as usize + 1, Some(Flood::Control)),
            // Empty DATA that ends a stream, and DATA with bytes, are requests' own.
            (0x0, 1, 0, 5000, None),
            (0x0, 0, 100, 5000, None),
            // WINDOW_UPDATE is how a small-window client reads: never counted.
            (0x8, 0, 4, 5000, None),
        ];
        for &(kind, flags, len, count, want) in cases {
            let bytes = frames(kind, flags, len, count);
            for step in [1, 7, 9, 4096, bytes.len()] {
                let mut tap = FrameTap::new(0);
                let got = bytes.chunks(step).try_for_each(|c| tap.feed(c, 5));
                assert_eq!(got.err(), want, "type {kind} x{count}, step {step}");
            }
        }
    }

    #[test]
    fn the_frame_tap_counts_header_blocks_once_whole_whatever_the_split() {
        /// A frame's type, flags and payload length.
        type Frame = (u8, u8, usize);
        // (frames, blocks): END_HEADERS is 0x4; CONTINUATION is 0x9.
        let cases: &[(&[Frame], u64)] = &[
            (&[(0x1, 0x4 | 0x1, 30)], 1),
            (&[(0x1, 0x4, 0)], 1),
            (&[(0x1, 0x4, 30), (0x0, 0x1, 5), (0x1, 0x5, 12)], 2),
            // A block in three frames is one block, whole with its last.
            (&[(0x1, 0x1, 20), (0x9, 0, 20), (0x9, 0x4, 20)], 1),
            (&[(0x1, 0x1, 20), (0x9, 0, 20)], 0),
            (&[(0x3, 0, 4), (0x4, 0x4, 0), (0x8, 0, 4), (0x0, 0x4, 8)], 0),
        ];
        for &(list, want) in cases {
            let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
            for &(kind, flags, len) in list {
                bytes.extend(frame(kind, flags, len));
            }
            for step in [1, 7, 9, 10, bytes.len()] {
                let mut tap = FrameTap::new(0);
                for chunk in bytes.chunks(step) {
                    tap.feed(chunk, 0).unwrap();
                }
                assert_eq!(tap.header_blocks(), want, "{list:?}, step {step}");
            }
            // Not counted before the last byte of its payload.
            let mut tap = FrameTap::new(0);
            tap.feed(&bytes[..bytes.len() - 1], 0).unwrap();
            let last_ends = list
                .last()
                .is_some_and(|&(k, f, _)| matches!(k, 0x1 | 0x9) && f & 0x4 != 0);
            assert_eq!(tap.header_blocks() + u64::from(last_ends), want, "{list:?}");
        }
        let mut tap = FrameTap::new(0);
        tap.add_block();
        assert_eq!(tap.header_blocks(), 1);
    }

    #[test]
    fn the_frame_tap_forgets_after_its_window() {
        let mut tap = FrameTap::new(0);
        let batch = frames(0x6, 0, 8, 900);
        tap.feed(&batch, 0).unwrap();
        let more: Vec<u8> = (0..900).flat_map(|_| frame(0x6, 0, 8)).collect();
        tap.feed(&more, FLOOD_WINDOW_MS).unwrap();
        assert_eq!(tap.feed(&more, FLOOD_WINDOW_MS + 1), Err(Flood::Control));
    }

    #[test]
    fn response_heads_are_lowercase_with_server_and_date() {
        let headers = [
            ("Content-Type".to_string(), "text/plain".to_string()),
            ("Connection".to_string(), "close".to_string()),
        ];
        let head = response_head(201, &headers).unwrap();
        assert_eq!(head.status(), 201);
        assert_eq!(head.headers()["content-type"], "text/plain");
        assert_eq!(head.headers()["server"], SERVER);
        assert!(head.headers().contains_key("date"));
        assert!(!head.headers().contains_key("connection"));
        let (head, body) = error_response(&HttpError::bad("nope"));
        assert_eq!(head.status(), 400);
        assert!(body.starts_with(b"<html>"));
    }

    #[test]
    fn heads_from_start_response_lines_match_heads_from_pairs() {
        let pairs = [
            ("Content-Type", "text/plain"),
            ("Set-Cookie", "a=1"),
            ("Set-Cookie", "b=2"),
            ("X-Latin", "caf\u{e9}"),
            ("Connection", "close"),
        ];
        let mut lines = Vec::new();
        for (name, value) in pairs {
            response::push_header_line(&mut lines, name, value);
        }
        let from_lines = response_head_from_lines(200, &lines, Some(5)).unwrap();
        let mut owned: Vec<(String, String)> = pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        owned.push(("Content-Length".into(), "5".into()));
        let from_pairs = response_head(200, &owned).unwrap();
        assert_eq!(from_lines.headers(), from_pairs.headers());
        let cookies: Vec<_> = from_lines.headers().get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
        assert_eq!(from_lines.headers()["x-latin"].as_bytes(), b"caf\xe9");
        assert_eq!(from_lines.headers()["content-length"], "5");
        assert!(!from_lines.headers().contains_key("connection"));
        let bad = response_head_from_lines(200, b"Bad Name: x\r\n", None);
        assert!(bad.is_err());
    }

    #[test]
    fn repeated_lines_give_the_same_fields_and_other_lengths_their_own() {
        let without_date = |head: http::Response<()>| {
            let mut fields = head.headers().clone();
            assert!(fields.remove("date").is_some());
            fields
        };
        let lines = b"Content-Type: text/plain\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n";
        let first = without_date(response_head_from_lines(200, lines, Some(5)).unwrap());
        assert_eq!(first["content-length"], "5");
        for status in [200, 201, 200] {
            let again = response_head_from_lines(status, lines, Some(5)).unwrap();
            assert_eq!(again.status(), status);
            assert_eq!(without_date(again), first);
        }
        let longer = without_date(response_head_from_lines(200, lines, Some(7)).unwrap());
        assert_eq!(longer["content-length"], "7");
        let none = without_date(response_head_from_lines(200, lines, None).unwrap());
        assert!(!none.contains_key("content-length"));
        let other = without_date(response_head_from_lines(200, b"X-A: 1\r\n", Some(5)).unwrap());
        assert_eq!(other["x-a"], "1");
        assert!(!other.contains_key("content-type"));
        for _ in 0..3 {
            assert!(response_head_from_lines(200, b"Bad Name: x\r\n", None).is_err());
        }
    }

    #[test]
    fn remembered_values_keep_their_bytes_past_the_cache_size() {
        let texts: Vec<String> = (0..3 * RECENT_VALUES).map(|i| format!("v{i}")).collect();
        for _ in 0..2 {
            for text in &texts {
                assert_eq!(recent_value(text.as_bytes()).as_bytes(), text.as_bytes());
            }
        }
        let long = "x".repeat(RECENT_VALUE_MAX + 1);
        assert_eq!(recent_value(long.as_bytes()).as_bytes(), long.as_bytes());
        assert_eq!(recent_value(b"bad\nvalue").as_bytes(), b"");
    }
}
