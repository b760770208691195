//! Performance work must not change results: every fast path gives the same run, event for
//! event, as the general code it short-cuts, on every scenario and its twin. And the hot path
//! does not allocate per event, and memory does not grow with the simulated duration.

use std::path::Path;

use tenantsim::model::metrics::RAW_SAMPLE_LIMIT;
use tenantsim::model::{self, RunOptions};
use tenantsim::pipeline::{self, Executed};
use tenantsim::report;
use tenantsim::scenario::LoadOptions;
use tenantsim::scenario::synthetic::{SaasShape, saas};

use crate::common::{has_reference_report, once_by_default, relative, toml_files};
use crate::scenarios::twin_args;

fn execute(path: &Path, overrides: &[String], general_paths: bool) -> Executed {
    let text = std::fs::read_to_string(path).expect("scenario readable");
    let options = LoadOptions {
        path: relative(path),
        overrides: overrides.to_vec(),
        files: tenantsim::cli::input::beside(path),
        ..LoadOptions::default()
    };
    let run = RunOptions {
        digest: true,
        general_paths,
        // The fast side warms arrivals ahead, which only the largest runs do by default.
        force_warm_ahead: !general_paths,
        ..RunOptions::default()
    };
    pipeline::execute_with(&text, &options, run)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `--set` pairs from the twin line, as loader overrides.
fn overrides_of(args: &[String]) -> Vec<String> {
    args.chunks(2)
        .filter(|pair| pair[0] == "--set")
        .map(|pair| pair[1].clone())
        .collect()
}

/// The capstone at a tenth of its tenants (every group, tier, cell, fault and SLO kept): the
/// fast paths at its shape in the default test run; at full size with `TENANTSIM_SLOW=1`.
const TENTH_OF_THE_CAPSTONE: [&str; 6] = [
    "tenants.small-us.count=1026",
    "tenants.small-eu.count=114",
    "tenants.mid-us.count=43",
    "tenants.mid-eu.count=5",
    "tenants.ent-us.count=10",
    "tenants.ent-eu.count=2",
];

#[test]
fn fast_paths_change_no_run() {
    let mut compared = 0;
    for path in toml_files("scenarios") {
        // The very large scenarios (no committed report) only as written: each run is long.
        let mut variants = vec![Vec::new()];
        if has_reference_report(&path) {
            variants.push(overrides_of(&twin_args(&path)));
        } else if once_by_default(&path) && path.ends_with("acmedocs.toml") {
            variants = vec![TENTH_OF_THE_CAPSTONE.map(String::from).to_vec()];
        }
        for overrides in variants {
            assert_fast_equals_general(&path, &overrides);
            compared += 1;
        }
    }
    assert!(compared >= 2, "no scenario was compared");
}

/// Runs `path` with and without the fast paths and compares event digests and reports.
fn assert_fast_equals_general(path: &Path, overrides: &[String]) {
    let fast = execute(path, overrides, false);
    let general = execute(path, overrides, true);
    assert_eq!(
        fast.output.digest,
        general.output.digest,
        "{} {overrides:?}: the fast paths changed the event sequence",
        path.display()
    );
    assert_eq!(
        report::to_json(&fast.report),
        report::to_json(&general.report),
        "{} {overrides:?}: the fast paths changed the report",
        path.display()
    );
}

/// Every scenario's cells have exponential service times, where a request's first service
/// logarithm is taken one arrival ahead. Here cells differ (other distributions, another
/// mean) and tenants move between them, so the value taken ahead must fall back or follow
/// the cell the request reaches.
#[test]
fn fast_paths_change_no_run_when_cells_have_other_service_times() {
    let lognormal = r#"{ dist = "lognormal", median = "3ms", p99 = "20ms" }"#;
    let cases: [(&str, Vec<String>); 3] = [
        (
            "scenarios/tenant-migration.toml",
            vec![format!("cells.cell-a.api.service_time={lognormal}")],
        ),
        (
            "scenarios/tenant-migration.toml",
            vec![r#"cells.cell-b.api.service_time={ dist = "exponential", mean = "7ms" }"#.into()],
        ),
        (
            "scenarios/cell-outage.toml",
            vec![
                r#"cells.cell-a.api.service_time={ dist = "uniform", min = "1ms", max = "9ms" }"#
                    .into(),
                r#"cells.cell-b.api.service_time={ dist = "constant", value = "5ms" }"#.into(),
            ],
        ),
    ];
    for (path, overrides) in cases {
        assert_fast_equals_general(Path::new(path), &overrides);
    }
}

/// Runs a generated SaaS scenario, counting the heap allocations of the model run alone.
fn counted_run(shape: SaasShape) -> (u64, allocation_counter::AllocationInfo) {
    let text = saas(shape);
    let scenario = tenantsim::scenario::load(&text, &LoadOptions::default()).expect("loads");
    let options = RunOptions {
        tenant_windows: scenario.tenant_windows(),
        tracked: scenario.tracked_tenants(&[]),
        ..RunOptions::default()
    };
    let mut events = 0;
    let info = allocation_counter::measure(|| {
        events = model::run(&scenario.system, options).expect("runs").events;
    });
    (events, info)
}

#[test]
fn steady_state_allocates_nothing_per_event_and_memory_stays_bounded() {
    // 100 tenants, so the bound on memory growth (each tenant's latency samples, capped) is
    // far below what one byte leaked per event would add.
    let shape = |duration_secs| SaasShape {
        tenants: 100,
        total_rate: 10_000.0,
        duration_secs,
        seed: 1,
    };
    let (events_short, short) = counted_run(shape(10));
    let (events_long, long) = counted_run(shape(30));
    let extra_events = events_long - events_short;
    assert!(
        extra_events > 500_000,
        "too few events to measure: {extra_events}"
    );
    let per_event = (long.count_total - short.count_total) as f64 / extra_events as f64;
    assert!(
        per_event < 0.001,
        "steady state allocates {per_event:.4} times per event ({} more allocations for \
         {extra_events} more events)",
        long.count_total - short.count_total
    );
    let growth = long.bytes_max.saturating_sub(short.bytes_max);
    eprintln!(
        "{extra_events} more events: {per_event:.6} allocations per event; peak heap {} -> {} \
         bytes",
        short.bytes_max, long.bytes_max
    );
    let bound = 100 * RAW_SAMPLE_LIMIT as u64 * 4 + (1 << 20);
    assert!(
        growth < bound && growth < extra_events,
        "peak heap grew {growth} bytes when the run doubled ({extra_events} more events); \
         bounded growth is at most {bound} (per-tenant sample caps)"
    );
}

#[test]
fn state_per_tenant_stays_under_a_kilobyte() {
    // The model's fixed records per tenant (state with its breakers, metrics with one window,
    // spec) ...
    let fixed = model::per_tenant_bytes();
    assert!(fixed <= 1024, "fixed per-tenant records take {fixed} bytes");
    // ... and everything the run holds per tenant, measured: the peak heap of a run with
    // 20,000 tenants against one with 2,000, at the same load and length.
    let shape = |tenants| SaasShape {
        tenants,
        total_rate: 20_000.0,
        duration_secs: 2,
        seed: 1,
    };
    let (_, few) = counted_run(shape(2_000));
    let (_, many) = counted_run(shape(20_000));
    let per_tenant = many.bytes_max.saturating_sub(few.bytes_max) as f64 / 18_000.0;
    eprintln!("fixed records {fixed} bytes; peak heap per tenant {per_tenant:.0} bytes");
    assert!(
        per_tenant <= 1024.0,
        "the run holds {per_tenant:.0} bytes per tenant (peak heap {} -> {} bytes from 2,000 \
         to 20,000 tenants)",
        few.bytes_max,
        many.bytes_max
    );
}

/// The benchmark's phase hook is called once the world is built, once as the event loop
/// starts and once as it ends, with every event in between, and a run with it is the same run, event for event.
#[test]
fn phase_marks_bracket_the_event_loop_and_change_nothing() {
    let path = Path::new("scenarios/hot-tenant.toml");
    let text = std::fs::read_to_string(path).expect("scenario readable");
    let options = LoadOptions {
        path: relative(path),
        ..LoadOptions::default()
    };
    let plain = pipeline::execute_with(
        &text,
        &options,
        RunOptions {
            digest: true,
            ..RunOptions::default()
        },
    )
    .expect("hot-tenant runs");
    let mut marks = Vec::new();
    let mut mark = |phase: model::RunPhase| marks.push(phase);
    let marked = pipeline::execute_with(
        &text,
        &options,
        RunOptions {
            digest: true,
            phase_marks: Some(&mut mark),
            ..RunOptions::default()
        },
    )
    .expect("hot-tenant runs");
    assert_eq!(
        marks,
        [
            model::RunPhase::WorldBuilt,
            model::RunPhase::EventsStart,
            model::RunPhase::EventsEnd
        ]
    );
    assert!(marked.output.events > 0);
    assert_eq!(marked.output.digest, plain.output.digest);
    assert_eq!(
        report::to_json(&marked.report),
        report::to_json(&plain.report)
    );
}

/// `bench scale` splits each run at the phase marks and reports the event loop's own cost
/// per event beside the whole run's (a tiny configuration: this checks the output, not speed).
#[test]
fn bench_scale_reports_the_event_loop_apart_from_the_fixed_cost() {
    let output = crate::common::simulate(&[
        "bench",
        "scale",
        "--tenants",
        "100,300",
        "--scale-duration",
        "3",
        "--repeat",
        "1",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "bench scale failed: {stdout}");
    for expected in [
        "loop ns",
        "build ms",
        "place ms",
        "wrap ms",
        "parse s",
        "event loop alone",
        "per-tenant fixed cost inside the run",
        // The budgets are stated for 1,000-100,000 tenants over 60 s: none applies here.
        "Budgets (ARCHITECTURE.md): none measured",
        // How busy the machine was beside the bench (CI runs on Linux, which has /proc).
        "Machine during this bench (/proc/stat): other processes used",
        "the hypervisor took",
    ] {
        assert!(stdout.contains(expected), "no {expected:?} in: {stdout}");
    }
    // Both counts' rows, each with a positive loop cost.
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("100 ") || l.trim_start().starts_with("300 "))
        .collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    for row in rows {
        let loop_ns: f64 = row.split_whitespace().nth(6).unwrap().parse().unwrap();
        assert!(loop_ns > 0.0, "{row}");
    }
}

/// `bench` ends with the budgets it measured; with `--gate` its exit code says whether they
/// held: 0 or 1 by the machine's speed (this is a debug build), never 2 (not measured);
/// without it, 0 either way. A scenario other than the reference, or a run shorter than the
/// budgets' million requests, is measured but judged against no budget.
#[test]
fn bench_ends_with_the_budgets_it_measured() {
    let reference = ["bench", "--no-peer", "--repeat", "1"];
    let ungated = crate::common::simulate(&reference);
    assert_eq!(
        crate::common::code(&ungated),
        0,
        "{}",
        String::from_utf8_lossy(&ungated.stdout)
    );
    let output = crate::common::simulate(&[&reference[..], &["--gate"]].concat());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let code = crate::common::code(&output);
    let table = stdout
        .split("Budgets (ARCHITECTURE.md), as measured in this run:")
        .nth(1)
        .unwrap_or_else(|| panic!("no budget table in: {stdout}"));
    for row in [
        "reference model, full pipeline, events/s on one core",
        "reference model vs the minimal hand-written loop",
        "time series for plots, cost on the reference model",
    ] {
        assert!(table.contains(row), "no {row:?} in: {table}");
    }
    // `--no-peer` shows the SimPy budget as skipped, not as met.
    assert!(
        table
            .lines()
            .any(|l| l.contains("reference model vs SimPy") && l.ends_with("skipped")),
        "{table}"
    );
    let missed = table.contains("MISSED");
    assert_eq!(code, if missed { 1 } else { 0 }, "{stdout}");

    // The same model from another file is measured but judged against no budget.
    let dir = std::env::temp_dir().join(format!("tenantsim-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("my-model.toml");
    std::fs::copy(
        crate::common::root().join("benches/mmc-reference.toml"),
        &copy,
    )
    .unwrap();
    // The copy runs the budgets' full million requests, so only its path keeps it unjudged.
    let other = crate::common::simulate(&[
        "bench",
        "--no-peer",
        "--repeat",
        "1",
        "--gate",
        "--scenario",
        copy.to_str().unwrap(),
    ]);
    std::fs::remove_dir_all(&dir).unwrap();
    let short =
        crate::common::simulate(&[&reference[..], &["--requests", "20000", "--gate"]].concat());
    for run in [other, short] {
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert_eq!(crate::common::code(&run), 0, "{stdout}");
        assert!(stdout.contains("tenantsim / minimal loop"), "{stdout}");
        assert!(
            stdout.contains("Budgets (ARCHITECTURE.md): none measured"),
            "{stdout}"
        );
    }
}

/// Bench options out of range exit 2 with a message naming the option and what it expects,
/// before anything is measured.
#[test]
fn bench_rejects_options_it_cannot_measure() {
    for (args, expected) in [
        (
            &["--requests", "5000", "--no-peer"][..],
            "expected at least 10,001 requests",
        ),
        (&["--repeat", "0"][..], "--repeat"),
        (&["scale", "--tenants", "1000,50"][..], "--tenants"),
        // Checked before any suite runs: nothing of `queue` is printed first.
        (
            &["queue", "reference", "--requests", "5000"][..],
            "expected at least 10,001",
        ),
        (
            &["scale", "--scale-rate", "nan"][..],
            "from 1 to 100,000,000",
        ),
        (
            &["scale", "--scale-rate", "1e300"][..],
            "from 1 to 100,000,000",
        ),
        (&["scale", "--scale-duration", "1"][..], "--scale-duration"),
        (&["sweep", "--sweep-seeds", "0"][..], "--sweep-seeds"),
    ] {
        let output = crate::common::simulate(&[&["bench"][..], args].concat());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(crate::common::code(&output), 2, "{args:?}: {stderr}");
        assert!(
            output.stdout.is_empty(),
            "{args:?} measured something first"
        );
        assert!(
            stderr.contains(expected),
            "{args:?}: no {expected:?} in {stderr}"
        );
    }
}

/// Runs `simulate bench ARGS`, which must be refused before anything is measured: exit 2,
/// nothing on standard output, and a message with each of `expected`, about the option the
/// user gave (never an override or a generated file the bench made of it); returns stderr.
fn bench_refused(args: &[&str], expected: &[&str]) -> String {
    let output = crate::common::simulate(&[&["bench"][..], args].concat());
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(crate::common::code(&output), 2, "{args:?}: {stderr}");
    assert!(
        output.stdout.is_empty(),
        "{args:?} measured something first: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    for expected in expected {
        assert!(
            stderr.contains(expected),
            "{args:?}: no {expected:?} in {stderr}"
        );
    }
    for leaked in ["--set", "<generated"] {
        assert!(!stderr.contains(leaked), "{args:?}: {leaked:?} in {stderr}");
    }
    stderr
}

/// `--requests` sets a scaled run's length, which is at most MAX_DURATION: a count that would
/// need a longer run is refused as `--requests`, with the most it can be and why, for the
/// reference scenario and the scaled peer suites alike; so is a scenario without a rate to
/// scale, and a length the scenario refuses (a fault after the shorter end).
#[test]
fn bench_refuses_requests_that_need_a_run_longer_than_the_limit() {
    let most = u64::MAX.to_string();
    for (args, expected) in [
        (
            &["--requests", &most, "--no-peer"][..],
            &[
                "error: --requests: at most 604,800,000 for benches/mmc-reference.toml",
                "168h",
                "MAX_DURATION",
            ][..],
        ),
        (
            &["--requests", "604800001", "--no-peer"][..],
            &["--requests: at most 604,800,000"][..],
        ),
        // Checked before any suite runs: nothing of `queue` is printed first.
        (
            &["queue", "mmc-full", "--requests", &most, "--no-peer"][..],
            &["--requests: at most 604,800,000 for benches/mmc-full.toml"][..],
        ),
        (
            &["bulkhead", "--requests", &most, "--no-peer"][..],
            &[
                "--requests: at most",
                "benches/bulkhead.toml",
                "MAX_DURATION",
            ][..],
        ),
        (
            &[
                "--scenario",
                "scenarios/replayed-incident.toml",
                "--no-peer",
            ][..],
            &["--requests: scenarios/replayed-incident.toml has no steady arrival rate"][..],
        ),
        (
            &[
                "--scenario",
                "scenarios/hot-tenant.toml",
                "--requests",
                "20000",
                "--no-peer",
            ][..],
            &[
                "--requests 20000: it sets scenarios/hot-tenant.toml's run to 14 simulated \
                  seconds",
                "faults.spike.at",
            ][..],
        ),
    ] {
        bench_refused(args, expected);
    }
}

/// `bench scale` generates a scenario from `--tenants`, `--scale-rate` and
/// `--scale-duration`: values it could not hold (more tenants than MAX_TENANTS, a run longer
/// than MAX_DURATION, a tenant's rate above MAX_RATE or below what the file can write) are
/// refused as the options, with the limit, before anything runs; not as a line of a
/// generated file the user never wrote.
#[test]
fn bench_scale_refuses_options_its_generated_scenario_could_not_hold() {
    let most = u64::MAX.to_string();
    for (args, expected) in [
        (
            &["scale", "--tenants", &most][..],
            &["--tenants", "to 1,000,000 (MAX_TENANTS"][..],
        ),
        (
            &["scale", "--tenants", "1000,1000001"][..],
            &["--tenants", "MAX_TENANTS"][..],
        ),
        (
            &["scale", "--scale-duration", &most][..],
            &["--scale-duration", "to 604,800 (168h", "MAX_DURATION"][..],
        ),
        (
            &["scale", "--scale-duration", "604801"][..],
            &["--scale-duration", "MAX_DURATION"][..],
        ),
        (
            &["scale", "--tenants", "100,1000", "--scale-rate", "1e8"][..],
            &[
                "--scale-rate: at most 3,333,333 with --tenants 100",
                "MAX_RATE",
            ][..],
        ),
        // Checked before any suite runs: nothing of `queue` is printed first.
        (
            &[
                "queue",
                "scale",
                "--tenants",
                "1000000",
                "--scale-rate",
                "1",
            ][..],
            &["--scale-rate: at least 2.375 with --tenants 1000000"][..],
        ),
    ] {
        bench_refused(args, expected);
    }
}
