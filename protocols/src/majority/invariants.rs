//! The invariants the engine checks after every handler: nothing accepted past its promise,
//! nothing chosen without a value, no ballot of this node's own past the reserved mark (else a
//! restart could issue it again), and the pending table bounded.

use super::{Majority, PENDING_MAX};

impl Majority {
    /// The node's own invariants.
    pub(super) fn check_node(&self) -> Result<(), String> {
        for (key, slot) in &self.slots {
            let held = Self::version_of(&slot.accepted);
            if held > slot.promised {
                return Err(format!(
                    "k{key}: accepted {held:?} past the promise {:?}",
                    slot.promised
                ));
            }
            if slot.chosen && slot.accepted.is_none() {
                return Err(format!("k{key}: chosen, but nothing accepted"));
            }
        }
        // A ballot of our own past the persisted mark could be issued again after a crash.
        let own = self
            .slots
            .values()
            .flat_map(|s| [s.promised, Self::version_of(&s.accepted)]);
        if let Some(v) = own.filter(|v| v.node == self.me).max() {
            if v.counter > self.counter.reserved() {
                return Err(format!(
                    "own ballot {v:?} past the reserved mark {}",
                    self.counter.reserved()
                ));
            }
        }
        if self.pending.len() > PENDING_MAX {
            return Err(format!("{} requests pending", self.pending.len()));
        }
        Ok(())
    }
}
