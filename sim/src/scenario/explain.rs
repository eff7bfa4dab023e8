//! The resolved scenario as text: every field, defaults included, in the scenario format.
//!
//! The output is itself a valid scenario file that loads back into the same [`Scenario`]
//! (the tests check it), so `--explain` output can be saved and edited. Durations and
//! probabilities are printed exactly, never rounded.

use super::model::{
    Arrival, Backoff, KeyDistribution, Latency, LinkBehaviour, OpKind, Scenario, Target,
};
use simkv_protocols::{Key, NodeId, Op, ParamValue, Span, SpanRange, Time};
use std::fmt::Write;

impl Scenario {
    /// The resolved scenario, every field including defaults and every protocol
    /// parameter, as a scenario file would spell it. Deterministic: the same scenario
    /// always gives the same bytes.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        let source = self.source.replace(['\n', '\r'], " ");
        out.push_str("# The resolved scenario: every default filled in, every override applied\n");
        let _ = writeln!(out, "# source: {source}");
        if !self.swarm.is_empty() {
            // The draws are made explicit below; without [swarm] this file is the seed's world.
            let _ = writeln!(out, "# [swarm] drew for seed {}:", self.seed);
            for entry in &self.swarm {
                let _ = writeln!(out, "#   {}", entry.replace(['\n', '\r'], " "));
            }
        }
        let _ = writeln!(out, "name = {}", quote(&self.name));
        let _ = writeln!(out, "description = {}", quote(&self.description));
        let _ = writeln!(out, "seed = {}", self.seed);
        let _ = writeln!(out, "duration = {}", quoted_span(self.duration));
        let _ = writeln!(out, "max_events = {}", self.max_events);
        self.explain_cluster(&mut out);
        self.explain_network(&mut out);
        self.explain_clocks(&mut out);
        self.explain_workload(&mut out);
        self.explain_script(&mut out);
        self.explain_faults(&mut out);
        self.explain_nemesis(&mut out);
        self.explain_disk(&mut out);
        let checks = &self.checks;
        out.push_str("\n[checks]\n");
        let _ = writeln!(out, "liveness = {}", quoted_span(checks.liveness));
        let _ = writeln!(out, "settle = {}", quoted_span(checks.settle));
        let _ = writeln!(
            out,
            "liveness_mode = {}",
            quote(checks.liveness_mode.name())
        );
        let stated = &checks.stated;
        if let Some(n) = stated.max_messages_per_op {
            // `{:?}` prints the shortest text that reads back as the same f64.
            let _ = writeln!(out, "max_messages_per_op = {n:?}");
        }
        if let Some(bound) = stated.leader_within {
            let _ = writeln!(out, "leader_within = {}", quoted_span(bound));
        }
        if stated.one_leader {
            out.push_str("one_leader = true\n");
        }
        if stated.false_deaths {
            out.push_str("false_deaths = true\n");
        }
        out
    }

    fn explain_cluster(&self, out: &mut String) {
        let cluster = &self.cluster;
        out.push_str("\n[cluster]\n");
        let _ = writeln!(out, "protocol = {}", quote(cluster.protocol.name()));
        let _ = writeln!(out, "nodes = {}", cluster.nodes);
        if cluster.initial.len() < usize::from(cluster.nodes) {
            let names: Vec<String> = cluster.initial.iter().map(|n| node(*n)).collect();
            let _ = writeln!(out, "initial = [{}]", names.join(", "));
        }
        let bugs: Vec<String> = cluster.bugs.iter().map(|b| quote(b)).collect();
        let _ = writeln!(out, "bugs = [{}]", bugs.join(", "));
        let _ = writeln!(
            out,
            "\n[cluster.params.{}]",
            quote_key(cluster.protocol.name())
        );
        for (name, value) in cluster.params.iter() {
            let text = match value {
                ParamValue::Span(s) => quoted_span(*s),
                ParamValue::SpanRange(r) => quote(&range_text(*r)),
                ParamValue::Int(i) => i.to_string(),
                ParamValue::Bool(b) => b.to_string(),
            };
            let _ = writeln!(out, "{} = {text}", quote_key(name));
        }
    }

    fn explain_network(&self, out: &mut String) {
        let network = &self.network;
        out.push_str("\n[network]\n");
        behaviour(out, &network.default);
        let _ = writeln!(out, "fifo = {}", network.fifo);
        out.push_str("# client links only delay: no drop, duplication or reordering\n");
        let _ = writeln!(out, "client_latency = {}", latency(network.client.latency));
        for link in &network.links {
            out.push_str("\n[[network.link]]\n");
            let _ = writeln!(out, "from = {}", node(link.from));
            let _ = writeln!(out, "to = {}", node(link.to));
            behaviour(out, &link.behaviour);
        }
    }

    fn explain_disk(&self, out: &mut String) {
        let crash = super::load::CRASH_MODES
            .iter()
            .find(|(_, mode)| *mode == self.disk.crash)
            .map_or("keep-unsynced", |(name, _)| *name);
        out.push_str("\n[disk]\n");
        let _ = writeln!(out, "crash = {}", quote(crash));
        let _ = writeln!(out, "sync = {}", quote(&range_text(self.disk.sync)));
    }

    fn explain_clocks(&self, out: &mut String) {
        if self.clocks.is_empty() {
            out.push_str("\n# no [[clock]] settings: every clock is exact\n");
        }
        for clock in &self.clocks {
            out.push_str("\n[[clock]]\n");
            let _ = writeln!(out, "node = {}", node(clock.node));
            let _ = writeln!(
                out,
                "offset = {}",
                quote(&signed_span_text(clock.offset_us))
            );
            let _ = writeln!(out, "drift_ppm = {}", clock.drift_ppm);
        }
    }

    fn explain_workload(&self, out: &mut String) {
        let w = &self.workload;
        out.push_str("\n[workload]\n");
        if !w.script.is_empty() {
            out.push_str(
                "# scripted: the clients invoke only the [[op]]s below; keys, the mix, think \
                 or rate and start shape no operation\n",
            );
        }
        let _ = writeln!(out, "clients = {}", w.clients);
        let _ = writeln!(out, "keys = {}", w.keys);
        let distribution = match w.key_distribution {
            KeyDistribution::Uniform => quote("uniform"),
            // `{:?}` prints the shortest text that reads back as the same f64.
            KeyDistribution::Zipf { exponent } => format!("{{ zipf = {exponent:?} }}"),
        };
        let _ = writeln!(out, "key_distribution = {distribution}");
        let mix: Vec<String> = w
            .mix
            .iter()
            .map(|(kind, weight)| format!("{} = {weight}", op_name(*kind)))
            .collect();
        let _ = writeln!(out, "mix = {{ {} }}", mix.join(", "));
        match w.arrival {
            Arrival::ClosedLoop { think } => {
                let _ = writeln!(out, "think = {}", quote(&range_text(think)));
            }
            Arrival::OpenLoop { rate_per_s } => {
                let _ = writeln!(out, "rate = {rate_per_s}");
            }
        }
        let _ = writeln!(out, "timeout = {}", quoted_span(w.timeout));
        let target = match w.target {
            Target::Random => "random",
            Target::Fixed => "fixed",
            Target::FollowRedirects => "follow-redirects",
        };
        let _ = writeln!(out, "target = {}", quote(target));
        if let Some(q) = w.quorum {
            let _ = writeln!(out, "quorum = {q}");
        }
        let _ = writeln!(out, "retries = {}", w.retries);
        let backoff = match w.backoff {
            Backoff::None => quote("none"),
            Backoff::Exponential { base, max } => format!(
                "{{ base = {}, max = {} }}",
                quoted_span(base),
                quoted_span(max)
            ),
        };
        let _ = writeln!(out, "backoff = {backoff}");
        let _ = writeln!(out, "in_flight = {}", w.in_flight);
        let _ = writeln!(out, "placement = {}", quote(w.placement.name()));
        if let Some(n) = w.max_writes_per_key {
            let _ = writeln!(out, "max_writes_per_key = {n}");
        }
        if let Some(n) = w.max_ops {
            let _ = writeln!(out, "max_ops = {n}");
        }
        if w.start > Span::ZERO {
            let _ = writeln!(out, "start = {}", quoted_span(w.start));
        }
        if w.contexts {
            let _ = writeln!(out, "contexts = true");
        }
        if w.mix.iter().any(|(k, _)| *k == OpKind::Txn) {
            let _ = writeln!(out, "txn_ops = {}", w.txn_ops);
        }
    }

    /// The `[[op]]`s, one operation each, in time order.
    fn explain_script(&self, out: &mut String) {
        for op in &self.workload.script {
            out.push_str("\n[[op]]\n");
            let _ = writeln!(out, "at = {}", quoted_time(op.at));
            let _ = writeln!(out, "process = {}", op.process.0);
            let _ = writeln!(out, "node = {}", node(op.node));
            let _ = writeln!(out, "{}", scripted_op(&op.op));
        }
    }

    fn explain_faults(&self, out: &mut String) {
        if self.faults.is_empty() {
            out.push_str("\n# no [[fault]]s scripted\n");
        }
        for fault in &self.faults {
            out.push_str("\n[[fault]]\n");
            let origin = fault.origin.to_string().replace(['\n', '\r'], " ");
            let at = SpanRange {
                min: Span(fault.at.as_micros()),
                max: Span(fault.at_latest.as_micros()),
            };
            let _ = writeln!(out, "at = {}  # {origin}", quote(&range_text(at)));
            out.push_str(&fault.fault.explain());
            out.push('\n');
            if let Some(length) = fault.undo_after {
                let _ = writeln!(out, "for = {}", quote(&range_text(length)));
            }
            if fault.if_none != super::model::IfNone::default() {
                let _ = writeln!(out, "if_none = {}", quote(fault.if_none.name()));
            }
        }
    }

    fn explain_nemesis(&self, out: &mut String) {
        if self.nemeses.is_empty() {
            out.push_str("\n# no [nemesis]: no random faults\n");
        }
        for n in &self.nemeses {
            out.push_str("\n[[nemesis]]\n");
            let kinds: Vec<String> = n.kinds.iter().map(|k| quote(k.name())).collect();
            let _ = writeln!(out, "kinds = [{}]", kinds.join(", "));
            let _ = writeln!(out, "interval = {}", quote(&range_text(n.interval)));
            let _ = writeln!(out, "fault_duration = {}", quote(&range_text(n.duration)));
            let _ = writeln!(out, "start = {}", quoted_time(n.start));
            let _ = writeln!(out, "stop = {}", quoted_time(n.stop));
            let _ = writeln!(out, "clock_jump_max = {}", quoted_span(n.clock_jump_max));
            if n.kinds.contains(&super::NemesisKind::ClockDrift) {
                let _ = writeln!(out, "clock_drift_max = {}", n.clock_drift_max);
            }
            if let Some(max) = n.max_down {
                let _ = writeln!(out, "max_down = {max}");
            }
            if !n.targets.is_empty() {
                let targets: Vec<String> = n.targets.iter().map(|t| t.explain()).collect();
                let _ = writeln!(out, "targets = [{}]", targets.join(", "));
            }
            if let Some(on) = n.on_role {
                let _ = writeln!(out, "on_role = {}", quote(&on.name()));
            }
        }
    }
}

fn behaviour(out: &mut String, b: &LinkBehaviour) {
    let _ = writeln!(out, "latency = {}", latency(b.latency));
    let _ = writeln!(out, "drop = {}", quote(&ppm_text(b.drop_ppm)));
    let _ = writeln!(out, "duplicate = {}", quote(&ppm_text(b.duplicate_ppm)));
    let _ = writeln!(out, "reorder = {}", quote(&ppm_text(b.reorder_ppm)));
    let _ = writeln!(
        out,
        "reorder_delay = {}",
        quote(&range_text(b.reorder_delay))
    );
}

pub(crate) fn latency(l: Latency) -> String {
    match l {
        Latency::Constant(s) => format!("{{ constant = {} }}", quoted_span(s)),
        Latency::Uniform(min, max) => {
            format!(
                "{{ uniform = [{}, {}] }}",
                quoted_span(min),
                quoted_span(max)
            )
        }
        Latency::Exponential(mean) => format!("{{ exponential = {} }}", quoted_span(mean)),
        Latency::Normal(mean, sd) => {
            format!(
                "{{ normal = [{}, {}] }}",
                quoted_span(mean),
                quoted_span(sd)
            )
        }
    }
}

fn op_name(kind: OpKind) -> &'static str {
    match kind {
        OpKind::Get => "get",
        OpKind::Put => "put",
        OpKind::Update => "update",
        OpKind::Delete => "delete",
        OpKind::Cas => "cas",
        OpKind::Append => "append",
        OpKind::Txn => "txn",
    }
}

/// A scripted operation as its `[[op]]` line: `get = 0`, `put = { key = 0, value = "v" }`,
/// `txn = [{ get = 0 }, { append = { key = 1, value = "v;" } }]`.
fn scripted_op(op: &Op) -> String {
    let write = |name: &str, key: &Key, value: &str| {
        format!("{name} = {{ key = {key}, value = {} }}", quote(value))
    };
    match op {
        Op::Get { key } => format!("get = {key}"),
        Op::Delete { key } => format!("delete = {key}"),
        Op::Put { key, value } => write("put", key, value),
        Op::Update { key, value } => write("update", key, value),
        Op::Append { key, value } => write("append", key, value),
        Op::Cas { key, expected, new } => format!(
            "cas = {{ key = {key}, expected = {}, new = {} }}",
            quote(expected),
            quote(new)
        ),
        Op::Txn { ops } => {
            let parts: Vec<String> = ops
                .iter()
                .map(|part| format!("{{ {} }}", scripted_op(part)))
                .collect();
            format!("txn = [{}]", parts.join(", "))
        }
    }
}

/// A TOML string literal, escaped as TOML requires.
pub(crate) fn quote(text: &str) -> String {
    toml_edit::Value::from(text).to_string()
}

/// A bare key when it can be one, else a quoted key.
fn quote_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        key.to_string()
    } else {
        quote(key)
    }
}

pub(crate) fn node(id: NodeId) -> String {
    quote(&id.to_string())
}

fn quoted_span(span: Span) -> String {
    quote(&span_text(span))
}

fn quoted_time(time: Time) -> String {
    quoted_span(Span(time.as_micros()))
}

/// A duration, exactly, in the largest unit that reads well: `1.5s`, `250ms`, `1.25ms`,
/// `40us`. Unlike `Span`'s `Display`, never rounds, so the text parses back to the span.
pub(crate) fn span_text(span: Span) -> String {
    let us = span.as_micros();
    let (unit, scale, digits) = if us >= 1_000_000 {
        ("s", 1_000_000, 6)
    } else if us >= 1_000 {
        ("ms", 1_000, 3)
    } else if us == 0 {
        return "0s".to_string();
    } else {
        return format!("{us}us");
    };
    let (whole, fraction) = (us / scale, us % scale);
    if fraction == 0 {
        return format!("{whole}{unit}");
    }
    let fraction = format!("{fraction:0digits$}");
    format!("{whole}.{}{unit}", fraction.trim_end_matches('0'))
}

pub(crate) fn range_text(range: SpanRange) -> String {
    if range.min == range.max {
        span_text(range.min)
    } else {
        format!("{}..{}", span_text(range.min), span_text(range.max))
    }
}

pub(crate) fn signed_span_text(us: i64) -> String {
    let text = span_text(Span(us.unsigned_abs()));
    if us < 0 {
        format!("-{text}")
    } else {
        text
    }
}

/// Parts per million as a percentage with up to four decimals, exactly.
pub(crate) fn ppm_text(ppm: u32) -> String {
    let (whole, fraction) = (ppm / 10_000, ppm % 10_000);
    if fraction == 0 {
        return format!("{whole}%");
    }
    let fraction = format!("{fraction:04}");
    format!("{whole}.{}%", fraction.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use simkv_protocols::params::parse_span;

    #[test]
    fn durations_print_exactly_and_parse_back() {
        for (us, text) in [
            (0, "0s"),
            (7, "7us"),
            (1_500, "1.5ms"),
            (250_000, "250ms"),
            (1_500_000, "1.5s"),
            (1_234_567, "1.234567s"),
            (40_000_000, "40s"),
        ] {
            assert_eq!(span_text(Span(us)), text);
            assert_eq!(parse_span(text), Ok(Span(us)));
        }
        assert_eq!(signed_span_text(-50_000), "-50ms");
    }

    #[test]
    fn probabilities_print_exactly() {
        assert_eq!(ppm_text(0), "0%");
        assert_eq!(ppm_text(125_000), "12.5%");
        assert_eq!(ppm_text(1), "0.0001%");
        assert_eq!(ppm_text(1_000_000), "100%");
    }
}

#[cfg(test)]
mod explain_tests {
    use super::super::load::fixtures::{load, FULL, MINIMAL};
    use super::super::overrides::Overrides;
    use super::*;
    use crate::scenario::FaultOrigin;

    fn without_origins(mut s: Scenario) -> Scenario {
        s.source.clear();
        for f in &mut s.faults {
            f.origin = FaultOrigin::Scripted(String::new());
        }
        s
    }

    #[test]
    fn explain_mentions_every_section_and_every_param() {
        let s = load(FULL, &Overrides::default()).unwrap();
        let text = s.explain();
        for section in [
            "[cluster]",
            "[cluster.params.raft]",
            "[network]",
            "[[network.link]]",
            "[[clock]]",
            "[workload]",
            "[[fault]]",
            "[nemesis]",
            "[disk]",
            "[checks]",
        ] {
            assert!(text.contains(section), "{section} missing from\n{text}");
        }
        for (name, _) in s.cluster.params.iter() {
            assert!(text.contains(&format!("\n{name} = ")), "{name}");
        }
        assert!(
            text.contains("at = \"25s\"  # s.toml:63:6\nheal = true\n"),
            "{text}"
        );
        let minimal = load(MINIMAL, &Overrides::default()).unwrap().explain();
        for absent in ["[[clock]]", "[[fault]]", "[nemesis]"] {
            assert!(
                minimal.contains(&format!("# no {absent}")),
                "{absent}\n{minimal}"
            );
        }
        assert!(minimal.contains("\nmax_events = 100000000\n"), "{minimal}");
        assert!(
            minimal.contains("\nlatency = { uniform = [\"1ms\", \"5ms\"] }\n"),
            "{minimal}"
        );
    }

    #[test]
    fn explain_is_a_scenario_that_loads_back_to_the_same_values() {
        for text in [FULL, MINIMAL] {
            let s = load(text, &Overrides::default()).unwrap();
            let explained = s.explain();
            let again = load(&explained, &Overrides::default())
                .unwrap_or_else(|e| panic!("{e}\n{explained}"));
            assert_eq!(without_origins(again.clone()), without_origins(s));
            // Only the comments naming where things came from may differ.
            let uncommented = |text: &str| -> Vec<String> {
                let lines = text.lines().filter(|l| !l.starts_with("# source"));
                lines
                    .map(|l| l.split("  # ").next().unwrap_or(l).to_string())
                    .collect()
            };
            assert_eq!(uncommented(&again.explain()), uncommented(&explained));
        }
    }

    #[test]
    fn explain_is_deterministic_and_exact() {
        let o = Overrides {
            sets: vec![
                "workload.timeout=1.234567s".into(),
                "network.drop=0.0001%".into(),
            ],
            ..Overrides::default()
        };
        let s = load(FULL, &o).unwrap();
        assert_eq!(s.explain(), s.clone().explain());
        let text = s.explain();
        assert!(text.contains("\ntimeout = \"1.234567s\"\n"), "{text}");
        assert!(text.contains("\ndrop = \"0.0001%\"\n"), "{text}");
    }
}
