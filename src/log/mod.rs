//! Logging with Gunicorn's formats: the error log (`[stamp] [pid] [LEVEL] message`)
//! through `tracing`, and the access log (see [`access`]).

pub mod access;
pub mod reopen;
pub mod time;

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::sync::{Mutex, OnceLock};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

use crate::config::LogLevel;

/// Where error-log lines go: stderr, or an append-mode file.
enum Sink {
    Stderr,
    File(File),
}

static ERROR_LOG: OnceLock<Mutex<Sink>> = OnceLock::new();

/// Opens a log destination: `-` is the given standard stream, anything else a file
/// opened for appending (created if missing).
pub fn open_append(path: &str) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Installs the global error logger. Called once, in the master, before forking, so
/// workers share the same file description and lines from all processes interleave
/// whole (each line is one write(2) on an O_APPEND file).
pub fn init(error_logfile: &str, level: LogLevel) -> io::Result<()> {
    let sink = if error_logfile == "-" {
        Sink::Stderr
    } else {
        Sink::File(open_append(error_logfile)?)
    };
    let _ = ERROR_LOG.set(Mutex::new(sink));
    reopen::remember_error_log(error_logfile);
    let max = match level {
        LogLevel::Debug => Level::DEBUG,
        LogLevel::Info => Level::INFO,
        LogLevel::Warning => Level::WARN,
        LogLevel::Error | LogLevel::Critical => Level::ERROR,
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(max)
        .event_format(GunicornFormat)
        .with_writer(ErrorLogWriter)
        .try_init();
    Ok(())
}

/// Writes raw bytes to the error log (what `wsgi.errors` and tracebacks use).
pub fn write_error_log(bytes: &[u8]) {
    match ERROR_LOG.get() {
        Some(sink) => {
            let mut sink = sink.lock().unwrap_or_else(|p| p.into_inner());
            let _ = match &mut *sink {
                Sink::Stderr => io::stderr().write_all(bytes),
                Sink::File(f) => f.write_all(bytes),
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

struct GunicornFormat;

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
        let level = match *event.metadata().level() {
            Level::ERROR => "ERROR",
            Level::WARN => "WARNING",
            Level::INFO => "INFO",
            _ => "DEBUG",
        };
        writer.write_str(&line_prefix(level))?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
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
        write_error_log(&self.0);
    }
}

struct ErrorLogWriter;

impl<'a> MakeWriter<'a> for ErrorLogWriter {
    type Writer = LineBuffer;
    fn make_writer(&'a self) -> LineBuffer {
        LineBuffer(Vec::with_capacity(128))
    }
}
