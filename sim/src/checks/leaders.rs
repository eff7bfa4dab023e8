//! Who leads when: the run's role changes replayed in time order, for the leadership checks.

use crate::engine::RoleChange;
use simkv_protocols::{NodeId, RoleSpec, Time};

/// Every node's role and term at one point of the replay.
pub(super) struct Cluster {
    nodes: Vec<Option<(&'static RoleSpec, Option<u64>)>>,
}

/// A node leading, with its term.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Leader {
    pub node: NodeId,
    pub term: Option<u64>,
}

impl std::fmt::Display for Leader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.term {
            Some(term) => write!(f, "{} (term {term})", self.node),
            None => write!(f, "{}", self.node),
        }
    }
}

impl Cluster {
    /// Nodes not started yet.
    pub(super) fn new() -> Cluster {
        Cluster { nodes: Vec::new() }
    }

    /// Applies one change.
    pub(super) fn apply(&mut self, change: &RoleChange) {
        let i = change.node.index();
        if self.nodes.len() <= i {
            self.nodes.resize(i + 1, None);
        }
        self.nodes[i] = change.role.map(|r| (r, change.term));
    }

    /// Every node holding a leading role now, in node order.
    pub(super) fn leaders(&self) -> Vec<Leader> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| match n {
                Some((role, term)) if role.leads => Some(Leader {
                    node: NodeId(i as u16),
                    term: *term,
                }),
                _ => None,
            })
            .collect()
    }

    /// A leader of the newest term any running node is in (any leader, for a protocol
    /// without terms): one whom no node has moved past.
    pub(super) fn current_leader(&self) -> Option<Leader> {
        let newest = self.nodes.iter().flatten().filter_map(|(_, t)| *t).max();
        self.leaders()
            .into_iter()
            .find(|l| l.term.is_none() || l.term == newest)
    }
}

/// The changes up to and including `until`, applied, and the index of the first change
/// after it.
pub(super) fn state_at(changes: &[RoleChange], until: Time) -> (Cluster, usize) {
    let mut cluster = Cluster::new();
    let mut next = 0;
    while next < changes.len() && changes[next].at <= until {
        cluster.apply(&changes[next]);
        next += 1;
    }
    (cluster, next)
}
