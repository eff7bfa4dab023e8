//! `simkv shrink`: deterministic output, the output still fails the same check, the budget
//! holds, bad input exits 2.

use crate::util::{simkv, stderr, stdout, write};

/// A failing seed of the swarm scenario that shrinks quickly: primary without anti-entropy
/// leaves a lost forward unrepaired (convergence fails).
const INPUT: &[&str] = &[
    "scenarios/swarm.toml",
    "--protocol",
    "primary",
    "--bug",
    "no-anti-entropy",
    "--seed",
    "4",
];

fn shrink(extra: &[&str]) -> std::process::Output {
    let mut args = vec!["shrink"];
    args.extend_from_slice(INPUT);
    args.extend_from_slice(extra);
    simkv(&args)
}

/// The `runs: N of B` line of the summary.
fn runs(out: &std::process::Output) -> usize {
    let text = stderr(out);
    let line = text
        .lines()
        .find(|l| l.starts_with("runs: "))
        .expect("a runs line");
    line["runs: ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn shrinking_twice_gives_the_same_bytes_and_the_result_fails_the_same_check() {
    let first = shrink(&["--budget", "60"]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let second = shrink(&["--budget", "60"]);
    assert_eq!(first.stdout, second.stdout);
    let text = stdout(&first);
    assert!(text.contains("seed = 4\n"), "{text}");
    assert!(text.contains("bugs = [\"no-anti-entropy\"]"), "{text}");
    assert!(!text.contains("[swarm"), "swarm draws are frozen");
    let err = stderr(&first);
    assert!(err.contains("still fails: convergence"), "{err}");
    assert!(
        err.contains("before: ") && err.contains("after:  "),
        "{err}"
    );
    // The shrunk scenario replays on its own and breaks convergence.
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "shrunk.toml", &text);
    let run = simkv(&["run", &path]);
    assert_eq!(run.status.code(), Some(1), "{}", stdout(&run));
    let summary = stdout(&run);
    let line = summary
        .lines()
        .find(|l| l.trim_start().starts_with("convergence"))
        .unwrap();
    assert!(line.contains("fail"), "{line}");
}

#[test]
fn the_budget_bounds_the_candidate_runs() {
    for budget in ["0", "3"] {
        let out = shrink(&["--budget", budget]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(runs(&out) <= budget.parse().unwrap());
        assert!(stderr(&out).contains("budget spent") || budget == "0");
    }
    // Each kept step is one progress line on stderr.
    let out = shrink(&["--budget", "3"]);
    let kept = stderr(&out)
        .lines()
        .filter(|l| l.starts_with("run "))
        .count();
    assert!(kept <= 3);
}

#[test]
fn out_writes_the_file_and_never_overwrites_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.toml");
    let path = path.to_str().unwrap();
    let out = shrink(&["--budget", "2", "--out", path]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains(&format!("wrote {path}")));
    let again = shrink(&["--budget", "2", "--out", path]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("exists; pass --force"),
        "{}",
        stderr(&again)
    );
    let forced = shrink(&["--budget", "2", "--out", path, "--force"]);
    assert_eq!(forced.status.code(), Some(0), "{}", stderr(&forced));
}

#[test]
fn bad_input_exits_2_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    // A run that keeps its promises has nothing to shrink.
    let out = simkv(&["shrink", "scenarios/partition.toml", "--budget", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("breaks no promise"),
        "{}",
        stderr(&out)
    );
    // A check the run does not fail.
    let out = shrink(&["--budget", "1", "--check", "linearizability"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("does not fail `linearizability`"),
        "{}",
        stderr(&out)
    );
    // A missing file, a broken replay file, a scenario with an error.
    let out = simkv(&["shrink", "no/such.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let bad = write(dir.path(), "x.replay.json", "{\n  \"format\": 3\n}");
    let out = simkv(&["shrink", &bad]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("x.replay.json:2:"),
        "{}",
        stderr(&out)
    );
    let bad = write(dir.path(), "bad.toml", "name = \"b\"\ndescription = \"b\"\nduration = \"5s\"\n[cluster]\nprotocol = \"raft\"\nnodes = 0\n");
    let out = simkv(&["shrink", &bad]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("bad.toml:6:"), "{}", stderr(&out));
}

#[test]
fn a_replay_file_is_shrunk_like_its_scenario() {
    use simkv_sim::replay::ReplayFile;
    use simkv_sim::runner::{self, RunOptions};
    use simkv_sim::scenario::{self, Overrides};
    let overrides = Overrides {
        seed: Some(4),
        protocol: Some("primary".into()),
        bugs: vec!["no-anti-entropy".into()],
        sets: Vec::new(),
    };
    let root = crate::util::root();
    let path = root.join("scenarios/swarm.toml");
    let s = scenario::load_file(path.to_str().unwrap(), &overrides).unwrap();
    let report = runner::run(&s, RunOptions::default()).report;
    let dir = tempfile::tempdir().unwrap();
    let file = ReplayFile::of_run(&s, &report)
        .save_new(dir.path())
        .unwrap();
    let from_replay = simkv(&["shrink", file.to_str().unwrap(), "--budget", "20"]);
    assert_eq!(
        from_replay.status.code(),
        Some(0),
        "{}",
        stderr(&from_replay)
    );
    let from_toml = shrink(&["--budget", "20"]);
    // The same run, the same candidates: the same sizes after.
    let after = |o: &std::process::Output| {
        stderr(o)
            .lines()
            .find(|l| l.starts_with("after:"))
            .unwrap()
            .to_string()
    };
    assert_eq!(after(&from_replay), after(&from_toml));
}
