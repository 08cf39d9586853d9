//! PasteDeploy apps, Gunicorn's settings: `--paste FILE[#NAME]` (alias `--paster`)
//! names the app by an INI file's `[app:…]` / `[pipeline:…]` section instead of an
//! APP_MODULE, and `--paste-global KEY=VALUE` (repeatable) passes global variables to
//! it. The loading itself runs in the worker's Python (`paste.deploy.loadapp`, see
//! `wsgi/loader.py`), so PasteDeploy must be installed in the app's environment; the
//! start stops with a line saying so when it is not.

use std::path::{Path, PathBuf};

use clap::{ArgAction, Args};

use super::ConfigError;

/// The command-line flags, Gunicorn's spellings.
#[derive(Debug, Args)]
pub struct PasteArgs {
    /// Load the app from a PasteDeploy config file; `FILE#NAME` picks the app section
    /// NAME (default `main`). The file's `[loggers]` sections, if any, configure logging
    /// as `--log-config` would. Needs PasteDeploy installed with the app.
    #[arg(long = "paste", visible_alias = "paster", value_name = "STRING")]
    pub paste: Option<String>,

    /// A PasteDeploy global variable, `KEY=VALUE` (`\=` for an `=` inside the key or
    /// value); repeatable.
    #[arg(long = "paste-global", value_name = "CONF", action = ArgAction::Append)]
    pub paste_global: Vec<String>,
}

/// The validated settings: which file and section, and the global variables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasteApp {
    /// The config file, absolute (relative ones are read from the directory rustcorn
    /// started in, as Gunicorn resolves them).
    pub file: PathBuf,
    /// `NAME` of `FILE#NAME`, if given.
    pub section: Option<String>,
    pub global_conf: Vec<(String, String)>,
    /// The file has a `[loggers]` section: Gunicorn then uses it as `--log-config`.
    pub has_logging: bool,
}

impl PasteApp {
    /// The URI `paste.deploy.loadapp` takes: `config:/abs/file.ini#name`.
    pub fn config_uri(&self) -> String {
        match &self.section {
            Some(name) => format!("config:{}#{name}", self.file.display()),
            None => format!("config:{}", self.file.display()),
        }
    }
}

/// Validates the flags. `None` without `--paste`; `--paste-global` alone is an error,
/// since nothing would read the variables.
pub fn resolve(args: PasteArgs, cwd: &Path) -> Result<Option<PasteApp>, ConfigError> {
    let Some(spec) = args.paste else {
        if let Some(first) = args.paste_global.first() {
            return Err(invalid(
                "--paste-global",
                first,
                "only read with --paste, which is not given".into(),
            ));
        }
        return Ok(None);
    };
    let global_conf = args
        .paste_global
        .iter()
        .map(|kv| {
            split_global(kv)
                .ok_or_else(|| invalid("--paste-global", kv, "expected KEY=VALUE".into()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (file, section) = match spec.split_once('#') {
        Some((file, name)) => (file, Some(name.to_string()).filter(|n| !n.is_empty())),
        None => (spec.as_str(), None),
    };
    let file = cwd.join(file);
    let text = std::fs::read_to_string(&file).map_err(|e| {
        invalid(
            "--paste",
            &spec,
            format!("cannot read {}: {e}", file.display()),
        )
    })?;
    Ok(Some(PasteApp {
        has_logging: text.lines().any(|l| l.trim() == "[loggers]"),
        file,
        section,
        global_conf,
    }))
}

/// `KEY=VALUE` split at the first `=` not escaped as `\=`; `\=` in either side becomes
/// `=` (Gunicorn's `paste_global_conf`).
fn split_global(kv: &str) -> Option<(String, String)> {
    let bytes = kv.as_bytes();
    let at = (0..bytes.len()).find(|&i| bytes[i] == b'=' && (i == 0 || bytes[i - 1] != b'\\'))?;
    let unescape = |s: &str| s.replace("\\=", "=");
    Some((unescape(&kv[..at]), unescape(&kv[at + 1..])))
}

fn invalid(flag: &'static str, value: &str, reason: String) -> ConfigError {
    ConfigError::Invalid {
        flag,
        value: value.to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(paste: Option<&str>, globals: &[&str]) -> PasteArgs {
        PasteArgs {
            paste: paste.map(str::to_string),
            paste_global: globals.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn ini(text: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.ini"), text).unwrap();
        dir
    }

    #[test]
    fn globals_split_at_the_first_unescaped_equals_sign() {
        assert_eq!(split_global("A=1"), Some(("A".into(), "1".into())));
        assert_eq!(split_global("A=1=2"), Some(("A".into(), "1=2".into())));
        assert_eq!(
            split_global(r"A\=B=x\=y"),
            Some(("A=B".into(), "x=y".into()))
        );
        assert_eq!(split_global("A="), Some(("A".into(), "".into())));
        assert_eq!(split_global(r"A\=B"), None);
        assert_eq!(split_global("AB"), None);
    }

    #[test]
    fn a_relative_file_and_section_become_an_absolute_config_uri() {
        let dir = ini("[app:main]\nuse = egg:x\n");
        let app = resolve(args(Some("app.ini#admin"), &["K=v"]), dir.path())
            .unwrap()
            .unwrap();
        let file = dir.path().join("app.ini");
        assert_eq!(app.config_uri(), format!("config:{}#admin", file.display()));
        assert_eq!(app.global_conf, vec![("K".to_string(), "v".to_string())]);
        assert!(!app.has_logging);
        let plain = resolve(args(Some("app.ini"), &[]), dir.path())
            .unwrap()
            .unwrap();
        assert_eq!(plain.config_uri(), format!("config:{}", file.display()));
    }

    #[test]
    fn a_loggers_section_is_noticed() {
        let dir = ini("[app:main]\nuse = egg:x\n\n[loggers]\nkeys = root\n");
        let app = resolve(args(Some("app.ini"), &[]), dir.path())
            .unwrap()
            .unwrap();
        assert!(app.has_logging);
    }

    #[test]
    fn bad_values_name_the_flag_and_the_problem() {
        let dir = ini("[app:main]\n");
        let missing = resolve(args(Some("nope.ini"), &[]), dir.path()).unwrap_err();
        assert!(
            missing.to_string().contains("--paste") && missing.to_string().contains("nope.ini")
        );
        let bad = resolve(args(Some("app.ini"), &["NOEQUALS"]), dir.path()).unwrap_err();
        assert!(bad.to_string().contains("NOEQUALS") && bad.to_string().contains("KEY=VALUE"));
        let alone = resolve(args(None, &["K=v"]), dir.path()).unwrap_err();
        assert!(alone.to_string().contains("--paste-global"));
        assert_eq!(resolve(args(None, &[]), dir.path()).unwrap(), None);
    }
}
