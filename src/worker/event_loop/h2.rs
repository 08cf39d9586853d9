//! The event loop's side of HTTP/2 connections ([`Slot::H2`]): the switch from a
//! TLS connection whose ALPN chose `h2`, turns on socket events and on h2's wake-ups,
//! complete streams dispatched to the gthread pool (each a [`Job`]) or started as
//! asgi tasks (`crate::asgi::Spawner::spawn_h2`), each counted by `--max-requests`,
//! and the access log when a stream's response is done.
//! Shutdown sends GOAWAY and lets running streams finish; idle connections close
//! after `--keep-alive`, stalled ones after `--timeout`.

use super::{EventLoop, Slot, State};
use crate::http::request::Head;
use crate::worker::h2conn::{H2Conn, Turn};
use crate::worker::h2sink::H2Sink;
use crate::worker::pool::{Carrier, H2Stream, Job};
use crate::wsgi::call::Outcome;

impl EventLoop<'_> {
    /// The TLS handshake chose `h2`, or the client sent the h2c preface or an
    /// `Upgrade: h2c` request (answered as stream 1): the connection becomes an
    /// HTTP/2 one.
    pub(super) fn h2_start(&mut self, index: usize) {
        let Some(wakes) = self.h2_wakes.clone() else {
            // Only gthread offers h2 in ALPN; nothing else can serve it.
            return self.close(index);
        };
        let Slot::Open(mut conn) = std::mem::replace(&mut self.slots[index], Slot::Free) else {
            return;
        };
        let upgrade = conn.take_upgrade();
        let (stream, peer, read) = conn.into_h2_parts();
        let mut h2 = H2Conn::new(stream, peer, read, &self.config.http2, index, wakes);
        if let Some((head, body)) = upgrade {
            let config = self.config;
            h2.upgrade(*head, body, &self.limits, &config.proxy, &config.http2);
        }
        self.slots[index] = Slot::H2(Box::new(h2));
        if self.state != State::Running {
            if let Slot::H2(h2) = &mut self.slots[index] {
                h2.graceful_shutdown();
            }
        }
        self.h2_turn(index);
    }

    /// Turns for the connections h2 woke (an app thread sent data, or a turn stopped
    /// early for fairness).
    pub(super) fn h2_woken(&mut self) {
        let Some(wakes) = &self.h2_wakes else { return };
        for index in wakes.take() {
            // Skipped when a turn since the wake-up served it (e.g. the turn for an
            // app thread's finished stream, which also woke the connection).
            if matches!(self.slots.get(index), Some(Slot::H2(h2)) if h2.wants_turn()) {
                self.h2_turn(index);
            }
        }
    }

    /// Reads, polls and writes one connection, dispatches its complete streams, and
    /// closes it when it is done.
    pub(super) fn h2_turn(&mut self, index: usize) {
        let limits = self.limits;
        let Some(Slot::H2(h2)) = self.slots.get_mut(index) else {
            return;
        };
        if h2.turn(&limits, &self.config.proxy) == Turn::Close {
            return self.h2_close(index);
        }
        self.h2_dispatch(index);
        if let Some(Slot::H2(h2)) = self.slots.get_mut(index) {
            if h2.update_urgent() {
                // A thread may have handed a stream back without a wake-up before it
                // could see the flag: look once more before sleeping.
                self.h2_recollect = true;
            }
        }
        if let Some(asgi) = &self.asgi {
            // The connection's running tasks: resets, and capacity for their sends.
            asgi.h2_poll(index);
        }
        self.h2_watch_writes(index);
    }

    /// Hands the connection's complete streams to the pool, up to its share.
    fn h2_dispatch(&mut self, index: usize) {
        loop {
            let Some(Slot::H2(h2)) = self.slots.get_mut(index) else {
                return;
            };
            let Some(ready) = h2.next_ready() else { return };
            let (peer, id) = (h2.peer, h2.id);
            if let Some(asgi) = &self.asgi {
                let waker = h2.waker();
                asgi.spawn_h2(index, id, peer, ready, waker);
                if self.recycle.count() {
                    self.begin_drain();
                }
                continue;
            }
            let Some(pool) = &mut self.pool else { return };
            let sink = H2Sink::new(ready.respond, h2.waker(), self.config.timeout);
            pool.submit(Job {
                index,
                conn: Carrier::H2(H2Stream {
                    sink,
                    peer,
                    conn_id: id,
                    wire: h2.wire_for_thread(),
                }),
                head: ready.head,
                body: ready.body,
                keep_alive: true,
            });
            if self.recycle.count() {
                self.begin_drain();
            }
        }
    }

    /// An app thread finished a stream: the access log; true when the connection is
    /// then to take a turn (to write the stream's end: a waiting stream may go, or a
    /// closing connection may close). The caller turns each connection once for all
    /// its streams that came back together (see `collect_finished`).
    pub(super) fn h2_stream_done(
        &mut self,
        index: usize,
        id: u64,
        head: &Head,
        outcome: &Outcome,
    ) -> bool {
        let peer = match self.slots.get_mut(index) {
            Some(Slot::H2(h2)) if h2.id == id => {
                h2.stream_done();
                h2.peer
            }
            _ => return false,
        };
        self.log_access(head, &peer, outcome);
        true
    }

    /// An app thread finished its connection's only running stream, and writes its
    /// end itself (or wakes the connection if it cannot): the access log; true (a
    /// turn) only when the connection needs one for the stream's end (streams wait
    /// for a thread, or it is ending).
    pub(super) fn h2_stream_written(
        &mut self,
        index: usize,
        id: u64,
        head: &Head,
        outcome: &Outcome,
    ) -> bool {
        let (peer, turn) = match self.slots.get_mut(index) {
            Some(Slot::H2(h2)) if h2.id == id => {
                h2.stream_done();
                h2.last_activity = crate::sys::monotonic_millis();
                (h2.peer, h2.is_urgent())
            }
            _ => return false,
        };
        self.log_access(head, &peer, outcome);
        turn
    }

    /// Registers for writable events exactly while output is queued.
    fn h2_watch_writes(&mut self, index: usize) {
        let Some(Slot::H2(h2)) = self.slots.get_mut(index) else {
            return;
        };
        let want = h2.has_output();
        if h2.watch_writes(self.poll.registry(), index, want).is_err() {
            self.h2_close(index);
        }
    }

    pub(super) fn h2_close(&mut self, index: usize) {
        if let Slot::H2(mut h2) = std::mem::replace(&mut self.slots[index], Slot::Free) {
            // Streams still running write to h2's shared state only; their `Done`
            // finds the slot free, or another connection's (told apart by its id).
            h2.shutdown();
            if let Some(asgi) = &self.asgi {
                asgi.h2_closed(index);
            }
            self.free.push(index);
            self.publish_connections();
        }
    }

    /// TERM or `--max-requests`: GOAWAY on every HTTP/2 connection; running streams
    /// finish, then each connection closes.
    pub(super) fn h2_goaway_all(&mut self) {
        for index in 0..self.slots.len() {
            if let Slot::H2(h2) = &mut self.slots[index] {
                h2.graceful_shutdown();
                self.h2_turn(index);
            }
        }
    }

    /// The retiring worker's linger is over: HTTP/2 connections with nothing in
    /// flight close.
    pub(super) fn h2_close_idle(&mut self) {
        for index in 0..self.slots.len() {
            if matches!(&self.slots[index], Slot::H2(h2) if h2.is_idle()) {
                self.h2_close(index);
            }
        }
    }

    /// Once a second: connections whose h2c preface did not arrive whole within its
    /// second get their 400 (or, under `both`, HTTP/1 from what came).
    pub(super) fn h2c_preface_sweep(&mut self) {
        let now = crate::sys::monotonic_millis();
        let limits = self.limits;
        for index in 0..self.slots.len() {
            let Slot::Open(conn) = &mut self.slots[index] else {
                continue;
            };
            if conn.preface_overdue(now) {
                let next = conn.preface_timed_out(&limits);
                self.apply(index, next);
            }
        }
    }

    /// Once a second: a connection with nothing in flight closes after
    /// `--keep-alive` without traffic (GOAWAY first); one whose streams move no bytes
    /// for `--timeout` closes too (Gunicorn's idle and stream timeouts).
    pub(super) fn h2_sweep(&mut self) {
        let keep_alive = self.config.keep_alive.max(1) * 1000;
        let timeout = (self.config.timeout > 0).then_some(self.config.timeout * 1000);
        let now = crate::sys::monotonic_millis();
        for index in 0..self.slots.len() {
            let Slot::H2(h2) = &mut self.slots[index] else {
                continue;
            };
            let idle = now.saturating_sub(h2.last_activity);
            let expired = if h2.is_idle() || h2.is_lingering() {
                idle >= keep_alive
            } else {
                h2.running == 0 && timeout.is_some_and(|t| idle >= t)
            };
            if expired {
                h2.abrupt_shutdown();
                let _ = h2.flush();
                self.h2_close(index);
            }
        }
    }
}
