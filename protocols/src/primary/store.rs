//! The replica: versioned entries (tombstones included), their incremental digest, and the
//! merge by version that makes replicas converge (module doc, "Versions and convergence").

use super::{Message, Primary};
use crate::contract::Context;
use crate::digest::StableHasher;
use crate::ids::NodeId;
use crate::kv::{Key, Value};
use crate::quorum::Version;
use serde::Serialize;

/// One key's replicated state: its value, or a tombstone (`None`), and the version that wrote it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Entry {
    /// The write that produced this state.
    pub version: Version,
    /// The key's value; `None` is a tombstone: the key was deleted by `version`.
    pub value: Option<Value>,
}

/// One entry's share of the digest. XOR keeps the digest O(1) per change and independent of
/// the order changes happened in; keys are unique, so no two shares cancel by construction.
pub(super) fn entry_hash(key: Key, entry: &Entry) -> u64 {
    StableHasher::hash_of(&(key, entry.version, &entry.value))
}

impl Primary {
    /// Replaces (or adds) `key`'s entry, keeping the digest in step.
    pub(super) fn install(&mut self, key: Key, entry: Entry) {
        let v = entry.version;
        self.installed_counter_max = self.installed_counter_max.max(v.counter);
        if v.node == self.me {
            self.installed_own_counter_max = self.installed_own_counter_max.max(v.counter);
        }
        self.digest ^= entry_hash(key, &entry);
        if let Some(old) = self.entries.insert(key, entry) {
            self.digest ^= entry_hash(key, &old);
        }
    }

    /// Merges a state received from `from`: taken only if its version is greater (unless
    /// `blind-apply`). Returns whether it was taken.
    /// Sends `entry` of `key` to every peer but `except`, numbered in each peer's sequence.
    pub(super) fn forward(
        &mut self,
        ctx: &mut Context<'_, Self>,
        key: Key,
        entry: &Entry,
        except: Option<NodeId>,
    ) {
        let incarnation = self.incarnation;
        for (id, peer) in self.peers.iter_mut() {
            if Some(*id) == except {
                continue;
            }
            peer.forwards_sent += 1;
            let forward = Message::Forward {
                key,
                entry: entry.clone(),
                incarnation,
                seq: peer.forwards_sent,
            };
            ctx.send(*id, forward);
        }
    }

    pub(super) fn maybe_merge(
        &mut self,
        ctx: &mut Context<'_, Self>,
        from: NodeId,
        key: Key,
        entry: Entry,
    ) -> bool {
        // Lamport: our next write must order after every write we have seen.
        self.counter.observe(entry.version.counter);
        if let Some(current) = self.entries.get(&key) {
            if !self.bugs.blind_apply && entry.version <= current.version {
                if entry.version == current.version && entry.value != current.value {
                    // Only a reused version gets here: two writes, one name.
                    let (held, got) = (current.value.clone(), entry.value.clone());
                    ctx.note(|| {
                        format!(
                            "k{key}: {from} sent {got:?} with version {:?} we hold as {held:?}",
                            entry.version
                        )
                    });
                }
                return false;
            }
        }
        self.install(key, entry);
        true
    }
}
