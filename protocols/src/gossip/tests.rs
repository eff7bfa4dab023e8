//! gossip's unit tests, on the shared hand-driven cluster (`testkit::Cluster`), each citing
//! the SWIM paper's section (Das, Gupta and Motivala, DSN 2002) or serf's behaviour.

use super::*;
use crate::kv::OpResult;
use crate::params::Params;
use crate::testkit::{configs, get, n, ok, put, Cluster};

type Harness = Cluster<Gossip>;

fn harness(count: u16, bugs: &[&'static str]) -> Harness {
    let params = Params::defaults(Gossip::info().params);
    Cluster::boot_all(configs(count, &params, bugs), |_| {}).unchecked()
}

/// The target of node `i`'s ping in flight.
fn ping_target(h: &Harness, i: u16) -> (NodeId, u64) {
    h.inflight
        .iter()
        .find_map(|(from, to, m)| match m {
            Message::Ping { seq, .. } if *from == n(i) => Some((*to, *seq)),
            _ => None,
        })
        .expect("a ping")
}

/// memberlist's retransmit limit and serf's query timeout scale with ceil(log10(n + 1));
/// memberlist's suspicion timeout with max(1, log10 n).
#[test]
fn timeouts_scale_with_log_cluster_size() {
    assert_eq!(log10_ceil(1), 1);
    assert_eq!(log10_ceil(9), 1);
    assert_eq!(log10_ceil(10), 2);
    assert_eq!(log10_ceil(50), 2);
    let p = Span::millis(100);
    assert_eq!(suspicion_timeout(4, 5, p), Span::millis(400));
    assert_eq!(suspicion_timeout(4, 100, p), Span::millis(800));
    let h = harness(5, &[]);
    assert_eq!(h.node(0).query_timeout(), Span::millis(320), "20ms x 16 x 1");
}

/// SWIM section 3.1: a ping that gets no ack within the probe timeout makes the prober ask
/// k members to ping the target (ping-req); their relayed ack keeps the target alive.
#[test]
fn a_lost_ping_is_covered_by_indirect_probes() {
    let mut h = harness(5, &[]);
    h.timer(0, Timer::Probe);
    let (target, seq) = ping_target(&h, 0);
    h.drop_where(|(from, _, _)| *from == n(0));
    h.timer(0, Timer::ProbeTimeout(seq));
    let reqs = h.inflight.iter().filter(|(_, _, m)| matches!(m, Message::PingReq { .. }));
    assert_eq!(reqs.count(), 3, "k = 3 of the 3 other members");
    h.deliver_all();
    h.timer(0, Timer::Probe);
    assert_eq!(h.node(0).members()[&target].status, Status::Alive);
    assert!(h.node(0).check_invariants().is_ok());
}

/// SWIM section 3.1, the planted bug: without ping-req a lost ping suspects its target (no
/// invariant forbids it: the `false_deaths` check judges the deaths that follow).
#[test]
fn without_indirect_probes_a_lost_ping_suspects() {
    let mut h = harness(5, &["no-indirect-probes"]);
    h.timer(0, Timer::Probe);
    let (target, seq) = ping_target(&h, 0);
    h.drop_where(|(from, _, _)| *from == n(0));
    h.timer(0, Timer::ProbeTimeout(seq));
    let reqs = h.inflight.iter().filter(|(_, _, m)| matches!(m, Message::PingReq { .. }));
    assert_eq!(reqs.count(), 0, "no ping-req");
    h.timer(0, Timer::Probe);
    assert_eq!(h.node(0).members()[&target].status, Status::Suspect);
}

/// SWIM section 4.2: a suspected member refutes with a higher incarnation, which overrides
/// the suspicion everywhere; a suspicion not refuted in time becomes a death.
#[test]
fn suspicion_is_refuted_by_a_higher_incarnation_or_confirmed() {
    let mut h = harness(3, &[]);
    let suspect = Update::Suspect {
        node: n(1),
        incarnation: 0,
    };
    let gossip = Message::Gossip {
        updates: vec![suspect.clone()],
    };
    h.run(0, |node, ctx| node.on_message(ctx, n(2), gossip.clone()));
    assert_eq!(h.node(0).members()[&n(1)].status, Status::Suspect);
    h.run(1, |node, ctx| node.on_message(ctx, n(2), gossip.clone()));
    assert_eq!(h.node(1).incarnation(), 1, "bumped past the suspected 0");
    assert!(h.node(1).check_invariants().is_ok());
    h.timer(1, Timer::Gossip);
    h.deliver_all();
    let m = h.node(0).members()[&n(1)];
    assert_eq!((m.status, m.incarnation), (Status::Alive, 1));
    // The suspicion timer of the old incarnation is stale now.
    h.timer(0, Timer::Suspicion(n(1), 0));
    assert_eq!(h.node(0).members()[&n(1)].status, Status::Alive);
    // n3 suspected and silent: confirmed dead.
    let silent = Message::Gossip {
        updates: vec![Update::Suspect {
            node: n(2),
            incarnation: 0,
        }],
    };
    h.run(0, |node, ctx| node.on_message(ctx, n(1), silent));
    h.timer(0, Timer::Suspicion(n(2), 0));
    assert_eq!(h.node(0).members()[&n(2)].status, Status::Dead);
}

/// SWIM section 4.2, the planted bug: a refutation at the suspected incarnation.
#[test]
fn refuting_without_a_bump_breaks_the_invariant() {
    let mut h = harness(3, &["incarnation-not-bumped"]);
    let gossip = Message::Gossip {
        updates: vec![Update::Suspect {
            node: n(1),
            incarnation: 0,
        }],
    };
    h.run(1, |node, ctx| node.on_message(ctx, n(2), gossip));
    assert_eq!(h.node(1).incarnation(), 0);
    assert!(h.node(1).check_invariants().is_err());
}

/// The seed's get: a miss asks the cluster by query and caches the first answer; a key
/// nobody holds answers not-found after serf's query timeout.
#[test]
fn a_miss_queries_the_cluster_and_caches() {
    let mut h = harness(3, &[]);
    assert_eq!(h.request(0, put(1, "a")), ok("a"));
    let id = h.submit_next(1, get(1));
    h.deliver_all();
    assert_eq!(h.reply(id), Some(&ok("a")));
    assert_eq!(h.value(1, 1), Some("a".into()), "cached");
    let id = h.submit_next(2, get(9));
    h.deliver_all();
    assert_eq!(h.reply(id), None, "waits for the timeout");
    h.timer(2, Timer::Query(1));
    assert_eq!(h.reply(id), Some(&OpResult::NotFound));
}

/// serf's user events carry Lamport time: a write's event drops older copies elsewhere, and
/// an event older than a node's own newer write is ignored (the planted bug drops it).
#[test]
fn user_events_drop_older_copies_only() {
    for (bugs, kept) in [(&[][..], true), (&["events-unordered"][..], false)] {
        let mut h = harness(2, bugs);
        h.request(0, put(1, "old"));
        let old = h.node(0).copy(1).unwrap().stamp;
        h.request(1, put(1, "x"));
        h.request(1, put(1, "new"));
        let event = Message::Gossip {
            updates: vec![Update::Invalidate { key: 1, stamp: old }],
        };
        h.run(1, |node, ctx| node.on_message(ctx, n(0), event));
        assert_eq!(h.value(1, 1).is_some(), kept, "bugs {bugs:?}");
        assert_eq!(h.node(1).check_invariants().is_ok(), kept);
        // A newer event drops the copy.
        let newer = Message::Gossip {
            updates: vec![Update::Invalidate {
                key: 1,
                stamp: (99, n(0)),
            }],
        };
        h.run(1, |node, ctx| node.on_message(ctx, n(0), newer));
        assert_eq!(h.value(1, 1), None);
    }
}

/// The seed's invalidation, planted bug: a cached copy survives its invalidation.
#[test]
fn a_cached_copy_survives_invalidation_only_with_the_bug() {
    for (bugs, stale) in [(&[][..], false), (&["stale-cache-answers"][..], true)] {
        let mut h = harness(3, bugs);
        h.request(0, put(1, "a"));
        let id = h.submit_next(1, get(1));
        h.deliver_all();
        assert_eq!(h.reply(id), Some(&ok("a")));
        h.request(2, put(1, "b"));
        h.timer(2, Timer::Gossip);
        h.deliver_all();
        assert_eq!(h.value(1, 1).is_some(), stale, "bugs {bugs:?}");
        assert_eq!(h.node(1).check_invariants().is_err(), stale);
    }
}

/// The demo's trick-value overwrites a node's copy behind the protocol's back: a wrong value,
/// never one older than an event the node has seen (its stamp is the newest event's).
#[test]
fn a_tricked_absent_key_is_not_a_stale_copy() {
    let mut h = harness(2, &[]);
    h.request(0, put(1, "a"));
    h.timer(0, Timer::Gossip);
    h.deliver_all();
    assert_eq!(h.value(1, 1), None);
    let trick = crate::contract::Operator::TrickValue {
        key: 1,
        value: "tricked".into(),
    };
    h.run(1, |node, ctx| node.on_operator(ctx, trick));
    assert_eq!(h.value(1, 1), Some("tricked".into()));
    assert!(h.node(1).check_invariants().is_ok());
}

/// The keys of `updates`, which must all be invalidations.
fn invalidated_keys(updates: &[Update]) -> Vec<Key> {
    updates
        .iter()
        .map(|u| match u {
            Update::Invalidate { key, .. } => *key,
            other => panic!("{other:?}"),
        })
        .collect()
}

/// memberlist fills a packet from its own broadcast queue before the delegate's (serf's user
/// events), and within a queue sends the least transmitted first, the newest first among
/// equals: a refutation queued behind a backlog of invalidations goes out on the next
/// message (swarm.toml seed 763: oldest-first held one back for three seconds and its
/// accuser declared it dead, SWIM section 4.2).
#[test]
fn membership_updates_ride_before_invalidations_and_newest_first() {
    let mut h = harness(3, &[]);
    let node = &mut h.nodes[0];
    node.queue.clear();
    for key in 0..20 {
        node.enqueue(Update::Invalidate {
            key,
            stamp: (key + 1, n(1)),
        });
    }
    let alive = Update::Alive {
        node: n(0),
        incarnation: 7,
    };
    node.enqueue(alive.clone());
    let first = node.take_updates();
    let limit = node.params.max_piggyback as usize;
    assert_eq!(first.len(), limit);
    assert_eq!(first[0], alive, "the refutation first, behind 20 invalidations");
    // Then the newest invalidations, all unsent, before the older ones.
    let keys = invalidated_keys(&first[1..]);
    let newest: Vec<Key> = (0..20).rev().take(limit - 1).collect();
    assert_eq!(keys, newest);
    // The next message carries the refutation again (below its retransmit limit), then
    // the invalidations never sent before those sent once.
    let second = node.take_updates();
    assert_eq!(second[0], alive);
    let unsent: Vec<Key> = (0..20).rev().skip(limit - 1).take(limit - 1).collect();
    let keys = invalidated_keys(&second[1..]);
    assert_eq!(keys, unsent);
}

/// The invariants over the store, the events heard and the own writes are judged again only
/// once one of those maps changed (each change is counted): a change that breaks them is
/// found at the next judgement, however many unchanged judgements came before.
#[test]
fn the_maps_are_judged_again_once_one_of_them_changed() {
    let mut h = harness(2, &[]).unchecked();
    h.request(0, put(1, "a"));
    let stamp = h.node(0).copy(1).unwrap().stamp;
    for _ in 0..3 {
        assert!(h.node(0).check_invariants().is_ok());
    }
    h.run(0, |node, _| {
        node.invalidated.get_mut().insert(1, (stamp.0 + 1, n(1)));
    });
    let broken = h.node(0).check_invariants().unwrap_err();
    assert!(broken.contains("a stale cache"), "{broken}");
    assert_eq!(h.node(0).check_invariants().unwrap_err(), broken);
    h.run(0, |node, _| {
        node.store.get_mut().remove(&1);
    });
    assert!(h.node(0).check_invariants().is_ok(), "dropped: no stale copy, write superseded");
}
