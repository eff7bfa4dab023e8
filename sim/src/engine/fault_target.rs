//! How a fault reaches the run: the engine as the [`FaultTarget`] every fault kind applies
//! itself to.

use super::event::Event;
use super::nodes::NodeSlot;
use super::Engine;
use crate::faults::{Pair, TimelineFault};
use crate::scenario::explain::span_text;
use crate::scenario::fault_kinds::{Applied, DiskFaultKind, DriftRate, FaultTarget, NetworkFault};
use crate::scenario::targets::{NodeView, World};
use crate::scenario::{Fault, FaultOrigin, IfNone, PartitionShape, ScheduledFault};
use simkv_protocols::{Membership, NodeId, Operator, Protocol, RoleKind, Span, SpanRange, Time};

/// How often a fault waiting for a role to be held looks again.
const WAIT_POLL: Span = Span::millis(10);

/// The fewest members a `leave` or `remove` leaves the cluster with.
const MIN_MEMBERS: usize = 2;

impl<P: Protocol> Engine<'_, P> {
    /// Fires the timeline's fault `index`: resolves its targets against the run as it is
    /// now (a target no node qualifies for waits, is skipped or falls back to a random
    /// node, as the fault's `if_none` says), applies it within its nemesis's bound on nodes
    /// down, records what it did and what its targets resolved to, and schedules the undo
    /// of what actually fired if it has a `for`.
    pub(super) fn fire(&mut self, index: usize) {
        let step = self.timeline[index].clone();
        if let Pair::Undo(k) = step.pair {
            if self.skipped_pairs.contains(&k) {
                return; // its fault never happened: nothing to undo
            }
        }
        if let Some((on, until)) = step.on_role {
            // Who holds the role now, and in which term. `new-ROLE` fires once a node holds
            // it that did not (in that term) when the fault came due; `ROLE` once any does.
            let holders: Vec<(NodeId, Option<u64>)> = (0..self.nodes.len())
                .filter_map(|i| {
                    let p = self.nodes[i].state.as_ref()?;
                    (p.role().spec().name == on.role).then(|| (NodeId(i as u16), p.term()))
                })
                .collect();
            let came = if on.new {
                let seen = self
                    .role_holders
                    .entry(index)
                    .or_insert_with(|| holders.clone());
                holders.iter().any(|h| !seen.contains(h))
            } else {
                !holders.is_empty()
            };
            if !came {
                return self.wait_for_role(index, until);
            }
            self.role_holders.remove(&index);
        }
        let mut world = World {
            nodes: self.node_views(),
            rng: &mut self.streams.faults,
            random_if_none: step.if_none == IfNone::Random,
        };
        let (fault, how) = match step.fault.resolve(&mut world) {
            Ok(resolved) => resolved,
            Err(why) => return self.no_target(index, why),
        };
        self.max_down = step.max_down;
        self.skipped_for_bound = false;
        self.apply_fault(&fault, &step.origin, how);
        self.max_down = None;
        if self.skipped_for_bound {
            if let Pair::Fault(k) = step.pair {
                self.skipped_pairs.push(k);
            }
        } else {
            if index < self.scripted {
                self.fired.push(ScheduledFault {
                    at: self.now,
                    at_latest: self.now,
                    fault: fault.clone(),
                    origin: FaultOrigin::Scripted(String::new()),
                    if_none: IfNone::Skip,
                    undo_after: step.undo_after.map(SpanRange::exactly),
                });
            }
            if let Some(after) = step.undo_after {
                self.schedule_undo(&fault, &step, after);
            }
        }
    }

    /// A fault whose target no node qualifies for: look again soon, or give up.
    fn no_target(&mut self, index: usize, why: String) {
        let step = &self.timeline[index];
        let action = step.fault.explain();
        let workload_end = Time::ZERO + self.scenario.duration;
        let retry = self.now + WAIT_POLL;
        if step.if_none == IfNone::Wait && retry < workload_end {
            if self.waiting.insert(index) {
                let origin = step.origin.clone();
                self.record_fault(format!("{action}: {why}; waiting"), origin);
            }
            self.queue.push(retry, Event::Fault { index });
            return;
        }
        let origin = step.origin.clone();
        self.record_fault(format!("{action}: {why}; skipped"), origin);
    }

    /// A fault of a nemesis with `on_role` while no node has taken its role since the fault
    /// came due: look again in [`WAIT_POLL`], unless the workload or the wait (at `until`,
    /// when its nemesis's next fault is due) has ended by then. Silent: many such faults see
    /// no role change in time, and recording each would bury the faults that fired.
    fn wait_for_role(&mut self, index: usize, until: Time) {
        let workload_end = Time::ZERO + self.scenario.duration;
        let retry = self.now + WAIT_POLL;
        if retry < workload_end && retry < until {
            self.queue.push(retry, Event::Fault { index });
        } else {
            self.role_holders.remove(&index);
        }
    }

    /// What each node is now, for resolving targets.
    fn node_views(&self) -> Vec<NodeView> {
        let view = |slot: &NodeSlot<P>| NodeView {
            role: slot.state.as_ref().map(|p| p.role().spec()),
            term: slot.state.as_ref().and_then(P::term),
            outside: slot.outside,
        };
        self.nodes.iter().map(view).collect()
    }

    /// Appends the undo of `fault` (as it fired, its targets resolved, so that `crash =
    /// "leader"` restarts the node it crashed) to the timeline, `after` from now. One that
    /// would come at or after the end of the workload is left to the final heal.
    fn schedule_undo(&mut self, fault: &Fault, fired: &TimelineFault, after: Span) {
        let Some(undo) = fault.undo() else {
            return;
        };
        let at = self.now + after;
        if at >= Time::ZERO + self.scenario.duration {
            return;
        }
        let origin = format!("{} for {}", fired.origin, span_text(after));
        self.timeline.push(TimelineFault {
            at,
            fault: undo,
            origin: FaultOrigin::Scripted(origin),
            undo_after: None,
            max_down: None,
            pair: Pair::None,
            if_none: IfNone::Skip,
            on_role: None,
        });
        let index = self.timeline.len() - 1;
        self.queue.push(at, Event::Fault { index });
    }

    /// Applies one fault, resolved, and records what it did (and how its targets resolved),
    /// unless it recorded itself.
    pub(super) fn apply_fault(&mut self, fault: &Fault, origin: &FaultOrigin, how: Option<String>) {
        if let Applied::Record(mut action) = fault.apply(self) {
            if let Some(how) = how {
                action = format!("{action} ({how})");
            }
            self.record_fault(action, origin.clone());
        }
        for node in std::mem::take(&mut self.to_leave) {
            if self.nodes[node.index()].state.is_some() && !self.nodes[node.index()].paused {
                self.handle(node, |p, ctx| p.on_membership(ctx, Membership::Leave));
            }
        }
    }

    /// Why taking `node` down now would break the bound of the fault being applied, if it
    /// would: the node is up and `max_down` nodes are already down, whatever the cause.
    fn over_bound(&mut self, node: NodeId) -> Option<String> {
        let max = self.max_down?;
        let is_down = |n: &NodeSlot<P>| !n.outside && (n.frozen || n.paused || n.state.is_none());
        if is_down(&self.nodes[node.index()]) {
            return None;
        }
        let down = self.nodes.iter().filter(|n| is_down(n)).count();
        if down < usize::from(max) {
            return None;
        }
        self.skipped_for_bound = true;
        Some(format!("skipped: max_down {max}"))
    }

    /// Brings back the scenario's `[network]` and every slow node's speed (what a heal
    /// restores besides links); says what it restored, as `, ...` to append to the action,
    /// empty when nothing was changed (so that runs without such faults record as before).
    pub(super) fn restore_network(&mut self) -> String {
        let mut restored = String::new();
        if self.links.restore_base() {
            restored.push_str(", network back to base");
        }
        for i in 0..self.nodes.len() {
            let node = NodeId(i as u16);
            if self.nodes.set_speed(&mut self.queue, self.now, node, 1) != 1 {
                restored.push_str(&format!(", {node} back to speed"));
            }
        }
        restored
    }
}

impl<P: Protocol> Engine<'_, P> {
    /// Hands `change` (about `subject`) to every running member but `subject`, in id order.
    fn tell_members(&mut self, subject: NodeId, change: Membership) {
        for i in 0..self.nodes.len() {
            let node = NodeId(i as u16);
            let slot = &self.nodes[i];
            if node == subject || slot.outside || slot.state.is_none() || slot.paused {
                continue;
            }
            self.handle(node, |p, ctx| p.on_membership(ctx, change));
        }
    }

    /// Why no member may go now: a cluster keeps at least [`MIN_MEMBERS`] members that are
    /// not leaving (one node alone replicates nothing).
    fn too_few_members(&self) -> Option<String> {
        let staying = self
            .nodes
            .iter()
            .filter(|n| !n.outside && !n.leaving)
            .count();
        (staying <= MIN_MEMBERS)
            .then(|| format!("ignored: the cluster keeps at least {MIN_MEMBERS} members"))
    }

    /// Takes `node` out of the cluster for good: crashed if it runs (whatever a nemesis's
    /// bound on nodes down, since it is no longer a member), never restarted, clients off
    /// it, every node's hosts list without it. Returns the crash as recorded, if it ran.
    fn go_for_good(&mut self, node: NodeId) -> Option<String> {
        let crashed = self.nodes[node.index()].state.is_some().then(|| {
            let bound = self.max_down.take();
            let crashed = self.crash(node);
            self.max_down = bound;
            crashed
        });
        let slot = &mut self.nodes[node.index()];
        slot.outside = true;
        slot.leaving = false;
        self.clients.set_in_cluster(node, false);
        self.nodes.publish_members();
        crashed
    }

    /// A leaving node that says it has left stops for good.
    #[cold]
    pub(super) fn maybe_left(&mut self, node: NodeId) {
        let left = self.nodes[node.index()]
            .state
            .as_ref()
            .is_some_and(P::has_left);
        if !left {
            return;
        }
        let crashed = self.go_for_good(node).unwrap_or_default();
        let action = format!("{node} left the cluster: stopped for good ({crashed})");
        self.record_fault(action, FaultOrigin::Protocol);
        self.tell_members(node, Membership::Removed(node));
    }
}

impl<P: Protocol> FaultTarget for Engine<'_, P> {
    fn partition(&mut self, shape: &PartitionShape) -> String {
        self.topology.partition(shape, &mut self.streams.faults)
    }

    fn heal(&mut self) -> String {
        self.topology.heal();
        format!("heal: all links up{}", self.restore_network())
    }

    fn set_frozen(&mut self, node: NodeId, frozen: bool) -> String {
        if let Some(skip) = frozen.then(|| self.over_bound(node)).flatten() {
            return format!("freeze {node} ({skip})");
        }
        self.nodes[node.index()].frozen = frozen;
        format!("{} {node}", if frozen { "freeze" } else { "unfreeze" })
    }

    fn pause(&mut self, node: NodeId) -> String {
        let slot = &mut self.nodes[node.index()];
        if slot.state.is_none() {
            return format!("pause {node} (ignored: crashed)");
        }
        if let Some(skip) = self.over_bound(node) {
            return format!("pause {node} ({skip})");
        }
        self.nodes[node.index()].paused = true;
        format!("pause {node}")
    }

    fn resume(&mut self, node: NodeId) -> String {
        let slot = &mut self.nodes[node.index()];
        if !slot.paused {
            return format!("resume {node} (ignored: not paused)");
        }
        slot.paused = false;
        // What waited runs now, in the order it arrived.
        let held = std::mem::take(&mut slot.held);
        let count = held.len();
        for event in held {
            self.queue.push(self.now, event);
        }
        format!("resume {node} ({count} held events released)")
    }

    fn crash(&mut self, node: NodeId) -> String {
        let slot = &mut self.nodes[node.index()];
        if slot.state.is_none() {
            return format!("crash {node} (ignored: already down)");
        }
        if let Some(skip) = self.over_bound(node) {
            return format!("crash {node} ({skip})");
        }
        let slot = &mut self.nodes[node.index()];
        slot.state = None;
        slot.epoch += 1;
        slot.paused = false;
        slot.held.clear();
        slot.timers.clear();
        let disk = slot.disk.crash(&mut self.streams.faults);
        if let Some(roles) = &mut self.nodes.roles {
            roles.sample(self.now, node, None, &mut self.trace);
        }
        match disk {
            Some(what) => format!("crash {node} ({what})"),
            None => format!("crash {node}"),
        }
    }

    fn disk(&mut self, node: NodeId, fault: DiskFaultKind) -> String {
        let disk = &mut self.nodes[node.index()].disk;
        let name = fault.name();
        match fault {
            DiskFaultKind::Corrupt => match disk.corrupt(&mut self.streams.faults) {
                Some(i) => format!("disk {node} {name} (record {} of {})", i + 1, disk.len()),
                None => format!("disk {node} {name} (ignored: nothing written)"),
            },
            DiskFaultKind::LoseUnsynced => {
                disk.on_crash.lose = Some(true);
                format!("disk {node} {name}")
            }
            DiskFaultKind::LoseSomeUnsynced => {
                disk.on_crash.lose = Some(false);
                format!("disk {node} {name}")
            }
            DiskFaultKind::TornWrite => {
                disk.on_crash.torn = true;
                format!("disk {node} {name}")
            }
            DiskFaultKind::Full => {
                disk.full = true;
                format!("disk {node} {name}")
            }
            DiskFaultKind::Misdirect => {
                disk.misdirect = Some(self.streams.faults.next_u64());
                format!("disk {node} {name} (its next write lands on an earlier record)")
            }
            DiskFaultKind::Healthy => {
                disk.on_crash = disk.configured;
                disk.full = false;
                disk.misdirect = None;
                format!("disk {node} {name}")
            }
        }
    }

    fn restart(&mut self, node: NodeId) -> String {
        if self.nodes[node.index()].state.is_some() {
            return format!("restart {node} (ignored: running)");
        }
        if self.nodes[node.index()].outside {
            return format!("restart {node} (ignored: not in the cluster)");
        }
        self.start_node(node);
        let from = if !self.nodes[node.index()].disk.is_empty() {
            "from its durable state"
        } else {
            "with nothing persisted"
        };
        format!("restart {node} {from}")
    }

    fn clock_jump(&mut self, node: NodeId, by_us: i64) {
        self.nodes[node.index()].clock.jump(by_us);
    }

    fn clock_drift(&mut self, node: NodeId, rate: DriftRate) -> i64 {
        let ppm = match rate {
            DriftRate::Ppm(ppm) => ppm,
            DriftRate::Base => self
                .scenario
                .clocks
                .iter()
                .find(|c| c.node == node)
                .map_or(0, |c| c.drift_ppm),
        };
        self.nodes[node.index()].clock.set_drift(self.now, ppm);
        ppm
    }

    fn operator(&mut self, node: NodeId, command: Operator) -> Applied {
        let slot = &self.nodes[node.index()];
        let action = format!("operator {node}: {command}");
        if slot.state.is_none() || slot.paused {
            return Applied::Record(format!("{action} (ignored: the node is not running)"));
        }
        // Recorded before the handler runs, so that a halt it causes is listed after it.
        self.record_fault(action, FaultOrigin::Operator);
        self.handle(node, |p, ctx| p.on_operator(ctx, command));
        Applied::AlreadyRecorded
    }

    fn network(&mut self, fault: &NetworkFault) {
        self.links.apply(fault);
    }

    fn join(&mut self, node: NodeId) -> String {
        let slot = &self.nodes[node.index()];
        if !slot.outside {
            return format!("join {node} (ignored: already in the cluster)");
        }
        if slot.state.is_some() || !slot.disk.is_empty() {
            return format!("join {node} (ignored: it left or was removed for good)");
        }
        self.nodes[node.index()].outside = false;
        self.nodes.publish_members();
        self.nodes[node.index()].config.joining = true;
        self.start_node(node);
        self.clients.set_in_cluster(node, true);
        self.tell_members(node, Membership::Joined(node));
        format!("join {node} (starts outside the cluster and asks to join it)")
    }

    fn leave(&mut self, node: NodeId) -> String {
        let slot = &self.nodes[node.index()];
        if slot.outside {
            return format!("leave {node} (ignored: not in the cluster)");
        }
        if slot.leaving {
            return format!("leave {node} (ignored: already leaving)");
        }
        if let Some(why) = self.too_few_members() {
            return format!("leave {node} ({why})");
        }
        self.nodes[node.index()].leaving = true;
        // Clients stop sending to it, as an operator drains a node before decommissioning it.
        self.clients.set_in_cluster(node, false);
        let slot = &self.nodes[node.index()];
        if slot.state.is_none() || slot.paused {
            return format!("leave {node} (down: it leaves once it runs again)");
        }
        // Handed its leave once this action is recorded, so that its leaving is listed
        // after it (see `apply_fault`).
        self.to_leave.push(node);
        format!("leave {node} (hands over what it holds, then stops for good)")
    }

    fn remove(&mut self, node: NodeId) -> String {
        if self.nodes[node.index()].outside {
            return format!("remove {node} (ignored: not in the cluster)");
        }
        if let Some(why) = self.too_few_members() {
            return format!("remove {node} ({why})");
        }
        let crashed = match self.go_for_good(node) {
            Some(crash) => format!(" ({crash})"),
            None => String::new(),
        };
        self.tell_members(node, Membership::Removed(node));
        format!("remove {node}: down for good{crashed}")
    }

    fn set_slow(&mut self, node: NodeId, factor: u32) -> String {
        // Slowness belongs to the machine, not the process: it outlasts a crash.
        let before = self
            .nodes
            .set_speed(&mut self.queue, self.now, node, factor);
        match (before, factor) {
            (1, 1) => format!("unslow {node} (ignored: not slow)"),
            (_, 1) => format!("unslow {node}"),
            _ => format!("slow {node} x{factor}"),
        }
    }
}
