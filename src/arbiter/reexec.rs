//! USR2: the master re-executes its binary as a child, handing it the listening
//! sockets (fds left open across exec, listed in `$RUSTCORN_FD` and Gunicorn's
//! `$GUNICORN_FD`, or `$LISTEN_FDS` when systemd gave them). Old and new masters serve
//! side by side until the operator stops the old one (TERM); the new master sees its
//! parent gone and is promoted. A new binary installed at the same path is the one
//! that runs, so USR2 upgrades rustcorn itself as well as the app.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::sync::OnceLock;

use nix::unistd::Pid;

use super::inherit::{self, Origin};
use super::Arbiter;
use crate::sys::{self, ExecRequest};
use crate::systemd;

/// The variables that tell a new master which master started it (Gunicorn reads
/// `GUNICORN_PID`).
const PID_VARS: [&str; 2] = ["RUSTCORN_PID", "GUNICORN_PID"];

/// Variables a new master must get fresh from its parent, never from the start
/// environment.
const HANDOVER_VARS: [&str; 7] = [
    "RUSTCORN_PID",
    "GUNICORN_PID",
    "RUSTCORN_FD",
    "GUNICORN_FD",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
];

/// How the process was started, recorded before `--chdir` and `--env` change it.
struct StartContext {
    /// The program's path (so a new binary, or a new Python, installed there is the
    /// one re-executed).
    exe: Option<PathBuf>,
    args: Vec<OsString>,
    cwd: PathBuf,
    env: Vec<(OsString, OsString)>,
}

static START: OnceLock<StartContext> = OnceLock::new();

/// Records the binary, arguments, working directory and environment the process
/// started with; `serve` calls it first, before anything changes them.
pub fn record_start() {
    let _ = START.get_or_init(capture);
}

/// Records, in place of this process's own executable and arguments, the command line
/// USR2 must run again: under the wheel, the user's `python` with the `rustcorn`
/// script (or `-m rustcorn`) and its arguments — `sys.executable` and
/// `sys.orig_argv` — so the new master runs in the same interpreter and virtualenv.
pub fn record_start_as(exe: PathBuf, args: Vec<OsString>) {
    let _ = START.get_or_init(|| StartContext {
        exe: Some(exe),
        args,
        ..capture()
    });
}

fn capture() -> StartContext {
    StartContext {
        exe: std::fs::read_link("/proc/self/exe").ok(),
        args: std::env::args_os().collect(),
        cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
        env: std::env::vars_os().collect(),
    }
}

/// This master's place in a USR2 handover.
#[derive(Debug, Default)]
pub struct Lineage {
    /// The new master this one re-executed, while it runs.
    pub child: Option<Pid>,
    /// The master that re-executed this one, until it exits (then this one is promoted).
    pub parent: Option<Pid>,
}

impl Lineage {
    /// Reads the parent master's pid from `$RUSTCORN_PID` or `$GUNICORN_PID`.
    pub fn from_env() -> Lineage {
        let parent = PID_VARS
            .iter()
            .find_map(|v| std::env::var(v).ok())
            .and_then(|v| v.trim().parse::<i32>().ok())
            .filter(|&p| p > 1)
            .map(Pid::from_raw);
        Lineage {
            child: None,
            parent,
        }
    }
}

impl Arbiter {
    /// USR2: start a new master from the current binary with the same arguments,
    /// working directory and start environment, handing it the listeners.
    pub(super) fn reexec(&mut self) {
        if self.lineage.child.is_some() {
            tracing::warn!("USR2 signal ignored. Child exists.");
            return;
        }
        if self.lineage.parent.is_some() {
            tracing::warn!("USR2 signal ignored. Parent exists.");
            return;
        }
        let request = match self.exec_request() {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("Cannot re-execute the master: {e}");
                return;
            }
        };
        self.hook_pre_exec();
        match sys::fork_exec(&request) {
            Ok(pid) => {
                tracing::debug!("Re-executed master: pid {pid}");
                self.lineage.child = Some(pid);
            }
            Err(e) => tracing::error!("Cannot fork to re-execute the master: {e}"),
        }
    }

    fn exec_request(&self) -> Result<ExecRequest, String> {
        let start = START.get_or_init(capture);
        let program = match &start.exe {
            Some(path) if path.exists() => path.clone(),
            _ => PathBuf::from("/proc/self/exe"),
        };
        let fds: Vec<_> = self.listeners.iter().map(inherit::raw_fd).collect();
        let (env, listen_pid) = self.handover_env(start, &fds);
        let c = |bytes: Vec<u8>, what: &str| {
            CString::new(bytes).map_err(|_| format!("NUL byte in the {what}"))
        };
        Ok(ExecRequest {
            program: c(program.into_os_string().into_vec(), "binary path")?,
            argv: start
                .args
                .iter()
                .map(|a| c(a.as_bytes().to_vec(), "arguments"))
                .collect::<Result<_, _>>()?,
            env: env
                .into_iter()
                .map(|(k, v)| {
                    let mut kv = k.into_vec();
                    kv.push(b'=');
                    kv.extend(v.into_vec());
                    c(kv, "environment")
                })
                .collect::<Result<_, _>>()?,
            cwd: c(start.cwd.as_os_str().as_bytes().to_vec(), "start directory")?,
            inherit: fds,
            listen_pid,
        })
    }

    /// The start environment, with this master's pid and the listening `fds` in the
    /// variables a new master reads; and whether `LISTEN_PID` must be added (systemd's
    /// variables, used when systemd gave the sockets and they are still at 3, 4, …).
    fn handover_env(&self, start: &StartContext, fds: &[i32]) -> (Vec<(OsString, OsString)>, bool) {
        let mut env: Vec<(OsString, OsString)> = start
            .env
            .iter()
            .filter(|(k, _)| !HANDOVER_VARS.iter().any(|v| k.as_bytes() == v.as_bytes()))
            .cloned()
            .collect();
        let me = self.pid.to_string();
        env.extend(PID_VARS.iter().map(|v| (v.into(), me.clone().into())));
        let contiguous = fds
            .iter()
            .enumerate()
            .all(|(i, &fd)| fd == systemd::LISTEN_FDS_START + i as i32);
        let listen_pid = self.origin == Origin::Systemd && contiguous;
        if listen_pid {
            env.push(("LISTEN_FDS".into(), fds.len().to_string().into()));
        } else {
            let list = fds.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
            env.extend(
                inherit::FD_VARS
                    .iter()
                    .map(|v| (v.into(), list.clone().into())),
            );
        }
        (env, listen_pid)
    }

    /// A new master whose parent master has exited serves alone now.
    pub(super) fn maybe_promote(&mut self) {
        let Some(parent) = self.lineage.parent else {
            return;
        };
        if nix::unistd::getppid() != parent {
            tracing::info!("Master has been promoted.");
            self.lineage.parent = None;
            super::set_master_title(&self.config, false);
            if let (Some(pidfile), Some(path)) = (&mut self.pidfile, &self.config.ops.pidfile) {
                if let Err(e) = pidfile.rename(path) {
                    tracing::error!("Cannot move the pid file to {}: {e}", path.display());
                }
            }
            for var in PID_VARS {
                crate::python::environ::remove_var(var);
            }
        }
    }

    /// Whether `pid` was the re-executed master (now gone: USR2 works again).
    pub(super) fn reexec_child_exited(&mut self, pid: Pid, cause: &super::reap::ExitCause) -> bool {
        if self.lineage.child != Some(pid) {
            return false;
        }
        self.lineage.child = None;
        tracing::info!("Re-executed master (pid:{pid}) {cause}");
        true
    }

    /// `Master`, or `Master.2` for a new master not yet promoted (Gunicorn's names).
    pub(super) fn master_name(&self) -> &'static str {
        if self.lineage.parent.is_some() {
            "Master.2"
        } else {
            "Master"
        }
    }

    /// Whether this master removes its unix socket files when it stops: not while
    /// another master serves on them, and never systemd's.
    pub(super) fn owns_socket_files(&self) -> bool {
        self.lineage.child.is_none()
            && self.lineage.parent.is_none()
            && self.origin != Origin::Systemd
    }
}
