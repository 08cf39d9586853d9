//! Loading the user's app (APP_MODULE, or `--paste`'s PasteDeploy file): the grammar lives in `loader.py` (it is Python's own `ast`
//! that parses `factory('arg', 2)`), run inside the worker's interpreter.

use std::path::PathBuf;

use pyo3::prelude::*;

use crate::config::Config;

/// Why the app did not load. Both kinds stop the server (no respawn storm).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The module was found but the app is not (message only, as Gunicorn prints it).
    #[error("{0}")]
    NotFound(String),
    /// Importing raised: the full traceback.
    #[error("{0}")]
    Import(String),
    /// Importing raised a `SyntaxError`: under `--reload` the worker serves the
    /// traceback as a 500 page and watches `filename` until it is fixed (Gunicorn's
    /// behaviour); otherwise it is an import error like any other.
    #[error("{traceback}")]
    Syntax {
        /// `str(exception)`: `invalid syntax (app.py, line 3)`.
        message: String,
        traceback: String,
        filename: Option<String>,
    },
}

/// Imports the app the config names: `--paste`'s PasteDeploy app, else APP_MODULE.
pub fn load_configured(py: Python<'_>, config: &Config) -> Result<Py<PyAny>, LoadError> {
    let app = match &config.paste {
        Some(paste) => call_loader(py, "load_paste", |f| {
            f.call1((
                paste.config_uri(),
                paste.global_conf.clone(),
                paths(&config.pythonpath),
            ))
        }),
        None => load_app(py, &config.app_module, &config.pythonpath),
    }?;
    crate::asgi::check_app_fits(py, app.bind(py), config.worker_class)
        .map_err(LoadError::NotFound)?;
    Ok(app)
}

/// Imports `uri` after putting the working directory and `pythonpath` on `sys.path`.
fn load_app(py: Python<'_>, uri: &str, pythonpath: &[PathBuf]) -> Result<Py<PyAny>, LoadError> {
    call_loader(py, "load", |f| f.call1((uri, paths(pythonpath))))
}

fn paths(pythonpath: &[PathBuf]) -> Vec<String> {
    pythonpath.iter().map(|p| p.display().to_string()).collect()
}

/// Calls `loader.py`'s `function` and sorts what it raised into a [`LoadError`].
fn call_loader<'py>(
    py: Python<'py>,
    function: &str,
    call: impl FnOnce(&Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>>,
) -> Result<Py<PyAny>, LoadError> {
    let loader = PyModule::from_code(
        py,
        c_str(include_str!("loader.py")).as_c_str(),
        c"rustcorn/loader.py",
        c"_rustcorn_loader",
    )
    .map_err(|e| LoadError::Import(super::format_exception(py, &e)))?;
    match loader.getattr(function).and_then(|f| call(&f)) {
        Ok(app) => Ok(app.unbind()),
        Err(e) => {
            let not_found = loader
                .getattr("AppImportError")
                .map(|t| e.get_type(py).is(&t))
                .unwrap_or(false);
            if not_found {
                Err(LoadError::NotFound(e.value(py).to_string()))
            } else if e.is_instance_of::<pyo3::exceptions::PySyntaxError>(py) {
                let filename = e.value(py).getattr("filename").ok();
                Err(LoadError::Syntax {
                    message: e.value(py).to_string(),
                    traceback: super::format_exception(py, &e),
                    filename: filename.and_then(|f| f.extract::<String>().ok()),
                })
            } else {
                Err(LoadError::Import(super::format_exception(py, &e)))
            }
        }
    }
}

/// A WSGI app that answers every request with 500 and `text` (Gunicorn's
/// `make_fail_app`), served under `--reload` while the app's code does not compile.
pub fn fail_app(py: Python<'_>, text: &str) -> PyResult<Py<PyAny>> {
    let loader = PyModule::from_code(
        py,
        c_str(include_str!("loader.py")).as_c_str(),
        c"rustcorn/loader.py",
        c"_rustcorn_loader",
    )?;
    Ok(loader.getattr("make_fail_app")?.call1((text,))?.unbind())
}

fn c_str(text: &str) -> std::ffi::CString {
    std::ffi::CString::new(text).expect("loader.py has no NUL bytes")
}
