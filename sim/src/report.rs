//! What a run reports: the numbers, the checks, the verdict, and how to replay it.

use crate::checks::{CheckResult, Verdict};
use crate::engine::Side;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Operation counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OpCounts {
    /// Invocations.
    pub invoked: u64,
    /// Completed `ok`.
    pub ok: u64,
    /// Completed `fail` (definitely not applied).
    pub fail: u64,
    /// Completed `info` (timed out) or never completed.
    pub info: u64,
    /// Open-loop arrivals shed because every client was busy.
    pub shed: u64,
}

/// Latency of successful operations, milliseconds of virtual time.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LatencyMs {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest.
    pub max: f64,
}

/// Node-to-node message counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Messages {
    /// Handed to the network.
    pub sent: u64,
    /// Delivered to a running node.
    pub delivered: u64,
    /// Lost to drops, partitions, freezes and crashes.
    pub dropped: u64,
    /// Extra copies delivered.
    pub duplicated: u64,
}

/// A fault as the run applied it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FaultLine {
    /// Virtual time, milliseconds.
    pub at_ms: f64,
    /// What happened.
    pub action: String,
    /// Where it came from.
    pub origin: String,
}

/// A node at the end of the run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeLine {
    /// `n1`, ...
    pub node: String,
    /// `running` or `crashed`.
    pub state: String,
    /// Replica digest, 16 hex digits (empty when crashed).
    pub digest: String,
    /// Keys in its store.
    pub keys: usize,
    /// Its clock's offset from true time at the end, microseconds.
    pub clock_skew_us: i64,
}

/// Operations invoked and succeeded on one side of a partition.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SideCounts {
    /// Invoked.
    pub invoked: u64,
    /// Completed ok.
    pub ok: u64,
}

/// A check's status word in the text report. A promised check passes or fails; a measured
/// check (a promise the protocol does not make) only says whether it saw a violation, so a
/// reader never takes a measurement for a failure.
fn check_status(promised: bool, verdict: Verdict) -> &'static str {
    match (promised, verdict) {
        (true, Verdict::Pass) => "pass",
        (true, Verdict::Fail) => "fail",
        (_, Verdict::Unknown) => "unknown",
        (false, Verdict::Pass) => "clean",
        (false, Verdict::Fail) => "seen",
        (_, Verdict::Skipped) => "skipped",
    }
}

/// What a run measured beyond its verdicts: the CAP table's numbers.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Measures {
    /// Operations by where their node stood when invoked: `whole` (no fault), `majority`,
    /// `minority` (of a partition), `down` (frozen, paused or crashed).
    pub by_side: BTreeMap<Side, SideCounts>,
    /// Completed reads.
    pub reads: u64,
    /// Reads a linearizable store could not have returned.
    pub stale_reads: u64,
    /// Acknowledged writes found lost at the end (see the durability check).
    pub lost_acknowledged_writes: u64,
    /// The most keys the replicas disagreed on at a moment the cluster was made whole.
    pub diverged_keys_at_heal: u64,
    /// How long after clients stopped the replicas first agreed, milliseconds.
    pub converged_after_stop_ms: Option<f64>,
    /// Node-to-node messages per invoked operation.
    pub messages_per_op: f64,
    /// Gets answered with concurrent versions (siblings, Dynamo section 4.4) for the client
    /// to reconcile; 0 for protocols that keep one value per key.
    pub sibling_reads: u64,
    /// What Elle's checker saw in the run's transactions, when there were any it could read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub txn_anomalies: Option<crate::checks::TxnAnomalies>,
    /// What the protocol counted about itself, over the nodes running at the end
    /// ([`simkv_protocols::Protocol::counters`]), in the protocol's order.
    pub protocol_counters: Vec<ProtocolCounter>,
}

/// One of [`Measures::protocol_counters`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ProtocolCounter {
    /// What it counts.
    pub name: String,
    /// The cluster's count.
    pub value: u64,
}

/// The run's overall verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunVerdict {
    /// Every promise was kept: exit 0.
    Kept,
    /// A promise was broken: exit 1.
    Broken,
    /// A promised check ran out of budget: exit 3.
    Unknown,
}

/// Everything `simkv run` prints, as data (`--json` prints it as is).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunReport {
    /// Scenario name.
    pub scenario: String,
    /// Scenario file.
    pub source: String,
    /// Scenario description.
    pub description: String,
    /// Protocol run.
    pub protocol: String,
    /// What it promises.
    pub promises: Vec<String>,
    /// Planted bugs switched on.
    pub bugs: Vec<String>,
    /// What the scenario's `[swarm]` drew for this seed, as `--set` entries.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub swarm: Vec<String>,
    /// Nodes in the cluster.
    pub nodes_count: u16,
    /// Clients.
    pub clients: u32,
    /// The seed.
    pub seed: u64,
    /// The run's fingerprint, 16 hex digits.
    pub fingerprint: String,
    /// Virtual time simulated, milliseconds.
    pub virtual_time_ms: f64,
    /// Events processed.
    pub events: u64,
    /// Wall-clock time of the simulation, milliseconds (non-deterministic, as is the next).
    pub wall_ms: f64,
    /// Wall-clock time of the post-run checks, milliseconds (the report's own figures are
    /// not in it).
    pub checks_wall_ms: f64,
    /// Operation counts.
    pub ops: OpCounts,
    /// ok / invoked.
    pub availability: f64,
    /// Latency of ok operations.
    pub latency_ms: LatencyMs,
    /// Message counts.
    pub messages: Messages,
    /// Faults applied.
    pub faults: Vec<FaultLine>,
    /// Scripted steps the protocol lacks and the scenario let it ignore (an operator command
    /// with `unsupported = "ignore"`), at their scheduled times.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<FaultLine>,
    /// Checks.
    pub checks: Vec<CheckResult>,
    /// Final state per node.
    pub nodes: Vec<NodeLine>,
    /// What the run measured.
    pub measures: Measures,
    /// Overall verdict.
    pub verdict: RunVerdict,
    /// The command that replays this run exactly.
    pub replay: String,
}

impl RunReport {
    /// The promised checks that did not pass (failed or unknown), by name, in check order.
    pub fn failed_promises(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| c.promised && matches!(c.verdict, Verdict::Fail | Verdict::Unknown))
            .map(|c| c.name.as_str().to_string())
            .collect()
    }
}

impl RunVerdict {
    /// From the checks: a failed promise breaks the run; an unknown one leaves it unknown.
    pub fn from_checks(checks: &[CheckResult]) -> RunVerdict {
        let promised = checks.iter().filter(|c| c.promised);
        let verdicts: Vec<Verdict> = promised.map(|c| c.verdict).collect();
        if verdicts.contains(&Verdict::Fail) {
            RunVerdict::Broken
        } else if verdicts.contains(&Verdict::Unknown) {
            RunVerdict::Unknown
        } else {
            RunVerdict::Kept
        }
    }
}

/// Formats a millisecond figure compactly.
fn ms(x: f64) -> String {
    if x >= 1000.0 {
        format!("{:.2}s", x / 1000.0)
    } else {
        format!("{x:.2}ms")
    }
}

impl RunReport {
    /// The human summary. `wall` adds the one line that depends on the machine (speed); leave
    /// it out for golden tests.
    pub fn render(&self, wall: bool) -> String {
        let mut out = String::new();
        let w = &mut out;
        let _ = writeln!(w, "seed: {}", self.seed);
        if !self.swarm.is_empty() {
            let _ = writeln!(w, "swarm drew (--explain prints the scenario they make):");
            for entry in &self.swarm {
                let _ = writeln!(w, "  {entry}");
            }
        }
        let _ = writeln!(w, "scenario: {} ({})", self.scenario, self.source);
        let _ = writeln!(w, "  {}", self.description);
        let promises = if self.promises.is_empty() {
            "nothing".into()
        } else {
            self.promises.join(", ")
        };
        let _ = writeln!(
            w,
            "protocol: {} on {} nodes; promises {promises}",
            self.protocol, self.nodes_count
        );
        if !self.bugs.is_empty() {
            let _ = writeln!(w, "planted bugs: {}", self.bugs.join(", "));
        }
        let _ = writeln!(w, "\nfaults:");
        if self.faults.is_empty() {
            let _ = writeln!(w, "  none");
        }
        for f in &self.faults {
            let _ = writeln!(w, "  {:>9}  {}  [{}]", ms(f.at_ms), f.action, f.origin);
        }
        if !self.ignored.is_empty() {
            let _ = writeln!(
                w,
                "ignored steps ({} lacks them; the scenario says unsupported = \"ignore\"):",
                self.protocol
            );
        }
        for f in &self.ignored {
            let _ = writeln!(w, "  {:>9}  {}  [{}]", ms(f.at_ms), f.action, f.origin);
        }
        self.render_numbers(w);
        if wall {
            let secs = self.wall_ms / 1000.0;
            let rate = self.events as f64 / secs.max(1e-9);
            let compression = self.virtual_time_ms / self.wall_ms.max(1e-9);
            let checks = self.checks_wall_ms / 1000.0;
            let share = 100.0 * checks / (secs + checks).max(1e-9);
            let _ = writeln!(
                w,
                "wall:       {secs:.3}s, {:.2}M events/s, {compression:.0}x virtual time; \
                 checks {checks:.3}s ({share:.0}% of run and checks)",
                rate / 1e6
            );
        }
        self.render_checks(w);
        let _ = writeln!(w, "\nnodes:");
        for n in &self.nodes {
            let _ = writeln!(
                w,
                "  {:<4} {:<8} {:>3} keys  digest {}  clock {:+}us",
                n.node,
                n.state,
                n.keys,
                if n.digest.is_empty() { "-" } else { &n.digest },
                n.clock_skew_us
            );
        }
        let seen = self
            .checks
            .iter()
            .filter(|c| !c.promised && c.verdict == Verdict::Fail)
            .count();
        let kept = if seen == 0 {
            "every promise kept".to_string()
        } else {
            format!(
                "every promise kept ({seen} measured check{} saw what {} does not promise)",
                if seen == 1 { "" } else { "s" },
                self.protocol
            )
        };
        let verdict = match self.verdict {
            RunVerdict::Kept => kept.as_str(),
            RunVerdict::Broken => "a promise was BROKEN",
            RunVerdict::Unknown => "unknown: a promised check ran out of budget",
        };
        let _ = writeln!(w, "\nverdict: {verdict}");
        let _ = writeln!(w, "fingerprint: {}", self.fingerprint);
        if self.verdict != RunVerdict::Kept {
            let _ = writeln!(w, "replay: {}", self.replay);
        }
        out
    }

    fn render_checks(&self, w: &mut String) {
        let _ = writeln!(w, "\nchecks:");
        for c in &self.checks {
            let promised = if c.promised { "promised" } else { "measured" };
            let verdict = check_status(c.promised, c.verdict);
            let mut lines = c.detail.lines();
            let first = lines.next().unwrap_or("");
            let _ = writeln!(w, "  {:<16} {promised:<9} {verdict:<8} {first}", c.name);
            for line in lines {
                let _ = writeln!(w, "  {:<35} {line}", "");
            }
        }
    }

    fn render_numbers(&self, w: &mut String) {
        let o = &self.ops;
        let _ = writeln!(
            w,
            "\noperations: {} invoked by {} clients: {} ok, {} fail, {} info; availability {:.1}%",
            o.invoked,
            self.clients,
            o.ok,
            o.fail,
            o.info,
            self.availability * 100.0
        );
        if o.shed > 0 {
            let _ = writeln!(
                w,
                "            {} arrivals shed (every client busy)",
                o.shed
            );
        }
        if self.measures.sibling_reads > 0 {
            let _ = writeln!(
                w,
                "            {} gets answered with siblings (concurrent versions)",
                self.measures.sibling_reads
            );
        }
        let l = &self.latency_ms;
        let _ = writeln!(
            w,
            "latency:    p50 {}  p99 {}  max {}",
            ms(l.p50),
            ms(l.p99),
            ms(l.max)
        );
        let m = &self.messages;
        let _ = writeln!(
            w,
            "messages:   {} sent, {} delivered, {} dropped, {} duplicated",
            m.sent, m.delivered, m.dropped, m.duplicated
        );
        let counters = &self.measures.protocol_counters;
        if !counters.is_empty() {
            let shown: Vec<String> = counters
                .iter()
                .map(|c| format!("{} {}", c.name, c.value))
                .collect();
            let _ = writeln!(
                w,
                "{:<12}{}",
                format!("{}:", self.protocol),
                shown.join(", ")
            );
        }
        let _ = writeln!(
            w,
            "simulated:  {} virtual, {} events",
            ms(self.virtual_time_ms),
            self.events
        );
    }
}
