//! Settings: raw flags, environment variables and the Gunicorn config file become one
//! validated [`Config`] here, and nowhere else. Every problem is a [`ConfigError`] that
//! names the flag (or the config-file setting and line) at fault.
//!
//! # Sources and precedence
//!
//! As in Gunicorn, lowest first: defaults < the config file < `$GUNICORN_CMD_ARGS`
//! (split like a shell) < the command line. A later source *replaces* an earlier one's
//! value for a setting, lists included: `-b` on the command line drops every `bind` of
//! the file. `$PORT` and `$WEB_CONCURRENCY` only change the defaults of `bind` and
//! `workers`. rustcorn reads no `$RUSTCORN_CMD_ARGS`: one variable, Gunicorn's, keeps
//! a unit file or Dockerfile working unchanged under either server.
//!
//! # The config file
//!
//! `-c PATH`, `-c file:PATH` or `-c python:MODULE` (from the command line, else from
//! `$GUNICORN_CMD_ARGS`), else `./gunicorn.conf.py` when it exists. There is no
//! `rustcorn.conf.py`: the file is Gunicorn's, and one name means both servers read the
//! same settings. The file is Python, run by the `python` of the virtualenv the workers
//! embed (`file.rs` says why in a subprocess). Every module-level name that is a setting
//! applies; other names are ignored, as Gunicorn ignores them. `wsgi_app` supplies
//! APP_MODULE when the command line has none.
//!
//! # One table of settings
//!
//! [`settings::SETTINGS`] lists every Gunicorn 27 setting once: name, flags, kind,
//! default, and its status in rustcorn (implemented, being built elsewhere, a server
//! hook, ignored with a warning, or refused). A config-file value becomes the setting's
//! flag arguments (`file.rs`), and every source is parsed by the same clap command
//! (`layers.rs`), so validation lives only in the clap fields and `Config::from_cli`.
//! To make a setting work in the file, `$GUNICORN_CMD_ARGS` and `--print-config`, give
//! it a clap field and mark its table line [`settings::Status::Implemented`].

pub mod asgi;
pub mod check;
mod cli;
pub mod control;
mod file;
pub mod http;
pub mod http2;
mod layers;
mod load;
pub mod logging;
pub mod ops;
pub mod paste;
pub mod preload;
pub mod print;
pub mod proxy;
pub mod reload;
pub mod settings;
pub mod tls;

use std::ffi::OsString;
use std::path::PathBuf;

pub use cli::{Cli, LogLevel};
pub use file::{ConfigFileArgs, HookDef};
pub use load::Sources;
pub use print::render as print_config;

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
    /// The config file could not be read, raised, or set a value of the wrong type:
    /// the message names the file, the line and the setting.
    #[error("error: {0}")]
    File(String),
    /// A bad value that came from the config file or `$GUNICORN_CMD_ARGS`, not the
    /// command line: the error, then where the value was set.
    #[error("{inner} (from {origin})")]
    From {
        origin: String,
        inner: Box<ConfigError>,
    },
}

/// The worker implementations rustcorn offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerClass {
    /// One app call at a time per process, many connections on an event loop.
    Sync,
    /// `--threads` app threads per process; the event loop still does accept, reads,
    /// parsing and keep-alive bookkeeping.
    Gthread,
    /// An ASGI app on one asyncio loop per process, driven by the same event loop
    /// (see [`crate::asgi`]).
    Asgi,
}

impl WorkerClass {
    /// The name Gunicorn's start line shows (`Using worker: sync`).
    pub fn name(self) -> &'static str {
        match self {
            WorkerClass::Sync => "sync",
            WorkerClass::Gthread => "gthread",
            WorkerClass::Asgi => "asgi",
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
    /// `--print-config`: print the settings, check the app loads, exit.
    pub print_config: bool,
    /// `--check-config`: check the app loads, exit 0 or 1.
    pub check_config: bool,
    /// What the config file and environment contributed beyond the typed settings.
    pub sources: Sources,
    /// HTTPS: `--certfile` and the rest of Gunicorn's SSL settings.
    pub tls: tls::TlsConfig,
    /// `--http-protocols` and the HTTP/2 settings (ALPN is in `tls`).
    pub http2: http2::Http2Config,
    /// Behind a proxy: trusted peers, forwarded headers, the PROXY protocol.
    pub proxy: proxy::ProxyConfig,
    /// Access-log format, syslog, capture_output, Python logging config, statsd.
    pub logging: logging::LoggingConfig,
    /// Request size limits and strictness switches (`--limit-request-*`, `--permit-*`…).
    pub http: crate::http::request::Limits,
    /// Recycling, daemon mode, pid file, user/group, umask (see [`ops`]).
    pub ops: ops::Ops,
    /// Where the app is imported (`--preload`).
    pub preload: preload::Preload,
    /// Development reload: `--reload`, its engine and extra files.
    pub reload: reload::ReloadConfig,
    /// `--paste`: the app comes from a PasteDeploy file, not `app_module` (which then
    /// holds the file's path, Gunicorn's default process name).
    pub paste: Option<paste::PasteApp>,
    /// `-k asgi`: the event loop, lifespan and root path.
    pub asgi: asgi::AsgiConfig,
    /// Set when `-k` named another server's ASGI worker class (Uvicorn's), which
    /// rustcorn's asgi worker replaces: the start says so.
    pub worker_class_alias: Option<String>,
    /// The control socket (`--control-socket`, see [`control`]).
    pub control: control::ControlConfig,
}

/// The process environment variables that change defaults, read once so tests can pass
/// their own.
#[derive(Clone, Debug, Default)]
pub struct Environment {
    pub port: Option<String>,
    pub web_concurrency: Option<String>,
    /// `GUNICORN_CMD_ARGS`: more arguments, between the config file and the command line.
    pub gunicorn_cmd_args: Option<String>,
}

/// The server's command line, program name first, as the entry point received it.
static COMMAND_LINE: std::sync::OnceLock<Vec<OsString>> = std::sync::OnceLock::new();

/// Records the command line the process serves with: the binary's own arguments, or
/// the wheel script's `sys.argv` (whose process arguments are the interpreter's).
pub fn record_command_line(args: &[OsString]) {
    let _ = COMMAND_LINE.set(args.to_vec());
}

/// The command line recorded by [`record_command_line`] (else the process's): HUP
/// parses it again, and a config file sees it as `sys.argv`, as under Gunicorn.
pub fn command_line() -> Vec<OsString> {
    match COMMAND_LINE.get() {
        Some(args) => args.clone(),
        None => std::env::args_os().collect(),
    }
}

impl Environment {
    /// `PORT` and `WEB_CONCURRENCY` from this process.
    pub fn from_process() -> Self {
        Environment {
            port: std::env::var("PORT").ok().filter(|v| !v.is_empty()),
            web_concurrency: std::env::var("WEB_CONCURRENCY")
                .ok()
                .filter(|v| !v.is_empty()),
            gunicorn_cmd_args: std::env::var("GUNICORN_CMD_ARGS").ok(),
        }
    }
}

impl Config {
    /// Parses `args` (including the program name) with `$GUNICORN_CMD_ARGS` and the
    /// config file (run by the workers' Python), and validates the result.
    pub fn from_args<I, T>(args: I, env: &Environment) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let args = args.into_iter().map(Into::into).collect();
        load::load(args, env, &load::cwd(), &load::evaluate_with_workers_python)
    }

    fn from_cli(cli: Cli, env: &Environment) -> Result<Config, ConfigError> {
        let paste = paste::resolve(cli.paste, &load::cwd())?;
        let app_module = match (&paste, cli.app_module) {
            (None, Some(app)) => app,
            (Some(p), None) => p.file.display().to_string(),
            (Some(_), Some(app)) => {
                return Err(invalid(
                    "--paste",
                    &app,
                    "--paste names the app; give it or an APP_MODULE, not both",
                ))
            }
            (None, None) => {
                return Err(ConfigError::Parse(
                    "error: the following required arguments were not provided: <APP_MODULE>"
                        .into(),
                ))
            }
        };
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
        let worker_class_alias =
            is_uvicorn_worker(&cli.worker_class).then(|| cli.worker_class.clone());
        let worker_class = match parse_worker_class(&cli.worker_class)? {
            WorkerClass::Sync if cli.threads > 1 => WorkerClass::Gthread,
            class => class,
        };
        let threads = match worker_class {
            WorkerClass::Sync => 1,
            WorkerClass::Gthread => cli.threads as usize,
            WorkerClass::Asgi => 1,
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
        let mut logging = logging::resolve(cli.logging, cli.name.as_deref(), &app_module)?;
        // Gunicorn: a PasteDeploy file with [loggers] is the logging config, unless
        // --log-config names another.
        if let Some(p) = paste.as_ref().filter(|p| p.has_logging) {
            logging.logconfig.get_or_insert_with(|| p.file.clone());
        }
        // Gunicorn's default_proc_name: the APP_MODULE as written.
        let proc_name = cli.name.unwrap_or_else(|| app_module.clone());
        let http2 = http2::resolve(&cli.http2)?;
        Ok(Config {
            logging,
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
            // Absolute, as Gunicorn keeps it: a relative one from the config file means
            // the directory rustcorn started in, whatever happens later.
            chdir: cli.chdir.map(absolute_dir),
            pythonpath,
            env: env_pairs,
            proc_name,
            log_level: cli.log_level,
            error_logfile: cli.error_logfile,
            access_logfile: cli.access_logfile,
            sendfile: !cli.no_sendfile,
            print_config: cli.config_file.print_config,
            check_config: cli.config_file.check_config,
            sources: Sources::default(),
            tls: tls::resolve(&cli.tls, offered_alpn(&http2, worker_class))?,
            http2,
            proxy: proxy::resolve(&cli.proxy)?,
            http: http::resolve(&cli.http)?,
            ops: ops::resolve(&cli.ops)?,
            preload: preload::resolve(&cli.preload)?,
            reload: reload::resolve(&cli.reload, &load::cwd())?,
            paste,
            asgi: asgi::resolve(&cli.asgi)?,
            worker_class_alias,
            control: control::resolve(&cli.control)?,
        })
    }
}

/// Whether this worker class serves HTTP/2 (gthread and asgi; sync does not):
/// the one gate for both ALPN `h2` and h2c, so a client is never offered a protocol
/// the worker cannot serve.
pub fn speaks_h2(worker_class: WorkerClass) -> bool {
    matches!(worker_class, WorkerClass::Gthread | WorkerClass::Asgi)
}

/// ALPN for this worker class: none with `h2` where the worker cannot serve it.
fn offered_alpn(http2: &http2::Http2Config, worker_class: WorkerClass) -> Vec<Vec<u8>> {
    if speaks_h2(worker_class) {
        http2.alpn()
    } else {
        Vec::new()
    }
}

impl Config {
    /// The cleartext HTTP/2 this server offers trusted peers (Gunicorn's
    /// `_h2c_available`): `--http2-cleartext` when `h2` is in `--http-protocols`, the
    /// listeners speak HTTP (not uwsgi), there is no TLS and the worker serves
    /// HTTP/2 ([`speaks_h2`]); off otherwise. Trust is per peer (`worker/conn/h2c.rs`).
    pub fn h2c(&self) -> http2::Cleartext {
        let available = self.http2.wants_h2()
            && self.proxy.protocol == proxy::Protocol::Http
            && self.tls.server.is_none()
            && speaks_h2(self.worker_class);
        if available {
            self.http2.cleartext
        } else {
            http2::Cleartext::Off
        }
    }
}

fn invalid(flag: &'static str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        flag,
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// `os.path.abspath(os.path.normpath(dir))`: absolute, with `.` and `..` resolved by
/// name, as Gunicorn keeps `chdir`.
fn absolute_dir(dir: PathBuf) -> PathBuf {
    let Ok(absolute) = std::path::absolute(&dir) else {
        return dir;
    };
    let mut out = PathBuf::new();
    for part in absolute.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn first_line(text: &str) -> String {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(text)
        .trim_end()
        .to_string()
}

/// Worker classes: the ones rustcorn has, and a pointer to them for the ones it has not.
/// Uvicorn's worker classes, as existing Gunicorn configs name them.
fn is_uvicorn_worker(value: &str) -> bool {
    let v = value.trim().to_ascii_lowercase();
    matches!(
        v.as_str(),
        "uvicorn.workers.uvicornworker"
            | "uvicorn.workers.uvicornh11worker"
            | "uvicorn_worker.uvicornworker"
            | "uvicorn_worker.uvicornh11worker"
    )
}

fn parse_worker_class(value: &str) -> Result<WorkerClass, ConfigError> {
    let short = value.trim().to_ascii_lowercase();
    match short.as_str() {
        "sync" | "gunicorn.workers.sync.syncworker" => Ok(WorkerClass::Sync),
        "asgi" | "gunicorn.workers.gasgi.asgiworker" => Ok(WorkerClass::Asgi),
        _ if is_uvicorn_worker(value) => Ok(WorkerClass::Asgi),
        "gevent"
        | "eventlet"
        | "tornado"
        | "gunicorn.workers.ggevent.geventworker"
        | "gunicorn.workers.geventlet.eventletworker"
        | "gunicorn.workers.gtornado.tornadoworker" => Err(invalid(
            "--worker-class",
            value,
            "rustcorn serves WSGI apps without monkey-patching; its workers already hold many \
             idle and keep-alive connections on an event loop. Use -k sync, or -k gthread \
             --threads N for WSGI apps that wait on I/O, or -k asgi for asyncio apps",
        )),
        "gthread" | "gunicorn.workers.gthread.threadworker" => Ok(WorkerClass::Gthread),
        _ => Err(invalid(
            "--worker-class",
            value,
            "unknown worker class; rustcorn offers: sync, gthread, asgi",
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
mod sources_tests;
#[cfg(test)]
mod tests;
