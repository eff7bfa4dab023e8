//! The fault timeline: scripted faults plus what each nemesis draws from the seed.

use crate::rng::Stream;
use crate::scenario::explain::range_text;
use crate::scenario::fault_kinds::{Draw, Isolate};
use crate::scenario::{Fault, FaultOrigin, IfNone, LivenessMode, Nemesis, OnRole, Scenario};
use crate::scenario::{Latency, Targets};
use simkv_protocols::{NodeId, Span, SpanRange, Time};

/// One fault at its time, with where it came from and what the engine must do around it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimelineFault {
    /// True virtual time (drawn already, for a scripted range).
    pub at: Time,
    /// The action.
    pub fault: Fault,
    /// A scripted `[[fault]]` (where it is written), or a nemesis.
    pub origin: FaultOrigin,
    /// `for`: the fault is undone this long after it fires (the undo is taken from the
    /// fault as it fired, so that a target resolved then is the one restored).
    pub undo_after: Option<Span>,
    /// The nemesis's bound on nodes down at once, which this fault must respect.
    pub max_down: Option<u16>,
    /// How a nemesis's fault and its undo are paired: a skipped fault skips its undo.
    pub pair: Pair,
    /// What to do when its target names a role no node holds.
    pub if_none: IfNone,
    /// Its nemesis's `on_role`: the fault waits for that role, and is skipped if it does
    /// not come before the time given (when its nemesis's next fault is due, so that faults
    /// held back do not pile up into one burst).
    pub on_role: Option<(OnRole, Time)>,
}

/// A nemesis fault's place in its pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pair {
    /// Not part of a pair (scripted faults, undos pushed when a fault fires).
    None,
    /// The fault of pair `k`.
    Fault(u32),
    /// The undo of pair `k`.
    Undo(u32),
}

/// Every fault of a run, sorted by time; scripted faults come before nemesis faults at the
/// same instant, and nemeses keep the file's order. Every draw is made here, from `rng` (the
/// faults stream), before the run starts, so the schedule is fixed by the seed whatever the
/// workload does: the first nemesis draws first (as a lone `[nemesis]` always has), then the
/// others in turn, then the scripted faults' ranges. An exact time or `for` draws nothing.
pub fn timeline(scenario: &Scenario, rng: &mut Stream) -> Vec<TimelineFault> {
    let mut nemesis_faults = Vec::new();
    let mut pairs = 0;
    for nemesis in &scenario.nemeses {
        draw_nemesis(
            nemesis,
            scenario.cluster.nodes,
            scenario.network.default.latency,
            rng,
            &mut pairs,
            &mut nemesis_faults,
        );
    }
    let mut faults: Vec<TimelineFault> = scenario
        .faults
        .iter()
        .map(|f| TimelineFault {
            at: Time(rng_between(rng, f.at.as_micros(), f.at_latest.as_micros())),
            fault: f.fault.clone(),
            origin: match (&f.origin, f.at == f.at_latest) {
                (FaultOrigin::Scripted(at), false) => {
                    let range = SpanRange {
                        min: Span(f.at.as_micros()),
                        max: Span(f.at_latest.as_micros()),
                    };
                    FaultOrigin::Scripted(format!("{at} drawn in {}", range_text(range)))
                }
                (origin, _) => origin.clone(),
            },
            undo_after: f
                .undo_after
                .map(|r| Span(rng_between(rng, r.min.as_micros(), r.max.as_micros()))),
            max_down: None,
            pair: Pair::None,
            if_none: f.if_none,
            on_role: None,
        })
        .collect();
    faults.extend(nemesis_faults);
    // A stable sort keeps scripted before nemesis, and each in its own order.
    faults.sort_by_key(|f| f.at);
    faults
}

/// One nemesis: one fault at a time, each undone before the next.
fn draw_nemesis(
    nemesis: &Nemesis,
    nodes: u16,
    latency: Latency,
    rng: &mut Stream,
    pairs: &mut u32,
    faults: &mut Vec<TimelineFault>,
) {
    let mut t = nemesis.start;
    // The fault of this nemesis waiting for its `on_role` role, whose wait ends when the next
    // one is due.
    let mut waiting: Option<usize> = None;
    loop {
        t += draw(nemesis.interval, rng);
        if let Some(i) = waiting.take() {
            if let Some((_, until)) = &mut faults[i].on_role {
                *until = t.min(nemesis.stop);
            }
        }
        if t >= nemesis.stop || nemesis.kinds.is_empty() {
            break;
        }
        let kind = nemesis.kinds[rng.below(nemesis.kinds.len() as u64) as usize];
        let end = (t + draw(nemesis.duration, rng)).min(nemesis.stop);
        let mut d = Draw {
            node: NodeId(rng.below(u64::from(nodes)) as u16),
            nodes,
            clock_jump_max: nemesis.clock_jump_max,
            clock_drift_max: nemesis.clock_drift_max,
            latency,
            rng,
        };
        let (start_fault, end_fault) = kind.draw(&mut d);
        let step = |at, fault, pair| TimelineFault {
            at,
            fault,
            origin: FaultOrigin::Nemesis,
            undo_after: None,
            max_down: nemesis.max_down,
            pair,
            if_none: IfNone::default(),
            on_role: None,
        };
        let aim = match nemesis.targets.as_slice() {
            [] => None,
            [one] => Some(one.clone()),
            many => Some(Targets::OneOf(many.to_vec())),
        };
        let aimed = aim.and_then(|aim| match &start_fault {
            // An aimed partition cuts the target off from the rest (a leader isolated is
            // the partition that matters most to a leader-based protocol).
            Fault::Partition(_) => Some(Isolate(aim).into()),
            _ => start_fault.retarget(&aim),
        });
        if let Some(aimed) = aimed {
            // Aimed at a role or a set, resolved when it fires (once a node holds the
            // nemesis's `on_role` role, if it has one): its undo is scheduled then, on the
            // nodes it hit; a role nobody holds falls back to a random node.
            faults.push(TimelineFault {
                undo_after: Some(end.since(t)),
                if_none: IfNone::Random,
                on_role: nemesis.on_role.map(|on| (on, nemesis.stop)),
                ..step(t, aimed, Pair::None)
            });
            if nemesis.on_role.is_some() {
                waiting = Some(faults.len() - 1);
            }
        } else {
            faults.push(step(t, start_fault, Pair::Fault(*pairs)));
            faults.push(step(end, end_fault, Pair::Undo(*pairs)));
            *pairs += 1;
        }
        t = end;
    }
}

/// The nodes that crash and stay down in the VOPR liveness mode: a minority of one up to
/// `(n - 1) / 2` nodes, drawn from the faults stream after the timeline, in node order.
/// Empty in the other modes (which draw nothing).
pub fn written_off(scenario: &Scenario, rng: &mut Stream) -> Vec<NodeId> {
    let n = scenario.cluster.nodes;
    if scenario.checks.liveness_mode != LivenessMode::Vopr || n < 3 {
        return Vec::new();
    }
    let count = rng.between(1, u64::from((n - 1) / 2)) as usize;
    let mut ids: Vec<NodeId> = (0..n).map(NodeId).collect();
    rng.shuffle(&mut ids);
    let mut chosen = ids[..count].to_vec();
    chosen.sort();
    chosen
}

/// A nemesis's draw: always from the stream, even from a one-value range, as it always was
/// (so that existing nemeses keep their schedules).
fn draw(range: SpanRange, rng: &mut Stream) -> Span {
    Span(rng.between(range.min.as_micros(), range.max.as_micros()))
}

/// A number in `min..=max`; draws nothing when they are equal, so that an exact value
/// leaves the stream as it was.
fn rng_between(rng: &mut Stream, min: u64, max: u64) -> u64 {
    if min == max {
        min
    } else {
        rng.between(min, max)
    }
}

#[cfg(test)]
#[path = "faults_tests.rs"]
mod tests;
