//! The invariants the engine checks after every handler: nothing accepted past its promise,
//! nothing chosen without a value, no ballot of this node's own past the reserved mark (else a
//! restart could issue it again), and the pending table bounded.

use super::{Majority, Slot, PENDING_MAX};
use crate::kv::Key;
use crate::quorum::Version;

impl Majority {
    /// The node's own invariants, judged after every handler over the slots changed since
    /// the last judgement only: a slot's own conditions depend on it alone, so a slot that
    /// passed and has not changed passes still ([`crate::tracked::Tracked::check_changed`]),
    /// and the highest own ballot is bounded from above by the last one judged and the
    /// changed slots'. Whenever that finds anything, [`Majority::check_all`] judges every
    /// slot: the verdict and its words are always the full walk's, only cheaper to reach
    /// when nothing is wrong.
    pub(super) fn check_node(&self) -> Result<(), String> {
        let mut own_max = self.own_checked.get();
        let changed = self.slots.check_changed(|key, slot| self.judge_slot(*key, slot, &mut own_max));
        let own_past_mark = own_max.is_some_and(|v| v.counter > self.counter.reserved());
        if changed.is_err() || own_past_mark {
            let own_max = self.check_all()?;
            self.own_checked.set(own_max);
            return Ok(());
        }
        self.own_checked.set(own_max);
        if self.pending.len() > PENDING_MAX {
            return Err(format!("{} requests pending", self.pending.len()));
        }
        Ok(())
    }

    /// Every invariant over every slot; the highest own ballot held when they hold.
    pub(super) fn check_all(&self) -> Result<Option<Version>, String> {
        // One pass over the slots: each slot's own conditions, and the highest ballot of
        // our own any slot holds.
        let mut own_max: Option<Version> = None;
        for (key, slot) in &self.slots {
            self.judge_slot(*key, slot, &mut own_max)?;
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
        Ok(own_max)
    }

    /// A slot's own conditions; raises `own_max` to the slot's ballots of this node's own.
    fn judge_slot(&self, key: Key, slot: &Slot, own_max: &mut Option<Version>) -> Result<(), String> {
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
                *own_max = Some(v);
            }
        }
        Ok(())
    }
}
