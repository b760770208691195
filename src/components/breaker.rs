//! Circuit breakers: stop calling a dependency that keeps failing, probe it after a pause, and
//! resume when it recovers; keyed per (tenant, dependency) so one tenant's broken dependency
//! does not cut off everyone else.
//!
//! **One breaker** ([`Breaker`], driven by a validated [`BreakerPolicy`]) is a state machine:
//!
//! - **Closed**: every call is admitted. Outcomes are counted, at the time they are recorded,
//!   in a sliding time window of `buckets` equal buckets of `window / buckets` nanoseconds
//!   each: at time `now` the window holds the outcomes recorded in bucket
//!   `floor(now / width)` and the `buckets - 1` before it (between `window - width` and
//!   `window` of history). Each time an outcome is recorded, the breaker trips to Open iff the
//!   window then holds at least `min_calls` outcomes and
//!   `failures / calls >= failure_rate_threshold` (compared in integers, the threshold rounded
//!   to the nearest millionth).
//! - **Open** for `open_for` from the moment it tripped: every call is rejected with
//!   `retry_at` = the end of the pause.
//! - **HalfOpen** from then on: at most `half_open_probes` probe calls are outstanding at once
//!   (further calls are rejected with `retry_at` = the oldest probe's deadline).
//!   `successes_to_close` probe successes close it (with an empty window); any probe failure
//!   re-opens it for another `open_for`. A probe still outstanding `probe_timeout` after it was
//!   admitted has failed, at that deadline: a lost probe result can never keep a breaker
//!   half-open, and a half-open breaker never rejects a call because of a probe older than
//!   `probe_timeout`.
//!
//! Every admitted call gets a [`Ticket`] naming the breaker period (a counter that moves at
//! every state change) and, for a probe, the probe. An outcome counts only in the period its
//! call was admitted in: the late result of a call admitted before the breaker tripped, or of a
//! probe that already timed out, is [`RecordEffect::Stale`] and changes nothing. A ticket is
//! consumed by [`BreakerPolicy::record`] (it is neither `Clone` nor `Copy`), so one call cannot
//! be recorded twice. Time never runs backwards for a breaker: a `now` earlier than one already
//! seen is taken as the latest seen.
//!
//! **A keyed set** ([`BreakerSet`]) holds one breaker per key under a [`KeyPolicy`]:
//! [`KeyPolicy::TenantAndDependency`] isolates tenants (tenant A's disabled KMS key opens only
//! A's breaker for KMS), [`KeyPolicy::DependencyOnly`] shares one breaker per dependency (the
//! failing twin: one tenant's errors open the breaker for everyone). Breakers live in a
//! [`KeyMap`] (hashing with a fixed seed, insertion-ordered); [`BreakerSet::prune`] drops closed
//! breakers whose window is empty, which are indistinguishable from fresh ones except that a
//! late outcome of a call admitted before the drop is then stale.
//!
//! **Caller-owned state**: a caller that already keeps a record per tenant can hold the
//! [`Breaker`]s there and drive them with one [`BreakerPolicy`], skipping the set's lookups
//! (the simulator does this: with 100,000 tenants the map cost two cache misses per call).
//! [`Breaker::warm`] lets such a caller read a breaker early, when it knows a call will come.
//!
//! A production service keeps one set per outbound client and wraps each call:
//!
//! ```
//! use std::time::Instant;
//! use tenantsim::components::breaker::{BreakerConfig, BreakerPolicy, BreakerSet, KeyPolicy, Outcome};
//! use tenantsim::time::{SimDuration, SimTime};
//!
//! let policy = BreakerPolicy::new(BreakerConfig {
//!     failure_rate_threshold: 0.5,
//!     window: SimDuration::from_secs(10),
//!     buckets: 10,
//!     min_calls: 4,
//!     open_for: SimDuration::from_secs(5),
//!     half_open_probes: 1,
//!     successes_to_close: 2,
//!     probe_timeout: SimDuration::from_secs(2),
//! })
//! .expect("valid breaker configuration");
//! let mut breakers = BreakerSet::new(policy, KeyPolicy::TenantAndDependency);
//! // The caller's wall clock, as in a production service: the component only ever sees
//! // `now` (the simulator passes simulated time, never this clock).
//! let start = Instant::now();
//! let clock = || SimTime::from_nanos(start.elapsed().as_nanos() as u64);
//!
//! for _ in 0..4 {
//!     // Tenant "a" calls KMS with a disabled key: every call fails.
//!     if let Ok(token) = breakers.try_call(clock(), &"a", &"kms") {
//!         breakers.record(clock(), token, Outcome::Failure);
//!     }
//! }
//! let rejected = breakers
//!     .try_call(clock(), &"a", &"kms")
//!     .expect_err("four failures in four calls open a's breaker");
//! assert!(rejected.retry_at > clock()); // fail fast until then
//! // Tenant "b" is not affected.
//! let token = breakers.try_call(clock(), &"b", &"kms").expect("b's breaker is closed");
//! breakers.record(clock(), token, Outcome::Success);
//! ```

use std::hash::Hash;

use smallvec::SmallVec;

use super::KeyMap;
use std::fmt;

use crate::time::{SimDuration, SimTime};

/// Parts per million: the fixed-point unit of the failure-rate threshold.
const PPM: u64 = 1_000_000;

/// Window buckets a breaker holds without a heap allocation (the default policy uses 10).
pub const INLINE_BUCKETS: usize = 10;

/// A breaker's settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BreakerConfig {
    /// Trip when `failures / calls` in the window reaches this fraction, in `(0, 1]`.
    pub failure_rate_threshold: f64,
    /// Length of the sliding window (a positive multiple of `buckets` nanoseconds).
    pub window: SimDuration,
    /// Buckets the window is split into (at least 1); more buckets slide more smoothly.
    pub buckets: u32,
    /// Outcomes needed in the window before the breaker may trip (at least 1).
    pub min_calls: u32,
    /// How long the breaker stays open (positive).
    pub open_for: SimDuration,
    /// Probe calls outstanding at once while half-open (at least 1).
    pub half_open_probes: u32,
    /// Probe successes that close the breaker (at least 1).
    pub successes_to_close: u32,
    /// A probe outstanding this long has failed (positive).
    pub probe_timeout: SimDuration,
}

/// Why a breaker configuration is invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerConfigError {
    /// The failure-rate threshold is not in `(0, 1]` (or rounds to zero millionths).
    Threshold,
    /// The window is zero, has zero buckets, or is not a multiple of the bucket count in
    /// nanoseconds.
    Window,
    /// `min_calls` is zero.
    MinCalls,
    /// `open_for` is zero.
    OpenFor,
    /// `half_open_probes` or `successes_to_close` is zero.
    Probes,
    /// `probe_timeout` is zero.
    ProbeTimeout,
}

impl fmt::Display for BreakerConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            BreakerConfigError::Threshold => {
                "failure_rate_threshold must be a fraction above 0 and at most 1"
            }
            BreakerConfigError::Window => {
                "window must be positive and split into a whole number of nanoseconds per bucket \
                 (window a multiple of buckets, buckets at least 1)"
            }
            BreakerConfigError::MinCalls => "min_calls must be at least 1",
            BreakerConfigError::OpenFor => "open_for must be positive",
            BreakerConfigError::Probes => {
                "half_open_probes and successes_to_close must be at least 1"
            }
            BreakerConfigError::ProbeTimeout => "probe_timeout must be positive",
        };
        f.write_str(text)
    }
}

impl std::error::Error for BreakerConfigError {}

/// A validated breaker configuration: drives any number of [`Breaker`]s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerPolicy {
    threshold_ppm: u64,
    bucket_width: u64,
    buckets: u32,
    min_calls: u32,
    open_for: SimDuration,
    half_open_probes: u32,
    successes_to_close: u32,
    probe_timeout: SimDuration,
}

/// What happened to a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The dependency answered well.
    Success,
    /// The dependency failed (error, timeout, refused).
    Failure,
}

/// A breaker's state as seen at some instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Admitting every call; the window currently holds `calls` outcomes, `failures` of them
    /// failures.
    Closed {
        /// Outcomes in the window.
        calls: u32,
        /// Failures in the window.
        failures: u32,
    },
    /// Rejecting every call until `until`.
    Open {
        /// When it turns half-open.
        until: SimTime,
    },
    /// Admitting up to `half_open_probes` probes at once.
    HalfOpen {
        /// Probes admitted and not yet resolved.
        outstanding_probes: u32,
        /// Probe successes so far in this half-open period.
        successes: u32,
    },
}

/// Why a call was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    /// The breaker is open.
    Open,
    /// The breaker is half-open and all probe slots are taken.
    ProbesInFlight,
}

/// A rejected call: fail fast, and do not try again before `retry_at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// When to try again: the end of the open pause, or the deadline of the oldest
    /// outstanding probe (by then the half-open period has moved on: a probe slot freed, or
    /// the breaker closed or re-opened).
    pub retry_at: SimTime,
    /// Why it was rejected.
    pub reason: RejectReason,
}

/// What recording an outcome did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordEffect {
    /// Counted (in the window, or as a probe success) without a state change.
    Counted,
    /// Counted, and the window's failure rate tripped the breaker open.
    Tripped,
    /// A probe failed: the breaker is open again.
    Reopened,
    /// A probe succeeded and closed the breaker.
    Closed,
    /// The call belongs to an earlier period (the breaker changed state since it was
    /// admitted, or the probe timed out): ignored.
    Stale,
}

/// Proof that one call was admitted, to hand back with its outcome. Neither `Clone` nor
/// `Copy`: each call is recorded at most once.
#[derive(Debug, PartialEq, Eq)]
pub struct Ticket {
    lifetime: u64,
    period: u64,
    probe: Option<u32>,
}

impl Ticket {
    /// Whether the call is a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe.is_some()
    }

    /// The breaker period the call was admitted in (it moves at every state change).
    pub fn period(&self) -> u64 {
        self.period
    }
}

/// One bucket's outcomes. Which bucket a slot holds follows from [`Breaker::newest`], so a
/// bucket is 8 bytes and the default ten fit two cache lines instead of three.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Bucket {
    calls: u32,
    failures: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Probe {
    id: u32,
    admitted_at: SimTime,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    Closed,
    Open {
        until: SimTime,
    },
    HalfOpen {
        probes: Vec<Probe>,
        successes: u32,
        next_probe: u32,
    },
}

/// One breaker's state. Create it with [`Breaker::new`] and drive it with a [`BreakerPolicy`]
/// (always the same one: a policy with another bucket count reads the window as empty and
/// starts it afresh at the next outcome).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Breaker {
    /// Distinguishes breakers a [`BreakerSet`] re-creates for the same key, so tickets of a
    /// dropped breaker are stale.
    lifetime: u64,
    period: u64,
    latest: SimTime,
    phase: Phase,
    /// Absolute number (`time / width`) of the newest bucket an outcome was counted in while
    /// `window` is filled. Slot `b % buckets` holds bucket `b` for every `b` in
    /// `newest - buckets + 1 ..= newest`: slots are cleared as `newest` moves past them.
    newest: u64,
    /// The sums of the slots' calls and failures, kept as the slots change, so that counting
    /// an outcome does not add the ring up again (it did on every recorded call). Each is
    /// capped at `u32::MAX`, which means "add the ring up": 32 bits rather than 64 keep a
    /// tenant's record within its cache lines (see the model's `TenantState`).
    calls: u32,
    failures: u32,
    /// Ring of buckets, filled on the first recorded outcome; empty when cleared. Inline up to
    /// [`INLINE_BUCKETS`], so a breaker is one record rather than a record and a heap block:
    /// one cache miss per call instead of two when tenants are many.
    window: SmallVec<[Bucket; INLINE_BUCKETS]>,
}

impl Default for Breaker {
    fn default() -> Breaker {
        Breaker::new()
    }
}

impl Breaker {
    /// A closed breaker with an empty window.
    pub fn new() -> Breaker {
        Breaker {
            lifetime: 0,
            period: 0,
            latest: SimTime::ZERO,
            phase: Phase::Closed,
            newest: 0,
            calls: 0,
            failures: 0,
            window: SmallVec::new(),
        }
    }

    /// Reads the whole of the breaker's state and returns a value of no meaning. For callers
    /// holding very many breakers: called when a call through this breaker is known to come
    /// soon (at a request's arrival, say), it brings the breaker's memory into cache while
    /// other work goes on, instead of stalling that call on a cache miss: a software
    /// prefetch in safe code. It changes nothing.
    pub fn warm(&self) -> u64 {
        // One bucket in eight: buckets are 8 bytes, so that is one read per 64-byte line,
        // which is what brings a line in; fewer reads let more warm-ups be in flight at once.
        self.window
            .iter()
            .step_by(8)
            .fold(self.period ^ self.latest.as_nanos(), |acc, b| {
                acc ^ u64::from(b.calls)
            })
    }

    fn enter(&mut self, phase: Phase) {
        self.period += 1;
        self.phase = phase;
        self.window.clear();
        self.calls = 0;
        self.failures = 0;
    }
}

impl BreakerPolicy {
    /// Validates a configuration.
    pub fn new(config: BreakerConfig) -> Result<BreakerPolicy, BreakerConfigError> {
        let threshold = config.failure_rate_threshold;
        if !(threshold.is_finite() && threshold > 0.0 && threshold <= 1.0) {
            return Err(BreakerConfigError::Threshold);
        }
        let threshold_ppm = (threshold * PPM as f64).round() as u64;
        if threshold_ppm == 0 {
            return Err(BreakerConfigError::Threshold);
        }
        let window = config.window.as_nanos();
        let buckets = u64::from(config.buckets);
        if window == 0 || buckets == 0 || window % buckets != 0 {
            return Err(BreakerConfigError::Window);
        }
        if config.min_calls == 0 {
            return Err(BreakerConfigError::MinCalls);
        }
        if config.open_for == SimDuration::ZERO {
            return Err(BreakerConfigError::OpenFor);
        }
        if config.half_open_probes == 0 || config.successes_to_close == 0 {
            return Err(BreakerConfigError::Probes);
        }
        if config.probe_timeout == SimDuration::ZERO {
            return Err(BreakerConfigError::ProbeTimeout);
        }
        Ok(BreakerPolicy {
            threshold_ppm,
            bucket_width: window / buckets,
            buckets: config.buckets,
            min_calls: config.min_calls,
            open_for: config.open_for,
            half_open_probes: config.half_open_probes,
            successes_to_close: config.successes_to_close,
            probe_timeout: config.probe_timeout,
        })
    }

    /// Admits a call (a probe when half-open) or rejects it.
    pub fn try_call(&self, breaker: &mut Breaker, now: SimTime) -> Result<Ticket, Rejected> {
        let now = self.advance(breaker, now);
        let (lifetime, period) = (breaker.lifetime, breaker.period);
        match &mut breaker.phase {
            Phase::Closed => Ok(Ticket {
                lifetime,
                period,
                probe: None,
            }),
            Phase::Open { until } => Err(Rejected {
                retry_at: *until,
                reason: RejectReason::Open,
            }),
            Phase::HalfOpen {
                probes, next_probe, ..
            } => {
                if probes.len() < self.half_open_probes as usize {
                    let id = *next_probe;
                    *next_probe = next_probe.wrapping_add(1);
                    probes.push(Probe {
                        id,
                        admitted_at: now,
                    });
                    Ok(Ticket {
                        lifetime,
                        period,
                        probe: Some(id),
                    })
                } else {
                    Err(Rejected {
                        retry_at: self.earliest_deadline(probes).unwrap_or(now),
                        reason: RejectReason::ProbesInFlight,
                    })
                }
            }
        }
    }

    /// Records the outcome of an admitted call (see [`RecordEffect`]).
    pub fn record(
        &self,
        breaker: &mut Breaker,
        now: SimTime,
        ticket: Ticket,
        outcome: Outcome,
    ) -> RecordEffect {
        let now = self.advance(breaker, now);
        if ticket.lifetime != breaker.lifetime || ticket.period != breaker.period {
            return RecordEffect::Stale;
        }
        match (&mut breaker.phase, ticket.probe) {
            (Phase::Closed, None) => {
                let (calls, failures) = self.count(breaker, now, outcome);
                let trips = calls >= u64::from(self.min_calls)
                    && failures * PPM >= self.threshold_ppm * calls;
                if trips {
                    breaker.enter(Phase::Open {
                        until: now + self.open_for,
                    });
                    RecordEffect::Tripped
                } else {
                    RecordEffect::Counted
                }
            }
            (
                Phase::HalfOpen {
                    probes, successes, ..
                },
                Some(id),
            ) => {
                let Some(position) = probes.iter().position(|p| p.id == id) else {
                    return RecordEffect::Stale;
                };
                probes.swap_remove(position);
                match outcome {
                    Outcome::Failure => {
                        breaker.enter(Phase::Open {
                            until: now + self.open_for,
                        });
                        RecordEffect::Reopened
                    }
                    Outcome::Success => {
                        *successes += 1;
                        if *successes >= self.successes_to_close {
                            breaker.enter(Phase::Closed);
                            RecordEffect::Closed
                        } else {
                            RecordEffect::Counted
                        }
                    }
                }
            }
            _ => RecordEffect::Stale,
        }
    }

    /// The breaker's state at `now`, without changing it (an open breaker whose pause is
    /// over reads as half-open; a probe past its deadline reads as failed).
    pub fn state(&self, breaker: &Breaker, now: SimTime) -> State {
        let now = now.max(breaker.latest);
        match &breaker.phase {
            Phase::Closed => {
                let (calls, failures) = self.window_totals(breaker, now);
                State::Closed {
                    calls: u32::try_from(calls).unwrap_or(u32::MAX),
                    failures: u32::try_from(failures).unwrap_or(u32::MAX),
                }
            }
            Phase::Open { until } if now < *until => State::Open { until: *until },
            Phase::Open { .. } => State::HalfOpen {
                outstanding_probes: 0,
                successes: 0,
            },
            Phase::HalfOpen {
                probes, successes, ..
            } => match self.earliest_deadline(probes) {
                Some(deadline) if deadline <= now => {
                    let until = deadline + self.open_for;
                    if now < until {
                        State::Open { until }
                    } else {
                        State::HalfOpen {
                            outstanding_probes: 0,
                            successes: 0,
                        }
                    }
                }
                _ => State::HalfOpen {
                    outstanding_probes: probes.len() as u32,
                    successes: *successes,
                },
            },
        }
    }

    /// Whether the breaker is closed with nothing in its window at `now`, so that dropping it
    /// changes no decision.
    pub fn is_idle(&self, breaker: &Breaker, now: SimTime) -> bool {
        matches!(breaker.phase, Phase::Closed)
            && self.window_totals(breaker, now.max(breaker.latest)).0 == 0
    }

    /// Applies the transitions due by `now` (end of an open pause, probe timeouts) and returns
    /// `now` clamped to the latest time the breaker has seen. Inlined into its two callers:
    /// a closed breaker's pass is a few instructions, less than the call.
    #[inline(always)]
    fn advance(&self, breaker: &mut Breaker, now: SimTime) -> SimTime {
        let now = now.max(breaker.latest);
        breaker.latest = now;
        loop {
            match &breaker.phase {
                Phase::Open { until } if now >= *until => breaker.enter(Phase::HalfOpen {
                    probes: Vec::new(),
                    successes: 0,
                    next_probe: 0,
                }),
                Phase::HalfOpen { probes, .. } => match self.earliest_deadline(probes) {
                    // The probe failed at its deadline; the pause runs from there. This ends:
                    // each turn moves `until` past the previous deadline, and a fresh half-open
                    // period has no probes.
                    Some(deadline) if deadline <= now => breaker.enter(Phase::Open {
                        until: deadline + self.open_for,
                    }),
                    _ => return now,
                },
                _ => return now,
            }
        }
    }

    fn earliest_deadline(&self, probes: &[Probe]) -> Option<SimTime> {
        probes
            .iter()
            .map(|p| p.admitted_at + self.probe_timeout)
            .min()
    }

    fn current_bucket(&self, now: SimTime) -> u64 {
        now.as_nanos() / self.bucket_width
    }

    /// Adds an outcome to the window at `now` and returns the window's (calls, failures).
    fn count(&self, breaker: &mut Breaker, now: SimTime, outcome: Outcome) -> (u64, u64) {
        let buckets = u64::from(self.buckets);
        let filled = breaker.window.len() == self.buckets as usize;
        // The usual case: `now` is still in the newest bucket, so the window at `now` is every
        // slot (those of buckets that slid out were emptied when `newest` moved, those of
        // buckets not reached yet were never written) and the sums are the window's. No
        // division by the width: the bucket's start is a product. (`checked_mul`: a window
        // laid out by a policy with wider buckets may hold a bucket number whose start under
        // this policy is past the end of time.)
        let start = breaker.newest.checked_mul(self.bucket_width);
        if filled
            && start.is_some_and(|start| now.as_nanos().wrapping_sub(start) < self.bucket_width)
        {
            let slot = (breaker.newest % buckets) as usize;
            self.add_outcome(breaker, slot, outcome);
            return Self::sums(breaker);
        }
        let current = self.current_bucket(now);
        if !filled {
            // Empty, or laid out by a policy with another bucket count: start afresh.
            breaker.window.clear();
            breaker
                .window
                .resize(self.buckets as usize, Bucket::default());
            breaker.calls = 0;
            breaker.failures = 0;
            breaker.newest = current;
        }
        // `now` never runs backwards for a breaker (see `advance`), so neither does the bucket.
        let index = current.max(breaker.newest);
        if index > breaker.newest {
            // The buckets after the newest up to this one saw no outcome yet: empty the slots
            // they take over (all of them if the window has slid past every slot), taking
            // what they held off the sums.
            let stale = (index - breaker.newest).min(buckets) as usize;
            let start = ((breaker.newest + 1) % buckets) as usize;
            let (tail, head) = breaker.window.split_at_mut(start);
            let (mut calls, mut failures) = (0u64, 0u64);
            for slot in head.iter_mut().chain(tail).take(stale) {
                calls += u64::from(slot.calls);
                failures += u64::from(slot.failures);
                *slot = Bucket::default();
            }
            breaker.newest = index;
            if breaker.calls == u32::MAX || breaker.failures == u32::MAX {
                // A capped sum cannot be taken from: add up what is left.
                let (calls, failures) = Self::ring_sums(breaker);
                breaker.calls = u32::try_from(calls).unwrap_or(u32::MAX);
                breaker.failures = u32::try_from(failures).unwrap_or(u32::MAX);
            } else {
                // Below the cap, each sum is exact, so at least what was emptied.
                breaker.calls -= calls as u32;
                breaker.failures -= failures as u32;
            }
        }
        self.add_outcome(breaker, (index % buckets) as usize, outcome);
        if index != current {
            return self.window_totals(breaker, now);
        }
        Self::sums(breaker)
    }

    /// Counts an outcome in `slot`, and in the sums (unless the slot's count saturated).
    #[inline(always)]
    fn add_outcome(&self, breaker: &mut Breaker, slot: usize, outcome: Outcome) {
        let bucket = &mut breaker.window[slot];
        let calls = bucket.calls.saturating_add(1);
        breaker.calls = breaker.calls.saturating_add(calls - bucket.calls);
        bucket.calls = calls;
        if outcome == Outcome::Failure {
            let failures = bucket.failures.saturating_add(1);
            breaker.failures = breaker.failures.saturating_add(failures - bucket.failures);
            bucket.failures = failures;
        }
    }

    /// The window's (calls, failures) when every slot is in it: the kept sums, or the ring
    /// added up if one is capped.
    #[inline(always)]
    fn sums(breaker: &Breaker) -> (u64, u64) {
        if breaker.calls == u32::MAX || breaker.failures == u32::MAX {
            return Self::ring_sums(breaker);
        }
        (u64::from(breaker.calls), u64::from(breaker.failures))
    }

    /// Every slot's calls and failures added up.
    fn ring_sums(breaker: &Breaker) -> (u64, u64) {
        breaker
            .window
            .iter()
            .fold((0u64, 0u64), |(calls, failures), b| {
                (calls + u64::from(b.calls), failures + u64::from(b.failures))
            })
    }

    fn window_totals(&self, breaker: &Breaker, now: SimTime) -> (u64, u64) {
        if breaker.window.len() != self.buckets as usize {
            // Empty, or laid out by a policy with another bucket count (see [`Breaker`]).
            return (0, 0);
        }
        let buckets = u64::from(self.buckets);
        let current = self.current_bucket(now);
        let oldest = current.saturating_sub(buckets - 1);
        // The slots hold buckets `newest - buckets + 1 ..= newest`; the window at `now` is the
        // part of those from `oldest` to `current` (none once it has slid past them all).
        let first = oldest.max(breaker.newest.saturating_sub(buckets - 1));
        let last = current.min(breaker.newest);
        if first > last {
            return (0, 0);
        }
        self.sum_buckets(breaker, first, last)
    }

    /// Outcomes counted in buckets `first..=last`, all within the slots' span.
    fn sum_buckets(&self, breaker: &Breaker, first: u64, last: u64) -> (u64, u64) {
        let span = (last - first + 1) as usize;
        // Consecutive buckets are consecutive slots, wrapping once at most: one division.
        let start = (first % u64::from(self.buckets)) as usize;
        let (tail, head) = breaker.window.split_at(start);
        // Two plain slices rather than a chained, counted iterator, which compiled to a loop
        // several times longer (this runs on every recorded call).
        let from_head = span.min(head.len());
        let from_tail = (span - from_head).min(tail.len());
        let sum = |slots: &[Bucket]| {
            slots.iter().fold((0u64, 0u64), |(calls, failures), b| {
                (calls + u64::from(b.calls), failures + u64::from(b.failures))
            })
        };
        let (head_calls, head_failures) = sum(&head[..from_head]);
        let (tail_calls, tail_failures) = sum(&tail[..from_tail]);
        (head_calls + tail_calls, head_failures + tail_failures)
    }
}

/// What a [`BreakerSet`] keys its breakers by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyPolicy {
    /// One breaker per (tenant, dependency): a tenant's failures open only its own breaker.
    TenantAndDependency,
    /// One breaker per dependency, shared by all tenants (the failing twin).
    DependencyOnly,
}

/// Proof that a call through a [`BreakerSet`] was admitted: the caller's tenant and
/// dependency and the breaker's [`Ticket`]. Consumed by [`BreakerSet::record`].
#[derive(Debug, PartialEq, Eq)]
pub struct CallToken<T, D> {
    tenant: T,
    dependency: D,
    ticket: Ticket,
    /// Where the breaker sat in the set when the call was admitted: `record` looks there
    /// first (and checks the key) before hashing, saving a lookup per call.
    slot: usize,
}

impl<T, D> CallToken<T, D> {
    /// The tenant the call was made for.
    pub fn tenant(&self) -> &T {
        &self.tenant
    }

    /// The dependency called.
    pub fn dependency(&self) -> &D {
        &self.dependency
    }

    /// Whether the call is a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.ticket.is_probe()
    }

    /// The breaker period the call was admitted in.
    pub fn period(&self) -> u64 {
        self.ticket.period()
    }
}

/// Breakers for one caller, one per key under a [`KeyPolicy`], generic over the tenant `T` and
/// dependency `D` keys.
#[derive(Clone, Debug)]
pub struct BreakerSet<T, D> {
    policy: BreakerPolicy,
    key_policy: KeyPolicy,
    /// Keyed by (tenant, dependency); the tenant is `None` under [`KeyPolicy::DependencyOnly`].
    breakers: KeyMap<(Option<T>, D), Breaker>,
    lifetimes: u64,
}

impl<T: Hash + Eq + Clone, D: Hash + Eq + Clone> BreakerSet<T, D> {
    /// An empty set: every breaker starts closed.
    pub fn new(policy: BreakerPolicy, key_policy: KeyPolicy) -> BreakerSet<T, D> {
        BreakerSet {
            policy,
            key_policy,
            breakers: KeyMap::default(),
            lifetimes: 0,
        }
    }

    fn key(&self, tenant: &T, dependency: &D) -> (Option<T>, D) {
        let tenant = match self.key_policy {
            KeyPolicy::TenantAndDependency => Some(tenant.clone()),
            KeyPolicy::DependencyOnly => None,
        };
        (tenant, dependency.clone())
    }

    /// Asks the breaker for (`tenant`, `dependency`) to admit a call.
    pub fn try_call(
        &mut self,
        now: SimTime,
        tenant: &T,
        dependency: &D,
    ) -> Result<CallToken<T, D>, Rejected> {
        let key = self.key(tenant, dependency);
        let (slot, breaker) = match self.breakers.entry(key) {
            indexmap::map::Entry::Occupied(entry) => {
                let slot = entry.index();
                (slot, entry.into_mut())
            }
            indexmap::map::Entry::Vacant(entry) => {
                self.lifetimes += 1;
                let slot = entry.index();
                let breaker = entry.insert(Breaker {
                    lifetime: self.lifetimes,
                    ..Breaker::new()
                });
                (slot, breaker)
            }
        };
        let ticket = self.policy.try_call(breaker, now)?;
        Ok(CallToken {
            tenant: tenant.clone(),
            dependency: dependency.clone(),
            ticket,
            slot,
        })
    }

    /// Records the outcome of an admitted call.
    pub fn record(
        &mut self,
        now: SimTime,
        token: CallToken<T, D>,
        outcome: Outcome,
    ) -> RecordEffect {
        let key = self.key(&token.tenant, &token.dependency);
        // The slot is a hint: `prune` may have moved or dropped the breaker since.
        let breaker = match self.breakers.get_index_mut(token.slot) {
            Some((k, breaker)) if *k == key => Some(breaker),
            _ => self.breakers.get_mut(&key),
        };
        match breaker {
            Some(breaker) => self.policy.record(breaker, now, token.ticket, outcome),
            None => RecordEffect::Stale,
        }
    }

    /// The state of the breaker that would handle (`tenant`, `dependency`) at `now`.
    pub fn state(&self, now: SimTime, tenant: &T, dependency: &D) -> State {
        match self.breakers.get(&self.key(tenant, dependency)) {
            Some(breaker) => self.policy.state(breaker, now),
            None => State::Closed {
                calls: 0,
                failures: 0,
            },
        }
    }

    /// Drops the breakers that are closed with an empty window at `now`; returns how many.
    /// Call it now and then to bound memory by the keys with recent outcomes.
    pub fn prune(&mut self, now: SimTime) -> usize {
        let before = self.breakers.len();
        let policy = self.policy;
        self.breakers
            .retain(|_, breaker| !policy.is_idle(breaker, now));
        before - self.breakers.len()
    }

    /// Breakers held.
    pub fn len(&self) -> usize {
        self.breakers.len()
    }

    /// Whether no breaker is held.
    pub fn is_empty(&self) -> bool {
        self.breakers.is_empty()
    }

    /// The policy every breaker follows.
    pub fn policy(&self) -> &BreakerPolicy {
        &self.policy
    }

    /// How breakers are keyed.
    pub fn key_policy(&self) -> KeyPolicy {
        self.key_policy
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use proptest::prelude::*;

    fn ms(n: u64) -> SimDuration {
        SimDuration::from_millis(n)
    }

    fn at(n: u64) -> SimTime {
        SimTime::ZERO + ms(n)
    }

    fn config() -> BreakerConfig {
        BreakerConfig {
            failure_rate_threshold: 0.5,
            window: ms(100),
            buckets: 10,
            min_calls: 4,
            open_for: ms(50),
            half_open_probes: 2,
            successes_to_close: 2,
            probe_timeout: ms(20),
        }
    }

    fn policy() -> BreakerPolicy {
        BreakerPolicy::new(config()).unwrap()
    }

    #[test]
    fn sums_past_32_bits_are_added_up_from_the_ring() {
        // Four billion calls take too long to count, so a slot is filled in place, near the
        // cap of the kept sums; the window's counts must stay exact past it.
        let policy = policy(); // ten buckets of 10 ms
        let max = u32::MAX;
        let mut breaker = Breaker::new();
        policy.count(&mut breaker, at(0), Outcome::Success);
        breaker.window[0] = Bucket {
            calls: max - 1,
            failures: max - 1,
        };
        (breaker.calls, breaker.failures) = (max - 1, max - 1);
        // The next bucket: the sums reach the cap.
        let counted = policy.count(&mut breaker, at(10), Outcome::Failure);
        assert_eq!(counted, (u64::from(max), u64::from(max)));
        // Same bucket, past the cap: read from the ring.
        let counted = policy.count(&mut breaker, at(15), Outcome::Success);
        assert_eq!(counted, (u64::from(max) + 1, u64::from(max)));
        // The full slot slides out: the capped sums are rebuilt from what is left (bucket 1's
        // two calls, one failed) and the new outcome.
        let counted = policy.count(&mut breaker, at(100), Outcome::Success);
        assert_eq!(counted, (3, 1));
        assert_eq!((breaker.calls, breaker.failures), (3, 1));
        // And the kept sums serve again.
        let counted = policy.count(&mut breaker, at(105), Outcome::Failure);
        assert_eq!(counted, (4, 2));
    }

    #[test]
    fn invalid_configurations_are_errors() {
        let bad = |c: BreakerConfig| BreakerPolicy::new(c).unwrap_err();
        assert_eq!(
            bad(BreakerConfig {
                failure_rate_threshold: 0.0,
                ..config()
            }),
            BreakerConfigError::Threshold
        );
        assert_eq!(
            bad(BreakerConfig {
                failure_rate_threshold: f64::NAN,
                ..config()
            }),
            BreakerConfigError::Threshold
        );
        assert_eq!(
            bad(BreakerConfig {
                window: SimDuration::from_nanos(7),
                buckets: 2,
                ..config()
            }),
            BreakerConfigError::Window
        );
        assert_eq!(
            bad(BreakerConfig {
                buckets: 0,
                ..config()
            }),
            BreakerConfigError::Window
        );
        assert_eq!(
            bad(BreakerConfig {
                min_calls: 0,
                ..config()
            }),
            BreakerConfigError::MinCalls
        );
        assert_eq!(
            bad(BreakerConfig {
                open_for: SimDuration::ZERO,
                ..config()
            }),
            BreakerConfigError::OpenFor
        );
        assert_eq!(
            bad(BreakerConfig {
                half_open_probes: 0,
                ..config()
            }),
            BreakerConfigError::Probes
        );
        assert_eq!(
            bad(BreakerConfig {
                probe_timeout: SimDuration::ZERO,
                ..config()
            }),
            BreakerConfigError::ProbeTimeout
        );
        assert!(BreakerConfigError::Window.to_string().contains("multiple"));
    }

    #[test]
    fn full_cycle_closed_open_half_open_closed() {
        let policy = policy();
        let mut b = Breaker::new();
        for (i, outcome) in [Outcome::Success, Outcome::Failure, Outcome::Success]
            .into_iter()
            .enumerate()
        {
            let t = policy.try_call(&mut b, at(i as u64)).unwrap();
            assert_eq!(
                policy.record(&mut b, at(i as u64), t, outcome),
                RecordEffect::Counted
            );
        }
        let late = policy.try_call(&mut b, at(3)).unwrap();
        let t = policy.try_call(&mut b, at(3)).unwrap();
        assert_eq!(
            policy.record(&mut b, at(3), t, Outcome::Failure),
            RecordEffect::Tripped
        );
        assert_eq!(policy.state(&b, at(3)), State::Open { until: at(53) });
        assert_eq!(
            policy.try_call(&mut b, at(52)),
            Err(Rejected {
                retry_at: at(53),
                reason: RejectReason::Open
            })
        );
        // The late result of a call admitted before the trip changes nothing.
        assert_eq!(
            policy.record(&mut b, at(10), late, Outcome::Failure),
            RecordEffect::Stale
        );
        let p1 = policy.try_call(&mut b, at(53)).unwrap();
        let p2 = policy.try_call(&mut b, at(54)).unwrap();
        assert!(p1.is_probe() && p2.is_probe());
        assert_eq!(
            policy.try_call(&mut b, at(55)),
            Err(Rejected {
                retry_at: at(73),
                reason: RejectReason::ProbesInFlight
            })
        );
        assert_eq!(
            policy.record(&mut b, at(56), p1, Outcome::Success),
            RecordEffect::Counted
        );
        assert_eq!(
            policy.record(&mut b, at(57), p2, Outcome::Success),
            RecordEffect::Closed
        );
        assert_eq!(
            policy.state(&b, at(57)),
            State::Closed {
                calls: 0,
                failures: 0
            }
        );
    }

    #[test]
    fn lost_probe_reopens_at_its_deadline_and_its_late_result_is_stale() {
        let policy = policy();
        let mut b = Breaker::new();
        for _ in 0..4 {
            let t = policy.try_call(&mut b, at(0)).unwrap();
            policy.record(&mut b, at(0), t, Outcome::Failure);
        }
        let lost = policy.try_call(&mut b, at(50)).unwrap();
        assert_eq!(
            policy.state(&b, at(69)),
            State::HalfOpen {
                outstanding_probes: 1,
                successes: 0
            }
        );
        assert_eq!(policy.state(&b, at(70)), State::Open { until: at(120) });
        assert_eq!(
            policy.try_call(&mut b, at(119)).unwrap_err().retry_at,
            at(120)
        );
        assert_eq!(
            policy.record(&mut b, at(119), lost, Outcome::Success),
            RecordEffect::Stale
        );
        assert!(policy.try_call(&mut b, at(120)).unwrap().is_probe());
    }

    #[test]
    fn old_outcomes_slide_out_of_the_window() {
        let policy = policy();
        let mut b = Breaker::new();
        for i in 0..3 {
            let t = policy.try_call(&mut b, at(i)).unwrap();
            policy.record(&mut b, at(i), t, Outcome::Failure);
        }
        // Bucket width 10 ms: at 109 ms the window holds buckets 1..=10, so the three failures
        // in bucket 0 are gone and one more failure does not reach min_calls.
        assert_eq!(
            policy.state(&b, at(99)),
            State::Closed {
                calls: 3,
                failures: 3
            }
        );
        let t = policy.try_call(&mut b, at(109)).unwrap();
        assert_eq!(
            policy.record(&mut b, at(109), t, Outcome::Failure),
            RecordEffect::Counted
        );
        assert_eq!(
            policy.state(&b, at(109)),
            State::Closed {
                calls: 1,
                failures: 1
            }
        );
    }

    #[test]
    fn dependency_only_lets_one_tenant_take_everyone_down() {
        let mut isolated = BreakerSet::new(policy(), KeyPolicy::TenantAndDependency);
        let mut shared = BreakerSet::new(policy(), KeyPolicy::DependencyOnly);
        for set in [&mut isolated, &mut shared] {
            for _ in 0..4 {
                let t = set.try_call(at(1), &"a", &"kms").unwrap();
                set.record(at(1), t, Outcome::Failure);
            }
            assert!(set.try_call(at(2), &"a", &"kms").is_err());
        }
        assert!(isolated.try_call(at(2), &"b", &"kms").is_ok());
        assert!(isolated.try_call(at(2), &"a", &"db").is_ok());
        assert_eq!(
            shared.try_call(at(2), &"b", &"kms").unwrap_err().reason,
            RejectReason::Open
        );
    }

    #[test]
    fn prune_drops_only_idle_closed_breakers() {
        let mut set = BreakerSet::new(policy(), KeyPolicy::TenantAndDependency);
        let t = set.try_call(at(0), &1u32, &0u8).unwrap();
        set.record(at(0), t, Outcome::Success);
        for _ in 0..4 {
            let t = set.try_call(at(0), &2u32, &0u8).unwrap();
            set.record(at(0), t, Outcome::Failure);
        }
        let outstanding = set.try_call(at(0), &3u32, &0u8).unwrap();
        assert_eq!(set.len(), 3);
        assert_eq!(set.prune(at(50)), 1); // tenant 3: closed, nothing recorded
        assert_eq!(set.prune(at(100)), 1); // tenant 1: its success left the window
        assert_eq!(set.len(), 1); // tenant 2 is not closed
        // The outstanding call's breaker was dropped: its result is stale.
        assert_eq!(
            set.record(at(101), outstanding, Outcome::Failure),
            RecordEffect::Stale
        );
        assert!(set.state(at(101), &2, &0).eq(&State::HalfOpen {
            outstanding_probes: 0,
            successes: 0
        }));
    }

    #[test]
    fn time_running_backwards_is_clamped() {
        let policy = policy();
        let mut b = Breaker::new();
        for _ in 0..3 {
            let t = policy.try_call(&mut b, at(100)).unwrap();
            policy.record(&mut b, at(100), t, Outcome::Failure);
        }
        // A clock that steps back to 5 ms (the same ring slot as 100 ms) still counts the
        // outcome at 100 ms, with the three before it: the fourth failure trips.
        let t = policy.try_call(&mut b, at(5)).unwrap();
        assert_eq!(
            policy.record(&mut b, at(5), t, Outcome::Failure),
            RecordEffect::Tripped
        );
        assert_eq!(
            policy.try_call(&mut b, at(0)).unwrap_err().retry_at,
            at(150)
        );
    }

    #[test]
    fn a_policy_with_another_bucket_count_starts_the_window_afresh() {
        let ten = policy();
        let five = BreakerPolicy::new(BreakerConfig {
            buckets: 5,
            ..config()
        })
        .unwrap();
        let mut b = Breaker::new();
        for _ in 0..3 {
            let t = ten.try_call(&mut b, at(10)).unwrap();
            ten.record(&mut b, at(10), t, Outcome::Failure);
        }
        assert_eq!(
            ten.state(&b, at(10)),
            State::Closed {
                calls: 3,
                failures: 3
            }
        );
        // Another layout reads as empty, and counting starts over instead of misreading it.
        assert_eq!(
            five.state(&b, at(10)),
            State::Closed {
                calls: 0,
                failures: 0
            }
        );
        let t = five.try_call(&mut b, at(10)).unwrap();
        assert_eq!(
            five.record(&mut b, at(10), t, Outcome::Failure),
            RecordEffect::Counted
        );
        assert_eq!(
            five.state(&b, at(10)),
            State::Closed {
                calls: 1,
                failures: 1
            }
        );
    }

    // ---- Property tests -------------------------------------------------------------------
    // Times are in single nanoseconds ("ticks") so that runs hit every boundary exactly.

    fn tick(n: u64) -> SimDuration {
        SimDuration::from_nanos(n)
    }

    #[derive(Clone, Copy, Debug)]
    enum Op {
        /// Wait `dt` ms, then call.
        Call { dt: u64 },
        /// Wait `dt` ms, then record a held call's outcome.
        Record { pick: usize, failure: bool, dt: u64 },
        /// Drop a held call's result: it is never recorded.
        Lose { pick: usize },
        /// Wait `dt` ms, then read the state.
        Observe { dt: u64 },
    }

    fn ops(len: usize) -> impl Strategy<Value = Vec<Op>> {
        let dt = prop_oneof![4 => 0u64..4, 1 => 0u64..60];
        let op = prop_oneof![
            4 => dt.clone().prop_map(|dt| Op::Call { dt }),
            4 => (any::<usize>(), any::<bool>(), dt.clone())
                .prop_map(|(pick, failure, dt)| Op::Record { pick, failure, dt }),
            1 => any::<usize>().prop_map(|pick| Op::Lose { pick }),
            1 => dt.prop_map(|dt| Op::Observe { dt }),
        ];
        prop::collection::vec(op, 1..len)
    }

    /// Configurations in ticks, with the threshold in tenths.
    fn configs() -> impl Strategy<Value = (BreakerConfig, u64)> {
        (
            1u64..=10,
            1u32..=5,
            1u32..=6,
            1u64..=40,
            1u32..=3,
            1u32..=3,
            1u64..=30,
            1u64..=20,
        )
            .prop_map(
                |(tenths, buckets, min_calls, open_for, probes, close, timeout, width)| {
                    let config = BreakerConfig {
                        failure_rate_threshold: tenths as f64 / 10.0,
                        window: tick(width * u64::from(buckets)),
                        buckets,
                        min_calls,
                        open_for: tick(open_for),
                        half_open_probes: probes,
                        successes_to_close: close,
                        probe_timeout: tick(timeout),
                    };
                    (config, tenths)
                },
            )
    }

    /// One step of a run on a single breaker, as observed.
    #[derive(Clone, Debug, PartialEq)]
    enum Event {
        Call {
            at: SimTime,
            token: usize,
            result: Result<(u64, bool), Rejected>,
        },
        Record {
            at: SimTime,
            token: usize,
            failure: bool,
            effect: RecordEffect,
        },
        Observe {
            at: SimTime,
            state: State,
        },
    }

    /// Runs `ops` on one breaker; tokens are numbered by call order.
    fn run(policy: &BreakerPolicy, ops: &[Op]) -> Vec<Event> {
        let mut breaker = Breaker::new();
        let mut now = SimTime::ZERO;
        let mut held: Vec<(usize, Ticket)> = Vec::new();
        let mut calls = 0;
        let mut events = Vec::new();
        for op in ops {
            match *op {
                Op::Call { dt } => {
                    now += tick(dt);
                    let result = policy.try_call(&mut breaker, now);
                    let token = calls;
                    calls += 1;
                    let summary = result
                        .as_ref()
                        .map(|t| (t.period(), t.is_probe()))
                        .map_err(|r| *r);
                    if let Ok(ticket) = result {
                        held.push((token, ticket));
                    }
                    events.push(Event::Call {
                        at: now,
                        token,
                        result: summary,
                    });
                }
                Op::Record { pick, failure, dt } => {
                    now += tick(dt);
                    if held.is_empty() {
                        continue;
                    }
                    let (token, ticket) = held.remove(pick % held.len());
                    let outcome = if failure {
                        Outcome::Failure
                    } else {
                        Outcome::Success
                    };
                    let effect = policy.record(&mut breaker, now, ticket, outcome);
                    events.push(Event::Record {
                        at: now,
                        token,
                        failure,
                        effect,
                    });
                }
                Op::Lose { pick } => {
                    if !held.is_empty() {
                        held.remove(pick % held.len());
                    }
                }
                Op::Observe { dt } => {
                    now += tick(dt);
                    events.push(Event::Observe {
                        at: now,
                        state: policy.state(&breaker, now),
                    });
                }
            }
        }
        events
    }

    /// A plain reference model: the closed window is recomputed from the raw log of outcomes,
    /// the threshold compared in tenths.
    struct Reference {
        config: BreakerConfig,
        threshold_tenths: u64,
        phase: RefPhase,
        period: u64,
        /// Outcomes (time, failure) counted since the breaker last closed.
        log: Vec<(SimTime, bool)>,
        latest: SimTime,
        /// Call token -> (period, probe admitted at).
        tickets: BTreeMap<usize, (u64, Option<SimTime>)>,
    }

    #[derive(Clone, Debug)]
    enum RefPhase {
        Closed,
        Open(SimTime),
        HalfOpen {
            probes: BTreeMap<usize, SimTime>,
            successes: u32,
        },
    }

    impl Reference {
        fn new(config: BreakerConfig, threshold_tenths: u64) -> Reference {
            Reference {
                config,
                threshold_tenths,
                phase: RefPhase::Closed,
                period: 0,
                log: Vec::new(),
                latest: SimTime::ZERO,
                tickets: BTreeMap::new(),
            }
        }

        fn switch(&mut self, phase: RefPhase) {
            self.phase = phase;
            self.period += 1;
            self.log.clear();
        }

        fn settle(&mut self, now: SimTime) -> SimTime {
            let now = now.max(self.latest);
            self.latest = now;
            loop {
                let next = match &self.phase {
                    RefPhase::Open(until) if *until <= now => RefPhase::HalfOpen {
                        probes: BTreeMap::new(),
                        successes: 0,
                    },
                    RefPhase::HalfOpen { probes, .. } => {
                        let expired = probes
                            .values()
                            .map(|&t| t + self.config.probe_timeout)
                            .filter(|&deadline| deadline <= now)
                            .min();
                        match expired {
                            Some(deadline) => RefPhase::Open(deadline + self.config.open_for),
                            None => return now,
                        }
                    }
                    _ => return now,
                };
                self.switch(next);
            }
        }

        fn window(&self, now: SimTime) -> (u64, u64) {
            let width = self.config.window.as_nanos() / u64::from(self.config.buckets);
            let in_window: Vec<bool> = self
                .log
                .iter()
                .filter(|(t, _)| {
                    t.as_nanos() / width + u64::from(self.config.buckets) > now.as_nanos() / width
                })
                .map(|&(_, failure)| failure)
                .collect();
            (
                in_window.len() as u64,
                in_window.iter().filter(|&&f| f).count() as u64,
            )
        }

        fn call(&mut self, now: SimTime, token: usize) -> Result<(u64, bool), Rejected> {
            let now = self.settle(now);
            let period = self.period;
            match &mut self.phase {
                RefPhase::Closed => {
                    self.tickets.insert(token, (period, None));
                    Ok((period, false))
                }
                RefPhase::Open(until) => Err(Rejected {
                    retry_at: *until,
                    reason: RejectReason::Open,
                }),
                RefPhase::HalfOpen { probes, .. } => {
                    if probes.len() < self.config.half_open_probes as usize {
                        probes.insert(token, now);
                        self.tickets.insert(token, (period, Some(now)));
                        Ok((period, true))
                    } else {
                        Err(Rejected {
                            retry_at: probes.values().min().copied().unwrap()
                                + self.config.probe_timeout,
                            reason: RejectReason::ProbesInFlight,
                        })
                    }
                }
            }
        }

        fn record(&mut self, now: SimTime, token: usize, failure: bool) -> RecordEffect {
            let now = self.settle(now);
            let (period, _) = self.tickets.remove(&token).unwrap();
            if period != self.period {
                return RecordEffect::Stale;
            }
            match &mut self.phase {
                RefPhase::Closed => {
                    self.log.push((now, failure));
                    let (calls, failures) = self.window(now);
                    if calls >= u64::from(self.config.min_calls)
                        && failures * 10 >= self.threshold_tenths * calls
                    {
                        self.switch(RefPhase::Open(now + self.config.open_for));
                        RecordEffect::Tripped
                    } else {
                        RecordEffect::Counted
                    }
                }
                RefPhase::HalfOpen { probes, successes } => {
                    if probes.remove(&token).is_none() {
                        return RecordEffect::Stale;
                    }
                    if failure {
                        self.switch(RefPhase::Open(now + self.config.open_for));
                        RecordEffect::Reopened
                    } else {
                        *successes += 1;
                        if *successes >= self.config.successes_to_close {
                            self.switch(RefPhase::Closed);
                            RecordEffect::Closed
                        } else {
                            RecordEffect::Counted
                        }
                    }
                }
                RefPhase::Open(_) => RecordEffect::Stale,
            }
        }

        fn state(&mut self, now: SimTime) -> State {
            let now = self.settle(now);
            match &self.phase {
                RefPhase::Closed => {
                    let (calls, failures) = self.window(now);
                    State::Closed {
                        calls: calls as u32,
                        failures: failures as u32,
                    }
                }
                RefPhase::Open(until) => State::Open { until: *until },
                RefPhase::HalfOpen { probes, successes } => State::HalfOpen {
                    outstanding_probes: probes.len() as u32,
                    successes: *successes,
                },
            }
        }
    }

    /// Probe calls admitted in (at - probe_timeout, at] and not recorded by `at`.
    fn young_unrecorded_probes(events: &[Event], at: SimTime, timeout: SimDuration) -> u32 {
        let recorded_tokens: Vec<usize> = events
            .iter()
            .filter_map(|e| match e {
                Event::Record { at: r, token, .. } if *r <= at => Some(*token),
                _ => None,
            })
            .collect();
        events
            .iter()
            .filter(|e| match e {
                Event::Call {
                    at: c,
                    token,
                    result: Ok((_, true)),
                } => *c <= at && *c + timeout > at && !recorded_tokens.contains(token),
                _ => false,
            })
            .count() as u32
    }

    proptest! {
        /// The breaker behaves exactly like the reference model: same admissions and
        /// rejections (with the same retry_at), same record effects, same observed states. In
        /// particular it trips iff the raw log's window reaches min_calls and the threshold.
        #[test]
        fn matches_the_reference_model(
            (config, tenths) in configs(),
            ops in ops(250),
        ) {
            let policy = BreakerPolicy::new(config).unwrap();
            let events = run(&policy, &ops);
            let mut reference = Reference::new(config, tenths);
            for event in &events {
                match event {
                    Event::Call { at, token, result } => {
                        prop_assert_eq!(&reference.call(*at, *token), result, "call at {:?}", at);
                    }
                    Event::Record { at, token, failure, effect } => {
                        prop_assert_eq!(reference.record(*at, *token, *failure), *effect, "record at {:?}", at);
                    }
                    Event::Observe { at, state } => {
                        prop_assert_eq!(reference.state(*at), *state, "state at {:?}", at);
                    }
                }
            }
        }

        /// Never trips before min_calls outcomes of the current closed period are in the
        /// window. The period's outcomes are found from the raw log alone: the results of
        /// non-probe calls admitted since the breaker last closed (or started).
        #[test]
        fn never_trips_before_min_calls((config, _) in configs(), ops in ops(250)) {
            let policy = BreakerPolicy::new(config).unwrap();
            let events = run(&policy, &ops);
            let width = config.window.as_nanos() / u64::from(config.buckets);
            let mut admitted_this_period: Vec<usize> = Vec::new();
            let mut outcomes: Vec<SimTime> = Vec::new();
            for event in &events {
                match event {
                    Event::Call { token, result: Ok((_, false)), .. } => admitted_this_period.push(*token),
                    Event::Record { at, token, effect, .. } => {
                        if admitted_this_period.contains(token) {
                            outcomes.push(*at);
                        }
                        if *effect == RecordEffect::Tripped {
                            let in_window = outcomes
                                .iter()
                                .filter(|t| {
                                    t.as_nanos() / width + u64::from(config.buckets)
                                        > at.as_nanos() / width
                                })
                                .count();
                            prop_assert!(
                                in_window >= config.min_calls as usize,
                                "tripped with {} outcomes in the window", in_window
                            );
                        }
                        if matches!(effect, RecordEffect::Tripped | RecordEffect::Closed) {
                            admitted_this_period.clear();
                            outcomes.clear();
                        }
                    }
                    _ => {}
                }
            }
        }

        /// Once open (tripped or re-opened at t), every call before t + open_for is rejected
        /// with retry_at = t + open_for, and the first call at or after it is admitted as a probe.
        #[test]
        fn open_rejects_until_open_for_has_passed((config, _) in configs(), ops in ops(250)) {
            let policy = BreakerPolicy::new(config).unwrap();
            let events = run(&policy, &ops);
            let mut opened_until: Option<SimTime> = None;
            for event in &events {
                match event {
                    Event::Record { at, effect: RecordEffect::Tripped | RecordEffect::Reopened, .. } => {
                        opened_until = Some(*at + config.open_for);
                    }
                    Event::Call { at, result, .. } => {
                        if let Some(until) = opened_until {
                            if *at < until {
                                prop_assert_eq!(*result, Err(Rejected { retry_at: until, reason: RejectReason::Open }));
                            } else {
                                prop_assert!(matches!(result, Ok((_, true))), "first call after the pause: {:?}", result);
                                opened_until = None;
                            }
                        }
                    }
                    _ => {}
                }
            }
        }

        /// Half-open never has more than half_open_probes outstanding probes, and never gets
        /// stuck: it rejects a call (or reports outstanding probes) only for probes admitted less
        /// than probe_timeout ago whose results have not arrived, its retry_at is at most
        /// probe_timeout away, and a half-open period whose probe got no result within
        /// probe_timeout is over by then (no later call is admitted in that period).
        #[test]
        fn half_open_is_bounded_and_never_stuck((config, _) in configs(), ops in ops(250)) {
            let policy = BreakerPolicy::new(config).unwrap();
            let events = run(&policy, &ops);
            let mut outstanding: BTreeMap<u64, u32> = BTreeMap::new();
            for (i, event) in events.iter().enumerate() {
                if let Event::Call { at, result: Ok((period, _)), .. } = event {
                    for earlier in &events[..i] {
                        let Event::Call { at: admitted, token, result: Ok((p, true)) } = earlier else {
                            continue;
                        };
                        let deadline = *admitted + config.probe_timeout;
                        if p != period || deadline > *at {
                            continue;
                        }
                        let answered_in_time = events[..i].iter().any(|e| {
                            matches!(e, Event::Record { at: r, token: t, .. } if t == token && *r < deadline)
                        });
                        prop_assert!(
                            answered_in_time,
                            "period {} still admitting at {:?} after a probe timed out at {:?}",
                            period, at, deadline
                        );
                    }
                }
                match event {
                    Event::Call { at, result: Ok((period, true)), .. } => {
                        let n = outstanding.entry(*period).or_insert(0);
                        *n += 1;
                        prop_assert!(*n <= config.half_open_probes, "{} probes outstanding at {:?}", n, at);
                    }
                    Event::Record { token, effect, .. } if *effect != RecordEffect::Stale => {
                        if let Some(Event::Call { result: Ok((period, true)), .. }) = events.iter().find(
                            |e| matches!(e, Event::Call { token: t, .. } if t == token),
                        ) {
                            *outstanding.get_mut(period).unwrap() -= 1;
                        }
                    }
                    Event::Call { at, result: Err(r), .. } if r.reason == RejectReason::ProbesInFlight => {
                        prop_assert!(r.retry_at <= *at + config.probe_timeout);
                        let young = young_unrecorded_probes(&events[..i], *at, config.probe_timeout);
                        prop_assert!(young >= config.half_open_probes, "rejected with only {} live probes", young);
                    }
                    Event::Observe { at, state: State::HalfOpen { outstanding_probes, .. } } => {
                        let young = young_unrecorded_probes(&events[..i], *at, config.probe_timeout);
                        prop_assert!(*outstanding_probes <= young, "{} outstanding, {} live", outstanding_probes, young);
                    }
                    _ => {}
                }
            }
        }

        /// With TenantAndDependency, tenant A's calls and failures never change any decision,
        /// effect or state seen by tenant B.
        #[test]
        fn tenants_are_isolated(
            (config, _) in configs(),
            b_ops in prop::collection::vec((0u64..30, 0usize..4, any::<bool>(), 0u8..2), 1..120),
            a_ops in prop::collection::vec((0u64..30, 0usize..4, any::<bool>(), 0u8..2), 0..120),
        ) {
            let policy = BreakerPolicy::new(config).unwrap();
            let alone = run_tenants(policy, KeyPolicy::TenantAndDependency, &b_ops, &[]);
            let together = run_tenants(policy, KeyPolicy::TenantAndDependency, &b_ops, &a_ops);
            prop_assert_eq!(alone, together);
        }
    }

    /// Tenant 0 (B) and tenant 1 (A) interleaved on a set; each op is (absolute time in ticks,
    /// kind: 0 call, 1 record, 2 lose, 3 observe, failure, dependency). A's ops run before B's
    /// at equal times. Returns what B saw.
    fn run_tenants(
        policy: BreakerPolicy,
        key_policy: KeyPolicy,
        b_ops: &[(u64, usize, bool, u8)],
        a_ops: &[(u64, usize, bool, u8)],
    ) -> Vec<String> {
        let mut merged: Vec<(u64, u32, usize, bool, u8)> = b_ops
            .iter()
            .map(|&(t, k, f, d)| (t, 0, k, f, d))
            .chain(a_ops.iter().map(|&(t, k, f, d)| (t, 1, k, f, d)))
            .collect();
        // Stable by time, A first at equal times so it has every chance to interfere.
        merged.sort_by_key(|&(t, tenant, ..)| (t, 1 - tenant));
        let mut set: BreakerSet<u32, u8> = BreakerSet::new(policy, key_policy);
        let mut held: [Vec<CallToken<u32, u8>>; 2] = [Vec::new(), Vec::new()];
        let mut seen = Vec::new();
        for (t, tenant, kind, failure, dependency) in merged {
            let now = SimTime::ZERO + tick(t);
            let mine = &mut held[tenant as usize];
            let line = match kind {
                0 => match set.try_call(now, &tenant, &dependency) {
                    Ok(token) => {
                        let line = format!("call {t} {dependency}: ok {}", token.is_probe());
                        mine.push(token);
                        line
                    }
                    Err(r) => format!("call {t} {dependency}: {r:?}"),
                },
                1 if !mine.is_empty() => {
                    let token = mine.remove(0);
                    let outcome = if failure {
                        Outcome::Failure
                    } else {
                        Outcome::Success
                    };
                    format!("record {t}: {:?}", set.record(now, token, outcome))
                }
                2 if !mine.is_empty() => {
                    mine.remove(0);
                    "lose".to_string()
                }
                _ => format!(
                    "state {t} {dependency}: {:?}",
                    set.state(now, &tenant, &dependency)
                ),
            };
            if tenant == 0 {
                seen.push(line);
            }
        }
        seen
    }
}
