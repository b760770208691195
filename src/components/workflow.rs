//! Workflows (sagas): a sequence of named steps with idempotency keys, retries, timeouts and
//! compensations, whose progress is a plain-data record a runner can persist, crash and resume
//! from without repeating a completed side effect. Built for tenant onboarding and offboarding.
//!
//! **Definition.** A [`WorkflowDefinition`] is a validated list of [`StepDefinition`]s, shared by
//! every workflow of its kind (one `Arc`, no per-workflow copy). A step has a name, a
//! [`RetryPolicy`] (the retry component's), a timeout per attempt and an optional
//! [`Compensation`] (its own retry policy and timeout) that undoes it.
//!
//! **Driving one workflow.** A [`Workflow`] is a state machine over its [`WorkflowRecord`]. The
//! runner asks [`Workflow::next_action`] what to do at `now` and reports each call's outcome with
//! [`Workflow::on_result`]:
//!
//! - [`Action::Execute`] / [`Action::Compensate`] hand out a [`Call`]: the step, the attempt
//!   number, the [`IdempotencyKey`] to send to the provider and the attempt's deadline. The
//!   record marks the call in flight; asking again before the result returns `WaitUntil`.
//! - [`Action::WaitUntil`]`(t)`: nothing to do before `t` (a backoff, or the deadline of the call
//!   in flight). Call `next_action` again at `t`, or earlier when a result arrives. A call with
//!   no result by its deadline has timed out: `next_action` at or after the deadline records
//!   [`StepError::TimedOut`] itself, so a lost result can never stall a workflow.
//! - [`Action::Done`] with a [`Terminal`]: `Active` (every step done), `Compensated` (a step
//!   failed and every compensation that was needed succeeded) or `Stuck { step }` (a
//!   compensation failed: a person must look).
//!
//! ```text
//! workflow:
//!   Forward ── every step Ok ──────────────────────────────────────────► Done(Active)
//!      │ Permanent error | attempts exhausted | phase deadline | cancel()
//!      ▼
//!   Compensating: steps that completed (or may have), newest first
//!      ├── every needed compensation Ok (or none needed) ──────────────► Done(Compensated)
//!      └── a compensation Permanent | exhausted | phase deadline ──────► Done(Stuck { step })
//!
//! the call at the cursor (forward step or compensation):
//!   Next { at } ── next_action(now >= at) ──► Running { deadline } ── Ok ──► cursor moves on
//!   Running ── Transient(e) | TimedOut | no result by deadline ──► Next { at: backoff } (or fail)
//!   Running ── Permanent(e) ──► fail
//!   Running ── restart() / restore() ──► Reissue ── next_action ──► Running (same attempt, same key)
//!
//! step states:
//!   Pending ──► InProgress ──► Completed ─────────────────► Compensating ──► Compensated
//!                    │                                         ▲      └────► CompensationFailed
//!                    └───────► Failed ── if maybe_applied ─────┘
//! ```
//!
//! **Idempotency keys** are derived from the workflow id, the step index and whether the call
//! is the step or its compensation; never from the attempt or the incarnation, so every retry
//! and every re-issue after a restart carries the same key and a provider that deduplicates by
//! key applies the side effect at most once. Workflow ids must therefore be unique among all
//! workflows that call the same providers (a sequence number per workflow, not a tenant id: a
//! tenant's onboarding and its offboarding are two workflows). A step's output (a billing
//! customer id) is the provider's answer to the key, which it returns again on a retry; the
//! record does not hold outputs.
//!
//! **Timeouts, uncertain steps and compensation.** A timed-out attempt, or one whose result
//! was lost in a restart, may or may not have applied its side effect; the step is then marked
//! [`StepProgress::maybe_applied`]. When the workflow fails, the compensations of the steps
//! that completed, *and of the failed step if it may have applied*, run in reverse completion
//! order (steps run one at a time, so this is reverse step order), each under its own key and
//! retried with its own policy. A compensation never runs for a step known not to have applied
//! (never attempted, or every attempt answered with an error). Compensations must therefore be
//! idempotent and succeed when there is nothing to undo (delete by the step's key), which is
//! what closes the orphan left by a last attempt that timed out after the provider applied it.
//! A completed step without a compensation is left as it is. Compensation stops at the first
//! compensation that cannot succeed (`Stuck`): later ones may depend on it (delete the DNS
//! record before the zone).
//!
//! **Bound.** For a call kind with `a` attempts, timeout `t` and a retry policy whose `k`-th
//! backoff wait is at most `w_k` (`0` for `none`, `min(cap, base·2^(k-1))` for `exponential`
//! and `exponential_full_jitter`, `cap` for `decorrelated_jitter`), the longest it can take is
//! `a·t + Σ_{k<a} w_k`. The forward bound `F` is the sum of that over the steps (or a bound the
//! definition sets with [`WorkflowDefinition::with_forward_bound`]), the compensation bound `C`
//! its sum over the compensations, and [`WorkflowDefinition::bound`] is `F + C`, at most
//! `steps × attempts × (timeout + max backoff)` for each phase. Both are enforced, not only
//! expected: forward calls get deadlines no later than `started_at + F`, a retry that would
//! start at or after it fails the step (`DeadlineExceeded`), and compensation likewise within
//! `C` of its start, ending `Stuck` past it. So a workflow driven at the times it asks for ends
//! within `F + C` of its start, whatever the failures, timeouts and server hints (a
//! `retry_at` later than the backoff is honoured, and cut by the deadline); each period the
//! runner is down (or late to act) adds its length. With no hint, no restart and a runner on
//! time, no deadline is ever reached early: a workflow ends `Active` unless a step really
//! fails, and `Compensated` unless a compensation really fails.
//!
//! **Persisting and resuming.** The [`WorkflowRecord`] is plain data (`Clone`, public fields,
//! layout documented on each type): one row per workflow plus one per step. A production runner
//! persists it after each [`Workflow::next_action`], [`Workflow::on_result`] and
//! [`Workflow::cancel`] that changed it (all three may), and **before** making the call it was
//! given (write-ahead); then a crash loses at most the result of the call in flight. (Restoring
//! an older record is not safe: it may repeat a step whose compensation already ran.)
//! [`Workflow::restore`] validates a record against its definition (step count and the
//! definition's fingerprint of step names, then the consistency of states) and resumes it: a
//! call that was in flight is re-issued under the same key with the same attempt number (a
//! restart is not the provider's failure and does not use up attempts; the phase deadline
//! bounds repeated restarts). [`Workflow::restart`] does the same in place (the simulator's
//! runner crash). Results of calls made before a restart are stale ([`Call::incarnation`]).
//! Deadlines in the record are absolute, so a service's `now` must come from a clock that
//! survives restarts (nanoseconds since the UNIX epoch, say), not from a process's `Instant`.
//!
//! **Cost.** A workflow is one allocation (its steps' progress, at most 40 bytes per step with
//! a small error type such as an error code) plus a shared `Arc` of its definition; no call
//! allocates unless cloning `E` does (a failure's cause holds a copy of the last error). Retry
//! jitter comes from one random word given at creation and kept in the record, mixed with
//! (step, attempt, kind), so a seed gives the same schedule after a restart and on every
//! platform.
//!
//! A production runner (a job per workflow on a queue, `now` from the wall clock):
//!
//! ```
//! use std::sync::Arc;
//! use tenantsim::components::retry::{Backoff, RetryPolicy};
//! use tenantsim::components::workflow::{
//!     Action, StepDefinition, StepResult, Terminal, Workflow, WorkflowDefinition,
//! };
//! use tenantsim::time::{SimDuration, SimTime};
//!
//! let retry = RetryPolicy {
//!     max_attempts: 5,
//!     backoff: Backoff::ExponentialFullJitter,
//!     base: SimDuration::from_millis(200),
//!     cap: SimDuration::from_secs(10),
//! };
//! let timeout = SimDuration::from_secs(30);
//! let onboarding = Arc::new(
//!     WorkflowDefinition::new(vec![
//!         StepDefinition::new("schema", retry, timeout).with_compensation(retry, timeout),
//!         StepDefinition::new("billing_customer", retry, timeout).with_compensation(retry, timeout),
//!         StepDefinition::new("invitations", retry, timeout),
//!     ])
//!     .expect("valid definition"),
//! );
//! // The service's clock (here a counter): nanoseconds since the UNIX epoch in production.
//! let mut clock = SimTime::from_nanos(1_700_000_000_000_000_000);
//! let (workflow_id, random_word) = (42, 0x9e37_79b9_7f4a_7c15);
//! let mut workflow: Workflow<String> =
//!     Workflow::new(onboarding.clone(), workflow_id, clock, random_word);
//! let terminal = loop {
//!     match workflow.next_action(clock) {
//!         Action::Execute(call) => {
//!             // persist(workflow.record()) here, then call the provider with `call.key`
//!             // (as its Idempotency-Key header) and a timeout ending at `call.deadline`.
//!             let step = &onboarding.step(call.step).name;
//!             let result = match (step.as_str(), call.attempt) {
//!                 ("billing_customer", 1) => StepResult::Transient {
//!                     error: "429 Too Many Requests".to_string(),
//!                     retry_at: Some(clock + SimDuration::from_secs(1)),
//!                 },
//!                 _ => StepResult::Ok,
//!             };
//!             clock = clock + SimDuration::from_millis(50);
//!             workflow.on_result(clock, call, result); // then persist again
//!         }
//!         Action::Compensate(call) => {
//!             // The same, with the provider's undo operation for `call.key.forward()`.
//!             workflow.on_result(clock, call, StepResult::Ok);
//!         }
//!         Action::WaitUntil(at) => clock = at, // reschedule the job for `at`
//!         Action::Done(terminal) => break terminal,
//!     }
//! };
//! assert_eq!(terminal, Terminal::Active);
//! let billing = &workflow.record().steps[1];
//! assert_eq!(billing.attempts, 2);
//! assert!(billing.last_error.is_some()); // the 429, kept for the dashboard
//! ```

use std::fmt;
use std::sync::Arc;

use super::retry::{Backoff, RetryPolicy, RetryState};
use crate::time::{SimDuration, SimTime};

/// The most steps a definition may have (step indices travel as `u32` in keys).
pub const MAX_STEPS: usize = 1_000;

/// How a step is undone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compensation {
    /// Retry policy of the compensation call.
    pub retry: RetryPolicy,
    /// Timeout of each compensation attempt.
    pub timeout: SimDuration,
}

/// One step of a workflow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepDefinition {
    /// Name, unique in its definition (for dashboards and the fingerprint).
    pub name: String,
    /// Retry policy of the step's call (`max_attempts` includes the first).
    pub retry: RetryPolicy,
    /// Timeout of each attempt.
    pub timeout: SimDuration,
    /// How to undo the step, if it can be undone.
    pub compensation: Option<Compensation>,
}

impl StepDefinition {
    /// A step without compensation.
    pub fn new(name: impl Into<String>, retry: RetryPolicy, timeout: SimDuration) -> Self {
        StepDefinition {
            name: name.into(),
            retry,
            timeout,
            compensation: None,
        }
    }

    /// The step with a compensation.
    pub fn with_compensation(self, retry: RetryPolicy, timeout: SimDuration) -> Self {
        StepDefinition {
            compensation: Some(Compensation { retry, timeout }),
            ..self
        }
    }
}

/// Why a definition is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DefinitionError {
    /// A workflow needs at least one step.
    NoSteps,
    /// More than [`MAX_STEPS`] steps.
    TooManySteps(usize),
    /// A step's name is empty.
    EmptyName(usize),
    /// Two steps share a name.
    DuplicateName(String),
    /// A step's (or its compensation's) `max_attempts` is 0.
    ZeroAttempts {
        /// The step's name.
        step: String,
        /// Whether it is the compensation's policy.
        compensation: bool,
    },
    /// A step's (or its compensation's) timeout is 0.
    ZeroTimeout {
        /// The step's name.
        step: String,
        /// Whether it is the compensation's timeout.
        compensation: bool,
    },
    /// A forward bound of 0.
    ZeroBound,
}

impl fmt::Display for DefinitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = |compensation: &bool| {
            if *compensation {
                "compensation"
            } else {
                "step"
            }
        };
        match self {
            DefinitionError::NoSteps => write!(f, "a workflow needs at least one step"),
            DefinitionError::TooManySteps(n) => {
                write!(f, "a workflow has at most {MAX_STEPS} steps, this one {n}")
            }
            DefinitionError::EmptyName(i) => write!(f, "step {} has an empty name", i + 1),
            DefinitionError::DuplicateName(name) => {
                write!(f, "two steps are named \"{name}\"; names must be unique")
            }
            DefinitionError::ZeroAttempts { step, compensation } => write!(
                f,
                "the {} of step \"{step}\" has max_attempts 0; it needs at least 1 (the first)",
                what(compensation)
            ),
            DefinitionError::ZeroTimeout { step, compensation } => write!(
                f,
                "the {} of step \"{step}\" has a zero timeout; it needs a positive one",
                what(compensation)
            ),
            DefinitionError::ZeroBound => write!(f, "a workflow's forward bound must be positive"),
        }
    }
}

impl std::error::Error for DefinitionError {}

/// A validated workflow definition, shared by every workflow of its kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkflowDefinition {
    steps: Vec<StepDefinition>,
    fingerprint: u64,
    forward_bound: SimDuration,
    compensation_bound: SimDuration,
}

impl WorkflowDefinition {
    /// A definition of these steps, in order; its forward bound is the sum of the steps' worst
    /// cases (module docs).
    pub fn new(steps: Vec<StepDefinition>) -> Result<WorkflowDefinition, DefinitionError> {
        if steps.is_empty() {
            return Err(DefinitionError::NoSteps);
        }
        if steps.len() > MAX_STEPS {
            return Err(DefinitionError::TooManySteps(steps.len()));
        }
        for (i, step) in steps.iter().enumerate() {
            if step.name.is_empty() {
                return Err(DefinitionError::EmptyName(i));
            }
            if steps[..i].iter().any(|s| s.name == step.name) {
                return Err(DefinitionError::DuplicateName(step.name.clone()));
            }
            let calls = std::iter::once((false, step.retry, step.timeout))
                .chain(step.compensation.map(|c| (true, c.retry, c.timeout)));
            for (compensation, retry, timeout) in calls {
                if retry.max_attempts == 0 {
                    return Err(DefinitionError::ZeroAttempts {
                        step: step.name.clone(),
                        compensation,
                    });
                }
                if timeout == SimDuration::ZERO {
                    return Err(DefinitionError::ZeroTimeout {
                        step: step.name.clone(),
                        compensation,
                    });
                }
            }
        }
        let forward_bound = steps.iter().fold(SimDuration::ZERO, |sum, s| {
            sum + call_bound(&s.retry, s.timeout)
        });
        let compensation_bound = steps
            .iter()
            .filter_map(|s| s.compensation)
            .fold(SimDuration::ZERO, |sum, c| {
                sum + call_bound(&c.retry, c.timeout)
            });
        let fingerprint = fingerprint(&steps);
        Ok(WorkflowDefinition {
            steps,
            fingerprint,
            forward_bound,
            compensation_bound,
        })
    }

    /// The definition with the forward phase bounded by `bound` instead of the sum of the
    /// steps' worst cases (a product's "onboarding within 10 minutes"). Workflows created
    /// before keep the deadline in their record.
    pub fn with_forward_bound(
        self,
        bound: SimDuration,
    ) -> Result<WorkflowDefinition, DefinitionError> {
        if bound == SimDuration::ZERO {
            return Err(DefinitionError::ZeroBound);
        }
        Ok(WorkflowDefinition {
            forward_bound: bound,
            ..self
        })
    }

    /// The steps, in order.
    pub fn steps(&self) -> &[StepDefinition] {
        &self.steps
    }

    /// Step `index` (panics if out of range, like slice indexing).
    pub fn step(&self, index: usize) -> &StepDefinition {
        &self.steps[index]
    }

    /// Number of steps.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Always false: a definition has at least one step.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// FNV-1a of the step count and names: a record restores only under a definition with the
    /// same steps in the same order (retry policies and timeouts may change).
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// `F`: the forward phase ends within this of the workflow's start.
    pub fn forward_bound(&self) -> SimDuration {
        self.forward_bound
    }

    /// `C`: compensation ends within this of its start (the sum over every compensation).
    pub fn compensation_bound(&self) -> SimDuration {
        self.compensation_bound
    }

    /// `F + C`: a workflow driven when it asks ends within this of its start, plus the time
    /// its runner was down.
    pub fn bound(&self) -> SimDuration {
        self.forward_bound + self.compensation_bound
    }

    fn call_policy(&self, step: usize, kind: CallKind) -> (RetryPolicy, SimDuration) {
        let s = &self.steps[step];
        match (kind, s.compensation) {
            (CallKind::Compensate, Some(c)) => (c.retry, c.timeout),
            _ => (s.retry, s.timeout),
        }
    }
}

/// The longest one call can take over all its attempts: `a·t + Σ_{k<a} w_k`.
fn call_bound(retry: &RetryPolicy, timeout: SimDuration) -> SimDuration {
    let attempts = u64::from(retry.max_attempts);
    (1..retry.max_attempts).fold(timeout.saturating_mul(attempts), |sum, k| {
        sum + max_backoff(retry, k)
    })
}

/// The longest backoff wait the policy can draw after the `k`-th failed attempt.
fn max_backoff(retry: &RetryPolicy, failed_attempts: u32) -> SimDuration {
    match retry.backoff {
        Backoff::None => SimDuration::ZERO,
        Backoff::Exponential | Backoff::ExponentialFullJitter => retry.ceiling(failed_attempts),
        Backoff::DecorrelatedJitter => retry.cap,
    }
}

fn fingerprint(steps: &[StepDefinition]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    let mut hash = OFFSET;
    let mut eat = |byte: u8| hash = (hash ^ u64::from(byte)).wrapping_mul(PRIME);
    for byte in (steps.len() as u64).to_le_bytes() {
        eat(byte);
    }
    for step in steps {
        step.name.bytes().for_each(&mut eat);
        eat(0xff); // not in UTF-8: separates "ab","c" from "a","bc"
    }
    hash
}

/// Whether a call performs a step or undoes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CallKind {
    /// The step's own call.
    Execute,
    /// The step's compensation.
    Compensate,
}

/// The key a provider deduplicates a call by: the same for every attempt of one step's call
/// (or of its compensation), across retries and restarts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IdempotencyKey {
    /// The workflow id.
    pub workflow: u64,
    /// The step index.
    pub step: u32,
    /// The step's call or its compensation.
    pub kind: CallKind,
}

impl IdempotencyKey {
    /// The key of the step's own call: what a compensation undoes.
    pub fn forward(self) -> IdempotencyKey {
        IdempotencyKey {
            kind: CallKind::Execute,
            ..self
        }
    }

    /// The key as one number (`workflow << 64 | step << 1 | compensation`), for compact maps.
    pub fn as_u128(self) -> u128 {
        u128::from(self.workflow) << 64
            | u128::from(self.step) << 1
            | u128::from(self.kind == CallKind::Compensate)
    }
}

/// `wf-<16 hex digits>-s<step>` for a step's call, with `-undo` for its compensation: the
/// header value a provider such as Stripe takes.
impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "wf-{:016x}-s{}", self.workflow, self.step)?;
        if self.kind == CallKind::Compensate {
            write!(f, "-undo")?;
        }
        Ok(())
    }
}

/// One call to make: give `key` to the provider and report the outcome with
/// [`Workflow::on_result`] by `deadline`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Call {
    /// The step index.
    pub step: usize,
    /// The step's call or its compensation.
    pub kind: CallKind,
    /// Attempt number of this call kind for this step, from 1 (a re-issue after a restart
    /// repeats the number).
    pub attempt: u32,
    /// The idempotency key.
    pub key: IdempotencyKey,
    /// The attempt has timed out if no result arrives by then.
    pub deadline: SimTime,
    /// The workflow's incarnation when the call was made: results of calls made before a
    /// restart are stale.
    pub incarnation: u32,
}

/// What the runner should do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Perform a step's call.
    Execute(Call),
    /// Perform a step's compensation.
    Compensate(Call),
    /// Nothing to do before this time (always later than `now`).
    WaitUntil(SimTime),
    /// The workflow has ended.
    Done(Terminal),
}

/// How a workflow ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Terminal {
    /// Every step completed.
    Active,
    /// A step failed ([`WorkflowRecord::failure`]) and every needed compensation succeeded.
    Compensated,
    /// The compensation of this step failed ([`WorkflowRecord::stuck`]); the compensations of
    /// earlier steps were not attempted.
    Stuck {
        /// The step whose compensation failed.
        step: usize,
    },
}

/// The outcome of one call, as the runner saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepResult<E> {
    /// Done (or already done under this key).
    Ok,
    /// Not done; worth retrying (a 429, a 503, a connection refused), after `retry_at` if the
    /// provider said so.
    Transient {
        /// What the provider said.
        error: E,
        /// The provider's retry hint.
        retry_at: Option<SimTime>,
    },
    /// Not done and never will be (a 4xx other than 429): fail the step now.
    Permanent(E),
    /// No answer in time: the side effect may or may not have happened. (Not reporting
    /// anything by the deadline has the same effect.)
    TimedOut,
}

/// A failed attempt, as kept in the record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepError<E> {
    /// A transient error.
    Transient(E),
    /// A permanent error.
    Permanent(E),
    /// The attempt timed out.
    TimedOut,
}

/// Why a step (or its compensation) failed for good.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailureCause<E> {
    /// The provider answered with a permanent error.
    Permanent(E),
    /// Every attempt failed; the last failure.
    RetriesExhausted(StepError<E>),
    /// The phase's deadline came first; the last failure, if there was one.
    DeadlineExceeded(Option<StepError<E>>),
    /// [`Workflow::cancel`] was called.
    Cancelled,
}

/// Which step failed, when and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure<E> {
    /// The step index.
    pub step: usize,
    /// The step's call or its compensation.
    pub kind: CallKind,
    /// When the failure was decided.
    pub at: SimTime,
    /// Why.
    pub cause: FailureCause<E>,
}

/// A step's state in the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepState {
    /// Not reached.
    Pending,
    /// The step in progress (calling, waiting for a result or for a retry).
    InProgress,
    /// Done.
    Completed,
    /// Failed; compensated only if [`StepProgress::maybe_applied`].
    Failed,
    /// Being undone.
    Compensating,
    /// Undone.
    Compensated,
    /// Its compensation failed.
    CompensationFailed,
}

/// One step's progress (one row per step when persisted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepProgress<E> {
    /// State.
    pub state: StepState,
    /// Attempts of the step's call made so far (re-issues after a restart not counted).
    pub attempts: u32,
    /// Attempts of its compensation made so far.
    pub compensation_attempts: u32,
    /// Some attempt timed out or lost its result in a restart: the side effect may exist even
    /// if the step failed, so a failed step is compensated.
    pub maybe_applied: bool,
    /// The last failed attempt of the step's call.
    pub last_error: Option<StepError<E>>,
    /// The last failed attempt of its compensation.
    pub compensation_error: Option<StepError<E>>,
    /// When the state or a counter last changed.
    pub updated_at: SimTime,
}

/// What the call at the cursor is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activity {
    /// Make the next attempt (number `attempts + 1`) at `at` or later.
    Next {
        /// Not before this time.
        at: SimTime,
    },
    /// Make attempt number `attempts` again, under the same key: its result was lost in a
    /// restart.
    Reissue,
    /// Attempt number `attempts` is in flight until `deadline`.
    Running {
        /// It has timed out if no result arrives by then.
        deadline: SimTime,
    },
}

/// The progress of the forward or the compensation phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// The phase ends (failing or stuck) at this time at the latest.
    pub deadline: SimTime,
    /// The step being performed or undone.
    pub cursor: usize,
    /// What its call is doing.
    pub activity: Activity,
    /// The call's last backoff wait (decorrelated jitter grows from it).
    pub last_delay: Option<SimDuration>,
}

/// Where a workflow is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Performing steps in order.
    Forward(Progress),
    /// Undoing steps in reverse order.
    Compensating(Progress),
    /// Ended.
    Done(Terminal),
}

/// A workflow's persistent state: plain data, one row plus one per step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkflowRecord<E> {
    /// The workflow id (unique among workflows calling the same providers).
    pub id: u64,
    /// The definition's fingerprint.
    pub fingerprint: u64,
    /// The random word retry jitter is drawn from.
    pub seed: u64,
    /// When the workflow was created.
    pub started_at: SimTime,
    /// Restarts so far.
    pub incarnation: u32,
    /// Where it is.
    pub phase: Phase,
    /// The step that failed and why (set when compensation starts).
    pub failure: Option<Failure<E>>,
    /// The compensation that failed and why (set when the workflow ends `Stuck`).
    pub stuck: Option<Failure<E>>,
    /// When it ended (set with [`Phase::Done`]): with `started_at`, the onboarding time.
    pub ended_at: Option<SimTime>,
    /// Per-step progress, in step order.
    pub steps: Vec<StepProgress<E>>,
}

/// Whether [`Workflow::on_result`] used a result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// The record changed: persist it.
    Applied,
    /// Not the call in flight (late after its deadline, from before a restart, or a duplicate):
    /// ignored.
    Stale,
}

/// Why a record cannot be restored under a definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestoreError {
    /// The record has a different number of steps.
    StepCount {
        /// Steps in the definition.
        expected: usize,
        /// Steps in the record.
        found: usize,
    },
    /// The definition's steps have other names or order.
    Fingerprint {
        /// The definition's.
        expected: u64,
        /// The record's.
        found: u64,
    },
    /// The record contradicts itself; the rule it breaks.
    Inconsistent(&'static str),
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestoreError::StepCount { expected, found } => write!(
                f,
                "the workflow record has {found} steps, its definition {expected}"
            ),
            RestoreError::Fingerprint { expected, found } => write!(
                f,
                "the workflow record was written for other steps (fingerprint {found:016x}, \
                 definition {expected:016x})"
            ),
            RestoreError::Inconsistent(rule) => {
                write!(f, "the workflow record is inconsistent: {rule}")
            }
        }
    }
}

impl std::error::Error for RestoreError {}

/// One workflow: its shared definition and its record.
#[derive(Clone, Debug)]
pub struct Workflow<E> {
    definition: Arc<WorkflowDefinition>,
    record: WorkflowRecord<E>,
}

impl<E: Clone> Workflow<E> {
    /// A workflow starting at `now`, about to call its first step. `random` seeds its retry
    /// jitter.
    pub fn new(definition: Arc<WorkflowDefinition>, id: u64, now: SimTime, random: u64) -> Self {
        let mut steps: Vec<StepProgress<E>> = (0..definition.len())
            .map(|_| StepProgress {
                state: StepState::Pending,
                attempts: 0,
                compensation_attempts: 0,
                maybe_applied: false,
                last_error: None,
                compensation_error: None,
                updated_at: now,
            })
            .collect();
        steps[0].state = StepState::InProgress;
        let record = WorkflowRecord {
            id,
            fingerprint: definition.fingerprint(),
            seed: random,
            started_at: now,
            incarnation: 0,
            phase: Phase::Forward(Progress {
                deadline: now + definition.forward_bound(),
                cursor: 0,
                activity: Activity::Next { at: now },
                last_delay: None,
            }),
            failure: None,
            stuck: None,
            ended_at: None,
            steps,
        };
        Workflow { definition, record }
    }

    /// Resumes a persisted record after a runner restart: validated against `definition`,
    /// then as after [`restart`](Self::restart).
    pub fn restore(
        definition: Arc<WorkflowDefinition>,
        record: WorkflowRecord<E>,
    ) -> Result<Self, RestoreError> {
        validate(&definition, &record)?;
        let mut workflow = Workflow { definition, record };
        workflow.restart();
        Ok(workflow)
    }

    /// The runner restarted: the result of the call in flight, if any, is lost; the call will
    /// be re-issued under the same key, and results of earlier calls are stale.
    pub fn restart(&mut self) {
        let record = &mut self.record;
        record.incarnation = record.incarnation.wrapping_add(1);
        let forward = matches!(record.phase, Phase::Forward(_));
        if let Phase::Forward(p) | Phase::Compensating(p) = &mut record.phase {
            if let Activity::Running { .. } = p.activity {
                p.activity = Activity::Reissue;
                if forward {
                    record.steps[p.cursor].maybe_applied = true;
                }
            }
        }
    }

    /// The definition.
    pub fn definition(&self) -> &Arc<WorkflowDefinition> {
        &self.definition
    }

    /// The record, to persist or inspect.
    pub fn record(&self) -> &WorkflowRecord<E> {
        &self.record
    }

    /// The record, consumed.
    pub fn into_record(self) -> WorkflowRecord<E> {
        self.record
    }

    /// How it ended, if it has.
    pub fn terminal(&self) -> Option<Terminal> {
        match self.record.phase {
            Phase::Done(terminal) => Some(terminal),
            _ => None,
        }
    }

    /// What to do at `now`. Returns a call at most once per attempt (asking again returns
    /// `WaitUntil` its deadline); records a timeout when the call in flight is past its
    /// deadline; fails the phase when its deadline has passed.
    pub fn next_action(&mut self, now: SimTime) -> Action {
        loop {
            let (kind, progress) = match self.record.phase {
                Phase::Done(terminal) => return Action::Done(terminal),
                Phase::Forward(p) => (CallKind::Execute, p),
                Phase::Compensating(p) => (CallKind::Compensate, p),
            };
            match progress.activity {
                Activity::Running { deadline } if now < deadline => {
                    return Action::WaitUntil(deadline);
                }
                Activity::Running { .. } => self.failed_attempt(now, kind, None),
                _ if now >= progress.deadline => {
                    let last = self.last_error(progress.cursor, kind).cloned();
                    self.fail(now, kind, FailureCause::DeadlineExceeded(last));
                }
                Activity::Next { at } if now < at => {
                    return Action::WaitUntil(at.min(progress.deadline));
                }
                Activity::Next { .. } | Activity::Reissue => {
                    let call = self.issue(now, kind, progress);
                    return match kind {
                        CallKind::Execute => Action::Execute(call),
                        CallKind::Compensate => Action::Compensate(call),
                    };
                }
            }
        }
    }

    /// Records the outcome of `call` at `now`. A result for anything but the call in flight,
    /// or arriving after its deadline, is [`Recorded::Stale`] and changes nothing (the next
    /// attempt, under the same key, will learn the outcome again).
    pub fn on_result(&mut self, now: SimTime, call: Call, result: StepResult<E>) -> Recorded {
        let progress = match (self.record.phase, call.kind) {
            (Phase::Forward(p), CallKind::Execute)
            | (Phase::Compensating(p), CallKind::Compensate) => p,
            _ => return Recorded::Stale,
        };
        let in_time =
            matches!(progress.activity, Activity::Running { deadline } if now <= deadline);
        if !in_time
            || call.incarnation != self.record.incarnation
            || call.step != progress.cursor
            || call.attempt != self.attempts(progress.cursor, call.kind)
        {
            return Recorded::Stale;
        }
        match result {
            StepResult::Ok => self.succeeded(now, call.kind, progress),
            StepResult::Transient { error, retry_at } => {
                self.failed_attempt(
                    now,
                    call.kind,
                    Some((StepError::Transient(error), retry_at)),
                );
            }
            StepResult::Permanent(error) => {
                *self.last_error_mut(call.step, call.kind) =
                    Some(StepError::Permanent(error.clone()));
                self.fail(now, call.kind, FailureCause::Permanent(error));
            }
            StepResult::TimedOut => self.failed_attempt(now, call.kind, None),
        }
        Recorded::Applied
    }

    /// Gives up the forward phase at `now` (the customer cancelled the sign-up): the record's
    /// failure says `Cancelled` at the step in progress, and compensation starts (including
    /// that step if its call is in flight). `false`, and nothing changed, outside the forward
    /// phase.
    pub fn cancel(&mut self, now: SimTime) -> bool {
        let Phase::Forward(p) = self.record.phase else {
            return false;
        };
        if let Activity::Running { .. } = p.activity {
            self.record.steps[p.cursor].maybe_applied = true;
        }
        self.fail(now, CallKind::Execute, FailureCause::Cancelled);
        true
    }

    fn attempts(&self, step: usize, kind: CallKind) -> u32 {
        let s = &self.record.steps[step];
        match kind {
            CallKind::Execute => s.attempts,
            CallKind::Compensate => s.compensation_attempts,
        }
    }

    fn last_error(&self, step: usize, kind: CallKind) -> Option<&StepError<E>> {
        let s = &self.record.steps[step];
        match kind {
            CallKind::Execute => s.last_error.as_ref(),
            CallKind::Compensate => s.compensation_error.as_ref(),
        }
    }

    fn last_error_mut(&mut self, step: usize, kind: CallKind) -> &mut Option<StepError<E>> {
        let s = &mut self.record.steps[step];
        match kind {
            CallKind::Execute => &mut s.last_error,
            CallKind::Compensate => &mut s.compensation_error,
        }
    }

    fn progress_mut(&mut self) -> Option<&mut Progress> {
        match &mut self.record.phase {
            Phase::Forward(p) | Phase::Compensating(p) => Some(p),
            Phase::Done(_) => None,
        }
    }

    /// Hands out the cursor's next call (or its re-issue) and marks it in flight.
    fn issue(&mut self, now: SimTime, kind: CallKind, progress: Progress) -> Call {
        let step = progress.cursor;
        let (_, timeout) = self.definition.call_policy(step, kind);
        let s = &mut self.record.steps[step];
        let attempts = match kind {
            CallKind::Execute => &mut s.attempts,
            CallKind::Compensate => &mut s.compensation_attempts,
        };
        if let Activity::Next { .. } = progress.activity {
            *attempts += 1;
        }
        let attempt = *attempts;
        s.updated_at = now;
        let deadline = (now + timeout).min(progress.deadline);
        if let Some(p) = self.progress_mut() {
            p.activity = Activity::Running { deadline };
        }
        Call {
            step,
            kind,
            attempt,
            key: IdempotencyKey {
                workflow: self.record.id,
                step: step as u32,
                kind,
            },
            deadline,
            incarnation: self.record.incarnation,
        }
    }

    /// The call in flight failed at `now`: with `error` and a hint, or timed out (`None`).
    /// Schedules the next attempt, or fails the step when out of attempts or time.
    fn failed_attempt(
        &mut self,
        now: SimTime,
        kind: CallKind,
        error: Option<(StepError<E>, Option<SimTime>)>,
    ) {
        let Some(progress) = self.progress_mut().copied() else {
            return;
        };
        let step = progress.cursor;
        let (error, hint) = match error {
            Some((error, hint)) => (error, hint),
            None => {
                if kind == CallKind::Execute {
                    self.record.steps[step].maybe_applied = true;
                }
                (StepError::TimedOut, None)
            }
        };
        self.record.steps[step].updated_at = now;
        *self.last_error_mut(step, kind) = Some(error.clone());
        let (policy, _) = self.definition.call_policy(step, kind);
        let attempts = self.attempts(step, kind);
        let mut retry = RetryState::resume(attempts, progress.last_delay);
        let word = jitter_word(self.record.seed, step, attempts, kind);
        match policy.next_attempt(&mut retry, now, hint, word) {
            None => self.fail(now, kind, FailureCause::RetriesExhausted(error)),
            Some(at) if at >= progress.deadline => {
                self.fail(now, kind, FailureCause::DeadlineExceeded(Some(error)));
            }
            Some(at) => {
                if let Some(p) = self.progress_mut() {
                    p.activity = Activity::Next { at };
                    p.last_delay = retry.last_delay();
                }
            }
        }
    }

    /// The call in flight succeeded at `now`: the cursor moves on.
    fn succeeded(&mut self, now: SimTime, kind: CallKind, progress: Progress) {
        let step = progress.cursor;
        let steps = &mut self.record.steps;
        steps[step].updated_at = now;
        match kind {
            CallKind::Execute => {
                steps[step].state = StepState::Completed;
                let next = step + 1;
                if next == steps.len() {
                    self.end(now, Terminal::Active);
                } else {
                    steps[next].state = StepState::InProgress;
                    steps[next].updated_at = now;
                    self.record.phase = Phase::Forward(Progress {
                        cursor: next,
                        activity: Activity::Next { at: now },
                        last_delay: None,
                        ..progress
                    });
                }
            }
            CallKind::Compensate => {
                steps[step].state = StepState::Compensated;
                self.compensate_from(now, step, progress.deadline);
            }
        }
    }

    /// The cursor's step (or its compensation) failed for good at `now`.
    fn fail(&mut self, now: SimTime, kind: CallKind, cause: FailureCause<E>) {
        let Some(progress) = self.progress_mut().copied() else {
            return;
        };
        let step = progress.cursor;
        self.record.steps[step].updated_at = now;
        let failure = Some(Failure {
            step,
            kind,
            at: now,
            cause,
        });
        match kind {
            CallKind::Execute => {
                self.record.steps[step].state = StepState::Failed;
                self.record.failure = failure;
                let deadline = now + self.definition.compensation_bound();
                self.compensate_from(now, step + 1, deadline);
            }
            CallKind::Compensate => {
                self.record.steps[step].state = StepState::CompensationFailed;
                self.record.stuck = failure;
                self.end(now, Terminal::Stuck { step });
            }
        }
    }

    /// Moves the compensation cursor to the newest step below `below` that needs undoing, or
    /// ends the workflow `Compensated` if none does.
    fn compensate_from(&mut self, now: SimTime, below: usize, deadline: SimTime) {
        let next = (0..below)
            .rev()
            .find(|&i| needs_compensation(&self.definition, i, &self.record.steps[i]));
        match next {
            None => self.end(now, Terminal::Compensated),
            Some(i) => {
                self.record.steps[i].state = StepState::Compensating;
                self.record.steps[i].updated_at = now;
                self.record.phase = Phase::Compensating(Progress {
                    deadline,
                    cursor: i,
                    activity: Activity::Next { at: now },
                    last_delay: None,
                });
            }
        }
    }

    fn end(&mut self, now: SimTime, terminal: Terminal) {
        self.record.phase = Phase::Done(terminal);
        self.record.ended_at = Some(now);
    }
}

/// A step to undo: it has a compensation and completed, or failed after an attempt whose
/// outcome is unknown.
fn needs_compensation<E>(
    definition: &WorkflowDefinition,
    index: usize,
    step: &StepProgress<E>,
) -> bool {
    definition.steps[index].compensation.is_some()
        && match step.state {
            StepState::Completed => true,
            StepState::Failed => step.maybe_applied,
            _ => false,
        }
}

/// Checks that a record could have been written by a workflow of this definition.
fn validate<E>(
    definition: &WorkflowDefinition,
    record: &WorkflowRecord<E>,
) -> Result<(), RestoreError> {
    use RestoreError::Inconsistent;
    let steps = &record.steps;
    if steps.len() != definition.len() {
        return Err(RestoreError::StepCount {
            expected: definition.len(),
            found: steps.len(),
        });
    }
    if record.fingerprint != definition.fingerprint() {
        return Err(RestoreError::Fingerprint {
            expected: definition.fingerprint(),
            found: record.fingerprint,
        });
    }
    let count = |state: StepState| steps.iter().filter(|s| s.state == state).count();
    let needing = (0..steps.len()).filter(|&i| needs_compensation(definition, i, &steps[i]));
    let check = |ok: bool, rule: &'static str| if ok { Ok(()) } else { Err(Inconsistent(rule)) };
    check(
        record.ended_at.is_some() == matches!(record.phase, Phase::Done(_)),
        "a workflow has an end time exactly when it has ended",
    )?;
    match record.phase {
        Phase::Forward(p) => {
            check(
                p.cursor < steps.len(),
                "the forward cursor is past the last step",
            )?;
            check(
                steps[..p.cursor]
                    .iter()
                    .all(|s| s.state == StepState::Completed),
                "a step before the forward cursor is not completed",
            )?;
            check(
                steps[p.cursor].state == StepState::InProgress,
                "the step at the forward cursor is not in progress",
            )?;
            check(
                steps[p.cursor + 1..]
                    .iter()
                    .all(|s| s.state == StepState::Pending && s.attempts == 0),
                "a step after the forward cursor has started",
            )?;
            check(
                record.failure.is_none() && record.stuck.is_none(),
                "a workflow in its forward phase has a failure",
            )?;
            check(
                matches!(p.activity, Activity::Next { .. }) || steps[p.cursor].attempts > 0,
                "a call is in flight for a step with no attempt",
            )?;
        }
        Phase::Compensating(p) => {
            check(
                p.cursor < steps.len(),
                "the compensation cursor is past the last step",
            )?;
            check(
                steps[p.cursor].state == StepState::Compensating
                    && definition.steps[p.cursor].compensation.is_some(),
                "the step at the compensation cursor is not being compensated",
            )?;
            check(
                count(StepState::Compensating) == 1
                    && count(StepState::InProgress) == 0
                    && count(StepState::CompensationFailed) == 0,
                "another step is in progress while compensating",
            )?;
            check(
                needing.clone().all(|i| i < p.cursor),
                "a step after the compensation cursor still needs compensating",
            )?;
            check(
                record.failure.is_some() && record.stuck.is_none(),
                "a compensating workflow does not say which step failed",
            )?;
            check(
                matches!(p.activity, Activity::Next { .. })
                    || steps[p.cursor].compensation_attempts > 0,
                "a compensation is in flight with no attempt",
            )?;
        }
        Phase::Done(Terminal::Active) => {
            check(
                count(StepState::Completed) == steps.len(),
                "an active workflow has a step not completed",
            )?;
            check(
                record.failure.is_none() && record.stuck.is_none(),
                "an active workflow has a failure",
            )?;
        }
        Phase::Done(Terminal::Compensated) => {
            check(
                needing.clone().next().is_none(),
                "a compensated workflow has a step still to undo",
            )?;
            check(
                count(StepState::InProgress)
                    + count(StepState::Compensating)
                    + count(StepState::CompensationFailed)
                    == 0,
                "a compensated workflow has a step in progress",
            )?;
            check(
                record.failure.is_some() && record.stuck.is_none(),
                "a compensated workflow does not say which step failed",
            )?;
        }
        Phase::Done(Terminal::Stuck { step }) => {
            check(
                step < steps.len() && steps[step].state == StepState::CompensationFailed,
                "a stuck workflow's step is not the one whose compensation failed",
            )?;
            check(
                record.failure.is_some() && record.stuck.as_ref().is_some_and(|s| s.step == step),
                "a stuck workflow does not say which step failed and which compensation",
            )?;
        }
    }
    Ok(())
}

/// The jitter word of one retry: the workflow's seed mixed with (step, attempt, kind)
/// (SplitMix64's finaliser), so retries of different steps and workflows are independent and
/// a restart draws the same waits.
fn jitter_word(seed: u64, step: usize, attempt: u32, kind: CallKind) -> u64 {
    let which =
        (step as u64) << 33 | u64::from(attempt) << 1 | u64::from(kind == CallKind::Compensate);
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15_u64.wrapping_mul(which.wrapping_add(1)));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    const MS: u64 = 1_000_000;

    fn ms(n: u64) -> SimDuration {
        SimDuration::from_millis(n)
    }

    fn at_ms(n: u64) -> SimTime {
        SimTime::from_nanos(n * MS)
    }

    fn policy(max_attempts: u32, backoff: Backoff, base: u64, cap: u64) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            backoff,
            base: ms(base),
            cap: ms(cap),
        }
    }

    /// `n` steps named s0.., 3 attempts, exponential 100ms..400ms, timeout 1s, all compensable
    /// (2 attempts, no backoff, timeout 500ms).
    fn definition(n: usize) -> Arc<WorkflowDefinition> {
        let retry = policy(3, Backoff::Exponential, 100, 400);
        let undo = policy(2, Backoff::None, 0, 0);
        Arc::new(
            WorkflowDefinition::new(
                (0..n)
                    .map(|i| {
                        StepDefinition::new(format!("s{i}"), retry, ms(1_000))
                            .with_compensation(undo, ms(500))
                    })
                    .collect(),
            )
            .unwrap(),
        )
    }

    fn call(action: Action) -> Call {
        match action {
            Action::Execute(c) | Action::Compensate(c) => c,
            other => panic!("expected a call, got {other:?}"),
        }
    }

    fn transient(error: u32) -> StepResult<u32> {
        StepResult::Transient {
            error,
            retry_at: None,
        }
    }

    #[test]
    fn happy_path_calls_each_step_once_in_order() {
        let def = definition(3);
        let mut wf: Workflow<u32> = Workflow::new(def, 7, SimTime::ZERO, 1);
        for step in 0..3 {
            let action = wf.next_action(at_ms(step));
            let c = call(action);
            assert!(matches!(action, Action::Execute(_)));
            assert_eq!((c.step, c.attempt), (step as usize, 1));
            assert_eq!(c.deadline, at_ms(step) + ms(1_000));
            assert_eq!(wf.next_action(at_ms(step)), Action::WaitUntil(c.deadline));
            assert_eq!(
                wf.on_result(at_ms(step), c, StepResult::Ok),
                Recorded::Applied
            );
        }
        assert_eq!(wf.next_action(at_ms(3)), Action::Done(Terminal::Active));
        assert!(
            wf.record()
                .steps
                .iter()
                .all(|s| s.state == StepState::Completed)
        );
        assert_eq!(wf.record().failure, None);
        assert_eq!(
            wf.record().ended_at,
            Some(at_ms(2)),
            "when the last Ok came"
        );
    }

    /// The per-step row stays small (the model keeps thousands of workflows), as the module
    /// docs say.
    #[test]
    fn a_step_row_is_at_most_40_bytes_with_a_small_error_type() {
        assert!(size_of::<StepProgress<u32>>() <= 40);
        assert!(size_of::<Action>() <= 64);
    }

    #[test]
    fn permanent_failure_compensates_completed_steps_newest_first() {
        let mut wf: Workflow<u32> = Workflow::new(definition(4), 7, SimTime::ZERO, 1);
        for _ in 0..2 {
            let c = call(wf.next_action(SimTime::ZERO));
            wf.on_result(SimTime::ZERO, c, StepResult::Ok);
        }
        let c = call(wf.next_action(SimTime::ZERO));
        assert_eq!(c.step, 2);
        wf.on_result(at_ms(5), c, StepResult::Permanent(402));
        let mut undone = Vec::new();
        while let Action::Compensate(c) = wf.next_action(at_ms(5)) {
            assert_eq!(c.key.kind, CallKind::Compensate);
            assert_eq!(
                c.key.forward(),
                IdempotencyKey {
                    workflow: 7,
                    step: c.step as u32,
                    kind: CallKind::Execute
                }
            );
            undone.push(c.step);
            wf.on_result(at_ms(5), c, StepResult::Ok);
        }
        assert_eq!(
            undone,
            vec![1, 0],
            "step 2 answered permanently: nothing to undo"
        );
        assert_eq!(wf.terminal(), Some(Terminal::Compensated));
        let failure = wf.record().failure.clone().unwrap();
        assert_eq!((failure.step, failure.at), (2, at_ms(5)));
        assert_eq!(failure.cause, FailureCause::Permanent(402));
        let states: Vec<_> = wf.record().steps.iter().map(|s| s.state).collect();
        use StepState::*;
        assert_eq!(states, [Compensated, Compensated, Failed, Pending]);
    }

    #[test]
    fn a_step_whose_last_attempt_timed_out_is_compensated_too() {
        let mut wf: Workflow<u32> = Workflow::new(definition(2), 1, SimTime::ZERO, 1);
        let c = call(wf.next_action(SimTime::ZERO));
        wf.on_result(SimTime::ZERO, c, StepResult::Ok);
        // Step 1: three attempts, none answered; the workflow notices each deadline itself.
        let mut now = SimTime::ZERO;
        let mut waits = Vec::new();
        loop {
            match wf.next_action(now) {
                Action::Execute(c) => now = c.deadline,
                Action::WaitUntil(t) => {
                    waits.push(t - now);
                    now = t;
                }
                Action::Compensate(c) => {
                    assert_eq!(c.step, 1, "the uncertain step first");
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            waits,
            [ms(100), ms(200)],
            "exponential backoff between attempts"
        );
        let step = &wf.record().steps[1];
        assert!(step.maybe_applied);
        assert_eq!(
            (step.attempts, step.last_error.clone()),
            (3, Some(StepError::TimedOut))
        );
        assert_eq!(
            wf.record().failure.clone().map(|f| f.cause),
            Some(FailureCause::RetriesExhausted(StepError::TimedOut))
        );
    }

    #[test]
    fn transient_errors_retry_after_backoff_and_hint_under_the_same_key() {
        let mut wf: Workflow<u32> = Workflow::new(definition(1), 9, SimTime::ZERO, 1);
        let first = call(wf.next_action(SimTime::ZERO));
        wf.on_result(at_ms(10), first, transient(503));
        assert_eq!(wf.next_action(at_ms(10)), Action::WaitUntil(at_ms(110)));
        let second = call(wf.next_action(at_ms(110)));
        assert_eq!((second.attempt, second.key), (2, first.key));
        let hint = at_ms(900);
        wf.on_result(
            at_ms(120),
            second,
            StepResult::Transient {
                error: 429,
                retry_at: Some(hint),
            },
        );
        assert_eq!(
            wf.next_action(at_ms(120)),
            Action::WaitUntil(hint),
            "the hint is later than 200ms"
        );
        let third = call(wf.next_action(hint));
        assert_eq!((third.attempt, third.key), (3, first.key));
        wf.on_result(hint, third, StepResult::Ok);
        assert_eq!(wf.next_action(hint), Action::Done(Terminal::Active));
        assert_eq!(
            wf.record().steps[0].last_error,
            Some(StepError::Transient(429))
        );
        assert_eq!(first.key.to_string(), "wf-0000000000000009-s0");
    }

    #[test]
    fn restart_reissues_the_call_in_flight_and_makes_old_results_stale() {
        let def = definition(2);
        let mut wf: Workflow<u32> = Workflow::new(def.clone(), 3, SimTime::ZERO, 1);
        let before = call(wf.next_action(SimTime::ZERO));
        let persisted = wf.record().clone();
        let mut wf = Workflow::restore(def, persisted).unwrap();
        assert!(wf.record().steps[0].maybe_applied);
        let again = call(wf.next_action(at_ms(50)));
        assert_eq!((again.step, again.attempt, again.key), (0, 1, before.key));
        assert_eq!(again.incarnation, before.incarnation + 1);
        assert_eq!(
            wf.record().steps[0].attempts,
            1,
            "a restart is not an attempt"
        );
        assert_eq!(
            wf.on_result(at_ms(60), before, StepResult::Ok),
            Recorded::Stale
        );
        assert_eq!(
            wf.on_result(at_ms(60), again, StepResult::Ok),
            Recorded::Applied
        );
        assert_eq!(
            wf.on_result(at_ms(60), again, StepResult::Ok),
            Recorded::Stale,
            "a duplicate"
        );
        assert_eq!(call(wf.next_action(at_ms(60))).step, 1);
    }

    #[test]
    fn a_result_after_the_deadline_is_stale_and_the_attempt_timed_out() {
        let mut wf: Workflow<u32> = Workflow::new(definition(1), 3, SimTime::ZERO, 1);
        let c = call(wf.next_action(SimTime::ZERO));
        let late = c.deadline + SimDuration::from_nanos(1);
        assert_eq!(wf.on_result(late, c, StepResult::Ok), Recorded::Stale);
        assert_eq!(wf.next_action(late), Action::WaitUntil(late + ms(100)));
        assert_eq!(wf.record().steps[0].last_error, Some(StepError::TimedOut));
    }

    #[test]
    fn a_retry_hinted_past_the_bound_fails_at_once() {
        let def = Arc::new(
            WorkflowDefinition::new(vec![
                StepDefinition::new("dns", policy(5, Backoff::None, 0, 0), ms(100))
                    .with_compensation(RetryPolicy::NEVER, ms(100)),
                StepDefinition::new("cert", policy(5, Backoff::None, 0, 0), ms(100)),
            ])
            .unwrap()
            .with_forward_bound(ms(1_000))
            .unwrap(),
        );
        let mut wf: Workflow<u32> = Workflow::new(def, 3, SimTime::ZERO, 1);
        let c = call(wf.next_action(SimTime::ZERO));
        wf.on_result(SimTime::ZERO, c, StepResult::Ok);
        let c = call(wf.next_action(SimTime::ZERO));
        let hint = Some(at_ms(1_000));
        wf.on_result(
            at_ms(1),
            c,
            StepResult::Transient {
                error: 429,
                retry_at: hint,
            },
        );
        let failure = wf.record().failure.clone().unwrap();
        assert_eq!((failure.step, failure.at), (1, at_ms(1)));
        assert_eq!(
            failure.cause,
            FailureCause::DeadlineExceeded(Some(StepError::Transient(429)))
        );
        assert_eq!(call(wf.next_action(at_ms(1))).step, 0, "dns is undone");
    }

    #[test]
    fn a_failed_compensation_leaves_the_workflow_stuck_naming_it() {
        let mut wf: Workflow<u32> = Workflow::new(definition(3), 3, SimTime::ZERO, 1);
        for _ in 0..2 {
            let c = call(wf.next_action(SimTime::ZERO));
            wf.on_result(SimTime::ZERO, c, StepResult::Ok);
        }
        let c = call(wf.next_action(SimTime::ZERO));
        wf.on_result(SimTime::ZERO, c, StepResult::Permanent(1));
        let c = call(wf.next_action(SimTime::ZERO));
        assert_eq!((c.step, c.kind), (1, CallKind::Compensate));
        wf.on_result(SimTime::ZERO, c, transient(2));
        let c = call(wf.next_action(SimTime::ZERO));
        assert_eq!(c.attempt, 2);
        wf.on_result(SimTime::ZERO, c, transient(3));
        assert_eq!(
            wf.next_action(SimTime::ZERO),
            Action::Done(Terminal::Stuck { step: 1 })
        );
        let stuck = wf.record().stuck.clone().unwrap();
        assert_eq!((stuck.step, stuck.kind), (1, CallKind::Compensate));
        assert_eq!(
            stuck.cause,
            FailureCause::RetriesExhausted(StepError::Transient(3))
        );
        assert_eq!(
            wf.record().steps[0].state,
            StepState::Completed,
            "not attempted"
        );
        assert_eq!(wf.record().failure.clone().unwrap().step, 2);
    }

    #[test]
    fn cancel_compensates_the_step_in_flight() {
        let mut wf: Workflow<u32> = Workflow::new(definition(2), 3, SimTime::ZERO, 1);
        let c = call(wf.next_action(SimTime::ZERO));
        wf.on_result(SimTime::ZERO, c, StepResult::Ok);
        let in_flight = call(wf.next_action(SimTime::ZERO));
        assert!(wf.cancel(at_ms(1)));
        assert!(
            !wf.cancel(at_ms(1)),
            "only the forward phase can be cancelled"
        );
        assert_eq!(
            wf.on_result(at_ms(2), in_flight, StepResult::Ok),
            Recorded::Stale
        );
        let undo: Vec<usize> = (0..2)
            .map(|_| {
                let c = call(wf.next_action(at_ms(2)));
                wf.on_result(at_ms(2), c, StepResult::Ok);
                c.step
            })
            .collect();
        assert_eq!(undo, [1, 0]);
        assert_eq!(
            wf.next_action(at_ms(2)),
            Action::Done(Terminal::Compensated)
        );
        assert_eq!(
            wf.record().failure.clone().unwrap().cause,
            FailureCause::Cancelled
        );
    }

    #[test]
    fn definitions_are_validated() {
        let ok = |name: &str| StepDefinition::new(name, RetryPolicy::NEVER, ms(1));
        assert_eq!(
            WorkflowDefinition::new(vec![]),
            Err(DefinitionError::NoSteps)
        );
        assert_eq!(
            WorkflowDefinition::new(vec![ok("a"), ok("a")]),
            Err(DefinitionError::DuplicateName("a".into()))
        );
        assert_eq!(
            WorkflowDefinition::new(vec![ok("")]),
            Err(DefinitionError::EmptyName(0))
        );
        let zero = RetryPolicy {
            max_attempts: 0,
            ..RetryPolicy::NEVER
        };
        assert_eq!(
            WorkflowDefinition::new(vec![ok("a").with_compensation(zero, ms(1))]),
            Err(DefinitionError::ZeroAttempts {
                step: "a".into(),
                compensation: true
            })
        );
        assert_eq!(
            WorkflowDefinition::new(vec![StepDefinition::new(
                "a",
                RetryPolicy::NEVER,
                SimDuration::ZERO
            )]),
            Err(DefinitionError::ZeroTimeout {
                step: "a".into(),
                compensation: false
            })
        );
        let many = (0..=MAX_STEPS).map(|i| ok(&i.to_string())).collect();
        assert_eq!(
            WorkflowDefinition::new(many),
            Err(DefinitionError::TooManySteps(MAX_STEPS + 1))
        );
        let def = WorkflowDefinition::new(vec![ok("a")]).unwrap();
        assert_eq!(
            def.with_forward_bound(SimDuration::ZERO),
            Err(DefinitionError::ZeroBound)
        );
        assert!(
            DefinitionError::ZeroAttempts {
                step: "dns".into(),
                compensation: false
            }
            .to_string()
            .contains("\"dns\"")
        );
    }

    #[test]
    fn bound_is_the_sum_of_each_calls_worst_case() {
        let def = WorkflowDefinition::new(vec![
            // 3·1s + 100ms + 200ms
            StepDefinition::new("a", policy(3, Backoff::Exponential, 100, 400), ms(1_000))
                .with_compensation(policy(2, Backoff::DecorrelatedJitter, 50, 70), ms(10)),
            // 4·2s + 3·300ms (full jitter reaches the cap after the first retry)
            StepDefinition::new(
                "b",
                policy(4, Backoff::ExponentialFullJitter, 200, 300),
                ms(2_000),
            ),
            // 2·5ms, no backoff
            StepDefinition::new("c", policy(2, Backoff::None, 100, 100), ms(5))
                .with_compensation(RetryPolicy::NEVER, ms(30)),
        ])
        .unwrap();
        assert_eq!(
            def.forward_bound(),
            ms(3_000 + 100 + 200 + 8_000 + 800 + 10)
        );
        assert_eq!(def.compensation_bound(), ms(2 * 10 + 70 + 30));
        assert_eq!(def.bound(), def.forward_bound() + def.compensation_bound());
        let capped = def.with_forward_bound(ms(60_000)).unwrap();
        assert_eq!(capped.forward_bound(), ms(60_000));
    }

    /// The bound is tight: when every attempt but each call's last one times out (and the last
    /// step's last one too), and every backoff is at its ceiling, the workflow ends exactly at
    /// `F + C`.
    #[test]
    fn the_worst_case_ends_exactly_at_the_bound() {
        let def = Arc::new(
            WorkflowDefinition::new(
                (0..3)
                    .map(|i| {
                        StepDefinition::new(
                            format!("s{i}"),
                            policy(3, Backoff::Exponential, 100, 150),
                            ms(1_000),
                        )
                        .with_compensation(policy(2, Backoff::DecorrelatedJitter, 40, 40), ms(300))
                    })
                    .collect(),
            )
            .unwrap(),
        );
        let start = at_ms(12_345);
        let mut wf: Workflow<u32> = Workflow::new(def.clone(), 1, start, 99);
        let mut now = start;
        let terminal = loop {
            match wf.next_action(now) {
                Action::Execute(c) | Action::Compensate(c) => {
                    let max = def.call_policy(c.step, c.kind).0.max_attempts;
                    let last_step = c.kind == CallKind::Execute && c.step == 2;
                    now = c.deadline;
                    if c.attempt == max && !last_step {
                        wf.on_result(now, c, StepResult::Ok); // at the deadline exactly
                    }
                }
                Action::WaitUntil(t) => now = t,
                Action::Done(t) => break t,
            }
        };
        assert_eq!(terminal, Terminal::Compensated);
        assert_eq!(def.forward_bound(), ms(3 * (3_000 + 100 + 150)));
        assert_eq!(def.compensation_bound(), ms(3 * (600 + 40)));
        assert_eq!(now, start + def.bound());
    }

    #[test]
    fn restore_checks_the_record_against_the_definition() {
        let def = definition(3);
        let mut wf: Workflow<u32> = Workflow::new(def.clone(), 3, SimTime::ZERO, 1);
        let c = call(wf.next_action(SimTime::ZERO));
        wf.on_result(SimTime::ZERO, c, StepResult::Ok);
        let record = wf.record().clone();
        assert!(Workflow::restore(def.clone(), record.clone()).is_ok());
        assert_eq!(
            Workflow::restore(definition(2), record.clone()).err(),
            Some(RestoreError::StepCount {
                expected: 2,
                found: 3
            })
        );
        let renamed = Arc::new(
            WorkflowDefinition::new(
                def.steps()
                    .iter()
                    .map(|s| StepDefinition {
                        name: format!("x{}", s.name),
                        ..s.clone()
                    })
                    .collect(),
            )
            .unwrap(),
        );
        assert!(matches!(
            Workflow::restore(renamed, record.clone()),
            Err(RestoreError::Fingerprint { .. })
        ));
        let mut skipped = record.clone();
        skipped.steps[0].state = StepState::Pending;
        assert_eq!(
            Workflow::restore(def.clone(), skipped).err(),
            Some(RestoreError::Inconsistent(
                "a step before the forward cursor is not completed"
            ))
        );
        let mut active = record;
        active.phase = Phase::Done(Terminal::Active);
        active.ended_at = Some(SimTime::ZERO);
        let error = Workflow::restore(def, active).err().unwrap();
        assert!(
            error
                .to_string()
                .contains("an active workflow has a step not completed")
        );
    }

    #[test]
    fn fingerprints_separate_names_and_order() {
        let steps = |names: &[&str]| -> Vec<StepDefinition> {
            names
                .iter()
                .map(|n| StepDefinition::new(*n, RetryPolicy::NEVER, ms(1)))
                .collect()
        };
        let fp = |names: &[&str]| WorkflowDefinition::new(steps(names)).unwrap().fingerprint();
        assert_ne!(fp(&["ab", "c"]), fp(&["a", "bc"]));
        assert_ne!(fp(&["a", "b"]), fp(&["b", "a"]));
        assert_eq!(fp(&["a", "b"]), fp(&["a", "b"]));
    }

    // ---- Property tests: a runner against a provider that deduplicates by key ----

    /// What the provider does with one call.
    #[derive(Clone, Copy, Debug)]
    enum Outcome {
        /// Applies it and answers Ok after `latency` (per mille of the timeout).
        Ok(u16),
        /// Applies it and answers Ok just after the deadline.
        OkLate,
        /// Applies it and never answers.
        AppliedSilently,
        /// Does not apply it and answers a transient error, with a retry hint (ms after the
        /// answer) or not.
        Transient(u16, Option<u16>),
        /// Does not apply it and answers a permanent error.
        Permanent(u16),
        /// Does not apply it and never answers.
        Silent,
        /// Does not apply it; the runner's own timer reports a timeout.
        TimedOut(u16),
    }

    fn arb_outcome() -> impl Strategy<Value = Outcome> {
        let latency = 0u16..=1_000;
        prop_oneof![
            6 => latency.clone().prop_map(Outcome::Ok),
            1 => Just(Outcome::OkLate),
            1 => Just(Outcome::AppliedSilently),
            3 => (latency.clone(), prop::option::weighted(0.3, 0u16..=200)).prop_map(|(l, h)| Outcome::Transient(l, h)),
            1 => latency.clone().prop_map(Outcome::Permanent),
            1 => Just(Outcome::Silent),
            1 => latency.prop_map(Outcome::TimedOut),
        ]
    }

    /// A runner crash: where, how long the runner stays down (ms), and whether the workflow is
    /// restored from a copy of its persisted record or restarted in place.
    #[derive(Clone, Copy, Debug)]
    struct Crash {
        after_call: bool,
        down_ms: u16,
        from_copy: bool,
    }

    fn arb_crash() -> impl Strategy<Value = Option<Crash>> {
        prop::option::weighted(
            0.1,
            (any::<bool>(), 0u16..=300, any::<bool>()).prop_map(
                |(after_call, down_ms, from_copy)| Crash {
                    after_call,
                    down_ms,
                    from_copy,
                },
            ),
        )
    }

    fn arb_policy() -> impl Strategy<Value = RetryPolicy> {
        let backoff = prop_oneof![
            Just(Backoff::None),
            Just(Backoff::Exponential),
            Just(Backoff::ExponentialFullJitter),
            Just(Backoff::DecorrelatedJitter),
        ];
        (1u32..=4, backoff, 0u64..=30, 0u64..=60)
            .prop_map(|(a, b, base, cap)| policy(a, b, base, cap))
    }

    fn arb_definition() -> impl Strategy<Value = Arc<WorkflowDefinition>> {
        let step = (
            arb_policy(),
            1u64..=50,
            prop::option::weighted(0.75, (arb_policy(), 1u64..=50)),
        );
        prop::collection::vec(step, 1..=5).prop_map(|steps| {
            let steps = steps
                .into_iter()
                .enumerate()
                .map(|(i, (retry, timeout, undo))| {
                    let s = StepDefinition::new(format!("step{i}"), retry, ms(timeout));
                    match undo {
                        Some((retry, timeout)) => s.with_compensation(retry, ms(timeout)),
                        None => s,
                    }
                })
                .collect();
            Arc::new(WorkflowDefinition::new(steps).unwrap())
        })
    }

    #[derive(Clone, Debug)]
    struct Case {
        definition: Arc<WorkflowDefinition>,
        outcomes: Vec<Outcome>,
        crashes: Vec<Option<Crash>>,
        lags: Vec<Option<u16>>,
        cancel_at: Option<u16>,
        seed: u64,
    }

    fn arb_case() -> impl Strategy<Value = Case> {
        (
            arb_definition(),
            prop::collection::vec(arb_outcome(), 0..40),
            prop::collection::vec(arb_crash(), 0..60),
            prop::collection::vec(prop::option::weighted(0.1, 1u16..=100), 0..60),
            prop::option::weighted(0.1, 0u16..40),
            any::<u64>(),
        )
            .prop_map(
                |(definition, outcomes, crashes, lags, cancel_at, seed)| Case {
                    definition,
                    outcomes,
                    crashes,
                    lags,
                    cancel_at,
                    seed,
                },
            )
    }

    /// What the test saw, independently of the workflow's record.
    #[derive(Debug, Default)]
    struct Seen {
        /// Times each step's side effect was applied (counted per step, whatever the key).
        created: Vec<u32>,
        /// Times each step's side effect was undone.
        removed: Vec<u32>,
        /// Whether each step's resource exists at the provider.
        live: Vec<bool>,
        /// Steps in the order the provider undid them.
        removal_order: Vec<usize>,
        /// Steps in the order the workflow recorded them done.
        completion_order: Vec<usize>,
        /// Steps in the order their compensation was first issued.
        compensation_order: Vec<usize>,
        /// Calls whose key was not the step's (workflow id, step, kind).
        wrong_keys: Vec<String>,
        /// Steps compensated though the workflow knew they never applied.
        needless_compensations: Vec<usize>,
        /// Breaches of the runner protocol: calls out of order, attempt numbers skipped,
        /// deadlines out of range, a stale result used or a fresh one ignored, a `WaitUntil`
        /// not in the future, no end.
        protocol: Vec<String>,
        /// Per (step, kind): the attempt numbers handed out, the last failed attempt as the
        /// workflow must have recorded it, whether an Ok was recorded, and whether a call's
        /// outcome stayed unknown to the workflow.
        attempts: Vec<[u32; 2]>,
        last_error: Vec<[Option<StepError<u32>>; 2]>,
        ok: Vec<[bool; 2]>,
        unknown: Vec<bool>,
        /// Restore refused a record the runner persisted.
        bad_records: Vec<RestoreError>,
        /// Time the runner was down (crashes) or late to wake (lags), in the forward phase and
        /// after it.
        away: [SimDuration; 2],
        /// A crash, a lag or a retry hint happened (only these can make a deadline bite).
        disturbed: bool,
        cancelled: bool,
        terminal: Option<Terminal>,
        start: SimTime,
        end: SimTime,
        record: Option<WorkflowRecord<u32>>,
    }

    fn kind_index(kind: CallKind) -> usize {
        usize::from(kind == CallKind::Compensate)
    }

    /// Runs one workflow to its end against the provider, crashing and cancelling as the case
    /// says, and records what happened.
    fn simulate(case: &Case) -> Seen {
        let def = &case.definition;
        let n = def.len();
        let mut seen = Seen {
            created: vec![0; n],
            removed: vec![0; n],
            live: vec![false; n],
            attempts: vec![[0; 2]; n],
            last_error: vec![[None, None]; n],
            ok: vec![[false; 2]; n],
            unknown: vec![false; n],
            start: at_ms(1_000),
            ..Seen::default()
        };
        let id = 0xfeed;
        let mut now = seen.start;
        let mut wf: Workflow<u32> = Workflow::new(def.clone(), id, now, case.seed);
        let mut provider_done: BTreeSet<IdempotencyKey> = BTreeSet::new();
        let mut outcomes = case.outcomes.iter().copied();
        let mut crashes = case.crashes.iter().copied();
        let mut lags = case.lags.iter().copied();
        // Answers on their way: (time, sequence, call, result).
        let mut answers: Vec<(SimTime, u64, Call, StepResult<u32>)> = Vec::new();
        let mut sequence = 0u64;
        let mut open: Option<Call> = None;
        let mut error_code = 0u32;
        for iteration in 0u32.. {
            if iteration > 100_000 {
                seen.protocol.push("no end after 100,000 actions".into());
                break;
            }
            if case.cancel_at == Some(iteration as u16) && wf.cancel(now) {
                seen.cancelled = true;
                if let Some(c) = open.take() {
                    seen.unknown[c.step] |= c.kind == CallKind::Execute;
                }
            }
            // The workflow notices the deadline of the call in flight itself.
            if let Some(c) = open {
                if now >= c.deadline {
                    seen.last_error[c.step][kind_index(c.kind)] = Some(StepError::TimedOut);
                    seen.unknown[c.step] |= c.kind == CallKind::Execute;
                    open = None;
                }
            }
            let action = wf.next_action(now);
            let persisted = wf.record().clone();
            if let Err(e) = Workflow::restore(def.clone(), persisted.clone()) {
                seen.bad_records.push(e);
            }
            let crash = crashes.next().flatten();
            let crash_now = |wf: &mut Workflow<u32>,
                             now: &mut SimTime,
                             open: &mut Option<Call>,
                             seen: &mut Seen,
                             c: Crash| {
                if let Some(call) = open.take() {
                    seen.unknown[call.step] |= call.kind == CallKind::Execute;
                }
                seen.disturbed = true;
                let phase = usize::from(!matches!(wf.record().phase, Phase::Forward(_)));
                seen.away[phase] = seen.away[phase] + ms(u64::from(c.down_ms));
                *now += ms(u64::from(c.down_ms));
                if c.from_copy {
                    *wf = Workflow::restore(def.clone(), persisted.clone())
                        .expect("a persisted record restores");
                } else {
                    wf.restart();
                }
            };
            match action {
                Action::Done(terminal) => {
                    seen.terminal = Some(terminal);
                    break;
                }
                Action::WaitUntil(t) => {
                    if t <= now {
                        seen.protocol.push(format!("WaitUntil({t:?}) at {now:?}"));
                    }
                    if let Some(c) = crash {
                        crash_now(&mut wf, &mut now, &mut open, &mut seen, c);
                        continue;
                    }
                    // The runner wakes at `t`, or late (a slow job queue): then it handles the
                    // results that came in meanwhile when it wakes, maybe past their deadline.
                    let lag = ms(u64::from(lags.next().flatten().unwrap_or(0)));
                    let wake = t + lag;
                    if lag > SimDuration::ZERO {
                        let phase = usize::from(!matches!(wf.record().phase, Phase::Forward(_)));
                        seen.away[phase] = seen.away[phase] + lag;
                        seen.disturbed = true;
                    }
                    let next = answers
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, a)| (a.0, a.1))
                        .map(|(i, a)| (i, a.0));
                    match next {
                        Some((i, at)) if at <= wake => {
                            let (at, _, call, result) = answers.swap_remove(i);
                            now = if lag > SimDuration::ZERO {
                                wake
                            } else {
                                now.max(at)
                            };
                            let expect_applied = open == Some(call) && now <= call.deadline;
                            let recorded = wf.on_result(now, call, result.clone());
                            if recorded
                                != if expect_applied {
                                    Recorded::Applied
                                } else {
                                    Recorded::Stale
                                }
                            {
                                seen.protocol.push(format!(
                                    "{call:?} answered {result:?} at {now:?}: {recorded:?}"
                                ));
                            }
                            if recorded == Recorded::Applied {
                                open = None;
                                let k = kind_index(call.kind);
                                match result {
                                    StepResult::Ok => {
                                        seen.ok[call.step][k] = true;
                                        if call.kind == CallKind::Execute {
                                            seen.completion_order.push(call.step);
                                        }
                                    }
                                    StepResult::Transient { error, retry_at } => {
                                        seen.disturbed |= retry_at.is_some();
                                        seen.last_error[call.step][k] =
                                            Some(StepError::Transient(error));
                                    }
                                    StepResult::Permanent(e) => {
                                        seen.last_error[call.step][k] =
                                            Some(StepError::Permanent(e));
                                    }
                                    StepResult::TimedOut => {
                                        seen.last_error[call.step][k] = Some(StepError::TimedOut);
                                        seen.unknown[call.step] |= call.kind == CallKind::Execute;
                                    }
                                }
                            }
                        }
                        _ => now = wake,
                    }
                }
                Action::Execute(call) | Action::Compensate(call) => {
                    let (step, kind) = (call.step, call.kind);
                    let k = kind_index(kind);
                    let expected_key = IdempotencyKey {
                        workflow: id,
                        step: step as u32,
                        kind,
                    };
                    if call.key != expected_key {
                        seen.wrong_keys
                            .push(format!("{call:?} should carry {expected_key:?}"));
                    }
                    let previous = seen.attempts[step][k];
                    if call.attempt != previous + 1 && call.attempt != previous {
                        seen.protocol
                            .push(format!("{call:?} after attempt {previous}"));
                    }
                    seen.attempts[step][k] = seen.attempts[step][k].max(call.attempt);
                    if call.deadline <= now || call.deadline > now + def.call_policy(step, kind).1 {
                        seen.protocol
                            .push(format!("{call:?} at {now:?}: deadline out of range"));
                    }
                    match kind {
                        CallKind::Execute => {
                            let in_order = (0..step).all(|i| seen.ok[i][0]) && !seen.ok[step][0];
                            if !in_order || !seen.compensation_order.is_empty() {
                                seen.protocol.push(format!("{call:?} out of order"));
                            }
                        }
                        CallKind::Compensate => {
                            if !seen.compensation_order.contains(&step) {
                                // Only a step that completed, or whose outcome is unknown.
                                if !seen.ok[step][0] && !seen.unknown[step] {
                                    seen.needless_compensations.push(step);
                                }
                                seen.compensation_order.push(step);
                            }
                        }
                    }
                    open = Some(call);
                    if let Some(c) = crash.filter(|c| !c.after_call) {
                        crash_now(&mut wf, &mut now, &mut open, &mut seen, c);
                        continue;
                    }
                    // The provider: deduplicates by key, applies at most once per key.
                    let outcome = outcomes.next().unwrap_or(Outcome::Ok(0));
                    let done = provider_done.contains(&call.key);
                    let timeout = def.call_policy(step, kind).1;
                    let after = |permille: u16| {
                        now + SimDuration::from_nanos(
                            timeout.as_nanos() * u64::from(permille) / 1_000,
                        )
                    };
                    let applies = !done
                        && matches!(
                            outcome,
                            Outcome::Ok(_) | Outcome::OkLate | Outcome::AppliedSilently
                        );
                    if applies {
                        provider_done.insert(call.key);
                        match kind {
                            CallKind::Execute => {
                                seen.created[step] += 1;
                                seen.live[step] = true;
                            }
                            CallKind::Compensate if seen.live[step] => {
                                seen.removed[step] += 1;
                                seen.live[step] = false;
                                seen.removal_order.push(step);
                            }
                            CallKind::Compensate => {}
                        }
                    }
                    error_code += 1;
                    let answer = match outcome {
                        Outcome::Ok(l) => Some((after(l), StepResult::Ok)),
                        Outcome::OkLate => {
                            Some((call.deadline + SimDuration::from_nanos(1), StepResult::Ok))
                        }
                        Outcome::AppliedSilently | Outcome::Silent => None,
                        Outcome::Transient(l, hint) => Some((
                            after(l),
                            StepResult::Transient {
                                error: error_code,
                                retry_at: hint.map(|h| after(l) + ms(u64::from(h))),
                            },
                        )),
                        Outcome::Permanent(l) if done => Some((after(l), StepResult::Ok)),
                        Outcome::Permanent(l) => {
                            Some((after(l), StepResult::Permanent(error_code)))
                        }
                        Outcome::TimedOut(l) => Some((after(l), StepResult::TimedOut)),
                    };
                    if let Some((at, result)) = answer {
                        sequence += 1;
                        answers.push((at, sequence, call, result));
                    }
                    if let Some(c) = crash {
                        crash_now(&mut wf, &mut now, &mut open, &mut seen, c);
                    }
                }
            }
        }
        // Answers still on their way change nothing in an ended workflow.
        for (at, _, call, result) in answers {
            if wf.on_result(now.max(at), call, result) != Recorded::Stale {
                seen.protocol
                    .push(format!("{call:?} applied after the end"));
            }
        }
        seen.end = now;
        seen.record = Some(wf.into_record());
        seen
    }

    fn cases() -> ProptestConfig {
        ProptestConfig::with_cases(1_000)
    }

    proptest! {
        #![proptest_config(cases())]

        /// Every workflow ends, Active or Compensated, within `F + C` of its start plus the
        /// time its runner was down; it is Stuck only when a compensation was answered with a
        /// permanent error, ran out of attempts, or ran out of time after a crash or a hint.
        /// A deadline never bites in an undisturbed run (the bound is not reached early).
        #[test]
        fn ends_active_or_compensated_within_the_bound(case in arb_case()) {
            let seen = simulate(&case);
            let record = seen.record.as_ref().unwrap();
            prop_assert!(seen.terminal.is_some(), "{:?}", seen.protocol);
            let def = &case.definition;
            let [away_forward, away_after] = seen.away;
            let limit = seen.start + def.bound() + away_forward + away_after;
            prop_assert!(seen.end <= limit, "ended at {:?}, bound {:?}", seen.end, limit);
            // Each phase within its own bound.
            let forward_end = record.failure.as_ref().map(|f| f.at).or(record.ended_at).unwrap();
            let limit = seen.start + def.forward_bound() + away_forward;
            prop_assert!(forward_end <= limit, "forward phase ended at {:?}, bound {:?}", forward_end, limit);
            if let Some(failure) = &record.failure {
                let limit = failure.at + def.compensation_bound() + away_after;
                prop_assert!(seen.end <= limit, "compensation ended at {:?}, bound {:?}", seen.end, limit);
            }
            let deadline_bit = [&record.failure, &record.stuck].into_iter().flatten()
                .any(|f| matches!(f.cause, FailureCause::DeadlineExceeded(_)));
            prop_assert!(!deadline_bit || seen.disturbed, "a deadline bit in an undisturbed run: {:?}", record);
            if let Some(Terminal::Stuck { step }) = seen.terminal {
                let stuck = record.stuck.clone().unwrap();
                prop_assert_eq!(stuck.step, step);
                let policy = case.definition.call_policy(step, CallKind::Compensate).0;
                match stuck.cause {
                    FailureCause::Permanent(_) => {}
                    FailureCause::RetriesExhausted(_) => {
                        prop_assert_eq!(record.steps[step].compensation_attempts, policy.max_attempts);
                    }
                    FailureCause::DeadlineExceeded(_) => prop_assert!(seen.disturbed),
                    FailureCause::Cancelled => prop_assert!(false, "a compensation cancelled"),
                }
            }
        }

        /// No side effect is applied twice: the provider deduplicates by key, and counts
        /// effects per step whatever the key, so a key that changed between attempts or
        /// restarts would show as a second effect. Nor is a step undone twice.
        #[test]
        fn no_side_effect_is_applied_twice(case in arb_case()) {
            let seen = simulate(&case);
            prop_assert!(seen.created.iter().all(|&c| c <= 1), "created {:?}", seen.created);
            prop_assert!(seen.removed.iter().all(|&r| r <= 1), "removed {:?}", seen.removed);
            prop_assert!(seen.wrong_keys.is_empty(), "{:?}", seen.wrong_keys);
        }

        /// A compensation runs only for a step that completed or whose outcome is unknown (an
        /// attempt timed out or was lost in a crash), never for one known not to have applied;
        /// and a compensated workflow leaves no orphan: every step that applied and has a
        /// compensation is undone, and nothing after the failed step was applied.
        #[test]
        fn compensations_only_where_needed_and_no_orphans(case in arb_case()) {
            let seen = simulate(&case);
            prop_assert!(seen.needless_compensations.is_empty(), "compensated {:?}", seen.needless_compensations);
            let record = seen.record.as_ref().unwrap();
            match seen.terminal {
                Some(Terminal::Compensated) => {
                    let failed = record.failure.as_ref().unwrap().step;
                    for step in 0..case.definition.len() {
                        let undoable = case.definition.step(step).compensation.is_some();
                        prop_assert!(!(undoable && seen.live[step]), "step {} orphaned: {:?}", step, record);
                        prop_assert!(step <= failed || seen.created[step] == 0);
                    }
                }
                Some(Terminal::Active) => {
                    prop_assert!(seen.live.iter().all(|&l| l), "an active workflow lost a step: {:?}", seen.live);
                }
                _ => {}
            }
        }

        /// Compensations run in reverse completion order: each compensation first issued is
        /// for an earlier step than the ones before it, every completed compensable step is
        /// among them (unless stuck), and the provider undid steps in that order.
        #[test]
        fn compensations_run_in_reverse_completion_order(case in arb_case()) {
            let seen = simulate(&case);
            prop_assert!(seen.compensation_order.windows(2).all(|w| w[0] > w[1]), "{:?}", seen.compensation_order);
            prop_assert!(seen.removal_order.windows(2).all(|w| w[0] > w[1]), "{:?}", seen.removal_order);
            prop_assert!(seen.completion_order.windows(2).all(|w| w[0] < w[1]), "{:?}", seen.completion_order);
            if seen.terminal == Some(Terminal::Compensated) {
                let expected: Vec<usize> = seen.completion_order.iter().rev().copied()
                    .filter(|&s| case.definition.step(s).compensation.is_some())
                    .collect();
                let undone_completed: Vec<usize> = seen.compensation_order.iter().copied()
                    .filter(|&s| seen.ok[s][0])
                    .collect();
                prop_assert_eq!(undone_completed, expected);
            }
        }

        /// The record always says which step failed and why: the failure names the first step
        /// not completed with the cause the provider gave (or the timeout, or the deadline);
        /// every step's attempts and last error are what the runner saw; every record the
        /// runner persisted restores.
        #[test]
        fn the_record_says_which_step_failed_and_why(case in arb_case()) {
            let seen = simulate(&case);
            prop_assert!(seen.bad_records.is_empty(), "{:?}", seen.bad_records);
            let record = seen.record.as_ref().unwrap();
            for (i, step) in record.steps.iter().enumerate() {
                prop_assert_eq!(step.attempts, seen.attempts[i][0], "step {} attempts", i);
                prop_assert_eq!(step.compensation_attempts, seen.attempts[i][1], "step {} undo attempts", i);
                prop_assert_eq!(&step.last_error, &seen.last_error[i][0], "step {} last error", i);
                prop_assert_eq!(&step.compensation_error, &seen.last_error[i][1], "step {} undo error", i);
            }
            match (seen.terminal, &record.failure) {
                (Some(Terminal::Active), None) => {}
                (Some(Terminal::Active), Some(f)) => prop_assert!(false, "active with a failure {:?}", f),
                (_, None) => prop_assert!(false, "no failure recorded: {:?}", record),
                (_, Some(failure)) => {
                    let first_not_done = (0..case.definition.len()).find(|&i| !seen.ok[i][0]);
                    prop_assert_eq!(Some(failure.step), first_not_done);
                    prop_assert_eq!(failure.kind, CallKind::Execute);
                    let last = &seen.last_error[failure.step][0];
                    let max = case.definition.step(failure.step).retry.max_attempts;
                    match &failure.cause {
                        FailureCause::Permanent(e) => prop_assert_eq!(last, &Some(StepError::Permanent(*e))),
                        FailureCause::RetriesExhausted(e) => {
                            prop_assert_eq!(last, &Some(e.clone()));
                            prop_assert_eq!(seen.attempts[failure.step][0], max);
                        }
                        FailureCause::DeadlineExceeded(e) => prop_assert_eq!(last, e),
                        FailureCause::Cancelled => prop_assert!(seen.cancelled),
                    }
                }
            }
            if let Some(stuck) = &record.stuck {
                let last = &seen.last_error[stuck.step][1];
                match &stuck.cause {
                    FailureCause::Permanent(e) => prop_assert_eq!(last, &Some(StepError::Permanent(*e))),
                    FailureCause::RetriesExhausted(e) => prop_assert_eq!(last, &Some(e.clone())),
                    FailureCause::DeadlineExceeded(e) => prop_assert_eq!(last, e),
                    FailureCause::Cancelled => prop_assert!(false),
                }
            }
        }

        /// The runner protocol holds: calls in step order and none after compensation began,
        /// attempt numbers consecutive (a re-issue repeats one), deadlines within the attempt's
        /// timeout, a result used exactly when it is for the call in flight and in time,
        /// `WaitUntil` always in the future, nothing used after the end.
        #[test]
        fn the_runner_protocol_holds(case in arb_case()) {
            let seen = simulate(&case);
            prop_assert!(seen.protocol.is_empty(), "{:?}", seen.protocol);
        }

        /// The same case gives the same record and the same end: no hidden state or
        /// randomness.
        #[test]
        fn runs_are_deterministic(case in arb_case()) {
            let (a, b) = (simulate(&case), simulate(&case));
            prop_assert_eq!(a.record, b.record);
            prop_assert_eq!(a.end, b.end);
        }
    }
}
