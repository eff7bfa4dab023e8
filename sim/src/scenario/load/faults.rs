//! `[[fault]]` and `[nemesis]`: scripted faults, each checked by its kind, and the random
//! nemesis.

use super::{list, Checked, Validator};
use crate::scenario::explain::span_text;
use crate::scenario::fault_kinds::{RawFault, FAULT_ACTIONS, NEMESIS_KINDS};
use crate::scenario::model::{Fault, FaultOrigin, Nemesis, ScheduledFault};
use crate::scenario::raw::RawNemesis;
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
const DEFAULT_CLOCK_JUMP_MAX: Span = Span::secs(2);

impl Validator<'_> {
    pub(super) fn faults(&self, raw: &[Spanned<RawFault>]) -> Checked<Vec<ScheduledFault>> {
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
                if_none: fault
                    .get_ref()
                    .if_none
                    .as_ref()
                    .map(|i| *i.get_ref())
                    .unwrap_or_default(),
            });
        }
        // Stable: faults at the same time keep the file's order.
        faults.sort_by_key(|f| f.at);
        Ok(faults)
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
