//! The response writer: turns what the app said (start_response, body bytes) into
//! framed bytes for a [`Sink`], coalescing small writes.

use std::io;
use std::os::fd::RawFd;

use pyo3::prelude::*;

use super::start_response::StartResponse;
use crate::http::response::{self, Framing, Plan, PlanInput};

/// Where response bytes go. Every method may block until the client drains the
/// socket when too much is queued (releasing the GIL meanwhile, so other app threads
/// run); an error means the client is gone.
pub trait Sink {
    fn send(&mut self, py: Python<'_>, bytes: &[u8]) -> io::Result<()>;
    /// Sends `parts` in order, with one writev(2) when the socket takes them all.
    fn send_vectored(&mut self, py: Python<'_>, parts: &[&[u8]]) -> io::Result<()>;
    /// Sends `len` bytes of the file `fd` from `offset` with sendfile(2); returns how
    /// many were sent (fewer when the file is shorter).
    fn send_file(&mut self, py: Python<'_>, fd: RawFd, offset: u64, len: u64) -> io::Result<u64>;
    /// Whether the sink frames the response itself (an HTTP/2 stream): the writer then
    /// hands it the head through [`send_head`](Sink::send_head), only body bytes
    /// through `send`, and ends with [`end`](Sink::end). HTTP/1 sinks take bytes.
    fn frames_itself(&self) -> bool {
        false
    }
    /// The response head, for a sink that frames itself: the app's header lines as
    /// [`StartResponse::header_lines`] holds them and a length the server computed
    /// (not among them); `body` says whether body bytes (and an [`end`](Sink::end))
    /// follow.
    fn send_head(
        &mut self,
        _py: Python<'_>,
        _status: u16,
        _lines: &[u8],
        _content_length: Option<u64>,
        _body: bool,
    ) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }
    /// The end of a body sent with `send` (a sink that frames itself).
    fn end(&mut self, _py: Python<'_>) -> io::Result<()> {
        Ok(())
    }
    /// The body's last bytes and its end (a sink that frames itself): an HTTP/2 stream
    /// then ends with the frame that carries them, not with an empty one after.
    fn end_with(&mut self, py: Python<'_>, last: &[u8]) -> io::Result<()> {
        if !last.is_empty() {
            self.send(py, last)?;
        }
        self.end(py)
    }
    /// The response cannot be completed (the app failed after the head was sent): a
    /// sink that frames itself resets its stream; HTTP/1 closes the connection instead.
    fn abort(&mut self) {}
    /// A buffer for the writer to build the response in. An HTTP/1 connection lends
    /// its own empty output buffer, which [`send_buffer`](Sink::send_buffer) then takes
    /// back whole: no allocation and no copy per response.
    fn lend_buffer(&mut self) -> Vec<u8> {
        Vec::with_capacity(512)
    }
    /// Sends everything in `buf` and leaves it empty (the sink may keep the buffer
    /// itself and hand back another).
    fn send_buffer(&mut self, py: Python<'_>, buf: &mut Vec<u8>) -> io::Result<()> {
        let sent = self.send(py, buf);
        buf.clear();
        sent
    }
    /// The writer's buffer when the response is done, for a sink that lent it.
    fn return_buffer(&mut self, _buf: Vec<u8>) {}
}

/// Why a response could not be produced as the app intended.
pub(super) enum Fault {
    App(PyErr),
    NotBytes(String),
    NoStartResponse,
    ClientGone(io::Error),
    /// `pre_request` raised: the traceback (the request fails with a 500, as in Gunicorn).
    Hook(String),
}

/// Bodies of known parts from this size on go out with writev instead of a copy.
const VECTORED_MIN: u64 = 8 * 1024;

/// Output is coalesced up to this size before it is handed to the sink.
const FLUSH_AT: usize = 64 * 1024;

pub(super) struct Writer<'s, 'py> {
    pub py: Python<'py>,
    pub sink: &'s mut dyn Sink,
    pub minor_version: u8,
    pub is_head: bool,
    pub keep_alive: bool,
    pub plan: Option<Plan>,
    pub status: u16,
    pub body_sent: u64,
    pub buf: Vec<u8>,
}

impl Writer<'_, '_> {
    pub fn started(&self) -> bool {
        self.plan.is_some()
    }

    /// Sends the head. `known_len` is a length the server computed itself (a list body
    /// or an empty one), used when the app declared none.
    pub fn start(
        &mut self,
        sr: &Bound<'_, StartResponse>,
        known_len: Option<u64>,
    ) -> Result<(), Fault> {
        let mut sr = sr.borrow_mut();
        if sr.status.is_none() {
            return Err(Fault::NoStartResponse);
        }
        let declared = sr.content_length;
        let content_length = declared.or(known_len);
        let framed = self.sink.frames_itself();
        let plan = response::plan(&PlanInput {
            // HTTP/2 frames bodies with DATA: never chunked (1.0's rule), never closing.
            minor_version: if framed { 0 } else { self.minor_version },
            is_head: self.is_head,
            status: sr.code,
            content_length,
            keep_alive: self.keep_alive && !sr.close_requested,
        });
        // A length the server computed is announced unless the status forbids a body;
        // one the app declared is already among its headers.
        let computed = match (declared, plan.framing) {
            (None, Framing::Length(n)) => Some(n),
            // HEAD answers with the length GET would have, when the server knows it.
            (None, Framing::NoBody) if self.is_head => known_len,
            _ => None,
        };
        if framed {
            let body = plan.framing != Framing::NoBody;
            self.sink
                .send_head(self.py, sr.code, &sr.header_lines, computed, body)
                .map_err(Fault::ClientGone)?;
        } else {
            let status = sr.status.as_ref().map(|s| s.bind(self.py).clone());
            let status = status.as_ref().and_then(|s| s.to_str().ok()).unwrap_or("");
            let out = &mut self.buf;
            response::start_head(out, self.minor_version, status, &plan);
            out.extend_from_slice(&sr.header_lines);
            // Not among the app's headers (Gunicorn's `resp.headers`, which the access
            // log's `{..}o` atoms read): only on the wire.
            if let Some(n) = computed {
                response::push_content_length(out, n);
            }
            response::end_head(out, &plan);
        }
        sr.headers_sent = true;
        self.status = sr.code;
        self.plan = Some(plan);
        Ok(())
    }

    pub fn body(&mut self, data: &[u8]) -> Result<(), Fault> {
        let framing = self.plan.expect("head sent before body").framing;
        let data = match framing {
            Framing::NoBody => return Ok(()),
            Framing::Length(n) => {
                &data[..(n.saturating_sub(self.body_sent)).min(data.len() as u64) as usize]
            }
            Framing::Chunked | Framing::UntilClose => data,
        };
        if data.is_empty() {
            return Ok(());
        }
        if framing == Framing::Chunked {
            response::push_chunk(&mut self.buf, data);
        } else {
            self.buf.extend_from_slice(data);
        }
        self.body_sent += data.len() as u64;
        if self.buf.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(())
    }

    /// A body whose parts are all known: below [`VECTORED_MIN`] bytes it is copied
    /// behind the head (one write); above, head and parts go out in one writev without
    /// copying the parts.
    pub fn body_parts(&mut self, parts: &[&[u8]]) -> Result<(), Fault> {
        let framing = self.plan.expect("head sent before body").framing;
        let total: u64 = parts.iter().map(|p| p.len() as u64).sum();
        let vectored = matches!(framing, Framing::Length(_) | Framing::UntilClose);
        if !vectored || total < VECTORED_MIN {
            return parts.iter().try_for_each(|part| self.body(part));
        }
        let mut room = match framing {
            Framing::Length(n) => n.saturating_sub(self.body_sent),
            _ => u64::MAX,
        };
        let mut iov: Vec<&[u8]> = Vec::with_capacity(parts.len() + 1);
        iov.push(&self.buf);
        for part in parts {
            let take = room.min(part.len() as u64) as usize;
            iov.push(&part[..take]);
            room -= take as u64;
            self.body_sent += take as u64;
        }
        self.sink
            .send_vectored(self.py, &iov)
            .map_err(Fault::ClientGone)?;
        self.buf.clear();
        Ok(())
    }

    /// `len` bytes of a regular file from `offset`, with sendfile(2) after the head.
    pub fn body_file(&mut self, fd: RawFd, offset: u64, len: u64) -> Result<(), Fault> {
        let framing = self.plan.expect("head sent before body").framing;
        let len = match framing {
            Framing::NoBody => return Ok(()),
            Framing::Length(n) => len.min(n.saturating_sub(self.body_sent)),
            Framing::Chunked | Framing::UntilClose => len,
        };
        self.flush()?;
        let sent = self
            .sink
            .send_file(self.py, fd, offset, len)
            .map_err(Fault::ClientGone)?;
        self.body_sent += sent;
        Ok(())
    }

    pub fn flush(&mut self) -> Result<(), Fault> {
        if !self.buf.is_empty() {
            self.sink
                .send_buffer(self.py, &mut self.buf)
                .map_err(Fault::ClientGone)?;
        }
        Ok(())
    }

    /// Ends the body: the last chunk, or a check that a declared length was met (a
    /// short body cannot be followed by another response on this connection).
    pub fn finish(&mut self) -> Result<(), Fault> {
        let plan = self.plan.as_mut().expect("head sent before finish");
        match plan.framing {
            Framing::Chunked => self.buf.extend_from_slice(response::LAST_CHUNK),
            Framing::Length(n) if self.body_sent < n => plan.keep_alive = false,
            _ => {}
        }
        let (framing, short) = (plan.framing, !plan.keep_alive);
        if !self.sink.frames_itself() || framing == Framing::NoBody {
            return self.flush();
        }
        if short && matches!(framing, Framing::Length(n) if self.body_sent < n) {
            // A body shorter than its declared length must not look complete.
            self.flush()?;
            self.sink.abort();
            return Ok(());
        }
        let ended = self.sink.end_with(self.py, &self.buf);
        self.buf.clear();
        ended.map_err(Fault::ClientGone)
    }
}
