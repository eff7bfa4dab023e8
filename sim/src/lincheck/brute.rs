//! A brute-force linearizability checker for tiny histories: every order, no memo, no list.
//! The fast search is tested against it.

use super::model::{step, Interner, Val};
use super::{Operation, PENDING};

/// Whether some order of `ops` respecting real time explains every result. Pending operations
/// may be left out.
pub fn linearizable(ops: &[Operation], init: Val, values: &mut Interner) -> bool {
    let mut placed = vec![false; ops.len()];
    explore(ops, init, values, &mut placed)
}

fn explore(ops: &[Operation], state: Val, values: &mut Interner, placed: &mut [bool]) -> bool {
    let done = ops
        .iter()
        .zip(placed.iter())
        .all(|(o, &p)| p || o.ret == PENDING);
    if done {
        return true;
    }
    for i in 0..ops.len() {
        if placed[i] {
            continue;
        }
        // `i` may go next only if every operation that returned before its call is placed.
        let ready = ops
            .iter()
            .zip(placed.iter())
            .all(|(p, &done)| done || p.ret == PENDING || p.ret > ops[i].call);
        if !ready {
            continue;
        }
        if let Some(next) = step(&ops[i].kind, state, values) {
            placed[i] = true;
            if explore(ops, next, values, placed) {
                return true;
            }
            placed[i] = false;
        }
    }
    false
}
