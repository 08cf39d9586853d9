//! A deliberately small HTTP/1.x client over raw sockets: requests are bytes
//! the test writes itself, responses are parsed by hand so the test sees the
//! framing the server chose (Content-Length, chunked, close-delimited) and
//! whether it was complete.

use std::io::{self, BufRead, BufReader, Cursor, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::harness::IO_TIMEOUT;

/// How a response body was delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body by definition (HEAD, 1xx, 204, 304).
    None,
    /// `Content-Length: n`.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Read until the server closed the connection.
    Close,
}

/// One parsed response.
#[derive(Clone)]
pub struct Response {
    pub version: String,
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub framing: Framing,
    /// False when the connection ended before the framing said the body
    /// ended (missing bytes or no terminating 0-chunk).
    pub complete: bool,
}

/// Shows the body as (lossy, shortened) text: failure messages stay readable.
impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = self.text();
        let shown: String = text.chars().take(400).collect();
        f.debug_struct("Response")
            .field(
                "status_line",
                &format!("{} {} {}", self.version, self.status, self.reason),
            )
            .field("headers", &self.headers)
            .field("framing", &self.framing)
            .field("complete", &self.complete)
            .field(
                "body",
                &if shown.len() < text.len() {
                    format!("{shown}…")
                } else {
                    shown
                },
            )
            .finish()
    }
}

impl Response {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of the header with this name.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Whether a `Connection` header lists `token`.
    pub fn connection_has(&self, token: &str) -> bool {
        self.headers_named("connection")
            .iter()
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Reads one CRLF- (or LF-) terminated line without its terminator; `None`
/// at EOF before any byte.
fn read_line<R: BufRead>(r: &mut R) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    if r.read_until(b'\n', &mut line)? == 0 {
        return Ok(None);
    }
    while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        line.pop();
    }
    Ok(Some(String::from_utf8_lossy(&line).into_owned()))
}

/// Reads one response from `r`. `head` says the request was HEAD (no body
/// follows whatever the headers say). A 1xx interim response is returned as
/// is; the caller reads again for the final one.
pub fn read_response<R: BufRead>(r: &mut R, head: bool) -> io::Result<Response> {
    let status_line = read_line(r)?.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed before a response",
        )
    })?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("").to_string();
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("bad status line {status_line:?}")))?;
    let reason = parts.next().unwrap_or("").to_string();
    if !version.starts_with("HTTP/1.") {
        return Err(bad(format!("bad status line {status_line:?}")));
    }
    let mut headers = Vec::new();
    loop {
        let line =
            read_line(r)?.ok_or_else(|| bad(format!("EOF inside the head of {status_line:?}")))?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| bad(format!("bad header line {line:?}")))?;
        headers.push((name.to_string(), value.trim().to_string()));
    }
    let mut response = Response {
        version,
        status,
        reason,
        headers,
        body: Vec::new(),
        framing: Framing::None,
        complete: true,
    };
    let no_body = head || (100..200).contains(&status) || status == 204 || status == 304;
    let chunked = response
        .headers_named("transfer-encoding")
        .iter()
        .any(|v| v.to_ascii_lowercase().contains("chunked"));
    if no_body {
        return Ok(response);
    }
    if chunked {
        response.framing = Framing::Chunked;
        response.complete = read_chunked(r, &mut response.body)?;
    } else if let Some(len) = response.header("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| bad(format!("bad Content-Length {len:?}")))?;
        response.framing = Framing::Length(len);
        r.take(len as u64).read_to_end(&mut response.body)?;
        response.complete = response.body.len() == len;
    } else {
        response.framing = Framing::Close;
        r.read_to_end(&mut response.body)?;
    }
    Ok(response)
}

/// Decodes a chunked body into `out`; false if the stream ended before the
/// terminating 0-chunk (and its trailer section).
fn read_chunked<R: BufRead>(r: &mut R, out: &mut Vec<u8>) -> io::Result<bool> {
    loop {
        let Some(size_line) = read_line(r)? else {
            return Ok(false);
        };
        let size_hex = size_line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| bad(format!("bad chunk size line {size_line:?}")))?;
        if size == 0 {
            // Trailers, then the empty line.
            loop {
                match read_line(r)? {
                    None => return Ok(false),
                    Some(line) if line.is_empty() => return Ok(true),
                    Some(_) => {}
                }
            }
        }
        let got = r.take(size as u64).read_to_end(out)?;
        if got < size {
            return Ok(false);
        }
        match read_line(r)? {
            Some(line) if line.is_empty() => {}
            Some(line) => {
                return Err(bad(format!(
                    "chunk of {size} bytes not followed by CRLF but {line:?}"
                )))
            }
            None => return Ok(false),
        }
    }
}

/// Parses every response in `bytes`; `heads[i]` says whether request i was
/// HEAD (missing entries mean no). Fails if bytes are left over.
pub fn parse_responses(bytes: &[u8], heads: &[bool]) -> io::Result<Vec<Response>> {
    let mut cursor = Cursor::new(bytes);
    let mut out = Vec::new();
    while (cursor.position() as usize) < bytes.len() {
        let head = heads.get(out.len()).copied().unwrap_or(false);
        out.push(read_response(&mut cursor, head)?);
    }
    Ok(out)
}

/// Builds an HTTP/1.1 request. Adds `Host` unless given, and
/// `Content-Length` when there is a body unless a `Content-Length` or
/// `Transfer-Encoding` header is given.
pub fn request(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let mut out = format!("{method} {target} HTTP/1.1\r\n");
    if !has("host") {
        out.push_str("Host: 127.0.0.1\r\n");
    }
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() && !has("content-length") && !has("transfer-encoding") {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// `body` in chunked transfer coding, `size` bytes a chunk.
pub fn chunked(body: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in body.chunks(size.max(1)) {
        out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// A `multipart/form-data` body: text fields, then one file part.
pub fn multipart(boundary: &str, fields: &[(&str, &str)], file: (&str, &str, &[u8])) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    let (field, filename, data) = file;
    out.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    out.extend_from_slice(data);
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

/// One client connection.
pub struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    /// Connects to 127.0.0.1:`port`.
    pub fn open(port: u16) -> Conn {
        Conn::try_open(SocketAddr::from(([127, 0, 0, 1], port)))
            .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"))
    }

    pub fn try_open(addr: SocketAddr) -> io::Result<Conn> {
        Conn::from_stream(TcpStream::connect_timeout(&addr, IO_TIMEOUT)?)
    }

    /// Wraps a stream the test connected itself (e.g. from a chosen source address).
    pub fn from_stream(stream: TcpStream) -> io::Result<Conn> {
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            writer: stream.try_clone()?,
            reader: BufReader::new(stream),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.writer.local_addr().unwrap()
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.try_send(bytes)
            .unwrap_or_else(|e| panic!("write request: {e}"));
    }

    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.write_all(bytes)?;
        self.writer.flush()
    }

    /// Half-closes: the server sees EOF after what was sent (a truncated request).
    pub fn shutdown_write(&mut self) {
        self.writer
            .shutdown(std::net::Shutdown::Write)
            .unwrap_or_else(|e| panic!("shutdown: {e}"));
    }

    /// Reads the next response to a non-HEAD request.
    pub fn response(&mut self) -> Response {
        self.try_response(false)
            .unwrap_or_else(|e| panic!("read response: {e}"))
    }

    /// Reads the next response to a HEAD request.
    pub fn head_response(&mut self) -> Response {
        self.try_response(true)
            .unwrap_or_else(|e| panic!("read response to HEAD: {e}"))
    }

    pub fn try_response(&mut self, head: bool) -> io::Result<Response> {
        read_response(&mut self.reader, head)
    }

    /// Sends a request and reads its response.
    pub fn roundtrip(&mut self, bytes: &[u8]) -> Response {
        self.send(bytes);
        self.response()
    }

    /// Waits (up to `timeout`) for the server to close the connection:
    /// true on EOF or reset, false if bytes arrived or nothing happened.
    pub fn closed_within(&mut self, timeout: Duration) -> bool {
        self.reader
            .get_ref()
            .set_read_timeout(Some(timeout))
            .unwrap();
        let closed = match self.reader.fill_buf() {
            Ok(buf) => buf.is_empty(),
            Err(e) => matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
            ),
        };
        self.reader
            .get_ref()
            .set_read_timeout(Some(IO_TIMEOUT))
            .unwrap();
        closed
    }

    /// The bytes until the server closes, and how the stream ended: `Ok` for a clean
    /// end of stream, the error (a reset) otherwise.
    pub fn read_until_closed(&mut self) -> (Vec<u8>, io::Result<usize>) {
        let mut rest = Vec::new();
        let end = self.reader.read_to_end(&mut rest);
        (rest, end)
    }

    /// Whatever bytes are left until EOF.
    pub fn read_rest(&mut self) -> Vec<u8> {
        let mut rest = Vec::new();
        let _ = self.reader.read_to_end(&mut rest);
        rest
    }
}

/// Writes `bytes` on a new connection and reads until the server closes
/// it. Panics if it stays open longer than [`IO_TIMEOUT`].
pub fn send_raw(port: u16, bytes: &[u8]) -> Vec<u8> {
    let mut conn = Conn::open(port);
    conn.send(bytes);
    let mut out = Vec::new();
    match conn.reader.read_to_end(&mut out) {
        Ok(_) => out,
        Err(e) if matches!(e.kind(), io::ErrorKind::ConnectionReset) => out,
        Err(e) => panic!(
            "connection not closed by the server within {IO_TIMEOUT:?} ({e}); got so far: {:?}",
            String::from_utf8_lossy(&out)
        ),
    }
}

/// `GET path` with `Connection: close` on a new connection.
pub fn get(port: u16, path: &str) -> Response {
    try_get(port, path).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// Like [`get`] but returns errors (for tests that tolerate a failure).
pub fn try_get(port: u16, path: &str) -> io::Result<Response> {
    let mut conn = Conn::try_open(SocketAddr::from(([127, 0, 0, 1], port)))?;
    conn.try_send(&request("GET", path, &[("Connection", "close")], b""))?;
    conn.try_response(false)
}

/// `POST path` with a body and `Connection: close` on a new connection.
pub fn post(port: u16, path: &str, content_type: &str, body: &[u8]) -> Response {
    let mut conn = Conn::open(port);
    conn.roundtrip(&request(
        "POST",
        path,
        &[("Content-Type", content_type), ("Connection", "close")],
        body,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_parses_every_framing() {
        let bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc\
HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\nde\r\n1\r\nf\r\n0\r\nT: v\r\n\r\n\
HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n\
HTTP/1.1 204 No Content\r\n\r\n\
HTTP/1.0 200 OK\r\n\r\nto the end";
        let got = parse_responses(bytes, &[false, false, true]).unwrap();
        let summary: Vec<(Framing, &[u8], bool)> = got
            .iter()
            .map(|r| (r.framing, &r.body[..], r.complete))
            .collect();
        assert_eq!(
            summary,
            vec![
                (Framing::Length(3), &b"abc"[..], true),
                (Framing::Chunked, b"def", true),
                (Framing::None, b"", true),
                (Framing::None, b"", true),
                (Framing::Close, b"to the end", true),
            ]
        );
    }

    #[test]
    fn client_reports_truncated_bodies() {
        let cases: &[(&[u8], Framing, &[u8])] = &[
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n",
                Framing::Chunked,
                b"first",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfir",
                Framing::Chunked,
                b"fir",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst",
                Framing::Length(100),
                b"first",
            ),
        ];
        for (bytes, framing, body) in cases {
            let r = read_response(&mut Cursor::new(*bytes), false).unwrap();
            assert_eq!(
                (r.framing, &r.body[..], r.complete),
                (*framing, *body, false)
            );
        }
    }
}
