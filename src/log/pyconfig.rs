//! The app's Python `logging`, in each worker before the app is imported, as Gunicorn
//! leaves it (see `pyconfig.py`): the `gunicorn.error` logger writes Gunicorn-format
//! lines to the error log at `--log-level`, and `--log-config-json` / `logconfig_dict`
//! are applied with `logging.config.dictConfig` over Gunicorn's `CONFIG_DEFAULTS`.

use std::sync::OnceLock;

use pyo3::prelude::*;
use pyo3::types::PyModule;

use crate::config::{Config, LogLevel};

/// The helper module, kept so USR1 can reopen the file handlers logging has.
static MODULE: OnceLock<Py<PyModule>> = OnceLock::new();

/// Sets up `gunicorn.error`, then applies `logconfig_dict` (it takes precedence, as
/// in Gunicorn) or the JSON file. A JSON file that does not exist is skipped with a
/// warning (Gunicorn skips it silently); a configuration `dictConfig` refuses is an
/// error with its traceback.
pub fn apply(py: Python<'_>, config: &Config) -> Result<(), String> {
    let code = std::ffi::CString::new(include_str!("pyconfig.py")).expect("no NUL bytes");
    let module = PyModule::from_code(py, &code, c"rustcorn/pyconfig.py", c"_rustcorn_pyconfig")
        .map_err(|e| crate::wsgi::format_exception(py, &e))?;
    let level = match config.log_level {
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warning => "warning",
        LogLevel::Error => "error",
        LogLevel::Critical => "critical",
    };
    module
        .getattr("error_logger")
        .and_then(|f| {
            let stream = Bound::new(py, crate::wsgi::streams::ErrorStream)?;
            f.call1((stream, level))
        })
        .map_err(|e| {
            format!(
                "Cannot set up the gunicorn.error logger: {}",
                crate::wsgi::format_exception(py, &e)
            )
        })?;
    let module = module.unbind();
    let _ = MODULE.set(module.clone_ref(py));
    let logging = &config.logging;
    let text = match (&logging.logconfig_dict, &logging.logconfig_json) {
        (Some(dict), _) => dict.clone(),
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                tracing::warn!("Log config {} not applied: {e}", path.display());
                return Ok(());
            }
        },
        (None, None) => return apply_ini(py, &module, logging.logconfig.as_deref()),
    };
    module
        .bind(py)
        .getattr("apply")
        .and_then(|f| f.call1((text,)))
        .map_err(|e| {
            format!(
                "Error applying the log config: {}",
                crate::wsgi::format_exception(py, &e)
            )
        })?;
    Ok(())
}

/// `--log-config`: `logging.config.fileConfig` on the INI file, as Gunicorn does.
fn apply_ini(
    py: Python<'_>,
    module: &Py<PyModule>,
    path: Option<&std::path::Path>,
) -> Result<(), String> {
    let Some(path) = path else { return Ok(()) };
    module
        .bind(py)
        .getattr("apply_ini")
        .and_then(|f| f.call1((path,)))
        .map_err(|e| {
            format!(
                "Error applying the log config {}: {}",
                path.display(),
                crate::wsgi::format_exception(py, &e)
            )
        })?;
    Ok(())
}

/// Reopens the `logging.FileHandler`s the configuration made (part of USR1's reopen).
pub(super) fn reopen() {
    if let Some(module) = MODULE.get() {
        Python::attach(|py| {
            if let Err(e) = module.bind(py).getattr("reopen").and_then(|f| f.call0()) {
                tracing::error!(
                    "Cannot reopen Python log handlers: {}",
                    crate::wsgi::format_exception(py, &e)
                );
            }
        });
    }
}
