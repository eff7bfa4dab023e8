//! The client driver: each client's state and what it does with it. A client invokes an
//! operation (drawn by the workload's generator), sends attempts at a node, retries on a
//! refusal or a timeout, and records the invocation and the completion in the history with
//! the side its node stood on. Closed-loop clients think between operations; open-loop
//! arrivals pick an idle client or are shed.
//!
//! Each history process is one Jepsen process: it never has two operations in flight. A
//! client with `in_flight = k` is k processes (its slots, `c * k + i`), each with its own
//! request ids, so that a protocol's client sessions see one request at a time per process.
//! Before each retry a client waits out its backoff (`Event::ClientRetry`); placed beside a
//! node, it reaches only what its node reaches (`network::ClientPlacement`), and its
//! operations are tagged with its node's side.

use super::bus::Bus;
use super::event::Event;
use super::nodes::Nodes;
use super::observer::Side;
use crate::history::{History, Outcome};
use crate::scenario::{Arrival, Backoff, Scenario, ScriptedOp, Target, Workload};
use crate::workload::{ClientMemory, OpGenerator};
use simkv_protocols::{
    CausalContext, ClientId, Key, NodeId, Op, OpResult, Protocol, Request, RequestId, Span, Time,
};
use std::collections::VecDeque;
use std::sync::Arc;

/// The operation a client is waiting on.
#[derive(Clone, Debug)]
struct InFlight {
    request: RequestId,
    /// What was asked (shared with the history's records of it).
    op: Arc<Op>,
    /// Of whom: the node the current attempt went to.
    node: NodeId,
    /// Retries so far (0 for the first try).
    attempt: u32,
    /// When the current attempt times out.
    deadline: Time,
    /// Where its first target stood when it was invoked (a colocated client: where its own
    /// node stood).
    side: Side,
    /// Waiting out a backoff before the attempt numbered `attempt`: nothing is outstanding.
    backing_off: bool,
    /// The causal context it carries (with contexts, a write's), sent with every attempt.
    context: Option<CausalContext>,
}

/// One history process: a client, or one slot of a client with several operations in flight.
#[derive(Clone, Debug, Default)]
struct Client {
    /// What shapes its next operation.
    memory: ClientMemory,
    /// The operation in flight, if any.
    in_flight: Option<InFlight>,
    /// When the client's one pending timeout event fires, if one is queued.
    timeout_pending: Option<Time>,
    /// A scripted workload: the operations this process has still to invoke, in order.
    script: VecDeque<ScriptedOp>,
    /// A scripted workload with contexts: the key of the last get this process completed
    /// and the context it answered (`None`: none), for a write of that key right after it.
    answered: Option<(Key, Option<CausalContext>)>,
}

/// Every client of the run, and the history they record.
pub(super) struct Clients<'s> {
    workload: &'s Workload,
    /// The cluster's size, for retries that pick a node at random.
    nodes: u16,
    /// One per history process, by process id.
    clients: Vec<Client>,
    /// Open-loop processes with nothing in flight.
    idle: Vec<ClientId>,
    generator: OpGenerator,
    /// Whether clients still invoke operations.
    pub(super) open: bool,
    /// When they stopped.
    pub(super) stopped_at: Time,
    /// What they invoked and what came of it.
    pub(super) history: History,
    /// The side of each history event's operation, aligned with the history.
    pub(super) sides: Vec<Side>,
    /// Nodes down for good (VOPR liveness mode), by index; empty when none is.
    written_off: Vec<bool>,
    /// Operations invoked so far (for `max_ops`).
    invoked: u64,
    /// Whether the workload is scripted (`[[op]]`s): clients invoke the script's operations.
    ///
    /// A closed-loop script still makes, and drops, every draw a drawn workload makes (the
    /// first wake, each operation, each think time): so the draws it uses (a retry's node,
    /// a backoff's wait, from the same stream) fall as they fell in the run the script was
    /// written from, and that run replays exactly. Open-loop scripts draw only for retries.
    scripted: bool,
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
            // Saturating: a think time near 2^64 us overflowed here (found by tests/fuzz.rs).
            let think_sum = think.min.as_micros().saturating_add(think.max.as_micros());
            let cycle_us = think_sum / 2 + 200;
            let per_client = scenario.duration.as_micros() / cycle_us + 1;
            per_client.saturating_mul(u64::from(w.processes()))
        }
    };
    ops.saturating_mul(2).min(MOST) as usize
}

impl<'s> Clients<'s> {
    /// `scenario`'s clients, none started.
    pub(super) fn new(scenario: &'s Scenario) -> Self {
        let workload = &scenario.workload;
        let mut clients = vec![Client::default(); workload.processes() as usize];
        for op in &workload.script {
            clients[op.process.index()].script.push_back(op.clone());
        }
        Clients {
            workload,
            nodes: scenario.cluster.nodes,
            clients,
            idle: Vec::new(),
            generator: OpGenerator::new(workload, scenario.cluster.nodes),
            open: true,
            stopped_at: Time::ZERO,
            history: History::with_capacity(expected_events(scenario)),
            sides: Vec::new(),
            written_off: Vec::new(),
            invoked: 0,
            scripted: !workload.script.is_empty(),
        }
    }

    /// Clients send nothing more to `dead`: each operation or retry aimed at one goes to
    /// the next live node instead (no draw, so the workload's stream is unchanged).
    pub(super) fn write_off(&mut self, dead: &[NodeId]) {
        if self.written_off.is_empty() {
            self.written_off = vec![false; usize::from(self.nodes)];
        }
        // Nodes outside the cluster (see `set_in_cluster`) stay written off.
        for node in dead {
            self.written_off[node.index()] = true;
        }
    }

    /// Clients send to `node` again (`true`: it joined the cluster) or no more (`false`:
    /// it is outside it, not joined yet or gone), as a load balancer's list follows the
    /// cluster: an operation aimed at a node outside goes to the next node in it.
    pub(super) fn set_in_cluster(&mut self, node: NodeId, inside: bool) {
        if self.written_off.is_empty() {
            if inside {
                return;
            }
            self.written_off = vec![false; usize::from(self.nodes)];
        }
        self.written_off[node.index()] = !inside;
    }

    /// `node`, or the next live node after it if it is written off.
    fn live(&self, node: NodeId) -> NodeId {
        let n = usize::from(self.nodes);
        let dead = |i: usize| self.written_off.get(i).copied().unwrap_or(false);
        (0..n)
            .map(|k| (node.index() + k) % n)
            .find(|i| !dead(*i))
            .map_or(node, |i| NodeId(i as u16))
    }

    /// Schedules the first invocations (closed loop) or the first arrival (open loop).
    pub(super) fn start<P: Protocol>(&mut self, bus: &mut Bus<'_, P>) {
        if self.scripted {
            for (c, state) in self.clients.iter().enumerate() {
                if let Arrival::ClosedLoop { think } = self.workload.arrival {
                    // Drawn and dropped: see `Clients::scripted`.
                    bus.streams.workload.between(0, think.max.as_micros());
                }
                if let Some(first) = state.script.front() {
                    let client = ClientId(c as u32);
                    bus.queue.push(first.at, Event::ClientWake { client });
                }
            }
            return;
        }
        match self.workload.arrival {
            Arrival::ClosedLoop { think } => {
                for c in 0..self.clients.len() {
                    // Spread the first invocations over one think time.
                    let delay = bus.streams.workload.between(0, think.max.as_micros());
                    let client = ClientId(c as u32);
                    let at = Time(delay) + self.workload.start;
                    bus.queue.push(at, Event::ClientWake { client });
                }
            }
            Arrival::OpenLoop { .. } => {
                self.idle = (0..self.clients.len() as u32).rev().map(ClientId).collect();
                if !self.idle.is_empty() {
                    self.schedule_arrival(bus, Time::ZERO + self.workload.start);
                }
            }
        }
    }

    /// Whether the clients have invoked `max_ops` operations already.
    fn capped(&self) -> bool {
        self.workload
            .max_ops
            .is_some_and(|most| self.invoked >= most)
    }

    /// Clients invoke nothing more from `now` on.
    pub(super) fn stop(&mut self, now: Time) {
        self.open = false;
        self.stopped_at = now;
    }

    /// `client` invokes its next operation, if clients are still at work. `sides` is each
    /// node's side now.
    pub(super) fn invoke<P: Protocol>(
        &mut self,
        bus: &mut Bus<'_, P>,
        nodes: &Nodes<P>,
        sides: &[Side],
        client: ClientId,
    ) {
        if !self.open || self.capped() {
            return;
        }
        let state = &mut self.clients[client.index()];
        debug_assert!(
            state.in_flight.is_none(),
            "a client has one operation in flight"
        );
        let (request, op, node, context) = if self.scripted {
            match state.script.front() {
                None => return,
                Some(next) if next.at > bus.now => {
                    bus.queue.push(next.at, Event::ClientWake { client });
                    return;
                }
                Some(_) => {}
            }
            let next = state.script.pop_front().expect("checked above");
            let request = match self.workload.arrival {
                Arrival::ClosedLoop { .. } => {
                    // Drawn and dropped: see `Clients::scripted`.
                    let workload = &mut bus.streams.workload;
                    let (request, _, _) = self.generator.next(client, &mut state.memory, workload);
                    state.memory.take_outgoing();
                    request
                }
                Arrival::OpenLoop { .. } => state.memory.next_request(client),
            };
            // As a drawn write: with the context the get of its key just before answered.
            let context = (self.workload.contexts && next.op.is_write()).then(|| {
                match state.answered.take() {
                    Some((key, context)) if key == next.op.key() => context.unwrap_or_default(),
                    _ => CausalContext::default(),
                }
            });
            (request, next.op, next.node, context)
        } else {
            let (request, op, node) =
                self.generator
                    .next(client, &mut state.memory, &mut bus.streams.workload);
            (request, op, node, state.memory.take_outgoing())
        };
        self.invoked += 1;
        let node = self.live(node);
        let state = &mut self.clients[client.index()];
        // Shared by the invocation, the completion and the client's state: one copy.
        let op = Arc::new(op);
        self.history.push_with_context(
            bus.now,
            client,
            node,
            Arc::clone(&op),
            None,
            context.clone(),
        );
        let side = sides[bus.placement.home(client).unwrap_or(node).index()];
        self.sides.push(side);
        state.in_flight = Some(InFlight {
            request,
            op,
            node,
            attempt: 0,
            deadline: bus.now,
            side,
            backing_off: false,
            context,
        });
        self.send_attempt(bus, nodes, client);
    }

    /// Sends the client's operation in flight (again) to the node it now targets, and arms
    /// the attempt's timeout.
    fn send_attempt<P: Protocol>(
        &mut self,
        bus: &mut Bus<'_, P>,
        nodes: &Nodes<P>,
        client: ClientId,
    ) {
        let flight = self.clients[client.index()]
            .in_flight
            .as_ref()
            .expect("in flight");
        let (request, node) = (flight.request, flight.node);
        let call = Request {
            id: request,
            op: Op::clone(&flight.op),
            quorum: self.workload.quorum,
            context: flight.context.clone(),
        };
        let delay = bus.links.client_delay(&mut bus.streams.network);
        let frozen = |n: NodeId| nodes[n.index()].frozen;
        let cut = !bus
            .placement
            .link_up(bus.topology, client, node, true, frozen);
        if nodes[node.index()].frozen || cut {
            bus.stats.requests_lost += 1;
        } else {
            bus.queue.push(
                bus.now + delay,
                Event::Request {
                    to: node,
                    request: call,
                },
            );
        }
        let deadline = bus.now + self.workload.timeout;
        let state = &mut self.clients[client.index()];
        state.in_flight.as_mut().expect("in flight").deadline = deadline;
        // One pending timeout event per client, re-armed when it fires early: a per-attempt
        // event would leave one stale event per completed operation in the queue (tens of
        // thousands with 100 fast clients), and every pop would pay for them.
        if state.timeout_pending.is_none() {
            state.timeout_pending = Some(deadline);
            bus.queue.push(deadline, Event::ClientTimeout { client });
        }
    }

    /// The attempt of `request` the client is on, and whether it is waiting out a backoff
    /// before it, if it still waits for `request`.
    fn waiting_attempt(&self, request: RequestId) -> Option<(u32, bool)> {
        let flight = self.clients[request.client.index()].in_flight.as_ref()?;
        (flight.request == request).then_some((flight.attempt, flight.backing_off))
    }

    /// Tries the client's operation again, with the same request id (so that a protocol with
    /// client sessions applies it once), at `hint` or wherever the client's target says:
    /// at once without a backoff, else once the backoff's wait is over.
    fn retry<P: Protocol>(
        &mut self,
        bus: &mut Bus<'_, P>,
        nodes: &Nodes<P>,
        client: ClientId,
        hint: Option<NodeId>,
    ) {
        let count = u64::from(self.nodes);
        let target = self.workload.target;
        let flight = self.clients[client.index()]
            .in_flight
            .as_mut()
            .expect("in flight");
        flight.attempt += 1;
        let node = match (hint, target) {
            (_, Target::Fixed) => flight.node,
            (Some(hint), _) => hint,
            (None, _) => NodeId(bus.streams.workload.below(count) as u16),
        };
        let node = self.live(node);
        let flight = self.clients[client.index()]
            .in_flight
            .as_mut()
            .expect("in flight");
        flight.node = node;
        match self.workload.backoff {
            Backoff::None => self.send_attempt(bus, nodes, client),
            backoff @ Backoff::Exponential { .. } => {
                // Equal jitter: between half the ceiling and all of it, so that an uncapped
                // wait is never shorter than the one before.
                let ceiling = backoff.ceiling(flight.attempt).as_micros();
                let half = ceiling / 2;
                let wait = half + bus.streams.workload.between(0, ceiling - half);
                flight.backing_off = true;
                let (request, attempt) = (flight.request, flight.attempt);
                bus.queue.push(
                    bus.now + Span(wait),
                    Event::ClientRetry { request, attempt },
                );
            }
        }
    }

    /// A backoff is over: the client sends retry `attempt` of `request`, if it still waits to
    /// (a late answer may have completed the operation meanwhile).
    pub(super) fn on_retry<P: Protocol>(
        &mut self,
        bus: &mut Bus<'_, P>,
        nodes: &Nodes<P>,
        request: RequestId,
        attempt: u32,
    ) {
        let client = request.client;
        let live = |node| self.live(node);
        let Some(flight) = self.clients[client.index()].in_flight.as_ref() else {
            return;
        };
        if flight.request != request || flight.attempt != attempt || !flight.backing_off {
            return;
        }
        // A node written off while the client waited is skipped, as at any retry.
        let node = live(flight.node);
        let flight = self.clients[client.index()]
            .in_flight
            .as_mut()
            .expect("checked above");
        flight.node = node;
        flight.backing_off = false;
        self.send_attempt(bus, nodes, client);
    }

    /// `from`'s answer to `request` reaches its client, unless a partition cut a colocated
    /// client off from `from` meanwhile.
    pub(super) fn on_reply<P: Protocol>(
        &mut self,
        bus: &mut Bus<'_, P>,
        nodes: &Nodes<P>,
        from: NodeId,
        request: RequestId,
        (result, context): (OpResult, Option<CausalContext>),
    ) {
        let frozen = |n: NodeId| nodes[n.index()].frozen;
        if !bus
            .placement
            .link_up(bus.topology, request.client, from, false, frozen)
        {
            bus.stats.replies_lost += 1;
            return;
        }
        let Some((attempt, backing_off)) = self.waiting_attempt(request) else {
            return; // a late reply after a timeout or to an earlier attempt
        };
        // A refusal promises the operation was not applied: safe to try elsewhere.
        if !result.is_applied() {
            if backing_off {
                return; // a late refusal of an earlier attempt: the retry is scheduled
            }
            if attempt < self.workload.retries {
                self.retry(bus, nodes, request.client, result.hint());
                return;
            }
        }
        self.complete(bus, request, Some(result), context);
    }

    /// The client's pending timeout event fires: retry or give up if its attempt is overdue.
    pub(super) fn on_timeout<P: Protocol>(
        &mut self,
        bus: &mut Bus<'_, P>,
        nodes: &Nodes<P>,
        client: ClientId,
    ) {
        let state = &mut self.clients[client.index()];
        state.timeout_pending = None;
        let Some(flight) = &state.in_flight else {
            return; // answered: the next attempt arms its own timeout
        };
        if flight.backing_off {
            return; // nothing outstanding: the retry arms its own timeout when it is sent
        }
        let (request, attempt, deadline) = (flight.request, flight.attempt, flight.deadline);
        if deadline > bus.now {
            // A later attempt or operation is waiting: wait for its deadline.
            state.timeout_pending = Some(deadline);
            bus.queue.push(deadline, Event::ClientTimeout { client });
        } else if attempt < self.workload.retries {
            self.retry(bus, nodes, client, None);
        } else {
            self.complete(bus, request, None, None);
        }
    }

    /// Records the end of `request` if its client still waits for it; `None` = timed out.
    fn complete<P: Protocol>(
        &mut self,
        bus: &mut Bus<'_, P>,
        request: RequestId,
        result: Option<OpResult>,
        context: Option<CausalContext>,
    ) {
        let client = request.client;
        let state = &mut self.clients[client.index()];
        match &state.in_flight {
            Some(f) if f.request == request => {}
            _ => return, // a late reply after a timeout, or a timeout after a reply
        }
        let flight = state.in_flight.take().expect("checked above");
        state.memory.learn(
            &flight.op,
            flight.node,
            result.as_ref(),
            self.generator.uses_last_seen,
        );
        // A refusal's context (none is sent) or a timeout's (none came) teaches nothing.
        let context = context.filter(|_| result.as_ref().is_some_and(OpResult::is_applied));
        state.memory.learn_context(&flight.op, context.as_ref());
        if self.scripted && self.workload.contexts {
            state.answered = match &*flight.op {
                Op::Get { key } => Some((*key, context.clone())),
                _ => None,
            };
        }
        let outcome = match result {
            Some(r) if r.is_applied() => Outcome::Ok(r),
            Some(r) => Outcome::Fail(r),
            None => Outcome::Info,
        };
        self.history.push_with_context(
            bus.now,
            client,
            flight.node,
            flight.op,
            Some(outcome),
            context,
        );
        self.sides.push(flight.side);
        if self.scripted {
            if let Arrival::ClosedLoop { think } = self.workload.arrival {
                // Drawn and dropped: see `Clients::scripted`.
                let (min, max) = (think.min.as_micros(), think.max.as_micros());
                bus.streams.workload.between(min, max);
            }
            if let Some(next) = state.script.front() {
                let at = next.at.max(bus.now);
                bus.queue.push(at, Event::ClientWake { client });
            }
            return;
        }
        match self.workload.arrival {
            Arrival::ClosedLoop { think } => {
                let pause = bus
                    .streams
                    .workload
                    .between(think.min.as_micros(), think.max.as_micros());
                bus.queue
                    .push(bus.now + Span(pause), Event::ClientWake { client });
            }
            Arrival::OpenLoop { .. } => self.idle.push(client),
        }
    }

    /// Schedules the next open-loop arrival, an exponential gap after `from`.
    fn schedule_arrival<P: Protocol>(&mut self, bus: &mut Bus<'_, P>, from: Time) {
        let Arrival::OpenLoop { rate_per_s } = self.workload.arrival else {
            return;
        };
        let mean = 1e6 / rate_per_s as f64;
        let gap = (-mean * bus.streams.workload.unit_open_closed().ln()).round() as u64;
        bus.queue.push(from + Span(gap), Event::Arrival);
    }

    /// An open-loop arrival: an idle client invokes an operation, or the arrival is shed.
    pub(super) fn on_arrival<P: Protocol>(
        &mut self,
        bus: &mut Bus<'_, P>,
        nodes: &Nodes<P>,
        sides: &[Side],
    ) {
        if !self.open || self.capped() {
            return;
        }
        if self.idle.is_empty() {
            bus.stats.shed += 1;
        } else {
            let i = bus.streams.workload.below(self.idle.len() as u64) as usize;
            let client = self.idle.swap_remove(i);
            self.invoke(bus, nodes, sides, client);
        }
        self.schedule_arrival(bus, bus.now);
    }
}
