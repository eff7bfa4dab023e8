//! The consistent-hashing ring (Dynamo section 4.2, the seed's "chord & consistent hashing"):
//! each member owns `tokens` positions (virtual nodes), and a key's preference list is the
//! distinct physical nodes met walking clockwise from the key's hash (section 4.3).

use crate::digest::StableHasher;
use crate::ids::NodeId;
use crate::kv::Key;
use serde::Serialize;
use std::collections::BTreeMap;

/// Where a node stands in the ring, as the seed's join protocol names the states a node
/// passes through once it is added (NEW nodes are not in the ring yet), plus a decommission.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Member {
    /// Added to the ring, still copying the keys it now owns and the backups it must hold
    /// (seed, join step 5): it receives writes but counts toward no quorum yet.
    Pending,
    /// Serving: it counts toward quorums.
    Ready,
    /// Decommissioned (a graceful leave): out of the ring for good.
    Left,
}

/// The ring of one node's view: `tokens` positions per member.
#[derive(Clone, Debug, Default)]
pub struct Ring {
    /// Each position and its owner, in position order (a sorted list, not a tree: the ring
    /// changes only with membership, and every request walks it).
    positions: Vec<(u64, NodeId)>,
    /// Distinct physical nodes among the positions: a preference list is whole once it
    /// holds this many, and the walk stops there.
    distinct: usize,
}

/// The position of a key on the ring (its hash; the seed hashes keys with MD5, we with the
/// project's stable hasher).
pub fn key_position(key: Key) -> u64 {
    StableHasher::hash_of(&("key", key))
}

impl Ring {
    /// The ring of `members`, each with `tokens` virtual nodes (at least one).
    pub fn new(members: impl IntoIterator<Item = NodeId>, tokens: u64) -> Ring {
        let mut positions = BTreeMap::new();
        for node in members {
            for t in 0..tokens.max(1) {
                positions.insert(StableHasher::hash_of(&("token", node, t)), node);
            }
        }
        let mut nodes: Vec<NodeId> = positions.values().copied().collect();
        nodes.sort_unstable();
        nodes.dedup();
        Ring {
            positions: positions.into_iter().collect(),
            distinct: nodes.len(),
        }
    }

    /// Distinct physical nodes in the ring.
    pub fn len(&self) -> usize {
        self.distinct
    }

    /// Whether the ring has no member.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// Every member, distinct, clockwise from `key`'s position (section 4.3: "the list of
    /// nodes that is responsible for storing a particular key is called the preference
    /// list ... skipping positions in the ring to ensure that the list contains only
    /// distinct physical nodes").
    pub fn preference(&self, key: Key) -> Vec<NodeId> {
        let from = key_position(key);
        let start = self.positions.partition_point(|(at, _)| *at < from);
        let (before, after) = self.positions.split_at(start);
        let clockwise = after.iter().chain(before).map(|(_, node)| node);
        let mut list: Vec<NodeId> = Vec::with_capacity(self.distinct);
        for node in clockwise {
            if !list.contains(node) {
                list.push(*node);
                if list.len() == self.distinct {
                    break;
                }
            }
        }
        list
    }
}
