//! The engine's guarantees, checked step by step with a probe protocol.

use super::*;
use crate::scenario::fault_kinds::{
    ClockJump, Crash, Freeze, Heal, Isolate, LinkChange, NetworkFault, NetworkScope, OneWay,
    Partition, Pause, Restart, Resume, Slow, Unfreeze, Unslow,
};
use crate::scenario::{
    Arrival, Checks, Cluster, Fault, KeyDistribution, Latency, LinkBehaviour, Network, OpKind,
    PartitionShape, ScheduledFault, Target, Workload,
};
use proptest::prelude::*;
use serde::Serialize;
use simkv_protocols::roles::Replica;
use simkv_protocols::RoleKind;
use simkv_protocols::{
    kv, Key, NodeConfig, OpResult, Params, ProtocolInfo, Request, SpanRange, Value,
};
use std::collections::BTreeMap;

/// Pings every peer on a timer and serves requests from a local store: enough traffic in
/// every direction to exercise the network, timers and clients.
#[derive(Debug)]
struct Probe {
    me: NodeId,
    peers: Vec<NodeId>,
    store: BTreeMap<Key, Value>,
    pings: u64,
}

#[derive(Clone, Debug, Hash, Serialize)]
struct Ping(u64);

#[derive(Clone, Debug, Hash, PartialEq, Eq, Serialize)]
struct Tick;

/// The probe's one record: its ping count, which replaces the count recovered before it.
#[derive(Clone, Debug)]
struct Pings(u64);

impl simkv_protocols::Replay<u64> for Pings {
    fn replay(&self, durable: &mut Option<u64>) {
        *durable = Some(self.0);
    }
}

impl Protocol for Probe {
    type Message = Ping;
    type Timer = Tick;
    type Durable = u64;
    type Record = Pings;
    type Role = Replica;

    fn info() -> ProtocolInfo {
        ProtocolInfo {
            name: "probe",
            description: "test",
            promises: &[],
            params: &[],
            bugs: &[],
            roles: <Replica as RoleKind>::SPECS,
            transactions: false,
            contexts: false,
            operators: &[],
            membership: false,
            check_params: simkv_protocols::params::no_param_check,
        }
    }

    fn role(&self) -> Replica {
        Replica::Replica
    }

    fn start(ctx: &mut Context<'_, Self>, config: &NodeConfig, durable: Option<&u64>) -> Self {
        ctx.set_timer(
            Tick,
            SpanRange {
                min: Span::millis(5),
                max: Span::millis(15),
            },
        );
        let pings = durable.copied().unwrap_or(0);
        Probe {
            me: config.id,
            peers: config.peers().collect(),
            store: BTreeMap::new(),
            pings,
        }
    }

    fn on_message(&mut self, ctx: &mut Context<'_, Self>, from: NodeId, msg: Ping) {
        assert_ne!(from, self.me);
        self.pings += 1;
        ctx.write(Pings(self.pings));
        ctx.sync();
        ctx.note(|| format!("ping {} from {from}", msg.0));
    }

    fn on_timer(&mut self, ctx: &mut Context<'_, Self>, _: Tick) {
        for p in self.peers.clone() {
            ctx.send(p, Ping(self.pings));
        }
        ctx.set_timer(
            Tick,
            SpanRange {
                min: Span::millis(5),
                max: Span::millis(15),
            },
        );
    }

    fn on_request(&mut self, ctx: &mut Context<'_, Self>, request: Request) {
        let result = kv::apply(&mut self.store, &request.op);
        ctx.reply(request.id, result);
    }

    fn store(&self) -> BTreeMap<Key, Value> {
        self.store.clone()
    }
}

fn link(latency: Latency, drop_ppm: u32, duplicate_ppm: u32, reorder_ppm: u32) -> LinkBehaviour {
    LinkBehaviour {
        latency,
        drop_ppm,
        duplicate_ppm,
        reorder_ppm,
        reorder_delay: SpanRange {
            min: Span::millis(1),
            max: Span::millis(20),
        },
    }
}

pub(crate) fn scenario(nodes: u16, faults: Vec<ScheduledFault>) -> Scenario {
    Scenario {
        name: "probe".into(),
        description: "engine test".into(),
        source: "test".into(),
        seed: 7,
        duration: Span::secs(2),
        max_events: 1_000_000,
        cluster: Cluster {
            // The engine runs the type it is given (Probe); the kind names it in reports.
            protocol: simkv_protocols::ProtocolKind::Primary,
            nodes,
            initial: (0..nodes).map(NodeId).collect(),
            params: Params::default(),
            bugs: vec![],
        },
        network: Network {
            default: link(
                Latency::Uniform(Span::millis(1), Span::millis(8)),
                20_000,
                20_000,
                50_000,
            ),
            client: link(Latency::Constant(Span::micros(500)), 0, 0, 0),
            links: vec![],
            fifo: true,
        },
        clocks: vec![],
        workload: Workload {
            clients: 4,
            keys: 3,
            key_distribution: KeyDistribution::Uniform,
            mix: vec![(OpKind::Get, 1), (OpKind::Put, 1), (OpKind::Cas, 1)],
            arrival: Arrival::ClosedLoop {
                think: Span::millis(3).into(),
            },
            timeout: Span::millis(100),
            target: Target::Random,
            quorum: None,
            retries: 0,
            txn_ops: 3,
            backoff: crate::scenario::Backoff::None,
            in_flight: 1,
            max_writes_per_key: None,
            max_ops: None,
            start: Span::ZERO,
            contexts: false,
            script: Vec::new(),
            placement: crate::scenario::Placement::Outside,
        },
        faults,
        nemeses: vec![],
        checks: Checks {
            liveness: Span::millis(200),
            settle: Span::millis(300),
            liveness_mode: crate::scenario::LivenessMode::Heal,
            stated: crate::scenario::StatedChecks::default(),
        },
        disk: crate::scenario::DiskSettings::default(),
        swarm: Vec::new(),
    }
}

fn fault(at_ms: u64, fault: impl Into<Fault>) -> ScheduledFault {
    ScheduledFault::exactly(
        Time::ZERO + Span::millis(at_ms),
        fault.into(),
        FaultOrigin::Scripted("test".into()),
    )
}

fn any_fault(nodes: u16) -> impl Strategy<Value = Fault> {
    let node = (0..nodes).prop_map(NodeId);
    let shape = |shape| Fault::from(Partition(shape));
    prop_oneof![
        Just(shape(PartitionShape::MajorityMinority)),
        Just(shape(PartitionShape::Bridge)),
        Just(shape(PartitionShape::Ring)),
        node.clone().prop_map(|n| Isolate(n.into()).into()),
        (node.clone(), node.clone()).prop_map(|(a, b)| OneWay {
            from: vec![a],
            to: vec![b]
        }
        .into()),
        Just(Heal.into()),
        node.clone().prop_map(|n| Freeze(n.into()).into()),
        node.clone().prop_map(|n| Unfreeze(n.into()).into()),
        node.clone().prop_map(|n| Pause(n.into()).into()),
        node.clone().prop_map(|n| Resume(n.into()).into()),
        node.clone().prop_map(|n| Crash(n.into()).into()),
        node.clone().prop_map(|n| Restart(n.into()).into()),
        (node.clone(), -50_000i64..50_000)
            .prop_map(|(node, by_us)| ClockJump { node, by_us }.into()),
        (node.clone(), 1u32..20).prop_map(|(node, factor)| Slow { node, factor }.into()),
        node.clone().prop_map(|n| Unslow(n.into()).into()),
        node.prop_map(|n| {
            let change = LinkChange {
                drop_ppm: Some(1_000_000),
                ..LinkChange::default()
            };
            NetworkFault::Change(NetworkScope::Node(n), change).into()
        }),
        Just(NetworkFault::Base.into()),
    ]
}

fn run_collect(s: &Scenario) -> (RunOutput<Probe>, Vec<u8>) {
    let buffer = SharedBuffer::default();
    let engine = Engine::<Probe>::new(s, Some(Trace::new(Box::new(buffer.clone()))));
    let output = engine.run();
    let bytes = buffer.0.borrow().clone();
    (output, bytes)
}

#[derive(Clone, Default)]
struct SharedBuffer(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl std::io::Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random fault schedules: no message crosses a cut link or reaches a frozen node, no
    /// handler runs on a paused or crashed node, and virtual time never runs backwards.
    #[test]
    fn random_fault_schedules_keep_the_network_guarantees(
        faults in proptest::collection::vec((0u64..2000, any_fault(5)), 0..25),
        seed in 0u64..1000,
    ) {
        let mut scheduled: Vec<ScheduledFault> =
            faults.into_iter().map(|(at, f)| fault(at, f)).collect();
        scheduled.sort_by_key(|f| f.at);
        let mut s = scenario(5, scheduled);
        s.seed = seed;
        let mut engine = Engine::<Probe>::new(&s, None);
        engine.boot();
        let mut last = Time::ZERO;
        let mut steps = 0;
        while let Some(step) = engine.step() {
            steps += 1;
            prop_assert!(step.at >= last, "time ran backwards");
            last = step.at;
            if let Some(node) = step.handled {
                let status = engine.node_status(node);
                prop_assert!(!status.paused, "a handler ran on paused {node}");
                prop_assert!(status.running, "a handler ran on crashed {node}");
                if let Some(from) = step.delivered_from {
                    prop_assert!(engine.topology().is_up(from, node), "{from}->{node} crossed a cut link");
                    prop_assert!(!status.frozen, "delivered to frozen {node}");
                }
            }
        }
        prop_assert!(steps > 100);
    }
}

#[test]
fn same_seed_gives_the_same_fingerprint_trace_and_history() {
    let faults = vec![
        fault(300, Partition(PartitionShape::MajorityMinority)),
        fault(900, Heal),
        fault(1000, Crash(NodeId(2).into())),
        fault(1200, Restart(NodeId(2).into())),
    ];
    let s = scenario(5, faults);
    let (a, trace_a) = run_collect(&s);
    let (b, trace_b) = run_collect(&s);
    assert_eq!(a.fingerprint, b.fingerprint);
    assert_eq!(trace_a, trace_b);
    assert_eq!(a.history.to_json(), b.history.to_json());
    assert!(a.history.events.len() > 100, "the workload ran");
    assert!(trace_a.len() > 10_000);

    let mut other = s.clone();
    other.seed += 1;
    let (c, trace_c) = run_collect(&other);
    assert_ne!(a.fingerprint, c.fingerprint);
    assert_ne!(trace_a, trace_c);
    assert_ne!(a.history.to_json(), c.history.to_json());
}

#[test]
fn tracing_does_not_change_the_run() {
    let s = scenario(3, vec![fault(500, Freeze(NodeId(0).into()))]);
    let (traced, _) = run_collect(&s);
    let untraced = Engine::<Probe>::new(&s, None).run();
    assert_eq!(traced.fingerprint, untraced.fingerprint);
    assert_eq!(traced.history, untraced.history);
}

#[test]
fn a_paused_node_runs_what_waited_when_resumed_and_a_crash_loses_volatile_state() {
    let s = scenario(
        3,
        vec![
            fault(100, Pause(NodeId(1).into())),
            fault(400, Resume(NodeId(1).into())),
            fault(600, Crash(NodeId(2).into())),
            fault(800, Restart(NodeId(2).into())),
        ],
    );
    let out = Engine::<Probe>::new(&s, None).run();
    let actions: Vec<&str> = out.faults.iter().map(|f| f.action.as_str()).collect();
    assert!(
        actions[1].starts_with("resume n2 (") && !actions[1].starts_with("resume n2 (0 "),
        "{actions:?}"
    );
    assert_eq!(actions[3], "restart n3 from its durable state");
    // The restarted node kept its durable ping count and went on counting.
    let restarted = out.nodes[2].as_ref().expect("running");
    let steady = out.nodes[0].as_ref().expect("running");
    assert!(restarted.pings > 0 && steady.pings > 0);
    assert_eq!(out.healed_at, Some(Time::ZERO + Span::millis(800)));
}

#[test]
fn a_partition_cuts_traffic_and_the_final_heal_restores_it() {
    let s = scenario(
        5,
        vec![fault(100, Partition(PartitionShape::Isolate(NodeId(0))))],
    );
    let out = Engine::<Probe>::new(&s, None).run();
    let last = out.faults.last().expect("final heal");
    assert_eq!(last.origin, FaultOrigin::FinalHeal);
    assert_eq!(last.at, Time::ZERO + Span::secs(2));
    // The workload ran a liveness phase of twice the window after the final heal.
    assert_eq!(
        out.workload_stopped,
        Time::ZERO + Span::secs(2) + Span::millis(400)
    );
    assert!(out.stats.dropped > 0);
}

#[test]
fn clients_time_out_against_a_frozen_node_and_record_info() {
    let mut s = scenario(
        1,
        vec![
            fault(100, Freeze(NodeId(0).into())),
            fault(1000, Unfreeze(NodeId(0).into())),
        ],
    );
    s.network.default = link(Latency::Constant(Span::millis(1)), 0, 0, 0);
    let out = Engine::<Probe>::new(&s, None).run();
    let infos = out
        .history
        .events
        .iter()
        .filter(|e| matches!(e.outcome, Some(crate::history::Outcome::Info)))
        .count();
    assert!(infos >= 4, "every client timed out at least once: {infos}");
    let last_ok = out
        .history
        .events
        .iter()
        .rev()
        .find(|e| matches!(e.outcome, Some(crate::history::Outcome::Ok(_))));
    assert!(last_ok.is_some_and(|e| e.time > Time::ZERO + Span::millis(1000)));
}

#[test]
fn the_event_limit_stops_the_run() {
    let mut s = scenario(3, vec![]);
    s.max_events = 500;
    let out = Engine::<Probe>::new(&s, None).run();
    assert!(out.hit_event_limit);
    assert_eq!(out.stats.events, 500);
}

/// Panics in its first timer: a protocol bug the engine must report, not die of.
#[derive(Debug)]
struct Bomb;

impl Protocol for Bomb {
    type Message = Ping;
    type Timer = Tick;
    type Durable = u64;
    type Record = ();
    type Role = Replica;

    fn info() -> ProtocolInfo {
        ProtocolInfo {
            name: "bomb",
            description: "test",
            promises: &[],
            params: &[],
            bugs: &[],
            roles: <Replica as RoleKind>::SPECS,
            transactions: false,
            contexts: false,
            operators: &[],
            membership: false,
            check_params: simkv_protocols::params::no_param_check,
        }
    }

    fn role(&self) -> Replica {
        Replica::Replica
    }

    fn start(ctx: &mut Context<'_, Self>, _: &NodeConfig, _: Option<&u64>) -> Self {
        ctx.set_timer(Tick, Span::millis(5));
        Bomb
    }

    fn on_message(&mut self, _: &mut Context<'_, Self>, _: NodeId, _: Ping) {}

    fn on_timer(&mut self, _: &mut Context<'_, Self>, _: Tick) {
        panic!("boom");
    }

    fn on_request(&mut self, ctx: &mut Context<'_, Self>, request: Request) {
        ctx.reply(request.id, OpResult::Unavailable { hint: None });
    }

    fn store(&self) -> BTreeMap<Key, Value> {
        BTreeMap::new()
    }
}

#[test]
fn a_panicking_handler_ends_the_run_as_a_broken_invariant() {
    let s = scenario(3, vec![]);
    let out = Engine::<Bomb>::new(&s, None).run();
    let (at, what) = out.invariant_violation.expect("the panic is reported");
    assert_eq!(at, Time::ZERO + Span::millis(5));
    assert!(what.contains("panicked: boom"), "{what}");
}

#[path = "engine_nemesis_tests.rs"]
mod nemeses;

#[path = "engine_disk_tests.rs"]
mod disk;

#[test]
fn sampling_divergence_observes_without_changing_the_run() {
    let s = scenario(
        3,
        vec![
            fault(300, crate::scenario::fault_kinds::Isolate(NodeId(2).into())),
            fault(900, crate::scenario::fault_kinds::Heal),
        ],
    );
    let plain = Engine::<Probe>::new(&s, None).run();
    let sampled = Engine::<Probe>::new(&s, None)
        .sample_divergence(Span::millis(100))
        .run();
    assert_eq!(plain.fingerprint, sampled.fingerprint);
    assert!(plain.divergence.is_empty());
    let times: Vec<u64> = sampled
        .divergence
        .iter()
        .map(|(t, _)| t.as_micros())
        .collect();
    let expected: Vec<u64> = (0..times.len() as u64).map(|i| i * 100_000).collect();
    assert_eq!(times, expected, "one sample every 100 ms from 0");
    assert!(sampled.end.as_micros() < times.len() as u64 * 100_000 + 100_000);
    // The probe's stores take each client's writes where they land: replicas disagree.
    assert!(sampled.divergence.iter().any(|(_, keys)| *keys > 0));
}
