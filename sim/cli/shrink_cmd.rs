//! `simkv shrink`: the smallest scenario found that still breaks the same promised checks.
//! The work is [`simkv_sim::shrink`]'s; this reads the input, reports progress and writes
//! the result.

use crate::scenario_args::ScenarioArgs;
use crate::Exit;
use simkv_sim::replay::ReplayFile;
use simkv_sim::scenario::{self, Scenario};
use simkv_sim::shrink::{self, Progress, ShrinkOptions, DEFAULT_BUDGET};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

/// Arguments of `simkv shrink`.
#[derive(clap::Args, Debug)]
pub struct ShrinkArgs {
    /// A replay file (`.json`, as `simkv sweep --out` saves) or a scenario file (TOML) with
    /// the options `simkv run` takes.
    #[command(flatten)]
    scenario: ScenarioArgs,
    /// The seed (overrides the scenario's).
    #[arg(long)]
    seed: Option<u64>,
    /// Write the shrunk scenario to FILE (default: standard output).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Overwrite an existing --out file.
    #[arg(long)]
    force: bool,
    /// At most this many candidate runs.
    #[arg(long, default_value_t = DEFAULT_BUDGET)]
    budget: usize,
    /// The promised check the shrunk run must still fail (repeatable; default: the first
    /// the run fails, in `simkv run`'s order).
    #[arg(long = "check", value_name = "NAME")]
    checks: Vec<String>,
    /// Keep candidates that fail with the planted bugs off too (by default each kept
    /// candidate must keep every promise with its bugs off).
    #[arg(long)]
    no_control: bool,
}

/// Whether `path` holds a replay file rather than a scenario: its name ends in `.json`.
fn is_replay(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "json")
}

fn load(args: &ShrinkArgs) -> Result<Scenario, String> {
    let source = args.scenario.source();
    let overrides = args.scenario.overrides(args.seed);
    if is_replay(&args.scenario.scenario) {
        let file = ReplayFile::load(&args.scenario.scenario)?;
        scenario::load_str(&source, &file.scenario, &overrides).map_err(|e| e.to_string())
    } else {
        scenario::load_file(&source, &overrides).map_err(|e| e.to_string())
    }
}

/// Runs the command; returns its exit code.
pub fn shrink(args: &ShrinkArgs) -> Exit {
    if let Some(out) = &args.out {
        let input = [(
            "the scenario being shrunk",
            args.scenario.scenario.as_path(),
        )];
        if let Err(message) = crate::outputs::distinct(&[("--out", Some(out.as_path()))], &input) {
            eprintln!("error: {message}");
            return Exit::BadInput;
        }
        if out.exists() && !args.force {
            eprintln!(
                "error: {} exists; pass --force to overwrite it",
                out.display()
            );
            return Exit::BadInput;
        }
    }
    let scenario = match load(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return Exit::BadInput;
        }
    };
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(args.budget as u64);
        let style = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} runs {msg}");
        if let Ok(style) = style {
            bar.set_style(style);
        }
        bar
    });
    let mut report = |p: Progress<'_>| match p {
        Progress::Ran { runs, .. } => {
            if let Some(bar) = &bar {
                bar.set_position(runs as u64);
            }
        }
        Progress::Kept(step) => {
            let line = format!("run {:>3}: {}; now {}", step.runs, step.what, step.sizes);
            match &bar {
                Some(bar) => bar.println(line),
                None => eprintln!("{line}"),
            }
        }
    };
    let options = ShrinkOptions {
        budget: args.budget,
        checks: args.checks.clone(),
        control: !args.no_control,
    };
    let result = shrink::shrink(&scenario, &options, &mut report);
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let shrunk = match result {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::BadInput;
        }
    };
    let summary = format!(
        "still fails: {} (the shrunk run fails: {})\nbefore: {}\nafter:  {}\nruns: {} of {}{}\n",
        shrunk.checks.join(", "),
        shrunk.failed.join(", "),
        shrunk.before,
        shrunk.after,
        shrunk.runs,
        args.budget,
        if shrunk.budget_spent {
            " (budget spent: a larger --budget may shrink further)"
        } else {
            ""
        }
    );
    match &args.out {
        Some(path) => {
            let written = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .create_new(!args.force)
                .open(path)
                .and_then(|mut f| f.write_all(shrunk.text.as_bytes()));
            if let Err(e) = written {
                eprintln!("error: cannot write {}: {e}", path.display());
                return Exit::BadInput;
            }
            print!("{summary}");
            println!("wrote {}", path.display());
        }
        None => {
            eprint!("{summary}");
            print!("{}", shrunk.text);
        }
    }
    Exit::Pass
}
