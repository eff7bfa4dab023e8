//! The fault timeline: scripted faults plus what a nemesis draws from the seed.

use crate::rng::Stream;
use crate::scenario::fault_kinds::Draw;
use crate::scenario::{FaultOrigin, IfNone, Scenario, ScheduledFault};
use simkv_protocols::{NodeId, Span, SpanRange};

/// One fault at its time, with where it came from (a scripted one, or the nemesis).
pub type TimelineFault = ScheduledFault;

/// Every fault of a run, sorted by time; scripted faults come before nemesis faults at the
/// same instant. The nemesis draws only from `rng` (the faults stream), all at the start, so
/// its schedule is fixed by the seed whatever the workload does.
pub fn timeline(scenario: &Scenario, rng: &mut Stream) -> Vec<TimelineFault> {
    let mut faults = scenario.faults.clone();
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
            let mut d = Draw {
                node: NodeId(rng.below(u64::from(nodes)) as u16),
                nodes,
                clock_jump_max: nemesis.clock_jump_max,
                latency: scenario.network.default.latency,
                rng,
            };
            let (start_fault, end_fault) = kind.draw(&mut d);
            faults.push(TimelineFault {
                at: t,
                fault: start_fault,
                origin: FaultOrigin::Nemesis,
                if_none: IfNone::default(),
            });
            faults.push(TimelineFault {
                at: end,
                fault: end_fault,
                origin: FaultOrigin::Nemesis,
                if_none: IfNone::default(),
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
