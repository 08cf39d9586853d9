//! What the master does between binding its sockets and forking workers when it is
//! operated like Gunicorn: `-D/--daemon` (detach), `-p/--pid` (pid file), log files
//! handed to `--user`; and the signals that go with them: USR1 (reopen logs) and
//! WINCH (stop the workers of a daemon).
//!
//! Unlike Gunicorn, which daemonizes before binding, rustcorn detaches after binding:
//! a bad address, a port in use or a live pid file is reported on the terminal that
//! ran the command, with a non-zero exit status. The command returns once the daemon
//! has written its pid file.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;

use nix::sys::signal::Signal;
use nix::sys::stat::{umask, Mode};

use super::pidfile::{Pidfile, PidfileError};
use super::Arbiter;
use crate::config::Config;
use crate::sys::{self, Forked};

/// Runs right after the listeners are bound, in the process that will be the master:
/// detaches if asked, readies the log files for the workers' user, writes the pid
/// file. A master started by USR2 (`reexec_child`) is already detached if its parent
/// was, and writes `PIDFILE.2` until it is promoted, as Gunicorn's does. Errors are
/// for the caller to report before exiting.
pub(super) fn after_bind(config: &Config, reexec_child: bool) -> Result<Option<Pidfile>, String> {
    let ops = &config.ops;
    let pid_path = ops.pidfile.as_ref().map(|path| {
        if reexec_child {
            second_pid_path(path)
        } else {
            path.clone()
        }
    });
    if let Some(path) = &pid_path {
        // Refuse a live pid file while the terminal still listens.
        Pidfile::check(path).map_err(|e| e.to_string())?;
    }
    crate::log::reopen::prepare_files(config.access_logfile.as_deref(), ops.log_owner())
        .map_err(|e| format!("Cannot open log file: {e}"))?;
    let ready = if ops.daemon && !reexec_child {
        if std::env::var_os("NOTIFY_SOCKET").is_some() {
            // Gunicorn's warning: systemd would lose track of a forking daemon.
            eprintln!(
                "Warning: you shouldn't specify `daemon = True` when launching by systemd \
                 with `Type = notify`"
            );
        }
        Some(daemonize(config).map_err(|e| format!("Cannot daemonize: {e}"))?)
    } else {
        None
    };
    let pidfile = match &pid_path {
        Some(path) => Some(
            Pidfile::create(path, nix::unistd::getpid())
                .map_err(|e: PidfileError| e.to_string())?,
        ),
        None => None,
    };
    if let Some(ready) = ready {
        // The command that started us may return now.
        let _ = File::from(ready).write_all(b"1");
    }
    Ok(pidfile)
}

/// `PIDFILE.2`: where a USR2 child writes its pid until the old master is gone.
pub(super) fn second_pid_path(path: &std::path::Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".2");
    name.into()
}

/// The classic double fork: the command's process waits for the daemon to say it is
/// ready (or to die) and exits; the session leader in between exits at once; the
/// grandchild, in a new session without a terminal, becomes the master. Returns the
/// pipe end the daemon writes to when it is ready.
///
/// stdin, stdout and stderr become /dev/null, as Gunicorn's do, unless
/// `-R/--enable-stdio-inheritance` keeps stdout and stderr: a caller that captured
/// them through pipes (`$(rustcorn -D …)`, `ssh host 'rustcorn -D …'`) must see them
/// close when the command returns, not when the daemon exits.
fn daemonize(config: &Config) -> std::io::Result<OwnedFd> {
    let (wait_end, ready_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    if let Forked::Parent(_) = sys::fork()? {
        drop(ready_end);
        sys::exit_now(wait_for_daemon(wait_end));
    }
    drop(wait_end);
    nix::unistd::setsid()?;
    if let Forked::Parent(_) = sys::fork()? {
        sys::exit_now(0);
    }
    umask(Mode::from_bits_truncate(0o022));
    let null = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    nix::unistd::dup2_stdin(&null)?;
    if !config.logging.enable_stdio_inheritance {
        nix::unistd::dup2_stdout(&null)?;
        nix::unistd::dup2_stderr(&null)?;
    }
    Ok(ready_end)
}

/// In the command's process: 0 once the daemon reports ready, 1 if it died first.
fn wait_for_daemon(wait_end: OwnedFd) -> i32 {
    let mut byte = [0u8; 1];
    match File::from(wait_end).read(&mut byte) {
        Ok(1) => 0,
        _ => 1,
    }
}

impl Arbiter {
    /// USR1: reopen the master's log files, then ask every worker to reopen its own.
    pub(super) fn reopen_logs(&mut self) {
        self.reopen_master_logs();
        self.signal_all(Signal::SIGUSR1);
    }

    /// Reopens the master's log files by path (recreated and given to the workers'
    /// user); workers forked afterwards start with the new files. Also done on HUP,
    /// as Gunicorn's reload does.
    pub(super) fn reopen_master_logs(&mut self) {
        crate::log::reopen_log_files();
        let owner = self.config.ops.log_owner();
        if let Err(e) =
            crate::log::reopen::prepare_files(self.config.access_logfile.as_deref(), owner)
        {
            tracing::error!("Cannot reopen log files: {e}");
        }
    }

    /// WINCH: a daemon's workers stop gracefully and are not replaced (TTIN brings
    /// them back); without a terminal to resize, WINCH can only mean that. Ignored
    /// when not daemonized, as in Gunicorn.
    pub(super) fn winch(&mut self) {
        if self.config.ops.daemon {
            tracing::info!("graceful stop of workers");
            self.num_workers = 0;
            self.manage_workers();
        } else {
            tracing::debug!("SIGWINCH ignored. Not daemonized");
        }
    }
}
