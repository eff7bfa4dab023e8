//! `[network]` and `[[clock]]`: how messages travel, link by link, and how each clock runs.

use super::{Checked, Validator};
use crate::scenario::fault_kinds::link_change;
use crate::scenario::model::{ClockSetting, Latency, LinkBehaviour, LinkOverride, Network};
use crate::scenario::raw::{RawClock, RawNetwork};
use simkv_protocols::{Span, SpanRange};

/// A link the `[network]` table leaves unspecified.
const DEFAULT_LINK: LinkBehaviour = LinkBehaviour {
    latency: Latency::Uniform(Span::millis(1), Span::millis(5)),
    drop_ppm: 0,
    duplicate_ppm: 0,
    reorder_ppm: 0,
    reorder_delay: SpanRange {
        min: Span::millis(10),
        max: Span::millis(50),
    },
};

impl Validator<'_> {
    pub(super) fn network(&self, raw: RawNetwork) -> Checked<Network> {
        // The same reading of the link fields as a `network` fault's, over the defaults.
        let default = link_change!(raw).over(DEFAULT_LINK);
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
            let behaviour = link_change!(link).over(default);
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
