//! Per-tenant rate limiting with GCRA (the generic cell rate algorithm, a token bucket kept as
//! one timestamp).
//!
//! A [`Quota`] allows a sustained `rate` per second and a `burst` of requests at once from an
//! idle state. The state of one tenant is one [`GcraState`]: its theoretical arrival time
//! (TAT). A request of cost `n` is allowed iff `max(TAT, now) + n·T <= now + burst·T`, where
//! `T = 1/rate` is the emission interval; allowing it advances the TAT. A denial leaves the
//! state untouched and says exactly when the same request would be allowed (`retry_at`), so a
//! 429 can carry a precise `Retry-After`.
//!
//! ```
//! use std::time::Instant;
//! use tenantsim::components::limiter::{Decision, GcraState, Quota};
//! use tenantsim::time::SimTime;
//!
//! let quota = Quota::per_second(100.0, 20).expect("valid quota");
//! let mut tenant = GcraState::default();
//! let start = Instant::now();
//! let now = SimTime::from_nanos(start.elapsed().as_nanos() as u64);
//! let admitted = (0..25)
//!     .filter(|_| matches!(quota.check(&mut tenant, now, 1), Decision::Allowed))
//!     .count();
//! assert_eq!(admitted, 20); // a full bucket admits exactly `burst` at one instant
//! ```

use crate::time::{NANOS_PER_SEC, SimDuration, SimTime};

/// A sustained rate with a burst allowance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    /// Time between two unit requests at the sustained rate (`T`), in nanoseconds (≥ 1).
    emission_interval: u64,
    /// Unit requests admitted at once from an idle state.
    burst: u32,
}

/// Why a quota is invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuotaError {
    /// The rate is not a positive finite number, or is above one request per nanosecond.
    Rate,
    /// The burst is zero.
    Burst,
}

impl Quota {
    /// `rate` requests per second sustained, `burst` at once. The emission interval is rounded
    /// to the nearest nanosecond.
    pub fn per_second(rate: f64, burst: u32) -> Result<Quota, QuotaError> {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(QuotaError::Rate);
        }
        let interval = (NANOS_PER_SEC as f64 / rate).round();
        if interval < 1.0 {
            return Err(QuotaError::Rate);
        }
        if burst == 0 {
            return Err(QuotaError::Burst);
        }
        Ok(Quota {
            emission_interval: interval as u64,
            burst,
        })
    }

    /// The emission interval `T = 1/rate`.
    pub fn emission_interval(&self) -> SimDuration {
        SimDuration::from_nanos(self.emission_interval)
    }

    /// The burst size.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// Decides a request of `cost` units at `now`, updating `state` only if it is allowed.
    /// A cost larger than the burst can never be allowed: its `retry_at` is [`SimTime::MAX`].
    #[inline]
    pub fn check(&self, state: &mut GcraState, now: SimTime, cost: u32) -> Decision {
        let t = u128::from(self.emission_interval);
        let now_ns = u128::from(now.as_nanos());
        let tolerance = t * u128::from(self.burst);
        let base = u128::from(state.tat.as_nanos()).max(now_ns);
        let new_tat = base + t * u128::from(cost);
        if new_tat <= now_ns + tolerance {
            state.tat = SimTime::from_nanos(u64::try_from(new_tat).unwrap_or(u64::MAX));
            Decision::Allowed
        } else if cost > self.burst {
            Decision::Denied {
                retry_at: SimTime::MAX,
            }
        } else {
            // Earliest now' with new_tat' - now' <= tolerance; for now' <= TAT the new TAT is
            // unchanged, so now' = new_tat - tolerance (which is > now here).
            let at = new_tat - tolerance;
            Decision::Denied {
                retry_at: SimTime::from_nanos(u64::try_from(at).unwrap_or(u64::MAX)),
            }
        }
    }
}

/// One tenant's limiter state: its theoretical arrival time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GcraState {
    tat: SimTime,
}

impl GcraState {
    /// Whether this state is indistinguishable from a fresh one at `now` (the bucket is full),
    /// so it can be dropped without changing any decision.
    pub fn is_idle(&self, now: SimTime) -> bool {
        self.tat <= now
    }
}

/// The answer to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Admitted; the state was charged.
    Allowed,
    /// Denied; nothing was charged. The same request is allowed at `retry_at` if nothing else
    /// is admitted in between.
    Denied {
        /// Earliest time the same request would be allowed.
        retry_at: SimTime,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_at_is_exact() {
        let quota = Quota::per_second(10.0, 2).unwrap();
        let mut s = GcraState::default();
        let now = SimTime::from_nanos(1_000);
        assert_eq!(quota.check(&mut s, now, 1), Decision::Allowed);
        assert_eq!(quota.check(&mut s, now, 1), Decision::Allowed);
        let Decision::Denied { retry_at } = quota.check(&mut s, now, 1) else {
            panic!("third request in a burst of two must be denied");
        };
        let before = retry_at.saturating_sub(SimDuration::from_nanos(1));
        let mut probe = s;
        assert!(matches!(
            quota.check(&mut probe, before, 1),
            Decision::Denied { .. }
        ));
        assert_eq!(quota.check(&mut s, retry_at, 1), Decision::Allowed);
    }

    #[test]
    fn cost_above_burst_is_never_allowed() {
        let quota = Quota::per_second(10.0, 2).unwrap();
        let mut s = GcraState::default();
        assert_eq!(
            quota.check(&mut s, SimTime::ZERO, 3),
            Decision::Denied {
                retry_at: SimTime::MAX
            }
        );
    }

    #[test]
    fn invalid_quotas_are_rejected() {
        assert_eq!(Quota::per_second(0.0, 1), Err(QuotaError::Rate));
        assert_eq!(Quota::per_second(f64::NAN, 1), Err(QuotaError::Rate));
        assert_eq!(Quota::per_second(1e10, 1), Err(QuotaError::Rate));
        assert_eq!(Quota::per_second(1.0, 0), Err(QuotaError::Burst));
    }
}
