//! What a history shows before any cycle is searched: version orders, the anomalies that need
//! no cycle (Elle section 4 and Adya's G1a and G1b), and the data dependency edges.
//!
//! list-append (Elle section 3.2, "traceability"): the version order of a key is its longest
//! read; a read that is not a prefix of it is `incompatible-order`. rw-register (Elle section
//! 3.3, "recoverability" with unique writes): a read names its writer; the version order is
//! known only where the initial state or a write that follows a read in the same transaction
//! places it.

use super::{ElemId, KeyId, Mop, PairMap, Status, TxnHistory, TxnId, Workload};
use std::collections::BTreeMap;

/// Edge kinds, as bits (an edge between two transactions may have several).
pub const WW: u8 = 1;
/// Write-read: the second read the first's write.
pub const WR: u8 = 2;
/// Read-write (anti-dependency): the first read a version the second overwrote.
pub const RW: u8 = 4;
/// Process order: the same process ran the first, completed, then the second.
pub const PROCESS: u8 = 8;
/// Real-time order: the first completed before the second was invoked.
pub const REALTIME: u8 = 16;

/// An anomaly that needs no cycle: its name (as Elle names it) and what shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// `G1a`, `G1b`, `internal`, `incompatible-order`, `garbage-read`, `duplicate-elements`,
    /// `lost-update`.
    pub name: &'static str,
    /// One sentence.
    pub explanation: String,
}

/// The analysis of a history's reads and writes.
#[derive(Debug, Default)]
pub struct Analysis {
    /// Anomalies that need no cycle, in history order.
    pub found: Vec<Found>,
    /// Who wrote (appended) each value of each key, whatever its status.
    pub writer: PairMap<TxnId>,
    /// list-append: each key's version order (its longest read).
    pub order: Vec<Vec<ElemId>>,
    /// list-append: each element's position in its key's order.
    pub pos: PairMap<u32>,
    /// Data edges (ww, wr, rw), unsorted, maybe repeated.
    pub edges: Vec<(TxnId, TxnId, u8)>,
    /// rw-register: writes whose place in the version order nothing shows.
    pub unplaced_writes: u64,
    /// rw-register: keys with such writes.
    pub unplaced_keys: u64,
}

/// A transaction's external reads: each key's first read, if no write of that key precedes
/// it in the transaction (later reads are internal: they must see the transaction's own
/// state, which [`internal`] checks).
pub fn external_reads(mops: &[Mop]) -> Vec<&Mop> {
    let mut touched: Vec<KeyId> = Vec::new();
    let mut out = Vec::new();
    for m in mops {
        let k = m.key();
        if touched.contains(&k) {
            continue;
        }
        touched.push(k);
        if matches!(m, Mop::ReadList { .. } | Mop::ReadReg { .. }) {
            out.push(m);
        }
    }
    out
}

/// Analyses a history (see the module's documentation).
pub fn analyse(h: &TxnHistory) -> Analysis {
    let mut a = Analysis {
        order: vec![Vec::new(); h.keys.len()],
        ..Analysis::default()
    };
    index_writers(h, &mut a);
    for (t, txn) in h.txns.iter().enumerate() {
        if txn.status == Status::Ok {
            if let Some(why) = internal(h, t as TxnId) {
                a.found.push(Found {
                    name: "internal",
                    explanation: why,
                });
            }
        }
    }
    match h.workload {
        Workload::ListAppend => list_append(h, &mut a),
        Workload::RwRegister => rw_register(h, &mut a),
    }
    a
}

fn index_writers(h: &TxnHistory, a: &mut Analysis) {
    for (t, txn) in h.txns.iter().enumerate() {
        for m in &txn.mops {
            if let Mop::Append { key, value } | Mop::Write { key, value } = m {
                // Uniqueness is checked when the history is built.
                a.writer.entry((*key, *value)).or_insert(t as TxnId);
            }
        }
    }
}

/// What a transaction knows of a key as it runs: the whole value, or only what it appended
/// (or wrote) since an unknown start.
enum Seen {
    Whole(Vec<ElemId>),
    Suffix(Vec<ElemId>),
}

/// Internal consistency (Elle section 4.1.1): a transaction's read agrees with its own
/// earlier reads and writes of that key.
fn internal(h: &TxnHistory, t: TxnId) -> Option<String> {
    let mut seen: BTreeMap<KeyId, Seen> = BTreeMap::new();
    for m in &h.txns[t as usize].mops {
        match m {
            Mop::Append { key, value } | Mop::Write { key, value } => {
                let reg = matches!(m, Mop::Write { .. });
                let entry = seen.entry(*key).or_insert(Seen::Suffix(Vec::new()));
                match entry {
                    Seen::Whole(v) | Seen::Suffix(v) if !reg => v.push(*value),
                    _ => *entry = Seen::Whole(vec![*value]),
                }
            }
            Mop::ReadList {
                key,
                value: Some(r),
            } => {
                let ok = match seen.get(key) {
                    None => true,
                    Some(Seen::Whole(v)) => v == r,
                    Some(Seen::Suffix(v)) => r.ends_with(v),
                };
                if !ok {
                    let expected = match &seen[key] {
                        Seen::Whole(v) => h.list(v),
                        Seen::Suffix(v) => format!("a list ending in {}", h.list(v)),
                    };
                    return Some(format!(
                        "{} read key {} = {} but its own earlier operations imply {expected}",
                        h.name(t),
                        h.key(*key),
                        h.list(r)
                    ));
                }
                seen.insert(*key, Seen::Whole(r.clone()));
            }
            Mop::ReadReg {
                key,
                value: Some(r),
            } => {
                let read: Vec<ElemId> = r.iter().copied().collect();
                if let Some(Seen::Whole(v)) = seen.get(key) {
                    if *v != read {
                        let name = |x: &[ElemId]| match x.first() {
                            Some(e) => h.value(*e).to_string(),
                            None => "nil".to_string(),
                        };
                        return Some(format!(
                            "{} read key {} = {} but its own earlier operations imply {}",
                            h.name(t),
                            h.key(*key),
                            name(&read),
                            name(v)
                        ));
                    }
                }
                seen.insert(*key, Seen::Whole(read));
            }
            _ => {}
        }
    }
    None
}

/// Whether `value` is one of `t`'s writes to `key` but not its last: an intermediate version.
fn intermediate(h: &TxnHistory, t: TxnId, key: KeyId, value: ElemId) -> bool {
    let mut last = None;
    for m in &h.txns[t as usize].mops {
        if let Mop::Append { key: k, value: v } | Mop::Write { key: k, value: v } = m {
            if *k == key {
                last = Some(*v);
            }
        }
    }
    last.is_some_and(|l| l != value)
}

/// The checks every read value makes against its writer: garbage (nobody wrote it), G1a (an
/// aborted transaction wrote it), G1b (an intermediate version of its writer). Returns the
/// writer when it is a committed or indeterminate transaction other than the reader.
fn check_read_value(
    h: &TxnHistory,
    a: &mut Analysis,
    reader: TxnId,
    key: KeyId,
    value: ElemId,
    last: bool,
) -> Option<TxnId> {
    let Some(&w) = a.writer.get(&(key, value)) else {
        a.found.push(Found {
            name: "garbage-read",
            explanation: format!(
                "{} read {} from key {}, which no transaction wrote",
                h.name(reader),
                h.value(value),
                h.key(key)
            ),
        });
        return None;
    };
    if h.txns[w as usize].status == Status::Fail {
        a.found.push(Found {
            name: "G1a",
            explanation: format!(
                "{} read {} from key {}, written by {}, which aborted (:fail)",
                h.name(reader),
                h.value(value),
                h.key(key),
                h.name(w)
            ),
        });
        return None;
    }
    if last && w != reader && intermediate(h, w, key, value) {
        a.found.push(Found {
            name: "G1b",
            explanation: format!(
                "{} read {} from key {}, an intermediate version: {} wrote it and then \
                 wrote key {} again",
                h.name(reader),
                h.value(value),
                h.key(key),
                h.name(w),
                h.key(key)
            ),
        });
    }
    (w != reader).then_some(w)
}

/// list-append: version orders, their consistency, and the ww, wr and rw edges.
fn list_append(h: &TxnHistory, a: &mut Analysis) {
    // The longest read of each key is its version order.
    for txn in h.txns.iter().filter(|t| t.status == Status::Ok) {
        for m in &txn.mops {
            if let Mop::ReadList {
                key,
                value: Some(r),
            } = m
            {
                if r.len() > a.order[*key as usize].len() {
                    a.order[*key as usize] = r.clone();
                }
            }
        }
    }
    for (k, order) in a.order.iter().enumerate() {
        for (i, e) in order.iter().enumerate() {
            a.pos.entry((k as KeyId, *e)).or_insert(i as u32);
        }
    }
    list_read_checks(h, a);
    // ww: consecutive elements of each order.
    for (k, order) in a.order.iter().enumerate() {
        let writers: Vec<Option<TxnId>> = order
            .iter()
            .map(|e| a.writer.get(&(k as KeyId, *e)).copied())
            .map(|w| w.filter(|w| h.txns[*w as usize].status != Status::Fail))
            .collect();
        for pair in writers.windows(2) {
            if let [Some(x), Some(y)] = pair {
                if x != y {
                    a.edges.push((*x, *y, WW));
                }
            }
        }
    }
    // wr and rw, from external reads.
    for (t, txn) in h.txns.iter().enumerate() {
        if txn.status != Status::Ok {
            continue;
        }
        let t = t as TxnId;
        for m in external_reads(&txn.mops) {
            let Mop::ReadList {
                key,
                value: Some(r),
            } = m
            else {
                continue;
            };
            let order = &a.order[*key as usize];
            if let Some(last) = r.last() {
                if let Some(w) = a.writer.get(&(*key, *last)) {
                    let w = *w;
                    if w != t && h.txns[w as usize].status != Status::Fail {
                        a.edges.push((w, t, WR));
                    }
                }
            }
            if order.starts_with(r) {
                if let Some(next) = order.get(r.len()) {
                    if let Some(&w) = a.writer.get(&(*key, *next)) {
                        if w != t && h.txns[w as usize].status != Status::Fail {
                            a.edges.push((t, w, RW));
                        }
                    }
                }
            }
        }
    }
}

/// Each committed read of a list: a prefix of the key's order, without repeats, of values
/// someone wrote, none aborted, its last no intermediate version.
fn list_read_checks(h: &TxnHistory, a: &mut Analysis) {
    for (t, txn) in h.txns.iter().enumerate() {
        if txn.status != Status::Ok {
            continue;
        }
        for m in &txn.mops {
            let Mop::ReadList {
                key,
                value: Some(r),
            } = m
            else {
                continue;
            };
            let order = &a.order[*key as usize];
            if !order.starts_with(r) {
                let explanation = format!(
                    "{} read key {} = {}, which is not a prefix of the longest read {}",
                    h.name(t as TxnId),
                    h.key(*key),
                    h.list(r),
                    h.list(order)
                );
                a.found.push(Found {
                    name: "incompatible-order",
                    explanation,
                });
            }
            let mut sorted = r.clone();
            sorted.sort_unstable();
            if let Some(d) = sorted.windows(2).find(|w| w[0] == w[1]) {
                let explanation = format!(
                    "{} read key {} = {}, in which {} appears more than once",
                    h.name(t as TxnId),
                    h.key(*key),
                    h.list(r),
                    h.value(d[0])
                );
                a.found.push(Found {
                    name: "duplicate-elements",
                    explanation,
                });
            }
            for (i, e) in r.iter().enumerate() {
                check_read_value(h, a, t as TxnId, *key, *e, i + 1 == r.len());
            }
        }
    }
}

/// Per key, its committed or indeterminate writers, each with the version its transaction
/// read of the key before writing it (`None`: it did not read it; `Some(None)`: nil).
type Writers = BTreeMap<KeyId, Vec<(TxnId, Option<Option<ElemId>>)>>;

/// rw-register: wr edges from reads; ww and rw edges where the version order is known.
fn rw_register(h: &TxnHistory, a: &mut Analysis) {
    // Per key: external readers of each version (None: the initial nil), and committed or
    // indeterminate writers with, when known, the version their transaction read first.
    let mut readers: BTreeMap<(KeyId, Option<ElemId>), Vec<TxnId>> = BTreeMap::new();
    let mut writers: Writers = BTreeMap::new();
    for (t, txn) in h.txns.iter().enumerate() {
        let t = t as TxnId;
        if txn.status == Status::Fail {
            continue;
        }
        let ext = external_reads(&txn.mops);
        let read_of = |k: KeyId| {
            ext.iter().find_map(|m| match m {
                Mop::ReadReg {
                    key,
                    value: Some(v),
                } if *key == k => Some(*v),
                _ => None,
            })
        };
        let mut wrote: Vec<KeyId> = Vec::new();
        for m in &txn.mops {
            if let Mop::Write { key, .. } = m {
                if !wrote.contains(key) {
                    wrote.push(*key);
                    writers.entry(*key).or_default().push((t, read_of(*key)));
                }
            }
        }
        if txn.status != Status::Ok {
            continue;
        }
        for m in &txn.mops {
            if let Mop::ReadReg {
                key,
                value: Some(Some(e)),
            } = m
            {
                if let Some(w) = check_read_value(h, a, t, *key, *e, true) {
                    a.edges.push((w, t, WR));
                }
            }
        }
        for m in &ext {
            if let Mop::ReadReg {
                key,
                value: Some(v),
            } = m
            {
                readers.entry((*key, *v)).or_default().push(t);
            }
        }
    }
    register_orders(h, a, &readers, &writers);
}

/// The version-order edges of rw-register that Elle infers: the initial state precedes every
/// write (readers of nil rw-precede every writer), and a transaction that read version v and
/// then wrote the key follows v's writer (ww) and v's other readers (rw).
fn register_orders(
    h: &TxnHistory,
    a: &mut Analysis,
    readers: &BTreeMap<(KeyId, Option<ElemId>), Vec<TxnId>>,
    writers: &Writers,
) {
    let none: Vec<TxnId> = Vec::new();
    for (key, ws) in writers {
        let mut by_version: BTreeMap<Option<ElemId>, Vec<TxnId>> = BTreeMap::new();
        for (w, read) in ws {
            for r in readers.get(&(*key, None)).unwrap_or(&none) {
                if r != w {
                    a.edges.push((*r, *w, RW));
                }
            }
            let Some(v) = read else {
                a.unplaced_writes += 1;
                continue;
            };
            by_version.entry(*v).or_default().push(*w);
            if let Some(e) = v {
                if let Some(&prev) = a.writer.get(&(*key, *e)) {
                    if prev != *w && h.txns[prev as usize].status != Status::Fail {
                        a.edges.push((prev, *w, WW));
                    }
                }
                for r in readers.get(&(*key, Some(*e))).unwrap_or(&none) {
                    if r != w {
                        a.edges.push((*r, *w, RW));
                    }
                }
            }
        }
        if ws.iter().any(|(_, read)| read.is_none()) {
            a.unplaced_keys += 1;
        }
        for (v, ws) in by_version.iter().filter(|(_, ws)| ws.len() > 1) {
            let committed: Vec<&TxnId> = ws
                .iter()
                .filter(|w| h.txns[**w as usize].status == Status::Ok)
                .collect();
            if committed.len() < 2 {
                continue;
            }
            let names: Vec<String> = committed.iter().map(|w| h.name(**w)).collect();
            let version = v.map_or("nil".to_string(), |e| h.value(e).to_string());
            a.found.push(Found {
                name: "lost-update",
                explanation: format!(
                    "{} all read key {} = {version} and then wrote it: all but one of their \
                     writes is lost",
                    names.join(", "),
                    h.key(*key)
                ),
            });
        }
    }
}
