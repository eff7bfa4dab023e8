//! Invariants: the protocol's own invariants held after every handler the engine ran.

use super::{Judgement, Promised, RunView, Verdict};

/// Every protocol must keep its own invariants.
pub(super) const PROMISED: Promised = Promised::Always;

/// Reports the first invariant the engine saw broken, if any.
pub(super) fn judge(run: &RunView) -> Judgement {
    match run.invariant_violation {
        Some((at, what)) => Judgement::new(Verdict::Fail, format!("broken at {at}: {what}")),
        None => Judgement::new(Verdict::Pass, "held after every handler"),
    }
}
