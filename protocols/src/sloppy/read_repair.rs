//! Read repair (module doc, "Repair"): once every target of a get has answered (or the ack
//! check gave up on the rest), replicas that answered get the versions of the merged read they
//! lack; the planted bug pushes the oldest version instead.

use super::coordinator::Pending;
use super::versions::{Versioned, Versions};
use super::{Message, Sloppy, Timer};
use crate::contract::Context;
use crate::ids::NodeId;
use crate::kv::Key;

impl Sloppy {
    pub(super) fn maybe_finish_read(&mut self, ctx: &mut Context<'_, Self>, op: u64) {
        let p = &self.pending[&op];
        if p.replies.len() == p.targets.len() {
            self.read_repair(ctx, op);
            ctx.cancel_timer(Timer::AckCheck(op));
        }
    }

    /// Sends every replica that answered the versions of the merged read it lacks; ends
    /// `op`.
    pub(super) fn read_repair(&mut self, ctx: &mut Context<'_, Self>, op: u64) {
        let Some(p) = self.pending.remove(&op) else {
            return;
        };
        if self.bugs.repair_older {
            self.repair_with_oldest(ctx, &p);
            return;
        }
        let siblings = self.siblings;
        for (node, held) in &p.replies {
            for v in p.versions.iter().filter(|v| held.lacks(v, siblings)) {
                self.send_repair(ctx, *node, p.op.key(), v.clone());
            }
        }
    }

    /// The planted bug: pushes the oldest version read to every replica whose newest
    /// version is another.
    pub(super) fn repair_with_oldest(&mut self, ctx: &mut Context<'_, Self>, p: &Pending) {
        let oldest = p
            .replies
            .values()
            .flat_map(Versions::iter)
            .min_by_key(|v| v.entry.version)
            .cloned();
        let Some(oldest) = oldest else {
            return;
        };
        for (node, held) in &p.replies {
            if held.newest_version() != Some(oldest.entry.version) {
                self.send_repair(ctx, *node, p.op.key(), oldest.clone());
            }
        }
    }

    pub(super) fn send_repair(
        &mut self,
        ctx: &mut Context<'_, Self>,
        node: NodeId,
        key: Key,
        v: Versioned,
    ) {
        ctx.note(|| format!("read repair of k{key} at {node}"));
        let msg = Message::Store {
            op: 0,
            key,
            entry: v,
            hints: Vec::new(),
            repair: true,
        };
        self.send_or_serve(ctx, node, msg);
    }
}
