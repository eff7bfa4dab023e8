//! majority (ABD, with CASPaxos promises for read-modify-writes): its safety promises kept on
//! every shipped scenario, every promise on the scenarios where its liveness holds, and every
//! planted bug caught by a promised check on some seed of a shipped scenario.

use simkv_sim::checks::Verdict;
use simkv_sim::history::Outcome;
use simkv_sim::report::{RunReport, RunVerdict};
use simkv_sim::runner::{self, RunOptions};
use simkv_sim::scenario::{self, Overrides};

fn run(path: &str, seed: u64, bugs: &[&str]) -> RunReport {
    let overrides = Overrides {
        seed: Some(seed),
        protocol: Some("majority".into()),
        bugs: bugs.iter().map(|b| b.to_string()).collect(),
        sets: vec![],
    };
    let path = crate::util::root().join(path);
    let scenario = scenario::load_file(path.to_str().unwrap(), &overrides).expect("valid");
    runner::run(&scenario, RunOptions::default()).report
}

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

fn failed(report: &RunReport, check: &str) -> bool {
    let found = report.checks.iter().find(|c| c.name == check);
    found.expect("the check ran").verdict == Verdict::Fail
}

/// ABD section 4 and CASPaxos section 2: whatever the faults, histories are linearizable and
/// acknowledged writes survive (the run's invariants hold too).
#[test]
fn majority_keeps_its_safety_promises_on_every_shipped_scenario() {
    let scenarios = shipped_scenarios();
    assert!(scenarios.iter().any(|s| s.ends_with("cap-demo.toml")));
    for path in scenarios {
        let report = run(&path, 1, &[]);
        for check in ["invariants", "linearizability", "durability"] {
            assert!(!failed(&report, check), "{path}: {check} broken");
        }
        assert!(report.ops.ok > 500, "{path}: the workload ran");
    }
}

/// Where no message is lost and keys are not fought over for seconds, every promise holds,
/// liveness after heal included. (Known gap: on flaky-network.toml, and now and then under
/// the nemesis, one write in a few thousand is starved by competing coordinators of its key
/// past the client's retries; see the module doc of `majority`.)
#[test]
fn majority_keeps_every_promise_on_the_partition_freeze_crash_and_demo_stories() {
    let scenarios = [
        "scenarios/partition.toml",
        "scenarios/freeze.toml",
        "scenarios/crash-restart.toml",
        "scenarios/clock-skew.toml",
        "scenarios/cap-demo.toml",
    ];
    for path in scenarios {
        for seed in 1..=2 {
            let report = run(path, seed, &[]);
            let broken: Vec<_> = report
                .checks
                .iter()
                .filter(|c| c.promised && c.verdict == Verdict::Fail)
                .map(|c| format!("{}: {}", c.name, c.detail))
                .collect();
            assert_eq!(
                report.verdict,
                RunVerdict::Kept,
                "{path} seed {seed}: {broken:?}"
            );
        }
    }
}

/// CP: in the demo's story, with n2 frozen and n5 dead, the partition at 12s leaves no side
/// with a majority (1 and 2 live nodes), so from then until the heal at 20s nothing succeeds,
/// whichever node a client tries (an operation invoked after 18.4s may still succeed on a
/// retry after the heal); before and after, the live majority serves.
#[test]
fn majority_cap_demo_serves_nothing_while_no_side_has_a_majority() {
    let overrides = Overrides {
        seed: Some(1),
        protocol: Some("majority".into()),
        bugs: vec![],
        sets: vec![],
    };
    let path = crate::util::root().join("scenarios/cap-demo.toml");
    let scenario = scenario::load_file(path.to_str().unwrap(), &overrides).expect("valid");
    let history = runner::run(&scenario, RunOptions::default()).history;
    let mut invoked = std::collections::BTreeMap::new();
    let (mut ok_during, mut ok_before) = (0, 0);
    for e in &history.events {
        match &e.outcome {
            None => {
                invoked.insert(e.client, e.time);
            }
            Some(Outcome::Ok(_)) => {
                let at = invoked[&e.client].as_micros();
                ok_during += usize::from((12_100_000..18_400_000).contains(&at));
                ok_before += usize::from((9_000_000..11_000_000).contains(&at));
            }
            Some(_) => {}
        }
    }
    assert_eq!(ok_during, 0, "served without a majority");
    assert!(ok_before > 20, "n1, n3, n4 are a majority: {ok_before}");
}

/// Each planted bug, the shipped scenario that shows it, how many seeds to try, and the
/// promised check that must catch it.
const CAUGHT: &[(&str, &str, u64, &str)] = &[
    // ABD section 4: without the write-back, a read may return a value on a minority and a
    // later read the older one (a new-old inversion), here with lost messages.
    (
        "skip-read-write-back",
        "scenarios/flaky-network.toml",
        3,
        "linearizability",
    ),
    // R + W <= N: a read (and a phase 1) quorum can miss the last write quorum entirely.
    (
        "weak-quorum",
        "scenarios/partition.toml",
        2,
        "linearizability",
    ),
    // Two coordinators' ballots with one counter look equal: both are promised and both
    // accepted, and replicas keep different values under "one" version.
    (
        "version-without-node-tiebreak",
        "scenarios/crash-restart.toml",
        2,
        "linearizability",
    ),
];

#[test]
fn majority_every_planted_bug_is_caught_on_a_shipped_scenario() {
    let declared: Vec<&str> = simkv_sim::registry::protocol("majority")
        .unwrap()
        .bugs
        .iter()
        .map(|b| b.name)
        .collect();
    let tested: Vec<&str> = CAUGHT.iter().map(|(bug, ..)| *bug).collect();
    assert_eq!(
        declared, tested,
        "every declared bug has a catching scenario"
    );
    for (bug, path, seeds, check) in CAUGHT {
        let caught = (1..=*seeds).find(|seed| {
            let report = run(path, *seed, &[bug]);
            report.verdict == RunVerdict::Broken && failed(&report, check)
        });
        assert!(
            caught.is_some(),
            "{bug} escaped {check} on {path}, seeds 1..={seeds}"
        );
    }
}
