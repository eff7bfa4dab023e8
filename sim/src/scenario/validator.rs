//! The validator's state and its generic checks: a value in range, a node name, a
//! one-line text. Sections of a scenario (`load.rs`, `load/`) and the fault kinds
//! (`fault_kinds/`) check themselves with it.

use super::diagnostic::LoadError;
use super::overrides::{Overrides, Prepared};
use super::values::{Dur, Int, NodeName};
use simkv_protocols::{NodeId, ProtocolInfo, ProtocolKind, Span};
use std::ops::Range;
use toml::Spanned;

/// The largest clock drift a scenario may set, either way, in parts per million: a clock
/// from half to one and a half times true speed. The engine needs a clock that moves
/// forward (below 1,000,000 slow), and a slower one would stretch a timer without bound.
pub(crate) const MAX_DRIFT_PPM: i64 = 500_000;

/// Checks a raw scenario against itself, the protocols and the overrides.
pub(crate) struct Validator<'a> {
    /// The scenario's text, after `--set` overrides.
    pub(crate) prepared: &'a Prepared<'a>,
    /// The command line's overrides.
    pub(crate) overrides: &'a Overrides,
    /// The protocols a scenario may name.
    pub(crate) protocols: &'a [(ProtocolKind, ProtocolInfo)],
    /// The cluster's size, once known: node names are checked against it.
    pub(crate) nodes: u16,
    /// The scenario's duration, once known: fault times are checked against it.
    pub(crate) duration: Span,
    /// The chosen protocol, once known: a workload's `txn` needs one that serves them.
    pub(crate) protocol: Option<ProtocolInfo>,
}

/// A value checked, or where and why it was refused.
pub(crate) type Checked<T> = Result<T, LoadError>;

/// `a`, `b`, `c` for "expected one of" lists.
pub(crate) fn list<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> String {
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

    pub(crate) fn one_line(&self, text: &Spanned<String>, what: &str) -> Checked<String> {
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

    pub(crate) fn positive(&self, value: &Spanned<Dur>, what: &str) -> Checked<Span> {
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
}
