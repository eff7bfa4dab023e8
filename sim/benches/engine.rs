//! Criterion benchmarks of the engine loop (issue 16): events per second of a run, with
//! fingerprinting and invariants on, as `simkv run` does them.
//!
//! ```text
//! cargo bench -p simkv-sim --bench engine
//! cargo bench -p simkv-sim --bench engine -- raft   # one protocol
//! ```
//!
//! - `engine/NAME`: the simulation alone (`Engine::run`) of `scenarios/bench/NAME.toml`
//!   shortened to 3 s of workload, throughput in events (criterion's `elem/s` is events/s);
//! - `run/NAME`: the same run with its post-run checks (`runner::run`), also per event, so
//!   that the two rows' ratio is the checks' share.
//!
//! `scripts/bench` measures the full-length scenarios and the sweeps, through the binary.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use simkv_protocols::primary::Primary;
use simkv_protocols::raft::Raft;
use simkv_protocols::Protocol;
use simkv_sim::engine::Engine;
use simkv_sim::runner::{run, RunOptions};
use simkv_sim::scenario::{load_file, Overrides, Scenario};

/// `scenarios/bench/NAME.toml`, seed 1, its workload cut to 3 s.
fn scenario(name: &str) -> Scenario {
    let path = format!(
        "{}/../scenarios/bench/{name}.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let overrides = Overrides {
        seed: Some(1),
        sets: vec!["duration=3s".to_string()],
        ..Overrides::default()
    };
    load_file(&path, &overrides).unwrap_or_else(|e| panic!("{e}"))
}

fn bench_one<P: Protocol>(c: &mut Criterion, name: &str) {
    let scenario = scenario(name);
    let events = Engine::<P>::new(&scenario, None).run().stats.events;
    let mut group = c.benchmark_group("engine");
    group.sample_size(10);
    group.throughput(Throughput::Elements(events));
    group.bench_function(name, |b| {
        b.iter(|| Engine::<P>::new(&scenario, None).run().fingerprint)
    });
    group.finish();
    let mut group = c.benchmark_group("run");
    group.sample_size(10);
    group.throughput(Throughput::Elements(events));
    group.bench_function(name, |b| {
        b.iter(|| run(&scenario, RunOptions::default()).report.events)
    });
    group.finish();
}

fn engine(c: &mut Criterion) {
    bench_one::<Primary>(c, "primary-100-fast");
    bench_one::<Raft>(c, "raft-100-fast");
}

criterion_group!(benches, engine);
criterion_main!(benches);
