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
        let code = parse_status(text_of(status)?).map_err(PyValueError::new_err)?;
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
        let (parsed, outcome) = parse_headers(headers, lines, names);
        let mut this = slf.borrow_mut();
        this.names = parsed.names;
        if let Err(e) = outcome {
            this.scratch = parsed.lines;
            return Err(e);
        }
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

/// `start_response` as the app gets it: a builtin function bound to `sr`, which
/// CPython calls with its arguments in place (METH_FASTCALL). Calling the object itself
/// (its `__call__`) packed them into a tuple first, and went through pyo3's
/// tuple-and-dict argument parsing: about 250 instructions per request. The object is
/// still what the call returns as `write` (see the module docs), and its `__self__`.
pub fn callable<'py>(sr: &Bound<'py, StartResponse>) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: the method definition is a static that is never written after this
    // initialisation (CPython only reads it), `sr` is a live object the function
    // keeps a reference to, and PyCFunction_NewEx returns a new reference or NULL
    // with an exception set.
    unsafe {
        let def = std::ptr::addr_of_mut!(START_RESPONSE_DEF);
        let f = pyo3::ffi::PyCFunction_NewEx(def, sr.as_ptr(), std::ptr::null_mut());
        Bound::from_owned_ptr_or_err(sr.py(), f)
    }
}

static mut START_RESPONSE_DEF: pyo3::ffi::PyMethodDef = pyo3::ffi::PyMethodDef {
    ml_name: c"start_response".as_ptr(),
    ml_meth: pyo3::ffi::PyMethodDefPointer {
        PyCFunctionFastWithKeywords: start_response_fastcall,
    },
    ml_flags: pyo3::ffi::METH_FASTCALL | pyo3::ffi::METH_KEYWORDS,
    ml_doc: std::ptr::null(),
};

/// The vectorcall entry: `(status, headers=None, exc_info=None)`, positional or by
/// keyword, into [`StartResponse::__call__`].
unsafe extern "C" fn start_response_fastcall(
    slf: *mut pyo3::ffi::PyObject,
    args: *const *mut pyo3::ffi::PyObject,
    nargs: pyo3::ffi::Py_ssize_t,
    kwnames: *mut pyo3::ffi::PyObject,
) -> *mut pyo3::ffi::PyObject {
    // CPython calls this with the GIL held; attaching again only counts it (and makes
    // pyo3's reference handling right on a thread that attached some other way).
    Python::attach(|py| {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // SAFETY: CPython passes the bound object (a live StartResponse: only
            // `callable` binds this function), `nargs` positional arguments at `args`,
            // then one value per name of the `kwnames` tuple (or NULL), all borrowed
            // for the call.
            unsafe { fastcall_args(py, slf, args, nargs, kwnames) }
        }));
        match outcome {
            Ok(Ok(result)) => result.into_ptr(),
            Ok(Err(e)) => {
                e.restore(py);
                std::ptr::null_mut()
            }
            Err(_) => {
                pyo3::exceptions::PyRuntimeError::new_err("start_response panicked").restore(py);
                std::ptr::null_mut()
            }
        }
    })
}

/// # Safety
/// As [`start_response_fastcall`] is called.
unsafe fn fastcall_args<'py>(
    py: Python<'py>,
    slf: *mut pyo3::ffi::PyObject,
    args: *const *mut pyo3::ffi::PyObject,
    nargs: pyo3::ffi::Py_ssize_t,
    kwnames: *mut pyo3::ffi::PyObject,
) -> PyResult<Bound<'py, PyAny>> {
    let slf = unsafe { Bound::from_borrowed_ptr(py, slf) };
    let slf = slf.cast::<StartResponse>()?;
    let nargs = unsafe { pyo3::ffi::PyVectorcall_NARGS(nargs as usize) } as usize;
    let names = if kwnames.is_null() {
        None
    } else {
        Some(unsafe { Bound::from_borrowed_ptr(py, kwnames) }.cast_into::<PyTuple>()?)
    };
    let named = names.as_ref().map_or(0, |n| n.len());
    let given = unsafe { std::slice::from_raw_parts(args, nargs + named) };
    let arg = |i: usize| unsafe { Bound::from_borrowed_ptr(py, given[i]) };
    if nargs > 3 {
        return Err(PyTypeError::new_err(format!(
            "start_response() takes from 1 to 3 positional arguments but {nargs} were given"
        )));
    }
    let mut slots: [Option<Bound<'py, PyAny>>; 3] = [None, None, None];
    for (i, slot) in slots.iter_mut().enumerate().take(nargs) {
        *slot = Some(arg(i));
    }
    if let Some(names) = &names {
        for (j, name) in names.iter().enumerate() {
            let name = name.cast_into::<PyString>()?;
            let i = match name.to_str()? {
                "status" => 0,
                "headers" => 1,
                "exc_info" => 2,
                other => {
                    return Err(PyTypeError::new_err(format!(
                        "start_response() got an unexpected keyword argument '{other}'"
                    )))
                }
            };
            if slots[i].replace(arg(nargs + j)).is_some() {
                return Err(PyTypeError::new_err(format!(
                    "start_response() got multiple values for argument '{name}'"
                )));
            }
        }
    }
    let [status, headers, exc_info] = slots;
    let status = status.ok_or_else(|| {
        PyTypeError::new_err("start_response() missing 1 required positional argument: 'status'")
    })?;
    StartResponse::__call__(slf, &status, headers.as_ref(), exc_info.as_ref())
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
/// The buffer and the known names come back whatever the outcome, for reuse.
fn parse_headers(
    headers: &Bound<'_, PyAny>,
    lines: Vec<u8>,
    names: KnownNames,
) -> (ParsedHeaders, PyResult<()>) {
    let mut out = ParsedHeaders {
        lines,
        content_length: None,
        close_requested: false,
        names,
    };
    let outcome = out.add_all(headers);
    (out, outcome)
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
        // Printable ASCII (the usual value) needs no per-char decoding; checked eight
        // bytes a step (byte by byte was ~11 instructions a byte).
        let plain = crate::http::request::is_plain_value(value.as_bytes());
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
        Ok(s) => text_of(s),
        Err(_) => Err(PyTypeError::new_err(format!(
            "header {what} must be str, not {}: {obj}",
            obj.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))),
    }
}

/// A str's text: read in place when it is compact ASCII (string literals, what
/// `str(n)` gives, nearly every status and header an app passes), otherwise through
/// CPython's UTF-8 view. The call into CPython, with pyo3's error handling around it,
/// was ~60 instructions for each of a response's status, names and values.
fn text_of<'a>(s: &'a Bound<'_, PyString>) -> PyResult<&'a str> {
    #[cfg(not(any(Py_3_14, Py_LIMITED_API, PyPy, GraalPy)))]
    {
        let p = s.as_ptr();
        // SAFETY: `p` is a live str (borrowed for 'a). A compact ASCII str's characters
        // are its length's bytes right after its header (what PyUnicode_DATA gives), all
        // below 0x80, so valid UTF-8; strs are immutable, so they stay as they are as
        // long as `s` lives.
        unsafe {
            if pyo3::ffi::PyUnicode_IS_COMPACT_ASCII(p) != 0 {
                let len = pyo3::ffi::PyUnicode_GET_LENGTH(p) as usize;
                let data = pyo3::ffi::PyUnicode_DATA(p) as *const u8;
                return Ok(std::str::from_utf8_unchecked(std::slice::from_raw_parts(
                    data, len,
                )));
            }
        }
    }
    s.to_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pyo3::types::PyList;

    /// The callable the app gets takes what `__call__` took: positional or keyword
    /// arguments, the same errors, and returns the object as `write`.
    #[test]
    fn the_fast_callable_parses_arguments_as_the_object_does() {
        Python::initialize();
        Python::attach(|py| {
            let run = |code: &str| -> Result<String, String> {
                let sr = Bound::new(py, StartResponse::default()).unwrap();
                let f = callable(&sr).unwrap();
                let globals = pyo3::types::PyDict::new(py);
                globals.set_item("sr", &f).unwrap();
                let code = std::ffi::CString::new(code).unwrap();
                let outcome = py.run(&code, Some(&globals), None);
                match outcome {
                    Ok(()) => {
                        let this = sr.borrow();
                        Ok(format!(
                            "{:?} {} {}",
                            this.status_text(py),
                            String::from_utf8_lossy(&this.header_lines).trim_end(),
                            String::from_utf8_lossy(&this.written)
                        ))
                    }
                    Err(e) => Err(e.to_string()),
                }
            };
            let ok = r#"Some("200 OK") X: 1 "#;
            assert_eq!(run("sr('200 OK', [('X', '1')])").unwrap(), ok);
            assert_eq!(run("sr('200 OK', headers=[('X', '1')])").unwrap(), ok);
            assert_eq!(
                run("sr(headers=[('X', '1')], status='200 OK')").unwrap(),
                ok
            );
            assert_eq!(run("sr('200 OK', [('X', '1')], None)").unwrap(), ok);
            assert_eq!(
                run("sr('200 OK', [('X', '1')], exc_info=None)").unwrap(),
                ok
            );
            assert_eq!(
                run("w = sr('200 OK', [('X', '1')]); w(b'ab'); w(b'c')").unwrap(),
                r#"Some("200 OK") X: 1 abc"#
            );
            assert_eq!(
                run("assert sr('200 OK', []) is sr.__self__").unwrap(),
                r#"Some("200 OK")  "#
            );
            for (code, error) in [
                ("sr()", "missing 1 required positional argument: 'status'"),
                (
                    "sr('200 OK', [], None, 1)",
                    "takes from 1 to 3 positional arguments",
                ),
                (
                    "sr('200 OK', [], colour=1)",
                    "unexpected keyword argument 'colour'",
                ),
                (
                    "sr('200 OK', [], headers=[])",
                    "multiple values for argument 'headers'",
                ),
                (
                    "sr('200 OK')",
                    "missing 1 required positional argument: 'headers'",
                ),
                ("sr(200, [])", "status must be str"),
                ("sr('200 OK', [('X', 1)])", "header value must be str"),
                ("sr('200 OK', []); sr('200 OK', [])", "called a second time"),
            ] {
                let err = run(code).unwrap_err();
                assert!(err.contains(error), "{code}: {err}");
            }
        });
    }

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

    /// A str's text read in place is what CPython's UTF-8 view gives, for ASCII, other
    /// one-byte, two- and four-byte strs, the empty str and a str subclass; a lone
    /// surrogate is still refused.
    #[test]
    fn text_read_in_place_is_the_utf8_view() {
        Python::initialize();
        Python::attach(|py| {
            let made = py
                .eval(
                    c"[\"Content-Type\", \"\", str(13), \"caf\\u00e9\", \"\\u20ac\", \"\\U0001f600x\", type('S', (str,), {})('sub')]",
                    None,
                    None,
                )
                .unwrap();
            for item in made.try_iter().unwrap() {
                let item = item.unwrap();
                let s = item.cast::<PyString>().unwrap();
                assert_eq!(text_of(s).unwrap(), s.to_str().unwrap());
            }
            let surrogate = py.eval(c"'\\ud800'", None, None).unwrap();
            assert!(text_of(surrogate.cast::<PyString>().unwrap()).is_err());
        });
    }
}
