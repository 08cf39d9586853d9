//! The Python config file (`-c PATH`, `-c python:MODULE`, or `./gunicorn.conf.py`).
//!
//! The file runs in a `python` subprocess of the same virtualenv the workers embed
//! (`config_file.py`), which reports every module-level name that is a setting, already
//! checked against its [`Kind`] and turned into strings, with the line it is assigned
//! on. [`FileSettings::layer`] turns those into command-line arguments for the layers in
//! [`super::layers`].
//!
//! Why a subprocess rather than the embedded interpreter: the master stays free of
//! Python state (so nothing has to be made fork-safe for this), a config file that
//! hangs on import or calls `sys.exit` cannot take the master with it, and the workers
//! still start CPython after fork. The cost is one `python` start (~20 ms) when a file
//! is used. Hooks, which need the live functions, are only recorded here; the
//! interpreter that calls them runs the file again ([`crate::wsgi::hooks`]).

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use clap::{ArgAction, Args};

use super::settings::{self, Kind, SETTINGS};
use super::ConfigError;

/// The flags that choose the config file and what to do with the resolved settings.
#[derive(Debug, Args)]
pub struct ConfigFileArgs {
    /// The Gunicorn config file: PATH, file:PATH or python:MODULE_NAME. Default
    /// ./gunicorn.conf.py when it exists.
    #[arg(short = 'c', long = "config", value_name = "CONFIG")]
    pub config: Option<String>,

    /// Print the resolved settings, check the app loads, and exit.
    #[arg(long = "print-config", action = ArgAction::SetTrue)]
    pub print_config: bool,

    /// Check the configuration and that the app loads, then exit: 0 if it does, 1 if not.
    #[arg(long = "check-config", action = ArgAction::SetTrue)]
    pub check_config: bool,
}

/// The name Gunicorn reads when no `-c` is given.
pub const DEFAULT_FILE: &str = "gunicorn.conf.py";

/// One setting the file assigned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileValue {
    pub name: &'static str,
    /// Where it is assigned (0 when it was not found, e.g. set by `globals()`).
    pub line: u32,
    /// The value as strings; `None` for a Python `None` (the default stays).
    pub values: Option<Vec<String>>,
}

/// A server hook the file defines: which ones exist decides whether the master needs
/// Python ([`crate::wsgi::hooks`] runs the file again to get the functions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookDef {
    pub name: &'static str,
    pub line: u32,
    /// The function's qualified name, or the `module.function` string given.
    pub target: String,
}

/// Everything a config file said.
#[derive(Clone, Debug, Default)]
pub struct FileSettings {
    /// The file as Python resolved it (the module's file for `python:`).
    pub path: String,
    pub values: Vec<FileValue>,
    pub hooks: Vec<HookDef>,
    pub warnings: Vec<String>,
}

impl FileSettings {
    /// Runs `location` with `python` and collects its settings, or the first problem:
    /// a syntax error or exception (file, line, message) or a value of the wrong type
    /// (file, line, setting).
    pub fn evaluate(location: &str, python: &Path) -> Result<FileSettings, ConfigError> {
        let mut child = Command::new(python)
            .arg("-c")
            .arg(include_str!("config_file.py"))
            .arg(location)
            // The file sees rustcorn's command line in sys.argv, as it would Gunicorn's.
            .args(super::command_line())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                file_error(format!(
                    "cannot run {} to read {location}: {e}",
                    python.display()
                ))
            })?;
        let kinds: String = SETTINGS
            .iter()
            .map(|s| format!("{} {:?}\n", s.name, s.kind))
            .collect();
        if let Some(mut stdin) = child.stdin.take() {
            // A config file that never reads stdin must not make us block: the table is
            // small enough for the pipe buffer.
            let _ = stdin.write_all(kinds.as_bytes());
        }
        let out = child
            .wait_with_output()
            .map_err(|e| file_error(format!("reading {location}: {e}")))?;
        if !out.status.success() {
            return Err(file_error(format!(
                "{} failed reading {location} ({})",
                python.display(),
                out.status
            )));
        }
        parse_records(&out.stdout, location)
    }

    /// The settings as command-line arguments (one entry per setting, so a bad value
    /// can be traced to its line), the APP_MODULE from `wsgi_app`, and warnings for
    /// settings this build does not act on.
    pub fn layer(&self) -> FileLayer {
        let mut layer = FileLayer::default();
        for value in &self.values {
            let Some(setting) = settings::lookup(value.name) else {
                continue;
            };
            let Some(values) = &value.values else {
                continue;
            };
            match setting.status {
                _ if setting.kind == Kind::AppModule => {
                    layer.app_module = values.first().cloned();
                }
                _ if setting.name == "config" => {}
                _ => match setting.long() {
                    Some(long) => {
                        let args = flag_args(setting.kind, long, values);
                        layer.args.push((setting.name, value.line, args));
                    }
                    None => layer.file_only.push(value.clone()),
                },
            }
        }
        layer
    }

    /// The line `name` is assigned on, if the file set it.
    pub fn line_of(&self, name: &str) -> Option<u32> {
        self.values
            .iter()
            .find(|v| v.name == name)
            .map(|v| v.line)
            .or_else(|| self.hooks.iter().find(|h| h.name == name).map(|h| h.line))
    }
}

/// A config file turned into arguments.
#[derive(Clone, Debug, Default)]
pub struct FileLayer {
    /// (setting, line, flag arguments).
    pub args: Vec<(&'static str, u32, Vec<OsString>)>,
    pub app_module: Option<String>,
    /// Settings without a flag (dictionaries), by name.
    pub file_only: Vec<FileValue>,
    pub warnings: Vec<String>,
}

/// `--long=value` arguments for one setting's value, by kind.
fn flag_args(kind: Kind, long: &str, values: &[String]) -> Vec<OsString> {
    let flag = || OsString::from(format!("--{long}"));
    let with = |v: &String| OsString::from(format!("--{long}={v}"));
    match kind {
        Kind::Flag => match values.first().map(String::as_str) {
            Some("true") => vec![flag()],
            _ => Vec::new(),
        },
        Kind::NegFlag => match values.first().map(String::as_str) {
            Some("false") => vec![flag()],
            _ => Vec::new(),
        },
        _ => values.iter().map(with).collect(),
    }
}

/// The file to read: `-c` from the command line, else from `$GUNICORN_CMD_ARGS`, else
/// `./gunicorn.conf.py` when it exists (Gunicorn's order).
pub fn choose(cli: Option<&str>, env: Option<&str>, cwd: &Path) -> Option<String> {
    cli.or(env).map(str::to_string).or_else(|| {
        let default = cwd.join(DEFAULT_FILE);
        default.is_file().then(|| default.display().to_string())
    })
}

/// The Python that runs the config file: the virtualenv's, as the workers use.
pub fn python_for(venv: Option<&Path>, build_python: Option<PathBuf>) -> PathBuf {
    match venv {
        Some(venv) => venv.join("bin").join("python"),
        None => build_python.unwrap_or_else(|| PathBuf::from("python3")),
    }
}

fn file_error(message: String) -> ConfigError {
    ConfigError::File(message)
}

fn parse_records(stdout: &[u8], location: &str) -> Result<FileSettings, ConfigError> {
    let text = String::from_utf8_lossy(stdout);
    let mut fields = text.split('\0');
    let mut file = FileSettings {
        path: location.to_string(),
        ..FileSettings::default()
    };
    let mut bad: Option<String> = None;
    let mut next = || fields.next().unwrap_or_default().to_string();
    loop {
        let tag = next();
        match tag.as_str() {
            "" => break,
            "file" => file.path = display_path(&next()),
            "warn" => {
                let message = next();
                file.warnings.push(format!("{}: {message}", file.path));
            }
            "set" | "unset" => {
                let (name, line) = (next(), next().parse().unwrap_or(0));
                let values = (tag == "set").then(|| {
                    let count: usize = next().parse().unwrap_or(0);
                    (0..count).map(|_| next()).collect()
                });
                if let Some(name) = known(&name) {
                    file.values.push(FileValue { name, line, values });
                }
            }
            "hook" => {
                let (name, line, target) = (next(), next().parse().unwrap_or(0), next());
                if let Some(name) = known(&name) {
                    file.hooks.push(HookDef { name, line, target });
                }
            }
            "bad" => {
                let (name, line, message) = (next(), next(), next());
                bad.get_or_insert(format!(
                    "{}:{line}: invalid value for `{name}`: {message}",
                    file.path
                ));
            }
            "fatal" => {
                let (path, line, message, traceback) = (next(), next(), next(), next());
                return Err(ConfigError::File(format!(
                    "failed to read config file {}:{line}: {message}\n{}",
                    display_path(&path),
                    traceback.trim_end()
                )));
            }
            other => return Err(file_error(format!("unexpected record {other:?}"))),
        }
    }
    match bad {
        Some(message) => Err(ConfigError::File(message)),
        None => Ok(file),
    }
}

/// The table's own `&'static` name for a setting the script reported.
fn known(name: &str) -> Option<&'static str> {
    settings::lookup(name).map(|s| s.name)
}

/// Paths under the working directory are shown relative to it, as the user wrote them.
fn display_path(path: &str) -> String {
    let Ok(cwd) = std::env::current_dir() else {
        return path.to_string();
    };
    Path::new(path)
        .strip_prefix(&cwd)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| path.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(fields: &[&str]) -> Vec<u8> {
        fields
            .iter()
            .flat_map(|f| [f.as_bytes(), b"\0"].concat())
            .collect()
    }

    #[test]
    fn records_from_the_script_become_values_hooks_and_errors() {
        let out = records(&[
            "file",
            "/nowhere/conf.py",
            "set",
            "bind",
            "2",
            "2",
            "a:1",
            "b:2",
            "unset",
            "accesslog",
            "3",
            "hook",
            "post_fork",
            "5",
            "post_fork",
            "set",
            "not_a_setting",
            "1",
            "1",
            "x",
        ]);
        let file = parse_records(&out, "conf.py").unwrap();
        assert_eq!(file.path, "/nowhere/conf.py");
        assert_eq!(file.values.len(), 2);
        assert_eq!(
            file.values[0].values,
            Some(vec!["a:1".into(), "b:2".into()])
        );
        assert_eq!(
            (file.values[1].name, file.values[1].values.clone()),
            ("accesslog", None)
        );
        assert_eq!((file.hooks[0].name, file.hooks[0].line), ("post_fork", 5));
        assert_eq!(file.line_of("bind"), Some(2));

        let out = records(&["file", "c.py", "bad", "timeout", "4", "expected an integer"]);
        let e = parse_records(&out, "c.py").unwrap_err().to_string();
        assert!(
            e.contains("c.py:4: invalid value for `timeout`: expected an integer"),
            "{e}"
        );
        let out = records(&["fatal", "c.py", "3", "SyntaxError: bad", "  File ..."]);
        let e = parse_records(&out, "c.py").unwrap_err().to_string();
        assert!(
            e.starts_with("error: failed to read config file c.py:3: SyntaxError: bad"),
            "{e}"
        );
    }

    #[test]
    fn values_become_flag_arguments_by_kind() {
        let v = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let args = |kind, values: &[&str]| flag_args(kind, "x", &v(values));
        assert_eq!(args(Kind::Int, &["3"]), ["--x=3"]);
        assert_eq!(args(Kind::List, &["a", "-b"]), ["--x=a", "--x=-b"]);
        assert_eq!(args(Kind::Flag, &["true"]), ["--x"]);
        assert!(args(Kind::Flag, &["false"]).is_empty());
        assert_eq!(args(Kind::NegFlag, &["false"]), ["--x"]);
        assert!(args(Kind::NegFlag, &["true"]).is_empty());
    }

    #[test]
    fn the_file_is_chosen_as_gunicorn_chooses_it() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(choose(None, None, dir.path()), None);
        std::fs::write(dir.path().join(DEFAULT_FILE), "").unwrap();
        let default = dir.path().join(DEFAULT_FILE).display().to_string();
        assert_eq!(choose(None, None, dir.path()), Some(default));
        assert_eq!(
            choose(None, Some("e.py"), dir.path()).as_deref(),
            Some("e.py")
        );
        assert_eq!(
            choose(Some("c.py"), Some("e.py"), dir.path()).as_deref(),
            Some("c.py")
        );
    }
}
