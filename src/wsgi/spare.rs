//! The `start_response` and `wsgi.input` objects of the last request, kept for the next
//! one when the app kept no reference to them: making and freeing the two Python
//! objects was about 800 of a hello request's 20k instructions (`object_new`, the
//! pyclass `tp_dealloc`), and `start_response`'s header buffers are reused with them.
//! The environ dict too, on its own terms (see `environ::reuse`).
//!
//! An object is kept only when the server holds its one reference (the environ and the
//! response iterable already gone), so no app can see it again: reusing it is
//! invisible. Anything else (an app that stored `start_response`, a hook that saw the
//! environ) leaves the object to Python and the next request makes a new one.

use std::sync::Mutex;

use pyo3::prelude::*;

use super::environ::{Environ, KeptEnviron};
use super::input::InputStream;
use super::start_response::StartResponse;
use crate::http::body::Body;

/// One of each, shared by a worker's app threads (whoever finishes last keeps them).
/// The lock is only taken with the GIL held and never held across Python code.
#[derive(Default)]
pub struct Spare {
    kept: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    /// The object, and the callable bound to it that the app gets
    /// ([`super::start_response::callable`]).
    start_response: Option<(Py<StartResponse>, Py<PyAny>)>,
    input: Option<Py<InputStream>>,
    environ: Option<KeptEnviron>,
}

/// A `start_response` object and the callable the app gets for it.
pub type StartResponsePair<'py> = (Bound<'py, StartResponse>, Bound<'py, PyAny>);

impl Spare {
    /// A clean `start_response` (and its callable), a `wsgi.input` reading `body`, and
    /// the last environ if it was kept (for `environ::build`).
    pub fn take<'py>(
        &self,
        py: Python<'py>,
        body: Body,
    ) -> PyResult<(
        StartResponsePair<'py>,
        Bound<'py, InputStream>,
        Option<KeptEnviron>,
    )> {
        let (sr, input, environ) = {
            let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
            (
                kept.start_response.take(),
                kept.input.take(),
                kept.environ.take(),
            )
        };
        let sr = match sr {
            Some((sr, callable)) => (sr.into_bound(py), callable.into_bound(py)),
            None => {
                let sr = Bound::new(py, StartResponse::default())?;
                let callable = super::start_response::callable(&sr)?;
                (sr, callable)
            }
        };
        let input = match input {
            Some(input) => {
                let input = input.into_bound(py);
                input.borrow_mut().reset(body);
                input
            }
            None => Bound::new(py, InputStream::new(body))?,
        };
        Ok((sr, input, environ))
    }

    /// Keeps the objects the server alone still holds, cleaned for the next request:
    /// `start_response` when the caller holds the callable's one reference and the
    /// object's other one is the callable's (its `__self__`, which an app could keep);
    /// the environ as `environ::reuse` says, and `wsgi.input` when the caller's
    /// reference is its only one besides the kept environ's (which holds it under
    /// `wsgi.input`: nothing was stored into that dict since).
    pub fn keep(
        &self,
        (sr, callable): StartResponsePair<'_>,
        input: Bound<'_, InputStream>,
        environ: Environ<'_>,
    ) {
        let sr = (only_reference(&callable) && references(sr.as_any()) == 2).then(|| {
            sr.borrow_mut().reset();
            (sr.unbind(), callable.unbind())
        });
        let environ = environ.keep();
        let in_environ = isize::from(environ.has_dict());
        let input = (references(input.as_any()) == 1 + in_environ).then(|| {
            // The body's buffer or file goes now, not with the next request.
            input.borrow_mut().reset(Body::Memory(Vec::new()));
            input.unbind()
        });
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if sr.is_some() {
            kept.start_response = sr;
        }
        if input.is_some() {
            kept.input = input;
        }
        kept.environ = Some(environ);
    }
}

/// Whether `obj` is referenced by the caller's reference alone.
fn only_reference(obj: &Bound<'_, PyAny>) -> bool {
    references(obj) == 1
}

fn references(obj: &Bound<'_, PyAny>) -> isize {
    // SAFETY: a live object, and the GIL is held (the Bound says so).
    unsafe { pyo3::ffi::Py_REFCNT(obj.as_ptr()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(py: Python<'_>) -> Environ<'_> {
        Environ::not_reusable(pyo3::types::PyDict::new(py))
    }

    #[test]
    fn objects_nobody_else_holds_are_reused_and_others_are_not() {
        Python::initialize();
        Python::attach(|py| {
            let spare = Spare::default();
            let ((sr, f), input, _) = spare.take(py, Body::Memory(b"first".to_vec())).unwrap();
            let (sr_ptr, f_ptr, input_ptr) = (sr.as_ptr(), f.as_ptr(), input.as_ptr());
            sr.borrow_mut()
                .header_lines
                .extend_from_slice(b"X-A: 1\r\n");
            sr.borrow_mut().headers_sent = true;
            spare.keep((sr, f), input, env(py));

            let ((sr, f), input, _) = spare.take(py, Body::Memory(b"second".to_vec())).unwrap();
            assert_eq!(sr.as_ptr(), sr_ptr, "start_response reused");
            assert_eq!(f.as_ptr(), f_ptr, "its callable reused");
            assert_eq!(input.as_ptr(), input_ptr, "wsgi.input reused");
            assert!(sr.borrow().header_lines.is_empty() && !sr.borrow().headers_sent);
            assert!(sr.borrow().status.is_none());
            let read = input.call_method0("read").unwrap();
            assert_eq!(read.extract::<Vec<u8>>().unwrap(), b"second");

            // An app that kept them (here: another reference) gets them to itself.
            let held = (sr.clone(), input.clone());
            spare.keep((sr, f), input, env(py));
            let ((sr, f), input, _) = spare.take(py, Body::Memory(Vec::new())).unwrap();
            assert_ne!(sr.as_ptr(), held.0.as_ptr());
            assert_ne!(input.as_ptr(), held.1.as_ptr());

            // The callable kept, or the object through the callable's `__self__`.
            let (sr_ptr, f_ptr) = (sr.as_ptr(), f.as_ptr());
            let kept_callable = f.clone();
            spare.keep((sr, f), input, env(py));
            let ((sr, f), input, _) = spare.take(py, Body::Memory(Vec::new())).unwrap();
            assert!(sr.as_ptr() != sr_ptr && f.as_ptr() != f_ptr);
            assert_eq!(kept_callable.getattr("__self__").unwrap().as_ptr(), sr_ptr);
            // (The callable itself is freed here, so its address may come back.)
            let sr_ptr = sr.as_ptr();
            let kept_self = f.getattr("__self__").unwrap();
            spare.keep((sr, f), input, env(py));
            let ((sr, _), _, _) = spare.take(py, Body::Memory(Vec::new())).unwrap();
            assert!(sr.as_ptr() != sr_ptr);
            assert_eq!(kept_self.as_ptr(), sr_ptr);
        });
    }
}
