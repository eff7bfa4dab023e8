//! The events of a run: what the queue holds and what the loop dispatches, the fingerprint
//! hashes and the trace writes. Plain data, so that the trace can read events without
//! knowing the engine.

use simkv_protocols::{
    CausalContext, ClientId, Effect, NodeId, OpResult, Protocol, Request, RequestId,
};

/// Something that happens at a virtual time.
#[derive(Debug)]
pub(crate) enum Event<P: Protocol> {
    /// A node-to-node message reaches `to` (it may still be lost there).
    Deliver {
        from: NodeId,
        to: NodeId,
        msg: P::Message,
    },
    /// A client's request reaches node `to`.
    Request { to: NodeId, request: Request },
    /// A node's answer reaches its client.
    Reply {
        from: NodeId,
        request: RequestId,
        result: OpResult,
        /// The causal context the answer carries: only in a workload with `contexts = true`
        /// (elsewhere the engine drops it), so that nothing else hashes or traces it.
        context: Option<CausalContext>,
    },
    /// A timer armed by `node` in its `epoch` (bumped by each crash) fires, if its
    /// `generation` is still the latest arming.
    Timer {
        node: NodeId,
        epoch: u32,
        generation: u64,
        timer: P::Timer,
    },
    /// A sync that `node` began in its `epoch` completes: its records before `mark` are
    /// durable, and the sends and replies its handler emitted `after` it leave.
    Synced {
        node: NodeId,
        epoch: u32,
        mark: u64,
        after: Vec<Effect<P>>,
    },
    /// A closed-loop client invokes its next operation.
    ClientWake { client: ClientId },
    /// A client's one pending timeout check.
    ClientTimeout { client: ClientId },
    /// A client's backoff is over: it sends retry number `attempt` of `request`, if it still
    /// waits to.
    ClientRetry { request: RequestId, attempt: u32 },
    /// An open-loop arrival: an idle client, if any, invokes an operation.
    Arrival,
    /// The timeline's fault number `index` applies.
    Fault { index: usize },
    /// The scenario's duration is over: heal what is still broken.
    WorkloadEnd,
    /// Clients stop invoking operations; the settle phase begins.
    WorkloadStop,
}
