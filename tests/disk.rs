//! The simulated disk: storage faults load, run the same twice, and refuse bad input.

use crate::util::{run_report, simkv, stderr, stdout, without_wall_time, write};

const DISK_FAULTS: &str = "scenarios/disk-faults.toml";

/// Same seed twice with every storage fault in play (lost and torn unsynced writes, a
/// corrupted record): the same run, byte for byte, for a protocol of each family.
#[test]
fn disk_faults_same_seed_twice_is_the_same_run() {
    for protocol in ["raft", "twopc", "majority", "dynamo"] {
        let run = || {
            let out = simkv(&["run", DISK_FAULTS, "--protocol", protocol, "--seed", "7"]);
            assert!(out.status.code().is_some(), "no signal");
            without_wall_time(&stdout(&out))
        };
        let (a, b) = (run(), run());
        assert!(a.contains("fingerprint: "), "{a}");
        assert_eq!(a, b, "{protocol}: two runs of one seed differ");
    }
}

/// The faults did something: the corrupted record and the lost writes are on record.
#[test]
fn disk_faults_are_applied_and_recorded() {
    let report = run_report(DISK_FAULTS, "twopc", 1, &["ack-before-sync"]);
    let faults: Vec<&str> = report.faults.iter().map(|f| f.action.as_str()).collect();
    assert!(
        faults
            .iter()
            .any(|f| f.starts_with("disk n4 corrupt (record")),
        "{faults:?}"
    );
    assert!(
        faults
            .iter()
            .any(|f| f.starts_with("disk n1 lose-unsynced")),
        "{faults:?}"
    );
}

/// Bad storage-fault input exits 2 naming file:line:col and what was expected.
#[test]
fn bad_input_disk_faults_say_where_and_what_was_expected() {
    const GOOD: &str = "name = \"t\"\ndescription = \"test\"\nduration = \"2s\"\n\n[cluster]\nprotocol = \"raft\"\nnodes = 3\n";
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "disk = { node = \"n2\", fault = \"melt\" }",
            "11:31",
            "expected a disk fault, one of `lose-unsynced`",
        ),
        (
            "disk = { node = \"n7\", fault = \"corrupt\" }",
            "11:17",
            "n7",
        ),
        ("disk = { node = \"n2\" }", "11:8", "fault"),
    ];
    for (i, (action, at, needle)) in cases.into_iter().enumerate() {
        let text = format!("{GOOD}\n[[fault]]\nat = \"1s\"\n{action}\n");
        let path = write(dir.path(), &format!("s{i}.toml"), &text);
        let out = simkv(&["run", &path]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(err.contains(&format!("{path}:{at}")), "{at} in {err}");
        assert!(err.contains(needle), "{needle} in {err}");
    }
}

/// A bad `[disk]` section exits 2 naming file:line:col and what was expected.
#[test]
fn bad_disk_sections_say_where_and_what_was_expected() {
    const GOOD: &str = "name = \"t\"\ndescription = \"test\"\nduration = \"2s\"\n\n[cluster]\nprotocol = \"raft\"\nnodes = 3\n";
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "crash = \"corrupt\"",
            "10:9",
            "expected what a crash does to unsynced writes, one of `keep-unsynced`",
        ),
        (
            "sync = \"20s\"",
            "10:8",
            "expected a sync latency of at most 10s",
        ),
        ("sync = \"5ms..1ms\"", "10:8", "range"),
        ("fsync = \"1ms\"", "10:1", "unknown field `fsync`"),
    ];
    for (i, (line, at, needle)) in cases.into_iter().enumerate() {
        let text = format!("{GOOD}\n[disk]\n{line}\n");
        let path = write(dir.path(), &format!("s{i}.toml"), &text);
        let out = simkv(&["run", &path]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(err.contains(&format!("{path}:{at}")), "{at} in {err}");
        assert!(err.contains(needle), "{needle} in {err}");
    }
}

/// `[disk]` as the swarm draws it: syncs that take time and crashes that lose what was not
/// synced leave a correct protocol's promises kept, run the same twice, and the resolved
/// scenario says what the disk does.
#[test]
fn a_disk_section_runs_the_same_twice_and_explains_itself() {
    let sets = [
        "--set",
        "disk.crash=lose-some-unsynced",
        "--set",
        "disk.sync=1ms..3ms",
    ];
    let mut args = vec!["run", DISK_FAULTS, "--seed", "4", "--protocol", "raft"];
    args.extend(sets);
    let (a, b) = (simkv(&args), simkv(&args));
    assert_eq!(a.status.code(), Some(0), "{}", stdout(&a));
    let (a, b) = (
        without_wall_time(&stdout(&a)),
        without_wall_time(&stdout(&b)),
    );
    assert!(a.contains("fingerprint: "), "{a}");
    assert_eq!(a, b);
    let mut explain = args.clone();
    explain.push("--explain");
    let text = String::from_utf8(simkv(&explain).stdout).unwrap();
    assert!(
        text.contains("[disk]\ncrash = \"lose-some-unsynced\"\nsync = \"1ms..3ms\"\n"),
        "{text}"
    );
}
