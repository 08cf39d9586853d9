//! One HTTP/2 connection (TLS with ALPN `h2`, or cleartext h2c), driven by hand from the mio loop.
//!
//! The `h2` crate does framing, HPACK, stream states and flow control; it wants an
//! `AsyncRead + AsyncWrite` and a task context, but spawns nothing and sets no timers,
//! so no async runtime is needed:
//!
//! - **I/O.** h2 reads and writes [`MemIo`], two in-memory buffers. A turn
//!   ([`H2Conn::turn`]) reads the socket (through rustls) into `inbound`, polls h2,
//!   which consumes `inbound` and appends frames to `outbound`, and writes `outbound` to
//!   the socket; bytes left make the loop watch for writability, as for HTTP/1. A
//!   full `outbound` ([`transport::OUT_HIGH_WATER`]) makes `poll_write` pending, and h2 then stops
//!   reading too: a client that does not read cannot make the server buffer.
//! - **Wake-ups.** The connection is polled with a waker ([`ConnWaker`]) that queues its
//!   slot and wakes the worker's `mio::Waker`. App threads call h2's `SendStream`
//!   directly (its state is shared under a mutex); when that queues frames, h2 wakes
//!   the connection's waker and the loop takes a turn for it. A thread whose stream
//!   was the connection's only one out instead writes its end itself when the loop is
//!   not using the connection ([`wire`]: h2's state and the socket are shared under
//!   one lock), and hands the stream back without waking the loop.
//! - **Streams.** A stream is dispatched as a job for the gthread pool only when its
//!   request is complete (body received into a [`BodyBuffer`], in memory then spooled),
//!   so a slow client costs a buffer, not a thread. At most
//!   `--http2-max-concurrent-streams` jobs per connection are out at once; the rest
//!   wait here in `ready`.
//!
//! - **Abuse** ([`abuse`]). A frame tap ([`FrameTap`]) counts the client's frames as
//!   they are read: floods of RST_STREAM (rapid reset) or of PING/SETTINGS/PRIORITY/empty
//!   DATA, and streams piling up while reset, end the connection with
//!   GOAWAY(ENHANCE_YOUR_CALM), as h2's own limits do (CONTINUATION floods, resets of
//!   unaccepted streams, HPACK sizes); the worker serves everyone else.
//!
//! The entry stays in the event loop's table for the connection's whole life
//! (`Slot::H2`); HTTP/1 instead checks the whole connection out to a thread.
//! Cleartext connections get here too (h2c, trusted peers only, see
//! `worker/conn/h2c.rs`): with the preface (prior knowledge), or after an
//! `Upgrade: h2c` request, which [`upgrade`] serves as stream 1.
//! [`streams`] holds the request side of streams, [`transport`] h2's I/O and waker.

use std::collections::VecDeque;
use std::future::Future;
use std::io::{self, Read};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use h2::server::{Connection, Handshake, SendResponse};
use h2::RecvStream;

use super::stream::Stream;
use crate::config::http2::Http2Config;
use crate::config::proxy::ProxyConfig;
use crate::http::body::{Body, BodyBuffer};
use crate::http::h2::FrameTap;
use crate::http::request::{Head, Limits};

use crate::wsgi::environ::Peer;

/// Input read ahead of h2 in one go; reading resumes when it has consumed it.
const IN_HIGH_WATER: usize = 256 * 1024;
/// What h2 buffers per stream beyond the flow-control window (its default is 400 KB).
const SEND_BUFFER: usize = 256 * 1024;
/// The connection-level receive window: several streams' bodies may arrive at once.
const CONNECTION_WINDOW: u32 = 1024 * 1024;
/// Read → poll → write rounds in one turn before other connections get theirs.
const ROUNDS_PER_TURN: usize = 8;

enum State {
    Handshaking(Handshake<MemIo, Bytes>),
    Open(Connection<MemIo, Bytes>),
    /// h2 is done (closed cleanly or on an error): close once `outbound` is written.
    Done,
}

/// A stream whose request body is still arriving.
struct Receiving {
    head: Box<Head>,
    recv: RecvStream,
    respond: SendResponse<Bytes>,
    buffer: BodyBuffer,
}

/// A complete request for an app thread.
pub struct ReadyStream {
    pub head: Box<Head>,
    pub body: Body,
    pub respond: SendResponse<Bytes>,
}

/// What the loop does after a turn.
#[derive(Debug, PartialEq, Eq)]
pub enum Turn {
    /// Keep it; watch for writability when it has output left.
    Wait,
    Close,
}

pub struct H2Conn {
    /// Unique in the worker: a finished stream's slot may hold another connection by
    /// the time it comes back.
    pub id: u64,
    pub peer: Peer,
    bufs: Arc<Mutex<Buffers>>,
    /// h2's state and the socket, shared with app threads ending streams ([`wire`]).
    wire: Arc<Wire>,
    /// What [`Wire::set_urgent`] was last given.
    urgent: bool,
    /// GOAWAY was asked for: the connection ends once its streams are done.
    ending: bool,
    /// As the last turn left them (read after it without taking the wire's lock,
    /// which an app thread ending a stream just dispatched may hold by then):
    /// output is queued, and h2's connection is open.
    output_left: bool,
    open: bool,
    receiving: Vec<Receiving>,
    ready: VecDeque<ReadyStream>,
    /// Refused streams whose clients are still sending: reset once the page is out.
    resets: Vec<SendResponse<Bytes>>,
    /// Streams out on app threads.
    pub running: usize,
    max_running: usize,
    waker: Arc<ConnWaker>,
    /// Coarse monotonic milliseconds of the last bytes moved.
    pub last_activity: u64,
    pub write_interest: bool,
    read_closed: bool,
    /// An event said the client closed its side: reads go on to the end of stream
    /// instead of stopping at a short read (the FIN raises no event of its own).
    fin_seen: bool,
    /// The socket may hold bytes not read yet: a readable event came, or a turn
    /// stopped at [`IN_HIGH_WATER`]. Without it a turn does not read: readiness is
    /// edge-triggered and the last read ran the socket dry, so a read would only say
    /// `EAGAIN` (turns for app threads' output are most turns).
    unread: bool,
    /// The scratch buffer socket reads land in.
    scratch: Box<[u8]>,
    /// Counts the client's frames against the flood limits.
    tap: FrameTap,
    /// [`FrameTap::resets_seen`] when the waiting streams were last checked.
    resets_checked: u64,
    /// Header blocks h2 is done with: each opened a stream it handed over, or h2
    /// read it and had no stream to hand over for it (trailers, a refusal). While
    /// [`FrameTap::header_blocks`] is no higher, h2 has no stream waiting.
    blocks_done: u64,
    /// Our side is shut after a GOAWAY for abuse; input is discarded until EOF.
    lingering: bool,
    /// A limit was passed: GOAWAY(ENHANCE_YOUR_CALM) is due, then the close.
    calm: Calm,
    /// h2c Upgrade: the request waiting to be stream 1 ([`upgrade`]).
    upgrading: Option<Box<upgrade::Upgrade>>,
}

/// The abuse verdict on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Calm {
    Fine,
    /// GOAWAY(ENHANCE_YOUR_CALM) as soon as h2 can send it.
    Due,
    Sent,
}

impl H2Conn {
    /// Starts the server side of HTTP/2 on a connection whose TLS handshake chose
    /// `h2`; `read` holds what was already read (the start of the preface).
    pub fn new(
        stream: Stream,
        peer: Peer,
        read: Vec<u8>,
        settings: &Http2Config,
        index: usize,
        wakes: Arc<WakeList>,
    ) -> H2Conn {
        let bufs = Arc::new(Mutex::new(Buffers {
            inbound: BytesMut::from(&read[..]),
            outbound: Vec::new(),
        }));
        let mut builder = h2::server::Builder::new();
        builder
            .max_concurrent_streams(settings.max_concurrent_streams)
            .initial_window_size(settings.initial_window_size)
            .initial_connection_window_size(CONNECTION_WINDOW.max(settings.initial_window_size))
            .max_frame_size(settings.max_frame_size)
            .max_send_buffer_size(SEND_BUFFER);
        if settings.max_header_list_size > 0 {
            builder.max_header_list_size(settings.max_header_list_size);
        }
        let handshake = builder.handshake(MemIo(bufs.clone()));
        static IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let waker = Arc::new(ConnWaker::new(index, wakes));
        let io = Io {
            state: State::Handshaking(handshake),
            stream,
            closed: false,
        };
        H2Conn {
            id: IDS.fetch_add(1, Ordering::Relaxed),
            peer,
            wire: Arc::new(Wire::new(io, bufs.clone(), waker.clone())),
            urgent: false,
            ending: false,
            output_left: false,
            open: false,
            bufs,
            receiving: Vec::new(),
            ready: VecDeque::new(),
            resets: Vec::new(),
            running: 0,
            max_running: settings.max_concurrent_streams as usize,
            waker,
            last_activity: crate::sys::monotonic_millis(),
            write_interest: false,
            read_closed: false,
            fin_seen: false,
            unread: true,
            scratch: vec![0u8; 16 * 1024].into_boxed_slice(),
            tap: FrameTap::new(crate::sys::monotonic_millis()),
            resets_checked: 0,
            blocks_done: 0,
            lingering: false,
            calm: Calm::Fine,
            upgrading: None,
        }
        .with_read(&read)
    }

    /// Counts the bytes read before the switch (the start of the preface).
    fn with_read(mut self, read: &[u8]) -> H2Conn {
        let now = crate::sys::monotonic_millis();
        if let Err(flood) = self.tap.feed(read, now) {
            self.too_much(&flood.to_string());
        }
        self
    }

    /// Output not yet taken by the socket.
    /// Output not yet taken by the socket, as the last turn left it.
    pub fn has_output(&self) -> bool {
        self.output_left
    }

    /// Registers for writable events exactly while `want`.
    pub fn watch_writes(
        &mut self,
        registry: &mio::Registry,
        index: usize,
        want: bool,
    ) -> io::Result<()> {
        if want == self.write_interest {
            return Ok(());
        }
        let mut io = self.wire.lock();
        let current = &mut self.write_interest;
        super::event_loop::set_write_interest(registry, &mut io.stream, index, want, current)
    }

    /// What [`has_output`](Self::has_output) and [`update_urgent`](Self::update_urgent)
    /// read after the turn.
    fn note_io(&mut self, io: &Io) -> bool {
        self.output_left = !lock(&self.bufs).outbound.is_empty() || io.stream.has_pending_output();
        self.open = matches!(io.state, State::Open(_));
        self.output_left
    }

    /// The shared part, for the app thread that serves one of its streams (counted
    /// as out until the thread ends it, see [`Wire::ended_last`]).
    pub fn wire_for_thread(&self) -> std::sync::Weak<Wire> {
        self.wire.dispatched();
        Arc::downgrade(&self.wire)
    }

    /// What [`update_urgent`](Self::update_urgent) last decided.
    pub fn is_urgent(&self) -> bool {
        self.urgent
    }

    /// Tells app threads whether a stream's end must wake the loop (streams wait for
    /// a thread, or the connection is ending). True when that was just turned on: the
    /// loop must then look for finished streams once more (see [`Wire::set_urgent`]).
    pub fn update_urgent(&mut self) -> bool {
        let urgent = !self.ready.is_empty()
            || self.ending
            || self.read_closed
            || self.calm != Calm::Fine
            || self.upgrading.is_some()
            || !self.open;
        if urgent == self.urgent {
            return false;
        }
        self.urgent = urgent;
        self.wire.set_urgent(urgent)
    }

    /// The socket reported readiness: the next turn reads it.
    pub fn note_readable(&mut self) {
        self.unread = true;
    }

    /// The event said the client closed its side: the next turn reads to the end.
    pub fn note_read_closed(&mut self) {
        self.fin_seen = true;
        self.unread = true;
    }

    /// Woken since its last turn (a wake-up that came before a turn began is served by
    /// that turn, which saw what the waker saw: h2's state is behind one mutex).
    pub fn wants_turn(&self) -> bool {
        self.waker.pending.load(Ordering::Acquire)
    }

    /// Ended for abuse, waiting for the client to close (see `turn`).
    pub fn is_lingering(&self) -> bool {
        self.lingering
    }

    /// Nothing in flight: no stream receiving, waiting or running.
    pub fn is_idle(&self) -> bool {
        self.running == 0 && self.receiving.is_empty() && self.ready.is_empty()
    }

    /// A complete request to dispatch, unless this connection already has its
    /// share of jobs out.
    pub fn next_ready(&mut self) -> Option<ReadyStream> {
        if self.running >= self.max_running || self.calm != Calm::Fine {
            return None;
        }
        let ready = self.ready.pop_front()?;
        self.running += 1;
        Some(ready)
    }

    /// An app thread finished one of this connection's streams.
    pub fn stream_done(&mut self) {
        self.running = self.running.saturating_sub(1);
    }

    /// GOAWAY: no new streams; open ones finish, then the connection closes.
    pub fn graceful_shutdown(&mut self) {
        self.ending = true;
        if let State::Open(conn) = &mut self.wire.lock().state {
            conn.graceful_shutdown();
        }
    }

    /// GOAWAY now, dropping open streams (idle timeout, shutdown).
    pub fn abrupt_shutdown(&mut self) {
        self.ending = true;
        if let State::Open(conn) = &mut self.wire.lock().state {
            conn.abrupt_shutdown(h2::Reason::NO_ERROR);
        }
    }

    /// The waker h2 gets with this connection's polls.
    pub fn waker(&self) -> Waker {
        Waker::from(self.waker.clone())
    }

    /// Reads, lets h2 work, receives bodies and writes, in rounds until nothing moves.
    pub fn turn(&mut self, limits: &Limits, proxy: &ProxyConfig) -> Turn {
        self.waker.pending.store(false, Ordering::Release);
        let wire = self.wire.clone();
        let mut io = wire.lock();
        for _ in 0..ROUNDS_PER_TURN {
            if let Err(e) = self.read_socket(&mut io) {
                tracing::debug!("HTTP/2 connection from {:?}: {e}", self.peer.remote);
                return Turn::Close;
            }
            if !self.splice_upgrade() {
                // h2 waits for the upgraded client's preface and SETTINGS.
                let failed = self.flush_io(&mut io).is_err() || self.read_closed;
                self.note_io(&io);
                return if failed { Turn::Close } else { Turn::Wait };
            }
            self.poll_h2(&mut io, limits, proxy);
            self.receive_bodies(limits);
            self.check_waiting();
            if !self.resets.is_empty() {
                // The refusals' pages were queued: h2 writes them on this poll.
                self.poll_h2(&mut io, limits, proxy);
                for mut respond in self.resets.drain(..) {
                    respond.send_reset(h2::Reason::NO_ERROR);
                }
                self.poll_h2(&mut io, limits, proxy);
            }
            if self.flush_io(&mut io).is_err() {
                return Turn::Close;
            }
            let more_input = self.unread && lock(&self.bufs).inbound.len() < IN_HIGH_WATER;
            if !more_input {
                break;
            }
        }
        if self.unread {
            // Stopped for fairness with bytes left: come back soon.
            self.waker().wake();
        }
        let done = matches!(io.state, State::Done) || (self.read_closed && self.is_idle());
        if !self.note_io(&io) && done {
            if self.calm == Calm::Fine || self.read_closed {
                return Turn::Close;
            }
            // Ended for abuse: close our side after the GOAWAY, and discard what the
            // client still sends until it closes too (or the keep-alive sweep ends
            // it), so no reset destroys the GOAWAY on its way.
            if !self.lingering {
                self.lingering = true;
                io.stream.shutdown_write();
            }
        }
        Turn::Wait
    }

    /// Reads the socket into `inbound` until it would block or h2 has enough ahead.
    fn read_socket(&mut self, io: &mut Io) -> io::Result<()> {
        if self.calm != Calm::Fine {
            self.discard_input(&mut io.stream);
            return Ok(());
        }
        if !self.unread {
            return Ok(());
        }
        while !self.read_closed {
            if lock(&self.bufs).inbound.len() >= IN_HIGH_WATER {
                self.unread = true;
                return Ok(());
            }
            match io.stream.read(&mut self.scratch) {
                Ok(0) => self.read_closed = true,
                Ok(n) => {
                    let now = crate::sys::monotonic_millis();
                    lock(&self.bufs)
                        .inbound
                        .extend_from_slice(&self.scratch[..n]);
                    self.last_activity = now;
                    if let Err(flood) = self.tap.feed(&self.scratch[..n], now) {
                        self.too_much(&flood.to_string());
                    }
                    // Emptied: asking again would only hear `WouldBlock`.
                    if !self.fin_seen && io.stream.ran_dry(n, self.scratch.len()) {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.unread = false;
        Ok(())
    }

    /// Drives h2: the handshake, then new streams until it has nothing more.
    fn poll_h2(&mut self, io: &mut Io, limits: &Limits, proxy: &ProxyConfig) {
        let waker = self.waker();
        let mut cx = Context::from_waker(&waker);
        if let State::Handshaking(hs) = &mut io.state {
            match Pin::new(hs).poll(&mut cx) {
                Poll::Ready(Ok(conn)) => io.state = State::Open(conn),
                Poll::Ready(Err(e)) => {
                    tracing::debug!("HTTP/2 handshake with {:?} failed: {e}", self.peer.remote);
                    io.state = State::Done;
                }
                Poll::Pending => return,
            }
        }
        loop {
            let State::Open(conn) = &mut io.state else {
                return;
            };
            if self.calm == Calm::Due {
                conn.abrupt_shutdown(h2::Reason::ENHANCE_YOUR_CALM);
                self.calm = Calm::Sent;
            }
            match conn.poll_accept(&mut cx) {
                Poll::Ready(Some(Ok((request, respond)))) => {
                    let quiet = self.accept_stream(request, respond, limits, proxy);
                    self.blocks_done += 1;
                    if quiet && self.blocks_done >= self.tap.header_blocks() && self.h2_read_all() {
                        // No stream is left in h2, and the poll that would say so
                        // has nothing to write either: the accept queued nothing.
                        return;
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    self.ended_by_h2(&e);
                    io.state = State::Done;
                    return;
                }
                Poll::Ready(None) => {
                    io.state = State::Done;
                    return;
                }
                Poll::Pending => {
                    if self.h2_read_all() {
                        self.blocks_done = self.tap.header_blocks();
                    }
                    return;
                }
            }
        }
    }

    /// h2 has read all the input there is and was not held back by a full output
    /// buffer: after a poll it has then decoded every whole frame fed to it.
    fn h2_read_all(&self) -> bool {
        let bufs = lock(&self.bufs);
        bufs.inbound.is_empty() && bufs.outbound.len() < transport::OUT_HIGH_WATER
    }

    /// Writes `outbound` to the socket until it would block.
    pub fn flush(&mut self) -> io::Result<()> {
        let wire = self.wire.clone();
        let mut io = wire.lock();
        let flushed = self.flush_io(&mut io);
        self.note_io(&io);
        flushed
    }

    fn flush_io(&mut self, io: &mut Io) -> io::Result<()> {
        let flushed = wire::flush(&mut io.stream, &self.bufs)?;
        if flushed.wrote {
            self.last_activity = crate::sys::monotonic_millis();
        }
        if flushed.was_full {
            // h2 may have stopped on a full buffer: let it go on.
            self.waker().wake();
        }
        Ok(())
    }

    /// Tidy close: close_notify, then the socket closes when dropped.
    pub fn shutdown(&mut self) {
        let wire = self.wire.clone();
        let mut io = wire.lock();
        io.closed = true;
        if !self.lingering {
            io.stream.shutdown_write();
        }
        if self.calm != Calm::Fine {
            self.discard_input(&mut io.stream);
        }
    }
}

mod transport;
use transport::{lock, Buffers, ConnWaker, MemIo};
pub use transport::{quietly, WakeList};
mod wire;
use wire::Io;
pub use wire::Wire;

mod abuse;
mod streams;
mod upgrade;
