//! Client retries and refusals (module doc, "Refusing a write"): a copy of a request is never
//! applied twice, and a refusal is given only when it can be kept.

use super::*;

/// Regression, nemesis.toml seed 1: a client timed out on a paused coordinator and sent
/// the same request (same id) to another node; both copies must not apply.
#[test]
fn a_copy_of_a_committed_write_sent_to_another_node_is_answered_not_applied_again() {
    let mut h = Harness::new(3, &[]);
    let append = append(1, "x");
    let id = h.submit_next(0, append.clone());
    h.deliver_all();
    h.replies.clear();
    h.submit(1, id, append);
    assert_eq!(
        h.reply(id),
        Some(&ok("x")),
        "the first answer, again"
    );
    assert!(h.inflight.is_empty(), "no second transaction");
    assert_eq!(
        [h.value(0, 1), h.value(1, 1)],
        [Some("x".into()), Some("x".into())]
    );
}

/// Regression, partition.toml seed 3: a write refused as unavailable ("definitely not
/// applied") while a copy of it, at another node, was still to commit.
#[test]
fn a_write_refused_with_a_node_down_is_never_applied_by_a_copy_sent_elsewhere() {
    let mut h = Harness::new(3, &[]);
    h.crash(2);
    let write = h.submit_next(1, put(1, "b"));
    let txn = TxnId {
        coordinator: n(1),
        seq: 0,
    };
    h.run(1, |node, ctx| node.on_timer(ctx, Timer::Votes(txn)));
    h.now += Span::millis(400);
    h.run(1, |node, ctx| node.on_timer(ctx, Timer::Retry(write)));
    assert_eq!(h.reply(write), Some(&OpResult::Unavailable { hint: None }));
    assert_eq!(
        h.durable[1].as_ref().unwrap().refused[&write.client],
        write.seq
    );
    h.recover(2);
    h.deliver_all();
    // The client's copy at n1 prepares there and at n3; n2 votes it down. Voted down, n1
    // hands it to k1's home, n2, which refuses it again.
    h.submit(0, write, put(1, "b"));
    h.deliver_all();
    assert_eq!(
        [h.value(0, 1), h.value(1, 1), h.value(2, 1)],
        [None, None, None]
    );
    let answers: Vec<&OpResult> = (h.replies.iter())
        .filter(|(r, _)| *r == write)
        .map(|(_, a)| a)
        .collect();
    assert!(!answers.is_empty(), "refused");
    assert!(
        answers
            .iter()
            .all(|a| **a == OpResult::Unavailable { hint: None }),
        "{answers:?}"
    );
}

/// A write voted down until `retry_for` passed is dropped in silence: a refusal would
/// also doom the client's retry elsewhere, which may commit.
#[test]
fn a_write_voted_down_too_long_is_dropped_in_silence() {
    let mut h = Harness::new(3, &[]);
    h.submit_next(0, put(1, "a"));
    h.now += Span::millis(1);
    let write = h.submit_next(1, put(1, "b"));
    // n1 holds k1 for the older transaction: n2's dies, and is retried later.
    h.deliver_where(|(f, _, m)| *f == n(1) && matches!(m, Message::Prepare { .. }));
    h.deliver_where(|(_, to, m)| *to == n(1) && matches!(m, Message::Vote { .. }));
    h.deliver_all();
    h.now += Span::millis(400);
    h.run(1, |node, ctx| node.on_timer(ctx, Timer::Retry(write)));
    assert_eq!(h.node(1).stats().given_up, 1);
    assert!(h.reply(write).is_none());
    assert!(h.node(1).refused.is_empty());
}

/// A participant blocked by an in-doubt transaction refuses the writes and reads waiting
/// for its lock: every replica holds that lock, a retry elsewhere would wait too.
#[test]
fn a_write_waiting_for_an_in_doubt_lock_is_refused_and_so_is_a_read() {
    let mut h = Harness::new(3, &[]);
    h.submit_next(0, put(1, "a"));
    h.deliver_where(|(_, _, m)| matches!(m, Message::Prepare { .. }));
    let write = h.submit_next(1, put(1, "b"));
    let read = h.submit_next(1, get(1));
    h.tick(400);
    assert_eq!(h.node(1).stats().given_up, 2);
    let refused = OpResult::Unavailable { hint: None };
    assert_eq!(
        [h.reply(write), h.reply(read)],
        [Some(&refused), Some(&refused)]
    );
    assert_eq!(h.node(1).refused[&write.client], write.seq);
}

/// Module doc, "Refusing a write": a node holding a copy of the request prepared stays
/// silent, as that copy may still commit.
#[test]
fn a_write_whose_copy_is_prepared_here_is_not_refused() {
    let mut h = Harness::new(3, &[]);
    let write = h.submit_next(0, put(1, "a"));
    h.deliver_where(|(_, _, m)| matches!(m, Message::Prepare { .. }));
    // A copy of the same request reaches n2, which holds it prepared for n1's transaction.
    h.submit(1, write, put(1, "a"));
    h.tick(400);
    assert_eq!(h.node(1).stats().given_up, 1);
    assert!(h.reply(write).is_none(), "it may commit: silent");
    h.deliver_all();
    assert!(matches!(h.reply(write), Some(OpResult::Ok { .. })));
    assert_eq!(h.value(1, 1), Some("a".into()));
}
