//! Staleness: reads a linearizable store could not have returned, measured by
//! [`crate::lincheck::staleness`]; a failure only for protocols that promise linearizability.

use super::{Judgement, Measured, Promised, RunView, Verdict};
use crate::history::Outcome;
use crate::lincheck::staleness::staleness;
use simkv_protocols::{OpResult, Promise};

/// A stale read is a linearizability violation; for other protocols it is a measure.
pub(super) const PROMISED: Promised = Promised::If(Promise::Linearizable);

/// Counts the reads, the stale ones and those answered with siblings.
pub(super) fn judge(run: &RunView) -> Judgement {
    let history = run.history;
    let s = staleness(history);
    let sibling_reads = history
        .events
        .iter()
        .filter(|e| matches!(e.outcome, Some(Outcome::Ok(OpResult::Siblings { .. }))))
        .count() as u64;
    let measured = Measured {
        reads: s.reads,
        stale_reads: s.stale_reads,
        sibling_reads,
        ..Measured::default()
    };
    if s.stale_reads == 0 && s.unexplained_reads == 0 {
        let detail = format!("none of {} reads was stale", s.reads);
        return Judgement {
            measured,
            ..Judgement::new(Verdict::Pass, detail)
        };
    }
    let (w, t) = (&s.writes_behind, &s.stale_ms);
    let mut detail = format!(
        "{} of {} reads stale: writes behind p50 {} p99 {} max {}; stale for p50 {:.1}ms \
         p99 {:.1}ms max {:.1}ms",
        s.stale_reads, s.reads, w.p50, w.p99, w.max, t.p50, t.p99, t.max
    );
    if s.unexplained_reads > 0 {
        detail.push_str(&format!(
            "; {} reads of values never written",
            s.unexplained_reads
        ));
    }
    Judgement {
        measured,
        ..Judgement::new(Verdict::Fail, detail)
    }
}
