//! Telling the service manager (sd_notify) what the master is doing: `READY=1` once
//! every worker of the first generation has loaded the app and serves (each sets its
//! "booted" flag in the heartbeat table), `RELOADING=1` on HUP and `READY=1` again
//! when the new generation serves, `STOPPING=1` on stop. On a stop while a USR2 child
//! runs, the old master names that child the service's main process (`MAINPID=`)
//! instead, so systemd keeps the service when the old master exits. A new master
//! stays silent until promoted: its parent still speaks for the service.

use super::{Arbiter, Phase};
use crate::systemd;

/// What the master last told the service manager, and what it waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Waiting for the first generation of workers to boot.
    Starting,
    /// Waiting for the workers spawned from spawn number `first_age` on (HUP).
    Reloading {
        first_age: u64,
    },
    Ready,
}

impl Arbiter {
    /// How long the loop sleeps: briefly while a generation boots, so `READY=1`
    /// follows the last worker's boot closely.
    pub(super) fn tick(&self) -> std::time::Duration {
        match self.readiness {
            Readiness::Ready => std::time::Duration::from_secs(1),
            _ => std::time::Duration::from_millis(100),
        }
    }

    /// Sends `READY=1` once the generation being waited for serves.
    pub(super) fn check_ready(&mut self) {
        let first_age = match self.readiness {
            Readiness::Ready => return,
            Readiness::Starting => 0,
            Readiness::Reloading { first_age } => first_age,
        };
        let booted = self
            .serving()
            .filter(|(_, w)| w.age >= first_age && self.heartbeats.is_booted(w.heartbeat))
            .count();
        if self.phase == Phase::Running && booted as u32 >= self.num_workers {
            self.readiness = Readiness::Ready;
            let status = format!("STATUS=rustcorn: {booted} workers serving");
            self.notify(&format!("READY=1\n{status}"));
        }
    }

    /// HUP: `RELOADING=1`; `READY=1` follows when the workers spawned from now on serve.
    pub(super) fn notify_reloading(&mut self) {
        self.readiness = Readiness::Reloading {
            first_age: self.next_age,
        };
        let usec = systemd::monotonic_usec();
        self.notify(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"));
    }

    /// The master begins to stop: `STOPPING=1`, or, while a USR2 child runs, the child
    /// becomes the service's main process.
    pub(super) fn notify_stopping(&mut self) {
        match self.lineage.child {
            Some(child) => self.notify(&format!("MAINPID={child}")),
            None => self.notify("STOPPING=1"),
        }
    }

    fn notify(&self, state: &str) {
        if self.lineage.parent.is_none() {
            systemd::notify(state);
        }
    }
}
