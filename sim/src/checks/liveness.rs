//! Liveness after heal: every operation invoked some time after the cluster was last made
//! whole succeeded (or, in the VOPR mode, after every node but a minority down for good was).

use super::intervals::{each_interval, Status};
use super::{Judgement, Promised, RunView, Verdict};
use crate::history::History;
use crate::scenario::LivenessMode;
use simkv_protocols::{Promise, Span, Time};

pub(super) const PROMISED: Promised = Promised::If(Promise::LiveAfterHeal);

/// Judges the operations invoked from the scenario's liveness window after the last heal
/// until the workload stopped.
/// In the VOPR liveness mode the heal leaves a minority crashed for good, and the window
/// runs from that partial heal: the live nodes alone must serve every client.
pub(super) fn judge(run: &RunView) -> Judgement {
    let (verdict, mut detail) = liveness(
        run.history,
        run.healed_at,
        run.scenario.checks.liveness,
        run.workload_stopped,
    );
    if run.scenario.checks.liveness_mode == LivenessMode::Vopr {
        detail.push_str(" (liveness_mode vopr: a minority stayed down)");
    }
    Judgement::new(verdict, detail)
}

/// Liveness after heal: every operation invoked at least `window` after the cluster was last
/// made whole, and before the workload stopped, succeeded.
fn liveness(
    history: &History,
    healed_at: Option<Time>,
    window: Span,
    workload_stopped: Time,
) -> (Verdict, String) {
    let Some(healed) = healed_at else {
        return (
            Verdict::Fail,
            "the cluster was never made whole again".into(),
        );
    };
    let from = healed + window;
    let mut judged = 0;
    // Each unsuccessful operation with its place in invocation order.
    let mut unsuccessful: Vec<(usize, String)> = Vec::new();
    each_interval(history, |at, i| {
        if i.invoked < from || i.invoked >= workload_stopped {
            return;
        }
        judged += 1;
        if !matches!(i.status, Status::Ok(_)) {
            let how = match i.status {
                Status::Fail(r) => format!("failed: {r}"),
                _ => "timed out".to_string(),
            };
            unsuccessful.push((at, format!("{} at {} {how}", i.op, i.invoked)));
        }
    });
    unsuccessful.sort_unstable_by_key(|(at, _)| *at);
    let mut unsuccessful: Vec<String> = unsuccessful.into_iter().map(|(_, l)| l).collect();
    if judged == 0 {
        return (
            Verdict::Skipped,
            format!(
                "no operation was invoked between {from} (heal + {window}) and {workload_stopped}"
            ),
        );
    }
    if unsuccessful.is_empty() {
        return (
            Verdict::Pass,
            format!("all {judged} operations from {from} on succeeded"),
        );
    }
    let count = unsuccessful.len();
    unsuccessful.truncate(5);
    (
        Verdict::Fail,
        format!(
            "{count} of {judged} operations from {from} on did not succeed, e.g.\n{}",
            unsuccessful.join("\n")
        ),
    )
}
