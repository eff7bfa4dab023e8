//! gossip (cluster-kv on SWIM membership): every promise kept on every shipped scenario
//! across seeds (it promises none of the store's generic guarantees, so its failure
//! detector's accuracy and its own invariants are what is judged), every planted bug caught by a promised check on a shipped scenario, and the
//! membership visible in the summary of `scenarios/gossip-churn.toml`.

use crate::util::{assert_bugs_caught, assert_keeps_promises, scenarios_in, Caught};
use simkv_sim::checks::CheckName;

#[test]
fn gossip_keeps_its_promises_on_every_shipped_scenario_across_seeds() {
    let scenarios = scenarios_in("scenarios");
    assert!(scenarios.len() >= 6, "{scenarios:?}");
    assert_keeps_promises("gossip", &scenarios, 1..=2);
}

#[test]
fn gossip_every_planted_bug_is_caught_on_a_shipped_scenario() {
    assert_bugs_caught(
        "gossip",
        &[
            // SWIM sections 3.1 and 4.2: a probe lost on a 5% lossy network suspects its
            // target at once, without the k indirect probes; now and then the refutation
            // misses the suspicion timeout too, and a live member is declared dead on a
            // cluster no fault touched.
            Caught {
                bug: "no-indirect-probes",
                path: "scenarios/flaky-network.toml",
                seeds: 1..=2,
                check: CheckName::FalseDeaths,
            },
            // SWIM section 4.2: a crash and a lost packet make suspicions; a refutation at the
            // suspected incarnation overrides nothing.
            Caught {
                bug: "incarnation-not-bumped",
                path: "scenarios/gossip-churn.toml",
                seeds: 1..=2,
                check: CheckName::Invariants,
            },
            // serf's Lamport-ordered user events: reordered events on a lossy network drop
            // a writer's newer copy.
            Caught {
                bug: "events-unordered",
                path: "scenarios/flaky-network.toml",
                seeds: 1..=2,
                check: CheckName::Invariants,
            },
            // The seed's invalidation: a copy fetched by a query outlives its invalidation.
            Caught {
                bug: "stale-cache-answers",
                path: "scenarios/flaky-network.toml",
                seeds: 1..=2,
                check: CheckName::Invariants,
            },
        ],
    );
}

/// Every planted bug is also found by the generic swarm scenario within seeds 1..=50.
#[test]
fn gossip_swarm_finds_every_planted_bug() {
    use simkv_sim::report::RunVerdict;
    for bug in simkv_protocols::ProtocolKind::from_name("gossip")
        .unwrap()
        .info()
        .bugs
    {
        let found = (1..=50).find(|seed| {
            let report =
                crate::util::run_report("scenarios/swarm.toml", "gossip", *seed, &[bug.name]);
            report.verdict == RunVerdict::Broken
        });
        assert!(found.is_some(), "swarm missed {}", bug.name);
    }
}

/// The summary's gossip line: five joiners found the cluster through n1 (every running node
/// ends seeing the others but the ones that crashed for good or left), probes went out with
/// indirect probes behind lost ones, and the crashes were detected.
#[test]
fn gossip_churn_summary_shows_joins_probes_and_detections() {
    let out = crate::util::simkv(&["run", "scenarios/gossip-churn.toml"]);
    let text = crate::util::stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("gossip:"))
        .expect("a gossip line");
    let at = |name: &str| -> u64 {
        let from = line
            .find(name)
            .unwrap_or_else(|| panic!("{name} in {line}"));
        let rest = &line[from + name.len()..];
        let digits: String = rest
            .trim()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().expect("a number")
    };
    assert!(at("probes") > 1000, "{line}");
    assert!(at("indirect probes asked") > 0, "{line}");
    assert!(at("deaths declared") > 0, "{line}");
    assert!(at("queries answered") > 0, "{line}");
    // 20 nodes, each seeing at most 19 others alive.
    let seen = at("members seen alive (sum over nodes)");
    assert!(seen > 15 * 15 && seen <= 20 * 19, "{line}");
}
