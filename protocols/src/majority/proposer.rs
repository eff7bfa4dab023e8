//! The distinguished proposer (Lamport, "Paxos Made Simple", section 2.4): each key's writes
//! are run by one node, so that coordinators of a hot key stop dueling.
//!
//! A key's proposers, in order, are the nodes starting at `key mod N` and going round. A node
//! that receives a write of a key it is not the first unsuspected proposer of forwards it
//! there ([`Message::Forward`]); the proposer acknowledges at once ([`Message::ForwardAck`]),
//! runs the request as its own (queued behind its other writes of the key, so that none of
//! them duel), answers the client itself and tells the receiving node it is done
//! ([`Message::ForwardDone`]). A proposer that does not acknowledge within `forward_timeout` is
//! suspected for `suspect_for` (or until a message of it arrives) and the write goes to the
//! next proposer of the key, or runs here. Safety never rests on there being one proposer:
//! two nodes that suspect differently only duel as coordinators did before, kept apart by
//! promise leases and back-off.

use super::coordinator::{Pending, Phase};
use super::{Majority, Message, Timer};
use crate::contract::Context;
use crate::ids::{NodeId, RequestId};
use crate::kv::{Key, Op, OpResult};
use crate::quorum::Version;
use crate::time::Time;
use std::collections::{BTreeMap, BTreeSet};

impl Majority {
    /// The node that should run writes of `key` now: its first proposer this node does not
    /// suspect (itself, at worst).
    pub(super) fn proposer_of(&self, key: Key, now: Time) -> NodeId {
        let n = self.nodes.len() as u64;
        let first = key % n;
        (0..n)
            .map(|i| self.nodes[((first + i) % n) as usize])
            .find(|node| *node == self.me || !self.suspected(*node, now))
            .unwrap_or(self.me)
    }

    /// The first proposer of `key` other than this node that it does not suspect: where a
    /// damaged node, which runs no proposal, sends a write.
    pub(super) fn healthy_proposer_of(&self, key: Key, now: Time) -> Option<NodeId> {
        let n = self.nodes.len() as u64;
        let first = key % n;
        (0..n)
            .map(|i| self.nodes[((first + i) % n) as usize])
            .find(|node| *node != self.me && !self.suspected(*node, now))
    }

    fn suspected(&self, node: NodeId, now: Time) -> bool {
        self.suspects.get(&node).is_some_and(|until| now < *until)
    }

    /// A new pending request, forwarded from `origin` (node, its request number) if any.
    pub(super) fn new_pending(
        request: RequestId,
        op: Op,
        origin: Option<(NodeId, u64)>,
    ) -> Pending {
        Pending {
            request,
            op,
            // Not under way yet: `route` starts, queues or forwards it.
            phase: Phase::Queued,
            attempt: 0,
            ballot: Version::default(),
            replies: BTreeMap::new(),
            acks: BTreeSet::new(),
            nacks: BTreeSet::new(),
            proposal: None,
            read_result: None,
            rewrite: false,
            results: Vec::new(),
            origin,
        }
    }

    /// Runs write `op` where it belongs: forwarded to its key's proposer, or here (queued
    /// behind this node's write of the key under way, if one is).
    pub(super) fn route(&mut self, ctx: &mut Context<'_, Self>, op: u64) {
        let Some(p) = self.pending.get(&op) else {
            return;
        };
        let key = p.op.key();
        if self.damaged {
            return self.route_damaged(ctx, op);
        }
        let forward = self.distinguished && p.op.is_write() && p.origin.is_none();
        let proposer = self.proposer_of(key, ctx.now());
        if forward && proposer != self.me {
            let p = self.pending.get_mut(&op).expect("pending");
            p.phase = Phase::Forwarded(proposer);
            let msg = Message::Forward {
                op,
                request: p.request,
                operation: p.op.clone(),
            };
            ctx.note(|| format!("op {op}: forwarded to k{key}'s proposer {proposer}"));
            ctx.send(proposer, msg);
            ctx.set_timer(Timer::Retry(op), self.forward_timeout);
        } else if p.op.is_write() && self.key_busy(key) {
            self.pending.get_mut(&op).expect("pending").phase = Phase::Queued;
        } else {
            self.begin(ctx, op);
        }
    }

    /// Routes write `op` from a damaged node, which runs no proposal: to the first healthy
    /// proposer of its key it does not suspect, whatever `distinguished_proposer` says; with
    /// none left, it stays silent until its deadline (never "unavailable", see
    /// `on_request`).
    pub(super) fn route_damaged(&mut self, ctx: &mut Context<'_, Self>, op: u64) {
        let Some(p) = self.pending.get(&op) else {
            return;
        };
        debug_assert!(p.op.is_write() && p.origin.is_none(), "only its clients' writes");
        let key = p.op.key();
        let Some(proposer) = self.healthy_proposer_of(key, ctx.now()) else {
            self.pending.get_mut(&op).expect("pending").phase = Phase::Queued;
            return ctx.note(|| format!("op {op}: damaged and every proposer suspected; silent"));
        };
        let p = self.pending.get_mut(&op).expect("pending");
        p.phase = Phase::Forwarded(proposer);
        let msg = Message::Forward {
            op,
            request: p.request,
            operation: p.op.clone(),
        };
        ctx.note(|| format!("op {op}: damaged, forwarded to k{key}'s proposer {proposer}"));
        ctx.send(proposer, msg);
        ctx.set_timer(Timer::Retry(op), self.forward_timeout);
    }

    /// A forwarded write was not acknowledged in time: suspect its proposer, try the next.
    pub(super) fn forward_timed_out(&mut self, ctx: &mut Context<'_, Self>, op: u64, to: NodeId) {
        let until = ctx.now() + self.suspect_for;
        self.suspects.insert(to, until);
        ctx.note(|| format!("op {op}: proposer {to} silent; suspected"));
        self.route(ctx, op);
    }

    /// Messages of the distinguished proposer; anything from a node clears its suspicion.
    pub(super) fn on_proposer_message(
        &mut self,
        ctx: &mut Context<'_, Self>,
        from: NodeId,
        msg: Message,
    ) {
        match msg {
            Message::Forward {
                op,
                request,
                operation,
            } => {
                ctx.send(from, Message::ForwardAck { op, request });
                let origin = Some((from, op));
                if self.pending.values().any(|p| p.origin == origin) {
                    return; // a duplicate of a forward already under way
                }
                if self.pending.len() >= crate::quorum::PENDING_MAX {
                    return ctx.note(|| format!("{request}: too many requests pending; silent"));
                }
                self.next_op += 1;
                let mine = self.next_op;
                let pending = Self::new_pending(request, operation, origin);
                self.pending.insert(mine, pending);
                ctx.set_timer(Timer::Deadline(mine), self.request_timeout);
                self.route(ctx, mine);
            }
            Message::ForwardAck { op, request } => {
                let waiting = self
                    .pending
                    .get(&op)
                    .is_some_and(|p| p.request == request && p.phase == Phase::Forwarded(from));
                if waiting {
                    // The proposer has it: wait for its answer (or the deadline).
                    ctx.cancel_timer(Timer::Retry(op));
                }
            }
            // A number of an earlier incarnation may be in use again: check the request.
            Message::ForwardDone { op, request }
                if self.pending.get(&op).is_some_and(|p| p.request == request) =>
            {
                let p = self.pending.remove(&op).expect("pending");
                ctx.cancel_timer(Timer::Deadline(op));
                ctx.cancel_timer(Timer::Retry(op));
                self.maybe_start_queued(ctx, p.op.key());
            }
            _ => {}
        }
    }

    /// Answers the client. A proposer answers a forwarded request itself (a reply reaches
    /// the client however it was routed) and tells the node it came from that it is done, so
    /// that it stops waiting; a lost notice only leaves that node waiting until its deadline.
    pub(super) fn deliver_answer(
        &mut self,
        ctx: &mut Context<'_, Self>,
        p: &Pending,
        result: OpResult,
    ) {
        ctx.reply(p.request, result);
        if let Some((node, op)) = p.origin {
            let request = p.request;
            ctx.send(node, Message::ForwardDone { op, request });
        }
    }
}
