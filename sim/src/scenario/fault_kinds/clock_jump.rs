//! Stepping a node's clock by a signed amount (a nemesis jumps it back afterwards).

use super::{Applied, Draw, Fault, FaultKind, FaultTarget, NemesisDraw};
use crate::scenario::explain::{node, quote, signed_span_text};
use crate::scenario::validator::{Checked, Validator};
use crate::scenario::values::{NodeName, SignedDur};
use serde::Deserialize;
use simkv_protocols::{NodeId, Span};
use toml::Spanned;

/// `clock_jump = { node = "n1", by = "-2s" }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClockJump {
    /// Whose clock.
    pub node: NodeId,
    /// Signed step, microseconds.
    pub by_us: i64,
}

/// `clock_jump = { node = "n1", by = "-2s" }`, as serde reads it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClockJump {
    node: Spanned<NodeName>,
    by: SignedDur,
}

impl FaultKind for ClockJump {
    type Raw = RawClockJump;

    fn check(raw: &Spanned<RawClockJump>, v: &Validator) -> Checked<ClockJump> {
        let raw = raw.get_ref();
        Ok(ClockJump {
            node: v.node(&raw.node)?,
            by_us: raw.by.0,
        })
    }

    fn explain(&self) -> String {
        let by = quote(&signed_span_text(self.by_us));
        format!("clock_jump = {{ node = {}, by = {by} }}", node(self.node))
    }

    fn apply(&self, target: &mut dyn FaultTarget) -> Applied {
        target.clock_jump(self.node, self.by_us);
        let by = signed_span(self.by_us);
        Applied::Record(format!("clock jump {} by {by}", self.node))
    }
}

impl NemesisDraw for ClockJump {
    fn draw(d: &mut Draw<'_>) -> (Fault, Fault) {
        let magnitude = d.rng.between(1, d.clock_jump_max.as_micros().max(1)) as i64;
        let by_us = if d.rng.below(2) == 0 {
            magnitude
        } else {
            -magnitude
        };
        let node = d.node;
        let back = ClockJump {
            node,
            by_us: -by_us,
        };
        (ClockJump { node, by_us }.into(), back.into())
    }
}

/// `+1.5s`, `-200ms`, as reports show a jump.
fn signed_span(us: i64) -> String {
    let sign = if us < 0 { "-" } else { "+" };
    format!("{sign}{}", Span(us.unsigned_abs()))
}
