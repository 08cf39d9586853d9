//! The WSGI boundary — with [`crate::python`], the only code that holds the GIL: app loading ([`loader`]), the environ ([`environ`]),
//! `start_response` ([`start_response`]), `wsgi.input` ([`input`]), `wsgi.errors` and
//! `wsgi.file_wrapper` ([`streams`]), and the call itself ([`call`]).

mod access_extra;
pub mod call;
pub mod environ;
pub mod hooks;
pub mod input;
pub mod loader;
pub mod preload;
mod response_body;
mod spare;
pub mod start_response;
pub mod streams;
mod value_memo;
mod writer;

use pyo3::prelude::*;

use crate::config::Config;
pub use crate::python::PythonEnv;
use environ::EnvironConstants;
pub use loader::LoadError;

/// A worker's loaded app and the per-worker constants every request uses.
pub struct Bridge {
    app: Py<PyAny>,
    environ: EnvironConstants,
    /// `wsgi.file_wrapper` around a regular file is sent with sendfile(2).
    sendfile: bool,
    /// What the access-log format reads beyond the request head.
    access_needs: call::AccessNeeds,
    /// Under `--reload`, the file whose `SyntaxError` is being served as a 500 page.
    broken_file: Option<std::path::PathBuf>,
    /// An access log is written, so a request's duration is read: without one (and
    /// without statsd) nobody reads it, and its two precise clock reads per request
    /// were most of the worker's `clock_gettime` time.
    timed: bool,
    /// The last request's `start_response` and `wsgi.input`, for the next one.
    spare: spare::Spare,
}

/// Why a worker could not become ready to serve.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error(transparent)]
    Interpreter(#[from] crate::python::interpreter::InterpreterError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("{0}")]
    Python(String),
}

impl Bridge {
    /// Starts the interpreter in `env` and imports the app named by the config, or,
    /// forked from a master that preloaded it (`--preload`), takes that app.
    pub fn boot(config: &Config, env: &PythonEnv) -> Result<Bridge, BootError> {
        env.ensure_started()?;
        Python::attach(|py| {
            crate::log::pyconfig::apply(py, config).map_err(BootError::Python)?;
            hooks::worker_boot(py, config).map_err(BootError::Python)?;
            let python_err = |e: PyErr| BootError::Python(format_exception(py, &e));
            let loaded = match preload::preloaded(py) {
                Some(app) => Ok(app),
                None => loader::load_configured(py, config),
            };
            let (app, broken_file) = match loaded {
                Err(LoadError::Syntax {
                    message,
                    traceback,
                    filename,
                }) if config.reload.enabled => {
                    tracing::error!(target: crate::log::EXCEPTION, "{message}\n{traceback}");
                    let app = loader::fail_app(py, &traceback).map_err(python_err)?;
                    (app, filename.map(std::path::PathBuf::from))
                }
                loaded => (loaded?, None),
            };
            hooks::post_worker_init(py).map_err(BootError::Python)?;
            let environ = EnvironConstants::new(
                py,
                &std::env::var("SCRIPT_NAME").unwrap_or_default(),
                config.workers > 1,
                config.worker_class == crate::config::WorkerClass::Gthread,
            )
            .map_err(python_err)?
            .with_forwarder_headers(config.proxy.forwarder_headers.clone())
            .with_header_map(config.http.header_map);
            hooks::watch_stop_signals();
            Ok(Bridge {
                app,
                environ,
                sendfile: config.sendfile,
                access_needs: access_needs(config),
                broken_file,
                timed: access_logged(config),
                spare: spare::Spare::default(),
            })
        })
    }

    /// Logs `what` followed by the exception's traceback at ERROR (Gunicorn's
    /// `log.exception`, which statsd counts as `gunicorn.log.exception`).
    pub fn log_exception(&self, py: Python<'_>, what: &str, err: &PyErr) {
        let text = format_exception(py, err);
        tracing::error!(target: crate::log::EXCEPTION, "{what}\n{text}");
    }

    /// The app object (the asgi worker calls it itself).
    pub fn app(&self) -> &Py<PyAny> {
        &self.app
    }

    /// The file whose `SyntaxError` this worker serves as a 500 page (`--reload` only):
    /// it is not in `sys.modules`, so the reloader is told to watch it.
    pub fn broken_file(&self) -> Option<&std::path::Path> {
        self.broken_file.as_deref()
    }

    /// Flushes Python's stdout/stderr before the process exits with `_exit`.
    pub fn flush_stdio(&self) {
        Python::attach(|py| {
            for name in ["stdout", "stderr"] {
                if let Ok(stream) = py.import("sys").and_then(|s| s.getattr(name)) {
                    let _ = stream.call_method0("flush");
                }
            }
        });
    }
}

/// Whether access lines are written (to a file, stdout or syslog).
fn access_logged(config: &Config) -> bool {
    config.access_logfile.is_some() || config.logging.syslog.as_ref().is_some_and(|s| s.access)
}

/// Runs `f` with the GIL held throughout, so that the app calls inside it (which
/// attach again, at the cost of a counter) do not each take and drop it.
pub fn holding_gil<R>(f: impl FnOnce() -> R) -> R {
    Python::attach(|_| f())
}

/// The extras the access log needs: none when no access line is written.
fn access_needs(config: &Config) -> call::AccessNeeds {
    let format = &config.logging.access_format;
    if !access_logged(config) {
        return call::AccessNeeds::default();
    }
    call::AccessNeeds {
        response_headers: format.needs_response_headers,
        environ_keys: format.environ_keys.clone(),
        environ_atoms: format.environ_atoms.clone(),
    }
}

/// The exception with its traceback, as Python prints it. `traceback` is imported at
/// the first error, not at boot: a worker whose app never fails does not carry it and
/// what it pulls in (tokenize, textwrap, linecache: most of a megabyte). Under
/// `--user` it is imported before the switch (see `import_server_modules`).
pub fn format_exception(py: Python<'_>, err: &PyErr) -> String {
    match py
        .import("traceback")
        .and_then(|m| m.getattr("format_exception"))
    {
        Ok(format) => traceback_text(py, &format, err),
        Err(_) => err.to_string(),
    }
}

/// `traceback.format_exception(type, value, tb)`: the traceback is passed explicitly
/// because on Python 3.11 a pyo3 error keeps it beside the value, not on it.
fn traceback_text(py: Python<'_>, format: &Bound<'_, PyAny>, err: &PyErr) -> String {
    format
        .call1((err.get_type(py), err.value(py), err.traceback(py)))
        .and_then(|lines| lines.extract::<Vec<String>>())
        .map(|lines| lines.concat().trim_end().to_string())
        .unwrap_or_else(|_| err.to_string())
}
