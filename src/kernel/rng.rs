//! Seeded random streams: one ChaCha stream per (master seed, purpose, entity).
//!
//! Each stream's 256-bit seed is a ChaCha20 block keyed by the master seed, with the purpose
//! (hashed with FNV-1a, which is stable across platforms and Rust versions) as the ChaCha
//! stream number and the entity id as the block position. Streams for different purposes or
//! entities are independent, so adding a tenant or changing a policy leaves every other
//! tenant's draws untouched (common random numbers).
//!
//! [`CounterDraws`] complements streams for per-request work: a request takes one 64-bit key
//! from its tenant's stream and derives its service and query draws from `(key, index)` with
//! the SplitMix64 mixer, so the k-th request of a tenant does the same work under every policy,
//! however many retries other requests make.

pub use crate::components::draw::{uniform_inclusive, unit_open};
use rand::{Rng, SeedableRng};
use rand_chacha::{ChaCha8Rng, ChaCha20Rng};

/// The generator behind every stream.
pub type Stream = ChaCha8Rng;

/// Derives independent streams from one master seed.
#[derive(Clone, Debug)]
pub struct Streams {
    master_key: [u8; 32],
}

impl Streams {
    /// Streams for `master_seed`.
    pub fn new(master_seed: u64) -> Self {
        let mut master_key = [0u8; 32];
        let mut state = master_seed;
        for chunk in master_key.chunks_exact_mut(8) {
            state = state.wrapping_add(GOLDEN_GAMMA);
            chunk.copy_from_slice(&mix64(state).to_le_bytes());
        }
        Streams { master_key }
    }

    /// The 256-bit seed of the stream for `(purpose, entity)`.
    pub fn seed_for(&self, purpose: &str, entity: u64) -> [u8; 32] {
        let mut derive = ChaCha20Rng::from_seed(self.master_key);
        derive.set_stream(fnv1a64(purpose.as_bytes()));
        // 16 32-bit words per ChaCha block; one block per entity.
        derive.set_word_pos(u128::from(entity) * 16);
        let mut seed = [0u8; 32];
        derive.fill_bytes(&mut seed);
        seed
    }

    /// The keys of [`Streams::key_for`] for `(purpose, entity)`, entity `0..count`, in order:
    /// the same values, but from one pass over the purpose's ChaCha stream (one block per
    /// entity, generated four at a time) instead of a fresh generator per entity, which
    /// discards three of the four blocks it makes. For setting up very many tenants.
    pub fn keys_for(&self, purpose: &str, count: u64) -> impl Iterator<Item = u64> {
        let mut derive = ChaCha20Rng::from_seed(self.master_key);
        derive.set_stream(fnv1a64(purpose.as_bytes()));
        (0..count).map(move |_| {
            let mut block = [0u8; 64];
            derive.fill_bytes(&mut block);
            let mut word = [0u8; 8];
            word.copy_from_slice(&block[..8]);
            u64::from_le_bytes(word)
        })
    }

    /// The stream for `(purpose, entity)`, e.g. `("arrivals", tenant_id)`.
    pub fn stream(&self, purpose: &str, entity: u64) -> Stream {
        Stream::from_seed(self.seed_for(purpose, entity))
    }

    /// The compact sequential stream for `(purpose, entity)` (see [`CounterStream`]).
    pub fn counter_stream(&self, purpose: &str, entity: u64) -> CounterStream {
        CounterStream::new(self.key_for(purpose, entity))
    }

    /// A single 64-bit key for `(purpose, entity)`, for [`CounterDraws`].
    pub fn key_for(&self, purpose: &str, entity: u64) -> u64 {
        let seed = self.seed_for(purpose, entity);
        let mut word = [0u8; 8];
        word.copy_from_slice(&seed[..8]);
        u64::from_le_bytes(word)
    }
}

/// The SplitMix64 increment (the golden ratio in 64-bit fixed point).
const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 output function: a bijective 64-bit mixer.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// 64-bit FNV-1a of `bytes`: a stable, platform-independent hash for stream purposes.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xCBF2_9CE4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01B3);
    }
    hash
}

/// Counter-based draws: the `index`-th random word of a key, without any stored generator
/// state. `word(i)` is SplitMix64 at position `i` of the sequence seeded by `key`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CounterDraws {
    key: u64,
}

impl CounterDraws {
    /// Draws for `key` (itself taken from a seeded stream).
    pub const fn new(key: u64) -> Self {
        CounterDraws { key }
    }

    /// The `index`-th random word.
    #[inline]
    pub fn word(self, index: u64) -> u64 {
        mix64(
            self.key
                .wrapping_add(index.wrapping_add(1).wrapping_mul(GOLDEN_GAMMA)),
        )
    }

    /// The `index`-th uniform draw in (0, 1).
    #[inline]
    pub fn unit(self, index: u64) -> f64 {
        unit_open(self.word(index))
    }
}

/// A sequential stream of counter-based draws: the next word of a [`CounterDraws`] key.
///
/// Sixteen bytes of state where a buffered ChaCha8 generator takes about 320: this is the
/// stream kept per tenant (arrivals), which is what keeps hot state small at 100,000 tenants.
/// Its key still comes from the ChaCha derivation of `(master seed, purpose, entity)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CounterStream {
    draws: CounterDraws,
    position: u64,
}

impl CounterStream {
    /// The stream for `key`, at its first word.
    pub const fn new(key: u64) -> Self {
        CounterStream {
            draws: CounterDraws::new(key),
            position: 0,
        }
    }

    /// The next random word.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let word = self.draws.word(self.position);
        self.position += 1;
        word
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a = Streams::new(42);
        let b = Streams::new(42);
        let mut s1 = a.stream("arrivals", 7);
        let mut s2 = b.stream("arrivals", 7);
        let v1: Vec<u64> = (0..8).map(|_| s1.next_u64()).collect();
        let v2: Vec<u64> = (0..8).map(|_| s2.next_u64()).collect();
        assert_eq!(v1, v2);
        let mut other_entity = a.stream("arrivals", 8);
        let mut other_purpose = a.stream("work", 7);
        let mut other_seed = Streams::new(43).stream("arrivals", 7);
        assert_ne!(v1[0], other_entity.next_u64());
        assert_ne!(v1[0], other_purpose.next_u64());
        assert_ne!(v1[0], other_seed.next_u64());
    }

    #[test]
    fn derivation_is_pinned() {
        // A change here changes every report ever produced: bump the program version with it.
        let mut s = Streams::new(42).stream("arrivals", 0);
        let first = s.next_u64();
        let again = Streams::new(42).stream("arrivals", 0).next_u64();
        assert_eq!(first, again);
        assert_eq!(fnv1a64(b"arrivals"), fnv1a64(b"arrivals"));
        assert_ne!(fnv1a64(b"arrivals"), fnv1a64(b"arrival"));
    }

    #[test]
    fn batch_keys_equal_single_keys() {
        let streams = Streams::new(7);
        let batch: Vec<u64> = streams.keys_for("work", 37).collect();
        let single: Vec<u64> = (0..37).map(|e| streams.key_for("work", e)).collect();
        assert_eq!(batch, single);
        assert_ne!(batch[0], batch[1]);
    }

    #[test]
    fn unit_open_is_inside_the_interval() {
        assert!(unit_open(0) > 0.0);
        assert!(unit_open(u64::MAX) < 1.0);
    }

    #[test]
    fn uniform_inclusive_covers_bounds() {
        assert_eq!(uniform_inclusive(0, 10), 0);
        assert_eq!(uniform_inclusive(u64::MAX, 10), 10);
        assert_eq!(uniform_inclusive(u64::MAX, 0), 0);
    }
}
