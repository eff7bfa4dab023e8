//! The network as a timeline: from a moment on, links behave differently (everywhere, on
//! one link, or on every link of one node), until `network = "base"` or `heal = true`
//! brings back the scenario's own `[network]`.

use super::{Applied, Draw, Fault, FaultKind, FaultTarget, NemesisDraw};
use crate::scenario::explain::{latency, node, ppm_text, quote, range_text};
use crate::scenario::model::{Latency, LinkBehaviour};
use crate::scenario::validator::{Checked, Validator};
use crate::scenario::values::{DurRange, LatencyDe, NodeName, Prob};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use simkv_protocols::{NodeId, Span, SpanRange};
use std::fmt;
use toml::Spanned;

/// New values for some of a link's settings; the settings left out keep their value.
/// `[network]`, `[[network.link]]` and a `network` fault all read their fields into one
/// (see [`link_change`]), so the three agree on what each field means.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkChange {
    /// New delay distribution.
    pub latency: Option<Latency>,
    /// New chance a message is lost, parts per million.
    pub drop_ppm: Option<u32>,
    /// New chance a message is delivered twice, parts per million.
    pub duplicate_ppm: Option<u32>,
    /// New chance a message is held back, parts per million.
    pub reorder_ppm: Option<u32>,
    /// New hold-back of a reordered message.
    pub reorder_delay: Option<SpanRange>,
}

/// The fields a link setting may hold, in the order files and `--explain` list them.
const LINK_FIELDS: &str = "`latency`, `drop`, `duplicate`, `reorder` or `reorder_delay`";

/// Reads the link fields of a raw table (`[network]`, `[[network.link]]`, a `network`
/// fault: each has `latency`, `drop`, `duplicate`, `reorder` and `reorder_delay`) into a
/// [`LinkChange`]. A macro because the three tables are distinct serde structs.
macro_rules! link_change {
    ($raw:expr) => {
        $crate::scenario::fault_kinds::LinkChange {
            latency: $raw.latency.map(|l| l.0),
            drop_ppm: $raw.drop.map(|p| p.0),
            duplicate_ppm: $raw.duplicate.map(|p| p.0),
            reorder_ppm: $raw.reorder.map(|p| p.0),
            reorder_delay: $raw.reorder_delay.map(|d| d.0),
        }
    };
}

pub(crate) use link_change;

impl LinkChange {
    /// `base` with this change's values in place of its own.
    pub fn over(&self, base: LinkBehaviour) -> LinkBehaviour {
        LinkBehaviour {
            latency: self.latency.unwrap_or(base.latency),
            drop_ppm: self.drop_ppm.unwrap_or(base.drop_ppm),
            duplicate_ppm: self.duplicate_ppm.unwrap_or(base.duplicate_ppm),
            reorder_ppm: self.reorder_ppm.unwrap_or(base.reorder_ppm),
            reorder_delay: self.reorder_delay.unwrap_or(base.reorder_delay),
        }
    }

    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == LinkChange::default()
    }

    /// `key = value` for each field it sets, as a scenario file spells them.
    fn fields(&self) -> Vec<String> {
        let mut fields = Vec::new();
        if let Some(l) = self.latency {
            fields.push(format!("latency = {}", latency(l)));
        }
        let ppm = [
            ("drop", self.drop_ppm),
            ("duplicate", self.duplicate_ppm),
            ("reorder", self.reorder_ppm),
        ];
        for (key, value) in ppm {
            if let Some(p) = value {
                fields.push(format!("{key} = {}", quote(&ppm_text(p))));
            }
        }
        if let Some(d) = self.reorder_delay {
            fields.push(format!("reorder_delay = {}", quote(&range_text(d))));
        }
        fields
    }
}

/// Which links a network change applies to. Client links are never changed: they stand in
/// for the outside world (see `[network]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetworkScope {
    /// Every node-to-node link.
    All,
    /// One link, in one direction or in both.
    Link {
        /// Sender.
        from: NodeId,
        /// Receiver.
        to: NodeId,
        /// The link from `to` to `from` too.
        both_ways: bool,
    },
    /// Every link to and from one node.
    Node(NodeId),
}

impl NetworkScope {
    /// Whether the directed link `from -> to` is in scope.
    pub fn covers(&self, from: NodeId, to: NodeId) -> bool {
        match *self {
            NetworkScope::All => true,
            NetworkScope::Link {
                from: f,
                to: t,
                both_ways,
            } => (from, to) == (f, t) || (both_ways && (from, to) == (t, f)),
            NetworkScope::Node(n) => from == n || to == n,
        }
    }
}

/// `network = { drop = "10%" }` (optionally with `link = ["n1", "n2"]`, `both_ways = true`
/// or `node = "n3"`), or `network = "base"`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NetworkFault {
    /// Every link back to the scenario's `[network]` (partitions and slow nodes stay).
    Base,
    /// The links in scope take the change's values from now on.
    Change(NetworkScope, LinkChange),
}

// Latency holds only whole microseconds, so equality is total.
impl Eq for NetworkFault {}

impl FaultKind for NetworkFault {
    type Raw = RawNetworkFault;

    fn check(raw: &Spanned<RawNetworkFault>, v: &Validator) -> Checked<NetworkFault> {
        let fields = match raw.get_ref() {
            RawNetworkFault::Base => return Ok(NetworkFault::Base),
            RawNetworkFault::Change(fields) => fields,
        };
        let change = link_change!(fields);
        if change.is_empty() {
            let message = format!("expected at least one of {LINK_FIELDS} to change");
            return v.fail(raw.span(), message);
        }
        if let (Some(both), None) = (&fields.both_ways, &fields.link) {
            let message = "expected `both_ways` only beside a `link = [from, to]`";
            return v.fail(both.span(), message);
        }
        let both_ways = fields.both_ways.as_ref().is_some_and(|b| *b.get_ref());
        let scope = match (&fields.link, &fields.node) {
            (Some(_), Some(n)) => {
                let message = "expected `link` or `node`, not both";
                return v.fail(n.span(), message);
            }
            (Some(link), None) => link_scope(v, link, both_ways)?,
            (None, Some(n)) => NetworkScope::Node(v.node(n)?),
            (None, None) => NetworkScope::All,
        };
        Ok(NetworkFault::Change(scope, change))
    }

    fn explain(&self) -> String {
        let (scope, change) = match self {
            NetworkFault::Base => return "network = \"base\"".into(),
            NetworkFault::Change(scope, change) => (scope, change),
        };
        let mut fields = match *scope {
            NetworkScope::All => Vec::new(),
            NetworkScope::Link {
                from,
                to,
                both_ways,
            } => {
                let mut f = vec![format!("link = [{}, {}]", node(from), node(to))];
                if both_ways {
                    f.push("both_ways = true".into());
                }
                f
            }
            NetworkScope::Node(n) => vec![format!("node = {}", node(n))],
        };
        fields.extend(change.fields());
        format!("network = {{ {} }}", fields.join(", "))
    }

    fn apply(&self, target: &mut dyn FaultTarget) -> Applied {
        target.network(self);
        let (scope, change) = match self {
            NetworkFault::Base => return Applied::Record("network: back to base".into()),
            NetworkFault::Change(scope, change) => (scope, change),
        };
        let scope = match *scope {
            NetworkScope::All => "all links".to_string(),
            NetworkScope::Link {
                from,
                to,
                both_ways,
            } => format!("{from}{}{to}", if both_ways { "<->" } else { "->" }),
            NetworkScope::Node(n) => format!("links of {n}"),
        };
        Applied::Record(format!("network {scope}: {}", change.fields().join(", ")))
    }
}

/// `link = ["n1", "n2"]`: two different nodes.
fn link_scope(
    v: &Validator,
    link: &Spanned<Vec<Spanned<NodeName>>>,
    both_ways: bool,
) -> Checked<NetworkScope> {
    let [from, to] = link.get_ref().as_slice() else {
        let found = link.get_ref().len();
        let message = format!("expected a link as two nodes [from, to], found {found}");
        return v.fail(link.span(), message);
    };
    let (from_id, to_id) = (v.node(from)?, v.node(to)?);
    if from_id == to_id {
        let message = format!("expected a link between two different nodes, found {from_id} twice");
        return v.fail(to.span(), message);
    }
    Ok(NetworkScope::Link {
        from: from_id,
        to: to_id,
        both_ways,
    })
}

impl NemesisDraw for NetworkFault {
    /// A degraded network, everywhere or around the drawn node: the `[network]` default's
    /// latency 2 to 20 times longer, 5-30% of messages lost and 0-30% held back; undone by
    /// going back to base.
    fn draw(d: &mut Draw<'_>) -> (Fault, Fault) {
        let factor = d.rng.between(2, 20);
        let drop = d.rng.between(5, 30) as u32 * 10_000;
        let reorder = d.rng.between(0, 30) as u32 * 10_000;
        let scope = if d.rng.below(2) == 0 {
            NetworkScope::All
        } else {
            NetworkScope::Node(d.node)
        };
        let change = LinkChange {
            latency: Some(scaled(d.latency, factor)),
            drop_ppm: Some(drop),
            reorder_ppm: Some(reorder),
            ..LinkChange::default()
        };
        let degrade = NetworkFault::Change(scope, change);
        (degrade.into(), NetworkFault::Base.into())
    }
}

/// `latency` `factor` times longer (every parameter of the distribution scaled).
fn scaled(latency: Latency, factor: u64) -> Latency {
    let k = |s: Span| Span(s.as_micros().saturating_mul(factor));
    match latency {
        Latency::Constant(c) => Latency::Constant(k(c)),
        Latency::Uniform(min, max) => Latency::Uniform(k(min), k(max)),
        Latency::Exponential(mean) => Latency::Exponential(k(mean)),
        Latency::Normal(mean, sd) => Latency::Normal(k(mean), k(sd)),
    }
}

/// `network = "base"` or `network = { ... }`, as serde reads it.
#[derive(Debug)]
pub(crate) enum RawNetworkFault {
    /// Back to the scenario's `[network]`.
    Base,
    /// A change, checked by the validator.
    Change(RawNetworkChange),
}

/// `network = { link = [...], both_ways = true, node = "n3", latency = ..., drop = ... }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNetworkChange {
    link: Option<Spanned<Vec<Spanned<NodeName>>>>,
    both_ways: Option<Spanned<bool>>,
    node: Option<Spanned<NodeName>>,
    latency: Option<LatencyDe>,
    drop: Option<Prob>,
    duplicate: Option<Prob>,
    reorder: Option<Prob>,
    reorder_delay: Option<DurRange>,
}

impl<'de> Deserialize<'de> for RawNetworkFault {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // The table is read through toml's own deserializer, so its values keep their spans.
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawNetworkFault;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "\"base\" or a table of {LINK_FIELDS}")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RawNetworkFault, E> {
                match s {
                    "base" => Ok(RawNetworkFault::Base),
                    _ => Err(E::custom(format!(
                        "expected \"base\" or a table such as {{ drop = \"10%\" }}, found {s:?}"
                    ))),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawNetworkFault, A::Error> {
                let change =
                    RawNetworkChange::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RawNetworkFault::Change(change))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::load::fixtures::{fail, load, pos, MINIMAL};
    use crate::scenario::{NemesisKind, Overrides, Scenario};

    fn with_fault(action: &str) -> String {
        format!("{MINIMAL}\n[[fault]]\nat = \"1s\"\n{action}\n")
    }

    fn fault_of(action: &str) -> Fault {
        let s = load(&with_fault(action), &Overrides::default()).unwrap_or_else(|e| panic!("{e}"));
        s.faults[0].fault.clone()
    }

    fn fails_at(action: &str, needle: &str, expected: &str) {
        let text = with_fault(action);
        let e = fail(&text, &Overrides::default());
        assert_eq!((e.line, e.column), pos(&text, needle), "{e}");
        assert!(e.message.contains(expected), "{e}\nexpected: {expected}");
    }

    fn n(i: u16) -> NodeId {
        NodeId(i)
    }

    #[test]
    fn network_faults_load_their_scope_and_only_the_fields_given() {
        let global = fault_of(
            r#"network = { drop = "10%", latency = { uniform = ["10ms", "200ms"] }, reorder = "30%" }"#,
        );
        let change = LinkChange {
            latency: Some(Latency::Uniform(Span::millis(10), Span::millis(200))),
            drop_ppm: Some(100_000),
            reorder_ppm: Some(300_000),
            ..LinkChange::default()
        };
        assert_eq!(
            global,
            NetworkFault::Change(NetworkScope::All, change).into()
        );

        let link = fault_of(r#"network = { link = ["n1", "n2"], drop = "50%" }"#);
        let one_way = NetworkScope::Link {
            from: n(0),
            to: n(1),
            both_ways: false,
        };
        let drop_half = LinkChange {
            drop_ppm: Some(500_000),
            ..LinkChange::default()
        };
        assert_eq!(link, NetworkFault::Change(one_way, drop_half).into());

        let both = fault_of(r#"network = { link = ["n1", "n2"], both_ways = true, drop = "50%" }"#);
        let NetworkScope::Link { .. } = one_way else {
            unreachable!()
        };
        let both_scope = NetworkScope::Link {
            from: n(0),
            to: n(1),
            both_ways: true,
        };
        assert_eq!(both, NetworkFault::Change(both_scope, drop_half).into());
        assert!(both_scope.covers(n(1), n(0)) && !one_way.covers(n(1), n(0)));

        let node =
            fault_of(r#"network = { node = "n3", latency = "40ms", reorder_delay = "1ms..9ms" }"#);
        let change = LinkChange {
            latency: Some(Latency::Constant(Span::millis(40))),
            reorder_delay: Some(SpanRange {
                min: Span::millis(1),
                max: Span::millis(9),
            }),
            ..LinkChange::default()
        };
        assert_eq!(
            node,
            NetworkFault::Change(NetworkScope::Node(n(2)), change).into()
        );
        let scope = NetworkScope::Node(n(2));
        assert!(scope.covers(n(2), n(0)) && scope.covers(n(1), n(2)) && !scope.covers(n(0), n(1)));

        assert_eq!(fault_of(r#"network = "base""#), NetworkFault::Base.into());
    }

    #[test]
    fn a_change_keeps_the_fields_it_does_not_name() {
        let base = LinkBehaviour {
            latency: Latency::Constant(Span::millis(3)),
            drop_ppm: 1,
            duplicate_ppm: 2,
            reorder_ppm: 3,
            reorder_delay: Span::millis(4).into(),
        };
        let change = LinkChange {
            drop_ppm: Some(500_000),
            ..LinkChange::default()
        };
        let changed = change.over(base);
        assert_eq!(changed.drop_ppm, 500_000);
        assert_eq!(
            LinkBehaviour {
                drop_ppm: 1,
                ..changed
            },
            base
        );
        assert_eq!(LinkChange::default().over(base), base);
    }

    #[test]
    fn explain_prints_network_and_slow_faults_so_they_load_back() {
        let actions = [
            r#"network = { drop = "10%", latency = { uniform = ["10ms", "200ms"] }, reorder = "30%" }"#,
            r#"network = { link = ["n1", "n2"], drop = "50%", duplicate = "0.5%" }"#,
            r#"network = { link = ["n3", "n1"], both_ways = true, latency = { normal = ["5ms", "1ms"] } }"#,
            r#"network = { node = "n3", latency = { exponential = "7ms" }, reorder_delay = "2ms" }"#,
            r#"network = { latency = { constant = "1.5ms" }, reorder_delay = "1ms..2.5ms" }"#,
            r#"network = "base""#,
            r#"slow = { node = "n2", factor = 10 }"#,
            r#"unslow = "n2""#,
        ];
        for action in actions {
            let s: Scenario = load(&with_fault(action), &Overrides::default()).unwrap();
            let explained = s.faults[0].fault.explain();
            let again = fault_of(&explained);
            assert_eq!(again, s.faults[0].fault, "{action}\n{explained}");
            let whole = s.explain();
            let reloaded = load(&whole, &Overrides::default()).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(reloaded.faults[0].fault, s.faults[0].fault, "{whole}");
        }
        assert_eq!(
            fault_of(actions[1]).explain(),
            r#"network = { link = ["n1", "n2"], drop = "50%", duplicate = "0.5%" }"#
        );
    }

    #[test]
    fn a_nemesis_may_draw_network_and_slow_faults() {
        let text = format!("{MINIMAL}\n[nemesis]\nkinds = [\"network\", \"slow\"]\n");
        let s = load(&text, &Overrides::default()).unwrap_or_else(|e| panic!("{e}"));
        let kinds = &s.nemeses.first().expect("a nemesis").kinds;
        assert_eq!(*kinds, [NemesisKind::Network, NemesisKind::Slow]);
        let again = load(&s.explain(), &Overrides::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again.nemeses, s.nemeses);
    }

    #[test]
    fn bad_network_faults_say_where_and_what_was_expected() {
        fails_at("network = {}", "{}", "expected at least one of `latency`");
        fails_at(
            r#"network = { link = ["n1"], drop = "5%" }"#,
            r#"["n1"]"#,
            "expected a link as two nodes [from, to], found 1",
        );
        fails_at(
            r#"network = { link = ["n1", "n1"], drop = "5%" }"#,
            r#""n1"]"#,
            "two different nodes",
        );
        fails_at(
            r#"network = { link = ["n1", "n2"], node = "n3", drop = "5%" }"#,
            r#""n3""#,
            "expected `link` or `node`, not both",
        );
        fails_at(r#"network = { node = "n9", drop = "5%" }"#, r#""n9""#, "n9");
        fails_at(
            r#"network = { both_ways = true, drop = "5%" }"#,
            "true",
            "expected `both_ways` only beside a `link",
        );
        fails_at(
            r#"network = { drop = "150%" }"#,
            r#""150%""#,
            "from 0% to 100%",
        );
        fails_at(
            r#"network = "reset""#,
            r#""reset""#,
            "expected \"base\" or a table",
        );
        fails_at(r#"network = { colour = "red" }"#, "colour", "colour");
        fails_at(
            r#"network = { latency = { uniform = ["5ms", "1ms"] } }"#,
            "{ uniform",
            "runs backwards",
        );
        fails_at("network = 3.5", "3.5", "\"base\" or a table");
    }
}
