//! simkv's replication protocols, each a pure (sans-IO) state machine.
//!
//! This crate depends on nothing that can read a clock, a socket, a file or entropy. A protocol
//! node learns everything through arguments (a message, a timer, a client request, a restart
//! with its durable state) and acts only through [`Effect`]s that the engine applies. The
//! contract every protocol implements is [`Protocol`]; read its documentation first.
//!
//! | name      | module        | promises                         |
//! |-----------|---------------|----------------------------------|
//! | `primary` | [`primary`]   | convergent, live after heal      |
//! | `twopc`   | [`twopc`]     | linearizable, durable, convergent, live after heal |
//! | `raft`    | [`raft`]      | linearizable, live after heal    |
//! | `majority` | [`majority`] | linearizable, durable, live after heal |
//! | `sloppy`  | [`sloppy`]    | convergent, live after heal      |
#![deny(missing_docs)]

pub mod contract;
pub mod digest;
pub mod ids;
pub mod kv;
pub mod majority;
pub mod params;
pub mod primary;
pub mod quorum;
pub mod raft;
pub mod sloppy;
pub mod time;

#[cfg(test)]
mod testkit;
pub mod twopc;

pub use contract::{
    BugSpec, Combine, Context, Counter, Effect, Entropy, NodeConfig, Operator, Promise, Protocol,
    ProtocolInfo, Request,
};
pub use ids::{ClientId, NodeId, RequestId};
pub use kv::{Key, Op, OpResult, Value};
pub use params::{ParamKind, ParamSpec, ParamValue, Params};
pub use time::{Span, SpanRange, Time};
