//! Gunicorn's server hooks at the Python boundary: the config file's hook functions are
//! loaded by `hooks.py` (in the master when a master-side hook is defined, else in each
//! worker after its interpreter starts) and called here with Gunicorn's arguments.
//!
//! Which hooks exist is a bit set read without the GIL, so a server without
//! `pre_request`/`post_request` pays one relaxed atomic load per request and nothing
//! else. Worker objects and the loaded module are process globals: a worker forked
//! from a master that loaded the hooks inherits them with the interpreter.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;

use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

use crate::config::settings::{Kind, SETTINGS};
use crate::config::Config;
use crate::http::request::Head;

/// Every hook rustcorn calls, in Gunicorn's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    OnStarting,
    OnReload,
    WhenReady,
    PreFork,
    PostFork,
    PostWorkerInit,
    WorkerInt,
    WorkerAbort,
    PreRequest,
    PostRequest,
    ChildExit,
    WorkerExit,
    NworkersChanged,
    OnExit,
    PreExec,
}

/// All hooks, in declaration order (their bit is their index).
pub const ALL: [Hook; 15] = [
    Hook::OnStarting,
    Hook::OnReload,
    Hook::WhenReady,
    Hook::PreFork,
    Hook::PostFork,
    Hook::PostWorkerInit,
    Hook::WorkerInt,
    Hook::WorkerAbort,
    Hook::PreRequest,
    Hook::PostRequest,
    Hook::ChildExit,
    Hook::WorkerExit,
    Hook::NworkersChanged,
    Hook::OnExit,
    Hook::PreExec,
];

impl Hook {
    /// The config-file name.
    pub fn name(self) -> &'static str {
        match self {
            Hook::OnStarting => "on_starting",
            Hook::OnReload => "on_reload",
            Hook::WhenReady => "when_ready",
            Hook::PreFork => "pre_fork",
            Hook::PostFork => "post_fork",
            Hook::PostWorkerInit => "post_worker_init",
            Hook::WorkerInt => "worker_int",
            Hook::WorkerAbort => "worker_abort",
            Hook::PreRequest => "pre_request",
            Hook::PostRequest => "post_request",
            Hook::ChildExit => "child_exit",
            Hook::WorkerExit => "worker_exit",
            Hook::NworkersChanged => "nworkers_changed",
            Hook::OnExit => "on_exit",
            Hook::PreExec => "pre_exec",
        }
    }

    /// Runs in the master process (needs the config file's functions there).
    pub fn master_side(self) -> bool {
        matches!(
            self,
            Hook::OnStarting
                | Hook::OnReload
                | Hook::WhenReady
                | Hook::PreFork
                | Hook::ChildExit
                | Hook::NworkersChanged
                | Hook::OnExit
                | Hook::PreExec
        )
    }

    fn bit(self) -> u32 {
        1 << ALL.iter().position(|&h| h == self).unwrap_or(0)
    }

    fn by_name(name: &str) -> Option<Hook> {
        ALL.iter().copied().find(|h| h.name() == name)
    }
}

/// The hooks loaded in this process (bits of [`Hook::bit`]).
static DEFINED: AtomicU32 = AtomicU32::new(0);
/// `hooks.py`, once loaded in this process (or inherited through fork).
static SHIM: OnceLock<Py<PyModule>> = OnceLock::new();
/// This worker's `Worker` object.
static WORKER: OnceLock<Py<PyAny>> = OnceLock::new();
/// The age of the worker being forked: set by the master before fork, read by the child.
static NEXT_WORKER_AGE: AtomicU64 = AtomicU64::new(0);

/// Whether `hook` was loaded in this process.
#[inline]
pub fn defined(hook: Hook) -> bool {
    DEFINED.load(Ordering::Relaxed) & hook.bit() != 0
}

/// Whether the config file defines `hook` (known before any Python runs).
pub fn in_config(config: &Config, hook: Hook) -> bool {
    config.sources.hooks.iter().any(|h| h.name == hook.name())
}

/// Whether the config file defines any hook that runs in the master.
pub fn master_needs_python(config: &Config) -> bool {
    ALL.iter().any(|&h| h.master_side() && in_config(config, h))
}

/// Whether the hooks are loaded in this process.
pub fn loaded() -> bool {
    SHIM.get().is_some()
}

/// Records the age of the worker about to be forked (the child reads it back).
pub fn set_next_worker_age(age: u64) {
    NEXT_WORKER_AGE.store(age, Ordering::Relaxed);
}

/// `_emit(level, message)`: a hook's `log.info(...)` as one error-log line.
#[pyfunction]
fn _emit(level: &str, message: &str) {
    match level {
        "debug" => tracing::debug!("{message}"),
        "info" => tracing::info!("{message}"),
        "warning" => tracing::warn!("{message}"),
        "critical" => tracing::error!(target: crate::log::CRITICAL, "{message}"),
        _ => tracing::error!("{message}"),
    }
}

/// Every setting as (name, kind, value as `--print-config` shows it), for `server.cfg`.
fn settings_triples(config: &Config) -> Vec<(&'static str, String, String)> {
    SETTINGS
        .iter()
        .map(|s| {
            let kind = format!("{:?}", s.kind);
            let kind = if s.kind == Kind::Hook {
                "Hook".into()
            } else {
                kind
            };
            (s.name, kind, crate::config::print::value_of(config, s))
        })
        .collect()
}

fn shim(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    if let Some(m) = SHIM.get() {
        return Ok(m.bind(py).clone());
    }
    let code = std::ffi::CString::new(include_str!("hooks.py")).expect("no NUL bytes");
    let module = PyModule::from_code(py, &code, c"rustcorn/hooks.py", c"_rustcorn_hooks")?;
    module.setattr("_emit", wrap_pyfunction!(_emit, &module)?)?;
    let _ = SHIM.set(module.clone().unbind());
    Ok(module)
}

/// Runs the config file in this interpreter and keeps its hooks (again on HUP, so
/// the master calls the new functions). Returns the error with its traceback.
pub fn load(py: Python<'_>, config: &Config) -> Result<(), String> {
    let Some(location) = &config.sources.config_location else {
        return Ok(());
    };
    let cwd = &config.sources.start_dir;
    let names: Vec<&str> = ALL
        .iter()
        .filter(|&&h| in_config(config, h))
        .map(|h| h.name())
        .collect();
    let run = || -> PyResult<Vec<String>> {
        shim(py)?
            .call_method1("load", (location, cwd, names, settings_triples(config)))?
            .extract()
    };
    let loaded = run().map_err(|e| super::format_exception(py, &e))?;
    let bits = loaded
        .iter()
        .filter_map(|n| Hook::by_name(n))
        .fold(0, |acc, h| acc | h.bit());
    DEFINED.store(bits, Ordering::Relaxed);
    Ok(())
}

/// The `server` object, with `num_workers` as the master last set it.
pub fn server(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    shim(py)?.getattr("SERVER")
}

/// Calls `hook(*args)`; `Err` carries the exception's traceback.
pub fn call<'py>(
    py: Python<'py>,
    hook: Hook,
    args: impl IntoIterator<Item = Bound<'py, PyAny>>,
) -> Result<(), String> {
    let mut all = vec![hook
        .name()
        .into_pyobject(py)
        .map_err(|e| e.to_string())?
        .into_any()];
    all.extend(args);
    let tuple = PyTuple::new(py, all).map_err(|e| e.to_string())?;
    let result = shim(py)
        .and_then(|m| m.getattr("call"))
        .and_then(|f| f.call1(tuple));
    match result {
        Ok(r) if r.is_none() => Ok(()),
        Ok(r) => Err(r.extract::<String>().unwrap_or_default()),
        Err(e) => Err(super::format_exception(py, &e)),
    }
}

/// A new `Worker` object for the worker of `age` (pid unset until fork).
pub fn new_worker(py: Python<'_>, age: u64) -> PyResult<Bound<'_, PyAny>> {
    let ppid = std::process::id();
    shim(py)?.getattr("Worker")?.call1((age, ppid))
}

/// The master's worker object for the fork in progress (the child inherits it).
pub fn set_pending_worker(py: Python<'_>, worker: &Bound<'_, PyAny>) -> PyResult<()> {
    shim(py)?.setattr("PENDING_WORKER", worker)
}

/// The object [`set_pending_worker`] recorded.
pub fn pending_worker(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    shim(py)?.getattr("PENDING_WORKER")
}

/// In a worker, after its interpreter is up and before the app loads: loads the hooks
/// unless inherited from the master, then calls `post_fork(server, worker)`. An
/// exception there is a worker boot failure, as in Gunicorn.
pub fn worker_boot(py: Python<'_>, config: &Config) -> Result<(), String> {
    if !loaded() && ALL.iter().any(|&h| in_config(config, h)) {
        load(py, config)
            .map_err(|tb| format!("Exception while loading the config file's hooks\n{tb}"))?;
    }
    if !loaded() {
        return Ok(());
    }
    let ready = || -> PyResult<Bound<'_, PyAny>> {
        let worker = match shim(py)?.getattr("PENDING_WORKER") {
            Ok(w) if !w.is_none() => w,
            _ => new_worker(py, NEXT_WORKER_AGE.load(Ordering::Relaxed))?,
        };
        let master = nix::unistd::getppid().as_raw();
        worker.setattr("pid", std::process::id())?;
        worker.setattr("ppid", master)?;
        // A worker that ran the file itself made the server object: it is the master.
        server(py)?.setattr("pid", master)?;
        Ok(worker)
    };
    let worker = ready().map_err(|e| super::format_exception(py, &e))?;
    let _ = WORKER.set(worker.clone().unbind());
    if defined(Hook::PostFork) {
        let server = server(py).map_err(|e| e.to_string())?;
        call(py, Hook::PostFork, [server, worker])
            .map_err(|tb| format!("Exception in post_fork hook\n{tb}"))?;
    }
    Ok(())
}

/// After the app loaded: `post_worker_init(worker)`; an exception fails the boot.
pub fn post_worker_init(py: Python<'_>) -> Result<(), String> {
    let Some(worker) = WORKER.get() else {
        return Ok(());
    };
    let worker = worker.bind(py);
    if defined(Hook::PostWorkerInit) {
        call(py, Hook::PostWorkerInit, [worker.clone()])
            .map_err(|tb| format!("Exception in post_worker_init hook\n{tb}"))?;
    }
    let _ = worker.setattr("booted", true);
    Ok(())
}

/// Calls a worker-side hook with `(worker)` or `(server, worker)` and logs a failure.
pub fn call_worker_hook(hook: Hook) {
    let Some(worker) = WORKER.get() else {
        return;
    };
    if !defined(hook) {
        return;
    }
    Python::attach(|py| {
        let worker = worker.bind(py).clone();
        let _ = worker.setattr("alive", false);
        let args = match hook {
            Hook::WorkerExit => match server(py) {
                Ok(s) => vec![s, worker],
                Err(_) => return,
            },
            _ => vec![worker],
        };
        if let Err(tb) = call(py, hook, args) {
            match hook {
                Hook::WorkerExit => tracing::warn!("Exception during worker exit:\n{tb}"),
                _ => {
                    tracing::error!(target: crate::log::EXCEPTION, "Exception in {} hook\n{tb}", hook.name())
                }
            }
        }
    });
}

/// Whether `pre_request` or `post_request` is defined: the request path checks this
/// once per request and does nothing more when neither is.
#[inline]
pub fn request_hooks() -> bool {
    DEFINED.load(Ordering::Relaxed) & (Hook::PreRequest.bit() | Hook::PostRequest.bit()) != 0
}

/// The `req` object of `pre_request`/`post_request`, built from the parsed head.
pub fn request_object<'py>(py: Python<'py>, head: &Head) -> PyResult<Bound<'py, PyAny>> {
    let (path, query, fragment) = crate::http::target::split_target(head.target());
    let headers = PyList::empty(py);
    for (name, value) in head.fields() {
        let value = String::from_utf8_lossy(value);
        headers.append((name.to_ascii_uppercase(), value.as_ref()))?;
    }
    let version = if head.http2 {
        (2u8, 0u8)
    } else {
        (1u8, head.minor_version)
    };
    shim(py)?.getattr("Request")?.call1((
        head.method(),
        head.target(),
        path,
        query,
        fragment,
        version,
        headers,
        py.None(),
    ))
}

/// `pre_request(worker, req)`; its exception becomes the request's (a 500).
pub fn pre_request<'py>(py: Python<'py>, req: &Bound<'py, PyAny>) -> Result<(), String> {
    match (defined(Hook::PreRequest), WORKER.get()) {
        (true, Some(worker)) => call(py, Hook::PreRequest, [worker.bind(py).clone(), req.clone()]),
        _ => Ok(()),
    }
}

/// `post_request(worker, req, environ, resp)`; an exception is logged, as in Gunicorn.
pub fn post_request<'py>(
    py: Python<'py>,
    req: &Bound<'py, PyAny>,
    environ: Bound<'py, PyAny>,
    resp: (Option<String>, Vec<(String, String)>, u64, bool),
) {
    let (true, Some(worker)) = (defined(Hook::PostRequest), WORKER.get()) else {
        return;
    };
    let resp = shim(py)
        .and_then(|m| m.getattr("Response"))
        .and_then(|cls| cls.call1(resp));
    let resp = match resp {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("post_request: {e}");
            return;
        }
    };
    let args = [worker.bind(py).clone(), req.clone(), environ, resp];
    if let Err(tb) = call(py, Hook::PostRequest, args) {
        tracing::error!(target: crate::log::EXCEPTION, "Exception in post_request hook\n{tb}");
    }
}

/// With `worker_int`, `worker_abort` or `worker_exit` defined, INT/QUIT/ABRT are taken
/// by a thread instead of ending the process from a signal handler: it calls the hook
/// under the GIL (an app stuck in Python code or a sleep still lets it in), then
/// `worker_exit`, then ends the worker as before (0 for INT/QUIT, 1 for ABRT). Call it
/// before any other thread starts, so they all inherit the blocked mask.
pub fn watch_stop_signals() {
    use nix::sys::signal::{SigSet, Signal};
    if !(defined(Hook::WorkerInt) || defined(Hook::WorkerAbort) || defined(Hook::WorkerExit)) {
        return;
    }
    let mut set = SigSet::empty();
    for sig in [Signal::SIGINT, Signal::SIGQUIT, Signal::SIGABRT] {
        set.add(sig);
    }
    if let Err(e) = set.thread_block() {
        tracing::error!("worker_int/worker_abort hooks disabled: cannot block signals: {e}");
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("stop-signals".into())
        .spawn(move || loop {
            let Ok(sig) = set.wait() else { continue };
            let (hook, code) = match sig {
                Signal::SIGABRT => (Hook::WorkerAbort, 1),
                _ => (Hook::WorkerInt, 0),
            };
            call_worker_hook(hook);
            tracing::info!("Worker exiting (pid: {})", std::process::id());
            call_worker_hook(Hook::WorkerExit);
            Python::attach(|py| {
                for name in ["stdout", "stderr"] {
                    if let Ok(stream) = py.import("sys").and_then(|s| s.getattr(name)) {
                        let _ = stream.call_method0("flush");
                    }
                }
            });
            crate::sys::exit_now(code);
        });
    if let Err(e) = spawned {
        tracing::error!("worker_int/worker_abort hooks disabled: {e}");
        let _ = set.thread_unblock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_side_hooks_are_the_ones_gunicorns_arbiter_calls() {
        let master: Vec<&str> = ALL
            .iter()
            .filter(|h| h.master_side())
            .map(|h| h.name())
            .collect();
        assert_eq!(
            master,
            [
                "on_starting",
                "on_reload",
                "when_ready",
                "pre_fork",
                "child_exit",
                "nworkers_changed",
                "on_exit",
                "pre_exec"
            ]
        );
        let bits: Vec<u32> = ALL.iter().map(|h| h.bit()).collect();
        assert!(bits.iter().all(|b| b.count_ones() == 1));
        assert_eq!(
            bits.iter().fold(0, |a, b| a | b).count_ones(),
            ALL.len() as u32
        );
    }
}
