//! The control plane's tenant-to-cell mapping: the authoritative record of where each tenant
//! lives, and the migration state machine that moves a tenant between cells without split-brain
//! writes or lost acknowledged writes.
//!
//! Each tenant has a [`MappingEntry`]: a [`MappingState`] and a per-tenant [`Epoch`]. The legal
//! transitions are
//!
//! ```text
//! assign:  (none) ─────────────────────────────────────────► Active(a)
//! start:   Active(a) | Final(a) ───────────────────────────► Migrating(a → b)   read a, write a+b
//! cutover: Migrating(a → b)  [acks + backfill done] ───────► Cutover(b, fenced a) everything to b
//! final:   Cutover(b, a)     [acks done] ──────────────────► Final(b)           a released
//! abort:   Migrating(a → b) ────────────────────────────────► Active(a)          b released
//! ```
//!
//! Every transition increases the tenant's epoch by exactly one; anything else is a
//! [`MappingError`] naming the current state, and leaves the record untouched.
//!
//! **Cell notices.** A transition returns the [`CellNotice`]s the cells involved must apply to
//! their [`CellFence`](super::migration::CellFence) (the cell's role for that tenant at the new
//! epoch: [`CellRole::Owner`], `Replica`, `Fenced` or `Released`). Cells losing authority come
//! first. The caller delivers them **in order, each applied before the next is sent**, and
//! reports each application with [`MappingStore::acknowledge`]. The store refuses to advance a
//! tenant (start, cutover, finalize) until every notice of its current epoch is acknowledged,
//! and refuses a cutover until the backfill of the `to` cell was reported with
//! [`MappingStore::mark_backfilled`] (which itself needs the `from` cell's acknowledgement, so
//! the snapshot never misses a write acknowledged under the previous epoch). Abort is allowed at
//! any time from `Migrating`: it keeps the `from` cell as owner, so it is always safe.
//! In the simulator, applying all notices in the same event as the transition (and
//! acknowledging them at once) satisfies the ordering trivially.
//!
//! **Production use.** The store is the strongly consistent record behind the control plane's
//! API (one row per tenant, updated with compare-and-set on the epoch); edges read it through
//! the [`EdgeCache`](super::mapping_cache::EdgeCache) and never sit on it in the hot path.
//!
//! ```
//! use std::time::Instant;
//! use tenantsim::components::mapping::{MappingState, MappingStore, Transition};
//! use tenantsim::time::SimTime;
//!
//! // The caller's wall clock, as in a production service: the component only ever sees
//! // `now` (the simulator passes simulated time, never this clock).
//! let start = Instant::now();
//! let now = || SimTime::from_nanos(start.elapsed().as_nanos() as u64);
//! let mut store: MappingStore<&str, u32> = MappingStore::new();
//! let deliver = |store: &mut MappingStore<&str, u32>, t: Transition<u32>| {
//!     for notice in &t.notices {
//!         // ... send notice.update to cell notice.cell, which applies it to its CellFence ...
//!         store.acknowledge(&"acme", &notice.cell, notice.update.epoch).expect("known tenant");
//!     }
//! };
//! let t = store.assign(now(), "acme", 1).expect("new tenant");
//! deliver(&mut store, t);
//! let t = store.start_migration(now(), &"acme", 2).expect("active tenant");
//! let epoch = t.entry.epoch;
//! deliver(&mut store, t);
//! // ... copy acme's data from cell 1 to cell 2 while writes go to both ...
//! store.mark_backfilled(&"acme", epoch).expect("migrating and acknowledged");
//! let t = store.cutover(now(), &"acme").expect("backfilled");
//! deliver(&mut store, t);
//! let t = store.finalize(now(), &"acme").expect("cut over");
//! deliver(&mut store, t);
//! let entry = store.lookup(&"acme").expect("assigned");
//! assert_eq!(entry.state, MappingState::Final { cell: 2 });
//! assert_eq!(entry.epoch.get(), 4); // one per transition
//! assert!(store.cutover(now(), &"acme").is_err()); // not migrating: an error, never a panic
//! ```

use std::collections::BTreeMap;
use std::fmt;

use smallvec::{SmallVec, smallvec};

use super::migration::WriteRoute;
use crate::time::SimTime;

/// A per-tenant version of the mapping. Starts at 1 on assignment and grows by one on every
/// transition; cells reject writes carrying an epoch older than the one they were told.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Epoch(u64);

impl Epoch {
    /// "No epoch seen yet": older than every epoch a store hands out.
    pub const NONE: Epoch = Epoch(0);

    /// The epoch numbered `n`.
    pub const fn from_u64(n: u64) -> Epoch {
        Epoch(n)
    }

    /// The epoch's number.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The following epoch, or `None` at `u64::MAX`.
    pub const fn next(self) -> Option<Epoch> {
        match self.0.checked_add(1) {
            Some(n) => Some(Epoch(n)),
            None => None,
        }
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "epoch {}", self.0)
    }
}

/// Where a tenant lives, and how far a migration has come.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MappingState<C> {
    /// Settled on `cell`: reads and writes go there.
    Active {
        /// The cell that owns the tenant.
        cell: C,
    },
    /// Moving from `from` to `to`: reads from `from` (which stays authoritative), writes to both.
    Migrating {
        /// The current owner, authoritative for reads and writes.
        from: C,
        /// The new cell, receiving the backfill and every write as a replica.
        to: C,
    },
    /// Cut over: everything goes to `to`; `fenced` rejects every write.
    Cutover {
        /// The new owner.
        to: C,
        /// The old owner, which must not accept writes any more.
        fenced: C,
    },
    /// Migration finished: equivalent to `Active` on `cell`; the old cell released its copy.
    Final {
        /// The cell that owns the tenant.
        cell: C,
    },
}

impl<C> MappingState<C> {
    /// The cell authoritative for reads and writes in this state (the only one whose write
    /// counts as the acknowledged copy).
    pub fn owner(&self) -> &C {
        match self {
            MappingState::Active { cell } | MappingState::Final { cell } => cell,
            MappingState::Migrating { from, .. } => from,
            MappingState::Cutover { to, .. } => to,
        }
    }

    /// The state's name, for errors and traces.
    pub fn name(&self) -> &'static str {
        match self {
            MappingState::Active { .. } => "Active",
            MappingState::Migrating { .. } => "Migrating",
            MappingState::Cutover { .. } => "Cutover",
            MappingState::Final { .. } => "Final",
        }
    }

    /// Every cell this state gives a role, with that role, owner first. At most two, kept
    /// inline: no allocation per transition (or per tenant when a store is loaded in bulk).
    pub fn roles(&self) -> SmallVec<[(&C, CellRole); 2]> {
        match self {
            MappingState::Active { cell } | MappingState::Final { cell } => {
                smallvec![(cell, CellRole::Owner)]
            }
            MappingState::Migrating { from, to } => {
                smallvec![(from, CellRole::Owner), (to, CellRole::Replica)]
            }
            MappingState::Cutover { to, fenced } => {
                smallvec![(to, CellRole::Owner), (fenced, CellRole::Fenced)]
            }
        }
    }

    /// The role this state gives `cell`, or `None` if the state does not mention it.
    pub fn role_of(&self, cell: &C) -> Option<CellRole>
    where
        C: PartialEq,
    {
        self.roles()
            .into_iter()
            .find(|(c, _)| *c == cell)
            .map(|(_, role)| role)
    }
}

impl<C: fmt::Debug> fmt::Display for MappingState<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MappingState::Active { cell } => write!(f, "Active({cell:?})"),
            MappingState::Migrating { from, to } => write!(f, "Migrating({from:?} -> {to:?})"),
            MappingState::Cutover { to, fenced } => {
                write!(f, "Cutover({to:?}, fenced {fenced:?})")
            }
            MappingState::Final { cell } => write!(f, "Final({cell:?})"),
        }
    }
}

/// One tenant's mapping as the store publishes it and edges cache it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MappingEntry<C> {
    /// Where the tenant lives.
    pub state: MappingState<C>,
    /// The version of this state; every write routed from this entry carries it.
    pub epoch: Epoch,
}

impl<C: Clone> MappingEntry<C> {
    /// The cell a read goes to: the owner (`from` while migrating, `to` from cutover on).
    pub fn read_cell(&self) -> &C {
        self.state.owner()
    }

    /// Where a write goes: the owner, plus the `to` cell as a shadow while migrating, all
    /// carrying this entry's epoch. See [`WriteRoute::outcome`] for when the client is acked.
    pub fn write_route(&self) -> WriteRoute<C> {
        let shadow = match &self.state {
            MappingState::Migrating { to, .. } => Some(to.clone()),
            _ => None,
        };
        WriteRoute {
            epoch: self.epoch,
            authoritative: self.state.owner().clone(),
            shadow,
        }
    }
}

impl<C: fmt::Debug> fmt::Display for MappingEntry<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}", self.state, self.epoch)
    }
}

/// What a cell may do for a tenant at a given epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CellRole {
    /// Authoritative: serves reads, accepts writes as the acknowledged copy.
    Owner,
    /// Migration target: accepts writes (not authoritative), serves no reads.
    Replica,
    /// Old owner after cutover: rejects reads and writes; keeps its data until released.
    Fenced,
    /// No longer hosts the tenant: rejects everything; its copy may be deleted.
    Released,
}

impl CellRole {
    /// Whether a write at the cell's current epoch is accepted.
    pub fn accepts_writes(self) -> bool {
        matches!(self, CellRole::Owner | CellRole::Replica)
    }

    /// Whether an accepted write is the authoritative copy.
    pub fn is_authoritative(self) -> bool {
        self == CellRole::Owner
    }

    /// Whether this role takes authority away (delivered before any role that grants it).
    fn is_demotion(self) -> bool {
        matches!(self, CellRole::Fenced | CellRole::Released)
    }
}

/// A cell's role for one tenant from `epoch` on, as the control plane tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FenceUpdate {
    /// The epoch the role applies from.
    pub epoch: Epoch,
    /// The role.
    pub role: CellRole,
}

/// A fence update addressed to one cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CellNotice<C> {
    /// The cell that must apply the update.
    pub cell: C,
    /// The update to apply to that cell's fence.
    pub update: FenceUpdate,
}

/// The result of a successful transition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition<C> {
    /// The entry before (`None` for an assignment).
    pub previous: Option<MappingEntry<C>>,
    /// The entry now published.
    pub entry: MappingEntry<C>,
    /// What each involved cell must apply, in delivery order (demotions first): deliver each
    /// only after the previous one was applied, and acknowledge each with
    /// [`MappingStore::acknowledge`].
    pub notices: Vec<CellNotice<C>>,
}

/// A migration step requested of the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MigrationStep<C> {
    /// `Active(a)` or `Final(a)` to `Migrating(a → to)`.
    Start {
        /// The destination cell.
        to: C,
    },
    /// `Migrating(a → b)` to `Cutover(b, fenced a)`.
    Cutover,
    /// `Cutover(b, a)` to `Final(b)`.
    Finalize,
    /// `Migrating(a → b)` back to `Active(a)`.
    Abort,
}

impl<C: fmt::Debug> fmt::Display for MigrationStep<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MigrationStep::Start { to } => write!(f, "start a migration to {to:?}"),
            MigrationStep::Cutover => write!(f, "cut over"),
            MigrationStep::Finalize => write!(f, "finalize"),
            MigrationStep::Abort => write!(f, "abort"),
        }
    }
}

/// Why the store refused a request. Every variant that concerns a known tenant carries its
/// current entry; the record is unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MappingError<C> {
    /// The tenant has no mapping.
    UnknownTenant,
    /// `assign` for a tenant that already has a mapping.
    AlreadyAssigned {
        /// The tenant's entry.
        current: MappingEntry<C>,
    },
    /// The step is not legal from the current state.
    IllegalTransition {
        /// The step asked for.
        step: MigrationStep<C>,
        /// The tenant's entry.
        current: MappingEntry<C>,
    },
    /// A migration to the cell the tenant already lives on.
    SameCell {
        /// The tenant's entry.
        current: MappingEntry<C>,
    },
    /// Some cells have not yet acknowledged the current epoch's notices.
    AwaitingAcks {
        /// The tenant's entry.
        current: MappingEntry<C>,
        /// The cells still to acknowledge, in notice order.
        pending: Vec<C>,
    },
    /// A cutover before the backfill of the new cell was reported.
    BackfillPending {
        /// The tenant's entry.
        current: MappingEntry<C>,
    },
    /// `mark_backfilled` for a migration that is no longer the current one.
    EpochMismatch {
        /// The epoch given.
        given: Epoch,
        /// The tenant's entry.
        current: MappingEntry<C>,
    },
    /// The tenant's epoch reached `u64::MAX` (after more transitions than any system makes).
    EpochExhausted {
        /// The tenant's entry.
        current: MappingEntry<C>,
    },
}

impl<C> MappingError<C> {
    /// The tenant's entry when the request was refused, if the tenant is known.
    pub fn current(&self) -> Option<&MappingEntry<C>> {
        match self {
            MappingError::UnknownTenant => None,
            MappingError::AlreadyAssigned { current }
            | MappingError::IllegalTransition { current, .. }
            | MappingError::SameCell { current }
            | MappingError::AwaitingAcks { current, .. }
            | MappingError::BackfillPending { current }
            | MappingError::EpochMismatch { current, .. }
            | MappingError::EpochExhausted { current } => Some(current),
        }
    }
}

impl<C: fmt::Debug> fmt::Display for MappingError<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MappingError::UnknownTenant => write!(f, "the tenant has no cell mapping"),
            MappingError::AlreadyAssigned { current } => {
                write!(f, "the tenant is already mapped ({current})")
            }
            MappingError::IllegalTransition { step, current } => write!(
                f,
                "cannot {step} from {current}: legal steps are Active/Final -> Migrating -> \
                 Cutover -> Final, and Migrating -> Active (abort)"
            ),
            MappingError::SameCell { current } => {
                write!(f, "cannot migrate to the cell the tenant is on ({current})")
            }
            MappingError::AwaitingAcks { current, pending } => write!(
                f,
                "cells {pending:?} have not acknowledged {current} yet; deliver the notices first"
            ),
            MappingError::BackfillPending { current } => write!(
                f,
                "cannot cut over from {current} before the backfill of the new cell is reported"
            ),
            MappingError::EpochMismatch { given, current } => {
                write!(f, "{given} is not the current migration ({current})")
            }
            MappingError::EpochExhausted { current } => {
                write!(f, "no epoch after {current}")
            }
        }
    }
}

impl<C: fmt::Debug> std::error::Error for MappingError<C> {}

/// One tenant's record in the store.
#[derive(Clone, Debug)]
struct Record<C> {
    entry: MappingEntry<C>,
    since: SimTime,
    /// Cells that have not yet acknowledged the notices of `entry.epoch`.
    pending_acks: Vec<C>,
    /// Whether the backfill of the current migration's `to` cell was reported.
    backfilled: bool,
}

/// The authoritative tenant-to-cell mapping: one [`MappingEntry`] per tenant, changed only by
/// legal transitions, each of which bumps the tenant's epoch.
#[derive(Clone, Debug)]
pub struct MappingStore<T, C> {
    tenants: BTreeMap<T, Record<C>>,
}

impl<T: Ord + Clone, C: Clone + Eq> Default for MappingStore<T, C> {
    fn default() -> Self {
        MappingStore::new()
    }
}

impl<T: Ord + Clone, C: Clone + Eq> MappingStore<T, C> {
    /// An empty store.
    pub fn new() -> Self {
        MappingStore {
            tenants: BTreeMap::new(),
        }
    }

    /// The tenant's current entry, or `None` if it has no mapping.
    pub fn lookup(&self, tenant: &T) -> Option<MappingEntry<C>> {
        self.tenants.get(tenant).map(|r| r.entry.clone())
    }

    /// When the tenant entered its current state.
    pub fn since(&self, tenant: &T) -> Option<SimTime> {
        self.tenants.get(tenant).map(|r| r.since)
    }

    /// The cells that still have to acknowledge the tenant's current epoch (empty when settled).
    pub fn pending_acks(&self, tenant: &T) -> Option<&[C]> {
        self.tenants.get(tenant).map(|r| r.pending_acks.as_slice())
    }

    /// Whether the backfill of the tenant's current migration was reported.
    pub fn is_backfilled(&self, tenant: &T) -> bool {
        self.tenants.get(tenant).is_some_and(|r| r.backfilled)
    }

    /// Every mapped tenant with its entry, in tenant order (one pass, no lookups).
    pub fn entries(&self) -> impl Iterator<Item = (&T, &MappingEntry<C>)> {
        self.tenants
            .iter()
            .map(|(tenant, record)| (tenant, &record.entry))
    }

    /// Number of mapped tenants.
    pub fn len(&self) -> usize {
        self.tenants.len()
    }

    /// Whether no tenant is mapped.
    pub fn is_empty(&self) -> bool {
        self.tenants.is_empty()
    }

    /// Maps a new tenant to `cell`: `Active(cell)` at epoch 1.
    pub fn assign(
        &mut self,
        now: SimTime,
        tenant: T,
        cell: C,
    ) -> Result<Transition<C>, MappingError<C>> {
        if let Some(record) = self.tenants.get(&tenant) {
            return Err(MappingError::AlreadyAssigned {
                current: record.entry.clone(),
            });
        }
        let entry = MappingEntry {
            state: MappingState::Active { cell },
            epoch: Epoch(1),
        };
        let notices = notices_for(None, &entry);
        self.tenants.insert(
            tenant,
            Record {
                entry: entry.clone(),
                since: now,
                pending_acks: notices.iter().map(|n| n.cell.clone()).collect(),
                backfilled: false,
            },
        );
        Ok(Transition {
            previous: None,
            entry,
            notices,
        })
    }

    /// Maps many new tenants at once, as if each were [`assign`](Self::assign)ed in the
    /// order given and its notices delivered and acknowledged at once: `deliver(tenant,
    /// notice)` is called for every notice, in that order, and must return only once the
    /// cell applied it (a cold start where the cells load their fences in the same step, as
    /// the simulator does). Every tenant ends `Active(cell)` at epoch 1 with nothing pending.
    ///
    /// All or nothing: if a tenant is already mapped or appears twice, nothing is delivered
    /// or changed, and the error is the one `assign` would give at the first such tenant.
    /// Returns how many tenants were mapped. Into an empty store, input sorted by tenant costs
    /// O(n) (the map is built in one pass) instead of one ordered insert per tenant; into a
    /// non-empty one, add a lookup per tenant and an O(n + m) merge.
    pub fn assign_all<I, F>(
        &mut self,
        now: SimTime,
        tenants: I,
        mut deliver: F,
    ) -> Result<usize, MappingError<C>>
    where
        I: IntoIterator<Item = (T, C)>,
        F: FnMut(&T, &CellNotice<C>),
    {
        let batch: Vec<(T, C)> = tenants.into_iter().collect();
        if let Some(error) = self.first_conflict(&batch) {
            return Err(error);
        }
        let entry_for = |cell: C| MappingEntry {
            state: MappingState::Active { cell },
            epoch: Epoch(1),
        };
        for (tenant, cell) in &batch {
            let entry = entry_for(cell.clone());
            for (cell, role) in entry.state.roles() {
                let notice = CellNotice {
                    cell: cell.clone(),
                    update: FenceUpdate {
                        epoch: entry.epoch,
                        role,
                    },
                };
                deliver(tenant, &notice);
            }
        }
        let count = batch.len();
        // `collect` sorts (linear on sorted input) and builds the tree bottom-up; `append`
        // merges the two sorted maps in one pass.
        let mut added: BTreeMap<T, Record<C>> = batch
            .into_iter()
            .map(|(tenant, cell)| {
                let record = Record {
                    entry: entry_for(cell),
                    since: now,
                    pending_acks: Vec::new(),
                    backfilled: false,
                };
                (tenant, record)
            })
            .collect();
        self.tenants.append(&mut added);
        Ok(count)
    }

    /// The error [`assign_all`](Self::assign_all) gives for `batch`: `AlreadyAssigned` at the
    /// first tenant (in batch order) that is mapped already or appeared earlier in the batch.
    fn first_conflict(&self, batch: &[(T, C)]) -> Option<MappingError<C>> {
        let conflict_with_store = if self.tenants.is_empty() {
            None
        } else {
            batch.iter().enumerate().find_map(|(i, (tenant, _))| {
                self.tenants
                    .get(tenant)
                    .map(|record| (i, record.entry.clone()))
            })
        };
        let strictly_sorted = batch.windows(2).all(|pair| pair[0].0 < pair[1].0);
        let conflict_within = if strictly_sorted {
            None
        } else {
            // Positions ordered by (tenant, position): each run of one tenant's positions has
            // its earliest first, and every later one is a repeat of it.
            let mut order: Vec<usize> = (0..batch.len()).collect();
            order.sort_by(|&a, &b| batch[a].0.cmp(&batch[b].0).then(a.cmp(&b)));
            order
                .windows(2)
                .filter(|pair| batch[pair[0]].0 == batch[pair[1]].0)
                .map(|pair| (pair[1], pair[0]))
                .min()
                .map(|(repeat, first)| {
                    let entry = MappingEntry {
                        state: MappingState::Active {
                            cell: batch[first].1.clone(),
                        },
                        epoch: Epoch(1),
                    };
                    (repeat, entry)
                })
        };
        let (_, current) = match (conflict_with_store, conflict_within) {
            (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
            (a, b) => a.or(b),
        }?;
        Some(MappingError::AlreadyAssigned { current })
    }

    /// Applies one migration step to the tenant, if it is legal now.
    pub fn step(
        &mut self,
        now: SimTime,
        tenant: &T,
        step: MigrationStep<C>,
    ) -> Result<Transition<C>, MappingError<C>> {
        let record = self
            .tenants
            .get_mut(tenant)
            .ok_or(MappingError::UnknownTenant)?;
        let current = record.entry.clone();
        let illegal = || MappingError::IllegalTransition {
            step: step.clone(),
            current: current.clone(),
        };
        let awaiting_acks = || MappingError::AwaitingAcks {
            current: current.clone(),
            pending: record.pending_acks.clone(),
        };
        let acked = record.pending_acks.is_empty();
        let next_state = match (&current.state, &step) {
            (
                MappingState::Active { cell } | MappingState::Final { cell },
                MigrationStep::Start { to },
            ) => {
                if to == cell {
                    return Err(MappingError::SameCell { current });
                }
                if !acked {
                    return Err(awaiting_acks());
                }
                MappingState::Migrating {
                    from: cell.clone(),
                    to: to.clone(),
                }
            }
            (MappingState::Migrating { from, to }, MigrationStep::Cutover) => {
                if !acked {
                    return Err(awaiting_acks());
                }
                if !record.backfilled {
                    return Err(MappingError::BackfillPending { current });
                }
                MappingState::Cutover {
                    to: to.clone(),
                    fenced: from.clone(),
                }
            }
            (MappingState::Cutover { to, .. }, MigrationStep::Finalize) => {
                if !acked {
                    return Err(awaiting_acks());
                }
                MappingState::Final { cell: to.clone() }
            }
            // Abort keeps the old owner authoritative, so it needs no acknowledgements: it is
            // the way out when the new cell never answers.
            (MappingState::Migrating { from, .. }, MigrationStep::Abort) => {
                MappingState::Active { cell: from.clone() }
            }
            _ => return Err(illegal()),
        };
        let epoch = current
            .epoch
            .next()
            .ok_or_else(|| MappingError::EpochExhausted {
                current: current.clone(),
            })?;
        let entry = MappingEntry {
            state: next_state,
            epoch,
        };
        let notices = notices_for(Some(&current.state), &entry);
        record.entry = entry.clone();
        record.since = now;
        record.pending_acks = notices.iter().map(|n| n.cell.clone()).collect();
        record.backfilled = false;
        Ok(Transition {
            previous: Some(current),
            entry,
            notices,
        })
    }

    /// `Active(a)` or `Final(a)` to `Migrating(a → to)`.
    pub fn start_migration(
        &mut self,
        now: SimTime,
        tenant: &T,
        to: C,
    ) -> Result<Transition<C>, MappingError<C>> {
        self.step(now, tenant, MigrationStep::Start { to })
    }

    /// `Migrating(a → b)` to `Cutover(b, fenced a)`; needs every notice acknowledged and the
    /// backfill reported.
    pub fn cutover(&mut self, now: SimTime, tenant: &T) -> Result<Transition<C>, MappingError<C>> {
        self.step(now, tenant, MigrationStep::Cutover)
    }

    /// `Cutover(b, a)` to `Final(b)`; needs every notice acknowledged.
    pub fn finalize(&mut self, now: SimTime, tenant: &T) -> Result<Transition<C>, MappingError<C>> {
        self.step(now, tenant, MigrationStep::Finalize)
    }

    /// `Migrating(a → b)` back to `Active(a)`.
    pub fn abort(&mut self, now: SimTime, tenant: &T) -> Result<Transition<C>, MappingError<C>> {
        self.step(now, tenant, MigrationStep::Abort)
    }

    /// Emergency reassignment when the tenant's cell is lost: from any state to `Active(to)`
    /// with the next epoch, without the acknowledgements and backfill a planned migration
    /// needs (the lost cell cannot give them). Any migration in flight is abandoned. The
    /// caller delivers the notices, which release every previous cell (fencing the lost one
    /// for when it returns); the new cell must hold the tenant's data already, e.g. from
    /// replicated storage, or the writes only the lost cell had are gone.
    pub fn fail_over(
        &mut self,
        now: SimTime,
        tenant: &T,
        to: C,
    ) -> Result<Transition<C>, MappingError<C>> {
        let record = self
            .tenants
            .get_mut(tenant)
            .ok_or(MappingError::UnknownTenant)?;
        let current = record.entry.clone();
        if matches!(&current.state, MappingState::Active { cell } | MappingState::Final { cell } if *cell == to)
        {
            return Err(MappingError::SameCell { current });
        }
        let epoch = current
            .epoch
            .next()
            .ok_or_else(|| MappingError::EpochExhausted {
                current: current.clone(),
            })?;
        let entry = MappingEntry {
            state: MappingState::Active { cell: to },
            epoch,
        };
        let notices = notices_for(Some(&current.state), &entry);
        record.entry = entry.clone();
        record.since = now;
        record.pending_acks = notices.iter().map(|n| n.cell.clone()).collect();
        record.backfilled = false;
        Ok(Transition {
            previous: Some(current),
            entry,
            notices,
        })
    }

    /// Records that `cell` applied the tenant's notice for `epoch`. Acknowledgements for an
    /// older epoch, or from a cell that owes none, are ignored. Returns whether every cell has
    /// now acknowledged the current epoch.
    pub fn acknowledge(
        &mut self,
        tenant: &T,
        cell: &C,
        epoch: Epoch,
    ) -> Result<bool, MappingError<C>> {
        let record = self
            .tenants
            .get_mut(tenant)
            .ok_or(MappingError::UnknownTenant)?;
        if epoch == record.entry.epoch {
            record.pending_acks.retain(|c| c != cell);
        }
        Ok(record.pending_acks.is_empty())
    }

    /// Records that the `to` cell of the migration at `epoch` holds a copy of everything the
    /// `from` cell acknowledged before that epoch. Call it only after the copy finished, and
    /// start the copy only after every notice of `epoch` was acknowledged (the store refuses
    /// otherwise): from then on the `from` cell rejects writes of older epochs, so the
    /// snapshot cannot miss one.
    pub fn mark_backfilled(&mut self, tenant: &T, epoch: Epoch) -> Result<(), MappingError<C>> {
        let record = self
            .tenants
            .get_mut(tenant)
            .ok_or(MappingError::UnknownTenant)?;
        let current = record.entry.clone();
        if !matches!(current.state, MappingState::Migrating { .. }) || epoch != current.epoch {
            return Err(MappingError::EpochMismatch {
                given: epoch,
                current,
            });
        }
        if !record.pending_acks.is_empty() {
            return Err(MappingError::AwaitingAcks {
                current,
                pending: record.pending_acks.clone(),
            });
        }
        record.backfilled = true;
        Ok(())
    }
}

/// The notices a move from `previous` to `entry` sends: every cell of the new state gets its
/// role; a cell only in the old state is released. Demotions come first, so no cell gains
/// authority while another still holds it.
fn notices_for<C: Clone + Eq>(
    previous: Option<&MappingState<C>>,
    entry: &MappingEntry<C>,
) -> Vec<CellNotice<C>> {
    let mut notices: Vec<CellNotice<C>> = entry
        .state
        .roles()
        .into_iter()
        .map(|(cell, role)| CellNotice {
            cell: cell.clone(),
            update: FenceUpdate {
                epoch: entry.epoch,
                role,
            },
        })
        .collect();
    if let Some(previous) = previous {
        for (cell, _) in previous.roles() {
            if entry.state.role_of(cell).is_none() {
                notices.push(CellNotice {
                    cell: cell.clone(),
                    update: FenceUpdate {
                        epoch: entry.epoch,
                        role: CellRole::Released,
                    },
                });
            }
        }
    }
    notices.sort_by_key(|n| !n.update.role.is_demotion());
    notices
}

#[cfg(test)]
mod tests {
    #[test]
    fn fail_over_moves_from_any_state_and_releases_the_lost_cell() {
        let t = SimTime::ZERO;
        let mut store: MappingStore<u32, u32> = MappingStore::new();
        let first = store.assign(t, 7, 1).expect("assign");
        for n in &first.notices {
            store.acknowledge(&7, &n.cell, n.update.epoch).expect("ack");
        }
        store.start_migration(t, &7, 2).expect("start");
        // The owner is lost mid-migration; no acknowledgement is pending-checked.
        let moved = store.fail_over(t, &7, 3).expect("fail over");
        assert_eq!(moved.entry.state, MappingState::Active { cell: 3 });
        assert_eq!(moved.entry.epoch.get(), 3);
        let released: Vec<u32> = moved
            .notices
            .iter()
            .filter(|n| n.update.role == CellRole::Released)
            .map(|n| n.cell)
            .collect();
        assert_eq!(released, vec![1, 2]);
        assert!(matches!(
            store.fail_over(t, &7, 3),
            Err(MappingError::SameCell { .. })
        ));
        assert!(matches!(
            store.fail_over(t, &8, 3),
            Err(MappingError::UnknownTenant)
        ));
    }

    use super::*;
    use proptest::prelude::*;

    type Store = MappingStore<u8, u8>;

    const T0: SimTime = SimTime::ZERO;

    fn ack_all(store: &mut Store, tenant: u8, t: &Transition<u8>) {
        for n in &t.notices {
            store.acknowledge(&tenant, &n.cell, n.update.epoch).unwrap();
        }
    }

    /// The legal transitions, written independently of the store's match.
    fn legal(from: &MappingState<u8>, to: &MappingState<u8>) -> bool {
        use MappingState::*;
        match (*from, *to) {
            (Active { cell: a } | Final { cell: a }, Migrating { from, to }) => {
                from == a && to != a
            }
            (Migrating { from, to }, Cutover { to: t, fenced }) => t == to && fenced == from,
            (Cutover { to, .. }, Final { cell }) => cell == to,
            (Migrating { from, .. }, Active { cell }) => cell == from,
            _ => false,
        }
    }

    #[test]
    fn full_migration_and_back() {
        let mut s = Store::new();
        let t = s.assign(T0, 7, 1).unwrap();
        assert_eq!(t.entry.epoch, Epoch(1));
        ack_all(&mut s, 7, &t);
        let t = s.start_migration(T0, &7, 2).unwrap();
        assert_eq!(t.entry.state, MappingState::Migrating { from: 1, to: 2 });
        assert_eq!(
            s.cutover(T0, &7),
            Err(MappingError::AwaitingAcks {
                current: t.entry,
                pending: vec![1, 2]
            })
        );
        ack_all(&mut s, 7, &t);
        assert!(matches!(
            s.cutover(T0, &7),
            Err(MappingError::BackfillPending { .. })
        ));
        s.mark_backfilled(&7, t.entry.epoch).unwrap();
        let t = s.cutover(T0, &7).unwrap();
        assert_eq!(
            t.notices,
            vec![
                CellNotice {
                    cell: 1,
                    update: FenceUpdate {
                        epoch: Epoch(3),
                        role: CellRole::Fenced
                    }
                },
                CellNotice {
                    cell: 2,
                    update: FenceUpdate {
                        epoch: Epoch(3),
                        role: CellRole::Owner
                    }
                },
            ]
        );
        ack_all(&mut s, 7, &t);
        let t = s.finalize(T0, &7).unwrap();
        assert_eq!(t.notices[0].cell, 1);
        assert_eq!(t.notices[0].update.role, CellRole::Released);
        ack_all(&mut s, 7, &t);
        // A new migration back to the first cell.
        let t = s.start_migration(T0, &7, 1).unwrap();
        assert_eq!(t.entry.state, MappingState::Migrating { from: 2, to: 1 });
        assert_eq!(t.entry.epoch, Epoch(5));
    }

    #[test]
    fn abort_needs_no_acks_and_releases_the_target() {
        let mut s = Store::new();
        let t = s.assign(T0, 0, 1).unwrap();
        ack_all(&mut s, 0, &t);
        s.start_migration(T0, &0, 2).unwrap();
        let t = s.abort(T0, &0).unwrap();
        assert_eq!(t.entry.state, MappingState::Active { cell: 1 });
        assert_eq!(t.notices[0].cell, 2);
        assert_eq!(t.notices[0].update.role, CellRole::Released);
    }

    #[test]
    fn errors_name_the_current_state() {
        let mut s = Store::new();
        assert_eq!(s.cutover(T0, &3), Err(MappingError::UnknownTenant));
        s.assign(T0, 3, 1).unwrap();
        let err = s.finalize(T0, &3).unwrap_err();
        assert!(err.to_string().contains("Active(1) at epoch 1"), "{err}");
        assert!(matches!(
            s.assign(T0, 3, 2),
            Err(MappingError::AlreadyAssigned { .. })
        ));
        assert!(matches!(
            s.start_migration(T0, &3, 1),
            Err(MappingError::SameCell { .. })
        ));
    }

    #[test]
    fn backfill_of_an_old_migration_does_not_count() {
        let mut s = Store::new();
        let t = s.assign(T0, 0, 1).unwrap();
        ack_all(&mut s, 0, &t);
        let first = s.start_migration(T0, &0, 2).unwrap();
        let t = s.abort(T0, &0).unwrap();
        ack_all(&mut s, 0, &first);
        ack_all(&mut s, 0, &t);
        let second = s.start_migration(T0, &0, 2).unwrap();
        ack_all(&mut s, 0, &second);
        assert!(matches!(
            s.mark_backfilled(&0, first.entry.epoch),
            Err(MappingError::EpochMismatch { .. })
        ));
        assert!(matches!(
            s.cutover(T0, &0),
            Err(MappingError::BackfillPending { .. })
        ));
    }

    #[derive(Clone, Debug)]
    enum Op {
        Step(MigrationStep<u8>),
        AckAll,
        AckOne(u8),
        Backfill,
        BackfillStale,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..3).prop_map(|to| Op::Step(MigrationStep::Start { to })),
            Just(Op::Step(MigrationStep::Cutover)),
            Just(Op::Step(MigrationStep::Finalize)),
            Just(Op::Step(MigrationStep::Abort)),
            Just(Op::AckAll),
            (0u8..3).prop_map(Op::AckOne),
            Just(Op::Backfill),
            Just(Op::BackfillStale),
        ]
    }

    proptest! {
        /// Only legal transitions succeed, each bumps the epoch by one; refused steps name the
        /// current entry and change nothing; preconditions (acks, backfill) are enforced exactly.
        #[test]
        fn only_legal_transitions_and_epochs_grow(ops in proptest::collection::vec(op(), 0..60)) {
            let mut s = Store::new();
            let t = s.assign(T0, 0, 0).unwrap();
            let mut pending: Vec<u8> = t.notices.iter().map(|n| n.cell).collect();
            let mut backfilled = false;
            for (i, op) in ops.into_iter().enumerate() {
                let now = SimTime::from_nanos(i as u64);
                let before = s.lookup(&0).unwrap();
                match op {
                    Op::Step(step) => {
                        let is_abort = step == MigrationStep::Abort;
                        let is_cutover = step == MigrationStep::Cutover;
                        match s.step(now, &0, step) {
                            Ok(t) => {
                                prop_assert!(legal(&before.state, &t.entry.state),
                                    "{} -> {}", before, t.entry);
                                prop_assert_eq!(t.entry.epoch.get(), before.epoch.get() + 1);
                                prop_assert_eq!(t.previous, Some(before));
                                prop_assert_eq!(s.lookup(&0), Some(t.entry));
                                prop_assert_eq!(s.since(&0), Some(now));
                                prop_assert!(is_abort || pending.is_empty(), "advanced with acks pending");
                                prop_assert!(!is_cutover || backfilled, "cut over without backfill");
                                pending = t.notices.iter().map(|n| n.cell).collect();
                                backfilled = false;
                            }
                            Err(e) => {
                                prop_assert_eq!(e.current(), Some(&before));
                                prop_assert_eq!(s.lookup(&0), Some(before));
                                // A refused step must have had a reason.
                                let could_move = match (&before.state, step) {
                                    (MappingState::Active { cell } | MappingState::Final { cell },
                                     MigrationStep::Start { to }) => *cell != to && pending.is_empty(),
                                    (MappingState::Migrating { .. }, MigrationStep::Cutover) =>
                                        pending.is_empty() && backfilled,
                                    (MappingState::Cutover { .. }, MigrationStep::Finalize) => pending.is_empty(),
                                    (MappingState::Migrating { .. }, MigrationStep::Abort) => true,
                                    _ => false,
                                };
                                prop_assert!(!could_move, "refused a legal step: {}", e);
                            }
                        }
                    }
                    Op::AckAll => {
                        for c in pending.drain(..) {
                            s.acknowledge(&0, &c, before.epoch).unwrap();
                        }
                    }
                    Op::AckOne(c) => {
                        // An acknowledgement for an older epoch never counts.
                        s.acknowledge(&0, &c, Epoch(before.epoch.get() - 1)).unwrap();
                        prop_assert_eq!(s.pending_acks(&0).unwrap(), pending.as_slice());
                        s.acknowledge(&0, &c, before.epoch).unwrap();
                        pending.retain(|p| *p != c);
                    }
                    Op::Backfill => {
                        let ok = s.mark_backfilled(&0, before.epoch).is_ok();
                        let expected = matches!(before.state, MappingState::Migrating { .. })
                            && pending.is_empty();
                        prop_assert_eq!(ok, expected);
                        backfilled |= ok;
                    }
                    Op::BackfillStale => {
                        prop_assert!(s.mark_backfilled(&0, Epoch(before.epoch.get() - 1)).is_err());
                    }
                }
                prop_assert_eq!(s.pending_acks(&0).unwrap(), pending.as_slice());
                prop_assert_eq!(s.is_backfilled(&0), backfilled);
            }
        }

        /// Notices give every cell of the new state its role at the new epoch, release every
        /// cell that dropped out, name no other cell, and put demotions first.
        #[test]
        fn notices_match_the_new_state(ops in proptest::collection::vec(op(), 0..60)) {
            let mut s = Store::new();
            let t = s.assign(T0, 0, 0).unwrap();
            ack_all(&mut s, 0, &t);
            for op in ops {
                let before = s.lookup(&0).unwrap();
                let t = match op {
                    Op::Step(step) => s.step(T0, &0, step),
                    _ => {
                        if matches!(before.state, MappingState::Migrating { .. }) {
                            let _ = s.mark_backfilled(&0, before.epoch);
                        }
                        continue;
                    }
                };
                let Ok(t) = t else { continue };
                ack_all(&mut s, 0, &t);
                let mut seen = Vec::new();
                let mut granted = false;
                for n in &t.notices {
                    prop_assert_eq!(n.update.epoch, t.entry.epoch);
                    prop_assert!(!seen.contains(&n.cell), "cell noticed twice");
                    seen.push(n.cell);
                    let expected = t.entry.state.role_of(&n.cell).unwrap_or(CellRole::Released);
                    prop_assert_eq!(n.update.role, expected);
                    if n.update.role == CellRole::Released {
                        prop_assert!(before.state.role_of(&n.cell).is_some());
                    }
                    if n.update.role.is_demotion() {
                        prop_assert!(!granted, "a demotion after a grant: {:?}", t.notices);
                    } else {
                        granted = true;
                    }
                }
                for (cell, _) in t.entry.state.roles().into_iter().chain(before.state.roles()) {
                    prop_assert!(seen.contains(cell), "cell {} not told", cell);
                }
            }
        }

        /// `assign_all` is tenant-by-tenant `assign` with every notice delivered and
        /// acknowledged at once: the same deliveries in the same order and the same records;
        /// and when `assign` would refuse one tenant, the same error with nothing delivered
        /// or changed.
        #[test]
        fn assign_all_equals_assigning_one_by_one(
            existing in proptest::collection::vec((0u8..40, 0u8..4), 0..8),
            batch in proptest::collection::vec((0u8..40, 0u8..4), 0..40),
            shape in 0u8..3,
        ) {
            let mut batch = batch;
            if shape > 0 {
                batch.sort_by_key(|&(tenant, _)| tenant);
            }
            if shape == 1 {
                // The fast path: strictly increasing tenants.
                batch.dedup_by_key(|pair| pair.0);
            }
            let mut start = Store::new();
            for &(tenant, cell) in &existing {
                if let Ok(t) = start.assign(T0, tenant, cell) {
                    ack_all(&mut start, tenant, &t);
                }
            }
            let later = SimTime::from_nanos(5);
            let snapshot = |s: &Store| -> Vec<_> {
                (0..=u8::MAX)
                    .map(|t| (s.lookup(&t), s.since(&t), s.pending_acks(&t).map(<[u8]>::to_vec)))
                    .collect()
            };

            let mut one_by_one = start.clone();
            let mut expected_deliveries = Vec::new();
            let mut expected = Ok(batch.len());
            for &(tenant, cell) in &batch {
                match one_by_one.assign(later, tenant, cell) {
                    Ok(t) => {
                        expected_deliveries.extend(t.notices.iter().map(|n| (tenant, *n)));
                        ack_all(&mut one_by_one, tenant, &t);
                    }
                    Err(error) => {
                        expected = Err(error);
                        break;
                    }
                }
            }

            let mut bulk = start.clone();
            let mut deliveries = Vec::new();
            let result = bulk.assign_all(later, batch.iter().copied(), |tenant, notice| {
                deliveries.push((*tenant, *notice));
            });
            prop_assert_eq!(&result, &expected);
            if expected.is_ok() {
                prop_assert_eq!(deliveries, expected_deliveries);
                prop_assert_eq!(snapshot(&bulk), snapshot(&one_by_one));
                prop_assert_eq!(bulk.len(), one_by_one.len());
                let in_order: Vec<u8> = bulk.entries().map(|(t, _)| *t).collect();
                let mut sorted = in_order.clone();
                sorted.sort_unstable();
                sorted.dedup();
                prop_assert_eq!(in_order, sorted);
            } else {
                prop_assert!(deliveries.is_empty());
                prop_assert_eq!(snapshot(&bulk), snapshot(&start));
            }
        }
    }
}
