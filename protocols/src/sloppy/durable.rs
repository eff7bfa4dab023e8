//! What survives a crash: the replica's versions, the hints it holds, the version counter, and
//! the hint ledger the invariants check. Persisted before any message that reveals a change.

use crate::Replay;
use super::handoff::Hint;
use super::versions::Versions;
use super::Sloppy;
use crate::contract::Context;
use crate::ids::NodeId;
use crate::kv::Key;
use crate::tracked::{replay, Changes};
use std::collections::BTreeMap;

/// What survives a crash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SloppyDurable {
    /// This replica's versions, by key.
    pub entries: BTreeMap<Key, Versions>,
    /// Hints held, by (intended node, key).
    pub hints: BTreeMap<(NodeId, Key), Hint>,
    /// No version this node issued has a greater counter.
    pub counter: u64,
    /// Hints ever stored (a new (node, key) pair).
    pub hints_stored: u64,
    /// Hints ever handed back.
    pub hints_delivered: u64,
}

/// One record of a node's log (see the contract's "Storage"): what changed since the last
/// record, or the whole durable state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SloppyRecord {
    /// The whole durable state: recovery starts over from it.
    Snapshot(SloppyDurable),
    /// The changed keys of each map (`None`: removed), and the counters as they are now.
    Changes {
        /// Changed `entries`.
        entries: Changes<Key, Versions>,
        /// Changed `hints`.
        hints: Changes<(NodeId, Key), Hint>,
        /// `counter` as it is now.
        counter: u64,
        /// `hints_stored` as it is now.
        hints_stored: u64,
        /// `hints_delivered` as it is now.
        hints_delivered: u64,
    },
}

impl Replay<SloppyDurable> for SloppyRecord {
    /// Folds this record into the state recovered so far.
    fn replay(&self, durable: &mut Option<SloppyDurable>) {
        match self {
            SloppyRecord::Snapshot(d) => *durable = Some(d.clone()),
            SloppyRecord::Changes { entries, hints, counter, hints_stored, hints_delivered } => {
                let d = durable.get_or_insert_with(|| SloppyDurable {
                    entries: BTreeMap::new(),
                    hints: BTreeMap::new(),
                    counter: Default::default(),
                    hints_stored: Default::default(),
                    hints_delivered: Default::default(),
                });
                replay(&mut d.entries, entries);
                replay(&mut d.hints, hints);
                d.counter = *counter;
                d.hints_stored = *hints_stored;
                d.hints_delivered = *hints_delivered;
            }
        }
    }
}

impl Sloppy {
    fn durable_now(&self) -> SloppyDurable {
        SloppyDurable {
            entries: BTreeMap::clone(&self.entries),
            hints: BTreeMap::clone(&self.hints),
            counter: self.counter,
            hints_stored: self.hints_stored,
            hints_delivered: self.hints_delivered,
        }
    }

    /// Writes what changed since the last persist to the log and syncs it: O(changes), with
    /// a snapshot now and then to keep the log short.
    pub(super) fn persist(&mut self, ctx: &mut Context<'_, Self>) {
        let (size, changed) = (self.entries.len() + self.hints.len(), self.entries.len_changed() + self.hints.len_changed());
        let snapshot = self.compaction.note(changed, size);
        let record = if snapshot {
            self.compaction.reset();
            self.entries.mark_written();
            self.hints.mark_written();
            SloppyRecord::Snapshot(self.durable_now())
        } else {
            SloppyRecord::Changes {
                entries: self.entries.take_changes(),
                hints: self.hints.take_changes(),
                counter: self.counter,
                hints_stored: self.hints_stored,
                hints_delivered: self.hints_delivered,
            }
        };
        let mut shadow = std::mem::take(&mut self.shadow);
        shadow.check(&record, SloppyRecord::replay, || self.durable_now());
        self.shadow = shadow;
        if snapshot {
            ctx.write_snapshot(record);
        } else {
            ctx.write(record);
        }
        ctx.sync();
    }
}
