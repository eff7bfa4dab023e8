//! Bad input exits 2 with file:line:col and what was expected, never a panic.

use crate::util::{simkv, stderr, write};

fn expect_bad(args: &[&str], needles: &[&str]) {
    let out = simkv(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "args {args:?}\nstderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    for needle in needles {
        assert!(err.contains(needle), "expected {needle:?} in:\n{err}");
    }
}

const GOOD: &str = r#"name = "t"
description = "test"
duration = "2s"

[cluster]
protocol = "primary"
nodes = 3
"#;

#[test]
fn bad_input_missing_file() {
    expect_bad(
        &["run", "scenarios/no-such.toml"],
        &["scenarios/no-such.toml"],
    );
}

#[test]
fn bad_input_toml_syntax_error_names_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "s.toml",
        &format!("{GOOD}\n[workload\nclients = 3\n"),
    );
    expect_bad(&["run", &path], &[&format!("{path}:9:")]);
}

#[test]
fn bad_input_unknown_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "s.toml", &format!("{GOOD}colour = \"red\"\n"));
    expect_bad(&["run", &path], &[&format!("{path}:8:1"), "colour"]);
}

#[test]
fn bad_input_wrong_type() {
    let dir = tempfile::tempdir().unwrap();
    let text = GOOD.replace("nodes = 3", "nodes = \"three\"");
    let path = write(dir.path(), "s.toml", &text);
    expect_bad(&["run", &path], &[&format!("{path}:7:9")]);
}

#[test]
fn bad_input_partition_naming_a_node_that_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{GOOD}\n[[fault]]\nat = \"1s\"\npartition = [[\"n1\"], [\"n9\"]]\n");
    let path = write(dir.path(), "s.toml", &text);
    expect_bad(&["run", &path], &[&format!("{path}:11:"), "n9", "n1..n3"]);
}

#[test]
fn bad_input_unknown_protocol_bug_and_flag() {
    expect_bad(
        &["run", "scenarios/partition.toml", "--protocol", "paxos"],
        &["paxos", "primary"],
    );
    expect_bad(
        &["run", "scenarios/partition.toml", "--bug", "no-such-bug"],
        &["no-such-bug"],
    );
    expect_bad(
        &["run", "scenarios/partition.toml", "--seed", "minus-one"],
        &["--seed"],
    );
    expect_bad(
        &[
            "run",
            "scenarios/partition.toml",
            "--set",
            "cluster.nodes=0",
        ],
        &["--set"],
    );
    expect_bad(&["frobnicate"], &[]);
}

#[test]
fn bad_input_outputs_never_overwrite_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let existing = write(dir.path(), "h.json", "precious");
    expect_bad(
        &["run", "scenarios/freeze.toml", "--history", &existing],
        &["--force"],
    );
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "precious");
    expect_bad(
        &[
            "run",
            "scenarios/freeze.toml",
            "--trace",
            "scenarios/freeze.toml",
            "--force",
        ],
        &["scenario itself"],
    );
}

/// A workload with transactions on a protocol that does not serve them is refused, pointing
/// at the `txn` weight, whether the protocol came from the file or from `--protocol`.
#[test]
fn bad_input_txn_for_a_protocol_without_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{GOOD}\n[workload]\nmix = {{ get = 1, txn = 2 }}\n");
    let path = write(dir.path(), "s.toml", &text);
    expect_bad(
        &["run", &path],
        &[&format!("{path}:10:24"), "`primary`", "`twopc`, `raft`"],
    );
    expect_bad(
        &[
            "run",
            "scenarios/transactions.toml",
            "--protocol",
            "majority",
        ],
        &["scenarios/transactions.toml:", "(from --protocol)"],
    );
    let fine = text.replace("primary", "twopc");
    let path = write(dir.path(), "ok.toml", &fine);
    let out = crate::util::simkv(&["run", &path]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn bad_input_max_down_larger_than_the_cluster_and_a_backwards_range() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{GOOD}\n[[nemesis]]\nkinds = [\"crash\"]\nmax_down = 4\n");
    let path = write(dir.path(), "s.toml", &text);
    expect_bad(
        &["run", &path],
        &[&format!("{path}:11:12"), "from 0 to 3, found 4"],
    );
    let text = format!("{GOOD}\n[[fault]]\nat = \"1.5s..1s\"\ncrash = \"n1\"\n");
    let path = write(dir.path(), "r.toml", &text);
    expect_bad(
        &["run", &path],
        &[&format!("{path}:10:6"), "ends before it starts"],
    );
    let text = format!("{GOOD}\n[[fault]]\nat = \"1s\"\nheal = true\nfor = \"1s\"\n");
    let path = write(dir.path(), "f.toml", &text);
    expect_bad(
        &["run", &path],
        &[&format!("{path}:12:7"), "expected `for` only on a fault"],
    );
}
