//! Majority's unit tests, on the shared hand-driven cluster (`testkit::Cluster`): messages
//! wait in flight until a test delivers or drops them, timers fire only when a test fires
//! them, and invariants hold after every handler.

use super::*;
use crate::kv::Op;
use crate::params::Params;
use crate::testkit::{append, configs, get, n, ok, put, req, Cluster};

/// A hand-driven cluster ([`Cluster`]): sends wait until a test delivers or drops them,
/// timers fire only when a test fires them, invariants hold after every handler.
type Harness = Cluster<Majority>;

fn harness(count: u16, bugs: &[&'static str]) -> Harness {
    let params = Params::defaults(Majority::info().params);
    Cluster::boot_all(configs(count, &params, bugs), |_| {})
}

/// A cluster whose coordinators run every write themselves, as with no distinguished
/// proposer: what safety must survive (two proposers of one key), and the coordinator's own
/// queue and sessions, tested without forwarding in the way.
fn leaderless(count: u16) -> Harness {
    let mut params = Params::defaults(Majority::info().params);
    params.set(
        "distinguished_proposer",
        crate::params::ParamValue::Bool(false),
    );
    Cluster::boot_all(configs(count, &params, &[]), |_| {})
}

/// The Prepares in flight for `key`, by sender.
fn prepares_from(h: &Harness, key: Key) -> Vec<NodeId> {
    h.inflight
        .iter()
        .filter(|(_, _, m)| matches!(m, Message::Prepare { key: k, .. } if *k == key))
        .map(|(from, _, _)| *from)
        .collect()
}

#[test]
fn quorums_default_to_majorities_and_reject_non_intersecting_ones() {
    assert_eq!(quorums(5, 0, 0, false), (3, 3, None));
    assert_eq!(quorums(5, 2, 4, false), (2, 4, None));
    assert!(quorums(5, 2, 3, false).2.is_some(), "R + W = N");
    assert!(quorums(4, 3, 2, false).2.is_some(), "W = N/2");
    // weak-quorum: R = N - W, accepted as the bug wants.
    assert_eq!(quorums(5, 0, 0, true), (2, 3, None));
}

#[test]
fn abd_a_read_writes_back_a_value_found_on_a_minority_before_answering() {
    // ABD section 4: the read's second phase makes a value it returns reach a quorum.
    let mut h = harness(5, &[]);
    h.submit(0, req(0, 1), put(1, "a"));
    h.deliver_where(|(_, _, m)| !matches!(m, Message::Accept { .. }));
    // Phase 2 reaches n2 only (n1's own acceptor took it too): on 2 of 5 replicas.
    h.deliver_where(|(_, to, m)| matches!(m, Message::Accept { .. }) && *to == n(1));
    h.inflight.clear();
    assert_eq!(h.reply(req(0, 1)), None);
    // A read at n2 whose query reaches n1, n2, n3 sees "a" on two of them, not chosen.
    h.submit(1, req(1, 1), get(1));
    h.deliver_where(|(_, to, m)| matches!(m, Message::Query { .. }) && to.0 <= 2);
    h.inflight
        .retain(|(_, _, m)| !matches!(m, Message::Query { .. }));
    h.deliver_where(|(_, _, m)| matches!(m, Message::QueryReply { .. }));
    assert_eq!(h.reply(req(1, 1)), None, "not before the write-back");
    h.deliver_all();
    assert_eq!(h.reply(req(1, 1)), Some(&ok("a")));
    let holding = (0..5).filter(|i| h.value(*i, 1).as_deref() == Some("a"));
    assert!(holding.count() >= 3, "on a write quorum once read");
}

#[test]
fn with_skip_read_write_back_a_later_read_returns_the_older_value() {
    let mut h = harness(5, &["skip-read-write-back"]);
    h.submit(0, req(0, 1), put(1, "a"));
    h.deliver_all();
    h.submit(0, req(0, 2), put(1, "b"));
    h.deliver_where(|(_, _, m)| !matches!(m, Message::Accept { .. }));
    h.deliver_where(|(_, to, m)| matches!(m, Message::Accept { .. }) && *to == n(1));
    h.inflight.clear();
    // A read through n1, n2, n3 returns "b" (only on n1, n2)...
    h.submit(2, req(1, 1), get(1));
    h.deliver_where(|(_, to, m)| matches!(m, Message::Query { .. }) && to.0 <= 1);
    h.inflight
        .retain(|(_, _, m)| !matches!(m, Message::Query { .. }));
    h.deliver_all();
    assert_eq!(h.reply(req(1, 1)), Some(&ok("b")));
    // ... and a later read through n3, n4, n5 returns "a": a new-old inversion.
    h.submit(3, req(2, 1), get(1));
    h.inflight.retain(|(_, to, _)| to.0 >= 2);
    h.deliver_all();
    assert_eq!(h.reply(req(2, 1)), Some(&ok("a")));
}

#[test]
fn casp_concurrent_cas_on_one_key_cannot_both_succeed() {
    // Plain ABD's read-modify-write would let both succeed; the promise of phase 1 orders
    // them (CASPaxos, section 2), even when two coordinators run them at once.
    let mut h = leaderless(5);
    h.submit(0, req(0, 1), put(1, "a"));
    h.deliver_all();
    let cas = |new: &str| Op::Cas {
        key: 1,
        expected: "a".into(),
        new: new.into(),
    };
    h.submit(0, req(1, 1), cas("x"));
    h.submit(4, req(2, 1), cas("y"));
    h.deliver_all();
    for _ in 0..20 {
        h.now += Span::millis(40);
        for i in 0..5 {
            for op in h.nodes[usize::from(i)]
                .pending
                .keys()
                .copied()
                .collect::<Vec<_>>()
            {
                h.timer(i, Timer::Retry(op));
            }
        }
        h.deliver_all();
    }
    let results = [h.reply(req(1, 1)).cloned(), h.reply(req(2, 1)).cloned()];
    let won = results
        .iter()
        .filter(|r| matches!(r, Some(OpResult::Ok { .. })))
        .count();
    assert_eq!(won, 1, "{results:?}");
    assert!(
        results.iter().all(|r| r.is_some()),
        "both answered: {results:?}"
    );
}

#[test]
fn a_coordinator_runs_one_round_per_key_and_queues_its_other_writes() {
    // Paxos Made Simple, section 2.4: two proposers can duel forever; a node's own
    // writes of one key must not be two of them.
    let mut h = leaderless(3);
    h.submit(0, req(1, 1), put(1, "a"));
    h.submit(0, req(2, 1), put(1, "b"));
    h.submit(0, req(3, 1), put(2, "c"));
    let prepares = |h: &Harness, key: Key| {
        h.inflight
            .iter()
            .filter(|(_, _, m)| matches!(m, Message::Prepare { key: k, .. } if *k == key))
            .count()
    };
    // One round for key 1 (to each of the 2 peers), one for key 2: the second write of
    // key 1 waits.
    assert_eq!(prepares(&h, 1), 2);
    assert_eq!(prepares(&h, 2), 2);
    h.deliver_all();
    // The first write's commit started the queued one, which then completed too.
    assert_eq!(h.reply(req(1, 1)), Some(&ok("a")));
    assert_eq!(h.reply(req(2, 1)), Some(&ok("b")));
    assert_eq!(h.reply(req(3, 1)), Some(&ok("c")));
    for i in 0..3 {
        assert_eq!(h.value(i, 1).as_deref(), Some("b"), "n{}", i + 1);
    }
}

#[test]
fn a_clients_retry_at_another_coordinator_applies_once() {
    let mut h = leaderless(5);
    h.submit(0, req(0, 1), put(1, ""));
    h.deliver_all();
    let append = append(1, "x;");
    // The first try's value reaches a write quorum, but every answer to n1 is lost.
    h.submit(0, req(3, 7), append.clone());
    h.deliver_where(|(_, _, m)| !matches!(m, Message::Accept { .. }));
    h.deliver_where(|(_, to, m)| matches!(m, Message::Accept { .. }) && to.0 <= 2);
    h.inflight.clear();
    assert_eq!(h.reply(req(3, 7)), None);
    // The client retries the same request at n5: it finds it applied.
    h.submit(4, req(3, 7), append);
    h.deliver_all();
    assert_eq!(h.reply(req(3, 7)), Some(&ok("x;")));
    assert_eq!(h.value(4, 1).as_deref(), Some("x;"));
}

#[test]
fn a_minority_answers_gets_unavailable_and_leaves_writes_unanswered() {
    let mut h = harness(5, &[]);
    h.submit(0, req(0, 1), get(1));
    h.submit(0, req(0, 2), put(1, "a"));
    // Only n2 hears n1: a minority.
    h.deliver_where(|(_, to, _)| to.0 <= 1);
    h.inflight.clear();
    let ops: Vec<u64> = h.nodes[0].pending.keys().copied().collect();
    for op in ops {
        h.timer(0, Timer::Deadline(op));
    }
    assert_eq!(
        h.reply(req(0, 1)),
        Some(&OpResult::Unavailable { hint: None })
    );
    assert_eq!(
        h.reply(req(0, 2)),
        None,
        "a retry elsewhere may have written it"
    );
    assert!(h.nodes[0].pending.is_empty());
}

#[test]
fn an_acknowledged_write_survives_the_restart_of_every_replica() {
    let mut h = harness(3, &[]);
    h.submit(0, req(0, 1), put(1, "a"));
    h.deliver_all();
    assert_eq!(h.reply(req(0, 1)), Some(&ok("a")));
    for i in 0..3 {
        h.restart(i);
    }
    h.submit(2, req(1, 1), get(1));
    h.deliver_all();
    assert_eq!(h.reply(req(1, 1)), Some(&ok("a")));
    // And a new ballot orders after every one issued before the crash.
    h.submit(0, req(0, 2), put(1, "b"));
    h.deliver_all();
    assert_eq!(h.reply(req(0, 2)), Some(&ok("b")));
}

#[test]
fn a_tricked_replica_is_repaired_by_anti_entropy_and_never_read() {
    let mut h = harness(3, &[]);
    h.submit(0, req(0, 1), put(1, "a"));
    h.deliver_all();
    let trick = Operator::TrickValue {
        key: 1,
        value: "tricked".into(),
    };
    h.run(2, |node, ctx| node.on_operator(ctx, trick));
    assert_eq!(h.value(2, 1).as_deref(), Some("tricked"));
    // A read through n3 and n1 never answers the corrupt copy.
    h.submit(2, req(1, 1), get(1));
    h.deliver_all();
    assert_eq!(h.reply(req(1, 1)), Some(&ok("a")));
    for _ in 0..2 {
        h.timer(2, Timer::AntiEntropy);
        h.deliver_all();
    }
    assert_eq!(h.value(2, 1).as_deref(), Some("a"));
    assert_eq!(h.nodes[0].digest(), h.nodes[2].digest());
}

/// Paxos Made Simple, section 2.4 ("to guarantee progress, a distinguished proposer must be
/// selected as the only one to try issuing proposals"): writes of one key reaching every
/// node are all forwarded to the key's proposer (key 0: n1), which alone sends Prepares,
/// runs the writes queued behind its round together in the next one, and answers them all
/// through the nodes they reached; each append applies once.
#[test]
fn paxos_2_4_writes_of_a_key_reaching_every_node_go_to_its_distinguished_proposer() {
    let mut h = harness(5, &[]);
    for i in 0..5u16 {
        h.submit(i, req(u32::from(i), 1), append(0, &format!("{i};")));
    }
    let mut rounds = 0;
    // Ends: every round chooses the writes queued behind it.
    for _ in 0..10 {
        let from = prepares_from(&h, 0);
        assert!(from.iter().all(|f| *f == n(0)), "only the proposer prepares: {from:?}");
        if !from.is_empty() {
            rounds += 1;
        }
        if h.deliver_where(|w| !matches!(w.2, Message::Accepted { .. })) == 0
            && h.deliver_all() == 0
        {
            break;
        }
    }
    let mut parts: Vec<String> = Vec::new();
    for i in 0..5u16 {
        let answer = h.reply(req(u32::from(i), 1)).cloned();
        assert!(matches!(answer, Some(OpResult::Ok { .. })), "n{} {answer:?}", i + 1);
        parts.push(format!("{i};"));
    }
    let value = h.value(0, 0).expect("written");
    for part in &parts {
        assert_eq!(value.matches(part.as_str()).count(), 1, "{value}");
    }
    assert!(rounds <= 3, "writes queued behind a round share the next: {rounds} rounds");
}

/// Section 2.4 also says the distinguished proposer must be chosen again when it fails: a
/// proposer that does not acknowledge a forward within `forward_timeout` is suspected, the
/// write goes to the key's next proposer and is answered; a message from the silent node
/// ends the suspicion.
#[test]
fn paxos_2_4_a_silent_proposer_is_passed_over_for_the_next_one() {
    let mut h = harness(5, &[]);
    h.crash(0); // key 0's proposer
    h.submit(2, req(7, 1), put(0, "a"));
    assert!(h.inflight.iter().any(|w| w.1 == n(0) && matches!(w.2, Message::Forward { .. })));
    h.deliver_all(); // lost at the crashed n1
    let op = *h.nodes[2].pending.keys().next().expect("pending");
    h.now += Span::millis(100);
    h.timer(2, Timer::Retry(op));
    let to: Vec<NodeId> = h
        .inflight
        .iter()
        .filter(|w| matches!(w.2, Message::Forward { .. }))
        .map(|w| w.1)
        .collect();
    assert_eq!(to, [n(1)], "key 0's next proposer");
    h.deliver_all();
    assert_eq!(h.reply(req(7, 1)), Some(&ok("a")));
    assert_eq!(h.nodes[2].proposer_of(0, h.now), n(1));
    h.recover(0);
    // n1's anti-entropy goes round its peers: n2, then n3.
    for _ in 0..2 {
        h.timer(0, Timer::AntiEntropy);
        h.deliver_all();
    }
    assert_eq!(h.nodes[2].proposer_of(0, h.now), n(0), "heard from n1 again");
}

/// ABD's read (section 4) counts only answers to *this* query: request numbers start over
/// when a coordinator restarts, and an answer to a query of its earlier incarnation (for
/// another key, or an older state of this one) must not make a quorum. swarm.toml seeds 144
/// and 179 read one key's value for another that way.
#[test]
fn abd_a_read_ignores_answers_to_a_query_of_an_earlier_incarnation() {
    let mut h = harness(3, &[]);
    h.submit(0, req(0, 1), put(2, "b"));
    h.deliver_all();
    // Key 1's value is the newer: taken for key 2's, it would win.
    h.submit(0, req(0, 2), put(1, "a"));
    h.deliver_all();
    // A read of key 1 at n1: its queries are answered, the answers are still on their way.
    h.submit(0, req(1, 1), get(1));
    h.deliver_where(|w| matches!(w.2, Message::Query { .. }));
    let stale: Vec<_> = h.inflight.drain(..).collect();
    assert_eq!(stale.len(), 2);
    // n1 restarts and reads key 2 under the same request number (its third again).
    h.restart(0);
    for seq in 1..=2 {
        h.submit(0, req(2, seq), get(3));
        h.deliver_all();
    }
    h.submit(0, req(1, 2), get(2));
    let fresh: Vec<_> = h.inflight.drain(..).collect();
    h.inflight.extend(stale);
    h.deliver_all();
    assert_eq!(h.reply(req(1, 2)), None, "key 1's answers do not count for key 2");
    h.inflight.extend(fresh);
    h.deliver_all();
    assert_eq!(h.reply(req(1, 2)), Some(&ok("b")));
}

/// Runs phase 1, delivers every Accept and loses every Accepted: each replica that took the
/// proposal looks silent to its coordinator.
fn accepted_lost(h: &mut Harness) {
    h.deliver_where(|(_, _, m)| !matches!(m, Message::Accept { .. }));
    h.deliver_where(|(_, _, m)| matches!(m, Message::Accept { .. }));
    h.drop_where(|(_, _, m)| matches!(m, Message::Accepted { .. }));
    assert!(h.inflight.is_empty(), "{:?}", h.inflight);
}

/// ABD (section 4; CASPaxos's phase 2 likewise) counts, for each phase, the replicas that
/// answered *that phase's* message, and sends it again until a quorum has: a replica that
/// promised in phase 1 but whose Accepted was lost must hear the Accept again. A resend that
/// counted phase 1's promises as answers sent nothing, the write reached a quorum with no
/// commit, and a replica left behind kept an older chosen value for good (swarm.toml seeds
/// 495 and 623: acknowledged writes lost on that replica).
#[test]
fn abd_a_write_resends_its_accept_to_replicas_whose_accepted_was_lost() {
    let mut h = harness(3, &[]);
    // Key 0's proposer is n1: no forward.
    h.submit(0, req(0, 1), put(0, "a"));
    accepted_lost(&mut h);
    assert_eq!(h.reply(req(0, 1)), None, "only n1's own acceptor answered phase 2");
    let op = *h.nodes[0].pending.keys().next().expect("pending");
    h.now += Span::millis(60);
    h.timer(0, Timer::Retry(op));
    let to: Vec<NodeId> = h
        .inflight
        .iter()
        .filter(|w| matches!(w.2, Message::Accept { .. }))
        .map(|w| w.1)
        .collect();
    assert_eq!(to, [n(1), n(2)], "phase 2 goes again to those it did not hear from");
    h.deliver_all();
    assert_eq!(h.reply(req(0, 1)), Some(&ok("a")));
    for i in 0..3 {
        assert!(h.node(i).slots[&0].chosen, "n{}: the commit went out", i + 1);
    }
}

/// The same for a read's write-back (ABD section 4, the reader's second phase): the
/// replicas that answered the query and lost their Accepted hear the write-back again.
#[test]
fn abd_a_read_resends_its_write_back_to_replicas_whose_accepted_was_lost() {
    let mut h = harness(5, &[]);
    h.submit(0, req(0, 1), put(0, "a"));
    // Phase 2 reaches n2 only (and n1's own acceptor): "a" on 2 of 5, not chosen.
    h.deliver_where(|(_, _, m)| !matches!(m, Message::Accept { .. }));
    h.deliver_where(|(_, to, m)| matches!(m, Message::Accept { .. }) && *to == n(1));
    h.inflight.clear();
    h.crash(3);
    h.crash(4);
    // A read at n3: n1, n2 and n3 answer the query, and every Accepted of the write-back
    // but n3's own is lost.
    h.submit(2, req(1, 1), get(0));
    accepted_lost(&mut h);
    assert_eq!(h.reply(req(1, 1)), None, "not before the write-back");
    let op = *h.nodes[2].pending.keys().next().expect("pending");
    h.now += Span::millis(60);
    h.timer(2, Timer::Retry(op));
    let mut to: Vec<NodeId> = h
        .inflight
        .iter()
        .filter(|w| matches!(w.2, Message::Accept { .. }))
        .map(|w| w.1)
        .collect();
    to.sort();
    assert_eq!(to, [n(0), n(1), n(3), n(4)], "all but n3, which holds it");
    h.deliver_all();
    assert_eq!(h.reply(req(1, 1)), Some(&ok("a")));
}

#[test]
fn casp_a_read_refused_by_a_dangling_promise_rewrites_the_value_under_its_own_ballot() {
    // A coordinator that prepared and then went silent leaves promises above the value's
    // version: ABD's write-back at that version is refused there for good. The retry takes
    // a promise of its own and re-proposes the value unchanged, as a CASPaxos read does (the
    // identity change, Rystsov 2018, section 2.2); retrying the query instead repeated the
    // refusal forever (swarm.toml majority seed 156).
    let mut h = leaderless(5);
    h.submit(0, req(0, 1), put(0, "a"));
    // "a" on n1 and n2 only, not chosen.
    h.deliver_where(|(_, _, m)| !matches!(m, Message::Accept { .. }));
    h.deliver_where(|(_, to, m)| matches!(m, Message::Accept { .. }) && *to == n(1));
    h.inflight.clear();
    // Once n1's promise lease lapsed, n5 prepares a write on n3, n4 and n5, then goes
    // silent: its phase 2 never comes.
    h.now += Span::millis(60);
    h.submit(4, req(1, 1), put(0, "x"));
    h.deliver_where(|(_, to, m)| matches!(m, Message::Prepare { .. }) && to.0 >= 2);
    h.inflight.clear();
    // A read at n3 whose query reaches n1, n2, n3: it finds "a", not chosen, and writes it
    // back at its version, which n3, n4 and n5 refuse.
    h.submit(2, req(2, 1), get(0));
    h.deliver_where(|(_, to, m)| matches!(m, Message::Query { .. }) && to.0 <= 2);
    h.inflight
        .retain(|(_, _, m)| !matches!(m, Message::Query { .. }));
    h.deliver_all();
    assert_eq!(h.reply(req(2, 1)), None, "refused by a quorum");
    let op = *h.nodes[2].pending.keys().next().expect("pending");
    // The retry, once n5's promise lease lapsed: a phase 1 of its own, then "a" again.
    h.now += Span::millis(60);
    h.timer(2, Timer::Retry(op));
    assert!(
        h.inflight
            .iter()
            .any(|(_, _, m)| matches!(m, Message::Prepare { .. })),
        "a rewrite takes promises"
    );
    h.deliver_all();
    assert_eq!(h.reply(req(2, 1)), Some(&ok("a")));
    let holding = (0..5).filter(|i| h.value(*i, 0).as_deref() == Some("a"));
    assert!(holding.count() >= 3, "on a write quorum once read");
    // A later read anywhere returns it too.
    h.submit(4, req(3, 1), get(0));
    h.deliver_all();
    assert_eq!(h.reply(req(3, 1)), Some(&ok("a")));
}

/// Node `i` restarts from a log whose record after `kept` (the state of an earlier sync)
/// fails its checksum, as `disk-faults.toml`'s corrupt fault leaves it: it is damaged.
fn restart_damaged(h: &mut Harness, i: u16, kept: Option<MajorityDurable>) {
    h.crash(i);
    h.durable[usize::from(i)] = kept;
    let lost = MajorityRecord::Changes {
        slots: Vec::new(),
        counter_reserved: 0,
    };
    let read = Read::Corrupt {
        written: &lost,
        flip: 1,
    };
    let config = h.configs[usize::from(i)].clone();
    assert!(!Majority::recover(&mut h.durable[usize::from(i)], read, &config));
    h.recover(i);
    assert!(h.nodes[usize::from(i)].damaged);
}

#[test]
fn abd_crash_recovery_a_torn_last_write_leaves_the_replica_whole() {
    // A torn last record was never synced, so no acknowledgement of this acceptor rests on
    // it (ABD section 3 needs a replica to keep what it acknowledged, no more): the replica
    // keeps its intact prefix and answers as before. Taking it as damage left every node of
    // a 3-node cluster damaged after a few crashes (swarm.toml seed 28), unable to serve.
    let mut h = harness(3, &[]);
    h.submit(0, req(0, 1), put(1, "a"));
    h.deliver_all();
    assert_eq!(h.reply(req(0, 1)), Some(&ok("a")));
    let kept = h.durable[2].clone();
    h.crash(2);
    h.durable[2] = kept;
    let unsynced = MajorityRecord::Changes {
        slots: Vec::new(),
        counter_reserved: 0,
    };
    let read = Read::Torn {
        written: &unsynced,
        flip: 1,
    };
    let config = h.configs[2].clone();
    assert!(!Majority::recover(&mut h.durable[2], read, &config), "the log ends there");
    h.recover(2);
    assert!(!h.nodes[2].damaged);
    assert_eq!(h.value(2, 1).as_deref(), Some("a"), "the synced write survives");
    // With n1 gone, a quorum needs n3: it answers as an acceptor.
    h.crash(0);
    h.submit(1, req(1, 1), get(1));
    h.deliver_all();
    assert_eq!(h.reply(req(1, 1)), Some(&ok("a")));
}

#[test]
fn abd_crash_recovery_a_replica_that_lost_its_log_answers_no_acceptor_message() {
    // ABD (section 3) assumes a replica keeps what it acknowledged; one whose log lost
    // records may have forgotten a value a write quorum counted, or a promise. Were it to
    // answer, a quorum through it could miss that write: it stays out of every quorum.
    let mut h = harness(5, &[]);
    let before = h.durable[3].clone();
    h.submit(0, req(0, 1), put(1, "a"));
    h.deliver_all();
    assert_eq!(h.reply(req(0, 1)), Some(&ok("a")));
    restart_damaged(&mut h, 3, before);
    assert_eq!(h.value(3, 1), None, "the corrupt record held the write");
    h.sent.clear();
    h.submit(1, req(1, 1), put(1, "b"));
    h.deliver_all();
    assert_eq!(h.reply(req(1, 1)), Some(&ok("b")));
    h.submit(2, req(2, 1), get(1));
    h.deliver_all();
    assert_eq!(h.reply(req(2, 1)), Some(&ok("b")));
    let answered = h.sent.iter().filter(|(from, _, m)| {
        *from == n(3)
            && matches!(
                m,
                Message::Promise { .. }
                    | Message::Accepted { .. }
                    | Message::QueryReply { .. }
                    | Message::Nack { .. }
            )
    });
    assert_eq!(answered.count(), 0, "a damaged acceptor answers nothing");
}

#[test]
fn abd_crash_recovery_a_damaged_replica_forwards_a_retried_write_and_never_refuses_it() {
    // disk-faults.toml seeds 32, 52, 70, 83: a client's append was applied by a quorum but
    // its answer lost; the retry reached a damaged node, which answered "unavailable" (never
    // applied), and the history showed the append both failed and read. A damaged node
    // refuses gets (a read changes nothing) and hands writes to a healthy proposer.
    let mut h = harness(5, &[]);
    let before = h.durable[3].clone();
    h.submit(0, req(0, 1), put(1, ""));
    h.deliver_all();
    restart_damaged(&mut h, 3, before);
    // The first try is chosen, but every answer to the client is lost.
    h.submit(0, req(4, 9), append(1, "x;"));
    h.deliver_all();
    h.replies.clear();
    // The client retries the same request at the damaged n4.
    h.submit(3, req(4, 9), append(1, "x;"));
    h.deliver_all();
    let answers: Vec<&OpResult> = h
        .replies
        .iter()
        .filter(|(id, _)| *id == req(4, 9))
        .map(|(_, r)| r)
        .collect();
    assert_eq!(answers, [&ok("x;")], "answered once, as applied, and applied once");
    assert_eq!(h.value(0, 1).as_deref(), Some("x;"));
    h.submit(3, req(5, 1), get(1));
    let refused = h.reply(req(5, 1)).expect("a get is refused at once");
    assert!(!refused.is_applied());
    assert!(refused.hint().is_some_and(|n| n != NodeId(3)), "{refused:?}");
}

/// The invariants run after every handler and judge only the slots changed since their last
/// judgement (a slot's own conditions depend on it alone); whenever that finds anything they
/// walk every slot, so the verdict and its words are the full walk's: here for a slot broken
/// in the handler just run, and for an own ballot past the reserved mark held by a slot no
/// handler has touched since it was last judged.
#[test]
fn invariants_judged_on_the_changed_slots_find_what_a_walk_over_every_slot_finds() {
    let mut h = harness(3, &[]);
    for key in 0..20 {
        let id = h.submit_next(0, put(key, "v"));
        h.deliver_all();
        assert_eq!(h.reply(id), Some(&ok("v")));
    }
    for i in 0..3 {
        assert_eq!(h.node(i).check_node(), Ok(()));
        assert!(h.node(i).check_all().is_ok());
    }
    let mut h = h.unchecked();
    h.run(1, |node, _| {
        Rc::make_mut(node.slots.entry(7).or_default()).promised = Version::default();
    });
    let whole = h.node(1).check_all().map(|_| ());
    assert!(whole.as_ref().is_err_and(|e| e.starts_with("k7: accepted")), "{whole:?}");
    assert_eq!(h.node(1).check_node(), whole);
    // n1 coordinated every write: its own ballots sit in slots judged long ago.
    assert!(h.node(0).slots.values().any(|s| s.promised.node == n(0)));
    h.run(0, |node, _| node.counter = crate::reserve::Reservation::resume(0));
    let whole = h.node(0).check_all().map(|_| ());
    assert!(whole.as_ref().is_err_and(|e| e.contains("past the reserved mark 0")), "{whole:?}");
    assert_eq!(h.node(0).check_node(), whole);
}
