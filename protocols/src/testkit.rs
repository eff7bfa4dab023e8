//! Pieces shared by the protocols' hand-driven unit-test clusters (test builds only).

use crate::contract::{Entropy, NodeConfig};
use crate::ids::NodeId;
use crate::params::Params;

/// splitmix64: a deterministic stream for a test's contexts.
pub(crate) struct TestEntropy(pub(crate) u64);

impl Entropy for TestEntropy {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The configs of a `count`-node cluster sharing `params` and planted `bugs`.
pub(crate) fn configs(count: u16, params: &Params, bugs: &[&'static str]) -> Vec<NodeConfig> {
    let nodes: Vec<NodeId> = (0..count).map(NodeId).collect();
    nodes
        .iter()
        .map(|&id| NodeConfig {
            id,
            nodes: nodes.clone(),
            params: params.clone(),
            bugs: bugs.to_vec(),
        })
        .collect()
}
