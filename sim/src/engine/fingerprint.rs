//! The run's fingerprint: every processed event, at its time, fed to one stable hash (the
//! engine also feeds it each applied fault's text). Two runs with the same fingerprint
//! processed the same events in the same order.

use super::event::Event;
use simkv_protocols::digest::StableHasher;
use simkv_protocols::{Protocol, Time};
use std::hash::{Hash, Hasher};

/// Feeds `event`, processed at `at`, to the fingerprint `h`. Each kind writes its own tag
/// byte first, so that two kinds with alike fields never hash alike.
#[inline]
pub(super) fn write_event<P: Protocol>(h: &mut StableHasher, at: Time, event: &Event<P>) {
    h.write_u64(at.as_micros());
    match event {
        Event::Deliver { from, to, msg } => {
            h.write_u8(1);
            h.write_u16(from.0);
            h.write_u16(to.0);
            msg.hash(h);
        }
        Event::Request { to, request } => {
            h.write_u8(2);
            h.write_u16(to.0);
            request.hash(h);
        }
        Event::Reply {
            from,
            request,
            result,
            context,
        } => {
            h.write_u8(3);
            h.write_u16(from.0);
            request.hash(h);
            result.hash(h);
            // Only present in a workload with contexts: every other run hashes as before.
            if let Some(context) = context {
                context.hash(h);
            }
        }
        Event::Timer {
            node,
            generation,
            timer,
            ..
        } => {
            h.write_u8(4);
            h.write_u16(node.0);
            h.write_u64(*generation);
            timer.hash(h);
        }
        Event::ClientWake { client } => {
            h.write_u8(5);
            h.write_u32(client.0);
        }
        Event::ClientTimeout { client } => {
            h.write_u8(6);
            h.write_u32(client.0);
        }
        Event::ClientRetry { request, attempt } => {
            h.write_u8(11);
            request.hash(h);
            h.write_u32(*attempt);
        }
        Event::Synced { node, mark, .. } => {
            h.write_u8(12);
            h.write_u16(node.0);
            h.write_u64(*mark);
        }
        Event::Arrival => h.write_u8(7),
        Event::Fault { index } => {
            h.write_u8(8);
            h.write_usize(*index);
        }
        Event::WorkloadEnd => h.write_u8(9),
        Event::WorkloadStop => h.write_u8(10),
    }
}
