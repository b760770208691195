//! The tenant lifecycle in a report: sign-ups per tier (completed, compensated, stuck,
//! refused, unfinished, and onboarding time from sign-up to access), the providers' answers to
//! workflow calls (429s among them), orphaned and duplicated resources, deletions and their
//! ledger; and the tables the terminal, `summary.md` and `index.html` show of it.

use serde::{Deserialize, Serialize};

use super::tables::{Cell, Column, Table};
use super::{Report, round_to};
use crate::model::RunOutput;
use crate::model::lifecycle::{DeletionOutcome, OnboardingOutcome, nearest_rank};
use crate::scenario::Scenario;
use crate::text::thousands;

/// Ledger entries a report lists; the rest are counted.
pub const MAX_LEDGER_ENTRIES: usize = 1_000;

/// The lifecycle part of `report.json` (present only for scenarios with workflows).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct OnboardingReport {
    /// Sign-ups per tier (tiers with none are left out).
    pub tiers: Vec<OnboardingTier>,
    /// The steps failed onboardings failed at, with how many.
    pub failed_steps: Vec<StepCount>,
    /// Workflow calls per dependency called.
    pub providers: Vec<ProviderReport>,
    /// Resources onboarding steps created.
    pub resources_created: u64,
    /// Resources compensations removed.
    pub resources_compensated: u64,
    /// Resources alive at the end whose onboarding failed.
    pub orphans: u64,
    /// Side effects applied a second time.
    pub duplicates: u64,
    /// Deletion requests.
    pub deletions: DeletionsReport,
}

/// Sign-ups of one tier.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct OnboardingTier {
    /// Tier name.
    pub tier: String,
    /// Sign-ups.
    pub signups: u64,
    /// Refused for a reserved name.
    pub refused: u64,
    /// Onboarded: the tenant got access.
    pub completed: u64,
    /// Every step done, access waiting for a resource at the end of the run.
    pub awaiting_access: u64,
    /// Failed and undone.
    pub compensated: u64,
    /// Failed, and a compensation failed too.
    pub stuck: u64,
    /// Queued or in progress at the end.
    pub unfinished: u64,
    /// Sign-up to access of completed ones (unfinished ones at their age), in seconds.
    pub time_s: Option<TimeReport>,
}

/// Percentiles of onboarding time, in seconds.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TimeReport {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Longest.
    pub max: f64,
}

/// A step and a count.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StepCount {
    /// Step name.
    pub step: String,
    /// How many.
    pub count: u64,
}

/// Workflow calls to one dependency.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ProviderReport {
    /// Dependency name.
    pub name: String,
    /// Calls made (compensations included).
    pub calls: u64,
    /// Refused by its rate limit (429).
    pub throttled: u64,
    /// Transient errors.
    pub errors: u64,
    /// Permanent errors.
    pub rejected: u64,
}

/// Deletion requests and the ledger.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct DeletionsReport {
    /// Requests.
    pub requested: u64,
    /// Workflows that completed.
    pub completed: u64,
    /// Workflows that failed.
    pub failed: u64,
    /// Workflows unfinished at the end.
    pub unfinished: u64,
    /// Requests for tenants that were not active.
    pub not_active: u64,
    /// Deletions whose bound fell due within the run.
    pub due: u64,
    /// Of which no store held the tenant any more.
    pub complete_at_due: u64,
    /// Erasures, in time order (the first [`MAX_LEDGER_ENTRIES`]).
    pub ledger: Vec<LedgerReport>,
    /// Erasures not listed.
    pub ledger_omitted: u64,
    /// Deletions whose tenant was still in some store at the bound: tenant and stores.
    pub incomplete: Vec<IncompleteDeletion>,
}

/// One erasure.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LedgerReport {
    /// Tenant name.
    pub tenant: String,
    /// Store erased.
    pub store: String,
    /// The step that erased it.
    pub step: String,
    /// When, in seconds.
    pub at_s: f64,
    /// What was erased (rows: 1, cache entries, resources, snapshots).
    pub items: u64,
}

/// A deletion that was not complete at its bound.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct IncompleteDeletion {
    /// Tenant name.
    pub tenant: String,
    /// When the bound fell due, in seconds.
    pub due_s: f64,
    /// The stores that still held it.
    pub stores: Vec<String>,
}

/// The lifecycle report of a run, if the scenario has sign-ups or deletions.
pub fn build(scenario: &Scenario, output: &RunOutput) -> Option<OnboardingReport> {
    let lifecycle = output.lifecycle.as_ref()?;
    let system = &scenario.system;
    let end = system.end();
    let mut tiers = Vec::new();
    for (tier, spec) in system.tiers.iter().enumerate() {
        let mut row = OnboardingTier {
            tier: spec.name.clone(),
            signups: 0,
            refused: 0,
            completed: 0,
            awaiting_access: 0,
            compensated: 0,
            stuck: 0,
            unfinished: 0,
            time_s: None,
        };
        let mut times = Vec::new();
        for o in lifecycle
            .onboardings
            .iter()
            .filter(|o| system.tenants[o.tenant].tier == tier)
        {
            row.signups += 1;
            match o.outcome {
                OnboardingOutcome::Refused => row.refused += 1,
                OnboardingOutcome::Completed => row.completed += 1,
                OnboardingOutcome::AwaitingAccess => row.awaiting_access += 1,
                OnboardingOutcome::Compensated => row.compensated += 1,
                OnboardingOutcome::Stuck => row.stuck += 1,
                OnboardingOutcome::Unfinished => row.unfinished += 1,
            }
            if let Some(t) = o.time(end) {
                times.push(t);
            }
        }
        if row.signups == 0 {
            continue;
        }
        times.sort_unstable();
        let secs = |p: f64| nearest_rank(&times, p).map_or(0.0, |d| round_to(d.as_secs_f64(), 3));
        row.time_s = (!times.is_empty()).then(|| TimeReport {
            p50: secs(50.0),
            p90: secs(90.0),
            p99: secs(99.0),
            max: secs(100.0),
        });
        tiers.push(row);
    }
    let mut failed_steps: Vec<StepCount> = Vec::new();
    for step in lifecycle
        .onboardings
        .iter()
        .filter_map(|o| o.failed_step.as_ref())
    {
        match failed_steps.iter_mut().find(|s| s.step == *step) {
            Some(s) => s.count += 1,
            None => failed_steps.push(StepCount {
                step: step.clone(),
                count: 1,
            }),
        }
    }
    let providers = lifecycle
        .providers
        .iter()
        .enumerate()
        .filter(|(_, p)| p.calls > 0)
        .map(|(d, p)| ProviderReport {
            name: system.dependencies[d].name.clone(),
            calls: p.calls,
            throttled: p.throttled,
            errors: p.errors,
            rejected: p.rejected,
        })
        .collect();
    let name = |t: usize| system.tenants[t].name.clone();
    let mut deletions = DeletionsReport {
        requested: lifecycle.deletions.len() as u64,
        ..DeletionsReport::default()
    };
    for d in &lifecycle.deletions {
        match d.outcome {
            DeletionOutcome::Completed => deletions.completed += 1,
            DeletionOutcome::Failed => deletions.failed += 1,
            DeletionOutcome::Unfinished => deletions.unfinished += 1,
            DeletionOutcome::NotActive => deletions.not_active += 1,
        }
        if let Some(due) = d.due {
            deletions.due += 1;
            if d.remaining.is_empty() {
                deletions.complete_at_due += 1;
            } else {
                deletions.incomplete.push(IncompleteDeletion {
                    tenant: name(d.tenant),
                    due_s: round_to(due.as_secs_f64(), 3),
                    stores: d.remaining.iter().map(|s| s.name().to_string()).collect(),
                });
            }
        }
    }
    deletions.ledger = lifecycle
        .ledger
        .iter()
        .take(MAX_LEDGER_ENTRIES)
        .map(|e| LedgerReport {
            tenant: name(e.tenant),
            store: e.store.name().to_string(),
            step: e.step.clone(),
            at_s: round_to(e.at.as_secs_f64(), 3),
            items: e.items,
        })
        .collect();
    deletions.ledger_omitted = lifecycle.ledger.len().saturating_sub(MAX_LEDGER_ENTRIES) as u64;
    Some(OnboardingReport {
        tiers,
        failed_steps,
        providers,
        resources_created: lifecycle.resources_created,
        resources_compensated: lifecycle.resources_compensated,
        orphans: lifecycle.orphans,
        duplicates: lifecycle.duplicates,
        deletions,
    })
}

fn table(columns: &[(&str, bool)]) -> Table {
    Table {
        columns: columns
            .iter()
            .map(|(title, numeric)| Column {
                title: (*title).to_string(),
                numeric: *numeric,
            })
            .collect(),
        rows: Vec::new(),
    }
}

fn text(s: impl Into<String>) -> Cell {
    Cell::Text(s.into())
}

fn count(n: u64) -> Cell {
    text(thousands(n))
}

/// Seconds for reading: `42.1s`, `3.5m`.
fn duration(s: f64) -> String {
    if s >= 600.0 {
        format!("{:.1}m", s / 60.0)
    } else {
        format!("{s:.1}s")
    }
}

/// The lifecycle tables of a report, with their titles: sign-ups per tier, the providers the
/// workflows called, and deletions (empty for a scenario without workflows).
pub fn tables(report: &Report) -> Vec<(&'static str, Table)> {
    let Some(o) = report.onboarding.as_ref() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if !o.tiers.is_empty() {
        let mut t = table(&[
            ("tier", false),
            ("sign-ups", true),
            ("completed", true),
            ("compensated", true),
            ("stuck", true),
            ("refused", true),
            ("unfinished", true),
            ("p50", true),
            ("p99", true),
            ("max", true),
        ]);
        for tier in &o.tiers {
            let time = |f: fn(&TimeReport) -> f64| {
                tier.time_s
                    .as_ref()
                    .map_or("—".to_string(), |t| duration(f(t)))
            };
            t.rows.push(vec![
                text(tier.tier.clone()),
                count(tier.signups),
                count(tier.completed),
                count(tier.compensated),
                count(tier.stuck),
                count(tier.refused),
                count(tier.unfinished + tier.awaiting_access),
                text(time(|t| t.p50)),
                text(time(|t| t.p99)),
                text(time(|t| t.max)),
            ]);
        }
        out.push(("Onboarding (sign-up to access)", t));
    }
    if !o.providers.is_empty() {
        let mut t = table(&[
            ("dependency", false),
            ("workflow calls", true),
            ("429s", true),
            ("errors", true),
            ("rejected", true),
        ]);
        for p in &o.providers {
            t.rows.push(vec![
                text(p.name.clone()),
                count(p.calls),
                count(p.throttled),
                count(p.errors),
                count(p.rejected),
            ]);
        }
        let mut totals = table(&[
            ("resources created", true),
            ("compensated", true),
            ("orphans", true),
            ("duplicates", true),
            ("failed at", false),
        ]);
        let failed = o
            .failed_steps
            .iter()
            .map(|s| format!("{} ×{}", s.step, thousands(s.count)))
            .collect::<Vec<_>>()
            .join(", ");
        totals.rows.push(vec![
            count(o.resources_created),
            count(o.resources_compensated),
            count(o.orphans),
            count(o.duplicates),
            text(if failed.is_empty() {
                "—".to_string()
            } else {
                failed
            }),
        ]);
        out.push(("Workflow calls per dependency", t));
        out.push(("Workflow resources", totals));
    }
    let d = &o.deletions;
    if d.requested > 0 {
        let mut t = table(&[
            ("deletions", true),
            ("completed", true),
            ("failed", true),
            ("unfinished", true),
            ("not active", true),
            ("due in the run", true),
            ("complete at bound", true),
            ("ledger entries", true),
        ]);
        t.rows.push(vec![
            count(d.requested),
            count(d.completed),
            count(d.failed),
            count(d.unfinished),
            count(d.not_active),
            count(d.due),
            count(d.complete_at_due),
            count(d.ledger.len() as u64 + d.ledger_omitted),
        ]);
        out.push(("Deletions", t));
        if !d.incomplete.is_empty() {
            let mut t = table(&[("tenant", false), ("due", true), ("still in", false)]);
            for i in d.incomplete.iter().take(12) {
                t.rows.push(vec![
                    Cell::Code(i.tenant.clone()),
                    text(duration(i.due_s)),
                    text(i.stores.join(", ")),
                ]);
            }
            out.push(("Deletions incomplete at their bound", t));
        }
    }
    out
}
