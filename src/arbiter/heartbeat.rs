//! Worker heartbeats without file I/O: one slot per worker in a shared anonymous
//! mapping. A worker stamps its slot with the monotonic clock every loop turn and while
//! it waits on a slow client; the master compares stamps against `--timeout`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// More workers than this cannot run at once (TTIN stops growing there).
pub const MAX_WORKERS: usize = 4096;

/// The master's view of every slot.
pub struct HeartbeatTable {
    slots: &'static [AtomicU64],
    free: Vec<usize>,
}

impl HeartbeatTable {
    pub fn new() -> std::io::Result<HeartbeatTable> {
        let slots = crate::sys::shared_words(MAX_WORKERS)?;
        Ok(HeartbeatTable {
            slots,
            free: (0..MAX_WORKERS).rev().collect(),
        })
    }

    /// Takes a free slot for a worker about to be forked, stamped now so boot time
    /// counts against the timeout as in Gunicorn.
    pub fn claim(&mut self) -> Option<usize> {
        let index = self.free.pop()?;
        self.slots[index].store(crate::sys::monotonic_millis(), Ordering::Relaxed);
        Some(index)
    }

    pub fn release(&mut self, index: usize) {
        self.free.push(index);
    }

    /// Milliseconds since the worker in `index` last stamped.
    pub fn silence_millis(&self, index: usize) -> u64 {
        crate::sys::monotonic_millis().saturating_sub(self.slots[index].load(Ordering::Relaxed))
    }

    /// The slot a worker will stamp (handed to it across fork).
    pub fn slot(&self, index: usize) -> &'static AtomicU64 {
        &self.slots[index]
    }
}

static MY_SLOT: OnceLock<&'static AtomicU64> = OnceLock::new();

/// In a worker: remembers the slot to stamp.
pub fn install(slot: &'static AtomicU64) {
    let _ = MY_SLOT.set(slot);
    beat();
}

/// In a worker: "still alive".
pub fn beat() {
    if let Some(slot) = MY_SLOT.get() {
        slot.store(crate::sys::monotonic_millis(), Ordering::Relaxed);
    }
}
