//! Runs a scenario with the protocol it names, then checks and reports.

use crate::check::{self, Budget};
use crate::checks::{self, CheckResult, FinalReplica, Verdict};
use crate::engine::{Engine, RunOutput};
use crate::history::{History, Outcome};
use crate::report::{
    FaultLine, LatencyMs, Measures, Messages, NodeLine, OpCounts, ProtocolCounter, RunReport,
    RunVerdict, SideCounts,
};
use crate::scenario::Scenario;
use crate::trace::Trace;
use crate::workload::Side;
use simkv_protocols::{
    primary::Primary, Combine, Counter, Key, NodeId, OpResult, Promise, Protocol, Value,
};
use std::collections::BTreeMap;

/// How to run.
#[derive(Default)]
pub struct RunOptions {
    /// Where to write the trace, if anywhere.
    pub trace: Option<Trace>,
    /// The command that replays this run, for the report.
    pub replay: String,
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
}

/// Runs `scenario` with the protocol it names (validated by the loader).
pub fn run(scenario: &Scenario, options: RunOptions) -> RunResult {
    match scenario.cluster.protocol.as_str() {
        "primary" => run_with::<Primary>(scenario, options),
        "twopc" => run_with::<simkv_protocols::twopc::TwoPc>(scenario, options),
        "raft" => run_with::<simkv_protocols::raft::Raft>(scenario, options),
        "majority" => run_with::<simkv_protocols::majority::Majority>(scenario, options),
        "sloppy" => run_with::<simkv_protocols::sloppy::Sloppy>(scenario, options),
        other => unreachable!("the loader accepts only registered protocols, not {other}"),
    }
}

/// Runs `scenario` with protocol `P`.
pub fn run_with<P: Protocol>(scenario: &Scenario, options: RunOptions) -> RunResult {
    // Wall time is measured for the report's speed line only; it never reaches the run.
    let started = std::time::Instant::now();
    let output = Engine::<P>::new(scenario, options.trace).run();
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
    let replicas: Vec<FinalReplica> = output
        .nodes
        .iter()
        .enumerate()
        .map(|(i, state)| FinalReplica {
            node: NodeId(i as u16),
            digest: state.as_ref().map(P::digest),
            store: state.as_ref().map(P::store).unwrap_or_default(),
            siblings: state.as_ref().map(P::siblings).unwrap_or_default(),
        })
        .collect();
    let mut measures = Measures::default();
    let checks = run_checks::<P>(scenario, &output, &replicas, &mut measures);
    measures.by_side = by_side(&output);
    measures.diverged_keys_at_heal = output
        .conflicts_at_heal
        .iter()
        .map(|(_, n)| *n as u64)
        .max()
        .unwrap_or(0);
    measures.converged_after_stop_ms = output.converged_after_stop.map(|s| s.as_millis_f64());
    measures.protocol_counters = combine_counters(output.nodes.iter().flatten().map(P::counters));
    let verdict = RunVerdict::from_checks(&checks);
    let info = P::info();
    let report = RunReport {
        scenario: scenario.name.clone(),
        source: scenario.source.clone(),
        description: scenario.description.clone(),
        protocol: info.name.to_string(),
        promises: info.promises.iter().map(|p| p.name().to_string()).collect(),
        bugs: scenario
            .cluster
            .bugs
            .iter()
            .map(|b| b.to_string())
            .collect(),
        nodes_count: scenario.cluster.nodes,
        clients: scenario.workload.clients,
        seed: scenario.seed,
        fingerprint: format!("{:016x}", output.fingerprint),
        virtual_time_ms: output.end.as_micros() as f64 / 1000.0,
        events: output.stats.events,
        wall_ms,
        ops: op_counts(&output.history, output.stats.shed),
        availability: 0.0,
        latency_ms: latency(&output.history),
        messages: Messages {
            sent: output.stats.sent,
            delivered: output.stats.delivered,
            dropped: output.stats.dropped,
            duplicated: output.stats.duplicated,
        },
        faults: output
            .faults
            .iter()
            .map(|f| FaultLine {
                at_ms: f.at.as_micros() as f64 / 1000.0,
                action: f.action.clone(),
                origin: f.origin.to_string(),
            })
            .collect(),
        checks,
        nodes: node_lines(&replicas, &output),
        measures,
        verdict,
        replay: options.replay,
    };
    let mut report = report;
    report.measures.messages_per_op =
        report.messages.sent as f64 / report.ops.invoked.max(1) as f64;
    report.availability = if report.ops.invoked == 0 {
        0.0
    } else {
        report.ops.ok as f64 / report.ops.invoked as f64
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
    }
}

fn node_lines<P: Protocol>(replicas: &[FinalReplica], output: &RunOutput<P>) -> Vec<NodeLine> {
    replicas
        .iter()
        .zip(&output.clock_skews_us)
        .map(|(r, skew)| NodeLine {
            node: r.node.to_string(),
            state: if r.digest.is_some() {
                "running"
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

fn run_checks<P: Protocol>(
    scenario: &Scenario,
    output: &RunOutput<P>,
    replicas: &[FinalReplica],
    measures: &mut Measures,
) -> Vec<CheckResult> {
    let promises = P::info().promises;
    let promised = |p: Promise| promises.contains(&p);
    let mut checks = Vec::new();
    let mut push = |name: &str, promised: bool, (verdict, detail): (Verdict, String)| {
        checks.push(CheckResult {
            name: name.into(),
            promised,
            verdict,
            detail,
        });
    };
    let invariants = match &output.invariant_violation {
        Some((at, what)) => (Verdict::Fail, format!("broken at {at}: {what}")),
        None => (Verdict::Pass, "held after every handler".into()),
    };
    push("invariants", true, invariants);
    let limits = if output.hit_event_limit {
        let limit = scenario.max_events;
        (
            Verdict::Fail,
            format!(
                "stopped at the event limit ({limit} processed, or {} queued at once) before \
                 the scenario ended",
                crate::engine::MAX_QUEUED_EVENTS
            ),
        )
    } else {
        (
            Verdict::Pass,
            format!(
                "{} events, within the limit of {}",
                output.stats.events, scenario.max_events
            ),
        )
    };
    push("limits", true, limits);
    let (verdict, mut detail) = checks::convergence(replicas);
    if let Some(after) = output.converged_after_stop {
        detail.push_str(&format!("; converged {after} after clients stopped"));
    }
    push(
        "convergence",
        promised(Promise::Convergent),
        (verdict, detail),
    );
    let (verdict, detail, lost) = checks::durability(&output.history, replicas);
    measures.lost_acknowledged_writes = lost as u64;
    push(
        "durability",
        promised(Promise::DurableAcknowledgedWrites),
        (verdict, detail),
    );
    push(
        "linearizability",
        promised(Promise::Linearizable),
        linearizability(&output.history),
    );
    push(
        "staleness",
        promised(Promise::Linearizable),
        staleness(&output.history, measures),
    );
    let liveness = checks::liveness(
        &output.history,
        output.healed_at,
        scenario.checks.liveness,
        output.workload_stopped,
    );
    push("liveness", promised(Promise::LiveAfterHeal), liveness);
    checks
}

/// The most lines of a counterexample a run's summary prints.
const MAX_DETAIL_LINES: usize = 24;

/// The budget of a check inside a run: steps and memory only, never wall time, so that a
/// run's verdict cannot depend on the machine.
pub fn run_budget() -> Budget {
    Budget {
        deadline: None,
        max_steps: 1 << 26,
        max_memo_entries: 1 << 20,
        max_value_bytes: 256 << 20,
    }
}

fn linearizability(history: &History) -> (Verdict, String) {
    let outcome = check::check_simkv_history(history, &run_budget());
    let keys = outcome.keys.len();
    let joined = outcome.keys.iter().filter(|k| k.key.contains('+')).count();
    match outcome.verdict {
        check::Verdict::Linearizable if joined > 0 => (
            Verdict::Pass,
            format!(
                "{} operations over {keys} partitions ({joined} of keys joined by txns: \
                 strictly serializable)",
                outcome.ops
            ),
        ),
        check::Verdict::Linearizable => (
            Verdict::Pass,
            format!("{} operations over {keys} keys", outcome.ops),
        ),
        check::Verdict::NotLinearizable(counterexample) => {
            let text = counterexample.render();
            let lines: Vec<&str> = text.trim_end().lines().collect();
            let mut detail = lines[..lines.len().min(MAX_DETAIL_LINES)].join("\n");
            if lines.len() > MAX_DETAIL_LINES {
                detail.push_str(&format!(
                    "\n... {} more operations: write the run's --history and draw it with \
                     simkv check --explain",
                    lines.len() - MAX_DETAIL_LINES
                ));
            }
            (Verdict::Fail, detail)
        }
        check::Verdict::Unknown(why) => (Verdict::Unknown, why),
    }
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

fn staleness(history: &History, measures: &mut Measures) -> (Verdict, String) {
    let s = check::staleness::staleness(history);
    measures.reads = s.reads;
    measures.sibling_reads = history
        .events
        .iter()
        .filter(|e| matches!(e.outcome, Some(Outcome::Ok(OpResult::Siblings { .. }))))
        .count() as u64;
    measures.stale_reads = s.stale_reads;
    if s.stale_reads == 0 && s.unexplained_reads == 0 {
        return (
            Verdict::Pass,
            format!("none of {} reads was stale", s.reads),
        );
    }
    let (w, t) = (&s.writes_behind, &s.stale_ms);
    let mut detail = format!(
        "{} of {} reads stale: writes behind p50 {} p99 {} max {}; stale for p50 {:.1}ms \
         p99 {:.1}ms max {:.1}ms",
        s.stale_reads, s.reads, w.p50, w.p99, w.max, t.p50, t.p99, t.max
    );
    if s.unexplained_reads > 0 {
        detail.push_str(&format!(
            "; {} reads of values never written",
            s.unexplained_reads
        ));
    }
    (Verdict::Fail, detail)
}

/// Invoked and ok operations by the side their node stood on when invoked.
fn by_side<P: Protocol>(output: &RunOutput<P>) -> BTreeMap<String, SideCounts> {
    let mut counts: BTreeMap<Side, SideCounts> = BTreeMap::new();
    for (event, side) in output.history.events.iter().zip(&output.sides) {
        let entry = counts.entry(*side).or_default();
        match event.outcome {
            None => entry.invoked += 1,
            Some(Outcome::Ok(_)) => entry.ok += 1,
            Some(_) => {}
        }
    }
    // Named once per side, not per event: formatting was a twentieth of a large run.
    counts
        .into_iter()
        .map(|(side, c)| (format!("{side:?}").to_lowercase(), c))
        .collect()
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
