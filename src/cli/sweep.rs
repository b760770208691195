//! `simulate sweep` (one scenario over many seeds, in parallel, optionally one shard of them)
//! and `simulate merge` (shards back into the unsharded result).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use clap::Args;
use rayon::prelude::*;

use super::output::check_out_dir;
use super::{
    Allow, EXIT_FAIL, EXIT_INCONCLUSIVE, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_PASS, Plan,
    ScenarioArgs, check_work, parse_seeds, read_scenario, repro_command, write_atomically,
};
use crate::pipeline::{self, PipelineError};
use crate::report::sweep::{self, Shard, ShardFile, SweepHeader, SweepReport, SweepRun};
use crate::scenario::{self, LoadOptions};
use crate::text::{printable, thousands};

/// Options of `simulate sweep`.
#[derive(Args, Debug)]
pub struct SweepArgs {
    /// The scenario file.
    #[arg(value_name = "SCENARIO.toml")]
    scenario: PathBuf,
    /// Seeds to run: `A..B` (B excluded) or `A..=B`.
    #[arg(long, value_name = "A..B")]
    seeds: String,
    /// Run only shard I of N (0-based): the seeds at positions I, I+N, I+2N, ... of the range.
    /// Merge the shards' sweep.json files with `simulate merge`.
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
    #[command(flatten)]
    overrides: ScenarioArgs,
    /// Folder for sweep.json, summary.md and junit.xml (default: reports/<scenario>/sweep/, or
    /// sweep-shard-I-of-N/).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Write into --out even if it holds files tenantsim did not write.
    #[arg(long, requires = "out")]
    force: bool,
    #[command(flatten)]
    allow: Allow,
    /// No progress output.
    #[arg(long, short)]
    quiet: bool,
}

/// Options of `simulate merge`.
#[derive(Args, Debug)]
pub struct MergeArgs {
    /// The shards' output folders (or their sweep.json files).
    #[arg(required = true, value_name = "DIR")]
    shards: Vec<PathBuf>,
    /// Folder for the merged sweep.json, summary.md and junit.xml (default:
    /// reports/<scenario>/sweep/).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Write into --out even if it holds files tenantsim did not write.
    #[arg(long, requires = "out")]
    force: bool,
}

fn parse_shard(text: &str) -> Result<Shard, String> {
    let bad = || format!("--shard {text:?}: expected I/N with 0 <= I < N, such as 0/4");
    let (i, n) = text.split_once('/').ok_or_else(bad)?;
    let index: u64 = i.trim().parse().map_err(|_| bad())?;
    let count: u64 = n.trim().parse().map_err(|_| bad())?;
    if count == 0 || index >= count {
        return Err(bad());
    }
    Ok(Shard { index, count })
}

/// What a batch of seeds produced.
pub(super) struct SeedResults {
    /// Finished runs, in seed order.
    pub runs: Vec<SweepRun>,
    /// Seeds that did not finish because of an interruption.
    pub not_run: u64,
}

enum Message {
    Finished(SweepRun),
    Skipped,
}

/// Runs `seeds` of a scenario in parallel and returns the finished runs in seed order. Shows
/// progress on stderr unless `quiet`.
///
/// With `interruptible`, Ctrl-C (see [`super::interrupt`]) stops the dispatch of new seeds;
/// the running ones finish, unless a second Ctrl-C abandons them. The work runs on a detached
/// thread that reports each seed over a channel, so the caller can stop waiting at any moment
/// and still has every finished run.
pub(super) fn run_seeds(
    text: &str,
    base: &LoadOptions,
    seeds: &[u64],
    label: &str,
    quiet: bool,
    interruptible: bool,
) -> SeedResults {
    let interrupts = || {
        if interruptible {
            super::interrupt::count()
        } else {
            0
        }
    };
    let (sender, receiver) = mpsc::channel();
    let work_text: Arc<str> = Arc::from(text);
    let work_base = base.clone();
    let work_seeds = seeds.to_vec();
    std::thread::spawn(move || {
        work_seeds
            .par_iter()
            .for_each_with(sender, |sender, &seed| {
                if interruptible && super::interrupt::count() > 0 {
                    let _ = sender.send(Message::Skipped);
                    return;
                }
                let _ = sender.send(Message::Finished(run_one(&work_text, &work_base, seed)));
            });
    });
    let total = seeds.len() as u64;
    let mut progress = (!quiet).then(|| Progress::new(label, total));
    let mut runs = Vec::new();
    let (mut skipped, mut failing) = (0u64, 0u64);
    loop {
        match receiver.recv_timeout(Duration::from_millis(100)) {
            Ok(Message::Finished(run)) => {
                if run.verdict == "fail" || run.verdict == "error" {
                    failing += 1;
                }
                runs.push(run);
            }
            Ok(Message::Skipped) => skipped += 1,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        let received = runs.len() as u64 + skipped;
        if let Some(p) = progress.as_mut() {
            p.show(runs.len() as u64, failing, received == total);
        }
        if received == total || interrupts() >= 2 {
            break;
        }
    }
    runs.sort_by_key(|r| r.seed);
    let not_run = total - runs.len() as u64;
    SeedResults { runs, not_run }
}

fn run_one(text: &str, base: &LoadOptions, seed: u64) -> SweepRun {
    let options = LoadOptions {
        seed: Some(seed),
        ..base.clone()
    };
    match pipeline::execute(text, &options) {
        Ok(executed) => SweepRun::from_report(&executed.report),
        Err(e) => SweepRun {
            seed,
            verdict: "error".into(),
            failed_slos: Vec::new(),
            failed_invariants: Vec::new(),
            error: Some(match e {
                PipelineError::Invalid(e) => e.to_string(),
                PipelineError::Budget(e) => e.to_string(),
            }),
            drawn_faults: Vec::new(),
            scenario_file: None,
        },
    }
}

/// Progress on stderr: a bar on a terminal, a line every 10 s otherwise.
pub(super) struct Progress {
    label: String,
    total: u64,
    terminal: bool,
    started: Instant,
    last_draw: Instant,
    /// When the last plain line was printed (`None`: not yet, so the first comes at once and a
    /// log shows the sweep has started).
    last_line: Option<Instant>,
    finished: bool,
}

impl Progress {
    #[allow(clippy::disallowed_methods)] // ok: progress display reads the wall clock, in the CLI
    pub(super) fn new(label: &str, total: u64) -> Progress {
        let now = Instant::now();
        Progress {
            label: label.to_string(),
            total,
            terminal: std::io::stderr().is_terminal(),
            started: now,
            last_draw: now,
            last_line: None,
            finished: false,
        }
    }

    #[allow(clippy::disallowed_methods)] // ok: progress display reads the wall clock, in the CLI
    pub(super) fn show(&mut self, done: u64, failing: u64, stop: bool) {
        if self.finished || (!stop && self.last_draw.elapsed() < Duration::from_millis(200)) {
            return;
        }
        self.last_draw = Instant::now();
        let elapsed = self.started.elapsed().as_secs_f64().max(1e-9);
        let rate = done as f64 / elapsed;
        let eta = if rate > 0.0 {
            self.total.saturating_sub(done) as f64 / rate
        } else {
            0.0
        };
        let line = format!(
            "{}: {}/{} seeds, {} failing, {rate:.1} seeds/s, eta {eta:.0}s",
            self.label,
            thousands(done),
            thousands(self.total),
            thousands(failing)
        );
        if self.terminal {
            let width = 30;
            let filled = ((done * width / self.total.max(1)) as usize).min(width as usize);
            eprint!(
                "\r[{}{}] {line}   ",
                "#".repeat(filled),
                ".".repeat(width as usize - filled)
            );
            if stop {
                eprintln!();
            }
        } else if stop
            || self
                .last_line
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(10))
        {
            eprintln!("{line}");
            self.last_line = Some(Instant::now());
        }
        self.finished = stop;
    }
}

fn load_checked(
    path: &Path,
    overrides: &[String],
) -> Result<(String, LoadOptions, scenario::Scenario), u8> {
    let text = read_scenario(path).map_err(|e| {
        eprintln!("{e}");
        EXIT_INVALID
    })?;
    let options = LoadOptions {
        path: path.display().to_string(),
        overrides: overrides.to_vec(),
        seed: None,
        files: super::input::beside(path),
    };
    let loaded = scenario::load(&text, &options).map_err(|e| {
        eprintln!("{e}");
        EXIT_INVALID
    })?;
    Ok((text, options, loaded))
}

pub(super) fn sweep_command(program: &str, args: &SweepArgs) -> u8 {
    // First, so an early Ctrl-C is already a request to stop rather than a kill.
    if let Err(e) = super::interrupt::install() {
        eprintln!("{e}");
        return EXIT_INVALID;
    }
    let range = match parse_seeds(&args.seeds) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_INVALID;
        }
    };
    let shard = match args.shard.as_deref().map(parse_shard).transpose() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_INVALID;
        }
    };
    let (text, options, loaded) = match load_checked(&args.scenario, &args.overrides.set) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let name = loaded.name.clone();
    let seeds: Vec<u64> = match shard {
        Some(s) => sweep::shard_seeds(&range.seeds, s),
        None => range.seeds.clone(),
    };
    let label = match shard {
        Some(s) => format!("{name} shard {}/{}", s.index, s.count),
        None => name.clone(),
    };
    let plan = Plan::seeds(seeds.len() as u64);
    if let Err(e) = check_work(&loaded, text.len(), plan, args.allow, args.quiet) {
        eprintln!("{e}");
        return EXIT_INVALID;
    }
    let out = match &args.out {
        Some(dir) => match check_out_dir(dir, args.force) {
            Ok(()) => dir.clone(),
            Err(e) => {
                eprintln!("{e}");
                return EXIT_INVALID;
            }
        },
        None => {
            let folder = match shard {
                Some(s) => format!("sweep-shard-{}-of-{}", s.index, s.count),
                None => "sweep".to_string(),
            };
            let dir = PathBuf::from("reports").join(&name).join(folder);
            if let Err(e) = super::run::check_default_out_dir(&dir) {
                eprintln!("{e}");
                return EXIT_INVALID;
            }
            dir
        }
    };
    let results = run_seeds(&text, &options, &seeds, &label, args.quiet, true);
    let header = SweepHeader {
        scenario: name.clone(),
        scenario_file: options.path.clone(),
        scenario_sha256: sweep::text_sha256(&text),
        overrides: options.overrides.clone(),
        seed_range: range.text.clone(),
        shard,
    };
    let mut report = sweep::summarize(&header, results.runs);
    report.interrupted = results.not_run > 0;
    report.not_run = results.not_run;
    finish_sweep(program, &report, &out, "sweep.json")
}

/// Writes `report` to `out/file_name` (`sweep.json`, or `explore.json` for explore), prints
/// its summary and says where it is; returns the exit code. A `sweep.json` (of `sweep` or
/// `merge`) comes with the sweep's `summary.md` and `junit.xml`, written first, so a reader
/// that sees the new `sweep.json` also sees its companions.
pub(super) fn finish_sweep(program: &str, report: &SweepReport, out: &Path, file_name: &str) -> u8 {
    let json = match serde_json::to_string_pretty(report) {
        Ok(j) => j + "\n",
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_INVALID;
        }
    };
    let mut files = Vec::new();
    if file_name == "sweep.json" {
        files.push(("summary.md", sweep::markdown(report)));
        files.push(("junit.xml", sweep::junit(report)));
    }
    files.push((file_name, json));
    let names: Vec<&str> = files.iter().map(|(name, _)| *name).collect();
    let paths = match super::output::check_write_paths(out, &names) {
        Ok(paths) => paths,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_INVALID;
        }
    };
    for ((_, contents), path) in files.iter().zip(&paths) {
        if let Err(e) = write_atomically(path, contents) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return EXIT_INVALID;
        }
    }
    print!("{}", render_sweep(program, report, file_name));
    for (name, _) in &files {
        println!("wrote {}", out.join(name).display());
    }
    sweep_exit_code(report)
}

pub(super) fn sweep_exit_code(report: &SweepReport) -> u8 {
    if report.interrupted {
        EXIT_INTERRUPTED
    } else if !report.failing_seeds.is_empty() {
        EXIT_FAIL
    } else if !report.inconclusive_seeds.is_empty() {
        EXIT_INCONCLUSIVE
    } else {
        EXIT_PASS
    }
}

/// The terminal summary of a sweep: counts, per-SLO failures, failing seeds with repro
/// commands.
fn render_sweep(program: &str, report: &SweepReport, file_name: &str) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let v = &report.violation_rate;
    let _ = writeln!(
        out,
        "{}: {} seeds ({}{}), {} failing, {} inconclusive; violation rate {:.2}% (one-sided 95% upper bound {:.2}%)",
        printable(&report.scenario),
        thousands(v.runs),
        printable(&report.seed_range),
        report
            .shard
            .map(|s| format!(", shard {}/{}", s.index, s.count))
            .unwrap_or_default(),
        thousands(v.failures),
        thousands(report.inconclusive_seeds.len() as u64),
        v.rate * 100.0,
        v.upper_95 * 100.0
    );
    if report.interrupted {
        let _ = writeln!(
            out,
            "  INTERRUPTED: {} of {} seeds finished; {file_name} holds those and is marked \
             \"interrupted\" (exit {EXIT_INTERRUPTED})",
            thousands(report.runs.len() as u64),
            thousands(report.runs.len() as u64 + report.not_run)
        );
    }
    for f in &report.slo_failures {
        let _ = writeln!(
            out,
            "  {:>6} × {}",
            thousands(f.failures),
            printable(&f.name)
        );
    }
    const LISTED: usize = 20;
    for run in report
        .runs
        .iter()
        .filter(|r| r.verdict == "fail" || r.verdict == "error")
        .take(LISTED)
    {
        // An explored seed has its own scenario file (the scenario plus its drawn faults).
        let _ = writeln!(
            out,
            "  seed {}: {}\n    {}",
            run.seed,
            printable(&sweep::failure_reason(run)),
            printable(&repro_command(program, &sweep::repro(report, run)))
        );
        for fault in &run.drawn_faults {
            let _ = writeln!(out, "      drew {}", printable(fault));
        }
    }
    if report.failing_seeds.len() > LISTED {
        let _ = writeln!(
            out,
            "  … and {} more failing seeds (see sweep.json)",
            report.failing_seeds.len() - LISTED
        );
    }
    out
}

/// Reads a shard's sweep.json: a regular file of bounded size, parsed as it is read (a file
/// that is not JSON is refused at its first bytes, however large).
fn read_sweep(path: &Path) -> Result<SweepReport, String> {
    let file = if path.is_dir() {
        path.join("sweep.json")
    } else {
        path.to_path_buf()
    };
    super::input::read_json(&file, &scenario::limits::MAX_SWEEP_BYTES, "a sweep.json")
}

pub(super) fn merge_command(args: &MergeArgs) -> u8 {
    let mut shards = Vec::new();
    for path in &args.shards {
        match read_sweep(path) {
            Ok(s) => shards.push(s),
            Err(e) => {
                eprintln!("{e}");
                return EXIT_INVALID;
            }
        }
    }
    let Some(first) = shards.first() else {
        return EXIT_INVALID;
    };
    let all = match parse_seeds(&first.seed_range) {
        Ok(r) => r.seeds,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_INVALID;
        }
    };
    let files: Vec<String> = args
        .shards
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let named: Vec<ShardFile<'_>> = files
        .iter()
        .zip(&shards)
        .map(|(source, report)| ShardFile { source, report })
        .collect();
    match sweep::merge(&named, &all) {
        Ok(merged) => {
            let out = match &args.out {
                Some(dir) => match check_out_dir(dir, args.force) {
                    Ok(()) => dir.clone(),
                    Err(e) => {
                        eprintln!("{e}");
                        return EXIT_INVALID;
                    }
                },
                // The name comes from a file, not from a validated scenario: it names a folder
                // only if it is a valid scenario name (so it cannot climb out of reports/).
                None if scenario::is_valid_name(&merged.scenario) => {
                    let dir = PathBuf::from("reports")
                        .join(&merged.scenario)
                        .join("sweep");
                    if let Err(e) = super::run::check_default_out_dir(&dir) {
                        eprintln!("{e}");
                        return EXIT_INVALID;
                    }
                    dir
                }
                None => {
                    eprintln!(
                        "error: the shards name the scenario {:?}, which is not a valid scenario \
                         name ([a-z0-9-]); give the output folder with --out",
                        printable(&merged.scenario)
                    );
                    return EXIT_INVALID;
                }
            };
            finish_sweep("simulate", &merged, &out, "sweep.json")
        }
        Err(e) => {
            eprintln!("error: cannot merge: {}", printable(&e.to_string()));
            EXIT_INVALID
        }
    }
}
