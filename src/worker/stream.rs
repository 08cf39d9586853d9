//! A client socket of either family (TCP or unix), plain or TLS, as one type the
//! connection code reads, writes and registers without caring which. An enum, not a
//! trait object: the plain path costs one `match`, no allocation or indirect call.

use std::io::{self, Read, Write};
use std::sync::Arc;

use mio::net::{TcpStream, UnixStream};

use crate::tls::TlsStream;

/// A client socket of either family, or a TLS session over one.
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    /// Boxed: the session state is large, and only TLS connections pay for it.
    Tls(Box<TlsStream<Stream>>),
}

impl Stream {
    /// Wraps a freshly accepted socket in a TLS session.
    pub(super) fn into_tls(
        self,
        config: &Arc<rustls::ServerConfig>,
    ) -> Result<Stream, rustls::Error> {
        Ok(Stream::Tls(Box::new(TlsStream::new(self, config)?)))
    }

    pub fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            Stream::Tcp(s) => s,
            Stream::Unix(s) => s,
            Stream::Tls(t) => t.get_mut().source(),
        }
    }

    /// The TLS handshake chose HTTP/2 (ALPN `h2`).
    pub(super) fn negotiated_h2(&self) -> bool {
        match self {
            Stream::Tls(t) => t.alpn_protocol() == Some(b"h2"),
            _ => false,
        }
    }

    /// Writes the last bytes before the connection ends, telling a TCP socket more
    /// follows (`MSG_MORE`): the kernel holds back a short segment, which the
    /// `shutdown_write` in `Conn::shutdown` then sends with the FIN in one packet, not
    /// two. A connection closed after its response costs 8 TCP segments instead of 10
    /// (the client's ACK of the separate FIN goes too): 10% less server CPU per
    /// hello-close request (benches/README). Other sockets write as usual.
    pub(super) fn write_before_close(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => crate::sys::send_more(std::os::fd::AsRawFd::as_raw_fd(s), buf),
            _ => self.write(buf),
        }
    }

    /// [`write_before_close`](Self::write_before_close) holds bytes back on this socket.
    pub(super) fn holds_back_before_close(&self) -> bool {
        matches!(self, Stream::Tcp(_))
    }

    pub(super) fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// The read that just returned `n` of `asked` bytes emptied the socket, so the
    /// next read would only say `WouldBlock` until the next readable event: a plain
    /// socket's short read, or a TLS read that ended on one ([`TlsStream::ran_dry`]).
    pub(super) fn ran_dry(&self, n: usize, asked: usize) -> bool {
        match self {
            Stream::Tls(t) => t.ran_dry(),
            _ => n > 0 && n < asked,
        }
    }

    /// Encrypted output is still waiting for the socket (never, for plain sockets).
    pub(super) fn has_pending_output(&self) -> bool {
        match self {
            Stream::Tls(t) => t.has_pending_output(),
            _ => false,
        }
    }

    /// Ends the sending side: close_notify first over TLS.
    pub(super) fn shutdown_write(&mut self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Write),
            Stream::Tls(t) => {
                t.close_notify();
                t.get_mut().shutdown_write();
                Ok(())
            }
        };
    }

    /// The socket's descriptor, borrowed (for sendfile(2), which writes to it directly).
    pub(super) fn as_fd_for_sendfile(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
            Stream::Tls(t) => t.get_ref().as_fd_for_sendfile(),
        }
    }

    pub(super) fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
            Stream::Tls(t) => t.get_ref().raw_fd(),
        }
    }
}

impl Stream {
    /// Reads at most `max` (> 0) bytes onto the end of `buf`, within its spare
    /// capacity (> 0), as [`Read::read`] does: fewer than asked means the socket had
    /// no more for now. A plain socket reads straight into the spare capacity; TLS
    /// decrypts into zeroed room, a piece at a time (rustls copies its plaintext
    /// out anyway).
    pub(super) fn read_into(&mut self, buf: &mut Vec<u8>, max: usize) -> io::Result<usize> {
        let want = max.min(buf.capacity() - buf.len());
        let Stream::Tls(t) = self else {
            return crate::sys::read_to_spare(self.raw_fd(), buf, want);
        };
        let start = buf.len();
        while buf.len() < start + want {
            let from = buf.len();
            buf.resize(from + (start + want - from).min(TLS_PIECE), 0);
            match t.read(&mut buf[from..]) {
                Ok(n) => {
                    let asked = buf.len() - from;
                    buf.truncate(from + n);
                    if n < asked {
                        break;
                    }
                }
                Err(e) => {
                    buf.truncate(from);
                    if buf.len() == start {
                        return Err(e);
                    }
                    break;
                }
            }
        }
        Ok(buf.len() - start)
    }
}

/// The most a TLS read into a body zeroes and asks for at once.
const TLS_PIECE: usize = 64 * 1024;

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
            Stream::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
            Stream::Tls(t) => t.write(buf),
        }
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            Stream::Unix(s) => s.write_vectored(bufs),
            Stream::Tls(t) => t.write_vectored(bufs),
        }
    }
    /// Plain sockets have nothing buffered; TLS sends pending records as far as the
    /// socket takes them without blocking.
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tls(t) => t.flush(),
            _ => Ok(()),
        }
    }
}
