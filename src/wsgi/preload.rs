//! `--preload`: the master starts Python and imports the app once; workers are forked
//! from it and share its pages. Every fork of a process that runs Python goes through
//! [`fork`], which follows CPython's fork protocol.

use std::sync::OnceLock;

use pyo3::ffi;
use pyo3::prelude::*;

use super::{format_exception, loader, BootError, PythonEnv};
use crate::config::Config;
use crate::sys::{self, Forked};

/// The app the master imported; forked workers find it here.
static APP: OnceLock<Py<PyAny>> = OnceLock::new();

/// In the master: starts the interpreter, imports the app, flushes what the import
/// printed (a buffer copied into every worker would be written once per worker), then
/// `gc.freeze()`s every object so far, so the collector in the workers never writes to
/// (and so never copies) the pages they share with the master.
pub fn preload_app(config: &Config, env: &PythonEnv) -> Result<(), BootError> {
    env.initialize()?;
    Python::attach(|py| {
        let app = loader::load_app(py, &config.app_module, &config.pythonpath)?;
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

/// Whether the app was imported before the fork: the worker then has a running
/// interpreter already and must not start another.
pub fn is_preloaded() -> bool {
    APP.get().is_some()
}

/// fork(2) for a worker, with signals blocked across it (see
/// [`sys::fork_with_signals_blocked`]). Without Python in this process it is a plain fork. With it
/// (`--preload`), `PyOS_BeforeFork` / `PyOS_AfterFork_Parent` / `PyOS_AfterFork_Child`
/// around it, as `os.fork()` does: import lock and GIL taken over the fork, the
/// child's threading state reset, `os.register_at_fork` hooks run.
pub fn fork() -> std::io::Result<Forked> {
    // SAFETY: Py_IsInitialized only reads a flag of the runtime.
    if unsafe { ffi::Py_IsInitialized() } == 0 {
        return sys::fork_with_signals_blocked();
    }
    Python::attach(|_py| {
        // SAFETY: this thread is attached (holds the GIL), as the three calls require;
        // each side of the fork calls exactly one of the AfterFork functions, right after
        // the fork and before any other Python call.
        unsafe { ffi::PyOS_BeforeFork() };
        let forked = sys::fork_with_signals_blocked();
        match forked {
            Ok(Forked::Child) => unsafe { ffi::PyOS_AfterFork_Child() },
            _ => unsafe { ffi::PyOS_AfterFork_Parent() },
        }
        forked
    })
}
