//! One HTTP/2 stream's ASGI cycle (the `http` scope with `http_version` "2").
//!
//! The stream's request is complete before the task starts (its body was received
//! into a buffer by the connection, as for gthread), so `receive()` hands out the body
//! and then waits for `http.disconnect`. `send()` runs h2's `SendResponse`/`SendStream`
//! on the loop's own thread: body bytes go out as the flow-control window allows; what
//! the window does not take waits in the cycle and `send()` returns `runtime.py`'s
//! `h2_sent`, which the connection's next turn resolves when capacity arrives
//! ([`H2Cycle::poll`]), bounded by `--timeout` (then RST_STREAM CANCEL, and the app sees
//! a client that went away). h2 wakes the connection's waker whenever a call queues
//! frames, which gives the connection a turn that writes them.
//!
//! A stream the client resets (or a connection that goes) makes `send()` raise and
//! `receive()` return `http.disconnect`. The stream's end goes back to the event loop
//! as a [`Done`] for the access log and `--http2-max-concurrent-streams` accounting.
//!
//! `pre_request` runs before the app's task starts and `post_request` when the
//! stream ends, as for an HTTP/1 request (`super::cycle`): a `pre_request` that raises
//! answers the stream 500 and the app never runs.

use std::collections::VecDeque;
use std::fs::File;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;
use h2::server::SendResponse;
use h2::SendStream;
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use super::cycle::Ready;
use super::home::Home;
use crate::http::body::Body;
use crate::http::request::Head;
use crate::worker::pool::{Done, Returned};
use crate::wsgi::call::Outcome;

mod output;

/// The largest `http.request` message a file-backed body is cut into, and the
/// largest piece of a response one capacity request asks for.
const PIECE: usize = 64 * 1024;

/// Where the response is.
enum Phase {
    NotStarted,
    /// `http.response.start` seen; the head goes with the first body message.
    Started {
        status: u16,
        headers: Vec<(String, String)>,
        content_length: Option<u64>,
    },
    /// The head is sent; body messages follow.
    Streaming {
        declared: Option<u64>,
    },
    /// The body is complete; `http.response.trailers` is awaited (`trailers: True`).
    Trailers {
        fields: http::HeaderMap,
    },
    /// The end of the stream is queued (behind any body still waiting for capacity).
    Ending,
    Complete,
}

/// How the stream ends once the queued body is out.
enum Ending {
    Eos,
    Trailers(http::HeaderMap),
}

#[pyclass(unsendable)]
pub struct H2Cycle {
    index: usize,
    conn_id: u64,
    /// Tells this cycle apart in [`Home::h2_cycles`].
    pub(super) serial: u64,
    head: Option<Box<Head>>,
    body: Option<Body>,
    respond: SendResponse<Bytes>,
    send: Option<SendStream<Bytes>>,
    /// The connection's waker: capacity and resets give the connection a turn.
    waker: Waker,
    phase: Phase,
    /// `trailers: True` on `http.response.start`.
    wants_trailers: bool,
    /// Body bytes the window has not taken yet, then a file (pathsend) still to read.
    queued: VecDeque<Bytes>,
    file: Option<(File, u64)>,
    ending: Option<Ending>,
    started: Instant,
    status: u16,
    body_bytes: u64,
    gone: bool,
    /// The app's coroutine is over (a stream still ending completes by itself).
    app_done: bool,
    /// A `send()` waiting for capacity, and a `receive()` waiting for the disconnect.
    send_waiter: Option<Py<PyAny>>,
    disconnect_waiter: Option<Py<PyAny>>,
    /// With `pre_request`/`post_request` hooks: their `req`, and the response headers
    /// `post_request` is shown.
    hook_req: Option<Py<PyAny>>,
    hook_headers: Vec<(String, String)>,
    /// The asyncio task running the app for this stream.
    pub task: Option<Py<PyAny>>,
    home: Rc<Home>,
}

/// What the connection knows about a stream it hands to an asgi task.
pub struct H2Start {
    pub index: usize,
    pub conn_id: u64,
    pub serial: u64,
    pub respond: SendResponse<Bytes>,
    pub waker: Waker,
}

impl H2Cycle {
    pub fn new(start: H2Start, head: Box<Head>, body: Body, home: Rc<Home>) -> H2Cycle {
        H2Cycle {
            index: start.index,
            conn_id: start.conn_id,
            serial: start.serial,
            head: Some(head),
            body: Some(body),
            respond: start.respond,
            send: None,
            waker: start.waker,
            phase: Phase::NotStarted,
            wants_trailers: false,
            queued: VecDeque::new(),
            file: None,
            ending: None,
            started: Instant::now(),
            status: 0,
            body_bytes: 0,
            gone: false,
            app_done: false,
            send_waiter: None,
            disconnect_waiter: None,
            hook_req: None,
            hook_headers: Vec::new(),
            task: None,
            home,
        }
    }

    /// A turn of the connection: a reset stream makes the cycle gone; a `send()`
    /// waiting for capacity goes on, and is resolved once its bytes are out.
    pub fn poll(&mut self, py: Python<'_>) {
        if matches!(self.phase, Phase::Complete) {
            return;
        }
        if !self.gone {
            let waker = self.waker.clone();
            let mut cx = Context::from_waker(&waker);
            // Before the head, the reset is the response's to see; after it, the
            // body stream's (h2 refuses the first once the head is sent).
            let reset = match (self.send.as_mut(), &self.phase) {
                (Some(stream), _) => stream.poll_reset(&mut cx),
                (None, Phase::NotStarted | Phase::Started { .. }) => {
                    self.respond.poll_reset(&mut cx)
                }
                (None, _) => Poll::Pending,
            };
            if reset.is_ready() {
                self.client_left(py);
            }
        }
        let waiting = self.ending.is_some() || !self.queued.is_empty() || self.file.is_some();
        if self.gone || !waiting || self.pump(py) {
            wake(py, &mut self.send_waiter);
        }
    }

    /// The client reset the stream or the connection went: the app's `send()` raises
    /// and `receive()` says `http.disconnect`; the task is cancelled after
    /// `--asgi-disconnect-grace-period` unless it ends by then.
    pub fn client_left(&mut self, py: Python<'_>) {
        if self.gone {
            return;
        }
        self.gone = true;
        self.queued.clear();
        self.file = None;
        wake(py, &mut self.send_waiter);
        wake(py, &mut self.disconnect_waiter);
        if self.app_done {
            return self.complete(py);
        }
        if let (Some(task), Some(on_gone)) = (&self.task, self.home.on_gone.borrow().as_ref()) {
            let _ = on_gone.call1(py, (task.clone_ref(py),));
        }
    }

    /// The stream is done (ended, reset or failed): the event loop gets it back for
    /// the access log and the connection's stream count.
    fn complete(&mut self, py: Python<'_>) {
        if matches!(self.phase, Phase::Complete) {
            return;
        }
        self.phase = Phase::Complete;
        if let Some(cycles) = self.home.h2_cycles.borrow_mut().get_mut(&self.index) {
            cycles.retain(|(serial, _)| *serial != self.serial);
        }
        if let Some(head) = self.head.take() {
            let outcome = Outcome {
                status: self.status,
                body_bytes: self.body_bytes,
                keep_alive: true,
                duration: self.started.elapsed(),
                extra: None,
            };
            self.home.finished.borrow_mut().push(Done {
                index: self.index,
                conn: Returned::H2Ended(self.conn_id),
                head,
                outcome,
            });
        }
        self.post_request(py);
        wake(py, &mut self.send_waiter);
        wake(py, &mut self.disconnect_waiter);
        self.home.after_response(py);
    }

    /// Runs `pre_request` when hooks are defined; false (and a 500 on the stream) when
    /// it raised, as for an HTTP/1 request.
    pub fn pre_request(&mut self, py: Python<'_>) -> bool {
        match super::request_hooks::pre_request(py, self.head.as_deref()) {
            Ok(req) => {
                self.hook_req = req;
                true
            }
            Err(req) => {
                self.hook_req = Some(req);
                self.app_done = true;
                self.fail(py);
                false
            }
        }
    }

    /// `post_request` once the stream is done (see `super::request_hooks`).
    fn post_request(&mut self, py: Python<'_>) {
        if let Some(req) = self.hook_req.take() {
            let headers = std::mem::take(&mut self.hook_headers);
            super::request_hooks::post_request(py, req, self.status, headers, self.body_bytes);
        }
    }

    /// Ends the response after an error: a 500 when nothing was sent yet, else a
    /// reset (the client sees a cut-off response, never a wrong one).
    fn fail(&mut self, py: Python<'_>) {
        match self.phase {
            // The response was whole already: its queued end still goes out.
            Phase::Complete | Phase::Ending => return,
            Phase::NotStarted | Phase::Started { .. } if !self.gone => {
                self.status = 500;
                let text = Bytes::from_static(b"Internal Server Error");
                let headers = vec![
                    ("content-type".to_string(), "text/plain".to_string()),
                    ("content-length".to_string(), text.len().to_string()),
                ];
                if self.hook_req.is_some() {
                    self.hook_headers = headers.clone();
                }
                if self.send_head(500, &headers, false).is_ok() && !self.gone {
                    // The page goes out as the window allows; the connection's turns
                    // finish it (see `poll`).
                    self.queued.push_back(text);
                    self.ending = Some(Ending::Eos);
                    self.phase = Phase::Ending;
                    self.pump(py);
                    return;
                }
            }
            _ => {}
        }
        self.reset(h2::Reason::INTERNAL_ERROR);
        self.complete(py);
    }

    fn reset(&mut self, reason: h2::Reason) {
        match self.send.as_mut() {
            Some(stream) => stream.send_reset(reason),
            None => self.respond.send_reset(reason),
        }
    }
}

/// Resolves an asyncio future held in `slot` (once; a done one is left alone).
fn wake(py: Python<'_>, slot: &mut Option<Py<PyAny>>) {
    if let Some(waiter) = slot.take() {
        let waiter = waiter.bind(py);
        let done = waiter
            .call_method0(intern!(py, "done"))
            .and_then(|d| d.is_truthy())
            .unwrap_or(true);
        if !done {
            let _ = waiter.call_method1(intern!(py, "set_result"), (py.None(),));
        }
    }
}

#[pymethods]
impl H2Cycle {
    /// The app's `receive()`: the body (one message, or 64 KiB pieces of a spooled
    /// one), then `runtime.py`'s `disconnected`, which waits for the end.
    fn areceive(mut slf: PyRefMut<'_, Self>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let message = PyDict::new(py);
        if let Some(body) = slf.body.as_mut() {
            let (chunk, more) = super::cycle::body_piece(body, PIECE)?;
            if !more {
                slf.body = None;
            }
            message.set_item(intern!(py, "type"), intern!(py, "http.request"))?;
            message.set_item(intern!(py, "body"), pyo3::types::PyBytes::new(py, &chunk))?;
            message.set_item(intern!(py, "more_body"), more)?;
            return Ok(Py::new(py, Ready::new(message.into_any().unbind()))?.into_any());
        }
        if slf.gone || matches!(slf.phase, Phase::Complete) {
            message.set_item(intern!(py, "type"), intern!(py, "http.disconnect"))?;
            return Ok(Py::new(py, Ready::new(message.into_any().unbind()))?.into_any());
        }
        let home = slf.home.clone();
        let cycle: Py<H2Cycle> = slf.into();
        home.wait_for_disconnect(py, cycle.into_any())
    }

    /// `runtime.py`'s `disconnected`: resolve `waiter` when the stream ends.
    fn wait_disconnect(&mut self, py: Python<'_>, waiter: Py<PyAny>) {
        self.disconnect_waiter = Some(waiter);
        if self.gone || matches!(self.phase, Phase::Complete) {
            wake(py, &mut self.disconnect_waiter);
        }
    }

    /// The app's `send(message)`: checked and handed to h2 now; what comes back is
    /// awaited — done at once, or `runtime.py`'s `h2_sent` when the flow-control window
    /// holds bytes back (or the client is gone).
    fn asend(mut slf: PyRefMut<'_, Self>, message: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let py = message.py();
        let message = message
            .cast::<PyDict>()
            .map_err(|_| PyTypeError::new_err("an ASGI message must be a dict"))?;
        let written = if slf.gone {
            false
        } else {
            slf.message(py, message)?
        };
        if written {
            return Ok(slf.home.done.clone_ref(py).into_any());
        }
        let sent = slf.home.h2_sent.borrow().as_ref().map(|s| s.clone_ref(py));
        let timeout = slf.home.timeout;
        let cycle: Py<H2Cycle> = slf.into();
        match sent {
            Some(sent) => sent.call1(py, (cycle, timeout)),
            None => Ok(py.None()),
        }
    }

    /// `runtime.py`'s `h2_sent`: resolve `waiter` once the queued bytes are out.
    fn wait_capacity(&mut self, py: Python<'_>, waiter: Py<PyAny>) {
        self.send_waiter = Some(waiter);
        if self.gone || self.pump(py) {
            wake(py, &mut self.send_waiter);
        }
    }

    /// The window stayed shut for `--timeout`: the stream is reset with CANCEL.
    fn timed_out(&mut self, py: Python<'_>) {
        tracing::warn!("HTTP/2 stream cancelled: the client did not open its flow-control window within --timeout");
        self.reset(h2::Reason::CANCEL);
        self.client_left(py);
    }

    fn client_gone(&self) -> bool {
        self.gone
    }

    /// The app's coroutine returned: a response it left unfinished is an error.
    fn app_returned(&mut self, py: Python<'_>) {
        self.app_done = true;
        if self.gone {
            return self.complete(py);
        }
        let what = match self.phase {
            Phase::Complete | Phase::Ending => return,
            Phase::NotStarted => "ASGI callable returned without starting a response",
            Phase::Trailers { .. } => "ASGI callable returned without sending its trailers",
            _ => "ASGI callable returned without completing the response",
        };
        tracing::error!("{what}");
        self.fail(py);
    }

    /// The app raised: its traceback is logged and the stream ended (500 if no
    /// response was started).
    fn app_failed(&mut self, py: Python<'_>, traceback: &str) {
        self.app_done = true;
        if self.gone {
            // The app's own answer to the client leaving (Starlette turns the
            // ClientDisconnected from send() into its ClientDisconnect): no error.
            tracing::debug!(
                "ASGI application ended after its client left\n{}",
                traceback.trim_end()
            );
            return self.complete(py);
        }
        tracing::error!(target: crate::log::EXCEPTION, "Error in ASGI application\n{}", traceback.trim_end());
        self.fail(py);
    }
}

/// A message's `type`.
fn kind<'py>(message: &Bound<'py, PyDict>) -> PyResult<Bound<'py, PyString>> {
    let py = message.py();
    message
        .get_item(intern!(py, "type"))?
        .ok_or_else(|| PyValueError::new_err("an ASGI message needs a 'type'"))?
        .cast_into::<PyString>()
        .map_err(|_| PyTypeError::new_err("an ASGI message's 'type' must be a str"))
}

fn out_of_order(kind: &str, phase: &Phase) -> PyErr {
    match phase {
        Phase::Complete | Phase::Ending => {
            PyRuntimeError::new_err(format!("{kind} after the response was complete"))
        }
        Phase::NotStarted => PyRuntimeError::new_err(format!("{kind} before http.response.start")),
        _ => PyRuntimeError::new_err(format!("{kind} out of order")),
    }
}
