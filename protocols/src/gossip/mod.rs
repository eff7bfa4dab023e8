//! cluster-kv (the seed's serf + mDNS + badger store): a local store per node, kept apart by
//! serf's gossip membership (SWIM: Das, Gupta and Motivala, DSN 2002, sections 3-5, with
//! memberlist's and serf's choices), filled by serf queries on a miss and emptied by serf user
//! events on a write.
//!
//! # Membership (SWIM sections 3-5, memberlist, serf)
//!
//! Every `probe_interval` (the protocol period, section 3.1) a node pings the next member of
//! a shuffled round-robin list of the members it believes alive or suspect (section 4.3). No
//! ack within `probe_timeout`: it asks `indirect_checks` (k) other members to ping the target
//! for it (`ping-req`); no ack by the end of the period: it suspects the target (section
//! 4.2). A suspicion not refuted within `suspicion_mult * max(1, log10 n) * probe_interval`
//! (memberlist's timeout, growing with the cluster's size) becomes a confirmed death. A node
//! that hears itself suspected or dead refutes: it bumps its incarnation past the one
//! suspected and spreads `alive` (section 4.2). Updates with a higher incarnation override,
//! suspicion overrides alive at the same incarnation, dead and left override both.
//!
//! Updates are piggybacked on pings, acks and ping-reqs (section 4.1) and gossiped every
//! `gossip_interval` to `gossip_nodes` random members (memberlist), each at most
//! `retransmit_mult * ceil(log10(n + 1))` times (lambda log n), at most `max_piggyback` per
//! message: membership updates before the store's invalidations (memberlist fills a packet
//! from its own queue before serf's user events), then the least sent first, the newest
//! first among equals (memberlist's order). A node pinged by a member it holds dead or suspect
//! tells it so in its ack, so that it refutes (memberlist's push-pull does this every 30s);
//! every `reconnect_interval` a node sends its state to one dead member (serf's reconnect),
//! which heals a partition's mutual deaths.
//!
//! Discovery: nodes `n1..n{initial}` (`initial = 0`: every node) start knowing each other;
//! the others start knowing only the seed node `n{join_seed}` (mDNS's answer) and, at
//! `join_after`, exchange state with it (push-pull), and it spreads their `alive`. A node
//! restarted after a crash has lost everything (nothing persists): it starts as it started
//! the first time, and refutes its death when the first ack tells it. The node `leave`
//! (0: none) leaves gracefully at `leave_at`: it spreads `left` to every member and stops
//! probing; the others stop probing it.
//!
//! Parameters are memberlist's and serf's LAN defaults scaled by 1/10 (probe 1s -> 100ms,
//! probe timeout 500ms -> 50ms, gossip 200ms -> 20ms, reconnect 30s -> 3s); k = 3,
//! suspicion multiplier 4, retransmit multiplier 4, gossip to 3 nodes, query timeout
//! multiplier 16. Lifeguard's local health and decreasing suspicion timeouts are not built.
//!
//! # Store (the seed)
//!
//! Every node holds its own store; nothing is persisted (the seed keeps badger in memory).
//! A get answers from the local store; on a miss it sends a query to every member it
//! believes alive and answers the first value that comes back, caching it, or not-found
//! after `gossip_interval * query_timeout_mult * ceil(log10(n + 1))` (serf's default query
//! timeout). A write (put, update, delete, cas, append) applies to the local copy only (a
//! miss counts as absent), stamps it with the node's Lamport clock (serf's LTime, ties
//! broken by node id), answers at once, and spreads a user event: others drop their copies
//! older than the stamp. An event older than a copy is ignored (Lamport ordering); a query
//! answer older than an event already seen is not taken.
//!
//! # Promises and checked invariants
//!
//! Its failure detector's accuracy where a scenario states it (`[checks] false_deaths =
//! true`: no member declared dead on evidence gathered while the cluster was calm; each
//! confirmed death is reported through `Context::declare_dead` with the evidence going back
//! to its suspicion and the period before it). None of simkv's generic promises: not
//! linearizable (a node's cache answers until the
//! event reaches it; two writers of one key each keep their copy until the other's event
//! arrives, and then only the newer survives), not convergent (a value lives only where it
//! was written or fetched), not durable (a crash or leave loses the node's copies, which may
//! be the only ones), not live after heal (a get's miss may take the query timeout, longer
//! than a client's patience). What it keeps, checked after every handler:
//!
//! - a node never holds a copy older than a user event it has received for the key
//!   (stamps order copies and events: a stale cache is never answered or served);
//! - a writer keeps its own write (or a newer copy) until it hears of a newer write;
//! - a refuting node's incarnation is past every incarnation it heard itself suspected or
//!   declared dead at (section 4.2).
//!
//! How often live members are suspected is measured, not promised: the counters report
//! suspicions, deaths and refutations. Whether a probe asked k members before suspecting is
//! not an invariant: the `false_deaths` check judges what skipping ping-req does (live
//! members declared dead under loss), not the rule.

mod invariants;
mod membership;
mod messages;
mod store;
#[cfg(test)]
mod tests;

pub use messages::{Message, Stamp, Status, Timer, Update};

use crate::contract::{
    Membership,
    Context, Counter, NodeConfig, Operator, Protocol, ProtocolInfo, Request,
};
use crate::ids::NodeId;
use crate::kv::{Key, Value};
use crate::time::{Span, Time};
use crate::{BugSet, ParamSet};
use crate::tracked::Watched;
use std::collections::BTreeMap;

crate::protocol_params! {
    /// gossip's parameters, as a scenario's `[cluster.params.gossip]` sets them.
    pub(crate) struct Params {
        probe_interval: Span = "100ms",
            "the protocol period (memberlist's ProbeInterval 1s, scaled by 1/10)";
        probe_timeout: Span = "50ms",
            "wait for a direct ack before asking for indirect probes (ProbeTimeout 500ms)";
        indirect_checks: u64 = "3",
            "k, members asked to probe indirectly (IndirectChecks)";
        suspicion_mult: u64 = "4",
            "suspicion timeout = this x max(1, log10 n) x probe_interval (SuspicionMult)";
        retransmit_mult: u64 = "4",
            "an update is sent at most this x ceil(log10(n+1)) times (RetransmitMult)";
        gossip_interval: Span = "20ms",
            "interval between gossip rounds (GossipInterval 200ms)";
        gossip_nodes: u64 = "3",
            "members gossiped to per round (GossipNodes)";
        max_piggyback: u64 = "8",
            "updates per message at most (memberlist packs a UDP packet)";
        query_timeout_mult: u64 = "16",
            "query timeout = gossip_interval x this x ceil(log10(n+1)) (serf's QueryTimeoutMult)";
        reconnect_interval: Span = "3s",
            "interval between attempts to reach a dead member (serf's ReconnectInterval 30s)";
        initial: u64 = "0",
            "nodes n1..nK start knowing each other; the others join (0 = every node)";
        join_seed: u64 = "1",
            "the node (its number) joiners discover and join through";
        join_after: Span = "1s",
            "when joiners join (and retry every probe_interval until answered)";
        leave: u64 = "0",
            "the node (its number) that leaves gracefully; 0 = none";
        leave_at: Span = "10s",
            "when it leaves";
    }
}

crate::planted_bugs! {
    /// gossip's planted bugs.
    pub(crate) struct Bugs {
        no_indirect = "no-indirect-probes",
            "a failed direct ping makes the target suspect at once: no ping-req through k \
                      members (SWIM section 3.1), so lost packets become false suspicions";
        no_bump = "incarnation-not-bumped",
            "a node refuting a suspicion answers alive at the suspected incarnation instead \
                      of a higher one, which overrides nothing (SWIM section 4.2)";
        unordered_events = "events-unordered",
            "user events drop a key's copy whatever their Lamport time, so an old \
                      invalidation drops a newer write";
        stale_cache = "stale-cache-answers",
            "a user event drops only copies the node wrote itself: a copy fetched by a \
                      query stays cached and answers gets and queries after its invalidation";
    }
}

/// A member in one node's view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    /// Its state.
    pub status: Status,
    /// Its incarnation as this node knows it.
    pub incarnation: u64,
    /// When this node last changed it.
    pub since: Time,
}

/// One key's copy: the value (`None`: deleted here) and the stamp of the write it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Copy {
    /// The value, or `None` for a local delete.
    pub value: Option<Value>,
    /// The write's Lamport time.
    pub stamp: Stamp,
}

/// The probe in progress this period.
#[derive(Clone, Copy, Debug)]
struct Probe {
    seq: u64,
    target: NodeId,
    acked: bool,
}

/// An outgoing update and how many times this node has sent it.
#[derive(Clone, Debug)]
struct Queued {
    update: Update,
    sent: u64,
}

/// A get waiting for a query's answer.
#[derive(Clone, Debug)]
struct Pending {
    request: crate::ids::RequestId,
    key: Key,
}

/// What a node counted, for the report.
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    probes: u64,
    indirect: u64,
    suspicions: u64,
    deaths: u64,
    refutations: u64,
    queries: u64,
    query_hits: u64,
    query_misses: u64,
    events_ignored: u64,
}

/// One node of cluster-kv (see the module doc).
///
/// # Driving contract
///
/// As [`Protocol`] says. On start it arms [`Timer::Probe`], [`Timer::Gossip`] and
/// [`Timer::Reconnect`], which re-arm themselves, and [`Timer::Join`] or [`Timer::Leave`] on
/// a node that is to join or leave. It persists nothing.
#[derive(Debug)]
pub struct Gossip {
    me: NodeId,
    params: Params,
    bugs: Bugs,
    /// Cluster size as configured (for the log n's before anyone joined).
    incarnation: u64,
    members: BTreeMap<NodeId, Member>,
    /// Whether this node is in the cluster (joined, not left).
    joined: bool,
    left: bool,
    seed: NodeId,
    probe_order: Vec<NodeId>,
    probe_next: usize,
    probe: Option<Probe>,
    seq: u64,
    queue: Vec<Queued>,
    clock: u64,
    store: Watched<BTreeMap<Key, Copy>>,
    /// The newest user event heard per key.
    invalidated: Watched<BTreeMap<Key, Stamp>>,
    /// This node's own newest write per key.
    written: Watched<BTreeMap<Key, Stamp>>,
    /// The generations of `store`, `invalidated` and `written` at the last judgement of
    /// the invariants over them that passed: unchanged maps pass again
    /// ([`Gossip::check_node`]).
    judged: std::cell::Cell<Option<[u64; 3]>>,
    /// The highest incarnation this node heard itself suspected or declared dead at.
    accused: Option<u64>,
    next_q: u64,
    pending: BTreeMap<u64, Pending>,
    counts: Counts,
}

impl Gossip {
    /// This node's view of its members (itself excluded).
    pub fn members(&self) -> &BTreeMap<NodeId, Member> {
        &self.members
    }

    /// This node's incarnation.
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// This node's copy of `key`.
    pub fn copy(&self, key: Key) -> Option<&Copy> {
        self.store.get(&key)
    }

    /// Members believed alive, this node included: the n of the log n's.
    fn cluster_size(&self) -> u64 {
        1 + self
            .members
            .values()
            .filter(|m| matches!(m.status, Status::Alive | Status::Suspect))
            .count() as u64
    }
}

/// ceil(log10(n + 1)), at least 1 (memberlist's retransmit and serf's query scaling).
pub fn log10_ceil(n: u64) -> u64 {
    let mut k = 0;
    let mut p = 1u64;
    while p < n + 1 {
        p = p.saturating_mul(10);
        k += 1;
    }
    k.max(1)
}

/// The suspicion timeout for a cluster of `n`: `mult * max(1, log10 n) * interval`
/// (memberlist's `suspicionTimeout`, in micros, with log10 as a float).
pub fn suspicion_timeout(mult: u64, n: u64, interval: Span) -> Span {
    let scale = (n.max(1) as f64).log10().max(1.0);
    Span((mult as f64 * scale * interval.as_micros() as f64) as u64)
}

impl Protocol for Gossip {
    type Message = Message;
    type Timer = Timer;
    type Durable = ();
    type Record = ();
    type Role = crate::roles::Replica;

    fn info() -> ProtocolInfo {
        ProtocolInfo {
            name: "gossip",
            description: "cluster-kv: local stores on serf's SWIM gossip membership (ping, \
                          ping-req, suspicion, incarnations, piggybacked dissemination); a \
                          miss asks the cluster by query and caches, a write invalidates others \
                          by a Lamport-stamped user event. Promises none of the generic \
                          guarantees",
            promises: &[],
            params: Params::SPECS,
            bugs: Bugs::SPECS,
            roles: <crate::roles::Replica as crate::RoleKind>::SPECS,
            transactions: false,
            contexts: false,
            operators: &["trick-value"],
            membership: true,
            check_params,
        }
    }

    fn start(ctx: &mut Context<'_, Self>, config: &NodeConfig, _durable: Option<&()>) -> Self {
        let params = Params::from_params(&config.params);
        let bugs = Bugs::from_config(config);
        let count = config.nodes.len();
        let initial = match params.initial as usize {
            0 => count,
            k => k.min(count),
        };
        let me = config.id;
        let index = config.nodes.iter().position(|x| *x == me).unwrap_or(0);
        let seed_index = (params.join_seed as usize).clamp(1, count.max(1)) - 1;
        // A run whose membership the engine changes: the cluster is its hosts list, and a
        // node it starts to join does so at once, through the first other member.
        let dynamic = config.joining || config.members.len() < count;
        let (seed, joined, known) = match dynamic {
            true => {
                let first = config.members.iter().copied().find(|n| *n != config.id);
                (first.unwrap_or(config.id), !config.joining, &config.members[..])
            }
            false => (config.nodes[seed_index.min(count - 1)], index < initial, &config.nodes[..initial]),
        };
        let now = ctx.now();
        let members: BTreeMap<NodeId, Member> = if joined {
            known
                .iter()
                .filter(|n| **n != me)
                .map(|n| {
                    let m = Member {
                        status: Status::Alive,
                        incarnation: 0,
                        since: now,
                    };
                    (*n, m)
                })
                .collect()
        } else {
            BTreeMap::new()
        };
        let node = Gossip {
            me,
            bugs,
            incarnation: 0,
            members,
            joined,
            left: false,
            seed,
            probe_order: Vec::new(),
            probe_next: 0,
            probe: None,
            seq: 0,
            queue: Vec::new(),
            clock: 0,
            store: Watched::default(),
            invalidated: Watched::default(),
            written: Watched::default(),
            judged: std::cell::Cell::new(None),
            accused: None,
            next_q: 0,
            pending: BTreeMap::new(),
            counts: Counts::default(),
            params,
        };
        // Spread the probes of the nodes over the period.
        let period = node.params.probe_interval.as_micros().max(1);
        let first = period + ctx.random_below(period);
        ctx.set_timer(Timer::Probe, Span(first));
        ctx.set_timer(Timer::Gossip, node.params.gossip_interval);
        ctx.set_timer(Timer::Reconnect, node.params.reconnect_interval);
        if !joined && seed != me && dynamic {
            ctx.set_timer(Timer::Join, Span::millis(1));
        } else if !joined && seed != me {
            let at = node.params.join_after.as_micros();
            let wait = at.saturating_sub(now.as_micros()).max(1_000);
            ctx.set_timer(Timer::Join, Span(wait));
        }
        let leaver = node.params.leave as usize;
        if !dynamic && leaver > 0 && leaver <= count && config.nodes[leaver - 1] == me {
            let at = node.params.leave_at.as_micros();
            ctx.set_timer(Timer::Leave, Span(at.saturating_sub(now.as_micros()).max(1_000)));
        }
        node
    }

    fn on_message(&mut self, ctx: &mut Context<'_, Self>, from: NodeId, msg: Message) {
        match msg {
            Message::Query { q, key } => self.on_query(ctx, from, q, key),
            Message::QueryResponse {
                q,
                key,
                value,
                stamp,
            } => self.on_query_response(ctx, q, key, value, stamp),
            other => self.on_membership(ctx, from, other),
        }
    }

    fn on_timer(&mut self, ctx: &mut Context<'_, Self>, timer: Timer) {
        match timer {
            Timer::Query(q) => self.on_query_timeout(ctx, q),
            other => self.on_membership_timer(ctx, other),
        }
    }

    fn on_request(&mut self, ctx: &mut Context<'_, Self>, request: Request) {
        self.serve(ctx, request);
    }

    fn on_membership(&mut self, ctx: &mut Context<'_, Self>, change: Membership) {
        match change {
            // A joiner introduces itself by push-pull; nothing to do here.
            Membership::Joined(_) => {}
            // A graceful leave, as serf's `leave`: spread `left`, then stop.
            Membership::Leave => self.on_membership_timer(ctx, Timer::Leave),
            // An operator's force-leave (serf): the member is left for good, spread as if it
            // had said so itself.
            Membership::Removed(node) => {
                let incarnation = self.members.get(&node).map_or(0, |m| m.incarnation);
                self.apply(ctx, Update::Left { node, incarnation });
            }
        }
    }

    fn has_left(&self) -> bool {
        self.left
    }

    fn on_operator(&mut self, ctx: &mut Context<'_, Self>, command: Operator) {
        // The demo's trick: overwrite the local copy behind the protocol's back.
        let Operator::TrickValue { key, value } = command else {
            ctx.note(|| format!("ignored operator command {command}"));
            return;
        };
        // The copy keeps its stamp; a tricked absent key takes the newest event's, so that
        // the trick is a wrong value, not an old one.
        let known = self.invalidated.get(&key).copied().unwrap_or((0, self.me));
        let stamp = self.store.get(&key).map_or(known, |c| c.stamp);
        let copy = Copy {
            value: Some(value),
            stamp,
        };
        self.store.get_mut().insert(key, copy);
    }

    fn role(&self) -> crate::roles::Replica {
        crate::roles::Replica::Replica
    }

    /// A node is a member once it joined and until it leaves.
    fn is_member(&self) -> bool {
        self.joined && !self.left
    }

    fn store(&self) -> BTreeMap<Key, Value> {
        let held = self.store.iter();
        held.filter_map(|(k, c)| c.value.clone().map(|v| (*k, v)))
            .collect()
    }

    fn counters(&self) -> Vec<Counter> {
        let c = self.counts;
        let alive = self.members.values().filter(|m| m.status == Status::Alive);
        vec![
            Counter::sum("probes", c.probes),
            Counter::sum("indirect probes asked", c.indirect),
            Counter::sum("suspicions raised", c.suspicions),
            Counter::sum("deaths declared", c.deaths),
            Counter::sum("refutations", c.refutations),
            Counter::sum("members seen alive (sum over nodes)", alive.count() as u64),
            Counter::max("highest incarnation", self.incarnation),
            Counter::sum("queries", c.queries),
            Counter::sum("queries answered", c.query_hits),
            Counter::sum("queries not found", c.query_misses),
            Counter::sum("old events ignored", c.events_ignored),
        ]
    }

    fn check_invariants(&self) -> Result<(), String> {
        self.check_node()
    }
}

/// gossip's own check of its parameters: its timers can fire, a probe timeout falls within
/// the period, and the seed, leaver and initial counts name nodes of the cluster.
fn check_params(
    params: &crate::params::Params,
    ctx: crate::params::ParamContext<'_>,
) -> Result<(), crate::params::ParamProblem> {
    use crate::params::{int_of, timers_at_least_min, ParamProblem};
    timers_at_least_min(
        params,
        &["probe_interval", "probe_timeout", "gossip_interval", "reconnect_interval"],
    )?;
    let p = Params::from_params(params);
    if p.probe_timeout >= p.probe_interval {
        return Err(ParamProblem {
            param: "probe_timeout",
            message: format!(
                "expected a probe timeout shorter than probe_interval ({}), found {}",
                p.probe_interval, p.probe_timeout
            ),
        });
    }
    for name in ["suspicion_mult", "retransmit_mult", "query_timeout_mult", "join_seed"] {
        if int_of(params, name) == 0 {
            return Err(ParamProblem {
                param: name,
                message: "expected at least 1, found 0".into(),
            });
        }
    }
    for name in ["join_seed", "leave", "initial"] {
        let v = int_of(params, name);
        if v > u64::from(ctx.nodes) {
            return Err(ParamProblem {
                param: name,
                message: format!("expected a node number up to {}, found {v}", ctx.nodes),
            });
        }
    }
    Ok(())
}
