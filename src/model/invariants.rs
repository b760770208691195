//! The always-on invariants, observed while the model runs: no tenantless work, no
//! cross-tenant access, EU residency, no split brain, no lost acknowledged writes; and for
//! scenarios with workflows, no access before ready, no orphaned resources, no duplicate side
//! effects, workflows within their bound, deletions complete at their bound.
//!
//! Each check counts violations and keeps the first one as an example. Every check can be
//! made to fail: residency by `[failover] residency = "ignore"`, split brain by
//! `[migration] fencing = false`, lost writes by `[migration] dual_write = false`, and the
//! two that no configuration should ever break by a test-only [`Sabotage`]. Of the lifecycle
//! checks, access by a step's `gates_access = false`, orphans by a workflow's
//! `compensation = false`, the deletion ledger by backups that never expire, and duplicates
//! and the bound by a [`Sabotage`] of the runner.

use std::collections::BTreeMap;

use crate::time::SimTime;

/// A deliberately broken policy, for tests that prove an invariant check can fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sabotage {
    /// Background jobs lose their tenant context when they are retried.
    TenantlessRetries,
    /// A cell caches one data key for everyone, whoever it belongs to.
    SharedKeyCache,
    /// Caches index every tenant's keys under one tenant, so a lookup can return another
    /// tenant's entry.
    SharedCacheKeys,
    /// The workflow runner sends a fresh idempotency key with every attempt, so a retry after
    /// a timeout (or a lost result) applies a side effect a second time.
    FreshKeyPerAttempt,
    /// The workflow runner forgets its timers: a workflow waiting for a backoff or a timeout
    /// is never woken again.
    LostWakeUps,
}

/// One invariant's observations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Check {
    /// How many times it was checked.
    pub checked: u64,
    /// How many times it was violated.
    pub violations: u64,
    /// The first violation, described.
    pub first: Option<String>,
}

impl Check {
    /// Counts one check; on a violation, also keeps the first description. Inlined, with the
    /// violation out of line: checks run on every request and almost never fail.
    #[inline]
    fn observe(&mut self, ok: bool, describe: impl FnOnce() -> String) {
        self.checked += 1;
        if !ok {
            self.violated(describe);
        }
    }

    #[cold]
    #[inline(never)]
    fn violated(&mut self, describe: impl FnOnce() -> String) {
        self.violations += 1;
        if self.first.is_none() {
            self.first = Some(describe());
        }
    }
}

/// Per tenant: every write some cell accepted, with the cells that hold it, until it is
/// acknowledged (then kept, to be checked) or its work ends without an acknowledgement.
#[derive(Clone, Debug, Default)]
struct WriteBooks {
    next: u64,
    /// Writes with a smaller id were stored before the current migration started: the
    /// backfill copies exactly those.
    snapshot: u64,
    /// Write id -> (cells holding it, acknowledged).
    writes: BTreeMap<u64, (Vec<u32>, bool)>,
}
/// All invariant checks of a run.
#[derive(Clone, Debug, Default)]
pub struct Invariants {
    /// Every unit of work carries its tenant.
    pub tenantless: Check,
    /// A request only touches its own tenant's data key.
    pub cross_tenant: Check,
    /// EU-only tenants are only ever served by EU cells.
    pub residency: Check,
    /// No write accepted as authoritative by two cells for the same tenant and epoch.
    pub split_brain: Check,
    /// Every acknowledged write is held by the tenant's owner cell.
    pub lost_writes: Check,
    /// No request of a signed-up tenant is served before every resource it needs (DNS record,
    /// certificate) is ready.
    pub access_before_ready: Check,
    /// At the end, every resource a workflow created belongs to an active (or onboarding)
    /// tenant, or was removed.
    pub orphans: Check,
    /// A workflow step's side effect is applied at most once, whatever the retries.
    pub duplicates: Check,
    /// Every workflow ends within its bound (plus the time its runner was down).
    pub workflow_bound: Check,
    /// When a deletion's bound falls due, no store holds the tenant.
    pub deletion_ledger: Check,
    authoritative: BTreeMap<(u32, u64), u32>,
    books: Vec<WriteBooks>,
}

impl Invariants {
    /// Checks for `tenants` tenants.
    pub fn new(tenants: usize) -> Self {
        Invariants {
            books: vec![WriteBooks::default(); tenants],
            ..Invariants::default()
        }
    }

    /// A unit of work was dispatched with `tenant` as its context.
    pub fn work(&mut self, at: SimTime, tenant: Option<u32>, what: &str) {
        self.tenantless.observe(tenant.is_some(), || {
            format!("{at}: {what} ran with no tenant context")
        });
    }

    /// `tenant`'s request used the data key of `key_owner`.
    pub fn key_use(&mut self, at: SimTime, tenant: u32, key_owner: u32, names: &[&str]) {
        self.cross_tenant.observe(tenant == key_owner, || {
            format!(
                "{at}: a request of {} used the data key of {}",
                name(names, tenant),
                name(names, key_owner)
            )
        });
    }

    /// `tenant` (EU-only or not) was served by a cell that is EU or not.
    #[inline]
    pub fn served(
        &mut self,
        at: SimTime,
        tenant: u32,
        eu_only: bool,
        cell_eu: bool,
        cell: &str,
        names: &[&str],
    ) {
        if eu_only {
            self.residency.observe(cell_eu, || {
                format!(
                    "{at}: EU-only tenant {} served by non-EU cell {cell}",
                    name(names, tenant)
                )
            });
        }
    }

    /// `cell` accepted a write of `tenant` at `epoch` as authoritative.
    pub fn authoritative_write(
        &mut self,
        at: SimTime,
        tenant: u32,
        epoch: u64,
        cell: u32,
        names: &[&str],
        cells: &[&str],
    ) {
        let first = *self.authoritative.entry((tenant, epoch)).or_insert(cell);
        self.split_brain.observe(first == cell, || {
            format!(
                "{at}: cells {} and {} both accepted writes of tenant {} as authoritative at epoch {epoch}",
                name(cells, first),
                name(cells, cell),
                name(names, tenant)
            )
        });
    }

    /// `cells` stored a write of `tenant`; returns its id.
    pub fn write_accepted(&mut self, tenant: u32, cells: &[u32]) -> u64 {
        let books = &mut self.books[tenant as usize];
        let id = books.next;
        books.next += 1;
        books.writes.insert(id, (cells.to_vec(), false));
        id
    }

    /// The client got the acknowledgement of write `id`.
    pub fn write_acknowledged(&mut self, tenant: u32, id: u64) {
        if let Some(entry) = self.books[tenant as usize].writes.get_mut(&id) {
            entry.1 = true;
        }
    }

    /// Write `id`'s work ended without an acknowledgement: it no longer needs tracking.
    pub fn write_settled(&mut self, tenant: u32, id: u64) {
        let books = &mut self.books[tenant as usize];
        if books.writes.get(&id).is_some_and(|(_, acked)| !acked) {
            books.writes.remove(&id);
        }
    }

    /// A migration of `tenant` started: its backfill will copy the writes stored so far.
    pub fn migration_started(&mut self, tenant: u32) {
        let books = &mut self.books[tenant as usize];
        books.snapshot = books.next;
    }

    /// The backfill of `tenant`'s migration copied to `to` what `from` held when the
    /// migration started; later writes reach `to` only by the dual write.
    pub fn backfilled(&mut self, tenant: u32, from: u32, to: u32) {
        let books = &mut self.books[tenant as usize];
        for (_, (cells, _)) in books.writes.range_mut(..books.snapshot) {
            if cells.contains(&from) && !cells.contains(&to) {
                cells.push(to);
            }
        }
    }

    /// Failover restored `tenant` into `to` from replicated storage: it holds every write.
    pub fn restored(&mut self, tenant: u32, to: u32) {
        for (cells, _) in self.books[tenant as usize].writes.values_mut() {
            if !cells.contains(&to) {
                cells.push(to);
            }
        }
    }

    /// Checks that `owner` holds every acknowledged write of `tenant` (at cutover and at the
    /// end of the run).
    pub fn check_owner(
        &mut self,
        at: SimTime,
        tenant: u32,
        owner: u32,
        names: &[&str],
        cells: &[&str],
    ) {
        let books = &self.books[tenant as usize];
        let acknowledged = books.writes.values().filter(|(_, acked)| *acked).count();
        let missing = books
            .writes
            .values()
            .filter(|(held, acked)| *acked && !held.contains(&owner))
            .count();
        self.lost_writes.observe(missing == 0, || {
            format!(
                "{at}: {missing} of tenant {}'s {acknowledged} acknowledged writes are not on its owner {}",
                name(names, tenant),
                name(cells, owner)
            )
        });
    }
}

impl Invariants {
    /// A request of signed-up `tenant` was served at `at`; its resources are all ready at
    /// `ready_at` (the last being `step`'s).
    #[inline]
    pub fn access(
        &mut self,
        at: SimTime,
        tenant: u32,
        ready_at: SimTime,
        step: &str,
        names: &[&str],
    ) {
        self.access_before_ready.observe(at >= ready_at, || {
            format!(
                "{at}: a request of tenant {} was served before its {step} was ready (at {ready_at})",
                name(names, tenant)
            )
        });
    }

    /// A workflow created `count` resources so far for `tenant`'s `step` (one is right).
    pub fn created(&mut self, at: SimTime, tenant: u32, step: &str, count: u32, names: &[&str]) {
        self.duplicates.observe(count == 1, || {
            format!(
                "{at}: tenant {}'s step {step} applied its side effect {count} times",
                name(names, tenant)
            )
        });
    }

    /// A workflow of `tenant` (`what`: onboarding, offboarding) ran `elapsed`, allowed `bound`
    /// (`times`); `ended` is false for one still running at the end of the run.
    pub fn bounded(
        &mut self,
        at: SimTime,
        tenant: u32,
        what: &str,
        times: (crate::time::SimDuration, crate::time::SimDuration),
        ended: bool,
        names: &[&str],
    ) {
        let (elapsed, bound) = times;
        self.workflow_bound.observe(elapsed <= bound, || {
            let state = if ended {
                "ended after"
            } else {
                "was still running after"
            };
            format!(
                "{at}: the {what} of tenant {} {state} {elapsed}, past its bound of {bound}",
                name(names, tenant)
            )
        });
    }

    /// A resource of `tenant` (created by `step`) is alive at the end; `orphan` if its tenant
    /// is neither active nor onboarding.
    pub fn resource_at_end(
        &mut self,
        at: SimTime,
        tenant: u32,
        step: &str,
        orphan: bool,
        names: &[&str],
    ) {
        self.orphans.observe(!orphan, || {
            format!(
                "{at}: the {step} resource of tenant {} outlived its failed onboarding (an orphan)",
                name(names, tenant)
            )
        });
    }

    /// A deletion of `tenant` requested at `requested` fell due at `at`; `remaining` names the
    /// stores that still hold it (empty: complete).
    pub fn deletion_due(
        &mut self,
        at: SimTime,
        tenant: u32,
        requested: SimTime,
        remaining: &[&str],
        names: &[&str],
    ) {
        self.deletion_ledger.observe(remaining.is_empty(), || {
            format!(
                "{at}: tenant {} (deletion requested at {requested}) is still in {} at its deletion's bound",
                name(names, tenant),
                remaining.join(", ")
            )
        });
    }
}

fn name(names: &[&str], index: u32) -> String {
    names
        .get(index as usize)
        .map_or_else(|| format!("#{index}"), |n| (*n).to_string())
}
