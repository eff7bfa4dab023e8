//! A history's operations as intervals of time with their endings, for the checks that judge
//! operations by when they ran (durability, liveness).

use crate::history::{History, Outcome};
use simkv_protocols::{Op, OpResult, Time};

/// One operation of a history with both ends.
#[derive(Clone, Copy, Debug)]
pub(super) struct Interval<'h> {
    pub(super) op: &'h Op,
    pub(super) invoked: Time,
    /// `None` for an operation that never completed or completed `info`: it may have
    /// taken effect at any time after its invocation.
    pub(super) completed: Option<Time>,
    pub(super) status: Status<'h>,
}

/// How an operation of an [`Interval`] ended.
#[derive(Clone, Copy, Debug)]
pub(super) enum Status<'h> {
    /// Completed ok, with this result.
    Ok(&'h OpResult),
    /// Definitely not applied, for this reason.
    Fail(&'h OpResult),
    /// Completed `info`, or never completed.
    Unknown,
}

/// The history's operations in invocation order, each paired with its completion.
pub(super) fn intervals(history: &History) -> Vec<Interval<'_>> {
    // Per client (ids are small and dense), its operation in flight.
    let mut open: Vec<Option<usize>> = Vec::new();
    let mut out: Vec<Interval> = Vec::with_capacity(history.events.len() / 2 + 1);
    for e in &history.events {
        let client = e.client.0 as usize;
        if open.len() <= client {
            open.resize(client + 1, None);
        }
        match &e.outcome {
            None => {
                open[client] = Some(out.len());
                out.push(Interval {
                    op: &e.op,
                    invoked: e.time,
                    completed: None,
                    status: Status::Unknown,
                });
            }
            Some(outcome) => {
                if let Some(i) = open[client].take() {
                    out[i].status = match outcome {
                        Outcome::Ok(r) => Status::Ok(r),
                        Outcome::Fail(r) => Status::Fail(r),
                        Outcome::Info => Status::Unknown,
                    };
                    if !matches!(outcome, Outcome::Info) {
                        out[i].completed = Some(e.time);
                    }
                }
            }
        }
    }
    out
}

/// The single-key operations of an interval, each with its own ending: a txn's parts (an ok
/// txn's parts with their results), or the interval itself.
pub(super) fn parts<'h>(i: &Interval<'h>) -> Vec<Interval<'h>> {
    let Op::Txn { ops } = i.op else {
        return vec![*i];
    };
    ops.iter()
        .enumerate()
        .map(|(n, op)| {
            let status = match i.status {
                Status::Ok(OpResult::Txn { results }) => match results.get(n) {
                    Some(r) => Status::Ok(r),
                    None => Status::Unknown,
                },
                other => other,
            };
            Interval { op, status, ..*i }
        })
        .collect()
}
