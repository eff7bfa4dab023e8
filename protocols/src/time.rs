//! Virtual time. The engine owns it; protocols receive it as a value.

use serde::Serialize;
use std::fmt;
use std::ops::{Add, AddAssign, Sub};

/// An instant in virtual time, in microseconds since the run started (or, as a node sees it
/// through its own possibly skewed clock, since its clock's epoch).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Time(pub u64);

/// A length of virtual time in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Span(pub u64);

/// An inclusive range of spans; the engine draws a timer's delay uniformly from it with the
/// node's own seeded stream (Raft's randomized election timeout is the classic user).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct SpanRange {
    /// The shortest delay.
    pub min: Span,
    /// The longest delay (inclusive).
    pub max: Span,
}

impl Time {
    /// The start of the run.
    pub const ZERO: Time = Time(0);
    /// Microseconds since the epoch.
    pub fn as_micros(self) -> u64 {
        self.0
    }
    /// The span from `earlier` to `self`, or zero when `earlier` is later.
    pub fn since(self, earlier: Time) -> Span {
        Span(self.0.saturating_sub(earlier.0))
    }
}

impl Span {
    /// No time at all.
    pub const ZERO: Span = Span(0);
    /// A span of `us` microseconds.
    pub const fn micros(us: u64) -> Span {
        Span(us)
    }
    /// A span of `ms` milliseconds.
    pub const fn millis(ms: u64) -> Span {
        Span(ms * 1_000)
    }
    /// A span of `s` seconds.
    pub const fn secs(s: u64) -> Span {
        Span(s * 1_000_000)
    }
    /// Microseconds in this span.
    pub fn as_micros(self) -> u64 {
        self.0
    }
    /// This span in (fractional) milliseconds, for reports.
    pub fn as_millis_f64(self) -> f64 {
        self.0 as f64 / 1_000.0
    }
}

impl SpanRange {
    /// A range holding exactly one span.
    pub const fn exactly(span: Span) -> SpanRange {
        SpanRange {
            min: span,
            max: span,
        }
    }
}

impl From<Span> for SpanRange {
    fn from(span: Span) -> Self {
        SpanRange::exactly(span)
    }
}

impl Add<Span> for Time {
    type Output = Time;
    fn add(self, rhs: Span) -> Time {
        Time(self.0.saturating_add(rhs.0))
    }
}

impl AddAssign<Span> for Time {
    fn add_assign(&mut self, rhs: Span) {
        *self = *self + rhs;
    }
}

impl Sub<Time> for Time {
    type Output = Span;
    fn sub(self, rhs: Time) -> Span {
        self.since(rhs)
    }
}

impl Add for Span {
    type Output = Span;
    fn add(self, rhs: Span) -> Span {
        Span(self.0.saturating_add(rhs.0))
    }
}

/// Formats a number of microseconds the way scenarios spell durations: `1.5s`, `250ms`, `40us`.
pub fn format_micros(us: u64) -> String {
    if us == 0 {
        "0s".to_string()
    } else if us % 1_000_000 == 0 {
        format!("{}s", us / 1_000_000)
    } else if us >= 1_000_000 {
        format!("{:.3}s", us as f64 / 1e6)
    } else if us % 1_000 == 0 {
        format!("{}ms", us / 1_000)
    } else if us >= 1_000 {
        format!("{:.3}ms", us as f64 / 1e3)
    } else {
        format!("{us}us")
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_micros(self.0))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_micros(self.0))
    }
}

impl fmt::Display for SpanRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.min == self.max {
            write!(f, "{}", self.min)
        } else {
            write!(f, "{}..{}", self.min, self.max)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_format_as_scenarios_spell_them() {
        assert_eq!(format_micros(0), "0s");
        assert_eq!(format_micros(2_000_000), "2s");
        assert_eq!(format_micros(1_500_000), "1.500s");
        assert_eq!(format_micros(250_000), "250ms");
        assert_eq!(format_micros(40), "40us");
    }

    #[test]
    fn time_arithmetic_saturates_instead_of_wrapping() {
        assert_eq!(Time(5).since(Time(9)), Span::ZERO);
        assert_eq!(Time(u64::MAX) + Span(1), Time(u64::MAX));
    }
}
