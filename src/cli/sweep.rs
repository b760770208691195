//! `simulate sweep` (one scenario over many seeds, in parallel, optionally one shard of them)
//! and `simulate merge` (shards back into the unsharded result).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use rayon::prelude::*;

use super::{
    EXIT_FAIL, EXIT_INCONCLUSIVE, EXIT_INVALID, EXIT_PASS, ScenarioArgs, parse_seeds,
    read_scenario, repro_command, write_atomically,
};
use crate::pipeline::{self, PipelineError};
use crate::report::Invocation;
use crate::report::sweep::{self, Shard, SweepHeader, SweepReport, SweepRun};
use crate::scenario::{self, LoadOptions};
use crate::text::thousands;

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
    /// Folder for sweep.json (default: reports/<scenario>/sweep/, or sweep-shard-I-of-N/).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
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
    /// Folder for the merged sweep.json (default: reports/<scenario>/sweep/).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
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

/// Runs `seeds` of a scenario in parallel and returns their results in seed order. Shows
/// progress on stderr unless `quiet`.
pub(super) fn run_seeds(
    text: &str,
    base: &LoadOptions,
    seeds: &[u64],
    label: &str,
    quiet: bool,
) -> Vec<SweepRun> {
    let done = AtomicU64::new(0);
    let failing = AtomicU64::new(0);
    let finished = AtomicBool::new(false);
    let total = seeds.len() as u64;
    std::thread::scope(|scope| {
        if !quiet {
            scope.spawn(|| progress(label, total, &done, &failing, &finished));
        }
        let runs: Vec<SweepRun> = seeds
            .par_iter()
            .map(|&seed| {
                let options = LoadOptions {
                    seed: Some(seed),
                    ..base.clone()
                };
                let run = match pipeline::execute(text, &options) {
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
                };
                if run.verdict == "fail" || run.verdict == "error" {
                    failing.fetch_add(1, Ordering::Relaxed);
                }
                done.fetch_add(1, Ordering::Relaxed);
                run
            })
            .collect();
        finished.store(true, Ordering::Relaxed);
        runs
    })
}

/// Prints progress to stderr until `finished`: a bar on a terminal, a line every 10 s
/// otherwise.
#[allow(clippy::disallowed_methods)] // ok: progress display reads the wall clock, in the CLI
pub(super) fn progress(
    label: &str,
    total: u64,
    done: &AtomicU64,
    failing: &AtomicU64,
    finished: &AtomicBool,
) {
    let terminal = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut last_line = started;
    loop {
        let stop = finished.load(Ordering::Relaxed);
        let n = done.load(Ordering::Relaxed);
        let elapsed = started.elapsed().as_secs_f64().max(1e-9);
        let rate = n as f64 / elapsed;
        let eta = if rate > 0.0 {
            (total - n) as f64 / rate
        } else {
            0.0
        };
        let line = format!(
            "{label}: {}/{} seeds, {} failing, {rate:.1} seeds/s, eta {eta:.0}s",
            thousands(n),
            thousands(total),
            thousands(failing.load(Ordering::Relaxed))
        );
        if terminal {
            let width = 30;
            let filled = (n * width / total.max(1)) as usize;
            eprint!(
                "\r[{}{}] {line}   ",
                "#".repeat(filled),
                ".".repeat(width as usize - filled)
            );
            if stop {
                eprintln!();
            }
        } else if stop || last_line.elapsed() >= Duration::from_secs(10) {
            eprintln!("{line}");
            last_line = Instant::now();
        }
        if stop {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn load_checked(path: &Path, overrides: &[String]) -> Result<(String, LoadOptions, String), u8> {
    let text = read_scenario(path).map_err(|e| {
        eprintln!("{e}");
        EXIT_INVALID
    })?;
    let options = LoadOptions {
        path: path.display().to_string(),
        overrides: overrides.to_vec(),
        seed: None,
    };
    let loaded = scenario::load(&text, &options).map_err(|e| {
        eprintln!("{e}");
        EXIT_INVALID
    })?;
    Ok((text, options, loaded.name))
}

pub(super) fn sweep_command(program: &str, args: &SweepArgs) -> u8 {
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
    let (text, options, name) = match load_checked(&args.scenario, &args.overrides.set) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let seeds: Vec<u64> = match shard {
        Some(s) => range
            .seeds
            .iter()
            .enumerate()
            .filter(|(i, _)| *i as u64 % s.count == s.index)
            .map(|(_, &seed)| seed)
            .collect(),
        None => range.seeds.clone(),
    };
    let label = match shard {
        Some(s) => format!("{name} shard {}/{}", s.index, s.count),
        None => name.clone(),
    };
    let runs = run_seeds(&text, &options, &seeds, &label, args.quiet);
    let header = SweepHeader {
        scenario: name.clone(),
        scenario_file: options.path.clone(),
        overrides: options.overrides.clone(),
        seed_range: range.text.clone(),
        shard,
    };
    let report = sweep::summarize(&header, runs);
    let out = args.out.clone().unwrap_or_else(|| {
        let folder = match shard {
            Some(s) => format!("sweep-shard-{}-of-{}", s.index, s.count),
            None => "sweep".to_string(),
        };
        PathBuf::from("reports").join(&name).join(folder)
    });
    finish_sweep(program, &report, &out)
}

pub(super) fn finish_sweep(program: &str, report: &SweepReport, out: &Path) -> u8 {
    let path = out.join("sweep.json");
    let json = match serde_json::to_string_pretty(report) {
        Ok(j) => j + "\n",
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_INVALID;
        }
    };
    if let Err(e) = write_atomically(&path, &json) {
        eprintln!("error: cannot write {}: {e}", path.display());
        return EXIT_INVALID;
    }
    print!("{}", render_sweep(program, report));
    println!("wrote {}", path.display());
    sweep_exit_code(report)
}

pub(super) fn sweep_exit_code(report: &SweepReport) -> u8 {
    if !report.failing_seeds.is_empty() {
        EXIT_FAIL
    } else if !report.inconclusive_seeds.is_empty() {
        EXIT_INCONCLUSIVE
    } else {
        EXIT_PASS
    }
}

/// The terminal summary of a sweep: counts, per-SLO failures, failing seeds with repro
/// commands.
fn render_sweep(program: &str, report: &SweepReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let v = &report.violation_rate;
    let _ = writeln!(
        out,
        "{}: {} seeds ({}{}), {} failing, {} inconclusive; violation rate {:.2}% (one-sided 95% upper bound {:.2}%)",
        report.scenario,
        thousands(v.runs),
        report.seed_range,
        report
            .shard
            .map(|s| format!(", shard {}/{}", s.index, s.count))
            .unwrap_or_default(),
        thousands(v.failures),
        thousands(report.inconclusive_seeds.len() as u64),
        v.rate * 100.0,
        v.upper_95 * 100.0
    );
    for f in &report.slo_failures {
        let _ = writeln!(out, "  {:>6} × {}", thousands(f.failures), f.name);
    }
    const LISTED: usize = 20;
    let invocation = Invocation {
        scenario_file: report.scenario_file.clone(),
        overrides: report.overrides.clone(),
        ..Invocation::default()
    };
    for run in report
        .runs
        .iter()
        .filter(|r| r.verdict == "fail" || r.verdict == "error")
        .take(LISTED)
    {
        let why = match &run.error {
            Some(e) => e.lines().next().unwrap_or("").to_string(),
            None => run
                .failed_slos
                .iter()
                .chain(&run.failed_invariants)
                .cloned()
                .collect::<Vec<_>>()
                .join("; "),
        };
        let invocation = match &run.scenario_file {
            // An explored seed has its own scenario file (the scenario plus its drawn faults).
            Some(file) => Invocation {
                scenario_file: file.clone(),
                ..invocation.clone()
            },
            None => invocation.clone(),
        };
        let _ = writeln!(
            out,
            "  seed {}: {why}\n    {}",
            run.seed,
            repro_command(program, &invocation.repro(run.seed))
        );
        for fault in &run.drawn_faults {
            let _ = writeln!(out, "      drew {fault}");
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

fn read_sweep(path: &Path) -> Result<SweepReport, String> {
    let file = if path.is_dir() {
        path.join("sweep.json")
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file)
        .map_err(|e| format!("error: cannot read {}: {e}", file.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| format!("error: {} is not a sweep.json: {e}", file.display()))
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
    match sweep::merge(&shards, &all) {
        Ok(merged) => {
            let out = args.out.clone().unwrap_or_else(|| {
                PathBuf::from("reports")
                    .join(&merged.scenario)
                    .join("sweep")
            });
            finish_sweep("simulate", &merged, &out)
        }
        Err(e) => {
            eprintln!("error: cannot merge: {e}");
            EXIT_INVALID
        }
    }
}
