//! The response side of an HTTP/2 cycle: each `send()` message checked and handed to
//! h2 — `http.response.start` (with `trailers`), `http.response.informational` (a 1xx
//! such as 103 Early Hints), `http.response.body`, `http.response.pathsend` (the file
//! read in pieces: HTTP/2 frames cannot be sendfile(2)d) and `http.response.trailers`
//! — and [`H2Cycle::pump`], which moves queued body bytes into the flow-control window.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Read;
use std::task::{Context, Poll};

use bytes::Bytes;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::{kind, out_of_order, Ending, H2Cycle, Phase, PIECE};
use crate::asgi::cycle::{content_length_value, message_headers, open_regular, status_in};

/// How far [`H2Cycle::pump`] got.
enum Step {
    /// Everything queued is with h2.
    Drained,
    /// The window is shut; the connection's turn goes on when it opens.
    Waiting,
    Gone,
}

impl H2Cycle {
    /// One `send()` message; true when nothing is left waiting for the window.
    pub(super) fn message(
        &mut self,
        py: Python<'_>,
        message: &Bound<'_, PyDict>,
    ) -> PyResult<bool> {
        let kind = kind(message)?;
        let kind = kind.to_str()?;
        match (kind, &self.phase) {
            ("http.response.start", Phase::NotStarted) => self.start(message)?,
            ("http.response.informational", Phase::NotStarted) => self.informational(message)?,
            ("http.response.body", Phase::Started { .. } | Phase::Streaming { .. }) => {
                self.body(py, message)?
            }
            ("http.response.pathsend", Phase::Started { .. }) => self.pathsend(py, message)?,
            ("http.response.trailers", Phase::Trailers { .. }) => self.trailers(message)?,
            (
                "http.response.start"
                | "http.response.informational"
                | "http.response.body"
                | "http.response.pathsend"
                | "http.response.trailers",
                phase,
            ) => return Err(out_of_order(kind, phase)),
            (other, _) => {
                return Err(PyValueError::new_err(format!(
                    "unknown ASGI message type {other:?} for an http scope"
                )))
            }
        }
        Ok(self.pump(py) && !self.gone)
    }

    fn start(&mut self, message: &Bound<'_, PyDict>) -> PyResult<()> {
        let py = message.py();
        let status = status_in(message, 200..=599)?;
        let mut content_length = None;
        let headers = message_headers(message)?;
        for (name, value) in &headers {
            if name.eq_ignore_ascii_case("content-length") {
                content_length = Some(content_length_value(value)?);
            }
        }
        self.wants_trailers = match message.get_item(intern!(py, "trailers"))? {
            Some(t) => t.is_truthy()?,
            None => false,
        };
        self.status = status;
        if self.hook_req.is_some() {
            self.hook_headers = headers.clone();
        }
        self.phase = Phase::Started {
            status,
            headers,
            content_length,
        };
        Ok(())
    }

    /// A 1xx interim response (103 Early Hints) before the final one.
    fn informational(&mut self, message: &Bound<'_, PyDict>) -> PyResult<()> {
        let status = status_in(message, 100..=199)?;
        let mut builder = http::Response::builder().status(status);
        for (name, value) in message_headers(message)? {
            builder = builder.header(name.to_ascii_lowercase(), latin1_bytes(&value));
        }
        let head = builder
            .body(())
            .map_err(|e| PyValueError::new_err(format!("{status} cannot go over HTTP/2: {e}")))?;
        // A stream the client reset already: the next send() reports it.
        let _ = self.respond.send_informational(head);
        Ok(())
    }

    /// Sends the response head (the stream ends with it when `eos`).
    pub(super) fn send_head(
        &mut self,
        status: u16,
        headers: &[(String, String)],
        eos: bool,
    ) -> PyResult<()> {
        let head = crate::http::h2::response_head(status, headers)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        match self.respond.send_response(head, eos) {
            Ok(stream) => self.send = (!eos).then_some(stream),
            Err(_) => self.gone = true,
        }
        Ok(())
    }

    /// The head, once, from a started response: with a content-length when the
    /// whole body is known now (`length`). True when the stream ended with it.
    fn head_once(&mut self, py: Python<'_>, length: Option<u64>, empty: bool) -> PyResult<bool> {
        let Phase::Started { .. } = self.phase else {
            return Ok(false);
        };
        let Phase::Started {
            status,
            mut headers,
            content_length,
        } = std::mem::replace(&mut self.phase, Phase::Ending)
        else {
            unreachable!("matched above")
        };
        if let (None, Some(n)) = (content_length, length) {
            headers.push(("content-length".to_string(), n.to_string()));
        }
        let is_head = self.head.as_ref().is_some_and(|h| h.is_head());
        let eos = (empty || is_head) && length.is_some() && !self.wants_trailers;
        self.send_head(status, &headers, eos)?;
        self.phase = Phase::Streaming {
            declared: content_length.or(length),
        };
        if eos || self.gone {
            self.complete(py);
        }
        Ok(eos || self.gone)
    }

    fn body(&mut self, py: Python<'_>, message: &Bound<'_, PyDict>) -> PyResult<()> {
        let data: Vec<u8> = match message.get_item(intern!(py, "body"))? {
            Some(b) => b
                .extract()
                .map_err(|_| PyTypeError::new_err("body must be bytes"))?,
            None => Vec::new(),
        };
        let more = match message.get_item(intern!(py, "more_body"))? {
            Some(m) => m.is_truthy()?,
            None => false,
        };
        let length = (!more).then_some(data.len() as u64);
        if self.head_once(py, length, data.is_empty())? {
            return Ok(());
        }
        let Phase::Streaming { declared } = self.phase else {
            return Ok(());
        };
        let is_head = self.head.as_ref().is_some_and(|h| h.is_head());
        if !is_head && !data.is_empty() {
            if let Some(n) = declared.filter(|&n| self.body_bytes + data.len() as u64 > n) {
                return Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
                    "response body longer than its content-length {n}"
                )));
            }
            self.body_bytes += data.len() as u64;
            self.queued.push_back(Bytes::from(data));
        }
        if !more {
            self.body_done();
        }
        Ok(())
    }

    /// The body is all given: trailers follow when announced, else the stream ends.
    fn body_done(&mut self) {
        if self.wants_trailers {
            self.phase = Phase::Trailers {
                fields: http::HeaderMap::new(),
            };
        } else {
            self.ending = Some(Ending::Eos);
            self.phase = Phase::Ending;
        }
    }

    fn pathsend(&mut self, py: Python<'_>, message: &Bound<'_, PyDict>) -> PyResult<()> {
        let path: std::path::PathBuf = message
            .get_item(intern!(py, "path"))?
            .ok_or_else(|| PyValueError::new_err("http.response.pathsend without a path"))?
            .extract()
            .map_err(|_| PyTypeError::new_err("http.response.pathsend: path must be a str"))?;
        if !path.is_absolute() {
            return Err(PyValueError::new_err(format!(
                "http.response.pathsend: {path:?} is not an absolute path"
            )));
        }
        let (file, size) = open_regular(&path)?;
        if let Phase::Started {
            content_length: Some(n),
            ..
        } = self.phase
        {
            if n != size {
                return Err(PyValueError::new_err(format!(
                    "http.response.pathsend: content-length {n} but {path:?} has {size} bytes"
                )));
            }
        }
        if self.head_once(py, Some(size), size == 0)? {
            return Ok(());
        }
        if !self.head.as_ref().is_some_and(|h| h.is_head()) {
            self.file = Some((file, size));
            self.body_bytes = size;
        }
        self.body_done();
        Ok(())
    }

    fn trailers(&mut self, message: &Bound<'_, PyDict>) -> PyResult<()> {
        let py = message.py();
        let more = match message.get_item(intern!(py, "more_trailers"))? {
            Some(m) => m.is_truthy()?,
            None => false,
        };
        let Phase::Trailers { fields } = &mut self.phase else {
            return Ok(());
        };
        for (name, value) in message_headers(message)? {
            let name = http::HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).map_err(
                |e| PyValueError::new_err(format!("invalid trailer name {name:?}: {e}")),
            )?;
            let value = http::HeaderValue::from_bytes(&latin1_bytes(&value))
                .map_err(|e| PyValueError::new_err(format!("invalid trailer value: {e}")))?;
            fields.append(name, value);
        }
        if !more {
            let fields = std::mem::take(fields);
            self.ending = Some(Ending::Trailers(fields));
            self.phase = Phase::Ending;
        }
        Ok(())
    }

    /// Moves queued body bytes into the window, then ends the stream when its end is
    /// due. True when nothing is left waiting for capacity.
    pub(super) fn pump(&mut self, py: Python<'_>) -> bool {
        if self.gone {
            return true;
        }
        match self.feed() {
            Step::Waiting => return false,
            Step::Gone => {
                self.client_left(py);
                return true;
            }
            Step::Drained => {}
        }
        let Some(ending) = self.ending.take() else {
            return true;
        };
        let ended = match (self.send.as_mut(), ending) {
            (Some(stream), Ending::Eos) => stream.send_data(Bytes::new(), true),
            (Some(stream), Ending::Trailers(fields)) => stream.send_trailers(fields),
            (None, _) => Ok(()),
        };
        if ended.is_err() {
            self.client_left(py);
        }
        self.complete(py);
        true
    }

    /// The flow-control loop: send what the window grants, ask for more.
    fn feed(&mut self) -> Step {
        let waker = self.waker.clone();
        let mut cx = Context::from_waker(&waker);
        loop {
            if self.queued.is_empty() {
                if let Err(e) = refill(&mut self.file, &mut self.queued) {
                    tracing::error!("http.response.pathsend: cannot read the file: {e}");
                    if let Some(stream) = self.send.as_mut() {
                        stream.send_reset(h2::Reason::INTERNAL_ERROR);
                    }
                    return Step::Gone;
                }
            }
            let Some(stream) = self.send.as_mut() else {
                return Step::Drained;
            };
            let Some(front) = self.queued.front_mut() else {
                return Step::Drained;
            };
            if front.is_empty() {
                self.queued.pop_front();
                continue;
            }
            let granted = stream.capacity();
            if granted > 0 {
                let piece = front.split_to(granted.min(front.len()));
                if stream.send_data(piece, false).is_err() {
                    return Step::Gone;
                }
                continue;
            }
            stream.reserve_capacity(front.len().min(PIECE));
            match stream.poll_capacity(&mut cx) {
                Poll::Ready(Some(Ok(_))) => {}
                Poll::Ready(Some(Err(_))) | Poll::Ready(None) => return Step::Gone,
                Poll::Pending => return Step::Waiting,
            }
        }
    }
}

/// The next piece of a pathsend file, when the queue is empty.
fn refill(file: &mut Option<(File, u64)>, queued: &mut VecDeque<Bytes>) -> std::io::Result<()> {
    let Some((f, left)) = file.as_mut() else {
        return Ok(());
    };
    let want = (*left).min(PIECE as u64) as usize;
    let mut piece = vec![0u8; want];
    f.read_exact(&mut piece)?;
    *left -= want as u64;
    if *left == 0 {
        *file = None;
    }
    queued.push_back(Bytes::from(piece));
    Ok(())
}

/// A header value as the ASGI message gave it (latin-1 text): its bytes.
fn latin1_bytes(text: &str) -> Vec<u8> {
    text.chars().map(|c| c as u32 as u8).collect()
}
