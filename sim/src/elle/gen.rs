//! Generated list-append histories, for tests and the benchmark (the shape of Elle's own
//! generator: a pool of active keys, each retired after a number of appends, transactions of
//! a few appends and reads, clients running one transaction at a time).
//!
//! Transactions take effect at one instant between their invocation and completion, in the
//! order of a single store, so a generated history is strictly serializable, unless
//! `stale_per_mille` makes some reads see an older prefix of the key than the store holds
//! (a stale snapshot: G-single and G2-item cycles, and with many, one large strongly
//! connected component).

use super::{Builder, Mop, Status, TxnHistory, Workload};
use std::fmt::Write as _;

/// The shape of a generated history.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Transactions.
    pub txns: usize,
    /// Active keys at any time.
    pub keys: u64,
    /// Clients (processes), each one transaction at a time.
    pub clients: u64,
    /// Appends a key takes before a fresh key replaces it.
    pub max_writes_per_key: u64,
    /// Micro-operations per transaction, at most.
    pub max_mops: u64,
    /// Reads (per thousand) that see a stale prefix.
    pub stale_per_mille: u64,
    /// Transactions (per thousand) that end `:info` (applied or not, by a coin).
    pub info_per_mille: u64,
    /// Whether a last transaction, after every other completed, reads every key (so that
    /// every append is seen by some read).
    pub final_read: bool,
    /// The seed.
    pub seed: u64,
}

impl Default for Shape {
    fn default() -> Shape {
        Shape {
            txns: 1000,
            keys: 100,
            clients: 50,
            max_writes_per_key: 32,
            max_mops: 4,
            stale_per_mille: 0,
            info_per_mille: 0,
            final_read: false,
            seed: 1,
        }
    }
}

/// A small xorshift generator: deterministic, seeded, no dependencies.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// One generated micro-operation: the key (by number) and what it did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GenMop {
    /// Appended this element.
    Append(u64, u64),
    /// Read this list (`None` until known).
    Read(u64, Option<Vec<u64>>),
}

/// One generated event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenEvent {
    /// The process.
    pub process: u64,
    /// `None` for an invocation.
    pub status: Option<Status>,
    /// The micro-operations (reads known on an `:ok` completion).
    pub mops: Vec<GenMop>,
}

/// Generates a history's events.
pub fn events(shape: &Shape) -> Vec<GenEvent> {
    let mut rng = Rng(shape.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let clients = shape.clients.max(1) as usize;
    // Each client's open transaction: its micro-operations, and whether it took effect.
    let mut open: Vec<Option<(Vec<GenMop>, bool)>> = vec![None; clients];
    let mut active: Vec<u64> = (0..shape.keys.max(1)).collect();
    let mut next_key = shape.keys.max(1);
    let mut store: Vec<Vec<u64>> = Vec::new();
    let mut writes: Vec<u64> = Vec::new();
    let mut next_elem = 1u64;
    let mut out = Vec::with_capacity(shape.txns * 2);
    let mut invoked = 0usize;
    while invoked < shape.txns || open.iter().any(Option::is_some) {
        let c = rng.below(clients as u64) as usize;
        match open[c].take() {
            None if invoked < shape.txns => {
                invoked += 1;
                let n = 1 + rng.below(shape.max_mops.max(1));
                let mut mops = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    let slot = rng.below(active.len() as u64) as usize;
                    let key = active[slot];
                    if rng.below(2) == 0 {
                        mops.push(GenMop::Read(key, None));
                    } else {
                        mops.push(GenMop::Append(key, next_elem));
                        next_elem += 1;
                        let need = key as usize + 1;
                        if writes.len() < need {
                            writes.resize(need, 0);
                            store.resize(need, Vec::new());
                        }
                        writes[key as usize] += 1;
                        if writes[key as usize] >= shape.max_writes_per_key {
                            active[slot] = next_key;
                            next_key += 1;
                        }
                    }
                }
                out.push(GenEvent {
                    process: c as u64,
                    status: None,
                    mops: mops.clone(),
                });
                open[c] = Some((mops, false));
            }
            None => {}
            Some((mut mops, false)) => {
                if rng.below(1000) < shape.info_per_mille && rng.below(2) == 0 {
                    // Never takes effect; completes :info below.
                    open[c] = Some((mops, true));
                    continue;
                }
                apply(&mut mops, &mut store, shape, &mut rng);
                open[c] = Some((mops, true));
            }
            Some((mops, true)) => {
                let status = match rng.below(1000) < shape.info_per_mille {
                    true => Status::Info,
                    false => Status::Ok,
                };
                out.push(GenEvent {
                    process: c as u64,
                    status: Some(status),
                    mops,
                });
            }
        }
    }
    if shape.final_read {
        let mops: Vec<GenMop> = (0..store.len() as u64)
            .map(|k| GenMop::Read(k, None))
            .collect();
        out.push(GenEvent {
            process: 0,
            status: None,
            mops: mops.clone(),
        });
        let read = mops
            .iter()
            .map(|m| match m {
                GenMop::Read(k, _) => GenMop::Read(*k, Some(store[*k as usize].clone())),
                other => other.clone(),
            })
            .collect();
        out.push(GenEvent {
            process: 0,
            status: Some(Status::Ok),
            mops: read,
        });
    }
    out
}

/// Takes effect: appends, and reads (maybe stale) of the store.
fn apply(mops: &mut [GenMop], store: &mut Vec<Vec<u64>>, shape: &Shape, rng: &mut Rng) {
    for m in mops.iter_mut() {
        match m {
            GenMop::Append(k, e) => {
                let k = *k as usize;
                if store.len() <= k {
                    store.resize(k + 1, Vec::new());
                }
                store[k].push(*e);
            }
            GenMop::Read(k, value) => {
                let list = store.get(*k as usize).cloned().unwrap_or_default();
                let mut list = list;
                if !list.is_empty() && rng.below(1000) < shape.stale_per_mille {
                    let cut = 1 + rng.below(list.len().min(3) as u64) as usize;
                    list.truncate(list.len() - cut);
                }
                *value = Some(list);
            }
        }
    }
}

/// The events as a [`TxnHistory`].
pub fn history(shape: &Shape) -> TxnHistory {
    let mut b = Builder::new(true);
    for (i, e) in events(shape).into_iter().enumerate() {
        let mops: Vec<Mop> = e
            .mops
            .iter()
            .map(|m| match m {
                GenMop::Append(k, v) => Mop::Append {
                    key: b.key(&k.to_string()),
                    value: b.value(&v.to_string()),
                },
                GenMop::Read(k, r) => Mop::ReadList {
                    key: b.key(&k.to_string()),
                    value: match e.status {
                        Some(Status::Ok) => r
                            .as_ref()
                            .map(|r| r.iter().map(|v| b.value(&v.to_string())).collect()),
                        _ => None,
                    },
                },
            })
            .collect();
        let done = match e.status {
            None => b.invoke(e.process, mops, i).map(|_| ()),
            Some(s) => b.complete(e.process, s, Some(mops)),
        };
        assert!(
            done.is_ok(),
            "the generator pairs every completion: {done:?}"
        );
    }
    match b.finish(Workload::ListAppend) {
        Ok(h) => h,
        Err(e) => panic!("generated appends are unique: {e}"),
    }
}

/// The events as Jepsen EDN, one operation per line.
pub fn edn(events: &[GenEvent]) -> String {
    let mut out = String::new();
    for (i, e) in events.iter().enumerate() {
        let ty = match e.status {
            None => "invoke",
            Some(Status::Ok) => "ok",
            Some(Status::Fail) => "fail",
            Some(Status::Info) => "info",
        };
        let mops: Vec<String> = e
            .mops
            .iter()
            .map(|m| match m {
                GenMop::Append(k, v) => format!("[:append {k} {v}]"),
                GenMop::Read(k, Some(r)) if e.status == Some(Status::Ok) => {
                    let items: Vec<String> = r.iter().map(u64::to_string).collect();
                    format!("[:r {k} [{}]]", items.join(" "))
                }
                GenMop::Read(k, _) => format!("[:r {k} nil]"),
            })
            .collect();
        let _ = writeln!(
            out,
            "{{:index {i}, :type :{ty}, :process {}, :f :txn, :value [{}]}}",
            e.process,
            mops.join(" ")
        );
    }
    out
}
