//! h2's side of an HTTP/2 connection's I/O: the in-memory transport it reads and
//! writes ([`MemIo`]), and the waker that gives the connection a turn on the event loop
//! ([`ConnWaker`], [`WakeList`]). See the parent module for how they fit.

use std::cell::Cell;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Output h2 may queue before its writes wait for the socket.
pub const OUT_HIGH_WATER: usize = 256 * 1024;

/// The two buffers h2 reads from and writes to, shared with the connection.
#[derive(Default)]
pub struct Buffers {
    pub inbound: BytesMut,
    pub outbound: Vec<u8>,
}

/// h2's transport: the worker's buffers, never the socket.
pub struct MemIo(pub Arc<Mutex<Buffers>>);

pub fn lock(bufs: &Mutex<Buffers>) -> std::sync::MutexGuard<'_, Buffers> {
    bufs.lock().unwrap_or_else(|e| e.into_inner())
}

impl AsyncRead for MemIo {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut b = lock(&self.0);
        if b.inbound.is_empty() {
            // The loop polls again after its next read from the socket.
            return Poll::Pending;
        }
        let n = b.inbound.len().min(buf.remaining());
        buf.put_slice(&b.inbound[..n]);
        b.inbound.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for MemIo {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut b = lock(&self.0);
        if b.outbound.len() >= OUT_HIGH_WATER {
            // The loop polls again once the socket has taken some.
            return Poll::Pending;
        }
        b.outbound.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Connections that asked for a turn (h2 woke them), shared with the app threads.
pub struct WakeList {
    queued: Mutex<Vec<usize>>,
    mio: Arc<mio::Waker>,
}

impl WakeList {
    pub fn new(mio: Arc<mio::Waker>) -> Arc<WakeList> {
        Arc::new(WakeList {
            queued: Mutex::new(Vec::new()),
            mio,
        })
    }

    /// The slots woken since the last call.
    pub fn take(&self) -> Vec<usize> {
        std::mem::take(&mut *self.queued.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

thread_local! {
    /// Set while an app thread makes its stream's last h2 calls (see [`quietly`]).
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` (h2 calls on an app thread) with connection wake-ups suppressed on this
/// thread. Only for a thread that is about to hand its stream back: it then writes
/// the frames out itself ([`super::Wire::push_out`]), or the loop turns the stream's
/// connection for the hand-back (`h2_stream_done`), after these calls, so the wake-up
/// (a write to the loop's eventfd, and a turn of its own) would be spent twice.
/// h2 *takes* the waker it wakes, so until that turn polls the connection again other
/// threads' calls on it wake nothing; that turn, which follows at once, serves them too.
pub fn quietly<R>(f: impl FnOnce() -> R) -> R {
    /// Ends the quiet even when `f` unwinds.
    struct Loud;
    impl Drop for Loud {
        fn drop(&mut self) {
            QUIET.with(|q| q.set(false));
        }
    }
    QUIET.with(|q| q.set(true));
    let _loud = Loud;
    f()
}

/// The waker h2 holds for one connection: queues its slot once until its turn.
pub struct ConnWaker {
    index: usize,
    /// Queued and not yet turned (cleared when the turn starts).
    pub pending: AtomicBool,
    list: Arc<WakeList>,
}

impl ConnWaker {
    pub fn new(index: usize, list: Arc<WakeList>) -> ConnWaker {
        ConnWaker {
            index,
            pending: AtomicBool::new(false),
            list,
        }
    }
}

impl Wake for ConnWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }
    fn wake_by_ref(self: &Arc<Self>) {
        if QUIET.with(Cell::get) {
            return;
        }
        if !self.pending.swap(true, Ordering::AcqRel) {
            self.list
                .queued
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(self.index);
            let _ = self.list.mio.wake();
        }
    }
}
