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

/// Calls `f` with each of the history's operations paired with its completion, and its
/// place in invocation order, as completions come and then for those never completed (an
/// operation whose client invoked another before it completed comes at that invocation),
/// without holding them all.
pub(super) fn each_interval<'h>(history: &'h History, mut f: impl FnMut(usize, Interval<'h>)) {
    // Per client (ids are small and dense), its operation in flight and its place.
    let mut open: Vec<Option<(usize, Interval<'h>)>> = Vec::new();
    let mut invoked = 0;
    for e in &history.events {
        let client = e.client.0 as usize;
        if open.len() <= client {
            open.resize(client + 1, None);
        }
        match &e.outcome {
            None => {
                let interval = Interval {
                    op: &e.op,
                    invoked: e.time,
                    completed: None,
                    status: Status::Unknown,
                };
                // An invocation while another was open leaves that one unknown.
                if let Some((at, earlier)) = open[client].replace((invoked, interval)) {
                    f(at, earlier);
                }
                invoked += 1;
            }
            Some(outcome) => {
                if let Some((at, mut i)) = open[client].take() {
                    i.status = match outcome {
                        Outcome::Ok(r) => Status::Ok(r),
                        Outcome::Fail(r) => Status::Fail(r),
                        Outcome::Info => Status::Unknown,
                    };
                    if !matches!(outcome, Outcome::Info) {
                        i.completed = Some(e.time);
                    }
                    f(at, i);
                }
            }
        }
    }
    for (at, i) in open.into_iter().flatten() {
        f(at, i);
    }
}

/// The single-key operations of an interval, each with its own ending: a txn's parts (an ok
/// txn's parts with their results), or the interval itself (nothing is allocated).
pub(super) fn parts<'h>(i: &Interval<'h>) -> impl Iterator<Item = Interval<'h>> {
    let i = *i;
    let (ops, txn): (&'h [Op], bool) = match i.op {
        Op::Txn { ops } => (ops, true),
        single => (std::slice::from_ref(single), false),
    };
    ops.iter().enumerate().map(move |(n, op)| {
        let status = match i.status {
            Status::Ok(OpResult::Txn { results }) if txn => match results.get(n) {
                Some(r) => Status::Ok(r),
                None => Status::Unknown,
            },
            other => other,
        };
        Interval { op, status, ..i }
    })
}
