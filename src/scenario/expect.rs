//! The SLO expectation grammar: `"p99 < 250ms"`, `"error_rate < 0.01"`, `"count >= 100"`.
//!
//! ```text
//! expectation := metric op threshold
//! metric      := pN | p(N) | mean | max | error_rate | throttle_rate | availability | count
//!              | jobs_pN | onboarding_pN | onboarding_failed_rate
//!                (N a percentile in (0, 100], e.g. p50, p99.9, p(99))
//! op          := < | <= | > | >=
//! threshold   := duration (for pN, mean, max: "250ms")
//!              | fraction (for the rates: 0.01 or 1%)
//!              | integer  (for count)
//! ```
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
    /// A request count.
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
    Ok(Expectation {
        text: trimmed.to_string(),
        metric,
        op,
        threshold,
    })
}

const METRIC_NAMES: &str = "p50, p90, p99, p99.9 (or p(99)), mean, max, error_rate, throttle_rate, \
                            availability, count, jobs_p99 (any jobs_pN), onboarding_p99 (any \
                            onboarding_pN), onboarding_failed_rate";

fn parse_metric(name: &str) -> Result<Metric, String> {
    match name {
        "mean" => return Ok(Metric::Mean),
        "max" => return Ok(Metric::Max),
        "error_rate" => return Ok(Metric::ErrorRate),
        "throttle_rate" => return Ok(Metric::ThrottleRate),
        "availability" => return Ok(Metric::Availability),
        "count" => return Ok(Metric::Count),
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
            let (number, scale) = match text.strip_suffix('%') {
                Some(n) => (n.trim(), 100.0),
                None => (text, 1.0),
            };
            let value = number
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .map(|v| v / scale)
                .ok_or_else(|| {
                    format!("`{metric}` compares with a fraction such as 0.01 or 1%, not `{text}`")
                })?;
            if !(0.0..=1.0).contains(&value) {
                return Err(format!(
                    "`{metric}` is a fraction between 0 and 1 (or 0% and 100%), not `{text}`"
                ));
            }
            Ok(Threshold::Fraction(value))
        }
        Metric::Count => text
            .parse::<u64>()
            .map(Threshold::Count)
            .map_err(|_| format!("`count` compares with a whole number, not `{text}`")),
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
    }
}
