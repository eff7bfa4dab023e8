//! The key-value vocabulary every protocol speaks, and its sequential meaning.
//!
//! [`apply`] is the one sequential specification of the store: protocols use it to apply an
//! operation to a replica, and the checkers use it as the model a linearizable history must
//! be explainable by. Keeping both on one function is what makes "the protocol applied it
//! wrongly" and "the checker judged it wrongly" different bugs.

use serde::{Deserialize, Serialize};
use std::collections::{btree_map, BTreeMap};
use std::fmt;

/// A key. Workloads use small integers, as Jepsen's independent keys do.
pub type Key = u64;

/// A value. simkv's workloads write values unique per run, which makes histories cheaper to
/// check; append concatenates strings.
pub use crate::value::Value;

/// A client operation. Every protocol accepts every single-key operation; only protocols whose
/// [`ProtocolInfo::transactions`](crate::ProtocolInfo::transactions) says so are sent a
/// [`Op::Txn`] (the scenario loader refuses the pairing otherwise).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "snake_case")]
pub enum Op {
    /// Read the value of `key`.
    Get {
        /// The key read.
        key: Key,
    },
    /// Set `key` to `value`, whether or not it is present.
    Put {
        /// The key written.
        key: Key,
        /// The value written.
        value: Value,
    },
    /// Set `key` to `value` only if the key is present (the seed store's `UPD`).
    Update {
        /// The key written.
        key: Key,
        /// The value written.
        value: Value,
    },
    /// Remove `key`.
    Delete {
        /// The key removed.
        key: Key,
    },
    /// Set `key` to `new` only if its value is `expected` (compare-and-set).
    Cas {
        /// The key written.
        key: Key,
        /// The value the key must hold.
        expected: Value,
        /// The value written when it does.
        new: Value,
    },
    /// Append `value` to the key's value (an absent key counts as the empty string).
    Append {
        /// The key written.
        key: Key,
        /// The suffix appended.
        value: Value,
    },
    /// Several single-key operations applied atomically, in order, as one: a transaction
    /// (Jepsen's `:txn`). Later operations see earlier ones' writes. Every operation of it is
    /// single-key: a txn inside a txn is malformed (histories refuse it, workloads never make
    /// it).
    Txn {
        /// The operations, in the order they apply.
        ops: Vec<Op>,
    },
}

/// What a protocol answers to an [`Op`].
///
/// The distinction that matters to a checker is definiteness: [`OpResult::Unavailable`] and
/// [`OpResult::NotLeader`] promise that the operation was *not* applied and never will be (the
/// history records `fail`); every other result says it was applied exactly once (`ok`). A
/// protocol that cannot promise either says nothing and lets the client time out (`info`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum OpResult {
    /// Applied. For a get, the value read; for a write, the key's new value.
    Ok {
        /// The value read or written.
        value: Option<Value>,
    },
    /// Applied, and the key was absent: a get read nothing, an update or delete changed nothing.
    NotFound,
    /// Applied, and a cas found another value than expected (`None`: the key was absent).
    PreconditionFailed {
        /// The value the key held.
        current: Option<Value>,
    },
    /// Definitely not applied: the node could not reach enough replicas, or refused.
    Unavailable {
        /// A node more likely to serve the request, if the protocol knows one.
        hint: Option<crate::NodeId>,
    },
    /// A get served from concurrent versions (Dynamo section 4.4): every one of them, none
    /// newer than another, sorted (`None`, a concurrent delete, first). Only a protocol that
    /// keeps siblings answers it, and only with two or more; the client reconciles by writing.
    Siblings {
        /// The concurrent values.
        values: Vec<Option<Value>>,
    },
    /// A transaction applied (committed): one result per operation, in order, each what
    /// [`apply_to_value`] answers for it (never `Unavailable`, `NotLeader` or `Txn`).
    Txn {
        /// The operations' results.
        results: Vec<OpResult>,
    },
    /// Definitely not applied: this node is not the leader; try `hint`.
    NotLeader {
        /// The node this node believes leads.
        hint: Option<crate::NodeId>,
    },
}

impl Op {
    /// The key a single-key operation touches; a txn answers its first operation's key (or
    /// 0 when it has none). Code that may meet a txn uses [`Op::keys`].
    pub fn key(&self) -> Key {
        match self {
            Op::Get { key }
            | Op::Put { key, .. }
            | Op::Update { key, .. }
            | Op::Delete { key }
            | Op::Cas { key, .. }
            | Op::Append { key, .. } => *key,
            Op::Txn { ops } => ops.first().map_or(0, Op::key),
        }
    }

    /// Every key the operation touches, ascending, each once.
    pub fn keys(&self) -> Vec<Key> {
        match self {
            Op::Txn { ops } => {
                let mut keys: Vec<Key> = ops.iter().flat_map(Op::keys).collect();
                keys.sort_unstable();
                keys.dedup();
                keys
            }
            single => vec![single.key()],
        }
    }

    /// Whether the operation can change the store.
    pub fn is_write(&self) -> bool {
        match self {
            Op::Get { .. } => false,
            Op::Txn { ops } => ops.iter().any(Op::is_write),
            _ => true,
        }
    }

    /// The single-key operations it consists of: a txn's operations, or itself.
    pub fn parts(&self) -> &[Op] {
        match self {
            Op::Txn { ops } => ops,
            single => std::slice::from_ref(single),
        }
    }

    /// The operation's name as histories spell it (`get`, `put`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Get { .. } => "get",
            Op::Put { .. } => "put",
            Op::Update { .. } => "update",
            Op::Delete { .. } => "delete",
            Op::Cas { .. } => "cas",
            Op::Append { .. } => "append",
            Op::Txn { .. } => "txn",
        }
    }
}

impl OpResult {
    /// Whether the operation took effect (or, for a read, was served).
    pub fn is_applied(&self) -> bool {
        !matches!(
            self,
            OpResult::Unavailable { .. } | OpResult::NotLeader { .. }
        )
    }

    /// The node a client should try next, if the protocol named one.
    pub fn hint(&self) -> Option<crate::NodeId> {
        match self {
            OpResult::Unavailable { hint } | OpResult::NotLeader { hint } => *hint,
            _ => None,
        }
    }

    /// The results of the single-key operations of `op` it answers: a txn's per-operation
    /// results, or itself. `None` when it does not fit `op` (a txn answered with another
    /// number of results, or a single-key operation answered as a txn).
    pub fn parts(&self, op: &Op) -> Option<Vec<OpResult>> {
        match (op, self) {
            (Op::Txn { ops }, OpResult::Txn { results }) => {
                (ops.len() == results.len()).then(|| results.clone())
            }
            (Op::Txn { .. }, _) | (_, OpResult::Txn { .. }) => None,
            (_, single) => Some(vec![single.clone()]),
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Get { key } => write!(f, "get k{key}"),
            Op::Put { key, value } => write!(f, "put k{key}={value}"),
            Op::Update { key, value } => write!(f, "update k{key}={value}"),
            Op::Delete { key } => write!(f, "delete k{key}"),
            Op::Cas { key, expected, new } => write!(f, "cas k{key} {expected}->{new}"),
            Op::Append { key, value } => write!(f, "append k{key}+={value}"),
            Op::Txn { ops } => {
                write!(f, "txn [")?;
                for (i, op) in ops.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}{op}")?;
                }
                write!(f, "]")
            }
        }
    }
}

impl fmt::Display for OpResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpResult::Ok { value: Some(v) } => write!(f, "ok {v}"),
            OpResult::Ok { value: None } => write!(f, "ok"),
            OpResult::NotFound => write!(f, "not-found"),
            OpResult::PreconditionFailed { current: Some(v) } => {
                write!(f, "precondition-failed (is {v})")
            }
            OpResult::PreconditionFailed { current: None } => {
                write!(f, "precondition-failed (absent)")
            }
            OpResult::Unavailable { .. } => write!(f, "unavailable"),
            OpResult::NotLeader { hint: Some(n) } => write!(f, "not-leader (try {n})"),
            OpResult::NotLeader { hint: None } => write!(f, "not-leader"),
            OpResult::Siblings { values } => {
                let shown: Vec<&str> = values
                    .iter()
                    .map(|v| v.as_deref().unwrap_or("absent"))
                    .collect();
                write!(f, "siblings [{}]", shown.join(", "))
            }
            OpResult::Txn { results } => {
                write!(f, "committed [")?;
                for (i, r) in results.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}{r}")?;
                }
                write!(f, "]")
            }
        }
    }
}

/// Applies `op` to one key's value, sequentially: the specification of the store.
///
/// `current` is the key's value before (`None`: absent) and is updated in place. The result is
/// never `NotLeader`: that is a protocol's answer, not the store's. A txn spans keys, so it is
/// [`apply`]'s to apply: here it changes nothing and answers `Unavailable` (not applied),
/// which is also what a protocol that routes it here by mistake tells its client.
pub fn apply_to_value(current: &mut Option<Value>, op: &Op) -> OpResult {
    match op {
        Op::Get { .. } => match current {
            Some(v) => OpResult::Ok {
                value: Some(v.clone()),
            },
            None => OpResult::NotFound,
        },
        Op::Put { value, .. } => {
            *current = Some(value.clone());
            OpResult::Ok {
                value: Some(value.clone()),
            }
        }
        Op::Update { value, .. } => match current {
            Some(v) => {
                v.clone_from(value);
                OpResult::Ok {
                    value: Some(value.clone()),
                }
            }
            None => OpResult::NotFound,
        },
        Op::Delete { .. } => match current.take() {
            Some(_) => OpResult::Ok { value: None },
            None => OpResult::NotFound,
        },
        Op::Cas { expected, new, .. } => match current {
            Some(v) if v == expected => {
                v.clone_from(new);
                OpResult::Ok {
                    value: Some(new.clone()),
                }
            }
            other => OpResult::PreconditionFailed {
                current: other.clone(),
            },
        },
        Op::Append { value, .. } => {
            let v = match current {
                Some(v) => v.appended(value),
                None => value.clone(),
            };
            *current = Some(v.clone());
            OpResult::Ok { value: Some(v) }
        }
        Op::Txn { .. } => OpResult::Unavailable { hint: None },
    }
}

/// Applies `op` to a whole store (see [`apply_to_value`]); a txn's operations in order, as one.
pub fn apply(store: &mut BTreeMap<Key, Value>, op: &Op) -> OpResult {
    if let Op::Txn { ops } = op {
        let results = ops.iter().map(|op| apply(store, op)).collect();
        return OpResult::Txn { results };
    }
    // One search of the tree, not a remove and an insert of every key touched.
    match store.entry(op.key()) {
        btree_map::Entry::Occupied(mut held) => {
            let mut current = Some(std::mem::take(held.get_mut()));
            let result = apply_to_value(&mut current, op);
            match current {
                Some(v) => *held.get_mut() = v,
                None => {
                    held.remove();
                }
            }
            result
        }
        btree_map::Entry::Vacant(absent) => {
            let mut current = None;
            let result = apply_to_value(&mut current, op);
            if let Some(v) = current {
                absent.insert(v);
            }
            result
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::put;

    #[test]
    fn update_and_delete_of_an_absent_key_change_nothing() {
        let mut store = BTreeMap::new();
        let upd = Op::Update {
            key: 1,
            value: "a".into(),
        };
        assert_eq!(apply(&mut store, &upd), OpResult::NotFound);
        assert_eq!(
            apply(&mut store, &Op::Delete { key: 1 }),
            OpResult::NotFound
        );
        assert!(store.is_empty());
    }

    #[test]
    fn cas_applies_only_on_the_expected_value() {
        let mut store = BTreeMap::new();
        apply(&mut store, &put(1, "a"));
        let cas = |e: &str, n: &str| Op::Cas {
            key: 1,
            expected: e.into(),
            new: n.into(),
        };
        assert_eq!(
            apply(&mut store, &cas("x", "b")),
            OpResult::PreconditionFailed {
                current: Some("a".into())
            }
        );
        assert_eq!(
            apply(&mut store, &cas("a", "b")),
            OpResult::Ok {
                value: Some("b".into())
            }
        );
        assert_eq!(store[&1], "b");
    }

    /// A txn applies its operations in order, each seeing the ones before it, and answers
    /// one result per operation.
    #[test]
    fn txn_applies_in_order_and_answers_each_operation() {
        let mut store = BTreeMap::new();
        apply(&mut store, &put(1, "a"));
        let txn = Op::Txn {
            ops: vec![
                Op::Get { key: 1 },
                put(2, "b"),
                Op::Get { key: 2 },
                Op::Delete { key: 1 },
            ],
        };
        assert_eq!(txn.keys(), vec![1, 2]);
        assert!(txn.is_write());
        let ok = |v: &str| OpResult::Ok {
            value: Some(v.into()),
        };
        let want = OpResult::Txn {
            results: vec![ok("a"), ok("b"), ok("b"), OpResult::Ok { value: None }],
        };
        assert_eq!(apply(&mut store, &txn), want);
        assert_eq!(store.get(&1), None);
        assert_eq!(store[&2], "b");
        assert_eq!(want.parts(&txn).map(|r| r.len()), Some(4));
        assert_eq!(ok("a").parts(&txn), None);
        let read_only = Op::Txn {
            ops: vec![Op::Get { key: 2 }],
        };
        assert!(!read_only.is_write());
    }

    #[test]
    fn append_starts_from_the_empty_string() {
        let mut store = BTreeMap::new();
        let app = |v: &str| Op::Append {
            key: 2,
            value: v.into(),
        };
        apply(&mut store, &app("x"));
        apply(&mut store, &app("y"));
        assert_eq!(store[&2], "xy");
        assert_eq!(
            apply(&mut store, &Op::Get { key: 2 }),
            OpResult::Ok {
                value: Some("xy".into())
            }
        );
    }
}
