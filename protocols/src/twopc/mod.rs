//! Two-phase commit over every replica: the talk demo's CA mode.
//!
//! Gray & Lamport, "Consensus on Transaction Commit" (2004), section 2. Every node holds a full
//! replica and is a resource manager (a *participant*); the node a client's write reaches is
//! the transaction manager (the *coordinator*) of that write, and a participant of it too.
//! What section 2 leaves out follows the classic presentation of 2PC (Bernstein, Hadzilacos &
//! Goodman, "Concurrency Control and Recovery in Database Systems", 1987, chapter 7): the
//! acknowledgements, and the termination protocol by which an in-doubt participant asks for the
//! outcome (cooperative termination included); presumed abort is Mohan, Lindsay & Obermarck's
//! (R*, 1986), and wait-die Rosenkrantz, Stearns & Lewis's (1978).
//!
//! # A write is a transaction
//!
//! A transaction is a set of [`Write`]s, each one key's new state (a value, or absence) and the
//! key's version it was computed from; a single-key write is a transaction of one write, and a
//! client's [`Op::Txn`](crate::kv::Op::Txn) (single-key ops applied atomically, in order) is
//! one transaction over all its keys. The coordinator locks the keys on its own replica,
//! computes each new state there by applying the ops in order with
//! [`kv::apply_to_value`](crate::kv::apply_to_value) to its committed values (so cas, update
//! and append see the committed value under the lock, and a txn's later ops see its earlier
//! ones' writes), persists its own prepared record and sends [`Message::Prepare`] with the
//! writes to every peer. Computing at the coordinator rather than at each participant keeps one
//! answer for the client (a txn's: one result per op, carried by each of its writes) and lets a
//! txn read under its locks and write many keys; it is as correct as computing at each
//! participant because every participant checks that its version of each key is the
//! coordinator's `base` (see "Why versions").
//!
//! A participant votes [`Message::Vote`] `yes` only after it has locked every key of the
//! transaction and persisted its prepared record. It votes `no` at once if a key's version is
//! not `base`, or if a key is locked by an *older* transaction; a Prepare that finds a key
//! locked by a *younger* one waits for it (wait-die, ranked by when the requests reached their
//! coordinators), for at most `vote_timeout`. Waits thus only ever go from older to younger, so
//! they never close a cycle: no deadlock. A waiting Prepare keeps its rank on every key it
//! writes, as a holder does: a younger Prepare that wants one of them is voted no, and a
//! younger write that reaches this node waits behind it, so no younger transaction overtakes
//! an older one and the oldest is never starved (with waiters unranked, younger ones took the
//! keys in turn until the oldest's coordinator gave up: `scenarios/swarm.toml` seed 974).
//! The coordinator commits when every node voted yes,
//! aborts on the first no or when `vote_timeout` passes, and persists its decision record
//! *before* it sends [`Message::Commit`] or [`Message::Abort`] (section 2: the TM's decision
//! must survive its failure). Participants apply on Commit, release on Commit or Abort,
//! persist, and [`Message::Ack`]; the coordinator forgets a decision once every participant
//! that may hold the transaction prepared has acked.
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
//! A read (a get, or a txn of gets) is answered from the receiving node's replica, unless that replica holds a key of it locked: then it waits (parked behind that
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
//! # Writes that change nothing
//!
//! A write that would change no value (a failing cas, the update of an absent key, a put of
//! the value already there) still runs as a transaction, with every key's value unchanged:
//! only a commit records its answer with its keys at every replica. Answered from the local
//! replica instead, nothing would stop a copy of the same request, re-sent by the client to
//! another node and parked there behind a lock, from running after a later write made it
//! change something: the client was told "not found", and the update happened anyway
//! (`scenarios/swarm.toml` seed 1: an update answered not-found at 4.91s was applied by a
//! second copy at 4.97s, over a put acknowledged in between).
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
//! it is sent: ids are never reused), and the blocking counters (measurement only). A log
//! with a record whose checksum fails is read on past it, and the node rebuilds from its
//! peers before it takes part again (`rebuild.rs`, with the one loss it cannot survive).
//!
//! # Promises
//!
//! Linearizable single-key ops, and atomic, strictly serializable transactions: a txn's writes
//! apply at every replica or at none, and as every participant holds all its keys, read ones
//! included, locked from its vote until it applies the outcome, the txn takes effect at one
//! instant between its request and its answer (strict two-phase locking). Durable for
//! acknowledged writes, convergent and live after heal (blocked participants unblock once
//! their coordinator is back).
//!
//! Live after heal, precisely: once the cluster is whole, every write commits within
//! `retry_for` of reaching its coordinator, or of the last commit on the key it waits behind,
//! *given* a round of the write (the client's trip, Prepare and Vote over the slowest link,
//! the answer's trip) that fits in the clients' timeout. Where it does not, the writes
//! coordinated at either end of that link time out at every attempt and their retries wait
//! behind their locks: no 2PC answers them in time, and the run says so instead of judging
//! liveness ([`Protocol::liveness_premise`](crate::contract::Protocol::liveness_premise):
//! `not promised here: ...`; `scenarios/raft/vote-amnesia.toml`, a 150-250 ms link and
//! 300 ms client timeouts). Within it:
//!
//! - *Slow links.* Every commit needs every vote before the coordinator's deadline, and a
//!   deadline shorter than a peer's round trip would abort each transaction that needs it
//!   (and, after `retry_for`, refuse the write). The deadline therefore adapts to the round
//!   trips the coordinator measures (`rtt.rs`, RFC 6298's estimator); `vote_timeout` is its
//!   floor. With a fixed 100 ms deadline, `scenarios/swarm.toml`'s drawn 150-250 ms link broke
//!   liveness on 24 of seeds 1..=200.
//! - *Waiting voters.* An older transaction that waits behind a younger one waits for the
//!   younger's whole round (its Prepare, a no vote, its Abort reaching every participant)
//!   before its own vote can come back. So a participant that queues a Prepare tells its
//!   coordinator ([`Message::Waits`]), and a coordinator whose only missing voters are waiting
//!   ones waits `WAIT_VOTES - 1` vote timeouts more ([`WAIT_VOTES`]) before it aborts, and then aborts as for a no
//!   vote, not as for a node down (which would lead to a refusal).
//! - *Contention.* See "Contention goes home": a hot key's writes queue at one coordinator
//!   instead of duelling across all of them, and a write waiting behind a key that commits is
//!   making progress, not running out of time. `scenarios/contention/hot-key.toml` (ten
//!   clients on one key, 1-40 ms links) failed 17 operations and aborted 623 transactions on
//!   seed 1 before; it fails none now.
//!
//! The one thing no deadline covers is load: one key commits one transaction at a time, each
//! holding the key about two round trips at every replica, so clients that keep more writes
//! of one key in flight than their timeout divided by that time out in the queue they made.
//! Not available under any partition or while any node is down: every write needs every
//! replica's vote, so writes abort (or, at a blocked participant, wait) until the cluster is
//! whole again.
//!
//! # Contention goes home
//!
//! Any node coordinates the writes that reach it, and two coordinators that write one key at
//! once conflict at every replica: wait-die aborts the younger, whose coordinator retries after
//! a back-off, and under a hot key most rounds end that way (a duel that only the back-off's
//! luck resolves). A write whose transaction was voted down (a conflict, not a node missing)
//! is therefore handed, with its rank, to its key's *home* ([`Message::Forward`]): the node the
//! smallest key it writes maps to (`key mod n`), which coordinates it from then on and retries
//! it there. The writes of a hot key thus meet at one node, where they queue behind its local
//! lock in rank order and commit one after another without a vote ever going against them: the
//! primary-copy locking of distributed databases (Bernstein, Hadzilacos & Goodman, 1987,
//! section 8.4), applied only under contention, so that an uncontended write still commits
//! from wherever it arrived, in one round. A forwarded write lost with its home (crash,
//! partition) is what the client's timeout and retry are for.
//!
//! A write parked behind a key's lock counts `retry_for` from when it was parked, or from the
//! key's last commit (`Waiting::patience`): a queue that commits is served in turn, however
//! long; a lock that does not move, or moves only between transactions that abort, is what
//! `retry_for` bounds.

mod client;
mod coordinator;
mod durable;
mod invariants;
mod locks;
mod messages;
mod participant;
mod rebuild;
mod recovery;
mod rtt;
#[cfg(test)]
mod tests;

pub use durable::{BlockingStats, Decision, Entry, Prepared, TwoPcDurable, TwoPcRecord};
use crate::Replay;
use crate::tracked::{Compaction, Shadow, Tracked, Watched};
pub use messages::{Message, Timer, TxnId, Write};

use crate::contract::{
    Context, Counter, NodeConfig, Operator, Promise, Protocol, ProtocolInfo, Read, Request,
};
use crate::digest::StableHasher;
use crate::ids::{ClientId, NodeId, RequestId};
use crate::kv::{Key, OpResult, Value};
use crate::{BugSet, ParamSet};
use crate::time::{Span, Time};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// How many learned outcomes a node remembers, to answer cooperative termination queries and
/// to vote down a late Prepare of a transaction it knows aborted. Older ones are forgotten:
/// the coordinator still answers for them.
pub const LEARNED_MAX: usize = 4_096;

/// How many vote timeouts a coordinator waits for votes when every missing voter said its
/// Prepare waits for a younger transaction ([`Message::Waits`]), and a participant keeps such
/// a Prepare queued: the younger one's round (its Prepare, a no vote, its Abort reaching the
/// participant) and then the vote's way back take about three round trips.
pub const WAIT_VOTES: u64 = 3;

crate::protocol_params! {
    /// twopc's parameters, as a scenario's `[cluster.params.twopc]` sets them.
    pub(crate) struct Params {
        vote_timeout: Span = "100ms",
            "a coordinator missing votes this long after Prepare aborts";
        resend: Span = "10ms",
            "period of re-sending Prepare to non-voters and decisions to non-ackers, \
                      and of in-doubt participants' outcome queries";
        retry_for: Span = "400ms",
            "how long a node retries an aborted write (or keeps a request waiting for \
                      a lock) before it refuses the request";
        cooperative_termination: bool = "false",
            "in-doubt participants also ask the other participants for the outcome";
    }
}

crate::planted_bugs! {
    /// twopc's planted bugs.
    pub(crate) struct Bugs {
        commit_without_all_votes = "commit-without-all-votes",
            "the coordinator commits once a majority (itself included) voted yes";
        vote_not_persisted = "vote-not-persisted",
            "a participant does not persist its prepared record: a crash forgets its \
                      yes vote and its lock, and the commit is never applied there";
        release_lock_before_decision = "release-lock-before-decision",
            "a participant releases its lock when it votes yes, so it serves reads \
                      and prepares other writes before it learns the outcome";
        coordinator_forgets_decision = "coordinator-forgets-decision",
            "the coordinator does not log its decision: restarted, it presumes abort \
                      for a transaction it committed";
        no_checksum = "no-checksum",
            "recovery reads the log without checking records' checksums: a corrupt record \
                      is applied as garbage values";
        ack_before_sync = "ack-before-sync",
            "a participant votes yes before its prepared record is synced (it syncs \
                      with its next write): a crash that loses unsynced writes forgets the \
                      vote";
        lock_only_written_keys = "lock-only-written-keys",
            "a transaction's keys it only reads are left out of its writes, so no \
                      participant locks or version-checks them: concurrent transactions can \
                      write-skew";
    }
}

/// The planted bugs switched on, read once at start.
/// A client request this node holds: waiting for a lock, or for a retry.
#[derive(Clone, Debug)]
struct Waiting {
    request: Request,
    /// When the request first reached a coordinator (on its clock): its rank in wait-die.
    since: Time,
    /// When `retry_for` started counting (on this node's clock): when the request reached
    /// this node, or when a transaction last committed on the key it waits behind
    /// (contention that makes progress is not a node down or cut off: the queue is served
    /// in turn; a lock that only passes between transactions that abort counts no progress).
    patience: Time,
    /// The version of the key it was parked behind, when it was parked.
    parked_version: u64,
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
    /// Participants that said the Prepare waits there for a younger transaction.
    waits_at: BTreeSet<NodeId>,
    /// Whether the vote deadline was already extended for them.
    extended: bool,
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

crate::roles! {
    /// A node's role at this moment: every node coordinates the transactions it receives
    /// and takes part in others', so roles come and go with transactions (Gray and Lamport,
    /// "Consensus on Transaction Commit", section 2).
    pub enum Role {
        /// Coordinating at least one transaction still undecided.
        Coordinator = "coordinator";
        /// Holding a prepared transaction whose decision it has not learned: blocked until it does.
        InDoubt = "in-doubt";
        /// Neither: it only answers other coordinators' prepares.
        Participant = "participant";
    }
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
    entries: Tracked<Key, Entry>,
    prepared: Tracked<TxnId, Prepared>,
    decisions: Tracked<TxnId, Decision>,
    next_txn: u64,
    /// Per client, the sequence number of the newest write request this node refused: it
    /// votes no on every transaction writing for that request or an older one of the client.
    refused: Tracked<ClientId, u64>,
    stats: BlockingStats,
    /// When the next record is a snapshot.
    compaction: Compaction,
    /// Recovered from a log with a corrupt record and not yet rebuilt (see
    /// [`TwoPcDurable::damaged`]).
    damaged: bool,
    /// What the rebuild from the peers has gathered, while it runs (`rebuild.rs`).
    rebuild: Option<rebuild::Rebuilding>,
    /// Transactions a rebuild adopted (held prepared by a peer, perhaps voted yes here and
    /// forgotten), with their writes: a commit applies only what the replica lacks.
    adopted: BTreeMap<TxnId, Vec<Write>>,
    /// See [`TwoPcDurable::outcomes_lost_below`].
    outcomes_lost_below: u64,
    /// See [`TwoPcDurable::ambiguous`].
    ambiguous: BTreeSet<TxnId>,
    /// The log's fold, checked in debug builds.
    shadow: Shadow<TwoPcDurable>,
    /// Which transaction holds each locked key.
    locks: Watched<BTreeMap<Key, TxnId>>,
    active: Watched<BTreeMap<TxnId, Active>>,
    /// The peers' round trips, which stretch the vote deadline past `vote_timeout`
    /// (`rtt.rs`).
    round_trips: rtt::RoundTrips,
    /// Own transactions whose decision a damaged log lost while peers hold them prepared
    /// (`rebuild.rs`): they block for good ([`Protocol::liveness_forfeit`]).
    lost_outcomes: BTreeSet<TxnId>,
    /// Prepares of older transactions waiting for a lock held by a younger one.
    queued: Watched<BTreeMap<TxnId, Queued>>,
    /// The generations of `prepared`, `locks`, `active` and `queued` when the invariants
    /// over them last held: unchanged, they hold still ([`TwoPc::check_node`]).
    judged: std::cell::Cell<Option<[u64; 4]>>,
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

    /// Every node but this one.
    fn peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        let me = self.me;
        self.nodes.iter().copied().filter(move |n| *n != me)
    }
}

impl Protocol for TwoPc {
    type Message = Message;
    type Timer = Timer;
    type Durable = TwoPcDurable;
    type Record = TwoPcRecord;
    type Role = Role;

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
            params: Params::SPECS,
            bugs: Bugs::SPECS,
            roles: <Role as crate::RoleKind>::SPECS,
            transactions: true,
            contexts: false,
            operators: &["stop-after-prepare", "stop-after-decision"],
            membership: false,
            check_params,
        }
    }

    /// Every commit needs every node's vote, and the client's answer waits for the commit:
    /// a write's round is the request's trip, a Prepare and a Vote across its coordinator's
    /// slowest link, and the answer's trip. Where that round takes longer on average than
    /// the client's timeout, the writes coordinated at either end of that link time out at
    /// every attempt, and the retries elsewhere wait behind their locks: no 2PC answers
    /// them in time (`scenarios/raft/vote-amnesia.toml`: a 150-250 ms link, 300 ms timeouts).
    /// A decision its damaged log lost while every participant holds the transaction
    /// prepared and none applied it: they block for good (module doc, "What survives a
    /// crash"; `rebuild.rs`).
    fn liveness_forfeit(&self) -> Option<String> {
        let txn = self.lost_outcomes.first()?;
        Some(format!(
            "lost the decision of {txn} with its damaged log while every participant holds it \
             prepared and none applied it: they block for good (Gray & Lamport section 2)"
        ))
    }

    fn liveness_premise(_: &crate::params::Params, t: &crate::contract::Timing) -> Result<(), String> {
        let round = 2 * (t.client_link.as_micros() + t.slowest_link.as_micros());
        if round < t.client_timeout.as_micros() {
            return Ok(());
        }
        Err(format!(
            "a write's round over the slowest link (client trip, Prepare, Vote, answer: {} \
             on average) does not fit in the clients' timeout ({}); 2PC needs every vote",
            crate::time::format_micros(round),
            crate::time::format_micros(t.client_timeout.as_micros()),
        ))
    }

    /// A record whose checksum fails ends the recovery: the node keeps the state of its
    /// last intact record (an earlier sync) and is damaged, refusing to vote yes or answer
    /// from what it may have lost. With `no-checksum` it applies the garbage instead.
    fn recover(
        durable: &mut Option<TwoPcDurable>,
        record: Read<'_, TwoPcRecord>,
        config: &NodeConfig,
    ) -> bool {
        match record {
            Read::Intact(r) => {
                r.replay(durable);
                if let Some(d) = durable.as_mut().filter(|d| d.damaged) {
                    r.settle_ambiguous(d);
                }
            }
            Read::Corrupt { written, flip } | Read::Torn { written, flip }
                if Bugs::from_config(config).no_checksum =>
            {
                written.garbled(flip).replay(durable)
            }
            Read::Misplaced { written } if Bugs::from_config(config).no_checksum => {
                written.replay(durable)
            }
            // The last record, never synced: no vote, decision or answer rests on it.
            Read::Torn { .. } => return false,
            Read::Corrupt { .. } | Read::Misplaced { .. } => {
                // Read on past it: later records are intact, and each says what it changed.
                // What only the lost record changed, the rebuild brings back from the peers;
                // an own transaction prepared before it and not decided after it may have
                // been decided in it.
                let d = durable.get_or_insert_with(TwoPcDurable::default);
                d.damaged = true;
                let me = config.id;
                let undecided = (d.prepared.keys())
                    .filter(|t| t.coordinator == me && !d.decisions.contains_key(t));
                let undecided: Vec<TxnId> = undecided.copied().collect();
                d.ambiguous.extend(undecided);
            }
        }
        true
    }

    fn start(
        ctx: &mut Context<'_, Self>,
        config: &NodeConfig,
        durable: Option<&TwoPcDurable>,
    ) -> Self {
        let shadow = Shadow::new(durable);
        let d = durable.cloned().unwrap_or_default();
        let params = Params::from_params(&config.params);
        let mut locks = BTreeMap::new();
        for (txn, prepared) in &d.prepared {
            for w in &prepared.writes {
                locks.insert(w.key, *txn);
            }
        }
        let mut node = TwoPc {
            me: config.id,
            nodes: config.nodes.clone(),
            vote_timeout: params.vote_timeout,
            // A zero period would re-fire at the same instant forever.
            resend: Span(params.resend.as_micros().max(1)),
            retry_for: params.retry_for,
            cooperative_termination: params.cooperative_termination,
            bugs: Bugs::from_config(config),
            entries: Tracked::new(d.entries),
            prepared: Tracked::new(d.prepared),
            decisions: Tracked::new(d.decisions),
            next_txn: d.next_txn,
            refused: Tracked::new(d.refused),
            stats: d.stats,
            compaction: Compaction::default(),
            damaged: d.damaged,
            rebuild: None,
            adopted: BTreeMap::new(),
            outcomes_lost_below: d.outcomes_lost_below,
            ambiguous: d.ambiguous.clone(),
            shadow,
            locks: Watched::new(locks),
            active: Watched::default(),
            round_trips: rtt::RoundTrips::default(),
            lost_outcomes: BTreeSet::new(),
            queued: Watched::default(),
            judged: std::cell::Cell::new(None),
            parked: BTreeMap::new(),
            retrying: BTreeMap::new(),
            learned: BTreeMap::new(),
            learned_order: VecDeque::new(),
            stop_after_prepare: false,
            stop_after_decision: false,
        };
        if node.damaged {
            // Read past a lost record, a transaction it resolved may still look prepared
            // beside a later one of the same key: keep only those that hold every lock (the
            // rebuild adopts again what a peer still holds).
            node.drop_conflicting_prepared();
            // Presumed abort is no answer for what the lost records may have decided.
            node.begin_rebuild(ctx);
        } else {
            node.abort_undecided(ctx);
        }
        ctx.set_timer(Timer::Tick, node.resend);
        node
    }

    fn on_message(&mut self, ctx: &mut Context<'_, Self>, from: NodeId, msg: Message) {
        if !self.nodes.contains(&from) || from == self.me {
            ctx.note(|| format!("ignored a message from {from}, not a peer"));
            return;
        }
        if self.rebuild.is_some() {
            // Its log lost records it cannot name: it takes part in nothing until rebuilt.
            return self.on_message_rebuilding(ctx, from, msg);
        }
        match msg {
            Message::Prepare {
                txn,
                started,
                writes,
            } => self.on_prepare(ctx, from, txn, started, writes),
            Message::Vote { txn, yes } => self.on_vote(ctx, from, txn, yes),
            Message::Waits { txn } => {
                self.round_trips.answered(txn, from, ctx.now());
                if let Some(active) = self.active.get_mut().get_mut(&txn) {
                    active.waits_at.insert(from);
                }
            }
            Message::Commit { txn } => self.on_decision(ctx, from, txn, true),
            Message::Abort { txn } => self.on_decision(ctx, from, txn, false),
            Message::Ack { txn } => self.on_ack(from, txn),
            Message::QueryOutcome { txn } => self.on_query(ctx, from, txn),
            Message::Forward { request, since } => self.on_forward(ctx, request, since),
            Message::Rebuild => ctx.send(from, self.rebuild_state(from)),
            Message::RebuildState { .. } => ctx.note(|| format!("a late state of {from}")),
        }
    }

    fn on_timer(&mut self, ctx: &mut Context<'_, Self>, timer: Timer) {
        if self.rebuild.is_some() {
            if timer == Timer::Tick {
                self.maybe_ask_rebuild(ctx);
                ctx.set_timer(Timer::Tick, self.resend);
            }
            return;
        }
        match timer {
            Timer::Tick => self.on_tick(ctx),
            Timer::Votes(txn) => {
                let nodes = &self.nodes;
                if let Some(active) = self.active.get_mut().get_mut(&txn) {
                    // Missing votes from nodes that all said they wait for a younger
                    // transaction: contention, not a node down or cut off.
                    let waits = nodes
                        .iter()
                        .filter(|n| !active.yes.contains(n))
                        .all(|n| active.waits_at.contains(n));
                    if waits && !active.extended {
                        active.extended = true;
                        let more = Span(self.vote_timeout.as_micros() * (WAIT_VOTES - 1));
                        ctx.note(|| format!("{txn}: votes wait for younger transactions"));
                        ctx.set_timer(Timer::Votes(txn), more);
                        return;
                    }
                    active.waiting.votes_missed = !waits;
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
        if self.rebuild.is_some() {
            // A read changes nothing: refused. A write may be the retry of a copy that
            // commits elsewhere, so "unavailable" could be a lie: silent.
            if request.op.is_write() {
                ctx.note(|| format!("{}: rebuilding; silent", request.id));
            } else {
                ctx.reply(request.id, OpResult::Unavailable { hint: None });
            }
            return;
        }
        let waiting = Waiting {
            request,
            since: ctx.now(),
            patience: ctx.now(),
            parked_version: 0,
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

    fn role(&self) -> Role {
        if !self.active.is_empty() {
            Role::Coordinator
        } else if !self.prepared.is_empty() {
            Role::InDoubt
        } else {
            Role::Participant
        }
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
        self.check_node()
    }
}

/// twopc's own check of its parameters ([`crate::params::ParamCheck`]): its timers can
/// fire.
fn check_params(
    params: &crate::params::Params,
    _: crate::params::ParamContext<'_>,
) -> Result<(), crate::params::ParamProblem> {
    crate::params::timers_at_least_min(params, &["vote_timeout", "resend", "retry_for"])
}
