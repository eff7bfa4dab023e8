//! A sweep's summary: the one JSON object `simkv sweep --json` prints and `--out DIR` saves
//! as `DIR/summary.json`, its text form, and `simkv sweep --merge`, which joins the summaries
//! of a sweep's shards into one.
//!
//! Everything in a summary follows from the scenario, the seeds and simkv's version, except
//! its two `wall_clock_` fields: how long the sweep took and how many seeds it ran a second
//! (and, with `--for`, how many seeds it ran at all, which the wall clock decided).

use crate::scenario_args::ScenarioArgs;
use crate::Exit;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The value of a summary's `format` field.
pub const FORMAT: &str = "simkv-sweep/1";

/// Shard `index` of `count` (1-based): the seeds whose offset from the range's first seed is
/// `index - 1` modulo `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Shard {
    /// 1-based, at most `count`.
    pub index: u64,
    /// At least 1.
    pub count: u64,
}

impl Shard {
    /// Parses `I/N` with `1 <= I <= N` (clap's value parser for `--shard`).
    pub fn parse(text: &str) -> Result<Shard, String> {
        let bad = || {
            format!(
                "expected I/N, shard I of N with 1 <= I <= N (1-based), such as 2/4; got {text:?}"
            )
        };
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let number = |s: &str| s.trim().parse::<u64>().map_err(|_| bad());
        let (index, count) = (number(i)?, number(n)?);
        if count == 0 || index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// An inclusive range of seeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedRange {
    /// The first seed.
    pub first: u64,
    /// The last seed (included).
    pub last: u64,
}

/// Why a sweep stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stopped {
    /// Every seed of the range (or shard) ran.
    RangeDone,
    /// `--until-broken N` (or `--first`) saw its N-th broken seed.
    UntilBroken,
    /// `--for` ran out of wall time.
    TimeUp,
    /// Merged shards that stopped for different reasons (each part says its own).
    Mixed,
}

/// One broken or unknown seed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedEntry {
    /// The seed.
    pub seed: u64,
    /// The promised checks that did not pass, by name.
    pub failed_checks: Vec<String>,
    /// The run's fingerprint.
    pub fingerprint: String,
    /// The replay file `--out` saved, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_file: Option<String>,
}

/// One shard's summary inside a merged one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Part {
    /// The summary file it came from.
    pub file: String,
    /// Its shard (`None`: a whole sweep).
    pub shard: Option<Shard>,
    /// Seeds it ran.
    pub seeds_run: u64,
    /// Why it stopped.
    pub stopped: Stopped,
}

/// A sweep's summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Always [`FORMAT`].
    pub format: String,
    /// The simkv version that ran the sweep.
    pub simkv_version: String,
    /// The scenario file, as the command line named it.
    pub source: String,
    /// A stable hash of the scenario file's bytes (16 hex digits): shards to merge must
    /// have run the same file.
    pub scenario_digest: String,
    /// The protocol run.
    pub protocol: String,
    /// Planted bugs switched on.
    pub bugs: Vec<String>,
    /// `--set` overrides, in command-line order.
    pub sets: Vec<String>,
    /// The seed range asked for (with `--for` and no `--seeds`: every seed from 1 on).
    pub seeds: SeedRange,
    /// The shard of the range this sweep ran (`None`: the whole range, or merged shards).
    pub shard: Option<Shard>,
    /// The shards a merged summary joined (empty for a sweep's own).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged: Vec<Part>,
    /// Why the sweep stopped.
    pub stopped: Stopped,
    /// Seeds run.
    pub seeds_run: u64,
    /// Seeds that kept every promise.
    pub kept: u64,
    /// Seeds that broke a promise, by seed.
    pub broken: Vec<SeedEntry>,
    /// Seeds whose verdict is unknown (a checker's budget ran out), by seed.
    pub unknown: Vec<SeedEntry>,
    /// WALL CLOCK, not deterministic: seconds the sweep took (merged: the longest shard's).
    pub wall_clock_seconds: f64,
    /// WALL CLOCK, not deterministic: seeds run per second of wall time.
    pub wall_clock_seeds_per_second: f64,
}

impl Summary {
    /// The exit code it stands for: 1 if a seed broke a promise, else 3 if one was
    /// unknown, else 0.
    pub fn exit(&self) -> Exit {
        if !self.broken.is_empty() {
            Exit::Fail
        } else if !self.unknown.is_empty() {
            Exit::Unknown
        } else {
            Exit::Pass
        }
    }

    /// The command line's scenario arguments, for the replay command.
    fn scenario_args(&self) -> ScenarioArgs {
        ScenarioArgs {
            scenario: PathBuf::from(&self.source),
            protocol: Some(self.protocol.clone()),
            bugs: self.bugs.clone(),
            sets: self.sets.clone(),
        }
    }

    /// The text form's last lines: the count line, and the replay command of the first
    /// broken seed. A whole range run to its end prints as it always has:
    /// `swept seeds 1..=100: 1 broken [7], 0 unknown []`.
    pub fn render_tail(&self, replay: &ScenarioArgs) -> String {
        let seeds =
            |entries: &[SeedEntry]| -> Vec<u64> { entries.iter().map(|e| e.seed).collect() };
        let (broken, unknown) = (seeds(&self.broken), seeds(&self.unknown));
        let range = format!("{}..={}", self.seeds.first, self.seeds.last);
        let mut head = if self.merged.is_empty() {
            format!("swept seeds {range}")
        } else {
            let shards: Vec<String> = self
                .merged
                .iter()
                .filter_map(|p| p.shard.map(|s| s.to_string()))
                .collect();
            format!("merged shards {} of seeds {range}", shards.join(" "))
        };
        if let Some(shard) = self.shard {
            head.push_str(&format!(" shard {shard}"));
        }
        let stop = match self.stopped {
            Stopped::RangeDone => "",
            Stopped::UntilBroken => "; stopped at the broken seeds asked for",
            Stopped::TimeUp => "; stopped when --for ran out",
            Stopped::Mixed => "; some shards stopped early",
        };
        if self.shard.is_some() || !self.merged.is_empty() || self.stopped != Stopped::RangeDone {
            head.push_str(&format!(" ({} seeds run{stop})", self.seeds_run));
        }
        let mut text = format!(
            "{head}: {} broken {:?}, {} unknown {:?}\n",
            broken.len(),
            broken,
            unknown.len(),
            unknown
        );
        if let Some(seed) = broken.first() {
            text.push_str(&format!("replay: {}\n", replay.replay(*seed)));
        }
        text
    }

    /// Writes the summary into `dir` (created if missing) as `summary.json`, or
    /// `summary-2.json`, ... if that exists: never overwriting. Returns the path written.
    pub fn save_new(&self, dir: &Path) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)? + "\n";
        simkv_sim::replay::write_new(dir, "summary", "json", &text)
    }
}

/// The line a broken or unknown seed gets in a merged text summary (a sweep prints every
/// seed's line as it runs).
fn entry_line(verdict: &str, e: &SeedEntry) -> String {
    let mut line = format!(
        "seed {:<6} {verdict:<8} fingerprint {}  {}",
        e.seed,
        e.fingerprint,
        e.failed_checks.join(" ")
    );
    if let Some(file) = &e.replay_file {
        line.push_str(&format!("  replay file {file}"));
    }
    line
}

/// Every `summary*.json` in `dir`, sorted by name.
fn summaries_in(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let shown = dir.display();
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("--merge {shown}: cannot read: {e}"))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("summary") && n.ends_with(".json"))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!(
            "--merge {shown}: no summary.json in it (`simkv sweep ... --out {shown}` writes one)"
        ));
    }
    Ok(files)
}

/// Reads one summary file; errors name the file, and line and column for bad JSON.
fn load(path: &Path) -> Result<Summary, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: cannot read: {e}"))?;
    let summary: Summary = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{shown}:{}:{}: not a simkv sweep summary: {e}",
            e.line(),
            e.column()
        )
    })?;
    if summary.format != FORMAT {
        return Err(format!(
            "{shown}: format {:?} is not {FORMAT:?}, the one this simkv reads",
            summary.format
        ));
    }
    Ok(summary)
}

/// What must agree between summaries to merge them, as (field, value) pairs.
fn identity(s: &Summary) -> Vec<(&'static str, String)> {
    vec![
        ("simkv_version", s.simkv_version.clone()),
        (
            "scenario_digest (the scenario file's bytes)",
            s.scenario_digest.clone(),
        ),
        ("protocol", s.protocol.clone()),
        ("bugs", format!("{:?}", s.bugs)),
        ("sets", format!("{:?}", s.sets)),
        ("seeds", format!("{}..={}", s.seeds.first, s.seeds.last)),
        (
            "shard count",
            s.shard.map_or("unsharded".into(), |x| x.count.to_string()),
        ),
    ]
}

/// Joins summaries (each file named) into one, or says why they cannot be joined.
pub fn merge_summaries(files: Vec<(String, Summary)>) -> Result<Summary, String> {
    let Some((first_file, first)) = files.first() else {
        return Err("--merge: no summaries given".into());
    };
    let want = identity(first);
    for (file, s) in &files[1..] {
        let diffs: Vec<String> = identity(s)
            .into_iter()
            .zip(&want)
            .filter(|(got, want)| got.1 != want.1)
            .map(|(got, want)| format!("{} {} there, {} in {first_file}", got.0, got.1, want.1))
            .collect();
        if !diffs.is_empty() {
            return Err(format!(
                "cannot merge: {file} is not a shard of the same sweep as {first_file}: {}",
                diffs.join("; ")
            ));
        }
    }
    if first.shard.is_none() && files.len() > 1 {
        return Err(format!(
            "cannot merge: {first_file} and the others are whole sweeps, not shards of one \
             (their seeds overlap); run each with --shard I/N"
        ));
    }
    if !first.merged.is_empty() {
        return Err(format!(
            "cannot merge: {first_file} is itself a merged summary; merge the shards' own"
        ));
    }
    let mut seen: Vec<(u64, &str)> = Vec::new();
    for (file, s) in &files {
        let index = s.shard.map_or(1, |x| x.index);
        if let Some((_, other)) = seen.iter().find(|(i, _)| *i == index) {
            return Err(format!(
                "cannot merge: shard {} is in both {other} and {file}; keep one of them",
                s.shard.map_or("-".into(), |x| x.to_string())
            ));
        }
        seen.push((index, file));
    }
    if let Some(count) = first.shard.map(|s| s.count) {
        let missing: Vec<String> = (1..=count)
            .filter(|i| !seen.iter().any(|(j, _)| j == i))
            .map(|i| format!("{i}/{count}"))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "cannot merge: shards missing: {} (their seeds did not run); pass the DIR \
                 of every shard of the sweep",
                missing.join(" ")
            ));
        }
    }
    let mut merged = Summary {
        shard: None,
        merged: Vec::new(),
        seeds_run: 0,
        kept: 0,
        broken: Vec::new(),
        unknown: Vec::new(),
        wall_clock_seconds: 0.0,
        wall_clock_seeds_per_second: 0.0,
        ..first.clone()
    };
    for (file, s) in &files {
        merged.merged.push(Part {
            file: file.clone(),
            shard: s.shard,
            seeds_run: s.seeds_run,
            stopped: s.stopped,
        });
        merged.seeds_run += s.seeds_run;
        merged.kept += s.kept;
        merged.broken.extend(s.broken.iter().cloned());
        merged.unknown.extend(s.unknown.iter().cloned());
        merged.wall_clock_seconds = merged.wall_clock_seconds.max(s.wall_clock_seconds);
        if s.stopped != first.stopped {
            merged.stopped = Stopped::Mixed;
        }
    }
    merged.merged.sort_by_key(|p| p.shard);
    merged.broken.sort_by_key(|e| e.seed);
    merged.unknown.sort_by_key(|e| e.seed);
    if merged.wall_clock_seconds > 0.0 {
        merged.wall_clock_seeds_per_second = merged.seeds_run as f64 / merged.wall_clock_seconds;
    }
    Ok(merged)
}

/// `simkv sweep --merge DIR...`: joins the summaries in each DIR (or each summary file
/// named) and prints one, as text or `--json`. Exit as a sweep's (0, 1, 3), or 2 if the summaries cannot be merged.
pub fn merge(dirs: &[PathBuf], json: bool) -> Exit {
    let mut files = Vec::new();
    for dir in dirs {
        // A summary file named itself is taken as it is.
        let (paths, dir) = match dir.is_file() {
            true => (
                Ok(vec![dir.clone()]),
                dir.parent().unwrap_or(Path::new(".")).to_path_buf(),
            ),
            false => (summaries_in(dir), dir.clone()),
        };
        let paths = match paths {
            Ok(paths) => paths,
            Err(e) => {
                eprintln!("error: {e}");
                return Exit::BadInput;
            }
        };
        for path in paths {
            match load(&path) {
                Ok(mut s) => {
                    // A shard saved its replay files beside its summary: name them where
                    // they are now, whatever the directory was called when they were saved.
                    for e in s.broken.iter_mut().chain(s.unknown.iter_mut()) {
                        if let Some(name) = e
                            .replay_file
                            .as_deref()
                            .and_then(|f| Path::new(f).file_name())
                        {
                            e.replay_file = Some(dir.join(name).display().to_string());
                        }
                    }
                    files.push((path.display().to_string(), s))
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    return Exit::BadInput;
                }
            }
        }
    }
    let merged = match merge_summaries(files) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::BadInput;
        }
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&merged).expect("a summary serialises")
        );
    } else {
        let mut text = String::new();
        for part in &merged.merged {
            let shard = part
                .shard
                .map_or("whole range".into(), |s| format!("shard {s}"));
            text.push_str(&format!(
                "{shard}: {} seeds run, {} ({})\n",
                part.seeds_run,
                match part.stopped {
                    Stopped::RangeDone => "range done",
                    Stopped::UntilBroken => "stopped at the broken seeds asked for",
                    Stopped::TimeUp => "stopped when --for ran out",
                    Stopped::Mixed => "mixed",
                },
                part.file
            ));
        }
        let mut entries: Vec<(&str, &SeedEntry)> = merged
            .broken
            .iter()
            .map(|e| ("broken", e))
            .chain(merged.unknown.iter().map(|e| ("unknown", e)))
            .collect();
        entries.sort_by_key(|(_, e)| e.seed);
        for (verdict, e) in entries {
            text.push_str(&entry_line(verdict, e));
            text.push('\n');
        }
        text.push_str(&merged.render_tail(&merged.scenario_args()));
        print!("{text}");
    }
    merged.exit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seed: u64) -> SeedEntry {
        SeedEntry {
            seed,
            failed_checks: vec!["linearizable".into()],
            fingerprint: format!("{seed:016x}"),
            replay_file: None,
        }
    }

    fn shard(index: u64, broken: &[u64], unknown: &[u64]) -> Summary {
        Summary {
            format: FORMAT.into(),
            simkv_version: "0.1.0".into(),
            source: "s.toml".into(),
            scenario_digest: "00000000000000aa".into(),
            protocol: "raft".into(),
            bugs: vec![],
            sets: vec![],
            seeds: SeedRange { first: 1, last: 6 },
            shard: Some(Shard { index, count: 2 }),
            merged: vec![],
            stopped: Stopped::RangeDone,
            seeds_run: 3,
            kept: 3 - (broken.len() + unknown.len()) as u64,
            broken: broken.iter().map(|s| entry(*s)).collect(),
            unknown: unknown.iter().map(|s| entry(*s)).collect(),
            wall_clock_seconds: 2.0,
            wall_clock_seeds_per_second: 1.5,
        }
    }

    #[test]
    fn only_unknown_seeds_exit_3_and_a_broken_one_exits_1() {
        assert_eq!(shard(1, &[], &[]).exit(), Exit::Pass);
        assert_eq!(shard(1, &[], &[3]).exit(), Exit::Unknown);
        assert_eq!(shard(1, &[5], &[3]).exit(), Exit::Fail);
    }

    #[test]
    fn merged_shards_keep_every_seed_in_order_and_the_worst_exit() {
        let files = vec![
            ("b".to_string(), shard(2, &[], &[4])),
            ("a".to_string(), shard(1, &[], &[1, 5])),
        ];
        let merged = merge_summaries(files).unwrap();
        let seeds: Vec<u64> = merged.unknown.iter().map(|e| e.seed).collect();
        assert_eq!(seeds, [1, 4, 5]);
        assert_eq!((merged.seeds_run, merged.kept), (6, 3));
        assert_eq!(merged.exit(), Exit::Unknown);
        assert_eq!(merged.wall_clock_seconds, 2.0);
        assert_eq!(merged.wall_clock_seeds_per_second, 3.0);
        let shards: Vec<Option<Shard>> = merged.merged.iter().map(|p| p.shard).collect();
        assert_eq!(
            shards,
            [
                Some(Shard { index: 1, count: 2 }),
                Some(Shard { index: 2, count: 2 })
            ]
        );
        let mut other = shard(2, &[], &[]);
        other.scenario_digest = "00000000000000bb".into();
        let err = merge_summaries(vec![("a".into(), shard(1, &[], &[])), ("b".into(), other)])
            .unwrap_err();
        assert!(err.contains("scenario_digest"), "{err}");
    }

    #[test]
    fn shards_parse_one_based() {
        assert_eq!(Shard::parse("1/3"), Ok(Shard { index: 1, count: 3 }));
        assert_eq!(Shard::parse("3/3"), Ok(Shard { index: 3, count: 3 }));
        for bad in ["0/3", "4/3", "1/0", "x", "1/", "/3", "-1/3", "1/3/4"] {
            let err = Shard::parse(bad).unwrap_err();
            assert!(err.contains("expected I/N"), "{bad}: {err}");
        }
    }
}
