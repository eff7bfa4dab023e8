//! Joins and leaves (module doc, "Joins and leaves"): the seed's join protocol, step by step
//! (NEW, wait while any node is PENDING, the first NEW node by hostname goes first, agree on
//! the predicted ring, PENDING, copy the keys owned and the backups, READY), a graceful
//! leave, and the gossip of members (section 4.8).

use super::ring::{Member, Ring};
use super::versions::Versioned;
use super::{Dynamo, Message, Params, Timer};
use crate::contract::{Context, Membership};
use crate::ids::NodeId;
use crate::time::Span;
use crate::kv::Key;
use std::collections::{BTreeMap, BTreeSet};

/// Where this node is in a join or a leave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Join {
    /// Nothing in progress (not joining yet, waiting a random time, or done).
    Idle,
    /// Step 2: every node's state, as it answered.
    Query {
        replies: BTreeMap<NodeId, (Option<Member>, bool)>,
    },
    /// Step 4: the predicted rings, against this node's own.
    Predict {
        mine: Vec<NodeId>,
        replies: BTreeMap<NodeId, Vec<NodeId>>,
    },
    /// Step 4, again: the nodes that added this one.
    Add { acks: BTreeSet<NodeId> },
    /// Step 5: the members whose keys are still to come.
    Copy { awaiting: BTreeSet<NodeId> },
    /// A leave: the replicas whose acknowledgement of the push is still to come.
    Leave { awaiting: BTreeSet<NodeId> },
}

fn ms(t: crate::time::Time) -> u64 {
    t.as_micros() / 1000
}

impl Dynamo {
    /// Arms the join (a NEW node, from `join_after`; a PENDING one resumes its copy) and the
    /// leave.
    pub(super) fn arm_membership(&mut self, ctx: &mut Context<'_, Self>, params: &Params) {
        match self.state() {
            // A joiner the engine started (a `join` fault) asks at once.
            None if self.joiner && self.dynamic => ctx.set_timer(Timer::Join, Span::millis(1)),
            None if self.joiner => ctx.set_timer(Timer::Join, params.join_after),
            Some(Member::Pending) => ctx.set_timer(Timer::Join, self.join_wait),
            _ => {}
        }
        if self.leaver == Some(self.me) && self.state() != Some(Member::Left) {
            ctx.set_timer(Timer::Leave, params.leave_at);
        }
    }

    /// The members of this node's view that are not LEFT, with `joiner`, ascending: the
    /// predicted ring of step 4.
    fn predicted(&self, joiner: NodeId) -> Vec<NodeId> {
        let mut ring: Vec<NodeId> = self
            .members
            .iter()
            .filter(|(_, s)| **s != Member::Left)
            .map(|(n, _)| *n)
            .collect();
        if !ring.contains(&joiner) {
            ring.push(joiner);
        }
        ring.sort_unstable();
        ring
    }

    pub(super) fn on_join_timer(&mut self, ctx: &mut Context<'_, Self>) {
        match self.state() {
            Some(Member::Pending) => self.start_copy(ctx),
            Some(_) => self.join = Join::Idle,
            None => self.start_query(ctx),
        }
    }

    /// Step 2: ask every node its state; the timer restarts the step if answers are missing.
    fn start_query(&mut self, ctx: &mut Context<'_, Self>) {
        self.join = Join::Query {
            replies: BTreeMap::new(),
        };
        for &peer in &self.peers {
            ctx.send(peer, Message::JoinStatus);
        }
        ctx.set_timer(Timer::Join, self.request_timeout);
    }

    /// Waits a random time (`join_wait`), then goes back to step 2.
    fn wait_and_retry(&mut self, ctx: &mut Context<'_, Self>, why: &str) {
        ctx.note(|| format!("join: {why}; waiting"));
        self.join = Join::Idle;
        ctx.set_timer(Timer::Join, self.join_wait);
    }

    /// Steps 2 and 3, once every node answered: wait while any is PENDING, or while a NEW
    /// node comes first by hostname; else step 4.
    fn decide_query(&mut self, ctx: &mut Context<'_, Self>) {
        let Join::Query { replies } = &self.join else {
            return;
        };
        if replies.len() < self.peers.len() {
            return;
        }
        let pending = replies.values().any(|(s, _)| *s == Some(Member::Pending));
        let first_new = replies
            .iter()
            .filter(|(_, (_, new))| *new)
            .map(|(n, _)| *n)
            .chain(std::iter::once(self.me))
            .min();
        if !self.bugs.skip_pending_check {
            if pending {
                return self.wait_and_retry(ctx, "a node is PENDING");
            }
            if first_new != Some(self.me) {
                return self.wait_and_retry(ctx, "another NEW node goes first");
            }
        }
        let mine = self.predicted(self.me);
        self.join = Join::Predict {
            mine,
            replies: BTreeMap::new(),
        };
        for &peer in &self.peers {
            ctx.send(peer, Message::Predict { joiner: self.me });
        }
        ctx.set_timer(Timer::Join, self.request_timeout);
    }

    /// Step 4: once every prediction is in, join if they all agree with this node's own.
    fn decide_predictions(&mut self, ctx: &mut Context<'_, Self>) {
        let Join::Predict { mine, replies } = &self.join else {
            return;
        };
        if replies.len() < self.peers.len() {
            return;
        }
        if replies.values().any(|r| r != mine) {
            return self.wait_and_retry(ctx, "predicted rings differ");
        }
        self.join = Join::Add {
            acks: BTreeSet::new(),
        };
        for &peer in &self.peers {
            ctx.send(peer, Message::Add { joiner: self.me });
        }
        ctx.set_timer(Timer::Join, self.request_timeout);
    }

    /// Step 5: ask every READY member for the keys this node now owns and their backups.
    fn start_copy(&mut self, ctx: &mut Context<'_, Self>) {
        let awaiting: BTreeSet<NodeId> = match &self.join {
            Join::Copy { awaiting } => awaiting.clone(),
            _ => self
                .members
                .iter()
                .filter(|(n, s)| **s == Member::Ready && **n != self.me)
                .map(|(n, _)| *n)
                .collect(),
        };
        if awaiting.is_empty() {
            return self.become_ready(ctx);
        }
        for &from in &awaiting {
            ctx.send(from, Message::TransferRequest);
        }
        self.join = Join::Copy { awaiting };
        ctx.set_timer(Timer::Join, self.request_timeout);
    }

    /// Step 6: READY, announced to every node.
    fn become_ready(&mut self, ctx: &mut Context<'_, Self>) {
        self.members.insert(self.me, Member::Ready);
        self.milestones.1 = ms(self.now);
        self.rebuild_rings();
        self.persist(ctx);
        self.join = Join::Idle;
        ctx.cancel_timer(Timer::Join);
        ctx.note(|| "join: READY".to_string());
        for &peer in &self.peers {
            let msg = Message::Announce {
                node: self.me,
                state: Member::Ready,
            };
            ctx.send(peer, msg);
        }
    }

    /// The versions `to` must hold with `ring` (its first N of each key's preference list).
    fn owed_to(&self, to: NodeId, ring: &Ring) -> Vec<(Key, Versioned)> {
        let n = self.n;
        let owed = |k: &Key| ring.preference(*k).iter().take(n).any(|x| *x == to);
        let held = self.entries.iter().filter(|(k, _)| owed(k));
        held.flat_map(|(k, vs)| vs.iter().map(|v| (*k, v.clone())))
            .collect()
    }

    pub(super) fn on_membership(&mut self, ctx: &mut Context<'_, Self>, from: NodeId, msg: Message) {
        match msg {
            Message::JoinStatus => {
                let new = self.joiner && self.state().is_none();
                let state = self.state();
                ctx.send(from, Message::Status { state, new });
            }
            Message::Status { state, new } => {
                if self.dynamic && self.state().is_none() {
                    self.learn_member(from, state);
                }
                if let Join::Query { replies } = &mut self.join {
                    replies.insert(from, (state, new));
                    self.decide_query(ctx);
                }
            }
            Message::Predict { joiner } => {
                let ring = self.predicted(joiner);
                ctx.send(from, Message::Predicted { ring });
            }
            Message::Predicted { ring } => {
                if let Join::Predict { replies, .. } = &mut self.join {
                    replies.insert(from, ring);
                    self.decide_predictions(ctx);
                }
            }
            Message::Add { joiner } => {
                if let std::collections::btree_map::Entry::Vacant(e) = self.members.entry(joiner) {
                    e.insert(Member::Pending);
                    self.rebuild_rings();
                    self.persist(ctx);
                    ctx.note(|| format!("ring: {joiner} added, PENDING"));
                }
                ctx.send(from, Message::Added);
            }
            Message::Added => self.on_added(ctx, from),
            Message::TransferRequest => {
                let serving = self.members.iter().filter(|(_, s)| **s != Member::Left);
                let with: Vec<NodeId> = serving.map(|(n, _)| *n).chain([from]).collect();
                let entries = self.owed_to(from, &Ring::new(with, self.tokens));
                ctx.send(from, Message::Transfer { entries, ack: false });
            }
            Message::Transfer { entries, ack } => self.on_transfer(ctx, from, entries, ack),
            Message::TransferAck => {
                if let Join::Leave { awaiting } = &mut self.join {
                    awaiting.remove(&from);
                    if awaiting.is_empty() {
                        self.finish_leave(ctx);
                    }
                }
            }
            Message::Announce { node, state } => self.merge_members(ctx, &[(node, state)]),
            other => ctx.note(|| format!("ignored {other:?} from {from}")),
        }
    }

    fn on_added(&mut self, ctx: &mut Context<'_, Self>, from: NodeId) {
        let Join::Add { acks } = &mut self.join else {
            return;
        };
        acks.insert(from);
        if acks.len() < self.peers.len() {
            return;
        }
        self.members.insert(self.me, Member::Pending);
        self.milestones.0 = ms(self.now);
        self.rebuild_rings();
        self.persist(ctx);
        ctx.note(|| "join: every node added us; PENDING".to_string());
        self.join = Join::Idle;
        self.start_copy(ctx);
    }

    fn on_transfer(
        &mut self,
        ctx: &mut Context<'_, Self>,
        from: NodeId,
        entries: Vec<(Key, Versioned)>,
        ack: bool,
    ) {
        let mut keys: Vec<Key> = entries.iter().map(|(k, _)| *k).collect();
        keys.dedup();
        let mut changed = false;
        for (key, v) in entries {
            changed |= self.install(key, v);
        }
        self.milestones.2 += keys.len() as u64;
        if changed {
            self.persist(ctx);
        }
        if ack {
            ctx.send(from, Message::TransferAck);
        }
        if let Join::Copy { awaiting } = &mut self.join {
            awaiting.remove(&from);
            if awaiting.is_empty() {
                self.become_ready(ctx);
            }
        }
    }

    /// A leave: push every version held to the key's replicas in the ring without this
    /// node; LEFT once they all acknowledged. The timer retries.
    pub(super) fn on_leave_timer(&mut self, ctx: &mut Context<'_, Self>) {
        match self.state() {
            Some(Member::Left) => return,
            Some(Member::Ready) => {}
            _ => return ctx.set_timer(Timer::Leave, self.join_wait),
        }
        let rest = self.members.iter().filter(|(n, s)| **s == Member::Ready && **n != self.me);
        let ring = Ring::new(rest.map(|(n, _)| *n).collect::<Vec<_>>(), self.tokens);
        let mut awaiting = BTreeSet::new();
        for &peer in &self.peers {
            let entries = self.owed_to(peer, &ring);
            if !entries.is_empty() {
                awaiting.insert(peer);
                ctx.send(peer, Message::Transfer { entries, ack: true });
            }
        }
        if awaiting.is_empty() {
            return self.finish_leave(ctx);
        }
        self.join = Join::Leave { awaiting };
        ctx.set_timer(Timer::Leave, self.request_timeout);
    }

    fn finish_leave(&mut self, ctx: &mut Context<'_, Self>) {
        self.members.insert(self.me, Member::Left);
        self.milestones.1 = ms(self.now);
        self.rebuild_rings();
        self.persist(ctx);
        self.join = Join::Idle;
        ctx.cancel_timer(Timer::Leave);
        ctx.note(|| "leave: every replica took our keys; LEFT".to_string());
        for &peer in &self.peers {
            let msg = Message::Announce {
                node: self.me,
                state: Member::Left,
            };
            ctx.send(peer, msg);
        }
    }

    /// A joiner the engine started takes each node's own answer to step 2 as its state in
    /// the ring: its hosts list named every node in the cluster, READY or not.
    fn learn_member(&mut self, node: NodeId, state: Option<Member>) {
        let changed = match state {
            Some(s) => self.members.insert(node, s) != Some(s),
            None => self.members.remove(&node).is_some(),
        };
        if changed {
            self.rebuild_rings();
        }
    }

    /// A change the engine made to the cluster (a scenario's `join`, `leave` or `remove`):
    /// a joined node is a peer to ask and answer (it follows the join protocol itself); a
    /// leave starts this node's decommission; a removed node is LEFT for good (Dynamo
    /// section 4.2: an administrator removes a node explicitly) and no longer a peer.
    pub(super) fn membership_changed(&mut self, ctx: &mut Context<'_, Self>, change: Membership) {
        match change {
            Membership::Joined(node) => {
                if node != self.me && !self.peers.contains(&node) {
                    self.peers.push(node);
                    self.peers.sort_unstable();
                }
            }
            Membership::Leave => {
                self.leaver = Some(self.me);
                if self.state() != Some(Member::Left) {
                    self.on_leave_timer(ctx);
                }
            }
            Membership::Removed(node) => {
                self.peers.retain(|p| *p != node);
                ctx.note(|| format!("ring: {node} removed"));
                self.merge_members(ctx, &[(node, Member::Left)]);
                // A step that waited for its answer goes on without it.
                let done = match &mut self.join {
                    Join::Copy { awaiting } | Join::Leave { awaiting } => {
                        awaiting.remove(&node) && awaiting.is_empty()
                    }
                    _ => false,
                };
                match &mut self.join {
                    Join::Query { replies } => {
                        replies.remove(&node);
                        self.decide_query(ctx);
                    }
                    Join::Predict { replies, .. } => {
                        replies.remove(&node);
                        self.decide_predictions(ctx);
                    }
                    Join::Copy { .. } if done => self.become_ready(ctx),
                    Join::Leave { .. } if done => self.finish_leave(ctx),
                    _ => {}
                }
            }
        }
    }

    /// Merges gossiped members: a node's state only moves forward (PENDING, READY, LEFT).
    pub(super) fn merge_members(&mut self, ctx: &mut Context<'_, Self>, seen: &[(NodeId, Member)]) {
        let mut changed = false;
        for &(node, state) in seen {
            let cur = self.members.get(&node).copied();
            if cur.is_none_or(|c| state > c) {
                self.members.insert(node, state);
                changed = true;
                if node == self.me && state == Member::Pending {
                    ctx.set_timer(Timer::Join, self.join_wait);
                }
            }
        }
        if changed {
            self.rebuild_rings();
            self.persist(ctx);
        }
    }
}
