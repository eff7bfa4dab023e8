//! What a scenario implies before it runs: an estimate of its events, from the rates its
//! timers, nemeses and clients set, so that a configuration that cannot finish within
//! `max_events` is refused at load with an explanation rather than run for minutes.
//!
//! The estimate is rough on purpose (within a small factor of a real run): timers and
//! nemeses fire at their shortest period, clients at their mean think time plus a mean
//! round trip, and each firing or operation costs a message to every other node.

use crate::scenario::model::{Arrival, Latency, Scenario};
use simkv_protocols::{ParamValue, Span};

/// The shortest period the estimate grants anything: below a millisecond the engine's own
/// floors (timers, nemesis intervals) apply.
const FLOOR_US: u64 = 1_000;

/// The events a scenario implies, as a total and a one-line breakdown.
pub(crate) fn estimate_events(s: &Scenario) -> (u128, String) {
    let seconds = s.duration.as_micros().max(1) as u128;
    let per_s = |period_us: u64| 1_000_000u128 / u128::from(period_us.max(FLOOR_US));
    let nodes = u128::from(s.cluster.nodes);
    // A message to each other node, sent and delivered.
    let fan_out = 1 + 2 * nodes.saturating_sub(1);
    let shortest_timer = s
        .cluster
        .params
        .iter()
        .filter_map(|(_, v)| match v {
            ParamValue::Span(span) if *span > Span::ZERO => Some(span.as_micros()),
            ParamValue::SpanRange(r) if r.min > Span::ZERO => Some(r.min.as_micros()),
            _ => None,
        })
        .min();
    let timers = shortest_timer.map_or(0, |t| nodes * per_s(t) * fan_out);
    let nemeses: u128 = s
        .nemeses
        .iter()
        .map(|n| 2 * per_s(n.interval.min.as_micros()) * fan_out)
        .sum();
    let w = &s.workload;
    let op_cost = 2 + 2 * nodes;
    let ops = match w.arrival {
        Arrival::OpenLoop { rate_per_s } => u128::from(rate_per_s),
        Arrival::ClosedLoop { think } => {
            // Saturating: a think time or latency near 2^64 us must not overflow (the fuzz
            // found it); such a client simply acts at most once.
            let round_trip = mean(&s.network.client.latency)
                .as_micros()
                .saturating_mul(2);
            let think = think.min.as_micros() / 2 + think.max.as_micros() / 2;
            let period = think.saturating_add(round_trip);
            u128::from(w.clients) * u128::from(w.in_flight) * per_s(period)
        }
    };
    let clients = ops * op_cost;
    let total = (timers + nemeses + clients) * seconds / 1_000_000;
    let breakdown = format!(
        "per virtual second about {timers} from timers, {nemeses} from nemeses and {clients} \
         from clients"
    );
    (total, breakdown)
}

/// A latency distribution's mean.
fn mean(latency: &Latency) -> Span {
    match *latency {
        Latency::Constant(c) | Latency::Exponential(c) | Latency::Normal(c, _) => c,
        Latency::Uniform(min, max) => Span(min.as_micros() / 2 + max.as_micros() / 2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{load_file, load_str, Overrides};

    /// Every shipped scenario and regression loads, inside its event limit.
    #[test]
    fn shipped_scenarios_are_estimated_well_inside_their_limits() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let mut files = Vec::new();
        for dir in [
            "scenarios",
            "scenarios/raft",
            "scenarios/contention",
            "scenarios/bench",
            "tests/regressions",
        ] {
            let Ok(entries) = std::fs::read_dir(format!("{root}/{dir}")) else {
                continue;
            };
            for e in entries.flatten() {
                let path = e.path();
                if path.extension().is_some_and(|x| x == "toml") {
                    files.push(path);
                }
            }
        }
        files.sort();
        assert!(files.len() > 10, "{files:?}");
        for path in files {
            let s = load_file(&path.to_string_lossy(), &Overrides::default())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let (events, why) = estimate_events(&s);
            assert!(
                events * 4 < u128::from(s.max_events),
                "{}: {events} ({why})",
                path.display()
            );
        }
    }

    #[test]
    fn a_runaway_configuration_is_refused_with_its_estimate() {
        let text = "name = \"t\"\ndescription = \"d\"\nduration = \"1200m\"\n\
                    [cluster]\nprotocol = \"primary\"\nnodes = 9\n\
                    [cluster.params.primary]\nheartbeat = \"1ms\"\nfailure_timeout = \"5ms\"\n";
        let e = load_str("f", text, &Overrides::default()).unwrap_err();
        assert_eq!((e.line, e.column), (Some(3), Some(12)), "{e}");
        assert!(e.message.contains("more than max_events"), "{e}");
    }
}
