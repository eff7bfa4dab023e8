//! Partitions (groups, named shapes, one node isolated, one-way cuts) and the heal that
//! undoes them.

use super::{Applied, Draw, Fault, FaultKind, FaultTarget, NemesisDraw};
use crate::scenario::explain::{node, quote};
use crate::scenario::targets::{RawTargets, Targets, World};
use crate::scenario::validator::{Checked, Validator};
use crate::scenario::values::NodeName;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use simkv_protocols::NodeId;
use std::fmt;
use toml::Spanned;

/// A named partition shape, resolved into blocked links when it is applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PartitionShape {
    /// Nodes in different groups cannot talk; nodes in no group form one more group.
    Groups(Vec<Vec<NodeId>>),
    /// Messages from any of `from` to any of `to` are lost; the other direction works.
    OneWay {
        /// Senders cut off.
        from: Vec<NodeId>,
        /// Receivers cut off.
        to: Vec<NodeId>,
    },
    /// One node alone against the rest.
    Isolate(NodeId),
    /// A random node alone against the rest (drawn from the faults stream).
    IsolateRandom,
    /// A random majority against the rest.
    MajorityMinority,
    /// Two random halves joined by one node that sees both (Jepsen's bridge).
    Bridge,
    /// Nodes in a random ring, each seeing only its two neighbours.
    Ring,
}

/// The named partition shapes, as scenarios spell them.
const PARTITION_SHAPES: &[(&str, PartitionShape)] = &[
    ("majority-minority", PartitionShape::MajorityMinority),
    ("bridge", PartitionShape::Bridge),
    ("ring", PartitionShape::Ring),
    ("isolate-random", PartitionShape::IsolateRandom),
];

/// `partition = [["n1"], ["n2", "n3"]]` or `partition = "bridge"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition(pub PartitionShape);

/// `isolate = "n1"`, `isolate = "leader"`: the nodes aimed at, alone (together, when a
/// set) against the rest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Isolate(pub Targets);

/// `one_way = { from = ["n1"], to = ["n2", "n3"] }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OneWay {
    /// Senders cut off.
    pub from: Vec<NodeId>,
    /// Receivers cut off.
    pub to: Vec<NodeId>,
}

/// `heal = true`: links, and the network's behaviour and node speeds too (see
/// [`FaultTarget::heal`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heal;

fn partition(target: &mut dyn FaultTarget, shape: &PartitionShape) -> Applied {
    let groups = target.partition(shape);
    Applied::Record(format!("partition: {groups}"))
}

fn nodes(ids: &[NodeId]) -> String {
    let names: Vec<String> = ids.iter().map(|n| node(*n)).collect();
    format!("[{}]", names.join(", "))
}

impl FaultKind for Partition {
    type Raw = RawPartition;

    fn check(raw: &Spanned<RawPartition>, v: &Validator) -> Checked<Partition> {
        let groups = match raw.get_ref() {
            RawPartition::Named(shape) => return Ok(Partition(shape.clone())),
            RawPartition::Groups(groups) => groups,
        };
        if groups.is_empty() {
            return v.fail(raw.span(), "expected at least one group of nodes");
        }
        let mut seen = Vec::new();
        let mut shape = Vec::with_capacity(groups.len());
        for group in groups {
            if group.get_ref().is_empty() {
                return v.fail(group.span(), "expected a group of at least one node");
            }
            let mut ids = Vec::with_capacity(group.get_ref().len());
            for name in group.get_ref() {
                let id = v.node(name)?;
                if seen.contains(&id) {
                    let message =
                        format!("expected each node in at most one group, found {id} again");
                    return v.fail(name.span(), message);
                }
                seen.push(id);
                ids.push(id);
            }
            shape.push(ids);
        }
        Ok(Partition(PartitionShape::Groups(shape)))
    }

    fn explain(&self) -> String {
        match &self.0 {
            PartitionShape::Groups(groups) => {
                let groups: Vec<String> = groups.iter().map(|g| nodes(g)).collect();
                format!("partition = [{}]", groups.join(", "))
            }
            PartitionShape::OneWay { from, to } => OneWay {
                from: from.clone(),
                to: to.clone(),
            }
            .explain(),
            PartitionShape::Isolate(n) => Isolate((*n).into()).explain(),
            named => {
                let name = PARTITION_SHAPES.iter().find(|(_, s)| s == named);
                format!("partition = {}", quote(name.map_or("", |(n, _)| *n)))
            }
        }
    }

    fn apply(&self, target: &mut dyn FaultTarget) -> Applied {
        partition(target, &self.0)
    }
    fn undo(&self) -> Option<Fault> {
        Some(Heal.into())
    }
}

impl NemesisDraw for Partition {
    fn draw(d: &mut Draw<'_>) -> (Fault, Fault) {
        let shapes: &[PartitionShape] = if d.nodes >= 3 {
            &[
                PartitionShape::MajorityMinority,
                PartitionShape::IsolateRandom,
                PartitionShape::Bridge,
                PartitionShape::Ring,
            ]
        } else {
            &[PartitionShape::IsolateRandom]
        };
        let shape = shapes[d.rng.below(shapes.len() as u64) as usize].clone();
        (Fault::Partition(Partition(shape)), Fault::Heal(Heal))
    }
}

impl FaultKind for Isolate {
    type Raw = RawTargets;

    fn check(raw: &Spanned<RawTargets>, v: &Validator) -> Checked<Isolate> {
        v.targets(raw).map(Isolate)
    }

    fn explain(&self) -> String {
        format!("isolate = {}", self.0.explain())
    }

    fn retarget(&self, targets: &Targets) -> Option<Isolate> {
        Some(Isolate(targets.clone()))
    }

    fn resolve(&self, w: &mut World<'_>) -> Result<(Isolate, Option<String>), String> {
        let (nodes, how) = self.0.resolve(w)?;
        Ok((Isolate(Targets::Nodes(nodes)), how))
    }

    fn apply(&self, target: &mut dyn FaultTarget) -> Applied {
        match self.0.nodes() {
            [one] => partition(target, &PartitionShape::Isolate(*one)),
            // A set is cut off together: its nodes still see each other.
            set => partition(target, &PartitionShape::Groups(vec![set.to_vec()])),
        }
    }
    fn undo(&self) -> Option<Fault> {
        Some(Heal.into())
    }
}

/// `one_way = { from = [...], to = [...] }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOneWay {
    from: Spanned<Vec<Spanned<NodeName>>>,
    to: Spanned<Vec<Spanned<NodeName>>>,
}

impl FaultKind for OneWay {
    type Raw = RawOneWay;

    fn check(raw: &Spanned<RawOneWay>, v: &Validator) -> Checked<OneWay> {
        let raw = raw.get_ref();
        let from = node_set(v, &raw.from, "`from`")?;
        let to = node_set(v, &raw.to, "`to`")?;
        for name in raw.to.get_ref() {
            let id = v.node(name)?;
            if from.contains(&id) {
                let message =
                    format!("expected `from` and `to` to be disjoint, found {id} in both");
                return v.fail(name.span(), message);
            }
        }
        Ok(OneWay { from, to })
    }

    fn explain(&self) -> String {
        let (from, to) = (nodes(&self.from), nodes(&self.to));
        format!("one_way = {{ from = {from}, to = {to} }}")
    }

    fn apply(&self, target: &mut dyn FaultTarget) -> Applied {
        let shape = PartitionShape::OneWay {
            from: self.from.clone(),
            to: self.to.clone(),
        };
        partition(target, &shape)
    }
    fn undo(&self) -> Option<Fault> {
        Some(Heal.into())
    }
}

/// A non-empty list of distinct nodes.
fn node_set(
    v: &Validator,
    raw: &Spanned<Vec<Spanned<NodeName>>>,
    what: &str,
) -> Checked<Vec<NodeId>> {
    if raw.get_ref().is_empty() {
        return v.fail(raw.span(), format!("expected at least one node in {what}"));
    }
    let mut ids = Vec::with_capacity(raw.get_ref().len());
    for name in raw.get_ref() {
        let id = v.node(name)?;
        if ids.contains(&id) {
            let message = format!("expected distinct nodes, found {id} twice");
            return v.fail(name.span(), message);
        }
        ids.push(id);
    }
    Ok(ids)
}

impl FaultKind for Heal {
    type Raw = bool;

    fn check(raw: &Spanned<bool>, v: &Validator) -> Checked<Heal> {
        if !*raw.get_ref() {
            let message = "expected `heal = true` (to keep a partition, leave the heal out)";
            return v.fail(raw.span(), message);
        }
        Ok(Heal)
    }

    fn explain(&self) -> String {
        "heal = true".into()
    }

    fn apply(&self, target: &mut dyn FaultTarget) -> Applied {
        Applied::Record(target.heal())
    }
}

/// `partition = [["n1"], ["n2", "n3"]]` or a named shape.
#[derive(Debug)]
pub(crate) enum RawPartition {
    /// A shape that names no node.
    Named(PartitionShape),
    /// Explicit groups, checked against the cluster by the validator.
    Groups(Vec<Spanned<Vec<Spanned<NodeName>>>>),
}

impl<'de> Deserialize<'de> for RawPartition {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Groups are read element by element through toml's own deserializer, so that each
        // node name keeps its span.
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawPartition;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "groups of nodes such as [[\"n1\"], [\"n2\", \"n3\"]], \"majority-minority\", \
                     \"bridge\", \"ring\" or \"isolate-random\"",
                )
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RawPartition, E> {
                match PARTITION_SHAPES.iter().find(|(name, _)| *name == s) {
                    Some((_, shape)) => Ok(RawPartition::Named(shape.clone())),
                    None => Err(E::custom(format!(
                        "expected groups of nodes, \"majority-minority\", \"bridge\", \"ring\" \
                         or \"isolate-random\", found {s:?}"
                    ))),
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<RawPartition, A::Error> {
                let groups = Vec::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                Ok(RawPartition::Groups(groups))
            }
        }
        d.deserialize_any(V)
    }
}
