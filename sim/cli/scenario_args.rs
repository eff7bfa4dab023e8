//! The arguments every command that runs a scenario shares, and the replay command they make.

use simkv_sim::scenario::Overrides;
use std::path::PathBuf;

/// A scenario and what the command line changes in it.
#[derive(clap::Args, Debug, Clone)]
pub struct ScenarioArgs {
    /// The scenario file (TOML).
    pub scenario: PathBuf,
    /// The protocol (overrides the scenario's).
    #[arg(long)]
    pub protocol: Option<String>,
    /// Switch a planted bug on (repeatable; `simkv list bugs`).
    #[arg(long = "bug", value_name = "NAME")]
    pub bugs: Vec<String>,
    /// Override any scenario field: `--set network.drop=5%` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

impl ScenarioArgs {
    /// The scenario's path, as the user gave it.
    pub fn source(&self) -> String {
        self.scenario.to_string_lossy().into_owned()
    }

    /// The loader's overrides, with `seed` if one is given.
    pub fn overrides(&self, seed: Option<u64>) -> Overrides {
        Overrides {
            seed,
            protocol: self.protocol.clone(),
            bugs: self.bugs.clone(),
            sets: self.sets.clone(),
        }
    }

    /// The exact command that replays the run of `seed`.
    pub fn replay(&self, seed: u64) -> String {
        let mut parts = vec!["simkv run".to_string(), quote(&self.source())];
        parts.push(format!("--seed {seed}"));
        if let Some(p) = &self.protocol {
            parts.push(format!("--protocol {}", quote(p)));
        }
        parts.extend(self.bugs.iter().map(|b| format!("--bug {}", quote(b))));
        parts.extend(self.sets.iter().map(|s| format!("--set {}", quote(s))));
        parts.join(" ")
    }
}

/// Quotes a shell word when it needs it.
fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:%,+@".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_commands_quote_what_the_shell_would_split() {
        let args = ScenarioArgs {
            scenario: "scenarios/my run.toml".into(),
            protocol: Some("raft".into()),
            bugs: vec!["vote-not-persisted".into()],
            sets: vec!["workload.mix={ get = 1 }".into()],
        };
        assert_eq!(
            args.replay(7),
            "simkv run 'scenarios/my run.toml' --seed 7 --protocol raft \
             --bug vote-not-persisted --set 'workload.mix={ get = 1 }'"
        );
    }
}
