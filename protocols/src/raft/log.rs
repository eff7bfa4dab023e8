//! The replicated log (paper section 5.3) and its compaction into a snapshot (section 7).
//!
//! The log is what a node persists on almost every step, and a persist hands the engine a
//! whole copy of the durable state. So the log is built to be cheap to copy: entries are
//! reference-counted and kept in chunks of [`CHUNK`], each chunk shared between the live log
//! and every durable copy taken of it. Copying the log costs one pointer per chunk; appending
//! copies at most the last chunk's pointers (when a durable copy still shares it). Nothing is
//! ever mutated in place while shared: a durable copy never changes after it is taken.
//!
//! Every entry carries a *chain* hash: the hash of its term and command mixed with the
//! previous entry's chain, computed by the node that appends it. Two logs with equal chains
//! at an index hold the same entries up to that index, so the cluster-wide checks (log
//! matching, state machine safety, leader completeness) compare one number per node.

use super::snapshot::Snapshot;
use crate::digest::StableHasher;
use crate::ids::{NodeId, RequestId};
use crate::kv::Op;
use serde::{Serialize, Serializer};
use std::rc::Rc;

/// Entries per chunk: a persist copies `len / CHUNK` chunk pointers.
pub const CHUNK: usize = 64;

/// What an entry asks the state machine to do.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Command {
    /// The entry a new leader appends at the start of its term, so that it can commit an
    /// entry of its own term (section 5.4.2) and serve reads (thesis 6.4).
    Noop,
    /// A client's operation, with its session id for exactly-once application (thesis 6.3).
    Client {
        /// The request: its client is the session, its seq the sequence number.
        id: RequestId,
        /// The operation.
        op: Op,
    },
    /// A new membership: the voters, sorted (thesis section 4, single-server change). It
    /// takes effect as soon as it is in a log, committed or not.
    Config {
        /// Every voting member.
        voters: Vec<NodeId>,
    },
}

/// One log entry as it is stored and sent.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct LogEntry {
    /// The leader's term when it was appended.
    pub term: u64,
    /// What it does.
    pub command: Command,
    /// The chain hash through this entry (module doc).
    pub chain: u64,
}

impl LogEntry {
    /// The entry `(term, command)` following an entry whose chain is `prev_chain`.
    pub fn new(term: u64, command: Command, prev_chain: u64) -> LogEntry {
        let chain = StableHasher::hash_of(&(prev_chain, term, &command));
        LogEntry {
            term,
            command,
            chain,
        }
    }
}

/// A batch of entries on the wire: shared with the sender's log, serialized as a list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Entries(pub Vec<Rc<LogEntry>>);

impl Serialize for Entries {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|e| &**e))
    }
}

/// The log: a snapshot covering indexes `1..=base`, then entries `base + 1..=last`.
#[derive(Clone, Debug)]
pub struct Log {
    snapshot: Rc<Snapshot>,
    /// The index of `chunks[0][0]`. Entries at or below the snapshot's index may linger at
    /// the front of the first chunk; they are never read.
    start: u64,
    /// Every chunk but the last holds exactly [`CHUNK`] entries.
    chunks: Vec<Rc<Vec<Rc<LogEntry>>>>,
    last: u64,
    /// The membership entries past the snapshot, by index, ascending.
    configs: Vec<(u64, Rc<Vec<NodeId>>)>,
    /// The first index whose entry the node's disk may not hold as it is here (appended or
    /// truncated since the last record; see [`Log::take_unwritten`]).
    unwritten_from: u64,
    /// Whether the log was compacted since the last record: the next is a snapshot.
    compacted: bool,
}

/// Logs are equal when they hold the same snapshot and the same entries (their chains
/// agree), however their chunks are laid out.
impl PartialEq for Log {
    fn eq(&self, other: &Log) -> bool {
        self.snapshot == other.snapshot
            && self.last == other.last
            && (self.base() + 1..=self.last).all(|i| self.chain_at(i) == other.chain_at(i))
    }
}

impl Log {
    /// A log holding only `snapshot`.
    pub fn new(snapshot: Rc<Snapshot>) -> Log {
        Log {
            last: snapshot.last_index,
            start: snapshot.last_index + 1,
            unwritten_from: snapshot.last_index + 1,
            compacted: true,
            snapshot,
            chunks: Vec::new(),
            configs: Vec::new(),
        }
    }

    /// Whether the log was compacted (or made anew) since the last record: the next record
    /// must carry the whole log.
    pub fn compacted(&self) -> bool {
        self.compacted
    }

    /// How many entries the disk does not hold yet.
    pub fn unwritten_len(&self) -> u64 {
        (self.last + 1).saturating_sub(self.unwritten_from)
    }

    /// The entries the disk does not hold yet: the first index from which they replace what
    /// it holds, and the entries from there to the end. The log counts as written after.
    pub fn take_unwritten(&mut self) -> (u64, Vec<Rc<LogEntry>>) {
        let from = self.unwritten_from;
        let entries = (from..=self.last)
            .filter_map(|i| self.entry(i).cloned())
            .collect();
        self.mark_written();
        (from, entries)
    }

    /// The whole log was written (a snapshot record).
    pub fn mark_written(&mut self) {
        self.unwritten_from = self.last + 1;
        self.compacted = false;
    }

    /// Replays a record's entries, as a recovery folds the log: every entry from `from` on
    /// is replaced by `entries`.
    pub fn replay(&mut self, from: u64, entries: &[Rc<LogEntry>]) {
        if from <= self.last {
            self.truncate_from(from);
        }
        debug_assert_eq!(from, self.last + 1, "a record's entries follow the log");
        for e in entries {
            self.push(Rc::clone(e));
        }
    }

    /// The snapshot the log starts from.
    pub fn snapshot(&self) -> &Rc<Snapshot> {
        &self.snapshot
    }

    /// The last index the snapshot covers.
    pub fn base(&self) -> u64 {
        self.snapshot.last_index
    }

    /// The last index in the log (the snapshot's when the log is empty).
    pub fn last_index(&self) -> u64 {
        self.last
    }

    /// The term of the last entry.
    pub fn last_term(&self) -> u64 {
        self.term_at(self.last).expect("the last entry is held")
    }

    /// How many entries the log holds past its snapshot.
    pub fn len(&self) -> u64 {
        self.last - self.base()
    }

    /// Whether the log holds no entries past its snapshot.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entry at `index`, if it is past the snapshot and in the log.
    pub fn entry(&self, index: u64) -> Option<&Rc<LogEntry>> {
        if index <= self.base() || index > self.last {
            return None;
        }
        let offset = (index - self.start) as usize;
        Some(&self.chunks[offset / CHUNK][offset % CHUNK])
    }

    /// The term at `index`: known for the snapshot's last index and every held entry.
    pub fn term_at(&self, index: u64) -> Option<u64> {
        if index == self.base() {
            return Some(self.snapshot.last_term);
        }
        self.entry(index).map(|e| e.term)
    }

    /// The chain hash through `index`, where known (see [`Log::term_at`]).
    pub fn chain_at(&self, index: u64) -> Option<u64> {
        if index == self.base() {
            return Some(self.snapshot.chain);
        }
        self.entry(index).map(|e| e.chain)
    }

    /// Appends `(term, command)` and returns its index.
    pub fn append(&mut self, term: u64, command: Command) -> u64 {
        let prev = self.chain_at(self.last).expect("the last entry is held");
        self.push(Rc::new(LogEntry::new(term, command, prev)))
    }

    /// Appends an entry received from a leader, reusing the leader's copy when its chain
    /// agrees with ours (it always does when the logs match, which the leader checked).
    pub fn append_received(&mut self, entry: &Rc<LogEntry>) -> u64 {
        let prev = self.chain_at(self.last).expect("the last entry is held");
        let ours = LogEntry::new(entry.term, entry.command.clone(), prev);
        if ours.chain == entry.chain {
            self.push(Rc::clone(entry))
        } else {
            self.push(Rc::new(ours))
        }
    }

    fn push(&mut self, entry: Rc<LogEntry>) -> u64 {
        assert!(entry.term >= self.last_term(), "log terms never decrease");
        let index = self.last + 1;
        if let Command::Config { voters } = &entry.command {
            self.configs.push((index, Rc::new(voters.clone())));
        }
        match self.chunks.last_mut() {
            Some(chunk) if chunk.len() < CHUNK => Rc::make_mut(chunk).push(entry),
            _ => {
                if self.chunks.is_empty() {
                    self.start = index;
                }
                let mut chunk = Vec::with_capacity(CHUNK);
                chunk.push(entry);
                self.chunks.push(Rc::new(chunk));
            }
        }
        self.last = index;
        index
    }

    /// Removes every entry from `index` on (a conflict with the leader, section 5.3).
    pub fn truncate_from(&mut self, index: u64) {
        assert!(
            index > self.base(),
            "the snapshot is committed: never truncated"
        );
        if index > self.last {
            return;
        }
        let offset = (index - self.start) as usize;
        self.chunks.truncate(offset / CHUNK + 1);
        let keep = offset % CHUNK;
        if keep == 0 {
            self.chunks.pop();
        } else if let Some(chunk) = self.chunks.last_mut() {
            Rc::make_mut(chunk).truncate(keep);
        }
        self.configs.retain(|(i, _)| *i < index);
        self.last = index - 1;
        self.unwritten_from = self.unwritten_from.min(index);
    }

    /// Replaces the prefix through `snapshot.last_index` by `snapshot` (section 7). If the
    /// log holds the snapshot's last entry, with its term, the entries after it stay;
    /// otherwise the whole log goes.
    pub fn compact(&mut self, snapshot: Rc<Snapshot>) {
        let base = snapshot.last_index;
        assert!(base >= self.base(), "a snapshot never moves back");
        let keeps_suffix = self.chain_at(base) == Some(snapshot.chain);
        if !keeps_suffix || base >= self.last {
            *self = Log::new(snapshot);
            return;
        }
        self.compacted = true;
        // Whole chunks at or below the new base are dropped; a partial one stays.
        let drop = ((base + 1 - self.start) as usize) / CHUNK;
        self.chunks.drain(..drop);
        self.start += (drop * CHUNK) as u64;
        self.configs.retain(|(i, _)| *i > base);
        self.snapshot = snapshot;
    }

    /// The latest membership in the log (or the snapshot's), and the index of its entry
    /// (the snapshot's index when it comes from the snapshot).
    pub fn latest_config(&self) -> (u64, &[NodeId]) {
        match self.configs.last() {
            Some((i, voters)) => (*i, voters.as_slice()),
            None => (self.base(), self.snapshot.voters.as_slice()),
        }
    }

    /// The membership in force at `index` (which must be at or past the snapshot).
    pub fn config_at(&self, index: u64) -> &[NodeId] {
        let mut voters = self.snapshot.voters.as_slice();
        for (i, v) in &self.configs {
            if *i > index {
                break;
            }
            voters = v.as_slice();
        }
        voters
    }

    /// Up to `max` entries from `from` on (`from` past the snapshot), shared.
    pub fn slice(&self, from: u64, max: u64) -> Entries {
        let to = self.last.min(from.saturating_add(max).saturating_sub(1));
        Entries((from..=to).filter_map(|i| self.entry(i).cloned()).collect())
    }

    /// The first index of the run of entries with `term` that ends at `index` (fast
    /// backtracking's conflict index); never below the snapshot.
    pub fn first_index_of_term(&self, index: u64, term: u64) -> u64 {
        let mut first = index;
        // Ends: each step moves one index down, and stops at the snapshot.
        while first > self.base() + 1 && self.term_at(first - 1) == Some(term) {
            first -= 1;
        }
        first
    }

    /// The last index holding an entry of `term`, if the log holds one.
    pub fn last_index_of_term(&self, term: u64) -> Option<u64> {
        let mut i = self.last;
        // Ends: terms never decrease along the log, so the scan stops once below `term`.
        while i > self.base() {
            let t = self.term_at(i)?;
            if t == term {
                return Some(i);
            }
            if t < term {
                return None;
            }
            i -= 1;
        }
        None
    }
}
