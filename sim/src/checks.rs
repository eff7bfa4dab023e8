//! The checks a run makes after the faults: convergence, durability of acknowledged writes,
//! liveness after heal. (Linearizability lives in [`crate::check`].)

use crate::history::{History, Outcome};
use serde::Serialize;
use simkv_protocols::{Key, NodeId, Op, OpResult, Span, Time, Value};
use std::collections::BTreeMap;

/// A check's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// It held.
    Pass,
    /// It was broken.
    Fail,
    /// It could not be decided within its budget.
    Unknown,
    /// There was nothing to judge (the detail says why).
    Skipped,
}

/// One check's result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckResult {
    /// Its name: `convergence`, `durability`, `liveness`, `linearizability`, `invariants`, ...
    pub name: String,
    /// Whether the protocol promises it (a broken promise fails the run; the rest is
    /// measured and reported).
    pub promised: bool,
    /// The verdict.
    pub verdict: Verdict,
    /// What was found, in a sentence or a few lines.
    pub detail: String,
}

/// A node's final replica, as the checks see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinalReplica {
    /// Whose.
    pub node: NodeId,
    /// Its digest, or `None` if the node ended crashed.
    pub digest: Option<u64>,
    /// Its store (empty if crashed).
    pub store: BTreeMap<Key, Value>,
}

/// Convergence: every running replica ends with the same digest.
pub fn convergence(replicas: &[FinalReplica]) -> (Verdict, String) {
    let running: Vec<&FinalReplica> = replicas.iter().filter(|r| r.digest.is_some()).collect();
    let Some(first) = running.first() else {
        return (Verdict::Skipped, "no node was running at the end".into());
    };
    let diverged: Vec<&&FinalReplica> = running
        .iter()
        .filter(|r| r.digest != first.digest)
        .collect();
    if diverged.is_empty() {
        return (
            Verdict::Pass,
            format!(
                "{} running replicas hold the same state ({} keys)",
                running.len(),
                first.store.len()
            ),
        );
    }
    let mut lines = vec![format!(
        "{} of {} running replicas differ from {}",
        diverged.len(),
        running.len(),
        first.node
    )];
    for other in diverged {
        let mut keys: Vec<Key> = first
            .store
            .keys()
            .chain(other.store.keys())
            .copied()
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let differing: Vec<String> = keys
            .into_iter()
            .filter(|k| first.store.get(k) != other.store.get(k))
            .take(5)
            .map(|k| {
                let show = |v: Option<&Value>| v.map_or("absent".to_string(), |v| v.clone());
                format!(
                    "k{k}: {}={} {}={}",
                    first.node,
                    show(first.store.get(&k)),
                    other.node,
                    show(other.store.get(&k))
                )
            })
            .collect();
        if differing.is_empty() {
            lines.push(format!(
                "{}: same keys and values, different versions or tombstones",
                other.node
            ));
        } else {
            lines.push(format!("{}: {}", other.node, differing.join("; ")));
        }
    }
    (Verdict::Fail, lines.join("\n"))
}

/// One operation of a history with both ends.
#[derive(Clone, Copy, Debug)]
struct Interval<'h> {
    op: &'h Op,
    invoked: Time,
    /// `None` for an operation that never completed or completed `info`: it may have
    /// taken effect at any time after its invocation.
    completed: Option<Time>,
    status: Status<'h>,
}

/// How an operation of an [`Interval`] ended.
#[derive(Clone, Copy, Debug)]
enum Status<'h> {
    /// Completed ok, with this result.
    Ok(&'h OpResult),
    /// Definitely not applied, for this reason.
    Fail(&'h OpResult),
    /// Completed `info`, or never completed.
    Unknown,
}

fn intervals(history: &History) -> Vec<Interval<'_>> {
    let mut open: BTreeMap<u32, usize> = BTreeMap::new();
    let mut out: Vec<Interval> = Vec::new();
    for e in &history.events {
        match &e.outcome {
            None => {
                open.insert(e.client.0, out.len());
                out.push(Interval {
                    op: &e.op,
                    invoked: e.time,
                    completed: None,
                    status: Status::Unknown,
                });
            }
            Some(outcome) => {
                if let Some(i) = open.remove(&e.client.0) {
                    out[i].status = match outcome {
                        Outcome::Ok(r) => Status::Ok(r),
                        Outcome::Fail(r) => Status::Fail(r),
                        Outcome::Info => Status::Unknown,
                    };
                    if !matches!(outcome, Outcome::Info) {
                        out[i].completed = Some(e.time);
                    }
                }
            }
        }
    }
    out
}

/// The single-key operations of an interval, each with its own ending: a txn's parts (an ok
/// txn's parts with their results), or the interval itself.
fn parts<'h>(i: &Interval<'h>) -> Vec<Interval<'h>> {
    let Op::Txn { ops } = i.op else {
        return vec![*i];
    };
    ops.iter()
        .enumerate()
        .map(|(n, op)| {
            let status = match i.status {
                Status::Ok(OpResult::Txn { results }) => match results.get(n) {
                    Some(r) => Status::Ok(r),
                    None => Status::Unknown,
                },
                other => other,
            };
            Interval { op, status, ..*i }
        })
        .collect()
}

/// The value an operation writes when it takes effect, if it writes a whole value.
fn written_value(op: &Op) -> Option<&Value> {
    match op {
        Op::Put { value, .. } | Op::Update { value, .. } => Some(value),
        Op::Cas { new, .. } => Some(new),
        Op::Get { .. } | Op::Delete { .. } | Op::Append { .. } | Op::Txn { .. } => None,
    }
}

/// Whether the operation is a write the store acknowledged as applied with an effect.
fn acknowledged(i: &Interval) -> bool {
    i.op.is_write() && matches!(i.status, Status::Ok(OpResult::Ok { .. }))
}

fn failed(i: &Interval) -> bool {
    matches!(i.status, Status::Fail(_))
}

/// Durability of acknowledged writes, judged on each running replica's final store.
///
/// A txn counts as its parts, each judged on its own key like a single-key operation.
///
/// An acknowledged write W of key k is lost if k's final value was written by an operation
/// that completed before W was invoked (so no correct store could order it after W), or if
/// k ends absent while every delete of k completed before W was invoked; an acknowledged
/// delete is lost if k ends holding a value written before the delete was invoked. A final
/// value that no operation wrote is corruption. Appends are judged by their tokens: each
/// acknowledged append must appear in the final value unless a put, update, cas or delete
/// of the key could have come after it.
pub fn durability(history: &History, replicas: &[FinalReplica]) -> (Verdict, String, usize) {
    let mut by_key: BTreeMap<Key, Vec<Interval>> = BTreeMap::new();
    for i in intervals(history).iter().flat_map(parts) {
        if i.op.is_write() {
            by_key.entry(i.op.key()).or_default().push(i);
        }
    }
    let mut problems: Vec<String> = Vec::new();
    // The same loss seen on every replica is one loss.
    let mut distinct: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    for replica in replicas.iter().filter(|r| r.digest.is_some()) {
        for (key, writes) in &by_key {
            let found = judge_key(*key, writes, replica.store.get(key));
            for p in found {
                problems.push(format!("{}: {p}", replica.node));
                distinct.insert(p);
            }
        }
    }
    let lost = distinct.len();
    let acked = by_key
        .values()
        .flatten()
        .filter(|i| acknowledged(i))
        .count();
    if problems.is_empty() {
        return (
            Verdict::Pass,
            format!("all {acked} acknowledged writes survived"),
            0,
        );
    }
    problems.sort();
    problems.dedup();
    let shown: Vec<String> = problems.iter().take(8).cloned().collect();
    let more = problems.len().saturating_sub(shown.len());
    let mut detail = format!(
        "{} lost or corrupted ({} acknowledged writes)\n",
        problems.len(),
        acked
    );
    detail.push_str(&shown.join("\n"));
    if more > 0 {
        detail.push_str(&format!("\n... and {more} more"));
    }
    (Verdict::Fail, detail, lost)
}

fn before(a: &Interval, b: &Interval) -> bool {
    a.completed.is_some_and(|end| end < b.invoked)
}

/// The latest time any of `ops` may have taken effect: `None` if none could, `Time(MAX)` if
/// one never completed (it may take effect at any time).
fn latest_effect<'a, 'h: 'a>(ops: impl Iterator<Item = &'a Interval<'h>>) -> Option<Time> {
    ops.filter(|o| !failed(o))
        .map(|o| o.completed.unwrap_or(Time(u64::MAX)))
        .max()
}

fn judge_key(key: Key, writes: &[Interval], final_value: Option<&Value>) -> Vec<String> {
    let mut problems = Vec::new();
    let has_appends = writes.iter().any(|w| matches!(w.op, Op::Append { .. }));
    let writer = final_value.and_then(|v| writes.iter().find(|w| written_value(w.op) == Some(v)));
    match (final_value, writer) {
        (Some(v), None) if !has_appends => {
            problems.push(format!("k{key} holds {v}, which no operation wrote"));
            return problems;
        }
        (Some(v), Some(w)) if failed(w) => {
            problems.push(format!(
                "k{key} holds {v}, written by an operation that failed"
            ));
        }
        _ => {}
    }
    // An operation may have taken effect after `w` unless it completed before `w` began (or
    // failed); these maxima answer that for every `w` in O(1).
    let last_delete = latest_effect(writes.iter().filter(|o| matches!(o.op, Op::Delete { .. })));
    let last_overwrite =
        latest_effect(writes.iter().filter(|o| !matches!(o.op, Op::Append { .. })));
    let may_follow = |last: Option<Time>, w: &Interval| last.is_some_and(|t| t >= w.invoked);
    for w in writes.iter().filter(|w| acknowledged(w)) {
        let mine = written_value(w.op).map_or("", |s| s.as_str());
        match (&w.op, final_value) {
            (Op::Append { value, .. }, _) => {
                let present = final_value.is_some_and(|v| v.contains(value.as_str()));
                if !may_follow(last_overwrite, w) && !present {
                    problems.push(format!("k{key}: acknowledged append {value} is missing"));
                }
            }
            (Op::Delete { .. }, Some(v)) => {
                if writer.is_some_and(|x| before(x, w)) {
                    problems.push(format!("k{key}: acknowledged delete lost; holds {v} again"));
                }
            }
            (Op::Delete { .. }, None) => {}
            (_, Some(v)) => {
                if writer.is_some_and(|x| before(x, w)) {
                    problems.push(format!("k{key}: acknowledged {mine} lost to older {v}"));
                }
            }
            (_, None) => {
                if !may_follow(last_delete, w) {
                    problems.push(format!("k{key}: acknowledged {mine} lost; key absent"));
                }
            }
        }
    }
    problems
}

/// Liveness after heal: every operation invoked at least `window` after the cluster was last
/// made whole, and before the workload stopped, succeeded.
pub fn liveness(
    history: &History,
    healed_at: Option<Time>,
    window: Span,
    workload_stopped: Time,
) -> (Verdict, String) {
    let Some(healed) = healed_at else {
        return (
            Verdict::Fail,
            "the cluster was never made whole again".into(),
        );
    };
    let from = healed + window;
    let mut judged = 0;
    let mut unsuccessful: Vec<String> = Vec::new();
    for i in intervals(history) {
        if i.invoked < from || i.invoked >= workload_stopped {
            continue;
        }
        judged += 1;
        if !matches!(i.status, Status::Ok(_)) {
            let how = match i.status {
                Status::Fail(r) => format!("failed: {r}"),
                _ => "timed out".to_string(),
            };
            unsuccessful.push(format!("{} at {} {how}", i.op, i.invoked));
        }
    }
    if judged == 0 {
        return (
            Verdict::Skipped,
            format!(
                "no operation was invoked between {from} (heal + {window}) and {workload_stopped}"
            ),
        );
    }
    if unsuccessful.is_empty() {
        return (
            Verdict::Pass,
            format!("all {judged} operations from {from} on succeeded"),
        );
    }
    let count = unsuccessful.len();
    unsuccessful.truncate(5);
    (
        Verdict::Fail,
        format!(
            "{count} of {judged} operations from {from} on did not succeed, e.g.\n{}",
            unsuccessful.join("\n")
        ),
    )
}
