//! A map that remembers which keys changed since it was last written to the log, so that a
//! protocol persists O(what changed) (see the contract's "Storage"): reads go through
//! [`Deref`] to the plain map, and every mutating method marks the keys it may change.
//! [`Tracked::take_changes`] hands the changed keys' current values (`None`: removed) for a
//! record; [`replay`] applies such changes to the map a recovery rebuilds.
//!
//! There is deliberately no `DerefMut`: a mutation that is not marked would be lost by a
//! crash, so the compiler points at every one.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Deref;

/// The changes of a [`Tracked`] map since its last record: each changed key with its value
/// now (`None`: removed), in key order.
pub type Changes<K, V> = Vec<(K, Option<V>)>;

/// A [`BTreeMap`] with the set of keys changed since [`Tracked::take_changes`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tracked<K: Ord, V> {
    map: BTreeMap<K, V>,
    dirty: BTreeSet<K>,
}

impl<K: Ord, V> Default for Tracked<K, V> {
    fn default() -> Self {
        Tracked {
            map: BTreeMap::new(),
            dirty: BTreeSet::new(),
        }
    }
}

impl<K: Ord, V> Deref for Tracked<K, V> {
    type Target = BTreeMap<K, V>;

    #[inline]
    fn deref(&self) -> &BTreeMap<K, V> {
        &self.map
    }
}

impl<'a, K: Ord, V> IntoIterator for &'a Tracked<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = std::collections::btree_map::Iter<'a, K, V>;

    fn into_iter(self) -> Self::IntoIter {
        self.map.iter()
    }
}

impl<K: Ord + Clone, V> FromIterator<(K, V)> for Tracked<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Tracked::new(iter.into_iter().collect())
    }
}

/// Hashes as the plain map does, so that digests do not change.
impl<K: Ord + std::hash::Hash, V: std::hash::Hash> std::hash::Hash for Tracked<K, V> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.map.hash(state);
    }
}

impl<K: Ord + Clone, V> Tracked<K, V> {
    /// `map`, as already written (nothing changed).
    pub fn new(map: BTreeMap<K, V>) -> Self {
        Tracked {
            map,
            dirty: BTreeSet::new(),
        }
    }

    /// As [`BTreeMap::insert`].
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.dirty.insert(key.clone());
        self.map.insert(key, value)
    }

    /// As [`BTreeMap::remove`].
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let removed = self.map.remove(key);
        if removed.is_some() {
            self.dirty.insert(key.clone());
        }
        removed
    }

    /// As [`BTreeMap::get_mut`].
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let value = self.map.get_mut(key)?;
        if !self.dirty.contains(key) {
            self.dirty.insert(key.clone());
        }
        Some(value)
    }

    /// As [`BTreeMap::entry`].
    pub fn entry(&mut self, key: K) -> Entry<'_, K, V> {
        self.dirty.insert(key.clone());
        self.map.entry(key)
    }

    /// As [`BTreeMap::retain`] (every key the closure sees may change).
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        let dirty = &mut self.dirty;
        self.map.retain(|k, v| {
            dirty.insert(k.clone());
            keep(k, v)
        });
    }

    /// As [`BTreeMap::retain`], the closure saying whether it kept the entry and whether it
    /// changed it: only removed and changed keys are marked.
    pub fn retain_changed(&mut self, mut keep: impl FnMut(&K, &mut V) -> (bool, bool)) {
        let dirty = &mut self.dirty;
        self.map.retain(|k, v| {
            let (kept, changed) = keep(k, v);
            if !kept || changed {
                dirty.insert(k.clone());
            }
            kept
        });
    }

    /// As [`BTreeMap::values_mut`] (every value may change).
    pub fn values_mut(&mut self) -> std::collections::btree_map::ValuesMut<'_, K, V> {
        self.dirty.extend(self.map.keys().cloned());
        self.map.values_mut()
    }

    /// As [`BTreeMap::iter_mut`] (every value may change).
    pub fn iter_mut(&mut self) -> std::collections::btree_map::IterMut<'_, K, V> {
        self.dirty.extend(self.map.keys().cloned());
        self.map.iter_mut()
    }

    /// Whether nothing changed since the last [`Tracked::take_changes`].
    pub fn unchanged(&self) -> bool {
        self.dirty.is_empty()
    }

    /// How many keys changed since the last [`Tracked::take_changes`].
    pub fn len_changed(&self) -> usize {
        self.dirty.len()
    }

    /// The changes since the last call, for a record; the map counts as written after.
    pub fn take_changes(&mut self) -> Changes<K, V>
    where
        V: Clone,
    {
        let dirty = std::mem::take(&mut self.dirty);
        dirty
            .into_iter()
            .map(|k| {
                let v = self.map.get(&k).cloned();
                (k, v)
            })
            .collect()
    }

    /// Forgets the changes: the caller wrote the whole map (a snapshot).
    pub fn mark_written(&mut self) {
        self.dirty.clear();
    }
}

/// Applies a record's `changes` to `map`, as a recovery folds the log.
pub fn replay<K: Ord + Clone, V: Clone>(map: &mut BTreeMap<K, V>, changes: &Changes<K, V>) {
    for (k, v) in changes {
        match v {
            Some(v) => {
                map.insert(k.clone(), v.clone());
            }
            None => {
                map.remove(k);
            }
        }
    }
}

/// When to write a compacting snapshot instead of another change record: once the records
/// written since the last snapshot hold more changes than the state has items (and at least
/// a few), so that the log stays within about twice the state and each change still costs
/// O(1) amortised.
///
/// The first record of each incarnation is a snapshot too: what a node starts from may differ
/// from what its log rebuilds (a planted bug that drops part of it, a counter moved past what
/// it holds), and the snapshot makes the log say what the node now holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Compaction {
    changes: usize,
    /// Whether this incarnation wrote its first snapshot.
    started: bool,
}

impl Compaction {
    /// The fewest changes between two snapshots.
    const FLOOR: usize = 64;

    /// Counts a record of `changes` changes; true when the next record should be a snapshot
    /// of a state of `size` items.
    pub fn note(&mut self, changes: usize, size: usize) -> bool {
        self.changes += changes + 1;
        !self.started || self.changes > Self::FLOOR.max(size)
    }

    /// A snapshot was written.
    pub fn reset(&mut self) {
        self.changes = 0;
        self.started = true;
    }
}

/// The log folded as a recovery would fold it, checked after each record against the state
/// the protocol means to be durable: in debug builds (tests) only, where it costs what
/// persisting the whole state used to; release builds keep nothing and check nothing.
#[derive(Clone, Debug)]
pub struct Shadow<D> {
    #[cfg(debug_assertions)]
    state: Option<D>,
    #[cfg(not(debug_assertions))]
    state: std::marker::PhantomData<D>,
}

impl<D> Default for Shadow<D> {
    fn default() -> Self {
        Shadow {
            #[cfg(debug_assertions)]
            state: None,
            #[cfg(not(debug_assertions))]
            state: std::marker::PhantomData,
        }
    }
}

impl<D: Clone + PartialEq + std::fmt::Debug> Shadow<D> {
    /// Starts from what the node recovered.
    pub fn new(recovered: Option<&D>) -> Self {
        #[cfg(debug_assertions)]
        return Shadow {
            state: recovered.cloned(),
        };
        #[cfg(not(debug_assertions))]
        {
            let _ = recovered;
            Shadow {
                state: std::marker::PhantomData,
            }
        }
    }

    /// Folds `record` with `replay` and checks that the fold is `now()`.
    pub fn check<R>(
        &mut self,
        record: &R,
        replay: impl Fn(&R, &mut Option<D>),
        now: impl FnOnce() -> D,
    ) {
        #[cfg(debug_assertions)]
        {
            replay(record, &mut self.state);
            assert!(
                self.state.as_ref() == Some(&now()),
                "the log's records do not rebuild the durable state: a change was not tracked"
            );
        }
        #[cfg(not(debug_assertions))]
        let _ = (record, replay, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_replayed_rebuild_the_map() {
        let mut t: Tracked<u32, u32> = Tracked::default();
        let mut rebuilt = BTreeMap::new();
        t.insert(1, 10);
        t.insert(2, 20);
        replay(&mut rebuilt, &t.take_changes());
        assert!(t.unchanged());
        *t.get_mut(&1).unwrap() += 1;
        t.remove(&2);
        t.remove(&3);
        *t.entry(4).or_default() = 40;
        let changes = t.take_changes();
        assert_eq!(changes, vec![(1, Some(11)), (2, None), (4, Some(40))]);
        replay(&mut rebuilt, &changes);
        assert_eq!(rebuilt, *t);
    }
}
