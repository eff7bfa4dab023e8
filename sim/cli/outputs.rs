//! One rule for every command that writes files (`run --trace/--history/--save-replay/
//! --diagram`, `check --explain`, `shrink --out`, `sweep --out`, `report --out`): no two
//! outputs of one command name the same file, and no output names one of the command's
//! inputs (the scenario, a history), once `.`, `..` and links are resolved. A breach is
//! refused (exit 2) before anything runs or is written.

use std::path::{Path, PathBuf};

/// Where `path` leads once `.`, `..` and links are resolved: the file itself when it
/// exists, else its resolved folder joined with its name (it will be created there).
pub fn resolved(path: &Path) -> PathBuf {
    if let Ok(p) = path.canonicalize() {
        return p;
    }
    // A link to a file not made yet: where the link leads (a few hops at most).
    let mut path = path.to_path_buf();
    for _ in 0..8 {
        let Ok(target) = std::fs::read_link(&path) else {
            break;
        };
        path = match path.parent() {
            Some(dir) if target.is_relative() => dir.join(target),
            _ => target,
        };
    }
    let path = path.as_path();
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match (parent.canonicalize(), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => path.to_path_buf(),
    }
}

/// Refuses `outputs` (each with the flag that names it; `None` when not given) that name
/// one file twice or name one of `inputs` (each with what it is: "the scenario"). The
/// message names both flags and paths, as the user wrote them.
pub fn distinct(outputs: &[(&str, Option<&Path>)], inputs: &[(&str, &Path)]) -> Result<(), String> {
    let named: Vec<(&str, &Path, PathBuf)> = outputs
        .iter()
        .filter_map(|(flag, p)| p.map(|p| (*flag, p, resolved(p))))
        .collect();
    for (i, (flag_a, a, ra)) in named.iter().enumerate() {
        for (flag_b, b, rb) in &named[i + 1..] {
            if ra == rb {
                return Err(format!(
                    "{flag_a} {} and {flag_b} {} are the same file; each output needs its own",
                    a.display(),
                    b.display()
                ));
            }
        }
    }
    for (what, input) in inputs {
        let r = resolved(input);
        if let Some((flag, out, _)) = named.iter().find(|(_, _, ro)| *ro == r) {
            return Err(format!(
                "{flag} {} is {what} ({}); an output never overwrites an input, choose another \
                 file",
                out.display(),
                input.display()
            ));
        }
    }
    Ok(())
}
