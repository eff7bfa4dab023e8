//! Merkle trees for anti-entropy (Dynamo section 4.7): "each node maintains a separate Merkle
//! tree for each key range ... two nodes exchange the root of the Merkle tree corresponding to
//! the key ranges that they host in common", then descend only into the branches that
//! differ, so that what two replicas exchange is proportional to how much they differ, not to
//! how much they hold.
//!
//! Here a tree covers the keys two nodes both replicate (in the builder's view of the ring):
//! for a pair of nodes that is the union of the key ranges they host in common. A key's leaf
//! is drawn from its stable hash, so neighbouring keys spread over the tree. A leaf's hash is
//! the XOR of its versions' hashes (the order they were written in does not matter; a
//! version's hash covers its key, value, version and vector clock); an inner node's is the
//! hash of its children's, so two subtrees that differ never cancel out.

use super::versions::Versioned;
use crate::digest::StableHasher;
use crate::kv::Key;

/// Children per inner node.
pub const FANOUT: usize = 16;
/// Levels below the root: `FANOUT.pow(DEPTH)` leaves.
pub const DEPTH: u8 = 3;
/// How many leaves a tree has.
pub const LEAVES: u32 = (FANOUT as u32).pow(DEPTH as u32);

/// The leaf `key` belongs to.
pub fn leaf_of(key: Key) -> u32 {
    (StableHasher::hash_of(&key) % u64::from(LEAVES)) as u32
}

/// One tree: every level's hashes, the root's level first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tree {
    levels: Vec<Vec<u64>>,
}

impl Tree {
    /// The tree of `versions` (each as its key and one version: a key's siblings each on
    /// their own).
    pub fn build<'a>(versions: impl Iterator<Item = (Key, &'a Versioned)>) -> Tree {
        let mut leaves = vec![0u64; LEAVES as usize];
        for (key, v) in versions {
            leaves[leaf_of(key) as usize] ^= StableHasher::hash_of(&(key, v));
        }
        let mut levels = vec![leaves];
        while levels[0].len() > 1 {
            let parents = levels[0]
                .chunks(FANOUT)
                .map(StableHasher::hash_of)
                .collect();
            levels.insert(0, parents);
        }
        Tree { levels }
    }

    /// The root's hash.
    pub fn root(&self) -> u64 {
        self.levels[0][0]
    }

    /// The hashes of the children of the node at `index` on `level` (0: the root), or
    /// `None` past the leaves or the level's end.
    pub fn children(&self, level: u8, index: u32) -> Option<&[u64]> {
        let below = self.levels.get(usize::from(level) + 1)?;
        let start = (index as usize).checked_mul(FANOUT)?;
        below.get(start..start + FANOUT)
    }

    /// The children of the node at `index` on `level` whose hashes differ from `theirs`
    /// (the same node's children in another tree), as indices on `level + 1`. A malformed
    /// `theirs` (another length, a node past the end) counts as all differing. With
    /// `skip_last` (the planted bug `merkle-skips-last-branch`) the last child is never
    /// compared.
    pub fn differing(&self, level: u8, index: u32, theirs: &[u64], skip_last: bool) -> Vec<u32> {
        let Some(mine) = self.children(level, index) else {
            return Vec::new();
        };
        let first = index * FANOUT as u32;
        (0..FANOUT - usize::from(skip_last))
            .filter(|i| theirs.len() != FANOUT || mine[*i] != theirs[*i])
            .map(|i| first + i as u32)
            .collect()
    }
}

/// About how many bytes `versions` take on the wire: each key, value, version, checksum and
/// clock pair at its fixed size (a `u64` or a node id per field), values at their length.
pub fn wire_bytes<'a>(versions: impl Iterator<Item = (Key, &'a Versioned)>) -> u64 {
    versions
        .map(|(_, v)| {
            let value = v.entry.value.as_ref().map_or(0, |s| s.len() as u64);
            8 + value + 8 + 2 + 8 + 10 * v.clock.len() as u64
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::NodeId;
    use crate::quorum::{Entry, Version};

    fn version(counter: u64, value: &str) -> Versioned {
        let version = Version {
            counter,
            node: NodeId(0),
        };
        Versioned {
            entry: Entry::new(version, Some(value.into())),
            clock: [(NodeId(0), counter)].into_iter().collect(),
        }
    }

    /// Section 4.7: equal replicas have equal roots; replicas that differ in one key differ
    /// along exactly one path, root to that key's leaf, and nowhere else.
    #[test]
    fn section_4_7_one_differing_key_shows_along_one_path_only() {
        let a: Vec<(Key, Versioned)> = (0..10_000).map(|k| (k, version(1, "x"))).collect();
        let mut b = a.clone();
        let ta = Tree::build(a.iter().map(|(k, v)| (*k, v)));
        assert_eq!(ta, Tree::build(b.iter().rev().map(|(k, v)| (*k, v))));
        b[4321].1 = version(2, "y");
        let tb = Tree::build(b.iter().map(|(k, v)| (*k, v)));
        assert_ne!(ta.root(), tb.root());
        let mut path = vec![0u32];
        for level in 0..DEPTH {
            let index = *path.last().unwrap();
            let differing = ta.differing(level, index, tb.children(level, index).unwrap(), false);
            assert_eq!(differing.len(), 1, "level {level}: {differing:?}");
            path.push(differing[0]);
        }
        assert_eq!(*path.last().unwrap(), leaf_of(4321));
        assert!(ta.children(DEPTH, 0).is_none(), "leaves have no children");
    }

    /// A sibling more (a concurrent version) changes the leaf even with the value unchanged:
    /// the hash covers each version and its clock.
    #[test]
    fn section_4_7_a_sibling_or_a_clock_changes_the_root() {
        let one = [(7, version(1, "x"))];
        let two = [(7, version(1, "x")), (7, version(2, "x"))];
        let t1 = Tree::build(one.iter().map(|(k, v)| (*k, v)));
        let t2 = Tree::build(two.iter().map(|(k, v)| (*k, v)));
        assert_ne!(t1.root(), t2.root());
        let mut other_clock = one[0].1.clone();
        other_clock.clock.insert(NodeId(1), 1);
        let t3 = Tree::build([(7, &other_clock)].into_iter());
        assert_ne!(t1.root(), t3.root());
    }
}
