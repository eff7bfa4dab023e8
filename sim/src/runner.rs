//! Runs a scenario with the protocol it names, then checks and reports.

use crate::checks::{self, FinalReplica, Measured, RunView};
use crate::engine::{AppliedFault, Engine, Record, Recording, RunOutput, Side};
use crate::history::{History, Outcome};
use crate::report::{
    FaultLine, LatencyMs, Measures, Messages, NodeLine, OpCounts, ProtocolCounter, RunReport,
    RunVerdict, SideCounts,
};
use crate::scenario::{Fault, Scenario, ScheduledFault};
use crate::trace::Trace;
use simkv_protocols::{Combine, Counter, Key, NodeId, Protocol, ProtocolVisitor, Value};
use std::collections::BTreeMap;

/// How to run.
#[derive(Default)]
pub struct RunOptions {
    /// Where to write the trace, if anywhere.
    pub trace: Option<Trace>,
    /// The command that replays this run, for the report.
    pub replay: String,
    /// Record checkpoints and per-event records (for a replay file); off by default, and the
    /// run is the same either way.
    pub record: Option<Record>,
    /// Sample the keys the replicas disagree on at this interval ([`RunResult::divergence`]);
    /// the run is the same either way.
    pub sample_divergence: Option<simkv_protocols::Span>,
}

impl RunOptions {
    /// Options that record the run, for [`crate::replay::ReplayFile::of_result`].
    pub fn recorded() -> RunOptions {
        RunOptions {
            record: Some(Record::default()),
            ..RunOptions::default()
        }
    }
}

/// A finished run.
#[derive(Debug)]
pub struct RunResult {
    /// What to print.
    pub report: RunReport,
    /// The clients' history.
    pub history: History,
    /// Each node's final store (`None`: crashed), for `--dump`.
    pub stores: Vec<(NodeId, Option<BTreeMap<Key, Value>>)>,
    /// The trace could not be written completely, if so, why.
    pub trace_error: Option<String>,
    /// The run's recording, if [`RunOptions::record`] asked for one.
    pub recording: Option<Recording>,
    /// The scenario's faults as they fired, targets resolved ([`RunOutput::fired`]).
    pub fired: Vec<ScheduledFault>,
    /// The side of each history event's operation (aligned with `history.events`).
    pub sides: Vec<Side>,
    /// At each moment the cluster was made whole: keys the replicas disagreed on.
    pub conflicts_at_heal: Vec<(simkv_protocols::Time, usize)>,
    /// Keys the running replicas disagreed on at each sampling instant, when
    /// [`RunOptions::sample_divergence`] asked; empty otherwise.
    pub divergence: Vec<(simkv_protocols::Time, usize)>,
}

/// Runs `scenario` with the protocol it names (validated by the loader).
pub fn run(scenario: &Scenario, options: RunOptions) -> RunResult {
    struct Run<'a>(&'a Scenario, RunOptions);
    impl ProtocolVisitor for Run<'_> {
        type Output = RunResult;
        fn visit<P: Protocol>(self) -> RunResult {
            run_with::<P>(self.0, self.1)
        }
    }
    scenario.cluster.protocol.visit(Run(scenario, options))
}

/// What a node whose log a `corrupt` or `misdirect` fault damaged says it lost for good
/// ([`Protocol::liveness_forfeit`]): the first such node's reason, named.
fn liveness_forfeit<P: Protocol>(output: &crate::engine::RunOutput<P>) -> Option<String> {
    let claims = output.nodes.iter().enumerate().map(|(i, state)| {
        let node = simkv_protocols::NodeId(i as u16);
        (node, state.as_ref().and_then(P::liveness_forfeit))
    });
    honoured_forfeit(claims, &output.fired)
}

/// The first of `claims` made by a node whose disk a fired `corrupt` or `misdirect` fault
/// damaged, as "n4 {why}"; a claim from any other node changes nothing.
fn honoured_forfeit(
    claims: impl IntoIterator<Item = (simkv_protocols::NodeId, Option<String>)>,
    fired: &[crate::scenario::ScheduledFault],
) -> Option<String> {
    use crate::scenario::fault_kinds::{DiskFaultKind, Fault};
    let damaged = |node: simkv_protocols::NodeId| {
        fired.iter().any(|f| {
            matches!(&f.fault, Fault::Disk(d) if d.node == node
                && matches!(d.fault, DiskFaultKind::Corrupt | DiskFaultKind::Misdirect))
        })
    };
    claims.into_iter().find_map(|(node, why)| {
        let why = why?;
        damaged(node).then(|| format!("{node} {why}"))
    })
}

/// Runs `scenario` with protocol `P`.
pub fn run_with<P: Protocol>(scenario: &Scenario, options: RunOptions) -> RunResult {
    // Wall time is measured for the report's speed line only; it never reaches the run.
    let started = std::time::Instant::now();
    let mut engine = Engine::<P>::new(scenario, options.trace);
    if let Some(record) = options.record {
        engine = engine.record(record);
    }
    if let Some(every) = options.sample_divergence {
        engine = engine.sample_divergence(every);
    }
    let output = engine.run();
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
    let checks_started = std::time::Instant::now();
    let replicas = FinalReplica::all(&output);
    let info = P::info();
    let mut promises = P::promises(&scenario.cluster.params);
    let timing = simkv_protocols::Timing {
        slowest_link: scenario.network.slowest_link(),
        client_link: scenario.network.client.latency.mean(),
        client_timeout: scenario.workload.timeout,
    };
    let premise = P::liveness_premise(&scenario.cluster.params, &timing)
        .err()
        .or_else(|| liveness_forfeit(&output));
    if premise.is_some() {
        promises.retain(|p| *p != simkv_protocols::Promise::LiveAfterHeal);
    }
    let (mut checks, measured) =
        checks::judge_all(&RunView::new(scenario, &output, &replicas), &promises);
    if let Some(why) = premise {
        for check in checks
            .iter_mut()
            .filter(|c| c.name == checks::CheckName::Liveness)
        {
            check.detail = format!("not promised here: {why}\n{}", check.detail);
        }
    }
    let checks_wall_ms = checks_started.elapsed().as_secs_f64() * 1000.0;
    let ops = op_counts(&output.history, output.stats.shed);
    let measures = measures(&output, measured, ops.invoked);
    let report = RunReport {
        scenario: scenario.name.clone(),
        source: scenario.source.clone(),
        description: scenario.description.clone(),
        protocol: info.name.to_string(),
        promises: promises.iter().map(|p| p.name().to_string()).collect(),
        bugs: scenario
            .cluster
            .bugs
            .iter()
            .map(|b| b.to_string())
            .collect(),
        swarm: scenario.swarm.clone(),
        nodes_count: scenario.cluster.nodes,
        clients: scenario.workload.clients,
        seed: scenario.seed,
        fingerprint: format!("{:016x}", output.fingerprint),
        virtual_time_ms: output.end.as_micros() as f64 / 1000.0,
        events: output.stats.events,
        wall_ms,
        checks_wall_ms,
        availability: availability(&ops),
        ops,
        latency_ms: latency(&output.history),
        messages: messages(&output),
        faults: fault_lines(&output),
        ignored: ignored_steps(scenario, &info),
        verdict: RunVerdict::from_checks(&checks),
        checks,
        nodes: node_lines(&replicas, &output),
        measures,
        replay: options.replay,
    };
    let stores = output
        .nodes
        .iter()
        .enumerate()
        .map(|(i, s)| (NodeId(i as u16), s.as_ref().map(P::store)))
        .collect();
    RunResult {
        report,
        history: output.history,
        stores,
        trace_error: output.trace_error,
        recording: output.recording,
        fired: output.fired,
        sides: output.sides,
        conflicts_at_heal: output.conflicts_at_heal,
        divergence: output.divergence,
    }
}

/// ok / invoked (0 when nothing was invoked).
fn availability(ops: &OpCounts) -> f64 {
    if ops.invoked == 0 {
        0.0
    } else {
        ops.ok as f64 / ops.invoked as f64
    }
}

fn messages<P: Protocol>(output: &RunOutput<P>) -> Messages {
    Messages {
        sent: output.stats.sent,
        delivered: output.stats.delivered,
        dropped: output.stats.dropped,
        duplicated: output.stats.duplicated,
    }
}

fn fault_lines<P: Protocol>(output: &RunOutput<P>) -> Vec<FaultLine> {
    let line = |f: &AppliedFault| FaultLine {
        at_ms: f.at.as_micros() as f64 / 1000.0,
        action: f.action.clone(),
        origin: f.origin.to_string(),
    };
    output.faults.iter().map(line).collect()
}

/// The scripted operator commands the protocol lacks, which the scenario let it ignore
/// (`unsupported = "ignore"`; the loader refuses the others): the node still receives each,
/// as before, and ignores it; the summary lists them so that the skip is not silent.
fn ignored_steps(scenario: &Scenario, info: &simkv_protocols::ProtocolInfo) -> Vec<FaultLine> {
    let lacking = |f: &&ScheduledFault| match &f.fault {
        Fault::Operator(o) => !info.operators.contains(&o.command.name()),
        _ => false,
    };
    let line = |f: &ScheduledFault| {
        let Fault::Operator(o) = &f.fault else {
            unreachable!("filtered to operator commands")
        };
        FaultLine {
            at_ms: f.at.as_micros() as f64 / 1000.0,
            action: format!(
                "operator {}: {} ({} has no `{}`)",
                o.node,
                o.command,
                info.name,
                o.command.name()
            ),
            origin: f.origin.to_string(),
        }
    };
    scenario.faults.iter().filter(lacking).map(line).collect()
}

/// The run's measures: the engine's, and those the checks counted.
fn measures<P: Protocol>(output: &RunOutput<P>, measured: Measured, invoked: u64) -> Measures {
    Measures {
        by_side: by_side(output),
        reads: measured.reads,
        stale_reads: measured.stale_reads,
        lost_acknowledged_writes: measured.lost_acknowledged_writes,
        diverged_keys_at_heal: output
            .conflicts_at_heal
            .iter()
            .map(|(_, n)| *n as u64)
            .max()
            .unwrap_or(0),
        converged_after_stop_ms: output.converged_after_stop.map(|s| s.as_millis_f64()),
        messages_per_op: output.stats.sent as f64 / invoked.max(1) as f64,
        sibling_reads: measured.sibling_reads,
        txn_anomalies: measured.txn_anomalies,
        protocol_counters: combine_counters(output.nodes.iter().flatten().map(P::counters)),
    }
}

fn node_lines<P: Protocol>(replicas: &[FinalReplica], output: &RunOutput<P>) -> Vec<NodeLine> {
    replicas
        .iter()
        .zip(&output.clock_skews_us)
        .enumerate()
        .map(|(i, (r, skew))| NodeLine {
            node: r.node.to_string(),
            state: if r.digest.is_some() {
                "running"
            } else if output.outside.get(i).copied().unwrap_or(false) {
                "outside" // never joined, or left or removed for good
            } else {
                "crashed"
            }
            .to_string(),
            digest: r.digest.map(|d| format!("{d:016x}")).unwrap_or_default(),
            keys: r.store.len(),
            clock_skew_us: *skew,
        })
        .collect()
}

/// Combines the nodes' counters, name by name, in the order they first appear.
fn combine_counters(nodes: impl Iterator<Item = Vec<Counter>>) -> Vec<ProtocolCounter> {
    let mut combined: Vec<(Counter, u64)> = Vec::new();
    for counters in nodes {
        for c in counters {
            match combined.iter_mut().find(|(x, _)| x.name == c.name) {
                Some((x, total)) => {
                    *total = match x.combine {
                        Combine::Sum => total.saturating_add(c.value),
                        Combine::Max => (*total).max(c.value),
                    }
                }
                None => combined.push((c, c.value)),
            }
        }
    }
    combined
        .into_iter()
        .map(|(c, value)| ProtocolCounter {
            name: c.name.to_string(),
            value,
        })
        .collect()
}

/// Invoked and ok operations by the side their node stood on when invoked.
fn by_side<P: Protocol>(output: &RunOutput<P>) -> BTreeMap<Side, SideCounts> {
    let mut counts: BTreeMap<Side, SideCounts> = BTreeMap::new();
    for (event, side) in output.history.events.iter().zip(&output.sides) {
        let entry = counts.entry(*side).or_default();
        match event.outcome {
            None => entry.invoked += 1,
            Some(Outcome::Ok(_)) => entry.ok += 1,
            Some(_) => {}
        }
    }
    counts
}

fn op_counts(history: &History, shed: u64) -> OpCounts {
    let mut counts = OpCounts {
        shed,
        ..OpCounts::default()
    };
    for e in &history.events {
        match &e.outcome {
            None => counts.invoked += 1,
            Some(Outcome::Ok(_)) => counts.ok += 1,
            Some(Outcome::Fail(_)) => counts.fail += 1,
            Some(Outcome::Info) => counts.info += 1,
        }
    }
    // Operations still in flight at the end are indeterminate too.
    counts.info += counts.invoked - counts.ok - counts.fail - counts.info;
    counts
}

fn latency(history: &History) -> LatencyMs {
    // Per client (ids are small and dense), when its operation in flight was invoked.
    let mut invoked: Vec<Option<u64>> = Vec::new();
    let mut samples: Vec<u64> = Vec::with_capacity(history.events.len() / 2);
    for e in &history.events {
        let client = e.client.0 as usize;
        if invoked.len() <= client {
            invoked.resize(client + 1, None);
        }
        let start = invoked[client].take();
        match (&e.outcome, start) {
            (None, _) => invoked[client] = Some(e.time.as_micros()),
            (Some(Outcome::Ok(_)), Some(start)) => samples.push(e.time.as_micros() - start),
            _ => {}
        }
    }
    if samples.is_empty() {
        return LatencyMs::default();
    }
    samples.sort_unstable();
    let at = |q: f64| {
        let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[i] as f64 / 1000.0
    };
    LatencyMs {
        p50: at(0.50),
        p99: at(0.99),
        max: at(1.0),
    }
}

#[cfg(test)]
mod forfeit_tests {
    use super::honoured_forfeit;
    use crate::scenario::fault_kinds::{DiskFault, DiskFaultKind};
    use crate::scenario::{FaultOrigin, ScheduledFault};
    use simkv_protocols::{NodeId, Time};

    fn disk(node: u16, fault: DiskFaultKind) -> ScheduledFault {
        let fault = DiskFault {
            node: NodeId(node),
            fault,
        };
        ScheduledFault::exactly(Time::ZERO, fault.into(), FaultOrigin::FinalHeal)
    }

    /// A forfeit is honoured only for a node whose log a corrupt or misdirected write
    /// damaged: a protocol cannot excuse itself from liveness on a healthy disk, nor on one
    /// that only lost unsynced writes (which every protocol here must survive).
    #[test]
    fn a_forfeit_counts_only_where_a_fault_damaged_that_nodes_log() {
        let claim = |node: u16| (NodeId(node), Some("lost it".to_string()));
        let silent = |node: u16| (NodeId(node), None);
        let corrupt_n2 = [disk(1, DiskFaultKind::Corrupt)];
        assert_eq!(
            honoured_forfeit([silent(0), claim(1)], &corrupt_n2),
            Some("n2 lost it".into())
        );
        assert_eq!(honoured_forfeit([claim(0), silent(1)], &corrupt_n2), None);
        assert_eq!(honoured_forfeit([claim(0)], &[]), None);
        let unsynced = [disk(0, DiskFaultKind::LoseUnsynced)];
        assert_eq!(honoured_forfeit([claim(0)], &unsynced), None);
        let misdirect = [disk(0, DiskFaultKind::Misdirect)];
        assert_eq!(
            honoured_forfeit([claim(0)], &misdirect),
            Some("n1 lost it".into())
        );
    }
}
