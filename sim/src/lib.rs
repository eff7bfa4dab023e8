//! The simkv engine: one thread, virtual time, a scripted network, seeded faults, clients
//! that record Jepsen-style histories, and the checkers that judge them.
//!
//! Nothing here reads the wall clock or draws unseeded entropy on the path of a run: every
//! draw comes from [`rng::Streams`], forked from the run's seed per concern, and every
//! iteration that reaches an event, a trace or a report is ordered.
#![deny(missing_docs)]

pub mod checks;
pub mod clock;
pub mod compare;
pub mod elle;
pub mod engine;
pub mod faults;
pub mod history;
pub mod lincheck;
pub mod network;
pub mod queue;
pub mod replay;
pub mod report;
pub mod report_html;
pub mod rng;
pub mod runner;
pub mod scenario;
pub mod shown;
pub mod shrink;
pub mod trace;
pub mod workload;
