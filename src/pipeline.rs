//! The pure pipeline from scenario text to report: load, run, judge, report. No I/O.

use std::fmt;

use crate::kernel::RunError;
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
}

impl Executed {
    /// The run's course in time, for the report files.
    pub fn timeline(&self) -> Timeline<'_> {
        Timeline::new(&self.scenario, &self.output.series)
    }

    /// Every file the run leaves in its output folder (see [`report::files`]).
    pub fn files(&self) -> Vec<OutputFile> {
        report::files(&self.report, &self.timeline())
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
    let run = RunOptions {
        tenant_windows: scenario.tenant_windows(),
        tracked: scenario.tracked_tenants(),
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
    })
}
