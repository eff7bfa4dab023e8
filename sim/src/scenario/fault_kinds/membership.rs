//! Membership changes: a node joins the cluster (`join = "n4"`), leaves it gracefully
//! (`leave = "n2"`, a decommission: it hands over what it holds, then stops for good), or is
//! removed (`remove = "n3"`: down for good, and the members are told). Only protocols whose
//! nodes may join and leave ([`simkv_protocols::ProtocolInfo::membership`]) take them; the
//! others are refused at load time. A node a scenario's `initial` leaves out waits outside
//! the cluster until its `join`.

use super::{Applied, FaultKind, FaultTarget};
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
                if let Some(info) = &v.protocol {
                    v.supports_membership(info, raw.span(), $what)?;
                }
                v.targets(raw).map($Kind)
            }

            fn explain(&self) -> String {
                format!(concat!($key, " = {}"), self.0.explain())
            }

            fn retarget(&self, targets: &Targets) -> Option<$Kind> {
                Some($Kind(targets.clone()))
            }

            fn resolve(&self, w: &mut World<'_>) -> Result<($Kind, Option<String>), String> {
                let (nodes, how) = self.0.resolve(w)?;
                Ok(($Kind(Targets::Nodes(nodes)), how))
            }

            fn apply(&self, target: &mut dyn FaultTarget) -> Applied {
                let actions: Vec<String> =
                    self.0.nodes().iter().map(|n| target.$method(*n)).collect();
                Applied::Record(actions.join("; "))
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
