//! The SLO expectation grammar: `"p99 < 250ms"`, `"error_rate < 0.01"`, `"count >= 100"`.
//!
//! ```text
//! expectation := metric op threshold
//! metric      := pN | p(N) | mean | max | error_rate | throttle_rate | availability | count
//!              | jobs_pN | dead_letters | onboarding_pN | onboarding_failed_rate
//!                (N a percentile in (0, 100], e.g. p50, p99.9, p(99))
//! op          := < | <= | > | >=
//! threshold   := duration (for pN, mean, max, jobs_pN: "250ms")
//!              | fraction (for the rates: 1% or 0.01; a plain 1 is refused as ambiguous)
//!              | integer  (for count and dead_letters)
//! ```
//!
//! An expectation that can never fail (`error_rate <= 100%`, `p99 >= 0ms`) or never pass
//! (`count < 0`) is refused with a suggestion: it would judge nothing. The classic case is
//! `error_rate < 1` written for one percent, which reads as 100 %.
//!
//! Parsing lives with the scenario format (an expectation is part of the file); the `slo`
//! layer evaluates parsed expectations against a run's metrics.

use std::fmt;

use crate::time::SimDuration;

/// What an expectation measures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Metric {
    /// A latency percentile of `ok` requests, e.g. 99.0 or 99.9.
    Percentile(f64),
    /// Mean latency of `ok` requests.
    Mean,
    /// Largest latency of an `ok` request.
    Max,
    /// (rejected + failed + timed_out) / finished.
    ErrorRate,
    /// throttled / finished.
    ThrottleRate,
    /// 1 - error_rate.
    Availability,
    /// Finished requests.
    Count,
    /// A percentile of background-job completion time (submission to success).
    JobsPercentile(f64),
    /// Background jobs dead-lettered (given up after their attempts).
    DeadLetters,
    /// A percentile of onboarding time (sign-up to access) of the selected tenants' sign-ups
    /// in the window; unfinished ones count at their age.
    OnboardingPercentile(f64),
    /// Failed onboardings (compensated or stuck) over those that ended.
    OnboardingFailedRate,
}

impl Metric {
    /// Whether the metric is a latency (its threshold is a duration).
    pub fn is_latency(self) -> bool {
        matches!(
            self,
            Metric::Percentile(_)
                | Metric::Mean
                | Metric::Max
                | Metric::JobsPercentile(_)
                | Metric::OnboardingPercentile(_)
        )
    }

    /// Whether the metric judges sign-ups (from the run's lifecycle) rather than requests.
    pub fn is_onboarding(self) -> bool {
        matches!(
            self,
            Metric::OnboardingPercentile(_) | Metric::OnboardingFailedRate
        )
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Metric::Percentile(p) => write!(f, "p{p}"),
            Metric::Mean => write!(f, "mean"),
            Metric::Max => write!(f, "max"),
            Metric::ErrorRate => write!(f, "error_rate"),
            Metric::ThrottleRate => write!(f, "throttle_rate"),
            Metric::Availability => write!(f, "availability"),
            Metric::Count => write!(f, "count"),
            Metric::JobsPercentile(p) => write!(f, "jobs_p{p}"),
            Metric::DeadLetters => write!(f, "dead_letters"),
            Metric::OnboardingPercentile(p) => write!(f, "onboarding_p{p}"),
            Metric::OnboardingFailedRate => write!(f, "onboarding_failed_rate"),
        }
    }
}

/// A comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Op {
    /// Whether `observed op threshold` holds.
    pub fn holds(self, observed: f64, threshold: f64) -> bool {
        match self {
            Op::Lt => observed < threshold,
            Op::Le => observed <= threshold,
            Op::Gt => observed > threshold,
            Op::Ge => observed >= threshold,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        })
    }
}

/// The right-hand side of an expectation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Threshold {
    /// A latency.
    Duration(SimDuration),
    /// A fraction in [0, 1].
    Fraction(f64),
    /// A count (requests, or dead-lettered jobs).
    Count(u64),
}

impl Threshold {
    /// The threshold in the unit observed values are reported in: milliseconds for latencies,
    /// the fraction itself for rates, the count for counts.
    pub fn as_reported(self) -> f64 {
        match self {
            Threshold::Duration(d) => d.as_millis_f64(),
            Threshold::Fraction(x) => x,
            Threshold::Count(n) => n as f64,
        }
    }
}

/// One parsed expectation.
#[derive(Clone, Debug, PartialEq)]
pub struct Expectation {
    /// The text as written, for reports.
    pub text: String,
    /// What is measured.
    pub metric: Metric,
    /// The comparison.
    pub op: Op,
    /// The threshold.
    pub threshold: Threshold,
}

/// Parses one expectation; the error says what was expected.
pub fn parse_expectation(text: &str) -> Result<Expectation, String> {
    let trimmed = text.trim();
    let Some(op_at) = trimmed.find(['<', '>']) else {
        return Err(if trimmed.contains(['=', '!']) {
            format!("`{trimmed}`: unknown comparison; use one of <, <=, >, >=")
        } else {
            format!("`{trimmed}` has no comparison; write it like \"p99 < 250ms\"")
        });
    };
    let (left, rest) = trimmed.split_at(op_at);
    if left.contains(['=', '!']) {
        return Err(format!(
            "`{trimmed}`: unknown comparison; use one of <, <=, >, >="
        ));
    }
    let (op, right) = if let Some(r) = rest.strip_prefix("<=") {
        (Op::Le, r)
    } else if let Some(r) = rest.strip_prefix(">=") {
        (Op::Ge, r)
    } else if let Some(r) = rest.strip_prefix('<') {
        (Op::Lt, r)
    } else if let Some(r) = rest.strip_prefix('>') {
        (Op::Gt, r)
    } else {
        return Err(format!("`{trimmed}`: unknown comparison"));
    };
    if right.contains(['<', '>', '=']) {
        return Err(format!(
            "`{trimmed}` has more than one comparison; use one of <, <=, >, >="
        ));
    }
    let metric = parse_metric(left.trim())?;
    let right = right.trim();
    if right.is_empty() {
        return Err(format!("`{trimmed}` has no threshold after `{op}`"));
    }
    let threshold = parse_threshold(metric, right)?;
    if let Some(why) = vacuous(metric, op, threshold) {
        return Err(format!("`{trimmed}` {why}"));
    }
    Ok(Expectation {
        text: trimmed.to_string(),
        metric,
        op,
        threshold,
    })
}

const METRIC_NAMES: &str = "p50, p90, p99, p99.9 (or p(99)), mean, max, error_rate, throttle_rate, \
                            availability, count, jobs_p99 (any jobs_pN), dead_letters, \
                            onboarding_p99 (any onboarding_pN), onboarding_failed_rate";

fn parse_metric(name: &str) -> Result<Metric, String> {
    match name {
        "mean" => return Ok(Metric::Mean),
        "max" => return Ok(Metric::Max),
        "error_rate" => return Ok(Metric::ErrorRate),
        "throttle_rate" => return Ok(Metric::ThrottleRate),
        "availability" => return Ok(Metric::Availability),
        "count" => return Ok(Metric::Count),
        "dead_letters" => return Ok(Metric::DeadLetters),
        "onboarding_failed_rate" => return Ok(Metric::OnboardingFailedRate),
        "" => {
            return Err(format!(
                "missing metric before the comparison; one of {METRIC_NAMES}"
            ));
        }
        _ => {}
    }
    if let Some(rest) = name.strip_prefix("jobs_") {
        return match parse_metric(rest) {
            Ok(Metric::Percentile(p)) => Ok(Metric::JobsPercentile(p)),
            _ => Err(format!(
                "unknown metric `{name}`; job metrics are percentiles of completion time, such as jobs_p99"
            )),
        };
    }
    if let Some(rest) = name.strip_prefix("onboarding_") {
        return match parse_metric(rest) {
            Ok(Metric::Percentile(p)) => Ok(Metric::OnboardingPercentile(p)),
            _ => Err(format!(
                "unknown metric `{name}`; onboarding metrics are onboarding_pN (sign-up to access, such as onboarding_p99) and onboarding_failed_rate"
            )),
        };
    }
    if let Some(rest) = name.strip_prefix('p') {
        let number = rest
            .strip_prefix('(')
            .and_then(|r| r.strip_suffix(')'))
            .unwrap_or(rest);
        if let Ok(p) = number.parse::<f64>()
            && !number.is_empty()
            && number.chars().all(|c| c.is_ascii_digit() || c == '.')
        {
            if p > 0.0 && p <= 100.0 {
                return Ok(Metric::Percentile(p));
            }
            let hint = if number.starts_with("99") && p > 100.0 {
                format!(" (did you mean p99.{}?)", &number[2..])
            } else {
                String::new()
            };
            return Err(format!("percentile `{name}` is outside (0, 100]{hint}"));
        }
    }
    Err(format!(
        "unknown metric `{name}`; expected one of {METRIC_NAMES}"
    ))
}

fn parse_threshold(metric: Metric, text: &str) -> Result<Threshold, String> {
    match metric {
        Metric::Percentile(_)
        | Metric::Mean
        | Metric::Max
        | Metric::JobsPercentile(_)
        | Metric::OnboardingPercentile(_) => SimDuration::parse(text)
            .map(Threshold::Duration)
            .map_err(|e| format!("`{metric}` compares with a duration such as 250ms: {e}")),
        Metric::ErrorRate
        | Metric::ThrottleRate
        | Metric::Availability
        | Metric::OnboardingFailedRate => {
            let bad =
                || format!("`{metric}` compares with a fraction such as 1% or 0.01, not `{text}`");
            if let Some(number) = text.strip_suffix('%') {
                let value = number
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(bad)?;
                if !(0.0..=100.0).contains(&value) {
                    return Err(format!(
                        "`{metric}` is a share between 0% and 100%, not `{text}`"
                    ));
                }
                return Ok(Threshold::Fraction(value / 100.0));
            }
            let value = text
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(bad)?;
            if value == 1.0 {
                // Almost always meant as one percent; as a fraction it is 100 %.
                return Err(format!(
                    "`{metric}` compares with a fraction, so `{text}` would mean 100 %: write \
                     `1%` for one percent (or `100%` if you mean all of them)"
                ));
            }
            if value > 1.0 && value <= 100.0 {
                return Err(format!(
                    "`{metric}` is a fraction between 0 and 1, not `{text}`: did you mean `{text}%`?"
                ));
            }
            if !(0.0..=1.0).contains(&value) {
                return Err(format!(
                    "`{metric}` is a fraction between 0 and 1 (or 0% and 100%), not `{text}`"
                ));
            }
            Ok(Threshold::Fraction(value))
        }
        Metric::Count | Metric::DeadLetters => text
            .parse::<u64>()
            .map(Threshold::Count)
            .map_err(|_| format!("`{metric}` compares with a whole number, not `{text}`")),
    }
}

/// Why an expectation can never fail or never pass, if it cannot: every metric is at least 0
/// and a rate at most 100 %, so `< 0` never holds and `>= 0` (or a rate's `<= 100%`) always
/// does. Such an expectation judges nothing and hides a typo (`error_rate <= 1` for 1 %).
fn vacuous(metric: Metric, op: Op, threshold: Threshold) -> Option<String> {
    let value = threshold.as_reported();
    let is_rate = matches!(
        metric,
        Metric::ErrorRate
            | Metric::ThrottleRate
            | Metric::Availability
            | Metric::OnboardingFailedRate
    );
    let shown = |v: f64| match threshold {
        Threshold::Fraction(_) => format!("{}%", v * 100.0),
        Threshold::Duration(_) => "0ms".to_string(),
        Threshold::Count(_) => format!("{v}"),
    };
    let percent_hint = if is_rate {
        " (a rate is written as a percentage such as `1%`, or a fraction such as 0.01)"
    } else {
        ""
    };
    match op {
        Op::Lt if value <= 0.0 => Some(format!(
            "can never pass: `{metric}` is never below {}{percent_hint}",
            shown(0.0)
        )),
        Op::Ge if value <= 0.0 => Some(format!(
            "can never fail: `{metric}` is always at least {}{percent_hint}",
            shown(0.0)
        )),
        Op::Le if is_rate && value >= 1.0 => Some(format!(
            "can never fail: `{metric}` is at most 100%{percent_hint}"
        )),
        Op::Gt if is_rate && value >= 1.0 => Some(format!(
            "can never pass: `{metric}` is never above 100%{percent_hint}"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_design_examples() {
        let e = parse_expectation("p99 < 250ms").unwrap();
        assert_eq!(e.metric, Metric::Percentile(99.0));
        assert_eq!(e.op, Op::Lt);
        assert_eq!(
            e.threshold,
            Threshold::Duration(SimDuration::from_millis(250))
        );
        let e = parse_expectation("p(99.9) <= 1s").unwrap();
        assert_eq!(e.metric, Metric::Percentile(99.9));
        assert_eq!(e.op, Op::Le);
        let e = parse_expectation("error_rate < 1%").unwrap();
        assert_eq!(e.threshold, Threshold::Fraction(0.01));
        let e = parse_expectation("count>=100").unwrap();
        assert_eq!(e.threshold, Threshold::Count(100));
        let e = parse_expectation("dead_letters < 1").unwrap();
        assert_eq!(e.metric, Metric::DeadLetters);
        assert_eq!(e.threshold, Threshold::Count(1));
    }

    #[test]
    fn the_percent_trap_is_refused_with_the_percent_form() {
        // Plain fractions and percentages both work.
        for (text, value) in [
            ("error_rate < 1%", 0.01),
            ("error_rate < 0.01", 0.01),
            ("error_rate < 0.5%", 0.005),
            ("availability >= 99.9%", 0.999),
            ("availability >= 100%", 1.0),
            ("error_rate < 100%", 1.0),
            ("throttle_rate > 0", 0.0),
        ] {
            let e = parse_expectation(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let Threshold::Fraction(got) = e.threshold else {
                panic!("{text}: {:?}", e.threshold)
            };
            assert!((got - value).abs() < 1e-12, "{text}: {got}");
        }
        // A plain 1 is ambiguous (1 % or 100 %?); a plain 5 means 5 %.
        for (text, hint) in [
            ("error_rate < 1", "write `1%` for one percent"),
            ("error_rate < 1.0", "write `1%` for one percent"),
            ("throttle_rate <= 1", "write `1%` for one percent"),
            ("error_rate < 5", "did you mean `5%`?"),
            ("availability >= 99.9", "did you mean `99.9%`?"),
        ] {
            let e = parse_expectation(text).expect_err(text);
            assert!(e.contains(hint), "{text}: {e}");
        }
        // Expectations that cannot fail or cannot pass.
        for (text, what) in [
            ("error_rate <= 100%", "can never fail"),
            ("error_rate >= 0", "can never fail"),
            ("availability >= 0%", "can never fail"),
            ("error_rate > 100%", "can never pass"),
            ("error_rate < 0%", "can never pass"),
            ("p99 < 0ms", "can never pass"),
            ("p99 >= 0s", "can never fail"),
            ("count >= 0", "can never fail"),
            ("dead_letters < 0", "can never pass"),
        ] {
            let e = parse_expectation(text).expect_err(text);
            assert!(e.contains(what), "{text}: {e}");
        }
        // Tight but possible thresholds stay valid.
        for text in [
            "p99 <= 0ms",
            "count > 0",
            "dead_letters <= 0",
            "error_rate >= 100%",
        ] {
            assert!(parse_expectation(text).is_ok(), "{text}");
        }
    }
}
