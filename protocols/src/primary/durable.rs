//! What survives a crash: the Lamport counter's reserved high-water mark (module doc, "What
//! survives a crash"), and the reservation that keeps a restarted node from issuing a version
//! twice.

use crate::Replay;
use super::Primary;
use crate::contract::Context;
use crate::ids::NodeId;
use crate::quorum::Version;

/// What survives a crash: the Lamport counter's reserved high-water mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrimaryDurable {
    /// No version this node ever issued has a greater counter (unless `damaged`).
    pub counter_reserved: u64,
    /// Whether the mark cannot be trusted: a recovery met a record whose checksum failed
    /// (the mark it held is lost), and the node has not yet learnt from every peer how far
    /// its counter went. It stays set in the records written until it has, so that a crash
    /// meanwhile does not make an untrusted mark look sound.
    pub damaged: bool,
}

impl Primary {
    /// Issues the next version of this node, reserving (persisting) more counter values first
    /// when the reservation is used up.
    pub(super) fn next_version(&mut self, ctx: &mut Context<'_, Self>) -> Version {
        let (version, must_persist) = self.counter.next(self.me);
        if must_persist {
            self.persist_reservation(ctx);
        }
        version
    }

    /// Persists a high-water mark one chunk past the counter.
    pub(super) fn reserve_counter(&mut self, ctx: &mut Context<'_, Self>) {
        self.counter.reserve();
        self.persist_reservation(ctx);
    }

    pub(super) fn persist_reservation(&self, ctx: &mut Context<'_, Self>) {
        // The whole durable state is this one mark: each record is a snapshot, and the log
        // keeps only the latest.
        ctx.write_snapshot(PrimaryDurable {
            counter_reserved: self.counter.reserved(),
            damaged: self.relearning.is_some(),
        });
        ctx.sync();
    }
}

/// Each record is the whole mark: the latest intact one is what survives.
impl Replay<PrimaryDurable> for PrimaryDurable {
    fn replay(&self, durable: &mut Option<PrimaryDurable>) {
        *durable = Some(*self);
    }
}

impl Primary {
    /// A peer's answer to [`Message::CounterQuery`](super::Message::CounterQuery): the
    /// highest counter of this node's it knows. Once every peer has answered, the node
    /// reserves past all of them, persists a sound mark and takes it as its incarnation: from
    /// then on it writes again, and never with a version (or an incarnation) it used before.
    pub(super) fn on_counter_reply(&mut self, ctx: &mut Context<'_, Self>, from: NodeId, known: u64) {
        let Some(waiting) = self.relearning.as_mut() else {
            return ctx.note(|| format!("counter of {from}: not relearning; ignored"));
        };
        waiting.remove(&from);
        self.counter.observe(known);
        ctx.note(|| format!("{from} knows our counter up to {known}"));
        if waiting.is_empty() {
            self.finish_relearning(ctx);
        }
    }

    /// Every peer has said how far this node's counter went: reserve past it and serve.
    pub(super) fn finish_relearning(&mut self, ctx: &mut Context<'_, Self>) {
        self.relearning = None;
        self.reserve_counter(ctx);
        self.incarnation = self.counter.reserved();
        // Forward numbers count from 1 again in each incarnation.
        for peer in self.peers.values_mut() {
            peer.forwards_sent = 0;
        }
        let mark = self.incarnation;
        ctx.note(|| format!("relearnt the counter from every peer: incarnation {mark}"));
    }

    /// While relearning, asks the peers that have not answered yet how far this node's
    /// counter went (again on each heartbeat: a query or its answer may be lost).
    pub(super) fn maybe_query_counter(&self, ctx: &mut Context<'_, Self>) {
        let Some(waiting) = &self.relearning else {
            return;
        };
        for peer in waiting {
            ctx.send(*peer, super::Message::CounterQuery);
        }
    }

    /// What this node knows of `of`'s counter: its Lamport counter is past every version it
    /// holds or saw (`of`'s included), and `of`'s incarnation as its forwards and heartbeats
    /// told it.
    pub(super) fn counter_known_of(&self, of: NodeId) -> u64 {
        let incarnation = self.peers.get(&of).map_or(0, |p| p.inbound.incarnation);
        self.counter.counter().max(incarnation)
    }
}
