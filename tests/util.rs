//! Running the `simkv` binary from tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (where scenarios/ lives).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `simkv` with `args` from the repository root.
pub fn simkv(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_simkv"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("the simkv binary runs")
}

/// Stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Writes `text` to `name` inside `dir`, returning the path as a string.
pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("temp file");
    path.to_string_lossy().into_owned()
}

/// The summary without its one machine-dependent line.
pub fn without_wall_time(summary: &str) -> String {
    summary
        .lines()
        .filter(|l| !l.starts_with("wall:"))
        .collect::<Vec<_>>()
        .join("\n")
}
