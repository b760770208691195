//! The SimPy peers of `simulate bench` check the model: for each realistic bench scenario
//! (`benches/mmc-full.toml`, `benches/hot-tenant-full.toml`, `benches/bulkhead.toml`), the
//! per-tier (or per-class) throttle fraction, error rate, mean, p50 and p99 latency of `ok`
//! requests (and the cache's hit ratio) of tenantsim and of its independently written SimPy
//! peer (`benches/peers/*_simpy.py`) agree within their confidence intervals over several
//! seeds. A slow check (`TENANTSIM_SLOW=1`; it needs Python with simpy 4.1.2, see
//! [`python`]): about 5 minutes of CPU, mostly SimPy's. The table in docs/validation.md
//! ("The SimPy peers") is this test's output:
//!
//! `TENANTSIM_SLOW=1 cargo test --release --test it peers -- --nocapture`
//!
//! **Method.** R seeds per side (tenantsim's seeds drive its own streams, the peer's drive
//! Python's `random`; no stream is shared). Each figure is the mean of the R per-seed values
//! with its 95 % Student-t interval; the two sides agree when the difference of the means is
//! within the 99 % Welch interval of the difference (99 % per check, so that some two dozen
//! checks do not fail one in two runs by chance), widened for quantiles by nothing else:
//! past 2,048 samples tenantsim reads quantiles from a 2-significant-digit histogram (the upper
//! edge of the sample's bucket), so the peer's exact quantile is mapped to the upper edge of
//! the same bucket before it is compared.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;
use tenantsim::pipeline;
use tenantsim::report;
use tenantsim::scenario::LoadOptions;

use crate::common::root;

/// Whether this slow check runs (`TENANTSIM_SLOW=1`).
fn slow() -> bool {
    std::env::var("TENANTSIM_SLOW").is_ok_and(|v| v == "1")
}

/// Seeds per side.
const SEEDS: u64 = 6;

/// One bench scenario and its peer.
struct Suite {
    scenario: &'static str,
    peer: &'static str,
    /// Simulated seconds (`None`: as written).
    seconds: Option<u64>,
    /// Whether the groups are request classes (`classes[].total`) rather than tiers.
    by_class: bool,
    groups: &'static [&'static str],
}

const SUITES: [Suite; 3] = [
    Suite {
        scenario: "benches/mmc-full.toml",
        peer: "benches/peers/mmc_full_simpy.py",
        seconds: Some(300),
        by_class: false,
        groups: &["flat"],
    },
    Suite {
        scenario: "benches/hot-tenant-full.toml",
        peer: "benches/peers/hot_tenant_simpy.py",
        seconds: None,
        by_class: false,
        groups: &["enterprise", "standard"],
    },
    Suite {
        scenario: "benches/bulkhead.toml",
        peer: "benches/peers/bulkhead_simpy.py",
        seconds: Some(300),
        by_class: true,
        groups: &["api", "report"],
    },
];

/// Python with simpy: `TENANTSIM_PEER_PYTHON`, else `target/peer-venv/bin/python` (made by
/// `simulate bench mmc-full`), else `.venv/bin/python`.
fn python() -> PathBuf {
    let candidates: Vec<PathBuf> = std::env::var_os("TENANTSIM_PEER_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain([
            root().join("target/peer-venv/bin/python"),
            root().join(".venv/bin/python"),
        ])
        .collect();
    candidates
        .into_iter()
        .find(|p| {
            Command::new(p)
                .args(["-c", "import simpy"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect(
            "no Python with simpy: run `cargo run --release -- bench mmc-full --requests 60000 \
             --peer-rounds 1` once (it makes target/peer-venv), or set TENANTSIM_PEER_PYTHON",
        )
}

/// One seed's figures per group and its cache hit ratio.
type Run = (Vec<Figures>, f64);
/// A run tagged with its suite index and seed.
type Tagged = (usize, u64, Run);
/// A compared figure: its label, how to read it from [`Figures`], its unit (scale, suffix).
type Row = (&'static str, fn(&Figures) -> f64, (f64, &'static str));

/// What one run says about one group.
#[derive(Clone, Copy, Debug, Default)]
struct Figures {
    throttled: f64,
    errors: f64,
    mean_ms: f64,
    p50_ms: f64,
    p99_ms: f64,
    ok: u64,
}

/// The figures of a group from its counts and latency fields (`ok`, `throttled`, `rejected`,
/// `failed`, `timed_out`; `mean`, `p50`, `p99` in milliseconds under `latency`).
fn figures(counts: &Value, latency: &Value) -> Figures {
    let n = |key: &str| {
        counts[key]
            .as_u64()
            .unwrap_or_else(|| panic!("no {key} in {counts}"))
    };
    let ms = |key: &str| latency[key].as_f64().unwrap_or(f64::NAN);
    let finished = (n("ok") + n("throttled") + n("rejected") + n("failed") + n("timed_out")) as f64;
    Figures {
        throttled: n("throttled") as f64 / finished,
        errors: (n("rejected") + n("failed") + n("timed_out")) as f64 / finished,
        mean_ms: ms("mean"),
        p50_ms: ms("p50"),
        p99_ms: ms("p99"),
        ok: n("ok"),
    }
}

/// One seed of tenantsim: each group's figures and the cache hit ratio (NaN without lookups).
fn model_run(suite: &Suite, seed: u64) -> Run {
    let path = root().join(suite.scenario);
    let text = std::fs::read_to_string(&path).expect("the bench scenario");
    let options = LoadOptions {
        path: suite.scenario.to_string(),
        overrides: suite
            .seconds
            .map(|s| format!("simulation.duration=\"{s}s\""))
            .into_iter()
            .collect(),
        seed: Some(seed),
        files: None,
    };
    let executed = pipeline::execute(&text, &options).expect("the bench scenario runs");
    let json: Value = serde_json::from_str(&report::to_json(&executed.report)).expect("json");
    let groups = suite
        .groups
        .iter()
        .map(|name| {
            let group = if suite.by_class {
                json["classes"]
                    .as_array()
                    .and_then(|c| c.iter().find(|c| c["name"] == *name))
                    .map(|c| &c["total"])
            } else {
                json["tiers"]
                    .as_array()
                    .and_then(|t| t.iter().find(|t| t["name"] == *name))
            }
            .unwrap_or_else(|| panic!("no group {name} in the report of {}", suite.scenario));
            figures(group, &group["latency_ms"])
        })
        .collect();
    let (mut hits, mut misses) = (0u64, 0u64);
    for tenant in json["tenants"].as_array().into_iter().flatten() {
        hits += tenant["counters"]["cache_hits"].as_u64().unwrap_or(0);
        misses += tenant["counters"]["cache_misses"].as_u64().unwrap_or(0);
    }
    let ratio = if hits + misses == 0 {
        f64::NAN
    } else {
        hits as f64 / (hits + misses) as f64
    };
    (groups, ratio)
}

/// One seed of the peer: each group's figures and its cache hit ratio (NaN without one).
fn peer_run(python: &Path, suite: &Suite, seed: u64) -> Run {
    let mut command = Command::new(python);
    command
        .arg(root().join(suite.peer))
        .args(["--seed", &seed.to_string()]);
    if let Some(s) = suite.seconds {
        command.args(["--duration", &s.to_string()]);
    }
    let output = command.output().expect("python runs");
    assert!(
        output.status.success(),
        "{} failed: {}",
        suite.peer,
        String::from_utf8_lossy(&output.stderr)
    );
    let json: Value = serde_json::from_slice(&output.stdout).expect("the peer prints JSON");
    let key = if suite.by_class { "classes" } else { "tiers" };
    let groups = suite
        .groups
        .iter()
        .map(|name| {
            let group = &json[key][*name];
            let latency = serde_json::json!({
                "mean": group["mean_ms"], "p50": group["p50_ms"], "p99": group["p99_ms"],
            });
            let mut f = figures(group, &latency);
            // tenantsim's quantile past 2,048 samples: the upper edge of its histogram bucket.
            if f.ok > 2048 {
                f.p50_ms = bucket_upper_edge_ms(f.p50_ms);
                f.p99_ms = bucket_upper_edge_ms(f.p99_ms);
            }
            f
        })
        .collect();
    (groups, json["cache_hit_ratio"].as_f64().unwrap_or(f64::NAN))
}

/// The largest value of the 2-significant-digit microsecond bucket that holds `ms` (rounded
/// up to whole microseconds, as tenantsim records latencies).
fn bucket_upper_edge_ms(ms: f64) -> f64 {
    let histogram =
        hdrhistogram::Histogram::<u64>::new_with_bounds(1, u64::MAX / 2, 2).expect("valid bounds");
    let micros = (ms * 1e3).ceil() as u64;
    histogram.highest_equivalent(micros) as f64 / 1e3
}

/// Mean, sample variance.
fn moments(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var)
}

/// Student's t quantile at 97.5 % (`two_sided_99 = false`) or 99.5 %, `df` degrees of freedom
/// (1 to 30; beyond, the normal's).
fn student_t(df: usize, two_sided_99: bool) -> f64 {
    const T975: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    const T995: [f64; 30] = [
        63.657, 9.925, 5.841, 4.604, 4.032, 3.707, 3.499, 3.355, 3.250, 3.169, 3.106, 3.055, 3.012,
        2.977, 2.947, 2.921, 2.898, 2.878, 2.861, 2.845, 2.831, 2.819, 2.807, 2.797, 2.787, 2.779,
        2.771, 2.763, 2.756, 2.750,
    ];
    let table = if two_sided_99 { &T995 } else { &T975 };
    match df {
        0 => f64::INFINITY,
        1..=30 => table[df - 1],
        _ if two_sided_99 => 2.576,
        _ => 1.960,
    }
}

/// Whether two sets of per-seed values agree: `|mean difference| <= t(0.995, Welch df) * se`.
/// Returns (agree, difference, the bound).
fn agree(a: &[f64], b: &[f64]) -> (bool, f64, f64) {
    let ((ma, va), (mb, vb)) = (moments(a), moments(b));
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (sa, sb) = (va / na, vb / nb);
    let se = (sa + sb).sqrt();
    let diff = ma - mb;
    if se == 0.0 {
        return (diff == 0.0, diff, 0.0);
    }
    let df = (sa + sb).powi(2) / (sa * sa / (na - 1.0) + sb * sb / (nb - 1.0));
    let bound = student_t(df.floor().max(1.0) as usize, true) * se;
    (diff.abs() <= bound, diff, bound)
}

/// `mean ± 95 % half-width` of per-seed values, in `unit` (a scale and a suffix).
fn estimate(xs: &[f64], (scale, suffix): (f64, &str)) -> String {
    let (mean, var) = moments(xs);
    let half = student_t(xs.len() - 1, false) * (var / xs.len() as f64).sqrt();
    let digits = if suffix == " %" { 3 } else { 2 };
    format!(
        "{:.digits$} ± {:.digits$}{suffix}",
        mean * scale,
        half * scale
    )
}

#[test]
fn simpy_peers_agree_with_the_model_within_confidence_intervals() {
    if !slow() {
        eprintln!("skipped: set TENANTSIM_SLOW=1 (needs Python with simpy 4.1.2)");
        return;
    }
    let python = python();
    // The peers take seconds to minutes each: run them on every core, the model meanwhile.
    let jobs: Vec<(usize, u64)> = (0..SUITES.len())
        .flat_map(|s| (1..=SEEDS).map(move |seed| (s, seed)))
        .collect();
    let next = AtomicUsize::new(0);
    let peer_results = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let model_results: Vec<Tagged> = std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(s, seed)) = jobs.get(i) else {
                        break;
                    };
                    let result = peer_run(&python, &SUITES[s], seed);
                    peer_results.lock().expect("lock").push((s, seed, result));
                }
            });
        }
        jobs.iter()
            .map(|&(s, seed)| (s, seed, model_run(&SUITES[s], seed)))
            .collect()
    });
    let peer_results = peer_results.into_inner().expect("lock");

    let mut failures = Vec::new();
    println!(
        "| suite: group, figure | tenantsim (95 % CI) | SimPy peer (95 % CI) | difference | \
         99 % bound | agree |"
    );
    println!("|---|---|---|---|---|---|");
    for (s, suite) in SUITES.iter().enumerate() {
        let of = |results: &[Tagged]| -> Vec<Run> {
            let mut mine: Vec<_> = results.iter().filter(|r| r.0 == s).collect();
            mine.sort_by_key(|r| r.1);
            mine.into_iter().map(|r| r.2.clone()).collect()
        };
        let (model, peer) = (of(&model_results), of(&peer_results));
        let name = suite
            .scenario
            .trim_start_matches("benches/")
            .trim_end_matches(".toml");
        let mut compare = |label: String, a: Vec<f64>, b: Vec<f64>, unit: (f64, &str)| {
            let (ok, diff, bound) = agree(&a, &b);
            println!(
                "| {label} | {} | {} | {:+.4}{} | {:.4}{} | {} |",
                estimate(&a, unit),
                estimate(&b, unit),
                diff * unit.0,
                unit.1,
                bound * unit.0,
                unit.1,
                if ok { "yes" } else { "**no**" }
            );
            if !ok {
                failures.push(label);
            }
        };
        for (g, group) in suite.groups.iter().enumerate() {
            let pick = |runs: &[Run], f: fn(&Figures) -> f64| -> Vec<f64> {
                runs.iter().map(|r| f(&r.0[g])).collect()
            };
            let percent = (100.0, " %");
            let millis = (1.0, " ms");
            let rows: [Row; 5] = [
                ("throttled", |f| f.throttled, percent),
                ("errors", |f| f.errors, percent),
                ("mean latency", |f| f.mean_ms, millis),
                ("p50 latency", |f| f.p50_ms, millis),
                ("p99 latency", |f| f.p99_ms, millis),
            ];
            for (figure, f, unit) in rows {
                compare(
                    format!("{name}: {group}, {figure}"),
                    pick(&model, f),
                    pick(&peer, f),
                    unit,
                );
            }
        }
        let ratios = |runs: &[Run]| -> Vec<f64> { runs.iter().map(|r| r.1).collect() };
        let (a, b) = (ratios(&model), ratios(&peer));
        if a.iter().chain(&b).all(|x| x.is_finite()) {
            compare(format!("{name}: cache hit ratio"), a, b, (100.0, " %"));
        }
    }
    println!(
        "({SEEDS} seeds per side; tenantsim seeds 1-{SEEDS} and the peer's seeds 1-{SEEDS} drive \
         unrelated generators)"
    );
    assert!(
        failures.is_empty(),
        "tenantsim and its SimPy peers disagree on: {failures:?}"
    );
}

#[test]
fn agreement_needs_the_difference_within_the_welch_bound() {
    let a = [10.0, 10.2, 9.8, 10.1, 9.9, 10.0];
    // The same spread around the same mean agrees; around a mean 1 higher it does not.
    assert!(agree(&a, &a.map(|x| x + 0.05)).0);
    assert!(!agree(&a, &a.map(|x| x + 1.0)).0);
    // Identical constants agree; different constants do not.
    assert!(agree(&[0.0; 4], &[0.0; 4]).0);
    assert!(!agree(&[0.0; 4], &[0.1; 4]).0);
}

#[test]
fn a_peer_quantile_is_read_as_tenantsims_histogram_reads_it() {
    // 266.0 ms = 266,000 us lies in a 2,048 us bucket (2^18 <= v < 2^19 at 2 significant
    // digits: 128 sub-buckets per power of two) whose upper edge is 266,239 us.
    assert_eq!(bucket_upper_edge_ms(266.0), 266.239);
    // Small values are exact to the microsecond.
    assert_eq!(bucket_upper_edge_ms(0.1), 0.1);
}
