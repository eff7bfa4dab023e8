//! Where a replay first departs from its recording: the first checkpoint whose hash differs
//! bounds a window of at most [`CHECKPOINT_EVERY`] events after the last one that agrees;
//! within it the first per-event record that differs is the event.
//!
//! [`CHECKPOINT_EVERY`]: crate::engine::recording::CHECKPOINT_EVERY

use super::{Checkpoint, EventRecord, Recording};

/// The first event where two runs differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// Events `1..=agreed` hash alike in both runs: the last checkpoint they agree on (0
    /// when they agree on none).
    pub agreed: u64,
    /// The first event that differs (1-based) when `exact`; else the checkpoint that
    /// differs first, the divergence lying in `agreed + 1 ..= event`.
    pub event: u64,
    /// Whether `event` is pinned to one event by the per-event records.
    pub exact: bool,
    /// The recorded run's record of `event` (`None`: it ended before, or the file has no
    /// per-event records).
    pub recorded: Option<EventRecord>,
    /// This run's record of `event` (`None`: it ended before).
    pub now: Option<EventRecord>,
}

/// The first event where the run recorded in `checkpoints` and `records` (empty when the
/// file has none) departs from the run recorded in `now`; `None` if they agree on every
/// checkpoint and record and have the same length.
pub fn first_divergence(
    checkpoints: &[Checkpoint],
    records: &[EventRecord],
    now: &Recording,
) -> Option<Divergence> {
    let mut agreed = 0;
    let mut bound = None;
    for cp in checkpoints {
        let same = now
            .checkpoints
            .binary_search_by_key(&cp.event, |c| c.event)
            .is_ok_and(|i| now.checkpoints[i] == *cp);
        if same {
            agreed = cp.event;
        } else {
            bound = Some(cp.event);
            break;
        }
    }
    let recorded_len = if records.is_empty() {
        checkpoints.last().map_or(0, |c| c.event)
    } else {
        records.len() as u64
    };
    let now_len = now.events.len() as u64;
    if records.is_empty() {
        // No per-event records: the window is all that can be said.
        let event = bound.or((recorded_len != now_len).then(|| recorded_len.min(now_len) + 1))?;
        return Some(Divergence {
            agreed,
            event,
            exact: false,
            recorded: None,
            now: None,
        });
    }
    let record = |rs: &[EventRecord], n: u64| rs.get(n as usize - 1).copied();
    let last = bound.unwrap_or(u64::MAX).min(recorded_len.max(now_len));
    for n in agreed + 1..=last {
        let (recorded, current) = (record(records, n), record(&now.events, n));
        if recorded != current {
            return Some(Divergence {
                agreed,
                event: n,
                exact: true,
                recorded,
                now: current,
            });
        }
    }
    // One run ended at the checkpoint that bounds the window, the other went on.
    let shorter = recorded_len.min(now_len);
    if recorded_len != now_len && shorter <= last {
        return Some(Divergence {
            agreed,
            event: shorter + 1,
            exact: true,
            recorded: record(records, shorter + 1),
            now: record(&now.events, shorter + 1),
        });
    }
    // Every record in the window agrees, and yet the checkpoint differs: two contents whose
    // 16-bit hashes collide. The window is what is known.
    bound.map(|event| Divergence {
        agreed,
        event,
        exact: false,
        recorded: record(records, event),
        now: record(&now.events, event),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::recording::{EventKind, Party};

    /// A recording of `n` events, one per microsecond, with the running hash of a run whose
    /// event `changed` (if any) differs from the base run's.
    fn recording(n: u64, changed: Option<u64>, every: u64) -> Recording {
        let events: Vec<EventRecord> = (1..=n)
            .map(|i| EventRecord {
                time_us: i,
                kind: EventKind::Arrival,
                party: Party::Run,
                hash: if Some(i) == changed { 99 } else { 1 },
            })
            .collect();
        let diverged = |i: u64| changed.is_some_and(|c| i >= c);
        let checkpoints = (1..=n)
            .filter(|i| i % every == 0 || *i == n)
            .map(|i| Checkpoint {
                event: i,
                time_us: i,
                hash: format!("{}", if diverged(i) { 2 } else { 1 }),
            })
            .collect();
        Recording {
            checkpoints,
            events,
            captured: Vec::new(),
        }
    }

    #[test]
    fn the_same_run_has_no_divergence() {
        let a = recording(1000, None, 256);
        assert_eq!(first_divergence(&a.checkpoints, &a.events, &a), None);
    }

    #[test]
    fn a_changed_event_is_found_in_the_window_of_the_first_checkpoint_that_differs() {
        let a = recording(1000, None, 256);
        let b = recording(1000, Some(600), 256);
        let d = first_divergence(&a.checkpoints, &a.events, &b).unwrap();
        assert_eq!((d.agreed, d.event, d.exact), (512, 600, true));
        assert_eq!(d.recorded.unwrap().hash, 1);
        assert_eq!(d.now.unwrap().hash, 99);
    }

    #[test]
    fn a_run_that_ends_early_or_goes_on_diverges_after_the_shorter() {
        let a = recording(1000, None, 256);
        let short = recording(700, None, 256);
        let d = first_divergence(&a.checkpoints, &a.events, &short).unwrap();
        assert_eq!((d.event, d.exact, d.now), (701, true, None));
        let d = first_divergence(&short.checkpoints, &short.events, &a).unwrap();
        assert_eq!((d.event, d.exact, d.recorded), (701, true, None));
    }

    #[test]
    fn without_records_the_window_is_reported() {
        let a = recording(1000, None, 256);
        let b = recording(1000, Some(600), 256);
        let d = first_divergence(&a.checkpoints, &[], &b).unwrap();
        assert_eq!((d.agreed, d.event, d.exact), (512, 768, false));
    }
}
