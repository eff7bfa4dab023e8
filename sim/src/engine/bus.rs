//! What the engine's parts share while one event is handled: virtual time, the queue, the
//! network, the random streams, the counters and the trace. The engine lends them, field by
//! field, as a [`Bus`] beside the part it calls, so that each part keeps its own state and
//! reaches the rest only through what it is handed.

use super::event::Event;
use crate::network::{ClientPlacement, Links, Topology};
use crate::queue::EventQueue;
use crate::rng::Streams;
use crate::trace::Trace;
use simkv_protocols::{Protocol, Time};

/// The shared parts of a run, borrowed for one event.
pub(super) struct Bus<'e, P: Protocol> {
    /// True virtual time of the event being handled.
    pub(super) now: Time,
    pub(super) queue: &'e mut EventQueue<Event<P>>,
    pub(super) topology: &'e Topology,
    /// Where the clients stand, for their links' cuts.
    pub(super) placement: &'e ClientPlacement,
    pub(super) links: &'e mut Links,
    pub(super) streams: &'e mut Streams,
    pub(super) stats: &'e mut Stats,
    pub(super) trace: &'e mut Option<Trace>,
}

/// Counters a run reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events processed.
    pub events: u64,
    /// Node-to-node messages handed to the network.
    pub sent: u64,
    /// Node-to-node messages delivered to a running node.
    pub delivered: u64,
    /// Node-to-node messages lost: dropped by the link, cut by a partition or freeze, or
    /// arriving at a crashed node.
    pub dropped: u64,
    /// Extra copies the network made.
    pub duplicated: u64,
    /// Client requests that reached no running node (or were cut by a partition between a
    /// colocated client and the node).
    pub requests_lost: u64,
    /// Replies lost (the node was frozen or crashed before it could answer, or a partition
    /// cut a colocated client off from it).
    pub replies_lost: u64,
    /// Open-loop arrivals that found every client busy.
    pub shed: u64,
}
