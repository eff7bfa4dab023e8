//! Primary's unit tests, on the shared hand-driven cluster (`testkit::Cluster`): messages wait
//! in flight until a test delivers or drops them, timers fire only when a test fires them, and
//! one clock serves every node.

use super::anti_entropy::Inbound;
use super::store::entry_hash;
use super::*;
use crate::params::Params;
use crate::testkit::{configs, get, n, ok, put, Cluster};
use std::collections::BTreeSet;

type Harness = Cluster<Primary>;
type Wire = crate::testkit::Wire<Primary>;

/// The incremental digest against a full recomputation, after every handler.
fn check_digest(node: &Primary) {
    let full = node
        .entries
        .iter()
        .fold(0, |acc, (k, e)| acc ^ entry_hash(*k, e));
    assert_eq!(node.digest(), full, "{}'s incremental digest", node.me);
}

impl Cluster<Primary> {
    /// `count` nodes, started and synced with each other (every start message delivered).
    fn new(count: u16, bugs: &[&'static str]) -> Harness {
        let configs = configs(count, &Params::defaults(Primary::info().params), bugs);
        let mut h = Cluster::boot_all(configs, check_digest);
        h.deliver_all();
        h
    }

    /// Advances the clock by one heartbeat and fires the heartbeat timer of `nodes`.
    fn heartbeat(&mut self, nodes: &[u16]) {
        self.now += Span::millis(50);
        for &i in nodes {
            self.run(i, |node, ctx| node.on_timer(ctx, Timer::Heartbeat));
        }
    }

    /// One heartbeat round on every node, everything delivered.
    fn round(&mut self) {
        let all: Vec<u16> = (0..self.nodes.len() as u16).collect();
        self.heartbeat(&all);
        self.deliver_all();
    }

    /// Every node's heartbeat timer fires and only the heartbeats are delivered, so what
    /// they make nodes send stays in flight for the test to see.
    fn beat(&mut self) {
        let all: Vec<u16> = (0..self.nodes.len() as u16).collect();
        self.heartbeat(&all);
        self.deliver_where(|(_, _, m)| matches!(m, Message::Heartbeat { .. }));
    }

    /// (from, to) of every pull sent so far, in send order.
    fn pulls_sent(&self) -> Vec<(NodeId, NodeId)> {
        let pulls = self
            .sent
            .iter()
            .filter(|(_, _, m)| *m == Message::SyncRequest);
        pulls.map(|(f, t, _)| (*f, *t)).collect()
    }

    /// How many full states were sent so far.
    fn states_sent(&self) -> usize {
        let states = self.sent.iter();
        states
            .filter(|(_, _, m)| matches!(m, Message::SyncState { .. }))
            .count()
    }

    /// Node `i`'s count of the forwards of `from`.
    fn inbound(&self, i: u16, from: u16) -> &Inbound {
        &self.nodes[usize::from(i)].peers[&n(from)].inbound
    }

    fn entry_value(&self, i: u16, key: Key) -> Option<&str> {
        let entry = self.nodes[usize::from(i)].entries.get(&key)?;
        entry.value.as_deref()
    }

    fn values(&self, key: Key) -> Vec<Option<&str>> {
        (0..self.nodes.len() as u16)
            .map(|i| self.entry_value(i, key))
            .collect()
    }

    fn converged(&self) -> bool {
        let first = (self.nodes[0].store(), self.nodes[0].digest());
        self.nodes.iter().all(|p| (p.store(), p.digest()) == first)
    }
}

#[test]
fn info_declares_name_params_and_bugs() {
    let info = Primary::info();
    assert_eq!(info.name, "primary");
    let params = super::Params::defaults();
    assert_eq!(params.heartbeat, Span::millis(50));
    assert_eq!(params.failure_timeout, Span::millis(250));
    assert_eq!(params.anti_entropy_after, 3);
    let bugs: Vec<&str> = info.bugs.iter().map(|b| b.name).collect();
    assert_eq!(
        bugs,
        [
            "skip-resync",
            "blind-apply",
            "no-anti-entropy",
            "volatile-counter"
        ]
    );
}

#[test]
fn a_write_at_one_node_reaches_every_replica() {
    let mut h = Harness::new(3, &[]);
    assert!(h.nodes.iter().all(|p| p.synced));
    let reply = h.request(0, put(1, "a"));
    assert_eq!(
        reply,
        ok("a")
    );
    // Acknowledged before any peer has it: the AP choice of the seed.
    assert_eq!(h.values(1), [Some("a"), None, None]);
    assert_eq!(h.deliver_all(), 2);
    assert_eq!(h.values(1), [Some("a"); 3]);
    assert!(h.converged());
    assert_eq!(
        h.request(2, get(1)),
        ok("a")
    );
}

#[test]
fn concurrent_writes_in_opposite_orders_converge_to_the_greater_version() {
    let mut h = Harness::new(3, &[]);
    h.request(0, put(1, "x")); // version (1, n1)
    h.request(1, put(1, "y")); // version (1, n2): greater, n2 > n1 breaks the tie

    // n3 hears n2's write first, then n1's; n1 and n2 each hear the other's.
    h.deliver_where(|(from, to, _)| *from == n(1) && *to == n(2));
    h.deliver_all();
    assert_eq!(h.values(1), [Some("y"); 3]);
    assert!(h.converged());
    // The next write anywhere orders after both (Lamport).
    h.request(0, put(1, "z"));
    assert_eq!(
        h.nodes[0].entries[&1].version,
        Version {
            counter: 2,
            node: n(0)
        }
    );
}

#[test]
fn blind_apply_leaves_concurrent_writes_diverged() {
    let mut h = Harness::new(3, &["blind-apply"]);
    h.request(0, put(1, "x"));
    h.request(1, put(1, "y"));
    h.deliver_where(|(from, to, _)| *from == n(1) && *to == n(2));
    h.deliver_all();
    // Each replica keeps whatever arrived last.
    assert_eq!(h.values(1), [Some("y"), Some("x"), Some("x")]);
    assert!(!h.converged());
}

#[test]
fn a_delete_leaves_a_tombstone_that_a_late_older_put_cannot_undo() {
    let mut h = Harness::new(3, &[]);
    h.request(0, put(1, "a")); // (1, n1)
                               // Only n2 hears the put before deleting; the put to n3 is late.
    h.deliver_where(|(_, to, _)| *to == n(1));
    assert_eq!(
        h.request(1, Op::Delete { key: 1 }),
        OpResult::Ok { value: None }
    );
    assert_eq!(
        h.nodes[1].entries[&1].version,
        Version {
            counter: 2,
            node: n(1)
        }
    );
    // The delete reaches everyone first, then the old put reaches n3.
    h.deliver_where(|(from, _, _)| *from == n(1));
    h.deliver_all();
    assert_eq!(h.values(1), [None; 3]);
    assert!(h.nodes.iter().all(|p| p.store().is_empty()));
    assert!(
        h.nodes.iter().all(|p| p.entries.contains_key(&1)),
        "tombstones kept"
    );
    assert!(h.converged());
    assert_eq!(h.request(2, get(1)), OpResult::NotFound);
}

/// A cluster holding k1 = a, k2 deleted (a tombstone), k3 = c, all delivered.
fn cluster_with_history(bugs: &[&'static str]) -> Harness {
    let mut h = Harness::new(3, bugs);
    h.request(0, put(1, "a"));
    h.request(1, put(2, "b"));
    h.request(2, put(3, "c"));
    h.deliver_all();
    h.request(0, Op::Delete { key: 2 });
    h.deliver_all();
    assert!(h.converged());
    h
}

#[test]
fn a_restarted_node_pulls_the_state_it_lost() {
    let mut h = cluster_with_history(&[]);
    let before = h.nodes[0].digest();
    h.restart(2);
    assert!(h.nodes[2].store().is_empty());
    assert!(!h.nodes[2].synced);
    h.deliver_all();
    assert!(h.nodes[2].synced);
    assert_eq!(h.values(1), [Some("a"); 3]);
    assert_eq!(h.values(3), [Some("c"); 3]);
    // The tombstone comes back too, so equal digests mean equal replicas.
    assert_eq!(h.nodes[2].entries[&2].value, None);
    assert_eq!(h.nodes[2].digest(), before);
    assert!(h.converged());
}

#[test]
fn with_skip_resync_a_restarted_node_stays_empty() {
    let mut h = cluster_with_history(&["skip-resync"]);
    h.restart(2);
    h.deliver_all();
    for _ in 0..10 {
        h.round();
    }
    // Still syncing, it never pulls, and nobody pushes: it never catches up.
    assert!(!h.nodes[2].synced);
    assert!(h.nodes[2].store().is_empty());
    assert_eq!(h.values(1), [Some("a"), Some("a"), None]);
    assert!(!h.converged());
    // New writes still reach it: only the past is missing.
    h.request(0, put(4, "d"));
    h.deliver_all();
    assert_eq!(h.values(4), [Some("d"); 3]);
    // n1's third forward to n3 arrives past a gap that no pull will ever close: gap pulls
    // run only at synced nodes (module doc, "Anti-entropy").
    let pulls_before = h.pulls_sent().len();
    for _ in 0..10 {
        h.round();
    }
    let inbound = h.inbound(2, 0);
    assert_eq!(inbound.received_through, 0);
    assert_eq!(inbound.received_beyond, BTreeSet::from([3]));
    assert_eq!(inbound.sent_reported, 3);
    assert_eq!(h.pulls_sent().len(), pulls_before);
    assert_eq!(h.nodes[2].store().len(), 1);
    assert!(!h.converged());
}

#[test]
fn a_restarted_node_issues_versions_past_its_pre_crash_ones() {
    let mut h = Harness::new(3, &[]);
    h.request(0, put(1, "a"));
    assert_eq!(h.nodes[0].entries[&1].version.counter, 1);
    let reserved = COUNTER_RESERVE_CHUNK;
    assert_eq!(
        h.durable[0],
        Some(PrimaryDurable {
            counter_reserved: reserved,
            damaged: false,
        })
    );
    h.deliver_all();
    h.restart(0);
    // Every start reserves one chunk past where it resumes, before it sends anything.
    let next = reserved + COUNTER_RESERVE_CHUNK;
    assert_eq!(
        h.durable[0],
        Some(PrimaryDurable {
            counter_reserved: next,
            damaged: false,
        })
    );
    // A write before the resync answers arrive: it must still order after the crash.
    h.request(0, put(1, "b"));
    let v = h.nodes[0].entries[&1].version;
    assert_eq!(
        v,
        Version {
            counter: reserved + 1,
            node: n(0)
        }
    );
    h.deliver_all();
    assert_eq!(h.values(1), [Some("b"); 3]);
    assert!(h.converged());
}

#[test]
fn with_volatile_counter_a_restarted_node_reuses_a_version_and_replicas_diverge() {
    let mut h = Harness::new(3, &["volatile-counter"]);
    h.request(0, put(1, "a")); // (1, n1)
    h.deliver_all();
    h.restart(0);
    h.request(0, put(1, "b")); // (1, n1) again, another value
    h.deliver_all();
    for _ in 0..10 {
        h.round();
    }
    // Equal versions are never replaced, whatever anti-entropy pushes.
    assert_eq!(h.values(1), [Some("b"), Some("a"), Some("a")]);
    assert!(!h.converged());
}

/// Node `i` restarts from a log whose only record, its counter mark, fails its checksum.
fn restart_with_corrupt_mark(h: &mut Harness, i: u16) {
    h.crash(i);
    let lost = h.durable[usize::from(i)].expect("a mark was written");
    h.durable[usize::from(i)] = None;
    let read = crate::contract::Read::Corrupt {
        written: &lost,
        flip: 1,
    };
    let config = h.configs[usize::from(i)].clone();
    assert!(!Primary::recover(&mut h.durable[usize::from(i)], read, &config));
    h.recover(i);
}

#[test]
fn a_node_whose_mark_is_corrupt_relearns_its_counter_from_every_peer_before_writing() {
    // disk-faults.toml seed 23: the corrupt mark read as none, the node restarted its counter
    // at 0 and reused (1, n1) for another value, which every replica holding the old one
    // refused forever (as volatile-counter does on purpose).
    let mut h = Harness::new(3, &[]);
    h.request(0, put(1, "a")); // (1, n1), incarnation 1000
    h.deliver_all();
    let old_incarnation = h.nodes[0].incarnation;
    restart_with_corrupt_mark(&mut h, 0);
    assert!(h.durable[0].is_some_and(|d| d.damaged), "still damaged if it crashes now");
    // Before its peers answer it issues no version: a write is refused, never applied.
    assert_eq!(
        h.request(0, put(1, "b")),
        OpResult::Unavailable { hint: None }
    );
    h.deliver_all();
    assert!(h.nodes[0].relearning.is_none());
    assert!(h.durable[0].is_some_and(|d| !d.damaged));
    assert!(h.nodes[0].incarnation > old_incarnation, "a fresh incarnation");
    h.request(0, put(1, "b"));
    let v = h.nodes[0].entries[&1].version;
    assert!(v.counter > 1, "past the version it issued before: {v:?}");
    h.deliver_all();
    for _ in 0..3 {
        h.round();
    }
    assert_eq!(h.values(1), [Some("b"); 3]);
    assert!(h.converged());
}

#[test]
fn a_node_relearning_its_counter_asks_again_until_every_peer_has_answered() {
    let mut h = Harness::new(3, &[]);
    h.request(1, put(1, "a"));
    h.deliver_all();
    restart_with_corrupt_mark(&mut h, 0);
    // n3's answer is lost: n1 keeps refusing writes, and asks n3 again on its heartbeat.
    h.drop_where(|(_, to, m)| *to == n(2) && matches!(m, Message::CounterQuery));
    h.deliver_all();
    assert_eq!(h.nodes[0].relearning, Some(BTreeSet::from([n(2)])));
    assert!(!h.request(0, put(2, "x")).is_applied());
    h.round();
    assert!(h.nodes[0].relearning.is_none());
    assert!(h.request(0, put(2, "x")).is_applied());
}

// Anti-entropy (module doc, "Failure detection and repair", 3): forwards are numbered per
// link, heartbeats carry the count sent, and a forward still missing a heartbeat period
// after a heartbeat counted it was lost.

#[test]
fn anti_entropy_a_dropped_forward_is_detected_at_the_second_heartbeat_and_pulled() {
    let mut h = Harness::new(3, &[]);
    let (pulls, states) = (h.pulls_sent().len(), h.states_sent());
    h.request(0, put(1, "a"));
    assert_eq!(
        h.inflight[1].2,
        Message::Forward {
            key: 1,
            entry: h.nodes[0].entries[&1].clone(),
            incarnation: COUNTER_RESERVE_CHUNK,
            seq: 1
        }
    );
    h.drop_where(|(_, to, _)| *to == n(2));
    h.deliver_all();
    assert_eq!(h.values(1), [Some("a"), Some("a"), None]);
    // The first heartbeat counts the forward; it may still be on its way.
    h.beat();
    assert_eq!(h.inbound(2, 0).sent_reported, 1);
    assert_eq!(h.inbound(2, 0).received_through, 0);
    assert_eq!(h.pulls_sent().len(), pulls);
    // The second finds it still missing: lost. n3 pulls from n1, and only that.
    h.beat();
    assert_eq!(h.pulls_sent()[pulls..], [(n(2), n(0))]);
    h.deliver_all();
    assert_eq!(h.states_sent(), states + 1);
    assert_eq!(h.inbound(2, 0).received_through, 1);
    assert_eq!(h.values(1), [Some("a"); 3]);
    assert!(h.converged());
    // Repaired: heartbeats alone from now on.
    for _ in 0..5 {
        h.round();
    }
    assert_eq!(h.pulls_sent().len(), pulls + 1);
}

#[test]
fn anti_entropy_a_duplicated_forward_does_not_hide_a_lost_one() {
    let mut h = Harness::new(3, &[]);
    let pulls = h.pulls_sent().len();
    h.request(0, put(1, "a")); // seq 1 on every link of n1
    h.request(0, put(2, "b")); // seq 2
    let first = h
        .inflight
        .iter()
        .find(|(_, to, m)| *to == n(2) && matches!(m, Message::Forward { seq: 1, .. }))
        .cloned()
        .expect("forward 1 to n3");
    h.inflight.push(first);
    h.drop_where(|(_, to, m)| *to == n(2) && matches!(m, Message::Forward { seq: 2, .. }));
    h.deliver_all();
    assert_eq!(h.inbound(2, 0).received_through, 1);
    assert!(h.inbound(2, 0).received_beyond.is_empty());
    h.beat();
    h.beat();
    assert_eq!(h.pulls_sent()[pulls..], [(n(2), n(0))]);
    h.deliver_all();
    assert_eq!(h.values(2), [Some("b"); 3]);
    assert_eq!(h.inbound(2, 0).received_through, 2);
    assert!(h.converged());
}

#[test]
fn anti_entropy_forwards_reordered_within_a_heartbeat_period_cause_no_pull() {
    let mut h = Harness::new(3, &[]);
    let (pulls, states) = (h.pulls_sent().len(), h.states_sent());
    for key in 1..=3 {
        h.request(0, put(key, "a"));
    }
    let to_n3_seq = |seq: u64| {
        move |(_, to, m): &Wire| {
            *to == n(2) && matches!(m, Message::Forward { seq: s, .. } if *s == seq)
        }
    };
    // The third overtakes the others, and a heartbeat overtakes the first two.
    h.deliver_where(to_n3_seq(3));
    h.beat();
    assert_eq!(h.inbound(2, 0).received_through, 0);
    assert_eq!(h.inbound(2, 0).received_beyond, BTreeSet::from([3]));
    h.deliver_where(to_n3_seq(2));
    assert_eq!(h.inbound(2, 0).received_beyond, BTreeSet::from([2, 3]));
    h.deliver_all();
    assert_eq!(h.inbound(2, 0).received_through, 3);
    assert!(h.inbound(2, 0).received_beyond.is_empty());
    for _ in 0..5 {
        h.round();
    }
    assert_eq!(h.pulls_sent().len(), pulls);
    assert_eq!(h.states_sent(), states);
    assert!(h.converged());
}

#[test]
fn anti_entropy_steady_writes_with_nothing_lost_send_no_sync_messages() {
    let mut h = Harness::new(3, &[]);
    let (pulls, states) = (h.pulls_sent().len(), h.states_sent());
    let mut writes = 0u64;
    for step in 0..30u64 {
        for i in 0..3u16 {
            for _ in 0..4 {
                writes += 1;
                h.request(i, put(writes % 50, &format!("v{step}")));
            }
        }
        // Every heartbeat leaves with forwards still on their way: digests differ.
        h.heartbeat(&[0, 1, 2]);
        assert_ne!(h.nodes[0].digest(), h.nodes[1].digest(), "step {step}");
        h.deliver_where(|(_, _, m)| matches!(m, Message::Heartbeat { .. }));
        h.deliver_all();
    }
    assert_eq!(h.pulls_sent().len(), pulls);
    assert_eq!(h.states_sent(), states);
    assert!(h.converged());
    assert_eq!(h.inbound(1, 2).received_through, 4 * 30);
    assert_eq!(h.inbound(1, 2).sent_reported, 4 * 30);
}

#[test]
fn with_no_anti_entropy_a_lost_forward_is_never_repaired() {
    let mut h = Harness::new(3, &["no-anti-entropy"]);
    let pulls = h.pulls_sent().len();
    h.request(0, put(1, "a"));
    h.drop_where(|(_, to, _)| *to == n(2));
    h.deliver_all();
    for _ in 0..20 {
        h.round();
    }
    // The gap is seen and never acted on.
    assert_eq!(h.inbound(2, 0).sent_reported, 1);
    assert_eq!(h.inbound(2, 0).received_through, 0);
    assert_eq!(h.pulls_sent().len(), pulls);
    assert_eq!(h.values(1), [Some("a"), Some("a"), None]);
    assert!(!h.converged());
}

#[test]
fn anti_entropy_a_restarted_senders_new_incarnation_resets_the_count_without_a_pull() {
    let mut h = Harness::new(3, &[]);
    for key in 1..=3 {
        h.request(0, put(key, "a"));
    }
    h.round();
    h.round();
    assert_eq!(h.inbound(2, 0).incarnation, COUNTER_RESERVE_CHUNK);
    assert_eq!(h.inbound(2, 0).received_through, 3);
    // n1's last heartbeat of its first incarnation is delayed past its restart.
    h.heartbeat(&[0]);
    let stale = h
        .inflight
        .iter()
        .position(|(_, to, _)| *to == n(2))
        .expect("a beat");
    let stale = h.inflight.remove(stale);
    h.deliver_all();
    h.restart(0);
    h.deliver_all();
    let pulls = h.pulls_sent().len();
    let incarnation = 2 * COUNTER_RESERVE_CHUNK;
    assert_eq!(h.nodes[0].incarnation, incarnation);
    // Numbers start again in the new incarnation: n1 passed on to n3 the three entries its
    // restart pull took from n2's state (seq 1 to 3), and its next write is seq 4.
    h.request(0, put(4, "d"));
    h.deliver_all();
    assert_eq!(h.inbound(2, 0).incarnation, incarnation);
    assert_eq!(h.inbound(2, 0).received_through, 4);
    // Counts of the old incarnation are ignored: its "3 sent" would look like a gap.
    h.inflight.push(stale);
    h.deliver_all();
    assert_eq!(h.inbound(2, 0).sent_reported, 0);
    for _ in 0..5 {
        h.round();
    }
    assert_eq!(h.inbound(2, 0).sent_reported, 4);
    assert_eq!(h.pulls_sent().len(), pulls);
    assert!(h.converged());
}

#[test]
fn anti_entropy_a_sender_restarted_with_forwards_unaccounted_for_is_pulled_once_synced() {
    let mut h = Harness::new(3, &[]);
    h.request(0, put(1, "a")); // seq 1: reaches n3
    h.request(0, put(2, "b")); // seq 2: lost on its way to n3, and n1 crashes
    h.drop_where(|(_, to, m)| *to == n(2) && matches!(m, Message::Forward { seq: 2, .. }));
    h.deliver_all();
    h.restart(0);
    // n1's restart pull brings k2 back from n2, and n1 passes what it took on to n3 (module
    // doc, "Restart pull"). n3 could not have known forward 2 existed; it also saw forwards
    // past n1's last heartbeat, so it pulls once n1 says it is synced.
    h.deliver_all();
    assert_eq!(h.values(2), [Some("b"); 3]);
    let pulls = h.pulls_sent().len();
    h.beat();
    // n2 got both forwards, but cannot tell that nothing followed them: it pulls too.
    assert_eq!(h.pulls_sent()[pulls..], [(n(1), n(0)), (n(2), n(0))]);
    h.deliver_all();
    assert_eq!(h.values(2), [Some("b"); 3]);
    assert!(h.converged());
    for _ in 0..5 {
        h.round();
    }
    assert_eq!(h.pulls_sent().len(), pulls + 2);
}

#[test]
fn heartbeats_mark_a_silent_peer_down_and_a_heard_one_up_with_a_pull() {
    // No anti-entropy: the heal pull alone must converge both sides.
    let mut h = Harness::new(3, &["no-anti-entropy"]);
    let cut = |(from, to, _): &Wire| *from == n(2) || *to == n(2);
    // n3 is frozen: its traffic stops, it keeps its state, and each side writes.
    h.request(0, put(1, "a"));
    h.request(2, put(2, "b"));
    for beat in 1..=5 {
        h.heartbeat(&[0, 1, 2]);
        h.drop_where(cut);
        h.deliver_all();
        // Marked down after failure_timeout (250ms) of silence, not before.
        assert_eq!(h.nodes[0].peers[&n(2)].up, beat < 5, "beat {beat}");
    }
    assert!(!h.nodes[2].peers[&n(0)].up);
    assert!(h.nodes[0].peers[&n(1)].up);
    // Unfrozen: the first heartbeats through bring both sides up and make each pull.
    h.heartbeat(&[0, 1, 2]);
    let pulls = h
        .inflight
        .iter()
        .filter(|(_, _, m)| *m == Message::SyncRequest);
    assert_eq!(pulls.count(), 0);
    h.deliver_where(|(_, _, m)| matches!(m, Message::Heartbeat { .. }));
    assert!(h.nodes[0].peers[&n(2)].up);
    assert!(h.nodes[2].peers[&n(0)].up);
    let mut pulls: Vec<(NodeId, NodeId)> = h
        .inflight
        .iter()
        .filter(|(_, _, m)| *m == Message::SyncRequest)
        .map(|(f, t, _)| (*f, *t))
        .collect();
    pulls.sort();
    assert_eq!(
        pulls,
        [(n(0), n(2)), (n(1), n(2)), (n(2), n(0)), (n(2), n(1))]
    );
    h.deliver_all();
    assert_eq!(h.values(1), [Some("a"); 3]);
    assert_eq!(h.values(2), [Some("b"); 3]);
    assert!(h.converged());
}

/// Restart pull (module doc, 1): the store is volatile, so after n1 and n2 both restart only
/// n3 holds k1. n1's first answer comes from n2, empty (it restarted too), and n3's answer
/// is lost: n1 serves, yet it goes on asking n3 on each heartbeat until n3 answers, and
/// passes what n3's state taught it on to n2, so that every replica holds k1 again.
#[test]
fn restart_pull_asks_every_peer_until_each_answered_and_passes_on_what_it_learnt() {
    let mut h = Harness::new(3, &[]);
    h.request(2, put(1, "kept"));
    h.deliver_all();
    assert_eq!(h.values(1), [Some("kept"); 3]);
    h.crash(0);
    h.crash(1);
    h.recover(1);
    h.recover(0);
    // n3's answers to both restart pulls are lost; n2's and n1's answers arrive (empty).
    h.drop_where(|(from, _, m)| *from == n(2) && matches!(m, Message::SyncState { .. }));
    h.deliver_where(|(from, _, m)| *from != n(2) || !matches!(m, Message::SyncState { .. }));
    h.drop_where(|(from, _, m)| *from == n(2) && matches!(m, Message::SyncState { .. }));
    assert!(h.nodes[0].synced && h.nodes[1].synced, "a first answer each");
    assert_eq!(h.values(1), [None, None, Some("kept")]);
    let pulls = h.pulls_sent().len();
    h.heartbeat(&[0, 1, 2]);
    let again: Vec<(NodeId, NodeId)> = h.pulls_sent()[pulls..].to_vec();
    assert!(again.contains(&(n(0), n(2))) && again.contains(&(n(1), n(2))), "{again:?}");
    h.deliver_all();
    assert_eq!(h.values(1), [Some("kept"); 3]);
    assert!(h.converged());
    // Every peer has answered now: no more restart pulls.
    let pulls = h.pulls_sent().len();
    for _ in 0..3 {
        h.round();
    }
    assert_eq!(h.pulls_sent().len(), pulls);
}
