//! The acceptor (CASPaxos's phases as a replica sees them): promises, accepts, commits, and
//! the promise leases that keep coordinators of one key from dueling.

use super::durable::Record;
use super::{Majority, Message};
use crate::contract::Context;
use crate::kv::Key;
use crate::quorum::Version;
use crate::time::Time;
use std::cmp::Ordering;
use std::rc::Rc;

impl Majority {
    /// The acceptor's answer to a coordinator's message (`None` for messages it only takes).
    pub(super) fn serve(&mut self, ctx: &mut Context<'_, Self>, msg: Message) -> Option<Message> {
        match msg {
            Message::Prepare { key, op, ballot } => Some(self.on_prepare(ctx, key, op, ballot)),
            Message::Query { key, op, read } => {
                let slot = self.slots.get(&key).cloned().unwrap_or_default();
                Some(Message::QueryReply {
                    key,
                    op,
                    read,
                    accepted: slot.accepted.clone(),
                    chosen: slot.chosen,
                })
            }
            Message::Accept {
                key,
                op,
                record,
                write_back,
            } => Some(self.on_accept(ctx, key, op, record, write_back)),
            Message::Commit { key, record } => {
                if self.maybe_install(key, record, true) {
                    self.persist(ctx);
                }
                self.wake_waiting(ctx, key);
                None
            }
            _ => None,
        }
    }

    pub(super) fn on_prepare(
        &mut self,
        ctx: &mut Context<'_, Self>,
        key: Key,
        op: u64,
        b: Version,
    ) -> Message {
        self.observe(b);
        let slot = self.slots.get(&key).cloned().unwrap_or_default();
        let held = Self::version_of(&slot.accepted);
        let promised = slot.promised.max(held);
        if self.cmp(b, slot.promised) == Ordering::Less || self.cmp(b, held) != Ordering::Greater {
            return Message::Nack {
                key,
                op,
                refused: b,
                promised,
            };
        }
        if self.leased(ctx.now(), key, b, held) {
            return Message::Nack {
                key,
                op,
                refused: b,
                promised,
            };
        }
        if slot.promised != b {
            Rc::make_mut(self.slots.entry(key).or_default()).promised = slot.promised.max(b);
            self.leases.insert(key, (b, ctx.now()));
            self.persist(ctx);
        }
        Message::Promise {
            key,
            op,
            ballot: b,
            accepted: slot.accepted.clone(),
        }
    }

    /// Whether a promise made within `promise_lease` to another ballot, whose value has
    /// not arrived yet, holds `b` off. Refusing is always safe; this refusal lets the
    /// promised coordinator finish its phase 2 instead of being preempted by every newcomer
    /// (the duel of Paxos proposers), and a coordinator that died holds nobody off for long.
    pub(super) fn leased(&mut self, now: Time, key: Key, b: Version, held: Version) -> bool {
        let Some(&(ballot, at)) = self.leases.get(&key) else {
            return false;
        };
        let same = self.cmp(ballot, b) == Ordering::Equal;
        let arrived = self.cmp(held, ballot) != Ordering::Less;
        if same || arrived || now.since(at) >= self.promise_lease {
            self.leases.remove(&key);
            return false;
        }
        true
    }

    pub(super) fn on_accept(
        &mut self,
        ctx: &mut Context<'_, Self>,
        key: Key,
        op: u64,
        record: Record,
        write_back: bool,
    ) -> Message {
        let v = record.entry.version;
        self.observe(v);
        let slot = self.slots.get(&key).cloned().unwrap_or_default();
        let held = Self::version_of(&slot.accepted);
        let accepted = Message::Accepted {
            key,
            op,
            version: v,
        };
        let nack = Message::Nack {
            key,
            op,
            refused: v,
            promised: slot.promised.max(held),
        };
        if slot.accepted.is_some() && self.cmp(held, v) != Ordering::Less {
            let same = self.cmp(held, v) == Ordering::Equal;
            if same && slot.accepted.as_ref().is_some_and(|a| !a.entry.intact()) {
                // A corrupt copy of this very version: the proposal repairs it.
                self.install(key, record, slot.promised.max(v), slot.chosen);
                self.persist(ctx);
            }
            // Only this very version counts, for a write-back too: a newer value may have been
            // computed without this one (its phase 1 missed it), and then this one must not
            // be answered as the key's value.
            let _ = write_back;
            return if same { accepted } else { nack };
        }
        if self.cmp(v, slot.promised) == Ordering::Less {
            return nack;
        }
        self.install(key, record, slot.promised.max(v), false);
        self.persist(ctx);
        accepted
    }

    pub(super) fn install(&mut self, key: Key, record: Record, promised: Version, chosen: bool) {
        let slot = Rc::make_mut(self.slots.entry(key).or_default());
        slot.accepted = Some(record);
        slot.promised = promised;
        slot.chosen = chosen;
    }

    /// Installs an entry another replica holds, as a commit or anti-entropy brings it.
    /// Known `chosen`, it is installed whatever was promised (see the module doc). Only
    /// accepted, it is installed as the late arrival of its proposer's Accept would be: only if
    /// it is newer than what is held and not below the promise (a promise made since may rest
    /// on its absence); that is how a value a quorum accepted, whose proposer never sent the
    /// commit (it gave up, or the commit was lost), reaches the replicas that missed it.
    /// Either way an intact copy repairs a corrupt one of its version. Returns whether the
    /// slot changed.
    pub(super) fn maybe_install(&mut self, key: Key, record: Record, chosen: bool) -> bool {
        if !record.entry.intact() {
            return false;
        }
        let v = record.entry.version;
        self.observe(v);
        let slot = self.slots.get(&key).cloned().unwrap_or_default();
        let held = Self::version_of(&slot.accepted);
        let newer = slot.accepted.is_none() || self.cmp(v, held) == Ordering::Greater;
        let repair = slot.accepted.as_ref().is_some_and(|a| !a.entry.intact()) && held == v;
        let promised = slot.promised.max(v);
        if repair {
            self.install(key, record, promised, chosen || slot.chosen);
            return true;
        }
        if chosen {
            if newer {
                self.install(key, record, promised, true);
                return true;
            }
            if held == v && !slot.chosen {
                Rc::make_mut(self.slots.entry(key).or_default()).chosen = true;
                return true;
            }
            return false;
        }
        if !newer || self.cmp(v, slot.promised) == Ordering::Less {
            return false;
        }
        self.install(key, record, promised, false);
        true
    }
}
