//! The loader's tests: every field, every default, and where each kind of error points.

use super::fixtures::{fail, load, pos, FULL, MINIMAL};
use super::*;
use crate::scenario::fault_kinds::{
    ClockDrift, ClockJump, Crash, DriftRate, Heal, Isolate, OneWay, Partition, Restart,
};
use crate::scenario::model::{
    Arrival, Backoff, ClockSetting, Fault, KeyDistribution, Latency, LinkBehaviour, LinkOverride,
    NemesisKind, OpKind, PartitionShape, Placement, Target, Workload,
};
use simkv_protocols::{NodeId, SpanRange, Time};

fn ms(n: u64) -> Span {
    Span::millis(n)
}

#[test]
fn a_full_scenario_loads_every_field() {
    let s = ok(FULL);
    assert_eq!(s.name, "partition");
    assert_eq!(
        s.description,
        "5 nodes; majority/minority partition at 10s, heal at 25s"
    );
    assert_eq!(
        (s.seed, s.duration, s.max_events),
        (7, Span::secs(40), 5_000_000)
    );
    assert_eq!((s.cluster.protocol.name(), s.cluster.nodes), ("raft", 5));
    assert_eq!(s.cluster.bugs, ["no-log-check", "stale-read"]);
    let params: Vec<(&str, String)> = s
        .cluster
        .params
        .iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect();
    let expected = [
        ("election_timeout", "200ms..400ms"),
        ("heartbeat", "50ms"),
        ("max_batch", "16"),
        ("pre_vote", "true"),
    ];
    let expected: Vec<(&str, String)> = expected.iter().map(|(k, v)| (*k, v.to_string())).collect();
    assert_eq!(params, expected);
    let c = Checks {
        liveness: Span::secs(3),
        settle: Span::secs(5),
        liveness_mode: LivenessMode::Heal,
        stated: StatedChecks::default(),
    };
    assert_eq!(s.checks, c);
    let n = s.nemeses[0].clone();
    assert_eq!(n.kinds, [NemesisKind::Partition, NemesisKind::ClockJump]);
    assert_eq!(
        (n.interval.min, n.interval.max),
        (Span::secs(1), Span::secs(3))
    );
    assert_eq!((n.start, n.stop), (Time(5_000_000), Time(30_000_000)));
}

#[test]
fn a_full_scenario_loads_its_network_and_clocks() {
    let s = ok(FULL);
    let default = LinkBehaviour {
        latency: Latency::Normal(ms(5), ms(1)),
        drop_ppm: 15_000,
        duplicate_ppm: 200,
        reorder_ppm: 20_000,
        reorder_delay: SpanRange::exactly(ms(20)),
    };
    assert_eq!(s.network.default, default);
    let client = LinkBehaviour {
        latency: Latency::Constant(ms(2)),
        drop_ppm: 0,
        duplicate_ppm: 0,
        reorder_ppm: 0,
        ..default
    };
    assert_eq!((s.network.client, s.network.fifo), (client, false));
    let slow = LinkBehaviour {
        latency: Latency::Exponential(ms(30)),
        drop_ppm: 500_000,
        ..default
    };
    let reordered = LinkBehaviour {
        reorder_delay: SpanRange {
            min: ms(1),
            max: ms(2),
        },
        ..default
    };
    let link = |from, to, behaviour| LinkOverride {
        from: NodeId(from),
        to: NodeId(to),
        behaviour,
    };
    let links = [link(0, 1, slow), link(1, 0, slow), link(2, 3, reordered)];
    assert_eq!(s.network.links, links);
    let clock = |node, offset_us, drift_ppm| ClockSetting {
        node: NodeId(node),
        offset_us,
        drift_ppm,
    };
    assert_eq!(s.clocks, [clock(1, -50_000, 200), clock(4, 1_500_000, 0)]);
}

#[test]
fn a_full_scenario_loads_its_workload_and_sorted_faults() {
    let s = ok(FULL);
    let workload = Workload {
        clients: 10,
        keys: 7,
        key_distribution: KeyDistribution::Zipf { exponent: 1.1 },
        mix: vec![(OpKind::Get, 50), (OpKind::Put, 40), (OpKind::Cas, 10)],
        arrival: Arrival::OpenLoop { rate_per_s: 1000 },
        timeout: ms(500),
        target: Target::FollowRedirects,
        quorum: None,
        retries: 0,
        txn_ops: 3,
        backoff: Backoff::Exponential {
            base: ms(5),
            max: ms(200),
        },
        in_flight: 3,
        placement: Placement::Colocated,
        max_writes_per_key: None,
        max_ops: None,
        start: Span::ZERO,
        contexts: false,
        script: Vec::new(),
    };
    assert_eq!(s.workload, workload);
    let n = NodeId;
    let groups = vec![vec![n(0), n(1)], vec![n(2), n(3), n(4)]];
    let one_way = OneWay {
        from: vec![n(0)],
        to: vec![n(1), n(2)],
    };
    let jump = ClockJump {
        node: n(0),
        by_us: -2_000_000,
    };
    let drift = ClockDrift {
        node: n(4).into(),
        ppm: DriftRate::Ppm(-500),
    };
    let expected: [(u64, Fault); 9] = [
        (10, Partition(PartitionShape::Groups(groups)).into()),
        (10, jump.into()),
        (12, one_way.into()),
        (13, Isolate(n(2).into()).into()),
        (14, Partition(PartitionShape::Bridge).into()),
        (15, Crash(n(3).into()).into()),
        (16, Restart(n(3).into()).into()),
        (17, drift.into()),
        (25, Heal.into()),
    ];
    let got: Vec<(u64, Fault)> = s
        .faults
        .iter()
        .map(|f| (f.at.as_micros() / 1_000_000, f.fault.clone()))
        .collect();
    assert_eq!(got, expected);
    // Origins name the `at` value of each fault, in the file's numbering.
    assert_eq!(s.faults[8].origin.to_string(), "s.toml:63:6");
    let (line, column) = pos(FULL, "\"10s\"\nclock_jump");
    let origin = format!("s.toml:{}:{}", line.unwrap(), column.unwrap());
    assert_eq!(s.faults[1].origin.to_string(), origin);
}

#[test]
fn the_protocol_override_picks_which_params_table_applies() {
    let s = load(FULL, &Overrides::default()).unwrap();
    assert_eq!(
        s.cluster.params.value("heartbeat"),
        &ParamValue::Span(ms(50))
    );
    let o = Overrides {
        protocol: Some("primary".into()),
        bugs: vec!["skip-resync".into()],
        ..Overrides::default()
    };
    // FULL's bugs belong to raft: switching protocol must drop them through a set.
    let e = fail(FULL, &o);
    assert_eq!((e.line, e.column), pos(FULL, "\"no-log-check\""));
    assert!(e
        .message
        .contains("unknown bug `no-log-check` of protocol `primary`"));
    let o = Overrides {
        sets: vec!["cluster.bugs=[]".into()],
        ..o
    };
    let s = load(FULL, &o).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.cluster.protocol, ProtocolKind::Primary);
    let params: Vec<_> = s.cluster.params.iter().collect();
    assert_eq!(params, [("heartbeat", &ParamValue::Span(ms(70)))]);
    assert_eq!(s.cluster.bugs, ["skip-resync"]);
}

#[test]
fn command_line_overrides_apply_and_are_checked() {
    let o = Overrides {
        seed: Some(i64::MAX as u64),
        bugs: vec!["stale-read".into(), "no-log-check".into()],
        ..Overrides::default()
    };
    let s = load(FULL, &o).unwrap();
    assert_eq!(s.seed, i64::MAX as u64);
    // Past what a file's `seed` can hold, --seed is refused as the file would be.
    let big = Overrides {
        seed: Some(1 << 63),
        ..Overrides::default()
    };
    let e = fail(FULL, &big);
    assert_eq!(e.file, "--seed");
    assert!(e.message.contains("from 0 to 9223372036854775807"), "{e}");
    assert_eq!(s.cluster.bugs, ["no-log-check", "stale-read"]);
    let o = Overrides {
        protocol: Some("paxos".into()),
        ..Overrides::default()
    };
    let e = fail(MINIMAL, &o);
    assert_eq!((e.file.as_str(), e.line), ("--protocol", None));
    let expected = "--protocol paxos: unknown protocol `paxos`, expected one of `primary`, `raft`";
    assert_eq!(e.message, expected);
    let o = Overrides {
        bugs: vec!["typo".into()],
        ..Overrides::default()
    };
    let e = fail(MINIMAL, &o);
    assert_eq!(e.file, "--bug");
    let expected =
        "--bug typo: unknown bug `typo` of protocol `primary`, expected one of `skip-resync`";
    assert_eq!(e.message, expected);
}

#[test]
fn the_real_protocol_table_is_what_load_str_uses() {
    let s = load_str("m.toml", MINIMAL, &Overrides::default()).unwrap();
    assert_eq!(s.cluster.protocol, ProtocolKind::Primary);
    let text = MINIMAL.replace("\"primary\"", "\"nope\"");
    let e = load_str("m.toml", &text, &Overrides::default()).unwrap_err();
    let names = list(ProtocolKind::ALL.iter().map(|p| p.name()));
    assert!(
        e.message.ends_with(&format!("expected one of {names}")),
        "{e}"
    );
}

fn ok(text: &str) -> Scenario {
    load(text, &Overrides::default()).unwrap_or_else(|e| panic!("{e}"))
}

/// Checks that `text` fails at the first `needle` with a message containing `expected`.
fn fails_at(text: &str, needle: &str, expected: &str) -> LoadError {
    let e = fail(text, &Overrides::default());
    assert_eq!((e.line, e.column), pos(text, needle), "{e}");
    assert_eq!(e.file, "s.toml");
    assert!(e.message.contains(expected), "{e}\nexpected: {expected}");
    e
}

/// `MINIMAL` with `extra` appended.
fn with(extra: &str) -> String {
    format!("{MINIMAL}{extra}")
}

#[test]
fn defaults_fill_every_optional_field() {
    let s = ok(MINIMAL);
    assert_eq!((s.name.as_str(), s.source.as_str()), ("min", "s.toml"));
    assert_eq!(
        (s.seed, s.duration, s.max_events),
        (1, Span::secs(10), 100_000_000)
    );
    assert_eq!(s.cluster.bugs, Vec::<&str>::new());
    let heartbeat: Vec<_> = s.cluster.params.iter().collect();
    assert_eq!(
        heartbeat,
        [("heartbeat", &ParamValue::Span(Span::millis(50)))]
    );
    let link = LinkBehaviour {
        latency: Latency::Uniform(Span::millis(1), Span::millis(5)),
        drop_ppm: 0,
        duplicate_ppm: 0,
        reorder_ppm: 0,
        reorder_delay: SpanRange {
            min: Span::millis(10),
            max: Span::millis(50),
        },
    };
    assert_eq!((s.network.default, s.network.client), (link, link));
    assert!(s.network.links.is_empty() && s.network.fifo);
    assert!(s.clocks.is_empty() && s.faults.is_empty() && s.nemeses.is_empty());
    let think = SpanRange::exactly(Span::millis(10));
    let workload = Workload {
        clients: 5,
        keys: 5,
        key_distribution: KeyDistribution::Uniform,
        mix: vec![(OpKind::Get, 50), (OpKind::Put, 50)],
        arrival: Arrival::ClosedLoop { think },
        timeout: Span::secs(1),
        target: Target::Random,
        quorum: None,
        retries: 0,
        txn_ops: 3,
        backoff: Backoff::Exponential {
            base: Span::millis(10),
            max: Span::secs(1),
        },
        in_flight: 1,
        placement: Placement::Outside,
        max_writes_per_key: None,
        max_ops: None,
        start: Span::ZERO,
        contexts: false,
        script: Vec::new(),
    };
    assert_eq!(s.workload, workload);
    let checks = Checks {
        liveness: Span::secs(5),
        settle: Span::secs(5),
        liveness_mode: LivenessMode::Heal,
        stated: StatedChecks::default(),
    };
    assert_eq!(s.checks, checks);
}

#[test]
fn nemesis_defaults_follow_the_duration() {
    let s = ok(&with("[nemesis]\nkinds = [\"crash\"]\n"));
    let n = s.nemeses[0].clone();
    assert_eq!(n.kinds, [NemesisKind::Crash]);
    assert_eq!((n.start, n.stop), (Time::ZERO, Time(10_000_000)));
    assert_eq!(
        (n.interval.min, n.interval.max),
        (Span::secs(2), Span::secs(5))
    );
    assert_eq!(
        (n.duration.min, n.duration.max),
        (Span::secs(1), Span::secs(4))
    );
    assert_eq!(n.clock_jump_max, Span::secs(2));
}

#[test]
fn syntax_errors_are_located() {
    let text = "name = \"x\"\n[cluster\nnodes = 3\n";
    let e = fail(text, &Overrides::default());
    assert_eq!((e.line, e.column), (Some(2), Some(9)));
    assert_eq!(e.message, "invalid table header; expected `.`, `]`");
    let text = "name = \"x\"\ndescription = \"unterminated\n";
    let e = fail(text, &Overrides::default());
    assert_eq!((e.line, e.column), (Some(2), Some(28)), "{e}");
    assert_eq!(e.message, "invalid basic string");
}

#[test]
fn unknown_fields_are_located_at_their_key() {
    // Appended after [cluster], the key belongs to that table.
    fails_at(
        &with("colour = \"red\"\n"),
        "colour",
        "unknown field `colour`, expected one of `protocol`, `nodes`, `initial`, `bugs`, `params`",
    );
    let text = format!("colour = \"red\"\n{MINIMAL}");
    let e = fails_at(&text, "colour", "unknown field `colour`");
    assert_eq!(
        e.to_string(),
        "error: unknown field `colour`, expected one of `name`, `description`, `seed`, \
         `duration`, `max_events`, `cluster`, `network`, `clock`, `workload`, `fault`, `op`, \
         `nemesis`, `disk`, `checks`, `swarm`\n --> s.toml:1:1\n  |\n1 | colour = \"red\"\n  | ^^^^^^"
    );
    fails_at(
        &with("[workload]\nclinets = 3\n"),
        "clinets",
        "unknown field `clinets`, expected one of `clients`",
    );
    let text = with("[network]\nlatency = { uniform = [\"1ms\", \"2ms\"], skew = 1 }\n");
    fails_at(&text, "skew", "unknown field `skew`");
    let text = with("[[fault]]\nat = \"1s\"\nheal = true\nwhen = 3\n");
    fails_at(
        &text,
        "when",
        "unknown field `when`, expected one of `at`, `for`, `if_none`, `partition`",
    );
}

#[test]
fn wrong_types_say_what_was_expected() {
    let text = MINIMAL.replace("nodes = 3", "nodes = \"five\"");
    fails_at(
        &text,
        "\"five\"",
        "invalid type: string \"five\", expected an integer",
    );
    let text = MINIMAL.replace("\"10s\"", "10");
    fails_at(&text, "10\n", "expected a duration such as \"50ms\"");
    let text = with("[network]\nfifo = \"yes\"\n");
    fails_at(&text, "\"yes\"", "expected a boolean");
    let text = with("[[clock]]\nnode = 2\n");
    fails_at(&text, "2\n", "expected a node name such as \"n1\"");
}

#[test]
fn missing_required_fields_point_at_their_table() {
    let text = MINIMAL.replace("nodes = 3\n", "");
    fails_at(&text, "[cluster]", "missing field `nodes`");
    let text = MINIMAL.replace("name = \"min\"\n", "");
    let e = fails_at(&text, "description", "missing field `name`");
    assert_eq!((e.line, e.column), (Some(1), Some(1)));
    let text = with("[nemesis]\nstart = \"1s\"\n");
    fails_at(&text, "[nemesis]", "missing field `kinds`");
    let text = with("[[fault]]\nheal = true\n");
    fails_at(&text, "[[fault]]", "missing field `at`");
}

#[test]
fn impossible_values_are_located_at_the_value() {
    let text = MINIMAL.replace("nodes = 3", "nodes = 5")
        + "[[fault]]\nat = \"1s\"\npartition = [[\"n1\", \"n2\"], [\"n3\", \"n9\"]]\n";
    let e = fails_at(&text, "\"n9\"", "expected a node name n1..n5, found \"n9\"");
    assert_eq!((e.line, e.column), (Some(10), Some(35)));
    let text = MINIMAL.replace("nodes = 3", "nodes = 0");
    fails_at(
        &text,
        "0\n",
        "expected a number of nodes from 1 to 64, found 0",
    );
    let text = with("[workload]\nthink = \"5ms\"\nrate = 100\n");
    fails_at(
        &text,
        "100",
        "expected either `think` (closed loop) or `rate`",
    );
    let text = with("[[fault]]\nat = \"10s\"\nheal = true\n");
    let e = fails_at(
        &text,
        "\"10s\"\nheal",
        "expected a fault time before the duration",
    );
    assert!(e.message.ends_with("(10s), found 10s"), "{e}");
    let text = with("[network]\ndrop = \"120%\"\n");
    fails_at(
        &text,
        "\"120%\"",
        "expected a probability from 0% to 100%, found \"120%\"",
    );
    let text = MINIMAL.replace("\"10s\"", "\"10 parsecs\"");
    fails_at(
        &text,
        "\"10 parsecs\"",
        "expected a duration such as \"50ms\" or \"1.5s\" (units us, ms, s, m), \
         found \"10 parsecs\"",
    );
}

#[test]
fn protocols_bugs_and_params_are_checked_against_the_protocol() {
    let text = MINIMAL.replace("\"primary\"", "\"paxos\"");
    fails_at(
        &text,
        "\"paxos\"",
        "unknown protocol `paxos`, expected one of `primary`, `raft`",
    );
    let text = MINIMAL.replace("nodes = 3", "nodes = 3\nbugs = [\"stale-read\"]");
    fails_at(
        &text,
        "\"stale-read\"",
        "unknown bug `stale-read` of protocol `primary`, expected one of `skip-resync`",
    );
    let text = with("[cluster.params.raft]\nheartbeat = \"1ms\"\nlease = \"2s\"\n");
    fails_at(
        &text,
        "lease",
        "unknown parameter `lease` of protocol `raft`, expected one of `election_timeout`, \
         `heartbeat`, `max_batch`, `pre_vote`",
    );
    let text = with("[cluster.params.paxos]\nx = 1\n");
    fails_at(
        &text,
        "paxos",
        "unknown protocol `paxos` in [cluster.params]",
    );
    let text = with("[cluster.params.raft]\nmax_batch = -1\n");
    fails_at(
        &text,
        "-1",
        "parameter `max_batch`: expected a non-negative integer",
    );
    let text = with("[cluster.params.raft]\nheartbeat = 50\n");
    fails_at(
        &text,
        "50",
        "parameter `heartbeat`: expected a duration such as \"50ms\"",
    );
    let text = with("[cluster.params.raft]\nelection_timeout = \"3s..1s\"\n");
    fails_at(&text, "\"3s..1s\"", "ends before it starts");
    let text = with("[cluster.params]\nheartbeat = \"50ms\"\n");
    fails_at(
        &text,
        "\"50ms\"",
        "expected a table of one protocol's parameters",
    );
}

#[test]
fn a_fault_takes_exactly_one_action() {
    let text = with("[[fault]]\nat = \"1s\"\nheal = true\ncrash = \"n1\"\n");
    let e = fails_at(
        &text,
        "[[fault]]",
        "expected exactly one action in a [[fault]]",
    );
    assert!(e.message.ends_with("; found `heal`, `crash`"), "{e}");
    assert!(
        e.to_string().ends_with("8 | [[fault]]\n  | ^^^^^^^^^"),
        "{e}"
    );
    let text = with("[[fault]]\nat = \"1s\"\n");
    let e = fails_at(
        &text,
        "[[fault]]",
        "one of `partition`, `isolate`, `one_way`",
    );
    assert!(e.message.ends_with("found none"), "{e}");
}

/// Scenario fragments whose error must point at `»` (removed before loading), and
/// what the message must say.
const IMPOSSIBLE: &[(&str, &str)] = &[
    (
        "description = »\"a\\nb\"\n",
        "expected a description on one line",
    ),
    (
        "[[clock]]\nnode = \"n1\"\n[[clock]]\nnode = »\"n1\"\n",
        "found n1 again",
    ),
    (
        "[[fault]]\nat = \"1s\"\nheal = »false\n",
        "expected `heal = true`",
    ),
    (
        "[[network.link]]\nfrom = \"n2\"\nto = »\"n2\"\n",
        "two different nodes",
    ),
    ("[nemesis]\nkinds = »[]\n", "expected at least one kind"),
    (
        "[nemesis]\nkinds = [\"crash\", »\"crash\"]\n",
        "each kind once",
    ),
    (
        "[nemesis]\nkinds = [\"crash\"]\nstop = »\"11s\"\n",
        "stop by the duration",
    ),
    (
        "[nemesis]\nkinds = [\"crash\"]\nstart = »\"10s\"\n",
        "start (10s) before",
    ),
    (
        "[nemesis]\nkinds = [\"crash\"]\nfault_duration = »\"0s..1s\"\n",
        "last",
    ),
    (
        "[workload]\nmix = »{ get = 0 }\n",
        "at least one positive weight",
    ),
    (
        "[workload]\nmix = { get = 1, »read = 2 }\n",
        "unknown field `read`",
    ),
    ("[workload]\nkey_distribution = »{ zipf = 0 }\n", "above 0"),
    (
        "[workload]\nkeys = »0\n",
        "expected a number of keys from 1 to 1000000",
    ),
    (
        "[workload]\nclients = »-1\n",
        "(0 would test nothing) from 1 to 10000, found -1",
    ),
    (
        "[workload]\nrate = »0\n",
        "expected a rate per second from 1",
    ),
    ("[workload]\ntarget = »\"leader\"\n", "`follow-redirects`"),
    (
        "[workload]\ntimeout = »\"0s\"\n",
        "expected a timeout longer than 0s",
    ),
    (
        "[workload]\nin_flight = »0\n",
        "expected a number of operations in flight from 1 to 64, found 0",
    ),
    (
        "[workload]\nclients = 500\nin_flight = »64\n",
        "at most 10000 clients x in_flight",
    ),
    (
        "[workload]\nbackoff = »{ base = \"2s\", max = \"1s\" }\n",
        "expected a backoff base no longer than its max, found 2s > 1s",
    ),
    (
        "[workload]\nbackoff = »{ base = \"0s\", max = \"1s\" }\n",
        "backoff base longer than 0s",
    ),
    (
        "[workload]\nbackoff = { base = \"5ms\", »cap = \"1s\" }\n",
        "unknown field `cap`",
    ),
    (
        "[workload]\nbackoff = »\"exponential\"\n",
        "expected \"none\" or { base",
    ),
    (
        "[workload]\nbackoff = { base = »\"5 parsecs\", max = \"1s\" }\n",
        "",
    ),
    ("[workload]\nplacement = »\"inside\"\n", "`colocated`"),
    (
        "[[fault]]\nat = \"1s\"\npartition = »[]\n",
        "at least one group",
    ),
    (
        "[[fault]]\nat = \"1s\"\npartition = [[\"n1\"], »[]]\n",
        "at least one node",
    ),
    (
        "[[fault]]\nat = \"1s\"\npartition = [[\"n1\"], [»\"n1\"]]\n",
        "n1 again",
    ),
    (
        "[[fault]]\nat = \"1s\"\npartition = »\"star\"\n",
        "\"bridge\"",
    ),
    (
        "[[fault]]\nat = \"1s\"\nisolate = »\"n01\"\n",
        "n1..n3, found \"n01\"",
    ),
    (
        "[[fault]]\nat = \"1s\"\none_way = { from = »[], to = [\"n1\"] }\n",
        "one node",
    ),
    (
        "[[fault]]\nat = \"1s\"\none_way = { from = [\"n1\"], to = [»\"n1\"] }\n",
        "both",
    ),
    (
        "[network]\nlatency = »{ uniform = [\"5ms\", \"1ms\"] }\n",
        "runs backwards",
    ),
    (
        "[network]\nlatency = »{ normal = [\"5ms\"] }\n",
        "two durations, found 1",
    ),
    (
        "[network]\nlatency = »{ constant = \"1ms\", exponential = \"1ms\" }\n",
        "one",
    ),
    ("[network]\nlatency = »5\n", "expected a latency"),
    (
        "[network]\nreorder_delay = »\"5ms..1ms\"\n",
        "ends before it starts",
    ),
    (
        "[[clock]]\nnode = \"n1\"\ndrift_ppm = »2000000\n",
        "from -500000 to",
    ),
    (
        // A clock that stands still would trip the engine's assertion that clocks move.
        "[[clock]]\nnode = \"n1\"\ndrift_ppm = »-1000000\n",
        "from -500000 to 500000",
    ),
    ("[[clock]]\nnode = \"n1\"\noffset = »\"-\"\n", "found \"-\""),
    ("max_events = »0\n", "expected max_events of at least 1"),
    ("seed = »-3\n", "expected a seed of at least 0"),
    (
        "[checks]\nliveness = »\"0s\"\n",
        "liveness window longer than 0s",
    ),
];

#[test]
fn other_impossible_values() {
    for (extra, expected) in IMPOSSIBLE {
        // Top-level keys must precede the first table, and replace MINIMAL's own.
        let text = if extra.starts_with('[') {
            with(extra)
        } else {
            let key = extra.split(' ').next().unwrap_or_default();
            let kept: Vec<&str> = MINIMAL.lines().filter(|l| !l.starts_with(key)).collect();
            format!("{extra}{}\n", kept.join("\n"))
        };
        let (line, column) = pos(&text, "»");
        let e = fail(&text.replace('»', ""), &Overrides::default());
        assert_eq!((e.line, e.column), (line, column), "{extra}\n{e}");
        assert!(e.message.contains(expected), "{extra}\n{e}");
    }
}

#[test]
fn a_missing_file_says_so_without_a_location() {
    let e = load_file("scenarios/nope.toml", &Overrides::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "error: cannot read scenarios/nope.toml: No such file or directory (os error 2)"
    );
    assert_eq!((e.line, e.column), (None, None));
}

#[test]
fn invalid_utf8_is_located() {
    let path = std::env::temp_dir().join(format!("simkv-utf8-{}.toml", std::process::id()));
    std::fs::write(&path, b"name = \"caf\xe9\"\n").unwrap();
    let shown = path.to_string_lossy().into_owned();
    let e = load_file(&shown, &Overrides::default()).unwrap_err();
    std::fs::remove_file(&path).unwrap();
    assert_eq!((e.line, e.column), (Some(1), Some(12)), "{e}");
    assert!(e.message.contains("expected UTF-8"), "{e}");
}

mod never_panic {
    use super::super::fixtures::{load, FULL};
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "(?s).{0,400}") {
            if let Err(e) = load_str("p.toml", &text, &Overrides::default()) {
                let _ = e.to_string();
            }
        }

        #[test]
        fn mutated_scenarios_never_panic(
            at in 0usize..2_000,
            cut in 0usize..40,
            insert in "(?s).{0,12}",
        ) {
            // FULL is ASCII, so every byte offset is a char boundary.
            let mut text = FULL.to_string();
            let at = at.min(text.len());
            text.replace_range(at..(at + cut).min(text.len()), &insert);
            if let Err(e) = load(&text, &Overrides::default()) {
                let _ = e.to_string();
            }
        }

        #[test]
        fn arbitrary_sets_never_panic(
            entries in proptest::collection::vec("[a-z0-9_.=\\[\\]\"{} ,%-]{0,24}", 0..4),
        ) {
            let o = Overrides { sets: entries, ..Overrides::default() };
            if let Err(e) = load(FULL, &o) {
                let _ = e.to_string();
            }
        }
    }
}

#[test]
fn a_workload_start_loads_round_trips_and_is_checked_against_the_duration() {
    assert_eq!(ok(MINIMAL).workload.start, Span::ZERO);
    assert!(!ok(MINIMAL).explain().contains("\nstart ="));
    let s = ok(&with("[workload]\nstart = \"250ms\"\nmax_ops = 3\n"));
    assert_eq!(s.workload.start, ms(250));
    let explained = s.explain();
    assert!(explained.contains("\nstart = \"250ms\"\n"), "{explained}");
    let again = ok(&explained);
    assert_eq!(again.workload, s.workload);
    let text = with("[workload]\nstart = \"12s\"\n");
    let e = fails_at(
        &text,
        "\"12s\"",
        "expected a workload start before the end of the duration",
    );
    assert!(e.message.ends_with("(10s), found 12s"), "{e}");
    let text = with("[workload]\nstart = \"soon\"\n");
    fails_at(&text, "\"soon\"", "a duration such as");
}
