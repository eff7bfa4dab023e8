//! What the quorum protocols ([`crate::majority`] and [`crate::sloppy`]) share: versioned
//! entries with a checksum, per-bucket digests for anti-entropy, the rotation that picks
//! the next (peer, bucket) to compare, and a coordinator's cap on requests in flight. [`crate::primary`] orders its writes by the same
//! [`Version`] (its entries carry no checksum).
//!
//! # Versions
//!
//! A [`Version`] is `(counter, node)`: a Lamport-style counter, ties broken by the node that
//! issued it, so that two writes never share a version (ABD's "tag"; Dynamo's clocks reduced
//! to last-writer-wins). The derived `Ord` compares `counter` first.
//!
//! # Checksums, and the demo's "trick value"
//!
//! Every [`Entry`] carries a checksum of its version and value, computed by whoever issued
//! the write. The operator's `trick-value` command overwrites a replica's value behind the
//! protocol's back and leaves version and checksum alone, as a disk that flips bits would.
//! An entry whose checksum no longer matches is *corrupt*: it still says which version the
//! replica held, but its value is never served, and any intact copy of the same version
//! replaces it (read repair and anti-entropy both do). Without the checksum a tricked value
//! and the real one would carry the same version and no comparison of versions could tell
//! which one to keep.

use crate::contract::{Context, Protocol, Request};
use crate::digest::StableHasher;
use crate::ids::NodeId;
use crate::kv::{Key, OpResult, Value};
use serde::Serialize;
use std::collections::BTreeMap;

/// How many buckets anti-entropy splits the key space into (`key % BUCKETS`): small key
/// ranges whose digests are compared instead of a Merkle tree.
pub const BUCKETS: u16 = 16;

/// At most this many requests in flight at one coordinator; more are refused.
pub const PENDING_MAX: usize = 10_000;

/// Refuses `request` when its coordinator already has `pending` requests in flight (at
/// most [`PENDING_MAX`]), and says whether it did. A read is answered unavailable (it changes
/// nothing); a write is left unanswered, with a note: it may be the retry of an earlier try
/// elsewhere that may still land, so "unavailable" (never applied) could be a lie.
pub fn refuse_when_full<P: Protocol>(
    ctx: &mut Context<'_, P>,
    pending: usize,
    request: &Request,
) -> bool {
    if pending < PENDING_MAX {
        return false;
    }
    if request.op.is_write() {
        ctx.note(|| format!("{}: too many requests pending; silent", request.id));
    } else {
        ctx.reply(request.id, OpResult::Unavailable { hint: None });
    }
    true
}

/// A write's identity and order: a counter, ties broken by the issuing node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Version {
    /// The issuer's counter when it wrote.
    pub counter: u64,
    /// The issuer.
    pub node: NodeId,
}

impl Default for Version {
    /// Below every version a node issues (their counters start at 1).
    fn default() -> Version {
        Version {
            counter: 0,
            node: NodeId(0),
        }
    }
}

/// One key's replicated state: a value or a tombstone (`None`), its version and checksum.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Entry {
    /// The write that produced this state.
    pub version: Version,
    /// The key's value; `None` is a tombstone, so that a late older write cannot resurrect it.
    pub value: Option<Value>,
    /// [`checksum`] of `version` and `value` when written; see the module doc.
    pub checksum: u64,
}

/// The checksum an intact entry carries.
pub fn checksum(version: Version, value: &Option<Value>) -> u64 {
    StableHasher::hash_of(&(version, value))
}

impl Entry {
    /// An intact entry.
    pub fn new(version: Version, value: Option<Value>) -> Entry {
        let checksum = checksum(version, &value);
        Entry {
            version,
            value,
            checksum,
        }
    }

    /// Whether the value is the one its version wrote (not tricked).
    pub fn intact(&self) -> bool {
        self.checksum == checksum(self.version, &self.value)
    }

    /// Whether `self`, arriving from elsewhere, should replace `current` (last writer wins):
    /// it must be intact, and newer, or the same version over a corrupt copy.
    pub fn supersedes(&self, current: Option<&Entry>) -> bool {
        if !self.intact() {
            return false;
        }
        match current {
            None => true,
            Some(c) => self.version > c.version || (self.version == c.version && !c.intact()),
        }
    }
}

/// The bucket `key` belongs to.
pub fn bucket_of(key: Key) -> u16 {
    (key % u64::from(BUCKETS)) as u16
}

/// The digest of every bucket of `entries` (zero for an empty bucket). XOR of per-entry
/// hashes, so that the order entries were written in does not matter.
pub fn bucket_digests<'a>(entries: impl Iterator<Item = (Key, &'a Entry)>) -> Vec<u64> {
    let mut digests = vec![0u64; usize::from(BUCKETS)];
    for (key, entry) in entries {
        digests[usize::from(bucket_of(key))] ^= StableHasher::hash_of(&(key, entry));
    }
    digests
}

/// The digest of a whole replica: equal digests mean equal entries, versions included.
pub fn store_digest<'a>(entries: impl Iterator<Item = (Key, &'a Entry)>) -> u64 {
    let mut hasher = StableHasher::new();
    for (key, entry) in entries {
        hasher.mix(StableHasher::hash_of(&(key, entry)));
    }
    std::hash::Hasher::finish(&hasher)
}

/// The live values of `entries`: tombstones are absences.
pub fn live_values(entries: &BTreeMap<Key, Entry>) -> BTreeMap<Key, Value> {
    entries
        .iter()
        .filter_map(|(k, e)| e.value.clone().map(|v| (*k, v)))
        .collect()
}

/// Walks every (peer, bucket) pair in a fixed order, so that anti-entropy rounds cover the
/// whole key space with every peer in `peers × BUCKETS` rounds (no randomness needed).
#[derive(Clone, Debug, Default)]
pub struct Rotation {
    round: u64,
}

impl Rotation {
    /// The next peer (of `peers`, non-empty) and bucket to compare. Peers turn fastest, so
    /// that consecutive rounds spread over the cluster.
    pub fn next(&mut self, peers: &[NodeId]) -> (NodeId, u16) {
        assert!(!peers.is_empty(), "anti-entropy needs a peer");
        let count = peers.len() as u64;
        let peer = peers[(self.round % count) as usize];
        let bucket = ((self.round / count) % u64::from(BUCKETS)) as u16;
        self.round += 1;
        (peer, bucket)
    }
}

/// Hinted handoff's deadline judged after every handler without walking every hint: per
/// node hinted, its hints' earliest storing, which breaks the deadline first (the later the
/// start, the shorter the wait), kept while the hints' map is at the same generation
/// ([`crate::tracked::Tracked::generation`]). Only a break found here walks the hints
/// ([`hint_past_deadline`]), to name the first broken one.
#[derive(Clone, Debug, Default)]
pub struct HintFloor {
    /// The hints' generation, and per node its earliest `stored_at`, in node order.
    cache: std::cell::RefCell<Option<(u64, Floor)>>,
}

/// Per node hinted, in node order, its hints' earliest `stored_at`.
type Floor = Vec<(NodeId, crate::time::Time)>;

impl HintFloor {
    /// [`hint_past_deadline`] over `hints()` (in (node, key) order, at `generation`), which
    /// walks the hints only when they changed since the last call or a hint breaks the
    /// deadline. Keep one per map: a map replaced by another starts its generations afresh.
    pub fn judge<'a, I: IntoIterator<Item = (&'a (NodeId, Key), crate::time::Time)>>(
        &self,
        generation: u64,
        hints: impl Fn() -> I,
        heard: &BTreeMap<NodeId, (crate::time::Time, crate::time::Time)>,
        deadline: crate::time::Span,
    ) -> Result<(), String> {
        if self.broken(generation, hints(), heard, deadline) {
            hint_past_deadline(hints(), heard, deadline)?;
        }
        Ok(())
    }

    /// Whether some hint breaks the deadline, by each node's earliest-stored hint.
    fn broken<'a>(
        &self,
        generation: u64,
        hints: impl IntoIterator<Item = (&'a (NodeId, Key), crate::time::Time)>,
        heard: &BTreeMap<NodeId, (crate::time::Time, crate::time::Time)>,
        deadline: crate::time::Span,
    ) -> bool {
        let mut cache = self.cache.borrow_mut();
        if cache.as_ref().is_none_or(|(g, _)| *g != generation) {
            let mut floor: Floor = Vec::new();
            for ((node, _), stored_at) in hints {
                match floor.last_mut() {
                    Some((n, earliest)) if n == node => *earliest = (*earliest).min(stored_at),
                    _ => floor.push((*node, stored_at)),
                }
            }
            *cache = Some((generation, floor));
        }
        let (_, floor) = cache.as_ref().expect("just filled");
        floor.iter().any(|(node, earliest)| {
            heard
                .get(node)
                .is_some_and(|&(since, last)| last.since(since.max(*earliest)) > deadline)
        })
    }
}

/// Hinted handoff's deadline (Dynamo section 4.6), as sloppy and dynamo judge it: the first
/// hint, in the order given, whose node's last answer came more than `deadline` after both
/// the start of its current unbroken run of answers and the hint's storing (the hint should
/// have been handed back by then). `hints` gives each hint's (node, key) and when it was
/// stored; `heard`, per node, the first and the last message of its current run.
pub fn hint_past_deadline<'a>(
    hints: impl IntoIterator<Item = (&'a (NodeId, Key), crate::time::Time)>,
    heard: &BTreeMap<NodeId, (crate::time::Time, crate::time::Time)>,
    deadline: crate::time::Span,
) -> Result<(), String> {
    for ((node, key), stored_at) in hints {
        if let Some(&(since, last)) = heard.get(node) {
            let start = since.max(stored_at);
            if last.since(start) > deadline {
                return Err(format!(
                    "hint for {node} k{key} still held {} after {node} answered again",
                    crate::time::format_micros(last.since(start).as_micros())
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(counter: u64, node: u16) -> Version {
        Version {
            counter,
            node: NodeId(node),
        }
    }

    #[test]
    fn versions_order_by_counter_then_node() {
        assert!(v(2, 0) > v(1, 4));
        assert!(v(1, 1) > v(1, 0));
    }

    #[test]
    fn a_tricked_entry_is_corrupt_and_any_intact_copy_of_its_version_replaces_it() {
        let good = Entry::new(v(3, 1), Some("a".into()));
        let mut tricked = good.clone();
        tricked.value = Some("tricked".into());
        assert!(good.intact());
        assert!(!tricked.intact());
        assert!(good.supersedes(Some(&tricked)));
        assert!(!tricked.supersedes(Some(&good)));
        assert!(!tricked.supersedes(None), "a corrupt value never spreads");
        assert!(!good.supersedes(Some(&good.clone())));
        let newer = Entry::new(v(4, 0), None);
        assert!(newer.supersedes(Some(&good)));
        assert!(!good.supersedes(Some(&newer)));
    }

    #[test]
    fn bucket_digests_tell_which_bucket_differs() {
        let a = Entry::new(v(1, 0), Some("a".into()));
        let b = Entry::new(v(2, 0), Some("b".into()));
        let one = bucket_digests([(1, &a), (2, &b)].into_iter());
        let two = bucket_digests([(1, &a), (2, &a)].into_iter());
        let differing: Vec<usize> = (0..one.len()).filter(|i| one[*i] != two[*i]).collect();
        assert_eq!(differing, [2]);
    }

    #[test]
    fn the_rotation_visits_every_peer_and_bucket() {
        let peers = [NodeId(1), NodeId(3)];
        let mut r = Rotation::default();
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..(2 * BUCKETS) {
            seen.insert(r.next(&peers));
        }
        assert_eq!(seen.len(), 2 * usize::from(BUCKETS));
    }
}
