//! Times the Elle checker on generated list-append histories.
//!
//! ```text
//! cargo run --release -p simkv-sim --example elle_bench -- TXNS [STALE_PER_MILLE]
//! ```
//!
//! 100 active keys (each retired after 32 appends), 50 clients, up to 4 micro-operations per
//! transaction. `STALE_PER_MILLE` makes that many reads per thousand see a stale prefix,
//! which ties transactions into large strongly connected components full of G-single and
//! G2-item cycles; 0 gives a strictly serializable history. Prints generation and checking
//! wall time, the anomalies found, and the peak resident memory (`VmHWM`, Linux).

use simkv_sim::elle::{self, gen};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let txns: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(3000);
    let stale: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(0);
    let shape = gen::Shape {
        txns,
        stale_per_mille: stale,
        ..gen::Shape::default()
    };
    let t0 = Instant::now();
    let history = gen::history(&shape);
    let generated = t0.elapsed();
    let t1 = Instant::now();
    let report = elle::check(&history, &elle::Limits::default());
    let checked = t1.elapsed();
    let found: Vec<String> = report
        .anomalies
        .iter()
        .map(|g| format!("{} x{}", g.name, g.count))
        .collect();
    let peak = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .map(str::to_string)
        })
        .unwrap_or_default();
    println!(
        "{txns} txns, stale {stale}/1000: generated in {:.2} s, checked in {:.3} s; \
         anomalies: [{}]; {}",
        generated.as_secs_f64(),
        checked.as_secs_f64(),
        found.join(", "),
        peak.split_whitespace().collect::<Vec<_>>().join(" ")
    );
}
