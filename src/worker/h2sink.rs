//! The response side of one HTTP/2 stream, used by the app thread that serves it:
//! the WSGI writer's [`Sink`], over h2's `SendResponse`/`SendStream`.
//!
//! Body bytes go out only as flow control grants capacity (`capacity`, else
//! `reserve_capacity` + `poll_capacity`, then `send_data` of no more than granted), so
//! h2 never buffers more than its window and `max_send_buffer_size` allow. While the
//! client's window is closed the thread parks with the GIL released; h2 unparks it when
//! a WINDOW_UPDATE comes. Each wait is bounded by `--timeout` (the stream is then reset
//! with CANCEL and the app sees a client that went away), and stamps the heartbeat,
//! like an HTTP/1 write waiting for a slow reader.
//!
//! The head waits in the sink until the first body bytes or the end, as an HTTP/1
//! head waits in the writer's buffer; a body that fits the writer's buffer then goes
//! out as HEADERS + one DATA frame ending the stream ([`Sink::end_with`]), its h2
//! calls made [`quietly`]: after the app call the thread writes them out itself, or
//! the loop turns the connection when the thread hands the stream back
//! (`pool::H2Stream::finish`), so the calls need no wake-up of their own.

use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::server::SendResponse;
use h2::SendStream;
use pyo3::Python;

use super::h2conn::quietly;
use crate::wsgi::call::Sink;

/// The most one `send_data` carries: a piece of a large body.
const PIECE: usize = 64 * 1024;

/// Unparks the app thread waiting for capacity.
struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// One stream's response, for the app thread.
pub struct H2Sink {
    respond: SendResponse<Bytes>,
    /// The head, until the first body bytes or the end.
    head: Option<http::Response<()>>,
    send: Option<SendStream<Bytes>>,
    /// The connection's waker (its turn on the event loop).
    conn: Waker,
    /// Seconds a capacity wait may last (`--timeout`; 0 waits forever).
    timeout: u64,
}

fn h2_error(e: h2::Error) -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, e)
}

impl H2Sink {
    pub fn new(respond: SendResponse<Bytes>, conn: Waker, timeout: u64) -> H2Sink {
        H2Sink {
            respond,
            head: None,
            send: None,
            conn,
            timeout,
        }
    }

    /// The held head and the whole body, ending the stream, when flow control lets
    /// `last` go at once (true); otherwise the head only.
    fn end_held(&mut self, head: http::Response<()>, last: &[u8]) -> io::Result<bool> {
        if last.is_empty() {
            self.respond.send_response(head, true).map_err(h2_error)?;
            return Ok(true);
        }
        let mut stream = self.respond.send_response(head, false).map_err(h2_error)?;
        stream.reserve_capacity(last.len());
        if stream.capacity() >= last.len() {
            let body = Bytes::copy_from_slice(last);
            stream.send_data(body, true).map_err(h2_error)?;
            return Ok(true);
        }
        self.send = Some(stream);
        Ok(false)
    }

    /// Sends the held head (body bytes follow, so the stream stays open).
    fn open(&mut self) -> io::Result<()> {
        if let Some(head) = self.head.take() {
            self.send = Some(self.respond.send_response(head, false).map_err(h2_error)?);
        }
        Ok(())
    }

    /// Sends `data` as flow control allows (without the GIL).
    fn send_body(&mut self, mut data: &[u8]) -> io::Result<()> {
        self.open()?;
        let timeout = self.timeout;
        let stream = self
            .send
            .as_mut()
            .ok_or_else(|| io::Error::other("body before head"))?;
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut progress = Instant::now();
        while !data.is_empty() {
            let granted = stream.capacity();
            if granted > 0 {
                let n = granted.min(data.len());
                stream
                    .send_data(Bytes::copy_from_slice(&data[..n]), false)
                    .map_err(h2_error)?;
                data = &data[n..];
                progress = Instant::now();
                continue;
            }
            stream.reserve_capacity(data.len().min(PIECE));
            match stream.poll_capacity(&mut cx) {
                Poll::Ready(Some(Ok(_))) => {}
                Poll::Ready(Some(Err(e))) => return Err(h2_error(e)),
                Poll::Ready(None) => return Err(io::ErrorKind::BrokenPipe.into()),
                Poll::Pending => {
                    crate::scoreboard::beat();
                    std::thread::park_timeout(Duration::from_secs(1));
                    if timeout > 0 && progress.elapsed().as_secs() >= timeout {
                        stream.send_reset(h2::Reason::CANCEL);
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "client did not open its HTTP/2 window",
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// A regular file's bytes, read in pieces (HTTP/2 frames cannot be sendfile(2)d).
    fn send_file_pieces(&mut self, fd: RawFd, offset: u64, len: u64) -> io::Result<u64> {
        self.open()?;
        // SAFETY: the file belongs to the file object the caller holds a reference to.
        let file = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        let mut piece = vec![0u8; PIECE.min(len as usize)];
        let mut sent = 0u64;
        while sent < len {
            let want = (len - sent).min(piece.len() as u64) as usize;
            match nix::sys::uio::pread(file, &mut piece[..want], (offset + sent) as libc::off_t) {
                Ok(0) => break,
                Ok(n) => {
                    self.send_body(&piece[..n])?;
                    sent += n as u64;
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(sent)
    }
}

impl Sink for H2Sink {
    fn send(&mut self, py: Python<'_>, bytes: &[u8]) -> io::Result<()> {
        py.detach(|| self.send_body(bytes))
    }

    fn send_vectored(&mut self, py: Python<'_>, parts: &[&[u8]]) -> io::Result<()> {
        py.detach(|| parts.iter().try_for_each(|p| self.send_body(p)))
    }

    fn send_file(&mut self, py: Python<'_>, fd: RawFd, offset: u64, len: u64) -> io::Result<u64> {
        py.detach(|| self.send_file_pieces(fd, offset, len))
    }

    fn frames_itself(&self) -> bool {
        true
    }

    fn send_head(
        &mut self,
        _py: Python<'_>,
        status: u16,
        lines: &[u8],
        content_length: Option<u64>,
        body: bool,
    ) -> io::Result<()> {
        let head = crate::http::h2::response_head_from_lines(status, lines, content_length)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        if body {
            self.head = Some(head);
        } else {
            self.respond.send_response(head, true).map_err(h2_error)?;
        }
        Ok(())
    }

    fn end(&mut self, py: Python<'_>) -> io::Result<()> {
        self.end_with(py, &[])
    }

    /// The last body bytes end the stream: with the head still held and the bytes
    /// within the window, HEADERS and one DATA frame, made quietly (see the module
    /// docs); otherwise the bytes as any body's, then an empty DATA frame ending it.
    fn end_with(&mut self, py: Python<'_>, last: &[u8]) -> io::Result<()> {
        if let Some(head) = self.head.take() {
            if quietly(|| self.end_held(head, last))? {
                return Ok(());
            }
            // The window is short: the head went out quietly (h2 dropped the waker
            // it woke), so the loop must be told to send it while this thread waits.
            self.conn.wake_by_ref();
        }
        if !last.is_empty() {
            self.send(py, last)?;
        }
        match self.send.as_mut() {
            Some(stream) => quietly(|| stream.send_data(Bytes::new(), true)).map_err(h2_error),
            None => Ok(()),
        }
    }

    fn abort(&mut self) {
        match self.send.as_mut() {
            Some(stream) => stream.send_reset(h2::Reason::INTERNAL_ERROR),
            None => self.respond.send_reset(h2::Reason::INTERNAL_ERROR),
        }
    }
}
