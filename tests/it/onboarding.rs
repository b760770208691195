//! Issue 26's model-level tests: sign-ups, onboarding and offboarding workflows over provider
//! dependencies, access gating, deletion and its ledger, the lifecycle invariants (each can
//! fail), onboarding time against the M/M/c closed form, the onboarding SLO metrics, the new
//! limits, and that a scenario without workflows reports none of it.
//!
//! `cargo test --test it onboarding -- --nocapture` prints the measured figures.

use tenantsim::analytic::MMc;
use tenantsim::model::RunOptions;
use tenantsim::model::invariants::Sabotage;
use tenantsim::model::lifecycle::{DeletionOutcome, LifecycleOutput, OnboardingOutcome, Store};
use tenantsim::pipeline::{Executed, execute_with};
use tenantsim::scenario::expect::parse_expectation;
use tenantsim::scenario::{LoadOptions, Metric, load};
use tenantsim::slo::Status;
use tenantsim::time::{SimDuration, SimTime};

fn run_with(text: &str, overrides: &[&str], options: RunOptions<'_>) -> Executed {
    let load = LoadOptions {
        path: "test.toml".into(),
        overrides: overrides.iter().map(|s| s.to_string()).collect(),
        seed: None,
        files: None,
    };
    execute_with(text, &load, options)
        .unwrap_or_else(|e| panic!("scenario with {overrides:?} runs: {e}"))
}

fn run(text: &str, overrides: &[&str]) -> Executed {
    run_with(text, overrides, RunOptions::default())
}

fn library(name: &str) -> String {
    let path = format!("{}/scenarios/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn lifecycle(run: &Executed) -> &LifecycleOutput {
    run.output
        .lifecycle
        .as_ref()
        .expect("a scenario with workflows reports its lifecycle")
}

fn invariant(run: &Executed, name: &str) -> (bool, String) {
    let i = run
        .evaluation
        .invariants
        .iter()
        .find(|i| i.name == name)
        .unwrap_or_else(|| panic!("no invariant {name}"));
    (i.passed, i.detail.clone())
}

/// Asserts that the invariant held and was actually exercised.
fn held(run: &Executed, name: &str) {
    let (passed, detail) = invariant(run, name);
    assert!(passed, "{name} failed: {detail}");
    assert!(
        !detail.starts_with("not exercised"),
        "{name} was never checked: {detail}"
    );
}

fn broken(run: &Executed, name: &str) -> String {
    let (passed, detail) = invariant(run, name);
    assert!(!passed, "{name} should fail: {detail}");
    assert_eq!(run.evaluation.verdict, Status::Failed);
    detail
}

fn group(run: &Executed, name: &str) -> Vec<usize> {
    let g = run
        .scenario
        .system
        .groups
        .iter()
        .find(|g| g.name == name)
        .unwrap_or_else(|| panic!("no tenant group {name}"));
    g.tenants.clone().collect()
}

fn issued(run: &Executed, tenant: usize) -> u64 {
    run.output.metrics.tenants[tenant].total.issued
}

/// Forty sign-ups in 20 s through two steps; the DNS provider allows 2 calls/s per account
/// (less than the sign-up rate), so some calls get a 429. A short bound (1 minute).
const SMALL: &str = r#"
name = "small"
[simulation]
duration = "4m"
[[tiers]]
name = "standard"
rate = 100
[[cells]]
name = "cell-a"
db = "main"
api = { workers = 8, service_time = { dist = "constant", value = "2ms" } }
[[databases]]
name = "main"
connections = 8
query_time = { dist = "constant", value = "1ms" }
[[dependencies]]
name = "dns"
kind = "provider"
concurrency = 8
rate_limit = 2
latency = { dist = "constant", value = "100ms" }
[[dependencies]]
name = "billing"
kind = "provider"
concurrency = 8
latency = { dist = "constant", value = "50ms" }
[[workflows]]
name = "onboarding"
kind = "onboarding"
bound = "1m"
timeout = "5s"
retry = { max_attempts = 10, backoff = "exponential_full_jitter", base = "200ms", cap = "5s" }
steps = [
  { name = "dns", dependency = "dns", ready_after = { dist = "constant", value = "5s" } },
  { name = "billing", dependency = "billing" },
]
[[tenants]]
name = "existing"
tier = "standard"
arrival = { rate = 10 }
db_queries = 1
[[tenants]]
name = "new"
count = 40
tier = "standard"
arrival = { rate = 5 }
db_queries = 1
signup = { workflow = "onboarding", at = "5s", rate = 2 }
"#;

// ---------------------------------------------------------------------------------------------
// Every lifecycle invariant can fail
// ---------------------------------------------------------------------------------------------

/// The five lifecycle invariants: each held (and was exercised) in a run where it should, and
/// each broken by the twin or the sabotage that breaks its mechanism.
#[test]
fn every_lifecycle_invariant_can_fail() {
    let rollback = library("onboarding-rollback.toml");
    let access = library("access-before-ready.toml");
    let deletion = library("tenant-deletion.toml");
    let names: Vec<&str> = run(SMALL, &[])
        .evaluation
        .invariants
        .iter()
        .map(|i| i.name)
        .skip(6) // the always-on ones, tested in control_plane
        .collect();
    let mut covered = Vec::new();
    for name in names {
        match name {
            "no_access_before_ready" => {
                held(&run(&access, &[]), name);
                let twin = run(
                    &access,
                    &["workflows.onboarding.steps.certificate.gates_access=false"],
                );
                let detail = broken(&twin, name);
                assert!(
                    detail.contains("newcomer-") && detail.contains("certificate"),
                    "the violation names the tenant and the resource: {detail}"
                );
                println!("access on DNS alone: {detail}");
            }
            "no_orphaned_resources" => {
                held(&run(&rollback, &[]), name);
                let twin = run(&rollback, &["workflows.onboarding.compensation=false"]);
                println!("compensation off: {}", broken(&twin, name));
            }
            "no_duplicate_side_effects" => {
                held(&run(&rollback, &[]), name);
                let sabotaged = run_with(
                    &rollback,
                    &[],
                    RunOptions {
                        sabotage: Some(Sabotage::FreshKeyPerAttempt),
                        ..RunOptions::default()
                    },
                );
                println!("a fresh key per attempt: {}", broken(&sabotaged, name));
            }
            "workflows_within_bound" => {
                held(&run(SMALL, &[]), name);
                let sabotaged = run_with(
                    SMALL,
                    &[],
                    RunOptions {
                        sabotage: Some(Sabotage::LostWakeUps),
                        ..RunOptions::default()
                    },
                );
                println!(
                    "a runner that loses its timers: {}",
                    broken(&sabotaged, name)
                );
            }
            "deletion_complete_at_bound" => {
                held(&run(&deletion, &[]), name);
                let twin = run(&deletion, &["backups.retention=none"]);
                let detail = broken(&twin, name);
                assert!(detail.contains("backups"), "{detail}");
                println!("backups kept for ever: {detail}");
            }
            other => panic!("invariant {other} has no test proving it can fail"),
        }
        covered.push(name);
    }
    assert_eq!(covered.len(), 5, "{covered:?}");
}

/// A scenario without workflows has no lifecycle: no lifecycle invariants, no onboarding
/// section, nothing in the run output.
#[test]
fn a_scenario_without_workflows_reports_no_lifecycle() {
    let hot = run(&library("hot-tenant.toml"), &[]);
    assert!(hot.output.lifecycle.is_none());
    assert!(hot.report.onboarding.is_none());
    assert_eq!(hot.evaluation.invariants.len(), 6);
    let json = tenantsim::report::to_json(&hot.report);
    assert!(
        !json.contains("onboarding"),
        "report.json mentions onboarding"
    );
    let small = run(SMALL, &[]);
    assert_eq!(small.evaluation.invariants.len(), 11);
    assert!(tenantsim::report::to_json(&small.report).contains("\"onboarding\""));
}

// ---------------------------------------------------------------------------------------------
// Sign-ups, access, the provider's rate limit
// ---------------------------------------------------------------------------------------------

#[test]
fn signed_up_tenants_send_nothing_before_access_and_then_send_traffic() {
    let small = run(SMALL, &[]);
    let l = lifecycle(&small);
    assert_eq!(l.onboardings.len(), 40);
    assert!(
        l.onboardings
            .iter()
            .all(|o| o.outcome == OnboardingOutcome::Completed),
        "{:?}",
        l.onboardings.iter().map(|o| o.outcome).collect::<Vec<_>>()
    );
    held(&small, "no_access_before_ready");
    let end = small.scenario.system.end();
    for o in &l.onboardings {
        let access = o.access_at.expect("completed onboardings have access");
        // Access waits for the DNS record (ready 5 s after its call succeeded).
        assert!(access - o.signed_up >= SimDuration::from_secs(5));
        // 5 requests/s from access to the end: about that many, give or take Poisson noise.
        let expected = 5.0 * (end - access).as_secs_f64();
        let got = issued(&small, o.tenant) as f64;
        assert!(
            (got - expected).abs() < 5.0 * expected.sqrt() + 5.0,
            "tenant {} issued {got}, expected about {expected:.0} from its access at {access}",
            o.tenant
        );
    }
    // With DNS down for the whole run no onboarding completes, and nobody sends anything.
    // Attempts never answered leave the step "maybe applied", so the runner tries to undo it;
    // the undo cannot reach DNS either: every onboarding ends stuck (a person must look), and
    // nothing was created, so nothing is orphaned.
    let down = format!(
        "{SMALL}\n[[faults]]\nname = \"dns-down\"\nkind = \"dependency_outage\"\n\
         dependency = \"dns\"\nat = \"0s\"\nduration = \"4m\"\n"
    );
    let down = run(&down, &[]);
    let l = lifecycle(&down);
    assert!(
        l.onboardings
            .iter()
            .all(|o| o.outcome == OnboardingOutcome::Stuck),
        "{:?}",
        l.onboardings.iter().map(|o| o.outcome).collect::<Vec<_>>()
    );
    for t in group(&down, "new") {
        assert_eq!(
            issued(&down, t),
            0,
            "tenant {t} sent requests without access"
        );
    }
    assert_eq!((l.resources_created, l.orphans), (0, 0));
}

/// The provider's limit is per account and shared by every onboarding: over any interval the
/// calls it admits stay within `rate · T + burst`, and beyond that it answers 429.
#[test]
fn one_rate_limit_per_provider_account_is_shared_by_all_onboardings() {
    let small = run(SMALL, &[]);
    let l = lifecycle(&small);
    let dns = small
        .scenario
        .system
        .dependencies
        .iter()
        .position(|d| d.name == "dns")
        .expect("dns");
    let calls = l.providers[dns];
    println!(
        "dns: {} calls, {} answered 429 (40 sign-ups at 2/s against 2 calls/s)",
        calls.calls, calls.throttled
    );
    assert!(
        calls.throttled > 0,
        "a 2/s limit under 2/s of sign-ups throttles"
    );
    let admitted = calls.calls - calls.throttled;
    assert_eq!(admitted, 40, "one admitted call per sign-up (no errors)");
    // Admitted calls all happened between the first sign-up (5 s) and the last onboarding's
    // DNS completion; at 2/s with a burst of 2 that takes at least (40 - 2) / 2 = 19 s.
    let last_access = l
        .onboardings
        .iter()
        .filter_map(|o| o.access_at)
        .max()
        .expect("some access");
    assert!(
        last_access >= SimTime::ZERO + SimDuration::from_secs(5 + 19),
        "40 DNS calls at 2/s cannot finish before 24 s: last access at {last_access}"
    );
    // A tighter limit (a rate_limit fault for the whole sign-up period) throttles more.
    let tightened = format!(
        "{SMALL}\n[[faults]]\nname = \"tighten\"\nkind = \"rate_limit\"\n\
         dependency = \"dns\"\nrate = 0.5\nat = \"0s\"\nduration = \"1m\"\n"
    );
    let tightened = run(&tightened, &[]);
    let t = lifecycle(&tightened).providers[dns];
    println!(
        "dns at 0.5/s: {} calls, {} answered 429",
        t.calls, t.throttled
    );
    assert!(t.throttled > calls.throttled, "{t:?} vs {calls:?}");
}

#[test]
fn reserved_names_are_refused_at_sign_up() {
    let text = format!(
        "{SMALL}\n[[tenants]]\nname = \"www\"\ntier = \"standard\"\narrival = {{ rate = 5 }}\n\
         signup = {{ workflow = \"onboarding\", at = \"5s\" }}\n\
         [[tenants]]\nname = \"acme\"\ntier = \"standard\"\narrival = {{ rate = 5 }}\n\
         signup = {{ workflow = \"onboarding\", at = \"5s\" }}\n"
    );
    let r = run(&text, &[]);
    let l = lifecycle(&r);
    let outcome = |name: &str| {
        let t = group(&r, name)[0];
        l.onboardings
            .iter()
            .find(|o| o.tenant == t)
            .map(|o| o.outcome)
            .expect("signed up")
    };
    assert_eq!(outcome("www"), OnboardingOutcome::Refused);
    assert_eq!(outcome("acme"), OnboardingOutcome::Completed);
    assert_eq!(issued(&r, group(&r, "www")[0]), 0);
    let tier = &r
        .report
        .onboarding
        .as_ref()
        .expect("onboarding report")
        .tiers[0];
    assert_eq!(tier.refused, 1);
    // The list is configurable: without `www` on it, `www` is onboarded like anyone.
    let allowed = run(
        &text,
        &["workflows.onboarding.reserved_names=[\"root\", \"admin\"]"],
    );
    let t = group(&allowed, "www")[0];
    assert!(
        lifecycle(&allowed)
            .onboardings
            .iter()
            .any(|o| o.tenant == t && o.outcome == OnboardingOutcome::Completed)
    );
}

// ---------------------------------------------------------------------------------------------
// Compensation, crashes, bounds
// ---------------------------------------------------------------------------------------------

/// The rollback drill: every failure is at billing (a permanent error), and each compensated
/// onboarding undid exactly its three earlier steps (schema, DNS record, certificate).
#[test]
fn a_permanent_failure_undoes_the_completed_steps_and_nothing_else() {
    let r = run(&library("onboarding-rollback.toml"), &[]);
    let l = lifecycle(&r);
    let compensated: Vec<_> = l
        .onboardings
        .iter()
        .filter(|o| o.outcome == OnboardingOutcome::Compensated)
        .collect();
    println!(
        "rollback: {} of {} onboardings compensated, {} resources undone, {} orphans",
        compensated.len(),
        l.onboardings.len(),
        l.resources_compensated,
        l.orphans
    );
    assert!(compensated.len() >= 5, "a 4 % decline rate declines some");
    assert!(
        compensated
            .iter()
            .all(|o| o.failed_step.as_deref() == Some("billing"))
    );
    assert_eq!(l.resources_compensated, 3 * compensated.len() as u64);
    assert_eq!(l.orphans, 0);
    assert_eq!(l.duplicates, 0);
    // Completed onboardings keep their six resources; failed ones none.
    assert_eq!(
        l.resources_created,
        6 * (l.onboardings.len() - compensated.len()) as u64 + 3 * compensated.len() as u64
    );
}

/// A runner crash loses the results of the calls in flight; the restarted runner re-issues
/// them under the same keys (no duplicate), sign-ups during the crash wait in the queue, and
/// the downtime extends every bound. A crash shorter than the time left to the workflows'
/// forward deadline costs only time; a longer one runs past it, and the workflows in progress
/// are rolled back (their forward deadline is not moved), while the queued ones start afresh.
#[test]
fn a_runner_crash_resumes_every_workflow_without_repeating_a_side_effect() {
    let crash = |at: u64, seconds: u64| {
        let text = format!(
            "{SMALL}\n[[faults]]\nname = \"crash\"\nkind = \"runner_crash\"\nat = \"{at}s\"\n\
             duration = \"{seconds}s\"\n"
        );
        run(&text, &[])
    };
    let secs = |s: u64| SimTime::ZERO + SimDuration::from_secs(s);
    let short = crash(12, 20);
    let l = lifecycle(&short);
    held(&short, "no_duplicate_side_effects");
    held(&short, "workflows_within_bound");
    assert!(
        l.onboardings
            .iter()
            .all(|o| o.outcome == OnboardingOutcome::Completed)
    );
    // Sign-ups during the crash are onboarded after the restart at 32 s.
    let during: Vec<_> = l
        .onboardings
        .iter()
        .filter(|o| o.signed_up > secs(12) && o.signed_up < secs(32))
        .collect();
    assert!(during.len() > 20, "{}", during.len());
    assert!(
        during
            .iter()
            .all(|o| o.access_at.is_some_and(|a| a >= secs(32)))
    );

    let long = crash(12, 90);
    let l = lifecycle(&long);
    held(&long, "no_duplicate_side_effects");
    held(&long, "workflows_within_bound");
    held(&long, "no_orphaned_resources");
    let (in_progress, queued): (Vec<_>, Vec<_>) =
        l.onboardings.iter().partition(|o| o.signed_up <= secs(12));
    println!(
        "a 90 s crash: {} of {} onboardings in progress rolled back, {} of {} queued completed",
        in_progress
            .iter()
            .filter(|o| o.outcome == OnboardingOutcome::Compensated)
            .count(),
        in_progress.len(),
        queued
            .iter()
            .filter(|o| o.outcome == OnboardingOutcome::Completed)
            .count(),
        queued.len()
    );
    // Those whose workflow was still running at the crash passed their 1-minute forward
    // deadline while the runner was down: rolled back. (Those that had only to wait for
    // their DNS record got access at the restart.)
    assert!(in_progress.iter().all(|o| matches!(
        o.outcome,
        OnboardingOutcome::Completed | OnboardingOutcome::Compensated
    )));
    let rolled_back = in_progress
        .iter()
        .filter(|o| o.outcome == OnboardingOutcome::Compensated)
        .count();
    assert!(rolled_back > 0);
    assert!(
        queued
            .iter()
            .all(|o| o.outcome == OnboardingOutcome::Completed
                && o.access_at.is_some_and(|a| a >= secs(102)))
    );
}

// ---------------------------------------------------------------------------------------------
// Deletion and the ledger
// ---------------------------------------------------------------------------------------------

#[test]
fn a_deletion_revokes_access_and_its_ledger_lists_every_store() {
    let r = run(&library("tenant-deletion.toml"), &[]);
    let l = lifecycle(&r);
    held(&r, "deletion_complete_at_bound");
    assert_eq!(l.deletions.len(), 25);
    for d in &l.deletions {
        assert_eq!(d.outcome, DeletionOutcome::Completed, "{d:?}");
        assert!(d.due.is_some() && d.remaining.is_empty(), "{d:?}");
        let stores: Vec<Store> = l
            .ledger
            .iter()
            .filter(|e| e.tenant == d.tenant)
            .map(|e| e.store)
            .collect();
        for store in [
            Store::Database,
            Store::Caches,
            Store::Search,
            Store::Resources,
            Store::Backups,
        ] {
            assert!(
                stores.contains(&store),
                "tenant {} ledger {stores:?}",
                d.tenant
            );
        }
        // The backups entry comes last, once the last snapshot holding the rows expired
        // (snapshots every 5 minutes, kept 20): at most 20 minutes after the rows went.
        let at = |store: Store| {
            l.ledger
                .iter()
                .find(|e| e.tenant == d.tenant && e.store == store)
                .map(|e| e.at)
                .expect("entry")
        };
        assert!(at(Store::Backups) >= at(Store::Database));
        assert!(at(Store::Backups) - at(Store::Database) <= SimDuration::from_secs(20 * 60));
    }
    // A leaver sends 5 requests/s until its deletion request (from 6 minutes on), then nothing.
    let leaver = group(&r, "leaver")[0];
    let requested = l
        .deletions
        .iter()
        .find(|d| d.tenant == leaver)
        .map(|d| d.requested)
        .expect("a deletion");
    let expected = 5.0 * requested.as_secs_f64();
    let got = issued(&r, leaver) as f64;
    assert!(
        (got - expected).abs() < 5.0 * expected.sqrt(),
        "issued {got}, about {expected:.0} expected before the deletion at {requested}"
    );
}

// ---------------------------------------------------------------------------------------------
// Onboarding time against queueing theory
// ---------------------------------------------------------------------------------------------

/// One step calling a provider with `c` connections and exponential latency, Poisson
/// sign-ups, nothing else in the way: the onboarding time (sign-up to access) is the sojourn
/// time of an M/M/c queue. Mean and quantiles (tail included) against Erlang C.
#[test]
fn onboarding_time_of_a_one_step_workflow_is_the_mm_c_sojourn_time() {
    let (lambda, mean, c, n) = (8.0, 1.0, 10u32, 12_000u64);
    let text = format!(
        r#"
name = "mmc-onboarding"
[simulation]
duration = "{duration}s"
[[tiers]]
name = "standard"
rate = 100
[[cells]]
name = "cell-a"
api = {{ workers = 8, service_time = {{ dist = "constant", value = "1ms" }} }}
[[dependencies]]
name = "provider"
kind = "provider"
concurrency = {c}
latency = {{ dist = "exponential", mean = "{mean}s" }}
[[workflows]]
name = "onboarding"
kind = "onboarding"
timeout = "1h"
steps = [{{ name = "only", dependency = "provider" }}]
[[tenants]]
name = "new"
count = {n}
tier = "standard"
arrival = {{ rate = 0.0001 }}
signup = {{ workflow = "onboarding", rate = {lambda} }}
"#,
        duration = (n as f64 / lambda * 1.2) as u64
    );
    let r = run(&text, &[]);
    let l = lifecycle(&r);
    // The first thousand sign-ups find the queue warming up: judged from the next on.
    let mut times: Vec<f64> = l
        .onboardings
        .iter()
        .skip(1_000)
        .filter_map(|o| o.access_at.map(|a| (a - o.signed_up).as_secs_f64()))
        .collect();
    assert_eq!(times.len() as u64, n - 1_000, "every sign-up completed");
    times.sort_by(f64::total_cmp);
    let model = MMc {
        lambda,
        mu: 1.0 / mean,
        c,
    };
    let observed_mean = times.iter().sum::<f64>() / times.len() as f64;
    println!(
        "M/M/{c} at rho {:.2}: mean {observed_mean:.3}s (Erlang C {:.3}s)",
        model.rho(),
        model.mean_response()
    );
    assert!(
        (observed_mean / model.mean_response() - 1.0).abs() < 0.05,
        "mean {observed_mean} vs {}",
        model.mean_response()
    );
    for q in [0.5, 0.9, 0.99] {
        let observed = times[((q * times.len() as f64).ceil() as usize).min(times.len()) - 1];
        let expected = model.response_quantile(q);
        println!(
            "  p{}: {observed:.3}s (closed form {expected:.3}s)",
            q * 100.0
        );
        assert!(
            (observed / expected - 1.0).abs() < 0.08,
            "p{q}: {observed} vs {expected}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// SLO metrics and limits
// ---------------------------------------------------------------------------------------------

#[test]
fn onboarding_slo_metrics_parse_and_judge_sign_ups() {
    let e = parse_expectation("onboarding_p99 < 10m").expect("parses");
    assert_eq!(e.metric, Metric::OnboardingPercentile(99.0));
    let e = parse_expectation("onboarding_failed_rate <= 1%").expect("parses");
    assert_eq!(e.metric, Metric::OnboardingFailedRate);
    for bad in [
        "onboarding_p99 < 1%",
        "onboarding_failed_rate < 10m",
        "onboarding_mean < 1s",
    ] {
        assert!(parse_expectation(bad).is_err(), "{bad}");
    }
    // The storm drill's SLO judges sign-ups: the twin fails it on the failed rate.
    let text = format!(
        "{SMALL}\n[[slo]]\nname = \"quick\"\ntenants = [\"new\"]\nscope = \"pooled\"\n\
         expect = [\"onboarding_p100 < 1m\", \"onboarding_failed_rate <= 0\"]\nmin_samples = 40\n"
    );
    let ok = run(&text, &[]);
    assert_eq!(ok.evaluation.slos[0].status, Status::Passed);
    let samples: Vec<u64> = ok.evaluation.slos[0]
        .checks
        .iter()
        .map(|c| c.samples)
        .collect();
    assert_eq!(samples, vec![40, 40]);
    // A 100 ms billing timeout against a 50 ms latency that slows down 10x: every onboarding
    // times out at billing and is compensated.
    let slow = format!(
        "{text}\n[[faults]]\nname = \"slow\"\nkind = \"dependency_slowdown\"\n\
         dependency = \"billing\"\nfactor = 10\nat = \"0s\"\nduration = \"4m\"\n"
    );
    let slow = run(&slow, &["workflows.onboarding.steps.billing.timeout=100ms"]);
    assert_eq!(slow.evaluation.slos[0].status, Status::Failed);
    let failed = slow.evaluation.slos[0].checks[1].observed;
    assert_eq!(failed, Some(1.0));
}

fn load_error(text: &str) -> String {
    let options = LoadOptions {
        path: "limits.toml".into(),
        ..LoadOptions::default()
    };
    match load(text, &options) {
        Ok(_) => panic!("the scenario should be rejected"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn providers_and_sign_ups_have_named_limits() {
    let mut providers = String::from(
        "name = \"many\"\n[[tiers]]\nname = \"t\"\nrate = 1\n[[cells]]\nname = \"c\"\n\
         api = { workers = 1, service_time = { dist = \"constant\", value = \"1ms\" } }\n\
         [[tenants]]\nname = \"a\"\ntier = \"t\"\narrival = { rate = 1 }\n",
    );
    for i in 0..101 {
        providers.push_str(&format!(
            "[[dependencies]]\nname = \"p{i}\"\nkind = \"provider\"\n\
             latency = {{ dist = \"constant\", value = \"1ms\" }}\n"
        ));
    }
    let e = load_error(&providers);
    assert!(e.contains("MAX_PROVIDERS") && e.contains("101"), "{e}");
    let signups = format!(
        "{SMALL}\n[[tenants]]\nname = \"crowd\"\ncount = 100000\ntier = \"standard\"\n\
         arrival = {{ rate = 1 }}\nsignup = {{ workflow = \"onboarding\" }}\n"
    );
    let e = load_error(&signups);
    assert!(e.contains("MAX_SIGNUPS") && e.contains("100040"), "{e}");
}
