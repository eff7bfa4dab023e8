//! primary: every promise kept on every shipped scenario across seeds, and every planted bug
//! caught by a promised check on some seed of a shipped scenario.

use simkv_sim::checks::Verdict;
use simkv_sim::report::{RunReport, RunVerdict};
use simkv_sim::runner::{self, RunOptions};
use simkv_sim::scenario::{self, Overrides};

fn run(path: &str, seed: u64, bugs: &[&str]) -> RunReport {
    let overrides = Overrides {
        seed: Some(seed),
        protocol: Some("primary".into()),
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

#[test]
fn primary_keeps_its_promises_on_every_shipped_scenario_across_seeds() {
    let scenarios = shipped_scenarios();
    assert!(scenarios.len() >= 6, "{scenarios:?}");
    for path in scenarios {
        for seed in 1..=4 {
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
            assert!(report.ops.ok > 1000, "{path} seed {seed}: the workload ran");
        }
    }
}

/// Each planted bug, the shipped scenario that shows it, how many seeds to try, and the
/// check that must catch it.
const CAUGHT: &[(&str, &str, u64, &str)] = &[
    (
        "skip-resync",
        "scenarios/crash-restart.toml",
        3,
        "convergence",
    ),
    (
        "blind-apply",
        "scenarios/flaky-network.toml",
        5,
        "convergence",
    ),
    (
        "no-anti-entropy",
        "scenarios/flaky-network.toml",
        5,
        "convergence",
    ),
    // A reused version trips the node's own invariant (no own version past the persisted
    // mark) before the replicas have a chance to diverge.
    (
        "volatile-counter",
        "scenarios/crash-restart.toml",
        3,
        "invariants",
    ),
];

#[test]
fn primary_every_planted_bug_is_caught_on_a_shipped_scenario() {
    let declared: Vec<&str> = simkv_sim::registry::protocol("primary")
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
