//! `simulate check`: the CI gate. Runs scenarios (each on its own seed, or on a seed range),
//! one line per scenario in a stable order, and exits with the worst code.

use std::path::PathBuf;

use clap::Args;
use rayon::prelude::*;

use super::run::default_out_dir;
use super::sweep::run_seeds;
use super::{
    Allow, EXIT_FAIL, EXIT_INCONCLUSIVE, EXIT_INVALID, EXIT_PASS, Plan, ScenarioArgs, check_work,
    exit_code, parse_seeds, read_scenario, repro_command, scenario_files, severity, write_files,
};
use crate::pipeline;
use crate::report::Invocation;
use crate::report::sweep::{self, SweepHeader};
use crate::scenario::{self, LoadOptions};
use crate::text::thousands;

/// Options of `simulate check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Scenario files or folders (every .toml in a folder).
    #[arg(required = true, value_name = "FILE|DIR")]
    paths: Vec<PathBuf>,
    /// Run every scenario on these seeds (`A..B`, B excluded, or `A..=B`) instead of its own.
    #[arg(long, value_name = "A..B")]
    seeds: Option<String>,
    /// With --seeds: fail a scenario only when the one-sided 95% upper bound of its violation
    /// rate exceeds R (default: any failing seed fails).
    #[arg(long, value_name = "R", requires = "seeds")]
    max_violation_rate: Option<f64>,
    #[command(flatten)]
    overrides: ScenarioArgs,
    /// Also write each scenario's report files (report.json, summary.md, junit.xml,
    /// index.html, plots/) to its default folder, reports/<scenario>/seed-<N>/: run from the
    /// repository root, this regenerates the committed reference reports.
    #[arg(long, conflicts_with = "seeds")]
    write_reports: bool,
    #[command(flatten)]
    allow: Allow,
    /// No progress output.
    #[arg(long, short)]
    quiet: bool,
}

struct Line {
    code: u8,
    text: String,
}

pub(super) fn check_command(program: &str, args: &CheckArgs) -> u8 {
    let files = match scenario_files(&args.paths) {
        Ok(f) if !f.is_empty() => f,
        Ok(_) => {
            eprintln!("error: no .toml scenario files found");
            return EXIT_INVALID;
        }
        Err(e) => {
            eprintln!("{e}");
            return EXIT_INVALID;
        }
    };
    if let Some(r) = args.max_violation_rate
        && !(0.0..=1.0).contains(&r)
    {
        eprintln!("error: --max-violation-rate {r}: expected a fraction between 0 and 1");
        return EXIT_INVALID;
    }
    let range = match args.seeds.as_deref().map(parse_seeds).transpose() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_INVALID;
        }
    };
    // Scenarios run in parallel (and, with --seeds, their seeds too); lines come out in file
    // order whatever the thread count.
    let lines: Vec<Line> = files
        .par_iter()
        .map(|file| {
            check_one(
                program,
                file,
                args,
                range.as_ref().map(|r| (&r.seeds, r.text.as_str())),
            )
        })
        .collect();
    let mut worst = EXIT_PASS;
    for line in &lines {
        println!("{}", line.text);
        if severity(line.code) > severity(worst) {
            worst = line.code;
        }
    }
    let count = |code| lines.iter().filter(|l| l.code == code).count();
    println!(
        "{} scenario(s): {} pass, {} fail, {} inconclusive, {} invalid",
        lines.len(),
        count(EXIT_PASS),
        count(EXIT_FAIL),
        count(EXIT_INCONCLUSIVE),
        count(EXIT_INVALID)
    );
    worst
}

fn label(code: u8) -> &'static str {
    match code {
        EXIT_PASS => "PASS ",
        EXIT_FAIL => "FAIL ",
        EXIT_INCONCLUSIVE => "INCON",
        _ => "ERROR",
    }
}

fn check_one(
    program: &str,
    file: &std::path::Path,
    args: &CheckArgs,
    seeds: Option<(&Vec<u64>, &str)>,
) -> Line {
    let shown = file.display().to_string();
    let invalid = |message: String| Line {
        code: EXIT_INVALID,
        text: format!("{}  {shown}\n{message}", label(EXIT_INVALID)),
    };
    let text = match read_scenario(file) {
        Ok(t) => t,
        Err(e) => return invalid(e),
    };
    let options = LoadOptions {
        path: shown.clone(),
        overrides: args.overrides.set.clone(),
        seed: None,
        files: super::input::beside(&shown),
    };
    let name = match scenario::load(&text, &options) {
        Ok(s) => {
            let plan = seeds.map_or(Plan::ONE, |(s, _)| Plan::seeds(s.len() as u64));
            if let Err(e) = check_work(&s, text.len(), plan, args.allow, args.quiet) {
                return invalid(e);
            }
            if args.write_reports {
                let seed = s.system.simulation.seed;
                let dir = default_out_dir(&s.name, seed, &args.overrides.set);
                if let Err(e) = super::run::check_default_out_dir(&dir) {
                    return invalid(e);
                }
            }
            s.name
        }
        Err(e) => return invalid(e.to_string()),
    };
    match seeds {
        None => match pipeline::execute(&text, &options) {
            Ok(executed) => {
                let report = &executed.report;
                let code = exit_code(executed.evaluation.verdict);
                let failed: Vec<&str> = report
                    .slos
                    .iter()
                    .filter(|s| s.status != "pass")
                    .map(|s| s.name.as_str())
                    .chain(
                        report
                            .invariants
                            .iter()
                            .filter(|i| !i.passed)
                            .map(|i| i.name.as_str()),
                    )
                    .collect();
                let mut text = format!(
                    "{}  {:<24} seed {:<6} {shown}",
                    label(code),
                    name,
                    report.seed
                );
                if args.write_reports {
                    let dir = default_out_dir(&report.scenario, report.seed, &report.overrides);
                    match write_files(&dir, &executed.files()) {
                        Ok(written) => text.push_str(&format!(
                            "\n       wrote {} files to {}/",
                            written.len(),
                            dir.display()
                        )),
                        Err(e) => return invalid(e),
                    }
                }
                if !failed.is_empty() {
                    text.push_str(&format!(
                        "\n       {}: {}\n       {}",
                        if code == EXIT_FAIL {
                            "failed"
                        } else {
                            "inconclusive"
                        },
                        failed.join("; "),
                        repro_command(program, &report.repro)
                    ));
                }
                Line { code, text }
            }
            Err(e) => invalid(e.to_string()),
        },
        Some((seeds, range_text)) => {
            let runs = run_seeds(&text, &options, seeds, &name, args.quiet, false).runs;
            let header = SweepHeader {
                scenario: name.clone(),
                scenario_file: shown.clone(),
                scenario_sha256: sweep::text_sha256(&text),
                overrides: options.overrides.clone(),
                seed_range: range_text.to_string(),
                shard: None,
            };
            let report = sweep::summarize(&header, runs);
            let v = &report.violation_rate;
            let failed = match args.max_violation_rate {
                Some(limit) => v.upper_95 > limit,
                None => v.failures > 0,
            };
            let code = if failed {
                EXIT_FAIL
            } else if !report.inconclusive_seeds.is_empty() && v.failures == 0 {
                EXIT_INCONCLUSIVE
            } else {
                EXIT_PASS
            };
            let gate = match args.max_violation_rate {
                Some(limit) => format!(
                    "upper 95% {:.2}% {} limit {:.2}%",
                    v.upper_95 * 100.0,
                    if failed { ">" } else { "<=" },
                    limit * 100.0
                ),
                None => format!("upper 95% {:.2}%", v.upper_95 * 100.0),
            };
            let mut text = format!(
                "{}  {:<24} {}/{} seeds fail ({gate})  {shown}",
                label(code),
                name,
                thousands(v.failures),
                thousands(v.runs)
            );
            if let Some(first) = report.failing_seeds.first() {
                let invocation = Invocation {
                    scenario_file: shown.clone(),
                    overrides: options.overrides.clone(),
                    ..Invocation::default()
                };
                text.push_str(&format!(
                    "\n       first failing seed {first}: {}",
                    repro_command(program, &invocation.repro(*first))
                ));
            }
            Line { code, text }
        }
    }
}
