//! A map that remembers which keys changed since it was last written to the log, so that a
//! protocol persists O(what changed) (see the contract's "Storage"): reads go through
//! [`Deref`] to the plain map, and every mutating method marks the keys it may change.
//! [`Tracked::take_changes`] hands the changed keys' current values (`None`: removed) for a
//! record; [`replay`] applies such changes to the map a recovery rebuilds.
//!
//! There is deliberately no `DerefMut`: a mutation that is not marked would be lost by a
//! crash, so the compiler points at every one.
//!
//! The same marks serve a second reader: [`Tracked::check_changed`] visits only the entries
//! changed since its last passing visit, so that an invariant over each entry on its own is
//! judged after every handler in O(what changed), not O(the map).

use std::cell::RefCell;
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Deref;

/// The changes of a [`Tracked`] map since its last record: each changed key with its value
/// now (`None`: removed), in key order.
pub type Changes<K, V> = Vec<(K, Option<V>)>;

/// A [`BTreeMap`] with the set of keys changed since [`Tracked::take_changes`].
#[derive(Clone, Debug)]
pub struct Tracked<K: Ord, V> {
    map: BTreeMap<K, V>,
    dirty: BTreeSet<K>,
    /// The keys changed since the last [`Tracked::check_changed`] that passed. A cell, as
    /// checks read the map through `&self`; no part of the map's value (equality, hash).
    unchecked: RefCell<Unchecked<K>>,
    /// Counts the calls that may have changed the map: equal generations, equal maps (for
    /// a reader's cache of something computed from the whole map).
    generation: u64,
}

/// What [`Tracked::check_changed`] has still to visit.
#[derive(Clone, Debug)]
enum Unchecked<K> {
    /// Every entry: a new map (recovered, so never judged), or after a change to many.
    All,
    /// These keys (repeats and since-removed keys possible), at most about twice the map.
    Keys(Vec<K>),
}

impl<K: Ord, V: PartialEq> PartialEq for Tracked<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.map == other.map && self.dirty == other.dirty
    }
}

impl<K: Ord, V: Eq> Eq for Tracked<K, V> {}

impl<K: Ord, V> Default for Tracked<K, V> {
    fn default() -> Self {
        Tracked {
            map: BTreeMap::new(),
            dirty: BTreeSet::new(),
            unchecked: RefCell::new(Unchecked::All),
            generation: 0,
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
            unchecked: RefCell::new(Unchecked::All),
            generation: 0,
        }
    }

    /// How many calls that may change the map were made on it: while this stays the same,
    /// so does the map.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Notes that `key` changed, for the next [`Tracked::check_changed`].
    #[inline]
    fn unchecked(unchecked: &mut RefCell<Unchecked<K>>, len: usize, key: &K) {
        let unchecked = unchecked.get_mut();
        if let Unchecked::Keys(keys) = unchecked {
            if keys.len() > 2 * len + 64 {
                *unchecked = Unchecked::All;
            } else {
                keys.push(key.clone());
            }
        }
    }

    /// As [`BTreeMap::insert`].
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.generation += 1;
        Self::unchecked(&mut self.unchecked, self.map.len(), &key);
        self.dirty.insert(key.clone());
        self.map.insert(key, value)
    }

    /// As [`BTreeMap::remove`].
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let removed = self.map.remove(key);
        if removed.is_some() {
            self.generation += 1;
            self.dirty.insert(key.clone());
        }
        removed
    }

    /// As [`BTreeMap::get_mut`].
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let len = self.map.len();
        let value = self.map.get_mut(key)?;
        self.generation += 1;
        Self::unchecked(&mut self.unchecked, len, key);
        if !self.dirty.contains(key) {
            self.dirty.insert(key.clone());
        }
        Some(value)
    }

    /// As [`BTreeMap::entry`].
    pub fn entry(&mut self, key: K) -> Entry<'_, K, V> {
        self.generation += 1;
        Self::unchecked(&mut self.unchecked, self.map.len(), &key);
        self.dirty.insert(key.clone());
        self.map.entry(key)
    }

    /// As [`BTreeMap::retain`] (every key the closure sees may change).
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        self.generation += 1;
        *self.unchecked.get_mut() = Unchecked::All;
        let dirty = &mut self.dirty;
        self.map.retain(|k, v| {
            dirty.insert(k.clone());
            keep(k, v)
        });
    }

    /// As [`BTreeMap::retain`], the closure saying whether it kept the entry and whether it
    /// changed it: only removed and changed keys are marked.
    pub fn retain_changed(&mut self, mut keep: impl FnMut(&K, &mut V) -> (bool, bool)) {
        self.generation += 1;
        let (dirty, unchecked) = (&mut self.dirty, &mut self.unchecked);
        let len = self.map.len();
        self.map.retain(|k, v| {
            let (kept, changed) = keep(k, v);
            if !kept || changed {
                dirty.insert(k.clone());
            }
            if kept && changed {
                Self::unchecked(unchecked, len, k);
            }
            kept
        });
    }

    /// As [`BTreeMap::values_mut`] (every value may change).
    pub fn values_mut(&mut self) -> std::collections::btree_map::ValuesMut<'_, K, V> {
        self.generation += 1;
        *self.unchecked.get_mut() = Unchecked::All;
        self.dirty.extend(self.map.keys().cloned());
        self.map.values_mut()
    }

    /// As [`BTreeMap::iter_mut`] (every value may change).
    pub fn iter_mut(&mut self) -> std::collections::btree_map::IterMut<'_, K, V> {
        self.generation += 1;
        *self.unchecked.get_mut() = Unchecked::All;
        self.dirty.extend(self.map.keys().cloned());
        self.map.iter_mut()
    }

    /// Runs `check` on each entry that may have changed since the last call that returned
    /// `Ok` (every entry on the first call), in no promised order and possibly more than
    /// once; entries removed since are not visited. Stops at the first `Err` and returns it,
    /// and then the same entries are visited again next time. So a condition on each entry
    /// alone, judged by this after every change, holds of every entry whenever it returns
    /// `Ok`: what it did not visit passed when last visited and has not changed since.
    pub fn check_changed<E>(
        &self,
        mut check: impl FnMut(&K, &V) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut unchecked = self.unchecked.borrow_mut();
        match &mut *unchecked {
            Unchecked::All => {
                for (k, v) in &self.map {
                    check(k, v)?;
                }
                *unchecked = Unchecked::Keys(Vec::new());
            }
            Unchecked::Keys(keys) => {
                for k in keys.iter() {
                    if let Some(v) = self.map.get(k) {
                        check(k, v)?;
                    }
                }
                keys.clear();
            }
        }
        Ok(())
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

/// A value whose mutable borrows are counted ([`Watched::generation`]), for a reader that
/// caches what it computed from the whole value: while the generation stays the same, so
/// does the value. There is no `DerefMut`, so every mutation goes through
/// [`Watched::get_mut`] and is counted.
#[derive(Clone, Debug, Default)]
pub struct Watched<T> {
    value: T,
    generation: u64,
}

impl<T> Watched<T> {
    /// `value`, at generation 0.
    pub fn new(value: T) -> Self {
        Watched {
            value,
            generation: 0,
        }
    }

    /// How many mutable borrows were taken.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The value to change (counted whether or not it is changed).
    pub fn get_mut(&mut self) -> &mut T {
        self.generation += 1;
        &mut self.value
    }
}

impl<T> Deref for Watched<T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<'a, T> IntoIterator for &'a Watched<T>
where
    &'a T: IntoIterator,
{
    type Item = <&'a T as IntoIterator>::Item;
    type IntoIter = <&'a T as IntoIterator>::IntoIter;

    fn into_iter(self) -> Self::IntoIter {
        (&self.value).into_iter()
    }
}

/// Compares, and hashes, as the value alone.
impl<T: PartialEq> PartialEq for Watched<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<T: Eq> Eq for Watched<T> {}

impl<T: std::hash::Hash> std::hash::Hash for Watched<T> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.value.hash(state);
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

    /// The keys `check_changed` visits, each once, in order.
    fn visited(t: &Tracked<u32, u32>) -> Vec<u32> {
        let mut seen = Vec::new();
        t.check_changed(|k, _| {
            seen.push(*k);
            Ok::<(), ()>(())
        })
        .unwrap();
        seen.sort_unstable();
        seen.dedup();
        seen
    }

    #[test]
    fn check_changed_visits_every_entry_first_then_only_the_changed_ones() {
        let mut t: Tracked<u32, u32> = (0..5).map(|k| (k, k)).collect();
        assert_eq!(
            visited(&t),
            vec![0, 1, 2, 3, 4],
            "a new map is judged whole"
        );
        assert_eq!(visited(&t), Vec::<u32>::new());
        *t.get_mut(&3).unwrap() += 1;
        t.insert(7, 7);
        t.remove(&1);
        *t.entry(0).or_default() += 1;
        assert_eq!(visited(&t), vec![0, 3, 7], "removed keys are not visited");
        t.retain_changed(|k, v| {
            let changed = *k == 4;
            *v += u32::from(changed);
            (*k != 2, changed)
        });
        assert_eq!(visited(&t), vec![4]);
        t.values_mut().for_each(|_| {});
        assert_eq!(visited(&t), vec![0, 3, 4, 7]);
        // A failing visit leaves its entries to the next one.
        t.insert(9, 9);
        let failed = t.check_changed(|k, _| if *k == 9 { Err(*k) } else { Ok(()) });
        assert_eq!(failed, Err(9));
        assert_eq!(visited(&t), vec![9]);
    }

    /// Over random changes, judging each entry on its own through `check_changed` after
    /// every change reaches the verdict of judging every entry (the invariants' promise).
    #[test]
    fn check_changed_after_every_change_agrees_with_a_full_walk() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |n: u32| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % u64::from(n)) as u32
        };
        let bad = |v: &u32| *v % 5 == 0;
        for _ in 0..50 {
            let mut t: Tracked<u32, u32> = (0..next(6)).map(|k| (k, 1 + 5 * k)).collect();
            for _ in 0..200 {
                let (key, value) = (next(40), next(100));
                match next(7) {
                    0 => {
                        t.insert(key, value);
                    }
                    1 => {
                        if let Some(v) = t.get_mut(&key) {
                            *v = value;
                        }
                    }
                    2 => *t.entry(key).or_default() = value,
                    3 => {
                        t.remove(&key);
                    }
                    4 => t.retain_changed(|k, v| {
                        let changed = *k % 3 == value % 3;
                        if changed {
                            *v += 1;
                        }
                        (*k != key, changed)
                    }),
                    5 => t.retain(|k, _| *k != key),
                    _ => {}
                }
                let full = t.values().any(bad);
                let changed = t.check_changed(|_, v| if bad(v) { Err(()) } else { Ok(()) });
                assert_eq!(changed.is_err(), full, "{t:?}");
            }
        }
    }

    #[test]
    fn a_watched_value_counts_its_mutable_borrows() {
        let mut w = Watched::new(vec![1]);
        assert_eq!((w.generation(), w.len()), (0, 1));
        w.get_mut().push(2);
        let _ = w.get_mut();
        assert_eq!((w.generation(), &**w), (2, &[1, 2][..]));
        assert_eq!(w, Watched::new(vec![1, 2]), "compared as the value alone");
    }
}
