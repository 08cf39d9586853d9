//! The control socket's settings (`--control-socket`, `--control-socket-mode`,
//! `--no-control-socket`), with Gunicorn's names, defaults and default path rules, so
//! `gunicornc` and `rustcorn ctl` find a rustcorn master where they find a Gunicorn one.

use std::path::PathBuf;

use clap::{ArgAction, Args};

use super::{invalid, ConfigError};

/// The flags of this area, flattened into [`super::Cli`].
#[derive(Debug, Args)]
pub struct ControlArgs {
    /// The unix socket `rustcorn ctl` and Gunicorn's `gunicornc` connect to, to show
    /// workers, stats and config, add or remove workers, reload or shut down. Default
    /// $XDG_RUNTIME_DIR/gunicorn.ctl when that directory exists, else
    /// $HOME/.gunicorn/gunicorn.ctl (its directory is created, mode 0700). A path that
    /// cannot be created is a warning: the server still starts.
    #[arg(long = "control-socket", value_name = "PATH")]
    pub control_socket: Option<String>,

    /// The permission mode of the control socket: 0600 (the default) lets only its
    /// owner connect, 0660 its group too. Octal with a leading 0 or 0o, hex or decimal.
    #[arg(
        long = "control-socket-mode",
        value_name = "INT",
        default_value = "0o600"
    )]
    pub control_socket_mode: String,

    /// Create no control socket.
    #[arg(long = "no-control-socket", action = ArgAction::SetTrue)]
    pub no_control_socket: bool,
}

/// The validated control-socket settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlConfig {
    /// The path as configured (relative ones are taken from the directory the master
    /// runs in once `--chdir` applied, as Gunicorn takes them).
    pub socket: String,
    /// Permission bits the socket file gets.
    pub mode: u32,
    /// `--no-control-socket`.
    pub disabled: bool,
}

/// Validates the flags of this area.
pub fn resolve(args: &ControlArgs) -> Result<ControlConfig, ConfigError> {
    let mode = super::ops::parse_auto_int(&args.control_socket_mode)
        .map_err(|reason| invalid("--control-socket-mode", &args.control_socket_mode, reason))?;
    if mode > 0o7777 {
        return Err(invalid(
            "--control-socket-mode",
            &args.control_socket_mode,
            format!("a file mode is at most 0o7777 (this is {mode:#o})"),
        ));
    }
    let socket = match args.control_socket.as_deref() {
        Some(path) if path.trim().is_empty() => {
            return Err(invalid(
                "--control-socket",
                path,
                "needs a path (or use --no-control-socket)",
            ))
        }
        Some(path) if path.contains('\0') => {
            return Err(invalid("--control-socket", path, "contains a NUL byte"))
        }
        Some(path) => path.to_string(),
        None => default_socket_path().display().to_string(),
    };
    Ok(ControlConfig {
        socket,
        mode,
        disabled: args.no_control_socket,
    })
}

/// Gunicorn's default: `$XDG_RUNTIME_DIR/gunicorn.ctl` when that variable names a
/// directory, else `~/.gunicorn/gunicorn.ctl` (home from `$HOME`, else the user
/// database). `rustcorn ctl -s` defaults to the same path, so both ends agree.
pub fn default_socket_path() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        if dir.is_dir() {
            return dir.join("gunicorn.ctl");
        }
    }
    home_dir().join(".gunicorn").join("gunicorn.ctl")
}

/// Python's `os.path.expanduser('~')`: `$HOME`, else the user's home from the user
/// database, else `~` itself.
fn home_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(home);
    }
    match nix::unistd::User::from_uid(nix::unistd::getuid()) {
        Ok(Some(user)) => user.dir,
        _ => PathBuf::from("~"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        args: ControlArgs,
    }

    fn parse(args: &[&str]) -> Result<ControlConfig, String> {
        let argv = std::iter::once("x").chain(args.iter().copied());
        resolve(&Wrap::try_parse_from(argv).unwrap().args).map_err(|e| e.to_string())
    }

    #[test]
    fn control_socket_modes_are_read_as_gunicorn_reads_them() {
        assert_eq!(parse(&[]).unwrap().mode, 0o600);
        assert_eq!(
            parse(&["--control-socket-mode", "0660"]).unwrap().mode,
            0o660
        );
        assert_eq!(
            parse(&["--control-socket-mode", "0o640"]).unwrap().mode,
            0o640
        );
        assert_eq!(
            parse(&["--control-socket-mode", "432"]).unwrap().mode,
            0o660
        );
        for bad in ["rw", "-1", "0o99999", ""] {
            let flag = format!("--control-socket-mode={bad}");
            let err = parse(&[&flag]).unwrap_err();
            assert!(err.contains("--control-socket-mode"), "{bad}: {err}");
        }
    }

    #[test]
    fn control_socket_path_is_kept_as_given_and_defaults_by_gunicorns_rule() {
        let got = parse(&["--control-socket", "run/app.ctl"]).unwrap();
        assert_eq!(got.socket, "run/app.ctl");
        assert!(!got.disabled);
        assert!(parse(&["--no-control-socket"]).unwrap().disabled);
        let err = parse(&["--control-socket", " "]).unwrap_err();
        assert!(err.contains("--control-socket"), "{err}");
        let default = parse(&[]).unwrap().socket;
        assert!(default.ends_with("/gunicorn.ctl"), "{default}");
        assert_eq!(default, default_socket_path().display().to_string());
    }
}
