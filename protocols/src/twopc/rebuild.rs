//! Recovery from a damaged log: state transfer from the peers, then the termination protocol
//! (Gray & Lamport section 2; Bernstein, Hadzilacos & Goodman chapter 7, cooperative
//! termination and recovery).
//!
//! A record whose checksum fails ends the recovery with the state of an earlier sync; what the
//! records after it held is unknown: commits applied here, yes votes (prepared records), the
//! coordinator's decisions, refusal fences, the transaction counter. Until it has rebuilt, the
//! node votes no on every Prepare it does not hold prepared from its intact log, answers no
//! query and no decision, refuses reads and leaves writes unanswered. It asks every peer for
//! its state ([`Message::Rebuild`]), again on each tick until each has answered, and then:
//!
//! - **Committed data.** Per key, the entry of the highest version among its own and its
//!   peers' replicas. Every commit is applied by its coordinator when it decides, and needs
//!   this node's yes vote: while it rebuilds it votes no, so the only commits it can miss are
//!   of transactions a peer still holds prepared, below.
//! - **Transactions in doubt.** It holds prepared exactly the transactions some peer that is
//!   not rebuilding holds prepared (it may have voted yes on them and forgotten), and drops the
//!   others: every peer has resolved them, so their outcome is in the data above. An adopted
//!   transaction's outcome comes by the termination protocol, from its coordinator or a peer
//!   that learned it; a commit it already holds the data of changes nothing (`adopted`).
//! - **Its own transactions** that a peer holds prepared, whose decision it may have lost. A
//!   peer holding one prepared keeps every key of it locked, so no other transaction on those
//!   keys can have committed since; a replica at `base + 1` on one of them therefore applied
//!   its commit (committed), and a peer that holds it neither prepared nor applied never voted
//!   yes or learned the abort (aborted). Either decision is logged and sent as usual. When
//!   every peer holds it prepared and none applied it, nothing tells whether it committed (the
//!   decision, and perhaps the client's answer, were only in the lost records): it stays in
//!   doubt, and its participants block for good. That is the loss 2PC cannot survive; the
//!   node reports it ([`Protocol::liveness_forfeit`](crate::contract::Protocol::liveness_forfeit)),
//!   and a run whose disk faults damaged its log then does not promise liveness.
//! - **Its transaction counter** moves past every number of its own a peer knows, and its own
//!   transactions below it are never presumed aborted ([`TwoPcDurable::outcomes_lost_below`]).
//!
//! Refusal fences that the lost records held are not rebuilt: no peer keeps another's.

use super::{Decision, Entry, Message, Prepared, TwoPc, TxnId, Write};
use crate::contract::Context;
use crate::ids::NodeId;
use crate::kv::Key;
use crate::time::Time;
use std::collections::{BTreeMap, BTreeSet};

/// What a rebuilding node has gathered so far.
#[derive(Clone, Debug, Default)]
pub(super) struct Rebuilding {
    /// The peers that have not answered yet.
    waiting: BTreeSet<NodeId>,
    /// Per key, the highest-version entry seen.
    entries: BTreeMap<Key, Entry>,
    /// Transactions peers that are not rebuilding hold prepared: age, writes and who holds
    /// them.
    held: BTreeMap<TxnId, (Time, Vec<Write>, BTreeSet<NodeId>)>,
    /// Peers that answered while rebuilding themselves (their prepared records prove
    /// nothing).
    rebuilding: BTreeSet<NodeId>,
    /// The highest number of its own transactions a peer knows.
    own_max: Option<u64>,
}

/// How a damaged coordinator's own transaction, held prepared by a peer, ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Evidence {
    Committed,
    Aborted,
    Unknown,
}

impl TwoPc {
    /// Starts a rebuild: ask every peer for its state.
    pub(super) fn begin_rebuild(&mut self, ctx: &mut Context<'_, Self>) {
        let waiting: BTreeSet<NodeId> = self.peers().collect();
        ctx.note(|| "damaged log: rebuilding from every peer".to_string());
        self.rebuild = Some(Rebuilding {
            waiting,
            ..Rebuilding::default()
        });
        self.maybe_ask_rebuild(ctx);
        if self.rebuild.as_ref().is_some_and(|r| r.waiting.is_empty()) {
            self.finish_rebuild(ctx);
        }
    }

    /// Drops the prepared records that do not hold every lock they want, and their locks.
    pub(super) fn drop_conflicting_prepared(&mut self) {
        let locks = &self.locks;
        let partial: Vec<TxnId> = (self.prepared.iter())
            .filter(|(t, p)| p.writes.iter().any(|w| locks.get(&w.key) != Some(*t)))
            .map(|(t, _)| *t)
            .collect();
        for txn in &partial {
            self.prepared.remove(txn);
        }
        self.locks.get_mut().retain(|_, t| !partial.contains(t));
    }

    /// Asks the peers that have not answered yet (each tick: a request or answer may be lost).
    pub(super) fn maybe_ask_rebuild(&self, ctx: &mut Context<'_, Self>) {
        if let Some(r) = &self.rebuild {
            for peer in &r.waiting {
                ctx.send(*peer, Message::Rebuild);
            }
        }
    }

    /// This node's state for a rebuilding peer.
    pub(super) fn rebuild_state(&self, asker: NodeId) -> Message {
        let own = |t: &TxnId| (t.coordinator == asker).then_some(t.seq);
        let known = self.prepared.keys().chain(self.queued.keys());
        let asker_txn_max = known.chain(self.learned.keys()).filter_map(own).max();
        Message::RebuildState {
            entries: self.entries.iter().map(|(k, e)| (*k, e.clone())).collect(),
            prepared: self
                .prepared
                .iter()
                .map(|(t, p)| (*t, p.started, p.writes.clone()))
                .collect(),
            asker_txn_max,
            rebuilding: self.rebuild.is_some(),
        }
    }

    /// What a rebuilding node does with a message: it answers rebuild requests, gathers
    /// states, keeps the votes its intact log holds and votes no on every other Prepare;
    /// everything else waits for the rebuild (it is sent again).
    pub(super) fn on_message_rebuilding(
        &mut self,
        ctx: &mut Context<'_, Self>,
        from: NodeId,
        msg: Message,
    ) {
        match msg {
            Message::Rebuild => ctx.send(from, self.rebuild_state(from)),
            Message::RebuildState {
                entries,
                prepared,
                asker_txn_max,
                rebuilding,
            } => {
                let Some(r) = self.rebuild.as_mut() else {
                    return;
                };
                if !r.waiting.remove(&from) {
                    return ctx.note(|| format!("a second state of {from}: ignored"));
                }
                for (key, entry) in entries {
                    let newer = r.entries.get(&key).is_none_or(|e| e.version < entry.version);
                    if newer {
                        r.entries.insert(key, entry);
                    }
                }
                if rebuilding {
                    r.rebuilding.insert(from);
                } else {
                    for (txn, started, writes) in prepared {
                        let held = r.held.entry(txn).or_insert((started, writes, BTreeSet::new()));
                        held.2.insert(from);
                    }
                }
                r.own_max = r.own_max.max(asker_txn_max);
                if r.waiting.is_empty() {
                    self.finish_rebuild(ctx);
                }
            }
            Message::Prepare { txn, .. } => {
                // A vote its intact log holds stands; it casts no other while it rebuilds.
                let yes = self.prepared.contains_key(&txn);
                ctx.send(from, Message::Vote { txn, yes });
            }
            _ => ctx.note(|| format!("rebuilding: a message of {from} waits")),
        }
    }

    /// Every peer has answered: rebuild the replica, the transactions in doubt and the
    /// counter, log it all in one snapshot, then take part again.
    fn finish_rebuild(&mut self, ctx: &mut Context<'_, Self>) {
        let Some(r) = self.rebuild.take() else {
            return;
        };
        for (key, entry) in &r.entries {
            if self.entries.get(key).is_none_or(|e| e.version < entry.version) {
                self.entries.insert(*key, entry.clone());
            }
        }
        // Records of transactions no healthy peer holds: all resolved, the data has them.
        let dropped: Vec<TxnId> = (self.prepared.keys())
            .filter(|t| !r.held.contains_key(t))
            .copied()
            .collect();
        for txn in dropped {
            if let Some(p) = self.prepared.remove(&txn) {
                self.release(txn, &p.writes);
            }
        }
        let healthy: BTreeSet<NodeId> = self.peers().filter(|p| !r.rebuilding.contains(p)).collect();
        let mut decided = Vec::new();
        let mut logged = Vec::new();
        for (txn, (started, writes, holders)) in &r.held {
            if txn.coordinator == self.me {
                if let Some(commit) = self.decisions.get(txn).map(|d| d.commit) {
                    // Decided in the intact log: sent again as usual. The damaged record
                    // may be the one that decided it (released its own prepared record and
                    // applied it), and a later one, an ack's, logged the decision again.
                    logged.push((*txn, commit));
                    continue;
                }
                match self.evidence(*txn, writes, holders, &healthy) {
                    Evidence::Unknown => {
                        self.lost_outcomes.insert(*txn);
                    }
                    found => {
                        decided.push((*txn, found == Evidence::Committed, holders.clone()));
                        continue;
                    }
                }
            }
            if !self.prepared.contains_key(txn) {
                self.adopt(ctx, *txn, *started, writes.clone());
            }
        }
        for (txn, commit) in logged {
            if let Some(p) = self.prepared.remove(&txn) {
                self.release(txn, &p.writes);
                if commit {
                    self.apply_adopted(&p.writes);
                }
            }
        }
        for (txn, commit, pending) in &decided {
            if let Some(p) = self.prepared.remove(txn) {
                self.release(*txn, &p.writes);
            }
            let decision = Decision {
                commit: *commit,
                pending: pending.clone(),
                sent_at: ctx.now(),
            };
            self.decisions.insert(*txn, decision);
        }
        let next = r.own_max.map_or(0, |m| m + 1);
        self.next_txn = self.next_txn.max(next);
        self.outcomes_lost_below = self.next_txn;
        self.damaged = false;
        self.ambiguous.clear();
        // One snapshot says it all, whatever this incarnation wrote before.
        self.compaction = super::Compaction::default();
        self.persist(ctx);
        let (keys, doubts) = (self.entries.len(), self.prepared.len());
        ctx.note(|| format!("rebuilt: {keys} keys, {doubts} transactions in doubt"));
        for (txn, commit, pending) in decided {
            for peer in pending {
                ctx.send(peer, super::messages::decision_message(txn, commit));
            }
        }
    }

    /// How this node's own transaction with `writes`, held prepared by `holders`, ended (see
    /// the module doc).
    fn evidence(
        &self,
        txn: TxnId,
        writes: &[Write],
        holders: &BTreeSet<NodeId>,
        healthy: &BTreeSet<NodeId>,
    ) -> Evidence {
        let applied = writes.iter().any(|w| {
            self.entries.get(&w.key).is_some_and(|e| e.version > w.base)
        });
        if applied {
            Evidence::Committed
        } else if !self.ambiguous.contains(&txn) {
            // Its decision would come after a record the log still reads: there is none.
            Evidence::Aborted
        } else if healthy.iter().any(|p| !holders.contains(p)) {
            Evidence::Aborted
        } else {
            Evidence::Unknown
        }
    }

    /// Holds `txn` prepared as a peer does: its vote here may be lost with the log. Two
    /// transactions peers hold prepared may want one key (each prepared at other nodes,
    /// wait-die will abort one): the later is kept aside, unlocked, so that a Commit of it
    /// still applies here.
    fn adopt(&mut self, ctx: &mut Context<'_, Self>, txn: TxnId, started: Time, writes: Vec<Write>) {
        self.adopted.insert(txn, writes.clone());
        if writes.iter().any(|w| self.locks.contains_key(&w.key)) {
            return ctx.note(|| format!("{txn} kept aside: a key of it is locked"));
        }
        for w in &writes {
            self.locks.get_mut().insert(w.key, txn);
        }
        let prepared = Prepared {
            writes,
            started,
            voted_at: ctx.now(),
            queries: 0,
        };
        self.prepared.insert(txn, prepared);
    }

    /// A decision for a transaction adopted by the rebuild: apply what the replica does not
    /// hold yet (the state transfer may have brought the commit already), never going back.
    pub(super) fn apply_adopted(&mut self, writes: &[Write]) {
        let fresh: Vec<Write> = (writes.iter())
            .filter(|w| self.entries.get(&w.key).map_or(0, |e| e.version) == w.base)
            .cloned()
            .collect();
        self.apply(&fresh);
    }
}
