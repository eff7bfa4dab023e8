//! Made-up protocols with parameters and planted bugs of every kind, so that the loader's
//! tests do not depend on what the real protocols declare today; and the scenarios the
//! tests load.

use super::load_with;
use crate::scenario::{LoadError, Overrides, Scenario};
use simkv_protocols::{
    BugSpec, ParamKind, ParamSpec, ProtocolInfo, ProtocolKind, RoleKind, RoleSpec,
};

const PRIMARY_PARAMS: &[ParamSpec] = &[ParamSpec {
    name: "heartbeat",
    kind: ParamKind::Span,
    default: "50ms",
    description: "how often the primary pings",
}];
const RAFT_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "election_timeout",
        kind: ParamKind::SpanRange,
        default: "150ms..300ms",
        description: "randomized election timeout",
    },
    ParamSpec {
        name: "heartbeat",
        kind: ParamKind::Span,
        default: "50ms",
        description: "leader heartbeat",
    },
    ParamSpec {
        name: "max_batch",
        kind: ParamKind::Int,
        default: "64",
        description: "entries per AppendEntries",
    },
    ParamSpec {
        name: "pre_vote",
        kind: ParamKind::Bool,
        default: "false",
        description: "PreVote (thesis 9.6)",
    },
];
const PRIMARY_BUGS: &[BugSpec] = &[BugSpec {
    name: "skip-resync",
    description: "a returning backup is not resynced",
}];
const RAFT_BUGS: &[BugSpec] = &[
    BugSpec {
        name: "no-log-check",
        description: "RequestVote skips the up-to-date check",
    },
    BugSpec {
        name: "stale-read",
        description: "followers answer reads",
    },
];

/// The primary's roles, as the tests know them: no leading role.
const PRIMARY_ROLES: &[RoleSpec] = <simkv_protocols::roles::Replica as RoleKind>::SPECS;

/// Raft's roles, as the tests know them: `leader` leads.
const RAFT_ROLES: &[RoleSpec] = <simkv_protocols::raft::Role as RoleKind>::SPECS;

/// `primary` and `raft`, as the tests know them.
pub(crate) fn protocols() -> Vec<(ProtocolKind, ProtocolInfo)> {
    let info = |name, params, bugs, roles| ProtocolInfo {
        name,
        description: "test protocol",
        promises: &[],
        params,
        bugs,
        roles,
        transactions: false,
        contexts: false,
        operators: match name {
            "raft" => &["add-server", "remove-server"],
            _ => &[],
        },
        membership: name == "raft",
        check_params: simkv_protocols::params::no_param_check,
    };
    vec![
        (
            ProtocolKind::Primary,
            info("primary", PRIMARY_PARAMS, PRIMARY_BUGS, PRIMARY_ROLES),
        ),
        (
            ProtocolKind::Raft,
            info("raft", RAFT_PARAMS, RAFT_BUGS, RAFT_ROLES),
        ),
    ]
}

/// Loads `text` as `s.toml` against the test protocols.
pub(crate) fn load(text: &str, overrides: &Overrides) -> Result<Scenario, LoadError> {
    load_with("s.toml", text, overrides, &protocols())
}

/// Loads `text`, which must fail, and returns the error.
pub(crate) fn fail(text: &str, overrides: &Overrides) -> LoadError {
    match load(text, overrides) {
        Ok(s) => panic!("expected an error, loaded {s:#?}"),
        Err(e) => e,
    }
}

/// The 1-based line and column of the first `needle` in `text`.
pub(crate) fn pos(text: &str, needle: &str) -> (Option<usize>, Option<usize>) {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in text"));
    let line = text[..at].matches('\n').count() + 1;
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    (Some(line), Some(text[line_start..at].chars().count() + 1))
}

/// A scenario that sets every field at least once.
pub(crate) const FULL: &str = r#"name = "partition"
description = "5 nodes; majority/minority partition at 10s, heal at 25s"
seed = 7
duration = "40s"
max_events = 5000000

[cluster]
protocol = "raft"
nodes = 5
bugs = ["no-log-check", "stale-read", "no-log-check"]

[cluster.params.raft]
election_timeout = "200ms..400ms"
max_batch = 16
pre_vote = "true"

[cluster.params.primary]
heartbeat = "70ms"

[network]
latency = { normal = ["5ms", "1ms"] }
drop = "1.5%"
duplicate = "200ppm"
reorder = "2%"
reorder_delay = "20ms"
fifo = false
client_latency = "2ms"

[[network.link]]
from = "n1"
to = "n2"
latency = { exponential = "30ms" }
drop = "50%"
both_ways = true

[[network.link]]
from = "n3"
to = "n4"
reorder_delay = "1ms..2ms"

[[clock]]
node = "n2"
offset = "-50ms"
drift_ppm = 200

[[clock]]
node = "n5"
offset = "+1.5s"

[workload]
clients = 10
keys = 7
key_distribution = { zipf = 1.1 }
mix = { get = 50, put = 40, cas = 10, delete = 0 }
rate = 1000
timeout = "500ms"
target = "follow-redirects"
backoff = { base = "5ms", max = "200ms" }
in_flight = 3
placement = "colocated"

[[fault]]
at = "25s"
heal = true

[[fault]]
at = "10s"
partition = [["n1", "n2"], ["n3", "n4", "n5"]]

[[fault]]
at = "10s"
clock_jump = { node = "n1", by = "-2s" }

[[fault]]
at = "12s"
one_way = { from = ["n1"], to = ["n2", "n3"] }

[[fault]]
at = "13s"
isolate = "n3"

[[fault]]
at = "14s"
partition = "bridge"

[[fault]]
at = "15s"
crash = "n4"

[[fault]]
at = "16s"
restart = "n4"

[[fault]]
at = "17s"
clock_drift = { node = "n5", ppm = -500 }

[nemesis]
kinds = ["partition", "clock-jump"]
interval = "1s..3s"
start = "5s"
stop = "30s"

[checks]
liveness = "3s"
"#;

/// The smallest valid scenario.
pub(crate) const MINIMAL: &str = r#"name = "min"
description = "the least a scenario says"
duration = "10s"

[cluster]
protocol = "primary"
nodes = 3
"#;
