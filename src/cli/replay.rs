//! `simulate replay`: rerun exactly what produced a report.json (its embedded scenario text,
//! overrides and seed) and check that the new report is byte-identical.

use std::path::PathBuf;

use clap::Args;

use super::{Allow, EXIT_INVALID, EXIT_NONDETERMINISM, Plan, check_work, exit_code};
use crate::pipeline;
use crate::report::{self, Report, VERSION};
use crate::scenario::{self, LoadOptions};
use crate::text::printable;

/// Options of `simulate replay`.
#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// A report.json written by `simulate run`.
    #[arg(value_name = "report.json")]
    report: PathBuf,
    #[command(flatten)]
    allow: Allow,
}

pub(super) fn replay_command(args: &ReplayArgs) -> u8 {
    // A report is input like any scenario file: a regular file, of bounded size, whose
    // strings are printed escaped (a tampered report.json must not drive the terminal).
    let limit = scenario::limits::MAX_REPORT_BYTES;
    let original = match super::input::read_capped(&args.report, &limit).and_then(|bytes| {
        String::from_utf8(bytes)
            .map_err(|_| format!("error: {} is not UTF-8 text", args.report.display()))
    }) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{}", printable(&e));
            return EXIT_INVALID;
        }
    };
    let report: Report = match serde_json::from_str(&original) {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "{}",
                printable(&format!(
                    "error: {} is not a report.json: {e}",
                    args.report.display()
                ))
            );
            return EXIT_INVALID;
        }
    };
    if report.version != VERSION {
        eprintln!(
            "warning: the report was made by tenantsim {}, this is {VERSION}; a different \
             version may legitimately give a different result",
            printable(&report.version)
        );
    }
    let options = LoadOptions {
        path: report.scenario_file.clone(),
        overrides: report.overrides.clone(),
        seed: Some(report.seed),
        files: super::input::beside(&report.scenario_file),
    };
    // The report is input like any scenario file: check its work before running it.
    let text_bytes = report.scenario_text.len();
    let checked = scenario::load(&report.scenario_text, &options)
        .map_err(|e| embedded(e, &report.scenario_file, &args.report))
        .and_then(|s| check_work(&s, text_bytes, Plan::ONE, args.allow, false).map(|()| s));
    let scenario = match checked {
        Ok(scenario) => scenario,
        Err(e) => {
            eprintln!("{}", printable_lines(&e));
            return EXIT_INVALID;
        }
    };
    if let Some(problem) = changed_inputs(&report.inputs, &scenario.inputs) {
        eprintln!("{}", printable(&problem));
        return EXIT_INVALID;
    }
    let executed = match pipeline::execute(&report.scenario_text, &options) {
        Ok(e) => e,
        Err(pipeline::PipelineError::Invalid(e)) => {
            eprintln!(
                "{}",
                printable_lines(&embedded(e, &report.scenario_file, &args.report))
            );
            return EXIT_INVALID;
        }
        Err(e) => {
            eprintln!("{}", printable_lines(&e.to_string()));
            return EXIT_INVALID;
        }
    };
    let replayed = report::to_json(&executed.report);
    if replayed == original {
        println!(
            "replay: {} seed {}: identical report ({} bytes); verdict {}",
            printable(&report.scenario),
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
        printable(&report.scenario),
        report.seed,
        printable(old.trim()),
        printable(new.trim())
    );
    EXIT_NONDETERMINISM
}

/// Why the files a report's run read differ from what the scenario reads now (a tenant
/// table or a replayed log changed, went or appeared), if they do.
fn changed_inputs(
    recorded: &[scenario::inputs::InputFile],
    now: &[scenario::inputs::InputFile],
) -> Option<String> {
    for was in recorded {
        match now.iter().find(|f| f.key == was.key) {
            Some(is) if is.digest != was.digest || is.path != was.path => {
                return Some(format!(
                    "error: {} (`{}`) changed since the report was written: {} ({} bytes) then, {} ({} bytes) now; restore the file to replay this report, or run the scenario again",
                    is.path, was.key, was.digest, was.bytes, is.digest, is.bytes
                ));
            }
            Some(_) => {}
            None => {
                return Some(format!(
                    "error: the report's run read {} (`{}`), which the scenario no longer names",
                    was.path, was.key
                ));
            }
        }
    }
    now.iter()
        .find(|is| !recorded.iter().any(|was| was.key == is.key))
        .map(|is| {
            format!(
                "error: the scenario now reads {} (`{}`), which the report's run did not",
                is.path, is.key
            )
        })
}

/// The loader's errors about a report's embedded scenario, placed in the report: the text
/// came from its `scenario_text`, not from `scenario_file` (which the user did not name and
/// which may differ or be gone), so `scenarios/x.toml:3:5` becomes `report.json: embedded
/// scenario, line 3, column 5` and `--set X` a recorded override. Errors in the files the
/// scenario reads (a tenant table, a log) keep their own file:line, which is real.
fn embedded(
    mut error: scenario::ScenarioError,
    scenario_file: &str,
    report: &std::path::Path,
) -> String {
    // The loader escapes the locations it writes; match the file name the same way.
    let prefix = format!("{}:", printable(scenario_file));
    let report = report.display().to_string();
    for d in &mut error.diagnostics {
        let position = d.location.strip_prefix(&prefix).and_then(|rest| {
            let (line, column) = rest.split_once(':')?;
            let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            (number(line) && number(column)).then(|| (line.to_string(), column.to_string()))
        });
        if let Some((line, column)) = position {
            d.location = format!("{report}: embedded scenario, line {line}, column {column}");
        } else if let Some(set) = d.location.strip_prefix("--set ") {
            d.location = format!("{report}: recorded override `--set {set}`");
        }
    }
    error.to_string()
}

/// Each line of `text` made printable, the line breaks kept (the loader's messages span lines
/// and escape what they quote already; the file name they start with comes from the report).
fn printable_lines(text: &str) -> String {
    text.lines().map(printable).collect::<Vec<_>>().join("\n")
}
