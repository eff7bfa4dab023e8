//! SWIM membership as memberlist runs it (module doc, "Membership"): the protocol period's
//! probe, ping-req, suspicion, refutation by incarnation, piggybacked dissemination with a
//! bounded retransmit count, joins by push-pull through a known node, serf's reconnect, and
//! graceful leave.

use super::{log10_ceil, suspicion_timeout, Gossip, Member, Message, Probe, Queued, Status};
use super::{Timer, Update};
use crate::contract::Context;
use crate::ids::NodeId;

impl Gossip {
    /// Members in `statuses`, ascending.
    fn members_in(&self, statuses: &[Status]) -> Vec<NodeId> {
        let all = self.members.iter();
        all.filter(|(_, m)| statuses.contains(&m.status))
            .map(|(n, _)| *n)
            .collect()
    }

    /// Members this node probes, queries and gossips to: alive or suspect.
    pub(super) fn live_members(&self) -> Vec<NodeId> {
        self.members_in(&[Status::Alive, Status::Suspect])
    }

    /// `count` distinct members of `from` drawn at random.
    fn pick(ctx: &mut Context<'_, Self>, mut from: Vec<NodeId>, count: usize) -> Vec<NodeId> {
        let mut chosen = Vec::new();
        while chosen.len() < count && !from.is_empty() {
            let i = ctx.random_below(from.len() as u64) as usize;
            chosen.push(from.swap_remove(i));
        }
        chosen
    }

    /// Queues `update` for dissemination, replacing older news of the same member or key.
    pub(super) fn enqueue(&mut self, update: Update) {
        let same = |q: &Queued| match (&q.update, &update) {
            (Update::Invalidate { key: a, .. }, Update::Invalidate { key: b, .. }) => a == b,
            (a, b) => a.member().is_some() && a.member() == b.member(),
        };
        self.queue.retain(|q| !same(q));
        self.queue.push(Queued { update, sent: 0 });
    }

    /// The updates to piggyback on one message, at most `max_piggyback`: membership updates
    /// before the store's invalidations (memberlist fills a packet from its own broadcast
    /// queue first and gives the delegate, serf's user events, only the room left), then
    /// the least sent first, then the newest first (memberlist's `limitedBroadcast` order).
    /// Each is dropped once sent `retransmit_mult * ceil(log10(n + 1))` times (SWIM section
    /// 4.1, lambda log n).
    ///
    /// Oldest-first among the unsent starved refutations behind a write-heavy workload: on
    /// swarm.toml seed 763 a node's `alive` sat behind thousands of invalidations for three
    /// seconds and its accuser declared it dead.
    pub(super) fn take_updates(&mut self) -> Vec<Update> {
        let limit = self.params.retransmit_mult * log10_ceil(self.cluster_size());
        let queue = &self.queue;
        // The queue is in the order updates were queued: a larger index is newer. Keys are
        // distinct, so selecting the first few does not depend on the sort's stability.
        let rank = |i: &usize| {
            let q = &queue[*i];
            (q.update.member().is_none(), q.sent, std::cmp::Reverse(*i))
        };
        let mut order: Vec<usize> = (0..queue.len()).collect();
        let take = (self.params.max_piggyback.max(1) as usize).min(order.len());
        if take < order.len() {
            order.select_nth_unstable_by_key(take, rank);
            order.truncate(take);
        }
        order.sort_unstable_by_key(rank);
        let mut out = Vec::with_capacity(order.len());
        for i in order {
            self.queue[i].sent += 1;
            out.push(self.queue[i].update.clone());
        }
        self.queue.retain(|q| q.sent < limit);
        out
    }

    /// This node's full state for a push-pull: itself, then its members.
    fn state(&self) -> Vec<(NodeId, Status, u64)> {
        let me = if self.left { Status::Left } else { Status::Alive };
        let mut all = vec![(self.me, me, self.incarnation)];
        let others = self.members.iter();
        all.extend(others.map(|(n, m)| (*n, m.status, m.incarnation)));
        all
    }

    /// Applies piggybacked updates.
    fn apply_all(&mut self, ctx: &mut Context<'_, Self>, updates: Vec<Update>) {
        for u in updates {
            self.apply(ctx, u);
        }
    }

    /// Applies one update (SWIM section 4.2's overriding rules), queueing it on if it was
    /// news.
    pub(super) fn apply(&mut self, ctx: &mut Context<'_, Self>, update: Update) {
        let now = ctx.now();
        let (node, incarnation, status) = match update {
            Update::Invalidate { key, stamp } => return self.on_event(ctx, key, stamp),
            Update::Alive { node, incarnation } => (node, incarnation, Status::Alive),
            Update::Suspect { node, incarnation } => (node, incarnation, Status::Suspect),
            Update::Dead { node, incarnation } => (node, incarnation, Status::Dead),
            Update::Left { node, incarnation } => (node, incarnation, Status::Left),
        };
        if node == self.me {
            match status {
                Status::Alive => self.incarnation = self.incarnation.max(incarnation),
                _ => self.refute(ctx, incarnation),
            }
            return;
        }
        let news = match self.members.get(&node) {
            None => status != Status::Suspect,
            Some(m) => match status {
                Status::Alive => incarnation > m.incarnation,
                Status::Suspect => {
                    (m.status == Status::Alive && incarnation >= m.incarnation)
                        || (m.status == Status::Suspect && incarnation > m.incarnation)
                }
                Status::Dead | Status::Left => {
                    !matches!(m.status, Status::Dead | Status::Left)
                        && incarnation >= m.incarnation
                }
            },
        };
        if !news {
            return;
        }
        ctx.note(|| format!("{node} {status:?} at incarnation {incarnation}"));
        let member = Member {
            status,
            incarnation,
            since: now,
        };
        self.members.insert(node, member);
        if status == Status::Suspect {
            let n = self.cluster_size();
            let timeout = suspicion_timeout(self.params.suspicion_mult, n, self.params.probe_interval);
            ctx.set_timer(Timer::Suspicion(node, incarnation), timeout);
        }
        self.enqueue(update_of(node, status, incarnation));
    }

    /// Heard itself suspected, dead or left at `incarnation`: bump past it and spread
    /// `alive` (SWIM section 4.2); the planted bug answers at the same incarnation.
    fn refute(&mut self, ctx: &mut Context<'_, Self>, incarnation: u64) {
        if self.left {
            return;
        }
        if incarnation < self.incarnation {
            // An accusation older than this node's incarnation: the accuser holds an old
            // view (it restarted, and starts from incarnation 0 for everyone, where serf
            // would push-pull the current one). Restating `alive` at the current
            // incarnation overrides it there without a bump.
            let (me, inc) = (self.me, self.incarnation);
            let restated = Update::Alive {
                node: me,
                incarnation: inc,
            };
            if !self.queue.iter().any(|q| q.update == restated && q.sent == 0) {
                ctx.note(|| format!("stale accusation at {incarnation}: alive at {inc}"));
                self.enqueue(restated);
            }
            return;
        }
        self.accused = Some(self.accused.map_or(incarnation, |a| a.max(incarnation)));
        self.incarnation = if self.bugs.no_bump {
            incarnation
        } else {
            incarnation + 1
        };
        self.counts.refutations += 1;
        let me = self.me;
        let inc = self.incarnation;
        ctx.note(|| format!("refuting: alive at incarnation {inc}"));
        self.enqueue(Update::Alive {
            node: me,
            incarnation: inc,
        });
    }

    /// A membership message arrived.
    pub(super) fn on_membership(&mut self, ctx: &mut Context<'_, Self>, from: NodeId, msg: Message) {
        if self.left {
            ctx.note(|| "left: ignored".to_string());
            return;
        }
        match msg {
            Message::Ping { seq, updates } => {
                self.apply_all(ctx, updates);
                let mut hints = Vec::new();
                match self.members.get(&from).copied() {
                    // Tell a member we hold dead or suspect, so that it refutes.
                    Some(m) if m.status != Status::Alive => {
                        hints.push(update_of(from, m.status, m.incarnation));
                    }
                    None if self.joined => {
                        let alive = Update::Alive {
                            node: from,
                            incarnation: 0,
                        };
                        self.apply(ctx, alive);
                    }
                    _ => {}
                }
                hints.extend(self.take_updates());
                let me = self.me;
                ctx.send(
                    from,
                    Message::Ack {
                        seq,
                        of: me,
                        updates: hints,
                    },
                );
            }
            Message::Ack { seq, of, updates } => {
                self.apply_all(ctx, updates);
                if let Some(p) = &mut self.probe {
                    if p.seq == seq && p.target == of {
                        p.acked = true;
                    }
                }
            }
            Message::PingReq {
                seq,
                target,
                updates,
            } => {
                self.apply_all(ctx, updates);
                let updates = self.take_updates();
                let origin = from;
                ctx.send(
                    target,
                    Message::IndirectPing {
                        seq,
                        origin,
                        updates,
                    },
                );
            }
            Message::IndirectPing {
                seq,
                origin,
                updates,
            } => {
                self.apply_all(ctx, updates);
                ctx.send(from, Message::IndirectAck { seq, origin });
            }
            Message::IndirectAck { seq, origin } => {
                let updates = self.take_updates();
                ctx.send(
                    origin,
                    Message::Ack {
                        seq,
                        of: from,
                        updates,
                    },
                );
            }
            Message::Gossip { updates } => self.apply_all(ctx, updates),
            Message::PushPull { members, reply } => {
                if reply {
                    let state = self.state();
                    ctx.send(
                        from,
                        Message::PushPull {
                            members: state,
                            reply: false,
                        },
                    );
                }
                if !self.joined {
                    ctx.note(|| format!("joined through {from}"));
                    self.joined = true;
                    ctx.cancel_timer(Timer::Join);
                }
                for (node, status, incarnation) in members {
                    // A remote suspicion arrives as alive-at-that-incarnation for members
                    // we do not know (memberlist merges it so).
                    let status = match (status, self.members.contains_key(&node)) {
                        (Status::Suspect, false) => Status::Alive,
                        (s, _) => s,
                    };
                    self.apply(ctx, update_of(node, status, incarnation));
                }
            }
            Message::Query { .. } | Message::QueryResponse { .. } => {}
        }
    }

    /// A membership timer fired.
    pub(super) fn on_membership_timer(&mut self, ctx: &mut Context<'_, Self>, timer: Timer) {
        match timer {
            Timer::Probe => {
                ctx.set_timer(Timer::Probe, self.params.probe_interval);
                if self.joined && !self.left {
                    self.end_probe(ctx);
                    self.start_probe(ctx);
                }
            }
            Timer::ProbeTimeout(seq) => self.on_probe_timeout(ctx, seq),
            Timer::Suspicion(node, incarnation) => {
                let Some(m) = self.members.get(&node).copied() else {
                    return;
                };
                if m.status == Status::Suspect && m.incarnation == incarnation && !self.left {
                    self.counts.deaths += 1;
                    // The evidence: the suspicion, and the period whose probe failed before
                    // it (or the period and the gossip that brought a peer's suspicion).
                    let period = self.params.probe_interval;
                    let evidence = ctx.now().since(m.since) + period + period;
                    ctx.declare_dead(node, evidence);
                    let dead = Update::Dead { node, incarnation };
                    self.apply(ctx, dead);
                }
            }
            Timer::Gossip => {
                ctx.set_timer(Timer::Gossip, self.params.gossip_interval);
                if !self.joined || self.left || self.queue.is_empty() {
                    return;
                }
                let live = self.live_members();
                for to in Self::pick(ctx, live, self.params.gossip_nodes as usize) {
                    let updates = self.take_updates();
                    if updates.is_empty() {
                        break;
                    }
                    ctx.send(to, Message::Gossip { updates });
                }
            }
            Timer::Join => {
                if self.joined || self.left {
                    return;
                }
                let state = vec![(self.me, Status::Alive, self.incarnation)];
                ctx.note(|| format!("joining through {}", self.seed));
                ctx.send(
                    self.seed,
                    Message::PushPull {
                        members: state,
                        reply: true,
                    },
                );
                ctx.set_timer(Timer::Join, self.params.probe_interval);
            }
            Timer::Reconnect => {
                ctx.set_timer(Timer::Reconnect, self.params.reconnect_interval);
                if !self.joined || self.left {
                    return;
                }
                let dead = self.members_in(&[Status::Dead]);
                if let Some(to) = Self::pick(ctx, dead, 1).first().copied() {
                    let state = self.state();
                    ctx.send(
                        to,
                        Message::PushPull {
                            members: state,
                            reply: true,
                        },
                    );
                }
            }
            Timer::Leave => {
                if self.left {
                    return;
                }
                let left = Update::Left {
                    node: self.me,
                    incarnation: self.incarnation,
                };
                for to in self.live_members() {
                    let updates = vec![left.clone()];
                    ctx.send(to, Message::Gossip { updates });
                }
                ctx.note(|| "left the cluster".to_string());
                self.left = true;
                self.probe = None;
            }
            Timer::Query(_) => {}
        }
    }

    /// The period ended: a probe never acked, directly or indirectly, makes its target
    /// suspect (SWIM section 4.2).
    fn end_probe(&mut self, ctx: &mut Context<'_, Self>) {
        let Some(p) = self.probe.take() else {
            return;
        };
        if p.acked {
            return;
        }
        let Some(m) = self.members.get(&p.target).copied() else {
            return;
        };
        if m.status != Status::Alive {
            return;
        }
        self.counts.suspicions += 1;
        let suspect = Update::Suspect {
            node: p.target,
            incarnation: m.incarnation,
        };
        self.apply(ctx, suspect);
    }

    /// Pings the next member of the round-robin order (SWIM section 4.3), reshuffling the
    /// order after each full pass.
    fn start_probe(&mut self, ctx: &mut Context<'_, Self>) {
        let live = self.live_members();
        if live.is_empty() {
            return;
        }
        let target = loop {
            if self.probe_next >= self.probe_order.len() {
                let count = live.len();
                self.probe_order = Self::pick(ctx, live.clone(), count);
                self.probe_next = 0;
            }
            let t = self.probe_order[self.probe_next];
            self.probe_next += 1;
            if live.contains(&t) {
                break t;
            }
        };
        self.seq += 1;
        let seq = self.seq;
        self.probe = Some(Probe {
            seq,
            target,
            acked: false,
        });
        self.counts.probes += 1;
        let updates = self.take_updates();
        ctx.send(target, Message::Ping { seq, updates });
        ctx.set_timer(Timer::ProbeTimeout(seq), self.params.probe_timeout);
    }

    /// No direct ack in time: ask k other members to probe (SWIM section 3.1, ping-req).
    fn on_probe_timeout(&mut self, ctx: &mut Context<'_, Self>, seq: u64) {
        let Some(p) = self.probe else {
            return;
        };
        if p.seq != seq || p.acked || self.left || self.bugs.no_indirect {
            return;
        }
        let helpers: Vec<NodeId> = self
            .members_in(&[Status::Alive])
            .into_iter()
            .filter(|n| *n != p.target)
            .collect();
        let chosen = Self::pick(ctx, helpers, self.params.indirect_checks as usize);
        for &to in &chosen {
            let updates = self.take_updates();
            let target = p.target;
            ctx.send(
                to,
                Message::PingReq {
                    seq,
                    target,
                    updates,
                },
            );
        }
        self.counts.indirect += chosen.len() as u64;
    }
}

/// The update saying `node` is in `status` at `incarnation`.
pub(super) fn update_of(node: NodeId, status: Status, incarnation: u64) -> Update {
    match status {
        Status::Alive => Update::Alive { node, incarnation },
        Status::Suspect => Update::Suspect { node, incarnation },
        Status::Dead => Update::Dead { node, incarnation },
        Status::Left => Update::Left { node, incarnation },
    }
}
