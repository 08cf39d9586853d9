//! The awaitables `send()` and `receive()` return when they need not wait: already
//! complete, so the common call costs no coroutine of its own.

use pyo3::exceptions::PyStopIteration;
use pyo3::prelude::*;

/// What `send()` returns when the message is written (the usual case): an awaitable
/// that ends at once, with None. One per worker serves every send.
#[pyclass(frozen)]
pub struct Written;

#[pymethods]
impl Written {
    fn __await__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Ends the await at once, with None.
    fn __next__(&self) -> Option<()> {
        None
    }
}

/// What `receive()` returns when a message is at hand: an awaitable that ends at
/// once with that message.
#[pyclass]
pub struct Ready {
    value: Option<Py<PyAny>>,
}

impl Ready {
    pub fn new(value: Py<PyAny>) -> Ready {
        Ready { value: Some(value) }
    }
}

#[pymethods]
impl Ready {
    fn __await__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Ends the await with the message (StopIteration carries an await's result);
    /// awaited again, it ends with None.
    fn __next__(&mut self) -> PyResult<Option<()>> {
        match self.value.take() {
            Some(value) => Err(PyStopIteration::new_err((value,))),
            None => Ok(None),
        }
    }
}
