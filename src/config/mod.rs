//! Settings: raw flags and environment variables become one validated [`Config`] here,
//! and nowhere else. Every problem is a [`ConfigError`] that names the flag at fault.

mod cli;
pub mod preload;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Parser;
pub use cli::{Cli, LogLevel};

use crate::sock::BindAddress;

/// A configuration problem; `main` prints it as one line and exits with status 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// clap's own message (unknown flag, value that does not parse); first line only.
    #[error("{0}")]
    Parse(String),
    #[error("error: invalid value '{value}' for '{flag}': {reason}")]
    Invalid {
        flag: &'static str,
        value: String,
        reason: String,
    },
    /// Not an error: --help or --version was asked for; the text goes to stdout.
    #[error("{0}")]
    Info(String),
}

/// The worker implementations rustcorn offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerClass {
    /// One app call at a time per process, many connections on an event loop.
    Sync,
    /// `--threads` app threads per process; the event loop still does accept, reads,
    /// parsing and keep-alive bookkeeping.
    Gthread,
}

impl WorkerClass {
    /// The name Gunicorn's start line shows (`Using worker: sync`).
    pub fn name(self) -> &'static str {
        match self {
            WorkerClass::Sync => "sync",
            WorkerClass::Gthread => "gthread",
        }
    }
}

/// The resolved settings the arbiter and workers run with.
#[derive(Clone, Debug)]
pub struct Config {
    pub app_module: String,
    pub binds: Vec<BindAddress>,
    pub workers: u32,
    pub worker_class: WorkerClass,
    /// App threads per worker (1 for sync).
    pub threads: usize,
    pub worker_connections: usize,
    pub backlog: u32,
    pub timeout: u64,
    pub graceful_timeout: u64,
    pub keep_alive: u64,
    pub chdir: Option<PathBuf>,
    pub pythonpath: Vec<PathBuf>,
    pub env: Vec<(String, String)>,
    pub proc_name: String,
    pub log_level: LogLevel,
    pub error_logfile: String,
    pub access_logfile: Option<String>,
    /// Use sendfile(2) for `wsgi.file_wrapper` (off with `--no-sendfile`).
    pub sendfile: bool,
    /// Where the app is imported (`--preload`).
    pub preload: preload::Preload,
}

/// The process environment variables that change defaults, read once so tests can pass
/// their own.
#[derive(Clone, Debug, Default)]
pub struct Environment {
    pub port: Option<String>,
    pub web_concurrency: Option<String>,
}

impl Environment {
    /// `PORT` and `WEB_CONCURRENCY` from this process.
    pub fn from_process() -> Self {
        Environment {
            port: std::env::var("PORT").ok().filter(|v| !v.is_empty()),
            web_concurrency: std::env::var("WEB_CONCURRENCY")
                .ok()
                .filter(|v| !v.is_empty()),
        }
    }
}

impl Config {
    /// Parses `args` (including the program name) and validates the result.
    pub fn from_args<I, T>(args: I, env: &Environment) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let cli = Cli::try_parse_from(args).map_err(|e| match e.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                ConfigError::Info(e.to_string())
            }
            _ => ConfigError::Parse(first_line(&e.to_string())),
        })?;
        if cli.version {
            return Err(ConfigError::Info(format!(
                "rustcorn (version {})\n",
                env!("CARGO_PKG_VERSION")
            )));
        }
        Config::from_cli(cli, env)
    }

    fn from_cli(cli: Cli, env: &Environment) -> Result<Config, ConfigError> {
        let app_module = cli.app_module.ok_or_else(|| {
            ConfigError::Parse(
                "error: the following required arguments were not provided: <APP_MODULE>".into(),
            )
        })?;
        let bind_specs = if cli.bind.is_empty() {
            vec![match &env.port {
                Some(port) => format!("0.0.0.0:{port}"),
                None => "127.0.0.1:8000".to_string(),
            }]
        } else {
            cli.bind
        };
        let binds = bind_specs
            .iter()
            .map(|spec| BindAddress::parse(spec).map_err(|reason| invalid("--bind", spec, reason)))
            .collect::<Result<Vec<_>, _>>()?;
        let workers = match (cli.workers, &env.web_concurrency) {
            (Some(n), _) => n,
            (None, Some(value)) => value.parse::<u32>().map_err(|_| {
                invalid(
                    "--workers",
                    value,
                    "WEB_CONCURRENCY must be a positive integer",
                )
            })?,
            (None, None) => 1,
        };
        if workers == 0 {
            return Err(invalid("--workers", "0", "must be at least 1"));
        }
        if cli.worker_connections == 0 {
            return Err(invalid("--worker-connections", "0", "must be at least 1"));
        }
        if cli.backlog == 0 {
            return Err(invalid("--backlog", "0", "must be at least 1"));
        }
        if cli.threads == 0 {
            return Err(invalid("--threads", "0", "must be at least 1"));
        }
        let worker_class = match parse_worker_class(&cli.worker_class)? {
            WorkerClass::Sync if cli.threads > 1 => WorkerClass::Gthread,
            class => class,
        };
        let threads = match worker_class {
            WorkerClass::Sync => 1,
            WorkerClass::Gthread => cli.threads as usize,
        };
        let env_pairs = cli
            .env
            .iter()
            .map(|kv| parse_env_pair(kv))
            .collect::<Result<Vec<_>, _>>()?;
        let pythonpath = cli
            .pythonpath
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .collect();
        if let Some(dir) = &cli.chdir {
            if !dir.is_dir() {
                return Err(invalid(
                    "--chdir",
                    &dir.display().to_string(),
                    "not a directory",
                ));
            }
        }
        Ok(Config {
            app_module,
            binds,
            workers,
            worker_class,
            threads,
            worker_connections: cli.worker_connections as usize,
            backlog: cli.backlog,
            timeout: cli.timeout,
            graceful_timeout: cli.graceful_timeout,
            keep_alive: cli.keep_alive,
            chdir: cli.chdir,
            pythonpath,
            env: env_pairs,
            proc_name: cli.name.unwrap_or_else(|| "rustcorn".to_string()),
            log_level: cli.log_level,
            error_logfile: cli.error_logfile,
            access_logfile: cli.access_logfile,
            sendfile: !cli.no_sendfile,
            preload: preload::resolve(&cli.preload)?,
        })
    }
}

fn invalid(flag: &'static str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        flag,
        value: value.to_string(),
        reason: reason.into(),
    }
}

fn first_line(text: &str) -> String {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(text)
        .trim_end()
        .to_string()
}

/// Worker classes: the ones rustcorn has, and a pointer to them for the ones it has not.
fn parse_worker_class(value: &str) -> Result<WorkerClass, ConfigError> {
    let short = value.trim().to_ascii_lowercase();
    match short.as_str() {
        "sync" | "gunicorn.workers.sync.syncworker" => Ok(WorkerClass::Sync),
        "gevent"
        | "eventlet"
        | "tornado"
        | "asgi"
        | "uvicorn.workers.uvicornworker"
        | "gunicorn.workers.ggevent.geventworker"
        | "gunicorn.workers.geventlet.eventletworker"
        | "gunicorn.workers.gtornado.tornadoworker" => Err(invalid(
            "--worker-class",
            value,
            "rustcorn serves WSGI apps without monkey-patching; its workers already hold many \
             idle and keep-alive connections on an event loop. Use -k sync, or -k gthread \
             --threads N for apps that wait on I/O",
        )),
        "gthread" | "gunicorn.workers.gthread.threadworker" => Ok(WorkerClass::Gthread),
        _ => Err(invalid(
            "--worker-class",
            value,
            "unknown worker class; rustcorn offers: sync, gthread",
        )),
    }
}

fn parse_env_pair(kv: &str) -> Result<(String, String), ConfigError> {
    match kv.split_once('=') {
        Some((k, v)) if !k.is_empty() && !k.contains('\0') && !v.contains('\0') => {
            Ok((k.to_string(), v.to_string()))
        }
        _ => Err(invalid("--env", kv, "expected KEY=VALUE")),
    }
}

#[cfg(test)]
mod tests;
