//! Development reload, Gunicorn's settings: `--reload` restarts workers when the code
//! they imported changes, `--reload-engine` says how changes are noticed, and
//! `--reload-extra-file` (repeatable, globs allowed) adds files to watch. The watching
//! itself is the worker's ([`crate::worker::reloader`]).

use std::path::{Path, PathBuf};

use clap::{ArgAction, Args};

use super::ConfigError;

/// The command-line flags, Gunicorn's spellings and defaults.
#[derive(Debug, Args)]
pub struct ReloadArgs {
    /// Restart workers when code changes (development only): a worker exits gracefully
    /// when a file of a module it imported, or an extra file, changes, and the master
    /// starts a fresh one that imports the code again.
    #[arg(long = "reload", action = ArgAction::SetTrue)]
    pub reload: bool,

    /// How `--reload` notices changes: `inotify`, `poll` (stat every second) or `auto`
    /// (inotify when the kernel offers it, else poll).
    #[arg(long = "reload-engine", value_name = "STRING", default_value = "auto")]
    pub reload_engine: String,

    /// Another file (templates, configuration) whose change reloads the workers;
    /// repeatable. Entries with `*`, `?` or `[` are glob patterns (`**` recurses),
    /// expanded again on every check so files created later are watched too.
    #[arg(long = "reload-extra-file", value_name = "FILES", action = ArgAction::Append)]
    pub reload_extra_files: Vec<String>,
}

/// How changes are noticed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// inotify when available, else polling.
    Auto,
    /// inotify watches on the directories of the watched files.
    Inotify,
    /// `stat` every watched file once a second and compare modification times.
    Poll,
}

/// The validated settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReloadConfig {
    pub enabled: bool,
    pub engine: Engine,
    /// Extra files, absolute (relative ones are resolved against the directory rustcorn
    /// started in, before `--chdir`, as Gunicorn does).
    pub extra_files: Vec<PathBuf>,
    /// Glob patterns, absolute likewise; expanded by the worker on every check.
    pub extra_patterns: Vec<String>,
}

impl Default for ReloadConfig {
    fn default() -> Self {
        ReloadConfig {
            enabled: false,
            engine: Engine::Auto,
            extra_files: Vec::new(),
            extra_patterns: Vec::new(),
        }
    }
}

/// Validates the flags: a known engine, and every literal extra file present
/// (Gunicorn refuses a missing one; a pattern may match nothing yet).
pub fn resolve(args: &ReloadArgs, cwd: &Path) -> Result<ReloadConfig, ConfigError> {
    let engine = match args.reload_engine.as_str() {
        "auto" => Engine::Auto,
        "inotify" => Engine::Inotify,
        "poll" => Engine::Poll,
        other => {
            return Err(ConfigError::Invalid {
                flag: "--reload-engine",
                value: other.to_string(),
                reason: "expected one of: auto, inotify, poll".to_string(),
            })
        }
    };
    let mut config = ReloadConfig {
        enabled: args.reload,
        engine,
        ..ReloadConfig::default()
    };
    for entry in &args.reload_extra_files {
        let absolute = cwd.join(entry);
        if is_glob_pattern(entry) {
            config
                .extra_patterns
                .push(absolute.to_string_lossy().into_owned());
        } else if absolute.exists() {
            config.extra_files.push(absolute);
        } else {
            return Err(ConfigError::Invalid {
                flag: "--reload-extra-file",
                value: entry.clone(),
                reason: "file does not exist (patterns with *, ? or [ may match nothing)"
                    .to_string(),
            });
        }
    }
    Ok(config)
}

/// Gunicorn's test: `*`, `?` or `[` anywhere makes an entry a pattern.
fn is_glob_pattern(entry: &str) -> bool {
    entry.contains(['*', '?', '['])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(engine: &str, extra: &[&str]) -> ReloadArgs {
        ReloadArgs {
            reload: true,
            reload_engine: engine.to_string(),
            reload_extra_files: extra.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn engines_are_gunicorns_three() {
        let cwd = Path::new("/");
        for (name, engine) in [
            ("auto", Engine::Auto),
            ("inotify", Engine::Inotify),
            ("poll", Engine::Poll),
        ] {
            assert_eq!(resolve(&args(name, &[]), cwd).unwrap().engine, engine);
        }
        let e = resolve(&args("fsevents", &[]), cwd)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--reload-engine") && e.contains("fsevents"),
            "{e}"
        );
    }

    #[test]
    fn extra_files_must_exist_unless_they_are_patterns() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let c = resolve(&args("auto", &["Cargo.toml", "tests/apps/*.py"]), dir).unwrap();
        assert_eq!(c.extra_files, vec![dir.join("Cargo.toml")]);
        assert_eq!(
            c.extra_patterns,
            vec![dir.join("tests/apps/*.py").display().to_string()]
        );
        let c = resolve(&args("auto", &["/nowhere/[ab].txt"]), dir).unwrap();
        assert_eq!(c.extra_patterns, vec!["/nowhere/[ab].txt".to_string()]);
        let e = resolve(&args("auto", &["no-such-file.txt"]), dir)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--reload-extra-file") && e.contains("no-such-file.txt"),
            "{e}"
        );
    }
}
