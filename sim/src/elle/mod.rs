//! Transactional histories checked as Elle does (Kingsbury & Alvaro, "Elle: Inferring
//! Isolation Anomalies from Experimental Observations", VLDB 2020), in time near-linear in the
//! history.
//!
//! A history of transactions (Jepsen's `:txn`, each a vector of micro-operations) is turned
//! into a dependency graph in the sense of Adya's thesis ("Weak Consistency: A Generalized
//! Theory and Optimistic Implementations for Distributed Transactions", MIT 1999):
//!
//! - **list-append** (`[:append k v]`, `[:r k [v1 v2 ...]]`): every read shows the order of
//!   every append before it, so the version order of each key is the longest read, and every
//!   other read must be a prefix of it ([`anomalies`] checks that and the rest: duplicate
//!   elements, internal inconsistency, G1a aborted reads, G1b intermediate reads, garbage
//!   reads);
//! - **rw-register** with unique writes (`[:w k v]`, `[:r k v]`): reads give wr edges; the
//!   version order is inferred only where Elle infers it (the initial state precedes every
//!   write; a transaction that reads a version and then writes the key orders the two), and
//!   the report says how many writes could not be placed.
//!
//! [`graph`] builds ww, wr and rw edges between transactions, process order, and real-time
//! order (through one chain of completion points, so that it costs O(n) edges rather than the
//! O(n * concurrency) of explicit pairs), finds strongly connected components, and inside each
//! the shortest cycle of each anomaly class (G0, G1c, G-single, G2-item, and their `-process`
//! and `-realtime` variants). [`explain`] says each cycle in words and which consistency
//! models each anomaly rules out.
//!
//! Transactions that completed `:fail` did not happen: they are not in the graph, and a read
//! of their writes is G1a. An `:info` transaction may or may not have happened: its writes are
//! in the graph exactly where some read shows them (its reads are unknown and give no edges),
//! and it has no completion, so nothing follows it in real time.
//!
//! Everything here is deterministic: maps that are iterated are `BTreeMap`s or vectors;
//! hash maps are only looked up.

pub mod anomalies;
pub mod explain;
pub mod gen;
pub mod graph;
pub mod input;
#[cfg(test)]
mod tests;

pub use explain::{ConsistencyModel, Report};
pub use input::{from_edn, from_simkv, Builder};

use crate::lincheck::model::FxHashMap;

/// An interned key.
pub type KeyId = u32;
/// An interned value (an appended element, or a register's written value).
pub type ElemId = u32;
/// A transaction's position in [`TxnHistory::txns`] (invocation order).
pub type TxnId = u32;

/// How a transaction completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Committed; its reads are known.
    Ok,
    /// Aborted: it did not happen.
    Fail,
    /// Unknown: it may or may not have happened; its reads are unknown.
    Info,
}

/// One micro-operation of a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mop {
    /// `[:append k v]`.
    Append {
        /// The key.
        key: KeyId,
        /// The element appended.
        value: ElemId,
    },
    /// `[:w k v]`.
    Write {
        /// The key.
        key: KeyId,
        /// The value written.
        value: ElemId,
    },
    /// `[:r k [v1 v2 ...]]` on a list: `None` when the read is unknown (not `:ok`).
    ReadList {
        /// The key.
        key: KeyId,
        /// The list read (empty for nil).
        value: Option<Vec<ElemId>>,
    },
    /// `[:r k v]` on a register: `None` when unknown, `Some(None)` for nil.
    ReadReg {
        /// The key.
        key: KeyId,
        /// The value read.
        value: Option<Option<ElemId>>,
    },
}

impl Mop {
    /// The key the micro-operation touches.
    pub fn key(&self) -> KeyId {
        match self {
            Mop::Append { key, .. }
            | Mop::Write { key, .. }
            | Mop::ReadList { key, .. }
            | Mop::ReadReg { key, .. } => *key,
        }
    }
}

/// One transaction: its micro-operations as completed (as invoked when not `:ok`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Txn {
    /// The process that ran it.
    pub process: u64,
    /// How it completed.
    pub status: Status,
    /// The micro-operations, in order.
    pub mops: Vec<Mop>,
    /// The position of its invocation among all events (invocations and completions).
    pub invoked_at: u64,
    /// The position of its completion; `None` for a transaction that never completed.
    pub completed_at: Option<u64>,
    /// Where it is in the input: a line (EDN) or a history index (simkv), for messages.
    pub line: usize,
}

/// The kind of objects a history's transactions act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Appends to lists, reads of whole lists.
    ListAppend,
    /// Writes of unique values to registers, reads of one value.
    RwRegister,
}

impl Workload {
    /// Its name, as Elle's workloads are named.
    pub fn name(self) -> &'static str {
        match self {
            Workload::ListAppend => "list-append",
            Workload::RwRegister => "rw-register",
        }
    }
}

/// A history of transactions, ready to analyse.
#[derive(Clone, Debug)]
pub struct TxnHistory {
    /// The workload.
    pub workload: Workload,
    /// Transactions in invocation order.
    pub txns: Vec<Txn>,
    /// Key names, by [`KeyId`].
    pub keys: Vec<String>,
    /// Value names, by [`ElemId`].
    pub values: Vec<String>,
    /// Whether transactions are numbered by history index rather than line in messages.
    pub by_index: bool,
}

impl TxnHistory {
    /// A transaction's name in explanations: `T12 (process 3, line 40)`.
    pub fn name(&self, t: TxnId) -> String {
        let txn = &self.txns[t as usize];
        let at = if self.by_index { "index" } else { "line" };
        format!("T{t} (process {}, {at} {})", txn.process, txn.line)
    }

    /// A key's name.
    pub fn key(&self, k: KeyId) -> &str {
        &self.keys[k as usize]
    }

    /// A value's name.
    pub fn value(&self, v: ElemId) -> &str {
        &self.values[v as usize]
    }

    /// A list of values, as EDN.
    pub fn list(&self, vs: &[ElemId]) -> String {
        let items: Vec<&str> = vs.iter().map(|v| self.value(*v)).collect();
        format!("[{}]", items.join(" "))
    }
}

/// Limits on the cycle search, so that a pathological graph ends.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The most search states expanded per anomaly class per component, after which the
    /// shortest cycle found so far is reported (and marked as maybe not the shortest).
    pub max_expansions: u64,
    /// The most cycles reported per anomaly class (the rest are counted).
    pub max_reported: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_expansions: 4_000_000,
            max_reported: 4,
        }
    }
}

/// Checks a history: every anomaly found, and the models ruled out.
pub fn check(history: &TxnHistory, limits: &Limits) -> Report {
    let analysis = anomalies::analyse(history);
    let graph = graph::DepGraph::build(history, &analysis);
    let cycles = graph.cycles(limits);
    explain::report(history, &analysis, &graph, cycles, limits)
}

/// A lookup from `(key, value)` pairs, for writers and positions.
pub(crate) type PairMap<V> = FxHashMap<(KeyId, ElemId), V>;
