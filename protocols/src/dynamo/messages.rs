//! What dynamo nodes send each other, and the timers they arm.

use super::ring::Member;
use super::versions::{Versioned, Versions};
use crate::ids::NodeId;
use crate::kv::Key;
use crate::quorum::Version;
use serde::Serialize;

/// What dynamo nodes send each other; `op` numbers a coordinator's requests.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Message {
    /// What do you hold for `key`?
    Fetch {
        /// The coordinator's request number.
        op: u64,
        /// The key.
        key: Key,
    },
    /// The answer to a fetch.
    Fetched {
        /// The coordinator's request number.
        op: u64,
        /// What the replica holds (named `entry` in traces, as before siblings).
        #[serde(rename = "entry")]
        versions: Versions,
    },
    /// Take `entry`, and hold it as a hint for each of `hints`.
    Store {
        /// The coordinator's request number (0: a read repair).
        op: u64,
        /// The key.
        key: Key,
        /// The version.
        entry: Versioned,
        /// The nodes this one stands in for.
        hints: Vec<NodeId>,
        /// A read repair.
        repair: bool,
    },
    /// The answer to a store: persisted.
    Stored {
        /// The coordinator's request number.
        op: u64,
    },
    /// Hinted values handed back to the node they were meant for.
    Handoff {
        /// The versions (a key's siblings each on their own).
        entries: Vec<(Key, Versioned)>,
    },
    /// The answer to a handoff: these are persisted, delete their hints.
    HandoffAck {
        /// Keys and versions taken (or superseded).
        done: Vec<(Key, Version)>,
    },
    /// Are you up?
    Ping,
    /// Yes.
    Pong,
    /// Anti-entropy (section 4.7): the root of the sender's Merkle tree over the keys both
    /// ends replicate, and the sender's view of the ring's members (gossiped, section 4.8:
    /// no global view).
    Digest {
        /// The root's hash.
        root: u64,
        /// The sender's members and their states.
        members: Vec<(NodeId, Member)>,
    },
    /// Anti-entropy: the sender's hashes of the children of these nodes on `level` of its
    /// tree (0: the root), each a node whose hash differed.
    Branches {
        /// The level of the nodes.
        level: u8,
        /// Each node's index on its level, and its children's hashes.
        nodes: Vec<(u32, Vec<u64>)>,
    },
    /// Anti-entropy: the sender's versions in the differing leaves; with `reply`, send
    /// yours back.
    Entries {
        /// The leaves.
        leaves: Vec<u32>,
        /// The sender's versions in them (a key's siblings each on their own).
        entries: Vec<(Key, Versioned)>,
        /// Whether the receiver should answer with its own.
        reply: bool,
    },
    /// Join step 2 (seed): what is your state?
    JoinStatus,
    /// The answer: `None` while the sender is not in the ring (NEW, or not joining).
    Status {
        /// The sender's state in its own view.
        state: Option<Member>,
        /// Whether the sender is NEW (waiting to join).
        new: bool,
    },
    /// Join step 4: what would the ring be with `joiner` added?
    Predict {
        /// The node asking to join.
        joiner: NodeId,
    },
    /// The predicted ring: its members, ascending.
    Predicted {
        /// The members with the joiner added.
        ring: Vec<NodeId>,
    },
    /// Join step 4, again: add `joiner` to your ring (as PENDING).
    Add {
        /// The node joining.
        joiner: NodeId,
    },
    /// The answer: added and persisted.
    Added,
    /// Join step 5: send me the keys I now own and the backups I must hold.
    TransferRequest,
    /// Keys handed over (a join's pull, or a leave's push with `ack`).
    Transfer {
        /// The versions (a key's siblings each on their own).
        entries: Vec<(Key, Versioned)>,
        /// Whether the receiver must acknowledge (a leave's push).
        ack: bool,
    },
    /// A leave's push was persisted.
    TransferAck,
    /// `node` is now in state `state` (READY after its copy, LEFT after a leave).
    Announce {
        /// The node.
        node: NodeId,
        /// Its new state.
        state: Member,
    },
}

/// The timers a dynamo node arms.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Timer {
    /// Request `op` gives up.
    Deadline(u64),
    /// Request `op`'s silent replicas are marked down.
    AckCheck(u64),
    /// Probe down nodes, hand back hints.
    Handoff,
    /// Next anti-entropy round.
    AntiEntropy,
    /// The join protocol's next step (or its random wait ending).
    Join,
    /// The graceful leave's next step.
    Leave,
}
