//! The invariants the engine checks after every handler: no version past the Lamport
//! counter, none of this node's own past the reserved mark (else a restart could reuse it),
//! the incarnation within the reservation, and every inbound count well formed.

use super::Primary;

impl Primary {
    /// The node's own invariants.
    pub(super) fn check_node(&self) -> Result<(), String> {
        if self.installed_counter_max > self.counter.counter() {
            return Err(format!(
                "a held version has counter {} past the Lamport counter {}",
                self.installed_counter_max,
                self.counter.counter()
            ));
        }
        // Our own versions from before a crash come back through resync: one past the mark
        // we restarted from means this node may issue it again.
        // While it relearns a damaged mark it issues nothing; its mark is untrusted until then.
        if self.relearning.is_none() && self.installed_own_counter_max > self.counter.reserved() {
            return Err(format!(
                "own version counter {} past the reserved mark {}: versions may be reused",
                self.installed_own_counter_max,
                self.counter.reserved()
            ));
        }
        if self.incarnation == 0 || self.incarnation > self.counter.reserved() {
            return Err(format!(
                "incarnation {} outside 1..={}",
                self.incarnation,
                self.counter.reserved()
            ));
        }
        // O(peers) per handler: a handful of peers, each check O(1).
        for (id, peer) in &self.peers {
            peer.inbound
                .check()
                .map_err(|e| format!("inbound from {id}: {e}"))?;
        }
        Ok(())
    }
}
