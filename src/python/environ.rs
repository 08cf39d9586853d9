//! The process environment, kept in step with `os.environ`.
//!
//! CPython copies the C environment into `os.environ` once, when it starts. A variable
//! the server sets or unsets after that — `--env`, a HUP's new `raw_env`, the socket
//! hand-over variables it consumes — must change both, or an app in a worker forked
//! from a master that runs Python (the wheel, hooks, `--preload`) sees the old value.

use pyo3::prelude::*;

/// Sets `key` to `value` in the process environment and, when CPython runs here, in
/// `os.environ`.
pub fn set_var(key: &str, value: &str) {
    std::env::set_var(key, value);
    update_os_environ(key, Some(value));
}

/// Unsets `key` in the process environment and, when CPython runs here, in
/// `os.environ`.
pub fn remove_var(key: &str) {
    std::env::remove_var(key);
    update_os_environ(key, None);
}

fn update_os_environ(key: &str, value: Option<&str>) {
    if !crate::sys::python_started() {
        return;
    }
    let updated = Python::attach(|py| -> PyResult<()> {
        let environ = py.import("os")?.getattr("environ")?;
        match value {
            Some(value) => environ.set_item(key, value),
            None => environ.call_method1("pop", (key, py.None())).map(drop),
        }
    });
    if let Err(e) = updated {
        tracing::error!("Cannot update os.environ[{key:?}]: {e}");
    }
}
