//! `simulate replay`: rerun exactly what produced a report.json (its embedded scenario text,
//! overrides and seed) and check that the new report is byte-identical.

use std::path::PathBuf;

use clap::Args;

use super::{EXIT_INVALID, EXIT_NONDETERMINISM, check_work, exit_code};
use crate::pipeline;
use crate::report::{self, Report, VERSION};
use crate::scenario::{self, LoadOptions};

/// Options of `simulate replay`.
#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// A report.json written by `simulate run`.
    #[arg(value_name = "report.json")]
    report: PathBuf,
    /// Run even when the estimated work is above the long-run threshold.
    #[arg(long)]
    allow_long: bool,
}

pub(super) fn replay_command(args: &ReplayArgs) -> u8 {
    let original = match std::fs::read_to_string(&args.report) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", args.report.display());
            return EXIT_INVALID;
        }
    };
    let report: Report = match serde_json::from_str(&original) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {} is not a report.json: {e}", args.report.display());
            return EXIT_INVALID;
        }
    };
    if report.version != VERSION {
        eprintln!(
            "warning: the report was made by tenantsim {}, this is {VERSION}; a different \
             version may legitimately give a different result",
            report.version
        );
    }
    let options = LoadOptions {
        path: report.scenario_file.clone(),
        overrides: report.overrides.clone(),
        seed: Some(report.seed),
    };
    // The report is input like any scenario file: check its work before running it.
    let checked = scenario::load(&report.scenario_text, &options)
        .map_err(|e| e.to_string())
        .and_then(|s| check_work(&s, 1, args.allow_long, false));
    if let Err(e) = checked {
        eprintln!("{e}");
        return EXIT_INVALID;
    }
    let executed = match pipeline::execute(&report.scenario_text, &options) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_INVALID;
        }
    };
    let replayed = report::to_json(&executed.report);
    if replayed == original {
        println!(
            "replay: {} seed {}: identical report ({} bytes); verdict {}",
            report.scenario,
            report.seed,
            replayed.len(),
            executed.report.verdict.to_uppercase()
        );
        return exit_code(executed.evaluation.verdict);
    }
    let (line, old, new) = original
        .lines()
        .zip(replayed.lines())
        .enumerate()
        .find(|(_, (a, b))| a != b)
        .map(|(i, (a, b))| (i + 1, a.to_string(), b.to_string()))
        .unwrap_or((
            original.lines().count().min(replayed.lines().count()) + 1,
            String::new(),
            String::new(),
        ));
    eprintln!(
        "replay: {} seed {}: the report differs from line {line}\n  recorded: {}\n  replayed: {}",
        report.scenario,
        report.seed,
        old.trim(),
        new.trim()
    );
    EXIT_NONDETERMINISM
}
