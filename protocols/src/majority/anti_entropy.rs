//! Anti-entropy (module doc, "Durability, repair"): every `anti_entropy` a node sends the next
//! peer the digests of its chosen entries by bucket; buckets that differ are exchanged both
//! ways. Only chosen entries move, so installing them ignores promises safely.

use super::durable::Record;
use super::{Majority, Message};
use crate::contract::Context;
use crate::ids::NodeId;
use crate::kv::Key;
use crate::quorum::{self, bucket_of};

impl Majority {
    pub(super) fn chosen_records(&self) -> impl Iterator<Item = (Key, &Record)> {
        self.slots
            .iter()
            .filter_map(|(k, s)| s.accepted.as_ref().filter(|_| s.chosen).map(|r| (*k, r)))
    }

    pub(super) fn digests(&self) -> Vec<u64> {
        quorum::bucket_digests(self.chosen_records().map(|(k, r)| (k, &r.entry)))
    }

    pub(super) fn records_in(&self, buckets: &[u16]) -> Vec<(Key, Record)> {
        self.chosen_records()
            .filter(|(k, _)| buckets.contains(&bucket_of(*k)))
            .map(|(k, r)| (k, r.clone()))
            .collect()
    }

    pub(super) fn on_anti_entropy(
        &mut self,
        ctx: &mut Context<'_, Self>,
        from: NodeId,
        msg: Message,
    ) {
        match msg {
            Message::Digests { digests } => {
                let mine = self.digests();
                let buckets: Vec<u16> = (0..quorum::BUCKETS)
                    .filter(|b| digests.get(usize::from(*b)) != Some(&mine[usize::from(*b)]))
                    .collect();
                if !buckets.is_empty() {
                    let records = self.records_in(&buckets);
                    let reply = true;
                    ctx.send(
                        from,
                        Message::Entries {
                            buckets,
                            records,
                            reply,
                        },
                    );
                }
            }
            Message::Entries {
                buckets,
                records,
                reply,
            } => {
                let mut changed = 0;
                for (key, record) in records {
                    changed += usize::from(self.maybe_install_chosen(key, record));
                }
                if changed > 0 {
                    self.persist(ctx);
                    ctx.note(|| format!("anti-entropy with {from}: {changed} entries taken"));
                }
                if reply {
                    let records = self.records_in(&buckets);
                    ctx.send(
                        from,
                        Message::Entries {
                            buckets,
                            records,
                            reply: false,
                        },
                    );
                }
            }
            _ => {}
        }
    }
}
