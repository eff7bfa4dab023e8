//! Replay files: one run, self-contained, as `simkv sweep --out` saves every broken seed and
//! `simkv replay` / `simkv shrink` read it back.
//!
//! A replay file is JSON. Its `scenario` is the resolved scenario ([`Scenario::explain`]):
//! every default filled in, every swarm draw made explicit, the seed, protocol and planted
//! bugs included, so loading that text alone reproduces the run on any machine with the
//! same simkv. The rest says what the run gave (fingerprint, verdict, the checks that
//! failed, the number of events) and carries event-hash checkpoints, with which a replay
//! that diverges finds the first event that differs.
//!
//! [`Scenario::explain`]: crate::scenario::Scenario::explain

use crate::engine::recording::{EventRecord, Recording};
use crate::report::{RunReport, RunVerdict};
use crate::runner::RunResult;
use crate::scenario::{self, Overrides, Scenario};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The value of a replay file's `format` field.
pub const FORMAT: &str = "simkv-replay/1";

/// One saved run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayFile {
    /// Always [`FORMAT`].
    pub format: String,
    /// The simkv version that recorded the run (`CARGO_PKG_VERSION`).
    pub simkv_version: String,
    /// The scenario file the run came from (informational: `scenario` is what replays).
    pub source: String,
    /// The protocol run.
    pub protocol: String,
    /// Planted bugs switched on.
    pub bugs: Vec<String>,
    /// The seed.
    pub seed: u64,
    /// The resolved scenario, as [`Scenario::explain`] prints it.
    pub scenario: String,
    /// The run's fingerprint, 16 hex digits.
    pub fingerprint: String,
    /// `kept`, `broken` or `unknown`.
    pub verdict: String,
    /// The promised checks that did not pass (failed or unknown), by name.
    pub failed_checks: Vec<String>,
    /// Events processed.
    pub events: u64,
    /// Event-hash checkpoints for divergence search (empty when not recorded).
    #[serde(default)]
    pub checkpoints: Vec<Checkpoint>,
    /// One compact record per event, to pin a divergence to one event (absent when not
    /// recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_log: Option<EventLog>,
}

mod divergence;
mod event_log;

pub use crate::engine::recording::Checkpoint;
pub use divergence::{first_divergence, Divergence};
pub use event_log::{EventLog, ENCODING as EVENT_LOG_ENCODING};

/// The lowercase name of a verdict, as replay files and `--json` spell it.
pub fn verdict_name(verdict: RunVerdict) -> &'static str {
    match verdict {
        RunVerdict::Kept => "kept",
        RunVerdict::Broken => "broken",
        RunVerdict::Unknown => "unknown",
    }
}

impl ReplayFile {
    /// The replay file of a finished run of `scenario` that reported `report`.
    pub fn of_run(scenario: &Scenario, report: &RunReport) -> ReplayFile {
        ReplayFile {
            format: FORMAT.into(),
            simkv_version: env!("CARGO_PKG_VERSION").into(),
            source: report.source.clone(),
            protocol: report.protocol.clone(),
            bugs: report.bugs.clone(),
            seed: report.seed,
            scenario: scenario.explain(),
            fingerprint: report.fingerprint.clone(),
            verdict: verdict_name(report.verdict).into(),
            failed_checks: report.failed_promises(),
            events: report.events,
            checkpoints: Vec::new(),
            event_log: None,
        }
    }

    /// This file with the run's recording: its checkpoints and per-event records.
    pub fn with_recording(mut self, recording: &Recording) -> ReplayFile {
        self.checkpoints = recording.checkpoints.clone();
        self.event_log = Some(EventLog::encode(&recording.events));
        self
    }

    /// The replay file of a finished run, with its recording if it was recorded
    /// ([`RunOptions::recorded`](crate::runner::RunOptions::recorded)).
    pub fn of_result(scenario: &Scenario, result: &RunResult) -> ReplayFile {
        let file = ReplayFile::of_run(scenario, &result.report);
        match &result.recording {
            Some(recording) => file.with_recording(recording),
            None => file,
        }
    }

    /// Writes the file to `path`, refusing to replace an existing file unless `force`.
    pub fn save_to(&self, path: &Path, force: bool) -> std::io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true);
        if force {
            options.create(true).truncate(true);
        } else {
            options.create_new(true);
        }
        let mut file = options.open(path)?;
        std::io::Write::write_all(&mut file, self.to_text()?.as_bytes())
    }

    fn to_text(&self) -> std::io::Result<String> {
        Ok(serde_json::to_string_pretty(self).map_err(std::io::Error::other)? + "\n")
    }

    /// The recorded per-event records, decoded (empty when the file has none).
    pub fn event_records(&self, name: &str) -> Result<Vec<EventRecord>, String> {
        match &self.event_log {
            None => Ok(Vec::new()),
            Some(log) => log.decode().map_err(|e| format!("{name}: event_log: {e}")),
        }
    }

    /// The file name this run is saved under in a directory: `seed-<seed>-<protocol>` with
    /// its bugs, then `.replay.json`.
    pub fn file_stem(&self) -> String {
        let mut stem = format!("seed-{}-{}", self.seed, self.protocol);
        for bug in &self.bugs {
            stem.push('-');
            stem.push_str(bug);
        }
        stem
    }

    /// Writes the file into `dir` (created if missing) under [`Self::file_stem`], never
    /// overwriting: an existing name gets `-2`, `-3`, ... Returns the path written.
    pub fn save_new(&self, dir: &Path) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let text = self.to_text()?;
        write_new(dir, &self.file_stem(), "replay.json", &text)
    }

    /// Reads a replay file; the error names the file and, for bad JSON, line and column.
    pub fn load(path: &Path) -> Result<ReplayFile, String> {
        let shown = path.display();
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("{shown}: cannot read: {e}"))?;
        Self::parse(&shown.to_string(), &text)
    }

    /// Parses replay-file text read from `name`.
    pub fn parse(name: &str, text: &str) -> Result<ReplayFile, String> {
        let file: ReplayFile = serde_json::from_str(text).map_err(|e| {
            format!(
                "{name}:{}:{}: not a simkv replay file: {e}",
                e.line(),
                e.column()
            )
        })?;
        if file.format != FORMAT {
            return Err(format!(
                "{name}: format {:?} is not {FORMAT:?}, the one this simkv reads",
                file.format
            ));
        }
        Ok(file)
    }

    /// The scenario the file replays, loaded from its resolved text (diagnostics name the
    /// replay file).
    pub fn load_scenario(&self, name: &str) -> Result<Scenario, String> {
        scenario::load_str(name, &self.scenario, &Overrides::default()).map_err(|e| e.to_string())
    }
}

/// Writes `text` into `dir` as `<stem>.<ext>`, or `<stem>-2.<ext>`, ... if that exists: never
/// overwriting. Returns the path written.
pub fn write_new(dir: &Path, stem: &str, ext: &str, text: &str) -> std::io::Result<PathBuf> {
    for n in 1u32.. {
        let name = if n == 1 {
            format!("{stem}.{ext}")
        } else {
            format!("{stem}-{n}.{ext}")
        };
        let path = dir.join(name);
        // `create_new` fails if the file exists, atomically: two processes writing into one
        // directory never overwrite each other.
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut file) => {
                std::io::Write::write_all(&mut file, text.as_bytes())?;
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    unreachable!("u32 names run out")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::recording::{Record, CHECKPOINT_EVERY};
    use crate::runner::{self, RunOptions};

    const SMALL: &str = r#"
name = "small"
description = "a small primary run"
duration = "2s"
[cluster]
protocol = "primary"
nodes = 3
[workload]
clients = 2
"#;

    #[test]
    fn a_replay_file_round_trips_and_its_scenario_reproduces_the_fingerprint() {
        let scenario = scenario::load_str("small.toml", SMALL, &Overrides::default()).unwrap();
        let report = runner::run(&scenario, RunOptions::default()).report;
        let file = ReplayFile::of_run(&scenario, &report);
        let dir = tempfile::tempdir().unwrap();
        let path = file.save_new(dir.path()).unwrap();
        let back = ReplayFile::load(&path).unwrap();
        assert_eq!(back, file);
        let again = back.load_scenario("x.replay.json").unwrap();
        let rerun = runner::run(&again, RunOptions::default()).report;
        assert_eq!(rerun.fingerprint, report.fingerprint);
    }

    #[test]
    fn recording_leaves_the_run_alone_and_its_last_checkpoint_is_the_fingerprint() {
        let scenario = scenario::load_str("small.toml", SMALL, &Overrides::default()).unwrap();
        let plain = runner::run(&scenario, RunOptions::default());
        assert!(plain.recording.is_none());
        let recorded = runner::run(&scenario, RunOptions::recorded());
        assert_eq!(recorded.report.fingerprint, plain.report.fingerprint);
        let recording = recorded.recording.as_ref().unwrap();
        assert_eq!(recording.events.len() as u64, plain.report.events);
        let last = recording.checkpoints.last().unwrap();
        assert_eq!(last.event, plain.report.events);
        assert_eq!(last.hash, plain.report.fingerprint);
        assert!(recording.checkpoints[..recording.checkpoints.len() - 1]
            .iter()
            .enumerate()
            .all(|(i, c)| c.event == (i as u64 + 1) * CHECKPOINT_EVERY));
        // The file keeps what was recorded, and a second recording finds no divergence.
        let file = ReplayFile::of_result(&scenario, &recorded);
        let dir = tempfile::tempdir().unwrap();
        let back = ReplayFile::load(&file.save_new(dir.path()).unwrap()).unwrap();
        assert_eq!(back.checkpoints, recording.checkpoints);
        let records = back.event_records("f").unwrap();
        assert_eq!(records, recording.events);
        let again = runner::run(&scenario, RunOptions::recorded());
        let now = again.recording.unwrap();
        assert_eq!(first_divergence(&back.checkpoints, &records, &now), None);
    }

    #[test]
    fn a_captured_event_keeps_its_trace_line() {
        let scenario = scenario::load_str("small.toml", SMALL, &Overrides::default()).unwrap();
        let options = RunOptions {
            record: Some(Record { capture: Some(3) }),
            ..RunOptions::default()
        };
        let recording = runner::run(&scenario, options).recording.unwrap();
        assert_eq!(recording.captured.len(), 1, "{:?}", recording.captured);
        let t = recording.events[2].time_us;
        assert!(recording.captured[0].contains(&format!("\"t\":{t}")));
    }

    #[test]
    fn saving_twice_never_overwrites() {
        let scenario = scenario::load_str("small.toml", SMALL, &Overrides::default()).unwrap();
        let report = runner::run(&scenario, RunOptions::default()).report;
        let file = ReplayFile::of_run(&scenario, &report);
        let dir = tempfile::tempdir().unwrap();
        let first = file.save_new(dir.path()).unwrap();
        let second = file.save_new(dir.path()).unwrap();
        assert_ne!(first, second);
        assert!(second.to_string_lossy().ends_with("-2.replay.json"));
    }

    #[test]
    fn bad_json_names_line_and_column() {
        let err = ReplayFile::parse("f.replay.json", "{\n  \"format\": 3\n}").unwrap_err();
        assert!(err.starts_with("f.replay.json:2:"), "{err}");
    }
}
