//! `simkv list protocols|bugs|scenarios|roles|operators`.

use crate::Exit;
use simkv_protocols::ProtocolKind;
use simkv_sim::scenario;
use std::path::Path;

/// What `simkv list` lists.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum ListWhat {
    /// Name, promises (and `txn` for those that serve transactions), description.
    Protocols,
    /// Protocol, bug name, description.
    Bugs,
    /// Protocol, role name (`*` marks a leading role), description: what fault targets
    /// such as `crash = "leader"` may name.
    Roles,
    /// Path and description.
    Scenarios,
    /// Protocol and the operator commands it acts on (a scenario's `operator` steps).
    Operators,
}

/// Prints the list; exit code 0, or 2 when the scenario folder cannot be read.
pub fn list(what: ListWhat, dir: &Path) -> Exit {
    match what {
        ListWhat::Protocols => {
            for p in ProtocolKind::ALL.iter().map(|p| p.info()) {
                let mut promises: Vec<&str> = p.promises.iter().map(|x| x.name()).collect();
                if p.transactions {
                    promises.push("txn");
                }
                if p.contexts {
                    promises.push("contexts");
                }
                println!(
                    "{:<8}  {:<49}  {}",
                    p.name,
                    promises.join(","),
                    p.description
                );
            }
        }
        ListWhat::Bugs => {
            for p in ProtocolKind::ALL.iter().map(|p| p.info()) {
                for b in p.bugs {
                    println!("{:<8}  {:<28}  {}", p.name, b.name, b.description);
                }
            }
        }
        ListWhat::Roles => {
            for p in ProtocolKind::ALL.iter().map(|p| p.info()) {
                for r in p.roles {
                    let name = format!("{}{}", r.name, if r.leads { " *" } else { "" });
                    println!("{:<8}  {:<16}  {}", p.name, name, r.description);
                }
            }
        }
        ListWhat::Operators => {
            for p in ProtocolKind::ALL.iter().map(|p| p.info()) {
                let commands = match p.operators {
                    [] => "(none)".to_string(),
                    some => some.join(", "),
                };
                println!("{:<8}  {commands}", p.name);
            }
        }
        ListWhat::Scenarios => {
            if !dir.is_dir() {
                eprintln!("error: cannot read scenario folder {}", dir.display());
                return Exit::BadInput;
            }
            for (path, description) in scenario::catalog(dir) {
                match description {
                    Ok(d) => println!("{path:<40}  {d}"),
                    Err(e) => println!("{path:<40}  (invalid: {})", first_line(&e.to_string())),
                }
            }
        }
    }
    Exit::Pass
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}
