//! Hostile input, safe output: arbitrary bytes, arbitrary TOML and random-valued scenarios never
//! panic and always end in a located error or a run; limits fail with their name; output
//! folders are guarded; nothing escapes the output folder; Ctrl-C on a sweep keeps the
//! finished runs; the JSON Schema and the loader accept the same keys.
//!
//! Property tests run a few dozen cases by default (seconds); `TENANTSIM_SLOW=1` runs thousands,
//! `TENANTSIM_CASES=N` exactly N (`cargo test --release hostile` for speed).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value as Json, json};
use tenantsim::pipeline::{self, PipelineError};
use tenantsim::scenario::inputs::MemoryFiles;
use tenantsim::scenario::spec::{self, Key, TableSpec, Ty};
use tenantsim::scenario::tree::{self, Value};
use tenantsim::scenario::{self, Diagnostic, LoadOptions, ScenarioError, limits};

use crate::common::{code, root, simulate, simulate_in, text, toml_files};

/// Property-test cases: `default` normally, `slow` with `TENANTSIM_SLOW=1`, or exactly
/// `TENANTSIM_CASES` (for a long bug hunt).
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

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

const PATH: &str = "hostile.toml";

/// Every diagnostic names the file with a line and a column; every one but the syntax errors
/// before any key and the file-level notes names a key; none is an internal error.
fn check_diagnostics(error: &ScenarioError) -> Result<(), String> {
    if error.diagnostics.is_empty() {
        return Err("an error without diagnostics".into());
    }
    for d in &error.diagnostics {
        check_diagnostic(d)?;
    }
    Ok(())
}

fn check_diagnostic(d: &Diagnostic) -> Result<(), String> {
    let located = d
        .location
        .strip_prefix(&format!("{PATH}:"))
        .and_then(|rest| rest.split_once(':'))
        .is_some_and(|(line, col)| line.parse::<u64>().is_ok() && col.parse::<u64>().is_ok());
    if !located {
        return Err(format!("no file:line:col in {d}"));
    }
    let file_level = d.message.contains("more errors not shown")
        || d.message.contains(limits::MAX_SCENARIO_BYTES.name);
    if d.key.is_empty() && !d.message.starts_with("invalid TOML") && !file_level {
        return Err(format!("no key in {d}"));
    }
    if d.message.contains("internal error") {
        return Err(format!("the loader and its spec disagree: {d}"));
    }
    if d.key.chars().chain(d.message.chars()).any(char::is_control) {
        return Err(format!("a control character reaches the terminal: {d:?}"));
    }
    Ok(())
}

/// The files the maximal scenario names: a tenant table and a replayed log.
fn maximal_files() -> MemoryFiles {
    MemoryFiles::new()
        .with(
            "listed.csv",
            "name,tier,rate,cell\nlisted-a,standard,2,cell-a\nlisted-b,standard,,cell-a\n",
        )
        .with(
            "replayed.csv",
            "timestamp,tenant,class\n0.5,listed-a,generated\n0.75,listed-b,\n",
        )
}

fn load(text: &str) -> Result<scenario::Scenario, ScenarioError> {
    scenario::load(
        text,
        &LoadOptions {
            path: PATH.into(),
            files: Some(maximal_files().into_files()),
            ..LoadOptions::default()
        },
    )
}

fn shipped_texts() -> Vec<String> {
    toml_files("scenarios")
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("readable"))
        .collect()
}

#[test]
fn arbitrary_bytes_never_panic_and_errors_are_located() {
    let texts = shipped_texts();
    let strategy = (
        0..texts.len(),
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 0..24),
        proptest::collection::vec(any::<u8>(), 0..512),
    );
    runner(cases(64, 3_000))
        .run(&strategy, |(which, edits, noise)| {
            // Mutated shipped scenarios (close to valid) and pure noise.
            let mut bytes = texts[which].clone().into_bytes();
            for (at, byte, op) in edits {
                let i = at.index(bytes.len() + 1);
                match op {
                    0 => bytes.insert(i, byte),
                    1 if i < bytes.len() => {
                        bytes.remove(i);
                    }
                    _ if i < bytes.len() => bytes[i] = byte,
                    _ => {}
                }
            }
            for input in [bytes, noise] {
                let text = String::from_utf8_lossy(&input);
                if let Err(e) = load(&text) {
                    check_diagnostics(&e).map_err(TestCaseError::fail)?;
                }
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

/// A TOML value built from the scenario vocabulary, rendered as text.
#[derive(Clone, Debug)]
enum Toml {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Array(Vec<Toml>),
    Table(Vec<(String, Toml)>),
}

fn vocabulary() -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for (_, table) in spec::TABLES {
        for key in table.keys {
            words.push(key.name.to_string());
        }
        if let Some(variants) = table.variants {
            for case in variants.cases {
                words.push(case.value.to_string());
                words.extend(case.keys.iter().map(|k| k.name.to_string()));
            }
        }
    }
    words.extend(
        [
            "zzz",
            "Name",
            "tier-a",
            "\u{1b}[2J",
            "p99 < 1s",
            "during:f",
            "1s",
        ]
        .map(String::from),
    );
    words.sort();
    words.dedup();
    words
}

fn render(value: &Toml) -> String {
    match value {
        Toml::Str(s) => serde_json::to_string(s).unwrap_or_default(),
        Toml::Int(i) => i.to_string(),
        Toml::Float(x) if x.is_nan() => "nan".into(),
        Toml::Float(x) if x.is_infinite() => if *x > 0.0 { "inf" } else { "-inf" }.into(),
        Toml::Float(x) => format!("{x:?}"),
        Toml::Bool(b) => b.to_string(),
        Toml::Array(items) => format!(
            "[{}]",
            items.iter().map(render).collect::<Vec<_>>().join(", ")
        ),
        Toml::Table(entries) => format!(
            "{{ {} }}",
            entries
                .iter()
                .map(|(k, v)| format!("{} = {}", render_key(k), render(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn render_key(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        key.to_string()
    } else {
        serde_json::to_string(key).unwrap_or_default()
    }
}

fn toml_strategy(words: Vec<String>) -> impl Strategy<Value = Toml> {
    let word = prop::sample::select(words);
    let leaf = prop_oneof![
        word.clone().prop_map(Toml::Str),
        ".{0,12}".prop_map(Toml::Str),
        any::<i64>().prop_map(Toml::Int),
        (-5i64..2_000).prop_map(Toml::Int),
        any::<f64>().prop_map(Toml::Float),
        any::<bool>().prop_map(Toml::Bool),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Toml::Array),
            proptest::collection::vec((word.clone(), inner), 0..6).prop_map(|mut entries| {
                let mut seen = std::collections::BTreeSet::new();
                entries.retain(|(k, _)| seen.insert(k.clone()));
                Toml::Table(entries)
            }),
        ]
    })
}

#[test]
fn arbitrary_toml_structures_never_panic_and_errors_are_located() {
    let words = vocabulary();
    let top = proptest::collection::vec(
        (prop::sample::select(words.clone()), toml_strategy(words)),
        0..12,
    );
    runner(cases(64, 3_000))
        .run(&top, |entries| {
            let mut seen = std::collections::BTreeSet::new();
            let text: String = entries
                .iter()
                .filter(|(k, _)| seen.insert(k.clone()))
                .map(|(k, v)| format!("{} = {}\n", render_key(k), render(v)))
                .collect();
            match load(&text) {
                Ok(_) => Ok(()),
                Err(e) => check_diagnostics(&e).map_err(TestCaseError::fail),
            }
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Random values for a structurally valid scenario.
#[derive(Clone, Debug)]
struct Knobs {
    rate: f64,
    count: u64,
    workers: u64,
    queue: u64,
    connections: u64,
    db_queries: u64,
    dist: (usize, u64, u64),
    attempts: u64,
    backoff: usize,
    timeout_ms: u64,
    fault: usize,
    fault_at_ms: u64,
    fault_len_ms: u64,
    factor: f64,
    expect: usize,
    window: usize,
    scope: bool,
    tier_rate: f64,
    max_in_flight: u64,
    kms: bool,
    breakers: bool,
    jobs: bool,
    /// Switches for the edge, failover, migration, admission and scheduling policies.
    policies: [bool; 10],
    edge_replicas: u64,
    writes: f64,
}

fn knobs() -> impl Strategy<Value = Knobs> {
    (
        (
            0.01f64..3_000.0,
            1u64..30,
            1u64..64,
            0u64..300,
            1u64..16,
            0u64..4,
            (0usize..4, 1u64..50, 1u64..20),
            1u64..6,
            0usize..4,
            1u64..3_000,
        ),
        (
            0usize..spec::FAULT_KINDS.len(),
            0u64..1_900,
            1u64..2_500,
            0.1f64..50.0,
            0usize..6,
            0usize..3,
            any::<bool>(),
            0.5f64..5_000.0,
            1u64..40,
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        ),
        (any::<[bool; 10]>(), 1u64..4, 0.0f64..=1.0),
    )
        .prop_map(|(a, b, c)| Knobs {
            rate: a.0,
            count: a.1,
            workers: a.2,
            queue: a.3,
            connections: a.4,
            db_queries: a.5,
            dist: a.6,
            attempts: a.7,
            backoff: a.8,
            timeout_ms: a.9,
            fault: b.0,
            fault_at_ms: b.1,
            fault_len_ms: b.2,
            factor: b.3,
            expect: b.4,
            window: b.5,
            scope: b.6,
            tier_rate: b.7,
            max_in_flight: b.8,
            kms: b.9,
            breakers: b.10,
            jobs: b.11,
            policies: c.0,
            edge_replicas: c.1,
            writes: c.2,
        })
}

fn scenario_text(k: &Knobs) -> String {
    let dist = |(kind, a, b): (usize, u64, u64)| match kind {
        0 => format!("{{ dist = \"constant\", value = \"{a}ms\" }}"),
        1 => format!("{{ dist = \"exponential\", mean = \"{a}ms\" }}"),
        2 => format!(
            "{{ dist = \"lognormal\", median = \"{a}ms\", p99 = \"{}ms\" }}",
            a * (b + 1)
        ),
        _ => format!(
            "{{ dist = \"uniform\", min = \"{a}ms\", max = \"{}ms\" }}",
            a + b
        ),
    };
    let fault = match spec::FAULT_KINDS[k.fault] {
        "load_spike" => format!("tenant = \"light\"\nmultiplier = {}", k.factor),
        "cell_outage" => "cell = \"cell-b\"".to_string(),
        "region_outage" => "region = \"east\"\nfraction = 0.5".to_string(),
        "db_slowdown" => format!("database = \"main\"\nfactor = {}", k.factor),
        "kms_key_disabled" => "tenant = \"heavy\"".to_string(),
        "partition" => "between = [\"mapping_store\", \"edge\"]".to_string(),
        "control_plane_outage" => String::new(),
        "dependency_errors" => "dependency = \"kms\"\nrate = 0.3".to_string(),
        "dependency_outage" => "dependency = \"search\"\ncell = \"cell-a\"".to_string(),
        "dependency_slowdown" => format!("dependency = \"search\"\nfactor = {}", k.factor),
        "cache_flush" => "cache = \"sessions\"".to_string(),
        "pool_slowdown" => format!("pool = \"api\"\nfactor = {}", k.factor),
        "replica_lag" => "database = \"main\"\nlag = \"500ms\"".to_string(),
        "replica_outage" => "database = \"main\"\nreplica = 0".to_string(),
        "poison_jobs" => "tenant = \"heavy\"\nfraction = 0.5".to_string(),
        _ => "tenant = \"heavy\"\nto = \"cell-b\"".to_string(),
    };
    let expect = [
        "p99 < 250ms",
        "error_rate < 0.01",
        "availability >= 99%",
        "throttle_rate <= 0.5",
        "count > 10",
        "p99.9 < 2s",
    ][k.expect];
    let window = ["whole", "during:f", "after:f+100ms"][k.window];
    let backoff = spec::BACKOFFS[k.backoff];
    let p = k.policies;
    let pick = |on: bool, a: &'static str, b: &'static str| if on { a } else { b };
    let jobs_pool = if k.jobs || spec::FAULT_KINDS[k.fault] == "poison_jobs" {
        pick(
            p[9],
            "jobs = { workers = 2, scheduler = \"fifo\", job_time = { dist = \"exponential\", mean = \"20ms\" } }",
            "jobs = { workers = 2, job_time = { dist = \"exponential\", mean = \"20ms\" }, max_attempts = 0 }",
        )
    } else {
        ""
    };
    let policies = format!(
        "[edge]\nrate_limiting = {}\nreplicas = {}\nconfig_lookup = \"{}\"\non_mapping_unavailable = \"{}\"\n\
         [failover]\npolicy = \"{}\"\ndetection = \"200ms\"\n\
         [migration]\nfencing = {}\ndual_write = {}\n",
        p[0],
        k.edge_replicas,
        pick(p[1], "hot_path", "cached"),
        pick(p[2], "fail_closed", "serve_stale"),
        pick(p[3], "none", "evacuate"),
        p[4],
        p[5],
    );
    let admission = format!("admission = {}, adaptive = {}", p[6], p[7]);
    let budget = pick(p[8], ", budget = { ratio = 0.1, reserve = 2 }", "");
    let tenant_jobs = if jobs_pool.is_empty() {
        ""
    } else {
        "jobs = { rate = 5 }"
    };
    format!(
        r#"name = "random"
{policies}
[simulation]
duration = "2s"
warmup = "100ms"
max_events = 300000
[kms]
enabled = {kms}
[breakers]
enabled = {breakers}
[[tiers]]
name = "standard"
rate = {tier_rate}
max_in_flight = {max_in_flight}
[[databases]]
name = "main"
connections = {connections}
query_time = {query_time}
replicas = {{ count = 1 }}
[[dependencies]]
name = "search"
kind = "search"
latency = {query_time}
[[dependencies]]
name = "sessions"
kind = "cache"
latency = {{ dist = "constant", value = "100us" }}
capacity = 100
[[classes]]
name = "read"
calls = [{{ cache = "sessions", keys = 50, on_miss = [{{ db = "main", replica = true }}] }}, {{ dependency = "search", timeout = "200ms" }}]
[[cells]]
name = "cell-a"
region = "east"
db = "main"
api = {{ workers = {workers}, queue = {queue}, service_time = {service_time}, {admission} }}
{jobs_pool}
[[cells]]
name = "cell-b"
region = "east"
db = "main"
api = {{ workers = {workers}, service_time = {service_time} }}
{jobs_pool}
[[tenants]]
name = "heavy"
tier = "standard"
cell = "cell-a"
arrival = {{ rate = {rate} }}
db_queries = {db_queries}
timeout = "{timeout}ms"
retry = {{ max_attempts = {attempts}, backoff = "{backoff}", base = "10ms", cap = "200ms"{budget} }}
writes = {writes}
{tenant_jobs}
[[tenants]]
name = "light"
count = {count}
tier = "standard"
arrival = {{ process = "constant", rate = 5 }}
requests = {{ read = 1.0 }}
[[faults]]
name = "f"
kind = "{kind}"
at = "{at}ms"
duration = "{len}ms"
{fault}
[[slo]]
name = "objective"
tenants = "bystanders"
scope = "{scope}"
window = "{window}"
expect = ["{expect}"]
min_samples = 5
"#,
        // A KMS fault needs KMS on (else it is refused as changing nothing); keep such
        // scenarios valid, so the generator's share of loadable scenarios stays.
        // A KMS fault needs KMS on (else it is refused as changing nothing); keep such
        // scenarios valid, so the generator's share of loadable scenarios stays.
        kms = k.kms
            || matches!(
                spec::FAULT_KINDS[k.fault],
                "kms_key_disabled" | "dependency_errors"
            ),
        breakers = k.breakers,
        tier_rate = k.tier_rate,
        max_in_flight = k.max_in_flight,
        connections = k.connections,
        query_time = dist(k.dist),
        workers = k.workers,
        queue = k.queue,
        service_time = dist(((k.dist.0 + 1) % 4, k.dist.2, k.dist.1)),
        rate = k.rate,
        db_queries = k.db_queries,
        timeout = k.timeout_ms,
        attempts = k.attempts,
        count = k.count,
        kind = spec::FAULT_KINDS[k.fault],
        at = k.fault_at_ms,
        len = k.fault_len_ms,
        scope = if k.scope { "each" } else { "pooled" },
        writes = k.writes,
    )
}

#[test]
fn random_valued_scenarios_validate_and_run_without_panicking() {
    let loaded = std::cell::Cell::new(0u32);
    let total = cases(24, 500);
    runner(total)
        .run(&knobs(), |k| {
            let text = scenario_text(&k);
            let options = LoadOptions {
                path: PATH.into(),
                ..LoadOptions::default()
            };
            // Exactly the CLI's mapping from outcome to exit code.
            let exit = match pipeline::execute(&text, &options) {
                Ok(executed) => {
                    loaded.set(loaded.get() + 1);
                    match executed.evaluation.verdict {
                        tenantsim::slo::Status::Passed => 0,
                        tenantsim::slo::Status::Failed => 1,
                        tenantsim::slo::Status::Inconclusive => 4,
                    }
                }
                Err(PipelineError::Invalid(e)) => {
                    check_diagnostics(&e).map_err(TestCaseError::fail)?;
                    2
                }
                Err(PipelineError::Budget(e)) => {
                    let message = e.to_string();
                    prop_assert!(message.contains("simulation.max_events"), "{message}");
                    loaded.set(loaded.get() + 1);
                    2
                }
            };
            prop_assert!([0, 1, 2, 4].contains(&exit));
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    // The generator must produce valid scenarios, or it tests only the error paths. About
    // 70 % load (500 cases: 372); the default run's 24 random cases gave 11 to 21 in thirty
    // runs, so half would fail now and then by the draw alone: a third still catches a
    // generator gone wrong.
    let loaded = loaded.get();
    assert!(
        loaded * 3 >= total,
        "only {loaded} of {total} random scenarios loaded"
    );
}

#[test]
fn every_error_line_of_the_bad_corpus_names_file_line_column_and_key() {
    let files = toml_files("tests/bad");
    let mut problems = Vec::new();
    for path in &files {
        let file = crate::common::relative(path);
        let output = simulate(&["validate", &file]);
        assert_eq!(code(&output), 2, "{file}: {}", text(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        for line in stderr.lines().filter(|l| l.starts_with("error:")) {
            let rest = line.trim_start_matches("error: ");
            let located = rest
                .strip_prefix(&format!("{file}:"))
                .and_then(|r| r.split_once(':'))
                .and_then(|(l, r)| Some((l.parse::<u64>().ok()?, r.split_once(':')?.0)))
                .is_some_and(|(_, col)| col.parse::<u64>().is_ok());
            let keyed = rest.contains(": `");
            if !located || !keyed || line.contains("internal error") {
                problems.push(format!("{file}: {line}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn huge_non_utf8_and_empty_files_fail_cleanly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let huge = dir.path().join("huge.toml");
    let line = "# padding padding padding padding padding padding padding padding\n";
    std::fs::write(
        &huge,
        line.repeat(limits::MAX_SCENARIO_BYTES.max_int() as usize / line.len() + 2),
    )
    .expect("write");
    let binary = dir.path().join("binary.toml");
    std::fs::write(&binary, b"name = \"x\"\n\xff\xfe\x00garbage").expect("write");
    let empty = dir.path().join("empty.toml");
    std::fs::write(&empty, "").expect("write");
    for (file, message) in [
        (&huge, "(MAX_SCENARIO_BYTES)"),
        (&binary, ":2:1: the file is not UTF-8 text"),
        (&empty, "missing required key `name`"),
    ] {
        let path = file.display().to_string();
        for args in [vec!["validate", &path], vec![&path]] {
            let output = simulate(&args);
            assert_eq!(code(&output), 2, "{args:?}: {}", text(&output));
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(stderr.contains(message), "{args:?}: {stderr}");
        }
    }
}

#[test]
fn too_many_errors_are_cut_with_a_count() {
    let mut text = String::from("name = \"x\"\n");
    for i in 0..300 {
        text.push_str(&format!("unknown{i} = 1\n"));
    }
    let error = load(&text).expect_err("invalid");
    assert_eq!(error.diagnostics.len(), limits::MAX_DIAGNOSTICS + 1);
    let last = error.diagnostics.last().expect("a note");
    assert!(last.message.contains("more errors not shown"), "{last}");
}

#[test]
fn array_limits_name_the_limit_and_how_to_raise_it() {
    let base = std::fs::read_to_string(root().join("scenarios/hot-tenant.toml")).expect("read");
    let mut faults = String::new();
    for i in 0..=limits::MAX_FAULTS.max_int() {
        faults.push_str(&format!(
            "[[faults]]\nname = \"f{i}\"\nkind = \"control_plane_outage\"\nat = \"1s\"\nduration = \"1s\"\n"
        ));
    }
    let error = load(&format!("{base}\n{faults}")).expect_err("too many faults");
    let first = error
        .diagnostics
        .iter()
        .find(|d| d.key == "faults")
        .unwrap_or_else(|| panic!("no error names `faults`:\n{error}"));
    assert!(first.location.starts_with(&format!("{PATH}:")), "{first}");
    assert!(
        first
            .message
            .contains("above the limit of 1,000 faults (MAX_FAULTS)")
            && first.message.contains("src/scenario/limits.rs"),
        "{first}"
    );
}

#[test]
fn long_runs_print_their_work_and_need_allow_long() {
    let output = simulate(&[
        "scenarios/hot-tenant.toml",
        "--set",
        "simulation.duration=\"168h\"",
        "--set",
        "tenants.heavy.arrival.rate=100000",
        "--quiet",
    ]);
    assert_eq!(code(&output), 2, "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("estimated work is up to") && stderr.contains("pass --allow-long"),
        "{stderr}"
    );
    // The same limit for a sweep counts every seed.
    let output = simulate(&[
        "sweep",
        "scenarios/hot-tenant.toml",
        "--seeds",
        "1..5001",
        "--quiet",
    ]);
    assert_eq!(code(&output), 2, "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("(5,000 runs of"),
        "{}",
        text(&output)
    );
}

/// An MMPP whose sojourns are far shorter than its gaps steps through billions of state
/// switches between two arrivals: work that is no event, so `max_events` cannot stop it. The
/// estimate counts the switches, and the run is refused up front, naming `sojourns`, instead
/// of hanging for hours.
#[test]
fn mmpp_switches_count_as_work_and_refuse_a_runaway_chain() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("chain.toml");
    let scenario = |sojourn: &str| {
        format!(
            r#"name = "chain"
[simulation]
duration = "1h"
[[tiers]]
name = "t"
rate = 100
[[cells]]
name = "c"
api = {{ workers = 4, service_time = {{ dist = "constant", value = "1ms" }} }}
[[tenants]]
name = "a"
tier = "t"
arrival = {{ process = "mmpp", rates = [5, 200], sojourns = ["{sojourn}", "{sojourn}"] }}
"#
        )
    };
    std::fs::write(&file, scenario("1ns")).expect("write");
    let path = file.to_str().expect("utf-8 path");
    for extra in [&[][..], &["--set", "simulation.max_events=1000"][..]] {
        let mut args = vec!["run", path, "--quiet", "--out"];
        let out = dir.path().join("out");
        args.push(out.to_str().expect("utf-8 path"));
        args.extend_from_slice(extra);
        let output = simulate(&args);
        assert_eq!(code(&output), 2, "{extra:?}: {}", text(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("state switches") && stderr.contains("sojourns"),
            "{stderr}"
        );
    }
    // Sojourns of minutes: a handful of switches, and the run is as short as its arrivals.
    std::fs::write(&file, scenario("5m")).expect("write");
    let output = simulate(&["validate", path]);
    assert_eq!(code(&output), 0, "{}", text(&output));
    assert!(!text(&output).contains("needs a flag"), "{}", text(&output));
}

const SHORT: &str = "simulation.duration=\"60s\"";

#[test]
fn out_refuses_a_folder_it_did_not_write_unless_forced() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("run");
    let out_text = out.display().to_string();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "scenarios/hot-tenant.toml",
            "--set",
            SHORT,
            "--out",
            &out_text,
            "--quiet",
        ];
        args.extend_from_slice(extra);
        simulate(&args)
    };
    // A new folder, then the same command again into the folder it filled.
    assert_eq!(code(&run(&[])), 0);
    let first = std::fs::read(out.join("report.json")).expect("report");
    assert_eq!(code(&run(&[])), 0);
    // Someone else's file: refused, and nothing is touched.
    std::fs::write(out.join("notes.txt"), "mine").expect("write");
    std::fs::write(out.join("report.json"), "precious").expect("write");
    let refused = run(&[]);
    assert_eq!(code(&refused), 2, "{}", text(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("notes.txt") && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(out.join("report.json")).expect("kept"),
        b"precious"
    );
    // --force writes anyway and leaves the stranger's file alone.
    assert_eq!(code(&run(&["--force"])), 0);
    assert_eq!(
        std::fs::read(out.join("report.json")).expect("report"),
        first
    );
    assert!(out.join("notes.txt").is_file());
    // The guard covers compare and sweep too.
    for args in [
        vec![
            "compare",
            "scenarios/hot-tenant.toml",
            "--set",
            SHORT,
            "--out",
            &out_text,
        ],
        vec![
            "sweep",
            "scenarios/hot-tenant.toml",
            "--seeds",
            "1..2",
            "--out",
            &out_text,
        ],
    ] {
        let output = simulate(&args);
        assert_eq!(code(&output), 2, "{args:?}: {}", text(&output));
        assert!(String::from_utf8_lossy(&output.stderr).contains("--force"));
    }
}

#[test]
fn rerunning_into_the_default_folder_keeps_working() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("scenarios")).expect("mkdir");
    std::fs::copy(
        root().join("scenarios/hot-tenant.toml"),
        dir.path().join("scenarios/hot-tenant.toml"),
    )
    .expect("copy");
    for _ in 0..2 {
        let output = simulate_in(
            dir.path(),
            &["scenarios/hot-tenant.toml", "--set", SHORT, "--quiet"],
        );
        assert_eq!(code(&output), 0, "{}", text(&output));
    }
    assert!(
        dir.path()
            .join("reports/hot-tenant")
            .read_dir()
            .expect("folder")
            .count()
            == 1
    );
}

#[test]
fn nothing_derived_from_input_escapes_the_output_folder() {
    // Scenario names are the only input that names folders, and they cannot climb.
    for name in [
        "..",
        "../escape",
        "a/b",
        "/abs",
        ".hidden",
        "-dash",
        "UPPER",
        "",
    ] {
        assert!(!scenario::is_valid_name(name), "{name:?}");
    }
    let error = load(
        &std::fs::read_to_string(root().join("scenarios/hot-tenant.toml"))
            .expect("read")
            .replacen("name = \"hot-tenant\"", "name = \"../../escape\"", 1),
    )
    .expect_err("invalid name");
    assert_eq!(error.diagnostics[0].key, "name");
    // A sweep.json is input too: merge must not build a folder from its scenario name.
    let dir = tempfile::tempdir().expect("temp dir");
    let shard = dir.path().join("shard");
    let output = simulate(&[
        "sweep",
        "scenarios/hot-tenant.toml",
        "--seeds",
        "1..2",
        "--shard",
        "0/1",
        "--set",
        SHORT,
        "--out",
        &shard.display().to_string(),
        "--quiet",
    ]);
    assert!(matches!(code(&output), 0 | 1 | 4), "{}", text(&output));
    let file = shard.join("sweep.json");
    let tampered = std::fs::read_to_string(&file).expect("sweep.json").replace(
        "\"scenario\": \"hot-tenant\"",
        "\"scenario\": \"../../../escaped\"",
    );
    std::fs::write(&file, tampered).expect("write");
    let work = dir.path().join("a/b/c");
    std::fs::create_dir_all(&work).expect("mkdir");
    let output = simulate_in(&work, &["merge", &shard.display().to_string()]);
    assert_eq!(code(&output), 2, "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a valid scenario name"));
    assert!(!dir.path().join("escaped").exists() && !work.join("reports").exists());
}

/// A scenario whose seeds each take a moment, so a sweep of many is still running when
/// interrupted.
const SWEEPABLE: &str = r#"name = "sweepable"
[simulation]
duration = "60s"
[[tiers]]
name = "t"
rate = 100
[[cells]]
name = "c"
api = { workers = 4, service_time = { dist = "constant", value = "1ms" } }
[[tenants]]
name = "a"
tier = "t"
arrival = { rate = 20 }
[[slo]]
name = "fast"
expect = ["p99 < 1s"]
min_samples = 1
"#;

/// Spawns `simulate` with piped output and waits until it reports its first progress line (so
/// it is running its seeds, with the Ctrl-C handler in place). Returns the child and a thread
/// collecting the rest of stderr.
fn spawn_sweep(
    args: &[String],
    dir: &Path,
) -> (std::process::Child, std::thread::JoinHandle<String>) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_simulate"))
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    let mut lines = std::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.expect("utf-8");
        seen.push_str(&line);
        seen.push('\n');
        if line.contains(" seeds, ") {
            break;
        }
    }
    let rest = std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            seen.push_str(&line);
            seen.push('\n');
        }
        seen
    });
    (child, rest)
}

fn interrupt(pid: u32) {
    let status = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// Waits for `child`, failing the test if it has not exited within `limit` (a deadline
/// against a hang, not a performance assertion).
#[allow(clippy::disallowed_methods)] // ok: a test's watchdog reads the wall clock
fn wait_with_deadline(
    child: &mut std::process::Child,
    limit: Duration,
) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("the process did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ctrl_c_on_a_sweep_keeps_the_finished_runs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let scenario = dir.path().join("sweepable.toml");
    std::fs::write(&scenario, SWEEPABLE).expect("write");
    let out = dir.path().join("sweep");
    // Ten million seeds: far more work than the threshold, so it needs --allow-long.
    let args = |allow: bool| {
        let mut a = vec![
            "sweep".to_string(),
            scenario.display().to_string(),
            "--seeds".into(),
            "1..10000001".into(),
            "--out".into(),
            out.display().to_string(),
        ];
        if allow {
            a.push("--allow-long".into());
        }
        a
    };
    let refused = Command::new(env!("CARGO_BIN_EXE_simulate"))
        .args(args(false))
        .output()
        .expect("runs");
    assert_eq!(code(&refused), 2, "{}", text(&refused));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--allow-long"));

    let (mut child, stderr) = spawn_sweep(&args(true), &root());
    std::thread::sleep(Duration::from_millis(1_500));
    interrupt(child.id());
    let status = wait_with_deadline(&mut child, Duration::from_secs(60));
    let stderr = stderr.join().expect("stderr");
    let output = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(status.code(), Some(130), "{stdout}\n{stderr}");
    assert!(stdout.contains("INTERRUPTED"), "{stdout}");
    assert!(
        stderr.contains("interrupted: no new seeds will start"),
        "{stderr}"
    );
    let sweep: Json =
        serde_json::from_slice(&std::fs::read(out.join("sweep.json")).expect("sweep.json"))
            .expect("complete JSON");
    let finished = sweep["runs"].as_array().map_or(0, Vec::len) as u64;
    assert_eq!(sweep["interrupted"], json!(true));
    assert!(finished > 0, "no seed finished in 1.5 s");
    assert_eq!(
        finished + sweep["not_run"].as_u64().expect("not_run"),
        10_000_000
    );
    assert_eq!(sweep["violation_rate"]["runs"], json!(finished));
    // The finished seeds are a prefix-free set in seed order, each with a verdict.
    assert!(
        sweep["runs"]
            .as_array()
            .expect("runs")
            .windows(2)
            .all(|w| w[0]["seed"].as_u64() < w[1]["seed"].as_u64())
    );
    // An interrupted shard cannot be merged as if it were whole.
    let output = simulate(&["merge", &out.display().to_string()]);
    assert_eq!(code(&output), 2, "{}", text(&output));
}

#[test]
fn a_second_ctrl_c_abandons_running_seeds() {
    // Seeds of a hundred simulated hours take far longer than the test: the first Ctrl-C
    // would wait for them, the second must not.
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("sweep");
    let args: Vec<String> = [
        "sweep",
        "scenarios/hot-tenant.toml",
        "--seeds",
        "1..9",
        "--set",
        "simulation.duration=\"100h\"",
        "--allow-long",
        "--out",
        &out.display().to_string(),
    ]
    .map(String::from)
    .to_vec();
    let (mut child, stderr) = spawn_sweep(&args, &root());
    std::thread::sleep(Duration::from_millis(300));
    interrupt(child.id());
    std::thread::sleep(Duration::from_millis(300));
    interrupt(child.id());
    let status = wait_with_deadline(&mut child, Duration::from_secs(20));
    let stderr = stderr.join().expect("stderr");
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("abandoning the running seeds"), "{stderr}");
    let sweep: Json =
        serde_json::from_slice(&std::fs::read(out.join("sweep.json")).expect("sweep.json"))
            .expect("complete JSON");
    assert_eq!(sweep["interrupted"], json!(true));
    assert_eq!(sweep["not_run"], json!(8));
}

// --- The JSON Schema and the loader accept the same keys -------------------------------------

/// A scenario TOML document as JSON (what a schema validator sees).
fn toml_to_json(text: &str) -> Json {
    fn convert(value: &Value) -> Json {
        match value {
            Value::String(s) | Value::Datetime(s) => json!(s),
            Value::Integer(i) => json!(i),
            Value::Float(x) => json!(x),
            Value::Boolean(b) => json!(b),
            Value::Array(items) => Json::Array(items.iter().map(|n| convert(&n.value)).collect()),
            Value::Table(t) => Json::Object(
                t.entries
                    .iter()
                    .map(|e| (e.key.clone(), convert(&e.node.value)))
                    .collect(),
            ),
        }
    }
    convert(&Value::Table(tree::parse_document(text).expect("TOML")))
}

struct Validator {
    schemas: boon::Schemas,
    index: boon::SchemaIndex,
}

impl Validator {
    fn new() -> Validator {
        let output = simulate(&["schema"]);
        assert_eq!(code(&output), 0, "{}", text(&output));
        let schema: Json = serde_json::from_slice(&output.stdout).expect("the schema is JSON");
        assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
        let mut schemas = boon::Schemas::new();
        let mut compiler = boon::Compiler::new();
        compiler
            .add_resource("file:///tenantsim.schema.json", schema)
            .expect("resource");
        let index = compiler
            .compile("file:///tenantsim.schema.json", &mut schemas)
            .unwrap_or_else(|e| panic!("the schema does not compile: {e}"));
        Validator { schemas, index }
    }

    fn check(&self, text: &str) -> Result<(), String> {
        let document = toml_to_json(text);
        self.schemas
            .validate(&document, self.index)
            .map_err(|e| format!("{e}"))
    }
}

/// A value of type `ty` for key `key` that the loader accepts, consistent with the other
/// generated entries (one tier `standard`, cells `cell-a` in region `east`, database `main`,
/// tenant `heavy` with jobs). `variant` picks the distribution.
fn example(key: &Key, ty: Ty, variant: usize, inject: &str) -> String {
    match ty {
        Ty::Text if key.name == "peak" => "\"14:00\"".into(),
        Ty::Text => "\"generated\"".into(),
        Ty::Name => match key.name {
            "region" => "\"east\"".into(),
            _ => "\"generated\"".into(),
        },
        Ty::Ref(what) => match what {
            "tier" => "\"standard\"",
            "cell" => "\"cell-a\"",
            "database" => "\"main\"",
            "pool" => "\"api\"",
            "class" | "cell group" | "schedule" => "\"generated\"",
            "service" => "\"svc\"",
            "dependency" if key.name == "cache" => "\"d-cache\"",
            "dependency" => "\"d-search\"",
            _ => "\"heavy\"",
        }
        .into(),
        Ty::Bool => "true".into(),
        // A database has one replica in the maximal scenario: replica 0.
        Ty::Int { .. } if key.name == "replica" => "0".into(),
        Ty::Int { min, .. } => min.max(1).to_string(),
        // A size law's p99 above its median, a Pareto cap above its scale.
        Ty::Positive(_) if key.name == "p99" => "3".into(),
        Ty::Positive(_) if key.name == "cap" => "1000".into(),
        Ty::Positive(_) => "1.5".into(),
        Ty::Fraction => "0.5".into(),
        Ty::Duration => match key.name {
            "duration" => "\"60s\"",
            "p99" => "\"2s\"",
            _ => "\"1s\"",
        }
        .into(),
        // A quota needs an isolation that takes one.
        Ty::Choice(_) if key.name == "isolation" => "\"quota\"".into(),
        Ty::Choice(words) => format!("{:?}", words[0]),
        Ty::Time => "\"1s\"".into(),
        Ty::Instant => "\"2026-03-02T08:00:00Z\"".into(),
        Ty::Points => "[[\"0s\", 1.0], [\"10s\", 2.0]]".into(),
        Ty::NumberPair => "[1, 2]".into(),
        Ty::DurationPair => "[\"1s\", \"2s\"]".into(),
        // The tenant group has `count`, so its rate may be a size table: one of each law.
        Ty::Rate => {
            let cases = spec::SIZE.variants.expect("laws").cases;
            inline(
                &spec::SIZE,
                Some(cases[variant % cases.len()].value),
                variant,
                inject,
            )
        }
        // The arrival table's keys depend on its process: one process per variant.
        // (An MMPP has no `rate`: when the size table is the one to break, a Poisson one.)
        Ty::Table(spec) if spec.title == spec::ARRIVAL.title => {
            let cases = spec.variants.expect("cases").cases;
            let case = match cases[variant % cases.len()].value {
                "mmpp" if inject == spec::SIZE.title => "poisson",
                other => other,
            };
            inline(spec, Some(case), variant, inject)
        }
        Ty::Table(spec) => inline(spec, None, variant, inject),
        Ty::Tables(spec, _) => format!("[{}]", inline(spec, None, variant, inject)),
        Ty::Dist => {
            let case = spec::DIST_KINDS[variant % spec::DIST_KINDS.len()];
            inline(&spec::DIST, Some(case), variant, inject)
        }
        Ty::Timeout => "\"2s\"".into(),
        Ty::Budget => inline(&spec::BUDGET, None, variant, inject),
        Ty::Selector => "[\"heavy\"]".into(),
        Ty::Window => "\"whole\"".into(),
        Ty::Expect => "[\"p99 < 1s\"]".into(),
        Ty::Between => "[\"edge\", \"mapping_store\"]".into(),
        Ty::Dependency => "\"d-search\"".into(),
        Ty::Steps => steps(variant, inject, true),
        Ty::Mix => "{ generated = 1.0 }".into(),
        Ty::CellSet => "\"cell-a\"".into(),
        Ty::CellList => "[\"cell-a\"]".into(),
        Ty::NameList(_) => "[\"generated\"]".into(),
        Ty::Explore => "{ count = [1, 2], at = [\"5s\", \"30s\"], duration = [\"1s\", \"10s\"], \
                        kinds = [{ kind = \"load_spike\", multiplier = [2, 5] }] }"
            .into(),
    }
}

/// A call script that sets every key of a step: a query step, a service call (with
/// `service_call`; an operation's own script leaves it out, or the service would call itself),
/// a dependency call, a cache lookup with a miss path and a parallel group. The nested scripts
/// are single queries, so the generator does not recurse.
fn steps(variant: usize, inject: &str, service_call: bool) -> String {
    let extra = if spec::STEP.title == inject {
        ", zz_undeclared = 1"
    } else {
        ""
    };
    let dist = inline(
        &spec::DIST,
        Some(spec::DIST_KINDS[variant % spec::DIST_KINDS.len()]),
        variant,
        inject,
    );
    let mut items = vec![format!(
        "{{ db = \"main\", queries = 1, replica = true, query_time = {dist}, query_factor = 1.5, \
         statement_timeout = \"1s\", probability = 0.5, count = 1{extra} }}"
    )];
    if service_call {
        items.push("{ service = \"svc\", op = \"generated\", timeout = \"1s\" }".into());
    }
    items.push("{ dependency = \"d-search\", timeout = \"1s\" }".into());
    items.push(
        "{ cache = \"d-cache\", keys = 10, popularity = \"zipf\", zipf = 1.5, \
         on_miss = [{ db = \"cell\" }] }"
            .into(),
    );
    items.push("{ parallel = [{ db = \"cell\" }, { dependency = \"d-search\" }] }".into());
    let text = format!("[{}]", items.join(", "));
    for key in spec::STEP.keys.iter().filter(|_| service_call) {
        assert!(
            text.contains(&format!("{} = ", key.name)),
            "the generated steps do not set `{}`",
            key.name
        );
    }
    text
}

/// Every key of `spec` (and of the case `case`), as an inline table; tables titled `inject`
/// get one undeclared key too.
fn inline(spec: &TableSpec, case: Option<&str>, variant: usize, inject: &str) -> String {
    let keys: Vec<&Key> = spec
        .keys
        .iter()
        .chain(spec.case(case).map_or(&[][..], |c| c.keys))
        .collect();
    let entries: Vec<String> = keys
        .iter()
        .map(|k| {
            let value = match (k.name, case) {
                (tag, Some(c)) if spec.variants.is_some_and(|v| v.tag == tag) => format!("{c:?}"),
                ("name", _) if spec.title == "[[tiers]]" => "\"standard\"".into(),
                ("name", _) if spec.title == "[[cells]]" => "\"cell-a\"".into(),
                ("name", _) if spec.title == "[[databases]]" => "\"main\"".into(),
                ("name", _) if spec.title == "[[tenants]]" => "\"heavy\"".into(),
                _ => example(k, k.ty, variant, inject),
            };
            format!("{} = {value}", k.name)
        })
        .collect();
    let extra = if spec.title == inject {
        ", zz_undeclared = 1"
    } else {
        ""
    };
    format!("{{ {}{extra} }}", entries.join(", "))
}

/// A scenario that sets every declared key: every fault kind once, distributions of kind
/// `variant`, and both forms of table-valued SLO selectors.
fn maximal_scenario(variant: usize, inject: &str) -> String {
    let mut text = String::from("name = \"maximal\"\ndescription = \"every key\"\n");
    for key in spec::SCENARIO.keys {
        match (key.name, key.ty) {
            ("name" | "description", _) => {}
            ("faults", Ty::Tables(faults, _)) => {
                let cases = faults.variants.expect("kinds").cases;
                let mut items: Vec<String> = cases
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        inline(faults, Some(c.value), variant, inject).replacen(
                            "name = \"generated\"",
                            &format!("name = \"f{i}\""),
                            1,
                        )
                    })
                    .collect();
                // A load spike targets one of a tenant, a tier or a cell group: one of each.
                let spike = items[0].clone();
                let (tenant, tier, group) = (
                    ", tenant = \"heavy\"",
                    ", tier = \"standard\"",
                    ", cell_group = \"generated\"",
                );
                assert!(spike.contains(tenant) && spike.contains(tier) && spike.contains(group));
                let only = |keep: &str, name: &str| {
                    [tenant, tier, group]
                        .iter()
                        .filter(|t| **t != keep)
                        .fold(spike.clone(), |s, t| s.replacen(t, "", 1))
                        .replacen("name = \"f0\"", name, 1)
                };
                // The scenario has one cell, so the migration goes to the tenant's own cell:
                // valid only after something that can move it, here the cell outage at 1 s.
                for item in items.iter_mut() {
                    if item.contains("kind = \"migrate_tenant\"") {
                        assert!(item.contains("at = \"1s\""), "{item}");
                        *item = item.replacen("at = \"1s\"", "at = \"2s\"", 1);
                    }
                }
                items[0] = only(tenant, "name = \"f0\"");
                items.push(only(tier, "name = \"spike-tier\""));
                items.push(only(group, "name = \"spike-group\""));
                text.push_str(&format!("faults = [{}]\n", items.join(", ")));
            }
            ("schedules", Ty::Tables(schedules, _)) => {
                // A schedule has points or a profile, not both: one of each.
                let (points, profile) = schedules.keys.split_at(3);
                let with = |keys: &'static [Key]| TableSpec { keys, ..*schedules };
                let by_points = inline(&with(points), None, variant, inject);
                let by_profile = inline(&with(profile), None, variant, inject);
                text.push_str(&format!(
                    "schedules = [{by_points}, {{ name = \"day\", {}]\n",
                    by_profile.trim_start_matches("{ ")
                ));
            }
            ("services", Ty::Tables(services, _)) => {
                let service = inline(services, None, variant, inject)
                    .replacen("name = \"generated\"", "name = \"svc\"", 1)
                    .replace(
                        &steps(variant, inject, true),
                        &steps(variant, inject, false),
                    );
                text.push_str(&format!("services = [{service}]\n"));
            }
            ("workflows", Ty::Tables(workflows, _)) => {
                // An onboarding workflow with a provider call and a step of the runner's own
                // work (`time`), and an offboarding workflow with an erasing step.
                let all = inline(workflows, None, variant, inject);
                let step = inline(&spec::WORKFLOW_STEPS, None, variant, inject);
                let dist = inline(
                    &spec::DIST,
                    Some(spec::DIST_KINDS[variant % spec::DIST_KINDS.len()]),
                    variant,
                    inject,
                );
                let call = step.replacen(&format!(", time = {dist}"), "", 1).replacen(
                    ", erases = \"database\"",
                    "",
                    1,
                );
                let local = format!("{{ name = \"local\", time = {dist} }}");
                let onboarding = all
                    .replacen(&step, &format!("{call}, {local}"), 1)
                    .replacen("name = \"generated\"", "name = \"onboard\"", 1);
                let erase = step
                    .replacen("name = \"generated\"", "name = \"erase\"", 1)
                    .replacen(&format!(", time = {dist}"), "", 1)
                    .replacen(", compensate = true", "", 1)
                    .replacen(&format!(", ready_after = {dist}"), "", 1)
                    .replacen(", gates_access = true", "", 1);
                let offboarding = all
                    .replacen(&step, &erase, 1)
                    .replacen("name = \"generated\"", "name = \"offboard\"", 1)
                    .replacen("kind = \"onboarding\"", "kind = \"offboarding\"", 1);
                text.push_str(&format!("workflows = [{onboarding}, {offboarding}]\n"));
            }
            ("tenants", _) => {
                // A `count` group cannot also come from a table: the group of every other key,
                // and a second group from the in-memory table `listed.csv` (see `load`).
                let groups = example(key, key.ty, variant, inject)
                    .replacen(
                        "signup = { workflow = \"heavy\"",
                        "signup = { workflow = \"onboard\"",
                        1,
                    )
                    .replacen(
                        "deletion = { workflow = \"heavy\"",
                        "deletion = { workflow = \"offboard\"",
                        1,
                    );
                assert!(groups.contains(", table = \"generated\""), "{groups}");
                let groups = groups.replacen(", table = \"generated\"", "", 1);
                let listed = "{ name = \"listed\", table = \"listed.csv\", \
                              requests = { generated = 1.0 } }";
                text.push_str(&format!(
                    "tenants = [{}, {listed}]\n",
                    groups
                        .strip_prefix('[')
                        .and_then(|g| g.strip_suffix(']'))
                        .expect("an array")
                ));
            }
            ("replay", _) => {
                let replay = example(key, key.ty, variant, inject);
                assert!(replay.contains("log = \"generated\""), "{replay}");
                text.push_str(&format!(
                    "replay = {}\n",
                    replay.replacen("log = \"generated\"", "log = \"replayed.csv\"", 1)
                ));
            }
            ("dependencies", Ty::Tables(dependencies, _)) => {
                let cases = dependencies.variants.expect("kinds").cases;
                let items: Vec<String> = cases
                    .iter()
                    .map(|c| {
                        inline(dependencies, Some(c.value), variant, inject).replacen(
                            "name = \"generated\"",
                            &format!("name = \"d-{}\"", c.value.replace('_', "-")),
                            1,
                        )
                    })
                    .collect();
                text.push_str(&format!("dependencies = [{}]\n", items.join(", ")));
            }
            ("slo", Ty::Tables(slos, _)) => {
                // An SLO judges a class or a pool's classes, not both: the list SLO names the
                // class, the others the pool.
                let all = inline(slos, None, variant, inject);
                let list = all.replacen(", pool = \"api\"", "", 1);
                let by_pool = all.replacen(", class = \"generated\"", "", 1);
                // The selector table takes one of its keys at a time.
                let selectors = spec::TIER_SELECTOR
                    .keys
                    .iter()
                    .map(|k| {
                        let extra = if spec::TIER_SELECTOR.title == inject {
                            ", zz_undeclared = 1"
                        } else {
                            ""
                        };
                        format!(
                            "{{ {} = {}{extra} }}",
                            k.name,
                            example(k, k.ty, variant, inject)
                        )
                    })
                    .collect::<Vec<_>>();
                let mut items = vec![list.clone()];
                for (i, selector) in selectors.iter().enumerate() {
                    items.push(
                        by_pool
                            .replacen("\"generated\"", &format!("\"by selector {i}\""), 1)
                            .replacen("[\"heavy\"]", selector, 1),
                    );
                }
                text.push_str(&format!("slo = [{}]\n", items.join(", ")));
            }
            _ => text.push_str(&format!(
                "{} = {}\n",
                key.name,
                example(key, key.ty, variant, inject)
            )),
        }
    }
    text
}

#[test]
fn every_declared_key_is_read_by_the_loader_and_valid_in_the_schema() {
    let validator = Validator::new();
    for variant in 0..spec::DIST_KINDS.len() {
        let text = maximal_scenario(variant, "");
        if let Err(e) = load(&text) {
            panic!("the maximal scenario #{variant} is rejected:\n{e}\n{text}");
        }
        validator
            .check(&text)
            .unwrap_or_else(|e| panic!("the schema rejects the maximal scenario:\n{e}\n{text}"));
    }
}

#[test]
fn the_schema_accepts_every_shipped_scenario_and_rejects_what_the_loader_rejects() {
    let validator = Validator::new();
    for path in toml_files("scenarios")
        .into_iter()
        .chain([root().join("benches/mmc-reference.toml")])
    {
        let text = std::fs::read_to_string(&path).expect("read");
        validator
            .check(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    // Unknown keys in every table, a key of another fault kind, values past a limit, a bad
    // name, a bad duration: both the schema and the loader refuse them.
    let base = maximal_scenario(0, "");
    let mut broken: Vec<(String, String)> = vec![
        (
            base.replacen("name = \"maximal\"", "name = \"Maximal\"", 1),
            "name".into(),
        ),
        (
            base.replacen("duration = \"60s\"", "duration = \"60 s\"", 1),
            "duration".into(),
        ),
        (
            base.replacen("workers = 1,", "workers = 1000001,", 1),
            "workers".into(),
        ),
        (
            base.replacen(
                "kind = \"cell_outage\", at",
                "kind = \"cell_outage\", multiplier = 2, at",
                1,
            ),
            "multiplier".into(),
        ),
        (format!("{base}typo = 1\n"), "typo".into()),
        // `rate` is a fraction for dependency_errors (and operations per second for
        // rate_limit): the schema types it per fault kind.
        (
            base.replacen(
                "kind = \"dependency_errors\", at = \"1s\", duration = \"60s\", dependency = \"d-search\", rate = 0.5",
                "kind = \"dependency_errors\", at = \"1s\", duration = \"60s\", dependency = \"d-search\", rate = 1.5",
                1,
            ),
            "rate".into(),
        ),
    ];
    for (table, spec) in spec::TABLES {
        if table.is_empty() {
            continue;
        }
        // Distributions are tried with each kind, so an unknown key meets every case.
        for variant in 0..spec::DIST_KINDS.len() {
            let text = maximal_scenario(variant, spec.title);
            assert!(text.contains("zz_undeclared"), "{table} is not generated");
            broken.push((text, format!("{table}.zz_undeclared")));
        }
    }
    for (text, what) in broken {
        assert!(
            load(&text).is_err(),
            "the loader accepts a broken `{what}`:\n{text}"
        );
        assert!(
            validator.check(&text).is_err(),
            "the schema accepts a broken `{what}`:\n{text}"
        );
    }
}

/// The text between `<!-- NAME:start -->` and `<!-- NAME:end -->` in `file` (relative to the
/// repository root).
fn marked_section(file: &str, name: &str) -> String {
    let doc = std::fs::read_to_string(root().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let start = format!("<!-- {name}:start -->\n");
    let end = format!("<!-- {name}:end -->");
    let from = doc.find(&start).map(|i| i + start.len());
    let to = doc.find(&end);
    match (from, to) {
        (Some(a), Some(b)) if a <= b => doc[a..b].to_string(),
        _ => panic!("{file} lacks the {name} markers"),
    }
}

#[test]
fn the_reference_and_limits_tables_are_generated_from_the_spec() {
    for (file, name, args) in [
        (
            "docs/scenarios.md",
            "scenario-reference",
            vec!["schema", "--markdown"],
        ),
        ("docs/limits.md", "limits", vec!["schema", "--limits"]),
    ] {
        let output = simulate(&args);
        assert_eq!(code(&output), 0);
        let generated = String::from_utf8_lossy(&output.stdout);
        assert!(
            marked_section(file, name) == generated,
            "{file}'s {name} section is out of date: paste the output of \
             `cargo run -- {}` between its markers",
            args.join(" ")
        );
    }
}

#[test]
fn an_interrupted_write_never_leaves_a_truncated_report() {
    // Occupy the temporary name a write would use (a folder cannot be replaced by a file):
    // the write fails before the rename, so the old file must be left whole.
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("run");
    let output = simulate(&[
        "scenarios/hot-tenant.toml",
        "--set",
        SHORT,
        "--out",
        &out.display().to_string(),
        "--quiet",
    ]);
    assert_eq!(code(&output), 0, "{}", text(&output));
    let before = std::fs::read(out.join("report.json")).expect("report");
    assert!(serde_json::from_slice::<Json>(&before).is_ok());
    // Every file the run wrote went through a temporary name in the same folder.
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .expect("folder")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind");
    assert_written_atomically(&out.join("report.json"), &before);
}

/// `write_atomically` into a path whose temporary file cannot be created fails and leaves the
/// old contents in place.
fn assert_written_atomically(path: &Path, before: &[u8]) {
    let name = path
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let blocker = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::create_dir_all(&blocker).expect("mkdir");
    let result = tenantsim::cli::write_atomically(path, "{\"half\": ");
    assert!(result.is_err(), "the write went around its temporary file");
    assert_eq!(std::fs::read(path).expect("still there"), before);
    std::fs::remove_dir(&blocker).expect("rmdir");
}

/// The largest accepted scenario validates and runs to a report, without quadratic work
/// anywhere (a fault naming every tenant once made selecting bystanders and the plot classes
/// take minutes). Slow (a million tenants): only with `TENANTSIM_SLOW=1`.
#[test]
fn a_million_tenants_under_a_cell_outage_finish() {
    if std::env::var_os("TENANTSIM_SLOW").is_none_or(|v| v != "1") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let scenario = dir.path().join("million.toml");
    std::fs::write(
        &scenario,
        format!(
            r#"name = "million"
[simulation]
duration = "1s"
[[tiers]]
name = "t"
rate = 10
[[cells]]
name = "c"
api = {{ workers = 8, service_time = {{ dist = "constant", value = "1ms" }} }}
[[tenants]]
name = "x"
count = {}
tier = "t"
arrival = {{ rate = 0.001 }}
[[faults]]
name = "o"
kind = "cell_outage"
cell = "c"
at = "0s"
duration = "1s"
[[slo]]
name = "s"
tenants = "bystanders"
expect = ["p99 < 1s"]
"#,
            limits::MAX_TENANTS.max_int()
        ),
    )
    .expect("write");
    let out = dir.path().join("out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_simulate"))
        .args([
            scenario.display().to_string(),
            "--out".into(),
            out.display().to_string(),
            "--quiet".into(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawns");
    // A watchdog against a hang, far above the seconds this takes.
    let status = wait_with_deadline(&mut child, Duration::from_secs(600));
    assert!(matches!(status.code(), Some(0 | 1 | 4)), "{status:?}");
    assert!(out.join("report.json").is_file());
}
