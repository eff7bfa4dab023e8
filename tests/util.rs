//! Running the `simkv` binary from tests.

use simkv_sim::checks::CheckName;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (where scenarios/ lives).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `simkv` with `args` from the repository root.
pub fn simkv(args: &[&str]) -> Output {
    simkv_env(args, &[])
}

/// Runs `simkv` with `args` and the environment variables `vars` (and no `SIMKV_PERTURB`
/// but one given here).
pub fn simkv_env(args: &[&str], vars: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_simkv"))
        .args(args)
        .current_dir(root())
        .env_remove("SIMKV_PERTURB")
        .envs(vars.iter().copied())
        .output()
        .expect("the simkv binary runs")
}

/// Stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Writes `text` to `name` inside `dir`, returning the path as a string.
pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("temp file");
    path.to_string_lossy().into_owned()
}

/// The summary without its one machine-dependent line.
pub fn without_wall_time(summary: &str) -> String {
    summary
        .lines()
        .filter(|l| !l.starts_with("wall:"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs a scenario in-process with `protocol`, `seed` and planted `bugs`.
pub fn run_report(
    path: &str,
    protocol: &str,
    seed: u64,
    bugs: &[&str],
) -> simkv_sim::report::RunReport {
    run_report_with(path, protocol, seed, bugs, &[])
}

/// [`run_report`] with `--set` overrides.
pub fn run_report_with(
    path: &str,
    protocol: &str,
    seed: u64,
    bugs: &[&str],
    sets: &[&str],
) -> simkv_sim::report::RunReport {
    let overrides = simkv_sim::scenario::Overrides {
        seed: Some(seed),
        protocol: Some(protocol.into()),
        bugs: bugs.iter().map(|b| b.to_string()).collect(),
        sets: sets.iter().map(|s| s.to_string()).collect(),
    };
    let full = root().join(path);
    let scenario = simkv_sim::scenario::load_file(full.to_str().unwrap(), &overrides)
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    simkv_sim::runner::run(&scenario, simkv_sim::runner::RunOptions::default()).report
}

/// Every scenario file directly under `dir` (relative to the root), sorted.
pub fn scenarios_in(dir: &str) -> Vec<String> {
    let mut paths: Vec<String> = std::fs::read_dir(root().join(dir))
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.ends_with(".toml").then(|| format!("{dir}/{name}"))
        })
        .collect();
    paths.sort();
    paths
}

/// Whether the scenario's workload has multi-key transactions.
pub fn has_txn(path: &str) -> bool {
    let full = root().join(path);
    let overrides = simkv_sim::scenario::Overrides::default();
    simkv_sim::scenario::load_file(full.to_str().unwrap(), &overrides)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .workload
        .has_txn()
}

/// Whether the scenario's workload sends causal contexts (`contexts = true`: only protocols
/// that take them run it).
pub fn has_contexts(path: &str) -> bool {
    let full = root().join(path);
    let overrides = simkv_sim::scenario::Overrides::default();
    simkv_sim::scenario::load_file(full.to_str().unwrap(), &overrides)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .workload
        .contexts
}

/// Whether the scenario changes the cluster's membership (`initial` with fewer than every
/// node, a `join`, `leave` or `remove`, a `membership` nemesis): only protocols whose nodes
/// join and leave run it.
pub fn changes_membership(path: &str) -> bool {
    let full = root().join(path);
    let overrides = simkv_sim::scenario::Overrides::default();
    simkv_sim::scenario::load_file(full.to_str().unwrap(), &overrides)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .changes_membership()
}

/// Asserts that `protocol` keeps every promise on each of `paths` for `seeds` (scenarios
/// with transactions, contexts or membership changes only if it serves them: for the
/// others the loader refuses the pairing, which tests/bad_input.rs covers).
pub fn assert_keeps_promises(
    protocol: &str,
    paths: &[String],
    seeds: std::ops::RangeInclusive<u64>,
) {
    use simkv_sim::checks::Verdict;
    use simkv_sim::report::RunVerdict;
    let info = simkv_protocols::ProtocolKind::from_name(protocol)
        .map(|p| p.info())
        .unwrap();
    let serves = |p: &&String| {
        (info.transactions || !has_txn(p))
            && (info.contexts || !has_contexts(p))
            && (info.membership || !changes_membership(p))
    };
    for path in paths.iter().filter(serves) {
        for seed in seeds.clone() {
            let report = run_report(path, protocol, seed, &[]);
            let broken: Vec<String> = report
                .checks
                .iter()
                .filter(|c| {
                    c.promised && c.verdict != Verdict::Pass && c.verdict != Verdict::Skipped
                })
                .map(|c| format!("{}: {}", c.name, c.detail))
                .collect();
            assert_eq!(
                report.verdict,
                RunVerdict::Kept,
                "{protocol} on {path} seed {seed}: {broken:?}"
            );
        }
    }
}

/// One planted bug, the scenario and seeds that show it, and the check that must fail.
pub struct Caught {
    /// The bug's name.
    pub bug: &'static str,
    /// The scenario.
    pub path: &'static str,
    /// The seeds tried, in order, until one catches it.
    pub seeds: std::ops::RangeInclusive<u64>,
    /// The promised check that must fail.
    pub check: CheckName,
}

/// Asserts that `table` lists exactly `protocol`'s declared bugs, and that each is caught.
pub fn assert_bugs_caught(protocol: &str, table: &[Caught]) {
    use simkv_sim::checks::Verdict;
    use simkv_sim::report::RunVerdict;
    let declared: Vec<&str> = simkv_protocols::ProtocolKind::from_name(protocol)
        .map(|p| p.info())
        .unwrap()
        .bugs
        .iter()
        .map(|b| b.name)
        .collect();
    let tested: Vec<&str> = table.iter().map(|c| c.bug).collect();
    assert_eq!(
        declared, tested,
        "every declared bug of {protocol} has a catching scenario"
    );
    for c in table {
        let caught = c.seeds.clone().find(|seed| {
            let report = run_report(c.path, protocol, *seed, &[c.bug]);
            let check = report.checks.iter().find(|x| x.name == c.check).unwrap();
            report.verdict == RunVerdict::Broken && check.verdict == Verdict::Fail
        });
        assert!(
            caught.is_some(),
            "{protocol}: {} escaped {} on {}, seeds {:?}",
            c.bug,
            c.check,
            c.path,
            c.seeds
        );
    }
}

/// The value of the protocol counter `name` in `report`'s measures (summed over nodes, or the
/// maximum, as the counter says); panics naming the measures when the run has none so named.
pub fn counter(report: &simkv_sim::report::RunReport, name: &str) -> u64 {
    let c = report
        .measures
        .protocol_counters
        .iter()
        .find(|c| c.name == name);
    c.unwrap_or_else(|| panic!("{name} in {:?}", report.measures))
        .value
}
