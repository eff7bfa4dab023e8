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

#[cfg(test)]
pub(super) mod tests {
    use super::super::RunView;
    use crate::engine::RoleChange;
    use crate::history::History;
    use crate::scenario::{load_str, Overrides, Scenario};
    use simkv_protocols::{NodeId, RoleKind, Span, Time};

    /// A 3-node raft scenario stating `checks` (TOML lines of `[checks]`).
    pub(in crate::checks) fn scenario(checks: &str) -> Scenario {
        let text = format!(
            "name = \"t\"\ndescription = \"t\"\nduration = \"20s\"\n\n[cluster]\n\
             protocol = \"raft\"\nnodes = 3\n\n[checks]\nliveness = \"1s\"\n{checks}\n"
        );
        load_str("t.toml", &text, &Overrides::default()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `at` seconds (fractions allowed, in milliseconds).
    pub(in crate::checks) fn secs(ms: u64) -> Time {
        Time::ZERO + Span::millis(ms)
    }

    /// Node `node` (from 1) takes raft's role `role` in `term` at `ms` milliseconds; `None`:
    /// it crashes.
    pub(in crate::checks) fn change(
        ms: u64,
        node: u16,
        role: Option<&str>,
        term: u64,
    ) -> RoleChange {
        let specs = <simkv_protocols::raft::Role as RoleKind>::SPECS;
        RoleChange {
            at: secs(ms),
            node: NodeId(node - 1),
            role: role.map(|r| specs.iter().find(|s| s.name == r).expect("a raft role")),
            term: role.map(|_| term),
        }
    }

    /// A view of a run of `scenario` with these roles and calm stretches, healed last at
    /// `healed` and ending at 20s.
    pub(in crate::checks) fn view<'a>(
        scenario: &'a Scenario,
        history: &'a History,
        roles: &'a [RoleChange],
        calm: &'a [(Time, Time)],
        healed: Option<Time>,
    ) -> RunView<'a> {
        RunView {
            scenario,
            history,
            replicas: &[],
            invariant_violation: None,
            hit_event_limit: false,
            events: 0,
            converged_after_stop: None,
            healed_at: healed,
            workload_stopped: secs(20_000),
            end: secs(20_000),
            messages_sent: 0,
            roles,
            calm,
            declared_dead: &[],
        }
    }
}
