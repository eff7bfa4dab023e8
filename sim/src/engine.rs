//! The discrete-event engine: one thread, one queue, virtual time.
//!
//! The loop pops the earliest event, feeds it to the run's fingerprint and trace, and
//! dispatches it: a message or timer to a protocol node, a request to the node a client
//! chose, a reply to its client, a fault to the network or a node. A protocol handler's
//! effects are applied in order when it returns; then its invariants are checked.

use crate::clock::NodeClock;
use crate::faults::{self, TimelineFault};
use crate::history::{History, Outcome};
use crate::network::{Fate, Links, Topology};
use crate::queue::EventQueue;
use crate::rng::{Stream, Streams};
use crate::scenario::fault_kinds::FaultTarget;
use crate::scenario::{Arrival, FaultOrigin, Scenario, Target};
use crate::trace::Trace;
use crate::workload::{Client, InFlight, OpGenerator, Side};
use simkv_protocols::digest::StableHasher;
use simkv_protocols::{
    ClientId, Context, Effect, NodeConfig, NodeId, OpResult, Protocol, Request, RequestId, Span,
    Time,
};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

mod fault_target;

/// The most events that may wait in the queue at once (about 1 GiB of events).
pub const MAX_QUEUED_EVENTS: usize = 10_000_000;

/// Something that happens at a virtual time.
#[derive(Debug)]
pub(crate) enum Event<P: Protocol> {
    Deliver {
        from: NodeId,
        to: NodeId,
        msg: P::Message,
    },
    Request {
        to: NodeId,
        request: Request,
    },
    Reply {
        from: NodeId,
        request: RequestId,
        result: OpResult,
    },
    Timer {
        node: NodeId,
        epoch: u32,
        generation: u64,
        timer: P::Timer,
    },
    ClientWake {
        client: ClientId,
    },
    ClientTimeout {
        client: ClientId,
    },
    Arrival,
    Fault {
        index: usize,
    },
    WorkloadEnd,
    WorkloadStop,
}

/// One node as the engine holds it: the protocol state plus everything the protocol must not
/// see (its durable copy, its clock, its fault status, its armed timers).
pub(crate) struct NodeSlot<P: Protocol> {
    pub(crate) state: Option<P>,
    durable: Option<P::Durable>,
    config: NodeConfig,
    /// Bumped by each crash, so that timers armed before it never fire after it.
    epoch: u32,
    pub(crate) frozen: bool,
    pub(crate) paused: bool,
    /// Events that reached the node while it was paused, in arrival order.
    held: Vec<Event<P>>,
    /// Armed timers and the generation of their latest arming.
    timers: Vec<(P::Timer, u64)>,
    next_generation: u64,
    pub(crate) clock: NodeClock,
    stream: Stream,
}

/// Counters a run reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events processed.
    pub events: u64,
    /// Node-to-node messages handed to the network.
    pub sent: u64,
    /// Node-to-node messages delivered to a running node.
    pub delivered: u64,
    /// Node-to-node messages lost: dropped by the link, cut by a partition or freeze, or
    /// arriving at a crashed node.
    pub dropped: u64,
    /// Extra copies the network made.
    pub duplicated: u64,
    /// Client requests that reached no running node.
    pub requests_lost: u64,
    /// Replies lost (the node was frozen or crashed before it could answer).
    pub replies_lost: u64,
    /// Open-loop arrivals that found every client busy.
    pub shed: u64,
}

/// A fault as it was applied, for reports and traces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedFault {
    /// True virtual time.
    pub at: Time,
    /// What happened, resolved ("partition: 2 reachable groups: [n1 n2] | [n3 n4 n5]").
    pub action: String,
    /// Where it came from: `file:line:col`, `nemesis`, `operator` or `final heal`.
    pub origin: FaultOrigin,
}

/// Everything a finished run leaves for the checks and the report.
#[derive(Debug)]
pub struct RunOutput<P: Protocol> {
    /// The clients' history.
    pub history: History,
    /// Counters.
    pub stats: Stats,
    /// Faults as applied.
    pub faults: Vec<AppliedFault>,
    /// The run's fingerprint.
    pub fingerprint: u64,
    /// True virtual time at the end.
    pub end: Time,
    /// When the last fault of any kind happened while the cluster was whole (all links up,
    /// no node frozen, paused or crashed), if it was whole at the end.
    pub healed_at: Option<Time>,
    /// When clients stopped issuing operations.
    pub workload_stopped: Time,
    /// The first broken invariant, with the time it broke.
    pub invariant_violation: Option<(Time, String)>,
    /// Whether the run stopped at its event limit.
    pub hit_event_limit: bool,
    /// How long after the clients stopped every running replica first had the same digest.
    pub converged_after_stop: Option<Span>,
    /// Why the trace could not be written completely, if it could not.
    pub trace_error: Option<String>,
    /// Each node's final state; `None` if it ended crashed.
    pub nodes: Vec<Option<P>>,
    /// Each node's clock offset from true time at the end, microseconds.
    pub clock_skews_us: Vec<i64>,
    /// The side of each history event's operation (aligned with `history.events`).
    pub sides: Vec<Side>,
    /// At each moment the cluster was made whole: keys the replicas disagreed on.
    pub conflicts_at_heal: Vec<(Time, usize)>,
}

/// The engine for protocol `P`.
pub struct Engine<'s, P: Protocol> {
    scenario: &'s Scenario,
    now: Time,
    queue: EventQueue<Event<P>>,
    pub(crate) nodes: Vec<NodeSlot<P>>,
    pub(crate) topology: Topology,
    links: Links,
    streams: Streams,
    clients: Vec<Client>,
    idle_clients: Vec<ClientId>,
    generator: OpGenerator,
    workload_open: bool,
    workload_stopped: Time,
    history: History,
    timeline: Vec<TimelineFault>,
    applied_faults: Vec<AppliedFault>,
    healed_at: Option<Time>,
    stats: Stats,
    fingerprint: StableHasher,
    effects: Vec<Effect<P>>,
    trace: Option<Trace>,
    invariant_violation: Option<(Time, String)>,
    /// The run ends after this time (moved when the workload stops).
    end: Time,
    stopped: bool,
    hit_event_limit: bool,
    /// The node whose handler ran in the current step.
    handled: Option<NodeId>,
    /// When replicas first agreed after the clients stopped.
    converged_at: Option<Time>,
    /// Each node's side now (see [`Side`]); recomputed after every fault.
    node_sides: Vec<Side>,
    /// The side of each history event's operation, aligned with the history.
    sides: Vec<Side>,
    /// At each moment the cluster was made whole: keys the replicas disagreed on.
    conflicts_at_heal: Vec<(Time, usize)>,
}

/// What one step did, for tests that watch the engine keep its guarantees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// Virtual time of the event.
    pub at: Time,
    /// The node whose handler ran, if one did.
    pub handled: Option<NodeId>,
    /// For a message delivery, its sender (whether or not it was then delivered).
    pub delivered_from: Option<NodeId>,
}

/// About how many history events `scenario`'s clients will record (two per operation), so
/// that the history is allocated once: growing it by doubling copied it again and again,
/// which was a sixth of a large run's time. Capped: an estimate too low only costs a copy.
fn expected_events(scenario: &Scenario) -> usize {
    const MOST: u64 = 1 << 22;
    let w = &scenario.workload;
    let seconds = scenario.duration.as_micros() / 1_000_000 + 1;
    let ops = match w.arrival {
        Arrival::OpenLoop { rate_per_s } => rate_per_s.saturating_mul(seconds),
        Arrival::ClosedLoop { think } => {
            // A think time's mean plus a round trip of at least a fifth of a millisecond.
            let cycle_us = (think.min.as_micros() + think.max.as_micros()) / 2 + 200;
            let per_client = scenario.duration.as_micros() / cycle_us + 1;
            per_client.saturating_mul(u64::from(w.clients))
        }
    };
    ops.saturating_mul(2).min(MOST) as usize
}

impl<'s, P: Protocol> Engine<'s, P> {
    /// An engine ready to run `scenario`; `trace` receives every event when given.
    pub fn new(scenario: &'s Scenario, trace: Option<Trace>) -> Self {
        let n = usize::from(scenario.cluster.nodes);
        let mut streams = Streams::new(scenario.seed, n);
        let node_ids = scenario.node_ids();
        let nodes = node_ids
            .iter()
            .map(|id| NodeSlot {
                state: None,
                durable: None,
                config: NodeConfig {
                    id: *id,
                    nodes: node_ids.clone(),
                    params: scenario.cluster.params.clone(),
                    bugs: scenario.cluster.bugs.clone(),
                },
                epoch: 0,
                frozen: false,
                paused: false,
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
            })
            .collect();
        let timeline = faults::timeline(scenario, &mut streams.faults);
        Engine {
            scenario,
            now: Time::ZERO,
            queue: EventQueue::default(),
            nodes,
            topology: Topology::new(n),
            links: Links::new(&scenario.network, n),
            streams,
            clients: vec![Client::default(); scenario.workload.clients as usize],
            idle_clients: Vec::new(),
            generator: OpGenerator::new(&scenario.workload, scenario.cluster.nodes),
            workload_open: true,
            workload_stopped: Time::ZERO,
            history: History::with_capacity(expected_events(scenario)),
            timeline,
            applied_faults: Vec::new(),
            healed_at: Some(Time::ZERO),
            stats: Stats::default(),
            fingerprint: StableHasher::new(),
            effects: Vec::new(),
            trace,
            invariant_violation: None,
            // Until the workload stops, the run cannot end: see `stop_workload`.
            end: Time(u64::MAX),
            stopped: false,
            hit_event_limit: false,
            handled: None,
            converged_at: None,
            node_sides: vec![Side::Whole; n],
            sides: Vec::new(),
            conflicts_at_heal: Vec::new(),
        }
    }

    /// Runs the scenario to its end, its event limit or its first broken invariant.
    pub fn run(mut self) -> RunOutput<P> {
        self.boot();
        while self.step().is_some() {}
        self.finish()
    }

    /// Boots the nodes and schedules the workload and the faults. Call once, before
    /// [`Engine::step`]; [`Engine::run`] does both.
    pub fn boot(&mut self) {
        for i in 0..self.nodes.len() {
            self.start_node(NodeId(i as u16));
        }
        for (index, fault) in self.timeline.iter().enumerate() {
            self.queue.push(fault.at, Event::Fault { index });
        }
        self.queue
            .push(Time::ZERO + self.scenario.duration, Event::WorkloadEnd);
        self.start_clients();
    }

    /// Processes the next event; `None` once the run is over.
    pub fn step(&mut self) -> Option<Step> {
        if self.stopped {
            return None;
        }
        let next = self.queue.peek_time().filter(|at| *at <= self.end);
        let (Some(_), false) = (next, self.invariant_violation.is_some()) else {
            return self.stop();
        };
        // A runaway protocol (a message storm, a timer armed in a loop) must end the run as
        // a broken limit, not take the machine's memory with it.
        if self.stats.events >= self.scenario.max_events || self.queue.len() > MAX_QUEUED_EVENTS {
            self.hit_event_limit = true;
            return self.stop();
        }
        let (at, event) = self.queue.pop().expect("peeked");
        assert!(at >= self.now, "virtual time never runs backwards");
        self.now = at;
        self.stats.events += 1;
        self.fingerprint_event(&event);
        if let Some(trace) = &mut self.trace {
            trace.event(at, &event);
        }
        let delivered_from = match &event {
            Event::Deliver { from, .. } => Some(*from),
            _ => None,
        };
        self.handled = None;
        self.dispatch(event);
        if !self.workload_open && self.converged_at.is_none() && self.handled.is_some() {
            self.maybe_note_convergence();
        }
        Some(Step {
            at,
            handled: self.handled,
            delivered_from,
        })
    }

    fn stop(&mut self) -> Option<Step> {
        self.stopped = true;
        // The run ends at its scheduled end unless it stopped early.
        if self.invariant_violation.is_none() && !self.hit_event_limit {
            self.now = self.now.max(self.end);
        }
        None
    }

    /// The network as it is now.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Whether `node` is paused, frozen, crashed: (paused, frozen, running).
    pub fn node_status(&self, node: NodeId) -> (bool, bool, bool) {
        let slot = &self.nodes[node.index()];
        (slot.paused, slot.frozen, slot.state.is_some())
    }

    fn start_clients(&mut self) {
        match self.scenario.workload.arrival {
            Arrival::ClosedLoop { think } => {
                for c in 0..self.clients.len() {
                    // Spread the first invocations over one think time.
                    let delay = self.streams.workload.between(0, think.max.as_micros());
                    let client = ClientId(c as u32);
                    self.queue.push(Time(delay), Event::ClientWake { client });
                }
            }
            Arrival::OpenLoop { .. } => {
                self.idle_clients = (0..self.clients.len() as u32).rev().map(ClientId).collect();
                if !self.idle_clients.is_empty() {
                    self.schedule_arrival();
                }
            }
        }
    }

    /// Ends the run and hands over what it left.
    pub fn finish(mut self) -> RunOutput<P> {
        let fingerprint = self.fingerprint.finish();
        let trace_error = self.trace.as_mut().and_then(|trace| {
            trace.finish(self.now, fingerprint);
            trace.error().map(|e| e.to_string())
        });
        RunOutput {
            history: self.history,
            stats: self.stats,
            faults: self.applied_faults,
            fingerprint,
            end: self.now,
            healed_at: self.healed_at,
            workload_stopped: self.workload_stopped,
            invariant_violation: self.invariant_violation,
            hit_event_limit: self.hit_event_limit,
            converged_after_stop: self.converged_at.map(|t| t.since(self.workload_stopped)),
            trace_error,
            sides: std::mem::take(&mut self.sides),
            conflicts_at_heal: std::mem::take(&mut self.conflicts_at_heal),
            clock_skews_us: self
                .nodes
                .iter()
                .map(|n| n.clock.skew_us(self.now))
                .collect(),
            nodes: self.nodes.into_iter().map(|n| n.state).collect(),
        }
    }

    fn dispatch(&mut self, event: Event<P>) {
        match event {
            Event::Deliver { from, to, msg } => self.on_deliver(from, to, msg),
            Event::Request { to, request } => self.on_request(to, request),
            Event::Reply {
                from,
                request,
                result,
            } => self.on_reply(from, request, result),
            Event::Timer {
                node,
                epoch,
                generation,
                timer,
            } => self.on_timer(node, epoch, generation, timer),
            Event::ClientWake { client } => self.invoke(client),
            Event::ClientTimeout { client } => self.on_client_timeout(client),
            Event::Arrival => self.on_arrival(),
            Event::Fault { index } => {
                let fault = self.timeline[index].clone();
                self.apply_fault(&fault.fault, &fault.origin);
            }
            Event::WorkloadEnd => self.on_workload_end(),
            Event::WorkloadStop => self.stop_workload(),
        }
    }

    // ----- nodes ---------------------------------------------------------------------------

    fn start_node(&mut self, node: NodeId) {
        let tracing = self.trace.is_some();
        let mut effects = std::mem::take(&mut self.effects);
        let slot = &mut self.nodes[node.index()];
        let local = slot.clock.local(self.now);
        let mut ctx = Context::new(node, local, tracing, &mut effects, &mut slot.stream);
        let (config, durable) = (&slot.config, slot.durable.as_ref());
        match contain(|| P::start(&mut ctx, config, durable)) {
            Ok(state) => slot.state = Some(state),
            Err(why) => {
                self.invariant_violation = Some((self.now, format!("{node}: start {why}")));
                self.effects = effects;
                self.effects.clear();
                return;
            }
        }
        self.after_handler(node, effects);
    }

    /// Runs one handler on a running, unpaused node.
    fn handle(&mut self, node: NodeId, input: impl FnOnce(&mut P, &mut Context<'_, P>)) {
        let tracing = self.trace.is_some();
        let mut effects = std::mem::take(&mut self.effects);
        let slot = &mut self.nodes[node.index()];
        let Some(state) = slot.state.as_mut() else {
            self.effects = effects;
            return;
        };
        let local = slot.clock.local(self.now);
        let mut ctx = Context::new(node, local, tracing, &mut effects, &mut slot.stream);
        let outcome = contain(|| input(state, &mut ctx));
        self.handled = Some(node);
        if let Err(why) = outcome {
            // The node's state may be half-updated: stop here, with the panic as the verdict.
            self.invariant_violation = Some((self.now, format!("{node}: handler {why}")));
            self.effects = effects;
            self.effects.clear();
            return;
        }
        self.after_handler(node, effects);
    }

    fn after_handler(&mut self, node: NodeId, mut effects: Vec<Effect<P>>) {
        if let Some(Err(broken)) = self.nodes[node.index()]
            .state
            .as_ref()
            .map(P::check_invariants)
        {
            self.invariant_violation = Some((self.now, format!("{node}: {broken}")));
        }
        if P::HAS_CLUSTER_INVARIANTS && self.invariant_violation.is_none() {
            let states: Vec<Option<&P>> = self.nodes.iter().map(|n| n.state.as_ref()).collect();
            if let Err(broken) = P::check_cluster(&states) {
                self.invariant_violation = Some((self.now, format!("cluster: {broken}")));
            }
        }
        for effect in effects.drain(..) {
            if let Effect::Halt = effect {
                // The node stopped itself: what it emitted after this never happens.
                let action = format!("{} (the protocol halted itself)", self.crash(node));
                self.record_fault(action, FaultOrigin::Protocol);
                break;
            }
            self.apply_effect(node, effect);
        }
        effects.clear();
        self.effects = effects;
    }

    fn apply_effect(&mut self, node: NodeId, effect: Effect<P>) {
        match effect {
            Effect::Send { to, msg } => self.send(node, to, msg),
            Effect::SetTimer { timer, delay } => {
                let slot = &mut self.nodes[node.index()];
                let local = slot
                    .stream
                    .between(delay.min.as_micros(), delay.max.as_micros());
                let at = self.now + slot.clock.true_delay(Span(local));
                let generation = slot.next_generation;
                slot.next_generation += 1;
                match slot.timers.iter_mut().find(|(t, _)| *t == timer) {
                    Some(armed) => armed.1 = generation,
                    None => slot.timers.push((timer.clone(), generation)),
                }
                let epoch = slot.epoch;
                self.queue.push(
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
                self.nodes[node.index()].timers.retain(|(t, _)| *t != timer);
            }
            Effect::Persist(durable) => self.nodes[node.index()].durable = Some(durable),
            Effect::Reply { request, result } => {
                if self.nodes[node.index()].frozen {
                    self.stats.replies_lost += 1;
                    return;
                }
                let delay = self.links.client_delay(&mut self.streams.network);
                self.queue.push(
                    self.now + delay,
                    Event::Reply {
                        from: node,
                        request,
                        result,
                    },
                );
            }
            Effect::Note(note) => {
                if let Some(trace) = &mut self.trace {
                    trace.note(self.now, node, &note);
                }
            }
            Effect::Halt => unreachable!("after_handler stops at a halt"),
        }
    }

    fn send(&mut self, from: NodeId, to: NodeId, msg: P::Message) {
        self.stats.sent += 1;
        let cut = !self.topology.is_up(from, to)
            || self.nodes[from.index()].frozen
            || self.nodes[to.index()].frozen;
        if cut {
            self.stats.dropped += 1;
            if let Some(trace) = &mut self.trace {
                trace.drop(self.now, from, to, "link down at send");
            }
            return;
        }
        match self
            .links
            .route(self.now, from, to, &mut self.streams.network)
        {
            Fate::Dropped => {
                self.stats.dropped += 1;
                if let Some(trace) = &mut self.trace {
                    trace.drop(self.now, from, to, "lost by the link");
                }
            }
            Fate::Arrives(at, copy) => {
                if let Some(again) = copy {
                    self.stats.duplicated += 1;
                    self.queue.push(
                        again,
                        Event::Deliver {
                            from,
                            to,
                            msg: msg.clone(),
                        },
                    );
                }
                self.queue.push(at, Event::Deliver { from, to, msg });
            }
        }
    }

    /// Whether an event for `node` may run now; holds it if the node is paused.
    fn admit(&mut self, node: NodeId, event: Event<P>) -> Option<Event<P>> {
        let slot = &mut self.nodes[node.index()];
        slot.state.as_ref()?;
        if slot.paused {
            slot.held.push(event);
            return None;
        }
        Some(event)
    }

    fn on_deliver(&mut self, from: NodeId, to: NodeId, msg: P::Message) {
        let lost = !self.topology.is_up(from, to)
            || self.nodes[to.index()].frozen
            || self.nodes[to.index()].state.is_none();
        if lost {
            self.stats.dropped += 1;
            if let Some(trace) = &mut self.trace {
                trace.drop(self.now, from, to, "link down or node down at delivery");
            }
            return;
        }
        if let Some(Event::Deliver { from, to, msg }) =
            self.admit(to, Event::Deliver { from, to, msg })
        {
            self.stats.delivered += 1;
            self.handle(to, |p, ctx| p.on_message(ctx, from, msg));
        }
    }

    fn on_timer(&mut self, node: NodeId, epoch: u32, generation: u64, timer: P::Timer) {
        if self.nodes[node.index()].epoch != epoch {
            return;
        }
        let event = Event::Timer {
            node,
            epoch,
            generation,
            timer,
        };
        let Some(Event::Timer { timer, .. }) = self.admit(node, event) else {
            return;
        };
        let slot = &mut self.nodes[node.index()];
        // Only the latest arming of a timer fires; a cancelled one is gone from the list.
        let Some(i) = slot.timers.iter().position(|(_, g)| *g == generation) else {
            return;
        };
        slot.timers.swap_remove(i);
        self.handle(node, |p, ctx| p.on_timer(ctx, timer));
    }

    fn on_request(&mut self, to: NodeId, request: Request) {
        let slot = &self.nodes[to.index()];
        if slot.frozen || slot.state.is_none() {
            self.stats.requests_lost += 1;
            return;
        }
        if let Some(Event::Request { to, request }) = self.admit(to, Event::Request { to, request })
        {
            self.handle(to, |p, ctx| p.on_request(ctx, request));
        }
    }

    // ----- clients -------------------------------------------------------------------------

    fn invoke(&mut self, client: ClientId) {
        if !self.workload_open {
            return;
        }
        let state = &mut self.clients[client.index()];
        debug_assert!(
            state.in_flight.is_none(),
            "a client has one operation in flight"
        );
        let (request, op, node) = self
            .generator
            .next(client, state, &mut self.streams.workload);
        // Shared by the invocation, the completion and the client's state: one copy.
        let op = Arc::new(op);
        self.history
            .push(self.now, client, node, Arc::clone(&op), None);
        self.sides.push(self.node_sides[node.index()]);
        state.in_flight = Some(InFlight {
            request,
            op,
            node,
            invoked: self.now,
            attempt: 0,
            deadline: self.now,
            side: self.node_sides[node.index()],
        });
        self.send_attempt(client);
    }

    /// Sends the client's operation in flight (again) to the node it now targets, and arms
    /// the attempt's timeout.
    fn send_attempt(&mut self, client: ClientId) {
        let flight = self.clients[client.index()]
            .in_flight
            .as_ref()
            .expect("in flight");
        let (request, node) = (flight.request, flight.node);
        let call = Request {
            id: request,
            op: simkv_protocols::Op::clone(&flight.op),
            quorum: self.scenario.workload.quorum,
        };
        let delay = self.links.client_delay(&mut self.streams.network);
        if self.nodes[node.index()].frozen {
            self.stats.requests_lost += 1;
        } else {
            self.queue.push(
                self.now + delay,
                Event::Request {
                    to: node,
                    request: call,
                },
            );
        }
        let deadline = self.now + self.scenario.workload.timeout;
        let state = &mut self.clients[client.index()];
        state.in_flight.as_mut().expect("in flight").deadline = deadline;
        // One pending timeout event per client, re-armed when it fires early: a per-attempt
        // event would leave one stale event per completed operation in the queue (tens of
        // thousands with 100 fast clients), and every pop would pay for them.
        if state.timeout_pending.is_none() {
            state.timeout_pending = Some(deadline);
            self.queue.push(deadline, Event::ClientTimeout { client });
        }
    }

    /// The attempt of `request` the client is waiting on, if it still waits for it.
    fn waiting_attempt(&self, request: RequestId) -> Option<u32> {
        let flight = self.clients[request.client.index()].in_flight.as_ref()?;
        (flight.request == request).then_some(flight.attempt)
    }

    /// Tries the client's operation again, with the same request id (so that a protocol with
    /// client sessions applies it once), at `hint` or wherever the client's target says.
    fn retry(&mut self, client: ClientId, hint: Option<NodeId>) {
        let nodes = u64::from(self.scenario.cluster.nodes);
        let target = self.scenario.workload.target;
        let flight = self.clients[client.index()]
            .in_flight
            .as_mut()
            .expect("in flight");
        flight.attempt += 1;
        flight.node = match (hint, target) {
            (_, Target::Fixed) => flight.node,
            (Some(hint), _) => hint,
            (None, _) => NodeId(self.streams.workload.below(nodes) as u16),
        };
        self.send_attempt(client);
    }

    fn on_reply(&mut self, from: NodeId, request: RequestId, result: OpResult) {
        let _ = from;
        let Some(attempt) = self.waiting_attempt(request) else {
            return; // a late reply after a timeout or to an earlier attempt
        };
        // A refusal promises the operation was not applied: safe to try elsewhere.
        if !result.is_applied() && attempt < self.scenario.workload.retries {
            self.retry(request.client, result.hint());
            return;
        }
        self.complete(request, Some(result));
    }

    fn on_client_timeout(&mut self, client: ClientId) {
        let state = &mut self.clients[client.index()];
        state.timeout_pending = None;
        let Some(flight) = &state.in_flight else {
            return; // answered: the next attempt arms its own timeout
        };
        let (request, attempt, deadline) = (flight.request, flight.attempt, flight.deadline);
        if deadline > self.now {
            // A later attempt or operation is waiting: wait for its deadline.
            state.timeout_pending = Some(deadline);
            self.queue.push(deadline, Event::ClientTimeout { client });
        } else if attempt < self.scenario.workload.retries {
            self.retry(client, None);
        } else {
            self.complete(request, None);
        }
    }

    /// Records the end of `request` if its client still waits for it; `None` = timed out.
    fn complete(&mut self, request: RequestId, result: Option<OpResult>) {
        let client = request.client;
        let state = &mut self.clients[client.index()];
        match &state.in_flight {
            Some(f) if f.request == request => {}
            _ => return, // a late reply after a timeout, or a timeout after a reply
        }
        let flight = state.in_flight.take().expect("checked above");
        state.learn(&flight, result.as_ref(), self.generator.uses_last_seen);
        let outcome = match result {
            Some(r) if r.is_applied() => Outcome::Ok(r),
            Some(r) => Outcome::Fail(r),
            None => Outcome::Info,
        };
        self.history
            .push(self.now, client, flight.node, flight.op, Some(outcome));
        self.sides.push(flight.side);
        match self.scenario.workload.arrival {
            Arrival::ClosedLoop { think } => {
                let pause = self
                    .streams
                    .workload
                    .between(think.min.as_micros(), think.max.as_micros());
                self.queue
                    .push(self.now + Span(pause), Event::ClientWake { client });
            }
            Arrival::OpenLoop { .. } => self.idle_clients.push(client),
        }
    }

    fn schedule_arrival(&mut self) {
        let Arrival::OpenLoop { rate_per_s } = self.scenario.workload.arrival else {
            return;
        };
        let mean = 1e6 / rate_per_s as f64;
        let gap = (-mean * self.streams.workload.unit_open_closed().ln()).round() as u64;
        self.queue.push(self.now + Span(gap), Event::Arrival);
    }

    fn on_arrival(&mut self) {
        if !self.workload_open {
            return;
        }
        if self.idle_clients.is_empty() {
            self.stats.shed += 1;
        } else {
            let i = self.streams.workload.below(self.idle_clients.len() as u64) as usize;
            let client = self.idle_clients.swap_remove(i);
            self.invoke(client);
        }
        self.schedule_arrival();
    }

    // ----- faults --------------------------------------------------------------------------

    fn is_whole(&self) -> bool {
        self.topology.is_healed()
            && self
                .nodes
                .iter()
                .all(|n| !n.frozen && !n.paused && n.state.is_some())
    }

    fn record_fault(&mut self, action: String, origin: FaultOrigin) {
        if let Some(trace) = &mut self.trace {
            trace.fault(self.now, &action);
        }
        self.fingerprint.write(action.as_bytes());
        self.applied_faults.push(AppliedFault {
            at: self.now,
            action,
            origin,
        });
        // Liveness is judged from the last fault of any kind once the cluster is whole: a
        // clock jump or an operator's command also disturbs it (an election, a halt).
        match (self.is_whole(), self.healed_at) {
            (true, None) => {
                self.healed_at = Some(self.now);
                let diverged = self.diverged_keys();
                self.conflicts_at_heal.push((self.now, diverged));
            }
            (true, Some(_)) => self.healed_at = Some(self.now),
            (false, _) => self.healed_at = None,
        }
        self.node_sides = self.compute_sides();
    }

    /// Keys on which the running replicas disagree (measured when the cluster is made
    /// whole: how much a partition let the sides drift apart).
    fn diverged_keys(&self) -> usize {
        let stores: Vec<_> = self
            .nodes
            .iter()
            .filter_map(|n| n.state.as_ref().map(P::store))
            .collect();
        let Some((first, rest)) = stores.split_first() else {
            return 0;
        };
        let mut keys: Vec<_> = stores.iter().flat_map(|s| s.keys().copied()).collect();
        keys.sort_unstable();
        keys.dedup();
        keys.into_iter()
            .filter(|k| rest.iter().any(|s| s.get(k) != first.get(k)))
            .count()
    }

    /// Each node's side, from the current topology and node faults.
    fn compute_sides(&self) -> Vec<Side> {
        let n = self.nodes.len();
        if self.is_whole() {
            return vec![Side::Whole; n];
        }
        let down: Vec<bool> = self
            .nodes
            .iter()
            .map(|s| s.frozen || s.paused || s.state.is_none())
            .collect();
        let reach = self.topology.reachability(&down);
        (0..n)
            .map(|a| {
                if down[a] {
                    return Side::Down;
                }
                let group = (0..n).filter(|b| reach[a][*b] && reach[*b][a]).count();
                if group * 2 > n {
                    Side::Majority
                } else {
                    Side::Minority
                }
            })
            .collect()
    }

    fn on_workload_end(&mut self) {
        if self.is_whole() {
            self.stop_workload();
            return;
        }
        // Faults still in force: heal everything, and give the clients a liveness phase of
        // twice the liveness window so that the liveness check has operations to judge.
        self.topology.heal();
        for i in 0..self.nodes.len() {
            let node = NodeId(i as u16);
            self.nodes[i].frozen = false;
            if self.nodes[i].paused {
                self.resume(node);
            }
            if self.nodes[i].state.is_none() {
                self.start_node(node);
            }
        }
        self.record_fault(
            "heal everything: links, freezes, pauses, crashes".into(),
            FaultOrigin::FinalHeal,
        );
        let liveness = self.scenario.checks.liveness;
        self.queue
            .push(self.now + liveness + liveness, Event::WorkloadStop);
    }

    /// Once clients have stopped, notes the first moment every running replica agrees.
    /// Digests are compared only after a handler ran and only in the quiet settle phase, so
    /// this costs nothing while the workload runs.
    fn maybe_note_convergence(&mut self) {
        let mut digests = self
            .nodes
            .iter()
            .filter_map(|n| n.state.as_ref().map(P::digest));
        let Some(first) = digests.next() else {
            return;
        };
        if digests.all(|d| d == first) {
            self.converged_at = Some(self.now);
        }
    }

    fn stop_workload(&mut self) {
        self.workload_open = false;
        self.workload_stopped = self.now;
        self.end = self.now + self.scenario.checks.settle;
    }

    // ----- fingerprint ---------------------------------------------------------------------

    #[inline]
    fn fingerprint_event(&mut self, event: &Event<P>) {
        let h = &mut self.fingerprint;
        h.write_u64(self.now.as_micros());
        match event {
            Event::Deliver { from, to, msg } => {
                h.write_u8(1);
                h.write_u16(from.0);
                h.write_u16(to.0);
                msg.hash(h);
            }
            Event::Request { to, request } => {
                h.write_u8(2);
                h.write_u16(to.0);
                request.hash(h);
            }
            Event::Reply {
                from,
                request,
                result,
            } => {
                h.write_u8(3);
                h.write_u16(from.0);
                request.hash(h);
                result.hash(h);
            }
            Event::Timer {
                node,
                generation,
                timer,
                ..
            } => {
                h.write_u8(4);
                h.write_u16(node.0);
                h.write_u64(*generation);
                timer.hash(h);
            }
            Event::ClientWake { client } => {
                h.write_u8(5);
                h.write_u32(client.0);
            }
            Event::ClientTimeout { client } => {
                h.write_u8(6);
                h.write_u32(client.0);
            }
            Event::Arrival => h.write_u8(7),
            Event::Fault { index } => {
                h.write_u8(8);
                h.write_usize(*index);
            }
            Event::WorkloadEnd => h.write_u8(9),
            Event::WorkloadStop => h.write_u8(10),
        }
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
#[path = "engine_tests.rs"]
mod tests;
