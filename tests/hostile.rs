//! Issue 17: hostile input, one test per category. Each bad input exits 2 with a location
//! and a readable message; none panics, runs away or gets a verdict it did not earn.

use crate::util::{simkv, stderr, write};
use std::path::Path;

const GOOD: &str = r#"name = "t"
description = "test"
duration = "2s"

[cluster]
protocol = "primary"
nodes = 3
"#;

/// Runs simkv, expects exit 2 without a panic and every needle in stderr; returns stderr.
fn bad(args: &[&str], needles: &[&str]) -> String {
    let out = simkv(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "args {args:?}\nstderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    for needle in needles {
        assert!(err.contains(needle), "expected {needle:?} in:\n{err}");
    }
    err
}

fn scenario(dir: &Path, extra: &str) -> String {
    write(dir, "s.toml", &format!("{GOOD}{extra}"))
}

#[test]
fn hostile_clock_drift_is_refused_at_load_not_asserted_in_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let path = scenario(
        dir.path(),
        "\n[[clock]]\nnode = \"n1\"\ndrift_ppm = -1000000\n",
    );
    bad(
        &["run", &path],
        &[&format!("{path}:11:13"), "-500000 to 500000"],
    );
    let path = scenario(
        dir.path(),
        "\n[[fault]]\nat = \"1s\"\nclock_drift = { node = \"n1\", ppm = 1000000 }\n",
    );
    bad(&["run", &path], &[&format!("{path}:11:"), "500000"]);
    let path = scenario(dir.path(), "");
    let set = "clock=[{node=\"n1\",drift_ppm=-1000000}]";
    bad(&["run", &path, "--set", set], &["--set", "500000"]);
}

#[test]
fn hostile_check_never_drops_an_operation_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    for process in ["99999999999999999999", "\"a\"", "1.5"] {
        let text = format!(
            "{{:type :invoke :f :write :value 1 :process 0}}\n\
             {{:type :ok :f :write :value 1 :process 0}}\n\
             {{:type :invoke :f :read :value nil :process {process}}}\n\
             {{:type :ok :f :read :value 2 :process {process}}}\n"
        );
        let path = write(dir.path(), "h.edn", &text);
        bad(&["check", &path], &[&format!("{path}:3:1"), ":process"]);
    }
    // Knossos's documented rule: a keyword process is the nemesis, not a client.
    let text = "{:type :info :f :start :process :nemesis}\n\
                {:type :invoke :f :write :value 1 :process 0}\n\
                {:type :ok :f :write :value 1 :process 0}\n";
    let path = write(dir.path(), "n.edn", text);
    assert_eq!(simkv(&["check", &path]).status.code(), Some(0));
}

#[test]
fn hostile_empty_histories_are_errors_not_passes() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("e.edn", ""),
        ("c.edn", "; only a comment\n"),
        ("n.edn", "{:type :info :f :start :process :nemesis}\n"),
        ("e.json", "[]"),
    ] {
        let path = write(dir.path(), name, text);
        bad(&["check", &path], &["0 operations"]);
    }
}

#[test]
fn hostile_history_positions_for_json_and_invalid_utf8() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "h.json", "[\n  {\"a\": 1},\n  {\"b\": 2}]");
    bad(&["check", &path], &[&format!("{path}:2:3"), "record 0"]);
    let path = write(dir.path(), "e.json", "");
    bad(&["check", &path], &[&format!("{path}:1:1")]);
    let file = dir.path().join("u.edn");
    std::fs::write(&file, b"{:type :invoke\xff :f}").unwrap();
    let path = file.to_string_lossy().into_owned();
    bad(&["check", &path], &[&format!("{path}:1:15"), "0xff"]);
}

#[test]
fn hostile_outputs_naming_one_file_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = scenario(dir.path(), "");
    let x = dir.path().join("X");
    let dot_x = dir.path().join(".").join("X");
    let (x, dot_x) = (x.to_str().unwrap(), dot_x.to_str().unwrap());
    bad(
        &["run", &path, "--history", x, "--trace", dot_x],
        &["same file"],
    );
    assert!(
        !Path::new(x).exists(),
        "nothing is written before the refusal"
    );
    #[cfg(unix)]
    {
        let link = dir.path().join("L");
        std::os::unix::fs::symlink(x, &link).unwrap();
        let link = link.to_str().unwrap();
        bad(
            &["run", &path, "--save-replay", link, "--trace", x],
            &["same file"],
        );
    }
}

#[test]
fn hostile_messages_are_escaped_cut_and_free_of_type_names() {
    let dir = tempfile::tempdir().unwrap();
    let key = "k".repeat(100_000);
    let path = scenario(dir.path(), &format!("[workload]\n{key}\u{202E} = 1\n"));
    let err = bad(&["run", &path], &[&path]);
    assert!(err.len() < 2_000, "{} bytes echoed", err.len());
    assert!(!err.contains('\u{202E}'), "{err}");
    let path = write(dir.path(), "nul.toml", &format!("{GOOD}# a\0b\n"));
    let err = bad(&["run", &path], &[&format!("{path}:8:")]);
    assert!(!err.contains('\0') && err.lines().next().unwrap().len() > "error: ".len());
    let path = scenario(dir.path(), "");
    let err = bad(&["run", &path, "--set", "workload.mix=\"x\""], &["a table"]);
    assert!(!err.contains("RawMix"), "{err}");
}

#[test]
fn hostile_command_line_misuse_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = scenario(dir.path(), "");
    bad(
        &["sweep", &path, "--seeds", "1..2", "--jobs", "0"],
        &["--jobs"],
    );
    // A seed a scenario file cannot hold is refused on the command line too.
    bad(
        &["run", &path, "--seed", "9223372036854775808"],
        &["--seed", "9223372036854775807"],
    );
    let big = write(
        dir.path(),
        "big.toml",
        &format!("seed = 9223372036854775808\n{GOOD}"),
    );
    bad(&["run", &big], &[]);
}

#[test]
fn hostile_runaway_configurations_are_refused_at_load_with_a_location() {
    let dir = tempfile::tempdir().unwrap();
    let path = scenario(dir.path(), "");
    for (set, needle) in [
        ("cluster.params.primary.heartbeat=0ms", "at least 1ms"),
        ("cluster.params.primary.heartbeat=1us", "at least 1ms"),
        (
            "nemesis={kinds=[\"crash\"],interval=\"1us\"}",
            "nemesis interval",
        ),
        ("duration=9999999999m", "at most 86400s"),
        ("workload.keys=1000000000", "from 1 to 1000000"),
        ("workload.clients=100000", "from 1 to 10000"),
        ("workload.clients=0", "0 would test nothing"),
    ] {
        bad(&["run", &path, "--set", set], &["--set", needle]);
    }
    // Rates that cannot finish within max_events are refused with the estimate.
    let path = scenario(dir.path(), "[workload]\nclients = 10000\nthink = \"0ms\"\n");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"2s\"", "\"1000m\"");
    let path = write(dir.path(), "s.toml", &text);
    bad(
        &["run", &path],
        &[&format!("{path}:3:12"), "more than max_events"],
    );
}

#[test]
fn hostile_protocol_parameters_are_checked_by_the_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let path = scenario(dir.path(), "");
    let run = |protocol: &str, sets: &[&str], needles: &[&str]| {
        let mut args = vec!["run", &path, "--protocol", protocol];
        for s in sets {
            args.extend(["--set", s]);
        }
        bad(&args, needles);
    };
    run(
        "majority",
        &["cluster.params.majority.r=1", "cluster.params.majority.w=2"],
        &["R + W = 3 must be more than N = 3"],
    );
    run(
        "sloppy",
        &["cluster.params.sloppy.n=5"],
        &["at most the 3 nodes"],
    );
    run(
        "sloppy",
        &["cluster.params.sloppy.n=2", "cluster.params.sloppy.w=3"],
        &["w at most N = 2"],
    );
    run(
        "raft",
        &["cluster.params.raft.heartbeat=500ms"],
        &["longer than heartbeat"],
    );
    // A planted bug that breaks the arithmetic on purpose is still accepted.
    let out = simkv(&[
        "run",
        &path,
        "--protocol",
        "majority",
        "--bug",
        "weak-quorum",
    ]);
    assert_ne!(out.status.code(), Some(2), "{}", stderr(&out));
}

/// Every command with outputs shares one rule: no two outputs name one file and no output
/// names an input, after `.`, `..` and links are resolved; refused before anything runs.
#[test]
fn hostile_outputs_never_overwrite_an_input_in_any_command() {
    let dir = tempfile::tempdir().unwrap();
    let path = scenario(dir.path(), "");
    let before = std::fs::read_to_string(&path).unwrap();
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    // The scenario again, through `sub/..`.
    let roundabout = sub.join("..").join("s.toml");
    let roundabout = roundabout.to_str().unwrap();
    bad(
        &["run", &path, "--history", roundabout, "--force"],
        &["is the scenario", "never overwrites an input"],
    );
    bad(
        &["shrink", &path, "--out", &path],
        &["--out", "is the scenario being shrunk"],
    );
    bad(
        &["shrink", &path, "--out", roundabout, "--force"],
        &["is the scenario being shrunk"],
    );
    bad(
        &["sweep", &path, "--seeds", "1..2", "--out", roundabout],
        &["--out", "is the scenario"],
    );
    bad(
        &["report", &path, "--seeds", "1..=1", "--out", roundabout],
        &["--out", "is the scenario"],
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
    let history = write(dir.path(), "h.edn", "");
    bad(
        &["check", &history, "--explain", &history],
        &["--explain", "is a history being checked"],
    );
    let other = write(dir.path(), "g.edn", "");
    let dot = dir.path().join(".").join("g.edn");
    bad(
        &[
            "check",
            &history,
            &other,
            "--explain",
            dot.to_str().unwrap(),
            "--force",
        ],
        &["is a history being checked"],
    );
    #[cfg(unix)]
    {
        let link = dir.path().join("link.toml");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let link = link.to_str().unwrap();
        bad(
            &["run", &path, "--trace", link, "--force"],
            &["is the scenario"],
        );
        bad(
            &["shrink", link, "--out", &path, "--force"],
            &["is the scenario"],
        );
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
    // Two outputs of one run, through `..` and a diagram.
    let x = dir.path().join("x.svg");
    let sub_x = sub.join("..").join("x.svg");
    bad(
        &[
            "run",
            &path,
            "--history",
            sub_x.to_str().unwrap(),
            "--diagram",
            "0s..1s",
            x.to_str().unwrap(),
        ],
        &["--history", "--diagram", "same file"],
    );
    assert!(!x.exists(), "nothing is written before the refusal");
}

/// An operator command the chosen protocol lacks is refused with its location, the command
/// and the protocols that have it, unless the step says `unsupported = "ignore"`; then the
/// run goes on and its summary (and trace) says the step was ignored.
#[test]
fn hostile_operator_command_a_protocol_lacks() {
    for kind in simkv_protocols::ProtocolKind::ALL {
        for command in kind.info().operators {
            assert!(
                simkv_protocols::Operator::NAMES.contains(command),
                "{command}"
            );
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let step = "\n[[fault]]\nat = \"1s\"\noperator = { node = \"n1\", command = \"trick-value\", \
                key = 0, value = \"x\" }\n";
    let path = scenario(dir.path(), step);
    bad(
        &["run", &path],
        &[
            &format!("{path}:11:37"),
            "`primary` has no operator command `trick-value`",
            "`majority`, `sloppy`, `dynamo`, `gossip`",
            "unsupported = \"ignore\"",
        ],
    );
    // The file's protocol has it; `--protocol` picks one that does not.
    let twopc = write(
        dir.path(),
        "twopc.toml",
        &format!(
            "{}\n[[fault]]\nat = \"1s\"\noperator = {{ node = \"n1\", command = \
             \"stop-after-prepare\" }}\n",
            GOOD.replace("primary", "twopc")
        ),
    );
    bad(
        &["run", &twopc, "--protocol", "raft"],
        &[
            &format!("{twopc}:11:"),
            "`raft` (from --protocol)",
            "`twopc`",
        ],
    );
    bad(
        &[
            "run",
            &path,
            "--set",
            "fault.0.operator.unsupported=\"sometimes\"",
        ],
        &["--set", "\"refuse\"", "\"ignore\""],
    );
    // Opted in: the run goes on and says what it ignored, in the summary and the trace.
    let ignoring = step.replace(" }", ", unsupported = \"ignore\" }");
    let path = write(dir.path(), "ignoring.toml", &format!("{GOOD}{ignoring}"));
    let trace = dir.path().join("t.jsonl");
    let out = crate::util::simkv(&["run", &path, "--trace", trace.to_str().unwrap()]);
    let text = crate::util::stdout(&out);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{text}");
    assert!(
        text.contains("ignored steps (primary lacks them")
            && text.contains("operator n1: trick-value k0=x (primary has no `trick-value`)"),
        "{text}"
    );
    let traced = std::fs::read_to_string(&trace).unwrap();
    assert!(
        traced.contains("ignored operator command trick-value"),
        "the trace notes it too"
    );
    let json = crate::util::simkv(&["run", &path, "--json"]);
    assert!(crate::util::stdout(&json).contains("\"ignored\""));
    // A protocol that has the command runs it and lists nothing as ignored.
    let out = crate::util::simkv(&["run", &path, "--protocol", "majority"]);
    let text = crate::util::stdout(&out);
    assert!(!text.contains("ignored steps"), "{text}");
    assert!(text.contains("operator n1: trick-value k0=x"), "{text}");
}
