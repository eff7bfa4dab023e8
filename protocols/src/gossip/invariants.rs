//! The invariants the engine checks after every handler (module doc, "Promises and checked
//! invariants").

use super::{Gossip, Stamp};
use crate::kv::Key;
use std::iter::Peekable;

/// The value at `key` of a map being walked in key order, moving the walk past every
/// smaller key: the same answer as a lookup, for keys asked in increasing order.
fn seek<'a, V: 'a>(
    walk: &mut Peekable<impl Iterator<Item = (&'a Key, &'a V)>>,
    key: &Key,
) -> Option<&'a V> {
    while walk.next_if(|(k, _)| *k < key).is_some() {}
    walk.next_if(|(k, _)| *k == key).map(|(_, v)| v)
}

/// A stamp as traces spell it: `12@n1`.
pub(super) fn show(stamp: Stamp) -> String {
    format!("{}@{}", stamp.0, stamp.1)
}

impl Gossip {
    /// The node's own invariants.
    pub(super) fn check_node(&self) -> Result<(), String> {
        // The maps' invariants depend on the maps alone: judged again only once one of them
        // changed since they last held (most handlers, probes and gossip, change none).
        let generations = [
            self.store.generation(),
            self.invalidated.generation(),
            self.written.generation(),
        ];
        if self.judged.get() != Some(generations) {
            self.check_maps()?;
            self.judged.set(Some(generations));
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

    /// The invariants over the store, the events heard and the own writes.
    fn check_maps(&self) -> Result<(), String> {
        // Every map is ordered by key: each loop walks its map beside `invalidated` (and
        // `store`) instead of looking keys up, which made this check most of a gossip run.
        let mut events = self.invalidated.iter().peekable();
        for (key, copy) in self.store.iter() {
            if let Some(&event) = seek(&mut events, key) {
                if event > copy.stamp {
                    return Err(format!(
                        "k{key}: holds the copy of write {} after the event of newer write {} \
                         (a stale cache)",
                        show(copy.stamp),
                        show(event)
                    ));
                }
            }
        }
        let mut events = self.invalidated.iter().peekable();
        let mut copies = self.store.iter().peekable();
        for (key, own) in self.written.iter() {
            let newer_heard = seek(&mut events, key).is_some_and(|e| e > own);
            let kept = seek(&mut copies, key).is_some_and(|c| c.stamp >= *own);
            if !newer_heard && !kept {
                return Err(format!(
                    "k{key}: lost its own write {} though no newer write was heard of (an \
                     older event dropped it)",
                    show(*own)
                ));
            }
        }
        Ok(())
    }
}
