//! The invariants the engine checks after every handler (paper Figure 3): per node, and
//! across nodes by comparing chain hashes at one index per pair, so that a check costs
//! O(nodes²) lookups, not a walk over logs. Besides Figure 3's, commit safety: no node that
//! lacks a committed entry could be elected by the running voters (section 5.4.2).

use super::{is_majority, up_to_date, Raft, Role};
use crate::ids::NodeId;
use crate::time::Time;

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
/// pair of running nodes; with `changed`, over the pairs with that node in them only (every
/// other pair held at the last check and has not changed since), taken in the same order,
/// so that the first broken pair, and the message, are the ones a walk over every pair
/// finds. Lease and commit safety, which weigh every node at once (and the time), are
/// judged whole every time.
pub(super) fn check_cluster(
    nodes: &[Option<&Raft>],
    monotonic: &[Time],
    changed: Option<NodeId>,
) -> Result<(), String> {
    lease_safety(nodes, monotonic)?;
    let judged = |i: usize, j: usize| changed.is_none_or(|c| c.index() == i || c.index() == j);
    // After every handler: over the slots as they are, with no list of the running built.
    for (i, a) in nodes.iter().enumerate() {
        let Some(a) = a else { continue };
        for (j, b) in nodes.iter().enumerate().skip(i + 1) {
            let Some(b) = b.filter(|_| judged(i, j)) else {
                continue;
            };
            election_safety(a, b)?;
            election_safety(b, a)?;
            log_matching(a, b)?;
            state_machine_safety(a, b)?;
            leader_completeness(a, b)?;
            leader_completeness(b, a)?;
        }
    }
    commit_safety(nodes)
}

/// A committed entry is safe (section 5.4.2's argument, thesis 3.6.3): no running node
/// that lacks it could be elected by the running voters whose up-to-date check it passes.
/// In correct Raft every holder of a committed entry refuses a candidate without it, and
/// the holders are a majority of every configuration one membership step away, so this
/// never fires; a leader that commits an entry it must not (Figure 8: an earlier term's
/// entry counted on replicas) breaks it at once, while [`leader_completeness`] waits until
/// such a node actually wins. Judged at the highest commit index among running nodes
/// (lacking an earlier committed entry means lacking that one too: the chain hashes),
/// with the textbook vote rule and terms ignored, which can only make more nodes electable.
fn commit_safety(nodes: &[Option<&Raft>]) -> Result<(), String> {
    let running = || nodes.iter().flatten();
    let Some(holder) = running().max_by_key(|n| n.commit_index) else {
        return Ok(());
    };
    let index = holder.commit_index;
    if index == 0 {
        return Ok(());
    }
    let Some(chain) = holder.chain_through(index) else {
        return Ok(());
    };
    for x in running() {
        let lacks = x.log.last_index() < index
            || x.chain_through(index).is_some_and(|c| c != chain);
        if !lacks || !x.is_voter(x.me) {
            continue;
        }
        let (term, last) = (x.log.last_term(), x.log.last_index());
        let votes = running()
            .filter(|y| x.is_voter(y.me))
            .filter(|y| up_to_date(term, last, y.log.last_term(), y.log.last_index()))
            .count();
        if is_majority(votes, x.voters()) {
            return Err(format!(
                "{} lacks entry {index}, committed at {}, and {votes} running voters would \
                 elect it",
                x.me, holder.me
            ));
        }
    }
    Ok(())
}

/// A lease excludes every later leader (thesis 6.4.1): while a leader would serve a read
/// from its lease (lease reads on, its term's first entry applied, and its lease unexpired on
/// its own monotonic clock now), no running node leads a later term, and no majority of its
/// voters would vote for another candidate (each judged on its own clock: a majority that
/// has not heard a leader for a minimum election timeout could elect one at once). Without
/// this check a lease that outlives its leadership is seen only when an election happens to
/// finish inside the window and a client then reads, from the deposed leader, a key the new
/// leader has just written.
fn lease_safety(nodes: &[Option<&Raft>], monotonic: &[Time]) -> Result<(), String> {
    for (node, now) in nodes.iter().zip(monotonic) {
        let Some(holder) = node.filter(|n| n.lease_holds_at(*now)) else {
            continue;
        };
        let term = holder.current_term;
        let later = nodes
            .iter()
            .flatten()
            .find(|other| other.role == Role::Leader && other.current_term > term);
        if let Some(other) = later {
            return Err(format!(
                "{} serves lease reads in term {term} while {} leads term {}",
                holder.me, other.me, other.current_term
            ));
        }
        let voters = holder.voters();
        let willing = || {
            nodes
                .iter()
                .zip(monotonic)
                .filter_map(|(n, now)| n.filter(|n| voters.contains(&n.me)).map(|n| (n, now)))
                .filter(|(n, now)| n.would_vote_at(**now))
                .map(|(n, _)| n.me)
        };
        // Counted first: this runs after every handler while a lease holds, and only a
        // broken lease needs the names.
        if is_majority(willing().count(), voters) {
            let names: Vec<String> = willing().map(|me| me.to_string()).collect();
            return Err(format!(
                "{} serves lease reads in term {term} while {} would elect another leader",
                holder.me,
                names.join(", ")
            ));
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
