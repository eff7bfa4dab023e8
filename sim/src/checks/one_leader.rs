//! Stated: `[checks] one_leader = true`, leadership is never split.
//!
//! Two promises, judged on every change of a node's role or term:
//!
//! - **Election safety** (Raft section 5.2, Figure 3): at most one node leads in any one
//!   term, over the whole run, faults or not. Judged for protocols whose nodes report a
//!   term ([`simkv_protocols::Protocol::term`]).
//! - **One leader at a time, once settled**: whenever the cluster has been calm (whole, and
//!   no fault of any kind) for the scenario's liveness window (`[checks] liveness`, the time
//!   it gives a cluster to recover), at most one node leads at any instant. Before that, a
//!   deposed leader may still believe it leads until it hears of the newer term (section
//!   5.2 allows it: it can no longer commit anything), so two leaders of different terms
//!   may overlap.

use super::leaders::{Cluster, Leader};
use super::{Judgement, Promised, RunView, Verdict};
use simkv_protocols::{NodeId, Span, Time};
use std::collections::BTreeMap;

pub(super) const PROMISED: Promised = Promised::Stated(|s| s.one_leader);

/// Judges the run's role changes for split leadership.
pub(super) fn judge(run: &RunView) -> Judgement {
    if !run.scenario.checks.stated.one_leader {
        return Judgement::new(Verdict::Skipped, "not stated");
    }
    let window = run.scenario.checks.liveness;
    let mut problems = election_safety(run);
    problems.extend(one_at_a_time(run, window));
    let terms: std::collections::BTreeSet<u64> = run
        .roles
        .iter()
        .filter(|c| c.role.is_some_and(|r| r.leads))
        .filter_map(|c| c.term)
        .collect();
    if problems.is_empty() {
        let judged: u64 = run
            .calm
            .iter()
            .map(|(from, until)| until.since(*from + window).as_micros())
            .sum();
        let detail = format!(
            "no two leaders in one term (leaders in {} terms), and at most one leader at a \
             time over {} of calm cluster ({window} after each calm began)",
            terms.len(),
            Span(judged)
        );
        return Judgement::new(Verdict::Pass, detail);
    }
    let count = problems.len();
    problems.truncate(5);
    let mut detail = problems.join("\n");
    if count > 5 {
        detail.push_str(&format!("\n... and {} more", count - 5));
    }
    Judgement::new(Verdict::Fail, detail)
}

/// Each term that two nodes led, with who and when.
fn election_safety(run: &RunView) -> Vec<String> {
    let mut first: BTreeMap<u64, (NodeId, Time)> = BTreeMap::new();
    let mut broken: BTreeMap<u64, String> = BTreeMap::new();
    for change in run.roles {
        let (Some(role), Some(term)) = (change.role, change.term) else {
            continue;
        };
        if !role.leads {
            continue;
        }
        let (node, since) = *first.entry(term).or_insert((change.node, change.at));
        if node != change.node && !broken.contains_key(&term) {
            let why = format!(
                "election safety broken: {node} and {} both led term {term} ({node} from \
                 {since}, {} from {})",
                change.node, change.node, change.at
            );
            broken.insert(term, why);
        }
    }
    broken.into_values().collect()
}

/// Each instant, in a calm stretch past its window, at which two nodes or more led.
fn one_at_a_time(run: &RunView, window: Span) -> Vec<String> {
    let changes = run.roles;
    let mut cluster = Cluster::new();
    let mut next = 0;
    let mut problems = Vec::new();
    let check = |cluster: &Cluster, at: Time, from: Time, problems: &mut Vec<String>| {
        let leaders = cluster.leaders();
        if leaders.len() > 1 {
            let names: Vec<String> = leaders.iter().map(Leader::to_string).collect();
            problems.push(format!(
                "{} led at once at {at}, {} after the cluster was last calm from {from}",
                names.join(" and "),
                at.since(from)
            ));
        }
    };
    for (from, until) in run.calm {
        let start = *from + window;
        if start >= *until {
            continue;
        }
        while next < changes.len() && changes[next].at <= start {
            cluster.apply(&changes[next]);
            next += 1;
        }
        check(&cluster, start, *from, &mut problems);
        while next < changes.len() && changes[next].at < *until {
            cluster.apply(&changes[next]);
            check(&cluster, changes[next].at, *from, &mut problems);
            next += 1;
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::super::leaders::tests::{change, scenario, secs, view};
    use super::*;
    use crate::history::History;

    #[test]
    fn two_leaders_of_one_term_break_election_safety_whenever_it_happens() {
        let s = scenario("one_leader = true");
        let h = History::default();
        let roles = [
            change(100, 1, Some("leader"), 3),
            change(150, 1, None, 0),
            change(300, 2, Some("leader"), 3),
        ];
        // Not calm at all: election safety is judged anyway.
        let judged = judge(&view(&s, &h, &roles, &[], None));
        assert_eq!(judged.verdict, Verdict::Fail, "{}", judged.detail);
        assert_eq!(
            judged.detail,
            "election safety broken: n1 and n2 both led term 3 (n1 from 100ms, n2 from 300ms)"
        );
    }

    #[test]
    fn overlapping_leaders_are_allowed_only_until_the_cluster_has_been_calm_a_while() {
        let s = scenario("one_leader = true");
        let h = History::default();
        // n1 led term 1 through a partition; n2 was elected in term 2 on the other side; the
        // heal comes at 10s and n1 steps down at `down`.
        let roles = |down: u64| {
            vec![
                change(100, 1, Some("leader"), 1),
                change(5_000, 2, Some("leader"), 2),
                change(down, 1, Some("follower"), 2),
            ]
        };
        let calm = [(secs(0), secs(4_000)), (secs(10_000), secs(20_000))];
        // Stepping down 50ms after the heal, within the 1s liveness window: kept.
        let r = roles(10_050);
        let judged = judge(&view(&s, &h, &r, &calm, Some(secs(10_000))));
        assert_eq!(judged.verdict, Verdict::Pass, "{}", judged.detail);
        assert!(judged.detail.contains("over 12s of calm cluster"), "{}", judged.detail);
        // Still leading 1.5s after the heal: broken, at the window's end.
        let r = roles(11_500);
        let judged = judge(&view(&s, &h, &r, &calm, Some(secs(10_000))));
        assert_eq!(judged.verdict, Verdict::Fail, "{}", judged.detail);
        assert_eq!(
            judged.detail,
            "n1 (term 1) and n2 (term 2) led at once at 11s, 1s after the cluster was last \
             calm from 10s"
        );
    }
}
