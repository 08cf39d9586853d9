//! `start_response(status, headers, exc_info=None)` and the `write()` callable it
//! returns. Problems with what the app passes (a status that is not `NNN Reason`, a
//! header that is not a pair of str, a name that is not a token, CR/LF/NUL or another
//! control byte in a value) raise inside the app's call, so the traceback points at
//! the app's line, the error log names the problem and the request gets a 500: nothing
//! the app sends is ever written raw. Hop-by-hop headers, Server and Date are the
//! server's and are dropped, as Gunicorn does (see [`is_hop_by_hop`]).
//!
//! The `write` callable start_response returns is the start_response object itself:
//! called with one argument it writes. Returning a bound method instead made and freed
//! a method object on every request (about 1% of a hello request's instructions), for a
//! callable almost no app uses. Called with one argument before the response started,
//! it is start_response missing its headers, and says so.

use pyo3::exceptions::{PyAssertionError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

use crate::http::is_token_byte;
use crate::http::response::{
    header_value_problem, is_hop_by_hop, parse_status, push_header_bytes, push_header_line,
};

/// What the app has said about its response so far.
#[pyclass(module = "rustcorn", name = "StartResponse")]
#[derive(Default)]
pub struct StartResponse {
    /// `"200 OK"`, once start_response was called: the app's own str (validated), not a
    /// copy, which cost an allocation per request.
    pub status: Option<Py<PyString>>,
    pub code: u16,
    /// The app's headers minus hop-by-hop ones, as they go on the wire: `Name: value\r\n`
    /// each, the value trimmed and in latin-1. One buffer rather than two `String`s per
    /// header: those were four allocations and frees for a hello response's two headers.
    /// [`StartResponse::headers`] gives them back as pairs.
    pub header_lines: Vec<u8>,
    pub content_length: Option<u64>,
    /// The app sent `Connection: close`.
    pub close_requested: bool,
    /// Set by the server once the head is on its way to the client.
    pub headers_sent: bool,
    /// Bytes given to `write()`, sent before the iterable's items.
    pub written: Vec<u8>,
    /// Where a call's headers are checked into before they replace `header_lines`
    /// (a failed call leaves the earlier ones); kept with its capacity.
    scratch: Vec<u8>,
    /// Header names checked before (see [`KnownNames`]); kept across requests.
    names: KnownNames,
}

/// Header names an app passed before, by identity, with what they are: an app's names
/// are mostly constants of its code, the same str object on every request, so for
/// them the token check and the Content-Length and hop-by-hop comparisons are done
/// once (about 60 instructions per header). The strs are held, so an address seen here
/// is never another string's. At most [`KNOWN_NAMES`].
#[derive(Default)]
struct KnownNames(Vec<(Py<PyString>, NameKind)>);

const KNOWN_NAMES: usize = 8;

/// What a (valid) response header name is to the server.
#[derive(Clone, Copy, PartialEq, Eq)]
enum NameKind {
    /// Sent as the app gave it.
    Kept,
    ContentLength,
    /// `Connection`: dropped, but its value may ask to close.
    Connection,
    /// Another hop-by-hop header (or Server, Date): dropped.
    Dropped,
}

#[pymethods]
impl StartResponse {
    #[pyo3(signature = (status, headers=None, exc_info=None))]
    fn __call__<'py>(
        slf: &Bound<'py, Self>,
        status: &Bound<'py, PyAny>,
        headers: Option<&Bound<'py, PyAny>>,
        exc_info: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let Some(headers) = headers else {
            // `write(data)`, or start_response without its headers.
            if slf.borrow().status.is_none() || exc_info.is_some() {
                return Err(PyTypeError::new_err(
                    "start_response() missing 1 required positional argument: 'headers'",
                ));
            }
            slf.borrow_mut().write(status)?;
            return Ok(slf.py().None().into_bound(slf.py()));
        };
        let exc_info = exc_info.filter(|e| !e.is_none());
        {
            let this = slf.borrow();
            match exc_info {
                Some(info) if this.headers_sent => {
                    // PEP 3333: too late to change the response; re-raise the app's error.
                    let value = info.cast::<PyTuple>()?.get_item(1)?;
                    return Err(PyErr::from_value(value));
                }
                None if this.status.is_some() => {
                    return Err(PyAssertionError::new_err(
                        "start_response() called a second time without exc_info",
                    ));
                }
                _ => {}
            }
        }
        let status = status.cast::<PyString>().map_err(|_| {
            PyTypeError::new_err(format!(
                "status must be str, not {}",
                status
                    .get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?;
        let code = parse_status(status.to_str()?).map_err(PyValueError::new_err)?;
        // Checked into the scratch buffer, which then becomes the header lines: both
        // keep their capacity from request to request (see `wsgi::spare`).
        let (mut lines, names) = {
            let mut this = slf.borrow_mut();
            (
                std::mem::take(&mut this.scratch),
                std::mem::take(&mut this.names),
            )
        };
        lines.clear();
        let parsed = parse_headers(headers, lines, names);
        let mut this = slf.borrow_mut();
        let parsed = match parsed {
            Ok(parsed) => parsed,
            Err((e, failed)) => {
                this.scratch = failed.lines;
                this.names = failed.names;
                return Err(e);
            }
        };
        this.names = parsed.names;
        this.status = Some(status.clone().unbind());
        this.code = code;
        this.scratch = std::mem::replace(&mut this.header_lines, parsed.lines);
        this.content_length = parsed.content_length;
        this.close_requested = parsed.close_requested;
        drop(this);
        // This object is the `write` callable too (see the module docs).
        Ok(slf.clone().into_any())
    }
}

impl StartResponse {
    /// Back to the state of a new object, keeping the buffers' capacity.
    pub fn reset(&mut self) {
        self.status = None;
        self.code = 0;
        self.header_lines.clear();
        self.content_length = None;
        self.close_requested = false;
        self.headers_sent = false;
        self.written.clear();
    }

    /// The legacy `write(data)` callable: bytes only, after start_response.
    fn write(&mut self, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let bytes = data.cast::<PyBytes>().map_err(|_| {
            PyTypeError::new_err(format!(
                "write() argument must be bytes, not {}",
                data.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?;
        self.headers_sent = true;
        self.written.extend_from_slice(bytes.as_bytes());
        Ok(())
    }

    /// The status line's text (`"200 OK"`), once start_response was called.
    pub fn status_text(&self, py: Python<'_>) -> Option<String> {
        let status = self.status.as_ref()?.bind(py);
        status.to_str().ok().map(str::to_owned)
    }

    /// The app's headers as (name, value) pairs, for the hooks, the access log and
    /// HTTP/2 (the lines hold nothing else: names are tokens, values hold no CR or LF).
    pub fn headers(&self) -> Vec<(String, String)> {
        self.header_lines
            .split(|&b| b == b'\n')
            .filter_map(|line| {
                let line = line.strip_suffix(b"\r")?;
                let colon = line.iter().position(|&b| b == b':')?;
                let name = line[..colon].iter().map(|&b| char::from(b)).collect();
                let value = line[colon + 2..].iter().map(|&b| char::from(b)).collect();
                Some((name, value))
            })
            .collect()
    }
}

struct ParsedHeaders {
    lines: Vec<u8>,
    content_length: Option<u64>,
    close_requested: bool,
    names: KnownNames,
}

/// The app's headers: a plain list (what apps pass) is read by index, anything else
/// iterable (a list subclass too: it may iterate its own way) through `iter()`.
/// On failure the buffer and the known names come back with the error, for reuse.
fn parse_headers(
    headers: &Bound<'_, PyAny>,
    lines: Vec<u8>,
    names: KnownNames,
) -> Result<ParsedHeaders, (PyErr, ParsedHeaders)> {
    let mut out = ParsedHeaders {
        lines,
        content_length: None,
        close_requested: false,
        names,
    };
    match out.add_all(headers) {
        Ok(()) => Ok(out),
        Err(e) => Err((e, out)),
    }
}

impl ParsedHeaders {
    fn add_all(&mut self, headers: &Bound<'_, PyAny>) -> PyResult<()> {
        if self.lines.capacity() == 0 {
            self.lines.reserve(128);
        }
        if let Ok(list) = headers.cast_exact::<PyList>() {
            for item in list.iter() {
                self.add(&item)?;
            }
        } else {
            for item in headers.try_iter()? {
                self.add(&item?)?;
            }
        }
        Ok(())
    }

    /// One `(name, value)` header, checked, kept as a wire line unless hop-by-hop.
    fn add(&mut self, item: &Bound<'_, PyAny>) -> PyResult<()> {
        let pair = item.cast::<PyTuple>().ok();
        let Some([name_obj, value_obj]) = pair.as_ref().map(|t| t.as_slice()) else {
            return Err(PyTypeError::new_err(format!(
                "header {item} is not a (name, value) tuple"
            )));
        };
        // Borrowed: only what is kept is copied, once.
        let name = header_str(name_obj, "name")?;
        let value = header_str(value_obj, "value")?;
        let kind = match self.names.kind_of(name_obj) {
            Some(kind) => kind,
            None => {
                if name.is_empty() || !name.bytes().all(is_token_byte) {
                    return Err(PyValueError::new_err(format!(
                        "invalid header name {name:?}"
                    )));
                }
                let kind = if name.eq_ignore_ascii_case("content-length") {
                    NameKind::ContentLength
                } else if name.eq_ignore_ascii_case("connection") {
                    NameKind::Connection
                } else if is_hop_by_hop(name) {
                    NameKind::Dropped
                } else {
                    NameKind::Kept
                };
                self.names.learn(name_obj, kind);
                kind
            }
        };
        // Printable ASCII (the usual value) needs no per-char decoding.
        let plain = value
            .bytes()
            .all(|b| (b' '..=b'~').contains(&b) || b == b'\t');
        if let Some(what) = (!plain)
            .then(|| value.chars().find_map(|c| header_value_problem(c as u32)))
            .flatten()
        {
            return Err(PyValueError::new_err(format!(
                "invalid header value for {name}: {value:?} {what}"
            )));
        }
        // RFC 9110 §5.5: surrounding whitespace is not part of the value. A plain value's
        // only whitespace is space and tab, which is what `trim_ascii` takes then.
        let value = if plain {
            value.trim_ascii()
        } else {
            value.trim_matches([' ', '\t'])
        };
        match kind {
            NameKind::Kept => {}
            NameKind::ContentLength => {
                // A plain value has no other whitespace left to trim.
                let digits = if plain { value } else { value.trim() };
                let n = digits.parse::<u64>().map_err(|_| {
                    PyValueError::new_err(format!("invalid Content-Length header value {value:?}"))
                })?;
                self.content_length = Some(n);
            }
            NameKind::Connection => {
                if value
                    .split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("close"))
                {
                    self.close_requested = true;
                }
                return Ok(());
            }
            NameKind::Dropped => return Ok(()),
        }
        if plain {
            // ASCII: its bytes are its latin-1.
            push_header_bytes(&mut self.lines, name.as_bytes(), value.as_bytes());
        } else {
            push_header_line(&mut self.lines, name, value);
        }
        Ok(())
    }
}

impl KnownNames {
    fn kind_of(&self, name: &Bound<'_, PyAny>) -> Option<NameKind> {
        self.0
            .iter()
            .find(|(known, _)| known.as_ptr() == name.as_ptr())
            .map(|&(_, kind)| kind)
    }

    /// Remembers a valid name: exact strs only (a subclass's text could change).
    fn learn(&mut self, name: &Bound<'_, PyAny>, kind: NameKind) {
        if self.0.len() < KNOWN_NAMES {
            if let Ok(name) = name.cast_exact::<PyString>() {
                self.0.push((name.clone().unbind(), kind));
            }
        }
    }
}

fn header_str<'a>(obj: &'a Bound<'_, PyAny>, what: &str) -> PyResult<&'a str> {
    match obj.cast::<PyString>() {
        Ok(s) => s.to_str(),
        Err(_) => Err(PyTypeError::new_err(format!(
            "header {what} must be str, not {}: {obj}",
            obj.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pyo3::types::PyList;

    /// One object across requests (as `wsgi::spare` reuses it), the same name objects
    /// each time: what a known name is stays what a new one would be.
    #[test]
    fn names_seen_before_are_treated_as_the_first_time() {
        Python::initialize();
        Python::attach(|py| {
            let sr = Bound::new(py, StartResponse::default()).unwrap();
            let ctype = PyString::new(py, "Content-Type");
            let clen = PyString::new(py, "content-length");
            let conn = PyString::new(py, "Connection");
            let date = PyString::new(py, "Date");
            let bad = PyString::new(py, "Bad Name");
            for round in 0..3 {
                for close in [false, true] {
                    let headers = PyList::new(
                        py,
                        [
                            (ctype.clone(), PyString::new(py, " text/plain ")),
                            (
                                clen.clone(),
                                PyString::new(py, if close { "7" } else { "13" }),
                            ),
                            (
                                conn.clone(),
                                PyString::new(py, if close { "close" } else { "keep-alive" }),
                            ),
                            (date.clone(), PyString::new(py, "today")),
                        ],
                    )
                    .unwrap();
                    sr.borrow_mut().reset();
                    sr.call1(("200 OK", headers)).unwrap();
                    let this = sr.borrow();
                    let want = format!(
                        "Content-Type: text/plain\r\ncontent-length: {}\r\n",
                        if close { 7 } else { 13 }
                    );
                    assert_eq!(this.header_lines, want.as_bytes(), "round {round}");
                    assert_eq!(this.content_length, Some(if close { 7 } else { 13 }));
                    assert_eq!(this.close_requested, close, "round {round}");
                    drop(this);
                    // An invalid name is refused every time, and never remembered.
                    let headers = PyList::new(py, [(bad.clone(), PyString::new(py, "x"))]).unwrap();
                    sr.borrow_mut().reset();
                    let err = sr.call1(("200 OK", headers)).unwrap_err();
                    assert!(err.to_string().contains("invalid header name"), "{err}");
                }
            }
            assert_eq!(sr.borrow().names.0.len(), 4);
        });
    }
}
