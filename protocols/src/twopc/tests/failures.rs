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

/// Node `i` restarts from a log whose record after `kept` (the state of an earlier sync)
/// fails its checksum, as `disk-faults.toml`'s corrupt fault leaves it.
fn restart_damaged(h: &mut Harness, i: u16, kept: Option<TwoPcDurable>) {
    h.crash(i);
    h.durable[usize::from(i)] = kept;
    let lost = TwoPcRecord::Snapshot(TwoPcDurable::default());
    let read = Read::Corrupt {
        written: &lost,
        flip: 1,
    };
    let config = h.configs[usize::from(i)].clone();
    TwoPc::recover(&mut h.durable[usize::from(i)], read, &config);
    h.recover(i);
    assert!(h.node(i).rebuild.is_some(), "rebuilding");
}

fn values(h: &Harness, key: Key) -> Vec<Option<String>> {
    (0..h.nodes.len() as u16).map(|i| h.value(i, key)).collect()
}

fn all(value: &str, count: usize) -> Vec<Option<String>> {
    vec![Some(value.to_string()); count]
}

/// Bernstein, Hadzilacos & Goodman ch. 7 (recovery with the termination protocol): a
/// participant whose log lost its yes vote and the commit it applied votes no while it
/// rebuilds, then takes the committed state from its peers and serves it.
#[test]
fn bhg_7_a_participant_that_lost_its_log_rebuilds_from_its_peers() {
    let mut h = Harness::new(3, &[]);
    let before = h.durable[2].clone();
    h.submit_next(0, put(1, "a"));
    h.deliver_all();
    assert_eq!(values(&h, 1), all("a", 3));
    restart_damaged(&mut h, 2, before);
    assert_eq!(h.value(2, 1), None, "the lost records held the commit");
    // While it rebuilds it answers no read from what it kept.
    h.run(1, |node, ctx| node.on_timer(ctx, Timer::Tick));
    let read = h.submit_next(2, get(1));
    assert_eq!(h.reply(read), Some(&OpResult::Unavailable { hint: None }));
    h.deliver_all();
    assert!(h.node(2).rebuild.is_none() && !h.node(2).damaged);
    assert!(h.durable[2].as_ref().is_some_and(|d| !d.damaged), "the rebuild is logged");
    let read = h.submit_next(2, get(1));
    assert_eq!(h.reply(read), Some(&ok("a")));
    let id = h.submit_next(2, put(1, "b"));
    h.deliver_all();
    assert_eq!(h.reply(id), Some(&ok("b")));
    assert_eq!(values(&h, 1), all("b", 3));
}

/// Section 2: the TM's decision must survive its failure. A coordinator whose log lost its
/// commit record must not presume abort (one participant applied the commit): a replica at
/// `base + 1` shows the commit, which it logs again and sends to the one still in doubt.
#[test]
fn section_2_a_coordinator_that_lost_its_commit_record_learns_it_from_the_data() {
    let mut h = Harness::new(3, &[]);
    h.submit_next(0, put(1, "a"));
    let prepared = h.durable[0].clone();
    h.deliver_where(|(_, _, m)| matches!(m, Message::Prepare { .. } | Message::Vote { .. }));
    // Decided: the commit reaches n2 only; n3 stays in doubt.
    h.drop_where(|(_, to, m)| *to == n(2) && matches!(m, Message::Commit { .. }));
    h.deliver_all();
    assert_eq!(values(&h, 1), [Some("a".into()), Some("a".into()), None]);
    restart_damaged(&mut h, 0, prepared);
    h.deliver_all();
    for _ in 0..3 {
        h.tick(10);
        h.deliver_all();
    }
    assert_eq!(values(&h, 1), all("a", 3));
    assert!(h.node(2).prepared.is_empty());
    assert_eq!(h.node(0).liveness_forfeit(), None, "nothing was lost for good");
}

/// What 2PC cannot survive: a coordinator's log lost its decision and no participant heard
/// it (every one still holds the transaction prepared). Committing could undo a refusal,
/// aborting could lose an acknowledged write: it answers nothing, and they block (section 2).
#[test]
fn section_2_a_decision_no_participant_heard_is_lost_with_the_log_and_they_block() {
    let mut h = Harness::new(3, &[]);
    let id = h.submit_next(0, put(1, "a"));
    let prepared = h.durable[0].clone();
    h.deliver_where(|(_, _, m)| matches!(m, Message::Prepare { .. } | Message::Vote { .. }));
    assert_eq!(h.reply(id), Some(&ok("a")), "acknowledged");
    h.inflight.clear();
    restart_damaged(&mut h, 0, prepared);
    for _ in 0..20 {
        h.tick(10);
        h.deliver_all();
    }
    assert_eq!(h.node(1).prepared.len(), 1);
    assert_eq!(h.node(2).prepared.len(), 1);
    assert_eq!(values(&h, 1), [None, None, None]);
    // It says so, and the run then does not promise liveness (Protocol::liveness_forfeit).
    let why = h.node(0).liveness_forfeit().expect("the loss is reported");
    assert!(why.starts_with("lost the decision of n1.0"), "{why}");
    assert_eq!(h.node(1).liveness_forfeit(), None);
}

/// The damaged record may be the coordinator's decision itself while a later one survived (an
/// ack's, which logs the decision again with fewer participants pending): the intact log then
/// holds the decision *and* the coordinator's own prepared record that the decision released.
/// The rebuild resolves that record by the logged decision, or the key stays locked at the
/// coordinator for good (`scenarios/disk-faults.toml` seed 128: every write of k25 refused).
#[test]
fn section_2_a_coordinator_whose_log_kept_its_decision_but_lost_its_release_frees_the_keys() {
    let mut h = Harness::new(3, &[]);
    h.submit_next(0, put(1, "a"));
    let prepared = h.durable[0].clone().expect("prepared record");
    h.deliver_where(|(_, _, m)| matches!(m, Message::Prepare { .. } | Message::Vote { .. }));
    // Decided: the commit reaches n2 only; n3 stays in doubt and the decision pending.
    h.drop_where(|(_, to, m)| *to == n(2) && matches!(m, Message::Commit { .. }));
    h.deliver_all();
    let decided = h.durable[0].clone().expect("decision record");
    let mut kept = prepared;
    kept.decisions = decided.decisions;
    assert!(!kept.decisions.is_empty() && !kept.prepared.is_empty());
    restart_damaged(&mut h, 0, Some(kept));
    for _ in 0..3 {
        h.tick(10);
        h.deliver_all();
    }
    assert_eq!(values(&h, 1), all("a", 3));
    for i in 0..3 {
        assert!(h.node(i).prepared.is_empty(), "n{} holds a record", i + 1);
        assert!(h.node(i).locks.is_empty(), "n{} holds a lock", i + 1);
    }
    let id = h.submit_next(0, put(1, "b"));
    h.deliver_all();
    assert_eq!(h.reply(id), Some(&ok("b")));
    assert_eq!(values(&h, 1), all("b", 3));
}
