//! Pausing a node: its handlers stop and what reaches it waits; and the resume that runs
//! what waited.

use super::table::node_fault;
use super::{Draw, Fault, NemesisDraw};

node_fault! {
    /// `pause = "n1"`.
    Pause, "pause", pause, undo Resume
}

node_fault! {
    /// `resume = "n1"`.
    Resume, "resume", resume
}

impl NemesisDraw for Pause {
    fn draw(d: &mut Draw<'_>) -> (Fault, Fault) {
        (Pause(d.node.into()).into(), Resume(d.node.into()).into())
    }
}
