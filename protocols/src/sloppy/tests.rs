//! Sloppy's unit tests, on the shared hand-driven cluster (`testkit::Cluster`), in both
//! conflict modes where the claim holds for both.

use super::*;
use crate::digest::StableHasher;
use crate::params::{ParamValue, Params};
use crate::testkit::{append, configs, get, n, ok, put, req, Cluster, Wire};

/// A hand-driven cluster ([`Cluster`]): sends wait until a test delivers or drops them,
/// timers fire only when a test fires them. Invariants are checked by hand
/// ([`Harness::check_all`]): some planted bugs break them on purpose.
type Harness = Cluster<Sloppy>;

/// A cluster whose `siblings` parameter is `siblings`.
fn harness(count: u16, bugs: &[&'static str], siblings: bool) -> Harness {
    let mut params = Params::defaults(Sloppy::info().params);
    params.set("siblings", ParamValue::Bool(siblings));
    Cluster::boot_all(configs(count, &params, bugs), |_| {}).unchecked()
}

impl Harness {
    /// Drops every message to or from `i` (a partitioned node).
    fn drop_for(&mut self, i: u16) {
        self.inflight.retain(|(f, t, _)| *f != n(i) && *t != n(i));
    }

    /// Delivers everything but what `a` and `b` send each other, which is dropped: the
    /// two cannot reach each other, both reach everyone else.
    fn deliver_apart(&mut self, a: u16, b: u16) {
        let between =
            |(f, t, _): &Wire<Sloppy>| (*f, *t) == (n(a), n(b)) || (*f, *t) == (n(b), n(a));
        self.deliver_where(|w| !between(w));
        self.inflight.retain(|w| !between(w));
    }

    fn check_all(&self) {
        for (i, node) in self.nodes.iter().enumerate() {
            if let Err(broken) = node.check_invariants() {
                panic!("n{}: {broken}", i + 1);
            }
        }
    }
}

/// Writes k1=a at n0 while n2 is cut off; n0 ends up holding a hint for n2.
fn write_while_n2_is_away(h: &mut Harness) {
    h.submit(0, req(1, 1), put(1, "a"));
    assert_eq!(
        h.reply(req(1, 1)),
        Some(&ok("a")),
        "W = 1: the coordinator's own replica answers at once"
    );
    h.drop_for(2);
    h.deliver_all();
    // The first check asks n2 once more; the second, with that lost too, marks it down.
    h.timer(0, Timer::AckCheck(1));
    assert!(!h.nodes[0].down.contains(&n(2)), "asked once more first");
    h.drop_for(2);
    h.deliver_all();
    h.timer(0, Timer::AckCheck(1));
    assert!(h.nodes[0].down.contains(&n(2)));
    assert!(h.nodes[0].hints.contains_key(&(n(2), 1)));
    assert_eq!(h.value(2, 1), None);
    h.nodes[0].check_invariants().unwrap();
}

/// Both conflict rules: what holds for one value per key holds for siblings too.
const MODES: [bool; 2] = [false, true];

#[test]
fn a_hint_is_handed_back_when_its_node_answers_and_then_deleted() {
    for siblings in MODES {
        let mut h = harness(3, &[], siblings);
        write_while_n2_is_away(&mut h);
        // The next write skips down n2: a replica that is up carries its hint.
        h.submit(0, req(1, 2), put(1, "b"));
        assert!(
            h.inflight.iter().all(|(_, to, _)| *to != n(2)),
            "n2 is skipped"
        );
        h.deliver_all();
        let carried = (0..2).any(|i| {
            let hint = h.nodes[i].hints.get(&(n(2), 1));
            let newest = hint.and_then(|hint| hint.versions.newest());
            newest.is_some_and(|v| v.entry.value.as_deref() == Some("b"))
        });
        assert!(carried, "a replica that is up carries n2's hint");
        // n2 answers a probe, and gets the hint then (the later ticks find nothing left).
        h.timer(0, Timer::Handoff);
        h.deliver_all();
        h.timer(0, Timer::Handoff);
        h.timer(1, Timer::Handoff);
        h.deliver_all();
        assert_eq!(h.value(2, 1).as_deref(), Some("b"));
        assert!(h.nodes[0].hints.is_empty() && h.nodes[1].hints.is_empty());
        h.check_all();
    }
}

/// Dynamo section 4.6: "once the database detects that A has recovered, D will attempt to
/// deliver the replica to A". The answer to a probe is that detection: the hint goes back
/// with it, not at the next tick, by which time one store lost on a lossy link has marked
/// the node down again, so that every tick only probes it (swarm.toml seed 763: a hint
/// held 5 s while its node answered every probe).
#[test]
fn a_hint_is_handed_back_as_soon_as_its_node_answers_a_probe() {
    for (siblings, bug) in MODES
        .into_iter()
        .flat_map(|s| [(s, None), (s, Some("never-hand-back-hints"))])
    {
        let bugs: Vec<&'static str> = bug.into_iter().collect();
        let mut h = harness(3, &bugs, siblings);
        write_while_n2_is_away(&mut h);
        for _ in 0..3 {
            h.timer(0, Timer::Handoff);
            assert!(h.inflight.iter().all(|(_, _, m)| matches!(m, Message::Ping)));
            h.deliver_all();
            // A store to n2 that went missing: n2 is down again before the next tick.
            h.nodes[0].down.insert(n(2));
        }
        let held = h.nodes[0].hints.contains_key(&(n(2), 1));
        if bug.is_none() {
            assert!(!held, "handed back when n2 answered");
            assert_eq!(h.value(2, 1).as_deref(), Some("a"));
            assert_eq!(h.nodes[0].hints_delivered, 1);
        } else {
            assert!(held, "the bug only probes");
            assert_eq!(h.value(2, 1), None);
        }
        h.check_all();
    }
}

#[test]
fn hints_survive_a_crash_of_the_stand_in_and_are_lost_with_the_bug() {
    for siblings in MODES {
        let mut h = harness(3, &[], siblings);
        write_while_n2_is_away(&mut h);
        h.restart(0);
        assert!(h.nodes[0].hints.contains_key(&(n(2), 1)));
        h.nodes[0].check_invariants().unwrap();

        let mut h = harness(3, &["drop-hints-on-crash"], siblings);
        write_while_n2_is_away(&mut h);
        h.restart(0);
        let broken = h.nodes[0].check_invariants().unwrap_err();
        assert!(broken.contains("hints lost"), "{broken}");
    }
}

#[test]
fn read_repair_brings_a_stale_replica_forward_and_the_bug_takes_it_back() {
    for (siblings, bug) in MODES
        .into_iter()
        .flat_map(|s| [(s, None), (s, Some("read-repair-writes-older"))])
    {
        let bugs: Vec<&'static str> = bug.into_iter().collect();
        let mut h = harness(3, &bugs, siblings);
        h.submit(0, req(1, 1), put(1, "a"));
        h.deliver_all();
        h.submit(0, req(1, 2), put(1, "b"));
        h.drop_for(2);
        h.deliver_all();
        assert_eq!(h.value(2, 1).as_deref(), Some("a"));
        h.submit(1, req(1, 3), get(1));
        h.deliver_all();
        assert_eq!(
            h.reply(req(1, 3)),
            Some(&ok("b"))
        );
        let broken: Vec<String> = (0..3)
            .filter_map(|i| h.nodes[i].check_invariants().err())
            .collect();
        if bug.is_none() {
            assert_eq!(h.value(2, 1).as_deref(), Some("b"), "read repair");
            assert!(broken.is_empty(), "{broken:?}");
        } else {
            assert!(broken.iter().any(|b| b.contains("went back")), "{broken:?}");
        }
    }
}

#[test]
fn a_tricked_value_is_never_served_and_anti_entropy_repairs_it() {
    for siblings in MODES {
        let mut h = harness(2, &[], siblings);
        h.submit(0, req(1, 1), put(4, "a"));
        h.deliver_all();
        let trick = Operator::TrickValue {
            key: 4,
            value: "tricked".into(),
        };
        h.run(1, |node, ctx| node.on_operator(ctx, trick));
        assert_eq!(h.value(1, 4).as_deref(), Some("tricked"));
        // A read at n1 waits for an intact copy instead of serving its own.
        h.submit(1, req(1, 2), get(4));
        assert_eq!(h.reply(req(1, 2)), None);
        h.deliver_all();
        assert_eq!(
            h.reply(req(1, 2)),
            Some(&ok("a"))
        );
        assert_eq!(h.value(1, 4).as_deref(), Some("a"), "read repair");
        // Trick again; anti-entropy of k4's bucket heals it.
        let trick = Operator::TrickValue {
            key: 4,
            value: "again".into(),
        };
        h.run(1, |node, ctx| node.on_operator(ctx, trick));
        for _ in 0..quorum::BUCKETS {
            h.timer(0, Timer::AntiEntropy);
            h.deliver_all();
        }
        assert_eq!(h.value(1, 4).as_deref(), Some("a"));
        assert_eq!(h.nodes[0].digest(), h.nodes[1].digest());
    }
}

fn siblings_of(values: &[&str]) -> Vec<Option<Value>> {
    values.iter().map(|v| Some((*v).into())).collect()
}

/// Puts k1=a at n0 and k1=b at n1 while the two cannot reach each other (n2 reaches
/// both), then heals: a get at n2 answers what it holds, and its read repair gives the
/// others what they lack. Returns the get's answer.
fn concurrent_puts(h: &mut Harness) -> OpResult {
    h.submit(0, req(1, 1), put(1, "a"));
    h.deliver_apart(0, 1);
    h.submit(1, req(1, 2), put(1, "b"));
    h.deliver_apart(0, 1);
    assert_eq!(h.reply(req(1, 1)), Some(&ok("a")));
    assert_eq!(h.reply(req(1, 2)), Some(&ok("b")));
    h.submit(2, req(1, 3), get(1));
    h.deliver_all();
    h.check_all();
    h.reply(req(1, 3)).cloned().expect("R = 1: n2 answers at once")
}

/// Dynamo section 4.4: two puts whose coordinators cannot see each other carry
/// concurrent clocks, so both survive as siblings, and a get returns both; last writer
/// wins keeps one.
#[test]
fn concurrent_puts_become_siblings_and_a_get_returns_both() {
    let mut h = harness(3, &[], true);
    let both = OpResult::Siblings {
        values: siblings_of(&["a", "b"]),
    };
    assert_eq!(concurrent_puts(&mut h), both);
    for i in 0..3 {
        let held = h.nodes[usize::from(i)].siblings();
        assert_eq!(
            held.get(&1),
            Some(&siblings_of(&["a", "b"])),
            "n{i} after repair"
        );
        // One value per key for the convergence check: the one LWW would keep.
        assert_eq!(h.value(i, 1).as_deref(), Some("b"));
    }
    h.submit(0, req(1, 4), get(1));
    assert_eq!(h.reply(req(1, 4)), Some(&both), "read repair gave n0 b");
    assert_eq!(h.nodes[0].digest(), h.nodes[1].digest());

    let mut h = harness(3, &[], false);
    assert_eq!(concurrent_puts(&mut h), ok("b"), "(1, n1) > (1, n0)");
    for i in 0..3 {
        assert!(h.nodes[usize::from(i)].siblings().is_empty());
        assert_eq!(h.value(i, 1).as_deref(), Some("b"));
    }
}

/// Dynamo section 4.4: a write's clock descends from every version its coordinator
/// knows, so a put at a node holding both siblings supersedes both.
#[test]
fn a_put_at_a_node_holding_siblings_supersedes_them() {
    let mut h = harness(3, &[], true);
    concurrent_puts(&mut h);
    h.submit(0, req(1, 4), put(1, "c"));
    h.deliver_all();
    assert_eq!(h.reply(req(1, 4)), Some(&ok("c")));
    for i in 0..3 {
        let node = &h.nodes[usize::from(i)];
        assert!(node.siblings().is_empty(), "n{i}");
        assert_eq!(node.entries[&1].len(), 1, "n{i}");
        assert_eq!(h.value(i, 1).as_deref(), Some("c"));
    }
    h.submit(1, req(1, 5), get(1));
    assert_eq!(h.reply(req(1, 5)), Some(&ok("c")));
    h.check_all();
}

/// Dynamo section 4.4: a version that a held one descends from is dropped on merge, so
/// a delayed (or duplicated) older write arriving after a newer one resurrects nothing.
#[test]
fn a_delayed_older_write_does_not_come_back_as_a_sibling() {
    let mut h = harness(2, &[], true);
    h.submit(0, req(1, 1), put(1, "a"));
    let at = h
        .inflight
        .iter()
        .position(|(_, to, m)| *to == n(1) && matches!(m, Message::Store { .. }))
        .expect("the store of a to n1");
    let late = h.inflight.remove(at);
    h.deliver_all();
    h.submit(0, req(1, 2), put(1, "b"));
    h.deliver_all();
    assert_eq!(h.value(1, 1).as_deref(), Some("b"));
    for _ in 0..2 {
        h.inflight.push(late.clone());
        h.deliver_all();
    }
    assert!(h.nodes[1].siblings().is_empty());
    assert_eq!(h.nodes[1].entries[&1].len(), 1);
    h.submit(1, req(1, 3), get(1));
    assert_eq!(h.reply(req(1, 3)), Some(&ok("b")));
    // A merge never takes back a version a held one descends from.
    let mut held = h.nodes[1].entries[&1].clone();
    let Message::Store { entry: old, .. } = late.2 else {
        unreachable!()
    };
    assert!(!held.take_concurrent(old));
    h.check_all();
}

/// Dynamo section 4.4: a read-modify-write applies to the newest (by version, as last
/// writer wins would pick) of the siblings it reads, and its clock descends from all of
/// them, so its result supersedes both.
#[test]
fn an_append_after_siblings_applies_to_the_newest_and_supersedes_both() {
    let mut h = harness(3, &[], true);
    concurrent_puts(&mut h);
    let append = append(1, "x");
    h.submit(2, req(1, 4), append);
    assert_eq!(
        h.reply(req(1, 4)),
        Some(&ok("bx")),
        "b is (1, n1), a is (1, n0)"
    );
    h.deliver_all();
    for i in 0..3 {
        assert!(h.nodes[usize::from(i)].siblings().is_empty(), "n{i}");
        assert_eq!(h.value(i, 1).as_deref(), Some("bx"));
    }
    h.submit(0, req(1, 5), get(1));
    assert_eq!(h.reply(req(1, 5)), Some(&ok("bx")));
    h.check_all();
}

/// Dynamo sections 4.4 and 4.6: a stand-in holding concurrent versions as hints for a
/// down node hands every one of them back, and deletes the hint only once all are
/// taken.
#[test]
fn hinted_handoff_hands_back_every_sibling() {
    let mut h = harness(4, &[], true);
    // A key whose preference list starts at n4: it carries the hints for n3.
    let key = (0..100)
        .find(|k| h.nodes[0].preference(*k)[0] == n(3))
        .expect("a key n4 leads");
    // As if n3 had missed an ack at n1 and at n2.
    h.nodes[0].down.insert(n(2));
    h.nodes[1].down.insert(n(2));
    h.submit(0, req(1, 1), put(key, "a"));
    h.deliver_apart(0, 1);
    h.submit(1, req(1, 2), put(key, "b"));
    h.deliver_apart(0, 1);
    let hint = &h.nodes[3].hints[&(n(2), key)];
    assert_eq!(hint.versions.len(), 2, "both siblings are hinted");
    assert_eq!(h.value(2, key), None);
    h.timer(3, Timer::Handoff);
    h.deliver_all();
    let both = siblings_of(&["a", "b"]);
    assert_eq!(h.nodes[2].siblings().get(&key), Some(&both));
    assert!(h.nodes[3].hints.is_empty());
    assert_eq!(h.nodes[3].hints_delivered, 1);
    h.submit(2, req(1, 3), get(key));
    assert_eq!(h.reply(req(1, 3)), Some(&OpResult::Siblings { values: both }));
    h.check_all();
}

/// Last writer wins' versions carry no clock and hash as the entries they replaced, so
/// its runs keep their fingerprints.
#[test]
fn clockless_versions_hash_as_the_bare_entries_did() {
    let version = Version {
        counter: 3,
        node: n(1),
    };
    let entry = Entry::new(version, Some("a".into()));
    let one = Versioned::lww(entry.clone());
    let hash = StableHasher::hash_of::<Versioned>;
    assert_eq!(hash(&one), StableHasher::hash_of(&entry));
    assert_eq!(
        StableHasher::hash_of(&Versions::one(one.clone())),
        StableHasher::hash_of(&Some(entry))
    );
    assert_eq!(
        StableHasher::hash_of(&Versions::default()),
        StableHasher::hash_of(&None::<Entry>)
    );
    let mut clocked = one.clone();
    clocked.clock.insert(n(1), 3);
    assert_ne!(hash(&clocked), hash(&one));
}

/// A write asking all N acknowledgements (a request quorum at N) survives one lost Store:
/// before a silent target is marked down the coordinator asks it once more, as dynamo's
/// does (Dynamo section 4.6 leaves a slow replica to hinted handoff only once it failed).
#[test]
fn a_store_lost_once_is_sent_again_before_its_target_is_marked_down() {
    for siblings in MODES {
        let mut h = harness(3, &[], siblings);
        let id = req(1, 1);
        h.run(0, |node, ctx| {
            let op = put(1, "a");
            node.on_request(ctx, Request { id, op, quorum: Some(3), context: None })
        });
        // Fetches answered; the Stores to n3 are lost.
        h.deliver_where(|(_, _, m)| !matches!(m, Message::Store { .. }));
        h.deliver_where(|(_, to, m)| !(matches!(m, Message::Store { .. }) && *to == n(2)));
        h.drop_for(2);
        h.deliver_all();
        assert_eq!(h.reply(id), None, "W = 3 waits for n3");
        let op = *h.nodes[0].pending.keys().next().expect("pending");
        h.timer(0, Timer::AckCheck(op));
        assert!(!h.nodes[0].down.contains(&n(2)), "asked once more, not down");
        h.deliver_all();
        assert_eq!(h.reply(id), Some(&ok("a")), "the second Store reached it");
        assert_eq!(h.value(2, 1).as_deref(), Some("a"));
    }
}

/// The hand-back deadline counts from when the holder last held the node up: a node that
/// answers now and then but misses acks (latency above `ack_timeout`) is marked down at
/// each miss, which ends its run of answers (swarm.toml seed 114 judged a hint "still held"
/// for a node its holder kept finding down).
#[test]
fn marking_a_node_down_restarts_the_hand_back_deadline() {
    let mut h = harness(3, &[], false);
    write_while_n2_is_away(&mut h);
    let stored = h.nodes[0].hints[&(n(2), 1)].stored_at;
    // n2 answered without a break for 6 s since the hint was stored: the invariant fires.
    h.nodes[0].heard.insert(n(2), (stored, stored + Span::secs(6)));
    h.nodes[0].down.remove(&n(2));
    assert!(h.nodes[0].check_invariants().is_err());
    // Marked down again by a missed ack (a second write, its Stores to n2 lost twice).
    h.submit(0, req(1, 2), put(1, "b"));
    for _ in 0..2 {
        h.drop_for(2);
        h.deliver_all();
        h.timer(0, Timer::AckCheck(2));
    }
    assert!(h.nodes[0].down.contains(&n(2)));
    h.nodes[0].check_invariants().unwrap();
}

/// The hand-back deadline is judged by each node's earliest-stored hint, kept between
/// handlers while the hints do not change: the broken hint is named as a walk over every
/// hint names it, and handing it back (a change) clears the verdict at the next judgement.
#[test]
fn the_hand_back_deadline_is_judged_by_the_earliest_hint_while_the_hints_do_not_change() {
    let mut h = harness(3, &[], false);
    write_while_n2_is_away(&mut h);
    let first = h.nodes[0].hints[&(n(2), 1)].stored_at;
    h.nodes[0].check_invariants().unwrap();
    // A later hint for n2 (key 7), stored 4 s after the first.
    h.run(0, |node, _| {
        node.now = first + Span::secs(4);
        let versions = node.hints[&(n(2), 1)].versions.clone();
        node.hints.insert(
            (n(2), 7),
            Hint {
                versions,
                stored_at: first + Span::secs(4),
            },
        );
        node.hints_stored += 1;
    });
    // n2 answered without a break from the first hint on, for 6 s: only k1's is past the
    // deadline (k7's was stored 2 s before n2's last answer).
    h.nodes[0].heard.insert(n(2), (first, first + Span::secs(6)));
    let broken = h.nodes[0].check_invariants().unwrap_err();
    assert!(broken.starts_with("hint for n3 k1 still held"), "{broken}");
    assert_eq!(h.nodes[0].check_invariants().unwrap_err(), broken, "kept while unchanged");
    h.nodes[0].hints.remove(&(n(2), 1));
    h.nodes[0].hints_delivered += 1;
    h.nodes[0].check_invariants().unwrap();
    // Heard longer, k7's hint breaks the deadline too.
    h.nodes[0].heard.insert(n(2), (first, first + Span::secs(10)));
    let broken = h.nodes[0].check_invariants().unwrap_err();
    assert!(broken.starts_with("hint for n3 k7 still held"), "{broken}");
}
