//! Reaping workers and deciding what each death means.

use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::{Arbiter, Phase};
use crate::worker::{APP_LOAD_ERROR, WORKER_BOOT_ERROR};

impl Arbiter {
    /// Collects every exited worker. A boot or app-load failure stops the server with
    /// that status (never a respawn storm); any other death is logged with its cause and
    /// the worker is replaced by `manage_workers`.
    pub(super) fn reap(&mut self) {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => self.on_exit(pid, ExitCause::Code(code)),
                Ok(WaitStatus::Signaled(pid, sig, _)) => self.on_exit(pid, ExitCause::Signal(sig)),
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }

    fn on_exit(&mut self, pid: Pid, cause: ExitCause) {
        if self.reexec_child_exited(pid, &cause) {
            return;
        }
        let known = self.forget(pid);
        let stopping = matches!(self.phase, Phase::Stopping { .. });
        match cause {
            ExitCause::Code(0) => {}
            ExitCause::Code(code @ (WORKER_BOOT_ERROR | APP_LOAD_ERROR)) => {
                tracing::error!("Worker (pid:{pid}) exited with code {code}.");
                if self.exit_code.is_none() {
                    self.exit_code = Some(code);
                }
                if !stopping {
                    self.stop(false);
                }
            }
            ExitCause::Code(code) => tracing::error!("Worker (pid:{pid}) exited with code {code}."),
            // Gunicorn's levels: SIGKILL suggests the OOM killer, SIGTERM is expected,
            // anything else (a crash: SIGSEGV, SIGBUS…) is a warning.
            ExitCause::Signal(Signal::SIGKILL) if !stopping => {
                tracing::error!("Worker (pid:{pid}) was sent SIGKILL! Perhaps out of memory?")
            }
            ExitCause::Signal(Signal::SIGTERM) => {
                tracing::info!("Worker (pid:{pid}) was sent SIGTERM!")
            }
            ExitCause::Signal(sig) if !stopping || sig != Signal::SIGKILL => {
                tracing::warn!("Worker (pid:{pid}) was sent {}!", sig.as_str())
            }
            ExitCause::Signal(_) => {}
        }
        self.hook_child_exit(pid);
        if !known {
            tracing::debug!("Reaped a process that was not a current worker: {pid}");
        }
    }
}

pub(super) enum ExitCause {
    Code(i32),
    Signal(Signal),
}

impl std::fmt::Display for ExitCause {
    /// `exited with code N` / `was sent SIGKILL`, as the worker lines say it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitCause::Code(code) => write!(f, "exited with code {code}"),
            ExitCause::Signal(sig) => write!(f, "was sent {}", sig.as_str()),
        }
    }
}
