//! Issue 3's model-level test: retries under a database brown-out. Aggressive retries without
//! a budget amplify offered load and outlive the fault (a metastable failure); backoff with
//! jitter and a retry budget keep amplification low and recover within seconds.
//!
//! Run with `cargo test --test it resilience -- --nocapture` to see the measured numbers.

use tenantsim::model::RunOptions;
use tenantsim::model::config::FaultKind;
use tenantsim::model::series::Series;
use tenantsim::pipeline::{Executed, execute_with};
use tenantsim::scenario::LoadOptions;
use tenantsim::time::{SimDuration, SimTime};

/// The twin line of `scenarios/retry-storm.toml`: immediate retries, no budget, six attempts.
const AGGRESSIVE: [&str; 3] = [
    "tenants.client.retry.backoff=none",
    "tenants.client.retry.budget=false",
    "tenants.client.retry.max_attempts=6",
];

/// A bucket of the time series is healthy when, in every tenant class, fewer than this share
/// of the requests that ended in it ended in an error...
const HEALTHY_ERROR_SHARE: f64 = 0.01;
/// ... and the p99 latency of the ones that ended ok is under this (the scenario's SLO).
const HEALTHY_P99: SimDuration = SimDuration::from_millis(250);

/// The retry-storm drill with the brown-out window tracked for every tenant.
fn retry_storm(overrides: &[&str]) -> Executed {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/retry-storm.toml");
    let mut text = std::fs::read_to_string(path).expect("scenarios/retry-storm.toml readable");
    text.push_str(
        r#"
[[slo]]
name = "track the brown-out window"
tenants = "all"
scope = "pooled"
window = "during:brownout"
expect = ["count >= 1"]
"#,
    );
    let options = LoadOptions {
        path: "scenarios/retry-storm.toml".into(),
        overrides: overrides.iter().map(|s| s.to_string()).collect(),
        seed: None,
        files: None,
    };
    execute_with(&text, &options, RunOptions::default())
        .unwrap_or_else(|e| panic!("retry-storm with {overrides:?} runs: {e}"))
}

/// The brown-out's start and end.
fn brownout(run: &Executed) -> (SimTime, SimTime) {
    let fault = run
        .scenario
        .system
        .faults
        .iter()
        .find(|f| f.name == "brownout")
        .expect("retry-storm has a fault named brownout");
    assert!(matches!(fault.kind, FaultKind::DbSlowdown { .. }));
    (fault.at, fault.end())
}

/// Attempts per request over the requests issued during the brown-out (all tenants pooled).
fn amplification(run: &Executed) -> f64 {
    let window = run
        .scenario
        .system
        .windows
        .iter()
        .position(|w| w.label == "during:brownout")
        .expect("the brown-out window is tracked");
    let (mut issued, mut attempts) = (0u64, 0u64);
    for tenant in &run.output.metrics.tenants {
        let stats = tenant.window(window).expect("every tenant is judged in it");
        issued += stats.counts.issued;
        attempts += stats.counts.attempts;
    }
    assert!(issued > 10_000, "the brown-out saw {issued} requests");
    attempts as f64 / issued as f64
}

/// Whether bucket `b` is healthy in every class (see [`HEALTHY_ERROR_SHARE`]). A bucket in
/// which nothing ended is not healthy: the tenants send requests all the time.
fn healthy(series: &Series, b: usize) -> bool {
    (0..series.classes.len()).all(|class| {
        let bucket = &series.class_buckets(class)[b];
        let ended = bucket.ok + bucket.throttled + bucket.errors;
        ended > 0
            && (bucket.errors as f64) < HEALTHY_ERROR_SHARE * ended as f64
            && bucket
                .latency_percentile(99.0)
                .is_some_and(|p99| p99 < HEALTHY_P99)
    })
}

/// Time from the fault's end to the start of the first bucket (starting at or after the end)
/// from which every later bucket is healthy; `None` if the run ends unhealthy.
fn recovery(run: &Executed, fault_end: SimTime) -> Option<SimDuration> {
    let series = &run.output.series;
    let first = (0..series.buckets).find(|&b| series.bucket_start(b) >= fault_end)?;
    let mut recovered = None;
    for b in (first..series.buckets).rev() {
        if !healthy(series, b) {
            break;
        }
        recovered = Some(b);
    }
    recovered.map(|b| series.bucket_start(b) - fault_end)
}

/// Whether the buckets before the fault were healthy (so recovery means something).
fn healthy_before(run: &Executed, fault_start: SimTime) -> bool {
    let series = &run.output.series;
    let warm = run.scenario.system.simulation.warmup;
    (0..series.buckets)
        .filter(|&b| {
            let start = series.bucket_start(b);
            start >= SimTime::ZERO + warm && start + series.bucket <= fault_start
        })
        .all(|b| healthy(series, b))
}

/// The share of requests ending in `[from, to)` that ended in an error, all classes pooled.
fn error_share(run: &Executed, from: SimTime, to: SimTime) -> f64 {
    let series = &run.output.series;
    let (mut errors, mut ended) = (0u64, 0u64);
    for class in 0..series.classes.len() {
        for (b, bucket) in series.class_buckets(class).iter().enumerate() {
            let start = series.bucket_start(b);
            if start >= from && start + series.bucket <= to {
                errors += bucket.errors;
                ended += bucket.ok + bucket.throttled + bucket.errors;
            }
        }
    }
    errors as f64 / ended.max(1) as f64
}

fn show(recovery: Option<SimDuration>) -> String {
    recovery.map_or("never (unhealthy at the end of the run)".into(), |d| {
        format!("{d}")
    })
}

#[test]
fn retry_storm_amplifies_and_outlives_the_brownout_without_budget_or_jitter() {
    let calm = retry_storm(&[]);
    let storm = retry_storm(&AGGRESSIVE);
    let (start, end) = brownout(&calm);
    let bucket = calm.output.series.bucket;

    let calm_amplification = amplification(&calm);
    let storm_amplification = amplification(&storm);
    let calm_recovery = recovery(&calm, end);
    let storm_recovery = recovery(&storm, end);
    let run_end = calm.scenario.system.end();
    let late = end + SimDuration::from_secs(10);
    let (calm_late, storm_late) = (
        error_share(&calm, late, run_end),
        error_share(&storm, late, run_end),
    );
    println!(
        "retry-storm (20 s db_slowdown x10; healthy = every class has < 1% errors and p99 < \
         250 ms in a {bucket} bucket)"
    );
    println!(
        "  backoff + jitter + budget: amplification {calm_amplification:.3}x, recovered {} \
         after the brown-out",
        show(calm_recovery)
    );
    println!(
        "    errors from 10 s after the brown-out to the end: {:.2}%",
        100.0 * calm_late
    );
    println!(
        "  no backoff, no budget, 6 attempts: amplification {storm_amplification:.3}x, \
         recovered {} after the brown-out",
        show(storm_recovery)
    );
    println!(
        "    errors from 10 s after the brown-out to the end: {:.2}%",
        100.0 * storm_late
    );

    assert!(healthy_before(&calm, start) && healthy_before(&storm, start));
    assert!(
        calm_amplification < 1.5,
        "budgeted retries amplified load {calm_amplification:.3}x"
    );
    let calm_recovery = calm_recovery.expect("budgeted retries recover");
    assert!(
        calm_recovery <= SimDuration::from_secs(10),
        "budgeted retries recovered only {calm_recovery} after the brown-out"
    );
    assert!(
        storm_amplification > 3.0,
        "aggressive retries amplified load only {storm_amplification:.3}x"
    );
    // Metastable: still degraded well after its trigger is gone.
    assert!(
        storm_recovery.is_none_or(|d| d >= SimDuration::from_secs(30)),
        "the retry storm recovered {} after the brown-out",
        show(storm_recovery)
    );
    assert!(
        storm_late > 0.5,
        "the retry storm's errors from 10 s after the brown-out: {storm_late:.3}"
    );
}
