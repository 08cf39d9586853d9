//! Whether to read a connection the moment it is accepted.
//!
//! Reading at once lets a sync worker see a complete request before it accepts more
//! (the accept policy in `event_loop`) and saves a loop turn when the request is
//! already there, as it is when connections waited in the listen queue: the case
//! where the policy matters. When the worker keeps up, a client's request arrives
//! just after its connection is accepted, so the read finds nothing. That is a wasted
//! syscall per connection (about 3% of a short connection's CPU), and the policy
//! learns nothing from it either, since the worker goes on accepting.
//!
//! So after [`EMPTY_BEFORE_SKIPPING`] empty reads in a row, the next [`SKIPPED`]
//! connections wait for their readable event instead. Then one connection is read at
//! once again as a probe: found empty, skipping goes on; found with bytes, every
//! connection is read at once again.

/// Empty reads in a row that start a skipping period.
const EMPTY_BEFORE_SKIPPING: u32 = 8;
/// Connections not read at once in a skipping period.
const SKIPPED: u32 = 64;

#[derive(Debug, Default)]
pub struct AcceptReads {
    empty_in_a_row: u32,
    skips_left: u32,
}

impl AcceptReads {
    /// Whether to read the connection just accepted now (then call [`learn`]).
    ///
    /// [`learn`]: AcceptReads::learn
    pub fn read_now(&mut self) -> bool {
        if self.skips_left > 0 {
            self.skips_left -= 1;
            return false;
        }
        true
    }

    /// What the read at accept found.
    pub fn learn(&mut self, found_bytes: bool) {
        if found_bytes {
            self.empty_in_a_row = 0;
            return;
        }
        self.empty_in_a_row += 1;
        if self.empty_in_a_row >= EMPTY_BEFORE_SKIPPING {
            self.skips_left = SKIPPED;
            // One empty probe after the period is enough to skip again.
            self.empty_in_a_row = EMPTY_BEFORE_SKIPPING - 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads at accept for `n` connections, each finding `found`; how many were read.
    fn run(reads: &mut AcceptReads, n: u32, found: bool) -> u32 {
        let mut read = 0;
        for _ in 0..n {
            if reads.read_now() {
                read += 1;
                reads.learn(found);
            }
        }
        read
    }

    #[test]
    fn reads_every_connection_while_requests_are_there() {
        let mut reads = AcceptReads::default();
        assert_eq!(run(&mut reads, 1000, true), 1000);
    }

    #[test]
    fn skips_most_reads_while_they_find_nothing_and_probes_now_and_then() {
        let mut reads = AcceptReads::default();
        assert_eq!(
            run(&mut reads, EMPTY_BEFORE_SKIPPING, false),
            EMPTY_BEFORE_SKIPPING
        );
        // From now on: one probe per skipping period.
        let periods = 10;
        assert_eq!(run(&mut reads, periods * (SKIPPED + 1), false), periods);
    }

    #[test]
    fn a_probe_that_finds_a_request_ends_skipping() {
        let mut reads = AcceptReads::default();
        run(&mut reads, EMPTY_BEFORE_SKIPPING, false);
        run(&mut reads, SKIPPED, false);
        assert_eq!(run(&mut reads, 100, true), 100);
    }
}
