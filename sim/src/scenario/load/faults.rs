//! `[[fault]]` and `[[nemesis]]`: scripted faults, each checked by its kind (with their
//! ranges of times and their `for`), and the random nemeses.

use super::{list, Checked, Validator};
use crate::scenario::explain::span_text;
use crate::scenario::fault_kinds::{NemesisKind, RawFault, FAULT_ACTIONS, NEMESIS_KINDS};
use crate::scenario::model::{Fault, FaultOrigin, Nemesis, ScheduledFault};
use crate::scenario::raw::{Int, RawNemesis};
use simkv_protocols::{Span, SpanRange, Time};
use toml::Spanned;

const DEFAULT_NEMESIS_INTERVAL: SpanRange = SpanRange {
    min: Span::secs(2),
    max: Span::secs(5),
};
const DEFAULT_NEMESIS_FAULT: SpanRange = SpanRange {
    min: Span::secs(1),
    max: Span::secs(4),
};
/// The shortest time between a nemesis's faults, and the shortest fault it may draw.
pub(crate) const MIN_NEMESIS_INTERVAL: Span = Span::millis(1);
const DEFAULT_CLOCK_JUMP_MAX: Span = Span::secs(2);
/// A clock-drift nemesis draws rates up to 20% fast or slow: a clock without NTP at its worst.
const DEFAULT_CLOCK_DRIFT_MAX: u64 = 200_000;
/// The actions `for` may undo, for its error message.
const UNDOABLE: &[&str] = &[
    "partition",
    "isolate",
    "one_way",
    "freeze",
    "pause",
    "crash",
    "clock_drift",
];

impl Validator<'_> {
    pub(super) fn faults(&self, raw: &[Spanned<RawFault>]) -> Checked<Vec<ScheduledFault>> {
        let mut faults = Vec::with_capacity(raw.len());
        for fault in raw {
            let at = &fault.get_ref().at;
            let SpanRange { min, max } = at.get_ref().0;
            if max >= self.duration {
                let message = format!(
                    "expected a fault time before the duration ({}), found {}",
                    span_text(self.duration),
                    span_text(max)
                );
                return self.fail(at.span(), message);
            }
            let action = self.fault_action(fault)?;
            let undo_after = self.undo_after(fault.get_ref(), &action)?;
            faults.push(ScheduledFault {
                at: Time::ZERO + min,
                fault: action,
                origin: FaultOrigin::Scripted(self.prepared.origin(at.span())),
                if_none: fault
                    .get_ref()
                    .if_none
                    .as_ref()
                    .map(|i| *i.get_ref())
                    .unwrap_or_default(),
                at_latest: Time::ZERO + max,
                undo_after,
            });
        }
        // Stable: faults at the same time keep the file's order.
        faults.sort_by_key(|f| f.at);
        Ok(faults)
    }

    /// `for = "2s"` or `"1s..5s"`: only on a kind that has an undo, and longer than 0s.
    fn undo_after(&self, raw: &RawFault, action: &Fault) -> Checked<Option<SpanRange>> {
        let Some(length) = &raw.undo_after else {
            return Ok(None);
        };
        if action.undo().is_none() {
            let message = format!(
                "expected `for` only on a fault that can be undone ({}), found `{}`",
                list(UNDOABLE),
                raw.actions().join("`, `")
            );
            return self.fail(length.span(), message);
        }
        let range = length.get_ref().0;
        if range.min == Span::ZERO {
            return self.fail(length.span(), "expected a `for` longer than 0s");
        }
        Ok(Some(range))
    }

    /// The one action of a `[[fault]]`, checked by its kind.
    pub(super) fn fault_action(&self, fault: &Spanned<RawFault>) -> Checked<Fault> {
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

    pub(super) fn nemesis(&self, raw: RawNemesis) -> Checked<Nemesis> {
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
            if k == NemesisKind::Join {
                self.supports_membership(kind.span(), "`membership` nemesis")?;
            }
            kinds.push(k);
        }
        let interval = match &raw.interval {
            Some(i) if i.get_ref().0.min < MIN_NEMESIS_INTERVAL => {
                let message = format!(
                    "expected a nemesis interval of at least {} (each draw is a fault and its \
                     undo), found {}",
                    span_text(MIN_NEMESIS_INTERVAL),
                    span_text(i.get_ref().0.min)
                );
                return self.fail(i.span(), message);
            }
            Some(i) => i.get_ref().0,
            None => DEFAULT_NEMESIS_INTERVAL,
        };
        let duration = match &raw.fault_duration {
            Some(d) if d.get_ref().0.min < MIN_NEMESIS_INTERVAL => {
                let message = format!(
                    "expected every fault to last at least {}",
                    span_text(MIN_NEMESIS_INTERVAL)
                );
                return self.fail(d.span(), message);
            }
            Some(d) => d.get_ref().0,
            None => DEFAULT_NEMESIS_FAULT,
        };
        let (start, stop) = self.nemesis_window(&raw)?;
        let clock_jump_max = match &raw.clock_jump_max {
            Some(j) => self.positive(j, "a largest clock jump")?,
            None => DEFAULT_CLOCK_JUMP_MAX,
        };
        let clock_drift_max = match &raw.clock_drift_max {
            Some(d) => {
                let most = Some(crate::scenario::validator::MAX_DRIFT_PPM);
                self.int_in(d, 1, most, "a largest drift in ppm")? as u64
            }
            None => DEFAULT_CLOCK_DRIFT_MAX,
        };
        let max_down = match &raw.max_down {
            Some(m) => Some(self.max_down(m)?),
            None => None,
        };
        let on_role = match &raw.on_role {
            Some(d) if raw.targets.is_empty() => {
                let message =
                    "expected `targets` with `on_role`: only aimed faults wait for a role";
                return self.fail(d.span(), message);
            }
            Some(d) => Some(self.on_role(d)?),
            None => None,
        };
        Ok(Nemesis {
            kinds,
            interval,
            duration,
            start,
            stop,
            clock_jump_max,
            clock_drift_max,
            max_down,
            targets: raw
                .targets
                .iter()
                .map(|t| self.targets(t))
                .collect::<Checked<Vec<_>>>()?,
            on_role,
        })
    }

    /// `max_down`: from 0 to the cluster's size.
    fn max_down(&self, raw: &Spanned<Int>) -> Checked<u16> {
        let what = "a bound on nodes down at once (max_down), at most the cluster's size,";
        Ok(self.int_in(raw, 0, Some(i64::from(self.nodes)), what)? as u16)
    }

    /// `start < stop <= duration`.
    pub(super) fn nemesis_window(&self, raw: &RawNemesis) -> Checked<(Time, Time)> {
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
}

#[cfg(test)]
#[path = "faults_tests.rs"]
mod tests;
