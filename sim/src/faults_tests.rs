//! The timeline: several nemeses on one timeline, and scripted ranges drawn from the seed.

use super::*;
use crate::rng::Streams;
use crate::scenario::{load_str, Overrides};

const BASE: &str = r#"name = "t"
description = "timeline"
duration = "40s"

[cluster]
protocol = "raft"
nodes = 5
"#;

fn scenario(extra: &str) -> Scenario {
    let text = format!("{BASE}{extra}");
    load_str("t.toml", &text, &Overrides::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn line(s: &Scenario, seed: u64) -> Vec<TimelineFault> {
    timeline(s, &mut Streams::new(seed, 5).faults)
}

const PARTITIONS: &str = "[[nemesis]]\nkinds = [\"partition\"]\n";
const CRASHES: &str = "[[nemesis]]\nkinds = [\"crash\", \"freeze\"]\nmax_down = 1\n";

/// The first nemesis draws what it drew alone; the second draws after it.
#[test]
fn a_second_nemesis_leaves_the_first_ones_draws_alone() {
    for seed in 1..=10 {
        let alone = line(&scenario(PARTITIONS), seed);
        let table = line(&scenario("[nemesis]\nkinds = [\"partition\"]\n"), seed);
        assert_eq!(alone, table);
        let both = line(&scenario(&format!("{PARTITIONS}{CRASHES}")), seed);
        let first = alone.len() as u32 / 2;
        let of_first: Vec<TimelineFault> = both
            .iter()
            .filter(|f| matches!(f.pair, Pair::Fault(k) | Pair::Undo(k) if k < first))
            .cloned()
            .collect();
        assert_eq!(of_first, alone, "seed {seed}");
        assert!(both.len() > alone.len());
        assert!(both.windows(2).all(|w| w[0].at <= w[1].at), "sorted");
        let bounded = both.iter().filter(|f| f.max_down == Some(1)).count();
        assert_eq!(bounded, both.len() - alone.len());
    }
}

/// Each nemesis keeps one fault at a time, but two nemeses overlap: a partition and a crash
/// are in force at once.
#[test]
fn two_nemeses_overlap_on_one_timeline() {
    for seed in 1..=10 {
        let faults = line(&scenario(&format!("{PARTITIONS}{CRASHES}")), seed);
        let first = line(&scenario(PARTITIONS), seed).len() as u32 / 2;
        let windows = |mine: fn(u32, u32) -> bool| -> Vec<(Time, Time)> {
            let when = |p: Pair| faults.iter().find(|f| f.pair == p).map(|f| f.at);
            (0..faults.len() as u32)
                .filter(|k| mine(*k, first))
                .filter_map(|k| Some((when(Pair::Fault(k))?, when(Pair::Undo(k))?)))
                .collect()
        };
        let a = windows(|k, first| k < first);
        let b = windows(|k, first| k >= first);
        let overlap = a
            .iter()
            .any(|(s1, e1)| b.iter().any(|(s2, e2)| s1 < e2 && s2 < e1));
        assert!(overlap, "seed {seed}: {a:?} {b:?}");
    }
}

const RANGED: &str = r#"
[[fault]]
at = "8s..12s"
crash = "n2"
for = "1s..5s"
"#;

#[test]
fn ranges_draw_within_bounds_vary_across_seeds_and_repeat_within_one() {
    let s = scenario(RANGED);
    let mut times = Vec::new();
    for seed in 1..=60 {
        let faults = line(&s, seed);
        assert_eq!(faults, line(&s, seed), "seed {seed} drew twice the same");
        let crash = &faults[0];
        assert!((8_000_000..=12_000_000).contains(&crash.at.as_micros()));
        let length = crash.undo_after.expect("for").as_micros();
        assert!((1_000_000..=5_000_000).contains(&length));
        assert_eq!(crash.origin.to_string(), "t.toml:10:6 drawn in 8s..12s");
        times.push((crash.at, length));
    }
    times.sort();
    times.dedup();
    assert!(times.len() > 50, "draws vary across seeds: {times:?}");
}

/// Exact times and lengths draw nothing: the faults stream is left as it was, so existing
/// scenarios keep their partition shapes and their fingerprints.
#[test]
fn exact_values_draw_nothing() {
    let exact = "[[fault]]\nat = \"8s\"\ncrash = \"n2\"\nfor = \"2s\"\n";
    let s = scenario(exact);
    let mut used = Streams::new(3, 5).faults;
    let faults = timeline(&s, &mut used);
    assert_eq!(faults[0].at, Time(8_000_000));
    assert_eq!(faults[0].undo_after, Some(Span::secs(2)));
    assert_eq!(faults[0].origin.to_string(), "t.toml:9:6");
    assert_eq!(used.next_u64(), Streams::new(3, 5).faults.next_u64());
}

#[test]
fn the_vopr_mode_writes_off_a_minority_drawn_per_seed() {
    let s = scenario("[checks]\nliveness_mode = \"vopr\"\n");
    let mut seen = Vec::new();
    for seed in 1..=40 {
        let dead = written_off(&s, &mut Streams::new(seed, 5).faults);
        assert_eq!(dead, written_off(&s, &mut Streams::new(seed, 5).faults));
        assert!((1..=2).contains(&dead.len()), "{dead:?}");
        assert!(dead.windows(2).all(|w| w[0] < w[1]));
        seen.push(dead);
    }
    seen.sort();
    seen.dedup();
    assert!(seen.len() > 5, "{seen:?}");
    let mut untouched = Streams::new(1, 5).faults;
    assert!(written_off(&scenario(""), &mut untouched).is_empty());
    assert_eq!(untouched.next_u64(), Streams::new(1, 5).faults.next_u64());
}
