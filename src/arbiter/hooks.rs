//! The master's side of Gunicorn's server hooks, and HUP's re-read of the config.
//!
//! When the config file defines a hook that runs in the master (`on_starting`,
//! `when_ready`, `pre_fork`, `child_exit`, `nworkers_changed`, `on_reload`, `on_exit`),
//! the master starts the embedded interpreter and runs the config file in
//! it ([`crate::wsgi::hooks::load`]); forks then go through Python's fork protocol
//! ([`crate::sys::fork`]) and workers inherit the hooks. Otherwise the master stays free
//! of Python and each worker loads the hooks itself.
//!
//! Failures follow Gunicorn: an exception in `on_starting` or `when_ready` stops the
//! master before it serves (Gunicorn lets it escape `Arbiter.start`). Elsewhere in the
//! master Gunicorn would exit with "Unhandled exception in main loop"; rustcorn logs
//! the traceback and keeps serving, which is what the people running it want.

use nix::unistd::Pid;
use pyo3::prelude::*;

use super::Arbiter;
use crate::config::{Config, Environment};
use crate::python::PythonEnv;
use crate::wsgi::hooks::{self, Hook};

/// Before binding: starts Python in the master when a master-side hook needs it, loads
/// the hooks, then calls `nworkers_changed(server, workers, None)` (Gunicorn's setup)
/// and `on_starting(server)`. An error stops the server.
pub(super) fn start(config: &Config, env: &PythonEnv) -> Result<(), String> {
    if !hooks::master_needs_python(config) {
        return Ok(());
    }
    crate::python::interpreter::ensure_master_python(env).map_err(|e| e.to_string())?;
    Python::attach(|py| hooks::load(py, config))
        .map_err(|tb| format!("Cannot load the config file's hooks:\n{tb}"))?;
    call_master(Hook::NworkersChanged, config.workers, |py, server| {
        Ok(vec![
            server,
            config.workers.into_pyobject(py)?.into_any(),
            py.None().into_bound(py),
        ])
    });
    fatal(Hook::OnStarting, config.workers)
}

/// Calls a master hook whose exception Gunicorn treats as fatal.
fn fatal(hook: Hook, num_workers: u32) -> Result<(), String> {
    let mut failure = None;
    if hooks::defined(hook) {
        Python::attach(|py| {
            let server = server(py, num_workers)?;
            if let Err(tb) = hooks::call(py, hook, [server]) {
                failure = Some(format!("Exception in {} hook\n{tb}", hook.name()));
            }
            PyResult::Ok(())
        })
        .map_err(|e| e.to_string())?;
    }
    failure.map_or(Ok(()), Err)
}

fn server(py: Python<'_>, num_workers: u32) -> PyResult<Bound<'_, PyAny>> {
    let server = hooks::server(py)?;
    server.setattr("num_workers", num_workers)?;
    server.setattr("pid", std::process::id())?;
    Ok(server)
}

/// Calls `hook` with the arguments `args` builds from the server object, when the hook
/// is defined; an exception is logged with its traceback and the master carries on.
fn call_master<'a>(
    hook: Hook,
    num_workers: u32,
    args: impl for<'py> FnOnce(Python<'py>, Bound<'py, PyAny>) -> PyResult<Vec<Bound<'py, PyAny>>> + 'a,
) {
    if !hooks::defined(hook) {
        return;
    }
    Python::attach(|py| {
        let result = server(py, num_workers)
            .and_then(|s| args(py, s))
            .map_err(|e| crate::wsgi::format_exception(py, &e))
            .and_then(|args| hooks::call(py, hook, args));
        if let Err(tb) = result {
            tracing::error!(target: crate::log::EXCEPTION, "Exception in {} hook\n{tb}", hook.name());
        }
    });
}

impl Arbiter {
    /// `pre_exec(server)`: USR2, just before the new master is forked (Gunicorn's doc).
    pub(super) fn hook_pre_exec(&self) {
        call_master(Hook::PreExec, self.num_workers, |_py, server| {
            Ok(vec![server])
        });
    }

    /// `when_ready(server)`, once the listeners are up, before the first worker.
    pub(super) fn hook_when_ready(&self) -> Result<(), String> {
        fatal(Hook::WhenReady, self.num_workers)
    }

    /// `nworkers_changed(server, new_value, old_value)`: Gunicorn calls it whenever
    /// `num_workers` is assigned (TTIN, TTOU, every reload), equal values included.
    pub(super) fn hook_nworkers_changed(&self, old: u32) {
        let new = self.num_workers;
        call_master(Hook::NworkersChanged, new, |py, server| {
            Ok(vec![
                server,
                new.into_pyobject(py)?.into_any(),
                old.into_pyobject(py)?.into_any(),
            ])
        });
    }

    /// Before fork: the worker object (also inherited by the child) and
    /// `pre_fork(server, worker)`.
    pub(super) fn hook_pre_fork(&self, age: u64) {
        hooks::set_next_worker_age(age);
        if !hooks::loaded() {
            return;
        }
        let made = Python::attach(|py| -> PyResult<()> {
            let worker = hooks::new_worker(py, age)?;
            hooks::set_pending_worker(py, &worker)
        });
        if let Err(e) = made {
            tracing::error!("Cannot build the worker object for hooks: {e}");
            return;
        }
        call_master(Hook::PreFork, self.num_workers, |py, server| {
            Ok(vec![server, hooks::pending_worker(py)?])
        });
    }

    /// In the master after fork: the worker object gets its pid and joins
    /// `server.WORKERS`.
    pub(super) fn hook_forked(&self, pid: Pid) {
        if !hooks::loaded() {
            return;
        }
        let _ = Python::attach(|py| -> PyResult<()> {
            let worker = hooks::pending_worker(py)?;
            worker.setattr("pid", pid.as_raw())?;
            let workers = hooks::server(py)?.getattr("WORKERS")?;
            workers.set_item(pid.as_raw(), worker)?;
            Ok(())
        });
    }

    /// A process was reaped: `child_exit(server, worker)` if it was a worker.
    pub(super) fn hook_child_exit(&self, pid: Pid) {
        if !hooks::loaded() {
            return;
        }
        let worker = Python::attach(|py| -> PyResult<Py<PyAny>> {
            let workers = hooks::server(py)?.getattr("WORKERS")?;
            Ok(workers
                .call_method1("pop", (pid.as_raw(), py.None()))?
                .unbind())
        });
        // Workers retired by TTOU or a reload left the Rust table already; the
        // Python one keeps them until they are reaped, as Gunicorn's WORKERS does.
        let Ok(worker) = worker else { return };
        if Python::attach(|py| worker.is_none(py)) {
            return;
        }
        call_master(Hook::ChildExit, self.num_workers, |py, server| {
            let worker = worker.into_bound(py);
            let _ = worker.setattr("alive", false);
            Ok(vec![server, worker])
        });
    }

    /// `on_exit(server)`, after "Shutting down: Master".
    pub(super) fn hook_on_exit(&self) {
        call_master(Hook::OnExit, self.num_workers, |_, server| Ok(vec![server]));
    }

    /// HUP (Gunicorn's `reload()`): reads the command line, `$GUNICORN_CMD_ARGS` and
    /// the config file again; new settings apply to the workers started next. Listeners
    /// are re-bound when `bind` changed; the error log, whose file is shared by every
    /// process, keeps its path and level until a restart (said in the log). Then
    /// `on_reload(server)`.
    pub(super) fn reread_config(&mut self) {
        tracing::info!("Hang up: Master");
        // Gunicorn puts back the environment raw_env changed before reading again.
        self.set_env(&self.config.sources.env_orig, &[]);
        // Relative paths in the arguments mean the directory the server started in.
        let start = &self.config.sources.start_dir;
        if let Err(e) = std::env::set_current_dir(start) {
            tracing::error!("Reload: cannot return to {}: {e}", start.display());
        }
        let fresh = Config::from_args(crate::config::command_line(), &Environment::from_process());
        let dir = match &fresh {
            Ok(new) => new.chdir.clone(),
            Err(_) => self.config.chdir.clone(),
        };
        if let Some(dir) = dir {
            if let Err(e) = std::env::set_current_dir(&dir) {
                tracing::error!("Reload: cannot change directory to {}: {e}", dir.display());
            }
        }
        match fresh {
            Ok(new) => self.apply_config(new),
            Err(e) => tracing::error!(
                "Reload: the configuration is invalid, keeping the current one: {e}"
            ),
        }
        call_master(Hook::OnReload, self.num_workers, |_, server| {
            Ok(vec![server])
        });
    }

    fn apply_config(&mut self, new: Config) {
        self.set_env(&[], &new.env);
        if new.error_logfile != self.config.error_logfile || new.log_level != self.config.log_level
        {
            tracing::warn!("Reload: the error log's file and level change only on a restart");
        }
        crate::log::reopen_log_files();
        if new.binds != self.config.binds {
            self.rebind(&new);
        }
        if hooks::loaded() {
            let loaded = Python::attach(|py| hooks::load(py, &new));
            if let Err(tb) = loaded {
                tracing::error!(
                    "Reload: cannot load the config file's hooks; keeping the old ones\n{tb}"
                );
            }
        }
        let old = self.num_workers;
        self.num_workers = new.workers;
        self.config = new;
        self.hook_nworkers_changed(old);
    }

    /// Puts back `restore` (a `None` value unsets), then sets `set`: in the process
    /// environment and, when the master runs Python, in its `os.environ`, which workers
    /// forked from it inherit.
    fn set_env(&self, restore: &[(String, Option<String>)], set: &[(String, String)]) {
        use crate::python::environ;
        for (key, value) in restore {
            match value {
                Some(v) => environ::set_var(key, v),
                None => environ::remove_var(key),
            }
        }
        for (key, value) in set {
            environ::set_var(key, value);
        }
    }

    /// New listeners for a changed `bind`; on failure the old ones stay.
    fn rebind(&mut self, new: &Config) {
        let mut listeners = Vec::new();
        for addr in &new.binds {
            match crate::sock::Listener::bind(addr, new.backlog) {
                Ok(l) => listeners.push(l),
                Err(e) => {
                    tracing::error!(
                        "Reload: cannot bind {}: {e}; keeping the current listeners",
                        super::describe(addr)
                    );
                    return;
                }
            }
        }
        for old in std::mem::replace(&mut self.listeners, listeners) {
            old.cleanup();
        }
        for l in &self.listeners {
            tracing::info!("Listening at: {l}");
        }
    }
}
