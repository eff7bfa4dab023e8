//! A limping node (`slow`), like a VM starved of CPU or a disk on its way out, and the
//! `unslow` that restores its speed.
//!
//! The model: while a node is slow by a factor k, every message it sends or receives takes
//! k times the delay its link draws (the larger factor between two slow nodes), its replies
//! to clients take k times theirs, and every timer it arms fires k times later than asked.
//! Its clock keeps true time, so it notices its own lateness the way a starved process does.
//! What was already in flight when the fault began keeps its time. A timer is the node's own
//! work: when its factor changes, the time each armed timer has left scales with it (an
//! unslowed node's timers come due as if it ran at its speed from then on). Client requests
//! reach it at the usual speed; the reply carries the slowness. The cluster counts as whole
//! again only once the last message, reply or sync stretched by the fault is due.

use super::table::node_fault;
use super::{Applied, Draw, Fault, FaultKind, FaultTarget, NemesisDraw};
use crate::scenario::explain::node;
use crate::scenario::validator::{Checked, Validator};
use crate::scenario::values::{Int, NodeName};
use serde::Deserialize;
use simkv_protocols::NodeId;
use toml::Spanned;

/// The largest slow-down factor a scenario may ask for.
pub const MAX_SLOW_FACTOR: u32 = 1000;

/// `slow = { node = "n2", factor = 10 }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slow {
    /// The limping node.
    pub node: NodeId,
    /// How many times longer its messages and timers take (1 = its normal speed).
    pub factor: u32,
}

/// `slow = { node = "n2", factor = 10 }`, as serde reads it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSlow {
    node: Spanned<NodeName>,
    factor: Spanned<Int>,
}

impl FaultKind for Slow {
    type Raw = RawSlow;

    fn check(raw: &Spanned<RawSlow>, v: &Validator) -> Checked<Slow> {
        let raw = raw.get_ref();
        let range = 1..=i64::from(MAX_SLOW_FACTOR);
        let factor = raw.factor.get_ref().0;
        if !range.contains(&factor) {
            let message =
                format!("expected a slow-down factor from 1 to {MAX_SLOW_FACTOR}, found {factor}");
            return v.fail(raw.factor.span(), message);
        }
        Ok(Slow {
            node: v.node(&raw.node)?,
            factor: factor as u32,
        })
    }

    fn explain(&self) -> String {
        let (n, factor) = (node(self.node), self.factor);
        format!("slow = {{ node = {n}, factor = {factor} }}")
    }

    fn apply(&self, target: &mut dyn FaultTarget) -> Applied {
        Applied::Record(target.set_slow(self.node, self.factor))
    }
}

node_fault! {
    /// `unslow = "n2"`: the node back at its normal speed.
    Unslow, "unslow", set_slow(1)
}

impl NemesisDraw for Slow {
    /// The drawn node 2 to 10 times slower, until it is unslowed.
    fn draw(d: &mut Draw<'_>) -> (Fault, Fault) {
        let factor = d.rng.between(2, 10) as u32;
        let node = d.node;
        (Slow { node, factor }.into(), Unslow(node.into()).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::load::fixtures::{fail, load, pos, MINIMAL};
    use crate::scenario::Overrides;

    fn with_fault(action: &str) -> String {
        format!("{MINIMAL}\n[[fault]]\nat = \"1s\"\n{action}\n")
    }

    fn fails_at(action: &str, needle: &str, expected: &str) {
        let text = with_fault(action);
        let e = fail(&text, &Overrides::default());
        assert_eq!((e.line, e.column), pos(&text, needle), "{e}");
        assert!(e.message.contains(expected), "{e}\nexpected: {expected}");
    }

    #[test]
    fn slow_and_unslow_load() {
        let s = load(
            &with_fault(r#"slow = { node = "n2", factor = 10 }"#),
            &Overrides::default(),
        );
        let slow = Slow {
            node: NodeId(1),
            factor: 10,
        };
        assert_eq!(s.unwrap().faults[0].fault, slow.into());
        let s = load(&with_fault(r#"unslow = "n3""#), &Overrides::default());
        assert_eq!(s.unwrap().faults[0].fault, Unslow(NodeId(2).into()).into());
    }

    #[test]
    fn bad_slow_faults_say_where_and_what_was_expected() {
        let expected = "expected a slow-down factor from 1 to 1000";
        fails_at(r#"slow = { node = "n2", factor = 0 }"#, "0 }", expected);
        fails_at(r#"slow = { node = "n2", factor = 1001 }"#, "1001", expected);
        fails_at(
            r#"slow = { node = "n2", factor = "2" }"#,
            r#""2""#,
            "an integer",
        );
        fails_at(r#"slow = { node = "n7", factor = 2 }"#, r#""n7""#, "n7");
        fails_at(r#"slow = { node = "n2" }"#, "{ node", "factor");
        fails_at(r#"unslow = "n9""#, r#""n9""#, "n9");
    }
}
