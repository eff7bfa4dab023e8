//! `[swarm]` (Groce et al., "Swarm Testing", ISSTA 2012): each seed draws its own world,
//! the draws are listed, and `--explain` turns them into a plain scenario that replays the
//! seed.

use crate::util::{run_report, run_report_with, simkv, stderr, stdout, write};
use std::collections::BTreeSet;

const SWARM: &str = "scenarios/swarm.toml";

#[test]
fn the_same_seed_draws_the_same_world_and_seeds_draw_different_ones() {
    let mut worlds = BTreeSet::new();
    let mut sizes = BTreeSet::new();
    for seed in 1..=8 {
        let a = run_report(SWARM, "majority", seed, &[]);
        let b = run_report(SWARM, "majority", seed, &[]);
        assert_eq!(a.swarm, b.swarm, "seed {seed}");
        assert_eq!(a.fingerprint, b.fingerprint, "seed {seed}");
        assert!(!a.swarm.is_empty());
        sizes.insert(a.nodes_count);
        worlds.insert(a.swarm.clone());
    }
    assert_eq!(worlds.len(), 8, "8 seeds drew only {} worlds", worlds.len());
    assert!(
        sizes.len() >= 2,
        "every seed drew the same cluster size {sizes:?}"
    );
}

#[test]
fn draws_keep_to_what_the_protocol_serves() {
    for seed in 1..=40 {
        // majority serves no transactions and has no leader: no txn mix, no leader target.
        let report = run_report(SWARM, "majority", seed, &[]);
        for entry in &report.swarm {
            if entry.starts_with("workload.mix=") {
                assert!(!entry.contains("txn"), "seed {seed}: {entry}");
            }
            if entry.starts_with("nemesis=") {
                for role in [
                    "\"leader\"",
                    "\"a-follower\"",
                    "\"coordinator\"",
                    "\"candidate\"",
                ] {
                    assert!(!entry.contains(role), "seed {seed}: {entry}");
                }
            }
        }
    }
    // raft has a leader: some seed aims a nemesis at it.
    let aimed = (1..=40).any(|seed| {
        let report = run_report(SWARM, "raft", seed, &[]);
        report
            .swarm
            .iter()
            .any(|e| e.starts_with("nemesis=") && e.contains("\"leader\""))
    });
    assert!(aimed, "no seed of 40 aimed a fault at raft's leader");
}

#[test]
fn the_users_own_set_wins_over_a_draw() {
    for seed in 1..=6 {
        let report = run_report_with(SWARM, "raft", seed, &[], &["cluster.nodes=3"]);
        assert_eq!(report.nodes_count, 3, "seed {seed}");
        let listed = report
            .swarm
            .iter()
            .find(|e| e.starts_with("cluster.nodes="));
        assert!(
            listed.is_some_and(|e| e.ends_with(" (overridden by --set)")),
            "{:?}",
            report.swarm
        );
        assert!(report
            .swarm
            .iter()
            .filter(|e| !e.starts_with("cluster.nodes="))
            .all(|e| !e.contains("overridden")));
    }
}

#[test]
fn explain_prints_a_plain_scenario_that_replays_the_seed() {
    let dir = tempfile::tempdir().unwrap();
    for seed in ["3", "11"] {
        let out = simkv(&[
            "run",
            SWARM,
            "--protocol",
            "raft",
            "--seed",
            seed,
            "--explain",
            "--json",
        ]);
        assert!(
            out.status.code().is_some_and(|c| c <= 1),
            "{}",
            stderr(&out)
        );
        let text = stdout(&out);
        let (explained, json) = text.split_at(text.find("\n{").expect("the JSON report") + 1);
        assert!(
            !explained.lines().any(|l| l.starts_with("[swarm")),
            "{explained}"
        );
        assert!(explained.contains("# [swarm] drew for seed"), "{explained}");
        let report: serde_json::Value = serde_json::from_str(json).unwrap();
        let path = write(dir.path(), &format!("seed{seed}.toml"), explained);
        let again = simkv(&["run", &path, "--json"]);
        let again: serde_json::Value = serde_json::from_str(&stdout(&again)).unwrap();
        assert_eq!(report["fingerprint"], again["fingerprint"], "seed {seed}");
        assert!(again["swarm"].as_array().is_none_or(|a| a.is_empty()));
        assert_ne!(report["swarm"], serde_json::json!([]));
    }
}

#[test]
fn a_pick_sets_its_fields_together() {
    let mut seen = BTreeSet::new();
    for seed in 1..=12 {
        let report = run_report(SWARM, "raft", seed, &[]);
        let has = |e: &str| report.swarm.iter().any(|s| s == e);
        // The LAN hammer's short timeout comes only with its many clients and random target.
        assert_eq!(
            has("workload.timeout=\"40ms\""),
            has("workload.clients=20") && has("workload.target=\"random\""),
            "seed {seed}: {:?}",
            report.swarm
        );
        let timeout = report
            .swarm
            .iter()
            .find(|e| e.starts_with("workload.timeout="));
        seen.insert(timeout.cloned());
    }
    assert!(seen.len() >= 3, "12 seeds picked only {seen:?}");
    let dir = tempfile::tempdir().unwrap();
    let text = "name = \"t\"\ndescription = \"t\"\nduration = \"1s\"\n[cluster]\nprotocol = \"raft\"\nnodes = 3\n[swarm.pick]\nlan = []\n";
    let path = write(dir.path(), "p.toml", text);
    let out = simkv(&["run", &path]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{path}:8:7")) && err.contains("at least one table"),
        "{err}"
    );
}

/// The swarm finds raft's vote-not-persisted (a voter that restarts forgets its vote and
/// votes again in the same term), which no seed of 1..=300 found before faults were timed at
/// role changes: seed 163 (the first of 1..=200 since followers proxy reads and re-send
/// unanswered proxies) draws quick crash-restarts and a twin nemesis timed at role changes
/// (`on_role`), and two leaders of one term follow. The same seed keeps every promise
/// without the bug.
#[test]
fn swarm_finds_vote_not_persisted_on_a_named_seed() {
    let buggy = run_report(SWARM, "raft", 163, &["vote-not-persisted"]);
    assert!(
        buggy.swarm.iter().any(|e| e.contains("on_role = ")),
        "{:?}",
        buggy.swarm
    );
    assert!(
        !buggy.failed_promises().is_empty(),
        "seed 163 no longer finds vote-not-persisted"
    );
    let correct = run_report(SWARM, "raft", 163, &[]);
    assert!(
        correct.failed_promises().is_empty(),
        "{:?}",
        correct.failed_promises()
    );
}
