//! A snapshot: the state machine's state at one log index, with the client sessions and the
//! membership in force there (paper section 7, thesis 5.1 and 6.3).
//!
//! The log holds one at its base (what compaction left), the state machine is rebuilt from
//! one and makes them, and InstallSnapshot carries one. It lives apart from both so that the
//! dependency runs one way: the state machine reads log entries, the log never reads the
//! state machine.

use crate::ids::{ClientId, NodeId};
use crate::kv::{Key, OpResult, Value};
use serde::{Serialize, Serializer};
use std::collections::BTreeMap;
use std::rc::Rc;

/// What a session remembers of its client's latest applied request.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Session {
    /// The request's sequence number.
    pub seq: u64,
    /// Its result, for a retry.
    pub result: OpResult,
}

/// The state machine's state through `last_index`, with the membership in force there
/// (paper section 7, thesis 5.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Snapshot {
    /// The last index covered.
    pub last_index: u64,
    /// The term of that entry.
    pub last_term: u64,
    /// The log's chain hash through that entry.
    pub chain: u64,
    /// The voters in force at `last_index`.
    pub voters: Vec<NodeId>,
    /// The store.
    pub store: BTreeMap<Key, Value>,
    /// The client sessions.
    pub sessions: BTreeMap<ClientId, Session>,
}

/// A snapshot on the wire, shared with the sender's log, serialized as its contents.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SharedSnapshot(pub Rc<Snapshot>);

impl Serialize for SharedSnapshot {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}
