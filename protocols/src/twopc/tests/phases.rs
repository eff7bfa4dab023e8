//! The two phases on a whole cluster (Gray & Lamport section 2): what is durable before each
//! send, votes and wait-die, reads behind locks, and a duplicated Prepare.

use super::*;

#[test]
fn section_2_a_write_commits_after_every_yes_vote_and_every_replica_applies_it() {
    let mut h = Harness::new(3, &[]);
    let id = h.submit_next(0, put(1, "a"));
    // Phase 1: the coordinator's own prepared record is durable before any Prepare.
    assert_eq!(&h.log()[..2], [(n(0), "persist"), (n(0), "prepare")]);
    h.deliver_where(|(_, _, m)| matches!(m, Message::Prepare { .. }));
    // Each participant persists its prepared state before it votes yes.
    for p in [n(1), n(2)] {
        let mine: Vec<&str> = h
            .log()
            .iter()
            .filter(|(f, _)| *f == p)
            .map(|x| x.1)
            .collect();
        assert_eq!(mine, ["persist", "vote"]);
        assert_eq!(
            h.node(p.0).locks.get(&1),
            Some(&TxnId {
                coordinator: n(0),
                seq: 0
            })
        );
    }
    assert!(h.reply(id).is_none(), "no answer before every vote");
    h.effects.clear();
    h.deliver_where(|(_, _, m)| matches!(m, Message::Vote { .. }));
    // Phase 2: the decision is logged before Commit leaves and before the client hears.
    let kinds: Vec<&str> = h.log().iter().map(|x| x.1).collect();
    assert_eq!(kinds, ["persist", "commit", "commit", "reply"]);
    assert_eq!(h.durable[0].as_ref().unwrap().decisions.len(), 1);
    assert_eq!(
        h.reply(id),
        Some(&ok("a"))
    );
    h.deliver_all();
    assert_eq!(
        [h.value(0, 1), h.value(1, 1), h.value(2, 1)],
        [Some("a".into()), Some("a".into()), Some("a".into())]
    );
    assert!(
        h.node(0).decisions.is_empty(),
        "forgotten once every participant acked"
    );
    assert!((0..3).all(|i| h.node(i).locks.is_empty()));
}

#[test]
fn section_2_a_read_of_a_key_prepared_here_waits_for_the_outcome() {
    let mut h = Harness::new(3, &[]);
    h.submit_next(0, put(1, "a"));
    h.deliver_where(|(_, _, m)| matches!(m, Message::Prepare { .. }));
    let read = h.submit_next(2, get(1));
    assert!(
        h.reply(read).is_none(),
        "n3 holds k1 locked: the read waits"
    );
    h.deliver_all();
    assert_eq!(
        h.reply(read),
        Some(&ok("a"))
    );
}

#[test]
fn section_2_a_participant_votes_no_on_a_younger_conflicting_prepare_and_it_aborts() {
    let mut h = Harness::new(3, &[]);
    h.submit_next(0, put(1, "a"));
    h.now += Span::millis(1);
    let late = h.submit_next(1, put(1, "b"));
    // n2's Prepare reaches n1, which holds k1 for an older transaction: n2's dies.
    h.deliver_where(|(f, _, m)| *f == n(1) && matches!(m, Message::Prepare { .. }));
    h.deliver_where(|(_, to, m)| *to == n(1) && matches!(m, Message::Vote { .. }));
    assert!(h.node(1).active.is_empty(), "aborted at the first no");
    assert!(
        h.node(1).retrying.contains_key(&late),
        "and retried after a backoff"
    );
    h.deliver_all();
    assert_eq!(h.value(2, 1), Some("a".into()));
}

/// Wait-die (Rosenkrantz, Stearns & Lewis 1978) is free of starvation only if no younger
/// transaction overtakes an older one that waits: a Prepare queued for one key keeps its
/// rank on all its keys, so a younger write that wants a key it waits for waits behind it,
/// and once the younger holder is gone the older one prepares (swarm.toml seed 974: the
/// oldest txn waited at two participants while 40 younger local ones took its keys in
/// turn, for its whole vote timeout, and was refused as if a node were unreachable).
#[test]
fn wait_die_an_older_prepare_waiting_for_a_lock_is_not_overtaken_by_younger_writes() {
    let mut h = Harness::new(3, &[]);
    let old = h.submit_next(0, txn(vec![put(1, "a"), put(2, "b")]));
    h.now += Span::millis(1);
    h.submit_next(1, put(1, "h"));
    // The older txn's Prepare reaches n2, which holds k1 for the younger n2.0: it waits.
    h.deliver_where(|(f, to, _)| (*f, *to) == (n(0), n(1)));
    let (older, younger) = (
        TxnId { coordinator: n(0), seq: 0 },
        TxnId { coordinator: n(1), seq: 0 },
    );
    assert!(h.node(1).queued.contains_key(&older));
    // A younger write of k2, free at n2 but awaited by the older txn, reaches n2.
    h.now += Span::millis(1);
    let late = h.submit_next(1, put(2, "w"));
    assert!(
        !h.node(1).locks.contains_key(&2),
        "the younger write does not take k2 from under the waiting older txn"
    );
    // The younger holder of k1 aborts: the older txn prepares at n2 at once.
    h.run(1, |node, ctx| node.on_timer(ctx, Timer::Votes(younger)));
    assert!(
        h.node(1).prepared.contains_key(&older),
        "queued: {:?}",
        h.node(1).queued.keys().collect::<Vec<_>>()
    );
    h.deliver_all();
    assert_eq!(h.reply(old), Some(&committed(vec![ok("a"), ok("b")])));
    assert_eq!(h.reply(late), Some(&ok("w")), "then the younger write commits");
    for i in 0..3 {
        assert_eq!(h.value(i, 2).as_deref(), Some("w"), "n{}", i + 1);
    }
}

/// Wait-die: an older transaction that waits at a participant for a younger one waits out
/// the younger's round before its vote can come back. The participant says so
/// ([`Message::Waits`]), and the coordinator, its vote timeout passed with only waiting voters
/// missing, waits up to [`WAIT_VOTES`] timeouts instead of aborting as if a node were down
/// (`scenarios/contention/hot-key.toml` with two clients on 1-40ms links refused writes on
/// every seed of 1..=10 without it). A missing voter that said nothing still aborts it.
#[test]
fn wait_die_a_coordinator_waits_longer_for_votes_that_wait_for_a_younger_transaction() {
    let mut h = Harness::new(3, &[]);
    let old = h.submit_next(0, put(1, "a"));
    h.now += Span::millis(1);
    h.submit_next(1, put(1, "h"));
    let (older, younger) = (
        TxnId { coordinator: n(0), seq: 0 },
        TxnId { coordinator: n(1), seq: 0 },
    );
    // The older Prepare reaches n2, which holds k1 for the younger: it waits, and says so.
    h.deliver_where(|(f, to, _)| (*f, *to) == (n(0), n(1)));
    assert!(h.node(1).queued.contains_key(&older));
    h.deliver_where(|(f, to, m)| {
        (*f, *to) == (n(1), n(0)) && matches!(m, Message::Waits { .. })
    });
    assert!(h.node(0).active[&older].waits_at.contains(&n(1)));
    // n3 votes yes for the older; the vote timeout passes with only n2's (waiting) vote
    // missing: the coordinator extends its deadline.
    h.deliver_where(|(f, to, _)| (*f, *to) == (n(0), n(2)));
    h.deliver_where(|(f, to, m)| (*f, *to) == (n(2), n(0)) && matches!(m, Message::Vote { .. }));
    h.run(0, |node, ctx| node.on_timer(ctx, Timer::Votes(older)));
    assert!(
        h.node(0).active.contains_key(&older),
        "still collecting votes after one vote timeout"
    );
    // The younger aborts (its Prepare meets the older's lock at n1); n2 then votes yes.
    h.run(1, |node, ctx| node.on_timer(ctx, Timer::Votes(younger)));
    h.deliver_all();
    assert_eq!(h.reply(old), Some(&ok("a")));
    for i in 0..3 {
        assert_eq!(h.value(i, 1).as_deref(), Some("a"), "n{}", i + 1);
    }

    // A voter that says nothing (down, or cut off) is not waited for.
    let mut h = Harness::new(3, &[]);
    let lone = h.submit_next(0, put(1, "b"));
    let txn = TxnId { coordinator: n(0), seq: 0 };
    h.deliver_where(|(f, to, _)| (*f, *to) == (n(0), n(2)));
    h.deliver_where(|(f, to, _)| (*f, *to) == (n(2), n(0)));
    h.run(0, |node, ctx| node.on_timer(ctx, Timer::Votes(txn)));
    assert!(!h.node(0).active.contains_key(&txn), "aborted at the first timeout");
    assert!(h.reply(lone).is_none() || h.reply(lone) != Some(&ok("b")));
}

/// Module doc, "Why versions": a duplicated Prepare of a transaction the participant already
/// committed finds a newer version of its key and is voted down, not applied twice.
#[test]
fn a_duplicated_prepare_of_a_committed_append_is_voted_down_not_applied_twice() {
    let mut h = Harness::new(2, &[]);
    let append = append(1, "x");
    h.submit_next(0, append);
    let prepare = h.inflight[0].clone();
    h.deliver_all();
    assert_eq!(h.value(1, 1), Some("x".into()));
    h.inflight.push(prepare);
    h.deliver_all();
    assert_eq!(
        [h.value(0, 1), h.value(1, 1)],
        [Some("x".into()), Some("x".into())]
    );
    assert!(h.node(1).locks.is_empty());
}

/// With `release-lock-before-decision`, a participant gives up the lock that section 2 makes
/// it hold until the outcome: a read after the client's answer sees the old value.
#[test]
fn with_release_lock_before_decision_a_participant_reads_the_old_value_after_the_ack() {
    let mut h = Harness::new(3, &["release-lock-before-decision"]);
    let id = h.submit_next(0, put(1, "a"));
    h.deliver_where(|(_, _, m)| !matches!(m, Message::Commit { .. }));
    assert_eq!(
        h.reply(id),
        Some(&ok("a"))
    );
    let read = h.submit_next(2, get(1));
    assert_eq!(
        h.reply(read),
        Some(&OpResult::NotFound),
        "stale: not linearizable"
    );
}

/// Contention goes home (module doc): a write voted down for a key's lock is handed to the
/// key's home node (k1's is n1, the second of three), keeping its rank; the home parks it
/// behind its local lock rather than dying there, and serves it once the older transaction
/// committed, without a second vote round lost to the same conflict. Primary-copy locking,
/// Bernstein, Hadzilacos & Goodman 1987, section 8.4.
#[test]
fn contention_a_write_voted_down_goes_to_its_keys_home_and_commits_there() {
    let mut h = Harness::new(3, &[]);
    let first = h.submit_next(0, put(1, "a"));
    h.now += Span::millis(1);
    let late = h.submit_next(2, put(1, "b"));
    assert_eq!(h.node(2).home_of(&put(1, "b")), n(1));
    // n2's Prepare reaches n0, which holds k1 for the older transaction: voted no.
    h.deliver_where(|(f, to, m)| (*f, *to) == (n(2), n(0)) && matches!(m, Message::Prepare { .. }));
    h.deliver_where(|(f, to, m)| (*f, *to) == (n(0), n(2)) && matches!(m, Message::Vote { .. }));
    assert!(h.node(2).retrying.is_empty(), "not retried at n2");
    assert!(
        h.inflight.iter().any(|(f, to, m)| (*f, *to) == (n(2), n(1))
            && matches!(m, Message::Forward { request, .. } if request.id == late)),
        "handed to k1's home"
    );
    h.deliver_all();
    assert_eq!(h.reply(first), Some(&ok("a")));
    assert_eq!(h.reply(late), Some(&ok("b")));
    assert!(h.node(1).stats().committed >= 1, "the home coordinated it");
    assert_eq!(
        [h.value(0, 1), h.value(1, 1), h.value(2, 1)],
        [Some("b".into()), Some("b".into()), Some("b".into())]
    );
}

/// A write parked behind a lock keeps waiting past `retry_for` while transactions commit on
/// its key (a queue that moves is served in turn), where it used to be dropped once it had
/// waited `retry_for` in all: `contention/hot-key.toml`'s ten clients on one key lost the
/// writes queued 400 ms at their home. A lock that does not move still ends the wait.
#[test]
fn contention_a_parked_write_outwaits_retry_for_while_its_key_commits() {
    let mut h = Harness::new(3, &[]);
    let seq = |m: &Message| match m {
        Message::Prepare { txn, .. }
        | Message::Vote { txn, .. }
        | Message::Commit { txn }
        | Message::Abort { txn }
        | Message::Ack { txn }
        | Message::Waits { txn }
        | Message::QueryOutcome { txn } => Some(txn.seq),
        _ => None,
    };
    // Three writes of k1 at n1: the first runs, the other two park.
    let writes = ["a", "b", "p"].map(|v| h.submit_next(1, put(1, v)));
    assert_eq!(h.node(1).parked.get(&1).map(|q| q.len()), Some(2));
    // 250 ms later the first commits; the second runs and the third parks again.
    h.tick(250);
    h.deliver_where(|(_, _, m)| seq(m) == Some(0));
    assert_eq!(h.reply(writes[0]), Some(&ok("a")));
    assert_eq!(h.node(1).parked.get(&1).map(|q| q.len()), Some(1));
    // 500 ms after it arrived, past `retry_for` (400 ms), the third still waits.
    h.tick(250);
    assert_eq!(h.node(1).stats().given_up, 0);
    h.deliver_all();
    assert_eq!(h.reply(writes[1]), Some(&ok("b")));
    assert_eq!(h.reply(writes[2]), Some(&ok("p")));
    // A lock that stays put for `retry_for` still ends the wait.
    let stuck = h.submit_next(1, put(1, "s"));
    let waiting = h.submit_next(1, put(1, "w"));
    h.tick(400);
    assert!(h.reply(stuck).is_none());
    assert_eq!(h.node(1).stats().given_up, 1, "{waiting} given up");
}

/// The invariants over the locks, the prepared records, the queued and the collecting
/// transactions are judged again only once one of those changed (each change is counted):
/// a lock without a prepared write is found at the next judgement, however many unchanged
/// judgements came before, and its removal clears it.
#[test]
fn the_lock_and_record_invariants_are_judged_again_once_one_of_them_changed() {
    let mut h = Harness::new(3, &[]).unchecked();
    h.submit_next(0, put(1, "a"));
    h.deliver_all();
    for _ in 0..3 {
        assert!(h.node(0).check_invariants().is_ok());
    }
    let stray = TxnId {
        coordinator: n(1),
        seq: 7,
    };
    h.run(0, |node, _| {
        node.locks.get_mut().insert(9, stray);
    });
    let broken = h.node(0).check_invariants().unwrap_err();
    assert!(broken.starts_with("k9 locked by"), "{broken}");
    assert_eq!(h.node(0).check_invariants().unwrap_err(), broken);
    h.run(0, |node, _| {
        node.locks.get_mut().remove(&9);
    });
    assert!(h.node(0).check_invariants().is_ok());
}
