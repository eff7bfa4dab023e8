//! The leaf values of a scenario file, read with their spans: integers, durations,
//! probabilities, latency distributions and node names. They depend on nothing else of the
//! scenario layer but the model's plain types, so the raw shape, the validator and the fault
//! kinds can all use them.

use super::model::Latency;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use simkv_protocols::params::{parse_span, parse_span_range};
use simkv_protocols::{Span, SpanRange};
use std::fmt;

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

/// A number, integer or not (`12`, `4.5`), for limits a scenario states as a ratio.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Number(pub f64);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Number;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number such as 12 or 4.5")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Number, E> {
                Ok(Number(v))
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
