//! `simulate run`: one scenario, one seed; optionally checked for determinism and traced.

use std::path::PathBuf;

use clap::Args;

use super::output::check_out_dir;
use super::trace::{TraceFormat, TraceWriter};
use super::{
    Allow, EXIT_INVALID, EXIT_NONDETERMINISM, Plan, ScenarioArgs, check_work, exit_code,
    read_scenario, repro_command, write_files,
};
use crate::model::{DIGEST_CHUNK, RecordedEvent, RunOptions};
use crate::pipeline::{self, Executed};
use crate::report::{self, summary};
use crate::scenario::{self, LoadOptions};

/// Options of `simulate run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The scenario file.
    #[arg(value_name = "SCENARIO.toml")]
    scenario: PathBuf,
    /// Master seed (overrides `simulation.seed` in the file).
    #[arg(long)]
    seed: Option<u64>,
    #[command(flatten)]
    overrides: ScenarioArgs,
    /// Folder for report.json, summary.md, junit.xml, index.html and plots/*.svg
    /// (default: reports/<scenario>/seed-<N>/).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Write into --out even if it holds files tenantsim did not write.
    #[arg(long, requires = "out")]
    force: bool,
    #[command(flatten)]
    allow: Allow,
    /// Print only the verdict line and the repro command.
    #[arg(long, short)]
    quiet: bool,
    /// Run twice and compare a digest of the full event sequence; on a difference, report the
    /// first divergent event and exit 3.
    #[arg(long)]
    check_determinism: bool,
    /// Write the event trace: JSON Lines, or a Chrome trace-event file (open it in Perfetto)
    /// when FILE ends in `.json`.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    /// Trace only this tenant.
    #[arg(long, value_name = "NAME", requires = "trace")]
    trace_tenant: Option<String>,
    /// Test hook: make the second run of --check-determinism differ, as a leaked random
    /// source would.
    #[arg(long, hide = true, requires = "check_determinism")]
    plant_nondeterminism: bool,
}

pub(super) fn run_command(program: &str, args: &RunArgs) -> u8 {
    let text = match read_scenario(&args.scenario) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_INVALID;
        }
    };
    let options = LoadOptions {
        path: args.scenario.display().to_string(),
        overrides: args.overrides.set.clone(),
        seed: args.seed,
        files: super::input::beside(&args.scenario),
    };
    // Checked before the run: a refused long run or output folder costs nothing.
    let loaded = match scenario::load(&text, &options) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_INVALID;
        }
    };
    let runs = if args.check_determinism { 2 } else { 1 };
    if let Err(e) = check_work(
        &loaded,
        text.len(),
        Plan::sequential(runs),
        args.allow,
        args.quiet,
    ) {
        eprintln!("{e}");
        return EXIT_INVALID;
    }
    let out_checked = match &args.out {
        Some(dir) => check_out_dir(dir, args.force),
        // The default folder is known once the scenario is: checked now, before the run.
        None => {
            let overrides = &options.overrides;
            let seed = loaded.system.simulation.seed;
            check_default_out_dir(&default_out_dir(&loaded.name, seed, overrides))
        }
    };
    if let Err(e) = out_checked {
        eprintln!("{e}");
        return EXIT_INVALID;
    }
    drop(loaded);
    let mut trace = match &args.trace {
        Some(path) => match open_trace(path, args.trace_tenant.as_deref(), &text, &options) {
            Ok(t) => Some(t),
            Err(code) => return code,
        },
        None => None,
    };
    let executed = {
        let run = RunOptions {
            trace: trace
                .as_mut()
                .map(|t| t as &mut dyn crate::model::trace::TraceSink),
            digest: args.check_determinism,
            ..RunOptions::default()
        };
        match pipeline::execute_with(&text, &options, run) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("{e}");
                return EXIT_INVALID;
            }
        }
    };
    if let Some(t) = trace.take() {
        match t.finish() {
            Ok(summary) => eprintln!("{summary}"),
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_INVALID;
            }
        }
    }
    if args.check_determinism
        && let Err(message) =
            check_determinism(&text, &options, &executed, args.plant_nondeterminism)
    {
        eprintln!("{message}");
        return EXIT_NONDETERMINISM;
    }
    let report = &executed.report;
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| default_out_dir(&report.scenario, report.seed, &report.overrides));
    let written = match write_files(&out_dir, &executed.files()) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_INVALID;
        }
    };
    let command = repro_command(program, &report.repro);
    if args.quiet {
        println!(
            "{}: {} (seed {}) — {}",
            report.scenario,
            report.verdict.to_uppercase(),
            report.seed,
            command
        );
    } else {
        print!("{}", summary::render(report, &command, &written));
    }
    if args.check_determinism {
        eprintln!(
            "determinism: two runs, {} events each, identical event digests and reports",
            executed.output.events
        );
    }
    exit_code(executed.evaluation.verdict)
}

/// Refuses a default output folder (`reports/...`) reached through a link below `reports/` or
/// holding files the tool did not write (see [`super::output::check_default_dir`]).
pub(super) fn check_default_out_dir(dir: &std::path::Path) -> Result<(), String> {
    let below = dir.strip_prefix("reports").unwrap_or(dir);
    super::output::check_default_dir(std::path::Path::new("reports"), below)
}

/// `reports/<scenario>/seed-<N>/`, or `reports/<scenario>/seed-<N>-set-<digest>/` for a run
/// with overrides, so a twin run never overwrites the reports of the scenario as written.
pub(super) fn default_out_dir(scenario: &str, seed: u64, overrides: &[String]) -> PathBuf {
    let folder = if overrides.is_empty() {
        format!("seed-{seed}")
    } else {
        let digest = crate::kernel::rng::fnv1a64(overrides.join("\n").as_bytes());
        format!("seed-{seed}-set-{:08x}", digest >> 32)
    };
    PathBuf::from("reports").join(scenario).join(folder)
}

fn open_trace(
    path: &std::path::Path,
    tenant: Option<&str>,
    text: &str,
    options: &LoadOptions,
) -> Result<TraceWriter, u8> {
    let scenario = scenario::load(text, options).map_err(|e| {
        eprintln!("{e}");
        EXIT_INVALID
    })?;
    let names: Vec<String> = scenario
        .system
        .tenants
        .iter()
        .map(|t| t.name.clone())
        .collect();
    let only = match tenant {
        Some(name) => match names.iter().position(|n| n == name) {
            Some(i) => Some(i as u32),
            None => {
                eprintln!("error: --trace-tenant {name:?}: no such tenant in the scenario");
                return Err(EXIT_INVALID);
            }
        },
        None => None,
    };
    let format = if path.extension().is_some_and(|x| x == "json") {
        TraceFormat::Chrome
    } else {
        TraceFormat::JsonLines
    };
    TraceWriter::create(path, format, names, only).map_err(|e| {
        eprintln!("error: cannot write {}: {e}", path.display());
        EXIT_INVALID
    })
}

/// Runs the scenario a second time and compares event digests and report bytes; on a
/// difference, locates the first divergent event.
fn check_determinism(
    text: &str,
    options: &LoadOptions,
    first: &Executed,
    plant: bool,
) -> Result<(), String> {
    // The planted difference stands for any leak of ambient state into the run.
    let salt = plant.then(wall_clock_salt);
    let second = pipeline::execute_with(
        text,
        options,
        RunOptions {
            digest: true,
            perturb: salt,
            ..RunOptions::default()
        },
    )
    .map_err(|e| format!("nondeterminism check: second run failed: {e}"))?;
    let (a, b) = (&first.output.digest, &second.output.digest);
    let reports_equal = report::to_json(&first.report) == report::to_json(&second.report);
    if a == b && first.output.events == second.output.events && reports_equal {
        return Ok(());
    }
    let chunks_a = a.as_ref().map(|d| d.chunks.as_slice()).unwrap_or_default();
    let chunks_b = b.as_ref().map(|d| d.chunks.as_slice()).unwrap_or_default();
    let Some(chunk) =
        (0..chunks_a.len().max(chunks_b.len())).find(|&i| chunks_a.get(i) != chunks_b.get(i))
    else {
        return Err(
            "nondeterminism detected: identical event sequences but different reports \
                    (the difference is in result collection, not in the events)"
                .to_string(),
        );
    };
    let range = chunk as u64 * DIGEST_CHUNK..(chunk as u64 + 1) * DIGEST_CHUNK;
    let record = |perturb| {
        pipeline::execute_with(
            text,
            options,
            RunOptions {
                record_events: Some(range.clone()),
                perturb,
                ..RunOptions::default()
            },
        )
        .map(|e| e.output.recorded)
        .unwrap_or_default()
    };
    let (events_a, events_b) = (record(None), record(salt));
    let describe = |e: Option<&RecordedEvent>| match e {
        Some(e) => format!("{} {}({})", e.at, e.kind, e.subject),
        None => "no event (the run ended)".to_string(),
    };
    let first_difference = (0..events_a.len().max(events_b.len()))
        .find(|&i| events_a.get(i) != events_b.get(i))
        .unwrap_or(0);
    let index = range.start + first_difference as u64;
    Err(format!(
        "nondeterminism detected: the two runs diverge at event #{index}\n  run 1: {}\n  run 2: {}\n\
         (a run must be a pure function of scenario, overrides, seed and version; look for wall \
         clock, ambient randomness or hash-map iteration in the code path of that event)",
        describe(events_a.get(first_difference)),
        describe(events_b.get(first_difference))
    ))
}

/// A salt from the wall clock: exactly the kind of input a run must never depend on.
fn wall_clock_salt() -> u64 {
    #[allow(clippy::disallowed_methods)] // ok: the CLI plants nondeterminism on purpose
    let now = std::time::SystemTime::now();
    now.duration_since(std::time::UNIX_EPOCH)
        .map_or(0x5eed, |d| d.as_nanos() as u64)
        | 1
}
