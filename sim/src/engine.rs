//! The discrete-event engine: one thread, one queue, virtual time.
//!
//! The loop pops the earliest event, feeds it to the run's fingerprint and trace, and
//! dispatches it to the part of the engine it concerns: a message, timer or request to node
//! hosting and routing (`nodes`), a reply, wake-up, timeout or arrival to the client driver
//! (`clients`), a fault to the network or a node (here). After each fault the observer
//! (`observer`) notes where each node stands. A protocol handler's effects are applied in
//! order when it returns; then its invariants are checked. When a stated leadership check
//! needs them or the run is traced, each node's role and term are sampled after its
//! handlers and kept as they change (`roles`), for the checks and the trace.
//!
//! The parts keep their own state and share the rest (virtual time, the queue, the network,
//! the random streams, counters, the trace) through a `Bus` the engine lends them for each
//! call, so that no part reaches into another.

mod bus;
mod clients;
pub(crate) mod event;
mod fault_target;
mod fingerprint;
mod nodes;
mod observer;
pub mod recording;
mod roles;

pub use bus::Stats;
pub use nodes::{DeadDeclaration, NodeStatus};
pub use observer::Side;
pub use recording::{perturbation, Record, Recording};
pub use roles::RoleChange;

use crate::faults::{self, TimelineFault};
use crate::history::History;
use crate::network::{ClientPlacement, Links, Topology};
use crate::queue::EventQueue;
use crate::rng::Streams;
use crate::scenario::fault_kinds::FaultTarget;
use crate::scenario::{FaultOrigin, Scenario, ScheduledFault};
use crate::trace::Trace;
use bus::Bus;
use clients::Clients;
use event::Event;
use nodes::{Halt, Nodes};
use observer::Observer;
use recording::Recorder;
use simkv_protocols::digest::StableHasher;
use simkv_protocols::{Context, Membership, NodeId, Protocol, Span, Time};
use std::collections::{BTreeMap, BTreeSet};
use std::hash::Hasher;

/// The most events that may wait in the queue at once (about 1 GiB of events).
pub const MAX_QUEUED_EVENTS: usize = 10_000_000;

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
    /// The scenario's faults (scripted and drawn by nemeses) that fired, each as an exact
    /// scripted fault at the time it fired with its targets as they resolved then: a timeline
    /// that replays this run's faults without drawing or resolving anything, so that removing
    /// one of them moves no other (what the shrinker pins). Faults that found no target or
    /// were skipped for a bound are left out, as are undos scheduled by a `for` (each fault
    /// keeps its `for`).
    pub fired: Vec<ScheduledFault>,
    /// The run's fingerprint.
    pub fingerprint: u64,
    /// True virtual time at the end.
    pub end: Time,
    /// When the last fault of any kind happened while the cluster was whole (all links up
    /// and at the scenario's behaviour, no node frozen, paused, crashed or slow), if it was
    /// whole at the end. In the VOPR liveness mode, the nodes written off at the end of the
    /// workload do not count.
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
    /// Each node that ended outside the cluster: never joined, or left or removed for good.
    pub outside: Vec<bool>,
    /// Each node's clock offset from true time at the end, microseconds.
    pub clock_skews_us: Vec<i64>,
    /// The side of each history event's operation (aligned with `history.events`).
    pub sides: Vec<Side>,
    /// At each moment the cluster was made whole: keys the replicas disagreed on.
    pub conflicts_at_heal: Vec<(Time, usize)>,
    /// Keys the running replicas disagreed on, at each sampling instant, when sampled
    /// ([`Engine::sample_divergence`]); empty otherwise.
    pub divergence: Vec<(Time, usize)>,
    /// Every change of a node's role or term, in time order, when they were sampled (a
    /// stated leadership check needs them, or the run was traced); empty otherwise.
    pub roles: Vec<RoleChange>,
    /// The calm stretches of the run, `[from, until)`: the cluster whole and no fault of any
    /// kind since `from` (what [`RunOutput::healed_at`] was during it), in time order; the
    /// last one runs to the end if the cluster ended whole.
    pub calm: Vec<(Time, Time)>,
    /// Every member a node's failure detector declared dead, in time order (protocols
    /// with one say so through [`simkv_protocols::Context::declare_dead`]).
    pub declared_dead: Vec<DeadDeclaration>,
    /// The run's recording, when one was asked for ([`Engine::record`]).
    pub recording: Option<Recording>,
}

/// The engine for protocol `P`.
pub struct Engine<'s, P: Protocol> {
    scenario: &'s Scenario,
    now: Time,
    queue: EventQueue<Event<P>>,
    nodes: Nodes<P>,
    topology: Topology,
    /// Where the clients stand, for their links' cuts.
    placement: ClientPlacement,
    links: Links,
    streams: Streams,
    clients: Clients<'s>,
    observer: Observer,
    timeline: Vec<TimelineFault>,
    /// How many timeline entries the scenario itself gave (what follows are undos scheduled
    /// by a `for`).
    scripted: usize,
    /// The scenario's faults as they fired, targets resolved (see [`RunOutput::fired`]).
    fired: Vec<ScheduledFault>,
    /// Timeline faults waiting for a role to be held (announced once).
    waiting: BTreeSet<usize>,
    /// Timeline faults of a nemesis with `on_role` waiting for a node to take the role:
    /// who held it (and in which term) when each came due.
    role_holders: BTreeMap<usize, Vec<(NodeId, Option<u64>)>>,
    /// The nodes that crash for good at the end of the workload (VOPR liveness mode).
    written_off: Vec<NodeId>,
    /// While a nemesis's fault is applied, its bound on nodes down at once.
    max_down: Option<u16>,
    /// Whether the fault being applied was skipped for its bound.
    skipped_for_bound: bool,
    /// Nemesis pairs whose fault was skipped: their undo is skipped too.
    skipped_pairs: Vec<u32>,
    /// Nodes a `leave` just asked to leave, handed their leave once it is recorded.
    to_leave: Vec<NodeId>,
    applied_faults: Vec<AppliedFault>,
    stats: Stats,
    fingerprint: StableHasher,
    trace: Option<Trace>,
    /// Checkpoints and per-event records, when asked for.
    recorder: Option<Recorder>,
    /// The event (1-based) a test build delays by 1us (`recording::perturbation`).
    #[cfg(feature = "perturb")]
    perturb: Option<u64>,
    /// The run ends after this time (moved when the workload stops).
    end: Time,
    stopped: bool,
    hit_event_limit: bool,
    /// Keys the replicas disagree on, sampled every so often when asked
    /// ([`Engine::sample_divergence`]).
    divergence: Option<DivergenceSampler>,
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

/// Lends `$engine`'s shared parts as a [`Bus`], field by field, so that one of its parts
/// (`nodes`, `clients`) can be borrowed beside it.
macro_rules! bus {
    ($engine:ident) => {
        Bus {
            now: $engine.now,
            queue: &mut $engine.queue,
            topology: &$engine.topology,
            placement: &$engine.placement,
            links: &mut $engine.links,
            streams: &mut $engine.streams,
            stats: &mut $engine.stats,
            trace: &mut $engine.trace,
        }
    };
}

/// Divergence sampled at a fixed interval ([`Engine::sample_divergence`]).
struct DivergenceSampler {
    every: Span,
    next: Time,
    samples: Vec<(Time, usize)>,
}

impl<'s, P: Protocol> Engine<'s, P> {
    /// An engine ready to run `scenario`; `trace` receives every event when given.
    pub fn new(scenario: &'s Scenario, trace: Option<Trace>) -> Self {
        let n = usize::from(scenario.cluster.nodes);
        let mut streams = Streams::new(scenario.seed, n);
        let sample_roles = trace.is_some() || scenario.checks.stated.need_roles();
        let nodes = Nodes::new(scenario, &streams, sample_roles);
        let timeline = faults::timeline(scenario, &mut streams.faults);
        let written_off = faults::written_off(scenario, &mut streams.faults);
        Engine {
            scenario,
            now: Time::ZERO,
            queue: EventQueue::default(),
            nodes,
            topology: Topology::new(n),
            placement: ClientPlacement::new(&scenario.workload, scenario.cluster.nodes),
            links: Links::new(&scenario.network, n),
            streams,
            clients: Clients::new(scenario),
            observer: Observer::new(n),
            scripted: timeline.len(),
            timeline,
            fired: Vec::new(),
            waiting: BTreeSet::new(),
            role_holders: BTreeMap::new(),
            written_off,
            max_down: None,
            skipped_for_bound: false,
            skipped_pairs: Vec::new(),
            to_leave: Vec::new(),
            applied_faults: Vec::new(),
            stats: Stats::default(),
            fingerprint: StableHasher::new(),
            trace,
            recorder: None,
            #[cfg(feature = "perturb")]
            perturb: recording::perturbation(),
            // Until the workload stops, the run cannot end: see `stop_workload`.
            end: Time(u64::MAX),
            stopped: false,
            hit_event_limit: false,
            divergence: None,
        }
    }

    /// Samples, every `every` of virtual time, how many keys the running replicas disagree
    /// on (for reports' convergence figure). Observation only: the run is the same.
    pub fn sample_divergence(mut self, every: Span) -> Self {
        assert!(every > Span::ZERO, "a sampling interval is positive");
        self.divergence = Some(DivergenceSampler {
            every,
            next: Time::ZERO,
            samples: Vec::new(),
        });
        self
    }

    /// Records the run: checkpoints and per-event records for replay files
    /// (`engine/recording.rs`). The run itself is the same.
    pub fn record(mut self, record: Record) -> Self {
        self.recorder = Some(Recorder::new(record));
        self
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
            let node = NodeId(i as u16);
            if self.nodes[i].outside {
                self.clients.set_in_cluster(node, false);
            } else {
                self.start_node(node);
            }
        }
        for (index, fault) in self.timeline.iter().enumerate() {
            self.queue.push(fault.at, Event::Fault { index });
        }
        self.queue
            .push(Time::ZERO + self.scenario.duration, Event::WorkloadEnd);
        self.clients.start(&mut bus!(self));
    }

    /// Processes the next event; `None` once the run is over.
    pub fn step(&mut self) -> Option<Step> {
        if self.stopped {
            return None;
        }
        let next = self.queue.peek_time().filter(|at| *at <= self.end);
        let (Some(_), false) = (next, self.nodes.violation.is_some()) else {
            return self.stop();
        };
        // A runaway protocol (a message storm, a timer armed in a loop) must end the run as
        // a broken limit, not take the machine's memory with it.
        if self.stats.events >= self.scenario.max_events || self.queue.len() > MAX_QUEUED_EVENTS {
            self.hit_event_limit = true;
            return self.stop();
        }
        let (at, event) = self.queue.pop().expect("peeked");
        #[cfg(feature = "perturb")]
        if self.perturb == Some(self.stats.events + 1) {
            // A test build asked for this event to come 1us late: it goes back in the queue,
            // and whatever comes first now is this event number.
            self.perturb = None;
            self.queue.push(at + Span(1), event);
            return self.step();
        }
        assert!(at >= self.now, "virtual time never runs backwards");
        self.now = at;
        self.stats.events += 1;
        fingerprint::write_event(&mut self.fingerprint, at, &event);
        if let Some(recorder) = &mut self.recorder {
            recorder.begin(self.stats.events, at, &event);
        }
        if let Some(trace) = &mut self.trace {
            trace.event(at, &event);
        }
        let delivered_from = match &event {
            Event::Deliver { from, .. } => Some(*from),
            _ => None,
        };
        self.nodes.handled = None;
        self.dispatch(event);
        if let Some(recorder) = &mut self.recorder {
            recorder.end(self.stats.events, &self.fingerprint);
        }
        if !self.clients.open && self.nodes.handled.is_some() {
            self.observer.maybe_note_convergence(self.now, &self.nodes);
        }
        if let Some(d) = &mut self.divergence {
            // Each due sample takes the state after the last event before it: nothing
            // changed between, so a quiet stretch repeats its value.
            if self.now >= d.next {
                let diverged = observer::diverged_keys(&self.nodes);
                while self.now >= d.next {
                    d.samples.push((d.next, diverged));
                    d.next += d.every;
                }
            }
        }
        Some(Step {
            at,
            handled: self.nodes.handled,
            delivered_from,
        })
    }

    fn stop(&mut self) -> Option<Step> {
        self.stopped = true;
        // The run ends at its scheduled end unless it stopped early.
        if self.nodes.violation.is_none() && !self.hit_event_limit {
            self.now = self.now.max(self.end);
        }
        None
    }

    /// The network as it is now.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Whether `node` is running, frozen, paused.
    pub fn node_status(&self, node: NodeId) -> NodeStatus {
        self.nodes.status(node)
    }

    /// Ends the run and hands over what it left.
    pub fn finish(mut self) -> RunOutput<P> {
        let fingerprint = self.fingerprint.finish();
        let recording = self
            .recorder
            .take()
            .map(|r| r.finish(self.stats.events, fingerprint));
        self.observer.close_calm(self.now);
        let trace_error = self.trace.as_mut().and_then(|trace| {
            trace.finish(self.now, fingerprint);
            trace.error().map(|e| e.to_string())
        });
        let clients = self.clients;
        RunOutput {
            history: clients.history,
            stats: self.stats,
            faults: self.applied_faults,
            fired: self.fired,
            fingerprint,
            end: self.now,
            healed_at: self.observer.healed_at,
            workload_stopped: clients.stopped_at,
            invariant_violation: self.nodes.violation.take(),
            hit_event_limit: self.hit_event_limit,
            converged_after_stop: self
                .observer
                .converged_at
                .map(|t| t.since(clients.stopped_at)),
            trace_error,
            sides: clients.sides,
            conflicts_at_heal: self.observer.conflicts_at_heal,
            divergence: self.divergence.map(|d| d.samples).unwrap_or_default(),
            roles: self
                .nodes
                .roles
                .take()
                .map(|r| r.changes)
                .unwrap_or_default(),
            calm: self.observer.calm,
            declared_dead: std::mem::take(&mut self.nodes.declared_dead),
            recording,
            outside: self.nodes.iter().map(|n| n.outside).collect(),
            clock_skews_us: self
                .nodes
                .iter()
                .map(|n| n.clock.skew_us(self.now))
                .collect(),
            nodes: self.nodes.into_states(),
        }
    }

    fn dispatch(&mut self, event: Event<P>) {
        match event {
            Event::Deliver { from, to, msg } => {
                let halt = self.nodes.on_deliver(&mut bus!(self), from, to, msg);
                self.on_halt(to, halt);
            }
            Event::Request { to, request } => {
                let halt = self.nodes.on_request(&mut bus!(self), to, request);
                self.on_halt(to, halt);
            }
            Event::Reply {
                from,
                request,
                result,
                context,
            } => self.clients.on_reply(
                &mut bus!(self),
                &self.nodes,
                from,
                request,
                (result, context),
            ),
            Event::Timer {
                node,
                epoch,
                generation,
                timer,
            } => {
                let halt = self
                    .nodes
                    .on_timer(&mut bus!(self), node, epoch, generation, timer);
                self.on_halt(node, halt);
            }
            Event::Synced {
                node,
                epoch,
                mark,
                after,
            } => self
                .nodes
                .on_synced(&mut bus!(self), node, epoch, mark, after),
            Event::ClientWake { client } => {
                let sides = self.observer.sides();
                self.clients
                    .invoke(&mut bus!(self), &self.nodes, sides, client);
            }
            Event::ClientTimeout { client } => {
                self.clients
                    .on_timeout(&mut bus!(self), &self.nodes, client);
            }
            Event::ClientRetry { request, attempt } => {
                self.clients
                    .on_retry(&mut bus!(self), &self.nodes, request, attempt);
            }
            Event::Arrival => {
                let sides = self.observer.sides();
                self.clients.on_arrival(&mut bus!(self), &self.nodes, sides);
            }
            Event::Fault { index } => self.fire(index),
            Event::WorkloadEnd => self.on_workload_end(),
            Event::WorkloadStop => self.stop_workload(),
        }
    }

    // ----- nodes ---------------------------------------------------------------------------

    /// Starts (or restarts) `node`.
    fn start_node(&mut self, node: NodeId) {
        let halt = self.nodes.start(&mut bus!(self), node);
        self.on_halt(node, halt);
        let slot = &self.nodes[node.index()];
        if slot.leaving && slot.state.is_some() && !slot.paused {
            // Asked to leave while it was down: it is asked again as it comes back.
            self.handle(node, |p, ctx| p.on_membership(ctx, Membership::Leave));
        }
    }

    /// Runs one handler on a running, unpaused node.
    fn handle(&mut self, node: NodeId, input: impl FnOnce(&mut P, &mut Context<'_, P>)) {
        let halt = self.nodes.handle(&mut bus!(self), node, input);
        self.on_halt(node, halt);
    }

    /// Crashes `node` if its handler halted it; stops it for good if it was leaving and
    /// has left.
    #[inline]
    fn on_halt(&mut self, node: NodeId, halt: Halt) {
        if halt != Halt::No {
            self.halted(node, halt);
        }
        if self.nodes[node.index()].leaving {
            self.maybe_left(node);
        }
    }

    #[cold]
    fn halted(&mut self, node: NodeId, halt: Halt) {
        let why = match halt {
            Halt::DiskFull => "its disk is full: a write failed",
            _ => "the protocol halted itself",
        };
        let action = format!("{} ({why})", self.crash(node));
        self.record_fault(action, FaultOrigin::Protocol);
    }

    // ----- faults (applied through FaultTarget, in engine/fault_target.rs) -------------

    fn record_fault(&mut self, action: String, origin: FaultOrigin) {
        if let Some(trace) = &mut self.trace {
            trace.fault(self.now, &action);
        }
        self.fingerprint.write(action.as_bytes());
        if let Some(recorder) = &mut self.recorder {
            recorder.fault(self.now, &action);
        }
        self.applied_faults.push(AppliedFault {
            at: self.now,
            action,
            origin,
        });
        self.observer
            .after_fault(self.now, &self.topology, &self.links, &self.nodes);
    }

    // ----- workload phases -----------------------------------------------------------------

    fn on_workload_end(&mut self) {
        let vopr = !self.written_off.is_empty();
        if !vopr && observer::is_whole(&self.topology, &self.links, &self.nodes) {
            self.stop_workload();
            return;
        }
        // Faults still in force (a degraded network and slow nodes count: see
        // `observer::is_whole`): heal everything (but the nodes written off, in the VOPR
        // mode, which crash for good), and give the clients a liveness phase of twice the
        // liveness window so that the liveness check has operations to judge.
        self.topology.heal();
        let mut restored = self.restore_network();
        let mut crashed = Vec::new();
        for i in 0..self.nodes.len() {
            let node = NodeId(i as u16);
            self.nodes[i].frozen = false;
            if self.nodes[i].disk.full {
                // A full disk stops its node at its next write: room again, as an operator
                // would make before the liveness phase.
                self.nodes[i].disk.full = false;
                restored.push_str(&format!(", room on {node}'s disk"));
            }
            if self.nodes[i].outside {
                continue; // not in the cluster: not joined yet, or gone for good
            }
            if self.written_off.contains(&node) {
                if self.nodes[i].state.is_some() {
                    crashed.push(self.crash(node));
                }
                continue;
            }
            if self.nodes[i].paused {
                self.resume(node);
            }
            if self.nodes[i].state.is_none() {
                self.start_node(node);
            }
        }
        let action = if vopr {
            let names: Vec<String> = self.written_off.iter().map(|n| n.to_string()).collect();
            let crashed = if crashed.is_empty() {
                String::new()
            } else {
                format!(" ({})", crashed.join(", "))
            };
            format!(
                "heal everything but {}, down for good (liveness_mode vopr){crashed}{restored}",
                names.join(", ")
            )
        } else {
            format!("heal everything: links, freezes, pauses, crashes{restored}")
        };
        self.record_fault(action, FaultOrigin::FinalHeal);
        if vopr {
            // The live nodes are whole: liveness is judged from now, and clients move off
            // the dead nodes as a load balancer would.
            self.observer.set_healed(self.now);
            self.clients.write_off(&self.written_off);
        }
        let liveness = self.scenario.checks.liveness;
        self.queue
            .push(self.now + liveness + liveness, Event::WorkloadStop);
    }

    fn stop_workload(&mut self) {
        self.clients.stop(self.now);
        self.end = self.now + self.scenario.checks.settle;
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "engine_network_tests.rs"]
mod network_tests;
