//! majority (ABD, with CASPaxos promises for read-modify-writes): every promise kept on
//! every shipped scenario across seeds, the CP story of the demo, and every planted bug
//! caught by a promised check on some seed of a shipped scenario.

use crate::util::{assert_bugs_caught, assert_keeps_promises, scenarios_in, Caught};
use simkv_sim::checks::CheckName;
use simkv_sim::history::Outcome;
use simkv_sim::runner::{self, RunOptions};
use simkv_sim::scenario::{self, Overrides};

/// ABD section 4 and CASPaxos section 2: whatever the faults, histories are linearizable and
/// acknowledged writes survive; and once faults heal, every operation succeeds (a coordinator
/// runs one round per key at a time, so its own requests never duel; Paxos Made Simple 2.4).
#[test]
fn majority_keeps_every_promise_on_every_shipped_scenario() {
    let scenarios = scenarios_in("scenarios");
    assert!(scenarios.iter().any(|s| s.ends_with("cap-demo.toml")));
    assert_keeps_promises("majority", &scenarios, 1..=2);
}

/// CP: in the demo's story, with n2 frozen and n5 dead, the partition at 12s leaves no side
/// with a majority (1 and 2 live nodes), so from then until the heal at 20s nothing succeeds,
/// whichever node a client tries (an operation invoked after 18.4s may still succeed on a
/// retry after the heal); before and after, the live majority serves.
#[test]
fn majority_cap_demo_serves_nothing_while_no_side_has_a_majority() {
    let overrides = Overrides {
        seed: Some(1),
        protocol: Some("majority".into()),
        bugs: vec![],
        sets: vec![],
    };
    let path = crate::util::root().join("scenarios/cap-demo.toml");
    let scenario = scenario::load_file(path.to_str().unwrap(), &overrides).expect("valid");
    let history = runner::run(&scenario, RunOptions::default()).history;
    let mut invoked = std::collections::BTreeMap::new();
    let (mut ok_during, mut ok_before) = (0, 0);
    for e in &history.events {
        match &e.outcome {
            None => {
                invoked.insert(e.client, e.time);
            }
            Some(Outcome::Ok(_)) => {
                let at = invoked[&e.client].as_micros();
                ok_during += usize::from((12_100_000..18_400_000).contains(&at));
                ok_before += usize::from((9_000_000..11_000_000).contains(&at));
            }
            Some(_) => {}
        }
    }
    assert_eq!(ok_during, 0, "served without a majority");
    assert!(ok_before > 20, "n1, n3, n4 are a majority: {ok_before}");
}

#[test]
fn majority_every_planted_bug_is_caught_on_a_shipped_scenario() {
    assert_bugs_caught(
        "majority",
        &[
            // ABD section 4: without the write-back, a read may return a value on a minority
            // and a later read the older one (a new-old inversion), here with lost messages.
            Caught {
                bug: "skip-read-write-back",
                path: "scenarios/flaky-network.toml",
                seeds: 5,
                check: CheckName::Linearizability,
            },
            // R + W <= N: a read (and a phase 1) quorum can miss the last write quorum.
            Caught {
                bug: "weak-quorum",
                path: "scenarios/partition.toml",
                seeds: 2,
                check: CheckName::Linearizability,
            },
            // Two coordinators' ballots with one counter look equal: both are promised and
            // both accepted, and replicas keep different values under "one" version.
            Caught {
                bug: "version-without-node-tiebreak",
                path: "scenarios/crash-restart.toml",
                seeds: 2,
                check: CheckName::Linearizability,
            },
        ],
    );
}
