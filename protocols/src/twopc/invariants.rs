//! The invariants checked after every handler (per node: 2PC has no cross-node check of its
//! own; the engine's convergence and linearizability checks cover the cluster).

use super::{TwoPc, LEARNED_MAX};

impl TwoPc {
    /// The node's own invariants: locks and prepared records agree, a transaction is not
    /// both queued and prepared, the coordinator's own record backs what it collects votes
    /// for, and the learned outcomes stay bounded.
    pub(super) fn check_node(&self) -> Result<(), String> {
        // The maps' invariants depend on the maps alone (and the planted bugs, fixed per
        // run): judged again only once one of them changed since they last held.
        let generations = [
            self.prepared.generation(),
            self.locks.generation(),
            self.active.generation(),
            self.queued.generation(),
        ];
        if self.judged.get() != Some(generations) {
            self.check_maps()?;
            self.judged.set(Some(generations));
        }
        if self.learned.len() > LEARNED_MAX || self.learned.len() != self.learned_order.len() {
            return Err(format!("{} learned outcomes", self.learned.len()));
        }
        Ok(())
    }

    /// Locks and prepared records agree, and queued and active transactions are prepared
    /// as they must be.
    fn check_maps(&self) -> Result<(), String> {
        for (key, txn) in &self.locks {
            let holds = self
                .prepared
                .get(txn)
                .is_some_and(|p| p.writes.iter().any(|w| w.key == *key));
            if !holds {
                return Err(format!(
                    "k{key} locked by {txn}, which holds no write of it"
                ));
            }
        }
        if !self.bugs.release_lock_before_decision {
            for (txn, prepared) in &self.prepared {
                if let Some(w) = prepared
                    .writes
                    .iter()
                    .find(|w| self.locks.get(&w.key) != Some(txn))
                {
                    return Err(format!(
                        "{txn} is prepared but k{} is not locked by it",
                        w.key
                    ));
                }
            }
        }
        if let Some(txn) = self.queued.keys().find(|t| self.prepared.contains_key(t)) {
            return Err(format!("{txn} is both queued and prepared"));
        }
        if let Some(txn) = self.active.keys().find(|t| !self.prepared.contains_key(t)) {
            return Err(format!(
                "{txn} collects votes without its own prepared record"
            ));
        }
        Ok(())
    }
}
