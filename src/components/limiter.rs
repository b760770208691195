//! Per-tenant rate limiting with GCRA (the generic cell rate algorithm, a token bucket kept as
//! one timestamp).
//!
//! A [`Quota`] allows a sustained `rate` per second and a `burst` of requests at once from an
//! idle state. The state of one tenant is one [`GcraState`]: its theoretical arrival time
//! (TAT). A request of cost `n` is allowed iff `max(TAT, now) + n·T <= now + burst·T`, where
//! `T = 1/rate` is the emission interval; allowing it advances the TAT. A denial leaves the
//! state untouched and says exactly when the same request would be allowed (`retry_at`), so a
//! 429 can carry a precise `Retry-After`. Over any window `[t, t + w]` a tenant is admitted at
//! most `burst + floor(w / T)` units of cost.
//!
//! **Tier changes.** [`GcraState::change_quota`] moves a tenant to a new quota without
//! forgetting what it has already consumed: the consumed part of the bucket, measured in
//! requests (`(TAT - now) / T_old`), is carried over and re-expressed in the new interval
//! (`TAT' = now + debt·T_new`), clamped to the new burst. A drained tenant that is downgraded
//! stays drained; an idle tenant stays idle.
//!
//! **Many tenants.** [`KeyedLimiter`] keeps one state per key in a `BTreeMap`. The quota of a
//! key is passed in on every call (tier configuration lives with the caller), so dropping a
//! state never loses configuration. A state whose TAT is not after `now` is indistinguishable
//! from a fresh one and is dropped by an amortised sweep, so memory stays proportional to the
//! tenants admitted within the last `burst·T`, not to every tenant ever seen.
//!
//! A production service keeps one `KeyedLimiter` per edge process (or per shard), looks up the
//! tenant's tier in its own configuration and answers 429 with `Retry-After: retry_at - now`
//! on a denial. `now` must not go backwards between calls on the same limiter: use a
//! monotonic clock.
//!
//! ```
//! use std::time::Instant;
//! use tenantsim::components::limiter::{Decision, GcraState, KeyedLimiter, Quota};
//! use tenantsim::time::SimTime;
//!
//! let quota = Quota::per_second(100.0, 20).expect("valid quota");
//! let mut tenant = GcraState::default();
//! // The caller's wall clock, as in a production service: the component only ever sees
//! // `now` (the simulator passes simulated time, never this clock).
//! let start = Instant::now();
//! let now = SimTime::from_nanos(start.elapsed().as_nanos() as u64);
//! let admitted = (0..25)
//!     .filter(|_| matches!(quota.check(&mut tenant, now, 1), Decision::Allowed))
//!     .count();
//! assert_eq!(admitted, 20); // a full bucket admits exactly `burst` at one instant
//!
//! // Many tenants, keyed by name; the tier is looked up by the caller on every request.
//! let free = Quota::per_second(10.0, 5).expect("valid quota");
//! let pro = Quota::per_second(1_000.0, 100).expect("valid quota");
//! let mut limiter: KeyedLimiter<String> = KeyedLimiter::new();
//! let now = SimTime::from_nanos(start.elapsed().as_nanos() as u64);
//! let acme = "acme".to_string();
//! let admitted = (0..10)
//!     .filter(|_| limiter.check(&acme, &free, now, 1).is_allowed())
//!     .count();
//! assert_eq!(admitted, 5);
//! // Acme upgrades: its five consumed requests carry over, re-expressed in the pro interval.
//! limiter.change_quota(&acme, &free, &pro, now);
//! let admitted = (0..200)
//!     .filter(|_| limiter.check(&acme, &pro, now, 1).is_allowed())
//!     .count();
//! assert_eq!(admitted, 95);
//! ```

use std::collections::BTreeMap;
use std::fmt;

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

impl fmt::Display for QuotaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuotaError::Rate => write!(
                f,
                "a quota's rate must be a positive finite number of requests per second, at most \
                 one per nanosecond (an emission interval of at least 1ns)"
            ),
            QuotaError::Burst => write!(f, "a quota's burst must be at least 1"),
        }
    }
}

impl std::error::Error for QuotaError {}

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
            // Saturates for rates below one per 584 years, which is "never" anyway.
            emission_interval: interval as u64,
            burst,
        })
    }

    /// One unit request per `emission_interval` sustained, `burst` at once, with the interval
    /// given exactly (no rounding).
    pub fn with_emission_interval(
        emission_interval: SimDuration,
        burst: u32,
    ) -> Result<Quota, QuotaError> {
        if emission_interval.as_nanos() == 0 {
            return Err(QuotaError::Rate);
        }
        if burst == 0 {
            return Err(QuotaError::Burst);
        }
        Ok(Quota {
            emission_interval: emission_interval.as_nanos(),
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

    /// `burst·T`: how far the TAT may run ahead of `now`, and how long a drained bucket takes
    /// to refill completely.
    fn tolerance_nanos(&self) -> u128 {
        u128::from(self.emission_interval) * u128::from(self.burst)
    }

    /// Decides a request of `cost` units at `now`, updating `state` only if it is allowed.
    /// A cost larger than the burst can never be allowed: its `retry_at` is [`SimTime::MAX`].
    #[inline]
    pub fn check(&self, state: &mut GcraState, now: SimTime, cost: u32) -> Decision {
        // In 64 bits whenever nothing overflows (a `now` within 584 years of the clock's zero,
        // the year 2554 for a Unix-epoch clock, and a burst of intervals that fits in 64
        // bits), else in 128: the same decision either way. The 128-bit form cost about eight
        // more instructions per request, paid by every attempt of a throttled tenant.
        let now_ns = now.as_nanos();
        let tolerance = self.emission_interval.checked_mul(u64::from(self.burst));
        let step = self.emission_interval.checked_mul(u64::from(cost));
        let base = state.tat.as_nanos().max(now_ns);
        if let (Some(tolerance), Some(step)) = (tolerance, step)
            && let (Some(new_tat), Some(limit)) =
                (base.checked_add(step), now_ns.checked_add(tolerance))
        {
            return if new_tat <= limit {
                state.tat = SimTime::from_nanos(new_tat);
                Decision::Allowed
            } else if cost > self.burst {
                Decision::Denied {
                    retry_at: SimTime::MAX,
                }
            } else {
                // `new_tat > now + tolerance`, so this is after `now` (see `check_wide`).
                Decision::Denied {
                    retry_at: SimTime::from_nanos(new_tat - tolerance),
                }
            };
        }
        self.check_wide(state, now, cost)
    }

    /// [`Quota::check`] in 128-bit arithmetic, where no sum or product can overflow.
    #[cold]
    #[inline(never)]
    fn check_wide(&self, state: &mut GcraState, now: SimTime, cost: u32) -> Decision {
        let t = u128::from(self.emission_interval);
        let now_ns = u128::from(now.as_nanos());
        let tolerance = self.tolerance_nanos();
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

    /// Moves this state from quota `old` to quota `new` at `now` (a tier change), keeping the
    /// consumed part of the bucket measured in requests.
    ///
    /// The rule: the debt is `d = (TAT - now) / T_old` requests (zero if the state is idle);
    /// the new TAT is `now + d·T_new`, rounded up to the next nanosecond (so a conversion
    /// never grants a fraction of a request) and clamped to `now + burst_new·T_new` (a debt
    /// larger than the new burst means the new bucket is simply empty). Consequently an idle
    /// tenant stays idle, a drained tenant stays drained, and right after the change at most
    /// `burst_new - ceil(d)` unit requests pass at one instant (never more than the new burst).
    pub fn change_quota(&mut self, old: &Quota, new: &Quota, now: SimTime) {
        if self.is_idle(now) {
            return;
        }
        let debt_nanos = u128::from(self.tat.as_nanos() - now.as_nanos());
        let scaled = (debt_nanos * u128::from(new.emission_interval))
            .div_ceil(u128::from(old.emission_interval));
        let carried = scaled.min(new.tolerance_nanos());
        let tat = u128::from(now.as_nanos()) + carried;
        self.tat = SimTime::from_nanos(u64::try_from(tat).unwrap_or(u64::MAX));
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

impl Decision {
    /// Whether the request was admitted.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allowed)
    }
}

/// The smallest map size at which the automatic sweep runs: below it a sweep would cost more
/// than the memory it frees.
const MIN_SWEEP_THRESHOLD: usize = 1_024;

/// GCRA states for many keys (tenants), with idle states evicted automatically.
///
/// The quota for a key is an argument of every call, so the limiter holds no configuration and
/// an evicted key comes back exactly as it left. Only admitted requests create entries (a
/// denial never changes anything), and an entry whose TAT is not after `now` is
/// indistinguishable from a fresh one.
///
/// **Memory bound.** When an insertion takes the map past its high-water mark, idle states
/// are swept and the mark is reset to `max(1024, 2·live)`. So at any time
/// `len() <= max(1024, 2·L)`, where `L` is the number of live states at the last sweep, and a
/// state can only be live at time `s` if its key was admitted within `[s - burst·T, s]` (the
/// largest `burst·T` among the quotas in use). The sweep costs `O(len)` and runs at most once
/// per `len/2` insertions, so it adds amortised `O(1)` per request.
///
/// `now` must not decrease between calls: an evicted state is only equivalent to a fresh one
/// from its TAT on.
#[derive(Clone, Debug)]
pub struct KeyedLimiter<K: Ord + Clone> {
    states: BTreeMap<K, GcraState>,
    /// Sweep when `states.len()` exceeds this.
    high_water: usize,
    /// The floor of `high_water`.
    min_high_water: usize,
}

impl<K: Ord + Clone> Default for KeyedLimiter<K> {
    fn default() -> Self {
        KeyedLimiter::new()
    }
}

impl<K: Ord + Clone> KeyedLimiter<K> {
    /// An empty limiter with the default sweep threshold (1,024 states).
    pub fn new() -> Self {
        KeyedLimiter::with_sweep_threshold(MIN_SWEEP_THRESHOLD)
    }

    /// An empty limiter that sweeps idle states once it holds more than `threshold` states
    /// (and thereafter more than `max(threshold, 2·live)`). A threshold of 0 is treated as 1.
    pub fn with_sweep_threshold(threshold: usize) -> Self {
        let min_high_water = threshold.max(1);
        KeyedLimiter {
            states: BTreeMap::new(),
            high_water: min_high_water,
            min_high_water,
        }
    }

    /// Decides a request of `cost` units for `key` under `quota` at `now`; see
    /// [`Quota::check`]. Only an admission changes anything.
    pub fn check(&mut self, key: &K, quota: &Quota, now: SimTime, cost: u32) -> Decision {
        match self.states.get_mut(key) {
            Some(state) => {
                let decision = quota.check(state, now, cost);
                if decision.is_allowed() && state.is_idle(now) {
                    // Only a zero-cost request leaves a state idle; keep the map lean.
                    self.states.remove(key);
                }
                decision
            }
            None => {
                let mut state = GcraState::default();
                let decision = quota.check(&mut state, now, cost);
                if decision.is_allowed() && !state.is_idle(now) {
                    self.states.insert(key.clone(), state);
                    if self.states.len() > self.high_water {
                        self.evict_idle(now);
                    }
                }
                decision
            }
        }
    }

    /// Moves `key` from quota `old` to quota `new` at `now`, carrying over what it has
    /// consumed; see [`GcraState::change_quota`]. A key with no state is idle and stays so.
    pub fn change_quota(&mut self, key: &K, old: &Quota, new: &Quota, now: SimTime) {
        if let Some(state) = self.states.get_mut(key) {
            state.change_quota(old, new, now);
            if state.is_idle(now) {
                self.states.remove(key);
            }
        }
    }

    /// Drops every state that is idle at `now` (TAT <= now) and returns how many were dropped.
    /// This never changes a decision at `now` or later. Also resets the sweep high-water mark.
    pub fn evict_idle(&mut self, now: SimTime) -> usize {
        let before = self.states.len();
        self.states.retain(|_, state| !state.is_idle(now));
        self.high_water = self.min_high_water.max(self.states.len().saturating_mul(2));
        before - self.states.len()
    }

    /// Drops the state of `key` (for example when the tenant is deleted), returning whether it
    /// had one. Forgetting a live state gives the key a full bucket again.
    pub fn forget(&mut self, key: &K) -> bool {
        self.states.remove(key).is_some()
    }

    /// The state kept for `key`, if any (none means a full bucket).
    pub fn state(&self, key: &K) -> Option<GcraState> {
        self.states.get(key).copied()
    }

    /// Number of states held (live ones plus idle ones not yet swept).
    pub fn len(&self) -> usize {
        self.states.len()
    }

    /// Whether no state is held.
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::num::NonZeroU32;
    use std::time::Duration;

    fn quota(interval: u64, burst: u32) -> Quota {
        Quota::with_emission_interval(SimDuration::from_nanos(interval), burst).unwrap()
    }

    /// Ordinary values, any value, and values so near `u64::MAX` that sums overflow.
    fn wide_u64() -> impl Strategy<Value = u64> {
        prop_oneof![
            0u64..1 << 40,
            any::<u64>(),
            (u64::MAX - (1 << 20))..=u64::MAX
        ]
    }

    /// A quota with an interval from 1ns to 2ms (both tiny intervals, where a nanosecond of
    /// rounding matters, and realistic ones) and a burst of 1 to 20.
    fn arb_quota() -> impl Strategy<Value = Quota> {
        (
            prop_oneof![1u64..=10, 11u64..=10_000, 10_001u64..=2_000_000],
            1u32..=20,
        )
            .prop_map(|(t, b)| quota(t, b))
    }

    /// Raw gap material; [`gap`] scales it to the quota so that bursts, steady traffic and
    /// long idle periods all occur.
    fn arb_gaps(len: usize) -> impl Strategy<Value = Vec<(u8, u64)>> {
        prop::collection::vec((0u8..4, any::<u64>()), 1..len)
    }

    fn gap(q: &Quota, (kind, raw): (u8, u64)) -> u64 {
        let t = q.emission_interval;
        match kind {
            0 => 0,
            1 => raw % (t + 1),
            2 => raw % (4 * t),
            _ => raw % (2 * t * u64::from(q.burst) + 1),
        }
    }

    fn drain_at(q: &Quota, state: &mut GcraState, now: SimTime, tries: u32) -> u32 {
        (0..tries)
            .filter(|_| q.check(state, now, 1).is_allowed())
            .count() as u32
    }

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
        assert_eq!(
            Quota::with_emission_interval(SimDuration::ZERO, 1),
            Err(QuotaError::Rate)
        );
        assert_eq!(
            Quota::with_emission_interval(SimDuration::from_nanos(1), 0),
            Err(QuotaError::Burst)
        );
        assert!(QuotaError::Rate.to_string().contains("rate"));
    }

    #[test]
    fn downgrade_of_a_drained_tenant_keeps_it_drained() {
        let pro = quota(1_000, 100);
        let free = quota(100_000, 5);
        let mut s = GcraState::default();
        let now = SimTime::from_nanos(7);
        assert_eq!(drain_at(&pro, &mut s, now, 200), 100);
        s.change_quota(&pro, &free, now);
        assert_eq!(drain_at(&free, &mut s, now, 10), 0);
        // The clamp leaves exactly an empty new bucket: one request per new interval.
        let later = now + free.emission_interval();
        assert_eq!(drain_at(&free, &mut s, later, 10), 1);
    }

    #[test]
    fn tier_change_rounds_the_debt_up() {
        // One third of a request consumed (1ns of a 3ns interval) is a third of a 1000ns
        // interval, rounded up to 334ns, never down.
        let old = quota(3, 4);
        let new = quota(1_000, 4);
        let now = SimTime::from_nanos(100);
        let mut s = GcraState {
            tat: SimTime::from_nanos(101),
        };
        s.change_quota(&old, &new, now);
        assert_eq!(s.tat, SimTime::from_nanos(434));
        let mut idle = GcraState {
            tat: SimTime::from_nanos(40),
        };
        idle.change_quota(&old, &new, now);
        assert!(idle.is_idle(now));
    }

    #[test]
    fn keyed_limiter_stays_bounded_with_100k_tenants() {
        // 100,000 tenants, each sending a burst of 2 once, one tenant every 10us; a tenant's
        // state is live for burst·T = 2ms, so about 200 are live at any moment.
        let q = quota(1_000_000, 2);
        let mut limiter: KeyedLimiter<u32> = KeyedLimiter::new();
        let mut largest = 0;
        for tenant in 0..100_000u32 {
            let now = SimTime::from_nanos(u64::from(tenant) * 10_000);
            assert!(limiter.check(&tenant, &q, now, 2).is_allowed());
            largest = largest.max(limiter.len());
        }
        assert!(largest <= MIN_SWEEP_THRESHOLD, "largest map: {largest}");
        let held = limiter.len();
        assert_eq!(limiter.evict_idle(SimTime::MAX), held);
        assert!(limiter.is_empty());
    }

    #[test]
    fn keyed_limiter_forgets_and_reports_state() {
        let q = quota(1_000, 3);
        let mut limiter: KeyedLimiter<&str> = KeyedLimiter::default();
        let now = SimTime::from_nanos(50);
        assert!(limiter.check(&"a", &q, now, 0).is_allowed());
        assert!(limiter.is_empty(), "a zero-cost request leaves no state");
        assert!(limiter.check(&"a", &q, now, 3).is_allowed());
        assert!(!limiter.check(&"a", &q, now, 1).is_allowed());
        assert_eq!(
            limiter.state(&"a"),
            Some(GcraState {
                tat: SimTime::from_nanos(3_050)
            })
        );
        assert!(limiter.forget(&"a"));
        assert!(!limiter.forget(&"a"));
        assert!(limiter.check(&"a", &q, now, 3).is_allowed());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Our decisions and `retry_at` equal governor's (a direct limiter on a fake clock),
        /// request by request, with governor's quota built from our exact interval.
        #[test]
        fn matches_governor(q in arb_quota(), gaps in arb_gaps(200)) {
            let clock = governor::clock::FakeRelativeClock::default();
            let theirs_quota = governor::Quota::with_period(Duration::from_nanos(q.emission_interval))
                .unwrap()
                .allow_burst(NonZeroU32::new(q.burst).unwrap());
            let theirs = governor::RateLimiter::direct_with_clock(theirs_quota, clock.clone());
            let mut ours = GcraState::default();
            let mut now = 0u64;
            for g in gaps {
                let step = gap(&q, g);
                now += step;
                clock.advance(Duration::from_nanos(step));
                let decision = q.check(&mut ours, SimTime::from_nanos(now), 1);
                match (decision, theirs.check()) {
                    (Decision::Allowed, Ok(())) => {}
                    (Decision::Denied { retry_at }, Err(not_until)) => {
                        prop_assert_eq!(retry_at.as_nanos(), not_until.earliest_possible().as_u64());
                    }
                    (ours, theirs) => {
                        prop_assert!(false, "at {}ns we said {:?}, governor {:?}", now, ours, theirs);
                    }
                }
            }
        }

        /// The same against governor's `check_n` for costs from 0 to burst + 2 (cost 0 is
        /// always allowed by us and is not sent to governor, which has no zero-cost check).
        #[test]
        fn matches_governor_with_costs(
            q in arb_quota(),
            gaps in arb_gaps(200),
            costs in prop::collection::vec(0u32..=22, 200),
        ) {
            let clock = governor::clock::FakeRelativeClock::default();
            let theirs_quota = governor::Quota::with_period(Duration::from_nanos(q.emission_interval))
                .unwrap()
                .allow_burst(NonZeroU32::new(q.burst).unwrap());
            let theirs = governor::RateLimiter::direct_with_clock(theirs_quota, clock.clone());
            let mut ours = GcraState::default();
            let mut now = 0u64;
            for (g, cost) in gaps.into_iter().zip(costs) {
                let cost = cost % (q.burst + 3);
                let step = gap(&q, g);
                now += step;
                clock.advance(Duration::from_nanos(step));
                let decision = q.check(&mut ours, SimTime::from_nanos(now), cost);
                let Some(n) = NonZeroU32::new(cost) else {
                    prop_assert!(decision.is_allowed());
                    continue;
                };
                match (decision, theirs.check_n(n)) {
                    (Decision::Allowed, Ok(Ok(()))) => {}
                    (Decision::Denied { retry_at }, Ok(Err(not_until))) => {
                        prop_assert_eq!(retry_at.as_nanos(), not_until.earliest_possible().as_u64());
                    }
                    (Decision::Denied { retry_at }, Err(_insufficient)) => {
                        prop_assert_eq!(retry_at, SimTime::MAX);
                    }
                    (ours, theirs) => {
                        prop_assert!(false, "at {}ns cost {} we said {:?}, governor {:?}", now, cost, ours, theirs);
                    }
                }
            }
        }

        /// Admitted cost in any window [t, t + w] is at most burst + floor(w / T), per key,
        /// with several keys on their own quotas sharing one limiter.
        #[test]
        fn window_bound_holds_per_key(
            quotas in prop::collection::vec(arb_quota(), 3),
            traffic in prop::collection::vec((0usize..3, 0u8..4, any::<u64>(), 0u32..=21), 1..150),
        ) {
            let mut limiter = KeyedLimiter::with_sweep_threshold(2);
            let mut admitted: Vec<Vec<(u64, u32)>> = vec![Vec::new(); 3];
            let mut now = 0u64;
            for (key, kind, raw, cost) in traffic {
                let q = &quotas[key];
                now += gap(q, (kind, raw));
                let cost = cost % (q.burst + 2);
                if limiter.check(&key, q, SimTime::from_nanos(now), cost).is_allowed() {
                    admitted[key].push((now, cost));
                }
            }
            for (key, log) in admitted.iter().enumerate() {
                let q = &quotas[key];
                for i in 0..log.len() {
                    let mut total = 0u64;
                    for j in i..log.len() {
                        total += u64::from(log[j].1);
                        let w = log[j].0 - log[i].0;
                        let bound = u64::from(q.burst) + w / q.emission_interval;
                        prop_assert!(total <= bound, "key {}: {} admitted in {}ns, bound {}", key, total, w, bound);
                    }
                }
            }
        }

        /// From a fresh state, exactly `burst` unit requests pass at one instant, and they are
        /// the first `burst`.
        #[test]
        fn fresh_state_admits_exactly_burst(q in arb_quota(), now in 0u64..1 << 50, extra in 1u32..10) {
            let mut s = GcraState::default();
            let now = SimTime::from_nanos(now);
            let decisions: Vec<bool> = (0..q.burst + extra).map(|_| q.check(&mut s, now, 1).is_allowed()).collect();
            let expected: Vec<bool> = (0..q.burst + extra).map(|i| i < q.burst).collect();
            prop_assert_eq!(decisions, expected);
        }

        /// A denial changes no state, in a single state and in the keyed limiter (map and
        /// sweep mark alike).
        #[test]
        fn denial_changes_nothing(
            q in arb_quota(),
            traffic in prop::collection::vec((0u32..4, 0u8..4, any::<u64>(), 0u32..=21), 1..150),
        ) {
            let mut limiter = KeyedLimiter::with_sweep_threshold(2);
            let mut now = 0u64;
            for (key, kind, raw, cost) in traffic {
                now += gap(&q, (kind, raw));
                let cost = cost % (q.burst + 2);
                let states_before = limiter.states.clone();
                let high_water_before = limiter.high_water;
                if !limiter.check(&key, &q, SimTime::from_nanos(now), cost).is_allowed() {
                    prop_assert_eq!(&limiter.states, &states_before);
                    prop_assert_eq!(limiter.high_water, high_water_before);
                }
            }
        }

        /// One key's traffic never changes another key's decisions: key 0's decisions in a
        /// shared limiter equal those of key 0 alone.
        #[test]
        fn keys_are_isolated(
            quotas in prop::collection::vec(arb_quota(), 4),
            traffic in prop::collection::vec((0usize..4, 0u8..4, any::<u64>(), 0u32..=21), 1..200),
        ) {
            let mut shared = KeyedLimiter::with_sweep_threshold(2);
            let mut alone = KeyedLimiter::with_sweep_threshold(2);
            let mut now = 0u64;
            for (key, kind, raw, cost) in traffic {
                let q = &quotas[key];
                now += gap(q, (kind, raw));
                let cost = cost % (q.burst + 2);
                let at = SimTime::from_nanos(now);
                let in_shared = shared.check(&key, q, at, cost);
                if key == 0 {
                    prop_assert_eq!(in_shared, alone.check(&key, q, at, cost));
                }
            }
        }

        /// The 64-bit path decides exactly as the 128-bit form, state included, for any
        /// quota, state, time and cost: values near `u64::MAX` (where the fast path's sums
        /// overflow and it defers) as well as ordinary ones.
        #[test]
        fn the_64_bit_path_decides_as_the_128_bit_form(
            interval in wide_u64(),
            burst in prop_oneof![1u32..100, any::<u32>().prop_map(|b| b.max(1))],
            tat in wide_u64(),
            now in wide_u64(),
            cost in prop_oneof![0u32..100, any::<u32>()],
        ) {
            let q = quota(interval.max(1), burst);
            let mut fast = GcraState { tat: SimTime::from_nanos(tat) };
            let mut wide = fast;
            let now = SimTime::from_nanos(now);
            prop_assert_eq!(q.check(&mut fast, now, cost), q.check_wide(&mut wide, now, cost));
            prop_assert_eq!(fast, wide);
        }

        /// `retry_at` is exact: with no other traffic, 1ns earlier is denied and `retry_at`
        /// itself is allowed.
        #[test]
        fn retry_at_is_exact_everywhere(
            q in arb_quota(),
            traffic in prop::collection::vec((0u8..4, any::<u64>(), 0u32..=21), 1..150),
        ) {
            let mut s = GcraState::default();
            let mut now = 0u64;
            for (kind, raw, cost) in traffic {
                now += gap(&q, (kind, raw));
                let cost = cost % (q.burst + 2);
                if let Decision::Denied { retry_at } = q.check(&mut s, SimTime::from_nanos(now), cost) {
                    if cost > q.burst {
                        prop_assert_eq!(retry_at, SimTime::MAX);
                        continue;
                    }
                    prop_assert!(retry_at.as_nanos() > now);
                    let mut probe = s;
                    let early = q.check(&mut probe, SimTime::from_nanos(retry_at.as_nanos() - 1), cost);
                    prop_assert!(!early.is_allowed(), "1ns before retry_at was allowed");
                    let mut probe = s;
                    prop_assert_eq!(q.check(&mut probe, retry_at, cost), Decision::Allowed);
                }
            }
        }

        /// Evictions (explicit ones at random points, and automatic sweeps at a tiny
        /// threshold) never change a decision compared with a limiter that never evicts.
        #[test]
        fn evictions_never_change_decisions(
            quotas in prop::collection::vec(arb_quota(), 4),
            traffic in prop::collection::vec((0usize..4, 0u8..4, any::<u64>(), 0u32..=21, any::<bool>()), 1..200),
        ) {
            let mut evicting = KeyedLimiter::with_sweep_threshold(1);
            let mut keeping = KeyedLimiter::with_sweep_threshold(usize::MAX);
            let mut now = 0u64;
            for (key, kind, raw, cost, evict) in traffic {
                let q = &quotas[key];
                now += gap(q, (kind, raw));
                let cost = cost % (q.burst + 2);
                let at = SimTime::from_nanos(now);
                if evict {
                    evicting.evict_idle(at);
                }
                prop_assert_eq!(evicting.check(&key, q, at, cost), keeping.check(&key, q, at, cost));
                prop_assert!(evicting.len() <= keeping.len());
            }
        }

        /// A tier change carries the debt over in requests: after `k` unit admissions at one
        /// instant, exactly `burst_new - min(k, burst_new)` more pass at that instant.
        #[test]
        fn tier_change_carries_debt_in_requests(old in arb_quota(), new in arb_quota(), k in 0u32..=20, now in 0u64..1 << 50) {
            let k = k.min(old.burst);
            let now = SimTime::from_nanos(now);
            let mut s = GcraState::default();
            prop_assert_eq!(drain_at(&old, &mut s, now, k), k);
            s.change_quota(&old, &new, now);
            prop_assert_eq!(drain_at(&new, &mut s, now, new.burst + 5), new.burst - k.min(new.burst));
        }

        /// After a tier change at time c, no instant from c on admits more than the new burst,
        /// and every window starting at or after c obeys the new quota's window bound.
        #[test]
        fn tier_change_never_admits_more_than_new_burst(
            old in arb_quota(),
            new in arb_quota(),
            before in prop::collection::vec((0u8..4, any::<u64>(), 0u32..=21), 0..60),
            after in prop::collection::vec((0u8..4, any::<u64>(), 0u32..=21), 1..60),
            change_gap in (0u8..4, any::<u64>()),
        ) {
            let mut limiter = KeyedLimiter::with_sweep_threshold(1);
            let key = 7u8;
            let mut now = 0u64;
            for (kind, raw, cost) in before {
                now += gap(&old, (kind, raw));
                limiter.check(&key, &old, SimTime::from_nanos(now), cost % (old.burst + 2));
            }
            now += gap(&old, change_gap);
            limiter.change_quota(&key, &old, &new, SimTime::from_nanos(now));
            let mut log: Vec<(u64, u32)> = Vec::new();
            // Hammer at the change instant first, then random traffic.
            let hammer = std::iter::repeat_n((0u8, 0u64, 1u32), new.burst as usize + 3);
            for (kind, raw, cost) in hammer.chain(after) {
                now += gap(&new, (kind, raw));
                let cost = cost % (new.burst + 2);
                if limiter.check(&key, &new, SimTime::from_nanos(now), cost).is_allowed() {
                    log.push((now, cost));
                }
            }
            for i in 0..log.len() {
                let mut total = 0u64;
                for j in i..log.len() {
                    total += u64::from(log[j].1);
                    let w = log[j].0 - log[i].0;
                    prop_assert!(total <= u64::from(new.burst) + w / new.emission_interval);
                }
            }
        }
    }
}
