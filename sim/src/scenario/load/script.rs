//! `[[op]]`: a scripted workload, each operation written out (what, by which history
//! process, to which node, when). `simkv shrink` freezes a run's operations into these so
//! that single operations can be removed; a user writes them to replay an exact interleaving
//! (a Jepsen-style hand-written history to run, not to check).

use super::{Checked, Validator};
use crate::scenario::explain::span_text;
use crate::scenario::model::ScriptedOp;
use crate::scenario::raw::{Dur, Int, NodeName};
use serde::Deserialize;
use simkv_protocols::{ClientId, Key, Op, Span, Time, Value};
use std::ops::Range;
use toml::Spanned;

/// The most operations a script may hold: enough for any shrunk run, few enough that a
/// script is read, not generated.
const MAX_SCRIPTED_OPS: usize = 100_000;

/// `{ key = 0, value = "c1.1" }`: a put's, an update's or an append's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWrite {
    key: Spanned<Int>,
    value: Spanned<String>,
}

/// `{ key = 0, expected = "c1.1", new = "c2.1" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCas {
    key: Spanned<Int>,
    expected: Spanned<String>,
    new: Spanned<String>,
}

/// One operation of a txn: a table with exactly one of its keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPart {
    get: Option<Spanned<Int>>,
    put: Option<Spanned<RawWrite>>,
    append: Option<Spanned<RawWrite>>,
}

/// One `[[op]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScriptOp {
    at: Spanned<Dur>,
    process: Spanned<Int>,
    node: Spanned<NodeName>,
    get: Option<Spanned<Int>>,
    put: Option<Spanned<RawWrite>>,
    update: Option<Spanned<RawWrite>>,
    delete: Option<Spanned<Int>>,
    cas: Option<Spanned<RawCas>>,
    append: Option<Spanned<RawWrite>>,
    txn: Option<Spanned<Vec<Spanned<RawPart>>>>,
}

const KINDS: &str = "`get`, `put`, `update`, `delete`, `cas`, `append` or `txn`";

impl Validator<'_> {
    /// Every `[[op]]`, sorted by time (stable: one time keeps the file's order). `processes`
    /// is the workload's number of history processes.
    pub(super) fn script(
        &self,
        raw: &[Spanned<RawScriptOp>],
        processes: u32,
        txns: bool,
        contexts: bool,
        end: Span,
    ) -> Checked<Vec<ScriptedOp>> {
        if raw.len() > MAX_SCRIPTED_OPS {
            let message = format!(
                "expected at most {MAX_SCRIPTED_OPS} [[op]]s, found {}",
                raw.len()
            );
            return self.fail(raw[MAX_SCRIPTED_OPS].span(), message);
        }
        let mut script = Vec::with_capacity(raw.len());
        for entry in raw {
            let r = entry.get_ref();
            let at = r.at.get_ref().0;
            if at >= end {
                let message = format!(
                    "expected an operation time before the clients stop, at the duration \
                     plus twice checks.liveness ({}), found {}",
                    span_text(end),
                    span_text(at)
                );
                return self.fail(r.at.span(), message);
            }
            let most = i64::from(processes) - 1;
            let what = "a history process (clients x in_flight of them, from 0)";
            let process = self.int_in(&r.process, 0, Some(most), what)? as u32;
            let node = self.node(&r.node)?;
            let op = self.scripted_op(entry, txns)?;
            if contexts && !matches!(op, Op::Get { .. } | Op::Put { .. } | Op::Delete { .. }) {
                let message = "expected a `get`, `put` or `delete` with `contexts = true`: a \
                               write with a context names its whole new value (Dynamo's \
                               put(key, context, object))";
                return self.fail(entry.span(), message);
            }
            script.push(ScriptedOp {
                at: Time::ZERO + at,
                process: ClientId(process),
                node,
                op,
            });
        }
        script.sort_by_key(|o| o.at);
        Ok(script)
    }

    fn scripted_op(&self, entry: &Spanned<RawScriptOp>, txns: bool) -> Checked<Op> {
        let r = entry.get_ref();
        let mut found: Vec<(Range<usize>, Op)> = Vec::new();
        if let Some(k) = &r.get {
            found.push((k.span(), Op::Get { key: self.key(k)? }));
        }
        if let Some(k) = &r.delete {
            found.push((k.span(), Op::Delete { key: self.key(k)? }));
        }
        if let Some(w) = &r.put {
            let (key, value) = self.write(w)?;
            found.push((w.span(), Op::Put { key, value }));
        }
        if let Some(w) = &r.update {
            let (key, value) = self.write(w)?;
            found.push((w.span(), Op::Update { key, value }));
        }
        if let Some(w) = &r.append {
            let (key, value) = self.write(w)?;
            found.push((w.span(), Op::Append { key, value }));
        }
        if let Some(c) = &r.cas {
            let raw = c.get_ref();
            let op = Op::Cas {
                key: self.key(&raw.key)?,
                expected: self.value(&raw.expected)?,
                new: self.value(&raw.new)?,
            };
            found.push((c.span(), op));
        }
        if let Some(t) = &r.txn {
            let ops = self.txn(t)?;
            if !txns {
                self.serves_transactions(t.span())?;
            }
            found.push((t.span(), Op::Txn { ops }));
        }
        match found.len() {
            1 => Ok(found.pop().expect("one").1),
            0 => self.fail(
                entry.span(),
                format!("expected the operation: one of {KINDS}"),
            ),
            _ => self.fail(
                found[1].0.clone(),
                format!("expected one operation per [[op]] (one of {KINDS}), found a second"),
            ),
        }
    }

    fn txn(&self, raw: &Spanned<Vec<Spanned<RawPart>>>) -> Checked<Vec<Op>> {
        if raw.get_ref().is_empty() {
            return self.fail(raw.span(), "expected a txn of at least one operation");
        }
        let mut ops = Vec::new();
        for part in raw.get_ref() {
            let p = part.get_ref();
            let mut found = Vec::new();
            if let Some(k) = &p.get {
                found.push(Op::Get { key: self.key(k)? });
            }
            if let Some(w) = &p.put {
                let (key, value) = self.write(w)?;
                found.push(Op::Put { key, value });
            }
            if let Some(w) = &p.append {
                let (key, value) = self.write(w)?;
                found.push(Op::Append { key, value });
            }
            if found.len() != 1 {
                let message = "expected a txn operation with exactly one of `get`, `put`, \
                               `append`";
                return self.fail(part.span(), message);
            }
            ops.extend(found);
        }
        Ok(ops)
    }

    fn key(&self, k: &Spanned<Int>) -> Checked<Key> {
        Ok(self.int_in(k, 0, None, "a key")? as Key)
    }

    fn value(&self, v: &Spanned<String>) -> Checked<Value> {
        let text = v.get_ref();
        if text.is_empty() || text.contains(['\n', '\r']) {
            let message = format!("expected a value on one line, not empty, found {text:?}");
            return self.fail(v.span(), message);
        }
        Ok(Value::from(text.as_str()))
    }

    fn write(&self, w: &Spanned<RawWrite>) -> Checked<(Key, Value)> {
        let raw = w.get_ref();
        Ok((self.key(&raw.key)?, self.value(&raw.value)?))
    }
}
