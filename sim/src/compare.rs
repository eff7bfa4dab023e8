//! The CAP comparison: one scenario, several protocols, one table.
//!
//! Each protocol runs the same scenario with the same seed (so the same faults at the same
//! times and the same client draws); the table sets what each kept against what it cost:
//! availability on each side of the partition, stale reads, lost acknowledged writes,
//! replicas drifting apart, convergence, latency and messages.

use crate::checks::Verdict;
use crate::engine::Side;
use crate::report::{RunReport, RunVerdict, SideCounts};
use crate::runner::{self, RunOptions};
use crate::scenario::{self, LoadError, Overrides};
use std::fmt::Write as _;

/// Runs `path` once per protocol with `base` overrides (its `protocol` is replaced).
pub fn run_all(
    path: &str,
    protocols: &[String],
    base: &Overrides,
) -> Result<Vec<RunReport>, LoadError> {
    let mut reports = Vec::with_capacity(protocols.len());
    for protocol in protocols {
        let overrides = Overrides {
            protocol: Some(protocol.clone()),
            ..base.clone()
        };
        let scenario = scenario::load_file(path, &overrides)?;
        reports.push(runner::run(&scenario, RunOptions::default()).report);
    }
    Ok(reports)
}

fn percent(c: Option<&SideCounts>) -> String {
    match c {
        Some(c) if c.invoked > 0 => format!("{:.1}%", 100.0 * c.ok as f64 / c.invoked as f64),
        _ => "-".into(),
    }
}

/// Which promises held, in a word or two.
fn promises(report: &RunReport) -> String {
    let broken: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| c.promised && matches!(c.verdict, Verdict::Fail | Verdict::Unknown))
        .map(|c| c.name.as_str())
        .collect();
    match report.verdict {
        // A protocol that makes no generic promise (gossip) is judged on its invariants.
        RunVerdict::Kept if report.promises.is_empty() => "kept: invariants only".to_string(),
        RunVerdict::Kept => format!("kept: {}", report.promises.join(", ")),
        _ => format!("BROKEN: {}", broken.join(", ")),
    }
}

/// What Elle named in a run's transactions, as a table cell with its trailing separator.
fn anomalies(report: &RunReport) -> String {
    match &report.measures.txn_anomalies {
        None => " no txns served |".to_string(),
        Some(t) if t.anomalies.is_empty() => format!(" none in {} txns |", t.txns),
        Some(t) => format!(" {} in {} txns |", t.anomalies.join(", "), t.txns),
    }
}

/// The table, as Markdown, with a header naming the scenario and the seed.
pub fn render_markdown(reports: &[RunReport]) -> String {
    let mut out = String::new();
    if let Some(first) = reports.first() {
        let _ = writeln!(out, "# {}: {}\n", first.scenario, first.description);
        let _ = writeln!(
            out,
            "Seed {}, {} nodes, {} clients. Availability is ok / invoked for \
            operations sent to a node on that side (by a colocated client: invoked beside a \
            node on that side) while a fault was in force (`down`: the node was frozen, paused \
            or crashed).\n",
            first.seed, first.nodes_count, first.clients
        );
    }
    // Transactions get a column of their own when some protocol ran any: what Elle's
    // checker named in them.
    let txns = reports.iter().any(|r| r.measures.txn_anomalies.is_some());
    out.push_str("| protocol | majority side | minority side | down node | no fault | stale reads | lost acked writes | keys diverged at heal | converged after stop | p50 | p99 | msgs/op |");
    out.push_str(if txns {
        " txn anomalies (Elle) | promises |\n"
    } else {
        " promises |\n"
    });
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|");
    out.push_str(if txns { "---|---|\n" } else { "---|\n" });
    for r in reports {
        let m = &r.measures;
        let side = |side: Side| percent(m.by_side.get(&side));
        let converged = m
            .converged_after_stop_ms
            .map_or("never".to_string(), |ms| format!("{ms:.1}ms"));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} / {} | {} | {} | {} | {:.2}ms | {:.2}ms | {:.2} |{} {} |",
            r.protocol,
            side(Side::Majority),
            side(Side::Minority),
            side(Side::Down),
            side(Side::Whole),
            m.stale_reads,
            m.reads,
            m.lost_acknowledged_writes,
            m.diverged_keys_at_heal,
            converged,
            r.latency_ms.p50,
            r.latency_ms.p99,
            m.messages_per_op,
            if txns { anomalies(r) } else { String::new() },
            promises(r),
        );
    }
    // Operator steps a protocol lacks and the scenario let it ignore: said, not silent.
    let ignored: Vec<String> = reports
        .iter()
        .filter(|r| !r.ignored.is_empty())
        .map(|r| format!("{} {}", r.protocol, r.ignored.len()))
        .collect();
    if !ignored.is_empty() {
        let _ = writeln!(
            out,
            "\nIgnored operator steps (the protocol lacks the command; the scenario says \
             `unsupported = \"ignore\"`): {}. `simkv run --protocol NAME` lists them.",
            ignored.join(", ")
        );
    }
    out
}
