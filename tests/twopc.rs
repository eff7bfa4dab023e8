//! twopc (Gray & Lamport, "Consensus on Transaction Commit", 2004, section 2): every promise
//! kept on every shipped scenario across seeds, every planted bug caught by a promised check on
//! some seed of a shipped scenario, and a coordinator stopped after Prepare blocking its
//! participants until it is back.

use simkv_sim::checks::Verdict;
use simkv_sim::report::{RunReport, RunVerdict};
use simkv_sim::runner::{self, RunOptions};
use simkv_sim::scenario::{self, Overrides};
use simkv_sim::trace::Trace;
use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

fn run_with(path: &str, seed: u64, bugs: &[&str], options: RunOptions) -> RunReport {
    let overrides = Overrides {
        seed: Some(seed),
        protocol: Some("twopc".into()),
        bugs: bugs.iter().map(|b| b.to_string()).collect(),
        sets: vec![],
    };
    let path = crate::util::root().join(path);
    let scenario = scenario::load_file(path.to_str().unwrap(), &overrides).expect("valid");
    runner::run(&scenario, options).report
}

fn run(path: &str, seed: u64, bugs: &[&str]) -> RunReport {
    run_with(path, seed, bugs, RunOptions::default())
}

fn broken(report: &RunReport) -> Vec<String> {
    report
        .checks
        .iter()
        .filter(|c| c.promised && c.verdict == Verdict::Fail)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect()
}

/// Every scenario in scenarios/ (not its subfolders), sorted: a scenario shipped later is
/// covered without editing this file.
fn shipped_scenarios() -> Vec<String> {
    let mut paths: Vec<String> = std::fs::read_dir(crate::util::root().join("scenarios"))
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.ends_with(".toml").then(|| format!("scenarios/{name}"))
        })
        .collect();
    paths.sort();
    paths
}

#[test]
fn twopc_keeps_its_promises_on_every_shipped_scenario_across_seeds() {
    let scenarios = shipped_scenarios();
    assert!(scenarios.len() >= 7, "{scenarios:?}");
    for path in &scenarios {
        for seed in 1..=2 {
            let report = run(path, seed, &[]);
            assert_eq!(
                report.verdict,
                RunVerdict::Kept,
                "{path} seed {seed}: {:?}",
                broken(&report)
            );
            assert!(report.ops.ok > 1000, "{path} seed {seed}: the workload ran");
        }
    }
}

/// Regressions: a write refused as unavailable (a promise that it was not applied) while a
/// copy of the same request, sent earlier by the client to another node, was still to commit.
#[test]
fn twopc_regression_nemesis_seed_1_and_partition_seed_3_no_refused_write_commits() {
    for (path, seed) in [
        ("scenarios/nemesis.toml", 1),
        ("scenarios/partition.toml", 3),
    ] {
        let report = run(path, seed, &[]);
        assert_eq!(
            report.verdict,
            RunVerdict::Kept,
            "{path} seed {seed}: {:?}",
            broken(&report)
        );
    }
}

/// Each planted bug, the shipped scenario that shows it, how many seeds to try (from 1), and
/// the check that must catch it. Each is caught on seed 1 (`simkv sweep FILE --protocol twopc
/// --bug NAME --seeds 1..=3` breaks every seed); the cheapest catching scenario is named.
const CAUGHT: &[(&str, &str, u64, &str)] = &[
    // While n2 is frozen the other four commit without it; its local reads miss those writes.
    (
        "commit-without-all-votes",
        "scenarios/freeze.toml",
        1,
        "linearizability",
    ),
    // A node crashes with yes votes outstanding and forgets them: the commit is lost there.
    (
        "vote-not-persisted",
        "scenarios/crash-restart.toml",
        1,
        "convergence",
    ),
    // A participant unlocked at its vote serves the old value before the commit reaches it.
    (
        "release-lock-before-decision",
        "scenarios/flaky-network.toml",
        1,
        "linearizability",
    ),
    // n2, stopped after logging a commit, forgets it and tells the participants to abort.
    (
        "coordinator-forgets-decision",
        "scenarios/twopc-blocking.toml",
        1,
        "convergence",
    ),
];

#[test]
fn twopc_every_planted_bug_is_caught_on_a_shipped_scenario() {
    let declared: Vec<&str> = simkv_sim::registry::protocol("twopc")
        .unwrap()
        .bugs
        .iter()
        .map(|b| b.name)
        .collect();
    let tested: Vec<&str> = CAUGHT.iter().map(|(bug, ..)| *bug).collect();
    assert_eq!(
        declared, tested,
        "every declared bug has a catching scenario here"
    );
    for (bug, path, seeds, check) in CAUGHT {
        let caught = (1..=*seeds).find(|seed| {
            let report = run(path, *seed, &[bug]);
            let catching = report.checks.iter().find(|c| c.name == *check).unwrap();
            report.verdict == RunVerdict::Broken && catching.verdict == Verdict::Fail
        });
        assert!(
            caught.is_some(),
            "{bug} escaped {check} on {path}, seeds 1..={seeds}"
        );
    }
}

/// A trace sink the test can read back after the run.
#[derive(Clone, Default)]
struct Shared(Rc<RefCell<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One participant's "unblocked" note: when, which node, which transaction, how long.
#[derive(Debug)]
struct Unblocked {
    at_us: u64,
    node: String,
    txn: String,
    blocked_us: u64,
}

/// The notes `twopc` writes when an in-doubt participant that had to ask learns the outcome:
/// `"n1.42: unblocked after 4.99s (4990123 us, 499 queries)"`.
fn unblocked_notes(trace: &[u8]) -> Vec<Unblocked> {
    let text = std::str::from_utf8(trace).expect("a trace is UTF-8");
    let mut found = Vec::new();
    for line in text.lines() {
        let event: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        if event["ev"] != "note" {
            continue;
        }
        let note = event["note"].as_str().unwrap_or_default();
        let Some((txn, rest)) = note.split_once(": unblocked after ") else {
            continue;
        };
        let us = rest.split_once(" (").and_then(|(_, r)| r.split_once(" us"));
        let blocked_us = us.and_then(|(n, _)| n.parse().ok()).expect("microseconds");
        found.push(Unblocked {
            at_us: event["t"].as_u64().expect("a time"),
            node: event["node"].as_str().unwrap_or_default().to_string(),
            txn: txn.to_string(),
            blocked_us,
        });
    }
    found
}

/// When `node` halted itself and when it was restarted, in microseconds, from the report.
fn down_interval_us(report: &RunReport, node: &str) -> (u64, u64) {
    let at = |action: String| {
        let line = report.faults.iter().find(|f| f.action == action);
        let line = line.unwrap_or_else(|| panic!("no {action:?} in {:?}", report.faults));
        (line.at_ms * 1_000.0).round() as u64
    };
    (
        at(format!("crash {node} (the protocol halted itself)")),
        at(format!("restart {node} from its durable state")),
    )
}

/// Section 2: "the TM's failure can block the RMs". n1 halts right after sending a Prepare at
/// 10s and restarts at 15s; n2 halts right after logging a decision at 20s and restarts at 24s.
/// Every other node voted yes on the transaction it was coordinating, holds the lock and asks
/// until the coordinator is back; the blocking lasts as long as the coordinator was down (seed
/// 1: n1 down 4.93s, its participants blocked 4.926s to 4.932s; n2 down 3.98s, 3.990s to
/// 3.998s).
#[test]
fn twopc_section_2_participants_block_while_their_coordinator_is_down() {
    let sink = Shared::default();
    let options = RunOptions {
        trace: Some(Trace::new(Box::new(sink.clone()))),
        replay: String::new(),
    };
    let report = run_with("scenarios/twopc-blocking.toml", 1, &[], options);
    assert_eq!(report.verdict, RunVerdict::Kept, "{:?}", broken(&report));
    let notes = unblocked_notes(&sink.0.borrow());
    for coordinator in ["n1", "n2"] {
        let (halted_us, restarted_us) = down_interval_us(&report, coordinator);
        let down_us = restarted_us - halted_us;
        // Blocked for a second or more: the transaction the halt left in doubt (transactions
        // of live coordinators resolve within the 100ms vote timeout).
        let blocked: Vec<&Unblocked> = notes
            .iter()
            .filter(|u| u.txn.starts_with(&format!("{coordinator}.")))
            .filter(|u| u.blocked_us >= 1_000_000)
            .collect();
        let mut participants: Vec<&str> = blocked.iter().map(|u| u.node.as_str()).collect();
        participants.sort();
        let others: Vec<&str> = ["n1", "n2", "n3", "n4", "n5"]
            .into_iter()
            .filter(|n| *n != coordinator)
            .collect();
        assert_eq!(participants, others, "{coordinator}: {blocked:?}");
        for u in blocked {
            // Unblocked only once the coordinator is back, at once.
            assert!(u.at_us >= restarted_us, "{u:?}");
            assert!(u.at_us <= restarted_us + 100_000, "{u:?}");
            // Voted at most a vote timeout before the halt, or just after its Prepare.
            assert!(u.blocked_us >= down_us - 100_000, "{u:?} down {down_us} us");
            assert!(u.blocked_us <= down_us + 100_000, "{u:?} down {down_us} us");
        }
    }
}
