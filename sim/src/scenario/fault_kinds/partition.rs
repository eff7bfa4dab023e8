//! Partitions (groups, named shapes, one node isolated, one-way cuts) and the heal that
//! undoes them.

use super::{Applied, Draw, Fault, FaultKind, FaultTarget, NemesisDraw};
use crate::scenario::explain::{node, quote};
use crate::scenario::targets::{draw_subset, leading_node, RawTargets, Targets, World};
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
    /// A majority against a minority, the leader on the given side: resolved into
    /// [`PartitionShape::Groups`] when the fault fires, from the roles the nodes hold then.
    /// (Applied unresolved, it is a plain [`PartitionShape::MajorityMinority`].)
    LeaderOn(LeaderSide),
}

/// The side of a majority-minority partition a leader is put on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LeaderSide {
    /// The leader is cut off with a minority: the majority must elect another (Raft section
    /// 5.2) while the old one keeps believing it leads.
    Minority,
    /// The leader keeps a majority; the minority is cut off from it.
    Majority,
}

impl LeaderSide {
    /// As scenarios spell it.
    pub fn name(self) -> &'static str {
        match self {
            LeaderSide::Minority => "minority",
            LeaderSide::Majority => "majority",
        }
    }
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
            RawPartition::Led(led) => return check_led(led, v),
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
            PartitionShape::LeaderOn(side) => format!(
                "partition = {{ shape = \"majority-minority\", leader = {} }}",
                quote(side.name())
            ),
            named => {
                let name = PARTITION_SHAPES.iter().find(|(_, s)| s == named);
                format!("partition = {}", quote(name.map_or("", |(n, _)| *n)))
            }
        }
    }

    fn resolve(&self, w: &mut World<'_>) -> Result<(Partition, Option<String>), String> {
        let PartitionShape::LeaderOn(side) = self.0 else {
            return Ok((self.clone(), None));
        };
        let leader = match leading_node(w) {
            Ok(leader) => leader,
            Err(why) if w.random_if_none => {
                let how = format!("{why}; a majority-minority drawn instead");
                return Ok((Partition(PartitionShape::MajorityMinority), Some(how)));
            }
            Err(why) => return Err(why),
        };
        let n = w.nodes.len();
        let majority_size = n / 2 + 1;
        let others: Vec<NodeId> = (0..n as u16)
            .map(NodeId)
            .filter(|id| *id != leader)
            .collect();
        // The leader's side: it and nodes drawn to fill that side; the rest form the other.
        let with_leader = match side {
            LeaderSide::Majority => majority_size - 1,
            LeaderSide::Minority => n - majority_size - 1,
        };
        let mut side_of_leader = draw_subset(&others, with_leader, w.rng);
        side_of_leader.push(leader);
        side_of_leader.sort();
        let rest: Vec<NodeId> = others
            .into_iter()
            .filter(|id| !side_of_leader.contains(id))
            .collect();
        let term = w.nodes[leader.index()]
            .term
            .map_or(String::new(), |t| format!(", term {t}"));
        let how = format!("leader {leader}{term}, on the {} side", side.name());
        let groups = vec![side_of_leader, rest];
        Ok((Partition(PartitionShape::Groups(groups)), Some(how)))
    }

    fn apply(&self, target: &mut dyn FaultTarget) -> Applied {
        partition(target, &self.0)
    }
    fn undo(&self) -> Option<Fault> {
        Some(Heal.into())
    }
}

/// `partition = { shape = "majority-minority", leader = "minority" }`: the protocol must
/// have a leading role, and the cluster a minority (three nodes or more).
fn check_led(led: &RawLedPartition, v: &Validator) -> Checked<Partition> {
    if led.shape.get_ref() != "majority-minority" {
        let message = format!(
            "expected shape = \"majority-minority\" (the shape a leader's side applies to), \
             found {:?}",
            led.shape.get_ref()
        );
        return v.fail(led.shape.span(), message);
    }
    let leads = v.protocol.is_some_and(|p| p.roles.iter().any(|r| r.leads));
    if !leads {
        let name = v.protocol.map_or("the protocol", |p| p.name);
        let message =
            format!("`leader` names the leader's side, but protocol `{name}` has no leading role");
        return v.fail(led.leader.span(), message);
    }
    if v.nodes < 3 {
        let message = format!(
            "expected a cluster of at least 3 nodes for a leader's side (a minority to put it \
             on or cut off), found {}",
            v.nodes
        );
        return v.fail(led.leader.span(), message);
    }
    Ok(Partition(PartitionShape::LeaderOn(*led.leader.get_ref())))
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

/// `partition = [["n1"], ["n2", "n3"]]`, a named shape, or a shape with the leader's side.
#[derive(Debug)]
pub(crate) enum RawPartition {
    /// A shape that names no node.
    Named(PartitionShape),
    /// Explicit groups, checked against the cluster by the validator.
    Groups(Vec<Spanned<Vec<Spanned<NodeName>>>>),
    /// `{ shape = "majority-minority", leader = "minority" }`.
    Led(RawLedPartition),
}

/// `{ shape = "majority-minority", leader = "minority" | "majority" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLedPartition {
    shape: Spanned<String>,
    leader: Spanned<LeaderSide>,
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
                     \"bridge\", \"ring\", \"isolate-random\" or { shape = \"majority-minority\", \
                     leader = \"minority\" }",
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
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<RawPartition, A::Error> {
                let led = RawLedPartition::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RawPartition::Led(led))
            }
        }
        d.deserialize_any(V)
    }
}
