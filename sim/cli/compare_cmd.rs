//! `simkv compare`: the CAP table for one scenario across protocols.

use simkv_sim::scenario::Overrides;
use simkv_sim::{compare, registry};
use std::path::PathBuf;

/// Arguments of `simkv compare`.
#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// The scenario file (TOML).
    scenario: PathBuf,
    /// Protocols to compare, comma-separated (default: every protocol).
    #[arg(long, value_delimiter = ',')]
    protocols: Vec<String>,
    /// The seed (overrides the scenario's).
    #[arg(long)]
    seed: Option<u64>,
    /// Override any scenario field (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
}

/// Prints the Markdown table; exit 0, or 2 on bad input.
pub fn compare(args: &CompareArgs) -> i32 {
    let protocols = if args.protocols.is_empty() {
        registry::protocol_names()
            .into_iter()
            .map(String::from)
            .collect()
    } else {
        args.protocols.clone()
    };
    let base = Overrides {
        seed: args.seed,
        protocol: None,
        bugs: vec![],
        sets: args.sets.clone(),
    };
    match compare::run_all(&args.scenario.to_string_lossy(), &protocols, &base) {
        Ok(reports) => {
            print!("{}", compare::render_markdown(&reports));
            0
        }
        Err(e) => {
            eprintln!("{e}");
            2
        }
    }
}
