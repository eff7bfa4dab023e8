//! dynamo's unit tests, on the shared hand-driven cluster (`testkit::Cluster`), each citing
//! the paper's section (DeCandia et al. 2007) or the seed's join step it checks.

use super::*;
use crate::contract::CausalContext;
use crate::params::{ParamValue, Params};
use crate::testkit::{configs, get, n, ok, put, req, Cluster};

type Harness = Cluster<Dynamo>;

/// Submits `op` at node `i`, delivers until quiet, and returns the reply.
fn ask(h: &mut Harness, i: u16, op: crate::kv::Op) -> OpResult {
    let id = h.submit_next(i, op);
    for _ in 0..10 {
        h.deliver_all();
    }
    h.reply(id).cloned().expect("an answer")
}

fn harness(count: u16, set: &[(&'static str, ParamValue)], bugs: &[&'static str]) -> Harness {
    let mut params = Params::defaults(Dynamo::info().params);
    for (name, value) in set {
        params.set(name, value.clone());
    }
    Cluster::boot_all(configs(count, &params, bugs), |_| {}).unchecked()
}

/// Section 4.3: a preference list holds distinct physical nodes, every member once, and
/// virtual nodes spread the keys over all of them.
#[test]
fn preference_lists_hold_distinct_physical_nodes() {
    let ring = Ring::new((0..5).map(n), 8);
    let mut first = BTreeSet::new();
    for key in 0..200 {
        let pref = ring.preference(key);
        let distinct: BTreeSet<NodeId> = pref.iter().copied().collect();
        assert_eq!(pref.len(), 5);
        assert_eq!(distinct.len(), 5);
        first.insert(pref[0]);
    }
    assert_eq!(first.len(), 5, "every node owns some range");
}

/// Section 4.4: concurrent clocks are siblings, a descendant supersedes; the planted bug
/// calls concurrent clocks descending.
#[test]
fn vector_clocks_keep_concurrent_versions_as_siblings() {
    let a: Clock = [(n(0), 2), (n(1), 1)].into_iter().collect();
    let b: Clock = [(n(0), 1), (n(1), 2)].into_iter().collect();
    let c: Clock = [(n(0), 2), (n(1), 2)].into_iter().collect();
    assert!(!descends(&a, &b) && !descends(&b, &a));
    assert!(descends(&c, &a) && descends(&c, &b));
    let buggy = Compare {
        concurrent_as_descends: true,
    };
    assert!(buggy.descends(&a, &b), "the bug: concurrent looks descending");
}

/// Section 4.4: truncation removes the oldest pair and never the writer's; the planted bug
/// removes the newest.
#[test]
fn truncation_removes_the_oldest_pair() {
    let full: Clock = [(n(0), 5), (n(1), 1), (n(2), 9)].into_iter().collect();
    let mut ok = full.clone();
    truncate(&mut ok, 2, n(2), false);
    assert_eq!(ok.keys().copied().collect::<Vec<_>>(), vec![n(0), n(2)]);
    let mut bad = full;
    truncate(&mut bad, 2, n(2), true);
    assert!(!bad.contains_key(&n(2)), "the bug drops the writer's own pair");
}

/// Seed, coordinator steps 1-3 and "if quorum value provided is higher then replicas
/// number, replicas number is used": a write asking quorum 9 of N = 3 is answered once the
/// three replicas acknowledge, and a get returns it.
#[test]
fn a_request_quorum_above_n_is_capped_at_n() {
    let mut h = harness(5, &[], &[]);
    let id = req(1, 1);
    h.run(0, |node, ctx| {
        let op = put(7, "a");
        node.on_request(ctx, Request { id, op, quorum: Some(9), context: None })
    });
    for _ in 0..10 {
        h.deliver_all();
    }
    assert!(h.reply(id).is_some(), "answered at quorum N = 3");
    let holders = (0..5).filter(|i| h.value(*i, 7).as_deref() == Some("a")).count();
    assert_eq!(holders, 3, "N = 3 replicas hold it");
    let read = ask(&mut h, 3, get(7));
    assert_eq!(read, OpResult::Ok { value: Some("a".into()) });
}

/// Seed join steps 1-6: three nodes start in the ring, n4 and n5 join one at a time (the
/// first NEW by hostname first), each PENDING then READY, and take the keys they now own.
#[test]
fn joins_go_new_pending_ready_one_at_a_time() {
    let set = [("initial", ParamValue::Int(3))];
    let mut h = harness(5, &set, &[]);
    for k in 0..30 {
        let _ = ask(&mut h, 0, put(k, "v"));
    }
    for step in 0..200 {
        for i in [3, 4] {
            h.timer(i, Timer::Join);
        }
        h.deliver_all();
        h.check_cluster().expect("at most one PENDING node");
        let ready = |i: u16| h.node(i).state() == Some(Member::Ready);
        if ready(3) && ready(4) {
            assert!(step > 0);
            break;
        }
    }
    for i in 0..5 {
        assert_eq!(h.node(i).members.len(), 5, "n{} sees every member", i + 1);
    }
    let owned = (0..30).filter(|k| h.node(3).replicates(*k)).count();
    assert!(owned > 0);
    for k in (0..30).filter(|k| h.node(3).replicates(*k)) {
        assert_eq!(h.value(3, k).as_deref(), Some("v"), "n4 copied k{k}");
    }
}

/// Two puts at n1 and n2 whose reads both find the key absent: concurrent versions, which
/// every replica keeps as siblings (section 4.4).
fn siblings_of_two_puts(h: &mut Harness, key: Key) {
    let _ = h.submit_next(0, put(key, "a"));
    let _ = h.submit_next(1, put(key, "b"));
    // Every read before any write: each coordinator's context is empty.
    let reads = |w: &crate::testkit::Wire<Dynamo>| {
        matches!(w.2, Message::Fetch { .. } | Message::Fetched { .. })
    };
    h.deliver_where(reads);
    for _ in 0..10 {
        h.deliver_all();
    }
    let both = OpResult::Siblings {
        values: vec![Some("a".into()), Some("b".into())],
    };
    assert_eq!(ask(h, 2, get(key)), both, "two concurrent puts are siblings");
}

/// Section 4.4: a put creates a version; a cas whose expected value is not the newest
/// sibling's changes nothing, so it writes no version, and the siblings it read stay. (It
/// wrote the newest sibling's value back under a clock covering both, and the older
/// sibling, an acknowledged put, vanished: `swarm.toml` seed 24.) A cas that matches does
/// write, and its version supersedes every sibling it read.
#[test]
fn a_failed_cas_supersedes_no_sibling() {
    let mut h = harness(3, &[], &[]);
    siblings_of_two_puts(&mut h, 7);
    let both = OpResult::Siblings {
        values: vec![Some("a".into()), Some("b".into())],
    };
    let cas = |expected: &str, new: &str| crate::kv::Op::Cas {
        key: 7,
        expected: expected.into(),
        new: new.into(),
    };
    let failed = ask(&mut h, 0, cas("zz", "c"));
    let OpResult::PreconditionFailed { current: Some(newest) } = failed else {
        panic!("a cas expecting zz fails, found {failed:?}");
    };
    assert_eq!(ask(&mut h, 1, get(7)), both, "the failed cas kept both siblings");
    for i in 0..3 {
        assert_eq!(h.node(i).entries[&7].len(), 2, "n{} holds both", i + 1);
    }
    assert_eq!(ask(&mut h, 2, cas(&newest, "c")), ok("c"));
    assert_eq!(ask(&mut h, 0, get(7)), ok("c"), "a cas that writes reconciles");
}

/// Section 4.4, a delete is a put of a tombstone: one of an absent key changes nothing
/// and writes none, so a concurrent put's sibling is not deleted by it.
#[test]
fn a_delete_of_an_absent_key_writes_no_tombstone() {
    let mut h = harness(3, &[], &[]);
    assert_eq!(ask(&mut h, 0, crate::kv::Op::Delete { key: 9 }), OpResult::NotFound);
    for i in 0..3 {
        assert!(!h.node(i).entries.contains_key(&9), "n{} wrote nothing", i + 1);
    }
}

/// Section 4.5's coordinator waits for R replies to its request; after a restart it must
/// not take a reply to a request of its earlier incarnation for one of its own. n1 reads
/// k1, restarts, and coordinates an append to k2; the replies to the read, holding k1's
/// value, arrive first. (With request numbers that began again at 1 after a restart, they
/// were the append's read: it answered "xb;", and its clock covered k1's; `swarm.toml`
/// seed 173 lost 125 appends so.)
#[test]
fn a_reply_to_an_earlier_incarnation_is_not_taken_for_a_request_of_this_one() {
    let mut h = harness(3, &[], &[]);
    assert_eq!(ask(&mut h, 1, put(1, "x")), ok("x"));
    let _ = h.submit_next(0, get(1));
    h.restart(0);
    assert_eq!(h.node(0).incarnation, 2, "the restart began incarnation 2");
    // The read's fetches reach n2 and n3, which answer with k1's version.
    let old_fetches = |w: &crate::testkit::Wire<Dynamo>| {
        w.0 == n(0) && matches!(w.2, Message::Fetch { .. })
    };
    h.deliver_where(old_fetches);
    let id = h.submit_next(0, crate::testkit::append(2, "b;"));
    for _ in 0..10 {
        h.deliver_all();
    }
    assert_eq!(h.reply(id), Some(&ok("b;")), "k1's value is no part of k2's read");
    for i in 0..3 {
        assert_eq!(h.value(i, 2).as_deref(), Some("b;"), "n{} holds k2", i + 1);
    }
}

/// Submits `op` at node `i` with the causal context `context`, delivers until quiet, and
/// returns the reply and the context it carried.
fn ask_with(
    h: &mut Harness,
    i: u16,
    op: crate::kv::Op,
    context: Option<CausalContext>,
) -> (OpResult, Option<CausalContext>) {
    h.seq += 1;
    let id = crate::ids::RequestId {
        client: crate::ids::ClientId(0),
        seq: h.seq,
    };
    h.submit_with_context(i, id, op, context);
    for _ in 0..10 {
        h.deliver_all();
    }
    let result = h.reply(id).cloned().expect("an answer");
    (result, h.reply_context(id).cloned())
}

fn siblings(values: &[&str]) -> OpResult {
    OpResult::Siblings {
        values: values.iter().map(|v| Some((*v).into())).collect(),
    }
}

/// Section 4.4: "the client must specify which version it is updating by passing the context
/// it obtained from an earlier read". A get answers the merged context of what it read; a put
/// with that context supersedes what it covers, and a put with an older context (it had not
/// read b) supersedes a only, so b and c come back as siblings, which a put with their merged
/// context reconciles into one.
#[test]
fn a_put_with_a_context_supersedes_exactly_what_the_context_covers() {
    let mut h = harness(5, &[], &[]);
    let _ = ask(&mut h, 0, put(7, "a"));
    let (read, c1) = ask_with(&mut h, 1, get(7), None);
    assert_eq!(read, OpResult::Ok { value: Some("a".into()) });
    let c1 = c1.expect("a get answers its context");
    assert!(!c1.is_empty());
    let (wrote, _) = ask_with(&mut h, 2, put(7, "b"), Some(c1.clone()));
    assert_eq!(wrote, OpResult::Ok { value: Some("b".into()) });
    let (read, c2) = ask_with(&mut h, 3, get(7), None);
    assert_eq!(read, OpResult::Ok { value: Some("b".into()) }, "b superseded a");
    let c2 = c2.expect("a context");
    assert!(c2.covers(&c1) && !c1.covers(&c2));
    let _ = ask_with(&mut h, 4, put(7, "c"), Some(c1));
    let (read, merged) = ask_with(&mut h, 0, get(7), None);
    assert_eq!(read, siblings(&["b", "c"]), "c's context did not cover b");
    let _ = ask_with(&mut h, 1, put(7, "d"), merged);
    let (read, _) = ask_with(&mut h, 2, get(7), None);
    assert_eq!(read, OpResult::Ok { value: Some("d".into()) });
}

/// Section 4.4: a write with a context needs no read round, the context says what it
/// supersedes: no fetch leaves for it, where a write without one reads R replicas first.
#[test]
fn a_write_with_a_context_reads_nothing_first() {
    let mut h = harness(5, &[], &[]);
    let fetches = |h: &Harness| {
        let sent = h.sent.iter();
        sent.filter(|w| matches!(w.2, Message::Fetch { .. })).count()
    };
    let before = fetches(&h);
    let _ = ask_with(&mut h, 0, put(7, "a"), Some(CausalContext::default()));
    assert_eq!(fetches(&h), before, "no fetch for a write with a context");
    let _ = ask(&mut h, 0, put(7, "b"));
    assert!(fetches(&h) > before, "a write without one reads first");
}

/// Section 4.4 with the coordinator's own clock entry: two clients read the same version and
/// both write through n1 with that context. An entry `n1: c` claims every write of n1's up to
/// c, so the second write must not take n1's entry (it would supersede the first, which its
/// client never read): it takes a stand-in actor, and both writes stay as siblings. A delete
/// with a context that covers both supersedes both with a tombstone.
#[test]
fn two_writes_with_one_context_through_one_coordinator_stay_siblings() {
    let mut h = harness(5, &[], &[]);
    let _ = ask(&mut h, 0, put(7, "a"));
    let (_, c) = ask_with(&mut h, 1, get(7), None);
    let _ = ask_with(&mut h, 0, put(7, "b"), c.clone());
    let _ = ask_with(&mut h, 0, put(7, "c"), c);
    let (read, merged) = ask_with(&mut h, 2, get(7), None);
    assert_eq!(read, siblings(&["b", "c"]));
    let actors: Vec<u32> = merged.iter().flat_map(|m| m.pairs()).map(|p| p.0).collect();
    assert!(actors.iter().any(|a| *a >= 64), "a stand-in actor: {actors:?}");
    let (deleted, _) = ask_with(&mut h, 3, crate::kv::Op::Delete { key: 7 }, merged);
    assert_eq!(deleted, OpResult::Ok { value: None });
    let (read, _) = ask_with(&mut h, 4, get(7), None);
    assert_eq!(read, OpResult::NotFound);
}

/// The planted `context-ignored`: a put with an old context (it read a, not b) supersedes
/// everything its coordinator holds, b included, so the acknowledged b is gone where correct
/// dynamo keeps b and c as siblings.
#[test]
fn context_ignored_loses_a_concurrent_acknowledged_put() {
    for (bugs, want) in [
        (&[][..], siblings(&["b", "c"])),
        (&["context-ignored"][..], OpResult::Ok { value: Some("c".into()) }),
    ] {
        let mut h = harness(5, &[], bugs);
        let replica = h.node(0).replica_set(7)[0].index() as u16;
        let _ = ask(&mut h, replica, put(7, "a"));
        let (_, c1) = ask_with(&mut h, replica, get(7), None);
        let _ = ask_with(&mut h, replica, put(7, "b"), c1.clone());
        let _ = ask_with(&mut h, replica, put(7, "c"), c1);
        let (read, _) = ask_with(&mut h, replica, get(7), None);
        assert_eq!(read, want, "bugs {bugs:?}");
    }
}

/// The seed's join steps driven by the engine's membership changes: n1-n3 are the cluster,
/// n4 and n5 are started to join it (`NodeConfig::joining`) and every member is told
/// (`Membership::Joined`). Each joiner learns who is READY from the answers to step 2, they
/// go PENDING one at a time (the first NEW by hostname first), copy what they now own and
/// become READY; then n5 decommissions (`Membership::Leave`) and has left once every replica
/// took its keys, and a removed n1 is LEFT in every ring (Dynamo section 4.2).
#[test]
fn engine_joins_follow_the_seed_steps_and_a_removal_leaves_every_ring() {
    let params = Params::defaults(Dynamo::info().params);
    let mut all = configs(5, &params, &[]);
    let initial: Vec<NodeId> = (0..3).map(n).collect();
    for (i, c) in all.iter_mut().enumerate() {
        c.joining = i >= 3;
        c.members = if i >= 3 { (0..5).map(n).collect() } else { initial.clone() };
    }
    let mut h = Cluster::boot_all(all, |_| {}).unchecked();
    for k in 0..30 {
        let _ = ask(&mut h, 0, put(k, "v"));
    }
    for member in 0..3 {
        for joiner in [3, 4] {
            h.run(member, |p, ctx| Protocol::on_membership(p, ctx, Membership::Joined(n(joiner))));
        }
    }
    let ready = |h: &Harness, i: u16| h.node(i).state() == Some(Member::Ready);
    for _ in 0..300 {
        for i in [3, 4] {
            h.timer(i, Timer::Join);
        }
        h.deliver_all();
        h.check_cluster().expect("at most one PENDING node");
        if ready(&h, 3) && ready(&h, 4) {
            break;
        }
    }
    assert!(ready(&h, 3) && ready(&h, 4), "both joined");
    for i in 0..5 {
        let members = &h.node(i).members;
        assert_eq!(members.len(), 5, "n{} sees every member", i + 1);
    }
    for k in (0..30).filter(|k| h.node(3).replicates(*k)) {
        assert_eq!(h.value(3, k).as_deref(), Some("v"), "n4 copied k{k}");
    }
    h.run(4, |p, ctx| Protocol::on_membership(p, ctx, Membership::Leave));
    for _ in 0..50 {
        h.deliver_all();
        if h.node(4).has_left() {
            break;
        }
        h.timer(4, Timer::Leave);
    }
    assert!(h.node(4).has_left(), "n5 handed its keys over and left");
    for i in 0..4 {
        h.run(i, |p, ctx| Protocol::on_membership(p, ctx, Membership::Removed(n(4))));
        h.run(i, |p, ctx| Protocol::on_membership(p, ctx, Membership::Removed(n(0))));
    }
    for i in 1..4 {
        assert_eq!(h.node(i).members.get(&n(0)), Some(&Member::Left), "n1 LEFT at n{}", i + 1);
        assert!(!h.node(i).peers.contains(&n(0)));
        for k in 0..30 {
            assert!(!h.node(i).replica_set(k).contains(&n(0)), "n1 replicates no key");
        }
    }
}
