//! Roles: what a node is to its protocol right now (a raft leader, a 2PC coordinator, a
//! replica), as an enum each protocol defines and names with [`roles!`](crate::roles!).
//!
//! The engine asks a running node for its role ([`Protocol::role`](crate::Protocol::role))
//! when a fault aims at one (`crash = "leader"`), and after every handler when a scenario
//! checks leadership (`one_leader`, `leader_within`). Roles are observation only: the engine
//! never feeds them back to a protocol.

use std::fmt::Debug;

/// One role a protocol's nodes may hold, as scenarios name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoleSpec {
    /// Its name in scenarios (`leader`, `a-leader`, `all-but-leader`), kebab-case.
    pub name: &'static str,
    /// What a node holding it does, in one line.
    pub description: &'static str,
    /// Whether it leads: a node holding it orders the others' work (a raft leader), so that
    /// Jepsen's `primaries` target aims at it and the leadership checks count it.
    pub leads: bool,
}

/// A protocol's roles enum (made by [`roles!`](crate::roles!)).
pub trait RoleKind: Copy + Debug + Eq + 'static {
    /// Every role, in declaration order.
    const SPECS: &'static [RoleSpec];
    /// This role's name, description and whether it leads.
    fn spec(self) -> &'static RoleSpec;
}

/// Declares a protocol's roles enum: one line per role with its name in scenarios, `leads`
/// for a leading role, and a doc comment that is also its description.
///
/// ```
/// simkv_protocols::roles! {
///     /// A node's role.
///     pub enum Role {
///         /// Orders the others' writes.
///         Leader = "leader", leads;
///         /// Follows the leader.
///         Follower = "follower";
///     }
/// }
/// use simkv_protocols::RoleKind;
/// assert!(Role::Leader.spec().leads);
/// assert_eq!(Role::SPECS[1].name, "follower");
/// ```
#[macro_export]
macro_rules! roles {
    (
        $(#[$meta:meta])*
        $vis:vis enum $Role:ident {
            $(
                $(#[doc = $doc:literal])+
                $Variant:ident = $name:literal $(, $leads:ident)?;
            )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
        $vis enum $Role {
            $( $(#[doc = $doc])+ $Variant, )+
        }

        impl $crate::roles::RoleKind for $Role {
            const SPECS: &'static [$crate::roles::RoleSpec] = &[
                $($crate::roles::RoleSpec {
                    name: $name,
                    description: concat!($($doc),+).trim_ascii(),
                    leads: $crate::roles!(@leads $($leads)?),
                },)+
            ];

            fn spec(self) -> &'static $crate::roles::RoleSpec {
                let all: &[$Role] = &[$($Role::$Variant),+];
                let i = all.iter().position(|r| *r == self).expect("declared");
                &Self::SPECS[i]
            }
        }
    };
    (@leads leads) => { true };
    (@leads) => { false };
}

roles! {
    /// The one role of a leaderless protocol's nodes: every node coordinates the requests it
    /// receives and none orders the others.
    pub enum Replica {
        /// Serves and coordinates requests like every other node.
        Replica = "replica";
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    roles! {
        /// Test roles.
        enum Two {
            /// Leads.
            Boss = "boss", leads;
            /// Does not.
            Worker = "worker";
        }
    }

    #[test]
    fn the_table_gives_each_role_its_name_description_and_leadership() {
        assert_eq!(Two::Boss.spec().name, "boss");
        assert!(Two::Boss.spec().leads);
        assert_eq!(Two::Worker.spec().description, "Does not.");
        assert!(!Two::Worker.spec().leads);
        assert_eq!(Two::SPECS.len(), 2);
        assert_eq!(Replica::Replica.spec().name, "replica");
    }
}
