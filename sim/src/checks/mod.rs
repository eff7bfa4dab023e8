//! The checks a run makes once it has finished: one file per check, each judging one
//! property of the finished run ([`RunView`]) and saying which promise, if any, it judges.
//!
//! The runner goes down [`CHECKS`] in order; the report lists the results in that order. To
//! add a check, write its file (a `PROMISED` and a `judge`) and give it one line in the
//! `checks!` table below.
//!
//! The linearizability search these checks call on lives apart, in [`crate::lincheck`]: it
//! judges any history, simkv's or Jepsen's, and knows nothing of runs.

use crate::engine::{DeadDeclaration, RoleChange, RunOutput};
use crate::history::History;
use crate::scenario::{Scenario, StatedChecks};
use serde::Serialize;
use simkv_protocols::{Key, NodeId, Op, Promise, Protocol, Span, Time, Value};
use std::collections::BTreeMap;
use std::fmt;

mod intervals;
mod leaders;

/// Declares the checks, in the order they run and are reported: each line names the check's
/// variant of [`CheckName`] and its module (whose name is also the check's name in reports).
macro_rules! checks {
    ($($(#[$doc:meta])* $name:ident = $module:ident,)*) => {
        $(mod $module;)*

        /// A check's name, serialised as its module's name (`"durability"`, ...).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum CheckName {
            $($(#[$doc])* $name,)*
        }

        impl CheckName {
            /// The name as reports spell it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(CheckName::$name => stringify!($module),)*
                }
            }
        }

        /// Every check, in the order the runner makes them.
        pub const CHECKS: &[Check] = &[
            $(Check {
                name: CheckName::$name,
                promised: $module::PROMISED,
                judge: $module::judge,
            },)*
        ];
    };
}

checks! {
    /// The protocol's own invariants held after every handler.
    Invariants = invariants,
    /// The run ended within its event limit.
    Limits = limits,
    /// Every running replica ends with the same state.
    Convergence = convergence,
    /// No acknowledged write was lost.
    Durability = durability,
    /// With contexts: no acknowledged put superseded by a write whose context did not cover
    /// it.
    Contexts = contexts,
    /// The history is linearizable (strictly serializable where txns join keys).
    Linearizability = linearizability,
    /// No read returned a value a linearizable store could not have returned.
    Staleness = staleness,
    /// Every operation some time after the last heal succeeded.
    Liveness = liveness,
    /// Stated: protocol messages per completed operation stayed within the bound.
    MessagesPerOp = messages_per_op,
    /// Stated: some node led, in the newest term, within the bound after the last heal.
    LeaderWithin = leader_within,
    /// Stated: never two leaders in one term, and one at most at a time once calm.
    OneLeader = one_leader,
    /// Stated: no member declared dead while the cluster was calm over all the evidence.
    FalseDeaths = false_deaths,
}

/// A check is spelt as its module is named, in reports as in `--json`.
impl Serialize for CheckName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Display for CheckName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so that a report can align names with `{:<16}`.
        f.pad(self.as_str())
    }
}

/// Whether a check's failure breaks the run.
#[derive(Clone, Copy, Debug)]
pub enum Promised {
    /// Always: every protocol must keep it (its invariants, the event limit).
    Always,
    /// When the protocol makes this promise; otherwise the check only measures.
    If(Promise),
    /// When the scenario states it (`[checks] one_leader = true`): a promise the scenario
    /// makes for the protocol, judged only then; a scenario that does not state it never
    /// sees the check, not even in its report.
    Stated(fn(&StatedChecks) -> bool),
    /// In a workload with causal contexts (`workload.contexts`), when the protocol makes this
    /// promise: a run without contexts never sees the check, not even in its report.
    WithContexts(Promise),
}

impl Promised {
    /// Whether a protocol that makes `promises` promises this check (a stated check is
    /// promised whenever it is made at all).
    pub fn by(self, promises: &[Promise]) -> bool {
        match self {
            Promised::Always | Promised::Stated(_) => true,
            Promised::If(p) | Promised::WithContexts(p) => promises.contains(&p),
        }
    }

    /// Whether the check is made on a run of `scenario`: every check but a stated one the
    /// scenario does not state.
    pub fn made_for(self, scenario: &Scenario) -> bool {
        match self {
            Promised::Stated(stated) => stated(&scenario.checks.stated),
            Promised::WithContexts(_) => scenario.workload.contexts,
            _ => true,
        }
    }
}

/// One run check: its name, what it judges, and how.
#[derive(Clone, Copy, Debug)]
pub struct Check {
    /// Its name.
    pub name: CheckName,
    /// Whether its failure breaks the run.
    pub promised: Promised,
    /// Judges the finished run.
    pub judge: fn(&RunView) -> Judgement,
}

/// A check's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// It held.
    Pass,
    /// It was broken.
    Fail,
    /// It could not be decided within its budget.
    Unknown,
    /// There was nothing to judge (the detail says why).
    Skipped,
}

/// What a check found: its verdict, in words, and what it measured on the way.
#[derive(Clone, Debug, PartialEq)]
pub struct Judgement {
    /// The verdict.
    pub verdict: Verdict,
    /// What was found, in a sentence or a few lines.
    pub detail: String,
    /// The numbers it contributes to the report's measures.
    pub measured: Measured,
}

impl Judgement {
    /// A judgement that measures nothing.
    pub fn new(verdict: Verdict, detail: impl Into<String>) -> Judgement {
        Judgement {
            verdict,
            detail: detail.into(),
            measured: Measured::default(),
        }
    }
}

/// The report's measures that checks count (each counted by one check, zero elsewhere).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Measured {
    /// Acknowledged writes found lost (durability).
    pub lost_acknowledged_writes: u64,
    /// Completed reads (staleness).
    pub reads: u64,
    /// Reads a linearizable store could not have returned (staleness).
    pub stale_reads: u64,
    /// Gets answered with concurrent versions (staleness).
    pub sibling_reads: u64,
    /// What Elle's checker saw in the run's transactions (linearizability), when it had
    /// transactions it could read.
    pub txn_anomalies: Option<TxnAnomalies>,
}

/// Elle's finding on a run's transactions: how many it read and the anomalies it named.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TxnAnomalies {
    /// Transactions read (single-key operations count as one-operation transactions).
    pub txns: u64,
    /// Anomalies found, each as `name xcount` (`G2-item x3`), in Elle's order; empty when
    /// it found none.
    pub anomalies: Vec<String>,
}

impl Measured {
    /// Both counts, field by field.
    pub fn plus(self, other: Measured) -> Measured {
        Measured {
            lost_acknowledged_writes: self.lost_acknowledged_writes
                + other.lost_acknowledged_writes,
            reads: self.reads + other.reads,
            stale_reads: self.stale_reads + other.stale_reads,
            sibling_reads: self.sibling_reads + other.sibling_reads,
            txn_anomalies: self.txn_anomalies.or(other.txn_anomalies),
        }
    }
}

/// One check's result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckResult {
    /// Which check.
    pub name: CheckName,
    /// Whether the protocol promises it (a broken promise fails the run; the rest is
    /// measured and reported).
    pub promised: bool,
    /// The verdict.
    pub verdict: Verdict,
    /// What was found, in a sentence or a few lines.
    pub detail: String,
}

/// A node's final replica, as the checks see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinalReplica {
    /// Whose.
    pub node: NodeId,
    /// Its digest, or `None` if the node ended crashed.
    pub digest: Option<u64>,
    /// Its store (empty if crashed).
    pub store: BTreeMap<Key, Value>,
    /// The keys it holds concurrent versions of, with all of them (see
    /// [`simkv_protocols::Protocol::siblings`]); these override `store`'s one value.
    pub siblings: BTreeMap<Key, Vec<Option<Value>>>,
    /// The keys of the run (written by a client or held by a node) that this node does not
    /// replicate ([`simkv_protocols::Protocol::replicates`]: a ring partitions the keys);
    /// the checks judge its store only on the others. Empty when it replicates every key.
    pub foreign: std::collections::BTreeSet<Key>,
}

impl FinalReplica {
    /// Every node's final replica in a run's output.
    pub fn all<P: Protocol>(output: &RunOutput<P>) -> Vec<FinalReplica> {
        let replica = |(i, state): (usize, &Option<P>)| FinalReplica {
            node: NodeId(i as u16),
            digest: state.as_ref().map(P::digest),
            store: state.as_ref().map(P::store).unwrap_or_default(),
            siblings: state.as_ref().map(P::siblings).unwrap_or_default(),
            foreign: std::collections::BTreeSet::new(),
        };
        let mut all: Vec<FinalReplica> = output.nodes.iter().enumerate().map(replica).collect();
        // Every key an operation touched. A completion repeats its invocation's operation
        // (the engine shares it), so invocations name them all.
        let mut keys: std::collections::BTreeSet<Key> = std::collections::BTreeSet::new();
        for e in output.history.events.iter().filter(|e| e.outcome.is_none()) {
            match &*e.op {
                Op::Txn { .. } => keys.extend(e.op.keys()),
                single => {
                    keys.insert(single.key());
                }
            }
        }
        for r in &all {
            keys.extend(r.store.keys().chain(r.siblings.keys()).copied());
        }
        for (r, state) in all.iter_mut().zip(&output.nodes) {
            if let Some(state) = state {
                r.foreign = keys
                    .iter()
                    .copied()
                    .filter(|k| !state.replicates(*k))
                    .collect();
            }
        }
        all
    }
}

/// A finished run, as the checks read it.
#[derive(Clone, Copy, Debug)]
pub struct RunView<'a> {
    /// The scenario run (its limits and its liveness window).
    pub scenario: &'a Scenario,
    /// The clients' history.
    pub history: &'a History,
    /// Each node's final replica.
    pub replicas: &'a [FinalReplica],
    /// The first broken invariant, with the time it broke.
    pub invariant_violation: Option<&'a (Time, String)>,
    /// Whether the run stopped at its event limit.
    pub hit_event_limit: bool,
    /// Events processed.
    pub events: u64,
    /// How long after the clients stopped every running replica first agreed.
    pub converged_after_stop: Option<Span>,
    /// When the cluster was last made whole, if it was whole at the end.
    pub healed_at: Option<Time>,
    /// When clients stopped issuing operations.
    pub workload_stopped: Time,
    /// True virtual time at the end.
    pub end: Time,
    /// Node-to-node messages the protocol sent (whether or not they arrived).
    pub messages_sent: u64,
    /// Every change of a node's role or term, in time order (sampled when a stated
    /// leadership check needs them).
    pub roles: &'a [RoleChange],
    /// The calm stretches `[from, until)`: the cluster whole, no fault since `from`.
    pub calm: &'a [(Time, Time)],
    /// Every member a failure detector declared dead, in time order.
    pub declared_dead: &'a [DeadDeclaration],
}

impl<'a> RunView<'a> {
    /// The view of `output`, a run of `scenario` whose final replicas are `replicas`.
    pub fn new<P: Protocol>(
        scenario: &'a Scenario,
        output: &'a RunOutput<P>,
        replicas: &'a [FinalReplica],
    ) -> RunView<'a> {
        RunView {
            scenario,
            history: &output.history,
            replicas,
            invariant_violation: output.invariant_violation.as_ref(),
            hit_event_limit: output.hit_event_limit,
            events: output.stats.events,
            converged_after_stop: output.converged_after_stop,
            healed_at: output.healed_at,
            workload_stopped: output.workload_stopped,
            end: output.end,
            messages_sent: output.stats.sent,
            roles: &output.roles,
            calm: &output.calm,
            declared_dead: &output.declared_dead,
        }
    }
}

/// Makes every check of [`CHECKS`] on `run`, for a protocol that makes `promises`: the
/// results in table order, and what they measured together.
pub fn judge_all(run: &RunView, promises: &[Promise]) -> (Vec<CheckResult>, Measured) {
    let mut measured = Measured::default();
    let results = CHECKS
        .iter()
        .filter(|check| check.promised.made_for(run.scenario))
        .map(|check| {
            let found = (check.judge)(run);
            measured = std::mem::take(&mut measured).plus(found.measured);
            CheckResult {
                name: check.name,
                promised: check.promised.by(promises),
                verdict: found.verdict,
                detail: found.detail,
            }
        })
        .collect();
    (results, measured)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reports, `--json` and the summary all spell a check by its module's name.
    #[test]
    fn check_names_serialise_as_their_modules() {
        let names: Vec<String> = CHECKS.iter().map(|c| c.name.to_string()).collect();
        let expected = [
            "invariants",
            "limits",
            "convergence",
            "durability",
            "contexts",
            "linearizability",
            "staleness",
            "liveness",
            "messages_per_op",
            "leader_within",
            "one_leader",
            "false_deaths",
        ];
        assert_eq!(names, expected);
        for check in CHECKS {
            let json = serde_json::to_string(&check.name).unwrap();
            assert_eq!(json, format!("\"{}\"", check.name.as_str()));
        }
    }
}
