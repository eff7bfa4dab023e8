//! Every scenario under a directory, for `simkv list scenarios`.

use super::diagnostic::LoadError;
use super::load::load_file;
use super::overrides::Overrides;
use std::path::{Path, PathBuf};

/// How deep `catalog` descends: scenario folders are shallow, and a bound keeps a
/// pathological tree from running away.
const MAX_DEPTH: usize = 16;

/// Every `*.toml` file under `dir`, recursively, sorted by path, with its description or
/// the error that stopped it loading. Paths are shown joined to `dir` as given
/// (`scenarios/bench/primary-100.toml`). Symbolic links to directories are not followed,
/// so a link cycle cannot loop; a directory that cannot be read is listed with its error.
pub fn catalog(dir: &Path) -> Vec<(String, Result<String, LoadError>)> {
    let mut files = Vec::new();
    let mut unreadable = Vec::new();
    collect(dir, 0, &mut files, &mut unreadable);
    let mut entries: Vec<(PathBuf, Result<String, LoadError>)> = files
        .into_iter()
        .map(|path| {
            let shown = path.to_string_lossy().into_owned();
            let loaded = load_file(&shown, &Overrides::default()).map(|s| s.description);
            (path, loaded)
        })
        .chain(unreadable)
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries
        .into_iter()
        .map(|(path, result)| (path.to_string_lossy().into_owned(), result))
        .collect()
}

type Unreadable = (PathBuf, Result<String, LoadError>);

fn collect(dir: &Path, depth: usize, files: &mut Vec<PathBuf>, errors: &mut Vec<Unreadable>) {
    let shown = dir.to_string_lossy().into_owned();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            let error = LoadError::plain(&shown, format!("cannot read {shown}: {e}"));
            errors.push((dir.to_path_buf(), Err(error)));
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if depth < MAX_DEPTH {
                collect(&path, depth + 1, files, errors);
            }
        } else if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            files.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "name = \"x\"\ndescription = \"DESC\"\nduration = \"1s\"\n\
                         [cluster]\nprotocol = \"primary\"\nnodes = 3\n";

    #[test]
    fn lists_toml_files_recursively_sorted_with_descriptions_or_errors() {
        let root = std::env::temp_dir().join(format!("simkv-catalog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("bench/deep")).unwrap();
        let write = |rel: &str, text: &str| std::fs::write(root.join(rel), text).unwrap();
        write("zeta.toml", &VALID.replace("DESC", "last"));
        write("alpha.toml", &VALID.replace("DESC", "first"));
        write("bench/primary-100.toml", &VALID.replace("DESC", "bench"));
        write("bench/deep/broken.toml", "name = ");
        write("notes.md", "not a scenario");
        let listed = catalog(&root);
        let shown: Vec<(String, Result<String, String>)> = listed
            .iter()
            .map(|(p, r)| {
                let rel = p.strip_prefix(root.to_str().unwrap()).unwrap().to_string();
                (rel, r.clone().map_err(|e| e.message))
            })
            .collect();
        assert_eq!(shown.len(), 4, "{shown:?}");
        assert_eq!(shown[0], ("/alpha.toml".into(), Ok("first".into())));
        assert_eq!(shown[1].0, "/bench/deep/broken.toml");
        assert!(shown[1].1.is_err());
        assert_eq!(
            shown[2],
            ("/bench/primary-100.toml".into(), Ok("bench".into()))
        );
        assert_eq!(shown[3], ("/zeta.toml".into(), Ok("last".into())));
        let broken = listed[1].1.as_ref().unwrap_err();
        assert_eq!(broken.file, listed[1].0);
        assert_eq!(broken.line, Some(1));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_missing_directory_is_reported_not_skipped() {
        let listed = catalog(Path::new("no/such/dir"));
        assert_eq!(listed.len(), 1);
        let error = listed[0].1.as_ref().unwrap_err();
        assert!(error
            .to_string()
            .starts_with("error: cannot read no/such/dir: "));
    }
}
