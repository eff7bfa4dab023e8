//! Command-line overrides, and `--set key=value` applied to the scenario text.
//!
//! `--set` entries edit a format-preserving copy of the document (toml_edit), which is then
//! printed and deserialized like any file. Errors come back as byte spans of that printed
//! copy, so [`Prepared::place`] maps each span to where the user wrote it: into the
//! overriding entry when the span lies inside an item that an entry set (or created), and
//! otherwise to the same item of the original file, at the same offset within it (the
//! printed copy keeps untouched items' text as written).

use super::diagnostic::LoadError;
use std::borrow::Cow;
use std::cell::OnceCell;
use std::ops::Range;
use toml_edit::{DocumentMut, ImDocument, InlineTable, Item, Table, TableLike, Value};

/// What the command line changes in a scenario, applied in this order: `sets`, then
/// `protocol`, then `bugs`, then `seed`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--seed`: replaces the file's `seed`.
    pub seed: Option<u64>,
    /// `--protocol`: replaces `cluster.protocol`.
    pub protocol: Option<String>,
    /// `--bug`: appended to `cluster.bugs`.
    pub bugs: Vec<String>,
    /// `--set`: each `dotted.key=value`; a number segment indexes an array
    /// (`fault.0.at=12s`), and a value that does not parse as TOML is a string (`5%`).
    pub sets: Vec<String>,
}

/// The message of an error in an entry the swarm drew.
fn drawn(entry: &str, message: &str) -> String {
    format!("the swarm drew `{entry}`: {message}")
}

/// One segment of a path into a TOML document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// A `--set` entry that was applied, with the path it resolved to.
#[derive(Clone, Debug)]
struct Applied {
    entry: String,
    path: Vec<Seg>,
    /// Where in the file the entry was drawn, for an entry the swarm made.
    drawn_at: Option<Range<usize>>,
}

/// Where a span of the prepared text came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    /// This byte range of the original file.
    File(Range<usize>),
    /// The `--set` entry with this index into the applied entries.
    Set(usize),
}

/// The text to deserialize, and how to map its spans back to what the user wrote.
pub(crate) struct Prepared<'a> {
    file: &'a str,
    original: &'a str,
    /// The text after every `--set` entry was applied.
    pub text: Cow<'a, str>,
    applied: Vec<Applied>,
    index: OnceCell<Option<(Vec<Entry>, Vec<Entry>)>>,
}

/// Which part of an item a span covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    Key,
    Item,
}

/// One key or item of a parsed document, with its path and span.
#[derive(Clone, Debug)]
struct Entry {
    path: Vec<Seg>,
    part: Part,
    span: Range<usize>,
}

impl<'a> Prepared<'a> {
    /// Applies `sets` to `original`, the contents of `file`.
    pub(crate) fn new(
        file: &'a str,
        original: &'a str,
        sets: &[String],
    ) -> Result<Self, LoadError> {
        let sets: Vec<(String, Option<Range<usize>>)> =
            sets.iter().map(|s| (s.clone(), None)).collect();
        Self::with_origins(file, original, &sets)
    }

    /// [`Prepared::new`] where some entries were drawn by the swarm from this range of the
    /// file: their errors point there.
    pub(crate) fn with_origins(
        file: &'a str,
        original: &'a str,
        sets: &[(String, Option<Range<usize>>)],
    ) -> Result<Self, LoadError> {
        let mut prepared = Prepared {
            file,
            original,
            text: Cow::Borrowed(original),
            applied: Vec::new(),
            index: OnceCell::new(),
        };
        if sets.is_empty() {
            return Ok(prepared);
        }
        let mut doc: DocumentMut = original.parse().map_err(|e: toml_edit::TomlError| {
            let span = e.span().unwrap_or(0..0);
            LoadError::at(file, original, span, e.message())
        })?;
        for (entry, drawn_at) in sets {
            let path = apply_set(&mut doc, entry).map_err(|message| match drawn_at {
                Some(span) => LoadError::at(file, original, span.clone(), &drawn(entry, &message)),
                None => LoadError::plain("--set", format!("--set {entry}: {message}")),
            })?;
            prepared.applied.push(Applied {
                entry: entry.clone(),
                path,
                drawn_at: drawn_at.clone(),
            });
        }
        prepared.text = Cow::Owned(doc.to_string());
        Ok(prepared)
    }

    /// An error at `span` of the prepared text, placed where the user wrote it.
    pub(crate) fn error(&self, span: Option<Range<usize>>, message: &str) -> LoadError {
        match span.map(|s| self.place(s)) {
            None => LoadError::plain(self.file, message),
            Some(Place::File(range)) => {
                // The error is in the file, but overrides inside the item may be its cause.
                let beneath = self.sets_beneath(range.start);
                let message = match beneath.is_empty() {
                    true => message.to_string(),
                    false => format!("{message} (with --set {})", beneath.join(", --set ")),
                };
                LoadError::at(self.file, self.original, range, &message)
            }
            Some(Place::Set(i)) => {
                let applied = &self.applied[i];
                match &applied.drawn_at {
                    Some(span) => LoadError::at(
                        self.file,
                        self.original,
                        span.clone(),
                        &drawn(&applied.entry, message),
                    ),
                    None => {
                        LoadError::plain("--set", format!("--set {}: {message}", applied.entry))
                    }
                }
            }
        }
    }

    /// `file:line:col` of `span`, or `--set entry` when an override wrote it.
    pub(crate) fn origin(&self, span: Range<usize>) -> String {
        match self.place(span) {
            Place::File(range) => {
                let e = LoadError::at(self.file, self.original, range, "");
                let (line, column) = (e.line.unwrap_or(1), e.column.unwrap_or(1));
                format!("{}:{line}:{column}", self.file)
            }
            Place::Set(i) => match &self.applied[i].drawn_at {
                Some(span) => {
                    let e = LoadError::at(self.file, self.original, span.clone(), "");
                    let (line, column) = (e.line.unwrap_or(1), e.column.unwrap_or(1));
                    format!("{}:{line}:{column} (drawn)", self.file)
                }
                None => format!("--set {}", self.applied[i].entry),
            },
        }
    }

    /// Maps a span of the prepared text to the file or to the `--set` entry that made it.
    pub(crate) fn place(&self, span: Range<usize>) -> Place {
        if self.applied.is_empty() {
            return Place::File(span);
        }
        let last_set = Place::Set(self.applied.len() - 1);
        let Some((_, old)) = self.index() else {
            return last_set;
        };
        let at = span.start;
        let Some(hit) = self.hit(at) else {
            // Outside every item: only the document root's own errors (a missing top-level
            // field), which an override cannot cause.
            return Place::File(0..0);
        };
        if let Some(i) = self
            .applied
            .iter()
            .rposition(|a| hit.path.starts_with(&a.path))
        {
            return Place::Set(i);
        }
        if let Some(same) = old
            .iter()
            .find(|e| e.path == hit.path && e.part == hit.part)
        {
            let offset = at - hit.span.start;
            let start = (same.span.start + offset).min(same.span.end);
            let len = span.len().min(same.span.end - start);
            return Place::File(start..start + len);
        }
        // An item that is not in the file was created by the override beneath it.
        match self
            .applied
            .iter()
            .rposition(|a| a.path.starts_with(&hit.path))
        {
            Some(i) => Place::Set(i),
            None => last_set,
        }
    }
}

impl Prepared<'_> {
    /// Both documents' entries (prepared, original), parsed on first use.
    fn index(&self) -> Option<&(Vec<Entry>, Vec<Entry>)> {
        let index = self.index.get_or_init(|| {
            let new = entries(&self.text)?;
            let old = entries(self.original)?;
            Some((new, old))
        });
        index.as_ref()
    }

    /// The smallest key or item of the prepared text that holds byte `at`.
    fn hit(&self, at: usize) -> Option<&Entry> {
        let (new, _) = self.index()?;
        let contains = |e: &&Entry| e.span.contains(&at) || e.span.start == at;
        new.iter().filter(contains).min_by_key(|e| e.span.len())
    }

    /// The `--set` entries that changed something inside the item of the original file
    /// that holds byte `at`.
    fn sets_beneath(&self, at: usize) -> Vec<&str> {
        let Some((_, old)) = self.index().filter(|_| !self.applied.is_empty()) else {
            return Vec::new();
        };
        let contains = |e: &&Entry| e.span.contains(&at) || e.span.start == at;
        let Some(item) = old.iter().filter(contains).min_by_key(|e| e.span.len()) else {
            return Vec::new();
        };
        let beneath = self
            .applied
            .iter()
            .filter(|a| a.path.starts_with(&item.path));
        beneath.map(|a| a.entry.as_str()).collect()
    }
}

/// Applies one `dotted.key=value` entry; returns the path it set, or why it cannot.
fn apply_set(doc: &mut DocumentMut, entry: &str) -> Result<Vec<Seg>, String> {
    let Some((path, value)) = entry.split_once('=') else {
        return Err("expected `dotted.key=value`".to_string());
    };
    let path = path.trim();
    if path.is_empty() {
        return Err("the key before `=` is empty".to_string());
    }
    let segs: Vec<&str> = path.split('.').map(str::trim).collect();
    if segs.iter().any(|s| s.is_empty()) {
        return Err(format!("the key `{path}` has an empty segment"));
    }
    let value = value.trim();
    let value = value
        .parse::<Value>()
        .unwrap_or_else(|_| Value::from(value));
    let mut resolved = Vec::new();
    set_in_table(doc.as_table_mut(), true, &segs, value, &mut resolved)?;
    Ok(resolved)
}

/// Sets `segs` under a table; `standard` says whether new child tables get their own
/// `[header]` (under a standard table) or are inline (under an inline table).
fn set_in_table(
    table: &mut dyn TableLike,
    standard: bool,
    segs: &[&str],
    value: Value,
    path: &mut Vec<Seg>,
) -> Result<(), String> {
    let Some((key, rest)) = segs.split_first() else {
        return Err("the key is empty".to_string());
    };
    path.push(Seg::Key(key.to_string()));
    if rest.is_empty() {
        table.insert(key, Item::Value(value));
        return Ok(());
    }
    if table.get(key).is_none() {
        let child = if standard {
            let mut t = Table::new();
            // An implicit table prints no header of its own when it only holds tables.
            t.set_implicit(true);
            Item::Table(t)
        } else {
            Item::Value(Value::InlineTable(InlineTable::new()))
        };
        table.insert(key, child);
    }
    match table.get_mut(key) {
        Some(child) => set_in_item(child, rest, value, path),
        None => Err(format!("cannot create `{}`", dotted(path))),
    }
}

fn set_in_item(
    item: &mut Item,
    segs: &[&str],
    value: Value,
    path: &mut Vec<Seg>,
) -> Result<(), String> {
    match item {
        Item::Table(t) => set_in_table(t, true, segs, value, path),
        Item::Value(v) => set_in_value(v, segs, value, path),
        Item::ArrayOfTables(tables) => {
            let (i, rest) = index(segs, tables.len(), path)?;
            if rest.is_empty() {
                return Err(format!(
                    "`{}` is a table: set one of its keys, as in `{}.at=...`",
                    dotted(path),
                    dotted(path)
                ));
            }
            match tables.get_mut(i) {
                Some(t) => set_in_table(t, true, rest, value, path),
                None => Err(format!("there is no `{}`", dotted(path))),
            }
        }
        Item::None => Err(format!("`{}` is empty", dotted(path))),
    }
}

fn set_in_value(
    target: &mut Value,
    segs: &[&str],
    value: Value,
    path: &mut Vec<Seg>,
) -> Result<(), String> {
    match target {
        Value::InlineTable(t) => set_in_table(t, false, segs, value, path),
        Value::Array(array) => {
            let (i, rest) = index(segs, array.len(), path)?;
            let Some(element) = array.get_mut(i) else {
                return Err(format!("there is no `{}`", dotted(path)));
            };
            if rest.is_empty() {
                *element = value;
                Ok(())
            } else {
                set_in_value(element, rest, value, path)
            }
        }
        other => Err(format!(
            "`{}` is {}, not a table",
            dotted(path),
            article(other.type_name())
        )),
    }
}

/// Reads the next segment as an index into an array of `len` elements at `path`.
fn index<'s>(
    segs: &'s [&'s str],
    len: usize,
    path: &mut Vec<Seg>,
) -> Result<(usize, &'s [&'s str]), String> {
    let Some((first, rest)) = segs.split_first() else {
        return Err("the key is empty".to_string());
    };
    let here = dotted(path);
    let Ok(i) = first.parse::<usize>() else {
        return Err(format!(
            "`{here}` is an array: index it by number, as in `{here}.0`"
        ));
    };
    if i >= len {
        return Err(format!(
            "`{here}` has {len} entries, so index {i} is past its end"
        ));
    }
    path.push(Seg::Index(i));
    Ok((i, rest))
}

fn article(type_name: &str) -> String {
    match type_name.as_bytes().first() {
        Some(b'a' | b'e' | b'i' | b'o' | b'u') => format!("an {type_name}"),
        _ => format!("a {type_name}"),
    }
}

fn dotted(path: &[Seg]) -> String {
    let parts: Vec<String> = path
        .iter()
        .map(|s| match s {
            Seg::Key(k) => k.clone(),
            Seg::Index(i) => i.to_string(),
        })
        .collect();
    parts.join(".")
}

/// Every key and item of `text` with its path and span; `None` if it does not parse.
fn entries(text: &str) -> Option<Vec<Entry>> {
    let doc = ImDocument::parse(text).ok()?;
    let mut out = Vec::new();
    walk_table(doc.as_table(), &mut Vec::new(), &mut out);
    Some(out)
}

fn push(out: &mut Vec<Entry>, path: &[Seg], part: Part, span: Option<Range<usize>>) {
    if let Some(span) = span {
        out.push(Entry {
            path: path.to_vec(),
            part,
            span,
        });
    }
}

fn walk_table(table: &dyn TableLike, path: &mut Vec<Seg>, out: &mut Vec<Entry>) {
    for (key, item) in table.iter() {
        path.push(Seg::Key(key.to_string()));
        push(out, path, Part::Key, table.key(key).and_then(|k| k.span()));
        walk_item(item, path, out);
        path.pop();
    }
}

fn walk_item(item: &Item, path: &mut Vec<Seg>, out: &mut Vec<Entry>) {
    match item {
        Item::None => {}
        Item::Value(v) => walk_value(v, path, out),
        Item::Table(t) => {
            push(out, path, Part::Item, t.span());
            walk_table(t, path, out);
        }
        Item::ArrayOfTables(tables) => {
            for (i, t) in tables.iter().enumerate() {
                path.push(Seg::Index(i));
                push(out, path, Part::Item, t.span());
                walk_table(t, path, out);
                path.pop();
            }
        }
    }
}

fn walk_value(value: &Value, path: &mut Vec<Seg>, out: &mut Vec<Entry>) {
    push(out, path, Part::Item, value.span());
    match value {
        Value::Array(array) => {
            for (i, v) in array.iter().enumerate() {
                path.push(Seg::Index(i));
                walk_value(v, path, out);
                path.pop();
            }
        }
        Value::InlineTable(t) => walk_table(t, path, out),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::super::load::fixtures::{fail, load, pos, MINIMAL};
    use super::*;
    use crate::scenario::fault_kinds::{Partition, Restart};
    use crate::scenario::model::{Latency, OpKind};
    use simkv_protocols::{ParamValue, Span, Time};

    fn sets(entries: &[&str]) -> Overrides {
        Overrides {
            sets: entries.iter().map(|e| e.to_string()).collect(),
            ..Overrides::default()
        }
    }

    const WITH_FAULTS: &str = r#"name = "faulty"
description = "two faults"
duration = "20s"

[cluster]
protocol = "primary"
nodes = 3

[workload]
mix = { get = 50, put = 50 }

[[fault]]
at = "5s"
crash = "n1"

[[fault]]
at = "6s"
restart = "n1"
"#;

    #[test]
    fn each_set_form_lands_where_its_path_says() {
        let o = sets(&[
            "cluster.nodes=5",
            "network.drop=5%",
            "workload.mix.cas=10",
            "cluster.params.primary.heartbeat=100ms",
            "fault.0.at=12s",
            "network.latency={ uniform = [\"1ms\",\"2ms\"] }",
            "name=\"renamed\"",
            "seed = 9",
        ]);
        let s = load(WITH_FAULTS, &o).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (s.cluster.nodes, s.name.as_str(), s.seed),
            (5, "renamed", 9)
        );
        assert_eq!(s.network.default.drop_ppm, 50_000);
        let uniform = Latency::Uniform(Span::millis(1), Span::millis(2));
        assert_eq!(s.network.default.latency, uniform);
        let mix = [(OpKind::Get, 50), (OpKind::Put, 50), (OpKind::Cas, 10)];
        assert_eq!(s.workload.mix, mix);
        let heartbeat: Vec<_> = s.cluster.params.iter().collect();
        assert_eq!(
            heartbeat,
            [("heartbeat", &ParamValue::Span(Span::millis(100)))]
        );
        // Overriding a fault's time re-sorts the faults, and its origin names the override.
        assert_eq!(
            s.faults[0].fault,
            Restart(simkv_protocols::NodeId(0).into()).into()
        );
        assert_eq!(s.faults[0].origin.to_string(), "s.toml:17:6");
        assert_eq!(s.faults[1].at, Time(12_000_000));
        assert_eq!(s.faults[1].origin.to_string(), "--set fault.0.at=12s");
    }

    #[test]
    fn sets_create_missing_tables_and_arrays_index_by_number() {
        let o = sets(&[
            "workload.mix.get=10",
            "nemesis.kinds=[\"crash\"]",
            "checks.settle=1s",
        ]);
        let s = load(MINIMAL, &o).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.workload.mix, [(OpKind::Get, 10)]);
        assert!(!s.nemeses.is_empty());
        assert_eq!(s.checks.settle, Span::secs(1));
        let o = sets(&["fault.1.restart=n2"]);
        let s = load(WITH_FAULTS, &o).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            s.faults[1].fault,
            Restart(simkv_protocols::NodeId(1).into()).into()
        );
        let text =
            MINIMAL.to_string() + "[[fault]]\nat = \"1s\"\npartition = [[\"n1\"], [\"n2\"]]\n";
        let s = load(&text, &sets(&["fault.0.partition.1.0=n3"])).unwrap();
        let groups = vec![
            vec![simkv_protocols::NodeId(0)],
            vec![simkv_protocols::NodeId(2)],
        ];
        let shape = crate::scenario::model::PartitionShape::Groups(groups);
        assert_eq!(s.faults[0].fault, Partition(shape).into());
    }

    #[test]
    fn malformed_entries_are_errors_that_quote_the_entry() {
        let cases = [
            (
                "cluster.nodes",
                "--set cluster.nodes: expected `dotted.key=value`",
            ),
            ("=3", "--set =3: the key before `=` is empty"),
            (
                "cluster..nodes=3",
                "--set cluster..nodes=3: the key `cluster..nodes` has an empty",
            ),
            (
                "fault.5.at=1s",
                "--set fault.5.at=1s: `fault` has 2 entries, so index 5 is past",
            ),
            (
                "fault.x.at=1s",
                "--set fault.x.at=1s: `fault` is an array: index it by number",
            ),
            (
                "fault.0=1",
                "--set fault.0=1: `fault.0` is a table: set one of its keys",
            ),
            (
                "name.first=x",
                "--set name.first=x: `name` is a string, not a table",
            ),
            (
                "workload.mix.get.x=1",
                "--set workload.mix.get.x=1: `workload.mix.get` is an",
            ),
        ];
        for (entry, expected) in cases {
            let e = fail(WITH_FAULTS, &sets(&[entry]));
            assert_eq!(e.file, "--set");
            assert_eq!((e.line, e.column), (None, None));
            assert!(e.message.starts_with(expected), "{entry}: {e}");
            assert!(e.to_string().starts_with(&format!("error: {expected}")));
        }
    }

    #[test]
    fn errors_in_overridden_values_point_at_the_override() {
        let cases = [
            (
                "cluster.nodes=0",
                "expected a number of nodes from 1 to 64, found 0",
            ),
            (
                "network.drop=120%",
                "expected a probability from 0% to 100%",
            ),
            ("workload.colour=red", "unknown field `colour`"),
            ("nemesis.interval=1s", "missing field `kinds`"),
            (
                "fault.1.at=30s",
                "expected a fault time before the duration (20s), found 30s",
            ),
            (
                "cluster.params.primary.beat=1s",
                "unknown parameter `beat` of protocol",
            ),
            (
                "network.latency={ uniform = [\"5ms\", \"1ms\"] }",
                "runs backwards",
            ),
            ("duration=0s", "expected a duration longer than 0s"),
        ];
        for (entry, expected) in cases {
            let e = fail(WITH_FAULTS, &sets(&["seed=3", entry]));
            assert_eq!(e.file, "--set", "{entry}: {e}");
            assert!(e.message.starts_with(&format!("--set {entry}: ")), "{e}");
            assert!(e.message.contains(expected), "{entry}: {e}");
        }
    }

    #[test]
    fn errors_elsewhere_still_point_into_the_file() {
        // The overrides add and rewrite lines above the error; it must still be found at
        // its place in the user's file.
        let text = WITH_FAULTS.replace("crash = \"n1\"", "crash = \"n5\"");
        let o = sets(&[
            "seed=3",
            "max_events=10",
            "workload.keys=2",
            "cluster.nodes=4",
        ]);
        let e = fail(&text, &o);
        assert_eq!(e.file, "s.toml");
        assert_eq!((e.line, e.column), pos(&text, "\"n5\""));
        assert_eq!(e.message, "expected a node name n1..n4, found \"n5\"");
        let text = WITH_FAULTS.replace("[workload]", "[workload]\nclients = \"many\"");
        let e = fail(&text, &sets(&["workload.mix.cas=1", "network.fifo=false"]));
        assert_eq!(
            (e.file.as_str(), e.line, e.column),
            ("s.toml", Some(10), Some(11))
        );
        let text = WITH_FAULTS.replace("restart = \"n1\"", "restart = \"n1\"\nheal = true");
        let e = fail(&text, &sets(&["fault.1.at=7s", "fault.0.at=1s"]));
        assert_eq!((e.line, e.column), pos(&text, "[[fault]]\nat = \"6s\""));
        assert!(e.message.contains("exactly one action"), "{e}");
        // The override inside the faulty table is named, the one elsewhere is not.
        let note = "found `heal`, `restart` (with --set fault.1.at=7s)";
        assert!(e.message.ends_with(note), "{e}");
    }

    #[test]
    fn the_file_is_never_modified() {
        let path = std::env::temp_dir().join(format!("simkv-set-{}.toml", std::process::id()));
        std::fs::write(&path, WITH_FAULTS).unwrap();
        let shown = path.to_string_lossy().into_owned();
        let o = sets(&["cluster.nodes=5", "checks.settle=1s"]);
        let s = crate::scenario::load_file(&shown, &o);
        let after = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(after, WITH_FAULTS);
        // The real protocol table knows `primary`.
        assert_eq!(s.map(|s| s.cluster.nodes).map_err(|e| e.to_string()), Ok(5));
    }
}
