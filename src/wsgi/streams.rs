//! `wsgi.errors` and `wsgi.file_wrapper`.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

/// `wsgi.errors`: a text stream into the server's error log.
#[pyclass(module = "rustcorn", name = "ErrorStream")]
pub struct ErrorStream;

#[pymethods]
impl ErrorStream {
    /// write(str) — written as UTF-8; bytes are accepted too.
    fn write(&self, data: &Bound<'_, PyAny>) -> PyResult<()> {
        if let Ok(text) = data.cast::<PyString>() {
            crate::log::write_error_log(text.to_str()?.as_bytes());
        } else if let Ok(bytes) = data.cast::<PyBytes>() {
            crate::log::write_error_log(bytes.as_bytes());
        } else {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "write() argument must be str, not {}",
                data.get_type().name()?
            )));
        }
        Ok(())
    }

    fn writelines(&self, lines: &Bound<'_, PyAny>) -> PyResult<()> {
        for line in lines.try_iter()? {
            self.write(&line?)?;
        }
        Ok(())
    }

    fn flush(&self) {}
}

/// `wsgi.file_wrapper(filelike, blksize=8192)`: iterates the file in blocks and closes
/// it with the response.
#[pyclass(module = "rustcorn", name = "FileWrapper")]
pub struct FileWrapper {
    filelike: Py<PyAny>,
    blksize: usize,
}

impl FileWrapper {
    /// The wrapped file-like object.
    pub fn filelike<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        self.filelike.bind(py).clone()
    }
}

#[pymethods]
impl FileWrapper {
    #[new]
    #[pyo3(signature = (filelike, blksize=8192))]
    fn new(filelike: Py<PyAny>, blksize: usize) -> FileWrapper {
        FileWrapper {
            filelike,
            blksize: blksize.max(1),
        }
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let block = self
            .filelike
            .bind(py)
            .call_method1("read", (self.blksize,))?;
        Ok((block.len()? > 0).then_some(block))
    }

    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let file = self.filelike.bind(py);
        if file.hasattr("close")? {
            file.call_method0("close")?;
        }
        Ok(())
    }
}
