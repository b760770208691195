//! Admission control in front of a worker pool: a concurrency limit shared by tier partitions,
//! per-tenant caps, a reserve for critical traffic, load shedding with a retry hint, and an
//! optional AIMD adaptive limit.
//!
//! A request asks for a [`Permit`] before it takes a worker and hands the permit back when it
//! is done. The controller admits it only if every rule below holds, in this order, and
//! otherwise sheds it with a [`Rejection`] that says why ([`Reason`]) and when to retry:
//!
//! 1. **Tenant cap.** The tenant holds fewer permits than its cap: the smaller of the cap given
//!    with the request and the cap configured for the tenant
//!    ([`AdmissionController::set_tenant_cap`]).
//! 2. **Partition max.** The partition (a tier: a dense index into
//!    [`AdmissionConfig::partitions`]) holds fewer permits than its optional maximum share.
//! 3. **Capacity.** The limit `L` (fixed, or adaptive) is split as
//!    `L = R + Σ g_p + S`: the critical reserve `R`, each partition's guarantee `g_p`, and the
//!    shared rest `S`. Every share is a configured fraction of the *current* limit, rounded
//!    down, so the split follows the limit when it adapts.
//!    - A [`Priority::Critical`] request takes a reserve slot if one is free. Critical permits
//!      always occupy the reserve first: when a reserve slot frees, the oldest critical permit
//!      charged to the pool moves into it. Normal traffic never uses the reserve.
//!    - Otherwise the request is charged to the pool `P = L - R`. Write `n_p` for the pool
//!      permits of partition `p`, `U_p = max(0, g_p - n_p)` for its unused guarantee and
//!      `O = Σ max(0, n_p - g_p)` for the permits held beyond guarantees. Part of each
//!      guarantee is *lendable* (`lend_p`, a configured fraction of `g_p`); the rest is
//!      *protected*. Permits beyond guarantees may use the shared rest and the lendable part
//!      of other partitions' unused guarantees, so the pool invariant is
//!      `O <= S + Σ min(U_p, lend_p)`: borrowed capacity never eats a protected guarantee, and a
//!      partition below its protected guarantee is always admitted (tenant caps and partition
//!      max aside). A request within its partition's guarantee is admitted iff the invariant
//!      still holds after it; a request beyond its guarantee (a borrower) iff
//!      `O + 1 <= S + Σ min(U_q, lend_q)` over partitions `q` that are not *reclaiming*.
//!    - Work-conserving with reclaim: when a request within its partition's guarantee is shed
//!      because borrowers hold the lendable part, the partition reclaims until the rejection's
//!      `retry_at` (inclusive): no new borrowing of its lendable part, so the slots come back
//!      as borrowers finish, without preempting anyone.
//!
//! With `lendable = 0` a guarantee is strict (idle guarantee slots stay idle); with
//! `lendable = 1` the whole guarantee is borrowable while idle and reclaimed on demand.
//!
//! **Retry hint.** A rejection carries `retry_at = now + retry_after`, or [`SimTime::MAX`] when
//! the request can never be admitted (a tenant cap of zero, a partition whose maximum rounds to
//! zero even at the largest limit, normal traffic when the reserve is the whole limit, an
//! unknown partition).
//!
//! **Adaptive limit (AIMD).** With [`AdmissionConfig::adaptive`] set, the caller reports each
//! permit's [`Outcome`] on release and the limit moves by this exact rule, bounded by
//! `[min_limit, max_limit]`:
//! - *Overload*: [`Outcome::Overload`] (a timeout, a 503 from downstream), or
//!   [`Outcome::Success`] held longer than `overload_latency` (`now - acquired_at`). The limit
//!   becomes `max(min_limit, floor(L · backoff))` and the growth credit resets, but only if the
//!   permit was acquired after the previous decrease: the overloads of one burst, all caused by
//!   work admitted under the old limit, cut the limit once (as TCP cuts its window once per
//!   loss event).
//! - *Success* (not overload): if the in-flight count including this permit is at least
//!   `grow_at_utilization · L`, the growth credit increases by one; when the credit reaches `L`
//!   it resets and the limit becomes `min(max_limit, L + increase)`. So the limit grows by
//!   `increase` per limit's worth of successes (once per round trip at full use), and not at
//!   all while the pool is mostly idle.
//! - [`Outcome::Dropped`] (cancelled, client error, no signal) changes nothing.
//!
//! All shares are converted once to parts per million; every decision is integer arithmetic.
//! When the limit decreases below the in-flight count nothing is revoked: no request is
//! admitted until enough permits are released.
//!
//! A production service keeps one controller per worker pool, calls
//! [`try_acquire`](AdmissionController::try_acquire) before dispatching, answers a rejection
//! with a 503 and a `Retry-After` derived from `retry_at`, and calls
//! [`release`](AdmissionController::release) when the request finishes:
//!
//! ```
//! use std::time::Instant;
//! use tenantsim::components::admission::{
//!     AdmissionConfig, AdmissionController, Outcome, PartitionConfig, Request,
//! };
//! use tenantsim::time::{SimDuration, SimTime};
//!
//! let config = AdmissionConfig {
//!     limit: 10,
//!     partitions: vec![
//!         // Enterprise: 40% of the pool guaranteed, borrowable while idle.
//!         PartitionConfig { guaranteed: 0.4, lendable: 1.0, max: None },
//!         // Free tier: no guarantee, at most 50% of the pool.
//!         PartitionConfig { guaranteed: 0.0, lendable: 0.0, max: Some(0.5) },
//!     ],
//!     critical_reserve: 0.1,
//!     retry_after: SimDuration::from_millis(50),
//!     adaptive: None,
//! };
//! let mut pool = AdmissionController::<String>::new(config).expect("valid configuration");
//! // The caller's wall clock, as in a production service: the component only ever sees
//! // `now` (the simulator passes simulated time, never this clock).
//! let start = Instant::now();
//! let clock = || SimTime::from_nanos(start.elapsed().as_nanos() as u64);
//!
//! let tenant = "acme".to_string();
//! let free_tier = 1;
//! let mut permits = Vec::new();
//! for _ in 0..6 {
//!     match pool.try_acquire(clock(), Request::normal(&tenant, free_tier)) {
//!         Ok(permit) => permits.push(permit),
//!         Err(rejection) => assert!(rejection.retry_at > SimTime::ZERO), // answer 503
//!     }
//! }
//! assert_eq!(permits.len(), 5); // the free tier's maximum share
//! for permit in permits {
//!     pool.release(clock(), permit.id, Outcome::Success).expect("held permit");
//! }
//! assert_eq!(pool.in_flight(), 0);
//! ```

use std::collections::BTreeSet;
use std::hash::Hash;

use super::KeyMap;
use std::fmt;

use crate::time::{SimDuration, SimTime};

/// Parts per million: the fixed-point unit of every configured share.
const PPM: u64 = 1_000_000;

/// `floor(amount · ppm / 10^6)`.
fn share_of(amount: u32, ppm: u32) -> u32 {
    // ppm <= 10^6, so the result is at most `amount` and fits.
    (u64::from(amount) * u64::from(ppm) / PPM) as u32
}

/// A fraction in `[0, 1]` as parts per million, or `None` if it is not one.
fn fraction_to_ppm(value: f64) -> Option<u32> {
    if value.is_finite() && (0.0..=1.0).contains(&value) {
        Some((value * PPM as f64).round() as u32)
    } else {
        None
    }
}

/// How urgent a request is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// Ordinary traffic: never uses the critical reserve.
    Normal,
    /// Traffic that may use the critical reserve (health checks, control-plane calls,
    /// requests that release resources).
    Critical,
}

/// One partition (tier) of the pool. Shares are fractions of the current limit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PartitionConfig {
    /// Fraction of the limit guaranteed to this partition, in `[0, 1]`.
    pub guaranteed: f64,
    /// Fraction of the guarantee that other partitions may borrow while it is unused, in
    /// `[0, 1]`: 0 makes the guarantee strict, 1 makes it fully work-conserving.
    pub lendable: f64,
    /// Largest fraction of the limit this partition may hold, in `[guaranteed, 1]`; `None` for
    /// no maximum beyond the limit itself.
    pub max: Option<f64>,
}

impl PartitionConfig {
    /// A partition with no guarantee and no maximum: it lives on the shared rest and on what it
    /// can borrow.
    pub const SHARED: PartitionConfig = PartitionConfig {
        guaranteed: 0.0,
        lendable: 0.0,
        max: None,
    };
}

/// The AIMD rule's parameters (see the module documentation for the exact rule).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdaptiveLimit {
    /// Lowest limit (at least 1).
    pub min_limit: u32,
    /// Highest limit (at least `min_limit`).
    pub max_limit: u32,
    /// Additive step: added once per limit's worth of successes at high use (at least 1).
    pub increase: u32,
    /// Multiplicative decrease factor on overload, in `(0, 1)`.
    pub backoff: f64,
    /// Grow only on successes released while at least this fraction of the limit is in use,
    /// in `[0, 1]`.
    pub grow_at_utilization: f64,
    /// A success that held its permit longer than this counts as an overload signal; `None` to
    /// ignore latency.
    pub overload_latency: Option<SimDuration>,
}

/// An admission controller's configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct AdmissionConfig {
    /// The concurrency limit (the initial limit when adaptive), at least 1.
    pub limit: u32,
    /// The partitions (tiers), indexed densely from 0; at least one.
    pub partitions: Vec<PartitionConfig>,
    /// Fraction of the limit only [`Priority::Critical`] traffic may use, in `[0, 1]`. The
    /// reserve and all guarantees together may not exceed the whole limit.
    pub critical_reserve: f64,
    /// How long a shed request should wait before retrying (`retry_at = now + retry_after`),
    /// and how long a partition refused its guarantee reclaims it.
    pub retry_after: SimDuration,
    /// The AIMD adaptive limit, or `None` for a fixed limit.
    pub adaptive: Option<AdaptiveLimit>,
}

impl AdmissionConfig {
    /// A fixed limit with one partition and no reserve.
    pub fn single_pool(limit: u32, retry_after: SimDuration) -> AdmissionConfig {
        AdmissionConfig {
            limit,
            partitions: vec![PartitionConfig::SHARED],
            critical_reserve: 0.0,
            retry_after,
            adaptive: None,
        }
    }
}

/// Why a configuration is invalid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdmissionConfigError {
    /// The limit is zero.
    ZeroLimit,
    /// No partition is configured.
    NoPartitions,
    /// A share is not a number in `[0, 1]` (the field is named).
    InvalidShare {
        /// Which field, as in `partitions[1].guaranteed`.
        field: String,
    },
    /// A partition's maximum is below its guarantee.
    MaxBelowGuarantee {
        /// The partition index.
        partition: usize,
    },
    /// The guarantees and the critical reserve add up to more than the whole limit.
    Oversubscribed {
        /// Their sum, in parts per million of the limit.
        total_ppm: u64,
    },
    /// The adaptive limit's parameters are inconsistent (explained in the message).
    Adaptive(&'static str),
}

impl fmt::Display for AdmissionConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdmissionConfigError::ZeroLimit => {
                write!(f, "the concurrency limit must be at least 1")
            }
            AdmissionConfigError::NoPartitions => {
                write!(
                    f,
                    "at least one partition is needed (use PartitionConfig::SHARED for one pool)"
                )
            }
            AdmissionConfigError::InvalidShare { field } => {
                write!(f, "`{field}` must be a fraction between 0 and 1")
            }
            AdmissionConfigError::MaxBelowGuarantee { partition } => write!(
                f,
                "partitions[{partition}].max is below partitions[{partition}].guaranteed"
            ),
            AdmissionConfigError::Oversubscribed { total_ppm } => write!(
                f,
                "the guarantees and the critical reserve add up to {:.4} of the limit; at most 1 \
                 is possible",
                *total_ppm as f64 / PPM as f64
            ),
            AdmissionConfigError::Adaptive(why) => write!(f, "adaptive limit: {why}"),
        }
    }
}

impl std::error::Error for AdmissionConfigError {}

/// One admission request.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a, T> {
    /// The tenant the work is for.
    pub tenant: &'a T,
    /// The partition (tier) index.
    pub partition: usize,
    /// Whether it may use the critical reserve.
    pub priority: Priority,
    /// A cap on the tenant's permits for this call; the configured cap, if any, also applies
    /// (the smaller wins).
    pub tenant_cap: Option<u32>,
}

impl<'a, T> Request<'a, T> {
    /// A normal-priority request with no per-call cap.
    pub fn normal(tenant: &'a T, partition: usize) -> Request<'a, T> {
        Request {
            tenant,
            partition,
            priority: Priority::Normal,
            tenant_cap: None,
        }
    }

    /// A critical request with no per-call cap.
    pub fn critical(tenant: &'a T, partition: usize) -> Request<'a, T> {
        Request {
            priority: Priority::Critical,
            ..Request::normal(tenant, partition)
        }
    }

    /// The same request with a per-call tenant cap.
    pub fn with_tenant_cap(self, cap: u32) -> Request<'a, T> {
        Request {
            tenant_cap: Some(cap),
            ..self
        }
    }
}

/// A permit's identity: its slot in the controller's permit table (low 32 bits) and how many
/// permits that slot issued before it (high 32 bits), so a release finds its record by index,
/// without hashing, and a stale id is told from the held one. Unique for the controller's
/// lifetime unless one slot is reused 2^32 times.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PermitId(u64);

impl PermitId {
    /// The id as a number (for logs or storage).
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// An id from a number previously obtained with [`PermitId::as_u64`].
    pub const fn from_u64(id: u64) -> PermitId {
        PermitId(id)
    }
}

/// The right to occupy one slot of the pool until released.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permit {
    /// Pass it to [`AdmissionController::release`].
    pub id: PermitId,
    /// When it was granted.
    pub acquired_at: SimTime,
}

/// Why a request was shed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The tenant already holds its cap of permits.
    TenantCap,
    /// The partition already holds its maximum share.
    PartitionFull,
    /// No capacity this request may use: the limit is in use, apart from capacity protected
    /// for other partitions' guarantees (and, for normal traffic, the critical reserve).
    PoolFull,
    /// The partition index is not configured.
    UnknownPartition,
}

/// A shed request: why, and when retrying makes sense.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// Why it was shed.
    pub reason: Reason,
    /// Earliest sensible retry time; [`SimTime::MAX`] if it can never be admitted.
    pub retry_at: SimTime,
}

/// What happened to the work a permit covered, reported on release.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done; its latency is the time the permit was held (`now - acquired_at`).
    Success,
    /// A sign of overload downstream: a timeout, a 503, a rejected connection.
    Overload,
    /// No signal about load (cancelled, client error): the limit does not move.
    Dropped,
}

/// Misuse of [`AdmissionController::release`]. Nothing changes when it is returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdmissionError {
    /// The permit was issued and already released.
    AlreadyReleased(PermitId),
    /// This controller never issued the permit.
    UnknownPermit(PermitId),
}

impl fmt::Display for AdmissionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdmissionError::AlreadyReleased(id) => {
                write!(f, "permit {} was already released", id.0)
            }
            AdmissionError::UnknownPermit(id) => {
                write!(f, "permit {} was never issued by this controller", id.0)
            }
        }
    }
}

impl std::error::Error for AdmissionError {}

#[derive(Clone, Debug)]
struct Partition {
    guaranteed_ppm: u32,
    /// Fraction of the guarantee that may be lent, in ppm of the guarantee.
    lendable_ppm: u32,
    max_ppm: Option<u32>,
    /// Permits charged to the pool (not the reserve).
    pool_in_flight: u32,
    /// All permits, pool and reserve.
    in_flight: u32,
    /// While `now <= reclaim_until`, the lendable part of the guarantee is not lent.
    reclaim_until: Option<SimTime>,
}

#[derive(Clone, Debug)]
struct Aimd {
    min_limit: u32,
    max_limit: u32,
    increase: u32,
    backoff_ppm: u32,
    grow_at_ppm: u32,
    overload_latency: Option<SimDuration>,
    /// Qualifying successes since the last change.
    credit: u32,
    /// Number of decreases so far; permits remember it to ignore overloads from before a cut.
    decreases: u64,
}

#[derive(Clone, Debug)]
struct PermitRecord<T> {
    /// Order of issue over the controller's lifetime (oldest first for the reserve).
    serial: u64,
    tenant: T,
    partition: usize,
    priority: Priority,
    in_reserve: bool,
    acquired_at: SimTime,
    decreases_at_acquire: u64,
}

/// The admission controller of one worker pool, generic over the tenant key.
#[derive(Clone, Debug)]
pub struct AdmissionController<T> {
    limit: u32,
    reserve_ppm: u32,
    retry_after: SimDuration,
    partitions: Vec<Partition>,
    adaptive: Option<Aimd>,
    tenant_caps: KeyMap<T, u32>,
    /// Permits per tenant; entries are removed at zero so memory follows the tenants in flight.
    tenant_in_flight: KeyMap<T, u32>,
    /// The permit table: a slot per permit held at the busiest moment so far, reused through
    /// `free_slots` (last freed first), so a release is an index, not a hash lookup.
    permits: Vec<PermitSlot<T>>,
    free_slots: Vec<u32>,
    held: u32,
    /// Critical permits charged to the pool because the reserve was full, oldest first:
    /// `(serial, slot)`.
    critical_in_pool: BTreeSet<(u64, u32)>,
    reserve_in_use: u32,
    /// Permits issued so far (the next permit's serial).
    next_id: u64,
    /// No critical reserve and no partition guarantee (what a pool without tier shares has):
    /// the capacity rule is then `in_flight < limit` alone, and a request needs none of the
    /// per-partition sums.
    plain: bool,
}

/// One slot of the permit table.
#[derive(Clone, Debug)]
struct PermitSlot<T> {
    /// Permits this slot has issued; the one held, if any, is number `issued - 1`.
    issued: u32,
    record: Option<PermitRecord<T>>,
}

impl<T: Hash + Eq + Clone> AdmissionController<T> {
    /// A controller with nothing in flight, or an error naming the invalid setting.
    pub fn new(config: AdmissionConfig) -> Result<AdmissionController<T>, AdmissionConfigError> {
        if config.limit == 0 {
            return Err(AdmissionConfigError::ZeroLimit);
        }
        if config.partitions.is_empty() {
            return Err(AdmissionConfigError::NoPartitions);
        }
        let share = |value: f64, field: String| {
            fraction_to_ppm(value).ok_or(AdmissionConfigError::InvalidShare { field })
        };
        let reserve_ppm = share(config.critical_reserve, "critical_reserve".to_string())?;
        let mut total_ppm = u64::from(reserve_ppm);
        let mut partitions = Vec::with_capacity(config.partitions.len());
        for (i, p) in config.partitions.iter().enumerate() {
            let guaranteed_ppm = share(p.guaranteed, format!("partitions[{i}].guaranteed"))?;
            let lendable_ppm = share(p.lendable, format!("partitions[{i}].lendable"))?;
            let max_ppm = match p.max {
                Some(max) => {
                    let max_ppm = share(max, format!("partitions[{i}].max"))?;
                    if max_ppm < guaranteed_ppm {
                        return Err(AdmissionConfigError::MaxBelowGuarantee { partition: i });
                    }
                    Some(max_ppm)
                }
                None => None,
            };
            total_ppm += u64::from(guaranteed_ppm);
            partitions.push(Partition {
                guaranteed_ppm,
                lendable_ppm,
                max_ppm,
                pool_in_flight: 0,
                in_flight: 0,
                reclaim_until: None,
            });
        }
        if total_ppm > PPM {
            return Err(AdmissionConfigError::Oversubscribed { total_ppm });
        }
        let adaptive = match config.adaptive {
            None => None,
            Some(a) => {
                if a.min_limit == 0 {
                    return Err(AdmissionConfigError::Adaptive(
                        "min_limit must be at least 1",
                    ));
                }
                if !(a.min_limit <= config.limit && config.limit <= a.max_limit) {
                    return Err(AdmissionConfigError::Adaptive(
                        "the initial limit must lie within [min_limit, max_limit]",
                    ));
                }
                if a.increase == 0 {
                    return Err(AdmissionConfigError::Adaptive(
                        "increase must be at least 1",
                    ));
                }
                let backoff_ppm = match fraction_to_ppm(a.backoff) {
                    Some(ppm) if a.backoff > 0.0 && u64::from(ppm) < PPM => ppm,
                    _ => {
                        return Err(AdmissionConfigError::Adaptive(
                            "backoff must lie strictly between 0 and 1 (for example 0.9)",
                        ));
                    }
                };
                let grow_at_ppm = fraction_to_ppm(a.grow_at_utilization).ok_or(
                    AdmissionConfigError::Adaptive("grow_at_utilization must lie within [0, 1]"),
                )?;
                Some(Aimd {
                    min_limit: a.min_limit,
                    max_limit: a.max_limit,
                    increase: a.increase,
                    backoff_ppm,
                    grow_at_ppm,
                    overload_latency: a.overload_latency,
                    credit: 0,
                    decreases: 0,
                })
            }
        };
        let plain = reserve_ppm == 0 && partitions.iter().all(|p| p.guaranteed_ppm == 0);
        Ok(AdmissionController {
            limit: config.limit,
            reserve_ppm,
            retry_after: config.retry_after,
            partitions,
            adaptive,
            tenant_caps: KeyMap::default(),
            tenant_in_flight: KeyMap::default(),
            permits: Vec::new(),
            free_slots: Vec::new(),
            held: 0,
            critical_in_pool: BTreeSet::new(),
            reserve_in_use: 0,
            next_id: 0,
            plain,
        })
    }

    /// Configures (`Some`) or removes (`None`) a standing cap on `tenant`'s permits. Lowering a
    /// cap below the tenant's current permits revokes nothing; new requests wait.
    pub fn set_tenant_cap(&mut self, tenant: T, cap: Option<u32>) {
        match cap {
            Some(cap) => {
                self.tenant_caps.insert(tenant, cap);
            }
            None => {
                self.tenant_caps.swap_remove(&tenant);
            }
        }
    }

    /// Admits the request and returns its permit, or sheds it (see the module documentation
    /// for the rules). A rejection changes nothing except, for a request refused within its
    /// partition's guarantee, starting that partition's reclaim.
    pub fn try_acquire(
        &mut self,
        now: SimTime,
        request: Request<'_, T>,
    ) -> Result<Permit, Rejection> {
        let retry_at = now + self.retry_after;
        let p = request.partition;
        let Some(partition) = self.partitions.get(p) else {
            return Err(Rejection {
                reason: Reason::UnknownPartition,
                retry_at: SimTime::MAX,
            });
        };

        let configured_cap = self.tenant_caps.get(request.tenant).copied();
        let cap = match (request.tenant_cap, configured_cap) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(cap) = cap
            && self.tenant_in_flight(request.tenant) >= cap
        {
            return Err(Rejection {
                reason: Reason::TenantCap,
                retry_at: if cap == 0 { SimTime::MAX } else { retry_at },
            });
        }

        if let Some(max_ppm) = partition.max_ppm
            && partition.in_flight >= share_of(self.limit, max_ppm)
        {
            let never = share_of(self.max_possible_limit(), max_ppm) == 0;
            return Err(Rejection {
                reason: Reason::PartitionFull,
                retry_at: if never { SimTime::MAX } else { retry_at },
            });
        }

        let in_flight = self.in_flight();
        let fits_limit = in_flight < self.limit;
        if self.plain {
            // With no reserve and no guarantees every share is zero: nothing is held in the
            // reserve, no partition is within its guarantee (so none reclaims), nothing can be
            // lent, and the pool rule comes down to `in_flight < limit`; nor is a normal request
            // ever refused for good (the limit is at least 1).
            if !fits_limit {
                return Err(Rejection {
                    reason: Reason::PoolFull,
                    retry_at,
                });
            }
            return Ok(self.issue(now, request, false));
        }
        let in_reserve = request.priority == Priority::Critical
            && fits_limit
            && self.reserve_in_use < self.reserve();
        if !in_reserve {
            let within_guarantee = partition.pool_in_flight < self.guaranteed(p);
            let pool_admits =
                fits_limit && self.pool_in_flight() < self.pool_limit() && self.pool_admits(now, p);
            if !pool_admits {
                if within_guarantee {
                    self.partitions[p].reclaim_until = Some(retry_at);
                }
                let max_limit = self.max_possible_limit();
                let never = request.priority == Priority::Normal
                    && max_limit == share_of(max_limit, self.reserve_ppm);
                return Err(Rejection {
                    reason: Reason::PoolFull,
                    retry_at: if never { SimTime::MAX } else { retry_at },
                });
            }
        }

        Ok(self.issue(now, request, in_reserve))
    }

    /// Issues an admitted request its permit (in the reserve or charged to the pool). Always
    /// inlined into `try_acquire`'s two admitting paths: it is their whole remaining work.
    #[inline(always)]
    fn issue(&mut self, now: SimTime, request: Request<'_, T>, in_reserve: bool) -> Permit {
        let p = request.partition;
        let serial = self.next_id;
        self.next_id += 1;
        let slot = match self.free_slots.pop() {
            Some(slot) => slot,
            None => {
                self.permits.push(PermitSlot {
                    issued: 0,
                    record: None,
                });
                (self.permits.len() - 1) as u32
            }
        };
        let partition = &mut self.partitions[p];
        partition.in_flight += 1;
        if in_reserve {
            self.reserve_in_use += 1;
        } else {
            partition.pool_in_flight += 1;
            if request.priority == Priority::Critical {
                self.critical_in_pool.insert((serial, slot));
            }
        }
        match self
            .tenant_index(request.tenant)
            .and_then(|i| self.tenant_in_flight.get_index_mut(i))
        {
            Some((_, count)) => *count += 1,
            None => {
                self.tenant_in_flight.insert(request.tenant.clone(), 1);
            }
        }
        let entry = &mut self.permits[slot as usize];
        let generation = entry.issued;
        entry.issued = entry.issued.wrapping_add(1);
        entry.record = Some(PermitRecord {
            serial,
            tenant: request.tenant.clone(),
            partition: p,
            priority: request.priority,
            in_reserve,
            acquired_at: now,
            decreases_at_acquire: self.adaptive.as_ref().map_or(0, |a| a.decreases),
        });
        self.held += 1;
        Permit {
            id: PermitId(u64::from(generation) << 32 | u64::from(slot)),
            acquired_at: now,
        }
    }

    /// Returns a permit's slot and, with an adaptive limit, applies the AIMD rule to `outcome`.
    /// Releasing a permit twice, or one this controller never issued, is an error and changes
    /// nothing.
    pub fn release(
        &mut self,
        now: SimTime,
        permit: PermitId,
        outcome: Outcome,
    ) -> Result<(), AdmissionError> {
        let slot = permit.0 as u32;
        let generation = (permit.0 >> 32) as u32;
        let Some(entry) = self.permits.get_mut(slot as usize) else {
            return Err(AdmissionError::UnknownPermit(permit));
        };
        let current = entry.issued.wrapping_sub(1);
        if generation > current || entry.issued == 0 {
            return Err(AdmissionError::UnknownPermit(permit));
        }
        if generation < current {
            return Err(AdmissionError::AlreadyReleased(permit));
        }
        let Some(record) = entry.record.take() else {
            return Err(AdmissionError::AlreadyReleased(permit));
        };
        self.free_slots.push(slot);
        self.held -= 1;
        let in_flight_before = self.in_flight() + 1;
        if let Some(index) = self.tenant_index(&record.tenant) {
            let count = &mut self.tenant_in_flight[index];
            *count -= 1;
            if *count == 0 {
                self.tenant_in_flight.swap_remove_index(index);
            }
        }
        let partition = &mut self.partitions[record.partition];
        partition.in_flight -= 1;
        if record.in_reserve {
            self.reserve_in_use -= 1;
        } else {
            partition.pool_in_flight -= 1;
            if record.priority == Priority::Critical {
                self.critical_in_pool.remove(&(record.serial, slot));
            }
        }
        self.adapt(now, &record, outcome, in_flight_before);
        self.fill_reserve();
        Ok(())
    }

    /// The current concurrency limit.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Permits held.
    pub fn in_flight(&self) -> u32 {
        self.held
    }

    /// Permits held by `tenant`.
    pub fn tenant_in_flight(&self, tenant: &T) -> u32 {
        self.tenant_index(tenant)
            .map_or(0, |i| self.tenant_in_flight[i])
    }

    /// Where `tenant` is in the per-tenant table: a scan while the table is as small as a
    /// cache line's worth of entries (a pool with a few tenants in flight, the usual case;
    /// cheaper than hashing and probing), a hash lookup beyond.
    #[inline]
    fn tenant_index(&self, tenant: &T) -> Option<usize> {
        const SCAN_UP_TO: usize = 4;
        if self.tenant_in_flight.len() <= SCAN_UP_TO {
            self.tenant_in_flight.keys().position(|t| t == tenant)
        } else {
            self.tenant_in_flight.get_index_of(tenant)
        }
    }

    /// Tenants holding at least one permit (the size of the per-tenant table).
    pub fn tenants_in_flight(&self) -> usize {
        self.tenant_in_flight.len()
    }

    /// Permits held by a partition (pool and reserve); 0 for an unknown index.
    pub fn partition_in_flight(&self, partition: usize) -> u32 {
        self.partitions.get(partition).map_or(0, |p| p.in_flight)
    }

    /// Number of partitions.
    pub fn partitions(&self) -> usize {
        self.partitions.len()
    }

    /// A partition's guarantee at the current limit, in slots; 0 for an unknown index.
    pub fn guaranteed(&self, partition: usize) -> u32 {
        self.partitions
            .get(partition)
            .map_or(0, |p| share_of(self.limit, p.guaranteed_ppm))
    }

    /// A partition's maximum at the current limit, in slots (`None` if it has none).
    pub fn partition_max(&self, partition: usize) -> Option<u32> {
        self.partitions
            .get(partition)
            .and_then(|p| p.max_ppm)
            .map(|ppm| share_of(self.limit, ppm))
    }

    /// The critical reserve at the current limit, in slots.
    pub fn reserve(&self) -> u32 {
        share_of(self.limit, self.reserve_ppm)
    }

    /// Critical permits occupying the reserve.
    pub fn reserve_in_use(&self) -> u32 {
        self.reserve_in_use
    }

    /// The limit minus the critical reserve: what normal traffic may use.
    pub fn pool_limit(&self) -> u32 {
        self.limit - self.reserve()
    }

    fn pool_in_flight(&self) -> u32 {
        self.in_flight() - self.reserve_in_use
    }

    fn max_possible_limit(&self) -> u32 {
        self.adaptive.as_ref().map_or(self.limit, |a| a.max_limit)
    }

    /// The capacity rule for a request of partition `p` charged to the pool.
    fn pool_admits(&self, now: SimTime, p: usize) -> bool {
        let limit = self.limit;
        let mut beyond_guarantees = 0u64;
        let mut guarantees = 0u64;
        let mut lendable_unused = 0u64;
        let mut lendable_unused_not_reclaimed = 0u64;
        for (q, part) in self.partitions.iter().enumerate() {
            let g = share_of(limit, part.guaranteed_ppm);
            let lend = share_of(g, part.lendable_ppm);
            let n = part.pool_in_flight;
            guarantees += u64::from(g);
            beyond_guarantees += u64::from(n.saturating_sub(g));
            if q == p {
                continue;
            }
            let lent_able = u64::from(g.saturating_sub(n).min(lend));
            lendable_unused += lent_able;
            let reclaiming = part.reclaim_until.is_some_and(|until| now <= until);
            if !reclaiming {
                lendable_unused_not_reclaimed += lent_able;
            }
        }
        let shared = u64::from(self.pool_limit()).saturating_sub(guarantees);
        let own = &self.partitions[p];
        let g = share_of(limit, own.guaranteed_ppm);
        if own.pool_in_flight < g {
            let lend = share_of(g, own.lendable_ppm);
            let own_lendable_after = u64::from((g - own.pool_in_flight - 1).min(lend));
            beyond_guarantees <= shared + lendable_unused + own_lendable_after
        } else {
            // One more permit beyond guarantees must still fit.
            beyond_guarantees < shared + lendable_unused_not_reclaimed
        }
    }

    /// The AIMD rule (module documentation).
    fn adapt(
        &mut self,
        now: SimTime,
        record: &PermitRecord<T>,
        outcome: Outcome,
        in_flight_before: u32,
    ) {
        let Some(aimd) = self.adaptive.as_mut() else {
            return;
        };
        let held = now.saturating_since(record.acquired_at);
        let overload = match outcome {
            Outcome::Dropped => return,
            Outcome::Overload => true,
            Outcome::Success => aimd.overload_latency.is_some_and(|limit| held > limit),
        };
        if overload {
            if record.decreases_at_acquire == aimd.decreases {
                self.limit = share_of(self.limit, aimd.backoff_ppm).max(aimd.min_limit);
                aimd.credit = 0;
                aimd.decreases += 1;
            }
            return;
        }
        let busy = u64::from(in_flight_before) * PPM
            >= u64::from(aimd.grow_at_ppm) * u64::from(self.limit);
        if busy {
            aimd.credit += 1;
            if aimd.credit >= self.limit {
                aimd.credit = 0;
                self.limit = self.limit.saturating_add(aimd.increase).min(aimd.max_limit);
            }
        }
    }

    /// Moves the oldest critical permits charged to the pool into free reserve slots.
    fn fill_reserve(&mut self) {
        while self.reserve_in_use < self.reserve() {
            let Some((_, slot)) = self.critical_in_pool.pop_first() else {
                return;
            };
            let record = self.permits[slot as usize]
                .record
                .as_mut()
                .expect("critical_in_pool only holds slots of permits held");
            record.in_reserve = true;
            self.partitions[record.partition].pool_in_flight -= 1;
            self.reserve_in_use += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use proptest::prelude::*;

    const RETRY_AFTER: SimDuration = SimDuration::from_millis(10);

    fn partition(guaranteed: f64, lendable: f64, max: Option<f64>) -> PartitionConfig {
        PartitionConfig {
            guaranteed,
            lendable,
            max,
        }
    }

    fn config(limit: u32, partitions: Vec<PartitionConfig>, reserve: f64) -> AdmissionConfig {
        AdmissionConfig {
            limit,
            partitions,
            critical_reserve: reserve,
            retry_after: RETRY_AFTER,
            adaptive: None,
        }
    }

    fn at(ms: u64) -> SimTime {
        SimTime::ZERO + SimDuration::from_millis(ms)
    }

    fn acquire(
        ctl: &mut AdmissionController<u8>,
        now: SimTime,
        tenant: u8,
        partition: usize,
    ) -> Result<Permit, Rejection> {
        ctl.try_acquire(now, Request::normal(&tenant, partition))
    }

    #[test]
    fn invalid_configurations_are_errors() {
        let ok = || config(10, vec![PartitionConfig::SHARED], 0.0);
        let err = |c: AdmissionConfig| AdmissionController::<u8>::new(c).err();
        assert_eq!(
            err(AdmissionConfig { limit: 0, ..ok() }),
            Some(AdmissionConfigError::ZeroLimit)
        );
        assert_eq!(
            err(AdmissionConfig {
                partitions: vec![],
                ..ok()
            }),
            Some(AdmissionConfigError::NoPartitions)
        );
        let e = err(AdmissionConfig {
            partitions: vec![partition(f64::NAN, 0.0, None)],
            ..ok()
        })
        .unwrap();
        assert_eq!(
            e.to_string(),
            "`partitions[0].guaranteed` must be a fraction between 0 and 1"
        );
        assert_eq!(
            err(AdmissionConfig {
                partitions: vec![partition(0.5, 0.0, Some(0.4))],
                ..ok()
            }),
            Some(AdmissionConfigError::MaxBelowGuarantee { partition: 0 })
        );
        assert!(matches!(
            err(AdmissionConfig {
                partitions: vec![partition(0.6, 0.0, None), partition(0.3, 0.0, None)],
                critical_reserve: 0.2,
                ..ok()
            }),
            Some(AdmissionConfigError::Oversubscribed { .. })
        ));
        let adaptive = AdaptiveLimit {
            min_limit: 1,
            max_limit: 20,
            increase: 1,
            backoff: 0.5,
            grow_at_utilization: 0.5,
            overload_latency: None,
        };
        for bad in [
            AdaptiveLimit {
                min_limit: 0,
                ..adaptive
            },
            AdaptiveLimit {
                max_limit: 5,
                ..adaptive
            },
            AdaptiveLimit {
                backoff: 1.0,
                ..adaptive
            },
            AdaptiveLimit {
                backoff: 0.0,
                ..adaptive
            },
            AdaptiveLimit {
                increase: 0,
                ..adaptive
            },
            AdaptiveLimit {
                grow_at_utilization: 1.5,
                ..adaptive
            },
        ] {
            let e = err(AdmissionConfig {
                adaptive: Some(bad),
                ..ok()
            });
            assert!(
                matches!(e, Some(AdmissionConfigError::Adaptive(_))),
                "{bad:?}"
            );
        }
        assert!(
            AdmissionController::<u8>::new(AdmissionConfig {
                adaptive: Some(adaptive),
                ..ok()
            })
            .is_ok()
        );
    }

    #[test]
    fn caps_and_partition_max_shed_with_reasons_and_hints() {
        let mut ctl = AdmissionController::<u8>::new(config(
            10,
            vec![
                partition(0.0, 0.0, Some(0.3)),
                partition(0.0, 0.0, Some(0.0)),
            ],
            0.0,
        ))
        .unwrap();
        let now = at(1);
        assert!(
            ctl.try_acquire(now, Request::normal(&1, 0).with_tenant_cap(1))
                .is_ok()
        );
        assert_eq!(
            ctl.try_acquire(now, Request::normal(&1, 0).with_tenant_cap(1)),
            Err(Rejection {
                reason: Reason::TenantCap,
                retry_at: now + RETRY_AFTER
            })
        );
        ctl.set_tenant_cap(2, Some(0));
        assert_eq!(
            acquire(&mut ctl, now, 2, 0),
            Err(Rejection {
                reason: Reason::TenantCap,
                retry_at: SimTime::MAX
            })
        );
        ctl.set_tenant_cap(2, None);
        assert!(acquire(&mut ctl, now, 2, 0).is_ok());
        assert!(acquire(&mut ctl, now, 3, 0).is_ok());
        assert_eq!(
            acquire(&mut ctl, now, 4, 0).map_err(|r| r.reason),
            Err(Reason::PartitionFull)
        );
        assert_eq!(
            acquire(&mut ctl, now, 4, 1),
            Err(Rejection {
                reason: Reason::PartitionFull,
                retry_at: SimTime::MAX
            })
        );
        assert_eq!(
            acquire(&mut ctl, now, 4, 7),
            Err(Rejection {
                reason: Reason::UnknownPartition,
                retry_at: SimTime::MAX
            })
        );
        assert_eq!(ctl.in_flight(), 3);
    }

    #[test]
    fn strict_guarantee_holds_idle_slots_for_its_partition() {
        // Limit 10: partition 0 guaranteed 4 (strict), partition 1 shares the other 6.
        let mut ctl = AdmissionController::<u8>::new(config(
            10,
            vec![partition(0.4, 0.0, None), PartitionConfig::SHARED],
            0.0,
        ))
        .unwrap();
        let now = at(1);
        for _ in 0..6 {
            assert!(acquire(&mut ctl, now, 1, 1).is_ok());
        }
        assert_eq!(
            acquire(&mut ctl, now, 1, 1).map_err(|r| r.reason),
            Err(Reason::PoolFull)
        );
        for _ in 0..4 {
            assert!(acquire(&mut ctl, now, 2, 0).is_ok());
        }
        assert_eq!(ctl.in_flight(), 10);
    }

    #[test]
    fn lendable_guarantee_is_borrowed_while_idle_and_reclaimed_on_demand() {
        let mut ctl = AdmissionController::<u8>::new(config(
            10,
            vec![partition(0.4, 1.0, None), PartitionConfig::SHARED],
            0.0,
        ))
        .unwrap();
        let now = at(1);
        // Partition 1 borrows the idle guarantee: work-conserving.
        let borrowed: Vec<Permit> = (0..10)
            .map(|_| acquire(&mut ctl, now, 1, 1).unwrap())
            .collect();
        // Partition 0 is refused its guarantee and starts reclaiming.
        let refused = acquire(&mut ctl, now, 2, 0).unwrap_err();
        assert_eq!(refused.reason, Reason::PoolFull);
        ctl.release(now, borrowed[0].id, Outcome::Success).unwrap();
        // While reclaiming, the freed slot is not lent again...
        assert_eq!(
            acquire(&mut ctl, now, 1, 1).map_err(|r| r.reason),
            Err(Reason::PoolFull)
        );
        // ...so the owner gets it.
        assert!(acquire(&mut ctl, now, 2, 0).is_ok());
        // After the reclaim period, borrowing resumes.
        ctl.release(now, borrowed[1].id, Outcome::Success).unwrap();
        let later = refused.retry_at + SimDuration::from_nanos(1);
        assert!(acquire(&mut ctl, later, 1, 1).is_ok());
    }

    #[test]
    fn critical_permits_fill_the_reserve_first() {
        // Limit 10, reserve 2.
        let mut ctl =
            AdmissionController::<u8>::new(config(10, vec![PartitionConfig::SHARED], 0.2)).unwrap();
        let now = at(1);
        let critical: Vec<Permit> = (0..3)
            .map(|_| ctl.try_acquire(now, Request::critical(&1, 0)).unwrap())
            .collect();
        assert_eq!(ctl.reserve_in_use(), 2);
        // 8 pool slots, one taken by the third critical permit.
        for _ in 0..7 {
            assert!(acquire(&mut ctl, now, 2, 0).is_ok());
        }
        assert_eq!(
            acquire(&mut ctl, now, 2, 0).map_err(|r| r.reason),
            Err(Reason::PoolFull)
        );
        // A reserve slot frees: the pooled critical permit moves into it, freeing a pool slot.
        ctl.release(now, critical[0].id, Outcome::Success).unwrap();
        assert_eq!(ctl.reserve_in_use(), 2);
        assert!(acquire(&mut ctl, now, 2, 0).is_ok());
        assert_eq!(ctl.in_flight(), 10);
    }

    #[test]
    fn release_misuse_is_an_error() {
        let mut ctl =
            AdmissionController::<u8>::new(AdmissionConfig::single_pool(2, RETRY_AFTER)).unwrap();
        let permit = acquire(&mut ctl, at(1), 1, 0).unwrap();
        assert_eq!(ctl.release(at(2), permit.id, Outcome::Success), Ok(()));
        assert_eq!(
            ctl.release(at(2), permit.id, Outcome::Success),
            Err(AdmissionError::AlreadyReleased(permit.id))
        );
        let bogus = PermitId::from_u64(99);
        assert_eq!(
            ctl.release(at(2), bogus, Outcome::Success),
            Err(AdmissionError::UnknownPermit(bogus))
        );
        assert_eq!(ctl.in_flight(), 0);
        assert_eq!(ctl.tenants_in_flight(), 0);
    }

    #[test]
    fn aimd_cuts_once_per_burst_and_grows_once_per_window() {
        let mut ctl = AdmissionController::<u8>::new(AdmissionConfig {
            adaptive: Some(AdaptiveLimit {
                min_limit: 2,
                max_limit: 12,
                increase: 2,
                backoff: 0.5,
                grow_at_utilization: 0.5,
                overload_latency: Some(SimDuration::from_millis(100)),
            }),
            ..AdmissionConfig::single_pool(10, RETRY_AFTER)
        })
        .unwrap();
        let burst: Vec<Permit> = (0..10)
            .map(|_| acquire(&mut ctl, at(0), 1, 0).unwrap())
            .collect();
        ctl.release(at(5), burst[0].id, Outcome::Overload).unwrap();
        assert_eq!(ctl.limit(), 5);
        // Later overloads of permits admitted before the cut do not cut again; a slow success
        // of such a permit neither.
        ctl.release(at(6), burst[1].id, Outcome::Overload).unwrap();
        ctl.release(at(500), burst[2].id, Outcome::Success).unwrap();
        assert_eq!(ctl.limit(), 5);
        for p in &burst[3..] {
            ctl.release(at(7), p.id, Outcome::Dropped).unwrap();
        }
        assert_eq!(ctl.limit(), 5);
        // Five successes at full use grow the limit by `increase`, then it is capped.
        for _ in 0..5 {
            let p = acquire(&mut ctl, at(8), 1, 0).unwrap();
            let q = acquire(&mut ctl, at(8), 1, 0).unwrap();
            let r = acquire(&mut ctl, at(8), 1, 0).unwrap();
            ctl.release(at(9), p.id, Outcome::Success).unwrap();
            ctl.release(at(9), q.id, Outcome::Dropped).unwrap();
            ctl.release(at(9), r.id, Outcome::Dropped).unwrap();
        }
        assert_eq!(ctl.limit(), 7);
        // A slow success of a permit acquired after the cut is an overload.
        let slow = acquire(&mut ctl, at(10), 1, 0).unwrap();
        ctl.release(at(200), slow.id, Outcome::Success).unwrap();
        assert_eq!(ctl.limit(), 3);
    }

    // ---- Property tests -------------------------------------------------------------------

    #[derive(Clone, Debug)]
    enum Op {
        Acquire {
            tenant: u8,
            partition: usize,
            critical: bool,
            cap: Option<u32>,
        },
        Release {
            pick: usize,
            outcome: Outcome,
        },
        ReleaseAgain {
            pick: usize,
        },
        ReleaseUnknown {
            offset: u64,
        },
        Advance {
            ms: u64,
        },
    }

    fn outcome() -> impl Strategy<Value = Outcome> {
        prop_oneof![
            3 => Just(Outcome::Success),
            1 => Just(Outcome::Overload),
            1 => Just(Outcome::Dropped),
        ]
    }

    /// Operations; `acquire_weight` against 4 for releases tunes how full the pool runs.
    fn op(critical_traffic: bool, acquire_weight: u32) -> impl Strategy<Value = Op> {
        let critical = if critical_traffic {
            prop::bool::weighted(0.3).boxed()
        } else {
            Just(false).boxed()
        };
        prop_oneof![
            acquire_weight => (0u8..5, 0usize..4, critical, prop::option::weighted(0.3, 0u32..4)).prop_map(
                |(tenant, partition, critical, cap)| Op::Acquire { tenant, partition, critical, cap }
            ),
            4 => (any::<usize>(), outcome()).prop_map(|(pick, outcome)| Op::Release { pick, outcome }),
            1 => any::<usize>().prop_map(|pick| Op::ReleaseAgain { pick }),
            1 => (0u64..3).prop_map(|offset| Op::ReleaseUnknown { offset }),
            1 => (0u64..30).prop_map(|ms| Op::Advance { ms }),
        ]
    }

    /// Up to three partitions whose guarantees (in tenths) plus the reserve fit in the limit.
    fn static_config() -> impl Strategy<Value = AdmissionConfig> {
        let part = (
            0u32..=3,
            prop_oneof![Just(0.0), Just(0.5), Just(1.0)],
            prop::option::of(0u32..=6),
        )
            .prop_map(|(g, lend, extra)| PartitionConfig {
                guaranteed: f64::from(g) / 10.0,
                lendable: lend,
                max: extra.map(|e| f64::from((g + e).min(10)) / 10.0),
            });
        (1u32..=20, prop::collection::vec(part, 1..=3), 0u32..=1).prop_map(
            |(limit, partitions, reserve)| AdmissionConfig {
                limit,
                partitions,
                critical_reserve: f64::from(reserve) / 10.0,
                retry_after: RETRY_AFTER,
                adaptive: None,
            },
        )
    }

    /// The test's own books: what it holds, by permit.
    #[derive(Default)]
    struct Books {
        held: Vec<(PermitId, u8, usize, Priority)>,
        released: Vec<PermitId>,
        acquires: u64,
        releases: u64,
    }

    impl Books {
        fn count(&self, f: impl Fn(&(PermitId, u8, usize, Priority)) -> bool) -> u32 {
            self.held.iter().filter(|h| f(h)).count() as u32
        }
    }

    /// Drives `ops` against `ctl`, calling `check_acquire(ctl_before, books, request, result)`
    /// on every acquire and `check_state` after every operation.
    fn drive(
        ctl: &mut AdmissionController<u8>,
        ops: &[Op],
        mut check_acquire: impl FnMut(
            &AdmissionController<u8>,
            &Books,
            &Request<'_, u8>,
            SimTime,
            &Result<Permit, Rejection>,
        ),
        mut check_state: impl FnMut(&AdmissionController<u8>, &Books),
    ) {
        let mut books = Books::default();
        let mut now = at(0);
        for op in ops {
            match *op {
                Op::Acquire {
                    tenant,
                    partition,
                    critical,
                    cap,
                } => {
                    let priority = if critical {
                        Priority::Critical
                    } else {
                        Priority::Normal
                    };
                    let partition = partition % (ctl.partitions() + 1);
                    let request = Request {
                        tenant: &tenant,
                        partition,
                        priority,
                        tenant_cap: cap,
                    };
                    let before = ctl.clone();
                    let result = ctl.try_acquire(now, request);
                    check_acquire(&before, &books, &request, now, &result);
                    if let Ok(permit) = result {
                        books.acquires += 1;
                        books.held.push((permit.id, tenant, partition, priority));
                    }
                }
                Op::Release { pick, outcome } => {
                    if books.held.is_empty() {
                        continue;
                    }
                    let (id, ..) = books.held.swap_remove(pick % books.held.len());
                    ctl.release(now, id, outcome).unwrap();
                    books.releases += 1;
                    books.released.push(id);
                }
                Op::ReleaseAgain { pick } => {
                    if books.released.is_empty() {
                        continue;
                    }
                    let id = books.released[pick % books.released.len()];
                    let before = format!("{ctl:?}");
                    assert_eq!(
                        ctl.release(now, id, Outcome::Overload),
                        Err(AdmissionError::AlreadyReleased(id))
                    );
                    assert_eq!(format!("{ctl:?}"), before, "a double release changed state");
                }
                Op::ReleaseUnknown { offset } => {
                    // Ids are issued from 0 up, one per admit: this one is not issued yet.
                    let id = PermitId::from_u64(books.acquires + offset);
                    let before = format!("{ctl:?}");
                    assert_eq!(
                        ctl.release(now, id, Outcome::Overload),
                        Err(AdmissionError::UnknownPermit(id))
                    );
                    assert_eq!(
                        format!("{ctl:?}"),
                        before,
                        "an unknown release changed state"
                    );
                }
                Op::Advance { ms } => now += SimDuration::from_millis(ms),
            }
            check_state(ctl, &books);
        }
    }

    proptest! {
        /// In flight never exceeds the limit, a tenant's cap or a partition's maximum; normal
        /// traffic never exceeds the limit minus the critical reserve; the books balance
        /// (acquires - releases = in flight, per tenant too) and the per-tenant table holds
        /// exactly the tenants in flight.
        #[test]
        fn limits_hold_and_books_balance(
            config in static_config(),
            caps in prop::collection::vec(prop::option::of(0u32..4), 5),
            ops in prop::collection::vec(op(true, 5), 1..200),
        ) {
            let mut ctl = AdmissionController::<u8>::new(config).unwrap();
            for (tenant, cap) in caps.iter().enumerate() {
                ctl.set_tenant_cap(tenant as u8, *cap);
            }
            drive(
                &mut ctl,
                &ops,
                |_, books, request, _, result| {
                    if result.is_ok() {
                        let tenant = *request.tenant;
                        let held = books.count(|h| h.1 == tenant) + 1;
                        if let Some(cap) = request.tenant_cap {
                            assert!(held <= cap, "tenant {tenant} holds {held} > per-call cap {cap}");
                        }
                    }
                },
                |ctl, books| {
                    assert!(ctl.in_flight() <= ctl.limit());
                    assert_eq!(u64::from(ctl.in_flight()), books.acquires - books.releases);
                    assert_eq!(ctl.in_flight() as usize, books.held.len());
                    let normal = books.count(|h| h.3 == Priority::Normal);
                    assert!(normal <= ctl.pool_limit(), "normal traffic used the reserve");
                    for (tenant, cap) in caps.iter().enumerate() {
                        let held = books.count(|h| h.1 == tenant as u8);
                        assert_eq!(ctl.tenant_in_flight(&(tenant as u8)), held);
                        if let Some(cap) = cap {
                            assert!(held <= *cap);
                        }
                    }
                    let mut tenants: Vec<u8> = books.held.iter().map(|h| h.1).collect();
                    tenants.sort_unstable();
                    tenants.dedup();
                    assert_eq!(ctl.tenants_in_flight(), tenants.len());
                    for p in 0..ctl.partitions() {
                        let held = books.count(|h| h.2 == p);
                        assert_eq!(ctl.partition_in_flight(p), held);
                        if let Some(max) = ctl.partition_max(p) {
                            assert!(held <= max);
                        }
                    }
                },
            );
        }

        /// Borrowed capacity never eats a guarantee: a partition below the protected part of
        /// its guarantee is never refused for pool capacity; below its whole guarantee it is
        /// refused only while another partition holds more than its own guarantee (a borrower
        /// sits on the lent part). And the pool is work-conserving: when no other partition
        /// has an unused guarantee, a request is refused for capacity only at the pool limit.
        #[test]
        fn borrowing_never_eats_a_guarantee(
            config in static_config(),
            ops in prop::collection::vec(op(false, 9), 1..300),
        ) {
            let mut ctl = AdmissionController::<u8>::new(config).unwrap();
            drive(
                &mut ctl,
                &ops,
                |ctl, books, request, _, result| {
                    let Err(Rejection { reason: Reason::PoolFull, .. }) = result else { return };
                    let p = request.partition;
                    let held = |q: usize| books.count(|h| h.2 == q);
                    let g = ctl.guaranteed(p);
                    let lendable = ctl.partitions[p].lendable_ppm;
                    let protected = g - share_of(g, lendable);
                    assert!(
                        held(p) >= protected,
                        "partition {p} refused below its protected guarantee {protected}"
                    );
                    if held(p) < g {
                        let borrower = (0..ctl.partitions()).any(|q| held(q) > ctl.guaranteed(q));
                        assert!(borrower, "partition {p} refused its guarantee with no borrower");
                    }
                    let others_idle_guarantee =
                        (0..ctl.partitions()).any(|q| q != p && held(q) < ctl.guaranteed(q));
                    if !others_idle_guarantee {
                        assert!(ctl.in_flight() >= ctl.pool_limit(), "refused with free shared capacity");
                    }
                },
                |_, _| {},
            );
        }

        /// The reserve is for critical traffic only, and is there when it needs it: normal
        /// permits never exceed the limit minus the reserve, and a critical request is never
        /// refused for capacity while critical permits are fewer than the reserve.
        #[test]
        fn critical_reserve_is_kept_for_critical_traffic(
            limit in 1u32..=20,
            reserve_tenths in 1u32..=5,
            ops in prop::collection::vec(op(true, 5), 1..200),
        ) {
            let mut ctl = AdmissionController::<u8>::new(config(
                limit,
                vec![PartitionConfig::SHARED, partition(0.3, 0.5, None)],
                f64::from(reserve_tenths) / 10.0,
            ))
            .unwrap();
            drive(
                &mut ctl,
                &ops,
                |ctl, books, request, _, result| {
                    if request.priority == Priority::Critical
                        && books.count(|h| h.3 == Priority::Critical) < ctl.reserve()
                    {
                        assert!(
                            !matches!(result, Err(Rejection { reason: Reason::PoolFull, .. })),
                            "critical request refused with reserve room"
                        );
                    }
                },
                |ctl, books| {
                    let normal = books.count(|h| h.3 == Priority::Normal);
                    assert!(normal <= ctl.limit() - ctl.reserve(), "normal traffic used the reserve");
                },
            );
        }

        /// The AIMD limit stays within [min_limit, max_limit] and moves exactly as a reference
        /// model of the documented rule says; in flight never exceeds the limit after an admit.
        #[test]
        fn aimd_limit_follows_the_rule(
            min_limit in 1u32..5,
            span in 0u32..20,
            start in 0u32..20,
            increase in 1u32..4,
            backoff_tenths in 1u32..10,
            grow_tenths in 0u32..=10,
            overload_ms in prop::option::of(1u64..40),
            ops in prop::collection::vec(op(true, 5), 1..300),
        ) {
            let max_limit = min_limit + span;
            let limit = min_limit + start.min(span);
            let mut ctl = AdmissionController::<u8>::new(AdmissionConfig {
                adaptive: Some(AdaptiveLimit {
                    min_limit,
                    max_limit,
                    increase,
                    backoff: f64::from(backoff_tenths) / 10.0,
                    grow_at_utilization: f64::from(grow_tenths) / 10.0,
                    overload_latency: overload_ms.map(SimDuration::from_millis),
                }),
                ..config(limit, vec![partition(0.2, 1.0, None), PartitionConfig::SHARED], 0.1)
            })
            .unwrap();
            // Reference model: limit, credit, cuts, and each permit's (acquired_at, cuts).
            let mut model_limit = limit;
            let mut credit = 0u32;
            let mut cuts = 0u64;
            let mut permits: BTreeMap<PermitId, (SimTime, u64)> = BTreeMap::new();
            let mut now = at(0);
            let mut held: Vec<PermitId> = Vec::new();
            for op in &ops {
                match *op {
                    Op::Acquire { tenant, partition, critical, cap } => {
                        let request = Request {
                            tenant: &tenant,
                            partition: partition % 2,
                            priority: if critical { Priority::Critical } else { Priority::Normal },
                            tenant_cap: cap,
                        };
                        if let Ok(p) = ctl.try_acquire(now, request) {
                            prop_assert!(ctl.in_flight() <= ctl.limit());
                            permits.insert(p.id, (now, cuts));
                            held.push(p.id);
                        }
                    }
                    Op::Release { pick, outcome } => {
                        if held.is_empty() { continue; }
                        let id = held.swap_remove(pick % held.len());
                        let in_flight = held.len() as u64 + 1;
                        let (acquired_at, cuts_then) = permits.remove(&id).unwrap();
                        ctl.release(now, id, outcome).unwrap();
                        let slow = overload_ms.is_some_and(|ms| now - acquired_at > SimDuration::from_millis(ms));
                        let overloaded = outcome == Outcome::Overload
                            || (outcome == Outcome::Success && slow);
                        let busy = in_flight * 10 >= u64::from(grow_tenths) * u64::from(model_limit);
                        if overloaded && cuts_then == cuts {
                            model_limit = (model_limit * backoff_tenths / 10).max(min_limit);
                            credit = 0;
                            cuts += 1;
                        } else if !overloaded && outcome == Outcome::Success && busy {
                            credit += 1;
                            if credit >= model_limit {
                                credit = 0;
                                model_limit = (model_limit + increase).min(max_limit);
                            }
                        }
                    }
                    Op::Advance { ms } => now += SimDuration::from_millis(ms),
                    Op::ReleaseAgain { .. } | Op::ReleaseUnknown { .. } => {}
                }
                prop_assert_eq!(ctl.limit(), model_limit);
                prop_assert!((min_limit..=max_limit).contains(&ctl.limit()));
            }
        }
    }
}
