//! One app call: environ in, status/headers/body out through a [`Sink`], with every
//! fault kept inside the request (500 before the head is sent; a closed connection
//! after), and `close()` called on the returned iterable whatever happens.

use pyo3::prelude::*;

pub use super::access_extra::{AccessExtra, AccessNeeds};
use super::environ::{self, Peer};
use super::response_body::stream;
use super::start_response::StartResponse;
pub use super::writer::Sink;
use super::writer::{Fault, Writer};
use super::Bridge;
use crate::http::body::Body;
use crate::http::request::Head;
use crate::http::response;

/// What happened, for the access log and the connection's next state.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: u16,
    pub body_bytes: u64,
    pub keep_alive: bool,
    /// From the start of the app call to the end of the response (Gunicorn's
    /// request_time); zero when neither the access log nor statsd reads it.
    pub duration: std::time::Duration,
    /// What the access-log format needs beyond the request head; `None` unless its
    /// format has `{..}o` or `{..}e` atoms.
    pub extra: Option<Box<AccessExtra>>,
}

impl Bridge {
    /// Runs the app for one request and streams its response into `sink`.
    pub fn call(
        &self,
        head: &Head,
        body: Body,
        peer: &Peer,
        keep_alive: bool,
        sink: &mut dyn Sink,
    ) -> Outcome {
        // Timed only when the access log or statsd reads the duration.
        let started = (self.timed || crate::log::statsd::enabled()).then(std::time::Instant::now);
        Python::attach(|py| {
            let mut extra = None;
            let mut writer = Writer {
                py,
                sink,
                // nginx's uwsgi module does not decode chunked responses.
                minor_version: if head.uwsgi { 0 } else { head.minor_version },
                is_head: head.is_head(),
                keep_alive,
                plan: None,
                status: 500,
                body_sent: 0,
                buf: Vec::new(),
            };
            writer.buf = writer.sink.lend_buffer();
            let mut seen = None;
            let req = if super::hooks::request_hooks() {
                super::hooks::request_object(py, head).ok()
            } else {
                None
            };
            let result = match &req {
                Some(req) => super::hooks::pre_request(py, req)
                    .map_err(Fault::Hook)
                    .and_then(|()| {
                        self.run(
                            py,
                            head,
                            body,
                            peer,
                            &mut writer,
                            &mut extra,
                            Some(&mut seen),
                        )
                    }),
                None => self.run(py, head, body, peer, &mut writer, &mut extra, None),
            };
            let mut outcome = match result {
                Ok(()) => Outcome {
                    status: writer.status,
                    body_bytes: writer.body_sent,
                    keep_alive: writer.plan.is_some_and(|p| p.keep_alive),
                    duration: Default::default(),
                    extra: None,
                },
                Err(fault) => self.fail(py, head, fault, &mut writer),
            };
            outcome.extra = extra;
            let buf = std::mem::take(&mut writer.buf);
            writer.sink.return_buffer(buf);
            outcome.duration = started.map(|s| s.elapsed()).unwrap_or_default();
            if let Some(req) = &req {
                post_request(py, req, seen, &outcome);
            }
            outcome
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn run<'py>(
        &self,
        py: Python<'py>,
        head: &Head,
        body: Body,
        peer: &Peer,
        w: &mut Writer<'_, '_>,
        extra: &mut Option<Box<AccessExtra>>,
        seen: Option<&mut Option<Seen<'py>>>,
    ) -> Result<(), Fault> {
        let body_len = body.len();
        let ((sr, callable), input, kept) = self.spare.take(py, body).map_err(Fault::App)?;
        let built = environ::build(
            py,
            &self.environ,
            head,
            body_len,
            peer,
            input.clone().into_any(),
            kept,
        )
        .map_err(Fault::App)?;
        let env = &built.dict;
        if let Some(seen) = seen {
            *seen = Some((env.clone().into_any(), sr.clone()));
        }
        let iterable = self
            .app
            .bind(py)
            .call1((env, &callable))
            .map_err(Fault::App)?;
        let streamed = stream(&iterable, &sr, w, self.sendfile);
        let closed = close_iterable(&iterable);
        if self.access_needs.any() {
            *extra = self.access_extra(env, &sr, head, peer);
        }
        // The iterable first: it may hold the environ (a generator's frame).
        drop(iterable);
        self.spare.keep((sr, callable), input, built);
        streamed?;
        if let Err(e) = closed {
            self.log_exception(
                py,
                &format!("Error closing the response of {}", head.target()),
                &e,
            );
        }
        Ok(())
    }

    /// Logs the fault and answers 500 if the head is not out yet; otherwise sends what
    /// is buffered and closes, so the client sees a truncated body, never a wrong one.
    fn fail(&self, py: Python<'_>, head: &Head, fault: Fault, w: &mut Writer<'_, '_>) -> Outcome {
        let what = format!("Error handling request {}", head.target());
        match &fault {
            Fault::App(e) => self.log_exception(py, &what, e),
            Fault::NotBytes(type_name) => tracing::error!(
                "{what}: the app yielded {type_name}, not bytes: WSGI response bodies must be \
                 an iterable of bytes (encode text first, e.g. [\"Hello!\".encode()])"
            ),
            Fault::NoStartResponse => {
                tracing::error!("{what}: the app returned without calling start_response()")
            }
            Fault::ClientGone(e) => tracing::debug!("{what}: client went away: {e}"),
            Fault::Hook(tb) => tracing::error!(target: crate::log::EXCEPTION, "{what}\n{tb}"),
        }
        if !w.started() && !matches!(fault, Fault::ClientGone(_)) {
            w.buf.clear();
            if w.sink.frames_itself() {
                send_framed_500(py, w.sink, head.is_head());
            } else {
                let page =
                    response::error_page(head.minor_version, 500, "Internal Server Error", "");
                let _ = w.sink.send(py, &page);
            }
            return Outcome {
                status: 500,
                body_bytes: 0,
                keep_alive: false,
                duration: Default::default(),
                extra: None,
            };
        }
        let _ = w.flush();
        w.sink.abort();
        Outcome {
            status: w.status,
            body_bytes: w.body_sent,
            keep_alive: false,
            duration: Default::default(),
            extra: None,
        }
    }
}

/// The 500 page through a sink that frames responses itself (an HTTP/2 stream); a
/// HEAD request gets the head alone.
fn send_framed_500(py: Python<'_>, sink: &mut dyn Sink, is_head: bool) {
    let body = response::error_body("Internal Server Error", "");
    let lines = b"Content-Type: text/html\r\n";
    let length = Some(body.len() as u64);
    let _ = sink
        .send_head(py, 500, lines, length, !is_head)
        .and_then(|()| {
            if is_head {
                return Ok(());
            }
            sink.send(py, body.as_bytes())?;
            sink.end(py)
        });
}

/// The environ and start_response of a call, kept for `post_request`.
type Seen<'py> = (Bound<'py, PyAny>, Bound<'py, StartResponse>);

/// `post_request(worker, req, environ, resp)` with what the app answered.
fn post_request<'py>(
    py: Python<'py>,
    req: &Bound<'py, PyAny>,
    seen: Option<Seen<'py>>,
    outcome: &Outcome,
) {
    let (environ, status, headers, headers_sent) = match seen {
        Some((env, sr)) => {
            let sr = sr.borrow();
            (env, sr.status_text(py), sr.headers(), sr.headers_sent)
        }
        None => (
            pyo3::types::PyDict::new(py).into_any(),
            None,
            Vec::new(),
            false,
        ),
    };
    let status =
        status.or_else(|| (outcome.status == 500).then(|| "500 Internal Server Error".into()));
    super::hooks::post_request(
        py,
        req,
        environ,
        (status, headers, outcome.body_bytes, headers_sent),
    );
}

/// PEP 3333: the server calls `close()` on the iterable if it has one, whatever happened.
/// Exact lists and tuples have no `close`; skipping the lookup for them matters because
/// a failed attribute lookup builds and discards an AttributeError with its message.
fn close_iterable(iterable: &Bound<'_, PyAny>) -> PyResult<()> {
    use pyo3::types::{PyList, PyTuple};
    if iterable.is_exact_instance_of::<PyList>() || iterable.is_exact_instance_of::<PyTuple>() {
        return Ok(());
    }
    if iterable.hasattr(pyo3::intern!(iterable.py(), "close"))? {
        iterable.call_method0("close")?;
    }
    Ok(())
}
