//! `--preload`: the master starts Python and imports the app once; workers are forked
//! from it and share its pages. Once Python runs in the master, [`crate::sys::fork`]
//! follows CPython's fork protocol.

use std::sync::OnceLock;

use pyo3::prelude::*;

use super::{format_exception, loader, BootError, PythonEnv};
use crate::config::Config;

/// The app the master imported; forked workers find it here.
static APP: OnceLock<Py<PyAny>> = OnceLock::new();

/// In the master: starts the interpreter, imports the app, flushes what the import
/// printed (a buffer copied into every worker would be written once per worker), then
/// `gc.freeze()`s every object so far, so the collector in the workers never writes to
/// (and so never copies) the pages they share with the master.
pub fn preload_app(config: &Config, env: &PythonEnv) -> Result<(), BootError> {
    crate::python::interpreter::ensure_master_python(env)?;
    Python::attach(|py| {
        let app = loader::load_configured(py, config)?;
        let sys = py
            .import("sys")
            .map_err(|e| BootError::Python(e.to_string()))?;
        for name in ["stdout", "stderr"] {
            if let Ok(stream) = sys.getattr(name) {
                let _ = stream.call_method0("flush");
            }
        }
        py.import("gc")
            .and_then(|gc| gc.call_method0("freeze"))
            .map_err(|e| BootError::Python(format_exception(py, &e)))?;
        let _ = APP.set(app);
        Ok(())
    })
}

/// The preloaded app, when this process (or the master it was forked from) has one.
pub fn preloaded(py: Python<'_>) -> Option<Py<PyAny>> {
    APP.get().map(|app| app.clone_ref(py))
}
