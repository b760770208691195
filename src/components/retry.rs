//! Client retry policy: how many attempts, how long to wait before the next one, and a retry
//! budget that bounds the extra load retries may add.
//!
//! Backoff kinds, after the k-th failed attempt:
//! - `none`: retry at once (the classic retry-storm client);
//! - `exponential`: wait `min(cap, base·2^(k-1))`;
//! - `exponential_full_jitter`: wait a uniform draw in `[0, min(cap, base·2^(k-1))]` (AWS
//!   "full jitter");
//! - `decorrelated_jitter`: wait `min(cap, uniform(base, 3·previous))`, where `previous` is
//!   the previous wait of the same request, starting at `base` (AWS "decorrelated jitter").
//!   It needs per-request memory, kept in a [`RetryState`].
//!
//! A server hint (`retry_at` from a 429 or 503) is honoured: the next attempt is never earlier
//! than the hint. Jitter is drawn with integer arithmetic from a caller-supplied random word
//! (through [`uniform_inclusive`]), so a seed gives the same schedule on every platform.
//!
//! A [`RetryBudget`], kept by the caller per (client, dependency), caps retries as a fraction
//! of first attempts, in the manner of Finagle's `RetryBudget` and the AWS SDK's standard
//! retry quota: every first attempt deposits `ratio` tokens, every retry withdraws one token
//! and is refused when less than one is left, and the balance starts at `reserve` tokens so a
//! quiet client can still retry. Over any sequence, attempts `<= (1 + ratio)·requests +
//! reserve`, so a dependency that fails everything sees at most `ratio` extra load rather than
//! `max_attempts` times its load. Tokens are counted in integer milli-tokens, so the bound is
//! exact.
//!
//! A production client keeps one `RetryState` per in-flight request and one `RetryBudget` per
//! dependency, and asks [`RetryPolicy::next_attempt_with_budget`] after each failure.
//!
//! ```
//! use std::time::Instant;
//! use tenantsim::components::retry::{
//!     Backoff, BudgetConfig, RetryBudget, RetryDecision, RetryPolicy, RetryState,
//! };
//! use tenantsim::time::{SimDuration, SimTime};
//!
//! let policy = RetryPolicy {
//!     max_attempts: 3,
//!     backoff: Backoff::ExponentialFullJitter,
//!     base: SimDuration::from_millis(100),
//!     cap: SimDuration::from_secs(5),
//! };
//! // The caller's wall clock, as in a production service: the component only ever sees
//! // `now` (the simulator passes simulated time, never this clock).
//! let start = Instant::now();
//! let now = SimTime::from_nanos(start.elapsed().as_nanos() as u64);
//! let random_word = 0x1234_5678_9abc_def0_u64; // from your RNG
//! let next = policy.next_attempt_at(1, now, None, random_word).expect("two attempts left");
//! assert!(next <= now + SimDuration::from_millis(100));
//! assert_eq!(policy.next_attempt_at(3, now, None, random_word), None); // out of attempts
//!
//! // Decorrelated jitter with a per-request state and a per-dependency budget.
//! let policy = RetryPolicy { backoff: Backoff::DecorrelatedJitter, ..policy };
//! let mut budget = RetryBudget::new(BudgetConfig { ratio: 0.1, reserve: 10, max_balance: None })
//!     .expect("valid budget");
//! budget.on_first_attempt();
//! let mut request = RetryState::new();
//! let now = SimTime::from_nanos(start.elapsed().as_nanos() as u64);
//! match policy.next_attempt_with_budget(&mut request, &mut budget, now, None, random_word) {
//!     RetryDecision::RetryAt(at) => {
//!         assert!(at >= now + SimDuration::from_millis(100)); // at least `base`
//!         assert!(at <= now + SimDuration::from_millis(300)); // at most 3·base the first time
//!     }
//!     other => panic!("a fresh budget has reserve tokens, got {other:?}"),
//! }
//! ```

use std::fmt;

use super::draw::uniform_inclusive;
use crate::time::{SimDuration, SimTime};

/// How the wait before the next attempt grows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backoff {
    /// Retry immediately (the classic retry-storm client).
    None,
    /// Wait `min(cap, base·2^(k-1))` after the k-th failed attempt.
    Exponential,
    /// Wait a uniform draw in `[0, min(cap, base·2^(k-1))]`.
    ExponentialFullJitter,
    /// Wait `min(cap, uniform(base, 3·previous))`, `previous` being this request's previous
    /// wait (initially `base`); exactly `cap` when `base >= cap`. Use
    /// [`RetryPolicy::next_attempt`] with a [`RetryState`] to remember `previous`.
    DecorrelatedJitter,
}

/// A client's retry policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, including the first (1 = never retry).
    pub max_attempts: u32,
    /// Backoff kind.
    pub backoff: Backoff,
    /// Base wait.
    pub base: SimDuration,
    /// Largest wait the backoff may produce (a server hint may ask for longer).
    pub cap: SimDuration,
}

/// The retry memory of one request: how many attempts it has made or scheduled and the last
/// backoff wait (the server hint is not part of it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryState {
    attempts: u32,
    last_delay: Option<SimDuration>,
}

impl RetryState {
    /// The state of a request whose first attempt is being made.
    pub fn new() -> RetryState {
        RetryState {
            attempts: 1,
            last_delay: None,
        }
    }

    /// The state read back from a persisted [`attempts`](Self::attempts) and
    /// [`last_delay`](Self::last_delay), for a caller that stores its retry memory (a
    /// workflow record) and continues it after a restart. `attempts` below 1 is taken as 1.
    pub fn resume(attempts: u32, last_delay: Option<SimDuration>) -> RetryState {
        RetryState {
            attempts: attempts.max(1),
            last_delay,
        }
    }

    /// Attempts made or scheduled so far, including the first.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The backoff wait chosen before the latest scheduled retry, if any.
    pub fn last_delay(&self) -> Option<SimDuration> {
        self.last_delay
    }
}

impl Default for RetryState {
    fn default() -> Self {
        RetryState::new()
    }
}

/// What to do after a failed attempt, when a retry budget is involved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryDecision {
    /// Make the next attempt at this time; a budget token has been spent.
    RetryAt(SimTime),
    /// The policy allows no more attempts.
    OutOfAttempts,
    /// The policy would retry but the budget refused: fail the request now.
    OutOfBudget,
}

impl RetryPolicy {
    /// Never retry.
    pub const NEVER: RetryPolicy = RetryPolicy {
        max_attempts: 1,
        backoff: Backoff::None,
        base: SimDuration::ZERO,
        cap: SimDuration::ZERO,
    };

    /// The backoff ceiling after `failed_attempts` failures: `min(cap, base·2^(failed-1))`.
    pub fn ceiling(&self, failed_attempts: u32) -> SimDuration {
        let shift = failed_attempts.saturating_sub(1).min(63);
        let grown = self.base.as_nanos().saturating_mul(1u64 << shift);
        SimDuration::from_nanos(grown.min(self.cap.as_nanos()))
    }

    /// The backoff wait after the `failed_attempts`-th failure. `previous` is only used by
    /// decorrelated jitter.
    fn backoff_delay(
        &self,
        failed_attempts: u32,
        previous: SimDuration,
        random: u64,
    ) -> SimDuration {
        match self.backoff {
            Backoff::None => SimDuration::ZERO,
            Backoff::Exponential => self.ceiling(failed_attempts),
            Backoff::ExponentialFullJitter => {
                let ceiling = self.ceiling(failed_attempts).as_nanos();
                SimDuration::from_nanos(uniform_inclusive(random, ceiling))
            }
            Backoff::DecorrelatedJitter => {
                let (base, cap) = (self.base.as_nanos(), self.cap.as_nanos());
                // The draw is at least `base`, so when base >= cap the `min` makes it exactly
                // `cap`. The `max` matters only then: `previous` (a capped earlier wait, or the
                // stateless ceiling) may be below `base`.
                let high = previous.as_nanos().saturating_mul(3).max(base);
                let drawn = base + uniform_inclusive(random, high - base);
                SimDuration::from_nanos(drawn.min(cap))
            }
        }
    }

    /// When to make the next attempt after attempt number `attempt` (1-based) failed at `now`,
    /// or `None` if the policy allows no more attempts. `retry_at` is the server's hint, if
    /// any; `random` is a uniformly random word, used only by jittered backoff.
    ///
    /// This stateless form cannot know the previous wait of decorrelated jitter; it takes
    /// `previous = ceiling(attempt)` (so the first retry is exactly as in the stateful
    /// form, later ones draw from the exponential envelope). Prefer
    /// [`next_attempt`](Self::next_attempt) for decorrelated jitter.
    pub fn next_attempt_at(
        &self,
        attempt: u32,
        now: SimTime,
        retry_at: Option<SimTime>,
        random: u64,
    ) -> Option<SimTime> {
        if attempt >= self.max_attempts {
            return None;
        }
        let wait = self.backoff_delay(attempt, self.ceiling(attempt), random);
        Some(honour_hint(now + wait, retry_at))
    }

    /// When to make the next attempt of the request whose latest attempt failed at `now`, or
    /// `None` (and `state` unchanged) if the policy allows no more attempts. On `Some`, the
    /// retry is counted in `state` and its backoff wait remembered. `retry_at` and `random`
    /// are as in [`next_attempt_at`](Self::next_attempt_at), whose result this equals for
    /// every kind but decorrelated jitter.
    pub fn next_attempt(
        &self,
        state: &mut RetryState,
        now: SimTime,
        retry_at: Option<SimTime>,
        random: u64,
    ) -> Option<SimTime> {
        if state.attempts >= self.max_attempts {
            return None;
        }
        let previous = state.last_delay.unwrap_or(self.base);
        let wait = self.backoff_delay(state.attempts, previous, random);
        state.attempts += 1;
        state.last_delay = Some(wait);
        Some(honour_hint(now + wait, retry_at))
    }

    /// [`next_attempt`](Self::next_attempt) gated by a retry budget: the policy is asked
    /// first (so no token is spent on a retry the policy would not make), then the budget.
    /// A refusal leaves `state` unchanged.
    pub fn next_attempt_with_budget(
        &self,
        state: &mut RetryState,
        budget: &mut RetryBudget,
        now: SimTime,
        retry_at: Option<SimTime>,
        random: u64,
    ) -> RetryDecision {
        if state.attempts >= self.max_attempts {
            return RetryDecision::OutOfAttempts;
        }
        if !budget.try_withdraw() {
            return RetryDecision::OutOfBudget;
        }
        match self.next_attempt(state, now, retry_at, random) {
            Some(at) => RetryDecision::RetryAt(at),
            None => RetryDecision::OutOfAttempts,
        }
    }
}

fn honour_hint(at: SimTime, retry_at: Option<SimTime>) -> SimTime {
    match retry_at {
        Some(hint) if hint > at => hint,
        _ => at,
    }
}

/// Milli-tokens per token: the budget counts in thousandths so that a ratio such as 0.1 is
/// exact.
const MILLIS_PER_TOKEN: u64 = 1_000;

/// The largest accepted ratio (a thousand retries per first attempt is no budget at all).
const MAX_RATIO: f64 = 1_000.0;

/// Configuration of a [`RetryBudget`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BudgetConfig {
    /// Tokens deposited per first attempt: retries may add at most this fraction of the load
    /// (0.1 = 10 %). In `[0, 1000]`, in steps of 0.001.
    pub ratio: f64,
    /// Starting balance in tokens, so that a client with little traffic can still retry.
    pub reserve: u32,
    /// Largest balance in tokens (deposits beyond it are lost), at least `reserve`. `None`
    /// means `reserve`: a long quiet period never banks more retries than a fresh client has.
    pub max_balance: Option<u32>,
}

/// Why a budget configuration is invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BudgetError {
    /// The ratio is not a finite number in `[0, 1000]` with at most three decimals.
    Ratio,
    /// `max_balance` is below `reserve`.
    MaxBelowReserve,
}

impl fmt::Display for BudgetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BudgetError::Ratio => write!(
                f,
                "a retry budget's ratio must be a number from 0 to 1000 in steps of 0.001, as \
                 in 0.1 (retries add at most 10% load)"
            ),
            BudgetError::MaxBelowReserve => write!(
                f,
                "a retry budget's max_balance must be at least its reserve (the starting balance)"
            ),
        }
    }
}

impl std::error::Error for BudgetError {}

/// A token bucket that caps retries as a fraction of first attempts, kept per (client,
/// dependency). Invariant: after `r` calls to [`on_first_attempt`](Self::on_first_attempt),
/// [`try_withdraw`](Self::try_withdraw) has succeeded at most `ratio·r + reserve` times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryBudget {
    deposit_millis: u64,
    balance_millis: u64,
    max_balance_millis: u64,
}

impl RetryBudget {
    /// A budget holding `reserve` tokens.
    pub fn new(config: BudgetConfig) -> Result<RetryBudget, BudgetError> {
        let ratio = config.ratio;
        if !(ratio.is_finite() && (0.0..=MAX_RATIO).contains(&ratio)) {
            return Err(BudgetError::Ratio);
        }
        let scaled = ratio * MILLIS_PER_TOKEN as f64;
        let deposit = scaled.round();
        // A ratio such as 0.1 is not exact in binary; accept float noise, reject real
        // fractions of a milli-token, which the integer budget could not honour.
        if (scaled - deposit).abs() > 1e-6 {
            return Err(BudgetError::Ratio);
        }
        let max_balance = config.max_balance.unwrap_or(config.reserve);
        if max_balance < config.reserve {
            return Err(BudgetError::MaxBelowReserve);
        }
        Ok(RetryBudget {
            deposit_millis: deposit as u64,
            balance_millis: u64::from(config.reserve) * MILLIS_PER_TOKEN,
            max_balance_millis: u64::from(max_balance) * MILLIS_PER_TOKEN,
        })
    }

    /// Records a first attempt (not a retry): deposits `ratio` tokens, up to the cap.
    pub fn on_first_attempt(&mut self) {
        self.balance_millis = self
            .balance_millis
            .saturating_add(self.deposit_millis)
            .min(self.max_balance_millis);
    }

    /// Withdraws one token for a retry; `false` (and nothing withdrawn) if less than one token
    /// is left, in which case the retry must not be made.
    pub fn try_withdraw(&mut self) -> bool {
        if self.balance_millis < MILLIS_PER_TOKEN {
            return false;
        }
        self.balance_millis -= MILLIS_PER_TOKEN;
        true
    }

    /// The balance in milli-tokens (1,000 = one retry).
    pub fn balance_millis(&self) -> u64 {
        self.balance_millis
    }

    /// The balance in tokens, for display and statistics only.
    pub fn balance(&self) -> f64 {
        self.balance_millis as f64 / MILLIS_PER_TOKEN as f64
    }

    /// Milli-tokens deposited per first attempt (`ratio·1000`, exact).
    pub fn deposit_millis(&self) -> u64 {
        self.deposit_millis
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn policy(backoff: Backoff) -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            backoff,
            base: SimDuration::from_millis(100),
            cap: SimDuration::from_millis(250),
        }
    }

    fn budget(ratio: f64, reserve: u32, max_balance: Option<u32>) -> RetryBudget {
        RetryBudget::new(BudgetConfig {
            ratio,
            reserve,
            max_balance,
        })
        .unwrap()
    }

    #[test]
    fn ceiling_doubles_until_cap() {
        let p = policy(Backoff::Exponential);
        assert_eq!(p.ceiling(1), SimDuration::from_millis(100));
        assert_eq!(p.ceiling(2), SimDuration::from_millis(200));
        assert_eq!(p.ceiling(3), SimDuration::from_millis(250));
        assert_eq!(p.ceiling(200), SimDuration::from_millis(250));
    }

    #[test]
    fn hint_wins_when_later() {
        let p = policy(Backoff::None);
        let hint = SimTime::from_nanos(5_000);
        assert_eq!(
            p.next_attempt_at(1, SimTime::ZERO, Some(hint), 0),
            Some(hint)
        );
    }

    #[test]
    fn jitter_spans_zero_to_ceiling() {
        let p = policy(Backoff::ExponentialFullJitter);
        assert_eq!(
            p.next_attempt_at(1, SimTime::ZERO, None, 0),
            Some(SimTime::ZERO)
        );
        assert_eq!(
            p.next_attempt_at(1, SimTime::ZERO, None, u64::MAX),
            Some(SimTime::ZERO + SimDuration::from_millis(100))
        );
    }

    #[test]
    fn decorrelated_jitter_spans_base_to_three_previous() {
        let p = RetryPolicy {
            cap: SimDuration::from_secs(10),
            ..policy(Backoff::DecorrelatedJitter)
        };
        let mut low = RetryState::new();
        assert_eq!(
            p.next_attempt(&mut low, SimTime::ZERO, None, 0),
            Some(SimTime::ZERO + SimDuration::from_millis(100))
        );
        let mut high = RetryState::new();
        let mut expected = 100;
        for _ in 1..4 {
            expected *= 3;
            assert_eq!(
                p.next_attempt(&mut high, SimTime::ZERO, None, u64::MAX),
                Some(SimTime::ZERO + SimDuration::from_millis(expected))
            );
        }
        assert_eq!(high.attempts(), 4);
        assert_eq!(high.last_delay(), Some(SimDuration::from_millis(2_700)));
        assert_eq!(p.next_attempt(&mut high, SimTime::ZERO, None, 0), None);
        assert_eq!(high.attempts(), 4);
    }

    #[test]
    fn decorrelated_jitter_is_cap_when_base_reaches_cap() {
        let p = RetryPolicy {
            base: SimDuration::from_secs(1),
            cap: SimDuration::from_millis(300),
            ..policy(Backoff::DecorrelatedJitter)
        };
        for word in [0, 12_345, u64::MAX] {
            let at = p.next_attempt_at(2, SimTime::ZERO, None, word);
            assert_eq!(at, Some(SimTime::ZERO + SimDuration::from_millis(300)));
        }
    }

    #[test]
    fn budget_allows_reserve_then_ratio() {
        let mut b = budget(0.1, 10, None);
        assert_eq!(b.deposit_millis(), 100);
        assert!((0..10).all(|_| b.try_withdraw()));
        assert!(!b.try_withdraw());
        assert_eq!(b.balance_millis(), 0);
        for _ in 0..9 {
            b.on_first_attempt();
        }
        assert!(!b.try_withdraw(), "0.9 tokens are not a retry");
        b.on_first_attempt();
        assert!(b.try_withdraw());
        // The default cap is the reserve: quiet periods do not bank more than a fresh client.
        for _ in 0..1_000 {
            b.on_first_attempt();
        }
        assert_eq!(b.balance(), 10.0);
    }

    #[test]
    fn budget_configuration_is_validated() {
        let config = |ratio, reserve, max_balance| {
            RetryBudget::new(BudgetConfig {
                ratio,
                reserve,
                max_balance,
            })
        };
        assert_eq!(config(-0.1, 10, None), Err(BudgetError::Ratio));
        assert_eq!(config(f64::NAN, 10, None), Err(BudgetError::Ratio));
        assert_eq!(config(1_000.5, 10, None), Err(BudgetError::Ratio));
        assert_eq!(config(0.0001, 10, None), Err(BudgetError::Ratio));
        assert_eq!(config(0.1, 10, Some(9)), Err(BudgetError::MaxBelowReserve));
        assert!(config(0.3, 0, Some(0)).is_ok());
        assert_eq!(config(0.007, 1, None).map(|b| b.deposit_millis()), Ok(7));
        assert!(BudgetError::Ratio.to_string().contains("0.001"));
    }

    #[test]
    fn budget_refusal_leaves_request_state_alone() {
        let p = policy(Backoff::Exponential);
        let mut b = budget(0.0, 1, None);
        let mut s = RetryState::new();
        let now = SimTime::ZERO;
        assert_eq!(
            p.next_attempt_with_budget(&mut s, &mut b, now, None, 0),
            RetryDecision::RetryAt(now + SimDuration::from_millis(100))
        );
        let before = s;
        assert_eq!(
            p.next_attempt_with_budget(&mut s, &mut b, now, None, 0),
            RetryDecision::OutOfBudget
        );
        assert_eq!(s, before);
        let mut full = budget(0.0, 100, None);
        let mut exhausted = RetryState::new();
        for _ in 1..4 {
            assert!(matches!(
                p.next_attempt_with_budget(&mut exhausted, &mut full, now, None, 0),
                RetryDecision::RetryAt(_)
            ));
        }
        assert_eq!(
            p.next_attempt_with_budget(&mut exhausted, &mut full, now, None, 0),
            RetryDecision::OutOfAttempts
        );
        assert_eq!(
            full.balance_millis(),
            97_000,
            "no token spent on a refused retry"
        );
    }

    fn arb_backoff() -> impl Strategy<Value = Backoff> {
        prop_oneof![
            Just(Backoff::None),
            Just(Backoff::Exponential),
            Just(Backoff::ExponentialFullJitter),
            Just(Backoff::DecorrelatedJitter),
        ]
    }

    /// Base and cap from 0 to 10s, either order, plus 1 to 12 attempts.
    fn arb_policy(backoff: impl Strategy<Value = Backoff>) -> impl Strategy<Value = RetryPolicy> {
        (
            1u32..=12,
            backoff,
            0u64..=10_000_000_000,
            0u64..=10_000_000_000,
        )
            .prop_map(|(max_attempts, backoff, base, cap)| RetryPolicy {
                max_attempts,
                backoff,
                base: SimDuration::from_nanos(base),
                cap: SimDuration::from_nanos(cap),
            })
    }

    /// A hint relative to `now`: none, earlier, or later (by up to 20s).
    fn arb_hint() -> impl Strategy<Value = Option<i64>> {
        prop::option::of(-20_000_000_000i64..=20_000_000_000)
    }

    fn hint_at(now: SimTime, offset: Option<i64>) -> Option<SimTime> {
        offset.map(|o| {
            if o < 0 {
                now.saturating_sub(SimDuration::from_nanos(o.unsigned_abs()))
            } else {
                now + SimDuration::from_nanos(o as u64)
            }
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Exponential and full jitter: the next attempt is never before the hint and, when
        /// the hint is earlier (or absent), lies in [now, now + min(cap, base·2^(k-1))]
        /// (exactly the ceiling for plain exponential), in both the stateless and the stateful
        /// form, which agree.
        #[test]
        fn exponential_respects_hint_and_ceiling(
            p in arb_policy(prop_oneof![Just(Backoff::Exponential), Just(Backoff::ExponentialFullJitter)]),
            now in 0u64..1 << 60,
            hints in prop::collection::vec(arb_hint(), 12),
            words in prop::collection::vec(any::<u64>(), 12),
        ) {
            let now = SimTime::from_nanos(now);
            let mut state = RetryState::new();
            for k in 1..p.max_attempts {
                let hint = hint_at(now, hints[k as usize]);
                let word = words[k as usize];
                let at = p.next_attempt_at(k, now, hint, word).expect("attempts left");
                prop_assert_eq!(p.next_attempt(&mut state, now, hint, word), Some(at));
                if let Some(hint) = hint {
                    prop_assert!(at >= hint);
                }
                let ceiling = now + p.ceiling(k);
                if hint.is_none_or(|h| h <= ceiling) {
                    prop_assert!(at >= now && at <= ceiling, "attempt {} at {:?}, ceiling {:?}", k, at, ceiling);
                    if p.backoff == Backoff::Exponential {
                        prop_assert_eq!(at, ceiling);
                    }
                } else {
                    prop_assert_eq!(Some(at), hint);
                }
            }
        }

        /// Decorrelated jitter: each wait lies in [base, min(cap, 3·previous)] with previous
        /// starting at base, or is exactly cap when base >= cap; and the attempt is the later
        /// of now + wait and the hint.
        #[test]
        fn decorrelated_jitter_stays_in_range(
            p in arb_policy(Just(Backoff::DecorrelatedJitter)),
            now in 0u64..1 << 60,
            hints in prop::collection::vec(arb_hint(), 12),
            words in prop::collection::vec(any::<u64>(), 12),
        ) {
            let now = SimTime::from_nanos(now);
            let mut state = RetryState::new();
            let mut previous = p.base;
            for k in 1..p.max_attempts {
                let hint = hint_at(now, hints[k as usize]);
                let at = p.next_attempt(&mut state, now, hint, words[k as usize]).expect("attempts left");
                let wait = state.last_delay().expect("a retry was scheduled");
                if p.base >= p.cap {
                    prop_assert_eq!(wait, p.cap);
                } else {
                    let high = p.cap.min(SimDuration::from_nanos(previous.as_nanos().saturating_mul(3)));
                    prop_assert!(wait >= p.base && wait <= high, "wait {:?} outside [{:?}, {:?}]", wait, p.base, high);
                }
                let expected = match hint {
                    Some(h) if h > now + wait => h,
                    _ => now + wait,
                };
                prop_assert_eq!(at, expected);
                previous = wait;
            }
        }

        /// Attempts never exceed max_attempts: the stateful form schedules exactly
        /// max_attempts - 1 retries, then refuses without changing the state; the stateless
        /// form refuses from attempt max_attempts on.
        #[test]
        fn attempts_never_exceed_max(
            p in arb_policy(arb_backoff()),
            extra in 0u32..5,
            words in prop::collection::vec(any::<u64>(), 20),
        ) {
            let mut state = RetryState::new();
            let mut retries = 0;
            for &word in &words {
                let before = state;
                match p.next_attempt(&mut state, SimTime::ZERO, None, word) {
                    Some(_) => retries += 1,
                    None => prop_assert_eq!(state, before),
                }
                prop_assert!(state.attempts() <= p.max_attempts);
            }
            prop_assert_eq!(retries, p.max_attempts - 1);
            prop_assert_eq!(state.attempts(), p.max_attempts);
            for k in 1..p.max_attempts + extra {
                let allowed = p.next_attempt_at(k, SimTime::ZERO, None, words[0]).is_some();
                prop_assert_eq!(allowed, k < p.max_attempts);
            }
        }

        /// Under a budget, total attempts <= (1 + ratio)·requests + reserve for any sequence of
        /// requests and failures (in exact milli-token arithmetic), and the balance never
        /// exceeds its cap.
        #[test]
        fn budget_bounds_total_attempts(
            p in arb_policy(arb_backoff()),
            ratio_millis in 0u64..=2_000,
            reserve in 0u32..20,
            headroom in prop::option::of(0u32..50),
            failures in prop::collection::vec(0u32..15, 1..300),
        ) {
            let max_balance = headroom.map(|h| reserve + h);
            let mut b = RetryBudget::new(BudgetConfig {
                ratio: ratio_millis as f64 / 1_000.0,
                reserve,
                max_balance,
            }).unwrap();
            prop_assert_eq!(b.deposit_millis(), ratio_millis);
            let cap_millis = u64::from(max_balance.unwrap_or(reserve)) * 1_000;
            let requests = failures.len() as u64;
            let mut attempts = 0u64;
            for (i, &fails) in failures.iter().enumerate() {
                b.on_first_attempt();
                attempts += 1;
                let mut state = RetryState::new();
                let mut failed = 0;
                while failed < fails {
                    failed += 1;
                    match p.next_attempt_with_budget(&mut state, &mut b, SimTime::ZERO, None, i as u64) {
                        RetryDecision::RetryAt(_) => attempts += 1,
                        RetryDecision::OutOfAttempts | RetryDecision::OutOfBudget => break,
                    }
                }
                prop_assert!(b.balance_millis() <= cap_millis);
            }
            prop_assert!(
                attempts * 1_000 <= (1_000 + ratio_millis) * requests + u64::from(reserve) * 1_000,
                "{} attempts for {} requests at ratio {} reserve {}", attempts, requests, ratio_millis, reserve
            );
        }

        /// The same random words give the same schedule (no hidden randomness or state), for
        /// every backoff kind, in both forms.
        #[test]
        fn same_words_same_schedule(
            p in arb_policy(arb_backoff()),
            now in 0u64..1 << 60,
            words in prop::collection::vec(any::<u64>(), 12),
        ) {
            let schedule = || {
                let mut state = RetryState::new();
                let now = SimTime::from_nanos(now);
                words
                    .iter()
                    .enumerate()
                    .map(|(k, &w)| {
                        (
                            p.next_attempt(&mut state, now, None, w),
                            p.next_attempt_at(k as u32 + 1, now, None, w),
                        )
                    })
                    .collect::<Vec<_>>()
            };
            prop_assert_eq!(schedule(), schedule());
        }
    }
}
