//! Leader election (paper section 5.2, 5.4.1; pre-vote and leader stickiness, thesis 9.6
//! and 4.2.3).

use super::log::Command;
use super::{is_majority, up_to_date, LeaderState, Message, Progress, Raft, Role, Timer};
use crate::contract::Context;
use crate::ids::NodeId;
use crate::time::{Span, SpanRange, Time};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

impl Raft {
    /// The election timer fired: campaign, unless a leader was heard since it was armed.
    pub(super) fn on_election_timeout(&mut self, ctx: &mut Context<'_, Self>) {
        if self.role == Role::Leader {
            return;
        }
        let now = ctx.monotonic();
        if self.election_reset_at > self.election_armed_at {
            // Heard from a leader (or voted) since arming: wait a fresh timeout from then.
            // Re-arming lazily here, rather than on every message, keeps the queue small.
            let elapsed = now.since(self.election_reset_at);
            let range = self.settings.election_timeout;
            let min = Span(
                range
                    .min
                    .as_micros()
                    .saturating_sub(elapsed.as_micros())
                    .max(1),
            );
            let max = Span(range.max.as_micros().saturating_sub(elapsed.as_micros())).max(min);
            self.election_armed_at = now;
            ctx.set_timer(Timer::Election, SpanRange { min, max });
            return;
        }
        if !self.is_voter(self.me) {
            ctx.note(|| "election timeout, but not a voter: no campaign".to_string());
            self.arm_election_timer(ctx);
            return;
        }
        if self.settings.pre_vote {
            self.become_pre_candidate(ctx);
        } else {
            self.become_candidate(ctx);
        }
    }

    /// Asks for pre-votes for the next term without adopting it (thesis 9.6).
    fn become_pre_candidate(&mut self, ctx: &mut Context<'_, Self>) {
        self.role = Role::PreCandidate;
        self.leader_hint = None;
        self.votes.clear();
        self.votes.insert(self.me);
        self.arm_election_timer(ctx);
        let term = self.current_term + 1;
        ctx.note(|| format!("pre-candidate for term {term}"));
        if self.has_majority_of_votes() {
            self.become_candidate(ctx);
            return;
        }
        ctx.set_timer(Timer::Heartbeat, self.settings.heartbeat);
        self.request_votes(ctx, true);
    }

    /// Bumps the term, votes for itself and asks every voter for a vote (section 5.2).
    fn become_candidate(&mut self, ctx: &mut Context<'_, Self>) {
        self.current_term += 1;
        self.voted_for = Some(self.me);
        self.dirty = true;
        self.role = Role::Candidate;
        self.leader_hint = None;
        self.votes.clear();
        self.votes.insert(self.me);
        self.arm_election_timer(ctx);
        let term = self.current_term;
        ctx.note(|| format!("candidate in term {term}"));
        if self.has_majority_of_votes() {
            self.become_leader(ctx);
            return;
        }
        ctx.set_timer(Timer::Heartbeat, self.settings.heartbeat);
        self.request_votes(ctx, false);
    }

    /// Asks every voter that has not granted its vote yet.
    pub(super) fn request_votes(&mut self, ctx: &mut Context<'_, Self>, pre_vote: bool) {
        let msg = Message::RequestVote {
            term: self.current_term + u64::from(pre_vote),
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
            pre_vote,
        };
        let me = self.me;
        let votes = &self.votes;
        let voters: Vec<NodeId> = self
            .voters()
            .iter()
            .copied()
            .filter(|v| *v != me && !votes.contains(v))
            .collect();
        for voter in voters {
            self.send(ctx, voter, msg.clone());
        }
    }

    fn has_majority_of_votes(&self) -> bool {
        let voters = self.voters();
        let count = self.votes.iter().filter(|v| voters.contains(v)).count();
        is_majority(count, voters)
    }

    /// Whether this node heard a leader within the minimum election timeout (a leader
    /// counts itself): such a node refuses pre-votes and, when leaders are sticky, votes.
    fn heard_leader_recently(&self, ctx: &Context<'_, Self>) -> bool {
        self.heard_leader_at(ctx.monotonic())
    }

    /// [`Raft::heard_leader_recently`] with this node's monotonic clock reading `now`.
    pub(super) fn heard_leader_at(&self, now: Time) -> bool {
        if self.role == Role::Leader {
            return true;
        }
        // A leader hint is not required: a restarted node knows no leader yet, and still
        // refuses for a minimum election timeout from its start (see `start`), since it may
        // have acknowledged a leader's lease just before it crashed.
        let min = self.settings.election_timeout.min;
        self.last_heard_leader.is_some_and(|t| now.since(t) < min)
    }

    /// Whether this node would vote for another node's candidacy in a later term now (its
    /// log aside): when leaders are sticky, only once it has not heard one for a minimum
    /// election timeout.
    pub(super) fn would_vote_at(&self, now: Time) -> bool {
        !(self.settings.sticky_leader() && self.heard_leader_at(now))
    }

    /// RequestVote (Figure 2): grant at most one vote per term, to an up-to-date log.
    pub(super) fn handle_request_vote(
        &mut self,
        ctx: &mut Context<'_, Self>,
        from: NodeId,
        term: u64,
        (last_log_index, last_log_term): (u64, u64),
        pre_vote: bool,
    ) {
        let log_ok = self.bugs.vote_without_log_check
            || up_to_date(
                last_log_term,
                last_log_index,
                self.log.last_term(),
                self.log.last_index(),
            );
        let sticky = pre_vote || self.settings.sticky_leader();
        if sticky && self.heard_leader_recently(ctx) {
            ctx.note(|| format!("ignored RequestVote of {from} for term {term}: leader alive"));
            let current = self.current_term;
            return self.answer_vote(ctx, from, current, false, pre_vote);
        }
        if pre_vote {
            // A pre-vote changes nothing here: granted if a real vote could be.
            let granted = term > self.current_term && log_ok;
            let answer_term = if granted { term } else { self.current_term };
            return self.answer_vote(ctx, from, answer_term, granted, true);
        }
        if term < self.current_term {
            let current = self.current_term;
            return self.answer_vote(ctx, from, current, false, false);
        }
        if term > self.current_term {
            self.become_follower(ctx, term, None);
        }
        let free = self.voted_for.is_none() || self.voted_for == Some(from);
        let granted = free && log_ok;
        if granted {
            self.voted_for = Some(from);
            self.dirty = true;
            self.election_reset_at = ctx.monotonic();
        }
        ctx.note(|| format!("vote for {from} in term {term}: {granted} (log ok: {log_ok})"));
        self.answer_vote(ctx, from, term, granted, false);
    }

    fn answer_vote(
        &mut self,
        ctx: &mut Context<'_, Self>,
        to: NodeId,
        term: u64,
        granted: bool,
        pre_vote: bool,
    ) {
        let msg = Message::RequestVoteResponse {
            term,
            granted,
            pre_vote,
        };
        // `send` persists the vote first.
        self.send(ctx, to, msg);
    }

    pub(super) fn handle_vote_response(
        &mut self,
        ctx: &mut Context<'_, Self>,
        from: NodeId,
        term: u64,
        granted: bool,
        pre_vote: bool,
    ) {
        if term > self.current_term && !(pre_vote && granted) {
            self.become_follower(ctx, term, None);
            return;
        }
        let counts = if pre_vote {
            self.role == Role::PreCandidate && term == self.current_term + 1
        } else {
            self.role == Role::Candidate && term == self.current_term
        };
        if !counts || !granted {
            return;
        }
        self.votes.insert(from);
        if !self.has_majority_of_votes() {
            return;
        }
        if pre_vote {
            self.become_candidate(ctx);
        } else {
            self.become_leader(ctx);
        }
    }

    /// Takes the lead: a no-op of the new term first, so that something of this term can
    /// commit (section 5.4.2) and reads can be served (thesis 6.4).
    pub(super) fn become_leader(&mut self, ctx: &mut Context<'_, Self>) {
        let term = self.current_term;
        self.role = Role::Leader;
        self.leader_hint = Some(self.me);
        Rc::make_mut(&mut self.led_terms).push(term);
        let term_start = self.log.append(term, Command::Noop);
        self.dirty = true;
        let progress = Progress {
            next: term_start,
            matched: 0,
            inflight: None,
            acked_round: 0,
        };
        let others = self.others();
        let now = ctx.monotonic();
        self.leader = Some(Box::new(LeaderState {
            progress: others.iter().map(|n| (*n, progress.clone())).collect(),
            term_start,
            pending: BTreeMap::new(),
            pending_ids: BTreeMap::new(),
            reads: VecDeque::new(),
            round: 0,
            rounds_sent_at: VecDeque::new(),
            quorum_round: 0,
            quorum_round_at: now,
            lease_until: None,
            catching_up: None,
            proxied: BTreeMap::new(),
            answered: BTreeMap::new(),
        }));
        ctx.note(|| format!("became leader of term {term}"));
        ctx.cancel_timer(Timer::Election);
        ctx.set_timer(Timer::Heartbeat, self.settings.heartbeat);
        self.start_round(ctx);
        for node in others {
            self.maybe_send_append(ctx, node);
        }
        self.maybe_commit(ctx);
    }
}
