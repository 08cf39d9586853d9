//! One client connection: bytes in, parsed requests out, response bytes queued back.
//! The state machine is [`Phase`]; the event loop drives it.

use std::io::{self, Read, Write};
use std::time::Instant;

use super::read_buffer::ReadBuffer;
pub use super::stream::Stream;
use crate::http::body::{Body, BodyBuffer, Decoder};
use crate::http::request::{parse_head_reusing, Head, Limits};
use crate::http::response;
use crate::http::HttpError;
use crate::wsgi::call::Sink;
use crate::wsgi::environ::Peer;

/// The first read of a connection asks for this much: a typical request head fits,
/// and an idle keep-alive connection holds no more than this.
const READ_MIN: usize = 4 * 1024;
/// Reads grow (doubling while they come back full) up to this, for large bodies.
const READ_MAX: usize = 64 * 1024;
/// Queued output above this makes the app's writes wait for the client.
const HIGH_WATER: usize = 1024 * 1024;
/// A sync worker's response output up to this size waits for the end of the batch
/// (see `defer_writes`); beyond it, it is written as it comes, so a large or streamed
/// body flows as before.
const DEFER_MAX: usize = 64 * 1024;

/// Where a connection is in its request/response cycle.
pub enum Phase {
    /// `--proxy-protocol`: the connection may start with a PROXY header; `allowed`
    /// is whether this peer may send one (`--proxy-allow-from`).
    ProxyHeader {
        mode: crate::http::proxy_protocol::Mode,
        allowed: bool,
    },
    /// h2c prior knowledge: the first bytes may be the HTTP/2 connection preface
    /// (see `conn/h2c.rs`); `deadline` (coarse monotonic ms) is set by the first bytes.
    Preface { deadline: Option<u64> },
    /// Waiting for (the rest of) a request head.
    Head,
    /// The head is parsed; body bytes are being decoded.
    Body {
        head: Box<Head>,
        decoder: Decoder,
        buffer: BodyBuffer,
    },
    /// A complete request waits for the app.
    Ready { head: Box<Head>, body: Body },
    /// No more requests: close once queued output is written.
    Closing,
}

/// What the event loop should do with a connection after it was driven.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Keep it registered and wait for events.
    Wait,
    /// A complete request is ready for the app.
    Ready,
    /// Drop it now.
    Close,
    /// TLS negotiated HTTP/2, the client sent the h2c preface, or (with the request
    /// still in `Phase::Ready`, see [`Conn::take_upgrade`]) asked for `Upgrade: h2c`:
    /// the event loop turns the connection into an [`super::h2conn::H2Conn`] (with
    /// [`Conn::into_h2_parts`]).
    Http2,
}

/// A closed connection's buffers, emptied, for the next connection: a short
/// connection then costs no allocation and no zeroing of a fresh read buffer (the
/// 4 KiB read buffer is too large for the allocator's fast path).
#[derive(Default)]
pub struct Buffers {
    rbuf: ReadBuffer,
    wbuf: Vec<u8>,
}

pub struct Conn {
    pub stream: Stream,
    pub peer: Peer,
    pub phase: Phase,
    rbuf: ReadBuffer,
    wbuf: Vec<u8>,
    wpos: usize,
    /// The client sent FIN: answer what is complete, then close.
    read_closed: bool,
    /// The last event said the client half-closed (EPOLLRDHUP): a short read is then
    /// not the end of what there is to read — only a read returning 0 is — or a FIN
    /// that came with the last bytes of a request would go unnoticed (readiness is
    /// edge-triggered) and the client would wait for an answer forever.
    pub fin_pending: bool,
    /// The kernel may hold bytes we have not read: set by a readable event and by a
    /// read that filled its buffer, cleared by a short read. Closing with unread bytes
    /// makes the kernel send a reset (which can destroy our last response in the
    /// client's buffers), so [`shutdown`](Self::shutdown) reads them first.
    pub maybe_unread: bool,
    /// The client's last request asked to close (`Connection: close`, or HTTP/1.0
    /// without keep-alive): it sends nothing more (RFC 9112 §9.6), so unless a read
    /// or event said otherwise, close(2) alone ends the connection cleanly, as nginx
    /// decides. When the server closes a connection the client meant to keep (no
    /// keep-alive, draining, the app's `Connection: close`), the client may have sent
    /// its next request meanwhile, unseen during the app call: that close reads first.
    client_closes: bool,
    /// The output queued is the connection's last: the socket is closed as soon as
    /// it is written, so it goes with `MSG_MORE` (see `Stream::write_before_close`).
    pub closes_after_output: bool,
    /// Requests answered on this connection (0 means it is still fresh).
    pub served: u64,
    /// When bytes last moved, on the coarse monotonic clock (milliseconds): the
    /// keep-alive and stall timeouts count in seconds.
    pub last_activity: u64,
    /// Seconds a blocked write may wait for the client (the worker timeout).
    write_timeout: u64,
    /// How much the next read asks for (see [`READ_MIN`]).
    read_size: usize,
    /// Whether the socket is registered for writable events. Only while output is
    /// queued: otherwise every ACK from the client would wake the loop (and cost the
    /// client's kernel an epoll callback), for nothing to write.
    pub write_interest: bool,
    /// Set by the sync worker around an app call: output up to [`DEFER_MAX`] is only
    /// queued, and the event loop writes it after the batch of calls.
    pub defer_writes: bool,
    /// `--protocol uwsgi`: requests come as uwsgi packets; `Some(allowed)` says whether
    /// this peer may send them (`--uwsgi-allow-from`). `None` is HTTP/1.
    uwsgi: Option<bool>,
    /// Cleartext HTTP/2 for this peer (off unless the server offers it and the peer
    /// is trusted, see `conn/h2c.rs`).
    h2c: crate::config::http2::Cleartext,
    /// A file queued behind `wbuf` (ASGI pathsend), sent as the socket takes it.
    file_tail: Option<file_tail::FileTail>,
}

impl Conn {
    pub fn new(stream: Stream, peer: Peer, write_timeout: u64, buffers: Buffers) -> Conn {
        Conn {
            stream,
            peer,
            phase: Phase::Head,
            rbuf: buffers.rbuf,
            wbuf: buffers.wbuf,
            wpos: 0,
            read_closed: false,
            fin_pending: false,
            maybe_unread: true,
            client_closes: false,
            closes_after_output: false,
            served: 0,
            last_activity: crate::sys::monotonic_millis(),
            write_timeout,
            read_size: READ_MIN,
            write_interest: false,
            defer_writes: false,
            uwsgi: None,
            h2c: crate::config::http2::Cleartext::Off,
            file_tail: None,
        }
    }

    /// Closes the connection and keeps its buffers when they are small (the ones a
    /// large body grew are freed, as [`finish_response`](Self::finish_response) does).
    pub fn into_buffers(self) -> Option<Buffers> {
        let Conn {
            mut rbuf, mut wbuf, ..
        } = self;
        if rbuf.capacity() > READ_MIN || wbuf.capacity() > READ_MAX {
            return None;
        }
        rbuf.clear();
        wbuf.clear();
        Some(Buffers { rbuf, wbuf })
    }

    /// The socket, the peer and the bytes read so far (the start of the client's
    /// HTTP/2 preface), for an HTTP/2 connection.
    pub fn into_h2_parts(self) -> (Stream, Peer, Vec<u8>) {
        (self.stream, self.peer, self.rbuf.data().to_vec())
    }

    /// A fresh connection whose reads found nothing yet.
    pub fn received_nothing(&self) -> bool {
        self.served == 0
            && self.rbuf.is_empty()
            && !self.read_closed
            && matches!(
                self.phase,
                Phase::Head | Phase::ProxyHeader { .. } | Phase::Preface { .. }
            )
    }

    /// Idle between requests with nothing buffered in either direction.
    pub fn is_idle(&self) -> bool {
        matches!(self.phase, Phase::Head) && self.rbuf.is_empty() && !self.has_output()
    }

    /// Response bytes not yet taken by the socket: queued here, or (TLS) encrypted
    /// and waiting in the session.
    pub fn has_output(&self) -> bool {
        self.wpos < self.wbuf.len() || self.file_tail.is_some() || self.stream.has_pending_output()
    }

    /// Reads and parses in turns until the socket would block (readiness is
    /// edge-triggered) or a complete request is waiting. Parsing after every read keeps
    /// memory bounded: body bytes move to the body buffer as they arrive, and a client
    /// that pipelines a flood of requests is not read further until its first is served.
    pub fn on_readable(&mut self, limits: &Limits) -> Next {
        loop {
            if matches!(self.phase, Phase::Ready { .. } | Phase::Closing) {
                return self.advance(limits);
            }
            match self.read_some() {
                Ok(_) if self.served == 0 && self.stream.negotiated_h2() => return Next::Http2,
                Ok(more) => {
                    let next = self.advance(limits);
                    if next != Next::Wait || !more {
                        return next;
                    }
                }
                Err(e) => {
                    // A failed TLS handshake says why here (no certificate, plain HTTP…).
                    tracing::debug!("Closing connection from {:?}: {e}", self.peer.remote);
                    return Next::Close;
                }
            }
        }
    }

    /// One read: `Ok(true)` when bytes arrived and more may follow, `Ok(false)` when
    /// the socket is drained (would block, EOF — then `read_closed` is set — or a short
    /// read: with edge-triggered readiness, data arriving later raises a new event).
    fn read_some(&mut self) -> io::Result<bool> {
        let (result, room, direct) = match self.read_body_direct() {
            Some((result, room)) => (result, room, true),
            None => {
                let spare = self.rbuf.spare(self.read_size);
                let room = spare.len();
                (self.stream.read(spare), room, false)
            }
        };
        match result {
            Ok(0) => {
                self.read_closed = true;
                self.fin_pending = false;
                self.maybe_unread = false;
                Ok(false)
            }
            Ok(n) => {
                if !direct {
                    self.rbuf.filled(n);
                }
                self.last_activity = crate::sys::monotonic_millis();
                if n == room && !direct {
                    self.read_size = (self.read_size * 2).min(READ_MAX);
                }
                self.maybe_unread = n == room;
                Ok(n == room || self.fin_pending)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.maybe_unread = false;
                Ok(false)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// A Content-Length body that stays in memory is read straight into its body
    /// buffer once the read buffer holds nothing more of it, as much as the buffer has
    /// room for (it grows ahead of what arrived, see `BodyBuffer`): no copy out of the
    /// read buffer, no 64 KiB steps, and nothing read past the body (a pipelined
    /// request behind it goes to the read buffer). The read's result and the room it
    /// had; `None` for any other read.
    fn read_body_direct(&mut self) -> Option<(io::Result<usize>, usize)> {
        let Phase::Body {
            decoder, buffer, ..
        } = &mut self.phase
        else {
            return None;
        };
        if !self.rbuf.is_empty() {
            return None;
        }
        let stream = &mut self.stream;
        let mut room = 0;
        let result = decoder.read_direct(buffer, |memory, max| {
            room = max;
            stream.read_into(memory, max)
        })?;
        Some((result, room))
    }

    /// Parses as far as the buffered bytes allow.
    pub fn advance(&mut self, limits: &Limits) -> Next {
        loop {
            match &mut self.phase {
                &mut Phase::ProxyHeader { mode, allowed } => {
                    if let Some(next) = self.advance_proxy_header(mode, allowed) {
                        return next;
                    }
                }
                Phase::Preface { .. } => {
                    if let Some(next) = self.advance_preface() {
                        return next;
                    }
                }
                Phase::Head => {
                    if self.rbuf.is_empty() {
                        return self.wait_or_close();
                    }
                    if let Some(allowed) = self.uwsgi {
                        match self.parse_uwsgi(allowed, limits) {
                            Ok(Some(head)) => self.start_body(head, limits),
                            Ok(None) => return self.wait_or_close(),
                            Err(next) => return next,
                        }
                        continue;
                    }
                    let for_peer = if self.peer.trusted {
                        *limits
                    } else {
                        limits.for_untrusted_peer()
                    };
                    match parse_head_reusing(self.rbuf.data(), &for_peer) {
                        Ok(None) => return self.wait_or_close(),
                        Ok(Some((head, used))) => {
                            self.rbuf.consume(used);
                            self.start_body(head, limits);
                        }
                        Err(e) => return self.reject(&e),
                    }
                }
                Phase::Body {
                    decoder, buffer, ..
                } => match decoder.decode(self.rbuf.data(), buffer) {
                    Ok(used) => {
                        self.rbuf.consume(used);
                        if !decoder.is_done() {
                            return self.wait_or_close();
                        }
                        let Phase::Body { head, buffer, .. } =
                            std::mem::replace(&mut self.phase, Phase::Closing)
                        else {
                            unreachable!()
                        };
                        match buffer.finish() {
                            Ok(body) => self.phase = Phase::Ready { head, body },
                            Err(e) => {
                                return self
                                    .reject(&HttpError::bad(format!("cannot buffer body: {e}")))
                            }
                        }
                    }
                    Err(e) => return self.reject(&e),
                },
                Phase::Ready { head, .. } => {
                    return if self.h2c.upgrade() && h2c::wants_upgrade(head) {
                        Next::Http2
                    } else {
                        Next::Ready
                    }
                }
                Phase::Closing => {
                    return if self.has_output() {
                        Next::Wait
                    } else {
                        Next::Close
                    }
                }
            }
        }
    }

    fn start_body(&mut self, head: Box<Head>, limits: &Limits) {
        let decoder = Decoder::with_limit(head.body, limits.body);
        if head.expect_continue && !decoder.is_done() && self.rbuf.is_empty() {
            self.queue(b"HTTP/1.1 100 Continue\r\n\r\n");
            let _ = self.flush();
        }
        self.phase = Phase::Body {
            head,
            decoder,
            buffer: BodyBuffer::default(),
        };
    }

    /// More bytes are needed: wait for them, unless the client has stopped sending
    /// (then a cut-off body is answered 400; a cut-off head just closes, as in Gunicorn).
    fn wait_or_close(&mut self) -> Next {
        if self.read_closed && matches!(self.phase, Phase::Body { .. }) {
            return self.reject(&HttpError::bad("request body truncated: the client closed"));
        }
        if self.read_closed {
            self.phase = Phase::Closing;
            return if self.has_output() {
                Next::Wait
            } else {
                Next::Close
            };
        }
        Next::Wait
    }

    /// Answers a malformed request with its status and closes.
    fn reject(&mut self, err: &HttpError) -> Next {
        self.refuse(err, &err.to_string())
    }

    /// Answers `err`'s page and closes, with one log line saying `why` (which may name
    /// more than the page tells the client, as Gunicorn's does for a forbidden PROXY
    /// header).
    fn refuse(&mut self, err: &HttpError, why: &str) -> Next {
        // Gunicorn's wording and level, so log watchers keep working.
        let ip = self
            .peer
            .remote
            .map(|a| a.ip().to_string())
            .unwrap_or_default();
        tracing::warn!("Invalid request from ip={ip}: {why}");
        let (code, reason) = err.status();
        self.rbuf.clear();
        self.queue(&response::error_page(1, code, reason, &err.to_string()));
        self.phase = Phase::Closing;
        self.closes_after_output = true;
        let _ = self.flush();
        if self.has_output() {
            Next::Wait
        } else {
            Next::Close
        }
    }

    /// Takes the complete request out for the app.
    pub fn take_request(&mut self) -> Option<(Box<Head>, Body)> {
        match std::mem::replace(&mut self.phase, Phase::Head) {
            Phase::Ready { head, body } => Some((head, body)),
            other => {
                self.phase = other;
                None
            }
        }
    }

    /// After a response: go on with the next request, or close when either side said
    /// so (`client_closes`: the request did).
    pub fn finish_response(
        &mut self,
        keep_alive: bool,
        client_closes: bool,
        limits: &Limits,
    ) -> Next {
        // A writable event that came while an app thread held the connection was not
        // seen by the loop: send what is still queued now.
        self.closes_after_output = !keep_alive;
        if self.flush().is_err() {
            return Next::Close;
        }
        self.served += 1;
        self.last_activity = crate::sys::monotonic_millis();
        if self.read_size > READ_MIN && self.rbuf.is_empty() {
            // A large body is done: an idle connection goes back to a small buffer.
            self.rbuf = ReadBuffer::default();
            self.read_size = READ_MIN;
        }
        if self.wbuf.capacity() > READ_MAX && !self.has_output() {
            self.wbuf = Vec::new();
            self.wpos = 0;
        }
        if !keep_alive {
            self.client_closes = client_closes;
            self.phase = Phase::Closing;
            return if self.has_output() {
                Next::Wait
            } else {
                Next::Close
            };
        }
        self.phase = Phase::Head;
        if self.maybe_unread || self.fin_pending || self.stream.is_tls() {
            return self.on_readable(limits);
        }
        // The last read came back short: the kernel held nothing more then, and bytes
        // that arrived since raised a readable event the loop has yet to see
        // (edge-triggered readiness), so reading now would mostly find nothing — an
        // EAGAIN on about every other keep-alive request. What is buffered (a pipelined
        // request) is parsed now. TLS may hold decrypted bytes no event announces, so
        // it reads.
        self.advance(limits)
    }

    fn queue(&mut self, bytes: &[u8]) {
        if let Some(tail) = self.file_tail.as_mut() {
            // A pipelined response behind a file still being sent waits behind it.
            tail.after.extend_from_slice(bytes);
            return;
        }
        if self.wpos == self.wbuf.len() {
            self.wbuf.clear();
            self.wpos = 0;
        }
        self.wbuf.extend_from_slice(bytes);
    }

    /// Queues response bytes without writing (the asgi worker writes with
    /// [`flush`](Self::flush) and waits for the client with the event loop).
    pub fn queue_output(&mut self, bytes: &[u8]) {
        self.queue(bytes);
    }

    /// Bytes read after the last request and not parsed (a WebSocket client's first
    /// frames, sent right behind its handshake), taken out of the connection.
    pub fn take_unparsed(&mut self) -> Vec<u8> {
        let bytes = self.rbuf.data().to_vec();
        self.rbuf.clear();
        bytes
    }

    /// Response bytes queued and not yet taken by the socket.
    pub fn pending_output(&self) -> usize {
        let file = usize::try_from(self.file_left()).unwrap_or(usize::MAX);
        (self.wbuf.len() - self.wpos).saturating_add(file)
    }

    /// The socket's descriptor, for a readiness wait outside the worker's own loop.
    pub fn fd(&self) -> std::os::fd::RawFd {
        self.stream.raw_fd()
    }

    /// Writes queued output (and then a queued file) until the socket would block.
    pub fn flush(&mut self) -> io::Result<()> {
        loop {
            if !self.write_queued()? {
                return Ok(());
            }
            if self.file_tail.is_none() {
                break;
            }
            if !self.advance_file()? {
                return Ok(());
            }
        }
        self.wbuf.clear();
        self.wpos = 0;
        self.stream.flush()
    }

    /// Writes the write buffer; false when the socket would block first.
    fn write_queued(&mut self) -> io::Result<bool> {
        while self.wpos < self.wbuf.len() {
            let rest = &self.wbuf[self.wpos..];
            // A file sent after the buffer would be held back; nothing else is.
            let written = if self.closes_after_output && self.file_tail.is_none() {
                self.stream.write_before_close(rest)
            } else {
                self.stream.write(rest)
            };
            match written {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.wpos += n;
                    self.last_activity = crate::sys::monotonic_millis();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Called on a writable event: flushes, and reports whether the connection is done.
    pub fn on_writable(&mut self, limits: &Limits) -> Next {
        if self.flush().is_err() {
            return Next::Close;
        }
        match self.phase {
            Phase::Closing if !self.has_output() => Next::Close,
            Phase::Head if !self.has_output() => self.advance(limits),
            _ => Next::Wait,
        }
    }

    /// Waits (blocking, bounded by the worker timeout) until the socket accepts more
    /// output, stamping the heartbeat each second: a slow reader is not a stuck app.
    fn wait_writable(&self) -> io::Result<()> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        // SAFETY: the fd belongs to self.stream, alive for this call.
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(self.stream.raw_fd()) };
        let started = Instant::now();
        loop {
            crate::arbiter::beat();
            let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
            match poll(&mut fds, PollTimeout::from(1000u16)) {
                Ok(0) => {}
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
            if self.write_timeout > 0 && started.elapsed().as_secs() >= self.write_timeout {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "client did not read the response",
                ));
            }
        }
    }

    /// Tidy close: stop sending, and discard what the client still sends so the kernel
    /// does not answer our last response with a reset.
    pub fn shutdown(&mut self) {
        if self.closes_after_output && self.stream.holds_back_before_close() {
            // The last bytes went with MSG_MORE and wait in the kernel: SHUT_WR sends
            // them with the FIN now. A bare close would throw them away and reset the
            // connection if the client's bytes arrived after the last read (a request
            // pipelined behind an HTTP/1.0 one).
            self.stream.shutdown_write();
            if !self.client_closes || self.maybe_unread {
                self.discard_input(&mut [0u8; 4096]);
            }
            return;
        }
        // Nothing unread (the usual case) means close(2) alone ends the connection
        // with a FIN, no reset. When the client asked to close, the last read said so
        // if it came back short and no readable event came since; otherwise one read
        // tells. TLS always says close_notify first.
        if !self.stream.is_tls() && self.client_closes && !self.maybe_unread {
            return;
        }
        // Only now: zeroing it costs more than the usual close above.
        let mut scratch = [0u8; 4096];
        if !self.stream.is_tls() {
            match self.stream.read(&mut scratch) {
                Ok(n) if n > 0 => {}
                _ => return,
            }
        }
        self.stream.shutdown_write();
        self.discard_input(&mut scratch);
    }

    /// Reads and drops what the client still sends (a bounded number of reads), so
    /// the close that follows finds nothing unread and sends no reset.
    fn discard_input(&mut self, scratch: &mut [u8]) {
        for _ in 0..16 {
            match self.stream.read(scratch) {
                Ok(n) if n > 0 => continue,
                _ => break,
            }
        }
    }
}

impl Conn {
    /// writev(2) of `parts` until done or the socket would block; returns bytes written.
    fn write_parts(&mut self, parts: &[&[u8]]) -> io::Result<usize> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let mut written = 0;
        while written < total {
            let mut skip = written;
            let mut slices = Vec::with_capacity(parts.len().min(64));
            for part in parts {
                if skip >= part.len() {
                    skip -= part.len();
                    continue;
                }
                slices.push(io::IoSlice::new(&part[skip..]));
                skip = 0;
                if slices.len() == 64 {
                    break;
                }
            }
            match self.stream.write_vectored(&slices) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if written > 0 {
            self.last_activity = crate::sys::monotonic_millis();
        }
        Ok(written)
    }

    /// sendfile(2) cannot encrypt: over TLS a file is read and written in pieces,
    /// with the same back-pressure as any other output.
    fn copy_file(&mut self, fd: std::os::fd::RawFd, offset: u64, len: u64) -> io::Result<u64> {
        // SAFETY: the file belongs to the file object the caller holds a reference to.
        let file = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        let mut piece = vec![0u8; READ_MAX.min(len as usize)];
        let mut sent = 0u64;
        while sent < len {
            let want = (len - sent).min(piece.len() as u64) as usize;
            let position = (offset + sent) as libc::off_t;
            match nix::sys::uio::pread(file, &mut piece[..want], position) {
                Ok(0) => break,
                Ok(n) => {
                    self.queue(&piece[..n]);
                    self.drain(false)?;
                    sent += n as u64;
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(sent)
    }

    /// Waits until queued output is below the high-water mark (or, with `all`, gone).
    fn drain(&mut self, all: bool) -> io::Result<()> {
        self.flush()?;
        let limit = if all { 0 } else { HIGH_WATER };
        while self.wbuf.len() - self.wpos > limit {
            self.wait_writable()?;
            self.flush()?;
        }
        Ok(())
    }
}

impl Sink for Conn {
    fn lend_buffer(&mut self) -> Vec<u8> {
        if self.file_tail.is_none() && self.wpos == self.wbuf.len() && self.wbuf.capacity() > 0 {
            self.wpos = 0;
            let mut buf = std::mem::take(&mut self.wbuf);
            buf.clear();
            return buf;
        }
        Vec::with_capacity(512)
    }

    fn send_buffer(&mut self, py: pyo3::Python<'_>, buf: &mut Vec<u8>) -> io::Result<()> {
        if self.file_tail.is_some() || self.wpos != self.wbuf.len() {
            // Output still queued: the buffer's bytes go behind it.
            let sent = self.send(py, buf);
            buf.clear();
            return sent;
        }
        // Nothing queued: the writer's buffer becomes the output buffer as it is.
        std::mem::swap(&mut self.wbuf, buf);
        buf.clear();
        self.wpos = 0;
        if self.defer_writes && self.wbuf.len() <= DEFER_MAX {
            return Ok(());
        }
        py.detach(|| self.drain(false))
    }

    fn return_buffer(&mut self, buf: Vec<u8>) {
        // Back to the connection when it has no buffer of its own (it lent it).
        if self.wbuf.capacity() == 0 && buf.capacity() <= DEFER_MAX {
            self.wbuf = buf;
            self.wbuf.clear();
            self.wpos = 0;
        }
    }

    fn send(&mut self, py: pyo3::Python<'_>, bytes: &[u8]) -> io::Result<()> {
        if self.defer_writes && self.wbuf.len() - self.wpos + bytes.len() <= DEFER_MAX {
            self.queue(bytes);
            return Ok(());
        }
        py.detach(|| {
            self.queue(bytes);
            self.drain(false)
        })
    }

    fn send_vectored(&mut self, py: pyo3::Python<'_>, parts: &[&[u8]]) -> io::Result<()> {
        py.detach(|| {
            let mut skip = if self.has_output() {
                0
            } else {
                self.write_parts(parts)?
            };
            for part in parts {
                if skip >= part.len() {
                    skip -= part.len();
                    continue;
                }
                self.queue(&part[skip..]);
                skip = 0;
            }
            self.drain(false)
        })
    }

    fn send_file(
        &mut self,
        py: pyo3::Python<'_>,
        fd: std::os::fd::RawFd,
        offset: u64,
        len: u64,
    ) -> io::Result<u64> {
        if self.stream.is_tls() {
            return py.detach(|| self.copy_file(fd, offset, len));
        }
        py.detach(|| {
            self.drain(true)?;
            // SAFETY: the file belongs to the file object the caller holds a
            // reference to, open for this call.
            let file = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            let mut sent = 0u64;
            while sent < len {
                let sock = self.stream.as_fd_for_sendfile();
                match file_tail::sendfile_some(sock, file, offset + sent, len - sent)? {
                    None => self.wait_writable()?,
                    Some(0) => break,
                    Some(n) => {
                        sent += n;
                        self.last_activity = crate::sys::monotonic_millis();
                    }
                }
            }
            Ok(sent)
        })
    }
}

mod file_tail;
mod h2c;
mod proxy;
mod uwsgi;
