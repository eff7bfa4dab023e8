//! `simkv report`: one scenario, several protocols, many seeds, as a page people look at.
//!
//! Each (protocol, seed) run is boiled down to a [`RunData`] as soon as it finishes (the
//! CLI runs them on several threads); [`build`] then turns the runs, in (protocol, seed)
//! order, into files: `index.html` (self-contained: inline CSS, the figures inline as SVG,
//! no script, no network), each figure again as an `.svg` file beside it, `summary.md`, and
//! a counterexample page per protocol whose history at the first seed is not linearizable.
//! Tables give each number across seeds as a mean with its 95% interval, or, where the
//! distribution is skewed (counts of rare events, tails, times), as the median with the 5th
//! and 95th percentiles. The figures that plot single operations draw the first seed.
//!
//! Everything that reaches a file is sorted (`BTreeMap`, seed order) and every number is
//! printed at a fixed precision, so the same command gives the same bytes; no wall-clock
//! time, path of the output directory or `--jobs` appears in them.

mod diagram;
mod figures;
mod page;
pub mod stats;
pub mod svg;

pub use diagram::{spacetime, DiagramTrace, Window};

use crate::checks::Verdict;
use crate::engine::Side;
use crate::history::{History, Outcome};
use crate::lincheck::{self, staleness, Budget, Counterexample};
use crate::report::RunReport;
use crate::runner::{self, RunOptions};
use crate::scenario::{self, LoadError, Overrides};
use std::collections::BTreeMap;

/// Width of a bin of the availability figure, milliseconds.
pub const BIN_MS: u64 = 500;

/// The edges of the t-visibility buckets, milliseconds after the write completed.
pub const TVIS_EDGES_MS: [u64; 11] = [0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];

/// k-staleness buckets: reads 0, 1, 2, 3-4, 5-8, 9+ writes behind.
pub const K_BUCKETS: [&str; 6] = ["0", "1", "2", "3-4", "5-8", "9+"];

/// What a report is of: the inputs that decide its bytes.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The scenario file, as given.
    pub scenario: String,
    /// Protocols, in the order the report shows them.
    pub protocols: Vec<String>,
    /// The seeds, inclusive.
    pub seeds: (u64, u64),
    /// `--set` overrides.
    pub sets: Vec<String>,
}

impl Plan {
    /// The command that makes this report (what the report prints; no `--out` or `--jobs`,
    /// which change nothing in it).
    pub fn command(&self) -> String {
        let mut cmd = format!(
            "simkv report {} --protocols {} --seeds {}..={}",
            self.scenario,
            self.protocols.join(","),
            self.seeds.0,
            self.seeds.1
        );
        for s in &self.sets {
            cmd.push_str(&format!(" --set {s}"));
        }
        cmd
    }

    /// Every (protocol, seed) to run, in report order.
    pub fn runs(&self) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        for p in &self.protocols {
            for seed in self.seeds.0..=self.seeds.1 {
                out.push((p.clone(), seed));
            }
        }
        out
    }
}

/// One operation for the latency figure.
#[derive(Clone, Copy, Debug)]
pub struct OpPoint {
    /// When it was invoked, seconds.
    pub at_s: f64,
    /// How long until it completed (or the client gave up), milliseconds.
    pub latency_ms: f64,
    /// 0 ok, 1 fail, 2 info.
    pub outcome: u8,
}

/// What the figures and tables need of one run.
#[derive(Debug)]
pub struct RunData {
    /// The protocol.
    pub protocol: String,
    /// The seed.
    pub seed: u64,
    /// The run's report (measures, checks, faults).
    pub report: RunReport,
    /// Ok completions per [`BIN_MS`] bin, by the side the operation was invoked on.
    pub rate: BTreeMap<Side, Vec<u32>>,
    /// t-visibility counts per bucket of [`TVIS_EDGES_MS`]: (saw the write or newer, reads).
    pub tvis: Vec<(u64, u64)>,
    /// Reads per bucket of [`K_BUCKETS`].
    pub kstale: Vec<u64>,
    /// Keys the running replicas disagreed on, sampled at the start of each [`BIN_MS`] bin.
    pub diverged: Vec<u32>,
    /// The first seed's details: single operations, the space-time diagram, a counterexample.
    pub detail: Option<Detail>,
}

/// What only the first seed's figures draw.
#[derive(Debug)]
pub struct Detail {
    /// Every completed or abandoned operation.
    pub ops: Vec<OpPoint>,
    /// The space-time diagram of the report's window.
    pub diagram: String,
    /// A counterexample to linearizability of the history, when it has one (searched within
    /// a step budget, so a run that is not linearizable may still have none here).
    pub counterexample: Option<Counterexample>,
    /// The history's event times, microseconds (a counterexample names events by index).
    pub event_times_us: Vec<u64>,
}

/// The window the report's space-time diagrams show: from 10ms before the first fault to
/// 40ms after it (or the run's first 50ms without faults).
pub fn diagram_window(first_fault_us: Option<u64>) -> Window {
    match first_fault_us {
        Some(t) => Window {
            from_us: t.saturating_sub(10_000),
            to_us: t + 40_000,
        },
        None => Window {
            from_us: 0,
            to_us: 50_000,
        },
    }
}

/// Runs `path` with `protocol` at `seed`; with `detail`, keeps the first seed's details.
pub fn run_one(
    path: &str,
    protocol: &str,
    seed: u64,
    sets: &[String],
    detail: bool,
) -> Result<RunData, LoadError> {
    let overrides = Overrides {
        seed: Some(seed),
        protocol: Some(protocol.to_string()),
        bugs: vec![],
        sets: sets.to_vec(),
    };
    let scenario = scenario::load_file(path, &overrides)?;
    let window = diagram_window(first_fault_us(&scenario));
    let mut options = RunOptions {
        sample_divergence: Some(simkv_protocols::Span::millis(BIN_MS)),
        ..RunOptions::default()
    };
    let captured = if detail {
        let (trace, captured) = DiagramTrace::new(window);
        options.trace = Some(trace);
        Some(captured)
    } else {
        None
    };
    let result = runner::run(&scenario, options);
    let history = &result.history;
    let rate = rate(history, &result.sides);
    let edges_us: Vec<u64> = TVIS_EDGES_MS.iter().map(|ms| ms * 1000).collect();
    let (behind, tvis) = staleness::pbs_measures(history, &edges_us);
    let mut kstale = vec![0u64; K_BUCKETS.len()];
    for k in behind {
        let b = match k {
            0..=2 => k,
            3..=4 => 3,
            5..=8 => 4,
            _ => 5,
        };
        kstale[b] += 1;
    }
    let detail = captured.map(|captured| Detail {
        ops: op_points(history),
        diagram: spacetime(&captured.lines(), &result.report, window),
        counterexample: counterexample(&result.report, history),
        event_times_us: history.events.iter().map(|e| e.time.as_micros()).collect(),
    });
    let diverged = result
        .divergence
        .iter()
        .map(|(_, keys)| u32::try_from(*keys).unwrap_or(u32::MAX))
        .collect();
    Ok(RunData {
        protocol: result.report.protocol.clone(),
        seed,
        report: result.report,
        rate,
        tvis,
        kstale,
        diverged,
        detail,
    })
}

/// When the first scripted fault fires, if its time is exact (a nemesis's are drawn in the
/// run; the window then starts at the run's beginning).
fn first_fault_us(scenario: &scenario::Scenario) -> Option<u64> {
    scenario
        .faults
        .iter()
        .filter(|f| f.at == f.at_latest)
        .map(|f| f.at.as_micros())
        .min()
}

/// Ok completions per bin by the side their operation was invoked on.
fn rate(history: &History, sides: &[Side]) -> BTreeMap<Side, Vec<u32>> {
    let mut out: BTreeMap<Side, Vec<u32>> = BTreeMap::new();
    for (e, side) in history.events.iter().zip(sides) {
        if matches!(e.outcome, Some(Outcome::Ok(_))) {
            let bin = (e.time.as_micros() / 1000 / BIN_MS) as usize;
            let v = out.entry(*side).or_default();
            if v.len() <= bin {
                v.resize(bin + 1, 0);
            }
            v[bin] += 1;
        }
    }
    out
}

/// Each operation's invocation time, latency and outcome (pairing by process: one
/// operation in flight each).
fn op_points(history: &History) -> Vec<OpPoint> {
    let mut open: Vec<Option<u64>> = Vec::new();
    let mut out = Vec::new();
    for e in &history.events {
        let c = e.client.0 as usize;
        if open.len() <= c {
            open.resize(c + 1, None);
        }
        let Some(outcome) = &e.outcome else {
            open[c] = Some(e.time.as_micros());
            continue;
        };
        let Some(start) = open[c].take() else {
            continue;
        };
        out.push(OpPoint {
            at_s: start as f64 / 1e6,
            latency_ms: (e.time.as_micros() - start) as f64 / 1000.0,
            outcome: match outcome {
                Outcome::Ok(_) => 0,
                Outcome::Fail(_) => 1,
                Outcome::Info => 2,
            },
        });
    }
    out
}

/// The budget of the report's own linearizability search: steps and memory only, never
/// wall time, so that the report cannot depend on the machine.
fn report_budget() -> Budget {
    Budget {
        deadline: None,
        max_steps: 1 << 24,
        max_memo_entries: 1 << 20,
        max_value_bytes: 64 << 20,
        lowest_key: true,
        ..Budget::default()
    }
}

/// A counterexample to the history's linearizability: searched only when the run did not
/// pass the linearizability check (broken, or measured only, for protocols that do not
/// promise it).
fn counterexample(report: &RunReport, history: &History) -> Option<Counterexample> {
    let passed = report
        .checks
        .iter()
        .any(|c| c.name.as_str() == "linearizability" && c.verdict == Verdict::Pass);
    if passed {
        return None;
    }
    match lincheck::check_simkv_history(history, &report_budget()).verdict {
        lincheck::Verdict::NotLinearizable(cx) => Some(*cx),
        _ => None,
    }
}

/// The report's files, by name.
pub fn build(plan: &Plan, runs: &[RunData]) -> BTreeMap<String, String> {
    page::build(plan, runs)
}

/// The Markdown summary alone (what the snapshot test pins).
pub fn summary_markdown(plan: &Plan, runs: &[RunData]) -> String {
    page::summary(plan, runs)
}
