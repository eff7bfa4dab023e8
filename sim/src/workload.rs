//! What clients ask, and of whom: the operation generator, and what each client remembers
//! that shapes its next operation. (When they ask, and what comes of it, is the engine's
//! client driver.)
//!
//! Written values are unique per run (`c3.17` is client 3's 17th operation), which lets
//! checkers tell every write apart. Every draw comes from the workload stream.

use crate::history::History;
use crate::lincheck::model::FxHashMap;
use crate::rng::Stream;
use crate::scenario::{KeyDistribution, OpKind, ScriptedOp, Target, Workload};
use simkv_protocols::{CausalContext, ClientId, Key, NodeId, Op, OpResult, RequestId, Value};

/// What a client remembers between its operations, which shapes the next one: its
/// sequence number, where to go, and the last value it saw per key.
#[derive(Clone, Debug, Default)]
pub struct ClientMemory {
    next_seq: u64,
    /// Where the next operation goes when following redirects.
    redirect: Option<NodeId>,
    /// The last value this client saw per key, the expected value of its next cas: looked
    /// up, never iterated, so a hash map (a `BTreeMap` here was 4% of primary-100-fast).
    last_seen: FxHashMap<Key, Value>,
    /// With contexts: the write drawn, waiting for the get of its key to complete.
    queued: Option<Op>,
    /// With contexts: the context the last get answered (`None`: it answered none).
    read_context: Option<CausalContext>,
    /// With contexts: the context the operation just drawn carries (a write's).
    outgoing: Option<CausalContext>,
}

/// Draws operations for the clients.
#[derive(Clone, Debug)]
pub struct OpGenerator {
    /// Cumulative weights of the mix.
    mix: Vec<(OpKind, u64)>,
    /// Cumulative integer weights per key for Zipf; empty for uniform.
    key_weights: Vec<u64>,
    keys: u64,
    target: Target,
    nodes: u16,
    /// Operations each client keeps in flight: the slots that make one client.
    in_flight: u32,
    /// Whether the mix has cas, whose expected value is the last one the client saw.
    pub uses_last_seen: bool,
    /// Cumulative weights of a txn's operation kinds (get, put, append).
    txn_mix: Vec<(OpKind, u64)>,
    txn_ops: u32,
    /// `max_writes_per_key`, and per slot of the key space its generation and the writes
    /// issued to its current key (empty when keys take every write).
    max_writes_per_key: Option<u64>,
    slots: Vec<(u64, u64)>,
    /// `contexts = true`: each put or delete drawn is preceded by a get of its key, and
    /// carries the context that get answered.
    contexts: bool,
}

impl OpGenerator {
    /// A generator for `workload` against `nodes` nodes.
    pub fn new(workload: &Workload, nodes: u16) -> OpGenerator {
        let mut total = 0;
        let mix = workload
            .mix
            .iter()
            .map(|(kind, weight)| {
                total += u64::from(*weight);
                (*kind, total)
            })
            .collect();
        let key_weights = match workload.key_distribution {
            KeyDistribution::Uniform => Vec::new(),
            KeyDistribution::Zipf { exponent } => {
                // Weights computed once in f64 and frozen as integers, so that every draw
                // is integer arithmetic.
                let mut cumulative = 0u64;
                (0..workload.keys)
                    .map(|k| {
                        let w = 1e9 / ((k + 1) as f64).powf(exponent);
                        cumulative += (w.round() as u64).max(1);
                        cumulative
                    })
                    .collect()
            }
        };
        let mut txn_total = 0;
        let mut txn_mix: Vec<(OpKind, u64)> = workload
            .mix
            .iter()
            .filter(|(kind, _)| matches!(kind, OpKind::Get | OpKind::Put | OpKind::Append))
            .map(|(kind, weight)| {
                txn_total += u64::from(*weight);
                (*kind, txn_total)
            })
            .collect();
        if txn_mix.is_empty() {
            // List-append by default: a read shows the order of every append before it, which
            // gives Elle's checker the full version order (Kingsbury & Alvaro, section 4).
            txn_mix = vec![(OpKind::Get, 1), (OpKind::Append, 2)];
        }
        OpGenerator {
            uses_last_seen: workload.mix.iter().any(|(k, _)| *k == OpKind::Cas),
            mix,
            txn_mix,
            txn_ops: workload.txn_ops,
            key_weights,
            keys: workload.keys,
            target: workload.target,
            nodes,
            in_flight: workload.in_flight.max(1),
            max_writes_per_key: workload.max_writes_per_key,
            slots: match workload.max_writes_per_key {
                Some(_) => vec![(0, 0); workload.keys as usize],
                None => Vec::new(),
            },
            contexts: workload.contexts,
        }
    }

    /// The key slot `slot` stands for now (itself while keys take every write).
    fn current(&self, slot: Key) -> Key {
        match self.slots.get(slot as usize) {
            Some((generation, _)) => slot + self.keys * generation,
            None => slot,
        }
    }

    /// Counts a write issued to the key of slot `key % keys`, which moves on to a fresh key
    /// once it has taken `max_writes_per_key`.
    fn wrote(&mut self, key: Key) {
        let Some(most) = self.max_writes_per_key else {
            return;
        };
        let (generation, count) = &mut self.slots[(key % self.keys) as usize];
        *count += 1;
        if *count >= most {
            *generation += 1;
            *count = 0;
        }
    }

    fn key(&self, rng: &mut Stream) -> Key {
        let slot = match self.key_weights.last() {
            None => rng.below(self.keys),
            Some(total) => {
                let x = rng.below(*total);
                self.key_weights.partition_point(|c| *c <= x) as Key
            }
        };
        self.current(slot)
    }

    fn kind(&self, rng: &mut Stream) -> OpKind {
        pick(&self.mix, rng)
    }

    /// A txn's operations: `txn_ops` distinct keys (fewer if the draws keep repeating, as
    /// with fewer keys than that), each a get, put or append. The `n`th writes `value.n`.
    fn txn(&self, value: &str, rng: &mut Stream) -> Op {
        let mut keys: Vec<Key> = Vec::with_capacity(self.txn_ops as usize);
        for _ in 0..4 * self.txn_ops {
            if keys.len() == self.txn_ops as usize {
                break;
            }
            let key = self.key(rng);
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        let ops = keys
            .into_iter()
            .enumerate()
            .map(|(n, key)| match pick(&self.txn_mix, rng) {
                OpKind::Get => Op::Get { key },
                OpKind::Append => Op::Append {
                    key,
                    value: format!("{value}.{n};").into(),
                },
                _ => Op::Put {
                    key,
                    value: format!("{value}.{n}").into(),
                },
            })
            .collect();
        Op::Txn { ops }
    }

    /// The next operation of history process `id` (a client's slot), whose memory is
    /// `memory`, and the node it goes to. Values are unique per process; a fixed target is
    /// the client's.
    pub fn next(
        &mut self,
        id: ClientId,
        memory: &mut ClientMemory,
        rng: &mut Stream,
    ) -> (RequestId, Op, NodeId) {
        let request = memory.next_request(id);
        memory.outgoing = None;
        if self.contexts {
            if let Some(write) = memory.queued.take() {
                // The read is done: the write goes with what it answered (or nothing).
                memory.outgoing = Some(memory.read_context.take().unwrap_or_default());
                self.wrote(write.key());
                let node = self.node(id, memory, rng);
                return (request, write, node);
            }
        }
        // Made only for an operation that writes it (a get or delete has none): it draws
        // nothing, so when it is made moves no draw.
        let value = || unique_value(id.0 + 1, memory.next_seq);
        let key = self.key(rng);
        let op = match self.kind(rng) {
            OpKind::Get => Op::Get { key },
            OpKind::Put => Op::Put {
                key,
                value: value(),
            },
            OpKind::Update => Op::Update {
                key,
                value: value(),
            },
            OpKind::Delete => Op::Delete { key },
            OpKind::Cas => Op::Cas {
                key,
                // A value never written when this client has seen none: the cas must fail.
                expected: memory
                    .last_seen
                    .get(&key)
                    .cloned()
                    .unwrap_or_else(|| "c0.0".into()),
                new: value(),
            },
            OpKind::Append => Op::Append {
                key,
                value: value().appended(";"),
            },
            OpKind::Txn => self.txn(&value(), rng),
        };
        let op = if self.contexts && op.is_write() {
            // Read first (the seed's REST client: GET, then PUT with the clock it read).
            memory.queued = Some(op);
            memory.read_context = None;
            Op::Get { key }
        } else {
            op
        };
        if self.max_writes_per_key.is_some() {
            for part in op.parts().iter().filter(|p| p.is_write()) {
                self.wrote(part.key());
            }
        }
        let node = self.node(id, memory, rng);
        (request, op, node)
    }

    /// The node the next operation of process `id` goes to.
    fn node(&self, id: ClientId, memory: &ClientMemory, rng: &mut Stream) -> NodeId {
        match self.target {
            Target::Random => NodeId(rng.below(u64::from(self.nodes)) as u16),
            Target::Fixed => NodeId((id.0 / self.in_flight % u32::from(self.nodes)) as u16),
            Target::FollowRedirects => memory
                .redirect
                .unwrap_or_else(|| NodeId(rng.below(u64::from(self.nodes)) as u16)),
        }
    }
}

/// The operations `history` invoked, as a script that invokes them again: each at its
/// time, by its process, to the node its first attempt went to.
pub fn frozen_script(history: &History) -> Vec<ScriptedOp> {
    history
        .events
        .iter()
        .filter(|e| e.outcome.is_none())
        .map(|e| ScriptedOp {
            at: e.time,
            process: e.client,
            node: e.node,
            op: Op::clone(&e.op),
        })
        .collect()
}

/// Draws from cumulative weights.
fn pick(mix: &[(OpKind, u64)], rng: &mut Stream) -> OpKind {
    let total = mix.last().map_or(1, |(_, c)| *c);
    let x = rng.below(total);
    let i = mix.partition_point(|(_, c)| *c <= x);
    mix[i].0
}

/// `c{client}.{seq}`, built by hand: `format!` costs several hundred instructions, and the
/// workload makes one value per operation.
fn unique_value(client: u32, seq: u64) -> Value {
    // On the stack, then one allocation for the shared value: at most 1 + 10 + 1 + 20 bytes.
    let mut text = [0u8; 32];
    text[0] = b'c';
    let mut len = 1 + write_decimal(&mut text[1..], u64::from(client));
    text[len] = b'.';
    len += 1;
    len += write_decimal(&mut text[len..], seq);
    Value::from(std::str::from_utf8(&text[..len]).expect("ASCII"))
}

/// Writes `n` in decimal at the start of `out`; how many bytes it took.
fn write_decimal(out: &mut [u8], mut n: u64) -> usize {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let len = digits.len() - i;
    out[..len].copy_from_slice(&digits[i..]);
    len
}

impl ClientMemory {
    /// The request id of process `id`'s next operation.
    pub fn next_request(&mut self, id: ClientId) -> RequestId {
        self.next_seq += 1;
        RequestId {
            client: id,
            seq: self.next_seq,
        }
    }

    /// The context the operation just drawn carries (with contexts, a write's: what the get
    /// before it answered), taken.
    pub fn take_outgoing(&mut self) -> Option<CausalContext> {
        self.outgoing.take()
    }

    /// With contexts: remembers the context a completed get answered, for the write queued
    /// behind it.
    pub fn learn_context(&mut self, op: &Op, context: Option<&CausalContext>) {
        if matches!(op, Op::Get { .. }) && self.queued.is_some() {
            self.read_context = context.cloned();
        }
    }

    /// Remembers the value `result` shows for `key`, if it shows one.
    fn see(&mut self, key: Key, result: &OpResult) {
        match result {
            OpResult::Ok { value: Some(v) }
            | OpResult::PreconditionFailed {
                current: Some(v), ..
            } => match self.last_seen.get_mut(&key) {
                // Reuses the copy's allocation.
                Some(seen) => seen.clone_from(v),
                None => {
                    self.last_seen.insert(key, v.clone());
                }
            },
            OpResult::NotFound
            | OpResult::Ok { value: None }
            | OpResult::PreconditionFailed { current: None } => {
                self.last_seen.remove(&key);
            }
            _ => {}
        }
    }

    /// Learns from an operation `op` sent to `node` and completed with `result` (`None`:
    /// timed out): the value seen (when `values`, that is when the mix has cas), and where
    /// to go next.
    pub fn learn(&mut self, op: &Op, node: NodeId, result: Option<&OpResult>, values: bool) {
        // Without cas in the mix nothing reads `last_seen`: skip the copy.
        match (op, result) {
            _ if !values => {}
            (Op::Txn { ops }, Some(OpResult::Txn { results })) => {
                for (op, result) in ops.iter().zip(results) {
                    self.see(op.key(), result);
                }
            }
            (Op::Txn { .. }, _) | (_, None) => {}
            (op, Some(result)) => self.see(op.key(), result),
        }
        // Follow a hint; forget the target after a refusal or timeout without one.
        self.redirect = match result {
            Some(r) if !r.is_applied() => r.hint(),
            None => None,
            Some(_) => Some(node),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Streams;
    use crate::scenario::Arrival;
    use simkv_protocols::Span;

    fn workload(dist: KeyDistribution, target: Target) -> Workload {
        Workload {
            clients: 2,
            keys: 10,
            key_distribution: dist,
            mix: vec![(OpKind::Get, 1), (OpKind::Put, 3)],
            arrival: Arrival::ClosedLoop {
                think: Span(10).into(),
            },
            timeout: Span(100),
            target,
            quorum: None,
            retries: 0,
            txn_ops: 3,
            backoff: crate::scenario::Backoff::None,
            in_flight: 1,
            placement: crate::scenario::Placement::Outside,
            max_writes_per_key: None,
            max_ops: None,
            start: Span::ZERO,
            contexts: false,
            script: Vec::new(),
        }
    }

    /// With contexts, a put is preceded by a get of its key, and goes with the context the
    /// get answered; after a get that answered none (refused, timed out), with the empty one.
    #[test]
    fn with_contexts_a_write_follows_a_get_and_carries_its_context() {
        let mut w = workload(KeyDistribution::Uniform, Target::Random);
        w.mix = vec![(OpKind::Put, 1)];
        w.contexts = true;
        let mut g = OpGenerator::new(&w, 3);
        let mut rng = Streams::new(3, 0).workload;
        let mut c = ClientMemory::default();
        let (_, read, _) = g.next(ClientId(0), &mut c, &mut rng);
        assert!(matches!(read, Op::Get { .. }), "{read}");
        assert_eq!(c.take_outgoing(), None, "a get carries no context");
        let context = CausalContext::from_pairs([(1, 4), (2, 7)]);
        c.learn_context(&read, Some(&context));
        let (_, write, _) = g.next(ClientId(0), &mut c, &mut rng);
        assert!(
            matches!(write, Op::Put { .. }) && write.key() == read.key(),
            "{write}"
        );
        assert_eq!(c.take_outgoing(), Some(context));
        let (_, read, _) = g.next(ClientId(0), &mut c, &mut rng);
        c.learn_context(&read, None);
        let (_, write, _) = g.next(ClientId(0), &mut c, &mut rng);
        assert!(matches!(write, Op::Put { .. }));
        assert_eq!(c.take_outgoing(), Some(CausalContext::default()));
    }

    #[test]
    fn unique_values_read_as_client_dot_sequence() {
        assert_eq!(unique_value(3, 17), "c3.17");
        assert_eq!(unique_value(1, 0), "c1.0");
        assert_eq!(unique_value(12, 1_000_000_007), "c12.1000000007");
    }

    #[test]
    fn values_are_unique_and_keys_in_range() {
        let mut g = OpGenerator::new(&workload(KeyDistribution::Uniform, Target::Random), 3);
        let mut rng = Streams::new(1, 0).workload;
        let mut c = ClientMemory::default();
        let mut values = std::collections::BTreeSet::new();
        let mut puts = 0;
        for _ in 0..400 {
            let (_, op, node) = g.next(ClientId(0), &mut c, &mut rng);
            assert!(op.key() < 10 && node.0 < 3);
            if let Op::Put { value, .. } = op {
                puts += 1;
                assert!(values.insert(value));
            }
        }
        // 3:1 mix: about 300 puts.
        assert!((250..350).contains(&puts), "{puts}");
    }

    #[test]
    fn zipf_favours_low_keys_and_fixed_targets_stay_put() {
        let w = workload(KeyDistribution::Zipf { exponent: 1.0 }, Target::Fixed);
        let mut g = OpGenerator::new(&w, 3);
        let mut rng = Streams::new(2, 0).workload;
        let mut c = ClientMemory::default();
        let mut counts = [0u32; 10];
        for _ in 0..2000 {
            let (_, op, node) = g.next(ClientId(4), &mut c, &mut rng);
            counts[op.key() as usize] += 1;
            assert_eq!(node, NodeId(1));
        }
        assert!(counts[0] > 3 * counts[9], "{counts:?}");
    }
}
