//! Names of the actors in a run: nodes (replicas) and clients.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A replica, numbered from 0; shown as `n1`, `n2`, ... as scenarios name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub u16);

/// A client process, numbered from 0; shown as `c1`, `c2`, ...; it is the `:process` of a
/// Jepsen history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientId(pub u32);

/// One client operation: unique in a run. A client never has two requests in flight, and a
/// retried request keeps its id so that a protocol with client sessions can apply it once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RequestId {
    /// The client that issued it.
    pub client: ClientId,
    /// The client's sequence number, from 1.
    pub seq: u64,
}

impl NodeId {
    /// Index into per-node vectors.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

impl ClientId {
    /// Index into per-client vectors.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", u32::from(self.0) + 1)
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0 + 1)
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.client, self.seq)
    }
}
