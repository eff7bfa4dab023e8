//! Every protocol simkv can run, by name.

use simkv_protocols::{primary::Primary, Protocol, ProtocolInfo};

/// Every protocol, in the order `simkv list protocols` prints them.
pub fn protocols() -> Vec<ProtocolInfo> {
    vec![
        Primary::info(),
        simkv_protocols::twopc::TwoPc::info(),
        simkv_protocols::raft::Raft::info(),
        simkv_protocols::majority::Majority::info(),
        simkv_protocols::sloppy::Sloppy::info(),
    ]
}

/// The protocol called `name`, if there is one.
pub fn protocol(name: &str) -> Option<ProtocolInfo> {
    protocols().into_iter().find(|p| p.name == name)
}

/// Every protocol name, for "expected one of ..." messages.
pub fn protocol_names() -> Vec<&'static str> {
    protocols().iter().map(|p| p.name).collect()
}
