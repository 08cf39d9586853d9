//! The worker's event loop: accept, read and parse many connections with mio; hand
//! complete requests to the app one at a time (the `sync` contract); write responses.
//!
//! Accept policy: a worker accepts only while it holds no complete request, and stops
//! accepting as soon as one is complete, so a slow app call never queues clients that
//! an idle worker could take from the shared listen queue.

use std::collections::VecDeque;
use std::io::Read;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, UnixListener};
use mio::{Events, Interest, Poll, Token};
use nix::sys::signal::Signal;

use super::conn::{Conn, Next, Stream};
use crate::config::Config;
use crate::http::request::Limits;
use crate::log::access::{AccessLog, AccessRecord};
use crate::sock::Listener;
use crate::wsgi::environ::{latin1, Peer};
use crate::wsgi::Bridge;

const SIGNAL_TOKEN: Token = Token(0);
const LISTENER_BASE: usize = 1;
const CONN_BASE: usize = 1 << 20;

enum MioListener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// Whether the worker takes new work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Running,
    /// TERM: finish what was received, close idle connections, then exit.
    Draining,
}

pub struct EventLoop<'a> {
    config: &'a Config,
    bridge: &'a Bridge,
    access_log: AccessLog,
    poll: Poll,
    listeners: Vec<(MioListener, Option<std::net::SocketAddr>)>,
    /// A listener reported readiness that has not been drained to WouldBlock yet.
    accept_pending: Vec<bool>,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    ready: VecDeque<usize>,
    signals: mio::net::UnixStream,
    limits: Limits,
    pub state: State,
    master: nix::unistd::Pid,
}

impl<'a> EventLoop<'a> {
    pub fn new(
        config: &'a Config,
        bridge: &'a Bridge,
        listeners: &[Listener],
        signals: StdUnixStream,
        master: nix::unistd::Pid,
    ) -> std::io::Result<EventLoop<'a>> {
        let poll = Poll::new()?;
        let mut signals = mio::net::UnixStream::from_std(signals);
        poll.registry()
            .register(&mut signals, SIGNAL_TOKEN, Interest::READABLE)?;
        let mut mio_listeners = Vec::new();
        for (i, l) in listeners.iter().enumerate() {
            let local = l.local_tcp_addr();
            let mut ml = match l.try_clone()? {
                Listener::Tcp(t) => MioListener::Tcp(TcpListener::from_std(t)),
                Listener::Unix { listener, .. } => {
                    MioListener::Unix(UnixListener::from_std(listener))
                }
            };
            let source: &mut dyn mio::event::Source = match &mut ml {
                MioListener::Tcp(t) => t,
                MioListener::Unix(u) => u,
            };
            poll.registry()
                .register(source, Token(LISTENER_BASE + i), Interest::READABLE)?;
            mio_listeners.push((ml, local));
        }
        Ok(EventLoop {
            config,
            bridge,
            access_log: AccessLog::open(config.access_logfile.as_deref())?,
            poll,
            accept_pending: vec![true; mio_listeners.len()],
            listeners: mio_listeners,
            conns: Vec::new(),
            free: Vec::new(),
            ready: VecDeque::new(),
            signals,
            limits: Limits::default(),
            state: State::Running,
            master,
        })
    }

    /// Runs until a stop signal (and, for TERM, until in-flight work is done) or until
    /// the master is gone.
    pub fn run(&mut self) -> std::io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut last_sweep = Instant::now();
        loop {
            crate::arbiter::beat();
            let timeout = if self.ready.is_empty() && !self.can_accept() {
                Duration::from_millis(500)
            } else {
                Duration::ZERO
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            for event in events.iter() {
                match event.token() {
                    SIGNAL_TOKEN => self.read_signals(),
                    Token(t) if t >= CONN_BASE => {
                        self.on_conn_event(t - CONN_BASE, event.is_readable(), event.is_writable())
                    }
                    Token(t) => self.accept_pending[t - LISTENER_BASE] = true,
                }
            }
            match self.state {
                State::Draining if self.live_connections() == 0 => return Ok(()),
                _ => {}
            }
            if self.ready.is_empty() && self.can_accept() {
                self.accept();
            }
            if let Some(index) = self.ready.pop_front() {
                self.serve(index);
            }
            if last_sweep.elapsed() >= Duration::from_secs(1) {
                last_sweep = Instant::now();
                self.sweep_timeouts();
                if nix::unistd::getppid() != self.master {
                    tracing::info!("Parent changed, shutting down: {}", std::process::id());
                    return Ok(());
                }
            }
        }
    }

    fn read_signals(&mut self) {
        let mut bytes = [0u8; 64];
        while let Ok(n) = self.signals.read(&mut bytes) {
            if n == 0 {
                break;
            }
            for &b in &bytes[..n] {
                if Signal::try_from(i32::from(b)) == Ok(Signal::SIGTERM) {
                    self.begin_drain();
                }
            }
        }
    }

    /// Graceful stop: no new connections; idle keep-alive connections close now; the
    /// others close after their current response.
    fn begin_drain(&mut self) {
        if self.state != State::Running {
            return;
        }
        self.state = State::Draining;
        for (ml, _) in &mut self.listeners {
            let source: &mut dyn mio::event::Source = match ml {
                MioListener::Tcp(t) => t,
                MioListener::Unix(u) => u,
            };
            let _ = self.poll.registry().deregister(source);
        }
        let idle: Vec<usize> = (0..self.conns.len())
            .filter(|&i| self.conns[i].as_ref().is_some_and(Conn::is_idle))
            .collect();
        for i in idle {
            self.close(i);
        }
    }

    /// A listener may hold queued connections (readiness is edge-triggered, so no new
    /// event will say so) and this worker has room for them.
    fn can_accept(&self) -> bool {
        self.state == State::Running
            && self.accept_pending.iter().any(|&p| p)
            && self.live_connections() < self.config.worker_connections
    }

    fn live_connections(&self) -> usize {
        self.conns.len() - self.free.len()
    }

    /// Accepts one connection at a time and reads it at once, stopping as soon as a
    /// request is complete (see the module doc).
    fn accept(&mut self) {
        for i in 0..self.listeners.len() {
            while self.accept_pending[i] && self.ready.is_empty() {
                if self.live_connections() >= self.config.worker_connections {
                    return;
                }
                let local = self.listeners[i].1;
                let accepted = match &self.listeners[i].0 {
                    MioListener::Tcp(l) => l.accept().map(|(s, addr)| {
                        let _ = s.set_nodelay(true);
                        (
                            Stream::Tcp(s),
                            Peer {
                                remote: Some(addr),
                                local,
                            },
                        )
                    }),
                    MioListener::Unix(l) => l.accept().map(|(s, _)| {
                        (
                            Stream::Unix(s),
                            Peer {
                                remote: None,
                                local: None,
                            },
                        )
                    }),
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

    fn add_conn(&mut self, stream: Stream, peer: Peer) {
        let index = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        let mut conn = Conn::new(stream, peer, self.config.timeout);
        let interest = Interest::READABLE | Interest::WRITABLE;
        if self
            .poll
            .registry()
            .register(conn.stream.source(), Token(CONN_BASE + index), interest)
            .is_err()
        {
            self.free.push(index);
            return;
        }
        self.conns[index] = Some(conn);
        self.on_conn_event(index, true, false);
    }

    fn on_conn_event(&mut self, index: usize, readable: bool, writable: bool) {
        let limits = self.limits;
        let Some(conn) = self.conns.get_mut(index).and_then(Option::as_mut) else {
            return;
        };
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
            Next::Wait => {}
            Next::Ready => {
                if !self.ready.contains(&index) {
                    self.ready.push_back(index);
                }
            }
            Next::Close => self.close(index),
        }
    }

    fn close(&mut self, index: usize) {
        if let Some(mut conn) = self.conns[index].take() {
            let _ = self.poll.registry().deregister(conn.stream.source());
            conn.shutdown();
            self.free.push(index);
            self.ready.retain(|&i| i != index);
        }
    }

    /// Runs the app for the connection's complete request and queues the response.
    fn serve(&mut self, index: usize) {
        let limits = self.limits;
        let keep_alive_allowed = self.config.keep_alive > 0 && self.state == State::Running;
        let Some(conn) = self.conns[index].as_mut() else {
            return;
        };
        let Some((head, body)) = conn.take_request() else {
            return;
        };
        let peer = conn.peer;
        let outcome = self.bridge.call(
            &head,
            body,
            &peer,
            head.keep_alive && keep_alive_allowed,
            conn,
        );
        if self.access_log.enabled() {
            let remote = peer.remote.map(|a| a.ip().to_string()).unwrap_or_default();
            let referer = head.header("referer").map(latin1);
            let agent = head.header("user-agent").map(latin1);
            self.access_log.log(&AccessRecord {
                remote_addr: &remote,
                method: &head.method,
                raw_uri: &head.target,
                protocol: head.protocol(),
                status: outcome.status,
                body_bytes: outcome.body_bytes,
                referer: referer.as_deref(),
                user_agent: agent.as_deref(),
            });
        }
        let keep = outcome.keep_alive && self.state == State::Running;
        let next = conn.finish_response(keep, &limits);
        self.apply(index, next);
    }

    /// Closes connections idle past keep-alive, or stalled past the timeout.
    fn sweep_timeouts(&mut self) {
        let keep_alive = Duration::from_secs(self.config.keep_alive.max(1));
        let timeout = (self.config.timeout > 0).then(|| Duration::from_secs(self.config.timeout));
        let now = Instant::now();
        let expired: Vec<usize> = (0..self.conns.len())
            .filter(|&i| {
                let Some(conn) = self.conns[i].as_ref() else {
                    return false;
                };
                let idle = now.duration_since(conn.last_activity);
                if matches!(conn.phase, super::conn::Phase::Ready { .. }) {
                    return false;
                }
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
