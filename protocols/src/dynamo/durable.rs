//! What survives a crash: the replica's versions, the hints it holds, the version counter, and
//! the hint ledger the invariants check. Persisted before any message that reveals a change.

use super::handoff::Hint;
use super::versions::{Versioned, Versions};
use super::{Dynamo, Member};
use crate::contract::Context;
use crate::ids::NodeId;
use crate::kv::Key;
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
    /// This node's view of the ring's members.
    pub members: BTreeMap<NodeId, Member>,
    /// When this node went PENDING and READY (ms of its clock) and the keys it copied.
    pub milestones: (u64, u64, u64),
}

impl Dynamo {
    pub(super) fn persist(&self, ctx: &mut Context<'_, Self>) {
        ctx.persist(DynamoDurable {
            entries: self.entries.clone(),
            hints: self.hints.clone(),
            counter: self.counter,
            hints_stored: self.hints_stored,
            hints_delivered: self.hints_delivered,
            own: self.own.clone(),
            members: self.members.clone(),
            milestones: self.milestones,
        });
    }
}
