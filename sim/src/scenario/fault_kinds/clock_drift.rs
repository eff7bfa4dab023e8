//! Changing the rate at which a node's clock drifts from true time.

use super::{Applied, Fault, FaultKind, FaultTarget};
use crate::scenario::explain::node;
use crate::scenario::validator::{Checked, Validator};
use crate::scenario::values::{Int, NodeName};
use serde::Deserialize;
use simkv_protocols::NodeId;
use toml::Spanned;

/// `clock_drift = { node = "n1", ppm = -500 }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClockDrift {
    /// Whose clock.
    pub node: NodeId,
    /// New signed rate error, parts per million.
    pub ppm: i64,
}

/// `clock_drift = { node = "n1", ppm = -500 }`, as serde reads it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClockDrift {
    node: Spanned<NodeName>,
    ppm: Spanned<Int>,
}

impl FaultKind for ClockDrift {
    type Raw = RawClockDrift;

    fn check(raw: &Spanned<RawClockDrift>, v: &Validator) -> Checked<ClockDrift> {
        let raw = raw.get_ref();
        Ok(ClockDrift {
            node: v.node(&raw.node)?,
            ppm: v.drift_ppm(&raw.ppm)?,
        })
    }

    fn explain(&self) -> String {
        let (n, ppm) = (node(self.node), self.ppm);
        format!("clock_drift = {{ node = {n}, ppm = {ppm} }}")
    }

    fn apply(&self, target: &mut dyn FaultTarget) -> Applied {
        target.clock_drift(self.node, self.ppm);
        Applied::Record(format!("clock drift {} now {}ppm", self.node, self.ppm))
    }
    /// Back to an exact rate (the scenario's `[[clock]]` drift is not restored).
    fn undo(&self) -> Option<Fault> {
        let back = ClockDrift {
            node: self.node,
            ppm: 0,
        };
        Some(back.into())
    }
}
