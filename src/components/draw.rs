//! Turning random words into numbers with exact, platform-independent arithmetic.
//!
//! Components take random bits as a `u64` argument rather than owning a generator; these helpers
//! map such a word to a uniform integer or a uniform float the same way on every platform.

/// A uniform integer in `[0, bound]` from 64 random bits (multiply-shift: exact integer
/// arithmetic; bias below 2^-64 per draw).
#[inline]
pub fn uniform_inclusive(bits: u64, bound: u64) -> u64 {
    if bound == u64::MAX {
        return bits;
    }
    ((u128::from(bits) * u128::from(bound + 1)) >> 64) as u64
}

/// A uniform draw in the open interval (0, 1) from 64 random bits, so `ln(u)` and
/// `ln(1 - u)` are always finite. 52 bits of resolution: with 53, the largest draw
/// `1 - 2^-54` would round to exactly 1.0.
#[inline]
pub fn unit_open(bits: u64) -> f64 {
    ((bits >> 12) as f64 + 0.5) * (1.0 / (1u64 << 52) as f64)
}
