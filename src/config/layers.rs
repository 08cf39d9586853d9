//! Precedence: defaults < config file < `$GUNICORN_CMD_ARGS` < command line.
//!
//! Every source is a list of command-line arguments (the config file's values are
//! turned into `--flag=value` by [`super::file`]), parsed on its own by the one clap
//! [`Command`]. Then, flag by flag, the highest source that gave the flag wins *all* of
//! its values: a list setting such as `--bind` given on the command line replaces the
//! file's list instead of adding to it, as in Gunicorn. The winners are written back
//! out as one argument list and parsed once more, so validation happens in one place
//! ([`super::Config::from_cli`]) whatever the source.
//!
//! This works for any flag in the [`Command`], including ones other modules flatten into
//! [`super::Cli`]: precedence needs no list of settings.

use std::collections::HashMap;
use std::ffi::OsString;

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command, CommandFactory};

use super::settings::{Kind, Status, SETTINGS};
use super::{Cli, ConfigError};

/// Where a layer's arguments came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The config file; `lines` maps a long flag to (setting, line).
    File {
        path: String,
        lines: HashMap<String, (&'static str, u32)>,
    },
    /// `$GUNICORN_CMD_ARGS`.
    EnvVar,
    CommandLine,
}

impl Origin {
    /// Where `long` was set: `gunicorn.conf.py:3` or `$GUNICORN_CMD_ARGS`; `None` for
    /// the command line.
    pub fn location(&self, long: &str) -> Option<String> {
        match self {
            Origin::File { path, lines } => Some(match lines.get(long) {
                Some((_, line)) => format!("{path}:{line}"),
                None => path.clone(),
            }),
            Origin::EnvVar => Some("$GUNICORN_CMD_ARGS".to_string()),
            Origin::CommandLine => None,
        }
    }

    /// Like [`Origin::location`], naming the config-file setting too:
    /// `` `workers` at gunicorn.conf.py:3 ``.
    pub fn describe(&self, long: &str) -> Option<String> {
        let location = self.location(long)?;
        match self {
            Origin::File { lines, .. } => match lines.get(long) {
                Some((name, _)) => Some(format!("`{name}` at {location}")),
                None => Some(location),
            },
            _ => Some(location),
        }
    }
}

/// One source of arguments, parsed.
pub type Layer = (Origin, ArgMatches);

/// The merged result: the winning arguments parsed, and which layer won each flag.
pub struct Merged {
    pub matches: ArgMatches,
    /// Long flag (or positional id) → index of the winning layer.
    pub winners: HashMap<String, usize>,
}

/// rustcorn's whole command line: [`Cli`] plus a flag for every Gunicorn setting
/// rustcorn accepts but does not implement (ignored with a warning, or refused), so
/// a Gunicorn command line never fails on an unknown flag for them.
pub fn command() -> Command {
    let mut cmd = Cli::command();
    for s in SETTINGS {
        if !matches!(s.status, Status::Ignored(_) | Status::Refused(_)) {
            continue;
        }
        let Some(long) = s.long() else { continue };
        let mut arg = Arg::new(s.name).long(long).hide(true).action(match s.kind {
            Kind::Flag | Kind::NegFlag => ArgAction::SetTrue,
            Kind::List => ArgAction::Append,
            _ => ArgAction::Set,
        });
        if let Some(short) = s.short() {
            arg = arg.short(short);
        }
        cmd = cmd.arg(arg);
    }
    cmd
}

/// Parses one layer on its own.
pub fn parse_layer(cmd: &Command, args: &[OsString]) -> Result<ArgMatches, clap::Error> {
    let argv = std::iter::once(OsString::from("rustcorn")).chain(args.iter().cloned());
    cmd.clone().try_get_matches_from(argv)
}

/// Merges parsed layers (lowest precedence first) flag by flag.
pub fn merge(cmd: &Command, layers: &[Layer]) -> Result<Merged, clap::Error> {
    let mut built = cmd.clone();
    built.build();
    let mut args = Vec::new();
    let mut positionals = Vec::new();
    let mut winners = HashMap::new();
    for arg in built.get_arguments() {
        if matches!(
            arg.get_action(),
            ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong | ArgAction::Version
        ) {
            continue;
        }
        let id = arg.get_id().as_str();
        let winner = layers
            .iter()
            .enumerate()
            .rev()
            .find(|(_, (_, m))| m.value_source(id) == Some(ValueSource::CommandLine));
        let Some((index, (_, m))) = winner else {
            continue;
        };
        let key = arg.get_long().unwrap_or(id).to_string();
        winners.insert(key, index);
        let raw: Vec<OsString> = m
            .get_raw(id)
            .map(|vals| vals.map(OsString::from).collect())
            .unwrap_or_default();
        match (arg.get_long(), arg.get_short()) {
            (None, None) => positionals.extend(raw),
            (long, short) => {
                let flag = match long {
                    Some(long) => format!("--{long}"),
                    None => format!("-{}", short.unwrap_or('?')),
                };
                if matches!(
                    arg.get_action(),
                    ArgAction::SetTrue | ArgAction::SetFalse | ArgAction::Count
                ) {
                    args.push(OsString::from(flag));
                } else {
                    for value in raw {
                        let mut a = OsString::from(format!("{flag}="));
                        a.push(value);
                        args.push(a);
                    }
                }
            }
        }
    }
    if !positionals.is_empty() {
        args.push("--".into());
        args.extend(positionals);
    }
    let matches = parse_layer(cmd, &args)?;
    Ok(Merged { matches, winners })
}

/// clap's error as one line, or `Info` for --help.
pub fn clap_error(e: clap::Error) -> ConfigError {
    match e.kind() {
        clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
            ConfigError::Info(e.to_string())
        }
        _ => ConfigError::Parse(super::first_line(&e.to_string())),
    }
}
