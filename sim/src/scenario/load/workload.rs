//! `[workload]`: the clients, their keys, their mix of operations and how often they act.

use super::{Checked, Validator};
use crate::scenario::explain::span_text;
use crate::scenario::model::{
    Arrival, Backoff, KeyDistribution, OpKind, Placement, Target, Workload,
};
use crate::scenario::raw::{RawBackoff, RawMix, RawWorkload};
use simkv_protocols::{Span, SpanRange};
use std::ops::Range;
use toml::Spanned;

/// The most clients a workload may have (and clients x in_flight): each is a history
/// process the checkers search over.
const MAX_CLIENTS: i64 = 10_000;
/// The most keys a workload may draw from: a zipf table holds one weight per key.
const MAX_KEYS: i64 = 1_000_000;
/// The largest open-loop arrival rate, per virtual second.
const MAX_RATE_PER_S: i64 = 10_000_000;
/// The most operations one `txn` may hold.
const MAX_TXN_OPS: i64 = 16;
/// Operations per `txn` unless the workload says.
const DEFAULT_TXN_OPS: u32 = 3;
/// The span of a mix's `txn` weight (only called when it has one).
fn weight_span(m: &RawMix) -> Range<usize> {
    m.txn.as_ref().map_or(0..0, |w| w.span())
}

/// The largest weight of one operation kind in a mix (so that sums fit a `u32`).
const MAX_WEIGHT: i64 = 1_000_000;
const DEFAULT_CLIENTS: u32 = 5;
const DEFAULT_KEYS: u64 = 5;
const DEFAULT_THINK: Span = Span::millis(10);
const DEFAULT_TIMEOUT: Span = Span::secs(1);
/// Retries back off unless the workload says `backoff = "none"`: without it, an operation
/// invoked before a leader exists burns its retries in a few round trips.
pub(crate) const DEFAULT_BACKOFF: Backoff = Backoff::Exponential {
    base: Span::millis(10),
    max: Span::secs(1),
};
/// The largest `max_writes_per_key` (keys move on after this many writes).
const MAX_WRITES_PER_KEY: i64 = 1_000_000_000;
/// The most operations one client may keep in flight.
const MAX_IN_FLIGHT: i64 = 64;

impl Validator<'_> {
    pub(super) fn workload(&self, raw: RawWorkload) -> Checked<Workload> {
        let clients = match &raw.clients {
            Some(c) => {
                // With no client nothing is invoked, and every promise would hold vacuously.
                let what = "a number of clients (0 would test nothing)";
                self.int_in(c, 1, Some(MAX_CLIENTS), what)? as u32
            }
            None => DEFAULT_CLIENTS,
        };
        let keys = match &raw.keys {
            Some(k) => self.int_in(k, 1, Some(MAX_KEYS), "a number of keys")? as u64,
            None => DEFAULT_KEYS,
        };
        let arrival = match (raw.think, &raw.rate) {
            (Some(_), Some(rate)) => {
                let message = "expected either `think` (closed loop) or `rate` (open loop), \
                               found both";
                return self.fail(rate.span(), message);
            }
            (None, Some(rate)) => {
                let rate = self.int_in(rate, 1, Some(MAX_RATE_PER_S), "a rate per second")?;
                Arrival::OpenLoop {
                    rate_per_s: rate as u64,
                }
            }
            (think, None) => Arrival::ClosedLoop {
                think: think.map_or(SpanRange::exactly(DEFAULT_THINK), |t| t.0),
            },
        };
        let timeout = match &raw.timeout {
            Some(t) => self.positive(t, "a timeout")?,
            None => DEFAULT_TIMEOUT,
        };
        let in_flight = match &raw.in_flight {
            Some(k) => {
                let most = Some(MAX_IN_FLIGHT);
                let k = self.int_in(k, 1, most, "a number of operations in flight")?;
                if (clients as i64) * k > MAX_CLIENTS {
                    let message = format!(
                        "expected at most {MAX_CLIENTS} clients x in_flight (each slot is a \
                         history process), found {clients} x {k}"
                    );
                    return self.fail(raw.in_flight.as_ref().map_or(0..0, |s| s.span()), message);
                }
                k as u32
            }
            None => 1,
        };
        let start = match &raw.start {
            Some(t) => {
                let start = t.get_ref().0;
                if start >= self.duration {
                    let message = format!(
                        "expected a workload start before the end of the duration ({}), found {}",
                        span_text(self.duration),
                        span_text(start)
                    );
                    return self.fail(t.span(), message);
                }
                start
            }
            None => Span::ZERO,
        };
        Ok(Workload {
            clients,
            keys,
            key_distribution: raw
                .key_distribution
                .map_or(KeyDistribution::Uniform, |k| k.0),
            mix: self.mix(raw.mix.as_ref())?,
            arrival,
            timeout,
            target: raw.target.unwrap_or(Target::Random),
            quorum: match &raw.quorum {
                Some(q) => Some(self.int_in(q, 1, Some(255), "a quorum")? as u8),
                None => None,
            },
            retries: match &raw.retries {
                Some(r) => self.int_in(r, 0, Some(100), "a number of retries")? as u32,
                None => 0,
            },
            txn_ops: match &raw.txn_ops {
                Some(n) => {
                    let most = Some(MAX_TXN_OPS);
                    self.int_in(n, 1, most, "a number of operations per txn")? as u32
                }
                None => DEFAULT_TXN_OPS,
            },
            backoff: match &raw.backoff {
                Some(b) => self.backoff(b)?,
                None => DEFAULT_BACKOFF,
            },
            in_flight,
            placement: raw.placement.unwrap_or(Placement::Outside),
            max_writes_per_key: match &raw.max_writes_per_key {
                Some(n) => {
                    let most = Some(MAX_WRITES_PER_KEY);
                    Some(self.int_in(n, 1, most, "a number of writes per key")? as u64)
                }
                None => None,
            },
            max_ops: match &raw.max_ops {
                Some(n) => Some(self.int_in(n, 1, None, "a number of operations")? as u64),
                None => None,
            },
            start,
            contexts: match &raw.contexts {
                Some(c) if *c.get_ref() => {
                    self.takes_contexts(c.span(), raw.mix.as_ref())?;
                    true
                }
                _ => false,
            },
            script: Vec::new(),
        })
    }

    /// A workload with `contexts = true` needs a protocol that takes causal contexts, and a
    /// mix of gets, puts and deletes: a context write names the whole new value (Dynamo's
    /// `put(key, context, object)`, section 4.1), where an update, cas or append needs the
    /// value the coordinator reads, and a txn spans keys.
    fn takes_contexts(&self, at: Range<usize>, mix: Option<&Spanned<RawMix>>) -> Checked<()> {
        let lacking = "which does not take causal contexts";
        self.needs(
            at,
            "`contexts`",
            |p| p.contexts,
            lacking,
            "protocols that do",
        )?;
        let Some(mix) = mix else {
            return Ok(());
        };
        let m = mix.get_ref();
        for (name, weight) in [
            ("update", &m.update),
            ("cas", &m.cas),
            ("append", &m.append),
            ("txn", &m.txn),
        ] {
            let Some(weight) = weight else { continue };
            if self.int_in(weight, 0, Some(MAX_WEIGHT), "a weight")? > 0 {
                let message = format!(
                    "expected no `{name}` with `contexts = true`: a write with a context names \
                     its whole new value (Dynamo's put(key, context, object)), so the mix may \
                     have `get`, `put` and `delete`"
                );
                return self.fail(weight.span(), message);
            }
        }
        Ok(())
    }

    fn backoff(&self, raw: &Spanned<RawBackoff>) -> Checked<Backoff> {
        match *raw.get_ref() {
            RawBackoff::None => Ok(Backoff::None),
            RawBackoff::Exponential { base, max } => {
                let (base, max) = (base.0, max.0);
                if base == Span::ZERO {
                    let message = "expected a backoff base longer than 0s (`backoff = \"none\"` \
                                   retries at once)";
                    return self.fail(raw.span(), message);
                }
                if base > max {
                    let message = format!(
                        "expected a backoff base no longer than its max, found {} > {}",
                        span_text(base),
                        span_text(max)
                    );
                    return self.fail(raw.span(), message);
                }
                Ok(Backoff::Exponential { base, max })
            }
        }
    }

    pub(super) fn mix(&self, raw: Option<&Spanned<RawMix>>) -> Checked<Vec<(OpKind, u32)>> {
        let Some(raw) = raw else {
            return Ok(vec![(OpKind::Get, 50), (OpKind::Put, 50)]);
        };
        let m = raw.get_ref();
        let weights = [
            (OpKind::Get, &m.get),
            (OpKind::Put, &m.put),
            (OpKind::Update, &m.update),
            (OpKind::Delete, &m.delete),
            (OpKind::Cas, &m.cas),
            (OpKind::Append, &m.append),
            (OpKind::Txn, &m.txn),
        ];
        let mut mix = Vec::new();
        for (kind, weight) in weights {
            let Some(weight) = weight else { continue };
            let weight = self.int_in(weight, 0, Some(MAX_WEIGHT), "a weight")?;
            if weight > 0 {
                mix.push((kind, weight as u32));
            }
            if kind == OpKind::Txn && weight > 0 {
                self.serves_transactions(weight_span(m))?;
            }
        }
        if mix.is_empty() {
            let message = "expected at least one positive weight among `get`, `put`, `update`, \
                           `delete`, `cas`, `append`, `txn`";
            return self.fail(raw.span(), message);
        }
        Ok(mix)
    }

    /// A workload with `txn` needs a protocol that serves transactions.
    pub(super) fn serves_transactions(&self, at: Range<usize>) -> Checked<()> {
        let lacking = "which does not serve multi-key transactions";
        self.needs(
            at,
            "`txn`",
            |p| p.transactions,
            lacking,
            "protocols that do",
        )
    }
}
