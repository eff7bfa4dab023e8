//! Writes generated histories, and times reading them: the reader's MB/s and peak memory.
//!
//! ```text
//! cargo run --release -p simkv-sim --example history_io -- write multi-key OUT.{json,edn}
//! cargo run --release -p simkv-sim --example history_io -- write kv OPS OUT.{json,edn}
//! cargo run --release -p simkv-sim --example history_io -- read FILE.{json,edn}
//! ```
//!
//! `multi-key` is issue 16's scheduling case ([`simkv_sim::lincheck::gen::multi_key_append`]);
//! `kv` a linearizable history of OPS operations on 1000 keys by 100 clients. `read` parses
//! the file (and pairs it for the checker, as `simkv check` does before deciding) and prints
//! the file's size, the time, MB/s and the peak resident memory (`VmHWM`, Linux) against the
//! file's size.

use simkv_sim::history::History;
use simkv_sim::lincheck::{edn, gen, read_simkv_file};
use std::time::Instant;

fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

fn write(history: &History, out: &str) {
    let text = if out.ends_with(".edn") {
        edn::write_history(history)
    } else {
        history.to_json()
    };
    std::fs::write(out, text).expect("the output is writable");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map_or("", String::as_str);
    match (arg(0), arg(1)) {
        ("write", "multi-key") => write(&gen::multi_key_append(), arg(2)),
        ("write", "kv") => {
            let ops: usize = arg(2).parse().expect("OPS is a number");
            write(&gen::linearizable_kv(ops, 1000, 100, "kv"), arg(3));
        }
        ("read", file) => {
            let size = std::fs::metadata(file).expect("the file exists").len();
            let start = Instant::now();
            let ops = if file.ends_with(".edn") {
                let path = std::path::Path::new(file);
                let prepared = edn::read_file_prepared(path, None, None).expect("valid EDN");
                prepared.ops()
            } else {
                let prepared = read_simkv_file(std::path::Path::new(file)).expect("valid JSON");
                prepared.ops()
            };
            let s = start.elapsed().as_secs_f64();
            let peak = peak_rss_bytes();
            println!(
                "{file}: {:.1} MB, {ops} ops paired, {s:.3} s = {:.0} MB/s, peak RSS {:.0} MB = {:.2}x the file",
                size as f64 / 1e6,
                size as f64 / 1e6 / s,
                peak as f64 / 1e6,
                peak as f64 / size as f64
            );
        }
        _ => eprintln!("usage: history_io write multi-key OUT | write kv OPS OUT | read FILE"),
    }
}
