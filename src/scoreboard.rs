//! The scoreboard: worker heartbeats without file I/O, one slot per worker in a shared anonymous
//! mapping. A worker stamps its slot with the monotonic clock every loop turn and while
//! it waits on a slow client; the master compares stamps against `--timeout`.
//!
//! The same mapping carries one "idle" flag per worker, so a busy worker can tell
//! whether another worker is free to take queued connections (see the worker's
//! accept policy), and one "booted" flag per worker: set once the worker's app is
//! loaded and its event loop holds the listeners, so the master knows when a
//! generation serves (systemd's `READY=1`). And each worker's count of open
//! connections, so that connections spread evenly over the workers of a listener
//! (see the worker's accept policy) without the master in the path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// More workers than this cannot run at once (TTIN stops growing there).
pub const MAX_WORKERS: usize = 4096;

/// Idle-flag values. A booting worker will take connections as soon as its app is
/// loaded, so for the accept policy it counts as available, like an idle one.
const BUSY: u64 = 0;
const IDLE: u64 = 1;
const BOOTING: u64 = 2;

/// The master's view of every slot.
pub struct HeartbeatTable {
    stamps: &'static [AtomicU64],
    idle: &'static [AtomicU64],
    booted: &'static [AtomicU64],
    /// Open connections + 1 while the slot has a worker; 0 when it is free.
    conns: &'static [AtomicU64],
    /// One past the highest slot ever claimed: how far a worker scans.
    bound: &'static AtomicU64,
    free: Vec<usize>,
}

impl HeartbeatTable {
    pub fn new() -> std::io::Result<HeartbeatTable> {
        let words = crate::sys::shared_words(4 * MAX_WORKERS + 1)?;
        let (stamps, rest) = words.split_at(MAX_WORKERS);
        let (idle, rest) = rest.split_at(MAX_WORKERS);
        let (booted, rest) = rest.split_at(MAX_WORKERS);
        let (conns, rest) = rest.split_at(MAX_WORKERS);
        Ok(HeartbeatTable {
            stamps,
            idle,
            booted,
            conns,
            bound: &rest[0],
            free: (0..MAX_WORKERS).rev().collect(),
        })
    }

    /// Takes a free slot for a worker about to be forked, stamped now so boot time
    /// counts against the timeout as in Gunicorn.
    pub fn claim(&mut self) -> Option<usize> {
        let index = self.free.pop()?;
        self.stamps[index].store(crate::sys::monotonic_millis(), Ordering::Relaxed);
        self.idle[index].store(BOOTING, Ordering::Relaxed);
        self.booted[index].store(0, Ordering::Relaxed);
        self.conns[index].store(1, Ordering::Relaxed);
        self.bound.fetch_max(index as u64 + 1, Ordering::Relaxed);
        Some(index)
    }

    /// Frees a dead worker's slot; a worker that died idle no longer counts as idle.
    pub fn release(&mut self, index: usize) {
        self.idle[index].store(BUSY, Ordering::Relaxed);
        self.conns[index].store(0, Ordering::Relaxed);
        self.free.push(index);
    }

    /// Milliseconds since the worker in `index` last stamped.
    pub fn silence_millis(&self, index: usize) -> u64 {
        crate::sys::monotonic_millis().saturating_sub(self.stamps[index].load(Ordering::Relaxed))
    }

    /// Whether the worker in `index` has loaded its app and serves.
    pub fn is_booted(&self, index: usize) -> bool {
        self.booted[index].load(Ordering::Relaxed) != 0
    }

    /// What a forked worker needs to reach its own slot and see the others.
    pub fn view(&self, index: usize) -> WorkerView {
        WorkerView {
            stamps: self.stamps,
            idle: self.idle,
            booted: self.booted,
            conns: self.conns,
            bound: self.bound,
            index,
        }
    }
}

/// A worker's handle on the table.
#[derive(Clone, Copy)]
pub struct WorkerView {
    stamps: &'static [AtomicU64],
    idle: &'static [AtomicU64],
    booted: &'static [AtomicU64],
    conns: &'static [AtomicU64],
    bound: &'static AtomicU64,
    index: usize,
}

static MINE: OnceLock<WorkerView> = OnceLock::new();

/// In a worker: remembers the slot to stamp.
pub fn install(view: WorkerView) {
    let _ = MINE.set(view);
    beat();
}

/// In a worker: "still alive".
pub fn beat() {
    if let Some(v) = MINE.get() {
        v.stamps[v.index].store(crate::sys::monotonic_millis(), Ordering::Relaxed);
    }
}

/// In a worker: "my app is loaded and I serve" (the master's readiness signal).
pub fn mark_booted() {
    if let Some(v) = MINE.get() {
        v.booted[v.index].store(1, Ordering::Relaxed);
    }
}

/// In a worker: publishes whether it could take a new connection right now.
pub fn set_idle(idle: bool) {
    if let Some(v) = MINE.get() {
        v.idle[v.index].store(if idle { IDLE } else { BUSY }, Ordering::Relaxed);
    }
}

/// In a worker: whether its own flag says idle. The loop compares against the flag,
/// not against what it stored last, because an app thread that finishes also sets it
/// (see `worker::pool`).
pub fn idle_published() -> bool {
    MINE.get()
        .is_some_and(|v| v.idle[v.index].load(Ordering::Relaxed) == IDLE)
}

/// In a worker: whether any other worker is idle or still booting. A scan of the flags; called
/// at most once per accept grace period, never per request.
pub fn another_worker_idle() -> bool {
    MINE.get().is_some_and(|v| {
        v.idle
            .iter()
            .enumerate()
            .any(|(i, flag)| i != v.index && flag.load(Ordering::Relaxed) != BUSY)
    })
}

/// In a worker: publishes how many connections it holds open.
pub fn set_connections(n: usize) {
    if let Some(v) = MINE.get() {
        v.conns[v.index].store(n as u64 + 1, Ordering::Relaxed);
    }
}

/// In a worker: the fewest connections any other idle worker holds, or None when no
/// other worker is idle. Scans the slots in use (a handful), once per accept.
pub fn fewest_connections_on_an_idle_worker() -> Option<usize> {
    let v = MINE.get()?;
    let bound = (v.bound.load(Ordering::Relaxed) as usize).min(MAX_WORKERS);
    (0..bound)
        .filter(|&i| i != v.index && v.idle[i].load(Ordering::Relaxed) == IDLE)
        .filter_map(|i| v.conns[i].load(Ordering::Relaxed).checked_sub(1))
        .min()
        .map(|n| n as usize)
}
