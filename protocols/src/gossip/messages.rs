//! What gossip nodes send each other, the updates their messages piggyback, and the timers
//! they arm.

use crate::ids::NodeId;
use crate::kv::{Key, Value};
use serde::Serialize;

/// A Lamport time with the writer's id to break ties (serf's `LTime`, made total): an
/// invalidation is newer than a copy when its stamp is greater.
pub type Stamp = (u64, NodeId);

/// A member's state in one node's view (SWIM sections 4.2 and 5; serf's left state).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Answering probes.
    Alive,
    /// Missed a probe; declared dead unless it refutes within the suspicion timeout.
    Suspect,
    /// Confirmed failed (SWIM's "confirm").
    Dead,
    /// Left gracefully.
    Left,
}

/// One piece of news piggybacked on membership messages and gossiped (SWIM section 4.1,
/// "dissemination component"), each sent at most `retransmit_mult * ceil(log10(n + 1))`
/// times by a node.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Update {
    /// `node` is alive at `incarnation` (a join, or a refutation).
    Alive {
        /// The member.
        node: NodeId,
        /// Its incarnation.
        incarnation: u64,
    },
    /// `node` is suspected at `incarnation`.
    Suspect {
        /// The member.
        node: NodeId,
        /// The incarnation suspected.
        incarnation: u64,
    },
    /// `node` is confirmed dead at `incarnation`.
    Dead {
        /// The member.
        node: NodeId,
        /// The incarnation declared dead.
        incarnation: u64,
    },
    /// `node` left at `incarnation`.
    Left {
        /// The member.
        node: NodeId,
        /// Its incarnation when it left.
        incarnation: u64,
    },
    /// A serf user event: the write stamped `stamp` replaced `key`; drop older copies.
    Invalidate {
        /// The key written.
        key: Key,
        /// The write's Lamport time.
        stamp: Stamp,
    },
}

impl Update {
    /// The member a membership update is about (`None` for a user event).
    pub fn member(&self) -> Option<NodeId> {
        match self {
            Update::Alive { node, .. }
            | Update::Suspect { node, .. }
            | Update::Dead { node, .. }
            | Update::Left { node, .. } => Some(*node),
            Update::Invalidate { .. } => None,
        }
    }
}

/// What gossip nodes send each other. `seq` numbers a prober's probes, `q` a node's queries.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Message {
    /// A direct probe (SWIM section 3.1), with piggybacked updates.
    Ping {
        /// The prober's probe number.
        seq: u64,
        /// Piggybacked updates.
        updates: Vec<Update>,
    },
    /// The answer to a ping, direct or relayed: `of` answered probe `seq`.
    Ack {
        /// The probe answered.
        seq: u64,
        /// The member probed.
        of: NodeId,
        /// Piggybacked updates.
        updates: Vec<Update>,
    },
    /// Probe `target` for me (SWIM section 3.1, `ping-req`).
    PingReq {
        /// The prober's probe number.
        seq: u64,
        /// The member to probe.
        target: NodeId,
        /// Piggybacked updates.
        updates: Vec<Update>,
    },
    /// A ping on behalf of `origin`, whose ack goes back through the sender.
    IndirectPing {
        /// The prober's probe number.
        seq: u64,
        /// The prober.
        origin: NodeId,
        /// Piggybacked updates.
        updates: Vec<Update>,
    },
    /// The answer to an indirect ping, to the relay, which forwards it as an [`Message::Ack`].
    IndirectAck {
        /// The probe answered.
        seq: u64,
        /// The prober.
        origin: NodeId,
    },
    /// Gossip: updates only (memberlist's gossip to `gossip_nodes` members each interval).
    Gossip {
        /// The updates.
        updates: Vec<Update>,
    },
    /// A push-pull state exchange (a join through a known node, serf's reconnect): every
    /// member the sender knows with its state and incarnation.
    PushPull {
        /// The sender's members, itself included.
        members: Vec<(NodeId, Status, u64)>,
        /// Whether the receiver must answer with its own.
        reply: bool,
    },
    /// A serf query: who holds `key`?
    Query {
        /// The asker's query number.
        q: u64,
        /// The key.
        key: Key,
    },
    /// The answer to a query from a node holding a value.
    QueryResponse {
        /// The asker's query number.
        q: u64,
        /// The key.
        key: Key,
        /// The value held.
        value: Value,
        /// The stamp of the write it came from.
        stamp: Stamp,
    },
}

/// The timers a gossip node arms.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Timer {
    /// The protocol period: end the current probe, start the next.
    Probe,
    /// The direct probe `seq` got no ack in time: ask for indirect probes.
    ProbeTimeout(u64),
    /// The suspicion of the member at its incarnation ran out: declare it dead.
    Suspicion(NodeId, u64),
    /// Gossip the pending updates.
    Gossip,
    /// Join through the known node (again, until answered).
    Join,
    /// Try to reach a dead member again (serf's reconnect).
    Reconnect,
    /// Leave gracefully.
    Leave,
    /// Query `q` ran out of time: not found.
    Query(u64),
}
