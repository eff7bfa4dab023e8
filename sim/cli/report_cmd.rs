//! `simkv report SCENARIO [--protocols a,b] [--seeds 1..=20] [--jobs N] --out DIR [--force]`:
//! the CAP comparison over many seeds as an HTML page with SVG figures and a Markdown
//! summary (see `simkv_sim::report_html`).
//!
//! Runs go on `--jobs` threads; results are gathered and sorted by (protocol, seed) before
//! anything is written, so the files are the same whatever `--jobs`. `DIR` is created if
//! missing; an existing `DIR` that holds anything is refused (exit 2) unless `--force`, which
//! replaces the report's own files there and leaves others alone.

use crate::sweep_cmd::parse_seeds;
use crate::Exit;
use simkv_protocols::ProtocolKind;
use simkv_sim::report_html::{self, Plan, RunData};
use simkv_sim::scenario::{self, Overrides};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Arguments of `simkv report`.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// The scenario file (TOML).
    scenario: PathBuf,
    /// Protocols to compare, comma-separated (default: every protocol that accepts the
    /// scenario's workload).
    #[arg(long, value_delimiter = ',')]
    protocols: Vec<String>,
    /// Seeds: N, A..B or A..=B.
    #[arg(long, default_value = "1..=20")]
    seeds: String,
    /// Runs at once (threads).
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Override any scenario field (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// The directory to write into (created; refused if it holds anything, unless --force).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Write into a directory that holds files, replacing the report's own.
    #[arg(long)]
    force: bool,
}

/// Writes the report; exit 0, or 2 on bad input or an unwritable directory.
pub fn report(args: &ReportArgs) -> Exit {
    match make(args) {
        Ok(()) => Exit::Pass,
        Err(e) => {
            eprintln!("{e}");
            Exit::BadInput
        }
    }
}

fn make(args: &ReportArgs) -> Result<(), String> {
    let seeds = parse_seeds(&args.seeds)?;
    let path = args.scenario.to_string_lossy().to_string();
    let protocols = protocols(args, &path)?;
    let input = [("the scenario", args.scenario.as_path())];
    crate::outputs::distinct(&[("--out", Some(args.out.as_path()))], &input)
        .map_err(|e| format!("error: {e}"))?;
    check_out_dir(&args.out, args.force)?;
    let plan = Plan {
        scenario: path.clone(),
        protocols,
        seeds,
        sets: args.sets.clone(),
    };
    let runs = run_all(&plan, args.jobs)?;
    let files = report_html::build(&plan, &runs);
    // `--force` replaces the report's own files in DIR: never the scenario among them.
    let written: Vec<PathBuf> = files.keys().map(|name| args.out.join(name)).collect();
    let outputs: Vec<(&str, Option<&Path>)> = written
        .iter()
        .map(|p| ("--out", Some(p.as_path())))
        .collect();
    crate::outputs::distinct(&outputs, &input).map_err(|e| format!("error: {e}"))?;
    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("error: cannot create {}: {e}", args.out.display()))?;
    for (name, text) in &files {
        let file = args.out.join(name);
        std::fs::write(&file, text)
            .map_err(|e| format!("error: cannot write {}: {e}", file.display()))?;
    }
    println!("wrote {} files to {}", files.len(), args.out.display());
    println!("{}", args.out.join("index.html").display());
    Ok(())
}

/// The protocols asked for, or every one that serves the scenario's workload.
fn protocols(args: &ReportArgs, path: &str) -> Result<Vec<String>, String> {
    let base = Overrides {
        seed: None,
        protocol: None,
        bugs: vec![],
        sets: args.sets.clone(),
    };
    let scenario = scenario::load_file(path, &base).map_err(|e| e.to_string())?;
    if !args.protocols.is_empty() {
        return Ok(args.protocols.clone());
    }
    let txn = scenario.workload.has_txn();
    let contexts = scenario.workload.contexts;
    let membership = scenario.changes_membership();
    Ok(ProtocolKind::ALL
        .iter()
        .map(|p| p.info())
        .filter(|p| p.transactions || !txn)
        .filter(|p| p.contexts || !contexts)
        .filter(|p| p.membership || !membership)
        .map(|p| p.name.to_string())
        .collect())
}

/// Never writes over files the user did not mean to replace.
fn check_out_dir(dir: &Path, force: bool) -> Result<(), String> {
    if dir.exists() && !dir.is_dir() {
        return Err(format!("error: --out {}: not a directory", dir.display()));
    }
    let busy = std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some());
    if busy && !force {
        return Err(format!(
            "error: --out {}: the directory holds files; choose a new or empty one, or pass \
             --force to replace the report's files there",
            dir.display()
        ));
    }
    Ok(())
}

/// Runs every (protocol, seed) of the plan on `jobs` threads, in (protocol, seed) order.
fn run_all(plan: &Plan, jobs: usize) -> Result<Vec<RunData>, String> {
    let todo = plan.runs();
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<Option<Result<RunData, String>>>> =
        Mutex::new((0..todo.len()).map(|_| None).collect());
    let bar = progress(todo.len() as u64);
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some((protocol, seed)) = todo.get(k) else {
                    break;
                };
                let detail = *seed == plan.seeds.0;
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    report_html::run_one(&plan.scenario, protocol, *seed, &plan.sets, detail)
                        .map_err(|e| e.to_string())
                }))
                .unwrap_or_else(|_| Err(format!("{protocol} seed {seed}: the run panicked")));
                let failed = outcome.is_err();
                if let Ok(mut d) = done.lock() {
                    d[k] = Some(outcome);
                }
                if let Some(bar) = &bar {
                    bar.inc(1);
                }
                if failed {
                    next.store(todo.len(), Ordering::Relaxed);
                }
            });
        }
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let done = done
        .into_inner()
        .map_err(|_| "a run panicked".to_string())?;
    let mut runs = Vec::with_capacity(done.len());
    for outcome in done {
        match outcome {
            Some(Ok(run)) => runs.push(run),
            Some(Err(e)) => return Err(e),
            None => return Err("error: a run did not finish".into()),
        }
    }
    Ok(runs)
}

/// A progress bar on stderr, only when stderr is a terminal.
fn progress(len: u64) -> Option<indicatif::ProgressBar> {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(len);
    let style = ProgressStyle::with_template("[{bar:30}] {pos}/{len} runs, ETA {eta}")
        .expect("a valid template")
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_draw_target(ProgressDrawTarget::stderr());
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    Some(bar)
}
