//! The response side of an HTTP cycle: each `send()` message checked and framed —
//! `http.response.start`, `http.response.informational` (103 Early Hints),
//! `http.response.body` and `http.response.pathsend` (a file, sent with sendfile(2)).

use std::borrow::Cow;
use std::fs::File;

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use super::{HttpCycle, Response};
use crate::http::response::{self, Framing, Plan, PlanInput};
use crate::http::target::latin1;

/// `message[key]`, or None when absent.
fn get<'py>(
    message: &Bound<'py, PyDict>,
    key: &Bound<'py, PyString>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    message.get_item(key)
}

/// A message's `status`, which must be an int in `range`.
pub(in crate::asgi) fn status_in(
    message: &Bound<'_, PyDict>,
    range: std::ops::RangeInclusive<u16>,
) -> PyResult<u16> {
    let py = message.py();
    // The message's type, for an error (formatted only then: this runs per response).
    let kind = || {
        get(message, intern!(py, "type"))
            .ok()
            .flatten()
            .map_or(String::new(), |t| t.to_string())
    };
    let status: u16 = get(message, intern!(py, "status"))?
        .ok_or_else(|| PyValueError::new_err(format!("{} without a status", kind())))?
        .extract()
        .map_err(|_| PyValueError::new_err(format!("{}: the status must be an int", kind())))?;
    if !range.contains(&status) || status == 101 {
        let kind = kind();
        return Err(PyValueError::new_err(format!(
            "invalid status {status} for {kind}: it takes {} to {}{}",
            range.start(),
            range.end(),
            if range.contains(&101) {
                ", not 101"
            } else {
                ""
            }
        )));
    }
    Ok(status)
}

/// The `headers` of a response, informational, WebSocket accept or denial message:
/// an iterable of `[name, value]` byte strings, each checked by [`check_header`] and
/// returned as latin-1 text (what the head writer and the hooks take).
pub(in crate::asgi) fn message_headers(
    message: &Bound<'_, PyDict>,
) -> PyResult<Vec<(String, String)>> {
    let mut out = Vec::new();
    for_each_header(message, |name, value| {
        out.push((text(name), text(value)));
        Ok(())
    })?;
    Ok(out)
}

/// Calls `each` with every `[name, value]` of a message's `headers`, checked by
/// [`check_header`], as the bytes the app gave. A list of 2-tuples of `bytes`, what
/// apps send, is read in place, without the generic iteration and indexing.
fn for_each_header(
    message: &Bound<'_, PyDict>,
    mut each: impl FnMut(&[u8], &[u8]) -> PyResult<()>,
) -> PyResult<()> {
    let py = message.py();
    let Some(list) = get(message, intern!(py, "headers"))? else {
        return Ok(());
    };
    let mut pair = |item: &Bound<'_, PyAny>| -> PyResult<()> {
        if let Ok(tuple) = item.cast::<PyTuple>() {
            if let [name, value] = tuple.as_slice() {
                return checked_pair(name, value, &mut each);
            }
        }
        checked_pair(&item.get_item(0)?, &item.get_item(1)?, &mut each)
    };
    if let Ok(list) = list.cast::<PyList>() {
        for item in list.iter() {
            pair(&item)?;
        }
        return Ok(());
    }
    for item in list.try_iter()? {
        pair(&item?)?;
    }
    Ok(())
}

fn checked_pair(
    name: &Bound<'_, PyAny>,
    value: &Bound<'_, PyAny>,
    each: &mut impl FnMut(&[u8], &[u8]) -> PyResult<()>,
) -> PyResult<()> {
    let name = header_bytes(name, "header names must be bytes")?;
    let value = header_bytes(value, "header values must be bytes")?;
    check_header(&name, &value)?;
    each(&name, &value)
}

/// Latin-1 bytes as text; ASCII (always a checked name, nearly always a value) is
/// copied whole, without `latin1`'s second pass over the bytes.
fn text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(ascii) if bytes.is_ascii() => ascii.to_owned(),
        _ => latin1(bytes),
    }
}

/// One header name or value: a `bytes` is read in place (the common case, no copy),
/// anything else byte-like through pyo3.
fn header_bytes<'a>(
    item: &'a Bound<'_, PyAny>,
    not_bytes: &'static str,
) -> PyResult<Cow<'a, [u8]>> {
    match item.cast::<PyBytes>() {
        Ok(b) => Ok(Cow::Borrowed(b.as_bytes())),
        Err(_) => item
            .extract::<Vec<u8>>()
            .map(Cow::Owned)
            .map_err(|_| PyTypeError::new_err(not_bytes)),
    }
}

/// A response header as RFC 9110 allows it: a token name, a value without CR, LF, NUL
/// or other control bytes (tab allowed).
fn check_header(name: &[u8], value: &[u8]) -> PyResult<()> {
    // The usual header, letters, digits and dashes in its name and printable ASCII in
    // its value, is passed by these two cheap loops; only another is looked at byte by
    // byte for what is wrong with it.
    let plain_name =
        !name.is_empty() && name.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-');
    if plain_name && value.iter().all(|&b| (0x20..0x7f).contains(&b)) {
        return Ok(());
    }
    if name.is_empty() || !name.iter().all(|&b| crate::http::is_token_byte(b)) {
        return Err(PyValueError::new_err(format!(
            "invalid header name {:?}",
            latin1(name)
        )));
    }
    if let Some(what) = value
        .iter()
        .find_map(|&b| response::header_value_problem(b.into()))
    {
        return Err(PyValueError::new_err(format!(
            "invalid header value for {}: {:?} {what}",
            latin1(name),
            latin1(value)
        )));
    }
    Ok(())
}

impl HttpCycle {
    /// `http.response.start`: the status and headers, checked; the app's headers are
    /// kept as the wire-ready lines they become (latin-1 bytes are the wire's bytes),
    /// not as text to be turned back into bytes when the head is written.
    pub(super) fn start(&mut self, message: &Bound<'_, PyDict>) -> PyResult<()> {
        let status = status_in(message, 200..=599)?;
        let mut lines = Vec::with_capacity(128);
        let mut content_length = None;
        let mut close = false;
        let hooks = self.hook_req.is_some();
        let mut hook_headers = Vec::new();
        for_each_header(message, |name, value| {
            if name.eq_ignore_ascii_case(b"content-length") {
                content_length = Some(content_length_value(&text(value))?);
            }
            if name.eq_ignore_ascii_case(b"connection")
                && value
                    .split(|&b| b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
            {
                close = true;
            }
            if !response::is_hop_by_hop_bytes(name) {
                response::push_header_bytes(&mut lines, name, value);
                if hooks {
                    hook_headers.push((text(name), text(value)));
                }
            }
            Ok(())
        })?;
        self.status = status;
        self.hook_headers = hook_headers;
        self.response = Response::Started {
            status,
            lines,
            content_length,
            close,
        };
        Ok(())
    }

    /// `http.response.informational` (ASGI 2.4): a 1xx interim response such as 103
    /// Early Hints, written at once; HTTP/1.0 clients, which know no 1xx, get nothing.
    pub(super) fn informational(&mut self, message: &Bound<'_, PyDict>) -> PyResult<()> {
        let status = status_in(message, 100..=199)?;
        let mut out =
            format!("HTTP/1.1 {status} {}\r\n", response::reason_phrase(status)).into_bytes();
        for_each_header(message, |name, value| {
            response::push_header_bytes(&mut out, name, value);
            Ok(())
        })?;
        out.extend_from_slice(b"\r\n");
        if self.minor_version() >= 1 {
            self.write(&out);
        }
        Ok(())
    }

    /// The response head, framed for a body of `length` bytes when known, into `out`;
    /// taken only from a started response (else the error for `kind`).
    fn head(&mut self, out: &mut Vec<u8>, length: Option<u64>, kind: &str) -> PyResult<Plan> {
        match std::mem::replace(&mut self.response, Response::Complete) {
            Response::Started {
                status,
                lines,
                content_length: declared,
                close,
            } => {
                let plan = response::plan(&PlanInput {
                    minor_version: self.minor_version(),
                    is_head: self.is_head_request(),
                    status,
                    content_length: declared.or(length),
                    keep_alive: self.keep_alive && !close,
                });
                let line = status_line(status);
                response::start_head(out, self.minor_version(), &line, &plan);
                out.extend_from_slice(&lines);
                if declared.is_none() {
                    if let Framing::Length(n) = plan.framing {
                        response::push_content_length(out, n);
                    }
                }
                response::end_head(out, &plan);
                Ok(plan)
            }
            Response::Streaming { plan } => Ok(plan),
            other => {
                self.response = other;
                Err(PyRuntimeError::new_err(format!(
                    "{kind} before http.response.start"
                )))
            }
        }
    }

    /// One `http.response.body`: the head first if this is the first, then the bytes
    /// framed as planned. Returns whether the response is now complete.
    pub(super) fn body(&mut self, message: &Bound<'_, PyDict>) -> PyResult<bool> {
        let py = message.py();
        let body = get(message, intern!(py, "body"))?;
        // A `bytes` body is read in place; other byte-likes are copied.
        let data: Cow<'_, [u8]> = match &body {
            Some(b) => match b.cast::<PyBytes>() {
                Ok(b) => Cow::Borrowed(b.as_bytes()),
                Err(_) => Cow::Owned(
                    b.extract()
                        .map_err(|_| PyTypeError::new_err("body must be bytes"))?,
                ),
            },
            None => Cow::Borrowed(&[]),
        };
        let more = match get(message, intern!(py, "more_body"))? {
            Some(m) => m.is_truthy()?,
            None => false,
        };
        let mut out = Vec::with_capacity(data.len() + 256);
        let length = (!more).then_some(data.len() as u64);
        let plan = self.head(&mut out, length, "http.response.body")?;
        match plan.framing {
            Framing::NoBody => {}
            Framing::Chunked => {
                response::push_chunk(&mut out, &data);
                if !more {
                    out.extend_from_slice(response::LAST_CHUNK);
                }
            }
            Framing::Length(n) => {
                if self.body_bytes + data.len() as u64 > n {
                    self.response = Response::Streaming { plan };
                    return Err(PyRuntimeError::new_err(format!(
                        "response body longer than its content-length {n}"
                    )));
                }
                out.extend_from_slice(&data);
            }
            Framing::UntilClose => out.extend_from_slice(&data),
        }
        if plan.framing != Framing::NoBody {
            self.body_bytes += data.len() as u64;
        }
        self.write(&out);
        // A declared length the body fell short of cannot keep the connection.
        let short = matches!(plan.framing, Framing::Length(n) if self.body_bytes < n);
        if more {
            self.response = Response::Streaming { plan };
            return Ok(false);
        }
        self.hand_back(py, plan.keep_alive && !short);
        Ok(true)
    }

    /// `http.response.pathsend` (ASGI's pathsend extension): the whole body is the file
    /// at `path`, an absolute path. It is queued behind the head and sent as the
    /// client reads (sendfile(2) unless `--no-sendfile` or TLS); the response is
    /// complete for the app at once.
    pub(super) fn pathsend(&mut self, message: &Bound<'_, PyDict>) -> PyResult<()> {
        let py = message.py();
        let path: std::path::PathBuf = get(message, intern!(py, "path"))?
            .ok_or_else(|| PyValueError::new_err("http.response.pathsend without a path"))?
            .extract()
            .map_err(|_| PyTypeError::new_err("http.response.pathsend: path must be a str"))?;
        if !path.is_absolute() {
            return Err(PyValueError::new_err(format!(
                "http.response.pathsend: {path:?} is not an absolute path"
            )));
        }
        if !matches!(self.response, Response::Started { .. }) {
            return Err(PyRuntimeError::new_err(
                "http.response.pathsend must follow http.response.start and be the whole body",
            ));
        }
        let (file, size) = open_regular(&path)?;
        if let Response::Started {
            content_length,
            lines,
            ..
        } = &mut self.response
        {
            match *content_length {
                Some(n) if n != size => {
                    return Err(PyValueError::new_err(format!(
                        "http.response.pathsend: content-length {n} but {path:?} has {size} bytes"
                    )))
                }
                // Declared, so that a HEAD response shows the length a GET would send.
                Some(_) => {}
                None => {
                    *content_length = Some(size);
                    response::push_content_length(lines, size);
                }
            }
        }
        let mut out = Vec::with_capacity(256);
        let plan = self.head(&mut out, Some(size), "http.response.pathsend")?;
        let sent = if plan.framing == Framing::NoBody {
            0
        } else {
            size
        };
        if let Some(conn) = self.conn.as_mut() {
            conn.queue_output(&out);
            conn.queue_file(file, 0, sent, self.home.sendfile);
        }
        self.body_bytes = sent;
        self.write(&[]);
        self.hand_back(py, plan.keep_alive);
        Ok(())
    }
}

/// `200 OK`: the status and its reason, without the formatting machinery (per
/// response); the status is three digits (checked by [`status_in`]).
fn status_line(status: u16) -> String {
    let reason = response::reason_phrase(status);
    let mut line = String::with_capacity(4 + reason.len());
    for digit in [status / 100 % 10, status / 10 % 10, status % 10] {
        line.push(char::from(b'0' + digit as u8));
    }
    line.push(' ');
    line.push_str(reason);
    line
}

/// A response's `content-length` value: digits only (no sign, no `+`), else the app
/// hears which value was wrong.
pub(in crate::asgi) fn content_length_value(value: &str) -> PyResult<u64> {
    let digits = value.trim();
    digits
        .parse::<u64>()
        .ok()
        .filter(|_| digits.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| PyValueError::new_err(format!("invalid content-length {value:?}")))
}

/// Opens `path` for pathsend: a regular file, and its size.
pub(in crate::asgi) fn open_regular(path: &std::path::Path) -> PyResult<(File, u64)> {
    let fail = |e: std::io::Error| {
        pyo3::exceptions::PyOSError::new_err(format!("http.response.pathsend: {path:?}: {e}"))
    };
    let file = File::open(path).map_err(fail)?;
    let meta = file.metadata().map_err(fail)?;
    if !meta.is_file() {
        return Err(PyValueError::new_err(format!(
            "http.response.pathsend: {path:?} is not a regular file"
        )));
    }
    Ok((file, meta.len()))
}
