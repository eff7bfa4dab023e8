//! Faults aimed at roles and sets, resolved when they fire (issue: faults that find bugs
//! nobody scripted). Raft's roles are those of Raft section 5.1 (follower, candidate,
//! leader); terms are section 5.1's logical clock.

use crate::util::{run_report, run_report_with, write};
use simkv_sim::report::{FaultLine, RunReport};

const HEAD: &str = r#"name = "targets"
description = "faults aimed at roles and sets"
duration = "3s"

[cluster]
protocol = "raft"
nodes = 5

[workload]
retries = 3
"#;

fn run(dir: &tempfile::TempDir, faults: &str, seed: u64) -> RunReport {
    let path = write(dir.path(), "s.toml", &format!("{HEAD}\n{faults}"));
    run_report(&path, "raft", seed, &[])
}

/// The fault lines (not the final heal) whose origin is line `line` of the file.
fn from_line(report: &RunReport, line: usize) -> Vec<&FaultLine> {
    let at = format!("s.toml:{line}:");
    report
        .faults
        .iter()
        .filter(|f| f.origin.contains(&at))
        .collect()
}

/// The nodes a fault line's action hit (`crash n1; crash n2 (skipped: ...)` hit n1), in order.
fn nodes_acted_on(text: &str) -> Vec<String> {
    let is_node =
        |w: &str| w.len() > 1 && w.starts_with('n') && w[1..].bytes().all(|b| b.is_ascii_digit());
    text.split("; ")
        .filter(|part| !part.contains("(skipped"))
        .filter_map(|part| part.split(" (").next()?.split(' ').find(|w| is_node(w)))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_leader_aimed_crash_hits_the_leader_of_the_moment_and_says_which() {
    let dir = tempfile::tempdir().unwrap();
    for seed in 1..=5 {
        let report = run(
            &dir,
            "[[fault]]\nat = \"1s\"\ncrash = \"leader\"\nfor = \"500ms\"\n",
            seed,
        );
        let lines = from_line(&report, 13);
        assert_eq!(
            lines.len(),
            2,
            "the crash and its undo: {:?}",
            report.faults
        );
        let crash = &lines[0].action;
        let hit = nodes_acted_on(crash);
        assert_eq!(hit.len(), 1, "{crash}");
        // The record names the role, the node it resolved to and the leader's term.
        assert!(
            crash.contains(&format!("(leader: {}, term ", hit[0])),
            "seed {seed}: {crash}"
        );
        assert!(
            lines[1].action.starts_with(&format!("restart {}", hit[0])),
            "{:?}",
            lines[1]
        );
        assert!((lines[0].at_ms - 1000.0).abs() < 1e-9);
    }
}

#[test]
fn with_no_leader_a_fault_waits_skips_or_falls_back_as_the_scenario_says() {
    let dir = tempfile::tempdir().unwrap();
    // At 0 ms no election has finished: no node holds the leader role.
    let wait = run(
        &dir,
        "[[fault]]\nat = \"0ms\"\ncrash = \"leader\"\nif_none = \"wait\"\n",
        7,
    );
    let lines = from_line(&wait, 13);
    assert!(
        lines[0]
            .action
            .contains("no node holds the role \"leader\" now; waiting"),
        "{lines:?}"
    );
    assert_eq!(lines[0].at_ms, 0.0);
    // Then it fires on the first leader, once.
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[1].at_ms > 0.0 && lines[1].action.contains("(leader: n"),
        "{lines:?}"
    );

    let skip = run(
        &dir,
        "[[fault]]\nat = \"0ms\"\ncrash = \"leader\"\nif_none = \"skip\"\n",
        7,
    );
    let lines = from_line(&skip, 13);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].action.ends_with("now; skipped"), "{lines:?}");
    assert!(nodes_acted_on(&lines[0].action).is_empty());

    let random = run(
        &dir,
        "[[fault]]\nat = \"0ms\"\ncrash = \"leader\"\nif_none = \"random\"\n",
        7,
    );
    let lines = from_line(&random, 13);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(nodes_acted_on(&lines[0].action).len(), 1, "{lines:?}");
    assert!(lines[0].action.contains("drawn instead"), "{lines:?}");
}

#[test]
fn sets_have_jepsens_sizes_and_role_sets_exclude_or_include_the_leader() {
    let dir = tempfile::tempdir().unwrap();
    let faults = "\
[[fault]]
at = \"1s\"
freeze = \"majority\"
for = \"10ms\"

[[fault]]
at = \"1100ms\"
freeze = \"minority\"
for = \"10ms\"

[[fault]]
at = \"1200ms\"
freeze = \"all\"
for = \"10ms\"

[[fault]]
at = \"1300ms\"
freeze = \"one\"
for = \"10ms\"

[[fault]]
at = \"1400ms\"
freeze = \"minority-third\"
for = \"10ms\"

[[fault]]
at = \"2s\"
freeze = \"all-but-leader\"
for = \"10ms\"
";
    let report = run(&dir, faults, 3);
    let first = |line: usize| from_line(&report, line)[0].action.clone();
    assert_eq!(nodes_acted_on(&first(13)).len(), 3, "majority of 5");
    assert_eq!(nodes_acted_on(&first(18)).len(), 2, "minority of 5");
    assert_eq!(nodes_acted_on(&first(23)).len(), 5, "all");
    assert_eq!(nodes_acted_on(&first(28)).len(), 1, "one");
    assert_eq!(
        nodes_acted_on(&first(33)).len(),
        1,
        "a third of 5, rounded down, at least 1"
    );
    let all_but = first(38);
    let frozen = nodes_acted_on(&all_but);
    assert_eq!(frozen.len(), 4, "{all_but}");
    // The one left out is the leader of the moment: freezing every other node leaves it
    // leading (a leader frozen at 1.2 s for 10 ms keeps its term's heartbeats going after).
    let leaders: Vec<String> = (1..=5)
        .map(|i| format!("n{i}"))
        .filter(|n| !frozen.contains(n))
        .collect();
    assert_eq!(leaders.len(), 1);
}

#[test]
fn targets_resolve_the_same_way_for_the_same_seed_and_vary_across_seeds() {
    let dir = tempfile::tempdir().unwrap();
    let faults = "[[fault]]\nat = \"500ms..2s\"\npause = [\"random\", \"a-follower\", \"leader\"]\nfor = \"100ms\"\n";
    let mut hit = std::collections::BTreeSet::new();
    let mut times = std::collections::BTreeSet::new();
    for seed in 1..=12 {
        let a = run(&dir, faults, seed);
        let b = run(&dir, faults, seed);
        assert_eq!(a.fingerprint, b.fingerprint, "seed {seed}");
        let (la, lb) = (from_line(&a, 13), from_line(&b, 13));
        assert_eq!(
            la.iter()
                .map(|f| (&f.action, f.at_ms.to_bits()))
                .collect::<Vec<_>>(),
            lb.iter()
                .map(|f| (&f.action, f.at_ms.to_bits()))
                .collect::<Vec<_>>()
        );
        hit.extend(nodes_acted_on(&la[0].action));
        times.insert(la[0].at_ms.to_bits());
        assert!((500.0..=2000.0).contains(&la[0].at_ms), "{:?}", la[0]);
    }
    assert!(hit.len() >= 3, "12 seeds aimed at only {hit:?}");
    assert!(
        times.len() >= 10,
        "12 seeds drew only {} times",
        times.len()
    );
}

#[test]
fn a_nemesis_aims_at_roles_for_a_protocol_that_has_them() {
    // Leaderless majority has only replicas: a nemesis aimed at `replica` and `majority`.
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{}\n[[nemesis]]\nkinds = [\"crash\"]\ninterval = \"300ms\"\nfault_duration = \"100ms\"\ntargets = [\"a-replica\", \"majority\"]\nmax_down = 2\n",
        HEAD.replace("raft", "majority")
    );
    let path = write(dir.path(), "n.toml", &text);
    let report = run_report_with(&path, "majority", 4, &[], &[]);
    let crashes: Vec<&FaultLine> = report
        .faults
        .iter()
        .filter(|f| f.action.starts_with("crash"))
        .collect();
    assert!(crashes.len() >= 3, "{:?}", report.faults);
    for crash in &crashes {
        let down = nodes_acted_on(&crash.action);
        assert!(down.len() <= 2, "max_down 2: {crash:?}");
        assert!(!down.is_empty() || crash.action.contains("(skipped: max_down 2)"));
        assert!(
            crash.action.contains(": a-replica: n") || crash.action.contains(": majority: n"),
            "{crash:?}"
        );
    }
}

#[test]
fn a_clock_drift_aimed_at_the_leader_runs_it_slow_then_puts_the_scenarios_rate_back() {
    let dir = tempfile::tempdir().unwrap();
    let clocks: String = (1..=5)
        .map(|i| format!("[[clock]]\nnode = \"n{i}\"\ndrift_ppm = 500\n\n"))
        .collect();
    let faults = format!(
        "{clocks}[[fault]]\nat = \"1s\"\nclock_drift = {{ node = \"leader\", ppm = -200000 }}\nfor = \"1s\"\n"
    );
    let report = run(&dir, &faults, 2);
    let lines: Vec<&FaultLine> = report
        .faults
        .iter()
        .filter(|f| f.action.starts_with("clock drift"))
        .collect();
    assert_eq!(lines.len(), 2, "{:?}", report.faults);
    let node = nodes_acted_on(&lines[0].action)[0].clone();
    assert!(
        lines[0].action.starts_with(&format!(
            "clock drift {node} now -200000ppm (leader: {node}, term "
        )),
        "{:?}",
        lines[0]
    );
    assert_eq!(
        lines[1].action,
        format!("clock drift {node} back to 500ppm")
    );
    assert!((lines[1].at_ms - 2000.0).abs() < 1e-9);

    // A clock-drift nemesis draws rates within its bound, fast and slow, and undoes each.
    let nemesis = "[[nemesis]]\nkinds = [\"clock-drift\"]\ninterval = \"100ms\"\nfault_duration = \"200ms\"\nclock_drift_max = 80000\ntargets = [\"leader\", \"a-follower\"]\n";
    let report = run(&dir, nemesis, 5);
    let rates: Vec<i64> = report
        .faults
        .iter()
        .filter_map(|f| f.action.split(" now ").nth(1))
        .map(|rest| rest.split("ppm").next().unwrap().parse().unwrap())
        .collect();
    assert!(rates.len() >= 5, "{:?}", report.faults);
    assert!(
        rates.iter().all(|r| (20_000..=80_000).contains(&r.abs())),
        "{rates:?}"
    );
    assert!(
        rates.iter().any(|r| *r < 0) && rates.iter().any(|r| *r > 0),
        "{rates:?}"
    );
    let backs = report
        .faults
        .iter()
        .filter(|f| f.action.contains("back to 0ppm"))
        .count();
    assert!(backs + 1 >= rates.len(), "{:?}", report.faults);
}

/// The nemesis lines of a report (not the final heal, nor scripted faults and their undos).
fn nemesis_lines(report: &RunReport) -> Vec<&FaultLine> {
    report
        .faults
        .iter()
        .filter(|f| f.origin == "nemesis")
        .collect()
}

/// `on_role = "candidate"`: a fault waits until some node is a candidate, so that one aimed
/// at the candidate always finds one (without it, most find none and fall back to a node
/// drawn instead).
#[test]
fn a_nemesis_on_role_fires_only_while_a_node_holds_the_role() {
    let dir = tempfile::tempdir().unwrap();
    let nemesis = "[[nemesis]]\nkinds = [\"crash\"]\ninterval = \"20ms..40ms\"\n\
                   fault_duration = \"5ms\"\ntargets = [\"candidate\"]\n";
    let (mut fired, mut fell_back) = (0, 0);
    for seed in 1..=3 {
        let timed = run(&dir, &format!("{nemesis}on_role = \"candidate\"\n"), seed);
        for line in nemesis_lines(&timed) {
            assert!(
                line.action.contains("(candidate: n"),
                "seed {seed}: fired with no candidate: {line:?}"
            );
            fired += 1;
        }
        let untimed = run(&dir, nemesis, seed);
        fell_back += nemesis_lines(&untimed)
            .iter()
            .filter(|l| l.action.contains("drawn instead"))
            .count();
    }
    assert!(fired > 0, "no fault waited for a candidate and fired");
    assert!(fell_back > 0, "the control never missed a candidate");
}

/// `on_role = "new-leader"`: a fault waits until a node takes the lead (holds it where it
/// did not, in that term, when the fault came due): nothing fires while one leader holds
/// on, and faults fire again once a crash of the leader brings a new one.
#[test]
fn a_nemesis_on_a_new_role_waits_for_a_node_to_take_it() {
    let dir = tempfile::tempdir().unwrap();
    let nemesis = "[[nemesis]]\nkinds = [\"pause\"]\ninterval = \"100ms..200ms\"\n\
                   fault_duration = \"10ms\"\ntargets = [\"a-follower\"]\n";
    let crash = "[[fault]]\nat = \"1.5s\"\ncrash = \"leader\"\nfor = \"100ms\"\n";
    let quiet = |l: &&FaultLine| l.at_ms > 800.0 && l.at_ms < 1500.0;
    for seed in 1..=3 {
        let timed = run(
            &dir,
            &format!("{crash}\n{nemesis}on_role = \"new-leader\"\n"),
            seed,
        );
        let lines = nemesis_lines(&timed);
        assert!(
            !lines.iter().any(quiet),
            "seed {seed}: a fault fired while one leader held on: {lines:?}"
        );
        assert!(
            lines.iter().any(|l| l.at_ms > 1500.0),
            "seed {seed}: nothing fired after the new election: {:?}",
            timed.faults
        );
        let untimed = run(&dir, &format!("{crash}\n{nemesis}"), seed);
        assert!(
            nemesis_lines(&untimed).iter().any(quiet),
            "seed {seed}: the control fired nothing in the quiet window"
        );
    }
}
