//! `simkv sweep`: one scenario over a range of seeds, as CI does to find protocol bugs.

use crate::scenario_args::ScenarioArgs;
use crate::Exit;
use simkv_sim::checks::Verdict;
use simkv_sim::report::RunVerdict;
use simkv_sim::runner::{self, RunOptions};
use simkv_sim::scenario;

/// Arguments of `simkv sweep`.
#[derive(clap::Args, Debug)]
pub struct SweepArgs {
    #[command(flatten)]
    scenario: ScenarioArgs,
    /// Seeds to run: `N`, `A..B` (B excluded) or `A..=B`.
    #[arg(long, default_value = "1..=100")]
    seeds: String,
    /// Stop at the first seed that breaks a promise (with --jobs 1; with more jobs, the
    /// seeds already running finish).
    #[arg(long)]
    first: bool,
    /// Seeds run at once, each on its own thread; the output is in seed order and the
    /// same whatever the number.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
}

/// One seed's outcome, as the sweep prints it.
struct SeedRun {
    seed: u64,
    verdict: RunVerdict,
    line: String,
}

fn run_seed(args: &SweepArgs, source: &str, seed: u64) -> Result<SeedRun, String> {
    let overrides = args.scenario.overrides(Some(seed));
    let scenario = scenario::load_file(source, &overrides).map_err(|e| e.to_string())?;
    let report = runner::run(&scenario, RunOptions::default()).report;
    let failed: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| c.promised && !matches!(c.verdict, Verdict::Pass | Verdict::Skipped))
        .map(|c| c.name.as_str())
        .collect();
    let verdict = format!("{:?}", report.verdict).to_lowercase();
    let line = format!(
        "seed {seed:<6} {verdict:<8} fingerprint {}  {}",
        report.fingerprint,
        failed.join(" ")
    );
    Ok(SeedRun {
        seed,
        verdict: report.verdict,
        line,
    })
}

/// Runs `seeds` on `jobs` threads, returning results in seed order; stops early at the
/// first broken seed when `first` (after the batch in progress).
fn run_seeds(args: &SweepArgs, source: &str, seeds: Vec<u64>) -> Result<Vec<SeedRun>, String> {
    let jobs = args.jobs.max(1);
    let mut results = Vec::with_capacity(seeds.len());
    for batch in seeds.chunks(jobs) {
        let outcomes: Vec<Result<SeedRun, String>> = std::thread::scope(|scope| {
            let handles: Vec<_> = batch
                .iter()
                .map(|seed| scope.spawn(move || run_seed(args, source, *seed)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err("a run panicked".into())))
                .collect()
        });
        for outcome in outcomes {
            let run = outcome?;
            println!("{}", run.line);
            results.push(run);
        }
        if args.first && results.iter().any(|r| r.verdict != RunVerdict::Kept) {
            break;
        }
    }
    Ok(results)
}

/// Parses `N`, `A..B` or `A..=B` into an inclusive range.
fn parse_seeds(text: &str) -> Result<(u64, u64), String> {
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

/// Runs the sweep; exit 0 if every seed kept every promise, 1 if one broke a promise, 3 if
/// one was unknown, 2 on bad input.
pub fn sweep(args: &SweepArgs) -> Exit {
    let (lo, hi) = match parse_seeds(&args.seeds) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::BadInput;
        }
    };
    let source = args.scenario.source();
    let runs = match run_seeds(args, &source, (lo..=hi).collect()) {
        Ok(runs) => runs,
        Err(e) => {
            eprintln!("{e}");
            return Exit::BadInput;
        }
    };
    let pick = |v: RunVerdict| -> Vec<u64> {
        runs.iter()
            .filter(|r| r.verdict == v)
            .map(|r| r.seed)
            .collect()
    };
    let (broken, unknown) = (pick(RunVerdict::Broken), pick(RunVerdict::Unknown));
    println!(
        "swept seeds {lo}..={hi}: {} broken {:?}, {} unknown {:?}",
        broken.len(),
        broken,
        unknown.len(),
        unknown
    );
    if let Some(seed) = broken.first() {
        println!("replay: {}", args.scenario.replay(*seed));
        Exit::Fail
    } else if unknown.is_empty() {
        Exit::Pass
    } else {
        Exit::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::parse_seeds;

    #[test]
    fn seed_ranges_parse_inclusive_and_exclusive() {
        assert_eq!(parse_seeds("5"), Ok((5, 5)));
        assert_eq!(parse_seeds("1..4"), Ok((1, 3)));
        assert_eq!(parse_seeds("1..=4"), Ok((1, 4)));
        assert!(parse_seeds("4..1").is_err());
        assert!(parse_seeds("0..0").is_err());
        assert!(parse_seeds("x").is_err());
    }
}
