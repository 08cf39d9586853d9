//! What the event loop and the app threads share of one HTTP/2 connection ([`Wire`]):
//! h2's connection state and the socket, behind one mutex.
//!
//! The loop holds it for each turn. An app thread whose stream has ended takes it too,
//! if free ([`Wire::push_out`]): it lets h2 encode the stream's last frames and writes
//! them through TLS to the socket itself, as an HTTP/1 thread writes its response, so
//! the loop is not woken for a response that is complete. With one stream per
//! connection that wake-up was a context switch and an eventfd write per request.
//! Whatever the thread cannot finish on its own (the loop is mid-turn, h2 has input
//! to read, the socket is full, h2 ended the connection) it leaves to the loop, which
//! it then wakes as before.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::task::{Context, Waker};

use super::transport::{lock, Buffers, ConnWaker, OUT_HIGH_WATER};
use super::State;
use crate::worker::stream::Stream;

/// h2's connection and the socket: touched only under [`Wire::io`]'s lock.
pub(super) struct Io {
    pub(super) state: State,
    pub(super) stream: Stream,
    /// The loop closed the connection: threads leave it alone.
    pub(super) closed: bool,
}

/// One connection's shared part; app threads hold it weakly (a closed connection's
/// socket closes with the loop's entry, not with the last stream).
pub struct Wire {
    pub(super) io: Mutex<Io>,
    pub(super) bufs: Arc<Mutex<Buffers>>,
    pub(super) waker: Arc<ConnWaker>,
    /// Set by the loop while a stream's end must reach it at once (streams wait for
    /// a thread, or the connection is ending); otherwise a thread that wrote its
    /// stream's end hands it back without a wake-up, and the loop takes it back on
    /// its next turn, as for HTTP/1 keep-alive.
    urgent: AtomicBool,
    /// Streams out on app threads (counted at dispatch, and when a thread ends one).
    running: AtomicUsize,
}

/// What a write of `outbound` did.
pub(super) struct Flushed {
    /// Bytes went to the socket.
    pub(super) wrote: bool,
    /// `outbound` had reached [`OUT_HIGH_WATER`]: h2 may have stopped writing.
    pub(super) was_full: bool,
    /// Bytes are left for a writable event.
    pub(super) left: bool,
}

impl Wire {
    pub(super) fn new(io: Io, bufs: Arc<Mutex<Buffers>>, waker: Arc<ConnWaker>) -> Wire {
        Wire {
            io: Mutex::new(io),
            bufs,
            waker,
            urgent: AtomicBool::new(false),
            running: AtomicUsize::new(0),
        }
    }

    /// A stream goes to an app thread.
    pub(super) fn dispatched(&self) {
        self.running.fetch_add(1, Ordering::Relaxed);
    }

    /// An app thread ended its stream: true when it was the only one out. Only then
    /// does the thread write the end itself; while others run, the loop's turn
    /// gathers their ends into fewer TLS records and writes (the old way).
    pub fn ended_last(&self) -> bool {
        self.running.fetch_sub(1, Ordering::AcqRel) == 1
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Io> {
        self.io.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The loop's side of [`urgent`](Self::urgent). Setting it is followed by a full
    /// fence, and so is a thread's hand-back before it reads the flag: either the thread
    /// sees it, or the loop's next collection sees the thread's stream. True when it
    /// was just set (the loop must then collect once more).
    pub(super) fn set_urgent(&self, on: bool) -> bool {
        if self.urgent.load(Ordering::Relaxed) == on {
            return false;
        }
        self.urgent.store(on, Ordering::SeqCst);
        std::sync::atomic::fence(Ordering::SeqCst);
        on
    }

    /// Whether the loop must hear of a stream's end at once (read after the
    /// hand-back and a full fence, see [`set_urgent`](Self::set_urgent)).
    pub fn is_urgent(&self) -> bool {
        self.urgent.load(Ordering::SeqCst)
    }

    /// Gives the connection a turn on the loop (what [`push_out`](Self::push_out)
    /// could not do, the turn does).
    pub fn wake_loop(&self) {
        std::task::Wake::wake_by_ref(&self.waker);
    }

    /// On an app thread, after its stream's last h2 calls (made quietly): h2 encodes
    /// what they queued and it goes to the socket. True when it all went and nothing
    /// is left for the loop; false when the loop must take a turn for it.
    pub fn push_out(&self) -> bool {
        let mut io = match self.io.try_lock() {
            Ok(io) => io,
            // The loop is mid-turn (it may have polled h2 before these frames were
            // queued), or a thread panicked: the loop's turn sends them.
            Err(TryLockError::WouldBlock) | Err(TryLockError::Poisoned(_)) => return false,
        };
        if io.closed {
            return true;
        }
        if !lock(&self.bufs).inbound.is_empty() {
            // h2 would read: new streams are for the loop to take.
            return false;
        }
        let Io { state, stream, .. } = &mut *io;
        let State::Open(conn) = state else {
            return false;
        };
        let waker = Waker::from(self.waker.clone());
        let mut cx = Context::from_waker(&waker);
        if conn.poll_closed(&mut cx).is_ready() {
            return false;
        }
        match flush(stream, &self.bufs) {
            Ok(f) => !f.left && !f.was_full,
            Err(_) => false,
        }
    }
}

/// Writes `outbound` to the socket until it would block, then TLS's pending records.
pub(super) fn flush(stream: &mut Stream, bufs: &Mutex<Buffers>) -> io::Result<Flushed> {
    let mut b = lock(bufs);
    let mut written = 0;
    while written < b.outbound.len() {
        match stream.write(&b.outbound[written..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let was_full = b.outbound.len() >= OUT_HIGH_WATER;
    if written > 0 {
        b.outbound.drain(..written);
    }
    let left_plain = !b.outbound.is_empty();
    drop(b);
    stream.flush()?;
    Ok(Flushed {
        wrote: written > 0,
        was_full: was_full && written > 0,
        left: left_plain || stream.has_pending_output(),
    })
}
