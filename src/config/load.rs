//! From the process's arguments, `$GUNICORN_CMD_ARGS` and the config file to one
//! [`Config`]: choose the file, evaluate it, layer the sources ([`super::layers`]),
//! then validate once ([`Config::from_cli`]), naming the source of a bad value.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgMatches, FromArgMatches};

use super::file::{self, FileLayer, FileSettings, HookDef};
use super::layers::{self, Layer, Origin};
use super::settings::{self, Status, SETTINGS};
use super::{Cli, Config, ConfigError, Environment};

/// What the sources contributed beyond the typed settings: for `--print-config`, for
/// warnings the server logs once logging is up, and for hooks once they are built.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    /// The config file that was read, as Python resolved it.
    pub config_file: Option<String>,
    /// Server hooks the file defines ([`crate::wsgi::hooks`] calls them).
    pub hooks: Vec<HookDef>,
    /// The config file as an absolute `PATH` (or `python:MODULE`): hooks run it again
    /// after `--chdir`.
    pub config_location: Option<String>,
    /// The working directory the configuration was read in: relative paths in the
    /// arguments (and `python:MODULE`) mean this directory, also when HUP re-reads them.
    pub start_dir: PathBuf,
    /// What each `raw_env` variable was before rustcorn set it (`None`: unset), so a
    /// reload can put the environment back first, as Gunicorn does.
    pub env_orig: Vec<(String, Option<String>)>,
    /// Settings accepted but not acted on, and other non-fatal notes, one line each.
    pub warnings: Vec<String>,
    /// Each set flag's winning values by setting name, whatever the source.
    pub values: BTreeMap<&'static str, Vec<String>>,
    /// Config-file-only settings (dictionaries) by name, as strings.
    pub file_only: BTreeMap<&'static str, Vec<String>>,
}

/// Runs a config file; [`Config::from_args`] passes one that uses the workers' Python.
pub type Evaluator<'a> = &'a dyn Fn(&str) -> Result<FileSettings, ConfigError>;

/// Loads the configuration: see the module docs of [`super`] for the order.
pub fn load(
    args: Vec<OsString>,
    env: &Environment,
    cwd: &Path,
    evaluate: Evaluator<'_>,
) -> Result<Config, ConfigError> {
    let cmd = layers::command();
    let cli_args: Vec<OsString> = args.into_iter().skip(1).collect();
    let cli_matches = layers::parse_layer(&cmd, &cli_args).map_err(layers::clap_error)?;
    if cli_matches.get_flag("version") {
        return Err(ConfigError::Info(format!(
            "rustcorn (version {})\n",
            env!("CARGO_PKG_VERSION")
        )));
    }
    let env_matches = env_layer(&cmd, env)?;
    let location = file::choose(
        cli_matches.get_one::<String>("config").map(String::as_str),
        env_matches.get_one::<String>("config").map(String::as_str),
        cwd,
    );
    let file = match &location {
        Some(location) => Some(read_file(location, cwd, evaluate)?),
        None => None,
    };
    let config_location = location.map(|l| absolute_location(&l, cwd));
    let mut sources = Sources::default();
    let mut layers_parsed = Vec::new();
    if let Some(file) = &file {
        let layer = file.layer();
        layers_parsed.push(file_layer(&cmd, file, &layer)?);
        sources = Sources::from_file(file, &layer);
        sources.config_location = config_location;
    }
    layers_parsed.push((Origin::EnvVar, env_matches));
    layers_parsed.push((Origin::CommandLine, cli_matches));
    let merged = layers::merge(&cmd, &layers_parsed).map_err(layers::clap_error)?;
    let winner = |long: &str| merged.winners.get(long).map(|&i| &layers_parsed[i].0);
    let origin_of = |long: &str| winner(long).and_then(|o| o.describe(long));
    let location_of = |long: &str| winner(long).and_then(|o| o.location(long));
    sources.values = winning_values(&merged.matches);
    let warnings = unsupported(&sources, &location_of, file.as_ref())?;
    sources.warnings.extend(warnings);
    let cli = Cli::from_arg_matches(&merged.matches).map_err(layers::clap_error)?;
    let mut config = Config::from_cli(cli, env).map_err(|e| with_origin(e, &origin_of))?;
    if let Some(headers) = sources.file_dict("secure_scheme_headers") {
        // Gunicorn compares these names upper-cased against the request's headers.
        config.proxy.secure_scheme_headers = headers
            .into_iter()
            .map(|(name, value)| (name.to_ascii_uppercase(), value))
            .collect();
    }
    if let Some(json) = sources
        .file_only
        .get("logconfig_dict")
        .and_then(|v| v.first())
    {
        config.logging.logconfig_dict = Some(json.clone());
    }
    sources.start_dir = cwd.to_path_buf();
    sources.env_orig = config
        .env
        .iter()
        .map(|(key, _)| (key.clone(), std::env::var(key).ok()))
        .collect();
    config.sources = sources;
    Ok(config)
}

/// `PATH` or `file:PATH` made absolute against `cwd`; `python:MODULE` as is.
fn absolute_location(location: &str, cwd: &Path) -> String {
    if location.starts_with("python:") {
        return location.to_string();
    }
    let path = location.strip_prefix("file:").unwrap_or(location);
    cwd.join(path).display().to_string()
}

/// `$GUNICORN_CMD_ARGS`, split like a shell and parsed as a layer.
fn env_layer(cmd: &clap::Command, env: &Environment) -> Result<ArgMatches, ConfigError> {
    let args = match &env.gunicorn_cmd_args {
        Some(text) => split_shell(text).map_err(|reason| ConfigError::Invalid {
            flag: "GUNICORN_CMD_ARGS",
            value: text.clone(),
            reason,
        })?,
        None => Vec::new(),
    };
    layers::parse_layer(cmd, &args).map_err(|e| {
        ConfigError::Parse(format!(
            "{} (in $GUNICORN_CMD_ARGS)",
            super::first_line(&e.to_string())
        ))
    })
}

/// Runs the config file at `location` (a missing path is reported without Python).
fn read_file(
    location: &str,
    cwd: &Path,
    evaluate: Evaluator<'_>,
) -> Result<FileSettings, ConfigError> {
    if !location.starts_with("python:") {
        let path = location.strip_prefix("file:").unwrap_or(location);
        if !cwd.join(path).exists() {
            return Err(ConfigError::File(format!(
                "config file '{path}' doesn't exist"
            )));
        }
    }
    evaluate(location)
}

impl Sources {
    /// A dictionary setting from the config file (`secure_scheme_headers`), as pairs.
    pub fn file_dict(&self, name: &str) -> Option<Vec<(String, String)>> {
        let values = self.file_only.get(name)?;
        Some(
            values
                .chunks(2)
                .map(|kv| (kv[0].clone(), kv.get(1).cloned().unwrap_or_default()))
                .collect(),
        )
    }

    /// What the file contributes besides flag arguments.
    fn from_file(file: &FileSettings, layer: &FileLayer) -> Sources {
        let mut sources = Sources {
            config_file: Some(file.path.clone()),
            hooks: file.hooks.clone(),
            ..Sources::default()
        };
        sources.warnings.extend(file.warnings.iter().cloned());
        sources.warnings.extend(layer.warnings.iter().cloned());
        for value in &layer.file_only {
            if let Some(values) = &value.values {
                sources.file_only.insert(value.name, values.clone());
            }
        }
        sources
    }
}

/// The file's arguments parsed as a layer; a value clap refuses is traced back to the
/// setting and line it came from.
fn file_layer(
    cmd: &clap::Command,
    file: &FileSettings,
    layer: &FileLayer,
) -> Result<Layer, ConfigError> {
    let mut args: Vec<OsString> = layer.args.iter().flat_map(|(_, _, a)| a.clone()).collect();
    if let Some(app) = &layer.app_module {
        args.extend(["--".into(), app.into()]);
    }
    let matches = layers::parse_layer(cmd, &args).map_err(|whole| {
        for (name, line, one) in &layer.args {
            if let Err(e) = layers::parse_layer(cmd, one) {
                return ConfigError::File(format!(
                    "{}:{line}: invalid value for `{name}`: {}",
                    file.path,
                    super::first_line(&e.to_string()).trim_start_matches("error: ")
                ));
            }
        }
        ConfigError::File(format!(
            "{}: {}",
            file.path,
            super::first_line(&whole.to_string())
        ))
    })?;
    let lines = layer
        .args
        .iter()
        .filter_map(|(name, line, _)| {
            let long = settings::lookup(name)?.long()?;
            Some((long.to_string(), (*name, *line)))
        })
        .collect();
    let origin = Origin::File {
        path: file.path.clone(),
        lines,
    };
    Ok((origin, matches))
}

/// For every setting with a flag that some source set: its values as strings.
fn winning_values(matches: &ArgMatches) -> BTreeMap<&'static str, Vec<String>> {
    let cmd = layers::command();
    let mut values = BTreeMap::new();
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        if matches.value_source(id) != Some(ValueSource::CommandLine) {
            continue;
        }
        let Some(setting) = arg.get_long().and_then(settings::by_flag) else {
            continue;
        };
        let raw = matches
            .get_raw(id)
            .map(|vals| vals.map(|v| v.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        values.insert(setting.name, raw);
    }
    values
}

/// Settings rustcorn accepts but does not implement: a warning each, or an error for a
/// refused one set to anything but Gunicorn's default.
fn unsupported(
    sources: &Sources,
    origin_of: &dyn Fn(&str) -> Option<String>,
    file: Option<&FileSettings>,
) -> Result<Vec<String>, ConfigError> {
    let mut warnings = Vec::new();
    for s in SETTINGS {
        let (refused, reason) = match s.status {
            Status::Ignored(reason) => (false, reason),
            Status::Refused(reason) => (true, reason),
            _ => continue,
        };
        let (value, origin) = match (s.long(), sources.values.get(s.name)) {
            (Some(long), Some(v)) => (v.clone(), origin_of(long)),
            (None, _) => match sources.file_only.get(s.name) {
                Some(v) => (
                    v.clone(),
                    file.map(|f| {
                        format!(
                            "`{}` at {}:{}",
                            s.name,
                            f.path,
                            f.line_of(s.name).unwrap_or(0)
                        )
                    }),
                ),
                None => continue,
            },
            _ => continue,
        };
        if super::print::display(s, &value) == s.default {
            continue;
        }
        let what = match (&origin, s.long()) {
            (Some(origin), _) => origin.clone(),
            (None, Some(long)) => format!("--{long}"),
            (None, None) => s.name.to_string(),
        };
        if refused {
            return Err(ConfigError::File(format!(
                "{what}: `{}` is not supported: {reason}",
                s.name
            )));
        }
        warnings.push(format!("{what}: `{}` is ignored: {reason}", s.name));
    }
    Ok(warnings)
}

/// A validation error naming a flag gains where that flag's value came from.
fn with_origin(e: ConfigError, origin_of: &dyn Fn(&str) -> Option<String>) -> ConfigError {
    let flag: &'static str = match &e {
        ConfigError::Invalid { flag, .. } => flag,
        _ => return e,
    };
    match origin_of(flag.trim_start_matches('-')) {
        Some(origin) => ConfigError::From {
            origin,
            inner: Box::new(e),
        },
        None => e,
    }
}

/// The Python the workers embed runs the config file.
pub fn evaluate_with_workers_python(location: &str) -> Result<FileSettings, ConfigError> {
    let env = crate::python::PythonEnv::detect().map_err(|e| ConfigError::File(e.to_string()))?;
    let python = file::python_for(env.venv.as_deref(), env.executable_without_venv());
    FileSettings::evaluate(location, &python)
}

/// The working directory, for `./gunicorn.conf.py`.
pub fn cwd() -> PathBuf {
    std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
}

/// Splits like Python's `shlex.split` (POSIX rules, no comments), as Gunicorn splits
/// `$GUNICORN_CMD_ARGS`.
pub fn split_shell(text: &str) -> Result<Vec<OsString>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if let Some(w) = word.take() {
                    words.push(w.into());
                }
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err("no closing quotation".into()),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('\\' | '"' | '$' | '`')) => w.push(c),
                            Some('\n') => {}
                            Some(c) => w.extend(['\\', c]),
                            None => return Err("no closing quotation".into()),
                        },
                        Some(c) => w.push(c),
                        None => return Err("no closing quotation".into()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => return Err("no escaped character".into()),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word.map(OsString::from));
    Ok(words)
}
