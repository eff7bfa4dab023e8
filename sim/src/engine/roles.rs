//! Role sampling: each node's role and term, recorded as they change, for the leadership
//! checks (`one_leader`, `leader_within`) and the trace.
//!
//! After every handler the engine asks the node that ran for its role and term
//! ([`Protocol::role`], [`Protocol::term`]) and keeps a [`RoleChange`] only when either
//! differs from what it last saw; a crash is a change to no role. Sampling is switched on
//! only when a stated check needs it or the run is traced, so that other runs pay one branch
//! per handler. It only reads the nodes: it can never move a run, and nothing of it reaches
//! the fingerprint.

use crate::trace::Trace;
use simkv_protocols::{NodeId, Protocol, RoleKind, RoleSpec, Time};

/// A node's role or term changed (or it crashed, or it started).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoleChange {
    /// True virtual time.
    pub at: Time,
    /// Whose.
    pub node: NodeId,
    /// Its role from now on; `None` while it is crashed.
    pub role: Option<&'static RoleSpec>,
    /// Its term from now on, for protocols that have terms.
    pub term: Option<u64>,
}

/// What the sampler last saw of each node, and every change so far.
pub(super) struct RoleLog<P: Protocol> {
    last: Vec<Option<(P::Role, Option<u64>)>>,
    pub(super) changes: Vec<RoleChange>,
}

impl<P: Protocol> RoleLog<P> {
    /// A log of `nodes` nodes, none started.
    pub(super) fn new(nodes: usize) -> RoleLog<P> {
        RoleLog {
            last: vec![None; nodes],
            changes: Vec::new(),
        }
    }

    /// Notes `node`'s role and term now (`state` is `None` once it crashed), keeping a
    /// change (and tracing it) only if either moved.
    #[inline]
    pub(super) fn sample(
        &mut self,
        now: Time,
        node: NodeId,
        state: Option<&P>,
        trace: &mut Option<Trace>,
    ) {
        let seen = state.map(|p| (p.role(), p.term()));
        let last = &mut self.last[node.index()];
        if *last == seen {
            return;
        }
        *last = seen;
        let change = RoleChange {
            at: now,
            node,
            role: seen.map(|(r, _)| r.spec()),
            term: seen.and_then(|(_, t)| t),
        };
        if let Some(trace) = trace {
            trace.role(&change);
        }
        self.changes.push(change);
    }
}
