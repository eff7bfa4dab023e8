//! The event queue: a monotone priority queue on (virtual time, sequence number).
//!
//! The sequence number makes the order total: two events at the same virtual time run in the
//! order they were scheduled, so nothing depends on the queue's internal layout. Events live
//! in a slab and the queue moves only small keys, however large a protocol's messages are.
//!
//! The queue is a radix heap (Ahuja, Mehlhorn, Orlin and Tarjan, "Faster algorithms for the
//! shortest path problem", 1990), which a discrete-event simulator may use because virtual
//! time never runs backwards: nothing is ever scheduled before the last event taken out.
//! Bucket `b` (0..64) holds the events whose highest bit differing from that last time is bit
//! `b`; the front holds the events at exactly that time, in scheduling order. Taking the
//! earliest event out is O(1) while the front is not empty; when it is, the lowest non-empty
//! bucket is spread over the buckets below it, and an event moves down at most 64 times in
//! its life, against a binary heap's log2(queued) moves on every push and every pop.

use simkv_protocols::Time;
use std::collections::VecDeque;

/// A queued event's key: its time in microseconds, its sequence number, its slab slot.
type Entry = (u64, u64, u32);

/// A queue of events of type `E`.
#[derive(Debug)]
pub struct EventQueue<E> {
    /// The time of the last event taken out (0 before the first): no event is ever
    /// scheduled before it.
    last: u64,
    /// The events at time `last`, in sequence order: (sequence number, slot).
    front: VecDeque<(u64, u32)>,
    /// `buckets[b]` holds the events whose time's highest bit differing from `last`'s is bit
    /// `b`, in no particular order.
    buckets: [Vec<Entry>; 64],
    /// Bit `b` set when `buckets[b]` is not empty.
    occupied: u64,
    len: usize,
    slab: Vec<Option<E>>,
    free: Vec<u32>,
    next_seq: u64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        EventQueue {
            last: 0,
            front: VecDeque::new(),
            buckets: std::array::from_fn(|_| Vec::new()),
            occupied: 0,
            len: 0,
            slab: Vec::new(),
            free: Vec::new(),
            next_seq: 0,
        }
    }
}

impl<E> EventQueue<E> {
    /// Schedules `event` at `at`, which is never before the last event taken out (virtual
    /// time never runs backwards).
    #[inline]
    pub fn push(&mut self, at: Time, event: E) {
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slab[slot as usize] = Some(event);
                slot
            }
            None => {
                self.slab.push(Some(event));
                u32::try_from(self.slab.len() - 1).expect("fewer than 4 billion queued events")
            }
        };
        let at = at.as_micros();
        assert!(
            at >= self.last,
            "an event scheduled before one already taken out"
        );
        let seq = self.next_seq;
        self.next_seq += 1;
        self.len += 1;
        if at == self.last {
            // Later than every event at this time already queued: its sequence number is.
            self.front.push_back((seq, slot));
        } else {
            self.file((at, seq, slot));
        }
    }

    /// Puts an event after `last` in its bucket.
    #[inline]
    fn file(&mut self, entry: Entry) {
        let bucket = 63 - (entry.0 ^ self.last).leading_zeros() as usize;
        self.buckets[bucket].push(entry);
        self.occupied |= 1 << bucket;
    }

    /// Makes the front hold the earliest events, if any are queued: spreads the lowest
    /// non-empty bucket over the buckets below it (all empty), the events at its earliest
    /// time going to the front. Every event of that time is in that bucket: events of one
    /// time share their highest bit differing from `last`. An event in a higher bucket stays
    /// where it is: the new `last` agrees with the old one on every bit above the spread
    /// bucket's.
    fn refill(&mut self) {
        if !self.front.is_empty() || self.occupied == 0 {
            return;
        }
        let lowest = self.occupied.trailing_zeros() as usize;
        let mut spread = std::mem::take(&mut self.buckets[lowest]);
        self.occupied &= !(1 << lowest);
        self.last = spread
            .iter()
            .map(|e| e.0)
            .min()
            .expect("an occupied bucket");
        // In sequence order already: a bucket keeps the events of one time in the order they
        // were filed (pushes append, and a spread fills buckets that were empty, in order).
        for entry in spread.drain(..) {
            if entry.0 == self.last {
                self.front.push_back((entry.1, entry.2));
            } else {
                self.file(entry);
            }
        }
        // Give the emptied bucket its allocation back for the next events filed there.
        self.buckets[lowest] = spread;
    }

    /// Removes the earliest event, with its time.
    #[inline]
    pub fn pop(&mut self) -> Option<(Time, E)> {
        self.refill();
        let (_seq, slot) = self.front.pop_front()?;
        self.len -= 1;
        let event = self.slab[slot as usize]
            .take()
            .expect("a queued slot holds its event");
        self.free.push(slot);
        Some((Time(self.last), event))
    }

    /// The time of the earliest event. It leaves the queue as it is (a refill would move
    /// `last` past events still to be scheduled before it): when the front is empty it reads
    /// the lowest non-empty bucket, which holds the earliest events.
    pub fn peek_time(&self) -> Option<Time> {
        if !self.front.is_empty() {
            return Some(Time(self.last));
        }
        if self.occupied == 0 {
            return None;
        }
        self.buckets[self.occupied.trailing_zeros() as usize]
            .iter()
            .map(|e| Time(e.0))
            .min()
    }

    /// Number of queued events.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_times_pop_in_scheduling_order() {
        let mut q = EventQueue::default();
        q.push(Time(5), "b1");
        q.push(Time(1), "a");
        q.push(Time(5), "b2");
        q.push(Time(5), "b3");
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).map(|(_, e)| e).collect();
        assert_eq!(order, ["a", "b1", "b2", "b3"]);
    }

    #[test]
    fn slots_are_reused() {
        let mut q = EventQueue::default();
        for i in 0..10 {
            q.push(Time(i), i);
            q.pop();
        }
        assert_eq!(q.slab.len(), 1);
        assert!(q.is_empty());
    }

    proptest::proptest! {
        /// The radix heap takes events out in exactly a sorted (time, scheduling order), the
        /// order the simulation's determinism rests on, whatever mix of pushes and pops: each
        /// push at least the last popped time, as in the engine, some at that very time, some
        /// far ahead (a bucket's highest bits).
        #[test]
        fn pops_in_time_then_scheduling_order(
            steps in proptest::collection::vec((0u8..4, 0u64..3, 0u32..40), 1..400)
        ) {
            let mut q = EventQueue::default();
            let mut reference = std::collections::BTreeSet::new();
            let (mut now, mut seq) = (0u64, 0u64);
            for (action, scale, delay) in steps {
                if action == 0 {
                    let popped = q.pop();
                    let expected = reference.pop_first();
                    proptest::prop_assert_eq!(popped.map(|(t, s)| (t.as_micros(), s)), expected);
                    if let Some((at, _)) = expected {
                        now = at;
                    }
                } else {
                    let at = now + u64::from(delay) * 1000u64.pow(scale as u32);
                    q.push(Time(at), seq);
                    reference.insert((at, seq));
                    seq += 1;
                }
                proptest::prop_assert_eq!(q.len(), reference.len());
                proptest::prop_assert_eq!(
                    q.peek_time().map(|t| t.as_micros()),
                    reference.first().map(|e| e.0)
                );
            }
            while let Some(expected) = reference.pop_first() {
                proptest::prop_assert_eq!(q.pop().map(|(t, s)| (t.as_micros(), s)), Some(expected));
            }
            proptest::prop_assert!(q.pop().is_none());
        }
    }
}
