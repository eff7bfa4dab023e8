//! Clients as users see them: retries back off, a client keeps several operations in flight,
//! and a client placed beside a node is cut off with its node's side of a partition.

use crate::util::{root, simkv, stderr, stdout, write};
use simkv_sim::checks::{CheckName, Verdict};
use simkv_sim::engine::Side;
use simkv_sim::history::Outcome;
use simkv_sim::runner::{run, RunOptions, RunResult};
use simkv_sim::scenario::{load_file, Overrides};
use std::collections::BTreeMap;

/// Loads `path` (relative to the root) with `protocol`, `seed` and `--set` entries, and runs it.
fn run_with(path: &str, protocol: &str, seed: u64, sets: &[&str]) -> RunResult {
    let overrides = Overrides {
        seed: Some(seed),
        protocol: Some(protocol.into()),
        bugs: Vec::new(),
        sets: sets.iter().map(|s| s.to_string()).collect(),
    };
    let full = root().join(path);
    let scenario =
        load_file(full.to_str().unwrap(), &overrides).unwrap_or_else(|e| panic!("{path}: {e}"));
    run(&scenario, RunOptions::default())
}

/// A raft cluster whose one client invokes its first operation before any leader exists
/// (elections take 150 ms or more); client links take exactly 1 ms each way.
const EARLY: &str = r#"name = "early"
description = "a client invokes before a leader exists"
duration = "2s"

[cluster]
protocol = "raft"
nodes = 3

[network]
latency = "1ms"

[workload]
clients = 1
think = "1ms"
timeout = "5s"
retries = 20
"#;

/// Every trace line of `kind` about request `request` (`c1#1`): its time in microseconds.
fn trace_times(trace: &str, kind: &str, request: &str) -> Vec<u64> {
    trace
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON line"))
        .filter(|v| v["ev"] == kind && v["request"] == request)
        .map(|v| v["t"].as_u64().expect("a time"))
        .collect()
}

/// Runs `text` through the CLI with `args`, and returns its trace.
fn traced(dir: &std::path::Path, text: &str, args: &[&str]) -> String {
    let path = write(dir, "early.toml", text);
    let trace = dir.join("early.jsonl");
    let trace = trace.to_str().unwrap();
    let mut all = vec!["run", &path, "--trace", trace, "--force"];
    all.extend_from_slice(args);
    let out = simkv(&all);
    assert!(out.status.code().is_some(), "{}", stderr(&out));
    std::fs::read_to_string(trace).expect("the trace was written")
}

#[test]
fn backoff_spaces_retries_out_before_a_leader_exists_and_stays_under_its_cap() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{EARLY}backoff = {{ base = \"10ms\", max = \"80ms\" }}\n");
    let trace = traced(dir.path(), &text, &[]);
    let requests = trace_times(&trace, "request", "c1#1");
    let replies = trace_times(&trace, "reply", "c1#1");
    assert!(requests.len() >= 5, "{requests:?}");
    // A retry is sent its wait after the refusal reached the client, and arrives 1 ms later:
    // wait = next request's arrival - refusal's arrival - 1 ms.
    let mut waits = Vec::new();
    for (n, pair) in requests.windows(2).enumerate() {
        let refusal = replies[n];
        assert!(refusal < pair[1]);
        let wait = pair[1] - refusal - 1_000;
        // The nth retry (from 1) waits between half of min(80ms, 10ms * 2^(n-1)) and all of it.
        let ceiling = (10_000u64 << n).min(80_000);
        assert!(
            (ceiling / 2..=ceiling).contains(&wait),
            "retry {} waited {wait}us, ceiling {ceiling}us: {requests:?}",
            n + 1
        );
        waits.push(wait);
    }
    // Uncapped waits never shrink; every wait stays under the cap.
    for pair in waits.windows(2).take(3) {
        assert!(pair[1] >= pair[0], "{waits:?}");
    }
    assert!(waits.iter().all(|w| *w <= 80_000), "{waits:?}");
    // Spaced out, the retries outlast the election: the operation succeeds.
    let ok = trace.lines().any(|l| {
        l.contains("\"request\":\"c1#1\"")
            && l.contains("\"ev\":\"reply\"")
            && !l.contains("not-leader")
    });
    assert!(ok, "the first operation never got an answer from a leader");
}

#[test]
fn backoff_none_retries_at_once_as_before_and_burns_its_retries() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{EARLY}backoff = \"none\"\n");
    let trace = traced(dir.path(), &text, &[]);
    let requests = trace_times(&trace, "request", "c1#1");
    // One try and 20 retries, each sent as the refusal arrives: 2 ms apart, all before any
    // leader exists, and no backoff event at all.
    assert_eq!(requests.len(), 21, "{requests:?}");
    assert!(
        requests.windows(2).all(|p| p[1] - p[0] == 2_000),
        "{requests:?}"
    );
    assert!(!trace.contains("client-retry"));
    // The default backs off: the same scenario without a `backoff` key spaces them out.
    let trace = traced(dir.path(), EARLY, &[]);
    let requests = trace_times(&trace, "request", "c1#1");
    assert!(requests.len() < 21, "{requests:?}");
    assert!(
        requests.windows(2).all(|p| p[1] - p[0] >= 2_000 + 5_000),
        "{requests:?}"
    );
}

#[test]
fn the_same_seed_gives_the_same_run_with_each_feature() {
    let features: [&[&str]; 4] = [
        &["workload.backoff={ base = \"5ms\", max = \"300ms\" }"],
        &["workload.in_flight=3"],
        &["workload.placement=colocated"],
        &[
            "workload.in_flight=2",
            "workload.placement=colocated",
            "workload.backoff={ base = \"20ms\", max = \"1s\" }",
        ],
    ];
    let mut seen = Vec::new();
    for sets in features {
        let a = run_with("scenarios/partition.toml", "raft", 4, sets);
        let b = run_with("scenarios/partition.toml", "raft", 4, sets);
        assert_eq!(a.report.fingerprint, b.report.fingerprint, "{sets:?}");
        assert_eq!(a.history.to_json(), b.history.to_json(), "{sets:?}");
        seen.push(a.report.fingerprint);
    }
    // Each feature moves the run.
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 4, "{seen:?}");
}

/// The most operations open at once, per key of `group`, over a history.
fn most_open(result: &RunResult, group: impl Fn(u32) -> u32) -> BTreeMap<u32, usize> {
    let mut open: BTreeMap<u32, usize> = BTreeMap::new();
    let mut most: BTreeMap<u32, usize> = BTreeMap::new();
    for e in &result.history.events {
        let g = group(e.client.0);
        let now = open.entry(g).or_default();
        match e.outcome {
            None => *now += 1,
            Some(_) => *now -= 1,
        }
        let n = *now;
        let m = most.entry(g).or_default();
        *m = (*m).max(n);
    }
    most
}

#[test]
fn in_flight_k_keeps_k_operations_open_per_client_and_stays_linearizable() {
    for protocol in ["raft", "majority"] {
        let sets = ["workload.in_flight=4", "workload.clients=3"];
        let result = run_with("scenarios/partition.toml", protocol, 2, &sets);
        // Twelve processes: client c's slots are c*4+0..c*4+3.
        let processes: std::collections::BTreeSet<u32> =
            result.history.events.iter().map(|e| e.client.0).collect();
        assert_eq!(processes, (0..12).collect(), "{protocol}");
        // Each process has one operation open at a time (a Jepsen process)...
        let per_process = most_open(&result, |p| p);
        assert!(per_process.values().all(|m| *m == 1), "{per_process:?}");
        // ... and each client keeps four open at once.
        let per_client = most_open(&result, |p| p / 4);
        assert_eq!(per_client, (0..3).map(|c| (c, 4)).collect(), "{protocol}");
        let lin = result
            .report
            .checks
            .iter()
            .find(|c| c.name == CheckName::Linearizability)
            .expect("a linearizability check");
        assert_eq!(lin.verdict, Verdict::Pass, "{protocol}: {}", lin.detail);
        assert!(result.report.ops.ok > 1_000, "{protocol}");
    }
}

/// Availability (ok / invoked) of operations invoked on `side`, and how many there were.
fn on_side(result: &RunResult, side: Side) -> (f64, u64) {
    let counts = result.report.measures.by_side.get(&side);
    let (ok, invoked) = counts.map_or((0, 0), |c| (c.ok, c.invoked));
    (ok as f64 / invoked.max(1) as f64, invoked)
}

#[test]
fn colocated_clients_on_the_minority_side_fail_where_outside_clients_do_not() {
    for protocol in ["majority", "raft"] {
        // Clients pick a node at random for each operation, so that both sides get many.
        let run_placed = |placement: &str| {
            let sets = [
                "workload.target=random".to_string(),
                format!("workload.placement={placement}"),
            ];
            let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
            run_with("scenarios/partition.toml", protocol, 1, &sets)
        };
        // From outside, an operation sent to the minority's nodes is refused there and
        // retried across the cut on the majority, or forwarded there: mostly available.
        let outside = run_placed("outside");
        let (availability, invoked) = on_side(&outside, Side::Minority);
        assert!(invoked > 100, "{protocol} outside: {invoked}");
        assert!(
            availability > 0.75,
            "{protocol} outside: {availability} of {invoked}"
        );
        // n1 and n2's clients (4 of 10) are cut off with them: only what they invoked just
        // before the heal completes, after it.
        let inside = run_placed("colocated");
        let (availability, invoked) = on_side(&inside, Side::Minority);
        assert!(invoked > 20, "{protocol}: {invoked}");
        assert!(
            availability < 0.2,
            "{protocol}: {availability} of {invoked}"
        );
        let (majority, _) = on_side(&inside, Side::Majority);
        assert!(majority > 0.8, "{protocol}: majority side {majority}");
        // They saw timeouts, and the promises still held.
        let timed_out = |r: &RunResult| {
            r.history
                .events
                .iter()
                .filter(|e| matches!(e.outcome, Some(Outcome::Info)))
                .count()
        };
        assert!(timed_out(&inside) > 2 * timed_out(&outside), "{protocol}");
        let kept = inside
            .report
            .checks
            .iter()
            .filter(|c| c.promised)
            .all(|c| c.verdict == Verdict::Pass);
        assert!(kept, "{protocol}");
    }
    // The shipped scenario places its clients beside the nodes.
    let shipped = run_with("scenarios/partition.toml", "majority", 1, &[]);
    let (availability, invoked) = on_side(&shipped, Side::Minority);
    assert!(
        invoked > 20 && availability < 0.2,
        "{availability} of {invoked}"
    );
}

#[test]
fn set_overrides_reach_the_new_workload_keys() {
    let sets = [
        "workload.backoff=none",
        "workload.in_flight=2",
        "workload.placement=colocated",
    ];
    let full = root().join("scenarios/partition.toml");
    let overrides = Overrides {
        sets: sets.iter().map(|s| s.to_string()).collect(),
        ..Overrides::default()
    };
    let s = load_file(full.to_str().unwrap(), &overrides).unwrap();
    assert_eq!(s.workload.backoff, simkv_sim::scenario::Backoff::None);
    assert_eq!(s.workload.in_flight, 2);
    assert_eq!(
        s.workload.placement,
        simkv_sim::scenario::Placement::Colocated
    );
    let overrides = Overrides {
        sets: vec!["workload.backoff={ base = \"1ms\", max = \"2ms\" }".into()],
        ..Overrides::default()
    };
    let s = load_file(full.to_str().unwrap(), &overrides).unwrap();
    assert_eq!(
        s.workload.backoff,
        simkv_sim::scenario::Backoff::Exponential {
            base: simkv_protocols::Span::millis(1),
            max: simkv_protocols::Span::millis(2)
        }
    );
}

/// `run --explain` output, before the run's own summary.
fn explain(path: &str, sets: &[&str]) -> String {
    let mut args = vec!["run", path, "--explain"];
    for s in sets {
        args.extend(["--set", s]);
    }
    let out = simkv(&args);
    assert!(out.status.code().is_some_and(|c| c < 2), "{}", stderr(&out));
    let text = stdout(&out);
    text.split("\nseed: ")
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn explain_prints_the_new_keys_and_loads_back_to_the_same_run() {
    let dir = tempfile::tempdir().unwrap();
    let defaults = explain("scenarios/freeze.toml", &[]);
    for line in [
        "backoff = { base = \"10ms\", max = \"1s\" }",
        "in_flight = 1",
        "placement = \"outside\"",
    ] {
        assert!(
            defaults.contains(&format!("\n{line}\n")),
            "{line}\n{defaults}"
        );
    }
    let sets = [
        "workload.backoff={ base = \"2.5ms\", max = \"750ms\" }",
        "workload.in_flight=2",
        "workload.placement=colocated",
    ];
    let explained = explain("scenarios/partition.toml", &sets);
    for line in [
        "backoff = { base = \"2.5ms\", max = \"750ms\" }",
        "in_flight = 2",
        "placement = \"colocated\"",
    ] {
        assert!(
            explained.contains(&format!("\n{line}\n")),
            "{line}\n{explained}"
        );
    }
    let path = write(dir.path(), "explained.toml", &explained);
    let again = explain(&path, &[]);
    let body = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| !l.starts_with("# source"))
            .map(|l| l.split("  # ").next().unwrap_or(l).to_string())
            .collect()
    };
    assert_eq!(body(&again), body(&explained));
    // The explained file is the same run.
    let fingerprint = |args: &[&str]| {
        let out = simkv(args);
        let text = stdout(&out);
        text.lines()
            .find_map(|l| l.strip_prefix("fingerprint: "))
            .map(str::to_string)
            .expect("a fingerprint line")
    };
    let mut direct = vec!["run", "scenarios/partition.toml"];
    for s in &sets {
        direct.extend(["--set", s]);
    }
    assert_eq!(fingerprint(&direct), fingerprint(&["run", &path]));
}

fn expect_bad(path: &str, needles: &[&str]) {
    let out = simkv(&["run", path]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for needle in needles {
        assert!(err.contains(needle), "expected {needle:?} in:\n{err}");
    }
}

#[test]
fn bad_client_settings_exit_2_with_file_line_col() {
    let dir = tempfile::tempdir().unwrap();
    let head = "name = \"t\"\ndescription = \"test\"\nduration = \"2s\"\n\n[cluster]\n\
                protocol = \"raft\"\nnodes = 3\n\n[workload]\n";
    let cases = [
        (
            "in_flight = 0\n",
            "10:13",
            "operations in flight from 1 to 64, found 0",
        ),
        (
            "backoff = { base = \"2s\", max = \"1s\" }\n",
            "10:11",
            "backoff base no longer than its max, found 2s > 1s",
        ),
        (
            "backoff = \"sometimes\"\n",
            "10:11",
            "expected \"none\" or { base",
        ),
        (
            "backoff = { base = \"10ms\" }\n",
            "10:11",
            "missing field `max`",
        ),
        ("placement = \"inside\"\n", "10:13", "`colocated`"),
    ];
    for (i, (line, at, needle)) in cases.iter().enumerate() {
        let path = write(dir.path(), &format!("s{i}.toml"), &format!("{head}{line}"));
        expect_bad(&path, &[&format!("{path}:{at}"), needle]);
    }
    // Through --set: the entry is named instead of a line.
    let out = simkv(&[
        "run",
        "scenarios/partition.toml",
        "--set",
        "workload.backoff={ base = \"5s\", max = \"1s\" }",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--set workload.backoff="),
        "{}",
        stderr(&out)
    );
}

/// Elle's `max-writes-per-key`: with one key slot and at most 4 writes per key, the clients'
/// writes land on keys 0, 1, 2, ... in turn, no key takes more than 4 writes, and an append's
/// value never holds more than 4 elements; without it, every write goes to key 0.
#[test]
fn max_writes_per_key_moves_a_slot_on_to_fresh_keys() {
    let sets = [
        "workload.keys=1",
        "workload.mix={ append = 3, get = 1 }",
        "workload.max_writes_per_key=4",
    ];
    let result = run_with("scenarios/partition.toml", "majority", 3, &sets);
    let mut writes: BTreeMap<u64, u32> = BTreeMap::new();
    let mut longest = 0;
    for e in &result.history.events {
        if e.outcome.is_none() && e.op.is_write() {
            *writes.entry(e.op.key()).or_default() += 1;
        }
        if let Some(Outcome::Ok(simkv_protocols::OpResult::Ok { value: Some(v) })) = &e.outcome {
            longest = longest.max(v.matches(';').count());
        }
    }
    assert!(
        writes.len() > 3,
        "several generations of the one slot: {writes:?}"
    );
    assert!(writes.values().all(|n| *n <= 4), "{writes:?}");
    let last = *writes.keys().last().unwrap();
    assert_eq!(
        writes.keys().copied().collect::<Vec<_>>(),
        (0..=last).collect::<Vec<_>>()
    );
    assert!(
        (1..=4).contains(&longest),
        "longest append value: {longest} elements"
    );
    let unbounded = run_with("scenarios/partition.toml", "majority", 3, &sets[..2]);
    assert!(unbounded.history.events.iter().all(|e| e.op.key() == 0));
}
