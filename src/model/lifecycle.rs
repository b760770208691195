//! Tenant lifecycle as the model runs it: workflows (onboarding and offboarding sagas) whose
//! steps call dependencies, the sign-ups that start onboardings, the deletion requests that
//! start offboardings, the backups a deletion must outlive; and what a run reports about them.
//!
//! A sign-up tenant exists from the start (pre-allocated and placed at load time) but sends no
//! request until its onboarding has completed and the resources that gate access (a DNS record
//! that must propagate, a certificate that must be issued) are ready. A deletion revokes the
//! tenant's access at once and runs the offboarding workflow, whose steps erase the tenant
//! from the stores the model has (database rows, cache entries, search index, backups,
//! provider resources), each erasure appended to the deletion ledger.

use super::dist::Dist;
use crate::components::retry::RetryPolicy;
use crate::components::workflow::{DefinitionError, StepDefinition, WorkflowDefinition};
use crate::time::{SimDuration, SimTime};

/// What a workflow is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkflowKind {
    /// Started by a sign-up; on success the tenant gets access.
    Onboarding,
    /// Started by a deletion request; its steps erase the tenant's data.
    Offboarding,
}

impl WorkflowKind {
    /// The word used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            WorkflowKind::Onboarding => "onboarding",
            WorkflowKind::Offboarding => "offboarding",
        }
    }
}

/// A store of tenant data an offboarding step erases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Store {
    /// The tenant's rows (or schema) in the databases.
    Database,
    /// The tenant's entries in every cache.
    Caches,
    /// The tenant's index in the search dependencies.
    Search,
    /// Backups holding the tenant: the step waits until they have expired (or scrubs them).
    Backups,
    /// The resources onboarding steps created at the step's dependency (a billing customer,
    /// a DNS record); with no dependency, those of the steps that called none.
    Resources,
}

impl Store {
    /// Every store, in ledger order.
    pub const ALL: [Store; 5] = [
        Store::Database,
        Store::Caches,
        Store::Search,
        Store::Backups,
        Store::Resources,
    ];

    /// The word used in scenario files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Store::Database => "database",
            Store::Caches => "caches",
            Store::Search => "search",
            Store::Backups => "backups",
            Store::Resources => "resources",
        }
    }
}

/// One step of a workflow.
#[derive(Clone, Debug)]
pub struct WorkflowStep {
    /// Name, unique in its workflow.
    pub name: String,
    /// The dependency it calls (index into `System::dependencies`); `None`: the runner does
    /// the work itself in `time`.
    pub dependency: Option<usize>,
    /// The time of a step without a dependency.
    pub time: Dist,
    /// Retries of its call (and of its compensation).
    pub retry: RetryPolicy,
    /// Timeout of each attempt.
    pub timeout: SimDuration,
    /// Whether it can be undone (a compensation calls the same dependency, deleting by the
    /// step's idempotency key).
    pub compensate: bool,
    /// Onboarding: the time from the call's success until its resource is usable (DNS
    /// propagation, certificate issuance).
    pub ready_after: Option<Dist>,
    /// Onboarding: access waits for this step's resource to be ready.
    pub gates_access: bool,
    /// Offboarding: the store it erases.
    pub erases: Option<Store>,
}

/// `[[workflows]]`.
#[derive(Clone, Debug)]
pub struct WorkflowSpec {
    /// Name.
    pub name: String,
    /// Onboarding or offboarding.
    pub kind: WorkflowKind,
    /// Its steps, in order.
    pub steps: Vec<WorkflowStep>,
    /// The forward phase ends within this of the workflow's start; `None`: the sum of the
    /// steps' worst cases.
    pub bound: Option<SimDuration>,
    /// Whether a failed workflow runs its steps' compensations.
    pub compensation: bool,
    /// Workflows of this kind in progress at once (the runner's workers); the rest wait FIFO.
    /// 0: no limit.
    pub concurrency: u32,
    /// Onboarding: tenant names refused at sign-up.
    pub reserved_names: Vec<String>,
}

impl WorkflowSpec {
    /// The workflow component's definition: each step with its retry policy and timeout, a
    /// compensation (the same policy) for steps that can be undone when `compensation` is
    /// on, and the forward bound if the file sets one.
    pub fn definition(&self) -> Result<WorkflowDefinition, DefinitionError> {
        let steps = self
            .steps
            .iter()
            .map(|s| {
                let step = StepDefinition::new(s.name.clone(), s.retry, s.timeout);
                if s.compensate && self.compensation {
                    step.with_compensation(s.retry, s.timeout)
                } else {
                    step
                }
            })
            .collect();
        let definition = WorkflowDefinition::new(steps)?;
        match self.bound {
            Some(bound) => definition.with_forward_bound(bound),
            None => Ok(definition),
        }
    }
}

/// Sign-ups (or deletion requests) of one tenant group: its members one after another.
#[derive(Clone, Copy, Debug)]
pub struct LifecycleLoad {
    /// Index into `System::groups`.
    pub group: usize,
    /// Index into [`Lifecycle::workflows`].
    pub workflow: usize,
    /// The first one.
    pub at: SimTime,
    /// Poisson per second from `at`; `None`: every member at `at` (a batch).
    pub rate: Option<f64>,
}

/// `[backups]`: snapshots of every tenant's rows.
#[derive(Clone, Copy, Debug)]
pub struct Backups {
    /// A snapshot is taken every `every` (from `every` on).
    pub every: SimDuration,
    /// How long a snapshot is kept; `None`: for ever.
    pub retention: Option<SimDuration>,
    /// A deletion's `backups` step scrubs the tenant from the snapshots instead of waiting for
    /// them to expire.
    pub scrub: bool,
}

/// Workflows, sign-ups, deletions and backups (empty without `[[workflows]]`).
#[derive(Clone, Debug, Default)]
pub struct Lifecycle {
    /// `[[workflows]]`.
    pub workflows: Vec<WorkflowSpec>,
    /// Per tenant group with `signup`.
    pub signups: Vec<LifecycleLoad>,
    /// Per tenant group with `deletion`.
    pub deletions: Vec<LifecycleLoad>,
    /// `[backups]`.
    pub backups: Option<Backups>,
}

impl Lifecycle {
    /// Whether the run has no workflow to run (then the model keeps no lifecycle state).
    pub fn is_empty(&self) -> bool {
        self.signups.is_empty() && self.deletions.is_empty()
    }

    /// Whether tenant group `group` signs up during the run (its tenants start inactive).
    pub fn signs_up(&self, group: usize) -> bool {
        self.signups.iter().any(|s| s.group == group)
    }
}

// ---- What a run reports ----

/// How one sign-up ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnboardingOutcome {
    /// Its name is reserved: refused at sign-up.
    Refused,
    /// Every step completed and the tenant got access.
    Completed,
    /// Every step completed; access waits for a resource to be ready at the end of the run.
    AwaitingAccess,
    /// A step failed; every needed compensation succeeded.
    Compensated,
    /// A step failed and a compensation failed too: a person must look.
    Stuck,
    /// Queued or in progress when the run ended.
    Unfinished,
}

impl OnboardingOutcome {
    /// The word reports use.
    pub fn name(self) -> &'static str {
        match self {
            OnboardingOutcome::Refused => "refused",
            OnboardingOutcome::Completed => "completed",
            OnboardingOutcome::AwaitingAccess => "awaiting_access",
            OnboardingOutcome::Compensated => "compensated",
            OnboardingOutcome::Stuck => "stuck",
            OnboardingOutcome::Unfinished => "unfinished",
        }
    }
}

/// One sign-up.
#[derive(Clone, Debug, PartialEq)]
pub struct Onboarding {
    /// The tenant (index into `System::tenants`).
    pub tenant: usize,
    /// When it signed up.
    pub signed_up: SimTime,
    /// How it ended.
    pub outcome: OnboardingOutcome,
    /// When the tenant got access (completed ones).
    pub access_at: Option<SimTime>,
    /// The step that failed (compensated and stuck ones).
    pub failed_step: Option<String>,
}

impl Onboarding {
    /// Sign-up to access, or for an unfinished one its age at `end` (a lower bound).
    pub fn time(&self, end: SimTime) -> Option<SimDuration> {
        match self.outcome {
            OnboardingOutcome::Completed => self.access_at.map(|a| a - self.signed_up),
            OnboardingOutcome::Unfinished | OnboardingOutcome::AwaitingAccess => {
                Some(end - self.signed_up)
            }
            _ => None,
        }
    }
}

/// How one deletion request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeletionOutcome {
    /// Every step completed.
    Completed,
    /// A step failed for good.
    Failed,
    /// Queued or in progress when the run ended.
    Unfinished,
    /// The tenant was not active (never onboarded, or already deleted): nothing to do.
    NotActive,
}

impl DeletionOutcome {
    /// The word reports use.
    pub fn name(self) -> &'static str {
        match self {
            DeletionOutcome::Completed => "completed",
            DeletionOutcome::Failed => "failed",
            DeletionOutcome::Unfinished => "unfinished",
            DeletionOutcome::NotActive => "not_active",
        }
    }
}

/// One deletion request.
#[derive(Clone, Debug, PartialEq)]
pub struct Deletion {
    /// The tenant.
    pub tenant: usize,
    /// When it was requested.
    pub requested: SimTime,
    /// How it ended.
    pub outcome: DeletionOutcome,
    /// When the workflow ended.
    pub ended_at: Option<SimTime>,
    /// When its bound fell due (request + bound + runner downtime), if within the run.
    pub due: Option<SimTime>,
    /// The stores that still held the tenant when the bound fell due.
    pub remaining: Vec<Store>,
}

/// One erasure: a store no longer holds the tenant.
#[derive(Clone, Debug, PartialEq)]
pub struct LedgerEntry {
    /// The tenant.
    pub tenant: usize,
    /// The store.
    pub store: Store,
    /// The step that erased it.
    pub step: String,
    /// When.
    pub at: SimTime,
    /// What was erased (rows: 1, cache entries, resources, snapshots).
    pub items: u64,
}

/// Calls of workflow steps to one dependency.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProviderCalls {
    /// Calls made (compensations included).
    pub calls: u64,
    /// Refused by the dependency's rate limit (429).
    pub throttled: u64,
    /// Answered with a transient error.
    pub errors: u64,
    /// Answered with a permanent error.
    pub rejected: u64,
}

/// Everything a run measured about the tenant lifecycle.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LifecycleOutput {
    /// Every sign-up, in sign-up order.
    pub onboardings: Vec<Onboarding>,
    /// Every deletion request, in request order.
    pub deletions: Vec<Deletion>,
    /// The deletion ledger, in time order.
    pub ledger: Vec<LedgerEntry>,
    /// Per dependency (indexed like `System::dependencies`).
    pub providers: Vec<ProviderCalls>,
    /// Resources onboarding steps created.
    pub resources_created: u64,
    /// Resources removed by compensations.
    pub resources_compensated: u64,
    /// Resources alive at the end whose tenant's onboarding failed (or that outlived it).
    pub orphans: u64,
    /// Resources created a second time for the same tenant and step.
    pub duplicates: u64,
}

/// The nearest-rank percentile `p` (0 < p <= 100) of `sorted` durations (ascending), exact at
/// any length (onboarding times run to hours, beyond what a request latency summary keeps).
pub fn nearest_rank(sorted: &[SimDuration], p: f64) -> Option<SimDuration> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let rank = ((p / 100.0 * n as f64).ceil() as usize).clamp(1, n) - 1;
    sorted.get(rank).copied()
}
