//! Termination and recovery (Gray & Lamport section 2, and the classic presentation's
//! termination protocol): the periodic re-sends, in-doubt participants' outcome queries
//! (blocking on the coordinator, or cooperative), the answers, and a restarted coordinator's
//! presumed abort of what it never decided.

use super::messages::decision_message;
use super::{Decision, Message, Timer, TwoPc, TxnId};
use crate::contract::Context;
use crate::ids::NodeId;
use crate::time::Time;
use std::collections::BTreeSet;

impl TwoPc {
    /// The periodic tick: re-send what is unanswered, ask about in-doubt transactions,
    /// give up on requests and Prepares that waited too long, and re-arm.
    pub(super) fn on_tick(&mut self, ctx: &mut Context<'_, Self>) {
        let (now, resend) = (ctx.now(), self.resend);
        let due = |at: Time| now.since(at) >= resend;
        for (txn, active) in self.active.get_mut().iter_mut().filter(|(_, a)| due(a.sent_at)) {
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

    /// Answers an outcome query: as coordinator from its log (or by presumed abort), as a
    /// fellow participant only with an outcome it learned.
    pub(super) fn on_query(&mut self, ctx: &mut Context<'_, Self>, from: NodeId, txn: TxnId) {
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
        if txn.seq < self.outcomes_lost_below && !self.decisions.contains_key(&txn) {
            // Its decision may have been in records a damaged log lost (rebuild.rs).
            ctx.note(|| format!("{from} asks about {txn}: outcome lost with the log"));
            self.lost_outcomes.insert(txn);
            return;
        }
        self.send_outcome(ctx, from, txn);
    }

    /// Tells `to` the logged outcome of `txn` (and waits for its ack), or, with no record,
    /// that it aborted: presumed abort, no record means no commit.
    pub(super) fn send_outcome(&mut self, ctx: &mut Context<'_, Self>, to: NodeId, txn: TxnId) {
        if let Some(decision) = self.decisions.get_mut(&txn) {
            decision.pending.insert(to);
            let commit = decision.commit;
            ctx.send(to, decision_message(txn, commit));
            return;
        }
        ctx.note(|| format!("{to} asks about {txn}: no record, presumed aborted"));
        ctx.send(to, Message::Abort { txn });
    }

    /// A restarted coordinator aborts what it prepared and never decided (presumed abort).
    pub(super) fn abort_undecided(&mut self, ctx: &mut Context<'_, Self>) {
        let me = self.me;
        let own: Vec<TxnId> = self
            .prepared
            .keys()
            .copied()
            .filter(|t| t.coordinator == me && t.seq >= self.outcomes_lost_below)
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
