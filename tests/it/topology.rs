//! The architect's own system (issue 23): request classes and their streams, pools and
//! bulkheads, replicas and statement timeouts, routing by tier, and the faults that reach them.
//! Each test compares a control with the switch that breaks it, so each can fail.
//!
//! `cargo test --test it topology -- --nocapture` prints the measured figures.

use std::collections::BTreeMap;

use tenantsim::model::RunOptions;
use tenantsim::model::metrics::Counter;
use tenantsim::model::trace::{TraceKind, TraceRecord, TraceSink};
use tenantsim::pipeline::{Executed, execute_with};
use tenantsim::scenario::LoadOptions;

fn run_with(text: &str, overrides: &[&str], options: RunOptions<'_>) -> Executed {
    let load = LoadOptions {
        path: "topology.toml".into(),
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

fn tenant(run: &Executed, name: &str) -> usize {
    run.scenario
        .system
        .tenants
        .iter()
        .position(|t| t.name == name)
        .unwrap_or_else(|| panic!("no tenant {name}"))
}

/// Every trace record, in order.
#[derive(Default)]
struct Records(Vec<TraceRecord>);

impl TraceSink for Records {
    fn record(&mut self, r: &TraceRecord) {
        self.0.push(*r);
    }
}

/// Two cells: tenant `solo` alone in cell-b, `a` and `b` in cell-a. `{solo_mix}` is the solo
/// tenant's `requests` line.
fn two_cells(solo_mix: &str) -> String {
    format!(
        r#"name = "streams"
[simulation]
duration = "20s"
[[tiers]]
name = "t"
rate = 100000
[[cells]]
name = "cell-a"
db = "main"
api = {{ workers = 4, service_time = {{ dist = "exponential", mean = "5ms" }} }}
[[cells]]
name = "cell-b"
db = "main-b"
api = {{ workers = 4, service_time = {{ dist = "exponential", mean = "5ms" }} }}
[[databases]]
name = "main"
connections = 4
query_time = {{ dist = "lognormal", median = "2ms", p99 = "20ms" }}
[[databases]]
name = "main-b"
connections = 4
query_time = {{ dist = "lognormal", median = "2ms", p99 = "20ms" }}
[[classes]]
name = "api"
calls = [{{ db = "cell", queries = 2 }}]
[[classes]]
name = "report"
cpu = {{ dist = "exponential", mean = "50ms" }}
calls = [{{ db = "cell", queries = 5 }}]
[[tenants]]
name = "a"
tier = "t"
cell = "cell-a"
arrival = {{ rate = 100 }}
requests = {{ api = 0.9, report = 0.1 }}
[[tenants]]
name = "solo"
tier = "t"
cell = "cell-b"
arrival = {{ rate = 50 }}
{solo_mix}
[[tenants]]
name = "b"
tier = "t"
cell = "cell-a"
arrival = {{ rate = 80 }}
db_queries = 1
"#
    )
}

#[test]
fn adding_a_class_to_one_tenant_changes_no_other_tenants_draws() {
    let trace = |mix: &str| -> (Vec<TraceRecord>, usize) {
        let mut records = Records::default();
        let run = run_with(
            &two_cells(mix),
            &[],
            RunOptions {
                trace: Some(&mut records),
                ..RunOptions::default()
            },
        );
        (records.0, tenant(&run, "solo"))
    };
    let (before, solo) = trace("requests = { api = 1.0 }");
    let (after, solo_after) = trace("requests = { api = 0.8, report = 0.2 }");
    assert_eq!(solo, solo_after);
    let others = |records: &[TraceRecord]| -> Vec<TraceRecord> {
        records
            .iter()
            .filter(|r| r.tenant as usize != solo)
            .copied()
            .collect()
    };
    let (a, b) = (others(&before), others(&after));
    println!(
        "other tenants' trace records: {} before, {} after",
        a.len(),
        b.len()
    );
    assert!(a.len() > 10_000, "the others did work: {}", a.len());
    assert_eq!(
        a, b,
        "adding a class to one tenant's mix changed another tenant's run"
    );
    // The solo tenant itself did change (the test can tell a difference).
    let mine =
        |records: &[TraceRecord]| records.iter().filter(|r| r.tenant as usize == solo).count();
    assert_ne!(mine(&before), mine(&after));
}

#[test]
fn a_class_keeps_its_streams_when_another_class_joins_the_mix() {
    // The api class's arrivals of tenant `solo` are the same whether or not it also sends
    // reports: each class draws from streams keyed by its name. (Its latencies may differ: the
    // reports share its cell.)
    let arrivals = |mix: &str| -> Vec<u64> {
        let mut records = Records::default();
        let run = run_with(
            &two_cells(mix),
            &["tenants.solo.arrival.rate=40"],
            RunOptions {
                trace: Some(&mut records),
                ..RunOptions::default()
            },
        );
        let solo = tenant(&run, "solo") as u32;
        let sources = if mix.contains("report") { 2 } else { 1 };
        records
            .0
            .iter()
            .filter(|r| r.tenant == solo && r.kind == TraceKind::Issued && r.request % sources == 0)
            .map(|r| r.at.as_nanos())
            .collect()
    };
    // With shares 0.5 / 0.5 the api class runs at 20/s either way: 0.5 of 40 with reports, and
    // with `api = 1.0` at a rate of 20.
    let alone = {
        let mut records = Records::default();
        let run = run_with(
            &two_cells("requests = { api = 1.0 }"),
            &["tenants.solo.arrival.rate=20"],
            RunOptions {
                trace: Some(&mut records),
                ..RunOptions::default()
            },
        );
        let solo = tenant(&run, "solo") as u32;
        records
            .0
            .iter()
            .filter(|r| r.tenant == solo && r.kind == TraceKind::Issued)
            .map(|r| r.at.as_nanos())
            .collect::<Vec<u64>>()
    };
    let mixed = arrivals("requests = { api = 0.5, report = 0.5 }");
    assert!(alone.len() > 100);
    assert_eq!(
        alone, mixed,
        "the api class's arrivals moved when reports joined"
    );
}

/// A single cell, API pool plus a reports pool; `{report}` is extra keys of the report class.
fn bulkhead_text(report: &str, pool_cap: &str) -> String {
    format!(
        r#"name = "bulkhead"
[simulation]
duration = "30s"
[[tiers]]
name = "t"
rate = 100000
[[cells]]
name = "cell-a"
db = "main"
api = {{ workers = 16, service_time = {{ dist = "exponential", mean = "4ms" }} }}
[[pools]]
name = "reports"
workers = 8
queue = 64
service_time = {{ dist = "constant", value = "100ms" }}
{pool_cap}
[[databases]]
name = "main"
connections = 16
query_time = {{ dist = "constant", value = "2ms" }}
[[classes]]
name = "api"
[[classes]]
name = "report"
pool = "reports"
timeout = "none"
{report}
[[tenants]]
name = "hot"
tier = "t"
arrival = {{ rate = 200 }}
requests = {{ api = 0.5, report = 0.5 }}
[[tenants]]
name = "calm"
tier = "t"
arrival = {{ rate = 20 }}
requests = {{ api = 0.5, report = 0.5 }}
"#
    )
}

/// The most requests of (tenant, rank in mix) admitted and not yet done at once.
fn peak_in_flight(records: &[TraceRecord], sources: u64) -> BTreeMap<(u32, u64), i64> {
    let mut open: BTreeMap<(u32, u64), i64> = BTreeMap::new();
    let mut peak: BTreeMap<(u32, u64), i64> = BTreeMap::new();
    for r in records {
        let key = (r.tenant, r.request % sources);
        match r.kind {
            TraceKind::Admitted { .. } => {
                let n = open.entry(key).or_default();
                *n += 1;
                let p = peak.entry(key).or_default();
                *p = (*p).max(*n);
            }
            TraceKind::ServiceDone => *open.entry(key).or_default() -= 1,
            _ => {}
        }
    }
    peak
}

#[test]
fn a_class_bulkhead_caps_each_tenants_requests_of_the_class() {
    let peaks = |report: &str| {
        let mut records = Records::default();
        let run = run_with(
            &bulkhead_text(report, ""),
            &[],
            RunOptions {
                trace: Some(&mut records),
                ..RunOptions::default()
            },
        );
        let hot = tenant(&run, "hot") as u32;
        let peaks = peak_in_flight(&records.0, 2);
        (peaks[&(hot, 1)], run)
    };
    let (capped, run) = peaks("max_in_flight_per_tenant = 3");
    let (uncapped, _) = peaks("");
    println!(
        "hot tenant's reports in flight at most: {capped} with a cap of 3, {uncapped} without"
    );
    assert!(capped <= 3, "the class cap was exceeded: {capped}");
    assert!(
        uncapped > 3,
        "without the cap the hot tenant holds more: {uncapped}"
    );
    // Its reports over the cap were refused (503), its API requests were not.
    let hot = &run.report.tenants[tenant(&run, "hot")];
    let report_class = hot
        .classes
        .iter()
        .find(|c| c.name == "report")
        .expect("class row");
    let api_class = hot
        .classes
        .iter()
        .find(|c| c.name == "api")
        .expect("class row");
    assert!(report_class.rejected > 0);
    assert_eq!(api_class.rejected, 0);
}

#[test]
fn a_pool_cap_bounds_each_tenant_in_that_pool_only() {
    let mut records = Records::default();
    let run = run_with(
        &bulkhead_text("", "max_in_flight_per_tenant = 2"),
        &[],
        RunOptions {
            trace: Some(&mut records),
            ..RunOptions::default()
        },
    );
    let hot = tenant(&run, "hot") as u32;
    let peaks = peak_in_flight(&records.0, 2);
    println!(
        "hot tenant in flight at most: {} reports (pool cap 2), {} api requests",
        peaks[&(hot, 1)],
        peaks[&(hot, 0)]
    );
    assert!(peaks[&(hot, 1)] <= 2);
    assert!(
        peaks[&(hot, 0)] > 2,
        "the cap is the reports pool's, not the api pool's"
    );
}

#[test]
fn moving_a_class_to_another_pool_keeps_its_cost() {
    // The report class carries its own CPU time: routed to the api pool it still costs 100 ms
    // (before classes, cost followed the pool: the issue's "backwards answer").
    let text = bulkhead_text("cpu = { dist = \"constant\", value = \"100ms\" }", "");
    let p50 = |overrides: &[&str]| -> f64 {
        let run = run(&text, overrides);
        let calm = &run.report.tenants[tenant(&run, "calm")];
        calm.classes
            .iter()
            .find(|c| c.name == "report")
            .and_then(|c| c.latency_ms.as_ref())
            .map(|l| l.p50)
            .expect("report latency")
    };
    let own = p50(&[]);
    let shared = p50(&["classes.report.pool=api"]);
    println!("report p50: {own} ms in its own pool, {shared} ms in the api pool");
    assert!(own >= 100.0 && shared >= 100.0, "{own} {shared}");
    // And without its own `cpu`, a class takes the pool's service time.
    let pool_cost = run(&bulkhead_text("", ""), &["classes.report.pool=api"]);
    let calm = &pool_cost.report.tenants[tenant(&pool_cost, "calm")];
    let p50 = calm
        .classes
        .iter()
        .find(|c| c.name == "report")
        .and_then(|c| c.latency_ms.as_ref())
        .map(|l| l.p50)
        .expect("latency");
    assert!(p50 < 50.0, "the api pool's 4 ms service time: {p50}");
}

/// One cell with a replicated database; `{step}` is the class's query step.
fn replica_text(step: &str, writes: f64, extra: &str) -> String {
    format!(
        r#"name = "replicas"
[simulation]
duration = "40s"
warmup = "5s"
[[tiers]]
name = "t"
rate = 100000
[[cells]]
name = "cell-a"
db = "main"
api = {{ workers = 32, service_time = {{ dist = "constant", value = "1ms" }} }}
[[databases]]
name = "main"
connections = 16
query_time = {{ dist = "constant", value = "1ms" }}
replicas = {{ count = 2, connections = 8, lag = "200ms" }}
[[classes]]
name = "read"
writes = 0
calls = [{step}]
[[classes]]
name = "write"
writes = 1
calls = [{{ db = "cell" }}]
[[tenants]]
name = "t"
count = 10
tier = "t"
arrival = {{ rate = 50 }}
requests = {{ read = {read}, write = {writes} }}
{extra}
"#,
        read = 1.0 - writes
    )
}

fn counter(run: &Executed, counter: Counter) -> u64 {
    run.output
        .metrics
        .counters
        .iter()
        .map(|c| c[counter as usize])
        .sum()
}

#[test]
fn replica_reads_are_stale_as_often_as_the_lag_says() {
    // Writes of a tenant arrive as a Poisson process at rate w; a read is stale when a write
    // was acknowledged within the last `lag`: probability 1 - exp(-w · lag).
    let run = run(
        &replica_text("{ db = \"cell\", replica = true }", 0.2, ""),
        &[],
    );
    let reads = counter(&run, Counter::ReplicaRead);
    let stale = counter(&run, Counter::StaleRead);
    let w = 50.0 * 0.2;
    let expected = 1.0 - (-w * 0.2f64).exp();
    let measured = stale as f64 / reads as f64;
    println!("stale reads: {stale} of {reads} = {measured:.4}, closed form {expected:.4}");
    assert!(reads > 10_000);
    assert!(
        (measured - expected).abs() < 0.02,
        "stale fraction {measured} vs 1 - exp(-w lag) = {expected}"
    );
    // Reads on the primary are never stale, and without replica steps nothing counts.
    let primary = run_fn(&replica_text("{ db = \"cell\" }", 0.2, ""));
    assert_eq!(counter(&primary, Counter::ReplicaRead), 0);
    assert_eq!(counter(&primary, Counter::StaleRead), 0);
}

fn run_fn(text: &str) -> Executed {
    run(text, &[])
}

#[test]
fn a_replica_outage_sends_reads_to_the_primary_and_a_lag_fault_makes_them_stale() {
    let fault = |kind: &str| {
        format!(
            "[[faults]]\nname = \"f\"\nkind = \"{kind}\"\ndatabase = \"main\"\nat = \"10s\"\nduration = \"30s\"\n{}",
            if kind == "replica_lag" {
                "lag = \"10s\""
            } else {
                ""
            }
        )
    };
    let step = "{ db = \"cell\", replica = true }";
    let base = run_fn(&replica_text(step, 0.05, ""));
    let outage = run_fn(&replica_text(step, 0.05, &fault("replica_outage")));
    let lagging = run_fn(&replica_text(step, 0.05, &fault("replica_lag")));
    let (r0, r1) = (
        counter(&base, Counter::ReplicaRead),
        counter(&outage, Counter::ReplicaRead),
    );
    let stale = |run: &Executed| {
        counter(run, Counter::StaleRead) as f64 / counter(run, Counter::ReplicaRead) as f64
    };
    println!(
        "replica reads {r0} -> {r1} with an outage from 10 s; stale fraction {:.3} -> {:.3} with 10 s more lag from 10 s",
        stale(&base),
        stale(&lagging)
    );
    // From 10 s to the end no read reaches a replica: about 5 of 35 judged seconds remain.
    assert!(r1 * 4 < r0, "{r1} vs {r0}");
    // 2.5 writes/s per tenant and 200 ms of lag: 1 - exp(-0.5) = 0.39 of reads are stale;
    // with 10 s more lag for 30 of the 35 judged seconds, nearly all of those are.
    assert!(stale(&base) < 0.5, "{}", stale(&base));
    assert!(stale(&lagging) > 0.8, "{}", stale(&lagging));
    // Every request still succeeds: the primary took the reads.
    assert_eq!(outage.report.tiers[0].failed, 0);
}

#[test]
fn statement_timeouts_cut_queries_and_fail_their_requests() {
    let text = |timeout: &str| {
        format!(
            r#"name = "statement-timeouts"
[simulation]
duration = "30s"
[[tiers]]
name = "t"
rate = 100000
[[cells]]
name = "cell-a"
db = "main"
api = {{ workers = 64, service_time = {{ dist = "constant", value = "1ms" }} }}
[[databases]]
name = "main"
connections = 64
query_time = {{ dist = "lognormal", median = "10ms", p99 = "1s" }}
{timeout}
[[tenants]]
name = "t"
tier = "t"
arrival = {{ rate = 100 }}
db_queries = 1
timeout = "none"
"#
        )
    };
    let cut = run_fn(&text("statement_timeout = \"100ms\""));
    let free = run_fn(&text(""));
    let t = &cut.report.tenants[0];
    let max = t.latency_ms.as_ref().expect("ok requests").max;
    println!(
        "with a 100 ms statement timeout: {} of {} failed, ok max {max} ms; without: max {} ms",
        t.failed,
        t.requests,
        free.report.tenants[0].latency_ms.as_ref().expect("ok").max
    );
    // An ok request's only query finished within the statement timeout (plus 1 ms of CPU).
    assert!(max <= 101.0, "ok max {max} ms");
    assert!(free.report.tenants[0].latency_ms.as_ref().expect("ok").max > 500.0);
    // Cut queries fail their requests and are counted.
    assert_eq!(counter(&cut, Counter::StatementTimeout), t.failed);
    assert!(t.failed > 0);
    assert_eq!(free.report.tenants[0].failed, 0);
}

/// Six cells in three groups; tiers route to groups; `{extra}` adds faults.
fn routing_text(extra: &str) -> String {
    let mut text = String::from(
        r#"name = "routing"
[simulation]
duration = "60s"
[failover]
detection = "5s"
[[cell_groups]]
name = "shared"
cells = ["s1", "s2"]
[[cell_groups]]
name = "premium"
cells = ["p1", "p2"]
[[cell_groups]]
name = "dedicated"
cells = ["d1", "d2"]
[[tiers]]
name = "free"
rate = 1000
cells = "shared"
[[tiers]]
name = "premium"
rate = 1000
cells = "premium"
[[tiers]]
name = "enterprise"
rate = 1000
cells = "dedicated"
"#,
    );
    for (cell, max) in [
        ("s1", ""),
        ("s2", ""),
        ("p1", ""),
        ("p2", ""),
        ("d1", "max_tenants = 1"),
        ("d2", "max_tenants = 1"),
    ] {
        text.push_str(&format!(
            "[[cells]]\nname = \"{cell}\"\napi = {{ workers = 8, service_time = {{ dist = \"exponential\", mean = \"2ms\" }} }}\n{max}\n"
        ));
    }
    text.push_str(
        r#"[[tenants]]
name = "free"
count = 40
tier = "free"
arrival = { rate = 5 }
[[tenants]]
name = "premium"
count = 10
tier = "premium"
arrival = { rate = 5 }
[[tenants]]
name = "ent"
count = 2
tier = "enterprise"
arrival = { rate = 5 }
"#,
    );
    text.push_str(extra);
    text
}

fn cells_of(run: &Executed, tier: &str) -> std::collections::BTreeSet<String> {
    run.report
        .tenants
        .iter()
        .filter(|t| t.tier == tier)
        .map(|t| t.cell.clone())
        .collect()
}

#[test]
fn tiers_route_their_tenants_to_their_cells_at_placement_and_failover() {
    let outage = "[[faults]]\nname = \"down\"\nkind = \"cell_outage\"\ncell = \"p1\"\nat = \"10s\"\nduration = \"40s\"\n";
    let routed = run_fn(&routing_text(outage));
    let free = cells_of(&routed, "free");
    let premium = cells_of(&routed, "premium");
    let enterprise = cells_of(&routed, "enterprise");
    println!("final cells: free {free:?}, premium {premium:?}, enterprise {enterprise:?}");
    assert!(free.iter().all(|c| c.starts_with('s')));
    // p1 failed: its tenants were evacuated to p2, never to a shared or dedicated cell.
    assert_eq!(premium.iter().collect::<Vec<_>>(), vec!["p2"]);
    // One enterprise tenant per dedicated cell.
    assert_eq!(enterprise.len(), 2);
    // The twin: without routing by tier, tenants spread over every cell.
    let spread = run(&routing_text(outage), &["placement.tier_routing=false"]);
    let free = cells_of(&spread, "free");
    println!("without tier routing, free tenants in {free:?}");
    assert!(free.iter().any(|c| !c.starts_with('s')));
    // max_tenants still holds: a dedicated cell takes one tenant.
    let on_dedicated = spread
        .report
        .tenants
        .iter()
        .filter(|t| t.cell.starts_with('d'))
        .count();
    assert!(on_dedicated <= 2, "{on_dedicated}");
}

#[test]
fn a_pool_slowdown_slows_only_that_pool_of_those_cells() {
    // Light load: two tenants' reports keep 2 of the 8 report workers busy, 6 when three
    // times slower, so the pool does not saturate and the slowdown shows in the latency.
    let fault = "[[faults]]\nname = \"slow\"\nkind = \"pool_slowdown\"\npool = \"reports\"\nfactor = 3\nat = \"5s\"\nduration = \"25s\"\n";
    let light = ["tenants.hot.arrival.rate=20"];
    let slow = run(&(bulkhead_text("", "") + fault), &light);
    let base = run(&bulkhead_text("", ""), &light);
    let p50 = |run: &Executed, class: &str| {
        let calm = &run.report.tenants[tenant(run, "calm")];
        calm.classes
            .iter()
            .find(|c| c.name == class)
            .and_then(|c| c.latency_ms.as_ref())
            .map(|l| l.p50)
            .expect("latency")
    };
    println!(
        "calm's report p50 {} -> {} ms, api p50 {} -> {} ms",
        p50(&base, "report"),
        p50(&slow, "report"),
        p50(&base, "api"),
        p50(&slow, "api")
    );
    assert!(p50(&slow, "report") > 2.5 * p50(&base, "report"));
    assert!(p50(&slow, "api") < 1.5 * p50(&base, "api") + 1.0);
}
