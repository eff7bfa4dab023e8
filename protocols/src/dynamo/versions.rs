//! What a replica holds of a key: versions with their vector clocks (Dynamo section 4.4),
//! every version no other held one descends from, so concurrent writes become siblings.
//! One merge rule ([`Versions::take`]) serves writes, read repair, hinted handoff, joins'
//! transfers and anti-entropy.

use crate::ids::NodeId;
use crate::kv::Value;
use crate::quorum::{Entry, Version};
use serde::Serialize;
use std::collections::BTreeMap;

/// A vector clock (Dynamo section 4.4): per node, the counter of that node's newest write
/// a version descends from. A `BTreeMap`, so that clocks iterate and hash deterministically.
pub type Clock = BTreeMap<NodeId, u64>;

/// How clocks are compared: correctly, or with the planted bug `concurrent-as-descends`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Compare {
    /// The planted bug: `a` "descends" from `b` as soon as one of its entries is ahead,
    /// so two concurrent clocks each descend from the other.
    pub concurrent_as_descends: bool,
}

impl Compare {
    /// Whether clock `a` has seen everything `b` has (entry by entry `a ≥ b`): a version
    /// with clock `a` descends from (or is) the version with clock `b` (section 4.4).
    pub fn descends(self, a: &Clock, b: &Clock) -> bool {
        if self.concurrent_as_descends && a.iter().any(|(n, c)| b.get(n).is_none_or(|x| c > x)) {
            return true;
        }
        b.iter()
            .all(|(node, c)| a.get(node).copied().unwrap_or(0) >= *c)
    }
}

/// Whether clock `a` descends from `b`, correctly.
pub fn descends(a: &Clock, b: &Clock) -> bool {
    Compare::default().descends(a, b)
}

/// Truncates `clock` to at most `max` entries (Dynamo section 4.4: "when the number of
/// (node, counter) pairs in the vector clock reaches a threshold (say 10), the oldest pair
/// is removed"). The paper orders pairs by a wall-clock timestamp; our counters are Lamport
/// clocks (a node's counter exceeds every counter it has seen), so the smallest counter is
/// the oldest pair, and no clock is needed. `keep` (the writer) is never removed. With the
/// planted bug `truncate-newest` the newest pairs go instead, the writer's own included.
pub fn truncate(clock: &mut Clock, max: usize, keep: NodeId, newest_first: bool) {
    let max = max.max(1);
    while clock.len() > max {
        let mut pairs: Vec<(u64, NodeId)> = clock.iter().map(|(n, c)| (*c, *n)).collect();
        pairs.sort_unstable();
        if newest_first {
            pairs.reverse();
        } else {
            pairs.retain(|(_, n)| *n != keep);
        }
        let Some((_, victim)) = pairs.first() else {
            return;
        };
        clock.remove(victim);
    }
}

/// One version of a key: an [`Entry`] (value, [`Version`], checksum) and its vector clock.
/// A version names one write, and so one clock.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Versioned {
    /// The value, the version (a tie-break order only), and the checksum.
    #[serde(flatten)]
    pub entry: Entry,
    /// The vector clock.
    pub clock: Clock,
}

/// Every version a replica holds of one key, ascending by [`Version`]: every version that no
/// other held one descends from (Dynamo section 4.4).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Versions(pub(super) Vec<Versioned>);

impl Versions {
    pub(super) fn one(v: Versioned) -> Versions {
        Versions(vec![v])
    }

    /// The versions, ascending by [`Version`].
    pub fn iter(&self) -> std::slice::Iter<'_, Versioned> {
        self.0.iter()
    }

    /// The greatest [`Version`]: the sibling read-modify-writes apply to.
    pub fn newest(&self) -> Option<&Versioned> {
        self.0.last()
    }

    /// How many versions.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(super) fn newest_version(&self) -> Option<Version> {
        self.newest().map(|v| v.entry.version)
    }

    /// Dynamo section 4.4: `new` is dropped if a held version descends from it (or is it);
    /// otherwise it drops the held versions it descends from and joins the rest as a
    /// sibling. A corrupt copy never spreads; an intact one replaces a corrupt copy of its
    /// version (the same write, so the same clock). Whether anything changed.
    pub(super) fn take(&mut self, new: Versioned, cmp: Compare) -> bool {
        if !new.entry.intact() {
            return false;
        }
        let version = new.entry.version;
        if let Some(held) = self.0.iter_mut().find(|h| h.entry.version == version) {
            if held.entry.intact() {
                return false;
            }
            *held = new;
            return true;
        }
        if self.0.iter().any(|h| cmp.descends(&h.clock, &new.clock)) {
            return false;
        }
        self.0.retain(|h| !cmp.descends(&new.clock, &h.clock));
        let at = self.0.partition_point(|h| h.entry.version < version);
        self.0.insert(at, new);
        true
    }

    /// Whether a replica holding these lacks `v` (intact, from a merged read): read repair
    /// sends it then.
    pub(super) fn lacks(&self, v: &Versioned) -> bool {
        !self.0.iter().any(|h| h.entry == v.entry)
    }

    /// Whether these (intact, merged from a read) make the corrupt copy `c` read alongside
    /// them harmless: they hold a version descending from it.
    pub(super) fn covers(&self, c: &Versioned) -> bool {
        self.0.iter().any(|v| descends(&v.clock, &c.clock))
    }

    /// The values of two or more concurrent versions, for [`OpResult::Siblings`] and
    /// [`Protocol::siblings`]: sorted (a tombstone, `None`, first), each once. `None` when
    /// fewer than two different values remain.
    ///
    /// [`OpResult::Siblings`]: crate::kv::OpResult::Siblings
    /// [`Protocol::siblings`]: crate::contract::Protocol::siblings
    pub(super) fn sibling_values(&self) -> Option<Vec<Option<Value>>> {
        if self.0.len() < 2 {
            return None;
        }
        let mut values: Vec<Option<Value>> =
            self.0.iter().map(|v| v.entry.value.clone()).collect();
        values.sort();
        values.dedup();
        (values.len() >= 2).then_some(values)
    }

    /// Removes the version `version`; whether it was held.
    pub(super) fn remove(&mut self, version: Version) -> bool {
        let before = self.0.len();
        self.0.retain(|v| v.entry.version != version);
        self.0.len() != before
    }

    /// The pointwise maximum of the clocks: the one merged context a get returns (section
    /// 4.4: "the context ... summarizes all the versions").
    pub fn clock_join(&self) -> Clock {
        let mut join = Clock::new();
        for v in &self.0 {
            for (node, c) in &v.clock {
                let e = join.entry(*node).or_insert(0);
                *e = (*e).max(*c);
            }
        }
        join
    }

    /// Two held versions one of which descends from the other, if any: never, after a merge.
    pub(super) fn dominated_pair(&self) -> Option<(Version, Version)> {
        let all = &self.0;
        all.iter().enumerate().find_map(|(i, a)| {
            all[i + 1..]
                .iter()
                .find(|b| descends(&a.clock, &b.clock) || descends(&b.clock, &a.clock))
                .map(|b| (a.entry.version, b.entry.version))
        })
    }
}
