//! Failure detection and the pulls of full states (module doc, "Failure detection and
//! repair", 1 and 2): marking silent peers down, the restart pull, the heal pull, and serving
//! and merging full states.

use super::store::Entry;
use super::{Message, Primary};
use crate::contract::Context;
use crate::ids::NodeId;
use crate::kv::Key;

impl Primary {
    /// Asks every peer for its state until one answers, then each peer that is up and has
    /// not answered since start.
    pub(super) fn maybe_pull(&mut self, ctx: &mut Context<'_, Self>) {
        if self.resync_skipped {
            return;
        }
        let (after, synced) = (self.anti_entropy_after, self.synced);
        let restarted = self.restarted;
        for (id, peer) in self.peers.iter_mut() {
            // Before the first answer every peer is asked; after it, at a restarted node,
            // those up that have not answered yet.
            if !peer.answered && (!synced || (restarted && peer.up)) {
                peer.pull_wait = after;
                ctx.send(*id, Message::SyncRequest);
            }
        }
    }

    /// Our full state, as a message to `to`.
    pub(super) fn full_state(&self, to: NodeId) -> Message {
        Message::SyncState {
            incarnation: self.incarnation,
            sent: self.peers.get(&to).map_or(0, |p| p.forwards_sent),
            entries: self.entries.iter().map(|(k, e)| (*k, e.clone())).collect(),
        }
    }

    /// Notes that `from` is alive; a peer that was marked down is asked for what we missed.
    pub(super) fn on_heard(&mut self, ctx: &mut Context<'_, Self>, from: NodeId) {
        let now = ctx.now();
        let Some(peer) = self.peers.get_mut(&from) else {
            ctx.note(|| format!("ignored a message from {from}, not a peer"));
            return;
        };
        peer.last_heard = now;
        if !peer.up {
            peer.up = true;
            // This pull also answers any gap its silence left: no second pull for it.
            peer.pull_wait = self.anti_entropy_after;
            ctx.note(|| format!("{from} is up again; pulling its state"));
            ctx.send(from, Message::SyncRequest);
        }
    }

    pub(super) fn on_sync_state(
        &mut self,
        ctx: &mut Context<'_, Self>,
        from: NodeId,
        (incarnation, sent): (u64, u64),
        entries: Vec<(Key, Entry)>,
    ) {
        let count = entries.len();
        let mut taken = 0usize;
        for (key, entry) in entries {
            if self.maybe_merge(ctx, from, key, entry.clone()) {
                taken += 1;
                // What a full state taught this node, another node may lack too (a peer
                // that synced from a restarted one, or before a late state arrived): pass it
                // on, so that one holder's state reaches every replica (module doc, 1).
                self.forward(ctx, key, &entry, Some(from));
            }
        }
        ctx.note(|| format!("merged state of {from}: took {taken} of {count} entries"));
        if let Some(peer) = self.peers.get_mut(&from) {
            peer.answered = true;
            if Self::observe_incarnation(ctx, from, peer, incarnation) {
                // Every forward sent before the reply is covered by the state it carried.
                peer.inbound.cover_through(sent);
                peer.pull_wait = 0;
            }
        }
        if !self.synced {
            self.synced = true;
            ctx.note(|| format!("synced (first state from {from})"));
        }
    }

    /// Marks down every up peer silent for `failure_timeout`.
    pub(super) fn maybe_mark_down(&mut self, ctx: &mut Context<'_, Self>) {
        let now = ctx.now();
        for (id, peer) in self.peers.iter_mut() {
            if peer.up && now.since(peer.last_heard) >= self.failure_timeout {
                peer.up = false;
                let (id, silent) = (*id, now.since(peer.last_heard));
                ctx.note(|| format!("{id} marked down: silent for {silent}"));
            }
        }
    }
}
