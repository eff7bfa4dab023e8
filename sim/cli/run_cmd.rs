//! `simkv run`: load, run, check, report.

use crate::outputs;
use crate::scenario_args::ScenarioArgs;
use crate::Exit;
use simkv_sim::engine::Record;
use simkv_sim::history::History;
use simkv_sim::replay::ReplayFile;
use simkv_sim::runner::{self, RunOptions};
use simkv_sim::scenario;
use simkv_sim::trace::Trace;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Arguments of `simkv run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    scenario: ScenarioArgs,
    /// The seed (overrides the scenario's).
    #[arg(long)]
    seed: Option<u64>,
    /// Write every event as JSON lines to FILE.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    /// Write the history to FILE: Jepsen EDN if it ends in `.edn`, else simkv JSON.
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
    /// Save the run as a replay file (its resolved scenario, fingerprint and event-hash
    /// recording) for `simkv replay`.
    #[arg(long, value_name = "FILE")]
    save_replay: Option<PathBuf>,
    /// Exit 1 unless the run's fingerprint is this one (16 hex digits).
    #[arg(long, value_name = "FINGERPRINT")]
    expect: Option<String>,
    /// Overwrite existing --trace / --history / --save-replay files.
    #[arg(long)]
    force: bool,
    /// Print each node's final store.
    #[arg(long)]
    dump: bool,
    /// Print one JSON object instead of the summary.
    #[arg(long)]
    json: bool,
    /// Print the resolved scenario (every default made explicit) before running.
    #[arg(long)]
    explain: bool,
    /// Draw a space-time diagram of a window of the run (`10s..10.05s`) as an SVG file.
    #[arg(long, num_args = 2, value_names = ["FROM..TO", "FILE.svg"])]
    diagram: Vec<String>,
}

/// Runs the command; returns its exit code.
pub fn run(args: &RunArgs) -> Exit {
    let scenario =
        match scenario::load_file(&args.scenario.source(), &args.scenario.overrides(args.seed)) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{e}");
                return Exit::BadInput;
            }
        };
    if let Some(expected) = &args.expect {
        let hex = expected.len() == 16 && expected.chars().all(|c| c.is_ascii_hexdigit());
        if !hex {
            eprintln!("error: --expect {expected:?}: a fingerprint is 16 hex digits");
            return Exit::BadInput;
        }
    }
    let diagram = match args.diagram.as_slice() {
        [] => None,
        [window, path] => match simkv_sim::report_html::Window::parse(window) {
            Ok(w) if args.trace.is_none() => Some((w, PathBuf::from(path))),
            Ok(_) => {
                eprintln!("error: --diagram and --trace cannot be used together");
                return Exit::BadInput;
            }
            Err(e) => {
                eprintln!("error: {e}");
                return Exit::BadInput;
            }
        },
        _ => {
            eprintln!("error: --diagram takes FROM..TO and FILE.svg");
            return Exit::BadInput;
        }
    };
    let diagram_path = diagram.as_ref().map(|(_, p)| p.clone());
    if let Err(message) = outputs::distinct(
        &[
            ("--trace", args.trace.as_deref()),
            ("--history", args.history.as_deref()),
            ("--save-replay", args.save_replay.as_deref()),
            ("--diagram", diagram_path.as_deref()),
        ],
        &[("the scenario", &args.scenario.scenario)],
    ) {
        eprintln!("error: {message}");
        return Exit::BadInput;
    }
    let outputs = [&args.trace, &args.history, &args.save_replay, &diagram_path];
    for output in outputs.into_iter().flatten() {
        if let Err(message) = check_output_path(output, args.force) {
            eprintln!("error: {message}");
            return Exit::BadInput;
        }
    }
    if args.explain {
        println!("{}", scenario.explain());
    }
    let trace = match &args.trace {
        Some(path) => match File::create(path) {
            Ok(f) => Some(Trace::new(Box::new(BufWriter::new(f)))),
            Err(e) => {
                eprintln!("error: cannot write trace {}: {e}", path.display());
                return Exit::BadInput;
            }
        },
        None => None,
    };
    let (trace, captured) = match (&diagram, trace) {
        (Some((window, _)), _) => {
            let (trace, captured) = simkv_sim::report_html::DiagramTrace::new(*window);
            (Some(trace), Some(captured))
        }
        (None, trace) => (trace, None),
    };
    let replay = args.scenario.replay(scenario.seed);
    let record = args.save_replay.as_ref().map(|_| Record::default());
    let result = runner::run(
        &scenario,
        RunOptions {
            trace,
            replay,
            record,
            sample_divergence: None,
        },
    );
    if let Some(e) = &result.trace_error {
        eprintln!("error: the trace is incomplete: {e}");
    }
    if let (Some((window, path)), Some(captured)) = (&diagram, &captured) {
        let svg = simkv_sim::report_html::spacetime(&captured.lines(), &result.report, *window);
        if let Err(e) = std::fs::write(path, svg) {
            eprintln!("error: cannot write diagram {}: {e}", path.display());
            return Exit::BadInput;
        }
    }
    if let Some(path) = &args.history {
        if let Err(e) = write_history(path, &result.history) {
            eprintln!("error: cannot write history {}: {e}", path.display());
            return Exit::BadInput;
        }
    }
    if let Some(path) = &args.save_replay {
        let file = ReplayFile::of_result(&scenario, &result);
        if let Err(e) = file.save_to(path, args.force) {
            eprintln!("error: cannot write replay file {}: {e}", path.display());
            return Exit::BadInput;
        }
    }
    print_result(args, &result);
    let exit = Exit::from(result.report.verdict);
    match &args.expect {
        Some(expected) if !expected.eq_ignore_ascii_case(&result.report.fingerprint) => {
            eprintln!(
                "error: fingerprint {} is not the expected {}: the run went differently. To \
                 find the first event that differs, save the expected run with \
                 `--save-replay FILE` (on the build that gave {}) and `simkv replay FILE` here",
                result.report.fingerprint,
                expected.to_ascii_lowercase(),
                expected.to_ascii_lowercase()
            );
            exit.worst(Exit::Fail)
        }
        _ => exit,
    }
}

fn print_result(args: &RunArgs, result: &runner::RunResult) {
    if args.json {
        let text = serde_json::to_string_pretty(&result.report).expect("reports serialize");
        println!("{text}");
    } else {
        print!("{}", result.report.render(true));
    }
    if args.dump {
        println!("\ndump:");
        for (node, store) in &result.stores {
            match store {
                None => println!("  {node}: crashed"),
                Some(store) => {
                    let entries: Vec<String> =
                        store.iter().map(|(k, v)| format!("k{k}={v}")).collect();
                    println!("  {node}: {{{}}}", entries.join(", "));
                }
            }
        }
    }
}

/// Refuses to overwrite what the user did not ask to overwrite (the scenario never:
/// [`outputs::distinct`]).
fn check_output_path(path: &Path, force: bool) -> Result<(), String> {
    if path.exists() && !force {
        return Err(format!(
            "{} exists; pass --force to overwrite it",
            path.display()
        ));
    }
    Ok(())
}

fn write_history(path: &Path, history: &History) -> std::io::Result<()> {
    let text = if path.extension().is_some_and(|e| e == "edn") {
        simkv_sim::lincheck::edn::write_history(history)
    } else {
        history.to_json()
    };
    let mut f = BufWriter::new(File::create(path)?);
    f.write_all(text.as_bytes())?;
    f.flush()
}
