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
