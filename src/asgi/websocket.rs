//! One WebSocket's ASGI cycle: the handshake answered as the app decides (`accept`,
//! `close` before accept = 403, or a `websocket.http.response` denial), then frames
//! read by the worker's event loop as they arrive (control frames answered here,
//! messages queued for `receive()`), `send()` framing the app's messages, and the
//! closing handshake. The framing rules are [`crate::http::websocket`].

use std::collections::VecDeque;
use std::io::Read;
use std::rc::Rc;
use std::time::Instant;

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use super::home::{flush_pending, send_status, Home};
use crate::http::request::Head;
use crate::http::response;
use crate::http::websocket::{self as ws, Assembler, Message, WsError};
use crate::worker::conn::Conn;
use crate::wsgi::call::Outcome;

/// Messages queued for an app that does not call `receive()`: reading stops beyond
/// this many, so a flooding client fills the kernel's buffers, not the worker's.
const INBOX_MAX: usize = 64;

mod handshake;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    /// `websocket.connect` delivered or not; the app has not answered yet.
    Handshake,
    /// A denial response is being sent (`websocket.http.response.*`).
    Denying,
    Open,
    /// We sent a close frame and wait for the client's.
    Closing,
    /// Over: the connection is handed back (or about to be).
    Closed,
}

/// A `websocket.http.response` being assembled: status, headers, body so far.
type Denial = (u16, Vec<(String, String)>, Vec<u8>);

#[pyclass(unsendable)]
pub struct WsCycle {
    index: usize,
    conn: Option<Box<Conn>>,
    head: Option<Box<Head>>,
    accept: String,
    state: State,
    connect_delivered: bool,
    rbuf: Vec<u8>,
    assembler: Assembler,
    max_message: u64,
    inbox: VecDeque<Py<PyDict>>,
    /// The close code `websocket.disconnect` reports once the socket is done.
    close_code: Option<u16>,
    waiter: Option<Py<PyAny>>,
    /// An asyncio writer callback flushes this cycle's output.
    armed: bool,
    /// A protocol error that came behind messages the app has not taken yet: the
    /// connection fails once the app has them (so it may answer them first, as a
    /// strict peer expects).
    pending_error: Option<WsError>,
    denial: Option<Denial>,
    started: Instant,
    status: u16,
    sent: u64,
    home: Rc<Home>,
}

impl WsCycle {
    pub fn new(
        index: usize,
        conn: Box<Conn>,
        head: Box<Head>,
        accept: String,
        max_message: u64,
        home: Rc<Home>,
    ) -> WsCycle {
        WsCycle {
            index,
            conn: Some(conn),
            head: Some(head),
            accept,
            state: State::Handshake,
            connect_delivered: false,
            rbuf: Vec::new(),
            assembler: Assembler::new(max_message),
            max_message,
            inbox: VecDeque::new(),
            close_code: None,
            waiter: None,
            armed: false,
            pending_error: None,
            denial: None,
            started: Instant::now(),
            status: 0,
            sent: 0,
            home,
        }
    }

    fn write(&mut self, bytes: &[u8]) -> bool {
        let Some(conn) = self.conn.as_mut() else {
            return false;
        };
        conn.queue_output(bytes);
        if conn.flush().is_err() {
            self.lost(1006);
            return false;
        }
        true
    }

    /// The socket is gone or the session is over: `receive()` reports `code`, and the
    /// connection goes back to the event loop to be closed.
    fn lost(&mut self, code: u16) {
        self.close_code.get_or_insert(code);
        self.finish();
    }

    fn finish(&mut self) {
        self.state = State::Closed;
        let outcome = Outcome {
            status: self.status,
            body_bytes: self.sent,
            keep_alive: false,
            duration: self.started.elapsed(),
            extra: None,
        };
        let (conn, head) = (self.conn.take(), self.head.take());
        Python::attach(|py| {
            self.home
                .give_back(py, self.index, conn, head, &mut self.armed, outcome)
        });
        self.wake();
    }

    fn wake(&mut self) {
        if let Some(waiter) = self.waiter.take() {
            Python::attach(|py| {
                let waiter = waiter.bind(py);
                let done = waiter.call_method0(intern!(py, "done"));
                if !done.and_then(|d| d.is_truthy()).unwrap_or(true) {
                    let _ = waiter.call_method1(intern!(py, "set_result"), (py.None(),));
                }
            });
        }
    }

    /// A protocol error from the client: close with its code.
    fn fail(&mut self, err: WsError) {
        tracing::debug!("WebSocket closed: {} ({})", err.reason, err.code);
        let mut out = Vec::new();
        ws::write_close(&mut out, err.code, err.reason);
        self.write(&out);
        self.lost(err.code);
    }

    fn push_message(&mut self, message: Bound<'_, PyDict>) {
        self.inbox.push_back(message.unbind());
        self.wake();
    }

    /// Reads what the socket has (the loop's readiness is edge-triggered, so until it
    /// would block) unless the app is behind, and handles each frame.
    pub fn on_readable(&mut self, py: Python<'_>) {
        while matches!(self.state, State::Open | State::Closing)
            && self.inbox.len() < INBOX_MAX
            && self.pending_error.is_none()
        {
            let Some(conn) = self.conn.as_mut() else {
                return;
            };
            let mut buf = [0u8; 16 * 1024];
            match conn.stream.read(&mut buf) {
                Ok(0) => return self.lost(1006),
                Ok(n) => self.rbuf.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return self.lost(1006),
            }
            if let Err(e) = self.handle_frames(py) {
                return self.fail_after_inbox(e);
            }
        }
    }

    /// Fails now if the app is parked in `receive()` with nothing to take; else once
    /// it next asks (it may still be answering the messages before the error).
    fn fail_after_inbox(&mut self, err: WsError) {
        if self.inbox.is_empty() && self.waiter.is_some() {
            self.fail(err);
        } else {
            self.pending_error = Some(err);
        }
    }

    fn handle_frames(&mut self, py: Python<'_>) -> Result<(), WsError> {
        let mut used = 0;
        while let Some((frame, n)) = ws::parse_frame(&self.rbuf[used..], self.max_message)? {
            used += n;
            let Some(message) = self.assembler.push(frame)? else {
                continue;
            };
            self.on_message(py, message);
            if self.state == State::Closed {
                break;
            }
        }
        self.rbuf.drain(..used);
        Ok(())
    }

    fn on_message(&mut self, py: Python<'_>, message: Message) {
        let dict = PyDict::new(py);
        match message {
            Message::Ping(payload) => {
                let mut out = Vec::new();
                ws::write_frame(&mut out, ws::OP_PONG, &payload);
                self.write(&out);
            }
            Message::Pong => {}
            Message::Close(code, _) => {
                if self.state == State::Open {
                    // Echo the close (RFC 6455 §5.5.1), then the session is over.
                    let mut out = Vec::new();
                    if code == 1005 {
                        ws::write_frame(&mut out, ws::OP_CLOSE, b"");
                    } else {
                        ws::write_close(&mut out, code, "");
                    }
                    self.write(&out);
                }
                self.lost(code);
            }
            Message::Text(text) => {
                let _ = dict.set_item(intern!(py, "type"), intern!(py, "websocket.receive"));
                let _ = dict.set_item(intern!(py, "text"), PyString::new(py, &text));
                self.push_message(dict);
            }
            Message::Binary(data) => {
                let _ = dict.set_item(intern!(py, "type"), intern!(py, "websocket.receive"));
                let _ = dict.set_item(intern!(py, "bytes"), PyBytes::new(py, &data));
                self.push_message(dict);
            }
        }
    }

    /// `websocket.send`: one text or binary message, framed and written.
    fn send_message(&mut self, message: &Bound<'_, PyDict>) -> PyResult<()> {
        let py = message.py();
        let mut out = Vec::new();
        let text = message
            .get_item(intern!(py, "text"))?
            .filter(|t| !t.is_none());
        let bytes = message
            .get_item(intern!(py, "bytes"))?
            .filter(|b| !b.is_none());
        match (text, bytes) {
            (Some(t), None) => {
                ws::write_frame(&mut out, ws::OP_TEXT, t.extract::<String>()?.as_bytes())
            }
            (None, Some(b)) => ws::write_frame(&mut out, ws::OP_BINARY, &b.extract::<Vec<u8>>()?),
            _ => {
                return Err(PyValueError::new_err(
                    "websocket.send needs exactly one of 'bytes' and 'text'",
                ))
            }
        }
        self.sent += out.len() as u64;
        self.write(&out);
        Ok(())
    }

    /// `websocket.close` on an open socket: our close frame; the client answers.
    fn send_close(&mut self, message: &Bound<'_, PyDict>) -> PyResult<()> {
        let py = message.py();
        let code: u16 = match message.get_item(intern!(py, "code"))? {
            Some(c) if !c.is_none() => c.extract()?,
            _ => 1000,
        };
        let reason: String = match message.get_item(intern!(py, "reason"))? {
            Some(r) if !r.is_none() => r.extract()?,
            _ => String::new(),
        };
        let mut out = Vec::new();
        ws::write_close(&mut out, code, &reason);
        self.close_code = Some(code);
        self.state = State::Closing;
        self.write(&out);
        Ok(())
    }
}

#[pymethods]
impl WsCycle {
    /// The next message, or None when the app must wait.
    fn receive<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        if !self.connect_delivered {
            self.connect_delivered = true;
            let m = PyDict::new(py);
            m.set_item(intern!(py, "type"), intern!(py, "websocket.connect"))?;
            return Ok(Some(m));
        }
        if let Some(m) = self.inbox.pop_front() {
            if self.inbox.len() == INBOX_MAX / 2 {
                // Reading paused at the limit: the app caught up, read on.
                self.on_readable(py);
            }
            return Ok(Some(m.into_bound(py)));
        }
        if let Some(err) = self.pending_error.take() {
            self.fail(err);
        }
        if let Some(code) = self.close_code {
            let m = PyDict::new(py);
            m.set_item(intern!(py, "type"), intern!(py, "websocket.disconnect"))?;
            m.set_item(intern!(py, "code"), code)?;
            return Ok(Some(m));
        }
        Ok(None)
    }

    /// Parks `waiter` until a message arrives or the socket is done.
    fn wait(&mut self, waiter: Py<PyAny>) {
        self.waiter = Some(waiter);
        if !self.inbox.is_empty() || self.close_code.is_some() {
            self.wake();
        }
    }

    /// One `send()` message: 0 done, 1 wait for the client to read, 2 gone.
    fn send(&mut self, py: Python<'_>, message: &Bound<'_, PyAny>) -> PyResult<u8> {
        let message = message
            .cast::<PyDict>()
            .map_err(|_| PyTypeError::new_err("an ASGI message must be a dict"))?;
        let kind = message
            .get_item(intern!(py, "type"))?
            .ok_or_else(|| PyValueError::new_err("an ASGI message needs a 'type'"))?;
        let kind = kind
            .cast::<PyString>()
            .map_err(|_| PyTypeError::new_err("an ASGI message's 'type' must be a str"))?
            .to_str()?;
        if self.state == State::Closed {
            return Ok(2);
        }
        match (kind, self.state) {
            ("websocket.accept", State::Handshake) => self.accept_handshake(message)?,
            ("websocket.close", State::Handshake) => self.deny(403, &[], b""),
            ("websocket.http.response.start", State::Handshake) => self.denial_start(message)?,
            ("websocket.http.response.body", State::Denying) => self.denial_body(message)?,
            ("websocket.send", State::Open) => self.send_message(message)?,
            ("websocket.close", State::Open) => self.send_close(message)?,
            ("websocket.send" | "websocket.close", State::Closing) => return Ok(2),
            (other, state) => {
                return Err(PyRuntimeError::new_err(format!(
                    "unexpected ASGI message {other:?} in WebSocket state {state:?}"
                )))
            }
        }
        Ok(send_status(
            self.conn.as_deref(),
            self.state == State::Closed,
        ))
    }

    fn fd(&self) -> i32 {
        self.conn.as_ref().map_or(-1, |c| c.fd())
    }

    /// The socket is writable: the bytes still queued, or -1 when the socket is done.
    fn flush_pending(&mut self) -> i64 {
        let left = flush_pending(self.conn.as_mut());
        if left <= 0 {
            self.armed = false;
        }
        if left < 0 && self.state != State::Closed {
            self.lost(1006);
        }
        left
    }

    /// The Python side put a writer callback on the socket.
    fn armed(&mut self) {
        self.armed = true;
    }

    fn client_gone(&self) -> bool {
        self.state == State::Closed
    }

    /// Our close frame got no answer in time: end the connection anyway.
    fn close_timeout(&mut self) {
        if self.state == State::Closing {
            self.lost(1006);
        }
    }

    /// The app returned: a handshake it never answered is refused (403); an open
    /// socket is closed normally.
    fn app_returned(&mut self) {
        match self.state {
            State::Handshake => self.deny(403, &[], b""),
            State::Denying => {
                let (status, headers, body) = self.denial.take().expect("set at start");
                self.deny(status, &headers, &body);
            }
            State::Open => {
                let mut out = Vec::new();
                ws::write_close(&mut out, 1000, "");
                self.write(&out);
                self.lost(1000);
            }
            State::Closing | State::Closed => self.finish(),
        }
    }

    /// The app raised: 500 before the handshake was answered, close 1011 after.
    fn app_failed(&mut self, traceback: &str) {
        tracing::error!(target: crate::log::EXCEPTION, "Error in ASGI application\n{}", traceback.trim_end());
        match self.state {
            State::Handshake | State::Denying => {
                let page = response::error_page(1, 500, "Internal Server Error", "");
                self.status = 500;
                self.write(&page);
                self.lost(1006);
            }
            State::Open => self.fail(WsError {
                code: 1011,
                reason: "internal error",
            }),
            State::Closing | State::Closed => self.finish(),
        }
    }
}
