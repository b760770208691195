//! `simulate bench`: speed of the full pipeline on the reference M/M/c model, measured side by
//! side with the minimal hand-written loop and the SimPy peer in the same run, and its accuracy
//! against Erlang C; other suites (event list, scale, sweeps, AcmeDocs) in `bench_suites.rs`,
//! the configurations users write, each beside its own SimPy peer, in `bench_peers.rs`.
//!
//! Wall-clock timing is the point of this command, so it is the one place that reads
//! `Instant::now` (the CLI layer is allowed to).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};

use super::bench_budgets::{Bound, Scorecard};
use super::{
    EXIT_FAIL, EXIT_INVALID, EXIT_PASS, bench_peers, bench_suites, host_load, read_scenario,
};
use crate::analytic::MMc;
use crate::model::dist::Dist;
use crate::model::metrics::WindowStats;
use crate::model::{self, RunOptions};
use crate::pipeline;
use crate::report;
use crate::report::summary::thousands;
use crate::scenario::limits::MAX_TENANTS;
use crate::scenario::{LoadOptions, MAX_DURATION};
use crate::time::SimDuration;

/// The reference model, the one the kernel's budgets are stated on.
const REFERENCE_SCENARIO: &str = "benches/mmc-reference.toml";
/// Requests a reference run needs for its figures to be judged against the budgets (the
/// default `--requests`).
const BUDGET_REQUESTS: u64 = 1_000_000;

/// What `simulate bench` measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Suite {
    /// The reference M/M/c model: full pipeline vs the minimal loop vs SimPy; Erlang C.
    Reference,
    /// benches/mmc-full.toml (the reference with admission, a bounded queue and client
    /// timeouts on) beside its SimPy peer, in process and as whole processes.
    MmcFull,
    /// benches/hot-tenant-full.toml (limiter, caps, database pool, timeouts, retries, a 10x
    /// spike) beside its SimPy peer.
    HotTenantFull,
    /// benches/bulkhead.toml (two classes in two pools, a cache lookup, a dependency call)
    /// beside its SimPy peer.
    Bulkhead,
    /// The event list against std's BinaryHeap at 1e3, 1e5, 1e6 pending events.
    Queue,
    /// The full SaaS model at 1,000 / 10,000 / 100,000 tenants (same total load).
    Scale,
    /// Seed sweep of scenarios/hot-tenant.toml on one thread and on all: parallel efficiency.
    Sweep,
    /// scenarios/acmedocs.toml (12,000 tenants, 10 minutes) with every report file.
    Acmedocs,
    /// Every suite above.
    All,
}

/// Options of `simulate bench`.
#[derive(Args, Debug)]
#[command(after_help = "EXAMPLES:
  simulate bench                       reference model: full pipeline vs minimal loop vs SimPy
  simulate bench --no-peer             the same without Python
  simulate bench mmc-full hot-tenant-full bulkhead
                                       the configurations users write, each beside its
                                       SimPy peer (benches/peers/), whole process and in process
  simulate bench scale                 1,000 / 10,000 / 100,000 tenants, medians of 3 rounds (~30 s)
  simulate bench scale --repeat 5      more rounds, for a noisy machine
  simulate bench scale --tenants 100000 --scale-duration 60
  simulate bench all --no-peer         every suite (a few minutes)

The run ends with a table of the budgets in ARCHITECTURE.md that it measured, each judged
only in the configuration it is stated for: the shipped reference scenario over at least
1,000,000 requests; 1,000 / 10,000 / 100,000 tenants over 60 s at 20,000 requests/s; sweeps
of at least 8 seeds, a multiple of the thread count; mmc-full over at least 1,000,000
requests; hot-tenant-full as written. Before it, a line says how much of the machine's CPU
time other processes and the hypervisor (steal) took during the bench (/proc/stat): above 5 %
or 2 % the figures were measured beside other work.
EXIT: 0 measured (with --gate: and every budget met); 1 with --gate, a budget was missed;
2 a suite could not be measured, or an option is out of its range (refused before anything
runs, naming the option and the limit).")]
pub struct BenchArgs {
    /// Suites to run.
    #[arg(value_enum, default_values_t = [Suite::Reference])]
    suites: Vec<Suite>,
    /// Requests to simulate (the run length is set so the scenario issues about this many,
    /// and must be longer than its warmup and at most 168h, the limit on simulated time: from
    /// 10,001 to 604,800,000 for the reference scenario).
    #[arg(long, default_value_t = BUDGET_REQUESTS, value_parser = clap::value_parser!(u64).range(1..))]
    requests: u64,
    /// Reference scenario (one cell, exponential service, no database).
    #[arg(long, default_value = REFERENCE_SCENARIO)]
    scenario: PathBuf,
    /// Timed runs of our simulator (`reference`), alternating rounds of both event lists at
    /// every size (`queue`), rounds over every tenant count (`scale`), or bracketed rounds of
    /// 1-thread and n-thread seed sweeps (`sweep`); the median is reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
    /// Python with simpy 4.1.2 installed. Default: .venv/bin/python if it has simpy, else a
    /// virtual environment created in target/peer-venv from `python3`. SimPy's speed depends
    /// on the interpreter: CPython 3.11 and later run it about 1.5x faster than 3.10.
    #[arg(long, value_name = "PATH")]
    python: Option<PathBuf>,
    /// Skip the SimPy peer.
    #[arg(long)]
    no_peer: bool,
    /// Number of SimPy runs (N), of `--requests / N` requests each (at least 20,000: the peer
    /// skips its first 10 simulated seconds), every one between two groups of timed runs of
    /// ours (three each in the suites beside their SimPy peer); the speed-up is the median of
    /// these bracketed ratios, so a change in the machine's speed during SimPy's runs, which
    /// take seconds, hits both sides alike.
    #[arg(long, default_value_t = 3, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    peer_rounds: u32,
    /// Tenant counts for `scale` (comma-separated; each at least 100, the generated
    /// scenario's smallest: 95 small, 4 mid-market and 1 enterprise tenant; at most
    /// 1,000,000, the limit on tenants per scenario).
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000", value_parser = tenant_count)]
    tenants: Vec<u64>,
    /// Simulated seconds of each `scale` run (more than the generated scenario's 1 s warmup,
    /// at most 604,800: 168h, the limit on simulated time).
    #[arg(long, default_value_t = bench_suites::SCALE_DURATION_SECS, value_parser = scale_seconds)]
    scale_duration: u64,
    /// Requests per second, all tenants together, in `scale` runs (1 to 100,000,000, and
    /// such that no generated tenant's rate is above 1,000,000 requests/s, the limit per
    /// tenant, or below the 0.000001 a generated file can write: at most 3,333,333 with 100
    /// tenants, at least 2.375 with 1,000,000).
    #[arg(long, default_value_t = bench_suites::SCALE_RATE, value_parser = positive_rate)]
    scale_rate: f64,
    /// Also write each generated `scale` scenario to DIR/saas-<tenants>.toml, to run or read.
    #[arg(long, value_name = "DIR")]
    write_scenarios: Option<PathBuf>,
    /// Seeds in the `sweep` suite.
    #[arg(long, default_value_t = bench_suites::SWEEP_SEEDS, value_parser = clap::value_parser!(u64).range(1..))]
    sweep_seeds: u64,
    /// Exit 1 when a budget in the closing table was missed (for scripts that gate on speed;
    /// on a shared or noisy machine, give `--repeat` rounds enough to steady the medians).
    #[arg(long)]
    gate: bool,
}

/// Runs the chosen suites in a fixed order, then prints the budgets they measured; exit 2 if
/// a suite could not be measured, else, with `--gate`, 1 if a budget was missed.
pub fn bench_command(args: &BenchArgs) -> u8 {
    let wants = |suite: Suite| args.suites.contains(&suite) || args.suites.contains(&Suite::All);
    let machine_at_start = host_load::sample();
    // Options every chosen suite needs are checked before any suite runs, so a bad one is
    // reported before minutes of other suites rather than after, and as the option the user
    // gave, not as the generated scenario or override it would have become.
    if let Err(message) = check_options(args, &wants) {
        eprintln!("{message}");
        return EXIT_INVALID;
    }
    // The reference scenario is checked first, so a bad `--requests` or `--scenario` is
    // reported before minutes of other suites rather than after.
    let reference = if wants(Suite::Reference) {
        match prepare_reference(args) {
            Ok(run) => Some(run),
            Err(message) => {
                eprintln!("{message}");
                return EXIT_INVALID;
            }
        }
    } else {
        None
    };
    let mut card = Scorecard::default();
    let mut measured = Vec::new();
    if let Some(reference) = reference {
        reset_peak_rss();
        measured.push(reference_suite(args, reference, &mut card) == EXIT_PASS);
    }
    let peer_suites = [
        (Suite::MmcFull, &bench_peers::MMC_FULL),
        (Suite::HotTenantFull, &bench_peers::HOT_TENANT_FULL),
        (Suite::Bulkhead, &bench_peers::BULKHEAD),
    ];
    if peer_suites.iter().any(|(suite, _)| wants(*suite)) {
        // One interpreter for every peer suite, found (or its venv made) once.
        let python = (!args.no_peer).then(|| {
            find_python(args).map(|path| {
                let version = python_version(&path);
                (path, version)
            })
        });
        let options = bench_peers::PeerOptions {
            requests: args.requests,
            repeat: args.repeat,
            peer_rounds: args.peer_rounds,
            python: python.as_ref(),
            out_root: Path::new("target/bench-out"),
        };
        for (suite, spec) in peer_suites {
            if wants(suite) {
                println!();
                measured.push(bench_peers::peer_suite(spec, &options, &mut card));
            }
        }
    }
    if wants(Suite::Queue) {
        reset_peak_rss();
        println!();
        bench_suites::queue_suite(&[16, 1_000, 100_000, 1_000_000], args.repeat);
    }
    if wants(Suite::Scale) {
        reset_peak_rss();
        println!();
        measured.push(bench_suites::scale_suite(
            &bench_suites::ScaleConfig {
                tenant_counts: &args.tenants,
                duration_secs: args.scale_duration,
                total_rate: args.scale_rate,
                write_to: args.write_scenarios.as_deref(),
                rounds: args.repeat,
            },
            &mut card,
        ));
    }
    if wants(Suite::Sweep) {
        reset_peak_rss();
        println!();
        measured.push(bench_suites::sweep_suite(
            "scenarios/hot-tenant.toml",
            args.sweep_seeds,
            args.repeat,
            &mut card,
        ));
    }
    if wants(Suite::Acmedocs) {
        reset_peak_rss();
        println!();
        measured.push(bench_suites::acmedocs_suite(
            "scenarios/acmedocs.toml",
            &mut card,
        ));
    }
    println!();
    if let Some(load) = machine_at_start
        .zip(host_load::sample())
        .and_then(|(start, end)| host_load::between(start, end))
    {
        println!("{}", host_load::describe(load));
        println!();
    }
    print!("{}", card.render());
    if !measured.iter().all(|ok| *ok) {
        EXIT_INVALID
    } else if args.gate && !card.all_met() {
        EXIT_FAIL
    } else {
        EXIT_PASS
    }
}

/// The options of the chosen suites other than the reference's (`prepare_reference` checks
/// those): the `scale` options together (the generated scenario must load), `--requests`
/// against each scaled peer suite's scenario, and `--write-scenarios`.
fn check_options(args: &BenchArgs, wants: &dyn Fn(Suite) -> bool) -> Result<(), String> {
    if wants(Suite::Scale) {
        bench_suites::check_scale(&args.tenants, args.scale_rate)?;
        if let Some(dir) = &args.write_scenarios
            && let Some((part, kind)) = super::not_a_folder(dir)
        {
            let what = if part == dir.as_path() {
                format!("it exists and is {kind}")
            } else {
                format!("{} is {kind}", part.display())
            };
            return Err(format!(
                "error: --write-scenarios {}: {what}, not a folder; expected a folder (made if \
                 missing)",
                dir.display()
            ));
        }
    }
    for (suite, spec) in [
        (Suite::MmcFull, &bench_peers::MMC_FULL),
        (Suite::Bulkhead, &bench_peers::BULKHEAD),
        (Suite::HotTenantFull, &bench_peers::HOT_TENANT_FULL),
    ] {
        if wants(suite) {
            bench_peers::check_requests(spec, args.requests)?;
        }
    }
    Ok(())
}

/// Whole simulated seconds in which a scenario whose tenants issue `total_rate` requests per
/// second issues about `requests` (at least one second), or why `--requests` cannot set the
/// length of `scenario`: a run is at most [`MAX_DURATION`] long, so `--requests` is at most
/// that many seconds of the scenario's rate; and a scenario without a rate (a replayed log)
/// has none to set its length from. Without this check the length would reach the user as
/// an error in the `simulation.duration` override the bench makes of it.
pub(super) fn run_seconds(requests: u64, total_rate: f64, scenario: &str) -> Result<u64, String> {
    if !(total_rate > 0.0 && total_rate.is_finite()) {
        return Err(format!(
            "error: --requests: {scenario} has no steady arrival rate to set the run's length \
             from (its tenants' `arrival.rate` sum to {total_rate}); expected a scenario whose \
             tenants arrive at a rate"
        ));
    }
    let longest = MAX_DURATION.as_nanos() / SimDuration::from_secs(1).as_nanos();
    // Saturating: a rate so high that the bound passes u64::MAX bounds nothing.
    let most = (longest as f64 * total_rate).floor() as u64;
    if requests > most {
        return Err(format!(
            "error: --requests: at most {} for {scenario}, found {} (at its {total_rate} \
             requests/s, more requests need a run longer than {MAX_DURATION}, the limit on \
             simulated time, MAX_DURATION)",
            thousands(most),
            thousands(requests)
        ));
    }
    // Within the bound the quotient is at most `longest` but for rounding, which the clamp
    // absorbs; below it, the run is as long as it always was.
    Ok(((requests as f64 / total_rate).ceil() as u64).clamp(1, longest))
}

/// The reference scenario, loaded and checked before any suite runs.
struct ReferenceRun {
    text: String,
    scenario: crate::scenario::Scenario,
    /// Requests per second of all its tenants together.
    total_rate: f64,
    /// Simulated seconds that issue about `--requests` requests.
    seconds: u64,
    /// Load options that set the run to `seconds`.
    options: LoadOptions,
}

/// Reads and loads `--scenario` and sets its length from `--requests`; an error (unreadable,
/// invalid, or a run no longer than the scenario's warmup) is the message to print.
fn prepare_reference(args: &BenchArgs) -> Result<ReferenceRun, String> {
    let text = read_scenario(&args.scenario).map_err(|e| e.to_string())?;
    let base = LoadOptions {
        path: args.scenario.display().to_string(),
        files: super::input::beside(&args.scenario),
        ..LoadOptions::default()
    };
    let scenario = crate::scenario::load(&text, &base).map_err(|e| e.to_string())?;
    let total_rate: f64 = scenario.system.tenants.iter().map(|t| t.arrival.rate).sum();
    let seconds = run_seconds(
        args.requests,
        total_rate,
        &args.scenario.display().to_string(),
    )?;
    let warmup = scenario.system.simulation.warmup;
    if SimDuration::from_secs(seconds) <= warmup {
        // The run lasts whole seconds: it outlasts the warmup once it has one second more
        // than the warmup's whole seconds.
        let fewest = (warmup.as_secs_f64().floor() * total_rate).floor() as u64 + 1;
        return Err(format!(
            "error: --requests {}: {} requests at {total_rate} requests/s take {seconds} \
             simulated seconds, not longer than the scenario's {warmup} warmup; expected at \
             least {} requests",
            args.requests,
            thousands(args.requests),
            thousands(fewest)
        ));
    }
    let options = LoadOptions {
        overrides: vec![format!("simulation.duration=\"{seconds}s\"")],
        ..base
    };
    // The scenario at that length, loaded now so what it refuses (a fault after the shorter
    // end) is reported before any run, and as what `--requests` did, not as an override the
    // user never wrote.
    if let Err(e) = crate::scenario::load(&text, &options) {
        return Err(format!(
            "error: --requests {}: it sets {}'s run to {seconds} simulated seconds, which the \
             scenario does not accept:\n{e}",
            args.requests,
            args.scenario.display()
        ));
    }
    Ok(ReferenceRun {
        text,
        scenario,
        total_rate,
        seconds,
        options,
    })
}

/// The reference model: our pipeline and the minimal loop, interleaved; then the peer, each of
/// its runs between two more of ours.
fn reference_suite(args: &BenchArgs, reference: ReferenceRun, card: &mut Scorecard) -> u8 {
    let ReferenceRun {
        text,
        scenario,
        total_rate,
        seconds,
        options,
    } = reference;
    let workers = scenario.system.cells.first().map_or(1, |c| c.api.workers);

    eprintln!(
        "bench: {} for {seconds} simulated seconds (~{} requests), {} timed run(s){}",
        args.scenario.display(),
        thousands(args.requests),
        args.repeat,
        if args.no_peer {
            String::new()
        } else {
            format!(", {} more around the SimPy runs", args.peer_rounds + 1)
        }
    );
    // The minimal hand-written loop on the same model. Runs alternate with ours, so a change
    // in the machine's load during the benchmark hits both sides alike.
    let rates: Vec<f64> = scenario
        .system
        .tenants
        .iter()
        .map(|t| t.arrival.rate)
        .collect();
    let mean_service_s = scenario
        .system
        .cells
        .first()
        .map_or(0.008, |c| c.api.service_time.mean().as_secs_f64());
    let mut walls = Vec::new();
    let mut baseline = Vec::new();
    let mut last = None;
    for _ in 0..args.repeat.max(1) {
        let (wall, executed) = match timed_pipeline(&text, &options) {
            Ok(timed) => timed,
            Err(e) => {
                eprintln!("{e}");
                return EXIT_INVALID;
            }
        };
        walls.push(wall);
        let completed = completed_requests(&executed);
        baseline.push(baseline_loop(completed, &rates, workers, mean_service_s, 1));
        last = Some(executed);
    }
    let Some(executed) = last else {
        return EXIT_INVALID;
    };
    let completed = completed_requests(&executed);
    // Runs alternate, so each of ours and the loop run next to it saw much the same machine:
    // the median of those paired ratios is steadier on a noisy VM than a ratio of medians.
    let paired: Vec<f64> = walls
        .iter()
        .zip(&baseline)
        .map(|(ours, (done, _, base_wall))| {
            (completed as f64 / ours.as_secs_f64()) / (*done as f64 / base_wall.as_secs_f64())
        })
        .collect();
    let (paired_median, paired_low, paired_high) = spread(paired);
    let (wall, _, _) = spread(walls.iter().map(Duration::as_secs_f64).collect());
    let events = executed.output.events;
    let ours_rps = completed as f64 / wall;
    let peak_rss = peak_rss_kib();

    println!(
        "Reference M/M/c model: {} tenants, c = {workers}",
        scenario.system.tenants.len()
    );
    println!();
    println!(
        "{:<34} {:>14} {:>14} {:>12}",
        "", "requests/s", "events/s", "wall"
    );
    println!(
        "{:<34} {:>14} {:>14} {:>12}",
        "tenantsim (full pipeline, median)",
        thousands(ours_rps as u64),
        thousands((events as f64 / wall) as u64),
        format!("{wall:.3}s")
    );

    let (base_wall, _, _) = spread(baseline.iter().map(|b| b.2.as_secs_f64()).collect());
    let (base_rps, _, _) = spread(
        baseline
            .iter()
            .map(|b| b.0 as f64 / b.2.as_secs_f64())
            .collect(),
    );
    let (base_events_per_sec, _, _) = spread(
        baseline
            .iter()
            .map(|b| b.1 as f64 / b.2.as_secs_f64())
            .collect(),
    );
    println!(
        "{:<34} {:>14} {:>14} {:>12}",
        "minimal hand-written loop (median)",
        thousands(base_rps as u64),
        thousands(base_events_per_sec as u64),
        format!("{base_wall:.3}s")
    );
    println!(
        "tenantsim / minimal loop: {:.2}x (requests/s, median of {} side-by-side pairs, \
         range {:.2}-{:.2}; target >= 0.7x)",
        paired_median,
        walls.len(),
        paired_low,
        paired_high
    );

    // The budgets are stated on the reference model over a million requests; another
    // scenario's figures, or a short run's (whose start and report weigh more), are printed
    // but judged against nothing.
    let budgets_apply = is_reference_scenario(&args.scenario) && args.requests >= BUDGET_REQUESTS;
    if budgets_apply {
        card.add(
            "reference model, full pipeline, events/s on one core",
            events as f64 / wall,
            format!("{:.1}M", events as f64 / wall / 1e6),
            Bound::AtLeast(15e6),
            ">= 15M",
        );
        card.add(
            "reference model vs the minimal hand-written loop",
            paired_median,
            format!("{paired_median:.2}x"),
            Bound::AtLeast(0.7),
            ">= 0.7x",
        );
    }

    let mut status = EXIT_PASS;
    if args.no_peer && budgets_apply {
        card.skip("reference model vs SimPy 4.1.2", "--no-peer", ">= 100x");
    }
    if !args.no_peer {
        match peer_rounds(args, workers, &text, &options) {
            Ok((rounds, python)) => {
                let (median_rps, _, _) =
                    spread(rounds.iter().map(|r| r.peer.requests_per_sec).collect());
                let (median_wall, _, _) = spread(rounds.iter().map(|r| r.peer.wall_secs).collect());
                let (ratio, ratio_low, ratio_high) =
                    spread(rounds.iter().map(PeerRound::speed_up).collect());
                println!(
                    "{:<34} {:>14} {:>14} {:>12}",
                    "SimPy 4.1.2 peer (median)",
                    thousands(median_rps as u64),
                    thousands((2.0 * median_rps) as u64),
                    format!("{median_wall:.3}s")
                );
                println!();
                println!(
                    "speed-up over SimPy: {:.1}x (requests/s, median of {} SimPy runs of {} \
                     requests, each against the mean of our runs just before and after it; \
                     range {:.1}-{:.1}x; SimPy on Python {python}; target >= 100x)",
                    ratio,
                    rounds.len(),
                    thousands(peer_requests(args)),
                    ratio_low,
                    ratio_high
                );
                if budgets_apply {
                    card.add(
                        format!("reference model vs SimPy 4.1.2 (Python {python})"),
                        ratio,
                        format!("{ratio:.1}x"),
                        Bound::AtLeast(100.0),
                        ">= 100x",
                    );
                }
            }
            Err(e) => {
                eprintln!("warning: SimPy peer not measured: {e}");
                status = EXIT_INVALID;
                if budgets_apply {
                    card.check(
                        "reference model vs SimPy 4.1.2",
                        false,
                        "not measured",
                        ">= 100x",
                    );
                }
            }
        }
    }
    println!(
        "events: {} ({:.2} per request); requests completed: {}",
        thousands(events),
        events as f64 / completed.max(1) as f64,
        thousands(completed)
    );
    if let Some(kib) = peak_rss {
        println!(
            "peak memory (VmHWM of this process): {:.1} MiB",
            kib as f64 / 1024.0
        );
    }

    let rounds = args.repeat.max(1);
    if let Some((overhead, low, high)) = series_overhead(&executed.scenario, rounds) {
        println!(
            "time series (plots) cost {:+.1} % of the simulation (median of {rounds} model \
             run(s) with them, each against the mean of the runs without them before and after \
             it; range {:+.1} to {:+.1} %; target <= 10 %)",
            overhead * 100.0,
            low * 100.0,
            high * 100.0
        );
        if budgets_apply {
            card.add(
                "time series for plots, cost on the reference model",
                overhead * 100.0,
                format!("{:+.1} %", overhead * 100.0),
                Bound::AtMost(10.0),
                "<= 10 %",
            );
        }
    }

    // Accuracy: pooled response time of all tenants against Erlang C.
    let service_rate = match scenario.system.cells.first().map(|c| c.api.service_time) {
        Some(Dist::Exponential { mean }) => 1.0 / mean.as_secs_f64(),
        _ => {
            println!("(Erlang C comparison needs exponential service in the first cell)");
            return status;
        }
    };
    let queue = MMc {
        lambda: total_rate,
        mu: service_rate,
        c: workers,
    };
    if queue.rho() < 1.0 {
        let mut pooled = WindowStats::default();
        for t in &executed.output.metrics.tenants {
            if let Some(w) = t.window(0) {
                pooled.merge(w);
            }
        }
        let mean = pooled.latency.mean().map_or(0.0, |d| d.as_millis_f64());
        let p99 = pooled
            .latency
            .percentile(99.0)
            .map_or(0.0, |d| d.as_millis_f64());
        let (a_mean, a_p99) = (
            queue.mean_response() * 1e3,
            queue.response_quantile(0.99) * 1e3,
        );
        println!();
        println!(
            "Response time (wait + service) vs Erlang C, rho = {:.3}, P(wait) = {:.4}:",
            queue.rho(),
            queue.p_wait()
        );
        println!(
            "{:<8} {:>12} {:>12} {:>9}",
            "", "simulated", "Erlang C", "error"
        );
        for (label, sim, exact) in [("mean", mean, a_mean), ("p99", p99, a_p99)] {
            println!(
                "{label:<8} {:>10.4}ms {:>10.4}ms {:>8.2}%",
                sim,
                exact,
                (sim - exact) / exact * 100.0
            );
        }
        println!("(p99 is read from a 2-significant-digit histogram: about 1% resolution)");
    }
    status
}

/// `--scale-rate`: requests per second from 1 to 100,000,000, a range the generated
/// scenario can be written in (its tenants' rates are printed to six decimals).
fn positive_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if (1.0..=1e8).contains(&rate) => Ok(rate),
        _ => Err(format!(
            "expected requests per second, a number from 1 to 100,000,000, found {text:?}"
        )),
    }
}

/// `--tenants`: one tenant count, from the generated scenario's smallest (100: one
/// enterprise, four mid-market and 95 small tenants) to the limit on tenants per scenario,
/// so a count the generated file could not hold is refused as the option, not as a line of
/// a file the user never wrote.
fn tenant_count(text: &str) -> Result<u64, String> {
    let most = MAX_TENANTS.max_int();
    match text.parse::<u64>() {
        Ok(tenants) if (100..=most).contains(&tenants) => Ok(tenants),
        _ => Err(format!(
            "expected a tenant count from 100 (the generated scenario's smallest: 95 small, 4 \
             mid-market and 1 enterprise tenant) to {} ({}, the limit on {}), found {text:?}",
            thousands(most),
            MAX_TENANTS.name,
            MAX_TENANTS.what
        )),
    }
}

/// `--scale-duration`: whole simulated seconds, more than the generated scenario's 1 s
/// warmup and at most the limit on simulated time.
fn scale_seconds(text: &str) -> Result<u64, String> {
    let most = MAX_DURATION.as_nanos() / SimDuration::from_secs(1).as_nanos();
    match text.parse::<u64>() {
        Ok(seconds) if (2..=most).contains(&seconds) => Ok(seconds),
        _ => Err(format!(
            "expected whole simulated seconds from 2 (more than the generated scenario's 1 s \
             warmup) to {} ({MAX_DURATION}, the limit on simulated time, MAX_DURATION), found \
             {text:?}",
            thousands(most)
        )),
    }
}

/// Whether `path` names the shipped reference scenario, `benches/mmc-reference.toml` under
/// the current directory (the repository root, where `bench` runs from: its default paths are
/// relative to it), however `path` is spelled.
fn is_reference_scenario(path: &Path) -> bool {
    match (
        std::fs::canonicalize(path),
        std::fs::canonicalize(REFERENCE_SCENARIO),
    ) {
        (Ok(given), Ok(reference)) => given == reference,
        _ => false,
    }
}

/// Runs the whole pipeline on `text` once, timing it through report.json.
fn timed_pipeline(
    text: &str,
    options: &LoadOptions,
) -> Result<(Duration, pipeline::Executed), String> {
    #[allow(clippy::disallowed_methods)] // ok: the CLI times the whole pipeline
    let started = Instant::now();
    let executed = pipeline::execute(text, options).map_err(|e| e.to_string())?;
    let json = report::to_json(&executed.report);
    let wall = started.elapsed();
    std::hint::black_box(json);
    Ok((wall, executed))
}

/// One SimPy run and our timed runs just before and after it (requests/s).
struct PeerRound {
    ours_before: f64,
    peer: PeerResult,
    ours_after: f64,
}

impl PeerRound {
    /// Our speed over SimPy's: the mean of our two runs around it, so a machine that speeds
    /// up or slows down during SimPy's run is seen on both sides.
    fn speed_up(&self) -> f64 {
        (self.ours_before + self.ours_after) / 2.0 / self.peer.requests_per_sec
    }
}

/// Requests in each SimPy run: the peer records nothing for its first 10 simulated seconds
/// (about 10,000 requests), so fewer than twice that would leave it little or nothing to time.
fn peer_requests(args: &BenchArgs) -> u64 {
    (args.requests / u64::from(args.peer_rounds)).max(20_000)
}

/// The median (the mean of the middle two for an even count), lowest and highest of `values`;
/// zeros when there are none.
pub(super) fn spread(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return (0.0, 0.0, 0.0);
    }
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    (median, values[0], values[n - 1])
}

/// `--peer-rounds` SimPy runs, each between two timed runs of ours (adjacent rounds share one).
fn peer_rounds(
    args: &BenchArgs,
    workers: u32,
    text: &str,
    options: &LoadOptions,
) -> Result<(Vec<PeerRound>, String), String> {
    let python = find_python(args)?;
    let version = python_version(&python);
    eprintln!(
        "bench: running the SimPy peer with {} (Python {version})",
        python.display()
    );
    let ours = || -> Result<f64, String> {
        let (wall, executed) = timed_pipeline(text, options)
            .map_err(|e| format!("our run between SimPy runs failed: {e}"))?;
        Ok(completed_requests(&executed) as f64 / wall.as_secs_f64())
    };
    let requests = peer_requests(args);
    let mut before = ours()?;
    let mut rounds = Vec::new();
    for round in 0..args.peer_rounds {
        eprintln!(
            "bench: SimPy run {} of {} ({} requests)",
            round + 1,
            args.peer_rounds,
            thousands(requests)
        );
        let peer = run_simpy(&python, requests, workers)?;
        let after = ours()?;
        rounds.push(PeerRound {
            ours_before: before,
            peer,
            ours_after: after,
        });
        before = after;
    }
    Ok((rounds, version))
}

/// Requests the run finished, over all tenants.
fn completed_requests(executed: &pipeline::Executed) -> u64 {
    executed
        .output
        .metrics
        .tenants
        .iter()
        .map(|t| t.total.finished())
        .sum()
}

/// What collecting the time series adds to `model::run`, as a fraction (median, lowest,
/// highest): runs without and with them alternate, starting and ending without, and each run
/// with them is compared with the mean of the runs without on either side of it, so a machine
/// whose speed drifts between runs slows both sides of each ratio alike.
fn series_overhead(scenario: &crate::scenario::Scenario, repeat: u32) -> Option<(f64, f64, f64)> {
    let time = |no_series: bool| -> Option<f64> {
        let options = RunOptions {
            tenant_windows: scenario.tenant_windows(),
            tracked: scenario.tracked_tenants(&[]),
            no_series,
            ..RunOptions::default()
        };
        #[allow(clippy::disallowed_methods)] // ok: benchmark timing
        let started = Instant::now();
        let output = model::run(&scenario.system, options).ok()?;
        let elapsed = started.elapsed();
        std::hint::black_box(output.events);
        Some(elapsed.as_secs_f64())
    };
    let mut without = vec![time(true)?];
    let mut with = Vec::new();
    for _ in 0..repeat {
        with.push(time(false)?);
        without.push(time(true)?);
    }
    Some(spread(bracketed_overheads(&with, &without)))
}

/// Each run with the series (`with[i]`) over the mean of the runs without them just before and
/// after it (`without[i]` and `without[i + 1]`), minus one.
fn bracketed_overheads(with: &[f64], without: &[f64]) -> Vec<f64> {
    bracketed(with, without)
        .map(|(with, around)| with / around - 1.0)
        .collect()
}

/// Pairs each measurement of `inner[i]` with the mean of `around[i]` and `around[i + 1]`, the
/// measurements of the other kind made just before and after it (a measurement without one on
/// each side is dropped).
pub(super) fn bracketed<'a>(
    inner: &'a [f64],
    around: &'a [f64],
) -> impl Iterator<Item = (f64, f64)> + 'a {
    inner
        .iter()
        .zip(around.windows(2))
        .map(|(&x, pair)| (x, (pair[0] + pair[1]) / 2.0))
}

/// The minimal hand-written M/M/c loop the issue measures against: a std BinaryHeap of
/// `(time, seq)` events, ChaCha8 draws with `f64::ln`, a VecDeque FIFO queue and one
/// hdrhistogram of response times. No tenants, limits, metrics windows or reports: the floor
/// under what any full simulator can do on the same model.
fn baseline_loop(
    requests: u64,
    rates: &[f64],
    servers: u32,
    mean_service_s: f64,
    seed: u64,
) -> (u64, u64, Duration) {
    use std::cmp::Reverse;
    use std::collections::{BinaryHeap, VecDeque};

    use rand::{Rng, SeedableRng};

    #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    enum Ev {
        Arrival(u32),
        Departure,
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let exp = |mean_s: f64, rng: &mut rand_chacha::ChaCha8Rng| {
        let u = ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        (-u.ln() * mean_s * 1e9) as u64
    };
    let mut histogram = hdrhistogram::Histogram::<u64>::new(3).expect("valid precision");
    #[allow(clippy::disallowed_methods)] // ok: timing the baseline is the point
    let started = Instant::now();
    let mut heap: BinaryHeap<Reverse<(u64, u64, Ev)>> = BinaryHeap::new();
    let mut seq = 0u64;
    for (i, rate) in rates.iter().enumerate() {
        let t = exp(1.0 / rate, &mut rng);
        heap.push(Reverse((t, seq, Ev::Arrival(i as u32))));
        seq += 1;
    }
    let mut queue: VecDeque<u64> = VecDeque::new();
    let mut in_service: VecDeque<u64> = VecDeque::new();
    let mut busy = 0u32;
    let (mut done, mut events) = (0u64, 0u64);
    while let Some(Reverse((now, _, ev))) = heap.pop() {
        events += 1;
        match ev {
            Ev::Arrival(i) => {
                let next = now + exp(1.0 / rates[i as usize], &mut rng);
                heap.push(Reverse((next, seq, Ev::Arrival(i))));
                seq += 1;
                if busy < servers {
                    busy += 1;
                    in_service.push_back(now);
                    heap.push(Reverse((
                        now + exp(mean_service_s, &mut rng),
                        seq,
                        Ev::Departure,
                    )));
                    seq += 1;
                } else {
                    queue.push_back(now);
                }
            }
            Ev::Departure => {
                // FIFO order of service start is not departure order, but the histogram only
                // needs one response time per departure for the cost to be representative.
                if let Some(arrived) = in_service.pop_front() {
                    let _ = histogram.record((now - arrived.min(now)) / 1_000);
                }
                done += 1;
                if done >= requests {
                    break;
                }
                match queue.pop_front() {
                    Some(arrived) => {
                        in_service.push_back(arrived);
                        heap.push(Reverse((
                            now + exp(mean_service_s, &mut rng),
                            seq,
                            Ev::Departure,
                        )));
                        seq += 1;
                    }
                    None => busy -= 1,
                }
            }
        }
    }
    std::hint::black_box(histogram.value_at_quantile(0.99));
    (done, events, started.elapsed())
}

struct PeerResult {
    wall_secs: f64,
    requests_per_sec: f64,
}

fn run_simpy(python: &Path, requests: u64, workers: u32) -> Result<PeerResult, String> {
    let script = PathBuf::from("benches/peers/mmc_simpy.py");
    if !script.exists() {
        return Err(format!(
            "{} not found (run from the repository root)",
            script.display()
        ));
    }
    let output = Command::new(python)
        .arg(&script)
        .arg(requests.to_string())
        .arg(workers.to_string())
        .arg("1")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if !output.status.success() {
        return Err(format!(
            "the peer failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let field = |name: &str| -> Option<f64> {
        let start = stdout.find(name)? + name.len();
        let rest = &stdout[start..];
        let end = rest.find([' ', 's', '\n']).unwrap_or(rest.len());
        rest[..end].replace(',', "").parse().ok()
    };
    match (field("wall="), field("req/s=")) {
        (Some(wall_secs), Some(requests_per_sec)) => Ok(PeerResult {
            wall_secs,
            requests_per_sec,
        }),
        _ => Err(format!("cannot read the peer's output: {stdout}")),
    }
}

/// The interpreter's version (`3.11.7`), or `unknown`: SimPy's speed depends on it as much as
/// on the machine (CPython 3.11's release notes measure it 1.25x faster than 3.10 on
/// average), so the speed-up is printed with it.
fn python_version(python: &Path) -> String {
    Command::new(python)
        .args(["-c", "import platform; print(platform.python_version())"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

fn has_simpy(python: &PathBuf) -> bool {
    Command::new(python)
        .args(["-c", "import simpy"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn find_python(args: &BenchArgs) -> Result<PathBuf, String> {
    if let Some(p) = &args.python {
        return if has_simpy(p) {
            Ok(p.clone())
        } else {
            Err(format!("{} cannot import simpy", p.display()))
        };
    }
    let local = PathBuf::from(".venv/bin/python");
    if local.exists() && has_simpy(&local) {
        return Ok(local);
    }
    let venv = PathBuf::from("target/peer-venv");
    let python = venv.join("bin/python");
    if !(python.exists() && has_simpy(&python)) {
        eprintln!(
            "bench: creating {} with simpy==4.1.2 (one time)",
            venv.display()
        );
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .map_err(|e| format!("python3 -m venv failed: {e}"))?;
        if !made.success() {
            return Err("python3 -m venv failed".into());
        }
        let installed = Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "simpy==4.1.2"])
            .status()
            .map_err(|e| format!("pip install simpy failed: {e}"))?;
        if !installed.success() {
            return Err("pip install simpy==4.1.2 failed".into());
        }
    }
    Ok(python)
}

/// Peak resident set size of this process in KiB (Linux only).
pub(super) fn peak_rss_kib() -> Option<u64> {
    proc_status_kib("VmHWM:")
}

/// Resident set size of this process in KiB (Linux only).
pub(super) fn rss_kib() -> Option<u64> {
    proc_status_kib("VmRSS:")
}

/// A size field (`VmHWM:`, `VmRSS:`) of /proc/self/status, in KiB.
fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Starts the process's peak resident set size afresh from its current size (Linux 4.0 and
/// later; elsewhere nothing happens), so a suite's peak is not an earlier suite's: the
/// event-list suite alone holds about 70 MiB of pending events.
fn reset_peak_rss() {
    // Best effort: where /proc/self/clear_refs is missing the peaks stay cumulative, which
    // the suites' output already allows for.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interpreter_that_does_not_run_has_an_unknown_version() {
        let missing = Path::new("target/no-such-dir/bin/python");
        assert_eq!(python_version(missing), "unknown");
    }

    #[test]
    fn each_run_with_the_series_is_compared_with_the_runs_without_around_it() {
        // Without: 1.0 s, 1.2 s, 0.8 s; with: 1.21 s, 1.1 s.
        // 1.21 / 1.1 - 1 = 0.1 and 1.1 / 1.0 - 1 = 0.1.
        let overheads = bracketed_overheads(&[1.21, 1.1], &[1.0, 1.2, 0.8]);
        assert_eq!(overheads.len(), 2);
        assert!(
            overheads.iter().all(|o| (o - 0.1).abs() < 1e-12),
            "{overheads:?}"
        );
    }

    #[test]
    fn a_peer_round_compares_simpy_with_our_runs_on_both_sides_of_it() {
        let round = PeerRound {
            ours_before: 4_000_000.0,
            peer: PeerResult {
                wall_secs: 5.0,
                requests_per_sec: 50_000.0,
            },
            ours_after: 6_000_000.0,
        };
        assert_eq!(round.speed_up(), 100.0);
    }

    #[test]
    fn requests_are_at_most_the_longest_run_at_the_scenarios_rate() {
        // The reference scenario's 1,000 requests/s: 168h (604,800 s) hold 604,800,000.
        assert_eq!(run_seconds(1_000_000, 1000.0, "ref"), Ok(1000));
        assert_eq!(run_seconds(1, 1000.0, "ref"), Ok(1));
        assert_eq!(run_seconds(604_800_000, 1000.0, "ref"), Ok(604_800));
        for requests in [604_800_001, u64::MAX] {
            let refused = run_seconds(requests, 1000.0, "ref").unwrap_err();
            assert!(
                refused.starts_with("error: --requests: at most 604,800,000 for ref")
                    && refused.contains("MAX_DURATION")
                    && !refused.contains("--set"),
                "{refused}"
            );
        }
        // A rate so high that the bound passes u64::MAX bounds nothing.
        assert_eq!(run_seconds(u64::MAX, 1e15, "fast"), Ok(18_447));
        // A scenario without a rate (a replayed log) has nothing to scale.
        for rate in [0.0, f64::NAN] {
            let refused = run_seconds(20_000, rate, "log").unwrap_err();
            assert!(refused.contains("no steady arrival rate"), "{refused}");
        }
    }

    #[test]
    fn spread_takes_the_middle_of_odd_and_even_counts() {
        assert_eq!(spread(vec![3.0, 1.0, 2.0]), (2.0, 1.0, 3.0));
        assert_eq!(spread(vec![4.0, 1.0, 3.0, 2.0]), (2.5, 1.0, 4.0));
        assert_eq!(spread(Vec::new()), (0.0, 0.0, 0.0));
    }
}
