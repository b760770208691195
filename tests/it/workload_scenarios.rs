//! Realistic workloads wired into scenarios (issue 25): `[simulation] start` and clock times,
//! `[[schedules]]` (points and a daily profile) composed with spikes, MMPP and renewal tenants,
//! and a `count` group's member sizes, each through the loader and the model. The processes
//! themselves are validated against closed forms in `workload.rs`; here the checks are that
//! the scenario keys reach them, and that a schedule never makes a tenant a fault's target.

use tenantsim::kernel::rng::Streams;
use tenantsim::model::RunOptions;
use tenantsim::model::arrivals::SizeLaw;
use tenantsim::pipeline::{Executed, execute_with};
use tenantsim::scenario::{self, LoadOptions, Scenario};
use tenantsim::time::{SimDuration, SimTime};

fn options(overrides: &[&str]) -> LoadOptions {
    LoadOptions {
        path: "workload.toml".into(),
        overrides: overrides.iter().map(|s| s.to_string()).collect(),
        seed: None,
        files: None,
    }
}

fn run(text: &str, overrides: &[&str]) -> Executed {
    execute_with(text, &options(overrides), RunOptions::default())
        .unwrap_or_else(|e| panic!("scenario with {overrides:?} runs: {e}\n{text}"))
}

fn load(text: &str, overrides: &[&str]) -> Scenario {
    scenario::load(text, &options(overrides))
        .unwrap_or_else(|e| panic!("scenario with {overrides:?} loads: {e}\n{text}"))
}

fn load_error(text: &str) -> String {
    match scenario::load(text, &options(&[])) {
        Ok(_) => panic!("the scenario loads:\n{text}"),
        Err(e) => e.to_string(),
    }
}

/// A roomy cell (no queueing to speak of), so every request ends ok and counts of ok requests
/// are counts of arrivals.
const HEAD: &str = r#"
name = "workload"
[[tiers]]
name = "std"
rate = 1000000
burst = 1000000
[[cells]]
name = "a"
region = "us"
api = { workers = 4096, queue = 4096, service_time = { dist = "constant", value = "1us" } }
"#;

fn scenario(simulation: &str, rest: &str) -> String {
    format!("{HEAD}\n[simulation]\n{simulation}\n{rest}")
}

/// Ok requests of `tenant` in SLO `slo`'s window (from its check's samples).
fn samples(run: &Executed, slo: &str, tenant: &str) -> u64 {
    run.report
        .slos
        .iter()
        .find(|s| s.name == slo)
        .and_then(|s| s.checks.iter().find(|c| c.tenant == tenant))
        .map(|c| c.samples)
        .unwrap_or_else(|| panic!("no check of {tenant} in {slo}"))
}

fn hours(h: f64) -> SimTime {
    SimTime::ZERO + SimDuration::from_secs_f64(h * 3600.0)
}

#[test]
fn clock_times_resolve_against_the_start_in_faults_and_windows() {
    // Sunday 22:00: "Mon 09:00" is 11 h later, "09:00" too, "23:00" 1 h.
    let text = scenario(
        "duration = \"24h\"\nstart = \"2026-03-01T22:00:00Z\"",
        r#"
[[tenants]]
name = "t"
tier = "std"
arrival = { rate = 1 }
[[faults]]
name = "monday"
kind = "load_spike"
tenant = "t"
multiplier = 2
at = "Mon 09:00"
duration = "1h"
[[faults]]
name = "late"
kind = "load_spike"
tenant = "t"
multiplier = 2
at = "23:00"
duration = "10m"
[[faults]]
name = "offset"
kind = "load_spike"
tenant = "t"
multiplier = 2
at = "90m"
duration = "10m"
[[slo]]
name = "morning"
tenants = ["t"]
window = "08:00..Mon 10:30"
expect = ["p99 < 1s"]
min_samples = 1
"#,
    );
    let s = load(&text, &[]);
    let at: Vec<SimTime> = s.system.faults.iter().map(|f| f.at).collect();
    assert_eq!(at, vec![hours(11.0), hours(1.0), hours(1.5)]);
    let window = &s.system.windows[1];
    assert_eq!((window.start, window.end), (hours(10.0), hours(12.5)));

    // Without a start, a clock time is refused and the message says what is missing.
    let without = text.replace("start = \"2026-03-01T22:00:00Z\"", "");
    let error = load_error(&without);
    assert!(
        error.contains("faults.monday.at") && error.contains("needs `[simulation] start`"),
        "{error}"
    );
    assert!(
        error.contains("slo"),
        "the window's clock times are refused too: {error}"
    );
}

const STEP_SCHEDULE: &str = r#"
[[schedules]]
name = "steps"
points = [["0s", 1.0], ["1h", 3.0], ["2h", 0.5]]
[[tenants]]
name = "scheduled"
tier = "std"
arrival = { rate = 20 }
schedule = "steps"
[[tenants]]
name = "flat"
tier = "std"
arrival = { rate = 20 }
[[slo]]
name = "h1"
tenants = "all"
window = "0s..1h"
expect = ["p99 < 1s"]
min_samples = 1
[[slo]]
name = "h2"
tenants = "all"
window = "1h..2h"
expect = ["p99 < 1s"]
min_samples = 1
[[slo]]
name = "h3"
tenants = "all"
window = "2h..3h"
expect = ["p99 < 1s"]
min_samples = 1
[[slo]]
name = "bystanders"
tenants = "bystanders"
expect = ["p99 < 1s"]
min_samples = 1
"#;

/// Within `sigmas` Poisson standard deviations of `mean`.
fn near(count: u64, mean: f64, sigmas: f64) -> bool {
    (count as f64 - mean).abs() <= sigmas * mean.sqrt()
}

#[test]
fn a_schedule_scales_the_rate_hour_by_hour_and_targets_nobody() {
    let r = run(&scenario("duration = \"3h\"", STEP_SCHEDULE), &[]);
    let per_hour = 20.0 * 3600.0;
    for (slo, m) in [("h1", 1.0), ("h2", 3.0), ("h3", 0.5)] {
        let scheduled = samples(&r, slo, "scheduled");
        assert!(
            near(scheduled, per_hour * m, 5.0),
            "{slo}: {scheduled} arrivals, expected about {}",
            per_hour * m
        );
        let flat = samples(&r, slo, "flat");
        assert!(near(flat, per_hour, 5.0), "{slo}: the flat tenant {flat}");
    }
    // Both are bystanders: a schedule is not a fault.
    assert!(r.scenario.system.is_bystander(0));
    let judged: Vec<&str> = r.report.slos[3]
        .checks
        .iter()
        .map(|c| c.tenant.as_str())
        .collect();
    assert_eq!(judged, vec!["scheduled", "flat"]);
}

#[test]
fn a_load_spike_multiplies_the_schedule_and_only_the_spiked_tenant_is_targeted() {
    let spike = r#"
[[faults]]
name = "spike"
kind = "load_spike"
tenant = "scheduled"
multiplier = 4
at = "1h"
duration = "1h"
"#;
    let text = scenario("duration = \"3h\"", &format!("{STEP_SCHEDULE}{spike}"));
    let r = run(&text, &[]);
    let per_hour = 20.0 * 3600.0;
    // Hour 2: the schedule's 3 times the spike's 4.
    let h2 = samples(&r, "h2", "scheduled");
    assert!(near(h2, per_hour * 12.0, 5.0), "{h2}");
    let h3 = samples(&r, "h3", "scheduled");
    assert!(near(h3, per_hour * 0.5, 5.0), "{h3}");
    assert!(!r.scenario.system.is_bystander(0));
    assert!(r.scenario.system.is_bystander(1));
}

#[test]
fn linear_points_and_a_daily_profile_follow_their_curves() {
    // Linear from 0.5 to 2.5 over the first hour: the hour's mean multiplier is 1.5.
    let text = scenario(
        "duration = \"2h\"\nstart = \"2026-03-02T00:00:00Z\"",
        r#"
[[schedules]]
name = "ramp"
points = [["00:00", 0.5], ["01:00", 2.5]]
interpolation = "linear"
[[schedules]]
name = "day"
profile = { peak = "00:30", trough_ratio = 0.0 }
[[tenants]]
name = "ramp"
tier = "std"
arrival = { rate = 20 }
schedule = "ramp"
[[tenants]]
name = "day"
tier = "std"
arrival = { rate = 20 }
schedule = "day"
[[slo]]
name = "h1"
tenants = "all"
window = "00:00..01:00"
expect = ["p99 < 1s"]
min_samples = 1
"#,
    );
    let r = run(&text, &[]);
    let ramp = samples(&r, "h1", "ramp");
    assert!(near(ramp, 20.0 * 3600.0 * 1.5, 5.0), "{ramp}");
    // The cosine between 00:00 and 01:00 around a 00:30 peak, trough 0: the mean of
    // (1 + cos(2π x / 24h)) / 2 over x in [-30m, 30m] is 1/2 + sin(π/24)·24/(2π)... computed:
    let mean = 0.5 + 0.5 * (std::f64::consts::PI / 24.0).sin() / (std::f64::consts::PI / 24.0);
    let day = samples(&r, "h1", "day");
    assert!(
        near(day, 20.0 * 3600.0 * mean, 5.0),
        "{day} vs {}",
        20.0 * 3600.0 * mean
    );
}

#[test]
fn mmpp_and_renewal_tenants_arrive_at_their_mean_rate_deterministically() {
    let text = scenario(
        "duration = \"2h\"",
        r#"
[[tenants]]
name = "mmpp"
tier = "std"
arrival = { process = "mmpp", rates = [2, 50], sojourns = ["10s", "1s"] }
[[tenants]]
name = "renewal"
tier = "std"
arrival = { process = "renewal", rate = 10, cv = 3 }
[[tenants]]
name = "gamma"
tier = "std"
arrival = { process = "renewal", rate = 10, cv = 0.5, gaps = "gamma" }
"#,
    );
    let a = run(&text, &[]);
    let requests = |r: &Executed, name: &str| {
        r.report
            .tenants
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.requests)
            .unwrap()
    };
    // MMPP mean: (2·10 + 50·1) / 11 per second; its count varies far more than Poisson's
    // (a few per cent here), so the band is wide (the closed-form dispersion is checked in
    // `workload.rs`).
    let mmpp_mean = (2.0 * 10.0 + 50.0 * 1.0) / 11.0 * 7200.0;
    let mmpp = requests(&a, "mmpp") as f64;
    assert!(
        (mmpp / mmpp_mean - 1.0).abs() < 0.2,
        "{mmpp} vs {mmpp_mean}"
    );
    let renewal = requests(&a, "renewal") as f64;
    assert!((renewal / 72_000.0 - 1.0).abs() < 0.1, "{renewal}");
    let gamma = requests(&a, "gamma") as f64;
    assert!((gamma / 72_000.0 - 1.0).abs() < 0.01, "{gamma}");
    // The same seed gives the same report, byte for byte.
    let b = run(&text, &[]);
    assert_eq!(
        serde_json::to_string(&a.report).unwrap(),
        serde_json::to_string(&b.report).unwrap()
    );
}

const SIZED: &str = r#"
[[tenants]]
name = "small"
count = 30
tier = "std"
arrival = { rate = { dist = "lognormal", median = 0.5, p99 = 40 } }
[[tenants]]
name = "zipf"
count = 5
tier = "std"
arrival = { rate = { dist = "zipf", top = 10, exponent = 1 } }
"#;

#[test]
fn a_count_group_draws_member_rates_from_their_own_streams() {
    let text = scenario("duration = \"10s\"\nseed = 7", SIZED);
    let s = load(&text, &[]);
    let law = SizeLaw::log_normal(0.5, 40.0).unwrap();
    let expected = law.member_rates(&Streams::new(7), "small", 30);
    let drawn: Vec<f64> = s.system.tenants[..30]
        .iter()
        .map(|t| t.arrival.rate)
        .collect();
    assert_eq!(drawn, expected);
    let zipf: Vec<f64> = s.system.tenants[30..]
        .iter()
        .map(|t| t.arrival.rate)
        .collect();
    assert_eq!(zipf, vec![10.0, 5.0, 10.0 / 3.0, 2.5, 2.0]);

    // Another group before it, and more members: the first thirty keep their rates.
    let more = format!(
        "{}{}",
        r#"
[[tenants]]
name = "other"
count = 3
tier = "std"
arrival = { rate = { dist = "pareto", scale = 1, shape = 1.5, cap = 1000 } }
"#,
        SIZED.replace("count = 30", "count = 40")
    );
    let s2 = load(&scenario("duration = \"10s\"\nseed = 7", &more), &[]);
    let again: Vec<f64> = s2.system.tenants[3..33]
        .iter()
        .map(|t| t.arrival.rate)
        .collect();
    assert_eq!(again, drawn);

    // The report shows each member's drawn rate, and only theirs.
    let r = run(&text, &[]);
    let shown: Vec<Option<f64>> = r.report.tenants.iter().map(|t| t.drawn_rate).collect();
    assert!(shown.iter().all(Option::is_some));
    assert!((shown[0].unwrap() - drawn[0]).abs() < 1e-6);
    let plain = run(
        &scenario(
            "duration = \"10s\"",
            "[[tenants]]\nname = \"p\"\ntier = \"std\"\narrival = { rate = 1 }\n",
        ),
        &[],
    );
    assert_eq!(plain.report.tenants[0].drawn_rate, None);
}

#[test]
fn set_overrides_reach_schedule_points_and_profile_parameters() {
    let text = scenario(
        "duration = \"2h\"\nstart = \"2026-03-02T00:00:00Z\"",
        r#"
[[schedules]]
name = "steps"
points = [["0s", 1.0], ["1h", 3.0]]
[[schedules]]
name = "day"
profile = { peak = "12:00", trough_ratio = 0.2 }
[[tenants]]
name = "t"
tier = "std"
arrival = { rate = 1 }
schedule = "steps"
"#,
    );
    let s = load(&text, &["schedules.steps.points=[[\"0s\", 2.0]]"]);
    assert_eq!(s.system.schedules[0].curve.multiplier_at(hours(1.5)), 2.0);
    let base = load(&text, &[]);
    let trough = |s: &Scenario| s.system.schedules[1].curve.multiplier_at(SimTime::ZERO);
    assert!((trough(&base) - 0.2).abs() < 1e-9);
    let raised = load(&text, &["schedules.day.profile.trough_ratio=0.6"]);
    assert!((trough(&raised) - 0.6).abs() < 1e-9);
    let moved = load(&text, &["tenants.t.schedule=\"day\""]);
    assert_eq!(moved.system.tenants[0].schedule, Some(1));
}

#[test]
fn a_load_spike_can_target_a_tier_or_a_cell_group_and_only_they_are_targeted() {
    let rest = |target: &str| {
        format!(
            r#"
[[tiers]]
name = "free"
rate = 1000000
burst = 1000000
[[cells]]
name = "b"
region = "us"
api = {{ workers = 4096, queue = 4096, service_time = {{ dist = "constant", value = "1us" }} }}
[[cell_groups]]
name = "launch"
cells = ["b"]
[[tenants]]
name = "paid"
count = 2
tier = "std"
cell = "a"
arrival = {{ rate = 10 }}
[[tenants]]
name = "trial"
count = 3
tier = "free"
cell = "b"
arrival = {{ rate = 10 }}
[[faults]]
name = "launch"
kind = "load_spike"
{target}
multiplier = 5
at = "10s"
duration = "10s"
"#
        )
    };
    let by_tier = load(
        &scenario("duration = \"30s\"", &rest("tier = \"free\"")),
        &[],
    );
    let by_group = load(
        &scenario("duration = \"30s\"", &rest("cell_group = \"launch\"")),
        &[],
    );
    for s in [&by_tier, &by_group] {
        let targeted: Vec<bool> = (0..5).map(|t| !s.system.is_bystander(t)).collect();
        assert_eq!(targeted, vec![false, false, true, true, true]);
    }
    let error = load_error(&scenario(
        "duration = \"30s\"",
        &rest("tier = \"free\"\ntenant = \"paid\""),
    ));
    assert!(
        error.contains("exactly one of `tenant`, `tier` or `cell_group`"),
        "{error}"
    );
}

#[test]
fn warming_arrivals_ahead_changes_no_general_workload_run() {
    // General sources are scheduled past the tenants' ids; warming them ahead (normally from
    // 50,000 tenants) must find their tenant's records and change nothing.
    let text = scenario(
        "duration = \"20m\"\nstart = \"2026-03-02T08:00:00Z\"",
        r#"
[[schedules]]
name = "day"
profile = { peak = "12:00", trough_ratio = 0.2 }
[[tenants]]
name = "many"
count = 50
tier = "std"
arrival = { process = "renewal", rate = { dist = "zipf", top = 5 }, cv = 2 }
schedule = "day"
[[tenants]]
name = "plain"
tier = "std"
arrival = { rate = 5 }
"#,
    );
    let plain = run(&text, &[]);
    let warmed = execute_with(
        &text,
        &options(&[]),
        RunOptions {
            force_warm_ahead: true,
            ..RunOptions::default()
        },
    )
    .expect("runs");
    assert_eq!(
        serde_json::to_string(&plain.report).unwrap(),
        serde_json::to_string(&warmed.report).unwrap()
    );
}
