//! Exactly-once writes (module doc, "Writes"): every value carries the client session table
//! of its chain, so a retried request only completes a value it is already in, and its answer
//! is what this coordinator computed or is rebuilt from the session's outcome.

use super::coordinator::{Pending, Phase};
use super::durable::{Applied, Outcome, Record};
use super::messages::op_of;
use super::{Majority, Message, Timer};
use crate::contract::Context;
use crate::kv::{self, Op, OpResult};
use crate::quorum::Entry;
use std::collections::BTreeMap;
use std::rc::Rc;

impl Majority {
    /// Phase 1 done: the proposal applies this round's request to the highest value, then
    /// every write of the key queued behind it here, in order (group commit: one round
    /// chooses them all, so that a distinguished proposer keeps up with a hot key).
    pub(super) fn decide_write(
        &mut self,
        ctx: &mut Context<'_, Self>,
        op: u64,
        best: Option<Record>,
    ) {
        let key = self.pending.get(&op).expect("pending").op.key();
        let ballot = self.pending.get(&op).expect("pending").ballot;
        let mut sessions = best
            .as_ref()
            .map(|b| BTreeMap::clone(&b.sessions))
            .unwrap_or_default();
        let mut last = best.as_ref().and_then(|b| b.last);
        let mut value = best.as_ref().and_then(|b| b.entry.value.clone());
        let joined = self.join_queued(op, key);
        for id in std::iter::once(op).chain(joined) {
            let p = self.pending.get_mut(&id).expect("pending");
            let (client, seq) = (p.request.client, p.request.seq);
            // Already applied in the chain (an earlier attempt, here or at the coordinator
            // the client tried before), or superseded by the client's next request: only
            // complete the value, never apply the request twice.
            if sessions.get(&client).is_some_and(|a| a.seq >= seq) {
                continue;
            }
            let result = kv::apply_to_value(&mut value, &p.op);
            let outcome = match &result {
                OpResult::NotFound => Outcome::NotFound,
                OpResult::Ok { value } if matches!(p.op, Op::Append { .. }) => {
                    Outcome::Appended {
                        value: value.clone(),
                    }
                }
                OpResult::PreconditionFailed { current } => Outcome::PreconditionFailed {
                    current: current.clone(),
                },
                _ => Outcome::Ok,
            };
            p.results.push((ballot, result));
            let applied = Applied {
                seq,
                ballot,
                outcome,
            };
            sessions.insert(client, applied);
            last = Some(p.request);
        }
        let p = self.pending.get_mut(&op).expect("pending");
        let record = Record {
            entry: Entry::new(ballot, value),
            sessions: Rc::new(sessions),
            last,
        };
        p.enter_phase_two(Phase::Accept, record.clone());
        let msg = Message::Accept {
            key,
            op,
            record,
            write_back: false,
        };
        ctx.set_timer(Timer::Retry(op_of(&msg)), self.phase_timeout);
        self.broadcast(ctx, msg);
    }

    /// What a write quorum holding `record` means for request `p`: its answer, if this node
    /// can know it.
    pub(super) fn write_result(p: &Pending, record: &Record) -> Option<OpResult> {
        let applied = record.sessions.get(&p.request.client)?;
        if applied.seq != p.request.seq {
            return None; // superseded: the client has moved on
        }
        // The value right after the request, if this value is it.
        let after = (record.last == Some(p.request)).then_some(&record.entry.value);
        let rebuilt = match (applied.outcome.clone(), &p.op, after) {
            (Outcome::NotFound, ..) => Some(OpResult::NotFound),
            (Outcome::Appended { value }, ..) => Some(OpResult::Ok { value }),
            (Outcome::Ok, Op::Put { value, .. } | Op::Update { value, .. }, _)
            | (Outcome::Ok, Op::Cas { new: value, .. }, _) => Some(OpResult::Ok {
                value: Some(value.clone()),
            }),
            (Outcome::Ok, Op::Delete { .. }, _) => Some(OpResult::Ok { value: None }),
            (Outcome::Ok, _, Some(value)) => Some(OpResult::Ok {
                value: value.clone(),
            }),
            (Outcome::PreconditionFailed { current }, ..) => {
                Some(OpResult::PreconditionFailed { current })
            }
            _ => None,
        };
        let ours = p.results.iter().find(|(b, _)| *b == applied.ballot);
        ours.map(|(_, r)| r.clone()).or(rebuilt)
    }
}
