//! What survives a crash: the replica's versions, the hints it holds, the version counter, and
//! the hint ledger the invariants check. Persisted before any message that reveals a change.

use super::handoff::Hint;
use super::versions::Versions;
use super::Sloppy;
use crate::contract::Context;
use crate::ids::NodeId;
use crate::kv::Key;
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

impl Sloppy {
    pub(super) fn persist(&self, ctx: &mut Context<'_, Self>) {
        ctx.persist(SloppyDurable {
            entries: self.entries.clone(),
            hints: self.hints.clone(),
            counter: self.counter,
            hints_stored: self.hints_stored,
            hints_delivered: self.hints_delivered,
        });
    }
}
