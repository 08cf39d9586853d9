//! A file queued behind a connection's output (ASGI `http.response.pathsend`): it is
//! written as the socket takes it, with sendfile(2) on a plain socket, and in
//! pieces through the write buffer over TLS (sendfile cannot encrypt) or under
//! `--no-sendfile`. The event loop never blocks on it: a slow client just leaves it
//! queued, as any other output.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use super::{Conn, READ_MAX};

/// The part of a file still to send.
pub struct FileTail {
    file: File,
    offset: u64,
    left: u64,
    sendfile: bool,
    /// Output queued while the file is still going out (the next pipelined response).
    pub(super) after: Vec<u8>,
}

impl Conn {
    /// Queues `len` bytes of `file` from `offset`, behind the output already queued.
    /// Nothing is written here; [`flush`](Conn::flush) does that.
    pub fn queue_file(&mut self, file: File, offset: u64, len: u64, sendfile: bool) {
        if len == 0 {
            return;
        }
        let sendfile = sendfile && !self.stream.is_tls();
        self.file_tail = Some(FileTail {
            file,
            offset,
            left: len,
            sendfile,
            after: Vec::new(),
        });
    }

    /// Bytes of a queued file not yet sent.
    pub(super) fn file_left(&self) -> u64 {
        self.file_tail
            .as_ref()
            .map_or(0, |t| t.left + t.after.len() as u64)
    }

    /// The file is sent: what was queued behind it becomes the write buffer.
    fn file_done(&mut self) {
        if let Some(tail) = self.file_tail.take() {
            if !tail.after.is_empty() {
                self.wbuf.extend_from_slice(&tail.after);
            }
        }
    }

    /// Moves the queued file on, once the write buffer is empty: with sendfile until
    /// the socket would block (Ok(false)) or the file is sent; otherwise one piece into
    /// the write buffer for [`flush`](Conn::flush) to write (Ok(true): go on).
    pub(super) fn advance_file(&mut self) -> io::Result<bool> {
        let Some(tail) = self.file_tail.as_mut() else {
            return Ok(true);
        };
        if !tail.sendfile {
            let want = tail.left.min(READ_MAX as u64) as usize;
            let mut piece = std::mem::take(&mut self.wbuf);
            piece.clear();
            piece.resize(want, 0);
            let n = pread_some(&tail.file, &mut piece, tail.offset)?;
            piece.truncate(n);
            self.wbuf = piece;
            self.wpos = 0;
            tail.offset += n as u64;
            tail.left -= n as u64;
            if tail.left == 0 {
                self.file_done();
            }
            return Ok(true);
        }
        while tail.left > 0 {
            let sock = self.stream.as_fd_for_sendfile();
            match sendfile_some(sock, tail.file.as_fd(), tail.offset, tail.left)? {
                None => return Ok(false),
                Some(0) => return Err(file_shrank()),
                Some(n) => {
                    tail.offset += n;
                    tail.left -= n;
                    self.last_activity = crate::sys::monotonic_millis();
                }
            }
        }
        self.file_done();
        Ok(true)
    }
}

/// One sendfile(2) of up to `left` bytes of `file` from `offset` to `sock` (retried
/// when interrupted): the bytes sent (0: the file ended there), or None when the
/// socket would block. Both the WSGI file_wrapper path and pathsend send with it.
pub(super) fn sendfile_some(
    sock: BorrowedFd<'_>,
    file: BorrowedFd<'_>,
    offset: u64,
    left: u64,
) -> io::Result<Option<u64>> {
    let count = left.min(1 << 30) as usize;
    loop {
        let mut position = offset as libc::off64_t;
        match nix::sys::sendfile::sendfile64(sock, file, Some(&mut position), count) {
            Ok(n) => return Ok(Some(n as u64)),
            Err(nix::errno::Errno::EAGAIN) => return Ok(None),
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// pread(2) of at least one byte: a file that ends before its announced length
/// would leave the response short, so that is an error (the connection closes).
fn pread_some(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
    loop {
        match file.read_at(buf, offset) {
            Ok(0) => return Err(file_shrank()),
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn file_shrank() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the file sent with pathsend became shorter while it was sent",
    )
}
