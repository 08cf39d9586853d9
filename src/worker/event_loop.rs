//! The worker's event loop: accept, read and parse many connections with mio; hand
//! complete requests to the executor — inline for `sync` (one app call at a time), a
//! thread pool for `gthread`; write responses; keep keep-alive bookkeeping.
//!
//! Accept policy: a worker accepts while it has an idle executor slot and no complete
//! request waiting, and stops as soon as a request is complete, so a slow app call
//! never queues clients that an idle worker could take from the shared listen queue.
//! When no worker is idle (each publishes an idle flag in the shared heartbeat
//! mapping), a busy worker takes what has queued for [`ACCEPT_GRACE`], so the queue
//! is still served, in turn with kept-alive clients, instead of starving.
//!
//! Balance: every worker also publishes how many connections it holds, and one that
//! holds more than [`BALANCE_SLACK`] above an idle peer leaves new connections to
//! it (every worker's epoll sees the listener, so the peer is woken for them). A
//! burst of keep-alive clients then spreads evenly instead of going to whichever
//! worker woke first. If the peer has not taken them within [`ACCEPT_GRACE`], this
//! worker does: the balance never leaves a client waiting.

use std::collections::VecDeque;
use std::io::Read;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, UnixListener};
use mio::{Events, Interest, Poll, Token};
use nix::sys::signal::Signal;

use super::accept_read::AcceptReads;
use super::conn::{Buffers, Conn, Next, Phase, Stream};
use super::pool::{Carrier, Done, Job, Pool, Returned};
use super::recycle::Recycle;
use crate::config::{Config, WorkerClass};
use crate::http::request::{Head, Limits};
use crate::log::access::{AccessLog, AccessRecord};
use crate::sock::Listener;
use crate::wsgi::call::Outcome;
use crate::wsgi::environ::Peer;
use crate::wsgi::Bridge;

/// How long a busy worker leaves queued connections to idle workers before it takes
/// one itself. Idle workers wake on the listener at once, so they win within this
/// window; a worker that stays busy (keep-alive clients keep it fed) still cannot
/// starve the listen queue.
const ACCEPT_GRACE: Duration = Duration::from_millis(50);

/// How many connections more than an idle peer a worker may hold and still accept.
const BALANCE_SLACK: usize = 1;

/// How long a sync worker's finished responses may wait for the rest of their batch
/// before they are written (see `dispatch`).
const DEFER_WINDOW: Duration = Duration::from_millis(1);

/// A sync request answered but not yet written: slot, head, outcome, and whether it
/// was the worker's last before `--max-requests`.
type Served = (usize, Box<Head>, Outcome, bool);

/// How many closed connections' buffers a worker keeps for new ones (about 5 KiB
/// each): enough for a burst of short connections, little memory when it ends.
const SPARE_BUFFERS: usize = 64;

const SIGNAL_TOKEN: Token = Token(0);
const WAKER_TOKEN: Token = Token(1);
const LISTENER_BASE: usize = 2;
const CONN_BASE: usize = 1 << 20;

enum MioListener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl MioListener {
    fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            MioListener::Tcp(t) => t,
            MioListener::Unix(u) => u,
        }
    }

    fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        match self {
            MioListener::Tcp(t) => t.as_fd(),
            MioListener::Unix(u) => u.as_fd(),
        }
    }
}

/// A listening socket as the worker accepts from it.
struct ListenSocket {
    socket: MioListener,
    /// The local address, for the environ's SERVER_NAME/SERVER_PORT (TCP only).
    local: Option<std::net::SocketAddr>,
}

/// A connection table entry.
enum Slot {
    Free,
    /// Boxed: a connection is large and the table mostly holds free or busy slots.
    Open(Box<Conn>),
    /// Checked out to an app thread. An event that arrives meanwhile is not lost:
    /// `event_missed` makes the loop ask the threads for a wake-up when it finishes, and
    /// the returning connection reads its socket again.
    Busy {
        event_missed: bool,
    },
    /// An HTTP/2 connection: it stays here while its streams run on app threads
    /// (see [`super::h2conn`]).
    H2(Box<super::h2conn::H2Conn>),
}

/// Whether the worker takes new work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Running,
    /// TERM (a stop, HUP, TTOU, `--reload`) or `--max-requests`: take no new
    /// connection, finish what was received, then exit. Kept-alive connections
    /// between requests stay open until `linger_until` (monotonic ms): a request
    /// that arrives on one meanwhile is answered with `Connection: close`.
    Draining {
        linger_until: u64,
    },
}

/// How long a retiring worker keeps its idle kept-alive connections open for a
/// request already on its way (Gunicorn 27.0.1's 2 s), never past the graceful
/// timeout: a client that reused the connection just as the worker began to retire
/// gets its answer instead of a reset (RFC 9112 §9.6).
const RETIRING_LINGER_MS: u64 = 2000;

pub struct EventLoop<'a> {
    config: &'a Config,
    bridge: Arc<Bridge>,
    pool: Option<Pool>,
    /// `-k asgi`: requests become tasks on the asyncio loop (set by [`crate::asgi`]).
    pub(crate) asgi: Option<crate::asgi::Spawner>,
    access_log: AccessLog,
    poll: Poll,
    listeners: Vec<ListenSocket>,
    /// A listener reported readiness that has not been drained to WouldBlock yet.
    accept_pending: Vec<bool>,
    slots: Vec<Slot>,
    free: Vec<usize>,
    /// The sync batch's answered requests whose responses wait (see `dispatch`);
    /// empty between batches.
    unwritten: Vec<Served>,
    /// Whether new connections are read the moment they are accepted.
    accept_reads: AcceptReads,
    /// Accepted TCP sockets already have TCP_NODELAY (see
    /// [`crate::sock::accepted_sockets_have_nodelay`]): a setsockopt(2) less per
    /// connection, a few percent of a short connection's cost.
    accepted_have_nodelay: bool,
    /// Buffers of closed connections, reused by new ones (see [`SPARE_BUFFERS`]).
    spare_buffers: Vec<Buffers>,
    ready: VecDeque<usize>,
    /// Since when queued connections have waited for this busy worker (see
    /// [`ACCEPT_GRACE`]).
    deferred_since: Option<Instant>,
    /// The connection count last published (see `publish_connections`).
    published_connections: usize,
    /// Busy slots that had an event while their request was out (see [`Slot::Busy`]).
    missed_events: usize,
    signals: mio::net::UnixStream,
    limits: Limits,
    pub state: State,
    master: nix::unistd::Pid,
    /// `--max-requests`: the worker drains and exits after its last request.
    recycle: Recycle,
    /// HTTP/2 connections h2 asked a turn for (gthread and asgi; see [`super::h2conn`]).
    h2_wakes: Option<Arc<super::h2conn::WakeList>>,
    /// An HTTP/2 connection just asked app threads to wake the loop at each stream's
    /// end: finished work is collected once more before the loop sleeps
    /// (`H2Conn::update_urgent`).
    h2_recollect: bool,
    /// HTTP/2 connections to turn after `collect_finished` took their streams back
    /// (kept to reuse its allocation).
    h2_turns: Vec<usize>,
    /// What `collect_finished` takes back (kept to reuse its allocation).
    finished: Vec<Done>,
}

impl<'a> EventLoop<'a> {
    pub fn new(
        config: &'a Config,
        bridge: Arc<Bridge>,
        listeners: &[Listener],
        signals: StdUnixStream,
        master: nix::unistd::Pid,
    ) -> std::io::Result<EventLoop<'a>> {
        let poll = Poll::new()?;
        let mut signals = mio::net::UnixStream::from_std(signals);
        poll.registry()
            .register(&mut signals, SIGNAL_TOKEN, Interest::READABLE)?;
        let (pool, h2_wakes) = match config.worker_class {
            WorkerClass::Sync => (None, None),
            // No threads: h2's wake-ups come from the loop's own thread (a stream's
            // task sent data), through the same waker, which makes the epoll
            // descriptor asyncio watches readable.
            WorkerClass::Asgi => {
                let waker = Arc::new(mio::Waker::new(poll.registry(), WAKER_TOKEN)?);
                (None, Some(super::h2conn::WakeList::new(waker)))
            }
            WorkerClass::Gthread => {
                let waker = Arc::new(mio::Waker::new(poll.registry(), WAKER_TOKEN)?);
                let wakes = super::h2conn::WakeList::new(waker.clone());
                (
                    Some(Pool::start(config.threads, bridge.clone(), waker)?),
                    Some(wakes),
                )
            }
        };
        let mut mio_listeners = Vec::new();
        for (i, l) in listeners.iter().enumerate() {
            let local = l.local_tcp_addr();
            let mut ml = match l.try_clone()? {
                Listener::Tcp(t) => MioListener::Tcp(TcpListener::from_std(t)),
                Listener::Unix { listener, .. } => {
                    MioListener::Unix(UnixListener::from_std(listener))
                }
            };
            poll.registry()
                .register(ml.source(), Token(LISTENER_BASE + i), Interest::READABLE)?;
            mio_listeners.push(ListenSocket { socket: ml, local });
        }
        Ok(EventLoop {
            config,
            bridge,
            pool,
            asgi: None,
            access_log: crate::log::reopen::worker_access_log(
                config.access_logfile.as_deref(),
                config.logging.access_format.clone(),
                config.logging.syslog.as_ref().is_some_and(|s| s.access),
            )?,
            poll,
            accept_pending: vec![true; mio_listeners.len()],
            listeners: mio_listeners,
            slots: Vec::new(),
            free: Vec::new(),
            unwritten: Vec::new(),
            accept_reads: AcceptReads::default(),
            accepted_have_nodelay: crate::sock::accepted_sockets_have_nodelay(),
            spare_buffers: Vec::new(),
            ready: VecDeque::new(),
            deferred_since: None,
            published_connections: 0,
            missed_events: 0,
            signals,
            limits: Limits {
                // Once per worker process, which keeps its config to the end.
                forwarder_headers: Box::leak(
                    config.proxy.forwarder_headers.clone().into_boxed_slice(),
                ),
                ..config.http
            },
            state: State::Running,
            master,
            recycle: Recycle::new(config.ops.max_requests, config.ops.max_requests_jitter),
            h2_wakes,
            h2_recollect: false,
            h2_turns: Vec::new(),
            finished: Vec::new(),
        })
    }

    /// Runs until TERM (and until in-flight work is done) or until the master is gone.
    pub fn run(&mut self) -> std::io::Result<()> {
        let mut events = Events::with_capacity(1024);
        // The coarse clock (see `sys::monotonic_millis`): a precise read on every turn
        // showed in the worker's profile, for a sweep once a second.
        let mut last_sweep = crate::sys::monotonic_millis();
        loop {
            crate::scoreboard::beat();
            self.publish_idle();
            let busy = (!self.ready.is_empty() && self.pool.is_none())
                || self.can_accept()
                || self.h2_recollect;
            let timeout = if busy {
                Duration::ZERO
            } else if self.has_room_for_connections() {
                ACCEPT_GRACE
            } else if let State::Draining { linger_until } = self.state {
                let left = linger_until.saturating_sub(crate::sys::monotonic_millis());
                Duration::from_millis(left.clamp(1, 500))
            } else {
                Duration::from_millis(500)
            };
            self.poll_events(&mut events, timeout)?;
            if self.turn(&events) {
                return Ok(());
            }
            let now = crate::sys::monotonic_millis();
            if now.saturating_sub(last_sweep) >= 1000 {
                last_sweep = now;
                if self.housekeeping() {
                    return Ok(());
                }
            }
        }
    }

    /// Waits up to `timeout` for events (an interrupted wait is an empty batch).
    pub(crate) fn poll_events(
        &mut self,
        events: &mut Events,
        timeout: Duration,
    ) -> std::io::Result<()> {
        match self.poll.poll(events, Some(timeout)) {
            Err(e) if e.kind() != std::io::ErrorKind::Interrupted => Err(e),
            _ => Ok(()),
        }
    }

    /// The epoll descriptor: readable when an event is waiting (the asgi worker's
    /// asyncio loop watches it).
    pub(crate) fn poll_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.poll.as_raw_fd()
    }

    /// Handles one batch of events, then accepts and dispatches. True when the worker
    /// is done: draining and no connection left.
    pub(crate) fn turn(&mut self, events: &Events) -> bool {
        if let Some(pool) = &mut self.pool {
            pool.set_in_turn(true);
        }
        self.collect_finished();
        for event in events.iter() {
            match event.token() {
                SIGNAL_TOKEN => self.read_signals(),
                // Only a wake-up: finished work is collected before and after
                // every batch of events.
                WAKER_TOKEN => self.h2_woken(),
                Token(t) if t >= CONN_BASE => {
                    let index = t - CONN_BASE;
                    if event.is_read_closed() {
                        match self.slots.get_mut(index) {
                            Some(Slot::Open(conn)) => conn.fin_pending = true,
                            Some(Slot::H2(h2)) => h2.note_read_closed(),
                            _ => {}
                        }
                    }
                    self.on_conn_event(index, event.is_readable(), event.is_writable())
                }
                Token(t) => self.accept_pending[t - LISTENER_BASE] = true,
            }
        }
        // A thread may have finished while the events were handled, without a
        // wake-up (see `Pool::set_wake_on_finish` and `Pool::set_in_turn`).
        if let Some(pool) = &mut self.pool {
            pool.set_in_turn(false);
        }
        self.collect_finished();
        if self.drained() {
            return true;
        }
        if self.can_accept() {
            self.accept(false);
        } else if self.accept_overdue() {
            self.accept(true);
        }
        self.publish_idle();
        self.dispatch();
        self.ask_for_wakes();
        false
    }

    /// The asgi worker's cycles handed connections back between turns: take them
    /// (access log, keep-alive, the next request) and dispatch what is ready. True
    /// when the worker is draining and none is left (a turn then ends it).
    pub(crate) fn take_back(&mut self) -> bool {
        self.collect_finished();
        self.publish_idle();
        self.dispatch();
        matches!(self.state, State::Draining { .. }) && self.live_connections() == 0
    }

    /// Work is left that no socket event will announce (readiness is edge-triggered):
    /// queued connections to accept, or requests ready to dispatch. The asgi worker,
    /// whose turns run only on events, then asks asyncio for another turn at once.
    pub(crate) fn wants_another_turn(&self) -> bool {
        self.can_accept() || !self.ready.is_empty()
    }

    /// Draining: closes kept-alive connections whose linger is over; true when no
    /// connection is left.
    fn drained(&mut self) -> bool {
        let State::Draining { linger_until } = self.state else {
            return false;
        };
        if crate::sys::monotonic_millis() >= linger_until {
            self.close_idle_kept_alive();
        }
        self.live_connections() == 0
    }

    /// Once a second: idle and stalled connections time out; true when the worker
    /// should stop (the master is gone, or draining is over).
    pub(crate) fn housekeeping(&mut self) -> bool {
        crate::scoreboard::beat();
        self.sweep_timeouts();
        if nix::unistd::getppid() != self.master {
            tracing::info!("Parent changed, shutting down: {}", std::process::id());
            return true;
        }
        self.drained()
    }

    fn read_signals(&mut self) {
        let mut bytes = [0u8; 64];
        while let Ok(n) = self.signals.read(&mut bytes) {
            if n == 0 {
                break;
            }
            for sig in bytes[..n].iter().map(|&b| Signal::try_from(i32::from(b))) {
                match sig {
                    Ok(Signal::SIGTERM) => self.begin_drain(),
                    Ok(Signal::SIGUSR1) => crate::log::reopen_log_files(),
                    _ => {}
                }
            }
        }
    }

    /// Graceful stop: no new connections; every connection closes after its current
    /// response, and kept-alive ones waiting between requests linger (see
    /// [`RETIRING_LINGER_MS`]) before they close.
    fn begin_drain(&mut self) {
        if self.state != State::Running {
            return;
        }
        let linger = RETIRING_LINGER_MS.min(self.config.graceful_timeout * 1000);
        self.state = State::Draining {
            linger_until: crate::sys::monotonic_millis() + linger,
        };
        for l in &mut self.listeners {
            let _ = self.poll.registry().deregister(l.socket.source());
        }
        tracing::debug!(
            "Worker {} takes no new connections; idle kept-alive ones linger {linger} ms",
            std::process::id()
        );
        self.h2_goaway_all();
        if linger == 0 {
            self.close_idle_kept_alive();
        }
    }

    /// Kept-alive connections waiting between requests (not one accepted whose first
    /// request has not arrived yet: that one still gets its answer).
    fn idle_kept_alive(&self) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|&i| matches!(&self.slots[i], Slot::Open(c) if c.is_idle() && c.served > 0))
            .collect()
    }

    /// The linger is over: kept-alive connections still without a request close —
    /// each read once more first, so a request that just arrived is served, not cut.
    fn close_idle_kept_alive(&mut self) {
        for i in self.idle_kept_alive() {
            self.on_conn_event(i, true, false);
            if matches!(&self.slots[i], Slot::Open(c) if c.is_idle()) {
                self.close(i);
            }
        }
        self.h2_close_idle();
    }

    fn live_connections(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    fn executor_has_room(&self) -> bool {
        self.pool.as_ref().is_none_or(Pool::has_room)
    }

    /// A listener may hold queued connections (readiness is edge-triggered, so no new
    /// event will say so) and this worker has room for more connections.
    fn has_room_for_connections(&self) -> bool {
        self.state == State::Running
            && self.accept_pending.iter().any(|&p| p)
            && self.live_connections() < self.config.worker_connections
    }

    /// Queued connections may be taken now: nothing waits for this worker's executor.
    fn can_accept(&self) -> bool {
        self.free_to_accept() && self.fair_to_accept()
    }

    /// Nothing waits for this worker: it could take a queued connection at once.
    fn free_to_accept(&self) -> bool {
        self.has_room_for_connections() && self.ready.is_empty() && self.executor_has_room()
    }

    /// This worker does not hold clearly more connections than an idle peer (see the
    /// module doc).
    fn fair_to_accept(&self) -> bool {
        let mine = self.live_connections();
        mine <= BALANCE_SLACK
            || crate::scoreboard::fewest_connections_on_an_idle_worker()
                .is_none_or(|fewest| mine <= fewest + BALANCE_SLACK)
    }

    /// Tells the other workers (shared idle flags) whether this one could take a new
    /// connection now; stores only on change.
    fn publish_idle(&mut self) {
        let idle =
            self.state == State::Running && self.ready.is_empty() && self.executor_has_room();
        if idle != crate::scoreboard::idle_published() {
            crate::scoreboard::set_idle(idle);
        }
        self.publish_connections();
    }

    /// Tells the other workers how many connections this one holds; stores only on
    /// change.
    fn publish_connections(&mut self) {
        let n = self.live_connections();
        if n != self.published_connections {
            crate::scoreboard::set_connections(n);
            self.published_connections = n;
        }
    }

    /// Queued connections have waited [`ACCEPT_GRACE`] for another worker while this
    /// one stayed busy. `accept_pending` alone cannot tell: it stays set from an old
    /// readiness event while other workers take the connections, so the listen queue
    /// is looked at (poll, no wait) when the clock would start and when it runs out,
    /// and found empty it clears both.
    fn accept_overdue(&mut self) -> bool {
        if !self.has_room_for_connections() {
            self.deferred_since = None;
            return false;
        }
        let due = match self.deferred_since {
            None => false,
            Some(since) if since.elapsed() < ACCEPT_GRACE => return false,
            Some(_) => true,
        };
        if !self.listen_queue_has_connections() {
            self.deferred_since = None;
            self.accept_pending.iter_mut().for_each(|p| *p = false);
            return false;
        }
        if !due {
            self.deferred_since = Some(Instant::now());
            return false;
        }
        // Free but deferring to a peer that has not come: take it.
        self.free_to_accept() || !crate::scoreboard::another_worker_idle()
    }

    /// Whether a listener has a connection queued right now (level, not edge).
    fn listen_queue_has_connections(&self) -> bool {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let mut fds: Vec<PollFd> = self
            .listeners
            .iter()
            .map(|l| PollFd::new(l.socket.fd(), PollFlags::POLLIN))
            .collect();
        // An error reads as "maybe": the caller then accepts and learns from accept.
        poll(&mut fds, PollTimeout::ZERO).map_or(true, |n| n > 0)
    }

    /// Accepts one connection at a time and reads it at once (unless such reads keep
    /// finding nothing, see `accept_read`), stopping as soon as a request is complete
    /// (see the module doc). `overdue` takes every queued
    /// connection although this worker is busy: they waited a grace period and no
    /// worker was idle to take them.
    fn accept(&mut self, overdue: bool) {
        self.deferred_since = None;
        for i in 0..self.listeners.len() {
            while self.accept_pending[i]
                && (self.can_accept() || (overdue && self.has_room_for_connections()))
            {
                let ListenSocket { socket, local } = &self.listeners[i];
                let local = *local;
                let accepted = match socket {
                    MioListener::Tcp(l) => l.accept().map(|(s, addr)| {
                        if !self.accepted_have_nodelay {
                            let _ = s.set_nodelay(true);
                        }
                        (Stream::Tcp(s), Peer::tcp(addr, local))
                    }),
                    MioListener::Unix(l) => {
                        l.accept().map(|(s, _)| (Stream::Unix(s), Peer::unix()))
                    }
                };
                match accepted {
                    Ok((stream, peer)) => self.add_conn(stream, peer),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        self.accept_pending[i] = false
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        tracing::error!("accept failed: {e}");
                        self.accept_pending[i] = false;
                    }
                }
            }
        }
    }

    fn add_conn(&mut self, stream: Stream, mut peer: Peer) {
        let stream = match &self.config.tls.server {
            None => stream,
            Some(tls) => match stream.into_tls(tls) {
                Ok(s) => {
                    peer.secure = true;
                    s
                }
                Err(e) => {
                    tracing::error!("Cannot start TLS for {:?}: {e}", peer.remote);
                    return;
                }
            },
        };
        let index = self.free.pop().unwrap_or_else(|| {
            self.slots.push(Slot::Free);
            self.slots.len() - 1
        });
        let buffers = self.spare_buffers.pop().unwrap_or_default();
        let mut conn = Conn::new(stream, peer, self.config.timeout, buffers);
        if self
            .poll
            .registry()
            .register(
                conn.stream.source(),
                Token(CONN_BASE + index),
                Interest::READABLE,
            )
            .is_err()
        {
            self.free.push(index);
            return;
        }
        conn.admit(&self.config.proxy, self.config.h2c());
        self.slots[index] = Slot::Open(Box::new(conn));
        self.publish_connections();
        if self.accept_reads.read_now() {
            self.on_conn_event(index, true, false);
            let found_nothing = matches!(&self.slots[index], Slot::Open(c) if c.received_nothing());
            self.accept_reads.learn(!found_nothing);
        }
    }

    fn on_conn_event(&mut self, index: usize, readable: bool, writable: bool) {
        let limits = self.limits;
        let conn = match self.slots.get_mut(index) {
            Some(Slot::Open(conn)) => conn,
            Some(Slot::H2(h2)) => {
                // Reads wait for readiness (edge-triggered): a turn that only writes
                // does not try the socket (see `H2Conn::note_readable`).
                if readable || !writable {
                    h2.note_readable();
                }
                return self.h2_turn(index);
            }
            Some(Slot::Busy { event_missed }) => {
                if let Some(asgi) = &self.asgi {
                    asgi.on_event(index);
                }
                if !*event_missed {
                    *event_missed = true;
                    self.missed_events += 1;
                }
                if let Some(pool) = &self.pool {
                    pool.set_wake_on_finish(true);
                }
                return;
            }
            _ => return,
        };
        if readable {
            conn.maybe_unread = true;
        }
        let mut next = Next::Wait;
        if writable {
            next = conn.on_writable(&limits);
        }
        if readable && next == Next::Wait {
            next = conn.on_readable(&limits);
        }
        self.apply(index, next);
    }

    fn apply(&mut self, index: usize, next: Next) {
        match next {
            Next::Wait => {
                self.watch_writes(index);
            }
            Next::Ready => {
                if self.watch_writes(index) && !self.ready.contains(&index) {
                    self.ready.push_back(index);
                }
            }
            Next::Close => self.close(index),
            Next::Http2 => self.h2_start(index),
        }
    }

    /// Registers for writable events exactly while the connection has output queued.
    /// False when the connection had to be closed.
    fn watch_writes(&mut self, index: usize) -> bool {
        let Some(Slot::Open(conn)) = self.slots.get_mut(index) else {
            return false;
        };
        let want = conn.has_output();
        let registry = self.poll.registry();
        if set_write_interest(
            registry,
            &mut conn.stream,
            index,
            want,
            &mut conn.write_interest,
        )
        .is_err()
        {
            self.close(index);
            return false;
        }
        true
    }

    fn close(&mut self, index: usize) {
        if matches!(self.slots.get(index), Some(Slot::H2(_))) {
            return self.h2_close(index);
        }
        if !matches!(self.slots.get(index), Some(Slot::Open(_))) {
            return;
        }
        if let Slot::Open(mut conn) = std::mem::replace(&mut self.slots[index], Slot::Free) {
            // No deregister: closing the socket, its only descriptor, takes it out of
            // the epoll set (a syscall less per connection).
            conn.shutdown();
            if self.spare_buffers.len() < SPARE_BUFFERS {
                self.spare_buffers.extend(conn.into_buffers());
            }
            self.free.push(index);
            self.ready.retain(|&i| i != index);
        }
    }

    /// Hands waiting requests to the executor: inline calls for sync; every waiting
    /// request for gthread, so a thread that finishes takes the next job straight from
    /// the queue instead of waiting for a loop turn (new connections are still accepted
    /// only while a thread is idle).
    fn dispatch(&mut self) {
        if self.pool.is_none() && self.asgi.is_none() && self.ready.len() > 1 {
            // A sync batch holds the GIL from its first call to its last write: taking
            // and dropping it around every call (PyGILState_Ensure/Release, a mutex and
            // a condition variable each way) was ~500 instructions per request under
            // load, where a turn serves tens of requests. It is dropped again before
            // the loop sleeps, so the app's own threads run then.
            return crate::wsgi::holding_gil(|| self.dispatch_ready());
        }
        self.dispatch_ready()
    }

    /// [`dispatch`](Self::dispatch)'s work.
    fn dispatch_ready(&mut self) {
        // Sync serves the requests that were waiting when this turn began (one
        // epoll_wait for a batch under load); ones completed meanwhile wait a turn.
        // Their small responses are written together once the batch is done: clients
        // are then woken in a burst, while they are still awake from the first
        // response, instead of one by one between app calls (a wake-up of a sleeping
        // client costs the sender an inter-processor interrupt; that was 10% of a
        // Flask request's CPU time). Written responses never wait more than
        // [`DEFER_WINDOW`] plus one app call for the rest of the batch.
        let mut inline_budget = self.ready.len();
        // Kept across turns, so a batch allocates nothing.
        let mut served = std::mem::take(&mut self.unwritten);
        // When the first unwritten response of the batch was made. The clock is read
        // only after a call that more of the batch follow (none for a batch of one).
        let mut batch_start: Option<Instant> = None;
        while let Some(index) = self.ready.pop_front() {
            let keep_alive_allowed = self.config.keep_alive > 0 && self.state == State::Running;
            let Slot::Open(conn) = &mut self.slots[index] else {
                continue;
            };
            let Some((mut head, body)) = conn.take_request() else {
                continue;
            };
            if let Err(next) = conn.vet_forwarded(&mut head, &self.config.proxy) {
                self.apply(index, next);
                continue;
            }
            // The request that reaches --max-requests is answered with
            // `Connection: close`; then the worker drains (after the call, so this
            // connection is not taken for an idle one).
            let last = self.recycle.count();
            let keep_alive = head.keep_alive && keep_alive_allowed && !last;
            if self.asgi.is_some() {
                let conn = self.check_out(index);
                if let Some(asgi) = &self.asgi {
                    asgi.spawn(index, conn, head, body, keep_alive);
                }
                if last {
                    self.begin_drain();
                }
                continue;
            }
            match &mut self.pool {
                None => {
                    let peer = conn.peer;
                    conn.defer_writes = true;
                    let outcome = self
                        .bridge
                        .call(&head, body, &peer, keep_alive, &mut **conn);
                    conn.defer_writes = false;
                    served.push((index, head, outcome, last));
                    inline_budget -= 1;
                    if inline_budget == 0 {
                        break;
                    }
                    let now = Instant::now();
                    match batch_start {
                        Some(start) if now - start >= DEFER_WINDOW => {
                            self.write_served(&mut served);
                            batch_start = None;
                        }
                        Some(_) => {}
                        None => batch_start = Some(now),
                    }
                }
                Some(_) => {
                    let conn = self.check_out(index);
                    let Some(pool) = &mut self.pool else {
                        unreachable!("matched Some above")
                    };
                    pool.submit(Job {
                        index,
                        conn: Carrier::Http1(conn),
                        head,
                        body,
                        keep_alive,
                    });
                    if last {
                        self.begin_drain();
                    }
                }
            }
        }
        self.write_served(&mut served);
        self.unwritten = served;
    }

    /// Takes an open connection out of the table for an app thread or an asgi cycle;
    /// its slot stays taken (busy) until the connection comes back.
    fn check_out(&mut self, index: usize) -> Box<Conn> {
        let busy = Slot::Busy {
            event_missed: false,
        };
        match std::mem::replace(&mut self.slots[index], busy) {
            Slot::Open(conn) => conn,
            _ => unreachable!("only open connections have requests to serve"),
        }
    }

    /// Writes the deferred responses of a sync batch, then moves each connection on.
    fn write_served(&mut self, served: &mut Vec<Served>) {
        for (index, head, outcome, last) in served.drain(..) {
            // `finish` writes the response first (`Conn::finish_response`).
            self.finish(index, &head, outcome);
            // Its buffers serve the next request's head (`request::parse_head_reusing`).
            crate::http::request::recycle(head);
            if last {
                self.begin_drain();
            }
        }
    }

    /// Takes back connections whose requests the app threads (or asgi tasks) finished.
    fn collect_finished(&mut self) {
        self.h2_recollect = false;
        // Kept between calls, as `h2_turns`: a finished request cost an allocation
        // for the list it came back in.
        let mut finished = std::mem::take(&mut self.finished);
        match (&mut self.pool, &self.asgi) {
            (Some(pool), _) => pool.finished(&mut finished),
            (None, Some(asgi)) => asgi.finished(&mut finished),
            (None, None) => return,
        }
        // HTTP/2 connections to turn once their streams that came back are all taken:
        // one turn (one poll of h2, one TLS write) for several streams' ends.
        let mut h2_turns = std::mem::take(&mut self.h2_turns);
        for Done {
            index,
            conn,
            head,
            outcome,
        } in finished.drain(..)
        {
            let turn = match conn {
                Returned::Http1(conn) => {
                    self.http1_returned(index, conn, &head, outcome);
                    continue;
                }
                Returned::H2Ended(conn_id) => self.h2_stream_done(index, conn_id, &head, &outcome),
                Returned::H2Written(conn_id) => {
                    self.h2_stream_written(index, conn_id, &head, &outcome)
                }
            };
            // Its buffers serve the next stream's head (`http::h2::head_from_parts`).
            crate::http::request::recycle(head);
            if turn && !h2_turns.contains(&index) {
                h2_turns.push(index);
            }
        }
        for &index in &h2_turns {
            self.h2_turn(index);
        }
        h2_turns.clear();
        self.h2_turns = h2_turns;
        self.finished = finished;
    }

    /// An HTTP/1 connection comes back from its app thread.
    fn http1_returned(&mut self, index: usize, mut conn: Box<Conn>, head: &Head, outcome: Outcome) {
        let slot = std::mem::replace(&mut self.slots[index], Slot::Free);
        if matches!(slot, Slot::Busy { event_missed: true }) {
            self.missed_events -= 1;
            conn.maybe_unread = true;
        }
        self.slots[index] = Slot::Open(conn);
        self.finish(index, head, outcome);
    }

    /// App threads wake the loop after a keep-alive response only when the loop needs
    /// to know at once: a connection event came while its request was out, it is
    /// stopping, or connections wait for a free thread. Otherwise the connection's next
    /// event wakes the loop, which takes the finished work back first.
    fn ask_for_wakes(&self) {
        let Some(pool) = &self.pool else { return };
        pool.set_wake_on_finish(
            self.missed_events > 0
                || self.state != State::Running
                || self.has_room_for_connections(),
        );
    }

    /// After a response: the access-log line, then the connection's next state.
    fn finish(&mut self, index: usize, head: &Head, outcome: Outcome) {
        let limits = self.limits;
        // A response that told the client the connection stays open keeps it open, even
        // if the worker began to retire while the app thread ran: it then lingers like
        // the other idle kept-alive connections (closing it now would cut the request
        // the client may already be sending on it).
        let keep = outcome.keep_alive;
        let Slot::Open(conn) = &mut self.slots[index] else {
            return;
        };
        let peer = conn.peer;
        let next = conn.finish_response(keep, head.client_closes, &limits);
        self.log_access(head, &peer, &outcome);
        self.apply(index, next);
    }

    /// The access-log line and the statsd request metrics.
    fn log_access(&mut self, head: &Head, peer: &Peer, outcome: &Outcome) {
        crate::log::statsd::request(outcome.status, outcome.duration);
        if !self.access_log.enabled() {
            return;
        }
        let extra = outcome.extra.as_deref();
        self.access_log.log(&AccessRecord {
            head,
            remote_addr: peer.remote_ip.as_str(),
            status: outcome.status,
            sent: outcome.body_bytes,
            duration: outcome.duration,
            response_headers: extra.map_or(&[], |e| &e.response_headers),
            environ: extra.map_or(&[], |e| &e.environ),
            changed: extra.map_or(&[], |e| &e.changed),
        });
    }

    /// Closes connections idle past keep-alive, or stalled past the timeout.
    fn sweep_timeouts(&mut self) {
        self.h2_sweep();
        self.h2c_preface_sweep();
        let keep_alive = self.config.keep_alive.max(1) * 1000;
        let timeout = (self.config.timeout > 0).then_some(self.config.timeout * 1000);
        let now = crate::sys::monotonic_millis();
        let expired: Vec<usize> = (0..self.slots.len())
            .filter(|&i| {
                let Slot::Open(conn) = &self.slots[i] else {
                    return false;
                };
                if matches!(conn.phase, Phase::Ready { .. }) {
                    return false;
                }
                let idle = now.saturating_sub(conn.last_activity);
                if conn.is_idle() && conn.served > 0 {
                    idle >= keep_alive
                } else {
                    timeout.is_some_and(|t| idle >= t)
                }
            })
            .collect();
        for i in expired {
            self.close(i);
        }
    }
}

mod h2;

/// Registers connection `index`'s socket for writable events exactly while `want`
/// (output is queued); `current` is what it is registered for now.
pub(super) fn set_write_interest(
    registry: &mio::Registry,
    stream: &mut Stream,
    index: usize,
    want: bool,
    current: &mut bool,
) -> std::io::Result<()> {
    if want == *current {
        return Ok(());
    }
    let interest = if want {
        Interest::READABLE | Interest::WRITABLE
    } else {
        Interest::READABLE
    };
    registry.reregister(stream.source(), Token(CONN_BASE + index), interest)?;
    *current = want;
    Ok(())
}
