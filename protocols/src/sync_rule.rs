//! When a node syncs what it wrote: before anything that depends on it leaves (the rule
//! every correct protocol here follows: etcd/raft's "persist, then send"; Raft section 5.1's
//! "updated on stable storage before responding to RPCs"), or now and then, while it answers
//! at once, as Cassandra's `commitlog_sync: periodic` and Redis's `appendfsync everysec` do:
//! the planted `ack-before-sync` bugs of the protocols that use this. A crash before the next
//! periodic sync loses what was acknowledged since the last one, which the checks see when
//! `[disk] crash` loses unsynced writes.

use crate::{Context, Protocol, Span, Time};

/// How long a periodic sync waits after the previous one (Cassandra's
/// `commitlog_sync_period` is 10 s by default; this is a hundredth of it).
pub(crate) const PERIOD: Span = Span::millis(100);

/// A node's sync rule (see the module documentation).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SyncRule {
    /// Sync periodically rather than before what depends on the writes leaves (the bug).
    periodic: bool,
    /// A write is waiting for the periodic sync.
    owed: bool,
    /// When the last periodic sync began (the node's monotonic clock).
    last: Time,
}

impl SyncRule {
    /// Syncs at once, or periodically when `periodic`.
    pub(crate) fn new(periodic: bool) -> Self {
        SyncRule {
            periodic,
            owed: false,
            last: Time::ZERO,
        }
    }

    /// Makes what the node wrote durable before what it emits next leaves; when periodic,
    /// only at an [`SyncRule::end_of_handler`] a period after the last sync.
    pub(crate) fn sync<P: Protocol>(&mut self, ctx: &mut Context<'_, P>) {
        if self.periodic {
            self.owed = true;
        } else {
            ctx.sync();
        }
    }

    /// Called last in every handler: the periodic sync, once a period has passed, after
    /// everything the handler emitted.
    pub(crate) fn end_of_handler<P: Protocol>(&mut self, ctx: &mut Context<'_, P>) {
        let now = ctx.monotonic();
        if self.owed && now >= self.last + PERIOD {
            self.owed = false;
            self.last = now;
            ctx.sync();
        }
    }
}
