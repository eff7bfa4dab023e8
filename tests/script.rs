//! Scripted workloads (`[[op]]`): the clients invoke exactly the operations written, each by
//! its process, to its node, at its time; a run's operations frozen into a script replay
//! the run; a bad `[[op]]` is refused with file, line and column.

use crate::util::{simkv, stderr, write};
use proptest::prelude::*;
use simkv_protocols::{ClientId, NodeId, Op, Time};
use simkv_sim::history::History;
use simkv_sim::runner::{run, RunOptions};
use simkv_sim::scenario::{load_str, Overrides, Scenario, ScriptedOp};
use simkv_sim::workload::frozen_script;

const HEAD: &str = r#"name = "scripted"
description = "a scripted workload"
duration = "1s"

[cluster]
protocol = "primary"
nodes = 3

[network]
latency = "1ms"
client_latency = "1ms"

[workload]
clients = 2
timeout = "200ms"
"#;

fn load(text: &str) -> Scenario {
    load_str("s.toml", text, &Overrides::default()).unwrap_or_else(|e| panic!("{e}"))
}

/// (time, process, node, operation, outcome, context) of every history event.
fn events(h: &History) -> Vec<String> {
    h.events
        .iter()
        .map(|e| {
            let outcome = e.outcome.as_ref().map(|o| format!("{o:?}"));
            let context = &e.context;
            format!(
                "{} {} {} {} {outcome:?} {context:?}",
                e.time, e.client.0, e.node, e.op
            )
        })
        .collect()
}

#[test]
fn a_script_invokes_exactly_its_operations_at_their_times() {
    let text = format!(
        "{HEAD}
[[op]]
at = \"10ms\"
process = 0
node = \"n1\"
put = {{ key = 3, value = \"x\" }}

[[op]]
at = \"10ms\"
process = 1
node = \"n2\"
get = 3

[[op]]
at = \"11ms\"
process = 0
node = \"n1\"
cas = {{ key = 3, expected = \"x\", new = \"y\" }}

[[op]]
at = \"500ms\"
process = 1
node = \"n1\"
append = {{ key = 4, value = \"z;\" }}
"
    );
    let s = load(&text);
    assert_eq!(s.workload.script.len(), 4);
    let r = run(&s, RunOptions::default());
    let invoked: Vec<String> = r
        .history
        .events
        .iter()
        .filter(|e| e.outcome.is_none())
        .map(|e| format!("{} {} {} {}", e.time, e.client.0, e.node, e.op))
        .collect();
    // The cas waits for the put (1 ms to n1 and 1 ms back, at least): process 0 has one
    // operation in flight at a time. The others go at their times.
    assert_eq!(invoked.len(), 4, "{invoked:?}");
    assert_eq!(invoked[0], "10ms 0 n1 put k3=x");
    assert_eq!(invoked[1], "10ms 1 n2 get k3");
    assert!(invoked[2].ends_with(" 0 n1 cas k3 x->y"), "{invoked:?}");
    assert_ne!(invoked[2], "11ms 0 n1 cas k3 x->y", "{invoked:?}");
    assert_eq!(invoked[3], "500ms 1 n1 append k4+=z;");
    assert_eq!(r.report.ops.invoked, 4);
    // The cas saw the put: the primary applied both.
    let cas_done = r
        .history
        .events
        .iter()
        .find(|e| e.outcome.is_some() && e.op.to_string().starts_with("cas"))
        .expect("the cas completes");
    assert!(
        format!("{:?}", cas_done.outcome).contains("Ok"),
        "{cas_done:?}"
    );
}

#[test]
fn a_script_explains_and_loads_back_to_itself() {
    let text = format!(
        "{HEAD}
[[op]]
at = \"2ms\"
process = 1
node = \"n3\"
delete = 0

[[op]]
at = \"1ms\"
process = 0
node = \"n1\"
update = {{ key = 0, value = \"a \\\"quoted\\\" value\" }}
"
    );
    let s = load(&text);
    // Sorted by time.
    assert_eq!(s.workload.script[0].at.as_micros(), 1_000);
    let again = load(&s.explain());
    assert_eq!(again.workload.script, s.workload.script);
    assert_eq!(again.explain(), s.explain());
    assert!(s.explain().contains("# scripted: the clients invoke only"));
}

/// A drawn workload's operations frozen into `[[op]]`s: the same operations at the same
/// times to the same nodes, with the same outcomes; with causal contexts, each write carries
/// what the get before it answered, as drawn; with retries, each goes where and when the
/// drawn run's went (the script makes and drops the draws a drawn workload makes).
#[test]
fn a_run_frozen_into_a_script_replays_it() {
    for (protocol, extra) in [
        ("primary", ""),
        ("raft", "mix = { txn = 1, get = 1 }\n"),
        ("majority", ""),
        ("dynamo", "contexts = true\n"),
        // Client links take 0.5-2 ms each way: some operations time out, and are retried
        // at random nodes after a backoff.
        ("primary", "timeout = \"2500us\"\nretries = 3\n"),
        ("majority", "timeout = \"3ms\"\nretries = 2\n"),
    ] {
        let text = HEAD
            .replace("\"primary\"", &format!("{protocol:?}"))
            .replace(
                "clients = 2",
                &format!("clients = 3\nkeys = 2\nthink = \"5ms..20ms\"\n{extra}"),
            );
        // The later `timeout` wins over HEAD's: TOML refuses a key twice, so drop HEAD's.
        let text = if extra.contains("timeout") {
            text.replace("timeout = \"200ms\"\n", "").replace(
                "client_latency = \"1ms\"",
                "client_latency = { uniform = [\"500us\", \"2ms\"] }",
            )
        } else {
            text
        };
        let s = load(&text);
        let drawn = run(&s, RunOptions::default());
        if extra.contains("retries") {
            let mut once = s.clone();
            once.workload.retries = 0;
            let once = run(&once, RunOptions::default());
            let differ = events(&once.history) != events(&drawn.history);
            assert!(differ, "{protocol}: no retry changed the run");
        }
        let mut scripted = s.clone();
        scripted.workload.script = frozen_script(&drawn.history);
        assert!(scripted.workload.script.len() > 50, "{protocol}");
        let scripted = load(&scripted.explain());
        let replayed = run(&scripted, RunOptions::default());
        let same = events(&replayed.history) == events(&drawn.history);
        assert!(same, "{protocol} {extra}: the script replays another run");
        assert_eq!(replayed.report.verdict, drawn.report.verdict, "{protocol}");
    }
}

fn expect_bad(op: &str, needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{HEAD}\n[[op]]\n{op}\n");
    let path = write(dir.path(), "s.toml", &text);
    let out = simkv(&["run", &path]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{op}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    for needle in needles {
        let needle = needle.replace("PATH", &path);
        assert!(err.contains(&needle), "expected {needle:?} in:\n{err}");
    }
}

#[test]
fn bad_input_in_an_op_names_line_column_and_what_was_expected() {
    let at = "at = \"1ms\"\nprocess = 0\nnode = \"n1\"\n";
    // [[op]] is line 17; its operation, after at, process and node, line 21.
    expect_bad(
        &format!("{at}get = 0\nput = {{ key = 0, value = \"v\" }}"),
        &["PATH:22:7", "one operation per [[op]]"],
    );
    expect_bad(at, &["PATH:17:1", "expected the operation"]);
    expect_bad(
        &at.replace("process = 0", "process = 2"),
        &["PATH:19:11", "history process", "from 0 to 1"],
    );
    expect_bad(
        &(at.replace("\"n1\"", "\"n4\"") + "get = 0"),
        &["PATH:20:8", "n1..n3"],
    );
    // The clients stop at the duration (1s) plus twice checks.liveness (5s by default).
    expect_bad(
        &(at.replace("\"1ms\"", "\"11s\"") + "get = 0"),
        &["PATH:18:6", "before the clients stop", "(11s)"],
    );
    expect_bad(
        &format!("{at}put = {{ key = -1, value = \"v\" }}"),
        &["PATH:21:15", "a key"],
    );
    expect_bad(
        &format!("{at}put = {{ key = 1, value = \"\" }}"),
        &["PATH:21:26", "not empty"],
    );
    expect_bad(
        &format!("{at}txn = [{{ get = 0 }}]"),
        &["PATH:21:7", "transactions"],
    );
    expect_bad(
        &format!("{at}txn = [{{ get = 0, put = {{ key = 1, value = \"v\" }} }}]"),
        &["PATH:21:8", "exactly one"],
    );
}

fn cases() -> u32 {
    std::env::var("SIMKV_PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(64)
}

/// A value a script may hold: one line, not empty, any characters TOML must escape.
fn value() -> impl Strategy<Value = simkv_protocols::Value> + Clone {
    "[a-z0-9 \"\\\\'.;=#\\[\\]{}\t\u{e9}\u{1F600}]{1,12}".prop_map(simkv_protocols::Value::from)
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0u64..(i64::MAX as u64);
    let write = (key.clone(), value());
    prop_oneof![
        key.clone().prop_map(|key| Op::Get { key }),
        key.clone().prop_map(|key| Op::Delete { key }),
        write
            .clone()
            .prop_map(|(key, value)| Op::Put { key, value }),
        write
            .clone()
            .prop_map(|(key, value)| Op::Update { key, value }),
        write.prop_map(|(key, value)| Op::Append { key, value }),
        (key, value(), value()).prop_map(|(key, expected, new)| Op::Cas { key, expected, new }),
        prop::collection::vec(
            prop_oneof![
                (0u64..100).prop_map(|key| Op::Get { key }),
                (0u64..100, value()).prop_map(|(key, value)| Op::Put { key, value }),
                (0u64..100, value()).prop_map(|(key, value)| Op::Append { key, value }),
            ],
            1..4
        )
        .prop_map(|ops| Op::Txn { ops }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// Any script, explained, loads back to itself (sorted by time, stable), and runs.
    #[test]
    fn any_script_explains_and_loads_back_to_itself(
        ops in prop::collection::vec((0u64..11_000_000, 0u32..4, 0u16..3, op()), 1..12)
    ) {
        let text = HEAD
            .replace("\"primary\"", "\"raft\"")
            .replace("clients = 2", "clients = 2\nin_flight = 2");
        let mut s = load(&text);
        s.workload.script = ops
            .into_iter()
            .map(|(at, process, node, op)| ScriptedOp {
                at: Time(at),
                process: ClientId(process),
                node: NodeId(node),
                op,
            })
            .collect();
        s.workload.script.sort_by_key(|o| o.at);
        let again = load(&s.explain());
        prop_assert_eq!(&again.workload.script, &s.workload.script);
        prop_assert_eq!(again.explain(), s.explain());
        let r = run(&again, RunOptions::default());
        prop_assert!(r.report.ops.invoked <= s.workload.script.len() as u64);
    }
}
