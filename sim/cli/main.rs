//! `simkv`: run scenarios, check histories, list what there is.
//!
//! Exit codes, everywhere: 0 = every promise kept / linearizable; 1 = a promise broken /
//! not linearizable; 2 = bad input (usage, unreadable or invalid file); 3 = unknown (a
//! checker's budget ran out). A panic is a bug whatever the input.

mod check_cmd;
mod compare_cmd;
mod list_cmd;
mod run_cmd;
mod scenario_args;
mod sweep_cmd;

use clap::{Parser, Subcommand};

// The simulation allocates a small string or message per event; mimalloc's thread-local
// free lists make that several times cheaper than glibc's malloc. Allocation never decides
// anything in a run, so determinism is untouched.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::path::PathBuf;
use std::process::ExitCode;

/// A deterministic simulation testbed for replication protocols.
#[derive(Parser, Debug)]
#[command(name = "simkv", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a scenario and check every promise of its protocol.
    Run(run_cmd::RunArgs),
    /// Run one scenario over a range of seeds; print each seed's verdict and fingerprint.
    Sweep(sweep_cmd::SweepArgs),
    /// Run one scenario with several protocols and print the CAP comparison table.
    Compare(compare_cmd::CompareArgs),
    /// Check histories for linearizability (Jepsen EDN or simkv JSON).
    Check(CheckCli),
    /// List protocols, planted bugs or scenarios, one per line, name first.
    List {
        /// What to list.
        #[arg(value_enum)]
        what: list_cmd::ListWhat,
        /// Where scenarios live (for `list scenarios`).
        #[arg(long, default_value = "scenarios")]
        dir: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
struct CheckCli {
    /// History files: `.edn` (Jepsen) or `.json` (simkv).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// `register` (Knossos's cas-register) or `kv` (independent keys).
    #[arg(long)]
    model: Option<String>,
    /// The register's initial value (default nil).
    #[arg(long)]
    init: Option<String>,
    /// Give up with "unknown" (exit 3) after this many seconds of search.
    #[arg(long)]
    timeout: Option<f64>,
    /// Print one JSON object per file.
    #[arg(long)]
    json: bool,
    /// Draw the counterexample as a self-contained HTML page.
    #[arg(long, value_name = "FILE.html")]
    explain: Option<PathBuf>,
    /// Replace an existing --explain file.
    #[arg(long)]
    force: bool,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let code = match cli.command {
        Command::Run(args) => run_cmd::run(&args),
        Command::Sweep(args) => sweep_cmd::sweep(&args),
        Command::Compare(args) => compare_cmd::compare(&args),
        Command::Check(c) => check_cmd::check_command(&check_cmd::CheckArgs {
            files: c.files,
            model: c.model,
            init: c.init,
            timeout_s: c.timeout,
            json: c.json,
            explain: c.explain,
            force: c.force,
        }),
        Command::List { what, dir } => list_cmd::list(what, &dir),
    };
    ExitCode::from(u8::try_from(code).unwrap_or(2))
}
