//! Loading the user's app: the grammar lives in `loader.py` (it is Python's own `ast`
//! that parses `factory('arg', 2)`), run inside the worker's interpreter.

use std::path::PathBuf;

use pyo3::prelude::*;

/// Why the app did not load. Both kinds stop the server (no respawn storm).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The module was found but the app is not (message only, as Gunicorn prints it).
    #[error("{0}")]
    NotFound(String),
    /// Importing raised: the full traceback.
    #[error("{0}")]
    Import(String),
}

/// Imports `uri` after putting the working directory and `pythonpath` on `sys.path`.
pub fn load_app(py: Python<'_>, uri: &str, pythonpath: &[PathBuf]) -> Result<Py<PyAny>, LoadError> {
    let loader = PyModule::from_code(
        py,
        c_str(include_str!("loader.py")).as_c_str(),
        c"rustcorn/loader.py",
        c"_rustcorn_loader",
    )
    .map_err(|e| LoadError::Import(super::format_exception(py, &e)))?;
    let paths: Vec<String> = pythonpath.iter().map(|p| p.display().to_string()).collect();
    match loader.getattr("load").and_then(|f| f.call1((uri, paths))) {
        Ok(app) => Ok(app.unbind()),
        Err(e) => {
            let not_found = loader
                .getattr("AppImportError")
                .map(|t| e.get_type(py).is(&t))
                .unwrap_or(false);
            if not_found {
                Err(LoadError::NotFound(e.value(py).to_string()))
            } else {
                Err(LoadError::Import(super::format_exception(py, &e)))
            }
        }
    }
}

fn c_str(text: &str) -> std::ffi::CString {
    std::ffi::CString::new(text).expect("loader.py has no NUL bytes")
}
