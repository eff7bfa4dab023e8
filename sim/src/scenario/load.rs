//! Loading a scenario: read the file, apply `--set` overrides, deserialize into the raw
//! shape, then validate into a [`Scenario`], filling every default. The first problem
//! found stops the load, as a [`LoadError`] that says where and what was expected.

use super::diagnostic::LoadError;
use super::explain::span_text;
use super::fault_kinds::{RawFault, FAULT_ACTIONS, NEMESIS_KINDS};
use super::model::{
    Arrival, Checks, ClockSetting, Cluster, Fault, FaultOrigin, KeyDistribution, Latency,
    LinkBehaviour, LinkOverride, Nemesis, Network, OpKind, Scenario, ScheduledFault, Target,
    Workload,
};
use super::overrides::{Overrides, Prepared};
use super::raw::{
    Dur, Int, NodeName, ParamTable, RawChecks, RawCluster, RawMix, RawNemesis, RawNetwork,
    RawScenario, RawWorkload,
};
use crate::registry;
use simkv_protocols::{
    NodeId, ParamKind, ParamSpec, ParamValue, Params, ProtocolInfo, Span, SpanRange, Time,
};
use std::collections::BTreeMap;
use std::ops::Range;
use toml::Spanned;

/// Files larger than this are refused unread: a scenario is a page of text.
const MAX_FILE_BYTES: u64 = 16 << 20;
/// The most nodes a cluster may have.
const MAX_NODES: i64 = 64;
/// The most clients a workload may have.
const MAX_CLIENTS: i64 = 100_000;
/// The largest open-loop arrival rate, per virtual second.
const MAX_RATE_PER_S: i64 = 10_000_000;
/// The most operations one `txn` may hold.
const MAX_TXN_OPS: i64 = 16;
/// Operations per `txn` unless the workload says.
const DEFAULT_TXN_OPS: u32 = 3;
/// The span of a mix's `txn` weight (only called when it has one).
fn weight_span(m: &RawMix) -> Range<usize> {
    m.txn.as_ref().map_or(0..0, |w| w.span())
}

/// The largest weight of one operation kind in a mix (so that sums fit a `u32`).
const MAX_WEIGHT: i64 = 1_000_000;
/// The largest clock drift, in parts per million, either way.
const MAX_DRIFT_PPM: i64 = 1_000_000;

const DEFAULT_SEED: u64 = 1;
const DEFAULT_MAX_EVENTS: u64 = 100_000_000;
const DEFAULT_LATENCY: Latency = Latency::Uniform(Span::millis(1), Span::millis(5));
const DEFAULT_REORDER_DELAY: SpanRange = SpanRange {
    min: Span::millis(10),
    max: Span::millis(50),
};
const DEFAULT_CLIENTS: u32 = 5;
const DEFAULT_KEYS: u64 = 5;
const DEFAULT_THINK: Span = Span::millis(10);
const DEFAULT_TIMEOUT: Span = Span::secs(1);
const DEFAULT_NEMESIS_INTERVAL: SpanRange = SpanRange {
    min: Span::secs(2),
    max: Span::secs(5),
};
const DEFAULT_NEMESIS_FAULT: SpanRange = SpanRange {
    min: Span::secs(1),
    max: Span::secs(4),
};
const DEFAULT_CLOCK_JUMP_MAX: Span = Span::secs(2);
const DEFAULT_LIVENESS: Span = Span::secs(5);
const DEFAULT_SETTLE: Span = Span::secs(5);

/// Reads, overrides and validates the scenario at `path` (the path is shown as given).
pub fn load_file(path: &str, overrides: &Overrides) -> Result<Scenario, LoadError> {
    let cannot = |e: std::io::Error| LoadError::plain(path, format!("cannot read {path}: {e}"));
    let size = std::fs::metadata(path).map_err(cannot)?.len();
    if size > MAX_FILE_BYTES {
        let message = format!("cannot read {path}: {size} bytes is over the 16 MiB limit");
        return Err(LoadError::plain(path, message));
    }
    let bytes = std::fs::read(path).map_err(cannot)?;
    match String::from_utf8(bytes) {
        Ok(text) => load_str(path, &text, overrides),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            let message = "expected UTF-8 text, found an invalid byte";
            Err(LoadError::at(path, &text, at..at + 1, message))
        }
    }
}

/// Overrides and validates scenario `text`; `file` is what errors and [`Scenario::source`]
/// call it.
pub fn load_str(file: &str, text: &str, overrides: &Overrides) -> Result<Scenario, LoadError> {
    load_with(file, text, overrides, &registry::protocols())
}

/// [`load_str`] against a given list of protocols (the tests use made-up ones).
pub(crate) fn load_with(
    file_name: &str,
    text: &str,
    overrides: &Overrides,
    protocols: &[ProtocolInfo],
) -> Result<Scenario, LoadError> {
    let prepared = Prepared::new(file_name, text, &overrides.sets)?;
    let raw: RawScenario = toml::from_str(&prepared.text)
        .map_err(|e| prepared.error(Some(e.span().unwrap_or(0..0)), e.message()))?;
    let mut validator = Validator {
        prepared: &prepared,
        overrides,
        protocols,
        nodes: 0,
        duration: Span::ZERO,
        protocol: None,
    };
    validator.scenario(raw, file_name)
}

/// Checks a raw scenario against itself, the protocols and the overrides.
pub(crate) struct Validator<'a> {
    prepared: &'a Prepared<'a>,
    overrides: &'a Overrides,
    protocols: &'a [ProtocolInfo],
    /// The cluster's size, once known: node names are checked against it.
    nodes: u16,
    /// The scenario's duration, once known: fault times are checked against it.
    duration: Span,
    /// The chosen protocol, once known: a workload's `txn` needs one that serves them.
    protocol: Option<ProtocolInfo>,
}

/// A value checked, or where and why it was refused.
pub(crate) type Checked<T> = Result<T, LoadError>;

/// `a`, `b`, `c` for "expected one of" lists.
fn list<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> String {
    let quoted: Vec<String> = names
        .into_iter()
        .map(|n| format!("`{}`", n.as_ref()))
        .collect();
    quoted.join(", ")
}

impl Validator<'_> {
    /// An error at `span` of the prepared text.
    pub(crate) fn fail<T>(&self, span: Range<usize>, message: impl Into<String>) -> Checked<T> {
        Err(self.prepared.error(Some(span), &message.into()))
    }

    fn scenario(&mut self, raw: RawScenario, source: &str) -> Checked<Scenario> {
        let name = self.one_line(&raw.name, "a name")?;
        let description = self.one_line(&raw.description, "a description")?;
        let seed = match (self.overrides.seed, &raw.seed) {
            (Some(seed), _) => seed,
            (None, Some(seed)) => self.int_in(seed, 0, None, "a seed")? as u64,
            (None, None) => DEFAULT_SEED,
        };
        self.duration = self.positive(&raw.duration, "a duration")?;
        let max_events = match &raw.max_events {
            Some(m) => self.int_in(m, 1, None, "max_events")? as u64,
            None => DEFAULT_MAX_EVENTS,
        };
        let cluster = self.cluster(&raw.cluster)?;
        let network = self.network(raw.network.unwrap_or_default())?;
        let clocks = self.clocks(&raw.clocks)?;
        let workload = self.workload(raw.workload.unwrap_or_default())?;
        let faults = self.faults(&raw.faults)?;
        let nemesis = match raw.nemesis {
            Some(n) => Some(self.nemesis(n)?),
            None => None,
        };
        let checks = self.checks(raw.checks.unwrap_or_default())?;
        Ok(Scenario {
            name,
            description,
            source: source.to_string(),
            seed,
            duration: self.duration,
            max_events,
            cluster,
            network,
            clocks,
            workload,
            faults,
            nemesis,
            checks,
        })
    }

    fn one_line(&self, text: &Spanned<String>, what: &str) -> Checked<String> {
        let value = text.get_ref();
        if value.trim().is_empty() || value.contains(['\n', '\r']) {
            return self.fail(
                text.span(),
                format!("expected {what} on one line, found {value:?}"),
            );
        }
        Ok(value.clone())
    }

    /// An integer in `lo..=hi` (or at least `lo` when `hi` is `None`).
    pub(crate) fn int_in(
        &self,
        value: &Spanned<Int>,
        lo: i64,
        hi: Option<i64>,
        what: &str,
    ) -> Checked<i64> {
        let v = value.get_ref().0;
        match hi {
            _ if v < lo => {}
            Some(hi) if v > hi => {}
            _ => return Ok(v),
        }
        let range = match hi {
            Some(hi) => format!("from {lo} to {hi}"),
            None => format!("of at least {lo}"),
        };
        self.fail(value.span(), format!("expected {what} {range}, found {v}"))
    }

    /// A clock drift in parts per million, either way.
    pub(crate) fn drift_ppm(&self, value: &Spanned<Int>) -> Checked<i64> {
        self.int_in(value, -MAX_DRIFT_PPM, Some(MAX_DRIFT_PPM), "a drift in ppm")
    }

    fn positive(&self, value: &Spanned<Dur>, what: &str) -> Checked<Span> {
        let span = value.get_ref().0;
        if span == Span::ZERO {
            return self.fail(value.span(), format!("expected {what} longer than 0s"));
        }
        Ok(span)
    }

    /// A node name, canonical and within the cluster.
    pub(crate) fn node(&self, name: &Spanned<NodeName>) -> Checked<NodeId> {
        let text = &name.get_ref().0;
        // Canonical spellings only: "n01" or "n+1" would be a second name for a node.
        let number = text
            .strip_prefix('n')
            .filter(|d| !d.starts_with('0') && d.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|d| d.parse::<u16>().ok());
        match number {
            Some(k) if (1..=self.nodes).contains(&k) => Ok(NodeId(k - 1)),
            _ => self.fail(
                name.span(),
                format!("expected a node name n1..n{}, found {text:?}", self.nodes),
            ),
        }
    }

    fn find_protocol(&self, name: &str) -> Option<ProtocolInfo> {
        self.protocols.iter().find(|p| p.name == name).copied()
    }

    fn protocol_list(&self) -> String {
        list(self.protocols.iter().map(|p| p.name))
    }

    fn cluster(&mut self, raw: &RawCluster) -> Checked<Cluster> {
        self.nodes = self.int_in(&raw.nodes, 1, Some(MAX_NODES), "a number of nodes")? as u16;
        let info = match &self.overrides.protocol {
            Some(name) => self.find_protocol(name).ok_or_else(|| {
                let message = format!(
                    "--protocol {name}: unknown protocol `{name}`, expected one of {}",
                    self.protocol_list()
                );
                LoadError::plain("--protocol", message)
            })?,
            None => match self.find_protocol(raw.protocol.get_ref()) {
                Some(info) => info,
                None => {
                    let message = format!(
                        "unknown protocol `{}`, expected one of {}",
                        raw.protocol.get_ref(),
                        self.protocol_list()
                    );
                    return self.fail(raw.protocol.span(), message);
                }
            },
        };
        self.protocol = Some(info);
        let params = self.params(&raw.params, &info)?;
        let bugs = self.bugs(&raw.bugs, &info)?;
        Ok(Cluster {
            protocol: info.name.to_string(),
            nodes: self.nodes,
            params,
            bugs,
        })
    }

    /// Checks every protocol's table; returns the chosen protocol's parameters over its
    /// defaults.
    fn params(
        &self,
        tables: &BTreeMap<Spanned<String>, ParamTable>,
        chosen: &ProtocolInfo,
    ) -> Checked<Params> {
        let mut params = Params::defaults(chosen.params);
        for (protocol, table) in tables {
            let Some(info) = self.find_protocol(protocol.get_ref()) else {
                let message = format!(
                    "unknown protocol `{}` in [cluster.params] (its tables are keyed by \
                     protocol), expected one of {}",
                    protocol.get_ref(),
                    self.protocol_list()
                );
                return self.fail(protocol.span(), message);
            };
            for (name, value) in &table.0 {
                let Some(spec) = info.params.iter().find(|s| s.name == name.get_ref()) else {
                    return self.fail(name.span(), unknown_param(&info, name.get_ref()));
                };
                let value = self.param_value(spec, value)?;
                if info.name == chosen.name {
                    params.set(spec.name, value);
                }
            }
        }
        Ok(params)
    }

    fn param_value(&self, spec: &ParamSpec, value: &Spanned<toml::Value>) -> Checked<ParamValue> {
        let parsed = match (spec.kind, value.get_ref()) {
            (kind, toml::Value::String(text)) => ParamValue::parse(kind, text),
            (ParamKind::Int, toml::Value::Integer(i)) => u64::try_from(*i)
                .map(ParamValue::Int)
                .map_err(|_| format!("expected {}, found {i}", spec.kind.expected())),
            (ParamKind::Bool, toml::Value::Boolean(b)) => Ok(ParamValue::Bool(*b)),
            (kind, other) => Err(format!(
                "expected {}, found {}",
                kind.expected(),
                describe(other)
            )),
        };
        parsed.map_err(|m| {
            let message = format!("parameter `{}`: {m}", spec.name);
            self.prepared.error(Some(value.span()), &message)
        })
    }

    fn bugs(&self, raw: &[Spanned<String>], info: &ProtocolInfo) -> Checked<Vec<&'static str>> {
        let mut bugs: Vec<&'static str> = Vec::new();
        let find = |name: &str| info.bugs.iter().find(|b| b.name == name).map(|b| b.name);
        for name in raw {
            let Some(bug) = find(name.get_ref()) else {
                return self.fail(name.span(), unknown_bug(info, name.get_ref()));
            };
            if !bugs.contains(&bug) {
                bugs.push(bug);
            }
        }
        for name in &self.overrides.bugs {
            let Some(bug) = find(name) else {
                let message = format!("--bug {name}: {}", unknown_bug(info, name));
                return Err(LoadError::plain("--bug", message));
            };
            if !bugs.contains(&bug) {
                bugs.push(bug);
            }
        }
        Ok(bugs)
    }

    fn network(&self, raw: RawNetwork) -> Checked<Network> {
        let default = LinkBehaviour {
            latency: raw.latency.map_or(DEFAULT_LATENCY, |l| l.0),
            drop_ppm: raw.drop.map_or(0, |p| p.0),
            duplicate_ppm: raw.duplicate.map_or(0, |p| p.0),
            reorder_ppm: raw.reorder.map_or(0, |p| p.0),
            reorder_delay: raw.reorder_delay.map_or(DEFAULT_REORDER_DELAY, |d| d.0),
        };
        // Clients stand in for the outside world: their links only delay.
        let client = LinkBehaviour {
            latency: raw.client_latency.map_or(default.latency, |l| l.0),
            drop_ppm: 0,
            duplicate_ppm: 0,
            reorder_ppm: 0,
            reorder_delay: default.reorder_delay,
        };
        let mut links = Vec::new();
        for link in &raw.links {
            let from = self.node(&link.from)?;
            let to = self.node(&link.to)?;
            if from == to {
                let message =
                    format!("expected a link between two different nodes, found {from} to {to}");
                return self.fail(link.to.span(), message);
            }
            let behaviour = LinkBehaviour {
                latency: link.latency.map_or(default.latency, |l| l.0),
                drop_ppm: link.drop.map_or(default.drop_ppm, |p| p.0),
                duplicate_ppm: link.duplicate.map_or(default.duplicate_ppm, |p| p.0),
                reorder_ppm: link.reorder.map_or(default.reorder_ppm, |p| p.0),
                reorder_delay: link.reorder_delay.map_or(default.reorder_delay, |d| d.0),
            };
            links.push(LinkOverride {
                from,
                to,
                behaviour,
            });
            if link.both_ways {
                let (from, to) = (to, from);
                links.push(LinkOverride {
                    from,
                    to,
                    behaviour,
                });
            }
        }
        Ok(Network {
            default,
            client,
            links,
            fifo: raw.fifo.unwrap_or(true),
        })
    }

    fn clocks(&self, raw: &[super::raw::RawClock]) -> Checked<Vec<ClockSetting>> {
        let mut clocks: Vec<ClockSetting> = Vec::new();
        for clock in raw {
            let node = self.node(&clock.node)?;
            if clocks.iter().any(|c| c.node == node) {
                let message = format!("expected one [[clock]] per node, found {node} again");
                return self.fail(clock.node.span(), message);
            }
            let drift_ppm = match &clock.drift_ppm {
                Some(d) => self.drift_ppm(d)?,
                None => 0,
            };
            let offset_us = clock.offset.map_or(0, |o| o.0);
            clocks.push(ClockSetting {
                node,
                offset_us,
                drift_ppm,
            });
        }
        Ok(clocks)
    }

    fn workload(&self, raw: RawWorkload) -> Checked<Workload> {
        let clients = match &raw.clients {
            Some(c) => self.int_in(c, 0, Some(MAX_CLIENTS), "a number of clients")? as u32,
            None => DEFAULT_CLIENTS,
        };
        let keys = match &raw.keys {
            Some(k) => self.int_in(k, 1, None, "a number of keys")? as u64,
            None => DEFAULT_KEYS,
        };
        let arrival = match (raw.think, &raw.rate) {
            (Some(_), Some(rate)) => {
                let message = "expected either `think` (closed loop) or `rate` (open loop), \
                               found both";
                return self.fail(rate.span(), message);
            }
            (None, Some(rate)) => {
                let rate = self.int_in(rate, 1, Some(MAX_RATE_PER_S), "a rate per second")?;
                Arrival::OpenLoop {
                    rate_per_s: rate as u64,
                }
            }
            (think, None) => Arrival::ClosedLoop {
                think: think.map_or(SpanRange::exactly(DEFAULT_THINK), |t| t.0),
            },
        };
        let timeout = match &raw.timeout {
            Some(t) => self.positive(t, "a timeout")?,
            None => DEFAULT_TIMEOUT,
        };
        Ok(Workload {
            clients,
            keys,
            key_distribution: raw
                .key_distribution
                .map_or(KeyDistribution::Uniform, |k| k.0),
            mix: self.mix(raw.mix.as_ref())?,
            arrival,
            timeout,
            target: raw.target.unwrap_or(Target::Random),
            quorum: match &raw.quorum {
                Some(q) => Some(self.int_in(q, 1, Some(255), "a quorum")? as u8),
                None => None,
            },
            retries: match &raw.retries {
                Some(r) => self.int_in(r, 0, Some(100), "a number of retries")? as u32,
                None => 0,
            },
            txn_ops: match &raw.txn_ops {
                Some(n) => {
                    let most = Some(MAX_TXN_OPS);
                    self.int_in(n, 1, most, "a number of operations per txn")? as u32
                }
                None => DEFAULT_TXN_OPS,
            },
        })
    }

    fn mix(&self, raw: Option<&Spanned<RawMix>>) -> Checked<Vec<(OpKind, u32)>> {
        let Some(raw) = raw else {
            return Ok(vec![(OpKind::Get, 50), (OpKind::Put, 50)]);
        };
        let m = raw.get_ref();
        let weights = [
            (OpKind::Get, &m.get),
            (OpKind::Put, &m.put),
            (OpKind::Update, &m.update),
            (OpKind::Delete, &m.delete),
            (OpKind::Cas, &m.cas),
            (OpKind::Append, &m.append),
            (OpKind::Txn, &m.txn),
        ];
        let mut mix = Vec::new();
        for (kind, weight) in weights {
            let Some(weight) = weight else { continue };
            let weight = self.int_in(weight, 0, Some(MAX_WEIGHT), "a weight")?;
            if weight > 0 {
                mix.push((kind, weight as u32));
            }
            if kind == OpKind::Txn && weight > 0 {
                self.serves_transactions(weight_span(m))?;
            }
        }
        if mix.is_empty() {
            let message = "expected at least one positive weight among `get`, `put`, `update`, \
                           `delete`, `cas`, `append`, `txn`";
            return self.fail(raw.span(), message);
        }
        Ok(mix)
    }

    /// A workload with `txn` needs a protocol that serves transactions.
    fn serves_transactions(&self, at: Range<usize>) -> Checked<()> {
        let Some(info) = self.protocol.filter(|p| !p.transactions) else {
            return Ok(());
        };
        let serving: Vec<&str> = self
            .protocols
            .iter()
            .filter(|p| p.transactions)
            .map(|p| p.name)
            .collect();
        let from = if self.overrides.protocol.is_some() {
            " (from --protocol)"
        } else {
            ""
        };
        let message = format!(
            "expected no `txn` for protocol `{}`{from}, which does not serve multi-key \
             transactions; protocols that do: {}",
            info.name,
            list(serving)
        );
        self.fail(at, message)
    }

    fn faults(&self, raw: &[Spanned<RawFault>]) -> Checked<Vec<ScheduledFault>> {
        let mut faults = Vec::with_capacity(raw.len());
        for fault in raw {
            let at = &fault.get_ref().at;
            if at.get_ref().0 >= self.duration {
                let message = format!(
                    "expected a fault time before the duration ({}), found {}",
                    span_text(self.duration),
                    span_text(at.get_ref().0)
                );
                return self.fail(at.span(), message);
            }
            faults.push(ScheduledFault {
                at: Time::ZERO + at.get_ref().0,
                fault: self.fault_action(fault)?,
                origin: FaultOrigin::Scripted(self.prepared.origin(at.span())),
            });
        }
        // Stable: faults at the same time keep the file's order.
        faults.sort_by_key(|f| f.at);
        Ok(faults)
    }

    /// The one action of a `[[fault]]`, checked by its kind.
    fn fault_action(&self, fault: &Spanned<RawFault>) -> Checked<Fault> {
        let raw = fault.get_ref();
        let actions = raw.actions();
        if actions.len() == 1 {
            if let Some(action) = raw.action(self) {
                return action;
            }
        }
        let found = if actions.is_empty() {
            "none".to_string()
        } else {
            list(&actions)
        };
        let message = format!(
            "expected exactly one action in a [[fault]], one of {}; found {found}",
            list(FAULT_ACTIONS)
        );
        self.fail(fault.span(), message)
    }

    fn nemesis(&self, raw: RawNemesis) -> Checked<Nemesis> {
        if raw.kinds.get_ref().is_empty() {
            let kinds = NEMESIS_KINDS.iter().map(|(_, name, _)| name);
            let message = format!("expected at least one kind of fault: {}", list(kinds));
            return self.fail(raw.kinds.span(), message);
        }
        let mut kinds = Vec::new();
        for kind in raw.kinds.get_ref() {
            let k = *kind.get_ref();
            if kinds.contains(&k) {
                return self.fail(kind.span(), "expected each kind once, found it again");
            }
            kinds.push(k);
        }
        let duration = match &raw.fault_duration {
            Some(d) if d.get_ref().0.min == Span::ZERO => {
                return self.fail(d.span(), "expected every fault to last longer than 0s");
            }
            Some(d) => d.get_ref().0,
            None => DEFAULT_NEMESIS_FAULT,
        };
        let (start, stop) = self.nemesis_window(&raw)?;
        let clock_jump_max = match &raw.clock_jump_max {
            Some(j) => self.positive(j, "a largest clock jump")?,
            None => DEFAULT_CLOCK_JUMP_MAX,
        };
        Ok(Nemesis {
            kinds,
            interval: raw.interval.map_or(DEFAULT_NEMESIS_INTERVAL, |i| i.0),
            duration,
            start,
            stop,
            clock_jump_max,
        })
    }

    /// `start < stop <= duration`.
    fn nemesis_window(&self, raw: &RawNemesis) -> Checked<(Time, Time)> {
        let start = raw.start.as_ref().map_or(Span::ZERO, |s| s.get_ref().0);
        let stop = raw.stop.as_ref().map_or(self.duration, |s| s.get_ref().0);
        if let Some(s) = &raw.stop {
            if stop > self.duration {
                let message = format!(
                    "expected the nemesis to stop by the duration ({}), found {}",
                    span_text(self.duration),
                    span_text(stop)
                );
                return self.fail(s.span(), message);
            }
        }
        if start >= stop {
            let message = format!(
                "expected the nemesis to start ({}) before it stops ({})",
                span_text(start),
                span_text(stop)
            );
            let span = match (&raw.start, &raw.stop) {
                (Some(s), _) | (None, Some(s)) => s.span(),
                (None, None) => 0..0,
            };
            return self.fail(span, message);
        }
        Ok((Time::ZERO + start, Time::ZERO + stop))
    }

    fn checks(&self, raw: RawChecks) -> Checked<Checks> {
        let liveness = match &raw.liveness {
            Some(l) => self.positive(l, "a liveness window")?,
            None => DEFAULT_LIVENESS,
        };
        Ok(Checks {
            liveness,
            settle: raw.settle.map_or(DEFAULT_SETTLE, |s| s.0),
        })
    }
}

fn unknown_param(info: &ProtocolInfo, name: &str) -> String {
    if info.params.is_empty() {
        return format!(
            "unknown parameter `{name}`: protocol `{}` has no parameters",
            info.name
        );
    }
    format!(
        "unknown parameter `{name}` of protocol `{}`, expected one of {}",
        info.name,
        list(info.params.iter().map(|p| p.name))
    )
}

fn unknown_bug(info: &ProtocolInfo, name: &str) -> String {
    if info.bugs.is_empty() {
        return format!(
            "unknown bug `{name}`: protocol `{}` has no planted bugs",
            info.name
        );
    }
    format!(
        "unknown bug `{name}` of protocol `{}`, expected one of {}",
        info.name,
        list(info.bugs.iter().map(|b| b.name))
    )
}

/// A TOML value as an error message shows it.
fn describe(value: &toml::Value) -> String {
    match value {
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::String(s) => format!("{s:?}"),
        other => format!("a {}", other.type_str()),
    }
}

/// Made-up protocols with parameters and planted bugs of every kind, so that the loader's
/// tests do not depend on what the real protocols declare today.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;
    use simkv_protocols::BugSpec;

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

    /// `primary` and `raft`, as the tests know them.
    pub(crate) fn protocols() -> Vec<ProtocolInfo> {
        let info = |name, params, bugs| ProtocolInfo {
            name,
            description: "test protocol",
            promises: &[],
            params,
            bugs,
            transactions: false,
        };
        vec![
            info("primary", PRIMARY_PARAMS, PRIMARY_BUGS),
            info("raft", RAFT_PARAMS, RAFT_BUGS),
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
}

#[cfg(test)]
mod tests {
    use super::fixtures::{fail, load, pos, FULL, MINIMAL};
    use super::*;
    use crate::scenario::fault_kinds::{
        ClockDrift, ClockJump, Crash, Heal, Isolate, OneWay, Partition, Restart,
    };
    use crate::scenario::model::{NemesisKind, PartitionShape};

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
        assert_eq!((s.cluster.protocol.as_str(), s.cluster.nodes), ("raft", 5));
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
        let expected: Vec<(&str, String)> =
            expected.iter().map(|(k, v)| (*k, v.to_string())).collect();
        assert_eq!(params, expected);
        let c = Checks {
            liveness: Span::secs(3),
            settle: Span::secs(5),
        };
        assert_eq!(s.checks, c);
        let n = s.nemesis.clone().unwrap();
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
            node: n(4),
            ppm: -500,
        };
        let expected: [(u64, Fault); 9] = [
            (10, Partition(PartitionShape::Groups(groups)).into()),
            (10, jump.into()),
            (12, one_way.into()),
            (13, Isolate(n(2)).into()),
            (14, Partition(PartitionShape::Bridge).into()),
            (15, Crash(n(3)).into()),
            (16, Restart(n(3)).into()),
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
        assert_eq!(s.faults[8].origin.to_string(), "s.toml:60:6");
        let (line, column) = pos(FULL, "\"10s\"\nclock_jump");
        let origin = format!("s.toml:{}:{}", line.unwrap(), column.unwrap());
        assert_eq!(s.faults[1].origin.to_string(), origin);
    }

    #[test]
    fn the_protocol_override_picks_which_params_table_applies() {
        let s = load(FULL, &Overrides::default()).unwrap();
        assert_eq!(s.cluster.params.span("heartbeat"), ms(50));
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
        assert_eq!(s.cluster.protocol, "primary");
        let params: Vec<_> = s.cluster.params.iter().collect();
        assert_eq!(params, [("heartbeat", &ParamValue::Span(ms(70)))]);
        assert_eq!(s.cluster.bugs, ["skip-resync"]);
    }

    #[test]
    fn command_line_overrides_apply_and_are_checked() {
        let o = Overrides {
            seed: Some(u64::MAX),
            bugs: vec!["stale-read".into(), "no-log-check".into()],
            ..Overrides::default()
        };
        let s = load(FULL, &o).unwrap();
        assert_eq!(s.seed, u64::MAX);
        assert_eq!(s.cluster.bugs, ["no-log-check", "stale-read"]);
        let o = Overrides {
            protocol: Some("paxos".into()),
            ..Overrides::default()
        };
        let e = fail(MINIMAL, &o);
        assert_eq!((e.file.as_str(), e.line), ("--protocol", None));
        let expected =
            "--protocol paxos: unknown protocol `paxos`, expected one of `primary`, `raft`";
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
    fn the_real_registry_is_what_load_str_uses() {
        let s = load_str("m.toml", MINIMAL, &Overrides::default()).unwrap();
        assert_eq!(s.cluster.protocol, "primary");
        let text = MINIMAL.replace("\"primary\"", "\"nope\"");
        let e = load_str("m.toml", &text, &Overrides::default()).unwrap_err();
        let names = list(registry::protocol_names());
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
        assert!(s.clocks.is_empty() && s.faults.is_empty() && s.nemesis.is_none());
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
        };
        assert_eq!(s.workload, workload);
        let checks = Checks {
            liveness: Span::secs(5),
            settle: Span::secs(5),
        };
        assert_eq!(s.checks, checks);
    }

    #[test]
    fn nemesis_defaults_follow_the_duration() {
        let s = ok(&with("[nemesis]\nkinds = [\"crash\"]\n"));
        let n = s.nemesis.unwrap();
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
            "unknown field `colour`, expected one of `protocol`, `nodes`, `bugs`, `params`",
        );
        let text = format!("colour = \"red\"\n{MINIMAL}");
        let e = fails_at(&text, "colour", "unknown field `colour`");
        assert_eq!(
            e.to_string(),
            "error: unknown field `colour`, expected one of `name`, `description`, `seed`, \
             `duration`, `max_events`, `cluster`, `network`, `clock`, `workload`, `fault`, \
             `nemesis`, `checks`\n --> s.toml:1:1\n  |\n1 | colour = \"red\"\n  | ^^^^^^"
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
            "unknown field `when`, expected one of `at`, `partition`",
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
            "expected a number of keys of at least 1",
        ),
        (
            "[workload]\nclients = »-1\n",
            "clients from 0 to 100000, found -1",
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
            "from -1000000 to",
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
}

#[cfg(test)]
mod never_panic {
    use super::fixtures::{load, FULL};
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
