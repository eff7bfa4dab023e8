//! What 2PC nodes send each other, and the timers they arm (Gray & Lamport section 2: Prepare,
//! the votes, Commit and Abort; the acknowledgements and outcome queries of the classic
//! presentation's termination protocol).

use crate::contract::Request;
use crate::ids::{NodeId, RequestId};
use crate::kv::{Key, OpResult, Value};
use crate::time::Time;
use serde::Serialize;
use std::fmt;

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
    /// "Your Prepare waits here for a younger transaction's lock" (participant to
    /// coordinator, wait-die): the voter is up and its vote will come once the younger
    /// transaction is decided, so the coordinator may wait longer than `vote_timeout`.
    Waits {
        /// The transaction waiting.
        txn: TxnId,
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
    /// "Coordinate this write": a coordinator whose transaction for it was voted down
    /// (contention) hands the request to the home node of its first key, where the key's
    /// writes wait for one another behind a local lock instead of dying at remote ones
    /// (primary-copy locking: module doc, "Contention goes home").
    Forward {
        /// The client's request, which the home answers.
        request: Request,
        /// When it reached the first coordinator (on that node's clock): it keeps its rank.
        since: Time,
    },
    /// An in-doubt participant asks for the outcome.
    QueryOutcome {
        /// The transaction.
        txn: TxnId,
    },
    /// "Send me your state": a node whose log lost records rebuilds from every peer before
    /// it takes part again (`rebuild.rs`).
    Rebuild,
    /// The answer: the sender's committed replica, the transactions it holds prepared, and
    /// the highest transaction number of the asker's that it knows.
    RebuildState {
        /// Every key's committed state, versions included.
        entries: Vec<(super::Key, super::Entry)>,
        /// Every transaction the sender holds prepared: its age and writes.
        prepared: Vec<(TxnId, Time, Vec<Write>)>,
        /// The highest number of the asker's transactions it knows (prepared, queued or
        /// learned), if any.
        asker_txn_max: Option<u64>,
        /// Whether the sender is rebuilding too: its prepared records prove nothing.
        rebuilding: bool,
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

/// The phase 2 message for an outcome.
pub(super) fn decision_message(txn: TxnId, commit: bool) -> Message {
    if commit {
        Message::Commit { txn }
    } else {
        Message::Abort { txn }
    }
}
