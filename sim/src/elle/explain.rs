//! Anomalies in words, and the consistency models they rule out.
//!
//! The lattice is Adya's (PL-1 read uncommitted: no G0; PL-2 read committed: no G1a, G1b,
//! G1c; PL-2.99 repeatable read: no G2-item; PL-SI snapshot isolation: no G-single; PL-3
//! serializable: no G2) with Elle's strict serializable on top (no cycle through real-time
//! edges either; Elle section 4.3). Snapshot isolation and repeatable read are incomparable:
//! write skew (G2-item with two rw edges) is allowed by the first only, and G-single is
//! forbidden by both.

use super::anomalies::{external_reads, Analysis, Found, PROCESS, REALTIME, RW, WR, WW};
use super::graph::{Cycle, DepGraph, SPECS};
use super::{Limits, Mop, TxnHistory, TxnId, Workload};
use std::fmt::Write as _;

/// A consistency model, as `--consistency-model` spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConsistencyModel {
    /// Serializable, and the order agrees with real time.
    StrictSerializable,
    /// Some serial order explains every transaction (Adya PL-3).
    Serializable,
    /// Adya PL-SI.
    SnapshotIsolation,
    /// Adya PL-2.99.
    RepeatableRead,
    /// Adya PL-2.
    ReadCommitted,
    /// Adya PL-1.
    ReadUncommitted,
}

use ConsistencyModel as M;

impl ConsistencyModel {
    /// Every model, strongest first.
    pub const ALL: [ConsistencyModel; 6] = [
        M::StrictSerializable,
        M::Serializable,
        M::SnapshotIsolation,
        M::RepeatableRead,
        M::ReadCommitted,
        M::ReadUncommitted,
    ];

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            M::StrictSerializable => "strict-serializable",
            M::Serializable => "serializable",
            M::SnapshotIsolation => "snapshot-isolation",
            M::RepeatableRead => "repeatable-read",
            M::ReadCommitted => "read-committed",
            M::ReadUncommitted => "read-uncommitted",
        }
    }

    /// The model named `name`.
    pub fn parse(name: &str) -> Option<ConsistencyModel> {
        M::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// The models an anomaly rules out (its class is the name without `-process`/`-realtime`).
pub fn ruled_out_by(anomaly: &str) -> &'static [ConsistencyModel] {
    const ALL: &[M] = &M::ALL;
    const RC: &[M] = &[
        M::StrictSerializable,
        M::Serializable,
        M::SnapshotIsolation,
        M::RepeatableRead,
        M::ReadCommitted,
    ];
    const RR_SI: &[M] = &[
        M::StrictSerializable,
        M::Serializable,
        M::SnapshotIsolation,
        M::RepeatableRead,
    ];
    const RR: &[M] = &[M::StrictSerializable, M::Serializable, M::RepeatableRead];
    if anomaly.ends_with("-process") || anomaly.ends_with("-realtime") {
        return &[M::StrictSerializable];
    }
    match anomaly {
        "G1a" | "G1b" | "G1c" => RC,
        "G-single" | "lost-update" => RR_SI,
        "G2-item" => RR,
        // G0 (dirty write), and histories no database could produce: internal,
        // incompatible-order, garbage-read, duplicate-elements.
        _ => ALL,
    }
}

/// One anomaly class found: how many times, and some examples in words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// `G0`, `G1a`, `G-single-realtime`, ...
    pub name: String,
    /// How many were found (cycles: components with one).
    pub count: usize,
    /// Explanations of the first few.
    pub examples: Vec<String>,
}

/// The checker's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The workload.
    pub workload: Workload,
    /// Transactions in the history.
    pub txns: usize,
    /// Anomalies found, no-cycle ones first, then cycles weakest class first.
    pub anomalies: Vec<Group>,
    /// What the checker could not do (rw-register writes it could not place, searches cut).
    pub notes: Vec<String>,
}

impl Report {
    /// The models the anomalies rule out, strongest first.
    pub fn ruled_out(&self) -> Vec<ConsistencyModel> {
        M::ALL
            .into_iter()
            .filter(|m| {
                self.anomalies
                    .iter()
                    .any(|g| ruled_out_by(&g.name).contains(m))
            })
            .collect()
    }

    /// Whether the history violates `model`.
    pub fn violates(&self, model: ConsistencyModel) -> bool {
        self.ruled_out().contains(&model)
    }

    /// The report as text: anomalies with examples, models ruled out, notes.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for g in &self.anomalies {
            let _ = writeln!(out, "{} ({} found)", g.name, g.count);
            for e in &g.examples {
                for (i, line) in e.lines().enumerate() {
                    let lead = if i == 0 { "  - " } else { "    " };
                    let _ = writeln!(out, "{lead}{line}");
                }
            }
        }
        let out_models: Vec<&str> = self.ruled_out().iter().map(|m| m.name()).collect();
        let kept: Vec<&str> = M::ALL
            .into_iter()
            .filter(|m| !self.violates(*m))
            .map(|m| m.name())
            .collect();
        if !out_models.is_empty() {
            let _ = writeln!(out, "ruled out: {}", out_models.join(", "));
        }
        if !kept.is_empty() {
            let _ = writeln!(out, "not ruled out: {}", kept.join(", "));
        }
        for n in &self.notes {
            let _ = writeln!(out, "note: {n}");
        }
        out
    }
}

/// The no-cycle anomalies, in the order reports list them.
const FOUND_ORDER: [&str; 8] = [
    "internal",
    "incompatible-order",
    "duplicate-elements",
    "garbage-read",
    "G1a",
    "G1b",
    "lost-update",
    "",
];

/// Assembles the report.
pub fn report(
    h: &TxnHistory,
    a: &Analysis,
    g: &DepGraph,
    cycles: Vec<(Vec<Cycle>, usize)>,
    limits: &Limits,
) -> Report {
    let mut anomalies = Vec::new();
    for name in FOUND_ORDER.iter().filter(|n| !n.is_empty()) {
        let of: Vec<&Found> = a.found.iter().filter(|f| f.name == *name).collect();
        if of.is_empty() {
            continue;
        }
        anomalies.push(Group {
            name: name.to_string(),
            count: of.len(),
            examples: of
                .iter()
                .take(limits.max_reported)
                .map(|f| f.explanation.clone())
                .collect(),
        });
    }
    let mut notes = Vec::new();
    for (spec, (found, count)) in SPECS.iter().zip(cycles) {
        if found.is_empty() {
            continue;
        }
        if found.iter().any(|c| c.cut) {
            notes.push(format!(
                "the search for {} cycles ran out of its budget of {} steps in a component: \
                 the cycle shown is the shortest found, maybe not the shortest there is",
                spec.name, limits.max_expansions
            ));
        }
        anomalies.push(Group {
            name: spec.name.to_string(),
            count,
            examples: found.iter().map(|c| cycle_words(h, a, g, c)).collect(),
        });
    }
    if a.unplaced_writes > 0 {
        notes.push(format!(
            "rw-register: cannot infer where {} writes (to {} keys) fall in their key's \
             version order: no transaction read the key and then wrote it, so only the \
             initial state orders them; cycles through their ww and rw edges cannot be found",
            a.unplaced_writes, a.unplaced_keys
        ));
    }
    Report {
        workload: h.workload,
        txns: h.txns.len(),
        anomalies,
        notes,
    }
}

/// A cycle in words: one line per step, "T1 < T2 because ...".
pub fn cycle_words(h: &TxnHistory, a: &Analysis, _g: &DepGraph, c: &Cycle) -> String {
    let rw = c.steps.iter().filter(|s| s.2 == RW).count();
    let mut out = format!(
        "a cycle of {} transactions ({} rw edge{})",
        c.steps.len(),
        rw,
        if rw == 1 { "" } else { "s" }
    );
    let mut named: Vec<TxnId> = Vec::new();
    let mut name = |t: TxnId| {
        if named.contains(&t) {
            format!("T{t}")
        } else {
            named.push(t);
            h.name(t)
        }
    };
    for &(x, y, kind) in &c.steps {
        let (nx, ny) = (name(x), name(y));
        let why = why(h, a, x, y, kind);
        let _ = write!(out, "\n{nx} < {ny} because {why}");
    }
    out
}

/// Why `x` precedes `y` by an edge of `kind`, in words.
pub fn why(h: &TxnHistory, a: &Analysis, x: TxnId, y: TxnId, kind: u8) -> String {
    let (tx, ty) = (&h.txns[x as usize], &h.txns[y as usize]);
    let found = match (kind, h.workload) {
        (PROCESS, _) => Some(format!("process {} ran T{x}, then T{y}", tx.process)),
        (REALTIME, _) => Some(format!(
            "T{x} completed before T{y} was invoked (real time)"
        )),
        (WW, Workload::ListAppend) => ww_list(h, a, x, y),
        (WR, _) => wr_any(h, a, x, y),
        (RW, Workload::ListAppend) => rw_list(h, a, x, y),
        (WW, Workload::RwRegister) => ww_register(h, a, x, y),
        (RW, Workload::RwRegister) => rw_register(h, a, x, y),
        _ => None,
    };
    let _ = ty;
    found.unwrap_or_else(|| format!("of an edge of kind {kind}"))
}

fn writes(h: &TxnHistory, t: TxnId) -> impl Iterator<Item = (u32, u32)> + '_ {
    h.txns[t as usize].mops.iter().filter_map(|m| match m {
        Mop::Append { key, value } | Mop::Write { key, value } => Some((*key, *value)),
        _ => None,
    })
}

fn ww_list(h: &TxnHistory, a: &Analysis, x: TxnId, y: TxnId) -> Option<String> {
    writes(h, x).find_map(|(k, v)| {
        let p = *a.pos.get(&(k, v))? as usize;
        let next = *a.order[k as usize].get(p + 1)?;
        (a.writer.get(&(k, next)) == Some(&y)).then(|| {
            format!(
                "T{y} appended {} to key {} right after T{x}'s append of {}",
                h.value(next),
                h.key(k),
                h.value(v)
            )
        })
    })
}

fn wr_any(h: &TxnHistory, a: &Analysis, x: TxnId, y: TxnId) -> Option<String> {
    h.txns[y as usize].mops.iter().find_map(|m| {
        let (k, v) = match m {
            Mop::ReadList {
                key,
                value: Some(r),
            } => (*key, *r.last()?),
            Mop::ReadReg {
                key,
                value: Some(Some(v)),
            } => (*key, *v),
            _ => return None,
        };
        let verb = match h.workload {
            Workload::ListAppend => "append",
            Workload::RwRegister => "write",
        };
        (a.writer.get(&(k, v)) == Some(&x)).then(|| {
            format!(
                "T{y} read T{x}'s {verb} of {} to key {}",
                h.value(v),
                h.key(k)
            )
        })
    })
}

fn rw_list(h: &TxnHistory, a: &Analysis, x: TxnId, y: TxnId) -> Option<String> {
    external_reads(&h.txns[x as usize].mops)
        .into_iter()
        .find_map(|m| {
            let Mop::ReadList {
                key,
                value: Some(r),
            } = m
            else {
                return None;
            };
            let next = *a.order[*key as usize].get(r.len())?;
            (a.writer.get(&(*key, next)) == Some(&y)).then(|| {
                format!(
                    "T{x} read key {} = {} without T{y}'s append of {}, which comes next",
                    h.key(*key),
                    h.list(r),
                    h.value(next)
                )
            })
        })
}

/// The version `t` read of `key` before writing it, if it did.
fn read_before_write(h: &TxnHistory, t: TxnId, key: u32) -> Option<Option<u32>> {
    external_reads(&h.txns[t as usize].mops)
        .into_iter()
        .find_map(|m| match m {
            Mop::ReadReg {
                key: k,
                value: Some(v),
            } if *k == key => Some(*v),
            _ => None,
        })
}

fn ww_register(h: &TxnHistory, a: &Analysis, x: TxnId, y: TxnId) -> Option<String> {
    writes(h, y).find_map(|(k, w)| {
        let v = read_before_write(h, y, k)??;
        (a.writer.get(&(k, v)) == Some(&x)).then(|| {
            format!(
                "T{y} read T{x}'s write of {} to key {} and then wrote {} over it",
                h.value(v),
                h.key(k),
                h.value(w)
            )
        })
    })
}

fn rw_register(h: &TxnHistory, _a: &Analysis, x: TxnId, y: TxnId) -> Option<String> {
    writes(h, y).find_map(|(k, w)| {
        let read = read_before_write(h, x, k)?;
        match read {
            None => Some(format!(
                "T{x} read key {} = nil, the initial state, which every write of it \
                 follows, T{y}'s write of {} too",
                h.key(k),
                h.value(w)
            )),
            Some(v) => (read_before_write(h, y, k) == Some(Some(v))).then(|| {
                format!(
                    "T{x} read key {} = {}, which T{y} read too and then overwrote with {}",
                    h.key(k),
                    h.value(v),
                    h.value(w)
                )
            }),
        }
    })
}
