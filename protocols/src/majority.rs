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
//! carry it.
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
//! robin) the digests of its chosen entries by key bucket ([`Message::Digests`]); the peer
//! answers with its chosen entries of the buckets that differ, and gets back the initiator's.
//! That repairs replicas that were partitioned away, crashed, or lost a commit, and a
//! corrupted ("tricked") entry (see [`crate::quorum`]).
//!
//! # Promises
//!
//! Linearizable, durable for acknowledged writes, live after heal. Not available where fewer
//! than R (reads) or W (writes) replicas are reachable: on the minority side of a partition
//! gets answer [`OpResult::Unavailable`] after `request_timeout` and writes time out. Not
//! promised convergent: a value accepted by a minority whose coordinator gave up stays on
//! those replicas until the next write of the key. A request's own quorum
//! ([`Request::quorum`]) is ignored: a smaller one would break R + W > N.
//!
//! Liveness: with no leader, coordinators of one hot key duel (Paxos Made Simple, section
//! 2.4). A coordinator runs one round per key at a time and queues its other writes of that
//! key behind it, so a node's own requests never duel (before that, about one write in a few
//! thousand starved past its client's retries under message loss); the duels left, between
//! nodes, are kept short by promise leases (`promise_lease`), retries woken by commits and
//! exponential back-off. A distinguished proposer per key would remove them altogether.

use crate::contract::Request;
use crate::contract::{BugSpec, Context, NodeConfig, Operator, Promise, Protocol, ProtocolInfo};
use crate::ids::{ClientId, NodeId, RequestId};
use crate::kv::{self, Key, Op, OpResult, Value};
use crate::params::{ParamKind, ParamSpec};
use crate::quorum::{self, bucket_of, Entry, Rotation, Version};
use crate::time::{Span, SpanRange, Time};
use serde::Serialize;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

/// How many counter values a node reserves with each persist of its high-water mark, so
/// that a restarted node never issues a ballot twice.
pub const COUNTER_RESERVE_CHUNK: u64 = 1_000;

/// At most this many requests in flight at one coordinator; more are refused.
pub const PENDING_MAX: usize = 10_000;

const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "w",
        kind: ParamKind::Int,
        default: "0",
        description: "write quorum W; 0 = a majority of the nodes (N/2 + 1)",
    },
    ParamSpec {
        name: "r",
        kind: ParamKind::Int,
        default: "0",
        description: "read quorum R; 0 = the smallest with R + W > N (N - W + 1)",
    },
    ParamSpec {
        name: "request_timeout",
        kind: ParamKind::Span,
        default: "400ms",
        description: "how long a coordinator tries before it gives up: a get answers \
                      unavailable, a write stays silent",
    },
    ParamSpec {
        name: "retry_backoff",
        kind: ParamKind::SpanRange,
        default: "1ms..10ms",
        description: "random pause before retrying a refused phase, doubled per attempt (up to \
                      32 times)",
    },
    ParamSpec {
        name: "phase_timeout",
        kind: ParamKind::Span,
        default: "60ms",
        description: "how long a phase waits for enough replies before it starts over (lost \
                      messages)",
    },
    ParamSpec {
        name: "promise_lease",
        kind: ParamKind::Span,
        default: "30ms",
        description: "how long a replica refuses higher ballots after a promise whose value has \
                      not arrived (0 = never)",
    },
    ParamSpec {
        name: "anti_entropy",
        kind: ParamKind::Span,
        default: "100ms",
        description: "interval between digest exchanges with the next peer",
    },
];

const BUGS: &[BugSpec] = &[
    BugSpec {
        name: "skip-read-write-back",
        description: "a get answers the highest version it queried without writing it back to \
                      a quorum, so a later get may read an older value",
    },
    BugSpec {
        name: "weak-quorum",
        description: "the read quorum is N - W, so R + W <= N and read quorums miss writes",
    },
    BugSpec {
        name: "version-without-node-tiebreak",
        description: "versions and ballots are compared by counter only, so two coordinators' \
                      writes with one counter look equal",
    },
];

/// An accepted value, with the client sessions of the chain of values that led to it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Record {
    /// The value (or tombstone), versioned by the ballot that accepted it.
    pub entry: Entry,
    /// Per client, its last request applied in the chain (at most one entry per client).
    pub sessions: BTreeMap<ClientId, Applied>,
    /// The last request applied in the chain: the value is the value right after it.
    pub last: Option<RequestId>,
}

/// A client's last request applied in a chain of values.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Applied {
    /// The request's sequence number.
    pub seq: u64,
    /// The ballot of the attempt that applied it.
    pub ballot: Version,
    /// How it ended: with the value right after it, enough to rebuild its answer.
    pub outcome: Outcome,
}

/// How an applied request ended (see [`Applied`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Outcome {
    /// [`OpResult::Ok`] with the value after it.
    Ok,
    /// [`OpResult::NotFound`].
    NotFound,
    /// [`OpResult::PreconditionFailed`], with the value it found (kept so that a retry
    /// elsewhere can still answer).
    PreconditionFailed {
        /// The value the key held.
        current: Option<Value>,
    },
}

/// One key at one replica: the acceptor's state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Slot {
    /// No ballot below this one may be accepted (unless known chosen).
    pub promised: Version,
    /// The highest value accepted.
    pub accepted: Option<Record>,
    /// Whether `accepted` is known to be on a write quorum (a commit arrived).
    pub chosen: bool,
}

/// What survives a crash: every slot, and the counter's reserved mark.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MajorityDurable {
    /// Every key's acceptor state.
    pub slots: BTreeMap<Key, Slot>,
    /// No ballot this node ever issued has a greater counter.
    pub counter_reserved: u64,
}

/// What majority nodes send each other. `op` numbers a coordinator's requests, so that
/// replies find their request.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Message {
    /// Phase 1 of a write: promise `ballot`, say what you hold.
    Prepare {
        /// The key.
        key: Key,
        /// The coordinator's request number.
        op: u64,
        /// The ballot.
        ballot: Version,
    },
    /// The answer to a prepare: promised.
    Promise {
        /// The key.
        key: Key,
        /// The coordinator's request number.
        op: u64,
        /// The ballot promised.
        ballot: Version,
        /// What the replica holds.
        accepted: Option<Record>,
    },
    /// Phase 1 of a read: what do you hold?
    Query {
        /// The key.
        key: Key,
        /// The coordinator's request number.
        op: u64,
    },
    /// The answer to a query.
    QueryReply {
        /// The key.
        key: Key,
        /// The coordinator's request number.
        op: u64,
        /// What the replica holds.
        accepted: Option<Record>,
        /// Whether it is known chosen.
        chosen: bool,
    },
    /// Phase 2: take `record` (a new value under the coordinator's ballot, or, with
    /// `write_back`, a read's write-back of a value under its own version).
    Accept {
        /// The key.
        key: Key,
        /// The coordinator's request number.
        op: u64,
        /// The value.
        record: Record,
        /// A read's write-back (for traces: the rule is the same).
        write_back: bool,
    },
    /// The answer to an accept: the replica holds `version`.
    Accepted {
        /// The key.
        key: Key,
        /// The coordinator's request number.
        op: u64,
        /// The version accepted.
        version: Version,
    },
    /// A prepare or accept refused: the replica promised or holds `promised`.
    Nack {
        /// The key.
        key: Key,
        /// The coordinator's request number.
        op: u64,
        /// The ballot or version refused.
        refused: Version,
        /// What the replica promised or holds, so the coordinator's next ballot is higher.
        promised: Version,
    },
    /// `record` is chosen: install it whatever you promised.
    Commit {
        /// The key.
        key: Key,
        /// The chosen value.
        record: Record,
    },
    /// Anti-entropy: the digest of the sender's chosen entries, per bucket.
    Digests {
        /// One digest per bucket.
        digests: Vec<u64>,
    },
    /// Anti-entropy: chosen entries of `buckets`; with `reply`, send yours back.
    Entries {
        /// The buckets compared.
        buckets: Vec<u16>,
        /// The sender's chosen entries in them.
        records: Vec<(Key, Record)>,
        /// Whether the receiver should answer with its own.
        reply: bool,
    },
}

/// The timers a majority node arms.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Timer {
    /// Request `op` gives up.
    Deadline(u64),
    /// Request `op` retries after a refusal.
    Retry(u64),
    /// Time for the next digest exchange.
    AntiEntropy,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Query,
    Prepare,
    Accept,
    WriteBack,
    Backoff,
    /// Waiting for this node's earlier write of the same key to finish: a coordinator runs
    /// one round per key at a time, so its own requests never duel with each other.
    Queued,
}

/// One request this node coordinates.
#[derive(Clone, Debug)]
struct Pending {
    request: RequestId,
    op: Op,
    phase: Phase,
    attempt: u32,
    ballot: Version,
    /// Phase 1 replies: what each replica holds, and whether it is known chosen.
    replies: BTreeMap<NodeId, (Option<Record>, bool)>,
    acks: BTreeSet<NodeId>,
    nacks: BTreeSet<NodeId>,
    /// The value phase 2 (or the write-back) proposes.
    proposal: Option<Record>,
    /// What a get answers.
    read_result: Option<OpResult>,
    /// Each attempt's ballot and the result its value means.
    results: Vec<(Version, OpResult)>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Bugs {
    skip_write_back: bool,
    weak_quorum: bool,
    no_tiebreak: bool,
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
    n: usize,
    r: usize,
    w: usize,
    /// Why the quorums are invalid, if they are: then every request is refused.
    invalid: Option<String>,
    request_timeout: Span,
    retry_backoff: SpanRange,
    anti_entropy: Span,
    bugs: Bugs,
    slots: BTreeMap<Key, Slot>,
    counter: u64,
    counter_reserved: u64,
    next_op: u64,
    pending: BTreeMap<u64, Pending>,
    rotation: Rotation,
    promise_lease: Span,
    phase_timeout: Span,
    /// Per key, the latest promise and when it was made (volatile: a restart holds nobody
    /// off).
    leases: BTreeMap<Key, (Version, Time)>,
}

/// The request number a coordinator's phase message carries.
fn op_of(msg: &Message) -> u64 {
    match msg {
        Message::Prepare { op, .. } | Message::Query { op, .. } => *op,
        Message::Accept { op, .. } => *op,
        other => unreachable!("not a phase message: {other:?}"),
    }
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

    fn persist(&self, ctx: &mut Context<'_, Self>) {
        ctx.persist(MajorityDurable {
            slots: self.slots.clone(),
            counter_reserved: self.counter_reserved,
        });
    }

    /// Lamport: our next ballot must be past every version seen.
    fn observe(&mut self, v: Version) {
        self.counter = self.counter.max(v.counter);
    }

    fn next_ballot(&mut self, ctx: &mut Context<'_, Self>) -> Version {
        self.counter += 1;
        if self.counter > self.counter_reserved {
            self.counter_reserved = self.counter + COUNTER_RESERVE_CHUNK;
            self.persist(ctx);
        }
        Version {
            counter: self.counter,
            node: self.me,
        }
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

    // ----- acceptor ------------------------------------------------------------------------

    /// The acceptor's answer to a coordinator's message (`None` for messages it only takes).
    fn serve(&mut self, ctx: &mut Context<'_, Self>, msg: Message) -> Option<Message> {
        match msg {
            Message::Prepare { key, op, ballot } => Some(self.on_prepare(ctx, key, op, ballot)),
            Message::Query { key, op } => {
                let slot = self.slots.get(&key).cloned().unwrap_or_default();
                Some(Message::QueryReply {
                    key,
                    op,
                    accepted: slot.accepted,
                    chosen: slot.chosen,
                })
            }
            Message::Accept {
                key,
                op,
                record,
                write_back,
            } => Some(self.on_accept(ctx, key, op, record, write_back)),
            Message::Commit { key, record } => {
                if self.maybe_install_chosen(key, record) {
                    self.persist(ctx);
                }
                self.wake_waiting(ctx, key);
                None
            }
            _ => None,
        }
    }

    fn on_prepare(
        &mut self,
        ctx: &mut Context<'_, Self>,
        key: Key,
        op: u64,
        b: Version,
    ) -> Message {
        self.observe(b);
        let slot = self.slots.get(&key).cloned().unwrap_or_default();
        let held = Self::version_of(&slot.accepted);
        let promised = slot.promised.max(held);
        if self.cmp(b, slot.promised) == Ordering::Less || self.cmp(b, held) != Ordering::Greater {
            return Message::Nack {
                key,
                op,
                refused: b,
                promised,
            };
        }
        if self.leased(ctx.now(), key, b, held) {
            return Message::Nack {
                key,
                op,
                refused: b,
                promised,
            };
        }
        if slot.promised != b {
            self.slots.entry(key).or_default().promised = slot.promised.max(b);
            self.leases.insert(key, (b, ctx.now()));
            self.persist(ctx);
        }
        Message::Promise {
            key,
            op,
            ballot: b,
            accepted: slot.accepted,
        }
    }

    /// Whether a promise made within `promise_lease` to another ballot, whose value has
    /// not arrived yet, holds `b` off. Refusing is always safe; this refusal lets the
    /// promised coordinator finish its phase 2 instead of being preempted by every newcomer
    /// (the duel of Paxos proposers), and a coordinator that died holds nobody off for long.
    fn leased(&mut self, now: Time, key: Key, b: Version, held: Version) -> bool {
        let Some(&(ballot, at)) = self.leases.get(&key) else {
            return false;
        };
        let same = self.cmp(ballot, b) == Ordering::Equal;
        let arrived = self.cmp(held, ballot) != Ordering::Less;
        if same || arrived || now.since(at) >= self.promise_lease {
            self.leases.remove(&key);
            return false;
        }
        true
    }

    fn on_accept(
        &mut self,
        ctx: &mut Context<'_, Self>,
        key: Key,
        op: u64,
        record: Record,
        write_back: bool,
    ) -> Message {
        let v = record.entry.version;
        self.observe(v);
        let slot = self.slots.get(&key).cloned().unwrap_or_default();
        let held = Self::version_of(&slot.accepted);
        let accepted = Message::Accepted {
            key,
            op,
            version: v,
        };
        let nack = Message::Nack {
            key,
            op,
            refused: v,
            promised: slot.promised.max(held),
        };
        if slot.accepted.is_some() && self.cmp(held, v) != Ordering::Less {
            let same = self.cmp(held, v) == Ordering::Equal;
            if same && slot.accepted.as_ref().is_some_and(|a| !a.entry.intact()) {
                // A corrupt copy of this very version: the proposal repairs it.
                self.install(key, record, slot.promised.max(v), slot.chosen);
                self.persist(ctx);
            }
            // Only this very version counts, for a write-back too: a newer value may have been
            // computed without this one (its phase 1 missed it), and then this one must not
            // be answered as the key's value.
            let _ = write_back;
            return if same { accepted } else { nack };
        }
        if self.cmp(v, slot.promised) == Ordering::Less {
            return nack;
        }
        self.install(key, record, slot.promised.max(v), false);
        self.persist(ctx);
        accepted
    }

    fn install(&mut self, key: Key, record: Record, promised: Version, chosen: bool) {
        let slot = self.slots.entry(key).or_default();
        slot.accepted = Some(record);
        slot.promised = promised;
        slot.chosen = chosen;
    }

    /// Installs a value known chosen, whatever was promised (see the module doc). Returns
    /// whether the slot changed.
    fn maybe_install_chosen(&mut self, key: Key, record: Record) -> bool {
        if !record.entry.intact() {
            return false;
        }
        let v = record.entry.version;
        self.observe(v);
        let slot = self.slots.get(&key).cloned().unwrap_or_default();
        let held = Self::version_of(&slot.accepted);
        let newer = slot.accepted.is_none() || self.cmp(v, held) == Ordering::Greater;
        let repair = slot.accepted.as_ref().is_some_and(|a| !a.entry.intact()) && held == v;
        if newer || repair {
            self.install(key, record, slot.promised.max(v), true);
            return true;
        }
        if held == v && !slot.chosen {
            self.slots.entry(key).or_default().chosen = true;
            return true;
        }
        false
    }

    // ----- coordinator ---------------------------------------------------------------------

    /// Starts (or restarts, after a refusal) phase 1 of request `id`.
    fn begin(&mut self, ctx: &mut Context<'_, Self>, id: u64) {
        let Some(p) = self.pending.get_mut(&id) else {
            return;
        };
        p.replies.clear();
        p.acks.clear();
        p.nacks.clear();
        let key = p.op.key();
        let msg = if matches!(p.op, Op::Get { .. }) {
            p.phase = Phase::Query;
            Message::Query { key, op: id }
        } else {
            let ballot = self.next_ballot(ctx);
            let p = self.pending.get_mut(&id).expect("still pending");
            p.phase = Phase::Prepare;
            p.ballot = ballot;
            Message::Prepare {
                key,
                op: id,
                ballot,
            }
        };
        ctx.set_timer(Timer::Retry(op_of(&msg)), self.phase_timeout);
        self.broadcast(ctx, msg);
    }

    fn on_reply(&mut self, ctx: &mut Context<'_, Self>, from: NodeId, msg: Message) {
        match msg {
            Message::Promise {
                op,
                ballot,
                accepted,
                ..
            } => {
                let Some(p) = self.pending.get_mut(&op) else {
                    return;
                };
                if p.phase == Phase::Prepare && p.ballot == ballot {
                    p.replies.entry(from).or_insert((accepted, false));
                    self.maybe_decide(ctx, op);
                }
            }
            Message::QueryReply {
                op,
                accepted,
                chosen,
                ..
            } => {
                let Some(p) = self.pending.get_mut(&op) else {
                    return;
                };
                if p.phase == Phase::Query {
                    p.replies.entry(from).or_insert((accepted, chosen));
                    self.maybe_decide(ctx, op);
                }
            }
            Message::Accepted { op, version, .. }
                if self.expects(op, version, &[Phase::Accept, Phase::WriteBack]) =>
            {
                let p = self.pending.get_mut(&op).expect("expected");
                p.acks.insert(from);
                if p.acks.len() >= self.w {
                    self.finish(ctx, op);
                }
            }
            Message::Nack {
                op,
                refused,
                promised,
                ..
            } => self.on_nack(ctx, from, op, refused, promised),
            _ => {}
        }
    }

    /// Whether request `op` is in one of `phases` proposing `version`.
    fn expects(&self, op: u64, version: Version, phases: &[Phase]) -> bool {
        self.pending.get(&op).is_some_and(|p| {
            let proposed = match p.phase {
                Phase::WriteBack => p.proposal.as_ref().map(|r| r.entry.version),
                _ => Some(p.ballot),
            };
            phases.contains(&p.phase) && proposed == Some(version)
        })
    }

    fn on_nack(
        &mut self,
        ctx: &mut Context<'_, Self>,
        from: NodeId,
        op: u64,
        refused: Version,
        promised: Version,
    ) {
        self.observe(promised);
        let all = [Phase::Prepare, Phase::Accept, Phase::WriteBack];
        if !self.expects(op, refused, &all) {
            return;
        }
        let (n, r, w) = (self.n, self.r, self.w);
        let p = self.pending.get_mut(&op).expect("expected");
        p.nacks.insert(from);
        let needed = if p.phase == Phase::Prepare { r } else { w };
        if n - p.nacks.len() < needed {
            let (phase, nacks) = (p.phase, p.nacks.len());
            ctx.note(|| format!("op {op}: {phase:?} refused by {nacks} replicas; backing off"));
            self.back_off(ctx, op);
        }
    }

    fn back_off(&mut self, ctx: &mut Context<'_, Self>, op: u64) {
        let Some(p) = self.pending.get_mut(&op) else {
            return;
        };
        p.phase = Phase::Backoff;
        p.attempt += 1;
        // Exponential, so that dueling coordinators of one key drift apart.
        let k = 1u64 << p.attempt.min(5);
        let b = self.retry_backoff;
        let delay = SpanRange {
            min: Span(b.min.as_micros() * k),
            max: Span(b.max.as_micros() * k),
        };
        ctx.set_timer(Timer::Retry(op), delay);
    }

    /// A value of `key` was chosen: the coordinator that held the key is done, so requests
    /// of ours backing off on it retry now (after a small jitter, so that they do not all
    /// collide again), before newcomers take the key (fairness: fewer starved requests).
    fn wake_waiting(&mut self, ctx: &mut Context<'_, Self>, key: Key) {
        let waiting = self
            .pending
            .iter()
            .filter(|(_, p)| p.phase == Phase::Backoff && p.op.key() == key);
        let ops: Vec<u64> = waiting.map(|(op, _)| *op).collect();
        for op in ops {
            ctx.set_timer(Timer::Retry(op), self.retry_backoff);
        }
    }

    /// The highest version among phase 1 replies, and an intact record of it if one came.
    fn best(&self, p: &Pending) -> (Option<Version>, Option<Record>) {
        let mut top: Option<Version> = None;
        for (rec, _) in p.replies.values() {
            if let Some(rec) = rec {
                let v = rec.entry.version;
                if top.is_none_or(|t| self.cmp(v, t) == Ordering::Greater) {
                    top = Some(v);
                }
            }
        }
        let intact = p.replies.values().find_map(|(rec, _)| {
            rec.as_ref()
                .filter(|r| Some(r.entry.version) == top && r.entry.intact())
                .cloned()
        });
        (top, intact)
    }

    /// Phase 1 has a reply more: decide once there are enough.
    fn maybe_decide(&mut self, ctx: &mut Context<'_, Self>, op: u64) {
        let p = self.pending.get(&op).expect("pending");
        if p.replies.len() < self.r {
            return;
        }
        let (top, intact) = self.best(p);
        if top.is_some() && intact.is_none() {
            // Only corrupt copies of the newest value so far: wait for an intact one.
            if p.replies.len() == self.n {
                self.back_off(ctx, op);
            }
            return;
        }
        if p.phase == Phase::Query {
            self.decide_read(ctx, op, intact);
        } else {
            self.decide_write(ctx, op, intact);
        }
    }

    fn decide_read(&mut self, ctx: &mut Context<'_, Self>, op: u64, best: Option<Record>) {
        let (r, w) = (self.r, self.w);
        let skip = self.bugs.skip_write_back;
        let p = self.pending.get_mut(&op).expect("pending");
        let mut value = best.as_ref().and_then(|b| b.entry.value.clone());
        let result = kv::apply_to_value(&mut value, &p.op);
        let Some(best) = best else {
            // No replica of the read quorum holds anything: no write ever finished.
            return self.answer(ctx, op, result);
        };
        let v = best.entry.version;
        let holding = p
            .replies
            .values()
            .filter(|(rec, _)| rec.as_ref().is_some_and(|x| x.entry.version == v));
        let (count, chosen) = holding.fold((0, false), |(c, ch), (_, f)| (c + 1, ch || *f));
        if skip || chosen || (r >= w && count >= w) {
            return self.answer(ctx, op, result);
        }
        p.phase = Phase::WriteBack;
        p.read_result = Some(result);
        p.proposal = Some(best.clone());
        let key = p.op.key();
        let msg = Message::Accept {
            key,
            op,
            record: best,
            write_back: true,
        };
        ctx.set_timer(Timer::Retry(op_of(&msg)), self.phase_timeout);
        self.broadcast(ctx, msg);
    }

    fn decide_write(&mut self, ctx: &mut Context<'_, Self>, op: u64, best: Option<Record>) {
        let p = self.pending.get_mut(&op).expect("pending");
        let ballot = p.ballot;
        let (client, seq) = (p.request.client, p.request.seq);
        let mut sessions = best
            .as_ref()
            .map(|b| b.sessions.clone())
            .unwrap_or_default();
        let mut last = best.as_ref().and_then(|b| b.last);
        let mut value = best.as_ref().and_then(|b| b.entry.value.clone());
        // Already applied in the chain (an earlier attempt, here or at the coordinator the
        // client tried before), or superseded by the client's next request: only complete the
        // value, never apply the request twice.
        if sessions.get(&client).is_none_or(|a| a.seq < seq) {
            let result = kv::apply_to_value(&mut value, &p.op);
            let outcome = match &result {
                OpResult::NotFound => Outcome::NotFound,
                OpResult::PreconditionFailed { current } => Outcome::PreconditionFailed {
                    current: current.clone(),
                },
                _ => Outcome::Ok,
            };
            p.results.push((ballot, result));
            let applied = Applied {
                seq,
                ballot,
                outcome,
            };
            sessions.insert(client, applied);
            last = Some(p.request);
        }
        p.phase = Phase::Accept;
        let record = Record {
            entry: Entry::new(ballot, value),
            sessions,
            last,
        };
        p.proposal = Some(record.clone());
        let key = p.op.key();
        let msg = Message::Accept {
            key,
            op,
            record,
            write_back: false,
        };
        ctx.set_timer(Timer::Retry(op_of(&msg)), self.phase_timeout);
        self.broadcast(ctx, msg);
    }

    /// What a write quorum holding `record` means for request `p`: its answer, if this node
    /// can know it.
    fn write_result(p: &Pending, record: &Record) -> Option<OpResult> {
        let applied = record.sessions.get(&p.request.client)?;
        if applied.seq != p.request.seq {
            return None; // superseded: the client has moved on
        }
        // The value right after the request, if this value is it.
        let after = (record.last == Some(p.request)).then_some(&record.entry.value);
        let rebuilt = match (applied.outcome.clone(), &p.op, after) {
            (Outcome::NotFound, ..) => Some(OpResult::NotFound),
            (Outcome::Ok, Op::Put { value, .. } | Op::Update { value, .. }, _)
            | (Outcome::Ok, Op::Cas { new: value, .. }, _) => Some(OpResult::Ok {
                value: Some(value.clone()),
            }),
            (Outcome::Ok, Op::Delete { .. }, _) => Some(OpResult::Ok { value: None }),
            (Outcome::Ok, _, Some(value)) => Some(OpResult::Ok {
                value: value.clone(),
            }),
            (Outcome::PreconditionFailed { current }, ..) => {
                Some(OpResult::PreconditionFailed { current })
            }
            _ => None,
        };
        let ours = p.results.iter().find(|(b, _)| *b == applied.ballot);
        ours.map(|(_, r)| r.clone()).or(rebuilt)
    }

    /// A write quorum holds the proposal: answer, and tell everyone it is chosen.
    fn finish(&mut self, ctx: &mut Context<'_, Self>, op: u64) {
        let p = self.pending.get(&op).expect("pending");
        let record = p.proposal.clone().expect("a proposal");
        let result = match p.phase {
            Phase::WriteBack => p.read_result.clone(),
            _ => Self::write_result(p, &record),
        };
        let (key, request) = (p.op.key(), p.request);
        self.broadcast(ctx, Message::Commit { key, record });
        match result {
            Some(result) => self.answer(ctx, op, result),
            None => {
                // Applied by another coordinator (a client's earlier try) and followed by
                // other requests since: its answer is lost, so the client times out.
                ctx.note(|| format!("{request}: applied earlier elsewhere; answer unknown"));
                self.pending.remove(&op);
                ctx.cancel_timer(Timer::Deadline(op));
                ctx.cancel_timer(Timer::Retry(op));
                self.maybe_start_queued(ctx, key);
            }
        }
    }

    fn answer(&mut self, ctx: &mut Context<'_, Self>, op: u64, result: OpResult) {
        if let Some(p) = self.pending.remove(&op) {
            ctx.cancel_timer(Timer::Deadline(op));
            ctx.cancel_timer(Timer::Retry(op));
            ctx.reply(p.request, result);
            self.maybe_start_queued(ctx, p.op.key());
        }
    }

    /// Whether a write of `key` this node coordinates is under way (not queued).
    fn key_busy(&self, key: Key) -> bool {
        self.pending
            .values()
            .any(|p| p.op.is_write() && p.op.key() == key && p.phase != Phase::Queued)
    }

    /// Starts the oldest queued write of `key` once none is under way.
    fn maybe_start_queued(&mut self, ctx: &mut Context<'_, Self>, key: Key) {
        if self.key_busy(key) {
            return;
        }
        let next = self
            .pending
            .iter()
            .find(|(_, p)| p.phase == Phase::Queued && p.op.key() == key)
            .map(|(op, _)| *op);
        if let Some(op) = next {
            self.begin(ctx, op);
        }
    }

    fn on_deadline(&mut self, ctx: &mut Context<'_, Self>, op: u64) {
        let Some(p) = self.pending.remove(&op) else {
            return;
        };
        ctx.cancel_timer(Timer::Retry(op));
        if p.op.is_write() {
            // A value of this request may sit on some replicas and be completed later, by
            // this coordinator's phase 2 or by that of a coordinator the client tried before
            // (a retry keeps the request id, and nothing here tells a retry from a first
            // try): "unavailable" would promise it never takes effect.
            ctx.note(|| format!("{}: no quorum in time; silent", p.request));
        } else {
            ctx.note(|| format!("{}: no quorum in time; unavailable", p.request));
            ctx.reply(p.request, OpResult::Unavailable { hint: None });
        }
        self.maybe_start_queued(ctx, p.op.key());
    }

    // ----- anti-entropy --------------------------------------------------------------------

    fn chosen_records(&self) -> impl Iterator<Item = (Key, &Record)> {
        self.slots
            .iter()
            .filter_map(|(k, s)| s.accepted.as_ref().filter(|_| s.chosen).map(|r| (*k, r)))
    }

    fn digests(&self) -> Vec<u64> {
        quorum::bucket_digests(self.chosen_records().map(|(k, r)| (k, &r.entry)))
    }

    fn records_in(&self, buckets: &[u16]) -> Vec<(Key, Record)> {
        self.chosen_records()
            .filter(|(k, _)| buckets.contains(&bucket_of(*k)))
            .map(|(k, r)| (k, r.clone()))
            .collect()
    }

    fn on_anti_entropy(&mut self, ctx: &mut Context<'_, Self>, from: NodeId, msg: Message) {
        match msg {
            Message::Digests { digests } => {
                let mine = self.digests();
                let buckets: Vec<u16> = (0..quorum::BUCKETS)
                    .filter(|b| digests.get(usize::from(*b)) != Some(&mine[usize::from(*b)]))
                    .collect();
                if !buckets.is_empty() {
                    let records = self.records_in(&buckets);
                    let reply = true;
                    ctx.send(
                        from,
                        Message::Entries {
                            buckets,
                            records,
                            reply,
                        },
                    );
                }
            }
            Message::Entries {
                buckets,
                records,
                reply,
            } => {
                let mut changed = 0;
                for (key, record) in records {
                    changed += usize::from(self.maybe_install_chosen(key, record));
                }
                if changed > 0 {
                    self.persist(ctx);
                    ctx.note(|| format!("anti-entropy with {from}: {changed} entries taken"));
                }
                if reply {
                    let records = self.records_in(&buckets);
                    ctx.send(
                        from,
                        Message::Entries {
                            buckets,
                            records,
                            reply: false,
                        },
                    );
                }
            }
            _ => {}
        }
    }
}

impl Protocol for Majority {
    type Message = Message;
    type Timer = Timer;
    type Durable = MajorityDurable;

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
            params: PARAMS,
            bugs: BUGS,
            transactions: false,
        }
    }

    fn start(
        ctx: &mut Context<'_, Self>,
        config: &NodeConfig,
        durable: Option<&MajorityDurable>,
    ) -> Self {
        let bugs = Bugs {
            skip_write_back: config.bug("skip-read-write-back"),
            weak_quorum: config.bug("weak-quorum"),
            no_tiebreak: config.bug("version-without-node-tiebreak"),
        };
        let params = &config.params;
        let n = config.nodes.len();
        let (r, w, invalid) = quorums(n, params.int("r"), params.int("w"), bugs.weak_quorum);
        let slots = durable.map(|d| d.slots.clone()).unwrap_or_default();
        let reserved = durable.map_or(0, |d| d.counter_reserved);
        let mut node = Majority {
            me: config.id,
            peers: config.peers().collect(),
            n,
            r,
            w,
            invalid,
            request_timeout: params.span("request_timeout"),
            retry_backoff: params.span_range("retry_backoff"),
            // A zero interval would re-fire at the same instant forever.
            anti_entropy: Span(params.span("anti_entropy").as_micros().max(1)),
            bugs,
            slots,
            counter: reserved,
            counter_reserved: reserved,
            next_op: 0,
            pending: BTreeMap::new(),
            rotation: Rotation::default(),
            promise_lease: params.span("promise_lease"),
            phase_timeout: Span(params.span("phase_timeout").as_micros().max(1)),
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
        node.counter_reserved = node.counter + COUNTER_RESERVE_CHUNK;
        node.persist(ctx);
        if let Some(why) = &node.invalid {
            let why = why.clone();
            ctx.note(|| format!("invalid quorums, every request refused: {why}"));
        }
        ctx.set_timer(Timer::AntiEntropy, node.anti_entropy);
        node
    }

    fn on_message(&mut self, ctx: &mut Context<'_, Self>, from: NodeId, msg: Message) {
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
            _ => self.on_reply(ctx, from, msg),
        }
    }

    fn on_timer(&mut self, ctx: &mut Context<'_, Self>, timer: Timer) {
        match timer {
            Timer::Deadline(op) => self.on_deadline(ctx, op),
            Timer::Retry(op) => {
                // After a back-off, or a phase still short of replies (some were lost).
                if let Some(p) = self.pending.get_mut(&op) {
                    if p.phase != Phase::Backoff {
                        p.attempt += 1;
                    }
                    self.begin(ctx, op);
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

    fn on_request(&mut self, ctx: &mut Context<'_, Self>, request: Request) {
        // Invalid quorums refuse every request everywhere: nothing was ever written.
        let full = self.pending.len() >= PENDING_MAX;
        if self.invalid.is_some() || (full && !request.op.is_write()) {
            ctx.reply(request.id, OpResult::Unavailable { hint: None });
            return;
        }
        if full {
            ctx.note(|| format!("{}: too many requests pending; silent", request.id));
            return;
        }
        self.next_op += 1;
        let op = self.next_op;
        let pending = Pending {
            request: request.id,
            op: request.op,
            phase: Phase::Backoff,
            attempt: 0,
            ballot: Version::default(),
            replies: BTreeMap::new(),
            acks: BTreeSet::new(),
            nacks: BTreeSet::new(),
            proposal: None,
            read_result: None,
            results: Vec::new(),
        };
        let key = pending.op.key();
        let busy = pending.op.is_write() && self.key_busy(key);
        self.pending.insert(op, pending);
        ctx.set_timer(Timer::Deadline(op), self.request_timeout);
        if busy {
            self.pending.get_mut(&op).expect("inserted").phase = Phase::Queued;
        } else {
            self.begin(ctx, op);
        }
    }

    fn on_operator(&mut self, ctx: &mut Context<'_, Self>, command: Operator) {
        let Operator::TrickValue { key, value } = command else {
            ctx.note(|| format!("ignored operator command {command}"));
            return;
        };
        // Behind the protocol's back: the value changes, its version and checksum do not.
        let slot = self.slots.entry(key).or_default();
        match &mut slot.accepted {
            Some(record) => record.entry.value = Some(value),
            None => {
                slot.accepted = Some(Record {
                    entry: Entry {
                        version: Version::default(),
                        value: Some(value),
                        checksum: 0,
                    },
                    sessions: BTreeMap::new(),
                    last: None,
                })
            }
        }
        self.persist(ctx);
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
        for (key, slot) in &self.slots {
            let held = Self::version_of(&slot.accepted);
            if held > slot.promised {
                return Err(format!(
                    "k{key}: accepted {held:?} past the promise {:?}",
                    slot.promised
                ));
            }
            if slot.chosen && slot.accepted.is_none() {
                return Err(format!("k{key}: chosen, but nothing accepted"));
            }
        }
        // A ballot of our own past the persisted mark could be issued again after a crash.
        let own = self
            .slots
            .values()
            .flat_map(|s| [s.promised, Self::version_of(&s.accepted)]);
        if let Some(v) = own.filter(|v| v.node == self.me).max() {
            if v.counter > self.counter_reserved {
                return Err(format!(
                    "own ballot {v:?} past the reserved mark {}",
                    self.counter_reserved
                ));
            }
        }
        if self.pending.len() > PENDING_MAX {
            return Err(format!("{} requests pending", self.pending.len()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Params;
    use crate::testkit::{configs, Cluster};

    fn n(i: u16) -> NodeId {
        NodeId(i)
    }

    fn req(client: u32, seq: u64) -> RequestId {
        RequestId {
            client: ClientId(client),
            seq,
        }
    }

    fn put(key: Key, value: &str) -> Op {
        Op::Put {
            key,
            value: value.into(),
        }
    }

    fn ok(value: &str) -> OpResult {
        OpResult::Ok {
            value: Some(value.into()),
        }
    }

    /// A hand-driven cluster ([`Cluster`]): sends wait until a test delivers or drops them,
    /// timers fire only when a test fires them, invariants hold after every handler.
    type Harness = Cluster<Majority>;

    fn harness(count: u16, bugs: &[&'static str]) -> Harness {
        let params = Params::defaults(Majority::info().params);
        Cluster::boot_all(configs(count, &params, bugs), |_| {})
    }

    #[test]
    fn quorums_default_to_majorities_and_reject_non_intersecting_ones() {
        assert_eq!(quorums(5, 0, 0, false), (3, 3, None));
        assert_eq!(quorums(5, 2, 4, false), (2, 4, None));
        assert!(quorums(5, 2, 3, false).2.is_some(), "R + W = N");
        assert!(quorums(4, 3, 2, false).2.is_some(), "W = N/2");
        // weak-quorum: R = N - W, accepted as the bug wants.
        assert_eq!(quorums(5, 0, 0, true), (2, 3, None));
    }

    #[test]
    fn abd_a_read_writes_back_a_value_found_on_a_minority_before_answering() {
        // ABD section 4: the read's second phase makes a value it returns reach a quorum.
        let mut h = harness(5, &[]);
        h.submit(0, req(0, 1), put(1, "a"));
        h.deliver_where(|(_, _, m)| !matches!(m, Message::Accept { .. }));
        // Phase 2 reaches n2 only (n1's own acceptor took it too): on 2 of 5 replicas.
        h.deliver_where(|(_, to, m)| matches!(m, Message::Accept { .. }) && *to == n(1));
        h.inflight.clear();
        assert_eq!(h.reply(req(0, 1)), None);
        // A read at n2 whose query reaches n1, n2, n3 sees "a" on two of them, not chosen.
        h.submit(1, req(1, 1), Op::Get { key: 1 });
        h.deliver_where(|(_, to, m)| matches!(m, Message::Query { .. }) && to.0 <= 2);
        h.inflight
            .retain(|(_, _, m)| !matches!(m, Message::Query { .. }));
        h.deliver_where(|(_, _, m)| matches!(m, Message::QueryReply { .. }));
        assert_eq!(h.reply(req(1, 1)), None, "not before the write-back");
        h.deliver_all();
        assert_eq!(h.reply(req(1, 1)), Some(&ok("a")));
        let holding = (0..5).filter(|i| h.value(*i, 1).as_deref() == Some("a"));
        assert!(holding.count() >= 3, "on a write quorum once read");
    }

    #[test]
    fn with_skip_read_write_back_a_later_read_returns_the_older_value() {
        let mut h = harness(5, &["skip-read-write-back"]);
        h.submit(0, req(0, 1), put(1, "a"));
        h.deliver_all();
        h.submit(0, req(0, 2), put(1, "b"));
        h.deliver_where(|(_, _, m)| !matches!(m, Message::Accept { .. }));
        h.deliver_where(|(_, to, m)| matches!(m, Message::Accept { .. }) && *to == n(1));
        h.inflight.clear();
        // A read through n1, n2, n3 returns "b" (only on n1, n2)...
        h.submit(2, req(1, 1), Op::Get { key: 1 });
        h.deliver_where(|(_, to, m)| matches!(m, Message::Query { .. }) && to.0 <= 1);
        h.inflight
            .retain(|(_, _, m)| !matches!(m, Message::Query { .. }));
        h.deliver_all();
        assert_eq!(h.reply(req(1, 1)), Some(&ok("b")));
        // ... and a later read through n3, n4, n5 returns "a": a new-old inversion.
        h.submit(3, req(2, 1), Op::Get { key: 1 });
        h.inflight.retain(|(_, to, _)| to.0 >= 2);
        h.deliver_all();
        assert_eq!(h.reply(req(2, 1)), Some(&ok("a")));
    }

    #[test]
    fn casp_concurrent_cas_on_one_key_cannot_both_succeed() {
        // Plain ABD's read-modify-write would let both succeed; the promise of phase 1 orders
        // them (CASPaxos, section 2).
        let mut h = harness(5, &[]);
        h.submit(0, req(0, 1), put(1, "a"));
        h.deliver_all();
        let cas = |new: &str| Op::Cas {
            key: 1,
            expected: "a".into(),
            new: new.into(),
        };
        h.submit(0, req(1, 1), cas("x"));
        h.submit(4, req(2, 1), cas("y"));
        h.deliver_all();
        for _ in 0..20 {
            h.now += Span::millis(40);
            for i in 0..5 {
                for op in h.nodes[usize::from(i)]
                    .pending
                    .keys()
                    .copied()
                    .collect::<Vec<_>>()
                {
                    h.timer(i, Timer::Retry(op));
                }
            }
            h.deliver_all();
        }
        let results = [h.reply(req(1, 1)).cloned(), h.reply(req(2, 1)).cloned()];
        let won = results
            .iter()
            .filter(|r| matches!(r, Some(OpResult::Ok { .. })))
            .count();
        assert_eq!(won, 1, "{results:?}");
        assert!(
            results.iter().all(|r| r.is_some()),
            "both answered: {results:?}"
        );
    }

    #[test]
    fn a_coordinator_runs_one_round_per_key_and_queues_its_other_writes() {
        // Paxos Made Simple, section 2.4: two proposers can duel forever; a node's own
        // writes of one key must not be two of them.
        let mut h = harness(3, &[]);
        h.submit(0, req(1, 1), put(1, "a"));
        h.submit(0, req(2, 1), put(1, "b"));
        h.submit(0, req(3, 1), put(2, "c"));
        let prepares = |h: &Harness, key: Key| {
            h.inflight
                .iter()
                .filter(|(_, _, m)| matches!(m, Message::Prepare { key: k, .. } if *k == key))
                .count()
        };
        // One round for key 1 (to each of the 2 peers), one for key 2: the second write of
        // key 1 waits.
        assert_eq!(prepares(&h, 1), 2);
        assert_eq!(prepares(&h, 2), 2);
        h.deliver_all();
        // The first write's commit started the queued one, which then completed too.
        assert_eq!(h.reply(req(1, 1)), Some(&ok("a")));
        assert_eq!(h.reply(req(2, 1)), Some(&ok("b")));
        assert_eq!(h.reply(req(3, 1)), Some(&ok("c")));
        for i in 0..3 {
            assert_eq!(h.value(i, 1).as_deref(), Some("b"), "n{}", i + 1);
        }
    }

    #[test]
    fn a_clients_retry_at_another_coordinator_applies_once() {
        let mut h = harness(5, &[]);
        h.submit(0, req(0, 1), put(1, ""));
        h.deliver_all();
        let append = Op::Append {
            key: 1,
            value: "x;".into(),
        };
        // The first try's value reaches a write quorum, but every answer to n1 is lost.
        h.submit(0, req(3, 7), append.clone());
        h.deliver_where(|(_, _, m)| !matches!(m, Message::Accept { .. }));
        h.deliver_where(|(_, to, m)| matches!(m, Message::Accept { .. }) && to.0 <= 2);
        h.inflight.clear();
        assert_eq!(h.reply(req(3, 7)), None);
        // The client retries the same request at n5: it finds it applied.
        h.submit(4, req(3, 7), append);
        h.deliver_all();
        assert_eq!(h.reply(req(3, 7)), Some(&ok("x;")));
        assert_eq!(h.value(4, 1).as_deref(), Some("x;"));
    }

    #[test]
    fn a_minority_answers_gets_unavailable_and_leaves_writes_unanswered() {
        let mut h = harness(5, &[]);
        h.submit(0, req(0, 1), Op::Get { key: 1 });
        h.submit(0, req(0, 2), put(1, "a"));
        // Only n2 hears n1: a minority.
        h.deliver_where(|(_, to, _)| to.0 <= 1);
        h.inflight.clear();
        let ops: Vec<u64> = h.nodes[0].pending.keys().copied().collect();
        for op in ops {
            h.timer(0, Timer::Deadline(op));
        }
        assert_eq!(
            h.reply(req(0, 1)),
            Some(&OpResult::Unavailable { hint: None })
        );
        assert_eq!(
            h.reply(req(0, 2)),
            None,
            "a retry elsewhere may have written it"
        );
        assert!(h.nodes[0].pending.is_empty());
    }

    #[test]
    fn an_acknowledged_write_survives_the_restart_of_every_replica() {
        let mut h = harness(3, &[]);
        h.submit(0, req(0, 1), put(1, "a"));
        h.deliver_all();
        assert_eq!(h.reply(req(0, 1)), Some(&ok("a")));
        for i in 0..3 {
            h.restart(i);
        }
        h.submit(2, req(1, 1), Op::Get { key: 1 });
        h.deliver_all();
        assert_eq!(h.reply(req(1, 1)), Some(&ok("a")));
        // And a new ballot orders after every one issued before the crash.
        h.submit(0, req(0, 2), put(1, "b"));
        h.deliver_all();
        assert_eq!(h.reply(req(0, 2)), Some(&ok("b")));
    }

    #[test]
    fn a_tricked_replica_is_repaired_by_anti_entropy_and_never_read() {
        let mut h = harness(3, &[]);
        h.submit(0, req(0, 1), put(1, "a"));
        h.deliver_all();
        let trick = Operator::TrickValue {
            key: 1,
            value: "tricked".into(),
        };
        h.run(2, |node, ctx| node.on_operator(ctx, trick));
        assert_eq!(h.value(2, 1).as_deref(), Some("tricked"));
        // A read through n3 and n1 never answers the corrupt copy.
        h.submit(2, req(1, 1), Op::Get { key: 1 });
        h.deliver_all();
        assert_eq!(h.reply(req(1, 1)), Some(&ok("a")));
        for _ in 0..2 {
            h.timer(2, Timer::AntiEntropy);
            h.deliver_all();
        }
        assert_eq!(h.value(2, 1).as_deref(), Some("a"));
        assert_eq!(h.nodes[0].digest(), h.nodes[2].digest());
    }
}
