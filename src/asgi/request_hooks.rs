//! `pre_request` and `post_request` around one ASGI request, the same for an HTTP/1
//! request (`cycle`) and an HTTP/2 stream (`h2cycle`), as Gunicorn's asgi worker calls
//! them: `req` made from the head, and an empty environ for `post_request` (an ASGI
//! request has none).

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::http::request::Head;
use crate::http::response;
use crate::wsgi::hooks;

/// Runs `pre_request(worker, req)` when request hooks are defined. `Ok(Some(req))`:
/// it ran (the `req` for `post_request`); `Ok(None)`: no hooks (or no `req` could be
/// made); `Err(req)`: it raised, which is logged here, and the caller answers 500.
pub(super) fn pre_request(
    py: Python<'_>,
    head: Option<&Head>,
) -> Result<Option<Py<PyAny>>, Py<PyAny>> {
    let Some(head) = head.filter(|_| hooks::request_hooks()) else {
        return Ok(None);
    };
    let Ok(req) = hooks::request_object(py, head) else {
        return Ok(None);
    };
    match hooks::pre_request(py, &req) {
        Ok(()) => Ok(Some(req.unbind())),
        Err(tb) => {
            tracing::error!(target: crate::log::EXCEPTION, "Exception in pre_request hook\n{tb}");
            Err(req.unbind())
        }
    }
}

/// `post_request(worker, req, environ, resp)` once the response is complete: `status`
/// 0 when none was started, `headers` those the client was sent.
pub(super) fn post_request(
    py: Python<'_>,
    req: Py<PyAny>,
    status: u16,
    headers: Vec<(String, String)>,
    body_bytes: u64,
) {
    let line = format!("{status} {}", response::reason_phrase(status));
    let environ = PyDict::new(py).into_any();
    let resp = (Some(line), headers, body_bytes, status != 0);
    hooks::post_request(py, req.bind(py), environ, resp);
}
