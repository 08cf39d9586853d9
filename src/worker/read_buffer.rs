//! Received bytes not yet parsed. The storage is zeroed once and reused across reads
//! and requests, so a read costs no memset, and consumed bytes are dropped by moving
//! an index rather than shifting memory.

/// A reusable receive buffer: `storage[start..end]` holds unparsed bytes.
#[derive(Default)]
pub struct ReadBuffer {
    storage: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadBuffer {
    /// The unparsed bytes.
    pub fn data(&self) -> &[u8] {
        &self.storage[self.start..self.end]
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Drops the first `n` unparsed bytes.
    pub fn consume(&mut self, n: usize) {
        self.start += n.min(self.end - self.start);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Bytes of storage, used or not.
    pub fn capacity(&self) -> usize {
        self.storage.len()
    }

    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// At least `min` writable bytes after the data, compacting or growing as needed.
    pub fn spare(&mut self, min: usize) -> &mut [u8] {
        if self.storage.len() - self.end < min {
            if self.start > 0 {
                self.storage.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.storage.len() - self.end < min {
                self.storage.resize(self.end + min, 0);
            }
        }
        &mut self.storage[self.end..]
    }

    /// Marks `n` bytes of [`spare`](Self::spare) as received.
    pub fn filled(&mut self, n: usize) {
        self.end += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_unparsed_bytes_across_compaction() {
        let mut buf = ReadBuffer::default();
        buf.spare(8)[..6].copy_from_slice(b"abcdef");
        buf.filled(6);
        buf.consume(4);
        assert_eq!(buf.data(), b"ef");
        let spare = buf.spare(7);
        assert!(spare.len() >= 7);
        spare[..3].copy_from_slice(b"ghi");
        buf.filled(3);
        assert_eq!(buf.data(), b"efghi");
        buf.consume(5);
        assert!(buf.is_empty());
    }
}
