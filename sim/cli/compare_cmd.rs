//! `simkv compare`: the CAP table for one scenario across protocols.

use crate::Exit;
use simkv_protocols::ProtocolKind;
use simkv_sim::compare;
use simkv_sim::scenario::{self, Overrides};
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
pub fn compare(args: &CompareArgs) -> Exit {
    let base = Overrides {
        seed: args.seed,
        protocol: None,
        bugs: vec![],
        sets: args.sets.clone(),
    };
    let path = args.scenario.to_string_lossy();
    let protocols = if args.protocols.is_empty() {
        // A workload with transactions is compared across the protocols that serve them.
        let (txn, contexts, membership) = match scenario::load_file(&path, &base) {
            Ok(s) => (
                s.workload.has_txn(),
                s.workload.contexts,
                s.changes_membership(),
            ),
            Err(e) => {
                eprintln!("{e}");
                return Exit::BadInput;
            }
        };
        let chosen: Vec<String> = ProtocolKind::ALL
            .iter()
            .map(|p| p.info())
            .filter(|p| p.transactions || !txn)
            .filter(|p| p.contexts || !contexts)
            .filter(|p| p.membership || !membership)
            .map(|p| p.name.to_string())
            .collect();
        if txn {
            let names = chosen.join(", ");
            eprintln!("note: the workload has txn; comparing the protocols that serve it: {names}");
        }
        if contexts {
            let names = chosen.join(", ");
            eprintln!("note: the workload sends contexts; comparing the protocols that take them: {names}");
        }
        if membership {
            let names = chosen.join(", ");
            eprintln!(
                "note: the cluster's membership changes; comparing the protocols whose nodes \
                 join and leave: {names}"
            );
        }
        chosen
    } else {
        args.protocols.clone()
    };
    match compare::run_all(&path, &protocols, &base) {
        Ok(reports) => {
            print!("{}", compare::render_markdown(&reports));
            Exit::Pass
        }
        Err(e) => {
            eprintln!("{e}");
            Exit::BadInput
        }
    }
}
