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

    fn read_bytes(&mut self, limit: Option<usize>) -> std::io::Result<Vec<u8>> {
        match &mut self.source {
            Source::Memory { data, pos } => {
                let end = limit.map_or(data.len(), |n| (*pos + n).min(data.len()));
                let out = data[*pos..end].to_vec();
                *pos = end;
                Ok(out)
            }
            Source::File(reader) => {
                let mut out = Vec::new();
                match limit {
                    Some(n) => reader.take(n as u64).read_to_end(&mut out)?,
                    None => reader.read_to_end(&mut out)?,
                };
                Ok(out)
            }
        }
    }

    fn read_line(&mut self, limit: Option<usize>) -> std::io::Result<Vec<u8>> {
        match &mut self.source {
            Source::Memory { data, pos } => {
                let rest = &data[*pos..];
                let cap = limit.map_or(rest.len(), |n| n.min(rest.len()));
                let end = rest[..cap]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(cap, |i| i + 1);
                let out = rest[..end].to_vec();
                *pos += end;
                Ok(out)
            }
            Source::File(reader) => {
                let mut out = Vec::new();
                match limit {
                    Some(n) => reader.take(n as u64).read_until(b'\n', &mut out)?,
                    None => reader.read_until(b'\n', &mut out)?,
                };
                Ok(out)
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
        Ok(PyBytes::new(py, &self.read_bytes(limit(size))?))
    }

    /// readline([size]) — one line including its `\n`, or at most `size` bytes of it.
    #[pyo3(signature = (size=None))]
    fn readline<'py>(
        &mut self,
        py: Python<'py>,
        size: Option<isize>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &self.read_line(limit(size))?))
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
            let line = self.read_line(None)?;
            if line.is_empty() {
                break;
            }
            total += line.len();
            list.append(PyBytes::new(py, &line))?;
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
        let line = self.read_line(None)?;
        Ok((!line.is_empty()).then(|| PyBytes::new(py, &line)))
    }
}
