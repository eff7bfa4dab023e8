//! The network as a timeline: `network` faults change which messages arrive and when, in
//! their scope and from their moment on; `slow` stretches a node's latencies and timers; a
//! heal brings everything back; the nemesis draws both.

use super::tests::scenario;
use super::*;
use crate::scenario::fault_kinds::{Heal, LinkChange, NetworkFault, NetworkScope, Slow, Unslow};
use crate::scenario::{Fault, Latency, LinkBehaviour, Nemesis, NemesisKind, ScheduledFault};
use serde::Serialize;
use simkv_protocols::{kv, Key, NodeConfig, ProtocolInfo, Request, SpanRange, Value};
use std::collections::BTreeMap;

fn n(i: u16) -> NodeId {
    NodeId(i)
}

fn at(ms: u64, fault: impl Into<Fault>) -> ScheduledFault {
    ScheduledFault::exactly(
        Time::ZERO + Span::millis(ms),
        fault.into(),
        FaultOrigin::Scripted("test".into()),
    )
}

fn drop_all(scope: NetworkScope) -> NetworkFault {
    let change = LinkChange {
        drop_ppm: Some(1_000_000),
        ..LinkChange::default()
    };
    NetworkFault::Change(scope, change)
}

fn link(from: u16, to: u16, both_ways: bool) -> NetworkScope {
    NetworkScope::Link {
        from: n(from),
        to: n(to),
        both_ways,
    }
}

/// Sends its local time to every peer every 10ms exactly and writes down, for each message
/// it receives, who sent it, when it was sent and how long it took; and when each of its
/// timers fired. Clocks are exact in these tests, so local time is true time.
#[derive(Debug)]
struct Stamp {
    peers: Vec<NodeId>,
    store: BTreeMap<Key, Value>,
    /// (sender, sent at, latency).
    received: Vec<(NodeId, Time, Span)>,
    ticks: Vec<Time>,
}

#[derive(Clone, Debug, Hash, Serialize)]
struct Sent(u64);

#[derive(Clone, Debug, Hash, PartialEq, Eq, Serialize)]
struct Tick;

const TICK: Span = Span::millis(10);

impl Protocol for Stamp {
    type Message = Sent;
    type Timer = Tick;
    type Role = simkv_protocols::roles::Replica;
    type Durable = ();
    type Record = ();

    fn info() -> ProtocolInfo {
        ProtocolInfo {
            name: "stamp",
            description: "test",
            promises: &[],
            params: &[],
            bugs: &[],
            roles: <simkv_protocols::roles::Replica as simkv_protocols::RoleKind>::SPECS,
            transactions: false,
            contexts: false,
            operators: &[],
            membership: false,
            check_params: simkv_protocols::params::no_param_check,
        }
    }

    fn role(&self) -> simkv_protocols::roles::Replica {
        simkv_protocols::roles::Replica::Replica
    }

    fn start(ctx: &mut Context<'_, Self>, config: &NodeConfig, _: Option<&()>) -> Self {
        ctx.set_timer(Tick, SpanRange::exactly(TICK));
        Stamp {
            peers: config.peers().collect(),
            store: BTreeMap::new(),
            received: Vec::new(),
            ticks: Vec::new(),
        }
    }

    fn on_message(&mut self, ctx: &mut Context<'_, Self>, from: NodeId, msg: Sent) {
        let sent = Time(msg.0);
        self.received.push((from, sent, ctx.now().since(sent)));
    }

    fn on_timer(&mut self, ctx: &mut Context<'_, Self>, _: Tick) {
        self.ticks.push(ctx.now());
        for p in self.peers.clone() {
            ctx.send(p, Sent(ctx.now().as_micros()));
        }
        ctx.set_timer(Tick, SpanRange::exactly(TICK));
    }

    fn on_request(&mut self, ctx: &mut Context<'_, Self>, request: Request) {
        let result = kv::apply(&mut self.store, &request.op);
        ctx.reply(request.id, result);
    }

    fn store(&self) -> BTreeMap<Key, Value> {
        self.store.clone()
    }
}

/// A run of `Stamp` on `nodes` lossless, FIFO, constant-10ms links.
fn stamp_scenario(nodes: u16, faults: Vec<ScheduledFault>) -> Scenario {
    let mut s = scenario(nodes, faults);
    s.network.default = LinkBehaviour {
        latency: Latency::Constant(Span::millis(10)),
        drop_ppm: 0,
        duplicate_ppm: 0,
        reorder_ppm: 0,
        reorder_delay: Span::ZERO.into(),
    };
    s
}

/// Every message `Stamp` received in the run: (sender, receiver, sent at, latency).
fn received(out: &RunOutput<Stamp>) -> Vec<(NodeId, NodeId, Time, Span)> {
    let mut all = Vec::new();
    for (i, node) in out.nodes.iter().enumerate() {
        let node = node.as_ref().expect("no node crashed");
        for (from, sent, latency) in &node.received {
            all.push((*from, n(i as u16), *sent, *latency));
        }
    }
    all
}

/// How many messages sent in `[from_ms, to_ms)` on links `pick` chooses were delivered.
fn delivered(
    out: &RunOutput<Stamp>,
    (from_ms, to_ms): (u64, u64),
    pick: impl Fn(NodeId, NodeId) -> bool,
) -> usize {
    let window = Time::ZERO + Span::millis(from_ms)..Time::ZERO + Span::millis(to_ms);
    received(out)
        .into_iter()
        .filter(|(a, b, sent, _)| window.contains(sent) && pick(*a, *b))
        .count()
}

fn actions<P: Protocol>(out: &RunOutput<P>) -> Vec<&str> {
    out.faults.iter().map(|f| f.action.as_str()).collect()
}

#[test]
fn a_total_drop_stops_deliveries_from_then_on_until_the_heal() {
    let s = stamp_scenario(
        3,
        vec![at(500, drop_all(NetworkScope::All)), at(1000, Heal)],
    );
    let out = Engine::<Stamp>::new(&s, None).run();
    let any = |_, _| true;
    // Each node sends 2 messages per 10ms tick.
    assert!(delivered(&out, (0, 500), any) > 250);
    assert_eq!(delivered(&out, (500, 1000), any), 0);
    assert!(delivered(&out, (1000, 2000), any) > 500);
    assert_eq!(
        actions(&out),
        [
            "network all links: drop = \"100%\"",
            "heal: all links up, network back to base"
        ]
    );
    // Judged whole again only from the heal; nothing left for a final heal.
    assert_eq!(out.healed_at, Some(Time::ZERO + Span::millis(1000)));
}

#[test]
fn a_link_change_holds_one_direction_or_both_and_a_node_change_every_link_of_the_node() {
    let s = stamp_scenario(
        3,
        vec![
            at(200, drop_all(link(0, 1, false))),
            at(600, NetworkFault::Base),
            at(1000, drop_all(link(0, 1, true))),
            at(1400, NetworkFault::Base),
            at(1400, drop_all(NetworkScope::Node(n(2)))),
        ],
    );
    let out = Engine::<Stamp>::new(&s, None).run();
    let is = |a: u16, b: u16| move |x: NodeId, y: NodeId| (x, y) == (n(a), n(b));
    let touches = |c: u16| move |x: NodeId, y: NodeId| x == n(c) || y == n(c);
    // One direction.
    assert_eq!(delivered(&out, (200, 600), is(0, 1)), 0);
    assert!(delivered(&out, (200, 600), is(1, 0)) > 30);
    assert!(delivered(&out, (200, 600), is(0, 2)) > 30);
    assert!(delivered(&out, (600, 1000), is(0, 1)) > 30);
    // Both directions.
    assert_eq!(delivered(&out, (1000, 1400), is(0, 1)), 0);
    assert_eq!(delivered(&out, (1000, 1400), is(1, 0)), 0);
    assert!(delivered(&out, (1000, 1400), is(2, 0)) > 30);
    // Every link of n3, and no other.
    assert_eq!(delivered(&out, (1400, 2000), touches(2)), 0);
    assert!(delivered(&out, (1400, 2000), is(0, 1)) > 50);
    assert!(delivered(&out, (1400, 2000), is(1, 0)) > 50);
    // The network was still degraded when the workload ended: the final heal restored it.
    let last = out.faults.last().expect("final heal");
    assert_eq!(last.origin, FaultOrigin::FinalHeal);
    assert!(last.action.ends_with(", network back to base"), "{last:?}");
    assert!(delivered(&out, (2010, 2300), touches(2)) > 30);
}

#[test]
fn a_slow_node_stretches_the_latency_of_its_links_by_the_slower_end_and_its_timers() {
    let s = stamp_scenario(
        3,
        vec![
            at(
                500,
                Slow {
                    node: n(0),
                    factor: 5,
                },
            ),
            at(
                500,
                Slow {
                    node: n(1),
                    factor: 2,
                },
            ),
            at(1000, Unslow(n(0).into())),
            at(1000, Unslow(n(1).into())),
        ],
    );
    let out = Engine::<Stamp>::new(&s, None).run();
    let during = Time::ZERO + Span::millis(500)..Time::ZERO + Span::millis(1000);
    let mut seen = BTreeMap::new();
    for (from, to, sent, latency) in received(&out) {
        let expected = if during.contains(&sent) {
            let factor = |x: NodeId| [5, 2, 1][x.index()];
            Span::millis(10 * factor(from).max(factor(to)))
        } else if sent < Time::ZERO + Span::millis(1100) {
            // Just after the unslow, FIFO keeps new messages behind slow ones still on the
            // wire.
            continue;
        } else {
            Span::millis(10)
        };
        assert_eq!(latency, expected, "{from}->{to} sent at {sent}");
        *seen.entry(expected).or_insert(0) += 1;
    }
    // A link takes its slower end's factor: n1's links 5x, n2-n3 2x, 1x outside the window; never the
    // product (100ms between n1 and n2).
    let spans: Vec<u64> = seen.keys().map(|s| s.as_micros() / 1000).collect();
    assert_eq!(spans, [10, 20, 50]);
    // n1's timers armed while it was slow fired 50ms apart; n3's stayed at 10ms.
    let gaps = |node: usize| -> Vec<(Time, Span)> {
        let ticks = &out.nodes[node].as_ref().expect("running").ticks;
        ticks.windows(2).map(|w| (w[0], w[1].since(w[0]))).collect()
    };
    for (armed, gap) in gaps(0) {
        let slow = during.contains(&armed);
        assert_eq!(
            gap,
            if slow {
                TICK + TICK + TICK + TICK + TICK
            } else {
                TICK
            },
            "{armed}"
        );
    }
    assert!(gaps(2).iter().all(|(_, gap)| *gap == TICK));
    // Whole once the last message sent slow arrived: n1's at 990ms, 50ms on the wire.
    assert_eq!(out.healed_at, Some(Time::ZERO + Span::millis(1040)));
    assert_eq!(
        actions(&out),
        ["slow n1 x5", "slow n2 x2", "unslow n1", "unslow n2"]
    );
}

#[test]
fn an_unslowed_nodes_armed_timers_come_due_at_its_speed_and_the_heal_waits_for_its_messages() {
    // n1 limps x5 from 500ms and is unslowed at 1005ms, between two ticks: the tick it armed
    // at 1000ms for 50ms has 45ms left, which take 9ms at its own speed again; before, it
    // kept its 1050ms and a probe timer armed under x9 fired seconds after the final heal
    // (gossip on swarm.toml seeds 63 and 225 then judged the late probe calm evidence).
    let s = stamp_scenario(
        3,
        vec![
            at(
                500,
                Slow {
                    node: n(0),
                    factor: 5,
                },
            ),
            at(1005, Unslow(n(0).into())),
        ],
    );
    let out = Engine::<Stamp>::new(&s, None).run();
    let ticks = &out.nodes[0].as_ref().expect("running").ticks;
    let ms = |t: &Time| t.since(Time::ZERO).as_micros() / 1000;
    let around: Vec<u64> = ticks
        .iter()
        .map(ms)
        .filter(|t| (950..=1040).contains(t))
        .collect();
    assert_eq!(around, [950, 1000, 1014, 1024, 1034]);
    // The cluster is whole once the last message sent under x5 arrived (1000ms + 50ms), not
    // at the unslow: liveness and the calm stretch start there.
    assert_eq!(out.healed_at, Some(Time::ZERO + Span::millis(1050)));
}

#[test]
fn a_heal_restores_speed_and_a_slow_node_at_the_end_gets_the_final_heal() {
    let s = stamp_scenario(
        3,
        vec![
            at(
                200,
                Slow {
                    node: n(2),
                    factor: 3,
                },
            ),
            at(400, Heal),
            at(600, Unslow(n(2).into())),
            at(
                800,
                Slow {
                    node: n(1),
                    factor: 4,
                },
            ),
        ],
    );
    let out = Engine::<Stamp>::new(&s, None).run();
    assert_eq!(
        actions(&out),
        [
            "slow n3 x3",
            "heal: all links up, n3 back to speed",
            "unslow n3 (ignored: not slow)",
            "slow n2 x4",
            "heal everything: links, freezes, pauses, crashes, n2 back to speed",
        ]
    );
    // The liveness phase ran at full speed.
    let after = received(&out)
        .into_iter()
        .filter(|(_, _, sent, _)| *sent >= Time::ZERO + Span::millis(2100));
    assert!(after.clone().count() > 50);
    assert!(after
        .into_iter()
        .all(|(.., latency)| latency == Span::millis(10)));
}

#[test]
fn network_and_slow_faults_keep_runs_deterministic() {
    let faults = vec![
        at(
            300,
            NetworkFault::Change(
                NetworkScope::All,
                LinkChange {
                    latency: Some(Latency::Uniform(Span::millis(5), Span::millis(60))),
                    drop_ppm: Some(100_000),
                    reorder_ppm: Some(300_000),
                    ..LinkChange::default()
                },
            ),
        ),
        at(
            500,
            Slow {
                node: n(1),
                factor: 7,
            },
        ),
        at(900, NetworkFault::Base),
        at(1200, Unslow(n(1).into())),
    ];
    let mut s = stamp_scenario(5, faults);
    s.network.default.drop_ppm = 20_000;
    s.nemeses = vec![nemesis(vec![NemesisKind::Network, NemesisKind::Slow])];
    let trace = |s: &Scenario| {
        let buffer = Buffer::default();
        let engine = Engine::<Stamp>::new(s, Some(Trace::new(Box::new(buffer.clone()))));
        let out = engine.run();
        let bytes = buffer.0.borrow().clone();
        assert!(bytes.len() > 100_000);
        (out.fingerprint, out.history.to_json(), bytes)
    };
    let (a, b) = (trace(&s), trace(&s));
    assert_eq!(a, b);
    let mut other = s.clone();
    other.seed += 1;
    assert_ne!(trace(&other).0, a.0);
}

/// A trace sink the test can read back.
#[derive(Clone, Default)]
struct Buffer(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn nemesis(kinds: Vec<NemesisKind>) -> Nemesis {
    Nemesis {
        kinds,
        interval: SpanRange {
            min: Span::millis(50),
            max: Span::millis(100),
        },
        duration: SpanRange {
            min: Span::millis(20),
            max: Span::millis(80),
        },
        start: Time::ZERO,
        stop: Time::ZERO + Span::secs(30),
        clock_jump_max: Span::secs(1),
        clock_drift_max: 200_000,
        targets: Vec::new(),
        on_role: None,
        max_down: None,
    }
}

#[test]
fn the_nemesis_draws_degraded_networks_and_slow_nodes_with_their_undo() {
    let mut s = scenario(5, vec![]);
    s.duration = Span::secs(30);
    s.nemeses = vec![nemesis(vec![NemesisKind::Network, NemesisKind::Slow])];
    let base = Latency::Uniform(Span::millis(1), Span::millis(8));
    assert_eq!(s.network.default.latency, base);
    let timeline = faults::timeline(&s, &mut Streams::new(s.seed, 5).faults);
    let (mut networks, mut slows, mut scopes) = (0, 0, (0, 0));
    for pair in timeline.chunks(2) {
        match (&pair[0].fault, &pair[1].fault) {
            (Fault::Network(NetworkFault::Change(scope, change)), Fault::Network(undo)) => {
                assert_eq!(*undo, NetworkFault::Base);
                networks += 1;
                match scope {
                    NetworkScope::All => scopes.0 += 1,
                    NetworkScope::Node(_) => scopes.1 += 1,
                    other => panic!("drew {other:?}"),
                }
                let drop = change.drop_ppm.expect("drawn");
                assert!((50_000..=300_000).contains(&drop) && drop % 10_000 == 0);
                assert!(change.reorder_ppm.expect("drawn") <= 300_000);
                let Some(Latency::Uniform(min, max)) = change.latency else {
                    panic!("{change:?}")
                };
                let k = min.as_micros() / 1000;
                assert!((2..=20).contains(&k), "{min}");
                assert_eq!(max, Span::millis(8 * k));
            }
            (Fault::Slow(slow), Fault::Unslow(undo)) => {
                assert_eq!(undo.0, slow.node.into());
                assert!((2..=10).contains(&slow.factor));
                slows += 1;
            }
            other => panic!("unexpected pair {other:?}"),
        }
    }
    assert!(networks > 20 && slows > 20, "{networks} {slows}");
    assert!(scopes.0 > 5 && scopes.1 > 5, "{scopes:?}");
    // The same seed draws the same timeline.
    let again = faults::timeline(&s, &mut Streams::new(s.seed, 5).faults);
    assert_eq!(again, timeline);
}
