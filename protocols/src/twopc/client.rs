//! Client requests: answered locally when they change nothing (reads wait for locks), run as
//! a transaction when they write, retried after an abort, answered again from the committed
//! record when a copy already committed, and given up on after `retry_for` (module doc,
//! "Refusing a write" and "Reads are local, and wait for locks").

use super::{Message, Prepared, Timer, TwoPc, TxnId, Waiting, Write};
use crate::contract::Context;
use crate::ids::{ClientId, NodeId, RequestId};
use crate::kv::{self, Key, Op, OpResult, Value};
use crate::time::Span;
use std::collections::{BTreeMap, BTreeSet};

/// The shortest and longest backoff unit before a coordinator retries an aborted write.
const BACKOFF_MIN: Span = Span(1_000);
const BACKOFF_UNIT_US: u64 = 4_000;

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
    /// Answers `waiting` now, starts its transaction, or parks it behind a locked key.
    pub(super) fn serve(&mut self, ctx: &mut Context<'_, Self>, waiting: Waiting) {
        let op = &waiting.request.op;
        let keys = op.keys();
        if let Some(&key) = keys.iter().find(|k| self.locks.contains_key(k)) {
            // Every key must be unlocked at once: re-served when this one is released, the
            // request checks them all again.
            self.park(ctx, key, waiting);
            return;
        }
        if op.is_write() {
            // A younger write waits behind a Prepare queued for one of its keys, as a
            // younger Prepare would die (wait-die keeps the waiter's rank: see
            // `older_waiter`); re-served when that Prepare leaves the queue.
            let next = TxnId {
                coordinator: self.me,
                seq: self.next_txn,
            };
            let awaited = keys
                .iter()
                .find(|k| self.older_waiter(**k, waiting.since, next).is_some());
            if let Some(&key) = awaited {
                self.park(ctx, key, waiting);
                return;
            }
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
        if !op.is_write() {
            debug_assert!(after == before);
            // Every key unlocked here, so every acknowledged transaction is applied here, and
            // applies are atomic: the local view is current and consistent (module doc, "Reads
            // are local"). A write runs as a transaction even when it would change nothing (a
            // failing cas, the update of an absent key): its answer must be recorded at every
            // replica, or a copy of it parked at another node runs later on a changed key
            // (module doc, "Writes that change nothing").
            ctx.reply(id, result);
            return;
        }
        if ctx.now().since(waiting.patience) >= self.retry_for {
            self.give_up(ctx, waiting);
            return;
        }
        let writes = self.writes_for(op, after, id, &result);
        self.begin(ctx, waiting, writes, result);
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
        // Not this node's own transaction still collecting votes: its deadline may be longer
        // (`rtt.rs`), and it decides.
        let in_doubt = keys
            .iter()
            .filter_map(|k| self.locks.get(k))
            .filter(|txn| !self.active.contains_key(txn))
            .filter_map(|txn| self.prepared.get(txn))
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

    /// After an abort: try again after a random backoff, or answer unavailable if the
    /// request has waited `retry_for`.
    /// A write voted down (rather than short of votes) goes to its home node instead, unless
    /// this is its home (module doc, "Contention goes home").
    pub(super) fn maybe_retry(&mut self, ctx: &mut Context<'_, Self>, waiting: Waiting) {
        let home = self.home_of(&waiting.request.op);
        if !waiting.votes_missed && home != self.me {
            let id = waiting.request.id;
            ctx.note(|| format!("{id}: voted down; handing it to its home {home}"));
            let since = waiting.since;
            ctx.send(
                home,
                Message::Forward {
                    request: waiting.request,
                    since,
                },
            );
            return;
        }
        let unit = BACKOFF_UNIT_US << waiting.attempts.min(4);
        let backoff = Span(BACKOFF_MIN.as_micros() + ctx.random_below(unit));
        let waited = ctx.now().since(waiting.patience);
        if Span(waited.as_micros() + backoff.as_micros()) >= self.retry_for {
            self.give_up(ctx, waiting);
            return;
        }
        let id = waiting.request.id;
        self.retrying.insert(id, waiting);
        ctx.set_timer(Timer::Retry(id), backoff);
    }

    /// The home node of `op`'s writes: the one its smallest key maps to, where contended
    /// writes of the key are coordinated (module doc, "Contention goes home").
    pub(super) fn home_of(&self, op: &Op) -> NodeId {
        let key = op.keys().into_iter().min().unwrap_or_default();
        self.nodes[(key % self.nodes.len() as u64) as usize]
    }

    /// A request another coordinator handed to this node, its home: served here as if it
    /// had arrived here, keeping its rank.
    pub(super) fn on_forward(
        &mut self,
        ctx: &mut Context<'_, Self>,
        request: crate::contract::Request,
        since: crate::time::Time,
    ) {
        let waiting = Waiting {
            request,
            since,
            patience: ctx.now(),
            parked_version: 0,
            attempts: 1,
            votes_missed: false,
        };
        self.serve(ctx, waiting);
    }

    /// Refuses requests that have waited for `retry_for` behind a lock that has not moved
    /// for as long: a lock that moves is contention, and the queue behind it is served in
    /// turn (`Waiting::patience`; module doc, "Contention goes home").
    pub(super) fn refuse_overdue(&mut self, ctx: &mut Context<'_, Self>) {
        let now = ctx.now();
        let mut overdue = Vec::new();
        for queue in self.parked.values_mut() {
            while queue
                .front()
                .is_some_and(|w| now.since(w.patience) >= self.retry_for)
            {
                overdue.extend(queue.pop_front());
            }
        }
        self.parked.retain(|_, q| !q.is_empty());
        for waiting in overdue {
            self.give_up(ctx, waiting);
        }
    }
}
