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
    pub(crate) fn new(file: &'a str, original: &'a str, sets: &[String]) -> Result<Self, LoadError> {
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
        for entry in sets {
            let path = apply_set(&mut doc, entry)
                .map_err(|message| LoadError::plain("--set", format!("--set {entry}: {message}")))?;
            prepared.applied.push(Applied {
                entry: entry.clone(),
                path,
            });
        }
        prepared.text = Cow::Owned(doc.to_string());
        Ok(prepared)
    }

    /// An error at `span` of the prepared text, placed where the user wrote it.
    pub(crate) fn error(&self, span: Option<Range<usize>>, message: &str) -> LoadError {
        match span.map(|s| self.place(s)) {
            None => LoadError::plain(self.file, message),
            Some(Place::File(range)) => LoadError::at(self.file, self.original, range, message),
            Some(Place::Set(i)) => {
                LoadError::plain("--set", format!("--set {}: {message}", self.applied[i].entry))
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
            Place::Set(i) => format!("--set {}", self.applied[i].entry),
        }
    }

    /// Maps a span of the prepared text to the file or to the `--set` entry that made it.
    pub(crate) fn place(&self, span: Range<usize>) -> Place {
        if self.applied.is_empty() {
            return Place::File(span);
        }
        let index = self.index.get_or_init(|| {
            let new = entries(&self.text)?;
            let old = entries(self.original)?;
            Some((new, old))
        });
        let last_set = Place::Set(self.applied.len() - 1);
        let Some((new, old)) = index else {
            return last_set;
        };
        let at = span.start;
        let contains = |e: &&Entry| e.span.contains(&at) || e.span.start == at;
        let Some(hit) = new.iter().filter(contains).min_by_key(|e| e.span.len()) else {
            // Outside every item: only the document root's own errors (a missing top-level
            // field), which an override cannot cause.
            return Place::File(0..0);
        };
        if let Some(i) = self.applied.iter().rposition(|a| hit.path.starts_with(&a.path)) {
            return Place::Set(i);
        }
        if let Some(same) = old.iter().find(|e| e.path == hit.path && e.part == hit.part) {
            let offset = at - hit.span.start;
            let start = (same.span.start + offset).min(same.span.end);
            let len = span.len().min(same.span.end - start);
            return Place::File(start..start + len);
        }
        // An item that is not in the file was created by the override beneath it.
        match self.applied.iter().rposition(|a| a.path.starts_with(&hit.path)) {
            Some(i) => Place::Set(i),
            None => last_set,
        }
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
