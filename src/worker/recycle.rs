//! `--max-requests` / `--max-requests-jitter`: a worker that has handed this many
//! requests to the app answers the last one with `Connection: close`, drains like a
//! graceful stop and exits; the master starts a fresh worker (Gunicorn's
//! `workers/base.py` and `sync.py`: `nr >= max_requests` → "Autorestarting worker
//! after current request.").

use std::io::Read;

/// Counts requests against this worker's limit.
#[derive(Debug)]
pub struct Recycle {
    /// `max_requests + randint(0, jitter)`, or `u64::MAX` when recycling is off.
    limit: u64,
    handled: u64,
}

impl Recycle {
    /// The limit for one worker: `max_requests` plus a random jitter in
    /// `0..=jitter`, so workers started together do not all restart together.
    pub fn new(max_requests: u64, jitter: u64) -> Recycle {
        let limit = if max_requests == 0 {
            u64::MAX
        } else {
            max_requests.saturating_add(random_below(jitter.saturating_add(1)))
        };
        Recycle { limit, handled: 0 }
    }

    /// The limit this worker runs with (`u64::MAX`: never).
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Counts one request handed to the app; true when it is the last this worker
    /// takes (then it logs, as Gunicorn does, before the app runs).
    pub fn count(&mut self) -> bool {
        self.handled += 1;
        let last = self.handled == self.limit;
        if last {
            tracing::info!("Autorestarting worker after current request.");
        }
        last
    }
}

/// A uniformly random number in `0..bound` (bound 0 or 1 gives 0), from the kernel's
/// random source: every worker draws its own, whatever state it inherited.
fn random_below(bound: u64) -> u64 {
    if bound <= 1 {
        return 0;
    }
    let mut bytes = [0u8; 8];
    let drawn = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    let value = match drawn {
        Ok(()) => u64::from_ne_bytes(bytes),
        // No /dev/urandom (a chroot): the pid still spreads workers apart.
        Err(_) => u64::from(std::process::id()).wrapping_mul(0x9E37_79B9_7F4A_7C15),
    };
    value % bound
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_by_default_and_limit_within_the_jitter() {
        let mut off = Recycle::new(0, 10);
        assert_eq!(off.limit(), u64::MAX);
        assert!(!(0..1000).any(|_| off.count()));

        let mut exact = Recycle::new(3, 0);
        let seen: Vec<bool> = (0..5).map(|_| exact.count()).collect();
        assert_eq!(seen, [false, false, true, false, false]);

        let limits: std::collections::BTreeSet<u64> =
            (0..400).map(|_| Recycle::new(50, 10).limit()).collect();
        assert!(limits.iter().all(|l| (50..=60).contains(l)), "{limits:?}");
        // 400 draws over 11 values: both ends and most values in between show up.
        assert!(limits.len() >= 8, "jitter not spread: {limits:?}");
    }
}
