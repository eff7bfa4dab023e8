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
//!    one answer has arrived; the node is then *synced*, and serves. Restarted, it goes on
//!    asking every peer that is up and has not answered yet, on each heartbeat, until each has: the
//!    first answer may come from a peer that restarted too and holds only part of what the
//!    cluster held, or nothing, while the one node that kept a key answers late (it was
//!    frozen, say). And what a full state teaches a node, it forwards to its other peers (a
//!    peer that synced from a restarted node, or before a late state arrived, may lack it
//!    too), so that the state of the one node that kept a key reaches every replica; so does
//!    what a forward of an incarnation its sender has left (delayed past the restart) brings.
//!    (`scenarios/swarm.toml` primary seeds 18 and 328: restarted nodes synced from
//!    restarted peers and never learnt the keys that only another node held.)
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

mod anti_entropy;
mod durable;
mod invariants;
mod messages;
mod store;
mod sync;
#[cfg(test)]
mod tests;

pub use crate::quorum::Version;
pub use anti_entropy::RECEIVED_BEYOND_MAX;
pub use crate::reserve::COUNTER_RESERVE_CHUNK;
pub use durable::PrimaryDurable;
pub use messages::{Message, Timer};
pub use store::Entry;

use crate::contract::{Context, NodeConfig, Promise, Protocol, ProtocolInfo, Read, Request};
use crate::Replay;
use crate::ids::NodeId;
use crate::reserve::Reservation;
use crate::kv::{self, Key, Op, OpResult, Value};
use crate::{BugSet, ParamSet};
use crate::time::{Span, Time};
use anti_entropy::Inbound;
use std::collections::{BTreeMap, BTreeSet};

crate::protocol_params! {
    /// primary's parameters, as a scenario's `[cluster.params.primary]` sets them.
    pub(crate) struct Params {
        heartbeat: Span = "50ms",
            "interval between heartbeats to every peer";
        failure_timeout: Span = "250ms",
            "silence after which a peer is marked down";
        anti_entropy_after: u64 = "3",
            "heartbeats from a peer to wait, after pulling its state, before pulling \
                      again for a forward still missing";
    }
}

crate::planted_bugs! {
    /// primary's planted bugs.
    pub(crate) struct Bugs {
        skip_resync = "skip-resync",
            "a restarted node never pulls state from its peers (and, still syncing, \
                      never pulls for lost forwards either)";
        blind_apply = "blind-apply",
            "states from peers (forwards and resyncs) are applied without comparing \
                      versions, so concurrent writes leave replicas diverged";
        no_anti_entropy = "no-anti-entropy",
            "gaps in the forwards' numbers are never acted on, so a lost forward is \
                      never repaired";
        volatile_counter = "volatile-counter",
            "a restarted node forgets its Lamport counter and reuses versions it \
                      issued before the crash (and its incarnation: peers take its new \
                      forwards' numbers for duplicates)";
    }
}

/// The planted bugs switched on, read once at start.
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
    /// Whether it has answered a pull since this node started: the restart pull goes on
    /// asking each peer until it has (module doc, "Failure detection and repair", 1).
    answered: bool,
}

crate::roles! {
    /// A node's role: every node takes writes, so the only difference is whether it has
    /// pulled a full state since it started.
    pub enum Role {
        /// Serves reads and writes, synced with a peer's full state since it started.
        Replica = "replica";
        /// Started (or restarted) and still waiting for a peer's full state; it serves
        /// meanwhile from what it holds.
        Syncing = "syncing";
    }
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
    /// XOR of [`store::entry_hash`] over `entries`, kept up to date on every change.
    digest: u64,
    /// The greatest version counter ever installed, and the greatest of this node's own:
    /// running maxima, so that the invariants cost O(1) per handler.
    installed_counter_max: u64,
    installed_own_counter_max: u64,
    /// The Lamport counter (at least every version counter this node holds) and its
    /// persisted high-water mark (at least every counter this node ever issued).
    counter: Reservation,
    /// Whether a full state has arrived since start.
    synced: bool,
    /// True when `skip-resync` is on and this start is a restart: the pull never happens.
    resync_skipped: bool,
    /// Restarted (its store lost): ask every peer that is up until each has answered, not
    /// only until the first has.
    restarted: bool,
    peers: BTreeMap<NodeId, PeerState>,
    /// Recovered with a damaged counter mark: the peers that have not yet said how far this
    /// node's counter went. It issues no version (refuses writes) until all have.
    relearning: Option<BTreeSet<NodeId>>,
}

/// Whether `op`, answered `result` by the store's specification, changed the key's state.
fn wrote(op: &Op, result: &OpResult) -> bool {
    op.is_write() && matches!(result, OpResult::Ok { .. })
}

impl Protocol for Primary {
    type Message = Message;
    type Timer = Timer;
    type Durable = PrimaryDurable;
    type Record = PrimaryDurable;
    type Role = Role;

    fn info() -> ProtocolInfo {
        ProtocolInfo {
            name: "primary",
            description: "primary forwarding: any node applies a write, acks at once and forwards \
                          the versioned state (last writer wins); heartbeats, resync and \
                          anti-entropy converge replicas. Not linearizable (local reads, lost \
                          concurrent writes), not durable (acked before replicated)",
            promises: &[Promise::Convergent, Promise::LiveAfterHeal],
            params: Params::SPECS,
            bugs: Bugs::SPECS,
            roles: <Role as crate::RoleKind>::SPECS,
            transactions: false,
            contexts: false,
            operators: &[],
            membership: false,
            check_params,
        }
    }

    /// A mark whose checksum fails is no mark: the node keeps the one before it, if the
    /// disk still holds one (each mark is a snapshot, so usually none), and is damaged: the
    /// mark it lost may have been higher, so it must not issue versions from what it kept
    /// (disk-faults.toml seed 23 reused versions so) until its peers say how far it went.
    fn recover(
        durable: &mut Option<PrimaryDurable>,
        record: Read<'_, PrimaryDurable>,
        _: &NodeConfig,
    ) -> bool {
        match record {
            Read::Intact(r) => {
                r.replay(durable);
                true
            }
            // Never synced: the mark it held was never relied on.
            Read::Torn { .. } => false,
            Read::Corrupt { .. } | Read::Misplaced { .. } => {
                let kept = durable.map_or(0, |d| d.counter_reserved);
                *durable = Some(PrimaryDurable {
                    counter_reserved: kept,
                    damaged: true,
                });
                false
            }
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
            answered: false,
        };
        let peers: BTreeMap<NodeId, PeerState> =
            config.peers().map(|p| (p, peer.clone())).collect();
        let params = Params::from_params(&config.params);
        // A damaged mark (see `recover`): relearn it from every peer before writing.
        let damaged = durable.is_some_and(|d| d.damaged) && !bugs.volatile_counter;
        let relearning = damaged.then(|| peers.keys().copied().collect::<BTreeSet<NodeId>>());
        let mut node = Primary {
            me: config.id,
            // A zero interval would re-fire at the same instant forever.
            heartbeat: Span(params.heartbeat.as_micros().max(1)),
            failure_timeout: params.failure_timeout,
            anti_entropy_after: params.anti_entropy_after.max(1),
            bugs,
            // Set below, once this start's reservation is made.
            incarnation: 0,
            entries: BTreeMap::new(),
            digest: 0,
            installed_counter_max: 0,
            installed_own_counter_max: 0,
            counter: Reservation::resume(counter),
            // Alone, there is nobody to sync from.
            synced: peers.is_empty(),
            resync_skipped: bugs.skip_resync && durable.is_some(),
            restarted: durable.is_some(),
            peers,
            relearning,
        };
        node.reserve_counter(ctx);
        node.incarnation = node.counter.reserved();
        if node.relearning.as_ref().is_some_and(|w| w.is_empty()) {
            node.finish_relearning(ctx);
        } else if node.relearning.is_some() {
            ctx.note(|| "damaged counter mark: relearning it from every peer".to_string());
            node.maybe_query_counter(ctx);
        }
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
            Message::CounterQuery => {
                let known = self.counter_known_of(from);
                ctx.send(from, Message::CounterReply { known });
            }
            Message::CounterReply { known } => self.on_counter_reply(ctx, from, known),
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
                self.maybe_query_counter(ctx);
                ctx.set_timer(Timer::Heartbeat, self.heartbeat);
            }
        }
    }

    fn on_request(&mut self, ctx: &mut Context<'_, Self>, request: Request) {
        let Request {
            id: request, op, ..
        } = request;
        let key = op.key();
        if self.relearning.is_some() && op.is_write() {
            // Not applied, and never will be: it may not issue a version yet.
            ctx.note(|| format!("{request}: relearning the counter; unavailable"));
            return ctx.reply(request, OpResult::Unavailable { hint: None });
        }
        let mut value = self.entries.get(&key).and_then(|e| e.value.clone());
        let result = kv::apply_to_value(&mut value, &op);
        if wrote(&op, &result) {
            let entry = Entry {
                version: self.next_version(ctx),
                value,
            };
            self.install(key, entry.clone());
            self.forward(ctx, key, &entry, None);
        }
        // The seed acknowledges before any peer has the write: available, not durable.
        ctx.reply(request, result);
    }

    fn role(&self) -> Role {
        if self.synced {
            Role::Replica
        } else {
            Role::Syncing
        }
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
        self.check_node()
    }
}

/// primary's own check of its parameters ([`crate::params::ParamCheck`]): heartbeats can
/// fire, and a peer is marked down only after missing more than one.
fn check_params(
    params: &crate::params::Params,
    _: crate::params::ParamContext<'_>,
) -> Result<(), crate::params::ParamProblem> {
    use crate::params::{longer_than, timers_at_least_min};
    timers_at_least_min(params, &["heartbeat", "failure_timeout"])?;
    let why = "every peer would be marked down between two of its heartbeats";
    longer_than(params, "failure_timeout", "heartbeat", why)
}
