//! `simulate compare`: policy A/B on one seed. A is the scenario as written, B the same with
//! `--set` overrides; common random numbers give both the same arrivals and service times.
//! Writes compare.md, index.html, overlay plots, and each run's own files under a/ and b/.

use std::path::PathBuf;

use clap::Args;

use super::output::check_out_dir;
use super::run::default_out_dir;
use super::{
    Allow, EXIT_INVALID, Plan, check_work, exit_code, read_scenario, repro_command, write_files,
};
use crate::pipeline::{self, Executed};
use crate::report::compare::{self, Side};
use crate::report::timeline::Timeline;
use crate::scenario::{self, LoadOptions};

/// Options of `simulate compare`.
#[derive(Args, Debug)]
pub struct CompareArgs {
    /// The scenario file.
    #[arg(value_name = "SCENARIO.toml")]
    scenario: PathBuf,
    /// Master seed of both runs (overrides `simulation.seed` in the file).
    #[arg(long)]
    seed: Option<u64>,
    /// Override one value in run B, e.g. `edge.rate_limiting=false` (repeatable). Run A is the
    /// scenario as written.
    #[arg(long = "set", value_name = "PATH=VALUE", required = true)]
    set: Vec<String>,
    /// Folder for compare.md, index.html, plots/ and the runs' files in a/ and b/
    /// (default: reports/<scenario>/compare-seed-<N>-set-<digest>/).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Write into --out even if it holds files tenantsim did not write.
    #[arg(long, requires = "out")]
    force: bool,
    #[command(flatten)]
    allow: Allow,
    /// Print only the verdicts and the repro command.
    #[arg(long, short)]
    quiet: bool,
}

pub(super) fn compare_command(program: &str, args: &CompareArgs) -> u8 {
    let text = match read_scenario(&args.scenario) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_INVALID;
        }
    };
    let path = args.scenario.display().to_string();
    let options_a = LoadOptions {
        path: path.clone(),
        overrides: Vec::new(),
        seed: args.seed,
        files: super::input::beside(&args.scenario),
    };
    let options_b = LoadOptions {
        path,
        overrides: args.set.clone(),
        seed: args.seed,
        files: super::input::beside(&args.scenario),
    };
    for (options, which) in [
        (&options_a, ""),
        (&options_b, "run B (with the overrides): "),
    ] {
        // Both runs are in memory at once (they run in parallel).
        let plan = Plan {
            at_once: 2,
            ..Plan::ONE
        };
        let checked = scenario::load(&text, options)
            .map_err(|e| format!("{which}{e}"))
            .and_then(|s| check_work(&s, text.len(), plan, args.allow, args.quiet));
        if let Err(e) = checked {
            eprintln!("{e}");
            return EXIT_INVALID;
        }
    }
    if let Some(dir) = &args.out
        && let Err(e) = check_out_dir(dir, args.force)
    {
        eprintln!("{e}");
        return EXIT_INVALID;
    }
    // Two independent runs; each is deterministic, so running them in parallel changes nothing.
    let (a, b) = rayon::join(
        || pipeline::execute(&text, &options_a),
        || pipeline::execute(&text, &options_b),
    );
    let (a, b): (Executed, Executed) = match (a, b) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) => {
            eprintln!("{e}");
            return EXIT_INVALID;
        }
        (_, Err(e)) => {
            eprintln!("run B (with the overrides): {e}");
            return EXIT_INVALID;
        }
    };
    if a.report.seed != b.report.seed {
        eprintln!(
            "error: run B has seed {} and run A seed {}: compare runs both on one seed; \
             choose it with --seed, not --set simulation.seed",
            b.report.seed, a.report.seed
        );
        return EXIT_INVALID;
    }
    // Both runs plot the same tenants: those that failed in either, so an overlay compares
    // like with like.
    let tracked = a.plot_tracking(&[&a, &b]);
    let (series_a, series_b) = rayon::join(|| a.series_for(&tracked), || b.series_for(&tracked));
    let timeline_a = Timeline::new(&a.scenario, &series_a);
    let timeline_b = Timeline::new(&b.scenario, &series_b);
    let side_a = Side {
        report: &a.report,
        timeline: &timeline_a,
    };
    let side_b = Side {
        report: &b.report,
        timeline: &timeline_b,
    };
    let out_dir = args.out.clone().unwrap_or_else(|| {
        let run_dir = default_out_dir(&b.report.scenario, b.report.seed, &b.report.overrides);
        let name = run_dir
            .file_name()
            .map(|n| format!("compare-{}", n.to_string_lossy()))
            .unwrap_or_else(|| "compare".to_string());
        run_dir.with_file_name(name)
    });
    if args.out.is_none()
        && let Err(e) = super::run::check_default_out_dir(&out_dir)
    {
        eprintln!("{e}");
        return EXIT_INVALID;
    }
    let files = compare::files(side_a, side_b);
    let written = match write_files(&out_dir, &files) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_INVALID;
        }
    };
    // List the comparison's own files; each run's files are summarised by folder.
    let mut listed: Vec<String> = files
        .iter()
        .zip(&written)
        .filter(|(f, _)| !f.path.starts_with("a/") && !f.path.starts_with("b/"))
        .map(|(_, w)| w.clone())
        .collect();
    for (run, what) in [("a", "A, as written"), ("b", "B, with the overrides")] {
        listed.push(format!(
            "{}/ (run {what}: report.json, summary.md, junit.xml, index.html, plots)",
            out_dir.join(run).display()
        ));
    }
    let command = repro_command(program, &compare::repro(&b.report));
    if args.quiet {
        println!(
            "{}: A {} → B {} (seed {}) — {}",
            a.report.scenario,
            a.report.verdict.to_uppercase(),
            b.report.verdict.to_uppercase(),
            a.report.seed,
            command
        );
    } else {
        print!("{}", compare::terminal(side_a, side_b, &command, &listed));
    }
    exit_code(b.evaluation.verdict)
}
