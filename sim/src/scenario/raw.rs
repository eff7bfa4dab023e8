//! The raw shape of a scenario file, as serde reads it: every table denies unknown fields,
//! and every value that a later check may reject keeps its span, so that the check can say
//! where. Leaf values whose meaning needs no context (durations, probabilities, latency
//! forms) are parsed right here, inside deserialization, which locates their errors at the
//! value for free.

use super::fault_kinds::RawFault;
use super::model::{KeyDistribution, LivenessMode, NemesisKind, Placement, Target};
pub(crate) use super::values::{Dur, DurRange, Int, LatencyDe, NodeName, Number, Prob, SignedDur};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use toml::Spanned;

/// A whole scenario file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScenario {
    pub name: Spanned<String>,
    pub description: Spanned<String>,
    pub seed: Option<Spanned<Int>>,
    pub duration: Spanned<Dur>,
    pub max_events: Option<Spanned<Int>>,
    pub cluster: RawCluster,
    pub network: Option<RawNetwork>,
    #[serde(default, rename = "clock")]
    pub clocks: Vec<RawClock>,
    pub workload: Option<RawWorkload>,
    #[serde(default, rename = "fault")]
    pub faults: Vec<Spanned<RawFault>>,
    /// `[[op]]`: a scripted workload.
    #[serde(default, rename = "op")]
    pub script: Vec<Spanned<super::load::RawScriptOp>>,
    /// `[nemesis]` (one table) or `[[nemesis]]` (any number).
    #[serde(default, rename = "nemesis")]
    pub nemeses: RawNemeses,
    pub disk: Option<RawDisk>,
    pub checks: Option<RawChecks>,
    /// `[swarm]`, already drawn (see `swarm.rs`): read here so that its mistakes are
    /// located like any other.
    #[allow(dead_code)]
    pub swarm: Option<super::swarm::RawSwarm>,
}

/// `[cluster]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCluster {
    pub protocol: Spanned<String>,
    pub nodes: Spanned<Int>,
    /// The nodes in the cluster at time zero (every node when absent).
    pub initial: Option<Spanned<Vec<Spanned<NodeName>>>>,
    #[serde(default)]
    pub bugs: Vec<Spanned<String>>,
    #[serde(default)]
    pub params: BTreeMap<Spanned<String>, ParamTable>,
}

/// One `[cluster.params.<protocol>]` table: parameter name to value.
#[derive(Debug, Default)]
pub(crate) struct ParamTable(pub BTreeMap<Spanned<String>, Spanned<toml::Value>>);

/// `[network]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNetwork {
    pub latency: Option<LatencyDe>,
    pub drop: Option<Prob>,
    pub duplicate: Option<Prob>,
    pub reorder: Option<Prob>,
    pub reorder_delay: Option<DurRange>,
    pub fifo: Option<bool>,
    pub client_latency: Option<LatencyDe>,
    #[serde(default, rename = "link")]
    pub links: Vec<RawLink>,
}

/// `[[network.link]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLink {
    pub from: Spanned<NodeName>,
    pub to: Spanned<NodeName>,
    pub latency: Option<LatencyDe>,
    pub drop: Option<Prob>,
    pub duplicate: Option<Prob>,
    pub reorder: Option<Prob>,
    pub reorder_delay: Option<DurRange>,
    #[serde(default)]
    pub both_ways: bool,
}

/// `[disk]`: every node's disk.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDisk {
    pub crash: Option<Spanned<String>>,
    pub sync: Option<Spanned<DurRange>>,
}

/// `[[clock]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClock {
    pub node: Spanned<NodeName>,
    pub offset: Option<SignedDur>,
    pub drift_ppm: Option<Spanned<Int>>,
}

/// `[workload]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWorkload {
    pub clients: Option<Spanned<Int>>,
    pub keys: Option<Spanned<Int>>,
    pub key_distribution: Option<KeyDistDe>,
    pub mix: Option<Spanned<RawMix>>,
    pub think: Option<DurRange>,
    pub rate: Option<Spanned<Int>>,
    pub timeout: Option<Spanned<Dur>>,
    pub target: Option<Target>,
    pub quorum: Option<Spanned<Int>>,
    pub retries: Option<Spanned<Int>>,
    pub txn_ops: Option<Spanned<Int>>,
    pub backoff: Option<Spanned<RawBackoff>>,
    pub in_flight: Option<Spanned<Int>>,
    pub placement: Option<Placement>,
    pub max_writes_per_key: Option<Spanned<Int>>,
    pub max_ops: Option<Spanned<Int>>,
    pub start: Option<Spanned<Dur>>,
    pub contexts: Option<Spanned<bool>>,
}

/// `backoff = "none" | { base = "10ms", max = "1s" }`; the validator checks base and max
/// against each other.
#[derive(Clone, Copy, Debug)]
pub(crate) enum RawBackoff {
    None,
    Exponential { base: Dur, max: Dur },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BackoffTable {
    base: Dur,
    max: Dur,
}

impl<'de> Deserialize<'de> for RawBackoff {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawBackoff;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"none\" or { base = \"10ms\", max = \"1s\" }")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RawBackoff, E> {
                if s == "none" {
                    Ok(RawBackoff::None)
                } else {
                    Err(E::custom(format!(
                        "expected \"none\" or {{ base = \"10ms\", max = \"1s\" }}, found {s:?}"
                    )))
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawBackoff, A::Error> {
                let t = BackoffTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RawBackoff::Exponential {
                    base: t.base,
                    max: t.max,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// `mix = { get = 50, ... }`: one optional weight per operation kind.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMix {
    pub get: Option<Spanned<Int>>,
    pub put: Option<Spanned<Int>>,
    pub update: Option<Spanned<Int>>,
    pub delete: Option<Spanned<Int>>,
    pub cas: Option<Spanned<Int>>,
    pub append: Option<Spanned<Int>>,
    pub txn: Option<Spanned<Int>>,
}

/// `[nemesis]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNemesis {
    pub kinds: Spanned<Vec<Spanned<NemesisKind>>>,
    pub interval: Option<Spanned<DurRange>>,
    pub fault_duration: Option<Spanned<DurRange>>,
    pub start: Option<Spanned<Dur>>,
    pub stop: Option<Spanned<Dur>>,
    pub clock_jump_max: Option<Spanned<Dur>>,
    pub clock_drift_max: Option<Spanned<Int>>,
    pub max_down: Option<Spanned<Int>>,
    #[serde(default)]
    pub targets: Vec<Spanned<crate::scenario::targets::RawTargets>>,
    pub on_role: Option<Spanned<String>>,
}

/// Every nemesis of a file: `[nemesis]` is one, `[[nemesis]]` any number, in file order.
#[derive(Debug, Default)]
pub(crate) struct RawNemeses(pub Vec<RawNemesis>);

impl<'de> Deserialize<'de> for RawNemeses {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawNemeses;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a [nemesis] table or [[nemesis]] tables")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawNemeses, A::Error> {
                let one = RawNemesis::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RawNemeses(vec![one]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<RawNemeses, A::Error> {
                Vec::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(RawNemeses)
            }
        }
        d.deserialize_any(V)
    }
}

/// `[checks]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawChecks {
    pub liveness: Option<Spanned<Dur>>,
    pub settle: Option<Dur>,
    pub liveness_mode: Option<Spanned<LivenessMode>>,
    pub max_messages_per_op: Option<Spanned<Number>>,
    pub leader_within: Option<Spanned<Dur>>,
    pub one_leader: Option<Spanned<bool>>,
    pub false_deaths: Option<bool>,
}

/// `key_distribution = "uniform" | { zipf = 1.1 }`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyDistDe(pub KeyDistribution);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ZipfTable {
    zipf: f64,
}

impl<'de> Deserialize<'de> for KeyDistDe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyDistDe;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"uniform\" or { zipf = exponent }")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<KeyDistDe, E> {
                if s == "uniform" {
                    Ok(KeyDistDe(KeyDistribution::Uniform))
                } else {
                    Err(E::custom(format!(
                        "expected \"uniform\" or {{ zipf = exponent }}, found {s:?}"
                    )))
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<KeyDistDe, A::Error> {
                let t = ZipfTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                if !(t.zipf.is_finite() && t.zipf > 0.0) {
                    let message = format!("expected a zipf exponent above 0, found {}", t.zipf);
                    return Err(de::Error::custom(message));
                }
                Ok(KeyDistDe(KeyDistribution::Zipf { exponent: t.zipf }))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for ParamTable {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ParamTable;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a table of one protocol's parameters, as in [cluster.params.raft] \
                     (params are keyed by protocol name)",
                )
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ParamTable, A::Error> {
                BTreeMap::deserialize(de::value::MapAccessDeserializer::new(map)).map(ParamTable)
            }
        }
        d.deserialize_any(V)
    }
}
