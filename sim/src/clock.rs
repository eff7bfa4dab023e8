//! Per-node virtual clocks: true virtual time seen through an offset and a drift.

use simkv_protocols::{Span, Time};

/// A node's clock. `local(t) = t + offset + drift`, where the drift accumulates at
/// `drift_ppm` microseconds per second of true time since it was last changed. A clock
/// never reads below zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeClock {
    offset_us: i64,
    drift_ppm: i64,
    /// The drift accumulated under earlier rates (also folded into `offset_us`), without the
    /// steps: what the monotonic reading adds to true time before the current rate.
    drifted_us: i64,
    /// True time at which the current drift rate took effect.
    drift_since: Time,
}

const PPM: i128 = 1_000_000;

/// `x * num / den`, truncated toward zero, in 64 bits whenever the product fits (a clock
/// reading in a run shorter than about 100 days at any drift): a 128-bit division is a
/// library call, and clocks are read several times per handler.
fn mul_div(x: u64, num: i64, den: i64) -> i128 {
    match i64::try_from(x).ok().and_then(|x| x.checked_mul(num)) {
        Some(product) => i128::from(product / den),
        None => i128::from(x) * i128::from(num) / i128::from(den),
    }
}

impl NodeClock {
    /// A clock `offset_us` off true time, drifting at `drift_ppm`.
    pub fn new(offset_us: i64, drift_ppm: i64) -> NodeClock {
        assert!(drift_ppm.abs() < 1_000_000, "a clock must move forward");
        NodeClock {
            offset_us,
            drift_ppm,
            drifted_us: 0,
            drift_since: Time::ZERO,
        }
    }

    fn drift_at(&self, now: Time) -> i64 {
        if self.drift_ppm == 0 {
            return 0;
        }
        let elapsed = now.since(self.drift_since).as_micros();
        mul_div(elapsed, self.drift_ppm, PPM as i64) as i64
    }

    /// What the node reads at true time `now`.
    pub fn local(&self, now: Time) -> Time {
        let t = i128::from(now.as_micros())
            + i128::from(self.offset_us)
            + i128::from(self.drift_at(now));
        Time(t.clamp(0, i128::from(u64::MAX)) as u64)
    }

    /// The node's monotonic clock at true time `now` (`CLOCK_MONOTONIC`, where `local` is
    /// `CLOCK_REALTIME`): it runs at the clock's drifting rate, but neither its offset nor a
    /// jump moves it. Durations measured on it (leases, timeouts) are what the node's timers
    /// see.
    pub fn monotonic(&self, now: Time) -> Time {
        let t = i128::from(now.as_micros())
            + i128::from(self.drifted_us)
            + i128::from(self.drift_at(now));
        Time(t.clamp(0, i128::from(u64::MAX)) as u64)
    }

    /// The true time a node waits for a local delay of `delay` (a fast clock fires early).
    pub fn true_delay(&self, delay: Span) -> Span {
        if self.drift_ppm == 0 {
            return delay;
        }
        let d = mul_div(delay.as_micros(), PPM as i64, PPM as i64 + self.drift_ppm);
        Span(d.max(0) as u64)
    }

    /// Steps the clock by `by_us`.
    pub fn jump(&mut self, by_us: i64) {
        self.offset_us = self.offset_us.saturating_add(by_us);
    }

    /// Changes the drift rate from true time `now` on, keeping the reading continuous.
    pub fn set_drift(&mut self, now: Time, ppm: i64) {
        assert!(ppm.abs() < 1_000_000, "a clock must move forward");
        let drifted = self.drift_at(now);
        self.offset_us = self.offset_us.saturating_add(drifted);
        self.drifted_us = self.drifted_us.saturating_add(drifted);
        self.drift_ppm = ppm;
        self.drift_since = now;
    }

    /// Signed difference local - true at `now`, microseconds, for reports.
    pub fn skew_us(&self, now: Time) -> i64 {
        self.offset_us + self.drift_at(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The 64-bit shortcuts read exactly what the 128-bit formulas do: small and huge
        /// elapsed times (past the shortcut's range), fast and slow clocks.
        #[test]
        fn drift_matches_the_wide_formula(
            elapsed in proptest::prop_oneof![0u64..10_000_000_000, proptest::num::u64::ANY],
            ppm in -999_999i64..1_000_000,
        ) {
            let clock = NodeClock::new(0, ppm);
            let wide = (i128::from(elapsed) * i128::from(ppm) / PPM) as i64;
            proptest::prop_assert_eq!(clock.drift_at(Time(elapsed)), wide);
            let delay = (i128::from(elapsed) * PPM / (PPM + i128::from(ppm))).max(0) as u64;
            proptest::prop_assert_eq!(clock.true_delay(Span(elapsed)), Span(delay));
        }
    }

    #[test]
    fn drift_accumulates_and_delays_scale() {
        let clock = NodeClock::new(-500, 100_000); // 10% fast, 0.5ms behind
        assert_eq!(clock.local(Time(0)), Time(0)); // clamped
        assert_eq!(clock.local(Time(1_000_000)), Time(1_099_500));
        assert_eq!(clock.true_delay(Span(110_000)), Span(100_000));
    }

    #[test]
    fn changing_drift_keeps_the_reading_continuous() {
        let mut clock = NodeClock::new(0, 1_000);
        let before = clock.local(Time(2_000_000));
        clock.set_drift(Time(2_000_000), -2_000);
        assert_eq!(clock.local(Time(2_000_000)), before);
        assert_eq!(
            clock.local(Time(3_000_000)),
            Time(3_000_000 + 2_000 - 2_000)
        );
        clock.jump(-10);
        assert_eq!(clock.skew_us(Time(3_000_000)), -10);
    }

    /// The monotonic reading drifts with the clock, across rate changes, and ignores the
    /// offset and every jump (`CLOCK_MONOTONIC` beside `CLOCK_REALTIME`).
    #[test]
    fn the_monotonic_clock_drifts_but_never_jumps() {
        let mut clock = NodeClock::new(5_000_000, 100_000); // 10% fast, 5 s ahead
        assert_eq!(clock.monotonic(Time(1_000_000)), Time(1_100_000));
        clock.jump(-3_000_000);
        assert_eq!(clock.local(Time(1_000_000)), Time(3_100_000));
        assert_eq!(clock.monotonic(Time(1_000_000)), Time(1_100_000));
        clock.set_drift(Time(1_000_000), -100_000); // now 10% slow
        assert_eq!(clock.monotonic(Time(2_000_000)), Time(2_000_000));
        clock.jump(7_000_000);
        assert_eq!(clock.monotonic(Time(2_000_000)), Time(2_000_000));
        assert_eq!(clock.local(Time(2_000_000)), Time(11_000_000));
    }
}
