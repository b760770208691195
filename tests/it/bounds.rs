//! Work, time and memory stay bounded by what the scenario says: arrival processes at extreme
//! parameters finish within their estimate (no time saturates into an endless loop), report
//! writers and `--set` do work linear in their input, the memory estimate is an upper bound of
//! what a run allocates and refuses what would not fit, and `explore` estimates each seed with
//! the faults it draws.
//!
//! The deadlines here guard against hangs and super-linear blow-ups (minutes instead of
//! milliseconds), with margins of a hundred or more; they are not performance assertions.

use std::sync::mpsc;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tenantsim::model;
use tenantsim::pipeline::{self, PipelineError};
use tenantsim::report::{self, CheckReport, Report, RunFacts, SloReport, TenantReport};
use tenantsim::scenario::{self, LoadOptions, limits, memory};

use crate::common::{code, simulate, text};

/// Runs `work` on a thread and returns its result, failing the test if it takes longer than
/// `limit` (a deadline against a hang or a quadratic blow-up, not a performance assertion).
fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(work());
    });
    match receiver.recv_timeout(limit) {
        Ok(value) => value,
        Err(_) => panic!("{what} did not finish within {limit:?}"),
    }
}

fn cases(default: u32, slow: u32) -> u32 {
    if let Some(n) = std::env::var("TENANTSIM_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        n
    } else if std::env::var_os("TENANTSIM_SLOW").is_some_and(|v| v == "1") {
        slow
    } else {
        default
    }
}

/// A one-tenant scenario with the given arrival process and load spikes.
fn arrivals_scenario(
    process: &str,
    rate: f64,
    duration_ns: u64,
    spikes: &[(u64, u64, f64)],
) -> String {
    let mut text = format!(
        r#"name = "extreme"
[simulation]
duration = "{duration_ns}ns"
[[tiers]]
name = "t"
rate = 1000000000
burst = 1000000
[[cells]]
name = "c"
api = {{ workers = 1000, queue = 1000, service_time = {{ dist = "constant", value = "1ns" }} }}
[[tenants]]
name = "a"
tier = "t"
arrival = {{ process = "{process}", rate = {rate:e} }}
retry = {{ max_attempts = 1 }}
"#
    );
    for (i, &(at, length, multiplier)) in spikes.iter().enumerate() {
        text.push_str(&format!(
            "[[faults]]\nname = \"s{i}\"\nkind = \"load_spike\"\ntenant = \"a\"\nmultiplier = {multiplier:e}\nat = \"{at}ns\"\nduration = \"{length}ns\"\n"
        ));
    }
    text
}

/// Rates from the smallest positive float to the largest a tenant may have, log-uniform, and
/// the edges themselves.
fn extreme_rate() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::from_bits(1)),
        Just(1e-300),
        Just(1e-11),
        Just(limits::MAX_RATE.max),
        (-320.0f64..6.0).prop_map(|e| 10f64.powf(e).clamp(f64::from_bits(1), 1e6)),
    ]
}

fn extreme_multiplier() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(1e-300),
        Just(limits::MAX_MULTIPLIER.max),
        (-300.0f64..9.0).prop_map(|e| 10f64.powf(e).clamp(1e-300, 1e9)),
    ]
}

#[test]
fn arrival_processes_at_extreme_parameters_finish_within_their_estimate() {
    let mut runner = TestRunner::new(Config {
        cases: cases(48, 2_000),
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        prop_oneof![Just("poisson"), Just("constant")],
        extreme_rate(),
        1u64..=1_000_000_000_000,
        prop::collection::vec((0u64..1_000, 1u64..2_000, extreme_multiplier()), 0..4),
        any::<u64>(),
    );
    runner
        .run(&strategy, |(process, rate, duration_ns, spikes, seed)| {
            // Spikes as fractions of the run (per mille), overlapping at will.
            let spikes: Vec<(u64, u64, f64)> = spikes
                .iter()
                .map(|&(at, length, m)| {
                    let at = duration_ns * at / 1_000;
                    (at, (duration_ns * length / 1_000).max(1), m)
                })
                .filter(|&(at, _, _)| at < duration_ns)
                .collect();
            let text = arrivals_scenario(process, rate, duration_ns, &spikes);
            let options = LoadOptions {
                path: "extreme.toml".into(),
                seed: Some(seed),
                ..LoadOptions::default()
            };
            let loaded = scenario::load(&text, &options)
                .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            let estimate = model::estimated_events(&loaded.system);
            // Cases whose estimate is large are too slow to run here; the property is about
            // the work a run does compared with its estimate.
            prop_assume!(estimate <= 200_000.0);
            let budget = model::default_event_budget(&loaded.system);
            let ran = within(Duration::from_secs(60), "an extreme-rate run", move || {
                pipeline::execute(&text, &options).map(|e| e.output.events)
            });
            match ran {
                Ok(events) => prop_assert!(events <= budget, "{events} events, budget {budget}"),
                Err(PipelineError::Budget(e)) => {
                    return Err(TestCaseError::fail(format!(
                        "estimate {estimate} but the run exhausted its budget: {e}"
                    )));
                }
                Err(e) => return Err(TestCaseError::fail(e.to_string())),
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_rate_whose_gap_saturates_the_clock_ends_for_every_seed_and_command() {
    // Around 1e-11 per second the next arrival is past the end of time (u64 nanoseconds).
    let scenario_text = arrivals_scenario("poisson", 1e-11, 10_000_000_000, &[]);
    for seed in 0..8u64 {
        let text = scenario_text.clone();
        let events = within(Duration::from_secs(30), "a 1e-11/s tenant", move || {
            let options = LoadOptions {
                seed: Some(seed),
                ..LoadOptions::default()
            };
            pipeline::execute(&text, &options).map(|e| e.output.events)
        });
        assert!(matches!(events, Ok(n) if n <= 1), "seed {seed}: {events:?}");
    }
    // The same through the binary's run loops (run, sweep): a hang would hit the deadline.
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("tiny.toml");
    std::fs::write(&file, &scenario_text).expect("write");
    let file = file.display().to_string();
    let out = dir.path().join("out").display().to_string();
    let sweep_out = dir.path().join("sweep").display().to_string();
    for args in [
        vec![file.as_str(), "--out", &out, "--quiet"],
        vec![
            "sweep", &file, "--seeds", "1..9", "--out", &sweep_out, "--quiet",
        ],
    ] {
        let output = within(Duration::from_secs(60), "simulate with a 1e-11/s tenant", {
            let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                simulate(&args)
            }
        });
        assert!(
            matches!(code(&output), 0 | 4),
            "{args:?}: {}",
            text(&output)
        );
    }
}

#[test]
fn overlapping_spikes_multiply_in_the_estimate() {
    // Two spikes of 1,000 over the same second: a million times the rate, not two thousand.
    let text = arrivals_scenario(
        "poisson",
        1.0,
        2_000_000_000,
        &[(0, 1_000_000_000, 1e3), (0, 1_000_000_000, 1e3)],
    );
    let loaded = scenario::load(&text, &LoadOptions::default()).expect("loads");
    let arrivals = 1.0 * (2.0 + (1e6 - 1.0) * 1.0);
    let per_request = 1.0 + 4.0 + f64::from(loaded.system.tenants[0].db_queries);
    assert_eq!(
        model::estimated_events(&loaded.system),
        arrivals * per_request
    );
    let events = pipeline::execute(&text, &LoadOptions::default())
        .expect("within its budget")
        .output
        .events;
    assert!(events as f64 > 0.9 * 1e6, "{events}");
}

// --- Linear work in the writers and --set -------------------------------------------------

/// A report of `tenants` tenants judged by one `each` SLO with two expectations, `failing` of
/// them failing, in `tiers` tiers.
fn big_report(tenants: usize, tiers: usize, failing: usize) -> Report {
    let name = |i: usize| format!("tenant-{i:07}");
    let tier = |i: usize| format!("tier-{}", i % tiers);
    let checks = (0..tenants)
        .flat_map(|i| {
            ["p99 < 250ms", "error_rate < 0.01"].map(|expect| CheckReport {
                tenant: name(i),
                expect: expect.into(),
                observed: Some(if i < failing { 300.0 } else { 10.0 }),
                samples: 100,
                passed: i >= failing,
                status: if i < failing { "fail" } else { "pass" }.into(),
            })
        })
        .collect();
    Report {
        scenario: "big".into(),
        seed: 1,
        version: report::VERSION.into(),
        verdict: "fail".into(),
        description: String::new(),
        scenario_file: "big.toml".into(),
        overrides: Vec::new(),
        repro: "simulate big.toml --seed 1".into(),
        run: RunFacts {
            duration_s: 1.0,
            warmup_s: 0.0,
            events: 0,
            event_budget: 0,
        },
        tiers: Vec::new(),
        tenants: (0..tenants)
            .map(|i| TenantReport {
                name: name(i),
                tier: tier(i),
                cell: "c".into(),
                drawn_rate: None,
                requests: 10,
                ok: 10,
                throttled: 0,
                rejected: 0,
                failed: 0,
                timed_out: 0,
                in_flight: 0,
                latency_ms: None,
                classes: Vec::new(),
                counters: None,
                jobs: None,
            })
            .collect(),
        classes: Vec::new(),
        slos: vec![SloReport {
            name: "fast".into(),
            tenants: "all".into(),
            scope: "each".into(),
            window: "whole".into(),
            requests: String::new(),
            expect: vec!["p99 < 250ms".into(), "error_rate < 0.01".into()],
            status: "fail".into(),
            passed: false,
            failed_checks: 2 * failing as u64,
            inconclusive_checks: 0,
            checks,
        }],
        invariants: Vec::new(),
        blast_radius: Vec::new(),
        blast_tiers: Vec::new(),
        unexplained: Default::default(),
        onboarding: None,
        inputs: Vec::new(),
        scenario_text: String::new(),
    }
}

#[test]
fn junit_and_the_terminal_summary_are_linear_in_the_tenants() {
    // A search per check made junit.xml quadratic: 200,000 tenants took two minutes (release).
    let xml = within(
        Duration::from_secs(120),
        "junit.xml of 200,000 tenants",
        || {
            let report = big_report(200_000, 7, 150);
            (
                report::junit::render(&report),
                report::summary::render(&report, "simulate big.toml", &[]),
            )
        },
    );
    assert!(xml.0.contains("tier tier-3: "), "grouped per tier");
    assert!(xml.0.len() < 200_000, "{} bytes", xml.0.len());
    assert!(
        xml.1.contains("… and 138 more failing tenants"),
        "{}",
        xml.1
    );
}

#[test]
fn a_set_path_of_sixty_thousand_segments_is_quick() {
    // Joining the prefix at every segment made this 14 s (release), and a path this deep
    // builds tables nested as deep, which overflow a 2 MB thread stack when dropped: paths
    // are capped, and refused at once.
    let path = vec!["a"; 60_000].join(".");
    let error = within(
        Duration::from_secs(30),
        "--set of 60,000 segments",
        move || {
            let text =
                std::fs::read_to_string(crate::common::root().join("scenarios/hot-tenant.toml"))
                    .expect("read");
            scenario::load(
                &text,
                &LoadOptions {
                    overrides: vec![format!("{path}=1")],
                    ..LoadOptions::default()
                },
            )
            .map(|_| ())
        },
    );
    let error = error.expect_err("too long a path");
    assert!(error.to_string().contains("(MAX_PATH_SEGMENTS)"), "{error}");
}

/// A scenario of `tenants` tenants in `tiers` tiers (groups of equal size, all in one cell),
/// `faults` faults each naming a group (load spikes of multiplier 1: they hold their tenant lists
/// without changing the load), and `slos` SLOs of two expectations over every tenant.
fn wide_scenario(tenants: usize, tiers: usize, faults: usize, slos: usize) -> String {
    let mut text = String::from(
        "name = \"wide\"\n[simulation]\nduration = \"2s\"\n[[cells]]\nname = \"c\"\napi = { workers = 64, service_time = { dist = \"constant\", value = \"1ms\" } }\n",
    );
    for t in 0..tiers {
        text.push_str(&format!("[[tiers]]\nname = \"t{t}\"\nrate = 100\n"));
    }
    for t in 0..tiers {
        text.push_str(&format!(
            "[[tenants]]\nname = \"g{t}\"\ncount = {}\ntier = \"t{t}\"\narrival = {{ rate = 0.5 }}\n",
            tenants / tiers
        ));
    }
    for f in 0..faults {
        text.push_str(&format!(
            "[[faults]]\nname = \"f{f}\"\nkind = \"load_spike\"\ntenant = \"g{}\"\nmultiplier = 1\nat = \"{}ms\"\nduration = \"100ms\"\n",
            f % tiers,
            f % 1_900
        ));
    }
    for s in 0..slos {
        text.push_str(&format!(
            "[[slo]]\nname = \"s{s}\"\nexpect = [\"p99 < {}ms\", \"error_rate < 0.01\"]\nmin_samples = 1\n",
            100 + s
        ));
    }
    text
}

/// Every file a run of `text` writes, by path, with its size.
fn file_sizes(text: String) -> Vec<(String, usize)> {
    within(
        Duration::from_secs(300),
        "a wide run and its files",
        move || {
            let executed = pipeline::execute(&text, &LoadOptions::default()).expect("runs");
            executed
                .files()
                .into_iter()
                .map(|f| (f.path, f.contents.len()))
                .collect()
        },
    )
}

#[test]
fn every_output_file_grows_linearly_with_the_scenario() {
    // The plots grew with tiers × faults (a legend as tall as a thousand tiers, every dashed
    // fault edge spanning it): three 500 MB SVGs for 30,000 tenants, 1,000 tiers and faults.
    // Ten times the tiers and ten times the faults must make no file more than ten times
    // larger (with a margin for rounding), not a hundred.
    let small = file_sizes(wide_scenario(2_000, 20, 20, 1));
    let large = file_sizes(wide_scenario(2_000, 200, 200, 1));
    for ((path, a), (_, b)) in small.iter().zip(&large) {
        assert!(
            *b as f64 <= 15.0 * *a as f64,
            "{path}: {a} bytes with 20 tiers and faults, {b} with 200 ({:.1}x)",
            *b as f64 / *a as f64
        );
    }
}

// --- Memory ------------------------------------------------------------------------------

/// Peak heap of loading, running and rendering `text` (all files, report.json twice as
/// `replay` holds it), and the estimate for it.
fn measured_and_estimated(text: &str) -> (u64, f64) {
    let options = LoadOptions::default();
    let loaded = scenario::load(text, &options).expect("loads");
    let estimate = memory::of_run(&loaded, text.len()).total();
    drop(loaded);
    let info = allocation_counter::measure(|| {
        let executed = pipeline::execute(text, &options).expect("runs");
        let files = executed.files();
        let again = report::to_json(&executed.report);
        std::hint::black_box((files, again));
    });
    (info.bytes_max, estimate)
}

#[test]
fn the_memory_estimate_is_an_upper_bound_of_the_heap() {
    let mut cases: Vec<(String, String)> = ["hot-tenant", "poison-jobs", "cell-outage"]
        .iter()
        .map(|name| {
            let text = std::fs::read_to_string(
                crate::common::root().join(format!("scenarios/{name}.toml")),
            )
            .expect("read");
            (name.to_string(), text)
        })
        .collect();
    let small = |body: &str| {
        format!(
            "name = \"m\"\n[simulation]\nduration = \"60s\"\n[[tiers]]\nname = \"t\"\nrate = 1000000\nburst = 1000000\n{body}"
        )
    };
    cases.push((
        "a batch of 200,000 jobs".into(),
        small("[[cells]]\nname = \"c\"\napi = { workers = 4, service_time = { dist = \"constant\", value = \"1ms\" } }\njobs = { workers = 2, job_time = { dist = \"constant\", value = \"1s\" } }\n[[tenants]]\nname = \"a\"\ntier = \"t\"\narrival = { rate = 1 }\njobs = { batch = 200000 }\n"),
    ));
    cases.push((
        "a queue of 100,000 filling up".into(),
        small("[[cells]]\nname = \"c\"\napi = { workers = 1, queue = 100000, service_time = { dist = \"constant\", value = \"10s\" } }\n[[tenants]]\nname = \"a\"\ntier = \"t\"\narrival = { rate = 5000 }\nretry = { max_attempts = 1 }\n"),
    ));
    cases.push((
        "2,000 tenants × 10 SLOs × 8 expectations".into(),
        {
            let mut t = small("[[cells]]\nname = \"c\"\napi = { workers = 64, service_time = { dist = \"constant\", value = \"1ms\" } }\n[[tenants]]\nname = \"a\"\ncount = 2000\ntier = \"t\"\narrival = { rate = 2 }\n");
            let expect = (0..8)
                .map(|i| format!("\"p{} < {}ms\"", 50 + i, 100 + i))
                .collect::<Vec<_>>()
                .join(", ");
            for s in 0..10 {
                t.push_str(&format!("[[slo]]\nname = \"s{s}\"\nexpect = [{expect}]\nmin_samples = 1\n"));
            }
            t
        },
    ));
    cases.push((
        "20,000 quiet tenants".into(),
        wide_scenario(20_000, 4, 4, 1),
    ));
    cases.push((
        "1,000 tenants, 100 tiers and faults".into(),
        wide_scenario(1_000, 100, 100, 3),
    ));
    cases.push((
        "1,000 tenants in 500 tiers".into(),
        wide_scenario(1_000, 500, 2, 1),
    ));
    cases.push((
        "1,000 tenants, 500 faults".into(),
        wide_scenario(1_000, 2, 500, 1),
    ));
    for (name, text) in cases {
        let (peak, estimate) = measured_and_estimated(&text);
        eprintln!(
            "{name}: peak heap {}, estimate {} ({:.1}x)",
            memory::bytes_text(peak as f64),
            memory::bytes_text(estimate),
            estimate / peak as f64
        );
        assert!(
            peak as f64 <= estimate,
            "{name}: the run's heap peaked at {peak} bytes, above its estimate of {estimate}"
        );
    }
}

#[test]
fn scenarios_inside_the_limits_that_would_exhaust_memory_are_refused_naming_the_cause() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = [
        (
            "jobs",
            "[simulation]\nduration = \"60s\"\nmax_events = 1000000\n[[tiers]]\nname = \"t\"\nrate = 100\n[[cells]]\nname = \"c\"\napi = { workers = 4, service_time = { dist = \"constant\", value = \"1ms\" } }\njobs = { workers = 2, job_time = { dist = \"constant\", value = \"1s\" } }\n[[tenants]]\nname = \"a\"\ntier = \"t\"\narrival = { rate = 1 }\njobs = { batch = 100000000 }\n".to_string(),
            "background jobs",
        ),
        (
            "queue",
            "[simulation]\nduration = \"168h\"\nmax_events = 1000000000\n[[tiers]]\nname = \"t\"\nrate = 1000000\nburst = 1000000\n[[cells]]\nname = \"c\"\napi = { workers = 1, queue = 100000000, service_time = { dist = \"constant\", value = \"10s\" } }\n[[tenants]]\nname = \"a\"\ntier = \"t\"\narrival = { rate = 1000 }\nretry = { max_attempts = 1 }\n".to_string(),
            "requests and work in flight",
        ),
        (
            "slos",
            {
                let expect = (0..32)
                    .map(|i| format!("\"p{} < {}ms\"", 50 + i, 100 + i))
                    .collect::<Vec<_>>()
                    .join(", ");
                let mut t = "[simulation]\nduration = \"10s\"\n[[tiers]]\nname = \"t\"\nrate = 100\n[[cells]]\nname = \"c\"\napi = { workers = 64, service_time = { dist = \"constant\", value = \"1ms\" } }\n[[tenants]]\nname = \"a\"\ncount = 10000\ntier = \"t\"\narrival = { rate = 1 }\n".to_string();
                for s in 0..300 {
                    t.push_str(&format!("[[slo]]\nname = \"s{s}\"\nexpect = [{expect}]\nmin_samples = 1\n"));
                }
                t
            },
            "report",
        ),
    ];
    for (name, body, cause) in cases {
        let file = dir.path().join(format!("{name}.toml"));
        std::fs::write(&file, format!("name = \"{name}\"\n{body}")).expect("write");
        let file = file.display().to_string();
        // validate says so, with the estimate; the run is refused before it allocates.
        let validated = simulate(&["validate", &file]);
        assert_eq!(code(&validated), 0, "{}", text(&validated));
        let stdout = String::from_utf8_lossy(&validated.stdout);
        assert!(
            stdout.contains("memory up to") && stdout.contains("--allow-large"),
            "{name}: {stdout}"
        );
        let out = dir.path().join(name).display().to_string();
        let refused = simulate(&[&file, "--out", &out, "--quiet"]);
        assert_eq!(code(&refused), 2, "{name}: {}", text(&refused));
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(
            stderr.contains("estimated memory is up to")
                && stderr.contains(&format!("the largest part is {cause}"))
                && stderr.contains("--allow-large"),
            "{name}: {stderr}"
        );
    }
}

#[test]
fn faults_naming_millions_of_tenants_hit_a_named_limit() {
    let mut text = String::from(
        "name = \"f\"\n[simulation]\nduration = \"10s\"\n[[tiers]]\nname = \"t\"\nrate = 100\n[[cells]]\nname = \"c\"\napi = { workers = 4, service_time = { dist = \"constant\", value = \"1ms\" } }\n[[tenants]]\nname = \"a\"\ncount = 1000000\ntier = \"t\"\narrival = { rate = 0.001 }\n",
    );
    for i in 0..20 {
        text.push_str(&format!(
            "[[faults]]\nname = \"k{i}\"\nkind = \"load_spike\"\ntenant = \"a\"\nmultiplier = 1\nat = \"1s\"\nduration = \"1s\"\n"
        ));
    }
    let error = scenario::load(&text, &LoadOptions::default()).expect_err("too many targets");
    assert!(error.to_string().contains("(MAX_FAULT_TARGETS)"), "{error}");
}

#[test]
fn explore_estimates_each_seed_with_the_faults_it_draws() {
    // The base scenario is small; every seed draws a spike of a billion for up to 40 s.
    let dir = tempfile::tempdir().expect("temp dir");
    let spiky = std::fs::read_to_string(crate::common::root().join("scenarios/cell-outage.toml"))
        .expect("read")
        .replace(
            "{ kind = \"load_spike\", multiplier = [2, 30] }",
            "{ kind = \"load_spike\", multiplier = [1000000000, 1000000000] }",
        );
    assert!(
        spiky.contains("multiplier = [1000000000"),
        "the [explore] table changed"
    );
    let file = dir.path().join("spiky.toml");
    std::fs::write(&file, spiky).expect("write");
    let out = dir.path().join("explore").display().to_string();
    let file = file.display().to_string();
    let output = within(
        Duration::from_secs(120),
        "explore with drawn spikes of 1e9",
        move || {
            simulate(&[
                "explore", &file, "--seeds", "1..11", "--out", &out, "--quiet",
            ])
        },
    );
    assert_eq!(code(&output), 2, "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("estimated work is up to") && stderr.contains("--allow-long"),
        "{stderr}"
    );
}
