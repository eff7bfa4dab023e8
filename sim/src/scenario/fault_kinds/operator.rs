//! An operator's command to one node: the talk demo's scripts (`trick-value`, the
//! coordinator stops) and membership changes. Each protocol declares the commands it acts
//! on (`ProtocolInfo::operators`); a step with another is refused, unless it says
//! `unsupported = "ignore"` (for scenarios meant for every protocol, such as cap-demo.toml).

use super::{Applied, FaultKind, FaultTarget};
use crate::scenario::explain::{node, quote};
use crate::scenario::validator::{list, Checked, Validator};
use crate::scenario::values::{Int, NodeName};
use serde::Deserialize;
use simkv_protocols::{NodeId, Operator};
use toml::Spanned;

/// `operator = { node = "n1", command = "trick-value", key = 0, value = "x" }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorCommand {
    /// The node commanded.
    pub node: NodeId,
    /// The command.
    pub command: Operator,
    /// `unsupported = "ignore"`: a protocol that lacks the command is run anyway (its node
    /// receives the command and ignores it, and the summary lists the step as ignored).
    /// Without it, such a protocol is refused at load time.
    pub ignore_unsupported: bool,
}

/// The fields besides `node` and `command` depend on the command.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOperator {
    node: Spanned<NodeName>,
    command: Spanned<String>,
    key: Option<Spanned<Int>>,
    value: Option<Spanned<String>>,
    server: Option<Spanned<NodeName>>,
    unsupported: Option<Spanned<String>>,
}

impl FaultKind for OperatorCommand {
    type Raw = RawOperator;

    fn check(raw: &Spanned<RawOperator>, v: &Validator) -> Checked<OperatorCommand> {
        let o = raw.get_ref();
        let node = v.node(&o.node)?;
        let command = o.command.get_ref().as_str();
        let missing = |field: &str| {
            let message = format!("expected `{field}` for operator command {command:?}");
            v.fail::<Operator>(raw.span(), message)
        };
        let command = match command {
            "trick-value" => match (&o.key, &o.value) {
                (Some(key), Some(value)) => Operator::TrickValue {
                    key: v.int_in(key, 0, None, "a key")? as u64,
                    value: value.get_ref().as_str().into(),
                },
                (None, _) => missing("key")?,
                (_, None) => missing("value")?,
            },
            "stop-after-prepare" => Operator::StopAfterPrepare,
            "stop-after-decision" => Operator::StopAfterDecision,
            "add-server" | "remove-server" => {
                let Some(server) = &o.server else {
                    return missing("server").map(|_| unreachable!());
                };
                let server = v.node(server)?;
                if command == "add-server" {
                    Operator::AddServer { server }
                } else {
                    Operator::RemoveServer { server }
                }
            }
            other => {
                let message = format!(
                    "expected an operator command, one of {}; found {other:?}",
                    list(Operator::NAMES)
                );
                return v.fail(o.command.span(), message);
            }
        };
        let ignore_unsupported = match &o.unsupported {
            None => false,
            Some(u) => match u.get_ref().as_str() {
                "refuse" => false,
                "ignore" => true,
                other => {
                    let message = format!(
                        "expected `unsupported` to be \"refuse\" (the default: a protocol \
                         without this command is refused) or \"ignore\" (it is run and the \
                         step is ignored); found {other:?}"
                    );
                    return v.fail(u.span(), message);
                }
            },
        };
        if let Some(info) = &v.protocol {
            let name = command.name();
            if !info.operators.contains(&name) && !ignore_unsupported {
                let having: Vec<&str> = v
                    .protocols
                    .iter()
                    .filter(|(_, p)| p.operators.contains(&name))
                    .map(|(_, p)| p.name)
                    .collect();
                let having = match having.is_empty() {
                    true => "none of the protocols has it".to_string(),
                    false => format!("the protocols that have it: {}", list(having)),
                };
                let chosen = match &v.overrides.protocol {
                    Some(_) => format!("`{}` (from --protocol)", info.name),
                    None => format!("`{}`", info.name),
                };
                let message = format!(
                    "protocol {chosen} has no operator command `{name}` ({having}); expected \
                     a command it has, or `unsupported = \"ignore\"` in this step to run \
                     the scenario with the step ignored"
                );
                return v.fail(o.command.span(), message);
            }
        }
        Ok(OperatorCommand {
            node,
            command,
            ignore_unsupported,
        })
    }

    fn explain(&self) -> String {
        let args = match &self.command {
            Operator::TrickValue { key, value } => {
                format!(", key = {key}, value = {}", quote(value))
            }
            Operator::AddServer { server } | Operator::RemoveServer { server } => {
                format!(", server = {}", node(*server))
            }
            Operator::StopAfterPrepare | Operator::StopAfterDecision => String::new(),
        };
        let name = self.command.name();
        let unsupported = match self.ignore_unsupported {
            true => ", unsupported = \"ignore\"",
            false => "",
        };
        format!(
            "operator = {{ node = {}, command = {}{args}{unsupported} }}",
            node(self.node),
            quote(name)
        )
    }

    fn apply(&self, target: &mut dyn FaultTarget) -> Applied {
        target.operator(self.node, self.command.clone())
    }
}
