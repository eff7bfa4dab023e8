//! Hinted handoff (Dynamo section 4.6; module doc, "Sloppy writes, hinted handoff"): hints
//! held for nodes that were down, the record of when each peer was heard, probes of down
//! nodes, and hand-backs whose acknowledgement deletes the hints.

use super::versions::{Versioned, Versions};
use super::{Message, Sloppy, Timer};
use crate::contract::Context;
use crate::ids::NodeId;
use crate::kv::Key;
use crate::quorum::Version;
use crate::time::{Span, Time};
use serde::Serialize;
use std::collections::BTreeSet;

/// A hint for a node that has answered without a break for this long, and that this node
/// has not marked down meanwhile, must be handed back. A node marked down is only probed
/// (Dynamo section 4.6 hands back once "the database detects that A has recovered"): on a
/// network whose latency exceeds `ack_timeout` a peer can answer every few hundred ms and
/// still be found down at each missed ack, so counting from its first answer broke the
/// invariant on a correct protocol (swarm.toml seed 114).
pub const HANDOFF_DEADLINE: Span = Span::secs(5);

/// Messages from a node further apart than this break its "answered continuously" run.
pub const CONTACT_GAP: Span = Span::millis(500);

/// At most this many hinted entries in one [`Message::Handoff`].
pub const HANDOFF_BATCH: usize = 64;

/// Values held for a node that was down.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Hint {
    /// The versions to hand back (one with last writer wins).
    pub versions: Versions,
    /// When it was last stored or changed (this node's clock).
    pub stored_at: Time,
}

impl Sloppy {
    /// Holds `v` as a hint for `node` (with the key's other hinted versions, by the conflict
    /// rule); whether anything changed.
    pub(super) fn add_hint(&mut self, node: NodeId, key: Key, v: &Versioned) -> bool {
        if node == self.me || !v.entry.intact() {
            return false;
        }
        let stored_at = self.now;
        let siblings = self.siblings;
        match self.hints.get_mut(&(node, key)) {
            Some(h) => {
                let changed = h.versions.take(v.clone(), siblings);
                if changed {
                    h.stored_at = stored_at;
                }
                changed
            }
            None => {
                let hint = Hint {
                    versions: Versions::one(v.clone()),
                    stored_at,
                };
                self.hints.insert((node, key), hint);
                self.hints_stored += 1;
                true
            }
        }
    }

    pub(super) fn heard_from(&mut self, from: NodeId) {
        self.down.remove(&from);
        let now = self.now;
        let run = self.heard.entry(from).or_insert((now, now));
        if now.since(run.1) > CONTACT_GAP {
            run.0 = now;
        }
        run.1 = now;
    }

    /// `from` answered a probe: it has recovered, and the hints held for it are handed
    /// back now (Dynamo section 4.6: "once the database detects that A has recovered, D
    /// will attempt to deliver the replica to A"), not at the next tick, by which time a
    /// single missed acknowledgement on a lossy link may have marked it down again (swarm
    /// seed 763: a node that answered every probe for 5 s was found down at every tick, and
    /// only ever probed).
    pub(super) fn on_pong(&mut self, ctx: &mut Context<'_, Self>, from: NodeId) {
        if self.bugs.never_hand_back {
            return;
        }
        let entries = self.handoff_batch(from);
        if !entries.is_empty() {
            ctx.send(from, Message::Handoff { entries });
        }
    }

    /// The first [`HANDOFF_BATCH`] hinted versions held for `node`, in key order.
    fn handoff_batch(&self, node: NodeId) -> Vec<(Key, Versioned)> {
        let held = self.hints.range((node, Key::MIN)..=(node, Key::MAX));
        let versions = held.flat_map(|((_, key), hint)| hint.versions.iter().map(|v| (*key, v)));
        let batch = versions.take(HANDOFF_BATCH);
        batch.map(|(key, v)| (key, v.clone())).collect()
    }

    pub(super) fn on_handoff_tick(&mut self, ctx: &mut Context<'_, Self>) {
        let hinted: BTreeSet<NodeId> = self.hints.keys().map(|(node, _)| *node).collect();
        for node in hinted {
            if self.bugs.never_hand_back || self.down.contains(&node) {
                ctx.send(node, Message::Ping);
            } else {
                let entries = self.handoff_batch(node);
                ctx.send(node, Message::Handoff { entries });
            }
        }
        let down: Vec<NodeId> = self.down.iter().copied().collect();
        for node in down {
            if !self.hints.keys().any(|(n, _)| *n == node) {
                ctx.send(node, Message::Ping);
            }
        }
        ctx.set_timer(Timer::Handoff, self.handoff_interval);
    }

    /// Takes hinted versions handed back to this node (by the conflict rule), persists, and
    /// acknowledges every one, taken or superseded.
    pub(super) fn on_handoff(
        &mut self,
        ctx: &mut Context<'_, Self>,
        from: NodeId,
        entries: Vec<(Key, Versioned)>,
    ) {
        let mut changed = false;
        let mut done = Vec::new();
        for (key, v) in entries {
            done.push((key, v.entry.version));
            changed |= self.install(key, v, false);
        }
        if changed {
            self.persist(ctx);
        }
        ctx.send(from, Message::HandoffAck { done });
    }

    /// `from` persisted these versions (or newer ones): they are no longer hints. A hint is
    /// handed back once none of its versions is left.
    pub(super) fn on_handoff_ack(
        &mut self,
        ctx: &mut Context<'_, Self>,
        from: NodeId,
        done: Vec<(Key, Version)>,
    ) {
        let mut changed = false;
        let mut removed = 0;
        for (key, version) in done {
            let Some(hint) = self.hints.get_mut(&(from, key)) else {
                continue;
            };
            if hint.versions.remove(version) {
                changed = true;
                if hint.versions.is_empty() {
                    self.hints.remove(&(from, key));
                    removed += 1;
                }
            }
        }
        if changed {
            self.hints_delivered += removed;
            self.persist(ctx);
        }
        if removed > 0 {
            ctx.note(|| format!("{removed} hints handed back to {from}"));
        }
    }
}
