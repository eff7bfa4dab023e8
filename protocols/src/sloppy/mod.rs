//! Sloppy quorums with hinted handoff (Dynamo, DeCandia et al. 2007, section 4.6): the talk
//! demo's AP mode. Always writable, eventually consistent.
//!
//! # Replicas, quorums
//!
//! Each key has a preference list: every node, in ring order from `hash(key)`. Its first N
//! nodes (`n`; 0 = every node, the default, because the convergence check compares every
//! node's whole store) are the key's replicas. A read waits for R replies, a write for W
//! acknowledgements (`r`, `w`; default 1 and 1: the coordinator's own replica suffices, so
//! any node that a client reaches answers, partitioned or not). A request's own quorum
//! ([`Request::quorum`]) replaces both, capped at N. Nothing requires R + W > N: reads may
//! be stale, which is the point of the mode.
//!
//! # Sloppy writes, hinted handoff
//!
//! A node is *down* for a coordinator once it missed an acknowledgement (`ack_timeout`)
//! twice: a silent target is first sent the request's fetch or store once more, as dynamo's
//! coordinator does, since a lossy link loses a message now and then. It is up again as soon
//! as any message from it arrives. A write goes to the first N nodes of the
//! preference list that are up; each skipped node is replaced by the next node up beyond
//! the first N, which stores the value with a *hint* naming the node it stands in for (with
//! N = every node there is no node beyond, and a replica that is up carries the hint). A
//! target that fails to acknowledge in time is marked down and the coordinator keeps a hint
//! for it (and for the hints it carried). Every `handoff_interval` a node holding hints
//! probes their nodes ([`Message::Ping`]) and, once one answers, hands its hints back
//! ([`Message::Handoff`]); the node takes them (by the conflict rule, below), persists,
//! acknowledges, and only then is the hint deleted. Values and hints are persisted before the
//! acknowledgement that reveals them.
//!
//! Every write, puts included, reads R replicas first. Read-modify-writes (update, delete,
//! cas, append) apply [`kv::apply_to_value`] to the newest value read, then write the result
//! under a new [`Version`] `(counter + 1, me)`: concurrent ones may both apply (last writer
//! wins), and a client's retry may apply twice. Hence linearizability and durability are
//! measured, not promised. A write that times out stays silent (a retry keeps the request id
//! and an earlier try may still land); a get that times out answers unavailable.
//!
//! # Conflicts: last writer wins, or siblings
//!
//! The parameter `siblings` (a flag: the parameters have no string kind to spell
//! `conflicts = "lww" | "siblings"`) chooses what two concurrent writes of a key leave.
//!
//! * `false`, the default: *last writer wins*. A replica keeps one [`Versioned`] per key, the
//!   one with the greatest [`Version`]; the other write is silently lost, even when both
//!   were acknowledged. Default because it keeps the convergence check meaningful as one
//!   value per key, and it is what the talk demo shows.
//! * `true`: *siblings* (Dynamo section 4.4, "Data Versioning"). Every version also carries
//!   a vector clock ([`Clock`]). A replica keeps every version that no other version it holds
//!   descends from, so concurrent writes become siblings and neither is lost; one rule
//!   ([`Versions`]' merge) takes versions from writes, read repair, hinted handoff (a hint
//!   holds a set of versions) and anti-entropy (a bucket's digest covers every sibling). A
//!   get answers [`OpResult::Siblings`] when it reads two or more concurrent values; the
//!   client must reconcile them by writing.
//!
//! A write's clock: Dynamo's coordinator builds it from the *context* the client got with
//! its last read. Our clients send no context, so the coordinator's own knowledge is the
//! context: the versions its R replies read, merged, and those its own replica holds. The
//! new clock is their pointwise maximum with the coordinator's own entry set to its write
//! counter (the one in the [`Version`]: it exceeds every counter the node has seen, so two
//! writes of one node never share a clock, even when the node is no replica of the key). A
//! write therefore supersedes every version its coordinator knows: two puts at coordinators
//! that cannot reach each other become siblings, and the next write at a node holding both
//! reconciles them. A read-modify-write applies its operation to the newest (by [`Version`],
//! as last writer wins would pick) of those versions, deterministically; a version that
//! descends from another also has a greater [`Version`], so the pick never goes against
//! causality. The cost: clients must handle sibling answers, replicas hold (and ship) every
//! sibling with its clock, and tombstones stay as siblings of live values until a write
//! supersedes them.
//!
//! # Repair
//!
//! After a read, replicas that answered with an older version (or a corrupt copy, see
//! [`crate::quorum`]) get the newest (read repair; with siblings, every version read that
//! they lack). A slow backstop: every `anti_entropy` a node compares one bucket's digest
//! with one peer ([`quorum::Rotation`]: every (peer, bucket) pair in turn), and differing
//! buckets are exchanged both ways. It covers every key on every node, so replicas converge
//! after heal whatever N is. The operator's trick-value corrupts an entry (the key's newest
//! version: value changed, version, clock and checksum kept); read repair and anti-entropy
//! replace it with any intact copy of its version.
//!
//! # Promises and checked invariants
//!
//! Convergent and live after heal. Each node also checks: the newest version it holds of a
//! key never goes back; with siblings, no version it holds of a key descends from another it
//! holds, and the key's clocks (their pointwise maximum) never go back; the hints it holds
//! are exactly those stored minus those handed back (a persisted ledger: hints lost in a
//! crash show); and no hint for a node is still held once that node has answered
//! continuously, and not been marked down, for [`HANDOFF_DEADLINE`] since the hint was
//! stored.
//!
//! [`kv::apply_to_value`]: crate::kv::apply_to_value

mod anti_entropy;
mod coordinator;
mod durable;
mod handoff;
mod invariants;
mod messages;
mod read_repair;
mod replica;
#[cfg(test)]
mod tests;
mod versions;

pub use crate::quorum::PENDING_MAX;
pub use durable::{SloppyDurable, SloppyRecord};
use crate::tracked::{Compaction, Shadow, Tracked};
pub use handoff::{Hint, CONTACT_GAP, HANDOFF_BATCH, HANDOFF_DEADLINE};
pub use messages::{Message, Timer};
pub use versions::{descends, Clock, Versioned, Versions};

use crate::contract::{
    Context, NodeConfig, Operator, Promise, Protocol, ProtocolInfo, Request,
};
use crate::ids::NodeId;
use crate::kv::{Key, OpResult, Value};
use crate::{BugSet, ParamSet};
use crate::quorum::{self, Entry, Rotation, Version};
use crate::time::{Span, Time};
use coordinator::{Pending, Phase};
use std::collections::{BTreeMap, BTreeSet};

crate::protocol_params! {
    /// sloppy's parameters, as a scenario's `[cluster.params.sloppy]` sets them.
    pub(crate) struct Params {
        n: u64 = "0",
            "replicas per key N; 0 = every node";
        r: u64 = "1",
            "read quorum R (capped at N; 0 = 1)";
        w: u64 = "1",
            "write quorum W (capped at N; 0 = 1)";
        request_timeout: Span = "400ms",
            "how long a coordinator waits for R or W: a get answers unavailable, a \
                      write stays silent";
        ack_timeout: Span = "100ms",
            "a replica that has not answered within this is marked down (its write \
                      becomes a hint)";
        handoff_interval: Span = "100ms",
            "interval between probes of down nodes and hand-backs of hints";
        anti_entropy: Span = "200ms",
            "interval between one-bucket digest comparisons with the next peer";
        siblings: bool = "false",
            "keep concurrent writes as siblings under vector clocks (Dynamo section \
                      4.4) and answer gets with all of them; false: last writer wins";
    }
}

crate::planted_bugs! {
    /// sloppy's planted bugs.
    pub(crate) struct Bugs {
        never_hand_back = "never-hand-back-hints",
            "hints are stored but never handed back: the stand-in only probes";
        drop_hints = "drop-hints-on-crash",
            "hints are not reloaded after a restart, so a crashed stand-in forgets \
                      them";
        repair_older = "read-repair-writes-older",
            "read repair pushes the oldest version read, and replicas take a repair \
                      whatever its version";
    }
}

/// One node of the sloppy-quorum store (see the module doc).
///
/// # Driving contract
///
/// As [`Protocol`] says. On start it arms [`Timer::Handoff`] and [`Timer::AntiEntropy`],
/// which re-arm themselves. It persists every change of entries or hints before the message
/// that reveals it; as a coordinator it serves its own replica inline.
#[derive(Debug)]
pub struct Sloppy {
    me: NodeId,
    nodes: Vec<NodeId>,
    peers: Vec<NodeId>,
    n: usize,
    r: usize,
    w: usize,
    request_timeout: Span,
    ack_timeout: Span,
    handoff_interval: Span,
    anti_entropy: Span,
    /// Keep concurrent versions (Dynamo section 4.4) instead of the last writer's.
    siblings: bool,
    bugs: Bugs,
    entries: Tracked<Key, Versions>,
    hints: Tracked<(NodeId, Key), Hint>,
    /// What the invariants judge the handoff deadline by (`hints` is replaced only while
    /// starting, before any judgement).
    hint_floor: crate::quorum::HintFloor,
    counter: u64,
    hints_stored: u64,
    hints_delivered: u64,
    /// When the next record is a snapshot.
    compaction: Compaction,
    /// The log's fold, checked in debug builds.
    shadow: Shadow<SloppyDurable>,
    down: BTreeSet<NodeId>,
    /// Per peer, the first and last message of its current unbroken run of messages.
    heard: BTreeMap<NodeId, (Time, Time)>,
    now: Time,
    next_op: u64,
    pending: BTreeMap<u64, Pending>,
    rotation: Rotation,
    /// A broken invariant seen while handling (a key's versions went back).
    violation: Option<String>,
}

fn op_result_unavailable() -> OpResult {
    OpResult::Unavailable { hint: None }
}

impl Sloppy {
    /// Lamport: the next version this node issues must be past every version it has seen.
    fn observe(&mut self, v: Version) {
        self.counter = self.counter.max(v.counter);
    }
}

impl Protocol for Sloppy {
    type Message = Message;
    type Timer = Timer;
    type Durable = SloppyDurable;
    type Record = SloppyRecord;

    /// A record whose checksum fails ends the recovery: the node keeps the state of its
    /// last intact record (an earlier sync); what it lost, other replicas hold, and
    /// anti-entropy brings back.
    type Role = crate::roles::Replica;

    fn info() -> ProtocolInfo {
        ProtocolInfo {
            name: "sloppy",
            description: "sloppy quorums (Dynamo): writes to the first N healthy nodes with \
                          hinted handoff, read repair, last writer wins (or siblings), \
                          anti-entropy. Available everywhere, eventually consistent",
            promises: &[Promise::Convergent, Promise::LiveAfterHeal],
            params: Params::SPECS,
            bugs: Bugs::SPECS,
            roles: <crate::roles::Replica as crate::RoleKind>::SPECS,
            transactions: false,
            contexts: false,
            operators: &["trick-value"],
            membership: false,
            check_params,
        }
    }

    fn start(
        ctx: &mut Context<'_, Self>,
        config: &NodeConfig,
        durable: Option<&SloppyDurable>,
    ) -> Self {
        let bugs = Bugs::from_config(config);
        let params = Params::from_params(&config.params);
        let count = config.nodes.len();
        let n = match params.n as usize {
            0 => count,
            n => n.min(count),
        };
        let quorum = |q: u64| (q as usize).clamp(1, n.max(1));
        let mut node = Sloppy {
            me: config.id,
            nodes: config.nodes.clone(),
            peers: config.peers().collect(),
            n,
            r: quorum(params.r),
            w: quorum(params.w),
            request_timeout: params.request_timeout,
            ack_timeout: Span(params.ack_timeout.as_micros().max(1)),
            handoff_interval: Span(params.handoff_interval.as_micros().max(1)),
            // A zero interval would re-fire at the same instant forever.
            anti_entropy: Span(params.anti_entropy.as_micros().max(1)),
            siblings: params.siblings,
            bugs,
            entries: Tracked::default(),
            hints: Tracked::default(),
            hint_floor: crate::quorum::HintFloor::default(),
            counter: 0,
            hints_stored: 0,
            hints_delivered: 0,
            compaction: Compaction::default(),
            shadow: Shadow::new(durable),
            down: BTreeSet::new(),
            heard: BTreeMap::new(),
            now: ctx.now(),
            next_op: 0,
            pending: BTreeMap::new(),
            rotation: Rotation::default(),
            violation: None,
        };
        if let Some(d) = durable {
            node.entries = Tracked::new(d.entries.clone());
            node.counter = d.counter;
            node.hints_stored = d.hints_stored;
            node.hints_delivered = d.hints_delivered;
            if !bugs.drop_hints {
                node.hints = Tracked::new(d.hints.clone());
            }
            let held = node.entries.values().flat_map(Versions::iter);
            let top = held.map(|v| v.entry.version.counter).max();
            node.counter = node.counter.max(top.unwrap_or(0));
        }
        ctx.set_timer(Timer::Handoff, node.handoff_interval);
        ctx.set_timer(Timer::AntiEntropy, node.anti_entropy);
        node
    }

    fn on_message(&mut self, ctx: &mut Context<'_, Self>, from: NodeId, msg: Message) {
        self.now = ctx.now();
        self.heard_from(from);
        match msg {
            Message::Fetch { .. } | Message::Store { .. } => {
                if let Some(reply) = self.serve(ctx, msg) {
                    ctx.send(from, reply);
                }
            }
            Message::Fetched { .. } | Message::Stored { .. } => self.on_reply(ctx, from, msg),
            Message::Handoff { entries } => self.on_handoff(ctx, from, entries),
            Message::HandoffAck { done } => self.on_handoff_ack(ctx, from, done),
            Message::Ping => ctx.send(from, Message::Pong),
            Message::Pong => self.on_pong(ctx, from),
            Message::Digest { .. } | Message::Entries { .. } => {
                self.on_anti_entropy(ctx, from, msg)
            }
        }
    }

    fn on_timer(&mut self, ctx: &mut Context<'_, Self>, timer: Timer) {
        self.now = ctx.now();
        match timer {
            Timer::Deadline(op) => self.on_deadline(ctx, op),
            Timer::AckCheck(op) => self.on_ack_check(ctx, op),
            Timer::Handoff => self.on_handoff_tick(ctx),
            Timer::AntiEntropy => {
                if self.drop_unwritten() {
                    self.persist(ctx);
                }
                if !self.peers.is_empty() {
                    let (peer, bucket) = self.rotation.next(&self.peers);
                    let digest = self.bucket_digest(bucket);
                    ctx.send(peer, Message::Digest { bucket, digest });
                }
                ctx.set_timer(Timer::AntiEntropy, self.anti_entropy);
            }
        }
    }

    fn on_request(&mut self, ctx: &mut Context<'_, Self>, request: Request) {
        self.now = ctx.now();
        if quorum::refuse_when_full(ctx, self.pending.len(), &request) {
            return;
        }
        let (r, w) = match request.quorum {
            Some(q) => {
                let q = usize::from(q).clamp(1, self.n.max(1));
                (q, q)
            }
            None => (self.r, self.w),
        };
        let key = request.op.key();
        let targets = self.plan(key);
        self.next_op += 1;
        let op = self.next_op;
        let pending = Pending {
            request: request.id,
            op: request.op,
            r: r.min(targets.len()),
            w: w.min(targets.len()),
            targets,
            phase: Phase::Read,
            replies: BTreeMap::new(),
            acks: BTreeSet::new(),
            versions: Versions::default(),
            result: None,
            answered: false,
            retried: false,
        };
        self.pending.insert(op, pending);
        ctx.set_timer(Timer::Deadline(op), self.request_timeout);
        self.begin(ctx, op);
    }

    fn on_operator(&mut self, ctx: &mut Context<'_, Self>, command: Operator) {
        self.now = ctx.now();
        let Operator::TrickValue { key, value } = command else {
            ctx.note(|| format!("ignored operator command {command}"));
            return;
        };
        // Behind the protocol's back: the value of the key's newest version changes; its
        // version, clock and checksum do not.
        match self
            .entries
            .get_mut(&key)
            .and_then(|vs| std::rc::Rc::make_mut(&mut vs.0).last_mut())
        {
            Some(v) => v.entry.value = Some(value),
            None => {
                let entry = Entry {
                    version: Version::default(),
                    value: Some(value),
                    checksum: 0,
                };
                self.entries
                    .insert(key, Versions::one(Versioned::lww(entry)));
            }
        }
        self.persist(ctx);
    }

    /// One value per key: the one last writer wins picks (with siblings too); tombstones
    /// are absences.
    fn role(&self) -> crate::roles::Replica {
        crate::roles::Replica::Replica
    }

    fn store(&self) -> BTreeMap<Key, Value> {
        let newest = |vs: &Versions| vs.newest().and_then(|v| v.entry.value.clone());
        let held = self.entries.iter();
        held.filter_map(|(k, vs)| newest(vs).map(|v| (*k, v)))
            .collect()
    }

    fn siblings(&self) -> BTreeMap<Key, Vec<Option<Value>>> {
        let held = self.entries.iter();
        held.filter_map(|(k, vs)| vs.sibling_values().map(|v| (*k, v)))
            .collect()
    }

    fn digest(&self) -> u64 {
        quorum::store_digest(self.all_entries())
    }
    fn check_invariants(&self) -> Result<(), String> {
        self.check_node()
    }
}

/// sloppy's own check of its parameters ([`crate::params::ParamCheck`]): its timers can
/// fire, N is at most the cluster, and R and W at most N (sloppy promises no intersection,
/// so R + W <= N is its design, but a quorum larger than N is never met).
fn check_params(
    params: &crate::params::Params,
    ctx: crate::params::ParamContext<'_>,
) -> Result<(), crate::params::ParamProblem> {
    use crate::params::{int_of, timers_at_least_min, ParamProblem};
    timers_at_least_min(
        params,
        &[
            "request_timeout",
            "ack_timeout",
            "handoff_interval",
            "anti_entropy",
        ],
    )?;
    let nodes = u64::from(ctx.nodes);
    let n = int_of(params, "n");
    if n > nodes {
        return Err(ParamProblem {
            param: "n",
            message: format!("expected n (replicas per key) at most the {nodes} nodes, found {n}"),
        });
    }
    let n = if n == 0 { nodes } else { n };
    for q in ["r", "w"] {
        let v = int_of(params, q);
        if v > n {
            return Err(ParamProblem {
                param: q,
                message: format!("expected {q} at most N = {n} replicas per key, found {v}"),
            });
        }
    }
    Ok(())
}
