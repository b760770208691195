//! The pure pipeline from scenario text to report: load, run, judge, report. No I/O.

use std::borrow::Cow;
use std::fmt;

use crate::kernel::RunError;
use crate::model::series::Series;
use crate::model::{self, RunOptions, RunOutput};
use crate::report::timeline::Timeline;
use crate::report::{self, Invocation, OutputFile, Report};
use crate::scenario::{self, LoadOptions, Scenario, ScenarioError};
use crate::slo::{self, Evaluation};

/// Everything one run produced.
#[derive(Debug)]
pub struct Executed {
    /// The validated scenario.
    pub scenario: Scenario,
    /// Metrics and counters.
    pub output: RunOutput,
    /// SLO and invariant results.
    pub evaluation: Evaluation,
    /// The report.
    pub report: Report,
    /// The tenants the run's series follow individually.
    pub tracked: Vec<usize>,
}

impl Executed {
    /// Tenants with a failed SLO check, the most failed checks first (then by position).
    pub fn failing_tenants(&self) -> Vec<usize> {
        let mut failed = vec![0u32; self.scenario.system.tenants.len()];
        for result in &self.evaluation.slos {
            for check in &result.checks {
                if let (Some(t), slo::Status::Failed) = (check.tenant, check.status) {
                    failed[t] += 1;
                }
            }
        }
        let mut out: Vec<usize> = (0..failed.len()).filter(|&t| failed[t] > 0).collect();
        out.sort_by(|&a, &b| failed[b].cmp(&failed[a]).then(a.cmp(&b)));
        out
    }

    /// The run's series, following `tracked` individually. Which tenants a run tracks changes
    /// only what it records for plots, never what it simulates, so when `tracked` differs (as
    /// a set) from what the run followed, the run is repeated with `tracked` and its series
    /// taken: the one way to plot a tenant that turned out to fail. A repeat that does not
    /// reproduce the run (a model bug) keeps the run's own series.
    pub fn series_for(&self, tracked: &[usize]) -> Cow<'_, Series> {
        // A comparison's other run may have fewer tenants (an override of a group's count).
        let n = self.scenario.system.tenants.len();
        let tracked: Vec<usize> = tracked.iter().copied().filter(|&t| t < n).collect();
        let same =
            tracked.len() == self.tracked.len() && tracked.iter().all(|t| self.tracked.contains(t));
        if same {
            return Cow::Borrowed(&self.output.series);
        }
        let options = RunOptions {
            tenant_windows: self.scenario.tenant_windows(),
            tracked,
            ..RunOptions::default()
        };
        match model::run(&self.scenario.system, options) {
            Ok(again) if again.events == self.output.events => Cow::Owned(again.series),
            _ => Cow::Borrowed(&self.output.series),
        }
    }

    /// The tenants the report files follow: fault targets, then tenants that failed a check
    /// in any of `runs` (a comparison plots the same tenants for A and B), then named and
    /// heavy ones (see [`Scenario::tracked_tenants`]).
    pub fn plot_tracking(&self, runs: &[&Executed]) -> Vec<usize> {
        let mut failing: Vec<usize> = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for run in runs {
            for t in run.failing_tenants() {
                if seen.insert(t) {
                    failing.push(t);
                }
            }
        }
        self.scenario.tracked_tenants(&failing)
    }

    /// Every file the run leaves in its output folder (see [`report::files`]), with the
    /// tenants that failed among those plotted.
    pub fn files(&self) -> Vec<OutputFile> {
        let series = self.series_for(&self.plot_tracking(&[self]));
        report::files(&self.report, &Timeline::new(&self.scenario, &series))
    }
}

/// Why a run produced no report.
#[derive(Debug)]
pub enum PipelineError {
    /// The scenario or an override is invalid.
    Invalid(ScenarioError),
    /// The run exceeded a budget.
    Budget(RunError),
}

impl fmt::Display for PipelineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PipelineError::Invalid(e) => write!(f, "{e}"),
            PipelineError::Budget(e) => write!(f, "error: {e}"),
        }
    }
}

impl std::error::Error for PipelineError {}

/// Loads `text` with `options`, runs it and judges it.
pub fn execute(text: &str, options: &LoadOptions) -> Result<Executed, PipelineError> {
    execute_with(text, options, RunOptions::default())
}

/// [`execute`] with extra collection (trace, digest); `run.tenant_windows` is filled in from
/// the scenario's SLOs.
pub fn execute_with(
    text: &str,
    options: &LoadOptions,
    run: RunOptions<'_>,
) -> Result<Executed, PipelineError> {
    let scenario = scenario::load(text, options).map_err(PipelineError::Invalid)?;
    let tracked = scenario.tracked_tenants(&[]);
    let run = RunOptions {
        tenant_windows: scenario.tenant_windows(),
        tracked: tracked.clone(),
        ..run
    };
    let output = model::run(&scenario.system, run).map_err(PipelineError::Budget)?;
    let evaluation = slo::evaluate(&scenario, &output);
    let invocation = Invocation {
        scenario_file: options.path.clone(),
        scenario_text: text.to_string(),
        overrides: options.overrides.clone(),
    };
    let report = report::build(&scenario, &output, &evaluation, &invocation);
    Ok(Executed {
        scenario,
        output,
        evaluation,
        report,
        tracked,
    })
}
