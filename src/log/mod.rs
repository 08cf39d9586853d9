//! Logging with Gunicorn's formats: the error log (`[stamp] [pid] [LEVEL] message`)
//! through `tracing`, the access log ([`access`], formats in [`format`]), syslog
//! ([`syslog`]), statsd metrics ([`statsd`]), the app's Python `logging` configuration
//! ([`pyconfig`]), and [`reopen_log_files`] for USR1.
//!
//! Error-log events with the target [`CRITICAL`] print as `CRITICAL`; with the target
//! [`EXCEPTION`] they count as `gunicorn.log.exception` in statsd (Gunicorn's
//! `log.exception`) instead of `gunicorn.log.error`.

pub mod access;
pub mod format;
pub mod pyconfig;
pub mod reopen;
pub mod statsd;
pub mod syslog;
pub mod time;

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::sync::{Mutex, OnceLock};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

use crate::config::{Config, LogLevel};

/// Where error-log lines go: stderr, or an append-mode file.
enum Sink {
    Stderr,
    File { path: String, file: File },
}

/// `tracing` target of an error-log event Gunicorn logs at CRITICAL.
pub const CRITICAL: &str = "rustcorn::critical";
/// `tracing` target of an error-log event Gunicorn logs with `log.exception`.
pub const EXCEPTION: &str = "rustcorn::exception";

/// Why logging could not start; the server stops with this message.
#[derive(Debug, thiserror::Error)]
pub enum LogInitError {
    #[error("cannot open error log {path}: {source}")]
    ErrorLog { path: String, source: io::Error },
    #[error("cannot redirect stdout/stderr to {path} (--capture-output): {source}")]
    Capture { path: String, source: io::Error },
    #[error("cannot reach syslog (--log-syslog-to): {0}")]
    Syslog(io::Error),
}

static ERROR_LOG: OnceLock<Mutex<Sink>> = OnceLock::new();

/// Opens a log destination: `-` is the given standard stream, anything else a file
/// opened for appending (created if missing).
pub fn open_append(path: &str) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Installs the global error logger, and syslog, statsd and `--capture-output` when
/// configured. Called once, in the master, before forking, so workers share the same
/// file descriptions and sockets: lines from all processes interleave whole (each line
/// is one write(2) on an O_APPEND file, one datagram on a socket).
pub fn init(config: &Config) -> Result<(), LogInitError> {
    let path = &config.error_logfile;
    let sink = if path == "-" {
        Sink::Stderr
    } else {
        let file = open_append(path).map_err(|source| LogInitError::ErrorLog {
            path: path.clone(),
            source,
        })?;
        // Absolute: `--chdir` comes later, and USR1 reopens by this path.
        let absolute = std::path::absolute(path)
            .map_or_else(|_| path.clone(), |p| p.to_string_lossy().into_owned());
        Sink::File {
            path: absolute,
            file,
        }
    };
    if config.logging.capture_output && path != "-" {
        let _ = CAPTURED.set(path.clone());
        capture_output(path).map_err(|source| LogInitError::Capture {
            path: path.clone(),
            source,
        })?;
    }
    let _ = ERROR_LOG.set(Mutex::new(sink));
    if let Some(sys) = &config.logging.syslog {
        syslog::init(sys).map_err(LogInitError::Syslog)?;
    }
    let shown = match config.log_level {
        LogLevel::Debug => Level::DEBUG,
        LogLevel::Info => Level::INFO,
        LogLevel::Warning => Level::WARN,
        LogLevel::Error | LogLevel::Critical => Level::ERROR,
    };
    // Gunicorn counts warnings and errors in statsd whatever --log-level hides, so with
    // statsd they reach the formatter, which counts, then prints only what is shown.
    let max = match &config.logging.statsd {
        Some(_) => shown.max(Level::WARN),
        None => shown,
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(max)
        .event_format(GunicornFormat {
            shown,
            critical_only: config.log_level == LogLevel::Critical,
        })
        .with_writer(ErrorLogWriter)
        .try_init();
    if let Some(s) = &config.logging.statsd {
        statsd::init(s);
    }
    Ok(())
}

/// Gunicorn's `capture_output`: stdout and stderr (the app's `print`, C extensions'
/// output) become the error log file.
fn capture_output(path: &str) -> io::Result<()> {
    let _ = io::stdout().flush();
    let file = open_append(path)?;
    nix::unistd::dup2_stdout(&file)?;
    nix::unistd::dup2_stderr(&file)?;
    Ok(())
}

static CAPTURED: OnceLock<String> = OnceLock::new();

/// The error log file's path, `None` when it is stderr.
pub fn error_log_path() -> Option<String> {
    let sink = ERROR_LOG.get()?.lock().unwrap_or_else(|p| p.into_inner());
    match &*sink {
        Sink::File { path, .. } => Some(path.clone()),
        Sink::Stderr => None,
    }
}

/// Reopens every log file this process writes (Gunicorn's `reopen_files`, on USR1):
/// the error log, the `--capture-output` redirection, the file handlers of the app's
/// `--log-config-json` and, at its next line, the access log. Call it from the
/// master's and each worker's signal handling loop — not from a signal handler: it
/// takes locks and opens files. Safe to call at any time; errors are logged and the
/// old file stays in use.
pub fn reopen_log_files() {
    access::REOPEN_GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    pyconfig::reopen();
    let Some(sink) = ERROR_LOG.get() else {
        return;
    };
    let mut sink = sink.lock().unwrap_or_else(|p| p.into_inner());
    if let Sink::File { path, file } = &mut *sink {
        match open_append(path) {
            Ok(f) => *file = f,
            Err(e) => {
                let _ = writeln!(file, "Cannot reopen error log {path}: {e}");
            }
        }
        if CAPTURED.get().is_some() {
            let _ = capture_output(path);
        }
    }
}

/// Writes raw bytes to the error log (what `wsgi.errors` and tracebacks use).
pub fn write_error_log(bytes: &[u8]) {
    match ERROR_LOG.get() {
        Some(sink) => {
            let mut sink = sink.lock().unwrap_or_else(|p| p.into_inner());
            let _ = match &mut *sink {
                Sink::Stderr => io::stderr().write_all(bytes),
                Sink::File { file, .. } => file.write_all(bytes),
            };
        }
        None => {
            let _ = io::stderr().write_all(bytes);
        }
    }
}

/// Formats one error-log line prefix the way Gunicorn's `glogging` does.
pub fn line_prefix(level: &str) -> String {
    format!(
        "[{}] [{}] [{}] ",
        time::error_log_stamp(time::unix_now()),
        std::process::id(),
        level
    )
}

struct GunicornFormat {
    /// The least severe level `--log-level` prints.
    shown: Level,
    /// `--log-level critical`: only CRITICAL events print (tracing has no such level).
    critical_only: bool,
}

impl<S, N> FormatEvent<S, N> for GunicornFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let target = event.metadata().target();
        let (level, severity, metric) = match *event.metadata().level() {
            Level::ERROR if target == CRITICAL => (
                "CRITICAL",
                syslog::Severity::Critical,
                "gunicorn.log.critical",
            ),
            Level::ERROR if target == EXCEPTION => {
                ("ERROR", syslog::Severity::Error, "gunicorn.log.exception")
            }
            Level::ERROR => ("ERROR", syslog::Severity::Error, "gunicorn.log.error"),
            Level::WARN => ("WARNING", syslog::Severity::Warning, "gunicorn.log.warning"),
            Level::INFO => ("INFO", syslog::Severity::Info, ""),
            _ => ("DEBUG", syslog::Severity::Debug, ""),
        };
        if !metric.is_empty() {
            statsd::increment(metric, 1);
        }
        // tracing orders levels by verbosity: a more verbose event than shown is hidden.
        if *event.metadata().level() > self.shown || (self.critical_only && level != "CRITICAL") {
            return Ok(());
        }
        let mut message = String::new();
        ctx.field_format()
            .format_fields(Writer::new(&mut message), event)?;
        writer.write_str(&line_prefix(level))?;
        writer.write_str(&message)?;
        writeln!(writer)?;
        syslog::send(severity, "error", &message);
        Ok(())
    }
}

/// Buffers one formatted event and hands it to the sink in a single write.
struct LineBuffer(Vec<u8>);

impl Write for LineBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LineBuffer {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            write_error_log(&self.0);
        }
    }
}

struct ErrorLogWriter;

impl<'a> MakeWriter<'a> for ErrorLogWriter {
    type Writer = LineBuffer;
    fn make_writer(&'a self) -> LineBuffer {
        LineBuffer(Vec::with_capacity(128))
    }
}
