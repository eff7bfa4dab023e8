//! Read repair (module doc, "Repair"): once every target of a get has answered (or the ack
//! check gave up on the rest), replicas that answered get the versions of the merged read they
//! lack; 

use super::versions::Versioned;
use super::{Message, Dynamo, Timer};
use crate::contract::Context;
use crate::ids::NodeId;
use crate::kv::Key;

impl Dynamo {
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
        for (node, held) in &p.replies {
            for v in p.versions.iter().filter(|v| held.lacks(v)) {
                self.send_repair(ctx, *node, p.op.key(), v.clone());
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
