//! Fault targets: which nodes a node fault aims at, named in a scenario as a node (`"n1"`),
//! a role (`"leader"`, `"a-follower"`, `"all-but-leader"`), a set (`"majority"`,
//! `"minority"`, Jepsen's `"primaries"`, `"minority-third"`, `"one"`, `"all"`), or a list
//! to draw one of per seed (`["n1", "n2", "leader"]`). Several named nodes at once are
//! joined by `+` (`"n1+n3"`): what a set or role resolved to, as `simkv shrink` pins it.
//!
//! A target is resolved when its fault fires, against the run as it is then: `"leader"` is
//! whoever leads at that instant. Random choices draw from the faults stream, so that a seed
//! fixes them. A role that no node holds resolves to nothing, and the fault's `if_none`
//! says what happens then.

use super::explain::quote;
use super::validator::{list, Checked, Validator};
use super::values::NodeName;
use crate::rng::Stream;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use simkv_protocols::{NodeId, ProtocolInfo, RoleSpec};
use std::fmt;
use toml::Spanned;

/// Which nodes a fault aims at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Targets {
    /// These nodes: a named node, or what a selector resolved to.
    Nodes(Vec<NodeId>),
    /// Nodes chosen when the fault fires.
    Select(Selector),
    /// One of these, drawn when the fault fires.
    OneOf(Vec<Targets>),
}

/// A set of nodes named by what they are, resolved when the fault fires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    /// `one` (or `random`): one node, drawn.
    One,
    /// `all`: every node.
    All,
    /// `majority`: a random majority.
    Majority,
    /// `minority`: a random minority (the largest that is not a majority).
    Minority,
    /// `minority-third`: a random third of the cluster, rounded down, at least one
    /// (Jepsen's `:minority-third`).
    MinorityThird,
    /// `primaries`: every node holding a leading role (Jepsen's `:primaries`).
    Primaries,
    /// `ROLE`: the node holding the role, the one in the newest term if several do (ties
    /// drawn).
    Role(&'static str),
    /// `a-ROLE`: one of the nodes holding the role, drawn.
    ARole(&'static str),
    /// `every-ROLE`: every node holding the role.
    EveryRole(&'static str),
    /// `all-but-ROLE`: every node but the one `ROLE` names.
    AllButRole(&'static str),
    /// `all-but-nK`: every node but this one.
    AllButNode(NodeId),
}

/// What to do when a target resolves to no node (no leader right now).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IfNone {
    /// Try again every 10 ms of virtual time until some node qualifies, until the workload
    /// ends (then skip).
    #[default]
    Wait,
    /// Skip the fault, recording that it found no target.
    Skip,
    /// Aim at one node drawn at random instead.
    Random,
}

impl IfNone {
    /// As scenarios spell it.
    pub fn name(self) -> &'static str {
        match self {
            IfNone::Wait => "wait",
            IfNone::Skip => "skip",
            IfNone::Random => "random",
        }
    }
}

/// What a node is right now, as the engine tells it to a resolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeView {
    /// Its role, `None` while it is crashed.
    pub role: Option<&'static RoleSpec>,
    /// Its term, if its protocol has terms.
    pub term: Option<u64>,
    /// Not in the cluster (not joined yet, or gone for good): no set or role names it.
    pub outside: bool,
}

/// The run as a resolution sees it.
pub(crate) struct World<'a> {
    /// Each node, in order.
    pub nodes: Vec<NodeView>,
    /// The faults stream.
    pub rng: &'a mut Stream,
    /// Whether a role no node holds falls back to one node drawn at random.
    pub random_if_none: bool,
}

impl From<NodeId> for Targets {
    fn from(node: NodeId) -> Targets {
        Targets::Nodes(vec![node])
    }
}

impl Targets {
    /// The nodes of a resolved target (empty for one not resolved yet).
    pub fn nodes(&self) -> &[NodeId] {
        match self {
            Targets::Nodes(nodes) => nodes,
            _ => &[],
        }
    }

    /// Whether resolving it draws or reads roles (a named node needs neither).
    pub fn is_named(&self) -> bool {
        matches!(self, Targets::Nodes(_))
    }

    /// The target as a scenario writes it.
    pub fn explain(&self) -> String {
        match self {
            Targets::Nodes(nodes) if nodes.len() == 1 => quote(&nodes[0].to_string()),
            Targets::Nodes(nodes) => {
                // Several nodes at once (`"n1+n3"`); a list would read back as a draw.
                let names: Vec<String> = nodes.iter().map(|n| n.to_string()).collect();
                quote(&names.join("+"))
            }
            Targets::Select(s) => quote(&s.name()),
            Targets::OneOf(choices) => {
                let names: Vec<String> = choices.iter().map(Targets::explain).collect();
                format!("[{}]", names.join(", "))
            }
        }
    }

    /// The nodes this target names now, and how it resolved (for the record) when it was
    /// not a named node; `Err` says why no node qualifies.
    pub(crate) fn resolve(
        &self,
        w: &mut World<'_>,
    ) -> Result<(Vec<NodeId>, Option<String>), String> {
        match self {
            Targets::Nodes(nodes) => Ok((nodes.clone(), None)),
            Targets::OneOf(choices) => {
                let pick = &choices[w.rng.below(choices.len() as u64) as usize];
                let (nodes, how) = pick.resolve(w)?;
                let how = how.unwrap_or_else(|| "named".into());
                Ok((nodes, Some(format!("drawn from {}: {how}", self.explain()))))
            }
            Targets::Select(s) => match s.resolve(w) {
                Ok(nodes) => Ok((nodes.clone(), Some(s.describe(&nodes, w)))),
                Err(why) if w.random_if_none => {
                    let members: Vec<usize> = (0..w.nodes.len())
                        .filter(|i| !w.nodes[*i].outside)
                        .collect();
                    let node = NodeId(members[w.rng.below(members.len() as u64) as usize] as u16);
                    Ok((vec![node], Some(format!("{why}; drawn instead: {node}"))))
                }
                Err(why) => Err(why),
            },
        }
    }
}

impl Selector {
    /// As scenarios spell it.
    pub fn name(&self) -> String {
        match self {
            Selector::One => "one".into(),
            Selector::All => "all".into(),
            Selector::Majority => "majority".into(),
            Selector::Minority => "minority".into(),
            Selector::MinorityThird => "minority-third".into(),
            Selector::Primaries => "primaries".into(),
            Selector::Role(r) => (*r).into(),
            Selector::ARole(r) => format!("a-{r}"),
            Selector::EveryRole(r) => format!("every-{r}"),
            Selector::AllButRole(r) => format!("all-but-{r}"),
            Selector::AllButNode(n) => format!("all-but-{n}"),
        }
    }

    /// Whether it names a role (so that it may find no node).
    pub fn names_a_role(&self) -> bool {
        matches!(
            self,
            Selector::Primaries
                | Selector::Role(_)
                | Selector::ARole(_)
                | Selector::EveryRole(_)
                | Selector::AllButRole(_)
        )
    }

    fn resolve(&self, w: &mut World<'_>) -> Result<Vec<NodeId>, String> {
        // The cluster as it is now: a set is drawn from its members.
        let all: Vec<NodeId> = (0..w.nodes.len())
            .filter(|i| !w.nodes[*i].outside)
            .map(|i| NodeId(i as u16))
            .collect();
        let n = all.len();
        let holders = |role: &str| -> Vec<NodeId> {
            let holds = |v: &NodeView| v.role.is_some_and(|r| r.name == role);
            all.iter()
                .copied()
                .filter(|id| holds(&w.nodes[id.index()]))
                .collect()
        };
        let none = |what: String| Err(format!("no node holds the role {what} now"));
        let nodes = match self {
            Selector::One => vec![all[w.rng.below(n as u64) as usize]],
            Selector::All => all,
            Selector::Majority => draw_subset(&all, n / 2 + 1, w.rng),
            Selector::Minority if n < 3 => {
                return Err(format!("a cluster of {n} has no minority"));
            }
            Selector::Minority => draw_subset(&all, n.div_ceil(2) - 1, w.rng),
            Selector::MinorityThird => draw_subset(&all, (n / 3).max(1), w.rng),
            Selector::Primaries => {
                let leads = |id: &NodeId| w.nodes[id.index()].role.is_some_and(|r| r.leads);
                let found: Vec<NodeId> = all.iter().copied().filter(leads).collect();
                if found.is_empty() {
                    return none("that leads".into());
                }
                found
            }
            Selector::Role(role) => match newest(&holders(role), w) {
                Some(node) => vec![node],
                None => return none(quote(role)),
            },
            Selector::ARole(role) | Selector::EveryRole(role) => {
                let found = holders(role);
                if found.is_empty() {
                    return none(quote(role));
                }
                if matches!(self, Selector::EveryRole(_)) {
                    found
                } else {
                    vec![found[w.rng.below(found.len() as u64) as usize]]
                }
            }
            Selector::AllButRole(role) => match newest(&holders(role), w) {
                Some(node) => all.into_iter().filter(|id| *id != node).collect(),
                None => return none(quote(role)),
            },
            Selector::AllButNode(node) => all.into_iter().filter(|id| id != node).collect(),
        };
        Ok(nodes)
    }

    /// `leader: n3, term 4`, for the record of what the target resolved to.
    fn describe(&self, nodes: &[NodeId], w: &World<'_>) -> String {
        let names: Vec<String> = nodes.iter().map(|n| n.to_string()).collect();
        let mut text = format!("{}: {}", self.name(), names.join(" "));
        if let (Selector::Role(_), [node]) = (self, nodes) {
            if let Some(term) = w.nodes[node.index()].term {
                text.push_str(&format!(", term {term}"));
            }
        }
        text
    }
}

/// The node leading now: of the nodes holding a role that leads, the one in the newest term
/// (ties drawn); `Err` says that none leads.
pub(crate) fn leading_node(w: &mut World<'_>) -> Result<NodeId, String> {
    let leads: Vec<NodeId> = (0..w.nodes.len())
        .filter(|i| w.nodes[*i].role.is_some_and(|r| r.leads))
        .map(|i| NodeId(i as u16))
        .collect();
    newest(&leads, w).ok_or_else(|| "no node holds a role that leads now".to_string())
}

/// Of the nodes holding a role, the one in the newest term; ties drawn.
fn newest(holders: &[NodeId], w: &mut World<'_>) -> Option<NodeId> {
    let newest_term = holders.iter().map(|id| w.nodes[id.index()].term).max()?;
    let tied: Vec<NodeId> = holders
        .iter()
        .copied()
        .filter(|id| w.nodes[id.index()].term == newest_term)
        .collect();
    Some(tied[w.rng.below(tied.len() as u64) as usize])
}

/// `size` distinct nodes of `all`, drawn, in node order.
pub(crate) fn draw_subset(all: &[NodeId], size: usize, rng: &mut Stream) -> Vec<NodeId> {
    let mut pool = all.to_vec();
    let mut chosen = Vec::with_capacity(size);
    for _ in 0..size.min(pool.len()) {
        chosen.push(pool.swap_remove(rng.below(pool.len() as u64) as usize));
    }
    chosen.sort();
    chosen
}

/// A target as serde reads it: one name, or a list of names to draw one of.
#[derive(Debug)]
pub(crate) enum RawTargets {
    /// `"leader"`.
    One(NodeName),
    /// `["n1", "leader"]`, each name located.
    Choice(Vec<Spanned<NodeName>>),
}

impl<'de> Deserialize<'de> for RawTargets {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawTargets;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a node (\"n1\"), a role (\"leader\"), a set (\"majority\") or a list of \
                     them to draw one of",
                )
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RawTargets, E> {
                Ok(RawTargets::One(NodeName(s.to_string())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<RawTargets, A::Error> {
                let names = Vec::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                Ok(RawTargets::Choice(names))
            }
        }
        d.deserialize_any(V)
    }
}

/// Whether `name` is a target `protocol` has (a node name, a set, or a role it declares,
/// alone or prefixed), for a swarm that keeps only the targets a protocol can be aimed at.
pub(crate) fn target_applies(name: &str, protocol: &ProtocolInfo) -> bool {
    let has = |role: &str| protocol.roles.iter().any(|r| r.name == role);
    let is_node =
        |t: &str| t.len() > 1 && t.starts_with('n') && t[1..].bytes().all(|b| b.is_ascii_digit());
    if is_node(name) || SETS.iter().any(|(n, _)| *n == name) {
        return true;
    }
    if name == "primaries" {
        return protocol.roles.iter().any(|r| r.leads);
    }
    let role = ["all-but-", "a-", "every-"]
        .iter()
        .find_map(|p| name.strip_prefix(p))
        .unwrap_or(name);
    is_node(role) || has(role)
}

/// The sets every protocol's targets may name, as scenarios spell them.
const SETS: &[(&str, Selector)] = &[
    ("one", Selector::One),
    ("random", Selector::One),
    ("all", Selector::All),
    ("majority", Selector::Majority),
    ("minority", Selector::Minority),
    ("minority-third", Selector::MinorityThird),
];

impl Validator<'_> {
    /// A fault's target: a node, a set, a role of the chosen protocol, or a list of them.
    pub(crate) fn targets(&self, raw: &Spanned<RawTargets>) -> Checked<Targets> {
        match raw.get_ref() {
            RawTargets::One(name) => self.target(name, raw.span()),
            RawTargets::Choice(names) => {
                if names.is_empty() {
                    return self.fail(raw.span(), "expected at least one target to draw from");
                }
                let choices = names
                    .iter()
                    .map(|name| self.target(name.get_ref(), name.span()))
                    .collect::<Checked<Vec<Targets>>>()?;
                Ok(Targets::OneOf(choices))
            }
        }
    }

    fn target(&self, name: &NodeName, span: std::ops::Range<usize>) -> Checked<Targets> {
        let text = name.0.as_str();
        if text.contains('+') {
            // `"n1+n3"`: these nodes at once, as a selector resolved them in a run that
            // `simkv shrink` pinned.
            let mut nodes = Vec::new();
            for part in text.split('+') {
                if !(part.len() > 1
                    && part.starts_with('n')
                    && part[1..].bytes().all(|b| b.is_ascii_digit()))
                {
                    return self.fail(
                        span,
                        format!(
                            "`{}` is not a node name: `+` joins node names (\"n1+n3\")",
                            part.escape_debug()
                        ),
                    );
                }
                let node = self.node(&Spanned::new(span.clone(), NodeName(part.into())))?;
                if nodes.contains(&node) {
                    return self.fail(span, format!("{part} is named twice"));
                }
                nodes.push(node);
            }
            return Ok(Targets::Nodes(nodes));
        }
        if text.starts_with('n') && text[1..].bytes().all(|b| b.is_ascii_digit()) {
            return self
                .node(&Spanned::new(span, name.clone()))
                .map(Targets::from);
        }
        if let Some((_, s)) = SETS.iter().find(|(n, _)| *n == text) {
            return Ok(Targets::Select(s.clone()));
        }
        if text == "primaries" {
            if !self.roles().iter().any(|r| r.leads) {
                return self.fail(
                    span,
                    format!(
                        "{} has no leading role, so no primaries",
                        self.protocol_name()
                    ),
                );
            }
            return Ok(Targets::Select(Selector::Primaries));
        }
        if let Some(rest) = text.strip_prefix("all-but-") {
            if rest.starts_with('n') && rest[1..].bytes().all(|b| b.is_ascii_digit()) {
                let node = self.node(&Spanned::new(span, NodeName(rest.into())))?;
                return Ok(Targets::Select(Selector::AllButNode(node)));
            }
            return Ok(Targets::Select(Selector::AllButRole(
                self.role(rest, text, span)?,
            )));
        }
        if let Some(rest) = text.strip_prefix("a-") {
            return Ok(Targets::Select(Selector::ARole(
                self.role(rest, text, span)?,
            )));
        }
        if let Some(rest) = text.strip_prefix("every-") {
            return Ok(Targets::Select(Selector::EveryRole(
                self.role(rest, text, span)?,
            )));
        }
        Ok(Targets::Select(Selector::Role(
            self.role(text, text, span)?,
        )))
    }

    /// A role of the chosen protocol, by name; the error lists what a target may be.
    fn role(&self, role: &str, text: &str, span: std::ops::Range<usize>) -> Checked<&'static str> {
        let roles = self.roles();
        if let Some(spec) = roles.iter().find(|r| r.name == role) {
            return Ok(spec.name);
        }
        let names: Vec<&str> = roles.iter().map(|r| r.name).collect();
        let sets: Vec<&str> = SETS.iter().map(|(n, _)| *n).collect();
        let message = format!(
            "expected a node n1..n{}, one of {}, `primaries`, or a role of {} ({}) alone or as \
             `a-ROLE`, `every-ROLE` or `all-but-ROLE`; found {text:?}",
            self.nodes,
            list(sets),
            self.protocol_name(),
            list(names),
        );
        self.fail(span, message)
    }

    /// A nemesis's `on_role`: a role of the chosen protocol, by name, alone or as
    /// `new-ROLE`.
    pub(crate) fn on_role(&self, raw: &Spanned<String>) -> Checked<super::model::OnRole> {
        let roles = self.roles();
        let text = raw.get_ref().as_str();
        let (name, new) = match text.strip_prefix("new-") {
            Some(rest) => (rest, true),
            None => (text, false),
        };
        if let Some(spec) = roles.iter().find(|r| r.name == name) {
            return Ok(super::model::OnRole {
                role: spec.name,
                new,
            });
        }
        let names: Vec<&str> = roles.iter().map(|r| r.name).collect();
        let message = format!(
            "expected a role of {} for `on_role` ({}), alone or as `new-ROLE`; found {:?}",
            self.protocol_name(),
            list(names),
            raw.get_ref()
        );
        self.fail(raw.span(), message)
    }

    fn roles(&self) -> &'static [RoleSpec] {
        self.protocol.map_or(&[], |p| p.roles)
    }

    fn protocol_name(&self) -> String {
        self.protocol
            .map_or("the protocol".into(), |p| format!("protocol `{}`", p.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use simkv_protocols::RoleKind;

    fn world<'a>(roles: &[(Option<usize>, Option<u64>)], rng: &'a mut Stream) -> World<'a> {
        let specs = <simkv_protocols::raft::Role as RoleKind>::SPECS;
        let nodes = roles
            .iter()
            .map(|(r, term)| NodeView {
                role: r.map(|i| &specs[i]),
                term: *term,
                outside: false,
            })
            .collect();
        World {
            nodes,
            rng,
            random_if_none: false,
        }
    }

    const FOLLOWER: Option<usize> = Some(0);
    const LEADER: Option<usize> = Some(3);

    #[test]
    fn a_role_resolves_to_its_holder_in_the_newest_term() {
        let mut rng = crate::rng::Streams::new(1, 0).faults;
        // n1 leads a stale term 2, n3 leads term 3; n2 is crashed.
        let mut w = world(
            &[(LEADER, Some(2)), (None, None), (LEADER, Some(3))],
            &mut rng,
        );
        let leader = Targets::Select(Selector::Role("leader"));
        let (nodes, how) = leader.resolve(&mut w).unwrap();
        assert_eq!(nodes, [NodeId(2)]);
        assert_eq!(how.as_deref(), Some("leader: n3, term 3"));
        let all_but = Targets::Select(Selector::AllButRole("leader"));
        assert_eq!(all_but.resolve(&mut w).unwrap().0, [NodeId(0), NodeId(1)]);
        let primaries = Targets::Select(Selector::Primaries);
        assert_eq!(primaries.resolve(&mut w).unwrap().0, [NodeId(0), NodeId(2)]);
    }

    /// Sets are drawn from the cluster as it is: nodes outside it (not joined yet, or gone
    /// for good) are in no set, and `all` is every member.
    #[test]
    fn sets_name_only_the_members_of_the_cluster() {
        let mut rng = crate::rng::Streams::new(1, 0).faults;
        let mut w = world(&[(FOLLOWER, Some(1)); 5], &mut rng);
        w.nodes[1].outside = true;
        w.nodes[3].outside = true;
        let members = [NodeId(0), NodeId(2), NodeId(4)];
        let all = Targets::Select(Selector::All);
        assert_eq!(all.resolve(&mut w).unwrap().0, members);
        for _ in 0..50 {
            for s in [Selector::One, Selector::Majority, Selector::Minority] {
                let (nodes, _) = Targets::Select(s).resolve(&mut w).unwrap();
                assert!(nodes.iter().all(|n| members.contains(n)), "{nodes:?}");
            }
        }
        let majority = Targets::Select(Selector::Majority);
        assert_eq!(
            majority.resolve(&mut w).unwrap().0.len(),
            2,
            "2 of 3 members"
        );
    }

    #[test]
    fn a_role_nobody_holds_resolves_to_nothing() {
        let mut rng = crate::rng::Streams::new(1, 0).faults;
        let mut w = world(
            &[(FOLLOWER, Some(1)), (FOLLOWER, Some(1)), (None, None)],
            &mut rng,
        );
        let leader = Targets::Select(Selector::Role("leader"));
        let err = leader.resolve(&mut w).unwrap_err();
        assert_eq!(err, "no node holds the role \"leader\" now");
        assert!(Targets::Select(Selector::Primaries)
            .resolve(&mut w)
            .is_err());
    }

    #[test]
    fn sets_have_their_sizes_and_draws_follow_the_seed() {
        let sets = [
            (Selector::Majority, 3),
            (Selector::Minority, 2),
            (Selector::MinorityThird, 1),
            (Selector::All, 5),
            (Selector::One, 1),
        ];
        let draw_all = |seed: u64| {
            let mut rng = crate::rng::Streams::new(seed, 0).faults;
            let mut w = world(&[(FOLLOWER, Some(1)); 5], &mut rng);
            let mut drawn = Vec::new();
            for (set, size) in &sets {
                let nodes = Targets::Select(set.clone()).resolve(&mut w).unwrap().0;
                assert_eq!(nodes.len(), *size, "{set:?}");
                drawn.push(nodes);
            }
            drawn
        };
        let mut distinct = std::collections::BTreeSet::new();
        for seed in 0..50 {
            let drawn = draw_all(seed);
            assert_eq!(drawn, draw_all(seed), "same seed, same draws");
            distinct.insert(drawn);
        }
        assert!(distinct.len() > 10, "draws vary with the seed");
    }
}
