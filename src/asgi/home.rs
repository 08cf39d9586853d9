//! What the cycles of a worker (HTTP and WebSocket) share with its event loop: the
//! connections they hand back and how the loop takes them, and the socket output
//! helpers both kinds of cycle use.

use std::cell::RefCell;
use std::hash::{BuildHasherDefault, Hasher};

use pyo3::intern;
use pyo3::prelude::*;

use super::cycle::{HttpCycle, Written};
use super::h2cycle::H2Cycle;
use crate::http::request::Head;
use crate::worker::conn::Conn;
use crate::worker::pool::Done;
use crate::wsgi::call::Outcome;

/// Output queued above this makes `send()` wait until the client has read some
/// (down to `runtime.py`'s `LOW_WATER`, 64 KiB); below it, the rest is written in the
/// background as the socket allows.
pub(super) const HIGH_WATER: usize = 256 * 1024;

/// The HTTP/2 cycles running on one connection, each with its serial.
pub type StreamTasks = Vec<(u64, Py<H2Cycle>)>;

/// What the cycles of a worker share with its event loop: the connections they hand
/// back, and how to ask the loop for a turn to take them.
pub struct Home {
    pub finished: RefCell<Vec<Done>>,
    pub kick: RefCell<Option<Py<PyAny>>>,
    /// Called with a request's task when its client left: cancels it after
    /// `--asgi-disconnect-grace-period` unless it ended by then.
    pub on_gone: RefCell<Option<Py<PyAny>>>,
    /// The asyncio loop (its writer callbacks flush the cycles' queued output).
    pub event_loop: RefCell<Option<Py<PyAny>>>,
    /// The worker's loop, to take a finished connection back at once.
    pub driver: RefCell<Option<Py<super::Driver>>>,
    /// The cycles holding a connection, by slot: a socket event during the cycle
    /// (the client closing) reaches its cycle.
    pub cycles: RefCell<SlotMap<Held>>,
    /// pathsend files go out with sendfile(2) (not under `--no-sendfile`).
    pub sendfile: bool,
    /// `runtime.py`'s `sent(cycle, status, message)` (the loop bound): what a `send()`
    /// that must wait or failed returns to be awaited.
    pub sent: RefCell<Option<Py<PyAny>>>,
    /// `runtime.py`'s `disconnected(cycle)` (the loop bound): what a `receive()`
    /// returns once the body is delivered, to wait for the end of the response.
    pub disconnected: RefCell<Option<Py<PyAny>>>,
    /// What a `send()` that went out at once returns (see [`Written`]).
    pub done: Py<Written>,
    /// The HTTP/2 streams running as tasks, by connection slot, each with its serial:
    /// a turn of the connection polls them (resets, flow-control capacity).
    pub h2_cycles: RefCell<std::collections::HashMap<usize, StreamTasks>>,
    /// `runtime.py`'s `h2_sent(cycle, timeout)` (the loop bound): what an HTTP/2
    /// `send()` returns when the flow-control window holds bytes back.
    pub h2_sent: RefCell<Option<Py<PyAny>>>,
    /// `--timeout`: how long an HTTP/2 `send()` waits for the window (0: forever).
    pub timeout: u64,
    /// The next HTTP/2 cycle's serial.
    pub next_serial: std::cell::Cell<u64>,
}

impl Home {
    /// A cycle is done with its connection: the asyncio writer comes off the socket,
    /// and the event loop gets the connection (with the request's outcome for the
    /// access log) back. False when the cycle had already given it back.
    pub fn give_back(
        &self,
        py: Python<'_>,
        index: usize,
        conn: Option<Box<Conn>>,
        head: Option<Box<Head>>,
        armed: &mut bool,
        outcome: Outcome,
    ) -> bool {
        let (Some(conn), Some(head)) = (conn, head) else {
            return false;
        };
        // Only while this cycle holds the connection: the slot may serve another
        // connection's cycle later.
        self.cycles.borrow_mut().remove(&index);
        disarm(self, &conn, armed);
        self.finished.borrow_mut().push(Done {
            index,
            conn: crate::worker::pool::Returned::Http1(conn),
            head,
            outcome,
        });
        self.after_response(py);
        true
    }

    /// A cycle handed a connection back: the event loop takes it now (the next
    /// request on it may be waiting), or, when the loop is in the middle of a turn
    /// (the cycle ended inside it), at the end of that turn.
    pub fn after_response(&self, py: Python<'_>) {
        let driver = self.driver.borrow().as_ref().map(|d| d.clone_ref(py));
        if let Some(driver) = driver {
            if let Ok(mut driver) = driver.bind(py).try_borrow_mut() {
                if !driver.take_back() {
                    return;
                }
            }
        }
        if let Some(kick) = self.kick.borrow().as_ref() {
            let _ = kick.call0(py);
        }
    }
}

impl Home {
    /// What a `receive()` returns once the body is delivered: `runtime.py`'s
    /// `disconnected(cycle)` coroutine, which waits for the end of the response.
    pub fn wait_for_disconnect(&self, py: Python<'_>, cycle: Py<PyAny>) -> PyResult<Py<PyAny>> {
        let disconnected = self.disconnected.borrow().as_ref().map(|d| d.clone_ref(py));
        match disconnected {
            Some(disconnected) => disconnected.call1(py, (cycle,)),
            None => Err(pyo3::exceptions::PyRuntimeError::new_err(
                "the asgi worker is not started",
            )),
        }
    }

    /// The HTTP/2 cycles running on the connection in slot `index` (a copy: polling
    /// one may end it, which changes the table).
    pub fn h2_cycles_of(&self, py: Python<'_>, index: usize) -> Vec<Py<H2Cycle>> {
        self.h2_cycles
            .borrow()
            .get(&index)
            .map(|v| v.iter().map(|(_, c)| c.clone_ref(py)).collect())
            .unwrap_or_default()
    }
}

/// A map keyed by connection slot: a slot is a small index the event loop chose, so
/// a multiply spreads it well enough, where the default SipHash cost a few hundred
/// instructions per request (an insert and a remove per cycle).
pub type SlotMap<V> = std::collections::HashMap<usize, V, BuildHasherDefault<SlotHasher>>;

/// Hashes a slot index with one multiply (Fibonacci hashing: the high bits, which
/// the table's probe uses, depend on every bit of the index).
#[derive(Default)]
pub struct SlotHasher(u64);

impl Hasher for SlotHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_usize(&mut self, slot: usize) {
        self.0 = (slot as u64 ^ self.0).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A cycle holding a connection.
pub enum Held {
    Http(Py<HttpCycle>),
    Ws(Py<super::websocket::WsCycle>),
}

/// What `send()` tells the Python side: 0 all written, 1 wait (too much queued),
/// 2 the client is gone, 3 some output is queued: flush it in the background.
pub(super) fn send_status(conn: Option<&Conn>, gone: bool) -> u8 {
    match conn.map(|c| c.pending_output()) {
        _ if gone => 2,
        None | Some(0) => 0,
        Some(n) if n > HIGH_WATER => 1,
        Some(_) => 3,
    }
}

/// Writes queued output as the socket allows: the bytes still queued, or -1 when
/// the client is gone.
pub(super) fn flush_pending(conn: Option<&mut Box<Conn>>) -> i64 {
    match conn {
        None => -1,
        Some(conn) => match conn.flush() {
            Ok(()) => conn.pending_output() as i64,
            Err(_) => -1,
        },
    }
}

/// Takes the asyncio writer callback off the socket before the connection leaves
/// the cycle (the event loop then owns it, and may close it).
pub(super) fn disarm(home: &Home, conn: &Conn, armed: &mut bool) {
    if std::mem::take(armed) {
        Python::attach(|py| {
            if let Some(event_loop) = home.event_loop.borrow().as_ref() {
                let _ = event_loop.call_method1(py, intern!(py, "remove_writer"), (conn.fd(),));
            }
        });
    }
}
