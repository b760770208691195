//! Client retry policy: how many attempts, and how long to wait before the next one.
//!
//! Backoff kinds: `none` (retry at once), `exponential` (wait `min(cap, base·2^(k-1))` after
//! the k-th failure) and `exponential_full_jitter` (wait a uniform draw in
//! `[0, min(cap, base·2^(k-1))]`, the AWS "full jitter" strategy). A server hint (`retry_at`
//! from a 429 or 503) is honoured: the next attempt is never earlier than the hint. Jitter is
//! drawn with integer arithmetic from a caller-supplied random word, so a seed gives the same
//! schedule on every platform.
//!
//! ```
//! use std::time::Instant;
//! use tenantsim::components::retry::{Backoff, RetryPolicy};
//! use tenantsim::time::{SimDuration, SimTime};
//!
//! let policy = RetryPolicy {
//!     max_attempts: 3,
//!     backoff: Backoff::ExponentialFullJitter,
//!     base: SimDuration::from_millis(100),
//!     cap: SimDuration::from_secs(5),
//! };
//! let start = Instant::now();
//! let now = SimTime::from_nanos(start.elapsed().as_nanos() as u64);
//! let random_word = 0x1234_5678_9abc_def0_u64; // from your RNG
//! let next = policy.next_attempt_at(1, now, None, random_word).expect("two attempts left");
//! assert!(next <= now + SimDuration::from_millis(100));
//! assert_eq!(policy.next_attempt_at(3, now, None, random_word), None); // out of attempts
//! ```

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

    /// When to make the next attempt after attempt number `attempt` (1-based) failed at `now`,
    /// or `None` if the policy allows no more attempts. `retry_at` is the server's hint, if
    /// any; `random` is a uniformly random word, used only by jittered backoff.
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
        let wait = match self.backoff {
            Backoff::None => SimDuration::ZERO,
            Backoff::Exponential => self.ceiling(attempt),
            Backoff::ExponentialFullJitter => {
                let ceiling = self.ceiling(attempt).as_nanos();
                SimDuration::from_nanos(uniform_inclusive(random, ceiling))
            }
        };
        let at = now + wait;
        Some(match retry_at {
            Some(hint) if hint > at => hint,
            _ => at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(backoff: Backoff) -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            backoff,
            base: SimDuration::from_millis(100),
            cap: SimDuration::from_millis(250),
        }
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
}
