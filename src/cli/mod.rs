//! The `simulate` command line: argument parsing, exit codes, file output, progress.
//!
//! This is the only layer that touches files, the terminal or the wall clock.

// First: its `print!` family replaces std's (which panics on a closed pipe) in every module
// below.
#[macro_use]
mod stdio;

mod bench;
mod bench_budgets;
mod bench_peers;
mod bench_suites;
mod check;
mod compare;
mod explore;
mod host_load;
pub mod input;
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
/// Commands whose estimated memory is above this many bytes print the estimate first.
pub const SHOW_ESTIMATE_BYTES: f64 = 1024.0 * 1024.0 * 1024.0;

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
Runs estimated above 50,000,000,000 events need --allow-long, above 8 GiB of memory
--allow-large; --out into a folder that holds files tenantsim did not write needs --force.
Input files must be regular files (no FIFOs, devices or pipes); a closed output pipe
(`| head`) ends the output quietly with the command's own exit code.";

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
    /// Run one scenario over many seeds in parallel; write sweep.json, summary.md and
    /// junit.xml (one test case per seed, failing seeds with their repro commands). Uses every
    /// core, or RAYON_NUM_THREADS=N threads; the files do not depend on the thread count.
    /// Exit 0 all passed, 1 a seed failed, 4 inconclusive, 130 interrupted (Ctrl-C).
    Sweep(sweep::SweepArgs),
    /// Combine the shards of a sweep (`sweep --shard I/N`, in any order) into exactly the files
    /// one unsharded sweep writes. Refuses (exit 2, naming the file or shard) shards of
    /// different sweeps (scenario text, file, --set, --seeds, version, shard count), duplicate
    /// or missing shards, interrupted or edited ones. Exit code as for sweep.
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

/// The flags that lift the work and memory thresholds of a command.
#[derive(Args, Debug, Clone, Copy, Default)]
struct Allow {
    /// Run even when the estimated work is above the long-run threshold.
    #[arg(long)]
    allow_long: bool,
    /// Run even when the estimated memory is above the large-run threshold (8 GiB), or the
    /// report.json would be too large for `simulate replay` to read back.
    #[arg(long)]
    allow_large: bool,
}

/// How a command runs a scenario, for its work and memory estimates.
#[derive(Clone, Copy, Debug)]
struct Plan {
    /// Runs in all.
    runs: u64,
    /// Runs in memory at once.
    at_once: u64,
    /// Per-seed records kept (a sweep's or an exploration's seeds).
    seed_records: u64,
    /// The work of all runs, when each run's differs (an exploration's seeds draw their own
    /// faults); else the scenario's estimate times `runs`.
    events: Option<f64>,
}

impl Plan {
    /// One run.
    const ONE: Plan = Plan {
        runs: 1,
        at_once: 1,
        seed_records: 0,
        events: None,
    };

    /// `runs` runs one after the other (a determinism check, a shrink).
    fn sequential(runs: u64) -> Plan {
        Plan {
            runs,
            at_once: 1,
            seed_records: 0,
            events: None,
        }
    }

    /// `seeds` runs in parallel on the thread pool, each leaving a record.
    fn seeds(seeds: u64) -> Plan {
        Plan {
            runs: seeds,
            at_once: seeds.min(rayon::current_num_threads().max(1) as u64),
            seed_records: seeds,
            events: None,
        }
    }
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
            // clap's own printing reports failures instead of panicking: `--help | head` is
            // a broken pipe like any other (quiet), `--help > /dev/full` an error.
            let code = if e.use_stderr() {
                EXIT_INVALID
            } else {
                EXIT_PASS
            };
            return ExitCode::from(match e.print() {
                Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
                    eprintln!("error: cannot write to standard output: {error}");
                    EXIT_INVALID
                }
                _ => code,
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
    ExitCode::from(stdio::finish(code))
}

/// Reads a scenario file: a regular file only (a FIFO or a device is refused before it is
/// read), refused before reading it all when it is larger than the limit.
fn read_scenario(path: &Path) -> Result<String, String> {
    let bytes = input::read_capped(path, &scenario::MAX_SCENARIO_BYTES)
        .map_err(|e| format!("{e}{}", did_you_mean_scenario(path)))?;
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
fn did_you_mean_scenario(path: &Path) -> String {
    if path.exists() {
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

/// `x` events for people: grouped digits, or scientific notation when enormous.
fn events_text(x: f64) -> String {
    if x >= 1e18 {
        format!("{x:.3e}")
    } else {
        crate::text::thousands(x.ceil() as u64)
    }
}

/// The memory of `plan` for `scenario` (text of `text_bytes`): the runs in memory at once,
/// and the seeds' records.
fn plan_memory(
    scenario: &scenario::Scenario,
    text_bytes: usize,
    plan: Plan,
) -> (f64, scenario::memory::MemoryEstimate) {
    let run = scenario::memory::of_run(scenario, text_bytes);
    let records = plan.seed_records as f64 * scenario::memory::per_seed_bytes(scenario);
    (run.total() * plan.at_once as f64 + records, run)
}

/// Prints the work and memory estimates of `plan` before a long or large command, and refuses
/// one above [`LONG_RUN_EVENTS`] unless `--allow-long`, or above the memory threshold (or with
/// a report.json too large for `replay`) unless `--allow-large`, naming what drives it.
fn check_work(
    scenario: &scenario::Scenario,
    text_bytes: usize,
    plan: Plan,
    allow: Allow,
    quiet: bool,
) -> Result<(), String> {
    use scenario::memory::{self, MEMORY_THRESHOLD_BYTES, bytes_text};
    let runs = plan.runs;
    let per_run = crate::model::estimated_events(&scenario.system);
    // MMPP state switches are work but not events: no event budget bounds them.
    let switches = crate::model::estimated_switches(&scenario.system);
    let budget = scenario.system.simulation.max_events.map(|m| m as f64);
    // A run cannot do more than its event budget, whatever the estimate says.
    let per_run = budget.map_or(per_run, |b| (per_run - switches).min(b) + switches);
    let total = plan.events.unwrap_or(per_run * runs as f64);
    let per_run = plan.events.map_or(per_run, |t| t / runs.max(1) as f64);
    let show = events_text;
    if total > LONG_RUN_EVENTS && !allow.allow_long {
        return Err(format!(
            "error: {}: estimated work is up to {} events{}, above the long-run threshold of {} \
             events; pass --allow-long to run it anyway, or {}",
            scenario.name,
            show(total),
            if runs > 1 {
                format!(
                    " ({} runs of {}{})",
                    crate::text::thousands(runs),
                    if plan.events.is_some() {
                        "on average "
                    } else {
                        ""
                    },
                    show(per_run)
                )
            } else {
                String::new()
            },
            show(LONG_RUN_EVENTS),
            if switches * 2.0 > per_run {
                format!(
                    "lengthen the MMPP `sojourns` (their state switches are {} of it, and \
                     `simulation.max_events` does not bound them) or shorten \
                     `simulation.duration`",
                    show(switches)
                )
            } else {
                "shorten `simulation.duration`, lower rates or set `simulation.max_events`"
                    .to_string()
            }
        ));
    }
    let (bytes, run) = plan_memory(scenario, text_bytes, plan);
    if !allow.allow_large {
        let largest = run.largest().map_or(String::new(), |p| {
            format!(
                "; the largest part is {} ({}: {})",
                p.what,
                bytes_text(p.bytes),
                p.driver
            )
        });
        if bytes > MEMORY_THRESHOLD_BYTES {
            return Err(format!(
                "error: {}: estimated memory is up to {}{}{largest}, above the large-run \
                 threshold of {}; pass --allow-large to run it anyway (on a machine with the \
                 memory), or make that part smaller",
                scenario.name,
                bytes_text(bytes),
                if plan.at_once > 1 || plan.seed_records > 0 {
                    format!(
                        " ({} runs at once of {}, and {} seed records)",
                        plan.at_once,
                        bytes_text(run.total()),
                        crate::text::thousands(plan.seed_records)
                    )
                } else {
                    String::new()
                },
                bytes_text(MEMORY_THRESHOLD_BYTES)
            ));
        }
        let report = memory::report_json_bytes(scenario, text_bytes);
        let limit = scenario::limits::MAX_REPORT_BYTES;
        if report > limit.max {
            return Err(format!(
                "error: {}: its report.json could be up to {}, above the {} `simulate replay` \
                 reads ({}); pass --allow-large to run it anyway, or judge fewer tenants or \
                 expectations",
                scenario.name,
                bytes_text(report),
                bytes_text(limit.max),
                limit.name
            ));
        }
    }
    if !quiet && (total > SHOW_ESTIMATE_EVENTS || bytes > SHOW_ESTIMATE_BYTES) {
        eprintln!(
            "{}: estimated work up to {} events{}, memory up to {} (upper bounds: every attempt \
             retried and timed out, every queue full)",
            scenario.name,
            show(total),
            if runs > 1 {
                format!(" over {} runs", crate::text::thousands(runs))
            } else {
                String::new()
            },
            bytes_text(bytes)
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

/// The temporary file an atomic write of `path` goes through: `.NAME.tmp-PID` beside it.
fn temporary_for(path: &Path) -> PathBuf {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()))
}

/// Writes `contents` to the temporary file of `path` (created new, so nothing already there,
/// a planted link included, is followed), not yet flushed to disk: the caller syncs the file
/// it gets back (see [`sync_staged`]). Removes it again if the write fails, so a full disk
/// leaves no temporary files behind.
fn stage(path: &Path, contents: &str) -> std::io::Result<(PathBuf, fs::File)> {
    let tmp = temporary_for(path);
    let create = || {
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
    };
    let mut file = match create() {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // A leftover of an earlier process with this id: a file or a link, never followed.
            fs::remove_file(&tmp)?;
            create()?
        }
        Err(e) => return Err(e),
    };
    if let Err(e) = file.write_all(contents.as_bytes()) {
        drop(file);
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok((tmp, file))
}

/// Flushes staged files to disk, all at once: one thread per file, so that their flushes
/// share the file system's journal commits instead of waiting for one each in turn (a run's
/// eight report files took 20 ms one after another, about 6 % of hot-tenant-full's whole
/// process). A file whose thread cannot be started is flushed here. The result per file, in
/// order.
fn sync_staged(files: &[&fs::File]) -> Vec<std::io::Result<()>> {
    std::thread::scope(|scope| {
        let started: Vec<_> = files
            .iter()
            .map(|&file| {
                std::thread::Builder::new()
                    .name("sync".into())
                    .spawn_scoped(scope, move || file.sync_all())
                    .map_err(|_| file)
            })
            .collect();
        started
            .into_iter()
            .map(|thread| match thread {
                Ok(handle) => handle
                    .join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("the flush panicked"))),
                Err(file) => file.sync_all(),
            })
            .collect()
    })
}

/// Refuses to replace anything at `path` that is not a regular file: a symbolic link (which
/// the rename would replace, as `--out /dev/stdout` would replace the system's link), a
/// device, a FIFO, a folder.
fn check_replaceable(path: &Path) -> std::io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if !m.is_file() => Err(std::io::Error::other(format!(
            "it exists and is {}, not a regular file; tenantsim only replaces regular files",
            input::kind_of(m.file_type())
        ))),
        _ => Ok(()),
    }
}

/// Why `dir` cannot be a folder to write into: the nearest part of it that exists (`dir`
/// itself or an ancestor, links followed as `create_dir_all` follows them) and what it is
/// instead of a folder. `None` when that part is a folder (what is missing below it can be
/// made) or nothing of `dir` can be read (the write will say why).
pub fn not_a_folder(dir: &Path) -> Option<(&Path, &'static str)> {
    let (existing, meta) = dir
        .ancestors()
        .filter(|a| !a.as_os_str().is_empty())
        .find_map(|a| fs::metadata(a).ok().map(|m| (a, m)))?;
    (!meta.is_dir()).then(|| (existing, input::kind_of(meta.file_type())))
}

/// Writes `contents` to `path` through a temporary file and a rename, so a reader never sees
/// a half-written file. Refuses to replace anything but a regular file.
pub fn write_atomically(path: &Path, contents: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        // create_dir_all on a path through a file or a device fails with "File exists", which
        // says nothing of what is wrong: say which part is not a folder.
        fs::create_dir_all(dir).map_err(|e| match not_a_folder(dir) {
            Some((part, kind)) => std::io::Error::new(
                e.kind(),
                format!("{} is {kind}, not a folder", part.display()),
            ),
            None => e,
        })?;
    }
    check_replaceable(path)?;
    let (tmp, file) = stage(path, contents)?;
    if let Err(e) = file.sync_all() {
        drop(file);
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    drop(file);
    fs::rename(&tmp, path).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

/// Writes a run's files into `dir` and removes plots a previous run left there that this one
/// did not draw (e.g. `backlog.svg` once jobs are gone). Returns the paths written.
///
/// Nothing is written through a link or over a special file (checked first, for every file).
/// Every file is written to its temporary file before any is renamed into place, so a failed
/// write (a full disk) leaves the previous run's files as they were, not a mix of two runs;
/// the renames that follow are quick, but a reader at that moment can see some files new and
/// some old. Temporary files of earlier interrupted writes are removed.
fn write_files(dir: &Path, files: &[crate::report::OutputFile]) -> Result<Vec<String>, String> {
    let relative: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    let paths = output::check_write_paths(dir, &relative)?;
    let mut staged: Vec<(PathBuf, &PathBuf, fs::File)> = Vec::with_capacity(files.len());
    let remove_staged = |staged: Vec<(PathBuf, &PathBuf, fs::File)>| {
        for (tmp, _, file) in staged {
            drop(file);
            let _ = fs::remove_file(tmp);
        }
    };
    for (file, path) in files.iter().zip(&paths) {
        let made = path
            .parent()
            .map_or(Ok(()), fs::create_dir_all)
            .and_then(|()| stage(path, &file.contents));
        match made {
            Ok((tmp, handle)) => staged.push((tmp, path, handle)),
            Err(e) => {
                remove_staged(staged);
                return Err(format!("error: cannot write {}: {e}", path.display()));
            }
        }
    }
    let handles: Vec<&fs::File> = staged.iter().map(|(_, _, file)| file).collect();
    let failed = sync_staged(&handles)
        .into_iter()
        .zip(&staged)
        .find_map(|(synced, (_, path, _))| synced.err().map(|e| (path.display().to_string(), e)));
    if let Some((path, e)) = failed {
        remove_staged(staged);
        return Err(format!("error: cannot write {path}: {e}"));
    }
    let staged: Vec<(PathBuf, &PathBuf)> = staged
        .into_iter()
        .map(|(tmp, path, file)| {
            drop(file);
            (tmp, path)
        })
        .collect();
    let mut written = Vec::new();
    for (tmp, path) in &staged {
        fs::rename(tmp, path)
            .map_err(|e| format!("error: cannot write {}: {e}", path.display()))?;
        written.push(path.display().to_string());
    }
    remove_leftover_temporaries(&paths);
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
                let stale = output::inside(dir, &relative)?;
                // Only a regular file of ours: never a link's target.
                if fs::symlink_metadata(&stale).is_ok_and(|m| m.is_file()) {
                    fs::remove_file(&stale)
                        .map_err(|e| format!("error: cannot remove {}: {e}", stale.display()))?;
                }
            }
        }
    }
    Ok(written)
}

/// Removes the `.NAME.tmp-PID` files other (interrupted) processes left beside `paths`.
fn remove_leftover_temporaries(paths: &[PathBuf]) {
    let mut folders: Vec<&Path> = paths.iter().filter_map(|p| p.parent()).collect();
    folders.sort();
    folders.dedup();
    for folder in folders {
        let Ok(entries) = fs::read_dir(folder) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let ours = paths.iter().any(|p| {
                p.parent() == Some(folder)
                    && p.file_name().is_some_and(|n| {
                        name.starts_with(&format!(".{}.tmp-", n.to_string_lossy()))
                    })
            });
            if ours && entry.file_type().is_ok_and(|t| t.is_file()) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
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
    let number = |s: &str| s.trim().parse::<u64>().map_err(|_| bad());
    // The last seed, inclusive: `A..=u64::MAX` is a valid range, `A..B` ends at B - 1.
    let (first, last) = if let Some((a, b)) = text.split_once("..=") {
        (number(a)?, number(b)?)
    } else if let Some((a, b)) = text.split_once("..") {
        let (a, b) = (number(a)?, number(b)?);
        if b == 0 {
            return Err(bad());
        }
        (a, b - 1)
    } else {
        return Err(bad());
    };
    if first > last {
        return Err(bad());
    }
    let count = u128::from(last - first) + 1;
    if count > u128::from(MAX_SEEDS) {
        return Err(format!(
            "--seeds {text:?} is {count} seeds; the limit is {MAX_SEEDS} per command (split the range)"
        ));
    }
    Ok(SeedRange {
        text: text.to_string(),
        seeds: (first..=last).collect(),
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
                files: input::beside(file),
                ..LoadOptions::default()
            };
            scenario::load(&text, &options)
                .map(|s| (s, text.len()))
                .map_err(|e| e.to_string())
        });
        match loaded {
            Ok((s, text_bytes)) => {
                let memory = scenario::memory::of_run(&s, text_bytes);
                println!(
                    "ok       {}  ({} tenants, {} cells, {} faults, {} SLOs; work up to {} \
                     events, memory up to {})",
                    file.display(),
                    s.system.tenants.len(),
                    s.system.cells.len(),
                    s.system.faults.len(),
                    s.slos.len(),
                    events_text(crate::model::estimated_events(&s.system)),
                    scenario::memory::bytes_text(memory.total())
                );
                // Valid, but a run needs a flag: say so now, with what drives it.
                if let Err(e) = check_work(&s, text_bytes, Plan::ONE, Allow::default(), true) {
                    println!(
                        "         note: a run needs a flag: {}",
                        e.trim_start_matches("error: ")
                    );
                }
            }
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
        // The last seed is a valid seed.
        let last = u64::MAX;
        assert_eq!(
            parse_seeds(&format!("{}..={last}", last - 2)).map(|r| r.seeds),
            Ok(vec![last - 2, last - 1, last])
        );
        assert_eq!(
            parse_seeds(&format!("{last}..={last}")).map(|r| r.seeds),
            Ok(vec![last])
        );
        assert!(parse_seeds(&format!("0..={last}")).is_err());
        assert!(parse_seeds("0..0").is_err() && parse_seeds("3..=2").is_err());
    }
}
