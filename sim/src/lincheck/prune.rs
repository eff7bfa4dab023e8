//! Pruning operations of unknown outcome that no other operation can tell happened.
//!
//! An operation whose outcome is unknown may be linearized anywhere after its call, or
//! nowhere. When no other operation could have observed it, "nowhere" always works, so the
//! search need not try the rest: the verdict is the same without it. That is what keeps a key
//! with many timeouts decidable (a partitioned 2PC, a hot key under a nemesis): each such
//! operation would otherwise double the orders to consider.
//!
//! Why it is sound: without the operation the history is a subset with the operation left
//! pending, so a linearization of the rest is one of the whole. Conversely, take a
//! linearization of the whole that applies it. From there until the key is next overwritten
//! the state carries its mark (the value it wrote, or its appended suffix), so any operation
//! placed in that window that looks at the value would show the mark: a read's value, a cas's
//! expected or seen value, an append's recorded result (its whole new value). None does, by
//! the condition below, and operations that depend on more than values they name (presence:
//! updates, found deletes, a cas refused without a seen value; list appends; sibling reads of
//! unknown sets) are excluded outright. What is left in the window ignores the prior value
//! (writes), or has an unknown outcome itself: appends of unknown outcome stay (they do not
//! name a value), and one that changed nothing there may be left out too. Drop the operation
//! (and those) and every other result is explained as before.
//!
//! The marks are compared as text: a written value must not occur in any value observed on
//! its key (as a prefix of an append's result, say), an appended suffix neither. Text that
//! merely contains the mark by accident only keeps the operation, which is always safe.

use super::model::{self, CasOutcome, Interner, Kind, Val, Value, ABSENT};
use super::{Operation, PENDING};

/// Most bytes of observed values scanned for marks per partition before pruning gives up on
/// the substring test (it is an optimisation; the search is correct without it).
const MAX_SCAN_BYTES: usize = 1 << 28;

/// What the operations on one key (slot) observe of its value.
#[derive(Default)]
struct Observed {
    values: Vec<Val>,
    /// Something depends on more than the values it names.
    opaque: bool,
    /// Some append builds on the value.
    appends: bool,
}

impl Observed {
    fn see(&mut self, kind: &Kind, values: &Interner) {
        match *kind {
            Kind::Read(v) => self.values.push(v),
            Kind::ReadAny(set) => match values.tuple(set) {
                Some(vs) => self.values.extend_from_slice(vs),
                None => self.opaque = true,
            },
            Kind::Cas {
                outcome: CasOutcome::Refused(None),
                ..
            } => self.opaque = true,
            Kind::Cas {
                expected, outcome, ..
            } => {
                self.values.push(expected);
                if let CasOutcome::Refused(Some(seen)) = outcome {
                    self.values.push(seen);
                }
            }
            Kind::Update {
                found: Some(false), ..
            }
            | Kind::Delete { found: Some(false) } => self.values.push(ABSENT),
            Kind::Update { .. }
            | Kind::Delete { found: Some(true) }
            | Kind::ListAppend { .. }
            | Kind::Multi { .. } => self.opaque = true,
            Kind::Append { result, .. } => {
                self.appends = true;
                self.values.extend(result);
            }
            Kind::Write(_) | Kind::Delete { found: None } | Kind::Nop | Kind::Never => {}
        }
    }
}

fn text(values: &Interner, v: Val) -> Option<&str> {
    match values.get(v) {
        Some(Value::Str(s)) | Some(Value::Edn(s)) => Some(s),
        _ => None,
    }
}

/// Drops the operations of unknown outcome no other operation can tell happened (see the
/// module's notes).
pub(crate) fn drop_unseen_pending(ops: &mut Vec<Operation>, values: &Interner) {
    if ops.iter().all(|o| o.ret != PENDING) {
        return;
    }
    let mut slots: Vec<Observed> = Vec::new();
    for o in ops.iter() {
        for (slot, kind) in model::parts(&o.kind, values) {
            let at = slot as usize;
            if slots.len() <= at {
                slots.resize_with(at + 1, Observed::default);
            }
            slots[at].see(&kind, values);
        }
    }
    let mut budget = MAX_SCAN_BYTES;
    // Whether `mark` may occur in a value observed on the slot ("yes" once out of budget).
    let mut occurs = |mark: &str, slot: &Observed| -> bool {
        if mark.is_empty() {
            return true;
        }
        for t in slot.values.iter().filter_map(|v| text(values, *v)) {
            if t.len() > budget {
                return true;
            }
            budget -= t.len();
            if t.contains(mark) {
                return true;
            }
        }
        false
    };
    let mut unseen = |o: &Operation| -> bool {
        if o.ret != PENDING {
            return false;
        }
        model::parts(&o.kind, values)
            .into_iter()
            .all(|(slot, kind)| {
                let Some(seen) = slots.get(slot as usize).filter(|s| !s.opaque) else {
                    return matches!(kind, Kind::Nop);
                };
                match kind {
                    Kind::Nop => true,
                    Kind::Write(ABSENT) | Kind::Delete { found: None } => {
                        !seen.appends && !seen.values.contains(&ABSENT)
                    }
                    Kind::Write(v) if !seen.appends => !seen.values.contains(&v),
                    Kind::Write(v) => text(values, v).is_some_and(|t| !occurs(t, seen)),
                    Kind::Append {
                        suffix,
                        result: None,
                    } => text(values, suffix).is_some_and(|t| !occurs(t, seen)),
                    _ => false,
                }
            })
    };
    ops.retain(|o| !unseen(o));
}
