//! The replica: serving fetches and stores, and taking versions by the conflict rule, with the
//! check that a key's versions never go back.

use super::versions::{descends, Clock, Versioned};
use super::{Message, Dynamo};
use crate::contract::Context;
use crate::kv::Key;
use crate::quorum::Version;

impl Dynamo {
    /// A replica's side of fetch and store.
    pub(super) fn serve(&mut self, ctx: &mut Context<'_, Self>, msg: Message) -> Option<Message> {
        match msg {
            Message::Fetch { op, key } => Some(Message::Fetched {
                op,
                versions: self.entries.get(&key).cloned().unwrap_or_default(),
            }),
            Message::Store {
                op,
                key,
                entry,
                hints,
                repair,
            } => {
                let _ = repair;
                let mut changed = self.install(key, entry.clone());
                for node in hints {
                    changed |= self.add_hint(node, key, &entry);
                }
                if changed {
                    self.persist(ctx);
                }
                Some(Message::Stored { op })
            }
            _ => None,
        }
    }

    /// Takes `new` by the conflict rule (section 4.4); whether anything changed.
    pub(super) fn install(&mut self, key: Key, new: Versioned) -> bool {
        self.observe(new.entry.version);
        let cmp = self.cmp;
        let held = self.entries.entry(key).or_default();
        let before = (held.newest_version(), held.clock_join());
        let changed = held.take(new, cmp);
        if held.is_empty() {
            // Nothing was held, and nothing taken.
            self.entries.remove(&key);
        }
        if changed && self.violation.is_none() {
            self.violation = self.went_back(key, before);
        }
        changed
    }

    /// What broke when `key` changed from `before` (its newest version and its clocks'
    /// join): the newest version or the clocks went back, or (siblings) a held version
    /// descends from another. Only a planted bug makes any of them happen.
    pub(super) fn went_back(&self, key: Key, before: (Option<Version>, Clock)) -> Option<String> {
        let held = &self.entries[&key];
        let (was, join) = before;
        if let (Some(was), Some(now)) = (was, held.newest_version()) {
            if was > now {
                return Some(format!("k{key}: version went back from {was:?} to {now:?}"));
            }
        }
        let now = held.clock_join();
        if !descends(&now, &join) {
            return Some(format!("k{key}: clock went back from {join:?} to {now:?}"));
        }
        let (a, b) = held.dominated_pair()?;
        Some(format!(
            "k{key}: holds {a:?} and {b:?}, one descending from the other"
        ))
    }
}
