//! Replay files: `run --save-replay` writes one, `replay` re-runs it and, when the run went
//! otherwise, names the first event that differs; `run --expect` checks a fingerprint.
//!
//! The divergence tests need a run that differs on purpose: the test build's simkv has the
//! `perturb` feature (switched on by the root package's dev-dependencies), with which
//! `SIMKV_PERTURB=N` delays event N by one microsecond.

use crate::util::{simkv, simkv_env, stderr, stdout};
use serde_json::Value;
use std::path::Path;

const SCENARIO: &str = "scenarios/partition.toml";

/// Saves seed 1 of [`SCENARIO`] as a replay file in `dir`; returns its path and the run's
/// fingerprint.
fn save(dir: &Path) -> (String, String) {
    let path = dir.join("run.replay.json").to_string_lossy().into_owned();
    let out = simkv(&["run", SCENARIO, "--seed", "1", "--save-replay", &path]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let fingerprint = stdout(&out)
        .lines()
        .find_map(|l| l.strip_prefix("fingerprint: ").map(str::to_string))
        .expect("a fingerprint line");
    (path, fingerprint)
}

fn edit(path: &str, change: impl FnOnce(&mut Value)) -> String {
    let mut json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    change(&mut json);
    let edited = path.replace(".replay.json", "-edited.replay.json");
    std::fs::write(&edited, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    edited
}

fn expect_bad(args: &[&str], needles: &[&str]) {
    let out = simkv(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "args {args:?}\nstderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    for needle in needles {
        assert!(err.contains(needle), "expected {needle:?} in:\n{err}");
    }
}

#[test]
fn a_saved_run_replays_with_a_match_and_is_never_overwritten_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let (path, fingerprint) = save(dir.path());
    let out = simkv(&["replay", &path]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("replayed: fingerprint {fingerprint} matches")),
        "{}",
        stdout(&out)
    );
    // The file holds the recording: checkpoints every 256 events and the event log.
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(json["fingerprint"], fingerprint.as_str());
    let checkpoints = json["checkpoints"].as_array().unwrap();
    assert_eq!(checkpoints[0]["event"], 256);
    assert_eq!(checkpoints.last().unwrap()["hash"], fingerprint.as_str());
    assert_eq!(json["event_log"]["count"], json["events"]);

    let again = simkv(&["run", SCENARIO, "--seed", "1", "--save-replay", &path]);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
    let forced = simkv(&[
        "run",
        SCENARIO,
        "--seed",
        "2",
        "--save-replay",
        &path,
        "--force",
    ]);
    assert_eq!(forced.status.code(), Some(0), "{}", stderr(&forced));
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(json["seed"], 2);
}

/// Replays `path` with event `k` perturbed; asserts exit 1 and that event `k` is named,
/// recorded beside now, and returns stdout.
fn assert_diverges_at(path: &str, k: u64) -> String {
    let out = simkv_env(&["replay", path], &[("SIMKV_PERTURB", &k.to_string())]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}\n{}", stderr(&out));
    assert!(text.contains("replay differs: fingerprint now"), "{text}");
    assert!(
        text.contains(&format!("first differing event: #{k} at ")),
        "{text}"
    );
    // Its row: recorded, then now, each with time, party, kind and hash; now's in full.
    let row = text
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("#{k} ")))
        .unwrap_or_else(|| panic!("no row for event {k}:\n{text}"));
    assert_eq!(row.matches("hash ").count(), 2, "{row}");
    assert_eq!(row.matches("us ").count(), 2, "{row}");
    assert!(text.contains("now, in full: {"), "{text}");
    assert!(
        text.contains(&format!("events 1..={} agree", k - 1)),
        "{text}"
    );
    assert!(stderr(&out).contains(&format!("SIMKV_PERTURB={k}")));
    text
}

#[test]
fn a_perturbed_replay_names_the_first_differing_event_with_both_versions() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = save(dir.path());
    // Inside the first checkpoint's window, past it, and on a checkpoint's own event.
    for k in [3, 1000, 2048] {
        let text = assert_diverges_at(&path, k);
        // The delayed event comes 1us later, or another event takes its place: the row
        // shows two different records.
        let row = text
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("#{k} ")))
            .unwrap();
        let cells: Vec<&str> = row.split("hash ").collect();
        assert_ne!(cells[1], cells[2], "{row}");
    }
}

#[test]
fn run_expect_checks_the_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let (_, fingerprint) = save(dir.path());
    let right = simkv(&["run", SCENARIO, "--seed", "1", "--expect", &fingerprint]);
    assert_eq!(right.status.code(), Some(0), "{}", stderr(&right));
    let wrong = simkv(&[
        "run",
        SCENARIO,
        "--seed",
        "1",
        "--expect",
        "0123456789abcdef",
    ]);
    assert_eq!(wrong.status.code(), Some(1));
    let err = stderr(&wrong);
    assert!(
        err.contains(&format!(
            "fingerprint {fingerprint} is not the expected 0123456789abcdef"
        )),
        "{err}"
    );
    assert!(
        err.contains("--save-replay") && err.contains("simkv replay"),
        "{err}"
    );
    expect_bad(
        &["run", SCENARIO, "--expect", "12ab"],
        &["--expect", "16 hex digits"],
    );
}

#[test]
fn corrupt_replay_files_exit_2_naming_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = save(dir.path());

    let bad_json = dir.path().join("bad.replay.json");
    std::fs::write(
        &bad_json,
        "{\n  \"format\": \"simkv-replay/1\",\n  oops\n}\n",
    )
    .unwrap();
    let bad_json = bad_json.to_string_lossy().into_owned();
    expect_bad(&["replay", &bad_json], &[&format!("{bad_json}:3:3")]);

    let format = edit(&path, |j| j["format"] = "simkv-replay/9".into());
    expect_bad(&["replay", &format], &[&format, "simkv-replay/9"]);

    // The scenario's `nodes = 5` made a word (its line noted in the file, for the test).
    let scenario = edit(&path, |j| {
        let text = j["scenario"].as_str().unwrap().to_string();
        let line = text.lines().position(|l| l == "nodes = 5").unwrap() + 1;
        j["scenario"] = text.replacen("nodes = 5", "nodes = \"five\"", 1).into();
        j["line"] = line.into();
    });
    let line = {
        let json: Value =
            serde_json::from_str(&std::fs::read_to_string(&scenario).unwrap()).unwrap();
        json["line"].as_u64().unwrap()
    };
    expect_bad(
        &["replay", &scenario],
        &[&format!("{scenario}#scenario:{line}:9")],
    );

    let log = edit(&path, |j| j["event_log"]["data"] = "not base64!".into());
    expect_bad(&["replay", &log], &[&log, "event_log", "base64"]);

    expect_bad(&["replay", "no-such.replay.json"], &["no-such.replay.json"]);
}

#[test]
fn another_version_warns_and_a_file_without_recording_still_says_it_differs() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = save(dir.path());
    let old = edit(&path, |j| j["simkv_version"] = "0.0.1".into());
    let out = simkv(&["replay", &old]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("warning:") && stderr(&out).contains("simkv 0.0.1"),
        "{}",
        stderr(&out)
    );

    // As `sweep --out` may save a file without a recording; this run differs.
    let bare = edit(&path, |j| {
        j["checkpoints"] = Value::Array(vec![]);
        j.as_object_mut().unwrap().remove("event_log");
    });
    let out = simkv_env(&["replay", &bare], &[("SIMKV_PERTURB", "10")]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stdout(&out).contains("no checkpoints"), "{}", stdout(&out));

    // Checkpoints without the event log bound the window.
    let window = edit(&path, |j| {
        j.as_object_mut().unwrap().remove("event_log");
    });
    let out = simkv_env(&["replay", &window], &[("SIMKV_PERTURB", "300")]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("lies between 257 and 512"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn replay_json_says_whether_it_matches_and_where_a_perturbed_run_first_differs() {
    let dir = tempfile::tempdir().unwrap();
    let (path, fingerprint) = save(dir.path());
    let out = simkv(&["replay", &path, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: Value = serde_json::from_str(&stdout(&out)).expect("one JSON object");
    assert_eq!(json["matches"], true);
    assert_eq!(json["fingerprint_now"], fingerprint.as_str());
    assert_eq!(json["fingerprint_recorded"], fingerprint.as_str());
    assert_eq!(json["first_divergence"], Value::Null);
    assert_eq!(json["seed"], 1);

    let out = simkv_env(&["replay", &path, "--json"], &[("SIMKV_PERTURB", "1000")]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let json: Value = serde_json::from_str(&stdout(&out)).expect("one JSON object");
    assert_eq!(json["matches"], false);
    assert_ne!(json["fingerprint_now"], json["fingerprint_recorded"]);
    let d = &json["first_divergence"];
    assert_eq!(d["event"], 1000, "{json:#}");
    assert_eq!(d["exact"], true);
    assert!(d["agreed_through"].as_u64().unwrap() < 1000);
    assert!(d["recorded"]["kind"].is_string(), "{json:#}");
}
