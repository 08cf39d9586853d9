//! What the master does with the config sources before serving: log the warnings that
//! were collected before logging existed, and answer `--print-config` and
//! `--check-config` (Gunicorn loads the app for both).

use std::io::Write;

use pyo3::prelude::*;

use super::settings::{self, Status};
use super::Config;
use crate::python::PythonEnv;
use crate::wsgi::loader;

/// Logs every accepted-but-ignored setting (collected before logging existed), and
/// every hook the config file defines that rustcorn never calls.
pub fn log_warnings(config: &Config) {
    for warning in &config.sources.warnings {
        tracing::warn!("{warning}");
    }
    let file = config
        .sources
        .config_file
        .as_deref()
        .unwrap_or("config file");
    for hook in &config.sources.hooks {
        if let Some(Status::ServerHook(why)) = settings::lookup(hook.name).map(|s| s.status) {
            tracing::warn!(
                "{file}:{}: server hook `{}` is never called: {why}",
                hook.line,
                hook.name,
            );
        }
    }
}

/// For `--print-config` / `--check-config`: prints the settings (print only), then
/// imports the app in this process, as a worker would, and returns the exit status
/// (0 loaded, 1 not). `None` when neither was asked for.
pub fn print_or_check(config: &Config, env: &PythonEnv) -> Option<i32> {
    if !config.print_config && !config.check_config {
        return None;
    }
    if config.print_config {
        // A closed pipe (`| head`) is not an error worth a panic.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", super::print_config(config)).and_then(|_| out.flush());
    }
    if let Err(e) = env.initialize() {
        eprintln!("\nError while loading the application:\n\n{e}");
        return Some(1);
    }
    let loaded = Python::attach(|py| loader::load_configured(py, config).map(|_| ()));
    Some(match loaded {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("\nError while loading the application:\n\n{e}");
            1
        }
    })
}
