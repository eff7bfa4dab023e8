//! An operator's command to one node: the talk demo's scripts (`trick-value`, the
//! coordinator stops) and membership changes.

use super::{Applied, FaultKind, FaultTarget};
use crate::scenario::explain::{node, quote};
use crate::scenario::validator::{Checked, Validator};
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
                    value: value.get_ref().clone(),
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
                    "expected an operator command, one of `trick-value`, `stop-after-prepare`, \
                     `stop-after-decision`, `add-server`, `remove-server`; found {other:?}"
                );
                return v.fail(o.command.span(), message);
            }
        };
        Ok(OperatorCommand { node, command })
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
        let name = self.command.to_string();
        let name = name.split(' ').next().unwrap_or_default().to_string();
        format!(
            "operator = {{ node = {}, command = {}{args} }}",
            node(self.node),
            quote(&name)
        )
    }

    fn apply(&self, target: &mut dyn FaultTarget) -> Applied {
        target.operator(self.node, self.command.clone())
    }
}
