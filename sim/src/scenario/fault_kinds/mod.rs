//! Fault kinds: one file per family of `[[fault]]` actions, and one table that lists them.
//!
//! A kind's file holds everything about it: the payload the engine runs, the raw shape serde
//! reads under its key, the validation that turns one into the other, the line `--explain`
//! prints, how it is applied through [`FaultTarget`], and, for kinds a nemesis may draw, how
//! it draws one with the action that undoes it. The table at the bottom of this file
//! generates from those impls the [`Fault`] enum, the raw `[[fault]]` table, the list of
//! action keys and [`NemesisKind`], so that the loader, `--explain`, the nemesis and the
//! engine all go through it.
//!
//! Adding a kind: write its file (a type implementing `FaultKind`, and `NemesisDraw` if a
//! nemesis may draw it), then add its `mod` line and its table line here.

mod clock_drift;
mod clock_jump;
mod crash;
mod disk;
mod freeze;
mod membership;
mod network;
mod operator;
mod partition;
mod pause;
mod slow;
mod table;

pub use clock_drift::{ClockDrift, DriftRate};
pub use clock_jump::ClockJump;
pub use crash::{Crash, Restart};
pub use disk::{DiskFault, DiskFaultKind, DISK_FAULTS};
pub use freeze::{Freeze, Unfreeze};
pub use membership::{Join, Leave, Remove};
pub(crate) use network::link_change;
pub use network::{LinkChange, NetworkFault, NetworkScope};
pub use operator::OperatorCommand;
pub use partition::{Heal, Isolate, LeaderSide, OneWay, Partition, PartitionShape};
pub use pause::{Pause, Resume};
pub use slow::{Slow, Unslow, MAX_SLOW_FACTOR};

use super::model::Latency;
use super::targets::World;
use super::validator::{Checked, Validator};
use crate::rng::Stream;
use serde::de::DeserializeOwned;
use simkv_protocols::{NodeId, Operator, Span};
use std::fmt;
use toml::Spanned;

/// One kind of `[[fault]]` action, keyed in the file by the name its table line gives it.
pub(crate) trait FaultKind: Sized {
    /// What the file holds under the kind's key, as serde reads it (leaf values already
    /// parsed and located).
    type Raw: DeserializeOwned;
    /// Checks `raw` against the scenario (node names against the cluster, ranges).
    fn check(raw: &Spanned<Self::Raw>, v: &Validator) -> Checked<Self>;
    /// The action as its key and value in a scenario file (`freeze = "n1"`), for
    /// `--explain`; it must load back to the same value.
    fn explain(&self) -> String;
    /// The action with its targets resolved against the run as it is now (`crash =
    /// "leader"` becomes `crash = "n3"`), and how they resolved when they named a role or a
    /// set; `Err` says why no node qualifies. Kinds that name no role are already resolved.
    fn resolve(&self, w: &mut World<'_>) -> Result<(Self, Option<String>), String>
    where
        Self: Clone,
    {
        let _ = w;
        Ok((self.clone(), None))
    }
    /// The same action aimed at `targets` instead, for kinds aimed at nodes; `None` for
    /// the others (a nemesis with targets leaves those as drawn).
    fn retarget(&self, targets: &super::targets::Targets) -> Option<Self> {
        let _ = targets;
        None
    }
    /// Applies the action, resolved, to the run.
    fn apply(&self, target: &mut dyn FaultTarget) -> Applied;
    /// The action that undoes this one, for `for = "2s"`; most kinds have none.
    fn undo(&self) -> Option<Fault> {
        None
    }
}

/// A kind a nemesis may draw: a random instance and the action that undoes it.
pub(crate) trait NemesisDraw {
    /// Draws one fault and its undo from `d.rng`; `d.node` was drawn already.
    fn draw(d: &mut Draw<'_>) -> (Fault, Fault);
}

/// What a nemesis draw may use.
pub(crate) struct Draw<'a> {
    /// A node drawn for this fault (drawn whatever the kind, so that the stream's order of
    /// draws does not depend on the kind).
    pub node: NodeId,
    /// The cluster's size.
    pub nodes: u16,
    /// The nemesis's largest clock jump.
    pub clock_jump_max: Span,
    /// The nemesis's largest clock drift, ppm.
    pub clock_drift_max: u64,
    /// The `[network]` default latency, which a drawn degraded network stretches.
    pub latency: Latency,
    /// The faults stream.
    pub rng: &'a mut Stream,
}

/// What applying a fault left to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// Record this action (for the report, the trace and the fingerprint).
    Record(String),
    /// The action recorded itself while it ran (an operator's command is listed before
    /// what its handler causes).
    AlreadyRecorded,
}

/// Where an applied fault came from; renders as reports have always shown it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultOrigin {
    /// A scripted `[[fault]]`: where its time is written (`file:line:col`, or the
    /// `--set entry` that wrote it).
    Scripted(String),
    /// Drawn by the nemesis.
    Nemesis,
    /// An operator's command, recorded as it runs.
    Operator,
    /// A protocol that halted itself (a crash it caused).
    Protocol,
    /// The heal of everything at the end of the workload.
    FinalHeal,
}

impl fmt::Display for FaultOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultOrigin::Scripted(at) => f.write_str(at),
            FaultOrigin::Nemesis => f.write_str("nemesis"),
            FaultOrigin::Operator => f.write_str("operator"),
            FaultOrigin::Protocol => f.write_str("protocol"),
            FaultOrigin::FinalHeal => f.write_str("final heal"),
        }
    }
}

/// The run a fault is applied to (the engine). The node-level methods return the action as
/// it is recorded, noting when it was ignored.
pub(crate) trait FaultTarget {
    /// Cuts links as `shape` says, replacing any partition; returns the groups, as text.
    fn partition(&mut self, shape: &PartitionShape) -> String;
    /// Restores every link, the scenario's `[network]` and every slow node's speed; returns
    /// the action as it is recorded.
    fn heal(&mut self) -> String;
    /// Drops (or stops dropping) all traffic to and from `node`.
    fn set_frozen(&mut self, node: NodeId, frozen: bool) -> String;
    /// Stops running `node`'s handlers; what reaches it waits.
    fn pause(&mut self, node: NodeId) -> String;
    /// Undoes a pause: what waited runs now, in order.
    fn resume(&mut self, node: NodeId) -> String;
    /// Loses `node`'s volatile state.
    fn crash(&mut self, node: NodeId) -> String;
    /// Boots a crashed `node` from what it persisted.
    fn restart(&mut self, node: NodeId) -> String;
    /// Steps `node`'s clock by a signed amount.
    fn clock_jump(&mut self, node: NodeId, by_us: i64);
    /// Sets `node`'s clock drift from now on; returns the rate it now runs at, ppm.
    fn clock_drift(&mut self, node: NodeId, rate: DriftRate) -> i64;
    /// Hands an operator's command to `node`.
    fn operator(&mut self, node: NodeId, command: Operator) -> Applied;
    /// Changes how links behave from now on, or brings back the scenario's `[network]`.
    fn network(&mut self, fault: &NetworkFault);
    /// Makes `node` `factor` times slower from now on (1: its normal speed).
    fn set_slow(&mut self, node: NodeId, factor: u32) -> String;
    /// Damages `node`'s disk now, or changes what its crashes do to unsynced writes.
    fn disk(&mut self, node: NodeId, fault: DiskFaultKind) -> String;
    /// Starts `node`, outside the cluster, to join it; the members are told.
    fn join(&mut self, node: NodeId) -> String;
    /// Asks `node`, a member, to leave gracefully; it stops for good once it has left.
    fn leave(&mut self, node: NodeId) -> String;
    /// Takes `node` down for good; the members are told.
    fn remove(&mut self, node: NodeId) -> String;
}

table::fault_kinds! {
    /// Cut links as the groups or the named shape say (replacing any current partition).
    partition => Partition(Partition), nemesis "partition";
    /// One node alone against the rest.
    isolate => Isolate(Isolate);
    /// Messages from some nodes to others are lost; the other direction works.
    one_way => OneWay(OneWay);
    /// Restore every link, the scenario's `[network]` and every slow node's speed.
    heal => Heal(Heal);
    /// Drop all traffic to and from the node; it keeps running, with its state and timers.
    freeze => Freeze(Freeze), nemesis "freeze";
    /// Undo a freeze.
    unfreeze => Unfreeze(Unfreeze);
    /// Stop running the node: no handlers, timers wait, inbound messages wait.
    pause => Pause(Pause), nemesis "pause";
    /// Undo a pause: what waited runs now, in order.
    resume => Resume(Resume);
    /// Lose the node's volatile state; it stays down until restarted.
    crash => Crash(Crash), nemesis "crash";
    /// Boot a crashed node from what it persisted.
    restart => Restart(Restart);
    /// Step the node's clock by a signed amount.
    clock_jump => ClockJump(ClockJump), nemesis "clock-jump";
    /// Change the node's clock drift (or put the scenario's back).
    clock_drift => ClockDrift(ClockDrift), nemesis "clock-drift";
    /// An operator's command to one node (the demo's scripts, membership changes).
    operator => Operator(OperatorCommand);
    /// Change how links behave from now on (all, one link, one node's), or back to base.
    network => Network(NetworkFault), nemesis "network";
    /// A limping node: its messages and timers take k times longer.
    slow => Slow(Slow), nemesis "slow";
    /// Undo a slow.
    unslow => Unslow(Unslow);
    /// A storage fault: crashes lose or tear unsynced writes, or a record is corrupted now.
    disk => Disk(DiskFault), nemesis "disk";
    /// A node outside the cluster starts and joins it.
    join => Join(Join), nemesis "membership";
    /// A member leaves gracefully (decommission), then stops for good.
    leave => Leave(Leave);
    /// A member goes down for good; the others are told.
    remove => Remove(Remove);
}

impl NemesisKind {
    /// The kind as scenarios spell it (`clock-jump`).
    pub fn name(self) -> &'static str {
        self.entry().1
    }

    /// Draws one fault of this kind and the action that undoes it.
    pub(crate) fn draw(self, d: &mut Draw<'_>) -> (Fault, Fault) {
        (self.entry().2)(d)
    }

    fn entry(self) -> &'static NemesisEntry {
        let entry = NEMESIS_KINDS.iter().find(|(kind, ..)| *kind == self);
        entry.expect("every nemesis kind is in the table")
    }
}

/// A nemesis kind, its name, and its draw.
type NemesisEntry = (
    NemesisKind,
    &'static str,
    fn(&mut Draw<'_>) -> (Fault, Fault),
);
