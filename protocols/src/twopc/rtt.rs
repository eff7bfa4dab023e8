//! The coordinator's vote deadline adapts to its peers' round trips (Jacobson & Karels,
//! "Congestion Avoidance and Control", 1988, as TCP's RFC 6298 computes its retransmission
//! timeout): a participant behind a link slower than `vote_timeout` is not a node down, and a
//! deadline shorter than its round trip aborts every transaction that needs its vote
//! (`scenarios/raft/vote-amnesia.toml`'s 150-250 ms n1-n2 link against the 100 ms default).
//! `vote_timeout` stays the floor. Each transaction's first answer from each peer (a vote, or
//! word that its Prepare waits) is one sample, counted from the first Prepare: resends make
//! it an upper bound, which is the safe side for a deadline. A late vote, after the deadline
//! aborted the transaction, is a sample too: that is how a slow peer is learned at all.

use crate::ids::NodeId;
use crate::time::{Span, Time};
use std::collections::{BTreeMap, BTreeSet};

/// How many of its own transactions a coordinator keeps timing: the oldest are dropped.
const TIMED: usize = 64;

/// A peer's smoothed round trip and its mean deviation, in microseconds.
#[derive(Clone, Copy, Debug)]
struct Estimate {
    srtt: u64,
    rttvar: u64,
}

/// The round-trip estimates of one coordinator, and the transactions it is timing.
#[derive(Debug, Default)]
pub(super) struct RoundTrips {
    estimates: BTreeMap<NodeId, Estimate>,
    /// Own transactions: when the first Prepare left, and the peers not yet heard from.
    timing: BTreeMap<super::TxnId, (Time, BTreeSet<NodeId>)>,
}

impl RoundTrips {
    /// Starts timing `txn`, whose Prepare left for `peers` at `at`.
    pub(super) fn begin(&mut self, txn: super::TxnId, at: Time, peers: BTreeSet<NodeId>) {
        self.timing.insert(txn, (at, peers));
        while self.timing.len() > TIMED {
            self.timing.pop_first();
        }
    }

    /// `peer` answered `txn` at `now`: its first answer is a sample.
    pub(super) fn answered(&mut self, txn: super::TxnId, peer: NodeId, now: Time) {
        let Some((at, waiting)) = self.timing.get_mut(&txn) else {
            return;
        };
        if !waiting.remove(&peer) {
            return;
        }
        let sample = now.since(*at).as_micros();
        if waiting.is_empty() {
            self.timing.remove(&txn);
        }
        let e = self.estimates.entry(peer).or_insert(Estimate {
            srtt: sample,
            rttvar: sample / 2,
        });
        // RFC 6298 section 2.3: beta = 1/4, alpha = 1/8.
        e.rttvar = (3 * e.rttvar + e.srtt.abs_diff(sample)) / 4;
        e.srtt = (7 * e.srtt + sample) / 8;
    }

    /// The vote deadline: `floor`, or the slowest peer's retransmission timeout if that is
    /// longer: srtt + max(G, 4 rttvar) as RFC 6298 section 2 has it, with a quarter of srtt
    /// for the granularity G, so that steady round trips (rttvar near 0) leave headroom.
    pub(super) fn deadline(&self, floor: Span) -> Span {
        let rto = |e: &Estimate| e.srtt + (e.srtt / 4).max(4 * e.rttvar);
        let slowest = self.estimates.values().map(rto).max();
        Span(slowest.unwrap_or(0).max(floor.as_micros()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::twopc::TxnId;

    fn txn(seq: u64) -> TxnId {
        TxnId {
            coordinator: NodeId(1),
            seq,
        }
    }

    /// A peer that answers after 400 ms moves the deadline past 400 ms; fast peers leave it
    /// at the floor; a second answer to one transaction is no sample.
    #[test]
    fn a_slow_peers_round_trip_stretches_the_vote_deadline_and_fast_ones_leave_the_floor() {
        let floor = Span::millis(100);
        let mut r = RoundTrips::default();
        assert_eq!(r.deadline(floor), floor);
        let peers = BTreeSet::from([NodeId(2), NodeId(3)]);
        r.begin(txn(0), Time(0), peers.clone());
        r.answered(txn(0), NodeId(3), Time(5_000));
        assert_eq!(r.deadline(floor), floor, "5 ms answers leave the floor");
        r.answered(txn(0), NodeId(2), Time(400_000));
        let after_one = r.deadline(floor);
        assert!(after_one > Span::millis(400), "{after_one:?}");
        r.answered(txn(0), NodeId(2), Time(900_000));
        assert_eq!(r.deadline(floor), after_one, "one sample per peer per txn");
        // Steady 400 ms answers: the deviation shrinks, the deadline stays a quarter above.
        for seq in 1..40 {
            let at = Time(seq * 1_000_000);
            r.begin(txn(seq), at, peers.clone());
            r.answered(txn(seq), NodeId(2), Time(at.0 + 400_000));
        }
        let steady = r.deadline(floor);
        assert_eq!(steady, Span::millis(500));
        assert!(steady < after_one, "{steady:?} {after_one:?}");
    }
}
