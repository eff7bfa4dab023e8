//! The invariants the engine checks after every handler (module doc, "Promises and checked
//! invariants"): no key's versions went back, the hint ledger balances, no hint outlives its
//! node's recovery by [`HANDOFF_DEADLINE`], and the pending table is bounded.

use super::{Sloppy, HANDOFF_DEADLINE, PENDING_MAX};
use crate::ids::NodeId;
use crate::time::Time;

impl Sloppy {
    /// The node's own invariants.
    pub(super) fn check_node(&self) -> Result<(), String> {
        if let Some(v) = &self.violation {
            return Err(v.clone());
        }
        let ledger = self.hints_stored - self.hints_delivered.min(self.hints_stored);
        if self.hints.len() as u64 != ledger {
            return Err(format!(
                "{} hints stored and {} handed back, but {} held: hints lost",
                self.hints_stored,
                self.hints_delivered,
                self.hints.len()
            ));
        }
        // A hint for a node heard again since `since` breaks the deadline when the node's
        // last message came more than the deadline after both `since` and the hint's
        // storing: judged by the node's earliest-stored hint, which breaks it first. The
        // walk over every hint runs only to name the first broken one (in key order).
        let broken = self.with_hint_floor(|floor| {
            floor.iter().any(|(node, earliest)| {
                self.heard.get(node).is_some_and(|&(since, last)| {
                    last.since(since.max(*earliest)) > HANDOFF_DEADLINE
                })
            })
        });
        if broken {
            let hints = self.hints.iter().map(|(at, hint)| (at, hint.stored_at));
            crate::quorum::hint_past_deadline(hints, &self.heard, HANDOFF_DEADLINE)?;
        }
        if self.pending.len() > PENDING_MAX {
            return Err(format!("{} requests pending", self.pending.len()));
        }
        Ok(())
    }

    /// Runs `f` on each hinted node's earliest `stored_at`, in node order: kept from the last
    /// call while the hints have not changed (most handlers change none), else one walk.
    fn with_hint_floor<T>(&self, f: impl FnOnce(&[(NodeId, Time)]) -> T) -> T {
        let generation = self.hints.generation();
        let mut cache = self.hint_floor.borrow_mut();
        if cache.as_ref().is_none_or(|(g, _)| *g != generation) {
            let mut floor: Vec<(NodeId, Time)> = Vec::new();
            for ((node, _), hint) in &self.hints {
                match floor.last_mut() {
                    Some((n, earliest)) if n == node => *earliest = (*earliest).min(hint.stored_at),
                    _ => floor.push((*node, hint.stored_at)),
                }
            }
            *cache = Some((generation, floor));
        }
        f(&cache.as_ref().expect("just filled").1)
    }
}
