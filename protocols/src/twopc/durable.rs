//! What survives a crash (module doc, "What survives a crash"): the committed replica, the
//! prepared records, the coordinator's decision log, and the counters; how a node persists
//! them (where the planted bugs forget part) and applies a commit to the replica.

use crate::Replay;
use super::{TwoPc, TxnId, Write};
use crate::contract::Context;
use crate::ids::{ClientId, NodeId};
use crate::kv::{Key, OpResult, Value};
use crate::time::Time;
use crate::tracked::{replay, Changes};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

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
    /// Shared (copied on write): a snapshot of the durable state clones every entry, and
    /// these answers (an append's is the key's whole value) were most of what it copied.
    pub last_writes: Rc<BTreeMap<ClientId, (u64, OpResult)>>,
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
    /// Whether a recovery met a record whose checksum failed: the node kept what its log
    /// held before it, cannot know what it lost, and rebuilds from its peers before it votes
    /// yes or answers again (`rebuild.rs`); it stays set until the rebuild is logged.
    pub damaged: bool,
    /// This node's own transactions numbered below this may have had their decision in
    /// records a damaged log lost: one without a decision record is never presumed aborted
    /// (0: none).
    pub outcomes_lost_below: u64,
    /// This node's own transactions whose decision may have been in the record a damaged
    /// log lost: prepared before it, and neither decided nor prepared again in an intact
    /// record after it (see [`TwoPc::recover`](super::TwoPc)). Empty once rebuilt.
    pub ambiguous: BTreeSet<TxnId>,
}

/// One record of a node's log (see the contract's "Storage"): what changed since the last
/// record, or the whole durable state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TwoPcRecord {
    /// The whole durable state: recovery starts over from it.
    Snapshot(TwoPcDurable),
    /// The changed keys, prepared records, decisions and fences (`None`: removed), and the
    /// counters as they are now.
    Changes {
        /// Changed replica keys.
        entries: Changes<Key, Entry>,
        /// Changed prepared records.
        prepared: Changes<TxnId, Prepared>,
        /// Changed decisions.
        decisions: Changes<TxnId, Decision>,
        /// Changed fences.
        refused: Changes<ClientId, u64>,
        /// The next transaction number.
        next_txn: u64,
        /// The blocking counters.
        stats: BlockingStats,
        /// See [`TwoPcDurable::outcomes_lost_below`].
        outcomes_lost_below: u64,
    },
}

impl TwoPcRecord {
    /// The record as a read that skips the checksum sees it after `flip` damaged it: the
    /// values it carries are garbage (the `no-checksum` planted bug).
    pub(super) fn garbled(&self, flip: u64) -> TwoPcRecord {
        let junk = Some(Value::from(format!("garbled-{flip:x}")));
        let mut record = self.clone();
        match &mut record {
            TwoPcRecord::Snapshot(d) => {
                for e in d.entries.values_mut() {
                    e.value.clone_from(&junk);
                }
            }
            TwoPcRecord::Changes { entries, .. } => {
                for e in entries.iter_mut().filter_map(|(_, e)| e.as_mut()) {
                    e.value.clone_from(&junk);
                }
            }
        }
        record
    }
}

impl Replay<TwoPcDurable> for TwoPcRecord {
    /// Folds this record into the state recovered so far.
    fn replay(&self, durable: &mut Option<TwoPcDurable>) {
        match self {
            TwoPcRecord::Snapshot(d) => *durable = Some(d.clone()),
            TwoPcRecord::Changes {
                entries,
                prepared,
                decisions,
                refused,
                next_txn,
                stats,
                outcomes_lost_below,
            } => {
                let d = durable.get_or_insert_with(TwoPcDurable::default);
                d.outcomes_lost_below = *outcomes_lost_below;
                replay(&mut d.entries, entries);
                replay(&mut d.prepared, prepared);
                replay(&mut d.decisions, decisions);
                replay(&mut d.refused, refused);
                d.next_txn = *next_txn;
                d.stats = *stats;
            }
        }
    }
}

impl TwoPc {
    /// The durable state as a crash now should leave it; the planted bugs leave out what they
    /// forget.
    fn durable_now(&self) -> TwoPcDurable {
        let mut prepared = BTreeMap::clone(&self.prepared);
        if self.bugs.vote_not_persisted {
            // The participant's votes are lost; the coordinator's own record is not a vote.
            prepared.retain(|t, _| t.coordinator == self.me);
        }
        let decisions = if self.bugs.coordinator_forgets_decision {
            BTreeMap::new()
        } else {
            BTreeMap::clone(&self.decisions)
        };
        TwoPcDurable {
            entries: BTreeMap::clone(&self.entries),
            prepared,
            decisions,
            next_txn: self.next_txn,
            refused: BTreeMap::clone(&self.refused),
            stats: self.stats,
            damaged: self.damaged,
            outcomes_lost_below: self.outcomes_lost_below,
            ambiguous: self.ambiguous.clone(),
        }
    }

    /// Writes what changed since the last persist to the log and syncs it: O(changes), with
    /// a snapshot now and then to keep the log short.
    pub(super) fn persist(&mut self, ctx: &mut Context<'_, Self>) {
        self.write_changes(ctx);
        ctx.sync();
    }

    /// Writes what changed since the last persist to the log, without a sync: durable only
    /// once some later sync covers it.
    pub(super) fn write_changes(&mut self, ctx: &mut Context<'_, Self>) {
        let size = self.entries.len() + self.prepared.len() + self.decisions.len();
        let changes = self.entries.len_changed()
            + self.prepared.len_changed()
            + self.decisions.len_changed()
            + self.refused.len_changed();
        let record = if self.compaction.note(changes, size) {
            self.compaction.reset();
            self.entries.mark_written();
            self.prepared.mark_written();
            self.decisions.mark_written();
            self.refused.mark_written();
            TwoPcRecord::Snapshot(self.durable_now())
        } else {
            let mut prepared = self.prepared.take_changes();
            if self.bugs.vote_not_persisted {
                for (t, p) in &mut prepared {
                    if t.coordinator != self.me {
                        *p = None;
                    }
                }
            }
            let mut decisions = self.decisions.take_changes();
            if self.bugs.coordinator_forgets_decision {
                decisions.clear();
            }
            TwoPcRecord::Changes {
                entries: self.entries.take_changes(),
                prepared,
                decisions,
                refused: self.refused.take_changes(),
                next_txn: self.next_txn,
                stats: self.stats,
                outcomes_lost_below: self.outcomes_lost_below,
            }
        };
        let mut shadow = std::mem::take(&mut self.shadow);
        shadow.check(&record, TwoPcRecord::replay, || self.durable_now());
        self.shadow = shadow;
        match record {
            TwoPcRecord::Snapshot(_) => ctx.write_snapshot(record),
            TwoPcRecord::Changes { .. } => ctx.write(record),
        }
    }

    /// Applies committed `writes` to the replica, recording each request's answer.
    pub(super) fn apply(&mut self, writes: &[Write]) {
        for w in writes {
            let entry = self.entries.entry(w.key).or_default();
            entry.version = w.base + 1;
            entry.value.clone_from(&w.value);
            let (client, seq) = (w.request.client, w.request.seq);
            Rc::make_mut(&mut entry.last_writes).insert(client, (seq, w.result.clone()));
        }
    }
}

impl TwoPcRecord {
    /// After a damaged record, an intact `self` read past it: the own transactions it
    /// prepares again, decides or resolves are no longer ambiguous (their decision, if any,
    /// comes after this record, and so is readable).
    pub(super) fn settle_ambiguous(&self, durable: &mut TwoPcDurable) {
        if let TwoPcRecord::Changes {
            prepared,
            decisions,
            ..
        } = self
        {
            let txns = prepared.iter().map(|(t, _)| t);
            for txn in txns.chain(decisions.iter().map(|(t, _)| t)) {
                durable.ambiguous.remove(txn);
            }
        }
    }
}
