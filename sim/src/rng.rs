//! Seeded randomness, one stream per concern.
//!
//! Every draw in a run comes from ChaCha8 seeded with the run's seed. Each concern (the
//! network, the faults, the workload, each node) reads its own ChaCha *stream* (the cipher's
//! 64-bit stream id), so adding a client or a draw in the network leaves every other
//! concern's sequence unchanged: a fault schedule stays put while the workload changes.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use simkv_protocols::Entropy;

/// Stream ids. Nodes take `NODE_BASE + index`, their disks `DISK_BASE + index`.
const NETWORK: u64 = 1;
const FAULTS: u64 = 2;
const WORKLOAD: u64 = 3;
const CLOCKS: u64 = 4;
const SWARM: u64 = 5;
const NODE_BASE: u64 = 1 << 32;
/// Each node's disk takes `DISK_BASE + index`.
const DISK_BASE: u64 = 2 << 32;

/// One seeded random stream.
#[derive(Clone, Debug)]
pub struct Stream {
    rng: ChaCha8Rng,
}

impl Stream {
    fn new(seed: u64, stream: u64) -> Stream {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream);
        Stream { rng }
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// A number in `0..bound`; `bound` must be positive.
    #[inline]
    pub fn below(&mut self, bound: u64) -> u64 {
        debug_assert!(bound > 0);
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// A number in `min..=max`.
    #[inline]
    pub fn between(&mut self, min: u64, max: u64) -> u64 {
        debug_assert!(min <= max);
        match (max - min).checked_add(1) {
            Some(width) => min + self.below(width),
            None => self.next_u64(),
        }
    }

    /// True with probability `ppm` parts per million; draws nothing when `ppm` is 0 or 1e6,
    /// so a lossless network consumes no randomness for losses.
    #[inline]
    pub fn chance_ppm(&mut self, ppm: u32) -> bool {
        match ppm {
            0 => false,
            1_000_000.. => true,
            _ => self.below(1_000_000) < u64::from(ppm),
        }
    }

    /// A uniform float in (0, 1], for the distributions that need logarithms.
    pub fn unit_open_closed(&mut self) -> f64 {
        // 53 random bits, shifted off zero so that ln() is finite.
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Shuffles `items` in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

impl Entropy for Stream {
    fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }
}

/// Every stream of one run.
#[derive(Clone, Debug)]
pub struct Streams {
    /// Latency, loss, duplication, reordering.
    pub network: Stream,
    /// Named partition shapes and the nemesis.
    pub faults: Stream,
    /// Clients: operation kinds, keys, targets, think times.
    pub workload: Stream,
    /// Clock-related draws (reserved, so adding them later shifts no other stream).
    pub clocks: Stream,
    /// Each node's own stream: its timer delays and what it draws through its context.
    pub nodes: Vec<Stream>,
    /// Each node's disk: how long each of its syncs takes.
    pub disks: Vec<Stream>,
}

/// The stream a `[swarm]` draws the seed's world from, apart from the run's own streams so
/// that a swarm draw never shifts a run's draws.
pub fn swarm(seed: u64) -> Stream {
    Stream::new(seed, SWARM)
}

impl Streams {
    /// Forks every stream of a run with `nodes` nodes from `seed`.
    pub fn new(seed: u64, nodes: usize) -> Streams {
        Streams {
            network: Stream::new(seed, NETWORK),
            faults: Stream::new(seed, FAULTS),
            workload: Stream::new(seed, WORKLOAD),
            clocks: Stream::new(seed, CLOCKS),
            nodes: (0..nodes as u64)
                .map(|i| Stream::new(seed, NODE_BASE + i))
                .collect(),
            disks: (0..nodes as u64)
                .map(|i| Stream::new(seed, DISK_BASE + i))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_of_one_seed_are_independent_and_repeatable() {
        let mut a = Streams::new(7, 3);
        let mut b = Streams::new(7, 5);
        // More nodes must not change the network's draws, nor node 0's.
        let net_a: Vec<u64> = (0..4).map(|_| a.network.next_u64()).collect();
        let net_b: Vec<u64> = (0..4).map(|_| b.network.next_u64()).collect();
        assert_eq!(net_a, net_b);
        assert_eq!(a.nodes[0].next_u64(), b.nodes[0].next_u64());
        assert_ne!(a.faults.next_u64(), a.workload.next_u64());
        let mut c = Streams::new(8, 3);
        assert_ne!(Streams::new(7, 3).network.next_u64(), c.network.next_u64());
    }

    #[test]
    fn bounded_draws_stay_in_bounds() {
        let mut s = Streams::new(1, 0).workload;
        for _ in 0..1000 {
            assert!(s.below(7) < 7);
            let x = s.between(3, 5);
            assert!((3..=5).contains(&x));
            let u = s.unit_open_closed();
            assert!(u > 0.0 && u <= 1.0);
        }
        assert!(!s.chance_ppm(0));
        assert!(s.chance_ppm(1_000_000));
    }
}
