//! # rustcorn
//!
//! A pre-fork WSGI and ASGI server: Gunicorn's interface, a Rust core, CPython embedded.
//!
//! # Layout
//!
//! | module        | what it owns |
//! |---------------|--------------|
//! | [`config`]    | flags, environment, Gunicorn config file → one validated [`config::Config`] |
//! | [`arbiter`]   | the master: listeners, fork, reap, respawn, signals, USR2 re-exec |
//! | [`worker`]    | a worker process: boot, mio event loop, connection state machine |
//! | [`scoreboard`] | one shared slot per worker (heartbeat, idle, booted, open connections): written by workers, read by the arbiter and the other workers, below both |
//! | [`http`]      | request heads and bodies, response framing, errors with their status |
//! | [`python`]    | the interpreter: started in the user's venv (binary) or adopted (wheel), fork protocol |
//! | [`wsgi`]      | the WSGI boundary: app loading, environ, start_response, file_wrapper |
//! | [`asgi`]      | the ASGI boundary and `-k asgi`: scopes, receive/send, lifespan, asyncio driving the event loop |
//! | [`ext`]       | the wheel's pyo3 extension module: the same command line, from Python |
//! | [`log`]       | Gunicorn-format error log, access log (all atoms), syslog, statsd, reopen |
//! | [`sock`]      | bind syntax and listening sockets |
//! | [`sys`]       | every `unsafe` system call, each with its `SAFETY` note |
//! | [`tls`]       | HTTPS: rustls configuration from Gunicorn's SSL flags, non-blocking TLS streams |
//! | [`systemd`]   | socket activation (`LISTEN_FDS`) and `sd_notify`, no libsystemd |
//! | [`ctl`]       | `rustcorn ctl`: the control-socket client (the server is in [`arbiter`]) |
//!
//! Data flows one way: bytes → [`http::request::Head`] + [`http::body::Body`] → environ →
//! app → status/headers/body → [`http::response`] framing → bytes.

pub mod arbiter;
pub mod asgi;
pub mod config;
pub mod ctl;
pub mod ext;
pub mod http;
pub mod log;
pub mod python;
pub mod scoreboard;
pub mod sock;
pub mod sys;
pub mod systemd;
pub mod tls;
pub mod worker;
pub mod wsgi;

/// The whole command line, `args[0]` being the program name: parses it (flags,
/// `$GUNICORN_CMD_ARGS`, the config file) and serves; returns the exit status. Both
/// entry points call it — `main` with the process's arguments, the extension with
/// `sys.argv` — so the binary and the wheel are one server. `rustcorn ctl …` is the
/// control-socket client instead ([`ctl`]); an app module named `ctl` is served as
/// `ctl:application`.
pub fn run_command_line(args: Vec<std::ffi::OsString>) -> i32 {
    use config::{Config, ConfigError, Environment};
    use std::io::Write;
    if args.get(1).is_some_and(|a| a == "ctl") {
        return ctl::run(args);
    }
    config::record_command_line(&args);
    match Config::from_args(args, &Environment::from_process()) {
        Ok(config) => serve(config),
        Err(ConfigError::Info(text)) => {
            let mut out = std::io::stdout();
            let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
            0
        }
        Err(e) => {
            eprintln!("rustcorn: {e}");
            2
        }
    }
}

/// Runs the server with parsed settings; returns the process exit status.
pub fn serve(config: config::Config) -> i32 {
    arbiter::record_start();
    // Before any environment variable is set: see sys::init_process_title.
    sys::init_process_title();
    for (key, value) in &config.env {
        python::environ::set_var(key, value);
    }
    if let Err(e) = log::init(&config) {
        eprintln!("rustcorn: error: {e}");
        return 1;
    }
    config::check::log_warnings(&config);
    if let Some(dir) = &config.chdir {
        if let Err(e) = std::env::set_current_dir(dir) {
            tracing::error!("Cannot change directory to {}: {e}", dir.display());
            return 1;
        }
    }
    let env = match python::PythonEnv::detect() {
        Ok(env) => env,
        Err(e) => {
            tracing::error!("{e}");
            return 1;
        }
    };
    if let Some(status) = config::check::print_or_check(&config, &env) {
        return status;
    }
    let log_on_terminal = config.error_logfile == "-";
    match arbiter::Arbiter::new(config, env) {
        Ok(arbiter) => arbiter.run(),
        Err(e) => {
            tracing::error!("{e}");
            // Start-up failures (a port in use, a live pid file) also reach the
            // terminal when the log goes to a file, as Gunicorn prints them.
            if !log_on_terminal {
                eprintln!("rustcorn: error: {e}");
            }
            1
        }
    }
}
