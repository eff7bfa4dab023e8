//! `simkv sweep`: one scenario over a range of seeds, as CI does to find protocol bugs.
//!
//! Seeds run on `--jobs` threads and print in seed order, so the output is the same whatever
//! the number of jobs. The seeds run are always a prefix of the range (or of the shard's
//! slice of it): `--until-broken` ends it at the N-th broken seed (seeds after it that were
//! already running are dropped, unprinted and unsaved), `--for` when the wall time is up.
//! The wall clock decides only how many seeds run, never what a seed does.

use crate::scenario_args::ScenarioArgs;
use crate::sweep_summary::{self, SeedEntry, SeedRange, Shard, Stopped, Summary};
use crate::Exit;
use simkv_protocols::digest::StableHasher;
use simkv_sim::replay::{verdict_name, ReplayFile};
use simkv_sim::report::{RunReport, RunVerdict};
use simkv_sim::runner::{self, RunOptions};
use simkv_sim::scenario::{self, Scenario};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Arguments of `simkv sweep`.
#[derive(clap::Args, Debug)]
pub struct SweepArgs {
    /// The scenario file (TOML); not with --merge.
    #[arg(required_unless_present = "merge")]
    scenario: Option<PathBuf>,
    /// The protocol (overrides the scenario's).
    #[arg(long)]
    protocol: Option<String>,
    /// Switch a planted bug on (repeatable; `simkv list bugs`).
    #[arg(long = "bug", value_name = "NAME")]
    bugs: Vec<String>,
    /// Override any scenario field: `--set network.drop=5%` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Seeds to run: `N`, `A..B` (B excluded) or `A..=B` [default: 1..=100; with --for,
    /// every seed from 1 on].
    #[arg(long)]
    seeds: Option<String>,
    /// Stop at the first seed that breaks a promise (the same as --until-broken 1).
    #[arg(long, conflicts_with = "until_broken")]
    first: bool,
    /// Stop after N seeds broke a promise.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    until_broken: Option<u64>,
    /// Run seeds from the start of the range until this much wall time is up (`90s`,
    /// `10m`, `1h`, `1h30m`); with no --seeds the range is open-ended.
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_wall_duration)]
    for_: Option<Duration>,
    /// Run only shard I of N (1-based): the seeds whose offset from the range's first seed
    /// is I-1 modulo N. Merge the shards' --out DIRs with --merge.
    #[arg(long, value_name = "I/N", value_parser = Shard::parse)]
    shard: Option<Shard>,
    /// Save every broken or unknown seed as a replay file in DIR, and the summary as
    /// DIR/summary.json (never overwriting: summary-2.json, ...).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print one JSON summary object instead of each seed's line and the text summary.
    #[arg(long)]
    json: bool,
    /// Seeds run at once, each on its own thread; the output is in seed order and the
    /// same whatever the number.
    #[arg(
        long,
        default_value_t = 1,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
    )]
    jobs: usize,
    /// Merge the summaries (DIR/summary*.json) of a sweep's shards into one, instead of
    /// running a scenario: `simkv sweep --merge d1 d2 d3`.
    #[arg(
        long,
        value_name = "DIR",
        num_args = 1..,
        conflicts_with_all = [
            "scenario", "protocol", "bugs", "sets", "seeds", "first", "until_broken",
            "for_", "shard", "out",
        ]
    )]
    merge: Vec<PathBuf>,
}

impl SweepArgs {
    fn scenario_args(&self) -> ScenarioArgs {
        ScenarioArgs {
            scenario: self.scenario.clone().unwrap_or_default(),
            protocol: self.protocol.clone(),
            bugs: self.bugs.clone(),
            sets: self.sets.clone(),
        }
    }

    fn until_broken(&self) -> Option<u64> {
        if self.first {
            Some(1)
        } else {
            self.until_broken
        }
    }
}

/// Parses a wall-clock duration: one or more `<number><unit>` with unit `ms`, `s`, `m` or
/// `h` (`90s`, `10m`, `1h30m`), above zero.
fn parse_wall_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!("expected a wall-clock duration above 0 such as 90s, 10m or 1h30m; got {text:?}")
    };
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.checked_mul(60).ok_or_else(bad)?),
            "h" => Duration::from_secs(n.checked_mul(3600).ok_or_else(bad)?),
            _ => return Err(bad()),
        };
        total = total.checked_add(unit).ok_or_else(bad)?;
        rest = &rest[unit_len..];
    }
    if total.is_zero() {
        return Err(bad());
    }
    Ok(total)
}

/// The seeds a sweep runs, in order: `lo..=hi`, or one shard's slice of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    lo: u64,
    hi: u64,
    shard: Option<Shard>,
}

impl Plan {
    /// `(offset of the first seed, stride)`.
    fn slice(&self) -> (u64, u64) {
        self.shard.map_or((0, 1), |s| (s.index - 1, s.count))
    }

    /// The `k`-th seed (0-based), if the plan has that many.
    pub fn seed(&self, k: u64) -> Option<u64> {
        let (offset, stride) = self.slice();
        let seed = self
            .lo
            .checked_add(k.checked_mul(stride)?.checked_add(offset)?)?;
        (seed <= self.hi).then_some(seed)
    }

    /// How many seeds the plan has (saturating at `u64::MAX`).
    pub fn len(&self) -> u64 {
        let (offset, stride) = self.slice();
        let span = self.hi - self.lo;
        if offset > span {
            0
        } else {
            ((span - offset) / stride).saturating_add(1)
        }
    }
}

/// One seed's outcome.
struct SeedRun {
    seed: u64,
    verdict: RunVerdict,
    fingerprint: String,
    failed: Vec<String>,
    /// The scenario and report of a broken or unknown seed, for its replay file.
    run: Option<Box<(Scenario, RunReport)>>,
}

impl SeedRun {
    /// The seed's line, as the sweep has always printed it.
    fn line(&self) -> String {
        format!(
            "seed {:<6} {:<8} fingerprint {}  {}",
            self.seed,
            verdict_name(self.verdict),
            self.fingerprint,
            self.failed.join(" ")
        )
    }
}

fn run_seed(args: &ScenarioArgs, source: &str, seed: u64) -> Result<SeedRun, String> {
    let overrides = args.overrides(Some(seed));
    let scenario = scenario::load_file(source, &overrides).map_err(|e| e.to_string())?;
    let report = runner::run(&scenario, RunOptions::default()).report;
    Ok(SeedRun {
        seed,
        verdict: report.verdict,
        fingerprint: report.fingerprint.clone(),
        failed: report.failed_promises(),
        run: (report.verdict != RunVerdict::Kept).then(|| Box::new((scenario, report))),
    })
}

/// Saves one broken or unknown seed's replay file into `dir`, never overwriting.
fn save_replay(dir: &Path, scenario: &Scenario, report: &RunReport) -> std::io::Result<PathBuf> {
    // Seeds run unrecorded (recording costs about a tenth); a saved one runs again with its
    // checkpoints and event log, for `simkv replay`'s divergence search. Same scenario and
    // seed, same run: the fingerprint is the one the sweep printed.
    let result = runner::run(scenario, RunOptions::recorded());
    debug_assert_eq!(result.report.fingerprint, report.fingerprint);
    ReplayFile::of_result(scenario, &result).save_new(dir)
}

/// Runs the plan's seeds on `jobs` threads from the first on, handing each outcome to
/// `take` in seed order until `take` says stop, the plan ends or `deadline` passes (no seed
/// starts after it). A seed that cannot load ends the sweep with its error.
fn run_seeds(
    args: &ScenarioArgs,
    source: &str,
    plan: Plan,
    jobs: usize,
    deadline: Option<Instant>,
    mut take: impl FnMut(SeedRun) -> Result<bool, String>,
) -> Result<(), String> {
    let next = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let (tx, rx) = std::sync::mpsc::channel::<(u64, Result<SeedRun, String>)>();
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            let tx = tx.clone();
            let (next, stop) = (&next, &stop);
            scope.spawn(move || loop {
                // The deadline is read before a seed is claimed, so the seeds claimed are
                // always 0..k and every one of them runs to its end.
                if stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(seed) = plan.seed(k) else { break };
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run_seed(args, source, seed)
                }))
                .unwrap_or_else(|_| Err(format!("seed {seed}: the run panicked")));
                if tx.send((k, outcome)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let mut pending = BTreeMap::new();
        let mut want = 0u64;
        let mut result = Ok(());
        for (k, outcome) in rx {
            if stop.load(Ordering::Relaxed) {
                continue; // drain: the seeds still running finish, unreported
            }
            pending.insert(k, outcome);
            while let Some(outcome) = pending.remove(&want) {
                want += 1;
                let go_on = outcome.and_then(&mut take);
                match go_on {
                    Ok(true) => {}
                    Ok(false) => {
                        stop.store(true, Ordering::Relaxed);
                        break;
                    }
                    Err(e) => {
                        result = Err(e);
                        stop.store(true, Ordering::Relaxed);
                        break;
                    }
                }
            }
        }
        result
    })
}

/// The progress bar: on stderr, only when stderr is a terminal. Its message is the count
/// of broken seeds so far.
fn progress(plan: Plan, time_box: Option<Duration>) -> Option<indicatif::ProgressBar> {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
    use std::fmt::Write;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let (bar, template) = match time_box {
        Some(_) => (
            ProgressBar::new_spinner(),
            "{spinner} {pos} seeds, {msg}, {rate}, {left}",
        ),
        None => (
            ProgressBar::new(plan.len()),
            "[{bar:30}] {pos}/{len} seeds, {msg}, {rate}, ETA {eta}",
        ),
    };
    let style = ProgressStyle::with_template(template)
        .expect("a valid template")
        .progress_chars("=> ")
        .with_key("rate", |s: &ProgressState, w: &mut dyn Write| {
            let _ = write!(w, "{:.1} seeds/s", s.per_sec());
        })
        .with_key("left", move |s: &ProgressState, w: &mut dyn Write| {
            let left = time_box.unwrap_or_default().saturating_sub(s.elapsed());
            let _ = write!(w, "{}s left of --for", left.as_secs());
        });
    bar.set_style(style);
    bar.set_message("0 broken");
    bar.set_draw_target(ProgressDrawTarget::stderr());
    bar.enable_steady_tick(Duration::from_millis(200));
    Some(bar)
}

/// The seed range asked for: `--seeds`, or every seed from 1 with `--for`, or 1..=100.
fn seed_range(args: &SweepArgs) -> Result<(u64, u64), String> {
    match (&args.seeds, args.for_) {
        (Some(text), _) => parse_seeds(text),
        (None, Some(_)) => Ok((1, u64::MAX)),
        (None, None) => Ok((1, 100)),
    }
}

/// Runs the sweep (or, with `--merge`, merges shards); exit 0 if every seed kept every
/// promise, 1 if one broke a promise, 3 if one was unknown and none broke, 2 on bad input.
pub fn sweep(args: &SweepArgs) -> Exit {
    if !args.merge.is_empty() {
        return sweep_summary::merge(&args.merge, args.json);
    }
    match sweep_seeds(args) {
        Ok(exit) => exit,
        Err(e) => {
            eprintln!("{e}");
            Exit::BadInput
        }
    }
}

fn sweep_seeds(args: &SweepArgs) -> Result<Exit, String> {
    let (lo, hi) = seed_range(args).map_err(|e| format!("error: {e}"))?;
    let plan = Plan {
        lo,
        hi,
        shard: args.shard,
    };
    let scenario_args = args.scenario_args();
    if let Some(out) = &args.out {
        let input = [("the scenario", scenario_args.scenario.as_path())];
        crate::outputs::distinct(&[("--out", Some(out.as_path()))], &input)
            .map_err(|e| format!("error: {e}"))?;
    }
    let source = scenario_args.source();
    // Loaded once up front: bad input is told before any seed runs, and the summary
    // names the protocol and bugs even when no seed runs.
    let first = scenario::load_file(&source, &scenario_args.overrides(Some(lo)))
        .map_err(|e| e.to_string())?;
    let bytes = std::fs::read(&source).map_err(|e| format!("error: cannot read {source}: {e}"))?;
    let started = Instant::now();
    let deadline = args.for_.map(|d| started + d);
    let bar = progress(plan, args.for_);
    let print = |line: &str| match &bar {
        Some(bar) => bar.suspend(|| println!("{line}")),
        None => println!("{line}"),
    };
    let until_broken = args.until_broken();
    let (mut seeds_run, mut kept) = (0u64, 0u64);
    let (mut broken, mut unknown) = (Vec::new(), Vec::new());
    let mut stopped = Stopped::RangeDone;
    let outcome = run_seeds(&scenario_args, &source, plan, args.jobs, deadline, |run| {
        let mut entry = SeedEntry {
            seed: run.seed,
            failed_checks: run.failed.clone(),
            fingerprint: run.fingerprint.clone(),
            replay_file: None,
        };
        let mut line = run.line();
        if let (Some(dir), Some(saved)) = (&args.out, &run.run) {
            let path = save_replay(dir, &saved.0, &saved.1)
                .map_err(|e| format!("error: --out {}: cannot write: {e}", dir.display()))?;
            line.push_str(&format!("  replay file {}", path.display()));
            entry.replay_file = Some(path.display().to_string());
        }
        if !args.json {
            print(&line);
        }
        seeds_run += 1;
        match run.verdict {
            RunVerdict::Kept => kept += 1,
            RunVerdict::Broken => broken.push(entry),
            RunVerdict::Unknown => unknown.push(entry),
        }
        if let Some(bar) = &bar {
            bar.inc(1);
            bar.set_message(format!("{} broken", broken.len()));
        }
        if until_broken.is_some_and(|n| broken.len() as u64 >= n) {
            stopped = Stopped::UntilBroken;
            return Ok(false);
        }
        Ok(true)
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    outcome?;
    let last_run = seeds_run.checked_sub(1).and_then(|k| plan.seed(k));
    if stopped == Stopped::RangeDone && last_run != plan.seed(plan.len().saturating_sub(1)) {
        stopped = Stopped::TimeUp;
    }
    let wall = started.elapsed().as_secs_f64();
    let summary = Summary {
        format: sweep_summary::FORMAT.into(),
        simkv_version: env!("CARGO_PKG_VERSION").into(),
        source: source.clone(),
        scenario_digest: format!("{:016x}", StableHasher::hash_of(&bytes[..])),
        protocol: first.cluster.protocol.name().into(),
        bugs: first.cluster.bugs.iter().map(|b| b.to_string()).collect(),
        sets: args.sets.clone(),
        seeds: SeedRange {
            first: lo,
            last: hi,
        },
        shard: args.shard,
        merged: Vec::new(),
        stopped,
        seeds_run,
        kept,
        broken,
        unknown,
        wall_clock_seconds: wall,
        wall_clock_seeds_per_second: if wall > 0.0 {
            seeds_run as f64 / wall
        } else {
            0.0
        },
    };
    let saved = match &args.out {
        Some(dir) => Some(
            summary
                .save_new(dir)
                .map_err(|e| format!("error: --out {}: cannot write: {e}", dir.display()))?,
        ),
        None => None,
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&summary).expect("a summary serialises")
        );
    } else {
        print!("{}", summary.render_tail(&scenario_args));
        if let Some(path) = saved {
            println!("summary: {}", path.display());
        }
    }
    Ok(summary.exit())
}

/// Parses `N`, `A..B` or `A..=B` into an inclusive range.
pub(crate) fn parse_seeds(text: &str) -> Result<(u64, u64), String> {
    let bad = || format!("--seeds {text:?}: expected N, A..B or A..=B with A <= B");
    let number = |s: &str| s.trim().parse::<u64>().map_err(|_| bad());
    let (lo, hi) = if let Some((a, b)) = text.split_once("..=") {
        (number(a)?, number(b)?)
    } else if let Some((a, b)) = text.split_once("..") {
        (number(a)?, number(b)?.checked_sub(1).ok_or_else(bad)?)
    } else {
        let n = number(text)?;
        (n, n)
    };
    if lo > hi {
        return Err(bad());
    }
    Ok((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn seed_ranges_parse_inclusive_and_exclusive() {
        assert_eq!(parse_seeds("5"), Ok((5, 5)));
        assert_eq!(parse_seeds("1..4"), Ok((1, 3)));
        assert_eq!(parse_seeds("1..=4"), Ok((1, 4)));
        assert!(parse_seeds("4..1").is_err());
        assert!(parse_seeds("0..0").is_err());
        assert!(parse_seeds("x").is_err());
    }

    #[test]
    fn wall_durations_parse() {
        assert_eq!(parse_wall_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_wall_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_wall_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_wall_duration("250ms"), Ok(Duration::from_millis(250)));
        for bad in ["", "0s", "10", "m", "10x", "1.5h", "-1s"] {
            assert!(parse_wall_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn plans_at_the_ends_of_u64() {
        let all = Plan {
            lo: 0,
            hi: u64::MAX,
            shard: None,
        };
        assert_eq!(all.len(), u64::MAX);
        assert_eq!(all.seed(u64::MAX), Some(u64::MAX));
        let last = Plan {
            lo: u64::MAX - 2,
            hi: u64::MAX,
            shard: Some(Shard { index: 3, count: 3 }),
        };
        assert_eq!(
            (last.len(), last.seed(0), last.seed(1)),
            (1, Some(u64::MAX), None)
        );
        let empty = Plan {
            lo: 1,
            hi: 2,
            shard: Some(Shard { index: 3, count: 3 }),
        };
        assert_eq!((empty.len(), empty.seed(0)), (0, None));
    }

    fn cases() -> u32 {
        std::env::var("SIMKV_PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(256)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(cases()))]

        /// The N shards of a range run every seed of it exactly once, each in order.
        #[test]
        fn shards_partition_the_range(
            lo in prop_oneof![0u64..50, (u64::MAX - 50)..=u64::MAX],
            width in 0u64..60,
            count in 1u64..8,
        ) {
            let hi = lo.saturating_add(width);
            let mut seen = Vec::new();
            for index in 1..=count {
                let plan = Plan { lo, hi, shard: Some(Shard { index, count }) };
                let seeds: Vec<u64> = (0..).map_while(|k| plan.seed(k)).collect();
                prop_assert_eq!(seeds.len() as u64, plan.len());
                prop_assert!(seeds.windows(2).all(|w| w[0] < w[1]));
                prop_assert!(seeds.iter().all(|s| (s - lo) % count == index - 1));
                seen.extend(seeds);
            }
            seen.sort_unstable();
            let range: Vec<u64> = (lo..=hi).collect();
            prop_assert_eq!(seen, range);
        }
    }
}
