//! What survives a crash: every key's acceptor state (its promise, and the value it accepted
//! with the client sessions of the chain of values that led to it), and the counter's
//! reserved mark, persisted before any reply that reveals them.

use crate::Replay;
use super::Majority;
use crate::contract::Context;
use crate::ids::{ClientId, RequestId};
use crate::kv::{Key, Value};
use crate::quorum::{Entry, Version};
use crate::tracked::{replay, Changes};
use serde::Serialize;
use std::collections::BTreeMap;
use std::rc::Rc;

/// An accepted value, with the client sessions of the chain of values that led to it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Record {
    /// The value (or tombstone), versioned by the ballot that accepted it.
    pub entry: Entry,
    /// Per client, its last request applied in the chain (at most one entry per client).
    /// Shared: a record travels in every accept, promise and read reply, and only a new
    /// value makes a new table (it hashes, compares and serialises as the table itself).
    pub sessions: Rc<BTreeMap<ClientId, Applied>>,
    /// The last request applied in the chain: the value is the value right after it.
    pub last: Option<RequestId>,
}

/// A client's last request applied in a chain of values.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Applied {
    /// The request's sequence number.
    pub seq: u64,
    /// The ballot of the attempt that applied it.
    pub ballot: Version,
    /// How it ended: with the value right after it, enough to rebuild its answer.
    pub outcome: Outcome,
}

/// How an applied request ended (see [`Applied`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Outcome {
    /// [`OpResult::Ok`](crate::kv::OpResult::Ok) with the value after it.
    Ok,
    /// [`OpResult::Ok`](crate::kv::OpResult::Ok) with this value, kept for an append, whose
    /// answer (the whole value after it) nothing else rebuilds once later requests changed
    /// the value: without it, a retry that finds the append applied by an earlier attempt
    /// elsewhere could not answer, and the client timed out (swarm.toml seeds 12, 21, 29, ...).
    Appended {
        /// The value right after the append.
        value: Option<Value>,
    },
    /// [`OpResult::NotFound`](crate::kv::OpResult::NotFound).
    NotFound,
    /// [`OpResult::PreconditionFailed`](crate::kv::OpResult::PreconditionFailed), with the
    /// value it found (kept so that a retry elsewhere can still answer).
    PreconditionFailed {
        /// The value the key held.
        current: Option<Value>,
    },
}

/// One key at one replica: the acceptor's state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Slot {
    /// No ballot below this one may be accepted (unless known chosen).
    pub promised: Version,
    /// The highest value accepted.
    pub accepted: Option<Record>,
    /// Whether `accepted` is known to be on a write quorum (a commit arrived).
    pub chosen: bool,
}

/// What survives a crash: every slot, and the counter's reserved mark.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MajorityDurable {
    /// Every key's acceptor state, shared with the live node's until either changes it:
    /// persisting after each acceptor step copies pointers, not every key's record.
    pub slots: BTreeMap<Key, Rc<Slot>>,
    /// No ballot this node ever issued has a greater counter.
    pub counter_reserved: u64,
    /// Whether a recovery met a record whose checksum failed: the node kept what its log
    /// held before it, cannot know which promises and values it lost, and so answers no
    /// acceptor message and no client; anti-entropy brings its values back.
    pub damaged: bool,
}

/// One record of a node's log (see the contract's "Storage"): the slots changed since the
/// last record, or the whole durable state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MajorityRecord {
    /// The whole durable state: recovery starts over from it.
    Snapshot(MajorityDurable),
    /// The changed slots (`None`: removed) and the counter's mark as it is now.
    Changes {
        /// Changed slots, shared with the live node's.
        slots: Changes<Key, Rc<Slot>>,
        /// The counter's reserved mark.
        counter_reserved: u64,
    },
}

impl Replay<MajorityDurable> for MajorityRecord {
    /// Folds this record into the state recovered so far.
    fn replay(&self, durable: &mut Option<MajorityDurable>) {
        match self {
            MajorityRecord::Snapshot(d) => *durable = Some(d.clone()),
            MajorityRecord::Changes {
                slots,
                counter_reserved,
            } => {
                let d = durable.get_or_insert_with(|| MajorityDurable {
                    slots: BTreeMap::new(),
                    counter_reserved: 0,
                    damaged: false,
                });
                replay(&mut d.slots, slots);
                d.counter_reserved = *counter_reserved;
            }
        }
    }
}

impl Majority {
    fn durable_now(&self) -> MajorityDurable {
        MajorityDurable {
            slots: BTreeMap::clone(&self.slots),
            counter_reserved: self.counter.reserved(),
            damaged: self.damaged,
        }
    }

    /// Writes the slots changed since the last persist and the counter's mark to the log,
    /// and syncs it: O(changes), with a snapshot now and then to keep the log short.
    pub(super) fn persist(&mut self, ctx: &mut Context<'_, Self>) {
        if self
            .compaction
            .note(self.slots.len_changed(), self.slots.len())
        {
            self.compaction.reset();
            self.slots.mark_written();
            let record = MajorityRecord::Snapshot(self.durable_now());
            let mut shadow = std::mem::take(&mut self.shadow);
        shadow.check(&record, MajorityRecord::replay, || self.durable_now());
        self.shadow = shadow;
            ctx.write_snapshot(record);
        } else {
            let record = MajorityRecord::Changes {
                slots: self.slots.take_changes(),
                counter_reserved: self.counter.reserved(),
            };
            let mut shadow = std::mem::take(&mut self.shadow);
        shadow.check(&record, MajorityRecord::replay, || self.durable_now());
        self.shadow = shadow;
            ctx.write(record);
        }
        self.sync_rule.sync(ctx);
    }

    pub(super) fn next_ballot(&mut self, ctx: &mut Context<'_, Self>) -> Version {
        let (ballot, must_persist) = self.counter.next(self.me);
        if must_persist {
            self.persist(ctx);
        }
        ballot
    }
}
