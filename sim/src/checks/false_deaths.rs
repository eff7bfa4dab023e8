//! A failure detector's accuracy: no live member is declared dead on evidence gathered
//! while the cluster was calm.
//!
//! A protocol with a failure detector says when it declares a member dead
//! ([`simkv_protocols::Context::declare_dead`]) and how far back its evidence goes (the probe
//! that first failed, and the time suspicion took to spread). A declaration is **false**
//! when the whole of that evidence lies in one calm stretch (every node running, every link
//! up and at the scenario's behaviour, no node frozen, paused or slow, no fault of any kind)
//! and the member was running and, in its own view, still a member. Nothing the scenario did
//! can then explain it: only the protocol's own choices and the scenario's base network
//! (its latency, its steady loss) were in play.
//!
//! SWIM's accuracy is probabilistic (Das, Gupta and Motivala, DSN 2002, sections 3.1 and
//! 4.2): a false detection needs the direct ping and all k indirect paths to fail, and then
//! the member's refutation to miss the whole suspicion timeout. With k = 3 that is so rare
//! on a network losing a few percent of messages that one false death is a broken promise;
//! without ping-req (k = 0), or without suspicion, it is routine. Declarations whose
//! evidence began before a fault ended, or that a fault interrupted, are not judged: a fault
//! explains them.
//!
//! Stated: `[checks] false_deaths = true` says the scenario's network is one its failure
//! detectors' timeouts fit (memberlist's LAN timing on a LAN), so that SWIM's
//! probabilistic accuracy is a promise there; on a network that overruns the timeouts a
//! correct detector suspects live members often and the check would only measure. A
//! protocol without a failure detector declares nothing and passes.

use super::{Judgement, Promised, RunView, Verdict};
use crate::engine::DeadDeclaration;
use simkv_protocols::{Span, Time};

pub(super) const PROMISED: Promised = Promised::Stated(|s| s.false_deaths);

/// Judges every declaration of the run against its calm stretches.
pub(super) fn judge(run: &RunView) -> Judgement {
    if !run.scenario.checks.stated.false_deaths {
        return Judgement::new(Verdict::Skipped, "not stated");
    }
    let calm_over = |d: &DeadDeclaration| -> Option<Time> {
        run.calm
            .iter()
            .find(|(from, until)| *from <= d.evidence_from && d.at < *until)
            .map(|(from, _)| *from)
    };
    let mut judged = 0usize;
    let mut problems = Vec::new();
    for d in run.declared_dead {
        let Some(since) = calm_over(d) else {
            continue;
        };
        judged += 1;
        if d.subject_member {
            problems.push(format!(
                "at {} {} declared {} dead on evidence from {}, the cluster calm since {} \
                 and {} a running member",
                d.at, d.observer, d.subject, d.evidence_from, since, d.subject
            ));
        }
    }
    let total = run.declared_dead.len();
    let calm: u64 = run
        .calm
        .iter()
        .map(|(from, until)| until.since(*from).as_micros())
        .sum();
    if problems.is_empty() {
        let detail = match (total, judged) {
            (0, _) => format!(
                "no failure detector declared a member dead ({} of calm cluster)",
                Span(calm)
            ),
            (_, 0) => format!(
                "{total} deaths declared, none on evidence gathered wholly while the cluster \
                 was calm ({} of calm cluster)",
                Span(calm)
            ),
            _ => format!(
                "{total} deaths declared, {judged} on evidence gathered wholly while the \
                 cluster was calm, each of a node no longer a member ({} of calm cluster)",
                Span(calm)
            ),
        };
        return Judgement::new(Verdict::Pass, detail);
    }
    let count = problems.len();
    problems.truncate(5);
    let mut detail = format!(
        "{count} of {total} deaths declared were of a live member on calm evidence, over {} \
         of calm cluster (SWIM section 4.2: a live member refutes before it is declared \
         dead):\n",
        Span(calm)
    );
    detail.push_str(&problems.join("\n"));
    if count > 5 {
        detail.push_str(&format!("\n... and {} more", count - 5));
    }
    Judgement::new(Verdict::Fail, detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::leaders::tests::{scenario, secs, view};
    use crate::history::History;
    use simkv_protocols::NodeId;

    fn declaration(at_ms: u64, from_ms: u64, member: bool) -> DeadDeclaration {
        DeadDeclaration {
            at: secs(at_ms),
            observer: NodeId(0),
            subject: NodeId(1),
            evidence_from: secs(from_ms),
            subject_member: member,
        }
    }

    fn verdict(calm: &[(Time, Time)], declared: &[DeadDeclaration]) -> Verdict {
        let scenario = scenario("false_deaths = true");
        let history = History::default();
        let mut run = view(&scenario, &history, &[], calm, None);
        run.declared_dead = declared;
        judge(&run).verdict
    }

    /// A live member declared dead on evidence gathered wholly in one calm stretch breaks
    /// the promise (SWIM section 4.2: it would have refuted the suspicion).
    #[test]
    fn a_live_member_declared_dead_on_calm_evidence_is_a_false_death() {
        let calm = [(secs(1_000), secs(10_000))];
        assert_eq!(verdict(&calm, &[declaration(5_000, 4_300, true)]), Verdict::Fail);
        assert_eq!(verdict(&calm, &[]), Verdict::Pass);
    }

    /// Evidence that began before the cluster was last made whole, a declaration a fault
    /// interrupted, and a member that had left are explained, not judged false.
    #[test]
    fn evidence_a_fault_explains_and_nodes_no_longer_members_are_not_judged() {
        let calm = [(secs(1_000), secs(3_000)), (secs(4_000), secs(10_000))];
        // The probe failed before the heal at 4s.
        assert_eq!(verdict(&calm, &[declaration(4_500, 3_900, true)]), Verdict::Pass);
        // Declared after a fault at 3s ended the calm the evidence began in.
        assert_eq!(verdict(&calm, &[declaration(3_200, 2_500, true)]), Verdict::Pass);
        // Declared at the very instant the calm ends.
        assert_eq!(verdict(&calm, &[declaration(3_000, 2_500, true)]), Verdict::Pass);
        // A node that left gracefully (or was never a member).
        assert_eq!(verdict(&calm, &[declaration(6_000, 5_500, false)]), Verdict::Pass);
        // Only wholly calm evidence of a member counts.
        assert_eq!(verdict(&calm, &[declaration(2_900, 1_000, true)]), Verdict::Fail);
    }
}
