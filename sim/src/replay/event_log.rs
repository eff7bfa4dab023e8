//! A replay file's per-event records, compact: per event a varint of its time since the one
//! before, a byte with its kind (low four bits) and the shape of whom it concerns (high four
//! bits), that party's ids as varints, and its 32-bit hash, little-endian; the whole deflated
//! and written as base64. A run of 100 000 events takes about 500 KB.

use crate::engine::recording::{EventKind, EventRecord, Party};
use std::io::{Read, Write};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use simkv_protocols::{ClientId, NodeId};

/// The value of an event log's `encoding` field.
pub const ENCODING: &str = "simkv-events/1: varint records, deflate, base64";

/// The most bytes an event log may inflate to (far more than any run's records).
const MAX_INFLATED: u64 = 1 << 30;

/// A run's per-event records as a replay file stores them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventLog {
    /// How `data` is encoded: always [`ENCODING`].
    pub encoding: String,
    /// Records in `data`.
    pub count: u64,
    /// The records, encoded.
    pub data: String,
}

const RUN: u8 = 0;
const NODE: u8 = 1;
const LINK: u8 = 2;
const CLIENT: u8 = 3;

impl EventLog {
    /// Encodes `records`.
    pub fn encode(records: &[EventRecord]) -> EventLog {
        let mut raw = Vec::with_capacity(records.len() * 8);
        let mut last = 0u64;
        for r in records {
            put_varint(&mut raw, r.time_us.wrapping_sub(last));
            last = r.time_us;
            let (shape, ids): (u8, [Option<u64>; 2]) = match r.party {
                Party::Run => (RUN, [None, None]),
                Party::Node(n) => (NODE, [Some(n.0.into()), None]),
                Party::Link(from, to) => (LINK, [Some(from.0.into()), Some(to.0.into())]),
                Party::Client(c) => (CLIENT, [Some(c.0.into()), None]),
            };
            raw.push(r.kind.tag() | (shape << 4));
            for id in ids.into_iter().flatten() {
                put_varint(&mut raw, id);
            }
            raw.extend_from_slice(&r.hash.to_le_bytes());
        }
        let mut deflate =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        deflate.write_all(&raw).expect("writing to memory");
        let packed = deflate.finish().expect("writing to memory");
        EventLog {
            encoding: ENCODING.into(),
            count: records.len() as u64,
            data: base64::engine::general_purpose::STANDARD.encode(packed),
        }
    }

    /// Decodes the records; the error says what is wrong.
    pub fn decode(&self) -> Result<Vec<EventRecord>, String> {
        if self.encoding != ENCODING {
            return Err(format!(
                "encoding {:?} is not {ENCODING:?}, the one this simkv reads",
                self.encoding
            ));
        }
        let packed = base64::engine::general_purpose::STANDARD
            .decode(self.data.as_bytes())
            .map_err(|e| format!("data is not base64: {e}"))?;
        let mut raw = Vec::new();
        flate2::read::DeflateDecoder::new(&packed[..])
            .take(MAX_INFLATED)
            .read_to_end(&mut raw)
            .map_err(|e| format!("data does not inflate: {e}"))?;
        let mut bytes = raw.iter().copied();
        let mut records = Vec::new();
        let mut time = 0u64;
        let truncated = || "data ends inside a record".to_string();
        while bytes.len() > 0 {
            let n = records.len() + 1;
            let delta = get_varint(&mut bytes).ok_or_else(truncated)?;
            time = time
                .checked_add(delta)
                .ok_or_else(|| format!("record {n}: time overflows"))?;
            let head = bytes.next().ok_or_else(truncated)?;
            let kind = EventKind::from_tag(head & 0x0f)
                .ok_or_else(|| format!("record {n}: unknown kind {}", head & 0x0f))?;
            let mut id = || -> Result<u64, String> { get_varint(&mut bytes).ok_or_else(truncated) };
            let node = |v: u64| {
                u16::try_from(v)
                    .map(NodeId)
                    .map_err(|_| format!("record {n}: node {v} is out of range"))
            };
            let party = match head >> 4 {
                RUN => Party::Run,
                NODE => Party::Node(node(id()?)?),
                LINK => {
                    let from = node(id()?)?;
                    Party::Link(from, node(id()?)?)
                }
                CLIENT => {
                    let c = id()?;
                    Party::Client(ClientId(u32::try_from(c).map_err(|_| {
                        format!("record {n}: client {c} is out of range")
                    })?))
                }
                other => return Err(format!("record {n}: unknown party shape {other}")),
            };
            let mut hash = [0u8; 4];
            for b in &mut hash {
                *b = bytes.next().ok_or_else(truncated)?;
            }
            records.push(EventRecord {
                time_us: time,
                kind,
                party,
                hash: u32::from_le_bytes(hash),
            });
        }
        if records.len() as u64 != self.count {
            return Err(format!(
                "count says {} records, data holds {}",
                self.count,
                records.len()
            ));
        }
        Ok(records)
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(bytes: &mut impl Iterator<Item = u8>) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = bytes.next()?;
        v |= u64::from(b & 0x7f).checked_shl(shift)?;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<EventRecord> {
        vec![
            EventRecord {
                time_us: 0,
                kind: EventKind::ClientWake,
                party: Party::Client(ClientId(7)),
                hash: 0xdead_beef,
            },
            EventRecord {
                time_us: 1_234_567,
                kind: EventKind::Deliver,
                party: Party::Link(NodeId(0), NodeId(300)),
                hash: 1,
            },
            EventRecord {
                time_us: 1_234_567,
                kind: EventKind::Timer,
                party: Party::Node(NodeId(2)),
                hash: 0,
            },
            EventRecord {
                time_us: u64::MAX / 2,
                kind: EventKind::WorkloadStop,
                party: Party::Run,
                hash: u32::MAX,
            },
        ]
    }

    #[test]
    fn records_round_trip() {
        let log = EventLog::encode(&sample());
        assert_eq!(log.count, 4);
        assert_eq!(log.decode().unwrap(), sample());
        assert_eq!(EventLog::encode(&[]).decode().unwrap(), vec![]);
    }

    #[test]
    fn a_damaged_log_is_an_error_not_a_panic() {
        let good = EventLog::encode(&sample());
        let mut bad = good.clone();
        bad.data.insert(3, '!');
        assert!(bad.decode().unwrap_err().contains("base64"));
        let mut bad = good.clone();
        bad.count = 5;
        assert!(bad.decode().unwrap_err().contains("count says 5"));
        let mut bad = good.clone();
        bad.encoding = "zip".into();
        assert!(bad.decode().unwrap_err().contains("encoding"));
        // A valid deflate stream of a cut record.
        let mut cut = EventLog::encode(&sample()[..1]);
        let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), Default::default());
        deflate.write_all(&[5, 0x35, 7, 1]).unwrap();
        cut.data = base64::engine::general_purpose::STANDARD.encode(deflate.finish().unwrap());
        assert!(cut.decode().unwrap_err().contains("ends inside"));
    }
}
