//! The event queue: a min-heap on (virtual time, sequence number).
//!
//! The sequence number makes the order total: two events at the same virtual time run in the
//! order they were scheduled, so nothing depends on the heap's internal tie-breaking. Events
//! live in a slab and the heap moves only 24-byte keys, which keeps sifting cheap however
//! large a protocol's messages are.

use simkv_protocols::Time;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A queue of events of type `E`.
#[derive(Debug)]
pub struct EventQueue<E> {
    heap: BinaryHeap<Reverse<(u64, u64, u32)>>,
    slab: Vec<Option<E>>,
    free: Vec<u32>,
    next_seq: u64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        EventQueue {
            heap: BinaryHeap::new(),
            slab: Vec::new(),
            free: Vec::new(),
            next_seq: 0,
        }
    }
}

impl<E> EventQueue<E> {
    /// Schedules `event` at `at`.
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
        self.heap
            .push(Reverse((at.as_micros(), self.next_seq, slot)));
        self.next_seq += 1;
    }

    /// Removes the earliest event, with its time.
    #[inline]
    pub fn pop(&mut self) -> Option<(Time, E)> {
        let Reverse((at, _seq, slot)) = self.heap.pop()?;
        let event = self.slab[slot as usize]
            .take()
            .expect("a queued slot holds its event");
        self.free.push(slot);
        Some((Time(at), event))
    }

    /// The time of the earliest event.
    pub fn peek_time(&self) -> Option<Time> {
        self.heap.peek().map(|Reverse((at, _, _))| Time(*at))
    }

    /// Number of queued events.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
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
}
