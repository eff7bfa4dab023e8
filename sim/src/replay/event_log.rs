//! A replay file's per-event records, compact. The records are laid out column by column,
//! each column alike values that deflate well: every event's time since the one before
//! (varint), then every event's head byte (its kind in the low four bits, the shape of whom
//! it concerns in the high four), then the ids of those parties (varints), then every
//! event's 16-bit hash (little-endian). The whole is deflated and written as base64: about
//! 5.5 bytes of JSON an event (scenarios/swarm.toml, majority, seed 974: 126 356 events,
//! 690 KB).

use crate::engine::recording::{EventKind, EventRecord, Party};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use simkv_protocols::{ClientId, NodeId};
use std::io::{Read, Write};

/// The value of an event log's `encoding` field.
pub const ENCODING: &str = "simkv-events/1: columns of varint records, deflate, base64";

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
        let mut times = Vec::with_capacity(records.len() * 2);
        let mut heads = Vec::with_capacity(records.len());
        let mut ids = Vec::with_capacity(records.len() * 2);
        let mut hashes = Vec::with_capacity(records.len() * 2);
        let mut last = 0u64;
        for r in records {
            put_varint(&mut times, r.time_us.wrapping_sub(last));
            last = r.time_us;
            let (shape, party): (u8, [Option<u64>; 2]) = match r.party {
                Party::Run => (RUN, [None, None]),
                Party::Node(n) => (NODE, [Some(n.0.into()), None]),
                Party::Link(from, to) => (LINK, [Some(from.0.into()), Some(to.0.into())]),
                Party::Client(c) => (CLIENT, [Some(c.0.into()), None]),
            };
            heads.push(r.kind.tag() | (shape << 4));
            for id in party.into_iter().flatten() {
                put_varint(&mut ids, id);
            }
            hashes.extend_from_slice(&r.hash.to_le_bytes());
        }
        let mut deflate =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        for column in [times, heads, ids, hashes] {
            deflate.write_all(&column).expect("writing to memory");
        }
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
        // Each record takes at least four bytes: no count above that can be right, and
        // none may make this allocate more than the data.
        let count = usize::try_from(self.count)
            .ok()
            .filter(|n| n.saturating_mul(4) <= raw.len())
            .ok_or_else(|| too_short(self.count, raw.len()))?;
        let mut bytes = raw.iter().copied();
        let short = || too_short(self.count, raw.len());
        let mut times = Vec::with_capacity(count);
        let mut time = 0u64;
        for n in 1..=count {
            let delta = get_varint(&mut bytes).ok_or_else(short)?;
            time = time
                .checked_add(delta)
                .ok_or_else(|| format!("record {n}: time overflows"))?;
            times.push(time);
        }
        let mut heads = Vec::with_capacity(count);
        for n in 1..=count {
            let head = bytes.next().ok_or_else(short)?;
            let kind = EventKind::from_tag(head & 0x0f)
                .ok_or_else(|| format!("record {n}: unknown kind {}", head & 0x0f))?;
            heads.push((kind, head >> 4));
        }
        let mut parties = Vec::with_capacity(count);
        for (i, (_, shape)) in heads.iter().enumerate() {
            let n = i + 1;
            let mut id = || get_varint(&mut bytes).ok_or_else(short);
            let node = |v: u64| {
                u16::try_from(v)
                    .map(NodeId)
                    .map_err(|_| format!("record {n}: node {v} is out of range"))
            };
            parties.push(match *shape {
                RUN => Party::Run,
                NODE => Party::Node(node(id()?)?),
                LINK => {
                    let from = node(id()?)?;
                    Party::Link(from, node(id()?)?)
                }
                CLIENT => {
                    let c = id()?;
                    let c = u32::try_from(c)
                        .map_err(|_| format!("record {n}: client {c} is out of range"))?;
                    Party::Client(ClientId(c))
                }
                other => return Err(format!("record {n}: unknown party shape {other}")),
            });
        }
        let mut records = Vec::with_capacity(count);
        for ((time_us, (kind, _)), party) in times.into_iter().zip(heads).zip(parties) {
            let lo = bytes.next().ok_or_else(short)?;
            let hi = bytes.next().ok_or_else(short)?;
            records.push(EventRecord {
                time_us,
                kind,
                party,
                hash: u16::from_le_bytes([lo, hi]),
            });
        }
        if bytes.next().is_some() {
            return Err(format!(
                "data holds more than the {count} records its count says"
            ));
        }
        Ok(records)
    }
}

fn too_short(count: u64, len: usize) -> String {
    format!("data ({len} bytes) ends before the {count} records its count says")
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
                hash: 0xbeef,
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
                hash: u16::MAX,
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
        // The columns no longer line up: whichever error comes first, an error.
        assert!(bad.decode().is_err());
        let mut bad = good.clone();
        bad.count = 3;
        assert!(bad.decode().is_err());
        let mut bad = good.clone();
        bad.count = u64::MAX;
        assert!(bad.decode().unwrap_err().contains("records its count says"));
        let mut bad = good.clone();
        bad.encoding = "zip".into();
        assert!(bad.decode().unwrap_err().contains("encoding"));
        // A valid deflate stream of one record with an unknown kind.
        let mut odd = EventLog::encode(&sample()[..1]);
        let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), Default::default());
        deflate.write_all(&[5, 0x0f, 1, 2]).unwrap();
        odd.data = base64::engine::general_purpose::STANDARD.encode(deflate.finish().unwrap());
        assert!(odd.decode().unwrap_err().contains("unknown kind 15"));
        // One good record (an arrival at 5us), then a byte too many.
        let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), Default::default());
        deflate.write_all(&[5, 0x07, 1, 2, 9]).unwrap();
        odd.data = base64::engine::general_purpose::STANDARD.encode(deflate.finish().unwrap());
        assert!(odd.decode().unwrap_err().contains("more than the 1"));
    }
}
