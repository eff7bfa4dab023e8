//! Coordinator failures (Gray & Lamport section 2: 2PC blocks on the TM's failure): halts
//! after Prepare and after the decision, restarts from the log, presumed abort.

use super::*;

#[test]
fn section_2_a_participant_blocks_while_the_coordinator_is_down_after_prepare() {
    let mut h = Harness::new(3, &[]);
    h.run(0, |node, ctx| {
        node.on_operator(ctx, Operator::StopAfterPrepare)
    });
    h.submit_next(0, put(1, "a"));
    assert!(h.is_down(0), "halted right after sending Prepare");
    h.deliver_all();
    // The participants voted yes and cannot decide alone: they keep the lock and ask.
    for _ in 0..20 {
        h.tick(10);
        h.deliver_all();
    }
    assert_eq!(h.node(1).prepared.len(), 1);
    let read = h.submit_next(1, get(1));
    assert!(h.reply(read).is_none());
    assert!(
        h.node(1).prepared[&TxnId {
            coordinator: n(0),
            seq: 0
        }]
            .queries
            > 0
    );
    // Back from its log, the coordinator aborts what it never decided (presumed abort).
    h.recover(0);
    h.deliver_all();
    assert!(h.node(1).prepared.is_empty() && h.node(2).prepared.is_empty());
    assert_eq!(h.reply(read), Some(&OpResult::NotFound));
    let stats = h.node(1).stats();
    assert_eq!(stats.blocked, 1);
    assert!(stats.blocked_us_max >= 200_000, "{stats:?}");
    assert_eq!(h.node(0).stats().aborted, 1);
}

#[test]
fn section_2_a_coordinator_restarted_after_logging_commit_resends_it() {
    let mut h = Harness::new(3, &[]);
    h.run(0, |node, ctx| {
        node.on_operator(ctx, Operator::StopAfterDecision)
    });
    let id = h.submit_next(0, put(1, "a"));
    h.deliver_all();
    assert!(h.is_down(0), "halted after logging the decision");
    assert!(
        h.reply(id).is_none(),
        "outcome unknown to the client: it times out"
    );
    h.recover(0);
    h.tick(10);
    h.deliver_all();
    assert_eq!(
        [h.value(0, 1), h.value(1, 1), h.value(2, 1)],
        [Some("a".into()), Some("a".into()), Some("a".into())]
    );
}

/// With `coordinator-forgets-decision`, the decision does not survive the coordinator's
/// failure as section 2 requires: restarted, it presumes abort of a transaction it committed.
#[test]
fn with_coordinator_forgets_decision_a_restarted_coordinator_presumes_abort_of_a_commit() {
    let mut h = Harness::new(3, &["coordinator-forgets-decision"]);
    h.run(0, |node, ctx| {
        node.on_operator(ctx, Operator::StopAfterDecision)
    });
    h.submit_next(0, put(1, "a"));
    h.deliver_all();
    h.recover(0);
    for _ in 0..3 {
        h.tick(10);
        h.deliver_all();
    }
    // The coordinator applied its commit; the participants were told "abort".
    assert_eq!([h.value(0, 1), h.value(1, 1)], [Some("a".into()), None]);
    assert_ne!(h.node(0).digest(), h.node(1).digest());
}
