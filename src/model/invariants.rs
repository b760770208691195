//! The always-on invariants, observed while the model runs: no tenantless work, no
//! cross-tenant access, EU residency, no split brain, no lost acknowledged writes.
//!
//! Each check counts violations and keeps the first one as an example. Tests plant broken
//! policies ([`Sabotage`]) to prove every check can fail.

use std::collections::BTreeMap;

use crate::time::SimTime;

/// A deliberately broken policy, for tests that prove an invariant check can fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sabotage {
    /// Background jobs lose their tenant context when they are retried.
    TenantlessRetries,
    /// A cell caches one data key for everyone, whoever it belongs to.
    SharedKeyCache,
    /// Failover ignores residency and may move EU-only tenants anywhere.
    IgnoreResidency,
    /// Cells accept writes whatever their epoch (no fencing).
    NoFencing,
    /// Migrations skip the dual write of the MIGRATING state.
    NoDualWrite,
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
    fn observe(&mut self, ok: bool, describe: impl FnOnce() -> String) {
        self.checked += 1;
        if !ok {
            self.violations += 1;
            if self.first.is_none() {
                self.first = Some(describe());
            }
        }
    }
}

/// Per tenant: acknowledged writes, and how many of them each cell holds.
#[derive(Clone, Debug, Default)]
struct WriteBooks {
    acknowledged: u64,
    held: BTreeMap<u32, u64>,
    /// Writes the source held when the current migration started (copied by the backfill).
    snapshot: Option<(u32, u64)>,
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
    pub fn key_use(&mut self, at: SimTime, tenant: u32, key_owner: u32, names: &[String]) {
        self.cross_tenant.observe(tenant == key_owner, || {
            format!(
                "{at}: a request of {} used the data key of {}",
                name(names, tenant),
                name(names, key_owner)
            )
        });
    }

    /// `tenant` (EU-only or not) was served by a cell that is EU or not.
    pub fn served(
        &mut self,
        at: SimTime,
        tenant: u32,
        eu_only: bool,
        cell_eu: bool,
        cell: &str,
        names: &[String],
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
        cells: &[String],
    ) {
        let first = *self.authoritative.entry((tenant, epoch)).or_insert(cell);
        self.split_brain.observe(first == cell, || {
            format!(
                "{at}: cells {} and {} both accepted writes of tenant #{tenant} as authoritative at epoch {epoch}",
                name(cells, first),
                name(cells, cell)
            )
        });
    }

    /// A write of `tenant` was acknowledged to the client; `cells` hold it.
    pub fn acknowledged(&mut self, tenant: u32, cells: &[u32]) {
        let books = &mut self.books[tenant as usize];
        books.acknowledged += 1;
        for &c in cells {
            *books.held.entry(c).or_default() += 1;
        }
    }

    /// A migration of `tenant` from `from` started: the backfill will copy what `from` holds now.
    pub fn migration_started(&mut self, tenant: u32, from: u32) {
        let books = &mut self.books[tenant as usize];
        let held = books.held.get(&from).copied().unwrap_or(0);
        books.snapshot = Some((from, held));
    }

    /// The backfill of `tenant`'s migration into `to` finished.
    pub fn backfilled(&mut self, tenant: u32, to: u32) {
        let books = &mut self.books[tenant as usize];
        if let Some((_, held)) = books.snapshot.take() {
            *books.held.entry(to).or_default() += held;
        }
    }

    /// Failover restored `tenant` into `to` from replicated storage: it holds every
    /// acknowledged write.
    pub fn restored(&mut self, tenant: u32, to: u32) {
        let books = &mut self.books[tenant as usize];
        books.held.insert(to, books.acknowledged);
        books.snapshot = None;
    }

    /// Checks that `owner` holds every acknowledged write of `tenant` (at cutover and at the
    /// end of the run).
    pub fn check_owner(
        &mut self,
        at: SimTime,
        tenant: u32,
        owner: u32,
        names: &[String],
        cells: &[String],
    ) {
        let books = &self.books[tenant as usize];
        let held = books.held.get(&owner).copied().unwrap_or(0);
        let acknowledged = books.acknowledged;
        self.lost_writes.observe(held >= acknowledged, || {
            format!(
                "{at}: tenant {} has {acknowledged} acknowledged writes but its owner {} holds {held}",
                name(names, tenant),
                name(cells, owner)
            )
        });
    }
}

fn name(names: &[String], index: u32) -> String {
    names
        .get(index as usize)
        .cloned()
        .unwrap_or_else(|| format!("#{index}"))
}
