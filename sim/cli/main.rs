//! `simkv`: run and replay scenarios, check histories, list what there is.
//!
//! Exit codes, everywhere ([`Exit`]): 0 = every promise kept / linearizable; 1 = a promise
//! broken / not linearizable; 2 = bad input (usage, unreadable or invalid file); 3 = unknown
//! (a checker's budget ran out). A panic is a bug whatever the input.

mod check_cmd;
mod check_input;
mod compare_cmd;
mod list_cmd;
mod outputs;
mod replay_cmd;
mod report_cmd;
mod run_cmd;
mod scenario_args;
mod shrink_cmd;
mod sweep_cmd;
mod sweep_summary;

use clap::{Parser, Subcommand};
use simkv_sim::report::RunVerdict;

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
    /// Re-run a replay file; say whether its fingerprint matches, else the first event
    /// that differs.
    Replay(replay_cmd::ReplayArgs),
    /// Run one scenario over a range of seeds; print each seed's verdict and fingerprint.
    Sweep(sweep_cmd::SweepArgs),
    /// Shrink a failing run to a small scenario that still breaks the same checks.
    Shrink(shrink_cmd::ShrinkArgs),
    /// Run one scenario with several protocols and print the CAP comparison table.
    Compare(compare_cmd::CompareArgs),
    /// Run one scenario with several protocols over many seeds; write an HTML report.
    Report(report_cmd::ReportArgs),
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
    /// The model to check EDN against (default: `kv` if every value is a `[key value]`
    /// tuple, else `register`).
    #[arg(long, value_parser = check_cmd::ModelParser)]
    model: Option<check_cmd::Model>,
    /// The register's initial value (default nil).
    #[arg(long)]
    init: Option<String>,
    /// Give up with "unknown" (exit 3) after this many seconds of search [default: 30].
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
    /// For `:txn` histories (checked as Elle does): the model whose violation fails the
    /// check: strict-serializable (default), serializable, snapshot-isolation,
    /// repeatable-read, read-committed or read-uncommitted.
    #[arg(long, value_name = "MODEL")]
    consistency_model: Option<String>,
    /// Search every key even after one is found violated (default: the first violated key
    /// ends the check; keys not yet decided are reported as unknown).
    #[arg(long)]
    all_keys: bool,
    /// Give the counterexample as found, unshrunk.
    #[arg(long, conflicts_with = "shrink_timeout")]
    no_shrink: bool,
    /// Stop shrinking after this many seconds and keep the smallest counterexample found so
    /// far [default: 4 times the decision's time, at least 0.2].
    #[arg(long, value_name = "SECONDS")]
    shrink_timeout: Option<f64>,
}

/// What a command's exit code says: the same contract for every command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Every promise kept; every history linearizable; or nothing to judge went wrong.
    Pass = 0,
    /// A promise broken; a history not linearizable.
    Fail = 1,
    /// Bad input: usage, an unreadable or invalid file.
    BadInput = 2,
    /// Unknown: a checker's budget ran out before an answer.
    Unknown = 3,
}

impl Exit {
    /// The more telling of two codes, for a command that judges several things: bad input
    /// over a failure over unknown over a pass, so that a definite failure is never hidden
    /// behind another's budget running out.
    pub fn worst(self, other: Exit) -> Exit {
        let rank = |e: Exit| match e {
            Exit::Pass => 0,
            Exit::Unknown => 1,
            Exit::Fail => 2,
            Exit::BadInput => 3,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

impl From<RunVerdict> for Exit {
    fn from(verdict: RunVerdict) -> Exit {
        match verdict {
            RunVerdict::Kept => Exit::Pass,
            RunVerdict::Broken => Exit::Fail,
            RunVerdict::Unknown => Exit::Unknown,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}

fn main() -> ExitCode {
    restore_sigpipe();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout and are no error.
            let exit = if e.use_stderr() {
                Exit::BadInput
            } else {
                Exit::Pass
            };
            let _ = e.print();
            return exit.into();
        }
    };
    let exit = match cli.command {
        Command::Run(args) => run_cmd::run(&args),
        Command::Replay(args) => replay_cmd::replay(&args),
        Command::Sweep(args) => sweep_cmd::sweep(&args),
        Command::Compare(args) => compare_cmd::compare(&args),
        Command::Report(args) => report_cmd::report(&args),
        Command::Shrink(args) => shrink_cmd::shrink(&args),
        Command::Check(c) => check_cmd::check_command(&check_cmd::CheckArgs {
            files: c.files,
            model: c.model,
            init: c.init,
            timeout_s: c.timeout,
            json: c.json,
            explain: c.explain,
            force: c.force,
            consistency_model: c.consistency_model,
            all_keys: c.all_keys,
            no_shrink: c.no_shrink,
            shrink_timeout_s: c.shrink_timeout,
        }),
        Command::List { what, dir } => list_cmd::list(what, &dir),
    };
    exit.into()
}

/// A reader that stops early (`simkv sweep ... | head -1`) ends simkv quietly, as it ends any
/// Unix filter: Rust ignores SIGPIPE, so a print to the closed pipe would panic instead.
#[cfg(unix)]
fn restore_sigpipe() {
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL is a valid
    // disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(not(unix))]
fn restore_sigpipe() {}
