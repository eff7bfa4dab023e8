//! Linearizability and consistency checkers for histories: simkv's own and Jepsen's (EDN).
//!
//! (Named apart from [`crate::checks`], the checks a run makes, which call on it.) It knows
//! nothing of the engine: its only inputs are histories, simkv's ([`crate::history`], whose
//! types it shares with the engine that records them) and Jepsen's EDN.
//!
//! The driving contract: a history is first *prepared* ([`prepare_simkv`], [`edn::prepare`]):
//! operations are paired (invocation with completion), failed ones dropped (they did not
//! happen), unconstrained ones dropped (an unfinished read), the rest compiled to a
//! [`model::Kind`] over interned values and split into one partition per key (Horn &
//! Kroening's P-compositionality: a history is linearizable iff each key's is). Then
//! [`check_prepared`] decides each partition: by the near-linear "zones" test
//! ([`zones`]) when it applies (reads and writes of unique values only), otherwise by the
//! search ([`linearizable`]). Every search draws on one [`Budget`]; when it runs out the answer
//! is [`Verdict::Unknown`], never a hang. A violation is shrunk to a minimal counterexample
//! ([`counterexample`]) that can be printed as text or drawn as HTML ([`explain`]).
//!
//! Positions: an operation's call and return are the indices of its events in the history, so
//! "a returned before b was called" is `a.ret < b.call`, with no ties. (Should a return and a
//! call share a position all the same, the search and zones both count the return as first,
//! `a.ret <= b.call`, as the brute-force reference the tests hold them to does.)

pub mod counterexample;
pub mod edn;
pub mod explain;
pub mod gen;
pub mod linearizable;
pub mod model;
mod prune;
pub mod staleness;
pub mod zones;

#[cfg(test)]
mod brute;
#[cfg(test)]
mod tests;

use crate::history::{History, HistoryError, Outcome};
pub use counterexample::{CounterOp, Counterexample};
use linearizable::{Found, Meter};
use model::{Compound, FxHashMap, Interner, Kind, Part, Val, ABSENT};
use serde::Serialize;
use simkv_protocols::{ClientId, Key, Op, OpResult};
pub use staleness::{staleness, StalenessReport};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How much work a check may do before it answers "unknown".
///
/// `deadline` is wall-clock time and so belongs only to a user's `--timeout`: checks run
/// inside a simulation must bound themselves by steps and memory alone, or a run's verdict
/// would depend on the machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Give up after this much wall-clock time (a user's `--timeout`).
    pub deadline: Option<Duration>,
    /// Give up after this many search steps, over all keys.
    pub max_steps: u64,
    /// The memo's entry limit (16 bytes each, at most twice that in slots); when full it is
    /// emptied and the search goes on, so memory stays bounded.
    pub max_memo_entries: usize,
    /// Give up once the interned values pass this many bytes: the history's own and those the
    /// search makes (the result of each append of unknown outcome, one per state reached),
    /// which grow with the search on append-heavy histories.
    pub max_value_bytes: usize,
    /// Search every key even after one is found violated (`--all-keys`); by default the
    /// first violated key ends the check and keys not yet decided are left unknown.
    pub all_keys: bool,
    /// How much shrinking the counterexample may cost.
    pub shrink: Shrink,
    /// Report the lowest violated key, as a sequential search would: once a key is found
    /// violated, the keys before it are still searched (those after it are not). Runs' own
    /// checks set it, so that their reports name the same key whatever the scheduling.
    pub lowest_key: bool,
}

/// Shrinking's own budget (see [`counterexample::build`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shrink {
    /// No shrinking: the counterexample is the violated key's whole history (`--no-shrink`).
    Off,
    /// Steps only: ten times what the failing search took, at least a few million; and, when
    /// the budget has a deadline (a user's check, never one inside a run), at most
    /// [`SHRINK_TIME_FACTOR`] times the decision's wall time, at least [`SHRINK_TIME_FLOOR`].
    Default,
    /// At most this much wall-clock time (`--shrink-timeout`), and the steps of `Default`.
    Timeout(Duration),
}

/// The default shrink deadline is this many times the decision's time...
pub const SHRINK_TIME_FACTOR: u32 = 4;
/// ... but never less than this.
pub const SHRINK_TIME_FLOOR: Duration = Duration::from_millis(200);

impl Default for Budget {
    /// No deadline, 2^32 steps (minutes of work), 2^22 memo entries (at most 128 MiB),
    /// 1 GiB of values made by each key's search, stop at the first violated key, shrink.
    fn default() -> Self {
        Budget {
            deadline: None,
            max_steps: 1 << 32,
            max_memo_entries: 1 << 22,
            max_value_bytes: 1 << 30,
            all_keys: false,
            shrink: Shrink::Default,
            lowest_key: false,
        }
    }
}

/// A check's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every key's operations can be ordered to explain every result.
    Linearizable,
    /// Some key's cannot; the (shrunk) operations that show it.
    NotLinearizable(Box<Counterexample>),
    /// The budget ran out before an answer; why.
    Unknown(String),
}

impl Verdict {
    /// The verdict as `--json` spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Linearizable => "linearizable",
            Verdict::NotLinearizable(_) => "not-linearizable",
            Verdict::Unknown(_) => "unknown",
        }
    }
}

/// How a key was decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Gibbons & Korach's zones test (unique-value reads and writes).
    Zones,
    /// The search.
    Search,
}

/// One key's part of a check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyStats {
    /// The key, as the history spells it (empty for a single register).
    pub key: String,
    /// Operations checked (after dropping failed and unconstrained ones).
    pub ops: usize,
    /// How it was decided.
    pub method: Method,
    /// `linearizable`, `not-linearizable` or `unknown`.
    pub verdict: &'static str,
    /// Search steps spent on it (0 for zones).
    pub steps: u64,
    /// The memo's peak entry count.
    pub memo_entries: usize,
}

/// What [`check_prepared`] found.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckOutcome {
    /// The verdict for the whole history.
    pub verdict: Verdict,
    /// The model checked against (`kv`, `register`, `kv-strict`).
    pub model: String,
    /// Operations checked, over all keys.
    pub ops: usize,
    /// Per key, in the order keys are listed (numeric keys ascending, else first appearance).
    pub keys: Vec<KeyStats>,
    /// Wall time of the decision (pruning, zones, searching; not parsing, not shrinking). For
    /// reports' timing fields only: it never decides anything.
    pub check_time: Duration,
    /// Wall time spent shrinking the counterexample (zero when there is none).
    pub shrink_time: Duration,
}

impl CheckOutcome {
    /// The keys (partitions) whose verdict is `verdict`, in order.
    pub fn keys_with(&self, verdict: &str) -> Vec<&str> {
        self.keys
            .iter()
            .filter(|k| k.verdict == verdict)
            .map(|k| k.key.as_str())
            .collect()
    }
}

/// Marks an operation whose outcome is unknown: no return, it may take effect at any time
/// after its call, or never.
pub const PENDING: u64 = u64::MAX;

/// One operation, prepared for checking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Operation {
    /// Position of its invocation in the history.
    pub call: u64,
    /// Position of its completion, or [`PENDING`].
    pub ret: u64,
    /// The process (client) that issued it.
    pub process: u64,
    /// What it did and what it saw.
    pub kind: Kind,
}

/// One key's operations, in call order; or, when transactions join keys, the operations of
/// every key they join.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// The key, as the history spells it (keys joined by `+` for joined keys).
    pub key: String,
    /// Its operations, in call order.
    pub ops: Vec<Operation>,
    /// For keys joined by transactions: how many. The partition's state is then a tuple of
    /// their values (one slot each, in key order) and every operation a
    /// [`model::Kind::Multi`]. `None` for a single key's partition.
    pub joined: Option<usize>,
}

impl Partition {
    /// The partition's state before the history, given each key's: that value, or a tuple of
    /// it for joined keys.
    pub fn initial_state(&self, init: Val, values: &mut Interner) -> Val {
        match self.joined {
            None => init,
            Some(n) => values.intern_tuple(&vec![init; n]),
        }
    }
}

/// How counterexamples name processes and positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Naming {
    /// simkv: clients `c1`, `c2`, ...; positions are event indices (`#12`).
    Simkv,
    /// Jepsen: processes by number; positions are the lines of the EDN file.
    Jepsen,
}

/// A history ready for [`check_prepared`].
#[derive(Clone, Debug)]
pub struct Prepared {
    /// The model's name.
    pub model: String,
    /// One per key.
    pub partitions: Vec<Partition>,
    /// Every value mentioned.
    pub values: Interner,
    /// Each key's value before the history.
    pub init: Val,
    /// How to name processes and positions.
    pub naming: Naming,
    /// For EDN: the line of each position (event), for counterexamples.
    pub lines: Vec<u32>,
}

impl Prepared {
    /// Operations over all partitions.
    pub fn ops(&self) -> usize {
        self.partitions.iter().map(|p| p.ops.len()).sum()
    }
}

/// Checks one of simkv's own histories against the strict kv model.
///
/// A malformed history (which simkv never writes) is reported as [`Verdict::Unknown`] with the
/// reason; use [`prepare_simkv`] to get the error itself.
pub fn check_simkv_history(history: &History, budget: &Budget) -> CheckOutcome {
    let start = Instant::now();
    match prepare_simkv(history) {
        Ok(prepared) => {
            let mut outcome = check_prepared(prepared, budget);
            outcome.check_time = start.elapsed() - outcome.shrink_time;
            outcome
        }
        Err(e) => CheckOutcome {
            verdict: Verdict::Unknown(format!("malformed: line {}: {}", e.line, e.message)),
            model: "kv-strict".to_string(),
            ops: 0,
            keys: Vec::new(),
            check_time: start.elapsed(),
            shrink_time: Duration::ZERO,
        },
    }
}

/// Something per key, found by key through a hash map (looked up only, never iterated) and
/// listed in order of first appearance or of key: a `BTreeMap`'s order without a tree search
/// per lookup, for what is looked up once per operation of a history.
pub(crate) struct ByKey<K, V> {
    index: FxHashMap<K, usize>,
    entries: Vec<(K, V)>,
}

impl<K: std::hash::Hash + Eq + Clone, V: Default> ByKey<K, V> {
    pub(crate) fn new() -> Self {
        ByKey {
            index: FxHashMap::default(),
            entries: Vec::new(),
        }
    }

    /// `key`'s entry (made empty on first sight) and its place in order of first appearance.
    pub(crate) fn entry(&mut self, key: &K) -> (usize, &mut V) {
        let at = match self.index.get(key) {
            Some(&at) => at,
            None => {
                self.index.insert(key.clone(), self.entries.len());
                self.entries.push((key.clone(), V::default()));
                self.entries.len() - 1
            }
        };
        (at, &mut self.entries[at].1)
    }

    /// The entry at place `at` (see [`ByKey::entry`]).
    pub(crate) fn at(&mut self, at: usize) -> &mut V {
        &mut self.entries[at].1
    }

    /// The entries in order of first appearance.
    pub(crate) fn into_entries(self) -> Vec<(K, V)> {
        self.entries
    }

    /// The entries in key order.
    pub(crate) fn into_sorted(self) -> Vec<(K, V)>
    where
        K: Ord,
    {
        let mut entries = self.entries;
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        entries
    }
}

/// Operations being paired, per partition, each in a slot reserved at its invocation so that
/// partitions keep invocation order. `K` is the partition's key.
pub(crate) struct Slots<K> {
    slots: ByKey<K, Vec<Option<Operation>>>,
}

impl<K: std::hash::Hash + Eq + Clone> Slots<K> {
    pub(crate) fn new() -> Self {
        Slots {
            slots: ByKey::new(),
        }
    }

    /// Reserves a slot in `key`'s partition: (partition, slot).
    pub(crate) fn open(&mut self, key: &K) -> (usize, usize) {
        let (part, slots) = self.slots.entry(key);
        slots.push(None);
        (part, slots.len() - 1)
    }

    /// Fills a reserved slot; `None` drops the operation.
    pub(crate) fn fill(&mut self, (part, slot): (usize, usize), op: Option<Operation>) {
        self.slots.at(part)[slot] = op;
    }

    /// The partitions in order of first appearance, empty ones dropped.
    pub(crate) fn finish(self) -> Vec<(K, Vec<Operation>)> {
        self.slots
            .into_entries()
            .into_iter()
            .map(|(k, ops)| (k, ops.into_iter().flatten().collect::<Vec<_>>()))
            .filter(|(_, ops)| !ops.is_empty())
            .collect()
    }
}

/// Keys joined into one partition by transactions that span them (union-find, ordered maps
/// only, so that nothing depends on hash order).
#[derive(Debug)]
pub(crate) struct Joins<K> {
    parent: BTreeMap<K, K>,
}

impl<K: Ord + Clone> Joins<K> {
    pub(crate) fn new() -> Self {
        Joins {
            parent: BTreeMap::new(),
        }
    }

    fn find(&self, key: &K) -> K {
        let mut k = key.clone();
        while let Some(p) = self.parent.get(&k).filter(|p| **p != k) {
            k = p.clone();
        }
        k
    }

    /// Joins `keys` (one transaction's) into one partition.
    pub(crate) fn join(&mut self, keys: &[K]) {
        let roots: Vec<K> = keys.iter().map(|k| self.find(k)).collect();
        let Some(least) = roots.iter().min().cloned() else {
            return;
        };
        for root in roots {
            self.parent.insert(root, least.clone());
        }
    }

    /// Every joined key's partition (its least key) and slot, and each partition's width.
    pub(crate) fn layout(&self) -> Layout<K> {
        let mut members: BTreeMap<K, Vec<K>> = BTreeMap::new();
        for key in self.parent.keys() {
            members.entry(self.find(key)).or_default().push(key.clone());
        }
        let mut layout = Layout {
            slots: BTreeMap::new(),
            widths: BTreeMap::new(),
        };
        for (root, keys) in members {
            layout.widths.insert(root.clone(), keys.len());
            for (slot, key) in keys.into_iter().enumerate() {
                layout.slots.insert(key, (root.clone(), slot as u32));
            }
        }
        layout
    }
}

/// Where transactions put each key they join: its partition (named by its least key) and its
/// slot in the partition's tuple.
#[derive(Debug)]
pub(crate) struct Layout<K> {
    pub(crate) slots: BTreeMap<K, (K, u32)>,
    pub(crate) widths: BTreeMap<K, usize>,
}

impl<K: Ord + Clone> Layout<K> {
    /// The partition an operation on `key` goes to.
    pub(crate) fn partition_of(&self, key: &K) -> K {
        self.slots
            .get(key)
            .map_or_else(|| key.clone(), |(p, _)| p.clone())
    }

    /// The partitions of `parts` (each key's operations, as [`Slots::finish`] gives them), in
    /// the same order; joined keys' partitions are named by their keys joined with `+`.
    pub(crate) fn partitions(&self, parts: Vec<(K, Vec<Operation>)>) -> Vec<Partition>
    where
        K: std::fmt::Display,
    {
        let partition = |(key, ops): (K, Vec<Operation>)| {
            let joined = self.widths.get(&key).copied();
            let name = match joined {
                Some(_) => {
                    let keys = self.slots.iter().filter(|(_, (p, _))| *p == key);
                    let names: Vec<String> = keys.map(|(k, _)| k.to_string()).collect();
                    names.join("+")
                }
                None => key.to_string(),
            };
            Partition {
                key: name,
                ops,
                joined,
            }
        };
        parts.into_iter().map(partition).collect()
    }

    /// Whether `key` is joined (its operations are compiled to [`Kind::Multi`]).
    pub(crate) fn is_joined(&self, key: &K) -> bool {
        self.slots.contains_key(key)
    }
}

/// Pairs a simkv history's events and compiles them for the strict kv model.
///
/// A txn is checked as one operation on every key it touches, so the keys of each txn are
/// joined into one partition (with every other txn sharing a key) whose state is the tuple of
/// their values: linearizability of that partition is strict serializability of its txns.
/// Keys no txn touches keep a partition each.
///
/// Errors name the JSON line of the offending record (records are one per line, after the
/// opening bracket): a completion without an invocation, a second invocation while one is in
/// flight on the same client, or a completion of another operation than was invoked.
pub fn prepare_simkv(history: &History) -> Result<Prepared, HistoryError> {
    // Room for a value per operation: most write one, and reads name values written.
    let mut values = Interner::with_capacity(history.events.len() / 2);
    let mut joins = Joins::new();
    for e in history.events.iter().filter(|e| e.outcome.is_none()) {
        if let Op::Txn { .. } = *e.op {
            joins.join(&e.op.keys());
        }
    }
    let layout = joins.layout();
    let mut slots: Slots<Key> = Slots::new();
    let mut open: FxHashMap<ClientId, Open> = FxHashMap::default();
    for (i, e) in history.events.iter().enumerate() {
        let Some(outcome) = &e.outcome else {
            if open.contains_key(&e.client) {
                let msg = format!("{} invoked {} while another was in flight", e.client, e.op);
                return Err(event_error(i, msg));
            }
            let first_key = match &*e.op {
                Op::Txn { .. } => e.op.keys().first().copied(),
                single => Some(single.key()),
            };
            let at = first_key.map(|k| slots.open(&layout.partition_of(&k)));
            open.insert(e.client, (at, i));
            continue;
        };
        let Some((at, call)) = open.remove(&e.client) else {
            let msg = format!("{} completed {} without invoking it", e.client, e.op);
            return Err(event_error(i, msg));
        };
        let invoked = &history.events[call].op;
        // simkv's engine shares one operation between invocation and completion: equal
        // without comparing them field by field.
        if !Arc::ptr_eq(invoked, &e.op) && *invoked != e.op {
            let msg = format!("{} completed {} but had invoked {invoked}", e.client, e.op);
            return Err(event_error(i, msg));
        }
        let (result, ret) = match outcome {
            Outcome::Ok(r) => (Some(r), i as u64),
            Outcome::Fail(_) => continue,
            Outcome::Info => (None, PENDING),
        };
        let kind = compile_simkv(&e.op, result, &layout, &mut values);
        let op = |kind| simkv_operation(call, ret, e.client, kind);
        if let Some(at) = at {
            slots.fill(at, kind.map(op));
        }
    }
    let unfinished = open
        .into_iter()
        .map(|(client, open)| (client, open, &*history.events[open.1].op));
    fill_unfinished(unfinished, &layout, &mut slots, &mut values);
    Ok(finish_simkv(slots, &layout, values))
}

/// [`prepare_simkv`] of the JSON history `input`, read record by record and paired as it is
/// read (see [`History::stream_json`]): the whole text and the whole event list never exist,
/// only the operations in flight and the prepared result. The result is the same as
/// [`prepare_simkv`]'s of [`History::from_json`]'s (same operations, same interning order).
///
/// `None` when the stream is not simply that: a layout other than one record per line, any
/// malformed record or pairing error, or a txn (whose joined keys must be known before
/// pairing). The caller then takes the whole-file path, which handles every case and names
/// the error's line and column.
pub fn prepare_simkv_stream(input: impl std::io::BufRead) -> Option<Prepared> {
    let mut values = Interner::default();
    let layout: Layout<Key> = Joins::new().layout();
    let mut slots: Slots<Key> = Slots::new();
    // Per client in flight: its slot, its invocation's position and operation.
    let mut open: FxHashMap<ClientId, (Open, Arc<Op>)> = FxHashMap::default();
    let mut i = 0usize;
    History::stream_json(input, |e| {
        let at = i;
        i += 1;
        if let Op::Txn { .. } = *e.op {
            return None;
        }
        let Some(outcome) = &e.outcome else {
            if open.contains_key(&e.client) {
                return None;
            }
            let slot = slots.open(&layout.partition_of(&e.op.key()));
            open.insert(e.client, ((Some(slot), at), e.op));
            return Some(());
        };
        let ((slot, call), invoked) = open.remove(&e.client)?;
        if invoked != e.op {
            return None;
        }
        let (result, ret) = match outcome {
            Outcome::Ok(r) => (Some(r), at as u64),
            Outcome::Fail(_) => return Some(()),
            Outcome::Info => (None, PENDING),
        };
        let kind = compile_simkv(&e.op, result, &layout, &mut values);
        let op = |kind| simkv_operation(call, ret, e.client, kind);
        if let Some(slot) = slot {
            slots.fill(slot, kind.map(op));
        }
        Some(())
    })?;
    let unfinished = open
        .iter()
        .map(|(client, (open, op))| (*client, *open, &**op));
    fill_unfinished(unfinished, &layout, &mut slots, &mut values);
    Some(finish_simkv(slots, &layout, values))
}

/// A simkv JSON history file, prepared: streamed ([`prepare_simkv_stream`]) when it can be,
/// else read whole ([`History::from_json`], [`prepare_simkv`]), whose errors name the line
/// and column. An unreadable file is an error at 1:1.
pub fn read_simkv_file(path: &std::path::Path) -> Result<Prepared, HistoryError> {
    let unreadable = |e: std::io::Error| HistoryError {
        line: 1,
        column: 1,
        message: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let reader = std::io::BufReader::with_capacity(1 << 16, file);
    if let Some(prepared) = prepare_simkv_stream(reader) {
        return Ok(prepared);
    }
    let text = std::fs::read_to_string(path).map_err(unreadable)?;
    let history = History::from_json(&text)?;
    drop(text);
    prepare_simkv(&history)
}

/// A simkv client's operation in flight: its reserved slot (none for an empty txn) and its
/// invocation's event.
type Open = (Option<(usize, usize)>, usize);

/// The error for event `event`, named by its JSON line (records are one per line, after the
/// opening bracket).
fn event_error(event: usize, message: String) -> HistoryError {
    HistoryError {
        line: event + 2,
        column: 1,
        message: crate::shown::shown(&message),
    }
}

/// The operation of `client` invoked at event `call`, returned at `ret`.
fn simkv_operation(call: usize, ret: u64, client: ClientId, kind: Kind) -> Operation {
    Operation {
        call: call as u64,
        ret,
        process: u64::from(client.0),
        kind,
    }
}

/// Fills the slots of invocations never completed: pending, as if they had completed `info`;
/// taken in history order so that values are interned in the same order every time.
fn fill_unfinished<'o>(
    unfinished: impl IntoIterator<Item = (ClientId, Open, &'o Op)>,
    layout: &Layout<Key>,
    slots: &mut Slots<Key>,
    values: &mut Interner,
) {
    let mut unfinished: Vec<_> = unfinished.into_iter().collect();
    unfinished.sort_unstable_by_key(|&(_, (_, call), _)| call);
    for (client, (at, call), op) in unfinished {
        let kind = compile_simkv(op, None, layout, values);
        if let Some(at) = at {
            slots.fill(
                at,
                kind.map(|kind| simkv_operation(call, PENDING, client, kind)),
            );
        }
    }
}

/// The prepared history of simkv's strict kv model, from its filled slots.
fn finish_simkv(slots: Slots<Key>, layout: &Layout<Key>, values: Interner) -> Prepared {
    let mut parts = slots.finish();
    parts.sort_unstable_by_key(|(key, _)| *key);
    Prepared {
        model: "kv-strict".to_string(),
        partitions: layout.partitions(parts),
        values,
        init: ABSENT,
        naming: Naming::Simkv,
        lines: Vec::new(),
    }
}

/// Compiles a simkv operation and its result (`None`: unknown outcome): a single key's
/// operation directly, or, on joined keys, every part on its key's slot.
fn compile_simkv(
    op: &Op,
    result: Option<&OpResult>,
    layout: &Layout<Key>,
    values: &mut Interner,
) -> Option<Kind> {
    if !matches!(op, Op::Txn { .. }) && !layout.is_joined(&op.key()) {
        return model::kind_of_simkv(op, result, values);
    }
    let results = match result.map(|r| r.parts(op)) {
        Some(None) => return Some(Kind::Never),
        Some(Some(results)) => Some(results),
        None => None,
    };
    let mut compound = Compound {
        parts: Vec::new(),
        keys: Vec::new(),
        txn: matches!(op, Op::Txn { .. }),
    };
    for (i, part) in op.parts().iter().enumerate() {
        let kind = match &results {
            Some(results) => model::kind_of_simkv(part, Some(&results[i]), values),
            None => model::pending_kind_of_simkv(part, values),
        };
        let Some(kind) = kind else {
            continue;
        };
        let Some(&(_, slot)) = layout.slots.get(&part.key()) else {
            return Some(Kind::Never);
        };
        compound.parts.push(Part { slot, kind });
        compound.keys.push(part.key().to_string());
    }
    if compound.parts.is_empty() {
        return None;
    }
    Some(compound.register(values))
}

/// The first slice of search steps each undecided key gets (see [`check_prepared`]); each
/// round doubles it.
pub const FIRST_SLICE: u64 = 1 << 16;

/// One key's progress through the rounds of [`check_prepared`].
struct KeyState {
    /// Its answer so far: `None` while undecided.
    found: Option<Found>,
    stats: KeyStats,
    /// Whether the zones test (or its condition (1) alone, [`zones::unwritten_read`]) found a
    /// violation: the search only confirms it.
    zones_failed: bool,
    /// Bytes of values its searches made, over all rounds.
    value_bytes: usize,
    /// Steps of its search so far (what shrinking's allowance is scaled by).
    last_steps: u64,
    /// Its search, kept between rounds while only its slice ran out.
    search: Option<linearizable::Resumable>,
}

/// Decides a prepared history, key by key (zones, else the search), fairly: every key first
/// gets the zones test, then the undecided ones are searched in rounds, each key in turn
/// getting a slice of [`FIRST_SLICE`] steps, doubled every round, of a search that goes on
/// from where its last slice stopped ([`linearizable::Resumable`]). So a key that needs `S`
/// steps costs `S` steps, and is decided after at most about `2 S` steps per other undecided
/// key, however hard those are: an intractable key cannot starve a violated one. The first violated key found ends the check unless
/// `budget.all_keys`; keys left undecided are `unknown` in [`CheckOutcome::keys`]. Each key
/// has its own allowance of values made (`budget.max_value_bytes`) and memo
/// (`budget.max_memo_entries`); a key that exhausts its allowance is unknown and the others go
/// on. Steps and the deadline are shared. The violated key is then shrunk (see
/// [`counterexample::build`]) under `budget.shrink`.
pub fn check_prepared(mut prepared: Prepared, budget: &Budget) -> CheckOutcome {
    let start = Instant::now();
    let mut meter = Meter::new(budget).without_value_limit();
    // Counts as the history has them, before pruning what cannot matter.
    let counts: Vec<usize> = prepared.partitions.iter().map(|p| p.ops.len()).collect();
    for part in prepared.partitions.iter_mut() {
        prune::drop_unseen_pending(&mut part.ops, &prepared.values);
    }
    let mut states: Vec<KeyState> = prepared
        .partitions
        .iter()
        .enumerate()
        .map(|(i, part)| {
            let init = part.initial_state(prepared.init, &mut prepared.values);
            let zones = zones::check(&part.ops, init);
            KeyState {
                found: (zones == Some(true)).then_some(Found::Linearizable),
                stats: KeyStats {
                    key: part.key.clone(),
                    ops: counts[i],
                    method: Method::Zones,
                    verdict: "unknown",
                    steps: 0,
                    memo_entries: 0,
                },
                // A key zones decided is never searched: condition (1) alone is needed only
                // where zones does not apply.
                zones_failed: match zones {
                    Some(linearizable) => !linearizable,
                    None => zones::unwritten_read(&part.ops, init).is_some(),
                },
                value_bytes: 0,
                last_steps: 0,
                search: None,
            }
        })
        .collect();
    let (failing, global) = search_rounds(&mut prepared, &mut states, &mut meter, budget);
    let mut unknown: Option<String> = None;
    let mut keys = Vec::with_capacity(states.len());
    let failing_steps = failing.map_or(0, |i| states[i].last_steps);
    for state in states {
        let mut stats = state.stats;
        stats.verdict = match &state.found {
            Some(Found::Linearizable) => "linearizable",
            Some(Found::Violation) => "not-linearizable",
            Some(Found::GaveUp(why)) => {
                unknown.get_or_insert_with(|| format!("key {}: {why}", stats.key));
                "unknown"
            }
            None => {
                if let Some(why) = &global {
                    unknown.get_or_insert_with(|| format!("key {}: {why}", stats.key));
                }
                "unknown"
            }
        };
        keys.push(stats);
    }
    let check_time = start.elapsed();
    let verdict = match (failing, unknown) {
        (Some(i), _) => {
            let shrink = counterexample::ShrinkLimits::new(budget, check_time, failing_steps);
            let mut cx = counterexample::build(&mut prepared, i, &meter, &shrink);
            cx.shrunk_from = counts[i];
            Verdict::NotLinearizable(Box::new(cx))
        }
        (None, Some(why)) => Verdict::Unknown(why),
        (None, None) => Verdict::Linearizable,
    };
    CheckOutcome {
        verdict,
        model: prepared.model.clone(),
        ops: counts.iter().sum(),
        keys,
        check_time,
        shrink_time: start.elapsed() - check_time,
    }
}

/// The rounds of [`check_prepared`]: the first violated key's index (the lowest, when several
/// are found in one round), and why the shared budget ran out, if it did.
fn search_rounds(
    prepared: &mut Prepared,
    states: &mut [KeyState],
    meter: &mut Meter,
    budget: &Budget,
) -> (Option<usize>, Option<String>) {
    let mut slice = FIRST_SLICE;
    let mut failing: Option<usize> = None;
    loop {
        let mut undecided = 0;
        for (i, state) in states.iter_mut().enumerate() {
            if state.found.is_some() {
                continue;
            }
            if !budget.all_keys && failing.is_some_and(|f| i > f) {
                // Only `lowest_key` gets here: keys after the violated one are not needed.
                break;
            }
            if let Some(why) = meter.exhausted(&prepared.values) {
                return (failing, Some(why));
            }
            let part = &prepared.partitions[i];
            let allowance = budget.max_value_bytes.saturating_sub(state.value_bytes);
            let mut key_meter = meter.slice(slice, prepared.values.bytes(), allowance);
            let before = prepared.values.bytes();
            let search = match &mut state.search {
                Some(search) => search,
                None => {
                    let init = part.initial_state(prepared.init, &mut prepared.values);
                    let fresh =
                        linearizable::Resumable::new(&part.ops, init, &prepared.values, meter);
                    state.search.insert(fresh)
                }
            };
            let (found, s) = search.resume(&part.ops, &mut prepared.values, &mut key_meter, None);
            meter.steps = key_meter.steps;
            state.value_bytes += prepared.values.bytes().saturating_sub(before);
            state.stats.method = Method::Search;
            state.stats.steps = s.steps;
            state.last_steps = s.steps;
            state.stats.memo_entries = state.stats.memo_entries.max(s.memo_entries);
            if !key_meter.slice_spent() || !matches!(found, Found::GaveUp(_)) {
                // Decided, or given up for good: its search is no longer needed.
                state.search = None;
            }
            match found {
                Found::GaveUp(why) => {
                    if state.zones_failed {
                        // The zones theorem already decided it; the search only confirms.
                        state.found = Some(Found::Violation);
                    } else if key_meter.slice_spent() {
                        // Only its slice ran out: another round.
                        undecided += 1;
                    } else if meter.exhausted(&prepared.values).is_some() {
                        // The shared budget ran out: every undecided key is unknown for that.
                        undecided += 1;
                    } else {
                        state.found = Some(Found::GaveUp(why));
                    }
                }
                found => state.found = Some(found),
            }
            if state.found == Some(Found::Violation) {
                if budget.lowest_key && !budget.all_keys {
                    failing = Some(failing.map_or(i, |f| f.min(i)));
                    continue;
                }
                failing.get_or_insert(i);
                if !budget.all_keys {
                    return (failing, None);
                }
            }
        }
        if undecided == 0 {
            return (failing, None);
        }
        slice = slice.saturating_mul(2);
    }
}
