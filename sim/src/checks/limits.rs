//! Limits: the run reached the scenario's end before its event limit.

use super::{Judgement, Promised, RunView, Verdict};
use crate::engine::MAX_QUEUED_EVENTS;

/// A run cut short by its event limit has not shown what the scenario asks, whatever the
/// protocol promises.
pub(super) const PROMISED: Promised = Promised::Always;

/// Reports whether the engine stopped at the event limit.
pub(super) fn judge(run: &RunView) -> Judgement {
    let limit = run.scenario.max_events;
    if run.hit_event_limit {
        let detail = format!(
            "stopped at the event limit ({limit} processed, or {MAX_QUEUED_EVENTS} queued at \
             once) before the scenario ended"
        );
        return Judgement::new(Verdict::Fail, detail);
    }
    let detail = format!("{} events, within the limit of {limit}", run.events);
    Judgement::new(Verdict::Pass, detail)
}
