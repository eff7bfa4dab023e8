//! Building a [`TxnHistory`]: from Jepsen's EDN (`:txn` operations), from simkv's own
//! histories, or by hand ([`Builder`], for tests and generators).

use super::{ElemId, KeyId, Mop, Status, Txn, TxnHistory, TxnId, Workload};
use crate::history::{History, HistoryError, Outcome};
use crate::lincheck::edn::{Edn, EdnHistory, OpType, Process};
use crate::lincheck::model::FxHashMap;
use simkv_protocols::{Op, OpResult};
use std::collections::BTreeMap;

/// Builds a history one event at a time, pairing invocations with completions by process.
#[derive(Debug, Default)]
pub struct Builder {
    keys: Vec<String>,
    key_ids: FxHashMap<String, KeyId>,
    values: Vec<String>,
    value_ids: FxHashMap<String, ElemId>,
    txns: Vec<Txn>,
    open: BTreeMap<u64, TxnId>,
    events: u64,
    by_index: bool,
}

impl Builder {
    /// An empty history; `by_index` names transactions by history index, not line.
    pub fn new(by_index: bool) -> Builder {
        Builder {
            by_index,
            ..Builder::default()
        }
    }

    /// The id of a key, by name.
    pub fn key(&mut self, name: &str) -> KeyId {
        intern(&mut self.keys, &mut self.key_ids, name)
    }

    /// The id of a value, by name.
    pub fn value(&mut self, name: &str) -> ElemId {
        intern(&mut self.values, &mut self.value_ids, name)
    }

    /// A transaction invoked by `process` (reads in `mops` are unknown until it completes).
    pub fn invoke(&mut self, process: u64, mops: Vec<Mop>, line: usize) -> Result<TxnId, String> {
        if let Some(t) = self.open.get(&process) {
            let at = self.txns[*t as usize].line;
            return Err(format!(
                "process {process} invoked a transaction while its transaction at {at} had \
                 not completed"
            ));
        }
        let t = self.txns.len() as TxnId;
        self.txns.push(Txn {
            process,
            status: Status::Info,
            mops,
            invoked_at: self.events,
            completed_at: None,
            line,
        });
        self.events += 1;
        self.open.insert(process, t);
        Ok(t)
    }

    /// Completes `process`'s open transaction; an `:ok` one with its micro-operations as
    /// completed (reads filled in).
    pub fn complete(
        &mut self,
        process: u64,
        status: Status,
        mops: Option<Vec<Mop>>,
    ) -> Result<(), String> {
        let Some(t) = self.open.remove(&process) else {
            return Err(format!(
                "process {process} completed a transaction it had not invoked"
            ));
        };
        let txn = &mut self.txns[t as usize];
        txn.status = status;
        if status != Status::Info {
            txn.completed_at = Some(self.events);
        }
        if status == Status::Ok {
            if let Some(m) = mops {
                if m.len() != txn.mops.len() {
                    return Err(format!(
                        "the completion of the transaction at {} has {} operations; its \
                         invocation had {}",
                        txn.line,
                        m.len(),
                        txn.mops.len()
                    ));
                }
                txn.mops = m;
            }
        }
        self.events += 1;
        Ok(())
    }

    /// The history: transactions never completed are `:info`. Fails when a value is written
    /// (appended) twice to a key: the analysis needs unique writes.
    pub fn finish(self, workload: Workload) -> Result<TxnHistory, String> {
        let mut first: FxHashMap<(KeyId, ElemId), usize> = FxHashMap::default();
        for txn in &self.txns {
            for m in &txn.mops {
                if let Mop::Append { key, value } | Mop::Write { key, value } = m {
                    if let Some(at) = first.insert((*key, *value), txn.line) {
                        let at_name = if self.by_index { "index" } else { "line" };
                        return Err(format!(
                            "{} is written to key {} twice ({at_name} {at} and {}): Elle's \
                             {} analysis needs unique writes",
                            self.values[*value as usize],
                            self.keys[*key as usize],
                            txn.line,
                            workload.name()
                        ));
                    }
                }
            }
        }
        Ok(TxnHistory {
            workload,
            txns: self.txns,
            keys: self.keys,
            values: self.values,
            by_index: self.by_index,
        })
    }
}

fn intern(names: &mut Vec<String>, ids: &mut FxHashMap<String, u32>, name: &str) -> u32 {
    if let Some(id) = ids.get(name) {
        return *id;
    }
    let id = names.len() as u32;
    names.push(name.to_string());
    ids.insert(name.to_string(), id);
    id
}

fn located(line: usize, column: usize, message: impl Into<String>) -> HistoryError {
    HistoryError {
        line,
        column,
        message: message.into(),
    }
}

/// The workload an EDN history's transactions mean: list-append if any appends (or any read
/// returns a list), rw-register if any writes; both is an error.
fn edn_workload(history: &EdnHistory) -> Result<Workload, HistoryError> {
    let (mut append, mut write, mut list) = (None, None, false);
    for op in history.ops.iter().filter(|o| o.f == "txn") {
        let (Edn::Vector(items) | Edn::List(items)) = &op.value else {
            continue;
        };
        for item in items {
            let (Edn::Vector(x) | Edn::List(x)) = item else {
                continue;
            };
            match (x.first(), x.get(2)) {
                (Some(Edn::Keyword(f)), _) if f == "append" => {
                    append.get_or_insert((op.line, op.column))
                }
                (Some(Edn::Keyword(f)), _) if f == "w" || f == "write" => {
                    write.get_or_insert((op.line, op.column))
                }
                (_, Some(Edn::Vector(_) | Edn::List(_))) => {
                    list = true;
                    continue;
                }
                _ => continue,
            };
        }
    }
    match (append, write) {
        (Some(_), Some((line, column))) => Err(located(
            line,
            column,
            "this history mixes :append (list-append) and :w (rw-register) transactions; \
             Elle checks one workload at a time",
        )),
        (Some(_), None) => Ok(Workload::ListAppend),
        (None, Some(_)) => Ok(Workload::RwRegister),
        (None, None) if list => Ok(Workload::ListAppend),
        (None, None) => Ok(Workload::RwRegister),
    }
}

/// Whether an EDN history is a transactional one (any `:txn` operation).
pub fn is_txn_history(history: &EdnHistory) -> bool {
    history.ops.iter().any(|o| o.f == "txn")
}

/// A transactional EDN history (Jepsen's `:txn`, list-append or rw-register), as Elle reads
/// it. Every client operation must be a `:txn`.
pub fn from_edn(history: &EdnHistory) -> Result<TxnHistory, HistoryError> {
    let workload = edn_workload(history)?;
    let mut b = Builder::new(false);
    for op in &history.ops {
        let Process::Client(p) = op.process else {
            continue;
        };
        let at = |m: String| located(op.line, op.column, m);
        if op.f != "txn" {
            return Err(at(format!(
                "a transactional history holds only :txn operations, found :f :{}",
                op.f
            )));
        }
        let known = op.kind == OpType::Ok;
        let mops = edn_mops(&mut b, &op.value, workload, known).map_err(at)?;
        match op.kind {
            OpType::Invoke => b.invoke(p, mops, op.line).map(|_| ()),
            OpType::Ok => b.complete(p, super::Status::Ok, Some(mops)),
            OpType::Fail => b.complete(p, super::Status::Fail, None),
            OpType::Info => b.complete(p, super::Status::Info, None),
        }
        .map_err(at)?;
    }
    b.finish(workload).map_err(|m| located(1, 1, m))
}

/// A `:txn` value's micro-operations; reads are known only in an `:ok` completion.
fn edn_mops(
    b: &mut Builder,
    value: &Edn,
    workload: Workload,
    known: bool,
) -> Result<Vec<Mop>, String> {
    let shape = "expected :value [[:r k v] [:w k v] [:append k v] ...]";
    let (Edn::Vector(items) | Edn::List(items)) = value else {
        return Err(format!("{shape}, found {value}"));
    };
    let mut mops = Vec::with_capacity(items.len());
    for item in items {
        let (Edn::Vector(x) | Edn::List(x)) = item else {
            return Err(format!("{shape}, found the operation {item}"));
        };
        let [f, k, v] = x.as_slice() else {
            return Err(format!("{shape}, found the operation {item}"));
        };
        let key = b.key(&k.to_string());
        let f = match f {
            Edn::Keyword(f) | Edn::Symbol(f) | Edn::Str(f) => f.as_str(),
            _ => "",
        };
        let mop = match (f, workload) {
            ("append", _) => Mop::Append {
                key,
                value: b.value(&v.to_string()),
            },
            ("w" | "write", _) => Mop::Write {
                key,
                value: b.value(&v.to_string()),
            },
            ("r" | "read", Workload::ListAppend) => Mop::ReadList {
                key,
                value: match (known, v) {
                    (false, _) => None,
                    (true, Edn::Nil) => Some(Vec::new()),
                    (true, Edn::Vector(xs) | Edn::List(xs)) => {
                        Some(xs.iter().map(|e| b.value(&e.to_string())).collect())
                    }
                    (true, other) => {
                        return Err(format!("a list-append read returns a list, found {other}"))
                    }
                },
            },
            ("r" | "read", Workload::RwRegister) => Mop::ReadReg {
                key,
                value: match (known, v) {
                    (false, _) => None,
                    (true, Edn::Nil) => Some(None),
                    (true, other) => Some(Some(b.value(&other.to_string()))),
                },
            },
            _ => return Err(format!("{shape}, found the function {}", x[0])),
        };
        mops.push(mop);
    }
    Ok(mops)
}

/// simkv's own history as transactions, when it is one Elle can read: it has a txn, and
/// its operations (inside txns or not; single-key ones become one-operation transactions)
/// are gets and puts (rw-register) or gets and appends whose values end in `;`
/// (list-append: a read's value splits at `;`). `None` otherwise, with why.
pub fn from_simkv(history: &History) -> Result<TxnHistory, String> {
    let workload = simkv_workload(history)?;
    let mut b = Builder::new(true);
    for e in &history.events {
        let p = u64::from(e.client.0);
        let parts: Vec<&Op> = match &*e.op {
            Op::Txn { ops } => ops.iter().collect(),
            op => vec![op],
        };
        match &e.outcome {
            None => {
                let mops = parts.iter().map(|op| simkv_mop(&mut b, op, None, workload));
                let mops = mops.collect::<Result<Vec<_>, _>>()?;
                b.invoke(p, mops, e.index as usize)?;
            }
            Some(Outcome::Ok(result)) => {
                let results: Vec<&OpResult> = match result {
                    OpResult::Txn { results } => results.iter().collect(),
                    r => vec![r],
                };
                if results.len() != parts.len() {
                    return Err(format!(
                        "index {}: a result per operation expected",
                        e.index
                    ));
                }
                let mops = parts
                    .iter()
                    .zip(results)
                    .map(|(op, r)| simkv_mop(&mut b, op, Some(r), workload));
                let mops = mops.collect::<Result<Vec<_>, _>>()?;
                b.complete(p, Status::Ok, Some(mops))?;
            }
            Some(Outcome::Fail(_)) => b.complete(p, Status::Fail, None)?,
            Some(Outcome::Info) => b.complete(p, Status::Info, None)?,
        }
    }
    b.finish(workload)
}

fn simkv_workload(history: &History) -> Result<Workload, String> {
    let (mut txn, mut put, mut append) = (false, false, false);
    for e in history.events.iter().filter(|e| e.outcome.is_none()) {
        let parts: &[Op] = match &*e.op {
            Op::Txn { ops } => {
                txn = true;
                ops
            }
            op => std::slice::from_ref(op),
        };
        for op in parts {
            match op {
                Op::Get { .. } => {}
                Op::Put { .. } => put = true,
                Op::Append { value, .. } if value.ends_with(';') => {
                    append = true;
                    if value[..value.len() - 1].contains(';') {
                        return Err("an append's value holds ';' before its end".to_string());
                    }
                }
                other => {
                    return Err(format!(
                        "Elle's workloads have gets, puts and appends only, not {}",
                        other.name()
                    ))
                }
            }
        }
    }
    match (txn, put, append) {
        (false, _, _) => Err("the history has no txn".to_string()),
        (_, true, true) => Err("the history mixes puts and appends".to_string()),
        (_, _, true) => Ok(Workload::ListAppend),
        _ => Ok(Workload::RwRegister),
    }
}

fn simkv_mop(
    b: &mut Builder,
    op: &Op,
    result: Option<&OpResult>,
    workload: Workload,
) -> Result<Mop, String> {
    let read = |b: &mut Builder, key: u64| -> Result<Mop, String> {
        let key_id = b.key(&key.to_string());
        let value: Option<Option<&str>> = match result {
            None => None,
            Some(OpResult::NotFound) => Some(None),
            Some(OpResult::Ok { value }) => Some(value.as_deref()),
            Some(other) => return Err(format!("a get answered {other:?}")),
        };
        Ok(match workload {
            Workload::RwRegister => Mop::ReadReg {
                key: key_id,
                value: value.map(|v| v.map(|s| b.value(s))),
            },
            Workload::ListAppend => Mop::ReadList {
                key: key_id,
                value: value.map(|v| {
                    let s = v.unwrap_or("");
                    let s = s.strip_suffix(';').unwrap_or(s);
                    match s.is_empty() {
                        true => Vec::new(),
                        false => s.split(';').map(|e| b.value(e)).collect(),
                    }
                }),
            },
        })
    };
    match op {
        Op::Get { key } => read(b, *key),
        Op::Put { key, value } => Ok(Mop::Write {
            key: b.key(&key.to_string()),
            value: b.value(value),
        }),
        Op::Append { key, value } => Ok(Mop::Append {
            key: b.key(&key.to_string()),
            value: b.value(value.strip_suffix(';').unwrap_or(value)),
        }),
        other => Err(format!("not an Elle operation: {}", other.name())),
    }
}
