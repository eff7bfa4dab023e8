//! Anti-entropy by numbered forwards (module doc, "Failure detection and repair", 3): the
//! receiving half of each link counts a peer's forwards against its heartbeats, and pulls from
//! the peer once a forward a heartbeat counted is still missing a heartbeat period later.

use super::store::Entry;
use super::{Message, PeerState, Primary};
use crate::contract::Context;
use crate::ids::NodeId;
use crate::kv::Key;
use std::cmp::Ordering;
use std::collections::BTreeSet;

/// How many forward numbers past a gap a node remembers per peer. Past it, a number is not
/// recorded and later looks missing: the worst case is one pull too many, never a loss.
pub const RECEIVED_BEYOND_MAX: usize = 4_096;

/// The receiving half of one numbered link: which of a peer's forwards have arrived.
#[derive(Clone, Debug, Default)]
pub(super) struct Inbound {
    /// The peer incarnation these counts belong to; 0 until the peer is heard.
    pub(super) incarnation: u64,
    /// Every forward numbered `1..=received_through` arrived, or a full state covered it.
    pub(super) received_through: u64,
    /// Forwards received past a gap: each above `received_through + 1`. At most
    /// [`RECEIVED_BEYOND_MAX`].
    pub(super) received_beyond: BTreeSet<u64>,
    /// `sent` of the peer's latest heartbeat in this incarnation.
    pub(super) sent_reported: u64,
}

impl Inbound {
    /// Whether counts from `incarnation` may be used: a newer one starts the counts afresh
    /// (returned as `Greater`), an older one is ignored (`Less`).
    pub(super) fn observe(&mut self, incarnation: u64) -> Ordering {
        let order = incarnation.cmp(&self.incarnation);
        if order == Ordering::Greater {
            *self = Inbound {
                incarnation,
                ..Inbound::default()
            };
        }
        order
    }

    /// Records forward `seq`; a duplicate changes nothing.
    pub(super) fn on_forward(&mut self, seq: u64) {
        if seq <= self.received_through {
            return;
        }
        if seq > self.received_through + 1 {
            if self.received_beyond.len() < RECEIVED_BEYOND_MAX {
                self.received_beyond.insert(seq);
            }
            return;
        }
        self.received_through = seq;
        self.drain();
    }

    /// A full state covered every forward up to `sent`.
    pub(super) fn cover_through(&mut self, sent: u64) {
        self.received_through = self.received_through.max(sent);
        self.drain();
    }

    /// Moves the prefix over buffered numbers it has reached. Ends: each pass removes one.
    fn drain(&mut self) {
        while let Some(&first) = self.received_beyond.first() {
            if first > self.received_through + 1 {
                break;
            }
            self.received_beyond.pop_first();
            self.received_through = self.received_through.max(first);
        }
    }

    /// Whether any forward of this incarnation is unaccounted for: a gap, or forwards past the
    /// latest heartbeat (which may have been followed by more, lost).
    pub(super) fn unsettled(&self) -> bool {
        self.received_through != self.sent_reported || !self.received_beyond.is_empty()
    }

    pub(super) fn check(&self) -> Result<(), String> {
        if let Some(&first) = self.received_beyond.first() {
            if first <= self.received_through + 1 {
                return Err(format!(
                    "forward {first} buffered past a gap, but received through {}",
                    self.received_through
                ));
            }
        }
        if self.received_beyond.len() > RECEIVED_BEYOND_MAX {
            return Err(format!("{} forwards buffered", self.received_beyond.len()));
        }
        Ok(())
    }
}

impl Primary {
    /// Whether counts of `from`'s `incarnation` may be used by `peer`'s inbound tracking; a
    /// newer incarnation restarts the tracking.
    pub(super) fn observe_incarnation(
        ctx: &mut Context<'_, Self>,
        from: NodeId,
        peer: &mut PeerState,
        incarnation: u64,
    ) -> bool {
        // Before the reset: 0 means its previous incarnation was never heard.
        let unsettled = peer.inbound.incarnation != 0 && peer.inbound.unsettled();
        match peer.inbound.observe(incarnation) {
            Ordering::Equal => true,
            Ordering::Less => {
                let tracked = peer.inbound.incarnation;
                ctx.note(|| {
                    format!("counts of {from}'s old incarnation {incarnation} ignored ({tracked})")
                });
                false
            }
            Ordering::Greater => {
                peer.pull_once_synced |= unsettled;
                ctx.note(|| {
                    format!(
                        "{from} is in incarnation {incarnation}: counting its forwards afresh \
                         (pull once it is synced: {unsettled})"
                    )
                });
                true
            }
        }
    }

    pub(super) fn on_forward(
        &mut self,
        ctx: &mut Context<'_, Self>,
        from: NodeId,
        (key, entry): (Key, Entry),
        (incarnation, seq): (u64, u64),
    ) {
        // Merged whatever its incarnation: versions, not numbers, decide what a replica holds.
        let taken = self.maybe_merge(ctx, from, key, entry.clone());
        let Some(peer) = self.peers.get_mut(&from) else {
            return;
        };
        if Self::observe_incarnation(ctx, from, peer, incarnation) {
            peer.inbound.on_forward(seq);
        } else if taken {
            // A forward of an incarnation the sender has left (delayed past its restart)
            // brought something this node lacked: the other peers, synced since, may lack it
            // too, and no count of theirs covers it. Passed on, as a full state's news is.
            self.forward(ctx, key, &entry, Some(from));
        }
    }

    /// Counts `from`'s forwards against what its previous heartbeat said it had sent, and
    /// pulls from it when one sent at least a heartbeat period ago is still missing.
    pub(super) fn on_heartbeat(
        &mut self,
        ctx: &mut Context<'_, Self>,
        from: NodeId,
        (incarnation, sent): (u64, u64),
        synced: bool,
    ) {
        let (me_synced, after) = (self.synced, self.anti_entropy_after);
        let Some(peer) = self.peers.get_mut(&from) else {
            return;
        };
        if !Self::observe_incarnation(ctx, from, peer, incarnation) {
            return;
        }
        peer.synced = synced;
        let inbound = &mut peer.inbound;
        let (reported, through) = (inbound.sent_reported, inbound.received_through);
        inbound.sent_reported = sent;
        peer.pull_wait = peer.pull_wait.saturating_sub(1);
        // A syncing node is already pulling everything; with `skip-resync` it must stay
        // unrepaired, so it never pulls here either.
        if !me_synced || self.bugs.no_anti_entropy {
            return;
        }
        if peer.pull_once_synced && synced {
            peer.pull_once_synced = false;
            peer.pull_wait = after;
            ctx.note(|| format!("{from} restarted with forwards unaccounted for; pulling"));
            ctx.send(from, Message::SyncRequest);
            return;
        }
        if reported <= through || peer.pull_wait > 0 {
            return;
        }
        peer.pull_wait = after;
        ctx.note(|| {
            format!("{from} sent {reported} forwards a heartbeat ago, {through} arrived; pulling")
        });
        ctx.send(from, Message::SyncRequest);
    }
}
