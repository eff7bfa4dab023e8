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
use std::collections::BTreeMap;

/// A hint for a node that has answered without a break for this long must be handed back.
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

    pub(super) fn on_handoff_tick(&mut self, ctx: &mut Context<'_, Self>) {
        let mut by_node: BTreeMap<NodeId, Vec<(Key, Versioned)>> = BTreeMap::new();
        for ((node, key), hint) in &self.hints {
            let batch = by_node.entry(*node).or_default();
            batch.extend(hint.versions.iter().map(|v| (*key, v.clone())));
        }
        for (node, mut entries) in by_node {
            if self.bugs.never_hand_back || self.down.contains(&node) {
                ctx.send(node, Message::Ping);
            } else {
                entries.truncate(HANDOFF_BATCH);
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
