//! The seed's store (module doc, "Store"): local copies, serf queries on a miss, and
//! Lamport-stamped user events that drop other nodes' older copies.

use super::invariants::show;
use super::{log10_ceil, Copy, Gossip, Message, Pending, Stamp, Timer, Update};
use crate::contract::{Context, Request};
use crate::ids::NodeId;
use crate::kv::{apply_to_value, Key, Op, OpResult, Value};
use crate::time::Span;

impl Gossip {
    /// serf's default query timeout: `gossip_interval * query_timeout_mult *
    /// ceil(log10(n + 1))`.
    pub fn query_timeout(&self) -> Span {
        let scale = self.params.query_timeout_mult * log10_ceil(self.cluster_size());
        Span(self.params.gossip_interval.as_micros().saturating_mul(scale))
    }

    /// The answer a local copy gives a get.
    fn answer(copy: &Copy) -> OpResult {
        match &copy.value {
            Some(v) => OpResult::Ok {
                value: Some(v.clone()),
            },
            None => OpResult::NotFound,
        }
    }

    /// A client's request: a get from the local copy or a query; a write to the local copy
    /// and a user event.
    pub(super) fn serve(&mut self, ctx: &mut Context<'_, Self>, request: Request) {
        let key = request.op.key();
        match &request.op {
            Op::Txn { .. } => ctx.reply(request.id, OpResult::Unavailable { hint: None }),
            Op::Get { .. } => {
                if let Some(copy) = self.store.get(&key) {
                    ctx.reply(request.id, Self::answer(copy));
                    return;
                }
                let live = self.live_members();
                if self.left || live.is_empty() {
                    ctx.reply(request.id, OpResult::NotFound);
                    return;
                }
                if crate::quorum::refuse_when_full(ctx, self.pending.len(), &request) {
                    return;
                }
                self.next_q += 1;
                let q = self.next_q;
                self.counts.queries += 1;
                let pending = Pending {
                    request: request.id,
                    key,
                };
                self.pending.insert(q, pending);
                for to in live {
                    ctx.send(to, Message::Query { q, key });
                }
                ctx.set_timer(Timer::Query(q), self.query_timeout());
            }
            op => {
                let mut value = self.store.get(&key).and_then(|c| c.value.clone());
                let result = apply_to_value(&mut value, op);
                if matches!(result, OpResult::Ok { .. }) {
                    self.clock += 1;
                    let stamp = (self.clock, self.me);
                    self.store.get_mut().insert(key, Copy { value, stamp });
                    self.written.get_mut().insert(key, stamp);
                    self.enqueue(Update::Invalidate { key, stamp });
                }
                ctx.reply(request.id, result);
            }
        }
    }

    /// Someone asks for `key`: answer if a value is held (cached or written here).
    pub(super) fn on_query(&mut self, ctx: &mut Context<'_, Self>, from: NodeId, q: u64, key: Key) {
        if self.left {
            return;
        }
        if let Some(Copy {
            value: Some(value),
            stamp,
        }) = self.store.get(&key).cloned()
        {
            let reply = Message::QueryResponse {
                q,
                key,
                value,
                stamp,
            };
            ctx.send(from, reply);
        }
    }

    /// The first answer to a query wins and is cached, unless an event already heard is
    /// newer than it.
    pub(super) fn on_query_response(
        &mut self,
        ctx: &mut Context<'_, Self>,
        q: u64,
        key: Key,
        value: Value,
        stamp: Stamp,
    ) {
        self.clock = self.clock.max(stamp.0);
        if !self.pending.contains_key(&q) {
            return;
        }
        if self.invalidated.get(&key).is_some_and(|i| *i > stamp) {
            ctx.note(|| format!("k{key}: answer {} older than an event; ignored", show(stamp)));
            return;
        }
        let Some(p) = self.pending.remove(&q) else {
            return;
        };
        ctx.cancel_timer(Timer::Query(q));
        self.counts.query_hits += 1;
        let local = self.store.get(&key).filter(|c| c.stamp >= stamp).cloned();
        let copy = local.unwrap_or(Copy {
            value: Some(value),
            stamp,
        });
        ctx.reply(p.request, Self::answer(&copy));
        self.store.get_mut().insert(key, copy);
    }

    /// Nobody answered in time: not found (or what a write here put meanwhile).
    pub(super) fn on_query_timeout(&mut self, ctx: &mut Context<'_, Self>, q: u64) {
        let Some(p) = self.pending.remove(&q) else {
            return;
        };
        self.counts.query_misses += 1;
        let answer = self.store.get(&p.key).map_or(OpResult::NotFound, Self::answer);
        ctx.reply(p.request, answer);
    }

    /// A user event: the write `stamp` replaced `key` somewhere; drop an older copy, spread
    /// it on if it is news.
    pub(super) fn on_event(&mut self, ctx: &mut Context<'_, Self>, key: Key, stamp: Stamp) {
        self.clock = self.clock.max(stamp.0);
        if stamp.1 == self.me {
            return;
        }
        let newest = self.invalidated.get(&key).copied();
        if newest.is_some_and(|n| n >= stamp) {
            return;
        }
        self.invalidated.get_mut().insert(key, stamp);
        self.enqueue(Update::Invalidate { key, stamp });
        let Some(copy) = self.store.get(&key) else {
            return;
        };
        let older = copy.stamp < stamp;
        let drop = if self.bugs.unordered_events {
            true
        } else if self.bugs.stale_cache {
            older && copy.stamp.1 == self.me
        } else {
            older
        };
        if drop {
            ctx.note(|| format!("k{key}: dropped, invalidated by {}", show(stamp)));
            self.store.get_mut().remove(&key);
        } else if !older {
            self.counts.events_ignored += 1;
            ctx.note(|| format!("k{key}: event {} older than the copy; ignored", show(stamp)));
        }
    }
}
