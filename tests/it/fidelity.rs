//! Fidelity (issue 9): the simulator agrees with queueing theory and with published results.
//!
//! Every check runs the real model (scenario text -> `scenario::load` -> `model::run`) and
//! measures it from outside: a trace sink sees every step of every request and job, from which
//! waits, holding times and queue lengths are rebuilt exactly; the model's own metrics and time
//! series are checked against them. References nobody here wrote: Erlang C (M/M/c),
//! Pollaczek–Khinchine (M/G/1), Little's law, the GCRA window bound and M/D/1/K, the
//! Shreedhar–Varghese deficit-round-robin bound, Brooker's backoff-and-jitter result and the
//! combinatorics of shuffle sharding. The LRU cache is checked against Che's approximation on
//! the component itself (issue 24), until the model has caches.
//!
//! The default `cargo test` runs fast variants with tolerances sized to their sample sizes;
//! `TENANTSIM_SLOW=1 cargo test --release --test it fidelity -- --nocapture --test-threads 1`
//! runs the long, tight variants and prints the rows of `docs/validation.md`. Confidence
//! intervals are 95 % Student-t intervals over independent seeds; queueing runs drop requests
//! admitted during the first [`WARMUP_S`] seconds (the model starts empty).

use rayon::prelude::*;

use tenantsim::analytic::{MD1K, MG1, MMc};
use tenantsim::components::placement::shuffle_shard;
use tenantsim::model::metrics::Outcome;
use tenantsim::model::metrics::{Counter, WindowStats};
use tenantsim::model::series::Series;
use tenantsim::model::trace::{TraceKind, TraceRecord, TraceSink};
use tenantsim::model::{self, RunOptions, RunOutput, placing};
use tenantsim::scenario::{self, LoadOptions, Scenario};

// ---------------------------------------------------------------------------------------------
// Plumbing: variants, statistics, checks, running the model.

/// Whether the long, tight variants run (`TENANTSIM_SLOW=1`).
fn slow() -> bool {
    std::env::var("TENANTSIM_SLOW").is_ok_and(|v| v == "1")
}

/// The fast variant's value, or the long one's under `TENANTSIM_SLOW=1`.
fn pick<T>(fast: T, long: T) -> T {
    if slow() { long } else { fast }
}

/// Requests admitted before this are not measured: every run starts empty. At ρ = 0.8 with one
/// server (μ = 125/s) the relaxation time `1/(μ(1−√ρ)²)` is 0.72 s, so 20 s is 28 of them.
const WARMUP_S: u64 = 20;

const NANOS: f64 = 1e9;

/// The 97.5 % quantile of Student's t with `df` degrees of freedom (two-sided 95 %).
fn t975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        1..=30 => TABLE[df - 1],
        // Within 0.002 of the exact quantile above 30 degrees of freedom.
        _ => 1.960 + 2.4 / df as f64,
    }
}

/// A mean over independent replications with its 95 % confidence half-width.
#[derive(Clone, Copy, Debug)]
struct Estimate {
    mean: f64,
    half_width: f64,
}

impl Estimate {
    fn of(samples: &[f64]) -> Estimate {
        let n = samples.len();
        let mean = samples.iter().sum::<f64>() / n as f64;
        let var = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n as f64 - 1.0);
        let half_width = t975(n - 1) * (var / n as f64).sqrt();
        Estimate {
            mean,
            // Identical replications differ only by rounding.
            half_width: if half_width < 1e-9 * mean.abs() {
                0.0
            } else {
                half_width
            },
        }
    }

    fn exact(value: f64) -> Estimate {
        Estimate {
            mean: value,
            half_width: 0.0,
        }
    }
}

/// Collects checks, prints one table row per check (the rows of docs/validation.md), and
/// fails the test at the end with every check that missed.
struct Checks {
    test: &'static str,
    failures: Vec<String>,
}

impl Checks {
    fn new(test: &'static str) -> Checks {
        println!(
            "\n{test} ({} variant)",
            if slow() { "long" } else { "fast" }
        );
        Checks {
            test,
            failures: Vec::new(),
        }
    }

    /// One table row.
    fn row(&self, model: &str, reference: &str, value: &str, error: &str) {
        println!(
            "| {model} | {reference} | {value} | {error} | `fidelity::{}` |",
            self.test
        );
    }

    /// `measured` is within `tolerance` (relative) of `reference`; `scale` and `unit` only
    /// format the row (1e3, "ms").
    fn relative(
        &mut self,
        model: &str,
        reference_name: &str,
        measured: Estimate,
        reference: f64,
        tolerance: f64,
        (scale, unit): (f64, &str),
    ) {
        let error = (measured.mean - reference) / reference;
        let ci = if measured.half_width > 0.0 {
            format!(" ± {}", sig(measured.half_width * scale))
        } else {
            String::new()
        };
        self.row(
            model,
            &format!("{reference_name} {} {unit}", sig(reference * scale)),
            &format!("{}{ci} {unit}", sig(measured.mean * scale)),
            &format!(
                "{:+.2} % (tolerance {} %)",
                error * 100.0,
                tolerance * 100.0
            ),
        );
        // The variant must resolve its tolerance: an interval wider than half of it would let
        // noise alone fail (or pass) the check.
        if measured.half_width > 0.5 * tolerance * reference.abs() {
            self.failures.push(format!(
                "{model}: the 95 % interval ± {} is wider than half the tolerance; run longer",
                measured.half_width
            ));
        }
        // A NaN error (no measurement) fails too.
        if error.is_nan() || error.abs() > tolerance {
            self.failures.push(format!(
                "{model}: measured {} (± {}) vs {reference_name} {}: error {:+.2} % beyond {} %",
                measured.mean,
                measured.half_width,
                reference,
                error * 100.0,
                tolerance * 100.0
            ));
        }
    }

    /// A condition with its own row.
    fn holds(&mut self, ok: bool, model: &str, reference: &str, value: &str, error: &str) {
        self.row(model, reference, value, error);
        if !ok {
            self.failures
                .push(format!("{model}: {value} violates {reference} ({error})"));
        }
    }

    fn finish(self) {
        assert!(
            self.failures.is_empty(),
            "{} check(s) failed in {}:\n{}",
            self.failures.len(),
            self.test,
            self.failures.join("\n")
        );
    }
}

/// Four significant digits.
fn sig(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let digits = (3 - x.abs().log10().floor() as i32).max(0) as usize;
    format!("{x:.digits$}")
}

/// Runs `replications` seeds (1, 2, ...) in parallel; results in seed order.
fn replicate<T: Send>(replications: u64, run: impl Fn(u64) -> T + Sync + Send) -> Vec<T> {
    (1..=replications).into_par_iter().map(run).collect()
}

fn load(text: &str, seed: u64) -> Scenario {
    let options = LoadOptions {
        path: "fidelity.toml".into(),
        seed: Some(seed),
        ..LoadOptions::default()
    };
    scenario::load(text, &options).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// Loads and runs `text` with `seed`, every step going to `sink`.
fn run_traced(text: &str, seed: u64, sink: &mut dyn TraceSink) -> (Scenario, RunOutput) {
    let scenario = load(text, seed);
    let output = model::run(
        &scenario.system,
        RunOptions {
            tenant_windows: scenario.tenant_windows(),
            tracked: scenario.tracked_tenants(&[]),
            trace: Some(sink),
            ..RunOptions::default()
        },
    )
    .expect("runs within its event budget");
    (scenario, output)
}

/// The exact empirical `q`-quantile (the smallest sample with at least a fraction `q` at or
/// below it), in seconds. Sorts `xs`.
fn quantile(xs: &mut [u64], q: f64) -> f64 {
    xs.sort_unstable();
    let k = ((q * xs.len() as f64).ceil() as usize).clamp(1, xs.len());
    xs[k - 1] as f64 / NANOS
}

fn mean_secs(xs: &[u64]) -> f64 {
    xs.iter().map(|&x| x as f64).sum::<f64>() / xs.len() as f64 / NANOS
}

// ---------------------------------------------------------------------------------------------
// Queues: M/M/c (Erlang C) and M/G/1 (Pollaczek–Khinchine).

/// Mean service time of the queueing runs (μ = 125/s, as the bench's reference model).
const SERVICE_MS: f64 = 8.0;

/// How the pool's arrival rate is split over its tenants.
const SHARES: [f64; 3] = [0.5, 0.3, 0.2];

/// One API pool of `workers` FIFO servers with `service` (a TOML distribution), shared by one
/// tenant per share of `lambda`. No limiter, no admission control, no timeouts, no retries:
/// the textbook queue.
fn pool_text(workers: u32, service: &str, lambda: f64, shares: &[f64], duration_s: u64) -> String {
    let mut text = format!(
        r#"name = "fidelity-pool"
[simulation]
duration = "{duration_s}s"
warmup = "{WARMUP_S}s"
[edge]
rate_limiting = false
[breakers]
enabled = false
[[tiers]]
name = "open"
rate = 1000000000
[[cells]]
name = "pool"
api = {{ workers = {workers}, admission = false, service_time = {service} }}
"#
    );
    for (i, share) in shares.iter().enumerate() {
        text.push_str(&format!(
            "[[tenants]]\nname = \"t{}\"\ntier = \"open\"\ntimeout = \"none\"\narrival = {{ rate = {} }}\n",
            i + 1,
            lambda * share
        ));
    }
    text
}

/// Waiting time (admitted -> a worker starts) and response time (admitted -> the worker is
/// done) of every request admitted after the warmup, per tenant, in nanoseconds.
struct QueueProbe {
    warmup: u64,
    admitted: Vec<Vec<u64>>,
    waits: Vec<Vec<u64>>,
    responses: Vec<Vec<u64>>,
}

impl QueueProbe {
    fn new(tenants: usize) -> QueueProbe {
        QueueProbe {
            warmup: WARMUP_S * 1_000_000_000,
            admitted: vec![Vec::new(); tenants],
            waits: vec![Vec::new(); tenants],
            responses: vec![Vec::new(); tenants],
        }
    }
}

impl TraceSink for QueueProbe {
    fn record(&mut self, r: &TraceRecord) {
        let (t, at) = (r.tenant as usize, r.at.as_nanos());
        match r.kind {
            TraceKind::Admitted { .. } => {
                // No retries: one attempt per request, admitted in issue order.
                assert_eq!(self.admitted[t].len() as u64, r.request);
                self.admitted[t].push(at);
            }
            TraceKind::ServiceStart => {
                let admitted = self.admitted[t][r.request as usize];
                if admitted >= self.warmup {
                    self.waits[t].push(at - admitted);
                }
            }
            TraceKind::ServiceDone => {
                let admitted = self.admitted[t][r.request as usize];
                if admitted >= self.warmup {
                    self.responses[t].push(at - admitted);
                }
            }
            _ => {}
        }
    }
}

/// One replication's statistics: for the pool (index 0) and each tenant, mean and p99 of the
/// waiting and response times (seconds), plus each tenant's mean and p99 as its report shows.
struct QueueStats {
    groups: Vec<[f64; 4]>,
    reported: Vec<[f64; 2]>,
}

fn queue_stats(text: &str, tenants: usize, seed: u64) -> QueueStats {
    let mut probe = QueueProbe::new(tenants);
    let (_, output) = run_traced(text, seed, &mut probe);
    let stats = |waits: &mut Vec<u64>, responses: &mut Vec<u64>| {
        assert!(waits.len() > 1_000, "too few samples: {}", waits.len());
        [
            mean_secs(waits),
            quantile(waits, 0.99),
            mean_secs(responses),
            quantile(responses, 0.99),
        ]
    };
    let mut groups = vec![stats(
        &mut probe.waits.concat(),
        &mut probe.responses.concat(),
    )];
    for t in 0..tenants {
        groups.push(stats(&mut probe.waits[t], &mut probe.responses[t]));
    }
    let reported = output
        .metrics
        .tenants
        .iter()
        .map(|m| {
            let latency = &m.windows[0].1.latency;
            let secs = |d: Option<tenantsim::time::SimDuration>| {
                d.map_or(f64::NAN, |d| d.as_nanos() as f64 / NANOS)
            };
            [secs(latency.mean()), secs(latency.percentile(99.0))]
        })
        .collect();
    QueueStats { groups, reported }
}

/// Means and p99s of waiting and response times, pool and every tenant, against the
/// reference values; the tenants' reported latency (report.json) against the response time.
#[allow(clippy::too_many_arguments)]
fn check_queue(
    checks: &mut Checks,
    label: &str,
    runs: &[QueueStats],
    reference: [Option<f64>; 4],
    reference_name: &str,
    shares: &[f64],
    (tol_mean, tol_p99): (f64, f64),
) {
    let names = ["mean wait", "p99 wait", "mean response", "p99 response"];
    let groups = runs[0].groups.len();
    for g in 0..groups {
        let who = if g == 0 {
            "pool".to_string()
        } else {
            format!("tenant t{g} ({:.0} %)", shares[g - 1] * 100.0)
        };
        for (k, name) in names.iter().enumerate() {
            let Some(value) = reference[k] else { continue };
            let samples: Vec<f64> = runs.iter().map(|r| r.groups[g][k]).collect();
            let tolerance = if k % 2 == 0 { tol_mean } else { tol_p99 };
            checks.relative(
                &format!("{label}, {who}: {name}"),
                reference_name,
                Estimate::of(&samples),
                value,
                tolerance,
                (1e3, "ms"),
            );
        }
    }
    // What users read: the report's mean (exact) and p99 (hdrhistogram, 2 significant digits
    // past 2,048 samples, so 1 % more room).
    for t in 0..runs[0].reported.len() {
        for (k, (name, reference_index, extra)) in
            [("mean", 2, 0.0), ("p99", 3, 0.01)].into_iter().enumerate()
        {
            let Some(value) = reference[reference_index] else {
                continue;
            };
            let samples: Vec<f64> = runs.iter().map(|r| r.reported[t][k]).collect();
            let tolerance = if k == 0 { tol_mean } else { tol_p99 } + extra;
            checks.relative(
                &format!("{label}, tenant t{}: reported {name} latency", t + 1),
                reference_name,
                Estimate::of(&samples),
                value,
                tolerance,
                (1e3, "ms"),
            );
        }
    }
}

#[test]
fn mmc_waits_and_responses_match_erlang_c() {
    let mut checks = Checks::new("mmc_waits_and_responses_match_erlang_c");
    // (servers, utilisation, requests per replication)
    let cases: Vec<(u32, f64, f64)> = pick(
        vec![
            (1, 0.5, 125_000.0),
            (1, 0.8, 400_000.0),
            (4, 0.8, 400_000.0),
            (10, 0.8, 1_000_000.0),
        ],
        vec![
            (1, 0.5, 2e6),
            (1, 0.8, 6e6),
            (2, 0.5, 2e6),
            (2, 0.8, 4e6),
            (4, 0.5, 2e6),
            (4, 0.8, 4e6),
            (10, 0.5, 1.2e7),
            (10, 0.8, 4e6),
        ],
    );
    let replications = pick(8, 10);
    let tolerances = pick((0.06, 0.08), (0.02, 0.03));
    let mu = 1e3 / SERVICE_MS;
    for (c, rho, requests) in cases {
        let lambda = rho * f64::from(c) * mu;
        let duration = WARMUP_S + (requests / lambda).ceil() as u64;
        let text = pool_text(
            c,
            &format!("{{ dist = \"exponential\", mean = \"{SERVICE_MS}ms\" }}"),
            lambda,
            &SHARES,
            duration,
        );
        let runs = replicate(replications, |seed| queue_stats(&text, SHARES.len(), seed));
        let q = MMc { lambda, mu, c };
        check_queue(
            &mut checks,
            &format!("M/M/{c} ρ={rho}"),
            &runs,
            [
                Some(q.mean_wait()),
                Some(q.wait_quantile(0.99)),
                Some(q.mean_response()),
                Some(q.response_quantile(0.99)),
            ],
            "Erlang C",
            &SHARES,
            tolerances,
        );
    }
    checks.finish();
}

/// Two request classes in two pools of one cell, each class's CPU exponential: each pool is
/// its own M/M/c. Tenants send both classes (`shares` of each tenant's rate go to class `a`).
fn two_pool_text(
    (c_a, mean_a_ms): (u32, f64),
    (c_b, mean_b_ms): (u32, f64),
    (lambda_a, lambda_b): (f64, f64),
    duration_s: u64,
) -> String {
    let mut text = format!(
        r#"name = "fidelity-two-pools"
[simulation]
duration = "{duration_s}s"
warmup = "{WARMUP_S}s"
[edge]
rate_limiting = false
[breakers]
enabled = false
[[tiers]]
name = "open"
rate = 1000000000
[[cells]]
name = "pool"
api = {{ workers = {c_a}, admission = false, service_time = {{ dist = "exponential", mean = "{mean_a_ms}ms" }} }}
[[pools]]
name = "batch"
workers = {c_b}
admission = false
service_time = {{ dist = "exponential", mean = "{mean_b_ms}ms" }}
[[classes]]
name = "a"
timeout = "none"
calls = []
[[classes]]
name = "b"
pool = "batch"
timeout = "none"
calls = []
"#
    );
    // Three tenants with different mixes; each class's total rate is lambda_a / lambda_b.
    let weights = [0.5, 0.3, 0.2];
    let mixes = [0.9, 0.5, 0.1]; // share of class a in each tenant's mix
    let total_a: f64 = weights.iter().zip(mixes).map(|(w, m)| w * m).sum();
    let total_b: f64 = weights.iter().zip(mixes).map(|(w, m)| w * (1.0 - m)).sum();
    // Scale each tenant so the class totals come out exactly: solve per tenant with a common
    // factor for each class (a tenant's rate is ra + rb, its mix ra / (ra + rb)).
    for (i, (w, m)) in weights.iter().zip(mixes).enumerate() {
        let ra = lambda_a * w * m / total_a;
        let rb = lambda_b * w * (1.0 - m) / total_b;
        let rate = ra + rb;
        text.push_str(&format!(
            "[[tenants]]\nname = \"t{}\"\ntier = \"open\"\ntimeout = \"none\"\narrival = {{ rate = {rate} }}\nrequests = {{ a = {}, b = {} }}\n",
            i + 1,
            ra / rate,
            rb / rate
        ));
    }
    text
}

/// Per class (0 = `a`, 1 = `b`): waits and responses of requests admitted after the warmup.
/// A tenant with two classes numbers its requests `2 × n + rank`.
struct ClassProbe {
    warmup: u64,
    admitted: std::collections::BTreeMap<(u32, u64), u64>,
    waits: [Vec<u64>; 2],
    responses: [Vec<u64>; 2],
}

impl TraceSink for ClassProbe {
    fn record(&mut self, r: &TraceRecord) {
        let at = r.at.as_nanos();
        let key = (r.tenant, r.request);
        let class = (r.request % 2) as usize;
        match r.kind {
            TraceKind::Admitted { .. } => {
                self.admitted.insert(key, at);
            }
            TraceKind::ServiceStart => {
                if let Some(&admitted) = self.admitted.get(&key)
                    && admitted >= self.warmup
                {
                    self.waits[class].push(at - admitted);
                }
            }
            TraceKind::ServiceDone => {
                if let Some(admitted) = self.admitted.remove(&key)
                    && admitted >= self.warmup
                {
                    self.responses[class].push(at - admitted);
                }
            }
            _ => {}
        }
    }
}

#[test]
fn two_classes_in_two_pools_match_erlang_c_per_pool() {
    let mut checks = Checks::new("two_classes_in_two_pools_match_erlang_c_per_pool");
    // (servers, mean service time in ms, utilisation) of one pool.
    type Pool = (u32, f64, f64);
    // Pool a, pool b, requests.
    let cases: Vec<(Pool, Pool, f64)> = pick(
        vec![((4, 8.0, 0.7), (2, 40.0, 0.6), 800_000.0)],
        // Class b gets about a fifth of the requests or more: with fewer (a 40 ms class b had
        // 7 % of them), its p99 wait's interval cannot resolve 3 %.
        vec![
            ((4, 8.0, 0.7), (2, 10.0, 0.6), 4e6),
            ((10, 8.0, 0.8), (1, 5.0, 0.5), 4e6),
        ],
    );
    let replications = pick(8, 10);
    let tolerances = pick((0.06, 0.09), (0.02, 0.03));
    for ((ca, ma, rho_a), (cb, mb, rho_b), requests) in cases {
        let (mu_a, mu_b) = (1e3 / ma, 1e3 / mb);
        let (lambda_a, lambda_b) = (rho_a * f64::from(ca) * mu_a, rho_b * f64::from(cb) * mu_b);
        let duration = WARMUP_S + (requests / (lambda_a + lambda_b)).ceil() as u64;
        let text = two_pool_text((ca, ma), (cb, mb), (lambda_a, lambda_b), duration);
        let runs = replicate(replications, |seed| {
            let mut probe = ClassProbe {
                warmup: WARMUP_S * 1_000_000_000,
                admitted: Default::default(),
                waits: [Vec::new(), Vec::new()],
                responses: [Vec::new(), Vec::new()],
            };
            let _ = run_traced(&text, seed, &mut probe);
            let mut stats = Vec::new();
            for k in 0..2 {
                assert!(probe.waits[k].len() > 1_000, "too few samples");
                stats.push([
                    mean_secs(&probe.waits[k]),
                    quantile(&mut probe.waits[k], 0.99),
                    mean_secs(&probe.responses[k]),
                    quantile(&mut probe.responses[k], 0.99),
                ]);
            }
            stats
        });
        for (k, (class, c, lambda, mu)) in [("a", ca, lambda_a, mu_a), ("b", cb, lambda_b, mu_b)]
            .into_iter()
            .enumerate()
        {
            let q = MMc { lambda, mu, c };
            let reference = [
                q.mean_wait(),
                q.wait_quantile(0.99),
                q.mean_response(),
                q.response_quantile(0.99),
            ];
            for (i, name) in ["mean wait", "p99 wait", "mean response", "p99 response"]
                .into_iter()
                .enumerate()
            {
                let samples: Vec<f64> = runs.iter().map(|r| r[k][i]).collect();
                checks.relative(
                    &format!(
                        "class {class} in its own pool, M/M/{c} ρ={:.1}: {name}",
                        lambda / (f64::from(c) * mu)
                    ),
                    "Erlang C",
                    Estimate::of(&samples),
                    reference[i],
                    if i % 2 == 0 {
                        tolerances.0
                    } else {
                        tolerances.1
                    },
                    (1e3, "ms"),
                );
            }
        }
    }
    checks.finish();
}

/// The same system written twice: with the implicit class (today's shape) and with one
/// declared class that says the same thing explicitly.
fn single_class_text(declared: bool, duration_s: u64) -> String {
    let class = if declared {
        "[[classes]]\nname = \"api\"\ncpu = { dist = \"exponential\", mean = \"4ms\" }\ncalls = [{ db = \"cell\", queries = 2 }]\n"
    } else {
        ""
    };
    let tenant = if declared {
        "requests = { api = 1.0 }"
    } else {
        "db_queries = 2"
    };
    format!(
        r#"name = "single-class"
[simulation]
duration = "{duration_s}s"
warmup = "{WARMUP_S}s"
[[tiers]]
name = "t"
rate = 100000
[[cells]]
name = "cell-a"
db = "main"
api = {{ workers = 8, service_time = {{ dist = "exponential", mean = "4ms" }} }}
[[databases]]
name = "main"
connections = 4
query_time = {{ dist = "lognormal", median = "2ms", p99 = "20ms" }}
{class}
[[tenants]]
name = "t"
count = 4
tier = "t"
arrival = {{ rate = 100 }}
timeout = "1s"
{tenant}
"#
    )
}

#[test]
fn a_declared_class_reproduces_the_implicit_class() {
    let mut checks = Checks::new("a_declared_class_reproduces_the_implicit_class");
    let duration = pick(200, 1_200);
    let replications = pick(8, 10);
    let measure = |declared: bool| {
        let text = single_class_text(declared, duration);
        replicate(replications, |seed| {
            let (_, output) =
                run_traced(&text, seed + if declared { 1_000 } else { 0 }, &mut NoTrace);
            let mut pooled = WindowStats::default();
            for m in &output.metrics.tenants {
                pooled.merge(&m.windows[0].1);
            }
            let secs = |d: Option<tenantsim::time::SimDuration>| {
                d.map_or(f64::NAN, |d| d.as_nanos() as f64 / NANOS)
            };
            [
                secs(pooled.latency.mean()),
                secs(pooled.latency.percentile(99.0)),
                pooled.counts.ok as f64 / pooled.counts.issued as f64,
            ]
        })
    };
    let implicit = measure(false);
    let declared = measure(true);
    for (i, (name, scale, unit)) in [
        ("mean latency", 1e3, "ms"),
        ("p99 latency", 1e3, "ms"),
        ("ok fraction", 1.0, ""),
    ]
    .into_iter()
    .enumerate()
    {
        let a = Estimate::of(&implicit.iter().map(|r| r[i]).collect::<Vec<_>>());
        let b: Vec<f64> = declared.iter().map(|r| r[i]).collect();
        checks.relative(
            &format!("declared class `api` (separate seeds): {name}"),
            "the implicit class",
            Estimate::of(&b),
            a.mean,
            pick(0.05, 0.02),
            (scale, unit),
        );
    }
    checks.finish();
}

/// A call tree with one front worker: the request's CPU (exponential), a service call (an
/// exponential operation on a pool too large to queue), then two parallel calls to a
/// dependency (exponential each, unlimited concurrency). The front worker is held for
/// S = cpu + op + max(b1, b2): an M/G/1 queue whose service moments are closed forms
/// (max of two iid exponentials of rate μ is Exp(2μ) + Exp(μ)).
fn call_tree_text(
    lambda: f64,
    (cpu_ms, op_ms, branch_ms): (f64, f64, f64),
    duration_s: u64,
) -> String {
    format!(
        r#"name = "fidelity-call-tree"
[simulation]
duration = "{duration_s}s"
warmup = "{WARMUP_S}s"
[edge]
rate_limiting = false
[breakers]
enabled = false
[[tiers]]
name = "open"
rate = 1000000000
[[cells]]
name = "front"
api = {{ workers = 1, admission = false, service_time = {{ dist = "exponential", mean = "{cpu_ms}ms" }} }}
[[services]]
name = "backend"
scope = "global"
pools = [{{ name = "p", workers = 10000, admission = false, service_time = {{ dist = "exponential", mean = "{op_ms}ms" }} }}]
operations = [{{ name = "op" }}]
[[dependencies]]
name = "store"
kind = "object_storage"
concurrency = 100000
latency = {{ dist = "exponential", mean = "{branch_ms}ms" }}
[[classes]]
name = "tree"
timeout = "none"
calls = [{{ service = "backend" }}, {{ parallel = [{{ dependency = "store" }}, {{ dependency = "store" }}] }}]
[[tenants]]
name = "t"
tier = "open"
timeout = "none"
arrival = {{ rate = {lambda} }}
requests = {{ tree = 1.0 }}
"#
    )
}

#[test]
fn a_call_tree_matches_pollaczek_khinchine() {
    let mut checks = Checks::new("a_call_tree_matches_pollaczek_khinchine");
    let (cpu, op, branch) = (2.0e-3, 3.0e-3, 2.0e-3);
    // S = Exp(cpu) + Exp(op) + Exp(2/branch) + Exp(1/branch): means and variances add.
    let parts = [cpu, op, branch / 2.0, branch];
    let mean_s: f64 = parts.iter().sum();
    let var_s: f64 = parts.iter().map(|m| m * m).sum();
    let second = var_s + mean_s * mean_s;
    let rho = 0.7;
    let lambda = rho / mean_s;
    let wait = lambda * second / (2.0 * (1.0 - rho));
    let requests = pick(300_000.0, 3_000_000.0);
    let duration = WARMUP_S + (requests / lambda).ceil() as u64;
    let text = call_tree_text(lambda, (cpu * 1e3, op * 1e3, branch * 1e3), duration);
    let runs = replicate(pick(8, 10), |seed| {
        let (_, output) = run_traced(&text, seed, &mut NoTrace);
        let latency = &output.metrics.tenants[0].windows[0].1.latency;
        let secs = |d: Option<tenantsim::time::SimDuration>| {
            d.map_or(f64::NAN, |d| d.as_nanos() as f64 / NANOS)
        };
        [secs(latency.mean()), secs(latency.percentile(99.0))]
    });
    checks.relative(
        "call tree (cpu, service call, 2 parallel calls) on 1 worker, ρ=0.7: mean latency",
        "Pollaczek–Khinchine W + E[S]",
        Estimate::of(&runs.iter().map(|r| r[0]).collect::<Vec<_>>()),
        wait + mean_s,
        pick(0.05, 0.02),
        (1e3, "ms"),
    );
    // The tail has no closed form here; the reference is Lindley's recursion for the front
    // worker's FIFO queue, with its own generator and many more samples than one run has.
    let reference_p99 = lindley_p99(lambda, &parts, pick(2_000_000, 20_000_000));
    checks.relative(
        "call tree (cpu, service call, 2 parallel calls) on 1 worker, ρ=0.7: p99 latency",
        "Lindley's recursion",
        Estimate::of(&runs.iter().map(|r| r[1]).collect::<Vec<_>>()),
        reference_p99,
        pick(0.06, 0.03),
        (1e3, "ms"),
    );
    checks.finish();
}

/// An independent reference for a single FIFO server's response-time tail: Lindley's
/// recursion `W' = max(0, W + S − A)` with Poisson arrivals at `lambda` and a service time
/// that is the sum of independent exponentials of means `parts` (seconds), driven by its own
/// splitmix64 generator. Returns the p99 of `W + S` over `samples` requests after a tenth as
/// many of warmup.
fn lindley_p99(lambda: f64, parts: &[f64], samples: usize) -> f64 {
    struct SplitMix(u64);
    impl SplitMix {
        fn exponential(&mut self, mean: f64) -> f64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            let u = ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
            -mean * u.ln()
        }
    }
    let mut rng = SplitMix(0x5EED);
    let warmup = samples / 10;
    let mut wait = 0.0f64;
    let mut responses = Vec::with_capacity(samples);
    for i in 0..warmup + samples {
        let service: f64 = parts.iter().map(|&m| rng.exponential(m)).sum();
        if i >= warmup {
            responses.push(wait + service);
        }
        wait = (wait + service - rng.exponential(1.0 / lambda)).max(0.0);
    }
    responses.sort_by(f64::total_cmp);
    responses[(responses.len() as f64 * 0.99) as usize]
}

/// Che's approximation of an LRU cache's hit ratio under the independent reference model:
/// item i (popularity p_i) hits with probability 1 - exp(-p_i T), T solving
/// Σ (1 - exp(-p_i T)) = C. Written here independently of the model and of `analytic`.
fn che_hit_ratio(keys: u64, exponent: f64, capacity: f64) -> f64 {
    let weights: Vec<f64> = (1..=keys).map(|k| (k as f64).powf(-exponent)).collect();
    let total: f64 = weights.iter().sum();
    let p: Vec<f64> = weights.iter().map(|w| w / total).collect();
    let filled = |t: f64| p.iter().map(|pi| 1.0 - (-pi * t).exp()).sum::<f64>();
    let (mut lo, mut hi) = (0.0, 1.0);
    while filled(hi) < capacity {
        hi *= 2.0;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if filled(mid) < capacity {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let t = 0.5 * (lo + hi);
    p.iter().map(|pi| pi * (1.0 - (-pi * t).exp())).sum()
}

#[test]
fn a_models_cache_matches_ches_approximation() {
    let mut checks = Checks::new("a_models_cache_matches_ches_approximation");
    // (keys, Zipf exponent, capacity)
    let cases: Vec<(u64, f64, u64)> = pick(
        vec![(10_000, 0.8, 1_000), (10_000, 1.2, 200)],
        vec![
            (10_000, 0.8, 1_000),
            (10_000, 1.2, 200),
            (100_000, 0.6, 5_000),
            (1_000, 1.0, 100),
        ],
    );
    for (keys, s, capacity) in cases {
        let text = format!(
            r#"name = "fidelity-che"
[simulation]
duration = "{duration}s"
warmup = "{warm}s"
[edge]
rate_limiting = false
[[tiers]]
name = "open"
rate = 1000000000
[[cells]]
name = "c"
api = {{ workers = 100000, admission = false, service_time = {{ dist = "constant", value = "1us" }} }}
[[dependencies]]
name = "kv"
kind = "cache"
concurrency = 100000
latency = {{ dist = "constant", value = "1us" }}
capacity = {capacity}
[[classes]]
name = "get"
calls = [{{ cache = "kv", keys = {keys}, popularity = "zipf", zipf = {s} }}]
[[tenants]]
name = "t"
tier = "open"
timeout = "none"
arrival = {{ rate = 10000 }}
requests = {{ get = 1.0 }}
"#,
            // Warm up with 50 x capacity lookups, then measure.
            warm = (capacity * 50) / 10_000 + 1,
            duration = (capacity * 50) / 10_000 + 1 + pick(30, 200),
        );
        let runs = replicate(pick(6, 10), |seed| {
            let (_, output) = run_traced(&text, seed, &mut NoTrace);
            let c = &output.metrics.counters[0];
            let (hits, misses) = (
                c[Counter::CacheHit as usize] as f64,
                c[Counter::CacheMiss as usize] as f64,
            );
            hits / (hits + misses)
        });
        checks.relative(
            &format!("model cache, LRU {capacity} of {keys} keys, Zipf {s}: hit ratio"),
            "Che's approximation",
            Estimate::of(&runs),
            che_hit_ratio(keys, s, capacity as f64),
            pick(0.03, 0.015),
            (100.0, "%"),
        );
    }
    checks.finish();
}

/// A sink that keeps nothing.
struct NoTrace;

impl TraceSink for NoTrace {
    fn record(&mut self, _: &TraceRecord) {}
}

#[test]
fn mg1_mean_wait_matches_pollaczek_khinchine() {
    let mut checks = Checks::new("mg1_mean_wait_matches_pollaczek_khinchine");
    // Log-normal service: median 6 ms, p99 24 ms (σ = 0.596, mean 7.17 ms, SCV 0.43).
    let (median, p99) = (0.006, 0.024);
    let cases: Vec<(&str, f64, f64)> = pick(
        vec![("constant", 0.8, 600_000.0), ("lognormal", 0.8, 600_000.0)],
        vec![
            ("constant", 0.5, 2e6),
            ("constant", 0.8, 4e6),
            ("lognormal", 0.5, 2e6),
            ("lognormal", 0.8, 4e6),
        ],
    );
    let replications = pick(5, 10);
    let tolerance = pick(0.05, 0.02);
    for (kind, rho, requests) in cases {
        let (service, q) = match kind {
            "constant" => {
                let s = SERVICE_MS / 1e3;
                (
                    format!("{{ dist = \"constant\", value = \"{SERVICE_MS}ms\" }}"),
                    MG1::deterministic(rho / s, s),
                )
            }
            _ => {
                let mean = MG1::lognormal(1.0, median, p99).mean_service;
                (
                    "{ dist = \"lognormal\", median = \"6ms\", p99 = \"24ms\" }".to_string(),
                    MG1::lognormal(rho / mean, median, p99),
                )
            }
        };
        let duration = WARMUP_S + (requests / q.lambda).ceil() as u64;
        let shares = [0.6, 0.4];
        let text = pool_text(1, &service, q.lambda, &shares, duration);
        let runs = replicate(replications, |seed| queue_stats(&text, shares.len(), seed));
        let label = if kind == "constant" {
            "M/D/1"
        } else {
            "M/G/1 log-normal"
        };
        check_queue(
            &mut checks,
            &format!("{label} ρ={rho}"),
            &runs,
            [Some(q.mean_wait()), None, Some(q.mean_response()), None],
            "Pollaczek–Khinchine",
            &shares,
            (tolerance, tolerance),
        );
    }
    checks.finish();
}

// ---------------------------------------------------------------------------------------------
// Little's law on every queue of a multi-tenant system.

/// Two cells sharing one database, four tenants in two tiers, background jobs in both cells.
/// CPU time is constant (2 ms) so the moment a request starts waiting for a database
/// connection (its worker's CPU is done) is known from the trace.
fn little_text(duration_s: u64) -> String {
    let mut text = format!(
        r#"name = "fidelity-little"
[simulation]
duration = "{duration_s}s"
warmup = "{WARMUP_S}s"
[edge]
rate_limiting = false
[breakers]
enabled = false
[[tiers]]
name = "gold"
rate = 1000000000
job_weight = 2
[[tiers]]
name = "silver"
rate = 1000000000
[[databases]]
name = "main"
connections = 3
query_time = {{ dist = "exponential", mean = "4ms" }}
"#
    );
    for cell in ["cell-a", "cell-b"] {
        text.push_str(&format!(
            r#"[[cells]]
name = "{cell}"
db = "main"
api = {{ workers = 3, admission = false, service_time = {{ dist = "constant", value = "2ms" }} }}
jobs = {{ workers = 2, job_time = {{ dist = "exponential", mean = "20ms" }} }}
"#
        ));
    }
    for (name, tier, cell, rate, jobs) in [
        ("t1", "gold", "cell-a", 150, 40),
        ("t2", "silver", "cell-a", 100, 30),
        ("t3", "gold", "cell-b", 160, 35),
        ("t4", "silver", "cell-b", 120, 25),
    ] {
        text.push_str(&format!(
            r#"[[tenants]]
name = "{name}"
tier = "{tier}"
cell = "{cell}"
timeout = "none"
db_queries = 1
arrival = {{ rate = {rate} }}
jobs = {{ rate = {jobs} }}
"#
        ));
    }
    text
}

const NONE: u64 = u64::MAX;

/// The steps of one request (one attempt, one query), in nanoseconds; `NONE` if not reached.
#[derive(Clone, Copy)]
struct Steps {
    issued: u64,
    admitted: u64,
    cell: u32,
    service_start: u64,
    query_start: u64,
    service_done: u64,
    finished: u64,
}

/// One background job's dispatch.
struct JobStart {
    tenant: usize,
    cell: u32,
    start: u64,
    waited: u64,
}

#[derive(Default)]
struct LittleProbe {
    requests: Vec<Vec<Steps>>,
    jobs: Vec<JobStart>,
}

impl TraceSink for LittleProbe {
    fn record(&mut self, r: &TraceRecord) {
        let (t, at) = (r.tenant as usize, r.at.as_nanos());
        if self.requests.len() <= t {
            self.requests.resize(t + 1, Vec::new());
        }
        let requests = &mut self.requests[t];
        if let TraceKind::Issued = r.kind {
            assert_eq!(requests.len() as u64, r.request);
            requests.push(Steps {
                issued: at,
                admitted: NONE,
                cell: u32::MAX,
                service_start: NONE,
                query_start: NONE,
                service_done: NONE,
                finished: NONE,
            });
            return;
        }
        if let TraceKind::JobStarted { cell, waited, .. } = r.kind {
            self.jobs.push(JobStart {
                tenant: t,
                cell,
                start: at,
                waited: waited.as_nanos(),
            });
            return;
        }
        let step = &mut requests[r.request as usize];
        match r.kind {
            TraceKind::Admitted { cell, .. } => {
                step.admitted = at;
                step.cell = cell;
            }
            TraceKind::ServiceStart => step.service_start = at,
            TraceKind::QueryStart => step.query_start = at,
            TraceKind::ServiceDone => step.service_done = at,
            TraceKind::Finished { .. } => step.finished = at,
            _ => {}
        }
    }
}

/// A queue's customers: (tenant, entry, exit or `NONE`), in nanoseconds.
type Visits = Vec<(usize, u64, u64)>;

/// Which occupancy of a series bucket a queue's L comes from.
type SeriesPick = fn(&model::series::Bucket) -> u64;

/// Little's law over the measurement window `[from, to)`: L, λ and W of one tenant's visits
/// (all tenants' if `tenant` is `None`). L is the time average of the number present (each
/// visit's overlap with the window); λ counts entries in the window; W averages the visits
/// that entered in it and left before its end.
fn little(visits: &Visits, tenant: Option<usize>, (from, to): (u64, u64)) -> (f64, f64, f64) {
    let span = (to - from) as f64 / NANOS;
    let (mut area, mut entered, mut done, mut sojourn) = (0.0, 0u64, 0u64, 0.0);
    for &(t, entry, exit) in visits {
        if tenant.is_some_and(|x| x != t) || entry >= to {
            continue;
        }
        let end = exit.min(to);
        if end > from {
            area += (end - entry.max(from)) as f64 / NANOS;
        }
        if entry >= from {
            entered += 1;
            if exit <= to {
                done += 1;
                sojourn += (exit - entry) as f64 / NANOS;
            }
        }
    }
    (area / span, entered as f64 / span, sojourn / done as f64)
}

/// The time average over the window of what a tenant (or all) held of a resource, from the
/// model's own series (`pick` selects worker, connection or backlog nanoseconds per bucket).
fn series_average(
    series: &Series,
    tenant: Option<usize>,
    (from, to): (u64, u64),
    pick: SeriesPick,
) -> f64 {
    let first = (from / series.bucket.as_nanos()) as usize;
    assert_eq!(
        first as u64 * series.bucket.as_nanos(),
        from,
        "the window starts on a bucket boundary"
    );
    let mut total = 0u64;
    for (c, class) in series.classes.iter().enumerate() {
        let t = class.tenant.expect("every tenant is tracked individually");
        if tenant.is_none_or(|x| x == t) {
            total += series.class_buckets(c)[first..]
                .iter()
                .map(pick)
                .sum::<u64>();
        }
    }
    total as f64 / NANOS / ((to - from) as f64 / NANOS)
}

#[test]
fn littles_law_holds_on_every_queue() {
    let mut checks = Checks::new("littles_law_holds_on_every_queue");
    // Durations of 120·k seconds give buckets of k seconds, so the warmup ends on a bucket.
    // A queue's books only balance when it is empty at both ends of the window: customers
    // present at the edges count in L but not in λ·W. That edge effect shrinks as 1/window;
    // it is largest for the job queues (sojourns of a few hundred ms).
    let duration = pick(600, 2_400);
    let tolerance = pick(0.01, 0.0025);
    let text = little_text(duration);
    let mut probe = LittleProbe::default();
    let (scenario, output) = run_traced(&text, 1, &mut probe);
    let window = (WARMUP_S * 1_000_000_000, duration * 1_000_000_000);
    let tenants = scenario.system.tenants.len();
    let cpu = 2_000_000; // constant CPU time before the query, ns
    let cells = ["cell-a", "cell-b"];
    let visits = |select: &dyn Fn(&Steps) -> Option<(u64, u64)>| -> Visits {
        let mut v = Visits::new();
        for (t, requests) in probe.requests.iter().enumerate() {
            for s in requests {
                if let Some((entry, exit)) = select(s) {
                    v.push((t, entry, exit));
                }
            }
        }
        v
    };
    let reached = |s: &Steps, step: u64| (s.admitted != NONE).then_some(step);
    // (queue, visits, L from the model's series if it keeps one)
    let mut queues: Vec<(String, Visits, Option<SeriesPick>)> = Vec::new();
    for (c, cell) in cells.iter().enumerate() {
        let c = c as u32;
        queues.push((
            format!("{cell} API queue (waiting for a worker)"),
            visits(&|s| (s.cell == c).then_some((s.admitted, s.service_start))),
            None,
        ));
        queues.push((
            format!("{cell} API workers (held per request)"),
            visits(&|s| {
                (s.cell == c && s.service_start != NONE)
                    .then_some((s.service_start, s.service_done))
            }),
            None,
        ));
    }
    queues.push((
        "database queue (waiting for a connection)".into(),
        visits(&|s| (s.service_start != NONE).then(|| (s.service_start + cpu, s.query_start))),
        None,
    ));
    queues.push((
        "database connections (held per query)".into(),
        visits(&|s| (s.query_start != NONE).then_some((s.query_start, s.service_done))),
        Some(|b| b.connection_ns),
    ));
    queues.push((
        "API workers, both cells (model series)".into(),
        visits(&|s| reached(s, s.service_start).map(|start| (start, s.service_done))),
        Some(|b| b.worker_ns),
    ));
    for (c, cell) in cells.iter().enumerate() {
        let jobs: Visits = probe
            .jobs
            .iter()
            .filter(|j| j.cell == c as u32)
            .map(|j| (j.tenant, j.start - j.waited, j.start))
            .collect();
        queues.push((
            format!("{cell} job queue (waiting for a job worker)"),
            jobs,
            None,
        ));
    }
    let all_jobs: Visits = probe
        .jobs
        .iter()
        .map(|j| (j.tenant, j.start - j.waited, j.start))
        .collect();
    queues.push((
        "job queues, both cells (model series)".into(),
        all_jobs,
        Some(|b| b.backlog_ns),
    ));
    queues.push((
        "requests in the system (issued to finished)".into(),
        visits(&|s| Some((s.issued, s.finished))),
        None,
    ));
    for (name, visits, series_pick) in &queues {
        let mut worst = 0.0f64;
        let mut worst_gap = 0.0f64;
        for tenant in std::iter::once(None).chain((0..tenants).map(Some)) {
            let (trace_l, lambda, w) = little(visits, tenant, window);
            let l = match series_pick {
                Some(pick) => {
                    // Two instruments of one occupancy: the model's series and the trace's
                    // steps. They differ only by work still unstarted at the end (the series
                    // counts it, the trace cannot see it).
                    let series_l = series_average(&output.series, tenant, window, *pick);
                    let gap = (series_l - trace_l) / trace_l;
                    worst_gap = worst_gap.max(gap.abs());
                    if gap.abs() > 1e-3 {
                        checks.failures.push(format!(
                            "{name}, tenant {tenant:?}: the series says L = {series_l}, the trace {trace_l}"
                        ));
                    }
                    series_l
                }
                None => trace_l,
            };
            let error = (l - lambda * w) / l;
            if tenant.is_some() {
                worst = worst.max(error.abs());
            } else {
                checks.relative(
                    &format!("Little's law: {name}, L vs λ·W (λ = {lambda:.1}/s)"),
                    "λ·W =",
                    Estimate::exact(l),
                    lambda * w,
                    tolerance,
                    (1.0, ""),
                );
            }
            if error.abs() > tolerance {
                checks.failures.push(format!(
                    "{name}, tenant {tenant:?}: L = {l} but λ·W = {lambda}·{w} = {}",
                    lambda * w
                ));
            }
        }
        checks.row(
            &format!("Little's law: {name}, each of the {tenants} tenants"),
            "λ·W",
            "",
            &format!(
                "worst {:.3} % (tolerance {} %)",
                worst * 100.0,
                tolerance * 100.0
            ),
        );
        if series_pick.is_some() {
            checks.row(
                &format!("{name}: L from the model's series vs L rebuilt from the trace"),
                "the same occupancy",
                "",
                &format!("worst gap {:.4} % (tolerance 0.1 %)", worst_gap * 100.0),
            );
        }
    }
    // The model's own books: metrics count and time every request that the trace saw.
    for t in 0..tenants {
        let (l, _, _) = little(&visits(&|s| Some((s.issued, s.finished))), Some(t), window);
        let stats = &output.metrics.tenants[t].windows[0].1;
        let span = (window.1 - window.0) as f64 / NANOS;
        let lambda = stats.counts.issued as f64 / span;
        let w = stats.latency.mean().expect("ok requests").as_nanos() as f64 / NANOS;
        checks.relative(
            &format!(
                "Little's law: tenant t{} in the system, λ and W from its metrics",
                t + 1
            ),
            "λ·W =",
            Estimate::exact(l),
            lambda * w,
            tolerance,
            (1.0, ""),
        );
    }
    checks.finish();
}

// ---------------------------------------------------------------------------------------------
// Token bucket (GCRA) at the edge.

/// When each attempt of each tenant passed the edge limiter (its `AttemptStart` not followed
/// by `Throttled`), in nanoseconds.
#[derive(Default)]
struct LimiterProbe {
    passed: Vec<Vec<u64>>,
    offered: Vec<u64>,
}

impl TraceSink for LimiterProbe {
    fn record(&mut self, r: &TraceRecord) {
        let t = r.tenant as usize;
        if self.passed.len() <= t {
            self.passed.resize(t + 1, Vec::new());
            self.offered.resize(t + 1, 0);
        }
        match r.kind {
            TraceKind::AttemptStart => {
                self.offered[t] += 1;
                self.passed[t].push(r.at.as_nanos());
            }
            TraceKind::Throttled { .. } => {
                // The denial follows its attempt at once, in the same handler.
                let last = self.passed[t].pop();
                assert_eq!(last, Some(r.at.as_nanos()));
            }
            _ => {}
        }
    }
}

/// The most events of `times` (sorted) in any closed window of length `width`.
fn max_in_window(times: &[u64], width: u64) -> u64 {
    let (mut best, mut first) = (0, 0);
    for (last, &t) in times.iter().enumerate() {
        while t - times[first] > width {
            first += 1;
        }
        best = best.max(last - first + 1);
    }
    best as u64
}

#[test]
fn token_bucket_obeys_its_window_bound_and_converges_to_the_tier_rate() {
    let mut checks =
        Checks::new("token_bucket_obeys_its_window_bound_and_converges_to_the_tier_rate");
    let duration: u64 = pick(200, 2_000);
    // (tenant, tier, tier rate, burst, offered rate)
    // (tenant, tier, tier rate, burst, offered rate, arrival process). The flood's constant
    // arrivals every 0.5 ms divide the 50 ms emission interval, so a request is waiting at the
    // very instant the bucket allows one: it attains the window bound exactly.
    let tenants = [
        ("gold-5x", "gold", 200.0, 50u64, 1_000.0, "poisson"),
        ("silver-2x", "silver", 20.0, 5, 40.0, "poisson"),
        ("silver-6-5ths", "silver", 20.0, 5, 24.0, "poisson"),
        ("silver-half", "silver", 20.0, 5, 10.0, "poisson"),
        ("silver-flood", "silver", 20.0, 5, 2_000.0, "constant"),
    ];
    let mut text = format!(
        r#"name = "fidelity-limiter"
[simulation]
duration = "{duration}s"
[breakers]
enabled = false
[[tiers]]
name = "gold"
rate = 200
burst = 50
[[tiers]]
name = "silver"
rate = 20
burst = 5
[[cells]]
name = "pool"
api = {{ workers = 64, admission = false, service_time = {{ dist = "constant", value = "1ms" }} }}
"#
    );
    for (name, tier, _, _, offered, process) in tenants {
        text.push_str(&format!(
            "[[tenants]]\nname = \"{name}\"\ntier = \"{tier}\"\ntimeout = \"none\"\narrival = {{ process = \"{process}\", rate = {offered} }}\n"
        ));
    }
    let replications = pick(4, 10);
    let runs = replicate(replications, |seed| {
        let mut probe = LimiterProbe::default();
        run_traced(&text, seed, &mut probe);
        probe
    });
    let end = duration * 1_000_000_000;
    for (t, (name, _, rate, burst, offered, process)) in tenants.into_iter().enumerate() {
        // The window bound, exactly: at most burst + floor(w·rate) admitted in any window of
        // length w, in every run.
        for width_ms in [1u64, 10, 100, 1_000, 10_000, 100_000] {
            let width = width_ms * 1_000_000;
            let bound = burst + (width as f64 * rate / NANOS).floor() as u64;
            let most = runs
                .iter()
                .map(|p| max_in_window(&p.passed[t], width))
                .max()
                .unwrap_or(0);
            let overloaded = offered > rate;
            // Overloaded tenants come close to the bound in long windows, and the flood attains
            // it: a limiter admitting one request too many, or too few, fails here.
            let (tight, note) = if process == "constant" && width_ms >= 10 {
                (most == bound, "exact bound, attained")
            } else if overloaded && width_ms >= 1_000 {
                (
                    most as f64 >= 0.95 * bound as f64,
                    "exact bound; ≥ 95 % of it reached",
                )
            } else {
                (true, "exact bound")
            };
            checks.holds(
                most <= bound && tight,
                &format!(
                    "GCRA {name} (rate {rate}/s, burst {burst}): most admitted in {width_ms} ms"
                ),
                &format!("≤ burst + ⌊w·rate⌋ = {bound}"),
                &most.to_string(),
                note,
            );
        }
        // The admitted rate: exactly the throughput of M/D/1/K with service 1/rate and room
        // for `burst` (see `analytic::MD1K`), which tends to the tier rate as overload grows.
        let queue = MD1K {
            lambda: offered,
            service: 1.0 / rate,
            capacity: burst as u32,
        };
        let admitted_rate = |horizon: u64| -> Vec<f64> {
            runs.iter()
                .map(|p| {
                    let admitted = p.passed[t].partition_point(|&x| x < horizon);
                    admitted as f64 / (horizon as f64 / NANOS)
                })
                .collect()
        };
        if offered < rate {
            // Under its quota the question is which share gets through; judged as a fraction,
            // so the Poisson noise of the offered count cancels.
            let fractions: Vec<f64> = runs
                .iter()
                .map(|p| p.passed[t].len() as f64 / p.offered[t] as f64)
                .collect();
            checks.relative(
                &format!("GCRA {name} (offered {offered}/s): admitted fraction over {duration} s"),
                "M/D/1/K 1 − blocking",
                Estimate::of(&fractions),
                1.0 - queue.blocking(),
                pick(0.02, 0.005),
                (100.0, "%"),
            );
            continue;
        }
        // Convergence, shown: over the first 1 % and 10 % of the run, then the whole run.
        for fraction in [0.01, 0.1] {
            let horizon = (end as f64 * fraction) as u64;
            let rates = Estimate::of(&admitted_rate(horizon));
            checks.row(
                &format!(
                    "GCRA {name}: admitted rate over the first {} s",
                    horizon / 1_000_000_000
                ),
                &format!("tier rate {rate}/s"),
                &if rates.half_width > 0.0 {
                    format!("{} ± {} /s", sig(rates.mean), sig(rates.half_width))
                } else {
                    format!("{} /s", sig(rates.mean))
                },
                &format!(
                    "{:+.2} % (shown, not judged)",
                    (rates.mean - rate) / rate * 100.0
                ),
            );
        }
        let whole = Estimate::of(&admitted_rate(end));
        if process == "poisson" {
            checks.relative(
                &format!("GCRA {name} (offered {offered}/s): admitted rate over {duration} s"),
                "M/D/1/K throughput",
                whole,
                queue.throughput(),
                pick(0.02, 0.005),
                (1.0, "/s"),
            );
        }
        if offered >= 2.0 * rate {
            // Under real overload the admitted rate is the tier rate itself.
            checks.relative(
                &format!("GCRA {name} (offered {offered}/s): admitted rate over {duration} s"),
                "tier rate",
                whole,
                rate,
                pick(0.02, 0.005),
                (1.0, "/s"),
            );
        }
    }
    checks.finish();
}

// ---------------------------------------------------------------------------------------------
// Deficit round robin in the model's job pools.

/// Three tenants with job weights 1, 2 and 4 queue far more jobs at time 0 than the run can
/// serve; a fourth submits a trickle (it comes and goes from the round robin). Job times are
/// uniform on [100, 300] ms; the model's DRR quantum is the mean job time.
fn drr_text(duration_s: u64, scheduler: &str) -> String {
    let mut text = format!(
        r#"name = "fidelity-drr"
[simulation]
duration = "{duration_s}s"
[edge]
rate_limiting = false
[breakers]
enabled = false
[[cells]]
name = "jobs"
api = {{ workers = 1, service_time = {{ dist = "constant", value = "1ms" }} }}
jobs = {{ workers = 4, scheduler = "{scheduler}", job_time = {{ dist = "uniform", min = "100ms", max = "300ms" }} }}
"#
    );
    for weight in [1, 2, 4] {
        text.push_str(&format!(
            "[[tiers]]\nname = \"w{weight}\"\nrate = 1000000\njob_weight = {weight}\n"
        ));
    }
    // The pool serves 20 jobs/s: a batch that size per second of run never drains.
    let batch = format!("{{ batch = {}, at = \"0s\" }}", duration_s * 20);
    for (name, tier, jobs) in [
        ("one", "w1", batch.as_str()),
        ("two", "w2", batch.as_str()),
        ("four", "w4", batch.as_str()),
        ("trickle", "w1", "{ rate = 2 }"),
    ] {
        text.push_str(&format!(
            "[[tenants]]\nname = \"{name}\"\ntier = \"{tier}\"\narrival = {{ rate = 0.01 }}\njobs = {jobs}\n"
        ));
    }
    text
}

/// Every job dispatch in order: (tenant, time, cost in the scheduler's unit, microseconds).
#[derive(Default)]
struct DispatchProbe {
    dispatches: Vec<(usize, u64, u64)>,
}

impl TraceSink for DispatchProbe {
    fn record(&mut self, r: &TraceRecord) {
        if let TraceKind::JobStarted { duration, .. } = r.kind {
            let cost = (duration.as_nanos() / 1_000).max(1);
            self.dispatches
                .push((r.tenant as usize, r.at.as_nanos(), cost));
        }
    }
}

/// For tenants `i`, `j` with weights `wi`, `wj`, over every interval of dispatches after time
/// 0 (when all batches are queued): the largest `|S_i/w_i − S_j/w_j|` (S = cost dispatched in
/// the interval) and the largest job cost of the two.
fn drr_spread(
    dispatches: &[(usize, u64, u64)],
    (i, wi): (usize, f64),
    (j, wj): (usize, f64),
) -> (f64, u64) {
    let (mut x, mut lo, mut hi, mut largest) = (0.0f64, 0.0f64, 0.0f64, 0);
    for &(t, at, cost) in dispatches {
        if at == 0 || (t != i && t != j) {
            continue;
        }
        largest = largest.max(cost);
        x += if t == i {
            cost as f64 / wi
        } else {
            -(cost as f64) / wj
        };
        lo = lo.min(x);
        hi = hi.max(x);
    }
    (hi - lo, largest)
}

#[test]
fn drr_shares_match_weights_within_the_shreedhar_varghese_bound() {
    let mut checks = Checks::new("drr_shares_match_weights_within_the_shreedhar_varghese_bound");
    let duration = pick(300, 3_000);
    let replications = pick(3, 10);
    let quantum = 200_000.0; // µs: the model's quantum is the mean job time
    let weights = [(0usize, 1.0), (1, 2.0), (2, 4.0)];
    let fair = drr_text(duration, "fair");
    let runs = replicate(replications, |seed| {
        let mut probe = DispatchProbe::default();
        run_traced(&fair, seed, &mut probe);
        probe
    });
    for (a, &(i, wi)) in weights.iter().enumerate() {
        for &(j, wj) in &weights[a + 1..] {
            let mut worst: f64 = 0.0;
            let mut worst_ratio: f64 = 0.0;
            for probe in &runs {
                let (spread, largest) = drr_spread(&probe.dispatches, (i, wi), (j, wj));
                let bound = quantum + largest as f64 / wi + largest as f64 / wj;
                worst = worst.max(spread);
                worst_ratio = worst_ratio.max(spread / bound);
            }
            let bound = quantum + 300_000.0 / wi + 300_000.0 / wj;
            checks.holds(
                worst_ratio < 1.0,
                &format!(
                    "DRR weights {wi}:{wj}: max over intervals of |S_i/w_i − S_j/w_j| ({replications} runs)"
                ),
                &format!("< q + M/w_i + M/w_j = {} ms (Shreedhar–Varghese)", sig(bound / 1e3)),
                &format!("{} ms", sig(worst / 1e3)),
                &format!("{:.0} % of the bound", worst_ratio * 100.0),
            );
        }
    }
    // Long-run shares of the backlogged tenants: w / Σw.
    let total_weight: f64 = weights.iter().map(|w| w.1).sum();
    for &(i, wi) in &weights {
        let shares: Vec<f64> = runs
            .iter()
            .map(|p| {
                let served = |t: usize| -> u64 {
                    p.dispatches
                        .iter()
                        .filter(|d| d.0 == t && d.1 > 0)
                        .map(|d| d.2)
                        .sum()
                };
                served(i) as f64 / weights.iter().map(|w| served(w.0)).sum::<u64>() as f64
            })
            .collect();
        checks.relative(
            &format!("DRR share of the weight-{wi} tenant (of the backlogged tenants' service)"),
            "w/Σw",
            Estimate::of(&shares),
            wi / total_weight,
            pick(0.02, 0.005),
            (100.0, "%"),
        );
    }
    // The failing twin: one FIFO queue ignores weights, and the same measure sees it.
    let mut probe = DispatchProbe::default();
    run_traced(&drr_text(duration, "fifo"), 1, &mut probe);
    let (spread, largest) = drr_spread(&probe.dispatches, (0, 1.0), (2, 4.0));
    let bound = quantum + largest as f64 + largest as f64 / 4.0;
    checks.holds(
        spread > 10.0 * bound,
        "FIFO twin, weights 1:4: max |S_i/w_i − S_j/w_j|",
        &format!(
            "> 10 × the DRR bound ({} ms): the measure detects unfairness",
            sig(bound / 1e3)
        ),
        &format!("{} ms", sig(spread / 1e3)),
        &format!("{:.0} × the bound", spread / bound),
    );
    checks.finish();
}

// ---------------------------------------------------------------------------------------------
// Retries: Brooker, "Exponential Backoff And Jitter" (AWS Architecture Blog, 2015).

/// About 100 clients arrive within one millisecond at a pool of 4 workers (10 ms per call) with
/// no queue: a call that finds every worker busy is refused at once with a 503 and a
/// `Retry-After` of 10 ms, like a conflicting write under optimistic concurrency. Every client
/// retries until it succeeds (up to 100 attempts, base 50 ms, cap 1 s).
fn contention_text(backoff: &str) -> String {
    format!(
        r#"name = "fidelity-retries"
[simulation]
duration = "120s"
[edge]
rate_limiting = false
[breakers]
enabled = false
[[tiers]]
name = "open"
rate = 1000000000
[[cells]]
name = "pool"
api = {{ workers = 4, queue = 0, service_time = {{ dist = "constant", value = "10ms" }} }}
[[tenants]]
name = "clients"
tier = "open"
timeout = "10s"
arrival = {{ rate = 0.001 }}
retry = {{ max_attempts = 100, backoff = "{backoff}", base = "50ms", cap = "1s" }}
[[faults]]
name = "stampede"
kind = "load_spike"
tenant = "clients"
multiplier = 100000000
at = "1s"
duration = "1ms"
"#
    )
}

/// A sink that keeps nothing (the metrics are enough).
struct Discard;

impl TraceSink for Discard {
    fn record(&mut self, _: &TraceRecord) {}
}

#[test]
fn jitter_completes_the_same_work_with_fewer_calls() {
    let mut checks = Checks::new("jitter_completes_the_same_work_with_fewer_calls");
    let replications = pick(20, 200);
    let policies = [
        ("none", "no backoff (retry at the 503's hint)"),
        ("exponential", "exponential backoff, no jitter"),
        ("exponential_full_jitter", "full jitter"),
        ("decorrelated_jitter", "decorrelated jitter"),
    ];
    // Per seed and policy: (requests, calls, ok, mean latency in seconds).
    let runs: Vec<Vec<(u64, u64, u64, f64)>> = replicate(replications, |seed| {
        policies
            .iter()
            .map(|(backoff, _)| {
                let (_, output) = run_traced(&contention_text(backoff), seed, &mut Discard);
                let stats = &output.metrics.tenants[0].windows[0].1;
                let c = &stats.counts;
                let latency = stats
                    .latency
                    .mean()
                    .map_or(f64::NAN, |d| d.as_nanos() as f64 / NANOS);
                (c.issued, c.attempts, c.ok, latency)
            })
            .collect()
    });
    let same_work = runs.iter().all(|per_policy| {
        per_policy
            .iter()
            .all(|r| r.0 == per_policy[0].0 && r.2 == r.0 && r.0 > 50)
    });
    let requests: u64 = runs.iter().map(|r| r[0].0).sum();
    checks.holds(
        same_work,
        "every policy, every seed: the same requests, all of them ok",
        "the same work completed",
        &format!("{requests} requests over {replications} seeds"),
        "exact",
    );
    for (p, (_, label)) in policies.iter().enumerate() {
        let calls = Estimate::of(
            &runs
                .iter()
                .map(|r| r[p].1 as f64 / r[p].0 as f64)
                .collect::<Vec<_>>(),
        );
        let latency = Estimate::of(&runs.iter().map(|r| r[p].3).collect::<Vec<_>>());
        checks.row(
            &format!("retries under contention: {label}"),
            "Brooker 2015: jitter needs fewer calls",
            &format!(
                "{} ± {} calls per request; mean completion {} ± {} ms",
                sig(calls.mean),
                sig(calls.half_width),
                sig(latency.mean * 1e3),
                sig(latency.half_width * 1e3)
            ),
            "",
        );
    }
    // Paired by seed (common random numbers: the same clients arrive at the same instants), the
    // ratio of calls: clearly fewer means the whole 95 % interval below 0.7.
    for jittered in [2, 3] {
        for plain in [0, 1] {
            let ratios: Vec<f64> = runs
                .iter()
                .map(|r| r[jittered].1 as f64 / r[plain].1 as f64)
                .collect();
            let ratio = Estimate::of(&ratios);
            checks.holds(
                ratio.mean + ratio.half_width < 0.7,
                &format!(
                    "calls with {} / calls with {}",
                    policies[jittered].1, policies[plain].1
                ),
                "clearly fewer: 95 % interval below 0.7",
                &format!("{} ± {}", sig(ratio.mean), sig(ratio.half_width)),
                "",
            );
        }
    }
    checks.finish();
}

// ---------------------------------------------------------------------------------------------
// Shuffle sharding: the blast radius of failed cells, measured with placement and failover.

const CELLS: usize = 8;

/// `tenants` tenants placed by the control plane on 8 cells, each tenant confined to a shuffle
/// shard of `shard_size` cells; the `failed` cells go down at 5 s for 20 s and the control
/// plane evacuates their tenants after 1 s, within each tenant's shard.
fn shard_text(tenants: usize, shard_size: usize, failed: &[usize]) -> String {
    let mut text = format!(
        r#"name = "fidelity-shards"
[simulation]
duration = "30s"
[edge]
rate_limiting = false
[breakers]
enabled = false
[placement]
shard_size = {shard_size}
[failover]
detection = "1s"
[[tiers]]
name = "open"
rate = 1000000000
[[tenants]]
name = "tenant"
count = {tenants}
tier = "open"
timeout = "1s"
arrival = {{ rate = 2 }}
"#
    );
    for c in 0..CELLS {
        text.push_str(&format!(
            "[[cells]]\nname = \"cell-{c}\"\napi = {{ workers = 16, service_time = {{ dist = \"exponential\", mean = \"1ms\" }} }}\n"
        ));
    }
    for &c in failed {
        text.push_str(&format!(
            "[[faults]]\nname = \"down-{c}\"\nkind = \"cell_outage\"\ncell = \"cell-{c}\"\nat = \"5s\"\nduration = \"20s\"\n"
        ));
    }
    text
}

/// Per tenant: requests issued while the cells are down but after the evacuation (7 s to
/// 24 s), those of them that ended ok, and the requests issued during the outage (5 s to
/// 25 s) that did not.
#[derive(Default)]
struct OutageProbe {
    issued: Vec<Vec<u64>>,
    ok_after_failover: Vec<u64>,
    asked_after_failover: Vec<u64>,
    failed_during_outage: Vec<u64>,
}

impl TraceSink for OutageProbe {
    fn record(&mut self, r: &TraceRecord) {
        let t = r.tenant as usize;
        if self.issued.len() <= t {
            self.issued.resize(t + 1, Vec::new());
            for v in [
                &mut self.ok_after_failover,
                &mut self.asked_after_failover,
                &mut self.failed_during_outage,
            ] {
                v.resize(t + 1, 0);
            }
        }
        let secs = |s: u64| s * 1_000_000_000;
        match r.kind {
            TraceKind::Issued => self.issued[t].push(r.at.as_nanos()),
            TraceKind::Finished { outcome } => {
                let issued = self.issued[t][r.request as usize];
                if (secs(7)..secs(24)).contains(&issued) {
                    self.asked_after_failover[t] += 1;
                    self.ok_after_failover[t] += u64::from(outcome == Outcome::Ok);
                }
                if (secs(5)..secs(25)).contains(&issued) && outcome != Outcome::Ok {
                    self.failed_during_outage[t] += 1;
                }
            }
            _ => {}
        }
    }
}

/// [`Checks::holds`], with a row only if not `quiet`.
fn judge(
    checks: &mut Checks,
    quiet: bool,
    ok: bool,
    model: &str,
    reference: &str,
    value: &str,
    error: &str,
) {
    if quiet {
        if !ok {
            checks
                .failures
                .push(format!("{model}: {value} violates {reference} ({error})"));
        }
    } else {
        checks.holds(ok, model, reference, value, error);
    }
}

/// C(n, k).
fn choose(n: usize, k: usize) -> f64 {
    if k > n {
        return 0.0;
    }
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

#[test]
fn shuffle_sharding_blast_radius_matches_the_combinatorics() {
    let mut checks = Checks::new("shuffle_sharding_blast_radius_matches_the_combinatorics");
    let tenants = pick(1_120, 5_600);
    // (shard size, failed cells): every pair of cells in the long variant.
    let mut cases: Vec<(usize, Vec<usize>)> = vec![(2, vec![3]), (1, vec![3]), (2, vec![2, 5])];
    if slow() {
        for a in 0..CELLS {
            for b in a + 1..CELLS {
                if (a, b) != (2, 5) {
                    cases.push((2, vec![a, b]));
                }
            }
        }
    }
    let results = replicate(cases.len() as u64, |i| {
        let (k, failed) = &cases[i as usize - 1];
        let text = shard_text(tenants, *k, failed);
        let mut probe = OutageProbe::default();
        let (scenario, _) = run_traced(&text, 1, &mut probe);
        (scenario, probe)
    });
    let mut pair_fractions = Vec::new();
    for (case, ((k, failed), (scenario, probe))) in cases.iter().zip(&results).enumerate() {
        // The first three cases get rows; the other 27 pairs of the long variant are judged
        // alike and summarised below.
        let quiet = case >= 3;
        let system = &scenario.system;
        let n = system.tenants.len();
        // What the combinatorics predict for each tenant: down for good if its whole shard
        // failed; hit (at least one failure, until failover and its edge's cache catch up) if
        // placement had put it in a failed cell.
        let mut predicted_down = Vec::new();
        let mut predicted_hit = Vec::new();
        for (t, tenant) in system.tenants.iter().enumerate() {
            let key = placing::demand(t, tenant, true).key;
            let shard = shuffle_shard(key, CELLS, *k);
            assert!(shard.contains(&tenant.cell), "placement stays in the shard");
            if shard.iter().all(|c| failed.contains(c)) {
                predicted_down.push(t);
            }
            if failed.contains(&tenant.cell) {
                predicted_hit.push(t);
            }
        }
        let down: Vec<usize> = (0..n)
            .filter(|&t| probe.asked_after_failover[t] > 0 && probe.ok_after_failover[t] == 0)
            .collect();
        let hit: Vec<usize> = (0..n)
            .filter(|&t| probe.failed_during_outage[t] > 0)
            .collect();
        let degraded = (0..n)
            .filter(|&t| {
                probe.ok_after_failover[t] > 0
                    && probe.ok_after_failover[t] < probe.asked_after_failover[t].saturating_sub(1)
            })
            .count();
        let what = format!(
            "{} failed of {CELLS}, shards of {k}",
            if failed.len() == 1 {
                "1 cell"
            } else {
                "2 cells"
            }
        );
        let reference = choose(failed.len(), *k) / choose(CELLS, *k);
        let fraction = down.len() as f64 / n as f64;
        // The fraction of tenants whose shard is a given set is binomial(n, reference): the
        // 99.9 % band around it (normal approximation, 3.29 σ).
        let band = 3.29 * (reference * (1.0 - reference) / n as f64).sqrt();
        judge(
            &mut checks,
            quiet,
            down == predicted_down && degraded == 0,
            &format!(
                "shuffle sharding, {what}: tenants down after failover (simulated, {n} tenants)"
            ),
            "exactly those whose whole shard failed",
            &format!("{} tenants", down.len()),
            &format!(
                "{} predicted from the shards; {degraded} others lost more than one request",
                predicted_down.len()
            ),
        );
        if reference > 0.0 {
            judge(
                &mut checks,
                quiet,
                (fraction - reference).abs() <= band,
                &format!("shuffle sharding, {what}: fraction of tenants down"),
                &format!(
                    "C({},{k})/C({CELLS},{k}) = {}",
                    failed.len(),
                    sig(reference)
                ),
                &sig(fraction),
                &format!(
                    "{:+.1} % (binomial 99.9 % band ± {})",
                    (fraction - reference) / reference * 100.0,
                    sig(band)
                ),
            );
        } else {
            judge(
                &mut checks,
                quiet,
                down.is_empty(),
                &format!("shuffle sharding, {what}: fraction of tenants down"),
                &format!("C({},{k})/C({CELLS},{k}) = 0", failed.len()),
                &sig(fraction),
                "exact",
            );
        }
        judge(
            &mut checks,
            quiet,
            hit == predicted_hit,
            &format!("shuffle sharding, {what}: tenants with failed requests during the outage"),
            "exactly those placed in a failed cell",
            &format!(
                "{} tenants ({})",
                hit.len(),
                sig(hit.len() as f64 / n as f64)
            ),
            &format!(
                "{} placed there; the cells' share is {}",
                predicted_hit.len(),
                sig(failed.len() as f64 / CELLS as f64)
            ),
        );
        if *k == 2 && failed.len() == 2 {
            pair_fractions.push(fraction);
        }
    }
    if slow() {
        // Every tenant has exactly one shard, so over all 28 pairs the fractions add up to 1;
        // each pair's own fraction is binomial around 1/28.
        let (lo, hi) = pair_fractions
            .iter()
            .fold((1.0f64, 0.0f64), |(lo, hi), &f| (lo.min(f), hi.max(f)));
        let mean = pair_fractions.iter().sum::<f64>() / pair_fractions.len() as f64;
        checks.holds(
            pair_fractions.len() == 28 && (mean - 1.0 / 28.0).abs() < 1e-12,
            "shuffle sharding, each of the 28 shards failed in turn (simulated): tenants down",
            "exactly the shard's tenants each time; mean 1/28 = 0.03571",
            &format!("mean {}, range {} – {}", sig(mean), sig(lo), sig(hi)),
            "exact",
        );
    }
    // The combinatorics of the shards themselves: every one of the C(8,2) = 28 pairs equally
    // likely (Pearson's χ² with 27 degrees of freedom, 99.9 % critical value 55.48).
    let (scenario, _) = &results[0];
    let mut counts = [[0u64; CELLS]; CELLS];
    for (t, tenant) in scenario.system.tenants.iter().enumerate() {
        let shard = shuffle_shard(placing::demand(t, tenant, true).key, CELLS, 2);
        counts[shard[0]][shard[1]] += 1;
    }
    let expected = tenants as f64 / 28.0;
    let chi2: f64 = (0..CELLS)
        .flat_map(|a| (a + 1..CELLS).map(move |b| (a, b)))
        .map(|(a, b)| (counts[a][b] as f64 - expected).powi(2) / expected)
        .sum();
    checks.holds(
        chi2 < 55.48,
        &format!("shuffle shards of 2 of 8 cells over {tenants} tenants: χ² against uniform pairs"),
        "< 55.48 (27 degrees of freedom, 99.9 %)",
        &sig(chi2),
        "",
    );
    checks.finish();
}

// ---------------------------------------------------------------------------------------------
// The multi-tenant LRU cache against Che's approximation (issue 24). The model has no cache
// yet, so this drives the component itself (`components::cache::TenantCache`) with requests
// drawn from seeded streams, as the model will.

/// One tenant's requests to the cache: keys drawn from a Zipf law over `keys` keys (the
/// independent reference model), or a scan of keys never requested twice.
#[derive(Clone, Copy, Debug)]
enum CacheLoad {
    Zipf { keys: usize, alpha: f64 },
    Scan,
}

/// Hits and requests per tenant and per band of popularity ranks ([`RANK_BANDS`]).
#[derive(Clone, Debug, Default)]
struct CacheCounts {
    hits: Vec<[u64; RANK_BANDS.len()]>,
    requests: Vec<[u64; RANK_BANDS.len()]>,
}

impl CacheCounts {
    fn hit_ratio(&self, tenant: usize, bands: std::ops::Range<usize>) -> f64 {
        let hits: u64 = self.hits[tenant][bands.clone()].iter().sum();
        let requests: u64 = self.requests[tenant][bands].iter().sum();
        hits as f64 / requests as f64
    }
}

/// Popularity ranks are grouped by decade: 1–10, 11–100, 101–1,000, 1,001–10,000,
/// 10,001–100,000 (a scan's requests all count in the first).
const RANK_BANDS: [(usize, usize); 5] = [
    (1, 10),
    (11, 100),
    (101, 1_000),
    (1_001, 10_000),
    (10_001, 100_000),
];

fn band_of(rank: usize) -> usize {
    RANK_BANDS
        .iter()
        .position(|&(_, hi)| rank <= hi)
        .expect("rank within the bands")
}

/// Runs `warmup + measured` requests through a cache: each request picks a tenant by `shares`
/// and a key by the tenant's load, looks it up, and inserts it on a miss. Counts the measured
/// requests. Every draw comes from one seeded counter stream.
fn run_cache(
    config: tenantsim::components::cache::CacheConfig,
    loads: &[(f64, CacheLoad)],
    warmup: u64,
    measured: u64,
    seed: u64,
) -> CacheCounts {
    use tenantsim::components::cache::{Lookup, TenantCache};
    use tenantsim::components::draw::unit_open;
    use tenantsim::kernel::rng::Streams;
    use tenantsim::time::SimTime;

    let mut cache = TenantCache::<u32, u64, ()>::new(config).expect("valid cache");
    let mut stream = Streams::new(seed).counter_stream("cache-keys", 0);
    let total: f64 = loads.iter().map(|l| l.0).sum();
    let mut share_cdf = Vec::new();
    let mut acc = 0.0;
    for (share, _) in loads {
        acc += share / total;
        share_cdf.push(acc);
    }
    let key_cdfs: Vec<Vec<f64>> = loads
        .iter()
        .map(|(_, load)| match *load {
            CacheLoad::Zipf { keys, alpha } => tenantsim::analytic::zipf_popularity(keys, alpha)
                .iter()
                .scan(0.0, |acc, p| {
                    *acc += p;
                    Some(*acc)
                })
                .collect(),
            CacheLoad::Scan => Vec::new(),
        })
        .collect();
    let mut counts = CacheCounts {
        hits: vec![[0; RANK_BANDS.len()]; loads.len()],
        requests: vec![[0; RANK_BANDS.len()]; loads.len()],
    };
    let mut scanned = 0u64;
    let now = SimTime::ZERO;
    for request in 0..warmup + measured {
        let u = unit_open(stream.next_u64());
        let tenant = share_cdf.partition_point(|&c| c < u).min(loads.len() - 1);
        let (key, rank) = match loads[tenant].1 {
            CacheLoad::Zipf { .. } => {
                let cdf = &key_cdfs[tenant];
                let u = unit_open(stream.next_u64());
                let index = cdf.partition_point(|&c| c < u).min(cdf.len() - 1);
                (index as u64, index + 1)
            }
            CacheLoad::Scan => {
                scanned += 1;
                (u64::MAX - scanned, 1)
            }
        };
        let t = tenant as u32;
        let hit = match cache.get(now, &t, &key) {
            Lookup::Hit { owner, .. } => {
                assert_eq!(*owner, t, "a lookup returned another tenant's entry");
                true
            }
            Lookup::Miss | Lookup::Expired => {
                cache.insert(now, &t, key, ());
                false
            }
        };
        if request >= warmup {
            let band = band_of(rank);
            counts.requests[tenant][band] += 1;
            counts.hits[tenant][band] += u64::from(hit);
        }
    }
    counts
}

/// Checks one hit ratio, estimated over replications, against its reference.
fn check_hit_ratio(
    checks: &mut Checks,
    what: &str,
    reference: (&str, f64),
    measured: impl Iterator<Item = f64>,
    tolerance: f64,
) {
    let measured = Estimate::of(&measured.collect::<Vec<_>>());
    checks.relative(
        what,
        reference.0,
        measured,
        reference.1,
        tolerance,
        (1.0, ""),
    );
}

#[test]
fn lru_cache_hit_ratios_match_ches_approximation() {
    use tenantsim::analytic::{CheLru, zipf_popularity};
    use tenantsim::components::cache::{CacheConfig, Isolation};

    let mut checks = Checks::new("lru_cache_hit_ratios_match_ches_approximation");
    let replications = pick(6, 10);
    let measured = pick(400_000, 4_000_000);
    // Relative tolerances for the whole hit ratio and for a band of ranks (a band of rarely
    // requested keys has a small hit ratio, so a wide relative sampling error).
    let whole = pick(0.025, 0.01);
    let band = pick(0.08, 0.03);
    // (keys, capacity, alpha).
    let mut points = vec![
        (10_000, 100, 0.8),
        (10_000, 1_000, 0.8),
        (10_000, 1_000, 1.2),
    ];
    if slow() {
        points.extend([
            (100_000, 1_000, 0.6),
            (100_000, 10_000, 0.9),
            (1_000, 10, 0.8),
        ]);
    }
    for (keys, capacity, alpha) in points {
        let config = CacheConfig {
            capacity,
            ttl: None,
            isolation: Isolation::Shared,
        };
        // Warm up with two requests per key (ten in the long variant): past the fill (the LRU
        // state is the last `capacity` distinct keys requested) and many characteristic times.
        let warmup = pick(2, 10) * keys as u64;
        let load = [(1.0, CacheLoad::Zipf { keys, alpha })];
        let runs = replicate(replications, |seed| {
            run_cache(config, &load, warmup, measured, seed)
        });
        let popularity = zipf_popularity(keys, alpha);
        let che = CheLru::new(&popularity, f64::from(capacity));
        let what = format!("LRU, {keys} keys, capacity {capacity}, Zipf α = {alpha}");
        check_hit_ratio(
            &mut checks,
            &format!("{what}: hit ratio"),
            ("Che", che.hit_ratio(&popularity)),
            runs.iter().map(|r| r.hit_ratio(0, 0..RANK_BANDS.len())),
            whole,
        );
        for (b, &(lo, hi)) in RANK_BANDS.iter().enumerate() {
            if lo > keys {
                break;
            }
            let hi = hi.min(keys);
            check_hit_ratio(
                &mut checks,
                &format!("{what}: hit ratio of ranks {lo}–{hi}"),
                ("Che", che.hit_ratio(&popularity[lo - 1..hi])),
                runs.iter().map(|r| r.hit_ratio(0, b..b + 1)),
                band,
            );
        }
    }
    checks.finish();
}

#[test]
fn cache_quotas_keep_each_tenants_hit_ratio_whatever_the_others_scan() {
    use tenantsim::analytic::{CheLru, zipf_popularity};
    use tenantsim::components::cache::{CacheConfig, Isolation};

    let mut checks =
        Checks::new("cache_quotas_keep_each_tenants_hit_ratio_whatever_the_others_scan");
    let replications = pick(6, 10);
    // Requests of tenant A measured per replication (B's come on top).
    let measured_a = pick(100_000, 2_000_000);
    let tolerance = pick(0.03, 0.01);
    let (keys, alpha, capacity, quota) = (10_000, 0.8, 1_000, 500);
    let popularity = zipf_popularity(keys, alpha);
    let alone = CheLru::new(&popularity, f64::from(quota)).hit_ratio(&popularity);
    let quotas = ("quota 500 each", Isolation::Quota { max_entries: quota });
    let slices = ("slices of 500", Isolation::Partitioned { slice: quota });
    let shared = ("shared, no quota", Isolation::Shared);
    // B scans keys it never requests again, at this share of all requests. (With quotas that
    // add up to the capacity, slices take the same decisions as quotas: long variant only.)
    let cases = if slow() {
        let all = [quotas, slices, shared];
        [0.0, 0.5, 0.9]
            .into_iter()
            .flat_map(|scan| all.map(|isolation| (scan, isolation)))
            .collect()
    } else {
        vec![(0.0, quotas), (0.75, quotas), (0.75, shared)]
    };
    {
        for (scan, (name, isolation)) in cases {
            let config = CacheConfig {
                capacity,
                ttl: None,
                isolation,
            };
            let loads = [
                (1.0 - scan, CacheLoad::Zipf { keys, alpha }),
                (scan, CacheLoad::Scan),
            ];
            let total = ((measured_a as f64) / (1.0 - scan)) as u64;
            let warmup = ((pick(2, 10) * keys) as f64 / (1.0 - scan)) as u64;
            let runs = replicate(replications, |seed| {
                run_cache(config, &loads, warmup, total, seed)
            });
            // Isolated, A has a private LRU of its quota whatever B does; shared, B's scan
            // takes `scan · T` places (Che with a scan).
            let (reference_name, reference) = if isolation == Isolation::Shared {
                let rates: Vec<f64> = popularity.iter().map(|p| p * (1.0 - scan)).collect();
                let che = CheLru::with_scan(&rates, f64::from(capacity), scan);
                (
                    format!("Che with a scan, C = {capacity}"),
                    che.hit_ratio(&rates),
                )
            } else {
                (format!("Che, C = {quota}"), alone)
            };
            check_hit_ratio(
                &mut checks,
                &format!(
                    "two tenants, capacity {capacity}, {name}: A's hit ratio (Zipf α = {alpha}, \
                     {keys} keys) while B scans {} % of requests",
                    scan * 100.0
                ),
                (&reference_name, reference),
                runs.iter().map(|r| r.hit_ratio(0, 0..RANK_BANDS.len())),
                tolerance,
            );
        }
    }
    checks.finish();
}
