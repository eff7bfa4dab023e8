//! simkv's replication protocols, each a pure (sans-IO) state machine.
//!
//! This crate depends on nothing that can read a clock, a socket, a file or entropy. A protocol
//! node learns everything through arguments (a message, a timer, a client request, a restart
//! with its durable state) and acts only through [`Effect`]s that the engine applies. The
//! contract every protocol implements is [`Protocol`]; read its documentation first.
//!
//! The protocols are declared once, in the protocol table below
//! ([`ProtocolKind`]): each one's name, promises, parameters and planted bugs come from its
//! own [`Protocol::info`], and `simkv list protocols` prints them.
#![deny(missing_docs)]

pub mod bugs;
pub mod contract;
pub mod digest;
pub mod ids;
pub mod kv;
pub mod params;
pub mod quorum;
pub mod reserve;
pub mod roles;
mod sync_rule;
pub mod table;
pub mod time;
pub mod tracked;
mod value;

#[cfg(test)]
mod testkit;

// The protocol table: adding a protocol is its folder plus one line here.
protocol_table! {
    Primary = primary::Primary,
    TwoPc = twopc::TwoPc,
    Raft = raft::Raft,
    Majority = majority::Majority,
    Sloppy = sloppy::Sloppy,
    Dynamo = dynamo::Dynamo,
    Gossip = gossip::Gossip,
}

pub use bugs::BugSet;
pub use contract::{
    BugSpec, CausalContext, Combine, Context, Counter, Effect, Entropy, Membership, NodeConfig,
    Operator, Promise, Protocol, ProtocolInfo, Read, Replay, Request, Timing,
};
pub use ids::{ClientId, NodeId, RequestId};
pub use kv::{Key, Op, OpResult, Value};
pub use params::{ParamKind, ParamSet, ParamSpec, ParamType, ParamValue, Params};
pub use roles::{RoleKind, RoleSpec};
pub use table::ProtocolVisitor;
pub use time::{Span, SpanRange, Time};
