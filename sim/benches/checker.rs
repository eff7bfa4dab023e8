//! Throughput and peak memory of the linearizability checker on generated histories.
//!
//! ```text
//! cargo bench -p simkv-sim --bench checker                 # the whole matrix
//! cargo bench -p simkv-sim --bench checker -- 1000000 1 7  # one case: OPS KEYS CLIENTS [MIX]
//! ```
//!
//! "pairing" is [`prepare_simkv`]: matching invocations with completions and interning
//! values out of simkv's in-memory history; "deciding" is [`check_prepared`]: zones or the
//! search, per key. Each case runs in its own process (the matrix re-runs this binary), so
//! that the reported peak resident memory (`VmHWM`) is that case's. Histories are linearizable by construction:
//! clients run operations back to back with random durations, each takes effect at a random
//! instant inside its interval, and results come from the store's specification applied in
//! that order. Values are unique. MIX `kv` is get 50 / put 40 / cas 10 (decided by the
//! search); `rw` is get 50 / put 50 (decided by the zones test); `txn` is get 30 / put 30 /
//! txn 40, each txn three gets or puts on distinct keys, so the keys txns touch are joined
//! into one partition over tuple states (strict serializability). The budget is 60 s per case;
//! a case that runs out reports `unknown`, which is an answer within budget.

use simkv_protocols::kv::apply;
use simkv_protocols::{ClientId, NodeId, Op, OpResult, Time, Value};
use simkv_sim::history::{History, Outcome};
use simkv_sim::lincheck::{check_prepared, prepare_simkv, Budget};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// One planned operation: interval, linearization point, client, key and what it does.
struct Planned {
    call: u64,
    point: u64,
    ret: u64,
    client: u32,
    op: Op,
}

fn plan(ops: usize, keys: u64, clients: u32, mix: &str, rng: &mut Rng) -> Vec<Planned> {
    let mut free_at = vec![0u64; clients as usize];
    let mut planned = Vec::with_capacity(ops);
    for i in 0..ops {
        let client = rng.below(u64::from(clients)) as u32;
        let call = free_at[client as usize] + rng.below(3);
        let point = call + 1 + rng.below(10);
        let ret = point + 1 + rng.below(10);
        free_at[client as usize] = ret + 1;
        let key = rng.below(keys);
        let roll = rng.below(100);
        let value = Value::from(format!("v{i}"));
        let op = match (mix, roll) {
            ("txn", 0..=29) => Op::Get { key },
            ("txn", 30..=59) => Op::Put { key, value },
            ("txn", _) => txn(i, keys, rng),
            (_, 0..=49) => Op::Get { key },
            ("kv", 90..) => Op::Cas {
                key,
                expected: Value::default(),
                new: value,
            },
            _ => Op::Put { key, value },
        };
        planned.push(Planned {
            call,
            point,
            ret,
            client,
            op,
        });
    }
    planned
}

/// Three gets or puts on distinct keys (fewer when there are fewer keys).
fn txn(i: usize, keys: u64, rng: &mut Rng) -> Op {
    let mut chosen: Vec<u64> = Vec::new();
    while chosen.len() < 3.min(keys as usize) {
        let key = rng.below(keys);
        if !chosen.contains(&key) {
            chosen.push(key);
        }
    }
    let ops = chosen
        .into_iter()
        .enumerate()
        .map(|(n, key)| match rng.below(2) {
            0 => Op::Get { key },
            _ => Op::Put {
                key,
                value: format!("v{i}.{n}").into(),
            },
        })
        .collect();
    Op::Txn { ops }
}

/// A linearizable history: `plan`, then the specification applied in point order.
fn generate(ops: usize, keys: u64, clients: u32, mix: &str) -> History {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ops as u64 ^ (keys << 20) ^ u64::from(clients));
    let mut planned = plan(ops, keys, clients, mix, &mut rng);
    planned.sort_by_key(|p| (p.point, p.client));
    let mut store: BTreeMap<u64, Value> = BTreeMap::new();
    let mut events: Vec<(u64, u8, usize, Option<OpResult>)> = Vec::with_capacity(ops * 2);
    for (i, p) in planned.iter_mut().enumerate() {
        let current = store.get(&p.op.key());
        if let Op::Cas { expected, .. } = &mut p.op {
            // Mostly a cas that applies; sometimes one that is refused.
            *expected = match (current, rng.below(10)) {
                (Some(v), 0..=6) => v.clone(),
                _ => "never".into(),
            };
        }
        let result = apply(&mut store, &p.op);
        events.push((p.call, 0, i, None));
        events.push((p.ret, 1, i, Some(result)));
    }
    // Same instant: completions before invocations, then by client, so clients never overlap.
    events.sort_by_key(|&(t, kind, i, _)| (t, 1 - kind, planned[i].client));
    let mut history = History::default();
    for (t, _, i, result) in events {
        let p = &planned[i];
        let outcome = result.map(Outcome::Ok);
        history.push(
            Time(t * 100),
            ClientId(p.client),
            NodeId(0),
            p.op.clone(),
            outcome,
        );
    }
    history
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

fn run_one(ops: usize, keys: u64, clients: u32, mix: &str) {
    let history = generate(ops, keys, clients, mix);
    let before = peak_rss_mib();
    let budget = Budget {
        deadline: Some(Duration::from_secs(60)),
        ..Budget::default()
    };
    let start = Instant::now();
    let prepared = prepare_simkv(&history).expect("generated histories are well formed");
    let prepare_s = start.elapsed().as_secs_f64();
    let out = check_prepared(prepared, &budget);
    let total_s = start.elapsed().as_secs_f64();
    let decide_s = out.check_time.as_secs_f64();
    let search_steps: u64 = out.keys.iter().map(|k| k.steps).sum();
    println!(
        "{ops:>8} ops {keys:>5} keys {clients:>4} clients {mix}: {:<16} total {total_s:>7.3} s \
         ({:>5.2} M ops/s; pairing {prepare_s:.3} s, deciding {decide_s:.3} s = {:>5.2} M ops/s) \
         steps {search_steps:>10}  peak RSS {:.0} MiB (history alone {:.0} MiB)",
        out.verdict.name(),
        ops as f64 / total_s / 1e6,
        ops as f64 / decide_s / 1e6,
        peak_rss_mib(),
        before
    );
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if args.len() >= 3 {
        let n = |i: usize| {
            args[i]
                .parse::<u64>()
                .expect("OPS KEYS CLIENTS are integers")
        };
        let mix = args.get(3).map_or("kv", String::as_str);
        run_one(n(0) as usize, n(1), n(2) as u32, mix);
        return;
    }
    let me = std::env::current_exe().expect("the bench knows its path");
    let mut cases: Vec<(u64, u64, u64, &str)> = Vec::new();
    for ops in [10_000, 100_000, 1_000_000] {
        for keys in [1, 10, 1000] {
            for clients in [10, 100] {
                cases.push((ops, keys, clients, "kv"));
            }
        }
    }
    cases.push((1_000_000, 1, 7, "kv"));
    cases.push((1_000_000, 1000, 10, "rw"));
    cases.push((1_000_000, 1, 100, "rw"));
    for ops in [10_000, 100_000] {
        for (keys, clients) in [(10, 10), (1000, 10), (1000, 100)] {
            cases.push((ops, keys, clients, "txn"));
        }
    }
    for (ops, keys, clients, mix) in cases {
        let args = [
            ops.to_string(),
            keys.to_string(),
            clients.to_string(),
            mix.to_string(),
        ];
        let status = std::process::Command::new(&me).args(&args).status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("case {args:?} failed");
        }
    }
}
