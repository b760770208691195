//! Fair dispatch of background jobs (exports, reindexes, ...) to a cell's shared workers.
//!
//! One tenant that submits a million exports must not make another tenant's ten exports wait
//! hours. [`JobScheduler`] keeps one FIFO queue per tenant and, in [`Mode::Fair`], chooses
//! between tenants with weighted **deficit round robin** (Shreedhar and Varghese, 1995):
//!
//! - Tenants with a backlog take turns in a round-robin list. At the start of its turn a tenant's
//!   *deficit* grows by `quantum · weight`; it then dispatches its oldest job while that job's
//!   cost fits in the deficit, paying the cost out of it. When the head job no longer fits the
//!   turn ends and the tenant moves to the tail, keeping what is left of its deficit (it is
//!   always less than the head job's cost, so it never builds up). A tenant whose queue empties
//!   leaves the list and its deficit is reset to zero: credit is not banked while idle.
//! - The cost of a job is whatever unit the caller measures work in (expected nanoseconds of
//!   worker time, rows to export, ...). Over time each continuously backlogged tenant receives
//!   cost in proportion to its weight.
//! - **Per-tenant cap.** A tenant may have at most `max_running` jobs running at once. A tenant
//!   at its cap leaves the round robin, *keeping its deficit and its queue*; while parked it
//!   earns no quantum (so it cannot bank a burst). When a completion brings it back under its
//!   cap it rejoins at the tail, so it waits at most one round of the other tenants.
//! - **Work-conserving.** The caller calls [`JobScheduler::next`] whenever a worker is free; it
//!   returns a job whenever any tenant under its cap has a backlog. When a whole round passes
//!   in which no head job fits (costs much larger than the quantum), the scheduler skips ahead
//!   the exact number of empty rounds in one step (adding `(r−1)·quantum·weight` to every
//!   deficit), so a call costs at most two passes over the backlogged tenants, whatever the
//!   ratio of cost to quantum. Choosing `quantum` at least the typical job cost makes a
//!   dispatch O(1) amortised.
//!
//! **Fairness bound.** For two tenants `i`, `j` that are continuously backlogged and uncapped
//! over an interval of dispatches, with `S` the cost dispatched in the interval, `w` the weights,
//! `q` the quantum and `M` the largest job cost of the two tenants:
//! `|S_i/w_i − S_j/w_j| < q + M/w_i + M/w_j  (≤ q + 2M)`.
//! Why: `S_i = q·w_i·g_i − D_i`, with `g_i` the quanta granted and `D_i ≥ 0` the deficit. The two
//! tenants' turns alternate, so `g_i − g_j` takes only two adjacent values; a deficit is below
//! `M` except during the tenant's own turn, when it is below `M + q·w`, and only one of the two
//! can be in its turn. So `X = S_i/w_i − S_j/w_j` stays in an open interval of width
//! `q + M/w_i + M/w_j`, and the change of `X` over any interval is less than that width. When
//! `q ≥ M` this also gives the classic `M + 2q`. The property tests check this bound.
//!
//! [`Mode::Fifo`] is the single shared queue of the failing drill: jobs run in arrival order
//! (the order of `submit` calls) across all tenants, ignoring weights **and caps**; running
//! counts are still tracked so `complete` behaves the same in both modes.
//!
//! Memory: a tenant with no backlog and nothing running has no state. Its configuration
//! ([`JobScheduler::set_tenant`]) is kept until [`JobScheduler::clear_tenant`]; a tenant never
//! configured gets weight 1 and no cap.
//!
//! A production worker pool calls `submit` when a job arrives, `next` whenever a worker is idle
//! (until it returns `None`), and `complete` when a worker finishes:
//!
//! ```
//! use std::time::Instant;
//! use tenantsim::components::scheduler::{JobScheduler, Mode};
//! use tenantsim::time::SimTime;
//!
//! let start = Instant::now();
//! let clock = || SimTime::from_nanos(start.elapsed().as_nanos() as u64);
//! let mut scheduler = JobScheduler::new(Mode::Fair, 100).expect("valid quantum");
//! scheduler.set_tenant("noisy", 1, Some(2)).expect("valid weight and cap");
//! for n in 0..1_000 {
//!     scheduler.submit(clock(), "noisy", format!("export-{n}"), 100);
//! }
//! scheduler.submit(clock(), "quiet", "export-a".to_string(), 100);
//!
//! // Four idle workers: the noisy tenant gets its cap of two, the quiet tenant is not starved.
//! let mut dispatched = Vec::new();
//! while dispatched.len() < 4 {
//!     let Some(dispatch) = scheduler.next(clock()) else { break };
//!     dispatched.push(dispatch.tenant);
//! }
//! assert_eq!(dispatched, ["noisy", "quiet", "noisy"]);
//! scheduler.complete(clock(), &"quiet").expect("one quiet job was running");
//! assert!(scheduler.complete(clock(), &"quiet").is_err()); // nothing left running
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use crate::time::{SimDuration, SimTime};

/// How the scheduler picks the next job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Weighted deficit round robin across tenants, honouring per-tenant caps.
    Fair,
    /// One global FIFO in arrival order; weights and caps are ignored (the failing twin).
    Fifo,
}

/// A tenant's scheduling configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TenantConfig {
    /// Share of dispatched cost relative to other tenants (at least 1).
    pub weight: u32,
    /// Most jobs of the tenant running at once (`None`: no cap). Ignored in [`Mode::Fifo`].
    pub max_running: Option<u32>,
}

impl TenantConfig {
    /// Weight 1, no cap: what a tenant gets when it was never configured.
    pub const DEFAULT: TenantConfig = TenantConfig {
        weight: 1,
        max_running: None,
    };

    fn under_cap(&self, running: u32) -> bool {
        self.max_running.is_none_or(|cap| running < cap)
    }
}

impl Default for TenantConfig {
    fn default() -> Self {
        TenantConfig::DEFAULT
    }
}

/// Invalid configuration or misuse of the scheduler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchedulerError {
    /// The quantum is zero.
    ZeroQuantum,
    /// A tenant weight is zero.
    ZeroWeight,
    /// A tenant cap is zero (use `None` for no cap).
    ZeroCap,
    /// `complete` was called for a tenant with no running job.
    NothingRunning,
}

impl fmt::Display for SchedulerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchedulerError::ZeroQuantum => write!(
                f,
                "the scheduler quantum must be at least 1 (about the typical job cost)"
            ),
            SchedulerError::ZeroWeight => write!(f, "a tenant's job weight must be at least 1"),
            SchedulerError::ZeroCap => write!(
                f,
                "a tenant's max running jobs must be at least 1 (omit it for no cap)"
            ),
            SchedulerError::NothingRunning => {
                write!(f, "job completion for a tenant with no running job")
            }
        }
    }
}

impl std::error::Error for SchedulerError {}

/// A job handed to a worker by [`JobScheduler::next`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dispatch<T, J> {
    /// The tenant that submitted the job.
    pub tenant: T,
    /// The job as submitted.
    pub job: J,
    /// The cost it was submitted with.
    pub cost: u64,
    /// When it was submitted.
    pub submitted_at: SimTime,
    /// How long it waited in the queue (dispatch time minus submission time).
    pub waited: SimDuration,
}

#[derive(Debug)]
struct Queued<J> {
    job: J,
    cost: u64,
    submitted_at: SimTime,
}

#[derive(Debug)]
struct TenantState<J> {
    queue: VecDeque<Queued<J>>,
    deficit: u64,
    running: u32,
    /// In its turn: this turn's quantum has been granted (only the head of `active`).
    in_turn: bool,
    /// In the round-robin list (Fair mode: has a backlog and is under its cap).
    active: bool,
}

impl<J> TenantState<J> {
    fn new() -> Self {
        TenantState {
            queue: VecDeque::new(),
            deficit: 0,
            running: 0,
            in_turn: false,
            active: false,
        }
    }
}

/// A cell's background-job dispatcher: per-tenant FIFO queues, weighted deficit round robin
/// across tenants with per-tenant caps (or a global FIFO). See the module documentation.
///
/// `T` is the tenant key (a dense `u32` in the simulator, a string in a service); `J` is the
/// job payload, returned untouched by [`JobScheduler::next`].
#[derive(Debug)]
pub struct JobScheduler<T, J> {
    mode: Mode,
    quantum: u64,
    configs: BTreeMap<T, TenantConfig>,
    tenants: BTreeMap<T, TenantState<J>>,
    /// Fair mode: tenants with a backlog and under their cap, in round-robin order.
    active: VecDeque<T>,
    /// Fifo mode: the tenant of every queued job, in arrival order.
    arrivals: VecDeque<T>,
    queued: usize,
    running: u64,
}

impl<T: Ord + Clone, J> JobScheduler<T, J> {
    /// An empty scheduler. `quantum` is the credit a weight-1 tenant earns per round, in the
    /// same unit as job costs; it must be at least 1 (it is unused in [`Mode::Fifo`], but still
    /// validated so a configuration does not become invalid when the mode is switched).
    pub fn new(mode: Mode, quantum: u64) -> Result<Self, SchedulerError> {
        if quantum == 0 {
            return Err(SchedulerError::ZeroQuantum);
        }
        Ok(JobScheduler {
            mode,
            quantum,
            configs: BTreeMap::new(),
            tenants: BTreeMap::new(),
            active: VecDeque::new(),
            arrivals: VecDeque::new(),
            queued: 0,
            running: 0,
        })
    }

    /// The dispatch mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The quantum per unit of weight.
    pub fn quantum(&self) -> u64 {
        self.quantum
    }

    /// Sets a tenant's weight (at least 1) and cap (`None` for no cap; `Some(0)` is an error).
    /// A new weight applies from the tenant's next turn. Lowering the cap below the number of
    /// running jobs never preempts: the tenant just dispatches nothing until it is under again.
    pub fn set_tenant(
        &mut self,
        tenant: T,
        weight: u32,
        max_running: Option<u32>,
    ) -> Result<(), SchedulerError> {
        if weight == 0 {
            return Err(SchedulerError::ZeroWeight);
        }
        if max_running == Some(0) {
            return Err(SchedulerError::ZeroCap);
        }
        let config = TenantConfig {
            weight,
            max_running,
        };
        self.configs.insert(tenant.clone(), config);
        self.refresh_eligibility(&tenant);
        Ok(())
    }

    /// Forgets a tenant's configuration; it goes back to weight 1 and no cap.
    pub fn clear_tenant(&mut self, tenant: &T) {
        if self.configs.remove(tenant).is_some() {
            self.refresh_eligibility(tenant);
        }
    }

    /// The tenant's configuration (the default if it was never set).
    pub fn config(&self, tenant: &T) -> TenantConfig {
        self.configs.get(tenant).copied().unwrap_or_default()
    }

    /// Queues a job of `cost` for `tenant` behind the tenant's earlier jobs.
    pub fn submit(&mut self, now: SimTime, tenant: T, job: J, cost: u64) {
        let config = self.config(&tenant);
        let state = self
            .tenants
            .entry(tenant.clone())
            .or_insert_with(TenantState::new);
        state.queue.push_back(Queued {
            job,
            cost,
            submitted_at: now,
        });
        self.queued += 1;
        match self.mode {
            Mode::Fifo => self.arrivals.push_back(tenant),
            Mode::Fair => {
                if !state.active && config.under_cap(state.running) {
                    state.active = true;
                    state.in_turn = false;
                    self.active.push_back(tenant);
                }
            }
        }
    }

    /// The next job for a free worker, or `None` if no tenant under its cap has a backlog.
    /// The job counts as running for its tenant until [`JobScheduler::complete`].
    pub fn next(&mut self, now: SimTime) -> Option<Dispatch<T, J>> {
        match self.mode {
            Mode::Fifo => self.next_fifo(now),
            Mode::Fair => self.next_fair(now),
        }
    }

    /// Records that one of `tenant`'s running jobs finished (successfully or not). An error if
    /// the tenant has no running job; the state is then unchanged.
    pub fn complete(&mut self, _now: SimTime, tenant: &T) -> Result<(), SchedulerError> {
        let state = self
            .tenants
            .get_mut(tenant)
            .filter(|s| s.running > 0)
            .ok_or(SchedulerError::NothingRunning)?;
        state.running -= 1;
        self.running -= 1;
        if state.queue.is_empty() && state.running == 0 {
            self.tenants.remove(tenant);
        } else {
            self.refresh_eligibility(tenant);
        }
        Ok(())
    }

    /// Jobs of `tenant` waiting to be dispatched.
    pub fn backlog(&self, tenant: &T) -> usize {
        self.tenants.get(tenant).map_or(0, |s| s.queue.len())
    }

    /// Jobs of `tenant` dispatched and not yet completed.
    pub fn running(&self, tenant: &T) -> u32 {
        self.tenants.get(tenant).map_or(0, |s| s.running)
    }

    /// The tenant's current deficit (credit not yet spent), for observability.
    pub fn deficit(&self, tenant: &T) -> u64 {
        self.tenants.get(tenant).map_or(0, |s| s.deficit)
    }

    /// Jobs waiting across all tenants.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// Jobs running across all tenants.
    pub fn running_total(&self) -> u64 {
        self.running
    }

    /// Tenants holding state (a backlog or a running job); the others cost no memory.
    pub fn tracked_tenants(&self) -> usize {
        self.tenants.len()
    }

    /// Puts the tenant into the round robin, or takes it out, to match its backlog and cap
    /// (Fair mode). Rejoining is at the tail; leaving keeps the deficit.
    fn refresh_eligibility(&mut self, tenant: &T) {
        if self.mode != Mode::Fair {
            return;
        }
        let config = self.config(tenant);
        let Some(state) = self.tenants.get_mut(tenant) else {
            return;
        };
        let eligible = !state.queue.is_empty() && config.under_cap(state.running);
        if eligible && !state.active {
            state.active = true;
            state.in_turn = false;
            self.active.push_back(tenant.clone());
        } else if !eligible && state.active {
            state.active = false;
            state.in_turn = false;
            self.active.retain(|t| t != tenant);
        }
    }

    fn next_fifo(&mut self, now: SimTime) -> Option<Dispatch<T, J>> {
        let tenant = self.arrivals.pop_front()?;
        let state = self.tenants.get_mut(&tenant)?;
        let queued = state.queue.pop_front()?;
        state.running += 1;
        self.queued -= 1;
        self.running += 1;
        Some(dispatch(tenant, queued, now))
    }

    fn next_fair(&mut self, now: SimTime) -> Option<Dispatch<T, J>> {
        // Turns ended without a dispatch since the last dispatch or skip-ahead. Once every
        // active tenant has had one, no head job fits anywhere: skip the empty rounds.
        let mut fruitless = 0usize;
        // Bound: one pass, a skip-ahead, then a pass that must dispatch (see `skip_empty_rounds`).
        let mut visits_left = 2 * self.active.len() + 2;
        while visits_left > 0 {
            visits_left -= 1;
            if self.active.is_empty() {
                return None;
            }
            if fruitless >= self.active.len() {
                self.skip_empty_rounds();
                fruitless = 0;
            }
            let tenant = self.active.front()?.clone();
            let config = self.config(&tenant);
            let Some(state) = self.tenants.get_mut(&tenant) else {
                // Unreachable by construction; dropping the stale entry keeps `next` total.
                self.active.pop_front();
                continue;
            };
            if !state.in_turn {
                let grant = self.quantum.saturating_mul(u64::from(config.weight));
                state.deficit = state.deficit.saturating_add(grant);
                state.in_turn = true;
            }
            let fits = state
                .queue
                .front()
                .is_some_and(|head| head.cost <= state.deficit);
            if !fits {
                state.in_turn = false;
                if state.queue.is_empty() {
                    // Unreachable by construction (active tenants have a backlog).
                    state.active = false;
                    state.deficit = 0;
                    self.active.pop_front();
                } else {
                    self.active.rotate_left(1);
                    fruitless += 1;
                }
                continue;
            }
            let queued = state.queue.pop_front()?;
            state.deficit -= queued.cost;
            state.running += 1;
            self.queued -= 1;
            self.running += 1;
            if state.queue.is_empty() {
                state.deficit = 0;
                state.in_turn = false;
                state.active = false;
                self.active.pop_front();
            } else if !config.under_cap(state.running) {
                // Parked at its cap: out of the round robin, deficit kept, no quantum earned.
                state.in_turn = false;
                state.active = false;
                self.active.pop_front();
            }
            return Some(dispatch(tenant, queued, now));
        }
        None
    }

    /// After a full round in which no active tenant's head job fit, adds the credit of the
    /// `r − 1` further empty rounds that plain DRR would run before the first head job fits
    /// (`r` = fewest rounds any tenant needs). The next pass then dispatches, exactly as DRR
    /// would, without looping `cost / quantum` times.
    fn skip_empty_rounds(&mut self) {
        let mut rounds_needed = u64::MAX;
        for tenant in &self.active {
            let weight = self.configs.get(tenant).copied().unwrap_or_default().weight;
            let Some(state) = self.tenants.get(tenant) else {
                continue;
            };
            let Some(head) = state.queue.front() else {
                continue;
            };
            let grant = self.quantum.saturating_mul(u64::from(weight));
            let missing = head.cost.saturating_sub(state.deficit);
            rounds_needed = rounds_needed.min(missing.div_ceil(grant));
        }
        let empty_rounds = rounds_needed.saturating_sub(1);
        if empty_rounds == 0 || rounds_needed == u64::MAX {
            return;
        }
        for tenant in &self.active {
            let weight = self.configs.get(tenant).copied().unwrap_or_default().weight;
            if let Some(state) = self.tenants.get_mut(tenant) {
                let grant = self.quantum.saturating_mul(u64::from(weight));
                state.deficit = state
                    .deficit
                    .saturating_add(grant.saturating_mul(empty_rounds));
            }
        }
    }
}

fn dispatch<T, J>(tenant: T, queued: Queued<J>, now: SimTime) -> Dispatch<T, J> {
    Dispatch {
        tenant,
        job: queued.job,
        cost: queued.cost,
        submitted_at: queued.submitted_at,
        waited: now.saturating_since(queued.submitted_at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T0: SimTime = SimTime::ZERO;

    fn drain<T: Ord + Clone, J>(s: &mut JobScheduler<T, J>, n: usize) -> Vec<Dispatch<T, J>> {
        (0..n).map_while(|_| s.next(T0)).collect()
    }

    #[test]
    fn weights_split_dispatched_cost() {
        let mut s = JobScheduler::new(Mode::Fair, 10).unwrap();
        s.set_tenant('a', 3, None).unwrap();
        s.set_tenant('b', 1, None).unwrap();
        for n in 0..100 {
            s.submit(T0, 'a', n, 10);
            s.submit(T0, 'b', n, 10);
        }
        let served: Vec<char> = drain(&mut s, 40).into_iter().map(|d| d.tenant).collect();
        assert_eq!(served.iter().filter(|&&t| t == 'a').count(), 30);
        assert_eq!(&served[..8], &['a', 'a', 'a', 'b', 'a', 'a', 'a', 'b']);
    }

    #[test]
    fn fifo_starves_the_small_tenant_and_fair_does_not() {
        for (mode, quiet_position) in [(Mode::Fifo, 1_000), (Mode::Fair, 1)] {
            let mut s = JobScheduler::new(mode, 1).unwrap();
            for n in 0..1_000 {
                s.submit(T0, "noisy", n, 1);
            }
            s.submit(T0, "quiet", 0, 1);
            let order = drain(&mut s, 2_000);
            let position = order.iter().position(|d| d.tenant == "quiet");
            assert_eq!(position, Some(quiet_position), "{mode:?}");
        }
    }

    #[test]
    fn expensive_jobs_skip_empty_rounds_exactly() {
        // Costs a million times the quantum: plain DRR would loop a million rounds.
        let mut s = JobScheduler::new(Mode::Fair, 1).unwrap();
        s.submit(T0, 1u32, 'x', 3_000_000);
        s.submit(T0, 2u32, 'y', 1_000_000);
        let first = s.next(T0).unwrap();
        assert_eq!(first.tenant, 2);
        // Tenant 1 earned the same million rounds of credit meanwhile (plus one: its turn came
        // first in the round where tenant 2's job fit).
        assert_eq!(s.deficit(&1), 1_000_000);
        assert_eq!(s.next(T0).unwrap().tenant, 1);
    }

    #[test]
    fn idle_tenants_do_not_bank_credit() {
        let mut s = JobScheduler::new(Mode::Fair, 10).unwrap();
        s.submit(T0, 'a', 0, 1);
        assert_eq!(s.next(T0).unwrap().tenant, 'a');
        assert_eq!(s.deficit(&'a'), 0); // 9 left over, dropped with the empty queue
        s.complete(T0, &'a').unwrap();
        for n in 1..5 {
            s.submit(T0, 'a', n, 5);
            s.submit(T0, 'b', n, 5);
        }
        let order: String = drain(&mut s, 8).into_iter().map(|d| d.tenant).collect();
        assert_eq!(order, "aabbaabb");
    }

    #[test]
    fn capped_tenant_parks_and_rejoins_with_its_deficit() {
        let mut s = JobScheduler::new(Mode::Fair, 10).unwrap();
        s.set_tenant("a", 1, Some(1)).unwrap();
        s.submit(T0, "a", 1, 4);
        s.submit(T0, "a", 2, 4);
        s.submit(T0, "b", 1, 10);
        assert_eq!(s.next(T0).unwrap().tenant, "a");
        assert_eq!(s.deficit(&"a"), 6); // kept while parked
        assert_eq!(s.next(T0).unwrap().tenant, "b");
        assert!(s.next(T0).is_none()); // a is capped: a free worker stays idle
        s.complete(T0, &"a").unwrap();
        let d = s.next(SimTime::from_nanos(7)).unwrap();
        assert_eq!(
            (d.tenant, d.job, d.waited),
            ("a", 2, SimDuration::from_nanos(7))
        );
    }

    #[test]
    fn misuse_and_bad_config_are_errors() {
        assert_eq!(
            JobScheduler::<u32, ()>::new(Mode::Fair, 0).unwrap_err(),
            SchedulerError::ZeroQuantum
        );
        let mut s = JobScheduler::<u32, ()>::new(Mode::Fair, 1).unwrap();
        assert_eq!(s.set_tenant(1, 0, None), Err(SchedulerError::ZeroWeight));
        assert_eq!(s.set_tenant(1, 1, Some(0)), Err(SchedulerError::ZeroCap));
        assert_eq!(s.complete(T0, &1), Err(SchedulerError::NothingRunning));
        s.submit(T0, 1, (), 1);
        assert_eq!(s.complete(T0, &1), Err(SchedulerError::NothingRunning));
        assert_eq!(s.backlog(&1), 1);
        assert!(!SchedulerError::ZeroCap.to_string().is_empty());
    }

    #[test]
    fn state_is_dropped_when_idle_but_config_is_kept() {
        let mut s = JobScheduler::new(Mode::Fair, 1).unwrap();
        s.set_tenant(7u32, 5, Some(3)).unwrap();
        s.submit(T0, 7, (), 1);
        s.next(T0).unwrap();
        assert_eq!(s.tracked_tenants(), 1);
        s.complete(T0, &7).unwrap();
        assert_eq!(s.tracked_tenants(), 0);
        assert_eq!(s.config(&7).weight, 5);
        s.clear_tenant(&7);
        assert_eq!(s.config(&7), TenantConfig::DEFAULT);
    }

    #[test]
    fn lowering_a_cap_parks_and_raising_it_resumes() {
        let mut s = JobScheduler::new(Mode::Fair, 1).unwrap();
        for n in 0..3 {
            s.submit(T0, 1u32, n, 1);
        }
        s.next(T0).unwrap();
        s.set_tenant(1, 1, Some(1)).unwrap();
        assert!(s.next(T0).is_none());
        s.set_tenant(1, 1, Some(2)).unwrap();
        assert_eq!(s.next(T0).unwrap().job, 1);
    }

    // ---- property tests -------------------------------------------------------------------

    /// Plain deficit round robin, literally round by round, without caps: the reference the
    /// skip-ahead and the one-job-per-call structure must reproduce exactly.
    fn reference_drr(
        quantum: u64,
        weights: &[u32],
        jobs: &[Vec<u64>],
        dispatches: usize,
    ) -> Vec<(usize, usize)> {
        let mut queues: Vec<VecDeque<(usize, u64)>> = jobs
            .iter()
            .map(|costs| costs.iter().copied().enumerate().collect())
            .collect();
        let mut deficits = vec![0u64; jobs.len()];
        let mut order = Vec::new();
        'rounds: while order.len() < dispatches {
            if queues.iter().all(VecDeque::is_empty) {
                break;
            }
            for t in 0..jobs.len() {
                if queues[t].is_empty() {
                    continue;
                }
                deficits[t] += quantum * u64::from(weights[t]);
                while let Some(&(n, cost)) = queues[t].front() {
                    if cost > deficits[t] {
                        break;
                    }
                    deficits[t] -= cost;
                    queues[t].pop_front();
                    order.push((t, n));
                    if order.len() == dispatches {
                        break 'rounds;
                    }
                }
                if queues[t].is_empty() {
                    deficits[t] = 0;
                }
            }
        }
        order
    }

    fn tenant_jobs() -> impl Strategy<Value = (u64, Vec<u32>, Vec<Vec<u64>>)> {
        (
            1u64..20,
            proptest::collection::vec((1u32..5, proptest::collection::vec(0u64..60, 0..12)), 1..5),
        )
            .prop_map(|(q, ts)| {
                let (w, j) = ts.into_iter().unzip();
                (q, w, j)
            })
    }

    #[derive(Clone, Debug)]
    enum Op {
        Submit { tenant: u8, cost: u64 },
        Complete { pick: usize },
        CompleteIdle { tenant: u8 },
    }

    fn ops() -> impl Strategy<Value = Vec<Op>> {
        proptest::collection::vec(
            prop_oneof![
                4 => (0u8..4, 0u64..40).prop_map(|(tenant, cost)| Op::Submit { tenant, cost }),
                3 => any::<usize>().prop_map(|pick| Op::Complete { pick }),
                1 => (0u8..4).prop_map(|tenant| Op::CompleteIdle { tenant }),
            ],
            0..150,
        )
    }

    fn configs() -> impl Strategy<Value = Vec<(u32, Option<u32>)>> {
        proptest::collection::vec((1u32..4, proptest::option::of(1u32..3)), 4)
    }

    /// Drives a worker pool of `workers` through `ops`, asking `next` whenever a worker is
    /// free, and checks every invariant after every step. Returns the dispatch log.
    fn run_pool(
        mode: Mode,
        quantum: u64,
        workers: usize,
        configs: &[(u32, Option<u32>)],
        ops: &[Op],
    ) -> Result<Vec<(u8, u32)>, TestCaseError> {
        let mut s = JobScheduler::new(mode, quantum).unwrap();
        for (t, &(weight, cap)) in configs.iter().enumerate() {
            s.set_tenant(t as u8, weight, cap).unwrap();
        }
        let mut submitted = [0u32; 4];
        let mut running: Vec<u8> = Vec::new();
        let mut waiting: Vec<VecDeque<u32>> = vec![VecDeque::new(); 4];
        let mut arrival_order: VecDeque<(u8, u32)> = VecDeque::new();
        let mut log = Vec::new();
        for (step, op) in ops.iter().enumerate() {
            let now = SimTime::from_nanos(step as u64);
            match op {
                Op::Submit { tenant, cost } => {
                    let n = submitted[*tenant as usize];
                    submitted[*tenant as usize] += 1;
                    s.submit(now, *tenant, n, *cost);
                    waiting[*tenant as usize].push_back(n);
                    arrival_order.push_back((*tenant, n));
                }
                Op::Complete { pick } => {
                    if !running.is_empty() {
                        let tenant = running.swap_remove(pick % running.len());
                        prop_assert!(s.complete(now, &tenant).is_ok());
                    }
                }
                Op::CompleteIdle { tenant } => {
                    if !running.contains(tenant) {
                        prop_assert_eq!(
                            s.complete(now, tenant),
                            Err(SchedulerError::NothingRunning)
                        );
                    }
                }
            }
            while running.len() < workers {
                let Some(d) = s.next(now) else { break };
                // FIFO within a tenant (and, in Fifo mode, across tenants).
                prop_assert_eq!(waiting[d.tenant as usize].pop_front(), Some(d.job));
                let expected = arrival_order
                    .iter()
                    .position(|&x| x == (d.tenant, d.job))
                    .unwrap();
                if mode == Mode::Fifo {
                    prop_assert_eq!(expected, 0, "Fifo dispatches in global arrival order");
                }
                arrival_order.remove(expected);
                prop_assert_eq!(d.waited, now.saturating_since(d.submitted_at));
                running.push(d.tenant);
                log.push((d.tenant, d.job));
            }
            for t in 0..4u8 {
                let runs = running.iter().filter(|&&r| r == t).count() as u32;
                prop_assert_eq!(s.running(&t), runs);
                prop_assert_eq!(s.backlog(&t), waiting[t as usize].len());
                let cap = configs[t as usize].1;
                if mode == Mode::Fair {
                    // Caps respected at all times.
                    prop_assert!(cap.is_none_or(|c| runs <= c), "tenant {t} over its cap");
                }
                // Work-conserving: a worker idles only if no tenant under its cap has a backlog.
                let eligible = !waiting[t as usize].is_empty()
                    && (mode == Mode::Fifo || cap.is_none_or(|c| runs < c));
                prop_assert!(
                    running.len() == workers || !eligible,
                    "a worker is idle while tenant {t} has an eligible job"
                );
            }
            prop_assert_eq!(s.queued(), waiting.iter().map(VecDeque::len).sum::<usize>());
            prop_assert_eq!(s.running_total(), running.len() as u64);
            let holding = (0..4)
                .filter(|&t| !waiting[t].is_empty() || running.contains(&(t as u8)))
                .count();
            prop_assert_eq!(
                s.tracked_tenants(),
                holding,
                "idle tenants must hold no state"
            );
        }
        Ok(log)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Two continuously backlogged, uncapped tenants i, j (plus tenants that come and go):
        /// over every interval of dispatches, |S_i/w_i − S_j/w_j| < q + M/w_i + M/w_j, checked
        /// exactly as |S_i·w_j − S_j·w_i| < q·w_i·w_j + M·(w_i + w_j). The largest change over
        /// any interval is max − min of the running value over all prefixes.
        #[test]
        fn backlogged_tenants_share_in_proportion_to_weight(
            quantum in 1u64..50,
            weights in (1u32..6, 1u32..6),
            costs_i in proptest::collection::vec(0u64..200, 1..20),
            costs_j in proptest::collection::vec(0u64..200, 1..20),
            others in proptest::collection::vec((2u32..5, 0u64..200, 0usize..300), 0..30),
            dispatches in 1usize..300,
        ) {
            let (wi, wj) = weights;
            let mut s = JobScheduler::new(Mode::Fair, quantum).unwrap();
            s.set_tenant(0u32, wi, None).unwrap();
            s.set_tenant(1u32, wj, None).unwrap();
            // Enough jobs that neither tenant runs dry in the window: costs cycle.
            for n in 0..dispatches + 1 {
                s.submit(T0, 0, (), costs_i[n % costs_i.len()]);
                s.submit(T0, 1, (), costs_j[n % costs_j.len()]);
            }
            let max_cost = costs_i.iter().chain(&costs_j).copied().max().unwrap();
            let (mut served_i, mut served_j) = (0i128, 0i128);
            let (mut low, mut high) = (0i128, 0i128);
            for step in 0..dispatches {
                for &(tenant, cost, at) in &others {
                    if at == step {
                        s.submit(T0, tenant, (), cost);
                    }
                }
                let d = s.next(T0).unwrap();
                match d.tenant {
                    0 => served_i += i128::from(d.cost),
                    1 => served_j += i128::from(d.cost),
                    _ => {}
                }
                prop_assert!(s.backlog(&0) > 0 && s.backlog(&1) > 0);
                let x = served_i * i128::from(wj) - served_j * i128::from(wi);
                low = low.min(x);
                high = high.max(x);
            }
            let bound = i128::from(quantum) * i128::from(wi) * i128::from(wj)
                + i128::from(max_cost) * i128::from(wi + wj);
            prop_assert!(high - low < bound, "spread {} >= bound {}", high - low, bound);
        }

        /// One job per `next` call, parking and skip-ahead reproduce literal round-by-round DRR.
        #[test]
        fn dispatch_order_matches_reference_drr((quantum, weights, jobs) in tenant_jobs()) {
            let mut s = JobScheduler::new(Mode::Fair, quantum).unwrap();
            for (t, costs) in jobs.iter().enumerate() {
                s.set_tenant(t, weights[t], None).unwrap();
                for (n, &cost) in costs.iter().enumerate() {
                    s.submit(T0, t, n, cost);
                }
            }
            let total: usize = jobs.iter().map(Vec::len).sum();
            let ours: Vec<(usize, usize)> =
                drain(&mut s, total + 1).into_iter().map(|d| (d.tenant, d.job)).collect();
            prop_assert_eq!(ours, reference_drr(quantum, &weights, &jobs, total));
        }

        /// Work conservation, caps, FIFO within a tenant, running/backlog accounting and
        /// dropping idle state, under random submissions and completions.
        #[test]
        fn fair_pool_invariants(
            quantum in 1u64..30, workers in 1usize..5, configs in configs(), ops in ops(),
        ) {
            run_pool(Mode::Fair, quantum, workers, &configs, &ops)?;
        }

        /// Fifo mode dispatches in global arrival order, ignoring caps and weights.
        #[test]
        fn fifo_pool_is_global_arrival_order(
            workers in 1usize..5, configs in configs(), ops in ops(),
        ) {
            run_pool(Mode::Fifo, 1, workers, &configs, &ops)?;
        }

        /// Same inputs, same dispatch order (two independent instances).
        #[test]
        fn dispatch_order_is_deterministic(
            quantum in 1u64..30, workers in 1usize..5, configs in configs(), ops in ops(),
        ) {
            let first = run_pool(Mode::Fair, quantum, workers, &configs, &ops)?;
            let second = run_pool(Mode::Fair, quantum, workers, &configs, &ops)?;
            prop_assert_eq!(first, second);
        }
    }
}
