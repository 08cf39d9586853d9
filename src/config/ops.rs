//! Operating the server the way Gunicorn is operated: worker recycling
//! (`--max-requests`), daemon mode and pid file, the user and group workers run as,
//! the umask for unix sockets, `--reuse-port`. Flag spellings and defaults are
//! Gunicorn's (`gunicorn/config.py`).

use std::path::PathBuf;

use clap::{ArgAction, Args};
use nix::unistd::{Gid, Group, Uid, User};

use super::{invalid, ConfigError};

/// The flags of this area, flattened into [`super::Cli`].
#[derive(Debug, Args)]
pub struct OpsArgs {
    /// The maximum number of requests a worker will process before restarting; 0 (the
    /// default) disables restarts. A simple way to limit the damage of memory leaks.
    #[arg(long = "max-requests", value_name = "INT", default_value_t = 0)]
    pub max_requests: u64,

    /// The maximum jitter to add to --max-requests: each worker restarts after
    /// max_requests + randint(0, max_requests_jitter) requests, so they do not all
    /// restart at once.
    #[arg(long = "max-requests-jitter", value_name = "INT", default_value_t = 0)]
    pub max_requests_jitter: u64,

    /// Daemonize: detach from the controlling terminal and run in the background
    /// (after the sockets are bound, so bind errors still reach the terminal).
    #[arg(short = 'D', long = "daemon", action = ArgAction::SetTrue)]
    pub daemon: bool,

    /// A filename to use for the PID file. If not set, no PID file is written.
    #[arg(short = 'p', long = "pid", value_name = "FILE")]
    pub pid: Option<String>,

    /// Switch worker processes to run as this user: a user id or a user name.
    #[arg(short = 'u', long = "user", value_name = "USER")]
    pub user: Option<String>,

    /// Switch worker processes to run as this group: a group id or a group name.
    #[arg(short = 'g', long = "group", value_name = "GROUP")]
    pub group: Option<String>,

    /// A bit mask for the file mode of files written by rustcorn (unix sockets): `0`,
    /// `0o22`, `0022` (octal, as Gunicorn reads a leading 0), `0x12` or decimal `18`.
    #[arg(short = 'm', long = "umask", value_name = "INT", default_value = "0")]
    pub umask: String,

    /// Set the worker's group access list to all the groups the --user is a member
    /// of, plus --group.
    #[arg(long = "initgroups", action = ArgAction::SetTrue)]
    pub initgroups: bool,

    /// Accepted for compatibility with Gunicorn, whose heartbeat is a file in this
    /// directory. rustcorn's heartbeat is shared memory, so nothing is written here;
    /// the directory must exist.
    #[arg(long = "worker-tmp-dir", value_name = "DIR")]
    pub worker_tmp_dir: Option<PathBuf>,

    /// Set the SO_REUSEPORT flag on TCP listening sockets, so other processes (another
    /// rustcorn during a migration) can bind the same address.
    #[arg(long = "reuse-port", action = ArgAction::SetTrue)]
    pub reuse_port: bool,
}

/// The validated settings of this area.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ops {
    /// Requests before a worker restarts; 0 means never.
    pub max_requests: u64,
    pub max_requests_jitter: u64,
    pub daemon: bool,
    pub pidfile: Option<PathBuf>,
    /// The uid workers switch to; `None` keeps the master's.
    pub uid: Option<u32>,
    /// The gid workers switch to; `None` keeps the master's.
    pub gid: Option<u32>,
    pub umask: u32,
    pub initgroups: bool,
    pub worker_tmp_dir: Option<PathBuf>,
    pub reuse_port: bool,
}

impl Ops {
    /// Who log files are given to so workers can reopen them: Gunicorn chowns them to
    /// `cfg.user`:`cfg.group` (defaulting to the effective ids); rustcorn only does when
    /// `--user` or `--group` is set, which is when it changes anything.
    pub fn log_owner(&self) -> Option<(u32, u32)> {
        (self.uid.is_some() || self.gid.is_some()).then(|| {
            (
                self.uid.unwrap_or_else(|| Uid::effective().as_raw()),
                self.gid.unwrap_or_else(|| Gid::effective().as_raw()),
            )
        })
    }
}

/// Validates the flags of this area.
pub fn resolve(args: &OpsArgs) -> Result<Ops, ConfigError> {
    let umask =
        parse_umask(&args.umask).map_err(|reason| invalid("--umask", &args.umask, reason))?;
    if let Some(dir) = &args.worker_tmp_dir {
        if !dir.is_dir() {
            return Err(invalid(
                "--worker-tmp-dir",
                &dir.display().to_string(),
                "not a directory",
            ));
        }
    }
    let pidfile = match args.pid.as_deref().map(str::trim) {
        Some("") => return Err(invalid("--pid", "", "needs a file name")),
        Some(p) => Some(PathBuf::from(p)),
        None => None,
    };
    Ok(Ops {
        max_requests: args.max_requests,
        max_requests_jitter: args.max_requests_jitter,
        daemon: args.daemon,
        pidfile,
        uid: args.user.as_deref().map(resolve_user).transpose()?,
        gid: args.group.as_deref().map(resolve_group).transpose()?,
        umask,
        initgroups: args.initgroups,
        worker_tmp_dir: args.worker_tmp_dir.clone(),
        reuse_port: args.reuse_port,
    })
}

/// A user id, or a name looked up in the user database (Gunicorn's `validate_user`).
fn resolve_user(value: &str) -> Result<u32, ConfigError> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value
            .parse()
            .map_err(|_| invalid("--user", value, "user id out of range"));
    }
    match User::from_name(value) {
        Ok(Some(user)) => Ok(user.uid.as_raw()),
        Ok(None) => Err(invalid("--user", value, "no such user")),
        Err(e) => Err(invalid("--user", value, format!("cannot look it up: {e}"))),
    }
}

/// A group id, or a name looked up in the group database (Gunicorn's `validate_group`).
fn resolve_group(value: &str) -> Result<u32, ConfigError> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value
            .parse()
            .map_err(|_| invalid("--group", value, "group id out of range"));
    }
    match Group::from_name(value) {
        Ok(Some(group)) => Ok(group.gid.as_raw()),
        Ok(None) => Err(invalid("--group", value, "no such group")),
        Err(e) => Err(invalid("--group", value, format!("cannot look it up: {e}"))),
    }
}

/// `--umask`: Gunicorn's `auto_int` (see [`parse_auto_int`]), permission bits only.
pub fn parse_umask(text: &str) -> Result<u32, String> {
    let value = parse_auto_int(text)?;
    if value > 0o777 {
        return Err(format!(
            "a umask holds permission bits only, at most 0o777 (this is {value:#o})"
        ));
    }
    Ok(value)
}

/// Gunicorn's `auto_int`: a leading `0` followed by a digit means octal (`0022`), and
/// otherwise Python's `int(x, 0)`: `0o`, `0x`, `0b` prefixes or plain decimal.
pub fn parse_auto_int(text: &str) -> Result<u32, String> {
    let t = text.trim();
    let t = t.strip_prefix('+').unwrap_or(t);
    let lower = t.to_ascii_lowercase();
    let (digits, radix) = if let Some(rest) = lower.strip_prefix("0o") {
        (rest, 8)
    } else if let Some(rest) = lower.strip_prefix("0x") {
        (rest, 16)
    } else if let Some(rest) = lower.strip_prefix("0b") {
        (rest, 2)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (&lower[1..], 8)
    } else {
        (lower.as_str(), 10)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err("not an integer: write it in octal (0o22 or 0022), hex or decimal".into());
    }
    u32::from_str_radix(digits, radix).map_err(|_| "too large".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn umask_is_read_as_gunicorn_reads_it() {
        let cases: &[(&str, Result<u32, ()>)] = &[
            ("0", Ok(0)),
            ("00", Ok(0)),
            ("0022", Ok(0o22)),
            ("022", Ok(0o22)),
            ("0o27", Ok(0o27)),
            ("0O27", Ok(0o27)),
            ("0x12", Ok(0o22)),
            ("18", Ok(0o22)),
            ("0b111", Ok(7)),
            (" 077 ", Ok(0o77)),
            ("08", Err(())),
            ("0o8", Err(())),
            ("abc", Err(())),
            ("", Err(())),
            ("-1", Err(())),
            ("0o1000", Err(())),
            ("512", Err(())),
        ];
        for (text, want) in cases {
            assert_eq!(parse_umask(text).map_err(|_| ()), *want, "{text:?}");
        }
    }

    #[test]
    fn users_and_groups_by_name_or_number() {
        assert_eq!(resolve_user("0").unwrap(), 0);
        assert_eq!(resolve_user("root").unwrap(), 0);
        assert_eq!(resolve_user("12345").unwrap(), 12345);
        assert_eq!(resolve_group("0").unwrap(), 0);
        assert_eq!(resolve_group("root").unwrap(), 0);
        for bad in ["no-such-user-here", "99999999999"] {
            let err = resolve_user(bad).unwrap_err().to_string();
            assert!(err.contains("'--user'") && err.contains(bad), "{err}");
            let err = resolve_group(bad).unwrap_err().to_string();
            assert!(err.contains("'--group'") && err.contains(bad), "{err}");
        }
    }
}
