//! The human summary of partition.toml at a fixed seed, pinned.

use crate::util::{simkv, stdout, without_wall_time};

#[test]
fn summary_of_partition_at_seed_1_is_pinned() {
    let out = simkv(&["run", "scenarios/partition.toml", "--seed", "1", "--dump"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    insta::assert_snapshot!(without_wall_time(&stdout(&out)));
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
