//! The wheel's extension module, `rustcorn._rustcorn`: the second entry point.
//!
//! `pip install rustcorn` puts a `rustcorn` console script in the user's virtualenv;
//! it (and `python -m rustcorn`) calls [`run`] with `sys.argv`. From there on it is
//! the binary's path exactly — [`crate::run_command_line`] — with one difference: the
//! interpreter is adopted, not started ([`crate::python::interpreter::adopt`]), since
//! the user's `python` is already running this code in their environment.

use std::ffi::OsString;
use std::path::PathBuf;

use pyo3::prelude::*;

/// Serves with `argv` (`sys.argv`: the script's path, then the flags) as the command
/// line, and returns the exit status for `sys.exit`. The GIL is released for the whole
/// run: the master attaches only around hooks and `--preload`, as the binary's does.
#[pyfunction]
fn run(py: Python<'_>, argv: Vec<OsString>) -> PyResult<i32> {
    let sys = py.import("sys")?;
    let executable: PathBuf = sys.getattr("executable")?.extract()?;
    if executable.as_os_str().is_empty() {
        return Err(pyo3::exceptions::PyRuntimeError::new_err(
            "rustcorn: sys.executable is empty: cannot tell which Python to re-execute",
        ));
    }
    // The command line USR2 runs again: interpreter, script (or -m rustcorn) and flags.
    let orig_argv: Vec<OsString> = sys.getattr("orig_argv")?.extract()?;
    crate::python::interpreter::adopt(executable.clone());
    crate::arbiter::record_start_as(executable, orig_argv);
    // Python's SIGINT handler only sets a flag that Python checks when it next runs
    // bytecode — not before the master's own handlers are in place; until then Ctrl-C
    // must stop the process at once, as it stops the binary.
    crate::sys::reset_signals(&[nix::sys::signal::Signal::SIGINT]);
    let args: Vec<OsString> = std::iter::once(OsString::from("rustcorn"))
        .chain(argv.into_iter().skip(1))
        .collect();
    Ok(py.detach(move || crate::run_command_line(args)))
}

/// The module `rustcorn._rustcorn`: `run` and `__version__` (Cargo.toml's version, the
/// one `rustcorn --version` prints and the wheel carries).
#[pymodule]
#[pyo3(name = "_rustcorn")]
fn rustcorn_extension(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
