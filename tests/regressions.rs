//! The regression corpus: tests/regressions/ holds one shrunk scenario per planted bug (made
//! by `simkv shrink` from a failing seed, most of scenarios/swarm.toml; each file's header
//! says which), each with its bug switched on inside the file, and none larger than 10
//! operations and 3 faults. tests/regressions/expected.txt records what each must give: verdict,
//! the promised checks it fails, and its fingerprint. Every file is replayed and compared; a
//! file without a line there, or a line without a file, fails the test by name. To record a
//! new file's line (or accept a change meant to move behaviour, in a commit of its own):
//!
//! ```text
//! SIMKV_BLESS=1 cargo test --test integration regressions
//! ```

use crate::util::root;
use simkv_sim::replay::verdict_name;
use simkv_sim::runner::{self, RunOptions};
use simkv_sim::scenario::{self, Overrides};
use simkv_sim::shrink::{failed_checks, Sizes};
use std::collections::BTreeMap;

const DIR: &str = "tests/regressions";
const EXPECTED: &str = "tests/regressions/expected.txt";

/// Every regression file's name, sorted.
fn files() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join(DIR))
        .expect("tests/regressions exists")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    names.sort();
    names
}

/// What a file's run gives, as expected.txt spells it: `verdict checks fingerprint`.
fn outcome(name: &str) -> (String, Vec<String>) {
    let path = root().join(DIR).join(name);
    let s = scenario::load_file(path.to_str().unwrap(), &Overrides::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let report = runner::run(&s, RunOptions::default()).report;
    let checks = failed_checks(&report);
    let line = format!(
        "{} {} {}",
        verdict_name(report.verdict),
        if checks.is_empty() {
            "-".to_string()
        } else {
            checks.join(",")
        },
        report.fingerprint
    );
    let bugs = s.cluster.bugs.iter().map(|b| b.to_string()).collect();
    (line, bugs)
}

fn expected() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(root().join(EXPECTED)).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(' '))
        .map(|(name, rest)| (name.to_string(), rest.trim().to_string()))
        .collect()
}

/// Each reproducer is small enough to read (issue 11: at most 10 operations and 3 faults,
/// a fault's `for` counting as a second): a file the simulator's changes have grown (its
/// seed now needs more of its workload) fails here, by name, to be shrunk again.
#[test]
fn every_regression_is_at_most_ten_operations_and_three_faults() {
    let mut over = Vec::new();
    for name in files() {
        let path = root().join(DIR).join(&name);
        let s = scenario::load_file(path.to_str().unwrap(), &Overrides::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let report = runner::run(&s, RunOptions::default()).report;
        let sizes = Sizes::of(&s, &report);
        if sizes.ops > 10 || sizes.faults > 3 {
            over.push(format!("{name}: {sizes}"));
        }
    }
    assert!(over.is_empty(), "shrink these again:\n{}", over.join("\n"));
}

#[test]
fn every_regression_replays_with_its_recorded_verdict_checks_and_fingerprint() {
    let names = files();
    let actual: Vec<(String, String)> = names.iter().map(|n| (n.clone(), outcome(n).0)).collect();
    if std::env::var_os("SIMKV_BLESS").is_some() {
        let mut text = String::from(
            "# file verdict failed-checks fingerprint (SIMKV_BLESS=1 cargo test --test integration regressions)\n",
        );
        for (name, line) in &actual {
            text.push_str(&format!("{name} {line}\n"));
        }
        std::fs::write(root().join(EXPECTED), text).unwrap();
        return;
    }
    let expected = expected();
    let missing: Vec<&str> = names
        .iter()
        .filter(|n| !expected.contains_key(*n))
        .map(String::as_str)
        .collect();
    assert!(
        missing.is_empty(),
        "regression files without an expectation in {EXPECTED}: {} \
         (record them with SIMKV_BLESS=1 cargo test --test integration regressions)",
        missing.join(", ")
    );
    let orphans: Vec<&String> = expected.keys().filter(|k| !names.contains(k)).collect();
    assert!(
        orphans.is_empty(),
        "{EXPECTED} names files that do not exist: {orphans:?}"
    );
    let moved: Vec<String> = actual
        .iter()
        .filter(|(name, line)| expected[name] != *line)
        .map(|(name, line)| format!("{name}: expected `{}`, got `{line}`", expected[name]))
        .collect();
    assert!(moved.is_empty(), "regressions moved:\n{}", moved.join("\n"));
}

#[test]
fn every_planted_bug_has_a_broken_regression_that_switches_it_on() {
    let expected = expected();
    let mut covered = Vec::new();
    for name in files() {
        let (_, bugs) = outcome(&name);
        assert!(!bugs.is_empty(), "{name} switches no planted bug on");
        if let Some(line) = expected.get(&name) {
            assert!(
                line.starts_with("broken "),
                "{name} is expected to break: {line}"
            );
        }
        covered.extend(bugs);
    }
    let listed = crate::util::simkv(&["list", "bugs"]);
    for line in crate::util::stdout(&listed).lines() {
        let bug = line.split_whitespace().nth(1).unwrap();
        let protocol = line.split_whitespace().next().unwrap();
        let file = format!("{protocol}-{bug}.toml");
        assert!(
            files().contains(&file),
            "planted bug {protocol} {bug} has no regression {DIR}/{file}"
        );
        assert!(
            covered.iter().any(|b| b == bug),
            "{bug} is switched on nowhere"
        );
    }
}
