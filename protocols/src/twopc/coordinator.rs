//! The transaction manager (Gray & Lamport section 2): phase 1 locks and prepares locally,
//! persists and sends Prepare; phase 2 logs the decision before anyone hears of it, then
//! applies or releases, answers the client and sends the outcome; acks let it forget.

use super::messages::decision_message;
use super::{Active, Decision, Message, Prepared, Timer, TwoPc, TxnId, Waiting, Write};
use crate::contract::Context;
use crate::ids::NodeId;
use crate::kv::OpResult;
use std::collections::BTreeSet;

impl TwoPc {
    /// Phase 1 as coordinator: lock and prepare locally, persist, send Prepare to every peer.
    pub(super) fn begin(
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
            self.locks.get_mut().insert(w.key, txn);
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
            waits_at: BTreeSet::new(),
            extended: false,
        };
        self.active.get_mut().insert(txn, active);
        self.round_trips.begin(txn, now, peers.into_iter().collect());
        let deadline = self.round_trips.deadline(self.vote_timeout);
        ctx.set_timer(Timer::Votes(txn), deadline);
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
    pub(super) fn decide(&mut self, ctx: &mut Context<'_, Self>, txn: TxnId, commit: bool) {
        let Some(active) = self.active.get_mut().remove(&txn) else {
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

    /// A vote reaches the coordinator: the first no aborts, the last yes commits.
    pub(super) fn on_vote(
        &mut self,
        ctx: &mut Context<'_, Self>,
        from: NodeId,
        txn: TxnId,
        yes: bool,
    ) {
        self.round_trips.answered(txn, from, ctx.now());
        if let Some(active) = self.active.get_mut().get_mut(&txn) {
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

    /// A participant applied or released `txn`: forget the decision once all have.
    pub(super) fn on_ack(&mut self, from: NodeId, txn: TxnId) {
        let Some(decision) = self.decisions.get_mut(&txn) else {
            return;
        };
        decision.pending.remove(&from);
        if decision.pending.is_empty() {
            // Not persisted now: a stale record only costs re-sends after a restart.
            self.decisions.remove(&txn);
        }
    }
}
