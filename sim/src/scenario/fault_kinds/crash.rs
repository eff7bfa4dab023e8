//! Crashing a node: it loses its volatile state and stays down; and the restart from what
//! it persisted.

use super::table::node_fault;
use super::{Draw, Fault, NemesisDraw};

node_fault! {
    /// `crash = "n1"`.
    Crash, "crash", crash, undo Restart
}

node_fault! {
    /// `restart = "n1"`.
    Restart, "restart", restart
}

impl NemesisDraw for Crash {
    fn draw(d: &mut Draw<'_>) -> (Fault, Fault) {
        (Crash(d.node.into()).into(), Restart(d.node.into()).into())
    }
}
