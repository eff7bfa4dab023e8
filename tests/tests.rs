//! simkv's integration tests: one test binary made of modules (ripgrep's layout).

mod bad_input;
mod check;
mod clients;
mod compare;
mod determinism;
mod disk;
mod dynamo;
mod fuzz;
mod golden;
mod gossip;
mod hostile;
mod leadership;
mod primary;
mod quorum;
mod raft;
mod regressions;
mod replay;
mod report;
mod shrink;
mod sloppy;
mod summary;
mod swarm;
mod sweep;
mod targets;
mod twopc;
mod util;
