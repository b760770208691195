//! The edge's cache of tenant-to-cell mapping entries: a TTL, epoch-monotone fills, stale-epoch
//! hints from cells, and a policy for when the mapping store cannot be reached.
//!
//! An entry is *fresh* while its age (time since the store served it) is below the TTL and no
//! cell has reported a newer epoch for the tenant; otherwise it is *stale*. [`EdgeCache::resolve`]
//! decides what a request uses:
//!
//! 1. a fresh entry is used as is: the store is not asked;
//! 2. otherwise (no entry, TTL expired, or a cell's stale-epoch hint recorded with
//!    [`EdgeCache::note_stale_epoch`]) the edge refreshes from the store if it can reach it, and
//!    routes with the answer (staleness zero);
//! 3. if the store is unreachable, [`OnUnavailable`] decides: `ServeStale { max_staleness }`
//!    routes from the stale entry while its age is at most `max_staleness` (the available
//!    choice of the CAP trade-off: writes routed from an outdated entry are then rejected by
//!    the cells' epoch fences rather than misapplied); `FailClosed` refuses (the consistent
//!    choice: higher error rate during partitions, never a route from an expired entry).
//!
//! So while the store is reachable no routed entry is older than the TTL, and while it is
//! partitioned none is older than `max_staleness` (or than the TTL with `FailClosed`).
//! Fills never replace an entry with one of an older epoch, so a delayed store response cannot
//! roll the edge back. A cell's `CellBehind` rejection is *not* a reason to refresh: the edge's
//! entry is newer than the cell's, and the cell catches up when the control plane's notice
//! arrives.
//!
//! **Production use.** One cache per edge process; call `resolve` on every request with a
//! closure that performs the store read, and `note_stale_epoch` when a cell rejects a write
//! with a newer epoch.
//!
//! ```
//! use std::time::Instant;
//! use tenantsim::components::mapping::{Epoch, MappingEntry, MappingState};
//! use tenantsim::components::mapping_cache::{EdgeCache, OnUnavailable, Resolution};
//! use tenantsim::time::{SimDuration, SimTime};
//!
//! let policy = OnUnavailable::ServeStale { max_staleness: SimDuration::from_secs(600) };
//! let mut cache: EdgeCache<String, u32> =
//!     EdgeCache::new(SimDuration::from_secs(30), policy).expect("valid policy");
//! let store_entry = MappingEntry { state: MappingState::Active { cell: 3 }, epoch: Epoch::from_u64(1) };
//! // The caller's wall clock, as in a production service: the component only ever sees
//! // `now` (the simulator passes simulated time, never this clock).
//! let start = Instant::now();
//! let now = SimTime::from_nanos(start.elapsed().as_nanos() as u64);
//! let tenant = "acme".to_string();
//! match cache.resolve(now, &tenant, true, || Some(store_entry)) {
//!     Resolution::Route { entry, .. } => assert_eq!(*entry.read_cell(), 3),
//!     Resolution::Unavailable(why) => panic!("store reachable: {why:?}"),
//! }
//! // Ten minutes later with the store partitioned away: still served, from the stale entry.
//! let later = now + SimDuration::from_secs(590);
//! assert!(matches!(cache.resolve(later, &tenant, false, || None), Resolution::Route { .. }));
//! ```

use std::hash::Hash;

use super::KeyMap;
use std::fmt;

use super::mapping::{Epoch, MappingEntry};
use crate::time::{SimDuration, SimTime};

/// What the edge does when an entry is not fresh and the mapping store cannot be reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OnUnavailable {
    /// Route from the stale entry while its age is at most `max_staleness`.
    ServeStale {
        /// The oldest entry the edge still routes from (at least the TTL).
        max_staleness: SimDuration,
    },
    /// Refuse the request: never route from an entry that is not fresh.
    FailClosed,
}

/// The cache configuration is inconsistent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheConfigError {
    /// The configured TTL.
    pub ttl: SimDuration,
    /// The configured maximum staleness.
    pub max_staleness: SimDuration,
}

impl fmt::Display for CacheConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "max_staleness ({}) is shorter than the mapping cache TTL ({}): fresh entries would \
             be served longer than stale ones may be; raise max_staleness to at least the TTL",
            self.max_staleness, self.ttl
        )
    }
}

impl std::error::Error for CacheConfigError {}

/// What the cache holds for a tenant at some instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheLookup<C> {
    /// Younger than the TTL and not superseded.
    Fresh {
        /// The cached entry.
        entry: MappingEntry<C>,
        /// Time since the store served it.
        age: SimDuration,
    },
    /// TTL expired, or a cell reported a newer epoch.
    Stale {
        /// The cached entry.
        entry: MappingEntry<C>,
        /// Time since the store served it.
        age: SimDuration,
        /// The newer epoch a cell reported, if that is why the entry is stale.
        superseded_by: Option<Epoch>,
    },
    /// Nothing cached.
    Miss,
}

/// What a fill did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FillOutcome {
    /// No entry was cached; now one is.
    Inserted,
    /// Replaced an entry of an older epoch.
    Replaced,
    /// Same epoch: the entry's age was reset if this answer is more recent.
    Confirmed,
    /// The cached entry has a newer epoch; nothing changed.
    IgnoredOlder,
}

/// Where a routed entry came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RouteSource {
    /// A fresh cached entry; the store was not asked.
    Cache,
    /// Refreshed from the store just now.
    Store,
    /// A stale cached entry, served because the store was unreachable (`ServeStale`).
    StaleCache,
}

/// Why the edge cannot route a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unresolved {
    /// The store is unreachable and nothing is cached for the tenant.
    NotCached,
    /// The store is unreachable and the cached entry is older than `max_staleness`.
    TooStale {
        /// Age of the cached entry.
        age: SimDuration,
        /// The configured limit.
        max_staleness: SimDuration,
    },
    /// The store is unreachable, the entry is not fresh, and the policy is `FailClosed`.
    FailClosed {
        /// Age of the cached entry.
        age: SimDuration,
    },
    /// The store answered: the tenant has no mapping.
    UnknownTenant,
}

/// The edge's decision for one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution<C> {
    /// Route with this entry.
    Route {
        /// The entry to route with (its epoch goes on every write).
        entry: MappingEntry<C>,
        /// Time since the store served the entry.
        staleness: SimDuration,
        /// Where it came from.
        source: RouteSource,
    },
    /// Do not route.
    Unavailable(Unresolved),
}

#[derive(Clone, Debug)]
struct Cached<C> {
    entry: MappingEntry<C>,
    read_at: SimTime,
    /// The newest epoch a cell reported for the tenant (`Epoch::NONE` if none).
    hinted: Epoch,
}

/// The edge's tenant-to-cell cache. See the module documentation for the refresh rules.
#[derive(Clone, Debug)]
pub struct EdgeCache<T, C> {
    ttl: SimDuration,
    on_unavailable: OnUnavailable,
    entries: KeyMap<T, Cached<C>>,
}

impl<T: Hash + Eq + Clone, C: Clone> EdgeCache<T, C> {
    /// An empty cache; entries are fresh for `ttl`. `ServeStale { max_staleness }` needs
    /// `max_staleness >= ttl`.
    pub fn new(ttl: SimDuration, on_unavailable: OnUnavailable) -> Result<Self, CacheConfigError> {
        if let OnUnavailable::ServeStale { max_staleness } = on_unavailable {
            if max_staleness < ttl {
                return Err(CacheConfigError { ttl, max_staleness });
            }
        }
        Ok(EdgeCache {
            ttl,
            on_unavailable,
            entries: KeyMap::default(),
        })
    }

    /// The TTL.
    pub fn ttl(&self) -> SimDuration {
        self.ttl
    }

    /// The policy when the store is unreachable.
    pub fn on_unavailable(&self) -> OnUnavailable {
        self.on_unavailable
    }

    /// Number of cached tenants.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// What the cache holds for `tenant` at `now`.
    pub fn get(&self, now: SimTime, tenant: &T) -> CacheLookup<C> {
        let Some(cached) = self.entries.get(tenant) else {
            return CacheLookup::Miss;
        };
        let age = now.saturating_since(cached.read_at);
        let superseded = cached.hinted > cached.entry.epoch;
        if age < self.ttl && !superseded {
            CacheLookup::Fresh {
                entry: cached.entry.clone(),
                age,
            }
        } else {
            CacheLookup::Stale {
                entry: cached.entry.clone(),
                age,
                superseded_by: superseded.then_some(cached.hinted),
            }
        }
    }

    /// Stores `entry`, which the mapping store served at `read_at` (pass `now` for a
    /// synchronous fetch; the answer's time for a delayed one, so its age is not understated).
    /// An entry of an older epoch than the cached one is ignored.
    pub fn fill(&mut self, read_at: SimTime, tenant: &T, entry: MappingEntry<C>) -> FillOutcome {
        match self.entries.get_mut(tenant) {
            None => {
                self.entries.insert(
                    tenant.clone(),
                    Cached {
                        entry,
                        read_at,
                        hinted: Epoch::NONE,
                    },
                );
                FillOutcome::Inserted
            }
            Some(cached) if entry.epoch < cached.entry.epoch => FillOutcome::IgnoredOlder,
            Some(cached) if entry.epoch == cached.entry.epoch => {
                cached.read_at = cached.read_at.max(read_at);
                FillOutcome::Confirmed
            }
            Some(cached) => {
                cached.entry = entry;
                cached.read_at = read_at;
                FillOutcome::Replaced
            }
        }
    }

    /// Records that a cell rejected a write because the tenant is at `current_epoch`. If that
    /// is newer than the cached entry, the entry becomes stale at once, so the next request
    /// refreshes it (when the store is reachable). Returns whether the entry is now superseded.
    pub fn note_stale_epoch(&mut self, tenant: &T, current_epoch: Epoch) -> bool {
        match self.entries.get_mut(tenant) {
            Some(cached) => {
                cached.hinted = cached.hinted.max(current_epoch);
                cached.hinted > cached.entry.epoch
            }
            None => false,
        }
    }

    /// Drops the tenant's entry; returns whether there was one.
    pub fn invalidate(&mut self, tenant: &T) -> bool {
        self.entries.swap_remove(tenant).is_some()
    }

    /// Decides how to route a request of `tenant` at `now` (see the module documentation).
    /// `fetch` reads the store; it is called only when the entry is not fresh and
    /// `store_reachable` is true, and returns `None` if the tenant has no mapping.
    pub fn resolve(
        &mut self,
        now: SimTime,
        tenant: &T,
        store_reachable: bool,
        fetch: impl FnOnce() -> Option<MappingEntry<C>>,
    ) -> Resolution<C> {
        let lookup = self.get(now, tenant);
        if let CacheLookup::Fresh { entry, age } = lookup {
            return Resolution::Route {
                entry,
                staleness: age,
                source: RouteSource::Cache,
            };
        }
        if store_reachable {
            let Some(fetched) = fetch() else {
                self.entries.swap_remove(tenant);
                return Resolution::Unavailable(Unresolved::UnknownTenant);
            };
            self.fill(now, tenant, fetched.clone());
            // A linearizable store never answers with an older epoch than one already seen,
            // so this is the fetched entry; the fallback keeps the cache epoch-monotone anyway.
            let (entry, staleness) = match self.entries.get(tenant) {
                Some(cached) => (cached.entry.clone(), now.saturating_since(cached.read_at)),
                None => (fetched, SimDuration::ZERO),
            };
            return Resolution::Route {
                entry,
                staleness,
                source: RouteSource::Store,
            };
        }
        let CacheLookup::Stale { entry, age, .. } = lookup else {
            return Resolution::Unavailable(Unresolved::NotCached);
        };
        match self.on_unavailable {
            OnUnavailable::ServeStale { max_staleness } if age <= max_staleness => {
                Resolution::Route {
                    entry,
                    staleness: age,
                    source: RouteSource::StaleCache,
                }
            }
            OnUnavailable::ServeStale { max_staleness } => {
                Resolution::Unavailable(Unresolved::TooStale { age, max_staleness })
            }
            OnUnavailable::FailClosed => Resolution::Unavailable(Unresolved::FailClosed { age }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::components::mapping::MappingState;
    use proptest::prelude::*;

    fn entry(cell: u8, epoch: u64) -> MappingEntry<u8> {
        MappingEntry {
            state: MappingState::Active { cell },
            epoch: Epoch::from_u64(epoch),
        }
    }

    fn at(secs: u64) -> SimTime {
        SimTime::ZERO + SimDuration::from_secs(secs)
    }

    const TTL: SimDuration = SimDuration::from_secs(30);
    const MAX_STALE: SimDuration = SimDuration::from_secs(100);

    #[test]
    fn rejects_max_staleness_below_ttl() {
        let err = EdgeCache::<u8, u8>::new(
            TTL,
            OnUnavailable::ServeStale {
                max_staleness: SimDuration::from_secs(10),
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("raise max_staleness"), "{err}");
    }

    #[test]
    fn refreshes_on_expiry_and_on_hint_only() {
        let mut c = EdgeCache::new(TTL, OnUnavailable::FailClosed).unwrap();
        let mut fetches = 0;
        let mut fetch = |e| {
            fetches += 1;
            Some(e)
        };
        assert!(matches!(
            c.resolve(at(0), &1, true, || fetch(entry(0, 1))),
            Resolution::Route {
                source: RouteSource::Store,
                ..
            }
        ));
        assert!(matches!(
            c.resolve(at(29), &1, true, || fetch(entry(0, 1))),
            Resolution::Route {
                source: RouteSource::Cache,
                ..
            }
        ));
        assert!(matches!(
            c.resolve(at(30), &1, true, || fetch(entry(0, 1))),
            Resolution::Route {
                source: RouteSource::Store,
                ..
            }
        ));
        assert!(!c.note_stale_epoch(&1, Epoch::from_u64(1)));
        assert!(matches!(c.get(at(31), &1), CacheLookup::Fresh { .. }));
        assert!(c.note_stale_epoch(&1, Epoch::from_u64(2)));
        assert_eq!(
            c.resolve(at(31), &1, false, || fetch(entry(1, 2))),
            Resolution::Unavailable(Unresolved::FailClosed {
                age: SimDuration::from_secs(1)
            })
        );
        let Resolution::Route { entry: e, .. } = c.resolve(at(31), &1, true, || fetch(entry(1, 2)))
        else {
            panic!("store reachable");
        };
        assert_eq!(e.epoch, Epoch::from_u64(2));
        assert_eq!(fetches, 3);
    }

    #[test]
    fn serve_stale_until_max_staleness() {
        let policy = OnUnavailable::ServeStale {
            max_staleness: MAX_STALE,
        };
        let mut c = EdgeCache::new(TTL, policy).unwrap();
        assert_eq!(
            c.resolve(at(0), &1, false, || None),
            Resolution::Unavailable(Unresolved::NotCached)
        );
        c.fill(at(0), &1, entry(0, 1));
        assert!(matches!(
            c.resolve(at(100), &1, false, || None),
            Resolution::Route {
                source: RouteSource::StaleCache,
                ..
            }
        ));
        assert!(matches!(
            c.resolve(at(101), &1, false, || None),
            Resolution::Unavailable(Unresolved::TooStale { .. })
        ));
        assert_eq!(
            c.resolve(at(101), &1, true, || None),
            Resolution::Unavailable(Unresolved::UnknownTenant)
        );
        assert!(c.is_empty());
    }

    #[derive(Clone, Debug)]
    enum Op {
        Advance(u64),
        Fill { tenant: u8, epoch: u64, delay: u64 },
        Hint { tenant: u8, epoch: u64 },
        Resolve { tenant: u8, reachable: bool },
        Invalidate(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u64..40).prop_map(Op::Advance),
            (0u8..3, 1u64..6, 0u64..50).prop_map(|(tenant, epoch, delay)| Op::Fill {
                tenant,
                epoch,
                delay
            }),
            (0u8..3, 1u64..6).prop_map(|(tenant, epoch)| Op::Hint { tenant, epoch }),
            (0u8..3, any::<bool>())
                .prop_map(|(tenant, reachable)| Op::Resolve { tenant, reachable }),
            (0u8..3).prop_map(Op::Invalidate),
        ]
    }

    fn policy() -> impl Strategy<Value = OnUnavailable> {
        prop_oneof![
            Just(OnUnavailable::FailClosed),
            (30u64..200).prop_map(|s| OnUnavailable::ServeStale {
                max_staleness: SimDuration::from_secs(s)
            }),
        ]
    }

    /// A store whose epochs only grow: the entry the test's store returns for a tenant.
    fn store_entry(store_epoch: &[u64; 3], tenant: u8) -> MappingEntry<u8> {
        entry(tenant, store_epoch[usize::from(tenant)])
    }

    proptest! {
        /// Fills never lower a cached epoch, and a same-epoch fill never makes the entry older.
        #[test]
        fn fills_are_epoch_monotone(ops in proptest::collection::vec(op(), 0..80)) {
            let mut c = EdgeCache::new(TTL, OnUnavailable::FailClosed).unwrap();
            let mut now = at(1_000);
            for op in ops {
                let before: Vec<_> = (0..3).map(|t| c.entries.get(&t).cloned()).collect();
                match op {
                    Op::Advance(s) => now += SimDuration::from_secs(s),
                    Op::Fill { tenant, epoch, delay } => {
                        let read_at = now.saturating_sub(SimDuration::from_secs(delay));
                        let outcome = c.fill(read_at, &tenant, entry(tenant, epoch));
                        let after = &c.entries[&tenant];
                        match &before[usize::from(tenant)] {
                            None => prop_assert_eq!(outcome, FillOutcome::Inserted),
                            Some(b) => {
                                prop_assert!(after.entry.epoch >= b.entry.epoch);
                                prop_assert!(after.entry.epoch == b.entry.epoch.max(Epoch::from_u64(epoch)));
                                if after.entry.epoch == b.entry.epoch {
                                    prop_assert!(after.read_at >= b.read_at);
                                }
                            }
                        }
                    }
                    Op::Hint { tenant, epoch } => {
                        let superseded = c.note_stale_epoch(&tenant, Epoch::from_u64(epoch));
                        let is_stale = matches!(c.get(now, &tenant),
                            CacheLookup::Stale { superseded_by: Some(_), .. });
                        prop_assert_eq!(superseded, is_stale);
                    }
                    Op::Resolve { .. } | Op::Invalidate(_) => {}
                }
            }
        }

        /// `get` is Fresh exactly when age < TTL and no newer epoch was hinted, and reports the
        /// age since the store served the entry.
        #[test]
        fn lookup_classifies_by_age_and_hint(ops in proptest::collection::vec(op(), 0..80)) {
            let mut c = EdgeCache::new(TTL, OnUnavailable::FailClosed).unwrap();
            let mut now = at(1_000);
            let mut model: BTreeMap<u8, (u64, SimTime, u64)> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Advance(s) => now += SimDuration::from_secs(s),
                    Op::Fill { tenant, epoch, delay } => {
                        let read_at = now.saturating_sub(SimDuration::from_secs(delay));
                        c.fill(read_at, &tenant, entry(tenant, epoch));
                        let m = model.entry(tenant).or_insert((epoch, read_at, 0));
                        if epoch > m.0 {
                            *m = (epoch, read_at, m.2);
                        } else if epoch == m.0 {
                            m.1 = m.1.max(read_at);
                        }
                    }
                    Op::Hint { tenant, epoch } => {
                        c.note_stale_epoch(&tenant, Epoch::from_u64(epoch));
                        if let Some(m) = model.get_mut(&tenant) {
                            m.2 = m.2.max(epoch);
                        }
                    }
                    Op::Invalidate(t) => {
                        prop_assert_eq!(c.invalidate(&t), model.remove(&t).is_some());
                    }
                    Op::Resolve { .. } => {}
                }
                for t in 0..3u8 {
                    let got = c.get(now, &t);
                    match model.get(&t) {
                        None => prop_assert_eq!(got, CacheLookup::Miss),
                        Some(&(epoch, read_at, hinted)) => {
                            let age = now.saturating_since(read_at);
                            let e = entry(t, epoch);
                            if age < TTL && hinted <= epoch {
                                prop_assert_eq!(got, CacheLookup::Fresh { entry: e, age });
                            } else {
                                let superseded_by = (hinted > epoch).then_some(Epoch::from_u64(hinted));
                                prop_assert_eq!(got, CacheLookup::Stale { entry: e, age, superseded_by });
                            }
                        }
                    }
                }
            }
        }

        /// resolve asks the store exactly when the entry is not fresh and the store is
        /// reachable; routed staleness is < TTL when reachable or FailClosed, and <=
        /// max_staleness under ServeStale; FailClosed never routes an expired entry.
        #[test]
        fn resolve_bounds_staleness(policy in policy(), ops in proptest::collection::vec(op(), 0..80)) {
            let mut c = EdgeCache::new(TTL, policy).unwrap();
            let mut now = at(1_000);
            let mut store_epoch = [1u64; 3];
            for op in ops {
                match op {
                    Op::Advance(s) => now += SimDuration::from_secs(s),
                    Op::Fill { tenant, epoch, delay } => {
                        // A delayed answer from the store: at most the store's epoch then.
                        let e = epoch.min(store_epoch[usize::from(tenant)]);
                        let read_at = now.saturating_sub(SimDuration::from_secs(delay));
                        c.fill(read_at, &tenant, entry(tenant, e));
                    }
                    Op::Hint { tenant, epoch } => {
                        // A cell knows an epoch the store handed out: bump the store.
                        let s = &mut store_epoch[usize::from(tenant)];
                        *s = (*s).max(epoch);
                        c.note_stale_epoch(&tenant, Epoch::from_u64(epoch));
                    }
                    Op::Invalidate(t) => { c.invalidate(&t); }
                    Op::Resolve { tenant, reachable } => {
                        let fresh = matches!(c.get(now, &tenant), CacheLookup::Fresh { .. });
                        let mut fetched = false;
                        let r = c.resolve(now, &tenant, reachable, || {
                            fetched = true;
                            Some(store_entry(&store_epoch, tenant))
                        });
                        prop_assert_eq!(fetched, reachable && !fresh);
                        if let Resolution::Route { entry, staleness, source } = r {
                            if reachable {
                                prop_assert!(staleness < TTL);
                                if source == RouteSource::Store {
                                    prop_assert_eq!(entry, store_entry(&store_epoch, tenant));
                                    prop_assert_eq!(staleness, SimDuration::ZERO);
                                }
                            }
                            match policy {
                                OnUnavailable::FailClosed => prop_assert!(staleness < TTL),
                                OnUnavailable::ServeStale { max_staleness } =>
                                    prop_assert!(staleness <= max_staleness),
                            }
                        } else {
                            prop_assert!(!reachable);
                            prop_assert!(!fresh);
                        }
                    }
                }
            }
        }
    }
}
