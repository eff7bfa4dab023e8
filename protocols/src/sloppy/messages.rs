//! What sloppy nodes send each other, and the timers they arm.

use super::versions::{Versioned, Versions};
use crate::ids::NodeId;
use crate::kv::Key;
use crate::quorum::Version;
use serde::Serialize;

/// What sloppy nodes send each other; `op` numbers a coordinator's requests.
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
    /// Anti-entropy: the digest of one bucket.
    Digest {
        /// The bucket.
        bucket: u16,
        /// Its digest.
        digest: u64,
    },
    /// Anti-entropy: the sender's entries of a bucket; with `reply`, send yours back.
    Entries {
        /// The bucket.
        bucket: u16,
        /// The sender's versions in it (a key's siblings each on their own).
        entries: Vec<(Key, Versioned)>,
        /// Whether the receiver should answer with its own.
        reply: bool,
    },
}

/// The timers a sloppy node arms.
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
}
