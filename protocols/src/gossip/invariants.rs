//! The invariants the engine checks after every handler (module doc, "Promises and checked
//! invariants").

use super::{Gossip, Stamp};

/// A stamp as traces spell it: `12@n1`.
pub(super) fn show(stamp: Stamp) -> String {
    format!("{}@{}", stamp.0, stamp.1)
}

impl Gossip {
    /// The node's own invariants.
    pub(super) fn check_node(&self) -> Result<(), String> {
        for (key, copy) in &self.store {
            if let Some(event) = self.invalidated.get(key) {
                if *event > copy.stamp {
                    return Err(format!(
                        "k{key}: holds the copy of write {} after the event of newer write {} \
                         (a stale cache)",
                        show(copy.stamp),
                        show(*event)
                    ));
                }
            }
        }
        for (key, own) in &self.written {
            let newer_heard = self.invalidated.get(key).is_some_and(|e| e > own);
            let kept = self.store.get(key).is_some_and(|c| c.stamp >= *own);
            if !newer_heard && !kept {
                return Err(format!(
                    "k{key}: lost its own write {} though no newer write was heard of (an \
                     older event dropped it)",
                    show(*own)
                ));
            }
        }
        if let Some(accused) = self.accused {
            if !self.left && self.incarnation <= accused {
                return Err(format!(
                    "incarnation {} not past {accused}, at which it was suspected (SWIM \
                     section 4.2: refute with a higher incarnation)",
                    self.incarnation
                ));
            }
        }
        if self.pending.len() > crate::quorum::PENDING_MAX {
            return Err(format!("{} queries pending", self.pending.len()));
        }
        Ok(())
    }
}
