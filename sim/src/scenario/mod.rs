//! Scenarios: TOML files loaded into a raw shape, then validated into [`Scenario`].
//!
//! The path of a file through the loader: read ([`load_file`]) -> apply `--set` overrides
//! to a format-preserving copy ([`Overrides`]) -> deserialize into the raw shape, which
//! denies unknown fields and keeps spans -> validate against the protocols, filling every
//! default -> [`Scenario`]. Every error is a [`LoadError`] naming file, line and column;
//! [`Scenario::explain`] prints what was resolved. Each `[[fault]]` action is a kind in
//! [`fault_kinds`], which reads, checks, explains and applies it.

mod catalog;
mod diagnostic;
pub(crate) mod explain;
pub mod fault_kinds;
mod load;
mod model;
mod overrides;
mod raw;
mod swarm;
pub mod targets;
mod validator;
mod values;

pub use catalog::catalog;
pub use diagnostic::LoadError;
pub use load::{load_file, load_str};
pub use model::*;
pub use overrides::Overrides;
