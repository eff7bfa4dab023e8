//! Freezing a node: all its traffic is dropped while it keeps running; and the unfreeze.

use super::table::node_fault;
use super::{Draw, Fault, NemesisDraw};

node_fault! {
    /// `freeze = "n1"`.
    Freeze, "freeze", set_frozen(true), undo Unfreeze
}

node_fault! {
    /// `unfreeze = "n1"`.
    Unfreeze, "unfreeze", set_frozen(false)
}

impl NemesisDraw for Freeze {
    fn draw(d: &mut Draw<'_>) -> (Fault, Fault) {
        (Freeze(d.node.into()).into(), Unfreeze(d.node.into()).into())
    }
}
