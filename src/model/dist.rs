//! Service-time distributions and their sampling by inverse CDF.
//!
//! A draw is `quantile(u)` for a uniform `u` in (0, 1). Inverse-CDF sampling uses exactly one
//! uniform per draw, which is what lets a request's work be derived from a counter (see
//! `kernel::rng::CounterDraws`) and stay identical across policies. Transcendental functions
//! come from the pure-Rust `libm` crate (and `fastlog`, built on it, for the exponential) so a
//! seed gives the same draws on every platform.

use super::fastlog;
use crate::time::SimDuration;

/// A distribution of durations.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Dist {
    /// Always the same value.
    Constant(SimDuration),
    /// Exponential with the given mean.
    Exponential {
        /// Mean.
        mean: SimDuration,
    },
    /// Log-normal given by its median and 99th percentile; build it with
    /// [`Dist::log_normal`], which derives `mu` and `sigma` once rather than at every draw.
    LogNormal {
        /// Median (`exp(mu)`).
        median: SimDuration,
        /// 99th percentile (`exp(mu + 2.326·sigma)`).
        p99: SimDuration,
        /// `ln(median)`.
        mu: f64,
        /// `(ln(p99) - mu) / 2.326`.
        sigma: f64,
    },
    /// Uniform on `[min, max]`.
    Uniform {
        /// Lower bound.
        min: SimDuration,
        /// Upper bound.
        max: SimDuration,
    },
}

/// A rank from 1 to `n` with probability proportional to `rank^-exponent` (Zipf), by
/// rejection-inversion (Hörmann and Derflinger, 1996): exact, O(1) expected draws, no table.
/// `unit(i)` is the `i`-th uniform in (0, 1) the sample may use (most use one or two).
pub fn zipf_rank(n: u64, exponent: f64, unit: impl Fn(u64) -> f64) -> u64 {
    if n <= 1 {
        return 1;
    }
    let s = exponent;
    // helper1(x) = log1p(x)/x, helper2(x) = expm1(x)/x, with their limits at 0.
    let helper1 = |x: f64| {
        if x.abs() > 1e-8 {
            libm::log1p(x) / x
        } else {
            1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
        }
    };
    let helper2 = |x: f64| {
        if x.abs() > 1e-8 {
            libm::expm1(x) / x
        } else {
            1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x))
        }
    };
    let h = |x: f64| libm::exp(-s * libm::log(x));
    let h_integral = |x: f64| {
        let log_x = libm::log(x);
        helper2((1.0 - s) * log_x) * log_x
    };
    let h_integral_inverse = |x: f64| {
        let t = (x * (1.0 - s)).max(-1.0);
        libm::exp(helper1(t) * x)
    };
    let h_x1 = h_integral(1.5) - 1.0;
    let h_n = h_integral(n as f64 + 0.5);
    let shift = 2.0 - h_integral_inverse(h_integral(2.5) - h(2.0));
    // A sample is accepted with probability above 0.5 whatever n and s; 64 tries fail with
    // probability below 2^-64, and then the last candidate is taken.
    let mut k = 1;
    for i in 0..64 {
        let u = h_n + unit(i) * (h_x1 - h_n);
        let x = h_integral_inverse(u);
        k = ((x + 0.5) as u64).clamp(1, n);
        if k as f64 - x <= shift || u >= h_integral(k as f64 + 0.5) - h(k as f64) {
            return k;
        }
    }
    k
}

/// The standard normal quantile at 0.99.
const Z99: f64 = 2.326_347_874_040_840_8;

impl Dist {
    /// The log-normal with this median and 99th percentile.
    pub fn log_normal(median: SimDuration, p99: SimDuration) -> Dist {
        let mu = libm::log(median.as_nanos() as f64);
        let sigma = (libm::log(p99.as_nanos() as f64) - mu) / Z99;
        Dist::LogNormal {
            median,
            p99,
            mu,
            sigma,
        }
    }

    /// The duration at quantile `u` (0 < u < 1).
    #[inline]
    pub fn quantile(&self, u: f64) -> SimDuration {
        match *self {
            Dist::Constant(d) => d,
            Dist::Exponential { mean } => SimDuration::from_nanos(round_nanos(
                -(mean.as_nanos() as f64) * fastlog::ln(1.0 - u),
            )),
            Dist::LogNormal { mu, sigma, .. } => {
                SimDuration::from_nanos(round_nanos(libm::exp(mu + sigma * normal_quantile(u))))
            }
            Dist::Uniform { min, max } => {
                let span = (max.as_nanos() - min.as_nanos()) as f64;
                SimDuration::from_nanos(min.as_nanos() + round_nanos(span * u))
            }
        }
    }

    /// [`Dist::quantile`] of `u`, given `ln_complement = fastlog::ln(1.0 - u)` computed
    /// earlier: the same value, bit for bit, but an exponential needs no logarithm now. (A
    /// model takes the logarithm one arrival ahead, off the path the next event waits on.)
    #[inline]
    pub fn quantile_with_ln(&self, u: f64, ln_complement: f64) -> SimDuration {
        match *self {
            Dist::Exponential { mean } => {
                SimDuration::from_nanos(round_nanos(-(mean.as_nanos() as f64) * ln_complement))
            }
            _ => self.quantile(u),
        }
    }

    /// Whether [`Dist::quantile_with_ln`] saves a logarithm.
    pub fn is_exponential(&self) -> bool {
        matches!(self, Dist::Exponential { .. })
    }

    /// The mean of the distribution.
    pub fn mean(&self) -> SimDuration {
        match *self {
            Dist::Constant(d) => d,
            Dist::Exponential { mean } => mean,
            Dist::LogNormal { mu, sigma, .. } => {
                SimDuration::from_nanos(round_nanos(libm::exp(mu + sigma * sigma / 2.0)))
            }
            Dist::Uniform { min, max } => {
                SimDuration::from_nanos(min.as_nanos() / 2 + max.as_nanos() / 2)
            }
        }
    }

    /// The same distribution with every value multiplied by `factor` (a slowdown).
    pub fn scaled(&self, factor: f64) -> Dist {
        let s = |d: SimDuration| SimDuration::from_nanos(round_nanos(d.as_nanos() as f64 * factor));
        match *self {
            Dist::Constant(d) => Dist::Constant(s(d)),
            Dist::Exponential { mean } => Dist::Exponential { mean: s(mean) },
            Dist::LogNormal { median, p99, .. } => Dist::log_normal(s(median), s(p99)),
            Dist::Uniform { min, max } => Dist::Uniform {
                min: s(min),
                max: s(max),
            },
        }
    }
}

/// Rounds a non-negative float to the nearest nanosecond (half up), saturating; NaN is 0.
#[inline]
fn round_nanos(x: f64) -> u64 {
    SimDuration::from_nanos_f64(x).as_nanos()
}

/// The standard normal quantile function (Wichura's algorithm AS 241, PPND16; relative error
/// about 1e-16). Coefficients as published (Applied Statistics 37(3), 1988).
#[allow(clippy::excessive_precision, clippy::unreadable_literal)]
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 8] = [
        3.3871328727963666080e0,
        1.3314166789178437745e+2,
        1.9715909503065514427e+3,
        1.3731693765509461125e+4,
        4.5921953931549871457e+4,
        6.7265770927008700853e+4,
        3.3430575583588128105e+4,
        2.5090809287301226727e+3,
    ];
    const B: [f64; 8] = [
        1.0,
        4.2313330701600911252e+1,
        6.8718700749205790830e+2,
        5.3941960214247511077e+3,
        2.1213794301586595867e+4,
        3.9307895800092710610e+4,
        2.8729085735721942674e+4,
        5.2264952788528545610e+3,
    ];
    const C: [f64; 8] = [
        1.42343711074968357734e0,
        4.63033784615654529590e0,
        5.76949722146069140550e0,
        3.64784832476320460504e0,
        1.27045825245236838258e0,
        2.41780725177450611770e-1,
        2.27238449892691845833e-2,
        7.74545014278341407640e-4,
    ];
    const D: [f64; 8] = [
        1.0,
        2.05319162663775882187e0,
        1.67638483018380384940e0,
        6.89767334985100004550e-1,
        1.48103976427480074590e-1,
        1.51986665636164571966e-2,
        5.47593808499534494600e-4,
        1.05075007164441684324e-9,
    ];
    const E: [f64; 8] = [
        6.65790464350110377720e0,
        5.46378491116411436990e0,
        1.78482653991729133580e0,
        2.96560571828504891230e-1,
        2.65321895265761230930e-2,
        1.24266094738807843860e-3,
        2.71155556874348757815e-5,
        2.01033439929228813265e-7,
    ];
    const F: [f64; 8] = [
        1.0,
        5.99832206555887937690e-1,
        1.36929880922735805310e-1,
        1.48753612908506148525e-2,
        7.86869131145613259100e-4,
        1.84631831751005468180e-5,
        1.42151175831644588870e-7,
        2.04426310338993978564e-15,
    ];
    fn poly(c: &[f64; 8], x: f64) -> f64 {
        c.iter().rev().fold(0.0, |acc, &k| acc * x + k)
    }
    let q = p - 0.5;
    if q.abs() <= 0.425 {
        let r = 0.180625 - q * q;
        return q * poly(&A, r) / poly(&B, r);
    }
    let tail = if q < 0.0 { p } else { 1.0 - p };
    if tail <= 0.0 {
        return if q < 0.0 {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
    }
    let r = libm::sqrt(-libm::log(tail));
    let value = if r <= 5.0 {
        let r = r - 1.6;
        poly(&C, r) / poly(&D, r)
    } else {
        let r = r - 5.0;
        poly(&E, r) / poly(&F, r)
    };
    if q < 0.0 { -value } else { value }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normal_cdf(x: f64) -> f64 {
        0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
    }

    #[test]
    fn normal_quantile_inverts_the_cdf() {
        for &p in &[
            1e-12, 1e-6, 0.001, 0.01, 0.075, 0.2, 0.5, 0.8, 0.925, 0.99, 0.999999,
        ] {
            let x = normal_quantile(p);
            let back = normal_cdf(x);
            assert!(((back - p) / p).abs() < 1e-12, "p={p} x={x} cdf(x)={back}");
        }
        assert!((normal_quantile(0.99) - Z99).abs() < 1e-12);
    }

    proptest::proptest! {
        /// The logarithm taken ahead gives the same duration, bit for bit, for every kind of
        /// distribution and any draw.
        #[test]
        fn quantile_with_ln_taken_ahead_equals_quantile(
            u in 0.0f64..1.0,
            mean_nanos in 1u64..10_000_000_000,
            spread in 1u64..1_000,
        ) {
            let mean = SimDuration::from_nanos(mean_nanos);
            let dists = [
                Dist::Exponential { mean },
                Dist::Constant(mean),
                Dist::Uniform { min: mean, max: mean + SimDuration::from_nanos(spread) },
                Dist::log_normal(mean, mean + SimDuration::from_nanos(spread * mean_nanos)),
            ];
            let ln_complement = fastlog::ln(1.0 - u);
            for d in dists {
                proptest::prop_assert_eq!(d.quantile_with_ln(u, ln_complement), d.quantile(u));
            }
        }
    }

    #[test]
    fn lognormal_hits_its_median_and_p99() {
        let d = Dist::log_normal(SimDuration::from_millis(2), SimDuration::from_millis(20));
        let median = d.quantile(0.5).as_nanos() as f64;
        let p99 = d.quantile(0.99).as_nanos() as f64;
        assert!((median - 2e6).abs() <= 1.0);
        assert!((p99 - 2e7).abs() <= 2.0);
    }

    #[test]
    fn exponential_median_is_mean_ln2() {
        let d = Dist::Exponential {
            mean: SimDuration::from_millis(8),
        };
        let median = d.quantile(0.5).as_nanos() as f64;
        assert!((median - 8e6 * std::f64::consts::LN_2).abs() <= 1.0);
    }
}
