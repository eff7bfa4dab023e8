//! The macro that turns the table of fault kinds into the types the rest of the crate uses.

/// Generates, from one line per `[[fault]]` key (`key => Variant(Kind)`, optionally
/// `, nemesis "name"`):
/// - [`Fault`](super::Fault), one variant per key, with `explain` and `apply` dispatching
///   to the kind;
/// - `RawFault`, the `[[fault]]` table as serde reads it (an `at` and one optional field
///   per key, unknown keys denied), with the keys present and the checked action;
/// - `FAULT_ACTIONS`, every key in table order;
/// - [`NemesisKind`](super::NemesisKind), the kinds a nemesis may draw, with their names
///   and draws in `NEMESIS_KINDS`.
macro_rules! fault_kinds {
    ($(
        $(#[$doc:meta])*
        $key:ident => $Variant:ident($Kind:ty) $(, nemesis $nemesis:literal)?;
    )*) => {
        /// One fault action.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub enum Fault {
            $( $(#[$doc])* $Variant($Kind), )*
        }

        $(
            impl From<$Kind> for Fault {
                fn from(kind: $Kind) -> Fault {
                    Fault::$Variant(kind)
                }
            }
        )*

        impl Fault {
            /// The action as its key and value in a scenario file, as `--explain` prints it.
            pub fn explain(&self) -> String {
                match self {
                    $( Fault::$Variant(kind) => kind.explain(), )*
                }
            }

            /// The same action aimed at `targets` (see `FaultKind::retarget`).
            pub(crate) fn retarget(
                &self,
                targets: &crate::scenario::targets::Targets,
            ) -> Option<Fault> {
                match self {
                    $( Fault::$Variant(kind) => kind.retarget(targets).map(Fault::$Variant), )*
                }
            }

            /// The action with its targets resolved (see `FaultKind::resolve`).
            pub(crate) fn resolve(
                &self,
                w: &mut crate::scenario::targets::World<'_>,
            ) -> Result<(Fault, Option<String>), String> {
                match self {
                    $( Fault::$Variant(kind) => {
                        kind.resolve(w).map(|(k, how)| (Fault::$Variant(k), how))
                    } )*
                }
            }

            /// The action that undoes this one (`crash` -> `restart`, a partition -> `heal`),
            /// for a `[[fault]]` with `for`; `None` for a kind nothing undoes.
            pub fn undo(&self) -> Option<Fault> {
                match self {
                    $( Fault::$Variant(kind) => kind.undo(), )*
                }
            }

            /// Applies the action, resolved, to `target`; says what is left to record.
            pub(crate) fn apply(&self, target: &mut dyn FaultTarget) -> Applied {
                match self {
                    $( Fault::$Variant(kind) => kind.apply(target), )*
                }
            }
        }

        /// `[[fault]]`: a time and exactly one action (checked by the validator, which can
        /// then point at the table).
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(crate) struct RawFault {
            pub at: Spanned<crate::scenario::values::DurRange>,
            /// How long after it fires the fault is undone.
            #[serde(rename = "for")]
            pub undo_after: Option<Spanned<crate::scenario::values::DurRange>>,
            /// What to do when the target names a role no node holds.
            pub if_none: Option<Spanned<crate::scenario::targets::IfNone>>,
            $( $key: Option<Spanned<<$Kind as FaultKind>::Raw>>, )*
        }

        /// Every action key a `[[fault]]` may hold, for "expected one of" messages.
        pub(crate) const FAULT_ACTIONS: &[&str] = &[$( stringify!($key) ),*];

        impl RawFault {
            /// The action keys present, in [`FAULT_ACTIONS`] order.
            pub(crate) fn actions(&self) -> Vec<&'static str> {
                let mut present = Vec::new();
                $( if self.$key.is_some() { present.push(stringify!($key)); } )*
                present
            }

            /// The first action present, checked; `None` if there is none.
            pub(crate) fn action(&self, v: &Validator) -> Option<Checked<Fault>> {
                $(
                    if let Some(raw) = &self.$key {
                        return Some(<$Kind as FaultKind>::check(raw, v).map(Fault::$Variant));
                    }
                )*
                None
            }
        }

        /// Kinds of random faults a nemesis draws from: each draws its fault and the
        /// action that undoes it.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Deserialize)]
        pub enum NemesisKind {
            $($(
                #[doc = concat!("`", $nemesis, "`: see [`", stringify!($Variant), "`](Fault::",
                    stringify!($Variant), ").")]
                #[serde(rename = $nemesis)]
                $Variant,
            )?)*
        }

        /// Each nemesis kind, its name in scenarios and its draw, in table order.
        pub(crate) const NEMESIS_KINDS: &[NemesisEntry] = &[
            $($( (NemesisKind::$Variant, $nemesis, <$Kind as NemesisDraw>::draw), )?)*
        ];
    };
}

pub(super) use fault_kinds;

/// A kind whose value is a target (`freeze = "n1"`, `crash = "leader"`, `pause =
/// "majority"`): its type, its key, the target's method that applies it to one node and
/// returns what to record (one line per node, joined with `; `), and the kind that undoes
/// it if one does.
macro_rules! node_fault {
    ($(#[$doc:meta])* $Kind:ident, $key:literal, $method:ident $(($($arg:expr),*))?
        $(, undo $Undo:ident)?) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $Kind(pub crate::scenario::targets::Targets);

        impl super::FaultKind for $Kind {
            type Raw = crate::scenario::targets::RawTargets;

            fn check(
                raw: &toml::Spanned<Self::Raw>,
                v: &crate::scenario::validator::Validator,
            ) -> crate::scenario::validator::Checked<$Kind> {
                v.targets(raw).map($Kind)
            }

            fn explain(&self) -> String {
                format!(concat!($key, " = {}"), self.0.explain())
            }

            fn retarget(&self, targets: &crate::scenario::targets::Targets) -> Option<$Kind> {
                Some($Kind(targets.clone()))
            }

            fn resolve(
                &self,
                w: &mut crate::scenario::targets::World<'_>,
            ) -> Result<($Kind, Option<String>), String> {
                let (nodes, how) = self.0.resolve(w)?;
                Ok(($Kind(crate::scenario::targets::Targets::Nodes(nodes)), how))
            }

            fn apply(&self, target: &mut dyn super::FaultTarget) -> super::Applied {
                let actions: Vec<String> = self
                    .0
                    .nodes()
                    .iter()
                    .map(|node| target.$method(*node $($(, $arg)*)?))
                    .collect();
                super::Applied::Record(actions.join("; "))
            }

            $(
                fn undo(&self) -> Option<super::Fault> {
                    Some($Undo(self.0.clone()).into())
                }
            )?
        }
    };
}

pub(super) use node_fault;
