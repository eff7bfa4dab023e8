//! The replicated key-value store on top of the log, with client sessions (thesis 6.3).
//!
//! Commands are applied with [`kv::apply`], the one sequential specification. Each client
//! is a session: the store remembers, per client, the sequence number of the last request
//! it applied and that request's result. A client has one request in flight and retries it
//! with the same id, so a command whose sequence number is not past the session's is a
//! duplicate: it is not applied again, and a retry of the latest one is answered with the
//! remembered result.

use super::log::{Command, LogEntry};
use super::snapshot::{Session, Snapshot};
use crate::ids::{ClientId, NodeId, RequestId};
use crate::kv::{self, Key, Op, OpResult, Value};
use std::collections::BTreeMap;

/// The store, its sessions and how far it has applied the log.
#[derive(Clone, Debug, Default)]
pub struct StateMachine {
    /// The store.
    pub store: BTreeMap<Key, Value>,
    /// The client sessions.
    pub sessions: BTreeMap<ClientId, Session>,
    /// The last index applied.
    pub applied_index: u64,
    /// The term of that entry.
    pub applied_term: u64,
    /// The chain hash through it: what state machine safety compares.
    pub applied_chain: u64,
}

/// What applying one entry did, for the leader's reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// Not a client command.
    Internal,
    /// A client command's result (fresh, or remembered for a duplicate of the latest).
    Result(RequestId, OpResult),
    /// A duplicate of a request older than the session's latest: nothing to say.
    Stale(RequestId),
}

impl StateMachine {
    /// The state a snapshot captured.
    pub fn from_snapshot(snapshot: &Snapshot) -> StateMachine {
        StateMachine {
            store: snapshot.store.clone(),
            sessions: snapshot.sessions.clone(),
            applied_index: snapshot.last_index,
            applied_term: snapshot.last_term,
            applied_chain: snapshot.chain,
        }
    }

    /// A snapshot of the current state, with the membership `voters` in force.
    pub fn snapshot(&self, voters: &[NodeId]) -> Snapshot {
        Snapshot {
            last_index: self.applied_index,
            last_term: self.applied_term,
            chain: self.applied_chain,
            voters: voters.to_vec(),
            store: self.store.clone(),
            sessions: self.sessions.clone(),
        }
    }

    /// Applies the entry at `applied_index + 1`. With `dedupe` off (the planted bug
    /// `apply-retries-twice`) every client command is applied, duplicates included.
    pub fn apply(&mut self, entry: &LogEntry, dedupe: bool) -> Applied {
        self.applied_index += 1;
        self.applied_term = entry.term;
        self.applied_chain = entry.chain;
        let Command::Client { id, op } = &entry.command else {
            return Applied::Internal;
        };
        if dedupe {
            if let Some(session) = self.sessions.get(&id.client) {
                if session.seq == id.seq {
                    return Applied::Result(*id, session.result.clone());
                }
                if session.seq > id.seq {
                    return Applied::Stale(*id);
                }
            }
        }
        let result = kv::apply(&mut self.store, op);
        let session = Session {
            seq: id.seq,
            result: result.clone(),
        };
        self.sessions.insert(id.client, session);
        Applied::Result(*id, result)
    }

    /// Serves a read (or a read-only txn) from the current state, without changing it.
    pub fn read(&self, op: &Op) -> OpResult {
        let mut view: BTreeMap<Key, Value> = op
            .keys()
            .into_iter()
            .filter_map(|k| self.store.get(&k).map(|v| (k, v.clone())))
            .collect();
        kv::apply(&mut view, op)
    }

    /// The remembered result of `id`, if it is the session's latest applied request.
    pub fn remembered(&self, id: RequestId) -> Option<&OpResult> {
        let session = self.sessions.get(&id.client)?;
        (session.seq == id.seq).then_some(&session.result)
    }

    /// Whether a request older than `id`'s session's latest (so never to be answered).
    pub fn is_stale(&self, id: RequestId) -> bool {
        self.sessions
            .get(&id.client)
            .is_some_and(|s| s.seq > id.seq)
    }
}
