//! A multi-tenant LRU cache: capacity in entries, a time to live, and per-tenant isolation by
//! quota or by partition, where a key always carries its tenant.
//!
//! **Keys carry their tenant.** Entries are indexed by the pair `(tenant, key)`: a lookup for
//! tenant `a` can only find an entry that `a` inserted, whatever the key, because the index
//! compares both halves. [`Lookup::Hit`] still names the entry's owner, so a caller (the
//! simulator's invariant check) can verify it; a test-only switch
//! ([`TenantCache::sabotage_share_keys_across_tenants`]) breaks the rule on purpose, to prove
//! such a check can fail.
//!
//! **Eviction is exact LRU.** Every entry is in two recency lists: the cache's and its
//! tenant's. A hit ([`get`](TenantCache::get)) or a write ([`insert`](TenantCache::insert))
//! makes the entry the most recent in both. Inserting a new key when there is no room evicts
//! one entry:
//! - if the tenant already holds its quota, its own least recent entry;
//! - otherwise, if the cache holds `capacity` entries, the least recent entry of the whole
//!   cache (whoever owns it).
//!
//! **Isolation** ([`Isolation`]):
//! - [`Shared`](Isolation::Shared): one LRU for everyone; a tenant that scans many keys pushes
//!   everyone else's entries out.
//! - [`Quota`](Isolation::Quota): no tenant holds more than `max_entries` entries (a tenant's
//!   own quota, set with [`set_tenant_quota`](TenantCache::set_tenant_quota), replaces it); a
//!   tenant at its quota evicts its own entries, never another's. When the quotas add up to no
//!   more than the capacity, every tenant behaves exactly as if it had a private LRU cache of
//!   its quota.
//! - [`Partitioned`](Isolation::Partitioned): each tenant gets a fixed slice of `slice` entries
//!   of its own, reserved while it holds the slice, for at most `capacity / slice` tenants; a
//!   tenant's first insert takes a free slice (or is [refused](Refusal::NoPartition) when none
//!   is left), and [`flush_tenant`](TenantCache::flush_tenant) gives it back.
//!
//! **Time to live.** An entry written at `now` with TTL `d` is returned up to `now + d`
//! exclusive (a hit does not extend it: expire-after-write). An expired entry is never
//! returned: a lookup that finds one removes it and answers [`Lookup::Expired`]. Expired
//! entries that nobody asks for keep their place until LRU eviction reaches them (an
//! [`Evicted`] entry says whether it had expired).
//!
//! **Counting is the caller's.** Every call returns what happened (hit, miss, expired, which
//! entry was evicted) so the caller keeps the hit, miss and eviction counters it wants, per
//! tenant or per tier.
//!
//! **Cost.** [`get`](TenantCache::get), [`insert`](TenantCache::insert) and
//! [`remove`](TenantCache::remove) are O(1): one [`KeyMap`] lookup of `(tenant, key)` (the
//! lookup borrows both halves, no clone), one of the tenant on an insert of a new key, and a
//! constant number of link updates (the entries live in the map itself, linked by position; a
//! removal moves the map's last entry into the hole and relinks it). Inserting a new key clones
//! the tenant once (use a cheap tenant id: an integer, an `Arc<str>`). Nothing is allocated per
//! operation once the cache is full. Memory: the entries, plus a small record (about 50 bytes)
//! for every tenant that has ever inserted.
//!
//! ```
//! use std::time::Instant;
//! use tenantsim::components::cache::{CacheConfig, Isolation, Lookup, TenantCache};
//! use tenantsim::time::{SimDuration, SimTime};
//!
//! let mut cache = TenantCache::<&str, u64, String>::new(CacheConfig {
//!     capacity: 1_000,
//!     ttl: Some(SimDuration::from_secs(60)),
//!     // No tenant may hold more than a quarter of the cache.
//!     isolation: Isolation::Quota { max_entries: 250 },
//! })
//! .expect("valid cache");
//! // The caller's wall clock, as in a production service: the component only ever sees
//! // `now` (the simulator passes simulated time, never this clock).
//! let start = Instant::now();
//! let clock = || SimTime::from_nanos(start.elapsed().as_nanos() as u64);
//!
//! let mut load = |tenant: &'static str, id: u64, cache: &mut TenantCache<&str, u64, String>| {
//!     match cache.get(clock(), &tenant, &id) {
//!         Lookup::Hit { value, owner } => {
//!             assert_eq!(*owner, tenant); // always: keys carry their tenant
//!             value.clone()
//!         }
//!         Lookup::Miss | Lookup::Expired => {
//!             let row = format!("row {id} of {tenant}"); // read from the database
//!             cache.insert(clock(), &tenant, id, row.clone());
//!             row
//!         }
//!     }
//! };
//! load("acme", 42, &mut cache);
//! // The same key of another tenant is another entry.
//! assert_eq!(load("globex", 42, &mut cache), "row 42 of globex");
//! // A scan by one tenant evicts only its own entries once it reaches its quota.
//! for id in 0..10_000 {
//!     load("scanner", id, &mut cache);
//! }
//! assert_eq!(cache.tenant_len(&"scanner"), 250);
//! assert!(matches!(cache.get(clock(), &"acme", &42), Lookup::Hit { .. }));
//! ```

use std::fmt;
use std::hash::Hash;

use super::{KeyMap, PairRef};
use crate::time::{SimDuration, SimTime};

/// No entry: the end of a list.
const NIL: u32 = u32::MAX;

/// How tenants share the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isolation {
    /// One LRU for everyone, no per-tenant limit (unless a tenant has its own quota).
    Shared,
    /// At most `max_entries` entries per tenant (unless it has its own quota); the space is
    /// shared.
    Quota {
        /// The default quota, at least 1.
        max_entries: u32,
    },
    /// A reserved slice of `slice` entries per tenant, for at most `capacity / slice` tenants.
    Partitioned {
        /// Entries per slice, from 1 to the capacity.
        slice: u32,
    },
}

/// A cache's configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// Most entries, at least 1.
    pub capacity: u32,
    /// How long an entry lives after it is written; `None` for ever. Not zero.
    pub ttl: Option<SimDuration>,
    /// How tenants share it.
    pub isolation: Isolation,
}

/// Why a configuration is invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheConfigError {
    /// The capacity is zero.
    ZeroCapacity,
    /// A TTL of zero would make every entry expired on arrival (omit it for no TTL).
    ZeroTtl,
    /// A quota of zero in [`Isolation::Quota`] would cache nothing.
    ZeroQuota,
    /// A slice of zero, or larger than the capacity.
    BadSlice {
        /// The slice.
        slice: u32,
        /// The capacity.
        capacity: u32,
    },
}

impl fmt::Display for CacheConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheConfigError::ZeroCapacity => write!(f, "a cache needs a capacity of at least 1"),
            CacheConfigError::ZeroTtl => {
                write!(
                    f,
                    "a cache TTL must be longer than zero (omit it for no TTL)"
                )
            }
            CacheConfigError::ZeroQuota => {
                write!(f, "a per-tenant cache quota must be at least 1 entry")
            }
            CacheConfigError::BadSlice { slice, capacity } => write!(
                f,
                "a partition slice must be between 1 and the capacity ({capacity}), not {slice}"
            ),
        }
    }
}

impl std::error::Error for CacheConfigError {}

/// What a lookup found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup<'a, T, V> {
    /// A live entry, now the most recent.
    Hit {
        /// Its value.
        value: &'a V,
        /// The tenant that owns it: always the tenant that asked, unless the cache was
        /// sabotaged.
        owner: &'a T,
    },
    /// No entry.
    Miss,
    /// An entry whose TTL had passed: it was removed, and nothing is returned.
    Expired,
}

impl<T, V> Lookup<'_, T, V> {
    /// Whether it was a hit.
    pub fn is_hit(&self) -> bool {
        matches!(self, Lookup::Hit { .. })
    }
}

/// An entry pushed out to make room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evicted<T, K, V> {
    /// Its owner.
    pub tenant: T,
    /// Its key.
    pub key: K,
    /// Its value.
    pub value: V,
    /// Whether its TTL had already passed (it could not have been returned any more).
    pub expired: bool,
}

/// Why an insert did not cache anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The tenant's quota is zero.
    ZeroQuota,
    /// [`Isolation::Partitioned`]: every slice is taken by other tenants.
    NoPartition,
}

/// What an insert did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Insertion<T, K, V> {
    /// A new entry, possibly evicting one.
    Added {
        /// The entry evicted to make room, if the cache or the tenant was full.
        evicted: Option<Evicted<T, K, V>>,
    },
    /// The tenant already had an entry for the key (live or expired): its value and TTL are
    /// replaced and it is now the most recent.
    Replaced {
        /// The value it had.
        previous: V,
    },
    /// Nothing was cached.
    Refused(Refusal),
}

#[derive(Clone, Debug)]
struct Entry<V> {
    /// The owner's position in the tenant table.
    tenant: u32,
    /// The cache's recency list (towards the most recent, towards the least recent).
    newer: u32,
    older: u32,
    /// The tenant's recency list.
    tenant_newer: u32,
    tenant_older: u32,
    expires_at: SimTime,
    value: V,
}

#[derive(Clone, Copy, Debug)]
struct TenantState {
    len: u32,
    /// Its most and least recent entries.
    newest: u32,
    oldest: u32,
    /// Its own quota (`None`: the isolation's default).
    quota: Option<u32>,
    /// [`Isolation::Partitioned`]: whether it holds a slice.
    partition: bool,
}

/// A multi-tenant LRU cache, generic over the tenant `T`, the key `K` and the value `V`.
#[derive(Clone, Debug)]
pub struct TenantCache<T, K, V> {
    capacity: u32,
    ttl: Option<SimDuration>,
    isolation: Isolation,
    /// The entries, keyed by (tenant, key), linked by position.
    entries: KeyMap<(T, K), Entry<V>>,
    /// Never removed, so the positions entries hold stay valid.
    tenants: KeyMap<T, TenantState>,
    newest: u32,
    oldest: u32,
    partitions_used: u32,
    /// Test only: every tenant's keys are indexed under this one tenant.
    sabotage: Option<Option<T>>,
}

fn position(index: usize) -> u32 {
    u32::try_from(index).expect("fewer than 2^32 entries and tenants")
}

impl<T: Hash + Eq + Clone, K: Hash + Eq, V> TenantCache<T, K, V> {
    /// An empty cache, or an error naming the invalid setting.
    pub fn new(config: CacheConfig) -> Result<TenantCache<T, K, V>, CacheConfigError> {
        if config.capacity == 0 {
            return Err(CacheConfigError::ZeroCapacity);
        }
        if config.ttl == Some(SimDuration::ZERO) {
            return Err(CacheConfigError::ZeroTtl);
        }
        match config.isolation {
            Isolation::Quota { max_entries: 0 } => return Err(CacheConfigError::ZeroQuota),
            Isolation::Partitioned { slice } if slice == 0 || slice > config.capacity => {
                return Err(CacheConfigError::BadSlice {
                    slice,
                    capacity: config.capacity,
                });
            }
            _ => {}
        }
        Ok(TenantCache {
            capacity: config.capacity,
            ttl: config.ttl,
            isolation: config.isolation,
            entries: KeyMap::default(),
            tenants: KeyMap::default(),
            newest: NIL,
            oldest: NIL,
            partitions_used: 0,
            sabotage: None,
        })
    }

    /// Looks `key` up among `tenant`'s entries. A hit becomes the most recent entry; an expired
    /// entry is removed.
    pub fn get(&mut self, now: SimTime, tenant: &T, key: &K) -> Lookup<'_, T, V> {
        let shared;
        let scope = if self.sabotage.is_none() {
            tenant
        } else {
            shared = self.shared_scope(tenant);
            &shared
        };
        let Some((pos, _, entry)) = self.entries.get_full(&PairRef(scope, key)) else {
            return Lookup::Miss;
        };
        let pos = position(pos);
        if entry.expires_at <= now {
            self.remove_at(pos);
            return Lookup::Expired;
        }
        self.touch(pos);
        let entry = &self.entries[pos as usize];
        let (owner, _) = self
            .tenants
            .get_index(entry.tenant as usize)
            .expect("an entry's tenant is recorded");
        Lookup::Hit {
            value: &entry.value,
            owner,
        }
    }

    /// Writes `value` for `tenant`'s `key` with the cache's TTL (see [`Insertion`]).
    pub fn insert(&mut self, now: SimTime, tenant: &T, key: K, value: V) -> Insertion<T, K, V> {
        self.insert_with_ttl(now, tenant, key, value, self.ttl)
    }

    /// Writes `value` for `tenant`'s `key` with its own TTL (`None`: it never expires).
    pub fn insert_with_ttl(
        &mut self,
        now: SimTime,
        tenant: &T,
        key: K,
        value: V,
        ttl: Option<SimDuration>,
    ) -> Insertion<T, K, V> {
        let expires_at = ttl.map_or(SimTime::MAX, |d| now + d);
        let scope = if self.sabotage.is_none() {
            tenant.clone()
        } else {
            self.shared_scope(tenant)
        };
        if let Some(pos) = self.entries.get_index_of(&PairRef(&scope, &key)) {
            let pos = position(pos);
            let entry = &mut self.entries[pos as usize];
            let previous = std::mem::replace(&mut entry.value, value);
            entry.expires_at = expires_at;
            self.touch(pos);
            return Insertion::Replaced { previous };
        }
        let t = self.tenant_index(tenant);
        let quota = self.quota_of(t);
        if quota == 0 {
            return Insertion::Refused(Refusal::ZeroQuota);
        }
        if let Isolation::Partitioned { slice } = self.isolation
            && !self.tenants[t as usize].partition
        {
            if self.partitions_used >= self.capacity / slice {
                return Insertion::Refused(Refusal::NoPartition);
            }
            self.partitions_used += 1;
            self.tenants[t as usize].partition = true;
        }
        let victim = if self.tenants[t as usize].len >= quota {
            self.tenants[t as usize].oldest
        } else if self.entries.len() >= self.capacity as usize {
            self.oldest
        } else {
            NIL
        };
        let evicted = (victim != NIL).then(|| {
            let ((tenant, key), entry) = self.remove_at(victim);
            Evicted {
                tenant,
                key,
                expired: entry.expires_at <= now,
                value: entry.value,
            }
        });
        let entry = Entry {
            tenant: t,
            newer: NIL,
            older: NIL,
            tenant_newer: NIL,
            tenant_older: NIL,
            expires_at,
            value,
        };
        let (pos, _) = self.entries.insert_full((scope, key), entry);
        self.tenants[t as usize].len += 1;
        self.link_newest(position(pos));
        Insertion::Added { evicted }
    }

    /// Removes `tenant`'s entry for `key` (an invalidation), returning its value if it had one
    /// (expired or not).
    pub fn remove(&mut self, tenant: &T, key: &K) -> Option<V> {
        let shared;
        let scope = if self.sabotage.is_none() {
            tenant
        } else {
            shared = self.shared_scope(tenant);
            &shared
        };
        let pos = self.entries.get_index_of(&PairRef(scope, key))?;
        Some(self.remove_at(position(pos)).1.value)
    }

    /// Removes every entry; returns how many there were. Quotas set per tenant stay; slices
    /// are all given back.
    pub fn flush(&mut self) -> usize {
        let flushed = self.entries.len();
        self.entries.clear();
        for state in self.tenants.values_mut() {
            *state = TenantState {
                quota: state.quota,
                ..TenantState::EMPTY
            };
        }
        self.newest = NIL;
        self.oldest = NIL;
        self.partitions_used = 0;
        flushed
    }

    /// Removes every entry of `tenant` and gives its slice back; returns how many there were.
    /// O(the tenant's entries).
    pub fn flush_tenant(&mut self, tenant: &T) -> usize {
        let Some(t) = self.tenants.get_index_of(tenant) else {
            return 0;
        };
        let flushed = self.evict_tenant_down_to(position(t), 0);
        let state = &mut self.tenants[t];
        if state.partition {
            state.partition = false;
            self.partitions_used -= 1;
        }
        flushed as usize
    }

    /// Sets (`Some`) or removes (`None`, back to the isolation's default) `tenant`'s own quota,
    /// evicting its least recent entries at once if it holds more; returns how many were
    /// evicted. Under [`Isolation::Partitioned`] the quota cannot exceed the slice.
    pub fn set_tenant_quota(&mut self, tenant: &T, quota: Option<u32>) -> u32 {
        let t = self.tenant_index(tenant);
        self.tenants[t as usize].quota = quota;
        let quota = self.quota_of(t);
        self.evict_tenant_down_to(t, quota)
    }

    /// The quota that applies to `tenant` (the capacity when nothing limits it).
    pub fn tenant_quota(&self, tenant: &T) -> u32 {
        let own = self.tenants.get(tenant).and_then(|s| s.quota);
        self.effective_quota(own)
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries `tenant` holds.
    pub fn tenant_len(&self, tenant: &T) -> u32 {
        self.tenants.get(tenant).map_or(0, |s| s.len)
    }

    /// The capacity in entries.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// The isolation policy.
    pub fn isolation(&self) -> Isolation {
        self.isolation
    }

    /// Slices taken under [`Isolation::Partitioned`] (0 otherwise).
    pub fn partitions_used(&self) -> u32 {
        self.partitions_used
    }

    /// Tenants the cache keeps a record for.
    pub fn tracked_tenants(&self) -> usize {
        self.tenants.len()
    }

    /// Every entry as (owner, key), most recent first (O(n); for inspection and tests).
    pub fn entries_by_recency(&self) -> impl Iterator<Item = (&T, &K)> + '_ {
        let mut pos = self.newest;
        std::iter::from_fn(move || {
            if pos == NIL {
                return None;
            }
            let ((_, key), entry) = self.entries.get_index(pos as usize)?;
            let (owner, _) = self.tenants.get_index(entry.tenant as usize)?;
            pos = entry.older;
            Some((owner, key))
        })
    }

    /// `tenant`'s keys, most recent first (O(its entries); for inspection and tests).
    pub fn tenant_keys_by_recency<'a>(&'a self, tenant: &T) -> impl Iterator<Item = &'a K> + 'a {
        let mut pos = self.tenants.get(tenant).map_or(NIL, |s| s.newest);
        std::iter::from_fn(move || {
            if pos == NIL {
                return None;
            }
            let ((_, key), entry) = self.entries.get_index(pos as usize)?;
            pos = entry.tenant_older;
            Some(key)
        })
    }

    /// **Test only; never in production.** Breaks the rule that keys carry their tenant: from
    /// now on every tenant's keys are indexed under one tenant (the first to touch the cache
    /// afterwards), so a lookup may return another tenant's entry ([`Lookup::Hit`] names its
    /// real owner). It exists so a test can prove that an invariant check on the owner fails
    /// when isolation breaks. The cache is flushed first.
    pub fn sabotage_share_keys_across_tenants(&mut self) {
        self.flush();
        self.sabotage = Some(None);
    }

    /// Under sabotage: the one tenant all keys are indexed under.
    #[cold]
    fn shared_scope(&mut self, tenant: &T) -> T {
        match &mut self.sabotage {
            Some(shared) => shared.get_or_insert_with(|| tenant.clone()).clone(),
            None => tenant.clone(),
        }
    }

    fn effective_quota(&self, own: Option<u32>) -> u32 {
        match self.isolation {
            Isolation::Shared => own.unwrap_or(self.capacity),
            Isolation::Quota { max_entries } => own.unwrap_or(max_entries),
            Isolation::Partitioned { slice } => own.map_or(slice, |q| q.min(slice)),
        }
    }

    fn quota_of(&self, t: u32) -> u32 {
        self.effective_quota(self.tenants[t as usize].quota)
    }

    fn tenant_index(&mut self, tenant: &T) -> u32 {
        let index = match self.tenants.get_index_of(tenant) {
            Some(index) => index,
            None => {
                self.tenants
                    .insert_full(tenant.clone(), TenantState::EMPTY)
                    .0
            }
        };
        position(index)
    }

    /// Evicts `t`'s least recent entries until it holds at most `keep`; returns how many.
    fn evict_tenant_down_to(&mut self, t: u32, keep: u32) -> u32 {
        let mut evicted = 0;
        while self.tenants[t as usize].len > keep {
            let oldest = self.tenants[t as usize].oldest;
            self.remove_at(oldest);
            evicted += 1;
        }
        evicted
    }

    /// Makes the entry at `pos` the most recent of the cache and of its tenant.
    fn touch(&mut self, pos: u32) {
        if self.newest == pos {
            let t = self.entries[pos as usize].tenant;
            if self.tenants[t as usize].newest == pos {
                return;
            }
        }
        self.unlink(pos);
        self.link_newest(pos);
    }

    fn link_newest(&mut self, pos: u32) {
        let (cache_newest, t) = (self.newest, self.entries[pos as usize].tenant);
        let tenant_newest = self.tenants[t as usize].newest;
        let entry = &mut self.entries[pos as usize];
        entry.newer = NIL;
        entry.older = cache_newest;
        entry.tenant_newer = NIL;
        entry.tenant_older = tenant_newest;
        match cache_newest {
            NIL => self.oldest = pos,
            n => self.entries[n as usize].newer = pos,
        }
        self.newest = pos;
        match tenant_newest {
            NIL => self.tenants[t as usize].oldest = pos,
            n => self.entries[n as usize].tenant_newer = pos,
        }
        self.tenants[t as usize].newest = pos;
    }

    /// Takes the entry at `pos` out of both lists (its own links are left stale).
    fn unlink(&mut self, pos: u32) {
        let Entry {
            tenant: t,
            newer,
            older,
            tenant_newer,
            tenant_older,
            ..
        } = self.entries[pos as usize];
        match newer {
            NIL => self.newest = older,
            n => self.entries[n as usize].older = older,
        }
        match older {
            NIL => self.oldest = newer,
            o => self.entries[o as usize].newer = newer,
        }
        match tenant_newer {
            NIL => self.tenants[t as usize].newest = tenant_older,
            n => self.entries[n as usize].tenant_older = tenant_older,
        }
        match tenant_older {
            NIL => self.tenants[t as usize].oldest = tenant_newer,
            o => self.entries[o as usize].tenant_newer = tenant_newer,
        }
    }

    /// Removes the entry at `pos`. The map moves its last entry into the hole; the entries and
    /// list ends that pointed at the moved one are repointed.
    fn remove_at(&mut self, pos: u32) -> ((T, K), Entry<V>) {
        self.unlink(pos);
        let t = self.entries[pos as usize].tenant;
        self.tenants[t as usize].len -= 1;
        let last = position(self.entries.len() - 1);
        let removed = self
            .entries
            .swap_remove_index(pos as usize)
            .expect("the position is in the map");
        if pos != last {
            let Entry {
                tenant: moved_tenant,
                newer,
                older,
                tenant_newer,
                tenant_older,
                ..
            } = self.entries[pos as usize];
            match newer {
                NIL => self.newest = pos,
                n => self.entries[n as usize].older = pos,
            }
            match older {
                NIL => self.oldest = pos,
                o => self.entries[o as usize].newer = pos,
            }
            let state = &mut self.tenants[moved_tenant as usize];
            if tenant_newer == NIL {
                state.newest = pos;
            }
            if tenant_older == NIL {
                state.oldest = pos;
            }
            if tenant_newer != NIL {
                self.entries[tenant_newer as usize].tenant_older = pos;
            }
            if tenant_older != NIL {
                self.entries[tenant_older as usize].tenant_newer = pos;
            }
        }
        removed
    }
}

impl TenantState {
    const EMPTY: TenantState = TenantState {
        len: 0,
        newest: NIL,
        oldest: NIL,
        quota: None,
        partition: false,
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(ms: u64) -> SimTime {
        SimTime::from_nanos(ms * 1_000_000)
    }

    fn cache(capacity: u32, ttl_ms: Option<u64>, isolation: Isolation) -> TenantCache<u8, u8, u32> {
        TenantCache::new(CacheConfig {
            capacity,
            ttl: ttl_ms.map(SimDuration::from_millis),
            isolation,
        })
        .unwrap()
    }

    /// The recency order; one item too many if the list is longer than the map (a cycle).
    fn keys(c: &TenantCache<u8, u8, u32>) -> Vec<(u8, u8)> {
        c.entries_by_recency()
            .take(c.len() + 1)
            .map(|(t, k)| (*t, *k))
            .collect()
    }

    #[test]
    fn a_tenant_never_sees_another_tenants_entry_for_the_same_key() {
        let mut c = cache(4, None, Isolation::Shared);
        c.insert(at(0), &1, 7, 100);
        assert_eq!(c.get(at(0), &2, &7), Lookup::Miss);
        c.insert(at(0), &2, 7, 200);
        assert_eq!(
            c.get(at(0), &1, &7),
            Lookup::Hit {
                value: &100,
                owner: &1
            }
        );
        assert_eq!(
            c.get(at(0), &2, &7),
            Lookup::Hit {
                value: &200,
                owner: &2
            }
        );
        assert_eq!(c.remove(&2, &7), Some(200));
        assert_eq!(
            c.get(at(0), &1, &7),
            Lookup::Hit {
                value: &100,
                owner: &1
            }
        );
    }

    #[test]
    fn the_sabotage_switch_really_leaks_entries_across_tenants() {
        let mut c = cache(4, None, Isolation::Shared);
        c.insert(at(0), &1, 7, 100);
        c.sabotage_share_keys_across_tenants();
        assert!(c.is_empty());
        c.insert(at(0), &1, 7, 100);
        assert_eq!(
            c.get(at(0), &2, &7),
            Lookup::Hit {
                value: &100,
                owner: &1
            }
        );
    }

    #[test]
    fn lru_evicts_the_least_recent_and_a_hit_refreshes() {
        let mut c = cache(3, None, Isolation::Shared);
        for k in 0..3 {
            c.insert(at(0), &0, k, u32::from(k));
        }
        assert!(c.get(at(0), &0, &0).is_hit());
        let Insertion::Added { evicted: Some(e) } = c.insert(at(0), &1, 9, 9) else {
            panic!("full")
        };
        assert_eq!((e.tenant, e.key, e.value, e.expired), (0, 1, 1, false));
        assert_eq!(keys(&c), [(1, 9), (0, 0), (0, 2)]);
        assert_eq!(
            c.insert(at(0), &0, 2, 22),
            Insertion::Replaced { previous: 2 }
        );
        assert_eq!(keys(&c), [(0, 2), (1, 9), (0, 0)]);
    }

    #[test]
    fn entries_expire_exactly_at_their_ttl() {
        let mut c = cache(3, Some(10), Isolation::Shared);
        c.insert(at(5), &0, 1, 1);
        c.insert_with_ttl(at(5), &0, 2, 2, None);
        assert!(
            c.get(at(14), &0, &1).is_hit(),
            "a hit does not extend the TTL"
        );
        assert_eq!(c.get(at(15), &0, &1), Lookup::Expired);
        assert_eq!(
            c.get(at(15), &0, &1),
            Lookup::Miss,
            "the expired entry was removed"
        );
        assert!(c.get(at(10_000), &0, &2).is_hit());
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn quotas_and_partitions_bound_each_tenant() {
        let mut c = cache(6, None, Isolation::Quota { max_entries: 2 });
        for k in 0..5 {
            c.insert(at(0), &0, k, 0);
        }
        assert_eq!(c.tenant_len(&0), 2);
        assert_eq!(c.set_tenant_quota(&0, Some(1)), 1);
        assert_eq!(
            c.tenant_keys_by_recency(&0).copied().collect::<Vec<_>>(),
            [4]
        );
        assert_eq!(c.set_tenant_quota(&1, Some(0)), 0);
        assert_eq!(
            c.insert(at(0), &1, 0, 0),
            Insertion::Refused(Refusal::ZeroQuota)
        );

        let mut p = cache(5, None, Isolation::Partitioned { slice: 2 });
        for tenant in 0..2 {
            for k in 0..3 {
                p.insert(at(0), &tenant, k, 0);
            }
        }
        assert_eq!(p.partitions_used(), 2);
        assert_eq!(
            p.insert(at(0), &2, 0, 0),
            Insertion::Refused(Refusal::NoPartition)
        );
        assert_eq!(p.flush_tenant(&0), 2);
        assert!(matches!(
            p.insert(at(0), &2, 0, 0),
            Insertion::Added { evicted: None }
        ));
        assert_eq!(p.flush(), 3);
        assert_eq!(p.partitions_used(), 0);
    }

    #[test]
    fn settings_are_checked() {
        let bad = |capacity, ttl, isolation| {
            TenantCache::<u8, u8, u8>::new(CacheConfig {
                capacity,
                ttl,
                isolation,
            })
            .err()
        };
        assert_eq!(
            bad(0, None, Isolation::Shared),
            Some(CacheConfigError::ZeroCapacity)
        );
        assert_eq!(
            bad(1, Some(SimDuration::ZERO), Isolation::Shared),
            Some(CacheConfigError::ZeroTtl)
        );
        assert_eq!(
            bad(1, None, Isolation::Quota { max_entries: 0 }),
            Some(CacheConfigError::ZeroQuota)
        );
        assert_eq!(
            bad(4, None, Isolation::Partitioned { slice: 5 }),
            Some(CacheConfigError::BadSlice {
                slice: 5,
                capacity: 4
            })
        );
    }

    #[derive(Clone, Debug)]
    enum Op {
        Get {
            tenant: u8,
            key: u8,
        },
        Insert {
            tenant: u8,
            key: u8,
            ttl: Option<Option<u64>>,
        },
        Remove {
            tenant: u8,
            key: u8,
        },
        FlushTenant {
            tenant: u8,
        },
        Flush,
        SetQuota {
            tenant: u8,
            quota: Option<u32>,
        },
        Advance {
            ms: u64,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            10 => (0u8..3, 0u8..8).prop_map(|(tenant, key)| Op::Get { tenant, key }),
            10 => (0u8..3, 0u8..8, prop::option::of(prop::option::of(1u64..30)))
                .prop_map(|(tenant, key, ttl)| Op::Insert { tenant, key, ttl }),
            1 => (0u8..3, 0u8..8).prop_map(|(tenant, key)| Op::Remove { tenant, key }),
            1 => (0u8..3).prop_map(|tenant| Op::FlushTenant { tenant }),
            1 => Just(Op::Flush),
            1 => (0u8..3, prop::option::of(0u32..5)).prop_map(|(tenant, quota)| Op::SetQuota { tenant, quota }),
            3 => (0u64..10).prop_map(|ms| Op::Advance { ms }),
        ]
    }

    fn isolation() -> impl Strategy<Value = Isolation> {
        prop_oneof![
            Just(Isolation::Shared),
            (1u32..5).prop_map(|max_entries| Isolation::Quota { max_entries }),
            (1u32..4).prop_map(|slice| Isolation::Partitioned { slice }),
        ]
    }

    /// The test's own cache: a vector of entries, most recent first, searched linearly.
    struct Reference {
        capacity: u32,
        isolation: Isolation,
        /// (tenant, key, value, expires_at), most recent first.
        entries: Vec<(u8, u8, u32, SimTime)>,
        quotas: [Option<u32>; 3],
        partitioned: [bool; 3],
    }

    impl Reference {
        fn quota(&self, tenant: u8) -> u32 {
            let own = self.quotas[tenant as usize];
            match self.isolation {
                Isolation::Shared => own.unwrap_or(self.capacity),
                Isolation::Quota { max_entries } => own.unwrap_or(max_entries),
                Isolation::Partitioned { slice } => own.map_or(slice, |q| q.min(slice)),
            }
        }

        fn held(&self, tenant: u8) -> u32 {
            self.entries.iter().filter(|e| e.0 == tenant).count() as u32
        }

        fn find(&self, tenant: u8, key: u8) -> Option<usize> {
            self.entries
                .iter()
                .position(|e| e.0 == tenant && e.1 == key)
        }

        /// The least recent entry of `tenant` (or of anyone).
        fn oldest(&self, tenant: Option<u8>) -> usize {
            self.entries
                .iter()
                .rposition(|e| tenant.is_none_or(|t| e.0 == t))
                .expect("an entry to evict")
        }
    }

    proptest! {
        /// Under any sequence of lookups, writes (with any TTL), removals, flushes and quota
        /// changes, the cache does exactly what a naive most-recent-first vector does: the same
        /// hits with the same values (so LRU order is exact, an expired entry is never
        /// returned, and a tenant never sees another's entry), the same evictions, the same
        /// refusals; and the whole recency order, and each tenant's, agree after every step.
        /// Size never exceeds the capacity, nor a tenant's size its quota.
        #[test]
        fn behaves_exactly_like_a_naive_lru(
            capacity in 1u32..7,
            default_ttl in prop::option::of(1u64..20),
            isolation in isolation(),
            ops in prop::collection::vec(op(), 1..300),
        ) {
            let isolation = match isolation {
                Isolation::Partitioned { slice } => Isolation::Partitioned { slice: slice.min(capacity) },
                other => other,
            };
            let mut c = cache(capacity, default_ttl, isolation);
            let mut model = Reference {
                capacity,
                isolation,
                entries: Vec::new(),
                quotas: [None; 3],
                partitioned: [false; 3],
            };
            let mut now = at(0);
            let mut next_value = 0u32;
            for op in ops {
                match op {
                    Op::Get { tenant, key } => {
                        let expected = match model.find(tenant, key) {
                            None => Lookup::Miss,
                            Some(i) if model.entries[i].3 <= now => {
                                model.entries.remove(i);
                                Lookup::Expired
                            }
                            Some(i) => {
                                let entry = model.entries.remove(i);
                                model.entries.insert(0, entry);
                                Lookup::Hit { value: &model.entries[0].2, owner: &model.entries[0].0 }
                            }
                        };
                        prop_assert_eq!(c.get(now, &tenant, &key), expected);
                    }
                    Op::Insert { tenant, key, ttl } => {
                        let ttl = match ttl {
                            None => default_ttl.map(SimDuration::from_millis),
                            Some(ttl) => ttl.map(SimDuration::from_millis),
                        };
                        let expires = ttl.map_or(SimTime::MAX, |d| now + d);
                        let value = next_value;
                        next_value += 1;
                        let got = match ttl {
                            t if t == default_ttl.map(SimDuration::from_millis) => c.insert(now, &tenant, key, value),
                            t => c.insert_with_ttl(now, &tenant, key, value, t),
                        };
                        let expected = if let Some(i) = model.find(tenant, key) {
                            let (.., previous, _) = model.entries.remove(i);
                            model.entries.insert(0, (tenant, key, value, expires));
                            Insertion::Replaced { previous }
                        } else if model.quota(tenant) == 0 {
                            Insertion::Refused(Refusal::ZeroQuota)
                        } else if let Isolation::Partitioned { slice } = isolation
                            && !model.partitioned[tenant as usize]
                            && model.partitioned.iter().filter(|p| **p).count() as u32 >= capacity / slice
                        {
                            Insertion::Refused(Refusal::NoPartition)
                        } else {
                            if matches!(isolation, Isolation::Partitioned { .. }) {
                                model.partitioned[tenant as usize] = true;
                            }
                            let victim = if model.held(tenant) >= model.quota(tenant) {
                                Some(model.oldest(Some(tenant)))
                            } else if model.entries.len() >= capacity as usize {
                                Some(model.oldest(None))
                            } else {
                                None
                            };
                            let evicted = victim.map(|i| {
                                let (tenant, key, value, expires) = model.entries.remove(i);
                                Evicted { tenant, key, value, expired: expires <= now }
                            });
                            model.entries.insert(0, (tenant, key, value, expires));
                            Insertion::Added { evicted }
                        };
                        prop_assert_eq!(got, expected);
                    }
                    Op::Remove { tenant, key } => {
                        let expected = model.find(tenant, key).map(|i| model.entries.remove(i).2);
                        prop_assert_eq!(c.remove(&tenant, &key), expected);
                    }
                    Op::FlushTenant { tenant } => {
                        let before = model.entries.len();
                        model.entries.retain(|e| e.0 != tenant);
                        model.partitioned[tenant as usize] = false;
                        prop_assert_eq!(c.flush_tenant(&tenant), before - model.entries.len());
                    }
                    Op::Flush => {
                        prop_assert_eq!(c.flush(), model.entries.len());
                        model.entries.clear();
                        model.partitioned = [false; 3];
                    }
                    Op::SetQuota { tenant, quota } => {
                        model.quotas[tenant as usize] = quota;
                        let mut evicted = 0;
                        while model.held(tenant) > model.quota(tenant) {
                            let i = model.oldest(Some(tenant));
                            model.entries.remove(i);
                            evicted += 1;
                        }
                        prop_assert_eq!(c.set_tenant_quota(&tenant, quota), evicted);
                    }
                    Op::Advance { ms } => now += SimDuration::from_millis(ms),
                }
                let order: Vec<(u8, u8)> = model.entries.iter().map(|e| (e.0, e.1)).collect();
                prop_assert_eq!(keys(&c), order.clone());
                prop_assert!(c.len() <= capacity as usize);
                for tenant in 0..3u8 {
                    let own: Vec<u8> = order.iter().filter(|e| e.0 == tenant).map(|e| e.1).collect();
                    let listed: Vec<u8> = c.tenant_keys_by_recency(&tenant).take(c.len() + 1).copied().collect();
                    prop_assert_eq!(listed, own);
                    prop_assert_eq!(c.tenant_len(&tenant), model.held(tenant));
                    prop_assert!(c.tenant_len(&tenant) <= c.tenant_quota(&tenant));
                    prop_assert_eq!(c.tenant_quota(&tenant), model.quota(tenant));
                }
                let slices = model.partitioned.iter().filter(|p| **p).count() as u32;
                prop_assert_eq!(c.partitions_used(), slices);
            }
        }
    }
}
