//! `[swarm]`: swarm testing (Groce, Zhang, Eide, Chen and Regehr, "Swarm Testing", ISSTA
//! 2012; FoundationDB's and TigerBeetle's simulators). Each seed draws its own world: one
//! table of fields for each profile list `[swarm.pick]` names (fields that go together), one
//! value for each field `[swarm.draw]` names, and a random non-empty subset of the fault
//! kinds `[swarm.faults]` lists, each run by its own nemesis with a drawn rate and drawn
//! targets; with `on_role`, each aimed kind may get a twin nemesis whose faults wait for a
//! role change (an election under way, a fresh leader, a node just restarted). A bug that
//! needs some feature off (or on) is found by the seeds that draw it so.
//!
//! The draws are made before anything else is checked, from the seed's own swarm stream, and
//! become `--set` entries applied before the user's own (which therefore win). The loaded
//! [`Scenario`](super::Scenario) lists them (`swarm`), the summary prints them first, and
//! `--explain` prints the scenario they make: a plain scenario, without `[swarm]`, that
//! reproduces the seed.

use super::diagnostic::LoadError;
use super::explain::quote;
use super::model::NemesisKind;
use super::overrides::{Overrides, Place, Prepared};
use super::raw::{DurRange, Int};
use super::targets::target_applies;
use crate::rng::Stream;
use serde::Deserialize;
use simkv_protocols::{ProtocolInfo, ProtocolKind};
use std::collections::BTreeMap;
use std::ops::Range;
use toml::Spanned;

/// A `--set` entry the swarm drew, and the range of the file it was drawn from.
pub(crate) type Drawn = (String, Option<Range<usize>>);

/// One `[swarm.pick]` profile: the fields (as `--set` names them) it sets together.
type Profile = Spanned<BTreeMap<String, toml::Value>>;

/// `[swarm]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSwarm {
    /// Scenario field (as `--set` names it) to the values a seed draws one of.
    #[serde(default)]
    draw: BTreeMap<String, Spanned<Vec<toml::Value>>>,
    /// Named profiles: each seed picks one table of each list, and every field it names
    /// (as `--set` names them) is set together, for values that only make sense together
    /// (a LAN's latency with its short client timeouts).
    #[serde(default)]
    pick: BTreeMap<String, Spanned<Vec<Profile>>>,
    /// The fault kinds a seed switches on, and how they run.
    faults: Option<RawSwarmFaults>,
}

/// `[swarm.faults]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSwarmFaults {
    /// Every kind a seed may switch on (each is on with even odds, at least one is).
    kinds: Spanned<Vec<Spanned<NemesisKind>>>,
    /// Gaps between one fault and the next, one range drawn per kind (its rate).
    #[serde(default)]
    interval: Vec<DurRange>,
    /// How long faults last, one range drawn per kind.
    #[serde(default)]
    duration: Vec<DurRange>,
    /// What node faults aim at: each seed keeps a non-empty subset of those the protocol
    /// has (roles it lacks are left out, so that one file serves every protocol).
    #[serde(default)]
    targets: Vec<Spanned<String>>,
    /// Bounds on nodes down at once, one drawn per seed (absent: no bound).
    #[serde(default)]
    max_down: Vec<Spanned<Int>>,
    /// Roles to time faults at: with even odds, each aimed kind switched on gets a second
    /// nemesis (its own interval and duration) whose faults wait for one of the roles the
    /// protocol has (drawn): its `on_role`.
    #[serde(default)]
    on_role: Vec<Spanned<String>>,
    /// How long the role-timed twins' faults last, one range drawn per twin (absent: drawn
    /// from `duration`): the windows a role change opens are short.
    #[serde(default)]
    on_role_duration: Vec<DurRange>,
}

/// What the swarm needs of the file before it is validated: the table, the seed and the
/// protocol (every other key is ignored here and checked later).
#[derive(Debug, Deserialize)]
struct SwarmPart {
    swarm: Option<RawSwarm>,
    seed: Option<Int>,
    cluster: Option<ClusterPart>,
}

#[derive(Debug, Deserialize)]
struct ClusterPart {
    protocol: Option<String>,
}

/// The `--set` entries that make the swarm's draws for this seed explicit, in the order they
/// are drawn, each with the range of the file it was drawn from (where its errors point);
/// empty when the file has no `[swarm]`. `prepared` is the file with the user's own `--set`
/// entries applied.
pub(crate) fn draws(
    prepared: &Prepared<'_>,
    overrides: &Overrides,
    protocols: &[(ProtocolKind, ProtocolInfo)],
    default_seed: u64,
) -> Result<Vec<Drawn>, LoadError> {
    let in_file = |span: Range<usize>| match prepared.place(span) {
        Place::File(range) => Some(range),
        Place::Set(_) => None,
    };
    // A file that does not parse is reported by the full load, with its location.
    let Ok(part) = toml::from_str::<SwarmPart>(&prepared.text) else {
        return Ok(Vec::new());
    };
    let Some(swarm) = part.swarm else {
        return Ok(Vec::new());
    };
    let seed = overrides
        .seed
        .or(part.seed.map(|s| s.0.max(0) as u64))
        .unwrap_or(default_seed);
    let protocol_name = overrides
        .protocol
        .clone()
        .or(part.cluster.and_then(|c| c.protocol));
    let info = protocols
        .iter()
        .find(|(_, p)| Some(p.name) == protocol_name.as_deref())
        .map(|(_, p)| *p);
    let mut rng = crate::rng::swarm(seed);
    let mut entries = Vec::new();
    for (name, profiles) in &swarm.pick {
        let usable: Vec<&Spanned<BTreeMap<String, toml::Value>>> = profiles
            .get_ref()
            .iter()
            .filter(|p| {
                let fields = p.get_ref();
                info.is_none_or(|i| fields.iter().all(|(k, v)| serves(k, v, &i)))
            })
            .collect();
        if usable.is_empty() {
            let message = format!("expected at least one table of fields to pick for `{name}`");
            return Err(prepared.error(Some(profiles.span()), &message));
        }
        let profile = usable[rng.below(usable.len() as u64) as usize];
        for (key, value) in profile.get_ref() {
            let entry = format!("{key}={}", inline(value));
            entries.push((entry, in_file(profile.span())));
        }
    }
    for (key, choices) in &swarm.draw {
        let usable: Vec<&toml::Value> = choices
            .get_ref()
            .iter()
            .filter(|v| info.is_none_or(|i| serves(key, v, &i)))
            .collect();
        if usable.is_empty() {
            let message = format!("expected at least one value to draw for `{key}`");
            return Err(prepared.error(Some(choices.span()), &message));
        }
        let value = usable[rng.below(usable.len() as u64) as usize];
        let entry = format!("{key}={}", inline(value));
        entries.push((entry, in_file(choices.span())));
    }
    if let Some(faults) = &swarm.faults {
        // A role no protocol has is a typo, whatever the protocol of this run.
        for on in &faults.on_role {
            let text = on.get_ref().as_str();
            let role = text.strip_prefix("new-").unwrap_or(text);
            if !protocols
                .iter()
                .any(|(_, p)| p.roles.iter().any(|r| r.name == role))
            {
                let message = format!(
                    "expected a role of some protocol (`simkv list roles`), alone or as \
                     `new-ROLE`; found {text:?}"
                );
                return Err(prepared.error(Some(on.span()), &message));
            }
        }
        let entry = nemeses(faults, info, &mut rng, prepared)?;
        entries.push((entry, in_file(faults.kinds.span())));
    }
    Ok(entries)
}

/// Whether the protocol can run `value` for `key`: a mix with transactions only where they
/// are served, and contexts only where they are taken.
fn serves(key: &str, value: &toml::Value, info: &ProtocolInfo) -> bool {
    let has_txn = || value.as_table().is_some_and(|t| t.contains_key("txn"));
    let contexts = || value.as_bool() == Some(true);
    let txn_refused = key == "workload.mix" && !info.transactions && has_txn();
    let contexts_refused = key == "workload.contexts" && !info.contexts && contexts();
    !(txn_refused || contexts_refused)
}

/// `nemesis=[...]`: one nemesis per kind switched on.
fn nemeses(
    faults: &RawSwarmFaults,
    info: Option<ProtocolInfo>,
    rng: &mut Stream,
    prepared: &Prepared<'_>,
) -> Result<String, LoadError> {
    let kinds: Vec<NemesisKind> = faults
        .kinds
        .get_ref()
        .iter()
        .map(|k| *k.get_ref())
        .collect();
    if kinds.is_empty() {
        let message = "expected at least one fault kind to draw from";
        return Err(prepared.error(Some(faults.kinds.span()), message));
    }
    let on = subset(&kinds, rng);
    let targets: Vec<&str> = faults
        .targets
        .iter()
        .map(|t| t.get_ref().as_str())
        .filter(|t| info.is_none_or(|i| target_applies(t, &i)))
        .collect();
    let targets = subset(&targets, rng);
    let max_down = match faults.max_down.as_slice() {
        [] => None,
        bounds => Some(bounds[rng.below(bounds.len() as u64) as usize].get_ref().0),
    };
    // Roles the protocol has (each is checked, with its location, when the scenario the
    // draws make is loaded); with no protocol known, all of them.
    let on_role: Vec<&str> = faults
        .on_role
        .iter()
        .map(|r| r.get_ref().as_str())
        .filter(|r| {
            let role = r.strip_prefix("new-").unwrap_or(r);
            info.is_none_or(|i| i.roles.iter().any(|s| s.name == role))
        })
        .collect();
    let mut tables = Vec::with_capacity(on.len());
    for kind in on {
        tables.push(nemesis(
            faults,
            kind,
            &targets,
            max_down,
            None,
            &faults.duration,
            rng,
        ));
        // A twin timed at role changes: only aimed faults wait for a role, and it is drawn
        // only when there is a role to draw (so that files without `on_role`, and protocols
        // without such roles, draw as they did).
        let aimed = !matches!(
            kind,
            NemesisKind::ClockJump | NemesisKind::Network | NemesisKind::Disk
        );
        if aimed && !on_role.is_empty() && !targets.is_empty() && rng.below(2) == 0 {
            let role = on_role[rng.below(on_role.len() as u64) as usize];
            let durations = match faults.on_role_duration.as_slice() {
                [] => &faults.duration,
                _ => &faults.on_role_duration,
            };
            tables.push(nemesis(
                faults,
                kind,
                &targets,
                max_down,
                Some(role),
                durations,
                rng,
            ));
        }
    }
    Ok(format!("nemesis=[{}]", tables.join(", ")))
}

/// One nemesis table of `kind`, with its drawn interval and duration.
fn nemesis(
    faults: &RawSwarmFaults,
    kind: NemesisKind,
    targets: &[&str],
    max_down: Option<i64>,
    on_role: Option<&str>,
    durations: &[DurRange],
    rng: &mut Stream,
) -> String {
    let mut table = format!("{{ kinds = [{}]", quote(kind.name()));
    if !faults.interval.is_empty() {
        let i = &faults.interval[rng.below(faults.interval.len() as u64) as usize];
        table.push_str(&format!(", interval = {}", quote(&range(i))));
    }
    if !durations.is_empty() {
        let d = &durations[rng.below(durations.len() as u64) as usize];
        table.push_str(&format!(", fault_duration = {}", quote(&range(d))));
    }
    if !targets.is_empty() {
        let names: Vec<String> = targets.iter().map(|t| quote(t)).collect();
        table.push_str(&format!(", targets = [{}]", names.join(", ")));
    }
    if let Some(max) = max_down {
        table.push_str(&format!(", max_down = {max}"));
    }
    if let Some(role) = on_role {
        table.push_str(&format!(", on_role = {}", quote(role)));
    }
    table.push_str(" }");
    table
}

/// A non-empty subset of `items` (each kept with even odds; one drawn if none was), in
/// their order; empty only when `items` is.
fn subset<T: Copy>(items: &[T], rng: &mut Stream) -> Vec<T> {
    let mut kept: Vec<T> = items
        .iter()
        .copied()
        .filter(|_| rng.below(2) == 0)
        .collect();
    if kept.is_empty() && !items.is_empty() {
        kept.push(items[rng.below(items.len() as u64) as usize]);
    }
    kept
}

fn range(r: &DurRange) -> String {
    super::explain::range_text(r.0)
}

/// A TOML value on one line, as a `--set` entry takes it.
fn inline(value: &toml::Value) -> String {
    match value {
        toml::Value::Table(t) => {
            let fields: Vec<String> = t
                .iter()
                .map(|(k, v)| format!("{} = {}", key(k), inline(v)))
                .collect();
            format!("{{ {} }}", fields.join(", "))
        }
        toml::Value::Array(items) => {
            let items: Vec<String> = items.iter().map(inline).collect();
            format!("[{}]", items.join(", "))
        }
        other => other.to_string(),
    }
}

fn key(k: &str) -> String {
    let bare = !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        k.to_string()
    } else {
        quote(k)
    }
}
