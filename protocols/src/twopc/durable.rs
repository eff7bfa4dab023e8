//! What survives a crash (module doc, "What survives a crash"): the committed replica, the
//! prepared records, the coordinator's decision log, and the counters; how a node persists
//! them (where the planted bugs forget part) and applies a commit to the replica.

use super::{TwoPc, TxnId, Write};
use crate::contract::Context;
use crate::ids::{ClientId, NodeId};
use crate::kv::{Key, OpResult, Value};
use crate::time::Time;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

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

impl TwoPc {
    /// Persists the durable state; the planted bugs leave out what they forget.
    pub(super) fn persist(&self, ctx: &mut Context<'_, Self>) {
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

    /// Applies committed `writes` to the replica, recording each request's answer.
    pub(super) fn apply(&mut self, writes: &[Write]) {
        for w in writes {
            let entry = self.entries.entry(w.key).or_default();
            entry.version = w.base + 1;
            entry.value.clone_from(&w.value);
            let (client, seq) = (w.request.client, w.request.seq);
            entry.last_writes.insert(client, (seq, w.result.clone()));
        }
    }
}
