//! Starting the embedded CPython inside the user's environment — or, in the wheel,
//! adopting the one that already runs.
//!
//! Two hosts, one server ([`Host`]): the `rustcorn` binary links libpython and starts
//! CPython itself, so it must find the user's virtualenv and refuse one of another
//! Python version. The wheel's extension module is loaded by the user's own `python`
//! (the `rustcorn` console script): that interpreter *is* the environment, so nothing
//! is detected or checked, and every fork of the master already goes through Python's
//! fork protocol. Everything after this module is the same for both.
//!
//! CPython's path configuration finds a virtualenv from the program name: initialising
//! through `PyConfig` with `program_name` set to the venv's `bin/python` gives the venv's
//! `sys.prefix` and site-packages. The venv is `$VIRTUAL_ENV`, or the directory of an
//! activated venv's `python3` found first on `PATH`.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use pyo3::ffi;

/// The Python `major.minor` this binary was built against (and links).
pub const BUILD_PYTHON: &str = env!("RUSTCORN_PYTHON_VERSION");

/// Who started the interpreter this process runs.
#[derive(Clone, Debug, PartialEq)]
pub enum Host {
    /// The `rustcorn` binary: it starts CPython itself, in the user's virtualenv.
    Embedded,
    /// The wheel: the user's `python` runs the `rustcorn` script and calls the
    /// extension, so CPython already runs, with its own `sys.prefix`.
    Adopted {
        /// `sys.executable`: runs the config file and is re-executed on USR2.
        executable: PathBuf,
    },
}

static HOST: OnceLock<Host> = OnceLock::new();

/// Records that this process's interpreter was started by the user's `python` (the
/// extension's entry point calls it first): no virtualenv detection, no version
/// check, and forks go through `PyOS_BeforeFork` / `PyOS_AfterFork_*` from the start.
pub fn adopt(executable: PathBuf) {
    let _ = HOST.set(Host::Adopted { executable });
    crate::sys::mark_python_started();
}

/// This process's [`Host`]: [`Host::Embedded`] unless [`adopt`] was called.
pub fn host() -> &'static Host {
    HOST.get_or_init(|| Host::Embedded)
}

/// The Python environment the workers will run in.
#[derive(Clone, Debug, Default)]
pub struct PythonEnv {
    /// The virtualenv's root, when one is in use.
    pub venv: Option<PathBuf>,
}

/// Why the interpreter cannot start in the user's environment.
#[derive(Debug, thiserror::Error)]
pub enum InterpreterError {
    #[error("VIRTUAL_ENV={0} is not a virtualenv: it has no pyvenv.cfg")]
    NotAVenv(PathBuf),
    #[error(
        "the virtualenv {venv} uses Python {found}, but rustcorn was built against Python \
         {built}: create the virtualenv with python{built}, or rebuild rustcorn with that \
         environment's interpreter (PYO3_PYTHON={venv}/bin/python cargo install --path .)"
    )]
    VersionMismatch {
        venv: String,
        found: String,
        built: String,
    },
    #[error("cannot start the Python interpreter: {0}")]
    Init(String),
}

impl PythonEnv {
    /// Finds the virtualenv from `VIRTUAL_ENV` or `PATH` and checks its Python version
    /// against the one this binary links, so a mismatch is reported by the master
    /// before any worker starts.
    /// Under an adopted interpreter there is nothing to find: it is the user's own.
    pub fn detect() -> Result<PythonEnv, InterpreterError> {
        if let Host::Adopted { .. } = host() {
            return Ok(PythonEnv { venv: None });
        }
        let venv = match std::env::var_os("VIRTUAL_ENV").filter(|v| !v.is_empty()) {
            Some(dir) => {
                let dir = PathBuf::from(dir);
                if !dir.join("pyvenv.cfg").is_file() {
                    return Err(InterpreterError::NotAVenv(dir));
                }
                Some(dir)
            }
            None => venv_from_path(),
        };
        if let Some(dir) = &venv {
            if let Some(found) = venv_version(dir) {
                if found != BUILD_PYTHON {
                    return Err(InterpreterError::VersionMismatch {
                        venv: dir.display().to_string(),
                        found,
                        built: BUILD_PYTHON.to_string(),
                    });
                }
            }
        }
        Ok(PythonEnv { venv })
    }

    /// Initialises CPython for this process (a worker, after fork). Signal handlers stay
    /// ours; `sys.argv` is the server's command line, as under Gunicorn.
    pub fn initialize(&self) -> Result<(), InterpreterError> {
        // SAFETY: Py_IsInitialized only reads the runtime's state flag.
        if unsafe { ffi::Py_IsInitialized() } != 0 {
            return Ok(());
        }
        let program = match &self.venv {
            Some(venv) => Some(venv.join("bin").join("python")),
            None => build_interpreter(),
        };
        let program = program
            .map(|p| CString::new(p.as_os_str().as_bytes()))
            .transpose()
            .map_err(|_| InterpreterError::Init("NUL byte in the virtualenv path".into()))?;
        let args: Vec<CString> = std::env::args_os()
            .map(|a| CString::new(a.as_bytes()).unwrap_or_default())
            .collect();
        // SAFETY: PyConfig is initialised by PyConfig_InitPythonConfig before any use;
        // every string handed to it outlives the calls that copy it; the config is
        // cleared after initialisation. Initialisation runs once, on this thread.
        unsafe {
            let mut config = std::mem::MaybeUninit::<ffi::PyConfig>::zeroed();
            ffi::PyConfig_InitPythonConfig(config.as_mut_ptr());
            let config = config.assume_init_mut();
            config.install_signal_handlers = 0;
            config.parse_argv = 0;
            let result = configure(config, program.as_ref(), &args)
                .and_then(|_| check(ffi::Py_InitializeFromConfig(config)));
            ffi::PyConfig_Clear(config);
            result?;
            // Hand the GIL back: pyo3 attaches and detaches around each use.
            ffi::PyEval_SaveThread();
        }
        Ok(())
    }
}

impl PythonEnv {
    /// Starts CPython in this process unless it already runs (a worker forked from a
    /// master that started it inherits it). Idempotent: the master calls it for hooks
    /// (and `--preload`), each worker before loading the app.
    pub fn ensure_started(&self) -> Result<(), InterpreterError> {
        // SAFETY: Py_IsInitialized only reads a runtime flag; callable at any time.
        if unsafe { ffi::Py_IsInitialized() } == 0 {
            self.initialize()?;
        }
        crate::sys::mark_python_started();
        Ok(())
    }

    /// Without a virtualenv, the interpreter this binary was built against: the one
    /// whose `bin/python` runs the config file, so it sees what the workers see.
    pub fn executable_without_venv(&self) -> Option<PathBuf> {
        build_interpreter()
    }
}

/// The standard modules the server itself uses around the app (the app loader and
/// tracebacks), imported before a worker gives up root (see `--user`), as Gunicorn's
/// own modules are loaded in its master before workers switch user.
pub fn import_server_modules(asgi: bool) -> Result<(), String> {
    pyo3::Python::attach(|py| {
        // The asgi worker's event loop (uvloop when it is installed, as --asgi-loop
        // auto picks it), imported while the standard library is still readable.
        if asgi {
            py.import("asyncio")
                .map_err(|e| format!("cannot import asyncio: {e}"))?;
            let _ = py.import("uvloop");
        }
        // logging, logging.config and json: the worker-side Python logging setup.
        for name in [
            "ast",
            "importlib",
            "traceback",
            "logging",
            "logging.config",
            "json",
        ] {
            py.import(name)
                .map_err(|e| format!("cannot import {name}: {e}"))?;
        }
        Ok(())
    })
}

/// Starts CPython in the master (hooks defined in the config file, `--preload`); one
/// entry point for every reason, idempotent, after which [`crate::sys::fork`] uses
/// Python's fork protocol.
pub fn ensure_master_python(env: &PythonEnv) -> Result<(), InterpreterError> {
    env.ensure_started()
}

/// # Safety
/// `config` must have been initialised by `PyConfig_InitPythonConfig`.
unsafe fn configure(
    config: &mut ffi::PyConfig,
    program: Option<&CString>,
    args: &[CString],
) -> Result<(), InterpreterError> {
    if let Some(program) = program {
        let slot: *mut *mut libc::wchar_t = &mut config.program_name;
        check(unsafe { ffi::PyConfig_SetBytesString(config, slot, program.as_ptr()) })?;
    }
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    check(unsafe {
        ffi::PyConfig_SetBytesArgv(
            config,
            argv.len() as ffi::Py_ssize_t,
            argv.as_mut_ptr().cast(),
        )
    })
}

fn check(status: ffi::PyStatus) -> Result<(), InterpreterError> {
    // SAFETY: PyStatus_Exception only inspects the struct it is given.
    if unsafe { ffi::PyStatus_Exception(status) } == 0 {
        return Ok(());
    }
    let msg = if status.err_msg.is_null() {
        format!("exit code {}", status.exitcode)
    } else {
        // SAFETY: err_msg points to a static NUL-terminated string inside libpython.
        unsafe { std::ffi::CStr::from_ptr(status.err_msg) }
            .to_string_lossy()
            .into_owned()
    };
    Err(InterpreterError::Init(msg))
}

/// Without a venv, the interpreter this binary was built against (whose libpython it
/// links): `sys.executable` then names a real Python, as under Gunicorn. Under an
/// adopted interpreter, that interpreter's `sys.executable`.
fn build_interpreter() -> Option<PathBuf> {
    if let Host::Adopted { executable } = host() {
        return Some(executable.clone());
    }
    option_env!("RUSTCORN_PYTHON_EXECUTABLE")
        .map(PathBuf::from)
        .filter(|p| p.exists())
}

/// An activated venv puts its `bin` first on PATH; the first `python3` found decides.
fn venv_from_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    let bin = std::env::split_paths(&path).find(|dir| dir.join("python3").exists())?;
    let root = bin.parent()?;
    root.join("pyvenv.cfg")
        .is_file()
        .then(|| root.to_path_buf())
}

/// `major.minor` from the venv's pyvenv.cfg (`version` or `version_info`).
fn venv_version(venv: &Path) -> Option<String> {
    let text = std::fs::read_to_string(venv.join("pyvenv.cfg")).ok()?;
    text.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        matches!(key.trim(), "version" | "version_info").then(|| {
            value
                .trim()
                .split('.')
                .take(2)
                .collect::<Vec<_>>()
                .join(".")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_major_minor_from_pyvenv_cfg() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("pyvenv.cfg"),
            "home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.12.1\n",
        )
        .unwrap();
        assert_eq!(venv_version(dir.path()).as_deref(), Some("3.12"));
        std::fs::write(
            dir.path().join("pyvenv.cfg"),
            "version_info = 3.11.7.final.0\n",
        )
        .unwrap();
        assert_eq!(venv_version(dir.path()).as_deref(), Some("3.11"));
    }
}
