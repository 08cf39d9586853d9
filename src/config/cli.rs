//! The command line, with Gunicorn's flag spellings. clap parses; [`super::Config`]
//! validates and resolves defaults that depend on the environment.

use std::path::PathBuf;

use clap::{ArgAction, Parser, ValueEnum};

/// Error-log verbosity, Gunicorn's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Debug,
    Info,
    Warning,
    Error,
    Critical,
}

/// `rustcorn [OPTIONS] [APP_MODULE]` — the flags a Gunicorn user already types.
#[derive(Debug, Parser)]
#[command(
    name = "rustcorn",
    about = "A pre-fork WSGI HTTP server for Python, compatible with Gunicorn's command line",
    disable_version_flag = true,
    override_usage = "rustcorn [OPTIONS] [APP_MODULE]"
)]
pub struct Cli {
    /// The WSGI application: `module`, `module:name`, `pkg.module:obj.attr`,
    /// `module:factory()` or `module:factory('arg', 2)`. The default name is `application`.
    #[arg(value_name = "APP_MODULE")]
    pub app_module: Option<String>,

    /// The socket to bind: HOST, HOST:PORT, [V6]:PORT, unix:PATH or fd://N. Repeatable.
    /// Default 127.0.0.1:8000, or 0.0.0.0:$PORT when PORT is set.
    #[arg(short = 'b', long = "bind", value_name = "ADDRESS", action = ArgAction::Append)]
    pub bind: Vec<String>,

    /// The number of worker processes. Default $WEB_CONCURRENCY, or 1.
    #[arg(short = 'w', long = "workers", value_name = "INT")]
    pub workers: Option<u32>,

    /// The type of worker: `sync` (one app call at a time), `gthread` (--threads app
    /// threads per worker) or `asgi` (an ASGI app on an asyncio loop).
    #[arg(
        short = 'k',
        long = "worker-class",
        value_name = "STRING",
        default_value = "sync"
    )]
    pub worker_class: String,

    /// App threads per worker. More than 1 with the sync worker class means gthread.
    #[arg(long = "threads", value_name = "INT", default_value_t = 1)]
    pub threads: u32,

    /// The maximum number of simultaneous connections one worker holds.
    #[arg(
        long = "worker-connections",
        value_name = "INT",
        default_value_t = 1000
    )]
    pub worker_connections: u32,

    /// The maximum number of pending connections in the listen queue.
    #[arg(long = "backlog", value_name = "INT", default_value_t = 2048)]
    pub backlog: u32,

    /// Workers silent for more than this many seconds are killed and restarted; also the
    /// bound on how long a client may take to send one request. 0 disables it.
    #[arg(
        short = 't',
        long = "timeout",
        value_name = "INT",
        default_value_t = 30
    )]
    pub timeout: u64,

    /// Seconds workers get to finish their requests after a graceful stop (TERM) before
    /// they are killed.
    #[arg(long = "graceful-timeout", value_name = "INT", default_value_t = 30)]
    pub graceful_timeout: u64,

    /// Seconds to wait for the next request on a keep-alive connection. 0 disables
    /// keep-alive.
    #[arg(long = "keep-alive", value_name = "INT", default_value_t = 2)]
    pub keep_alive: u64,

    /// Change directory to this one before loading the app.
    #[arg(long = "chdir", value_name = "DIR")]
    pub chdir: Option<PathBuf>,

    /// Comma-separated directories to add to the Python path, e.g. '/home/djangoprojects/myproject'.
    #[arg(long = "pythonpath", value_name = "STRING")]
    pub pythonpath: Option<String>,

    /// Set an environment variable in the server and its workers: `-e KEY=VALUE`. Repeatable.
    #[arg(short = 'e', long = "env", value_name = "ENV", action = ArgAction::Append)]
    pub env: Vec<String>,

    /// A base to use for the process name (shown by ps and top).
    #[arg(short = 'n', long = "name", value_name = "STRING")]
    pub name: Option<String>,

    /// The granularity of error log output.
    #[arg(
        long = "log-level",
        value_name = "LEVEL",
        value_enum,
        ignore_case = true,
        default_value = "info"
    )]
    pub log_level: LogLevel,

    /// The error log file to write to; `-` means stderr.
    #[arg(
        long = "error-logfile",
        visible_alias = "log-file",
        value_name = "FILE",
        default_value = "-"
    )]
    pub error_logfile: String,

    /// The access log file to write to; `-` means stdout. Off by default.
    #[arg(long = "access-logfile", value_name = "FILE")]
    pub access_logfile: Option<String>,

    /// Send `wsgi.file_wrapper` files with read/write instead of sendfile(2).
    #[arg(long = "no-sendfile", action = ArgAction::SetTrue)]
    pub no_sendfile: bool,

    /// Show the version and exit.
    #[arg(short = 'v', long = "version", action = ArgAction::SetTrue)]
    pub version: bool,

    #[command(flatten)]
    pub config_file: super::ConfigFileArgs,

    #[command(flatten)]
    pub tls: super::tls::TlsArgs,

    #[command(flatten)]
    pub http2: super::http2::Http2Args,

    #[command(flatten)]
    pub proxy: super::proxy::ProxyArgs,

    #[command(flatten)]
    pub logging: super::logging::LoggingArgs,

    #[command(flatten)]
    pub http: super::http::HttpArgs,

    #[command(flatten)]
    pub ops: super::ops::OpsArgs,

    #[command(flatten)]
    pub preload: super::preload::PreloadArgs,

    #[command(flatten)]
    pub reload: super::reload::ReloadArgs,

    #[command(flatten)]
    pub paste: super::paste::PasteArgs,

    #[command(flatten)]
    pub asgi: super::asgi::AsgiArgs,

    #[command(flatten)]
    pub control: super::control::ControlArgs,
}
