//! The fault timeline: scripted faults plus what a nemesis draws from the seed.

use crate::rng::Stream;
use crate::scenario::{Fault, NemesisKind, PartitionShape, Scenario};
use simkv_protocols::{NodeId, Span, SpanRange, Time};

/// One fault at its time, with where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimelineFault {
    /// True virtual time.
    pub at: Time,
    /// The action.
    pub fault: Fault,
    /// `file:line:col` of a scripted fault, or `nemesis`.
    pub origin: String,
}

/// Every fault of a run, sorted by time; scripted faults come before nemesis faults at the
/// same instant. The nemesis draws only from `rng` (the faults stream), all at the start, so
/// its schedule is fixed by the seed whatever the workload does.
pub fn timeline(scenario: &Scenario, rng: &mut Stream) -> Vec<TimelineFault> {
    let mut faults: Vec<TimelineFault> = scenario
        .faults
        .iter()
        .map(|f| TimelineFault {
            at: f.at,
            fault: f.fault.clone(),
            origin: f.origin.clone(),
        })
        .collect();
    if let Some(nemesis) = &scenario.nemesis {
        let nodes = scenario.cluster.nodes;
        let mut t = nemesis.start;
        loop {
            t += draw(nemesis.interval, rng);
            if t >= nemesis.stop || nemesis.kinds.is_empty() {
                break;
            }
            let kind = nemesis.kinds[rng.below(nemesis.kinds.len() as u64) as usize];
            let end = (t + draw(nemesis.duration, rng)).min(nemesis.stop);
            let (start_fault, end_fault) = nemesis_pair(kind, nodes, nemesis.clock_jump_max, rng);
            let origin = "nemesis".to_string();
            faults.push(TimelineFault {
                at: t,
                fault: start_fault,
                origin: origin.clone(),
            });
            faults.push(TimelineFault {
                at: end,
                fault: end_fault,
                origin,
            });
            t = end;
        }
    }
    // A stable sort keeps scripted before nemesis, and each in its own order.
    faults.sort_by_key(|f| f.at);
    faults
}

fn draw(range: SpanRange, rng: &mut Stream) -> Span {
    Span(rng.between(range.min.as_micros(), range.max.as_micros()))
}

/// A fault and the action that undoes it.
fn nemesis_pair(kind: NemesisKind, nodes: u16, jump_max: Span, rng: &mut Stream) -> (Fault, Fault) {
    let node = NodeId(rng.below(u64::from(nodes)) as u16);
    match kind {
        NemesisKind::Partition => {
            let shapes: &[PartitionShape] = if nodes >= 3 {
                &[
                    PartitionShape::MajorityMinority,
                    PartitionShape::IsolateRandom,
                    PartitionShape::Bridge,
                    PartitionShape::Ring,
                ]
            } else {
                &[PartitionShape::IsolateRandom]
            };
            let shape = shapes[rng.below(shapes.len() as u64) as usize].clone();
            (Fault::Partition(shape), Fault::Heal)
        }
        NemesisKind::Freeze => (Fault::Freeze(node), Fault::Unfreeze(node)),
        NemesisKind::Pause => (Fault::Pause(node), Fault::Resume(node)),
        NemesisKind::Crash => (Fault::Crash(node), Fault::Restart(node)),
        NemesisKind::ClockJump => {
            let magnitude = rng.between(1, jump_max.as_micros().max(1)) as i64;
            let by_us = if rng.below(2) == 0 {
                magnitude
            } else {
                -magnitude
            };
            (
                Fault::ClockJump { node, by_us },
                Fault::ClockJump {
                    node,
                    by_us: -by_us,
                },
            )
        }
    }
}
