//! The near-linear check for registers whose written values are unique: Gibbons & Korach's
//! zones (1997; Golab, Li & Shah 2011 give it in this form).
//!
//! With unique values, each read names the write it read from, so operations fall into
//! clusters, one per value: its write and the reads of it. A cluster's zone runs from the
//! earliest completion `f` among its operations to the latest invocation `s`. When `f < s`
//! the zone is *forward*: the value must be the register's value throughout `(f, s)`. When
//! `s < f` it is *backward*: the cluster only needs some instant inside `(s, f)`. The history
//! is linearizable iff (1) every read's value was written, by a write invoked before the read
//! completed; (2) no two forward zones overlap; (3) no backward zone lies inside a forward
//! zone. Sorting makes that O(n log n).
//!
//! The initial value is a cluster whose write happened before everything, at position 0:
//! positions are remapped, a call at `p` to `2p + 2` and a return to `2p + 1`, which leaves 0
//! free and never lets a call and a return compare equal. (Should a return share a position
//! with a call, which a well-formed history never does, the return comes first, as in the
//! search and the brute-force reference.) A write that never completed and was never read is
//! dropped (it may never have happened); one that was read took effect somewhere after its
//! call.

use super::model::{FxHashMap, Kind, Val};
use super::{Operation, PENDING};

#[derive(Clone, Copy)]
struct Cluster {
    /// Earliest completion (remapped; the initial value's write completes at 0).
    first_ret: u64,
    /// Latest invocation (remapped).
    last_call: u64,
    /// Remapped call of the write, if one was seen.
    write_call: Option<u64>,
    /// Earliest completion among the reads, to check no read ends before its write starts.
    first_read_ret: u64,
    has_reads: bool,
}

/// `Some(verdict)` when the zones test applies to `ops` (reads and writes only, no value
/// written twice, none written equal to `init`); `None` when it does not.
pub fn check(ops: &[Operation], init: Val) -> Option<bool> {
    let mut clusters: FxHashMap<Val, Cluster> = FxHashMap::default();
    clusters.reserve(ops.len() / 2 + 1);
    let fresh = |write_call: Option<u64>, first_ret: u64| Cluster {
        first_ret,
        last_call: write_call.unwrap_or(0),
        write_call,
        first_read_ret: u64::MAX,
        has_reads: false,
    };
    clusters.insert(init, fresh(Some(0), 0));
    for o in ops {
        let call = o.call.saturating_mul(2).saturating_add(2);
        let ret = match o.ret {
            PENDING => PENDING,
            r => r.saturating_mul(2).saturating_add(1),
        };
        match o.kind {
            Kind::Write(v) => {
                let c = clusters.entry(v).or_insert_with(|| fresh(None, u64::MAX));
                if c.write_call.is_some() {
                    return None;
                }
                c.write_call = Some(call);
                c.first_ret = c.first_ret.min(ret);
                c.last_call = c.last_call.max(call);
            }
            Kind::Read(v) => {
                let c = clusters.entry(v).or_insert_with(|| fresh(None, u64::MAX));
                c.has_reads = true;
                c.first_ret = c.first_ret.min(ret);
                c.first_read_ret = c.first_read_ret.min(ret);
                c.last_call = c.last_call.max(call);
            }
            _ => return None,
        }
    }
    let mut forward: Vec<(u64, u64)> = Vec::new();
    let mut backward: Vec<(u64, u64)> = Vec::new();
    // Iteration order does not matter: zones are sorted before anything is compared.
    for c in clusters.values() {
        let Some(write_call) = c.write_call else {
            return Some(false); // a read of a value nobody wrote
        };
        if c.has_reads && c.first_read_ret < write_call {
            return Some(false); // a read that ended before its write began
        }
        if !c.has_reads && c.first_ret == PENDING {
            continue; // a write that may never have happened, and nobody saw
        }
        if c.first_ret < c.last_call {
            forward.push((c.first_ret, c.last_call));
        } else {
            backward.push((c.last_call, c.first_ret));
        }
    }
    Some(zones_compatible(forward, &backward))
}

/// Conditions (2) and (3): forward zones pairwise disjoint, no backward zone inside one.
fn zones_compatible(mut forward: Vec<(u64, u64)>, backward: &[(u64, u64)]) -> bool {
    forward.sort_unstable();
    if forward.windows(2).any(|w| w[1].0 < w[0].1) {
        return false;
    }
    backward.iter().all(|&(s, f)| {
        // Forward zones are disjoint, so only the last one starting before `s` can hold it.
        let i = forward.partition_point(|&(start, _)| start < s);
        i == 0 || forward[i - 1].1 < f
    })
}

/// Zones' condition (1) where values repeat: the index of a completed read whose value is
/// neither `init` nor written by any operation invoked before the read completed. Such a
/// read fits no linearization, whatever the rest does, so the history is not linearizable
/// however hard the search finds it (60 concurrent writes of 3 values and a read of a value
/// nobody wrote ran the search out of its budget). `None` when every read is explained, or
/// the history has kinds this does not reason about (appends, siblings, transactions).
/// Refused and unknown writes count as writing: leniency can only miss a violation.
pub fn unwritten_read(ops: &[Operation], init: Val) -> Option<usize> {
    // Looked up only, never iterated.
    let mut first_write: FxHashMap<Val, u64> = FxHashMap::default();
    let mut wrote = |v: Val, call: u64| {
        let at = first_write.entry(v).or_insert(call);
        *at = (*at).min(call);
    };
    for o in ops {
        match o.kind {
            Kind::Read(_) => {}
            Kind::Write(v) | Kind::Update { value: v, .. } | Kind::Cas { new: v, .. } => {
                wrote(v, o.call)
            }
            Kind::Delete { .. } => wrote(super::model::ABSENT, o.call),
            _ => return None,
        }
    }
    ops.iter().position(|o| match o.kind {
        Kind::Read(v) if o.ret != PENDING && v != init => {
            first_write.get(&v).is_none_or(|call| *call >= o.ret)
        }
        _ => false,
    })
}
