//! The golden table: what every shipped scenario does, pinned.
//!
//! `tests/golden/fingerprints.txt` holds one line per run: every shipped scenario (benchmarks
//! aside) x every protocol that accepts it x seeds 1..=3, then each planted bug on the scenario
//! that catches it, seeds 1..=3. Each line names the run's fingerprint (a hash over every
//! processed event) and hashes of its trace, its history (JSON) and its summary (without the
//! wall-clock line). A refactor must leave this file byte-identical; a change that means to
//! move behaviour rewrites it in a commit of its own that says why:
//!
//! ```text
//! SIMKV_BLESS=1 cargo test --workspace golden
//! ```

use crate::util::{root, scenarios_in};
use simkv_protocols::digest::StableHasher;
use std::hash::Hasher;
use std::io::Write;
use std::sync::{Arc, Mutex};

const TABLE: &str = "tests/golden/fingerprints.txt";

/// Each planted bug and the scenario that catches it (the tables in tests/<protocol>.rs).
const BUGS: &[(&str, &str, &str)] = &[
    ("primary", "skip-resync", "scenarios/crash-restart.toml"),
    ("primary", "blind-apply", "scenarios/flaky-network.toml"),
    ("primary", "no-anti-entropy", "scenarios/flaky-network.toml"),
    (
        "primary",
        "volatile-counter",
        "scenarios/crash-restart.toml",
    ),
    ("twopc", "commit-without-all-votes", "scenarios/freeze.toml"),
    (
        "twopc",
        "vote-not-persisted",
        "scenarios/crash-restart.toml",
    ),
    (
        "twopc",
        "release-lock-before-decision",
        "scenarios/flaky-network.toml",
    ),
    (
        "twopc",
        "coordinator-forgets-decision",
        "scenarios/twopc-blocking.toml",
    ),
    ("twopc", "no-checksum", "scenarios/disk-faults.toml"),
    ("twopc", "ack-before-sync", "scenarios/disk-faults.toml"),
    (
        "twopc",
        "lock-only-written-keys",
        "scenarios/transactions.toml",
    ),
    ("raft", "no-checksum", "scenarios/disk-faults.toml"),
    (
        "raft",
        "vote-without-log-check",
        "scenarios/raft/reelection.toml",
    ),
    (
        "raft",
        "commit-previous-term",
        "scenarios/raft/figure8.toml",
    ),
    (
        "raft",
        "vote-not-persisted",
        "scenarios/raft/vote-amnesia.toml",
    ),
    ("raft", "accept-stale-term", "scenarios/raft/churn.toml"),
    (
        "raft",
        "lease-without-drift-bound",
        "scenarios/raft/clock-drift-lease.toml",
    ),
    ("raft", "apply-retries-twice", "scenarios/raft/churn.toml"),
    (
        "raft",
        "overlapping-changes",
        "scenarios/swarm-membership.toml",
    ),
    ("raft", "ack-before-sync", "scenarios/power-loss.toml"),
    (
        "majority",
        "skip-read-write-back",
        "scenarios/flaky-network.toml",
    ),
    ("majority", "weak-quorum", "scenarios/nemesis.toml"),
    (
        "majority",
        "version-without-node-tiebreak",
        "scenarios/nemesis.toml",
    ),
    ("majority", "ack-before-sync", "scenarios/power-loss.toml"),
    ("sloppy", "never-hand-back-hints", "scenarios/cap-demo.toml"),
    ("sloppy", "drop-hints-on-crash", "scenarios/cap-demo.toml"),
    (
        "sloppy",
        "read-repair-writes-older",
        "scenarios/crash-restart.toml",
    ),
    (
        "dynamo",
        "concurrent-as-descends",
        "scenarios/dynamo-join.toml",
    ),
    ("dynamo", "truncate-newest", "scenarios/dynamo-quorum.toml"),
    (
        "dynamo",
        "uncapped-request-quorum",
        "scenarios/dynamo-quorum.toml",
    ),
    (
        "dynamo",
        "join-skips-pending-check",
        "scenarios/dynamo-join.toml",
    ),
    ("dynamo", "ack-before-sync", "scenarios/power-loss.toml"),
    ("dynamo", "merkle-skips-last-branch", "scenarios/swarm.toml"),
    (
        "dynamo",
        "context-ignored",
        "scenarios/dynamo-contexts.toml",
    ),
    (
        "gossip",
        "no-indirect-probes",
        "scenarios/gossip-churn.toml",
    ),
    (
        "gossip",
        "incarnation-not-bumped",
        "scenarios/gossip-churn.toml",
    ),
    ("gossip", "events-unordered", "scenarios/flaky-network.toml"),
    (
        "gossip",
        "stale-cache-answers",
        "scenarios/flaky-network.toml",
    ),
];

/// A `Write` that hashes what it is given and keeps nothing.
#[derive(Clone, Default)]
struct HashingWriter(Arc<Mutex<StableHasher>>);

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().write(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn hash_str(text: &str) -> u64 {
    let mut h = StableHasher::new();
    h.write(text.as_bytes());
    h.finish()
}

/// One line of the table, or `None` when the loader refuses the pairing.
fn line(path: &str, protocol: &str, seed: u64, bugs: &[&str]) -> Option<String> {
    let overrides = simkv_sim::scenario::Overrides {
        seed: Some(seed),
        protocol: Some(protocol.into()),
        bugs: bugs.iter().map(|b| b.to_string()).collect(),
        sets: vec![],
    };
    // Loaded by its relative path (tests run from the repository root): the summary names
    // the file, and the table must not depend on where the checkout lives.
    let scenario = simkv_sim::scenario::load_file(path, &overrides).ok()?;
    // Tracing formats every event as JSON: the first seed's trace is pinned, the others'
    // events through their fingerprints.
    let sink = HashingWriter::default();
    let options = simkv_sim::runner::RunOptions {
        trace: (seed == 1).then(|| simkv_sim::trace::Trace::new(Box::new(sink.clone()))),
        replay: String::new(),
        record: None,
        sample_divergence: None,
    };
    let result = simkv_sim::runner::run(&scenario, options);
    let trace = match seed {
        1 => format!("{:016x}", sink.0.lock().unwrap().finish()),
        _ => "-".to_string(),
    };
    let history = hash_str(&result.history.to_json());
    let rendered = result.report.render(false);
    let summary: Vec<&str> = rendered
        .lines()
        .filter(|l| !l.starts_with("wall:"))
        .map(|l| l.trim_end())
        .collect();
    let summary = hash_str(&summary.join("\n"));
    let bugs = if bugs.is_empty() {
        "-".to_string()
    } else {
        bugs.join(",")
    };
    Some(format!(
        "{path} {protocol} {bugs} seed={seed} fingerprint={} trace={trace} \
         history={history:016x} summary={summary:016x}",
        result.report.fingerprint
    ))
}

/// Every run of the table, in order.
fn runs() -> Vec<(String, &'static str, u64, Vec<&'static str>)> {
    let mut paths = scenarios_in("scenarios");
    paths.extend(scenarios_in("scenarios/raft"));
    paths.extend(scenarios_in("scenarios/contention"));
    let mut runs = Vec::new();
    for path in &paths {
        for protocol in simkv_protocols::ProtocolKind::ALL.iter().map(|p| p.name()) {
            for seed in 1..=3 {
                runs.push((path.clone(), protocol, seed, vec![]));
            }
        }
    }
    for (protocol, bug, path) in BUGS {
        for seed in 1..=3 {
            runs.push((path.to_string(), *protocol, seed, vec![*bug]));
        }
    }
    runs
}

/// The table, computed on two threads (each run is independent and deterministic).
fn table() -> String {
    let runs = runs();
    let threads = 2;
    let lines: Vec<Vec<(usize, Option<String>)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let runs = &runs;
                scope.spawn(move || {
                    (t..runs.len())
                        .step_by(threads)
                        .map(|i| {
                            let (path, protocol, seed, bugs) = &runs[i];
                            (i, line(path, protocol, *seed, bugs))
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut lines: Vec<(usize, Option<String>)> = lines.into_iter().flatten().collect();
    lines.sort_by_key(|(i, _)| *i);
    let mut out = String::new();
    for (i, l) in lines {
        let (path, _, _, bugs) = &runs[i];
        match l {
            Some(l) => {
                out.push_str(&l);
                out.push('\n');
            }
            None => assert!(bugs.is_empty(), "{path} refuses its bug's protocol"),
        }
    }
    out
}

#[test]
fn golden_fingerprints_of_every_scenario_protocol_and_bug_are_unchanged() {
    let declared: Vec<(String, String)> = simkv_protocols::ProtocolKind::ALL
        .iter()
        .map(|p| p.info())
        .flat_map(|p| {
            p.bugs
                .iter()
                .map(|b| (p.name.to_string(), b.name.to_string()))
        })
        .collect();
    let listed: Vec<(String, String)> = BUGS
        .iter()
        .map(|(p, b, _)| (p.to_string(), b.to_string()))
        .collect();
    assert_eq!(declared, listed, "every planted bug has a golden line");
    let actual = table();
    let file = root().join(TABLE);
    if std::env::var_os("SIMKV_BLESS").is_some() {
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&file).expect("the golden table exists");
    if expected != actual {
        let diff: Vec<String> = expected
            .lines()
            .zip(actual.lines())
            .filter(|(e, a)| e != a)
            .take(10)
            .map(|(e, a)| format!("- {e}\n+ {a}"))
            .collect();
        panic!(
            "the golden table moved ({} lines expected, {} now); first differences:\n{}",
            expected.lines().count(),
            actual.lines().count(),
            diff.join("\n")
        );
    }
}
