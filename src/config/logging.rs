//! Logging and metrics flags (Gunicorn's "Logging" section): the access-log format,
//! capture of the app's stdout/stderr, syslog, Python `logging` configuration and
//! statsd. Each field's doc names the Gunicorn setting it mirrors, so the Python config
//! file (`accesslog = ...` in gunicorn.conf.py) can fill the same fields.

use std::path::PathBuf;

use clap::{ArgAction, Args};

use super::ConfigError;
use crate::log::format::{AccessFormat, DEFAULT_FORMAT};
use crate::log::statsd::StatsdAddress;
use crate::log::syslog::{Facility, SyslogAddress};

/// The flags, spelled as Gunicorn 27 spells them.
#[derive(Debug, Args)]
pub struct LoggingArgs {
    /// The access log format (Gunicorn's `%(atom)s` atoms: h l u t r m U q H s B b f a
    /// T M D L p, {header}i, {header}o, {variable}e).
    #[arg(long = "access-logformat", value_name = "STRING", default_value = DEFAULT_FORMAT)]
    pub access_logformat: String,

    /// Redirect stdout/stderr to the file given by --error-logfile.
    #[arg(long = "capture-output", action = ArgAction::SetTrue)]
    pub capture_output: bool,

    /// Enable inheritance for stdio file descriptors in daemon mode.
    #[arg(short = 'R', long = "enable-stdio-inheritance", action = ArgAction::SetTrue)]
    pub enable_stdio_inheritance: bool,

    /// Send the server's logs to syslog.
    #[arg(long = "log-syslog", action = ArgAction::SetTrue)]
    pub log_syslog: bool,

    /// Address to send syslog messages to: unix://PATH#TYPE, udp://HOST:PORT or
    /// tcp://HOST:PORT.
    #[arg(
        long = "log-syslog-to",
        value_name = "SYSLOG_ADDR",
        default_value = "udp://localhost:514"
    )]
    pub log_syslog_to: String,

    /// Program name in syslog entries (`gunicorn.<prefix>`); default the process name.
    #[arg(long = "log-syslog-prefix", value_name = "SYSLOG_PREFIX")]
    pub log_syslog_prefix: Option<String>,

    /// Syslog facility name.
    #[arg(
        long = "log-syslog-facility",
        value_name = "SYSLOG_FACILITY",
        default_value = "user"
    )]
    pub log_syslog_facility: String,

    /// Do not send access-log lines to syslog.
    #[arg(long = "disable-redirect-access-to-syslog", action = ArgAction::SetTrue)]
    pub disable_redirect_access_to_syslog: bool,

    /// A JSON file with a `logging.config.dictConfig` configuration for the app's
    /// Python loggers.
    #[arg(long = "log-config-json", value_name = "FILE")]
    pub log_config_json: Option<PathBuf>,

    /// An INI file with a `logging.config.fileConfig` configuration for the app's
    /// Python loggers (`%(here)s` is its directory).
    #[arg(long = "log-config", value_name = "FILE")]
    pub log_config: Option<PathBuf>,

    /// The statsd server to send metrics to: HOST:PORT or unix://PATH.
    #[arg(long = "statsd-host", value_name = "STATSD_ADDR")]
    pub statsd_host: Option<String>,

    /// Prefix for statsd metric names (a trailing `.` is added if missing).
    #[arg(
        long = "statsd-prefix",
        value_name = "STATSD_PREFIX",
        default_value = ""
    )]
    pub statsd_prefix: String,

    /// Send the listen queue's length to statsd (`gunicorn.backlog`, a histogram) from
    /// the master, about once a second.
    #[arg(long = "enable-backlog-metric", action = ArgAction::SetTrue)]
    pub enable_backlog_metric: bool,

    /// Comma-separated dogstatsd tags appended to every metric (`tag1:v1,tag2:v2`).
    #[arg(
        long = "dogstatsd-tags",
        value_name = "DOGSTATSD_TAGS",
        default_value = ""
    )]
    pub dogstatsd_tags: String,
}

/// Syslog destination and naming, resolved.
#[derive(Clone, Debug)]
pub struct SyslogConfig {
    /// Gunicorn `syslog_addr`.
    pub address: SyslogAddress,
    /// Gunicorn `syslog_facility`.
    pub facility: Facility,
    /// `gunicorn.<syslog_prefix or proc_name with ':' as '.'>`: the tag before `.error`
    /// or `.access`.
    pub tag: String,
    /// Access lines go to syslog too (not `disable_redirect_access_to_syslog`).
    pub access: bool,
}

/// Statsd destination and naming, resolved.
#[derive(Clone, Debug)]
pub struct StatsdConfig {
    /// Gunicorn `statsd_host`.
    pub address: StatsdAddress,
    /// Gunicorn `statsd_prefix`, normalised to end with one `.` (or empty).
    pub prefix: String,
    /// Gunicorn `dogstatsd_tags`, appended as `|#tags` when not empty.
    pub tags: String,
}

/// The validated logging and metrics settings.
#[derive(Clone, Debug)]
pub struct LoggingConfig {
    /// Gunicorn `access_log_format`, compiled once at start-up.
    pub access_format: AccessFormat,
    /// Gunicorn `capture_output`: the app's stdout/stderr go to the error log file.
    pub capture_output: bool,
    /// Gunicorn `enable_stdio_inheritance`: with daemonization (`--daemon`), keep
    /// stdout/stderr instead of sending them to /dev/null. Without it, no effect (as in
    /// Gunicorn).
    pub enable_stdio_inheritance: bool,
    /// Gunicorn `syslog` (with `syslog_addr`, `syslog_prefix`, `syslog_facility`,
    /// `disable_redirect_access_to_syslog`).
    pub syslog: Option<SyslogConfig>,
    /// Gunicorn `logconfig_json`: applied with `logging.config.dictConfig` in each
    /// worker before the app is imported.
    pub logconfig_json: Option<PathBuf>,
    /// Gunicorn `logconfig_dict` (Python config file only), as JSON text; takes
    /// precedence over `logconfig_json`, as in Gunicorn.
    pub logconfig_dict: Option<String>,
    /// Gunicorn `logconfig`: an INI file applied with `logging.config.fileConfig` in
    /// each worker, when neither `logconfig_dict` nor `logconfig_json` is set (Gunicorn's
    /// order). Absolute: checked to exist, and made absolute, at start-up.
    pub logconfig: Option<PathBuf>,
    /// Gunicorn `statsd_host`, `statsd_prefix`, `dogstatsd_tags`.
    pub statsd: Option<StatsdConfig>,
    /// Gunicorn `enable_backlog_metric`: the master sends `gunicorn.backlog`, the
    /// connections waiting in the TCP listeners' accept queues, with each check of
    /// its workers.
    pub backlog_metric: bool,
}

/// Validates the flags. `proc_name` is `-n` if given, and `app_module` is Gunicorn's
/// default process name (used for the syslog tag).
pub fn resolve(
    args: LoggingArgs,
    proc_name: Option<&str>,
    app_module: &str,
) -> Result<LoggingConfig, ConfigError> {
    let access_format =
        AccessFormat::compile(&args.access_logformat).map_err(|reason| ConfigError::Invalid {
            flag: "--access-logformat",
            value: args.access_logformat.clone(),
            reason,
        })?;
    let syslog = if args.log_syslog {
        let invalid = |flag, value: &str, reason: String| ConfigError::Invalid {
            flag,
            value: value.to_string(),
            reason,
        };
        let address = SyslogAddress::parse(&args.log_syslog_to)
            .map_err(|r| invalid("--log-syslog-to", &args.log_syslog_to, r))?;
        let facility = Facility::parse(&args.log_syslog_facility)
            .map_err(|r| invalid("--log-syslog-facility", &args.log_syslog_facility, r))?;
        let name = args
            .log_syslog_prefix
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| proc_name.unwrap_or(app_module).replace(':', "."));
        Some(SyslogConfig {
            address,
            facility,
            tag: format!("gunicorn.{name}"),
            access: !args.disable_redirect_access_to_syslog,
        })
    } else {
        None
    };
    let statsd = match &args.statsd_host {
        None => None,
        Some(host) => Some(StatsdConfig {
            address: StatsdAddress::parse(host).map_err(|reason| ConfigError::Invalid {
                flag: "--statsd-host",
                value: host.clone(),
                reason,
            })?,
            prefix: statsd_prefix(&args.statsd_prefix),
            tags: args.dogstatsd_tags.clone(),
        }),
    };
    if !args.dogstatsd_tags.is_ascii() {
        return Err(ConfigError::Invalid {
            flag: "--dogstatsd-tags",
            value: args.dogstatsd_tags,
            reason: "tags must be ASCII".into(),
        });
    }
    // Gunicorn refuses to start without the file ("Error: log config '%s' not found").
    let logconfig = match args.log_config {
        None => None,
        Some(path) => Some(
            std::path::absolute(&path)
                .ok()
                .filter(|p| p.is_file())
                .ok_or_else(|| ConfigError::Invalid {
                    flag: "--log-config",
                    value: path.display().to_string(),
                    reason: "log config not found".into(),
                })?,
        ),
    };
    Ok(LoggingConfig {
        access_format,
        capture_output: args.capture_output,
        enable_stdio_inheritance: args.enable_stdio_inheritance,
        syslog,
        logconfig_json: args.log_config_json,
        logconfig_dict: None,
        logconfig,
        statsd,
        backlog_metric: args.enable_backlog_metric,
    })
}

/// Gunicorn's rule (`sub(r"^(.+[^.]+)\.*$", "\g<1>.", prefix)`): a prefix of at least
/// two characters whose last non-dot character is not its first gets exactly one
/// trailing dot; anything else (empty, one character, only dots) is used as it is.
pub fn statsd_prefix(prefix: &str) -> String {
    let stem = prefix.trim_end_matches('.');
    // `.+[^.]+` needs a character before the last non-dot run ends: a stem of 2+ chars.
    if stem.chars().count() >= 2 && !prefix.contains('\n') {
        format!("{stem}.")
    } else {
        prefix.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::statsd_prefix;
    use crate::config::{Config, Environment};
    use crate::log::format::{AccessFormat, DEFAULT_FORMAT};

    fn parse(args: &[&str]) -> Config {
        let mut argv = vec!["rustcorn"];
        argv.extend_from_slice(args);
        Config::from_args(argv, &Environment::default()).unwrap()
    }

    #[test]
    fn defaults_match_gunicorn() {
        let c = parse(&["wsgi"]).logging;
        assert_eq!(
            c.access_format,
            AccessFormat::compile(DEFAULT_FORMAT).unwrap()
        );
        assert!(!c.capture_output && !c.enable_stdio_inheritance);
        assert!(c.syslog.is_none() && c.statsd.is_none() && c.logconfig_json.is_none());
    }

    #[test]
    fn syslog_tag_is_prefix_or_process_name_or_app_module() {
        let tag = |args: &[&str]| parse(args).logging.syslog.unwrap().tag;
        assert_eq!(
            tag(&["--log-syslog", "my.app:make"]),
            "gunicorn.my.app.make"
        );
        assert_eq!(
            tag(&["--log-syslog", "-n", "web:1", "app"]),
            "gunicorn.web.1"
        );
        assert_eq!(
            tag(&[
                "--log-syslog",
                "-n",
                "web",
                "--log-syslog-prefix",
                "p",
                "app"
            ]),
            "gunicorn.p"
        );
        let s = parse(&["--log-syslog", "app"]).logging.syslog.unwrap();
        assert!(s.access);
        assert_eq!(s.facility, crate::log::syslog::Facility(1));
        let off = parse(&["--log-syslog", "--disable-redirect-access-to-syslog", "app"]);
        assert!(!off.logging.syslog.unwrap().access);
    }

    #[test]
    fn statsd_prefix_follows_gunicorn_regex() {
        for (given, want) in [
            ("", ""),
            ("app", "app."),
            ("app.", "app."),
            ("app...", "app."),
            ("a", "a"),
            ("a.", "a."),
            ("my.app", "my.app."),
            ("..", ".."),
        ] {
            assert_eq!(statsd_prefix(given), want, "{given:?}");
        }
    }
}
