//! `[network]`, `[[clock]]` and `[disk]`: how messages travel, link by link, how each
//! clock runs, and how each disk keeps what it is given.

use super::{Checked, Validator};
use crate::scenario::explain::span_text;
use crate::scenario::fault_kinds::link_change;
use crate::scenario::fault_kinds::DiskFaultKind;
use crate::scenario::model::{
    ClockSetting, DiskSettings, Latency, LinkBehaviour, LinkOverride, Network,
};
use crate::scenario::raw::{RawClock, RawDisk, RawNetwork};
use crate::scenario::validator::list;
use simkv_protocols::{Span, SpanRange};

/// The longest sync `[disk]` may ask for: slower than any disk that still answers.
const MAX_SYNC: Span = Span::secs(10);

/// What `[disk] crash` may say, as scenarios spell it.
pub(crate) const CRASH_MODES: [(&str, DiskFaultKind); 4] = [
    ("keep-unsynced", DiskFaultKind::Healthy),
    ("lose-unsynced", DiskFaultKind::LoseUnsynced),
    ("lose-some-unsynced", DiskFaultKind::LoseSomeUnsynced),
    ("torn-write", DiskFaultKind::TornWrite),
];

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

    pub(super) fn disk(&self, raw: RawDisk) -> Checked<DiskSettings> {
        let mut disk = DiskSettings::default();
        if let Some(crash) = &raw.crash {
            let name = crash.get_ref();
            let Some((_, mode)) = CRASH_MODES.iter().find(|(n, _)| n == name) else {
                let names = list(CRASH_MODES.iter().map(|(n, _)| *n));
                let message = format!(
                    "expected what a crash does to unsynced writes, one of {names}, found \
                     {name:?}"
                );
                return self.fail(crash.span(), message);
            };
            disk.crash = *mode;
        }
        if let Some(sync) = &raw.sync {
            let range = sync.get_ref().0;
            if range.max > MAX_SYNC {
                let message = format!(
                    "expected a sync latency of at most {}, found {}",
                    span_text(MAX_SYNC),
                    span_text(range.max)
                );
                return self.fail(sync.span(), message);
            }
            disk.sync = range;
        }
        Ok(disk)
    }
}
