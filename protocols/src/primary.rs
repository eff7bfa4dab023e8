//! Primary forwarding: the 3-node TCP store of the seed, made convergent.
//!
//! Every node accepts every client operation and coordinates it. A read is served from the
//! local replica. A write is applied locally with [`kv::apply_to_value`]; the key's resulting
//! state (a value, or a tombstone for absence) is stamped with a fresh [`Version`] and
//! forwarded to every peer, and the client gets its answer at once: the seed acknowledges
//! locally, so this is an AP store.
//!
//! # Versions and convergence
//!
//! A version is `(counter, node)`: `counter` is a Lamport clock, bumped by each local write and
//! advanced past every version the node sees; the node id breaks ties. A replica takes a
//! state from a peer only if its version is greater than the one it holds (last writer wins
//! by version), so replicas that saw the same writes in any order hold the same store. A
//! delete leaves a tombstone, a versioned absence, so that an older put arriving late, or a
//! resync from a replica that missed the delete, cannot bring the key back.
//!
//! # Failure detection and repair
//!
//! One timer, [`Timer::Heartbeat`], drives everything periodic: every `heartbeat` the node
//! sends each peer a [`Message::Heartbeat`] saying how many forwards it has sent that peer,
//! marks down every peer not heard from for `failure_timeout`, and, while it is still
//! syncing, asks again for state. State moves in three ways, all through
//! [`Message::SyncState`] (a full state, merged by version), and always as the answer to a
//! [`Message::SyncRequest`]: a node pulls, nobody pushes.
//!
//! 1. *Restart pull.* Every start (first boot or restart: the node cannot tell a first boot
//!    from a restart that lost everything, and asking an empty cluster costs one empty
//!    message) sends [`Message::SyncRequest`] to every peer, and again on each heartbeat until
//!    one answer has arrived; the node is then *synced*.
//! 2. *Heal pull.* When a peer marked down is heard from again (a partition healed, a peer
//!    unfrozen or restarted), the node asks that peer for its state. The node that noticed
//!    the silence is the one that may have missed writes, so it pulls; the peer, if it too
//!    noticed, pulls the other way. This also covers one-way partitions: the side that could
//!    not hear the other is the side that missed writes, and only it marks the other down.
//! 3. *Anti-entropy.* Lost forwards leave no silence behind, so forwards are numbered, as
//!    TCP numbers its segments. Each node numbers the forwards it sends each peer 1, 2, ...
//!    within its *incarnation* (the counter mark it reserved at start, which grows across
//!    restarts), and each heartbeat to that peer carries the incarnation and `sent`, the count
//!    so far. The receiver keeps, per peer, the prefix of numbers received without a gap
//!    (`received_through`), the numbers received past a gap (drained as it fills; duplicates
//!    change nothing), and the `sent` of the peer's previous heartbeat. Every forward counted
//!    by that heartbeat left the peer at least one heartbeat period ago; if one is still
//!    missing, it was lost (not merely overtaken), and the receiver pulls from that peer,
//!    then waits `anti_entropy_after` of its heartbeats before pulling from it again. The
//!    answer carries the peer's `sent` at reply time: the full state covers every forward
//!    sent before it, so `received_through` jumps to that count. A newer incarnation starts
//!    the count afresh; counts of an older one are ignored (its forwards are still merged by
//!    version). If the old incarnation left forwards unaccounted for (a known gap, or
//!    forwards past its last heartbeat, whose tail may be lost unseen), the receiver pulls
//!    once from the restarted peer when it reports synced: its new state gathers what the
//!    cluster held.
//!
//!    Why not compare digests: under a steady write load replicas always differ at heartbeat
//!    time (forwards are in flight), so a digest rule fires on timing alone and moves full
//!    states for nothing. Counting costs O(1) per forward and per heartbeat; a full state
//!    moves only after a real loss. Gap pulls run only at synced nodes: a syncing node is
//!    already pulling everything (and with `skip-resync` a restarted node stays unsynced and
//!    is never repaired; peers may pull from it, and nothing is ever pushed to it).
//!
//! # What survives a crash
//!
//! Only the Lamport counter's high-water mark ([`PrimaryDurable`]); the store is volatile, as
//! in the seed, and a restarted node starts empty and resyncs. The node reserves versions in
//! chunks of [`COUNTER_RESERVE_CHUNK`]: before it issues a version past the reserved mark it
//! persists a mark one chunk further, and the persist precedes the forward and the reply. So
//! every version it ever issued is at most the persisted mark, and a restarted node, which
//! continues from that mark, never issues a version twice (a reused version with a different
//! value would be rejected by every replica holding the old one, forever). A crash wastes at
//! most one chunk of counter values, which costs nothing. The mark reserved at start is also
//! the node's incarnation: every start persists a mark strictly greater than any before it.
//!
//! # Promises
//!
//! Convergent and live after heal. Not linearizable: reads are local and may be stale, and of
//! two concurrent writes one silently wins. Not durable: a write is acknowledged before any
//! peer has it, so a crash, or a concurrent write with a greater version, loses it.

use crate::contract::{BugSpec, Context, NodeConfig, Promise, Protocol, ProtocolInfo, Request};
use crate::digest::StableHasher;
use crate::ids::NodeId;
use crate::kv::{self, Key, Op, OpResult, Value};
use crate::params::{ParamKind, ParamSpec};
use crate::time::{Span, Time};
use serde::Serialize;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

/// How many counter values a node reserves with each persist of its high-water mark.
pub const COUNTER_RESERVE_CHUNK: u64 = 1_000;

/// How many forward numbers past a gap a node remembers per peer. Past it, a number is not
/// recorded and later looks missing: the worst case is one pull too many, never a loss.
pub const RECEIVED_BEYOND_MAX: usize = 4_096;

const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "heartbeat",
        kind: ParamKind::Span,
        default: "50ms",
        description: "interval between heartbeats to every peer",
    },
    ParamSpec {
        name: "failure_timeout",
        kind: ParamKind::Span,
        default: "250ms",
        description: "silence after which a peer is marked down",
    },
    ParamSpec {
        name: "anti_entropy_after",
        kind: ParamKind::Int,
        default: "3",
        description: "heartbeats from a peer to wait, after pulling its state, before pulling \
                      again for a forward still missing",
    },
];

const BUGS: &[BugSpec] = &[
    BugSpec {
        name: "skip-resync",
        description: "a restarted node never pulls state from its peers (and, still syncing, \
                      never pulls for lost forwards either)",
    },
    BugSpec {
        name: "blind-apply",
        description: "states from peers (forwards and resyncs) are applied without comparing \
                      versions, so concurrent writes leave replicas diverged",
    },
    BugSpec {
        name: "no-anti-entropy",
        description: "gaps in the forwards' numbers are never acted on, so a lost forward is \
                      never repaired",
    },
    BugSpec {
        name: "volatile-counter",
        description: "a restarted node forgets its Lamport counter and reuses versions it \
                      issued before the crash (and its incarnation: peers take its new \
                      forwards' numbers for duplicates)",
    },
];

/// A write's identity and order: a Lamport counter, ties broken by the writing node.
///
/// Field order matters: the derived `Ord` compares `counter` first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Version {
    /// The writer's Lamport counter when it wrote.
    pub counter: u64,
    /// The writer.
    pub node: NodeId,
}

/// One key's replicated state: its value, or a tombstone (`None`), and the version that wrote it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Entry {
    /// The write that produced this state.
    pub version: Version,
    /// The key's value; `None` is a tombstone: the key was deleted by `version`.
    pub value: Option<Value>,
}

/// What primary nodes send each other.
///
/// An `incarnation` is the sender's counter mark reserved at its start: it grows across
/// restarts, and forward numbers (`seq`, `sent`) count from 1 again in each incarnation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Message {
    /// A write's resulting state of one key, sent by its coordinator to every peer.
    Forward {
        /// The key written.
        key: Key,
        /// Its state after the write.
        entry: Entry,
        /// The sender's incarnation.
        incarnation: u64,
        /// This forward's number on the link from the sender to the receiver: 1, 2, ...
        seq: u64,
    },
    /// "I am alive", with how many forwards the sender has sent, for failure detection and
    /// anti-entropy.
    Heartbeat {
        /// The sender's incarnation.
        incarnation: u64,
        /// How many forwards the sender has sent the receiver in this incarnation.
        sent: u64,
        /// Whether the sender has received a full state since it started.
        synced: bool,
    },
    /// "Send me your full state" (restart pull, heal pull, pull after a lost forward).
    SyncRequest,
    /// A full state (versions and tombstones), merged by version by the receiver.
    SyncState {
        /// The sender's incarnation.
        incarnation: u64,
        /// How many forwards the sender had sent the receiver when it replied: the state
        /// covers every one of them.
        sent: u64,
        /// Every entry the sender holds, in key order.
        entries: Vec<(Key, Entry)>,
    },
}

/// The timers a primary node arms.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Timer {
    /// Send heartbeats, detect silent peers, retry the restart pull; re-armed every time.
    Heartbeat,
}

/// What survives a crash: the Lamport counter's reserved high-water mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrimaryDurable {
    /// No version this node ever issued has a greater counter.
    pub counter_reserved: u64,
}

/// The planted bugs switched on, read once at start.
#[derive(Clone, Copy, Debug, Default)]
struct Bugs {
    skip_resync: bool,
    blind_apply: bool,
    no_anti_entropy: bool,
    volatile_counter: bool,
}

/// The receiving half of one numbered link: which of a peer's forwards have arrived.
#[derive(Clone, Debug, Default)]
struct Inbound {
    /// The peer incarnation these counts belong to; 0 until the peer is heard.
    incarnation: u64,
    /// Every forward numbered `1..=received_through` arrived, or a full state covered it.
    received_through: u64,
    /// Forwards received past a gap: each above `received_through + 1`. At most
    /// [`RECEIVED_BEYOND_MAX`].
    received_beyond: BTreeSet<u64>,
    /// `sent` of the peer's latest heartbeat in this incarnation.
    sent_reported: u64,
}

impl Inbound {
    /// Whether counts from `incarnation` may be used: a newer one starts the counts afresh
    /// (returned as `Greater`), an older one is ignored (`Less`).
    fn observe(&mut self, incarnation: u64) -> Ordering {
        let order = incarnation.cmp(&self.incarnation);
        if order == Ordering::Greater {
            *self = Inbound {
                incarnation,
                ..Inbound::default()
            };
        }
        order
    }

    /// Records forward `seq`; a duplicate changes nothing.
    fn on_forward(&mut self, seq: u64) {
        if seq <= self.received_through {
            return;
        }
        if seq > self.received_through + 1 {
            if self.received_beyond.len() < RECEIVED_BEYOND_MAX {
                self.received_beyond.insert(seq);
            }
            return;
        }
        self.received_through = seq;
        self.drain();
    }

    /// A full state covered every forward up to `sent`.
    fn cover_through(&mut self, sent: u64) {
        self.received_through = self.received_through.max(sent);
        self.drain();
    }

    /// Moves the prefix over buffered numbers it has reached. Ends: each pass removes one.
    fn drain(&mut self) {
        while let Some(&first) = self.received_beyond.first() {
            if first > self.received_through + 1 {
                break;
            }
            self.received_beyond.pop_first();
            self.received_through = self.received_through.max(first);
        }
    }

    /// Whether any forward of this incarnation is unaccounted for: a gap, or forwards past the
    /// latest heartbeat (which may have been followed by more, lost).
    fn unsettled(&self) -> bool {
        self.received_through != self.sent_reported || !self.received_beyond.is_empty()
    }

    fn check(&self) -> Result<(), String> {
        if let Some(&first) = self.received_beyond.first() {
            if first <= self.received_through + 1 {
                return Err(format!(
                    "forward {first} buffered past a gap, but received through {}",
                    self.received_through
                ));
            }
        }
        if self.received_beyond.len() > RECEIVED_BEYOND_MAX {
            return Err(format!("{} forwards buffered", self.received_beyond.len()));
        }
        Ok(())
    }
}

/// What a node knows about one peer.
#[derive(Clone, Debug)]
struct PeerState {
    /// When any message from it last arrived, on this node's clock.
    last_heard: Time,
    /// False once it has been silent for `failure_timeout`, until it is heard again.
    up: bool,
    /// What its last heartbeat said about its sync.
    synced: bool,
    /// Forwards sent to it in this incarnation: the number of the latest one.
    forwards_sent: u64,
    /// Which of its forwards have arrived.
    inbound: Inbound,
    /// Its heartbeats still to come before a lost forward may make us pull from it again.
    pull_wait: u64,
    /// Its previous incarnation left forwards unaccounted for: pull once it reports synced.
    pull_once_synced: bool,
}

/// One node of the primary-forwarding store.
///
/// # Driving contract
///
/// As [`Protocol`] says. On start it persists a fresh counter reservation (whose mark is
/// its incarnation), sends [`Message::SyncRequest`] to every peer and arms
/// [`Timer::Heartbeat`]; the timer re-arms itself forever. Every persist is emitted before the
/// sends and the reply of the same handler that rely on it (a version is never seen outside
/// before it is reserved).
#[derive(Debug)]
pub struct Primary {
    me: NodeId,
    heartbeat: Span,
    failure_timeout: Span,
    anti_entropy_after: u64,
    bugs: Bugs,
    /// The counter mark reserved at start: greater after every restart.
    incarnation: u64,
    /// Every key ever written, live or tombstone.
    entries: BTreeMap<Key, Entry>,
    /// XOR of [`entry_hash`] over `entries`, kept up to date on every change.
    digest: u64,
    /// The greatest version counter ever installed, and the greatest of this node's own:
    /// running maxima, so that the invariants cost O(1) per handler.
    installed_counter_max: u64,
    installed_own_counter_max: u64,
    /// The Lamport counter: at least every version counter this node holds.
    counter: u64,
    /// The persisted high-water mark: at least every counter this node ever issued.
    counter_reserved: u64,
    /// Whether a full state has arrived since start.
    synced: bool,
    /// True when `skip-resync` is on and this start is a restart: the pull never happens.
    resync_skipped: bool,
    peers: BTreeMap<NodeId, PeerState>,
}

/// One entry's share of the digest. XOR keeps the digest O(1) per change and independent of
/// the order changes happened in; keys are unique, so no two shares cancel by construction.
fn entry_hash(key: Key, entry: &Entry) -> u64 {
    StableHasher::hash_of(&(key, entry.version, &entry.value))
}

/// Whether `op`, answered `result` by the store's specification, changed the key's state.
fn wrote(op: &Op, result: &OpResult) -> bool {
    op.is_write() && matches!(result, OpResult::Ok { .. })
}

impl Bugs {
    fn from_config(config: &NodeConfig) -> Bugs {
        Bugs {
            skip_resync: config.bug("skip-resync"),
            blind_apply: config.bug("blind-apply"),
            no_anti_entropy: config.bug("no-anti-entropy"),
            volatile_counter: config.bug("volatile-counter"),
        }
    }
}

impl Primary {
    /// Issues the next version of this node, reserving (persisting) more counter values first
    /// when the reservation is used up.
    fn next_version(&mut self, ctx: &mut Context<'_, Self>) -> Version {
        self.counter += 1;
        if self.counter > self.counter_reserved {
            self.reserve_counter(ctx);
        }
        Version {
            counter: self.counter,
            node: self.me,
        }
    }

    /// Persists a high-water mark one chunk past the counter.
    fn reserve_counter(&mut self, ctx: &mut Context<'_, Self>) {
        self.counter_reserved = self.counter + COUNTER_RESERVE_CHUNK;
        ctx.persist(PrimaryDurable {
            counter_reserved: self.counter_reserved,
        });
    }

    /// Replaces (or adds) `key`'s entry, keeping the digest in step.
    fn install(&mut self, key: Key, entry: Entry) {
        let v = entry.version;
        self.installed_counter_max = self.installed_counter_max.max(v.counter);
        if v.node == self.me {
            self.installed_own_counter_max = self.installed_own_counter_max.max(v.counter);
        }
        self.digest ^= entry_hash(key, &entry);
        if let Some(old) = self.entries.insert(key, entry) {
            self.digest ^= entry_hash(key, &old);
        }
    }

    /// Merges a state received from `from`: taken only if its version is greater (unless
    /// `blind-apply`). Returns whether it was taken.
    fn maybe_merge(
        &mut self,
        ctx: &mut Context<'_, Self>,
        from: NodeId,
        key: Key,
        entry: Entry,
    ) -> bool {
        // Lamport: our next write must order after every write we have seen.
        self.counter = self.counter.max(entry.version.counter);
        if let Some(current) = self.entries.get(&key) {
            if !self.bugs.blind_apply && entry.version <= current.version {
                if entry.version == current.version && entry.value != current.value {
                    // Only a reused version gets here: two writes, one name.
                    let (held, got) = (current.value.clone(), entry.value.clone());
                    ctx.note(|| {
                        format!(
                            "k{key}: {from} sent {got:?} with version {:?} we hold as {held:?}",
                            entry.version
                        )
                    });
                }
                return false;
            }
        }
        self.install(key, entry);
        true
    }

    /// Asks every peer for its state, while this node has not received one since start.
    fn maybe_pull(&mut self, ctx: &mut Context<'_, Self>) {
        if self.synced || self.resync_skipped {
            return;
        }
        let after = self.anti_entropy_after;
        for (id, peer) in self.peers.iter_mut() {
            peer.pull_wait = after;
            ctx.send(*id, Message::SyncRequest);
        }
    }

    /// Our full state, as a message to `to`.
    fn full_state(&self, to: NodeId) -> Message {
        Message::SyncState {
            incarnation: self.incarnation,
            sent: self.peers.get(&to).map_or(0, |p| p.forwards_sent),
            entries: self.entries.iter().map(|(k, e)| (*k, e.clone())).collect(),
        }
    }

    /// Notes that `from` is alive; a peer that was marked down is asked for what we missed.
    fn on_heard(&mut self, ctx: &mut Context<'_, Self>, from: NodeId) {
        let now = ctx.now();
        let Some(peer) = self.peers.get_mut(&from) else {
            ctx.note(|| format!("ignored a message from {from}, not a peer"));
            return;
        };
        peer.last_heard = now;
        if !peer.up {
            peer.up = true;
            // This pull also answers any gap its silence left: no second pull for it.
            peer.pull_wait = self.anti_entropy_after;
            ctx.note(|| format!("{from} is up again; pulling its state"));
            ctx.send(from, Message::SyncRequest);
        }
    }

    /// Whether counts of `from`'s `incarnation` may be used by `peer`'s inbound tracking; a
    /// newer incarnation restarts the tracking.
    fn observe_incarnation(
        ctx: &mut Context<'_, Self>,
        from: NodeId,
        peer: &mut PeerState,
        incarnation: u64,
    ) -> bool {
        // Before the reset: 0 means its previous incarnation was never heard.
        let unsettled = peer.inbound.incarnation != 0 && peer.inbound.unsettled();
        match peer.inbound.observe(incarnation) {
            Ordering::Equal => true,
            Ordering::Less => {
                let tracked = peer.inbound.incarnation;
                ctx.note(|| {
                    format!("counts of {from}'s old incarnation {incarnation} ignored ({tracked})")
                });
                false
            }
            Ordering::Greater => {
                peer.pull_once_synced |= unsettled;
                ctx.note(|| {
                    format!(
                        "{from} is in incarnation {incarnation}: counting its forwards afresh \
                         (pull once it is synced: {unsettled})"
                    )
                });
                true
            }
        }
    }

    fn on_forward(
        &mut self,
        ctx: &mut Context<'_, Self>,
        from: NodeId,
        (key, entry): (Key, Entry),
        (incarnation, seq): (u64, u64),
    ) {
        // Merged whatever its incarnation: versions, not numbers, decide what a replica holds.
        self.maybe_merge(ctx, from, key, entry);
        let Some(peer) = self.peers.get_mut(&from) else {
            return;
        };
        if Self::observe_incarnation(ctx, from, peer, incarnation) {
            peer.inbound.on_forward(seq);
        }
    }

    /// Counts `from`'s forwards against what its previous heartbeat said it had sent, and
    /// pulls from it when one sent at least a heartbeat period ago is still missing.
    fn on_heartbeat(
        &mut self,
        ctx: &mut Context<'_, Self>,
        from: NodeId,
        (incarnation, sent): (u64, u64),
        synced: bool,
    ) {
        let (me_synced, after) = (self.synced, self.anti_entropy_after);
        let Some(peer) = self.peers.get_mut(&from) else {
            return;
        };
        if !Self::observe_incarnation(ctx, from, peer, incarnation) {
            return;
        }
        peer.synced = synced;
        let inbound = &mut peer.inbound;
        let (reported, through) = (inbound.sent_reported, inbound.received_through);
        inbound.sent_reported = sent;
        peer.pull_wait = peer.pull_wait.saturating_sub(1);
        // A syncing node is already pulling everything; with `skip-resync` it must stay
        // unrepaired, so it never pulls here either.
        if !me_synced || self.bugs.no_anti_entropy {
            return;
        }
        if peer.pull_once_synced && synced {
            peer.pull_once_synced = false;
            peer.pull_wait = after;
            ctx.note(|| format!("{from} restarted with forwards unaccounted for; pulling"));
            ctx.send(from, Message::SyncRequest);
            return;
        }
        if reported <= through || peer.pull_wait > 0 {
            return;
        }
        peer.pull_wait = after;
        ctx.note(|| {
            format!("{from} sent {reported} forwards a heartbeat ago, {through} arrived; pulling")
        });
        ctx.send(from, Message::SyncRequest);
    }

    fn on_sync_state(
        &mut self,
        ctx: &mut Context<'_, Self>,
        from: NodeId,
        (incarnation, sent): (u64, u64),
        entries: Vec<(Key, Entry)>,
    ) {
        let count = entries.len();
        let mut taken = 0usize;
        for (key, entry) in entries {
            if self.maybe_merge(ctx, from, key, entry) {
                taken += 1;
            }
        }
        ctx.note(|| format!("merged state of {from}: took {taken} of {count} entries"));
        if let Some(peer) = self.peers.get_mut(&from) {
            if Self::observe_incarnation(ctx, from, peer, incarnation) {
                // Every forward sent before the reply is covered by the state it carried.
                peer.inbound.cover_through(sent);
                peer.pull_wait = 0;
            }
        }
        if !self.synced {
            self.synced = true;
            ctx.note(|| format!("synced (first state from {from})"));
        }
    }

    /// Marks down every up peer silent for `failure_timeout`.
    fn maybe_mark_down(&mut self, ctx: &mut Context<'_, Self>) {
        let now = ctx.now();
        for (id, peer) in self.peers.iter_mut() {
            if peer.up && now.since(peer.last_heard) >= self.failure_timeout {
                peer.up = false;
                let (id, silent) = (*id, now.since(peer.last_heard));
                ctx.note(|| format!("{id} marked down: silent for {silent}"));
            }
        }
    }
}

impl Protocol for Primary {
    type Message = Message;
    type Timer = Timer;
    type Durable = PrimaryDurable;

    fn info() -> ProtocolInfo {
        ProtocolInfo {
            name: "primary",
            description: "primary forwarding: any node applies a write, acks at once and forwards \
                          the versioned state (last writer wins); heartbeats, resync and \
                          anti-entropy converge replicas. Not linearizable (local reads, lost \
                          concurrent writes), not durable (acked before replicated)",
            promises: &[Promise::Convergent, Promise::LiveAfterHeal],
            params: PARAMS,
            bugs: BUGS,
            transactions: false,
        }
    }

    fn start(
        ctx: &mut Context<'_, Self>,
        config: &NodeConfig,
        durable: Option<&PrimaryDurable>,
    ) -> Self {
        let bugs = Bugs::from_config(config);
        let counter = match durable {
            Some(d) if !bugs.volatile_counter => d.counter_reserved,
            _ => 0,
        };
        let now = ctx.now();
        let peer = PeerState {
            last_heard: now,
            up: true,
            synced: false,
            forwards_sent: 0,
            inbound: Inbound::default(),
            pull_wait: 0,
            pull_once_synced: false,
        };
        let peers: BTreeMap<NodeId, PeerState> =
            config.peers().map(|p| (p, peer.clone())).collect();
        let params = &config.params;
        let mut node = Primary {
            me: config.id,
            // A zero interval would re-fire at the same instant forever.
            heartbeat: Span(params.span("heartbeat").as_micros().max(1)),
            failure_timeout: params.span("failure_timeout"),
            anti_entropy_after: params.int("anti_entropy_after").max(1),
            bugs,
            // Set below, once this start's reservation is made.
            incarnation: 0,
            entries: BTreeMap::new(),
            digest: 0,
            installed_counter_max: 0,
            installed_own_counter_max: 0,
            counter,
            counter_reserved: counter,
            // Alone, there is nobody to sync from.
            synced: peers.is_empty(),
            resync_skipped: bugs.skip_resync && durable.is_some(),
            peers,
        };
        node.reserve_counter(ctx);
        node.incarnation = node.counter_reserved;
        if node.resync_skipped {
            ctx.note(|| "restarted; skipping resync".to_string());
        }
        node.maybe_pull(ctx);
        ctx.set_timer(Timer::Heartbeat, node.heartbeat);
        node
    }

    fn on_message(&mut self, ctx: &mut Context<'_, Self>, from: NodeId, msg: Message) {
        self.on_heard(ctx, from);
        if !self.peers.contains_key(&from) {
            return;
        }
        match msg {
            Message::Forward {
                key,
                entry,
                incarnation,
                seq,
            } => self.on_forward(ctx, from, (key, entry), (incarnation, seq)),
            Message::Heartbeat {
                incarnation,
                sent,
                synced,
            } => self.on_heartbeat(ctx, from, (incarnation, sent), synced),
            Message::SyncRequest => {
                let state = self.full_state(from);
                ctx.send(from, state);
            }
            Message::SyncState {
                incarnation,
                sent,
                entries,
            } => self.on_sync_state(ctx, from, (incarnation, sent), entries),
        }
    }

    fn on_timer(&mut self, ctx: &mut Context<'_, Self>, timer: Timer) {
        match timer {
            Timer::Heartbeat => {
                for (id, peer) in &self.peers {
                    let beat = Message::Heartbeat {
                        incarnation: self.incarnation,
                        sent: peer.forwards_sent,
                        synced: self.synced,
                    };
                    ctx.send(*id, beat);
                }
                self.maybe_mark_down(ctx);
                self.maybe_pull(ctx);
                ctx.set_timer(Timer::Heartbeat, self.heartbeat);
            }
        }
    }

    fn on_request(&mut self, ctx: &mut Context<'_, Self>, request: Request) {
        let Request {
            id: request, op, ..
        } = request;
        let key = op.key();
        let mut value = self.entries.get(&key).and_then(|e| e.value.clone());
        let result = kv::apply_to_value(&mut value, &op);
        if wrote(&op, &result) {
            let entry = Entry {
                version: self.next_version(ctx),
                value,
            };
            self.install(key, entry.clone());
            let incarnation = self.incarnation;
            for (id, peer) in self.peers.iter_mut() {
                peer.forwards_sent += 1;
                let (entry, seq) = (entry.clone(), peer.forwards_sent);
                let forward = Message::Forward {
                    key,
                    entry,
                    incarnation,
                    seq,
                };
                ctx.send(*id, forward);
            }
        }
        // The seed acknowledges before any peer has the write: available, not durable.
        ctx.reply(request, result);
    }

    fn store(&self) -> BTreeMap<Key, Value> {
        self.entries
            .iter()
            .filter_map(|(k, e)| e.value.clone().map(|v| (*k, v)))
            .collect()
    }

    fn digest(&self) -> u64 {
        self.digest
    }

    fn check_invariants(&self) -> Result<(), String> {
        if self.installed_counter_max > self.counter {
            return Err(format!(
                "a held version has counter {} past the Lamport counter {}",
                self.installed_counter_max, self.counter
            ));
        }
        // Our own versions from before a crash come back through resync: one past the mark
        // we restarted from means this node may issue it again.
        if self.installed_own_counter_max > self.counter_reserved {
            return Err(format!(
                "own version counter {} past the reserved mark {}: versions may be reused",
                self.installed_own_counter_max, self.counter_reserved
            ));
        }
        if self.incarnation == 0 || self.incarnation > self.counter_reserved {
            return Err(format!(
                "incarnation {} outside 1..={}",
                self.incarnation, self.counter_reserved
            ));
        }
        // O(peers) per handler: a handful of peers, each check O(1).
        for (id, peer) in &self.peers {
            peer.inbound
                .check()
                .map_err(|e| format!("inbound from {id}: {e}"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Params;
    use crate::testkit::{configs, Cluster};

    type Harness = Cluster<Primary>;
    type Wire = crate::testkit::Wire<Primary>;

    /// The incremental digest against a full recomputation, after every handler.
    fn check_digest(node: &Primary) {
        let full = node
            .entries
            .iter()
            .fold(0, |acc, (k, e)| acc ^ entry_hash(*k, e));
        assert_eq!(node.digest(), full, "{}'s incremental digest", node.me);
    }

    fn n(i: u16) -> NodeId {
        NodeId(i)
    }

    fn put(key: Key, value: &str) -> Op {
        Op::Put {
            key,
            value: value.into(),
        }
    }

    impl Cluster<Primary> {
        /// `count` nodes, started and synced with each other (every start message delivered).
        fn new(count: u16, bugs: &[&'static str]) -> Harness {
            let configs = configs(count, &Params::defaults(Primary::info().params), bugs);
            let mut h = Cluster::boot_all(configs, check_digest);
            h.deliver_all();
            h
        }

        /// Advances the clock by one heartbeat and fires the heartbeat timer of `nodes`.
        fn heartbeat(&mut self, nodes: &[u16]) {
            self.now += Span::millis(50);
            for &i in nodes {
                self.run(i, |node, ctx| node.on_timer(ctx, Timer::Heartbeat));
            }
        }

        /// One heartbeat round on every node, everything delivered.
        fn round(&mut self) {
            let all: Vec<u16> = (0..self.nodes.len() as u16).collect();
            self.heartbeat(&all);
            self.deliver_all();
        }

        /// Every node's heartbeat timer fires and only the heartbeats are delivered, so what
        /// they make nodes send stays in flight for the test to see.
        fn beat(&mut self) {
            let all: Vec<u16> = (0..self.nodes.len() as u16).collect();
            self.heartbeat(&all);
            self.deliver_where(|(_, _, m)| matches!(m, Message::Heartbeat { .. }));
        }

        /// (from, to) of every pull sent so far, in send order.
        fn pulls_sent(&self) -> Vec<(NodeId, NodeId)> {
            let pulls = self
                .sent
                .iter()
                .filter(|(_, _, m)| *m == Message::SyncRequest);
            pulls.map(|(f, t, _)| (*f, *t)).collect()
        }

        /// How many full states were sent so far.
        fn states_sent(&self) -> usize {
            let states = self.sent.iter();
            states
                .filter(|(_, _, m)| matches!(m, Message::SyncState { .. }))
                .count()
        }

        /// Node `i`'s count of the forwards of `from`.
        fn inbound(&self, i: u16, from: u16) -> &Inbound {
            &self.nodes[usize::from(i)].peers[&n(from)].inbound
        }

        fn entry_value(&self, i: u16, key: Key) -> Option<&str> {
            let entry = self.nodes[usize::from(i)].entries.get(&key)?;
            entry.value.as_deref()
        }

        fn values(&self, key: Key) -> Vec<Option<&str>> {
            (0..self.nodes.len() as u16)
                .map(|i| self.entry_value(i, key))
                .collect()
        }

        fn converged(&self) -> bool {
            let first = (self.nodes[0].store(), self.nodes[0].digest());
            self.nodes.iter().all(|p| (p.store(), p.digest()) == first)
        }
    }

    #[test]
    fn info_declares_name_params_and_bugs() {
        let info = Primary::info();
        assert_eq!(info.name, "primary");
        let params = Params::defaults(info.params);
        assert_eq!(params.span("heartbeat"), Span::millis(50));
        assert_eq!(params.span("failure_timeout"), Span::millis(250));
        assert_eq!(params.int("anti_entropy_after"), 3);
        let bugs: Vec<&str> = info.bugs.iter().map(|b| b.name).collect();
        assert_eq!(
            bugs,
            [
                "skip-resync",
                "blind-apply",
                "no-anti-entropy",
                "volatile-counter"
            ]
        );
    }

    #[test]
    fn a_write_at_one_node_reaches_every_replica() {
        let mut h = Harness::new(3, &[]);
        assert!(h.nodes.iter().all(|p| p.synced));
        let reply = h.request(0, put(1, "a"));
        assert_eq!(
            reply,
            OpResult::Ok {
                value: Some("a".into())
            }
        );
        // Acknowledged before any peer has it: the AP choice of the seed.
        assert_eq!(h.values(1), [Some("a"), None, None]);
        assert_eq!(h.deliver_all(), 2);
        assert_eq!(h.values(1), [Some("a"); 3]);
        assert!(h.converged());
        assert_eq!(
            h.request(2, Op::Get { key: 1 }),
            OpResult::Ok {
                value: Some("a".into())
            }
        );
    }

    #[test]
    fn concurrent_writes_in_opposite_orders_converge_to_the_greater_version() {
        let mut h = Harness::new(3, &[]);
        h.request(0, put(1, "x")); // version (1, n1)
        h.request(1, put(1, "y")); // version (1, n2): greater, n2 > n1 breaks the tie

        // n3 hears n2's write first, then n1's; n1 and n2 each hear the other's.
        h.deliver_where(|(from, to, _)| *from == n(1) && *to == n(2));
        h.deliver_all();
        assert_eq!(h.values(1), [Some("y"); 3]);
        assert!(h.converged());
        // The next write anywhere orders after both (Lamport).
        h.request(0, put(1, "z"));
        assert_eq!(
            h.nodes[0].entries[&1].version,
            Version {
                counter: 2,
                node: n(0)
            }
        );
    }

    #[test]
    fn blind_apply_leaves_concurrent_writes_diverged() {
        let mut h = Harness::new(3, &["blind-apply"]);
        h.request(0, put(1, "x"));
        h.request(1, put(1, "y"));
        h.deliver_where(|(from, to, _)| *from == n(1) && *to == n(2));
        h.deliver_all();
        // Each replica keeps whatever arrived last.
        assert_eq!(h.values(1), [Some("y"), Some("x"), Some("x")]);
        assert!(!h.converged());
    }

    #[test]
    fn a_delete_leaves_a_tombstone_that_a_late_older_put_cannot_undo() {
        let mut h = Harness::new(3, &[]);
        h.request(0, put(1, "a")); // (1, n1)
                                   // Only n2 hears the put before deleting; the put to n3 is late.
        h.deliver_where(|(_, to, _)| *to == n(1));
        assert_eq!(
            h.request(1, Op::Delete { key: 1 }),
            OpResult::Ok { value: None }
        );
        assert_eq!(
            h.nodes[1].entries[&1].version,
            Version {
                counter: 2,
                node: n(1)
            }
        );
        // The delete reaches everyone first, then the old put reaches n3.
        h.deliver_where(|(from, _, _)| *from == n(1));
        h.deliver_all();
        assert_eq!(h.values(1), [None; 3]);
        assert!(h.nodes.iter().all(|p| p.store().is_empty()));
        assert!(
            h.nodes.iter().all(|p| p.entries.contains_key(&1)),
            "tombstones kept"
        );
        assert!(h.converged());
        assert_eq!(h.request(2, Op::Get { key: 1 }), OpResult::NotFound);
    }

    /// A cluster holding k1 = a, k2 deleted (a tombstone), k3 = c, all delivered.
    fn cluster_with_history(bugs: &[&'static str]) -> Harness {
        let mut h = Harness::new(3, bugs);
        h.request(0, put(1, "a"));
        h.request(1, put(2, "b"));
        h.request(2, put(3, "c"));
        h.deliver_all();
        h.request(0, Op::Delete { key: 2 });
        h.deliver_all();
        assert!(h.converged());
        h
    }

    #[test]
    fn a_restarted_node_pulls_the_state_it_lost() {
        let mut h = cluster_with_history(&[]);
        let before = h.nodes[0].digest();
        h.restart(2);
        assert!(h.nodes[2].store().is_empty());
        assert!(!h.nodes[2].synced);
        h.deliver_all();
        assert!(h.nodes[2].synced);
        assert_eq!(h.values(1), [Some("a"); 3]);
        assert_eq!(h.values(3), [Some("c"); 3]);
        // The tombstone comes back too, so equal digests mean equal replicas.
        assert_eq!(h.nodes[2].entries[&2].value, None);
        assert_eq!(h.nodes[2].digest(), before);
        assert!(h.converged());
    }

    #[test]
    fn with_skip_resync_a_restarted_node_stays_empty() {
        let mut h = cluster_with_history(&["skip-resync"]);
        h.restart(2);
        h.deliver_all();
        for _ in 0..10 {
            h.round();
        }
        // Still syncing, it never pulls, and nobody pushes: it never catches up.
        assert!(!h.nodes[2].synced);
        assert!(h.nodes[2].store().is_empty());
        assert_eq!(h.values(1), [Some("a"), Some("a"), None]);
        assert!(!h.converged());
        // New writes still reach it: only the past is missing.
        h.request(0, put(4, "d"));
        h.deliver_all();
        assert_eq!(h.values(4), [Some("d"); 3]);
        // n1's third forward to n3 arrives past a gap that no pull will ever close: gap pulls
        // run only at synced nodes (module doc, "Anti-entropy").
        let pulls_before = h.pulls_sent().len();
        for _ in 0..10 {
            h.round();
        }
        let inbound = h.inbound(2, 0);
        assert_eq!(inbound.received_through, 0);
        assert_eq!(inbound.received_beyond, BTreeSet::from([3]));
        assert_eq!(inbound.sent_reported, 3);
        assert_eq!(h.pulls_sent().len(), pulls_before);
        assert_eq!(h.nodes[2].store().len(), 1);
        assert!(!h.converged());
    }

    #[test]
    fn a_restarted_node_issues_versions_past_its_pre_crash_ones() {
        let mut h = Harness::new(3, &[]);
        h.request(0, put(1, "a"));
        assert_eq!(h.nodes[0].entries[&1].version.counter, 1);
        let reserved = COUNTER_RESERVE_CHUNK;
        assert_eq!(
            h.durable[0],
            Some(PrimaryDurable {
                counter_reserved: reserved
            })
        );
        h.deliver_all();
        h.restart(0);
        // Every start reserves one chunk past where it resumes, before it sends anything.
        let next = reserved + COUNTER_RESERVE_CHUNK;
        assert_eq!(
            h.durable[0],
            Some(PrimaryDurable {
                counter_reserved: next
            })
        );
        // A write before the resync answers arrive: it must still order after the crash.
        h.request(0, put(1, "b"));
        let v = h.nodes[0].entries[&1].version;
        assert_eq!(
            v,
            Version {
                counter: reserved + 1,
                node: n(0)
            }
        );
        h.deliver_all();
        assert_eq!(h.values(1), [Some("b"); 3]);
        assert!(h.converged());
    }

    #[test]
    fn with_volatile_counter_a_restarted_node_reuses_a_version_and_replicas_diverge() {
        let mut h = Harness::new(3, &["volatile-counter"]);
        h.request(0, put(1, "a")); // (1, n1)
        h.deliver_all();
        h.restart(0);
        h.request(0, put(1, "b")); // (1, n1) again, another value
        h.deliver_all();
        for _ in 0..10 {
            h.round();
        }
        // Equal versions are never replaced, whatever anti-entropy pushes.
        assert_eq!(h.values(1), [Some("b"), Some("a"), Some("a")]);
        assert!(!h.converged());
    }

    // Anti-entropy (module doc, "Failure detection and repair", 3): forwards are numbered per
    // link, heartbeats carry the count sent, and a forward still missing a heartbeat period
    // after a heartbeat counted it was lost.

    #[test]
    fn anti_entropy_a_dropped_forward_is_detected_at_the_second_heartbeat_and_pulled() {
        let mut h = Harness::new(3, &[]);
        let (pulls, states) = (h.pulls_sent().len(), h.states_sent());
        h.request(0, put(1, "a"));
        assert_eq!(
            h.inflight[1].2,
            Message::Forward {
                key: 1,
                entry: h.nodes[0].entries[&1].clone(),
                incarnation: COUNTER_RESERVE_CHUNK,
                seq: 1
            }
        );
        h.drop_where(|(_, to, _)| *to == n(2));
        h.deliver_all();
        assert_eq!(h.values(1), [Some("a"), Some("a"), None]);
        // The first heartbeat counts the forward; it may still be on its way.
        h.beat();
        assert_eq!(h.inbound(2, 0).sent_reported, 1);
        assert_eq!(h.inbound(2, 0).received_through, 0);
        assert_eq!(h.pulls_sent().len(), pulls);
        // The second finds it still missing: lost. n3 pulls from n1, and only that.
        h.beat();
        assert_eq!(h.pulls_sent()[pulls..], [(n(2), n(0))]);
        h.deliver_all();
        assert_eq!(h.states_sent(), states + 1);
        assert_eq!(h.inbound(2, 0).received_through, 1);
        assert_eq!(h.values(1), [Some("a"); 3]);
        assert!(h.converged());
        // Repaired: heartbeats alone from now on.
        for _ in 0..5 {
            h.round();
        }
        assert_eq!(h.pulls_sent().len(), pulls + 1);
    }

    #[test]
    fn anti_entropy_a_duplicated_forward_does_not_hide_a_lost_one() {
        let mut h = Harness::new(3, &[]);
        let pulls = h.pulls_sent().len();
        h.request(0, put(1, "a")); // seq 1 on every link of n1
        h.request(0, put(2, "b")); // seq 2
        let first = h
            .inflight
            .iter()
            .find(|(_, to, m)| *to == n(2) && matches!(m, Message::Forward { seq: 1, .. }))
            .cloned()
            .expect("forward 1 to n3");
        h.inflight.push(first);
        h.drop_where(|(_, to, m)| *to == n(2) && matches!(m, Message::Forward { seq: 2, .. }));
        h.deliver_all();
        assert_eq!(h.inbound(2, 0).received_through, 1);
        assert!(h.inbound(2, 0).received_beyond.is_empty());
        h.beat();
        h.beat();
        assert_eq!(h.pulls_sent()[pulls..], [(n(2), n(0))]);
        h.deliver_all();
        assert_eq!(h.values(2), [Some("b"); 3]);
        assert_eq!(h.inbound(2, 0).received_through, 2);
        assert!(h.converged());
    }

    #[test]
    fn anti_entropy_forwards_reordered_within_a_heartbeat_period_cause_no_pull() {
        let mut h = Harness::new(3, &[]);
        let (pulls, states) = (h.pulls_sent().len(), h.states_sent());
        for key in 1..=3 {
            h.request(0, put(key, "a"));
        }
        let to_n3_seq = |seq: u64| {
            move |(_, to, m): &Wire| {
                *to == n(2) && matches!(m, Message::Forward { seq: s, .. } if *s == seq)
            }
        };
        // The third overtakes the others, and a heartbeat overtakes the first two.
        h.deliver_where(to_n3_seq(3));
        h.beat();
        assert_eq!(h.inbound(2, 0).received_through, 0);
        assert_eq!(h.inbound(2, 0).received_beyond, BTreeSet::from([3]));
        h.deliver_where(to_n3_seq(2));
        assert_eq!(h.inbound(2, 0).received_beyond, BTreeSet::from([2, 3]));
        h.deliver_all();
        assert_eq!(h.inbound(2, 0).received_through, 3);
        assert!(h.inbound(2, 0).received_beyond.is_empty());
        for _ in 0..5 {
            h.round();
        }
        assert_eq!(h.pulls_sent().len(), pulls);
        assert_eq!(h.states_sent(), states);
        assert!(h.converged());
    }

    #[test]
    fn anti_entropy_steady_writes_with_nothing_lost_send_no_sync_messages() {
        let mut h = Harness::new(3, &[]);
        let (pulls, states) = (h.pulls_sent().len(), h.states_sent());
        let mut writes = 0u64;
        for step in 0..30u64 {
            for i in 0..3u16 {
                for _ in 0..4 {
                    writes += 1;
                    h.request(i, put(writes % 50, &format!("v{step}")));
                }
            }
            // Every heartbeat leaves with forwards still on their way: digests differ.
            h.heartbeat(&[0, 1, 2]);
            assert_ne!(h.nodes[0].digest(), h.nodes[1].digest(), "step {step}");
            h.deliver_where(|(_, _, m)| matches!(m, Message::Heartbeat { .. }));
            h.deliver_all();
        }
        assert_eq!(h.pulls_sent().len(), pulls);
        assert_eq!(h.states_sent(), states);
        assert!(h.converged());
        assert_eq!(h.inbound(1, 2).received_through, 4 * 30);
        assert_eq!(h.inbound(1, 2).sent_reported, 4 * 30);
    }

    #[test]
    fn with_no_anti_entropy_a_lost_forward_is_never_repaired() {
        let mut h = Harness::new(3, &["no-anti-entropy"]);
        let pulls = h.pulls_sent().len();
        h.request(0, put(1, "a"));
        h.drop_where(|(_, to, _)| *to == n(2));
        h.deliver_all();
        for _ in 0..20 {
            h.round();
        }
        // The gap is seen and never acted on.
        assert_eq!(h.inbound(2, 0).sent_reported, 1);
        assert_eq!(h.inbound(2, 0).received_through, 0);
        assert_eq!(h.pulls_sent().len(), pulls);
        assert_eq!(h.values(1), [Some("a"), Some("a"), None]);
        assert!(!h.converged());
    }

    #[test]
    fn anti_entropy_a_restarted_senders_new_incarnation_resets_the_count_without_a_pull() {
        let mut h = Harness::new(3, &[]);
        for key in 1..=3 {
            h.request(0, put(key, "a"));
        }
        h.round();
        h.round();
        assert_eq!(h.inbound(2, 0).incarnation, COUNTER_RESERVE_CHUNK);
        assert_eq!(h.inbound(2, 0).received_through, 3);
        // n1's last heartbeat of its first incarnation is delayed past its restart.
        h.heartbeat(&[0]);
        let stale = h
            .inflight
            .iter()
            .position(|(_, to, _)| *to == n(2))
            .expect("a beat");
        let stale = h.inflight.remove(stale);
        h.deliver_all();
        h.restart(0);
        h.deliver_all();
        let pulls = h.pulls_sent().len();
        let incarnation = 2 * COUNTER_RESERVE_CHUNK;
        assert_eq!(h.nodes[0].incarnation, incarnation);
        h.request(0, put(4, "d")); // seq 1 again, in the new incarnation
        h.deliver_all();
        assert_eq!(h.inbound(2, 0).incarnation, incarnation);
        assert_eq!(h.inbound(2, 0).received_through, 1);
        // Counts of the old incarnation are ignored: its "3 sent" would look like a gap.
        h.inflight.push(stale);
        h.deliver_all();
        assert_eq!(h.inbound(2, 0).sent_reported, 0);
        for _ in 0..5 {
            h.round();
        }
        assert_eq!(h.inbound(2, 0).sent_reported, 1);
        assert_eq!(h.pulls_sent().len(), pulls);
        assert!(h.converged());
    }

    #[test]
    fn anti_entropy_a_sender_restarted_with_forwards_unaccounted_for_is_pulled_once_synced() {
        let mut h = Harness::new(3, &[]);
        h.request(0, put(1, "a")); // seq 1: reaches n3
        h.request(0, put(2, "b")); // seq 2: lost on its way to n3, and n1 crashes
        h.drop_where(|(_, to, m)| *to == n(2) && matches!(m, Message::Forward { seq: 2, .. }));
        h.deliver_all();
        h.restart(0);
        // n1's restart pull brings k2 back from n2; n3 cannot know forward 2 existed, but it
        // saw forwards past n1's last heartbeat, so it pulls once n1 says it is synced.
        h.deliver_all();
        assert_eq!(h.values(2), [Some("b"), Some("b"), None]);
        let pulls = h.pulls_sent().len();
        h.beat();
        // n2 got both forwards, but cannot tell that nothing followed them: it pulls too.
        assert_eq!(h.pulls_sent()[pulls..], [(n(1), n(0)), (n(2), n(0))]);
        h.deliver_all();
        assert_eq!(h.values(2), [Some("b"); 3]);
        assert!(h.converged());
        for _ in 0..5 {
            h.round();
        }
        assert_eq!(h.pulls_sent().len(), pulls + 2);
    }

    #[test]
    fn heartbeats_mark_a_silent_peer_down_and_a_heard_one_up_with_a_pull() {
        // No anti-entropy: the heal pull alone must converge both sides.
        let mut h = Harness::new(3, &["no-anti-entropy"]);
        let cut = |(from, to, _): &Wire| *from == n(2) || *to == n(2);
        // n3 is frozen: its traffic stops, it keeps its state, and each side writes.
        h.request(0, put(1, "a"));
        h.request(2, put(2, "b"));
        for beat in 1..=5 {
            h.heartbeat(&[0, 1, 2]);
            h.drop_where(cut);
            h.deliver_all();
            // Marked down after failure_timeout (250ms) of silence, not before.
            assert_eq!(h.nodes[0].peers[&n(2)].up, beat < 5, "beat {beat}");
        }
        assert!(!h.nodes[2].peers[&n(0)].up);
        assert!(h.nodes[0].peers[&n(1)].up);
        // Unfrozen: the first heartbeats through bring both sides up and make each pull.
        h.heartbeat(&[0, 1, 2]);
        let pulls = h
            .inflight
            .iter()
            .filter(|(_, _, m)| *m == Message::SyncRequest);
        assert_eq!(pulls.count(), 0);
        h.deliver_where(|(_, _, m)| matches!(m, Message::Heartbeat { .. }));
        assert!(h.nodes[0].peers[&n(2)].up);
        assert!(h.nodes[2].peers[&n(0)].up);
        let mut pulls: Vec<(NodeId, NodeId)> = h
            .inflight
            .iter()
            .filter(|(_, _, m)| *m == Message::SyncRequest)
            .map(|(f, t, _)| (*f, *t))
            .collect();
        pulls.sort();
        assert_eq!(
            pulls,
            [(n(0), n(2)), (n(1), n(2)), (n(2), n(0)), (n(2), n(1))]
        );
        h.deliver_all();
        assert_eq!(h.values(1), [Some("a"); 3]);
        assert_eq!(h.values(2), [Some("b"); 3]);
        assert!(h.converged());
    }
}
