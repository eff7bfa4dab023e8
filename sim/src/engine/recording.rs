//! Recording a run for replay (opt-in: `RunOptions::record`): the running fingerprint hash
//! every [`CHECKPOINT_EVERY`] events and after the last, and one compact record per event
//! (its virtual time, the node or client it concerns, its kind and a 16-bit hash of what the
//! fingerprint saw of it). A replay file carries both, so that a replay that diverges can be
//! pinned to one event: the first checkpoint that differs bounds the window, the records in
//! the window name the event.
//!
//! The recorder reads what the engine feeds the fingerprint and nothing else; it never
//! feeds the fingerprint or the run, so a recorded run is the same run. Off, it costs one
//! `Option` test per event.

use super::event::Event;
use super::fingerprint;
use serde::{Deserialize, Serialize};
use simkv_protocols::digest::StableHasher;
use simkv_protocols::{ClientId, NodeId, Protocol, Time};
use std::fmt;
use std::hash::Hasher;

/// Events between two checkpoints.
pub const CHECKPOINT_EVERY: u64 = 256;

/// The engine's running event hash after `event` events (1-based count), at virtual time
/// `time_us`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Events processed so far.
    pub event: u64,
    /// Virtual time of that event, microseconds.
    pub time_us: u64,
    /// The running fingerprint hash after it, 16 hex digits.
    pub hash: String,
}

macro_rules! event_kinds {
    ($($kind:ident = $tag:literal,)*) => {
        /// An event's variant, with the tag byte the fingerprint writes for it.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum EventKind {
            $(
                #[allow(missing_docs)]
                $kind = $tag,
            )*
        }

        impl EventKind {
            /// The variant's name.
            pub fn name(self) -> &'static str {
                match self {
                    $(EventKind::$kind => stringify!($kind),)*
                }
            }

            /// The kind with tag byte `tag`.
            pub fn from_tag(tag: u8) -> Option<EventKind> {
                match tag {
                    $($tag => Some(EventKind::$kind),)*
                    _ => None,
                }
            }
        }
    };
}

// The fingerprint's tag bytes (fingerprint.rs).
event_kinds! {
    Deliver = 1,
    Request = 2,
    Reply = 3,
    Timer = 4,
    ClientWake = 5,
    ClientTimeout = 6,
    Arrival = 7,
    Fault = 8,
    WorkloadEnd = 9,
    WorkloadStop = 10,
    ClientRetry = 11,
    Synced = 12,
}

impl EventKind {
    /// The tag byte.
    pub fn tag(self) -> u8 {
        self as u8
    }
}

/// Whom an event concerns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Party {
    /// The run as a whole (a fault, an arrival, the workload's phases).
    Run,
    /// One node (a request it receives, a reply it sends, its timer).
    Node(NodeId),
    /// A message from one node to another.
    Link(NodeId, NodeId),
    /// One client (its wake-up, timeout check or retry).
    Client(ClientId),
}

impl fmt::Display for Party {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Party::Run => write!(f, "-"),
            Party::Node(n) => write!(f, "{n}"),
            Party::Link(from, to) => write!(f, "{to} (from {from})"),
            Party::Client(c) => write!(f, "{c}"),
        }
    }
}

/// One event as a recording keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventRecord {
    /// Virtual time, microseconds.
    pub time_us: u64,
    /// The event's variant.
    pub kind: EventKind,
    /// Whom it concerns.
    pub party: Party,
    /// The low 16 bits of the stable hash of what the fingerprint saw of the event (its
    /// time, kind and content, and the text of any fault it applied): enough to tell, in a
    /// window of 256 events, which one changed, at two bytes an event.
    pub hash: u16,
}

impl fmt::Display for EventRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "t={}us {} {} hash {:04x}",
            self.time_us,
            self.party,
            self.kind.name(),
            self.hash
        )
    }
}

/// What a recorded run leaves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recording {
    /// The running hash every [`CHECKPOINT_EVERY`] events and after the last.
    pub checkpoints: Vec<Checkpoint>,
    /// One record per processed event, in order (event number `i + 1` at index `i`).
    pub events: Vec<EventRecord>,
    /// The captured event's trace lines (the event's own, then those of the faults it
    /// applied), when [`Record::capture`] named an event the run reached.
    pub captured: Vec<String>,
}

/// What to record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Record {
    /// Keep the trace lines of this event (1-based), to show it in full.
    pub capture: Option<u64>,
}

/// The engine's side: fed by the loop, as the fingerprint is.
pub(super) struct Recorder {
    recording: Recording,
    /// What the fingerprint saw of the event being processed (boot's faults fold into the
    /// first event's).
    content: StableHasher,
    capture: Option<u64>,
    capturing: bool,
}

impl Recorder {
    pub(super) fn new(record: Record) -> Recorder {
        Recorder {
            recording: Recording::default(),
            content: StableHasher::new(),
            capture: record.capture,
            capturing: false,
        }
    }

    /// Event number `n` (1-based) begins, at `at`.
    pub(super) fn begin<P: Protocol>(&mut self, n: u64, at: Time, event: &Event<P>) {
        fingerprint::write_event(&mut self.content, at, event);
        self.capturing = self.capture == Some(n);
        if self.capturing {
            if let Some(line) = crate::trace::event_json(at, event) {
                self.recording.captured.push(line.to_string());
            }
        }
        let (kind, party) = describe(event);
        self.recording.events.push(EventRecord {
            time_us: at.as_micros(),
            kind,
            party,
            hash: 0,
        });
    }

    /// The engine applied a fault (its text goes to the fingerprint).
    pub(super) fn fault(&mut self, at: Time, action: &str) {
        self.content.write(action.as_bytes());
        if self.capturing {
            let line = crate::trace::fault_json(at, action);
            self.recording.captured.push(line.to_string());
        }
    }

    /// Event number `n` is over; `running` is the fingerprint after it.
    pub(super) fn end(&mut self, n: u64, running: &StableHasher) {
        let record = self.recording.events.last_mut().expect("begun");
        record.hash = self.content.finish() as u16;
        self.content = StableHasher::new();
        self.capturing = false;
        if n % CHECKPOINT_EVERY == 0 {
            let time_us = record.time_us;
            self.checkpoint(n, time_us, running.finish());
        }
    }

    fn checkpoint(&mut self, event: u64, time_us: u64, hash: u64) {
        self.recording.checkpoints.push(Checkpoint {
            event,
            time_us,
            hash: format!("{hash:016x}"),
        });
    }

    /// The run is over after `n` events with fingerprint `fingerprint`.
    pub(super) fn finish(mut self, n: u64, fingerprint: u64) -> Recording {
        let last = self.recording.checkpoints.last().map(|c| c.event);
        if n > 0 && last != Some(n) {
            let time_us = self.recording.events.last().map_or(0, |r| r.time_us);
            self.checkpoint(n, time_us, fingerprint);
        }
        self.recording
    }
}

fn describe<P: Protocol>(event: &Event<P>) -> (EventKind, Party) {
    match event {
        Event::Deliver { from, to, .. } => (EventKind::Deliver, Party::Link(*from, *to)),
        Event::Request { to, .. } => (EventKind::Request, Party::Node(*to)),
        Event::Reply { from, .. } => (EventKind::Reply, Party::Node(*from)),
        Event::Timer { node, .. } => (EventKind::Timer, Party::Node(*node)),
        Event::Synced { node, .. } => (EventKind::Synced, Party::Node(*node)),
        Event::ClientWake { client } => (EventKind::ClientWake, Party::Client(*client)),
        Event::ClientTimeout { client } => (EventKind::ClientTimeout, Party::Client(*client)),
        Event::ClientRetry { request, .. } => {
            (EventKind::ClientRetry, Party::Client(request.client))
        }
        Event::Arrival => (EventKind::Arrival, Party::Run),
        Event::Fault { .. } => (EventKind::Fault, Party::Run),
        Event::WorkloadEnd => (EventKind::WorkloadEnd, Party::Run),
        Event::WorkloadStop => (EventKind::WorkloadStop, Party::Run),
    }
}

/// The event a test build delays by one microsecond (`SIMKV_PERTURB=N`, 1-based), to make a
/// run diverge on purpose. Only a build with the `perturb` feature reads the variable, and
/// only the test build has it: see sim/Cargo.toml.
pub fn perturbation() -> Option<u64> {
    #[cfg(feature = "perturb")]
    {
        std::env::var("SIMKV_PERTURB").ok()?.trim().parse().ok()
    }
    #[cfg(not(feature = "perturb"))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    /// Without the `perturb` feature (any build but the test binary's), the variable is
    /// never read. (With it, this test is left out: setting the variable here would perturb
    /// the runs of tests beside it.)
    #[cfg(not(feature = "perturb"))]
    #[test]
    fn a_build_without_the_feature_ignores_simkv_perturb() {
        std::env::set_var("SIMKV_PERTURB", "1");
        assert_eq!(super::perturbation(), None);
        std::env::remove_var("SIMKV_PERTURB");
    }
}
