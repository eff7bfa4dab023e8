//! Causal contexts (a workload with `contexts = true`): no acknowledged put is gone from a
//! replica unless a version that replica ends holding was written under a context that
//! covered it.
//!
//! What a store with client contexts promises (Dynamo section 4.4, the model "causal
//! consistency with convergent conflict handling", causal+, that Dynamo's vector clocks
//! approximate) is that a write supersedes exactly what its context covers: a version goes
//! only when one that descends from it arrives, and versions only descend through contexts.
//! The check reads coverage from the history alone, never from the protocol's clocks: a
//! write's context is what the get before it answered (the same process's last get, of the
//! same key, whose recorded context the write's invocation carries), and that get showed
//! values, each written by one put (values are unique per run). So a put `W` is covered by
//! a write `X` when `X`'s get showed `W`'s value, or the value of a write that `W` is covered
//! by, and so on: a path of reads from `W` to `X`.
//!
//! The judgement, per running replica and key it replicates: every acknowledged put whose
//! value the replica does not end holding (as its value or among its siblings) must be
//! covered by the writer of a value it ends holding. A replica that dropped `W` dropped it
//! for a version that descends from `W`, and that one, if it went too, for one that descends
//! from it: descent is transitive, so something the replica ends holding descends from `W`,
//! and its writer's context (the clock it read) covered `W`'s clock through the values its
//! get showed. Timing plays no part, so sloppy quorums, stale reads, retries and writes in
//! flight at the end cannot make it fire: only a version that superseded what its context
//! did not cover can (dynamo's planted `context-ignored`).
//!
//! Where the history does not say what a write read, the check assumes the most: a write
//! whose context no get answered (a history written elsewhere) covers every write of its
//! key; a final tombstone (a delete: no value names it) is taken as written by any delete of
//! the key that did not fail, and a tombstone a get showed as any delete invoked before the
//! get completed; a final value no put wrote is left to the durability check,
//! and the key is not judged. Deletes are not judged here (no value names them); the
//! durability check judges them, and every write's completion, by time.

use super::{FinalReplica, Judgement, Promised, RunView, Verdict};
use crate::history::{History, Outcome};
use simkv_protocols::{CausalContext, Key, Op, OpResult, Promise, Time, Value};
use std::collections::{BTreeMap, BTreeSet};

pub(super) const PROMISED: Promised = Promised::WithContexts(Promise::DurableAcknowledgedWrites);

pub(super) fn judge(run: &RunView) -> Judgement {
    let (verdict, detail) = contexts(run.history, run.replicas);
    Judgement::new(verdict, detail)
}

/// One write of the history, as this check reads it.
#[derive(Debug)]
struct Write<'h> {
    op: &'h Op,
    /// The values its context covers directly (those its get showed); `None`: unknown, so
    /// every write of its key.
    read: Option<Vec<&'h Value>>,
    /// When its get, which showed a tombstone, completed: a tombstone names no delete, so
    /// its context may cover any delete invoked before then (and what that one covered).
    tombstone_seen: Option<Time>,
    /// When it was invoked.
    invoked: Time,
    /// Whether it was acknowledged (completed ok).
    acknowledged: bool,
    /// Whether it definitely did not take effect.
    failed: bool,
}

/// The values a get's answer showed, and whether it showed a tombstone (a concurrent
/// delete among siblings, or a not-found whose context is not empty: it read a delete's).
fn shown<'h>(result: &'h OpResult, context: Option<&CausalContext>) -> (Vec<&'h Value>, bool) {
    match result {
        OpResult::Ok { value: Some(v) } => (vec![v], false),
        OpResult::Siblings { values } => {
            (values.iter().flatten().collect(), values.iter().any(Option::is_none))
        }
        OpResult::NotFound => (Vec::new(), context.is_some_and(|c| !c.is_empty())),
        _ => (Vec::new(), false),
    }
}

/// The history's writes, each with what its context covers directly, by key.
fn writes(history: &History) -> BTreeMap<Key, Vec<Write<'_>>> {
    // Per process: its write in flight (key, place), and its last completed get (key,
    // context answered, values shown).
    type LastGet<'h> = (Key, Option<&'h CausalContext>, Vec<&'h Value>, Option<Time>);
    let mut open: BTreeMap<u32, (Key, usize)> = BTreeMap::new();
    let mut last_get: BTreeMap<u32, LastGet> = BTreeMap::new();
    let mut open_gets: BTreeMap<u32, Key> = BTreeMap::new();
    let mut by_key: BTreeMap<Key, Vec<Write>> = BTreeMap::new();
    for e in &history.events {
        let process = e.client.0;
        let op: &Op = &e.op;
        match (&e.outcome, op) {
            (None, Op::Get { key }) => {
                open_gets.insert(process, *key);
            }
            (None, Op::Put { key, .. } | Op::Delete { key }) => {
                let (read, tombstone_seen) = match &e.context {
                    Some(c) if c.is_empty() => (Some(Vec::new()), None),
                    Some(c) => match last_get.get(&process) {
                        Some((k, Some(answered), values, tomb)) if k == key && *answered == c => {
                            (Some(values.clone()), *tomb)
                        }
                        _ => (None, None),
                    },
                    None => (None, None),
                };
                let list = by_key.entry(*key).or_default();
                open.insert(process, (*key, list.len()));
                list.push(Write {
                    op,
                    read,
                    tombstone_seen,
                    invoked: e.time,
                    acknowledged: false,
                    failed: false,
                });
            }
            (None, _) => {}
            (Some(outcome), Op::Get { key }) => {
                if open_gets.remove(&process).is_some() {
                    let (values, tombstone) = match outcome {
                        Outcome::Ok(r) => shown(r, e.context.as_ref()),
                        _ => (Vec::new(), false),
                    };
                    let tombstone = tombstone.then_some(e.time);
                    last_get.insert(process, (*key, e.context.as_ref(), values, tombstone));
                }
            }
            (Some(outcome), _) => {
                if let Some((key, at)) = open.remove(&process) {
                    let w = &mut by_key.get_mut(&key).expect("opened")[at];
                    w.acknowledged = matches!(outcome, Outcome::Ok(OpResult::Ok { .. }));
                    w.failed = matches!(outcome, Outcome::Fail(_));
                }
            }
        }
    }
    by_key
}

/// What a replica ends holding of a key: its siblings' values (`None`: a tombstone), or
/// its one value.
fn held(replica: &FinalReplica, key: Key) -> Vec<Option<&Value>> {
    match replica.siblings.get(&key) {
        Some(versions) => versions.iter().map(Option::as_ref).collect(),
        None => vec![replica.store.get(&key)],
    }
}

/// The puts of `writes` lost from a replica ending with `finals`, each as a sentence.
fn judge_key<'h>(key: Key, writes: &[Write<'h>], finals: &[Option<&Value>]) -> Vec<String> {
    fn written<'h>(w: &Write<'h>) -> Option<&'h Value> {
        match w.op {
            Op::Put { value, .. } => Some(value),
            _ => None,
        }
    }
    let writer: BTreeMap<&Value, usize> = writes
        .iter()
        .enumerate()
        .filter_map(|(i, w)| written(w).map(|v| (v, i)))
        .collect();
    let mut roots: Vec<usize> = Vec::new();
    for f in finals {
        match f {
            Some(v) => match writer.get(v) {
                Some(i) => roots.push(*i),
                // A value no put wrote: durability's to report; nothing to judge here.
                None => return Vec::new(),
            },
            None => {
                let deletes = writes.iter().enumerate();
                let deletes = deletes.filter(|(_, w)| matches!(w.op, Op::Delete { .. }));
                roots.extend(deletes.filter(|(_, w)| !w.failed).map(|(i, _)| i));
            }
        }
    }
    // Every write some final version's context covers: back along the reads.
    let mut covered = vec![false; writes.len()];
    let mut stack = roots;
    while let Some(i) = stack.pop() {
        if std::mem::replace(&mut covered[i], true) {
            continue;
        }
        match &writes[i].read {
            None => return Vec::new(),
            Some(values) => stack.extend(values.iter().filter_map(|v| writer.get(*v))),
        }
        if let Some(seen) = writes[i].tombstone_seen {
            let deletes = writes.iter().enumerate();
            let deletes = deletes.filter(|(_, w)| matches!(w.op, Op::Delete { .. }));
            let before = deletes.filter(|(_, w)| !w.failed && w.invoked < seen);
            stack.extend(before.map(|(j, _)| j).filter(|j| !covered[*j]));
        }
    }
    let kept: BTreeSet<&Value> = finals.iter().flatten().copied().collect();
    let shown = |f: &Option<&Value>| f.map_or("absent".to_string(), |v| v.to_string());
    let finals: Vec<String> = finals.iter().map(shown).collect();
    let mut lost = Vec::new();
    for (i, w) in writes.iter().enumerate() {
        let Some(value) = written(w) else { continue };
        if w.acknowledged && !covered[i] && !kept.contains(value) {
            lost.push(format!(
                "k{key}: acknowledged put {value} is gone, and the context of no version kept \
                 ([{}]) covered it",
                finals.join(", ")
            ));
        }
    }
    lost
}

/// The judgement over every running replica, on the keys it replicates.
fn contexts(history: &History, replicas: &[FinalReplica]) -> (Verdict, String) {
    let by_key = writes(history);
    let running: Vec<&FinalReplica> = replicas.iter().filter(|r| r.digest.is_some()).collect();
    let mut problems: Vec<String> = Vec::new();
    let mut distinct: BTreeSet<String> = BTreeSet::new();
    let mut puts = 0;
    for (key, writes) in &by_key {
        puts += writes
            .iter()
            .filter(|w| w.acknowledged && matches!(w.op, Op::Put { .. }))
            .count();
        // Replicas mostly end alike: each distinct ending is judged once.
        let mut judged: Vec<(Vec<Option<&Value>>, Vec<String>)> = Vec::new();
        for replica in running.iter().filter(|r| !r.foreign.contains(key)) {
            let finals = held(replica, *key);
            let at = match judged.iter().position(|(f, _)| *f == finals) {
                Some(at) => at,
                None => {
                    let found = judge_key(*key, writes, &finals);
                    judged.push((finals, found));
                    judged.len() - 1
                }
            };
            for p in &judged[at].1 {
                problems.push(format!("{}: {p}", replica.node));
                distinct.insert(p.clone());
            }
        }
    }
    if problems.is_empty() {
        return (
            Verdict::Pass,
            format!(
                "every one of {puts} acknowledged puts is kept, or superseded by a write \
                 whose context covered it"
            ),
        );
    }
    let shown: Vec<&String> = problems.iter().take(8).collect();
    let mut detail = format!(
        "{} of {puts} acknowledged puts superseded by a write whose context did not cover \
         them ({} replica copies)",
        distinct.len(),
        problems.len()
    );
    for p in shown {
        detail.push('\n');
        detail.push_str(p);
    }
    if problems.len() > 8 {
        detail.push_str(&format!("\n... and {} more", problems.len() - 8));
    }
    (Verdict::Fail, detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use simkv_protocols::{ClientId, NodeId};

    fn ok(v: Option<&str>) -> Outcome {
        Outcome::Ok(OpResult::Ok {
            value: v.map(Value::from),
        })
    }

    fn replica(siblings: &[&str]) -> FinalReplica {
        let mut r = FinalReplica {
            node: NodeId(0),
            digest: Some(0),
            store: BTreeMap::new(),
            siblings: BTreeMap::new(),
            foreign: Default::default(),
        };
        r.store.insert(1, siblings[0].into());
        if siblings.len() > 1 {
            let all = siblings.iter().map(|v| Some(Value::from(*v))).collect();
            r.siblings.insert(1, all);
        }
        r
    }

    /// Process `p` gets k1 (answered `read` with context `[[1, ctx]]`, or nothing), then
    /// puts `value` with that context.
    fn read_then_put(h: &mut History, p: u32, t: u64, read: Option<&str>, ctx: u64, value: &str) {
        let (c, n) = (ClientId(p), NodeId(0));
        let context = CausalContext::from_pairs([(1, ctx)]);
        let get = Op::Get { key: 1 };
        h.push(Time(t), c, n, get.clone(), None);
        h.push_with_context(Time(t + 1), c, n, get, Some(ok(read)), Some(context.clone()));
        let put = Op::Put {
            key: 1,
            value: value.into(),
        };
        h.push_with_context(Time(t + 2), c, n, put.clone(), None, Some(context));
        h.push(Time(t + 3), c, n, put, Some(ok(Some(value))));
    }

    /// Dynamo section 4.4: a put that read `a` supersedes it; one that read nothing
    /// supersedes nothing, so if `b` alone is left, `a`'s loss is a broken promise, and with
    /// both kept as siblings nothing is lost.
    #[test]
    fn a_put_may_supersede_only_what_its_read_showed() {
        let mut h = History::default();
        read_then_put(&mut h, 0, 10, None, 0, "a");
        read_then_put(&mut h, 1, 20, Some("a"), 1, "b");
        assert_eq!(contexts(&h, &[replica(&["b"])]).0, Verdict::Pass);
        let mut h = History::default();
        read_then_put(&mut h, 0, 10, None, 0, "a");
        read_then_put(&mut h, 1, 20, None, 0, "b");
        let (verdict, detail) = contexts(&h, &[replica(&["b"])]);
        assert_eq!(verdict, Verdict::Fail, "{detail}");
        assert!(detail.contains("acknowledged put a is gone"), "{detail}");
        assert_eq!(contexts(&h, &[replica(&["a", "b"])]).0, Verdict::Pass);
    }

    /// Coverage is transitive through reads: `c` read `b`, which read `a`.
    #[test]
    fn coverage_follows_chains_of_reads() {
        let mut h = History::default();
        read_then_put(&mut h, 0, 10, None, 0, "a");
        read_then_put(&mut h, 1, 20, Some("a"), 1, "b");
        read_then_put(&mut h, 2, 30, Some("b"), 2, "c");
        assert_eq!(contexts(&h, &[replica(&["c"])]).0, Verdict::Pass);
    }

    /// A write whose context no get of its process answered (a history from elsewhere) may
    /// have covered anything: the check assumes so rather than fire.
    #[test]
    fn a_context_of_unknown_origin_covers_everything() {
        let mut h = History::default();
        read_then_put(&mut h, 0, 10, None, 0, "a");
        let (c, n) = (ClientId(1), NodeId(0));
        let put = Op::Put {
            key: 1,
            value: "b".into(),
        };
        let context = CausalContext::from_pairs([(7, 3)]);
        h.push_with_context(Time(20), c, n, put.clone(), None, Some(context));
        h.push(Time(21), c, n, put, Some(ok(Some("b"))));
        assert_eq!(contexts(&h, &[replica(&["b"])]).0, Verdict::Pass);
    }
}
