//! Membership changes: a node joins the cluster (`join = "n4"`), leaves it gracefully
//! (`leave = "n2"`, a decommission: it hands over what it holds, then stops for good), or is
//! removed (`remove = "n3"`: down for good, and the members are told). Only protocols whose
//! nodes may join and leave ([`simkv_protocols::ProtocolInfo::membership`]) take them; the
//! others are refused at load time. A node a scenario's `initial` leaves out waits outside
//! the cluster until its `join`. A nemesis's `membership` kind draws a join and, as its undo,
//! a leave.

use super::{Applied, Draw, Fault, FaultKind, FaultTarget, NemesisDraw};
use crate::scenario::targets::{RawTargets, Targets, World};
use crate::scenario::validator::{Checked, Validator};
use toml::Spanned;

macro_rules! membership_fault {
    ($(#[$doc:meta])* $Kind:ident, $key:literal, $method:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $Kind(pub Targets);

        impl FaultKind for $Kind {
            type Raw = RawTargets;

            fn check(raw: &Spanned<RawTargets>, v: &Validator) -> Checked<$Kind> {
                v.supports_membership(raw.span(), $what)?;
                v.targets(raw).map($Kind)
            }

            fn explain(&self) -> String {
                format!(concat!($key, " = {}"), self.0.explain())
            }

            // A nemesis's targets (roles, sets) name members: a membership fault keeps the
            // node it drew, so that nodes outside the cluster join too.

            fn resolve(&self, w: &mut World<'_>) -> Result<($Kind, Option<String>), String> {
                let (nodes, how) = self.0.resolve(w)?;
                Ok(($Kind(Targets::Nodes(nodes)), how))
            }

            fn apply(&self, target: &mut dyn FaultTarget) -> Applied {
                let actions: Vec<String> =
                    self.0.nodes().iter().map(|n| target.$method(*n)).collect();
                Applied::Record(actions.join("; "))
            }

            fn undo(&self) -> Option<Fault> {
                undo_of(&Fault::from(self.clone()))
            }
        }
    };
}

membership_fault! {
    /// `join = "n4"`: the node starts and asks to join the cluster.
    Join, "join", join, "`join` fault"
}

membership_fault! {
    /// `leave = "n2"`: the node decommissions gracefully, then stops for good.
    Leave, "leave", leave, "`leave` fault"
}

membership_fault! {
    /// `remove = "n3"`: the node goes down for good and the members are told.
    Remove, "remove", remove, "`remove` fault"
}

/// A nemesis's `membership` fault: the drawn node joins, and leaves again when the fault is
/// undone. A node already in the cluster ignores the join and leaves at the undo; a node gone
/// for good ignores both; so a run's membership both grows and shrinks, one node at a time.
impl NemesisDraw for Join {
    fn draw(d: &mut Draw<'_>) -> (Fault, Fault) {
        (Join(d.node.into()).into(), Leave(d.node.into()).into())
    }
}

/// What undoes a membership fault (`for`, a nemesis's undo): a join is undone by the node's
/// leave; a leave or a removal is for good.
fn undo_of(fault: &Fault) -> Option<Fault> {
    match fault {
        Fault::Join(Join(targets)) => Some(Leave(targets.clone()).into()),
        _ => None,
    }
}
