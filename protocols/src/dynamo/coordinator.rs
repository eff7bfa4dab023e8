//! The coordinator (module doc, "Replicas, quorums" and "Dynamo writes"): a request's targets
//! from the preference list, its read of R replicas, a get's answer, a write's new version
//! sent to every target, acknowledgement checks that mark silent targets down, and deadlines.

use super::versions::{Clock, Versioned, Versions};
use super::versions::truncate;
use super::{op_result_unavailable, Dynamo, Member, Message, Timer};
use crate::contract::{CausalContext, Context};
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
    /// PENDING nodes that also take a write, counting toward no quorum.
    pub(super) extra: Vec<NodeId>,
    pub(super) phase: Phase,
    pub(super) replies: BTreeMap<NodeId, Versions>,
    pub(super) acks: BTreeSet<NodeId>,
    /// A get's merged read (to repair with), or a write's one new version.
    pub(super) versions: Versions,
    pub(super) result: Option<OpResult>,
    pub(super) answered: bool,
    /// Whether silent targets were asked a second time.
    pub(super) retried: bool,
}

impl Dynamo {
    pub(super) fn up(&self, node: NodeId) -> bool {
        node == self.me || !self.down.contains(&node)
    }

    /// The targets of `key` (section 4.6): the first N members up of its preference list in
    /// the READY ring, stand-ins further along carrying hints for the skipped ones; and the
    /// PENDING nodes among the first N of the ring with them, which take writes too.
    pub(super) fn plan(&self, key: Key) -> (Vec<(NodeId, Vec<NodeId>)>, Vec<NodeId>) {
        let pref = self.read_ring.preference(key);
        let (top, rest) = pref.split_at(self.replicas().min(pref.len()));
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
        let mut with_pending = self.write_ring.preference(key);
        with_pending.truncate(self.n);
        let extra = with_pending
            .into_iter()
            .filter(|x| self.members.get(x) == Some(&Member::Pending))
            .filter(|x| !targets.iter().any(|(t, _)| t == x))
            .collect();
        (targets, extra)
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
                // A PENDING node's acknowledgement counts toward no quorum.
                if p.phase == Phase::Write && p.targets.iter().any(|(t, _)| *t == from) {
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
    pub(super) fn read_outcome(p: &Pending, cmp: super::Compare) -> Option<Versions> {
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
            merged.take(v.clone(), cmp);
        }
        let covered = read()
            .filter(|v| !v.entry.intact())
            .all(|c| merged.covers(c));
        covered.then_some(merged)
    }

    pub(super) fn progress(&mut self, ctx: &mut Context<'_, Self>, op: u64) {
        let Some(p) = self.pending.get(&op) else {
            return;
        };
        match p.phase {
            Phase::Read => {
                let Some(read) = Self::read_outcome(p, self.cmp) else {
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
        // The merged context of the versions it answers (section 4.4), for a client that
        // writes back with it; the engine drops it for clients that do not.
        let context = clock_context(&read.clock_join());
        p.versions = read;
        ctx.reply_with_context(p.request, result, context);
        ctx.cancel_timer(Timer::Deadline(op));
        self.maybe_finish_read(ctx, op);
    }

    /// Applies a write to the newest version it knows and sends the result, under a new
    /// version superseding every version it knows, to every target; a write that changes
    /// nothing is answered from its read instead, and writes nothing.
    pub(super) fn start_write(&mut self, ctx: &mut Context<'_, Self>, op: u64, read: Versions) {
        let p = &self.pending[&op];
        let key = p.op.key();
        let known = self.context(key, read.clone());
        let mut value = reconcile(&known, &p.op);
        let result = kv::apply_to_value(&mut value, &p.op);
        if writes_nothing(&result) {
            self.answer_unwritten(ctx, op, read, result);
            return;
        }
        let new = self.next_version(&known, value);
        self.own.insert(key, new.clone());
        self.send_write(ctx, op, new, result);
    }

    /// A put or delete that came with the client's causal context (Dynamo section 4.4: "the
    /// client must specify which version it is updating by passing the context it obtained
    /// from an earlier read"): no read round. Its version's clock is the context with one
    /// actor's entry set to the next counter, so it supersedes exactly the versions the
    /// context covers. The actor is this node when the context covers this node's newest
    /// write of the key (an entry claims every earlier write of its actor), else one of this
    /// node's stand-in actors for the key whose last write the context covers (see
    /// [`Dynamo::context_actor`]). A delete writes a tombstone whatever the context held.
    pub(super) fn start_context_write(
        &mut self,
        ctx: &mut Context<'_, Self>,
        op: u64,
        mut clock: Clock,
    ) {
        let p = &self.pending[&op];
        let key = p.op.key();
        let value = match &p.op {
            Op::Put { value, .. } => Some(value.clone()),
            _ => None,
        };
        let result = OpResult::Ok {
            value: value.clone(),
        };
        if self.bugs.context_ignored {
            // The planted bug: the context is merged with everything this coordinator holds
            // of the key, so the write supersedes concurrent versions its client never saw.
            let held = self.context(key, Versions::default());
            for (node, c) in held.clock_join() {
                let e = clock.entry(node).or_insert(0);
                *e = (*e).max(c);
            }
        }
        let actor = self.context_actor(key, &clock);
        // Lamport: the new version must be newer than every version the context covers, as
        // a read round's replies would have made it (a version that supersedes another never
        // has the smaller counter: the replicas' "versions never go back").
        let seen = clock.values().copied().max().unwrap_or(0);
        self.counter = self.counter.max(seen);
        self.counter += 1;
        let version = Version {
            counter: self.counter,
            node: self.me,
        };
        clock.insert(actor, self.counter);
        truncate(&mut clock, self.clock_max, actor, self.bugs.truncate_newest);
        let new = Versioned {
            entry: Entry::new(version, value),
            clock,
        };
        if actor == self.me {
            self.own.insert(key, new.clone());
        } else {
            self.actors.insert((key, actor), self.counter);
        }
        self.send_write(ctx, op, new, result);
    }

    /// The actor a context write of `key` takes its clock entry under: this node if
    /// `context` covers its newest write of the key, else the first of its stand-in actors
    /// (`n + 64`, `n + 128`, ...: no node has such a number) whose last write of the key
    /// `context` covers, or that never wrote it. An entry `a: c` in a clock claims every
    /// write of actor `a` with a counter up to `c`, so taking this node's entry when the
    /// client had not seen its newest write would supersede that write (server-side vector
    /// clocks cannot tell two writes through one coordinator apart: the problem dotted
    /// version vectors solve, Preguiça et al. 2010). Each actor's last write is durable
    /// before its version leaves.
    pub(super) fn context_actor(&self, key: Key, context: &Clock) -> NodeId {
        let seen = |actor: NodeId| context.get(&actor).copied().unwrap_or(0);
        let own = self.own.get(&key).map_or(0, |v| v.entry.version.counter);
        if seen(self.me) >= own {
            return self.me;
        }
        let mut last = NodeId(self.me.0);
        for k in 1..1024u32 {
            let Ok(id) = u16::try_from(u32::from(self.me.0) + 64 * k) else {
                break;
            };
            let actor = NodeId(id);
            let written = self.actors.get(&(key, actor)).copied().unwrap_or(0);
            if seen(actor) >= written {
                return actor;
            }
            last = actor;
        }
        last
    }

    /// Sends a write's new version to every target and PENDING node, once the counter and
    /// its actor's newest write of the key are durable (before the version is seen anywhere).
    fn send_write(&mut self, ctx: &mut Context<'_, Self>, op: u64, new: Versioned, result: OpResult) {
        let p = &self.pending[&op];
        let key = p.op.key();
        let targets = p.targets.clone();
        let extra = p.extra.clone();
        let p = self.pending.get_mut(&op).expect("pending");
        p.phase = Phase::Write;
        p.retried = false;
        p.versions = Versions::one(new.clone());
        p.result = Some(result);
        self.persist(ctx);
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
        for t in extra {
            let msg = Message::Store {
                op,
                key,
                entry: new.clone(),
                hints: Vec::new(),
                repair: true,
            };
            self.send_or_serve(ctx, t, msg);
        }
        ctx.set_timer(Timer::AckCheck(op), self.ack_timeout);
    }

    /// Answers a write that changes nothing (see [`writes_nothing`]) as a get is answered:
    /// at once from its read, which then repairs the replicas that lack some of it. No
    /// version is written, so no sibling it read is superseded.
    fn answer_unwritten(
        &mut self,
        ctx: &mut Context<'_, Self>,
        op: u64,
        read: Versions,
        result: OpResult,
    ) {
        let p = self.pending.get_mut(&op).expect("pending");
        p.phase = Phase::Repair;
        p.answered = true;
        p.versions = read;
        ctx.reply(p.request, result);
        ctx.cancel_timer(Timer::Deadline(op));
        self.maybe_finish_read(ctx, op);
    }

    /// The versions a write supersedes, its context: those `read`, the intact ones this
    /// coordinator's own replica holds, and its own last write of the key (our clients send
    /// no context; see the module doc).
    pub(super) fn context(&self, key: Key, read: Versions) -> Versions {
        let mut known = read;
        for v in self.entries.get(&key).into_iter().flat_map(Versions::iter) {
            known.take(v.clone(), self.cmp);
        }
        // A clock's entry for this node claims every earlier write this node made of the key:
        // a coordinator that is no replica of the key must still know its last write of it,
        // or its next write's clock would claim to supersede a write it never saw.
        if let Some(mine) = self.own.get(&key) {
            known.take(mine.clone(), self.cmp);
        }
        known
    }

    /// A new write's version (section 4.4): the next counter, and a clock descending from
    /// every version of its context, with this node's entry set to the counter, truncated
    /// to `clock_max` pairs. The counter exceeds every one this node has seen, so the clock
    /// is new.
    pub(super) fn next_version(&mut self, known: &Versions, value: Option<Value>) -> Versioned {
        self.counter += 1;
        let version = Version {
            counter: self.counter,
            node: self.me,
        };
        let mut clock = known.clock_join();
        clock.insert(self.me, self.counter);
        truncate(&mut clock, self.clock_max, self.me, self.bugs.truncate_newest);
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
        // down, it is asked once more (the request's fetch or store resent).
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

/// A clock as the contract's causal context: its (node, counter) pairs.
pub(super) fn clock_context(clock: &Clock) -> CausalContext {
    CausalContext::from_pairs(clock.iter().map(|(n, c)| (u32::from(n.0), *c)))
}

/// A client's causal context as a clock: pairs naming no possible actor (above `u16::MAX`)
/// are dropped, as no version could carry them.
pub(super) fn context_clock(context: &CausalContext) -> Clock {
    let pairs = context.pairs().iter();
    pairs
        .filter_map(|(a, c)| u16::try_from(*a).ok().map(|a| (NodeId(a), *c)))
        .collect()
}

/// Whether a write's result says it changed nothing: a cas that found another value than
/// it expected, an update or a delete of an absent key. Such an operation writes no version
/// (section 4.4: a put creates one; a conditional write whose condition failed is no put).
/// Writing the value it read back, under a clock covering every sibling it read, would
/// supersede the siblings that are not the newest: an acknowledged put concurrent with the
/// newest sibling vanished behind a failed cas that reported changing nothing
/// (`swarm.toml` seed 24, and a delete's tombstone on seed 29).
fn writes_nothing(result: &OpResult) -> bool {
    matches!(
        result,
        OpResult::PreconditionFailed { .. } | OpResult::NotFound
    )
}

/// The value a write reconciles its context to before applying its operation: the newest
/// sibling; for an append, the union of the live siblings (section 4.4's shopping cart: a
/// merge loses no added item), so that no acknowledged append vanishes. The union is the
/// first sibling (in sorted order) and then, from each other one, the items it holds that
/// the union does not yet, in its order: an item is a `;`-terminated append value (the
/// workload's), or what is left after the last one. (Concatenating whole siblings doubled
/// the value at every merge: 35 MB in 100 operations on `swarm.toml` seed 1; keeping only
/// their shared prefix once still repeated every item after it, and siblings that diverged
/// and merged again through partitions reached 3.9 MB of 127 distinct items in 3 s on seed
/// 174, then exhausted memory.)
fn reconcile(known: &Versions, op: &Op) -> Option<Value> {
    let newest = known.newest().and_then(|v| v.entry.value.clone());
    if !matches!(op, Op::Append { .. }) || known.len() < 2 {
        return newest;
    }
    let mut live: Vec<&Value> = known.iter().filter_map(|v| v.entry.value.as_ref()).collect();
    live.sort();
    live.dedup();
    let (first, rest) = live.split_first()?;
    let mut union = first.to_string();
    let mut held: BTreeSet<&str> = items(first).collect();
    for sibling in rest {
        for item in items(sibling) {
            if held.insert(item) {
                union.push_str(item);
            }
        }
    }
    Some(Value::from(union))
}

/// The items of an append-built value: each `;`-terminated piece, and what follows the
/// last `;`, if anything.
fn items(value: &str) -> impl Iterator<Item = &str> {
    value.split_inclusive(';')
}

#[cfg(test)]
mod tests {
    use super::{items, reconcile};
    use crate::dynamo::versions::{Clock, Versioned, Versions};
    use crate::ids::NodeId;
    use crate::kv::Op;
    use crate::quorum::{Entry, Version};

    fn sibling(node: u16, value: &str) -> Versioned {
        let version = Version {
            counter: 1,
            node: NodeId(node),
        };
        let clock: Clock = [(NodeId(node), 1)].into_iter().collect();
        Versioned {
            entry: Entry::new(version, Some(value.into())),
            clock,
        }
    }

    /// Section 4.4's merge of divergent append-only siblings (the shopping cart): every
    /// item of every sibling once, the first sibling's in its order, then the others' new
    /// ones; an item no sibling holds twice is never repeated, however often they merge.
    #[test]
    fn an_append_reconciles_siblings_into_the_union_of_their_items() {
        assert_eq!(items("c1.1;c2.1;x").collect::<Vec<_>>(), ["c1.1;", "c2.1;", "x"]);
        let mut vs = Versions::default();
        for (i, v) in ["a;b;c;", "a;b;d;", "d;a;e;"].iter().enumerate() {
            vs.0.push(sibling(i as u16, v));
        }
        let op = Op::Append {
            key: 1,
            value: "f;".into(),
        };
        assert_eq!(reconcile(&vs, &op).as_deref(), Some("a;b;c;d;e;"));
    }
}
