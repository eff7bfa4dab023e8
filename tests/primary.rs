//! primary: every promise kept on every shipped scenario across seeds, and every planted bug
//! caught by a promised check on some seed of a shipped scenario.

use crate::util::{assert_bugs_caught, assert_keeps_promises, scenarios_in, Caught};
use simkv_sim::checks::CheckName;

#[test]
fn primary_keeps_its_promises_on_every_shipped_scenario_across_seeds() {
    let scenarios = scenarios_in("scenarios");
    assert!(scenarios.len() >= 6, "{scenarios:?}");
    assert_keeps_promises("primary", &scenarios, 1..=4);
}

#[test]
fn primary_every_planted_bug_is_caught_on_a_shipped_scenario() {
    assert_bugs_caught(
        "primary",
        &[
            Caught {
                bug: "skip-resync",
                path: "scenarios/crash-restart.toml",
                seeds: 1..=3,
                check: CheckName::Convergence,
            },
            Caught {
                bug: "blind-apply",
                path: "scenarios/partition.toml",
                seeds: 1..=5,
                check: CheckName::Convergence,
            },
            Caught {
                bug: "no-anti-entropy",
                path: "scenarios/flaky-network.toml",
                seeds: 1..=5,
                check: CheckName::Convergence,
            },
            // A reused version trips the node's own invariant (no own version past the
            // persisted mark) before the replicas have a chance to diverge.
            Caught {
                bug: "volatile-counter",
                path: "scenarios/crash-restart.toml",
                seeds: 1..=3,
                check: CheckName::Invariants,
            },
        ],
    );
}
