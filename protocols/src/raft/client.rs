//! Client requests (thesis 6.3), reads (thesis 6.4) and membership changes (thesis 4).

use super::log::Command;
use super::{PendingRead, Proxy, Raft, Role};
use crate::contract::{Context, Membership, Operator};
use crate::ids::{NodeId, RequestId};
use crate::kv::{Op, OpResult};
use crate::time::Time;

/// How many maximum election timeouts a follower keeps re-sending an unanswered proxy.
const PROXY_FOR: u64 = 4;

impl Raft {
    /// A client's request: the leader appends it (or, for a read, confirms a ReadIndex).
    /// Another node proxies it to the leader it knows (thesis 6.2), which answers the
    /// client: a client pinned to one node is served as well as one that follows redirects.
    /// Without a leader to proxy to (or for a request proxied already, which a stale leader
    /// received), a read served outside the log is answered `NotLeader`, and a write gets
    /// no answer at all: the client may be retrying one that timed out while in some log,
    /// and `NotLeader` would promise it never applies.
    pub(super) fn on_client_request(
        &mut self,
        ctx: &mut Context<'_, Self>,
        (id, op): (RequestId, Op),
        proxied: bool,
    ) {
        let logged = op.is_write() || !(self.settings.read_index || self.settings.lease_reads);
        if self.role != Role::Leader {
            let hint = self.leader_hint;
            return match hint {
                Some(leader) if !proxied => {
                    let now = ctx.monotonic();
                    let proxy = Proxy {
                        op: op.clone(),
                        first: now,
                        last: now,
                    };
                    self.proxies.insert(id, proxy);
                    self.send(ctx, leader, super::Message::ClientRequest { id, op })
                }
                _ if !logged => self.reply(ctx, id, OpResult::NotLeader { hint }),
                _ => ctx.note(|| format!("{id}: no leader to proxy to; not answered")),
            };
        }
        if !self.bugs.apply_retries_twice {
            // A retry of a request already applied: its remembered result (thesis 6.3).
            if let Some(result) = self.sm.remembered(id).cloned() {
                ctx.note(|| format!("{id} was applied already: remembered result"));
                return self.reply(ctx, id, result);
            }
            if self.sm.is_stale(id) {
                ctx.note(|| format!("{id} is older than its session's latest: ignored"));
                return;
            }
        }
        let leader = self.leader.as_ref().expect("a leader has leader state");
        if let Some(index) = leader.pending_ids.get(&id) {
            let index = *index;
            ctx.note(|| format!("{id} is in the log at {index} already: its answer will come"));
            return;
        }
        if !logged {
            return self.read(ctx, id, op);
        }
        let index = self.propose(ctx, Command::Client { id, op });
        let leader = self
            .leader
            .as_mut()
            .expect("still leader: appending changes nothing");
        leader.pending.insert(index, id);
        leader.pending_ids.insert(id, index);
        // A single voter commits at once.
        self.maybe_commit(ctx);
    }

    /// A heartbeat of `leader` arrived, naming the proxied requests it `answered`: they are
    /// done; a proxy unanswered for a minimum election timeout is sent again (to this
    /// leader: the old one may be gone), for at most [`PROXY_FOR`] election timeouts. A lost
    /// proxy otherwise cost the client a whole timeout, and on a lossy network its every
    /// attempt (`scenarios/gossip-churn.toml` seed 21: three attempts at three followers, each
    /// proxy lost). A re-sent write the leader applied already is answered from its session,
    /// a read is served again; the client takes the first answer.
    pub(super) fn resend_proxies(
        &mut self,
        ctx: &mut Context<'_, Self>,
        leader: NodeId,
        answered: &[RequestId],
    ) {
        for id in answered {
            self.proxies.remove(id);
        }
        if self.proxies.is_empty() || self.role == Role::Leader {
            return;
        }
        let now = ctx.monotonic();
        let timeout = self.settings.election_timeout;
        let again = timeout.min.as_micros();
        let give_up = timeout.max.as_micros() * PROXY_FOR;
        self.proxies
            .retain(|_, p| now.since(p.first).as_micros() < give_up);
        let due: Vec<(RequestId, Op)> = (self.proxies.iter_mut())
            .filter(|(_, p)| now.since(p.last).as_micros() >= again)
            .map(|(id, p)| {
                p.last = now;
                (*id, p.op.clone())
            })
            .collect();
        for (id, op) in due {
            ctx.note(|| format!("{id}: unanswered; proxied to {leader} again"));
            self.send(ctx, leader, super::Message::ClientRequest { id, op });
        }
    }

    /// Appends `command` to the leader's log and sends it on; returns its index.
    pub(super) fn propose(&mut self, ctx: &mut Context<'_, Self>, command: Command) -> u64 {
        let index = self.log.append(self.current_term, command);
        self.dirty = true;
        for node in self.others() {
            self.maybe_send_append(ctx, node);
        }
        index
    }

    /// Whether this node, a leader, serves reads from its lease at its monotonic reading
    /// `now`: lease reads on, something of its term applied (before that, the commit index
    /// may lag the cluster's), and the lease unexpired. The lease-safety invariant judges
    /// exactly this claim.
    pub(super) fn lease_holds_at(&self, now: Time) -> bool {
        self.leader.as_ref().is_some_and(|leader| {
            self.settings.lease_reads
                && self.sm.applied_index >= leader.term_start
                && leader.lease_until.is_some_and(|until| now < until)
        })
    }

    /// A read served without the log: locally under a lease, else once a heartbeat round
    /// sent after it arrived is acknowledged by a majority and the read index is applied.
    fn read(&mut self, ctx: &mut Context<'_, Self>, id: RequestId, op: Op) {
        if self.lease_holds_at(ctx.monotonic()) {
            let result = self.sm.read(&op);
            return self.reply(ctx, id, result);
        }
        let commit = self.commit_index;
        let leader = self.leader.as_mut().expect("only leaders read");
        // Committed entries of earlier terms all precede this term's no-op.
        let read_index = commit.max(leader.term_start);
        let round = leader.round + 1;
        leader.reads.push_back(PendingRead {
            round,
            read_index,
            id,
            op,
        });
        if leader.quorum_round == leader.round {
            self.start_round(ctx);
        }
    }

    /// Answers the reads whose round a majority confirmed and whose index is applied, and
    /// starts the round later reads wait for once no round is outstanding.
    pub(super) fn serve_reads(&mut self, ctx: &mut Context<'_, Self>) {
        let applied = self.sm.applied_index;
        let Some(leader) = self.leader.as_mut() else {
            return;
        };
        let mut ready = Vec::new();
        // Rounds and read indexes only grow along the queue: serve from the front.
        while let Some(read) = leader.reads.front() {
            if read.round > leader.quorum_round || read.read_index > applied {
                break;
            }
            ready.extend(leader.reads.pop_front());
        }
        let wants_round = leader.quorum_round == leader.round
            && leader.reads.back().is_some_and(|r| r.round > leader.round);
        for read in ready {
            let result = self.sm.read(&read.op);
            self.reply(ctx, read.id, result);
        }
        if wants_round {
            self.start_round(ctx);
        }
    }

    /// An operator's `add-server` / `remove-server`: the leader acts on it, another node
    /// forwards it once to the leader it knows.
    pub(super) fn on_membership_command(
        &mut self,
        ctx: &mut Context<'_, Self>,
        command: Operator,
        may_forward: bool,
    ) {
        if !matches!(
            command,
            Operator::AddServer { .. } | Operator::RemoveServer { .. }
        ) {
            return ctx.note(|| format!("ignored operator command {command}"));
        }
        if self.role == Role::Leader {
            return self.change_membership(ctx, command);
        }
        match self.leader_hint {
            Some(leader) if may_forward => {
                ctx.note(|| format!("{command}: forwarded to {leader}"));
                self.send(ctx, leader, super::Message::Forward { command });
            }
            _ => ctx.note(|| format!("{command}: no leader known here; ignored")),
        }
    }

    /// A membership change the engine made (a scenario's `join`, `leave`, `remove`): every
    /// member remembers which nodes are to become voters and which are to go, and whoever
    /// leads pursues them one at a time (thesis 4.1); a node asked to leave asks its leader
    /// to remove it (thesis 4.2.2).
    pub(super) fn membership_changed(&mut self, ctx: &mut Context<'_, Self>, change: Membership) {
        match change {
            Membership::Joined(node) => {
                self.unwanted.remove(&node);
                self.wanted.insert(node);
            }
            Membership::Removed(node) => {
                self.wanted.remove(&node);
                self.unwanted.insert(node);
            }
            Membership::Leave => {
                self.leaving = true;
                self.unwanted.insert(self.me);
                if let Some(leader) = self.leader_hint.filter(|l| *l != self.me) {
                    self.ask_to_leave(ctx, leader);
                }
            }
        }
        self.pursue_membership(ctx);
    }

    /// As leader, takes the next step of the changes announced, when none is under way:
    /// removals first (a smaller majority), then additions.
    pub(super) fn pursue_membership(&mut self, ctx: &mut Context<'_, Self>) {
        if self.role != Role::Leader || (self.wanted.is_empty() && self.unwanted.is_empty()) {
            return;
        }
        let (config_index, voters) = self.log.latest_config();
        let busy = self.leader.as_ref().is_some_and(|l| l.catching_up.is_some());
        let pending = config_index > self.commit_index && !self.bugs.overlapping_changes;
        if pending || busy {
            return;
        }
        let remove = self.unwanted.iter().find(|n| voters.contains(n)).copied();
        let add = self.wanted.iter().find(|n| !voters.contains(n)).copied();
        let command = match (remove, add) {
            (Some(server), _) if voters.len() > 1 => Operator::RemoveServer { server },
            (_, Some(server)) => Operator::AddServer { server },
            _ => return,
        };
        self.change_membership(ctx, command);
    }

    /// A leaving voter asks `leader` to remove it (again at each heartbeat until it is out).
    pub(super) fn ask_to_leave(&mut self, ctx: &mut Context<'_, Self>, leader: NodeId) {
        if !self.leaving || !self.is_voter(self.me) || self.role == Role::Leader {
            return;
        }
        let command = Operator::RemoveServer { server: self.me };
        self.send(ctx, leader, super::Message::Forward { command });
    }

    /// Single-server membership change (thesis 4.1): one at a time, an added server caught
    /// up first.
    fn change_membership(&mut self, ctx: &mut Context<'_, Self>, command: Operator) {
        let (config_index, voters) = self.log.latest_config();
        let mut voters = voters.to_vec();
        let leader = self
            .leader
            .as_mut()
            .expect("only leaders change membership");
        let pending = config_index > self.commit_index && !self.bugs.overlapping_changes;
        if pending || leader.catching_up.is_some() {
            return ctx.note(|| format!("{command}: a change is in progress; refused"));
        }
        match command {
            Operator::AddServer { server } => {
                if !self.nodes.contains(&server) || voters.contains(&server) {
                    return ctx.note(|| format!("{command}: unknown or already a voter"));
                }
                ctx.note(|| format!("{command}: catching {server} up first"));
                leader.catching_up = Some(server);
                self.maybe_finish_catch_up(ctx);
            }
            Operator::RemoveServer { server } => {
                if !voters.contains(&server) || voters.len() == 1 {
                    return ctx.note(|| format!("{command}: not a voter, or the last one"));
                }
                voters.retain(|v| *v != server);
                ctx.note(|| format!("{command}: voters now {voters:?}"));
                self.propose(ctx, Command::Config { voters });
                self.maybe_commit(ctx);
            }
            _ => {}
        }
    }

    /// Adds the server being caught up once its log reaches the commit index (thesis
    /// 4.2.1: a new server must not slow commitment down while it catches up).
    pub(super) fn maybe_finish_catch_up(&mut self, ctx: &mut Context<'_, Self>) {
        let commit = self.commit_index;
        let Some(leader) = self.leader.as_mut() else {
            return;
        };
        let Some(server) = leader.catching_up else {
            return;
        };
        let caught_up = leader.progress.get(&server).map(|p| p.matched >= commit);
        // The commit index means something only once this term's no-op committed.
        if caught_up != Some(true) || commit < leader.term_start {
            return;
        }
        leader.catching_up = None;
        let mut voters = self.voters().to_vec();
        voters.push(server);
        voters.sort();
        ctx.note(|| format!("{server} caught up; voters now {voters:?}"));
        self.propose(ctx, Command::Config { voters });
        self.maybe_commit(ctx);
    }

    /// A leader no longer among the voters steps down once that change commits (thesis
    /// 4.2.2).
    pub(super) fn maybe_step_down_removed(&mut self, ctx: &mut Context<'_, Self>) {
        let (config_index, _) = self.log.latest_config();
        if self.role == Role::Leader && !self.is_voter(self.me) && config_index <= self.commit_index
        {
            ctx.note(|| "removed from the voters: stepping down".to_string());
            let term = self.current_term;
            let none: Option<NodeId> = None;
            self.become_follower(ctx, term, none);
        }
    }
}
