//! raft: every promise kept on every raft scenario across seeds, and every planted bug caught
//! by a promised check on some seed of a shipped scenario.

use simkv_sim::checks::Verdict;
use simkv_sim::report::{RunReport, RunVerdict};
use simkv_sim::runner::{self, RunOptions};
use simkv_sim::scenario::{self, Overrides};

fn run(path: &str, seed: u64, bugs: &[&str]) -> RunReport {
    let overrides = Overrides {
        seed: Some(seed),
        protocol: Some("raft".into()),
        bugs: bugs.iter().map(|b| b.to_string()).collect(),
        sets: vec![],
    };
    let path = crate::util::root().join(path);
    let scenario = scenario::load_file(path.to_str().unwrap(), &overrides).expect("valid");
    runner::run(&scenario, RunOptions::default()).report
}

fn raft_scenarios() -> Vec<String> {
    let dir = crate::util::root().join("scenarios/raft");
    let mut paths: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.ends_with(".toml")
                .then(|| format!("scenarios/raft/{name}"))
        })
        .collect();
    paths.sort();
    paths
}

#[test]
fn raft_keeps_its_promises_on_every_raft_scenario_across_seeds() {
    let scenarios = raft_scenarios();
    assert!(scenarios.len() >= 19, "{scenarios:?}");
    for path in scenarios {
        for seed in 1..=2 {
            let report = run(&path, seed, &[]);
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
            assert!(report.ops.ok > 0, "{path} seed {seed}: the workload ran");
        }
    }
}

/// Each planted bug, the shipped scenario that shows it, how many seeds to try, and the
/// check that must catch it.
const CAUGHT: &[(&str, &str, u64, &str)] = &[
    // A candidate missing committed entries wins, and lacks them as leader.
    (
        "vote-without-log-check",
        "scenarios/raft/reelection.toml",
        2,
        "invariants",
    ),
    // Seed 3: a leader counts an earlier term's entry as committed, crashes, and a leader
    // elected without it overwrites it.
    (
        "commit-previous-term",
        "scenarios/raft/figure8.toml",
        5,
        "invariants",
    ),
    // A voter that forgets its vote in a crash elects two leaders of one term.
    (
        "vote-not-persisted",
        "scenarios/raft/vote-amnesia.toml",
        5,
        "invariants",
    ),
    // A deposed leader's AppendEntries truncates a follower's committed entries.
    (
        "accept-stale-term",
        "scenarios/raft/churn.toml",
        3,
        "invariants",
    ),
    (
        "lease-without-drift-bound",
        "scenarios/raft/clock-drift-lease.toml",
        3,
        "linearizability",
    ),
    (
        "apply-retries-twice",
        "scenarios/raft/churn.toml",
        2,
        "linearizability",
    ),
];

#[test]
fn raft_every_planted_bug_is_caught_on_a_shipped_scenario() {
    let declared: Vec<&str> = simkv_sim::registry::protocol("raft")
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
