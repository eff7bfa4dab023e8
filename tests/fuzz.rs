//! Issue 17: fuzzing by proptest generators of malformed input, one target per input kind
//! (scenario TOML with `--set`, EDN history, JSON history, command line). Each asserts that
//! nothing panics, that every refusal is located and readable, and that whatever is
//! accepted finishes in bounded work. Scenario and history targets run in-process through
//! the library, so they are fast; the command line runs the binary.
//!
//! CI runs a few hundred cases per target (a few seconds); `SIMKV_FUZZ_CASES=N` runs N, and
//! `SIMKV_FUZZ_SECS=S` runs batches of fresh random cases until S seconds have passed, for
//! longer runs: `SIMKV_FUZZ_SECS=600 cargo test --release --test integration -- fuzz_edn`.
//! Each target prints how many cases it ran. The corpus of interesting cases kept in
//! `tests/bad_input/` is replayed every time.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use simkv_sim::history::{History, HistoryError};
use simkv_sim::lincheck::{self, edn, Budget};
use simkv_sim::runner::{self, RunOptions};
use simkv_sim::scenario::{load_str, LoadError, Overrides};
use simkv_sim::shown::is_hidden;
use std::path::Path;
use std::time::{Duration, Instant};

fn cases(default: u32) -> u32 {
    std::env::var("SIMKV_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 200,
        ..Config::default()
    })
}

/// Runs `test` on cases drawn from `strategy`: `cases(default)` of them, or, with
/// `SIMKV_FUZZ_SECS=S`, batches of `default` fresh random cases (each batch its own random
/// seed) until S seconds have passed. Prints the count; a failing case fails the test.
fn fuzz<S: Strategy>(
    name: &str,
    default: u32,
    strategy: &S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let seconds: Option<u64> = std::env::var("SIMKV_FUZZ_SECS")
        .ok()
        .and_then(|n| n.parse().ok());
    let started = Instant::now();
    let mut ran: u64 = 0;
    match seconds {
        None => {
            runner(cases(default)).run(strategy, &test).unwrap();
            ran += u64::from(cases(default));
        }
        Some(s) => {
            while started.elapsed() < Duration::from_secs(s) {
                runner(default).run(strategy, &test).unwrap();
                ran += u64::from(default);
            }
        }
    }
    eprintln!("{name}: {ran} cases in {:?}", started.elapsed());
}

/// What hostile text is made of: extreme numbers and durations, control characters, bits
/// of TOML and EDN syntax.
const PIECES: &[&str] = &[
    "0",
    "-1",
    "1",
    "64",
    "65",
    "9223372036854775807",
    "9223372036854775808",
    "99999999999999999999",
    "1.5",
    "1e308",
    "nan",
    "inf",
    "-0",
    "\"0ms\"",
    "\"1us\"",
    "\"0s\"",
    "\"9999999999m\"",
    "\"18446744073709551615us\"",
    "\"1ms..0ms\"",
    "\"5%\"",
    "\"120%\"",
    "-1000000",
    "1000000",
    "999999",
    "\"n0\"",
    "\"n99\"",
    "\"leader\"",
    "\u{202E}",
    "\0",
    "\u{1b}[31m",
    "\u{feff}",
    "[",
    "]",
    "{",
    "}",
    "[[",
    "]]",
    "=",
    ",",
    "\"",
    "'",
    "\n",
    "#",
    ";",
    ":",
    ":nemesis",
    ":process",
    "nil",
    "true",
    "\"\"",
    "\\",
    "#_",
    "#inst",
    "..",
    "\u{ff}",
    "é",
    "\r\n",
    "\t",
];

/// A mutation of a text: insert a piece, replace a range with it, delete a range, or
/// repeat a line.
#[derive(Clone, Debug)]
enum Edit {
    Insert(usize, String),
    Replace(usize, usize, String),
    Delete(usize, usize),
    Repeat(usize),
}

fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(PIECES).prop_map(str::to_string),
        1 => "\\PC{0,12}",
        1 => prop::collection::vec(any::<char>(), 0..6).prop_map(|c| c.into_iter().collect()),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), piece()).prop_map(|(at, p)| Edit::Insert(at, p)),
        (any::<usize>(), 0usize..12, piece()).prop_map(|(at, n, p)| Edit::Replace(at, n, p)),
        (any::<usize>(), 0usize..40).prop_map(|(at, n)| Edit::Delete(at, n)),
        any::<usize>().prop_map(Edit::Repeat),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut t = text.to_string();
    for e in edits {
        match e {
            Edit::Insert(at, p) => splice(&mut t, *at, 0, p),
            Edit::Replace(at, n, p) => splice(&mut t, *at, *n, p),
            Edit::Delete(at, n) => splice(&mut t, *at, *n, ""),
            Edit::Repeat(line) => {
                let lines: Vec<&str> = t.lines().collect();
                if !lines.is_empty() {
                    let l = lines[line % lines.len()].to_string();
                    t.push('\n');
                    t.push_str(&l);
                }
            }
        }
    }
    t
}

/// Replaces `n` bytes at `at` (both brought onto the text's char boundaries) with `p`.
fn splice(t: &mut String, at: usize, n: usize, p: &str) {
    let floor = |t: &str, mut at: usize| {
        at = at.min(t.len());
        while !t.is_char_boundary(at) {
            at -= 1;
        }
        at
    };
    let at = floor(t, at % (t.len() + 1));
    let end = floor(t, at.saturating_add(n));
    t.replace_range(at..end, p);
}

/// A scenario refusal is located (or names the option at fault), readable and short.
fn assert_load_error(e: &LoadError, text: &str) {
    let shown = e.to_string();
    assert!(
        e.line.is_some() || e.file.starts_with("--"),
        "unlocated: {shown}\n--- text:\n{text}"
    );
    assert!(!e.message.trim().is_empty(), "empty message for:\n{text}");
    assert!(
        !e.message.chars().any(is_hidden),
        "raw control character: {shown:?}"
    );
    assert!(
        e.message.len() < 4_000,
        "{} bytes of message",
        e.message.len()
    );
    assert!(!e.message.contains("struct Raw"), "{shown}");
}

fn assert_history_error(e: &HistoryError) {
    assert!(e.line >= 1 && e.column >= 1, "unlocated: {e:?}");
    assert!(!e.message.trim().is_empty(), "{e:?}");
    assert!(
        !e.message.chars().any(is_hidden),
        "raw control character: {e:?}"
    );
}

/// Loads `text` with `sets`; an accepted scenario is run (capped at a few thousand events,
/// enough to boot every clock, node and client) and must not panic.
fn scenario_case(text: &str, sets: &[String]) {
    let overrides = Overrides {
        sets: sets.to_vec(),
        ..Overrides::default()
    };
    match load_str("fuzz.toml", text, &overrides) {
        Err(e) => assert_load_error(&e, text),
        Ok(mut s) => {
            s.max_events = s.max_events.min(5_000);
            let _ = runner::run(&s, RunOptions::default());
        }
    }
}

fn base_scenarios() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    [
        "scenarios/partition.toml",
        "scenarios/nemesis.toml",
        "scenarios/clock-skew.toml",
        "scenarios/raft/clock-drift-lease.toml",
        "scenarios/transactions.toml",
        "scenarios/cap-demo.toml",
    ]
    .iter()
    .filter_map(|p| std::fs::read_to_string(root.join(p)).ok())
    .collect()
}

const SET_KEYS: &[&str] = &[
    "duration",
    "seed",
    "max_events",
    "cluster.nodes",
    "cluster.protocol",
    "cluster.params.raft.heartbeat",
    "cluster.params.raft.election_timeout",
    "cluster.params.majority.r",
    "cluster.params.majority.w",
    "cluster.params.sloppy.n",
    "cluster.params.sloppy.r",
    "cluster.params.primary.heartbeat",
    "cluster.params.twopc.resend",
    "workload.clients",
    "workload.keys",
    "workload.think",
    "workload.rate",
    "workload.in_flight",
    "workload.mix",
    "workload.timeout",
    "workload.key_distribution",
    "network.drop",
    "network.latency",
    "nemesis.interval",
    "nemesis.kinds",
    "clock",
    "fault.0.at",
    "checks.liveness",
];

fn set_entry() -> impl Strategy<Value = String> {
    (prop::sample::select(SET_KEYS), piece()).prop_map(|(k, v)| format!("{k}={v}"))
}

#[test]
fn fuzz_scenario_toml_and_sets() {
    let bases = base_scenarios();
    assert!(bases.len() >= 4);
    let strategy = (
        0..bases.len(),
        prop::collection::vec(edit(), 0..6),
        prop::collection::vec(set_entry(), 0..3),
    );
    fuzz(
        "fuzz_scenario_toml_and_sets",
        300,
        &strategy,
        |(base, edits, sets)| {
            scenario_case(&apply(&bases[base], &edits), &sets);
            Ok(())
        },
    );
}

const EDN: &str = r#"{:type :invoke, :f :write, :value 1, :process 0, :time 1}
{:type :ok, :f :write, :value 1, :process 0, :time 2}
{:type :info, :f :start, :value nil, :process :nemesis}
{:type :invoke, :f :cas, :value [1 2], :process 1, :time 3}
{:type :invoke, :f :read, :value nil, :process 2, :time 4}
{:type :fail, :f :cas, :value [1 2], :process 1, :time 5}
{:type :ok, :f :read, :value 1, :process 2, :time 6}
; a comment
{:type :invoke, :f :write, :value 3, :process 3}
{:type :info, :f :write, :value 3, :process 3}
"#;

/// A small budget: the fuzz is about malformed input, not hard searches.
fn budget() -> Budget {
    Budget {
        deadline: Some(Duration::from_millis(500)),
        max_steps: 200_000,
        ..Budget::default()
    }
}

fn edn_case(text: &str) {
    let history = match edn::parse(text) {
        Ok(h) => h,
        Err(e) => return assert_history_error(&e),
    };
    let model = edn::guess_model(&history);
    match edn::prepare(&history, model, None) {
        Ok(p) => {
            let _ = lincheck::check_prepared(p, &budget());
        }
        Err(e) => assert_history_error(&e),
    }
}

#[test]
fn fuzz_edn_histories() {
    fuzz(
        "fuzz_edn_histories",
        300,
        &prop::collection::vec(edit(), 0..8),
        |edits| {
            edn_case(&apply(EDN, &edits));
            Ok(())
        },
    );
}

fn json_base() -> String {
    let text = "name = \"t\"\ndescription = \"d\"\nduration = \"300ms\"\n\
                [cluster]\nprotocol = \"majority\"\nnodes = 3\n\
                [workload]\nclients = 2\nmix = { get = 1, put = 1, cas = 1, append = 1 }\n";
    let s = load_str("t.toml", text, &Overrides::default()).expect("loads");
    let mut json = runner::run(&s, RunOptions::default()).history.to_json();
    json.truncate(json.len().min(6_000));
    // Cut back to a whole record and close the array again.
    let end = json.rfind("},").map_or(json.len(), |i| i + 1);
    json.truncate(end);
    json.push_str("\n]");
    json
}

fn json_case(text: &str) {
    match History::from_json(text) {
        Ok(h) => match lincheck::prepare_simkv(&h) {
            Ok(p) => {
                let _ = lincheck::check_prepared(p, &budget());
            }
            Err(e) => assert_history_error(&e),
        },
        Err(e) => assert_history_error(&e),
    }
}

#[test]
fn fuzz_json_histories() {
    let base = json_base();
    assert!(History::from_json(&base).is_ok(), "{base}");
    fuzz(
        "fuzz_json_histories",
        300,
        &prop::collection::vec(edit(), 0..8),
        |edits| {
            json_case(&apply(&base, &edits));
            Ok(())
        },
    );
}

const ARGS: &[&str] = &[
    "run",
    "check",
    "sweep",
    "compare",
    "shrink",
    "replay",
    "list",
    "S",
    "H.edn",
    "H.json",
    "E.edn",
    "--seed",
    "--seeds",
    "--jobs",
    "--set",
    "--protocol",
    "--bug",
    "--trace",
    "--history",
    "--save-replay",
    "--timeout",
    "--model",
    "--json",
    "--explain",
    "--force",
    "--out",
    "report",
    "H.edn",
    "--expect",
    "--until-broken",
    "--for",
    "0",
    "-1",
    "1",
    "1..3",
    "9223372036854775808",
    "18446744073709551616",
    "raft",
    "paxos",
    "kv",
    "out",
    "./out",
    "S",
    "",
    "\u{202E}",
    "workload.clients=0",
    "duration=1s",
    "x=",
    "=",
    "1s",
    "nan",
];

/// Runs the binary in `dir`; a run longer than `limit` is a failure (it is killed).
fn run_cli(dir: &Path, args: &[String], limit: Duration) -> (Option<i32>, String) {
    // `SIMKV_FUZZ_BIN` runs a copy of the binary, so that a long run survives a rebuild.
    let bin =
        std::env::var("SIMKV_FUZZ_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_simkv").into());
    let mut child = std::process::Command::new(bin)
        .args(args)
        .current_dir(dir)
        .env_remove("SIMKV_PERTURB")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("simkv runs");
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("waits") {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            return (status.code(), err);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("simkv {args:?} ran past {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn fuzz_command_lines() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = "name = \"t\"\ndescription = \"d\"\nduration = \"500ms\"\n\
                    [cluster]\nprotocol = \"primary\"\nnodes = 3\n";
    std::fs::write(dir.path().join("S"), scenario).unwrap();
    std::fs::write(dir.path().join("H.edn"), EDN).unwrap();
    std::fs::write(dir.path().join("H.json"), "[]").unwrap();
    std::fs::write(dir.path().join("E.edn"), "").unwrap();
    let strategy = prop::collection::vec(prop::sample::select(ARGS), 1..7);
    fuzz("fuzz_command_lines", 60, &strategy, |args| {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let (code, err) = run_cli(dir.path(), &args, Duration::from_secs(60));
        prop_assert!(!err.contains("panicked"), "{args:?}: {err}");
        prop_assert!(
            matches!(code, Some(0..=3)),
            "{args:?}: exit {code:?}: {err}"
        );
        Ok(())
    });
}

/// The corpus: hostile inputs found or named by issue 17, each refused with exit 2 and a
/// location, replayed every run. A scenario is `*.toml` (its first line may be a `# set:
/// KEY=VALUE` entry to apply), a history `*.edn` or `*.json`.
#[test]
fn fuzz_corpus_is_refused_with_a_location() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_input");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    for path in files {
        let bytes = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        match ext {
            "toml" => {
                let sets: Vec<String> = text
                    .lines()
                    .next()
                    .and_then(|l| l.strip_prefix("# set: "))
                    .map(|s| vec![s.to_string()])
                    .unwrap_or_default();
                let overrides = Overrides {
                    sets,
                    ..Overrides::default()
                };
                let e = load_str(&name, &text, &overrides)
                    .err()
                    .unwrap_or_else(|| panic!("{name}: accepted"));
                assert_load_error(&e, &text);
            }
            "edn" => {
                let r = edn::parse(&text).and_then(|h| {
                    let model = edn::guess_model(&h);
                    edn::prepare(&h, model, None)
                });
                match r {
                    Err(e) => assert_history_error(&e),
                    Ok(p) => {
                        let out = lincheck::check_prepared(p, &budget());
                        assert_eq!(
                            out.ops, 0,
                            "{name}: judged; the CLI refuses only empty ones"
                        );
                    }
                }
            }
            "json" => {
                let r = History::from_json(&text).and_then(|h| lincheck::prepare_simkv(&h));
                match r {
                    Err(e) => assert_history_error(&e),
                    Ok(p) => assert_eq!(lincheck::check_prepared(p, &budget()).ops, 0, "{name}"),
                }
            }
            _ => panic!("{name}: unknown corpus file"),
        }
    }
}
