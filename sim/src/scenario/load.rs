//! Loading a scenario: read the file, apply `--set` overrides, deserialize into the raw
//! shape, then validate into a [`Scenario`], filling every default. The first problem
//! found stops the load, as a [`LoadError`] that says where and what was expected.

use super::diagnostic::LoadError;
use super::model::{Checks, Cluster, LivenessMode, Scenario, StatedChecks};
use super::overrides::{Overrides, Prepared};
use super::raw::{ParamTable, RawChecks, RawCluster, RawScenario};
use super::swarm;
pub(crate) use super::validator::{list, Checked, Validator};
use simkv_protocols::params::ParamContext;
use simkv_protocols::{
    NodeId, ParamKind, ParamSpec, ParamValue, Params, ProtocolInfo, ProtocolKind, Span,
};
use std::collections::BTreeMap;
use std::ops::Range;
use toml::Spanned;

mod faults;
mod limits;
mod network;
pub(crate) use network::CRASH_MODES;
mod script;
pub(crate) use script::RawScriptOp;
mod workload;

#[cfg(test)]
#[path = "load/checks_tests.rs"]
mod checks_tests;
#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod tests;

/// Files larger than this are refused unread: a scenario is a page of text.
const MAX_FILE_BYTES: u64 = 16 << 20;
/// The most nodes a cluster may have.
const MAX_NODES: i64 = 64;

const DEFAULT_SEED: u64 = 1;
/// The largest seed, on the command line as in a file: TOML integers stop at 2^63 - 1, and
/// a seed one command takes and the file refuses would make a run that cannot be saved.
const MAX_SEED: u64 = i64::MAX as u64;
const DEFAULT_MAX_EVENTS: u64 = 100_000_000;
/// The longest run, in virtual time: a day, far past any scenario's need, and short enough
/// that the event estimate ([`limits`]) stays meaningful.
const MAX_DURATION: Span = Span::secs(24 * 3600);
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
    let protocols: Vec<(ProtocolKind, ProtocolInfo)> =
        ProtocolKind::ALL.iter().map(|p| (*p, p.info())).collect();
    load_with(file, text, overrides, &protocols)
}

/// [`load_str`] against a given list of protocols (the tests use made-up ones).
pub(crate) fn load_with(
    file_name: &str,
    text: &str,
    overrides: &Overrides,
    protocols: &[(ProtocolKind, ProtocolInfo)],
) -> Result<Scenario, LoadError> {
    let mut prepared = Prepared::new(file_name, text, &overrides.sets)?;
    let drawn = swarm::draws(&prepared, overrides, protocols, DEFAULT_SEED)?;
    if !drawn.is_empty() {
        // The user's own entries come last, so that they win over a draw.
        let user = overrides.sets.iter().map(|s| (s.clone(), None));
        let sets: Vec<_> = drawn.iter().cloned().chain(user).collect();
        prepared = Prepared::with_origins(file_name, text, &sets)?;
    }
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
    let mut scenario = validator.scenario(raw, file_name)?;
    scenario.swarm = drawn
        .into_iter()
        .map(|(entry, _)| overridden(entry, &overrides.sets))
        .collect();
    Ok(scenario)
}

/// A swarm's draw as the summary lists it: marked when one of the user's own `--set`
/// entries replaced it (or a field inside it).
fn overridden(entry: String, sets: &[String]) -> String {
    let key = |e: &str| e.split('=').next().unwrap_or_default().trim().to_string();
    let drawn = key(&entry);
    let replaced = sets.iter().any(|s| {
        let set = key(s);
        set == drawn || set.starts_with(&format!("{drawn}."))
    });
    match replaced {
        true => format!("{entry} (overridden by --set)"),
        false => entry,
    }
}

impl Validator<'_> {
    fn scenario(&mut self, raw: RawScenario, source: &str) -> Checked<Scenario> {
        let name = self.one_line(&raw.name, "a name")?;
        let description = self.one_line(&raw.description, "a description")?;
        let seed = match (self.overrides.seed, &raw.seed) {
            (Some(seed), _) if seed > MAX_SEED => {
                let message = format!(
                    "--seed {seed}: expected a seed from 0 to {MAX_SEED} (2^63 - 1, the \
                     largest a scenario file's `seed` can hold), found {seed}"
                );
                return Err(LoadError::plain("--seed", message));
            }
            (Some(seed), _) => seed,
            (None, Some(seed)) => self.int_in(seed, 0, None, "a seed")? as u64,
            (None, None) => DEFAULT_SEED,
        };
        let duration_span = raw.duration.span();
        self.duration = self.positive(&raw.duration, "a duration")?;
        if self.duration > MAX_DURATION {
            let message = format!(
                "expected a duration of at most {} of virtual time, found {}",
                super::explain::span_text(MAX_DURATION),
                super::explain::span_text(self.duration)
            );
            return self.fail(raw.duration.span(), message);
        }
        let max_events = match &raw.max_events {
            Some(m) => self.int_in(m, 1, None, "max_events")? as u64,
            None => DEFAULT_MAX_EVENTS,
        };
        let cluster = self.cluster(&raw.cluster)?;
        let network = self.network(raw.network.unwrap_or_default())?;
        let clocks = self.clocks(&raw.clocks)?;
        let mut workload = self.workload(raw.workload.unwrap_or_default())?;
        let faults = self.faults(&raw.faults)?;
        let mut nemeses = Vec::with_capacity(raw.nemeses.0.len());
        for n in raw.nemeses.0 {
            nemeses.push(self.nemesis(n)?);
        }
        let checks = self.checks(raw.checks.unwrap_or_default())?;
        let (processes, txns) = (workload.processes(), workload.has_txn());
        let end = self.duration + checks.liveness + checks.liveness;
        workload.script = self.script(&raw.script, processes, txns, workload.contexts, end)?;
        let disk = self.disk(raw.disk.unwrap_or_default())?;
        let scenario = Scenario {
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
            nemeses,
            checks,
            disk,
            swarm: Vec::new(),
        };
        self.finishes(&scenario, duration_span)?;
        Ok(scenario)
    }

    /// Refuses a scenario whose rates imply more events than its `max_events`: it could
    /// not finish, and would run for minutes before saying so.
    fn finishes(&self, scenario: &Scenario, at: Range<usize>) -> Checked<()> {
        let (events, breakdown) = limits::estimate_events(scenario);
        if events <= u128::from(scenario.max_events) {
            return Ok(());
        }
        let message = format!(
            "this scenario implies about {events} events ({breakdown}), more than max_events \
             = {}: it could not finish; shorten the duration, lengthen timers, nemesis \
             intervals or think times, use fewer clients, or raise max_events",
            scenario.max_events
        );
        self.fail(at, message)
    }

    fn find_protocol(&self, name: &str) -> Option<(ProtocolKind, ProtocolInfo)> {
        self.protocols.iter().find(|(_, p)| p.name == name).copied()
    }

    fn protocol_list(&self) -> String {
        list(self.protocols.iter().map(|(_, p)| p.name))
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
        let (kind, info) = info;
        self.protocol = Some(info);
        let params = self.params(&raw.params, &info)?;
        let bugs = self.bugs(&raw.bugs, &info)?;
        self.protocol_checks_params(raw, &info, &params, &bugs)?;
        let initial = self.initial(raw)?;
        Ok(Cluster {
            protocol: kind,
            nodes: self.nodes,
            initial,
            params,
            bugs,
        })
    }

    /// `initial`: distinct node names, at least one; a strict subset only for a protocol
    /// whose nodes may join ([`ProtocolInfo::membership`]).
    fn initial(&self, raw: &RawCluster) -> Checked<Vec<NodeId>> {
        let all: Vec<NodeId> = (0..self.nodes).map(NodeId).collect();
        let Some(list) = &raw.initial else {
            return Ok(all);
        };
        let mut initial = Vec::with_capacity(list.get_ref().len());
        for name in list.get_ref() {
            let node = self.node(name)?;
            if initial.contains(&node) {
                return self.fail(
                    name.span(),
                    format!("expected each node once, found {node} twice"),
                );
            }
            initial.push(node);
        }
        if initial.is_empty() {
            let message = "expected at least one node in `initial`, found none";
            return self.fail(list.span(), message);
        }
        initial.sort_unstable();
        if initial.len() < all.len() {
            self.supports_membership(list.span(), "`initial` with fewer than every node")?;
        }
        Ok(initial)
    }

    /// Membership changes (`initial`, `join`, `leave`, `remove`) need a protocol whose
    /// nodes may join and leave.
    pub(crate) fn supports_membership(&self, at: Range<usize>, what: &str) -> Checked<()> {
        let lacking = "whose nodes cannot join or leave a running cluster";
        self.needs(at, what, |p| p.membership, lacking, "protocols whose can")
    }

    /// Refuses `what`, at `at`, for a chosen protocol that lacks what `has` says (`lacking`
    /// says it in words), naming the protocols that have it (`others`: how to introduce
    /// them). Transactions, causal contexts and membership changes are refused through it.
    pub(crate) fn needs(
        &self,
        at: Range<usize>,
        what: &str,
        has: fn(&ProtocolInfo) -> bool,
        lacking: &str,
        others: &str,
    ) -> Checked<()> {
        let Some(info) = self.protocol.filter(|p| !has(p)) else {
            return Ok(());
        };
        let having = self
            .protocols
            .iter()
            .filter(|(_, p)| has(p))
            .map(|(_, p)| p.name);
        let from = match self.overrides.protocol.is_some() {
            true => " (from --protocol)",
            false => "",
        };
        let message = format!(
            "expected no {what} for protocol `{}`{from}, {lacking}; {others}: {}",
            info.name,
            list(having)
        );
        self.fail(at, message)
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
            let Some((_, info)) = self.find_protocol(protocol.get_ref()) else {
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

    /// The protocol's own check of its resolved parameters, located at the parameter it
    /// refuses (or at the protocol's name when the default is at fault).
    fn protocol_checks_params(
        &self,
        raw: &RawCluster,
        info: &ProtocolInfo,
        params: &Params,
        bugs: &[&'static str],
    ) -> Checked<()> {
        let context = ParamContext {
            nodes: self.nodes,
            bugs,
        };
        let Err(problem) = (info.check_params)(params, context) else {
            return Ok(());
        };
        let set = raw
            .params
            .iter()
            .filter(|(protocol, _)| protocol.get_ref() == info.name)
            .flat_map(|(_, table)| table.0.iter())
            .find(|(name, _)| name.get_ref() == problem.param);
        let message = format!(
            "parameter `{}` of {}: {}",
            problem.param, info.name, problem.message
        );
        match set {
            Some((_, value)) => self.fail(value.span(), message),
            None => self.fail(
                raw.protocol.span(),
                format!("{message} (`{}` is at its default)", problem.param),
            ),
        }
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

    fn checks(&self, raw: RawChecks) -> Checked<Checks> {
        let liveness = match &raw.liveness {
            Some(l) => self.positive(l, "a liveness window")?,
            None => DEFAULT_LIVENESS,
        };
        let liveness_mode = match &raw.liveness_mode {
            Some(mode) if *mode.get_ref() == LivenessMode::Vopr && self.nodes < 3 => {
                let message = format!(
                    "expected a cluster of at least 3 nodes for liveness_mode = \"vopr\" (a \
                     minority stays down), found {}",
                    self.nodes
                );
                return self.fail(mode.span(), message);
            }
            Some(mode) => *mode.get_ref(),
            None => LivenessMode::Heal,
        };
        let stated = self.stated_checks(&raw)?;
        Ok(Checks {
            liveness,
            settle: raw.settle.map_or(DEFAULT_SETTLE, |s| s.0),
            liveness_mode,
            stated,
        })
    }

    /// The checks a scenario states. The leadership checks need a protocol with a leading
    /// role: on a leaderless one there is nothing to judge, and the loader says so.
    fn stated_checks(&self, raw: &RawChecks) -> Checked<StatedChecks> {
        let max_messages_per_op = match &raw.max_messages_per_op {
            Some(n) => {
                let v = n.get_ref().0;
                if !(v.is_finite() && v > 0.0) {
                    let message = format!(
                        "expected max_messages_per_op to be a number of messages above 0, \
                         found {v}"
                    );
                    return self.fail(n.span(), message);
                }
                Some(v)
            }
            None => None,
        };
        let leader_within = match &raw.leader_within {
            Some(bound) => {
                self.needs_a_leader(bound.span(), "leader_within")?;
                Some(self.positive(bound, "a leader_within bound")?)
            }
            None => None,
        };
        let one_leader = match &raw.one_leader {
            Some(flag) if *flag.get_ref() => {
                self.needs_a_leader(flag.span(), "one_leader")?;
                true
            }
            _ => false,
        };
        Ok(StatedChecks {
            max_messages_per_op,
            leader_within,
            one_leader,
            false_deaths: raw.false_deaths.unwrap_or(false),
        })
    }

    /// Refuses a leadership check for a protocol none of whose roles leads.
    fn needs_a_leader(&self, span: std::ops::Range<usize>, key: &str) -> Checked<()> {
        let Some(info) = self.protocol else {
            return Ok(());
        };
        if info.roles.iter().any(|r| r.leads) {
            return Ok(());
        }
        let roles = list(info.roles.iter().map(|r| r.name));
        let message = format!(
            "{key} judges leaders, but protocol `{}` has no leading role (its roles: {roles})",
            info.name
        );
        self.fail(span, message)
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
