//! `simkv sweep`'s bug-hunting flags, each run as a separate process: --shard and --merge,
//! --out (never overwriting), --json and its exit codes, --until-broken, --for, and bad input.

use crate::util::{simkv, stderr, stdout, write};
use proptest::prelude::*;
use serde_json::Value;
use std::path::Path;

/// A short primary run with a crash and a restart on a lossy network: with the planted bug
/// `skip-resync` (a restarted node never pulls state from its peers) about half its seeds
/// leave the replicas diverged (seeds 1, 3, 4, 6, 8, 9, 12 of 1..=12), the rest keep every
/// promise; each seed runs in a few tens of milliseconds.
const TINY: &str = r#"
name = "tiny-crash"
description = "3 nodes; n2 crashes at 1s and restarts at 2s"
duration = "4s"

[cluster]
protocol = "primary"
nodes = 3

[network]
drop = "5%"

[workload]
clients = 8
keys = 20

[[fault]]
at = "1s"
crash = "n2"

[[fault]]
at = "2s"
restart = "n2"
"#;

const BUG: [&str; 2] = ["--bug", "skip-resync"];

/// Runs `simkv sweep SCENARIO args...`.
fn sweep(scenario: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["sweep", scenario];
    all.extend_from_slice(args);
    simkv(&all)
}

fn json(out: &std::process::Output) -> Value {
    serde_json::from_str(&stdout(out))
        .unwrap_or_else(|e| panic!("one JSON object: {e}\n{}", stdout(out)))
}

/// `(seed, fingerprint, failed checks)` of each entry of a summary's `broken` or `unknown`.
fn entries(summary: &Value, field: &str) -> Vec<(u64, String, Vec<String>)> {
    summary[field]
        .as_array()
        .unwrap_or_else(|| panic!("{field} is a list: {summary}"))
        .iter()
        .map(|e| {
            let checks = e["failed_checks"].as_array().unwrap();
            (
                e["seed"].as_u64().unwrap(),
                e["fingerprint"].as_str().unwrap().to_string(),
                checks.iter().map(|c| c.as_str().unwrap().into()).collect(),
            )
        })
        .collect()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn sweep_shards_run_as_separate_processes_merge_into_the_unsharded_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "tiny.toml", TINY);
    let whole = sweep(&scenario, &[BUG[0], BUG[1], "--seeds", "1..=12", "--json"]);
    assert_eq!(whole.status.code(), Some(1), "{}", stderr(&whole));
    let whole = json(&whole);
    assert_eq!(whole["seeds_run"], 12);
    assert!(!entries(&whole, "broken").is_empty(), "{whole}");
    let mut dirs = Vec::new();
    for i in 1..=3 {
        let out_dir = dir.path().join(format!("d{i}"));
        let shard = format!("{i}/3");
        let out = sweep(
            &scenario,
            &[
                BUG[0],
                BUG[1],
                "--seeds",
                "1..=12",
                "--shard",
                &shard,
                "--out",
                out_dir.to_str().unwrap(),
            ],
        );
        assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
        // Shard i runs the seeds i, i+3, ...: each seed's line, in order.
        let seeds: Vec<u64> = stdout(&out)
            .lines()
            .filter_map(|l| {
                l.strip_prefix("seed ")?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .collect();
        assert_eq!(seeds, (i..=12).step_by(3).collect::<Vec<u64>>());
        dirs.push(out_dir.to_str().unwrap().to_string());
    }
    let mut args = vec!["sweep", "--merge"];
    args.extend(dirs.iter().map(String::as_str));
    args.push("--json");
    let merged = simkv(&args);
    assert_eq!(merged.status.code(), Some(1), "{}", stderr(&merged));
    let merged = json(&merged);
    assert_eq!(merged["seeds_run"], 12);
    assert_eq!(merged["kept"], whole["kept"]);
    assert_eq!(entries(&merged, "broken"), entries(&whole, "broken"));
    assert_eq!(entries(&merged, "unknown"), entries(&whole, "unknown"));
    assert_eq!(merged["merged"].as_array().unwrap().len(), 3);
    // Every broken seed's replay file was saved by its shard and is named in the merge.
    for e in merged["broken"].as_array().unwrap() {
        let file = e["replay_file"].as_str().expect("a replay file");
        assert!(Path::new(file).is_file(), "{file}");
        let seed = e["seed"].as_u64().unwrap();
        let shard = (seed - 1) % 3 + 1;
        assert!(file.starts_with(&dirs[shard as usize - 1]), "{file}");
    }
    // Moved elsewhere (as a CI artifact is), a shard's replay files are named where they are.
    let moved = dir.path().join("moved");
    std::fs::rename(&dirs[0], &moved).unwrap();
    let again = simkv(&[
        "sweep",
        "--merge",
        moved.to_str().unwrap(),
        &dirs[1],
        &dirs[2],
        "--json",
    ]);
    let seed_1 = &json(&again)["broken"][0];
    assert_eq!(seed_1["seed"], 1);
    let file = seed_1["replay_file"].as_str().unwrap();
    assert!(
        file.starts_with(moved.to_str().unwrap()) && Path::new(file).is_file(),
        "{file}"
    );
    std::fs::rename(&moved, &dirs[0]).unwrap();
    // The text form lists the broken seeds and the same count line as a whole sweep.
    let text = simkv(&["sweep", "--merge", &dirs[0], &dirs[1], &dirs[2]]);
    assert_eq!(text.status.code(), Some(1));
    let broken: Vec<u64> = entries(&whole, "broken").iter().map(|e| e.0).collect();
    let line = format!(
        "merged shards 1/3 2/3 3/3 of seeds 1..=12 (12 seeds run): {} broken {broken:?}, 0 unknown []",
        broken.len()
    );
    assert!(stdout(&text).contains(&line), "{}", stdout(&text));
}

#[test]
fn sweep_out_never_overwrites_what_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "tiny.toml", TINY);
    let out_dir = dir.path().join("out");
    let out_arg = out_dir.to_str().unwrap();
    let args = [BUG[0], BUG[1], "--seeds", "1..=4", "--out", out_arg];
    let first = sweep(&scenario, &args);
    assert_eq!(first.status.code(), Some(1), "{}", stderr(&first));
    let before: Vec<(String, Vec<u8>)> = files_in(&out_dir)
        .into_iter()
        .map(|n| {
            let bytes = std::fs::read(out_dir.join(&n)).unwrap();
            (n, bytes)
        })
        .collect();
    let names: Vec<&str> = before.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "seed-1-primary-skip-resync.replay.json",
            "seed-3-primary-skip-resync.replay.json",
            "seed-4-primary-skip-resync.replay.json",
            "summary.json",
        ]
    );
    // Each saved seed's line names its file; the summary's path is printed last.
    let text = stdout(&first);
    let saved = out_dir.join("seed-3-primary-skip-resync.replay.json");
    assert!(
        text.lines()
            .any(|l| l.starts_with("seed 3 ") && l.ends_with(saved.to_str().unwrap())),
        "{text}"
    );
    let summary = out_dir.join("summary.json");
    assert!(
        text.ends_with(&format!("summary: {}\n", summary.display())),
        "{text}"
    );

    let second = sweep(&scenario, &args);
    assert_eq!(second.status.code(), Some(1), "{}", stderr(&second));
    assert_eq!(
        files_in(&out_dir),
        [
            "seed-1-primary-skip-resync-2.replay.json",
            "seed-1-primary-skip-resync.replay.json",
            "seed-3-primary-skip-resync-2.replay.json",
            "seed-3-primary-skip-resync.replay.json",
            "seed-4-primary-skip-resync-2.replay.json",
            "seed-4-primary-skip-resync.replay.json",
            "summary-2.json",
            "summary.json",
        ]
    );
    for (name, bytes) in before {
        assert_eq!(std::fs::read(out_dir.join(&name)).unwrap(), bytes, "{name}");
    }
    // A replay file is the run: its fingerprint is the one the sweep printed.
    let replay: Value = serde_json::from_slice(
        &std::fs::read(out_dir.join("seed-1-primary-skip-resync-2.replay.json")).unwrap(),
    )
    .unwrap();
    let summary: Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("summary-2.json")).unwrap()).unwrap();
    assert_eq!(replay["fingerprint"], summary["broken"][0]["fingerprint"]);
    assert_eq!(replay["verdict"], "broken");
}

#[test]
fn sweep_json_exit_codes_and_broken_seeds() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "tiny.toml", TINY);
    let out = sweep(&scenario, &[BUG[0], BUG[1], "--seeds", "1..=3", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // No progress bar, or anything else, on a piped stderr.
    assert_eq!(stderr(&out), "");
    let v = json(&out);
    assert_eq!(
        entries(&v, "broken")
            .iter()
            .map(|e| (e.0, e.2.clone()))
            .collect::<Vec<_>>(),
        [
            (1, vec!["convergence".to_string()]),
            (3, vec!["convergence".to_string()])
        ]
    );
    assert_eq!(v["unknown"], serde_json::json!([]));
    assert_eq!(
        (v["seeds_run"].as_u64(), v["kept"].as_u64()),
        (Some(3), Some(1))
    );
    assert_eq!(v["protocol"], "primary");
    assert_eq!(v["bugs"], serde_json::json!(["skip-resync"]));
    assert_eq!(v["seeds"], serde_json::json!({"first": 1, "last": 3}));
    assert_eq!(v["shard"], Value::Null);
    assert_eq!(v["stopped"], "range-done");
    assert_eq!(v["source"], scenario.as_str());
    assert!(v["wall_clock_seconds"].as_f64().unwrap() > 0.0);
    assert!(v["wall_clock_seeds_per_second"].as_f64().unwrap() > 0.0);
    assert!(
        v["broken"][0].get("replay_file").is_none(),
        "no --out, no file"
    );

    // The correct protocol keeps its promises: exit 0.
    let out = sweep(&scenario, &["--seeds", "1..=3", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json(&out)["broken"], serde_json::json!([]));
}

#[test]
fn sweep_until_broken_stops_at_the_nth_broken_seed_whatever_the_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "tiny.toml", TINY);
    let run = |jobs: &str, stop: &[&str]| {
        let mut args = vec![BUG[0], BUG[1], "--seeds", "1..=12", "--jobs", jobs];
        args.extend_from_slice(stop);
        let out = sweep(&scenario, &args);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        stdout(&out)
    };
    let text = run("1", &["--until-broken", "3"]);
    let seeds: Vec<&str> = text.lines().filter(|l| l.starts_with("seed ")).collect();
    // Broken seeds are 1, 3, 4, ...: the third is seed 4, and nothing runs after it.
    assert_eq!(seeds.len(), 4, "{text}");
    assert!(
        seeds[3].starts_with("seed 4 ") && seeds[3].contains("broken"),
        "{text}"
    );
    assert!(
        text.contains("swept seeds 1..=12 (4 seeds run; stopped at the broken seeds asked for): 3 broken [1, 3, 4]"),
        "{text}"
    );
    assert_eq!(text, run("3", &["--until-broken", "3"]));
    // --first is --until-broken 1.
    let first = run("2", &["--first"]);
    assert_eq!(
        first.lines().filter(|l| l.starts_with("seed ")).count(),
        1,
        "{first}"
    );
    assert_eq!(first, run("1", &["--until-broken", "1"]));
}

#[test]
fn sweep_for_runs_a_prefix_of_the_seeds_until_the_time_is_up() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "tiny.toml", TINY);
    // Open-ended: seeds 1, 2, 3, ... until one second is up.
    let out = sweep(&scenario, &["--for", "1s", "--json", "--jobs", "2"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["stopped"], "time-up");
    assert_eq!(
        v["seeds"],
        serde_json::json!({"first": 1, "last": u64::MAX})
    );
    assert!(v["seeds_run"].as_u64().unwrap() >= 1, "{v}");
    // A range that ends first ends the sweep.
    let out = sweep(&scenario, &["--for", "1h", "--seeds", "5..=6", "--json"]);
    let v = json(&out);
    assert_eq!(
        (v["stopped"].as_str(), v["seeds_run"].as_u64()),
        (Some("range-done"), Some(2))
    );
}

#[test]
fn sweep_bad_shards_and_durations_exit_2_naming_the_flag() {
    for bad in ["0/3", "4/3", "1/0", "x"] {
        let out = simkv(&["sweep", "scenarios/partition.toml", "--shard", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let err = stderr(&out);
        assert!(err.contains("--shard"), "{bad}: {err}");
        assert!(
            err.contains("expected I/N") && err.contains("1 <= I <= N"),
            "{bad}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    for bad in ["0s", "10", "1.5h"] {
        let out = simkv(&["sweep", "scenarios/partition.toml", "--for", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(stderr(&out).contains("--for"), "{bad}: {}", stderr(&out));
    }
    let out = simkv(&["sweep", "scenarios/partition.toml", "--until-broken", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--until-broken"), "{}", stderr(&out));
    // --merge takes no scenario.
    let out = simkv(&["sweep", "scenarios/partition.toml", "--merge", "d1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--merge"), "{}", stderr(&out));
}

#[test]
fn sweep_merge_refuses_shards_of_different_sweeps_and_missing_or_twice_shards() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "tiny.toml", TINY);
    let shard = |name: &str, shard: &str, extra: &[&str]| {
        let out_dir = dir.path().join(name);
        let mut args = vec![
            "--seeds",
            "1..=6",
            "--shard",
            shard,
            "--out",
            out_dir.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let out = sweep(&scenario, &args);
        assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
        out_dir.to_str().unwrap().to_string()
    };
    let merge = |dirs: &[&str]| {
        let mut args = vec!["sweep", "--merge"];
        args.extend_from_slice(dirs);
        let out = simkv(&args);
        (out.status.code(), stderr(&out))
    };
    let a = shard("a", "1/2", &BUG);
    let b = shard("b", "2/2", &[]);
    let (code, err) = merge(&[&a, &b]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("not a shard of the same sweep") && err.contains("bugs"),
        "{err}"
    );
    let c = shard("c", "2/3", &BUG);
    let (code, err) = merge(&[&a, &c]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("shard count"), "{err}");
    let (code, err) = merge(&[&a]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("shards missing: 2/2"), "{err}");
    let (code, err) = merge(&[&a, &a]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("shard 1/2 is in both"), "{err}");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (code, err) = merge(&[empty.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no summary.json"), "{err}");
    let d = shard("d", "2/2", &BUG);
    let (code, err) = merge(&[&a, &d]);
    assert_eq!(code, Some(1), "the matching shards merge: {err}");
    // A summary file may be named instead of its DIR.
    let file = Path::new(&d).join("summary.json");
    let (code, err) = merge(&[&a, file.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{err}");
}

fn cases() -> u32 {
    std::env::var("SIMKV_PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3)
}

/// The seeds of a sweep's output, from its seed lines.
fn seed_lines(text: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|l| {
            l.strip_prefix("seed ")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// The output is the same whatever --jobs, and the N shards of a range, each run as its
    /// own process, run every seed of it exactly once.
    #[test]
    fn sweep_jobs_do_not_change_the_output_and_shards_partition_the_range(
        lo in 1u64..1000,
        width in 0u64..5,
        count in 1u64..4,
        bug in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let scenario = write(dir.path(), "tiny.toml", TINY);
        let seeds = format!("{lo}..={}", lo + width);
        let mut base = vec!["--seeds", seeds.as_str()];
        if bug {
            base.extend_from_slice(&BUG);
        }
        let run = |extra: &[&str]| {
            let mut args = base.clone();
            args.extend_from_slice(extra);
            let out = sweep(&scenario, &args);
            assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
            stdout(&out)
        };
        let one = run(&["--jobs", "1"]);
        prop_assert_eq!(&one, &run(&["--jobs", "3"]));
        let mut seen = Vec::new();
        for index in 1..=count {
            let shard = format!("{index}/{count}");
            seen.extend(seed_lines(&run(&["--shard", &shard, "--jobs", "2"])));
        }
        seen.sort_unstable();
        prop_assert_eq!(seen, (lo..=lo + width).collect::<Vec<u64>>());
    }
}
