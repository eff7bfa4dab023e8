//! Anti-entropy (module doc, "Repair"; section 4.7): every `anti_entropy` a node sends one
//! peer, in rotation, the root of its Merkle tree ([`merkle`]) over the keys both replicate;
//! where the roots differ the two descend together, level by level, into the branches that
//! differ only, and exchange the versions of the differing leaves both ways. Corrupt versions
//! no write produced are dropped first. The root message also gossips the sender's view of
//! the members (section 4.8). Each node counts the bytes its rounds sent, and what a
//! full-state exchange would have sent instead (both ends' shared versions, each round).

use super::merkle::{self, Tree};
use super::versions::Versioned;
use super::{Dynamo, Message, Timer};
use crate::contract::Context;
use crate::ids::NodeId;
use crate::kv::Key;
use crate::quorum::{Entry, Version};
use std::collections::BTreeSet;

/// Bytes of one tree hash, one node or leaf index.
const HASH_BYTES: u64 = 8;
const INDEX_BYTES: u64 = 4;

impl Dynamo {
    pub(super) fn on_anti_entropy(
        &mut self,
        ctx: &mut Context<'_, Self>,
        from: NodeId,
        msg: Message,
    ) {
        match msg {
            Message::Digest { root, members } => {
                self.merge_members(ctx, &members);
                let tree = self.tree(from);
                if tree.root() == root {
                    return;
                }
                let children = tree.children(0, 0).unwrap_or_default().to_vec();
                self.send_branches(ctx, from, 0, vec![(0, children)]);
            }
            Message::Branches { level, nodes } => {
                let tree = self.tree(from);
                let skip_last = self.bugs.merkle_skips_last_branch;
                let differing: Vec<u32> = nodes
                    .iter()
                    .flat_map(|(index, theirs)| tree.differing(level, *index, theirs, skip_last))
                    .collect();
                if differing.is_empty() {
                    return;
                }
                if level + 1 >= merkle::DEPTH {
                    let leaves: BTreeSet<u32> = differing.into_iter().collect();
                    let entries = self.leaf_entries(&leaves, from);
                    self.send_entries(ctx, from, leaves, entries, true);
                    return;
                }
                let below = level + 1;
                let nodes = differing
                    .into_iter()
                    .filter_map(|i| Some((i, tree.children(below, i)?.to_vec())))
                    .collect();
                self.send_branches(ctx, from, below, nodes);
            }
            Message::Entries {
                leaves,
                entries,
                reply,
            } => {
                let leaves: BTreeSet<u32> = leaves.into_iter().collect();
                // What this node held before taking theirs: they have their own already.
                let mine = reply.then(|| self.leaf_entries(&leaves, from));
                let mut changed = 0;
                for (key, v) in entries {
                    changed += usize::from(self.install(key, v));
                }
                if changed > 0 {
                    self.persist(ctx);
                    ctx.note(|| format!("anti-entropy with {from}: {changed} entries taken"));
                }
                if let Some(mine) = mine {
                    self.send_entries(ctx, from, leaves, mine, false);
                }
            }
            _ => {}
        }
    }

    fn send_branches(
        &mut self,
        ctx: &mut Context<'_, Self>,
        to: NodeId,
        level: u8,
        nodes: Vec<(u32, Vec<u64>)>,
    ) {
        let hashes: usize = nodes.iter().map(|(_, h)| h.len()).sum();
        self.anti_entropy_bytes += INDEX_BYTES * nodes.len() as u64 + HASH_BYTES * hashes as u64;
        ctx.send(to, Message::Branches { level, nodes });
    }

    fn send_entries(
        &mut self,
        ctx: &mut Context<'_, Self>,
        to: NodeId,
        leaves: BTreeSet<u32>,
        entries: Vec<(Key, Versioned)>,
        reply: bool,
    ) {
        self.anti_entropy_bytes +=
            INDEX_BYTES * leaves.len() as u64 + merkle::wire_bytes(entries.iter().map(|(k, v)| (*k, v)));
        let leaves = leaves.into_iter().collect();
        let msg = Message::Entries {
            leaves,
            entries,
            reply,
        };
        ctx.send(to, msg);
    }

    /// Whether both this node and `peer` replicate `key`, in this node's view.
    fn shared(&self, key: Key, peer: NodeId) -> bool {
        let set = self.replica_set(key);
        set.contains(&self.me) && set.contains(&peer)
    }

    /// The versions of the keys this node and `peer` both replicate, each on its own.
    fn shared_versions(&self, peer: NodeId) -> impl Iterator<Item = (Key, &Versioned)> {
        let shared = self.entries.iter().filter(move |(k, _)| self.shared(**k, peer));
        shared.flat_map(|(k, vs)| vs.iter().map(move |v| (*k, v)))
    }

    /// This node's Merkle tree over the keys it and `peer` both replicate.
    fn tree(&self, peer: NodeId) -> Tree {
        Tree::build(self.shared_versions(peer))
    }

    /// The versions in `leaves` of the keys this node and `peer` both replicate.
    fn leaf_entries(&self, leaves: &BTreeSet<u32>, peer: NodeId) -> Vec<(Key, Versioned)> {
        let all = self.shared_versions(peer);
        all.filter(|(k, _)| leaves.contains(&merkle::leaf_of(*k)))
            .map(|(k, v)| (k, v.clone()))
            .collect()
    }

    /// Every version held, each as (key, entry): a key's siblings each on their own, so that
    /// digests cover them all (a version names one write, and so its clock too).
    pub(super) fn all_entries(&self) -> impl Iterator<Item = (Key, &Entry)> {
        let versions = self.entries.iter();
        versions.flat_map(|(k, vs)| vs.iter().map(|v| (*k, &v.entry)))
    }

    pub(super) fn on_anti_entropy_tick(&mut self, ctx: &mut Context<'_, Self>) {
        if self.drop_unwritten() {
            self.persist(ctx);
        }
        if !self.peers.is_empty() {
            let (peer, _) = self.rotation.next(&self.peers);
            // The shared versions listed once, for the tree and the count.
            let shared: Vec<(Key, &Versioned)> = self.shared_versions(peer).collect();
            let tree = Tree::build(shared.iter().copied());
            // A full-state exchange would send both ends' shared versions, each way: counted
            // as twice this end's (the measure the Merkle tree is compared against).
            let full_bytes = 2 * merkle::wire_bytes(shared.into_iter());
            self.full_exchange_bytes += full_bytes;
            self.anti_entropy_bytes += HASH_BYTES;
            let members = self.members.iter().map(|(n, s)| (*n, *s)).collect();
            let msg = Message::Digest {
                root: tree.root(),
                members,
            };
            ctx.send(peer, msg);
        }
        ctx.set_timer(Timer::AntiEntropy, self.anti_entropy);
    }

    /// Drops corrupt versions that no write produced (tricked onto an absent key): no
    /// intact copy anywhere can repair them. Whether any was dropped.
    pub(super) fn drop_unwritten(&mut self) -> bool {
        let mut dropped = false;
        self.entries.retain_changed(|_, vs| {
            let before = vs.len();
            vs.0.retain(|v| v.entry.intact() || v.entry.version != Version::default());
            let changed = vs.len() != before;
            dropped |= changed;
            (!vs.is_empty(), changed)
        });
        dropped
    }
}
