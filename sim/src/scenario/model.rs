//! The validated scenario: what the engine runs. Every field has been checked against the
//! protocol and the cluster; nothing here needs re-validation and no default is silent
//! (`Scenario::explain` prints them all).

pub use super::fault_kinds::{Fault, FaultOrigin, LeaderSide, NemesisKind, PartitionShape};
pub use super::targets::{IfNone, Selector, Targets};
use simkv_protocols::{ClientId, NodeId, Params, ProtocolKind, Span, SpanRange, Time};

/// A scenario, loaded, overridden and validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// Short name (`partition`).
    pub name: String,
    /// One line on what it shows.
    pub description: String,
    /// The file it came from, as the user named it.
    pub source: String,
    /// The run's seed (`--seed` overrides).
    pub seed: u64,
    /// Virtual time during which clients issue operations and scripted faults happen.
    pub duration: Span,
    /// Hard bound on processed events; reaching it fails the run.
    pub max_events: u64,
    /// The replicas and the protocol they run.
    pub cluster: Cluster,
    /// How messages travel.
    pub network: Network,
    /// Per-node clock offsets and drift at the start.
    pub clocks: Vec<ClockSetting>,
    /// What the clients do.
    pub workload: Workload,
    /// Faults at scripted virtual times, sorted by time (stable for equal times).
    pub faults: Vec<ScheduledFault>,
    /// Random faults drawn from the seed: each `[[nemesis]]` (or the one `[nemesis]`), in
    /// file order, all on one timeline.
    pub nemeses: Vec<Nemesis>,
    /// What the run checks after the faults.
    pub checks: Checks,
    /// Every node's disk: what a crash does to unsynced writes, how long a sync takes.
    pub disk: DiskSettings,
    /// The `[swarm]` draws made for this seed, as the `--set` entries they became (empty
    /// without a `[swarm]`).
    pub swarm: Vec<String>,
}

/// The replicas.
#[derive(Clone, Debug, PartialEq)]
pub struct Cluster {
    /// The protocol (`primary`, `raft`, ...), from the protocol table.
    pub protocol: ProtocolKind,
    /// Number of nodes, n1..nN; at least 1: every host the cluster may ever have.
    pub nodes: u16,
    /// The nodes in the cluster at time zero, in id order (`initial = ["n1", "n2", "n3"]`;
    /// every node by default). The others wait outside until a `join` fault adds them.
    pub initial: Vec<NodeId>,
    /// The protocol's parameters, every declared one resolved.
    pub params: Params,
    /// Planted bugs switched on, each declared by the protocol.
    pub bugs: Vec<&'static str>,
}

/// A latency distribution. Sampling uses integer arithmetic except where a distribution is
/// defined by a transcendental function (exponential, normal), where it is computed in f64
/// and rounded to whole microseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Latency {
    /// Always this long.
    Constant(Span),
    /// Uniform on [min, max].
    Uniform(Span, Span),
    /// Exponential with this mean.
    Exponential(Span),
    /// Normal with this mean and standard deviation, truncated at zero.
    Normal(Span, Span),
}

impl Latency {
    /// The mean delay (a normal truncated at zero is taken at its untruncated mean).
    pub fn mean(&self) -> Span {
        match *self {
            Latency::Constant(d) | Latency::Exponential(d) | Latency::Normal(d, _) => d,
            Latency::Uniform(min, max) => Span((min.as_micros() + max.as_micros()) / 2),
        }
    }
}

/// Behaviour of one direction of one link. Probabilities are in parts per million.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkBehaviour {
    /// Delay of each message.
    pub latency: Latency,
    /// Chance a message is lost.
    pub drop_ppm: u32,
    /// Chance a message is delivered twice (the copy with its own delay).
    pub duplicate_ppm: u32,
    /// Chance a message is held back by an extra `reorder_delay`, overtaking FIFO order.
    pub reorder_ppm: u32,
    /// How long a reordered message is held back (drawn uniformly from the range).
    pub reorder_delay: SpanRange,
}

/// The network. Links are FIFO per direction when `fifo` is set: a message never arrives
/// before one sent earlier on the same link (except a reordered one, which is the point of
/// reordering). Without `fifo`, each message's delay is independent, so messages overtake.
#[derive(Clone, Debug, PartialEq)]
pub struct Network {
    /// Every node-to-node link, unless overridden.
    pub default: LinkBehaviour,
    /// Client-to-node and node-to-client links (partitioned only for colocated clients, see
    /// [`Placement`]; freezes and crashes do cut them).
    pub client: LinkBehaviour,
    /// Per-link overrides, applied in order.
    pub links: Vec<LinkOverride>,
    /// Whether links keep order.
    pub fifo: bool,
}

impl Network {
    /// The longest mean one-way delay of any link between two nodes: the default's, or an
    /// override's.
    pub fn slowest_link(&self) -> Span {
        let overrides = self.links.iter().map(|l| l.behaviour.latency.mean());
        overrides
            .chain([self.default.latency.mean()])
            .max()
            .unwrap_or_default()
    }
}

/// One direction of one link behaving differently from the default.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkOverride {
    /// Sender.
    pub from: NodeId,
    /// Receiver.
    pub to: NodeId,
    /// Its behaviour.
    pub behaviour: LinkBehaviour,
}

/// A node's clock: `local = true + offset + drift` where drift accumulates at `drift_ppm`
/// microseconds per second of true time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockSetting {
    /// Whose clock.
    pub node: NodeId,
    /// Signed offset from true time, microseconds.
    pub offset_us: i64,
    /// Signed rate error, parts per million.
    pub drift_ppm: i64,
}

/// The client operation kinds a workload mixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpKind {
    /// `get`.
    Get,
    /// `put`.
    Put,
    /// `update` (only if present).
    Update,
    /// `delete`.
    Delete,
    /// `cas` (expected value: the last one this client saw for the key).
    Cas,
    /// `append`.
    Append,
    /// `txn`: `txn_ops` operations on distinct keys, applied atomically (for protocols that
    /// serve transactions).
    Txn,
}

/// How keys are drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum KeyDistribution {
    /// Every key equally likely.
    Uniform,
    /// Key k (from 0) with weight 1/(k+1)^exponent.
    Zipf {
        /// The skew; 1.0 is classic Zipf.
        exponent: f64,
    },
}

/// How often clients issue operations.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Arrival {
    /// Each client issues its next operation `think` after the previous one completed.
    ClosedLoop {
        /// Pause between a completion and the next invocation.
        think: SpanRange,
    },
    /// Operations arrive as a Poisson process at `rate_per_s` in all; each goes to an idle
    /// client, and an arrival that finds every client busy is shed (counted, not issued),
    /// since a Jepsen process never has two operations in flight.
    OpenLoop {
        /// Mean arrivals per virtual second, over all clients.
        rate_per_s: u64,
    },
}

/// How a client picks the node it sends an operation to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// A node drawn uniformly for each operation.
    Random,
    /// Client i always talks to node i mod N (the talk demo's curl to one server).
    Fixed,
    /// Start at random; after a refusal that names a node, use that node next; after a
    /// refusal or timeout without a hint, pick at random again.
    FollowRedirects,
}

/// The clients.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    /// Number of clients, c1..cN.
    pub clients: u32,
    /// Number of keys, 0..keys.
    pub keys: u64,
    /// How keys are drawn.
    pub key_distribution: KeyDistribution,
    /// Operation kinds and their integer weights (only kinds with weight > 0).
    pub mix: Vec<(OpKind, u32)>,
    /// When operations are issued.
    pub arrival: Arrival,
    /// After this long without an answer, the client records `info` and moves on.
    pub timeout: Span,
    /// Where operations go.
    pub target: Target,
    /// The quorum every request asks for, if any (protocols with tunable quorums honour it,
    /// capped at their replica count; the others ignore it).
    pub quorum: Option<u8>,
    /// How many times a client tries an operation again, with the same request id, after a
    /// timeout or a refusal (following its hint), before recording it; the history shows
    /// one invocation and one completion whatever the number of attempts. `timeout` is per
    /// attempt.
    pub retries: u32,
    /// Operations per `txn`, on distinct keys (fewer when there are fewer keys). Each is a
    /// get, put or append, drawn by those kinds' weights in the mix (get and put evenly when
    /// the mix has none of them): Jepsen's transaction vocabulary (`:r`, `:w`, `:append`).
    pub txn_ops: u32,
    /// How long a client waits before each retry.
    pub backoff: Backoff,
    /// How many operations each client keeps in flight. Each slot is its own history process
    /// (and its own client session for the protocol): slot `i` of client `c` is process
    /// `c * in_flight + i`, with one operation outstanding at a time, as a Jepsen process.
    pub in_flight: u32,
    /// Where clients stand: outside the cluster, or each beside a node.
    pub placement: Placement,
    /// Elle's `max-writes-per-key`: once the clients have issued this many writes to a key,
    /// its slot of the key space moves on to a fresh key (slot `s` of `keys` is key
    /// `s + keys * g` in its `g`th generation), so that values (an append's list) stay short
    /// and each key's history stays small enough to check. `None`: a key takes every write.
    pub max_writes_per_key: Option<u64>,
    /// At most this many operations invoked in all, by every client together (retries of
    /// one operation count once); after that clients invoke nothing more. `None`: no limit.
    /// `simkv shrink` sets it to cut a failing run down to a few operations.
    pub max_ops: Option<u64>,
    /// Clients invoke nothing before this time (an idle window at the start of the run):
    /// the first invocations (closed loop) or the first arrival (open loop) are drawn as
    /// without it, then moved this much later, so that the workload's draws stay the same.
    /// Default zero. `simkv shrink` sets it to cut the operations before a late fault.
    pub start: Span,
    /// `contexts = true`: clients read before they write and write with the causal context
    /// they read (Dynamo section 4.4; the seed's REST clients GET a key with its vector clock
    /// and PUT back with it). Each put or delete the mix draws is preceded by a get of its key
    /// by the same process, a history operation of its own, and carries the context that get
    /// answered (empty when it answered none: it failed, timed out or the protocol kept no
    /// context). Only for protocols that take contexts, and mixes of get, put and delete.
    pub contexts: bool,
    /// `[[op]]`s: when not empty, the clients invoke exactly these operations (the mix,
    /// keys, think time or rate and `start` then shape none: see `engine::clients`); each
    /// process invokes its own in time order, each at its time or, if its operation before
    /// is still in flight then, as soon as that one completes. Sorted by time (stable).
    pub script: Vec<ScriptedOp>,
}

/// One operation of a scripted workload (`[[op]]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptedOp {
    /// When it is invoked (at the earliest: see [`Workload::script`]).
    pub at: Time,
    /// The history process that invokes it.
    pub process: ClientId,
    /// The node its first attempt goes to (retries follow `workload.target`).
    pub node: NodeId,
    /// What it asks.
    pub op: simkv_protocols::Op,
}

/// How long a client waits before it retries an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backoff {
    /// Retry at once (the old behaviour: a refusal is retried as soon as it arrives).
    None,
    /// Exponential with jitter, capped: the `n`th retry (from 1) waits a time drawn
    /// uniformly between half of `min(max, base * 2^(n-1))` and all of it ("equal jitter"),
    /// from the workload stream. Uncapped waits never shrink from one retry to the next.
    Exponential {
        /// The first retry's ceiling.
        base: Span,
        /// No wait is longer.
        max: Span,
    },
}

impl Backoff {
    /// The ceiling of the `retry`th retry's wait (from 1): `base * 2^(retry-1)`, capped.
    pub fn ceiling(self, retry: u32) -> Span {
        match self {
            Backoff::None => Span::ZERO,
            Backoff::Exponential { base, max } => {
                let doublings = retry.saturating_sub(1).min(63);
                let grown = base.as_micros().saturating_mul(1u64 << doublings);
                Span(grown.min(max.as_micros()))
            }
        }
    }
}

/// Where clients stand with respect to the cluster's network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Placement {
    /// Outside the cluster: client links are never partitioned (freezes and crashes still
    /// cut them), so a client reaches every side of a partition.
    Outside,
    /// Client `c` runs beside node `c mod N` (Jepsen's model): its link to that node is
    /// local and never cut; its link to another node is up while the link between its node
    /// and that node is (each direction on its own) and its node is not frozen, so a
    /// partition cuts it off with its node's side. A crash or pause of its node's process
    /// leaves it be.
    Colocated,
}

impl Placement {
    /// The placement as scenarios spell it.
    pub fn name(self) -> &'static str {
        match self {
            Placement::Outside => "outside",
            Placement::Colocated => "colocated",
        }
    }
}

impl Workload {
    /// The client whose slot history process `process` is.
    pub fn client_of(&self, process: ClientId) -> u32 {
        process.0 / self.in_flight.max(1)
    }

    /// How many history processes the clients make (one per slot).
    pub fn processes(&self) -> u32 {
        self.clients.saturating_mul(self.in_flight)
    }

    /// Whether the mix has multi-key transactions (only protocols that serve them can run it).
    pub fn has_txn(&self) -> bool {
        self.mix.iter().any(|(kind, _)| *kind == OpKind::Txn)
    }
}

/// A fault at a scripted time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduledFault {
    /// True virtual time: the earliest, when it is a range.
    pub at: Time,
    /// The action.
    pub fault: Fault,
    /// Where the scenario file says it (`file:line:col`), for reports.
    pub origin: FaultOrigin,
    /// What to do when its target resolves to no node.
    pub if_none: IfNone,
    /// The latest time (`at = "8s..12s"`); the run draws its time uniformly in
    /// `at..=at_latest` from the faults stream. Equal to `at` for an exact time, which draws
    /// nothing.
    pub at_latest: Time,
    /// `for = "1s..5s"`: how long after it fires the fault is undone (drawn like `at`).
    pub undo_after: Option<SpanRange>,
}

impl ScheduledFault {
    /// A fault at an exact time, never undone by itself.
    pub fn exactly(at: Time, fault: Fault, origin: FaultOrigin) -> ScheduledFault {
        ScheduledFault {
            at,
            fault,
            origin,
            at_latest: at,
            undo_after: None,
            if_none: IfNone::default(),
        }
    }
}

/// A random nemesis: one fault at a time, each undone before the next (as Jepsen's
/// nemeses do), all drawn from the faults stream.
#[derive(Clone, Debug, PartialEq)]
pub struct Nemesis {
    /// What it may do.
    pub kinds: Vec<NemesisKind>,
    /// Gap between one fault's undo and the next fault.
    pub interval: SpanRange,
    /// How long each fault lasts.
    pub duration: SpanRange,
    /// No fault before this time.
    pub start: Time,
    /// No fault after this time; the last one is undone by then.
    pub stop: Time,
    /// Largest clock jump, for `ClockJump`.
    pub clock_jump_max: Span,
    /// Largest clock drift, ppm, for `ClockDrift`.
    pub clock_drift_max: u64,
    /// At most this many nodes crashed, frozen or paused at once, whatever the cause: a
    /// fault of this nemesis that would take one more node down is skipped when it fires.
    pub max_down: Option<u16>,
    /// What its node faults aim at, one drawn per fault and resolved when it fires
    /// (`["leader", "majority"]`); empty: one node drawn at random, as nemeses always did.
    /// An aimed fault is undone after its duration, on the nodes it actually hit.
    pub targets: Vec<Targets>,
    /// `on_role`: each aimed fault, when its time comes, waits (looking again every 10 ms,
    /// until the nemesis's next fault is due) for a role, and only then resolves its targets
    /// and fires: faults timed at role changes. `None`: each fires at its drawn time.
    pub on_role: Option<OnRole>,
}

/// What a nemesis's faults wait for (`on_role`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OnRole {
    /// A role of the protocol.
    pub role: &'static str,
    /// `"new-ROLE"`: a node must take the role (hold it where it did not, in that term,
    /// when the fault came due: a fresh leader, a node just restarted); `"ROLE"`: some node
    /// holding it is enough (an election under way, a transaction in doubt).
    pub new: bool,
}

impl OnRole {
    /// As scenarios spell it.
    pub fn name(&self) -> String {
        if self.new {
            format!("new-{}", self.role)
        } else {
            self.role.to_string()
        }
    }
}

/// What the liveness phase after the workload does with faults still in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LivenessMode {
    /// Heal everything, then every operation must succeed (Jepsen's final heal).
    Heal,
    /// A minority of nodes drawn from the seed crashes and stays down; the rest are healed,
    /// clients move to live nodes, and every operation must still succeed (TigerBeetle's
    /// VOPR liveness mode).
    Vopr,
}

impl LivenessMode {
    /// The mode as scenarios spell it.
    pub fn name(self) -> &'static str {
        match self {
            LivenessMode::Heal => "heal",
            LivenessMode::Vopr => "vopr",
        }
    }
}

/// `[disk]`: how every node's simulated disk behaves until a `disk` fault changes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskSettings {
    /// What a crash does to the writes not yet synced: `Healthy` keeps them (spelled
    /// `keep-unsynced`), or `LoseUnsynced`, `LoseSomeUnsynced`, `TornWrite`; never
    /// `Corrupt`, which is an action, not a way of crashing. A `healthy` disk fault brings
    /// this back.
    pub crash: super::fault_kinds::DiskFaultKind,
    /// How long a sync takes, drawn per sync from the node's disk stream: the sends and
    /// replies a handler emits after a sync leave when it completes, and a crash before
    /// then loses what it was to make durable. Zero (the default): a sync completes at once.
    pub sync: SpanRange,
}

impl Default for DiskSettings {
    fn default() -> Self {
        DiskSettings {
            crash: super::fault_kinds::DiskFaultKind::Healthy,
            sync: SpanRange::exactly(Span::ZERO),
        }
    }
}

/// What the run checks.
#[derive(Clone, Debug, PartialEq)]
pub struct Checks {
    /// After the last heal, operations invoked this long after it must all succeed.
    pub liveness: Span,
    /// After the workload stops, how long replicas get to converge before they are compared.
    pub settle: Span,
    /// What the liveness phase does with faults still in force.
    pub liveness_mode: LivenessMode,
    /// The stated checks: promises a scenario makes about the protocol, judged only when
    /// stated.
    pub stated: StatedChecks,
}

/// Checks a scenario states (`[checks] one_leader = true`): each is judged, as a promise,
/// only when stated; a scenario that states none runs as if they did not exist.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StatedChecks {
    /// `max_messages_per_op = N`: the protocol messages sent over the whole run, divided by
    /// the client operations that completed (ok or fail), must not exceed N.
    pub max_messages_per_op: Option<f64>,
    /// `leader_within = "5s"`: from the moment the cluster was last made whole, a node must
    /// lead, in the newest term, within this long.
    pub leader_within: Option<Span>,
    /// `one_leader = true`: never two leaders in one term, and at most one leader at any
    /// instant once the cluster has been whole for the liveness window.
    pub one_leader: bool,
    /// `false_deaths = true`: no failure detector declares a running member dead on
    /// evidence gathered wholly while the cluster was calm (the scenario's network is one
    /// its detectors' timeouts fit).
    pub false_deaths: bool,
}

impl StatedChecks {
    /// Whether a stated check needs the nodes' roles and terms sampled as they change.
    pub fn need_roles(&self) -> bool {
        self.one_leader || self.leader_within.is_some()
    }
}

impl Scenario {
    /// The run's end: the workload's duration plus the settle phase.
    pub fn end(&self) -> Time {
        Time::ZERO + self.duration + self.checks.settle
    }

    /// Every node id.
    pub fn node_ids(&self) -> Vec<NodeId> {
        (0..self.cluster.nodes).map(NodeId).collect()
    }

    /// Whether the run changes the cluster's membership (`initial` with fewer than every
    /// node, a `join`, `leave` or `remove`, a `membership` nemesis): only protocols whose
    /// nodes join and leave can run it.
    pub fn changes_membership(&self) -> bool {
        let changes = |f: &Fault| matches!(f, Fault::Join(_) | Fault::Leave(_) | Fault::Remove(_));
        self.cluster.initial.len() < usize::from(self.cluster.nodes)
            || self.faults.iter().any(|f| changes(&f.fault))
            || self
                .nemeses
                .iter()
                .any(|n| n.kinds.contains(&NemesisKind::Join))
    }
}
