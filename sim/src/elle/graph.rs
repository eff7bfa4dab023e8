//! The dependency graph and the search for cycles (Elle section 4.2; Adya section 3.3).
//!
//! Nodes are transactions, then one node per completion event, in history order ("time
//! points"). Real-time order is encoded through the time points rather than as pairs:
//! a committed transaction has an edge to the time point of its completion, the time points
//! form a chain, and each time point has an edge to every transaction invoked after it and
//! before the next completion. A path T1 -> ... -> T2 through time points exists exactly when
//! T1 completed before T2 was invoked, and the graph has O(n) edges whatever the concurrency.
//! Edges into a time point weigh 1 (the real-time edge), the others out of one weigh 0, so
//! cycle lengths count transaction-to-transaction steps.
//!
//! Cycle search: for each anomaly class (an [`Spec`]: which edge kinds a cycle may use, how
//! many rw edges it has, which kinds it must include), the strongly connected components of
//! the graph restricted to those kinds (petgraph's `kosaraju_scc` on a copy with only those kinds, which is iterative: its
//! `tarjan_scc` recurses once per node on a path and overflows the stack on the time chain
//! of a million-transaction history), then, inside each component, a 0-1 breadth-first
//! search over (node, rw edges so far, requirements met) from each start that a cycle of the
//! class must pass, stopping at the shortest length found. Every step is linear in the
//! component, and the starts are cut off by [`Limits::max_expansions`].

use super::anomalies::{Analysis, PROCESS, REALTIME, RW, WR, WW};
use super::{Limits, Status, TxnHistory, TxnId};
use crate::lincheck::model::FxHashMap;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use petgraph::Direction;
use std::collections::VecDeque;

/// An anomaly class as a cycle shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spec {
    /// Its name: `G0`, `G1c`, `G-single`, `G2-item`, with `-process` or `-realtime`.
    pub name: &'static str,
    /// The edge kinds a cycle may use.
    pub allowed: u8,
    /// The fewest rw edges.
    pub rw_min: u8,
    /// The most rw edges (2 means any number from 2).
    pub rw_max: u8,
    /// Kinds of which the cycle must use at least one (each mask on its own; 0: none).
    pub need: [u8; 2],
}

const DATA: u8 = WW | WR | RW;

/// The classes, weakest-edged first, as Elle searches them.
pub const SPECS: [Spec; 12] = [
    spec("G0", WW, 0, 0, [0, 0]),
    spec("G1c", WW | WR, 0, 0, [WR, 0]),
    spec("G-single", DATA, 1, 1, [0, 0]),
    spec("G2-item", DATA, 2, 2, [0, 0]),
    spec("G0-process", WW | PROCESS, 0, 0, [PROCESS, 0]),
    spec("G1c-process", WW | WR | PROCESS, 0, 0, [WR, PROCESS]),
    spec("G-single-process", DATA | PROCESS, 1, 1, [PROCESS, 0]),
    spec("G2-item-process", DATA | PROCESS, 2, 2, [PROCESS, 0]),
    spec("G0-realtime", WW | PROCESS | REALTIME, 0, 0, [REALTIME, 0]),
    spec(
        "G1c-realtime",
        WW | WR | PROCESS | REALTIME,
        0,
        0,
        [WR, REALTIME],
    ),
    spec(
        "G-single-realtime",
        DATA | PROCESS | REALTIME,
        1,
        1,
        [REALTIME, 0],
    ),
    spec(
        "G2-item-realtime",
        DATA | PROCESS | REALTIME,
        2,
        2,
        [REALTIME, 0],
    ),
];

const fn spec(name: &'static str, allowed: u8, rw_min: u8, rw_max: u8, need: [u8; 2]) -> Spec {
    Spec {
        name,
        allowed,
        rw_min,
        rw_max,
        need,
    }
}

/// The dependency graph of a history.
pub struct DepGraph {
    /// Transactions are nodes `0..txns`; time points follow.
    pub txns: usize,
    /// Edge weights are kind bits.
    pub graph: DiGraph<(), u8, u32>,
}

/// One step of a cycle: from, to, and the kind of edge taken (one bit).
pub type Step = (TxnId, TxnId, u8);

/// A cycle found: its class, its steps, and whether the search for it was cut short (then it
/// is the shortest found, not necessarily the shortest there is).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cycle {
    /// The class.
    pub spec: Spec,
    /// Transaction-to-transaction steps, the last ending where the first starts.
    pub steps: Vec<Step>,
    /// Whether the search stopped on its budget.
    pub cut: bool,
}

impl DepGraph {
    /// Builds the graph: the analysis's data edges, process order and real-time order.
    pub fn build(h: &TxnHistory, a: &Analysis) -> DepGraph {
        let n = h.txns.len();
        let mut edges: Vec<(u32, u32, u8)> = a.edges.clone();
        process_edges(h, &mut edges);
        let points = realtime_edges(h, &mut edges);
        edges.sort_unstable();
        let mut graph = DiGraph::<(), u8, u32>::with_capacity(n + points, edges.len());
        for _ in 0..n + points {
            graph.add_node(());
        }
        let mut i = 0;
        while i < edges.len() {
            let (x, y, mut kinds) = edges[i];
            i += 1;
            while i < edges.len() && edges[i].0 == x && edges[i].1 == y {
                kinds |= edges[i].2;
                i += 1;
            }
            graph.add_edge(
                NodeIndex::new(x as usize),
                NodeIndex::new(y as usize),
                kinds,
            );
        }
        DepGraph { txns: n, graph }
    }

    /// The cycles of every class, at most `limits.max_reported` per class (and how many
    /// components had one, in the second field).
    pub fn cycles(&self, limits: &Limits) -> Vec<(Vec<Cycle>, usize)> {
        // Most histories have no cycle at all: one pass over every edge says so.
        let any = petgraph::algo::kosaraju_scc(&self.graph)
            .iter()
            .any(|c| c.len() > 1);
        SPECS
            .iter()
            .map(|spec| match any {
                true => self.cycles_of(spec, limits),
                false => (Vec::new(), 0),
            })
            .collect()
    }

    fn cycles_of(&self, spec: &Spec, limits: &Limits) -> (Vec<Cycle>, usize) {
        let allowed = spec.allowed;
        // A copy restricted to the allowed kinds (petgraph 0.6's `EdgeFiltered` answers
        // incoming neighbours wrongly, which `kosaraju_scc` walks); every node is kept, so
        // indices agree.
        let restricted = self
            .graph
            .filter_map(|_, _| Some(()), |_, w| (w & allowed != 0).then_some(()));
        let components = petgraph::algo::kosaraju_scc(&restricted);
        let mut comp = vec![u32::MAX; self.graph.node_count()];
        let mut found = Vec::new();
        let mut count = 0;
        let mut sorted: Vec<Vec<NodeIndex<u32>>> =
            components.into_iter().filter(|c| c.len() > 1).collect();
        for c in &mut sorted {
            c.sort_unstable();
        }
        // Components in order of their first node, so that reports are deterministic.
        sorted.sort_unstable_by_key(|c| c[0]);
        for (i, c) in sorted.iter().enumerate() {
            for n in c {
                comp[n.index()] = i as u32;
            }
        }
        for (i, c) in sorted.iter().enumerate() {
            if let Some(cycle) = self.shortest_in(spec, c, &comp, i as u32, limits) {
                count += 1;
                if found.len() < limits.max_reported {
                    found.push(cycle);
                }
            }
        }
        (found, count)
    }

    /// The shortest cycle of the class inside one component, if any.
    fn shortest_in(
        &self,
        spec: &Spec,
        nodes: &[NodeIndex<u32>],
        comp: &[u32],
        id: u32,
        limits: &Limits,
    ) -> Option<Cycle> {
        // A cycle passes through the tail of each of its edges: start from the tails of the
        // rarest kind it needs (rw for G-single, the required kind otherwise).
        let key_kind = if spec.rw_min > 0 {
            RW
        } else if spec.need[1] != 0 {
            spec.need[1]
        } else {
            spec.need[0]
        };
        let starts: Vec<NodeIndex<u32>> = nodes
            .iter()
            .copied()
            .filter(|n| n.index() < self.txns)
            .filter(|n| {
                key_kind == 0
                    || self
                        .graph
                        .edges_directed(*n, Direction::Outgoing)
                        .any(|e| e.weight() & key_kind != 0 && comp[e.target().index()] == id)
            })
            .collect();
        let mut best: Option<Vec<Step>> = None;
        let mut budget = limits.max_expansions;
        let mut cut = false;
        for s in starts {
            let bound = best.as_ref().map_or(u32::MAX, |b| b.len() as u32);
            if bound <= 2 {
                break;
            }
            match self.bfs(spec, s, comp, id, bound, &mut budget) {
                Search::Found(steps) => best = Some(steps),
                Search::None => {}
                Search::OutOfBudget => {
                    cut = true;
                    break;
                }
            }
        }
        best.map(|steps| Cycle {
            spec: *spec,
            steps,
            cut,
        })
    }

    /// 0-1 breadth-first search for the shortest cycle of the class through `s` shorter
    /// than `bound`.
    fn bfs(
        &self,
        spec: &Spec,
        s: NodeIndex<u32>,
        comp: &[u32],
        id: u32,
        bound: u32,
        budget: &mut u64,
    ) -> Search {
        // A state is (node, rw edges so far (0, 1, 2+), need[0] met, need[1] met).
        let pack = |n: usize, rw: u8, a: bool, b: bool| -> u64 {
            (n as u64) << 4 | u64::from(rw) << 2 | u64::from(a) << 1 | u64::from(b)
        };
        let start = pack(s.index(), 0, spec.need[0] == 0, spec.need[1] == 0);
        // state -> (distance, previous state, edge kind taken)
        let mut seen: FxHashMap<u64, (u32, u64, u8)> = FxHashMap::default();
        let mut queue: VecDeque<(u64, u32)> = VecDeque::new();
        seen.insert(start, (0, u64::MAX, 0));
        queue.push_back((start, 0));
        // The best way back to `s` found so far: (length, last state before, edge kind).
        let mut back: Option<(u32, u64, u8)> = None;
        while let Some((state, dist)) = queue.pop_front() {
            if seen.get(&state).is_some_and(|(d, _, _)| *d < dist) {
                continue;
            }
            if back.is_some_and(|(d, _, _)| dist >= d) {
                break;
            }
            if dist >= bound {
                return Search::None;
            }
            if *budget == 0 {
                return Search::OutOfBudget;
            }
            *budget -= 1;
            let node = (state >> 4) as usize;
            let from_time = node >= self.txns;
            for e in self.graph.edges(NodeIndex::new(node)) {
                let target = e.target().index();
                if comp[target] != id {
                    continue;
                }
                let usable = e.weight() & spec.allowed;
                for bit in [WW, WR, RW, PROCESS, REALTIME] {
                    if usable & bit == 0 {
                        continue;
                    }
                    let mut rw = ((state >> 2) & 3) as u8;
                    if bit == RW {
                        rw = (rw + 1).min(2);
                        if rw > spec.rw_max {
                            continue;
                        }
                    }
                    let a = state & 2 != 0 || spec.need[0] & bit != 0;
                    let b = state & 1 != 0 || spec.need[1] & bit != 0;
                    let next = pack(target, rw, a, b);
                    let w = u32::from(!from_time);
                    let d = dist + w;
                    if target == s.index() {
                        // Back at the start: a cycle, if it has the class's shape.
                        if self.goal(spec, next) && back.is_none_or(|(old, _, _)| d < old) {
                            back = Some((d, state, bit));
                        }
                        continue;
                    }
                    if seen.get(&next).is_some_and(|(old, _, _)| *old <= d) {
                        continue;
                    }
                    seen.insert(next, (d, state, bit));
                    if w == 0 {
                        queue.push_front((next, d));
                    } else {
                        queue.push_back((next, d));
                    }
                }
            }
        }
        match back {
            Some((d, last, bit)) if d < bound => {
                Search::Found(self.unwind(&seen, last, Some((s.index(), bit))))
            }
            _ => Search::None,
        }
    }

    fn goal(&self, spec: &Spec, state: u64) -> bool {
        let rw = ((state >> 2) & 3) as u8;
        rw >= spec.rw_min && rw <= spec.rw_max && state & 2 != 0 && state & 1 != 0
    }

    /// The steps of the path ending in `state`, time points folded into real-time steps.
    fn unwind(
        &self,
        seen: &FxHashMap<u64, (u32, u64, u8)>,
        state: u64,
        last: Option<(usize, u8)>,
    ) -> Vec<Step> {
        let mut hops: Vec<(usize, usize, u8)> = Vec::new();
        if let Some((to, kind)) = last {
            hops.push(((state >> 4) as usize, to, kind));
        }
        let mut at = state;
        while let Some(&(_, prev, kind)) = seen.get(&at) {
            if prev == u64::MAX {
                break;
            }
            hops.push(((prev >> 4) as usize, (at >> 4) as usize, kind));
            at = prev;
        }
        hops.reverse();
        let mut steps = Vec::new();
        let mut from: Option<usize> = None;
        for (x, y, kind) in hops {
            if x < self.txns && y < self.txns {
                steps.push((x as TxnId, y as TxnId, kind));
            } else if x < self.txns {
                from = Some(x);
            } else if y < self.txns {
                if let Some(f) = from.take() {
                    steps.push((f as TxnId, y as TxnId, REALTIME));
                }
            }
        }
        steps
    }
}

enum Search {
    Found(Vec<Step>),
    None,
    OutOfBudget,
}

/// Process order: each committed transaction precedes the next transaction (not aborted)
/// of its process. An `:info` one precedes nothing: it may take effect any time later.
fn process_edges(h: &TxnHistory, edges: &mut Vec<(u32, u32, u8)>) {
    let mut last: std::collections::BTreeMap<u64, TxnId> = std::collections::BTreeMap::new();
    for (t, txn) in h.txns.iter().enumerate() {
        if txn.status == Status::Fail {
            continue;
        }
        if let Some(&p) = last.get(&txn.process) {
            if h.txns[p as usize].status == Status::Ok {
                edges.push((p, t as TxnId, PROCESS));
            }
        }
        last.insert(txn.process, t as TxnId);
    }
}

/// Real-time order through time points (see the module's documentation); returns how many
/// time points there are.
fn realtime_edges(h: &TxnHistory, edges: &mut Vec<(u32, u32, u8)>) -> usize {
    let n = h.txns.len() as u32;
    // Completions of committed transactions, in history order.
    let mut done: Vec<(u64, TxnId)> = h
        .txns
        .iter()
        .enumerate()
        .filter(|(_, t)| t.status == Status::Ok)
        .filter_map(|(i, t)| t.completed_at.map(|c| (c, i as TxnId)))
        .collect();
    done.sort_unstable();
    for (p, (_, t)) in done.iter().enumerate() {
        edges.push((*t, n + p as u32, REALTIME));
        if p + 1 < done.len() {
            edges.push((n + p as u32, n + p as u32 + 1, REALTIME));
        }
    }
    for (t, txn) in h.txns.iter().enumerate() {
        if txn.status == Status::Fail {
            continue;
        }
        // The last completion before this invocation.
        let before = done.partition_point(|(c, _)| *c < txn.invoked_at);
        if before > 0 {
            edges.push((n + before as u32 - 1, t as TxnId, REALTIME));
        }
    }
    done.len()
}
