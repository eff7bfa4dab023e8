//! The protocol table's machinery: [`protocol_table!`](crate::protocol_table) declares the
//! protocols once (in `lib.rs`), and yields [`ProtocolKind`](crate::ProtocolKind), the
//! validated, typed name of a protocol, with static infos and typed dispatch through a
//! [`ProtocolVisitor`].

use crate::contract::Protocol;

/// Something done with a protocol's type: the engine runs a scenario with it, a test drives
/// it. [`ProtocolKind::visit`](crate::ProtocolKind::visit) calls `visit::<P>` for the kind's
/// type, so the string-to-type step happens in one place.
pub trait ProtocolVisitor {
    /// What the visit returns.
    type Output;
    /// Does the work with protocol `P`.
    fn visit<P: Protocol>(self) -> Self::Output;
}

/// Declares every protocol: one line each, `Variant = module::Type,`, in the order `simkv
/// list protocols` prints them. It declares each `pub mod module;` and the enum
/// [`ProtocolKind`](crate::ProtocolKind).
#[macro_export]
macro_rules! protocol_table {
    ( $( $variant:ident = $module:ident :: $ty:ident, )* ) => {
        $( pub mod $module; )*

        /// A protocol simkv can run: the typed form of a scenario's `protocol = "..."`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum ProtocolKind {
            $(
                #[doc = concat!("[`", stringify!($module), "::", stringify!($ty), "`]")]
                $variant,
            )*
        }

        impl ProtocolKind {
            /// Every protocol, in the order `simkv list protocols` prints them.
            pub const ALL: &'static [ProtocolKind] = &[ $( ProtocolKind::$variant, )* ];

            /// What the protocol says about itself.
            pub fn info(self) -> $crate::ProtocolInfo {
                match self {
                    $( ProtocolKind::$variant =>
                        <$module::$ty as $crate::Protocol>::info(), )*
                }
            }

            /// The name scenarios and the command line use.
            pub fn name(self) -> &'static str {
                self.info().name
            }

            /// The protocol called `name`, if there is one.
            pub fn from_name(name: &str) -> Option<ProtocolKind> {
                ProtocolKind::ALL.iter().copied().find(|p| p.name() == name)
            }

            /// Calls `visitor.visit::<P>()` with this protocol's type `P`.
            pub fn visit<V: $crate::ProtocolVisitor>(self, visitor: V) -> V::Output {
                match self {
                    $( ProtocolKind::$variant => visitor.visit::<$module::$ty>(), )*
                }
            }
        }

        impl std::fmt::Display for ProtocolKind {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}
