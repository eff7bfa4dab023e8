//! Sloppy quorums with hinted handoff (Dynamo, DeCandia et al. 2007, section 4.6): the talk
//! demo's AP mode. Always writable, eventually consistent.
//!
//! # Replicas, quorums
//!
//! Each key has a preference list: every node, in ring order from `hash(key)`. Its first N
//! nodes (`n`; 0 = every node, the default, because the convergence check compares every
//! node's whole store) are the key's replicas. A read waits for R replies, a write for W
//! acknowledgements (`r`, `w`; default 1 and 1: the coordinator's own replica suffices, so
//! any node that a client reaches answers, partitioned or not). A request's own quorum
//! ([`Request::quorum`]) replaces both, capped at N. Nothing requires R + W > N: reads may
//! be stale, which is the point of the mode.
//!
//! # Sloppy writes, hinted handoff
//!
//! A node is *down* for a coordinator once it missed an acknowledgement (`ack_timeout`), and
//! up again as soon as any message from it arrives. A write goes to the first N nodes of the
//! preference list that are up; each skipped node is replaced by the next node up beyond
//! the first N, which stores the value with a *hint* naming the node it stands in for (with
//! N = every node there is no node beyond, and a replica that is up carries the hint). A
//! target that fails to acknowledge in time is marked down and the coordinator keeps a hint
//! for it (and for the hints it carried). Every `handoff_interval` a node holding hints
//! probes their nodes ([`Message::Ping`]) and, once one answers, hands its hints back
//! ([`Message::Handoff`]); the node takes them (last writer wins), persists, acknowledges,
//! and only then is the hint deleted. Values and hints are persisted before the
//! acknowledgement that reveals them.
//!
//! Read-modify-writes (update, delete, cas, append) read R replicas first and apply
//! [`kv::apply_to_value`] to the newest value read, then write the result under a new
//! [`Version`] `(counter + 1, me)`: concurrent ones may both apply (last writer wins), and a
//! client's retry may apply twice. Hence linearizability and durability are measured, not
//! promised. A write that times out stays silent (a retry keeps the request id and an earlier
//! try may still land); a get that times out answers unavailable.
//!
//! # Repair
//!
//! After a read, replicas that answered with an older version (or a corrupt copy, see
//! [`crate::quorum`]) get the newest (read repair). A slow backstop: every `anti_entropy`
//! a node compares one bucket's digest with one peer ([`quorum::Rotation`]: every (peer,
//! bucket) pair in turn), and differing buckets are exchanged both ways. It covers every key
//! on every node, so replicas converge after heal whatever N is. The operator's trick-value
//! corrupts an entry (value changed, version and checksum kept); read repair and
//! anti-entropy replace it with any intact copy of its version.
//!
//! # Promises and checked invariants
//!
//! Convergent and live after heal. Each node also checks: no entry's version ever goes
//! back; the hints it holds are exactly those stored minus those handed back (a persisted
//! ledger: hints lost in a crash show); and no hint for a node is still held once that node
//! has answered continuously for [`HANDOFF_DEADLINE`] since the hint was stored.

use crate::contract::Request;
use crate::contract::{BugSpec, Context, NodeConfig, Operator, Promise, Protocol, ProtocolInfo};
use crate::digest::StableHasher;
use crate::ids::{NodeId, RequestId};
use crate::kv::{self, Key, Op, OpResult, Value};
use crate::params::{ParamKind, ParamSpec};
use crate::quorum::{self, bucket_of, Entry, Rotation, Version};
use crate::time::{Span, Time};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// A hint for a node that has answered without a break for this long must be handed back.
pub const HANDOFF_DEADLINE: Span = Span::secs(5);

/// Messages from a node further apart than this break its "answered continuously" run.
pub const CONTACT_GAP: Span = Span::millis(500);

/// At most this many hinted entries in one [`Message::Handoff`].
pub const HANDOFF_BATCH: usize = 64;

/// At most this many requests in flight at one coordinator; more are refused.
pub const PENDING_MAX: usize = 10_000;

const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "n",
        kind: ParamKind::Int,
        default: "0",
        description: "replicas per key N; 0 = every node",
    },
    ParamSpec {
        name: "r",
        kind: ParamKind::Int,
        default: "1",
        description: "read quorum R (capped at N; 0 = 1)",
    },
    ParamSpec {
        name: "w",
        kind: ParamKind::Int,
        default: "1",
        description: "write quorum W (capped at N; 0 = 1)",
    },
    ParamSpec {
        name: "request_timeout",
        kind: ParamKind::Span,
        default: "400ms",
        description: "how long a coordinator waits for R or W: a get answers unavailable, a \
                      write stays silent",
    },
    ParamSpec {
        name: "ack_timeout",
        kind: ParamKind::Span,
        default: "100ms",
        description: "a replica that has not answered within this is marked down (its write \
                      becomes a hint)",
    },
    ParamSpec {
        name: "handoff_interval",
        kind: ParamKind::Span,
        default: "100ms",
        description: "interval between probes of down nodes and hand-backs of hints",
    },
    ParamSpec {
        name: "anti_entropy",
        kind: ParamKind::Span,
        default: "200ms",
        description: "interval between one-bucket digest comparisons with the next peer",
    },
];

const BUGS: &[BugSpec] = &[
    BugSpec {
        name: "never-hand-back-hints",
        description: "hints are stored but never handed back: the stand-in only probes",
    },
    BugSpec {
        name: "drop-hints-on-crash",
        description: "hints are not reloaded after a restart, so a crashed stand-in forgets \
                      them",
    },
    BugSpec {
        name: "read-repair-writes-older",
        description: "read repair pushes the oldest version read, and replicas take a repair \
                      whatever its version",
    },
];

/// A value held for a node that was down.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Hint {
    /// The value to hand back.
    pub entry: Entry,
    /// When it was stored (this node's clock).
    pub stored_at: Time,
}

/// What survives a crash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SloppyDurable {
    /// This replica's entries.
    pub entries: BTreeMap<Key, Entry>,
    /// Hints held, by (intended node, key).
    pub hints: BTreeMap<(NodeId, Key), Hint>,
    /// No version this node issued has a greater counter.
    pub counter: u64,
    /// Hints ever stored (a new (node, key) pair).
    pub hints_stored: u64,
    /// Hints ever handed back.
    pub hints_delivered: u64,
}

/// What sloppy nodes send each other; `op` numbers a coordinator's requests.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Message {
    /// What do you hold for `key`?
    Fetch {
        /// The coordinator's request number.
        op: u64,
        /// The key.
        key: Key,
    },
    /// The answer to a fetch.
    Fetched {
        /// The coordinator's request number.
        op: u64,
        /// What the replica holds.
        entry: Option<Entry>,
    },
    /// Take `entry`, and hold it as a hint for each of `hints`.
    Store {
        /// The coordinator's request number (0: a read repair).
        op: u64,
        /// The key.
        key: Key,
        /// The value.
        entry: Entry,
        /// The nodes this one stands in for.
        hints: Vec<NodeId>,
        /// A read repair.
        repair: bool,
    },
    /// The answer to a store: persisted.
    Stored {
        /// The coordinator's request number.
        op: u64,
    },
    /// Hinted values handed back to the node they were meant for.
    Handoff {
        /// The values.
        entries: Vec<(Key, Entry)>,
    },
    /// The answer to a handoff: these are persisted, delete their hints.
    HandoffAck {
        /// Keys and versions taken (or superseded).
        done: Vec<(Key, Version)>,
    },
    /// Are you up?
    Ping,
    /// Yes.
    Pong,
    /// Anti-entropy: the digest of one bucket.
    Digest {
        /// The bucket.
        bucket: u16,
        /// Its digest.
        digest: u64,
    },
    /// Anti-entropy: the sender's entries of a bucket; with `reply`, send yours back.
    Entries {
        /// The bucket.
        bucket: u16,
        /// The sender's entries in it.
        entries: Vec<(Key, Entry)>,
        /// Whether the receiver should answer with its own.
        reply: bool,
    },
}

/// The timers a sloppy node arms.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Timer {
    /// Request `op` gives up.
    Deadline(u64),
    /// Request `op`'s silent replicas are marked down.
    AckCheck(u64),
    /// Probe down nodes, hand back hints.
    Handoff,
    /// Next anti-entropy round.
    AntiEntropy,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Read,
    Write,
    /// Answered a get; waiting for late replies to repair.
    Repair,
}

#[derive(Clone, Debug)]
struct Pending {
    request: RequestId,
    op: Op,
    r: usize,
    w: usize,
    /// Each target and the nodes it stands in for.
    targets: Vec<(NodeId, Vec<NodeId>)>,
    phase: Phase,
    replies: BTreeMap<NodeId, Option<Entry>>,
    acks: BTreeSet<NodeId>,
    entry: Option<Entry>,
    result: Option<OpResult>,
    answered: bool,
}

#[derive(Clone, Copy, Debug, Default)]
struct Bugs {
    never_hand_back: bool,
    drop_hints: bool,
    repair_older: bool,
}

/// One node of the sloppy-quorum store (see the module doc).
///
/// # Driving contract
///
/// As [`Protocol`] says. On start it arms [`Timer::Handoff`] and [`Timer::AntiEntropy`],
/// which re-arm themselves. It persists every change of entries or hints before the message
/// that reveals it; as a coordinator it serves its own replica inline.
#[derive(Debug)]
pub struct Sloppy {
    me: NodeId,
    nodes: Vec<NodeId>,
    peers: Vec<NodeId>,
    n: usize,
    r: usize,
    w: usize,
    request_timeout: Span,
    ack_timeout: Span,
    handoff_interval: Span,
    anti_entropy: Span,
    bugs: Bugs,
    entries: BTreeMap<Key, Entry>,
    hints: BTreeMap<(NodeId, Key), Hint>,
    counter: u64,
    hints_stored: u64,
    hints_delivered: u64,
    down: BTreeSet<NodeId>,
    /// Per peer, the first and last message of its current unbroken run of messages.
    heard: BTreeMap<NodeId, (Time, Time)>,
    now: Time,
    next_op: u64,
    pending: BTreeMap<u64, Pending>,
    rotation: Rotation,
    /// A broken invariant seen while handling (an entry's version went back).
    violation: Option<String>,
}

fn op_result_unavailable() -> OpResult {
    OpResult::Unavailable { hint: None }
}

impl Sloppy {
    fn persist(&self, ctx: &mut Context<'_, Self>) {
        ctx.persist(SloppyDurable {
            entries: self.entries.clone(),
            hints: self.hints.clone(),
            counter: self.counter,
            hints_stored: self.hints_stored,
            hints_delivered: self.hints_delivered,
        });
    }

    /// The preference list of `key`: every node, in ring order from the key's hash.
    fn preference(&self, key: Key) -> Vec<NodeId> {
        let count = self.nodes.len();
        let start = (StableHasher::hash_of(&key) % count as u64) as usize;
        (0..count)
            .map(|i| self.nodes[(start + i) % count])
            .collect()
    }

    fn up(&self, node: NodeId) -> bool {
        node == self.me || !self.down.contains(&node)
    }

    /// The write targets of `key`: the first N nodes up, stand-ins carrying hints for the
    /// skipped ones.
    fn plan(&self, key: Key) -> Vec<(NodeId, Vec<NodeId>)> {
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

    fn observe(&mut self, v: Version) {
        self.counter = self.counter.max(v.counter);
    }

    /// Installs `entry` if it supersedes ours (or, `forced`, whatever it is); whether it did.
    fn install(&mut self, key: Key, entry: Entry, forced: bool) -> bool {
        self.observe(entry.version);
        let current = self.entries.get(&key);
        if !forced && !entry.supersedes(current) {
            return false;
        }
        if current == Some(&entry) {
            return false;
        }
        if let Some(c) = current {
            if c.version > entry.version && self.violation.is_none() {
                self.violation = Some(format!(
                    "k{key}: version went back from {:?} to {:?}",
                    c.version, entry.version
                ));
            }
        }
        self.entries.insert(key, entry);
        true
    }

    /// Holds `entry` as a hint for `node`; whether anything changed.
    fn add_hint(&mut self, node: NodeId, key: Key, entry: &Entry) -> bool {
        if node == self.me || !entry.intact() {
            return false;
        }
        let stored_at = self.now;
        match self.hints.get_mut(&(node, key)) {
            Some(h) if entry.version > h.entry.version => {
                h.entry = entry.clone();
                h.stored_at = stored_at;
                true
            }
            Some(_) => false,
            None => {
                let hint = Hint {
                    entry: entry.clone(),
                    stored_at,
                };
                self.hints.insert((node, key), hint);
                self.hints_stored += 1;
                true
            }
        }
    }

    fn heard_from(&mut self, from: NodeId) {
        self.down.remove(&from);
        let now = self.now;
        let run = self.heard.entry(from).or_insert((now, now));
        if now.since(run.1) > CONTACT_GAP {
            run.0 = now;
        }
        run.1 = now;
    }

    fn send_or_serve(&mut self, ctx: &mut Context<'_, Self>, to: NodeId, msg: Message) {
        if to == self.me {
            if let Some(reply) = self.serve(ctx, msg) {
                let me = self.me;
                self.on_reply(ctx, me, reply);
            }
        } else {
            ctx.send(to, msg);
        }
    }

    /// A replica's side of fetch and store.
    fn serve(&mut self, ctx: &mut Context<'_, Self>, msg: Message) -> Option<Message> {
        match msg {
            Message::Fetch { op, key } => Some(Message::Fetched {
                op,
                entry: self.entries.get(&key).cloned(),
            }),
            Message::Store {
                op,
                key,
                entry,
                hints,
                repair,
            } => {
                let forced = repair && self.bugs.repair_older;
                let mut changed = self.install(key, entry.clone(), forced);
                for node in hints {
                    changed |= self.add_hint(node, key, &entry);
                }
                if changed {
                    self.persist(ctx);
                }
                Some(Message::Stored { op })
            }
            _ => None,
        }
    }

    fn begin(&mut self, ctx: &mut Context<'_, Self>, op: u64) {
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

    fn on_reply(&mut self, ctx: &mut Context<'_, Self>, from: NodeId, msg: Message) {
        match msg {
            Message::Fetched { op, entry } => {
                if let Some(e) = &entry {
                    self.observe(e.version);
                }
                let Some(p) = self.pending.get_mut(&op) else {
                    return;
                };
                if p.targets.iter().any(|(t, _)| *t == from) && p.phase != Phase::Write {
                    p.replies.insert(from, entry);
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

    /// The newest intact entry read, once R usable replies are in and no corrupt reply is
    /// newer: `Some(None)` when the key is absent everywhere read.
    fn read_outcome(p: &Pending) -> Option<Option<Entry>> {
        let usable = p
            .replies
            .values()
            .filter(|e| e.as_ref().is_none_or(Entry::intact))
            .count();
        if usable < p.r {
            return None;
        }
        let newest = p.replies.values().flatten().map(|e| e.version).max();
        let best = p
            .replies
            .values()
            .flatten()
            .filter(|e| e.intact())
            .max_by_key(|e| e.version);
        match (newest, best) {
            (None, _) => Some(None),
            (Some(v), Some(b)) if b.version == v => Some(Some(b.clone())),
            _ => None,
        }
    }

    fn progress(&mut self, ctx: &mut Context<'_, Self>, op: u64) {
        let Some(p) = self.pending.get(&op) else {
            return;
        };
        match p.phase {
            Phase::Read => {
                let Some(best) = Self::read_outcome(p) else {
                    return;
                };
                let mut value = best.as_ref().and_then(|e| e.value.clone());
                if !p.op.is_write() {
                    let result = kv::apply_to_value(&mut value, &p.op);
                    let request = p.request;
                    let p = self.pending.get_mut(&op).expect("pending");
                    p.phase = Phase::Repair;
                    p.answered = true;
                    p.entry = best;
                    ctx.reply(request, result);
                    ctx.cancel_timer(Timer::Deadline(op));
                    self.maybe_finish_read(ctx, op);
                    return;
                }
                let result = kv::apply_to_value(&mut value, &p.op);
                self.counter += 1;
                let version = Version {
                    counter: self.counter,
                    node: self.me,
                };
                let entry = Entry::new(version, value);
                let key = p.op.key();
                let targets = p.targets.clone();
                let p = self.pending.get_mut(&op).expect("pending");
                p.phase = Phase::Write;
                p.entry = Some(entry.clone());
                p.result = Some(result);
                // The counter must be durable before the version is seen anywhere.
                if !targets.iter().any(|(t, _)| *t == self.me) {
                    self.persist(ctx);
                }
                for (t, hints) in targets {
                    let msg = Message::Store {
                        op,
                        key,
                        entry: entry.clone(),
                        hints,
                        repair: false,
                    };
                    self.send_or_serve(ctx, t, msg);
                }
                ctx.set_timer(Timer::AckCheck(op), self.ack_timeout);
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

    fn maybe_finish_read(&mut self, ctx: &mut Context<'_, Self>, op: u64) {
        let p = &self.pending[&op];
        if p.replies.len() == p.targets.len() {
            self.read_repair(ctx, op);
            ctx.cancel_timer(Timer::AckCheck(op));
        }
    }

    /// Sends the newest entry read to every replica that answered with less; ends `op`.
    fn read_repair(&mut self, ctx: &mut Context<'_, Self>, op: u64) {
        let Some(p) = self.pending.remove(&op) else {
            return;
        };
        let key = p.op.key();
        let chosen = if self.bugs.repair_older {
            p.replies
                .values()
                .flatten()
                .min_by_key(|e| e.version)
                .cloned()
        } else {
            p.entry.clone()
        };
        let Some(best) = chosen else {
            return;
        };
        for (node, held) in &p.replies {
            let stale = match held {
                None => true,
                Some(h) if self.bugs.repair_older => h.version != best.version,
                Some(h) => best.supersedes(Some(h)),
            };
            if stale {
                ctx.note(|| format!("read repair of k{key} at {node}"));
                let msg = Message::Store {
                    op: 0,
                    key,
                    entry: best.clone(),
                    hints: Vec::new(),
                    repair: true,
                };
                self.send_or_serve(ctx, *node, msg);
            }
        }
    }

    fn on_ack_check(&mut self, ctx: &mut Context<'_, Self>, op: u64) {
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
        for (t, _) in &silent {
            if *t != self.me && self.down.insert(*t) {
                ctx.note(|| format!("{t} missed an ack: down"));
            }
        }
        match p.phase {
            Phase::Write => {
                // The coordinator stands in for every silent target.
                let key = p.op.key();
                let entry = p.entry.clone().expect("a write's entry");
                let answered = p.answered;
                let mut changed = false;
                for (t, carried) in silent {
                    for node in std::iter::once(t).chain(carried) {
                        changed |= self.add_hint(node, key, &entry);
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

    fn on_deadline(&mut self, ctx: &mut Context<'_, Self>, op: u64) {
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

    fn on_handoff_tick(&mut self, ctx: &mut Context<'_, Self>) {
        let mut by_node: BTreeMap<NodeId, Vec<(Key, Entry)>> = BTreeMap::new();
        for ((node, key), hint) in &self.hints {
            by_node
                .entry(*node)
                .or_default()
                .push((*key, hint.entry.clone()));
        }
        for (node, mut entries) in by_node {
            if self.bugs.never_hand_back || self.down.contains(&node) {
                ctx.send(node, Message::Ping);
            } else {
                entries.truncate(HANDOFF_BATCH);
                ctx.send(node, Message::Handoff { entries });
            }
        }
        let down: Vec<NodeId> = self.down.iter().copied().collect();
        for node in down {
            if !self.hints.keys().any(|(n, _)| *n == node) {
                ctx.send(node, Message::Ping);
            }
        }
        ctx.set_timer(Timer::Handoff, self.handoff_interval);
    }

    fn on_anti_entropy(&mut self, ctx: &mut Context<'_, Self>, from: NodeId, msg: Message) {
        match msg {
            Message::Digest { bucket, digest } if self.bucket_digest(bucket) != digest => {
                let entries = self.bucket_entries(bucket);
                let reply = true;
                let msg = Message::Entries {
                    bucket,
                    entries,
                    reply,
                };
                ctx.send(from, msg);
            }
            Message::Entries {
                bucket,
                entries,
                reply,
            } => {
                let mut changed = 0;
                for (key, entry) in entries {
                    changed += usize::from(self.install(key, entry, false));
                }
                if changed > 0 {
                    self.persist(ctx);
                    ctx.note(|| format!("anti-entropy with {from}: {changed} entries taken"));
                }
                if reply {
                    let entries = self.bucket_entries(bucket);
                    let reply = false;
                    ctx.send(
                        from,
                        Message::Entries {
                            bucket,
                            entries,
                            reply,
                        },
                    );
                }
            }
            _ => {}
        }
    }

    fn bucket_entries(&self, bucket: u16) -> Vec<(Key, Entry)> {
        self.entries
            .iter()
            .filter(|(k, _)| bucket_of(**k) == bucket)
            .map(|(k, e)| (*k, e.clone()))
            .collect()
    }

    fn bucket_digest(&self, bucket: u16) -> u64 {
        let digests = quorum::bucket_digests(self.entries.iter().map(|(k, e)| (*k, e)));
        digests[usize::from(bucket)]
    }
}

impl Protocol for Sloppy {
    type Message = Message;
    type Timer = Timer;
    type Durable = SloppyDurable;

    fn info() -> ProtocolInfo {
        ProtocolInfo {
            name: "sloppy",
            description: "sloppy quorums (Dynamo): writes to the first N healthy nodes with \
                          hinted handoff, read repair, last writer wins, anti-entropy. \
                          Available everywhere, eventually consistent",
            promises: &[Promise::Convergent, Promise::LiveAfterHeal],
            params: PARAMS,
            bugs: BUGS,
            transactions: false,
        }
    }

    fn start(
        ctx: &mut Context<'_, Self>,
        config: &NodeConfig,
        durable: Option<&SloppyDurable>,
    ) -> Self {
        let bugs = Bugs {
            never_hand_back: config.bug("never-hand-back-hints"),
            drop_hints: config.bug("drop-hints-on-crash"),
            repair_older: config.bug("read-repair-writes-older"),
        };
        let params = &config.params;
        let count = config.nodes.len();
        let n = match params.int("n") as usize {
            0 => count,
            n => n.min(count),
        };
        let quorum = |name: &str| (params.int(name) as usize).clamp(1, n.max(1));
        let mut node = Sloppy {
            me: config.id,
            nodes: config.nodes.clone(),
            peers: config.peers().collect(),
            n,
            r: quorum("r"),
            w: quorum("w"),
            request_timeout: params.span("request_timeout"),
            ack_timeout: Span(params.span("ack_timeout").as_micros().max(1)),
            handoff_interval: Span(params.span("handoff_interval").as_micros().max(1)),
            // A zero interval would re-fire at the same instant forever.
            anti_entropy: Span(params.span("anti_entropy").as_micros().max(1)),
            bugs,
            entries: BTreeMap::new(),
            hints: BTreeMap::new(),
            counter: 0,
            hints_stored: 0,
            hints_delivered: 0,
            down: BTreeSet::new(),
            heard: BTreeMap::new(),
            now: ctx.now(),
            next_op: 0,
            pending: BTreeMap::new(),
            rotation: Rotation::default(),
            violation: None,
        };
        if let Some(d) = durable {
            node.entries = d.entries.clone();
            node.counter = d.counter;
            node.hints_stored = d.hints_stored;
            node.hints_delivered = d.hints_delivered;
            if !bugs.drop_hints {
                node.hints = d.hints.clone();
            }
            let top = node.entries.values().map(|e| e.version.counter).max();
            node.counter = node.counter.max(top.unwrap_or(0));
        }
        ctx.set_timer(Timer::Handoff, node.handoff_interval);
        ctx.set_timer(Timer::AntiEntropy, node.anti_entropy);
        node
    }

    fn on_message(&mut self, ctx: &mut Context<'_, Self>, from: NodeId, msg: Message) {
        self.now = ctx.now();
        self.heard_from(from);
        match msg {
            Message::Fetch { .. } | Message::Store { .. } => {
                if let Some(reply) = self.serve(ctx, msg) {
                    ctx.send(from, reply);
                }
            }
            Message::Fetched { .. } | Message::Stored { .. } => self.on_reply(ctx, from, msg),
            Message::Handoff { entries } => {
                let mut changed = false;
                let mut done = Vec::new();
                for (key, entry) in entries {
                    done.push((key, entry.version));
                    changed |= self.install(key, entry, false);
                }
                if changed {
                    self.persist(ctx);
                }
                ctx.send(from, Message::HandoffAck { done });
            }
            Message::HandoffAck { done } => {
                let mut removed = 0;
                for (key, version) in done {
                    let matches = self
                        .hints
                        .get(&(from, key))
                        .is_some_and(|h| h.entry.version == version);
                    if matches {
                        self.hints.remove(&(from, key));
                        removed += 1;
                    }
                }
                if removed > 0 {
                    self.hints_delivered += removed;
                    self.persist(ctx);
                    ctx.note(|| format!("{removed} hints handed back to {from}"));
                }
            }
            Message::Ping => ctx.send(from, Message::Pong),
            Message::Pong => {}
            Message::Digest { .. } | Message::Entries { .. } => {
                self.on_anti_entropy(ctx, from, msg)
            }
        }
    }

    fn on_timer(&mut self, ctx: &mut Context<'_, Self>, timer: Timer) {
        self.now = ctx.now();
        match timer {
            Timer::Deadline(op) => self.on_deadline(ctx, op),
            Timer::AckCheck(op) => self.on_ack_check(ctx, op),
            Timer::Handoff => self.on_handoff_tick(ctx),
            Timer::AntiEntropy => {
                // A corrupt value that no write produced (tricked onto an absent key) has
                // no intact copy anywhere to repair it: drop it.
                let before = self.entries.len();
                self.entries
                    .retain(|_, e| e.intact() || e.version != Version::default());
                if self.entries.len() != before {
                    self.persist(ctx);
                }
                if !self.peers.is_empty() {
                    let (peer, bucket) = self.rotation.next(&self.peers);
                    let digest = self.bucket_digest(bucket);
                    ctx.send(peer, Message::Digest { bucket, digest });
                }
                ctx.set_timer(Timer::AntiEntropy, self.anti_entropy);
            }
        }
    }

    fn on_request(&mut self, ctx: &mut Context<'_, Self>, request: Request) {
        self.now = ctx.now();
        if self.pending.len() >= PENDING_MAX {
            if request.op.is_write() {
                ctx.note(|| format!("{}: too many requests pending; silent", request.id));
            } else {
                ctx.reply(request.id, op_result_unavailable());
            }
            return;
        }
        let (r, w) = match request.quorum {
            Some(q) => {
                let q = usize::from(q).clamp(1, self.n.max(1));
                (q, q)
            }
            None => (self.r, self.w),
        };
        let key = request.op.key();
        let targets = self.plan(key);
        self.next_op += 1;
        let op = self.next_op;
        let pending = Pending {
            request: request.id,
            op: request.op,
            r: r.min(targets.len()),
            w: w.min(targets.len()),
            targets,
            phase: Phase::Read,
            replies: BTreeMap::new(),
            acks: BTreeSet::new(),
            entry: None,
            result: None,
            answered: false,
        };
        self.pending.insert(op, pending);
        ctx.set_timer(Timer::Deadline(op), self.request_timeout);
        self.begin(ctx, op);
    }

    fn on_operator(&mut self, ctx: &mut Context<'_, Self>, command: Operator) {
        self.now = ctx.now();
        let Operator::TrickValue { key, value } = command else {
            ctx.note(|| format!("ignored operator command {command}"));
            return;
        };
        // Behind the protocol's back: the value changes, its version and checksum do not.
        match self.entries.get_mut(&key) {
            Some(entry) => entry.value = Some(value),
            None => {
                let entry = Entry {
                    version: Version::default(),
                    value: Some(value),
                    checksum: 0,
                };
                self.entries.insert(key, entry);
            }
        }
        self.persist(ctx);
    }

    fn store(&self) -> BTreeMap<Key, Value> {
        quorum::live_values(&self.entries)
    }

    fn digest(&self) -> u64 {
        quorum::store_digest(self.entries.iter().map(|(k, e)| (*k, e)))
    }

    fn check_invariants(&self) -> Result<(), String> {
        if let Some(v) = &self.violation {
            return Err(v.clone());
        }
        let ledger = self.hints_stored - self.hints_delivered.min(self.hints_stored);
        if self.hints.len() as u64 != ledger {
            return Err(format!(
                "{} hints stored and {} handed back, but {} held: hints lost",
                self.hints_stored,
                self.hints_delivered,
                self.hints.len()
            ));
        }
        for ((node, key), hint) in &self.hints {
            if let Some(&(since, last)) = self.heard.get(node) {
                let start = since.max(hint.stored_at);
                if last.since(start) > HANDOFF_DEADLINE {
                    return Err(format!(
                        "hint for {node} k{key} still held {} after {node} answered again",
                        crate::time::format_micros(last.since(start).as_micros())
                    ));
                }
            }
        }
        if self.pending.len() > PENDING_MAX {
            return Err(format!("{} requests pending", self.pending.len()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::Effect;
    use crate::ids::ClientId;
    use crate::params::Params;
    use crate::testkit::{configs, TestEntropy};

    /// A message on the wire: (from, to, message).
    type Wire = (NodeId, NodeId, Message);

    /// A hand-driven cluster: sends wait in `inflight` until a test delivers or drops them;
    /// timers fire only when a test fires them.
    struct Harness {
        configs: Vec<NodeConfig>,
        nodes: Vec<Sloppy>,
        durable: Vec<Option<SloppyDurable>>,
        inflight: Vec<Wire>,
        replies: Vec<(RequestId, OpResult)>,
        now: Time,
        entropy: TestEntropy,
    }

    fn n(i: u16) -> NodeId {
        NodeId(i)
    }

    fn req(seq: u64) -> RequestId {
        RequestId {
            client: ClientId(1),
            seq,
        }
    }

    fn put(key: Key, value: &str) -> Op {
        Op::Put {
            key,
            value: value.into(),
        }
    }

    impl Harness {
        fn new(count: u16, bugs: &[&'static str]) -> Harness {
            let configs = configs(count, &Params::defaults(Sloppy::info().params), bugs);
            let mut h = Harness {
                configs,
                nodes: Vec::new(),
                durable: vec![None; usize::from(count)],
                inflight: Vec::new(),
                replies: Vec::new(),
                now: Time(1_000),
                entropy: TestEntropy(3),
            };
            for i in 0..count {
                let node = h.boot(i);
                h.nodes.push(node);
            }
            h
        }

        fn boot(&mut self, i: u16) -> Sloppy {
            let mut effects = Vec::new();
            let config = self.configs[usize::from(i)].clone();
            let durable = self.durable[usize::from(i)].clone();
            let mut ctx = Context::new(n(i), self.now, true, &mut effects, &mut self.entropy);
            let node = Sloppy::start(&mut ctx, &config, durable.as_ref());
            self.apply(n(i), effects);
            node
        }

        fn restart(&mut self, i: u16) {
            self.inflight.retain(|(_, to, _)| *to != n(i));
            self.nodes[usize::from(i)] = self.boot(i);
        }

        fn run(&mut self, i: u16, f: impl FnOnce(&mut Sloppy, &mut Context<'_, Sloppy>)) {
            let mut effects = Vec::new();
            let mut ctx = Context::new(n(i), self.now, true, &mut effects, &mut self.entropy);
            f(&mut self.nodes[usize::from(i)], &mut ctx);
            self.apply(n(i), effects);
        }

        fn apply(&mut self, from: NodeId, effects: Vec<Effect<Sloppy>>) {
            for effect in effects {
                match effect {
                    Effect::Send { to, msg } => self.inflight.push((from, to, msg)),
                    Effect::Persist(d) => self.durable[from.index()] = Some(d),
                    Effect::Reply { request, result } => self.replies.push((request, result)),
                    Effect::SetTimer { .. } | Effect::CancelTimer { .. } | Effect::Note(_) => {}
                    Effect::Halt => panic!("sloppy never halts"),
                }
            }
        }

        fn request(&mut self, i: u16, id: RequestId, op: Op) {
            let call = Request {
                id,
                op,
                quorum: None,
            };
            self.run(i, |node, ctx| node.on_request(ctx, call));
        }

        fn deliver_where(&mut self, mut pick: impl FnMut(&Wire) -> bool) {
            for _ in 0..100_000 {
                let Some(at) = self.inflight.iter().position(&mut pick) else {
                    return;
                };
                let (from, to, msg) = self.inflight.remove(at);
                self.run(to.0, |node, ctx| node.on_message(ctx, from, msg));
            }
            panic!("messages never stopped");
        }

        fn deliver_all(&mut self) {
            self.deliver_where(|_| true);
        }

        /// Drops every message to or from `i` (a partitioned node).
        fn drop_for(&mut self, i: u16) {
            self.inflight.retain(|(f, t, _)| *f != n(i) && *t != n(i));
        }

        fn timer(&mut self, i: u16, timer: Timer) {
            self.run(i, |node, ctx| node.on_timer(ctx, timer));
        }

        fn reply(&self, id: RequestId) -> Option<&OpResult> {
            self.replies.iter().find(|(r, _)| *r == id).map(|(_, r)| r)
        }

        fn value(&self, i: u16, key: Key) -> Option<String> {
            self.nodes[usize::from(i)].store().get(&key).cloned()
        }
    }

    /// Writes k1=a at n0 while n2 is cut off; n0 ends up holding a hint for n2.
    fn write_while_n2_is_away(h: &mut Harness) {
        h.request(0, req(1), put(1, "a"));
        assert_eq!(
            h.reply(req(1)),
            Some(&OpResult::Ok {
                value: Some("a".into())
            }),
            "W = 1: the coordinator's own replica answers at once"
        );
        h.drop_for(2);
        h.deliver_all();
        h.timer(0, Timer::AckCheck(1));
        assert!(h.nodes[0].down.contains(&n(2)));
        assert!(h.nodes[0].hints.contains_key(&(n(2), 1)));
        assert_eq!(h.value(2, 1), None);
        h.nodes[0].check_invariants().unwrap();
    }

    #[test]
    fn a_hint_is_handed_back_when_its_node_answers_and_then_deleted() {
        let mut h = Harness::new(3, &[]);
        write_while_n2_is_away(&mut h);
        // The next write skips down n2: a replica that is up carries its hint.
        h.request(0, req(2), put(1, "b"));
        assert!(
            h.inflight.iter().all(|(_, to, _)| *to != n(2)),
            "n2 is skipped"
        );
        h.deliver_all();
        let carried = (0..2).any(|i| {
            h.nodes[i]
                .hints
                .get(&(n(2), 1))
                .is_some_and(|hint| hint.entry.value.as_deref() == Some("b"))
        });
        assert!(carried, "a replica that is up carries n2's hint");
        // n2 answers a probe, and gets the hint on the next tick.
        h.timer(0, Timer::Handoff);
        h.deliver_all();
        h.timer(0, Timer::Handoff);
        h.timer(1, Timer::Handoff);
        h.deliver_all();
        assert_eq!(h.value(2, 1).as_deref(), Some("b"));
        assert!(h.nodes[0].hints.is_empty() && h.nodes[1].hints.is_empty());
        for i in 0..3 {
            h.nodes[i].check_invariants().unwrap();
        }
    }

    #[test]
    fn hints_survive_a_crash_of_the_stand_in_and_are_lost_with_the_bug() {
        let mut h = Harness::new(3, &[]);
        write_while_n2_is_away(&mut h);
        h.restart(0);
        assert!(h.nodes[0].hints.contains_key(&(n(2), 1)));
        h.nodes[0].check_invariants().unwrap();

        let mut h = Harness::new(3, &["drop-hints-on-crash"]);
        write_while_n2_is_away(&mut h);
        h.restart(0);
        let broken = h.nodes[0].check_invariants().unwrap_err();
        assert!(broken.contains("hints lost"), "{broken}");
    }

    #[test]
    fn read_repair_brings_a_stale_replica_forward_and_the_bug_takes_it_back() {
        for bug in [None, Some("read-repair-writes-older")] {
            let bugs: Vec<&'static str> = bug.into_iter().collect();
            let mut h = Harness::new(3, &bugs);
            h.request(0, req(1), put(1, "a"));
            h.deliver_all();
            h.request(0, req(2), put(1, "b"));
            h.drop_for(2);
            h.deliver_all();
            assert_eq!(h.value(2, 1).as_deref(), Some("a"));
            h.request(1, req(3), Op::Get { key: 1 });
            h.deliver_all();
            assert_eq!(
                h.reply(req(3)),
                Some(&OpResult::Ok {
                    value: Some("b".into())
                })
            );
            let broken: Vec<String> = (0..3)
                .filter_map(|i| h.nodes[i].check_invariants().err())
                .collect();
            if bug.is_none() {
                assert_eq!(h.value(2, 1).as_deref(), Some("b"), "read repair");
                assert!(broken.is_empty(), "{broken:?}");
            } else {
                assert!(broken.iter().any(|b| b.contains("went back")), "{broken:?}");
            }
        }
    }

    #[test]
    fn a_tricked_value_is_never_served_and_anti_entropy_repairs_it() {
        let mut h = Harness::new(2, &[]);
        h.request(0, req(1), put(4, "a"));
        h.deliver_all();
        let trick = Operator::TrickValue {
            key: 4,
            value: "tricked".into(),
        };
        h.run(1, |node, ctx| node.on_operator(ctx, trick));
        assert_eq!(h.value(1, 4).as_deref(), Some("tricked"));
        // A read at n1 waits for an intact copy instead of serving its own.
        h.request(1, req(2), Op::Get { key: 4 });
        assert_eq!(h.reply(req(2)), None);
        h.deliver_all();
        assert_eq!(
            h.reply(req(2)),
            Some(&OpResult::Ok {
                value: Some("a".into())
            })
        );
        assert_eq!(h.value(1, 4).as_deref(), Some("a"), "read repair");
        // Trick again; anti-entropy of k4's bucket heals it.
        let trick = Operator::TrickValue {
            key: 4,
            value: "again".into(),
        };
        h.run(1, |node, ctx| node.on_operator(ctx, trick));
        for _ in 0..quorum::BUCKETS {
            h.timer(0, Timer::AntiEntropy);
            h.deliver_all();
        }
        assert_eq!(h.value(1, 4).as_deref(), Some("a"));
        assert_eq!(h.nodes[0].digest(), h.nodes[1].digest());
    }
}
