//! `simulate explore` (swarm testing: each seed draws its own fault schedule from the
//! scenario's `[explore]` table) and `simulate shrink` (minimise a failing run while the same
//! SLO still fails).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use clap::Args;
use rayon::prelude::*;

use super::output::check_out_dir;
use super::sweep::{Progress, finish_sweep};
use super::{
    Allow, EXIT_INVALID, EXIT_PASS, Plan, ScenarioArgs, check_work, parse_seeds, read_scenario,
    write_atomically,
};
use crate::pipeline::{self, PipelineError};
use crate::report::shell_quote;
use crate::report::sweep::{self, SweepHeader, SweepRun};
use crate::scenario::explore;
use crate::scenario::shrink::{self, ShrinkError};
use crate::scenario::{self, LoadOptions};

/// Options of `simulate explore`.
#[derive(Args, Debug)]
pub struct ExploreArgs {
    /// The scenario file; it must have an `[explore]` table.
    #[arg(value_name = "SCENARIO.toml")]
    scenario: PathBuf,
    /// Seeds to run: `A..B` (B excluded) or `A..=B`; each draws its own faults.
    #[arg(long, value_name = "A..B")]
    seeds: String,
    #[command(flatten)]
    overrides: ScenarioArgs,
    /// Folder for explore.json and the failing seeds' scenario files (default:
    /// reports/<scenario>/explore/).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Write into --out even if it holds files this tool did not write.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    allow: Allow,
    /// No progress output.
    #[arg(long, short)]
    quiet: bool,
}

/// Options of `simulate shrink`.
#[derive(Args, Debug)]
pub struct ShrinkArgs {
    /// A failing scenario (written, or a seed file from `simulate explore`).
    #[arg(value_name = "SCENARIO.toml")]
    scenario: PathBuf,
    /// The failing seed.
    #[arg(long)]
    seed: u64,
    /// The SLO (or invariant) that must keep failing (default: the first that fails).
    #[arg(long, value_name = "NAME")]
    slo: Option<String>,
    #[command(flatten)]
    overrides: ScenarioArgs,
    /// Where to write the minimal scenario (default: reports/<scenario>/seed-<N>-shrunk.toml).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Most candidate runs to try.
    #[arg(long, default_value_t = 400)]
    max_runs: u32,
    #[command(flatten)]
    allow: Allow,
}

pub(super) fn explore_command(program: &str, args: &ExploreArgs) -> u8 {
    let range = match parse_seeds(&args.seeds) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_INVALID;
        }
    };
    let text = match read_scenario(&args.scenario) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_INVALID;
        }
    };
    let base = LoadOptions {
        path: args.scenario.display().to_string(),
        overrides: args.overrides.set.clone(),
        seed: None,
        files: super::input::beside(&args.scenario),
    };
    let loaded = match scenario::load(&text, &base) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_INVALID;
        }
    };
    let Some(spec) = loaded.explore.clone() else {
        eprintln!(
            "error: {} has no [explore] table: add one to say which faults seeds may draw \
             (see `simulate explore --help` and docs/scenarios.md)",
            args.scenario.display()
        );
        return EXIT_INVALID;
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("reports").join(&loaded.name).join("explore"));
    // Each seed draws its own faults: its work is estimated with them (a drawn spike of 10^9
    // is not the base scenario's work), all seeds before any runs.
    let plan = Plan {
        events: Some(explored_events(&spec, &loaded, &range.seeds)),
        ..Plan::seeds(range.seeds.len() as u64)
    };
    let out_checked = match &args.out {
        Some(dir) => check_out_dir(dir, args.force),
        None => super::run::check_default_out_dir(&out),
    };
    if let Err(e) = check_work(&loaded, text.len(), plan, args.allow, args.quiet).and(out_checked) {
        eprintln!("{e}");
        return EXIT_INVALID;
    }
    let done = AtomicU64::new(0);
    let failing = AtomicU64::new(0);
    let finished = AtomicBool::new(false);
    let write_error: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
    let total = range.seeds.len() as u64;
    let runs: Vec<SweepRun> = std::thread::scope(|scope| {
        if !args.quiet {
            scope.spawn(|| {
                let mut shown = Progress::new(&loaded.name, total);
                loop {
                    let stop = finished.load(Ordering::Relaxed);
                    shown.show(
                        done.load(Ordering::Relaxed),
                        failing.load(Ordering::Relaxed),
                        stop,
                    );
                    if stop {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            });
        }
        let runs = range
            .seeds
            .par_iter()
            .map(|&seed| {
                let drawn = explore::draw(&spec, &loaded.system, seed);
                let seed_text = format!("{text}{}", explore::render(&drawn, seed));
                let options = LoadOptions {
                    seed: Some(seed),
                    ..base.clone()
                };
                let mut run = match pipeline::execute(&seed_text, &options) {
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
                run.drawn_faults = drawn.iter().map(explore::describe).collect();
                let failed = run.verdict == "fail" || run.verdict == "error";
                if failed {
                    failing.fetch_add(1, Ordering::Relaxed);
                    // Written now, not kept: a long exploration must not hold every failing
                    // seed's scenario text in memory.
                    let file = out.join(format!("seed-{seed}.toml"));
                    match write_seed_file(&file, &seed_text) {
                        Ok(true) => run.scenario_file = Some(file.display().to_string()),
                        Ok(false) => {}
                        Err(e) => {
                            let mut first = write_error
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner);
                            first.get_or_insert(e);
                        }
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
                run
            })
            .collect();
        finished.store(true, Ordering::Relaxed);
        runs
    });
    if let Some(e) = write_error
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        eprintln!("{e}");
        return EXIT_INVALID;
    }
    let header = SweepHeader {
        scenario: loaded.name.clone(),
        scenario_file: base.path.clone(),
        scenario_sha256: sweep::text_sha256(&text),
        overrides: base.overrides.clone(),
        seed_range: range.text.clone(),
        shard: None,
    };
    let report = sweep::summarize(&header, runs);
    finish_sweep(program, &report, &out, "explore.json")
}

/// The work of exploring `seeds`: each seed's estimate with the load spikes it draws (the
/// other kinds add no arrivals; their retries are in the estimate already), within the
/// scenario's event budget.
fn explored_events(spec: &explore::ExploreSpec, loaded: &scenario::Scenario, seeds: &[u64]) -> f64 {
    let system = &loaded.system;
    let index = crate::model::spikes::SpikeIndex::new(system);
    let base = crate::model::estimated_events(system);
    // MMPP state switches are work no event budget bounds.
    let switches = crate::model::estimated_switches(system);
    let budget = system
        .simulation
        .max_events
        .map_or(f64::INFINITY, |m| m as f64);
    let end = system.end();
    seeds
        .par_iter()
        .map(|&seed| {
            let extra: Vec<(usize, crate::model::spikes::Spike)> =
                explore::draw(spec, system, seed)
                    .iter()
                    .filter_map(|f| {
                        let (tenant, multiplier) = f.spike?;
                        let at = crate::time::SimTime::ZERO + f.at;
                        Some((tenant, (at, (at + f.duration).min(end), multiplier)))
                    })
                    .collect();
            (crate::model::estimated_events_with(system, &index, base, &extra) - switches)
                .min(budget)
                + switches
        })
        .sum()
}

/// Writes a failing seed's scenario file; refuses to replace a `seed-N.toml` that exploration
/// did not write (it says so and leaves it alone: `Ok(false)`).
fn write_seed_file(file: &std::path::Path, text: &str) -> Result<bool, String> {
    if file.exists() && !super::output::is_explored_seed_file(file) {
        eprintln!(
            "warning: {} exists and was not written by `simulate explore`; left alone (the \
             seed's scenario is not saved)",
            file.display()
        );
        return Ok(false);
    }
    write_atomically(file, text)
        .map(|()| true)
        .map_err(|e| format!("error: cannot write {}: {e}", file.display()))
}

pub(super) fn shrink_command(program: &str, args: &ShrinkArgs) -> u8 {
    #[allow(clippy::disallowed_methods)] // ok: the CLI reports how long the shrink took
    let started = Instant::now();
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
        seed: Some(args.seed),
        files: super::input::beside(&args.scenario),
    };
    // Shrinking runs the scenario up to --max-runs times (smaller each time).
    if let Err(e) = scenario::load(&text, &options)
        .map_err(|e| e.to_string())
        .and_then(|s| {
            let plan = Plan::sequential(u64::from(args.max_runs));
            check_work(&s, text.len(), plan, args.allow, false)
        })
    {
        eprintln!("{e}");
        return EXIT_INVALID;
    }
    let original = match pipeline::execute(&text, &options) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_INVALID;
        }
    };
    let failing: Vec<String> = original
        .report
        .slos
        .iter()
        .filter(|s| s.status == "fail")
        .map(|s| s.name.clone())
        .chain(
            original
                .report
                .invariants
                .iter()
                .filter(|i| !i.passed)
                .map(|i| i.name.clone()),
        )
        .collect();
    let target = match &args.slo {
        Some(name) if failing.contains(name) => name.clone(),
        Some(name) => {
            eprintln!(
                "error: seed {} of {} does not fail {name:?} (it fails: {})",
                args.seed,
                args.scenario.display(),
                if failing.is_empty() {
                    "nothing".to_string()
                } else {
                    failing.join("; ")
                }
            );
            return EXIT_INVALID;
        }
        None => match failing.first() {
            Some(name) => name.clone(),
            None => {
                eprintln!(
                    "error: seed {} of {} passes: nothing to shrink",
                    args.seed,
                    args.scenario.display()
                );
                return EXIT_INVALID;
            }
        },
    };
    let name = original.report.scenario.clone();
    eprintln!("shrink: keeping {target:?} failing for seed {}", args.seed);
    // The seed is baked in, so the minimal file runs on its own, where a file can hold it: TOML
    // integers stop at i64::MAX, while `--seed` takes any u64 (the file's header and the
    // Reproduce line name it either way, and every candidate runs with it).
    let mut overrides = args.overrides.set.clone();
    if i64::try_from(args.seed).is_ok() {
        overrides.push(format!("simulation.seed={}", args.seed));
    }
    let mut runs_done = 0u32;
    let oracle = |candidate: &str| {
        runs_done += 1;
        let options = LoadOptions {
            path: "candidate.toml".into(),
            overrides: Vec::new(),
            seed: Some(args.seed),
            // A candidate is the scenario cut down: its tables sit beside the original.
            files: super::input::beside(&args.scenario),
        };
        let fails = pipeline::execute(candidate, &options).is_ok_and(|e| {
            e.report
                .slos
                .iter()
                .any(|s| s.name == target && s.status == "fail")
                || e.report
                    .invariants
                    .iter()
                    .any(|i| i.name == target && !i.passed)
        });
        eprint!("{}", if fails { "+" } else { "." });
        fails
    };
    let shrunk = match shrink::shrink(&text, &overrides, args.max_runs, oracle) {
        Ok(s) => s,
        Err(ShrinkError::Invalid(e)) => {
            eprintln!("\nerror: {e}");
            return EXIT_INVALID;
        }
        Err(ShrinkError::DoesNotFail) => {
            eprintln!("\nerror: the scenario with its overrides does not fail {target:?}");
            return EXIT_INVALID;
        }
    };
    eprintln!();
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("reports")
            .join(&name)
            .join(format!("seed-{}-shrunk.toml", args.seed))
    });
    // The default file's folder, reports/<scenario>, must not be a link elsewhere (the file
    // itself, like any --out FILE, must be a regular file or absent: see write_atomically).
    if args.out.is_none()
        && let Err(e) = super::output::check_no_links(
            std::path::Path::new("reports"),
            std::path::Path::new(&name),
        )
    {
        eprintln!("\n{e}");
        return EXIT_INVALID;
    }
    let header = format!(
        "# Shrunk by `simulate shrink` from {} --seed {}{} in {} runs ({} changes kept).\n\
         # Still fails: {target}.\n# Run it: simulate {} --seed {}\n{}",
        args.scenario.display(),
        args.seed,
        args.overrides
            .set
            .iter()
            .map(|o| format!(" --set {}", shell_quote(o)))
            .collect::<String>(),
        shrunk.runs,
        shrunk.steps.len(),
        out.display(),
        args.seed,
        if i64::try_from(args.seed).is_ok() {
            ""
        } else {
            "# (Only with --seed: a TOML integer cannot hold this seed, so the file's own \
             `simulation.seed` is not it.)\n"
        }
    );
    // The shrunk file lives elsewhere: the tables and logs it names, relative to the original
    // scenario, are rewritten relative to it.
    let text = relocate_inputs(
        &shrunk.text,
        &original.scenario.inputs,
        &args.scenario,
        &out,
    );
    if let Err(e) = write_atomically(&out, &format!("{header}\n{text}")) {
        eprintln!("error: cannot write {}: {e}", out.display());
        return EXIT_INVALID;
    }
    for step in &shrunk.steps {
        println!("  kept: {step}");
    }
    let count = |key: &str, text: &str| text.matches(&format!("[[{key}]]")).count();
    println!(
        "shrunk {name} seed {} in {} runs ({:.1}s): faults {} -> {}, tenant groups {} -> {}; {target:?} still fails",
        args.seed,
        shrunk.runs,
        started.elapsed().as_secs_f64(),
        original.scenario.system.faults.len(),
        count("faults", &shrunk.text),
        original.scenario.system.groups.len(),
        count("tenants", &shrunk.text),
    );
    println!("wrote {}", out.display());
    println!(
        "Reproduce: {} {} --seed {}",
        shell_quote(program),
        shell_quote(&out.display().to_string()),
        args.seed
    );
    EXIT_PASS
}

/// `text` (a scenario as `shrink` writes it) with each input file's key set to the file's path
/// as seen from `out`'s folder (relative when both folders resolve, else absolute), so a
/// scenario written away from `scenario` still finds its tables and log. Keys the shrunk text
/// no longer has (a removed tenant group) are skipped.
fn relocate_inputs(
    text: &str,
    inputs: &[scenario::inputs::InputFile],
    scenario: &std::path::Path,
    out: &std::path::Path,
) -> String {
    use crate::scenario::tree;
    if inputs.is_empty() {
        return text.to_string();
    }
    let Ok(mut root) = tree::parse_document(text) else {
        return text.to_string();
    };
    let folder = |p: &std::path::Path| {
        let parent = p.parent().unwrap_or(std::path::Path::new(""));
        let parent = if parent.as_os_str().is_empty() {
            std::path::Path::new(".")
        } else {
            parent
        };
        let _ = std::fs::create_dir_all(parent);
        std::fs::canonicalize(parent).ok()
    };
    let (Some(from), Some(to)) = (folder(scenario), folder(out)) else {
        return text.to_string();
    };
    for input in inputs {
        let file = from.join(&input.path);
        let moved = relative_path(&to, &file).unwrap_or(file);
        let value = toml::Value::String(moved.display().to_string()).to_string();
        let _ = tree::apply_override(&mut root, &input.key, tree::parse_override_value(&value, 0));
    }
    tree::to_toml(&root)
}

/// `target` as a path relative to the folder `base` (both absolute), through `..` as needed.
fn relative_path(base: &std::path::Path, target: &std::path::Path) -> Option<PathBuf> {
    use std::path::Component;
    if !base.is_absolute() || !target.is_absolute() {
        return None;
    }
    let base: Vec<Component<'_>> = base.components().collect();
    let target: Vec<Component<'_>> = target.components().collect();
    let common = base.iter().zip(&target).take_while(|(a, b)| a == b).count();
    let mut relative = PathBuf::new();
    for _ in common..base.len() {
        relative.push("..");
    }
    for component in &target[common..] {
        relative.push(component.as_os_str());
    }
    Some(relative)
}
