//! Raft (Ongaro & Ousterhout, "In Search of an Understandable Consensus Algorithm", and
//! Ongaro's thesis), with a replicated key-value store on top: the seed's cruise library and
//! its toy store, made linearizable.
//!
//! # The algorithm (paper section 5)
//!
//! Nodes are followers, (pre-)candidates or leaders. A follower that hears nothing from a
//! leader for an election timeout, drawn by the engine from the `election_timeout` range,
//! becomes a candidate: it bumps its term, votes for itself and asks for votes with
//! [`Message::RequestVote`]. A node grants at most one vote per term, and only to a candidate
//! whose log is at least as up to date as its own (section 5.4.1). A candidate with votes from
//! a majority of the voters becomes leader, appends a no-op entry of its term and replicates
//! its log with [`Message::AppendEntries`]: batches of up to `max_batch` entries, one batch in
//! flight per follower, each checked against the follower's log at the entry before it; a
//! follower that disagrees answers with the conflicting term and its first index, so that the
//! leader skips a whole term per round trip (fast backtracking). The leader commits an index
//! once a majority holds it *and* it is of the leader's own term (section 5.4.2, Figure 8);
//! earlier entries commit with it. Every `heartbeat` the leader sends [`Message::Heartbeat`]
//! (the commit index the follower is known to match, and a round number for reads).
//!
//! With `pre_vote` (thesis 9.6, on by default) a node whose election timeout fires first asks
//! whether it could win, without bumping its term: a peer grants a pre-vote only to an
//! up-to-date log, and only if it has not heard a leader within the minimum election timeout
//! itself (a leader always refuses). So a node cut off, restarted, or behind a slow link does
//! not depose a working leader with a higher term; once the leader is really gone, the
//! pre-vote wins and the election goes on as in section 5.2. With
//! `check_quorum` a leader that has not heard a majority for an election timeout steps down,
//! and nodes that heard from a leader within the minimum election timeout neither grant votes
//! nor adopt the term of a RequestVote (thesis 4.2.3, which also keeps removed servers from
//! disrupting the cluster).
//!
//! # What must be durable first
//!
//! [`RaftDurable`]: the current term, the vote and the log (with its snapshot). Every change
//! to them marks the node dirty, and the node persists *before* the next message or reply
//! leaves (`send` and `reply` flush first) and at the end of every handler: a vote, an
//! acknowledgement of appended entries or a leader's count of its own log never refers to
//! state a crash could lose (the etcd raft rule).
//!
//! # What it promises
//!
//! Linearizable operations (a txn is one log entry, so strictly serializable), liveness once
//! a majority can talk again, and, from sections 5.3-5.4, durable acknowledged writes and
//! convergence: a write is acknowledged only once committed, so on a majority's logs, and
//! every later leader holds it (leader completeness); every state machine applies the same
//! committed log in the same order, and a follower learns the commit index from the
//! leader's heartbeats, so once the cluster is whole and quiet every replica's store is the
//! same. A follower far behind catches up one batch per round trip: a scenario that limits
//! batches (`max_batch = 1`) gives it a settle phase long enough to do so.
//!
//! # The store (thesis 6.3, 6.4)
//!
//! Every client operation is a log entry, applied in log order with [`crate::kv::apply`]
//! by [`state_machine::StateMachine`], which keeps a session per client so that a request
//! retried with the same id is applied once. A node that is not the leader proxies a
//! request, read or write, to the leader it knows of, which answers the client (a client
//! pinned to one node, as `contention/hot-key.toml`'s are, is served too). A proxied request
//! can be lost on the way (a dropped message, a leader that crashed holding it): the leader
//! lists in its next heartbeat to that follower the proxied requests it has answered, and the
//! follower sends again any not listed after a minimum election timeout, for up to
//! `PROXY_FOR` maximum election timeouts (`client.rs`; with proxies sent once,
//! `flaky-network.toml` seeds 1 and 3 broke liveness). Knowing no
//! leader, it answers a read with [`OpResult::NotLeader`] and says nothing to a write: a
//! write is never refused, because the client may be retrying one that timed out after it
//! reached some log. A leader that loses its leadership
//! with client commands still uncommitted does not answer them: they may yet commit, and
//! the client records them as indeterminate. Reads go through the log unless `read_index`
//! is on (the default): the leader then records its commit index, confirms it is still
//! leader with a round of heartbeats acknowledged by a majority, and serves the read once it
//! has applied that index. With `lease_reads` a leader serves reads locally while it holds a
//! lease: a minimum election timeout from the send of the latest heartbeat round a majority
//! acknowledged, shortened by `lease_drift_bound_ppm` for clocks that run at different rates
//! (thesis 6.4.1). Leases are only as safe as that bound: clocks that drift further apart
//! let a deposed leader serve stale reads.
//!
//! # Membership (thesis section 4)
//!
//! Every node the engine boots receives the log, but only the *voters* of the latest
//! membership entry (committed or not) vote, campaign and count in majorities; the others are
//! learners. `initial_voters` makes the first n1..nK voters. An operator's `add-server` (sent
//! to any node, forwarded to the leader it knows) waits until the new server has caught up
//! with the commit index, then appends a membership with it; `remove-server` appends one
//! without it. One change at a time: a new one is refused while the last is uncommitted. A
//! leader that removed itself steps down once the change commits.
//!
//! # Log compaction (paper section 7)
//!
//! When the log holds more than `snapshot_threshold` entries past its snapshot, a node
//! snapshots its state machine at its applied index (store, sessions and membership) and
//! drops the entries it covers; the snapshot is part of the durable log. A follower that
//! needs entries the leader no longer holds receives [`Message::InstallSnapshot`].
//!
//! # Promises
//!
//! Linearizable (transactions strictly serializable) with any parameters. Live after heal
//! with `pre_vote` on: once the cluster is whole and a majority of voters hear each other,
//! a leader is elected and stays. `pre_vote = false` gives that promise up (the run then only
//! measures liveness, see [`Protocol::promises`]): a node whose link to the leader is slower
//! than its election timeout campaigns again and again, and each higher term deposes the
//! leader (scenarios/raft/vote-amnesia.toml seed 11 lost a read that way; swarm.toml's slow
//! link seeds 13, 26, 34, 46). `figure8.toml` and `reelection.toml` switch Pre-Vote off on
//! purpose: their planted bugs need disruptive elections.
//!
//! # Checked invariants
//!
//! Per node ([`Protocol::check_invariants`]): the commit index never decreases and never
//! passes the log; everything committed is applied; no committed entry is ever truncated;
//! log terms never pass the current term. Across nodes ([`Protocol::check_cluster`]): at
//! most one leader per term (each node's durable record of the terms it led), log matching,
//! leader completeness and state machine safety, each by comparing chain hashes at one index
//! per pair of nodes; commit safety (no running node that lacks the highest committed entry
//! could be elected by the running voters, section 5.4.2), which sees an unsafe commit the
//! moment it happens rather than when a later leader overwrites it; and lease safety (while a
//! leader would serve reads from its lease, nobody leads a later term and no majority of its
//! voters would elect another leader, each judged on its own monotonic clock, thesis 6.4.1).

pub mod log;
pub mod snapshot;
pub mod state_machine;

mod client;
mod election;
mod invariants;
mod replication;
#[cfg(test)]
mod tests;

use crate::Replay;
use crate::contract::Read;
use crate::contract::{
    Membership,
    Context, Counter, NodeConfig, Operator, Promise, Protocol, ProtocolInfo, Request,
};
use crate::ids::{NodeId, RequestId};
use crate::kv::{Key, Op, OpResult, Value};
use crate::{BugSet, ParamSet};
use crate::time::{Span, SpanRange, Time};
use crate::tracked::{Compaction, Shadow};
use log::{Command, Entries, Log, LogEntry};
use serde::Serialize;
use snapshot::{SharedSnapshot, Snapshot};
use state_machine::{Applied, StateMachine};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;

crate::protocol_params! {
    /// Raft's parameters, as a scenario's `[cluster.params.raft]` sets them.
    pub(crate) struct Params {
        election_timeout: SpanRange = "150ms..300ms",
            "range the engine draws each election timeout from (section 5.2)";
        heartbeat: Span = "50ms",
            "interval between a leader's heartbeats (and retries of lost batches)";
        pre_vote: bool = "true",
            "ask for pre-votes before bumping the term, refused by nodes that heard a \
                      leader within the minimum election timeout (thesis 9.6); false lets a \
                      node that missed heartbeats depose a working leader";
        check_quorum: bool = "false",
            "a leader not heard by a majority for an election timeout steps down; \
                      nodes that heard a leader recently ignore RequestVote (thesis 4.2.3)";
        read_index: bool = "true",
            "serve reads by ReadIndex (thesis 6.4); false sends reads through the log";
        lease_reads: bool = "false",
            "a leader serves reads locally while its lease holds (thesis 6.4.1)";
        lease_drift_bound_ppm: u64 = "10000",
            "the clock drift a lease allows for, in parts per million";
        max_batch: u64 = "64",
            "most entries per AppendEntries";
        snapshot_threshold: u64 = "1000",
            "entries past the snapshot that make a node snapshot (section 7)";
        initial_voters: u64 = "0",
            "n1..nK start as voters, the rest as learners; 0 means every node";
    }
}

crate::planted_bugs! {
    /// Raft's planted bugs.
    pub(crate) struct Bugs {
        no_checksum = "no-checksum",
            "recovery reads the log without checking records' checksums: a corrupt record's \
                      entries are applied with garbage values";
        vote_without_log_check = "vote-without-log-check",
            "votes are granted without the up-to-date-log check (section 5.4.1)";
        commit_previous_term = "commit-previous-term",
            "a leader commits entries of earlier terms by counting replicas \
                      (the Figure 8 bug, section 5.4.2)";
        vote_not_persisted = "vote-not-persisted",
            "a vote for another node is not persisted: after a restart the node \
                      votes again in the same term";
        accept_stale_term = "accept-stale-term",
            "followers accept AppendEntries from leaders of older terms";
        lease_without_drift_bound = "lease-without-drift-bound",
            "a leader's lease is a full minimum election timeout, with no margin for \
                      clock drift";
        apply_retries_twice = "apply-retries-twice",
            "no client sessions: a retried request is applied again";
        overlapping_changes = "overlapping-changes",
            "a leader starts a membership change before the previous one committed (thesis \
                      4.1 allows one at a time): two configurations in flight may have \
                      disjoint majorities";
        ack_before_sync = "ack-before-sync",
            "messages and answers leave before the log and vote they depend on are synced \
                      (only at the handler's end): a follower acknowledges entries, and a \
                      node grants a vote, that a crash may still take back (section 5.1's \
                      'updated on stable storage before responding to RPCs')";
    }
}

/// What Raft nodes send each other. Every message carries the sender's term.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Message {
    /// A candidate (or, with `pre_vote`, a pre-candidate) asks for a vote.
    RequestVote {
        /// The candidate's term (for a pre-vote: the term it would campaign in).
        term: u64,
        /// Index of its last log entry.
        last_log_index: u64,
        /// Term of its last log entry.
        last_log_term: u64,
        /// Whether this is a pre-vote, which changes nobody's state.
        pre_vote: bool,
    },
    /// The answer to a RequestVote.
    RequestVoteResponse {
        /// The voter's term (for a granted pre-vote: the term asked about).
        term: u64,
        /// Whether the vote was granted.
        granted: bool,
        /// Whether it answers a pre-vote.
        pre_vote: bool,
    },
    /// Entries to append after `prev_log_index` (section 5.3).
    AppendEntries {
        /// The leader's term.
        term: u64,
        /// The index of the entry before the batch.
        prev_log_index: u64,
        /// Its term.
        prev_log_term: u64,
        /// The batch (maybe empty).
        entries: Entries,
        /// The leader's commit index.
        leader_commit: u64,
    },
    /// The answer to AppendEntries or InstallSnapshot.
    AppendEntriesResponse {
        /// The follower's term.
        term: u64,
        /// Whether the log matched at the batch's previous entry.
        success: bool,
        /// On success the last index known to match the leader's log; on failure the
        /// `prev_log_index` that did not match.
        index: u64,
        /// On failure, the term the follower holds at `index`, if it holds the index.
        conflict_term: Option<u64>,
        /// On failure, the first index of `conflict_term` in the follower's log, or one past
        /// its last entry when it is too short.
        conflict_index: u64,
    },
    /// The leader is alive; `commit` is its commit index capped at what this follower is
    /// known to match; `round` numbers it for ReadIndex and leases.
    Heartbeat {
        /// The leader's term.
        term: u64,
        /// The commit index the follower may adopt.
        commit: u64,
        /// The heartbeat round.
        round: u64,
        /// Requests this follower proxied that the leader has answered since its last
        /// heartbeat to it: the follower stops re-sending them (`client.rs`).
        answered: Vec<RequestId>,
    },
    /// The answer to a Heartbeat.
    HeartbeatResponse {
        /// The follower's term.
        term: u64,
        /// The round answered.
        round: u64,
        /// Whether the follower took the heartbeat as its leader's: a refusal of a stale
        /// term's heartbeat (held by a pause or a slow link) carries the refuser's term,
        /// which may be the leader's own, and a round of that older leadership, so it must
        /// not count as acknowledging this leadership's round of that number.
        success: bool,
    },
    /// The leader's snapshot, for a follower that needs entries it compacted away.
    InstallSnapshot {
        /// The leader's term.
        term: u64,
        /// The snapshot.
        snapshot: SharedSnapshot,
    },
    /// A client's request, proxied by a follower to the leader, which answers the client.
    ClientRequest {
        /// The request's id.
        id: RequestId,
        /// The operation.
        op: Op,
    },
    /// An operator's membership command, forwarded to the leader.
    Forward {
        /// The command.
        command: Operator,
    },
}

/// The timers a Raft node arms.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Timer {
    /// A follower's or candidate's election timeout.
    Election,
    /// A leader's heartbeat.
    Heartbeat,
}

/// What survives a crash: persisted before any message or reply that depends on it
/// (module doc, "What must be durable first").
#[derive(Clone, Debug, PartialEq)]
pub struct RaftDurable {
    /// The latest term this node has seen.
    pub current_term: u64,
    /// Whom it voted for in that term.
    pub voted_for: Option<NodeId>,
    /// Its log, snapshot included.
    pub log: Log,
    /// Every term this node led, ascending: not read by the protocol, it is the witness
    /// election safety is checked against, and must outlive crashes to be one.
    pub led_terms: Rc<Vec<u64>>,
}

/// One record of a node's log on its disk (see the contract's "Storage"): the term, vote and
/// log entries changed since the last record, or the whole durable state (after the log was
/// compacted, and now and then to keep the disk's log short). Entries are shared with the
/// live log, so a record costs O(entries appended).
#[derive(Clone, Debug, PartialEq)]
pub enum RaftRecord {
    /// The whole durable state: recovery starts over from it.
    Snapshot(RaftDurable),
    /// What changed.
    Changes {
        /// The current term.
        current_term: u64,
        /// The vote in it.
        voted_for: Option<NodeId>,
        /// The terms led (shared).
        led_terms: Rc<Vec<u64>>,
        /// The first index `entries` replace the log from.
        from: u64,
        /// The entries from `from` on.
        entries: Vec<Rc<LogEntry>>,
    },
}

impl RaftRecord {
    /// The record as a read that skips the checksum sees it after `flip` damaged it: the
    /// values its entries write are garbage (the `no-checksum` planted bug).
    fn garbled(&self, flip: u64) -> RaftRecord {
        let mut record = self.clone();
        if let RaftRecord::Changes { entries, .. } = &mut record {
            for e in entries.iter_mut() {
                let mut entry = LogEntry::clone(e);
                if let Command::Client { op, .. } = &mut entry.command {
                    garble(op, flip);
                }
                *e = Rc::new(entry);
            }
        }
        record
    }
}

impl Replay<RaftDurable> for RaftRecord {
    /// Folds this record into the state recovered so far.
    fn replay(&self, durable: &mut Option<RaftDurable>) {
        match self {
            RaftRecord::Snapshot(d) => *durable = Some(d.clone()),
            RaftRecord::Changes {
                current_term,
                voted_for,
                led_terms,
                from,
                entries,
            } => {
                let d = durable
                    .as_mut()
                    .expect("a node's first record is a snapshot");
                d.current_term = *current_term;
                d.voted_for = *voted_for;
                d.led_terms = Rc::clone(led_terms);
                d.log.replay(*from, entries);
            }
        }
    }
}

/// Replaces the values `op` writes by garbage.
fn garble(op: &mut Op, flip: u64) {
    let junk = crate::kv::Value::from(format!("garbled-{flip:x}"));
    match op {
        Op::Put { value, .. } | Op::Update { value, .. } | Op::Append { value, .. } => {
            value.clone_from(&junk)
        }
        Op::Cas { new, .. } => new.clone_from(&junk),
        Op::Txn { ops } => ops.iter_mut().for_each(|o| garble(o, flip)),
        _ => {}
    }
}

crate::roles! {
    /// A node's role (section 5.1).
    pub enum Role {
        /// Answers leaders and candidates.
        Follower = "follower";
        /// Asks for pre-votes, its term unchanged (thesis 9.6).
        PreCandidate = "pre-candidate";
        /// Asks for votes in its term.
        Candidate = "candidate";
        /// Replicates its log.
        Leader = "leader", leads;
    }
}

/// Parameters, resolved once at start.
#[derive(Clone, Debug)]
struct Settings {
    election_timeout: SpanRange,
    heartbeat: Span,
    pre_vote: bool,
    check_quorum: bool,
    read_index: bool,
    lease_reads: bool,
    /// The lease a majority's acknowledgement buys, on the leader's clock.
    lease: Span,
    max_batch: u64,
    snapshot_threshold: u64,
    initial_voters: Vec<NodeId>,
}

/// The leader's view of one other node (section 5.3's nextIndex and matchIndex).
#[derive(Clone, Debug)]
struct Progress {
    next: u64,
    matched: u64,
    /// The last index of the batch (or snapshot) on its way, if one is: cleared by an answer
    /// covering it, or by the next heartbeat (which resends a lost batch). An answer to an
    /// older batch must not clear it, or every duplicate answer would start one more
    /// pipeline of batches to the same follower.
    inflight: Option<u64>,
    /// The latest heartbeat round it answered.
    acked_round: u64,
}

/// A read waiting for its ReadIndex to be confirmed and applied (thesis 6.4).
#[derive(Clone, Debug)]
struct PendingRead {
    round: u64,
    read_index: u64,
    id: RequestId,
    op: Op,
}

/// What only a leader keeps; dropped when it steps down.
#[derive(Clone, Debug)]
struct LeaderState {
    progress: BTreeMap<NodeId, Progress>,
    /// The index of this term's no-op: reads wait until it commits.
    term_start: u64,
    /// Client commands appended in this term and not yet answered, by index.
    pending: BTreeMap<u64, RequestId>,
    pending_ids: BTreeMap<RequestId, u64>,
    reads: VecDeque<PendingRead>,
    /// The latest heartbeat round sent, and when each unconfirmed one left.
    round: u64,
    rounds_sent_at: VecDeque<(u64, Time)>,
    /// The latest round a majority of voters acknowledged, and when it was sent.
    quorum_round: u64,
    quorum_round_at: Time,
    /// Lease reads are served until then (this node's clock).
    lease_until: Option<Time>,
    /// A server being caught up before it is added (thesis 4.2.1).
    catching_up: Option<NodeId>,
    /// Requests proxied here and not yet answered, with the follower that proxied each.
    proxied: BTreeMap<RequestId, NodeId>,
    /// Per follower, the proxied requests answered since its last heartbeat.
    answered: BTreeMap<NodeId, Vec<RequestId>>,
}

/// A request this node proxied to the leader and has not heard answered.
#[derive(Clone, Debug)]
struct Proxy {
    op: Op,
    /// When it was first proxied, and last sent (this node's monotonic clock).
    first: Time,
    last: Time,
}

/// One Raft node with its key-value store.
///
/// # Driving contract
///
/// As [`Protocol`] says. `start` restores the durable term, vote and log, rebuilds the store
/// from the snapshot (committed entries past it are applied again as the commit index
/// is relearned) and arms [`Timer::Election`]. Leaders arm [`Timer::Heartbeat`] instead.
/// Every persist precedes the sends and replies of the same handler that depend on it.
#[derive(Debug)]
pub struct Raft {
    me: NodeId,
    nodes: Vec<NodeId>,
    settings: Settings,
    bugs: Bugs,
    // Persistent state (RaftDurable).
    current_term: u64,
    voted_for: Option<NodeId>,
    log: Log,
    led_terms: Rc<Vec<u64>>,
    /// Persistent state changed since the last persist.
    dirty: bool,
    /// When the next record is a snapshot.
    compaction: Compaction,
    /// The log's fold, checked in debug builds.
    shadow: Shadow<RaftDurable>,
    // Volatile state.
    role: Role,
    leader_hint: Option<NodeId>,
    commit_index: u64,
    /// The greatest commit index of this incarnation: the commit index must equal it.
    commit_high_water: u64,
    /// The term of the leader that last advanced the commit index (leader completeness).
    commit_learned_term: u64,
    sm: StateMachine,
    votes: BTreeSet<NodeId>,
    /// When this node last heard a leader of its term (or, as leader, confirmed itself).
    last_heard_leader: Option<Time>,
    /// When the election timer was last armed, and when it was last meant to restart.
    election_armed_at: Time,
    election_reset_at: Time,
    leader: Option<Box<LeaderState>>,
    /// Requests this node proxied to a leader, until it hears them answered (`client.rs`).
    proxies: BTreeMap<RequestId, Proxy>,
    /// Membership changes the engine announced (`client.rs`): nodes to add as voters and
    /// to remove, which whoever leads pursues one at a time (volatile: told to every
    /// member, so a new leader goes on with them).
    wanted: BTreeSet<NodeId>,
    unwanted: BTreeSet<NodeId>,
    /// This node was asked to leave: it asks its leader to remove it, and has left once a
    /// committed configuration leaves it out.
    leaving: bool,
    /// An invariant a handler found broken, reported by `check_invariants`.
    violation: Option<String>,
}

impl Settings {
    fn from_config(config: &NodeConfig, bugs: &Bugs) -> Settings {
        let params = Params::from_params(&config.params);
        let election_timeout = params.election_timeout;
        let bound = params.lease_drift_bound_ppm.min(999_999);
        let min = u128::from(election_timeout.min.as_micros());
        // Both clocks may be off by `bound`: the follower's running fast ends its wait
        // early, the leader's running slow makes its lease last longer in true time.
        let lease = if bugs.lease_without_drift_bound {
            min
        } else {
            min * u128::from(1_000_000 - bound) / u128::from(1_000_000 + bound)
        };
        let voters = match params.initial_voters as usize {
            0 => config.nodes.len(),
            k => k.min(config.nodes.len()),
        };
        // A run whose membership the engine changes starts with the scenario's `initial`
        // members as voters; a node it starts to join knows no voters until the leader's log
        // or snapshot reaches it (a learner: it never campaigns).
        let dynamic = params.initial_voters == 0
            && (config.joining || config.members.len() < config.nodes.len());
        let initial_voters = match (dynamic, config.joining) {
            (true, true) => Vec::new(),
            (true, false) => config.members.clone(),
            (false, _) => config.nodes[..voters].to_vec(),
        };
        Settings {
            election_timeout,
            // A zero interval would re-fire at the same instant forever.
            heartbeat: Span(params.heartbeat.as_micros().max(1)),
            pre_vote: params.pre_vote,
            check_quorum: params.check_quorum,
            read_index: params.read_index,
            lease_reads: params.lease_reads,
            lease: Span(lease as u64),
            max_batch: params.max_batch.max(1),
            snapshot_threshold: params.snapshot_threshold.max(1),
            initial_voters,
        }
    }

    /// Whether nodes that heard a leader recently ignore RequestVote (thesis 4.2.3); leases
    /// rely on it.
    fn sticky_leader(&self) -> bool {
        self.check_quorum || self.lease_reads
    }
}

/// Whether `(last_term, last_index)` is at least as up to date as `(term, index)`
/// (section 5.4.1).
fn up_to_date(last_term: u64, last_index: u64, term: u64, index: u64) -> bool {
    (last_term, last_index) >= (term, index)
}

/// Whether `count` of `voters` is a majority.
fn is_majority(count: usize, voters: &[NodeId]) -> bool {
    count * 2 > voters.len()
}

impl Raft {
    /// The state a crash must not lose.
    fn durable(&self) -> RaftDurable {
        let voted_for = if self.bugs.vote_not_persisted && self.voted_for != Some(self.me) {
            // The planted bug: a vote for someone else never reaches the disk.
            None
        } else {
            self.voted_for
        };
        RaftDurable {
            current_term: self.current_term,
            voted_for,
            log: self.log.clone(),
            led_terms: Rc::clone(&self.led_terms),
        }
    }

    /// Writes what changed of the durable state to the disk's log and syncs, if anything
    /// did: before any send or reply, and at the end of every handler. O(entries appended),
    /// with a snapshot record after each compaction of the log, and now and then.
    fn flush(&mut self, ctx: &mut Context<'_, Self>) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        let unwritten = self.log.unwritten_len() as usize;
        let due = self.compaction.note(unwritten, self.log.len() as usize);
        let snapshot = due || self.log.compacted();
        let record = if snapshot {
            self.compaction.reset();
            self.log.mark_written();
            RaftRecord::Snapshot(self.durable())
        } else {
            let durable = self.durable();
            let (from, entries) = self.log.take_unwritten();
            RaftRecord::Changes {
                current_term: durable.current_term,
                voted_for: durable.voted_for,
                led_terms: durable.led_terms,
                from,
                entries,
            }
        };
        let mut shadow = std::mem::take(&mut self.shadow);
        shadow.check(&record, RaftRecord::replay, || self.durable());
        self.shadow = shadow;
        if snapshot {
            ctx.write_snapshot(record);
        } else {
            ctx.write(record);
        }
        ctx.sync();
    }

    /// Sends `msg`, after persisting whatever it may depend on (with `ack-before-sync`,
    /// before: the handler's closing flush syncs it later).
    fn send(&mut self, ctx: &mut Context<'_, Self>, to: NodeId, msg: Message) {
        if !self.bugs.ack_before_sync {
            self.flush(ctx);
        }
        ctx.send(to, msg);
    }

    /// Answers a client, after persisting whatever the answer may depend on (with
    /// `ack-before-sync`, before).
    fn reply(&mut self, ctx: &mut Context<'_, Self>, id: RequestId, result: OpResult) {
        if !self.bugs.ack_before_sync {
            self.flush(ctx);
        }
        if let Some(leader) = self.leader.as_mut() {
            if let Some(follower) = leader.proxied.remove(&id) {
                leader.answered.entry(follower).or_default().push(id);
            }
        }
        ctx.reply(id, result);
    }

    /// The voters of the latest membership in the log.
    fn voters(&self) -> &[NodeId] {
        self.log.latest_config().1
    }

    fn is_voter(&self, node: NodeId) -> bool {
        self.voters().contains(&node)
    }

    /// Every other node the engine booted (voters and learners alike receive the log).
    fn others(&self) -> Vec<NodeId> {
        let me = self.me;
        self.nodes.iter().copied().filter(|n| *n != me).collect()
    }

    fn arm_election_timer(&mut self, ctx: &mut Context<'_, Self>) {
        let now = ctx.monotonic();
        self.election_armed_at = now;
        self.election_reset_at = now;
        ctx.set_timer(Timer::Election, self.settings.election_timeout);
    }

    /// Adopts `term` (forgetting the vote if it is newer) and becomes a follower of
    /// `leader`. A leader stepping down refuses its waiting reads (never served, so never
    /// applied) and leaves its uncommitted writes unanswered (they may still commit).
    fn become_follower(&mut self, ctx: &mut Context<'_, Self>, term: u64, leader: Option<NodeId>) {
        if term > self.current_term {
            self.current_term = term;
            self.voted_for = None;
            self.dirty = true;
        }
        let previous = self.role;
        if previous != Role::Follower {
            // A candidate's vote retries (or a leader's heartbeats) stop here.
            ctx.cancel_timer(Timer::Heartbeat);
        }
        self.role = Role::Follower;
        self.leader_hint = leader;
        self.votes.clear();
        if let Some(state) = self.leader.take() {
            let unanswered = state.pending.len();
            ctx.note(|| {
                format!("stepped down in term {term}; {unanswered} writes left unanswered")
            });
            self.arm_election_timer(ctx);
            for read in state.reads {
                self.reply(ctx, read.id, OpResult::NotLeader { hint: leader });
            }
        } else if previous != Role::Follower {
            ctx.note(|| format!("{previous:?} became follower in term {term}"));
        }
    }

    /// Moves the commit index to `index` and applies what it covers.
    fn set_commit(&mut self, ctx: &mut Context<'_, Self>, index: u64) {
        if index < self.commit_index {
            let was = self.commit_index;
            self.violation
                .get_or_insert(format!("commit index moved back from {was} to {index}"));
            return;
        }
        self.commit_index = index;
        self.commit_high_water = self.commit_high_water.max(index);
        self.apply_committed(ctx);
    }

    /// Applies every committed entry not yet applied, answering the leader's clients.
    fn apply_committed(&mut self, ctx: &mut Context<'_, Self>) {
        let dedupe = !self.bugs.apply_retries_twice;
        // Ends: each pass applies one index, up to the commit index.
        while self.sm.applied_index < self.commit_index {
            let index = self.sm.applied_index + 1;
            let entry = Rc::clone(self.log.entry(index).expect("committed entries are held"));
            let applied = self.sm.apply(&entry, dedupe);
            let Some(leader) = self.leader.as_mut() else {
                continue;
            };
            let Some(id) = leader.pending.remove(&index) else {
                continue;
            };
            leader.pending_ids.remove(&id);
            if let Applied::Result(applied_id, result) = applied {
                debug_assert_eq!(applied_id, id);
                self.reply(ctx, id, result);
            }
        }
        self.serve_reads(ctx);
        self.maybe_snapshot(ctx);
        self.maybe_step_down_removed(ctx);
    }

    /// Snapshots the applied state once the log holds more than `snapshot_threshold`
    /// applied entries past its snapshot (section 7).
    fn maybe_snapshot(&mut self, ctx: &mut Context<'_, Self>) {
        let applied = self.sm.applied_index;
        if applied - self.log.base() <= self.settings.snapshot_threshold {
            return;
        }
        let voters = self.log.config_at(applied).to_vec();
        let snapshot = Rc::new(self.sm.snapshot(&voters));
        self.log.compact(snapshot);
        self.dirty = true;
        ctx.note(|| format!("snapshot through {applied}"));
    }

    fn initial_snapshot(settings: &Settings) -> Snapshot {
        Snapshot {
            last_index: 0,
            last_term: 0,
            chain: 0,
            voters: settings.initial_voters.clone(),
            store: BTreeMap::new(),
            sessions: BTreeMap::new(),
        }
    }
}

impl Protocol for Raft {
    type Message = Message;
    type Timer = Timer;
    type Durable = RaftDurable;
    type Record = RaftRecord;

    /// A record whose checksum fails ends the recovery: the node keeps its log as the last
    /// intact record left it and drops the tail (the term, vote and entries written since).
    /// It must never have acknowledged what it drops unless a majority still holds it
    /// (section 5.4): with syncs before every acknowledgement a leader re-sends the entries;
    /// a lost vote can let it vote twice in a term, which the election-safety check sees.
    /// With `no-checksum` it applies the garbage instead.
    fn recover(
        durable: &mut Option<RaftDurable>,
        record: Read<'_, RaftRecord>,
        config: &NodeConfig,
    ) -> bool {
        match record {
            Read::Intact(r) => r.replay(durable),
            Read::Corrupt { written, flip } | Read::Torn { written, flip }
                if Bugs::from_config(config).no_checksum =>
            {
                written.garbled(flip).replay(durable)
            }
            Read::Misplaced { written } if Bugs::from_config(config).no_checksum => {
                written.replay(durable)
            }
            Read::Corrupt { .. } | Read::Torn { .. } | Read::Misplaced { .. } => return false,
        }
        true
    }

    type Role = Role;

    fn info() -> ProtocolInfo {
        ProtocolInfo {
            name: "raft",
            description: "Raft consensus with a replicated key-value store: leader election, log \
                          replication, client sessions, ReadIndex and lease reads, \
                          single-server membership changes, snapshots",
            promises: &[
                Promise::Linearizable,
                Promise::Convergent,
                Promise::DurableAcknowledgedWrites,
                Promise::LiveAfterHeal,
            ],
            params: Params::SPECS,
            bugs: Bugs::SPECS,
            roles: <Role as crate::RoleKind>::SPECS,
            transactions: true,
            contexts: false,
            operators: &["add-server", "remove-server"],
            membership: true,
            check_params,
        }
    }

    /// Linearizable always; live after heal only with `pre_vote` (the default). Without it a
    /// node whose link to the leader is slower than an election timeout, or that keeps
    /// restarting, campaigns in ever higher terms and deposes working leaders again and again
    /// (thesis 9.6): `scenarios/swarm.toml`'s slow link did exactly that on seeds 13, 26, 34
    /// and 46, and `scenarios/raft/vote-amnesia.toml` seed 11 before Pre-Vote was the default.
    fn promises(params: &crate::params::Params) -> Vec<Promise> {
        let mut promises = Self::info().promises.to_vec();
        if !Params::from_params(params).pre_vote {
            promises.retain(|p| *p != Promise::LiveAfterHeal);
        }
        promises
    }

    fn start(
        ctx: &mut Context<'_, Self>,
        config: &NodeConfig,
        durable: Option<&RaftDurable>,
    ) -> Self {
        let bugs = Bugs::from_config(config);
        let settings = Settings::from_config(config, &bugs);
        let (current_term, voted_for, log, led_terms) = match durable {
            Some(d) => (
                d.current_term,
                d.voted_for,
                d.log.clone(),
                Rc::clone(&d.led_terms),
            ),
            None => {
                let snapshot = Rc::new(Raft::initial_snapshot(&settings));
                (0, None, Log::new(snapshot), Rc::new(Vec::new()))
            }
        };
        let now = ctx.monotonic();
        let sm = StateMachine::from_snapshot(log.snapshot());
        let commit = log.base();
        // A restarted voter may have acknowledged a leader's lease just before it crashed:
        // it keeps refusing votes for a minimum election timeout, as if it had just heard it.
        let last_heard_leader = settings.sticky_leader().then_some(now);
        let mut node = Raft {
            me: config.id,
            nodes: config.nodes.clone(),
            settings,
            bugs,
            current_term,
            voted_for,
            log,
            led_terms,
            dirty: false,
            compaction: Compaction::default(),
            shadow: Shadow::new(durable),
            role: Role::Follower,
            leader_hint: None,
            commit_index: commit,
            commit_high_water: commit,
            commit_learned_term: current_term,
            sm,
            votes: BTreeSet::new(),
            last_heard_leader,
            election_armed_at: now,
            election_reset_at: now,
            leader: None,
            proxies: BTreeMap::new(),
            wanted: BTreeSet::new(),
            unwanted: BTreeSet::new(),
            leaving: false,
            violation: None,
        };
        node.arm_election_timer(ctx);
        node
    }

    fn on_message(&mut self, ctx: &mut Context<'_, Self>, from: NodeId, msg: Message) {
        match msg {
            Message::RequestVote {
                term,
                last_log_index,
                last_log_term,
                pre_vote,
            } => {
                self.handle_request_vote(ctx, from, term, (last_log_index, last_log_term), pre_vote)
            }
            Message::RequestVoteResponse {
                term,
                granted,
                pre_vote,
            } => self.handle_vote_response(ctx, from, term, granted, pre_vote),
            Message::AppendEntries {
                term,
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
            } => self.handle_append_entries(
                ctx,
                from,
                term,
                (prev_log_index, prev_log_term),
                &entries,
                leader_commit,
            ),
            Message::AppendEntriesResponse {
                term,
                success,
                index,
                conflict_term,
                conflict_index,
            } => self.handle_append_response(
                ctx,
                from,
                term,
                success,
                index,
                (conflict_term, conflict_index),
            ),
            Message::Heartbeat {
                term,
                commit,
                round,
                answered,
            } => {
                self.handle_heartbeat(ctx, from, term, commit, round);
                if self.leader_hint == Some(from) {
                    self.resend_proxies(ctx, from, &answered);
                    self.ask_to_leave(ctx, from);
                }
            }
            Message::HeartbeatResponse {
                term,
                round,
                success,
            } => self.handle_heartbeat_response(ctx, from, term, round, success),
            Message::InstallSnapshot { term, snapshot } => {
                self.handle_install_snapshot(ctx, from, term, snapshot)
            }
            Message::ClientRequest { id, op } => {
                if let Some(leader) = self.leader.as_mut() {
                    leader.proxied.insert(id, from);
                }
                self.on_client_request(ctx, (id, op), true)
            }
            Message::Forward { command } => self.on_membership_command(ctx, command, false),
        }
        self.flush(ctx);
    }

    fn on_timer(&mut self, ctx: &mut Context<'_, Self>, timer: Timer) {
        match timer {
            Timer::Election => self.on_election_timeout(ctx),
            Timer::Heartbeat => self.on_heartbeat_timeout(ctx),
        }
        self.flush(ctx);
    }

    fn on_request(&mut self, ctx: &mut Context<'_, Self>, request: Request) {
        self.on_client_request(ctx, (request.id, request.op), false);
        self.flush(ctx);
    }

    fn on_operator(&mut self, ctx: &mut Context<'_, Self>, command: Operator) {
        self.on_membership_command(ctx, command, true);
        self.flush(ctx);
    }

    fn on_membership(&mut self, ctx: &mut Context<'_, Self>, change: Membership) {
        self.membership_changed(ctx, change);
        self.flush(ctx);
    }

    fn has_left(&self) -> bool {
        let (config_index, _) = self.log.latest_config();
        self.leaving && !self.is_voter(self.me) && config_index <= self.commit_index
    }

    /// How far the cluster went: the highest term (section 5.1: one per election attempt),
    /// the terms a node led, and the highest commit index.
    fn counters(&self) -> Vec<Counter> {
        vec![
            Counter::max("highest term", self.current_term),
            Counter::sum("leaders elected", self.led_terms.len() as u64),
            Counter::max("commit index", self.commit_index),
        ]
    }

    fn role(&self) -> Role {
        self.role
    }

    fn term(&self) -> Option<u64> {
        Some(self.current_term)
    }

    fn store(&self) -> BTreeMap<Key, Value> {
        self.sm.store.clone()
    }

    fn check_invariants(&self) -> Result<(), String> {
        self.check_node()
    }

    const HAS_CLUSTER_INVARIANTS: bool = true;

    fn check_cluster(
        nodes: &[Option<&Self>],
        monotonic: &[Time],
        changed: Option<NodeId>,
    ) -> Result<(), String> {
        invariants::check_cluster(nodes, monotonic, changed)
    }
}

/// Raft's own check of its parameters ([`crate::params::ParamCheck`]): heartbeats can fire,
/// and an election timeout outlasts a heartbeat (section 5.6: broadcastTime <<
/// electionTimeout), or followers depose a working leader between two heartbeats.
fn check_params(
    params: &crate::params::Params,
    _: crate::params::ParamContext<'_>,
) -> Result<(), crate::params::ParamProblem> {
    use crate::params::{longer_than, timers_at_least_min};
    timers_at_least_min(params, &["heartbeat", "election_timeout"])?;
    let why = "a follower would time out between two heartbeats of a working leader";
    longer_than(params, "election_timeout", "heartbeat", why)
}
