//! Storage faults (`disk`): what a node's simulated disk (engine `Disk`, the contract's
//! "Storage") does wrong.
//!
//! - `lose-unsynced`: from now on, a crash of the node loses every write not yet synced
//!   (FoundationDB's simulator does this); `lose-some-unsynced`: a random suffix of them;
//! - `torn-write`: from now on, a crash tears the last unsynced write that survives: it
//!   reads back corrupt;
//! - `corrupt`: now, a bit flip in one record drawn from those on the disk, which a
//!   checksum detects (the protocol's recovery sees [`Read::Corrupt`](simkv_protocols::Read));
//! - `misdirect`: the node's next write lands on the place of an earlier record, drawn
//!   (TigerBeetle's simulator misdirects writes): that record is gone and the new one is
//!   nowhere else; every record's checksum covers its place, so a recovery that checks
//!   reads it as [`Read::Misplaced`](simkv_protocols::Read), damaged;
//! - `full`: from now on, the disk has no room: the node's next write fails, and the node
//!   stops there (fail-stop: etcd's WAL and PostgreSQL panic on a failed log write, since
//!   a write that may be half done cannot be trusted), its later effects never happening;
//!   restarted, it runs until it writes again;
//! - `healthy`: crashes do again what `[disk] crash` says (by default they keep unsynced
//!   writes: the page cache reached the platter), and a full disk has room again.
//!
//! A nemesis draws one of the first three on a random node, undone by `healthy` (see
//! [`DiskFault`]'s `NemesisDraw` for why not `corrupt`).
//!
//! A protocol that syncs before every acknowledgement loses nothing it acknowledged to
//! the first two; the third damages synced data, and each protocol's recovery says what it
//! makes of it (README, "Storage faults").

use super::{Applied, Draw, Fault, FaultKind, FaultTarget, NemesisDraw};
use crate::scenario::explain::node;
use crate::scenario::validator::{list, Checked, Validator};
use crate::scenario::values::NodeName;
use serde::Deserialize;
use simkv_protocols::NodeId;
use toml::Spanned;

/// What a `disk` fault does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskFaultKind {
    /// Crashes lose every unsynced write.
    LoseUnsynced,
    /// Crashes lose a random suffix of the unsynced writes.
    LoseSomeUnsynced,
    /// Crashes tear the last unsynced write.
    TornWrite,
    /// A bit flip in one record now.
    Corrupt,
    /// No room: the next write fails and its node stops.
    Full,
    /// The next write lands on an earlier record's place.
    Misdirect,
    /// Crashes do what `[disk] crash` says again (keep unsynced writes, by default).
    Healthy,
}

/// Every kind, as scenarios spell it.
pub const DISK_FAULTS: [(&str, DiskFaultKind); 7] = [
    ("lose-unsynced", DiskFaultKind::LoseUnsynced),
    ("lose-some-unsynced", DiskFaultKind::LoseSomeUnsynced),
    ("torn-write", DiskFaultKind::TornWrite),
    ("corrupt", DiskFaultKind::Corrupt),
    ("full", DiskFaultKind::Full),
    ("misdirect", DiskFaultKind::Misdirect),
    ("healthy", DiskFaultKind::Healthy),
];

impl DiskFaultKind {
    /// As scenarios spell it.
    pub fn name(self) -> &'static str {
        DISK_FAULTS
            .iter()
            .find(|(_, k)| *k == self)
            .map(|(n, _)| *n)
            .expect("every disk fault is listed")
    }
}

/// `disk = { node = "n2", fault = "corrupt" }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskFault {
    /// The node whose disk it is.
    pub node: NodeId,
    /// What goes wrong.
    pub fault: DiskFaultKind,
}

/// `disk = { node = "n2", fault = "corrupt" }`, as serde reads it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDiskFault {
    node: Spanned<NodeName>,
    fault: Spanned<String>,
}

impl FaultKind for DiskFault {
    type Raw = RawDiskFault;

    fn check(raw: &Spanned<RawDiskFault>, v: &Validator) -> Checked<DiskFault> {
        let raw = raw.get_ref();
        let name = raw.fault.get_ref();
        let Some((_, fault)) = DISK_FAULTS.iter().find(|(n, _)| n == name) else {
            let names = list(DISK_FAULTS.iter().map(|(n, _)| *n));
            let message = format!("expected a disk fault, one of {names}, found {name:?}");
            return v.fail(raw.fault.span(), message);
        };
        Ok(DiskFault {
            node: v.node(&raw.node)?,
            fault: *fault,
        })
    }

    fn explain(&self) -> String {
        let (n, fault) = (node(self.node), self.fault.name());
        format!("disk = {{ node = {n}, fault = \"{fault}\" }}")
    }

    fn apply(&self, target: &mut dyn FaultTarget) -> Applied {
        Applied::Record(target.disk(self.node, self.fault))
    }

    fn undo(&self) -> Option<super::Fault> {
        let healthy = DiskFault {
            node: self.node,
            fault: DiskFaultKind::Healthy,
        };
        let lasting = !matches!(
            self.fault,
            DiskFaultKind::Corrupt | DiskFaultKind::Misdirect
        );
        lasting.then(|| healthy.into())
    }
}

impl NemesisDraw for DiskFault {
    fn draw(d: &mut Draw<'_>) -> (Fault, Fault) {
        // Not `corrupt`: a bit flip in synced data is amnesia, which no quorum protocol
        // here survives in general (a replica that acknowledged an entry and lost it can
        // join a majority that lacks it: Alagappan et al., "Protocol-Aware Recovery for
        // Consensus-Based Storage", FAST 2018), so a nemesis drawing it would report
        // correct protocols. Scripted `corrupt` faults (disk-faults.toml) show what it does.
        const DRAWN: [DiskFaultKind; 3] = [
            DiskFaultKind::LoseUnsynced,
            DiskFaultKind::LoseSomeUnsynced,
            DiskFaultKind::TornWrite,
        ];
        let fault = DRAWN[d.rng.below(DRAWN.len() as u64) as usize];
        let node = d.node;
        let healthy = DiskFaultKind::Healthy;
        let undo = DiskFault {
            node,
            fault: healthy,
        };
        (DiskFault { node, fault }.into(), undo.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::load::fixtures::{fail, load, pos, MINIMAL};
    use crate::scenario::Overrides;

    fn with_fault(action: &str) -> String {
        format!("{MINIMAL}\n[[fault]]\nat = \"1s\"\n{action}\n")
    }

    fn fails_at(action: &str, needle: &str, expected: &str) {
        let text = with_fault(action);
        let e = fail(&text, &Overrides::default());
        assert_eq!((e.line, e.column), pos(&text, needle), "{e}");
        assert!(e.message.contains(expected), "{e}\nexpected: {expected}");
    }

    #[test]
    fn every_disk_fault_loads_and_explains_back() {
        for (name, kind) in DISK_FAULTS {
            let action = format!(r#"disk = {{ node = "n2", fault = "{name}" }}"#);
            let s = load(&with_fault(&action), &Overrides::default()).unwrap();
            let fault = DiskFault {
                node: NodeId(1),
                fault: kind,
            };
            assert_eq!(s.faults[0].fault, fault.clone().into());
            assert_eq!(fault.explain(), action);
        }
    }

    #[test]
    fn bad_disk_faults_say_where_and_what_was_expected() {
        fails_at(
            r#"disk = { node = "n2", fault = "melt" }"#,
            r#""melt""#,
            "expected a disk fault, one of `lose-unsynced`",
        );
        fails_at(
            r#"disk = { node = "n9", fault = "corrupt" }"#,
            r#""n9""#,
            "n9",
        );
        fails_at(r#"disk = { node = "n2" }"#, "{ node", "fault");
        fails_at(r#"disk = { node = "n2", fault = 3 }"#, "3 }", "string");
    }
}
