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

use serde::{Deserialize, Serialize};
use simkv_protocols::{ClientId, Key, NodeId, Op, OpResult, Time, Value};
use std::fmt::Write as _;

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
    /// The operation invoked (repeated on its completion).
    pub op: Op,
    /// `None` for an invocation; how it ended for a completion.
    pub outcome: Option<Outcome>,
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
}

#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "kebab-case")]
enum RecordResult {
    Ok,
    NotFound,
    PreconditionFailed,
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
    key: Key,
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
}

impl History {
    /// Appends an event, numbering it.
    pub fn push(
        &mut self,
        time: Time,
        client: ClientId,
        node: NodeId,
        op: Op,
        outcome: Option<Outcome>,
    ) {
        let index = self.events.len() as u64;
        self.events.push(HistoryEvent {
            index,
            time,
            client,
            node,
            op,
            outcome,
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
    pub fn from_json(text: &str) -> Result<History, HistoryError> {
        let records: Vec<serde_json::Value> =
            serde_json::from_str(text).map_err(|e| HistoryError {
                line: e.line(),
                column: e.column(),
                message: format!("expected a JSON array of history records: {e}"),
            })?;
        let mut history = History::default();
        for (i, raw) in records.into_iter().enumerate() {
            // serde_json::Value loses positions; records are one per line in files simkv
            // writes, so report the record's line as its ordinal plus the opening bracket.
            let line = i + 2;
            let record: Record = serde_json::from_value(raw).map_err(|e| HistoryError {
                line,
                column: 1,
                message: format!("record {i}: {e}"),
            })?;
            let event = from_record(&record).map_err(|message| HistoryError {
                line,
                column: 1,
                message: format!("record {i}: {message}"),
            })?;
            history.events.push(event);
        }
        Ok(history)
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

fn parse_node(name: &str) -> Result<NodeId, String> {
    name.strip_prefix('n')
        .and_then(|n| n.parse::<u16>().ok())
        .filter(|n| *n >= 1)
        .map(|n| NodeId(n - 1))
        .ok_or_else(|| format!("expected a node name such as \"n1\", found {name:?}"))
}

fn to_record(event: &HistoryEvent) -> Record {
    let (f, mut value, expected, new) = match &event.op {
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
    };
    let (kind, result, hint) = match &event.outcome {
        None => (RecordType::Invoke, None, None),
        Some(Outcome::Info) => (RecordType::Info, None, None),
        Some(Outcome::Ok(r)) | Some(Outcome::Fail(r)) => {
            let kind = if r.is_applied() {
                RecordType::Ok
            } else {
                RecordType::Fail
            };
            let tag = match r {
                OpResult::Ok { value: v } => {
                    if f == RecordF::Get {
                        value = v.clone();
                    }
                    RecordResult::Ok
                }
                OpResult::NotFound => RecordResult::NotFound,
                OpResult::PreconditionFailed { current } => {
                    value = current.clone();
                    RecordResult::PreconditionFailed
                }
                OpResult::Unavailable { .. } => RecordResult::Unavailable,
                OpResult::NotLeader { .. } => RecordResult::NotLeader,
            };
            (kind, Some(tag), r.hint().map(|n| n.to_string()))
        }
    };
    Record {
        index: event.index,
        time_us: event.time.as_micros(),
        process: event.client.0,
        node: event.node.to_string(),
        kind,
        f,
        key: event.op.key(),
        value,
        expected,
        new,
        result,
        hint,
    }
}

fn from_record(r: &Record) -> Result<HistoryEvent, String> {
    let node = parse_node(&r.node)?;
    let key = r.key;
    let need = |v: &Option<Value>, what: &str| {
        v.clone()
            .ok_or_else(|| format!("a {:?} record needs {what}", r.f))
    };
    let written = |v: &Option<Value>| -> Result<Value, String> {
        if r.kind == RecordType::Invoke || r.result == Some(RecordResult::Ok) {
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
    };
    let hint = match &r.hint {
        Some(h) => Some(parse_node(h)?),
        None => None,
    };
    let outcome = match (r.kind, r.result) {
        (RecordType::Invoke, None) => None,
        (RecordType::Info, None) => Some(Outcome::Info),
        (RecordType::Ok, Some(RecordResult::Ok)) => Some(Outcome::Ok(OpResult::Ok {
            value: match r.f {
                RecordF::Get => r.value.clone(),
                RecordF::Delete => None,
                RecordF::Cas => r.new.clone(),
                _ => r.value.clone(),
            },
        })),
        (RecordType::Ok, Some(RecordResult::NotFound)) => Some(Outcome::Ok(OpResult::NotFound)),
        (RecordType::Ok, Some(RecordResult::PreconditionFailed)) => {
            Some(Outcome::Ok(OpResult::PreconditionFailed {
                current: r.value.clone(),
            }))
        }
        (RecordType::Fail, Some(RecordResult::Unavailable)) => {
            Some(Outcome::Fail(OpResult::Unavailable { hint }))
        }
        (RecordType::Fail, Some(RecordResult::NotLeader)) => {
            Some(Outcome::Fail(OpResult::NotLeader { hint }))
        }
        (kind, result) => {
            return Err(format!(
                "type {kind:?} does not go with result {result:?} (invoke and info have no \
                 result; ok has ok, not-found or precondition-failed; fail has unavailable or \
                 not-leader)"
            ))
        }
    };
    Ok(HistoryEvent {
        index: r.index,
        time: Time(r.time_us),
        client: ClientId(r.process),
        node,
        op,
        outcome,
    })
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
        h.push(Time(99), c, n, get, Some(Outcome::Info));
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
}
