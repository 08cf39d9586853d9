//! A non-blocking TLS connection: plaintext `Read`/`Write` over a socket that may
//! answer `WouldBlock` at any point, handshake included.
//!
//! Readiness is edge-triggered, so a read here never stops while bytes it could use
//! are still in the socket or decrypted in rustls: it fills the caller's buffer or
//! runs the socket dry. Records rustls has produced but the socket has not taken yet
//! are [`has_pending_output`](TlsStream::has_pending_output); the connection counts
//! them as queued output, so it neither closes nor idles with a response half-sent.

use std::io::{self, Read, Write};
use std::sync::Arc;

use rustls::{ServerConfig, ServerConnection};

/// A server-side TLS session over the socket `S`.
pub struct TlsStream<S> {
    sock: S,
    tls: ServerConnection,
    /// The last socket read returned less than rustls asked for: the socket was
    /// empty then, and bytes arriving since raise a new readiness event.
    short: bool,
    /// The last [`Read::read`] ended because the socket ran dry (not on an error, an
    /// end of stream or a full buffer), so another read would only say `WouldBlock`.
    dry: bool,
}

/// The socket as rustls reads it, noting a short read.
struct Noting<'a, S> {
    sock: &'a mut S,
    short: &'a mut bool,
}

impl<S: Read> Read for Noting<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.sock.read(buf)?;
        // 0 is the end of stream, not an empty socket.
        *self.short = n > 0 && n < buf.len();
        Ok(n)
    }
}

impl<S: Read + Write> TlsStream<S> {
    /// Starts a session on a freshly accepted socket; the handshake happens as the
    /// connection is read and written.
    pub fn new(sock: S, config: &Arc<ServerConfig>) -> Result<TlsStream<S>, rustls::Error> {
        Ok(TlsStream {
            sock,
            tls: ServerConnection::new(config.clone())?,
            short: false,
            dry: false,
        })
    }

    pub fn get_ref(&self) -> &S {
        &self.sock
    }

    pub fn get_mut(&mut self) -> &mut S {
        &mut self.sock
    }

    /// The last read ran the socket dry: until the next readable event another read
    /// would only cost a `recvfrom` that says `WouldBlock`.
    pub fn ran_dry(&self) -> bool {
        self.dry
    }

    /// Encrypted bytes are waiting for the socket to take them.
    pub fn has_pending_output(&self) -> bool {
        self.tls.wants_write()
    }

    /// Writes pending records until none is left or the socket would block.
    pub fn push(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.sock) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Queues close_notify and sends what the socket takes now (best effort: the
    /// connection is closing either way).
    /// The protocol ALPN settled on (`--http-protocols`), once the client's hello
    /// is processed; `None` without ALPN.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.tls.alpn_protocol()
    }

    pub fn close_notify(&mut self) {
        self.tls.send_close_notify();
        let _ = self.push();
    }

    /// Reads records from the socket into rustls and processes them (handshake
    /// messages are answered at once). `Ok(false)`: the socket would block.
    fn read_records(&mut self) -> io::Result<bool> {
        loop {
            let mut sock = Noting {
                sock: &mut self.sock,
                short: &mut self.short,
            };
            match self.tls.read_tls(&mut sock) {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let processed = self.tls.process_new_packets();
        // Handshake replies, or the alert explaining a failure to the client.
        let pushed = self.push();
        if let Err(e) = processed {
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        pushed.map(|_| true)
    }
}

impl<S: Read + Write> Read for TlsStream<S> {
    /// Plaintext into `buf` until it is full, the socket would block, or the peer
    /// closed. A close without close_notify (a "ragged EOF") reads as a plain end of
    /// stream, as Gunicorn's `suppress_ragged_eofs` (default on) has it.
    /// A short socket read has run it dry: the read ends there instead of asking it
    /// again only to hear `WouldBlock` ([`TlsStream::ran_dry`] then says so).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        self.dry = false;
        self.short = false;
        loop {
            match self.tls.reader().read(&mut buf[filled..]) {
                Ok(0) => return Ok(filled),
                Ok(n) => {
                    filled += n;
                    if filled == buf.len() {
                        return Ok(filled);
                    }
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(filled),
                Err(e) => return Err(e),
            }
            if self.short && filled > 0 {
                self.dry = true;
                return Ok(filled);
            }
            match self.read_records() {
                Ok(true) => {}
                Ok(false) if filled > 0 => {
                    self.dry = true;
                    return Ok(filled);
                }
                Ok(false) => {
                    self.dry = true;
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Err(_) if filled > 0 => return Ok(filled),
                Err(e) => return Err(e),
            }
        }
    }
}

impl<S: Read + Write> Write for TlsStream<S> {
    /// Encrypts what rustls' send buffer takes and sends what the socket takes;
    /// `WouldBlock` when the buffer is full (the socket is, too: a writable event
    /// follows).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.push()?;
        let n = self.tls.writer().write(buf)?;
        self.push()?;
        if n == 0 && !buf.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.push()?;
        let n = self.tls.writer().write_vectored(bufs)?;
        self.push()?;
        if n == 0 && bufs.iter().any(|b| !b.is_empty()) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    /// Sends pending records as far as the socket takes them without blocking.
    fn flush(&mut self) -> io::Result<()> {
        self.push()
    }
}
