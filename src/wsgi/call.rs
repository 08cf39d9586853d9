//! One app call: environ in, status/headers/body out through a [`Sink`], with every
//! fault kept inside the request (500 before the head is sent; a closed connection
//! after), and `close()` called on the returned iterable whatever happens.

use std::io;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use super::environ::{self, Peer};
use super::input::InputStream;
use super::start_response::StartResponse;
use super::Bridge;
use crate::http::body::Body;
use crate::http::request::Head;
use crate::http::response::{self, Framing, Plan, PlanInput};

/// Where response bytes go. `send` may block until the client drains the socket when
/// too much is queued (it releases the GIL meanwhile, so other app threads run); an
/// error means the client is gone.
pub trait Sink {
    fn send(&mut self, py: Python<'_>, bytes: &[u8]) -> io::Result<()>;
}

/// What happened, for the access log and the connection's next state.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    pub status: u16,
    pub body_bytes: u64,
    pub keep_alive: bool,
}

/// Output is coalesced up to this size before it is handed to the sink.
const FLUSH_AT: usize = 64 * 1024;

/// Why a response could not be produced as the app intended.
enum Fault {
    App(PyErr),
    NotBytes(String),
    NoStartResponse,
    ClientGone(io::Error),
}

struct Writer<'s, 'py> {
    py: Python<'py>,
    sink: &'s mut dyn Sink,
    minor_version: u8,
    is_head: bool,
    keep_alive: bool,
    plan: Option<Plan>,
    status: u16,
    body_sent: u64,
    buf: Vec<u8>,
}

impl Writer<'_, '_> {
    fn started(&self) -> bool {
        self.plan.is_some()
    }

    /// Sends the head. `known_len` is a length the server computed itself (a list body
    /// or an empty one), used when the app declared none.
    fn start(
        &mut self,
        sr: &Bound<'_, StartResponse>,
        known_len: Option<u64>,
    ) -> Result<(), Fault> {
        let mut sr = sr.borrow_mut();
        if sr.status.is_none() {
            return Err(Fault::NoStartResponse);
        }
        let declared = sr.content_length;
        let content_length = declared.or(known_len);
        let plan = response::plan(&PlanInput {
            minor_version: self.minor_version,
            is_head: self.is_head,
            status: sr.code,
            content_length,
            keep_alive: self.keep_alive && !sr.close_requested,
        });
        // A length the server computed is announced unless the status forbids a body;
        // one the app declared is already among its headers.
        let computed = match (declared, plan.framing) {
            (None, Framing::Length(n)) => Some(n),
            _ => None,
        };
        let mut headers = std::mem::take(&mut sr.headers);
        if let Some(n) = computed {
            headers.push(("Content-Length".to_string(), n.to_string()));
        }
        response::write_head(
            &mut self.buf,
            self.minor_version,
            sr.status.as_deref().unwrap_or(""),
            &headers,
            &plan,
        );
        sr.headers = headers;
        sr.headers_sent = true;
        self.status = sr.code;
        self.plan = Some(plan);
        Ok(())
    }

    fn body(&mut self, data: &[u8]) -> Result<(), Fault> {
        let framing = self.plan.expect("head sent before body").framing;
        let data = match framing {
            Framing::NoBody => return Ok(()),
            Framing::Length(n) => {
                &data[..(n.saturating_sub(self.body_sent)).min(data.len() as u64) as usize]
            }
            Framing::Chunked | Framing::UntilClose => data,
        };
        if data.is_empty() {
            return Ok(());
        }
        if framing == Framing::Chunked {
            response::push_chunk(&mut self.buf, data);
        } else {
            self.buf.extend_from_slice(data);
        }
        self.body_sent += data.len() as u64;
        if self.buf.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Fault> {
        if !self.buf.is_empty() {
            self.sink
                .send(self.py, &self.buf)
                .map_err(Fault::ClientGone)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Ends the body: the last chunk, or a check that a declared length was met (a
    /// short body cannot be followed by another response on this connection).
    fn finish(&mut self) -> Result<(), Fault> {
        let plan = self.plan.as_mut().expect("head sent before finish");
        match plan.framing {
            Framing::Chunked => self.buf.extend_from_slice(response::LAST_CHUNK),
            Framing::Length(n) if self.body_sent < n => plan.keep_alive = false,
            _ => {}
        }
        self.flush()
    }
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
        Python::attach(|py| {
            let mut writer = Writer {
                py,
                sink,
                minor_version: head.minor_version,
                is_head: head.is_head(),
                keep_alive,
                plan: None,
                status: 500,
                body_sent: 0,
                buf: Vec::with_capacity(512),
            };
            let result = self.run(py, head, body, peer, &mut writer);
            match result {
                Ok(()) => Outcome {
                    status: writer.status,
                    body_bytes: writer.body_sent,
                    keep_alive: writer.plan.is_some_and(|p| p.keep_alive),
                },
                Err(fault) => self.fail(py, head, fault, &mut writer),
            }
        })
    }

    fn run(
        &self,
        py: Python<'_>,
        head: &Head,
        body: Body,
        peer: &Peer,
        w: &mut Writer<'_, '_>,
    ) -> Result<(), Fault> {
        let body_len = body.len();
        let input = Bound::new(py, InputStream::new(body))
            .map_err(Fault::App)?
            .into_any();
        let env =
            environ::build(py, &self.environ, head, body_len, peer, input).map_err(Fault::App)?;
        let sr = Bound::new(py, StartResponse::default()).map_err(Fault::App)?;
        let iterable = self.app.bind(py).call1((env, &sr)).map_err(Fault::App)?;
        let streamed = stream(&iterable, &sr, w);
        let closed = close_iterable(&iterable);
        streamed?;
        if let Err(e) = closed {
            self.log_exception(
                py,
                &format!("Error closing the response of {}", head.target),
                &e,
            );
        }
        Ok(())
    }

    /// Logs the fault and answers 500 if the head is not out yet; otherwise sends what
    /// is buffered and closes, so the client sees a truncated body, never a wrong one.
    fn fail(&self, py: Python<'_>, head: &Head, fault: Fault, w: &mut Writer<'_, '_>) -> Outcome {
        let what = format!("Error handling request {}", head.target);
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
        }
        if !w.started() && !matches!(fault, Fault::ClientGone(_)) {
            w.buf.clear();
            let page = response::error_page(head.minor_version, 500, "Internal Server Error", "");
            let _ = w.sink.send(py, &page);
            return Outcome {
                status: 500,
                body_bytes: 0,
                keep_alive: false,
            };
        }
        let _ = w.flush();
        Outcome {
            status: w.status,
            body_bytes: w.body_sent,
            keep_alive: false,
        }
    }
}

/// Iterates the app's result into the writer. Lists and tuples of bytes (the common
/// `return [body]`) get a Content-Length instead of chunked framing.
fn stream(
    iterable: &Bound<'_, PyAny>,
    sr: &Bound<'_, StartResponse>,
    w: &mut Writer<'_, '_>,
) -> Result<(), Fault> {
    let written = std::mem::take(&mut sr.borrow_mut().written);
    if !written.is_empty() {
        w.start(sr, None)?;
        w.body(&written)?;
    }
    if !w.started() {
        if let Some(total) = sequence_len(iterable)? {
            w.start(sr, Some(total))?;
        }
    }
    for item in iterable.try_iter().map_err(Fault::App)? {
        let item = item.map_err(Fault::App)?;
        let bytes = item.cast::<PyBytes>().map_err(|_| not_bytes(&item))?;
        let data = bytes.as_bytes();
        if data.is_empty() {
            continue;
        }
        if !w.started() {
            w.start(sr, None)?;
        }
        w.body(data)?;
    }
    if !w.started() {
        w.start(sr, Some(0))?;
    }
    w.finish()
}

/// The total length of a list or tuple whose items are all bytes.
fn sequence_len(obj: &Bound<'_, PyAny>) -> Result<Option<u64>, Fault> {
    let items: Vec<Bound<'_, PyAny>> = if let Ok(list) = obj.cast::<PyList>() {
        list.iter().collect()
    } else if let Ok(tuple) = obj.cast::<PyTuple>() {
        tuple.iter().collect()
    } else {
        return Ok(None);
    };
    let mut total = 0u64;
    for item in &items {
        let bytes = item.cast::<PyBytes>().map_err(|_| not_bytes(item))?;
        total += bytes.as_bytes().len() as u64;
    }
    Ok(Some(total))
}

fn not_bytes(item: &Bound<'_, PyAny>) -> Fault {
    Fault::NotBytes(
        item.get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "?".into()),
    )
}

/// PEP 3333: the server calls `close()` on the iterable if it has one, whatever happened.
fn close_iterable(iterable: &Bound<'_, PyAny>) -> PyResult<()> {
    if iterable.hasattr("close")? {
        iterable.call_method0("close")?;
    }
    Ok(())
}
