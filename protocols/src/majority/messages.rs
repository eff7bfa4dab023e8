//! What majority nodes send each other, and the timers they arm.

use super::durable::Record;
use crate::ids::RequestId;
use crate::kv::{Key, Op};
use crate::quorum::Version;
use serde::Serialize;

/// What majority nodes send each other. `op` numbers a coordinator's requests, so that
/// replies find their request.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Message {
    /// Phase 1 of a write: promise `ballot`, say what you hold.
    Prepare {
        /// The key.
        key: Key,
        /// The coordinator's request number.
        op: u64,
        /// The ballot.
        ballot: Version,
    },
    /// The answer to a prepare: promised.
    Promise {
        /// The key.
        key: Key,
        /// The coordinator's request number.
        op: u64,
        /// The ballot promised.
        ballot: Version,
        /// What the replica holds.
        accepted: Option<Record>,
    },
    /// Phase 1 of a read: what do you hold?
    Query {
        /// The key.
        key: Key,
        /// The coordinator's request number.
        op: u64,
        /// A number of this query that no incarnation of the coordinator uses again (drawn
        /// like a ballot): request numbers start over after a restart, and an answer to a
        /// query of the earlier incarnation must not count for this one.
        read: Version,
    },
    /// The answer to a query.
    QueryReply {
        /// The key.
        key: Key,
        /// The coordinator's request number.
        op: u64,
        /// The query's number, echoed.
        read: Version,
        /// What the replica holds.
        accepted: Option<Record>,
        /// Whether it is known chosen.
        chosen: bool,
    },
    /// Phase 2: take `record` (a new value under the coordinator's ballot, or, with
    /// `write_back`, a read's write-back of a value under its own version).
    Accept {
        /// The key.
        key: Key,
        /// The coordinator's request number.
        op: u64,
        /// The value.
        record: Record,
        /// A read's write-back (for traces: the rule is the same).
        write_back: bool,
    },
    /// The answer to an accept: the replica holds `version`.
    Accepted {
        /// The key.
        key: Key,
        /// The coordinator's request number.
        op: u64,
        /// The version accepted.
        version: Version,
    },
    /// A prepare or accept refused: the replica promised or holds `promised`.
    Nack {
        /// The key.
        key: Key,
        /// The coordinator's request number.
        op: u64,
        /// The ballot or version refused.
        refused: Version,
        /// What the replica promised or holds, so the coordinator's next ballot is higher.
        promised: Version,
    },
    /// `record` is chosen: install it whatever you promised.
    Commit {
        /// The key.
        key: Key,
        /// The chosen value.
        record: Record,
    },
    /// A client's write, sent to its key's distinguished proposer, which runs it.
    Forward {
        /// The sender's request number, quoted in the answers.
        op: u64,
        /// The client's request.
        request: RequestId,
        /// The operation.
        operation: Op,
    },
    /// The proposer has the forwarded write (the sender stops suspecting it).
    ForwardAck {
        /// The sender's request number.
        op: u64,
        /// The client's request.
        request: RequestId,
    },
    /// The proposer answered the client of a forwarded write: the sender stops waiting.
    ForwardDone {
        /// The sender's request number.
        op: u64,
        /// The client's request.
        request: RequestId,
    },
    /// Anti-entropy: the digest of the sender's chosen entries, per bucket.
    Digests {
        /// One digest per bucket.
        digests: Vec<u64>,
    },
    /// Anti-entropy: accepted entries of `buckets`; with `reply`, send yours back.
    Entries {
        /// The buckets compared.
        buckets: Vec<u16>,
        /// The sender's accepted entries in them, each with whether it is known chosen.
        records: Vec<(Key, Record, bool)>,
        /// Whether the receiver should answer with its own.
        reply: bool,
    },
}

/// The timers a majority node arms.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Timer {
    /// Request `op` gives up.
    Deadline(u64),
    /// Request `op` retries after a refusal (or, forwarded, turns to another proposer).
    Retry(u64),
    /// Time for the next digest exchange.
    AntiEntropy,
}

/// The request number a coordinator's phase message carries.
pub(super) fn op_of(msg: &Message) -> u64 {
    match msg {
        Message::Prepare { op, .. } | Message::Query { op, .. } => *op,
        Message::Accept { op, .. } => *op,
        other => unreachable!("not a phase message: {other:?}"),
    }
}
