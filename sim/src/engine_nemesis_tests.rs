//! Several nemeses under `max_down`, faults undone by `for`, and the VOPR liveness mode,
//! run on the probe protocol.

use super::*;
use crate::scenario::{LivenessMode, Nemesis, NemesisKind};

fn down_now(engine: &Engine<'_, Probe>, nodes: u16) -> usize {
    (0..nodes)
        .map(|i| engine.node_status(NodeId(i)))
        .filter(|s| !s.running || s.frozen || s.paused)
        .count()
}

/// Two busy nemeses that crash, freeze and pause nodes, both bound by `max_down`.
fn bounded(seed: u64, max_down: u16) -> Scenario {
    let nemesis = |kinds: Vec<NemesisKind>| Nemesis {
        kinds,
        interval: SpanRange {
            min: Span::millis(10),
            max: Span::millis(60),
        },
        duration: SpanRange {
            min: Span::millis(100),
            max: Span::millis(500),
        },
        start: Time::ZERO,
        stop: Time::ZERO + Span::secs(2),
        clock_jump_max: Span::millis(10),
        clock_drift_max: 200_000,
        targets: Vec::new(),
        on_role: None,
        max_down: Some(max_down),
    };
    let mut s = scenario(5, vec![]);
    s.seed = seed;
    s.nemeses = vec![
        nemesis(vec![NemesisKind::Crash, NemesisKind::Partition]),
        nemesis(vec![NemesisKind::Freeze, NemesisKind::Pause]),
        nemesis(vec![NemesisKind::Crash, NemesisKind::Pause]),
    ];
    s
}

/// Steps the run; returns the most nodes down at once.
fn most_down(s: &Scenario) -> usize {
    let mut engine = Engine::<Probe>::new(s, None);
    engine.boot();
    let mut most = 0;
    while engine.step().is_some() {
        most = most.max(down_now(&engine, s.cluster.nodes));
    }
    most
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// At no instant are more than `max_down` nodes crashed, frozen or paused, whichever
    /// nemesis took them down.
    #[test]
    fn max_down_holds_at_every_instant(seed in 0u64..10_000, max_down in 1u16..=2) {
        let s = bounded(seed, max_down);
        prop_assert!(most_down(&s) <= usize::from(max_down));
    }
}

#[test]
fn max_down_skips_what_would_break_it_and_says_so() {
    let s = bounded(7, 2);
    assert_eq!(most_down(&s), 2, "the bound is reached, never passed");
    let out = Engine::<Probe>::new(&s, None).run();
    let skipped: Vec<&AppliedFault> = out
        .faults
        .iter()
        .filter(|f| f.action.ends_with("(skipped: max_down 2)"))
        .collect();
    assert!(!skipped.is_empty(), "{:#?}", out.faults);
    assert!(skipped.iter().all(|f| f.origin == FaultOrigin::Nemesis));
    // Without the bound the same nemeses take more nodes down at once.
    let mut unbounded = s.clone();
    for n in &mut unbounded.nemeses {
        n.max_down = None;
    }
    assert!(most_down(&unbounded) > 2);
}

fn for_(mut f: ScheduledFault, ms: u64) -> ScheduledFault {
    f.undo_after = Some(Span::millis(ms).into());
    f
}

#[test]
fn a_fault_with_for_is_undone_that_long_after_it_fires() {
    let s = scenario(
        5,
        vec![
            for_(fault(500, Crash(NodeId(1).into())), 300),
            for_(
                fault(600, Partition(PartitionShape::Isolate(NodeId(0)))),
                200,
            ),
            for_(fault(700, Freeze(NodeId(2).into())), 100),
            for_(fault(1500, Pause(NodeId(3).into())), 900),
        ],
    );
    let out = Engine::<Probe>::new(&s, None).run();
    let seen: Vec<(u64, &str, String)> = out
        .faults
        .iter()
        .map(|f| {
            (
                f.at.as_micros() / 1000,
                f.action.as_str(),
                f.origin.to_string(),
            )
        })
        .collect();
    let at = |ms: u64, prefix: &str, origin: &str| {
        let found = seen
            .iter()
            .any(|(t, a, o)| *t == ms && a.starts_with(prefix) && o == origin);
        assert!(
            found,
            "{prefix} at {ms}ms [{origin}] missing from {seen:#?}"
        );
    };
    at(500, "crash n2", "test");
    at(800, "restart n2 from its durable state", "test for 300ms");
    at(600, "partition:", "test");
    at(800, "heal: all links up", "test for 200ms");
    at(700, "freeze n3", "test");
    at(800, "unfreeze n3", "test for 100ms");
    // The pause's undo would come after the workload: the final heal resumes it instead.
    at(1500, "pause n4", "test");
    at(2000, "heal everything", "final heal");
    assert!(!seen.iter().any(|(_, a, _)| a.starts_with("resume n4 (")));
}

#[test]
fn the_vopr_mode_leaves_a_minority_down_and_clients_on_the_rest() {
    let mut s = scenario(
        5,
        vec![fault(300, Partition(PartitionShape::MajorityMinority))],
    );
    s.checks.liveness_mode = LivenessMode::Vopr;
    let (out, trace) = run_collect(&s);
    let (again, trace_again) = run_collect(&s);
    assert_eq!((out.fingerprint, &trace), (again.fingerprint, &trace_again));
    let heal = out.faults.last().expect("final heal");
    assert_eq!(heal.origin, FaultOrigin::FinalHeal);
    assert!(
        heal.action.contains("down for good (liveness_mode vopr)"),
        "{}",
        heal.action
    );
    let end = Time::ZERO + s.duration;
    assert_eq!(out.healed_at, Some(end));
    let dead: Vec<usize> = (0..5).filter(|i| out.nodes[*i].is_none()).collect();
    assert!((1..=2).contains(&dead.len()), "{dead:?}");
    for i in &dead {
        assert!(
            heal.action.contains(&format!("crash n{}", i + 1)),
            "{}",
            heal.action
        );
    }
    // After one timeout, no operation is left on a dead node: every event is on a live one,
    // and every completion succeeds.
    let settled = end + s.workload.timeout + s.workload.timeout;
    let late: Vec<_> = out
        .history
        .events
        .iter()
        .filter(|e| e.time > settled)
        .collect();
    assert!(late.len() > 50, "clients ran the liveness phase");
    assert!(late.iter().all(|e| !dead.contains(&e.node.index())));
    assert!(late
        .iter()
        .all(|e| matches!(e.outcome, None | Some(crate::history::Outcome::Ok(_)))));
}
