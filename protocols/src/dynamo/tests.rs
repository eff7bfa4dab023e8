//! dynamo's unit tests, on the shared hand-driven cluster (`testkit::Cluster`), each citing
//! the paper's section (DeCandia et al. 2007) or the seed's join step it checks.

use super::*;
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
        node.on_request(ctx, Request { id, op, quorum: Some(9) })
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
