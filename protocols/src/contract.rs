//! The contract between the engine and every protocol.

use crate::ids::{NodeId, RequestId};
use crate::kv::{Key, Op, OpResult, Value};
use crate::params::{ParamSpec, Params};
use crate::roles::{RoleKind, RoleSpec};
use crate::time::{Span, SpanRange, Time};
use serde::Deserialize;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::{self, Debug};
use std::hash::Hash;

/// A guarantee a protocol promises. A run checks every promise and measures the rest: an AP
/// protocol returning stale reads under partition is doing its job; a CP protocol doing so is
/// broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Promise {
    /// Every history is linearizable (per key, with the kv model).
    Linearizable,
    /// Once faults heal and clients stop, every running replica holds the same store.
    Convergent,
    /// No acknowledged write is lost: it is never replaced by a write that came before it.
    DurableAcknowledgedWrites,
    /// After the last fault heals, every client operation succeeds.
    LiveAfterHeal,
}

impl Promise {
    /// The promise's name, as reports spell it.
    pub fn name(self) -> &'static str {
        match self {
            Promise::Linearizable => "linearizable",
            Promise::Convergent => "convergent",
            Promise::DurableAcknowledgedWrites => "durable-acknowledged-writes",
            Promise::LiveAfterHeal => "live-after-heal",
        }
    }
}

/// A scenario's timing, as far as a protocol's liveness promise may rest on it
/// ([`Protocol::liveness_premise`]): the base network's mean one-way delays (faults aside:
/// liveness is judged after the last heal) and the clients' patience.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// The longest mean one-way delay of any link between two nodes.
    pub slowest_link: Span,
    /// The mean one-way delay between a client and a node.
    pub client_link: Span,
    /// How long a client waits for an answer before it retries or gives up.
    pub client_timeout: Span,
}

/// A deliberately planted bug, switched on by name from a scenario or `--bug`.
#[derive(Clone, Copy, Debug)]
pub struct BugSpec {
    /// Its name, kebab-case.
    pub name: &'static str,
    /// What goes wrong, in one line.
    pub description: &'static str,
}

/// What a protocol says about itself: `simkv list` prints it, the engine validates against it.
#[derive(Clone, Copy, Debug)]
pub struct ProtocolInfo {
    /// The name scenarios and the command line use.
    pub name: &'static str,
    /// One line on what it is.
    pub description: &'static str,
    /// What every run of it must show.
    pub promises: &'static [Promise],
    /// The parameters a scenario may set.
    pub params: &'static [ParamSpec],
    /// The planted bugs it ships.
    pub bugs: &'static [BugSpec],
    /// The roles its nodes may hold ([`Protocol::Role`]'s specs), which fault targets and
    /// leadership checks name.
    pub roles: &'static [RoleSpec],
    /// Whether it serves multi-key transactions ([`Op::Txn`]), atomically; a protocol that
    /// does not is never sent one.
    pub transactions: bool,
    /// Whether it takes causal contexts ([`Request::context`]): a write with one supersedes
    /// exactly what the context covers, and a get answers the context of what it read. Only
    /// such a protocol runs a workload with `contexts = true` (the loader refuses it for the
    /// others).
    pub contexts: bool,
    /// The operator commands it acts on, by name ([`Operator::name`]). The loader refuses a
    /// scenario step with any other command, unless the step says `unsupported = "ignore"`
    /// (then the node still receives it, ignores it, and the summary says so).
    pub operators: &'static [&'static str],
    /// Whether nodes may join, leave and be removed while it runs (a scenario's `initial`
    /// and its `join`, `leave` and `remove` faults; see [`Membership`]). A protocol without
    /// it is refused such a scenario at load time.
    pub membership: bool,
    /// Its own check of its parameters, run by the loader ([`crate::params::ParamCheck`]).
    pub check_params: crate::params::ParamCheck,
}

/// A number a protocol reports about itself ([`Protocol::counters`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counter {
    /// What it counts, in words, with its unit if it has one (`longest block ms`).
    pub name: &'static str,
    /// This node's count.
    pub value: u64,
    /// How the nodes' counts combine into the cluster's.
    pub combine: Combine,
}

/// How nodes' [`Counter`]s combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Combine {
    /// Added up (events, totals).
    Sum,
    /// The largest (a longest wait).
    Max,
}

impl Counter {
    /// A counter the cluster adds up.
    pub fn sum(name: &'static str, value: u64) -> Counter {
        Counter {
            name,
            value,
            combine: Combine::Sum,
        }
    }

    /// A counter of which the cluster reports the largest.
    pub fn max(name: &'static str, value: u64) -> Counter {
        Counter {
            name,
            value,
            combine: Combine::Max,
        }
    }
}

/// What a node knows about its place in the cluster when it starts.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This node.
    pub id: NodeId,
    /// Every node of the cluster, this one included, in order: every host the cluster may
    /// ever have (the seed's hosts list), whether or not it is in the cluster now.
    pub nodes: Vec<NodeId>,
    /// The nodes in the cluster when this node starts, in order: the scenario's `initial`
    /// (every node unless it says otherwise), then as `join`, `leave` and `remove` faults
    /// change it (the engine keeps it current, as an operator keeps a hosts list, so that a
    /// node restarting or joining reads the cluster as it is). Equal to `nodes` in a run
    /// without membership changes.
    pub members: Vec<NodeId>,
    /// Whether this node was added by a `join` fault, not one of the initial members: it
    /// starts outside the cluster and asks to join it (a restart after its join keeps it
    /// set; its durable state says how far it got).
    pub joining: bool,
    /// The protocol's parameters, resolved.
    pub params: Params,
    /// The planted bugs switched on, by name (a protocol reads them typed, through its
    /// [`BugSet`](crate::BugSet)).
    pub bugs: Vec<&'static str>,
}

impl NodeConfig {
    /// Every other node of the cluster.
    pub fn peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        let me = self.id;
        self.nodes.iter().copied().filter(move |n| *n != me)
    }
}

/// A client request as it reaches the node that coordinates it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Request {
    /// Its id; answer with [`Context::reply`] quoting it.
    pub id: RequestId,
    /// What the client asks.
    pub op: Op,
    /// The quorum the client asks for, if it names one (node-amazon-dynamo's `?quorum=`);
    /// protocols without tunable quorums ignore it, the others cap it at their replica count.
    pub quorum: Option<u8>,
    /// The causal context the client read and now writes under (Dynamo section 4.4: "the
    /// client must specify which version it is updating by passing the context it obtained
    /// from an earlier read"), if it sends one: only workloads with `contexts = true` do, and
    /// only to protocols whose [`ProtocolInfo::contexts`] says they take them. Serialised and
    /// hashed only when present, so that requests without one are what they always were.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<CausalContext>,
}

/// Hashed field by field as `#[derive(Hash)]` would hash the first three, and the context
/// only when there is one: a request without a context hashes as it did before contexts
/// existed, so that no fingerprint moves.
impl Hash for Request {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id.hash(state);
        self.op.hash(state);
        self.quorum.hash(state);
        if let Some(context) = &self.context {
            context.hash(state);
        }
    }
}

/// A causal context (Dynamo section 4.4's "context"): what a client read, summarised so that a
/// later write can say which versions it supersedes. At the contract it is a version vector,
/// protocol-agnostic: (actor, counter) pairs sorted by actor, each actor once, counters above
/// 0. What an actor is, is the protocol's (dynamo: a coordinator node, or one of its
/// per-key stand-in actors, see its module doc). One context covers another when it has seen
/// everything the other has ([`CausalContext::covers`]). Histories write it as
/// `[[actor, counter], ...]`; the empty context (a client that read nothing) is `[]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CausalContext(Vec<(u32, u64)>);

impl CausalContext {
    /// The context of these pairs: sorted by actor, an actor named twice keeping its larger
    /// counter, zero counters dropped.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (u32, u64)>) -> CausalContext {
        let mut all: Vec<(u32, u64)> = pairs.into_iter().filter(|(_, c)| *c > 0).collect();
        all.sort_unstable();
        let mut out: Vec<(u32, u64)> = Vec::with_capacity(all.len());
        for (actor, counter) in all {
            match out.last_mut() {
                Some(last) if last.0 == actor => last.1 = last.1.max(counter),
                _ => out.push((actor, counter)),
            }
        }
        CausalContext(out)
    }

    /// The pairs, ascending by actor.
    pub fn pairs(&self) -> &[(u32, u64)] {
        &self.0
    }

    /// The counter this context holds for `actor` (0: none).
    pub fn get(&self, actor: u32) -> u64 {
        self.0
            .binary_search_by_key(&actor, |(a, _)| *a)
            .map_or(0, |i| self.0[i].1)
    }

    /// Whether this context has seen everything `other` has: for every actor, a counter at
    /// least `other`'s.
    pub fn covers(&self, other: &CausalContext) -> bool {
        other.0.iter().all(|(actor, c)| self.get(*actor) >= *c)
    }

    /// Whether it holds no pair (a client that read nothing).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Display for CausalContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[")?;
        for (i, (actor, counter)) in self.0.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            write!(f, "{sep}{actor}:{counter}")?;
        }
        write!(f, "]")
    }
}

/// A change of the cluster's membership, from a scenario's `join`, `leave` or `remove`
/// fault, as the engine hands it to a node ([`Protocol::on_membership`]). A joining node is
/// not told: it starts with [`NodeConfig::joining`] set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Membership {
    /// `node` was started to join the cluster: every member is told, as an operator adds a
    /// host to each node's list (raft's leader then adds it, thesis 4.1).
    Joined(NodeId),
    /// This node is asked to leave gracefully (decommission): it hands over what it must,
    /// then reports [`Protocol::has_left`], and the engine stops it for good.
    Leave,
    /// `node` is out of the cluster for good and never returns: a `remove` fault took it
    /// down, or it left and the engine stopped it. Every member is told, as an operator's
    /// removal would tell them (Dynamo section 4.2: explicit removal; serf's force-leave).
    Removed(NodeId),
}

impl fmt::Display for Membership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Membership::Joined(n) => write!(f, "{n} joined"),
            Membership::Leave => f.write_str("leave"),
            Membership::Removed(n) => write!(f, "{n} removed"),
        }
    }
}

/// An operator's command to one node, from a scenario's fault timeline: the talk demo's
/// scripts and membership changes. A protocol with no use for a command ignores it (the
/// default [`Protocol::on_operator`] notes that it did).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Operator {
    /// Overwrite `key` on this replica only, behind the protocol's back (the demo's
    /// `trick-value.sh`); repair and convergence checks must show it healed.
    TrickValue {
        /// The key overwritten.
        key: Key,
        /// The value planted.
        value: Value,
    },
    /// As coordinator, stop (halt) right after sending the next transaction's Prepare.
    StopAfterPrepare,
    /// As coordinator, stop (halt) right after persisting the next decision, before sending it.
    StopAfterDecision,
    /// Add `server` to the cluster's membership (Raft's single-server change; cruise's
    /// `peer(addr)`).
    AddServer {
        /// The node added.
        server: NodeId,
    },
    /// Remove `server` from the cluster's membership.
    RemoveServer {
        /// The node removed.
        server: NodeId,
    },
}

impl Operator {
    /// Every command's name, as scenarios spell it.
    pub const NAMES: &'static [&'static str] = &[
        "trick-value",
        "stop-after-prepare",
        "stop-after-decision",
        "add-server",
        "remove-server",
    ];

    /// The command's name, as scenarios spell it (`trick-value`).
    pub fn name(&self) -> &'static str {
        match self {
            Operator::TrickValue { .. } => "trick-value",
            Operator::StopAfterPrepare => "stop-after-prepare",
            Operator::StopAfterDecision => "stop-after-decision",
            Operator::AddServer { .. } => "add-server",
            Operator::RemoveServer { .. } => "remove-server",
        }
    }
}

impl std::fmt::Display for Operator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Operator::TrickValue { key, value } => write!(f, "trick-value k{key}={value}"),
            Operator::StopAfterPrepare => write!(f, "stop-after-prepare"),
            Operator::StopAfterDecision => write!(f, "stop-after-decision"),
            Operator::AddServer { server } => write!(f, "add-server {server}"),
            Operator::RemoveServer { server } => write!(f, "remove-server {server}"),
        }
    }
}

/// A record of a node's log: what folding it does to the durable state recovered so far.
pub trait Replay<D> {
    /// Folds this record into `durable` (`None` before the first record).
    fn replay(&self, durable: &mut Option<D>);
}

/// A protocol that never writes has no records to fold.
impl<D> Replay<D> for () {
    fn replay(&self, _: &mut Option<D>) {}
}

/// A record of a node's log as a recovery reads it back.
#[derive(Clone, Copy, Debug)]
pub enum Read<'a, R> {
    /// As it was written.
    Intact(&'a R),
    /// Damaged on the disk (a bit flipped): its checksum fails. It may have been synced, and
    /// what it held acknowledged. `written` is what was written and `flip` the damage, for a
    /// planted bug that reads the record without checking ("no checksum"), as garbage.
    Corrupt {
        /// The record as written.
        written: &'a R,
        /// Which bits flipped (nonzero), drawn by the engine.
        flip: u64,
    },
    /// The last record, cut short by a crash in the middle of its write: its length frame
    /// promises more than the log holds, so it is told apart from a bit flip. It was never
    /// synced (a sync completes after the write does), so nothing the node acknowledged rests
    /// on it: a checksummed log ends before it, and the engine cuts it off after the recovery
    /// (a log's repair when it opens). `written` and `flip` are what a recovery that checks
    /// nothing ("no checksum") reads, as garbage.
    Torn {
        /// The record as written.
        written: &'a R,
        /// The garbage its unwritten part holds (nonzero), drawn by the engine.
        flip: u64,
    },
    /// A whole, valid record in the wrong place: a later write was misdirected onto this
    /// one's place (TigerBeetle's simulator misdirects writes), so what was here is gone and
    /// the later record is nowhere else. Every record's checksum covers its place in the
    /// log, so a checked read fails here as on a bit flip; a recovery that checks nothing
    /// ("no checksum") reads `written`, a sound record of a later moment, as if it belonged
    /// here.
    Misplaced {
        /// The later record, as it was written.
        written: &'a R,
    },
}

/// The engine's seeded random stream for one node. Protocols draw through [`Context`].
pub trait Entropy {
    /// The next 64 random bits.
    fn next_u64(&mut self) -> u64;
}

/// One thing a handler asks the engine to do. The engine applies a handler's effects in the
/// order they were emitted, after the handler returns.
#[derive(Clone, Debug)]
pub enum Effect<P: Protocol> {
    /// Send `msg` to `to` over the simulated network (which may delay, drop, duplicate or
    /// reorder it, as the scenario's network says).
    Send {
        /// The receiver.
        to: NodeId,
        /// The message.
        msg: P::Message,
    },
    /// Arm `timer` to fire after a delay drawn from `delay`, measured on this node's clock.
    /// Arming a timer that is already armed re-arms it: only the latest arming fires.
    SetTimer {
        /// Which timer.
        timer: P::Timer,
        /// The delay, drawn uniformly by the engine.
        delay: SpanRange,
    },
    /// Disarm `timer`; a no-op when it is not armed.
    CancelTimer {
        /// Which timer.
        timer: P::Timer,
    },
    /// Append `record` to this node's log on its simulated disk (see [`Protocol::Record`]).
    /// It survives a crash once synced; everything else is lost.
    Write {
        /// The record appended.
        record: P::Record,
        /// Whether the record alone rebuilds the durable state (a compacting snapshot): once
        /// it is synced, the engine drops every record before it.
        snapshot: bool,
    },
    /// Make every record written so far durable (fsync). The sends and replies this handler
    /// emits after it leave only once it completes (the etcd raft rule), which takes the
    /// time `[disk] sync` draws; a crash before then loses them and whatever the disk's
    /// crash mode loses of the unsynced records. Other effects take place at once.
    Sync,
    /// Answer a client request. Each request is answered at most once.
    Reply {
        /// The request answered.
        request: RequestId,
        /// The answer.
        result: OpResult,
        /// The causal context of what a get read ([`Context::reply_with_context`]), from a
        /// protocol that keeps contexts; `None` otherwise. The engine hands it to clients
        /// only in a workload with `contexts = true`, and drops it elsewhere.
        context: Option<CausalContext>,
    },
    /// A line for the trace, saying why something happened (or did not).
    Note(String),
    /// This node's failure detector declared `node` dead, on evidence gathered over the
    /// last `evidence` of its own clock (from the probe that first failed): observation
    /// only, for the `false_deaths` check (see [`Context::declare_dead`]).
    DeclareDead {
        /// The member declared dead.
        node: NodeId,
        /// How far back, on this node's clock, the evidence goes.
        evidence: Span,
    },
    /// Stop this node now, as if it crashed: effects emitted after this one are discarded
    /// and volatile state is lost; a scripted `restart` boots it from what it persisted.
    /// For operator commands such as [`Operator::StopAfterPrepare`].
    Halt,
}

/// A handler's window on the world: its clock, its random stream and its effect buffer.
pub struct Context<'a, P: Protocol> {
    node: NodeId,
    now: Time,
    monotonic: Time,
    tracing: bool,
    effects: &'a mut Vec<Effect<P>>,
    entropy: &'a mut dyn Entropy,
}

impl<'a, P: Protocol> Context<'a, P> {
    /// Made by the engine for one handler call.
    pub fn new(
        node: NodeId,
        (now, monotonic): (Time, Time),
        tracing: bool,
        effects: &'a mut Vec<Effect<P>>,
        entropy: &'a mut dyn Entropy,
    ) -> Self {
        Context {
            node,
            now,
            monotonic,
            tracing,
            effects,
            entropy,
        }
    }

    /// The node this handler runs on.
    pub fn me(&self) -> NodeId {
        self.node
    }

    /// This node's clock, which may be skewed and may drift from the true virtual time.
    pub fn now(&self) -> Time {
        self.now
    }

    /// This node's monotonic clock (`CLOCK_MONOTONIC`): it drifts as [`Context::now`] does,
    /// but a clock jump (an operator or NTP stepping the wall clock) does not move it, and
    /// its origin is arbitrary. Measure durations on it, as timers do: a lease, a timeout.
    pub fn monotonic(&self) -> Time {
        self.monotonic
    }

    /// Sends `msg` to `to`.
    pub fn send(&mut self, to: NodeId, msg: P::Message) {
        debug_assert_ne!(to, self.node, "a node sends to itself by calling itself");
        self.effects.push(Effect::Send { to, msg });
    }

    /// Arms `timer` (see [`Effect::SetTimer`]).
    pub fn set_timer(&mut self, timer: P::Timer, delay: impl Into<SpanRange>) {
        let delay = delay.into();
        self.effects.push(Effect::SetTimer { timer, delay });
    }

    /// Disarms `timer`.
    pub fn cancel_timer(&mut self, timer: P::Timer) {
        self.effects.push(Effect::CancelTimer { timer });
    }

    /// Appends `record` to this node's log (see [`Protocol::Record`]); it is durable once
    /// synced.
    pub fn write(&mut self, record: P::Record) {
        self.effects.push(Effect::Write {
            record,
            snapshot: false,
        });
    }

    /// Appends a record that alone rebuilds the durable state, [`Protocol::recover`] folding
    /// it from nothing: once it is synced, the log drops every record before it. A protocol
    /// writes one now and then so that its log stays about the size of its state.
    pub fn write_snapshot(&mut self, record: P::Record) {
        self.effects.push(Effect::Write {
            record,
            snapshot: true,
        });
    }

    /// Makes every record written so far durable: a send or reply emitted after the sync
    /// leaves only once the disk has it (see [`Effect::Sync`]).
    pub fn sync(&mut self) {
        self.effects.push(Effect::Sync);
    }

    /// Answers a client request.
    pub fn reply(&mut self, request: RequestId, result: OpResult) {
        self.effects.push(Effect::Reply {
            request,
            result,
            context: None,
        });
    }

    /// Answers a client request with the causal context of what it read (a get's answer from
    /// a protocol that keeps contexts: the merged context of the versions it answers, which
    /// a later write may pass back in [`Request::context`]).
    pub fn reply_with_context(
        &mut self,
        request: RequestId,
        result: OpResult,
        context: CausalContext,
    ) {
        self.effects.push(Effect::Reply {
            request,
            result,
            context: Some(context),
        });
    }

    /// Stops this node (see [`Effect::Halt`]).
    pub fn halt(&mut self) {
        self.effects.push(Effect::Halt);
    }

    /// Adds a trace line; `note` runs only when the run is traced, so it may format freely.
    pub fn note(&mut self, note: impl FnOnce() -> String) {
        if self.tracing {
            self.effects.push(Effect::Note(note()));
        }
    }

    /// Says that this node's failure detector just declared `node` dead, on evidence that
    /// goes back `evidence` on this node's clock (to the probe that first failed, and the
    /// time suspicion took to spread). Observation only: the engine records it for the
    /// `false_deaths` check a scenario states; it never moves the run.
    pub fn declare_dead(&mut self, node: NodeId, evidence: Span) {
        self.effects.push(Effect::DeclareDead { node, evidence });
    }

    /// A random number in `0..bound` from this node's seeded stream (`bound` > 0).
    pub fn random_below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "random_below(0)");
        // Lemire's multiply-shift: unbiased enough for simulation choices, and branch-free.
        ((u128::from(self.entropy.next_u64()) * u128::from(bound)) >> 64) as u64
    }
}

/// A replication protocol: one node of it, as a pure state machine.
///
/// # Driving contract
///
/// The engine, and nothing else, calls these methods, one at a time, never concurrently:
///
/// 1. [`Protocol::start`] once when the node boots, with `durable = None`; and again after
///    every crash, with the fold ([`Protocol::recover`]) of the records that survived on its
///    log (`None` if none did). Everything not written is gone: timers, in-flight requests,
///    volatile state.
/// 2. Then, in virtual-time order, [`Protocol::on_message`] for each delivered message,
///    [`Protocol::on_timer`] for each armed timer that fires, [`Protocol::on_request`] for
///    each client request that reaches this node (the node coordinates it, as every seed
///    system's nodes do), and [`Protocol::on_operator`] for an operator's scripted command.
/// 3. After every call, [`Protocol::check_invariants`], and cluster-wide checks over all
///    nodes' [`Protocol::store`]s and digests.
///
/// A handler acts only through its [`Context`]: effects are applied in emission order after
/// the handler returns. Records written and then synced ([`Context::write`],
/// [`Context::sync`]) are durable before any later effect of the same handler takes place
/// (the etcd raft rule): emit `write` and `sync` *before* the `send` or `reply` that relies
/// on them. A crash only ever happens between handlers.
///
/// # Storage
///
/// Each node has a simulated disk holding an append-only log of [`Protocol::Record`]s. A
/// record is the durable *change* a handler made (a key's new value, a vote, entries
/// appended), so persisting costs O(what changed), never O(state). After a crash the engine
/// hands the surviving records, in write order, to [`Protocol::recover`], which folds them
/// into a [`Protocol::Durable`] for `start`. So that the log stays about the size of the
/// state, a protocol now and then writes a record that rebuilds everything on its own
/// ([`Context::write_snapshot`]): once it is synced the engine drops the records before it
/// (amortised O(change) still, when snapshots are at least as far apart, in records, as the
/// state is large).
///
/// A handler must never read a clock, a file, a socket or entropy of its own; time comes
/// from [`Context::now`] and randomness from [`Context::random_below`]. Stale, duplicate or
/// wrong-term messages are ignored with a [`Context::note`], never a panic: only a broken
/// invariant panics.
pub trait Protocol: Sized + 'static {
    /// What nodes send each other.
    type Message: Clone + Debug + Hash + Serialize;
    /// The timers a node may arm; arming an armed timer re-arms it.
    type Timer: Clone + Debug + Hash + Eq + Serialize;
    /// What survives a crash, as [`Protocol::start`] receives it: the fold of the log.
    type Durable: Clone + Debug;
    /// One record of the node's log on its disk: a change to the durable state, or a
    /// snapshot of all of it (see "Storage" above).
    type Record: Clone + Debug + Replay<Self::Durable>;
    /// The roles a node may hold (see [`roles!`](crate::roles!)); leaderless protocols use
    /// [`Replica`](crate::roles::Replica).
    type Role: RoleKind;

    /// The protocol's name, promises, parameters and planted bugs.
    fn info() -> ProtocolInfo;

    /// The promises a run with these (resolved) parameters keeps, which the run's checks
    /// judge; the others are only measured. [`ProtocolInfo::promises`] by default; a protocol
    /// whose parameters can switch off what a promise rests on says so here (raft with
    /// `pre_vote = false` does not promise liveness: a node that misses heartbeats may depose
    /// working leaders again and again, Ongaro's thesis section 9.6).
    fn promises(params: &Params) -> Vec<Promise> {
        let _ = params;
        Self::info().promises.to_vec()
    }

    /// What [`Promise::LiveAfterHeal`] needs of a scenario's timing: `Err(why)` where the
    /// scenario's network and clients fall outside it, and the run then measures liveness
    /// instead of judging it, and says why. No premise by default.
    fn liveness_premise(params: &Params, timing: &Timing) -> Result<(), String> {
        let _ = (params, timing);
        Ok(())
    }

    /// What this node, at the end of a run, lost with a damaged log that
    /// [`Promise::LiveAfterHeal`] cannot survive (twopc: a decision nobody heard, Gray &
    /// Lamport section 2), as the reason; `None` by default. The engine honours it only for
    /// a node whose disk a `corrupt` or `misdirect` fault damaged: the run then measures
    /// liveness instead of judging it, and says why. A claim from a node whose disk was never
    /// damaged changes nothing.
    fn liveness_forfeit(&self) -> Option<String> {
        None
    }

    /// Folds one record read back from the log after a crash into the durable state rebuilt
    /// so far (`None` before the first record). The engine calls it for every surviving
    /// record in write order while it returns `true`, then [`Protocol::start`] with the
    /// result. A damaged record ([`Read::Corrupt`]: a flipped bit) fails its checksum: the
    /// protocol decides what its loss means, and returns `false` to read no further (every
    /// protocol here keeps the intact prefix: the state of an earlier sync). A torn last
    /// record ([`Read::Torn`]) is where the log ends: it held nothing acknowledged.
    /// The default folds intact records ([`Replay`]) and stops at the first damaged one.
    fn recover(
        durable: &mut Option<Self::Durable>,
        record: Read<'_, Self::Record>,
        config: &NodeConfig,
    ) -> bool {
        let _ = config;
        match record {
            Read::Intact(r) => {
                r.replay(durable);
                true
            }
            Read::Corrupt { .. } | Read::Torn { .. } | Read::Misplaced { .. } => false,
        }
    }

    /// Boots (or reboots, with `durable`) one node.
    fn start(
        ctx: &mut Context<'_, Self>,
        config: &NodeConfig,
        durable: Option<&Self::Durable>,
    ) -> Self;

    /// A message from `from` arrived.
    fn on_message(&mut self, ctx: &mut Context<'_, Self>, from: NodeId, msg: Self::Message);

    /// An armed timer fired.
    fn on_timer(&mut self, ctx: &mut Context<'_, Self>, timer: Self::Timer);

    /// A client asks this node to perform `request.op`; answer with [`Context::reply`], now or
    /// later, or never (the client then times out and records the operation as
    /// indeterminate).
    fn on_request(&mut self, ctx: &mut Context<'_, Self>, request: Request);

    /// An operator's command (see [`Operator`]); ignored with a note by default.
    fn on_operator(&mut self, ctx: &mut Context<'_, Self>, command: Operator) {
        ctx.note(|| format!("ignored operator command {command}"));
    }

    /// A change of the cluster's membership (see [`Membership`]); ignored with a note by
    /// default (only protocols whose [`ProtocolInfo::membership`] is set are handed one).
    fn on_membership(&mut self, ctx: &mut Context<'_, Self>, change: Membership) {
        ctx.note(|| format!("ignored membership change {change}"));
    }

    /// Whether this node, asked to leave ([`Membership::Leave`]), has handed over what it
    /// must and is out of the cluster: the engine then stops it for good. `false` by default.
    fn has_left(&self) -> bool {
        false
    }

    /// This node's role right now. Observation only: the engine reads it to aim faults
    /// (`crash = "leader"`) and to check leadership, never to drive the protocol.
    fn role(&self) -> Self::Role;

    /// The term (or epoch, ballot, view) this node is in, for protocols that have one: two
    /// nodes leading in one term break election safety.
    fn term(&self) -> Option<u64> {
        None
    }

    /// Whether this node is a member of the cluster right now, in its own view: not yet
    /// joined or gone (a graceful leave) is not. A member declared dead while it was one is
    /// what the `false_deaths` check judges. Every running node is a member by default.
    fn is_member(&self) -> bool {
        true
    }

    /// This replica's view of the store, for `--dump` and the convergence check.
    fn store(&self) -> BTreeMap<Key, Value>;

    /// The keys this replica holds concurrent versions of (siblings, Dynamo section 4.4),
    /// with every version (`None`: a concurrent delete), for the durability check: an
    /// acknowledged write survives if any sibling keeps it. Empty (the default) for protocols
    /// that keep one value per key; [`Protocol::store`] then says it all.
    fn siblings(&self) -> BTreeMap<Key, Vec<Option<Value>>> {
        BTreeMap::new()
    }

    /// Whether this node is, in its own view, a replica of `key`: the checks judge a
    /// replica's store only for the keys it replicates (a ring partitions the keys, Dynamo
    /// section 4.2). Every node replicates every key by default.
    fn replicates(&self, key: Key) -> bool {
        let _ = key;
        true
    }

    /// Whether [`Protocol::replicates`] may say no: replicas then agree when each key's
    /// replicas do, not when every digest is equal.
    const PARTITIONS_KEYS: bool = false;

    /// What this node counted about itself for the run's report (blocked transactions,
    /// elections, ...): measurement only, never read back by the protocol. Each counter is
    /// combined over the nodes running at the end as its [`Counter::combine`] says, in the
    /// order the first node lists them. None by default.
    fn counters(&self) -> Vec<Counter> {
        Vec::new()
    }

    /// A digest of the replicated state: equal digests mean converged replicas. The default
    /// hashes [`Protocol::store`]; protocols with more state (tombstones, versions) say more.
    fn digest(&self) -> u64 {
        crate::digest::StableHasher::hash_of(&self.store())
    }

    /// The node's own invariants; an `Err` stops the run as a broken promise.
    fn check_invariants(&self) -> Result<(), String> {
        Ok(())
    }

    /// Whether [`Protocol::check_cluster`] says anything; the engine skips calling it (an
    /// O(nodes) walk after every handler) when it does not.
    const HAS_CLUSTER_INVARIANTS: bool = false;

    /// Invariants over every running node at once (at most one leader per term, committed
    /// prefixes agree, a lease holds only while nobody else can lead, ...), checked by the
    /// engine after every handler. `nodes[i]` is node i's state, `None` while it is crashed,
    /// and `monotonic[i]` its monotonic clock now (what `ctx.monotonic()` would read), so
    /// that a claim a node makes on its own clock is judged as it would judge it.
    ///
    /// `changed` is `Some(node)` when only that node's state changed since a check that
    /// passed (the engine: the node whose handler just ran), so that an invariant over pairs
    /// of nodes need judge only the pairs with `node` in them: every other pair is as it was,
    /// and held. `None` asks for every pair.
    fn check_cluster(
        nodes: &[Option<&Self>],
        monotonic: &[Time],
        changed: Option<NodeId>,
    ) -> Result<(), String> {
        let _ = (nodes, monotonic, changed);
        Ok(())
    }
}
