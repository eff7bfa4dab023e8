//! Protocol parameters: declared by each protocol, set by scenarios, validated by the engine.
//!
//! A protocol declares its parameters once with [`protocol_params!`](crate::protocol_params):
//! the declaration yields the specs the loader validates against and `simkv list` prints
//! ([`ParamSet::SPECS`]), and a struct with one typed field per parameter that the protocol
//! reads (`params.read_quorum`): a misspelt parameter in protocol code is a compile error.

use crate::time::{Span, SpanRange};
use std::collections::BTreeMap;
use std::fmt;

/// The type of a parameter, which decides how its text is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// A duration: `50ms`, `1.5s`, `200us`.
    Span,
    /// A duration or a range of durations: `150ms..300ms`.
    SpanRange,
    /// A non-negative integer.
    Int,
    /// `true` or `false`.
    Bool,
}

/// One parameter a protocol accepts.
#[derive(Clone, Copy, Debug)]
pub struct ParamSpec {
    /// Its name in a scenario's `[cluster] params` table.
    pub name: &'static str,
    /// How its value is read.
    pub kind: ParamKind,
    /// Its value when a scenario does not set it, spelled as a scenario would.
    pub default: &'static str,
    /// What it changes, in one line.
    pub description: &'static str,
}

/// A parameter's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParamValue {
    /// See [`ParamKind::Span`].
    Span(Span),
    /// See [`ParamKind::SpanRange`].
    SpanRange(SpanRange),
    /// See [`ParamKind::Int`].
    Int(u64),
    /// See [`ParamKind::Bool`].
    Bool(bool),
}

/// Every parameter of one protocol, resolved: each declared name has a value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params {
    values: BTreeMap<&'static str, ParamValue>,
}

impl ParamKind {
    /// What a value of this kind looks like, for error messages.
    pub fn expected(self) -> &'static str {
        match self {
            ParamKind::Span => "a duration such as \"50ms\"",
            ParamKind::SpanRange => "a duration or a range such as \"150ms..300ms\"",
            ParamKind::Int => "a non-negative integer",
            ParamKind::Bool => "true or false",
        }
    }
}

impl ParamValue {
    /// Reads `text` as a value of `kind`; the error says what was expected.
    pub fn parse(kind: ParamKind, text: &str) -> Result<ParamValue, String> {
        let text = text.trim();
        let expected = || format!("expected {}, found {text:?}", kind.expected());
        match kind {
            ParamKind::Span => parse_span(text).map(ParamValue::Span),
            ParamKind::SpanRange => parse_span_range(text).map(ParamValue::SpanRange),
            ParamKind::Int => text.parse().map(ParamValue::Int).map_err(|_| expected()),
            ParamKind::Bool => text.parse().map(ParamValue::Bool).map_err(|_| expected()),
        }
    }
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Span(s) => write!(f, "{s}"),
            ParamValue::SpanRange(r) => write!(f, "{r}"),
            ParamValue::Int(i) => write!(f, "{i}"),
            ParamValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// Reads a duration: a decimal number followed by `us`, `ms`, `s` or `m`.
pub fn parse_span(text: &str) -> Result<Span, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale: u64 = match unit.trim() {
        "us" | "µs" => 1,
        "ms" => 1_000,
        "s" => 1_000_000,
        "m" | "min" => 60_000_000,
        _ => {
            return Err(format!(
                "expected a duration such as \"50ms\" or \"1.5s\" (units us, ms, s, m), \
                 found {text:?}"
            ))
        }
    };
    let bad = || format!("expected a number before the unit in {text:?}");
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return Err(bad());
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    // Integer arithmetic for the fraction: "1.5s" is exactly 1_500_000us.
    let mut micros = whole.checked_mul(scale).ok_or_else(bad)?;
    let mut place = scale;
    for digit in fraction.chars() {
        let d = digit.to_digit(10).ok_or_else(bad)? as u64;
        place /= 10;
        if place == 0 && d != 0 {
            return Err(format!("{text:?} is finer than a microsecond"));
        }
        micros = micros.checked_add(d * place).ok_or_else(bad)?;
    }
    Ok(Span(micros))
}

/// Reads a duration or a range `min..max` of durations.
pub fn parse_span_range(text: &str) -> Result<SpanRange, String> {
    match text.split_once("..") {
        None => parse_span(text).map(SpanRange::exactly),
        Some((lo, hi)) => {
            let min = parse_span(lo)?;
            let max = parse_span(hi.trim_start_matches('='))?;
            if min > max {
                return Err(format!("the range {text:?} ends before it starts"));
            }
            Ok(SpanRange { min, max })
        }
    }
}

impl Params {
    /// Every parameter at its default.
    ///
    /// # Panics
    /// If a protocol's own default does not parse: a programming error, caught by the tests.
    pub fn defaults(specs: &[ParamSpec]) -> Params {
        let mut params = Params::default();
        for spec in specs {
            let value = ParamValue::parse(spec.kind, spec.default)
                .unwrap_or_else(|e| panic!("default of parameter {}: {e}", spec.name));
            params.values.insert(spec.name, value);
        }
        params
    }

    /// Sets one parameter (the engine has checked its name and kind).
    pub fn set(&mut self, name: &'static str, value: ParamValue) {
        self.values.insert(name, value);
    }

    /// Every parameter, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &ParamValue)> {
        self.values.iter().map(|(k, v)| (*k, v))
    }

    /// One parameter's value, for [`ParamSet::from_params`] (which names only declared
    /// parameters).
    ///
    /// # Panics
    /// If `name` was not declared: [`protocol_params!`](crate::protocol_params) makes that a
    /// programming error no scenario can cause.
    pub fn value(&self, name: &str) -> &ParamValue {
        self.values
            .get(name)
            .unwrap_or_else(|| panic!("protocol asked for undeclared parameter {name}"))
    }
}

/// What a protocol's own parameter check ([`ParamCheck`]) sees besides the parameters.
#[derive(Clone, Copy, Debug)]
pub struct ParamContext<'a> {
    /// The cluster's size.
    pub nodes: u16,
    /// The planted bugs switched on: a bug may be what breaks a rule on purpose.
    pub bugs: &'a [&'static str],
}

/// A parameter a protocol's check refused, and why: one line saying what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamProblem {
    /// The parameter to point at.
    pub param: &'static str,
    /// What was expected and what was found.
    pub message: String,
}

/// A protocol's check of its resolved parameters, against each other and the cluster
/// (timers that can fire, timeouts longer than what they wait for, quorum arithmetic its
/// promise needs). The loader runs it and locates a refusal at the parameter.
pub type ParamCheck = fn(&Params, ParamContext<'_>) -> Result<(), ParamProblem>;

/// The check of a protocol whose parameters need none.
pub fn no_param_check(_: &Params, _: ParamContext<'_>) -> Result<(), ParamProblem> {
    Ok(())
}

/// The shortest timer a protocol may arm over and over: a shorter one floods the run with
/// events without modelling anything a real network would do.
pub const MIN_TIMER: Span = Span::millis(1);

/// A duration parameter as a span (the shortest of a range).
pub fn span_of(params: &Params, name: &'static str) -> Span {
    Span::from_value(params.value(name))
}

/// Refuses any of `names` (duration parameters) shorter than [`MIN_TIMER`].
pub fn timers_at_least_min(params: &Params, names: &[&'static str]) -> Result<(), ParamProblem> {
    for &name in names {
        let span = span_of(params, name);
        if span < MIN_TIMER {
            return Err(ParamProblem {
                param: name,
                message: format!("expected a timer of at least {MIN_TIMER}, found {span}"),
            });
        }
    }
    Ok(())
}

/// Refuses `longer` unless it is longer than `shorter` (both duration parameters), saying
/// `why`.
pub fn longer_than(
    params: &Params,
    longer: &'static str,
    shorter: &'static str,
    why: &str,
) -> Result<(), ParamProblem> {
    let (l, s) = (span_of(params, longer), span_of(params, shorter));
    if l > s {
        return Ok(());
    }
    Err(ParamProblem {
        param: longer,
        message: format!("expected {longer} ({l}) longer than {shorter} ({s}): {why}"),
    })
}

/// An integer parameter.
pub fn int_of(params: &Params, name: &'static str) -> u64 {
    u64::from_value(params.value(name))
}

/// A Rust type a parameter can have, and how its [`ParamValue`] reads as it.
pub trait ParamType: Sized {
    /// The kind of text a scenario gives for it.
    const KIND: ParamKind;
    /// The value as this type (the loader has checked its kind).
    fn from_value(value: &ParamValue) -> Self;
}

impl ParamType for Span {
    const KIND: ParamKind = ParamKind::Span;
    fn from_value(value: &ParamValue) -> Span {
        match value {
            ParamValue::Span(s) => *s,
            ParamValue::SpanRange(r) => r.min,
            other => panic!("parameter is {other:?}, not a duration"),
        }
    }
}

impl ParamType for SpanRange {
    const KIND: ParamKind = ParamKind::SpanRange;
    fn from_value(value: &ParamValue) -> SpanRange {
        match value {
            ParamValue::SpanRange(r) => *r,
            ParamValue::Span(s) => SpanRange::exactly(*s),
            other => panic!("parameter is {other:?}, not a range"),
        }
    }
}

impl ParamType for u64 {
    const KIND: ParamKind = ParamKind::Int;
    fn from_value(value: &ParamValue) -> u64 {
        match value {
            ParamValue::Int(i) => *i,
            other => panic!("parameter is {other:?}, not an integer"),
        }
    }
}

impl ParamType for bool {
    const KIND: ParamKind = ParamKind::Bool;
    fn from_value(value: &ParamValue) -> bool {
        match value {
            ParamValue::Bool(b) => *b,
            other => panic!("parameter is {other:?}, not a boolean"),
        }
    }
}

/// A protocol's parameters as a typed struct.
pub trait ParamSet: Sized {
    /// Every parameter, in the order `simkv list` prints them.
    const SPECS: &'static [ParamSpec];

    /// The typed values of `params` (resolved over [`ParamSet::SPECS`]).
    fn from_params(params: &Params) -> Self;

    /// Every parameter at its default.
    fn defaults() -> Self {
        Self::from_params(&Params::defaults(Self::SPECS))
    }
}

/// Declares a protocol's parameters: a struct with one typed field per parameter (its name in
/// a scenario is the field's name) and its [`ParamSet`] impl. Each parameter is
/// `name: Type = "default as a scenario spells it", "what it changes";` where `Type` is
/// [`Span`], [`SpanRange`], `u64` or `bool`.
///
/// ```
/// use simkv_protocols::{ParamSet, Span};
/// simkv_protocols::protocol_params! {
///     /// The parameters of an example protocol.
///     pub struct Settings {
///         heartbeat: Span = "50ms", "interval between heartbeats";
///         r: u64 = "2", "read quorum";
///     }
/// }
/// assert_eq!(Settings::defaults().heartbeat, Span::millis(50));
/// assert_eq!(Settings::SPECS[1].name, "r");
/// ```
#[macro_export]
macro_rules! protocol_params {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $field:ident : $ty:ty = $default:literal, $description:literal; )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        $vis struct $name {
            $( #[doc = $description] pub $field: $ty, )*
        }

        impl $crate::params::ParamSet for $name {
            const SPECS: &'static [$crate::params::ParamSpec] = &[
                $( $crate::params::ParamSpec {
                    name: stringify!($field),
                    kind: <$ty as $crate::params::ParamType>::KIND,
                    default: $default,
                    description: $description,
                }, )*
            ];

            fn from_params(params: &$crate::params::Params) -> Self {
                $name {
                    $( $field: <$ty as $crate::params::ParamType>::from_value(
                        params.value(stringify!($field)),
                    ), )*
                }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_exactly_with_integer_arithmetic() {
        assert_eq!(parse_span("1.5s"), Ok(Span(1_500_000)));
        assert_eq!(parse_span("250ms"), Ok(Span(250_000)));
        assert_eq!(parse_span("0.001ms"), Ok(Span(1)));
        assert_eq!(parse_span("7us"), Ok(Span(7)));
        assert_eq!(parse_span("2m"), Ok(Span(120_000_000)));
        assert!(parse_span("10").is_err());
        assert!(parse_span("ms").is_err());
        assert!(parse_span("0.0001ms").is_err());
        assert!(parse_span("1.2.3s").is_err());
    }

    #[test]
    fn ranges_must_not_run_backwards() {
        let r = parse_span_range("150ms..300ms").unwrap();
        assert_eq!((r.min, r.max), (Span::millis(150), Span::millis(300)));
        assert!(parse_span_range("3s..1s").is_err());
        assert_eq!(
            parse_span_range("5ms").unwrap(),
            SpanRange::exactly(Span::millis(5))
        );
    }
}
