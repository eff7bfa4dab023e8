//! Pieces shared by the protocols' hand-driven unit-test clusters (test builds only).

use crate::contract::{Context, Effect, Entropy, NodeConfig, Protocol, Request};
use crate::ids::{ClientId, NodeId, RequestId};
use crate::kv::{Key, Op, OpResult};
use crate::params::Params;
use crate::time::Time;

/// Node `i`.
pub(crate) fn n(i: u16) -> NodeId {
    NodeId(i)
}

/// Request `seq` of client `client`.
pub(crate) fn req(client: u32, seq: u64) -> RequestId {
    RequestId {
        client: ClientId(client),
        seq,
    }
}

/// `put key value`.
pub(crate) fn put(key: Key, value: &str) -> Op {
    Op::Put {
        key,
        value: value.into(),
    }
}

/// `append key value`.
pub(crate) fn append(key: Key, value: &str) -> Op {
    Op::Append {
        key,
        value: value.into(),
    }
}

/// `get key`.
pub(crate) fn get(key: Key) -> Op {
    Op::Get { key }
}

/// An `Ok` answer carrying `value`.
pub(crate) fn ok(value: &str) -> OpResult {
    OpResult::Ok {
        value: Some(value.into()),
    }
}

/// splitmix64: a deterministic stream for a test's contexts.
pub(crate) struct TestEntropy(pub(crate) u64);

impl Entropy for TestEntropy {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The configs of a `count`-node cluster sharing `params` and planted `bugs`.
pub(crate) fn configs(count: u16, params: &Params, bugs: &[&'static str]) -> Vec<NodeConfig> {
    let nodes: Vec<NodeId> = (0..count).map(NodeId).collect();
    nodes
        .iter()
        .map(|&id| NodeConfig {
            id,
            nodes: nodes.clone(),
            members: nodes.clone(),
            joining: false,
            params: params.clone(),
            bugs: bugs.to_vec(),
        })
        .collect()
}

/// A message on the wire: (from, to, message).
pub(crate) type Wire<P> = (NodeId, NodeId, <P as Protocol>::Message);

/// An effect others can observe, as a node emitted it: what tests of "persist before send"
/// read (see [`Cluster::effect_names`]). Timers and notes are left out; the messages, durable
/// states and answers themselves are in `sent`, `durable` and `replies`.
#[derive(Clone, Debug)]
pub(crate) enum Observed<P: Protocol> {
    /// A message sent.
    Send(P::Message),
    /// The node synced what it wrote to its log.
    Persist,
    /// A client's answer.
    Reply,
    /// The node stopped, as if it crashed.
    Halt,
}

/// A hand-driven cluster: sends wait in `inflight` until a test delivers or drops them,
/// timers fire only when a test fires them, one clock serves every node. After every handler
/// the node's invariants and the protocol's own `check` run.
///
/// Crashes are modelled: a node that is down ([`Cluster::crash`], or its own
/// [`Effect::Halt`]) has lost everything but its durable state and every message then in
/// flight to it; inputs that reach it while it is down are lost; [`Cluster::recover`] starts
/// it again from its durable state.
pub(crate) struct Cluster<P: Protocol> {
    pub(crate) configs: Vec<NodeConfig>,
    /// Every node's state; a node that is down keeps the state it crashed with here, unused
    /// until it recovers (see [`Cluster::is_down`]).
    pub(crate) nodes: Vec<P>,
    pub(crate) durable: Vec<Option<P::Durable>>,
    pub(crate) inflight: Vec<Wire<P>>,
    /// Every message ever sent, in send order.
    pub(crate) sent: Vec<Wire<P>>,
    pub(crate) replies: Vec<(RequestId, OpResult)>,
    /// The causal contexts replies carried ([`Context::reply_with_context`]), by request.
    ///
    /// [`Context::reply_with_context`]: crate::contract::Context::reply_with_context
    pub(crate) reply_contexts: Vec<(RequestId, crate::contract::CausalContext)>,
    /// Every send, persist, reply and halt, in emission order (a test may clear it).
    pub(crate) effects: Vec<(NodeId, Observed<P>)>,
    /// Which nodes are down.
    down: Vec<bool>,
    pub(crate) now: Time,
    /// The last client sequence number [`Cluster::request`] used.
    pub(crate) seq: u64,
    entropy: TestEntropy,
    check: fn(&P),
    /// Whether every handler is followed by the invariant checks (tests of planted bugs that
    /// break invariants check by hand).
    checked: bool,
}

impl<P: Protocol> Cluster<P> {
    /// Boots one node per config (nothing delivered yet).
    pub(crate) fn boot_all(configs: Vec<NodeConfig>, check: fn(&P)) -> Self {
        let count = configs.len();
        let mut cluster = Cluster {
            configs,
            nodes: Vec::with_capacity(count),
            durable: (0..count).map(|_| None).collect(),
            inflight: Vec::new(),
            sent: Vec::new(),
            replies: Vec::new(),
            reply_contexts: Vec::new(),
            effects: Vec::new(),
            down: vec![false; count],
            now: Time(1_000),
            seq: 0,
            entropy: TestEntropy(7),
            check,
            checked: true,
        };
        for i in 0..count as u16 {
            let node = cluster.boot(i);
            cluster.nodes.push(node);
        }
        cluster
    }

    /// Starts node `i` from its durable state, applying what its start emits.
    pub(crate) fn boot(&mut self, i: u16) -> P {
        self.down[usize::from(i)] = false;
        let mut effects = Vec::new();
        let config = self.configs[usize::from(i)].clone();
        let durable = self.durable[usize::from(i)].clone();
        let mut ctx = Context::new(
            NodeId(i),
            (self.now, self.now),
            true,
            &mut effects,
            &mut self.entropy,
        );
        let node = P::start(&mut ctx, &config, durable.as_ref());
        self.apply(NodeId(i), effects);
        node
    }

    /// Crash (losing all but the durable state, and every message on its way to the node)
    /// and start again.
    pub(crate) fn restart(&mut self, i: u16) {
        self.crash(i);
        self.recover(i);
    }

    /// Crashes node `i`: it loses all but its durable state, and every message on its way
    /// to it. It stays down (what reaches it is lost) until [`Cluster::recover`].
    pub(crate) fn crash(&mut self, i: u16) {
        self.down[usize::from(i)] = true;
        self.inflight.retain(|(_, to, _)| *to != NodeId(i));
    }

    /// Starts node `i` again from its durable state, after a crash or a halt. Messages sent
    /// to it while it was down stay in flight: they reach the new incarnation when delivered.
    pub(crate) fn recover(&mut self, i: u16) {
        let node = self.boot(i);
        self.nodes[usize::from(i)] = node;
        self.check(i);
    }

    /// Whether node `i` is down (crashed or halted, not recovered).
    pub(crate) fn is_down(&self, i: u16) -> bool {
        self.down[usize::from(i)]
    }

    /// Runs one handler on node `i`; a node that is down loses the input.
    pub(crate) fn run(&mut self, i: u16, f: impl FnOnce(&mut P, &mut Context<'_, P>)) {
        if self.is_down(i) {
            return;
        }
        let mut effects = Vec::new();
        let mut ctx = Context::new(
            NodeId(i),
            (self.now, self.now),
            true,
            &mut effects,
            &mut self.entropy,
        );
        f(&mut self.nodes[usize::from(i)], &mut ctx);
        self.apply(NodeId(i), effects);
        self.check(i);
    }

    /// Applies a handler's effects in emission order, as the engine does; a halt crashes the
    /// node and discards the effects after it.
    fn apply(&mut self, from: NodeId, effects: Vec<Effect<P>>) {
        for effect in effects {
            let observed = match effect {
                Effect::Send { to, msg } => {
                    self.sent.push((from, to, msg.clone()));
                    self.inflight.push((from, to, msg.clone()));
                    Observed::Send(msg)
                }
                Effect::Write { record, .. } => {
                    // The log, folded as a restart would fold it: what a restart starts from.
                    let config = &self.configs[from.index()];
                    P::recover(
                        &mut self.durable[from.index()],
                        crate::contract::Read::Intact(&record),
                        config,
                    );
                    continue;
                }
                Effect::Sync => Observed::Persist,
                Effect::Reply {
                    request,
                    result,
                    context,
                } => {
                    if let Some(context) = context {
                        self.reply_contexts.push((request, context));
                    }
                    self.replies.push((request, result));
                    Observed::Reply
                }
                Effect::SetTimer { .. }
                | Effect::CancelTimer { .. }
                | Effect::Note(_)
                | Effect::DeclareDead { .. } => continue,
                Effect::Halt => {
                    self.crash(from.0);
                    self.effects.push((from, Observed::Halt));
                    return;
                }
            };
            self.effects.push((from, observed));
        }
    }

    /// This cluster without the automatic invariant checks after every handler.
    pub(crate) fn unchecked(mut self) -> Self {
        self.checked = false;
        self
    }

    /// Runs the invariant checks on node `i` (unless unchecked, or the node is down).
    pub(crate) fn check(&self, i: u16) {
        if !self.checked || self.is_down(i) {
            return;
        }
        let node = &self.nodes[usize::from(i)];
        if let Err(broken) = node.check_invariants() {
            panic!("n{}: {broken}", i + 1);
        }
        (self.check)(node);
        if let Err(broken) = self.check_cluster() {
            panic!("cluster: {broken}");
        }
    }

    /// The protocol's invariants over every node that is up, on the one clock.
    pub(crate) fn check_cluster(&self) -> Result<(), String> {
        let states: Vec<Option<&P>> = (0..self.nodes.len())
            .map(|i| (!self.down[i]).then_some(&self.nodes[i]))
            .collect();
        P::check_cluster(&states, &vec![self.now; states.len()], None)
    }

    /// Sends `op` to node `i` as client 0's next request and returns the reply, which the
    /// protocol must give at once (a coordinator that answers later is driven by hand).
    pub(crate) fn request(&mut self, i: u16, op: Op) -> OpResult {
        let id = self.submit_next(i, op);
        let at = self
            .replies
            .iter()
            .position(|(r, _)| *r == id)
            .expect("an answer at once");
        self.replies.remove(at).1
    }

    /// Hands `op` to node `i` as client 0's next request and returns its id; its reply,
    /// whenever it comes, collects in `replies` (see [`Cluster::reply`]).
    pub(crate) fn submit_next(&mut self, i: u16, op: Op) -> RequestId {
        self.seq += 1;
        let id = RequestId {
            client: ClientId(0),
            seq: self.seq,
        };
        self.submit(i, id, op);
        id
    }

    /// Hands `op` to node `i` as request `id` (a client's retry re-sends an id to any node);
    /// its reply, whenever it comes, collects in `replies` (see [`Cluster::reply`]).
    pub(crate) fn submit(&mut self, i: u16, id: RequestId, op: Op) {
        self.submit_with_context(i, id, op, None);
    }

    /// Hands `op` to node `i` as request `id`, with the causal context `context`.
    pub(crate) fn submit_with_context(
        &mut self,
        i: u16,
        id: RequestId,
        op: Op,
        context: Option<crate::contract::CausalContext>,
    ) {
        let call = Request {
            id,
            op,
            quorum: None,
            context,
        };
        self.run(i, |node, ctx| node.on_request(ctx, call));
    }

    /// The causal context the reply to request `id` carried, if it carried one.
    pub(crate) fn reply_context(&self, id: RequestId) -> Option<&crate::contract::CausalContext> {
        self.reply_contexts
            .iter()
            .find(|(r, _)| *r == id)
            .map(|(_, c)| c)
    }

    /// The reply to request `id`, if one came.
    pub(crate) fn reply(&self, id: RequestId) -> Option<&OpResult> {
        self.replies.iter().find(|(r, _)| *r == id).map(|(_, r)| r)
    }

    /// Fires `timer` on node `i`.
    pub(crate) fn timer(&mut self, i: u16, timer: P::Timer) {
        self.run(i, |node, ctx| node.on_timer(ctx, timer));
    }

    /// What node `i`'s store holds for `key`.
    pub(crate) fn value(&self, i: u16, key: crate::kv::Key) -> Option<String> {
        self.nodes[usize::from(i)]
            .store()
            .get(&key)
            .map(|v| v.to_string())
    }

    /// Delivers (in send order) every in-flight message `pick` chooses, including those the
    /// deliveries send, until none is chosen; returns how many were delivered.
    pub(crate) fn deliver_where(&mut self, mut pick: impl FnMut(&Wire<P>) -> bool) -> usize {
        // Bounded: without timers a hand-driven cluster falls quiet; one that chatters
        // forever is a bug worth a panic.
        for delivered in 0..100_000 {
            let Some(at) = self.inflight.iter().position(&mut pick) else {
                return delivered;
            };
            let (from, to, msg) = self.inflight.remove(at);
            self.run(to.0, |node, ctx| node.on_message(ctx, from, msg));
        }
        panic!("messages never stopped");
    }

    /// Delivers everything, including what the deliveries send.
    pub(crate) fn deliver_all(&mut self) -> usize {
        self.deliver_where(|_| true)
    }

    /// Drops every in-flight message `pick` chooses.
    pub(crate) fn drop_where(&mut self, pick: impl Fn(&Wire<P>) -> bool) {
        self.inflight.retain(|w| !pick(w));
    }

    /// The observed effects so far, in emission order, each with its node and a name:
    /// `persist`, `reply`, `halt`, or what `name` calls the message sent.
    pub(crate) fn effect_names(
        &self,
        name: fn(&P::Message) -> &'static str,
    ) -> Vec<(NodeId, &'static str)> {
        let named = |o: &Observed<P>| match o {
            Observed::Send(msg) => name(msg),
            Observed::Persist => "persist",
            Observed::Reply => "reply",
            Observed::Halt => "halt",
        };
        self.effects.iter().map(|(n, o)| (*n, named(o))).collect()
    }

    /// Node `i`, which must be up.
    pub(crate) fn node(&self, i: u16) -> &P {
        assert!(!self.is_down(i), "n{} is down", i + 1);
        &self.nodes[usize::from(i)]
    }
}
