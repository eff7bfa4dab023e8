//! `[network]` and `[[clock]]`: how messages travel, link by link, and how each clock runs.

use super::{Checked, Validator};
use crate::scenario::model::{ClockSetting, Latency, LinkBehaviour, LinkOverride, Network};
use crate::scenario::raw::{RawClock, RawNetwork};
use simkv_protocols::{Span, SpanRange};

const DEFAULT_LATENCY: Latency = Latency::Uniform(Span::millis(1), Span::millis(5));
const DEFAULT_REORDER_DELAY: SpanRange = SpanRange {
    min: Span::millis(10),
    max: Span::millis(50),
};

impl Validator<'_> {
    pub(super) fn network(&self, raw: RawNetwork) -> Checked<Network> {
        let default = LinkBehaviour {
            latency: raw.latency.map_or(DEFAULT_LATENCY, |l| l.0),
            drop_ppm: raw.drop.map_or(0, |p| p.0),
            duplicate_ppm: raw.duplicate.map_or(0, |p| p.0),
            reorder_ppm: raw.reorder.map_or(0, |p| p.0),
            reorder_delay: raw.reorder_delay.map_or(DEFAULT_REORDER_DELAY, |d| d.0),
        };
        // Clients stand in for the outside world: their links only delay.
        let client = LinkBehaviour {
            latency: raw.client_latency.map_or(default.latency, |l| l.0),
            drop_ppm: 0,
            duplicate_ppm: 0,
            reorder_ppm: 0,
            reorder_delay: default.reorder_delay,
        };
        let mut links = Vec::new();
        for link in &raw.links {
            let from = self.node(&link.from)?;
            let to = self.node(&link.to)?;
            if from == to {
                let message =
                    format!("expected a link between two different nodes, found {from} to {to}");
                return self.fail(link.to.span(), message);
            }
            let behaviour = LinkBehaviour {
                latency: link.latency.map_or(default.latency, |l| l.0),
                drop_ppm: link.drop.map_or(default.drop_ppm, |p| p.0),
                duplicate_ppm: link.duplicate.map_or(default.duplicate_ppm, |p| p.0),
                reorder_ppm: link.reorder.map_or(default.reorder_ppm, |p| p.0),
                reorder_delay: link.reorder_delay.map_or(default.reorder_delay, |d| d.0),
            };
            links.push(LinkOverride {
                from,
                to,
                behaviour,
            });
            if link.both_ways {
                let (from, to) = (to, from);
                links.push(LinkOverride {
                    from,
                    to,
                    behaviour,
                });
            }
        }
        Ok(Network {
            default,
            client,
            links,
            fifo: raw.fifo.unwrap_or(true),
        })
    }

    pub(super) fn clocks(&self, raw: &[RawClock]) -> Checked<Vec<ClockSetting>> {
        let mut clocks: Vec<ClockSetting> = Vec::new();
        for clock in raw {
            let node = self.node(&clock.node)?;
            if clocks.iter().any(|c| c.node == node) {
                let message = format!("expected one [[clock]] per node, found {node} again");
                return self.fail(clock.node.span(), message);
            }
            let drift_ppm = match &clock.drift_ppm {
                Some(d) => self.drift_ppm(d)?,
                None => 0,
            };
            let offset_us = clock.offset.map_or(0, |o| o.0);
            clocks.push(ClockSetting {
                node,
                offset_us,
                drift_ppm,
            });
        }
        Ok(clocks)
    }
}
