//! Scenarios: TOML files loaded into a raw shape, then validated into [`Scenario`].

mod model;

pub use model::*;
