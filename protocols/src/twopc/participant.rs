//! The resource manager (Gray & Lamport section 2): phase 1 votes yes only once its locks and
//! its prepared record are durable, waits for a younger transaction's lock or votes no
//! (wait-die); phase 2 applies or releases, persists and acks, and remembers the outcome.

use super::{Conflict, Message, Prepared, Queued, TwoPc, TxnId, Write, LEARNED_MAX, WAIT_VOTES};
use crate::contract::Context;
use crate::ids::NodeId;
use crate::kv::Key;
use crate::time::{Span, Time};

impl TwoPc {
    /// A participant's phase 1: lock, persist, vote yes; wait for an older transaction's
    /// lock; or vote no at once.
    pub(super) fn on_prepare(
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
            // A re-send while it waits: say so again (the first notice may be lost).
            ctx.send(from, Message::Waits { txn });
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
                self.queued.get_mut().insert(txn, queued);
                ctx.send(from, Message::Waits { txn });
            }
            None => self.vote_yes(ctx, txn, started, writes),
        }
    }

    /// Locks `writes` for `txn`, persists the prepared record, then votes yes.
    fn vote_yes(
        &mut self,
        ctx: &mut Context<'_, Self>,
        txn: TxnId,
        started: Time,
        writes: Vec<Write>,
    ) {
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
        if self.bugs.ack_before_sync {
            // The planted bug: written, not synced; the next persist's sync covers it.
            self.write_changes(ctx);
        } else {
            // The vote and its lock are durable before the vote leaves.
            self.persist(ctx);
        }
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
            if let Some(waiter) = self.older_waiter(w.key, started, txn) {
                let why = format!("k{} is awaited by the older {waiter}", w.key);
                return Some(Conflict::Refuse(why));
            }
            let version = self.entries.get(&w.key).map_or(0, |e| e.version);
            if version != w.base {
                let why = format!("k{} is at version {version}, not {}", w.key, w.base);
                return Some(Conflict::Refuse(why));
            }
        }
        wait
    }

    /// A Prepare queued here for `key` that wait-die ranks older than (`started`, `txn`).
    /// A waiting transaction keeps its rank on the keys it waits for, as a holder does: a
    /// younger one that wants such a key dies, and the local coordinator's younger writes
    /// wait behind it. Otherwise younger transactions take a key in turn while the oldest
    /// waits for another, and it starves until its coordinator gives up (Rosenkrantz, Stearns
    /// & Lewis 1978: wait-die is starvation-free because the oldest transaction is never
    /// overtaken; swarm.toml seed 974 (twopc): a txn waited behind 40 younger ones for its
    /// whole vote timeout, was taken for an unreachable node's and refused for good).
    pub(super) fn older_waiter(&self, key: Key, started: Time, txn: TxnId) -> Option<TxnId> {
        let wants = |q: &Queued| q.writes.iter().any(|w| w.key == key);
        let older = |t: &TxnId, q: &Queued| (q.started, *t) < (started, txn);
        let mut waiters = self.queued.iter();
        waiters.find(|(t, q)| older(t, q) && wants(q)).map(|(t, _)| *t)
    }

    /// A participant's phase 2: apply or release, persist, ack.
    pub(super) fn on_decision(
        &mut self,
        ctx: &mut Context<'_, Self>,
        from: NodeId,
        txn: TxnId,
        commit: bool,
    ) {
        if txn.coordinator == self.me {
            ctx.note(|| format!("ignored an outcome of our own {txn} from {from}"));
            return;
        }
        if let Some(q) = self.queued.get_mut().remove(&txn) {
            // Aborted while its Prepare waited here: nothing was locked, but what waited
            // behind it may go.
            ctx.send(from, Message::Ack { txn });
            self.after_release(ctx, q.writes.iter().map(|w| w.key).collect());
            return;
        }
        let adopted = self.adopted.remove(&txn);
        let Some(prepared) = self.prepared.remove(&txn) else {
            if let (Some(writes), true) = (adopted, commit) {
                // Adopted by a rebuild, kept aside (rebuild.rs).
                self.apply_adopted(&writes);
                self.learn(txn, commit);
                self.persist(ctx);
            }
            // Already applied or released (or never prepared): the ack is all that is missing.
            ctx.send(from, Message::Ack { txn });
            return;
        };
        let released = self.release(txn, &prepared.writes);
        if commit && adopted.is_some() {
            self.apply_adopted(&prepared.writes);
        } else if commit {
            self.apply(&prepared.writes);
        }
        self.learn(txn, commit);
        self.count_resolved(ctx, txn, &prepared);
        self.persist(ctx);
        ctx.send(from, Message::Ack { txn });
        self.after_release(ctx, released);
    }

    /// Remembers the outcome of `txn`, learned as participant (at most [`LEARNED_MAX`]).
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

    /// Counts a resolved yes vote, and how long it was blocked if it had to ask.
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

    /// Votes down Prepares that waited [`WAIT_VOTES`] vote timeouts: their coordinators have
    /// given up.
    pub(super) fn expire_queued(&mut self, ctx: &mut Context<'_, Self>) {
        let now = ctx.now();
        let limit = Span(self.vote_timeout.as_micros() * WAIT_VOTES);
        let expired: Vec<TxnId> = self
            .queued
            .iter()
            .filter(|(_, q)| now.since(q.arrived) >= limit)
            .map(|(t, _)| *t)
            .collect();
        for txn in expired {
            let Some(q) = self.queued.get_mut().remove(&txn) else {
                continue; // voted on while an earlier one's waiters were served
            };
            ctx.note(|| format!("voting no on {txn}: waited for a lock too long"));
            ctx.send(txn.coordinator, Message::Vote { txn, yes: false });
            self.after_release(ctx, q.writes.iter().map(|w| w.key).collect());
        }
    }
}
