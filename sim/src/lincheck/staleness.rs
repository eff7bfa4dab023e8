//! Staleness of reads, measured rather than judged: for protocols that do not promise
//! linearizability (an AP store under partition), how far behind were the reads it served?
//!
//! A read is *stale* when it returned the value of a write `w` although another write `w'`
//! had definitely superseded it before the read began: `w'` was invoked after `w` completed,
//! and completed before the read was invoked. A linearizable store could not have returned
//! it. For each stale read we count such superseding writes ("writes behind") and measure
//! the time from the first of them completing to the read's invocation ("stale for").
//!
//! Values are unique per run in simkv's workloads, so a read names the write it saw. Reads
//! whose value no write wrote are counted apart (they are not staleness but invention); reads
//! that found nothing are judged only on keys never deleted (then every completed write
//! supersedes the initial absence). Writes with unknown outcome never supersede anything
//! (they may not have happened), and a read of one is never called stale.

use super::ByKey;
use crate::history::{History, Outcome};
use crate::lincheck::model::StrHashMap;
use serde::Serialize;
use simkv_protocols::{Key, Op, OpResult, Time, Value};
use std::fmt;

/// Percentiles of a distribution (nearest rank), zero when empty.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// The median.
    pub p50: f64,
    /// The 99th percentile.
    pub p99: f64,
    /// The largest.
    pub max: f64,
}

/// How stale a history's reads were.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StalenessReport {
    /// Completed reads judged.
    pub reads: u64,
    /// Of those, reads a linearizable store could not have returned.
    pub stale_reads: u64,
    /// Reads of a value no write wrote.
    pub unexplained_reads: u64,
    /// Per stale read: completed writes it was behind.
    pub writes_behind: Percentiles,
    /// Per stale read: milliseconds since the first superseding write completed.
    pub stale_ms: Percentiles,
}

/// One operation, paired: positions order events, times measure them.
#[derive(Clone, Copy)]
struct Span {
    call: usize,
    ret: usize,
    call_time: Time,
    ret_time: Time,
}

/// What a read saw, borrowed from the history: one value (`None`: not found), or the
/// values of a read answered with siblings.
#[derive(Clone, Copy)]
enum ReadSeen<'h> {
    One(Option<&'h str>),
    Siblings(&'h [Option<Value>]),
}

impl<'h> ReadSeen<'h> {
    /// Each value seen (`None`: nothing).
    fn values(self) -> impl Iterator<Item = Option<&'h str>> {
        let (one, many) = match self {
            ReadSeen::One(v) => (Some(v), &[][..]),
            ReadSeen::Siblings(vs) => (None, vs),
        };
        one.into_iter().chain(many.iter().map(|v| v.as_deref()))
    }
}

/// One key's operations, borrowing their values from the history (nothing is cloned: a
/// run's history holds hundreds of thousands of them).
#[derive(Default)]
struct KeyOps<'h> {
    /// Completed writes, in completion order.
    writes: Vec<Span>,
    /// Completed reads and what they saw.
    reads: Vec<(Span, ReadSeen<'h>)>,
    /// Who wrote each value, and whether that write completed (looked up only, never
    /// iterated).
    writer: StrHashMap<&'h str, Option<Span>>,
    deleted: bool,
    /// Whether an append on the key ended unknown: its resulting value is unknown, so a
    /// read of a value no completed write produced is not evidence of invention.
    unknown_appends: bool,
}

/// Measures the staleness of `history`'s reads (see the module's notes).
pub fn staleness(history: &History) -> StalenessReport {
    let keys = collect(history);
    let mut report = StalenessReport::default();
    let (mut behind, mut lag_ms) = (Vec::new(), Vec::new());
    for ops in &keys {
        for (read, seen) in &ops.reads {
            report.reads += 1;
            match judge_read(ops, read, *seen) {
                Seen::Unjudgeable | Seen::Fresh => {}
                Seen::Unexplained => report.unexplained_reads += 1,
                Seen::Stale(n, first) => {
                    report.stale_reads += 1;
                    behind.push(n as f64);
                    lag_ms.push(read.call_time.since(first).as_millis_f64());
                }
            }
        }
    }
    report.writes_behind = percentiles(behind);
    report.stale_ms = percentiles(lag_ms);
    report
}

/// PBS's two staleness measures of a history's reads, from one pass over it.
///
/// - k-staleness: per judged read, how many completed writes had definitely superseded what
///   it returned (0: fresh), in key order then completion order. Reads that cannot be judged
///   (a write of unknown outcome may have produced their value) or whose value nobody wrote
///   are left out.
/// - t-visibility: for each completed write `w` and each read of its key invoked `t` after
///   `w` completed (`t` below the last edge), whether the read returned `w`'s value or one
///   not definitely older (written by an operation that had not completed before `w` was
///   invoked). Counts per bucket `[edges_us[i], edges_us[i + 1])` of `t`, in microseconds:
///   (reads that saw `w` or newer, reads). Keys ever deleted, and reads that cannot be
///   judged, are left out.
pub fn pbs_measures(history: &History, edges_us: &[u64]) -> (Vec<usize>, Vec<(u64, u64)>) {
    let keys = collect(history);
    let mut behind = Vec::new();
    for ops in &keys {
        for (read, seen) in &ops.reads {
            match judge_read(ops, read, *seen) {
                Seen::Fresh => behind.push(0),
                Seen::Stale(n, _) => behind.push(n),
                Seen::Unjudgeable | Seen::Unexplained => {}
            }
        }
    }
    (behind, t_visibility(&keys, edges_us))
}

fn t_visibility(keys: &[KeyOps], edges_us: &[u64]) -> Vec<(u64, u64)> {
    let buckets = edges_us.len().saturating_sub(1);
    let mut counts = vec![(0u64, 0u64); buckets];
    let Some(&horizon) = edges_us.last() else {
        return counts;
    };
    for ops in keys.iter().filter(|ops| !ops.deleted) {
        for (read, seen) in &ops.reads {
            let Some(writers) = seen_writers(ops, *seen) else {
                continue;
            };
            let end = ops.writes.partition_point(|w| w.ret < read.call);
            for w in ops.writes[..end].iter().rev() {
                let t = read.call_time.since(w.ret_time).as_micros();
                if t >= horizon {
                    break;
                }
                let Some(b) = edges_us.windows(2).position(|e| t >= e[0] && t < e[1]) else {
                    continue;
                };
                // Seen `w` or newer: some value seen was not written before `w` began.
                let fresh = writers
                    .iter()
                    .any(|s| s.is_some_and(|s| s.call == w.call || s.ret > w.call));
                counts[b].1 += 1;
                counts[b].0 += u64::from(fresh);
            }
        }
    }
    counts
}

/// The writes whose values a read saw (`None`: it saw nothing, older than any write); `None`
/// when a value's writer is unknown (of unknown outcome, or nobody).
fn seen_writers(ops: &KeyOps, seen: ReadSeen) -> Option<Vec<Option<Span>>> {
    seen.values()
        .map(|v| match v {
            None => Some(None),
            Some(v) => match ops.writer.get(v) {
                Some(Some(w)) => Some(Some(*w)),
                _ => None,
            },
        })
        .collect()
}

/// What a read's value says.
enum Seen {
    /// Nothing can be said (a write of unknown outcome may have produced it).
    Unjudgeable,
    /// No write wrote it.
    Unexplained,
    /// Nothing had definitely superseded it.
    Fresh,
    /// This many completed writes had superseded it, the first completing then.
    Stale(usize, Time),
}

/// Judges a read by each value it saw; a read of siblings is as fresh as its freshest.
fn judge_read(ops: &KeyOps, read: &Span, seen: ReadSeen) -> Seen {
    if let ReadSeen::One(v) = seen {
        return judge_value(ops, read, v);
    }
    let verdicts: Vec<Seen> = seen.values().map(|v| judge_value(ops, read, v)).collect();
    if verdicts.iter().any(|v| matches!(v, Seen::Fresh)) {
        return Seen::Fresh;
    }
    if verdicts.iter().any(|v| matches!(v, Seen::Unjudgeable)) {
        return Seen::Unjudgeable;
    }
    let least_behind = verdicts.iter().filter_map(|v| match v {
        Seen::Stale(n, first) => Some((*n, *first)),
        _ => None,
    });
    match least_behind.min() {
        Some((n, first)) if verdicts.iter().all(|v| matches!(v, Seen::Stale(..))) => {
            Seen::Stale(n, first)
        }
        _ => Seen::Unexplained,
    }
}

fn judge_value(ops: &KeyOps, read: &Span, seen: Option<&str>) -> Seen {
    let since = match seen {
        Some(v) => match ops.writer.get(v) {
            // A value an append of unknown outcome may have produced: unjudgeable.
            None if ops.unknown_appends => return Seen::Unjudgeable,
            None => return Seen::Unexplained,
            // An unknown write: it may have landed any time.
            Some(None) => return Seen::Unjudgeable,
            Some(Some(w)) => Some(w.ret),
        },
        None if ops.deleted => return Seen::Unjudgeable,
        None => None,
    };
    match superseding(&ops.writes, since, read.call) {
        Some((n, first)) => Seen::Stale(n, first),
        None => Seen::Fresh,
    }
}

/// Completed writes invoked after position `since` (`None`: the beginning) and completed
/// before position `before`: how many, and when the first of them completed.
fn superseding(writes: &[Span], since: Option<usize>, before: usize) -> Option<(usize, Time)> {
    let end = writes.partition_point(|w| w.ret < before);
    let mut count = 0;
    let mut first = None;
    // Scan back from the latest; a write that completed before `since` cannot have been
    // invoked after it, and neither can any earlier one.
    for w in writes[..end].iter().rev() {
        let after = match since {
            Some(s) if w.ret <= s => break,
            Some(s) => w.call > s,
            None => true,
        };
        if after {
            count += 1;
            first = Some(w.ret_time);
        }
    }
    first.map(|t| (count, t))
}

fn percentiles(mut xs: Vec<f64>) -> Percentiles {
    if xs.is_empty() {
        return Percentiles::default();
    }
    xs.sort_by(f64::total_cmp);
    let rank = |q: f64| xs[((q * xs.len() as f64).ceil() as usize).clamp(1, xs.len()) - 1];
    Percentiles {
        p50: rank(0.5),
        p99: rank(0.99),
        max: xs[xs.len() - 1],
    }
}

/// Pairs invocations with completions, per key, in key order. Events a malformed history
/// cannot pair are skipped: this is a measurement, and [`crate::lincheck::prepare_simkv`]
/// reports them.
fn collect(history: &History) -> Vec<KeyOps<'_>> {
    let mut keys: ByKey<Key, KeyOps> = ByKey::new();
    // Per client (ids are small and dense), its operation in flight.
    let mut open: Vec<Option<usize>> = Vec::new();
    for (i, e) in history.events.iter().enumerate() {
        let client = e.client.0 as usize;
        if open.len() <= client {
            open.resize(client + 1, None);
        }
        let Some(outcome) = &e.outcome else {
            open[client] = Some(i);
            continue;
        };
        let Some(at) = open[client].take() else {
            continue;
        };
        let inv = &history.events[at];
        let span = Span {
            call: at,
            ret: i,
            call_time: inv.time,
            ret_time: e.time,
        };
        match outcome {
            // A txn's parts count as reads and writes of their keys, with the txn's span.
            Outcome::Ok(r) => {
                for (op, r) in answered_parts(&e.op, r) {
                    record_ok(keys.entry(&op.key()).1, op, r, span);
                }
            }
            Outcome::Info => record_unknown_parts(&mut keys, &e.op),
            Outcome::Fail(_) => {}
        }
    }
    for at in open.into_iter().flatten() {
        record_unknown_parts(&mut keys, &history.events[at].op);
    }
    let keys = keys.into_sorted().into_iter();
    keys.map(|(_, ops)| ops).collect()
}

/// The single-key operations of `op` with their results in `result`, borrowed: what
/// [`OpResult::parts`] pairs, without cloning (nothing when they do not fit).
fn answered_parts<'h>(
    op: &'h Op,
    result: &'h OpResult,
) -> impl Iterator<Item = (&'h Op, &'h OpResult)> {
    let (ops, results): (&[Op], &[OpResult]) = match (op, result) {
        (Op::Txn { ops }, OpResult::Txn { results }) if ops.len() == results.len() => {
            (ops, results)
        }
        (Op::Txn { .. }, _) | (_, OpResult::Txn { .. }) => (&[], &[]),
        (single, r) => (std::slice::from_ref(single), std::slice::from_ref(r)),
    };
    ops.iter().zip(results)
}

fn record_unknown_parts<'h>(keys: &mut ByKey<Key, KeyOps<'h>>, op: &'h Op) {
    for op in op.parts() {
        record_unknown(keys.entry(&op.key()).1, op);
    }
}

fn record_ok<'h>(ops: &mut KeyOps<'h>, op: &'h Op, result: &'h OpResult, span: Span) {
    match (op, result) {
        (Op::Get { .. }, OpResult::Ok { value }) => {
            ops.reads.push((span, ReadSeen::One(value.as_deref())))
        }
        (Op::Get { .. }, OpResult::NotFound) => ops.reads.push((span, ReadSeen::One(None))),
        (Op::Get { .. }, OpResult::Siblings { values }) => {
            ops.reads.push((span, ReadSeen::Siblings(values)))
        }
        (Op::Delete { .. }, OpResult::Ok { .. }) => {
            ops.deleted = true;
            ops.writes.push(span);
        }
        (_, OpResult::Ok { value: Some(v) }) => {
            ops.writer.entry(v.as_str()).or_insert(Some(span));
            ops.writes.push(span);
        }
        _ => {}
    }
    // Completions arrive in order, so `writes` stays sorted by completion.
}

fn record_unknown<'h>(ops: &mut KeyOps<'h>, op: &'h Op) {
    match op {
        Op::Put { value, .. } | Op::Update { value, .. } => {
            ops.writer.entry(value.as_str()).or_insert(None);
        }
        Op::Cas { new, .. } => {
            ops.writer.entry(new.as_str()).or_insert(None);
        }
        Op::Delete { .. } => ops.deleted = true,
        Op::Append { .. } => ops.unknown_appends = true,
        // Parts are recorded one by one; a txn nested in one (malformed) is skipped.
        Op::Get { .. } | Op::Txn { .. } => {}
    }
}

impl fmt::Display for StalenessReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} reads stale; writes behind p50 {} p99 {} max {}; stale for p50 {:.1} ms \
             p99 {:.1} ms max {:.1} ms",
            self.stale_reads,
            self.reads,
            self.writes_behind.p50,
            self.writes_behind.p99,
            self.writes_behind.max,
            self.stale_ms.p50,
            self.stale_ms.p99,
            self.stale_ms.max
        )?;
        if self.unexplained_reads > 0 {
            write!(
                f,
                "; {} reads of values never written",
                self.unexplained_reads
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use simkv_protocols::{ClientId, NodeId};

    fn push(h: &mut History, ms: u64, client: u32, op: Op, outcome: Option<Outcome>) {
        h.push(Time(ms * 1000), ClientId(client), NodeId(0), op, outcome);
    }

    fn put(h: &mut History, from_ms: u64, to_ms: u64, value: &str) {
        let op = Op::Put {
            key: 1,
            value: value.into(),
        };
        push(h, from_ms, 0, op.clone(), None);
        let ok = OpResult::Ok {
            value: Some(value.into()),
        };
        push(h, to_ms, 0, op, Some(Outcome::Ok(ok)));
    }

    fn get(h: &mut History, from_ms: u64, to_ms: u64, seen: Option<&str>) {
        push(h, from_ms, 1, Op::Get { key: 1 }, None);
        let r = match seen {
            Some(v) => OpResult::Ok {
                value: Some(v.into()),
            },
            None => OpResult::NotFound,
        };
        push(h, to_ms, 1, Op::Get { key: 1 }, Some(Outcome::Ok(r)));
    }

    #[test]
    fn counts_writes_behind_and_time_since_superseded() {
        let mut h = History::default();
        put(&mut h, 0, 1, "a");
        get(&mut h, 2, 3, None); // stale: "a" completed before
        put(&mut h, 4, 5, "b");
        put(&mut h, 6, 7, "c");
        get(&mut h, 17, 18, Some("a")); // two writes behind, 12 ms after "b" completed
        get(&mut h, 19, 20, Some("c")); // fresh
        get(&mut h, 21, 22, Some("zzz")); // invented
        let r = staleness(&h);
        assert_eq!((r.reads, r.stale_reads, r.unexplained_reads), (4, 2, 1));
        assert_eq!(r.writes_behind.max, 2.0);
        assert_eq!(r.stale_ms.max, 12.0);
        assert_eq!(r.stale_ms.p50, 1.0);
        assert!(r.to_string().starts_with("2 of 4 reads stale"), "{r}");
    }

    /// Found by raft/nemesis seed 6: a read saw the result of an append whose client timed
    /// out; that is not a value "never written".
    #[test]
    fn a_read_of_an_append_with_unknown_outcome_is_not_invention() {
        let mut h = History::default();
        let append = Op::Append {
            key: 1,
            value: "x;".into(),
        };
        push(&mut h, 0, 0, append.clone(), None);
        push(&mut h, 9, 0, append, Some(Outcome::Info));
        get(&mut h, 10, 11, Some("x;"));
        let r = staleness(&h);
        assert_eq!((r.reads, r.stale_reads, r.unexplained_reads), (1, 0, 0));
        // Without the unknown append, the same read is invention.
        let mut h = History::default();
        get(&mut h, 10, 11, Some("x;"));
        assert_eq!(staleness(&h).unexplained_reads, 1);
    }

    #[test]
    fn concurrent_writes_are_not_staleness() {
        let mut h = History::default();
        push(
            &mut h,
            0,
            0,
            Op::Put {
                key: 1,
                value: "a".into(),
            },
            None,
        );
        push(
            &mut h,
            1,
            2,
            Op::Put {
                key: 1,
                value: "b".into(),
            },
            None,
        );
        let ok = |v: &str| {
            Some(Outcome::Ok(OpResult::Ok {
                value: Some(v.into()),
            }))
        };
        push(
            &mut h,
            2,
            2,
            Op::Put {
                key: 1,
                value: "b".into(),
            },
            ok("b"),
        );
        push(
            &mut h,
            3,
            0,
            Op::Put {
                key: 1,
                value: "a".into(),
            },
            ok("a"),
        );
        get(&mut h, 4, 5, Some("b"));
        let r = staleness(&h);
        assert_eq!((r.reads, r.stale_reads), (1, 0));
    }
}
