//! A Lamport counter whose values are reserved in chunks, so that a restarted node never
//! issues a version (or ballot) twice.
//!
//! A node persists a high-water mark one chunk past its counter, and issues counter values
//! up to that mark without persisting again; past it, it reserves the next chunk first. A
//! restart resumes from the persisted mark, so it skips at most one chunk of values, which
//! costs nothing. The type only keeps the two numbers: persisting the mark is the owning
//! protocol's job (its durable state holds more than the mark), which is why [`next`] and
//! [`reserve`] say when a persist is due instead of emitting it.
//!
//! [`next`]: Reservation::next
//! [`reserve`]: Reservation::reserve

use crate::ids::NodeId;
use crate::quorum::Version;

/// How many counter values a node reserves with each persist of its high-water mark.
pub const COUNTER_RESERVE_CHUNK: u64 = 1_000;

/// A Lamport counter and its persisted high-water mark (see the module doc).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reservation {
    /// The Lamport counter: the last value issued or seen.
    counter: u64,
    /// The persisted mark: no value this node ever issued is greater.
    reserved: u64,
}

impl Reservation {
    /// Resumes from a persisted mark (`0` on a first start): the counter starts at the mark,
    /// past every value issued before the restart.
    pub fn resume(reserved: u64) -> Self {
        Reservation {
            counter: reserved,
            reserved,
        }
    }

    /// The Lamport counter.
    pub fn counter(&self) -> u64 {
        self.counter
    }

    /// The reserved high-water mark.
    pub fn reserved(&self) -> u64 {
        self.reserved
    }

    /// Lamport: moves the counter up to `counter` if it is behind.
    pub fn observe(&mut self, counter: u64) {
        self.counter = self.counter.max(counter);
    }

    /// Moves the mark one chunk past the counter and returns it: the caller must persist it
    /// before any value past the old mark is seen outside.
    pub fn reserve(&mut self) -> u64 {
        self.reserved = self.counter + COUNTER_RESERVE_CHUNK;
        self.reserved
    }

    /// Issues `node`'s next version. When the counter passes the mark, the mark moves one
    /// chunk on and the second value is `true`: the caller must persist the new mark before
    /// the version is seen outside.
    pub fn next(&mut self, node: NodeId) -> (Version, bool) {
        self.counter += 1;
        let must_persist = self.counter > self.reserved;
        if must_persist {
            self.reserve();
        }
        let version = Version {
            counter: self.counter,
            node,
        };
        (version, must_persist)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_past_the_mark_reserve_the_next_chunk_first() {
        let mut r = Reservation::resume(0);
        assert_eq!(r.reserve(), COUNTER_RESERVE_CHUNK);
        for i in 1..=COUNTER_RESERVE_CHUNK {
            assert_eq!(
                r.next(NodeId(3)),
                (
                    Version {
                        counter: i,
                        node: NodeId(3)
                    },
                    false
                )
            );
        }
        let (v, must_persist) = r.next(NodeId(3));
        assert_eq!(v.counter, COUNTER_RESERVE_CHUNK + 1);
        assert!(must_persist);
        assert_eq!(r.reserved(), 2 * COUNTER_RESERVE_CHUNK + 1);
    }

    #[test]
    fn observing_moves_the_counter_up_only() {
        let mut r = Reservation::resume(5);
        r.observe(3);
        assert_eq!(r.counter(), 5);
        r.observe(9);
        assert_eq!(r.counter(), 9);
        assert_eq!(r.reserved(), 5);
    }
}
