//! Anti-entropy (module doc, "Repair"): every `anti_entropy` a node compares one bucket's
//! digest with one peer, in rotation, and differing buckets are exchanged both ways; corrupt
//! versions no write produced are dropped first.

use super::versions::Versioned;
use super::{Message, Sloppy};
use crate::contract::Context;
use crate::ids::NodeId;
use crate::kv::Key;
use crate::quorum::{self, bucket_of, Entry, Version};

impl Sloppy {
    pub(super) fn on_anti_entropy(
        &mut self,
        ctx: &mut Context<'_, Self>,
        from: NodeId,
        msg: Message,
    ) {
        match msg {
            Message::Digest { bucket, digest } if self.bucket_digest(bucket) != digest => {
                let entries = self.bucket_entries(bucket);
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
                    changed += usize::from(self.install(key, v, false));
                }
                if changed > 0 {
                    self.persist(ctx);
                    ctx.note(|| format!("anti-entropy with {from}: {changed} entries taken"));
                }
                if reply {
                    let entries = self.bucket_entries(bucket);
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

    pub(super) fn bucket_entries(&self, bucket: u16) -> Vec<(Key, Versioned)> {
        self.entries
            .iter()
            .filter(|(k, _)| bucket_of(**k) == bucket)
            .flat_map(|(k, vs)| vs.iter().map(|v| (*k, v.clone())))
            .collect()
    }

    /// Every version held, each as (key, entry): a key's siblings each on their own, so that
    /// digests cover them all (a version names one write, and so its clock too).
    pub(super) fn all_entries(&self) -> impl Iterator<Item = (Key, &Entry)> {
        let versions = self.entries.iter();
        versions.flat_map(|(k, vs)| vs.iter().map(|v| (*k, &v.entry)))
    }

    pub(super) fn bucket_digest(&self, bucket: u16) -> u64 {
        let digests = quorum::bucket_digests(self.all_entries());
        digests[usize::from(bucket)]
    }

    /// Drops corrupt versions that no write produced (tricked onto an absent key): no
    /// intact copy anywhere can repair them. Whether any was dropped.
    pub(super) fn drop_unwritten(&mut self) -> bool {
        let mut dropped = false;
        self.entries.retain_changed(|_, vs| {
            let unwritten = |v: &Versioned| !v.entry.intact() && v.entry.version == Version::default();
            // Copied (the versions are shared with snapshots) only when one goes.
            let changed = vs.0.iter().any(unwritten);
            if changed {
                std::rc::Rc::make_mut(&mut vs.0).retain(|v| !unwritten(v));
            }
            dropped |= changed;
            (!vs.is_empty(), changed)
        });
        dropped
    }
}
