//! The stated checks (`[checks] one_leader`, `leader_within`, `max_messages_per_op`) and the
//! leader's side of a partition, on raft: each check holds on the correct protocol and fails
//! when it should; a partition that puts the leader on the minority side makes the majority
//! elect another (Raft section 5.2).

use crate::util::{root, run_report_with, simkv, stdout, write};
use simkv_protocols::raft::Raft;
use simkv_protocols::NodeId;
use simkv_sim::checks::{CheckName, CheckResult, Verdict};
use simkv_sim::engine::{Engine, RunOutput};
use simkv_sim::report::RunReport;
use simkv_sim::scenario::{load_str, Overrides, Scenario};

const STATED: &[&str] = &[
    "checks.one_leader=true",
    "checks.leader_within=\"3s\"",
    "checks.max_messages_per_op=50",
];

fn check(report: &RunReport, name: CheckName) -> &CheckResult {
    report
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name} in {:?}", report.checks))
}

/// Stated checks are promised, and held on correct raft whatever the faults: elections under
/// partitions (section 5.2), crashes of the leader, a voter that crashes between candidates.
#[test]
fn stated_checks_hold_on_correct_raft() {
    let scenarios = [
        "scenarios/partition.toml",
        "scenarios/raft/reelection.toml",
        "scenarios/raft/failed-leader.toml",
        "scenarios/raft/vote-amnesia.toml",
        "scenarios/raft/churn.toml",
    ];
    for path in scenarios {
        for seed in 1..=3 {
            let report = run_report_with(path, "raft", seed, &[], STATED);
            for name in [
                CheckName::OneLeader,
                CheckName::LeaderWithin,
                CheckName::MessagesPerOp,
            ] {
                let c = check(&report, name);
                assert!(c.promised, "{path} seed {seed}: {name} is promised");
                assert_eq!(
                    c.verdict,
                    Verdict::Pass,
                    "{path} seed {seed}: {name}: {}",
                    c.detail
                );
            }
        }
    }
}

/// A scenario that states none of them never sees them: not in the report, not promised.
#[test]
fn unstated_checks_are_not_made() {
    let report = run_report_with("scenarios/partition.toml", "raft", 1, &[], &[]);
    let names: Vec<CheckName> = report.checks.iter().map(|c| c.name).collect();
    for name in [
        CheckName::OneLeader,
        CheckName::LeaderWithin,
        CheckName::MessagesPerOp,
    ] {
        assert!(!names.contains(&name), "{name} in {names:?}");
    }
}

/// A voter that forgets its vote in a crash elects two leaders in one term (section 5.2's
/// election safety): one_leader says who and when, as the cluster invariant does.
#[test]
fn one_leader_catches_two_leaders_of_one_term() {
    let bugs = ["vote-not-persisted"];
    // Without Pre-Vote (thesis 9.6), which keeps most of these elections from starting.
    let sets = [
        "checks.one_leader=true",
        "cluster.params.raft.pre_vote=false",
    ];
    let report = run_report_with("scenarios/raft/vote-amnesia.toml", "raft", 2, &bugs, &sets);
    let c = check(&report, CheckName::OneLeader);
    assert_eq!(c.verdict, Verdict::Fail, "{}", c.detail);
    assert!(
        c.detail
            .contains("election safety broken: n2 and n1 both led term 136"),
        "{}",
        c.detail
    );
    assert_eq!(
        report.verdict,
        simkv_sim::report::RunVerdict::Broken,
        "a stated check is a promise"
    );
}

/// A bound shorter than an election fails: on `partition.toml` the minority's candidates
/// have moved the term on (no pre-vote), so at the heal the majority's leader is deposed and
/// a new election takes an election timeout or more.
#[test]
fn leader_within_fails_when_the_bound_is_shorter_than_an_election() {
    let path = "scenarios/partition.toml";
    let short = [
        "checks.leader_within=\"1ms\"",
        "cluster.params.raft.pre_vote=false",
    ];
    let report = run_report_with(path, "raft", 1, &[], &short);
    let c = check(&report, CheckName::LeaderWithin);
    assert_eq!(c.verdict, Verdict::Fail, "{}", c.detail);
    assert!(
        c.detail
            .contains("no node led in the newest term within 1ms after the cluster was last made whole at 25s"),
        "{}",
        c.detail
    );
    let enough = ["checks.leader_within=\"2s\""];
    let report = run_report_with(path, "raft", 1, &[], &enough);
    let c = check(&report, CheckName::LeaderWithin);
    assert_eq!(c.verdict, Verdict::Pass, "{}", c.detail);
    assert!(c
        .detail
        .contains("after the cluster was last made whole at 25s"));
}

/// A cluster kept leaderless (election timeouts of a minute) fails leader_within, and so
/// does one never made whole again... which the final heal prevents; but one whose leader
/// came only after the bound fails too.
#[test]
fn leader_within_fails_on_a_cluster_kept_leaderless() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"name = "leaderless"
description = "no election for a minute"
duration = "10s"

[cluster]
protocol = "raft"
nodes = 3

[cluster.params.raft]
election_timeout = "60s..61s"

[workload]
clients = 1
timeout = "100ms"

[checks]
leader_within = "5s"
"#;
    let path = write(dir.path(), "leaderless.toml", text);
    let out = simkv(&["run", &path]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("leader_within    promised  fail     no node led in the newest term within 5s after the cluster was last made whole at 0s"),
        "{text}"
    );
}

/// The figure is the run's protocol messages over its completed operations; a bound below it
/// fails, and the detail says the figure.
#[test]
fn max_messages_per_op_fails_with_a_tiny_bound() {
    let path = "scenarios/partition.toml";
    let report = run_report_with(path, "raft", 1, &[], &["checks.max_messages_per_op=0.5"]);
    let c = check(&report, CheckName::MessagesPerOp);
    assert_eq!(c.verdict, Verdict::Fail, "{}", c.detail);
    let completed = report.ops.ok + report.ops.fail;
    let figure = report.messages.sent as f64 / completed as f64;
    let expected = format!(
        "{figure:.2} messages per completed operation ({} messages / {completed} operations), \
         at most 0.5",
        report.messages.sent
    );
    assert_eq!(c.detail, expected);
    let report = run_report_with(path, "raft", 1, &[], &["checks.max_messages_per_op=10"]);
    assert_eq!(
        check(&report, CheckName::MessagesPerOp).verdict,
        Verdict::Pass
    );
}

/// Stating checks never moves a run: same fingerprint, history and faults.
#[test]
fn stated_checks_do_not_move_the_run() {
    for path in ["scenarios/partition.toml", "scenarios/raft/churn.toml"] {
        let plain = run_report_with(path, "raft", 2, &[], &[]);
        let stated = run_report_with(path, "raft", 2, &[], STATED);
        assert_eq!(plain.fingerprint, stated.fingerprint, "{path}");
        assert_eq!(plain.ops, stated.ops, "{path}");
    }
}

// ----- the leader's side of a partition ------------------------------------------------------

/// A 5-node raft cluster, a partition at 5s putting the leader on `side`, a heal at 15s.
fn led_scenario(side: &str, if_none: Option<&str>, at: &str) -> String {
    let if_none = if_none.map_or(String::new(), |i| format!("if_none = \"{i}\"\n"));
    format!(
        r#"name = "led"
description = "the leader's side of a partition"
duration = "20s"

[cluster]
protocol = "raft"
nodes = 5

[network]
latency = {{ uniform = ["1ms", "10ms"] }}

[workload]
clients = 4
think = "10ms"
timeout = "300ms"
target = "follow-redirects"
retries = 3

[[fault]]
at = "{at}"
partition = {{ shape = "majority-minority", leader = "{side}" }}
{if_none}
[[fault]]
at = "15s"
heal = true

[checks]
one_leader = true
leader_within = "3s"
"#
    )
}

fn run(text: &str, seed: u64) -> (Scenario, RunOutput<Raft>) {
    let overrides = Overrides {
        seed: Some(seed),
        ..Overrides::default()
    };
    let scenario = load_str("led.toml", text, &overrides).unwrap_or_else(|e| panic!("{e}"));
    let output = Engine::<Raft>::new(&scenario, None).run();
    (scenario, output)
}

/// `[n1 n2 n4] | [n3 n5]` from a partition's record, as node ids.
fn groups(action: &str) -> Vec<Vec<NodeId>> {
    let start = action.find('[').expect("groups");
    let end = action.find(" (").expect("how it resolved");
    action[start..end]
        .split(" | ")
        .map(|g| {
            g.trim_matches(['[', ']'])
                .split(' ')
                .map(|n| NodeId(n[1..].parse::<u16>().unwrap() - 1))
                .collect()
        })
        .collect()
}

/// The minority and the majority of a 5-node majority-minority partition's record.
fn sides(action: &str) -> (Vec<NodeId>, Vec<NodeId>) {
    let mut g = groups(action);
    assert_eq!(g.len(), 2, "{action}");
    g.sort_by_key(Vec::len);
    assert_eq!((g[0].len(), g[1].len()), (2, 3), "{action}");
    let majority = g.pop().unwrap();
    (g.pop().unwrap(), majority)
}

/// Who led, in which term, at `at` (from the sampled role changes).
fn leaders_at(output: &RunOutput<Raft>, at: simkv_protocols::Time) -> Vec<(NodeId, u64)> {
    let mut now: Vec<Option<(bool, u64)>> = vec![None; 5];
    for c in output.roles.iter().filter(|c| c.at <= at) {
        now[c.node.index()] = c.role.map(|r| (r.leads, c.term.unwrap()));
    }
    now.iter()
        .enumerate()
        .filter_map(|(i, n)| match n {
            Some((true, term)) => Some((NodeId(i as u16), *term)),
            _ => None,
        })
        .collect()
}

/// Section 5.2: the leader cut off with a minority cannot be heard by a majority, whose
/// followers time out and elect a new leader, of a newer term, among themselves; the old one
/// goes on believing it leads until the heal. With the leader on the majority side, it
/// keeps leading and the minority cannot elect anyone.
#[test]
fn a_partition_puts_the_leader_on_the_side_it_names() {
    let at = simkv_protocols::Time::ZERO + simkv_protocols::Span::secs(5);
    let heal = simkv_protocols::Time::ZERO + simkv_protocols::Span::secs(15);
    for seed in 1..=4 {
        let (_, output) = run(&led_scenario("minority", None, "5s"), seed);
        let fault = &output.faults[0];
        assert_eq!(fault.at, at);
        let [leader] = leaders_at(&output, at)[..] else {
            panic!("seed {seed}: one leader before the partition");
        };
        assert!(
            fault.action.contains(&format!(
                "(leader {}, term {}, on the minority side)",
                leader.0, leader.1
            )),
            "{}",
            fault.action
        );
        let (minority, majority) = sides(&fault.action);
        assert!(minority.contains(&leader.0));
        // A majority-side node wins a newer term before the heal.
        let elected = output.roles.iter().find(|c| {
            c.at > at
                && c.at < heal
                && c.role.is_some_and(|r| r.leads)
                && majority.contains(&c.node)
        });
        let elected = elected.unwrap_or_else(|| panic!("seed {seed}: no new leader"));
        assert!(elected.term.unwrap() > leader.1, "seed {seed}");
        assert!(
            elected.at.since(at) < simkv_protocols::Span::secs(2),
            "seed {seed}: elected within a few election timeouts ({})",
            elected.at
        );
        // The old leader still believes it leads, cut off, until the heal.
        let before_heal = simkv_protocols::Time(heal.as_micros() - 1);
        assert!(
            leaders_at(&output, before_heal).contains(&leader),
            "seed {seed}"
        );

        let (_, output) = run(&led_scenario("majority", None, "5s"), seed);
        let fault = &output.faults[0];
        let [leader] = leaders_at(&output, at)[..] else {
            panic!("seed {seed}: one leader before the partition");
        };
        assert!(
            fault.action.contains("on the majority side"),
            "{}",
            fault.action
        );
        let (_, majority) = sides(&fault.action);
        assert!(majority.contains(&leader.0));
        let usurper = output
            .roles
            .iter()
            .find(|c| c.at > at && c.at < heal && c.role.is_some_and(|r| r.leads));
        assert_eq!(usurper, None, "seed {seed}: the leader keeps its majority");
    }
}

/// With no leader when it fires (before the first election), the fault waits for one by
/// default, is skipped with `if_none = "skip"`, and falls back to a plain majority-minority
/// with `if_none = "random"`; the record says which.
#[test]
fn a_leader_side_with_no_leader_follows_if_none() {
    let (_, output) = run(&led_scenario("minority", None, "1ms"), 1);
    let actions: Vec<&str> = output.faults.iter().map(|f| f.action.as_str()).collect();
    assert!(
        actions[0].ends_with("no node holds a role that leads now; waiting"),
        "{actions:?}"
    );
    assert!(actions[1].contains("on the minority side"), "{actions:?}");
    assert!(output.faults[1].at.as_micros() > 1_000, "{actions:?}");

    let (_, output) = run(&led_scenario("minority", Some("skip"), "1ms"), 1);
    assert!(
        output.faults[0]
            .action
            .ends_with("no node holds a role that leads now; skipped"),
        "{:?}",
        output.faults[0]
    );
    assert_eq!(output.faults[1].action, "heal: all links up");

    let (_, output) = run(&led_scenario("minority", Some("random"), "1ms"), 1);
    assert!(
        output.faults[0]
            .action
            .contains("(no node holds a role that leads now; a majority-minority drawn instead)"),
        "{:?}",
        output.faults[0]
    );
}

/// The same seed resolves the same way: the side drawn around the leader comes from the
/// faults stream.
#[test]
fn a_leader_side_is_deterministic() {
    let text = led_scenario("minority", None, "5s");
    let (_, a) = run(&text, 7);
    let (_, b) = run(&text, 7);
    assert_eq!(a.fingerprint, b.fingerprint);
    assert_eq!(a.faults, b.faults);
    assert_eq!(a.roles, b.roles);
    assert!(root().join("scenarios").exists());
}

/// Roles are sampled only when a stated check needs them or the run is traced; the trace
/// carries every change the checks see, a crash as a null role, and only changes.
#[test]
fn roles_are_sampled_when_needed_and_traced_as_they_change() {
    let path = root().join("scenarios/raft/failed-leader.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let (_, plain) = run(&text, 1);
    assert!(
        plain.roles.is_empty(),
        "nothing stated, no trace: no sampling"
    );

    let dir = tempfile::tempdir().unwrap();
    let trace_path = dir.path().join("t.jsonl");
    let scenario = load_str("f.toml", &text, &Overrides::default()).unwrap();
    let file = std::fs::File::create(&trace_path).unwrap();
    let trace = simkv_sim::trace::Trace::new(Box::new(std::io::BufWriter::new(file)));
    let traced = Engine::<Raft>::new(&scenario, Some(trace)).run();
    assert_eq!(
        traced.fingerprint, plain.fingerprint,
        "sampling never moves a run"
    );
    let lines = std::fs::read_to_string(&trace_path).unwrap();
    let role_lines: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["ev"] == "role")
        .collect();
    assert_eq!(role_lines.len(), traced.roles.len());
    for (line, change) in role_lines.iter().zip(&traced.roles) {
        assert_eq!(line["t"], change.at.as_micros());
        assert_eq!(line["node"], change.node.to_string());
        assert_eq!(line["role"].as_str(), change.role.map(|r| r.name));
        assert_eq!(line["term"].as_u64(), change.term);
    }
    assert!(
        traced.roles.iter().any(|c| c.role.is_none()),
        "the leader's crash is a change to no role"
    );
    for node in 0..3u16 {
        let mine: Vec<_> = traced
            .roles
            .iter()
            .filter(|c| c.node == NodeId(node))
            .map(|c| (c.role.map(|r| r.name), c.term))
            .collect();
        assert!(
            mine.windows(2).all(|w| w[0] != w[1]),
            "only changes: {mine:?}"
        );
    }
}
