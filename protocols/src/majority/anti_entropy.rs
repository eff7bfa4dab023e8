//! Anti-entropy (module doc, "Durability, repair"): every `anti_entropy` a node sends the next
//! peer the digests of its accepted entries by bucket; buckets that differ are exchanged both
//! ways. An entry known chosen is installed whatever was promised; one only accepted is
//! installed as a late copy of its proposer's Accept would be (newer than what is held, and
//! not below the promise), which Paxos allows for any delayed or duplicated phase-2 message.

use super::durable::Record;
use super::{Majority, Message};
use crate::contract::Context;
use crate::ids::NodeId;
use crate::kv::Key;
use crate::quorum::{self, bucket_of};

impl Majority {
    /// Every accepted entry, and whether it is known chosen.
    fn accepted_records(&self) -> impl Iterator<Item = (Key, &Record, bool)> {
        self.slots
            .iter()
            .filter_map(|(k, s)| s.accepted.as_ref().map(|r| (*k, r, s.chosen)))
    }

    pub(super) fn digests(&self) -> Vec<u64> {
        quorum::bucket_digests(self.accepted_records().map(|(k, r, _)| (k, &r.entry)))
    }

    pub(super) fn records_in(&self, buckets: &[u16]) -> Vec<(Key, Record, bool)> {
        self.accepted_records()
            .filter(|(k, _, _)| buckets.contains(&bucket_of(*k)))
            .map(|(k, r, chosen)| (k, r.clone(), chosen))
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
                for (key, record, chosen) in records {
                    changed += usize::from(self.maybe_install(key, record, chosen));
                }
                if changed > 0 {
                    self.persist(ctx);
                    ctx.note(|| format!("anti-entropy with {from}: {changed} entries taken"));
                }
                if reply && !self.damaged {
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
