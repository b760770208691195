//! Scenario files: TOML text plus `--set` overrides in, a validated [`Scenario`] out.
//!
//! Every error names the file, line, column and key (or the override) and what was expected.
//! All references are resolved to dense indices here, so the model never looks anything up by
//! name.

pub mod expect;
pub mod explore;
pub mod inputs;
pub mod limits;
mod load;
pub mod memory;
pub mod schema;
pub mod shrink;
pub mod spec;
pub mod synthetic;
pub mod table;
pub mod tree;

use std::fmt;

pub use expect::{Expectation, Metric, Op, Threshold};
pub use limits::{MAX_DURATION, MAX_SCENARIO_BYTES};
pub use load::{DEFAULT_MIN_SAMPLES, LoadOptions, is_valid_name, load};

use crate::model::config::System;

/// A validated scenario: the simulated system plus the SLOs that judge it.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// `[a-z0-9-]+`.
    pub name: String,
    /// What the scenario shows.
    pub description: String,
    /// The system to simulate.
    pub system: System,
    /// SLOs, in file order.
    pub slos: Vec<Slo>,
    /// What `simulate explore` may draw, if the file has an `[explore]` table.
    pub explore: Option<explore::ExploreSpec>,
    /// The files it read besides itself (tenant tables, a replayed log), in the order read.
    pub inputs: Vec<inputs::InputFile>,
}

/// Whether each selected tenant must pass, or the selection pooled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Each tenant must pass on its own.
    Each,
    /// The selection's requests are pooled and judged once.
    Pooled,
}

/// `[[slo]]`.
#[derive(Clone, Debug)]
pub struct Slo {
    /// Name.
    pub name: String,
    /// The selector as written (`bystanders`, `all`, a list, `{ tier = ... }`).
    pub selector: String,
    /// Selected tenants.
    pub tenants: Vec<usize>,
    /// Each or pooled.
    pub scope: Scope,
    /// Index into the system's windows (`System::windows`).
    pub window: usize,
    /// Expectations; all must hold.
    pub expect: Vec<Expectation>,
    /// Fewer samples than this makes a check inconclusive.
    pub min_samples: u64,
    /// Which of a tenant's requests count (a metrics slot filter: all, a class, or a pool's
    /// classes; see `model::metrics::slot`).
    pub filter: u32,
    /// `class NAME` or `pool NAME` when the SLO judges only part of the requests; empty
    /// otherwise.
    pub filter_label: String,
}

/// One problem with a scenario or override.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// `file:line:col`, or `--set PATH=VALUE`.
    pub location: String,
    /// The dotted key, as `--set` would address it.
    pub key: String,
    /// What was expected and what was found.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.location, self.message)
        } else {
            write!(f, "{}: `{}`: {}", self.location, self.key, self.message)
        }
    }
}

/// Every problem found while loading a scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    /// The problems, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "error: {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioError {}

impl Scenario {
    /// Tenants whose time series are drawn individually, in this order and without repeats:
    /// fault targets (the first of every fault, then the second of every fault, ..., at most
    /// [`MAX_TRACKED_TARGETS`]), the tenants in `failing` (those that failed an SLO check,
    /// worst first; empty before the run, at most [`MAX_TRACKED_FAILING`]), the tenants SLO
    /// lists name, then the top by offered load (rate times the largest spike; at least
    /// [`MIN_TRACKED_BY_LOAD`] of them), [`MAX_TRACKED`] in all.
    ///
    /// [`MAX_TRACKED`]: crate::model::series::MAX_TRACKED
    /// [`MAX_TRACKED_TARGETS`]: crate::model::series::MAX_TRACKED_TARGETS
    /// [`MAX_TRACKED_FAILING`]: crate::model::series::MAX_TRACKED_FAILING
    /// [`MIN_TRACKED_BY_LOAD`]: crate::model::series::MIN_TRACKED_BY_LOAD
    pub fn tracked_tenants(&self, failing: &[usize]) -> Vec<usize> {
        use crate::model::series::{
            MAX_TRACKED, MAX_TRACKED_FAILING, MAX_TRACKED_TARGETS, MIN_TRACKED_BY_LOAD,
        };
        let mut tracked: Vec<usize> = Vec::new();
        let push = |t: usize, tracked: &mut Vec<usize>, limit: usize| {
            if tracked.len() < limit && !tracked.contains(&t) {
                tracked.push(t);
            }
        };
        // Round robin over the faults: a fault naming a thousand tenants (a cell outage) does
        // not crowd out another fault's single target. Linear in the targets looked at.
        let faults: Vec<&[usize]> = self
            .system
            .faults
            .iter()
            .map(|f| f.named_tenants())
            .filter(|t| !t.is_empty())
            .collect();
        let mut round = 0;
        while tracked.len() < MAX_TRACKED_TARGETS && faults.iter().any(|t| t.len() > round) {
            for targets in &faults {
                if let Some(&t) = targets.get(round) {
                    push(t, &mut tracked, MAX_TRACKED_TARGETS);
                }
            }
            round += 1;
        }
        let before = tracked.len();
        for &t in failing {
            push(t, &mut tracked, before + MAX_TRACKED_FAILING);
        }
        let room = MAX_TRACKED - MIN_TRACKED_BY_LOAD;
        for slo in &self.slos {
            if slo.selector.starts_with('[') {
                for &t in &slo.tenants {
                    push(t, &mut tracked, room);
                }
            }
        }
        // Each tenant's largest spike, in one pass over the faults.
        let mut spike = vec![1.0f64; self.system.tenants.len()];
        for fault in &self.system.faults {
            if let crate::model::config::FaultKind::LoadSpike {
                tenants,
                multiplier,
                ..
            } = &fault.kind
            {
                for &t in tenants {
                    if let Some(s) = spike.get_mut(t) {
                        *s = s.max(*multiplier);
                    }
                }
            }
        }
        let peak = |t: usize| self.system.tenants[t].arrival.rate * spike[t];
        let mut by_load: Vec<usize> = (0..self.system.tenants.len()).collect();
        let top = MAX_TRACKED.min(by_load.len());
        if top < by_load.len() {
            by_load
                .select_nth_unstable_by(top, |&a, &b| peak(b).total_cmp(&peak(a)).then(a.cmp(&b)));
            by_load.truncate(top);
        }
        by_load.sort_by(|&a, &b| peak(b).total_cmp(&peak(a)).then(a.cmp(&b)));
        for t in by_load {
            push(t, &mut tracked, MAX_TRACKED);
        }
        tracked
    }

    /// For each tenant, the slots some SLO judges it in (a window and which of its requests
    /// count; the model tracks exactly these), plus, when the scenario has classes, the whole
    /// run per class of its mix (for the per-class breakdown of the reports).
    pub fn tenant_windows(&self) -> Vec<Vec<usize>> {
        use crate::model::metrics::slot;
        use crate::model::topology::CLASS_DEFAULT;
        let mut windows = vec![Vec::new(); self.system.tenants.len()];
        for slo in &self.slos {
            for &t in &slo.tenants {
                windows[t].push(slot::key(slo.window, slo.filter));
            }
        }
        if !self.system.classes.is_empty() {
            for (t, tenant) in self.system.tenants.iter().enumerate() {
                match tenant.mix.as_deref() {
                    Some(shares) => {
                        windows[t].extend(shares.iter().map(|s| slot::key(0, slot::class(s.class))))
                    }
                    None => windows[t].push(slot::key(0, slot::class(CLASS_DEFAULT))),
                }
            }
        }
        windows
    }
}
