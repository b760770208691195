//! A fast natural logarithm for exponential sampling, bit-identical on every platform.
//!
//! Every Poisson arrival and exponential service time is `-mean * ln(u)`, so `ln` runs twice
//! per request and was the largest single cost of a run (about a fifth of the wall time with
//! `libm::log`, whose polynomial waits on a division). This version has no division on the
//! path: it splits `x = 2^k * m`, looks up `c` near `m` in a 256-entry table of `1/c` and
//! `ln c`, and evaluates `ln(m/c)` for `|m/c - 1| < 1/256` with a short series, grouped so its
//! multiplications run in parallel rather than as one long chain. It uses only
//! IEEE-754 `+ - *` (Rust never fuses them), and the table is built from `libm::log` and an
//! exact division, so a seed gives the same draws on every platform, as with `libm`.
//!
//! Accuracy: within `4 ulp + 2.5e-16` of `libm::log` (the absolute part is the rounding of
//! `m/c` near 1, exact for the intervals touching 1). A draw multiplies the result by a mean in
//! nanoseconds and rounds to a whole nanosecond, so the difference is nil in practice.

use std::sync::LazyLock;

/// Table intervals: the top 7 bits of the mantissa pick one.
const BITS: u32 = 8;
const ENTRIES: usize = 1 << BITS;

/// `(1/c, ln c)` per interval. Mantissas in the upper half are halved (and the exponent
/// incremented) so that reduced values lie in `[0.75, 1.5)`: that keeps `ln` of values near 1
/// free of cancellation. The intervals touching 1 use `c = 1` exactly.
static TABLE: LazyLock<[(f64, f64); ENTRIES]> = LazyLock::new(|| {
    let mut table = [(1.0, 0.0); ENTRIES];
    for (i, entry) in table.iter_mut().enumerate() {
        let centre = 1.0 + (i as f64 + 0.5) / ENTRIES as f64;
        let c = if i == 0 || i == ENTRIES - 1 {
            1.0
        } else if i >= ENTRIES / 2 {
            centre / 2.0
        } else {
            centre
        };
        *entry = (1.0 / c, libm::log(c));
    }
    table
});

const LN_2: f64 = std::f64::consts::LN_2;

/// Natural logarithm of `x`. Finite positive normal numbers take the fast path; anything else
/// (zero, subnormal, negative, infinite, NaN) is passed to `libm::log`, which handles it.
#[inline]
pub fn ln(x: f64) -> f64 {
    let bits = x.to_bits();
    let exponent_field = (bits >> 52) as i64; // includes the sign bit: negatives are >= 0x800
    if exponent_field == 0 || exponent_field >= 0x7ff {
        return outside_fast_path(x);
    }
    let index = ((bits >> (52 - BITS)) & (ENTRIES as u64 - 1)) as usize;
    let upper = (index >= ENTRIES / 2) as i64;
    let k = exponent_field - 1023 + upper;
    // The mantissa in [1, 2), halved for the upper intervals: exact.
    let m = f64::from_bits((bits & ((1u64 << 52) - 1)) | ((1023 - upper as u64) << 52));
    let (inverse, ln_c) = TABLE[index];
    let r = m * inverse - 1.0;
    // ln(1 + r) for |r| < 1/256: the series to r^6 leaves an error below r^7/7 < 2^-58.
    // Estrin's grouping: r2, r4 and the three brackets are independent of one another.
    let r2 = r * r;
    let r4 = r2 * r2;
    let low = r2 * (-0.5 + r * (1.0 / 3.0));
    let high = r4 * ((-0.25 + r * 0.2) - r2 * (1.0 / 6.0));
    (k as f64 * LN_2 + ln_c) + (r + (low + high))
}

/// `ln` of zero, subnormals, negatives, infinities and NaN: never met when sampling, so kept
/// out of line, where its register spills stay off the fast path.
#[cold]
#[inline(never)]
fn outside_fast_path(x: f64) -> f64 {
    libm::log(x)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::ln;

    fn close(x: f64) -> Result<(), TestCaseError> {
        let (fast, exact) = (ln(x), libm::log(x));
        let tolerance = 4.0 * f64::EPSILON * exact.abs() + 2.5e-16;
        prop_assert!(
            (fast - exact).abs() <= tolerance,
            "ln({x:e}) = {fast:e}, libm {exact:e}"
        );
        Ok(())
    }

    proptest! {
        /// The sampling domain: `1 - u` for a uniform `u` in (0, 1).
        #[test]
        fn matches_libm_on_the_unit_interval(bits in 1u64..(1 << 53)) {
            close(bits as f64 / (1u64 << 53) as f64)?;
        }

        /// Any positive normal number.
        #[test]
        fn matches_libm_on_positive_normals(x in f64::MIN_POSITIVE..f64::MAX) {
            close(x)?;
        }

        /// Near 1, where the result is tiny and cancellation would show.
        #[test]
        fn is_accurate_near_one(delta in -1e-3f64..1e-3) {
            let x = 1.0 + delta;
            let (fast, exact) = (ln(x), libm::log(x));
            prop_assert!((fast - exact).abs() <= 4.0 * f64::EPSILON * exact.abs() + 1e-300);
        }
    }

    #[test]
    fn edge_values_follow_libm() {
        assert_eq!(ln(1.0), 0.0);
        assert_eq!(ln(0.0), f64::NEG_INFINITY);
        assert!(ln(-1.0).is_nan());
        assert!(ln(f64::NAN).is_nan());
        assert_eq!(ln(f64::INFINITY), f64::INFINITY);
        let subnormal = f64::MIN_POSITIVE / 4.0;
        assert_eq!(ln(subnormal), libm::log(subnormal));
        assert!((ln(2.0) - std::f64::consts::LN_2).abs() <= f64::EPSILON);
    }
}
