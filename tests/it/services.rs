//! Services, dependencies and caches (issue 24): scopes, call trees, timeouts and breakers,
//! faults seen from one cell, cache isolation, the cross-tenant invariant over cache entries,
//! and the limits of call trees. Each test compares a control with the switch that breaks it.
//!
//! `cargo test --test it services -- --nocapture` prints the measured figures.

use tenantsim::model::RunOptions;
use tenantsim::model::invariants::Sabotage;
use tenantsim::model::metrics::Counter;
use tenantsim::pipeline::{Executed, execute_with};
use tenantsim::scenario::{self, LoadOptions};

use crate::common::{code, simulate, text};

fn run_with(text: &str, overrides: &[&str], options: RunOptions<'_>) -> Executed {
    let load = LoadOptions {
        path: "services.toml".into(),
        overrides: overrides.iter().map(|s| s.to_string()).collect(),
        seed: None,
        files: None,
    };
    execute_with(text, &load, options)
        .unwrap_or_else(|e| panic!("scenario with {overrides:?} runs: {e}\n{text}"))
}

fn run(text: &str, overrides: &[&str]) -> Executed {
    run_with(text, overrides, RunOptions::default())
}

fn load_error(text: &str) -> String {
    let options = LoadOptions {
        path: "services.toml".into(),
        ..LoadOptions::default()
    };
    match scenario::load(text, &options) {
        Ok(_) => panic!("the scenario loads:\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn counter(run: &Executed, tenants: impl Fn(&str) -> bool, counter: Counter) -> u64 {
    run.scenario
        .system
        .tenants
        .iter()
        .enumerate()
        .filter(|(_, t)| tenants(&t.name))
        .map(|(i, _)| run.output.metrics.counters[i][counter as usize])
        .sum()
}

/// p50 of one class of the tenants whose names start with `prefix`, pooled over the report's
/// per-tenant class rows (weighted by requests).
fn class_p50(run: &Executed, prefix: &str, class: &str) -> f64 {
    let rows: Vec<(f64, u64)> = run
        .report
        .tenants
        .iter()
        .filter(|t| t.name.starts_with(prefix))
        .filter_map(|t| t.classes.iter().find(|c| c.name == class))
        .filter_map(|c| c.latency_ms.as_ref().map(|l| (l.p50, c.ok)))
        .collect();
    let total: u64 = rows.iter().map(|(_, n)| n).sum();
    rows.iter().map(|(p, n)| p * *n as f64).sum::<f64>() / total as f64
}

/// Two cells, each with one tenant group calling service `svc` (one worker per instance) at
/// a rate that keeps one worker about 60 % busy. `{scope}` places the service.
fn scoped(scope: &str) -> String {
    format!(
        r#"name = "scopes"
[simulation]
duration = "60s"
warmup = "5s"
[edge]
rate_limiting = false
[[tiers]]
name = "t"
rate = 100000
[[cells]]
name = "cell-a"
api = {{ workers = 64, service_time = {{ dist = "constant", value = "1ms" }} }}
[[cells]]
name = "cell-b"
api = {{ workers = 64, service_time = {{ dist = "constant", value = "1ms" }} }}
[[services]]
name = "svc"
scope = "{scope}"
pools = [{{ name = "p", workers = 1, queue = 10000, admission = false, service_time = {{ dist = "exponential", mean = "10ms" }} }}]
operations = [{{ name = "op" }}]
[[classes]]
name = "c"
calls = [{{ service = "svc" }}]
[[tenants]]
name = "a"
count = 2
tier = "t"
cell = "cell-a"
timeout = "none"
arrival = {{ rate = 30 }}
requests = {{ c = 1.0 }}
[[tenants]]
name = "b"
count = 2
tier = "t"
cell = "cell-b"
timeout = "none"
arrival = {{ rate = 30 }}
requests = {{ c = 1.0 }}
"#
    )
}

#[test]
fn a_services_scope_decides_which_callers_share_an_instance() {
    // Per cell: each cell's instance serves 60 requests/s at 10 ms (ρ = 0.6); global: one
    // instance serves 120/s (ρ = 1.2, overloaded); per tenant: 30/s each (ρ = 0.3).
    let p50 = |scope: &str| class_p50(&run(&scoped(scope), &[]), "", "c");
    let (cell, global, tenant) = (p50("cell"), p50("global"), p50("tenant"));
    let region = p50("region");
    println!(
        "p50 with the service per cell {cell:.1} ms, per region {region:.1} ms, global {global:.1} ms, per tenant {tenant:.1} ms"
    );
    assert!(tenant < cell, "{tenant} vs {cell}");
    assert!(cell * 10.0 < global, "{cell} vs {global}");
    // Both cells are in the default region: one regional instance, like the global one.
    assert!(
        region * 0.8 < global && global < region * 1.25,
        "{region} vs {global}"
    );
}

#[test]
fn a_call_cycle_between_services_is_an_error_naming_it() {
    let text = scoped("cell").replace(
        "operations = [{ name = \"op\" }]",
        "operations = [{ name = \"op\", calls = [{ service = \"other\" }] }]\n\
         [[services]]\nname = \"other\"\npools = [{ name = \"p\", workers = 1, service_time = { dist = \"constant\", value = \"1ms\" } }]\n\
         operations = [{ name = \"back\", calls = [{ service = \"svc\" }] }]",
    );
    let error = load_error(&text);
    println!("{error}");
    assert!(error.contains("svc → other → svc"), "{error}");
}

#[test]
fn call_trees_are_bounded_by_named_limits() {
    let branches: Vec<String> = (0..65)
        .map(|_| "{ service = \"svc\" }".to_string())
        .collect();
    let text = scoped("cell").replace(
        "calls = [{ service = \"svc\" }]\n[[tenants]]",
        &format!(
            "calls = [{{ parallel = [{}] }}]\n[[tenants]]",
            branches.join(", ")
        ),
    );
    let error = load_error(&text);
    assert!(error.contains("MAX_FANOUT"), "{error}");
    // A step that names two kinds is refused, naming both.
    let text = scoped("cell").replace(
        "calls = [{ service = \"svc\" }]",
        "calls = [{ service = \"svc\", db = \"cell\" }]",
    );
    let error = load_error(&text);
    assert!(error.contains("`db` and `service`"), "{error}");
}

#[test]
fn tenant_scoped_instances_are_bounded_by_named_limits() {
    // 40,000 tenants, each with its own instance of a service of 64 pools: 2.56 million pool
    // instances, over MAX_POOL_INSTANCES.
    let pools: Vec<String> = (0..64)
        .map(|i| format!("{{ name = \"p{i}\", workers = 1, service_time = {{ dist = \"constant\", value = \"1ms\" }} }}"))
        .collect();
    let text = scoped("tenant")
        .replace(
            "pools = [{ name = \"p\", workers = 1, queue = 10000, admission = false, service_time = { dist = \"exponential\", mean = \"10ms\" } }]",
            &format!("pools = [{}]", pools.join(", ")),
        )
        .replace("name = \"a\"\ncount = 2", "name = \"a\"\ncount = 40000");
    let error = load_error(&text);
    assert!(error.contains("MAX_POOL_INSTANCES"), "{error}");
    // A cache of 10 million entries per tenant over 3 tenants: over MAX_CACHE_ENTRIES_TOTAL.
    let text = cache_text("")
        .replace("capacity = 2000", "capacity = 10000000")
        .replace("scope = \"cell\"", "scope = \"tenant\"")
        + "[[tenants]]\nname = \"u\"\ntier = \"t\"\narrival = { rate = 1 }\nrequests = { read = 1.0 }\n";
    let error = load_error(&text);
    assert!(error.contains("MAX_CACHE_ENTRIES_TOTAL"), "{error}");
}

/// One cell; tenant `t` reads through a cache (`{isolation}`), tenant `scanner` scans.
fn cache_text(isolation: &str) -> String {
    format!(
        r#"name = "cache"
[simulation]
duration = "60s"
warmup = "10s"
[[tiers]]
name = "t"
rate = 100000
[[cells]]
name = "cell-a"
db = "main"
api = {{ workers = 256, service_time = {{ dist = "constant", value = "100us" }} }}
[[databases]]
name = "main"
connections = 256
query_time = {{ dist = "constant", value = "5ms" }}
[[dependencies]]
name = "kv"
kind = "cache"
scope = "cell"
latency = {{ dist = "constant", value = "100us" }}
capacity = 2000
{isolation}
[[classes]]
name = "read"
calls = [{{ cache = "kv", keys = 1000, popularity = "zipf", zipf = 0.8, on_miss = [{{ db = "cell" }}] }}]
[[classes]]
name = "scan"
calls = [{{ cache = "kv", keys = 100000000, popularity = "uniform", on_miss = [{{ db = "cell" }}] }}]
[[tenants]]
name = "t"
tier = "t"
arrival = {{ rate = 200 }}
requests = {{ read = 1.0 }}
[[tenants]]
name = "scanner"
tier = "t"
arrival = {{ rate = 2000 }}
requests = {{ scan = 1.0 }}
"#
    )
}

fn hit_ratio(run: &Executed, name: &str) -> f64 {
    let hits = counter(run, |n| n == name, Counter::CacheHit) as f64;
    let misses = counter(run, |n| n == name, Counter::CacheMiss) as f64;
    hits / (hits + misses)
}

#[test]
fn a_cache_quota_keeps_a_scan_from_evicting_the_others() {
    let quota = run(&cache_text("isolation = \"quota\"\nquota = 1000"), &[]);
    let shared = run(&cache_text(""), &[]);
    let partition = run(&cache_text("isolation = \"partition\"\nquota = 1000"), &[]);
    let (q, s, p) = (
        hit_ratio(&quota, "t"),
        hit_ratio(&shared, "t"),
        hit_ratio(&partition, "t"),
    );
    println!("t's hit ratio with a quota {q:.3}, a partition {p:.3}, shared {s:.3}");
    // With its 1,000 entries t holds its whole key space: every read after the first of a
    // key hits. Shared, the scan's 2,000 new keys a second evict t's in about a second.
    assert!(q > 0.95 && p > 0.95, "{q} {p}");
    assert!(s < 0.7, "{s}");
    // The scanner misses either way.
    assert!(hit_ratio(&quota, "scanner") < 0.01);
}

#[test]
fn a_cache_lookup_never_returns_another_tenants_entry_unless_sabotaged() {
    let text = cache_text("");
    let held = run(&text, &[]);
    let check = |r: &Executed| {
        r.evaluation
            .invariants
            .iter()
            .find(|i| i.name == "no_cross_tenant_access")
            .map(|i| (i.passed, i.detail.clone()))
            .expect("the invariant is reported")
    };
    let (passed, detail) = check(&held);
    println!("{detail}");
    assert!(passed, "{detail}");
    // Both tenants look up the same key numbers: a cache that ignores the tenant in its keys
    // returns the scanner's entries to `t`, and the invariant sees it.
    let sabotaged = run_with(
        &text.replace("keys = 100000000", "keys = 1000"),
        &[],
        RunOptions {
            sabotage: Some(Sabotage::SharedCacheKeys),
            ..RunOptions::default()
        },
    );
    let (passed, detail) = check(&sabotaged);
    println!("sabotaged: {detail}");
    assert!(!passed, "{detail}");
}

#[test]
fn a_cache_flush_empties_it_and_the_hit_ratio_recovers() {
    let flush = "[[faults]]\nname = \"flush\"\nkind = \"cache_flush\"\ncache = \"kv\"\nat = \"30s\"\nduration = \"1s\"\n";
    let text = cache_text("isolation = \"quota\"\nquota = 1000") + flush;
    let flushed = run(&text, &["tenants.scanner.arrival.rate=1"]);
    let base = run(
        &cache_text("isolation = \"quota\"\nquota = 1000"),
        &["tenants.scanner.arrival.rate=1"],
    );
    let misses = |r: &Executed| counter(r, |n| n == "t", Counter::CacheMiss);
    println!(
        "t's misses: {} without, {} with a flush at 30 s",
        misses(&base),
        misses(&flushed)
    );
    // The flush costs about one miss per key t uses again (hundreds), not a lasting drop.
    assert!(misses(&flushed) > misses(&base) + 100);
    assert!(
        hit_ratio(&flushed, "t") > 0.85,
        "{}",
        hit_ratio(&flushed, "t")
    );
}

/// Three cells calling one regional dependency; `{extra}` adds faults.
fn dependency_text(extra: &str) -> String {
    format!(
        r#"name = "dependency"
[simulation]
duration = "60s"
warmup = "5s"
[breakers]
enabled = false
[[tiers]]
name = "t"
rate = 100000
[[cells]]
name = "cell-a"
api = {{ workers = 64, service_time = {{ dist = "constant", value = "1ms" }} }}
[[cells]]
name = "cell-b"
api = {{ workers = 64, service_time = {{ dist = "constant", value = "1ms" }} }}
[[dependencies]]
name = "store"
kind = "object_storage"
scope = "region"
latency = {{ dist = "constant", value = "10ms" }}
{extra}
[[classes]]
name = "put"
calls = [{{ dependency = "store", timeout = "1s" }}]
[[tenants]]
name = "a"
count = 2
tier = "t"
cell = "cell-a"
arrival = {{ rate = 20 }}
requests = {{ put = 1.0 }}
[[tenants]]
name = "b"
count = 2
tier = "t"
cell = "cell-b"
arrival = {{ rate = 20 }}
requests = {{ put = 1.0 }}
"#
    )
}

fn errors(run: &Executed, prefix: &str) -> (u64, u64) {
    run.report
        .tenants
        .iter()
        .filter(|t| t.name.starts_with(prefix))
        .fold((0, 0), |(e, n), t| {
            (e + t.failed + t.timed_out + t.rejected, n + t.requests)
        })
}

#[test]
fn dependency_faults_reach_every_caller_or_one_cell() {
    let fault = |kind: &str, keys: &str| {
        format!(
            "[[faults]]\nname = \"f\"\nkind = \"{kind}\"\ndependency = \"store\"\n{keys}\nat = \"20s\"\nduration = \"20s\"\n"
        )
    };
    // The fault tables follow the classes (they name the dependency): appended at the end.
    let with = |extra: &str| run(&(dependency_text("") + extra), &[]);
    let outage_a = with(&fault("dependency_outage", "cell = \"cell-a\""));
    let (ea, na) = errors(&outage_a, "a-");
    let (eb, _) = errors(&outage_a, "b-");
    println!("outage seen from cell-a: cell-a {ea} of {na} failed, cell-b {eb}");
    // About a third of cell-a's judged requests (20 of 55 s) hang for the 1 s timeout and fail.
    assert!(ea as f64 > 0.3 * na as f64, "{ea} of {na}");
    assert_eq!(eb, 0);
    let errors_all = with(&fault("dependency_errors", "rate = 0.5"));
    let (ea, na) = errors(&errors_all, "a-");
    let (eb, nb) = errors(&errors_all, "b-");
    println!("50 % errors for everyone: {ea} of {na}, {eb} of {nb}");
    assert!(ea > na / 8 && eb > nb / 8);
    let slow = with(&fault("dependency_slowdown", "factor = 20"));
    let p50 = |r: &Executed| class_p50(r, "", "put");
    let base = with("");
    println!(
        "p50 {} ms, with a x20 slowdown for a third of the run {} ms",
        p50(&base),
        p50(&slow)
    );
    // 10 ms becomes 200 ms for a third of the requests; the median stays, the mean moves.
    let mean = |r: &Executed| {
        r.report.tiers[0]
            .latency_ms
            .as_ref()
            .map(|l| l.mean)
            .expect("latency")
    };
    assert!(
        mean(&slow) > 3.0 * mean(&base),
        "{} vs {}",
        mean(&slow),
        mean(&base)
    );
}

#[test]
fn a_dependencys_rate_limit_and_quota_refuse_calls_as_429s() {
    let limited = run(&dependency_text("rate_limit = 50"), &[]);
    let quota = run(
        &dependency_text("max_in_flight_per_tenant = 1"),
        &["dependencies.store.latency.value=100ms"],
    );
    let throttled = |r: &Executed| counter(r, |_| true, Counter::DependencyThrottled);
    println!(
        "throttled calls: {} with a limit of 50/s for 80/s offered, {} with one call in flight per tenant",
        throttled(&limited),
        throttled(&quota)
    );
    // 80 calls/s against 50/s: about 30/s refused over 60 s.
    assert!(throttled(&limited) > 1_000);
    assert!(throttled(&quota) > 100);
    assert_eq!(throttled(&run(&dependency_text(""), &[])), 0);
}

#[test]
fn object_storage_outage_without_breakers_holds_the_cells_workers_and_grows_the_job_backlog() {
    // The drill's other twin (the file's `# twin:` is the breakers keyed by dependency):
    // without breakers cell-a's hanging uploads hold its API and job workers, so its API
    // requests fail and its job backlog grows until jobs wait seconds after the store is back.
    // As written, the per-(tenant, dependency) breakers keep both bounded.
    const BACKLOG: &str = "cell-a's job backlog stays bounded";
    const API: &str = "cell-a's API requests keep their workers";
    let dir = tempfile::tempdir().expect("temp dir");
    let status = |sets: &[&str], name: &str| {
        let out = dir.path().join(format!("run-{}", sets.len()));
        let mut args = vec!["scenarios/object-storage-outage.toml", "--quiet", "--out"];
        let out_text = out.display().to_string();
        args.push(&out_text);
        args.extend_from_slice(sets);
        let output = simulate(&args);
        assert!(code(&output) <= 1, "{}", text(&output));
        let report = crate::common::read_report(&out);
        let slo = report["slos"]
            .as_array()
            .expect("slos")
            .iter()
            .find(|s| s["name"].as_str().is_some_and(|n| n.starts_with(name)))
            .unwrap_or_else(|| panic!("an SLO named {name:?}"))
            .clone();
        slo["status"].as_str().expect("status").to_string()
    };
    assert_eq!(status(&[], BACKLOG), "pass");
    assert_eq!(status(&[], API), "pass");
    assert_eq!(
        status(&["--set", "breakers.enabled=false"], BACKLOG),
        "fail"
    );
    assert_eq!(status(&["--set", "breakers.enabled=false"], API), "fail");
}

/// One cell whose job pool uploads each job's result to object storage after its `job_time`
/// (three attempts per job); `{extra}` adds faults.
fn job_script_text(extra: &str) -> String {
    format!(
        r#"name = "job-script"
[simulation]
duration = "60s"
warmup = "5s"
[breakers]
enabled = false
[[tiers]]
name = "t"
rate = 100000
[[cells]]
name = "cell-a"
api = {{ workers = 8, service_time = {{ dist = "constant", value = "1ms" }} }}
jobs = {{ workers = 4, max_attempts = 3, job_time = {{ dist = "constant", value = "20ms" }}, calls = [{{ dependency = "store", timeout = "1s" }}] }}
[[dependencies]]
name = "store"
kind = "object_storage"
scope = "cell"
latency = {{ dist = "constant", value = "30ms" }}
[[tenants]]
name = "a"
count = 2
tier = "t"
arrival = {{ rate = 1 }}
jobs = {{ rate = 5 }}
{extra}
"#
    )
}

#[test]
fn a_job_runs_its_pools_calls_and_a_failed_call_fails_the_attempt() {
    let jobs = |run: &Executed| {
        let mut total = (0, 0, 0, 0.0_f64);
        for t in &run.report.tenants {
            let j = t.jobs.as_ref().expect("jobs");
            total.0 += j.completed;
            total.1 += j.dead_lettered;
            total.2 += j.failed_attempts;
            if let Some(l) = &j.completion_ms {
                total.3 = total.3.max(l.p50);
            }
        }
        total
    };
    // Healthy: every job completes in its own 20 ms plus the 30 ms upload.
    let (completed, dead, failed, p50) = jobs(&run(&job_script_text(""), &[]));
    println!("healthy: {completed} completed, p50 {p50} ms");
    assert!(completed > 400, "{completed}");
    assert_eq!((dead, failed), (0, 0));
    assert!(
        (p50 - 50.0).abs() < 1.0,
        "20 ms of job time + 30 ms of upload: {p50}"
    );
    // Every upload fails: every attempt fails after its call, the job is dead-lettered after
    // three attempts, and none completes.
    let failing = job_script_text(
        "[[faults]]\nname = \"broken\"\nkind = \"dependency_errors\"\ndependency = \"store\"\nrate = 1.0\nat = \"0s\"\nduration = \"60s\"",
    );
    let (completed, dead, failed, _) = jobs(&run(&failing, &[]));
    println!("failing store: {dead} dead-lettered, {failed} failed attempts");
    assert_eq!(completed, 0);
    assert!(dead > 400, "{dead}");
    assert!(
        failed >= 3 * dead,
        "three failed attempts per dead letter: {failed} vs {dead}"
    );
    // The store unreachable: each attempt hangs until the call's 1 s timeout, so the four
    // workers turn over four attempts a second against ten jobs a second: the backlog grows.
    let down = job_script_text(
        "[[faults]]\nname = \"cut\"\nkind = \"dependency_outage\"\ndependency = \"store\"\nat = \"0s\"\nduration = \"60s\"",
    );
    let hung = run(&down, &[]);
    let unfinished: u64 = hung
        .report
        .tenants
        .iter()
        .map(|t| t.jobs.as_ref().map_or(0, |j| j.unfinished))
        .sum();
    println!("unreachable store: {unfinished} jobs unfinished at the end");
    assert!(unfinished > 300, "{unfinished}");
}

#[test]
fn a_job_script_is_checked_like_a_class_script() {
    let text = job_script_text("").replace(
        "calls = [{ dependency = \"store\"",
        "calls = [{ dependency = \"stor\"",
    );
    let error = load_error(&text);
    assert!(error.contains("cells.cell-a.jobs.calls"), "{error}");
    assert!(error.contains("stor"), "{error}");
}

#[test]
fn a_job_pool_whose_jobs_are_one_call_matches_erlang_c() {
    // Jobs of no own time whose one call takes Exp(10 ms) at a store of ample concurrency:
    // the pool of c job workers (FIFO) is an M/M/c queue, and a job's completion time is its
    // response. Compared with Erlang C: mean and tail quantiles (the report's histogram reads
    // up to 1 % high).
    use tenantsim::analytic::MMc;
    let (c, mean, rho) = (4u32, 0.010, 0.8);
    let lambda = rho * f64::from(c) / mean;
    let text = format!(
        r#"name = "job-mmc"
[simulation]
duration = "600s"
warmup = "10s"
[breakers]
enabled = false
[[tiers]]
name = "t"
rate = 100000
[[cells]]
name = "cell-a"
api = {{ workers = 1, service_time = {{ dist = "constant", value = "1ms" }} }}
jobs = {{ workers = {c}, scheduler = "fifo", job_time = {{ dist = "constant", value = "0s" }}, calls = [{{ dependency = "store" }}] }}
[[dependencies]]
name = "store"
kind = "object_storage"
scope = "cell"
concurrency = 1000
latency = {{ dist = "exponential", mean = "10ms" }}
[[tenants]]
name = "a"
tier = "t"
arrival = {{ rate = 0.001 }}
jobs = {{ rate = {lambda} }}
"#
    );
    let r = run(&text, &[]);
    let jobs = r.report.tenants[0].jobs.as_ref().expect("jobs");
    let l = jobs.completion_ms.as_ref().expect("completion times");
    let model = MMc {
        lambda,
        mu: 1.0 / mean,
        c,
    };
    println!(
        "M/M/{c} at rho {rho} from job scripts, {} jobs: mean {:.3} ms (Erlang C {:.3}), p50 {:.3} ({:.3}), p90 {:.3} ({:.3}), p99 {:.3} ({:.3})",
        jobs.completed,
        l.mean,
        model.mean_response() * 1e3,
        l.p50,
        model.response_quantile(0.5) * 1e3,
        l.p90,
        model.response_quantile(0.9) * 1e3,
        l.p99,
        model.response_quantile(0.99) * 1e3,
    );
    assert!(jobs.completed > 150_000, "{}", jobs.completed);
    let close = |observed: f64, expected: f64, tolerance: f64| {
        assert!(
            (observed / (expected * 1e3) - 1.0).abs() < tolerance,
            "{observed} ms vs {} ms",
            expected * 1e3
        );
    };
    close(l.mean, model.mean_response(), 0.03);
    close(l.p50, model.response_quantile(0.5), 0.04);
    close(l.p90, model.response_quantile(0.9), 0.04);
    close(l.p99, model.response_quantile(0.99), 0.05);
}
