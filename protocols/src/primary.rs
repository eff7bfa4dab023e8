//! Primary forwarding (placeholder while it is written).

use crate::contract::{Context, NodeConfig, Promise, Protocol, ProtocolInfo};
use crate::ids::{NodeId, RequestId};
use crate::kv::{Key, Op, OpResult, Value};
use std::collections::BTreeMap;

/// One node of the primary-forwarding store.
#[derive(Debug)]
pub struct Primary {
    store: BTreeMap<Key, Value>,
}

impl Protocol for Primary {
    type Message = ();
    type Timer = ();
    type Durable = ();

    fn info() -> ProtocolInfo {
        ProtocolInfo {
            name: "primary",
            description: "placeholder",
            promises: &[Promise::Convergent],
            params: &[],
            bugs: &[],
        }
    }

    fn start(_: &mut Context<'_, Self>, _: &NodeConfig, _: Option<&()>) -> Self {
        Primary {
            store: BTreeMap::new(),
        }
    }

    fn on_message(&mut self, _: &mut Context<'_, Self>, _: NodeId, _: ()) {}

    fn on_timer(&mut self, _: &mut Context<'_, Self>, _: ()) {}

    fn on_request(&mut self, ctx: &mut Context<'_, Self>, request: RequestId, op: Op) {
        let result = crate::kv::apply(&mut self.store, &op);
        let _: &OpResult = &result;
        ctx.reply(request, result);
    }

    fn store(&self) -> BTreeMap<Key, Value> {
        self.store.clone()
    }
}
