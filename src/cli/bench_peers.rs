//! `simulate bench mmc-full | hot-tenant-full | bulkhead`: the configurations users actually
//! write (admission, bounded queues, client timeouts, retries, limiters, connection pools,
//! bulkhead pools, caches and calls), each side by side in the same run with its SimPy peer
//! under `benches/peers/`: in process (parse, run, judge, report.json) and as whole processes
//! (`simulate run` writing every report file, against `python PEER`), requests and events per
//! second, CPU time, and the speed-up over SimPy with the interpreter's version.
//!
//! Like `bench.rs`, this is CLI code and may read the wall clock: timing is its purpose.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use super::bench::{bracketed, run_seconds, spread};
use super::bench_budgets::{Bound, Scorecard};
use crate::pipeline;
use crate::report;
use crate::report::summary::thousands;
use crate::scenario::LoadOptions;

/// One realistic suite: a scenario under `benches/` and its SimPy peer.
#[derive(Clone, Copy, Debug)]
pub struct PeerSuite {
    /// The suite's name on the command line.
    pub name: &'static str,
    /// The scenario, relative to the repository root.
    pub scenario: &'static str,
    /// The SimPy peer, relative to the repository root.
    pub peer: &'static str,
    /// Whether the run length follows `--requests` (a steady load); otherwise the scenario
    /// runs as written (a spike at fixed times), and so does its peer, in every round.
    pub scaled: bool,
    /// The whole-process speed-up over SimPy the issue asks for, if any.
    pub speed_up_budget: Option<f64>,
    /// In-process events per second on one core the issue asks for, if any.
    pub events_budget: Option<f64>,
}

/// The reference M/M/10 with admission, a bounded queue and client timeouts on.
pub const MMC_FULL: PeerSuite = PeerSuite {
    name: "mmc-full",
    scenario: "benches/mmc-full.toml",
    peer: "benches/peers/mmc_full_simpy.py",
    scaled: true,
    speed_up_budget: Some(100.0),
    events_budget: Some(15e6),
};

/// The shape of scenarios/hot-tenant.toml: limiter, caps, database pool, timeouts, retries,
/// a 10x spike.
pub const HOT_TENANT_FULL: PeerSuite = PeerSuite {
    name: "hot-tenant-full",
    scenario: "benches/hot-tenant-full.toml",
    peer: "benches/peers/hot_tenant_simpy.py",
    scaled: false,
    speed_up_budget: Some(100.0),
    events_budget: None,
};

/// Two classes in two pools, a cache lookup with a database miss path, a dependency call.
pub const BULKHEAD: PeerSuite = PeerSuite {
    name: "bulkhead",
    scenario: "benches/bulkhead.toml",
    peer: "benches/peers/bulkhead_simpy.py",
    scaled: true,
    speed_up_budget: None,
    events_budget: None,
};

/// Requests a scaled suite needs for its budgets to be judged (the default `--requests`).
const BUDGET_REQUESTS: u64 = 1_000_000;
/// The shortest SimPy run of a scaled suite, in simulated seconds: its warmup is 10 s.
const SHORTEST_PEER_SECONDS: u64 = 30;
/// Clock ticks per second of /proc's CPU times (`USER_HZ`, 100 on every Linux platform).
const TICKS_PER_SEC: f64 = 100.0;

/// How a peer suite runs.
pub struct PeerOptions<'a> {
    /// Requests a scaled suite simulates (its length is set from its arrival rate).
    pub requests: u64,
    /// Timed runs of ours, in process and as whole processes.
    pub repeat: u32,
    /// SimPy runs, each between two whole-process runs of ours.
    pub peer_rounds: u32,
    /// The interpreter with simpy and its version, or why there is none; `None` with
    /// `--no-peer`.
    pub python: Option<&'a Result<(PathBuf, String), String>>,
    /// Where our whole-process runs write their report files.
    pub out_root: &'a Path,
}

/// One timed process: wall time and CPU time (user + system, from /proc; `None` elsewhere).
#[derive(Clone, Copy, Debug)]
struct ProcessTime {
    wall: f64,
    cpu: Option<f64>,
}

/// One SimPy run: its process, and what it printed.
#[derive(Clone, Debug)]
struct PeerRun {
    process: ProcessTime,
    /// Its own timing of `env.run` (the simulation loop, without start-up and output).
    loop_secs: f64,
    /// The CPU time of that loop (`time.process_time`), if it printed one.
    loop_cpu: Option<f64>,
    finished: u64,
    /// Events SimPy scheduled (its kernel's events, not ours).
    events: u64,
}

/// Runs one suite; adds its budgets to `card`. False if it could not be measured.
pub fn peer_suite(suite: &PeerSuite, options: &PeerOptions, card: &mut Scorecard) -> bool {
    match measure(suite, options, card) {
        Ok(()) => true,
        Err(message) => {
            eprintln!("bench {}: {message}", suite.name);
            false
        }
    }
}

/// Refuses a `--requests` that `suite` cannot run (a run longer than the limit on simulated
/// time), before any suite runs. A suite whose scenario cannot be read or loaded passes here:
/// `measure` reports that as the suite not measured, as it always has.
pub fn check_requests(suite: &PeerSuite, requests: u64) -> Result<(), String> {
    if !suite.scaled {
        return Ok(());
    }
    match load_suite(suite) {
        Ok((_, _, scenario)) => suite_seconds(suite, &scenario, requests).map(drop),
        Err(_) => Ok(()),
    }
}

/// The suite's scenario text, its load options and the scenario as written.
fn load_suite(
    suite: &PeerSuite,
) -> Result<(String, LoadOptions, crate::scenario::Scenario), String> {
    let text = std::fs::read_to_string(suite.scenario).map_err(|e| {
        format!(
            "cannot read {} (run from the repository root): {e}",
            suite.scenario
        )
    })?;
    let base = LoadOptions {
        path: suite.scenario.to_string(),
        files: super::input::beside(suite.scenario),
        ..LoadOptions::default()
    };
    let scenario = crate::scenario::load(&text, &base).map_err(|e| e.to_string())?;
    Ok((text, base, scenario))
}

/// Simulated seconds of the suite's runs: as written, or for a scaled suite about
/// `requests` requests and longer than its warmup.
fn suite_seconds(
    suite: &PeerSuite,
    scenario: &crate::scenario::Scenario,
    requests: u64,
) -> Result<u64, String> {
    if !suite.scaled {
        return Ok(scenario.system.simulation.duration.as_secs_f64().round() as u64);
    }
    let total_rate: f64 = scenario.system.tenants.iter().map(|t| t.arrival.rate).sum();
    let warmup = scenario.system.simulation.warmup.as_secs_f64().ceil() as u64;
    let label = format!("{} (the {} suite)", suite.scenario, suite.name);
    Ok(run_seconds(requests, total_rate, &label)?.max(warmup + 1))
}

fn measure(suite: &PeerSuite, options: &PeerOptions, card: &mut Scorecard) -> Result<(), String> {
    let (text, base, scenario) = load_suite(suite)?;
    let seconds = suite_seconds(suite, &scenario, options.requests)?;
    let overrides = if suite.scaled {
        vec![format!("simulation.duration=\"{seconds}s\"")]
    } else {
        Vec::new()
    };
    let load = LoadOptions {
        overrides: overrides.clone(),
        ..base
    };
    let out = options.out_root.join(suite.name);
    let rounds = options.repeat.max(1);
    eprintln!(
        "bench {}: {} for {seconds} simulated seconds, {rounds} in-process and {} whole-process \
         run(s)",
        suite.name,
        suite.scenario,
        rounds
            + options
                .python
                .map_or(0, |_| (options.peer_rounds + 1) * RUNS_PER_BRACKET)
    );

    // In process, alternating with whole processes so both see the same machine.
    let mut inside = Vec::new();
    let mut inside_cpu = Vec::new();
    let mut whole = Vec::new();
    let mut last = None;
    for _ in 0..rounds {
        let cpu_before = thread_cpu_secs();
        let started = now();
        let executed = pipeline::execute(&text, &load).map_err(|e| e.to_string())?;
        let json = report::to_json(&executed.report);
        let wall = started.elapsed();
        std::hint::black_box(json);
        inside.push(wall.as_secs_f64());
        if let (Some(before), Some(after)) = (cpu_before, thread_cpu_secs()) {
            inside_cpu.push(after - before);
        }
        whole.push(our_process(suite.scenario, &overrides, &out)?);
        last = Some(executed);
    }
    let Some(executed) = last else {
        return Err("no run".into());
    };
    let finished: u64 = executed
        .output
        .metrics
        .tenants
        .iter()
        .map(|t| t.total.finished())
        .sum();
    let events = executed.output.events;

    // SimPy, each run between two whole-process runs of ours.
    let mut peer = None;
    if let Some(python) = options.python {
        let (python, version) = python.as_ref().map_err(|e| format!("SimPy peer: {e}"))?;
        let peer_secs = if suite.scaled {
            (seconds / u64::from(options.peer_rounds.max(1))).max(SHORTEST_PEER_SECONDS)
        } else {
            seconds
        };
        let mut around = vec![our_bracket(suite.scenario, &overrides, &out, &mut whole)?];
        let mut runs = Vec::new();
        for round in 1..=options.peer_rounds.max(1) {
            eprintln!(
                "bench {}: SimPy run {round} of {} ({peer_secs} simulated seconds)",
                suite.name, options.peer_rounds
            );
            runs.push(peer_process(python, suite.peer, peer_secs)?);
            around.push(our_bracket(suite.scenario, &overrides, &out, &mut whole)?);
        }
        peer = Some((runs, around, version.clone()));
    }

    let (inside_wall, _, _) = spread(inside.clone());
    // CPU time of this thread (the run is single-threaded): on a shared machine the honest
    // denominator of "per core".
    let inside_cpu = (inside_cpu.len() == inside.len()).then(|| spread(inside_cpu).0);
    let (whole_wall, _, _) = spread(whole.iter().map(|p| p.wall).collect());
    let whole_cpu = median_cpu(&whole);
    println!(
        "{}: {} for {} simulated s: {} requests finished, {} events ({:.2} per request)",
        suite.name,
        suite.scenario,
        thousands(seconds),
        thousands(finished),
        thousands(events),
        events as f64 / finished.max(1) as f64
    );
    println!(
        "  {:<40} {:>13} {:>13} {:>9} {:>9}",
        "", "requests/s", "events/s", "wall", "CPU"
    );
    let row = |label: &str,
               requests_per_sec: f64,
               events_per_sec: Option<f64>,
               wall: f64,
               cpu: Option<f64>| {
        println!(
            "  {label:<40} {:>13} {:>13} {:>9} {:>9}",
            thousands(requests_per_sec as u64),
            events_per_sec.map_or("-".into(), |e| thousands(e as u64)),
            format!("{wall:.3}s"),
            cpu.map_or("-".into(), |c| format!("{c:.3}s"))
        );
    };
    row(
        "tenantsim in process (median)",
        finished as f64 / inside_wall,
        Some(events as f64 / inside_wall),
        inside_wall,
        inside_cpu,
    );
    if let Some(cpu) = inside_cpu {
        row(
            "tenantsim in process, per CPU second",
            finished as f64 / cpu,
            Some(events as f64 / cpu),
            cpu,
            Some(cpu),
        );
    }
    row(
        "tenantsim whole process (median)",
        finished as f64 / whole_wall,
        Some(events as f64 / whole_wall),
        whole_wall,
        whole_cpu,
    );
    // Per core: over the thread's CPU time where the platform reports it, else wall time.
    let (in_process_events, per) = match inside_cpu {
        Some(cpu) if cpu > 0.0 => (events as f64 / cpu, "CPU second"),
        _ => (events as f64 / inside_wall, "wall second"),
    };
    if let (Some(target), true) = (suite.events_budget, budgets_apply(suite, options)) {
        card.add(
            format!("{}, in process, events per {per} (one core)", suite.name),
            in_process_events,
            format!("{:.1}M", in_process_events / 1e6),
            Bound::AtLeast(target),
            format!(">= {:.0}M", target / 1e6),
        );
    }

    let figure = |python: &str| {
        format!(
            "{} vs SimPy 4.1.2 (Python {python}), whole process",
            suite.name
        )
    };
    let Some((runs, around, version)) = peer else {
        if let (Some(target), true) = (suite.speed_up_budget, budgets_apply(suite, options)) {
            // No interpreter ran, so none is named (as the reference suite's skipped row).
            card.skip(
                format!("{} vs SimPy 4.1.2, whole process", suite.name),
                "--no-peer",
                format!(">= {target:.0}x"),
            );
        }
        return Ok(());
    };
    let peer_rate = |r: &PeerRun| r.finished as f64 / r.process.wall;
    let (peer_wall, _, _) = spread(runs.iter().map(|r| r.process.wall).collect());
    let (peer_loop, _, _) = spread(runs.iter().map(|r| r.loop_secs).collect());
    let (peer_finished, _, _) = spread(runs.iter().map(|r| r.finished as f64).collect());
    let (peer_events, _, _) = spread(runs.iter().map(|r| r.events as f64).collect());
    let peer_cpu = runs
        .iter()
        .map(|r| r.process.cpu)
        .collect::<Option<Vec<f64>>>()
        .map(|cpus| spread(cpus).0);
    row(
        "SimPy in process (median; its own events)",
        peer_finished / peer_loop,
        Some(peer_events / peer_loop),
        peer_loop,
        None,
    );
    let peer_loop_cpu = runs
        .iter()
        .map(|r| r.loop_cpu)
        .collect::<Option<Vec<f64>>>()
        .map(|cpus| spread(cpus).0);
    if let Some(cpu) = peer_loop_cpu {
        row(
            "SimPy in process, per CPU second",
            peer_finished / cpu,
            Some(peer_events / cpu),
            cpu,
            Some(cpu),
        );
    }
    row(
        "SimPy whole process (median)",
        peer_finished / peer_wall,
        Some(peer_events / peer_wall),
        peer_wall,
        peer_cpu,
    );
    // Whole process: each SimPy run against the mean time of our runs just before and after it.
    let ours: Vec<f64> = around.iter().map(|wall| finished as f64 / wall).collect();
    let theirs: Vec<f64> = runs.iter().map(peer_rate).collect();
    let (ratio, low, high) = spread(bracketed(&theirs, &ours).map(|(t, o)| o / t).collect());
    let in_process = (finished as f64 / inside_wall) / (peer_finished / peer_loop);
    let in_process_cpu = match (inside_cpu, peer_loop_cpu) {
        (Some(ours), Some(theirs)) if ours > 0.0 && theirs > 0.0 => {
            format!(
                "{:.1}x",
                (finished as f64 / ours) / (peer_finished / theirs)
            )
        }
        _ => "-".into(),
    };
    let cpu_ratio = match (whole_cpu, peer_cpu) {
        (Some(ours), Some(theirs)) if ours > 0.0 => {
            Some((finished as f64 / ours) / (peer_finished / theirs))
        }
        _ => None,
    };
    println!(
        "  speed-up over SimPy 4.1.2 on Python {version}: whole process {ratio:.1}x (median of {} \
         SimPy runs, each against the mean time of our {} runs just before and after it; range \
         {low:.1}-{high:.1}x){}; in process {in_process:.1}x; CPU time: in process \
         {in_process_cpu}, whole process {}",
        runs.len(),
        2 * RUNS_PER_BRACKET,
        suite
            .speed_up_budget
            .map_or(String::new(), |t| format!("; target >= {t:.0}x")),
        cpu_ratio.map_or("-".into(), |r| format!("{r:.1}x"))
    );
    if let (Some(target), true) = (suite.speed_up_budget, budgets_apply(suite, options)) {
        card.add(
            figure(&version),
            ratio,
            format!("{ratio:.1}x"),
            Bound::AtLeast(target),
            format!(">= {target:.0}x"),
        );
    }
    Ok(())
}

/// Whether the suite's budgets apply: a scaled suite over at least [`BUDGET_REQUESTS`]
/// requests; a suite run as written, always.
fn budgets_apply(suite: &PeerSuite, options: &PeerOptions) -> bool {
    !suite.scaled || options.requests >= BUDGET_REQUESTS
}

/// The median CPU time of `runs`, if every one has it.
fn median_cpu(runs: &[ProcessTime]) -> Option<f64> {
    let cpus: Option<Vec<f64>> = runs.iter().map(|r| r.cpu).collect();
    cpus.map(|c| spread(c).0)
}

/// Our whole-process runs on each side of a SimPy run. A run of ours takes a third of a second
/// and SimPy's half a minute, so the host's speed swings (a fifth and more between two runs
/// here) average out over SimPy's run but not over one of ours: several, and their mean time,
/// make the ratio steadier. Their cost is small beside SimPy's.
const RUNS_PER_BRACKET: u32 = 3;

/// [`RUNS_PER_BRACKET`] whole-process runs of ours, added to `whole`; their mean wall time.
fn our_bracket(
    scenario: &str,
    overrides: &[String],
    out: &Path,
    whole: &mut Vec<ProcessTime>,
) -> Result<f64, String> {
    let mut total = 0.0;
    for _ in 0..RUNS_PER_BRACKET {
        let run = our_process(scenario, overrides, out)?;
        total += run.wall;
        whole.push(run);
    }
    Ok(total / f64::from(RUNS_PER_BRACKET))
}

/// `simulate run SCENARIO --quiet` with every report file written to `out`.
fn our_process(scenario: &str, overrides: &[String], out: &Path) -> Result<ProcessTime, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let mut command = Command::new(exe);
    command.args(["run", scenario, "--quiet", "--out"]).arg(out);
    for set in overrides {
        command.args(["--set", set]);
    }
    let (output, time) = timed(&mut command)?;
    // Exit 0 (pass) or 1 (an SLO failed) both ran the whole job.
    if !matches!(output.status.code(), Some(0 | 1)) {
        return Err(format!(
            "simulate run {scenario} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(time)
}

/// `python PEER --duration SECONDS --seed 1`, timed, with what it printed.
fn peer_process(python: &Path, peer: &str, seconds: u64) -> Result<PeerRun, String> {
    if !Path::new(peer).exists() {
        return Err(format!("{peer} not found (run from the repository root)"));
    }
    let mut command = Command::new(python);
    command
        .arg(peer)
        .args(["--duration", &seconds.to_string(), "--seed", "1"]);
    let (output, process) = timed(&mut command)?;
    if !output.status.success() {
        return Err(format!(
            "the peer {peer} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let printed: serde_json::Value = serde_json::from_str(stdout.trim())
        .map_err(|e| format!("cannot read the output of {peer} ({e}): {stdout}"))?;
    let number = |key: &str| printed.get(key).and_then(serde_json::Value::as_f64);
    match (number("wall_s"), number("finished"), number("events")) {
        (Some(loop_secs), Some(finished), Some(events)) if loop_secs > 0.0 => Ok(PeerRun {
            process,
            loop_secs,
            loop_cpu: number("cpu_s"),
            finished: finished as u64,
            events: events as u64,
        }),
        _ => Err(format!(
            "{peer} printed no wall_s, finished and events: {stdout}"
        )),
    }
}

/// Runs `command` to its end: its output, wall time, and CPU time (its own and its waited-for
/// children's, from /proc/self/stat's `cutime + cstime`, in 10 ms ticks).
fn timed(command: &mut Command) -> Result<(std::process::Output, ProcessTime), String> {
    let cpu_before = children_cpu_secs();
    let started = now();
    let output = command
        .output()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    let wall = started.elapsed().as_secs_f64();
    let cpu = match (cpu_before, children_cpu_secs()) {
        (Some(before), Some(after)) => Some(after - before),
        _ => None,
    };
    Ok((output, ProcessTime { wall, cpu }))
}

/// CPU seconds of this process's waited-for children (Linux; `None` elsewhere).
fn children_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_children_ticks(&stat).map(|ticks| ticks as f64 / TICKS_PER_SEC)
}

/// CPU seconds this thread has run, in nanoseconds from /proc/thread-self/schedstat (its first
/// field; Linux with scheduler statistics, `None` elsewhere).
fn thread_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: u64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(nanos as f64 / 1e9)
}

/// `cutime + cstime` (fields 16 and 17) of a /proc/PID/stat line; the command name (field 2,
/// in parentheses) may hold spaces, so fields are counted from its closing parenthesis.
fn parse_children_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state).
    let cutime: u64 = fields.get(16 - 3)?.parse().ok()?;
    let cstime: u64 = fields.get(17 - 3)?.parse().ok()?;
    Some(cutime + cstime)
}

#[allow(clippy::disallowed_methods)] // ok: benchmarks time things
fn now() -> Instant {
    Instant::now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_cpu_time_is_read_past_a_command_name_with_spaces() {
        let stat = "4242 (my prog) S 1 4242 4242 0 -1 4194560 100 200 0 0 7 3 25 14 20 0 1 0 \
                    123 456 789";
        // Fields: 14 utime = 7, 15 stime = 3, 16 cutime = 25, 17 cstime = 14.
        assert_eq!(parse_children_ticks(stat), Some(39));
        assert_eq!(parse_children_ticks("no parenthesis"), None);
        assert_eq!(parse_children_ticks("1 (short) S 1 2"), None);
    }

    #[test]
    fn a_scaled_suite_is_judged_only_over_a_million_requests() {
        let options = |requests| PeerOptions {
            requests,
            repeat: 1,
            peer_rounds: 1,
            python: None,
            out_root: Path::new("target"),
        };
        assert!(budgets_apply(&MMC_FULL, &options(1_000_000)));
        assert!(!budgets_apply(&MMC_FULL, &options(999_999)));
        // Run as written, whatever --requests says.
        assert!(budgets_apply(&HOT_TENANT_FULL, &options(10)));
    }
}
