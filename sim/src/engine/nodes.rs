//! Node hosting and routing: each node's protocol state with everything the protocol must
//! not see (its durable copy, its clock, its fault status, its armed timers), the handlers
//! that run on it, the effects they emit, and the messages, timers and requests on their way
//! to it.
//!
//! A handler's effects are applied in order when it returns, after its invariants are
//! checked. A handler that halts its node ([`Effect::Halt`]) reports [`Halt::Yes`]: crashing
//! the node and recording why is the engine's, which owns fault application.

use super::bus::Bus;
use super::event::Event;
use super::roles::RoleLog;
use crate::clock::NodeClock;
use crate::network::{stretched, Fate};
use crate::queue::EventQueue;
use crate::rng::{Stream, Streams};
use crate::scenario::fault_kinds::DiskFaultKind;
use crate::scenario::Scenario;
use simkv_protocols::{
    Context, Effect, NodeConfig, NodeId, Protocol, Read, Request, Span, SpanRange, Time,
};
use std::ops::{Index, IndexMut};

/// One node as the engine holds it.
pub(crate) struct NodeSlot<P: Protocol> {
    pub(super) state: Option<P>,
    /// Its simulated disk: the log of records it wrote.
    pub(super) disk: Disk<P::Record>,
    pub(super) config: NodeConfig,
    /// Bumped by each crash, so that timers armed before it never fire after it.
    pub(super) epoch: u32,
    pub(super) frozen: bool,
    pub(super) paused: bool,
    /// Not in the cluster: outside it until its `join` (a scenario's `initial` leaves it
    /// out), or gone for good after it left or was removed. Never started while outside, and
    /// neither down nor a fault in force: the cluster is whole without it.
    pub(super) outside: bool,
    /// Asked to leave (`leave`): it stops for good once [`Protocol::has_left`] says so.
    pub(super) leaving: bool,
    /// How many times longer its messages, replies and timers take (1: its normal speed);
    /// see `fault_kinds/slow.rs` for the model.
    pub(super) slow: u32,
    /// Events that reached the node while it was paused, in arrival order.
    pub(super) held: Vec<Event<P>>,
    /// Armed timers: each with the generation of its latest arming and when it is due.
    pub(super) timers: Vec<(P::Timer, u64, Time)>,
    pub(super) next_generation: u64,
    pub(super) clock: NodeClock,
    pub(super) stream: Stream,
    /// How long each sync takes (`[disk] sync`).
    sync_latency: SpanRange,
    /// The disk's own stream, which draws each sync's latency.
    disk_stream: Stream,
}

/// A node's simulated disk: an append-only log of the records it wrote, of which a prefix
/// is synced. A write takes no time; a sync takes what `[disk] sync` draws (none by
/// default: a handler's effects after a sync then see it done). While a sync is under way,
/// every send and reply the node emits after it began waits for it (`Event::Synced`): those
/// of the handler that asked for it, and those of later handlers, as from a server whose
/// fsync blocks its loop. A crash before it completes loses what it was to make durable.
/// Storage faults (`fault_kinds/disk.rs`) damage it: a crash may lose the unsynced suffix
/// (all of it, or a random part) or tear the last unsynced write, and a record may be
/// corrupted in place; a recovery reads a damaged record as [`Read::Corrupt`], a torn last
/// one as [`Read::Torn`].
pub(crate) struct Disk<R> {
    /// Each record with its damage: the bits flipped, 0 when intact.
    records: Vec<(R, u64)>,
    /// How many records were dropped from the front (by a synced snapshot) since the node
    /// first wrote: a record's mark (see [`Disk::mark`]) is `dropped` + its index.
    dropped: u64,
    /// How many records, from the first, a sync made durable.
    synced: usize,
    /// The latest snapshot record not yet synced: a sync past it drops the records before it.
    snapshot: Option<usize>,
    /// When the latest sync under way completes: syncs complete in the order they began.
    pub(super) busy_until: Time,
    /// The mark the latest sync begun makes durable.
    pub(super) pending: u64,
    /// What a crash does to the unsynced suffix.
    pub(super) on_crash: OnCrash,
    /// What `[disk] crash` says it does, which a `healthy` disk fault brings back.
    pub(super) configured: OnCrash,
    /// The last record was torn by a crash in the middle of its write: a recovery reads it
    /// as [`Read::Torn`] and then cuts it off (a log's repair on open), so what the node
    /// writes next is not behind it.
    torn: bool,
    /// No room (a `full` disk fault, until `healthy`): a write fails and its node stops.
    pub(super) full: bool,
    /// A `misdirect` disk fault armed: the next write lands on the record this draw picks
    /// among those on the disk then.
    pub(super) misdirect: Option<u64>,
    /// The marks (see [`Disk::mark`]) of records a misdirected write landed on: each holds
    /// a later record, read back as [`Read::Misplaced`].
    misplaced: Vec<u64>,
}

/// What a crash does to a disk's unsynced writes (a `disk` fault sets it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct OnCrash {
    /// Lose every unsynced write (`Some(true)`), a random suffix of them (`Some(false)`), or
    /// none (`None`: the page cache made it to the platter).
    pub lose: Option<bool>,
    /// Tear the last unsynced write that survives: it reads back corrupt.
    pub torn: bool,
}

impl OnCrash {
    /// What `[disk] crash = mode` makes a crash do.
    pub(crate) fn configured(mode: DiskFaultKind) -> OnCrash {
        match mode {
            DiskFaultKind::LoseUnsynced => OnCrash {
                lose: Some(true),
                torn: false,
            },
            DiskFaultKind::LoseSomeUnsynced => OnCrash {
                lose: Some(false),
                torn: false,
            },
            DiskFaultKind::TornWrite => OnCrash {
                lose: None,
                torn: true,
            },
            DiskFaultKind::Healthy
            | DiskFaultKind::Corrupt
            | DiskFaultKind::Full
            | DiskFaultKind::Misdirect => OnCrash::default(),
        }
    }
}

impl<R> Disk<R> {
    /// An empty disk whose crashes do what `configured` says.
    fn new(configured: OnCrash) -> Self {
        Disk {
            records: Vec::new(),
            dropped: 0,
            synced: 0,
            snapshot: None,
            busy_until: Time::ZERO,
            pending: 0,
            on_crash: configured,
            configured,
            torn: false,
            full: false,
            misdirect: None,
            misplaced: Vec::new(),
        }
    }

    /// Appends `record`; a `snapshot` record rebuilds the state on its own.
    fn write(&mut self, record: R, snapshot: bool) {
        if let Some(draw) = self.misdirect.take() {
            if !self.records.is_empty() {
                // Lands on an earlier record's place: that record is gone, and this one is
                // nowhere else (the log does not grow).
                let at = (draw % self.records.len() as u64) as usize;
                self.records[at] = (record, 0);
                self.misplaced.push(self.dropped + at as u64);
                return;
            }
        }
        if snapshot {
            self.snapshot = Some(self.records.len());
        }
        self.records.push((record, 0));
    }

    /// Forgets misplaced records a crash cut off, so that what the node writes at their
    /// places next reads back as itself.
    fn forget_misplaced_past_the_end(&mut self) {
        let end = self.mark();
        self.misplaced.retain(|m| *m < end);
    }

    /// Where the log ends now: a sync begun now makes durable the records before this mark.
    fn mark(&self) -> u64 {
        self.dropped + self.records.len() as u64
    }

    /// When a sync begun at `now`, taking `latency`, completes: after every sync under way.
    fn begin_sync(&mut self, now: Time, latency: Span) -> Time {
        self.busy_until = self.busy_until.max(now + latency);
        self.pending = self.mark();
        self.busy_until
    }

    /// Makes every record before `mark` durable, and drops what a synced snapshot made
    /// useless.
    fn sync(&mut self, mark: u64) {
        let upto = (mark.saturating_sub(self.dropped) as usize).min(self.records.len());
        self.synced = self.synced.max(upto);
        if let Some(at) = self.snapshot.filter(|at| *at < self.synced) {
            self.snapshot = None;
            self.records.drain(..at);
            self.dropped += at as u64;
            self.synced -= at;
        }
    }

    /// Whether the node ever wrote anything that is still on the disk.
    pub(super) fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// How many records the disk holds.
    pub(super) fn len(&self) -> usize {
        self.records.len()
    }

    /// What a crash does to the unsynced suffix, as [`Disk::on_crash`] says, drawing from
    /// `rng`; a note of what it did, if anything.
    pub(super) fn crash(&mut self, rng: &mut Stream) -> Option<String> {
        // Syncs under way never complete: the restarted node's first sync waits for none.
        self.busy_until = Time::ZERO;
        let unsynced = self.records.len() - self.synced;
        if unsynced == 0 {
            return None;
        }
        let mut notes = Vec::new();
        if let Some(all) = self.on_crash.lose {
            let keep = if all {
                0
            } else {
                rng.below(unsynced as u64 + 1) as usize
            };
            self.records.truncate(self.synced + keep);
            if self.snapshot.is_some_and(|at| at >= self.records.len()) {
                self.snapshot = None;
            }
            self.forget_misplaced_past_the_end();
            notes.push(format!(
                "lost {} of {unsynced} unsynced writes",
                unsynced - keep
            ));
        }
        if self.on_crash.torn && self.records.len() > self.synced {
            if let Some(last) = self.records.last_mut() {
                last.1 = rng.next_u64() | 1;
                self.torn = true;
                notes.push("tore the last write".to_string());
            }
        }
        // What a crash leaves is on the platter (the model's crash is a power loss): it is
        // durable from now on, and a later crash cannot take it. Left unsynced, a record a
        // restarted node read back and acted on (twopc's prepared record, voted yes on
        // again) was lost by the next crash (swarm.toml twopc seed 362: a committed write
        // missing on one replica for good). A torn last record is cut off at recovery.
        let whole = self.records.len() - usize::from(self.torn);
        self.synced = self.synced.max(whole);
        (!notes.is_empty()).then(|| notes.join(", "))
    }

    /// Flips bits of a record drawn from `rng`: its index, if the disk holds any.
    pub(super) fn corrupt(&mut self, rng: &mut Stream) -> Option<usize> {
        if self.records.is_empty() {
            return None;
        }
        let i = rng.below(self.records.len() as u64) as usize;
        self.records[i].1 = rng.next_u64() | 1;
        Some(i)
    }

    /// What a restart reads back: the records folded in write order while the protocol
    /// reads on (`None`: no record).
    fn recover<P: Protocol<Record = R>>(&self, config: &NodeConfig) -> Option<P::Durable> {
        let mut durable = None;
        let torn = self.torn.then(|| self.records.len() - 1);
        for (i, (record, flip)) in self.records.iter().enumerate() {
            let read = match *flip {
                0 if self.misplaced.contains(&(self.dropped + i as u64)) => {
                    Read::Misplaced { written: record }
                }
                0 => Read::Intact(record),
                flip if torn == Some(i) => Read::Torn {
                    written: record,
                    flip,
                },
                flip => Read::Corrupt {
                    written: record,
                    flip,
                },
            };
            if !P::recover(&mut durable, read, config) {
                break;
            }
        }
        durable
    }

    /// Cuts off a torn last record once a recovery has read it, as a log does when it opens
    /// (etcd's WAL repair): it was never synced, so nothing acknowledged rests on it.
    fn cut_torn_tail(&mut self) {
        if std::mem::take(&mut self.torn) {
            self.records.pop();
            self.forget_misplaced_past_the_end();
            if self.snapshot.is_some_and(|at| at >= self.records.len()) {
                self.snapshot = None;
            }
        }
    }
}

/// Where a node stands with respect to faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    /// It has a protocol state: not crashed (it may still be frozen or paused).
    pub running: bool,
    /// Cut from the network: it sends, receives and answers nothing.
    pub frozen: bool,
    /// Suspended: what reaches it waits until it resumes.
    pub paused: bool,
}

/// Whether a handler halted its node: the engine must then crash it.
#[must_use = "a node that halted must be crashed"]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Halt {
    /// The node runs on (or no handler ran).
    No,
    /// The handler emitted [`Effect::Halt`]; what it emitted after that was dropped.
    Yes,
    /// The handler wrote to a full disk: the write failed and the node stops on it (what it
    /// emitted from the write on was dropped).
    DiskFull,
}

/// A node's failure detector declared a member dead ([`Effect::DeclareDead`]), as the
/// `false_deaths` check reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeadDeclaration {
    /// True virtual time of the declaration.
    pub at: Time,
    /// Who declared.
    pub observer: NodeId,
    /// Who was declared dead.
    pub subject: NodeId,
    /// True virtual time the declaring node's evidence goes back to (its local span
    /// converted at its clock's rate).
    pub evidence_from: Time,
    /// Whether the subject was then running and, in its own view, a member
    /// ([`Protocol::is_member`]); it may still have been frozen, paused or cut off.
    pub subject_member: bool,
}

/// Every node of the run, and what their handlers leave for the engine.
pub(crate) struct Nodes<P: Protocol> {
    slots: Vec<NodeSlot<P>>,
    /// The effects buffer, lent to each handler in turn so that it is allocated once.
    effects: Vec<Effect<P>>,
    /// The node whose handler ran in the current step.
    pub(super) handled: Option<NodeId>,
    /// The first broken invariant (or panicking handler), with the time it broke.
    pub(super) violation: Option<(Time, String)>,
    /// Each node's role and term as they change, when sampled (see `roles.rs`).
    pub(super) roles: Option<RoleLog<P>>,
    /// Every member a failure detector declared dead, in time order.
    pub(super) declared_dead: Vec<DeadDeclaration>,
    /// The latest time a timer, sync or reply stretched by a slow node is due: the slowness
    /// outlasts its undoing until then (see [`Nodes::lingers_until`]).
    lingers: Time,
    /// Whether clients use causal contexts (`workload.contexts`): a reply's context reaches
    /// its client only then, and is dropped otherwise, before anything hashes or traces it.
    keep_contexts: bool,
}

impl<P: Protocol> Index<usize> for Nodes<P> {
    type Output = NodeSlot<P>;

    #[inline]
    fn index(&self, i: usize) -> &NodeSlot<P> {
        &self.slots[i]
    }
}

impl<P: Protocol> IndexMut<usize> for Nodes<P> {
    #[inline]
    fn index_mut(&mut self, i: usize) -> &mut NodeSlot<P> {
        &mut self.slots[i]
    }
}

impl<P: Protocol> Nodes<P> {
    /// `scenario`'s nodes, not started, each with its clock and its own stream; their roles
    /// are sampled as they change when `sample_roles`.
    pub(super) fn new(scenario: &Scenario, streams: &Streams, sample_roles: bool) -> Self {
        let node_ids = scenario.node_ids();
        let slots: Vec<NodeSlot<P>> = node_ids
            .iter()
            .map(|id| NodeSlot {
                state: None,
                disk: Disk::new(OnCrash::configured(scenario.disk.crash)),
                config: NodeConfig {
                    id: *id,
                    nodes: node_ids.clone(),
                    members: scenario.cluster.initial.clone(),
                    joining: !scenario.cluster.initial.contains(id),
                    params: scenario.cluster.params.clone(),
                    bugs: scenario.cluster.bugs.clone(),
                },
                epoch: 0,
                frozen: false,
                paused: false,
                outside: !scenario.cluster.initial.contains(id),
                leaving: false,
                slow: 1,
                held: Vec::new(),
                timers: Vec::new(),
                next_generation: 0,
                clock: scenario
                    .clocks
                    .iter()
                    .find(|c| c.node == *id)
                    .map(|c| NodeClock::new(c.offset_us, c.drift_ppm))
                    .unwrap_or_default(),
                stream: streams.nodes[id.index()].clone(),
                sync_latency: scenario.disk.sync,
                disk_stream: streams.disks[id.index()].clone(),
            })
            .collect();
        Nodes {
            roles: sample_roles.then(|| RoleLog::new(slots.len())),
            slots,
            effects: Vec::new(),
            handled: None,
            violation: None,
            declared_dead: Vec::new(),
            lingers: Time::ZERO,
            keep_contexts: scenario.workload.contexts,
        }
    }

    /// Until when syncs and replies a slow node scheduled are still pending: they complete
    /// late even once it is back to speed, so the cluster is not back to normal before then.
    pub(super) fn lingers_until(&self) -> Time {
        self.lingers
    }

    /// Sets `node`'s slow-down factor to `factor` at `now` and returns the one it had. The
    /// timers it has armed are its own work, done at its speed: the time each has left
    /// scales by `factor / before` (an unslowed node's timers come due as if it had always
    /// run at its speed from now on), re-armed under a new generation so that the event
    /// queued at the old time is stale.
    pub(super) fn set_speed(
        &mut self,
        queue: &mut EventQueue<Event<P>>,
        now: Time,
        node: NodeId,
        factor: u32,
    ) -> u32 {
        let slot = &mut self.slots[node.index()];
        let before = std::mem::replace(&mut slot.slow, factor);
        if before == factor {
            return before;
        }
        let epoch = slot.epoch;
        for (timer, generation, due) in &mut slot.timers {
            if *due <= now {
                continue;
            }
            let left =
                u128::from(due.since(now).as_micros()) * u128::from(factor) / u128::from(before);
            let at = now + Span(u64::try_from(left).unwrap_or(u64::MAX));
            if at == *due {
                continue;
            }
            *generation = slot.next_generation;
            slot.next_generation += 1;
            *due = at;
            queue.push(
                at,
                Event::Timer {
                    node,
                    epoch,
                    generation: *generation,
                    timer: timer.clone(),
                },
            );
        }
        before
    }

    /// The nodes in the cluster now, in id order.
    pub(super) fn members(&self) -> Vec<NodeId> {
        let inside = self.slots.iter().filter(|s| !s.outside);
        inside.map(|s| s.config.id).collect()
    }

    /// Every node's hosts list becomes the cluster's membership now, as an operator keeps
    /// it: a node that starts (joins, or restarts) reads it in its [`NodeConfig::members`].
    pub(super) fn publish_members(&mut self) {
        let members = self.members();
        for slot in &mut self.slots {
            slot.config.members.clone_from(&members);
        }
    }

    /// How many nodes the cluster has.
    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }

    /// The nodes in id order.
    pub(super) fn iter(&self) -> std::slice::Iter<'_, NodeSlot<P>> {
        self.slots.iter()
    }

    /// Each node's final state, in id order; `None` for a crashed node.
    pub(super) fn into_states(self) -> Vec<Option<P>> {
        self.slots.into_iter().map(|n| n.state).collect()
    }

    /// Whether `node` is running, frozen, paused.
    pub(super) fn status(&self, node: NodeId) -> NodeStatus {
        let slot = &self.slots[node.index()];
        NodeStatus {
            running: slot.state.is_some(),
            frozen: slot.frozen,
            paused: slot.paused,
        }
    }

    /// Starts (or restarts, from its durable state) `node`.
    pub(super) fn start(&mut self, bus: &mut Bus<'_, P>, node: NodeId) -> Halt {
        let tracing = bus.trace.is_some();
        let mut effects = std::mem::take(&mut self.effects);
        let slot = &mut self.slots[node.index()];
        let local = (slot.clock.local(bus.now), slot.clock.monotonic(bus.now));
        let mut ctx = Context::new(node, local, tracing, &mut effects, &mut slot.stream);
        let config = &slot.config;
        let disk = &slot.disk;
        let started = contain(|| P::start(&mut ctx, config, disk.recover::<P>(config).as_ref()));
        slot.disk.cut_torn_tail();
        match started {
            Ok(state) => slot.state = Some(state),
            Err(why) => {
                self.violation = Some((bus.now, format!("{node}: start {why}")));
                self.effects = effects;
                self.effects.clear();
                return Halt::No;
            }
        }
        self.after_handler(bus, node, effects)
    }

    /// Runs one handler on a running, unpaused node.
    pub(super) fn handle(
        &mut self,
        bus: &mut Bus<'_, P>,
        node: NodeId,
        input: impl FnOnce(&mut P, &mut Context<'_, P>),
    ) -> Halt {
        let tracing = bus.trace.is_some();
        let mut effects = std::mem::take(&mut self.effects);
        let slot = &mut self.slots[node.index()];
        let Some(state) = slot.state.as_mut() else {
            self.effects = effects;
            return Halt::No;
        };
        let local = (slot.clock.local(bus.now), slot.clock.monotonic(bus.now));
        let mut ctx = Context::new(node, local, tracing, &mut effects, &mut slot.stream);
        let outcome = contain(|| input(state, &mut ctx));
        self.handled = Some(node);
        if let Err(why) = outcome {
            // The node's state may be half-updated: stop here, with the panic as the verdict.
            self.violation = Some((bus.now, format!("{node}: handler {why}")));
            self.effects = effects;
            self.effects.clear();
            return Halt::No;
        }
        self.after_handler(bus, node, effects)
    }

    fn after_handler(
        &mut self,
        bus: &mut Bus<'_, P>,
        node: NodeId,
        mut effects: Vec<Effect<P>>,
    ) -> Halt {
        // Sampled first, so that a role change that breaks an invariant is on record.
        if let Some(roles) = &mut self.roles {
            let state = self.slots[node.index()].state.as_ref();
            roles.sample(bus.now, node, state, bus.trace);
        }
        if let Some(Err(broken)) = self.slots[node.index()]
            .state
            .as_ref()
            .map(P::check_invariants)
        {
            self.violation = Some((bus.now, format!("{node}: {broken}")));
        }
        if P::HAS_CLUSTER_INVARIANTS && self.violation.is_none() {
            // On the stack for clusters of up to 16 nodes: this runs after every handler.
            let n = self.slots.len();
            let mut states_buf: [Option<&P>; 16] = [None; 16];
            let mut clocks_buf = [Time::ZERO; 16];
            let mut states_vec = Vec::new();
            let mut clocks_vec = Vec::new();
            let (states, clocks): (&mut [Option<&P>], &mut [Time]) = if n <= 16 {
                (&mut states_buf[..n], &mut clocks_buf[..n])
            } else {
                states_vec.resize(n, None);
                clocks_vec.resize(n, Time::ZERO);
                (&mut states_vec, &mut clocks_vec)
            };
            for ((slot, state), clock) in self
                .slots
                .iter()
                .zip(states.iter_mut())
                .zip(clocks.iter_mut())
            {
                *state = slot.state.as_ref();
                *clock = slot.clock.monotonic(bus.now);
            }
            if let Err(broken) = P::check_cluster(states, clocks, Some(node)) {
                self.violation = Some((bus.now, format!("cluster: {broken}")));
            }
        }
        let mut halt = Halt::No;
        // A sync that takes time: when it completes, the mark it makes durable, and the
        // sends and replies emitted after it, which leave only then (etcd/raft's
        // `msgsAfterAppend`: what is sent after a sync must not overtake it).
        let mut syncing: Option<(Time, u64, Vec<Effect<P>>)> = None;
        for effect in effects.drain(..) {
            match effect {
                Effect::Halt => {
                    // The node stopped itself: what it emitted after this never happens.
                    halt = Halt::Yes;
                    break;
                }
                Effect::Write { .. } if self.slots[node.index()].disk.full => {
                    // No room: the write fails and the node stops on it (fail-stop, as
                    // etcd's WAL and PostgreSQL do), nothing after it happening.
                    halt = Halt::DiskFull;
                    break;
                }
                Effect::Sync if self.slots[node.index()].sync_latency.max > Span::ZERO => {
                    if let Some(done) = syncing.take() {
                        self.push_synced(bus, node, done);
                    }
                    let slot = &mut self.slots[node.index()];
                    let (min, max) = (slot.sync_latency.min, slot.sync_latency.max);
                    let latency = Span(slot.disk_stream.between(min.as_micros(), max.as_micros()));
                    let latency = stretched(latency, u64::from(slot.slow));
                    let at = slot.disk.begin_sync(bus.now, latency);
                    if slot.slow != 1 {
                        self.lingers = self.lingers.max(at);
                    }
                    syncing = Some((at, slot.disk.mark(), Vec::new()));
                }
                Effect::Send { .. } | Effect::Reply { .. } if syncing.is_some() => {
                    if let Some((_, _, after)) = &mut syncing {
                        after.push(effect);
                    }
                }
                // A sync an earlier handler began is still under way: what the node sends
                // now leaves after it too, as from a server whose fsync blocks its loop (a
                // raft leader's heartbeat must not carry entries it has not made durable).
                Effect::Send { .. } | Effect::Reply { .. }
                    if self.slots[node.index()].disk.busy_until > bus.now =>
                {
                    let disk = &self.slots[node.index()].disk;
                    syncing = Some((disk.busy_until, disk.pending, vec![effect]));
                }
                effect => self.apply_effect(bus, node, effect),
            }
        }
        if let (Some(done), Halt::No) = (syncing, halt) {
            self.push_synced(bus, node, done);
        }
        effects.clear();
        self.effects = effects;
        halt
    }

    /// Queues the completion of a sync that takes time.
    fn push_synced(
        &mut self,
        bus: &mut Bus<'_, P>,
        node: NodeId,
        (at, mark, after): (Time, u64, Vec<Effect<P>>),
    ) {
        let epoch = self.slots[node.index()].epoch;
        bus.queue.push(
            at,
            Event::Synced {
                node,
                epoch,
                mark,
                after,
            },
        );
    }

    /// A sync completes, unless its node crashed since it began: what it covered is
    /// durable, and what waited for it leaves now (a frozen node's sends are lost as any).
    pub(super) fn on_synced(
        &mut self,
        bus: &mut Bus<'_, P>,
        node: NodeId,
        epoch: u32,
        mark: u64,
        after: Vec<Effect<P>>,
    ) {
        let slot = &mut self.slots[node.index()];
        if slot.epoch != epoch || slot.state.is_none() {
            return;
        }
        slot.disk.sync(mark);
        for effect in after {
            self.apply_effect(bus, node, effect);
        }
    }

    fn apply_effect(&mut self, bus: &mut Bus<'_, P>, node: NodeId, effect: Effect<P>) {
        match effect {
            Effect::Send { to, msg } => self.send(bus, node, to, msg),
            Effect::SetTimer { timer, delay } => {
                let slot = &mut self.slots[node.index()];
                let local = slot
                    .stream
                    .between(delay.min.as_micros(), delay.max.as_micros());
                let delay = slot.clock.true_delay(Span(local));
                let at = bus.now + stretched(delay, u64::from(slot.slow));
                let generation = slot.next_generation;
                slot.next_generation += 1;
                match slot.timers.iter_mut().find(|(t, _, _)| *t == timer) {
                    Some(armed) => (armed.1, armed.2) = (generation, at),
                    None => slot.timers.push((timer.clone(), generation, at)),
                }
                let epoch = slot.epoch;
                bus.queue.push(
                    at,
                    Event::Timer {
                        node,
                        epoch,
                        generation,
                        timer,
                    },
                );
            }
            Effect::CancelTimer { timer } => {
                self.slots[node.index()]
                    .timers
                    .retain(|(t, _, _)| *t != timer);
            }
            Effect::Write { record, snapshot } => {
                self.slots[node.index()].disk.write(record, snapshot)
            }
            Effect::Sync => {
                let disk = &mut self.slots[node.index()].disk;
                disk.sync(disk.mark());
            }
            Effect::Reply {
                request,
                result,
                context,
            } => {
                let slot = &self.slots[node.index()];
                let frozen = |n: NodeId| self.slots[n.index()].frozen;
                let cut = !bus
                    .placement
                    .link_up(bus.topology, request.client, node, false, frozen);
                if slot.frozen || cut {
                    bus.stats.replies_lost += 1;
                    return;
                }
                let delay = bus.links.client_delay(&mut bus.streams.network);
                let delay = stretched(delay, u64::from(slot.slow));
                if slot.slow != 1 {
                    self.lingers = self.lingers.max(bus.now + delay);
                }
                bus.queue.push(
                    bus.now + delay,
                    Event::Reply {
                        from: node,
                        request,
                        result,
                        context: context.filter(|_| self.keep_contexts),
                    },
                );
            }
            Effect::Note(note) => {
                if let Some(trace) = bus.trace {
                    trace.note(bus.now, node, &note);
                }
            }
            Effect::DeclareDead {
                node: subject,
                evidence,
            } => {
                let clock = &self.slots[node.index()].clock;
                let evidence = clock.true_delay(evidence);
                let subject_member = self
                    .slots
                    .get(subject.index())
                    .and_then(|s| s.state.as_ref())
                    .is_some_and(P::is_member);
                self.declared_dead.push(DeadDeclaration {
                    at: bus.now,
                    observer: node,
                    subject,
                    evidence_from: Time(bus.now.as_micros().saturating_sub(evidence.as_micros())),
                    subject_member,
                });
            }
            Effect::Halt => unreachable!("after_handler stops at a halt"),
        }
    }

    fn send(&mut self, bus: &mut Bus<'_, P>, from: NodeId, to: NodeId, msg: P::Message) {
        bus.stats.sent += 1;
        let cut = !bus.topology.is_up(from, to)
            || self.slots[from.index()].frozen
            || self.slots[to.index()].frozen;
        if cut {
            bus.stats.dropped += 1;
            if let Some(trace) = bus.trace {
                trace.drop(bus.now, from, to, "link down at send");
            }
            return;
        }
        // A link is as slow as its slower end. The product of both ends' factors (up to 100x
        // in swarm.toml) gave messages tens of seconds of latency, and FIFO held every later
        // message of the link behind them long past the heal: the peer heard from its own end
        // but got no answer, which broke hint hand-back and failure-detector accuracy for
        // correct protocols on swarm.toml seeds 1..=1000 (gossip 744, sloppy 574, 582 and
        // 600, dynamo 105).
        let stretch =
            u64::from(self.slots[from.index()].slow).max(u64::from(self.slots[to.index()].slow));
        match bus
            .links
            .route(bus.now, from, to, stretch, &mut bus.streams.network)
        {
            Fate::Dropped => {
                bus.stats.dropped += 1;
                if let Some(trace) = bus.trace {
                    trace.drop(bus.now, from, to, "lost by the link");
                }
            }
            Fate::Arrives(at, copy) => {
                if let Some(trace) = bus.trace {
                    trace.send(bus.now, from, to, at, false);
                    if let Some(again) = copy {
                        trace.send(bus.now, from, to, again, true);
                    }
                }
                if let Some(again) = copy {
                    bus.stats.duplicated += 1;
                    bus.queue.push(
                        again,
                        Event::Deliver {
                            from,
                            to,
                            msg: msg.clone(),
                        },
                    );
                }
                bus.queue.push(at, Event::Deliver { from, to, msg });
            }
        }
    }

    /// Whether an event for `node` may run now; holds it if the node is paused.
    fn admit(&mut self, node: NodeId, event: Event<P>) -> Option<Event<P>> {
        let slot = &mut self.slots[node.index()];
        slot.state.as_ref()?;
        if slot.paused {
            slot.held.push(event);
            return None;
        }
        Some(event)
    }

    /// A message reaches `to`: it runs there unless the link or the node is down.
    pub(super) fn on_deliver(
        &mut self,
        bus: &mut Bus<'_, P>,
        from: NodeId,
        to: NodeId,
        msg: P::Message,
    ) -> Halt {
        let lost = !bus.topology.is_up(from, to)
            || self.slots[to.index()].frozen
            || self.slots[to.index()].state.is_none();
        if lost {
            bus.stats.dropped += 1;
            if let Some(trace) = bus.trace {
                trace.drop(bus.now, from, to, "link down or node down at delivery");
            }
            return Halt::No;
        }
        if let Some(Event::Deliver { from, to, msg }) =
            self.admit(to, Event::Deliver { from, to, msg })
        {
            bus.stats.delivered += 1;
            return self.handle(bus, to, |p, ctx| p.on_message(ctx, from, msg));
        }
        Halt::No
    }

    /// A timer fires, if it was armed in the node's current epoch and not re-armed since.
    pub(super) fn on_timer(
        &mut self,
        bus: &mut Bus<'_, P>,
        node: NodeId,
        epoch: u32,
        generation: u64,
        timer: P::Timer,
    ) -> Halt {
        if self.slots[node.index()].epoch != epoch {
            return Halt::No;
        }
        let event = Event::Timer {
            node,
            epoch,
            generation,
            timer,
        };
        let Some(Event::Timer { timer, .. }) = self.admit(node, event) else {
            return Halt::No;
        };
        let slot = &mut self.slots[node.index()];
        // Only the latest arming of a timer fires; a cancelled one is gone from the list.
        let Some(i) = slot.timers.iter().position(|(_, g, _)| *g == generation) else {
            return Halt::No;
        };
        slot.timers.swap_remove(i);
        self.handle(bus, node, |p, ctx| p.on_timer(ctx, timer))
    }

    /// A client's request reaches `to`, unless the node is down or a partition cut a
    /// colocated client off from it meanwhile.
    pub(super) fn on_request(
        &mut self,
        bus: &mut Bus<'_, P>,
        to: NodeId,
        request: Request,
    ) -> Halt {
        let slot = &self.slots[to.index()];
        let frozen = |n: NodeId| self.slots[n.index()].frozen;
        let cut = !bus
            .placement
            .link_up(bus.topology, request.id.client, to, true, frozen);
        if slot.frozen || slot.state.is_none() || cut {
            bus.stats.requests_lost += 1;
            return Halt::No;
        }
        if let Some(Event::Request { to, request }) = self.admit(to, Event::Request { to, request })
        {
            return self.handle(bus, to, |p, ctx| p.on_request(ctx, request));
        }
        Halt::No
    }
}

/// Runs a protocol's handler, turning a panic (a protocol bug, or a planted one that
/// asserts) into a broken invariant of the run instead of a crashed process.
fn contain<T>(handler: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(handler)).map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "with a non-text payload".into());
        format!("panicked: {message}")
    })
}

#[cfg(test)]
mod disk_tests {
    use super::{Disk, OnCrash};

    /// The places misplaced records hold, as a recovery would read them.
    fn misplaced_at(disk: &Disk<u8>) -> Vec<usize> {
        (0..disk.records.len())
            .filter(|i| disk.misplaced.contains(&(disk.dropped + *i as u64)))
            .collect()
    }

    /// A misdirected write onto an unsynced record that a crash then cuts off leaves no mark:
    /// the record the node writes at that place next is itself, not a misplaced one.
    #[test]
    fn a_crash_that_cuts_off_a_misplaced_record_forgets_it() {
        let lose_all = OnCrash {
            lose: Some(true),
            torn: false,
        };
        let mut disk: Disk<u8> = Disk::new(lose_all);
        disk.write(1, false);
        disk.write(2, false);
        disk.sync(disk.mark());
        disk.write(3, false);
        // Lands on place 2 (record 3's, unsynced).
        disk.misdirect = Some(2);
        disk.write(4, false);
        assert_eq!(misplaced_at(&disk), [2]);
        let mut rng = crate::rng::Streams::new(1, 1).disks.remove(0);
        disk.crash(&mut rng);
        assert_eq!(disk.records.len(), 2, "the unsynced suffix is lost");
        disk.write(5, false);
        assert_eq!(misplaced_at(&disk), Vec::<usize>::new());
        // On a synced place the mark stays.
        disk.misdirect = Some(0);
        disk.write(6, false);
        assert_eq!(misplaced_at(&disk), [0]);
    }

    /// What a crash leaves on the disk is on the platter: a second crash that loses every
    /// unsynced write takes only what was written after the first, never what the restarted
    /// node read back (swarm.toml twopc seed 362 lost a prepared record that way).
    #[test]
    fn what_a_crash_leaves_survives_the_next_crash() {
        let keep = OnCrash {
            lose: None,
            torn: false,
        };
        let mut disk: Disk<u8> = Disk::new(keep);
        disk.write(1, false);
        disk.sync(disk.mark());
        disk.write(2, false);
        disk.write(3, false);
        let mut rng = crate::rng::Streams::new(1, 1).disks.remove(0);
        disk.crash(&mut rng);
        assert_eq!(disk.records.len(), 3, "kept by the first crash");
        disk.write(4, false);
        disk.on_crash = OnCrash {
            lose: Some(true),
            torn: false,
        };
        disk.crash(&mut rng);
        let left: Vec<u8> = disk.records.iter().map(|(r, _)| *r).collect();
        assert_eq!(
            left,
            [1, 2, 3],
            "only the write after the first crash is lost"
        );
    }
}
