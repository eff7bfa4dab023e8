//! Stated: `[checks] max_messages_per_op = N`, a bound on what an operation costs in
//! protocol messages.
//!
//! The figure is the run's node-to-node messages (every message a node handed to the
//! network, whether the network then delivered, dropped or duplicated it; client requests
//! and replies are not protocol messages) over the whole run, settle phase included, divided
//! by the client operations that completed, ok or fail (an operation that timed out told
//! its client nothing). Heartbeats and repair traffic in quiet periods count: the bound is
//! on what the protocol spends per operation it serves.

use super::{Judgement, Promised, RunView, Verdict};
use crate::history::Outcome;

pub(super) const PROMISED: Promised = Promised::Stated(|s| s.max_messages_per_op.is_some());

/// Judges the run's messages per completed operation against the stated bound.
pub(super) fn judge(run: &RunView) -> Judgement {
    let Some(bound) = run.scenario.checks.stated.max_messages_per_op else {
        return Judgement::new(Verdict::Skipped, "not stated");
    };
    let completed = run
        .history
        .events
        .iter()
        .filter(|e| matches!(e.outcome, Some(Outcome::Ok(_) | Outcome::Fail(_))))
        .count() as u64;
    let sent = run.messages_sent;
    messages_per_op(sent, completed, bound)
}

fn messages_per_op(sent: u64, completed: u64, bound: f64) -> Judgement {
    if completed == 0 {
        let verdict = if sent == 0 {
            Verdict::Skipped
        } else {
            Verdict::Fail
        };
        let detail = format!("{sent} messages and no operation completed (at most {bound})");
        return Judgement::new(verdict, detail);
    }
    let per_op = sent as f64 / completed as f64;
    let verdict = if per_op <= bound {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    let detail = format!(
        "{per_op:.2} messages per completed operation ({sent} messages / {completed} \
         operations), at most {bound}"
    );
    Judgement::new(verdict, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_is_inclusive_and_measured_per_completed_operation() {
        let at = messages_per_op(120, 10, 12.0);
        assert_eq!(at.verdict, Verdict::Pass, "{}", at.detail);
        assert!(at.detail.starts_with("12.00 messages per completed operation"));
        let over = messages_per_op(121, 10, 12.0);
        assert_eq!(over.verdict, Verdict::Fail, "{}", over.detail);
        assert_eq!(messages_per_op(5, 0, 1.0).verdict, Verdict::Fail);
        assert_eq!(messages_per_op(0, 0, 1.0).verdict, Verdict::Skipped);
    }
}
