//! What survives a crash: the Lamport counter's reserved high-water mark (module doc, "What
//! survives a crash"), and the reservation that keeps a restarted node from issuing a version
//! twice.

use crate::Replay;
use super::Primary;
use crate::contract::Context;
use crate::quorum::Version;

/// What survives a crash: the Lamport counter's reserved high-water mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrimaryDurable {
    /// No version this node ever issued has a greater counter.
    pub counter_reserved: u64,
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

    fn persist_reservation(&self, ctx: &mut Context<'_, Self>) {
        // The whole durable state is this one mark: each record is a snapshot, and the log
        // keeps only the latest.
        ctx.write_snapshot(PrimaryDurable {
            counter_reserved: self.counter.reserved(),
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
