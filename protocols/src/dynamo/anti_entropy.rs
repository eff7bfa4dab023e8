//! Anti-entropy (module doc, "Repair"; section 4.7): every `anti_entropy` a node compares
//! one bucket's digest, over the keys both ends replicate, with one peer, in rotation, and
//! differing buckets are exchanged both ways; corrupt versions no write produced are dropped
//! first. The digest message also gossips the sender's view of the members (section 4.8).

use super::versions::Versioned;
use super::{Dynamo, Message, Timer};
use crate::contract::Context;
use crate::ids::NodeId;
use crate::kv::Key;
use crate::quorum::{self, bucket_of, Entry, Version};

impl Dynamo {
    pub(super) fn on_anti_entropy(
        &mut self,
        ctx: &mut Context<'_, Self>,
        from: NodeId,
        msg: Message,
    ) {
        match msg {
            Message::Digest {
                bucket,
                digest,
                members,
            } => {
                self.merge_members(ctx, &members);
                if self.bucket_digest(bucket, from) == digest {
                    return;
                }
                let entries = self.bucket_entries(bucket, from);
                let reply = true;
                let msg = Message::Entries {
                    bucket,
                    entries,
                    reply,
                };
                ctx.send(from, msg);
            }
            Message::Entries {
                bucket,
                entries,
                reply,
            } => {
                let mut changed = 0;
                for (key, v) in entries {
                    changed += usize::from(self.install(key, v));
                }
                if changed > 0 {
                    self.persist(ctx);
                    ctx.note(|| format!("anti-entropy with {from}: {changed} entries taken"));
                }
                if reply {
                    let entries = self.bucket_entries(bucket, from);
                    let reply = false;
                    ctx.send(
                        from,
                        Message::Entries {
                            bucket,
                            entries,
                            reply,
                        },
                    );
                }
            }
            _ => {}
        }
    }

    /// Whether both this node and `peer` replicate `key`, in this node's view.
    fn shared(&self, key: Key, peer: NodeId) -> bool {
        let set = self.replica_set(key);
        set.contains(&self.me) && set.contains(&peer)
    }

    /// The versions of the keys in `bucket` that this node and `peer` both replicate.
    pub(super) fn bucket_entries(&self, bucket: u16, peer: NodeId) -> Vec<(Key, Versioned)> {
        self.entries
            .iter()
            .filter(|(k, _)| bucket_of(**k) == bucket && self.shared(**k, peer))
            .flat_map(|(k, vs)| vs.iter().map(|v| (*k, v.clone())))
            .collect()
    }

    /// Every version held, each as (key, entry): a key's siblings each on their own, so that
    /// digests cover them all (a version names one write, and so its clock too).
    pub(super) fn all_entries(&self) -> impl Iterator<Item = (Key, &Entry)> {
        let versions = self.entries.iter();
        versions.flat_map(|(k, vs)| vs.iter().map(|v| (*k, &v.entry)))
    }

    /// The digest of `bucket` over the keys this node and `peer` both replicate.
    pub(super) fn bucket_digest(&self, bucket: u16, peer: NodeId) -> u64 {
        let versions = self.entries.iter();
        let shared = versions.filter(|(k, _)| bucket_of(**k) == bucket && self.shared(**k, peer));
        let all = shared.flat_map(|(k, vs)| vs.iter().map(|v| (*k, &v.entry)));
        let digests = quorum::bucket_digests(all);
        digests[usize::from(bucket)]
    }

    pub(super) fn on_anti_entropy_tick(&mut self, ctx: &mut Context<'_, Self>) {
        if self.drop_unwritten() {
            self.persist(ctx);
        }
        if !self.peers.is_empty() {
            let (peer, bucket) = self.rotation.next(&self.peers);
            let digest = self.bucket_digest(bucket, peer);
            let members = self.members.iter().map(|(n, s)| (*n, *s)).collect();
            let msg = Message::Digest {
                bucket,
                digest,
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
