//! Log replication, commitment and heartbeats (paper sections 5.3, 5.4.2, 7).

use super::log::Entries;
use super::snapshot::SharedSnapshot;
use super::state_machine::StateMachine;
use super::{Message, Raft, Role, Timer};
use crate::contract::Context;
use crate::ids::NodeId;

/// Why AppendEntries did not match: the follower's term at the index, and where to resume.
type Conflict = (Option<u64>, u64);

impl Raft {
    /// Sends `to` the next batch it lacks (or the snapshot, if the leader compacted the
    /// entries it needs), unless one is already on its way.
    pub(super) fn maybe_send_append(&mut self, ctx: &mut Context<'_, Self>, to: NodeId) {
        let (term, commit, max_batch) = (
            self.current_term,
            self.commit_index,
            self.settings.max_batch,
        );
        let Some(leader) = self.leader.as_mut() else {
            return;
        };
        let Some(progress) = leader.progress.get_mut(&to) else {
            return;
        };
        if progress.inflight.is_some() || progress.next > self.log.last_index() {
            return;
        }
        let msg = if progress.next <= self.log.base() {
            progress.inflight = Some(self.log.base());
            let snapshot = SharedSnapshot(self.log.snapshot().clone());
            Message::InstallSnapshot { term, snapshot }
        } else {
            let prev_log_index = progress.next - 1;
            let entries = self.log.slice(progress.next, max_batch);
            progress.inflight = Some(prev_log_index + entries.0.len() as u64);
            Message::AppendEntries {
                term,
                prev_log_index,
                prev_log_term: self.log.term_at(prev_log_index).expect("held"),
                entries,
                leader_commit: commit,
            }
        };
        self.send(ctx, to, msg);
    }

    /// A message from a leader of `term` (at least ours): follow it.
    fn on_leader_contact(&mut self, ctx: &mut Context<'_, Self>, from: NodeId, term: u64) {
        if term > self.current_term || (term == self.current_term && self.role != Role::Follower) {
            self.become_follower(ctx, term, Some(from));
        }
        let now = ctx.monotonic();
        self.leader_hint = Some(from);
        self.last_heard_leader = Some(now);
        self.election_reset_at = now;
    }

    /// AppendEntries (Figure 2): check the entry before the batch, drop a conflicting
    /// suffix, append what is new, and learn the commit index.
    pub(super) fn handle_append_entries(
        &mut self,
        ctx: &mut Context<'_, Self>,
        from: NodeId,
        term: u64,
        (prev_index, prev_term): (u64, u64),
        entries: &Entries,
        leader_commit: u64,
    ) {
        let stale = term < self.current_term;
        if stale && !(self.bugs.accept_stale_term && self.role != Role::Leader) {
            ctx.note(|| format!("refused AppendEntries of {from}'s stale term {term}"));
            let msg = self.append_response(false, prev_index, (None, 0));
            return self.send(ctx, from, msg);
        }
        if !stale {
            self.on_leader_contact(ctx, from, term);
        }
        let msg = match self.append_from_leader(ctx, prev_index, prev_term, entries) {
            Ok(matched) => {
                let commit = leader_commit.min(matched);
                if commit > self.commit_index {
                    self.commit_learned_term = self.current_term;
                    self.set_commit(ctx, commit);
                }
                self.append_response(true, matched, (None, 0))
            }
            Err(conflict) => self.append_response(false, prev_index, conflict),
        };
        self.send(ctx, from, msg);
    }

    fn append_response(&self, success: bool, index: u64, conflict: Conflict) -> Message {
        Message::AppendEntriesResponse {
            term: self.current_term,
            success,
            index,
            conflict_term: conflict.0,
            conflict_index: conflict.1,
        }
    }

    /// The log half of AppendEntries; returns the last index known to match the leader's.
    fn append_from_leader(
        &mut self,
        ctx: &mut Context<'_, Self>,
        prev_index: u64,
        prev_term: u64,
        entries: &Entries,
    ) -> Result<u64, Conflict> {
        let base = self.log.base();
        let last_sent = prev_index + entries.0.len() as u64;
        let mut prev = prev_index;
        let mut skip = 0usize;
        if prev < base {
            // Entries through the snapshot are committed, hence the leader's too.
            skip = (base - prev) as usize;
            if skip >= entries.0.len() {
                return Ok(last_sent);
            }
            prev = base;
        } else if prev > self.log.last_index() {
            return Err((None, self.log.last_index() + 1));
        } else {
            let held = self.log.term_at(prev).expect("between base and last");
            if held != prev_term {
                return Err((Some(held), self.log.first_index_of_term(prev, held)));
            }
        }
        for (k, entry) in entries.0[skip..].iter().enumerate() {
            let index = prev + 1 + k as u64;
            match self.log.term_at(index) {
                Some(t) if t == entry.term => continue,
                Some(_) => {
                    if index <= self.commit_index {
                        let commit = self.commit_index;
                        self.violation.get_or_insert(format!(
                            "truncated committed entry {index} (commit index {commit})"
                        ));
                    }
                    ctx.note(|| format!("conflict at {index}: log truncated"));
                    self.log.truncate_from(index);
                }
                None => {}
            }
            self.log.append_received(entry);
            self.dirty = true;
        }
        Ok(last_sent)
    }

    /// The leader learns how a batch (or snapshot) went.
    pub(super) fn handle_append_response(
        &mut self,
        ctx: &mut Context<'_, Self>,
        from: NodeId,
        term: u64,
        success: bool,
        index: u64,
        (conflict_term, conflict_index): Conflict,
    ) {
        if term > self.current_term {
            return self.become_follower(ctx, term, None);
        }
        if self.role != Role::Leader || term != self.current_term {
            return;
        }
        let last = self.log.last_index();
        let resume = conflict_term
            .and_then(|t| self.log.last_index_of_term(t).map(|i| i + 1))
            .unwrap_or(conflict_index);
        let Some(leader) = self.leader.as_mut() else {
            return;
        };
        let Some(progress) = leader.progress.get_mut(&from) else {
            return;
        };
        if success {
            progress.matched = progress.matched.max(index);
            progress.next = progress.next.max(index + 1);
            if progress.inflight.is_some_and(|last| index < last) {
                // The answer to an older batch (or a duplicate): the one in flight answers
                // for itself, so nothing is sent now.
                self.maybe_commit(ctx);
                return self.maybe_finish_catch_up(ctx);
            }
            progress.inflight = None;
            self.maybe_commit(ctx);
            self.maybe_finish_catch_up(ctx);
        } else {
            if index + 1 != progress.next {
                // The answer to an older batch: the one in flight will answer for itself.
                return;
            }
            // Skip a whole conflicting term per round trip, never below what matched.
            progress.next = resume.min(index).clamp(progress.matched + 1, last + 1);
            progress.inflight = None;
        }
        self.maybe_send_append(ctx, from);
    }

    /// Commits the highest index a majority of voters holds, if it is of this term
    /// (section 5.4.2; with `commit-previous-term`, whatever its term). Returns whether the
    /// commit index moved.
    pub(super) fn maybe_commit(&mut self, ctx: &mut Context<'_, Self>) -> bool {
        let Some(leader) = self.leader.as_ref() else {
            return false;
        };
        let me = self.me;
        let voters = self.log.latest_config().1;
        let mut matched: Vec<u64> = voters
            .iter()
            .map(|v| match leader.progress.get(v) {
                _ if *v == me => self.log.last_index(),
                Some(p) => p.matched,
                None => 0,
            })
            .collect();
        if matched.is_empty() {
            return false;
        }
        matched.sort_unstable_by(|a, b| b.cmp(a));
        let index = matched[voters.len() / 2];
        if index <= self.commit_index {
            return false;
        }
        let own_term = self.log.term_at(index) == Some(self.current_term);
        if !own_term && !self.bugs.commit_previous_term {
            return false;
        }
        self.commit_learned_term = self.current_term;
        self.set_commit(ctx, index);
        true
    }

    /// Every heartbeat: step down without a majority (with `check_quorum`), start a
    /// heartbeat round, and resend batches whose answer never came.
    pub(super) fn on_heartbeat_timeout(&mut self, ctx: &mut Context<'_, Self>) {
        if matches!(self.role, Role::Candidate | Role::PreCandidate) {
            // Section 5.1: RPCs are retried until answered; a voter may have been down.
            ctx.set_timer(Timer::Heartbeat, self.settings.heartbeat);
            return self.request_votes(ctx, self.role == Role::PreCandidate);
        }
        let Some(leader) = self.leader.as_mut() else {
            return;
        };
        let silent = ctx.monotonic().since(leader.quorum_round_at);
        if self.settings.check_quorum && silent > self.settings.election_timeout.max {
            ctx.note(|| format!("no majority heard for {silent}: stepping down"));
            let term = self.current_term;
            return self.become_follower(ctx, term, None);
        }
        for progress in leader.progress.values_mut() {
            progress.inflight = None;
        }
        ctx.set_timer(Timer::Heartbeat, self.settings.heartbeat);
        self.pursue_membership(ctx);
        self.start_round(ctx);
        for node in self.others() {
            self.maybe_send_append(ctx, node);
        }
        self.maybe_finish_catch_up(ctx);
    }

    /// Sends a numbered heartbeat to every other node; a round a majority answers confirms
    /// leadership as of its send (ReadIndex) and renews the lease.
    pub(super) fn start_round(&mut self, ctx: &mut Context<'_, Self>) {
        let (term, commit, now) = (self.current_term, self.commit_index, ctx.monotonic());
        let Some(leader) = self.leader.as_mut() else {
            return;
        };
        leader.round += 1;
        let round = leader.round;
        leader.rounds_sent_at.push_back((round, now));
        let answered = &mut leader.answered;
        let beats: Vec<(NodeId, Message)> = leader
            .progress
            .iter()
            .map(|(node, p)| {
                // Only what the follower is known to hold may be committed there.
                let commit = commit.min(p.matched);
                (
                    *node,
                    Message::Heartbeat {
                        term,
                        commit,
                        round,
                        answered: answered.remove(node).unwrap_or_default(),
                    },
                )
            })
            .collect();
        for (node, beat) in beats {
            self.send(ctx, node, beat);
        }
        self.maybe_advance_quorum_round(ctx);
    }

    pub(super) fn handle_heartbeat(
        &mut self,
        ctx: &mut Context<'_, Self>,
        from: NodeId,
        term: u64,
        commit: u64,
        round: u64,
    ) {
        if term < self.current_term {
            let term = self.current_term;
            let refusal = Message::HeartbeatResponse {
                term,
                round,
                success: false,
            };
            return self.send(ctx, from, refusal);
        }
        self.on_leader_contact(ctx, from, term);
        let commit = commit.min(self.log.last_index());
        if commit > self.commit_index {
            self.commit_learned_term = self.current_term;
            self.set_commit(ctx, commit);
        }
        let term = self.current_term;
        let ack = Message::HeartbeatResponse {
            term,
            round,
            success: true,
        };
        self.send(ctx, from, ack);
    }

    pub(super) fn handle_heartbeat_response(
        &mut self,
        ctx: &mut Context<'_, Self>,
        from: NodeId,
        term: u64,
        round: u64,
        success: bool,
    ) {
        if term > self.current_term {
            return self.become_follower(ctx, term, None);
        }
        if term != self.current_term || !success {
            return;
        }
        let Some(leader) = self.leader.as_mut() else {
            return;
        };
        if let Some(progress) = leader.progress.get_mut(&from) {
            progress.acked_round = progress.acked_round.max(round);
        }
        self.maybe_advance_quorum_round(ctx);
    }

    /// Moves the majority-acknowledged round forward: it confirms waiting reads and renews
    /// the lease from the time that round was sent.
    fn maybe_advance_quorum_round(&mut self, ctx: &mut Context<'_, Self>) {
        let me = self.me;
        let voters = self.log.latest_config().1;
        let Some(leader) = self.leader.as_mut() else {
            return;
        };
        let mut acked: Vec<u64> = voters
            .iter()
            .map(|v| match leader.progress.get(v) {
                _ if *v == me => leader.round,
                Some(p) => p.acked_round,
                None => 0,
            })
            .collect();
        if acked.is_empty() {
            return;
        }
        acked.sort_unstable_by(|a, b| b.cmp(a));
        let quorum = acked[voters.len() / 2];
        if quorum <= leader.quorum_round {
            return;
        }
        leader.quorum_round = quorum;
        // Ends: each pass drops one round, and the queue holds the rounds up to `round`.
        while let Some(&(round, sent_at)) = leader.rounds_sent_at.front() {
            if round > quorum {
                break;
            }
            leader.rounds_sent_at.pop_front();
            leader.quorum_round_at = sent_at;
        }
        if self.settings.lease_reads {
            leader.lease_until = Some(leader.quorum_round_at + self.settings.lease);
        }
        self.serve_reads(ctx);
    }

    /// InstallSnapshot (section 7): take the leader's snapshot unless we already committed
    /// past it, keeping log entries that follow it when ours agree.
    pub(super) fn handle_install_snapshot(
        &mut self,
        ctx: &mut Context<'_, Self>,
        from: NodeId,
        term: u64,
        snapshot: SharedSnapshot,
    ) {
        let last = snapshot.0.last_index;
        if term < self.current_term {
            let msg = self.append_response(false, last, (None, 0));
            return self.send(ctx, from, msg);
        }
        self.on_leader_contact(ctx, from, term);
        if last > self.commit_index {
            ctx.note(|| format!("installing {from}'s snapshot through {last}"));
            self.sm = StateMachine::from_snapshot(&snapshot.0);
            self.log.compact(snapshot.0);
            self.dirty = true;
            self.commit_learned_term = self.current_term;
            self.set_commit(ctx, last);
        }
        let msg = self.append_response(true, last, (None, 0));
        self.send(ctx, from, msg);
    }
}
