//! Two-phase commit's unit tests on the shared hand-driven [`Cluster`]: messages wait in
//! flight until a test delivers them, timers fire only when a test fires them, a crashed or
//! halted node loses its inputs until it recovers from its durable state. Section numbers
//! refer to Gray & Lamport, "Consensus on Transaction Commit" (2004).

mod failures;
mod phases;
mod refusals;
mod txns;

use super::*;
use crate::kv::{self, Op};
use crate::params::Params;
use crate::testkit::{append, configs, get, n, ok, put, Cluster};

type Harness = Cluster<TwoPc>;

impl Cluster<TwoPc> {
    /// `count` fresh nodes with the default parameters and these planted bugs.
    fn new(count: u16, bugs: &[&'static str]) -> Harness {
        let configs = configs(count, &Params::defaults(TwoPc::info().params), bugs);
        Cluster::boot_all(configs, |_| {})
    }

    /// Advances the clock by `ms` and fires every running node's tick.
    fn tick(&mut self, ms: u64) {
        self.now += Span::millis(ms);
        for i in 0..self.nodes.len() as u16 {
            self.run(i, |node, ctx| node.on_timer(ctx, Timer::Tick));
        }
    }

    /// Every send, persist, reply and halt so far, in emission order, a message named by
    /// its kind: to check persist-before-send.
    fn log(&self) -> Vec<(NodeId, &'static str)> {
        self.effect_names(|msg| match msg {
            Message::Prepare { .. } => "prepare",
            Message::Vote { .. } => "vote",
            Message::Commit { .. } => "commit",
            Message::Abort { .. } => "abort",
            Message::Ack { .. } => "ack",
            Message::QueryOutcome { .. } => "query",
            Message::Waits { .. } => "waits",
            Message::Rebuild => "rebuild",
            Message::RebuildState { .. } => "rebuild-state",
            Message::Forward { .. } => "forward",
        })
    }
}

fn txn(ops: Vec<Op>) -> Op {
    Op::Txn { ops }
}

fn committed(results: Vec<OpResult>) -> OpResult {
    OpResult::Txn { results }
}
