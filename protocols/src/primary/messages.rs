//! What primary nodes send each other, and the one timer they arm.

use super::store::Entry;
use crate::kv::Key;
use serde::Serialize;

/// What primary nodes send each other.
///
/// An `incarnation` is the sender's counter mark reserved at its start: it grows across
/// restarts, and forward numbers (`seq`, `sent`) count from 1 again in each incarnation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Message {
    /// A write's resulting state of one key, sent by its coordinator to every peer.
    Forward {
        /// The key written.
        key: Key,
        /// Its state after the write.
        entry: Entry,
        /// The sender's incarnation.
        incarnation: u64,
        /// This forward's number on the link from the sender to the receiver: 1, 2, ...
        seq: u64,
    },
    /// "I am alive", with how many forwards the sender has sent, for failure detection and
    /// anti-entropy.
    Heartbeat {
        /// The sender's incarnation.
        incarnation: u64,
        /// How many forwards the sender has sent the receiver in this incarnation.
        sent: u64,
        /// Whether the sender has received a full state since it started.
        synced: bool,
    },
    /// "Send me your full state" (restart pull, heal pull, pull after a lost forward).
    SyncRequest,
    /// A full state (versions and tombstones), merged by version by the receiver.
    SyncState {
        /// The sender's incarnation.
        incarnation: u64,
        /// How many forwards the sender had sent the receiver when it replied: the state
        /// covers every one of them.
        sent: u64,
        /// Every entry the sender holds, in key order.
        entries: Vec<(Key, Entry)>,
    },
    /// "How far did my counter go?": sent by a node whose counter mark was lost to a
    /// corrupt record, to every peer until each has answered, before it writes again.
    CounterQuery,
    /// The answer: the highest counter of the asker's the sender knows (its Lamport
    /// counter, past every version it holds, and the asker's incarnation as it knows it).
    CounterReply {
        /// That counter.
        known: u64,
    },
}

/// The timers a primary node arms.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Timer {
    /// Send heartbeats, detect silent peers, retry the restart pull; re-armed every time.
    Heartbeat,
}
