//! A worker process: boots the interpreter and the app after fork, then runs the event
//! loop ([`event_loop`]) over connections ([`conn`]) until told to stop.

pub mod conn;
pub mod event_loop;
mod pool;
mod read_buffer;
mod stream;

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::config::Config;
use crate::sock::Listener;
use crate::sys;
use crate::wsgi::{BootError, Bridge, LoadError, PythonEnv};

/// Exit status of a worker that could not boot (Gunicorn's WORKER_BOOT_ERROR): the
/// master stops instead of respawning.
pub const WORKER_BOOT_ERROR: i32 = 3;
/// Exit status of a worker whose app could not be found (Gunicorn's APP_LOAD_ERROR).
pub const APP_LOAD_ERROR: i32 = 4;

/// Signals a worker handles itself; everything else the master used is reset.
/// TERM drains through the event loop; INT/QUIT end the worker at once, and ABRT (the
/// master's timeout) ends it with status 1, even in the middle of an app call.
const WORKER_SIGNALS: [Signal; 1] = [Signal::SIGTERM];
const MASTER_ONLY_SIGNALS: [Signal; 7] = [
    Signal::SIGHUP,
    Signal::SIGCHLD,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// The body of a forked worker; never returns.
pub fn run(config: &Config, listeners: &[Listener], env: &PythonEnv, master: Pid) -> ! {
    sys::reset_signals(&MASTER_ONLY_SIGNALS);
    sys::die_with_parent();
    if nix::unistd::getppid() != master {
        sys::exit_now(0);
    }
    sys::set_process_name(&format!("{}: worker", config.proc_name));
    let installed = sys::exit_on_signals(&[Signal::SIGINT, Signal::SIGQUIT], 0)
        .and_then(|_| sys::exit_on_signals(&[Signal::SIGABRT], 1))
        .and_then(|_| sys::install_signal_pipe(&WORKER_SIGNALS));
    let signals = match installed {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("Worker cannot install signal handlers: {e}");
            sys::exit_now(WORKER_BOOT_ERROR);
        }
    };
    tracing::info!("Booting worker with pid: {}", std::process::id());
    let bridge = match Bridge::boot(config, env) {
        Ok(b) => std::sync::Arc::new(b),
        Err(e) => sys::exit_now(report_boot_error(config, &e)),
    };
    let code = match event_loop::EventLoop::new(config, bridge.clone(), listeners, signals, master)
    {
        Ok(mut lp) => match lp.run() {
            Ok(()) => 0,
            Err(e) => {
                tracing::error!("Worker event loop failed: {e}");
                1
            }
        },
        Err(e) => {
            tracing::error!("Worker cannot start its event loop: {e}");
            WORKER_BOOT_ERROR
        }
    };
    tracing::info!("Worker exiting (pid: {})", std::process::id());
    crate::wsgi::hooks::call_worker_hook(crate::wsgi::hooks::Hook::WorkerExit);
    bridge.flush_stdio();
    sys::exit_now(code)
}

fn report_boot_error(config: &Config, err: &BootError) -> i32 {
    match err {
        BootError::Load(LoadError::NotFound(msg)) => {
            tracing::error!("Failed to load application '{}': {msg}", config.app_module);
            APP_LOAD_ERROR
        }
        BootError::Load(LoadError::Import(tb)) => {
            tracing::error!(
                "Exception in worker process: cannot import application '{}'\n{tb}",
                config.app_module
            );
            WORKER_BOOT_ERROR
        }
        other => {
            tracing::error!("Exception in worker process: {other}");
            WORKER_BOOT_ERROR
        }
    }
}
