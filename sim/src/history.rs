//! Client histories, Jepsen style: every operation is an invocation and a completion.
//!
//! A completion is `ok` (the operation took effect, and its result says how), `fail` (it
//! definitely did not take effect) or `info` (unknown: the client timed out; it may take
//! effect at any point after its invocation, or never). simkv's own histories are strict:
//! a get of an absent key completes `ok` with result `not-found`, and a cas whose expected
//! value did not match completes `ok` with result `precondition-failed`, so a checker can
//! verify those outcomes too. Exporting to EDN loosens them to Knossos's conventions.
//!
//! The JSON file is an array with one record per line:
//!
//! ```json
//! [
//! {"index":0,"time_us":1200,"process":0,"node":"n2","type":"invoke","f":"put","key":3,"value":"c1.1"},
//! {"index":1,"time_us":4810,"process":0,"node":"n2","type":"ok","f":"put","key":3,"value":"c1.1","result":"ok"}
//! ]
//! ```
//!
//! An ok append also carries `"new"`, the key's whole value after it (its result).
//!
//! In a workload with causal contexts (`contexts = true`), a write's invocation and a get's
//! completion also carry `"context"`, the version vector sent or answered, as
//! `[[actor, counter], ...]` (empty, `[]`, when a write read nothing); records of other runs
//! have no such field.
//!
//! A txn has no key of its own: its operations go in `ops`, each with its own result once the
//! txn completed ok (the txn's `result` is then `ok`; a refused txn has one result only):
//!
//! ```json
//! {"index":4,"time_us":9000,"process":1,"node":"n1","type":"invoke","f":"txn","ops":[{"f":"get","key":1},{"f":"put","key":2,"value":"c2.4"}]},
//! {"index":5,"time_us":9400,"process":1,"node":"n1","type":"ok","f":"txn","result":"ok","ops":[{"f":"get","key":1,"value":"c1.1","result":"ok"},{"f":"put","key":2,"value":"c2.4","result":"ok"}]}
//! ```

use serde::{Deserialize, Serialize};
use simkv_protocols::{CausalContext, ClientId, Key, NodeId, Op, OpResult, Time, Value};
use std::fmt::Write as _;
use std::sync::Arc;

/// How an operation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It took effect (or was served), with this result; never `Unavailable`/`NotLeader`.
    Ok(OpResult),
    /// It definitely did not take effect; the protocol's refusal says why.
    Fail(OpResult),
    /// Unknown: the client gave up waiting.
    Info,
}

/// One line of a history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEvent {
    /// Position in the history, from 0.
    pub index: u64,
    /// True virtual time of the event.
    pub time: Time,
    /// The client (Jepsen's `:process`).
    pub client: ClientId,
    /// The node the client sent the operation to.
    pub node: NodeId,
    /// The operation invoked (repeated on its completion: shared, not copied).
    pub op: Arc<Op>,
    /// `None` for an invocation; how it ended for a completion.
    pub outcome: Option<Outcome>,
    /// The causal context (a workload with `contexts = true`): on a write's invocation, the
    /// one it was sent with; on a get's completion, the one the answer carried. `None`
    /// elsewhere, and then the JSON record has no `context` field.
    pub context: Option<CausalContext>,
}

/// A whole history, in the order events happened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    /// The events.
    pub events: Vec<HistoryEvent>,
}

/// A history file that could not be read: where, and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What was wrong and what was expected.
    pub message: String,
}

#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
enum RecordType {
    Invoke,
    Ok,
    Fail,
    Info,
}

#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
enum RecordF {
    Get,
    Put,
    Update,
    Delete,
    Cas,
    Append,
    Txn,
}

#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "kebab-case")]
enum RecordResult {
    Ok,
    NotFound,
    PreconditionFailed,
    Siblings,
    Unavailable,
    NotLeader,
}

/// The flat shape of one JSON record.
#[derive(Serialize, Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct Record {
    index: u64,
    time_us: u64,
    process: u32,
    node: String,
    #[serde(rename = "type")]
    kind: RecordType,
    f: RecordF,
    /// The key; every operation but a txn has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<Key>,
    /// The value written (put, update, append), read (get) or found (failed cas).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expected: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    new: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    result: Option<RecordResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hint: Option<String>,
    /// A get's concurrent values (result `siblings`), `null` for a concurrent delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    values: Option<Vec<Option<Value>>>,
    /// A txn's operations, each with its result once the txn completed ok.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ops: Option<Vec<PartRecord>>,
    /// The causal context, `[[actor, counter], ...]` (see [`HistoryEvent::context`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    context: Option<CausalContext>,
}

/// One operation of a txn record: a record's operation fields, and its own result. (The
/// fields are spelled out again rather than shared by `#[serde(flatten)]`, which serde does
/// not allow together with `deny_unknown_fields`.)
#[derive(Serialize, Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct PartRecord {
    f: RecordF,
    key: Key,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expected: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    new: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    result: Option<RecordResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    values: Option<Vec<Option<Value>>>,
}

/// The fields a single-key operation and its result spread over, in a record or a part.
struct Fields {
    f: RecordF,
    key: Key,
    value: Option<Value>,
    expected: Option<Value>,
    new: Option<Value>,
    result: Option<RecordResult>,
    values: Option<Vec<Option<Value>>>,
}

impl History {
    /// An empty history with room for `events` events.
    pub fn with_capacity(events: usize) -> History {
        History {
            events: Vec::with_capacity(events),
        }
    }

    /// Appends an event, numbering it.
    pub fn push(
        &mut self,
        time: Time,
        client: ClientId,
        node: NodeId,
        op: impl Into<Arc<Op>>,
        outcome: Option<Outcome>,
    ) {
        self.push_with_context(time, client, node, op, outcome, None);
    }

    /// Appends an event with the causal context it carries (see [`HistoryEvent::context`]).
    pub fn push_with_context(
        &mut self,
        time: Time,
        client: ClientId,
        node: NodeId,
        op: impl Into<Arc<Op>>,
        outcome: Option<Outcome>,
        context: Option<CausalContext>,
    ) {
        let index = self.events.len() as u64;
        self.events.push(HistoryEvent {
            index,
            time,
            client,
            node,
            op: op.into(),
            outcome,
            context,
        });
    }

    /// The history as simkv's JSON: deterministic bytes, one record per line.
    pub fn to_json(&self) -> String {
        let mut out = String::from("[\n");
        for (i, event) in self.events.iter().enumerate() {
            let record = to_record(event);
            let line = serde_json::to_string(&record).expect("records always serialize");
            out.push_str(&line);
            out.push_str(if i + 1 < self.events.len() {
                ",\n"
            } else {
                "\n"
            });
        }
        out.push_str("]\n");
        out
    }

    /// Reads simkv's JSON history format.
    ///
    /// Streaming: the whole text is first checked to be a JSON array (without building
    /// anything), then each record is read straight from its text into an event, so that
    /// memory is the text and the events, not a tree of every record.
    pub fn from_json(text: &str) -> Result<History, HistoryError> {
        let records: Vec<serde::de::IgnoredAny> =
            serde_json::from_str(text).map_err(|e| HistoryError {
                line: e.line().max(1),
                // serde_json says column 0 at the start of a line (an empty file, a cut
                // one); columns count from 1.
                column: e.column().max(1),
                message: format!(
                    "expected a JSON array of history records: {}",
                    crate::shown::shown(&strip_position(&e.to_string()))
                ),
            })?;
        let starts = element_starts(text);
        let mut history = History::default();
        history.events.reserve(records.len());
        for i in 0..records.len() {
            // Each record is located by where its text starts in the array (computed only
            // for an error: from the text's start, it costs the text's length).
            let start = starts.get(i).copied().unwrap_or(0);
            let at = || line_column(text, start);
            let mut de = serde_json::Deserializer::from_str(&text[start..]);
            let record = Record::deserialize(&mut de).map_err(|e| {
                let (line, column) = at();
                HistoryError {
                    line,
                    column,
                    message: format!(
                        "record {i}: {}",
                        crate::shown::shown(&strip_position(&e.to_string()))
                    ),
                }
            })?;
            let event = from_record(record).map_err(|message| {
                let (line, column) = at();
                HistoryError {
                    line,
                    column,
                    message: format!("record {i}: {}", crate::shown::shown(&message)),
                }
            })?;
            history.events.push(event);
        }
        Ok(history)
    }

    /// Reads simkv's JSON history format from `input` record by record, handing each event
    /// to `each` as it is read, so that no whole text or event list is ever held.
    ///
    /// Only the layout [`History::to_json`] writes is streamed: `[` alone on its line, then
    /// one record per line, each but the last followed by a comma, then `]`. Anything else
    /// (a record spanning lines, an error of any kind, a read failure) answers `None`, as does
    /// `each` answering `None`: the caller then reads the file whole with
    /// [`History::from_json`], which accepts every layout and names the error's line and
    /// column. Events are numbered as that path numbers them (from 0, in file order).
    pub fn stream_json(
        mut input: impl std::io::BufRead,
        mut each: impl FnMut(HistoryEvent) -> Option<()>,
    ) -> Option<()> {
        // 0: before the opening bracket; 1: after it or after a comma; 2: after a record
        // without a comma (only the closing bracket may follow); 3: after the closing bracket.
        let mut state = 0;
        let mut records = 0usize;
        let mut buf = Vec::with_capacity(256);
        loop {
            buf.clear();
            if input.read_until(b'\n', &mut buf).ok()? == 0 {
                break;
            }
            let line = buf.trim_ascii();
            if line.is_empty() {
                continue;
            }
            match state {
                0 if line == b"[" => state = 1,
                0 if line == b"[]" => state = 3,
                1 | 2 if line == b"]" => {
                    if state == 1 && records > 0 {
                        // A trailing comma: not JSON.
                        return None;
                    }
                    state = 3;
                }
                1 => {
                    let (record, comma) = match line.strip_suffix(b",") {
                        Some(r) => (r.trim_ascii_end(), true),
                        None => (line, false),
                    };
                    let plain = std::str::from_utf8(record).ok().and_then(plain_record);
                    let record = match plain {
                        Some(record) => record,
                        None => serde_json::from_slice::<Record>(record).ok()?,
                    };
                    each(from_record(record).ok()?)?;
                    records += 1;
                    state = if comma { 1 } else { 2 };
                }
                _ => return None,
            }
        }
        (state == 3).then_some(())
    }

    /// A short human rendering, one event per line, for counterexamples and debugging.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for e in &self.events {
            let what = match &e.outcome {
                None => "invoke".to_string(),
                Some(Outcome::Ok(r)) => format!("ok {r}"),
                Some(Outcome::Fail(r)) => format!("fail {r}"),
                Some(Outcome::Info) => "info".to_string(),
            };
            let _ = writeln!(
                out,
                "{:>10} {} @{} {:<8} {}",
                e.time, e.client, e.node, what, e.op
            );
        }
        out
    }
}

/// A byte cursor over one JSON record in the plain form [`History::to_json`] writes.
struct Plain<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Plain<'a> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    fn eat(&mut self, want: u8) -> Option<()> {
        (self.byte()? == want).then_some(())
    }

    /// A string without escapes or control characters (anything else: `None`).
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.at;
        loop {
            match self.byte()? {
                b'"' => break,
                b'\\' => return None,
                b if b < 0x20 => return None,
                _ => {}
            }
        }
        // The record is a `str`, and quotes are ASCII: both ends are character boundaries.
        self.text.get(start..self.at - 1)
    }

    /// A string or `null`.
    fn opt_string(&mut self) -> Option<Option<&'a str>> {
        if self.bytes[self.at..].starts_with(b"null") {
            self.at += 4;
            return Some(None);
        }
        self.string().map(Some)
    }

    /// A non-negative integer as JSON writes it (no leading zero, no sign, no fraction).
    fn u64(&mut self) -> Option<u64> {
        let digits = self.bytes[self.at..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let raw = &self.bytes[self.at..self.at + digits];
        if digits == 0 || (digits > 1 && raw[0] == b'0') {
            return None;
        }
        self.at += digits;
        raw.iter().try_fold(0u64, |n, &d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
    }
}

/// `line` as a [`Record`], read by hand when it is in the plain form [`History::to_json`]
/// writes for a single-key operation (no whitespace between tokens, no escapes in strings,
/// no `values` or `ops` arrays, no field twice); `None` for anything else, which serde then
/// reads. What this accepts, serde reads the same.
fn plain_record(line: &str) -> Option<Record> {
    let mut p = Plain {
        text: line,
        bytes: line.as_bytes(),
        at: 0,
    };
    let (mut index, mut time, mut process, mut node, mut kind, mut f) =
        (None, None, None, None, None, None);
    let mut record_key = None;
    let (mut value, mut expected, mut new, mut result, mut hint) = (None, None, None, None, None);
    let mut seen = 0u32;
    p.eat(b'{')?;
    loop {
        let name = p.string()?;
        p.eat(b':')?;
        let bit = match name {
            "index" => 0,
            "time_us" => 1,
            "process" => 2,
            "node" => 3,
            "type" => 4,
            "f" => 5,
            "key" => 6,
            "value" => 7,
            "expected" => 8,
            "new" => 9,
            "result" => 10,
            "hint" => 11,
            _ => return None,
        };
        if seen & (1 << bit) != 0 {
            return None;
        }
        seen |= 1 << bit;
        let text = |s: Option<&str>| s.map(str::to_string);
        match bit {
            0 => index = Some(p.u64()?),
            1 => time = Some(p.u64()?),
            2 => process = Some(u32::try_from(p.u64()?).ok()?),
            3 => node = Some(p.string()?.to_string()),
            4 => {
                kind = Some(match p.string()? {
                    "invoke" => RecordType::Invoke,
                    "ok" => RecordType::Ok,
                    "fail" => RecordType::Fail,
                    "info" => RecordType::Info,
                    _ => return None,
                })
            }
            5 => {
                f = Some(match p.string()? {
                    "get" => RecordF::Get,
                    "put" => RecordF::Put,
                    "update" => RecordF::Update,
                    "delete" => RecordF::Delete,
                    "cas" => RecordF::Cas,
                    "append" => RecordF::Append,
                    _ => return None,
                })
            }
            6 => record_key = Some(p.u64()?),
            7 => value = text(p.opt_string()?),
            8 => expected = text(p.opt_string()?),
            9 => new = text(p.opt_string()?),
            10 => {
                result = match p.opt_string()? {
                    None => None,
                    Some("ok") => Some(RecordResult::Ok),
                    Some("not-found") => Some(RecordResult::NotFound),
                    Some("precondition-failed") => Some(RecordResult::PreconditionFailed),
                    Some("unavailable") => Some(RecordResult::Unavailable),
                    Some("not-leader") => Some(RecordResult::NotLeader),
                    Some(_) => return None,
                }
            }
            _ => hint = text(p.opt_string()?),
        }
        match p.byte()? {
            b',' => {}
            b'}' => break,
            _ => return None,
        }
    }
    if p.at != line.len() {
        return None;
    }
    Some(Record {
        index: index?,
        time_us: time?,
        process: process?,
        node: node?,
        kind: kind?,
        f: f?,
        key: record_key,
        value: value.map(Value::from),
        expected: expected.map(Value::from),
        new: new.map(Value::from),
        result,
        hint,
        values: None,
        ops: None,
        context: None,
    })
}

/// serde_json's message without its own " at line L column C" (the error says where).
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// The byte offset where each element of the top-level JSON array starts, in order.
fn element_starts(text: &str) -> Vec<usize> {
    let mut starts = Vec::new();
    let (mut depth, mut in_string, mut escaped, mut expect) = (0usize, false, false, false);
    for (i, b) in text.bytes().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        if expect && !b.is_ascii_whitespace() && b != b']' {
            starts.push(i);
            expect = false;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                expect = depth == 1 && b == b'[';
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b',' if depth == 1 => expect = true,
            _ => {}
        }
    }
    starts
}

/// 1-based line and column (in characters) of byte `at` of `text`.
pub fn line_column(text: &str, at: usize) -> (usize, usize) {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

fn parse_node(name: &str) -> Result<NodeId, String> {
    name.strip_prefix('n')
        .and_then(|n| n.parse::<u16>().ok())
        .filter(|n| *n >= 1)
        .map(|n| NodeId(n - 1))
        .ok_or_else(|| format!("expected a node name such as \"n1\", found {name:?}"))
}

fn to_record(event: &HistoryEvent) -> Record {
    let (kind, result) = match &event.outcome {
        None => (RecordType::Invoke, None),
        Some(Outcome::Info) => (RecordType::Info, None),
        Some(Outcome::Ok(r)) => (RecordType::Ok, Some(r)),
        Some(Outcome::Fail(r)) => (RecordType::Fail, Some(r)),
    };
    let hint = result.and_then(OpResult::hint).map(|n| n.to_string());
    let mut record = Record {
        index: event.index,
        time_us: event.time.as_micros(),
        process: event.client.0,
        node: event.node.to_string(),
        kind,
        f: RecordF::Txn,
        key: None,
        value: None,
        expected: None,
        new: None,
        result: None,
        hint,
        values: None,
        ops: None,
        context: event.context.clone(),
    };
    let Op::Txn { ops } = &*event.op else {
        let fields = to_fields(&event.op, result);
        record.f = fields.f;
        record.key = Some(fields.key);
        (record.value, record.expected, record.new) = (fields.value, fields.expected, fields.new);
        record.result = fields.result;
        record.values = fields.values;
        return record;
    };
    // Part results are written only when the txn completed ok with one result per part.
    let results = result.and_then(|r| r.parts(&event.op));
    let parts = ops.iter().enumerate().map(|(i, op)| {
        let f = to_fields(op, results.as_ref().map(|rs| &rs[i]));
        PartRecord {
            f: f.f,
            key: f.key,
            value: f.value,
            expected: f.expected,
            new: f.new,
            result: f.result,
            values: f.values,
        }
    });
    record.ops = Some(parts.collect());
    record.result = result.map(|r| match r {
        OpResult::Unavailable { .. } => RecordResult::Unavailable,
        OpResult::NotLeader { .. } => RecordResult::NotLeader,
        _ => RecordResult::Ok,
    });
    record
}

/// A single-key operation's fields, with `result`'s folded in (a get's value read, a failed
/// cas's value found).
fn to_fields(op: &Op, result: Option<&OpResult>) -> Fields {
    let (f, mut value, expected, mut new) = match op {
        Op::Get { .. } => (RecordF::Get, None, None, None),
        Op::Put { value, .. } => (RecordF::Put, Some(value.clone()), None, None),
        Op::Update { value, .. } => (RecordF::Update, Some(value.clone()), None, None),
        Op::Delete { .. } => (RecordF::Delete, None, None, None),
        Op::Cas { expected, new, .. } => (
            RecordF::Cas,
            None,
            Some(expected.clone()),
            Some(new.clone()),
        ),
        Op::Append { value, .. } => (RecordF::Append, Some(value.clone()), None, None),
        // A txn inside a txn is malformed and never made; written as an empty txn part.
        Op::Txn { .. } => (RecordF::Txn, None, None, None),
    };
    let mut values = None;
    let result = result.map(|r| match r {
        OpResult::Ok { value: v } => {
            match f {
                RecordF::Get => value.clone_from(v),
                // An append's result is the key's whole new value, which its suffix alone
                // does not say.
                RecordF::Append => new.clone_from(v),
                _ => {}
            }
            RecordResult::Ok
        }
        OpResult::Siblings { values: vs } => {
            values = Some(vs.clone());
            RecordResult::Siblings
        }
        OpResult::NotFound => RecordResult::NotFound,
        OpResult::PreconditionFailed { current } => {
            value.clone_from(current);
            RecordResult::PreconditionFailed
        }
        OpResult::Unavailable { .. } => RecordResult::Unavailable,
        OpResult::NotLeader { .. } => RecordResult::NotLeader,
        OpResult::Txn { .. } => RecordResult::Ok,
    });
    Fields {
        f,
        key: op.key(),
        value,
        expected,
        new,
        result,
        values,
    }
}

fn from_record(r: Record) -> Result<HistoryEvent, String> {
    let node = parse_node(&r.node)?;
    let hint = match &r.hint {
        Some(h) => Some(parse_node(h)?),
        None => None,
    };
    let (op, result) = if r.f == RecordF::Txn {
        txn_from_record(&r)?
    } else {
        if r.ops.is_some() {
            return Err(format!(
                "a {:?} record has no \"ops\" (only a txn has)",
                r.f
            ));
        }
        let Some(key) = r.key else {
            return Err(format!("a {:?} record needs \"key\"", r.f));
        };
        let fields = Fields {
            f: r.f,
            key,
            value: r.value,
            expected: r.expected,
            new: r.new,
            result: r.result,
            values: r.values,
        };
        from_fields(&fields, r.kind == RecordType::Invoke)?
    };
    let outcome = match (r.kind, result) {
        (RecordType::Invoke, None) => None,
        (RecordType::Info, None) => Some(Outcome::Info),
        (RecordType::Ok, Some(res)) if res.is_applied() => Some(Outcome::Ok(res)),
        (RecordType::Fail, Some(OpResult::Unavailable { .. })) => {
            Some(Outcome::Fail(OpResult::Unavailable { hint }))
        }
        (RecordType::Fail, Some(OpResult::NotLeader { .. })) => {
            Some(Outcome::Fail(OpResult::NotLeader { hint }))
        }
        (kind, result) => {
            let result = result.map(|r| r.to_string());
            return Err(format!(
                "type {kind:?} does not go with result {result:?} (invoke and info have no \
                 result; ok has ok, not-found, precondition-failed or siblings; fail has \
                 unavailable or not-leader)"
            ));
        }
    };
    Ok(HistoryEvent {
        index: r.index,
        time: Time(r.time_us),
        client: ClientId(r.process),
        node,
        op: Arc::new(op),
        outcome,
        context: r.context,
    })
}

/// A txn record's operation and result: each part's operation, and for an ok txn, each
/// part's result.
fn txn_from_record(r: &Record) -> Result<(Op, Option<OpResult>), String> {
    let strays = [
        (r.key.is_some(), "key"),
        (r.value.is_some(), "value"),
        (r.expected.is_some(), "expected"),
        (r.new.is_some(), "new"),
        (r.values.is_some(), "values"),
    ];
    if let Some((_, field)) = strays.iter().find(|(present, _)| *present) {
        return Err(format!(
            "a txn record has no {field:?}: its operations go in \"ops\""
        ));
    }
    let Some(parts) = &r.ops else {
        return Err("a txn record needs \"ops\", the list of its operations".to_string());
    };
    let invoke = r.kind == RecordType::Invoke;
    let ok = r.kind == RecordType::Ok && r.result == Some(RecordResult::Ok);
    let mut ops = Vec::with_capacity(parts.len());
    let mut results = Vec::with_capacity(parts.len());
    for (i, p) in parts.iter().enumerate() {
        if p.f == RecordF::Txn {
            return Err(format!("txn operation {i}: a txn cannot hold a txn"));
        }
        if !ok && p.result.is_some() {
            return Err(format!(
                "txn operation {i}: only the parts of an ok txn have results"
            ));
        }
        let fields = Fields {
            f: p.f,
            key: p.key,
            value: p.value.clone(),
            expected: p.expected.clone(),
            new: p.new.clone(),
            result: p.result,
            values: p.values.clone(),
        };
        let (op, result) =
            from_fields(&fields, invoke).map_err(|e| format!("txn operation {i}: {e}"))?;
        if ok {
            match result {
                Some(res) if res.is_applied() => results.push(res),
                _ => {
                    return Err(format!(
                        "txn operation {i}: an ok txn's operations each need a result: ok, \
                         not-found or precondition-failed"
                    ))
                }
            }
        }
        ops.push(op);
    }
    let result = match r.result {
        None => None,
        Some(RecordResult::Ok) => Some(OpResult::Txn { results }),
        Some(RecordResult::Unavailable) => Some(OpResult::Unavailable { hint: None }),
        Some(RecordResult::NotLeader) => Some(OpResult::NotLeader { hint: None }),
        Some(other) => {
            return Err(format!(
                "a txn's result is ok, unavailable or not-leader, not {other:?}"
            ))
        }
    };
    Ok((Op::Txn { ops }, result))
}

/// A single-key operation and its result (if the fields have one) from their fields.
/// `invoke`: the fields are an invocation's, so written values must be there.
fn from_fields(r: &Fields, invoke: bool) -> Result<(Op, Option<OpResult>), String> {
    let key = r.key;
    let need = |v: &Option<Value>, what: &str| {
        v.clone()
            .ok_or_else(|| format!("a {:?} record needs {what}", r.f))
    };
    let written = |v: &Option<Value>| -> Result<Value, String> {
        if invoke || r.result == Some(RecordResult::Ok) {
            need(v, "\"value\"")
        } else {
            Ok(v.clone().unwrap_or_default())
        }
    };
    let op = match r.f {
        RecordF::Get => Op::Get { key },
        RecordF::Put => Op::Put {
            key,
            value: written(&r.value)?,
        },
        RecordF::Update => Op::Update {
            key,
            value: written(&r.value)?,
        },
        RecordF::Delete => Op::Delete { key },
        RecordF::Cas => Op::Cas {
            key,
            expected: need(&r.expected, "\"expected\"")?,
            new: need(&r.new, "\"new\"")?,
        },
        RecordF::Append => Op::Append {
            key,
            value: written(&r.value)?,
        },
        RecordF::Txn => return Err("a txn has no key".to_string()),
    };
    if r.values.is_some() != (r.result == Some(RecordResult::Siblings)) {
        return Err("\"values\" goes with result siblings, and only with it".to_string());
    }
    if r.result == Some(RecordResult::Siblings) && r.f != RecordF::Get {
        return Err(format!("only a get has result siblings, not a {:?}", r.f));
    }
    if r.f == RecordF::Append && r.result == Some(RecordResult::Ok) && r.new.is_none() {
        return Err(
            "an ok append record needs \"new\": the key's value after the append".to_string(),
        );
    }
    let result = r.result.map(|result| match result {
        RecordResult::Siblings => OpResult::Siblings {
            values: r.values.clone().unwrap_or_default(),
        },
        RecordResult::Ok => OpResult::Ok {
            value: match r.f {
                RecordF::Delete => None,
                RecordF::Cas | RecordF::Append => r.new.clone(),
                _ => r.value.clone(),
            },
        },
        RecordResult::NotFound => OpResult::NotFound,
        RecordResult::PreconditionFailed => OpResult::PreconditionFailed {
            current: r.value.clone(),
        },
        RecordResult::Unavailable => OpResult::Unavailable { hint: None },
        RecordResult::NotLeader => OpResult::NotLeader { hint: None },
    });
    Ok((op, result))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> History {
        let mut h = History::default();
        let c = ClientId(0);
        let n = NodeId(1);
        let put = Op::Put {
            key: 3,
            value: "c1.1".into(),
        };
        h.push(Time(10), c, n, put.clone(), None);
        let ok = OpResult::Ok {
            value: Some("c1.1".into()),
        };
        h.push(Time(20), c, n, put, Some(Outcome::Ok(ok)));
        let get = Op::Get { key: 3 };
        h.push(Time(30), c, n, get.clone(), None);
        h.push(
            Time(40),
            c,
            n,
            get.clone(),
            Some(Outcome::Ok(OpResult::NotFound)),
        );
        let cas = Op::Cas {
            key: 3,
            expected: "a".into(),
            new: "b".into(),
        };
        let append = Op::Append {
            key: 3,
            value: "x;".into(),
        };
        h.push(Time(41), c, n, append.clone(), None);
        let appended = OpResult::Ok {
            value: Some("c1.1x;".into()),
        };
        h.push(Time(42), c, n, append, Some(Outcome::Ok(appended)));
        h.push(Time(50), c, n, cas.clone(), None);
        let failed = OpResult::PreconditionFailed {
            current: Some("c1.1".into()),
        };
        h.push(Time(60), c, n, cas, Some(Outcome::Ok(failed)));
        h.push(Time(70), c, n, get.clone(), None);
        h.push(
            Time(80),
            c,
            n,
            get.clone(),
            Some(Outcome::Fail(OpResult::NotLeader {
                hint: Some(NodeId(0)),
            })),
        );
        h.push(Time(90), c, n, get.clone(), None);
        h.push(Time(99), c, n, get.clone(), Some(Outcome::Info));
        h.push(Time(100), c, n, get.clone(), None);
        let siblings = OpResult::Siblings {
            values: vec![None, Some("a".into()), Some("b".into())],
        };
        h.push(Time(100), c, n, get, Some(Outcome::Ok(siblings)));
        let txn = Op::Txn {
            ops: vec![
                Op::Get { key: 3 },
                Op::Put {
                    key: 4,
                    value: "c1.9".into(),
                },
                Op::Cas {
                    key: 3,
                    expected: "x".into(),
                    new: "y".into(),
                },
            ],
        };
        let committed = OpResult::Txn {
            results: vec![
                OpResult::NotFound,
                OpResult::Ok {
                    value: Some("c1.9".into()),
                },
                OpResult::PreconditionFailed { current: None },
            ],
        };
        h.push(Time(100), c, n, txn.clone(), None);
        h.push(Time(110), c, n, txn.clone(), Some(Outcome::Ok(committed)));
        h.push(Time(120), c, n, txn.clone(), None);
        let refused = OpResult::Unavailable { hint: None };
        h.push(Time(130), c, n, txn, Some(Outcome::Fail(refused)));
        h
    }

    #[test]
    fn json_round_trips_every_outcome() {
        let h = sample();
        let text = h.to_json();
        assert_eq!(History::from_json(&text).unwrap(), h);
        assert_eq!(text.lines().count(), h.events.len() + 2);
    }

    #[test]
    fn malformed_json_names_line_and_column() {
        let err = History::from_json("[\n{\"index\": 0,\n oops}\n]").unwrap_err();
        assert_eq!(err.line, 3);
        let err = History::from_json("[\n{\"index\":0,\"time_us\":1,\"process\":0,\"node\":\"n1\",\"type\":\"ok\",\"f\":\"get\",\"key\":1}\n]").unwrap_err();
        assert!(err.message.contains("does not go with"), "{}", err.message);
        assert_eq!(err.line, 2);
    }

    #[test]
    fn malformed_txn_records_say_what_is_wrong() {
        let head = r#"{"index":0,"time_us":1,"process":0,"node":"n1","#;
        let cases = [
            (r#""type":"invoke","f":"txn"}"#, "needs \"ops\""),
            (
                r#""type":"invoke","f":"txn","key":1,"ops":[]}"#,
                "no \"key\"",
            ),
            (
                r#""type":"invoke","f":"txn","ops":[{"f":"txn","key":1}]}"#,
                "cannot hold a txn",
            ),
            (
                r#""type":"ok","f":"txn","result":"ok","ops":[{"f":"get","key":1}]}"#,
                "each need a result",
            ),
            (r#""type":"invoke","f":"get"}"#, "needs \"key\""),
            (
                r#""type":"invoke","f":"get","key":1,"ops":[]}"#,
                "only a txn has",
            ),
        ];
        for (tail, want) in cases {
            let text = format!("[\n{head}{tail}\n]");
            let err = History::from_json(&text).unwrap_err();
            assert!(err.message.contains(want), "{tail}: {}", err.message);
            assert_eq!(err.line, 2);
        }
    }
}
