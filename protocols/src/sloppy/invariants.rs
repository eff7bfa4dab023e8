//! The invariants the engine checks after every handler (module doc, "Promises and checked
//! invariants"): no key's versions went back, the hint ledger balances, no hint outlives its
//! node's recovery by [`HANDOFF_DEADLINE`], and the pending table is bounded.

use super::{Sloppy, HANDOFF_DEADLINE, PENDING_MAX};

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
        let hints = || self.hints.iter().map(|(at, hint)| (at, hint.stored_at));
        let generation = self.hints.generation();
        self.hint_floor.judge(generation, hints, &self.heard, HANDOFF_DEADLINE)?;
        if self.pending.len() > PENDING_MAX {
            return Err(format!("{} requests pending", self.pending.len()));
        }
        Ok(())
    }
}
