//! The scripted network: which links are up, how long messages take, what gets lost.
//!
//! Guarantees, as the engine implements them:
//! - A message crosses a link only if the link is up both when it is sent and when it would
//!   be delivered: a partition that starts while a message is in flight loses it, as an
//!   iptables rule loses packets still on the wire.
//! - With `fifo`, messages on one directed link arrive in the order they were sent, except a
//!   message picked for reordering, which is held back and overtaken. Without `fifo`, each
//!   message's delay is drawn independently and messages overtake freely.
//! - A duplicated message arrives twice, each copy with its own delay.
//! - Client links lose nothing and keep order; freezing or crashing a node still cuts them.
//!   `network` faults leave them alone. Clients placed outside the cluster (the default) are
//!   never partitioned. A colocated client ([`ClientPlacement`]) runs beside its node: its
//!   link to that node is local and never cut, and its link to another node is up while
//!   the link between the two nodes is up in the same direction and its node is not frozen
//!   (checked when a request or reply is sent and when it would arrive, as for node
//!   messages).
//! - A `network` fault changes the behaviour of the links in its scope for messages sent
//!   from then on; messages already in flight keep the delay they were given.
//! - A message to or from a slow node takes the drawn latency times the node's factor (times
//!   both factors between two slow nodes); the stretch is applied before FIFO ordering.

use crate::rng::Stream;
use crate::scenario::fault_kinds::NetworkFault;
use crate::scenario::{Latency, LinkBehaviour, Network, PartitionShape, Placement, Workload};
use petgraph::graphmap::DiGraphMap;
use simkv_protocols::{ClientId, NodeId, Span, Time};

/// Where the clients' history processes stand, which decides whether a partition cuts
/// their links.
#[derive(Clone, Copy, Debug)]
pub struct ClientPlacement {
    placement: Placement,
    in_flight: u32,
    nodes: u16,
}

impl ClientPlacement {
    /// The placement of `workload`'s clients in a cluster of `nodes` nodes.
    pub fn new(workload: &Workload, nodes: u16) -> ClientPlacement {
        ClientPlacement {
            placement: workload.placement,
            in_flight: workload.in_flight.max(1),
            nodes: nodes.max(1),
        }
    }

    /// The node `process` runs beside: client `c`'s slots beside node `c mod N` when
    /// colocated; `None` outside the cluster.
    #[inline]
    pub fn home(&self, process: ClientId) -> Option<NodeId> {
        match self.placement {
            Placement::Outside => None,
            Placement::Colocated => {
                let client = process.0 / self.in_flight;
                Some(NodeId((client % u32::from(self.nodes)) as u16))
            }
        }
    }

    /// Whether a message between `process` and `node` can cross now, toward the node
    /// (a request) or back (a reply). Always, outside the cluster or on the local link to
    /// its own node (where the node's own freeze or crash is what cuts it, as for any
    /// client). Otherwise the link between the two nodes must be up in that direction, and
    /// its own node not frozen: a freeze cuts the machine off, client and all.
    #[inline]
    pub fn link_up(
        &self,
        topology: &Topology,
        process: ClientId,
        node: NodeId,
        toward_node: bool,
        frozen: impl Fn(NodeId) -> bool,
    ) -> bool {
        let Some(home) = self.home(process) else {
            return true;
        };
        if home == node {
            return true;
        }
        let (from, to) = if toward_node {
            (home, node)
        } else {
            (node, home)
        };
        topology.is_up(from, to) && !frozen(home)
    }
}

/// Which directed links are up. The graph is the source of truth for reports ("who could
/// reach whom"); the dense matrix answers the hot path's question in one load.
#[derive(Clone, Debug)]
pub struct Topology {
    nodes: usize,
    graph: DiGraphMap<u16, ()>,
    blocked: Vec<bool>,
}

impl Topology {
    /// A fully connected cluster of `nodes` nodes.
    pub fn new(nodes: usize) -> Topology {
        let mut topology = Topology {
            nodes,
            graph: DiGraphMap::new(),
            blocked: vec![false; nodes * nodes],
        };
        topology.heal();
        topology
    }

    /// Whether `from` can currently send to `to`.
    #[inline]
    pub fn is_up(&self, from: NodeId, to: NodeId) -> bool {
        !self.blocked[from.index() * self.nodes + to.index()]
    }

    /// Whether every link is up.
    pub fn is_healed(&self) -> bool {
        !self.blocked.iter().any(|b| *b)
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.set_links(|_, _| true);
    }

    fn set_links(&mut self, up: impl Fn(usize, usize) -> bool) {
        self.graph.clear();
        for a in 0..self.nodes {
            self.graph.add_node(a as u16);
        }
        for a in 0..self.nodes {
            for b in 0..self.nodes {
                let link_up = a == b || up(a, b);
                self.blocked[a * self.nodes + b] = !link_up;
                if link_up && a != b {
                    self.graph.add_edge(a as u16, b as u16, ());
                }
            }
        }
    }

    /// Applies a partition shape, replacing the current partition. Random shapes draw from
    /// `rng` (the faults stream). Returns the groups as they were resolved, for reports.
    pub fn partition(&mut self, shape: &PartitionShape, rng: &mut Stream) -> String {
        let n = self.nodes;
        let mut order: Vec<usize> = (0..n).collect();
        let groups_of = |groups: &[Vec<usize>]| {
            let mut group = vec![usize::MAX; n];
            for (g, members) in groups.iter().enumerate() {
                for m in members {
                    group[*m] = g;
                }
            }
            group
        };
        match shape {
            PartitionShape::Groups(groups) => {
                let groups: Vec<Vec<usize>> = groups
                    .iter()
                    .map(|g| g.iter().map(|n| n.index()).collect())
                    .collect();
                // Nodes in no group form one more group together.
                let group = groups_of(&groups);
                self.set_links(|a, b| group[a] == group[b]);
            }
            PartitionShape::OneWay { from, to } => {
                let from: Vec<usize> = from.iter().map(|n| n.index()).collect();
                let to: Vec<usize> = to.iter().map(|n| n.index()).collect();
                self.set_links(|a, b| !(from.contains(&a) && to.contains(&b)));
            }
            PartitionShape::Isolate(node) => {
                let x = node.index();
                self.set_links(|a, b| (a == x) == (b == x));
            }
            PartitionShape::IsolateRandom => {
                let x = rng.below(n as u64) as usize;
                self.set_links(|a, b| (a == x) == (b == x));
            }
            PartitionShape::MajorityMinority | PartitionShape::LeaderOn(_) => {
                rng.shuffle(&mut order);
                let majority = order[..n / 2 + 1].to_vec();
                let group = groups_of(&[majority]);
                self.set_links(|a, b| group[a] == group[b]);
            }
            PartitionShape::Bridge => {
                // Two halves that cannot talk, and one bridge node both halves see.
                rng.shuffle(&mut order);
                let bridge = order[0];
                let half = order[1..n.div_ceil(2)].to_vec();
                let group = groups_of(&[half]);
                self.set_links(|a, b| a == bridge || b == bridge || group[a] == group[b]);
            }
            PartitionShape::Ring => {
                rng.shuffle(&mut order);
                let mut position = vec![0; n];
                for (p, node) in order.iter().enumerate() {
                    position[*node] = p;
                }
                self.set_links(|a, b| {
                    let d = position[a].abs_diff(position[b]);
                    d <= 1 || d == n - 1
                });
            }
        }
        self.describe()
    }

    /// The connectivity, as a report line: strongly connected components, then any one-way
    /// links that remain between them.
    pub fn describe(&self) -> String {
        if self.is_healed() {
            return "all links up".to_string();
        }
        let mut components: Vec<Vec<u16>> = petgraph::algo::tarjan_scc(&self.graph)
            .into_iter()
            .map(|mut c| {
                c.sort_unstable();
                c
            })
            .collect();
        components.sort();
        let names: Vec<String> = components
            .iter()
            .map(|c| {
                let members: Vec<String> = c.iter().map(|n| NodeId(*n).to_string()).collect();
                format!("[{}]", members.join(" "))
            })
            .collect();
        format!(
            "{} reachable groups: {}",
            components.len(),
            names.join(" | ")
        )
    }

    /// `reach[a][b]`: whether `a` reaches `b` through up links and nodes not `down`.
    pub fn reachability(&self, down: &[bool]) -> Vec<Vec<bool>> {
        let n = self.nodes;
        let mut reach = vec![vec![false; n]; n];
        for (a, row) in reach.iter_mut().enumerate() {
            if down[a] {
                continue;
            }
            let mut stack = vec![a];
            row[a] = true;
            while let Some(x) = stack.pop() {
                for y in 0..n {
                    if !row[y] && !down[y] && !self.blocked[x * n + y] {
                        row[y] = true;
                        stack.push(y);
                    }
                }
            }
        }
        reach
    }

    /// Which nodes `from` can reach, directly or through others (what a gossip or a
    /// forwarding protocol could, in principle, learn from).
    pub fn reachable_from(&self, from: NodeId) -> Vec<NodeId> {
        let mut seen: Vec<NodeId> = Vec::new();
        let mut dfs = petgraph::visit::Dfs::new(&self.graph, from.0);
        while let Some(n) = dfs.next(&self.graph) {
            seen.push(NodeId(n));
        }
        seen.sort_unstable();
        seen
    }
}

/// Draws one delay from a latency distribution.
pub fn sample_latency(latency: &Latency, rng: &mut Stream) -> Span {
    match *latency {
        Latency::Constant(d) => d,
        Latency::Uniform(min, max) => Span(rng.between(min.as_micros(), max.as_micros())),
        Latency::Exponential(mean) => {
            let u = rng.unit_open_closed();
            Span((-(mean.as_micros() as f64) * u.ln()).round() as u64)
        }
        Latency::Normal(mean, stddev) => {
            // Box-Muller; one of the pair is enough.
            let u1 = rng.unit_open_closed();
            let u2 = rng.unit_open_closed();
            let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            let x = mean.as_micros() as f64 + z * stddev.as_micros() as f64;
            Span(x.max(0.0).round() as u64)
        }
    }
}

/// `span` `factor` times longer (a slow node's delays).
pub fn stretched(span: Span, factor: u64) -> Span {
    Span(span.as_micros().saturating_mul(factor))
}

/// Per-link behaviour, as the scenario set it and as faults have changed it since, and FIFO
/// bookkeeping.
#[derive(Clone, Debug)]
pub struct Links {
    nodes: usize,
    behaviour: Vec<LinkBehaviour>,
    /// The scenario's `[network]`, link by link, which `network = "base"` and heals restore.
    base: Vec<LinkBehaviour>,
    client: LinkBehaviour,
    fifo: bool,
    /// Latest scheduled arrival per directed link, for FIFO.
    last_arrival: Vec<Time>,
    /// Whether some link behaves otherwise than the scenario set it.
    degraded: bool,
    /// The latest arrival of a message routed while a link was degraded or one of its ends
    /// slow: such a fault outlasts its undoing until then (see [`Links::lingers_until`]).
    lingers: Time,
}

/// Where a message sent now will be, as the network decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Lost on the way.
    Dropped,
    /// Arrives at these times (two when duplicated).
    Arrives(Time, Option<Time>),
}

impl Links {
    /// The links of a cluster of `nodes` nodes.
    pub fn new(network: &Network, nodes: usize) -> Links {
        let mut behaviour = vec![network.default; nodes * nodes];
        for o in &network.links {
            behaviour[o.from.index() * nodes + o.to.index()] = o.behaviour;
        }
        Links {
            nodes,
            base: behaviour.clone(),
            behaviour,
            client: network.client,
            fifo: network.fifo,
            last_arrival: vec![Time::ZERO; nodes * nodes],
            degraded: false,
            lingers: Time::ZERO,
        }
    }

    /// How the link from `from` to `to` behaves now.
    pub fn behaviour(&self, from: NodeId, to: NodeId) -> LinkBehaviour {
        self.behaviour[from.index() * self.nodes + to.index()]
    }

    /// Applies a `network` fault: the links in its scope take its values from now on, or
    /// every link goes back to the scenario's.
    pub fn apply(&mut self, fault: &NetworkFault) {
        let (scope, change) = match fault {
            NetworkFault::Base => {
                self.restore_base();
                return;
            }
            NetworkFault::Change(scope, change) => (scope, change),
        };
        for a in 0..self.nodes {
            for b in (0..self.nodes).filter(|b| *b != a) {
                if scope.covers(NodeId(a as u16), NodeId(b as u16)) {
                    let link = &mut self.behaviour[a * self.nodes + b];
                    *link = change.over(*link);
                }
            }
        }
        self.degraded = !self.is_base();
    }

    /// Every link back to the scenario's behaviour; says whether any had changed.
    pub fn restore_base(&mut self) -> bool {
        let changed = !self.is_base();
        self.behaviour.clone_from(&self.base);
        self.degraded = false;
        changed
    }

    /// Until when messages sent under a degraded network or to or from a slow node are still
    /// on their way: FIFO holds every later message of their link behind them, so the
    /// network is not back to the scenario's before then, whatever undid the fault.
    pub fn lingers_until(&self) -> Time {
        self.lingers
    }

    /// Whether every link behaves as the scenario set it.
    pub fn is_base(&self) -> bool {
        self.behaviour == self.base
    }

    /// Decides the fate of a message sent now from `from` to `to`; its latency is drawn,
    /// then multiplied by `stretch` (the slow-down of its ends; 1 for none).
    pub fn route(
        &mut self,
        now: Time,
        from: NodeId,
        to: NodeId,
        stretch: u64,
        rng: &mut Stream,
    ) -> Fate {
        let link = from.index() * self.nodes + to.index();
        let behaviour = self.behaviour[link];
        if rng.chance_ppm(behaviour.drop_ppm) {
            return Fate::Dropped;
        }
        let first = self.arrival(now, link, &behaviour, stretch, rng);
        let second = rng
            .chance_ppm(behaviour.duplicate_ppm)
            .then(|| self.arrival(now, link, &behaviour, stretch, rng));
        if stretch > 1 || self.degraded {
            self.lingers = self.lingers.max(first).max(second.unwrap_or(first));
        }
        Fate::Arrives(first, second)
    }

    fn arrival(
        &mut self,
        now: Time,
        link: usize,
        b: &LinkBehaviour,
        stretch: u64,
        rng: &mut Stream,
    ) -> Time {
        let delay = stretched(sample_latency(&b.latency, rng), stretch);
        if rng.chance_ppm(b.reorder_ppm) {
            let hold = rng.between(
                b.reorder_delay.min.as_micros(),
                b.reorder_delay.max.as_micros(),
            );
            return now + delay + Span(hold);
        }
        let mut at = now + delay;
        if self.fifo {
            at = at.max(self.last_arrival[link]);
            self.last_arrival[link] = at;
        }
        at
    }

    /// The delay of a client request or reply.
    pub fn client_delay(&self, rng: &mut Stream) -> Span {
        sample_latency(&self.client.latency, rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Streams;

    fn n(i: u16) -> NodeId {
        NodeId(i)
    }

    #[test]
    fn groups_cut_exactly_the_links_between_them() {
        let mut t = Topology::new(5);
        let mut rng = Streams::new(1, 0).faults;
        let shape = PartitionShape::Groups(vec![vec![n(0), n(1)], vec![n(2), n(3)]]);
        let text = t.partition(&shape, &mut rng);
        assert!(t.is_up(n(0), n(1)) && t.is_up(n(3), n(2)));
        assert!(!t.is_up(n(0), n(2)) && !t.is_up(n(2), n(0)));
        // n5 was in no group: it forms its own.
        assert!(!t.is_up(n(4), n(0)) && !t.is_up(n(3), n(4)));
        assert_eq!(text, "3 reachable groups: [n1 n2] | [n3 n4] | [n5]");
        t.heal();
        assert!(t.is_healed());
        assert_eq!(t.describe(), "all links up");
    }

    #[test]
    fn colocated_clients_reach_what_their_node_reaches() {
        use crate::scenario::{Arrival, Backoff, KeyDistribution, OpKind, Target};
        let mut workload = Workload {
            clients: 4,
            keys: 1,
            key_distribution: KeyDistribution::Uniform,
            mix: vec![(OpKind::Get, 1)],
            arrival: Arrival::OpenLoop { rate_per_s: 1 },
            timeout: Span::secs(1),
            target: Target::Random,
            quorum: None,
            retries: 0,
            txn_ops: 1,
            backoff: Backoff::None,
            in_flight: 2,
            placement: Placement::Colocated,
            max_writes_per_key: None,
            max_ops: None,
            start: Span::ZERO,
            contexts: false,
            script: Vec::new(),
        };
        let placed = ClientPlacement::new(&workload, 3);
        // Client c's slots 2c and 2c+1 run beside node c mod 3.
        let homes: Vec<Option<NodeId>> = (0..8).map(|p| placed.home(ClientId(p))).collect();
        let expected = [0, 0, 1, 1, 2, 2, 0, 0].map(|i| Some(n(i)));
        assert_eq!(homes, expected);
        let mut t = Topology::new(3);
        let mut rng = Streams::new(1, 0).faults;
        let one_way = PartitionShape::OneWay {
            from: vec![n(0)],
            to: vec![n(1)],
        };
        t.partition(&one_way, &mut rng);
        let thawed = |_: NodeId| false;
        let c1 = ClientId(0); // beside n1
                              // Toward n2 the link is cut; back from n2 it is up; the local link never is cut.
        assert!(!placed.link_up(&t, c1, n(1), true, thawed));
        assert!(placed.link_up(&t, c1, n(1), false, thawed));
        assert!(placed.link_up(&t, c1, n(2), true, thawed));
        assert!(placed.link_up(&t, c1, n(0), true, thawed));
        t.partition(&PartitionShape::Isolate(n(0)), &mut rng);
        assert!(placed.link_up(&t, c1, n(0), true, thawed));
        assert!(!placed.link_up(&t, c1, n(2), false, thawed));
        // A freeze of its node cuts the machine off, client and all (but its local link,
        // where the frozen node answers nothing anyway).
        t.heal();
        let n1_frozen = |node: NodeId| node == n(0);
        assert!(!placed.link_up(&t, c1, n(2), true, n1_frozen));
        assert!(placed.link_up(&t, ClientId(2), n(2), true, n1_frozen));
        // Outside the cluster nothing is cut.
        workload.placement = Placement::Outside;
        let outside = ClientPlacement::new(&workload, 3);
        t.partition(&PartitionShape::Isolate(n(0)), &mut rng);
        assert_eq!(outside.home(c1), None);
        assert!(outside.link_up(&t, c1, n(2), true, n1_frozen));
    }

    #[test]
    fn one_way_partitions_cut_one_direction() {
        let mut t = Topology::new(3);
        let mut rng = Streams::new(1, 0).faults;
        let shape = PartitionShape::OneWay {
            from: vec![n(0)],
            to: vec![n(1)],
        };
        t.partition(&shape, &mut rng);
        assert!(!t.is_up(n(0), n(1)));
        assert!(t.is_up(n(1), n(0)));
        // n1 still reaches n2 through n3.
        assert_eq!(t.reachable_from(n(0)), vec![n(0), n(1), n(2)]);
    }

    #[test]
    fn random_shapes_have_their_shape() {
        let mut rng = Streams::new(3, 0).faults;
        for _ in 0..20 {
            let mut t = Topology::new(5);
            t.partition(&PartitionShape::MajorityMinority, &mut rng);
            let sizes: Vec<usize> = (0..5).map(|a| t.reachable_from(n(a)).len()).collect();
            assert_eq!(sizes.iter().filter(|s| **s == 3).count(), 3, "{sizes:?}");
            assert_eq!(sizes.iter().filter(|s| **s == 2).count(), 2, "{sizes:?}");

            t.partition(&PartitionShape::Ring, &mut rng);
            for a in 0..5 {
                let direct = (0..5).filter(|b| *b != a && t.is_up(n(a), n(*b))).count();
                assert_eq!(direct, 2);
            }

            t.partition(&PartitionShape::Bridge, &mut rng);
            let bridges = (0..5)
                .filter(|a| (0..5).all(|b| t.is_up(n(*a), n(b))))
                .count();
            assert_eq!(bridges, 1);
        }
    }

    #[test]
    fn fifo_links_never_reorder_without_reordering() {
        let net = Network {
            default: LinkBehaviour {
                latency: Latency::Uniform(Span(1), Span(1000)),
                drop_ppm: 0,
                duplicate_ppm: 0,
                reorder_ppm: 0,
                reorder_delay: Span(0).into(),
            },
            client: LinkBehaviour {
                latency: Latency::Constant(Span(1)),
                drop_ppm: 0,
                duplicate_ppm: 0,
                reorder_ppm: 0,
                reorder_delay: Span(0).into(),
            },
            links: vec![],
            fifo: true,
        };
        let mut links = Links::new(&net, 2);
        let mut rng = Streams::new(9, 0).network;
        let mut last = Time::ZERO;
        for t in 0..200 {
            match links.route(Time(t), n(0), n(1), 1, &mut rng) {
                Fate::Arrives(at, None) => {
                    assert!(at >= last);
                    last = at;
                }
                other => panic!("lossless link gave {other:?}"),
            }
        }
    }

    #[test]
    fn latency_distributions_respect_their_bounds() {
        let mut rng = Streams::new(5, 0).network;
        for _ in 0..1000 {
            let u = sample_latency(&Latency::Uniform(Span(10), Span(20)), &mut rng);
            assert!((10..=20).contains(&u.as_micros()));
        }
        let mean: u64 = (0..4000)
            .map(|_| sample_latency(&Latency::Exponential(Span(1000)), &mut rng).as_micros())
            .sum::<u64>()
            / 4000;
        assert!((900..1100).contains(&mean), "exponential mean {mean}");
        let mean: u64 = (0..4000)
            .map(|_| sample_latency(&Latency::Normal(Span(1000), Span(100)), &mut rng).as_micros())
            .sum::<u64>()
            / 4000;
        assert!((980..1020).contains(&mean), "normal mean {mean}");
    }
}
