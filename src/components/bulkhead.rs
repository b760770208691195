//! Bulkheads: concurrency caps per request class, per (tenant, class) and per tenant, so one
//! tenant's expensive requests cannot take every slot of a class, and one class cannot take
//! every slot of the service.
//!
//! A request of class `c` for tenant `t` asks the [`BulkheadRegistry`] for a [`Permit`] before
//! it starts and hands the permit back when it ends. The registry admits it only if all three
//! caps below have room, checked in this order; otherwise it refuses with a [`Rejection`]
//! naming the first cap that is full ([`Reason`]) and when a retry makes sense:
//!
//! 1. **Tenant and class** ([`Reason::TenantClassCap`]): `t` holds fewer permits of `c` than
//!    its cap for `c`: the override set with [`BulkheadRegistry::set_tenant_class_cap`], or
//!    else the class's [`ClassLimits::per_tenant`] ("at most 2 reports at once per tenant").
//! 2. **Tenant** ([`Reason::TenantCap`]): `t` holds fewer permits of all classes together than
//!    its cap: the override set with [`BulkheadRegistry::set_tenant_cap`], or else
//!    [`BulkheadConfig::per_tenant_total`].
//! 3. **Class** ([`Reason::ClassFull`]): class `c` holds fewer permits, all tenants together,
//!    than [`ClassLimits::max_in_flight`] (the bulkhead proper: the reports class can never hold
//!    more than its share of the service).
//!
//! `None` means no cap at that level. A class or tenant never configured has no caps of its own
//! (the defaults apply). Lowering a cap below what is held revokes nothing: new requests are
//! refused until enough permits come back. Admission is exact and work-conserving: a request is
//! admitted whenever every cap that applies to it has room, whatever else is held.
//!
//! **Retry hint.** A rejection carries `retry_at = now + retry_after`, or [`SimTime::MAX`] when
//! the full cap is zero (the request can never be admitted until the configuration changes).
//!
//! **Permits** are identified by a slot and a serial number that is never reused, so releasing
//! a permit twice is an error ([`BulkheadError::AlreadyReleased`]) that changes nothing, even
//! after its slot was reused by a later permit. Permits of another registry are not detected.
//!
//! **Relation to admission control.**
//! [`AdmissionController`](super::admission::AdmissionController) guards one worker pool: its
//! concurrency limit, its tier partitions and the tenants' caps *within that pool*. The
//! bulkhead registry is the class layer on top: caps per class and per (tenant, class)
//! wherever the classes run, and a tenant's cap across all classes and pools. A service with
//! several pools asks the registry first, then the pool's controller, and returns the bulkhead
//! permit if the pool refuses (the example below).
//!
//! **Cost.** [`try_acquire`](BulkheadRegistry::try_acquire) does three [`KeyMap`] lookups
//! (class, tenant, pair); [`release`](BulkheadRegistry::release) none (the permit's slot holds
//! the positions). Nothing is allocated per request once every tenant, class and pair has been
//! seen and the permit table has grown to the largest number held at once. The registry keeps a
//! small record (a cap and a count) for every tenant and every (tenant, class) pair it has seen,
//! about 40 bytes each with a `u32` tenant and class: memory grows with the tenants served, not
//! with the requests.
//!
//! A production service keeps one registry per process (or per cell) and wraps each request:
//!
//! ```
//! use std::time::Instant;
//! use tenantsim::components::admission::{AdmissionConfig, AdmissionController, Outcome, Request};
//! use tenantsim::components::bulkhead::{BulkheadConfig, BulkheadRegistry, ClassLimits, Reason};
//! use tenantsim::time::{SimDuration, SimTime};
//!
//! let mut bulkheads = BulkheadRegistry::<&str, &str>::new(BulkheadConfig {
//!     retry_after: SimDuration::from_secs(1),
//!     per_tenant_total: Some(20),
//! });
//! // Reports: at most 8 at once in the whole service, at most 2 per tenant.
//! bulkheads.set_class("report", ClassLimits { max_in_flight: Some(8), per_tenant: Some(2) });
//! let mut reports_pool = AdmissionController::<&str>::new(AdmissionConfig::single_pool(
//!     16,
//!     SimDuration::from_secs(1),
//! ))
//! .expect("valid pool");
//! // The caller's wall clock, as in a production service: the component only ever sees
//! // `now` (the simulator passes simulated time, never this clock).
//! let start = Instant::now();
//! let clock = || SimTime::from_nanos(start.elapsed().as_nanos() as u64);
//!
//! let mut running = Vec::new();
//! for _ in 0..3 {
//!     match bulkheads.try_acquire(clock(), &"acme", &"report") {
//!         Ok(bulkhead) => match reports_pool.try_acquire(clock(), Request::normal(&"acme", 0)) {
//!             Ok(slot) => running.push((bulkhead, slot)),
//!             // The pool is full: give the bulkhead permit back, answer 503.
//!             Err(_) => bulkheads.release(clock(), bulkhead.id).map(|_| ()).expect("held"),
//!         },
//!         Err(rejection) => {
//!             // The third report: acme already runs its 2. Answer 429 with Retry-After.
//!             assert_eq!(rejection.reason, Reason::TenantClassCap);
//!             assert!(rejection.retry_at > SimTime::ZERO);
//!         }
//!     }
//! }
//! assert_eq!(running.len(), 2);
//! // Another tenant's reports are not affected.
//! assert!(bulkheads.try_acquire(clock(), &"globex", &"report").is_ok());
//! for (bulkhead, slot) in running {
//!     reports_pool.release(clock(), slot.id, Outcome::Success).expect("held");
//!     bulkheads.release(clock(), bulkhead.id).expect("held");
//! }
//! assert_eq!(bulkheads.tenant_class_in_flight(&"acme", &"report"), 0);
//! ```

use std::fmt;
use std::hash::Hash;

use super::{KeyMap, PairRef};
use crate::time::{SimDuration, SimTime};

/// A class's caps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassLimits {
    /// Most permits of the class at once, all tenants together; `None` for no cap.
    pub max_in_flight: Option<u32>,
    /// Most permits of the class one tenant may hold at once, unless the tenant has its own
    /// cap for the class; `None` for no cap.
    pub per_tenant: Option<u32>,
}

impl ClassLimits {
    /// No cap at all: what a class gets when it was never configured.
    pub const UNLIMITED: ClassLimits = ClassLimits {
        max_in_flight: None,
        per_tenant: None,
    };
}

/// The registry's configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BulkheadConfig {
    /// How long a refused request should wait before retrying (`retry_at = now + retry_after`).
    pub retry_after: SimDuration,
    /// Most permits one tenant may hold across all classes, unless the tenant has its own cap;
    /// `None` for no cap.
    pub per_tenant_total: Option<u32>,
}

/// Which cap refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The tenant holds its cap of permits of this class.
    TenantClassCap,
    /// The tenant holds its cap of permits across all classes.
    TenantCap,
    /// The class holds its cap of permits, all tenants together.
    ClassFull,
}

/// A refused request: why, and when retrying makes sense.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The first cap (in the order of the module documentation) that had no room.
    pub reason: Reason,
    /// Earliest sensible retry time; [`SimTime::MAX`] if that cap is zero.
    pub retry_at: SimTime,
}

/// A permit's identity: a slot and a serial number never reused by this registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PermitId {
    slot: u32,
    serial: u64,
}

impl PermitId {
    /// The permit's serial number: unique for the registry's lifetime, in order of issue.
    pub const fn serial(self) -> u64 {
        self.serial
    }
}

/// The right to run one request of a class until released.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permit {
    /// Pass it to [`BulkheadRegistry::release`].
    pub id: PermitId,
    /// When it was granted.
    pub acquired_at: SimTime,
}

/// Misuse of [`BulkheadRegistry::release`]. Nothing changes when it is returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BulkheadError {
    /// The permit was issued and already released.
    AlreadyReleased(PermitId),
    /// This registry never issued the permit.
    UnknownPermit(PermitId),
}

impl fmt::Display for BulkheadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BulkheadError::AlreadyReleased(id) => {
                write!(f, "bulkhead permit {} was already released", id.serial)
            }
            BulkheadError::UnknownPermit(id) => {
                write!(
                    f,
                    "bulkhead permit {} was never issued by this registry",
                    id.serial
                )
            }
        }
    }
}

impl std::error::Error for BulkheadError {}

/// A count with an optional cap of its own (a tenant's or a pair's override).
#[derive(Clone, Copy, Debug, Default)]
struct Counter {
    cap: Option<u32>,
    in_flight: u32,
}

#[derive(Clone, Copy, Debug)]
struct ClassState {
    limits: ClassLimits,
    in_flight: u32,
}

/// What a held permit counts against: positions in the three maps (entries are never removed,
/// so positions are stable).
#[derive(Clone, Copy, Debug)]
struct Held {
    pair: u32,
    tenant: u32,
    class: u32,
    acquired_at: SimTime,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    /// The serial of the permit issued last from this slot.
    serial: u64,
    /// `Some` while that permit is held.
    held: Option<Held>,
}

/// Concurrency caps per class, per tenant and per (tenant, class), generic over the tenant key
/// `T` and the class key `C`.
#[derive(Clone, Debug)]
pub struct BulkheadRegistry<T, C> {
    config: BulkheadConfig,
    classes: KeyMap<C, ClassState>,
    tenants: KeyMap<T, Counter>,
    pairs: KeyMap<(T, C), Counter>,
    slots: Vec<Slot>,
    free_slots: Vec<u32>,
    next_serial: u64,
    in_flight: u32,
}

/// A map position as the `u32` a permit slot keeps.
fn position(index: usize) -> u32 {
    u32::try_from(index).expect("fewer than 2^32 tenants, classes and pairs")
}

impl<T: Hash + Eq + Clone, C: Hash + Eq + Clone> BulkheadRegistry<T, C> {
    /// A registry with nothing held and no class configured.
    pub fn new(config: BulkheadConfig) -> BulkheadRegistry<T, C> {
        BulkheadRegistry {
            config,
            classes: KeyMap::default(),
            tenants: KeyMap::default(),
            pairs: KeyMap::default(),
            slots: Vec::new(),
            free_slots: Vec::new(),
            next_serial: 0,
            in_flight: 0,
        }
    }

    /// Configures a class's caps (replacing earlier ones).
    pub fn set_class(&mut self, class: C, limits: ClassLimits) {
        let index = self.class_index(&class, Some(class.clone()));
        self.classes[index].limits = limits;
    }

    /// Sets (`Some`) or removes (`None`, back to [`BulkheadConfig::per_tenant_total`])
    /// `tenant`'s own cap across all classes. `Some(u32::MAX)` exempts the tenant.
    pub fn set_tenant_cap(&mut self, tenant: T, cap: Option<u32>) {
        let index = self.tenant_index(&tenant, Some(tenant.clone()));
        self.tenants[index].cap = cap;
    }

    /// Sets (`Some`) or removes (`None`, back to the class's [`ClassLimits::per_tenant`])
    /// `tenant`'s own cap for `class`. `Some(u32::MAX)` exempts the tenant.
    pub fn set_tenant_class_cap(&mut self, tenant: T, class: C, cap: Option<u32>) {
        let index = match self.pairs.get_index_of(&PairRef(&tenant, &class)) {
            Some(index) => index,
            None => {
                self.pairs
                    .insert_full((tenant, class), Counter::default())
                    .0
            }
        };
        self.pairs[index].cap = cap;
    }

    /// Grants a permit for one request of `class` for `tenant`, or refuses it (see the module
    /// documentation for the rules). A refusal changes nothing but may record the tenant, the
    /// class and the pair as seen.
    pub fn try_acquire(
        &mut self,
        now: SimTime,
        tenant: &T,
        class: &C,
    ) -> Result<Permit, Rejection> {
        let class_index = self.class_index(class, None);
        let tenant_index = self.tenant_index(tenant, None);
        let pair_index = self.pair_index(tenant, class);
        let class_state = self.classes[class_index];
        let tenant_state = self.tenants[tenant_index];
        let pair = self.pairs[pair_index];
        let checks = [
            (
                Reason::TenantClassCap,
                pair.cap.or(class_state.limits.per_tenant),
                pair.in_flight,
            ),
            (
                Reason::TenantCap,
                tenant_state.cap.or(self.config.per_tenant_total),
                tenant_state.in_flight,
            ),
            (
                Reason::ClassFull,
                class_state.limits.max_in_flight,
                class_state.in_flight,
            ),
        ];
        for (reason, cap, held) in checks {
            if let Some(cap) = cap
                && held >= cap
            {
                return Err(Rejection {
                    reason,
                    retry_at: if cap == 0 {
                        SimTime::MAX
                    } else {
                        now + self.config.retry_after
                    },
                });
            }
        }

        self.classes[class_index].in_flight += 1;
        self.tenants[tenant_index].in_flight += 1;
        self.pairs[pair_index].in_flight += 1;
        self.in_flight += 1;
        let held = Held {
            pair: position(pair_index),
            tenant: position(tenant_index),
            class: position(class_index),
            acquired_at: now,
        };
        let serial = self.next_serial;
        self.next_serial += 1;
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Slot {
                    serial,
                    held: Some(held),
                };
                slot
            }
            None => {
                self.slots.push(Slot {
                    serial,
                    held: Some(held),
                });
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 permits held")
            }
        };
        Ok(Permit {
            id: PermitId { slot, serial },
            acquired_at: now,
        })
    }

    /// Returns a permit and restores exactly the capacity it took; gives how long it was held.
    /// Releasing a permit twice, or one this registry never issued, is an error and changes
    /// nothing.
    pub fn release(
        &mut self,
        now: SimTime,
        permit: PermitId,
    ) -> Result<SimDuration, BulkheadError> {
        if permit.serial >= self.next_serial {
            return Err(BulkheadError::UnknownPermit(permit));
        }
        let held = match self.slots.get(permit.slot as usize) {
            Some(Slot {
                serial,
                held: Some(held),
            }) if *serial == permit.serial => *held,
            Some(_) => return Err(BulkheadError::AlreadyReleased(permit)),
            None => return Err(BulkheadError::UnknownPermit(permit)),
        };
        self.slots[permit.slot as usize].held = None;
        self.free_slots.push(permit.slot);
        self.classes[held.class as usize].in_flight -= 1;
        self.tenants[held.tenant as usize].in_flight -= 1;
        self.pairs[held.pair as usize].in_flight -= 1;
        self.in_flight -= 1;
        Ok(now - held.acquired_at)
    }

    /// Whether `permit` is held (issued here and not yet released).
    pub fn is_held(&self, permit: PermitId) -> bool {
        self.slots
            .get(permit.slot as usize)
            .is_some_and(|s| s.serial == permit.serial && s.held.is_some())
    }

    /// Permits held, all classes and tenants.
    pub fn in_flight(&self) -> u32 {
        self.in_flight
    }

    /// Permits of `class` held, all tenants together.
    pub fn class_in_flight(&self, class: &C) -> u32 {
        self.classes.get(class).map_or(0, |c| c.in_flight)
    }

    /// Permits `tenant` holds, all classes together.
    pub fn tenant_in_flight(&self, tenant: &T) -> u32 {
        self.tenants.get(tenant).map_or(0, |t| t.in_flight)
    }

    /// Permits of `class` that `tenant` holds.
    pub fn tenant_class_in_flight(&self, tenant: &T, class: &C) -> u32 {
        self.pairs
            .get(&PairRef(tenant, class))
            .map_or(0, |p| p.in_flight)
    }

    /// `class`'s caps ([`ClassLimits::UNLIMITED`] if it was never configured).
    pub fn class_limits(&self, class: &C) -> ClassLimits {
        self.classes
            .get(class)
            .map_or(ClassLimits::UNLIMITED, |c| c.limits)
    }

    /// The cap that applies to `tenant` across all classes (`None`: no cap).
    pub fn tenant_cap(&self, tenant: &T) -> Option<u32> {
        self.tenants
            .get(tenant)
            .and_then(|t| t.cap)
            .or(self.config.per_tenant_total)
    }

    /// The cap that applies to `tenant`'s permits of `class` (`None`: no cap).
    pub fn tenant_class_cap(&self, tenant: &T, class: &C) -> Option<u32> {
        self.pairs
            .get(&PairRef(tenant, class))
            .and_then(|p| p.cap)
            .or(self.class_limits(class).per_tenant)
    }

    /// Tenants and (tenant, class) pairs the registry keeps a record for (its memory, apart
    /// from the permit table).
    pub fn records(&self) -> (usize, usize) {
        (self.tenants.len(), self.pairs.len())
    }

    /// The position of `class`, recording it (with no caps) if it is new. `owned` avoids a
    /// second clone when the caller already has one.
    fn class_index(&mut self, class: &C, owned: Option<C>) -> usize {
        match self.classes.get_index_of(class) {
            Some(index) => index,
            None => {
                let key = owned.unwrap_or_else(|| class.clone());
                let state = ClassState {
                    limits: ClassLimits::UNLIMITED,
                    in_flight: 0,
                };
                self.classes.insert_full(key, state).0
            }
        }
    }

    fn tenant_index(&mut self, tenant: &T, owned: Option<T>) -> usize {
        match self.tenants.get_index_of(tenant) {
            Some(index) => index,
            None => {
                let key = owned.unwrap_or_else(|| tenant.clone());
                self.tenants.insert_full(key, Counter::default()).0
            }
        }
    }

    fn pair_index(&mut self, tenant: &T, class: &C) -> usize {
        match self.pairs.get_index_of(&PairRef(tenant, class)) {
            Some(index) => index,
            None => {
                let key = (tenant.clone(), class.clone());
                self.pairs.insert_full(key, Counter::default()).0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const RETRY_AFTER: SimDuration = SimDuration::from_millis(100);

    fn at(ms: u64) -> SimTime {
        SimTime::from_nanos(ms * 1_000_000)
    }

    fn registry(per_tenant_total: Option<u32>) -> BulkheadRegistry<u8, u8> {
        BulkheadRegistry::new(BulkheadConfig {
            retry_after: RETRY_AFTER,
            per_tenant_total,
        })
    }

    #[test]
    fn each_cap_refuses_with_its_reason_and_a_retry_hint() {
        let mut r = registry(Some(3));
        r.set_class(
            0,
            ClassLimits {
                max_in_flight: Some(4),
                per_tenant: Some(2),
            },
        );
        let now = at(5);
        let a = r.try_acquire(now, &1, &0).unwrap();
        r.try_acquire(now, &1, &0).unwrap();
        let refused = r.try_acquire(now, &1, &0).unwrap_err();
        assert_eq!(refused.reason, Reason::TenantClassCap);
        assert_eq!(refused.retry_at, now + RETRY_AFTER);
        // Class 1 is unconfigured: only the tenant's total cap of 3 applies.
        r.try_acquire(now, &1, &1).unwrap();
        assert_eq!(
            r.try_acquire(now, &1, &1).unwrap_err().reason,
            Reason::TenantCap
        );
        r.try_acquire(now, &2, &0).unwrap();
        r.try_acquire(now, &2, &0).unwrap();
        assert_eq!(
            r.try_acquire(now, &3, &0).unwrap_err().reason,
            Reason::ClassFull
        );
        // Releasing one of tenant 1's class-0 permits makes room in the class and the tenant.
        assert_eq!(r.release(at(9), a.id), Ok(SimDuration::from_millis(4)));
        r.try_acquire(now, &3, &0).unwrap();
        assert_eq!(r.in_flight(), 5);
        assert_eq!(r.class_in_flight(&0), 4);
        assert_eq!(r.tenant_in_flight(&1), 2);
        assert_eq!(r.tenant_class_in_flight(&1, &0), 1);
    }

    #[test]
    fn overrides_replace_defaults_and_a_zero_cap_never_admits() {
        let mut r = registry(Some(1));
        r.set_class(
            0,
            ClassLimits {
                max_in_flight: None,
                per_tenant: Some(1),
            },
        );
        r.set_tenant_cap(7, Some(u32::MAX));
        r.set_tenant_class_cap(7, 0, Some(3));
        for _ in 0..3 {
            r.try_acquire(at(0), &7, &0).unwrap();
        }
        assert_eq!(r.tenant_class_cap(&7, &0), Some(3));
        assert_eq!(r.tenant_cap(&7), Some(u32::MAX));
        assert_eq!(r.tenant_cap(&8), Some(1));
        r.set_tenant_class_cap(8, 0, Some(0));
        let never = r.try_acquire(at(0), &8, &0).unwrap_err();
        assert_eq!(never.reason, Reason::TenantClassCap);
        assert_eq!(never.retry_at, SimTime::MAX);
        // Back to the class default.
        r.set_tenant_class_cap(8, 0, None);
        r.try_acquire(at(0), &8, &0).unwrap();
    }

    #[test]
    fn a_double_release_is_an_error_even_after_the_slot_is_reused() {
        let mut r = registry(None);
        let first = r.try_acquire(at(0), &1, &0).unwrap();
        r.release(at(1), first.id).unwrap();
        let second = r.try_acquire(at(2), &1, &0).unwrap();
        assert_eq!(second.id.slot, first.id.slot, "the slot is reused");
        assert_eq!(
            r.release(at(3), first.id),
            Err(BulkheadError::AlreadyReleased(first.id))
        );
        assert!(r.is_held(second.id));
        assert_eq!(r.in_flight(), 1);
        let forged = PermitId {
            slot: 0,
            serial: 99,
        };
        assert_eq!(
            r.release(at(3), forged),
            Err(BulkheadError::UnknownPermit(forged))
        );
    }

    #[derive(Clone, Debug)]
    enum Op {
        Acquire {
            tenant: u8,
            class: u8,
        },
        Release {
            pick: usize,
        },
        ReleaseAgain {
            pick: usize,
        },
        SetClass {
            class: u8,
            max: Option<u32>,
            per_tenant: Option<u32>,
        },
        SetTenant {
            tenant: u8,
            cap: Option<u32>,
        },
        SetPair {
            tenant: u8,
            class: u8,
            cap: Option<u32>,
        },
        Advance {
            ms: u64,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        let cap = || prop::option::of(0u32..5);
        prop_oneof![
            8 => (0u8..4, 0u8..3).prop_map(|(tenant, class)| Op::Acquire { tenant, class }),
            5 => any::<usize>().prop_map(|pick| Op::Release { pick }),
            1 => any::<usize>().prop_map(|pick| Op::ReleaseAgain { pick }),
            1 => (0u8..3, cap(), cap())
                .prop_map(|(class, max, per_tenant)| Op::SetClass { class, max, per_tenant }),
            1 => (0u8..4, cap()).prop_map(|(tenant, cap)| Op::SetTenant { tenant, cap }),
            1 => (0u8..4, 0u8..3, cap())
                .prop_map(|(tenant, class, cap)| Op::SetPair { tenant, class, cap }),
            1 => (0u64..50).prop_map(|ms| Op::Advance { ms }),
        ]
    }

    /// The test's own, naive account of caps and permits.
    #[derive(Default)]
    struct Reference {
        total_default: Option<u32>,
        classes: [ClassLimits; 3],
        tenant_caps: [Option<u32>; 4],
        pair_caps: [[Option<u32>; 3]; 4],
        /// (permit, tenant, class) held.
        held: Vec<(PermitId, u8, u8)>,
        released: Vec<PermitId>,
    }

    impl Reference {
        fn count(&self, f: impl Fn(u8, u8) -> bool) -> u32 {
            self.held.iter().filter(|h| f(h.1, h.2)).count() as u32
        }

        /// The documented rule, written out directly: the first full cap, if any.
        fn decide(&self, tenant: u8, class: u8) -> Option<(Reason, u32)> {
            let (t, c) = (tenant as usize, class as usize);
            let pair_cap = self.pair_caps[t][c].or(self.classes[c].per_tenant);
            let tenant_cap = self.tenant_caps[t].or(self.total_default);
            let class_cap = self.classes[c].max_in_flight;
            let rules = [
                (
                    Reason::TenantClassCap,
                    pair_cap,
                    self.count(|a, b| a == tenant && b == class),
                ),
                (
                    Reason::TenantCap,
                    tenant_cap,
                    self.count(|a, _| a == tenant),
                ),
                (Reason::ClassFull, class_cap, self.count(|_, b| b == class)),
            ];
            rules.into_iter().find_map(|(reason, cap, held)| {
                cap.filter(|&cap| held >= cap).map(|cap| (reason, cap))
            })
        }
    }

    proptest! {
        /// Under any interleaving of acquires, releases, double releases and cap changes: every
        /// decision is exactly the documented rule (so no cap is ever exceeded by an admit, and
        /// nothing is refused while every cap has room), the registry's counts equal the
        /// reference's after every step (a release restores exactly what its acquire took),
        /// and a double release is an error that leaves the state untouched.
        #[test]
        fn decisions_follow_the_rule_and_counts_balance(
            total_default in prop::option::of(0u32..6),
            ops in prop::collection::vec(op(), 1..250),
        ) {
            let mut r = registry(total_default);
            let mut model = Reference { total_default, ..Reference::default() };
            let mut now = at(0);
            for op in ops {
                match op {
                    Op::Acquire { tenant, class } => {
                        let expected = model.decide(tenant, class);
                        match r.try_acquire(now, &tenant, &class) {
                            Ok(permit) => {
                                prop_assert_eq!(expected, None, "admitted over a cap");
                                prop_assert_eq!(permit.acquired_at, now);
                                model.held.push((permit.id, tenant, class));
                                // The admit kept every cap.
                                let (t, c) = (tenant as usize, class as usize);
                                if let Some(cap) = model.pair_caps[t][c].or(model.classes[c].per_tenant) {
                                    prop_assert!(model.count(|a, b| a == tenant && b == class) <= cap);
                                }
                                if let Some(cap) = model.tenant_caps[t].or(total_default) {
                                    prop_assert!(model.count(|a, _| a == tenant) <= cap);
                                }
                                if let Some(cap) = model.classes[c].max_in_flight {
                                    prop_assert!(model.count(|_, b| b == class) <= cap);
                                }
                            }
                            Err(rejection) => {
                                let Some((reason, cap)) = expected else {
                                    panic!("refused with room under every cap: {rejection:?}");
                                };
                                prop_assert_eq!(rejection.reason, reason);
                                let retry_at = if cap == 0 { SimTime::MAX } else { now + RETRY_AFTER };
                                prop_assert_eq!(rejection.retry_at, retry_at);
                            }
                        }
                    }
                    Op::Release { pick } => {
                        if model.held.is_empty() {
                            continue;
                        }
                        let (id, ..) = model.held.swap_remove(pick % model.held.len());
                        r.release(now, id).unwrap();
                        model.released.push(id);
                    }
                    Op::ReleaseAgain { pick } => {
                        if model.released.is_empty() {
                            continue;
                        }
                        let id = model.released[pick % model.released.len()];
                        let before = format!("{r:?}");
                        prop_assert_eq!(r.release(now, id), Err(BulkheadError::AlreadyReleased(id)));
                        prop_assert_eq!(format!("{r:?}"), before, "a double release changed state");
                    }
                    Op::SetClass { class, max, per_tenant } => {
                        let limits = ClassLimits { max_in_flight: max, per_tenant };
                        r.set_class(class, limits);
                        model.classes[class as usize] = limits;
                    }
                    Op::SetTenant { tenant, cap } => {
                        r.set_tenant_cap(tenant, cap);
                        model.tenant_caps[tenant as usize] = cap;
                    }
                    Op::SetPair { tenant, class, cap } => {
                        r.set_tenant_class_cap(tenant, class, cap);
                        model.pair_caps[tenant as usize][class as usize] = cap;
                    }
                    Op::Advance { ms } => now += SimDuration::from_millis(ms),
                }
                prop_assert_eq!(r.in_flight() as usize, model.held.len());
                for tenant in 0..4u8 {
                    prop_assert_eq!(r.tenant_in_flight(&tenant), model.count(|a, _| a == tenant));
                    for class in 0..3u8 {
                        prop_assert_eq!(
                            r.tenant_class_in_flight(&tenant, &class),
                            model.count(|a, b| a == tenant && b == class)
                        );
                    }
                }
                for class in 0..3u8 {
                    prop_assert_eq!(r.class_in_flight(&class), model.count(|_, b| b == class));
                }
                for (id, ..) in &model.held {
                    prop_assert!(r.is_held(*id));
                }
                for id in &model.released {
                    prop_assert!(!r.is_held(*id));
                }
            }
        }
    }
}
