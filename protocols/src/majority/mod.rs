//! Majority quorums: the ABD register (Attiya, Bar-Noy & Dolev, "Sharing memory robustly in
//! message-passing systems", 1995), one register per key, with read-modify-writes made atomic
//! by CASPaxos-style promises. The talk demo's CP mode.
//!
//! Every node is a replica of every key (N = the cluster size) and coordinates any request.
//! A write needs W acknowledgements, a read R replies, with R + W > N and W > N/2 (checked at
//! start; see the `r` and `w` parameters).
//!
//! # Reads (ABD's two phases)
//!
//! A get sends [`Message::Query`] to every replica and waits for R replies; it takes the
//! entry with the highest [`Version`] and *writes it back* ([`Message::Accept`] with
//! `write_back`) to W replicas before it answers. The write-back is what makes reads
//! linearizable: once a read returned a value, every later read quorum intersects a quorum
//! that holds it, so no later read returns an older one (ABD, section 4). The write-back is
//! skipped when the highest version is already known to be on a write quorum: a reply flags
//! it *chosen* (a [`Message::Commit`] reached that replica), or, when R >= W, all R replies
//! carry it. A write-back respects promises (below), so a promise to a higher ballot whose
//! proposer died refuses it for as long as nobody writes the key: a get refused by a quorum
//! retries as CASPaxos reads, with a phase 1 of its own and the value it finds re-accepted
//! unchanged under that ballot (the identity change).
//!
//! # Writes, and why plain ABD is not enough
//!
//! In ABD a writer queries a read quorum for the highest version, then writes
//! `(counter + 1, me)`. That is enough for put, but not for update, delete, cas and append,
//! whose new value depends on the value read: two concurrent cas on one key read the same
//! value and both succeed. So every write runs the two phases of CASPaxos (Rystsov, 2018),
//! which are ABD's two phases plus a promise:
//!
//! 1. [`Message::Prepare`] with a fresh ballot `(counter + 1, me)`: a replica *promises* to
//!    take nothing older than the ballot and answers with what it holds. On R promises the
//!    coordinator applies [`kv::apply_to_value`] to the highest-version value.
//! 2. [`Message::Accept`] of the result under the ballot, which becomes its version: a
//!    replica takes it unless it promised a higher ballot since. On W acceptances the write
//!    is chosen; the coordinator answers and sends [`Message::Commit`] to everyone.
//!
//! A write-back also respects promises, and so does everything else that installs an entry
//! the replica has not been promised for, except entries known chosen (a commit, or
//! anti-entropy, which only moves chosen entries): a chosen entry is already visible to every
//! later phase 1 (its quorum intersects every read quorum), so installing it anywhere is safe.
//!
//! Phase 1 refused (another coordinator holds a higher promise): nothing was written, so the
//! coordinator backs off for a random delay and tries again with a higher ballot. Phase 2
//! refused: the value may sit on some replicas and be completed later by anyone's phase 1, so
//! the op may yet take effect. To retry without applying it twice, every value carries a
//! client session table ([`Record::sessions`], as Raft's dissertation keeps one, section 6.3):
//! per client, the sequence number of the last request of that client applied in the chain of
//! values that led to it. A client never has two requests in flight, so a retry whose phase 1
//! finds its request's number there (or a later one) only completes that value (re-accepts it
//! under the new ballot), and never applies the request twice. The same check covers a
//! client's own retry (same request id, maybe another coordinator). The answer is what this
//! coordinator computed for the attempt that got into the chain, or else rebuilt from the
//! request and its [`Outcome`] (and, for an append, from the value, when the request is the
//! last one applied, [`Record::last`]); otherwise it is unknown and the
//! coordinator stays silent.
//!
//! A coordinator that cannot finish within `request_timeout` answers a get
//! [`OpResult::Unavailable`] (a read changes nothing); a write it leaves unanswered, and the
//! client records it as indeterminate: a retry keeps the request id, nothing tells a retry from
//! a first try, and an earlier try elsewhere may have left a value that a later phase 1
//! completes, so "unavailable" (which promises the request never takes effect) would be a lie.
//!
//! # Durability, repair
//!
//! A replica persists its promise and accepted value before it answers, so a restarted node
//! keeps every value it acknowledged. Every `anti_entropy` a node sends the next peer (round
//! robin) the digests of its accepted entries by key bucket ([`Message::Digests`]); the peer
//! answers with its entries of the buckets that differ, each marked whether it is known
//! chosen, and gets back the initiator's. A chosen entry is installed whatever was promised;
//! one only accepted is installed as a late copy of its proposer's Accept (newer than the
//! entry held and not below the promise). That repairs replicas that were partitioned away,
//! crashed, or lost a commit, a value that a quorum accepted but whose commit nobody sent
//! (its proposer gave up, or the commit was lost, and no write of the key came after), and a
//! corrupted ("tricked") entry (see [`crate::quorum`]).
//!
//! # Promises
//!
//! Linearizable, durable for acknowledged writes, live after heal. Not available where fewer
//! than R (reads) or W (writes) replicas are reachable: on the minority side of a partition
//! gets answer [`OpResult::Unavailable`] after `request_timeout` and writes time out. Not
//! promised convergent: a replica that promised a ballot whose proposer gave up refuses older
//! accepted values from anti-entropy, and keeps what it holds until a commit or the next
//! write of the key. A request's own quorum
//! ([`Request::quorum`]) is ignored: a smaller one would break R + W > N.
//!
//! # Progress: a distinguished proposer per key (Paxos Made Simple, section 2.4)
//!
//! Coordinators of one key that prepare at once preempt each other's ballots, and can do so
//! forever: with ten clients on one hot key over 1-40ms links, with no fault at all, about
//! one operation in four timed out (`scenarios/contention/hot-key.toml`, every seed). So, as
//! section 2.4 says, one proposer per key issues the proposals: a key's proposers are the
//! nodes from `key mod N` on, round the cluster, and a node forwards every write of a key to
//! the first of them it does not suspect (`distinguished_proposer`, on by default; reads are
//! served where they arrive: they take no promise). The proposer acknowledges the forward,
//! runs the write and answers the client; one that does not acknowledge within
//! `forward_timeout` is passed over for `suspect_for`, or until a message of it arrives, so
//! a crashed or cut-off proposer costs a write one timeout (see `proposer.rs`). Safety never
//! rests on there being one proposer: nodes that suspect differently only duel as before,
//! kept short by promise leases (`promise_lease`), retries woken by commits and exponential
//! back-off on refusals (`retry_backoff`, drawn from the node's seeded stream).
//!
//! A proposer runs one round per key at a time, and the writes of the key that arrive while
//! it runs wait, then all join the next round: its proposal applies them in arrival order,
//! each with its session entry (group commit). That is what lets one proposer keep up with a
//! hot key. A phase short of replies after `phase_timeout` sends its message again to the
//! replicas that have not answered *that phase* (a promise is no answer to an Accept), under
//! the same ballot, rather than start over with a new one (which preempted the round's own
//! promises, and never finished on links slower than the timeout).
//!
//! What is promised, then: linearizable and durable always; live after heal means every
//! operation invoked once the cluster has been whole for `checks.liveness` succeeds, given
//! that the clients' timeouts cover a queue of the key's writes at its proposer (one round,
//! two round trips to a quorum, per batch).
//!
//! [`kv::apply_to_value`]: crate::kv::apply_to_value

mod acceptor;
mod anti_entropy;
mod coordinator;
mod durable;
mod invariants;
mod messages;
mod proposer;
mod sessions;

#[cfg(test)]
mod tests;

pub use crate::quorum::PENDING_MAX;
pub use crate::reserve::COUNTER_RESERVE_CHUNK;
pub use durable::{Applied, MajorityDurable, MajorityRecord, Outcome, Record, Slot};
use crate::Replay;
use crate::tracked::{Compaction, Shadow, Tracked};
pub use messages::{Message, Timer};

use crate::contract::Read;
use crate::contract::{
    Context, NodeConfig, Operator, Promise, Protocol, ProtocolInfo, Request,
};
use crate::ids::NodeId;
use crate::kv::{Key, OpResult, Value};
use crate::{BugSet, ParamSet};
use crate::quorum::{self, Entry, Rotation, Version};
use crate::reserve::Reservation;
use crate::time::{Span, SpanRange, Time};
use coordinator::{Pending, Phase};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::rc::Rc;

crate::protocol_params! {
    /// majority's parameters, as a scenario's `[cluster.params.majority]` sets them.
    pub(crate) struct Params {
        w: u64 = "0",
            "write quorum W; 0 = a majority of the nodes (N/2 + 1)";
        r: u64 = "0",
            "read quorum R; 0 = the smallest with R + W > N (N - W + 1)";
        request_timeout: Span = "400ms",
            "how long a coordinator tries before it gives up: a get answers \
                      unavailable, a write stays silent";
        retry_backoff: SpanRange = "1ms..10ms",
            "random pause before retrying a refused phase, doubled per attempt (up to \
                      32 times)";
        phase_timeout: Span = "60ms",
            "how long a phase waits for enough replies before it sends its message \
                      again to the replicas that have not answered (lost messages)";
        promise_lease: Span = "30ms",
            "how long a replica refuses higher ballots after a promise whose value has \
                      not arrived (0 = never)";
        anti_entropy: Span = "100ms",
            "interval between digest exchanges with the next peer";
        distinguished_proposer: bool = "true",
            "forward each write to its key's proposer (the nodes from key mod N on, \
                      the first not suspected), so that coordinators of a key do not duel \
                      (Paxos Made Simple, section 2.4)";
        forward_timeout: Span = "100ms",
            "how long a forwarded write waits for the proposer's acknowledgement \
                      before the proposer is suspected and the next one tried";
        suspect_for: Span = "1s",
            "how long a silent proposer is passed over (a message of it ends this)";
    }
}

crate::planted_bugs! {
    /// majority's planted bugs.
    pub(crate) struct Bugs {
        skip_write_back = "skip-read-write-back",
            "a get answers the highest version it queried without writing it back to \
                      a quorum, so a later get may read an older value";
        weak_quorum = "weak-quorum",
            "the read quorum is N - W, so R + W <= N and read quorums miss writes";
        no_tiebreak = "version-without-node-tiebreak",
            "versions and ballots are compared by counter only, so two coordinators' \
                      writes with one counter look equal";
        ack_before_sync = "ack-before-sync",
            "an acceptor answers Promise and Accepted at once and syncs its log only every 100 ms \
                      (Cassandra's periodic commitlog sync): a crash takes back what it \
                      acknowledged since its last sync";
    }
}

/// One node of the majority-quorum store.
///
/// # Driving contract
///
/// As [`Protocol`] says. On start the node reserves counter values (a persist) and arms
/// [`Timer::AntiEntropy`], which re-arms itself. As an acceptor it persists every change of a
/// slot before the reply that reveals it; as a coordinator it counts its own acceptor's
/// answer like a peer's, handled in the same call.
#[derive(Debug)]
pub struct Majority {
    me: NodeId,
    peers: Vec<NodeId>,
    /// Every node, this one included, in order (a key's proposers start at `key mod N`).
    nodes: Vec<NodeId>,
    /// Whether writes go to their key's distinguished proposer.
    distinguished: bool,
    forward_timeout: Span,
    suspect_for: Span,
    /// Proposers that did not acknowledge a forward, passed over until then (volatile).
    suspects: BTreeMap<NodeId, Time>,
    n: usize,
    r: usize,
    w: usize,
    /// Why the quorums are invalid, if they are: then every request is refused.
    invalid: Option<String>,
    request_timeout: Span,
    retry_backoff: SpanRange,
    anti_entropy: Span,
    bugs: Bugs,
    /// When it syncs: before what depends on a write leaves, or every 100 ms with
    /// `ack-before-sync`.
    sync_rule: crate::sync_rule::SyncRule,
    slots: Tracked<Key, Rc<Slot>>,
    /// The highest ballot of this node's own among the slots the invariants judged so far:
    /// a bound from above (a slot since lowered or removed still counts), which lets them
    /// judge only the slots changed since (see [`Majority::check_node`]).
    own_checked: std::cell::Cell<Option<Version>>,
    /// When the next record is a snapshot.
    compaction: Compaction,
    /// Recovered from a log with a corrupt record (see [`MajorityDurable::damaged`]).
    damaged: bool,
    /// The log's fold, checked in debug builds.
    shadow: Shadow<MajorityDurable>,
    /// The Lamport counter of ballots and its persisted high-water mark.
    counter: Reservation,
    next_op: u64,
    pending: BTreeMap<u64, Pending>,
    rotation: Rotation,
    promise_lease: Span,
    phase_timeout: Span,
    /// Per key, the latest promise and when it was made (volatile: a restart holds nobody
    /// off).
    leases: BTreeMap<Key, (Version, Time)>,
}

/// Resolves the quorum parameters: `(r, w, why invalid)`.
fn quorums(n: usize, r: u64, w: u64, weak: bool) -> (usize, usize, Option<String>) {
    let w = if w == 0 { n / 2 + 1 } else { w as usize };
    let r = if weak {
        n.saturating_sub(w).max(1)
    } else if r == 0 {
        (n + 1).saturating_sub(w).max(1)
    } else {
        r as usize
    };
    let invalid = if r > n || w > n {
        Some(format!("R = {r} and W = {w} must be at most N = {n}"))
    } else if w * 2 <= n {
        Some(format!("W = {w} must be more than N/2 = {n}/2"))
    } else if r + w <= n && !weak {
        Some(format!("R + W = {} must be more than N = {n}", r + w))
    } else {
        None
    };
    (r, w, invalid)
}

impl Majority {
    /// Compares versions as this node does (counter only with the planted bug).
    fn cmp(&self, a: Version, b: Version) -> Ordering {
        if self.bugs.no_tiebreak {
            a.counter.cmp(&b.counter)
        } else {
            a.cmp(&b)
        }
    }

    fn version_of(record: &Option<Record>) -> Version {
        record
            .as_ref()
            .map_or_else(Version::default, |r| r.entry.version)
    }

    /// Lamport: our next ballot must be past every version seen.
    fn observe(&mut self, v: Version) {
        self.counter.observe(v.counter);
    }

    /// Sends `msg` to every peer and hands it to this node's own acceptor.
    fn broadcast(&mut self, ctx: &mut Context<'_, Self>, msg: Message) {
        for peer in self.peers.clone() {
            ctx.send(peer, msg.clone());
        }
        let me = self.me;
        if let Some(reply) = self.serve(ctx, msg) {
            self.on_reply(ctx, me, reply);
        }
    }
}

impl Protocol for Majority {
    type Message = Message;
    type Timer = Timer;
    type Durable = MajorityDurable;
    type Record = MajorityRecord;
    type Role = crate::roles::Replica;

    fn info() -> ProtocolInfo {
        ProtocolInfo {
            name: "majority",
            description: "majority quorums (ABD, with CASPaxos promises for read-modify-writes): \
                          writes on W replicas, reads on R with a write-back, R + W > N. \
                          Linearizable; unavailable where no quorum is reachable",
            promises: &[
                Promise::Linearizable,
                Promise::DurableAcknowledgedWrites,
                Promise::LiveAfterHeal,
            ],
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

    /// A record whose checksum fails ends the recovery: the node keeps the state of its
    /// last intact record (an earlier sync) and is damaged: it may have lost promises, so it
    /// answers no acceptor message and no client (a quorum of the others still serves).
    fn recover(
        durable: &mut Option<MajorityDurable>,
        record: Read<'_, MajorityRecord>,
        _: &NodeConfig,
    ) -> bool {
        match record {
            Read::Intact(r) => {
                r.replay(durable);
                true
            }
            // Never synced, so never promised: the intact prefix is all the node said.
            Read::Torn { .. } => false,
            Read::Corrupt { .. } | Read::Misplaced { .. } => {
                let d = durable.get_or_insert_with(|| MajorityDurable {
                    slots: BTreeMap::new(),
                    counter_reserved: 0,
                    damaged: false,
                });
                d.damaged = true;
                false
            }
        }
    }

    fn start(
        ctx: &mut Context<'_, Self>,
        config: &NodeConfig,
        durable: Option<&MajorityDurable>,
    ) -> Self {
        let bugs = Bugs::from_config(config);
        let sync_rule = crate::sync_rule::SyncRule::new(bugs.ack_before_sync);
        let params = Params::from_params(&config.params);
        let n = config.nodes.len();
        let (r, w, invalid) = quorums(n, params.r, params.w, bugs.weak_quorum);
        let slots = durable.map(|d| d.slots.clone()).unwrap_or_default();
        let reserved = durable.map_or(0, |d| d.counter_reserved);
        let mut node = Majority {
            me: config.id,
            peers: config.peers().collect(),
            nodes: config.nodes.clone(),
            distinguished: params.distinguished_proposer,
            forward_timeout: Span(params.forward_timeout.as_micros().max(1)),
            suspect_for: params.suspect_for,
            suspects: BTreeMap::new(),
            n,
            r,
            w,
            invalid,
            request_timeout: params.request_timeout,
            retry_backoff: params.retry_backoff,
            // A zero interval would re-fire at the same instant forever.
            anti_entropy: Span(params.anti_entropy.as_micros().max(1)),
            bugs,
            sync_rule,
            slots: Tracked::new(slots),
            own_checked: std::cell::Cell::new(None),
            compaction: Compaction::default(),
            damaged: durable.is_some_and(|d| d.damaged),
            shadow: Shadow::new(durable),
            counter: Reservation::resume(reserved),
            next_op: 0,
            pending: BTreeMap::new(),
            rotation: Rotation::default(),
            promise_lease: params.promise_lease,
            phase_timeout: Span(params.phase_timeout.as_micros().max(1)),
            leases: BTreeMap::new(),
        };
        let seen: Vec<Version> = node
            .slots
            .values()
            .flat_map(|s| [s.promised, Majority::version_of(&s.accepted)])
            .collect();
        for v in seen {
            node.observe(v);
        }
        node.counter.reserve();
        node.persist(ctx);
        if let Some(why) = &node.invalid {
            let why = why.clone();
            ctx.note(|| format!("invalid quorums, every request refused: {why}"));
        }
        ctx.set_timer(Timer::AntiEntropy, node.anti_entropy);
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
        let Operator::TrickValue { key, value } = command else {
            ctx.note(|| format!("ignored operator command {command}"));
            return;
        };
        // Behind the protocol's back: the value changes, its version and checksum do not.
        let slot = Rc::make_mut(self.slots.entry(key).or_default());
        match &mut slot.accepted {
            Some(record) => record.entry.value = Some(value),
            None => {
                slot.accepted = Some(Record {
                    entry: Entry {
                        version: Version::default(),
                        value: Some(value),
                        checksum: 0,
                    },
                    sessions: Default::default(),
                    last: None,
                })
            }
        }
        self.persist(ctx);
        self.sync_rule.end_of_handler(ctx);
    }

    fn role(&self) -> crate::roles::Replica {
        crate::roles::Replica::Replica
    }

    fn store(&self) -> BTreeMap<Key, Value> {
        self.slots
            .iter()
            .filter_map(|(k, s)| {
                let value = s.accepted.as_ref()?.entry.value.clone()?;
                Some((*k, value))
            })
            .collect()
    }

    fn digest(&self) -> u64 {
        let entries = self.slots.iter();
        quorum::store_digest(entries.filter_map(|(k, s)| Some((*k, &s.accepted.as_ref()?.entry))))
    }

    fn check_invariants(&self) -> Result<(), String> {
        self.check_node()
    }
}

/// majority's own check of its parameters ([`crate::params::ParamCheck`]): its timers can
/// fire, and its quorums intersect as linearizability needs (R + W > N, W > N/2, both at
/// most N), unless the `weak-quorum` bug is on, which breaks that on purpose.
fn check_params(
    params: &crate::params::Params,
    ctx: crate::params::ParamContext<'_>,
) -> Result<(), crate::params::ParamProblem> {
    use crate::params::{int_of, timers_at_least_min, ParamProblem};
    timers_at_least_min(
        params,
        &[
            "request_timeout",
            "retry_backoff",
            "phase_timeout",
            "anti_entropy",
            "forward_timeout",
            "suspect_for",
        ],
    )?;
    let weak = ctx.bugs.contains(&"weak-quorum");
    let n = usize::from(ctx.nodes);
    let (r, w) = (int_of(params, "r"), int_of(params, "w"));
    let (_, w_used, invalid) = quorums(n, r, w, weak);
    match invalid {
        None => Ok(()),
        Some(why) => Err(ParamProblem {
            param: if w_used > n || w_used * 2 <= n { "w" } else { "r" },
            message: format!("expected quorums that intersect on {n} nodes: {why}"),
        }),
    }
}

/// The handlers' bodies: each trait handler runs one, then the node's late sync, if any.
impl Majority {
    fn handle_message(&mut self, ctx: &mut Context<'_, Self>, from: NodeId, msg: Message) {
        let for_a_damaged_node = matches!(
            msg,
            Message::Entries { .. } | Message::ForwardAck { .. } | Message::ForwardDone { .. }
        );
        if self.damaged && !for_a_damaged_node {
            // It may have lost promises and accepted values: it answers no acceptor, runs no
            // proposal and hands its (stale) entries to nobody; only the entries peers send
            // back to its own digests repair it. It still hears how the writes it forwarded
            // went (see `on_request`).
            return ctx.note(|| format!("damaged: ignored a message of {from}"));
        }
        // Whatever it says, `from` is reachable again.
        self.suspects.remove(&from);
        match msg {
            Message::Prepare { .. }
            | Message::Query { .. }
            | Message::Accept { .. }
            | Message::Commit { .. } => {
                if let Some(reply) = self.serve(ctx, msg) {
                    ctx.send(from, reply);
                }
            }
            Message::Digests { .. } | Message::Entries { .. } => {
                self.on_anti_entropy(ctx, from, msg)
            }
            Message::Forward { .. }
            | Message::ForwardAck { .. }
            | Message::ForwardDone { .. } => self.on_proposer_message(ctx, from, msg),
            _ => self.on_reply(ctx, from, msg),
        }
    }

    fn handle_timer(&mut self, ctx: &mut Context<'_, Self>, timer: Timer) {
        match timer {
            Timer::Deadline(op) => self.on_deadline(ctx, op),
            Timer::Retry(op) => {
                // After a back-off, or a phase still short of replies (some were lost).
                if let Some(p) = self.pending.get_mut(&op) {
                    if let Phase::Forwarded(to) = p.phase {
                        return self.forward_timed_out(ctx, op, to);
                    }
                    if p.phase == Phase::Backoff {
                        self.begin(ctx, op);
                    } else {
                        self.resend(ctx, op);
                    }
                }
            }
            Timer::AntiEntropy => {
                if !self.peers.is_empty() {
                    let (peer, _) = self.rotation.next(&self.peers);
                    ctx.send(
                        peer,
                        Message::Digests {
                            digests: self.digests(),
                        },
                    );
                }
                ctx.set_timer(Timer::AntiEntropy, self.anti_entropy);
            }
        }
    }

    fn handle_request(&mut self, ctx: &mut Context<'_, Self>, request: Request) {
        // Invalid quorums refuse every request everywhere: nothing was ever written.
        if self.invalid.is_some() {
            ctx.reply(request.id, OpResult::Unavailable { hint: None });
            return;
        }
        // A damaged node coordinates nothing (its own acceptor may have lost promises and
        // values, see `recover`). A get it refuses: a read changes nothing. A write it
        // forwards to a healthy proposer and never refuses: the request may be the retry of
        // an attempt elsewhere that a quorum accepted, and "unavailable" would promise it
        // never takes effect (disk-faults.toml seeds 32, 52, 70 and 83 broke linearizability
        // that way: an append applied, then refused here, recorded as failed).
        if self.damaged && !request.op.is_write() {
            let hint = self.healthy_proposer_of(request.op.key(), ctx.now());
            ctx.reply(request.id, OpResult::Unavailable { hint });
            return;
        }
        if quorum::refuse_when_full(ctx, self.pending.len(), &request) {
            return;
        }
        self.next_op += 1;
        let op = self.next_op;
        let pending = Self::new_pending(request.id, request.op, None);
        self.pending.insert(op, pending);
        ctx.set_timer(Timer::Deadline(op), self.request_timeout);
        self.route(ctx, op);
    }
}
