//! Same scenario + same seed = same run, byte for byte.

use crate::util::{simkv, stdout, without_wall_time};

fn run_to(dir: &std::path::Path, tag: &str, seed: &str) -> (String, Vec<u8>, Vec<u8>, Vec<u8>) {
    let trace = dir.join(format!("{tag}.trace.jsonl"));
    let json = dir.join(format!("{tag}.history.json"));
    let edn = dir.join(format!("{tag}.history.edn"));
    let out = simkv(&[
        "run",
        "scenarios/partition.toml",
        "--seed",
        seed,
        "--trace",
        trace.to_str().unwrap(),
        "--history",
        json.to_str().unwrap(),
    ]);
    assert!(out.status.code().is_some(), "no signal");
    let out_edn = simkv(&[
        "run",
        "scenarios/partition.toml",
        "--seed",
        seed,
        "--history",
        edn.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), out_edn.status.code());
    (
        without_wall_time(&stdout(&out)),
        std::fs::read(trace).unwrap(),
        std::fs::read(json).unwrap(),
        std::fs::read(edn).unwrap(),
    )
}

#[test]
fn determinism_same_seed_twice_gives_identical_summary_trace_and_histories() {
    let dir = tempfile::tempdir().unwrap();
    let a = run_to(dir.path(), "a", "42");
    let b = run_to(dir.path(), "b", "42");
    assert!(a.0.contains("fingerprint: "), "{}", a.0);
    assert_eq!(a.0, b.0, "summaries differ");
    assert!(a.1 == b.1, "traces differ");
    assert!(a.2 == b.2, "JSON histories differ");
    assert!(a.3 == b.3, "EDN histories differ");
    assert!(a.1.len() > 100_000, "the trace holds every event");
    assert!(String::from_utf8_lossy(&a.3).contains(":type :invoke"));

    let c = run_to(dir.path(), "c", "43");
    let fingerprint = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("fingerprint:"))
            .unwrap()
            .to_string()
    };
    assert_ne!(fingerprint(&a.0), fingerprint(&c.0));
    assert!(a.1 != c.1 && a.2 != c.2);
}

#[test]
fn determinism_json_report_has_the_contract_fields() {
    let out = simkv(&["run", "scenarios/freeze.toml", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    for field in [
        "scenario",
        "protocol",
        "seed",
        "fingerprint",
        "virtual_time_ms",
        "events",
        "wall_ms",
        "ops",
        "availability",
        "latency_ms",
        "messages",
        "checks",
        "replay",
    ] {
        assert!(v.get(field).is_some(), "missing {field}");
    }
    for field in ["invoked", "ok", "fail", "info"] {
        assert!(v["ops"][field].is_u64(), "ops.{field}");
    }
    for field in ["p50", "p99", "max"] {
        assert!(v["latency_ms"][field].is_number(), "latency_ms.{field}");
    }
    for field in ["sent", "delivered", "dropped", "duplicated"] {
        assert!(v["messages"][field].is_u64(), "messages.{field}");
    }
    let check = &v["checks"][0];
    for field in ["name", "promised", "verdict", "detail"] {
        assert!(check.get(field).is_some(), "checks[].{field}");
    }
    assert_eq!(v["fingerprint"].as_str().unwrap().len(), 16);
    assert_eq!(out.status.code(), Some(0), "{v}");
}

#[test]
fn determinism_a_sweep_prints_the_same_whatever_the_number_of_jobs() {
    let args = |jobs: &str| {
        let out = simkv(&[
            "sweep",
            "scenarios/freeze.toml",
            "--seeds",
            "1..=4",
            "--jobs",
            jobs,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
        stdout(&out)
    };
    let one = args("1");
    assert_eq!(
        one.lines().filter(|l| l.starts_with("seed ")).count(),
        4,
        "{one}"
    );
    assert_eq!(one, args("3"));
}

#[test]
fn determinism_every_protocol_repeats_its_run_exactly() {
    for protocol in simkv_protocols::ProtocolKind::ALL.iter().map(|p| p.name()) {
        let path = "scenarios/nemesis.toml";
        let a = crate::util::run_report(path, protocol, 7, &[]);
        let b = crate::util::run_report(path, protocol, 7, &[]);
        assert_eq!(a.fingerprint, b.fingerprint, "{protocol}");
        assert_eq!(a.ops, b.ops, "{protocol}");
        assert_eq!(a.render(false), b.render(false), "{protocol}");
        let c = crate::util::run_report(path, protocol, 8, &[]);
        assert_ne!(
            a.fingerprint, c.fingerprint,
            "{protocol}: seeds 7 and 8 differ"
        );
    }
}

/// Transactions (twopc, raft) and siblings (sloppy) repeat exactly too: their histories,
/// byte for byte, and their fingerprints.
#[test]
fn determinism_transactions_and_siblings_repeat_exactly() {
    use crate::util::run_report_with;
    let siblings = ["cluster.params.sloppy.siblings=true"];
    let runs: [(&str, &str, &[&str]); 3] = [
        ("scenarios/transactions.toml", "twopc", &[]),
        ("scenarios/transactions.toml", "raft", &[]),
        ("scenarios/cap-demo.toml", "sloppy", &siblings),
    ];
    for (path, protocol, sets) in runs {
        let a = run_report_with(path, protocol, 3, &[], sets);
        let b = run_report_with(path, protocol, 3, &[], sets);
        assert_eq!(a.fingerprint, b.fingerprint, "{protocol} on {path}");
        assert_eq!(a.render(false), b.render(false), "{protocol} on {path}");
    }
    let dir = tempfile::tempdir().unwrap();
    let history = |name: &str| {
        let file = dir.path().join(name);
        let out = simkv(&[
            "run",
            "scenarios/transactions.toml",
            "--seed",
            "3",
            "--history",
            file.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0));
        std::fs::read(file).unwrap()
    };
    assert_eq!(history("a.json"), history("b.json"));
    assert_eq!(history("a.edn"), history("b.edn"));
}
