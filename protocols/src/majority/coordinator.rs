//! The coordinator: a request's phases (query or prepare, then accept or write-back), refusals
//! and back-off, deadlines, and the queue that runs one round per key at a time.

use super::durable::Record;
use super::messages::op_of;
use super::{Majority, Message, Timer};
use crate::contract::Context;
use crate::ids::{NodeId, RequestId};
use crate::kv::{self, Key, Op, OpResult};
use crate::quorum::{Entry, Version};
use crate::time::{Span, SpanRange};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    Query,
    Prepare,
    Accept,
    WriteBack,
    Backoff,
    /// Waiting for this node's earlier write of the same key to finish: a coordinator runs
    /// one round per key at a time, so its own requests never duel with each other.
    Queued,
    /// Forwarded to the key's distinguished proposer, which runs it (see `proposer.rs`).
    Forwarded(NodeId),
    /// Applied in the proposal of this node's round `op` of the same key, after the round's
    /// own request (group commit): answered when that round's value is chosen, queued again
    /// if the round starts over.
    Joined(u64),
}

/// One request this node coordinates.
#[derive(Clone, Debug)]
pub(super) struct Pending {
    pub(super) request: RequestId,
    pub(super) op: Op,
    pub(super) phase: Phase,
    pub(super) attempt: u32,
    pub(super) ballot: Version,
    /// Phase 1 replies: what each replica holds, and whether it is known chosen.
    pub(super) replies: BTreeMap<NodeId, (Option<Record>, bool)>,
    pub(super) acks: BTreeSet<NodeId>,
    pub(super) nacks: BTreeSet<NodeId>,
    /// The value phase 2 (or the write-back) proposes.
    pub(super) proposal: Option<Record>,
    /// What a get answers.
    pub(super) read_result: Option<OpResult>,
    /// A get whose write-back a quorum refused for promises made to higher ballots: it
    /// re-proposes the value it read under a ballot of its own (see `decide_read`).
    pub(super) rewrite: bool,
    /// Each attempt's ballot and the result its value means.
    pub(super) results: Vec<(Version, OpResult)>,
    /// The node that forwarded this request here and its number there: the answer goes
    /// back to it rather than to the client.
    pub(super) origin: Option<(NodeId, u64)>,
}

impl Pending {
    /// Moves to phase 2 (`Accept`, or a read's `WriteBack`) proposing `record`. Phase 2's
    /// quorum counts only answers to its own message: phase 1's refusals (a promise lease
    /// since lapsed, say) say nothing of who will accept, so they are forgotten too.
    pub(super) fn enter_phase_two(&mut self, phase: Phase, record: Record) {
        assert!(matches!(phase, Phase::Accept | Phase::WriteBack), "{phase:?}");
        self.phase = phase;
        self.proposal = Some(record);
        self.acks.clear();
        self.nacks.clear();
    }
}

impl Majority {
    /// Starts (or restarts, after a refusal) phase 1 of request `id`.
    pub(super) fn begin(&mut self, ctx: &mut Context<'_, Self>, id: u64) {
        if self.damaged {
            // Its acceptor may have lost promises and values: it runs no phase.
            return self.route_damaged(ctx, id);
        }
        self.release_joined(id);
        let Some(p) = self.pending.get_mut(&id) else {
            return;
        };
        p.replies.clear();
        p.acks.clear();
        p.nacks.clear();
        let key = p.op.key();
        let msg = if matches!(p.op, Op::Get { .. }) && !p.rewrite {
            let read = self.next_ballot(ctx);
            let p = self.pending.get_mut(&id).expect("still pending");
            p.phase = Phase::Query;
            p.ballot = read;
            Message::Query { key, op: id, read }
        } else {
            let ballot = self.next_ballot(ctx);
            let p = self.pending.get_mut(&id).expect("still pending");
            p.phase = Phase::Prepare;
            p.ballot = ballot;
            Message::Prepare {
                key,
                op: id,
                ballot,
            }
        };
        ctx.set_timer(Timer::Retry(op_of(&msg)), self.phase_timeout);
        self.broadcast(ctx, msg);
    }

    /// A phase still short of replies after `phase_timeout` (lost messages, or slow links):
    /// its message goes again, same ballot, to the replicas that have not answered. Starting
    /// over with a new ballot instead would preempt the round's own promises (and, on links
    /// slower than the timeout, never finish a round).
    pub(super) fn resend(&mut self, ctx: &mut Context<'_, Self>, op: u64) {
        let Some(p) = self.pending.get(&op) else {
            return;
        };
        let key = p.op.key();
        let msg = match p.phase {
            Phase::Query => Message::Query {
                key,
                op,
                read: p.ballot,
            },
            Phase::Prepare => Message::Prepare {
                key,
                op,
                ballot: p.ballot,
            },
            Phase::Accept | Phase::WriteBack => Message::Accept {
                key,
                op,
                record: p.proposal.clone().expect("a proposal"),
                write_back: p.phase == Phase::WriteBack,
            },
            _ => return,
        };
        // Only an answer to this phase's message counts: a replica that promised in phase 1
        // and whose Accepted was lost holds nothing yet as far as this phase can tell, and
        // must hear the Accept again (ABD section 4: each phase retransmits until a quorum
        // answers *it*). Counting phase 1's replies here left a phase 2 short of its quorum
        // with nobody to resend to (swarm.toml seeds 495 and 623).
        let answered = |n: &NodeId| match p.phase {
            Phase::Query | Phase::Prepare => p.replies.contains_key(n) || p.nacks.contains(n),
            _ => p.acks.contains(n) || p.nacks.contains(n),
        };
        let silent: Vec<NodeId> = self.peers.iter().copied().filter(|n| !answered(n)).collect();
        for peer in silent {
            ctx.send(peer, msg.clone());
        }
        ctx.set_timer(Timer::Retry(op), self.phase_timeout);
    }

    pub(super) fn on_reply(&mut self, ctx: &mut Context<'_, Self>, from: NodeId, msg: Message) {
        match msg {
            Message::Promise {
                op,
                ballot,
                accepted,
                ..
            } => {
                let Some(p) = self.pending.get_mut(&op) else {
                    return;
                };
                if p.phase == Phase::Prepare && p.ballot == ballot {
                    p.replies.entry(from).or_insert((accepted, false));
                    self.maybe_decide(ctx, op);
                }
            }
            Message::QueryReply {
                op,
                read,
                accepted,
                chosen,
                ..
            } => {
                let Some(p) = self.pending.get_mut(&op) else {
                    return;
                };
                // Only an answer to this very query: a number may have been another request's
                // in an earlier incarnation (swarm.toml seed 179 read key 2's value for key 16).
                if p.phase == Phase::Query && p.ballot == read {
                    p.replies.entry(from).or_insert((accepted, chosen));
                    self.maybe_decide(ctx, op);
                }
            }
            Message::Accepted { op, version, .. }
                if self.expects(op, version, &[Phase::Accept, Phase::WriteBack]) =>
            {
                let p = self.pending.get_mut(&op).expect("expected");
                p.acks.insert(from);
                if p.acks.len() >= self.w {
                    self.finish(ctx, op);
                }
            }
            Message::Nack {
                op,
                refused,
                promised,
                ..
            } => self.on_nack(ctx, from, op, refused, promised),
            _ => {}
        }
    }

    /// Whether request `op` is in one of `phases` proposing `version`.
    pub(super) fn expects(&self, op: u64, version: Version, phases: &[Phase]) -> bool {
        self.pending.get(&op).is_some_and(|p| {
            let proposed = match p.phase {
                Phase::WriteBack => p.proposal.as_ref().map(|r| r.entry.version),
                _ => Some(p.ballot),
            };
            phases.contains(&p.phase) && proposed == Some(version)
        })
    }

    pub(super) fn on_nack(
        &mut self,
        ctx: &mut Context<'_, Self>,
        from: NodeId,
        op: u64,
        refused: Version,
        promised: Version,
    ) {
        self.observe(promised);
        let all = [Phase::Prepare, Phase::Accept, Phase::WriteBack];
        if !self.expects(op, refused, &all) {
            return;
        }
        let (n, r, w) = (self.n, self.r, self.w);
        let p = self.pending.get_mut(&op).expect("expected");
        p.nacks.insert(from);
        let needed = if p.phase == Phase::Prepare { r } else { w };
        if n - p.nacks.len() < needed {
            // A write-back is refused by promises to ballots above the value's version,
            // and a promise whose proposer died or gave up is never lifted but by a later
            // write: a read of a key nobody writes again would retry forever (swarm.toml
            // majority seed 156, gets of k144 unavailable after the heal). So the retry
            // takes a promise of its own, as CASPaxos reads do.
            p.rewrite |= p.phase == Phase::WriteBack;
            let (phase, nacks) = (p.phase, p.nacks.len());
            ctx.note(|| format!("op {op}: {phase:?} refused by {nacks} replicas; backing off"));
            self.back_off(ctx, op);
        }
    }

    pub(super) fn back_off(&mut self, ctx: &mut Context<'_, Self>, op: u64) {
        self.release_joined(op);
        let Some(p) = self.pending.get_mut(&op) else {
            return;
        };
        p.phase = Phase::Backoff;
        p.attempt += 1;
        // Exponential, so that dueling coordinators of one key drift apart.
        let k = 1u64 << p.attempt.min(5);
        let b = self.retry_backoff;
        let delay = SpanRange {
            min: Span(b.min.as_micros() * k),
            max: Span(b.max.as_micros() * k),
        };
        ctx.set_timer(Timer::Retry(op), delay);
    }

    /// A value of `key` was chosen: the coordinator that held the key is done, so requests
    /// of ours backing off on it retry now (after a small jitter, so that they do not all
    /// collide again), before newcomers take the key (fairness: fewer starved requests).
    pub(super) fn wake_waiting(&mut self, ctx: &mut Context<'_, Self>, key: Key) {
        let waiting = self
            .pending
            .iter()
            .filter(|(_, p)| p.phase == Phase::Backoff && p.op.key() == key);
        let ops: Vec<u64> = waiting.map(|(op, _)| *op).collect();
        for op in ops {
            ctx.set_timer(Timer::Retry(op), self.retry_backoff);
        }
    }

    /// The highest version among phase 1 replies, and an intact record of it if one came.
    pub(super) fn best(&self, p: &Pending) -> (Option<Version>, Option<Record>) {
        let mut top: Option<Version> = None;
        for (rec, _) in p.replies.values() {
            if let Some(rec) = rec {
                let v = rec.entry.version;
                if top.is_none_or(|t| self.cmp(v, t) == Ordering::Greater) {
                    top = Some(v);
                }
            }
        }
        let intact = p.replies.values().find_map(|(rec, _)| {
            rec.as_ref()
                .filter(|r| Some(r.entry.version) == top && r.entry.intact())
                .cloned()
        });
        (top, intact)
    }

    /// Phase 1 has a reply more: decide once there are enough.
    pub(super) fn maybe_decide(&mut self, ctx: &mut Context<'_, Self>, op: u64) {
        let p = self.pending.get(&op).expect("pending");
        if p.replies.len() < self.r {
            return;
        }
        let (top, intact) = self.best(p);
        if top.is_some() && intact.is_none() {
            // Only corrupt copies of the newest value so far: wait for an intact one.
            if p.replies.len() == self.n {
                self.back_off(ctx, op);
            }
            return;
        }
        if p.phase == Phase::Query || p.rewrite {
            self.decide_read(ctx, op, intact);
        } else {
            self.decide_write(ctx, op, intact);
        }
    }

    /// A get's phase 1 has R replies: it answers the newest value, once that value is on a
    /// write quorum. A plain read (a query) writes it back at its own version unless it is
    /// known there already. A rewrite (phase 1 under promises of its own) re-proposes it
    /// under this round's ballot, unchanged, with its session table (CASPaxos's read, the
    /// identity change: Rystsov 2018, section 2.2): promised to the ballot, the replicas
    /// take it where they refused the write-back at the value's older version, and as any
    /// proposal built on a promise quorum it cannot hide a value chosen since.
    pub(super) fn decide_read(
        &mut self,
        ctx: &mut Context<'_, Self>,
        op: u64,
        best: Option<Record>,
    ) {
        let (r, w) = (self.r, self.w);
        let skip = self.bugs.skip_write_back;
        let p = self.pending.get_mut(&op).expect("pending");
        let mut value = best.as_ref().and_then(|b| b.entry.value.clone());
        let result = kv::apply_to_value(&mut value, &p.op);
        let Some(mut best) = best else {
            // No replica of the read quorum holds anything: no write ever finished.
            return self.answer(ctx, op, result);
        };
        if p.rewrite {
            best.entry = Entry::new(p.ballot, best.entry.value);
        } else {
            let v = best.entry.version;
            let holding = p
                .replies
                .values()
                .filter(|(rec, _)| rec.as_ref().is_some_and(|x| x.entry.version == v));
            let (count, chosen) = holding.fold((0, false), |(c, ch), (_, f)| (c + 1, ch || *f));
            if skip || chosen || (r >= w && count >= w) {
                return self.answer(ctx, op, result);
            }
        }
        p.read_result = Some(result);
        p.enter_phase_two(Phase::WriteBack, best.clone());
        let key = p.op.key();
        let msg = Message::Accept {
            key,
            op,
            record: best,
            write_back: true,
        };
        ctx.set_timer(Timer::Retry(op_of(&msg)), self.phase_timeout);
        self.broadcast(ctx, msg);
    }

    /// A write quorum holds the proposal: answer, and tell everyone it is chosen.
    pub(super) fn finish(&mut self, ctx: &mut Context<'_, Self>, op: u64) {
        let p = self.pending.get(&op).expect("pending");
        let record = p.proposal.clone().expect("a proposal");
        // The requests that rode on this round are chosen with it.
        let joined: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, j)| j.phase == Phase::Joined(op))
            .map(|(id, _)| *id)
            .collect();
        for id in joined {
            let j = self.pending.remove(&id).expect("joined");
            ctx.cancel_timer(Timer::Deadline(id));
            match Self::write_result(&j, &record) {
                Some(result) => self.deliver_answer(ctx, &j, result),
                None => ctx.note(|| format!("{}: applied earlier elsewhere; answer unknown", j.request)),
            }
        }
        let p = self.pending.get(&op).expect("pending");
        let result = match p.phase {
            Phase::WriteBack => p.read_result.clone(),
            _ => Self::write_result(p, &record),
        };
        let (key, request) = (p.op.key(), p.request);
        self.broadcast(ctx, Message::Commit { key, record });
        match result {
            Some(result) => self.answer(ctx, op, result),
            None => {
                // Applied by another coordinator (a client's earlier try) and followed by
                // other requests since: its answer is lost, so the client times out.
                ctx.note(|| format!("{request}: applied earlier elsewhere; answer unknown"));
                self.pending.remove(&op);
                ctx.cancel_timer(Timer::Deadline(op));
                ctx.cancel_timer(Timer::Retry(op));
                self.maybe_start_queued(ctx, key);
            }
        }
    }

    pub(super) fn answer(&mut self, ctx: &mut Context<'_, Self>, op: u64, result: OpResult) {
        if let Some(p) = self.pending.remove(&op) {
            ctx.cancel_timer(Timer::Deadline(op));
            ctx.cancel_timer(Timer::Retry(op));
            self.deliver_answer(ctx, &p, result);
            self.maybe_start_queued(ctx, p.op.key());
        }
    }

    /// Queues again the requests that joined round `op`, which starts over or ends without
    /// a value chosen (a later round applies them).
    pub(super) fn release_joined(&mut self, op: u64) {
        for j in self.pending.values_mut() {
            if j.phase == Phase::Joined(op) {
                j.phase = Phase::Queued;
            }
        }
    }

    /// The writes of `key` waiting behind this node's round `op`, oldest first: they join it.
    pub(super) fn join_queued(&mut self, op: u64, key: Key) -> Vec<u64> {
        let mut joined = Vec::new();
        for (id, j) in self.pending.iter_mut() {
            if j.phase == Phase::Queued && j.op.key() == key {
                j.phase = Phase::Joined(op);
                joined.push(*id);
            }
        }
        joined
    }

    /// Whether a write of `key` this node coordinates is under way (not queued, and not
    /// forwarded to another node).
    pub(super) fn key_busy(&self, key: Key) -> bool {
        self.pending.values().any(|p| {
            p.op.is_write()
                && p.op.key() == key
                && !matches!(p.phase, Phase::Queued | Phase::Forwarded(_))
        })
    }

    /// Starts the oldest queued write of `key` once none is under way.
    pub(super) fn maybe_start_queued(&mut self, ctx: &mut Context<'_, Self>, key: Key) {
        if self.key_busy(key) {
            return;
        }
        let next = self
            .pending
            .iter()
            .find(|(_, p)| p.phase == Phase::Queued && p.op.key() == key)
            .map(|(op, _)| *op);
        if let Some(op) = next {
            self.begin(ctx, op);
        }
    }

    pub(super) fn on_deadline(&mut self, ctx: &mut Context<'_, Self>, op: u64) {
        self.release_joined(op);
        let Some(p) = self.pending.remove(&op) else {
            return;
        };
        ctx.cancel_timer(Timer::Retry(op));
        if p.op.is_write() {
            // A value of this request may sit on some replicas and be completed later, by
            // this coordinator's phase 2 or by that of a coordinator the client tried before
            // (a retry keeps the request id, and nothing here tells a retry from a first
            // try): "unavailable" would promise it never takes effect.
            ctx.note(|| format!("{}: no quorum in time; silent", p.request));
        } else {
            ctx.note(|| format!("{}: no quorum in time; unavailable", p.request));
            ctx.reply(p.request, OpResult::Unavailable { hint: None });
        }
        self.maybe_start_queued(ctx, p.op.key());
    }
}
