//! The raw shape of a scenario file, as serde reads it: every table denies unknown fields,
//! and every value that a later check may reject keeps its span, so that the check can say
//! where. Leaf values whose meaning needs no context (durations, probabilities, latency
//! forms) are parsed right here, inside deserialization, which locates their errors at the
//! value for free.

use super::fault_kinds::RawFault;
use super::model::{KeyDistribution, Latency, NemesisKind, Target};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use simkv_protocols::params::{parse_span, parse_span_range};
use simkv_protocols::{Span, SpanRange};
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
    pub nemesis: Option<RawNemesis>,
    pub checks: Option<RawChecks>,
}

/// `[cluster]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCluster {
    pub protocol: Spanned<String>,
    pub nodes: Spanned<Int>,
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
    pub interval: Option<DurRange>,
    pub fault_duration: Option<Spanned<DurRange>>,
    pub start: Option<Spanned<Dur>>,
    pub stop: Option<Spanned<Dur>>,
    pub clock_jump_max: Option<Spanned<Dur>>,
}

/// `[checks]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawChecks {
    pub liveness: Option<Spanned<Dur>>,
    pub settle: Option<Dur>,
}

/// A string-valued leaf parsed by a function: its visitor says what it expected, and a
/// parse error raised inside deserialization is located at the value by toml.
macro_rules! text_leaf {
    ($name:ident, $expecting:literal, $parse:expr) => {
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: de::Error>(self, s: &str) -> Result<$name, E> {
                        let parse: fn(&str) -> Result<$name, String> = $parse;
                        parse(s).map_err(E::custom)
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

/// An integer, as its own type so that a value of the wrong type says "expected an
/// integer" rather than naming a Rust type.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Int(pub i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Int;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int, E> {
                Ok(Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int, E> {
                i64::try_from(v)
                    .map(Int)
                    .map_err(|_| E::custom(format!("the integer {v} is too large")))
            }
        }
        d.deserialize_any(V)
    }
}

/// A duration (`"50ms"`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dur(pub Span);
text_leaf!(Dur, "a duration such as \"50ms\"", |s| parse_span(s)
    .map(Dur));

/// A duration or a range of durations (`"10ms"`, `"10ms..50ms"`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct DurRange(pub SpanRange);
text_leaf!(
    DurRange,
    "a duration or a range such as \"10ms..50ms\"",
    |s| parse_span_range(s).map(DurRange)
);

/// A signed duration in microseconds (`"+50ms"`, `"-1.5s"`, `"50ms"`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SignedDur(pub i64);
text_leaf!(
    SignedDur,
    "a signed duration such as \"-50ms\"",
    parse_signed_span
);

/// A probability in parts per million (`"0.5%"`, `"100ppm"`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Prob(pub u32);
text_leaf!(
    Prob,
    "a probability such as \"5%\" or \"100ppm\"",
    parse_probability
);

/// A node name, checked against the cluster's size by the validator.
#[derive(Clone, Debug)]
pub(crate) struct NodeName(pub String);
text_leaf!(NodeName, "a node name such as \"n1\"", |s| Ok(NodeName(
    s.to_string()
)));

/// Reads `+50ms`, `-1.5s` or `50ms` as signed microseconds.
pub(crate) fn parse_signed_span(text: &str) -> Result<SignedDur, String> {
    let text = text.trim();
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let micros = parse_span(rest)
        .map_err(|_| {
            format!("expected a signed duration such as \"-50ms\" or \"+1.5s\", found {text:?}")
        })?
        .as_micros();
    let magnitude =
        i64::try_from(micros).map_err(|_| format!("the duration {text:?} is too large"))?;
    Ok(SignedDur(if negative { -magnitude } else { magnitude }))
}

/// Reads `"x%"` (up to four decimals) or `"Nppm"` as parts per million, at most 100%.
pub(crate) fn parse_probability(text: &str) -> Result<Prob, String> {
    let text = text.trim();
    let expected = || {
        format!("expected a probability such as \"5%\", \"0.01%\" or \"100ppm\", found {text:?}")
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let ppm: u64 = if let Some(n) = text.strip_suffix("ppm") {
        let n = n.trim_end();
        if !digits(n) {
            return Err(expected());
        }
        n.parse().unwrap_or(u64::MAX)
    } else if let Some(n) = text.strip_suffix('%') {
        let n = n.trim_end();
        let (whole, fraction) = n.split_once('.').unwrap_or((n, "0"));
        if !digits(whole) || !digits(fraction) {
            return Err(expected());
        }
        if fraction.len() > 4 {
            return Err(format!(
                "expected a probability with at most 4 decimals, found {text:?}"
            ));
        }
        // "12.5%" is 125_000 ppm: the fraction padded to four digits, exactly.
        let padded = format!("{fraction:0<4}");
        let whole: u64 = whole.parse().unwrap_or(u64::MAX);
        let fraction: u64 = padded.parse().unwrap_or(0);
        whole.saturating_mul(10_000).saturating_add(fraction)
    } else {
        return Err(expected());
    };
    match u32::try_from(ppm) {
        Ok(ppm) if ppm <= 1_000_000 => Ok(Prob(ppm)),
        _ => Err(format!(
            "expected a probability from 0% to 100%, found {text:?}"
        )),
    }
}

/// A latency distribution: `"5ms"` or a one-key table naming the form.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LatencyDe(pub Latency);

/// The table forms of a latency, read by serde so that an unknown form is located at its
/// key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LatencyTable {
    constant: Option<Dur>,
    uniform: Option<Vec<Dur>>,
    exponential: Option<Dur>,
    normal: Option<Vec<Dur>>,
}

const LATENCY_FORMS: &str = "\"5ms\", { constant = \"5ms\" }, { uniform = [\"1ms\", \"5ms\"] }, \
                             { exponential = \"5ms\" } or { normal = [\"5ms\", \"1ms\"] }";

impl LatencyTable {
    fn into_latency(self) -> Result<Latency, String> {
        let pair = |what: &str, v: Vec<Dur>| match v.as_slice() {
            [a, b] => Ok((a.0, b.0)),
            _ => Err(format!(
                "expected `{what}` to hold two durations, found {}",
                v.len()
            )),
        };
        let latency = match (self.constant, self.uniform, self.exponential, self.normal) {
            (Some(c), None, None, None) => Latency::Constant(c.0),
            (None, Some(u), None, None) => {
                let (min, max) = pair("uniform = [min, max]", u)?;
                if min > max {
                    let message = format!("the uniform latency range {min}..{max} runs backwards");
                    return Err(message);
                }
                Latency::Uniform(min, max)
            }
            (None, None, Some(e), None) => Latency::Exponential(e.0),
            (None, None, None, Some(n)) => {
                let (mean, stddev) = pair("normal = [mean, stddev]", n)?;
                Latency::Normal(mean, stddev)
            }
            _ => {
                return Err(format!(
                    "expected exactly one latency form: {LATENCY_FORMS}"
                ))
            }
        };
        Ok(latency)
    }
}

impl<'de> Deserialize<'de> for LatencyDe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LatencyDe;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a latency: {LATENCY_FORMS}")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<LatencyDe, E> {
                let span = parse_span(s).map_err(E::custom)?;
                Ok(LatencyDe(Latency::Constant(span)))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<LatencyDe, A::Error> {
                let table = LatencyTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                table
                    .into_latency()
                    .map(LatencyDe)
                    .map_err(de::Error::custom)
            }
        }
        d.deserialize_any(V)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_are_exact_parts_per_million() {
        let ppm = |s| parse_probability(s).map(|p| p.0);
        assert_eq!(ppm("0%"), Ok(0));
        assert_eq!(ppm("12.5%"), Ok(125_000));
        assert_eq!(ppm("0.0001%"), Ok(1));
        assert_eq!(ppm("100%"), Ok(1_000_000));
        assert_eq!(ppm("250ppm"), Ok(250));
        assert_eq!(
            ppm("120%"),
            Err("expected a probability from 0% to 100%, found \"120%\"".into())
        );
        assert!(ppm("0.00001%").unwrap_err().contains("at most 4 decimals"));
        for bad in [
            "",
            "%",
            "5",
            "-5%",
            "5.%",
            "1e3%",
            "ppm",
            "99999999999999999999%",
        ] {
            assert!(ppm(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn signed_durations_take_a_sign() {
        let us = |s| parse_signed_span(s).map(|d| d.0);
        assert_eq!(us("-1.5s"), Ok(-1_500_000));
        assert_eq!(us("+50ms"), Ok(50_000));
        assert_eq!(us("50ms"), Ok(50_000));
        assert!(us("--1s").is_err());
        assert!(us("-").is_err());
    }
}
