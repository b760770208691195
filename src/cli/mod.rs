//! The `simulate` command line: argument parsing, exit codes, file output, progress.
//!
//! This is the only layer that touches files, the terminal or the wall clock.

mod bench;
mod bench_budgets;
mod bench_suites;
mod check;
mod compare;
mod explore;
mod interrupt;
mod output;
mod replay;
mod run;
mod schema;
mod sweep;
mod trace;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::scenario::{self, LoadOptions};
use crate::slo::Status;

/// Every SLO and invariant held.
pub const EXIT_PASS: u8 = 0;
/// An SLO or invariant failed.
pub const EXIT_FAIL: u8 = 1;
/// Invalid scenario, override or usage.
pub const EXIT_INVALID: u8 = 2;
/// Nondeterminism detected.
pub const EXIT_NONDETERMINISM: u8 = 3;
/// An SLO had fewer samples than its `min_samples`.
pub const EXIT_INCONCLUSIVE: u8 = 4;
/// Interrupted (Ctrl-C) before every run finished; the finished runs were written.
pub const EXIT_INTERRUPTED: u8 = 130;

/// Runs whose estimated work is above this many events need `--allow-long`.
pub const LONG_RUN_EVENTS: f64 = 5e10;
/// Runs whose estimated work is above this many events print the estimate first.
pub const SHOW_ESTIMATE_EVENTS: f64 = 1e9;

const EXAMPLES: &str = "\
Examples:
  simulate scenarios/hot-tenant.toml
      Run a scenario: per-tenant summary, SLO verdicts, report in reports/hot-tenant/seed-42/.
  simulate scenarios/hot-tenant.toml --seed 7
      The same scenario with another seed (every run is reproducible from its seed).
  simulate scenarios/hot-tenant.toml --set edge.rate_limiting=false
      Switch the isolation control off (the scenario's failing twin) and see who breaks.
  simulate scenarios/hot-tenant.toml --set tenants.heavy.arrival.rate=500 --out /tmp/run
      Change one value of the scenario; write the report files to /tmp/run/ (report.json,
      summary.md, junit.xml, index.html, plots/*.svg).
  simulate compare scenarios/hot-tenant.toml --set edge.rate_limiting=false
      Policy A/B on one seed (same arrivals and service times): which SLOs flip, how far each
      tier moved; compare.md, index.html and overlay plots. Exit code from run B's verdict.
  simulate check scenarios/ --seeds 1..51
      The CI gate: every scenario on 50 seeds; exit 1 if any SLO fails.
  simulate check scenarios/ --write-reports
      Regenerate the reference reports in reports/<scenario>/seed-<N>/ (run from the repo root).
  simulate sweep scenarios/hot-tenant.toml --seeds 1..1001 --out sweeps/hot
      1,000 seeds in parallel; failing seeds with repro commands; sweeps/hot/sweep.json.
  simulate explore scenarios/retry-storm.toml --seeds 1..101
      Swarm testing: each seed draws faults from the [explore] table; failing seeds are listed
      with their schedule and a scenario file of their own.
  simulate shrink reports/retry-storm/explore/seed-7.toml --seed 7
      Minimise a failing run (drop faults and tenants, shorten and weaken what is left) while
      the same SLO still fails; writes a minimal scenario file.
  simulate replay reports/hot-tenant/seed-42/report.json
      Rerun exactly what produced a report and check it reproduces byte for byte.
  simulate validate scenarios/
      Check scenario files without running them.
  simulate schema > tenantsim.schema.json
      The JSON Schema of the scenario format, for editor completion and validation.

Exit codes:
  0  every SLO and invariant held      1  an SLO or invariant failed
  2  invalid scenario, override, usage 3  nondeterminism detected
  4  inconclusive: an SLO had fewer samples than its min_samples
  130  interrupted (Ctrl-C on a sweep): the finished seeds are in sweep.json
  (compare: 0, 1 or 4 by run B's verdict; 2 if either run is invalid)
Runs estimated above 50,000,000,000 events need --allow-long; --out into a folder
that holds files tenantsim did not write needs --force.";

/// Deterministic simulator and chaos harness for multi-tenant SaaS architectures.
///
/// Runs a scenario file (tenants, tiers, cells, databases, faults and isolation SLOs) under a
/// seeded virtual clock and reports, per tenant, whether the SLOs held. `simulate FILE` is
/// short for `simulate run FILE`.
#[derive(Parser, Debug)]
#[command(name = "simulate", version, after_long_help = EXAMPLES, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one scenario and judge its SLOs (the default command).
    Run(run::RunArgs),
    /// The CI gate: run scenarios (files or folders), one line each, exit with the worst code.
    Check(check::CheckArgs),
    /// Policy A/B on one seed: the scenario as written (A) and with --set overrides (B); which
    /// SLOs flip, how far each tier moved. Exit 0 / 1 / 4 by B's verdict.
    Compare(compare::CompareArgs),
    /// Run one scenario over many seeds in parallel; write sweep.json.
    Sweep(sweep::SweepArgs),
    /// Combine the sweep.json files of a sharded sweep into the unsharded result.
    Merge(sweep::MergeArgs),
    /// Swarm testing: each seed draws its own fault schedule from the `[explore]` table.
    Explore(explore::ExploreArgs),
    /// Shrink a failing run to a minimal scenario that still fails the same SLO.
    Shrink(explore::ShrinkArgs),
    /// Rerun exactly what produced a report.json and check the result is byte-identical.
    Replay(replay::ReplayArgs),
    /// Parse and check scenario files (or every .toml in a folder); run nothing.
    Validate {
        /// Scenario files or folders.
        #[arg(required = true, value_name = "FILE|DIR")]
        paths: Vec<PathBuf>,
    },
    /// Measure speed against the SimPy peer, a minimal loop and the budgets (with --gate, exit
    /// 1 if one is missed).
    Bench(bench::BenchArgs),
    /// Print the JSON Schema of the scenario format (for editors and other tools).
    Schema(schema::SchemaArgs),
}

/// Options shared by commands that load a scenario.
#[derive(Args, Debug, Clone, Default)]
struct ScenarioArgs {
    /// Override one scenario value before validation, e.g. `edge.rate_limiting=false` or
    /// `tenants.heavy.arrival.rate=500` (array elements by name). VALUE is TOML, else a string.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    set: Vec<String>,
}

const SUBCOMMANDS: [&str; 12] = [
    "explore", "shrink", "run", "check", "compare", "sweep", "merge", "replay", "validate",
    "bench", "schema", "help",
];

/// Inserts `run` when the first argument is a scenario rather than a subcommand, so
/// `simulate FILE` works as `simulate run FILE`.
fn with_default_subcommand(mut args: Vec<String>) -> Vec<String> {
    let Some(first) = args.get(1) else {
        return args;
    };
    let is_global_flag = matches!(first.as_str(), "-h" | "--help" | "-V" | "--version");
    if !SUBCOMMANDS.contains(&first.as_str()) && !is_global_flag {
        args.insert(1, "run".to_string());
    }
    args
}

/// Entry point of the `simulate` binary.
pub fn main() -> ExitCode {
    let args = with_default_subcommand(std::env::args().collect());
    let program = args.first().cloned().unwrap_or_else(|| "simulate".into());
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                EXIT_INVALID
            } else {
                EXIT_PASS
            });
        }
    };
    let code = match cli.command {
        Command::Run(args) => run::run_command(&program, &args),
        Command::Check(args) => check::check_command(&program, &args),
        Command::Compare(args) => compare::compare_command(&program, &args),
        Command::Sweep(args) => sweep::sweep_command(&program, &args),
        Command::Merge(args) => sweep::merge_command(&args),
        Command::Explore(args) => explore::explore_command(&program, &args),
        Command::Shrink(args) => explore::shrink_command(&program, &args),
        Command::Replay(args) => replay::replay_command(&args),
        Command::Validate { paths } => validate_command(&paths),
        Command::Bench(args) => bench::bench_command(&args),
        Command::Schema(args) => schema::schema_command(&args),
    };
    ExitCode::from(code)
}

/// Reads a scenario file, refusing anything larger than the limit before reading it all (so
/// `simulate /dev/zero` fails at once instead of filling memory).
fn read_scenario(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let cannot = |e: std::io::Error| {
        format!(
            "error: cannot read {}: {e}{}",
            path.display(),
            did_you_mean_scenario(path, &e)
        )
    };
    let limit = scenario::MAX_SCENARIO_BYTES;
    let file = fs::File::open(path).map_err(cannot)?;
    let mut bytes = Vec::new();
    file.take(limit.max_int() + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > limit.max_int() {
        return Err(format!(
            "error: {}:1:1: the file is too large: {}",
            path.display(),
            limit.exceeded(format!("more than {} bytes", limit.max_int()))
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let text = String::from_utf8_lossy(&e.into_bytes()[..offset]).into_owned();
        let (line, col) = scenario::tree::line_col(&text, offset);
        format!(
            "error: {}:{line}:{col}: the file is not UTF-8 text (invalid byte at offset {offset})",
            path.display()
        )
    })
}

/// For a scenario path that does not exist, `; did you mean scenarios/NAME.toml?` when that file
/// (or `NAME.toml`) exists: `simulate acmedocs` names the shipped drill, not a file.
fn did_you_mean_scenario(path: &Path, error: &std::io::Error) -> String {
    if error.kind() != std::io::ErrorKind::NotFound {
        return String::new();
    }
    let Some(stem) = path.file_stem().map(|s| s.to_string_lossy().into_owned()) else {
        return String::new();
    };
    let file = format!("{stem}.toml");
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    let candidates = [
        parent.map_or_else(|| PathBuf::from(&file), |p| p.join(&file)),
        parent
            .map_or_else(|| PathBuf::from("scenarios"), |p| p.join("scenarios"))
            .join(&file),
    ];
    candidates
        .iter()
        .find(|c| c.as_path() != path && c.is_file())
        .map(|c| format!("; did you mean {}?", c.display()))
        .unwrap_or_default()
}

/// Prints the work estimate of `runs` runs of `scenario` before a long command, and refuses
/// one above [`LONG_RUN_EVENTS`] unless `allow_long`.
fn check_work(
    scenario: &scenario::Scenario,
    runs: u64,
    allow_long: bool,
    quiet: bool,
) -> Result<(), String> {
    let per_run = crate::model::estimated_events(&scenario.system);
    let budget = scenario.system.simulation.max_events.map(|m| m as f64);
    // A run cannot do more than its event budget, whatever the estimate says.
    let per_run = budget.map_or(per_run, |b| per_run.min(b));
    let total = per_run * runs as f64;
    let show = |x: f64| {
        if x >= 1e18 {
            format!("{x:.3e}")
        } else {
            crate::text::thousands(x.ceil() as u64)
        }
    };
    if total > LONG_RUN_EVENTS && !allow_long {
        return Err(format!(
            "error: {}: estimated work is up to {} events{}, above the long-run threshold of {} \
             events; pass --allow-long to run it anyway, or shorten `simulation.duration`, lower \
             rates or set `simulation.max_events`",
            scenario.name,
            show(total),
            if runs > 1 {
                format!(
                    " ({} runs of {})",
                    crate::text::thousands(runs),
                    show(per_run)
                )
            } else {
                String::new()
            },
            show(LONG_RUN_EVENTS)
        ));
    }
    if total > SHOW_ESTIMATE_EVENTS && !quiet {
        eprintln!(
            "{}: estimated work up to {} events{} (an upper bound: every attempt retried and timed out)",
            scenario.name,
            show(total),
            if runs > 1 {
                format!(" over {} runs", crate::text::thousands(runs))
            } else {
                String::new()
            }
        );
    }
    Ok(())
}

fn exit_code(status: Status) -> u8 {
    match status {
        Status::Passed => EXIT_PASS,
        Status::Failed => EXIT_FAIL,
        Status::Inconclusive => EXIT_INCONCLUSIVE,
    }
}

/// How bad an exit code is, for "exit with the worst code": invalid input and nondeterminism
/// outrank a failed SLO, which outranks an inconclusive one.
fn severity(code: u8) -> u8 {
    match code {
        EXIT_PASS => 0,
        EXIT_INCONCLUSIVE => 1,
        EXIT_FAIL => 2,
        EXIT_NONDETERMINISM => 3,
        _ => 4,
    }
}

/// The command that reproduces a run, with the program as the user invoked it.
fn repro_command(program: &str, canonical: &str) -> String {
    match canonical.strip_prefix("simulate") {
        Some(rest) => format!("{}{rest}", crate::report::shell_quote(program)),
        None => canonical.to_string(),
    }
}

/// Writes `contents` to `path` through a temporary file and a rename, so a reader never sees
/// a half-written file.
pub fn write_atomically(path: &Path, contents: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        fs::create_dir_all(dir)?;
    }
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(contents.as_bytes())?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path)
}

/// Writes a run's files into `dir` (each atomically) and removes plots a previous run left there
/// that this one did not draw (e.g. `backlog.svg` once jobs are gone). Returns the paths written.
fn write_files(dir: &Path, files: &[crate::report::OutputFile]) -> Result<Vec<String>, String> {
    let mut written = Vec::new();
    for file in files {
        let path = output::inside(dir, &file.path)?;
        write_atomically(&path, &file.contents)
            .map_err(|e| format!("error: cannot write {}: {e}", path.display()))?;
        written.push(path.display().to_string());
    }
    let mut folders: Vec<&str> = files
        .iter()
        .filter_map(|f| f.path.rsplit_once('/').map(|(d, _)| d))
        .filter(|d| d.ends_with("plots"))
        .collect();
    folders.dedup();
    for folder in folders {
        for name in crate::report::plots::FILE_NAMES {
            let relative = format!("{folder}/{name}");
            if !files.iter().any(|f| f.path == relative) {
                let stale = relative
                    .split('/')
                    .fold(dir.to_path_buf(), |p, part| p.join(part));
                if stale.is_file() {
                    fs::remove_file(&stale)
                        .map_err(|e| format!("error: cannot remove {}: {e}", stale.display()))?;
                }
            }
        }
    }
    Ok(written)
}

/// The scenario files named by `paths`: files as given, folders' `.toml` files sorted.
fn scenario_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = fs::read_dir(path)
                .map_err(|e| format!("error: cannot read folder {}: {e}", path.display()))?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// A seed range: `A..B` (B excluded, as in Rust) or `A..=B`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct SeedRange {
    text: String,
    seeds: Vec<u64>,
}

/// Most seeds one command runs.
const MAX_SEEDS: u64 = 10_000_000;

fn parse_seeds(text: &str) -> Result<SeedRange, String> {
    let bad = || {
        format!("--seeds {text:?}: expected A..B (B excluded) or A..=B with A < B, such as 1..101")
    };
    let (start, end) = if let Some((a, b)) = text.split_once("..=") {
        let b: u64 = b.trim().parse().map_err(|_| bad())?;
        (
            a.trim().parse::<u64>().map_err(|_| bad())?,
            b.checked_add(1).ok_or_else(bad)?,
        )
    } else if let Some((a, b)) = text.split_once("..") {
        (
            a.trim().parse::<u64>().map_err(|_| bad())?,
            b.trim().parse::<u64>().map_err(|_| bad())?,
        )
    } else {
        return Err(bad());
    };
    if start >= end {
        return Err(bad());
    }
    if end - start > MAX_SEEDS {
        return Err(format!(
            "--seeds {text:?} is {} seeds; the limit is {MAX_SEEDS} per command (split the range)",
            end - start
        ));
    }
    Ok(SeedRange {
        text: text.to_string(),
        seeds: (start..end).collect(),
    })
}

fn validate_command(paths: &[PathBuf]) -> u8 {
    let files = match scenario_files(paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_INVALID;
        }
    };
    if files.is_empty() {
        eprintln!("error: no .toml scenario files found");
        return EXIT_INVALID;
    }
    let mut invalid = 0;
    for file in &files {
        let loaded = read_scenario(file).and_then(|text| {
            let options = LoadOptions {
                path: file.display().to_string(),
                ..LoadOptions::default()
            };
            scenario::load(&text, &options).map_err(|e| e.to_string())
        });
        match loaded {
            Ok(s) => println!(
                "ok       {}  ({} tenants, {} cells, {} faults, {} SLOs; work up to {} events)",
                file.display(),
                s.system.tenants.len(),
                s.system.cells.len(),
                s.system.faults.len(),
                s.slos.len(),
                crate::text::thousands(crate::model::estimated_events(&s.system).ceil() as u64)
            ),
            Err(e) => {
                invalid += 1;
                println!("invalid  {}", file.display());
                eprintln!("{e}");
            }
        }
    }
    if invalid > 0 {
        eprintln!("{invalid} of {} scenario file(s) invalid", files.len());
        EXIT_INVALID
    } else {
        EXIT_PASS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_ranges() {
        assert_eq!(parse_seeds("1..4").map(|r| r.seeds), Ok(vec![1, 2, 3]));
        assert_eq!(parse_seeds("1..=3").map(|r| r.seeds), Ok(vec![1, 2, 3]));
        assert!(parse_seeds("3..3").is_err());
        assert!(parse_seeds("5..1").is_err());
        assert!(parse_seeds("a..b").is_err());
        assert!(parse_seeds("7").is_err());
        assert!(parse_seeds("0..100000000").is_err());
    }
}
