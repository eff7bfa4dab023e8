//! The coordinator (module doc, "Replicas, quorums" and "Sloppy writes"): a request's targets
//! from the preference list, its read of R replicas, a get's answer, a write's new version
//! sent to every target, acknowledgement checks that mark silent targets down, and deadlines.

use super::versions::{Clock, Versioned, Versions};
use super::{op_result_unavailable, Message, Sloppy, Timer};
use crate::contract::Context;
use crate::digest::StableHasher;
use crate::ids::{NodeId, RequestId};
use crate::kv::{self, Key, Op, OpResult, Value};
use crate::quorum::{Entry, Version};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    Read,
    Write,
    /// Answered a get; waiting for late replies to repair.
    Repair,
}

#[derive(Clone, Debug)]
pub(super) struct Pending {
    pub(super) request: RequestId,
    pub(super) op: Op,
    pub(super) r: usize,
    pub(super) w: usize,
    /// Each target and the nodes it stands in for.
    pub(super) targets: Vec<(NodeId, Vec<NodeId>)>,
    pub(super) phase: Phase,
    pub(super) replies: BTreeMap<NodeId, Versions>,
    pub(super) acks: BTreeSet<NodeId>,
    /// A get's merged read (to repair with), or a write's one new version.
    pub(super) versions: Versions,
    pub(super) result: Option<OpResult>,
    pub(super) answered: bool,
    /// Whether the silent targets were asked once more (see `on_ack_check`).
    pub(super) retried: bool,
}

impl Sloppy {
    /// The preference list of `key`: every node, in ring order from the key's hash.
    pub(super) fn preference(&self, key: Key) -> Vec<NodeId> {
        let count = self.nodes.len();
        let start = (StableHasher::hash_of(&key) % count as u64) as usize;
        (0..count)
            .map(|i| self.nodes[(start + i) % count])
            .collect()
    }

    pub(super) fn up(&self, node: NodeId) -> bool {
        node == self.me || !self.down.contains(&node)
    }

    /// The write targets of `key`: the first N nodes up, stand-ins carrying hints for the
    /// skipped ones.
    pub(super) fn plan(&self, key: Key) -> Vec<(NodeId, Vec<NodeId>)> {
        let pref = self.preference(key);
        let (top, rest) = pref.split_at(self.n);
        let mut targets: Vec<(NodeId, Vec<NodeId>)> = Vec::new();
        let mut skipped = Vec::new();
        for &node in top {
            if self.up(node) {
                targets.push((node, Vec::new()));
            } else {
                skipped.push(node);
            }
        }
        let mut skipped = skipped.into_iter();
        for &node in rest.iter().filter(|n| self.up(**n)) {
            match skipped.next() {
                Some(s) => targets.push((node, vec![s])),
                None => break,
            }
        }
        let leftover: Vec<NodeId> = skipped.collect();
        if !leftover.is_empty() {
            match targets.first_mut() {
                Some((_, hints)) => hints.extend(leftover),
                None => targets.push((self.me, leftover)),
            }
        }
        targets
    }

    pub(super) fn send_or_serve(&mut self, ctx: &mut Context<'_, Self>, to: NodeId, msg: Message) {
        if to == self.me {
            if let Some(reply) = self.serve(ctx, msg) {
                let me = self.me;
                self.on_reply(ctx, me, reply);
            }
        } else {
            ctx.send(to, msg);
        }
    }

    pub(super) fn begin(&mut self, ctx: &mut Context<'_, Self>, op: u64) {
        let p = &self.pending[&op];
        let key = p.op.key();
        // Remote fetches first: serving our own replica inline may already decide.
        let mut targets: Vec<NodeId> = p.targets.iter().map(|(t, _)| *t).collect();
        targets.sort_by_key(|t| *t == self.me);
        for t in targets {
            self.send_or_serve(ctx, t, Message::Fetch { op, key });
        }
        ctx.set_timer(Timer::AckCheck(op), self.ack_timeout);
    }

    pub(super) fn on_reply(&mut self, ctx: &mut Context<'_, Self>, from: NodeId, msg: Message) {
        match msg {
            Message::Fetched { op, versions } => {
                for v in versions.iter() {
                    self.observe(v.entry.version);
                }
                let Some(p) = self.pending.get_mut(&op) else {
                    return;
                };
                if p.targets.iter().any(|(t, _)| *t == from) && p.phase != Phase::Write {
                    p.replies.insert(from, versions);
                    self.progress(ctx, op);
                }
            }
            Message::Stored { op } => {
                let Some(p) = self.pending.get_mut(&op) else {
                    return;
                };
                if p.phase == Phase::Write {
                    p.acks.insert(from);
                    self.progress(ctx, op);
                }
            }
            _ => {}
        }
    }

    /// The intact versions read, merged by the conflict rule, once R usable replies (no
    /// corrupt copy in them) are in and every corrupt copy read is covered by an intact
    /// version (see [`Versions::covers`]): empty when the key is absent everywhere read.
    pub(super) fn read_outcome(p: &Pending, siblings: bool) -> Option<Versions> {
        let usable = p
            .replies
            .values()
            .filter(|vs| vs.iter().all(|v| v.entry.intact()))
            .count();
        if usable < p.r {
            return None;
        }
        let read = || p.replies.values().flat_map(Versions::iter);
        let mut merged = Versions::default();
        for v in read() {
            merged.take(v.clone(), siblings);
        }
        let covered = read()
            .filter(|v| !v.entry.intact())
            .all(|c| merged.covers(c, siblings));
        covered.then_some(merged)
    }

    pub(super) fn progress(&mut self, ctx: &mut Context<'_, Self>, op: u64) {
        let Some(p) = self.pending.get(&op) else {
            return;
        };
        match p.phase {
            Phase::Read => {
                let Some(read) = Self::read_outcome(p, self.siblings) else {
                    return;
                };
                if p.op.is_write() {
                    self.start_write(ctx, op, read);
                } else {
                    self.answer_get(ctx, op, read);
                }
            }
            Phase::Write => {
                if !p.answered && p.acks.len() >= p.w {
                    let request = p.request;
                    let result = p.result.clone().expect("a write's result");
                    let p = self.pending.get_mut(&op).expect("pending");
                    p.answered = true;
                    ctx.reply(request, result);
                    ctx.cancel_timer(Timer::Deadline(op));
                }
                let p = &self.pending[&op];
                if p.answered && p.acks.len() == p.targets.len() {
                    self.pending.remove(&op);
                    ctx.cancel_timer(Timer::AckCheck(op));
                }
            }
            Phase::Repair => self.maybe_finish_read(ctx, op),
        }
    }

    /// Answers a get from the merged `read`: its concurrent values when it holds two or
    /// more (Dynamo section 4.4), else its newest value; then waits to repair.
    pub(super) fn answer_get(&mut self, ctx: &mut Context<'_, Self>, op: u64, read: Versions) {
        let p = self.pending.get_mut(&op).expect("pending");
        let result = match read.sibling_values() {
            Some(values) => OpResult::Siblings { values },
            None => {
                let mut value = read.newest().and_then(|v| v.entry.value.clone());
                kv::apply_to_value(&mut value, &p.op)
            }
        };
        p.phase = Phase::Repair;
        p.answered = true;
        p.versions = read;
        ctx.reply(p.request, result);
        ctx.cancel_timer(Timer::Deadline(op));
        self.maybe_finish_read(ctx, op);
    }

    /// Applies a write to the newest version it knows and sends the result, under a new
    /// version superseding every version it knows, to every target.
    pub(super) fn start_write(&mut self, ctx: &mut Context<'_, Self>, op: u64, read: Versions) {
        let p = &self.pending[&op];
        let key = p.op.key();
        let known = self.context(key, read);
        let mut value = known.newest().and_then(|v| v.entry.value.clone());
        let result = kv::apply_to_value(&mut value, &p.op);
        let targets = p.targets.clone();
        let new = self.next_version(&known, value);
        let p = self.pending.get_mut(&op).expect("pending");
        p.phase = Phase::Write;
        p.retried = false;
        p.versions = Versions::one(new.clone());
        p.result = Some(result);
        // The counter must be durable before the version is seen anywhere.
        if !targets.iter().any(|(t, _)| *t == self.me) {
            self.persist(ctx);
        }
        for (t, hints) in targets {
            let msg = Message::Store {
                op,
                key,
                entry: new.clone(),
                hints,
                repair: false,
            };
            self.send_or_serve(ctx, t, msg);
        }
        ctx.set_timer(Timer::AckCheck(op), self.ack_timeout);
    }

    /// The versions a write supersedes: those `read` and, with siblings, the intact ones
    /// this coordinator's own replica holds (our clients send Dynamo no context: the
    /// coordinator's knowledge is the context; see the module doc).
    pub(super) fn context(&self, key: Key, read: Versions) -> Versions {
        let mut known = read;
        if self.siblings {
            for v in self.entries.get(&key).into_iter().flat_map(Versions::iter) {
                known.take_concurrent(v.clone());
            }
        }
        known
    }

    /// A new write's version: the next counter and, with siblings, a clock descending from
    /// every version `known`, with this node's entry set to the counter (Dynamo section
    /// 4.4). The counter exceeds every one this node has seen, so the clock is new.
    pub(super) fn next_version(&mut self, known: &Versions, value: Option<Value>) -> Versioned {
        self.counter += 1;
        let version = Version {
            counter: self.counter,
            node: self.me,
        };
        let mut clock = Clock::new();
        if self.siblings {
            clock = known.clock_join();
            clock.insert(self.me, self.counter);
        }
        Versioned {
            entry: Entry::new(version, value),
            clock,
        }
    }

    pub(super) fn on_ack_check(&mut self, ctx: &mut Context<'_, Self>, op: u64) {
        let Some(p) = self.pending.get(&op) else {
            return;
        };
        let silent: Vec<(NodeId, Vec<NodeId>)> = p
            .targets
            .iter()
            .filter(|(t, _)| match p.phase {
                Phase::Write => !p.acks.contains(t),
                _ => !p.replies.contains_key(t),
            })
            .cloned()
            .collect();
        // A lossy link loses one message now and then: before a silent target is marked
        // down, it is asked once more (the request's fetch or store resent), as dynamo's
        // coordinator does. Without it a write asking all N acknowledgements (a request
        // quorum at or above N) failed on one lost Store or ack, retries or not: on a 5%
        // lossy network a third of such writes timed out after the heal.
        if !p.retried && !silent.is_empty() && p.phase != Phase::Repair {
            let key = p.op.key();
            let resend: Vec<(NodeId, Message)> = silent
                .iter()
                .map(|(t, hints)| {
                    let msg = match p.phase {
                        Phase::Write => Message::Store {
                            op,
                            key,
                            entry: p.versions.newest().cloned().expect("a write's version"),
                            hints: hints.clone(),
                            repair: false,
                        },
                        _ => Message::Fetch { op, key },
                    };
                    (*t, msg)
                })
                .collect();
            self.pending.get_mut(&op).expect("pending").retried = true;
            for (t, msg) in resend {
                self.send_or_serve(ctx, t, msg);
            }
            ctx.set_timer(Timer::AckCheck(op), self.ack_timeout);
            return;
        }
        for (t, _) in &silent {
            if *t != self.me && self.down.insert(*t) {
                // Its run of answers ends here: the hand-back deadline counts only while
                // this node holds it up (see `HANDOFF_DEADLINE`).
                self.heard.remove(t);
                ctx.note(|| format!("{t} missed an ack: down"));
            }
        }
        match p.phase {
            Phase::Write => {
                // The coordinator stands in for every silent target.
                let key = p.op.key();
                let written = p.versions.clone();
                let answered = p.answered;
                let mut changed = false;
                for (t, carried) in silent {
                    for node in std::iter::once(t).chain(carried) {
                        for v in written.iter() {
                            changed |= self.add_hint(node, key, v);
                        }
                    }
                }
                if changed {
                    self.persist(ctx);
                }
                if answered {
                    self.pending.remove(&op);
                }
            }
            Phase::Repair => self.read_repair(ctx, op),
            Phase::Read => {}
        }
    }

    pub(super) fn on_deadline(&mut self, ctx: &mut Context<'_, Self>, op: u64) {
        let Some(p) = self.pending.get(&op) else {
            return;
        };
        if p.answered {
            return;
        }
        let p = self.pending.remove(&op).expect("pending");
        ctx.cancel_timer(Timer::AckCheck(op));
        if p.op.is_write() {
            ctx.note(|| format!("{}: no write quorum in time; silent", p.request));
        } else {
            ctx.note(|| format!("{}: no read quorum in time; unavailable", p.request));
            ctx.reply(p.request, op_result_unavailable());
        }
    }
}
