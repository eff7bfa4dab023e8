//! Planted bugs: each protocol declares its own once, with [`planted_bugs!`](crate::planted_bugs).
//!
//! The declaration yields the list `simkv list bugs` prints and the loader validates against
//! ([`BugSet::SPECS`]), and a struct of one `bool` per bug that the protocol reads
//! (`self.bugs.weak_quorum`): a misspelt bug in protocol code is a compile error.

use crate::contract::{BugSpec, NodeConfig};

/// A protocol's planted bugs as a typed set of switches.
pub trait BugSet: Sized {
    /// Every bug, in the order `simkv list bugs` prints them.
    const SPECS: &'static [BugSpec];

    /// The switches for the bugs named (names not declared are ignored: the loader has
    /// refused them already).
    fn from_names(names: &[&str]) -> Self;

    /// The switches a node was configured with.
    fn from_config(config: &NodeConfig) -> Self {
        Self::from_names(&config.bugs)
    }
}

/// Declares a protocol's planted bugs: a struct with one `bool` field per bug and its
/// [`BugSet`] impl. Each bug is `field = "kebab-name", "what goes wrong";`.
///
/// ```
/// simkv_protocols::planted_bugs! {
///     /// The bugs of an example protocol.
///     pub struct Bugs {
///         weak_quorum = "weak-quorum", "read quorums miss writes";
///     }
/// }
/// use simkv_protocols::BugSet;
/// assert!(Bugs::from_names(&["weak-quorum"]).weak_quorum);
/// assert_eq!(Bugs::SPECS[0].name, "weak-quorum");
/// ```
#[macro_export]
macro_rules! planted_bugs {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $field:ident = $text:literal, $description:literal; )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        $vis struct $name {
            $( #[doc = $description] pub $field: bool, )*
        }

        impl $crate::bugs::BugSet for $name {
            const SPECS: &'static [$crate::contract::BugSpec] = &[
                $( $crate::contract::BugSpec { name: $text, description: $description }, )*
            ];

            fn from_names(names: &[&str]) -> Self {
                $name { $( $field: names.contains(&$text), )* }
            }
        }
    };
}
