//! Request body decoding (Content-Length and chunked) into a [`BodyBuffer`] that keeps
//! small bodies in memory and spools large ones to an unlinked temporary file.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};

use super::request::BodyFraming;
use super::HttpError;

/// Bodies up to this size stay in memory; larger ones go to a temporary file.
pub const MEMORY_LIMIT: usize = 1024 * 1024;

/// A body read straight into memory first gets room for this much (or all of it,
/// when smaller)…
const DIRECT_FIRST: usize = 64 * 1024;
/// …and then, each time that room is full, room for this many times what it holds.
const DIRECT_GROWTH: usize = 4;

/// The longest chunk-size line (size, extensions, CRLF) accepted.
const MAX_CHUNK_LINE: usize = 4096;
/// The most trailer bytes accepted after the last chunk.
const MAX_TRAILERS: usize = 8192;

/// Where the body bytes of one request collect.
#[derive(Debug, Default)]
pub struct BodyBuffer {
    memory: Vec<u8>,
    file: Option<File>,
    len: u64,
}

/// A complete request body, ready to hand to `wsgi.input`.
#[derive(Debug)]
pub enum Body {
    Memory(Vec<u8>),
    File(File, u64),
}

impl Body {
    /// The body length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Body::Memory(v) => v.len() as u64,
            Body::File(_, n) => *n,
        }
    }

    /// Whether the body is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl BodyBuffer {
    /// Appends body bytes, moving to a temporary file past [`MEMORY_LIMIT`].
    pub fn push(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.len += bytes.len() as u64;
        if let Some(file) = &mut self.file {
            return file.write_all(bytes);
        }
        if self.memory.len() + bytes.len() > MEMORY_LIMIT {
            let mut file = tempfile::tempfile()?;
            file.write_all(&self.memory)?;
            file.write_all(bytes)?;
            self.memory = Vec::new();
            self.file = Some(file);
            return Ok(());
        }
        self.memory.extend_from_slice(bytes);
        Ok(())
    }

    /// Reads more of a body of `remaining` more bytes straight into memory, when it
    /// stays there (nothing spooled, the total within [`MEMORY_LIMIT`]): `read` gets
    /// the buffer and appends at most the `usize` it is given. The buffer grows ahead
    /// of what arrived, by [`DIRECT_GROWTH`] from [`DIRECT_FIRST`] up to the body's
    /// size: a 1 MiB body is reallocated twice, and a client that announces a large
    /// body and sends little holds little. `None` when the body does not qualify.
    fn read_direct(
        &mut self,
        remaining: u64,
        read: impl FnOnce(&mut Vec<u8>, usize) -> io::Result<usize>,
    ) -> Option<io::Result<usize>> {
        let total = self.len.checked_add(remaining)?;
        if self.file.is_some() || remaining == 0 || total > MEMORY_LIMIT as u64 {
            return None;
        }
        let len = self.memory.len();
        if self.memory.capacity() - len < DIRECT_FIRST.min(remaining as usize) {
            let target = (len * DIRECT_GROWTH).max(DIRECT_FIRST).min(total as usize);
            self.memory.reserve_exact(target - len);
        }
        let room = (self.memory.capacity() - len).min(remaining as usize);
        let result = read(&mut self.memory, room);
        self.len = self.memory.len() as u64;
        Some(result)
    }

    /// Bytes received so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Bytes held in memory (0 once spooled to a file).
    pub fn in_memory(&self) -> usize {
        self.memory.len()
    }

    /// Moves what is in memory to a temporary file now, and what follows there too
    /// (an HTTP/2 connection caps the memory all its streams' bodies hold).
    pub fn spool(&mut self) -> io::Result<()> {
        if self.file.is_none() {
            let mut file = tempfile::tempfile()?;
            file.write_all(&self.memory)?;
            self.memory = Vec::new();
            self.file = Some(file);
        }
        Ok(())
    }

    /// Whether nothing has been received.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The finished body, rewound for reading.
    pub fn finish(self) -> io::Result<Body> {
        match self.file {
            Some(mut f) => {
                f.seek(SeekFrom::Start(0))?;
                Ok(Body::File(f, self.len))
            }
            None => Ok(Body::Memory(self.memory)),
        }
    }
}

/// Incremental decoder state for one request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoder {
    /// `remaining` bytes of a Content-Length body are still to come.
    Length {
        remaining: u64,
    },
    /// A chunked body: where in the message, how many body bytes so far, and the
    /// `--limit-request-body` they may not exceed.
    Chunked {
        state: ChunkState,
        received: u64,
        limit: Option<u64>,
    },
    Done,
}

/// Where a chunked decoder is within the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkState {
    /// Expecting a chunk-size line.
    Size,
    /// Inside chunk data.
    Data { remaining: u64 },
    /// Expecting the CRLF that ends chunk data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty line. `seen` counts bytes.
    Trailers { seen: usize },
}

impl Decoder {
    /// The decoder for a head's framing, without a body size limit.
    pub fn new(framing: BodyFraming) -> Decoder {
        Decoder::with_limit(framing, None)
    }

    /// The decoder for a head's framing; a chunked body growing past `limit` is a 413.
    /// (A Content-Length over the limit was refused with the head.)
    pub fn with_limit(framing: BodyFraming, limit: Option<u64>) -> Decoder {
        match framing {
            BodyFraming::None => Decoder::Done,
            BodyFraming::Length(n) => Decoder::Length { remaining: n },
            BodyFraming::Chunked => Decoder::Chunked {
                state: ChunkState::Size,
                received: 0,
                limit,
            },
        }
    }

    /// Whether the whole body has been decoded.
    pub fn is_done(&self) -> bool {
        *self == Decoder::Done
    }

    /// For a Content-Length body that stays in memory, one read straight into `out`
    /// (see [`BodyBuffer`]): `read` gets the buffer and the most it may append (never
    /// past the body), and returns how many bytes it appended (0: end of file). `None`
    /// when this body is decoded from a read buffer instead (chunked, spooled to a
    /// file, or done).
    pub fn read_direct(
        &mut self,
        out: &mut BodyBuffer,
        read: impl FnOnce(&mut Vec<u8>, usize) -> io::Result<usize>,
    ) -> Option<io::Result<usize>> {
        let Decoder::Length { remaining } = self else {
            return None;
        };
        let result = out.read_direct(*remaining, read)?;
        if let Ok(n) = result {
            *remaining -= (n as u64).min(*remaining);
            if *remaining == 0 {
                *self = Decoder::Done;
            }
        }
        Some(result)
    }

    /// Decodes as much of `input` as possible into `out`; returns the bytes consumed.
    /// Consuming less than all of `input` without finishing means "need more bytes".
    pub fn decode(&mut self, input: &[u8], out: &mut BodyBuffer) -> Result<usize, HttpError> {
        let mut pos = 0;
        loop {
            match self {
                Decoder::Done => return Ok(pos),
                Decoder::Length { remaining } => {
                    let take = (*remaining).min((input.len() - pos) as u64) as usize;
                    push(out, &input[pos..pos + take])?;
                    pos += take;
                    *remaining -= take as u64;
                    if *remaining == 0 {
                        *self = Decoder::Done;
                    }
                    return Ok(pos);
                }
                Decoder::Chunked {
                    state,
                    received,
                    limit,
                } => match step_chunked(state, &input[pos..], out)? {
                    Step::Consumed(n, finished) => {
                        *received = out.len();
                        if let Some(max) = *limit {
                            if *received > max {
                                return Err(HttpError::PayloadTooLarge(format!(
                                    "chunked body over the limit of {max} bytes"
                                )));
                            }
                        }
                        pos += n;
                        if finished {
                            *self = Decoder::Done;
                        }
                    }
                    Step::NeedMore => return Ok(pos),
                },
            }
        }
    }
}

fn push(out: &mut BodyBuffer, bytes: &[u8]) -> Result<(), HttpError> {
    out.push(bytes)
        .map_err(|e| HttpError::bad(format!("cannot buffer request body: {e}")))
}

enum Step {
    /// Consumed n bytes; true when the body is complete.
    Consumed(usize, bool),
    NeedMore,
}

fn find_crlf(input: &[u8]) -> Option<usize> {
    input.windows(2).position(|w| w == b"\r\n")
}

fn step_chunked(
    state: &mut ChunkState,
    input: &[u8],
    out: &mut BodyBuffer,
) -> Result<Step, HttpError> {
    match *state {
        ChunkState::Size => {
            let Some(end) = find_crlf(input) else {
                if input.len() > MAX_CHUNK_LINE {
                    return Err(HttpError::bad("chunk size line too long"));
                }
                return Ok(Step::NeedMore);
            };
            let size = parse_chunk_size(&input[..end])?;
            *state = if size == 0 {
                ChunkState::Trailers { seen: 0 }
            } else {
                ChunkState::Data { remaining: size }
            };
            Ok(Step::Consumed(end + 2, false))
        }
        ChunkState::Data { remaining } => {
            if input.is_empty() {
                return Ok(Step::NeedMore);
            }
            let take = remaining.min(input.len() as u64) as usize;
            push(out, &input[..take])?;
            *state = if remaining == take as u64 {
                ChunkState::DataEnd
            } else {
                ChunkState::Data {
                    remaining: remaining - take as u64,
                }
            };
            Ok(Step::Consumed(take, false))
        }
        ChunkState::DataEnd => {
            if input.len() < 2 {
                return Ok(Step::NeedMore);
            }
            if &input[..2] != b"\r\n" {
                return Err(HttpError::bad("chunk data not followed by CRLF"));
            }
            *state = ChunkState::Size;
            Ok(Step::Consumed(2, false))
        }
        ChunkState::Trailers { seen } => {
            let Some(end) = find_crlf(input) else {
                if seen + input.len() > MAX_TRAILERS {
                    return Err(HttpError::bad("chunked trailers too large"));
                }
                return Ok(Step::NeedMore);
            };
            if end == 0 {
                return Ok(Step::Consumed(2, true));
            }
            check_trailer(&input[..end])?;
            *state = ChunkState::Trailers {
                seen: seen + end + 2,
            };
            if seen + end + 2 > MAX_TRAILERS {
                return Err(HttpError::bad("chunked trailers too large"));
            }
            Ok(Step::Consumed(end + 2, false))
        }
    }
}

/// Trailer fields RFC 9110 §6.5.1 forbids: they would change routing, framing or
/// authentication after the fact (Gunicorn refuses the same list).
const FORBIDDEN_TRAILERS: [&str; 6] = [
    "host",
    "content-length",
    "transfer-encoding",
    "trailer",
    "authorization",
    "te",
];

/// One trailer line: `token ":" field-value`, not folded, not a forbidden field.
fn check_trailer(line: &[u8]) -> Result<(), HttpError> {
    let colon = line.iter().position(|&b| b == b':');
    let (name, value) = match colon {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, &b""[..]),
    };
    let valid_name = !name.is_empty() && name.iter().all(|&b| is_tchar(b));
    if colon.is_none() || !valid_name {
        return Err(HttpError::bad("malformed trailer field"));
    }
    if value.iter().any(|&b| b < 0x20 && b != b'\t' || b == 0x7f) {
        return Err(HttpError::bad("control character in trailer field"));
    }
    if FORBIDDEN_TRAILERS
        .iter()
        .any(|f| f.as_bytes().eq_ignore_ascii_case(name))
    {
        return Err(HttpError::bad(format!(
            "Invalid header name: {} is not allowed in trailers",
            String::from_utf8_lossy(name)
        )));
    }
    Ok(())
}

/// `1*HEXDIG [ BWS ; ext ]` (RFC 9112 §7.1.1): whitespace only before an extension;
/// extensions are ignored but must not carry control bytes. Leading zeros are fine.
fn parse_chunk_size(line: &[u8]) -> Result<u64, HttpError> {
    let (size, ext) = match line.iter().position(|&b| b == b';') {
        Some(i) => (trim_ows(&line[..i]), &line[i..]),
        None => (line, &b""[..]),
    };
    let significant = match size.iter().position(|&b| b != b'0') {
        Some(i) => &size[i..],
        None => &size[size.len().saturating_sub(1)..],
    };
    if size.is_empty() || significant.len() > 15 || !size.iter().all(u8::is_ascii_hexdigit) {
        return Err(HttpError::bad(format!(
            "invalid chunk size {:?}",
            String::from_utf8_lossy(size)
        )));
    }
    if ext.iter().any(|&b| b < 0x20 && b != b'\t' || b == 0x7f) {
        return Err(HttpError::bad("control character in chunk extension"));
    }
    if !chunk_ext_ok(ext) {
        return Err(HttpError::bad(format!(
            "invalid chunk extension {:?}",
            String::from_utf8_lossy(ext)
        )));
    }
    let text = std::str::from_utf8(significant).expect("hex digits are ASCII");
    u64::from_str_radix(text, 16).map_err(|_| HttpError::bad("chunk size overflows"))
}

/// RFC 9112 §7.1.1, from the first `;`: `*( BWS ";" BWS chunk-ext-name
/// [ BWS "=" BWS chunk-ext-val ] )`, a name a token, a value a token or a
/// quoted-string (Gunicorn 27 refuses the same lines).
fn chunk_ext_ok(mut ext: &[u8]) -> bool {
    while !ext.is_empty() {
        let Some(rest) = trim_start_ows(ext).strip_prefix(b";") else {
            return false;
        };
        let (name, rest) = take_token(trim_start_ows(rest));
        if name.is_empty() {
            return false;
        }
        ext = match trim_start_ows(rest).strip_prefix(b"=") {
            Some(value) => match take_value(trim_start_ows(value)) {
                Some(rest) => rest,
                None => return false,
            },
            None => rest,
        };
    }
    true
}

fn take_token(bytes: &[u8]) -> (&[u8], &[u8]) {
    let end = bytes
        .iter()
        .position(|&b| !is_tchar(b))
        .unwrap_or(bytes.len());
    bytes.split_at(end)
}

/// A token or a quoted-string (`qdtext` and `\`-escapes, obs-text allowed); what
/// follows it, or `None` when there is neither.
fn take_value(bytes: &[u8]) -> Option<&[u8]> {
    let Some(mut rest) = bytes.strip_prefix(b"\"") else {
        let (token, rest) = take_token(bytes);
        return (!token.is_empty()).then_some(rest);
    };
    let text = |b: u8| b == b'\t' || b >= 0x20 && b != 0x7f;
    loop {
        match rest {
            [b'"', tail @ ..] => return Some(tail),
            [b'\\', c, tail @ ..] if text(*c) => rest = tail,
            [c, tail @ ..] if text(*c) && *c != b'\\' => rest = tail,
            _ => return None,
        }
    }
}

use crate::http::is_token_byte as is_tchar;

fn trim_start_ows(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(bytes.len());
    &bytes[start..]
}

fn trim_ows(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(0, |i| i + 1);
    &bytes[..end]
}

#[cfg(test)]
mod tests;
