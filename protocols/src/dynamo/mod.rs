//! Dynamo (DeCandia et al., SOSP 2007, sections 4.1-4.8) as the seed's node-amazon-dynamo
//! builds it: a consistent-hashing ring with virtual nodes, vector clocks, replication to a
//! key's node and its backups, a sloppy quorum with a per-request quorum capped at the
//! replica count, a coordinator per request, and the NEW -> PENDING -> READY join protocol.
//!
//! # Ring, preference list (sections 4.2, 4.3)
//!
//! Every member owns `tokens` positions on a ring of 64-bit hashes ([`Ring`]). A key's
//! preference list is the distinct physical members met clockwise from the key's hash; its
//! first N (`n`, capped at the members) are the key's replicas. Each node keeps its own view
//! of the members ([`Member`]: PENDING, READY, LEFT), gossiped with every anti-entropy
//! digest (section 4.8: no global view).
//!
//! # Coordinator, quorums (sections 4.5, 4.6; the seed's coordinator steps)
//!
//! The node that receives a request coordinates it (seed: "hash the key ..., send requests
//! to the node responsible for the key + to backups, when quorum is fulfilled, send response
//! to the user"). A read waits for R replies, a write for W acknowledgements (`r`, `w`);
//! a request's own quorum ([`Request::quorum`], the seed's `?quorum=`) replaces both, and
//! "if the quorum value provided is higher than the replicas number, the replicas number is
//! used". Failure detection is local and from timeouts (section 4.8): a node that missed an
//! acknowledgement (`ack_timeout`) is down for this coordinator until any message from it
//! arrives. A write skips down replicas: the next members up beyond the first N stand in,
//! holding the value with a hint, and hand it back when the node answers (section 4.6,
//! hinted handoff).
//!
//! # Versions, contexts, siblings (section 4.4)
//!
//! Every version carries a vector clock. A replica keeps every version no other it holds
//! descends from: concurrent writes become siblings, and a get answers all of them
//! ([`OpResult::Siblings`]) with one merged context (their clocks' pointwise maximum). A put
//! carries a context and supersedes exactly the versions that context covers; a delete is a
//! put of a tombstone with context. A client that sends no context (most workloads) has its
//! write read R replicas first, and what it read (merged with what the coordinator's own
//! replica holds) is its context. A client that does (a workload with `contexts = true`,
//! [`Request::context`], as the seed's REST clients GET with the clock and PUT it back) has
//! its put or delete written at once, no read round: the new clock is the context with one
//! actor's entry set to the next counter, so the write supersedes exactly the versions the
//! context covers (`start_context_write`). The actor is the coordinator when the context
//! covers the coordinator's newest write of the key; otherwise (the client had not read that
//! write: two clients writing through one coordinator from one read) one of the node's
//! stand-in actors for the key (`n + 64`, `n + 128`, ...), the first whose last write the
//! context covers, since an entry `a: c` claims every write of actor `a` up to `c`: taking
//! the coordinator's own entry there would supersede a write nobody read (the lost update of
//! server-side vector clocks that dotted version vectors solve, Preguiça et al. 2010). Each
//! actor's last write of a key is durable before its version leaves. An update, cas or
//! append needs the current value, so it reads first whatever it carries. A get answers the
//! merged context of the versions it answers ([`Context::reply_with_context`]; the engine
//! drops it for clients that send none). Clocks are truncated to `clock_max` pairs, the
//! oldest going first (section 4.4); truncation can only make a write look concurrent with
//! what it read (siblings), never make it supersede more. Read-modify-writes apply to the
//! newest sibling, and one that changes nothing (a cas whose expected value differs, an
//! update or delete of an absent key) writes no version: it is answered from its read, as
//! a get, and supersedes no sibling. An append first reconciles siblings into the union of
//! their items (each item once: the first sibling's, then the items each other one adds),
//! as a shopping cart merges (section 4.4), so that no acknowledged append vanishes.
//!
//! # Joins and leaves (the seed's join protocol)
//!
//! Nodes `n1..n{initial}` start in the ring, READY (`initial = 0`: every node). The others
//! start NEW and, from `join_after` on, follow the seed's steps:
//!
//! 1. state NEW;
//! 2. ask every node its state; if any is PENDING, wait a random time (`join_wait`) and
//!    retry step 2;
//! 3. if other nodes are NEW, the first by hostname goes; the others wait and retry step 2;
//! 4. ask every node for its predicted ring with this node added; if all predictions are the
//!    same, ask every node again to add it (they record it PENDING); the node is PENDING;
//! 5. ask the members for the keys it now owns and the backups it must hold, and copy them;
//! 6. once copied, READY, announced to every node.
//!
//! While a node is PENDING it receives every write whose preference list (with it) names it,
//! but counts toward no quorum, and reads go to the ring without it: a key stays readable at
//! its quorum while ownership moves. The node `leave` (0: none) decommissions at `leave_at`:
//! it pushes every version it holds to the key's replicas in the ring without it, waits for
//! their acknowledgements, then announces LEFT and stops being a replica (it still
//! coordinates requests that reach it).
//!
//! # Repair
//!
//! Read repair after gets; hinted handoff; and every `anti_entropy` a node compares its
//! Merkle tree over the keys it and one peer (in rotation) both replicate with the peer's:
//! roots first, then only the branches that differ, down to the leaves, whose versions are
//! exchanged both ways (section 4.7; `merkle.rs`, `anti_entropy.rs`). The summary counts the
//! bytes sent against what a full-state exchange would have sent.
//!
//! # Promises and checked invariants
//!
//! Convergent (every replica of a key ends with the same versions), durable acknowledged
//! writes (a write is gone only when a write whose context covered it superseded it, which
//! the `contexts` check judges from the history when clients send contexts), live after
//! heal. Not linearizable: reads may be stale and concurrent writes become siblings.
//! Each node checks that a key's clocks never go back and that no version it holds
//! descends from another it holds, and the hint ledger; the cluster checks that at most one
//! node is PENDING at a time (what steps 2 and 3 are for).

mod anti_entropy;
mod merkle;
mod coordinator;
mod durable;
mod handoff;
mod invariants;
mod membership;
mod messages;
mod read_repair;
mod replica;
mod ring;

#[cfg(test)]
mod tests;
mod versions;

pub use crate::quorum::PENDING_MAX;
pub use durable::{DynamoDurable, DynamoRecord};
use crate::tracked::{Compaction, Shadow, Tracked};
pub use handoff::{Hint, CONTACT_GAP, HANDOFF_BATCH, HANDOFF_DEADLINE};
pub use messages::{Message, Timer};
pub use ring::{key_position, Member, Ring};
pub use versions::{descends, truncate, Clock, Compare, Versioned, Versions};

use crate::contract::{Context, Counter, Membership, NodeConfig, Operator, Promise, Protocol, ProtocolInfo};
use crate::contract::Request;
use crate::ids::NodeId;
use crate::kv::{Key, Op, OpResult, Value};
use crate::quorum::{self, Entry, Rotation, Version};
use crate::time::{Span, SpanRange, Time};
use crate::{BugSet, ParamSet};
use coordinator::{Pending, Phase};
use membership::Join;
use std::collections::{BTreeMap, BTreeSet};

crate::protocol_params! {
    /// dynamo's parameters, as a scenario's `[cluster.params.dynamo]` sets them.
    pub(crate) struct Params {
        n: u64 = "3",
            "replicas per key N (capped at the ring's members)";
        r: u64 = "2",
            "read quorum R (capped at N; 0 = 1)";
        w: u64 = "2",
            "write quorum W (capped at N; 0 = 1)";
        tokens: u64 = "8",
            "virtual nodes (ring positions) per member";
        clock_max: u64 = "10",
            "vector clock pairs kept; the oldest goes first (section 4.4)";
        request_timeout: Span = "400ms",
            "how long a coordinator waits for R or W: a get answers unavailable, a \
                      write stays silent";
        ack_timeout: Span = "100ms",
            "a replica that has not answered within this is marked down (section 4.8)";
        handoff_interval: Span = "100ms",
            "interval between probes of down nodes and hand-backs of hints";
        anti_entropy: Span = "200ms",
            "interval between one-bucket digest comparisons with the next peer";
        initial: u64 = "0",
            "nodes n1..nK start in the ring; the others join (0 = every node starts in it)";
        join_after: Span = "1s",
            "when NEW nodes start the join protocol";
        join_wait: SpanRange = "50ms..250ms",
            "the join protocol's random wait before trying again";
        leave: u64 = "0",
            "the node (its number) that decommissions gracefully; 0 = none";
        leave_at: Span = "10s",
            "when it starts to";
    }
}

crate::planted_bugs! {
    /// dynamo's planted bugs.
    pub(crate) struct Bugs {
        concurrent_as_descends = "concurrent-as-descends",
            "vector clock comparison treats a concurrent clock as descending when any of \
                      its entries is ahead, so one of two concurrent writes is dropped";
        truncate_newest = "truncate-newest",
            "clock truncation removes the newest pairs, the writer's own included";
        uncapped_quorum = "uncapped-request-quorum",
            "a request's own quorum (the seed's ?quorum=) is not capped at the replicas, \
                      so a request asking more than N waits for replies that never come";
        skip_pending_check = "join-skips-pending-check",
            "a NEW node joins without waiting for PENDING nodes or the first NEW node \
                      by hostname (join steps 2 and 3)";
        ack_before_sync = "ack-before-sync",
            "a replica acknowledges writes and hints at once and syncs its log only every 100 ms \
                      (Cassandra's periodic commitlog sync): a crash takes back what it \
                      acknowledged since its last sync";
        merkle_skips_last_branch = "merkle-skips-last-branch",
            "anti-entropy's Merkle descent compares only the first 15 of a node's 16 \
                      children (an off-by-one), so keys under a last branch are never repaired \
                      by anti-entropy";
        context_ignored = "context-ignored",
            "a put or delete that comes with the client's causal context supersedes every \
                      version the coordinator holds of the key, not only those the context \
                      covers: a concurrent acknowledged write its client never read is lost";
    }
}

/// One node of the Dynamo store (see the module doc).
///
/// # Driving contract
///
/// As [`Protocol`] says. On start it arms [`Timer::Handoff`] and [`Timer::AntiEntropy`],
/// which re-arm themselves, and, on a node that is to join or leave, [`Timer::Join`] or
/// [`Timer::Leave`]. It persists its incarnation at start, and every change of entries,
/// hints or members before the message that reveals it; as a coordinator it serves its own
/// replica inline, and numbers its requests within its incarnation, so that a reply to an
/// earlier incarnation's request is never taken for one of this incarnation's.
#[derive(Debug)]
pub struct Dynamo {
    me: NodeId,
    nodes: Vec<NodeId>,
    peers: Vec<NodeId>,
    n: usize,
    r: usize,
    w: usize,
    tokens: u64,
    clock_max: usize,
    request_timeout: Span,
    ack_timeout: Span,
    handoff_interval: Span,
    anti_entropy: Span,
    join_wait: SpanRange,
    bugs: Bugs,
    /// When it syncs: before what depends on a write leaves, or every 100 ms with
    /// `ack-before-sync`.
    sync_rule: crate::sync_rule::SyncRule,
    cmp: Compare,
    entries: Tracked<Key, Versions>,
    hints: Tracked<(NodeId, Key), Hint>,
    /// What the invariants judge the handoff deadline by (`hints` is replaced only while
    /// starting, before any judgement).
    hint_floor: crate::quorum::HintFloor,
    counter: u64,
    hints_stored: u64,
    hints_delivered: u64,
    /// Bytes this node's anti-entropy sent (hashes, indices and versions; measurement only).
    anti_entropy_bytes: u64,
    /// What a full-state exchange would have sent in the same rounds (measurement only).
    full_exchange_bytes: u64,
    /// When the next record is a snapshot.
    compaction: Compaction,
    /// The log's fold, checked in debug builds.
    shadow: Shadow<DynamoDurable>,
    /// The newest version this node wrote of each key, as a coordinator (part of every
    /// later write's context of the key).
    own: Tracked<Key, Versioned>,
    /// The counter of the last write of each key this node made under each of its stand-in
    /// actors (context writes whose client had not seen this node's newest write of the key;
    /// see [`Dynamo::context_actor`]). Empty unless clients send contexts.
    actors: Tracked<(Key, NodeId), u64>,
    /// This node's view of the ring's members.
    members: Tracked<NodeId, Member>,
    /// The READY members' ring: replicas, quorums, reads.
    read_ring: Ring,
    /// READY and PENDING members' ring: where writes also go.
    write_ring: Ring,
    /// Whether this node is to join (NEW until it is a member).
    joiner: bool,
    /// How many nodes start in the ring.
    initial: usize,
    /// Whether the engine changes the membership (a scenario's `initial`, `join`, `leave`
    /// and `remove`): `peers` is then the cluster as the engine's hosts list and its
    /// [`Membership`] changes give it, and a joiner learns the ring from the answers to its
    /// step 2.
    dynamic: bool,
    /// The node that leaves, if any.
    leaver: Option<NodeId>,
    join: Join,
    /// Join and leave milestones, for the report: (pending at, ready at, keys copied).
    milestones: (u64, u64, u64),
    down: BTreeSet<NodeId>,
    /// Per peer, the first and last message of its current unbroken run of messages.
    heard: BTreeMap<NodeId, (Time, Time)>,
    now: Time,
    /// How many times this node has started (durable).
    incarnation: u64,
    /// The last request number used: the incarnation in the upper 32 bits.
    next_op: u64,
    pending: BTreeMap<u64, Pending>,
    rotation: Rotation,
    /// A broken invariant seen while handling (a key's versions went back).
    violation: Option<String>,
}

fn op_result_unavailable() -> OpResult {
    OpResult::Unavailable { hint: None }
}

impl Dynamo {
    /// Lamport: the next version this node issues must be past every version it has seen.
    fn observe(&mut self, v: Version) {
        self.counter = self.counter.max(v.counter);
    }

    /// Rebuilds the rings from the members.
    fn rebuild_rings(&mut self) {
        let with = |ok: fn(Member) -> bool, m: &BTreeMap<NodeId, Member>| {
            m.iter().filter(move |(_, s)| ok(**s)).map(|(n, _)| *n).collect::<Vec<_>>()
        };
        self.read_ring = Ring::new(with(|s| s == Member::Ready, &self.members), self.tokens);
        let serving = |s| s != Member::Left;
        self.write_ring = Ring::new(with(serving, &self.members), self.tokens);
    }

    /// N, capped at the ring's members.
    fn replicas(&self) -> usize {
        self.n.min(self.read_ring.len()).max(1)
    }

    /// The key's replicas: the first N of its preference list in the READY ring.
    pub fn replica_set(&self, key: Key) -> Vec<NodeId> {
        let mut pref = self.read_ring.preference(key);
        pref.truncate(self.replicas());
        pref
    }

    /// This node's own state in its view (`None`: not in the ring).
    pub fn state(&self) -> Option<Member> {
        self.members.get(&self.me).copied()
    }
}

/// Counter names per node (the contract's counters are named statically).
const PENDING_AT: [&str; 9] = [
    "n1 pending at ms", "n2 pending at ms", "n3 pending at ms", "n4 pending at ms",
    "n5 pending at ms", "n6 pending at ms", "n7 pending at ms", "n8 pending at ms",
    "n9 pending at ms",
];
const LEFT_AT: [&str; 9] = [
    "n1 left at ms", "n2 left at ms", "n3 left at ms", "n4 left at ms",
    "n5 left at ms", "n6 left at ms", "n7 left at ms", "n8 left at ms",
    "n9 left at ms",
];
const READY_AT: [&str; 9] = [
    "n1 ready at ms", "n2 ready at ms", "n3 ready at ms", "n4 ready at ms",
    "n5 ready at ms", "n6 ready at ms", "n7 ready at ms", "n8 ready at ms",
    "n9 ready at ms",
];

impl Protocol for Dynamo {
    type Message = Message;
    type Timer = Timer;
    type Durable = DynamoDurable;
    type Record = DynamoRecord;

    /// A record whose checksum fails ends the recovery: the node keeps the state of its
    /// last intact record (an earlier sync); what it lost, other replicas hold, and
    /// anti-entropy brings back.
    type Role = crate::roles::Replica;

    fn info() -> ProtocolInfo {
        ProtocolInfo {
            name: "dynamo",
            description: "Dynamo (node-amazon-dynamo): consistent-hashing ring with virtual \
                          nodes, vector clocks and siblings, sloppy quorums with per-request \
                          quorum and hinted handoff, NEW -> PENDING -> READY joins, \
                          anti-entropy. Available, eventually consistent",
            promises: &[
                Promise::Convergent,
                Promise::DurableAcknowledgedWrites,
                Promise::LiveAfterHeal,
            ],
            params: Params::SPECS,
            bugs: Bugs::SPECS,
            roles: <crate::roles::Replica as crate::RoleKind>::SPECS,
            transactions: false,
            contexts: true,
            operators: &["trick-value"],
            membership: true,
            check_params,
        }
    }

    fn start(
        ctx: &mut Context<'_, Self>,
        config: &NodeConfig,
        durable: Option<&DynamoDurable>,
    ) -> Self {
        let bugs = Bugs::from_config(config);
        let sync_rule = crate::sync_rule::SyncRule::new(bugs.ack_before_sync);
        let params = Params::from_params(&config.params);
        let count = config.nodes.len();
        let dynamic = config.joining || config.members.len() < count;
        let initial = match params.initial as usize {
            0 => count,
            k => k.min(count),
        };
        // The ring at the start: n1..n{initial} (the `initial` parameter), or in a run whose
        // membership the engine changes, the cluster as it is now, this node included unless
        // it is joining (a joiner learns who of it is READY from step 2's answers).
        let ring0: Vec<NodeId> = match dynamic {
            true => {
                let joiner = config.joining;
                let others = config.members.iter().copied();
                others.filter(|x| !joiner || *x != config.id).collect()
            }
            false => config.nodes[..initial].to_vec(),
        };
        let n = (params.n as usize).clamp(1, count.max(1));
        let quorum = |q: u64| (q as usize).clamp(1, n);
        let me = config.id;
        let index = config.nodes.iter().position(|x| *x == me).unwrap_or(0);
        let leaver = match params.leave as usize {
            0 => None,
            k => config.nodes.get(k - 1).copied(),
        };
        let mut node = Dynamo {
            me,
            nodes: config.nodes.clone(),
            peers: match dynamic {
                true => ring0.iter().copied().filter(|x| *x != config.id).collect(),
                false => config.peers().collect(),
            },
            n,
            r: quorum(params.r),
            w: quorum(params.w),
            tokens: params.tokens.max(1),
            clock_max: (params.clock_max as usize).max(1),
            request_timeout: params.request_timeout,
            ack_timeout: Span(params.ack_timeout.as_micros().max(1)),
            handoff_interval: Span(params.handoff_interval.as_micros().max(1)),
            // A zero interval would re-fire at the same instant forever.
            anti_entropy: Span(params.anti_entropy.as_micros().max(1)),
            join_wait: params.join_wait,
            bugs,
            sync_rule,
            cmp: Compare {
                concurrent_as_descends: bugs.concurrent_as_descends,
            },
            entries: Tracked::default(),
            hints: Tracked::default(),
            hint_floor: crate::quorum::HintFloor::default(),
            counter: 0,
            hints_stored: 0,
            hints_delivered: 0,
            anti_entropy_bytes: 0,
            full_exchange_bytes: 0,
            compaction: Compaction::default(),
            shadow: Shadow::new(durable),
            own: Tracked::default(),
            actors: Tracked::default(),
            members: ring0.iter().map(|x| (*x, Member::Ready)).collect(),
            read_ring: Ring::default(),
            write_ring: Ring::default(),
            joiner: config.joining || (!dynamic && index >= initial),
            initial,
            dynamic,
            leaver,
            join: Join::Idle,
            milestones: (0, 0, 0),
            down: BTreeSet::new(),
            heard: BTreeMap::new(),
            now: ctx.now(),
            incarnation: 0,
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
            node.hints = Tracked::new(d.hints.clone());
            node.members = Tracked::new(d.members.clone());
            node.own = Tracked::new(d.own.clone());
            node.actors = Tracked::new(d.actors.clone());
            node.milestones = d.milestones;
            let held = node.entries.values().flat_map(Versions::iter);
            let top = held.map(|v| v.entry.version.counter).max();
            node.counter = node.counter.max(top.unwrap_or(0));
        }
        node.rebuild_rings();
        node.start_incarnation(ctx, durable.map_or(0, |d| d.incarnation));
        ctx.set_timer(Timer::Handoff, node.handoff_interval);
        ctx.set_timer(Timer::AntiEntropy, node.anti_entropy);
        node.arm_membership(ctx, &params);
        node.sync_rule.end_of_handler(ctx);
        node
    }

    fn on_message(&mut self, ctx: &mut Context<'_, Self>, from: NodeId, msg: Message) {
        self.handle_message(ctx, from, msg);
        self.sync_rule.end_of_handler(ctx);
    }

    fn on_timer(&mut self, ctx: &mut Context<'_, Self>, timer: Timer) {
        self.handle_timer(ctx, timer);
        self.sync_rule.end_of_handler(ctx);
    }

    fn on_request(&mut self, ctx: &mut Context<'_, Self>, request: Request) {
        self.handle_request(ctx, request);
        self.sync_rule.end_of_handler(ctx);
    }

    fn on_operator(&mut self, ctx: &mut Context<'_, Self>, command: Operator) {
        self.now = ctx.now();
        let Operator::TrickValue { key, value } = command else {
            ctx.note(|| format!("ignored operator command {command}"));
            return;
        };
        // Behind the protocol's back: the value of the key's newest version changes; its
        // version, clock and checksum do not.
        match self.entries.get_mut(&key).and_then(|vs| vs.0.last_mut()) {
            Some(v) => v.entry.value = Some(value),
            None => {
                let entry = Entry {
                    version: Version::default(),
                    value: Some(value),
                    checksum: 0,
                };
                let v = Versioned {
                    entry,
                    clock: Clock::new(),
                };
                self.entries.insert(key, Versions::one(v));
            }
        }
        self.persist(ctx);
        self.sync_rule.end_of_handler(ctx);
    }

    fn on_membership(&mut self, ctx: &mut Context<'_, Self>, change: Membership) {
        self.now = ctx.now();
        self.membership_changed(ctx, change);
        self.sync_rule.end_of_handler(ctx);
    }

    fn has_left(&self) -> bool {
        self.state() == Some(Member::Left)
    }

    fn role(&self) -> crate::roles::Replica {
        crate::roles::Replica::Replica
    }

    /// One value per key: the newest sibling; tombstones are absences.
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

    const PARTITIONS_KEYS: bool = true;

    fn replicates(&self, key: Key) -> bool {
        self.replica_set(key).contains(&self.me)
    }

    fn counters(&self) -> Vec<Counter> {
        let (pending_at, ready_at, copied) = self.milestones;
        let mut c = vec![
            Counter::sum("ring members", u64::from(self.state() == Some(Member::Ready))),
            Counter::sum("keys copied by joins and leaves", copied),
            Counter::sum("hints handed back", self.hints_delivered),
            Counter::sum("anti-entropy bytes", self.anti_entropy_bytes),
            Counter::sum("full-exchange bytes instead", self.full_exchange_bytes),
        ];
        // Every node lists the same counters: the joiners' and the leaver's milestones.
        for (j, node) in self.nodes.iter().enumerate().take(PENDING_AT.len()) {
            let mine = *node == self.me;
            if self.dynamic {
                // Joiners the engine started list their own milestones (the report unites
                // the nodes' counters); a leave is in the run's faults, as the engine
                // stops the node once it has left.
                if mine && self.joiner {
                    c.push(Counter::max(PENDING_AT[j], pending_at));
                    c.push(Counter::max(READY_AT[j], ready_at));
                }
                continue;
            }
            if j >= self.initial {
                c.push(Counter::max(PENDING_AT[j], if mine { pending_at } else { 0 }));
                c.push(Counter::max(READY_AT[j], if mine { ready_at } else { 0 }));
            }
            if Some(*node) == self.leaver {
                c.push(Counter::max(LEFT_AT[j], if mine { ready_at } else { 0 }));
            }
        }
        c
    }

    fn digest(&self) -> u64 {
        quorum::store_digest(self.all_entries())
    }

    fn check_invariants(&self) -> Result<(), String> {
        self.check_node()
    }

    const HAS_CLUSTER_INVARIANTS: bool = true;

    fn check_cluster(
        nodes: &[Option<&Self>],
        _monotonic: &[Time],
        _changed: Option<NodeId>,
    ) -> Result<(), String> {
        invariants::check_cluster(nodes)
    }
}

/// dynamo's own check of its parameters ([`crate::params::ParamCheck`]): its timers can fire,
/// and a ring has at least one token per member and a clock at least one pair. N, R and W
/// larger than the ring are capped, as the seed caps `?quorum=`, so they are not refused.
fn check_params(
    params: &crate::params::Params,
    _ctx: crate::params::ParamContext<'_>,
) -> Result<(), crate::params::ParamProblem> {
    use crate::params::{int_of, timers_at_least_min, ParamProblem};
    timers_at_least_min(
        params,
        &["request_timeout", "ack_timeout", "handoff_interval", "anti_entropy"],
    )?;
    for (name, what) in [("tokens", "tokens per member"), ("clock_max", "clock pairs")] {
        let v = int_of(params, name);
        if v == 0 {
            return Err(ParamProblem {
                param: name,
                message: format!("expected at least 1 {what}, found 0"),
            });
        }
    }
    Ok(())
}

/// The handlers' bodies: each trait handler runs one, then the node's late sync, if any.
impl Dynamo {
    fn handle_message(&mut self, ctx: &mut Context<'_, Self>, from: NodeId, msg: Message) {
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
            Message::Digest { .. } | Message::Branches { .. } | Message::Entries { .. } => {
                self.on_anti_entropy(ctx, from, msg)
            }
            other => self.on_membership(ctx, from, other),
        }
    }

    fn handle_timer(&mut self, ctx: &mut Context<'_, Self>, timer: Timer) {
        self.now = ctx.now();
        match timer {
            Timer::Deadline(op) => self.on_deadline(ctx, op),
            Timer::AckCheck(op) => self.on_ack_check(ctx, op),
            Timer::Handoff => self.on_handoff_tick(ctx),
            Timer::AntiEntropy => self.on_anti_entropy_tick(ctx),
            Timer::Join => self.on_join_timer(ctx),
            Timer::Leave => self.on_leave_timer(ctx),
        }
    }

    fn handle_request(&mut self, ctx: &mut Context<'_, Self>, request: Request) {
        self.now = ctx.now();
        if quorum::refuse_when_full(ctx, self.pending.len(), &request) {
            return;
        }
        let n = self.replicas();
        let (r, w) = match request.quorum {
            // Seed: "if quorum value provided is higher than replicas number, replicas
            // number is used as quorum".
            Some(q) if self.bugs.uncapped_quorum => (usize::from(q), usize::from(q)),
            Some(q) => {
                let q = usize::from(q).clamp(1, n);
                (q, q)
            }
            None => (self.r.min(n), self.w.min(n)),
        };
        let key = request.op.key();
        // A put or delete with the client's context needs no read (module doc, "Versions,
        // contexts, siblings"); any other operation reads first, its context unused.
        let blind = matches!(request.op, Op::Put { .. } | Op::Delete { .. });
        let context = match &request.context {
            Some(c) if blind => Some(coordinator::context_clock(c)),
            _ => None,
        };
        let (targets, extra) = self.plan(key);
        self.next_op += 1;
        let op = self.next_op;
        debug_assert!(op >> 32 == self.incarnation, "request numbers overflowed");
        let pending = Pending {
            request: request.id,
            op: request.op,
            r: if self.bugs.uncapped_quorum { r } else { r.min(targets.len()) },
            w: if self.bugs.uncapped_quorum { w } else { w.min(targets.len()) },
            targets,
            extra,
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
        match context {
            Some(clock) => self.start_context_write(ctx, op, clock),
            None => self.begin(ctx, op),
        }
    }
}
