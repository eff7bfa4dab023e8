//! Raft's unit tests, each citing the section of the paper (or thesis) it checks, on a small
//! hand-driven cluster: messages wait in flight until a test delivers or drops them, timers
//! fire only when a test fires them, and one clock serves every node.

use super::log::Command;
use super::*;
use crate::params::{ParamValue, Params};
use crate::testkit::{append, configs, get, n, ok, put, req, Cluster};

type Harness = Cluster<Raft>;
type Wire = crate::testkit::Wire<Raft>;

impl Cluster<Raft> {
    /// `count` fresh followers, with `sets` overriding the default parameters.
    fn new(count: u16, bugs: &[&'static str], sets: &[(&'static str, ParamValue)]) -> Harness {
        let mut params = Params::defaults(Raft::info().params);
        for (name, value) in sets {
            params.set(name, value.clone());
        }
        let configs = configs(count, &params, bugs);
        Cluster::boot_all(configs, |_| {})
    }

    /// Lets node `i`'s election timeout pass and fire: it campaigns (a first firing after
    /// contact with a leader only re-arms the timer, as the lazy re-arm says). With Pre-Vote
    /// (the default) only the pre-vote round is delivered, and it must win.
    fn campaign(&mut self, i: u16) {
        assert!(self.try_campaign(i), "n{i} did not campaign");
    }

    /// As [`Cluster::campaign`], returning whether node `i` bumped its term.
    fn try_campaign(&mut self, i: u16) -> bool {
        self.now += Span::millis(300);
        let term = self.nodes[usize::from(i)].current_term;
        for _ in 0..2 {
            self.run(i, |node, ctx| node.on_timer(ctx, Timer::Election));
            if self.nodes[usize::from(i)].role == Role::PreCandidate {
                self.deliver_where(|w| {
                    matches!(
                        w.2,
                        Message::RequestVote { pre_vote: true, .. }
                            | Message::RequestVoteResponse { pre_vote: true, .. }
                    )
                });
            }
            if self.nodes[usize::from(i)].current_term > term {
                return true;
            }
            if self.nodes[usize::from(i)].role == Role::PreCandidate {
                return false;
            }
        }
        false
    }

    /// A heartbeat interval passes and node `i`'s heartbeat timer fires.
    fn heartbeat(&mut self, i: u16) {
        self.now += Span::millis(50);
        self.run(i, |node, ctx| node.on_timer(ctx, Timer::Heartbeat));
    }

    /// Gives node `i` a log of these terms (one no-op each) and the latest term as its own,
    /// as earlier elections would have left them.
    fn set_log(&mut self, i: u16, terms: &[u64]) {
        let node = &mut self.nodes[usize::from(i)];
        for &term in terms {
            node.log.append(term, Command::Noop);
            node.current_term = node.current_term.max(term);
        }
        node.dirty = true;
        self.check(i);
    }

    /// How many AppendEntries `from` sent `to`.
    fn appends(&self, from: u16, to: u16) -> usize {
        self.sent
            .iter()
            .filter(|(f, t, m)| {
                (*f, *t) == (n(from), n(to)) && matches!(m, Message::AppendEntries { .. })
            })
            .count()
    }
}

/// Section 5.2: a candidate with a majority's votes leads; one with a log behind a voter's is
/// refused (section 5.4.1), and only the planted bug lets it win anyway.
#[test]
fn election_5_2_votes_only_for_an_up_to_date_log() {
    for (bugs, stale_wins) in [(&[][..], false), (&["vote-without-log-check"][..], true)] {
        // Without Pre-Vote, so that the stale candidate asks for real votes (with it, the
        // pre-vote round refuses it first: see `prevote_9_6_*`).
        let mut h = Harness::new(3, bugs, &[("pre_vote", ParamValue::Bool(false))]);
        if stale_wins {
            // The cluster invariants would stop the test at the stale leader's election.
            h = h.unchecked();
        }
        h.campaign(0);
        h.deliver_all();
        assert_eq!(h.node(0).role, Role::Leader);
        assert_eq!(h.node(0).current_term, 1);
        // n3 misses a committed write.
        h.submit(0, req(1, 1), append(1, "x"));
        h.drop_where(|(_, to, _)| *to == n(2));
        h.deliver_where(|(_, to, _)| *to != n(2));
        assert_eq!(h.replies.len(), 1, "committed by n1 and n2");
        assert!(h.node(2).log.last_index() < h.node(0).commit_index);
        h.drop_where(|_| true);
        h.campaign(2);
        // Only the election: a stale leader's AppendEntries would truncate committed
        // entries, which the node's own invariants catch.
        h.deliver_where(|w| {
            matches!(
                w.2,
                Message::RequestVote { .. } | Message::RequestVoteResponse { .. }
            )
        });
        assert_eq!(h.node(2).role == Role::Leader, stale_wins, "bugs {bugs:?}");
        assert_eq!(h.node(0).role, Role::Follower, "a newer term deposes n1");
        // Leader completeness (section 5.4) is what the stale leader breaks.
        let broken = h.check_cluster().err().unwrap_or_default();
        assert_eq!(broken.contains("committed at n1"), stale_wins, "{broken}");
        // The engine's check after n3's or n1's handler judges only the pairs with that node
        // in them, and finds the same broken pair, with the same words.
        let nodes: Vec<Option<&Raft>> = h.nodes.iter().map(Some).collect();
        for changed in [n(2), n(0)] {
            let partial = Raft::check_cluster(&nodes, &[h.now; 3], Some(changed));
            assert_eq!(partial.err().unwrap_or_default(), broken, "after {changed}");
        }
    }
}

/// Section 5.3: a follower whose log conflicts answers with the conflicting term and its
/// first index, so the leader skips the whole term in one round trip, then overwrites it.
#[test]
fn log_5_3_conflicts_are_repaired_a_term_per_round_trip() {
    let mut h = Harness::new(3, &[], &[]);
    h.set_log(0, &[1, 1, 3, 3, 3]);
    h.set_log(1, &[1, 1, 2, 2, 2]);
    h.set_log(2, &[1, 1, 3, 3, 3]);
    h.campaign(0);
    h.deliver_all();
    assert_eq!(h.node(0).role, Role::Leader);
    let rejected = h.sent.iter().find_map(|(from, _, m)| match m {
        Message::AppendEntriesResponse {
            success: false,
            conflict_term,
            conflict_index,
            ..
        } if *from == n(1) => Some((*conflict_term, *conflict_index)),
        _ => None,
    });
    assert_eq!(
        rejected,
        Some((Some(2), 3)),
        "term 2 starts at index 3 in n2's log"
    );
    // One refused batch at the no-op, one that replaces all of term 2.
    assert_eq!(h.appends(0, 1), 2);
    let last = h.node(0).log.last_index();
    assert_eq!(last, 6);
    assert_eq!(h.node(1).log.last_index(), last);
    assert_eq!(h.node(1).log.chain_at(last), h.node(0).log.chain_at(last));
    assert_eq!(h.node(0).commit_index, last);
    h.heartbeat(0);
    h.deliver_all();
    assert_eq!(
        h.node(1).commit_index,
        last,
        "the next heartbeat carries the commit"
    );
}

/// Section 5.4.2 (Figure 8): an entry of an earlier term held by a majority is not committed
/// by counting replicas; it commits once an entry of the leader's term does. The planted bug
/// commits it early.
#[test]
fn commit_5_4_2_counts_replicas_only_for_the_current_term() {
    for (bugs, early) in [(&[][..], 0), (&["commit-previous-term"][..], 2)] {
        let mut h = Harness::new(5, bugs, &[("max_batch", ParamValue::Int(1))]);
        // n1 led term 2 and got index 2 nowhere; n4 and n5 are down.
        h.set_log(0, &[1, 2]);
        h.set_log(1, &[1]);
        h.set_log(2, &[1]);
        let down = |w: &Wire| w.1 == n(3) || w.1 == n(4);
        h.campaign(0);
        h.drop_where(down);
        let vote = |w: &Wire| matches!(w.2, Message::RequestVote { .. });
        let vote_answer = |w: &Wire| matches!(w.2, Message::RequestVoteResponse { .. });
        h.deliver_where(|w| vote(w) || vote_answer(w));
        // One-entry batches: the no-op at 3 is refused (n2, n3 lack index 2), then index 2
        // is sent and acknowledged; the no-op's second sending stays in flight.
        let answer = |w: &Wire| matches!(w.2, Message::AppendEntriesResponse { .. });
        let at = |prev: u64| move |w: &Wire| matches!(w.2, Message::AppendEntries { prev_log_index, .. } if prev_log_index == prev);
        h.deliver_where(|w| !down(w) && (at(2)(w) || answer(w)));
        h.deliver_where(|w| !down(w) && (at(1)(w) || answer(w)));
        h.drop_where(down);
        assert_eq!(h.node(0).role, Role::Leader);
        assert_eq!(h.node(0).current_term, 3);
        for i in 1..=2 {
            assert_eq!(
                h.node(i).log.term_at(2),
                Some(2),
                "n{} holds index 2",
                i + 1
            );
        }
        assert_eq!(h.node(0).commit_index, early, "bugs {bugs:?}");
        // The no-op of term 3 reaches the majority: both commit.
        h.deliver_where(|w| !down(w));
        assert_eq!(h.node(0).commit_index, 3);
    }
}

/// Section 5.4.2, Figure 8, as the cluster invariants see it: a leader that commits an
/// earlier term's entry by counting replicas leaves a node without that entry (n5, which led
/// term 3 and wrote index 2 nowhere else) that a majority would still elect. Commit safety
/// says so the moment the entry commits, before any such election or client read.
#[test]
fn commit_5_4_2_an_early_commit_is_unsafe_at_once() {
    for (bugs, early) in [(&[][..], false), (&["commit-previous-term"][..], true)] {
        let mut h = Harness::new(5, bugs, &[("max_batch", ParamValue::Int(1))]).unchecked();
        h.set_log(0, &[1, 2]);
        for i in 1..=3 {
            h.set_log(i, &[1]);
        }
        h.set_log(4, &[1, 3]);
        for i in 0..=3usize {
            h.nodes[i].current_term = 3;
        }
        let down = |w: &Wire| w.1 == n(3) || w.1 == n(4);
        h.campaign(0);
        h.drop_where(down);
        let vote = |w: &Wire| {
            matches!(
                w.2,
                Message::RequestVote { .. } | Message::RequestVoteResponse { .. }
            )
        };
        h.deliver_where(vote);
        assert_eq!((h.node(0).role, h.node(0).current_term), (Role::Leader, 4));
        let answer = |w: &Wire| matches!(w.2, Message::AppendEntriesResponse { .. });
        let at = |prev: u64| move |w: &Wire| matches!(w.2, Message::AppendEntries { prev_log_index, .. } if prev_log_index == prev);
        h.deliver_where(|w| !down(w) && (at(2)(w) || answer(w)));
        h.deliver_where(|w| !down(w) && (at(1)(w) || answer(w)));
        h.drop_where(down);
        assert_eq!(h.node(0).commit_index == 2, early, "bugs {bugs:?}");
        let broken = h.check_cluster().err().unwrap_or_default();
        assert_eq!(broken.contains("n5 lacks entry 2"), early, "{broken}");
        // The no-op of term 4 on a majority makes index 2 safe: n2 and n3 now refuse n5.
        h.deliver_where(|w| !down(w));
        assert_eq!(h.node(0).commit_index, 3);
        assert_eq!(h.check_cluster(), Ok(()));
    }
}

/// Thesis 6.4.1: a lease allows for clocks that drift apart. The voters' clocks (the test's
/// one clock) run 20% fast and the leader's 20% slow, within the 25% bound the lease is
/// configured with: when a new leader is elected just after a minimum election timeout on
/// the voters' clocks, the correct lease has run out on the leader's clock, while the
/// planted bug's (a full minimum timeout) still holds, and lease safety says so.
#[test]
fn lease_6_4_1_outlasts_no_leadership_under_bounded_drift() {
    for (bugs, unsafe_lease) in [(&[][..], false), (&["lease-without-drift-bound"][..], true)] {
        let sets = [
            ("lease_reads", ParamValue::Bool(true)),
            ("lease_drift_bound_ppm", ParamValue::Int(250_000)),
            ("pre_vote", ParamValue::Bool(false)),
        ];
        let mut h = Harness::new(3, bugs, &sets).unchecked();
        h.campaign(0);
        h.deliver_all();
        h.heartbeat(0);
        h.deliver_all();
        assert!(h.node(0).leader.as_ref().unwrap().lease_until.is_some());
        let start = h.node(0).leader.as_ref().unwrap().quorum_round_at;
        // Just past the minimum election timeout (150ms) on the voters' fast clocks.
        h.now = start + Span::millis(151);
        for _ in 0..2 {
            h.run(1, |node, ctx| node.on_timer(ctx, Timer::Election));
        }
        h.deliver_where(|w| w.1 != n(0));
        assert_eq!((h.node(1).role, h.node(1).current_term), (Role::Leader, 2));
        assert_eq!(h.node(0).role, Role::Leader, "n1 has heard nothing yet");
        // 151ms on a clock 20% fast is 125.8ms of true time, 100.7ms on one 20% slow.
        let slow = start + Span(h.now.since(start).0 * 8 / 12);
        let clocks = [slow, h.now, h.now];
        let nodes: Vec<Option<&Raft>> = h.nodes.iter().map(Some).collect();
        let broken = Raft::check_cluster(&nodes, &clocks, None).err().unwrap_or_default();
        assert_eq!(broken.contains("serves lease reads"), unsafe_lease, "{broken}");
        // On one shared clock the same lease is safe either way (the voters waited it out).
        assert_eq!(Raft::check_cluster(&nodes, &[h.now; 3], None), Ok(()));
    }
}

/// Thesis 6.4.1: a voter that acknowledged a leader's lease and then restarted knows no
/// leader, yet must keep refusing votes for a minimum election timeout from its start, or a
/// majority of restarted voters elects a new leader while the old one still reads from its
/// lease (split-vote-crash.toml seed 8 with lease reads did so before the fix).
#[test]
fn lease_6_4_1_a_restarted_voter_refuses_votes_for_an_election_timeout() {
    let sets = [
        ("lease_reads", ParamValue::Bool(true)),
        ("pre_vote", ParamValue::Bool(false)),
    ];
    let mut h = Harness::new(3, &[], &sets);
    h.campaign(0);
    h.deliver_all();
    h.heartbeat(0);
    h.deliver_all();
    h.restart(1);
    assert_eq!(h.node(1).leader_hint, None);
    assert!(!h.node(1).would_vote_at(h.now), "refuses right after its start");
    assert!(!h.node(1).would_vote_at(h.now + Span::millis(149)));
    assert!(h.node(1).would_vote_at(h.now + Span::millis(150)));
}

/// Thesis 6.4: a heartbeat round counts only when a follower took it as its leader's. A
/// heartbeat of the node's own earlier leadership, held by a slow link, is refused by a
/// follower now in the node's current term; that refusal must not acknowledge the current
/// leadership's round of the same number (swarm.toml seed 686: a round 264 of term 1,
/// refused in term 4, confirmed term 4's rounds up to 264 and stretched the lease).
#[test]
fn lease_6_4_a_refused_stale_heartbeat_acknowledges_no_round() {
    let mut h = Harness::new(3, &[], &[("pre_vote", ParamValue::Bool(false))]);
    h.campaign(0);
    h.deliver_all();
    for _ in 0..5 {
        h.heartbeat(0);
        h.deliver_where(|w| w.1 != n(2) || !matches!(w.2, Message::Heartbeat { .. }));
    }
    let stale = |w: &Wire| w.1 == n(2) && matches!(w.2, Message::Heartbeat { term: 1, .. });
    let held = h.inflight.iter().filter(|w| stale(w)).count();
    assert!(held >= 5, "term 1's heartbeats to n3 are held");
    // n2 leads term 2, then n1 term 3; the held heartbeats stay on the slow link.
    h.campaign(1);
    h.deliver_where(|w| !stale(w));
    h.campaign(0);
    h.deliver_where(|w| !stale(w));
    assert_eq!((h.node(0).role, h.node(0).current_term), (Role::Leader, 3));
    let round = h.node(0).leader.as_ref().unwrap().round;
    h.deliver_all();
    let leader = h.node(0).leader.as_ref().unwrap();
    assert!(
        leader.progress[&n(2)].acked_round <= round,
        "n3 acknowledged round {} of a leadership at round {round}",
        leader.progress[&n(2)].acked_round
    );
}

/// Thesis 6.3: a retried request that made it into the log twice (its first leader crashed
/// before answering) is applied once, and the retry is answered with the first result.
#[test]
fn session_6_3_retry_is_applied_once() {
    for (bugs, value) in [(&[][..], "x"), (&["apply-retries-twice"][..], "xx")] {
        let mut h = Harness::new(3, bugs, &[]);
        h.campaign(0);
        h.deliver_all();
        h.submit(0, req(1, 1), append(7, "x"));
        // The followers append it, but n1 crashes before hearing back.
        h.deliver_where(|w| matches!(w.2, Message::AppendEntries { .. }));
        h.drop_where(|_| true);
        h.restart(0);
        assert!(h.replies.is_empty());
        h.campaign(1);
        h.deliver_all();
        assert_eq!(h.node(1).role, Role::Leader);
        // The client times out and retries at the new leader.
        h.submit(1, req(1, 1), append(7, "x"));
        h.deliver_all();
        h.heartbeat(1);
        h.deliver_all();
        let answer = Some(Value::from(value));
        assert_eq!(
            h.replies,
            vec![(
                req(1, 1),
                OpResult::Ok {
                    value: answer.clone()
                }
            )]
        );
        for i in 0..3 {
            assert_eq!(h.node(i).sm.store.get(&7), answer.as_ref(), "n{}", i + 1);
        }
        // A later retry of the same id is answered from the session, not appended again.
        let last = h.node(1).log.last_index();
        h.submit(1, req(1, 1), append(7, "x"));
        if bugs.is_empty() {
            assert_eq!(h.node(1).log.last_index(), last);
            assert_eq!(h.replies.len(), 2);
        }
    }
}

/// Sections 5.3 and 5.4, behind the promises of durable acknowledged writes and convergence:
/// a write the leader acknowledged is on a majority's logs; the leader crashes before any
/// follower learns it committed, a node that holds it wins the next term (section 5.4.1
/// refuses the one that lacks it), and once the new leader's log reaches every node, every
/// state machine has applied it, in the same order, down to equal digests (section 5.3:
/// state machines apply the same committed log).
#[test]
fn promises_5_3_5_4_acknowledged_writes_survive_the_leader_and_every_replica_applies_them() {
    // Elections here follow the leader's crash at once: without Pre-Vote (thesis 9.6), whose
    // peers refuse while they heard a leader within an election timeout.
    let mut h = Harness::new(3, &[], &[("pre_vote", ParamValue::Bool(false))]);
    h.campaign(0);
    h.deliver_all();
    h.submit(0, req(1, 1), put(1, "x"));
    // n3 misses it; n2 holds it, and its acknowledgement commits it at n1.
    h.drop_where(|(_, to, _)| *to == n(2));
    h.deliver_where(|(_, to, _)| *to != n(2));
    assert_eq!(h.replies, vec![(req(1, 1), ok("x"))], "acknowledged");
    assert!(h.node(1).commit_index < h.node(0).commit_index, "n2 not told yet");
    // n1 crashes before anyone else learns the commit.
    h.drop_where(|_| true);
    h.crash(0);
    // n3, without the write, cannot win: n2 refuses it (section 5.4.1).
    h.campaign(2);
    h.deliver_all();
    assert_ne!(h.node(2).role, Role::Leader);
    h.campaign(1);
    h.deliver_all();
    assert_eq!(h.node(1).role, Role::Leader);
    // The new leader commits its no-op, and with it the write (section 5.4.2).
    h.heartbeat(1);
    h.deliver_all();
    h.recover(0);
    h.heartbeat(1);
    h.deliver_all();
    h.heartbeat(1);
    h.deliver_all();
    let digests: Vec<u64> = (0..3).map(|i| h.node(i).digest()).collect();
    for i in 0..3 {
        assert_eq!(h.value(i, 1).as_deref(), Some("x"), "n{} applied it", i + 1);
        assert_eq!(digests[usize::from(i)], digests[0], "n{} converged", i + 1);
    }
}

/// Thesis 9.6 (Pre-Vote, on by default): a follower cut off from the leader long enough to
/// time out asks first whether it could win. Its peers, which hear the leader, refuse, so
/// it neither bumps its term nor deposes the working leader when it comes back; without
/// Pre-Vote its higher term deposes the leader and the cluster is leaderless until a new
/// election ends (what broke live-after-heal on vote-amnesia.toml seed 11).
#[test]
fn prevote_9_6_a_node_that_missed_heartbeats_does_not_depose_the_leader() {
    for pre_vote in [true, false] {
        let mut h = Harness::new(3, &[], &[("pre_vote", ParamValue::Bool(pre_vote))]);
        assert_eq!(h.node(0).settings.pre_vote, pre_vote);
        h.campaign(0);
        h.deliver_all();
        assert_eq!(h.node(0).role, Role::Leader);
        // n3 misses heartbeats (a slow link) and times out; n2 keeps hearing the leader.
        h.now += Span::millis(300);
        h.heartbeat(0);
        h.deliver_where(|w| w.1 != n(2));
        h.drop_where(|w| w.1 == n(2));
        h.run(2, |node, ctx| node.on_timer(ctx, Timer::Election));
        h.run(2, |node, ctx| node.on_timer(ctx, Timer::Election));
        h.deliver_all();
        let term = h.node(0).current_term;
        if pre_vote {
            assert_eq!(h.node(2).role, Role::PreCandidate);
            assert_eq!(h.node(2).current_term, 1, "a pre-vote bumps no term");
            assert_eq!(h.node(0).role, Role::Leader, "the leader keeps leading");
            assert_eq!(term, 1);
        } else {
            assert_eq!(h.node(0).role, Role::Follower, "deposed by the higher term");
            assert!(term > 1);
        }
    }
}

/// Thesis 9.6: Pre-Vote refuses a pre-candidate only while the leader is heard; once the
/// leader is gone for an election timeout, a pre-candidate with an up-to-date log wins the
/// pre-vote, campaigns and leads (Pre-Vote must not cost liveness).
#[test]
fn prevote_9_6_a_pre_candidate_wins_once_the_leader_is_gone() {
    let mut h = Harness::new(3, &[], &[]);
    assert!(h.node(0).settings.pre_vote, "Pre-Vote is the default");
    h.campaign(0);
    h.deliver_all();
    assert_eq!(h.node(0).role, Role::Leader);
    h.submit(0, req(1, 1), append(1, "x"));
    h.deliver_all();
    h.crash(0);
    assert!(h.try_campaign(1), "the leader is silent: the pre-vote is granted");
    h.deliver_where(|w| w.1 != n(0));
    assert_eq!(h.node(1).role, Role::Leader);
    assert_eq!(h.node(1).current_term, 2);
}

/// Thesis 6.2: a node that is not the leader proxies a client's request to the leader, a read
/// as well as a write, and the leader answers the client. A proxy lost on the way is sent
/// again once a heartbeat of the leader shows it unanswered for an election timeout; a
/// heartbeat naming it answered ends the re-sends.
#[test]
fn thesis_6_2_a_follower_proxies_reads_and_sends_a_lost_proxy_again_until_answered() {
    let mut h = Harness::new(3, &[], &[]);
    h.campaign(0);
    h.deliver_all();
    h.heartbeat(0);
    h.deliver_all();
    // A read at a follower reaches the leader, which answers it.
    let read = req(1, 1);
    h.submit(1, read, get(1));
    let proxied = |id: RequestId| {
        move |w: &Wire| matches!(&w.2, Message::ClientRequest { id: i, .. } if *i == id)
    };
    assert_eq!(h.inflight.iter().filter(|w| proxied(read)(w)).count(), 1);
    h.deliver_all();
    h.heartbeat(0);
    h.deliver_all();
    assert!(h.reply(read).is_some(), "the leader answers a proxied read");
    assert!(h.node(1).proxies.is_empty(), "the heartbeat named it answered");
    // A write's proxy is lost: the follower sends it again on a heartbeat an election
    // timeout later, not before.
    let write = req(1, 2);
    h.submit(1, write, put(1, "x"));
    h.drop_where(proxied(write));
    h.heartbeat(0);
    h.deliver_all();
    assert!(h.reply(write).is_none());
    assert_eq!(h.node(1).proxies.len(), 1, "still unanswered");
    for _ in 0..3 {
        h.heartbeat(0);
        h.deliver_where(|w| !matches!(w.2, Message::ClientRequest { .. }));
    }
    assert_eq!(
        h.inflight.iter().filter(|w| proxied(write)(w)).count(),
        1,
        "sent again once"
    );
    h.deliver_all();
    h.heartbeat(0);
    h.deliver_all();
    assert_eq!(h.reply(write), Some(&ok("x")));
    assert!(h.node(1).proxies.is_empty());
    assert_eq!(h.value(1, 1).as_deref(), Some("x"));
}
