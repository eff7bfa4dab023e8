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
//! ([`Message::Handoff`]); the node takes them (by the conflict rule, below), persists,
//! acknowledges, and only then is the hint deleted. Values and hints are persisted before the
//! acknowledgement that reveals them.
//!
//! Every write, puts included, reads R replicas first. Read-modify-writes (update, delete,
//! cas, append) apply [`kv::apply_to_value`] to the newest value read, then write the result
//! under a new [`Version`] `(counter + 1, me)`: concurrent ones may both apply (last writer
//! wins), and a client's retry may apply twice. Hence linearizability and durability are
//! measured, not promised. A write that times out stays silent (a retry keeps the request id
//! and an earlier try may still land); a get that times out answers unavailable.
//!
//! # Conflicts: last writer wins, or siblings
//!
//! The parameter `siblings` (a flag: the parameters have no string kind to spell
//! `conflicts = "lww" | "siblings"`) chooses what two concurrent writes of a key leave.
//!
//! * `false`, the default: *last writer wins*. A replica keeps one [`Versioned`] per key, the
//!   one with the greatest [`Version`]; the other write is silently lost, even when both
//!   were acknowledged. Default because it keeps the convergence check meaningful as one
//!   value per key, and it is what the talk demo shows.
//! * `true`: *siblings* (Dynamo section 4.4, "Data Versioning"). Every version also carries
//!   a vector clock ([`Clock`]). A replica keeps every version that no other version it holds
//!   descends from, so concurrent writes become siblings and neither is lost; one rule
//!   ([`Versions`]' merge) takes versions from writes, read repair, hinted handoff (a hint
//!   holds a set of versions) and anti-entropy (a bucket's digest covers every sibling). A
//!   get answers [`OpResult::Siblings`] when it reads two or more concurrent values; the
//!   client must reconcile them by writing.
//!
//! A write's clock: Dynamo's coordinator builds it from the *context* the client got with
//! its last read. Our clients send no context, so the coordinator's own knowledge is the
//! context: the versions its R replies read, merged, and those its own replica holds. The
//! new clock is their pointwise maximum with the coordinator's own entry set to its write
//! counter (the one in the [`Version`]: it exceeds every counter the node has seen, so two
//! writes of one node never share a clock, even when the node is no replica of the key). A
//! write therefore supersedes every version its coordinator knows: two puts at coordinators
//! that cannot reach each other become siblings, and the next write at a node holding both
//! reconciles them. A read-modify-write applies its operation to the newest (by [`Version`],
//! as last writer wins would pick) of those versions, deterministically; a version that
//! descends from another also has a greater [`Version`], so the pick never goes against
//! causality. The cost: clients must handle sibling answers, replicas hold (and ship) every
//! sibling with its clock, and tombstones stay as siblings of live values until a write
//! supersedes them.
//!
//! # Repair
//!
//! After a read, replicas that answered with an older version (or a corrupt copy, see
//! [`crate::quorum`]) get the newest (read repair; with siblings, every version read that
//! they lack). A slow backstop: every `anti_entropy` a node compares one bucket's digest
//! with one peer ([`quorum::Rotation`]: every (peer, bucket) pair in turn), and differing
//! buckets are exchanged both ways. It covers every key on every node, so replicas converge
//! after heal whatever N is. The operator's trick-value corrupts an entry (the key's newest
//! version: value changed, version, clock and checksum kept); read repair and anti-entropy
//! replace it with any intact copy of its version.
//!
//! # Promises and checked invariants
//!
//! Convergent and live after heal. Each node also checks: the newest version it holds of a
//! key never goes back; with siblings, no version it holds of a key descends from another it
//! holds, and the key's clocks (their pointwise maximum) never go back; the hints it holds
//! are exactly those stored minus those handed back (a persisted ledger: hints lost in a
//! crash show); and no hint for a node is still held once that node has answered
//! continuously for [`HANDOFF_DEADLINE`] since the hint was stored.

use crate::contract::Request;
use crate::contract::{BugSpec, Context, NodeConfig, Operator, Promise, Protocol, ProtocolInfo};
use crate::digest::StableHasher;
use crate::ids::{NodeId, RequestId};
use crate::kv::{self, Key, Op, OpResult, Value};
use crate::params::{ParamKind, ParamSpec};
use crate::quorum::{self, bucket_of, Entry, Rotation, Version};
use crate::time::{Span, Time};
use serde::{Serialize, Serializer};
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};

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
    ParamSpec {
        name: "siblings",
        kind: ParamKind::Bool,
        default: "false",
        description: "keep concurrent writes as siblings under vector clocks (Dynamo section \
                      4.4) and answer gets with all of them; false: last writer wins",
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

/// A vector clock (Dynamo section 4.4): per node, the counter of that node's newest write
/// a version descends from. A `BTreeMap`, so that clocks iterate and hash deterministically.
pub type Clock = BTreeMap<NodeId, u64>;

/// Whether clock `a` has seen everything `b` has (entry by entry `a ≥ b`): a version with
/// clock `a` descends from (or is) the version with clock `b`.
pub fn descends(a: &Clock, b: &Clock) -> bool {
    b.iter()
        .all(|(node, c)| a.get(node).copied().unwrap_or(0) >= *c)
}

/// One version of a key: an [`Entry`] (value, [`Version`], checksum) and its vector clock,
/// empty with last writer wins. A version names one write, and so one clock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Versioned {
    /// The value, the version last writer wins orders by, and the checksum.
    #[serde(flatten)]
    pub entry: Entry,
    /// The vector clock; empty with last writer wins.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub clock: Clock,
}

impl Hash for Versioned {
    /// An empty clock (last writer wins) hashes as the bare entry, and serializes as one, so
    /// that last-writer-wins runs keep the fingerprints and traces they had before clocks.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.entry.hash(state);
        if !self.clock.is_empty() {
            self.clock.hash(state);
        }
    }
}

impl Versioned {
    /// A version without a clock (last writer wins).
    fn lww(entry: Entry) -> Versioned {
        Versioned {
            entry,
            clock: Clock::new(),
        }
    }
}

/// Every version a replica holds of one key, ascending by [`Version`] (so the last one is
/// what last writer wins would pick): at most one with last writer wins; with siblings,
/// every version that no other held one descends from (Dynamo section 4.4).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Versions(Vec<Versioned>);

impl Versions {
    fn one(v: Versioned) -> Versions {
        Versions(vec![v])
    }

    /// The versions, ascending by [`Version`].
    pub fn iter(&self) -> std::slice::Iter<'_, Versioned> {
        self.0.iter()
    }

    /// The version last writer wins picks: the greatest [`Version`].
    pub fn newest(&self) -> Option<&Versioned> {
        self.0.last()
    }

    /// How many versions.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn newest_version(&self) -> Option<Version> {
        self.newest().map(|v| v.entry.version)
    }

    /// Takes `new` by the mode's rule (see [`Versions::take_newer`] and
    /// [`Versions::take_concurrent`]); whether anything changed.
    fn take(&mut self, new: Versioned, siblings: bool) -> bool {
        if siblings {
            self.take_concurrent(new)
        } else {
            self.take_newer(new)
        }
    }

    /// Last writer wins: `new` replaces the held version if it supersedes it.
    fn take_newer(&mut self, new: Versioned) -> bool {
        let current = self.newest().map(|v| &v.entry);
        if !new.entry.supersedes(current) || current == Some(&new.entry) {
            return false;
        }
        self.0 = vec![new];
        true
    }

    /// Dynamo section 4.4: `new` is dropped if a held version descends from it (or is it);
    /// otherwise it drops the held versions it descends from and joins the rest as a
    /// sibling. A corrupt copy never spreads; an intact one replaces a corrupt copy of its
    /// version (the same write, so the same clock).
    fn take_concurrent(&mut self, new: Versioned) -> bool {
        if !new.entry.intact() {
            return false;
        }
        let version = new.entry.version;
        if let Some(held) = self.0.iter_mut().find(|h| h.entry.version == version) {
            if held.entry.intact() {
                return false;
            }
            *held = new;
            return true;
        }
        if self.0.iter().any(|h| descends(&h.clock, &new.clock)) {
            return false;
        }
        self.0.retain(|h| !descends(&new.clock, &h.clock));
        let at = self.0.partition_point(|h| h.entry.version < version);
        self.0.insert(at, new);
        true
    }

    /// The planted bug's rule: `new` replaces everything, whatever its version.
    fn replace(&mut self, new: Versioned) -> bool {
        if self.0.len() == 1 && self.0[0] == new {
            return false;
        }
        self.0 = vec![new];
        true
    }

    /// Whether a replica holding these would change on taking `v` (intact, from a merged
    /// read): read repair sends it then. With siblings the replica cannot hold a version
    /// descending from `v` (the merge would have dropped `v`), so it lacks `v` unless it
    /// holds an intact copy.
    fn lacks(&self, v: &Versioned, siblings: bool) -> bool {
        if siblings {
            !self.0.iter().any(|h| h.entry == v.entry)
        } else {
            v.entry.supersedes(self.newest().map(|h| &h.entry))
        }
    }

    /// Whether these (intact, merged from a read) make the corrupt copy `c` read alongside
    /// them harmless: they hold its version or one that supersedes it (newer, or with
    /// siblings descending from it). Otherwise the read must wait for an intact copy.
    fn covers(&self, c: &Versioned, siblings: bool) -> bool {
        if siblings {
            self.0.iter().any(|v| descends(&v.clock, &c.clock))
        } else {
            self.newest_version().is_some_and(|v| v >= c.entry.version)
        }
    }

    /// The values of two or more concurrent versions, for [`OpResult::Siblings`] and
    /// [`Protocol::siblings`]: sorted (a tombstone, `None`, first), each once. `None` when
    /// fewer than two different values remain.
    fn sibling_values(&self) -> Option<Vec<Option<Value>>> {
        if self.0.len() < 2 {
            return None;
        }
        let mut values: Vec<Option<Value>> = self.0.iter().map(|v| v.entry.value.clone()).collect();
        values.sort();
        values.dedup();
        (values.len() >= 2).then_some(values)
    }

    /// Removes the version `version`; whether it was held.
    fn remove(&mut self, version: Version) -> bool {
        let before = self.0.len();
        self.0.retain(|v| v.entry.version != version);
        self.0.len() != before
    }

    /// The pointwise maximum of the clocks.
    fn clock_join(&self) -> Clock {
        let mut join = Clock::new();
        for v in &self.0 {
            for (node, c) in &v.clock {
                let e = join.entry(*node).or_insert(0);
                *e = (*e).max(*c);
            }
        }
        join
    }

    /// Two held versions one of which descends from the other, if any: never, after a merge.
    fn dominated_pair(&self) -> Option<(Version, Version)> {
        let all = &self.0;
        all.iter().enumerate().find_map(|(i, a)| {
            all[i + 1..]
                .iter()
                .find(|b| descends(&a.clock, &b.clock) || descends(&b.clock, &a.clock))
                .map(|b| (a.entry.version, b.entry.version))
        })
    }
}

impl Hash for Versions {
    /// None or one version hashes as an `Option` of it, as last writer wins' `Option<Entry>`
    /// did (fingerprints unchanged); more (only siblings have more) as a sequence.
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self.0.as_slice() {
            [] | [_] => self.0.first().hash(state),
            all => all.hash(state),
        }
    }
}

impl Serialize for Versions {
    /// As [`Versions`]' hash: an `Option` for none or one (traces unchanged), else a list.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [] | [_] => self.0.first().serialize(serializer),
            all => all.serialize(serializer),
        }
    }
}

/// Values held for a node that was down.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Hint {
    /// The versions to hand back (one with last writer wins).
    pub versions: Versions,
    /// When it was last stored or changed (this node's clock).
    pub stored_at: Time,
}

/// What survives a crash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SloppyDurable {
    /// This replica's versions, by key.
    pub entries: BTreeMap<Key, Versions>,
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
        /// What the replica holds (named `entry` in traces, as before siblings).
        #[serde(rename = "entry")]
        versions: Versions,
    },
    /// Take `entry`, and hold it as a hint for each of `hints`.
    Store {
        /// The coordinator's request number (0: a read repair).
        op: u64,
        /// The key.
        key: Key,
        /// The version.
        entry: Versioned,
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
        /// The versions (a key's siblings each on their own).
        entries: Vec<(Key, Versioned)>,
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
        /// The sender's versions in it (a key's siblings each on their own).
        entries: Vec<(Key, Versioned)>,
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
    replies: BTreeMap<NodeId, Versions>,
    acks: BTreeSet<NodeId>,
    /// A get's merged read (to repair with), or a write's one new version.
    versions: Versions,
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
    /// Keep concurrent versions (Dynamo section 4.4) instead of the last writer's.
    siblings: bool,
    bugs: Bugs,
    entries: BTreeMap<Key, Versions>,
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
    /// A broken invariant seen while handling (a key's versions went back).
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

    /// Takes `new` by the conflict rule (or, `forced`, whatever it is); whether anything
    /// changed.
    fn install(&mut self, key: Key, new: Versioned, forced: bool) -> bool {
        self.observe(new.entry.version);
        let siblings = self.siblings;
        let held = self.entries.entry(key).or_default();
        let before = (held.newest_version(), held.clock_join());
        let changed = if forced {
            held.replace(new)
        } else {
            held.take(new, siblings)
        };
        if held.is_empty() {
            // Nothing was held, and nothing taken.
            self.entries.remove(&key);
        }
        if changed && self.violation.is_none() {
            self.violation = self.went_back(key, before);
        }
        changed
    }

    /// What broke when `key` changed from `before` (its newest version and its clocks'
    /// join): the newest version or the clocks went back, or (siblings) a held version
    /// descends from another. Only a planted bug makes any of them happen.
    fn went_back(&self, key: Key, before: (Option<Version>, Clock)) -> Option<String> {
        let held = &self.entries[&key];
        let (was, join) = before;
        if let (Some(was), Some(now)) = (was, held.newest_version()) {
            if was > now {
                return Some(format!("k{key}: version went back from {was:?} to {now:?}"));
            }
        }
        let now = held.clock_join();
        if !descends(&now, &join) {
            return Some(format!("k{key}: clock went back from {join:?} to {now:?}"));
        }
        let (a, b) = held.dominated_pair()?;
        Some(format!(
            "k{key}: holds {a:?} and {b:?}, one descending from the other"
        ))
    }

    /// Holds `v` as a hint for `node` (with the key's other hinted versions, by the conflict
    /// rule); whether anything changed.
    fn add_hint(&mut self, node: NodeId, key: Key, v: &Versioned) -> bool {
        if node == self.me || !v.entry.intact() {
            return false;
        }
        let stored_at = self.now;
        let siblings = self.siblings;
        match self.hints.get_mut(&(node, key)) {
            Some(h) => {
                let changed = h.versions.take(v.clone(), siblings);
                if changed {
                    h.stored_at = stored_at;
                }
                changed
            }
            None => {
                let hint = Hint {
                    versions: Versions::one(v.clone()),
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
                versions: self.entries.get(&key).cloned().unwrap_or_default(),
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
    fn read_outcome(p: &Pending, siblings: bool) -> Option<Versions> {
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

    fn progress(&mut self, ctx: &mut Context<'_, Self>, op: u64) {
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
    fn answer_get(&mut self, ctx: &mut Context<'_, Self>, op: u64, read: Versions) {
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
    fn start_write(&mut self, ctx: &mut Context<'_, Self>, op: u64, read: Versions) {
        let p = &self.pending[&op];
        let key = p.op.key();
        let known = self.context(key, read);
        let mut value = known.newest().and_then(|v| v.entry.value.clone());
        let result = kv::apply_to_value(&mut value, &p.op);
        let targets = p.targets.clone();
        let new = self.next_version(&known, value);
        let p = self.pending.get_mut(&op).expect("pending");
        p.phase = Phase::Write;
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
    fn context(&self, key: Key, read: Versions) -> Versions {
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
    fn next_version(&mut self, known: &Versions, value: Option<Value>) -> Versioned {
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

    fn maybe_finish_read(&mut self, ctx: &mut Context<'_, Self>, op: u64) {
        let p = &self.pending[&op];
        if p.replies.len() == p.targets.len() {
            self.read_repair(ctx, op);
            ctx.cancel_timer(Timer::AckCheck(op));
        }
    }

    /// Sends every replica that answered the versions of the merged read it lacks; ends
    /// `op`.
    fn read_repair(&mut self, ctx: &mut Context<'_, Self>, op: u64) {
        let Some(p) = self.pending.remove(&op) else {
            return;
        };
        if self.bugs.repair_older {
            self.repair_with_oldest(ctx, &p);
            return;
        }
        let siblings = self.siblings;
        for (node, held) in &p.replies {
            for v in p.versions.iter().filter(|v| held.lacks(v, siblings)) {
                self.send_repair(ctx, *node, p.op.key(), v.clone());
            }
        }
    }

    /// The planted bug: pushes the oldest version read to every replica whose newest
    /// version is another.
    fn repair_with_oldest(&mut self, ctx: &mut Context<'_, Self>, p: &Pending) {
        let oldest = p
            .replies
            .values()
            .flat_map(Versions::iter)
            .min_by_key(|v| v.entry.version)
            .cloned();
        let Some(oldest) = oldest else {
            return;
        };
        for (node, held) in &p.replies {
            if held.newest_version() != Some(oldest.entry.version) {
                self.send_repair(ctx, *node, p.op.key(), oldest.clone());
            }
        }
    }

    fn send_repair(&mut self, ctx: &mut Context<'_, Self>, node: NodeId, key: Key, v: Versioned) {
        ctx.note(|| format!("read repair of k{key} at {node}"));
        let msg = Message::Store {
            op: 0,
            key,
            entry: v,
            hints: Vec::new(),
            repair: true,
        };
        self.send_or_serve(ctx, node, msg);
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
        let mut by_node: BTreeMap<NodeId, Vec<(Key, Versioned)>> = BTreeMap::new();
        for ((node, key), hint) in &self.hints {
            let batch = by_node.entry(*node).or_default();
            batch.extend(hint.versions.iter().map(|v| (*key, v.clone())));
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

    /// `from` persisted these versions (or newer ones): they are no longer hints. A hint is
    /// handed back once none of its versions is left.
    fn on_handoff_ack(
        &mut self,
        ctx: &mut Context<'_, Self>,
        from: NodeId,
        done: Vec<(Key, Version)>,
    ) {
        let mut changed = false;
        let mut removed = 0;
        for (key, version) in done {
            let Some(hint) = self.hints.get_mut(&(from, key)) else {
                continue;
            };
            if hint.versions.remove(version) {
                changed = true;
                if hint.versions.is_empty() {
                    self.hints.remove(&(from, key));
                    removed += 1;
                }
            }
        }
        if changed {
            self.hints_delivered += removed;
            self.persist(ctx);
        }
        if removed > 0 {
            ctx.note(|| format!("{removed} hints handed back to {from}"));
        }
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
                for (key, v) in entries {
                    changed += usize::from(self.install(key, v, false));
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

    fn bucket_entries(&self, bucket: u16) -> Vec<(Key, Versioned)> {
        self.entries
            .iter()
            .filter(|(k, _)| bucket_of(**k) == bucket)
            .flat_map(|(k, vs)| vs.iter().map(|v| (*k, v.clone())))
            .collect()
    }

    /// Every version held, each as (key, entry): a key's siblings each on their own, so that
    /// digests cover them all (a version names one write, and so its clock too).
    fn all_entries(&self) -> impl Iterator<Item = (Key, &Entry)> {
        let versions = self.entries.iter();
        versions.flat_map(|(k, vs)| vs.iter().map(|v| (*k, &v.entry)))
    }

    fn bucket_digest(&self, bucket: u16) -> u64 {
        let digests = quorum::bucket_digests(self.all_entries());
        digests[usize::from(bucket)]
    }

    /// Drops corrupt versions that no write produced (tricked onto an absent key): no
    /// intact copy anywhere can repair them. Whether any was dropped.
    fn drop_unwritten(&mut self) -> bool {
        let mut dropped = false;
        self.entries.retain(|_, vs| {
            let before = vs.len();
            vs.0.retain(|v| v.entry.intact() || v.entry.version != Version::default());
            dropped |= vs.len() != before;
            !vs.is_empty()
        });
        dropped
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
                          hinted handoff, read repair, last writer wins (or siblings), \
                          anti-entropy. Available everywhere, eventually consistent",
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
            siblings: params.flag("siblings"),
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
            let held = node.entries.values().flat_map(Versions::iter);
            let top = held.map(|v| v.entry.version.counter).max();
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
                for (key, v) in entries {
                    done.push((key, v.entry.version));
                    changed |= self.install(key, v, false);
                }
                if changed {
                    self.persist(ctx);
                }
                ctx.send(from, Message::HandoffAck { done });
            }
            Message::HandoffAck { done } => self.on_handoff_ack(ctx, from, done),
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
                if self.drop_unwritten() {
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
            versions: Versions::default(),
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
        // Behind the protocol's back: the value of the key's newest version changes; its
        // version, clock and checksum do not.
        match self.entries.get_mut(&key).and_then(|vs| vs.0.last_mut()) {
            Some(v) => v.entry.value = Some(value),
            None => {
                let entry = Entry {
                    version: Version::default(),
                    value: Some(value),
                    checksum: 0,
                };
                self.entries
                    .insert(key, Versions::one(Versioned::lww(entry)));
            }
        }
        self.persist(ctx);
    }

    /// One value per key: the one last writer wins picks (with siblings too); tombstones
    /// are absences.
    fn store(&self) -> BTreeMap<Key, Value> {
        let newest = |vs: &Versions| vs.newest().and_then(|v| v.entry.value.clone());
        let held = self.entries.iter();
        held.filter_map(|(k, vs)| newest(vs).map(|v| (*k, v)))
            .collect()
    }

    fn siblings(&self) -> BTreeMap<Key, Vec<Option<Value>>> {
        let held = self.entries.iter();
        held.filter_map(|(k, vs)| vs.sibling_values().map(|v| (*k, v)))
            .collect()
    }

    fn digest(&self) -> u64 {
        quorum::store_digest(self.all_entries())
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
    use crate::ids::ClientId;
    use crate::params::{ParamValue, Params};
    use crate::testkit::{configs, Cluster, Wire};

    /// A hand-driven cluster ([`Cluster`]): sends wait until a test delivers or drops them,
    /// timers fire only when a test fires them. Invariants are checked by hand
    /// ([`Harness::check_all`]): some planted bugs break them on purpose.
    type Harness = Cluster<Sloppy>;

    /// A cluster whose `siblings` parameter is `siblings`.
    fn harness(count: u16, bugs: &[&'static str], siblings: bool) -> Harness {
        let mut params = Params::defaults(Sloppy::info().params);
        params.set("siblings", ParamValue::Bool(siblings));
        Cluster::boot_all(configs(count, &params, bugs), |_| {}).unchecked()
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
        /// Drops every message to or from `i` (a partitioned node).
        fn drop_for(&mut self, i: u16) {
            self.inflight.retain(|(f, t, _)| *f != n(i) && *t != n(i));
        }

        /// Delivers everything but what `a` and `b` send each other, which is dropped: the
        /// two cannot reach each other, both reach everyone else.
        fn deliver_apart(&mut self, a: u16, b: u16) {
            let between =
                |(f, t, _): &Wire<Sloppy>| (*f, *t) == (n(a), n(b)) || (*f, *t) == (n(b), n(a));
            self.deliver_where(|w| !between(w));
            self.inflight.retain(|w| !between(w));
        }

        fn check_all(&self) {
            for (i, node) in self.nodes.iter().enumerate() {
                if let Err(broken) = node.check_invariants() {
                    panic!("n{}: {broken}", i + 1);
                }
            }
        }
    }

    /// Writes k1=a at n0 while n2 is cut off; n0 ends up holding a hint for n2.
    fn write_while_n2_is_away(h: &mut Harness) {
        h.submit(0, req(1), put(1, "a"));
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

    /// Both conflict rules: what holds for one value per key holds for siblings too.
    const MODES: [bool; 2] = [false, true];

    #[test]
    fn a_hint_is_handed_back_when_its_node_answers_and_then_deleted() {
        for siblings in MODES {
            let mut h = harness(3, &[], siblings);
            write_while_n2_is_away(&mut h);
            // The next write skips down n2: a replica that is up carries its hint.
            h.submit(0, req(2), put(1, "b"));
            assert!(
                h.inflight.iter().all(|(_, to, _)| *to != n(2)),
                "n2 is skipped"
            );
            h.deliver_all();
            let carried = (0..2).any(|i| {
                let hint = h.nodes[i].hints.get(&(n(2), 1));
                let newest = hint.and_then(|hint| hint.versions.newest());
                newest.is_some_and(|v| v.entry.value.as_deref() == Some("b"))
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
            h.check_all();
        }
    }

    #[test]
    fn hints_survive_a_crash_of_the_stand_in_and_are_lost_with_the_bug() {
        for siblings in MODES {
            let mut h = harness(3, &[], siblings);
            write_while_n2_is_away(&mut h);
            h.restart(0);
            assert!(h.nodes[0].hints.contains_key(&(n(2), 1)));
            h.nodes[0].check_invariants().unwrap();

            let mut h = harness(3, &["drop-hints-on-crash"], siblings);
            write_while_n2_is_away(&mut h);
            h.restart(0);
            let broken = h.nodes[0].check_invariants().unwrap_err();
            assert!(broken.contains("hints lost"), "{broken}");
        }
    }

    #[test]
    fn read_repair_brings_a_stale_replica_forward_and_the_bug_takes_it_back() {
        for (siblings, bug) in MODES
            .into_iter()
            .flat_map(|s| [(s, None), (s, Some("read-repair-writes-older"))])
        {
            let bugs: Vec<&'static str> = bug.into_iter().collect();
            let mut h = harness(3, &bugs, siblings);
            h.submit(0, req(1), put(1, "a"));
            h.deliver_all();
            h.submit(0, req(2), put(1, "b"));
            h.drop_for(2);
            h.deliver_all();
            assert_eq!(h.value(2, 1).as_deref(), Some("a"));
            h.submit(1, req(3), Op::Get { key: 1 });
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
        for siblings in MODES {
            let mut h = harness(2, &[], siblings);
            h.submit(0, req(1), put(4, "a"));
            h.deliver_all();
            let trick = Operator::TrickValue {
                key: 4,
                value: "tricked".into(),
            };
            h.run(1, |node, ctx| node.on_operator(ctx, trick));
            assert_eq!(h.value(1, 4).as_deref(), Some("tricked"));
            // A read at n1 waits for an intact copy instead of serving its own.
            h.submit(1, req(2), Op::Get { key: 4 });
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

    fn ok(value: &str) -> OpResult {
        OpResult::Ok {
            value: Some(value.into()),
        }
    }

    fn siblings_of(values: &[&str]) -> Vec<Option<Value>> {
        values.iter().map(|v| Some(v.to_string())).collect()
    }

    /// Puts k1=a at n0 and k1=b at n1 while the two cannot reach each other (n2 reaches
    /// both), then heals: a get at n2 answers what it holds, and its read repair gives the
    /// others what they lack. Returns the get's answer.
    fn concurrent_puts(h: &mut Harness) -> OpResult {
        h.submit(0, req(1), put(1, "a"));
        h.deliver_apart(0, 1);
        h.submit(1, req(2), put(1, "b"));
        h.deliver_apart(0, 1);
        assert_eq!(h.reply(req(1)), Some(&ok("a")));
        assert_eq!(h.reply(req(2)), Some(&ok("b")));
        h.submit(2, req(3), Op::Get { key: 1 });
        h.deliver_all();
        h.check_all();
        h.reply(req(3)).cloned().expect("R = 1: n2 answers at once")
    }

    /// Dynamo section 4.4: two puts whose coordinators cannot see each other carry
    /// concurrent clocks, so both survive as siblings, and a get returns both; last writer
    /// wins keeps one.
    #[test]
    fn concurrent_puts_become_siblings_and_a_get_returns_both() {
        let mut h = harness(3, &[], true);
        let both = OpResult::Siblings {
            values: siblings_of(&["a", "b"]),
        };
        assert_eq!(concurrent_puts(&mut h), both);
        for i in 0..3 {
            let held = h.nodes[usize::from(i)].siblings();
            assert_eq!(
                held.get(&1),
                Some(&siblings_of(&["a", "b"])),
                "n{i} after repair"
            );
            // One value per key for the convergence check: the one LWW would keep.
            assert_eq!(h.value(i, 1).as_deref(), Some("b"));
        }
        h.submit(0, req(4), Op::Get { key: 1 });
        assert_eq!(h.reply(req(4)), Some(&both), "read repair gave n0 b");
        assert_eq!(h.nodes[0].digest(), h.nodes[1].digest());

        let mut h = harness(3, &[], false);
        assert_eq!(concurrent_puts(&mut h), ok("b"), "(1, n1) > (1, n0)");
        for i in 0..3 {
            assert!(h.nodes[usize::from(i)].siblings().is_empty());
            assert_eq!(h.value(i, 1).as_deref(), Some("b"));
        }
    }

    /// Dynamo section 4.4: a write's clock descends from every version its coordinator
    /// knows, so a put at a node holding both siblings supersedes both.
    #[test]
    fn a_put_at_a_node_holding_siblings_supersedes_them() {
        let mut h = harness(3, &[], true);
        concurrent_puts(&mut h);
        h.submit(0, req(4), put(1, "c"));
        h.deliver_all();
        assert_eq!(h.reply(req(4)), Some(&ok("c")));
        for i in 0..3 {
            let node = &h.nodes[usize::from(i)];
            assert!(node.siblings().is_empty(), "n{i}");
            assert_eq!(node.entries[&1].len(), 1, "n{i}");
            assert_eq!(h.value(i, 1).as_deref(), Some("c"));
        }
        h.submit(1, req(5), Op::Get { key: 1 });
        assert_eq!(h.reply(req(5)), Some(&ok("c")));
        h.check_all();
    }

    /// Dynamo section 4.4: a version that a held one descends from is dropped on merge, so
    /// a delayed (or duplicated) older write arriving after a newer one resurrects nothing.
    #[test]
    fn a_delayed_older_write_does_not_come_back_as_a_sibling() {
        let mut h = harness(2, &[], true);
        h.submit(0, req(1), put(1, "a"));
        let at = h
            .inflight
            .iter()
            .position(|(_, to, m)| *to == n(1) && matches!(m, Message::Store { .. }))
            .expect("the store of a to n1");
        let late = h.inflight.remove(at);
        h.deliver_all();
        h.submit(0, req(2), put(1, "b"));
        h.deliver_all();
        assert_eq!(h.value(1, 1).as_deref(), Some("b"));
        for _ in 0..2 {
            h.inflight.push(late.clone());
            h.deliver_all();
        }
        assert!(h.nodes[1].siblings().is_empty());
        assert_eq!(h.nodes[1].entries[&1].len(), 1);
        h.submit(1, req(3), Op::Get { key: 1 });
        assert_eq!(h.reply(req(3)), Some(&ok("b")));
        // A merge never takes back a version a held one descends from.
        let mut held = h.nodes[1].entries[&1].clone();
        let Message::Store { entry: old, .. } = late.2 else {
            unreachable!()
        };
        assert!(!held.take_concurrent(old));
        h.check_all();
    }

    /// Dynamo section 4.4: a read-modify-write applies to the newest (by version, as last
    /// writer wins would pick) of the siblings it reads, and its clock descends from all of
    /// them, so its result supersedes both.
    #[test]
    fn an_append_after_siblings_applies_to_the_newest_and_supersedes_both() {
        let mut h = harness(3, &[], true);
        concurrent_puts(&mut h);
        let append = Op::Append {
            key: 1,
            value: "x".into(),
        };
        h.submit(2, req(4), append);
        assert_eq!(
            h.reply(req(4)),
            Some(&ok("bx")),
            "b is (1, n1), a is (1, n0)"
        );
        h.deliver_all();
        for i in 0..3 {
            assert!(h.nodes[usize::from(i)].siblings().is_empty(), "n{i}");
            assert_eq!(h.value(i, 1).as_deref(), Some("bx"));
        }
        h.submit(0, req(5), Op::Get { key: 1 });
        assert_eq!(h.reply(req(5)), Some(&ok("bx")));
        h.check_all();
    }

    /// Dynamo sections 4.4 and 4.6: a stand-in holding concurrent versions as hints for a
    /// down node hands every one of them back, and deletes the hint only once all are
    /// taken.
    #[test]
    fn hinted_handoff_hands_back_every_sibling() {
        let mut h = harness(4, &[], true);
        // A key whose preference list starts at n4: it carries the hints for n3.
        let key = (0..100)
            .find(|k| h.nodes[0].preference(*k)[0] == n(3))
            .expect("a key n4 leads");
        // As if n3 had missed an ack at n1 and at n2.
        h.nodes[0].down.insert(n(2));
        h.nodes[1].down.insert(n(2));
        h.submit(0, req(1), put(key, "a"));
        h.deliver_apart(0, 1);
        h.submit(1, req(2), put(key, "b"));
        h.deliver_apart(0, 1);
        let hint = &h.nodes[3].hints[&(n(2), key)];
        assert_eq!(hint.versions.len(), 2, "both siblings are hinted");
        assert_eq!(h.value(2, key), None);
        h.timer(3, Timer::Handoff);
        h.deliver_all();
        let both = siblings_of(&["a", "b"]);
        assert_eq!(h.nodes[2].siblings().get(&key), Some(&both));
        assert!(h.nodes[3].hints.is_empty());
        assert_eq!(h.nodes[3].hints_delivered, 1);
        h.submit(2, req(3), Op::Get { key });
        assert_eq!(h.reply(req(3)), Some(&OpResult::Siblings { values: both }));
        h.check_all();
    }

    /// Last writer wins' versions carry no clock and hash as the entries they replaced, so
    /// its runs keep their fingerprints.
    #[test]
    fn clockless_versions_hash_as_the_bare_entries_did() {
        let version = Version {
            counter: 3,
            node: n(1),
        };
        let entry = Entry::new(version, Some("a".into()));
        let one = Versioned::lww(entry.clone());
        let hash = StableHasher::hash_of::<Versioned>;
        assert_eq!(hash(&one), StableHasher::hash_of(&entry));
        assert_eq!(
            StableHasher::hash_of(&Versions::one(one.clone())),
            StableHasher::hash_of(&Some(entry))
        );
        assert_eq!(
            StableHasher::hash_of(&Versions::default()),
            StableHasher::hash_of(&None::<Entry>)
        );
        let mut clocked = one.clone();
        clocked.clock.insert(n(1), 3);
        assert_ne!(hash(&clocked), hash(&one));
    }
}
