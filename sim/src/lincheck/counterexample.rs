//! Minimal counterexamples: the failing key's history, shrunk while it still fails.
//!
//! Shrinking must not invent a violation: a subset of a linearizable history can fail (drop
//! the write a read observed and the read has no explanation). So only *sound* removals are
//! tried, ones where "the rest cannot be linearized" still implies "the whole could not be":
//!
//! - cutting the history at a point (a prefix: operations in flight at the cut become pending),
//!   since linearizability is prefix-closed;
//! - removing operations that change nothing by their recorded result (reads, refused cas,
//!   not-found updates and deletes): any linearization of the whole, minus them, still works;
//! - removing writes none of the remaining operations can tell apart from their absence: no
//!   remaining operation mentions a value they wrote, and none depends on mere presence
//!   (found updates and deletes, appends). Then in a linearization of the whole, an operation
//!   that followed a removed write is one that ignores the prior value, so dropping the writes
//!   leaves a linearization of the rest.
//!
//! Within those moves the result is 1-minimal (ddmin): removing any one more operation either
//! is not sound or makes the rest linearizable.

use super::linearizable::{search, Deepest, Found, Meter};
use super::model::{describe, parts, pending_form, sees, step, Interner, Kind, Sees, Val, ABSENT};
use super::{Budget, Naming, Operation, Prepared, Shrink, PENDING};
use serde::Serialize;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// A set of operations on one key that cannot be linearized.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Counterexample {
    /// The key (empty for a single register).
    pub key: String,
    /// The operations, in call order.
    pub ops: Vec<CounterOp>,
    /// The longest linearization the search reached: indices into `ops`, in order.
    pub linearized: Vec<usize>,
    /// The operation that could not be linearized after those (its return came first).
    pub blocked: Option<usize>,
    /// Whether shrinking finished (false: the budget ran out; still a valid counterexample).
    pub minimal: bool,
    /// How many operations the key had before shrinking.
    pub shrunk_from: usize,
    /// Whether shrinking was tried (false with `--no-shrink`). Not in the JSON form.
    #[serde(skip)]
    pub shrunk: bool,
    /// What call and return positions count: `event` (simkv) or `line` (EDN).
    pub position: &'static str,
    /// The key's state after the linearized operations, which the blocked one does not fit
    /// (what a read there should have seen), when the model could replay them. Not in the
    /// JSON form, which stays as it was.
    #[serde(skip)]
    pub state_before_blocked: Option<String>,
}

/// One operation of a counterexample.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CounterOp {
    /// The process (client) that issued it.
    pub process: String,
    /// Where it was invoked (event index or line).
    pub call: u64,
    /// Where it completed; `None` when it never did (info).
    pub ret: Option<u64>,
    /// What it did and what it saw: `write 3`, `read 1`, `cas 1->2`.
    pub op: String,
    /// `ok`, or `info` when its outcome is unknown.
    pub outcome: &'static str,
}

/// How much shrinking may cost: steps, and wall time when a user's check allows it.
#[derive(Clone, Copy, Debug)]
pub struct ShrinkLimits {
    /// Whether to shrink at all.
    pub enabled: bool,
    /// Steps over all of shrinking's searches.
    pub steps: u64,
    /// Wall-clock time, when allowed.
    pub time: Option<Duration>,
    /// Bytes of values its searches may make.
    pub value_bytes: usize,
}

impl ShrinkLimits {
    /// The limits `budget.shrink` sets, for a key whose failing search took `steps` and a
    /// decision that took `decided_in`.
    pub fn new(budget: &Budget, decided_in: Duration, steps: u64) -> ShrinkLimits {
        let steps = steps.saturating_mul(10).max(4_000_000);
        let default_time = || {
            budget
                .deadline
                .map(|_| (decided_in * super::SHRINK_TIME_FACTOR).max(super::SHRINK_TIME_FLOOR))
        };
        match budget.shrink {
            Shrink::Off => ShrinkLimits {
                enabled: false,
                steps: 0,
                time: None,
                value_bytes: 0,
            },
            Shrink::Default => ShrinkLimits {
                enabled: true,
                steps,
                time: default_time(),
                value_bytes: budget.max_value_bytes,
            },
            Shrink::Timeout(t) => ShrinkLimits {
                enabled: true,
                steps,
                time: Some(t),
                value_bytes: budget.max_value_bytes,
            },
        }
    }
}

/// Counterexamples up to this many operations get the longest linearization traced (a copy
/// of the stack per new depth: quadratic in the key).
const MAX_TRACED_OPS: usize = 5_000;

/// Shrinks partition `index` of a history known to fail and describes what is left.
///
/// Shrinking draws on its own allowance (`limits`: steps, and wall time for a user's check;
/// the check's own deadline does not apply, so a decision that used most of it still gets
/// shrunk); when that runs out the counterexample is the smallest failing set reached so far,
/// marked not minimal. With shrinking off it is the key's whole history.
pub fn build(
    prepared: &mut Prepared,
    index: usize,
    meter: &Meter,
    limits: &ShrinkLimits,
) -> Counterexample {
    let part = &prepared.partitions[index];
    let deadline = limits.time.map(|t| Instant::now() + t);
    let mut shrink_meter = meter
        .extended(limits.steps)
        .with_deadline(deadline)
        .with_value_allowance(prepared.values.bytes(), limits.value_bytes);
    let init = part.initial_state(prepared.init, &mut prepared.values);
    let values = &mut prepared.values;
    let (ops, minimal) = if limits.enabled {
        shrink_ops(part.ops.clone(), init, values, &mut shrink_meter)
    } else {
        (part.ops.clone(), false)
    };
    let mut deepest = Deepest::default();
    if ops.len() <= MAX_TRACED_OPS {
        let mut trace_meter = meter
            .extended(1_000_000)
            .with_deadline(deadline)
            .with_value_allowance(prepared.values.bytes(), limits.value_bytes);
        let (found, _) = search(
            &ops,
            init,
            &mut prepared.values,
            &mut trace_meter,
            Some(&mut deepest),
        );
        debug_assert!(found != Found::Linearizable, "shrinking kept a failing set");
    }
    let naming = prepared.naming;
    let lines = &prepared.lines;
    let at = |pos: u64| match naming {
        Naming::Simkv => pos,
        Naming::Jepsen => lines.get(pos as usize).map_or(pos, |&l| u64::from(l)),
    };
    let shown = ops
        .iter()
        .map(|o| CounterOp {
            process: match naming {
                Naming::Simkv => format!("c{}", o.process + 1),
                Naming::Jepsen => o.process.to_string(),
            },
            call: at(o.call),
            ret: (o.ret != PENDING).then(|| at(o.ret)),
            op: describe(&o.kind, &prepared.values),
            outcome: if o.ret == PENDING { "info" } else { "ok" },
        })
        .collect();
    let mut state = Some(init);
    for &i in &deepest.order {
        state = state.and_then(|st| {
            let o = &ops[i as usize];
            step(&o.kind, st, &mut prepared.values)
                .or_else(|| step(&pending_form(&o.kind), st, &mut prepared.values))
        });
    }
    let state_before_blocked = state.map(|st| prepared.values.show(st));
    Counterexample {
        state_before_blocked,
        key: part.key.clone(),
        ops: shown,
        linearized: deepest.order.iter().map(|&i| i as usize).collect(),
        blocked: deepest.blocked.map(|i| i as usize),
        minimal,
        shrunk: limits.enabled,
        shrunk_from: part.ops.len(),
        position: match naming {
            Naming::Simkv => "event",
            Naming::Jepsen => "line",
        },
    }
}

/// Shrinks failing `ops` (from `init`) within `meter`: the smallest failing set found, and
/// whether shrinking finished (it is then 1-minimal).
pub(crate) fn shrink_ops(
    ops: Vec<Operation>,
    init: Val,
    values: &mut Interner,
    meter: &mut Meter,
) -> (Vec<Operation>, bool) {
    let mut shrinker = Shrinker {
        init,
        values,
        meter,
        complete: true,
    };
    let ops = shrinker.shrink(ops);
    (ops, shrinker.complete)
}

struct Shrinker<'a> {
    init: Val,
    values: &'a mut Interner,
    meter: &'a mut Meter,
    /// False once a search gave up: what is left is still failing, maybe not minimal.
    complete: bool,
}

impl Shrinker<'_> {
    fn fails(&mut self, ops: &[Operation]) -> bool {
        // The search looks at the budget only every few thousand steps, which a small
        // history never reaches: look before each one too, so the budget bounds shrinking.
        if !self.complete || self.meter.exhausted(self.values).is_some() {
            self.complete = false;
            return false;
        }
        // Reads and writes of unique values: the zones test decides in O(n log n) what the
        // search may take exponential time over (60 concurrent writes and a read of a value
        // nobody wrote stayed at 61 operations when the budget ran out; 1 would do).
        if let Some(linearizable) = super::zones::check(ops, self.init) {
            return !linearizable;
        }
        if super::zones::unwritten_read(ops, self.init).is_some() {
            return true;
        }
        match search(ops, self.init, self.values, self.meter, None).0 {
            Found::Violation => true,
            Found::Linearizable => false,
            Found::GaveUp(_) => {
                self.complete = false;
                false
            }
        }
    }

    fn shrink(&mut self, ops: Vec<Operation>) -> Vec<Operation> {
        let ops = self.cut_prefix(ops);
        self.ddmin(ops)
    }

    /// The shortest failing prefix, by binary search over completion positions: failing is
    /// monotone in the cut (a prefix of a linearizable history is linearizable).
    fn cut_prefix(&mut self, ops: Vec<Operation>) -> Vec<Operation> {
        let mut cuts: Vec<u64> = ops
            .iter()
            .filter(|o| o.ret != PENDING)
            .map(|o| o.ret + 1)
            .collect();
        cuts.sort_unstable();
        let (mut lo, mut hi) = (0usize, cuts.len());
        // Invariant: prefix(cuts[hi]) fails, with cuts[len] standing for the whole history.
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.fails(&prefix(&ops, cuts[mid])) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
            if !self.complete {
                break;
            }
        }
        // `hi` only moves on a failing prefix, so prefix(cuts[hi]) fails even when the budget
        // ran out: the smallest failing prefix found so far.
        match cuts.get(hi) {
            Some(&cut) => prefix(&ops, cut),
            None => ops,
        }
    }

    /// Delta debugging over sound removals, chunks halving down to single operations.
    fn ddmin(&mut self, mut ops: Vec<Operation>) -> Vec<Operation> {
        let mut chunk = (ops.len() / 2).max(1);
        loop {
            let mut removed_any = false;
            let mut start = 0;
            while start < ops.len() && self.complete {
                let end = (start + chunk).min(ops.len());
                let kept: Vec<Operation> =
                    ops[..start].iter().chain(&ops[end..]).copied().collect();
                if removable(&ops[start..end], &kept, self.values) && self.fails(&kept) {
                    ops = kept;
                    removed_any = true;
                } else {
                    start = end;
                }
            }
            if !self.complete || (chunk == 1 && !removed_any) {
                return ops;
            }
            if !removed_any {
                chunk = (chunk / 2).max(1);
            }
        }
    }
}

/// The history up to position `cut`: later calls dropped, operations in flight made pending.
fn prefix(ops: &[Operation], cut: u64) -> Vec<Operation> {
    ops.iter()
        .filter(|o| o.call < cut)
        .map(|o| {
            if o.ret != PENDING && o.ret >= cut {
                Operation {
                    ret: PENDING,
                    kind: pending_form(&o.kind),
                    ..*o
                }
            } else {
                *o
            }
        })
        .collect()
}

/// Whether removing `removed` from a failing history keeps "the rest fails" meaning "the
/// whole fails" (see the module's notes). On keys joined by transactions the same reasoning
/// runs slot by slot over the operations' parts: a removed txn's writes must be invisible to
/// every remaining part on the same key.
fn removable(removed: &[Operation], kept: &[Operation], values: &Interner) -> bool {
    let mut written: Vec<(u32, Val)> = Vec::new();
    for o in removed.iter().filter(|o| !o.kind.is_read_only()) {
        for (slot, kind) in parts(&o.kind, values) {
            if kind.is_read_only() {
                continue;
            }
            match kind {
                Kind::Write(v) | Kind::Update { value: v, .. } => written.push((slot, v)),
                Kind::Cas { new, .. } => written.push((slot, new)),
                Kind::Delete { .. } => written.push((slot, ABSENT)),
                // What an append leaves depends on what was there: no removal is safe to
                // reason about, so appends stay.
                _ => return false,
            }
        }
    }
    if written.is_empty() {
        return true;
    }
    written.sort_unstable();
    let mentions = |slot: u32, v: Val| written.binary_search(&(slot, v)).is_ok();
    let touched = |slot: u32| {
        let at = written.partition_point(|(s, _)| *s < slot);
        written.get(at).is_some_and(|(s, _)| *s == slot)
    };
    kept.iter()
        .flat_map(|o| parts(&o.kind, values))
        .all(|(slot, kind)| !touched(slot) || invisible(kind, |v| mentions(slot, v)))
}

/// Whether a remaining operation cannot tell removed writes (of the values `mentions` names)
/// from their absence.
fn invisible(kind: Kind, mentions: impl Fn(Val) -> bool) -> bool {
    match sees(&kind) {
        Sees::Nothing => true,
        Sees::Value(v) => !mentions(v),
        Sees::Everything => false,
    }
}

/// The widest timeline [`Counterexample::render`] draws.
const MAX_TIMELINE_COLUMNS: usize = 72;

impl Counterexample {
    /// A short text timeline: one line per operation, then bars from call to return.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let key = if self.key.is_empty() {
            String::new()
        } else {
            format!("key {}: ", self.key)
        };
        let size = if self.minimal {
            "minimal"
        } else if !self.shrunk {
            "not shrunk"
        } else {
            "shrinking stopped by the budget"
        };
        let what = match self.ops.len() {
            1 => "this operation cannot be linearized".to_string(),
            n => format!("these {n} operations cannot be linearized together"),
        };
        let _ = writeln!(out, "{key}{what} ({size}; {} on the key)", self.shrunk_from);
        let width = self.ops.iter().map(|o| o.process.len()).max().unwrap_or(1);
        let cols = columns(self);
        let lanes = cols.iter().max().copied().unwrap_or(0) + 2;
        // Past a screen's width the bars say nothing a reader can see: positions only.
        let draw = lanes <= MAX_TIMELINE_COLUMNS;
        for (i, o) in self.ops.iter().enumerate() {
            let ret = o.ret.map_or("?".to_string(), |r| r.to_string());
            let (c, r) = (cols[2 * i], cols[2 * i + 1]);
            let mut bar: String = if draw {
                (0..lanes)
                    .map(|x| if x > c && x < r { '-' } else { ' ' })
                    .collect()
            } else {
                String::new()
            };
            if draw {
                bar.replace_range(c..c + 1, "|");
            }
            if draw && o.ret.is_some() {
                bar.replace_range(r..r + 1, "|");
            }
            let _ = writeln!(
                out,
                "  {:>width$} {bar} {} {}..{} {} {}{}",
                o.process,
                self.position,
                o.call,
                ret,
                o.outcome,
                o.op,
                self.note(i)
            );
        }
        out
    }

    fn note(&self, i: usize) -> String {
        if let Some(n) = self.linearized.iter().position(|&x| x == i) {
            format!("  [linearized #{}]", n + 1)
        } else if self.blocked == Some(i) {
            "  [cannot be linearized after those]".to_string()
        } else {
            String::new()
        }
    }
}

/// Text columns for each operation's call and return (`2i`, `2i + 1`): the positions ranked,
/// two columns apart, so that bars keep their order without taking the history's width.
pub(crate) fn columns(cx: &Counterexample) -> Vec<usize> {
    let mut points: Vec<u64> = cx
        .ops
        .iter()
        .flat_map(|o| [o.call, o.ret.unwrap_or(u64::MAX)])
        .collect();
    points.sort_unstable();
    points.dedup();
    let rank = |p: u64| points.binary_search(&p).unwrap_or(0) * 2;
    cx.ops
        .iter()
        .flat_map(|o| [rank(o.call), rank(o.ret.unwrap_or(u64::MAX))])
        .collect()
}
