//! The lock table's waiters: requests parked behind a locked key, and what runs when keys are
//! released (parked reads first, then writes and queued Prepares, oldest first as wait-die
//! ranks them).

use super::{TwoPc, TxnId, Waiting, Write};
use crate::contract::Context;
use crate::ids::NodeId;
use crate::kv::Key;
use crate::time::Time;

impl TwoPc {
    /// Parks `waiting` behind `key`'s lock.
    pub(super) fn park(&mut self, ctx: &mut Context<'_, Self>, key: Key, mut waiting: Waiting) {
        let id = waiting.request.id;
        if let Some(holder) = self.locks.get(&key) {
            ctx.note(|| format!("{id}: k{key} locked by {holder}; waiting"));
        } else {
            ctx.note(|| format!("{id}: k{key} awaited by an older Prepare; waiting"));
        }
        waiting.parked_version = self.version(key);
        // Oldest first, as wait-die ranks them; arrival order among equals.
        let queue = self.parked.entry(key).or_default();
        let at = queue.partition_point(|w| w.since <= waiting.since);
        queue.insert(at, waiting);
    }

    /// `key`'s version here: how many transactions committed on it.
    fn version(&self, key: Key) -> u64 {
        self.entries.get(&key).map_or(0, |e| e.version)
    }

    /// Releases the locks `txn` holds on `writes`' keys; returns the keys released.
    pub(super) fn release(&mut self, txn: TxnId, writes: &[Write]) -> Vec<Key> {
        let mut released = Vec::new();
        for w in writes {
            if self.locks.get(&w.key) == Some(&txn) {
                self.locks.get_mut().remove(&w.key);
                released.push(w.key);
            }
        }
        released
    }

    /// After `keys` were released (or a queued Prepare that writes them left the queue):
    /// serves the reads parked on them (they lock nothing), then
    /// the writes parked on them and the Prepares queued for them, oldest first (the order
    /// wait-die ranks transactions by); those that find a key locked again wait again.
    pub(super) fn after_release(&mut self, ctx: &mut Context<'_, Self>, keys: Vec<Key>) {
        let mut writes: Vec<(Time, NodeId, Option<Waiting>, Option<TxnId>)> = Vec::new();
        for key in &keys {
            let Some(queue) = self.parked.remove(key) else {
                continue;
            };
            let version = self.version(*key);
            for mut waiting in queue {
                // A commit on the key: contention that makes progress (`Waiting::patience`).
                if version > waiting.parked_version {
                    waiting.patience = ctx.now();
                }
                if waiting.request.op.is_write() {
                    writes.push((waiting.since, self.me, Some(waiting), None));
                } else {
                    self.serve(ctx, waiting);
                }
            }
        }
        for (txn, q) in &self.queued {
            if q.writes.iter().any(|w| keys.contains(&w.key)) {
                writes.push((q.started, txn.coordinator, None, Some(*txn)));
            }
        }
        writes.sort_by_key(|(since, node, _, txn)| (*since, *node, *txn));
        for (_, _, waiting, txn) in writes {
            if let Some(waiting) = waiting {
                self.serve(ctx, waiting);
            } else if let Some(q) = txn.and_then(|t| self.queued.get_mut().remove(&t).map(|q| (t, q))) {
                let (txn, q) = q;
                let awaited: Vec<Key> = q.writes.iter().map(|w| w.key).collect();
                self.on_prepare(ctx, txn.coordinator, txn, q.started, q.writes);
                if !self.queued.contains_key(&txn) && !self.prepared.contains_key(&txn) {
                    // Voted down: what waited behind it may go.
                    self.after_release(ctx, awaited);
                }
            }
        }
    }
}
