//! What survives a crash: the replica's versions, the hints it holds, the version counter, and
//! the hint ledger the invariants check. Persisted before any message that reveals a change.

use crate::Replay;
use super::handoff::Hint;
use super::versions::{Versioned, Versions};
use super::{Dynamo, Member};
use crate::contract::Context;
use crate::ids::NodeId;
use crate::kv::Key;
use crate::tracked::{replay, Changes};
use std::collections::BTreeMap;

/// What survives a crash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DynamoDurable {
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
    /// The newest version this node wrote of each key, as a coordinator.
    pub own: BTreeMap<Key, Versioned>,
    /// The last write's counter of each key under each stand-in actor (context writes).
    pub actors: BTreeMap<(Key, NodeId), u64>,
    /// This node's view of the ring's members.
    pub members: BTreeMap<NodeId, Member>,
    /// When this node went PENDING and READY (ms of its clock) and the keys it copied.
    pub milestones: (u64, u64, u64),
    /// How many times this node has started: its request numbers carry it (see
    /// [`Dynamo::start_incarnation`]).
    pub incarnation: u64,
}

/// One record of a node's log (see the contract's "Storage"): what changed since the last
/// record, or the whole durable state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DynamoRecord {
    /// The whole durable state: recovery starts over from it.
    Snapshot(DynamoDurable),
    /// The changed keys of each map (`None`: removed), and the counters as they are now.
    Changes {
        /// Changed `entries`.
        entries: Changes<Key, Versions>,
        /// Changed `hints`.
        hints: Changes<(NodeId, Key), Hint>,
        /// Changed `own`.
        own: Changes<Key, Versioned>,
        /// Changed `actors`.
        actors: Changes<(Key, NodeId), u64>,
        /// Changed `members`.
        members: Changes<NodeId, Member>,
        /// `counter` as it is now.
        counter: u64,
        /// `hints_stored` as it is now.
        hints_stored: u64,
        /// `hints_delivered` as it is now.
        hints_delivered: u64,
        /// `milestones` as it is now.
        milestones: (u64, u64, u64),
        /// `incarnation` as it is now.
        incarnation: u64,
    },
}

impl Replay<DynamoDurable> for DynamoRecord {
    /// Folds this record into the state recovered so far.
    fn replay(&self, durable: &mut Option<DynamoDurable>) {
        match self {
            DynamoRecord::Snapshot(d) => *durable = Some(d.clone()),
            DynamoRecord::Changes {
                entries,
                hints,
                own,
                actors,
                members,
                counter,
                hints_stored,
                hints_delivered,
                milestones,
                incarnation,
            } => {
                let d = durable.get_or_insert_with(|| DynamoDurable {
                    entries: BTreeMap::new(),
                    hints: BTreeMap::new(),
                    own: BTreeMap::new(),
                    actors: BTreeMap::new(),
                    members: BTreeMap::new(),
                    counter: Default::default(),
                    hints_stored: Default::default(),
                    hints_delivered: Default::default(),
                    milestones: Default::default(),
                    incarnation: Default::default(),
                });
                replay(&mut d.entries, entries);
                replay(&mut d.hints, hints);
                replay(&mut d.own, own);
                replay(&mut d.actors, actors);
                replay(&mut d.members, members);
                d.counter = *counter;
                d.hints_stored = *hints_stored;
                d.hints_delivered = *hints_delivered;
                d.milestones = *milestones;
                d.incarnation = *incarnation;
            }
        }
    }
}

impl Dynamo {
    fn durable_now(&self) -> DynamoDurable {
        DynamoDurable {
            entries: BTreeMap::clone(&self.entries),
            hints: BTreeMap::clone(&self.hints),
            own: BTreeMap::clone(&self.own),
            actors: BTreeMap::clone(&self.actors),
            members: BTreeMap::clone(&self.members),
            counter: self.counter,
            hints_stored: self.hints_stored,
            hints_delivered: self.hints_delivered,
            milestones: self.milestones,
            incarnation: self.incarnation,
        }
    }

    /// Begins this incarnation, at start: one more than the last one's, durable before any
    /// message leaves (the first record is a snapshot), and the first of its request numbers.
    ///
    /// A coordinator's request number (`op`) is how a replica's fetch or store reply finds
    /// its request. Numbers that began again at 1 after each restart let a reply to an
    /// earlier incarnation's request count for this one's request of the same number: its
    /// versions, of another key, were taken as this key's read, so the write's context
    /// covered versions of this key it never read (their clocks merged in) and superseded
    /// acknowledged appends; and its acknowledgement counted toward a write quorum the
    /// write never reached. (`swarm.toml` seed 173: crashes every 20-200 ms, 125 appends
    /// lost.) So a request number is the incarnation in its upper 32 bits and a sequence
    /// number in the lower ones; a crash before the incarnation's sync completes loses the
    /// messages held behind it too, so no number is used by two incarnations.
    pub(super) fn start_incarnation(&mut self, ctx: &mut Context<'_, Self>, last: u64) {
        self.incarnation = last + 1;
        self.next_op = self.incarnation << 32;
        self.persist(ctx);
    }

    /// Writes what changed since the last persist to the log and syncs it: O(changes), with
    /// a snapshot now and then to keep the log short.
    pub(super) fn persist(&mut self, ctx: &mut Context<'_, Self>) {
        let (size, changed) = (
            self.entries.len() + self.hints.len() + self.own.len() + self.members.len()
                + self.actors.len(),
            self.entries.len_changed()
                + self.hints.len_changed()
                + self.own.len_changed()
                + self.members.len_changed()
                + self.actors.len_changed(),
        );
        let snapshot = self.compaction.note(changed, size);
        let record = if snapshot {
            self.compaction.reset();
            self.entries.mark_written();
            self.hints.mark_written();
            self.own.mark_written();
            self.actors.mark_written();
            self.members.mark_written();
            DynamoRecord::Snapshot(self.durable_now())
        } else {
            DynamoRecord::Changes {
                entries: self.entries.take_changes(),
                hints: self.hints.take_changes(),
                own: self.own.take_changes(),
                actors: self.actors.take_changes(),
                members: self.members.take_changes(),
                counter: self.counter,
                hints_stored: self.hints_stored,
                hints_delivered: self.hints_delivered,
                milestones: self.milestones,
                incarnation: self.incarnation,
            }
        };
        let mut shadow = std::mem::take(&mut self.shadow);
        shadow.check(&record, DynamoRecord::replay, || self.durable_now());
        self.shadow = shadow;
        if snapshot {
            ctx.write_snapshot(record);
        } else {
            ctx.write(record);
        }
        self.sync_rule.sync(ctx);
    }
}
