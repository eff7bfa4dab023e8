//! The invariants the engine checks after every handler (paper Figure 3): per node, and
//! across nodes by comparing chain hashes at one index per pair, so that a check costs
//! O(nodes²) lookups, not a walk over logs.

use super::{Raft, Role};

impl Raft {
    /// The node's own invariants.
    pub(super) fn check_node(&self) -> Result<(), String> {
        if let Some(broken) = &self.violation {
            return Err(broken.clone());
        }
        let (commit, last, base) = (self.commit_index, self.log.last_index(), self.log.base());
        if commit != self.commit_high_water {
            let high = self.commit_high_water;
            return Err(format!("commit index {commit} fell below {high}"));
        }
        if commit > last || commit < base {
            return Err(format!(
                "commit index {commit} outside the log {base}..={last}"
            ));
        }
        if self.sm.applied_index != commit {
            let applied = self.sm.applied_index;
            return Err(format!("applied {applied}, committed {commit}"));
        }
        if self.log.last_term() > self.current_term {
            let t = self.log.last_term();
            return Err(format!(
                "log term {t} past the current term {}",
                self.current_term
            ));
        }
        if self.role == Role::Leader {
            if self.leader.is_none() || self.voted_for != Some(self.me) {
                return Err("a leader without leader state or its own vote".into());
            }
            if self.led_terms.last() != Some(&self.current_term) {
                return Err("a leader whose term is not recorded as led".into());
            }
        }
        Ok(())
    }

    /// The chain hash through `index` as this node knows it: its applied state's, its
    /// log's, or unknown (compacted away or not yet received).
    fn chain_through(&self, index: u64) -> Option<u64> {
        if index == self.sm.applied_index {
            return Some(self.sm.applied_chain);
        }
        self.log.chain_at(index)
    }
}

/// Election safety, log matching, leader completeness and state machine safety over every
/// pair of running nodes.
pub(super) fn check_cluster(nodes: &[Option<&Raft>]) -> Result<(), String> {
    let running: Vec<&Raft> = nodes.iter().flatten().copied().collect();
    for (i, a) in running.iter().enumerate() {
        for b in &running[i + 1..] {
            election_safety(a, b)?;
            election_safety(b, a)?;
            log_matching(a, b)?;
            state_machine_safety(a, b)?;
            leader_completeness(a, b)?;
            leader_completeness(b, a)?;
        }
    }
    Ok(())
}

/// At most one leader per term (section 5.2): the latest term `a` led was never led by `b`.
fn election_safety(a: &Raft, b: &Raft) -> Result<(), String> {
    let Some(term) = a.led_terms.last() else {
        return Ok(());
    };
    if b.led_terms.binary_search(term).is_ok() {
        return Err(format!("{} and {} both led term {term}", a.me, b.me));
    }
    Ok(())
}

/// Log matching (section 5.3): at the last index both logs hold, equal terms mean equal
/// logs up to there.
fn log_matching(a: &Raft, b: &Raft) -> Result<(), String> {
    let index = a.log.last_index().min(b.log.last_index());
    let (Some(ta), Some(tb)) = (a.log.term_at(index), b.log.term_at(index)) else {
        return Ok(());
    };
    if ta == tb && a.log.chain_at(index) != b.log.chain_at(index) {
        return Err(format!(
            "{} and {} hold term {ta} at {index} with different logs before it",
            a.me, b.me
        ));
    }
    Ok(())
}

/// State machine safety (section 5.4.3): no two nodes applied different entries at one
/// index; compared at the lower of their applied indexes.
fn state_machine_safety(a: &Raft, b: &Raft) -> Result<(), String> {
    let index = a.sm.applied_index.min(b.sm.applied_index);
    let (Some(ca), Some(cb)) = (a.chain_through(index), b.chain_through(index)) else {
        return Ok(());
    };
    if ca != cb {
        return Err(format!(
            "{} and {} applied different entries through index {index}",
            a.me, b.me
        ));
    }
    Ok(())
}

/// Leader completeness (section 5.4): a leader of a term after the one in which `node`
/// learned its commit index holds every entry through that index.
fn leader_completeness(leader: &Raft, node: &Raft) -> Result<(), String> {
    if leader.role != Role::Leader || leader.current_term <= node.commit_learned_term {
        return Ok(());
    }
    let index = node.commit_index;
    if leader.log.last_index() < index {
        return Err(format!(
            "leader {} of term {} lacks entry {index}, committed at {}",
            leader.me, leader.current_term, node.me
        ));
    }
    match (leader.chain_through(index), node.chain_through(index)) {
        (Some(l), Some(n)) if l != n => Err(format!(
            "leader {} of term {} holds another entry {index} than committed at {}",
            leader.me, leader.current_term, node.me
        )),
        _ => Ok(()),
    }
}
