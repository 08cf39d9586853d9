//! A worker process: boots the interpreter and the app after fork, then runs the event
//! loop ([`event_loop`]) over connections ([`conn`]) until told to stop.

mod accept_read;
pub mod conn;
pub mod event_loop;
pub mod h2conn;
pub mod h2sink;
pub(crate) mod pool;
pub mod privileges;
mod read_buffer;
pub mod recycle;
pub mod reloader;
mod stream;

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::config::Config;
use crate::python::PythonEnv;
use crate::sock::Listener;
use crate::sys;
use crate::wsgi::{BootError, Bridge, LoadError};

/// Exit status of a worker that could not boot (Gunicorn's WORKER_BOOT_ERROR): the
/// master stops instead of respawning.
pub const WORKER_BOOT_ERROR: i32 = 3;
/// Exit status of a worker whose app could not be found (Gunicorn's APP_LOAD_ERROR).
pub const APP_LOAD_ERROR: i32 = 4;

/// Signals a worker handles itself; everything else the master used is reset.
/// TERM drains through the event loop; USR1 reopens the log files there; INT/QUIT end
/// the worker at once, and ABRT (the master's timeout) ends it with status 1, even in
/// the middle of an app call.
const WORKER_SIGNALS: [Signal; 2] = [Signal::SIGTERM, Signal::SIGUSR1];
const MASTER_ONLY_SIGNALS: [Signal; 6] = [
    Signal::SIGHUP,
    Signal::SIGCHLD,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// The body of a forked worker; never returns.
pub fn run(config: &Config, listeners: &[Listener], env: &PythonEnv, master: Pid) -> ! {
    // Signals arrive blocked (see sys::fork_with_signals_blocked): one sent now waits
    // for the worker's own handlers below instead of running the master's.
    sys::reset_signals(&MASTER_ONLY_SIGNALS);
    // Rust's runtime catches SEGV/BUS to report stack overflows and swallows one sent
    // with kill(2); a worker must die of them at once, as a Gunicorn worker does, so
    // the master logs "was sent SIGSEGV!" and replaces it.
    sys::reset_signals(&[Signal::SIGSEGV, Signal::SIGBUS]);
    sys::die_with_parent();
    if nix::unistd::getppid() != master {
        sys::exit_now(0);
    }
    sys::set_process_title(&format!("rustcorn: worker [{}]", config.proc_name));
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
    sys::unblock_signals();
    tracing::info!("Booting worker with pid: {}", std::process::id());
    if privileges::wanted(&config.ops) {
        switch_user(config, env);
    }
    let bridge = match Bridge::boot(config, env) {
        Ok(b) => std::sync::Arc::new(b),
        Err(e) => sys::exit_now(report_boot_error(config, &e)),
    };
    crate::scoreboard::mark_booted();
    sys::keep_freed_memory();
    if config.reload.enabled {
        if let Err(e) = reloader::start(&config.reload, bridge.broken_file()) {
            tracing::error!("Worker cannot start the reloader: {e}");
            sys::exit_now(WORKER_BOOT_ERROR);
        }
    }
    let code = if config.worker_class == crate::config::WorkerClass::Asgi {
        crate::asgi::serve(config, bridge.clone(), listeners, signals, master)
    } else {
        serve_wsgi(config, bridge.clone(), listeners, signals, master)
    };
    tracing::info!("Worker exiting (pid: {})", std::process::id());
    crate::wsgi::hooks::call_worker_hook(crate::wsgi::hooks::Hook::WorkerExit);
    bridge.flush_stdio();
    sys::exit_now(code)
}

/// The sync and gthread workers: the event loop with its executor.
fn serve_wsgi(
    config: &Config,
    bridge: std::sync::Arc<Bridge>,
    listeners: &[Listener],
    signals: std::os::unix::net::UnixStream,
    master: Pid,
) -> i32 {
    match event_loop::EventLoop::new(config, bridge, listeners, signals, master) {
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
    }
}

/// `--user`/`--group`: the interpreter and the server's own Python modules load first
/// (Gunicorn's are loaded in its master), then the worker changes identity, then the
/// app is imported as the new user. A failure stops the server like a boot error.
fn switch_user(config: &Config, env: &PythonEnv) {
    if let Err(e) = env.initialize().map_err(BootError::from).and_then(|_| {
        crate::python::interpreter::import_server_modules(
            config.worker_class == crate::config::WorkerClass::Asgi,
        )
        .map_err(BootError::Python)
    }) {
        sys::exit_now(report_boot_error(config, &e));
    }
    match privileges::drop_to(&config.ops) {
        Ok(()) => tracing::debug!("Worker runs as {}", privileges::describe()),
        Err(e) => {
            tracing::error!("Exception in worker process: cannot switch user: {e}");
            sys::exit_now(WORKER_BOOT_ERROR);
        }
    }
}

pub(crate) fn report_boot_error(config: &Config, err: &BootError) -> i32 {
    match err {
        BootError::Load(LoadError::NotFound(msg)) => {
            tracing::error!("Failed to load application '{}': {msg}", config.app_module);
            APP_LOAD_ERROR
        }
        BootError::Load(LoadError::Import(tb) | LoadError::Syntax { traceback: tb, .. }) => {
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
