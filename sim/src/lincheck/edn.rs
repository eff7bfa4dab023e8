//! Jepsen's EDN histories: a reader that keeps lines and columns, and a writer.
//!
//! A history file is either one collection (vector or list) of operation maps, or operation
//! maps one after another (Jepsen's `history.edn`, one per line). Maps may span lines; `;`
//! comments, commas, `#_` discards and tagged literals (`#jepsen.history.Op{...}`,
//! `#inst "..."`) are understood. Each operation map needs `:type` (`:invoke`, `:ok`, `:fail`,
//! `:info`), `:f` and `:process`; `:value`, `:time`, `:index` and `:error` are optional and
//! other keys are ignored. Operations of keyword processes (`:nemesis`) are skipped; any other
//! non-integer `:process` (a string, a float, an integer past 2^63 - 1) is an error.
//!
//! The meaning follows Knossos so that verdicts agree with Jepsen's tooling: see
//! [`prepare`]. The reader never panics: malformed input is a [`HistoryError`] with a line and
//! a column and what was expected.

use super::model::FxHashMap;
use super::model::{CasOutcome, Compound, Interner, Kind, Part, Val, ABSENT};
use super::{Joins, Layout, Naming, Operation, Partition, Prepared, Slots, PENDING};
use crate::history::{History, HistoryError, Outcome};
use simkv_protocols::{Op, OpResult};
use std::fmt::Write as _;

mod reader;
#[cfg(test)]
mod tests;
pub use reader::{parse_value, Edn};

/// The type of an operation record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpType {
    /// The operation was invoked.
    Invoke,
    /// It completed and took effect.
    Ok,
    /// It definitely did not take effect.
    Fail,
    /// Unknown: it may take effect at any time after its invocation, or never.
    Info,
}

/// Who performed an operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Process {
    /// A client process.
    Client(u64),
    /// Anything else (`:nemesis`): its operations are not checked.
    Other(String),
}

/// One operation record of an EDN history.
#[derive(Clone, Debug, PartialEq)]
pub struct EdnOp {
    /// Line of the record's opening brace, from 1.
    pub line: usize,
    /// Column of the record's opening brace, from 1.
    pub column: usize,
    /// `:type`.
    pub kind: OpType,
    /// `:f`, without its colon.
    pub f: String,
    /// `:process`.
    pub process: Process,
    /// `:value` (nil when missing).
    pub value: Edn,
    /// `:time`, when present.
    pub time: Option<i64>,
    /// `:index`, when present.
    pub index: Option<i64>,
    /// `:error`, when present.
    pub error: Option<Edn>,
}

/// A parsed EDN history, in file order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EdnHistory {
    /// The operation records.
    pub ops: Vec<EdnOp>,
}

/// The models an EDN history can be checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EdnModel {
    /// Knossos's cas-register: `:read`, `:write`, `:cas [old new]`; one register.
    Register,
    /// jepsen.independent: `:value [key value]`, each key a register that also supports
    /// `:append` (string concatenation), `:delete`, `:update`, and `:get`/`:put` aliases.
    Kv,
}

impl EdnModel {
    /// The model's name, as `--model` spells it.
    pub fn name(self) -> &'static str {
        match self {
            EdnModel::Register => "register",
            EdnModel::Kv => "kv",
        }
    }
}

fn error(line: usize, column: usize, message: impl Into<String>) -> HistoryError {
    HistoryError {
        line,
        column,
        // Echoes of the history are escaped and cut before they reach a terminal.
        message: crate::shown::shown(&message.into()),
    }
}

/// Reads and parses an EDN history file. Errors name the line and column; an unreadable
/// file or one that is not UTF-8 is an error at its start or at the first bad byte.
pub fn read_file(path: &std::path::Path) -> Result<EdnHistory, HistoryError> {
    let text = std::fs::read_to_string(path).map_err(|e| error(1, 1, e.to_string()))?;
    parse(&text)
}

/// An EDN history file, prepared with `model` (else the guessed one): streamed
/// ([`prepare_stream`]) when it can be, else read whole ([`read_file`], [`guess_model`],
/// [`prepare`]), whose errors name the line and column.
pub fn read_file_prepared(
    path: &std::path::Path,
    model: Option<EdnModel>,
    init: Option<&Edn>,
) -> Result<Prepared, HistoryError> {
    if let Ok(file) = std::fs::File::open(path) {
        let input = std::io::BufReader::with_capacity(1 << 16, file);
        if let Some(prepared) = prepare_stream(input, model, init) {
            return Ok(prepared);
        }
    }
    let history = read_file(path)?;
    let model = model.unwrap_or_else(|| guess_model(&history));
    prepare(&history, model, init)
}

/// Parses an EDN history.
pub fn parse(text: &str) -> Result<EdnHistory, HistoryError> {
    let mut ops = Vec::new();
    reader::records(text, |line, column, edn| {
        ops.push(to_op(line, column, edn)?);
        Ok(())
    })?;
    Ok(EdnHistory { ops })
}

fn to_op(line: usize, column: usize, edn: Edn) -> Result<EdnOp, HistoryError> {
    let mut edn = edn;
    while let Edn::Tagged(_, inner) = edn {
        edn = *inner;
    }
    let Edn::Map(mut entries) = edn else {
        return Err(error(
            line,
            column,
            "expected an operation map {:type ... :f ... :process ...}",
        ));
    };
    // Each field is taken out of the record (no copy); each is asked for once.
    let mut get = |key: &str| {
        entries
            .iter()
            .position(|(k, _)| matches!(k, Edn::Keyword(n) if n == key))
            .map(|i| std::mem::replace(&mut entries[i].1, Edn::Nil))
    };
    let fields = OpFields {
        value: get("value"),
        kind: get("type"),
        f: get("f"),
        process: get("process"),
        time: get("time"),
        index: get("index"),
        error: get("error"),
    };
    op_from_fields(line, column, fields)
}

/// The fields of an operation map that [`EdnOp`] keeps (the first of each, when a map has
/// one twice), as read.
#[derive(Default)]
struct OpFields {
    value: Option<Edn>,
    kind: Option<Edn>,
    f: Option<Edn>,
    process: Option<Edn>,
    time: Option<Edn>,
    index: Option<Edn>,
    error: Option<Edn>,
}

fn op_from_fields(line: usize, column: usize, fields: OpFields) -> Result<EdnOp, HistoryError> {
    let at = |msg: String| error(line, column, msg);
    let OpFields {
        value,
        kind,
        f,
        process,
        time,
        index,
        error,
    } = fields;
    let kind = match kind {
        Some(Edn::Keyword(t)) => match t.as_str() {
            "invoke" => OpType::Invoke,
            "ok" => OpType::Ok,
            "fail" => OpType::Fail,
            "info" => OpType::Info,
            other => {
                return Err(at(format!(
                    "expected :type :invoke, :ok, :fail or :info, found :{other}"
                )))
            }
        },
        Some(other) => return Err(at(format!("expected :type to be a keyword, found {other}"))),
        None => return Err(at("the operation has no :type".to_string())),
    };
    let f = match f {
        Some(Edn::Keyword(f)) | Some(Edn::Symbol(f)) | Some(Edn::Str(f)) => f,
        Some(other) => return Err(at(format!("expected :f to be a keyword, found {other}"))),
        // The Elle paper's example operations omit :f: a value that is a vector of
        // micro-operations is a :txn.
        None if looks_like_txn(value.as_ref()) => "txn".to_string(),
        None => return Err(at("the operation has no :f".to_string())),
    };
    let process = match process {
        Some(Edn::Int(p)) if p >= 0 => Process::Client(p as u64),
        Some(Edn::Int(p)) => {
            return Err(at(format!("expected a non-negative :process, found {p}")))
        }
        Some(Edn::Nil) | None => return Err(at("the operation has no :process".to_string())),
        // Knossos's rule: a keyword process (`:nemesis`) is not a client, and is not checked.
        Some(Edn::Keyword(k)) => Process::Other(format!(":{k}")),
        // Anything else would be dropped unread, and the check would judge what is left.
        Some(other) => {
            return Err(at(format!(
                "expected :process to be a client number from 0 to {} or a keyword such as \
                 :nemesis, found {}",
                i64::MAX,
                crate::shown::shown(&other.to_string())
            )))
        }
    };
    // Informational only: a :time that is not an integer (an #inst) is kept as absent.
    let int = |v: Option<Edn>| match v {
        Some(Edn::Int(i)) => Some(i),
        _ => None,
    };
    Ok(EdnOp {
        line,
        column,
        kind,
        f,
        process,
        value: value.unwrap_or(Edn::Nil),
        time: int(time),
        index: int(index),
        error,
    })
}

/// Whether a `:value` is a vector of micro-operations, `[[:r k v] [:append k v] ...]`.
fn looks_like_txn(value: Option<&Edn>) -> bool {
    let Some(Edn::Vector(items) | Edn::List(items)) = value else {
        return false;
    };
    !items.is_empty()
        && items.iter().all(|item| match item {
            Edn::Vector(x) | Edn::List(x) => {
                x.len() == 3
                    && matches!(&x[0], Edn::Keyword(f)
                        if matches!(f.as_str(), "r" | "w" | "append" | "read" | "write"))
            }
            _ => false,
        })
}

/// The model a history most likely means: `kv` when it has `:txn` operations, or when every
/// client operation's value is a `[key value]` pair and some read or write is among them (a cas-register's cas values are
/// pairs too, but its reads and writes are not), else `register`. `--model` overrides.
pub fn guess_model(history: &EdnHistory) -> EdnModel {
    let clients = || {
        history
            .ops
            .iter()
            .filter(|o| matches!(o.process, Process::Client(_)))
    };
    if clients().any(|o| o.f == "txn") {
        return EdnModel::Kv;
    }
    let pair = |v: &Edn| matches!(v, Edn::Vector(x) | Edn::List(x) if x.len() == 2);
    let all_pairs = clients().all(|o| pair(&o.value));
    let some_rw = clients().any(|o| !matches!(o.f.as_str(), "cas") && pair(&o.value));
    if all_pairs && some_rw {
        EdnModel::Kv
    } else {
        EdnModel::Register
    }
}

/// An invocation waiting for its completion: its position, its record, key and reserved
/// slot.
struct Open {
    at: usize,
    inv: EdnOp,
    key: String,
    slot: (usize, usize),
}

/// Pairs an EDN history's records and compiles them for `model`, Knossos's way:
///
/// - a `:fail` operation did not happen and is dropped;
/// - `:info` and never-completed invocations may take effect at any point after their call,
///   or never (reads among them are dropped: they constrain nothing);
/// - an `:ok` read whose value is nil is unconstrained and dropped;
/// - operations of non-integer processes are ignored;
/// - with the kv model, `:txn` operations (`:value [[:r k v] [:w k v] [:append k v] ...]`, as
///   Elle's rw-register and list-append workloads write them) apply atomically, and the keys
///   they touch are joined into one partition (see [`super::prepare_simkv`]): linearizable
///   there means strictly serializable. Inside a txn a read of nil (or of an empty list) read
///   the key absent; `:append` of a string concatenates (simkv's append), of anything else
///   adds to a list (Elle's list-append), whose reads are vectors or lists.
///
/// `init` is each register's value before the history (default nil). Errors (a completion
/// without an invocation, two invocations in flight on one process, a value of the wrong
/// shape, an unknown `:f`) name the record's line and column.
pub fn prepare(
    history: &EdnHistory,
    model: EdnModel,
    init: Option<&Edn>,
) -> Result<Prepared, HistoryError> {
    let layout = txn_layout(history, model)?;
    let mut pairer = Pairer::new(model, layout, init);
    for op in &history.ops {
        pairer.push(op.clone())?;
    }
    pairer.finish()
}

/// Pairs records one at a time, in file order, for [`prepare`] and [`prepare_stream`]: only
/// the operations in flight are kept, not the history.
struct Pairer {
    model: EdnModel,
    layout: Layout<String>,
    values: Interner,
    init: Val,
    slots: Slots<String>,
    open: FxHashMap<u64, Open>,
    /// The line of each record so far.
    lines: Vec<u32>,
}

impl Pairer {
    fn new(model: EdnModel, layout: Layout<String>, init: Option<&Edn>) -> Pairer {
        let mut values = Interner::default();
        let init = init.map_or(ABSENT, |v| intern(v, &mut values));
        Pairer {
            model,
            layout,
            values,
            init,
            slots: Slots::new(),
            open: FxHashMap::default(),
            lines: Vec::new(),
        }
    }

    /// The next record.
    fn push(&mut self, op: EdnOp) -> Result<(), HistoryError> {
        let pos = self.lines.len();
        self.lines.push(op.line as u32);
        let Process::Client(p) = op.process else {
            return Ok(());
        };
        if op.kind == OpType::Invoke {
            let o = invoke(
                op,
                pos,
                p,
                &self.open,
                self.model,
                &self.layout,
                &mut self.slots,
            )?;
            self.open.insert(p, o);
            return Ok(());
        }
        let Some(o) = self.open.remove(&p) else {
            let msg = format!("process {p} completed :{} without invoking it", op.f);
            return Err(error(op.line, op.column, msg));
        };
        let inv = &o.inv;
        if inv.f != op.f {
            let msg = format!(
                "process {p} completed :{} but had invoked :{} on line {}",
                op.f, inv.f, inv.line
            );
            return Err(error(op.line, op.column, msg));
        }
        let (model, layout) = (self.model, &self.layout);
        let kind = compile_joined(inv, Some(&op), &o.key, model, layout, &mut self.values)?;
        let ret = if op.kind == OpType::Info {
            PENDING
        } else {
            pos as u64
        };
        self.slots
            .fill(o.slot, kind.map(|kind| operation(o.at, ret, p, kind)));
        Ok(())
    }

    /// The prepared history, once every record is pushed.
    fn finish(mut self) -> Result<Prepared, HistoryError> {
        // Never-completed invocations are pending; taken in file order so that the first
        // error and the interning order are the same every time.
        let mut unfinished: Vec<(u64, Open)> = self.open.into_iter().collect();
        unfinished.sort_unstable_by_key(|(_, o)| o.at);
        for (p, o) in unfinished {
            let (model, layout) = (self.model, &self.layout);
            let kind = compile_joined(&o.inv, None, &o.key, model, layout, &mut self.values)?;
            self.slots
                .fill(o.slot, kind.map(|kind| operation(o.at, PENDING, p, kind)));
        }
        let mut partitions = self.layout.partitions(self.slots.finish());
        if self.model == EdnModel::Kv {
            sort_keys(&mut partitions);
        }
        Ok(Prepared {
            model: self.model.name().to_string(),
            partitions,
            values: self.values,
            init: self.init,
            naming: Naming::Jepsen,
            lines: self.lines,
        })
    }
}

/// [`prepare`] of the EDN history `input` (with `model`, else the one [`guess_model`] would
/// pick), read line by line and paired as it is read: the whole text and the whole list of
/// records never exist, only the operations in flight and the prepared result, which is the
/// same as `prepare(&parse(text)?, ...)`'s.
///
/// Records are Jepsen's usual one map per line; a map spanning lines is read once the lines
/// that close it are (up to [`STREAM_SPAN`] lines). `None` when the stream is not simply
/// that: a history in one collection (`[...]`), any error, a read failure, a `:txn` (whose
/// joined keys must be known before pairing), or a guessed model that the whole history
/// would not have guessed. The caller then reads the file whole ([`parse`], [`prepare`]),
/// which handles every case and names the error's line and column.
pub fn prepare_stream(
    mut input: impl std::io::BufRead,
    model: Option<EdnModel>,
    init: Option<&Edn>,
) -> Option<Prepared> {
    let mut stream = Stream {
        pairer: model.map(|m| Pairer::new(m, Joins::new().layout(), init)),
        init,
        lines_before: Vec::new(),
        records: 0,
        all_pairs: true,
        some_rw: false,
    };
    let mut chunk = String::new();
    let (mut chunk_line, mut chunk_lines) = (1usize, 0usize);
    let mut line_no = 0usize;
    let mut buf = Vec::with_capacity(256);
    let mut ops: Vec<EdnOp> = Vec::new();
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf).ok()? == 0 {
            break;
        }
        line_no += 1;
        let line = std::str::from_utf8(&buf).ok()?;
        if chunk.is_empty() {
            let trimmed = line.trim_start();
            if trimmed.is_empty() {
                continue;
            }
            if stream.records == 0 && trimmed.starts_with(['[', '(']) {
                // One collection of records: read whole.
                return None;
            }
            // Columns count characters.
            let column = line[..line.len() - trimmed.len()].chars().count() + 1;
            if let Some(op) = plain_op(trimmed.trim_end(), line_no, column) {
                stream.take(op)?;
                continue;
            }
            chunk_line = line_no;
            chunk_lines = 0;
        }
        chunk.push_str(line);
        chunk_lines += 1;
        ops.clear();
        let read = reader::top_level_values(&chunk, |l, c, edn| {
            ops.push(to_op(l + chunk_line - 1, c, edn)?);
            Ok(())
        });
        if read.is_err() {
            if chunk_lines >= STREAM_SPAN {
                return None;
            }
            continue;
        }
        chunk.clear();
        for op in ops.drain(..) {
            stream.take(op)?;
        }
    }
    if !chunk.trim().is_empty() {
        return None;
    }
    let pairer = stream.pairer?;
    if model.is_none() {
        let guessed = if stream.all_pairs && stream.some_rw {
            EdnModel::Kv
        } else {
            EdnModel::Register
        };
        if guessed != pairer.model {
            return None;
        }
    }
    pairer.finish().ok()
}

/// [`prepare_stream`]'s progress.
struct Stream<'a> {
    /// Made with the model given, else at the first client record, with the model guessed
    /// from it.
    pairer: Option<Pairer>,
    init: Option<&'a Edn>,
    /// Without a pairer yet, the lines of the records so far (no client's: they only count
    /// positions).
    lines_before: Vec<u32>,
    records: usize,
    /// What [`guess_model`] weighs: whether every client operation's value is a pair, and
    /// whether some read or write's is.
    all_pairs: bool,
    some_rw: bool,
}

impl Stream<'_> {
    /// The next record; `None` to give up.
    fn take(&mut self, op: EdnOp) -> Option<()> {
        self.records += 1;
        if op.f == "txn" {
            return None;
        }
        let pair = |v: &Edn| matches!(v, Edn::Vector(x) | Edn::List(x) if x.len() == 2);
        let client = matches!(op.process, Process::Client(_));
        if client {
            self.all_pairs &= pair(&op.value);
            self.some_rw |= op.f != "cas" && pair(&op.value);
        }
        let pairer = match &mut self.pairer {
            Some(p) => p,
            None if client => {
                // The model the whole history is likely to get; checked at the end.
                let guess = if pair(&op.value) {
                    EdnModel::Kv
                } else {
                    EdnModel::Register
                };
                let mut p = Pairer::new(guess, Joins::new().layout(), self.init);
                p.lines = std::mem::take(&mut self.lines_before);
                self.pairer.insert(p)
            }
            None => {
                self.lines_before.push(op.line as u32);
                return Some(());
            }
        };
        pairer.push(op).ok()
    }
}

/// The most lines one streamed record may span before [`prepare_stream`] gives up.
pub const STREAM_SPAN: usize = 64;

/// A record on one line in the plain form Jepsen and [`write_history`] write, read without
/// the general reader: `{:k v, ...}` whose keys are keywords and whose values are integers,
/// keywords, `nil`, strings without escapes, or vectors of those. `None` for anything else,
/// which the general reader then reads. What this accepts, the general reader reads the same.
fn plain_op(line: &str, line_no: usize, column: usize) -> Option<EdnOp> {
    let mut p = PlainEdn {
        text: line,
        bytes: line.as_bytes(),
        at: 0,
    };
    p.eat(b'{')?;
    let mut fields = OpFields::default();
    let mut seen = 0u32;
    loop {
        p.space();
        if p.peek()? == b'}' {
            p.at += 1;
            break;
        }
        let key = p.keyword()?;
        p.space();
        let value = p.value(true)?;
        let (bit, slot) = match key {
            "value" => (0, &mut fields.value),
            "type" => (1, &mut fields.kind),
            "f" => (2, &mut fields.f),
            "process" => (3, &mut fields.process),
            "time" => (4, &mut fields.time),
            "index" => (5, &mut fields.index),
            "error" => (6, &mut fields.error),
            // Other keys are ignored; read only so that the map is known to be plain.
            _ => continue,
        };
        if seen & (1 << bit) != 0 {
            return None;
        }
        seen |= 1 << bit;
        *slot = Some(value);
    }
    if p.at != line.len() {
        return None;
    }
    op_from_fields(line_no, column, fields).ok()
}

/// A byte cursor over one plain EDN record (see [`plain_op`]).
struct PlainEdn<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> PlainEdn<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, want: u8) -> Option<()> {
        (self.peek()? == want).then(|| self.at += 1)
    }

    /// Spaces and commas.
    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b',')) {
            self.at += 1;
        }
    }

    /// A token's text, up to the next space, comma or closing bracket; `None` if it ends at
    /// anything else the general reader would treat otherwise.
    fn token(&mut self) -> Option<&'a str> {
        let start = self.at;
        while let Some(b) = self.peek() {
            match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'?' | b'!' | b'*' => {
                    self.at += 1
                }
                b' ' | b',' | b'}' | b']' => break,
                _ => return None,
            }
        }
        (self.at > start).then(|| &self.text[start..self.at])
    }

    /// `:name`, without its colon.
    fn keyword(&mut self) -> Option<&'a str> {
        self.eat(b':')?;
        let name = self.token()?;
        name.starts_with(|c: char| c.is_ascii_alphabetic())
            .then_some(name)
    }

    /// A value; vectors only when `nest`.
    fn value(&mut self, nest: bool) -> Option<Edn> {
        match self.peek()? {
            b':' => self.keyword().map(|k| Edn::Keyword(k.to_string())),
            b'"' => {
                self.at += 1;
                let start = self.at;
                loop {
                    match self.peek()? {
                        b'"' => break,
                        b'\\' => return None,
                        _ => self.at += 1,
                    }
                }
                self.at += 1;
                Some(Edn::Str(self.text[start..self.at - 1].to_string()))
            }
            b'[' if nest => {
                self.at += 1;
                let mut items = Vec::new();
                loop {
                    self.space();
                    if self.peek()? == b']' {
                        self.at += 1;
                        return Some(Edn::Vector(items));
                    }
                    items.push(self.value(false)?);
                }
            }
            b'-' | b'0'..=b'9' => {
                let t = self.token()?;
                t.parse::<i64>().ok().map(Edn::Int)
            }
            b'n' => (self.token()? == "nil").then_some(Edn::Nil),
            _ => None,
        }
    }
}

/// Opens the invocation `op` at `pos` of process `p`: its key and a slot in its key's
/// partition.
fn invoke(
    op: EdnOp,
    pos: usize,
    p: u64,
    open: &FxHashMap<u64, Open>,
    model: EdnModel,
    layout: &Layout<String>,
    slots: &mut Slots<String>,
) -> Result<Open, HistoryError> {
    if let Some(o) = open.get(&p) {
        let first = &o.inv;
        let msg = format!(
            "process {p} invoked :{} while its :{} from line {} was in flight",
            op.f, first.f, first.line
        );
        return Err(error(op.line, op.column, msg));
    }
    let key = match op.f.as_str() {
        "txn" => txn_parts(&op)?
            .first()
            .map_or(String::new(), |m| m.key.clone()),
        _ => split_key(&op, model)?.0.text(),
    };
    let slot = slots.open(&layout.partition_of(&key));
    Ok(Open {
        at: pos,
        inv: op,
        key,
        slot,
    })
}

/// The operation of process `p` invoked at position `call`, returned at `ret`.
fn operation(call: usize, ret: u64, p: u64, kind: Kind) -> Operation {
    Operation {
        call: call as u64,
        ret,
        process: p,
        kind,
    }
}

/// Orders kv partitions by key: integers numerically, then everything else by its text.
fn sort_keys(partitions: &mut [Partition]) {
    partitions.sort_by(|a, b| {
        let num = |k: &str| k.parse::<i64>().ok();
        match (num(&a.key), num(&b.key)) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.key.cmp(&b.key),
        }
    });
}

/// One operation of a Jepsen `:txn`.
struct MicroOp {
    /// `r`, `w` or `append`.
    f: String,
    /// The key, as EDN text.
    key: String,
    /// The value written or appended, or read (nil in an invocation).
    value: Edn,
}

/// A `:txn` record's operations, `[[:r k v] [:w k v] [:append k v] ...]`.
fn txn_parts(op: &EdnOp) -> Result<Vec<MicroOp>, HistoryError> {
    let bad = |what: String| {
        let msg = format!(":txn expects :value [[:r k v] [:w k v] [:append k v] ...], {what}");
        Err(error(op.line, op.column, msg))
    };
    let (Edn::Vector(items) | Edn::List(items)) = &op.value else {
        return bad(format!("found {}", op.value));
    };
    let mut parts = Vec::with_capacity(items.len());
    for item in items {
        let (Edn::Vector(x) | Edn::List(x)) = item else {
            return bad(format!("found the operation {item}"));
        };
        let [f, key, value] = x.as_slice() else {
            return bad(format!("found the operation {item}"));
        };
        let f = match f {
            Edn::Keyword(f) | Edn::Symbol(f) | Edn::Str(f) => match f.as_str() {
                "r" | "read" => "r",
                "w" | "write" => "w",
                "append" => "append",
                _ => return bad(format!("found the function {f}")),
            },
            other => return bad(format!("found the function {other}")),
        };
        parts.push(MicroOp {
            f: f.to_string(),
            key: key.to_string(),
            value: value.clone(),
        });
    }
    Ok(parts)
}

/// The keys `:txn` operations join into partitions (none for the register model, where a
/// `:txn` is an error found when it is compiled).
fn txn_layout(history: &EdnHistory, model: EdnModel) -> Result<Layout<String>, HistoryError> {
    let mut joins = Joins::new();
    if model == EdnModel::Kv {
        for op in history
            .ops
            .iter()
            .filter(|o| o.kind == OpType::Invoke && o.f == "txn")
        {
            let keys: Vec<String> = txn_parts(op)?.into_iter().map(|m| m.key).collect();
            joins.join(&keys);
        }
    }
    Ok(joins.layout())
}

/// Compiles one operation (see [`compile`]); on keys joined by txns, as a compound on its
/// key's slot, and a `:txn` part by part.
fn compile_joined(
    inv: &EdnOp,
    done: Option<&EdnOp>,
    key: &str,
    model: EdnModel,
    layout: &Layout<String>,
    values: &mut Interner,
) -> Result<Option<Kind>, HistoryError> {
    if inv.f == "txn" && model == EdnModel::Kv {
        return compile_txn(inv, done, layout, values);
    }
    let Some(kind) = compile(inv, done, key, model, values)? else {
        return Ok(None);
    };
    let Some(&(_, slot)) = layout.slots.get(key) else {
        return Ok(Some(kind));
    };
    let compound = Compound {
        parts: vec![Part { slot, kind }],
        keys: vec![key.to_string()],
        txn: false,
    };
    Ok(Some(compound.register(values)))
}

/// Compiles a `:txn`: each part on its key's slot; reads only from an `:ok` completion, whose
/// parts must match the invocation's.
fn compile_txn(
    inv: &EdnOp,
    done: Option<&EdnOp>,
    layout: &Layout<String>,
    values: &mut Interner,
) -> Result<Option<Kind>, HistoryError> {
    let outcome = done.map_or(OpType::Info, |d| d.kind);
    if outcome == OpType::Fail {
        return Ok(None);
    }
    let invoked = txn_parts(inv)?;
    let completed = match done.filter(|d| d.kind == OpType::Ok) {
        Some(d) => {
            let parts = txn_parts(d)?;
            let same = |(a, b): (&MicroOp, &MicroOp)| a.f == b.f && a.key == b.key;
            if parts.len() != invoked.len() || !invoked.iter().zip(&parts).all(same) {
                let msg = format!(
                    ":txn completed with other operations than it invoked on line {}",
                    inv.line
                );
                return Err(error(d.line, d.column, msg));
            }
            Some(parts)
        }
        None => None,
    };
    let mut compound = Compound {
        parts: Vec::new(),
        keys: Vec::new(),
        txn: true,
    };
    for (i, m) in invoked.iter().enumerate() {
        let kind = match (m.f.as_str(), &completed) {
            ("r", Some(parts)) => Kind::Read(read_value(&parts[i].value, values)),
            ("r", None) => continue,
            ("w", _) => Kind::Write(intern(&m.value, values)),
            (_, _) => match &m.value {
                Edn::Str(_) => Kind::Append {
                    suffix: intern(&m.value, values),
                    result: None,
                },
                element => Kind::ListAppend {
                    element: values.intern_edn(&element.to_string()),
                },
            },
        };
        let Some(&(_, slot)) = layout.slots.get(&m.key) else {
            continue;
        };
        compound.parts.push(Part { slot, kind });
        compound.keys.push(m.key.clone());
    }
    if compound.parts.is_empty() {
        return Ok(None);
    }
    Ok(Some(compound.register(values)))
}

/// A value a txn read: nil and the empty list are absence, a list reads as the vector of its
/// elements (list-append's state), anything else as itself.
fn read_value(v: &Edn, values: &mut Interner) -> Val {
    match v {
        Edn::Nil => ABSENT,
        Edn::Vector(x) | Edn::List(x) if x.is_empty() => ABSENT,
        Edn::List(x) => values.intern_edn(&Edn::Vector(x.clone()).to_string()),
        other => intern(other, values),
    }
}

/// A record's key, not yet written out as text.
#[derive(Clone, Copy)]
enum KeyRef<'a> {
    /// The register model's single key, the empty text.
    Register,
    /// A kv record's key.
    Kv(&'a Edn),
}

impl KeyRef<'_> {
    /// The key's text, as EDN writes it.
    fn text(self) -> String {
        match self {
            KeyRef::Register => String::new(),
            KeyRef::Kv(Edn::Int(i)) => i.to_string(),
            KeyRef::Kv(other) => other.to_string(),
        }
    }

    /// Whether its text is `text` (an integer's without writing it out).
    fn is(self, text: &str) -> bool {
        match self {
            KeyRef::Kv(Edn::Int(i)) => {
                // Written out on the stack: at most 19 digits and a sign.
                let (mut digits, mut at, mut n) = ([0u8; 20], 20, i.unsigned_abs());
                loop {
                    at -= 1;
                    digits[at] = b'0' + (n % 10) as u8;
                    n /= 10;
                    if n == 0 {
                        break;
                    }
                }
                let text = text.as_bytes();
                match text.split_first() {
                    Some((b'-', rest)) if *i < 0 => rest == &digits[at..],
                    _ => *i >= 0 && text == &digits[at..],
                }
            }
            other => other.text() == text,
        }
    }
}

/// The key (empty for the register model) and the register-level value of a record.
fn split_key(op: &EdnOp, model: EdnModel) -> Result<(KeyRef<'_>, &Edn), HistoryError> {
    match model {
        EdnModel::Register => Ok((KeyRef::Register, &op.value)),
        EdnModel::Kv => match &op.value {
            Edn::Vector(x) | Edn::List(x) if x.len() == 2 => Ok((KeyRef::Kv(&x[0]), &x[1])),
            other => Err(error(
                op.line,
                op.column,
                format!(
                    "the kv model expects :value [key value] (jepsen.independent), found {other}"
                ),
            )),
        },
    }
}

fn intern(v: &Edn, values: &mut Interner) -> Val {
    match v {
        Edn::Nil => ABSENT,
        Edn::Str(s) => values.intern_str(s),
        other => values.intern_edn(&other.to_string()),
    }
}

/// Compiles one operation; `None` when it is dropped (failed, or a read that constrains
/// nothing). `done` is the completion, `None` when there was none.
fn compile(
    inv: &EdnOp,
    done: Option<&EdnOp>,
    key: &str,
    model: EdnModel,
    values: &mut Interner,
) -> Result<Option<Kind>, HistoryError> {
    let outcome = done.map_or(OpType::Info, |d| d.kind);
    if outcome == OpType::Fail {
        return Ok(None);
    }
    let known = outcome == OpType::Ok;
    let at = done.unwrap_or(inv);
    let bad = |expected: &str, found: &Edn| {
        let msg = format!(":{} expects {expected}, found {found}", inv.f);
        Err(error(at.line, at.column, msg))
    };
    let arg = split_key(inv, model)?.1;
    let kv = model == EdnModel::Kv;
    let kind = match inv.f.as_str() {
        "read" | "get" => {
            let Some(d) = done.filter(|_| known) else {
                return Ok(None);
            };
            let (k, seen) = split_key(d, model)?;
            if !k.is(key) {
                return bad(&format!("the key of its invocation ({key})"), &d.value);
            }
            if *seen == Edn::Nil {
                return Ok(None);
            }
            Kind::Read(intern(seen, values))
        }
        "write" | "put" => Kind::Write(intern(arg, values)),
        "cas" => match &arg {
            Edn::Vector(x) | Edn::List(x) if x.len() == 2 => Kind::Cas {
                expected: intern(&x[0], values),
                new: intern(&x[1], values),
                outcome: if known {
                    CasOutcome::Applied
                } else {
                    CasOutcome::Unknown
                },
            },
            other => return bad("[old new]", other),
        },
        "append" if kv => match &arg {
            Edn::Str(_) => Kind::Append {
                suffix: intern(arg, values),
                result: None,
            },
            other => return bad("a string to append", other),
        },
        "delete" if kv => Kind::Delete { found: None },
        "update" if kv => Kind::Update {
            value: intern(arg, values),
            found: known.then_some(true),
        },
        _ => return Err(unknown_f(inv, model)),
    };
    Ok(Some(kind))
}

/// The error for an operation whose `:f` the model does not know.
fn unknown_f(inv: &EdnOp, model: EdnModel) -> HistoryError {
    let expected = if model == EdnModel::Kv {
        ":read, :write, :cas, :append, :update or :delete (or :get, :put)"
    } else {
        ":read, :write or :cas (use --model kv for :append, :update, :delete)"
    };
    let msg = format!(
        "unknown :f :{} for the {} model; expected {expected}",
        inv.f,
        model.name()
    );
    error(inv.line, inv.column, msg)
}

/// Writes a simkv history as Jepsen EDN: one map per line, keys in a fixed order, so the
/// bytes are deterministic.
///
/// Values are jepsen.independent tuples `[key value]`. simkv's strict results loosen to
/// Knossos's conventions: a get that found nothing reads nil (unconstrained); a refused cas
/// or a not-found update changed nothing and is written `:fail` with `:error`; a get answered
/// with siblings reads nil (a register has no siblings: unconstrained); a protocol's
/// refusal is `:fail` with `:error :unavailable` or `:not-leader`; timeouts are `:info`.
/// `:time` is in nanoseconds, as Jepsen's.
///
/// A txn is Jepsen's `:f :txn` with `:value [[:r k v] [:w k v] [:append k v] ...]` (other
/// parts as `[:cas k [old new]]`, `[:update k v]`, `[:delete k nil]`); an ok txn's reads carry
/// the values read (nil for nothing found).
pub fn write_history(history: &History) -> String {
    let mut out = String::with_capacity(history.events.len() * 80);
    for e in &history.events {
        if let Op::Txn { ops } = &*e.op {
            write_txn(&mut out, e, ops);
            continue;
        }
        let key = e.op.key();
        let (f, arg) = edn_call(&e.op);
        let (ty, value, err) = match &e.outcome {
            None => ("invoke", arg, None),
            Some(Outcome::Info) => ("info", arg, None),
            Some(Outcome::Fail(r)) => ("fail", arg, Some(error_name(r))),
            Some(Outcome::Ok(r)) => match (&*e.op, r) {
                (Op::Get { .. }, OpResult::Ok { value: Some(v) }) => ("ok", quote(v), None),
                (Op::Get { .. }, _) => ("ok", "nil".to_string(), None),
                (Op::Cas { .. }, OpResult::PreconditionFailed { .. }) => {
                    ("fail", arg, Some("precondition-failed"))
                }
                (Op::Update { .. }, OpResult::NotFound) => ("fail", arg, Some("not-found")),
                _ => ("ok", arg, None),
            },
        };
        let _ = write!(
            out,
            "{{:index {}, :time {}, :type :{ty}, :process {}, :f :{f}, :value [{key} {value}]",
            e.index,
            e.time.as_micros().saturating_mul(1000),
            e.client.0
        );
        if let Some(err) = err {
            let _ = write!(out, ", :error :{err}");
        }
        out.push_str("}\n");
    }
    out
}

fn write_txn(out: &mut String, e: &crate::history::HistoryEvent, ops: &[Op]) {
    let (ty, results, err) = match &e.outcome {
        None => ("invoke", None, None),
        Some(Outcome::Info) => ("info", None, None),
        Some(Outcome::Fail(r)) => ("fail", None, Some(error_name(r))),
        Some(Outcome::Ok(r)) => ("ok", r.parts(&e.op), None),
    };
    let parts: Vec<String> = ops
        .iter()
        .enumerate()
        .map(|(i, op)| {
            let (f, arg) = match op {
                Op::Get { .. } => ("r", "nil".to_string()),
                Op::Put { value, .. } => ("w", quote(value)),
                other => edn_call(other),
            };
            let arg = match results.as_ref().map(|rs| (op, &rs[i])) {
                Some((Op::Get { .. }, OpResult::Ok { value: Some(v) })) => quote(v),
                _ => arg,
            };
            format!("[:{f} {} {arg}]", op.key())
        })
        .collect();
    let _ = write!(
        out,
        "{{:index {}, :time {}, :type :{ty}, :process {}, :f :txn, :value [{}]",
        e.index,
        e.time.as_micros().saturating_mul(1000),
        e.client.0,
        parts.join(" ")
    );
    if let Some(err) = err {
        let _ = write!(out, ", :error :{err}");
    }
    out.push_str("}\n");
}

fn edn_call(op: &Op) -> (&'static str, String) {
    match op {
        Op::Get { .. } => ("read", "nil".to_string()),
        Op::Put { value, .. } => ("write", quote(value)),
        Op::Update { value, .. } => ("update", quote(value)),
        Op::Delete { .. } => ("delete", "nil".to_string()),
        Op::Cas { expected, new, .. } => ("cas", format!("[{} {}]", quote(expected), quote(new))),
        Op::Append { value, .. } => ("append", quote(value)),
        Op::Txn { .. } => ("txn", "nil".to_string()),
    }
}

fn error_name(r: &OpResult) -> &'static str {
    match r {
        OpResult::NotLeader { .. } => "not-leader",
        OpResult::NotFound => "not-found",
        OpResult::PreconditionFailed { .. } => "precondition-failed",
        _ => "unavailable",
    }
}

/// An EDN string literal.
pub fn quote(s: &str) -> String {
    Edn::Str(s.to_string()).to_string()
}
