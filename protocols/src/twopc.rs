//! Two-phase commit over every replica: the talk demo's CA mode.
//!
//! Gray & Lamport, "Consensus on Transaction Commit" (2004), section 2. Every node holds a full
//! replica and is a resource manager (a *participant*); the node a client's write reaches is
//! the transaction manager (the *coordinator*) of that write, and a participant of it too.
//!
//! # A write is a transaction
//!
//! A transaction is a set of [`Write`]s, each one key's new state (a value, or absence) and the
//! key's version it was computed from; a single-key write is a transaction of one write, and a
//! client's [`Op::Txn`] (single-key ops applied atomically, in order) is one transaction over
//! all its keys. The coordinator locks the keys on its own replica, computes each new state
//! there by applying the ops in order with [`kv::apply_to_value`] to its committed values (so
//! cas, update and append see the committed value under the lock, and a txn's later ops see
//! its earlier ones' writes), persists its own prepared record and sends [`Message::Prepare`]
//! with the writes to every peer. Computing at the coordinator rather than at each participant
//! keeps one answer for the client (a txn's: one result per op, carried by each of its writes)
//! and lets a txn read under its locks and write many keys; it is as correct as computing at
//! each participant because every participant checks that its version of each key is the
//! coordinator's `base` (see "Why versions").
//!
//! A participant votes [`Message::Vote`] `yes` only after it has locked every key of the
//! transaction and persisted its prepared record. It votes `no` at once if a key's version is
//! not `base`, or if a key is locked by an *older* transaction; a Prepare that finds a key
//! locked by a *younger* one waits for it (wait-die, ranked by when the requests reached
//! their coordinators), for at most `vote_timeout`. Waits thus only ever go from older to
//! younger, so they never close a cycle: no deadlock. The coordinator commits when every node voted yes, aborts on the first no or
//! when `vote_timeout` passes, and persists its decision record *before* it sends
//! [`Message::Commit`] or [`Message::Abort`] (section 2: the TM's decision must survive its
//! failure). Participants apply on Commit, release on Commit or Abort, persist, and
//! [`Message::Ack`]; the coordinator forgets a decision once every participant that may hold
//! the transaction prepared has acked.
//!
//! The client gets its answer once commit is decided (its own replica has applied). An aborted
//! attempt is retried as a new transaction after a random backoff, for at most `retry_for`
//! since the request arrived; then the write is refused (see "Refusing a write"). A
//! coordinator that loses a request (crash, halt) says nothing: the client times out.
//!
//! # Why a transaction locks what it reads
//!
//! A txn's writes hold one [`Write`] per key it touches, the keys it only reads included (their
//! value unchanged, with their `base`), so that every participant locks the read set until the
//! outcome and votes no if a read key's version moved since the coordinator read it. Without
//! that, a concurrent transaction could change a key this one read between the read and the
//! commit: T1 = [get a, put b] and T2 = [get b, put a], coordinated at two nodes, would write
//! disjoint keys, both prepare everywhere and both commit having read the old values (write
//! skew), which no serial order explains. With it, their writes overlap and wait-die lets one
//! through at a time. A committed read key counts as written: its version moves on and it
//! records the answer in [`Entry::last_writes`] (the planted bug `lock-only-written-keys`
//! leaves read keys out).
//!
//! # Refusing a write
//!
//! [`OpResult::Unavailable`] promises that the write was not applied and never will be. That
//! its own transactions aborted is not enough for the node to say so: a client re-sends a
//! request, same id, to any node after a timeout, so another copy of it may be held by a
//! paused node, or be prepared elsewhere, and commit later (nemesis.toml seed 1 and
//! partition.toml seed 3 caught exactly that). But every commit needs every node's yes vote,
//! so a node can make the promise true itself: it records the request as refused (durably,
//! before it answers) and votes no on every transaction that writes for it (or for an older
//! request of the same client, which that client has given up on). It stays silent instead
//! when a copy is prepared here (it may commit). As the record also dooms the client's own
//! retry, a node refuses only when its last attempt aborted for missing votes (a node down or
//! cut off), or when a key of it is locked by a transaction in doubt for `vote_timeout` or more
//! (a blocked participant: every replica holds that lock): a retry elsewhere would abort or
//! wait too. A write that was voted down, or waited for locks that move, is dropped in
//! silence, so that the retry may still commit (with
//! refusals after lock conflicts, flaky-network.toml seed 3 broke liveness, and with no
//! refusal at all, cap-demo.toml seed 1's timed-out writes exhausted the linearizability
//! checker's budget). For the same reason each key remembers, per
//! client, its last committed write and its answer ([`Entry::last_writes`]; a transaction's is
//! recorded with each of its keys, and the newest record across a request's keys counts): a
//! copy of a request that already committed is answered from there, never applied twice.
//!
//! # Reads are local, and wait for locks
//!
//! A read (and a write that would not change the key: a failing cas, the update or delete of an
//! absent key; and a txn that changes no key's value) is answered from the receiving node's
//! replica, unless that replica holds a key of it locked: then it waits (parked behind that
//! key) until the lock is released, checks every key again, and after `retry_for` it is
//! refused ([`OpResult::Unavailable`]: the read did not happen). This keeps single-key ops
//! linearizable although the coordinator replies before the participants apply: a commit needs
//! every participant's yes vote, and a participant holds the key locked from its vote until it
//! applies the commit, so once a write is acknowledged every replica either holds it or holds
//! the key locked; a replica that answers from an unlocked key has therefore applied every
//! write acknowledged before the read began. A txn is answered only with every key of it
//! unlocked at once, and a commit applies all of a transaction's writes in one step, so the
//! values it reads are a consistent snapshot: every transaction acknowledged before it began,
//! and none half. Writes wait for the local locks the same way.
//!
//! # Why versions
//!
//! Every key carries a version: the number of transactions committed on it. All replicas apply
//! the same commits in the same order (a second transaction cannot prepare anywhere until the
//! first has released everywhere), so equal versions mean equal values. The `base` check makes a
//! duplicated or delayed Prepare harmless: a Prepare of a transaction a participant already
//! committed finds a newer version and is voted down, instead of being applied twice (an
//! append would be). A participant that receives Commit or Abort for a transaction it does not
//! hold prepared has already finished it, and only acks.
//!
//! # Failures and blocking
//!
//! A restarted coordinator re-sends every logged decision and aborts every transaction it had
//! prepared but not decided (presumed abort: a transaction without a commit record aborted, so
//! a coordinator asked about a transaction it knows nothing of answers Abort). A participant
//! that voted yes cannot decide alone (section 2: 2PC blocks on the TM's failure): it keeps the
//! lock and asks the coordinator with [`Message::QueryOutcome`] every `resend` until it learns
//! the outcome. With `cooperative_termination` it also asks the other participants, and any
//! that learned the outcome answers; an outcome no participant has seen (a coordinator stopped
//! right after Prepare, or right after logging its decision) still blocks until the coordinator
//! is back. Every node counts how long its in-doubt transactions were blocked
//! ([`BlockingStats`], [`TwoPc::stats`]).
//!
//! The operator commands `stop-after-prepare` and `stop-after-decision` halt the node, as
//! coordinator of its next transaction, right after sending Prepare, resp. right after
//! persisting the decision and before sending it, so that scenarios can show the blocking.
//!
//! # What survives a crash
//!
//! [`TwoPcDurable`]: the committed replica (values with versions), the prepared records (the
//! yes votes and the locks they hold), the coordinator's decision log, the next transaction
//! number (persisted with the coordinator's own prepared record, so before any Prepare carrying
//! it is sent: ids are never reused), and the blocking counters (measurement only).
//!
//! # Promises
//!
//! Linearizable single-key ops, and atomic, strictly serializable transactions: a txn's writes
//! apply at every replica or at none, and as every participant holds all its keys, read ones
//! included, locked from its vote until it applies the outcome, the txn takes effect at one
//! instant between its request and its answer (strict two-phase locking). Durable for
//! acknowledged writes, convergent and live after heal (blocked participants unblock once
//! their coordinator is back). Not available under any partition or while any node is down:
//! every write needs every replica's vote, so writes abort (or, at a blocked participant,
//! wait) until the cluster is whole again.

use crate::contract::{
    BugSpec, Context, Counter, NodeConfig, Operator, Promise, Protocol, ProtocolInfo, Request,
};
use crate::digest::StableHasher;
use crate::ids::{ClientId, NodeId, RequestId};
use crate::kv::{self, Key, Op, OpResult, Value};
use crate::params::{ParamKind, ParamSpec};
use crate::time::{Span, Time};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

/// How many learned outcomes a node remembers, to answer cooperative termination queries and
/// to vote down a late Prepare of a transaction it knows aborted. Older ones are forgotten:
/// the coordinator still answers for them.
pub const LEARNED_MAX: usize = 4_096;

/// The shortest and longest backoff unit before a coordinator retries an aborted write.
const BACKOFF_MIN: Span = Span(1_000);
const BACKOFF_UNIT_US: u64 = 4_000;

const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "vote_timeout",
        kind: ParamKind::Span,
        default: "100ms",
        description: "a coordinator missing votes this long after Prepare aborts",
    },
    ParamSpec {
        name: "resend",
        kind: ParamKind::Span,
        default: "10ms",
        description: "period of re-sending Prepare to non-voters and decisions to non-ackers, \
                      and of in-doubt participants' outcome queries",
    },
    ParamSpec {
        name: "retry_for",
        kind: ParamKind::Span,
        default: "400ms",
        description: "how long a node retries an aborted write (or keeps a request waiting for \
                      a lock) before it refuses the request",
    },
    ParamSpec {
        name: "cooperative_termination",
        kind: ParamKind::Bool,
        default: "false",
        description: "in-doubt participants also ask the other participants for the outcome",
    },
];

const BUGS: &[BugSpec] = &[
    BugSpec {
        name: "commit-without-all-votes",
        description: "the coordinator commits once a majority (itself included) voted yes",
    },
    BugSpec {
        name: "vote-not-persisted",
        description: "a participant does not persist its prepared record: a crash forgets its \
                      yes vote and its lock, and the commit is never applied there",
    },
    BugSpec {
        name: "release-lock-before-decision",
        description: "a participant releases its lock when it votes yes, so it serves reads \
                      and prepares other writes before it learns the outcome",
    },
    BugSpec {
        name: "coordinator-forgets-decision",
        description: "the coordinator does not log its decision: restarted, it presumes abort \
                      for a transaction it committed",
    },
    BugSpec {
        name: "lock-only-written-keys",
        description: "a transaction's keys it only reads are left out of its writes, so no \
                      participant locks or version-checks them: concurrent transactions can \
                      write-skew",
    },
];

/// A transaction's name: its coordinator and the coordinator's sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct TxnId {
    /// The transaction manager.
    pub coordinator: NodeId,
    /// Its number at the coordinator, from 0, never reused (persisted before use).
    pub seq: u64,
}

impl fmt::Display for TxnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.coordinator, self.seq)
    }
}

/// One key's committed state on a replica.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Entry {
    /// How many transactions have committed a write of this key (a transaction that only read
    /// it included: it held the key locked like a write, of its unchanged value).
    pub version: u64,
    /// Its value; `None`: absent (deleted, or written absent).
    pub value: Option<Value>,
    /// Per client, the last of its writes committed on this key and the answer it got: a
    /// retry of that request (the client re-sends it, same id, after a timeout, to any node)
    /// is answered from here instead of being applied twice, and an older one is ignored.
    pub last_writes: BTreeMap<ClientId, (u64, OpResult)>,
}

/// One key's write in a transaction: its new state, and the version it was computed from. A
/// key a txn only reads is a write too, of its unchanged value (module doc, "Why a transaction
/// locks what it reads").
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Write {
    /// The key written.
    pub key: Key,
    /// The key's version at the coordinator when it computed `value`; a participant holding
    /// another version votes no. Committed, the key's version becomes `base + 1`.
    pub base: u64,
    /// The key's new value (`None`: absent).
    pub value: Option<Value>,
    /// The client request this write serves, recorded with the key when it commits.
    pub request: RequestId,
    /// The answer to that request, recorded with it.
    pub result: OpResult,
}

/// A participant's yes vote: the writes it holds locked until it learns the outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prepared {
    /// The transaction's writes.
    pub writes: Vec<Write>,
    /// The transaction's age, for wait-die: when its request reached the coordinator.
    pub started: Time,
    /// When this node voted yes, on its own clock (for the blocking counters).
    pub voted_at: Time,
    /// Outcome queries sent for it so far.
    pub queries: u32,
}

/// A coordinator's logged decision, kept until every participant that may hold the
/// transaction prepared has acked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Commit (`true`) or abort.
    pub commit: bool,
    /// The participants still to ack.
    pub pending: BTreeSet<NodeId>,
    /// When the decision was last sent, on the coordinator's clock.
    pub sent_at: Time,
}

/// How long in-doubt transactions kept this node blocked, and what it coordinated. Counts, not
/// protocol state: the protocol never reads them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BlockingStats {
    /// Transactions this node coordinated that committed.
    pub committed: u64,
    /// Transactions this node coordinated that aborted (restart aborts included).
    pub aborted: u64,
    /// Yes votes of this node, as participant, whose outcome it learned.
    pub in_doubt_resolved: u64,
    /// Of those, how many it had to ask about (the outcome was late by at least `resend`):
    /// blocked transactions.
    pub blocked: u64,
    /// Their total time from the yes vote to the outcome, in microseconds.
    pub blocked_us_total: u64,
    /// The longest of them, in microseconds.
    pub blocked_us_max: u64,
    /// Outcome queries sent.
    pub queries_sent: u64,
    /// Requests given up after `retry_for` of aborts or of waiting for a lock: reads refused,
    /// writes dropped in silence.
    pub given_up: u64,
}

/// What survives a crash (see the module doc).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TwoPcDurable {
    /// The committed replica, tombstones (absent values with a version) included.
    pub entries: BTreeMap<Key, Entry>,
    /// Yes votes not yet resolved, this node's own transactions' included.
    pub prepared: BTreeMap<TxnId, Prepared>,
    /// The coordinator's decision log.
    pub decisions: BTreeMap<TxnId, Decision>,
    /// The next transaction number this node will use as coordinator.
    pub next_txn: u64,
    /// Per client, the newest write request this node refused (see [`TwoPc`]'s field).
    pub refused: BTreeMap<ClientId, u64>,
    /// The blocking counters, carried across restarts.
    pub stats: BlockingStats,
}

/// What 2PC nodes send each other.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Message {
    /// Phase 1: "prepare these writes and vote" (coordinator to participants).
    Prepare {
        /// The transaction.
        txn: TxnId,
        /// When its request reached the coordinator (on the coordinator's clock): its age,
        /// which decides whether it waits for a lock or dies (wait-die).
        started: Time,
        /// Its writes.
        writes: Vec<Write>,
    },
    /// A participant's vote (participant to coordinator).
    Vote {
        /// The transaction.
        txn: TxnId,
        /// Yes: prepared, persisted and locked.
        yes: bool,
    },
    /// Phase 2: the transaction committed (coordinator, or a peer that learned it).
    Commit {
        /// The transaction.
        txn: TxnId,
    },
    /// Phase 2: the transaction aborted.
    Abort {
        /// The transaction.
        txn: TxnId,
    },
    /// "I applied (or released) it": the coordinator may forget its decision for this node.
    Ack {
        /// The transaction.
        txn: TxnId,
    },
    /// An in-doubt participant asks for the outcome.
    QueryOutcome {
        /// The transaction.
        txn: TxnId,
    },
}

/// The timers a 2PC node arms.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Timer {
    /// Re-send Prepares and decisions, query outcomes, refuse requests that waited too long.
    Tick,
    /// The coordinator's deadline for a transaction's votes.
    Votes(TxnId),
    /// Try a request again after an aborted transaction.
    Retry(RequestId),
}

/// The planted bugs switched on, read once at start.
#[derive(Clone, Copy, Debug, Default)]
struct Bugs {
    commit_without_all_votes: bool,
    vote_not_persisted: bool,
    release_lock_before_decision: bool,
    coordinator_forgets_decision: bool,
    lock_only_written_keys: bool,
}

/// A client request this node holds: waiting for a lock, or for a retry.
#[derive(Clone, Debug)]
struct Waiting {
    request: Request,
    /// When the request first reached this node (on its clock): `retry_for` counts from it.
    since: Time,
    /// Transactions tried for it so far.
    attempts: u32,
    /// Whether the last transaction tried for it aborted because votes were missing at the
    /// vote timeout (a node down or cut off), rather than voted down.
    votes_missed: bool,
}

/// A transaction this node coordinates, collecting votes.
#[derive(Clone, Debug)]
struct Active {
    waiting: Waiting,
    /// The client's answer if it commits.
    result: OpResult,
    writes: Vec<Write>,
    /// Who voted yes, this node included.
    yes: BTreeSet<NodeId>,
    /// When Prepare was last sent.
    sent_at: Time,
}

/// A Prepare waiting for a lock held by a younger transaction (wait-die).
#[derive(Clone, Debug)]
struct Queued {
    started: Time,
    writes: Vec<Write>,
    /// When it arrived here: it is voted down after `vote_timeout` (its coordinator has given
    /// up by then).
    arrived: Time,
}

/// Why a participant does not vote yes at once.
enum Conflict {
    /// A younger transaction holds a lock: wait for it.
    Wait(TxnId),
    /// Vote no, for this reason.
    Refuse(String),
}

/// One node of the 2PC store.
///
/// # Driving contract
///
/// As [`Protocol`] says. Start arms [`Timer::Tick`], which re-arms itself forever; a restart
/// also aborts this node's undecided transactions. Each persist precedes the sends and the
/// reply that rely on it: the prepared record precedes the yes vote (and the Prepare, for the
/// coordinator's own), the decision record precedes Commit and Abort and the client's answer,
/// and the applied commit precedes the Ack.
#[derive(Debug)]
pub struct TwoPc {
    me: NodeId,
    nodes: Vec<NodeId>,
    vote_timeout: Span,
    resend: Span,
    retry_for: Span,
    cooperative_termination: bool,
    bugs: Bugs,
    entries: BTreeMap<Key, Entry>,
    prepared: BTreeMap<TxnId, Prepared>,
    decisions: BTreeMap<TxnId, Decision>,
    next_txn: u64,
    /// Per client, the sequence number of the newest write request this node refused: it
    /// votes no on every transaction writing for that request or an older one of the client.
    refused: BTreeMap<ClientId, u64>,
    stats: BlockingStats,
    /// Which transaction holds each locked key.
    locks: BTreeMap<Key, TxnId>,
    active: BTreeMap<TxnId, Active>,
    /// Prepares of older transactions waiting for a lock held by a younger one.
    queued: BTreeMap<TxnId, Queued>,
    /// Requests waiting for a key's lock, in arrival order.
    parked: BTreeMap<Key, VecDeque<Waiting>>,
    /// Requests whose transaction aborted, waiting for their [`Timer::Retry`].
    retrying: BTreeMap<RequestId, Waiting>,
    /// Outcomes learned as participant (at most [`LEARNED_MAX`]), oldest first in the queue.
    learned: BTreeMap<TxnId, bool>,
    learned_order: VecDeque<TxnId>,
    /// Operator commands armed for this node's next transaction.
    stop_after_prepare: bool,
    stop_after_decision: bool,
}

impl Bugs {
    fn from_config(config: &NodeConfig) -> Bugs {
        Bugs {
            commit_without_all_votes: config.bug("commit-without-all-votes"),
            vote_not_persisted: config.bug("vote-not-persisted"),
            release_lock_before_decision: config.bug("release-lock-before-decision"),
            coordinator_forgets_decision: config.bug("coordinator-forgets-decision"),
            lock_only_written_keys: config.bug("lock-only-written-keys"),
        }
    }
}

fn decision_message(txn: TxnId, commit: bool) -> Message {
    if commit {
        Message::Commit { txn }
    } else {
        Message::Abort { txn }
    }
}

/// Applies `op` to `view` (each of its keys' values), part by part in order as [`kv::apply`]
/// does, and answers as the client is answered: a txn with one result per part.
fn compute(view: &mut BTreeMap<Key, Option<Value>>, op: &Op) -> OpResult {
    let mut one = |part: &Op| kv::apply_to_value(view.entry(part.key()).or_default(), part);
    match op {
        Op::Txn { ops } => OpResult::Txn {
            results: ops.iter().map(&mut one).collect(),
        },
        single => one(single),
    }
}

impl TwoPc {
    /// How long this node's in-doubt transactions blocked, and what it coordinated.
    pub fn stats(&self) -> BlockingStats {
        self.stats
    }

    /// The transactions this node holds prepared right now, with when it voted: the blocked
    /// ones among them are those whose coordinator is silent.
    pub fn in_doubt(&self) -> impl Iterator<Item = (TxnId, Time)> + '_ {
        self.prepared.iter().map(|(t, p)| (*t, p.voted_at))
    }

    fn peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        let me = self.me;
        self.nodes.iter().copied().filter(move |n| *n != me)
    }

    /// Persists the durable state; the planted bugs leave out what they forget.
    fn persist(&self, ctx: &mut Context<'_, Self>) {
        let mut prepared = self.prepared.clone();
        if self.bugs.vote_not_persisted {
            // The participant's votes are lost; the coordinator's own record is not a vote.
            prepared.retain(|t, _| t.coordinator == self.me);
        }
        let decisions = if self.bugs.coordinator_forgets_decision {
            BTreeMap::new()
        } else {
            self.decisions.clone()
        };
        ctx.persist(TwoPcDurable {
            entries: self.entries.clone(),
            prepared,
            decisions,
            next_txn: self.next_txn,
            refused: self.refused.clone(),
            stats: self.stats,
        });
    }

    /// Answers `waiting` now, starts its transaction, or parks it behind a locked key.
    fn serve(&mut self, ctx: &mut Context<'_, Self>, waiting: Waiting) {
        let op = &waiting.request.op;
        let keys = op.keys();
        if let Some(&key) = keys.iter().find(|k| self.locks.contains_key(k)) {
            // Every key must be unlocked at once: re-served when this one is released, the
            // request checks them all again.
            self.park(ctx, key, waiting);
            return;
        }
        let id = waiting.request.id;
        if op.parts().iter().any(|p| matches!(p, Op::Txn { .. })) {
            ctx.note(|| format!("{id}: a txn inside a txn is malformed; not applied"));
            ctx.reply(id, OpResult::Unavailable { hint: None });
            return;
        }
        if op.is_write() && self.answer_if_committed(ctx, id, &keys) {
            return;
        }
        if op.is_write() && self.refused.get(&id.client).is_some_and(|s| *s >= id.seq) {
            // Refused here before: refused again, the same promise.
            self.give_up(ctx, waiting);
            return;
        }
        let before: BTreeMap<Key, Option<Value>> = keys
            .iter()
            .map(|k| (*k, self.entries.get(k).and_then(|e| e.value.clone())))
            .collect();
        let mut after = before.clone();
        let result = compute(&mut after, op);
        if after == before {
            // Every key unlocked here, so every acknowledged transaction is applied here, and
            // applies are atomic: the local view is current and consistent (module doc, "Reads
            // are local").
            ctx.reply(id, result);
            return;
        }
        if ctx.now().since(waiting.since) >= self.retry_for {
            self.give_up(ctx, waiting);
            return;
        }
        let writes = self.writes_for(op, after, id, &result);
        self.begin(ctx, waiting, writes, result);
    }

    /// Parks `waiting` behind `key`'s lock.
    fn park(&mut self, ctx: &mut Context<'_, Self>, key: Key, waiting: Waiting) {
        let id = waiting.request.id;
        if let Some(holder) = self.locks.get(&key) {
            ctx.note(|| format!("{id}: k{key} locked by {holder}; waiting"));
        }
        // Oldest first, as wait-die ranks them; arrival order among equals.
        let queue = self.parked.entry(key).or_default();
        let at = queue.partition_point(|w| w.since <= waiting.since);
        queue.insert(at, waiting);
    }

    /// The newest write of `client` committed here on any of `keys`, with its answer: a
    /// transaction records it with every key in its writes, so any one of them remembers it.
    fn last_write(&self, keys: &[Key], client: ClientId) -> Option<&(u64, OpResult)> {
        keys.iter()
            .filter_map(|k| self.entries.get(k)?.last_writes.get(&client))
            .max_by_key(|(seq, _)| *seq)
    }

    /// Answers request `id`, writing `keys`, from the keys' committed records if it (or a
    /// later request of its client) already committed; says whether it did. Only called with
    /// every key unlocked here, so every committed write of them is applied here.
    fn answer_if_committed(
        &mut self,
        ctx: &mut Context<'_, Self>,
        id: RequestId,
        keys: &[Key],
    ) -> bool {
        let Some((seq, result)) = self.last_write(keys, id.client) else {
            return false;
        };
        if *seq < id.seq {
            return false;
        }
        if *seq == id.seq {
            ctx.note(|| format!("{id}: a retry of a committed write; answering again"));
            ctx.reply(id, result.clone());
        } else {
            ctx.note(|| format!("{id}: older than its client's last write; ignored"));
        }
        true
    }

    /// The transaction writing `after` (each key's new value) for request `id`: one write per
    /// key of the op, the keys it only reads included with their value unchanged, so that
    /// every participant locks them and checks their version (module doc, "Why a transaction
    /// locks what it reads"); `lock-only-written-keys` leaves those out.
    fn writes_for(
        &self,
        op: &Op,
        after: BTreeMap<Key, Option<Value>>,
        id: RequestId,
        result: &OpResult,
    ) -> Vec<Write> {
        let written: BTreeSet<Key> = op
            .parts()
            .iter()
            .filter(|p| p.is_write())
            .map(Op::key)
            .collect();
        after
            .into_iter()
            .filter(|(key, _)| !self.bugs.lock_only_written_keys || written.contains(key))
            .map(|(key, value)| Write {
                key,
                base: self.entries.get(&key).map_or(0, |e| e.version),
                value,
                request: id,
                result: result.clone(),
            })
            .collect()
    }

    /// Stops serving `waiting`. A read is refused: it did not happen. A write is refused only
    /// if this node can promise that no copy of the request (the client re-sends it, same id,
    /// to any node after a timeout) ever commits, and only if a node is unreachable; else it
    /// is dropped in silence (module doc, "Refusing a write").
    fn give_up(&mut self, ctx: &mut Context<'_, Self>, waiting: Waiting) {
        self.stats.given_up += 1;
        let (id, tries) = (waiting.request.id, waiting.attempts);
        if !waiting.request.op.is_write() {
            ctx.note(|| format!("{id}: refusing the read after waiting for a lock"));
            ctx.reply(id, OpResult::Unavailable { hint: None });
            return;
        }
        let keys = waiting.request.op.keys();
        let fenced = self.refused.get(&id.client).is_some_and(|s| *s >= id.seq);
        // A key's lock is held by a transaction whose coordinator should have decided by
        // now: in doubt, held at every replica, so a retry elsewhere would wait for it too.
        let now = ctx.now();
        let in_doubt = keys
            .iter()
            .filter_map(|k| self.prepared.get(self.locks.get(k)?))
            .any(|p| now.since(p.voted_at) >= self.vote_timeout);
        if !fenced && !waiting.votes_missed && !in_doubt {
            // Voted down, or behind a lock that moves: the client's retry elsewhere may
            // commit, so no refusal (which would forbid it), only silence.
            ctx.note(|| format!("{id}: dropping the write after {tries} aborts or a lock"));
            return;
        }
        let carries = |p: &Prepared| p.writes.iter().any(|w| w.request == id);
        if self.prepared.values().any(carries) {
            ctx.note(|| format!("{id}: a copy is prepared here and may commit; silent"));
            return;
        }
        let last = self.last_write(&keys, id.client);
        if let Some((seq, result)) = last.filter(|(seq, _)| *seq >= id.seq) {
            // No copy is prepared here, so none is about to commit: it committed (the answer
            // is here), or the client has moved on.
            if *seq == id.seq {
                ctx.reply(id, result.clone());
            }
            return;
        }
        // Every commit needs this node's yes vote, which no copy of the request gets from now
        // on: the refusal is definite once the fence is durable.
        let fence = self.refused.entry(id.client).or_default();
        *fence = (*fence).max(id.seq);
        self.persist(ctx);
        ctx.note(|| format!("{id}: refusing the write after {tries} aborts or a lock"));
        ctx.reply(id, OpResult::Unavailable { hint: None });
    }

    /// Phase 1 as coordinator: lock and prepare locally, persist, send Prepare to every peer.
    fn begin(
        &mut self,
        ctx: &mut Context<'_, Self>,
        mut waiting: Waiting,
        writes: Vec<Write>,
        result: OpResult,
    ) {
        let txn = TxnId {
            coordinator: self.me,
            seq: self.next_txn,
        };
        self.next_txn += 1;
        waiting.attempts += 1;
        for w in &writes {
            self.locks.insert(w.key, txn);
        }
        let now = ctx.now();
        let started = waiting.since;
        let prepared = Prepared {
            writes: writes.clone(),
            started,
            voted_at: now,
            queries: 0,
        };
        self.prepared.insert(txn, prepared);
        // The own yes vote and the transaction number are durable before any Prepare leaves.
        self.persist(ctx);
        let id = waiting.request.id;
        ctx.note(|| format!("{id}: coordinating {txn}"));
        let peers: Vec<NodeId> = self.peers().collect();
        for &peer in &peers {
            let writes = writes.clone();
            ctx.send(
                peer,
                Message::Prepare {
                    txn,
                    started,
                    writes,
                },
            );
        }
        let active = Active {
            waiting,
            result,
            writes,
            yes: BTreeSet::from([self.me]),
            sent_at: now,
        };
        self.active.insert(txn, active);
        ctx.set_timer(Timer::Votes(txn), self.vote_timeout);
        if self.stop_after_prepare {
            ctx.note(|| format!("operator: stopping after the Prepare of {txn}"));
            ctx.halt();
            return;
        }
        self.maybe_decide(ctx, txn);
    }

    /// Commits `txn` if every node voted yes (a majority with `commit-without-all-votes`).
    fn maybe_decide(&mut self, ctx: &mut Context<'_, Self>, txn: TxnId) -> bool {
        let Some(active) = self.active.get(&txn) else {
            return false;
        };
        let needed = if self.bugs.commit_without_all_votes {
            self.nodes.len() / 2 + 1
        } else {
            self.nodes.len()
        };
        if active.yes.len() < needed {
            return false;
        }
        self.decide(ctx, txn, true);
        true
    }

    /// Phase 2 as coordinator: log the decision, apply or release locally, answer, send it.
    fn decide(&mut self, ctx: &mut Context<'_, Self>, txn: TxnId, commit: bool) {
        let Some(active) = self.active.remove(&txn) else {
            return;
        };
        ctx.cancel_timer(Timer::Votes(txn));
        self.prepared.remove(&txn);
        let released = self.release(txn, &active.writes);
        // Every participant may hold a commit prepared; only yes voters can hold an abort
        // (the rest learn it by presumption when they ask).
        let pending: BTreeSet<NodeId> = if commit {
            self.apply(&active.writes);
            self.stats.committed += 1;
            self.peers().collect()
        } else {
            self.stats.aborted += 1;
            active
                .yes
                .iter()
                .copied()
                .filter(|n| *n != self.me)
                .collect()
        };
        if !pending.is_empty() {
            let sent_at = ctx.now();
            let record = Decision {
                commit,
                pending,
                sent_at,
            };
            self.decisions.insert(txn, record);
        }
        // The decision is durable before anyone hears of it (section 2).
        self.persist(ctx);
        if self.stop_after_decision {
            ctx.note(|| format!("operator: stopping after logging the decision of {txn}"));
            ctx.halt();
            return;
        }
        let verb = if commit { "committed" } else { "aborted" };
        ctx.note(|| format!("{txn} {verb}"));
        let peers: Vec<NodeId> = self.peers().collect();
        for peer in peers {
            ctx.send(peer, decision_message(txn, commit));
        }
        if commit {
            ctx.reply(active.waiting.request.id, active.result);
        } else {
            self.maybe_retry(ctx, active.waiting);
        }
        self.after_release(ctx, released);
    }

    /// After an abort: try again after a random backoff, or answer unavailable if the
    /// request has waited `retry_for`.
    fn maybe_retry(&mut self, ctx: &mut Context<'_, Self>, waiting: Waiting) {
        let unit = BACKOFF_UNIT_US << waiting.attempts.min(4);
        let backoff = Span(BACKOFF_MIN.as_micros() + ctx.random_below(unit));
        let waited = ctx.now().since(waiting.since);
        if Span(waited.as_micros() + backoff.as_micros()) >= self.retry_for {
            self.give_up(ctx, waiting);
            return;
        }
        let id = waiting.request.id;
        self.retrying.insert(id, waiting);
        ctx.set_timer(Timer::Retry(id), backoff);
    }

    /// Releases the locks `txn` holds on `writes`' keys; returns the keys released.
    fn release(&mut self, txn: TxnId, writes: &[Write]) -> Vec<Key> {
        let mut released = Vec::new();
        for w in writes {
            if self.locks.get(&w.key) == Some(&txn) {
                self.locks.remove(&w.key);
                released.push(w.key);
            }
        }
        released
    }

    fn apply(&mut self, writes: &[Write]) {
        for w in writes {
            let entry = self.entries.entry(w.key).or_default();
            entry.version = w.base + 1;
            entry.value.clone_from(&w.value);
            let (client, seq) = (w.request.client, w.request.seq);
            entry.last_writes.insert(client, (seq, w.result.clone()));
        }
    }

    /// After `keys` were released: serves the reads parked on them (they lock nothing), then
    /// the writes parked on them and the Prepares queued for them, oldest first (the order
    /// wait-die ranks transactions by); those that find a key locked again wait again.
    fn after_release(&mut self, ctx: &mut Context<'_, Self>, keys: Vec<Key>) {
        let mut writes: Vec<(Time, NodeId, Option<Waiting>, Option<TxnId>)> = Vec::new();
        for key in &keys {
            let Some(queue) = self.parked.remove(key) else {
                continue;
            };
            for waiting in queue {
                if waiting.request.op.is_write() {
                    writes.push((waiting.since, self.me, Some(waiting), None));
                } else {
                    self.serve(ctx, waiting);
                }
            }
        }
        for (txn, q) in &self.queued {
            if q.writes.iter().any(|w| keys.contains(&w.key)) {
                writes.push((q.started, txn.coordinator, None, Some(*txn)));
            }
        }
        writes.sort_by_key(|(since, node, _, txn)| (*since, *node, *txn));
        for (_, _, waiting, txn) in writes {
            if let Some(waiting) = waiting {
                self.serve(ctx, waiting);
            } else if let Some(q) = txn.and_then(|t| self.queued.remove(&t).map(|q| (t, q))) {
                let (txn, q) = q;
                self.on_prepare(ctx, txn.coordinator, txn, q.started, q.writes);
            }
        }
    }

    /// A participant's phase 1: lock, persist, vote yes; wait for an older transaction's
    /// lock; or vote no at once.
    fn on_prepare(
        &mut self,
        ctx: &mut Context<'_, Self>,
        from: NodeId,
        txn: TxnId,
        started: Time,
        writes: Vec<Write>,
    ) {
        if from != txn.coordinator || from == self.me {
            ctx.note(|| format!("ignored Prepare of {txn} from {from}"));
            return;
        }
        if self.prepared.contains_key(&txn) {
            // A duplicate, or a re-send after our vote was lost: the vote stands.
            ctx.send(from, Message::Vote { txn, yes: true });
            return;
        }
        if self.queued.contains_key(&txn) {
            return;
        }
        let conflict = if self.learned.contains_key(&txn) {
            Some(Conflict::Refuse("its outcome is known".into()))
        } else {
            self.conflict(txn, started, &writes)
        };
        match conflict {
            Some(Conflict::Refuse(why)) => {
                ctx.note(|| format!("voting no on {txn}: {why}"));
                ctx.send(from, Message::Vote { txn, yes: false });
            }
            Some(Conflict::Wait(holder)) => {
                ctx.note(|| format!("{txn} waits for the younger {holder}"));
                let arrived = ctx.now();
                let queued = Queued {
                    started,
                    writes,
                    arrived,
                };
                self.queued.insert(txn, queued);
            }
            None => self.vote_yes(ctx, txn, started, writes),
        }
    }

    fn vote_yes(
        &mut self,
        ctx: &mut Context<'_, Self>,
        txn: TxnId,
        started: Time,
        writes: Vec<Write>,
    ) {
        for w in &writes {
            self.locks.insert(w.key, txn);
        }
        let prepared = Prepared {
            writes,
            started,
            voted_at: ctx.now(),
            queries: 0,
        };
        self.prepared.insert(txn, prepared);
        // The vote and its lock are durable before the vote leaves.
        self.persist(ctx);
        ctx.send(txn.coordinator, Message::Vote { txn, yes: true });
        if self.bugs.release_lock_before_decision {
            let writes = self.prepared[&txn].writes.clone();
            let released = self.release(txn, &writes);
            self.after_release(ctx, released);
        }
    }

    /// Why this replica cannot prepare `writes` of `txn` now, if it cannot. Wait-die: a
    /// transaction older than a lock's holder waits for it, a younger one dies (votes no), so
    /// waits only ever go from older to younger and never close a cycle. A transaction of
    /// several keys waits only if no key makes it die: waiting would not save it.
    fn conflict(&self, txn: TxnId, started: Time, writes: &[Write]) -> Option<Conflict> {
        let mut wait = None;
        for w in writes {
            let (client, seq) = (w.request.client, w.request.seq);
            if self.refused.get(&client).is_some_and(|fence| seq <= *fence) {
                let why = format!("{} was refused here", w.request);
                return Some(Conflict::Refuse(why));
            }
            if let Some(&holder) = self.locks.get(&w.key) {
                let held_since = self.prepared.get(&holder).map(|p| p.started);
                if held_since.is_some_and(|h| (started, txn) < (h, holder)) {
                    wait.get_or_insert(Conflict::Wait(holder));
                    continue;
                }
                return Some(Conflict::Refuse(format!("k{} locked by {holder}", w.key)));
            }
            let version = self.entries.get(&w.key).map_or(0, |e| e.version);
            if version != w.base {
                let why = format!("k{} is at version {version}, not {}", w.key, w.base);
                return Some(Conflict::Refuse(why));
            }
        }
        wait
    }

    fn on_vote(&mut self, ctx: &mut Context<'_, Self>, from: NodeId, txn: TxnId, yes: bool) {
        if let Some(active) = self.active.get_mut(&txn) {
            if !yes {
                active.waiting.votes_missed = false;
                self.decide(ctx, txn, false);
                return;
            }
            active.yes.insert(from);
            self.maybe_decide(ctx, txn);
            return;
        }
        if yes {
            // A late yes to a decided transaction (or a re-vote): this voter holds a lock to
            // release, so it gets the outcome.
            self.send_outcome(ctx, from, txn);
        }
    }

    /// Tells `to` the logged outcome of `txn` (and waits for its ack), or, with no record,
    /// that it aborted: presumed abort, no record means no commit.
    fn send_outcome(&mut self, ctx: &mut Context<'_, Self>, to: NodeId, txn: TxnId) {
        if let Some(decision) = self.decisions.get_mut(&txn) {
            decision.pending.insert(to);
            let commit = decision.commit;
            ctx.send(to, decision_message(txn, commit));
            return;
        }
        ctx.note(|| format!("{to} asks about {txn}: no record, presumed aborted"));
        ctx.send(to, Message::Abort { txn });
    }

    /// A participant's phase 2: apply or release, persist, ack.
    fn on_decision(&mut self, ctx: &mut Context<'_, Self>, from: NodeId, txn: TxnId, commit: bool) {
        if txn.coordinator == self.me {
            ctx.note(|| format!("ignored an outcome of our own {txn} from {from}"));
            return;
        }
        if self.queued.remove(&txn).is_some() {
            // Aborted while its Prepare waited here: nothing was locked.
            ctx.send(from, Message::Ack { txn });
            return;
        }
        let Some(prepared) = self.prepared.remove(&txn) else {
            // Already applied or released (or never prepared): the ack is all that is missing.
            ctx.send(from, Message::Ack { txn });
            return;
        };
        let released = self.release(txn, &prepared.writes);
        if commit {
            self.apply(&prepared.writes);
        }
        self.learn(txn, commit);
        self.count_resolved(ctx, txn, &prepared);
        self.persist(ctx);
        ctx.send(from, Message::Ack { txn });
        self.after_release(ctx, released);
    }

    fn count_resolved(&mut self, ctx: &mut Context<'_, Self>, txn: TxnId, prepared: &Prepared) {
        self.stats.in_doubt_resolved += 1;
        if prepared.queries == 0 {
            return;
        }
        let blocked = ctx.now().since(prepared.voted_at);
        let s = &mut self.stats;
        s.blocked += 1;
        s.blocked_us_total += blocked.as_micros();
        s.blocked_us_max = s.blocked_us_max.max(blocked.as_micros());
        let queries = prepared.queries;
        let us = blocked.as_micros();
        ctx.note(|| format!("{txn}: unblocked after {blocked} ({us} us, {queries} queries)"));
    }

    fn learn(&mut self, txn: TxnId, commit: bool) {
        if self.learned.insert(txn, commit).is_none() {
            self.learned_order.push_back(txn);
        }
        // Ends: each pass removes one entry.
        while self.learned_order.len() > LEARNED_MAX {
            if let Some(old) = self.learned_order.pop_front() {
                self.learned.remove(&old);
            }
        }
    }

    fn on_query(&mut self, ctx: &mut Context<'_, Self>, from: NodeId, txn: TxnId) {
        if txn.coordinator != self.me {
            // Cooperative termination: answer only with an outcome we learned for a fact.
            if let Some(&commit) = self.learned.get(&txn) {
                ctx.send(from, decision_message(txn, commit));
            }
            return;
        }
        if self.active.contains_key(&txn) {
            ctx.note(|| format!("{from} asks about {txn}: still collecting votes"));
            return;
        }
        self.send_outcome(ctx, from, txn);
    }

    fn on_ack(&mut self, from: NodeId, txn: TxnId) {
        let Some(decision) = self.decisions.get_mut(&txn) else {
            return;
        };
        decision.pending.remove(&from);
        if decision.pending.is_empty() {
            // Not persisted now: a stale record only costs re-sends after a restart.
            self.decisions.remove(&txn);
        }
    }

    fn on_tick(&mut self, ctx: &mut Context<'_, Self>) {
        let (now, resend) = (ctx.now(), self.resend);
        let due = |at: Time| now.since(at) >= resend;
        for (txn, active) in self.active.iter_mut().filter(|(_, a)| due(a.sent_at)) {
            active.sent_at = now;
            for peer in self.nodes.iter().filter(|n| !active.yes.contains(n)) {
                let (txn, writes) = (*txn, active.writes.clone());
                let started = active.waiting.since;
                ctx.send(
                    *peer,
                    Message::Prepare {
                        txn,
                        started,
                        writes,
                    },
                );
            }
        }
        for (txn, decision) in self.decisions.iter_mut().filter(|(_, d)| due(d.sent_at)) {
            decision.sent_at = now;
            for peer in &decision.pending {
                ctx.send(*peer, decision_message(*txn, decision.commit));
            }
        }
        self.query_in_doubt(ctx);
        self.refuse_overdue(ctx);
        self.expire_queued(ctx);
        ctx.set_timer(Timer::Tick, self.resend);
    }

    /// A participant that voted yes and has not heard the outcome asks for it: blocked.
    fn query_in_doubt(&mut self, ctx: &mut Context<'_, Self>) {
        let now = ctx.now();
        let (me, resend, cooperative) = (self.me, self.resend, self.cooperative_termination);
        let others = |c: NodeId| {
            self.nodes
                .iter()
                .copied()
                .filter(move |n| *n != me && *n != c)
        };
        for (txn, prepared) in self.prepared.iter_mut() {
            if txn.coordinator == me || now.since(prepared.voted_at) < resend {
                continue;
            }
            prepared.queries += 1;
            self.stats.queries_sent += 1;
            ctx.send(txn.coordinator, Message::QueryOutcome { txn: *txn });
            if cooperative {
                for peer in others(txn.coordinator) {
                    ctx.send(peer, Message::QueryOutcome { txn: *txn });
                }
            }
        }
    }

    /// Refuses requests that have waited for a lock for `retry_for`.
    fn refuse_overdue(&mut self, ctx: &mut Context<'_, Self>) {
        let now = ctx.now();
        let mut overdue = Vec::new();
        for queue in self.parked.values_mut() {
            while queue
                .front()
                .is_some_and(|w| now.since(w.since) >= self.retry_for)
            {
                overdue.extend(queue.pop_front());
            }
        }
        self.parked.retain(|_, q| !q.is_empty());
        for waiting in overdue {
            self.give_up(ctx, waiting);
        }
    }

    /// Votes down Prepares that waited `vote_timeout`: their coordinators have given up.
    fn expire_queued(&mut self, ctx: &mut Context<'_, Self>) {
        let now = ctx.now();
        let expired: Vec<TxnId> = self
            .queued
            .iter()
            .filter(|(_, q)| now.since(q.arrived) >= self.vote_timeout)
            .map(|(t, _)| *t)
            .collect();
        for txn in expired {
            self.queued.remove(&txn);
            ctx.note(|| format!("voting no on {txn}: waited for a lock too long"));
            ctx.send(txn.coordinator, Message::Vote { txn, yes: false });
        }
    }

    /// A restarted coordinator aborts what it prepared and never decided (presumed abort).
    fn abort_undecided(&mut self, ctx: &mut Context<'_, Self>) {
        let me = self.me;
        let own: Vec<TxnId> = self
            .prepared
            .keys()
            .copied()
            .filter(|t| t.coordinator == me)
            .collect();
        if own.is_empty() {
            return;
        }
        let pending: BTreeSet<NodeId> = self.peers().collect();
        for txn in &own {
            if let Some(prepared) = self.prepared.remove(txn) {
                self.release(*txn, &prepared.writes);
            }
            let decision = Decision {
                commit: false,
                pending: pending.clone(),
                sent_at: ctx.now(),
            };
            self.decisions.insert(*txn, decision);
            self.stats.aborted += 1;
        }
        self.persist(ctx);
        for txn in own {
            ctx.note(|| format!("restarted: aborting undecided {txn}"));
            for &peer in &pending {
                ctx.send(peer, Message::Abort { txn });
            }
        }
    }
}

impl Protocol for TwoPc {
    type Message = Message;
    type Timer = Timer;
    type Durable = TwoPcDurable;

    fn info() -> ProtocolInfo {
        ProtocolInfo {
            name: "twopc",
            description: "two-phase commit over every replica (Gray & Lamport): the receiving \
                          node coordinates, participants lock and vote, the decision is logged \
                          before it is sent; reads are local and wait for locks; a multi-key \
                          txn is one transaction locking its reads and writes. Linearizable \
                          (txns strictly serializable) and durable, unavailable under any \
                          partition, blocking when a coordinator fails after Prepare",
            promises: &[
                Promise::Linearizable,
                Promise::DurableAcknowledgedWrites,
                Promise::Convergent,
                Promise::LiveAfterHeal,
            ],
            params: PARAMS,
            bugs: BUGS,
            transactions: true,
        }
    }

    fn start(
        ctx: &mut Context<'_, Self>,
        config: &NodeConfig,
        durable: Option<&TwoPcDurable>,
    ) -> Self {
        let d = durable.cloned().unwrap_or_default();
        let params = &config.params;
        let mut locks = BTreeMap::new();
        for (txn, prepared) in &d.prepared {
            for w in &prepared.writes {
                locks.insert(w.key, *txn);
            }
        }
        let mut node = TwoPc {
            me: config.id,
            nodes: config.nodes.clone(),
            vote_timeout: params.span("vote_timeout"),
            // A zero period would re-fire at the same instant forever.
            resend: Span(params.span("resend").as_micros().max(1)),
            retry_for: params.span("retry_for"),
            cooperative_termination: params.flag("cooperative_termination"),
            bugs: Bugs::from_config(config),
            entries: d.entries,
            prepared: d.prepared,
            decisions: d.decisions,
            next_txn: d.next_txn,
            refused: d.refused,
            stats: d.stats,
            locks,
            active: BTreeMap::new(),
            queued: BTreeMap::new(),
            parked: BTreeMap::new(),
            retrying: BTreeMap::new(),
            learned: BTreeMap::new(),
            learned_order: VecDeque::new(),
            stop_after_prepare: false,
            stop_after_decision: false,
        };
        node.abort_undecided(ctx);
        ctx.set_timer(Timer::Tick, node.resend);
        node
    }

    fn on_message(&mut self, ctx: &mut Context<'_, Self>, from: NodeId, msg: Message) {
        if !self.nodes.contains(&from) || from == self.me {
            ctx.note(|| format!("ignored a message from {from}, not a peer"));
            return;
        }
        match msg {
            Message::Prepare {
                txn,
                started,
                writes,
            } => self.on_prepare(ctx, from, txn, started, writes),
            Message::Vote { txn, yes } => self.on_vote(ctx, from, txn, yes),
            Message::Commit { txn } => self.on_decision(ctx, from, txn, true),
            Message::Abort { txn } => self.on_decision(ctx, from, txn, false),
            Message::Ack { txn } => self.on_ack(from, txn),
            Message::QueryOutcome { txn } => self.on_query(ctx, from, txn),
        }
    }

    fn on_timer(&mut self, ctx: &mut Context<'_, Self>, timer: Timer) {
        match timer {
            Timer::Tick => self.on_tick(ctx),
            Timer::Votes(txn) => {
                if let Some(active) = self.active.get_mut(&txn) {
                    active.waiting.votes_missed = true;
                    ctx.note(|| format!("{txn}: votes missing after the vote timeout"));
                    self.decide(ctx, txn, false);
                }
            }
            Timer::Retry(id) => {
                if let Some(waiting) = self.retrying.remove(&id) {
                    self.serve(ctx, waiting);
                }
            }
        }
    }

    fn on_request(&mut self, ctx: &mut Context<'_, Self>, request: Request) {
        let waiting = Waiting {
            request,
            since: ctx.now(),
            attempts: 0,
            votes_missed: false,
        };
        self.serve(ctx, waiting);
    }

    fn on_operator(&mut self, ctx: &mut Context<'_, Self>, command: Operator) {
        match command {
            Operator::StopAfterPrepare => self.stop_after_prepare = true,
            Operator::StopAfterDecision => self.stop_after_decision = true,
            other => ctx.note(|| format!("ignored operator command {other}")),
        }
    }

    /// The coordinators' outcomes and how long participants stayed blocked in doubt
    /// (section 2: 2PC blocks when the coordinator fails after Prepare).
    fn counters(&self) -> Vec<Counter> {
        let s = &self.stats;
        vec![
            Counter::sum("committed", s.committed),
            Counter::sum("aborted", s.aborted),
            Counter::sum("in-doubt votes queried", s.blocked),
            Counter::sum("blocked ms in all", s.blocked_us_total / 1000),
            Counter::max("longest block ms", s.blocked_us_max / 1000),
            Counter::sum("outcome queries", s.queries_sent),
            Counter::sum("requests given up", s.given_up),
        ]
    }

    fn store(&self) -> BTreeMap<Key, Value> {
        self.entries
            .iter()
            .filter_map(|(k, e)| e.value.clone().map(|v| (*k, v)))
            .collect()
    }

    fn digest(&self) -> u64 {
        // Versions too: replicas that applied different commits differ even where the last
        // values happen to agree.
        StableHasher::hash_of(&self.entries)
    }

    fn check_invariants(&self) -> Result<(), String> {
        for (key, txn) in &self.locks {
            let holds = self
                .prepared
                .get(txn)
                .is_some_and(|p| p.writes.iter().any(|w| w.key == *key));
            if !holds {
                return Err(format!(
                    "k{key} locked by {txn}, which holds no write of it"
                ));
            }
        }
        if !self.bugs.release_lock_before_decision {
            for (txn, prepared) in &self.prepared {
                if let Some(w) = prepared
                    .writes
                    .iter()
                    .find(|w| self.locks.get(&w.key) != Some(txn))
                {
                    return Err(format!(
                        "{txn} is prepared but k{} is not locked by it",
                        w.key
                    ));
                }
            }
        }
        if let Some(txn) = self.queued.keys().find(|t| self.prepared.contains_key(t)) {
            return Err(format!("{txn} is both queued and prepared"));
        }
        if let Some(txn) = self.active.keys().find(|t| !self.prepared.contains_key(t)) {
            return Err(format!(
                "{txn} collects votes without its own prepared record"
            ));
        }
        if self.learned.len() > LEARNED_MAX || self.learned.len() != self.learned_order.len() {
            return Err(format!("{} learned outcomes", self.learned.len()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Hand-driven clusters. Section numbers refer to Gray & Lamport, "Consensus on
    //! Transaction Commit" (2004).

    use super::*;
    use crate::contract::Effect;
    use crate::ids::ClientId;
    use crate::kv::Op;
    use crate::params::Params;
    use crate::testkit::{configs, TestEntropy};

    /// A message on the wire: (from, to, message).
    type Wire = (NodeId, NodeId, Message);

    /// Sends queue in `inflight` until a test delivers them; timers fire when a test says.
    struct Harness {
        configs: Vec<NodeConfig>,
        nodes: Vec<Option<TwoPc>>,
        durable: Vec<Option<TwoPcDurable>>,
        inflight: Vec<Wire>,
        replies: Vec<(RequestId, OpResult)>,
        /// Every effect kind in emission order, per handler call: to check persist-before-send.
        log: Vec<(NodeId, &'static str)>,
        now: Time,
        entropy: TestEntropy,
        seq: u64,
    }

    fn n(i: u16) -> NodeId {
        NodeId(i)
    }

    fn put(key: Key, value: &str) -> Op {
        Op::Put {
            key,
            value: value.into(),
        }
    }

    fn get(key: Key) -> Op {
        Op::Get { key }
    }

    fn append(key: Key, value: &str) -> Op {
        Op::Append {
            key,
            value: value.into(),
        }
    }

    fn txn(ops: Vec<Op>) -> Op {
        Op::Txn { ops }
    }

    fn ok(value: &str) -> OpResult {
        OpResult::Ok {
            value: Some(value.into()),
        }
    }

    fn committed(results: Vec<OpResult>) -> OpResult {
        OpResult::Txn { results }
    }

    impl Harness {
        fn new(count: u16, bugs: &[&'static str]) -> Harness {
            let configs = configs(count, &Params::defaults(TwoPc::info().params), bugs);
            let mut h = Harness {
                configs,
                nodes: Vec::new(),
                durable: vec![None; usize::from(count)],
                inflight: Vec::new(),
                replies: Vec::new(),
                log: Vec::new(),
                now: Time(1_000),
                entropy: TestEntropy(7),
                seq: 0,
            };
            for i in 0..count {
                h.nodes.push(None);
                h.boot(i);
            }
            h
        }

        fn node(&self, i: u16) -> &TwoPc {
            self.nodes[usize::from(i)].as_ref().expect("running")
        }

        fn boot(&mut self, i: u16) {
            let mut effects = Vec::new();
            let config = self.configs[usize::from(i)].clone();
            let durable = self.durable[usize::from(i)].clone();
            let mut ctx = Context::new(n(i), self.now, true, &mut effects, &mut self.entropy);
            let node = TwoPc::start(&mut ctx, &config, durable.as_ref());
            self.nodes[usize::from(i)] = Some(node);
            self.apply(n(i), effects);
        }

        fn crash(&mut self, i: u16) {
            self.nodes[usize::from(i)] = None;
            self.inflight.retain(|(_, to, _)| *to != n(i));
        }

        fn run(&mut self, i: u16, f: impl FnOnce(&mut TwoPc, &mut Context<'_, TwoPc>)) {
            let Some(node) = self.nodes[usize::from(i)].as_mut() else {
                return; // crashed: the input is lost
            };
            let mut effects = Vec::new();
            let mut ctx = Context::new(n(i), self.now, true, &mut effects, &mut self.entropy);
            f(node, &mut ctx);
            self.apply(n(i), effects);
            if let Some(node) = &self.nodes[usize::from(i)] {
                node.check_invariants().unwrap();
            }
        }

        fn apply(&mut self, from: NodeId, effects: Vec<Effect<TwoPc>>) {
            for effect in effects {
                let kind = match effect {
                    Effect::Send { to, msg } => {
                        let kind = match msg {
                            Message::Prepare { .. } => "prepare",
                            Message::Vote { .. } => "vote",
                            Message::Commit { .. } => "commit",
                            Message::Abort { .. } => "abort",
                            Message::Ack { .. } => "ack",
                            Message::QueryOutcome { .. } => "query",
                        };
                        self.inflight.push((from, to, msg));
                        kind
                    }
                    Effect::Persist(d) => {
                        self.durable[from.index()] = Some(d);
                        "persist"
                    }
                    Effect::Reply { request, result } => {
                        self.replies.push((request, result));
                        "reply"
                    }
                    Effect::Halt => {
                        self.crash(from.0);
                        self.log.push((from, "halt"));
                        return; // later effects are discarded
                    }
                    Effect::SetTimer { .. } | Effect::CancelTimer { .. } | Effect::Note(_) => {
                        continue
                    }
                };
                self.log.push((from, kind));
            }
        }

        /// Sends `op` to node `i`; returns its request id.
        fn submit(&mut self, i: u16, op: Op) -> RequestId {
            self.seq += 1;
            let id = RequestId {
                client: ClientId(0),
                seq: self.seq,
            };
            let request = Request {
                id,
                op,
                quorum: None,
            };
            self.run(i, |node, ctx| node.on_request(ctx, request));
            id
        }

        /// Sends a copy of request `id` (a client's retry) to node `i`.
        fn submit_copy(&mut self, i: u16, id: RequestId, op: Op) {
            let request = Request {
                id,
                op,
                quorum: None,
            };
            self.run(i, |node, ctx| node.on_request(ctx, request));
        }

        fn reply(&self, id: RequestId) -> Option<&OpResult> {
            self.replies.iter().find(|(r, _)| *r == id).map(|(_, r)| r)
        }

        fn deliver_where(&mut self, mut pick: impl FnMut(&Wire) -> bool) {
            for _ in 0..10_000 {
                let Some(at) = self.inflight.iter().position(&mut pick) else {
                    return;
                };
                let (from, to, msg) = self.inflight.remove(at);
                self.run(to.0, |node, ctx| node.on_message(ctx, from, msg));
            }
            panic!("messages never stopped");
        }

        fn deliver_all(&mut self) {
            self.deliver_where(|_| true);
        }

        /// Advances the clock by `ms` and fires every running node's tick.
        fn tick(&mut self, ms: u64) {
            self.now += Span::millis(ms);
            for i in 0..self.nodes.len() as u16 {
                self.run(i, |node, ctx| node.on_timer(ctx, Timer::Tick));
            }
        }

        fn value(&self, i: u16, key: Key) -> Option<Value> {
            self.node(i).store().get(&key).cloned()
        }
    }

    #[test]
    fn section_2_a_write_commits_after_every_yes_vote_and_every_replica_applies_it() {
        let mut h = Harness::new(3, &[]);
        let id = h.submit(0, put(1, "a"));
        // Phase 1: the coordinator's own prepared record is durable before any Prepare.
        assert_eq!(&h.log[..2], [(n(0), "persist"), (n(0), "prepare")]);
        h.deliver_where(|(_, _, m)| matches!(m, Message::Prepare { .. }));
        // Each participant persists its prepared state before it votes yes.
        for p in [n(1), n(2)] {
            let mine: Vec<&str> = h.log.iter().filter(|(f, _)| *f == p).map(|x| x.1).collect();
            assert_eq!(mine, ["persist", "vote"]);
            assert_eq!(
                h.node(p.0).locks.get(&1),
                Some(&TxnId {
                    coordinator: n(0),
                    seq: 0
                })
            );
        }
        assert!(h.reply(id).is_none(), "no answer before every vote");
        h.log.clear();
        h.deliver_where(|(_, _, m)| matches!(m, Message::Vote { .. }));
        // Phase 2: the decision is logged before Commit leaves and before the client hears.
        let kinds: Vec<&str> = h.log.iter().map(|x| x.1).collect();
        assert_eq!(kinds, ["persist", "commit", "commit", "reply"]);
        assert_eq!(h.durable[0].as_ref().unwrap().decisions.len(), 1);
        assert_eq!(
            h.reply(id),
            Some(&OpResult::Ok {
                value: Some("a".into())
            })
        );
        h.deliver_all();
        assert_eq!(
            [h.value(0, 1), h.value(1, 1), h.value(2, 1)],
            [Some("a".into()), Some("a".into()), Some("a".into())]
        );
        assert!(
            h.node(0).decisions.is_empty(),
            "forgotten once every participant acked"
        );
        assert!((0..3).all(|i| h.node(i).locks.is_empty()));
    }

    #[test]
    fn section_2_a_read_of_a_key_prepared_here_waits_for_the_outcome() {
        let mut h = Harness::new(3, &[]);
        h.submit(0, put(1, "a"));
        h.deliver_where(|(_, _, m)| matches!(m, Message::Prepare { .. }));
        let read = h.submit(2, Op::Get { key: 1 });
        assert!(
            h.reply(read).is_none(),
            "n3 holds k1 locked: the read waits"
        );
        h.deliver_all();
        assert_eq!(
            h.reply(read),
            Some(&OpResult::Ok {
                value: Some("a".into())
            })
        );
    }

    #[test]
    fn section_2_a_participant_votes_no_on_a_younger_conflicting_prepare_and_it_aborts() {
        let mut h = Harness::new(3, &[]);
        h.submit(0, put(1, "a"));
        h.now += Span::millis(1);
        let late = h.submit(1, put(1, "b"));
        // n2's Prepare reaches n1, which holds k1 for an older transaction: n2's dies.
        h.deliver_where(|(f, _, m)| *f == n(1) && matches!(m, Message::Prepare { .. }));
        h.deliver_where(|(_, to, m)| *to == n(1) && matches!(m, Message::Vote { .. }));
        assert!(h.node(1).active.is_empty(), "aborted at the first no");
        assert!(
            h.node(1).retrying.contains_key(&late),
            "and retried after a backoff"
        );
        h.deliver_all();
        assert_eq!(h.value(2, 1), Some("a".into()));
    }

    #[test]
    fn section_2_a_participant_blocks_while_the_coordinator_is_down_after_prepare() {
        let mut h = Harness::new(3, &[]);
        h.run(0, |node, ctx| {
            node.on_operator(ctx, Operator::StopAfterPrepare)
        });
        h.submit(0, put(1, "a"));
        assert!(h.nodes[0].is_none(), "halted right after sending Prepare");
        h.deliver_all();
        // The participants voted yes and cannot decide alone: they keep the lock and ask.
        for _ in 0..20 {
            h.tick(10);
            h.deliver_all();
        }
        assert_eq!(h.node(1).prepared.len(), 1);
        let read = h.submit(1, Op::Get { key: 1 });
        assert!(h.reply(read).is_none());
        assert!(
            h.node(1).prepared[&TxnId {
                coordinator: n(0),
                seq: 0
            }]
                .queries
                > 0
        );
        // Back from its log, the coordinator aborts what it never decided (presumed abort).
        h.boot(0);
        h.deliver_all();
        assert!(h.node(1).prepared.is_empty() && h.node(2).prepared.is_empty());
        assert_eq!(h.reply(read), Some(&OpResult::NotFound));
        let stats = h.node(1).stats();
        assert_eq!(stats.blocked, 1);
        assert!(stats.blocked_us_max >= 200_000, "{stats:?}");
        assert_eq!(h.node(0).stats().aborted, 1);
    }

    #[test]
    fn section_2_a_coordinator_restarted_after_logging_commit_resends_it() {
        let mut h = Harness::new(3, &[]);
        h.run(0, |node, ctx| {
            node.on_operator(ctx, Operator::StopAfterDecision)
        });
        let id = h.submit(0, put(1, "a"));
        h.deliver_all();
        assert!(h.nodes[0].is_none(), "halted after logging the decision");
        assert!(
            h.reply(id).is_none(),
            "outcome unknown to the client: it times out"
        );
        h.boot(0);
        h.tick(10);
        h.deliver_all();
        assert_eq!(
            [h.value(0, 1), h.value(1, 1), h.value(2, 1)],
            [Some("a".into()), Some("a".into()), Some("a".into())]
        );
    }

    #[test]
    fn with_coordinator_forgets_decision_a_restarted_coordinator_presumes_abort_of_a_commit() {
        let mut h = Harness::new(3, &["coordinator-forgets-decision"]);
        h.run(0, |node, ctx| {
            node.on_operator(ctx, Operator::StopAfterDecision)
        });
        h.submit(0, put(1, "a"));
        h.deliver_all();
        h.boot(0);
        for _ in 0..3 {
            h.tick(10);
            h.deliver_all();
        }
        // The coordinator applied its commit; the participants were told "abort".
        assert_eq!([h.value(0, 1), h.value(1, 1)], [Some("a".into()), None]);
        assert_ne!(h.node(0).digest(), h.node(1).digest());
    }

    #[test]
    fn a_duplicated_prepare_of_a_committed_append_is_voted_down_not_applied_twice() {
        let mut h = Harness::new(2, &[]);
        let append = Op::Append {
            key: 1,
            value: "x".into(),
        };
        h.submit(0, append);
        let prepare = h.inflight[0].clone();
        h.deliver_all();
        assert_eq!(h.value(1, 1), Some("x".into()));
        h.inflight.push(prepare);
        h.deliver_all();
        assert_eq!(
            [h.value(0, 1), h.value(1, 1)],
            [Some("x".into()), Some("x".into())]
        );
        assert!(h.node(1).locks.is_empty());
    }

    /// Regression, nemesis.toml seed 1: a client timed out on a paused coordinator and sent
    /// the same request (same id) to another node; both copies must not apply.
    #[test]
    fn a_copy_of_a_committed_write_sent_to_another_node_is_answered_not_applied_again() {
        let mut h = Harness::new(3, &[]);
        let append = Op::Append {
            key: 1,
            value: "x".into(),
        };
        let id = h.submit(0, append.clone());
        h.deliver_all();
        h.replies.clear();
        h.submit_copy(1, id, append);
        assert_eq!(
            h.reply(id),
            Some(&OpResult::Ok {
                value: Some("x".into())
            }),
            "the first answer, again"
        );
        assert!(h.inflight.is_empty(), "no second transaction");
        assert_eq!(
            [h.value(0, 1), h.value(1, 1)],
            [Some("x".into()), Some("x".into())]
        );
    }

    /// Regression, partition.toml seed 3: a write refused as unavailable ("definitely not
    /// applied") while a copy of it, at another node, was still to commit.
    #[test]
    fn a_write_refused_with_a_node_down_is_never_applied_by_a_copy_sent_elsewhere() {
        let mut h = Harness::new(3, &[]);
        h.crash(2);
        let write = h.submit(1, put(1, "b"));
        let txn = TxnId {
            coordinator: n(1),
            seq: 0,
        };
        h.run(1, |node, ctx| node.on_timer(ctx, Timer::Votes(txn)));
        h.now += Span::millis(400);
        h.run(1, |node, ctx| node.on_timer(ctx, Timer::Retry(write)));
        assert_eq!(h.reply(write), Some(&OpResult::Unavailable { hint: None }));
        assert_eq!(
            h.durable[1].as_ref().unwrap().refused[&write.client],
            write.seq
        );
        h.boot(2);
        h.deliver_all();
        // The client's copy at n1 prepares there and at n3; n2 votes it down.
        h.submit_copy(0, write, put(1, "b"));
        h.deliver_all();
        assert_eq!(
            [h.value(0, 1), h.value(1, 1), h.value(2, 1)],
            [None, None, None]
        );
        assert_eq!(h.replies.iter().filter(|(r, _)| *r == write).count(), 1);
    }

    /// A write voted down until `retry_for` passed is dropped in silence: a refusal would
    /// also doom the client's retry elsewhere, which may commit.
    #[test]
    fn a_write_voted_down_too_long_is_dropped_in_silence() {
        let mut h = Harness::new(3, &[]);
        h.submit(0, put(1, "a"));
        h.now += Span::millis(1);
        let write = h.submit(1, put(1, "b"));
        // n1 holds k1 for the older transaction: n2's dies, and is retried later.
        h.deliver_where(|(f, _, m)| *f == n(1) && matches!(m, Message::Prepare { .. }));
        h.deliver_where(|(_, to, m)| *to == n(1) && matches!(m, Message::Vote { .. }));
        h.deliver_all();
        h.now += Span::millis(400);
        h.run(1, |node, ctx| node.on_timer(ctx, Timer::Retry(write)));
        assert_eq!(h.node(1).stats().given_up, 1);
        assert!(h.reply(write).is_none());
        assert!(h.node(1).refused.is_empty());
    }

    /// A participant blocked by an in-doubt transaction refuses the writes and reads waiting
    /// for its lock: every replica holds that lock, a retry elsewhere would wait too.
    #[test]
    fn a_write_waiting_for_an_in_doubt_lock_is_refused_and_so_is_a_read() {
        let mut h = Harness::new(3, &[]);
        h.submit(0, put(1, "a"));
        h.deliver_where(|(_, _, m)| matches!(m, Message::Prepare { .. }));
        let write = h.submit(1, put(1, "b"));
        let read = h.submit(1, Op::Get { key: 1 });
        h.tick(400);
        assert_eq!(h.node(1).stats().given_up, 2);
        let refused = OpResult::Unavailable { hint: None };
        assert_eq!(
            [h.reply(write), h.reply(read)],
            [Some(&refused), Some(&refused)]
        );
        assert_eq!(h.node(1).refused[&write.client], write.seq);
    }

    #[test]
    fn a_write_whose_copy_is_prepared_here_is_not_refused() {
        let mut h = Harness::new(3, &[]);
        let write = h.submit(0, put(1, "a"));
        h.deliver_where(|(_, _, m)| matches!(m, Message::Prepare { .. }));
        // A copy of the same request reaches n2, which holds it prepared for n1's transaction.
        h.submit_copy(1, write, put(1, "a"));
        h.tick(400);
        assert_eq!(h.node(1).stats().given_up, 1);
        assert!(h.reply(write).is_none(), "it may commit: silent");
        h.deliver_all();
        assert!(matches!(h.reply(write), Some(OpResult::Ok { .. })));
        assert_eq!(h.value(1, 1), Some("a".into()));
    }

    #[test]
    fn with_release_lock_before_decision_a_participant_reads_the_old_value_after_the_ack() {
        let mut h = Harness::new(3, &["release-lock-before-decision"]);
        let id = h.submit(0, put(1, "a"));
        h.deliver_where(|(_, _, m)| !matches!(m, Message::Commit { .. }));
        assert_eq!(
            h.reply(id),
            Some(&OpResult::Ok {
                value: Some("a".into())
            })
        );
        let read = h.submit(2, Op::Get { key: 1 });
        assert_eq!(
            h.reply(read),
            Some(&OpResult::NotFound),
            "stale: not linearizable"
        );
    }

    /// Gray & Lamport section 2: a txn is one transaction over all its keys. Its Prepare
    /// carries one write per key, the key it only reads too (unchanged, with its version);
    /// once every node voted yes, every replica applies all its writes, and the client gets
    /// one result per op, as the sequential store answers.
    #[test]
    fn section_2_a_txn_commits_all_its_writes_at_every_replica_and_answers_each_op() {
        let mut h = Harness::new(3, &[]);
        h.submit(0, put(3, "c"));
        h.deliver_all();
        let op = txn(vec![put(1, "a"), put(2, "b"), get(1), get(3)]);
        let id = h.submit(1, op.clone());
        assert_eq!(h.inflight.len(), 2, "one Prepare per peer");
        let Some((_, _, Message::Prepare { writes, .. })) = h.inflight.first() else {
            panic!("no Prepare: {:?}", h.inflight);
        };
        let sent: Vec<(Key, u64, Option<Value>)> = writes
            .iter()
            .map(|w| (w.key, w.base, w.value.clone()))
            .collect();
        let want = [
            (1, 0, Some("a".into())),
            (2, 0, Some("b".into())),
            (3, 1, Some("c".into())),
        ];
        assert_eq!(sent, want);
        assert!(h.reply(id).is_none(), "no answer before every vote");
        h.deliver_all();
        let answer = committed(vec![ok("a"), ok("b"), ok("a"), ok("c")]);
        let mut model = BTreeMap::from([(3, "c".to_string())]);
        assert_eq!(kv::apply(&mut model, &op), answer, "the sequential answer");
        assert_eq!(h.reply(id), Some(&answer));
        for i in 0..3 {
            assert_eq!(h.node(i).store(), model, "n{}", i + 1);
            assert!(h.node(i).locks.is_empty() && h.node(i).prepared.is_empty());
        }
    }

    /// Gray & Lamport section 2: without every participant's yes vote a transaction aborts,
    /// and none of a txn's writes applies anywhere, not even at the participant that voted
    /// yes and held them prepared. Retried with the node still down, it is refused, and a
    /// copy sent elsewhere is voted down by the refusal's fence.
    #[test]
    fn section_2_a_txn_missing_a_vote_aborts_and_applies_none_of_its_writes() {
        let mut h = Harness::new(3, &[]);
        h.crash(2);
        let op = txn(vec![put(1, "a"), append(2, "x")]);
        let id = h.submit(0, op.clone());
        h.deliver_all();
        assert_eq!(h.node(1).locks.len(), 2, "n2 voted yes, both keys locked");
        let t = TxnId {
            coordinator: n(0),
            seq: 0,
        };
        h.run(0, |node, ctx| node.on_timer(ctx, Timer::Votes(t)));
        h.deliver_all();
        for i in 0..2 {
            assert!(h.node(i).entries.is_empty(), "n{} applied a write", i + 1);
            assert!(h.node(i).locks.is_empty() && h.node(i).prepared.is_empty());
        }
        h.now += Span::millis(400);
        h.run(0, |node, ctx| node.on_timer(ctx, Timer::Retry(id)));
        assert_eq!(h.reply(id), Some(&OpResult::Unavailable { hint: None }));
        h.boot(2);
        h.submit_copy(1, id, op);
        h.deliver_all();
        for i in 0..3 {
            assert!(h.node(i).entries.is_empty(), "n{} applied a write", i + 1);
        }
        assert_eq!(h.replies.iter().filter(|(r, _)| *r == id).count(), 1);
    }

    /// Gray & Lamport section 2 needs no vote where nothing changes: a txn of reads (and a
    /// failing cas) is answered from the receiving replica, all its keys unlocked there,
    /// without any Prepare.
    #[test]
    fn section_2_a_txn_that_changes_nothing_is_answered_locally_without_prepare() {
        let mut h = Harness::new(3, &[]);
        h.submit(0, put(1, "a"));
        h.deliver_all();
        h.log.clear();
        let cas = Op::Cas {
            key: 1,
            expected: "z".into(),
            new: "b".into(),
        };
        let id = h.submit(2, txn(vec![get(1), get(2), cas]));
        let failed = OpResult::PreconditionFailed {
            current: Some("a".into()),
        };
        let answer = committed(vec![ok("a"), OpResult::NotFound, failed]);
        assert_eq!(h.reply(id), Some(&answer));
        assert_eq!(h.log, [(n(2), "reply")], "no persist, no Prepare");
        assert!(h.inflight.is_empty());
    }

    /// Gray & Lamport section 2's participant holds its locks until the outcome: a txn's
    /// local answer waits while any key of it (here the second) is locked here, and then
    /// reads the committed write.
    #[test]
    fn section_2_a_read_only_txn_waits_for_a_lock_on_any_of_its_keys() {
        let mut h = Harness::new(3, &[]);
        h.submit(0, put(1, "a"));
        h.deliver_all();
        h.submit(0, put(2, "b"));
        h.deliver_where(|(_, _, m)| matches!(m, Message::Prepare { .. }));
        let id = h.submit(2, txn(vec![get(1), get(2)]));
        assert!(h.reply(id).is_none(), "k2 is locked at n3: the txn waits");
        h.deliver_all();
        assert_eq!(h.reply(id), Some(&committed(vec![ok("a"), ok("b")])));
    }

    /// Gray & Lamport section 2 commits a transaction once: a client's retry of a committed
    /// txn (same request id) at another node, or at its coordinator, is answered from the
    /// keys' `last_writes` and not applied again (a second append would show). Once the
    /// client has moved on (a later write of one key), a copy is ignored: the newest record
    /// across the txn's keys counts.
    #[test]
    fn a_retried_txn_after_its_commit_is_answered_from_last_writes_and_applied_once() {
        let mut h = Harness::new(3, &[]);
        let op = txn(vec![append(1, "x"), get(2), append(2, "y")]);
        let id = h.submit(0, op.clone());
        h.deliver_all();
        let answer = committed(vec![ok("x"), OpResult::NotFound, ok("y")]);
        assert_eq!(h.reply(id), Some(&answer));
        h.replies.clear();
        h.submit_copy(1, id, op.clone());
        h.submit_copy(0, id, op.clone());
        assert_eq!(h.replies, [(id, answer.clone()), (id, answer)]);
        assert!(h.inflight.is_empty(), "no second transaction");
        for i in 0..3 {
            assert_eq!(
                [h.value(i, 1), h.value(i, 2)],
                [Some("x".into()), Some("y".into())]
            );
        }
        h.submit(2, put(2, "z"));
        h.deliver_all();
        h.replies.clear();
        h.submit_copy(1, id, op);
        assert!(
            h.replies.is_empty() && h.inflight.is_empty(),
            "older: ignored"
        );
        assert_eq!(h.value(1, 1), Some("x".into()));
    }

    /// T1 = [get k1, put k2=t1] at n1 and T2 = [get k2, put k1=t2] at n2, both arriving
    /// before any message is delivered: each reads the key the other writes.
    fn start_crossed_txns(bugs: &[&'static str]) -> (Harness, RequestId, RequestId) {
        let mut h = Harness::new(3, bugs);
        let t1 = h.submit(0, txn(vec![get(1), put(2, "t1")]));
        let t2 = h.submit(1, txn(vec![get(2), put(1, "t2")]));
        (h, t1, t2)
    }

    /// Gray & Lamport section 2 with the read keys locked and version-checked too: whatever
    /// the delivery order, two concurrent txns that each read the key the other writes never
    /// both commit having read the old values (write skew); the younger dies, and retried,
    /// reads the older's write: serializable, T1 then T2.
    #[test]
    fn section_2_crossed_txns_serialize_and_never_write_skew() {
        let orders: [Option<u16>; 4] = [None, Some(0), Some(1), Some(2)];
        for first in orders {
            let (mut h, t1, t2) = start_crossed_txns(&[]);
            if let Some(to) = first {
                h.deliver_where(|(_, dest, _)| *dest == n(to));
            }
            for _ in 0..10 {
                h.deliver_all();
                for (i, id) in [(0, t1), (1, t2)] {
                    if h.node(i).retrying.contains_key(&id) {
                        h.now += Span::millis(5);
                        h.run(i, |node, ctx| node.on_timer(ctx, Timer::Retry(id)));
                    }
                }
            }
            let old = |r: Option<&OpResult>| matches!(r, Some(OpResult::Txn { results }) if results[0] == OpResult::NotFound);
            assert!(
                !(old(h.reply(t1)) && old(h.reply(t2))),
                "write skew, delivering to {first:?} first"
            );
            assert_eq!(
                h.reply(t1),
                Some(&committed(vec![OpResult::NotFound, ok("t1")]))
            );
            assert_eq!(h.reply(t2), Some(&committed(vec![ok("t1"), ok("t2")])));
            for i in 0..3 {
                assert_eq!(
                    [h.value(i, 1), h.value(i, 2)],
                    [Some("t2".into()), Some("t1".into())]
                );
            }
        }
    }

    /// With `lock-only-written-keys`, Gray & Lamport section 2's participants lock only the
    /// written keys: the crossed txns write disjoint keys, both prepare everywhere, and both
    /// commit having read the old (absent) value of the key the other writes: write skew,
    /// which no serial order explains.
    #[test]
    fn with_lock_only_written_keys_crossed_txns_both_commit_reading_old_values() {
        let (mut h, t1, t2) = start_crossed_txns(&["lock-only-written-keys"]);
        h.deliver_all();
        assert_eq!(
            h.reply(t1),
            Some(&committed(vec![OpResult::NotFound, ok("t1")]))
        );
        assert_eq!(
            h.reply(t2),
            Some(&committed(vec![OpResult::NotFound, ok("t2")]))
        );
        for i in 0..3 {
            assert_eq!(
                [h.value(i, 1), h.value(i, 2)],
                [Some("t2".into()), Some("t1".into())]
            );
        }
    }
}
