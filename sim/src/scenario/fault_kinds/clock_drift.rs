//! Changing the rate at which a node's clock drifts from true time: scripted
//! (`clock_drift = { node = "leader", ppm = -200000 }`) or drawn by a `clock-drift` nemesis,
//! which aims it like any node fault (a slow leader is what breaks a lease that trusts its
//! clock, Raft thesis 6.4.1) and puts the scenario's rate back after the fault's duration.

use super::{Applied, Draw, Fault, FaultKind, FaultTarget, NemesisDraw};
use crate::scenario::targets::{RawTargets, Targets, World};
use crate::scenario::validator::{Checked, Validator};
use crate::scenario::values::Int;
use serde::Deserialize;
use toml::Spanned;

/// `clock_drift = { node = "n1", ppm = -500 }`; `ppm = "base"` is the scenario's rate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClockDrift {
    /// Whose clock: a node, a role or a set, resolved when the fault fires.
    pub node: Targets,
    /// The new rate.
    pub ppm: DriftRate,
}

/// A clock's rate error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriftRate {
    /// Signed parts per million.
    Ppm(i64),
    /// What the scenario's `[[clock]]` for the node says (0 without one).
    Base,
}

/// `clock_drift = { node = "n1", ppm = -500 }`, as serde reads it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClockDrift {
    node: Spanned<RawTargets>,
    ppm: Spanned<RawRate>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawRate {
    Ppm(Int),
    Word(String),
}

impl FaultKind for ClockDrift {
    type Raw = RawClockDrift;

    fn check(raw: &Spanned<RawClockDrift>, v: &Validator) -> Checked<ClockDrift> {
        let raw = raw.get_ref();
        let ppm = match raw.ppm.get_ref() {
            RawRate::Ppm(ppm) => {
                let spanned = Spanned::new(raw.ppm.span(), *ppm);
                DriftRate::Ppm(v.drift_ppm(&spanned)?)
            }
            RawRate::Word(w) if w == "base" => DriftRate::Base,
            RawRate::Word(w) => {
                let message = format!("expected a drift in ppm or \"base\", found {w:?}");
                return v.fail(raw.ppm.span(), message);
            }
        };
        Ok(ClockDrift {
            node: v.targets(&raw.node)?,
            ppm,
        })
    }

    fn explain(&self) -> String {
        let n = self.node.explain();
        match self.ppm {
            DriftRate::Ppm(ppm) => format!("clock_drift = {{ node = {n}, ppm = {ppm} }}"),
            DriftRate::Base => format!("clock_drift = {{ node = {n}, ppm = \"base\" }}"),
        }
    }

    fn retarget(&self, targets: &Targets) -> Option<ClockDrift> {
        Some(ClockDrift {
            node: targets.clone(),
            ppm: self.ppm,
        })
    }

    fn resolve(&self, w: &mut World<'_>) -> Result<(ClockDrift, Option<String>), String> {
        let (nodes, how) = self.node.resolve(w)?;
        let resolved = ClockDrift {
            node: Targets::Nodes(nodes),
            ppm: self.ppm,
        };
        Ok((resolved, how))
    }

    fn apply(&self, target: &mut dyn FaultTarget) -> Applied {
        let actions: Vec<String> = self
            .node
            .nodes()
            .iter()
            .map(|&node| {
                let ppm = target.clock_drift(node, self.ppm);
                match self.ppm {
                    DriftRate::Ppm(_) => format!("clock drift {node} now {ppm}ppm"),
                    DriftRate::Base => format!("clock drift {node} back to {ppm}ppm"),
                }
            })
            .collect();
        Applied::Record(actions.join("; "))
    }

    /// Back to the scenario's rate for the node.
    fn undo(&self) -> Option<Fault> {
        let back = ClockDrift {
            node: self.node.clone(),
            ppm: DriftRate::Base,
        };
        Some(back.into())
    }
}

impl NemesisDraw for ClockDrift {
    /// A rate between a quarter of the nemesis's `clock_drift_max` and all of it, fast or
    /// slow with even odds.
    fn draw(d: &mut Draw<'_>) -> (Fault, Fault) {
        let max = d.clock_drift_max.max(1);
        let magnitude = d.rng.between((max / 4).max(1), max) as i64;
        let ppm = if d.rng.below(2) == 0 {
            magnitude
        } else {
            -magnitude
        };
        let node: Targets = d.node.into();
        let fault = ClockDrift {
            node: node.clone(),
            ppm: DriftRate::Ppm(ppm),
        };
        let back = ClockDrift {
            node,
            ppm: DriftRate::Base,
        };
        (fault.into(), back.into())
    }
}
