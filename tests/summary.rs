//! The human summary of partition.toml at a fixed seed, pinned.

use crate::util::{simkv, stdout, without_wall_time};

#[test]
fn summary_of_partition_at_seed_1_is_pinned() {
    let out = simkv(&["run", "scenarios/partition.toml", "--seed", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    insta::assert_snapshot!(without_wall_time(&stdout(&out)));
}

#[test]
fn summary_dump_shows_every_node_store() {
    let out = stdout(&simkv(&["run", "scenarios/crash-restart.toml", "--dump"]));
    let dump = out.split("\ndump:\n").nth(1).expect("a dump section");
    for node in ["n1", "n2", "n3", "n4", "n5"] {
        assert!(dump.contains(&format!("  {node}: {{k")), "{node} in {dump}");
    }
}

#[test]
fn list_prints_protocols_bugs_and_scenarios_name_first() {
    let out = stdout(&simkv(&["list", "protocols"]));
    assert!(out.lines().any(|l| l.starts_with("primary ")), "{out}");
    let out = stdout(&simkv(&["list", "bugs"]));
    assert!(
        out.lines()
            .any(|l| l.starts_with("primary") && l.contains("skip-resync")),
        "{out}"
    );
    let out = stdout(&simkv(&["list", "scenarios"]));
    for name in [
        "partition",
        "freeze",
        "crash-restart",
        "flaky-network",
        "clock-skew",
        "nemesis",
    ] {
        let path = format!("scenarios/{name}.toml");
        assert!(out.lines().any(|l| l.starts_with(&path)), "{path} in {out}");
    }
    assert!(!out.contains("(invalid"), "{out}");
}
