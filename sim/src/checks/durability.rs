//! Durability of acknowledged writes, judged on each running replica's final store.

use super::intervals::{each_interval, parts, Interval, Status};
use super::{FinalReplica, Judgement, Measured, Promised, RunView, Verdict};
use crate::history::History;
use crate::lincheck::ByKey;
use simkv_protocols::{Key, Op, OpResult, Promise, Span, Time, Value};

pub(super) const PROMISED: Promised = Promised::If(Promise::DurableAcknowledgedWrites);

/// Judges the final replicas against the history's writes; counts the writes lost.
pub(super) fn judge(run: &RunView) -> Judgement {
    let workload = &run.scenario.workload;
    let retried = Retries {
        count: workload.retries,
        timeout: workload.timeout,
    };
    let (verdict, detail, lost) = durability(run.history, run.replicas, retried);
    Judgement {
        verdict,
        detail,
        measured: Measured {
            lost_acknowledged_writes: lost as u64,
            ..Measured::default()
        },
    }
}

/// The value an operation writes when it takes effect, if it writes a whole value.
fn written_value(op: &Op) -> Option<&Value> {
    match op {
        Op::Put { value, .. } | Op::Update { value, .. } => Some(value),
        Op::Cas { new, .. } => Some(new),
        Op::Get { .. } | Op::Delete { .. } | Op::Append { .. } | Op::Txn { .. } => None,
    }
}

/// A problem with a key's final value: the index of the acknowledged write it concerns
/// (`None`: the value itself is wrong), and what is wrong.
type Problem = (Option<usize>, String);

/// A key's judgement on one distinct final value: the value, its problems, and the replicas
/// holding it (their places among the running ones).
type Judged<'a> = (Held<'a>, Vec<Problem>, Vec<usize>);

/// What a replica ends holding for a key: its concurrent versions, or its value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Held<'a> {
    Siblings(&'a [Option<Value>]),
    Value(Option<&'a Value>),
}

/// Whether the operation is a write the store acknowledged as applied with an effect.
fn acknowledged(i: &Interval) -> bool {
    i.op.is_write() && matches!(i.status, Status::Ok(OpResult::Ok { .. }))
}

fn failed(i: &Interval) -> bool {
    matches!(i.status, Status::Fail(_))
}

/// How the clients retried: `count` times at most, each attempt after the last one's
/// `timeout` (or a refusal).
#[derive(Clone, Copy, Debug)]
struct Retries {
    count: u32,
    timeout: Span,
}

impl Retries {
    /// `i` as this check reads it: an operation one of whose attempts may have timed out is
    /// bounded by its invocation only, as one that completed `info`.
    ///
    /// A client re-sends an operation whose attempt timed out (the same request id, to a
    /// node of its choice) and records one completion, from whichever attempt answers
    /// first. The attempt that timed out is not withdrawn: it may still be on its way, and
    /// a store without client sessions (dynamo: every coordinator reads, then writes with
    /// what it read as the context) applies it when it arrives, after the completion the
    /// history shows, as a Jepsen history would record it: an attempt that timed out is an
    /// `info` operation. The history keeps no attempts, but an attempt times out only
    /// `timeout` after it was sent, no earlier than the invocation, so an operation that
    /// completed sooner than that had one attempt, or attempts that were refused (which
    /// promise they did not apply), and its completion still bounds it. (`swarm.toml`
    /// seed 17, dynamo: a put's first attempt answered and completed it; its retry, held
    /// up at another coordinator, read a put acknowledged after that completion and
    /// superseded it, by the context rule dynamo promises.)
    fn bound<'h>(self, mut i: Interval<'h>) -> Interval<'h> {
        let Some(end) = i.completed else {
            return i;
        };
        if self.count == 0 || end.since(i.invoked) < self.timeout {
            return i;
        }
        i.completed = None;
        if failed(&i) {
            // A refusal ended it, but an earlier attempt may have timed out unrefused.
            i.status = Status::Unknown;
        }
        i
    }
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
/// of the key could have come after it. An operation one of whose attempts may have timed
/// out is bounded by its invocation only ([`Retries::bound`]).
fn durability(
    history: &History,
    replicas: &[FinalReplica],
    retried: Retries,
) -> (Verdict, String, usize) {
    let by_key = writes_by_key(history, retried);
    let running: Vec<&FinalReplica> = replicas.iter().filter(|r| r.digest.is_some()).collect();
    // Each replica's name as its problems' lines begin. A node's name has no ':', so no
    // name is a prefix of another, and lines sort as (name, problem) pairs do.
    let names: Vec<String> = running.iter().map(|r| format!("{}: ", r.node)).collect();
    debug_assert!(names.iter().all(|n| n.find(':') == Some(n.len() - 2)));
    let mut judged_keys: Vec<Vec<Judged>> = Vec::new();
    for (key, writes) in &by_key {
        // Replicas mostly end alike: a key is judged once per distinct final value (the
        // judgement depends on nothing else), and each replica holding it takes the problems.
        let mut judged: Vec<Judged> = Vec::new();
        for (r, replica) in running.iter().enumerate() {
            if replica.foreign.contains(key) {
                continue;
            }
            let held = match replica.siblings.get(key) {
                Some(versions) => Held::Siblings(versions),
                None => Held::Value(replica.store.get(key)),
            };
            match judged.iter_mut().find(|(h, _, _)| *h == held) {
                Some((_, _, holders)) => holders.push(r),
                None => {
                    let found = match held {
                        Held::Siblings(versions) => judge_siblings(*key, writes, versions),
                        Held::Value(value) => judge_key(*key, writes, value),
                    };
                    judged.push((held, found, vec![r]));
                }
            }
        }
        judged_keys.push(judged);
    }
    // Each problem on each replica: the line `{name}{problem}`, made only for the lines
    // shown.
    let mut problems: Vec<(&str, &str)> = Vec::new();
    // The same loss seen on every replica is one loss.
    let mut distinct: Vec<&str> = Vec::new();
    for (_, found, holders) in judged_keys.iter().flatten() {
        for &r in holders {
            problems.extend(found.iter().map(|(_, p)| (names[r].as_str(), p.as_str())));
        }
        distinct.extend(found.iter().map(|(_, p)| p.as_str()));
    }
    distinct.sort_unstable();
    distinct.dedup();
    let lost = distinct.len();
    let acked = by_key
        .iter()
        .flat_map(|(_, writes)| writes)
        .filter(|i| acknowledged(i))
        .count();
    if problems.is_empty() {
        return (
            Verdict::Pass,
            format!("all {acked} acknowledged writes survived"),
            0,
        );
    }
    problems.sort_unstable();
    problems.dedup();
    let line = |&(name, p): &(&str, &str)| format!("{name}{p}");
    let shown: Vec<String> = problems.iter().take(8).map(line).collect();
    let more = problems.len().saturating_sub(shown.len());
    // The headline counts writes, as the CAP table does; the lines below name each replica.
    let mut detail = format!(
        "{lost} of {acked} acknowledged writes lost or corrupted ({} replica copies)\n",
        problems.len()
    );
    detail.push_str(&shown.join("\n"));
    if more > 0 {
        detail.push_str(&format!("\n... and {more} more"));
    }
    (Verdict::Fail, detail, lost)
}

/// The single-key writes of `history` (a txn's each on its key), bounded as `retried` says,
/// per key in key order, each key's in invocation order (a txn's in its order).
fn writes_by_key<'h>(history: &'h History, retried: Retries) -> Vec<(Key, Vec<Interval<'h>>)> {
    // Each write with its operation's place in invocation order.
    let mut by_key: ByKey<Key, Vec<(usize, Interval)>> = ByKey::new();
    each_interval(history, |at, i| {
        for i in parts(&retried.bound(i)).filter(|i| i.op.is_write()) {
            // Operations come as they complete, nearly in invocation order: each goes in
            // after the few invoked later that completed sooner (and after a txn's earlier
            // writes of the key), so each key's stay in invocation order without a sort.
            let writes = by_key.entry(&i.op.key()).1;
            let later = writes.iter().rev().take_while(|(other, _)| *other > at).count();
            writes.insert(writes.len() - later, (at, i));
        }
    });
    let by_key = by_key.into_sorted().into_iter();
    let strip = |(key, writes): (Key, Vec<(usize, Interval<'h>)>)| {
        (key, writes.into_iter().map(|(_, i)| i).collect())
    };
    by_key.map(strip).collect()
}

/// A key holding concurrent versions: a write is lost only if it is lost whichever sibling
/// is taken as the key's final value (a client reading the key sees them all); a sibling no
/// operation wrote is corruption whatever the others hold.
fn judge_siblings(
    key: Key,
    writes: &[Interval],
    versions: &[Option<Value>],
) -> Vec<(Option<usize>, String)> {
    let judged: Vec<Vec<(Option<usize>, String)>> = versions
        .iter()
        .map(|v| judge_key(key, writes, v.as_ref()))
        .collect();
    let Some((first, others)) = judged.split_first() else {
        return Vec::new();
    };
    let lost_everywhere = |i: usize| {
        others
            .iter()
            .all(|problems| problems.iter().any(|(w, _)| *w == Some(i)))
    };
    let mut problems: Vec<(Option<usize>, String)> = first
        .iter()
        .filter(|(w, _)| w.is_some_and(lost_everywhere))
        .cloned()
        .collect();
    for found in &judged {
        problems.extend(found.iter().filter(|(w, _)| w.is_none()).cloned());
    }
    problems
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

/// What is wrong with key `key` ending as `final_value`: each problem with the index in
/// `writes` of the acknowledged write it concerns (`None`: the value itself is wrong).
fn judge_key(
    key: Key,
    writes: &[Interval],
    final_value: Option<&Value>,
) -> Vec<(Option<usize>, String)> {
    let mut problems = Vec::new();
    let has_appends = writes.iter().any(|w| matches!(w.op, Op::Append { .. }));
    let writer = final_value.and_then(|v| writes.iter().find(|w| written_value(w.op) == Some(v)));
    match (final_value, writer) {
        (Some(v), None) if !has_appends => {
            problems.push((None, format!("k{key} holds {v}, which no operation wrote")));
            return problems;
        }
        (Some(v), Some(w)) if failed(w) => {
            let why = format!("k{key} holds {v}, written by an operation that failed");
            problems.push((None, why));
        }
        _ => {}
    }
    // An operation may have taken effect after `w` unless it completed before `w` began (or
    // failed); these maxima answer that for every `w` in O(1).
    let last_delete = latest_effect(writes.iter().filter(|o| matches!(o.op, Op::Delete { .. })));
    let last_overwrite =
        latest_effect(writes.iter().filter(|o| !matches!(o.op, Op::Append { .. })));
    let may_follow = |last: Option<Time>, w: &Interval| last.is_some_and(|t| t >= w.invoked);
    for (i, w) in writes.iter().enumerate().filter(|(_, w)| acknowledged(w)) {
        let mut lost = |why: String| problems.push((Some(i), why));
        let mine = written_value(w.op).map_or("", |s| s.as_str());
        match (&w.op, final_value) {
            (Op::Append { value, .. }, _) => {
                let present = final_value.is_some_and(|v| v.contains(value.as_str()));
                if !may_follow(last_overwrite, w) && !present {
                    lost(format!("k{key}: acknowledged append {value} is missing"));
                }
            }
            (Op::Delete { .. }, Some(v)) => {
                if writer.is_some_and(|x| before(x, w)) {
                    lost(format!("k{key}: acknowledged delete lost; holds {v} again"));
                }
            }
            (Op::Delete { .. }, None) => {}
            (_, Some(v)) => {
                if writer.is_some_and(|x| before(x, w)) {
                    lost(format!("k{key}: acknowledged {mine} lost to older {v}"));
                }
            }
            (_, None) => {
                if !may_follow(last_delete, w) {
                    lost(format!("k{key}: acknowledged {mine} lost; key absent"));
                }
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Outcome;
    use simkv_protocols::{ClientId, NodeId};
    use std::collections::BTreeMap;

    fn put(key: Key, v: &str) -> Op {
        Op::Put {
            key,
            value: v.into(),
        }
    }

    fn ok(v: &str) -> Outcome {
        Outcome::Ok(OpResult::Ok {
            value: Some(v.into()),
        })
    }

    /// Client 0 puts a, then (after a completed) client 1 puts b: b is the last word.
    fn two_puts() -> History {
        let mut h = History::default();
        let (c0, c1, n) = (ClientId(0), ClientId(1), NodeId(0));
        h.push(Time(10), c0, n, put(1, "a"), None);
        h.push(Time(20), c0, n, put(1, "a"), Some(ok("a")));
        h.push(Time(30), c1, n, put(1, "b"), None);
        h.push(Time(40), c1, n, put(1, "b"), Some(ok("b")));
        h
    }

    /// Clients that never retry: every completion bounds its operation.
    const ONCE: Retries = Retries {
        count: 0,
        timeout: Span::millis(40),
    };

    fn replica(value: Option<&str>, siblings: &[Option<&str>]) -> FinalReplica {
        let mut r = FinalReplica {
            node: NodeId(0),
            digest: Some(0),
            store: BTreeMap::new(),
            siblings: BTreeMap::new(),
            foreign: Default::default(),
        };
        if let Some(v) = value {
            r.store.insert(1, v.into());
        }
        if !siblings.is_empty() {
            let versions = siblings.iter().map(|v| v.map(Value::from)).collect();
            r.siblings.insert(1, versions);
        }
        r
    }

    #[test]
    fn a_write_replaced_by_an_older_one_is_lost() {
        let h = two_puts();
        assert_eq!(durability(&h, &[replica(Some("b"), &[])], ONCE).0, Verdict::Pass);
        let (verdict, detail, lost) = durability(&h, &[replica(Some("a"), &[])], ONCE);
        assert_eq!(verdict, Verdict::Fail);
        assert!(
            detail.contains("acknowledged b lost to older a"),
            "{detail}"
        );
        assert_eq!(lost, 1);
        let (verdict, detail, _) = durability(&h, &[replica(Some("zz"), &[])], ONCE);
        assert_eq!(verdict, Verdict::Fail);
        assert!(detail.contains("which no operation wrote"), "{detail}");
    }

    /// A loss seen on many replicas is one loss, and its lines come in text order, where n10
    /// comes before n2 (and n1's lines after n10's and n11's: "n1:" > "n10").
    #[test]
    fn lines_of_a_loss_on_many_replicas_come_in_text_order() {
        let h = two_puts();
        let replicas: Vec<FinalReplica> = (0..11)
            .map(|n| FinalReplica {
                node: NodeId(n),
                ..replica(Some("a"), &[])
            })
            .collect();
        let (verdict, detail, lost) = durability(&h, &replicas, ONCE);
        assert_eq!(verdict, Verdict::Fail);
        assert_eq!(lost, 1);
        let lines: Vec<&str> = detail.lines().collect();
        let nodes: Vec<&str> = lines[1..9].iter().map(|l| &l[..l.find(':').unwrap()]).collect();
        assert_eq!(nodes, ["n10", "n11", "n1", "n2", "n3", "n4", "n5", "n6"]);
        assert!(lines[0].starts_with("1 of 2 acknowledged writes lost or corrupted (11 replica"));
        assert_eq!(lines[9], "... and 3 more");
        assert_eq!(lines[3], "n1: k1: acknowledged b lost to older a");
    }

    /// Dynamo section 4.4: a key holding siblings keeps every write one of them keeps, but a
    /// sibling no operation wrote is corruption all the same.
    #[test]
    fn siblings_keep_a_write_if_any_of_them_does() {
        let h = two_puts();
        let both = replica(Some("a"), &[Some("a"), Some("b")]);
        assert_eq!(durability(&h, &[both], ONCE).0, Verdict::Pass);
        let older_only = replica(Some("a"), &[None, Some("a")]);
        let (verdict, detail, _) = durability(&h, &[older_only], ONCE);
        assert_eq!(verdict, Verdict::Fail, "{detail}");
        assert!(detail.contains("acknowledged b lost"), "{detail}");
        let invented = replica(Some("b"), &[Some("b"), Some("zz")]);
        let (verdict, detail, _) = durability(&h, &[invented], ONCE);
        assert_eq!(verdict, Verdict::Fail);
        assert!(detail.contains("zz, which no operation wrote"), "{detail}");
    }

    /// A txn's writes count one by one: its put of k1 lost to an older value is a loss.
    #[test]
    fn a_txn_write_counts_as_a_write_of_its_key() {
        let mut h = History::default();
        let (c0, c1, n) = (ClientId(0), ClientId(1), NodeId(0));
        h.push(Time(10), c0, n, put(1, "a"), None);
        h.push(Time(20), c0, n, put(1, "a"), Some(ok("a")));
        let txn = Op::Txn {
            ops: vec![Op::Get { key: 2 }, put(1, "t")],
        };
        let committed = OpResult::Txn {
            results: vec![
                OpResult::NotFound,
                OpResult::Ok {
                    value: Some("t".into()),
                },
            ],
        };
        h.push(Time(30), c1, n, txn.clone(), None);
        h.push(Time(40), c1, n, txn, Some(Outcome::Ok(committed)));
        assert_eq!(durability(&h, &[replica(Some("t"), &[])], ONCE).0, Verdict::Pass);
        let (verdict, detail, _) = durability(&h, &[replica(Some("a"), &[])], ONCE);
        assert_eq!(verdict, Verdict::Fail);
        assert!(
            detail.contains("acknowledged t lost to older a"),
            "{detail}"
        );
    }

    /// A put that ran longer than the clients' timeout may have had an attempt time out and
    /// apply after its completion: a put acknowledged after that completion and superseded
    /// by it is not lost. Unless clients never retry, or the put completed sooner.
    #[test]
    fn a_retried_write_may_take_effect_after_its_completion() {
        let mut h = History::default();
        let (c0, c1, n) = (ClientId(0), ClientId(1), NodeId(0));
        h.push(Time(10_000), c0, n, put(1, "a"), None);
        h.push(Time(60_000), c0, n, put(1, "a"), Some(ok("a")));
        h.push(Time(70_000), c1, n, put(1, "b"), None);
        h.push(Time(80_000), c1, n, put(1, "b"), Some(ok("b")));
        let retries = Retries {
            count: 3,
            ..ONCE
        };
        let a = || [replica(Some("a"), &[])];
        assert_eq!(durability(&h, &a(), retries).0, Verdict::Pass);
        let (verdict, detail, _) = durability(&h, &a(), ONCE);
        assert_eq!(verdict, Verdict::Fail, "no retries: a completed before b");
        assert!(detail.contains("acknowledged b lost to older a"), "{detail}");
        let slow = Retries {
            timeout: Span::millis(60),
            ..retries
        };
        let (verdict, _, _) = durability(&h, &a(), slow);
        assert_eq!(verdict, Verdict::Fail, "a completed within its first attempt");
    }
}
