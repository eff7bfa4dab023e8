//! Generated histories for the checker's tests and benchmarks: deterministic (a fixed
//! xorshift), no wall clock.
//!
//! [`multi_key_append`] is issue 16's scheduling case: many keys, one violated, two
//! intractable beside it. [`linearizable_kv`] is a large linearizable history for the reader
//! and the search's throughput.

use crate::history::{History, Outcome};
use simkv_protocols::kv::{apply, Value};
use simkv_protocols::{ClientId, Key, NodeId, Op, OpResult, Time};
use std::collections::BTreeMap;

/// A small deterministic generator (xorshift64).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// The key [`multi_key_append`] violates.
pub const VIOLATED_KEY: Key = 7;
/// The keys [`multi_key_append`] makes intractable.
pub const INTRACTABLE_KEYS: [Key; 2] = [1, 2];

/// One event before sorting: time, then completions before invocations at the same time.
struct Event {
    at: u64,
    client: u32,
    op: Op,
    outcome: Option<Outcome>,
}

fn history_of(mut events: Vec<Event>) -> History {
    events.sort_by_key(|e| (e.at, e.outcome.is_none(), e.client));
    let mut history = History::default();
    for e in events {
        history.push(
            Time(e.at * 100),
            ClientId(e.client),
            NodeId(0),
            e.op,
            e.outcome,
        );
    }
    history
}

/// Clients `0..clients` running operations back to back on `keys`, each taking effect at a
/// random instant inside its interval, results from the store's specification applied in
/// that order (so the history is linearizable). `mix`: `kv` (get 40, put 30, append 30) or
/// `rw` (get 50, put 50). Values are unique.
fn linearizable_events(
    ops: usize,
    keys: &[Key],
    clients: u32,
    mix: &str,
    rng: &mut Rng,
) -> Vec<Event> {
    let mut free_at = vec![0u64; clients as usize];
    // (point, call, ret, client, op)
    let mut planned: Vec<(u64, u64, u64, u32, Op)> = Vec::with_capacity(ops);
    for i in 0..ops {
        let client = rng.below(u64::from(clients)) as u32;
        let call = free_at[client as usize] + rng.below(3);
        let point = call + 1 + rng.below(10);
        let ret = point + 1 + rng.below(10);
        free_at[client as usize] = ret + 1;
        let key = keys[rng.below(keys.len() as u64) as usize];
        let value = Value::from(format!("v{i}."));
        let op = match (mix, rng.below(100)) {
            (_, 0..=39) => Op::Get { key },
            ("kv", 70..) => Op::Append { key, value },
            ("rw", 40..=49) => Op::Get { key },
            _ => Op::Put { key, value },
        };
        planned.push((point, call, ret, client, op));
    }
    planned.sort_by_key(|p| (p.0, p.3));
    let mut store: BTreeMap<Key, Value> = BTreeMap::new();
    let mut events = Vec::with_capacity(ops * 2);
    for (_, call, ret, client, op) in planned {
        let result = apply(&mut store, &op);
        events.push(Event {
            at: call,
            client,
            op: op.clone(),
            outcome: None,
        });
        events.push(Event {
            at: ret,
            client,
            op,
            outcome: Some(Outcome::Ok(result)),
        });
    }
    events
}

/// A linearizable history of `ops` operations over `keys` keys by `clients` clients (see
/// `linearizable_events`; `mix` is `kv` or `rw`).
pub fn linearizable_kv(ops: usize, keys: u64, clients: u32, mix: &str) -> History {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ops as u64 ^ (keys << 20) ^ u64::from(clients));
    let keys: Vec<Key> = (0..keys).collect();
    history_of(linearizable_events(ops, &keys, clients, mix, &mut rng))
}

/// Issue 16's case: an append/register history of about 2,000 operations on 10 keys by 50
/// clients. Keys other than 1 and 2 get linearizable gets, puts and appends from clients
/// 0..40; key [`VIOLATED_KEY`] then gets one read of a value never written, after everything
/// else on it returned. Keys [`INTRACTABLE_KEYS`] each get 24 appends of unknown outcome
/// (`info`) from five clients of their own, all in flight together, and then one read that
/// saw all of them in the reverse of their call order: linearizable, but a depth-first search
/// tries the call order first and has factorially many orders of pending appends to refute.
pub fn multi_key_append() -> History {
    let mut rng = Rng(0x5EED_0016);
    let normal: Vec<Key> = (0..10).filter(|k| !INTRACTABLE_KEYS.contains(k)).collect();
    let mut events = linearizable_events(1_900, &normal, 40, "kv", &mut rng);
    let end = events.iter().map(|e| e.at).max().unwrap_or(0) + 10;
    events.push(Event {
        at: end,
        client: 0,
        op: Op::Get { key: VIOLATED_KEY },
        outcome: None,
    });
    events.push(Event {
        at: end + 1,
        client: 0,
        op: Op::Get { key: VIOLATED_KEY },
        outcome: Some(Outcome::Ok(OpResult::Ok {
            value: Some(Value::from("ghost")),
        })),
    });
    for (n, &key) in INTRACTABLE_KEYS.iter().enumerate() {
        let first = 40 + 5 * n as u32;
        let mut suffixes = Vec::new();
        for i in 0..24u32 {
            let client = first + i % 5;
            let value = format!("k{key}a{i:02};");
            let at = 1 + u64::from(i) * 3 + u64::from(client);
            let op = Op::Append {
                key,
                value: value.as_str().into(),
            };
            events.push(Event {
                at,
                client,
                op: op.clone(),
                outcome: None,
            });
            events.push(Event {
                at: at + 1,
                client,
                op,
                outcome: Some(Outcome::Info),
            });
            suffixes.push(value);
        }
        let seen: String = suffixes.iter().rev().map(String::as_str).collect();
        events.push(Event {
            at: end + 5,
            client: first,
            op: Op::Get { key },
            outcome: None,
        });
        events.push(Event {
            at: end + 6,
            client: first,
            op: Op::Get { key },
            outcome: Some(Outcome::Ok(OpResult::Ok {
                value: Some(seen.into()),
            })),
        });
    }
    history_of(events)
}
