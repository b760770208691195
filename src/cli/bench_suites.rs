//! `simulate bench queue|scale|sweep|acmedocs`: the event list against std's binary heap, cost
//! per event from 1,000 to 100,000 tenants, parallel efficiency of seed sweeps, and the
//! AcmeDocs capstone's wall time.
//!
//! Like `bench.rs`, this is CLI code and may read the wall clock: timing is its purpose.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::Path;
use std::time::{Duration, Instant};

use rayon::prelude::*;

use super::bench::{bracketed, peak_rss_kib, rss_kib, spread};
use super::bench_budgets::{Bound, Scorecard};
use crate::kernel::EventQueue;
use crate::kernel::rng::CounterDraws;
use crate::model::{self, RunOptions};
use crate::pipeline;
use crate::report;
use crate::report::summary::thousands;
use crate::scenario::limits::MAX_RATE;
use crate::scenario::synthetic::{LOWEST_TENANT_RATE, SaasShape, TierLoad, saas, tier_loads};
use crate::scenario::{self, LoadOptions};
use crate::slo;
use crate::time::SimTime;

#[allow(clippy::disallowed_methods)] // ok: benchmarks time things
fn now() -> Instant {
    Instant::now()
}

/// Nanoseconds per hold operation (pop the earliest event, schedule one later) on a queue
/// holding `pending` events, for our event list and for `BinaryHeap<Reverse<(time, seq)>>`:
/// `rounds` measurements of each, alternating, and their medians, so one slow moment of the
/// machine (a single measurement of a few tens of milliseconds) does not make the figure.
pub fn queue_suite(sizes: &[usize], rounds: u32) {
    let rounds = rounds.max(1);
    println!(
        "Event list: one hold (pop the earliest, schedule one later) with n pending, medians of \
         {rounds} alternating rounds"
    );
    println!(
        "{:>12} {:>16} {:>16} {:>8}",
        "pending", "event list ns", "BinaryHeap ns", "ratio"
    );
    // Increments: exponential, mean 1 ms in nanoseconds, precomputed so draws are not timed.
    let increments: Vec<u64> = (0..1u64 << 16)
        .map(|i| {
            let u = CounterDraws::new(7).unit(i);
            (-model::fastlog::ln(u) * 1e6) as u64 + 1
        })
        .collect();
    for &pending in sizes {
        // About 20 holds per pending event in all, split over the rounds (at least 2 million
        // each), so more rounds do not multiply the time of the largest sizes.
        let holds = (20 * pending / rounds as usize).clamp(2_000_000, 20_000_000);
        let (mut ours, mut std_heap) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            ours.push(hold_radix(pending, holds, &increments));
            std_heap.push(hold_binary_heap(pending, holds, &increments));
        }
        let ((ours, _, _), (std_heap, _, _)) = (spread(ours), spread(std_heap));
        println!(
            "{:>12} {:>16.1} {:>16.1} {:>7.2}x",
            thousands(pending as u64),
            ours,
            std_heap,
            std_heap / ours
        );
    }
}

fn hold_radix(pending: usize, holds: usize, increments: &[u64]) -> f64 {
    let mut queue: EventQueue<u32> = EventQueue::new();
    let mask = increments.len() - 1;
    for i in 0..pending {
        queue.schedule(SimTime::from_nanos(increments[i & mask] * 64), i as u32);
    }
    let started = now();
    let mut checksum = 0u64;
    for i in 0..holds {
        let Some((at, event)) = queue.pop() else {
            break;
        };
        checksum = checksum.wrapping_add(u64::from(event));
        queue.schedule(
            SimTime::from_nanos(at.as_nanos() + increments[i & mask] * 64),
            event,
        );
    }
    std::hint::black_box(checksum);
    started.elapsed().as_nanos() as f64 / holds as f64
}

fn hold_binary_heap(pending: usize, holds: usize, increments: &[u64]) -> f64 {
    let mut heap: BinaryHeap<Reverse<(u64, u64, u32)>> = BinaryHeap::new();
    let mask = increments.len() - 1;
    let mut seq = 0u64;
    for i in 0..pending {
        heap.push(Reverse((increments[i & mask] * 64, seq, i as u32)));
        seq += 1;
    }
    let started = now();
    let mut checksum = 0u64;
    for i in 0..holds {
        let Some(Reverse((at, _, event))) = heap.pop() else {
            break;
        };
        checksum = checksum.wrapping_add(u64::from(event));
        heap.push(Reverse((at + increments[i & mask] * 64, seq, event)));
        seq += 1;
    }
    std::hint::black_box(checksum);
    started.elapsed().as_nanos() as f64 / holds as f64
}

/// One measured run of a generated scenario.
struct ScaleRun {
    tenants: u64,
    events: u64,
    setup: Duration,
    run: Duration,
    /// The parts of `run`: building the world (every tenant's records); placing the tenants
    /// and scheduling their first events; the event loop; the wrap-up (closing holdings,
    /// finalising metrics, dropping the world).
    run_parts: RunParts,
    report: Duration,
    /// Resident memory right after the simulation, before judging and reporting.
    live_kib: Option<u64>,
    peak_kib: Option<u64>,
    verdict: String,
}

/// `model::run`'s wall time in four parts, split at its three phase marks.
#[derive(Clone, Copy, Default)]
struct RunParts {
    build: Duration,
    place: Duration,
    events: Duration,
    wrap_up: Duration,
}

impl ScaleRun {
    fn ns_per_event(&self, time: Duration) -> f64 {
        time.as_nanos() as f64 / self.events.max(1) as f64
    }
}

/// Splits a run from `started` to `ended` at its three phase marks (world built, event loop
/// start, event loop end); a run without all three counts as all events.
fn run_parts(started: Instant, marks: &[Instant], ended: Instant) -> RunParts {
    match *marks {
        [world_built, events_start, events_end] => RunParts {
            build: world_built - started,
            place: events_start - world_built,
            events: events_end - events_start,
            wrap_up: ended - events_end,
        },
        _ => RunParts {
            events: ended - started,
            ..RunParts::default()
        },
    }
}

/// Seeds of a `sweep`: with fewer, the last seeds leave a thread idle for a larger share of
/// the sweep, so the efficiency budget is judged only from this many (and only when the
/// threads divide them evenly).
pub const SWEEP_SEEDS: u64 = 8;

/// Simulated seconds of a `scale` run, the duration the scale budgets are stated for.
pub const SCALE_DURATION_SECS: u64 = 60;
/// Requests per second of all tenants together in a `scale` run, as the budgets assume.
pub const SCALE_RATE: f64 = 20_000.0;

/// What `bench scale` runs.
pub struct ScaleConfig<'a> {
    /// Tenant counts, in any order.
    pub tenant_counts: &'a [u64],
    /// Simulated seconds of each run.
    pub duration_secs: u64,
    /// Requests per second, all tenants together.
    pub total_rate: f64,
    /// Where to write the generated scenarios, if anywhere.
    pub write_to: Option<&'a Path>,
    /// Rounds over every count.
    pub rounds: u32,
}

/// Refuses a `--scale-rate` that would give some tenant of a generated scenario a rate the
/// loader refuses, at any of the `--tenants` counts: above the limit per tenant (the fewer
/// the tenants, the higher the enterprise tier's rate), or below what the file can write (the
/// more tenants, the lower the small tier's). Checked before any suite runs, so the error is
/// about the options the user gave, not a line of a file the user never wrote; the bound it
/// states is the tightest, with the count and tier that set it.
pub fn check_scale(tenant_counts: &[u64], total_rate: f64) -> Result<(), String> {
    // (bound on the total rate, tenants, tier) for every count and tier.
    let tiers = || {
        tenant_counts.iter().flat_map(|&tenants| {
            tier_loads(tenants, total_rate)
                .into_iter()
                .map(move |tier| (tenants, tier))
        })
    };
    // The total rate at which each of a tier's tenants would issue `rate`.
    let total_for = |tier: &TierLoad, rate: f64| rate * tier.tenants as f64 / tier.load_share;
    let shares = |tier: &TierLoad| {
        format!(
            "its {} {} tenant{} {:.0} % of the load",
            thousands(tier.tenants),
            tier.tier,
            if tier.tenants == 1 {
                " carries"
            } else {
                "s share"
            },
            tier.load_share * 100.0
        )
    };
    let highest = tiers()
        .filter(|(_, tier)| tier.rate > MAX_RATE.max)
        .min_by(|a, b| total_for(&a.1, MAX_RATE.max).total_cmp(&total_for(&b.1, MAX_RATE.max)));
    if let Some((tenants, tier)) = highest {
        return Err(format!(
            "error: --scale-rate: at most {} with --tenants {tenants}, found {total_rate} ({}, \
             and a tenant's rate is at most {} requests/s: {}, the limit on {})",
            thousands(total_for(&tier, MAX_RATE.max).floor() as u64),
            shares(&tier),
            thousands(MAX_RATE.max_int()),
            MAX_RATE.name,
            MAX_RATE.what
        ));
    }
    let lowest = tiers()
        .filter(|(_, tier)| tier.rate < LOWEST_TENANT_RATE)
        .max_by(|a, b| {
            total_for(&a.1, LOWEST_TENANT_RATE).total_cmp(&total_for(&b.1, LOWEST_TENANT_RATE))
        });
    if let Some((tenants, tier)) = lowest {
        // Rounded up to the thousandth, so the rate printed is one that passes.
        let least = (total_for(&tier, LOWEST_TENANT_RATE) * 1e3).ceil() / 1e3;
        return Err(format!(
            "error: --scale-rate: at least {least} with --tenants {tenants}, found {total_rate} \
             ({}, and the generated scenario writes a tenant's rate to six decimals, so each \
             needs at least {LOWEST_TENANT_RATE:.6} requests/s)",
            shares(&tier)
        ));
    }
    Ok(())
}

/// The full SaaS model (edge limiter, admission, pools, shared databases, timeouts, retries,
/// breakers) at each tenant count, same total load: events/s, cost per event relative to the
/// smallest count, and the process's peak memory after each run (counts run in increasing
/// order, so the growth of the peak is the larger run's extra memory). Adds the scale budgets
/// to `card` when the run has their duration and rate.
pub fn scale_suite(config: &ScaleConfig, card: &mut Scorecard) -> bool {
    let ScaleConfig {
        tenant_counts,
        duration_secs,
        total_rate,
        write_to,
        rounds,
    } = *config;
    println!(
        "Full SaaS model (limiter, admission, 4 cells, 2 shared databases, timeouts, retries, \
         breakers): {} requests/s in all, {duration_secs} simulated seconds, medians of {} \
         rounds",
        thousands(total_rate as u64),
        rounds.max(1)
    );
    let mut counts = tenant_counts.to_vec();
    counts.sort_unstable();
    let mut texts = Vec::new();
    for &tenants in &counts {
        let text = saas(SaasShape {
            tenants,
            total_rate,
            duration_secs,
            seed: 42,
        });
        if let Some(dir) = write_to {
            let path = dir.join(format!("saas-{tenants}.toml"));
            // Atomically, and never through a link or into a FIFO (which would block).
            if let Err(e) = super::write_atomically(&path, &text) {
                eprintln!("bench scale: cannot write {}: {e}", path.display());
                return false;
            }
            eprintln!("bench scale: wrote {}", path.display());
        }
        texts.push((tenants, text));
    }
    // Rounds over every count, so a change in the machine's speed (a VM's neighbours) hits
    // all counts alike; each count's median over the rounds is reported.
    let rounds = rounds.max(1);
    let mut measured: Vec<Vec<ScaleRun>> = counts.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        for (i, (tenants, text)) in texts.iter().enumerate() {
            match scale_run(*tenants, text) {
                Ok(run) => measured[i].push(run),
                Err(e) => {
                    eprintln!("bench scale: {tenants} tenants: {e}");
                    return false;
                }
            }
        }
        if rounds > 1 {
            eprintln!("bench scale: round {} of {rounds} done", round + 1);
        }
    }
    // The growth from the first count to the last within each round, for the whole run and
    // for its event loop alone: the two counts ran seconds apart, on much the same machine,
    // so the median of these is steadier on a noisy VM than a ratio of medians.
    let growth: Vec<(f64, f64)> = match (measured.first(), measured.last()) {
        (Some(first), Some(last)) if measured.len() > 1 => first
            .iter()
            .zip(last)
            .map(|(a, b)| {
                (
                    b.ns_per_event(b.run) / a.ns_per_event(a.run),
                    b.ns_per_event(b.run_parts.events) / a.ns_per_event(a.run_parts.events),
                )
            })
            .collect(),
        _ => Vec::new(),
    };
    // Memory comes from the first round (the process's peak only grows after it); times are
    // each count's medians.
    let runs: Vec<ScaleRun> = measured
        .into_iter()
        .map(|mut per_round| {
            let median = |part: fn(&ScaleRun) -> Duration| {
                let (secs, _, _) =
                    spread(per_round.iter().map(|r| part(r).as_secs_f64()).collect());
                Duration::from_secs_f64(secs)
            };
            let run = median(|r| r.run);
            let (setup, report) = (median(|r| r.setup), median(|r| r.report));
            let run_parts = RunParts {
                build: median(|r| r.run_parts.build),
                place: median(|r| r.run_parts.place),
                events: median(|r| r.run_parts.events),
                wrap_up: median(|r| r.run_parts.wrap_up),
            };
            let mut first = per_round.swap_remove(0);
            first.run = run;
            first.setup = setup;
            first.report = report;
            first.run_parts = run_parts;
            first
        })
        .collect();
    println!(
        "{:>9} {:>12} {:>8} {:>10} {:>9} {:>8} {:>9} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8}",
        "tenants",
        "events",
        "run s",
        "events/s",
        "ns/event",
        "vs first",
        "loop ns",
        "vs first",
        "build ms",
        "place ms",
        "wrap ms",
        "parse s",
        "report s",
        "peak MiB",
        "verdict"
    );
    let (first_cost, first_loop_cost) = runs.first().map_or((1.0, 1.0), |r| {
        (r.ns_per_event(r.run), r.ns_per_event(r.run_parts.events))
    });
    for r in &runs {
        let (cost, loop_cost) = (r.ns_per_event(r.run), r.ns_per_event(r.run_parts.events));
        println!(
            "{:>9} {:>12} {:>8.2} {:>10} {:>9.1} {:>7.2}x {:>9.1} {:>7.2}x {:>9.1} {:>9.1} {:>9.1} {:>9.2} {:>9.2} {:>9} {:>8}",
            thousands(r.tenants),
            thousands(r.events),
            r.run.as_secs_f64(),
            thousands((r.events as f64 / r.run.as_secs_f64()) as u64),
            cost,
            cost / first_cost,
            loop_cost,
            loop_cost / first_loop_cost,
            r.run_parts.build.as_secs_f64() * 1e3,
            r.run_parts.place.as_secs_f64() * 1e3,
            r.run_parts.wrap_up.as_secs_f64() * 1e3,
            r.setup.as_secs_f64(),
            r.report.as_secs_f64(),
            r.peak_kib
                .map_or("?".to_string(), |k| format!("{:.0}", k as f64 / 1024.0)),
            r.verdict
        );
    }
    println!(
        "run s: the simulation (model::run) = build (every tenant's records) + place (place \
         every tenant, schedule first events) + event loop + wrap-up; ns/event: the run over \
         its events; loop ns: the event loop's alone; parse and report: outside the run"
    );
    if let (Some(a), Some(b)) = (runs.first(), runs.last())
        && !growth.is_empty()
    {
        let spread = |values: Vec<f64>| {
            let (median, low, high) = spread(values);
            format!("{median:.2}x (range {low:.2}-{high:.2})")
        };
        println!(
            "cost per event {} -> {} tenants, median of the {} rounds' own ratios: whole run {}; \
             event loop alone {} (target <= 1.5x)",
            thousands(a.tenants),
            thousands(b.tenants),
            growth.len(),
            spread(growth.iter().map(|g| g.0).collect()),
            spread(growth.iter().map(|g| g.1).collect()),
        );
        let fixed = |r: &ScaleRun| {
            (r.run_parts.build + r.run_parts.place + r.run_parts.wrap_up).as_nanos() as f64
        };
        println!(
            "per-tenant fixed cost inside the run (build, place and wrap-up), {} -> {} tenants: \
             {}",
            thousands(a.tenants),
            thousands(b.tenants),
            per_added_tenant(fixed(a), fixed(b), b.tenants.saturating_sub(a.tenants))
        );
    }
    if duration_secs == SCALE_DURATION_SECS && total_rate == SCALE_RATE {
        scale_budgets(&runs, &growth, card);
    }
    if let (Some(a), Some(b)) = (runs.first(), runs.last())
        && let (Some(la), Some(lb), Some(pa), Some(pb)) =
            (a.live_kib, b.live_kib, a.peak_kib, b.peak_kib)
        && b.tenants > a.tenants
    {
        let per_tenant =
            |x: u64, y: u64| (y.saturating_sub(x) * 1024) as f64 / (b.tenants - a.tenants) as f64;
        println!(
            "memory per tenant, {} -> {} tenants: {:.0} bytes resident after the simulation, \
             {:.0} bytes of peak (report building included); fixed per-tenant records: {} bytes",
            thousands(a.tenants),
            thousands(b.tenants),
            per_tenant(la, lb),
            per_tenant(pa, pb),
            model::per_tenant_bytes()
        );
    }
    true
}

/// The scale budgets that `runs` (each count's medians, smallest count first) measured:
/// 10,000 tenants' speed, the growth from 1,000 to 100,000 tenants (`growth`: each round's
/// whole-run ratio first), the 100,000-tenant run's time and memory, the per-tenant records.
fn scale_budgets(runs: &[ScaleRun], growth: &[(f64, f64)], card: &mut Scorecard) {
    if let Some(r) = runs.iter().find(|r| r.tenants == 10_000) {
        let events_per_sec = r.events as f64 / r.run.as_secs_f64();
        card.add(
            "full SaaS model at 10,000 tenants, events/s on one core",
            events_per_sec,
            format!("{:.2}M", events_per_sec / 1e6),
            Bound::AtLeast(4e6),
            ">= 4M",
        );
    }
    if let (Some(first), Some(last)) = (runs.first(), runs.last())
        && first.tenants == 1_000
        && last.tenants == 100_000
        && !growth.is_empty()
    {
        let (whole_run, _, _) = spread(growth.iter().map(|g| g.0).collect());
        card.add(
            "cost per event, 1,000 -> 100,000 tenants (whole run)",
            whole_run,
            format!("{whole_run:.2}x"),
            Bound::AtMost(1.5),
            "<= 1.5x",
        );
    }
    if let Some(r) = runs.iter().find(|r| r.tenants == 100_000) {
        let whole = (r.setup + r.run + r.report).as_secs_f64();
        card.add(
            "100,000 tenants, 60 simulated s: parse, run, report",
            whole,
            format!("{whole:.2} s"),
            Bound::AtMost(120.0),
            "<= 120 s",
        );
        if let Some(kib) = r.peak_kib {
            let mib = kib as f64 / 1024.0;
            card.add(
                "100,000 tenants: peak memory of the process",
                mib,
                format!("{mib:.0} MiB"),
                // 2 GB as the issue states it, in MiB.
                Bound::AtMost(2e9 / 1_048_576.0),
                "<= 2 GB",
            );
        }
        let bytes = model::per_tenant_bytes();
        card.add(
            "fixed state per tenant",
            bytes as f64,
            format!("{bytes} B"),
            Bound::AtMost(1000.0),
            "<= 1 KB",
        );
    }
}

/// The fixed cost each added tenant brings, from the fixed costs (ns) at the smaller and the
/// larger count: below the timer's noise when the larger count's is not the greater (small
/// configurations, where a few hundred tenants cost microseconds).
fn per_added_tenant(smaller_ns: f64, larger_ns: f64, added: u64) -> String {
    if added == 0 || larger_ns <= smaller_ns {
        return "within timing noise (not larger at the larger count)".to_string();
    }
    format!(
        "{:.0} ns per added tenant",
        (larger_ns - smaller_ns) / added as f64
    )
}

fn scale_run(tenants: u64, text: &str) -> Result<ScaleRun, String> {
    let options = LoadOptions {
        path: format!("<generated saas-{tenants}>"),
        ..LoadOptions::default()
    };
    let mut run = scale_run_text(text, &options)?;
    run.tenants = tenants;
    Ok(run)
}

/// Loads, runs and reports `text`, timing each phase.
fn scale_run_text(text: &str, options: &LoadOptions) -> Result<ScaleRun, String> {
    let started = now();
    let scenario = scenario::load(text, options).map_err(|e| e.to_string())?;
    let setup = started.elapsed();
    let mut marks: Vec<Instant> = Vec::with_capacity(3);
    let mut mark = |_: model::RunPhase| marks.push(now());
    let run_options = RunOptions {
        tenant_windows: scenario.tenant_windows(),
        tracked: scenario.tracked_tenants(&[]),
        phase_marks: Some(&mut mark),
        ..RunOptions::default()
    };
    let started = now();
    let output = model::run(&scenario.system, run_options).map_err(|e| e.to_string())?;
    let ended = now();
    let run = ended - started;
    let run_parts = run_parts(started, &marks, ended);
    let live_kib = rss_kib();
    let started = now();
    let evaluation = slo::evaluate(&scenario, &output);
    let invocation = report::Invocation {
        scenario_file: options.path.clone(),
        scenario_text: text.to_string(),
        overrides: Vec::new(),
    };
    let built = report::build(&scenario, &output, &evaluation, &invocation);
    let json = report::to_json(&built);
    let report_time = started.elapsed();
    std::hint::black_box(json.len());
    Ok(ScaleRun {
        tenants: scenario.system.tenants.len() as u64,
        events: output.events,
        setup,
        run,
        run_parts,
        report: report_time,
        live_kib,
        peak_kib: peak_rss_kib(),
        verdict: evaluation.verdict.as_str().to_string(),
    })
}

/// Seeds of `scenario` on one thread and on every thread rayon has, in `rounds` bracketed
/// rounds: parallel efficiency (T1 / (threads x Tn)); and the share of a run spent on set-up
/// (load, placement, an empty run and its report) against a full run.
///
/// The sweeps run 1, n, 1, n, ..., 1: each n-thread sweep sits between two 1-thread ones and is
/// compared with their mean, so a machine whose speed drifts within seconds (a busy VM host)
/// slows both sides of each ratio alike. The efficiency is the median of those ratios.
/// Adds the efficiency and set-up budgets to `card` when there are at least [`SWEEP_SEEDS`]
/// seeds, a multiple of the thread count.
pub fn sweep_suite(scenario_path: &str, seeds: u64, rounds: u32, card: &mut Scorecard) -> bool {
    // A scenario file like any other: a regular file, capped.
    let text = match super::read_scenario(Path::new(scenario_path)) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("bench sweep: {e}");
            return false;
        }
    };
    let threads = rayon::current_num_threads();
    let run_seeds = |pool_threads: usize| -> Result<f64, String> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(pool_threads)
            .build()
            .map_err(|e| e.to_string())?;
        let started = now();
        let results: Vec<Result<u64, String>> = pool.install(|| {
            (1..=seeds)
                .into_par_iter()
                .map(|seed| {
                    let options = LoadOptions {
                        path: scenario_path.to_string(),
                        seed: Some(seed),
                        files: super::input::beside(scenario_path),
                        ..LoadOptions::default()
                    };
                    pipeline::execute(&text, &options)
                        .map(|e| report::to_json(&e.report).len() as u64)
                        .map_err(|e| e.to_string())
                })
                .collect()
        });
        let elapsed = started.elapsed();
        for r in results {
            r?;
        }
        Ok(elapsed.as_secs_f64())
    };
    let rounds = rounds.max(1);
    let mut one_thread = Vec::new();
    let mut many_threads = Vec::new();
    let mut sweeps = || -> Result<(), String> {
        one_thread.push(run_seeds(1)?);
        for round in 1..=rounds {
            many_threads.push(run_seeds(threads)?);
            one_thread.push(run_seeds(1)?);
            eprintln!("bench sweep: round {round} of {rounds} done");
        }
        Ok(())
    };
    if let Err(e) = sweeps() {
        eprintln!("bench sweep: {e}");
        return false;
    }
    // One seed by phases: load (parse, validate, place), the simulation, judging + report.
    let options = LoadOptions {
        path: scenario_path.to_string(),
        files: super::input::beside(scenario_path),
        ..LoadOptions::default()
    };
    let phases = match scale_run_text(&text, &options) {
        Ok(run) => run,
        Err(e) => {
            eprintln!("bench sweep: {e}");
            return false;
        }
    };
    let (efficiency, low, high) =
        spread(bracketed_efficiencies(&one_thread, &many_threads, threads));
    let (one, _, _) = spread(one_thread);
    let (many, _, _) = spread(many_threads);
    let per_seed_ms = one / seeds as f64 * 1e3;
    println!("Seed sweep of {scenario_path}: {seeds} seeds, {rounds} bracketed round(s)");
    println!(
        "  1 thread: {one:.2}s ({:.1} seeds/s); {threads} threads: {many:.2}s ({:.1} seeds/s) \
         (medians)",
        seeds as f64 / one,
        seeds as f64 / many
    );
    println!(
        "  parallel efficiency: {efficiency:.2} (median of {rounds} round(s), each {threads}-thread \
         sweep against the mean of the 1-thread sweeps before and after it; range \
         {low:.2}-{high:.2}; target >= 0.9)"
    );
    let whole = phases.setup + phases.run + phases.report;
    println!(
        "  one seed: set-up (parse, validate, place) {:.2} ms, simulation {:.1} ms, judging and \
         report {:.1} ms: set-up is {:.2} % of the run (target < 10 %); {:.1} ms per seed in \
         the 1-thread sweep",
        phases.setup.as_secs_f64() * 1e3,
        phases.run.as_secs_f64() * 1e3,
        phases.report.as_secs_f64() * 1e3,
        phases.setup.as_secs_f64() / whole.as_secs_f64() * 100.0,
        per_seed_ms
    );
    // With a seed count that is not a multiple of the threads, the last seeds leave threads
    // idle and cap the efficiency below 1 (8 seeds on 3 threads: 0.89) however fast the
    // machine: the budget is stated for sweeps that divide evenly.
    if seeds < SWEEP_SEEDS || seeds % threads as u64 != 0 {
        return true;
    }
    card.add(
        "seed sweep, parallel efficiency",
        efficiency,
        format!("{efficiency:.2}"),
        Bound::AtLeast(0.9),
        ">= 0.9",
    );
    let setup_share = phases.setup.as_secs_f64() / whole.as_secs_f64() * 100.0;
    card.add(
        "seed sweep, set-up per seed (share of a run)",
        setup_share,
        format!("{setup_share:.2} %"),
        Bound::Below(10.0),
        "< 10 %",
    );
    true
}

/// Parallel efficiency of each n-thread sweep (`many[i]`, seconds) against the mean of the
/// 1-thread sweeps just before and after it (`one[i]` and `one[i + 1]`).
fn bracketed_efficiencies(one: &[f64], many: &[f64], threads: usize) -> Vec<f64> {
    bracketed(many, one)
        .map(|(many, one)| one / (threads as f64 * many))
        .collect()
}

/// The capstone scenario through the full pipeline, report files included; adds its budgets
/// (under 60 s, a pass) to `card`.
pub fn acmedocs_suite(path: &str, card: &mut Scorecard) -> bool {
    let text = match super::read_scenario(Path::new(path)) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("bench acmedocs: {e}");
            return false;
        }
    };
    let options = LoadOptions {
        path: path.to_string(),
        files: super::input::beside(path),
        ..LoadOptions::default()
    };
    let started = now();
    let executed = match pipeline::execute(&text, &options) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("bench acmedocs: {e}");
            return false;
        }
    };
    let files = executed.files();
    let wall = started.elapsed();
    let bytes: usize = files.iter().map(|f| f.contents.len()).sum();
    println!(
        "{path}: {} tenants, {} events, {} simulated: {:.2}s wall with every report file \
         ({:.1} MB), verdict {}; peak memory {} MiB (target < 60 s)",
        thousands(executed.scenario.system.tenants.len() as u64),
        thousands(executed.output.events),
        executed.scenario.system.simulation.duration,
        wall.as_secs_f64(),
        bytes as f64 / 1e6,
        executed.evaluation.verdict.as_str(),
        peak_rss_kib().map_or("?".into(), |k| format!("{:.0}", k as f64 / 1024.0))
    );
    card.add(
        "acmedocs (12,000 tenants, 10 simulated min), whole job",
        wall.as_secs_f64(),
        format!("{:.2} s", wall.as_secs_f64()),
        Bound::Below(60.0),
        "< 60 s",
    );
    let verdict = executed.evaluation.verdict.as_str();
    card.check("acmedocs verdict", verdict == "pass", verdict, "pass");
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_per_tenant_fixed_cost_says_when_it_is_noise() {
        assert_eq!(
            per_added_tenant(5e6, 80e6, 99_000),
            "758 ns per added tenant"
        );
        for (smaller, larger, added) in [(5e6, 4.9e6, 200), (5e6, 5e6, 200), (5e6, 9e6, 0)] {
            assert!(
                per_added_tenant(smaller, larger, added).starts_with("within timing noise"),
                "{smaller} -> {larger} over {added}"
            );
        }
    }

    #[test]
    fn a_run_splits_at_its_phase_marks() {
        let started = now();
        let at = |ms| started + Duration::from_millis(ms);
        let parts = run_parts(started, &[at(45), at(70), at(900)], at(921));
        assert_eq!(parts.build, Duration::from_millis(45));
        assert_eq!(parts.place, Duration::from_millis(25));
        assert_eq!(parts.events, Duration::from_millis(830));
        assert_eq!(parts.wrap_up, Duration::from_millis(21));
        // Without all three marks (a run that failed), the whole run counts as events.
        let unmarked = run_parts(started, &[at(45), at(70)], at(921));
        assert_eq!(unmarked.events, Duration::from_millis(921));
        assert_eq!(
            unmarked.build + unmarked.place + unmarked.wrap_up,
            Duration::ZERO
        );
    }

    #[test]
    fn each_parallel_sweep_is_compared_with_the_serial_sweeps_around_it() {
        // Serial sweeps of 4 s, 6 s and 5 s around parallel sweeps of 2.5 s and 2 s on two
        // threads: (4 + 6) / 2 / (2 x 2.5) = 1.0 and (6 + 5) / 2 / (2 x 2) = 1.375.
        let efficiencies = bracketed_efficiencies(&[4.0, 6.0, 5.0], &[2.5, 2.0], 2);
        assert_eq!(efficiencies, vec![1.0, 1.375]);
        // A sweep without a serial run after it is not compared.
        assert_eq!(bracketed_efficiencies(&[4.0], &[2.0], 2), Vec::<f64>::new());
    }

    /// `check_scale` accepts exactly what loads: at its bounds the generated scenario loads,
    /// and what it refuses at the bound it names would not have (the tightest bounds: the
    /// fewest tenants at the highest rate, the most at the lowest). The longest
    /// `--scale-duration` loads too.
    #[test]
    fn scale_rates_within_the_bounds_make_scenarios_that_load() {
        let loads = |tenants: u64, total_rate: f64, duration_secs: u64| {
            let text = saas(SaasShape {
                tenants,
                total_rate,
                duration_secs,
                seed: 42,
            });
            scenario::load(&text, &LoadOptions::default()).map_err(|e| e.to_string())
        };
        let most = scenario::limits::MAX_TENANTS.max_int();
        assert_eq!(check_scale(&[100], 3_333_333.0), Ok(()));
        loads(100, 3_333_333.0, 2).expect("the highest rate at 100 tenants");
        let refused = check_scale(&[100, 1_000], 3_333_334.0).unwrap_err();
        assert!(
            refused.starts_with("error: --scale-rate: at most 3,333,333 with --tenants 100")
                && refused.contains("its 1 enterprise tenant carries 30 %")
                && refused.contains("MAX_RATE"),
            "{refused}"
        );
        let failed = loads(100, 3_333_334.0, 2).unwrap_err();
        assert!(failed.contains("MAX_RATE"), "{failed}");

        assert_eq!(check_scale(&[1_000, most], 2.375), Ok(()));
        loads(most, 2.375, 2).expect("the lowest rate at the most tenants");
        let refused = check_scale(&[1_000, most], 2.374).unwrap_err();
        assert!(
            refused.starts_with("error: --scale-rate: at least 2.375 with --tenants 1000000")
                && refused.contains("950,000 small tenants share 40 %"),
            "{refused}"
        );
        let failed = loads(most, 1.0, 2).unwrap_err();
        assert!(failed.contains("a positive number"), "{failed}");

        let longest = scenario::MAX_DURATION.as_nanos() / 1_000_000_000;
        loads(100, SCALE_RATE, longest).expect("the longest run");
    }

    fn run_of(tenants: u64, events_per_sec: f64) -> ScaleRun {
        ScaleRun {
            tenants,
            events: events_per_sec as u64,
            setup: Duration::from_millis(50),
            run: Duration::from_secs(1),
            run_parts: RunParts::default(),
            report: Duration::from_millis(100),
            live_kib: Some(1024),
            peak_kib: Some(150 * 1024),
            verdict: "pass".to_string(),
        }
    }

    #[test]
    fn scale_budgets_follow_the_tenant_counts_they_are_stated_for() {
        let runs = [
            run_of(1_000, 8e6),
            run_of(10_000, 3.9e6),
            run_of(100_000, 5.6e6),
        ];
        let mut card = Scorecard::default();
        scale_budgets(&runs, &[(1.47, 1.3), (1.52, 1.4), (1.44, 1.3)], &mut card);
        let table = card.render();
        for expected in [
            "10,000 tenants, events/s on one core     3.90M  >= 4M",
            "1,000 -> 100,000 tenants (whole run)     1.47x  <= 1.5x",
            "100,000 tenants, 60 simulated s: parse, run, report   1.15 s",
            "peak memory of the process",
            "fixed state per tenant",
        ] {
            let squeezed = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(
                squeezed(&table).contains(&squeezed(expected)),
                "no {expected:?} in:\n{table}"
            );
        }
        // 10,000 tenants at 3.9M events/s misses its budget; nothing else does.
        assert!(
            table.ends_with("missed: full SaaS model at 10,000 tenants, events/s on one core\n")
        );

        // Other counts measure no budget.
        let mut card = Scorecard::default();
        scale_budgets(
            &[run_of(100, 8e6), run_of(300, 8e6)],
            &[(1.1, 1.1)],
            &mut card,
        );
        assert!(card.render().contains("none measured"), "{}", card.render());
    }
}
