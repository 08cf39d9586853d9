//! One HTTP request's ASGI cycle: `receive()` hands out the request body (already read
//! and bounded by the connection's limits) and then `http.disconnect`; `send()` checks
//! each message, frames the response and writes it straight to the socket without
//! blocking. The connection is checked out of the event loop's table for the cycle and
//! handed back the moment the response is complete, so the next request on a
//! kept-alive connection is served even while the app's task goes on (background
//! tasks).

use std::io::Read;
use std::rc::Rc;
use std::time::Instant;

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use crate::http::body::Body;
use crate::http::request::Head;
use crate::http::response::{self, Plan};
use crate::worker::conn::Conn;
use crate::wsgi::call::Outcome;

mod awaitables;
mod http_send;
use super::home::{flush_pending, send_status, Home};
use super::request_hooks;
pub use awaitables::{Ready, Written};
pub(super) use http_send::{content_length_value, message_headers, open_regular, status_in};

/// The largest `http.request` message a file-backed body is cut into.
const BODY_CHUNK: usize = 64 * 1024;

/// Where the response is.
pub(super) enum Response {
    NotStarted,
    /// `http.response.start` seen; nothing written yet.
    Started {
        status: u16,
        /// The app's headers as `name: value\r\n` lines, hop-by-hop ones left out.
        lines: Vec<u8>,
        content_length: Option<u64>,
        close: bool,
    },
    /// The head is written; body messages follow.
    Streaming {
        plan: Plan,
    },
    /// `more_body: False` sent (or the cycle ended): the connection is handed back.
    Complete,
}

/// The next `http.request` body of a request: the whole body when it is in memory,
/// else up to `max` bytes of the spooled file; and whether more follows.
pub(super) fn body_piece(body: &mut Body, max: usize) -> std::io::Result<(Vec<u8>, bool)> {
    match body {
        Body::Memory(bytes) => Ok((std::mem::take(bytes), false)),
        Body::File(file, left) => {
            let want = (*left).min(max as u64) as usize;
            let mut chunk = vec![0u8; want];
            file.read_exact(&mut chunk)?;
            *left -= want as u64;
            Ok((chunk, *left > 0))
        }
    }
}

#[pyclass(unsendable)]
pub struct HttpCycle {
    index: usize,
    conn: Option<Box<Conn>>,
    head: Option<Box<Head>>,
    body: Option<Body>,
    keep_alive: bool,
    response: Response,
    started: Instant,
    status: u16,
    body_bytes: u64,
    gone: bool,
    /// An asyncio writer callback flushes this cycle's output.
    armed: bool,
    waiter: Option<Py<PyAny>>,
    /// With `pre_request`/`post_request` hooks: their `req`, and the response headers
    /// `post_request` is shown.
    hook_req: Option<Py<PyAny>>,
    hook_headers: Vec<(String, String)>,
    /// The asyncio task running the app for this request.
    pub task: Option<Py<PyAny>>,
    home: Rc<Home>,
}

impl HttpCycle {
    pub fn new(
        index: usize,
        conn: Box<Conn>,
        head: Box<Head>,
        body: Body,
        keep_alive: bool,
        home: Rc<Home>,
    ) -> HttpCycle {
        HttpCycle {
            index,
            conn: Some(conn),
            head: Some(head),
            body: Some(body),
            keep_alive,
            response: Response::NotStarted,
            started: Instant::now(),
            status: 0,
            body_bytes: 0,
            gone: false,
            armed: false,
            waiter: None,
            hook_req: None,
            hook_headers: Vec::new(),
            task: None,
            home,
        }
    }

    fn minor_version(&self) -> u8 {
        self.head.as_ref().map_or(1, |h| h.minor_version)
    }

    fn is_head_request(&self) -> bool {
        self.head.as_ref().is_some_and(|h| h.is_head())
    }

    /// Queues `bytes` and writes what the socket takes now. False when the client is gone.
    fn write(&mut self, bytes: &[u8]) -> bool {
        let Some(conn) = self.conn.as_mut() else {
            return false;
        };
        conn.queue_output(bytes);
        if conn.flush().is_err() {
            self.gone = true;
        }
        !self.gone
    }

    /// Gives the connection back to the event loop (kept open or not), wakes a
    /// receive() waiting for the disconnect, and asks the loop for a turn.
    fn hand_back(&mut self, py: Python<'_>, keep_alive: bool) {
        self.response = Response::Complete;
        let outcome = Outcome {
            status: self.status,
            body_bytes: self.body_bytes,
            keep_alive: keep_alive && !self.gone,
            duration: self.started.elapsed(),
            extra: None,
        };
        let (conn, head) = (self.conn.take(), self.head.take());
        if self
            .home
            .give_back(py, self.index, conn, head, &mut self.armed, outcome)
        {
            self.post_request(py);
        }
        self.wake_waiter(py);
    }

    /// `post_request` once the response is complete (see [`request_hooks`]).
    fn post_request(&mut self, py: Python<'_>) {
        if let Some(req) = self.hook_req.take() {
            let headers = std::mem::take(&mut self.hook_headers);
            request_hooks::post_request(py, req, self.status, headers, self.body_bytes);
        }
    }

    /// Runs `pre_request` when hooks are defined; false (and a 500) when it raised, as
    /// for a WSGI request.
    pub fn pre_request(&mut self, py: Python<'_>) -> bool {
        match request_hooks::pre_request(py, self.head.as_deref()) {
            Ok(req) => {
                self.hook_req = req;
                true
            }
            Err(req) => {
                self.hook_req = Some(req);
                self.fail(py);
                false
            }
        }
    }

    fn wake_waiter(&mut self, py: Python<'_>) {
        if let Some(waiter) = self.waiter.take() {
            let waiter = waiter.bind(py);
            if !waiter
                .call_method0(intern!(py, "done"))
                .and_then(|d| d.is_truthy())
                .unwrap_or(true)
            {
                let _ = waiter.call_method1(intern!(py, "set_result"), (py.None(),));
            }
        }
    }

    /// Answers 500 if nothing was sent yet; otherwise the response is cut short by
    /// closing the connection (the client sees a truncated response, never a wrong one).
    fn fail(&mut self, py: Python<'_>) {
        match self.response {
            Response::NotStarted | Response::Started { .. } => {
                self.status = 500;
                let page =
                    response::error_page(self.minor_version(), 500, "Internal Server Error", "");
                self.write(&page);
                self.hand_back(py, false);
            }
            Response::Streaming { .. } => self.hand_back(py, false),
            Response::Complete => {}
        }
    }
}

impl HttpCycle {
    /// A socket event while the app holds the connection: if the client closed it
    /// (or it failed), the app's `receive()` gets `http.disconnect` and its `send()`
    /// raises. Bytes that are only a next (pipelined) request are left for later.
    pub fn on_socket_event(&mut self, py: Python<'_>) {
        let Some(conn) = self.conn.as_ref() else {
            return;
        };
        if crate::sys::peer_closed(conn.fd()) && !self.gone {
            self.gone = true;
            self.wake_waiter(py);
            if let (Some(task), Some(on_gone)) = (&self.task, self.home.on_gone.borrow().as_ref()) {
                let _ = on_gone.call1(py, (task.clone_ref(py),));
            }
        }
    }
}

#[pymethods]
impl HttpCycle {
    /// The next `receive()` message, or None when the app must wait for the
    /// disconnect (the body is all delivered and the response is still going).
    fn receive<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let message = PyDict::new(py);
        if let Some(body) = self.body.as_mut() {
            let (chunk, more) = body_piece(body, BODY_CHUNK)?;
            if !more {
                self.body = None;
            }
            message.set_item(intern!(py, "type"), intern!(py, "http.request"))?;
            message.set_item(intern!(py, "body"), PyBytes::new(py, &chunk))?;
            message.set_item(intern!(py, "more_body"), more)?;
            return Ok(Some(message));
        }
        if self.gone || matches!(self.response, Response::Complete) {
            message.set_item(intern!(py, "type"), intern!(py, "http.disconnect"))?;
            return Ok(Some(message));
        }
        Ok(None)
    }

    /// The app's `receive()`: the next message as an already-complete awaitable
    /// ([`Ready`]), or, once the body is delivered, `runtime.py`'s `disconnected`,
    /// which waits for the response to end or the client to go.
    fn areceive(mut slf: PyRefMut<'_, Self>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        if let Some(message) = slf.receive(py)? {
            return Ok(Py::new(py, Ready::new(message.into_any().unbind()))?.into_any());
        }
        let home = slf.home.clone();
        let cycle: Py<HttpCycle> = slf.into();
        home.wait_for_disconnect(py, cycle.into_any())
    }

    /// Parks `waiter` (an asyncio future) until the response completes or the client
    /// goes away.
    fn wait_disconnect(&mut self, py: Python<'_>, waiter: Py<PyAny>) {
        self.waiter = Some(waiter);
        if self.gone || matches!(self.response, Response::Complete) {
            self.wake_waiter(py);
        }
    }

    /// One `send()` message; the answer is [`send_status`]'s.
    fn send(&mut self, py: Python<'_>, message: &Bound<'_, PyAny>) -> PyResult<u8> {
        let message = message
            .cast::<PyDict>()
            .map_err(|_| PyTypeError::new_err("an ASGI message must be a dict"))?;
        if self.gone {
            return Ok(2);
        }
        let kind = message
            .get_item(intern!(py, "type"))?
            .ok_or_else(|| PyValueError::new_err("an ASGI message needs a 'type'"))?;
        let kind = kind
            .cast::<PyString>()
            .map_err(|_| PyTypeError::new_err("an ASGI message's 'type' must be a str"))?
            .to_str()?;
        match (kind, &self.response) {
            ("http.response.start", Response::NotStarted) => self.start(message)?,
            ("http.response.informational", Response::NotStarted) => self.informational(message)?,
            ("http.response.pathsend", Response::Started { .. }) => self.pathsend(message)?,
            ("http.response.body", Response::Started { .. } | Response::Streaming { .. }) => {
                self.body(message)?;
            }
            ("http.response.start", _) => {
                return Err(PyRuntimeError::new_err("http.response.start sent twice"))
            }
            (_, Response::Complete) => {
                return Err(PyRuntimeError::new_err(format!(
                    "{kind} after the response was complete"
                )))
            }
            ("http.response.body", _) => {
                return Err(PyRuntimeError::new_err(
                    "http.response.body before http.response.start",
                ))
            }
            (other, _) => {
                return Err(PyValueError::new_err(format!(
                    "unknown ASGI message type {other:?} for an http scope"
                )))
            }
        }
        Ok(send_status(self.conn.as_deref(), self.gone))
    }

    /// The app's `send(message)`: the message is checked and written now, and what
    /// comes back is awaited — [`Written`] when it went out, else `runtime.py`'s `sent`
    /// (wait for a slow client, or raise because the client is gone). A bad message
    /// raises here, at the call.
    fn asend(mut slf: PyRefMut<'_, Self>, message: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let py = message.py();
        let status = slf.send(py, message)?;
        if status == 0 {
            return Ok(slf.home.done.clone_ref(py).into_any());
        }
        let sent = slf.home.sent.borrow().as_ref().map(|s| s.clone_ref(py));
        let cycle: Py<HttpCycle> = slf.into();
        match sent {
            Some(sent) => sent.call1(py, (cycle, status, "the client closed the connection")),
            None => Ok(py.None()),
        }
    }

    /// The socket, for the loop's writer callback while `send()` waits.
    fn fd(&self) -> i32 {
        self.conn.as_ref().map_or(-1, |c| c.fd())
    }

    /// The socket is writable: the bytes still queued, or -1 when the client is gone.
    fn flush_pending(&mut self) -> i64 {
        let left = flush_pending(self.conn.as_mut());
        if left < 0 {
            self.gone = true;
        }
        if left <= 0 {
            self.armed = false;
        }
        left
    }

    /// The Python side put a writer callback on the socket.
    fn armed(&mut self) {
        self.armed = true;
    }

    fn client_gone(&self) -> bool {
        self.gone
    }

    /// The server answered `status` itself (already queued): no app call.
    fn refused(&mut self, py: Python<'_>, status: u16) {
        self.status = status;
        if let Some(conn) = self.conn.as_mut() {
            if conn.flush().is_err() {
                self.gone = true;
            }
        }
        self.hand_back(py, false);
    }

    /// The app's coroutine returned: a response it left unfinished is an error.
    fn app_returned(&mut self, py: Python<'_>) {
        if self.gone {
            self.hand_back(py, false);
            return;
        }
        let what = match self.response {
            Response::Complete => return,
            Response::NotStarted => "ASGI callable returned without starting a response",
            Response::Started { .. } | Response::Streaming { .. } => {
                "ASGI callable returned without completing the response"
            }
        };
        tracing::error!("{what}");
        self.fail(py);
    }

    /// The app raised: its traceback is logged and the response ended (500 if none
    /// was started).
    fn app_failed(&mut self, py: Python<'_>, traceback: &str) {
        tracing::error!(target: crate::log::EXCEPTION, "Error in ASGI application\n{}", traceback.trim_end());
        self.fail(py);
    }
}
