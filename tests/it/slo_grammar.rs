//! The SLO expectation grammar, and SLO evaluation on runs whose answers are known exactly.

use tenantsim::pipeline::execute;
use tenantsim::scenario::LoadOptions;
use tenantsim::scenario::expect::{Metric, Op, Threshold, parse_expectation};
use tenantsim::slo::Status;
use tenantsim::time::SimDuration;

#[test]
fn parses_every_metric_and_operator() {
    let cases = [
        ("p50 < 10ms", Metric::Percentile(50.0), Op::Lt),
        ("p90 <= 1s", Metric::Percentile(90.0), Op::Le),
        ("p99.9 > 5us", Metric::Percentile(99.9), Op::Gt),
        ("p(99) >= 250ms", Metric::Percentile(99.0), Op::Ge),
        ("p(99.9) < 1s", Metric::Percentile(99.9), Op::Lt),
        ("mean < 4ms", Metric::Mean, Op::Lt),
        ("max < 2s", Metric::Max, Op::Lt),
        ("error_rate < 0.01", Metric::ErrorRate, Op::Lt),
        ("throttle_rate <= 5%", Metric::ThrottleRate, Op::Le),
        ("availability >= 0.999", Metric::Availability, Op::Ge),
        ("count >= 100", Metric::Count, Op::Ge),
        ("  p99<250ms  ", Metric::Percentile(99.0), Op::Lt),
    ];
    for (text, metric, op) in cases {
        let e = parse_expectation(text).unwrap_or_else(|err| panic!("{text}: {err}"));
        assert_eq!((e.metric, e.op), (metric, op), "{text}");
    }
    assert_eq!(
        parse_expectation("throttle_rate <= 5%").map(|e| e.threshold),
        Ok(Threshold::Fraction(0.05))
    );
    assert_eq!(
        parse_expectation("p99 < 1.5s").map(|e| e.threshold),
        Ok(Threshold::Duration(SimDuration::from_millis(1500)))
    );
}

#[test]
fn malformed_expectations_say_what_is_wrong() {
    let cases = [
        ("p99 250ms", "no comparison"),
        ("< 250ms", "missing metric"),
        ("p99 <", "no threshold"),
        ("p99 < 250", "needs a unit"),
        ("p99 < fast", "duration"),
        ("p0 < 1ms", "outside (0, 100]"),
        ("p101 < 1ms", "outside (0, 100]"),
        ("p999 < 1ms", "did you mean p99.9?"),
        ("latency < 1ms", "unknown metric `latency`"),
        ("error_rate < 2", "between 0 and 1"),
        ("error_rate < 1ms", "fraction"),
        ("count > 1.5", "whole number"),
        ("p99 < 1ms < 2ms", "more than one comparison"),
        ("p99 =< 1ms", "use one of <, <=, >, >="),
        ("p99 == 1ms", "use one of <, <=, >, >="),
    ];
    for (text, needle) in cases {
        match parse_expectation(text) {
            Ok(e) => panic!("{text:?} should not parse, got {e:?}"),
            Err(message) => assert!(
                message.contains(needle),
                "{text:?}: {message:?} lacks {needle:?}"
            ),
        }
    }
}

/// One tenant, constant arrivals and constant 10 ms service on an idle pool: every request
/// takes exactly 10 ms.
fn exact_scenario(expect: &str, extra: &str) -> String {
    format!(
        r#"
name = "exact"
[simulation]
duration = "20s"
[[tiers]]
name = "t"
rate = 1000
[[cells]]
name = "c"
api = {{ workers = 4, service_time = {{ dist = "constant", value = "10ms" }} }}
[[tenants]]
name = "a"
tier = "t"
arrival = {{ process = "constant", rate = 10 }}
[[tenants]]
name = "b"
tier = "t"
arrival = {{ process = "constant", rate = 10 }}
[[slo]]
name = "s"
expect = [{expect}]
{extra}
"#
    )
}

fn verdict(text: &str) -> (Status, Vec<Option<f64>>) {
    let executed = execute(
        text,
        &LoadOptions {
            path: "exact.toml".into(),
            ..LoadOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let observed = executed.evaluation.slos[0]
        .checks
        .iter()
        .map(|c| c.observed)
        .collect();
    (executed.evaluation.verdict, observed)
}

#[test]
fn evaluates_latency_expectations_exactly() {
    let (status, observed) = verdict(&exact_scenario(
        r#""p99 <= 10ms", "mean <= 10ms", "max >= 10ms""#,
        "",
    ));
    assert_eq!(status, Status::Passed, "{observed:?}");
    assert!(observed.iter().all(|o| *o == Some(10.0)), "{observed:?}");
    assert_eq!(
        verdict(&exact_scenario(r#""p99 < 10ms""#, "")).0,
        Status::Failed
    );
    assert_eq!(
        verdict(&exact_scenario(r#""p50 > 10ms""#, "")).0,
        Status::Failed
    );
    assert_eq!(
        verdict(&exact_scenario(
            r#""error_rate < 0.001", "availability >= 100%""#,
            ""
        ))
        .0,
        Status::Passed
    );
}

#[test]
fn too_few_samples_is_inconclusive_never_a_pass() {
    // 20 s at 10/s is 200 requests per tenant; asking for 1,000 samples cannot be judged.
    let (status, _) = verdict(&exact_scenario(r#""p99 < 1s""#, "min_samples = 1000"));
    assert_eq!(status, Status::Inconclusive);
    // Pooled, the two tenants together have 400: still inconclusive at 1,000, judged at 300.
    let (status, _) = verdict(&exact_scenario(
        r#""p99 < 1s""#,
        "scope = \"pooled\"\nmin_samples = 1000",
    ));
    assert_eq!(status, Status::Inconclusive);
    let (status, observed) = verdict(&exact_scenario(
        r#""p99 < 1s""#,
        "scope = \"pooled\"\nmin_samples = 300",
    ));
    assert_eq!(status, Status::Passed);
    assert_eq!(observed.len(), 1, "pooled scope makes one check");
    // A count check is never inconclusive.
    let (status, observed) = verdict(&exact_scenario(r#""count >= 199""#, "min_samples = 1000"));
    assert_eq!(status, Status::Passed, "{observed:?}");
}

/// Without `[[classes]]` a scenario still has its implicit class and its `api` pool, and an
/// SLO may name either: it judges every request, as an SLO without a filter does (this once
/// indexed past the windows and panicked).
#[test]
fn implicit_class_and_api_pool_filters_judge_every_request() {
    let unfiltered = verdict(&exact_scenario(r#""count >= 1", "p99 <= 10ms""#, ""));
    assert_eq!(unfiltered.0, Status::Passed, "{unfiltered:?}");
    assert!(
        unfiltered.1.iter().any(|o| *o >= Some(150.0)),
        "{unfiltered:?}"
    );
    for filter in [r#"class = "default""#, r#"pool = "api""#] {
        let filtered = verdict(&exact_scenario(r#""count >= 1", "p99 <= 10ms""#, filter));
        assert_eq!(filtered, unfiltered, "{filter}");
    }
}

#[test]
fn inconclusive_run_exits_4() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("exact.toml");
    std::fs::write(&file, exact_scenario(r#""p99 < 1s""#, "min_samples = 1000")).expect("write");
    let out = dir.path().join("out");
    let output = crate::common::simulate(&[
        file.to_str().expect("utf-8 path"),
        "--out",
        out.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(
        crate::common::code(&output),
        4,
        "{}",
        crate::common::text(&output)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("inconclusive (200 samples)"));
}

#[test]
fn throttle_rate_matches_the_quota() {
    // 20 requests/s against a 10/s quota with a burst of 1 and no retries: half are throttled.
    let text = exact_scenario(
        r#""throttle_rate > 0.45", "throttle_rate < 0.55", "error_rate < 0.01""#,
        "tenants = [\"a\"]",
    )
    .replace("rate = 1000", "rate = 10\nburst = 1")
    .replace(
        "process = \"constant\", rate = 10 }",
        "process = \"constant\", rate = 20 }",
    );
    let (status, observed) = verdict(&text);
    assert_eq!(status, Status::Passed, "{observed:?}");
}
