//! The invariants the engine checks after every handler: nothing accepted past its promise,
//! nothing chosen without a value, no ballot of this node's own past the reserved mark (else a
//! restart could issue it again), and the pending table bounded.

use super::{Majority, PENDING_MAX};
use crate::quorum::Version;

impl Majority {
    /// The node's own invariants.
    pub(super) fn check_node(&self) -> Result<(), String> {
        // One pass over the slots (this runs after every handler): each slot's own
        // conditions, and the highest ballot of our own any slot holds.
        let mut own_max: Option<Version> = None;
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
            for v in [slot.promised, held] {
                if v.node == self.me && own_max.is_none_or(|m| v > m) {
                    own_max = Some(v);
                }
            }
        }
        // A ballot of our own past the persisted mark could be issued again after a crash.
        if let Some(v) = own_max {
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
