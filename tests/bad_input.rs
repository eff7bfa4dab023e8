//! Bad input exits 2 with file:line:col and what was expected, never a panic.

use crate::util::{simkv, stderr, stdout, write};

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
        &["--trace scenarios/freeze.toml is the scenario"],
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

/// A workload with causal contexts on a protocol that takes none is refused at the
/// `contexts` line (or its `--set` entry), whether the protocol came from the file or from
/// `--protocol`; with contexts, a mix with an append is refused at its weight.
#[test]
fn bad_input_contexts_for_a_protocol_without_them() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{GOOD}\n[workload]\ncontexts = true\n");
    let path = write(dir.path(), "s.toml", &text);
    expect_bad(
        &["run", &path],
        &[&format!("{path}:10:12"), "`primary`", "`dynamo`"],
    );
    expect_bad(
        &[
            "run",
            "scenarios/dynamo-contexts.toml",
            "--protocol",
            "raft",
        ],
        &["scenarios/dynamo-contexts.toml:", "(from --protocol)"],
    );
    expect_bad(
        &[
            "run",
            "scenarios/dynamo-quorum.toml",
            "--protocol",
            "sloppy",
            "--set",
            "workload.contexts=true",
        ],
        &["workload.contexts", "`sloppy`"],
    );
    let dynamo = text.replace("primary", "dynamo");
    let append = format!("{dynamo}mix = {{ get = 1, append = 2 }}\n");
    let path = write(dir.path(), "append.toml", &append);
    expect_bad(&["run", &path], &[&format!("{path}:11:27"), "`append`"]);
    let path = write(dir.path(), "ok.toml", &dynamo);
    let out = crate::util::simkv(&["run", &path]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn bad_input_network_and_slow_faults() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("network = { drop = \"150%\" }", "11:20", "from 0% to 100%"),
        ("network = { node = \"n9\", drop = \"5%\" }", "11:20", "n9"),
        ("network = {}", "11:11", "expected at least one of"),
        (
            "slow = { node = \"n2\", factor = 0 }",
            "11:32",
            "factor from 1 to 1000",
        ),
        ("unslow = \"n4\"", "11:10", "n4"),
    ];
    for (i, (action, at, needle)) in cases.into_iter().enumerate() {
        let text = format!("{GOOD}\n[[fault]]\nat = \"1s\"\n{action}\n");
        let path = write(dir.path(), &format!("s{i}.toml"), &text);
        expect_bad(&["run", &path], &[&format!("{path}:{at}"), needle]);
    }
}

#[test]
fn network_and_slow_faults_explain_as_they_load() {
    let dir = tempfile::tempdir().unwrap();
    let faults = [
        r#"network = { node = "n3", latency = { uniform = ["10ms", "200ms"] }, drop = "10%" }"#,
        r#"network = { link = ["n1", "n2"], both_ways = true, reorder = "30%" }"#,
        r#"network = "base""#,
        r#"slow = { node = "n2", factor = 10 }"#,
        r#"unslow = "n2""#,
    ];
    let mut text = GOOD.to_string();
    for (i, fault) in faults.iter().enumerate() {
        text.push_str(&format!(
            "\n[[fault]]\nat = \"{}ms\"\n{fault}\n",
            100 * (i + 1)
        ));
    }
    // `run --explain` prints the resolved scenario, then runs it.
    let explain = |path: &str| {
        let out = simkv(&["run", path, "--explain"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let text = stdout(&out);
        text.split("\nseed: ")
            .next()
            .unwrap_or_default()
            .to_string()
    };
    let explained = explain(&write(dir.path(), "s.toml", &text));
    for fault in faults {
        assert!(
            explained.contains(&format!("\n{fault}\n")),
            "{fault}\n{explained}"
        );
    }
    let again = explain(&write(dir.path(), "again.toml", &explained));
    // Only the comments naming where things came from may differ.
    let uncommented = |text: &str| -> Vec<String> {
        let lines = text.lines().filter(|l| !l.starts_with("# source"));
        lines
            .map(|l| l.split("  # ").next().unwrap_or(l).to_string())
            .collect()
    };
    assert_eq!(uncommented(&again), uncommented(&explained));
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

#[test]
fn bad_input_unknown_role_and_a_role_the_protocol_does_not_have() {
    let dir = tempfile::tempdir().unwrap();
    // GOOD runs primary, whose roles are replica and syncing: no leader.
    let text = format!("{GOOD}\n[[fault]]\nat = \"1s\"\ncrash = \"leader\"\n");
    let path = write(dir.path(), "lacks.toml", &text);
    expect_bad(
        &["run", &path],
        &[
            &format!("{path}:11:9"),
            "a role of protocol `primary`",
            "\"leader\"",
        ],
    );
    let text = format!("{GOOD}\n[[fault]]\nat = \"1s\"\nfreeze = \"a-boss\"\n");
    let path = write(dir.path(), "unknown.toml", &text);
    expect_bad(&["run", &path], &[&format!("{path}:11:10"), "\"a-boss\""]);
    // The same target is fine for raft, which has a leader; a bad fallback is not.
    let raft = GOOD.replace("primary", "raft");
    let text = format!("{raft}\n[[fault]]\nat = \"1s\"\ncrash = \"leader\"\nif_none = \"later\"\n");
    let path = write(dir.path(), "if_none.toml", &text);
    expect_bad(
        &["run", &path],
        &[&format!("{path}:12:11"), "`wait`, `skip`, `random`"],
    );
    let text = format!("{raft}\n[[nemesis]]\nkinds = [\"crash\"]\ntargets = [\"leader\", \"primaries\", \"boss\"]\n");
    let path = write(dir.path(), "nemesis.toml", &text);
    expect_bad(&["run", &path], &[&format!("{path}:11:"), "\"boss\""]);
    // A nemesis's `on_role`: a role of the protocol, alone or as `new-ROLE`, with targets.
    let text = format!(
        "{raft}\n[[nemesis]]\nkinds = [\"crash\"]\ntargets = [\"a-follower\"]\non_role = \"new-boss\"\n"
    );
    let path = write(dir.path(), "on_role.toml", &text);
    expect_bad(
        &["run", &path],
        &[
            &format!("{path}:12:11"),
            "`new-ROLE`",
            "\"new-boss\"",
            "`candidate`",
        ],
    );
    let text = format!("{raft}\n[[nemesis]]\nkinds = [\"crash\"]\non_role = \"candidate\"\n");
    let path = write(dir.path(), "on_role_alone.toml", &text);
    expect_bad(
        &["run", &path],
        &[
            &format!("{path}:11:11"),
            "expected `targets` with `on_role`",
        ],
    );
}

#[test]
fn bad_input_in_a_swarm_points_at_the_draw() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{GOOD}\n[swarm.draw]\n\"cluster.nodse\" = [3, 5]\n");
    let path = write(dir.path(), "key.toml", &text);
    expect_bad(
        &["run", &path],
        &[
            &format!("{path}:10:19"),
            "the swarm drew `cluster.nodse=",
            "unknown field",
        ],
    );
    // A value that fails validation is reported on the seeds that draw it.
    let text = format!("{GOOD}\n[swarm.draw]\n\"cluster.nodes\" = [0]\n");
    let path = write(dir.path(), "value.toml", &text);
    expect_bad(
        &["run", &path],
        &[
            &format!("{path}:10:19"),
            "the swarm drew `cluster.nodes=0`",
            "found 0",
        ],
    );
    let text = format!("{GOOD}\n[swarm.draw]\n\"cluster.nodes\" = []\n");
    let path = write(dir.path(), "empty.toml", &text);
    expect_bad(
        &["run", &path],
        &[&format!("{path}:10:19"), "at least one value"],
    );
    let text = format!("{GOOD}\n[swarm.faults]\nkinds = [\"crash\", \"explode\"]\n");
    let path = write(dir.path(), "kind.toml", &text);
    expect_bad(&["run", &path], &[&format!("{path}:10:19"), "`explode`"]);
    let text = format!("{GOOD}\n[swarm.faults]\nkinds = [\"crash\"]\nmax_down = [9]\n");
    let path = write(dir.path(), "max_down.toml", &text);
    expect_bad(&["run", &path], &[&format!("{path}:10:"), "found 9"]);
    // A role no protocol has is refused where it is written, whatever the protocol.
    let text = format!(
        "{GOOD}\n[swarm.faults]\nkinds = [\"crash\"]\ntargets = [\"one\"]\non_role = [\"replica\", \"boss\"]\n"
    );
    let path = write(dir.path(), "on_role.toml", &text);
    expect_bad(&["run", &path], &[&format!("{path}:12:23"), "\"boss\""]);
    let text =
        format!("{GOOD}\n[swarm.faults]\nkinds = [\"crash\"]\non_role_duration = [\"5ms..1ms\"]\n");
    let path = write(dir.path(), "on_role_duration.toml", &text);
    expect_bad(
        &["run", &path],
        &[&format!("{path}:11:21"), "ends before it starts"],
    );
}

/// A leadership check on a leaderless protocol has nothing to judge: refused where it is
/// written.
#[test]
fn bad_input_leader_within_on_a_leaderless_protocol() {
    let dir = tempfile::tempdir().unwrap();
    for protocol in ["majority", "sloppy"] {
        let text = GOOD.replace("\"primary\"", &format!("\"{protocol}\""));
        let path = write(
            dir.path(),
            "s.toml",
            &format!("{text}\n[checks]\nleader_within = \"5s\"\n"),
        );
        expect_bad(
            &["run", &path],
            &[
                &format!("{path}:10:17"),
                &format!(
                    "leader_within judges leaders, but protocol `{protocol}` has no leading role"
                ),
            ],
        );
    }
    // Zero and negative bounds, on raft.
    let raft = GOOD.replace("\"primary\"", "\"raft\"");
    for (value, says) in [("\"0s\"", "longer than 0s"), ("\"-5s\"", "duration")] {
        let text = format!("{raft}\n[checks]\nleader_within = {value}\n");
        let path = write(dir.path(), "s.toml", &text);
        expect_bad(&["run", &path], &[&format!("{path}:10:17"), says]);
    }
    let text = format!("{raft}\n[checks]\nmax_messages_per_op = -2\n");
    let path = write(dir.path(), "s.toml", &text);
    expect_bad(&["run", &path], &[&format!("{path}:10:23"), "above 0"]);
}

#[test]
fn bad_input_max_writes_per_key_of_zero() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{GOOD}\n[workload]\nmax_writes_per_key = 0\n");
    let path = write(dir.path(), "s.toml", &text);
    expect_bad(
        &["run", &path],
        &[&format!("{path}:10:22"), "writes per key"],
    );
}

/// A reader that closes the pipe early (`simkv sweep ... | head -1`) ends simkv quietly, by
/// SIGPIPE as any Unix filter, never with a panic on stderr. (A sweep prints only after its
/// first seed has run, long after the pipe is closed; a quick command could fill the pipe's
/// buffer before it closes and end well.)
#[cfg(unix)]
#[test]
fn a_closed_stdout_ends_quietly() {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_simkv"))
        .args(["sweep", "scenarios/partition.toml", "--protocol", "primary"])
        .args(["--seeds", "1..=2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the simkv binary runs");
    // Closing the read end before simkv writes: its first print meets a broken pipe.
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr piped")
        .read_to_string(&mut stderr)
        .expect("stderr readable");
    let status = child.wait().expect("simkv ends");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        status.signal(),
        Some(13),
        "ended by SIGPIPE: {status:?} {stderr}"
    );
}

/// Membership changes need a protocol whose nodes can join and leave: `initial` with fewer
/// than every node, and a `join`, `leave` or `remove` fault, are refused for the others at
/// their line and column; a name twice or outside the cluster is refused too.
#[test]
fn bad_input_membership_changes_for_a_protocol_without_them() {
    let dir = tempfile::tempdir().unwrap();
    let initial = format!("{GOOD}initial = [\"n1\", \"n2\"]\n");
    let path = write(dir.path(), "i.toml", &initial);
    expect_bad(
        &["run", &path],
        &[&format!("{path}:8:11"), "expected no `initial`", "`raft`"],
    );
    for kind in ["join", "leave", "remove"] {
        let text = format!("{GOOD}\n[[fault]]\nat = \"1s\"\n{kind} = \"n3\"\n");
        let path = write(dir.path(), &format!("{kind}.toml"), &text);
        let needle = format!("expected no `{kind}` fault for protocol `primary`");
        expect_bad(&["run", &path], &[&format!("{path}:11:"), &needle]);
    }
    let twice = initial.replace("\"n1\", \"n2\"", "\"n1\", \"n1\"");
    let path = write(dir.path(), "twice.toml", &twice);
    expect_bad(&["run", &path, "--protocol", "raft"], &["found n1 twice"]);
    let unknown = initial.replace("\"n1\", \"n2\"", "\"n1\", \"n9\"");
    let path = write(dir.path(), "unknown.toml", &unknown);
    expect_bad(
        &["run", &path, "--protocol", "raft"],
        &["expected a node name n1..n3"],
    );
    let none = initial.replace("\"n1\", \"n2\"", "");
    let path = write(dir.path(), "none.toml", &none);
    expect_bad(
        &["run", &path, "--protocol", "raft"],
        &["expected at least one node"],
    );
}
