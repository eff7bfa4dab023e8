//! Criterion benchmarks of the checker's search and the history readers (issue 16).
//!
//! ```text
//! cargo bench -p simkv-sim --bench lincheck
//! ```
//!
//! - `search/multi-key-append`: issue 16's history (10 keys, 50 clients, about 2,000
//!   operations, key 7 violated, keys 1 and 2 intractable), decided without shrinking;
//! - `search/multi-key-append+shrink`: the same, with the default shrinking;
//! - `search/kv-10k`: a linearizable 10,000-operation history on 1000 keys;
//! - `read/edn-10k`, `read/json-10k`: parsing that history written as EDN and as JSON
//!   (throughput in bytes).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use simkv_sim::history::History;
use simkv_sim::lincheck::{
    check_prepared, edn, gen, prepare_simkv, prepare_simkv_stream, Budget, Shrink,
};

fn steps_only(shrink: Shrink) -> Budget {
    Budget {
        max_steps: 1 << 26,
        shrink,
        ..Budget::default()
    }
}

fn search(c: &mut Criterion) {
    let multi = gen::multi_key_append();
    let kv = gen::linearizable_kv(10_000, 1000, 100, "kv");
    let mut group = c.benchmark_group("search");
    group.sample_size(10);
    for (name, shrink) in [
        ("multi-key-append", Shrink::Off),
        ("multi-key-append+shrink", Shrink::Default),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let prepared = prepare_simkv(&multi).expect("well formed");
                check_prepared(prepared, &steps_only(shrink)).verdict.name()
            })
        });
    }
    group.bench_function("kv-10k", |b| {
        b.iter(|| {
            let prepared = prepare_simkv(&kv).expect("well formed");
            check_prepared(prepared, &steps_only(Shrink::Default))
                .verdict
                .name()
        })
    });
    group.finish();
}

fn read(c: &mut Criterion) {
    let history = gen::linearizable_kv(10_000, 1000, 100, "kv");
    let edn_text = edn::write_history(&history);
    let json_text = history.to_json();
    let mut group = c.benchmark_group("read");
    group.throughput(Throughput::Bytes(edn_text.len() as u64));
    group.bench_function("edn-10k", |b| {
        b.iter(|| edn::parse(&edn_text).expect("valid").ops.len())
    });
    group.throughput(Throughput::Bytes(json_text.len() as u64));
    group.bench_function("json-10k", |b| {
        b.iter(|| History::from_json(&json_text).expect("valid").events.len())
    });
    // What `simkv check` does: read and pair, streamed.
    group.throughput(Throughput::Bytes(edn_text.len() as u64));
    group.bench_function("edn-10k-stream-prepare", |b| {
        b.iter(|| {
            let prepared = edn::prepare_stream(edn_text.as_bytes(), None, None);
            prepared.expect("streams").ops()
        })
    });
    group.throughput(Throughput::Bytes(json_text.len() as u64));
    group.bench_function("json-10k-stream-prepare", |b| {
        b.iter(|| {
            let prepared = prepare_simkv_stream(json_text.as_bytes());
            prepared.expect("streams").ops()
        })
    });
    group.finish();
}

criterion_group!(benches, search, read);
criterion_main!(benches);
