//! `wsgi.input`: the request body, complete before the app is called, readable with
//! read/readline/readlines and iteration (PEP 3333's input stream).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use crate::http::body::Body;

enum Source {
    Memory { data: Vec<u8>, pos: usize },
    File(BufReader<File>),
}

/// The `wsgi.input` object.
#[pyclass(module = "rustcorn", name = "InputStream")]
pub struct InputStream {
    source: Source,
}

impl InputStream {
    /// Wraps a finished request body.
    pub fn new(body: Body) -> InputStream {
        let source = match body {
            Body::Memory(data) => Source::Memory { data, pos: 0 },
            Body::File(file, _) => Source::File(BufReader::new(file)),
        };
        InputStream { source }
    }

    /// Reads `body` from its start, as a new stream would (see `wsgi::spare`).
    pub fn reset(&mut self, body: Body) {
        *self = InputStream::new(body);
    }

    /// At most `limit` bytes (all without one) as a new bytes object: a body in
    /// memory is copied once, straight into it.
    fn read_bytes<'py>(
        &mut self,
        py: Python<'py>,
        limit: Option<usize>,
    ) -> std::io::Result<Bound<'py, PyBytes>> {
        match &mut self.source {
            Source::Memory { data, pos } => {
                let end = limit.map_or(data.len(), |n| pos.saturating_add(n).min(data.len()));
                let out = PyBytes::new(py, &data[*pos..end]);
                *pos = end;
                Ok(out)
            }
            Source::File(reader) => {
                let mut out = Vec::new();
                match limit {
                    Some(n) => reader.take(n as u64).read_to_end(&mut out)?,
                    None => reader.read_to_end(&mut out)?,
                };
                Ok(PyBytes::new(py, &out))
            }
        }
    }

    /// One line including its `\n` (at most `limit` bytes of it), as [`read_bytes`]
    /// does; empty at the end of the body.
    ///
    /// [`read_bytes`]: Self::read_bytes
    fn read_line<'py>(
        &mut self,
        py: Python<'py>,
        limit: Option<usize>,
    ) -> std::io::Result<Bound<'py, PyBytes>> {
        match &mut self.source {
            Source::Memory { data, pos } => {
                let rest = &data[*pos..];
                let cap = limit.map_or(rest.len(), |n| n.min(rest.len()));
                let end = rest[..cap]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(cap, |i| i + 1);
                let out = PyBytes::new(py, &rest[..end]);
                *pos += end;
                Ok(out)
            }
            Source::File(reader) => {
                let mut out = Vec::new();
                match limit {
                    Some(n) => reader.take(n as u64).read_until(b'\n', &mut out)?,
                    None => reader.read_until(b'\n', &mut out)?,
                };
                Ok(PyBytes::new(py, &out))
            }
        }
    }
}

/// Python passes `None` or a negative size for "everything".
fn limit(size: Option<isize>) -> Option<usize> {
    size.filter(|&n| n >= 0).map(|n| n as usize)
}

#[pymethods]
impl InputStream {
    /// read([size]) — at most `size` bytes; all remaining bytes without one.
    #[pyo3(signature = (size=None))]
    fn read<'py>(&mut self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(self.read_bytes(py, limit(size))?)
    }

    /// readline([size]) — one line including its `\n`, or at most `size` bytes of it.
    #[pyo3(signature = (size=None))]
    fn readline<'py>(
        &mut self,
        py: Python<'py>,
        size: Option<isize>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        Ok(self.read_line(py, limit(size))?)
    }

    /// readlines([hint]) — lines until EOF, or until about `hint` bytes were read.
    #[pyo3(signature = (hint=None))]
    fn readlines<'py>(
        &mut self,
        py: Python<'py>,
        hint: Option<isize>,
    ) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        let hint = limit(hint).filter(|&n| n > 0);
        let mut total = 0;
        loop {
            let line = self.read_line(py, None)?;
            if line.as_bytes().is_empty() {
                break;
            }
            total += line.as_bytes().len();
            list.append(line)?;
            if hint.is_some_and(|h| total >= h) {
                break;
            }
        }
        Ok(list)
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let line = self.read_line(py, None)?;
        Ok((!line.as_bytes().is_empty()).then_some(line))
    }
}
