//! `simulate bench`: speed of the full pipeline on the reference M/M/c model, measured side by
//! side with the SimPy peer in the same run, and its accuracy against Erlang C.
//!
//! Wall-clock timing is the point of this command, so it is the one place that reads
//! `Instant::now` (the CLI layer is allowed to).

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use clap::Args;

use super::{EXIT_INVALID, EXIT_PASS, read_scenario};
use crate::analytic::MMc;
use crate::model::dist::Dist;
use crate::model::metrics::WindowStats;
use crate::pipeline;
use crate::report;
use crate::report::summary::thousands;
use crate::scenario::LoadOptions;

/// Options of `simulate bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Requests to simulate (the run length is set so the scenario issues about this many).
    #[arg(long, default_value_t = 1_000_000)]
    requests: u64,
    /// Reference scenario (one cell, exponential service, no database).
    #[arg(long, default_value = "benches/mmc-reference.toml")]
    scenario: PathBuf,
    /// Timed runs of our simulator; the median is reported.
    #[arg(long, default_value_t = 3)]
    repeat: u32,
    /// Python with simpy 4.1.2 installed. Default: .venv/bin/python if it has simpy, else a
    /// virtual environment created in target/peer-venv.
    #[arg(long, value_name = "PATH")]
    python: Option<PathBuf>,
    /// Skip the SimPy peer.
    #[arg(long)]
    no_peer: bool,
}

/// Runs the benchmark and prints a table.
pub fn bench_command(args: &BenchArgs) -> u8 {
    let text = match read_scenario(&args.scenario) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_INVALID;
        }
    };
    let base = LoadOptions {
        path: args.scenario.display().to_string(),
        ..LoadOptions::default()
    };
    let scenario = match crate::scenario::load(&text, &base) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_INVALID;
        }
    };
    let total_rate: f64 = scenario.system.tenants.iter().map(|t| t.arrival.rate).sum();
    let seconds = (args.requests as f64 / total_rate).ceil().max(1.0) as u64;
    let options = LoadOptions {
        overrides: vec![format!("simulation.duration=\"{seconds}s\"")],
        ..base
    };
    let workers = scenario.system.cells.first().map_or(1, |c| c.api.workers);

    eprintln!(
        "bench: {} for {seconds} simulated seconds (~{} requests), {} timed run(s)",
        args.scenario.display(),
        thousands(args.requests),
        args.repeat
    );
    let mut walls = Vec::new();
    let mut last = None;
    for _ in 0..args.repeat.max(1) {
        #[allow(clippy::disallowed_methods)] // ok: the CLI times the whole pipeline
        let started = Instant::now();
        let executed = match pipeline::execute(&text, &options) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("{e}");
                return EXIT_INVALID;
            }
        };
        let json = report::to_json(&executed.report);
        walls.push(started.elapsed());
        std::hint::black_box(json);
        last = Some(executed);
    }
    let Some(executed) = last else {
        return EXIT_INVALID;
    };
    walls.sort();
    let wall = walls[walls.len() / 2];
    let completed: u64 = executed
        .output
        .metrics
        .tenants
        .iter()
        .map(|t| t.total.finished())
        .sum();
    let events = executed.output.events;
    let ours_rps = completed as f64 / wall.as_secs_f64();
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
        thousands((events as f64 / wall.as_secs_f64()) as u64),
        format!("{:.3}s", wall.as_secs_f64())
    );

    let mut status = EXIT_PASS;
    if !args.no_peer {
        match run_simpy(args, workers) {
            Ok(peer) => {
                println!(
                    "{:<34} {:>14} {:>14} {:>12}",
                    "SimPy 4.1.2 peer (mmc_simpy.py)",
                    thousands(peer.requests_per_sec as u64),
                    thousands((2.0 * peer.requests_per_sec) as u64),
                    format!("{:.3}s", peer.wall_secs)
                );
                println!();
                println!(
                    "speed-up over SimPy: {:.1}x (requests/s, same model, same run)",
                    ours_rps / peer.requests_per_sec
                );
            }
            Err(e) => {
                eprintln!("warning: SimPy peer not measured: {e}");
                status = EXIT_INVALID;
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

struct PeerResult {
    wall_secs: f64,
    requests_per_sec: f64,
}

fn run_simpy(args: &BenchArgs, workers: u32) -> Result<PeerResult, String> {
    let python = find_python(args)?;
    let script = PathBuf::from("benches/peers/mmc_simpy.py");
    if !script.exists() {
        return Err(format!(
            "{} not found (run from the repository root)",
            script.display()
        ));
    }
    eprintln!("bench: running the SimPy peer with {}", python.display());
    let output = Command::new(&python)
        .arg(&script)
        .arg(args.requests.to_string())
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
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
