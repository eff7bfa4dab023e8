//! Stated: `[checks] leader_within = "5s"`, a bound on how long the cluster goes without a
//! leader once the faults are over (Raft section 5.2: an election completes within a few
//! election timeouts once a majority can talk).
//!
//! The clock starts when the cluster was last made whole (the last heal, or the final heal
//! of the liveness phase; the VOPR mode's partial heal; time zero in a run without faults).
//! Some node must then lead, in the newest term any running node is in, at some instant
//! within the bound: a leader still on its throne at the heal counts, a deposed leader that
//! has not heard of the newer term yet does not.

use super::leaders::state_at;
use super::{Judgement, Promised, RunView, Verdict};

pub(super) const PROMISED: Promised = Promised::Stated(|s| s.leader_within.is_some());

/// Judges the roles from the last heal until the stated bound after it.
pub(super) fn judge(run: &RunView) -> Judgement {
    let Some(bound) = run.scenario.checks.stated.leader_within else {
        return Judgement::new(Verdict::Skipped, "not stated");
    };
    let Some(healed) = run.healed_at else {
        let detail = "the cluster was never made whole again, so no election could be timed";
        return Judgement::new(Verdict::Fail, detail);
    };
    let deadline = healed + bound;
    let (mut cluster, mut next) = state_at(run.roles, healed);
    let mut at = healed;
    loop {
        if let Some(leader) = cluster.current_leader() {
            let after = at.since(healed);
            let detail = format!(
                "{leader} led at {at}, {after} after the cluster was last made whole at \
                 {healed} (bound {bound})"
            );
            return Judgement::new(Verdict::Pass, detail);
        }
        match run.roles.get(next) {
            Some(change) if change.at <= deadline => {
                at = change.at;
                cluster.apply(change);
                next += 1;
            }
            _ => break,
        }
    }
    if run.end < deadline {
        let detail = format!(
            "no leader by the end of the run at {}, before the bound ({bound} after the \
             cluster was last made whole at {healed})",
            run.end
        );
        return Judgement::new(Verdict::Skipped, detail);
    }
    let detail = format!(
        "no node led in the newest term within {bound} after the cluster was last made whole \
         at {healed}"
    );
    Judgement::new(Verdict::Fail, detail)
}

#[cfg(test)]
mod tests {
    use super::super::leaders::tests::{change, scenario, secs, view};
    use super::*;
    use crate::history::History;

    /// Three nodes booted as followers of term 0.
    fn boot() -> Vec<crate::engine::RoleChange> {
        (1..=3).map(|n| change(0, n, Some("follower"), 0)).collect()
    }

    #[test]
    fn a_leader_deposed_by_a_newer_term_does_not_count() {
        let s = scenario("leader_within = \"1s\"");
        let h = History::default();
        let mut roles = boot();
        roles.push(change(200, 1, Some("leader"), 1));
        // At the heal (10s) n2 campaigns in term 2: n1 still believes it leads term 1.
        roles.push(change(9_000, 2, Some("candidate"), 2));
        roles.push(change(10_500, 2, Some("leader"), 2));
        roles.push(change(10_600, 1, Some("follower"), 2));
        let judged = judge(&view(&s, &h, &roles, &[], Some(secs(10_000))));
        assert_eq!(judged.verdict, Verdict::Pass, "{}", judged.detail);
        assert!(
            judged.detail.starts_with("n2 (term 2) led at 10.500s, 500ms after"),
            "{}",
            judged.detail
        );
        let s = scenario("leader_within = \"400ms\"");
        let judged = judge(&view(&s, &h, &roles, &[], Some(secs(10_000))));
        assert_eq!(judged.verdict, Verdict::Fail, "{}", judged.detail);
        // A leader of the newest term at the heal itself passes at once.
        let judged = judge(&view(&s, &h, &roles, &[], Some(secs(5_000))));
        assert_eq!(judged.verdict, Verdict::Pass, "{}", judged.detail);
        assert!(judged.detail.contains("n1 (term 1) led at 5s, 0s after"), "{}", judged.detail);
    }

    #[test]
    fn no_heal_fails_and_a_run_ending_before_the_bound_is_skipped() {
        let s = scenario("leader_within = \"5s\"");
        let h = History::default();
        let roles = boot();
        assert_eq!(judge(&view(&s, &h, &roles, &[], None)).verdict, Verdict::Fail);
        let judged = judge(&view(&s, &h, &roles, &[], Some(secs(18_000))));
        assert_eq!(judged.verdict, Verdict::Skipped, "{}", judged.detail);
        let judged = judge(&view(&s, &h, &roles, &[], Some(secs(10_000))));
        assert_eq!(judged.verdict, Verdict::Fail, "{}", judged.detail);
    }
}
