//! What a replica holds of a key (module doc, "Conflicts"): versions with their vector clocks,
//! and the one merge rule for both modes, last writer wins or siblings (Dynamo section 4.4).
//! Hashes and serializations of clockless versions are those of the bare entries, so last
//! writer wins runs keep their fingerprints and traces.

use crate::ids::NodeId;
use crate::kv::Value;
use crate::quorum::{Entry, Version};
use serde::{Serialize, Serializer};
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::rc::Rc;

/// A vector clock (Dynamo section 4.4): per node, the counter of that node's newest write
/// a version descends from. A `BTreeMap`, so that clocks iterate and hash deterministically.
pub type Clock = BTreeMap<NodeId, u64>;

/// Whether clock `a` has seen everything `b` has (entry by entry `a ≥ b`): a version with
/// clock `a` descends from (or is) the version with clock `b`.
pub fn descends(a: &Clock, b: &Clock) -> bool {
    b.iter()
        .all(|(node, c)| a.get(node).copied().unwrap_or(0) >= *c)
}

/// One version of a key: an [`Entry`] (value, [`Version`], checksum) and its vector clock,
/// empty with last writer wins. A version names one write, and so one clock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Versioned {
    /// The value, the version last writer wins orders by, and the checksum.
    #[serde(flatten)]
    pub entry: Entry,
    /// The vector clock; empty with last writer wins.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub clock: Clock,
}

impl Hash for Versioned {
    /// An empty clock (last writer wins) hashes as the bare entry, and serializes as one, so
    /// that last-writer-wins runs keep the fingerprints and traces they had before clocks.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.entry.hash(state);
        if !self.clock.is_empty() {
            self.clock.hash(state);
        }
    }
}

impl Versioned {
    /// A version without a clock (last writer wins).
    pub(super) fn lww(entry: Entry) -> Versioned {
        Versioned {
            entry,
            clock: Clock::new(),
        }
    }
}

/// Every version a replica holds of one key, ascending by [`Version`] (so the last one is
/// what last writer wins would pick): at most one with last writer wins; with siblings,
/// every version that no other held one descends from (Dynamo section 4.4).
///
/// Shared, copied on write: a snapshot of the durable state clones every key's versions, and
/// their values (an append's is the whole list) were most of what a sloppy run copied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Versions(pub(super) Rc<Vec<Versioned>>);

impl Versions {
    pub(super) fn one(v: Versioned) -> Versions {
        Versions(Rc::new(vec![v]))
    }

    /// The versions, ascending by [`Version`].
    pub fn iter(&self) -> std::slice::Iter<'_, Versioned> {
        self.0.iter()
    }

    /// The version last writer wins picks: the greatest [`Version`].
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

    /// Takes `new` by the mode's rule (see [`Versions::take_newer`] and
    /// [`Versions::take_concurrent`]); whether anything changed.
    pub(super) fn take(&mut self, new: Versioned, siblings: bool) -> bool {
        if siblings {
            self.take_concurrent(new)
        } else {
            self.take_newer(new)
        }
    }

    /// Last writer wins: `new` replaces the held version if it supersedes it.
    pub(super) fn take_newer(&mut self, new: Versioned) -> bool {
        let current = self.newest().map(|v| &v.entry);
        if !new.entry.supersedes(current) || current == Some(&new.entry) {
            return false;
        }
        self.0 = Rc::new(vec![new]);
        true
    }

    /// Dynamo section 4.4: `new` is dropped if a held version descends from it (or is it);
    /// otherwise it drops the held versions it descends from and joins the rest as a
    /// sibling. A corrupt copy never spreads; an intact one replaces a corrupt copy of its
    /// version (the same write, so the same clock).
    pub(super) fn take_concurrent(&mut self, new: Versioned) -> bool {
        if !new.entry.intact() {
            return false;
        }
        let version = new.entry.version;
        if let Some(at) = self.0.iter().position(|h| h.entry.version == version) {
            if self.0[at].entry.intact() {
                return false;
            }
            Rc::make_mut(&mut self.0)[at] = new;
            return true;
        }
        if self.0.iter().any(|h| descends(&h.clock, &new.clock)) {
            return false;
        }
        let held = Rc::make_mut(&mut self.0);
        held.retain(|h| !descends(&new.clock, &h.clock));
        let at = held.partition_point(|h| h.entry.version < version);
        held.insert(at, new);
        true
    }

    /// The planted bug's rule: `new` replaces everything, whatever its version.
    pub(super) fn replace(&mut self, new: Versioned) -> bool {
        if self.0.len() == 1 && self.0[0] == new {
            return false;
        }
        self.0 = Rc::new(vec![new]);
        true
    }

    /// Whether a replica holding these would change on taking `v` (intact, from a merged
    /// read): read repair sends it then. With siblings the replica cannot hold a version
    /// descending from `v` (the merge would have dropped `v`), so it lacks `v` unless it
    /// holds an intact copy.
    pub(super) fn lacks(&self, v: &Versioned, siblings: bool) -> bool {
        if siblings {
            !self.0.iter().any(|h| h.entry == v.entry)
        } else {
            v.entry.supersedes(self.newest().map(|h| &h.entry))
        }
    }

    /// Whether these (intact, merged from a read) make the corrupt copy `c` read alongside
    /// them harmless: they hold its version or one that supersedes it (newer, or with
    /// siblings descending from it). Otherwise the read must wait for an intact copy.
    pub(super) fn covers(&self, c: &Versioned, siblings: bool) -> bool {
        if siblings {
            self.0.iter().any(|v| descends(&v.clock, &c.clock))
        } else {
            self.newest_version().is_some_and(|v| v >= c.entry.version)
        }
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
        let mut values: Vec<Option<Value>> = self.0.iter().map(|v| v.entry.value.clone()).collect();
        values.sort();
        values.dedup();
        (values.len() >= 2).then_some(values)
    }

    /// Removes the version `version`; whether it was held.
    pub(super) fn remove(&mut self, version: Version) -> bool {
        if !self.0.iter().any(|v| v.entry.version == version) {
            return false;
        }
        Rc::make_mut(&mut self.0).retain(|v| v.entry.version != version);
        true
    }

    /// The pointwise maximum of the clocks.
    pub(super) fn clock_join(&self) -> Clock {
        let mut join = Clock::new();
        for v in self.0.iter() {
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

impl Hash for Versions {
    /// None or one version hashes as an `Option` of it, as last writer wins' `Option<Entry>`
    /// did (fingerprints unchanged); more (only siblings have more) as a sequence.
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self.0.as_slice() {
            [] | [_] => self.0.first().hash(state),
            all => all.hash(state),
        }
    }
}

impl Serialize for Versions {
    /// As [`Versions`]' hash: an `Option` for none or one (traces unchanged), else a list.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [] | [_] => self.0.first().serialize(serializer),
            all => all.serialize(serializer),
        }
    }
}
