//! Multi-key txns as one transaction (Gray & Lamport section 2; module doc, "Why a
//! transaction locks what it reads").

use super::*;

/// Gray & Lamport section 2: a txn is one transaction over all its keys. Its Prepare
/// carries one write per key, the key it only reads too (unchanged, with its version);
/// once every node voted yes, every replica applies all its writes, and the client gets
/// one result per op, as the sequential store answers.
#[test]
fn section_2_a_txn_commits_all_its_writes_at_every_replica_and_answers_each_op() {
    let mut h = Harness::new(3, &[]);
    h.submit_next(0, put(3, "c"));
    h.deliver_all();
    let op = txn(vec![put(1, "a"), put(2, "b"), get(1), get(3)]);
    let id = h.submit_next(1, op.clone());
    assert_eq!(h.inflight.len(), 2, "one Prepare per peer");
    let Some((_, _, Message::Prepare { writes, .. })) = h.inflight.first() else {
        panic!("no Prepare: {:?}", h.inflight);
    };
    let sent: Vec<(Key, u64, Option<Value>)> = writes
        .iter()
        .map(|w| (w.key, w.base, w.value.clone()))
        .collect();
    let want = [
        (1, 0, Some("a".into())),
        (2, 0, Some("b".into())),
        (3, 1, Some("c".into())),
    ];
    assert_eq!(sent, want);
    assert!(h.reply(id).is_none(), "no answer before every vote");
    h.deliver_all();
    let answer = committed(vec![ok("a"), ok("b"), ok("a"), ok("c")]);
    let mut model = BTreeMap::from([(3, kv::Value::from("c"))]);
    assert_eq!(kv::apply(&mut model, &op), answer, "the sequential answer");
    assert_eq!(h.reply(id), Some(&answer));
    for i in 0..3 {
        assert_eq!(h.node(i).store(), model, "n{}", i + 1);
        assert!(h.node(i).locks.is_empty() && h.node(i).prepared.is_empty());
    }
}

/// Gray & Lamport section 2: without every participant's yes vote a transaction aborts,
/// and none of a txn's writes applies anywhere, not even at the participant that voted
/// yes and held them prepared. Retried with the node still down, it is refused, and a
/// copy sent elsewhere is voted down by the refusal's fence.
#[test]
fn section_2_a_txn_missing_a_vote_aborts_and_applies_none_of_its_writes() {
    let mut h = Harness::new(3, &[]);
    h.crash(2);
    let op = txn(vec![put(1, "a"), append(2, "x")]);
    let id = h.submit_next(0, op.clone());
    h.deliver_all();
    assert_eq!(h.node(1).locks.len(), 2, "n2 voted yes, both keys locked");
    let t = TxnId {
        coordinator: n(0),
        seq: 0,
    };
    h.run(0, |node, ctx| node.on_timer(ctx, Timer::Votes(t)));
    h.deliver_all();
    for i in 0..2 {
        assert!(h.node(i).entries.is_empty(), "n{} applied a write", i + 1);
        assert!(h.node(i).locks.is_empty() && h.node(i).prepared.is_empty());
    }
    h.now += Span::millis(400);
    h.run(0, |node, ctx| node.on_timer(ctx, Timer::Retry(id)));
    assert_eq!(h.reply(id), Some(&OpResult::Unavailable { hint: None }));
    h.recover(2);
    h.submit(1, id, op);
    h.deliver_all();
    for i in 0..3 {
        assert!(h.node(i).entries.is_empty(), "n{} applied a write", i + 1);
    }
    assert_eq!(h.replies.iter().filter(|(r, _)| *r == id).count(), 1);
}

/// Gray & Lamport section 2 needs no vote for reads: a txn of gets is answered from the
/// receiving replica, all its keys unlocked there, without any Prepare. A txn with a write
/// that changes nothing (a failing cas) still runs as a transaction: its answer must be
/// recorded at every replica, or a copy of it re-sent to another node could run there later
/// over a newer write (module doc, "Writes that change nothing").
#[test]
fn section_2_a_read_only_txn_is_answered_locally_and_a_write_that_changes_nothing_is_not() {
    let mut h = Harness::new(3, &[]);
    h.submit_next(0, put(1, "a"));
    h.deliver_all();
    h.effects.clear();
    let id = h.submit_next(2, txn(vec![get(1), get(2)]));
    let answer = committed(vec![ok("a"), OpResult::NotFound]);
    assert_eq!(h.reply(id), Some(&answer));
    assert_eq!(h.log(), [(n(2), "reply")], "no persist, no Prepare");
    assert!(h.inflight.is_empty());
    let cas = Op::Cas {
        key: 1,
        expected: "z".into(),
        new: "b".into(),
    };
    let id = h.submit_next(2, txn(vec![get(1), cas]));
    assert!(
        h.inflight
            .iter()
            .any(|(_, _, m)| matches!(m, Message::Prepare { .. })),
        "a Prepare for the failing cas"
    );
    h.deliver_all();
    let failed = OpResult::PreconditionFailed {
        current: Some("a".into()),
    };
    assert_eq!(h.reply(id), Some(&committed(vec![ok("a"), failed])));
    for i in 0..3 {
        let value = h.node(i).entries[&1].value.as_deref();
        assert_eq!(value, Some("a"), "n{} keeps the value", i + 1);
    }
}

/// Gray & Lamport section 2's participant holds its locks until the outcome: a txn's
/// local answer waits while any key of it (here the second) is locked here, and then
/// reads the committed write.
#[test]
fn section_2_a_read_only_txn_waits_for_a_lock_on_any_of_its_keys() {
    let mut h = Harness::new(3, &[]);
    h.submit_next(0, put(1, "a"));
    h.deliver_all();
    h.submit_next(0, put(2, "b"));
    h.deliver_where(|(_, _, m)| matches!(m, Message::Prepare { .. }));
    let id = h.submit_next(2, txn(vec![get(1), get(2)]));
    assert!(h.reply(id).is_none(), "k2 is locked at n3: the txn waits");
    h.deliver_all();
    assert_eq!(h.reply(id), Some(&committed(vec![ok("a"), ok("b")])));
}

/// Gray & Lamport section 2 commits a transaction once: a client's retry of a committed
/// txn (same request id) at another node, or at its coordinator, is answered from the
/// keys' `last_writes` and not applied again (a second append would show). Once the
/// client has moved on (a later write of one key), a copy is ignored: the newest record
/// across the txn's keys counts.
#[test]
fn a_retried_txn_after_its_commit_is_answered_from_last_writes_and_applied_once() {
    let mut h = Harness::new(3, &[]);
    let op = txn(vec![append(1, "x"), get(2), append(2, "y")]);
    let id = h.submit_next(0, op.clone());
    h.deliver_all();
    let answer = committed(vec![ok("x"), OpResult::NotFound, ok("y")]);
    assert_eq!(h.reply(id), Some(&answer));
    h.replies.clear();
    h.submit(1, id, op.clone());
    h.submit(0, id, op.clone());
    assert_eq!(h.replies, [(id, answer.clone()), (id, answer)]);
    assert!(h.inflight.is_empty(), "no second transaction");
    for i in 0..3 {
        assert_eq!(
            [h.value(i, 1), h.value(i, 2)],
            [Some("x".into()), Some("y".into())]
        );
    }
    h.submit_next(2, put(2, "z"));
    h.deliver_all();
    h.replies.clear();
    h.submit(1, id, op);
    assert!(
        h.replies.is_empty() && h.inflight.is_empty(),
        "older: ignored"
    );
    assert_eq!(h.value(1, 1), Some("x".into()));
}

/// T1 = [get k1, put k2=t1] at n1 and T2 = [get k2, put k1=t2] at n2, both arriving
/// before any message is delivered: each reads the key the other writes.
fn start_crossed_txns(bugs: &[&'static str]) -> (Harness, RequestId, RequestId) {
    let mut h = Harness::new(3, bugs);
    let t1 = h.submit_next(0, txn(vec![get(1), put(2, "t1")]));
    let t2 = h.submit_next(1, txn(vec![get(2), put(1, "t2")]));
    (h, t1, t2)
}

/// Gray & Lamport section 2 with the read keys locked and version-checked too: whatever
/// the delivery order, two concurrent txns that each read the key the other writes never
/// both commit having read the old values (write skew); the younger dies, and retried,
/// reads the older's write: serializable, T1 then T2.
#[test]
fn section_2_crossed_txns_serialize_and_never_write_skew() {
    let orders: [Option<u16>; 4] = [None, Some(0), Some(1), Some(2)];
    for first in orders {
        let (mut h, t1, t2) = start_crossed_txns(&[]);
        if let Some(to) = first {
            h.deliver_where(|(_, dest, _)| *dest == n(to));
        }
        for _ in 0..10 {
            h.deliver_all();
            for (i, id) in [(0, t1), (1, t2)] {
                if h.node(i).retrying.contains_key(&id) {
                    h.now += Span::millis(5);
                    h.run(i, |node, ctx| node.on_timer(ctx, Timer::Retry(id)));
                }
            }
        }
        // Whether a txn's answer shows the old (absent) value of the key it read.
        let old = |r: Option<&OpResult>| match r {
            Some(OpResult::Txn { results }) => results[0] == OpResult::NotFound,
            _ => false,
        };
        assert!(
            !(old(h.reply(t1)) && old(h.reply(t2))),
            "write skew, delivering to {first:?} first"
        );
        assert_eq!(
            h.reply(t1),
            Some(&committed(vec![OpResult::NotFound, ok("t1")]))
        );
        assert_eq!(h.reply(t2), Some(&committed(vec![ok("t1"), ok("t2")])));
        for i in 0..3 {
            assert_eq!(
                [h.value(i, 1), h.value(i, 2)],
                [Some("t2".into()), Some("t1".into())]
            );
        }
    }
}

/// With `lock-only-written-keys`, Gray & Lamport section 2's participants lock only the
/// written keys: the crossed txns write disjoint keys, both prepare everywhere, and both
/// commit having read the old (absent) value of the key the other writes: write skew,
/// which no serial order explains.
#[test]
fn with_lock_only_written_keys_crossed_txns_both_commit_reading_old_values() {
    let (mut h, t1, t2) = start_crossed_txns(&["lock-only-written-keys"]);
    h.deliver_all();
    assert_eq!(
        h.reply(t1),
        Some(&committed(vec![OpResult::NotFound, ok("t1")]))
    );
    assert_eq!(
        h.reply(t2),
        Some(&committed(vec![OpResult::NotFound, ok("t2")]))
    );
    for i in 0..3 {
        assert_eq!(
            [h.value(i, 1), h.value(i, 2)],
            [Some("t2".into()), Some("t1".into())]
        );
    }
}
