//! The observer: what the run measures about the cluster beyond counters. Where each node
//! stands (its [`Side`], recomputed after every fault), whether the cluster is whole and
//! since when, how far the replicas had drifted apart at each moment it was made whole, and
//! when they first agreed once the clients stopped.
//!
//! It reads the nodes and the topology and changes neither, so it can never move a run.

use super::nodes::Nodes;
use crate::network::{Links, Topology};
use simkv_protocols::{Protocol, Time};

/// Where the node a client invoked an operation on stood when it was invoked: the CAP
/// table's columns.
///
/// Declared in the alphabetical order of the names, so that maps keyed by side list them
/// as maps keyed by their names did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// Frozen, paused or crashed.
    Down,
    /// In a group of mutually reachable running nodes holding a majority of the cluster.
    Majority,
    /// In a group of mutually reachable running nodes holding no majority.
    Minority,
    /// No fault in force: every link up and at the scenario's behaviour, every node running
    /// at its normal speed.
    Whole,
}

impl Side {
    /// `down`, `majority`, `minority` or `whole`, as reports name it.
    pub fn name(self) -> &'static str {
        match self {
            Side::Down => "down",
            Side::Majority => "majority",
            Side::Minority => "minority",
            Side::Whole => "whole",
        }
    }
}

/// What the observer has seen so far.
pub(super) struct Observer {
    /// When the last fault of any kind happened while the cluster was whole, if it is whole.
    pub(super) healed_at: Option<Time>,
    /// Each node's side now; recomputed after every fault.
    sides: Vec<Side>,
    /// At each moment the cluster was made whole: keys the replicas disagreed on.
    pub(super) conflicts_at_heal: Vec<(Time, usize)>,
    /// When replicas first agreed after the clients stopped.
    pub(super) converged_at: Option<Time>,
    /// The calm stretches closed so far, `[from, until)` (see `RunOutput::calm`).
    pub(super) calm: Vec<(Time, Time)>,
}

/// Whether no fault is in force: every link up and behaving as the scenario's `[network]`
/// says, no node frozen, paused, crashed or slow.
///
/// A degraded network (links that lose more, or take longer, than the scenario's) and a
/// slow node do not cut the cluster, but they are not whole either: liveness is promised,
/// within its window, for the network the scenario describes, and a link that loses every
/// message is a cut in all but name. So liveness is judged from the moment they are undone
/// (by `network = "base"`, `unslow` or a heal; the final heal undoes them too), and while
/// they are in force every node's side is computed from reachability like under any fault
/// (all links up, no node down: every node is on the majority side).
pub(super) fn is_whole<P: Protocol>(topology: &Topology, links: &Links, nodes: &Nodes<P>) -> bool {
    topology.is_healed()
        && links.is_base()
        && nodes.iter().all(|n| {
            n.outside
                || (!n.frozen && !n.paused && n.state.is_some() && n.slow == 1 && !n.disk.full)
        })
}

impl Observer {
    /// An observer of `nodes` nodes, all whole at time zero.
    pub(super) fn new(nodes: usize) -> Observer {
        Observer {
            healed_at: Some(Time::ZERO),
            sides: vec![Side::Whole; nodes],
            conflicts_at_heal: Vec::new(),
            converged_at: None,
            calm: Vec::new(),
        }
    }

    /// Makes `now` the last heal (the VOPR liveness mode's partial heal, whole enough).
    pub(super) fn set_healed(&mut self, now: Time) {
        self.close_calm(now);
        self.healed_at = Some(now);
    }

    /// Ends the calm stretch in progress, if any, at `now`.
    pub(super) fn close_calm(&mut self, now: Time) {
        if let Some(from) = self.healed_at {
            if now > from {
                self.calm.push((from, now));
            }
        }
    }

    /// Each node's side now, by node index.
    #[inline]
    pub(super) fn sides(&self) -> &[Side] {
        &self.sides
    }

    /// Takes note of a fault just applied at `now`. Liveness is judged from the last fault
    /// of any kind once the cluster is whole: a clock jump or an operator's command also
    /// disturbs it (an election, a halt).
    pub(super) fn after_fault<P: Protocol>(
        &mut self,
        now: Time,
        topology: &Topology,
        links: &Links,
        nodes: &Nodes<P>,
    ) {
        self.close_calm(now);
        // What a slow node or a degraded network scheduled before it was undone still
        // arrives late (FIFO holds its link's later messages behind it): the cluster is
        // whole from the moment the last of it is due, not from the undoing.
        let settled = now.max(links.lingers_until()).max(nodes.lingers_until());
        match (is_whole(topology, links, nodes), self.healed_at) {
            (true, None) => {
                self.healed_at = Some(settled);
                let diverged = diverged_keys(nodes);
                self.conflicts_at_heal.push((now, diverged));
            }
            (true, Some(_)) => self.healed_at = Some(settled),
            (false, _) => self.healed_at = None,
        }
        self.sides = compute_sides(topology, links, nodes);
    }

    /// Once clients have stopped, notes the first moment every running replica agrees.
    /// Digests are compared only after a handler ran and only in the quiet settle phase, so
    /// this costs nothing while the workload runs.
    #[inline]
    pub(super) fn maybe_note_convergence<P: Protocol>(&mut self, now: Time, nodes: &Nodes<P>) {
        if self.converged_at.is_some() {
            return;
        }
        if P::PARTITIONS_KEYS {
            if diverged_keys(nodes) == 0 {
                self.converged_at = Some(now);
            }
            return;
        }
        let mut digests = nodes.iter().filter_map(|n| n.state.as_ref().map(P::digest));
        let Some(first) = digests.next() else {
            return;
        };
        if digests.all(|d| d == first) {
            self.converged_at = Some(now);
        }
    }
}

/// Keys on which the running replicas disagree (measured when the cluster is made whole:
/// how much a partition let the sides drift apart). With a ring ([`Protocol::PARTITIONS_KEYS`])
/// only each key's replicas are compared, value and siblings.
pub(super) fn diverged_keys<P: Protocol>(nodes: &Nodes<P>) -> usize {
    if P::PARTITIONS_KEYS {
        return diverged_replicas(nodes);
    }
    let stores: Vec<_> = nodes
        .iter()
        .filter_map(|n| n.state.as_ref().map(P::store))
        .collect();
    let Some((first, rest)) = stores.split_first() else {
        return 0;
    };
    let mut keys: Vec<_> = stores.iter().flat_map(|s| s.keys().copied()).collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter()
        .filter(|k| rest.iter().any(|s| s.get(k) != first.get(k)))
        .count()
}

/// Each node's side, from the current topology and node faults.
fn compute_sides<P: Protocol>(topology: &Topology, links: &Links, nodes: &Nodes<P>) -> Vec<Side> {
    let n = nodes.len();
    if is_whole(topology, links, nodes) {
        return vec![Side::Whole; n];
    }
    let down: Vec<bool> = nodes
        .iter()
        .map(|s| s.outside || s.frozen || s.paused || s.state.is_none())
        .collect();
    // A majority of the cluster as it is now: nodes outside it (not joined yet, or gone
    // for good) count for no side.
    let members = nodes.iter().filter(|s| !s.outside).count();
    let reach = topology.reachability(&down);
    (0..n)
        .map(|a| {
            if down[a] {
                return Side::Down;
            }
            let group = (0..n).filter(|b| reach[a][*b] && reach[*b][a]).count();
            if group * 2 > members {
                Side::Majority
            } else {
                Side::Minority
            }
        })
        .collect()
}

/// [`diverged_keys`] for a protocol whose ring gives each key its own replicas.
fn diverged_replicas<P: Protocol>(nodes: &Nodes<P>) -> usize {
    let running: Vec<&P> = nodes.iter().filter_map(|n| n.state.as_ref()).collect();
    let states: Vec<_> = running.iter().map(|p| (p.store(), p.siblings())).collect();
    let mut keys: Vec<_> = states.iter().flat_map(|(s, _)| s.keys().copied()).collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter()
        .filter(|k| {
            let mut owners = running
                .iter()
                .zip(&states)
                .filter(|(p, _)| p.replicates(*k));
            let Some((_, (s0, b0))) = owners.next() else {
                return false;
            };
            owners.any(|(_, (s, b))| s.get(k) != s0.get(k) || b.get(k) != b0.get(k))
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::Side;

    #[test]
    fn sides_order_as_their_names_and_serialize_as_them() {
        let all = [Side::Whole, Side::Majority, Side::Minority, Side::Down];
        let mut by_side = all;
        by_side.sort();
        let mut by_name = all;
        by_name.sort_by_key(|s| s.name());
        assert_eq!(by_side, by_name);
        for side in all {
            let json = serde_json::to_string(&side).expect("serializes");
            assert_eq!(json, format!("\"{}\"", side.name()));
            assert_eq!(side.name(), format!("{side:?}").to_lowercase());
        }
    }
}
