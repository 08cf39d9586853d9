//! `--log-config-json` and `logconfig_dict`: the app's Python loggers configured with
//! `logging.config.dictConfig` in each worker before the app is imported, laid over
//! Gunicorn's `CONFIG_DEFAULTS` as Gunicorn does (see `pyconfig.py`).

use std::sync::OnceLock;

use pyo3::prelude::*;
use pyo3::types::PyModule;

use crate::config::logging::LoggingConfig;

/// The helper module, kept once a configuration was applied so USR1 can reopen the
/// file handlers it made.
static MODULE: OnceLock<Py<PyModule>> = OnceLock::new();

/// Applies `logconfig_dict` (it takes precedence, as in Gunicorn) or the JSON file.
/// A JSON file that does not exist is skipped with a warning (Gunicorn skips it
/// silently); a configuration `dictConfig` refuses is an error with its traceback.
pub fn apply(py: Python<'_>, config: &LoggingConfig) -> Result<(), String> {
    let text = match (&config.logconfig_dict, &config.logconfig_json) {
        (Some(dict), _) => dict.clone(),
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                tracing::warn!("Log config {} not applied: {e}", path.display());
                return Ok(());
            }
        },
        (None, None) => return Ok(()),
    };
    let code = std::ffi::CString::new(include_str!("pyconfig.py")).expect("no NUL bytes");
    let module = PyModule::from_code(py, &code, c"rustcorn/pyconfig.py", c"_rustcorn_pyconfig")
        .map_err(|e| crate::wsgi::format_exception(py, &e))?;
    module
        .getattr("apply")
        .and_then(|f| f.call1((text,)))
        .map_err(|e| {
            format!(
                "Error applying the log config: {}",
                crate::wsgi::format_exception(py, &e)
            )
        })?;
    let _ = MODULE.set(module.unbind());
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
