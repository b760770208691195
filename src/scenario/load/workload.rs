//! The loader's workload keys: the scenario's start instant and clock times, `[[schedules]]`
//! (points or a daily profile), a tenant's arrival process (Poisson, constant, MMPP, renewal)
//! and a `count` group's size law.

use super::{
    Ctx, Names, Obj, claim_name, read_choice, read_duration, read_positive, read_positive_duration,
    read_string, read_table, read_table_array, type_error,
};
use crate::clock::ClockInstant;
use crate::model::arrivals::{
    DailyProfile, GapLaw, Interpolation, Mmpp, RateCurve, Renewal, SizeLaw,
};
use crate::model::config::{Arrival, ArrivalProcess, Schedule};
use crate::scenario::limits::{self, MAX_DURATION};
use crate::scenario::spec;
use crate::scenario::tree::{Node, Value};
use crate::time::{SimDuration, SimTime};

/// `[simulation] start`: an RFC 3339 instant.
pub(super) fn read_start(ctx: &mut Ctx<'_>, node: &Node, key: &str) -> Option<ClockInstant> {
    let text = read_string(
        ctx,
        node,
        key,
        "an RFC 3339 instant such as \"2026-03-02T08:00:00Z\"",
    )?;
    match ClockInstant::parse(&text) {
        Ok(start) => Some(start),
        Err(e) => {
            ctx.push(node.origin.clone(), key, e.message);
            None
        }
    }
}

/// Whether `text` looks like a clock time rather than a duration (a colon, as in "09:00").
fn is_clock_text(text: &str) -> bool {
    text.contains(':')
}

/// A time in the run as text: an offset with a unit (`"90m"`), or, with `[simulation] start`,
/// a clock time (`"09:00"`, `"Mon 09:00"`, an RFC 3339 instant) resolved against it. The
/// error says what was expected; `None` start with a clock text says a start is needed.
pub(super) fn time_of_text(
    start: Option<&ClockInstant>,
    text: &str,
) -> Result<SimDuration, String> {
    if is_clock_text(text) {
        let Some(start) = start else {
            return Err(format!(
                "{text:?} is a clock time, which needs `[simulation] start` (such as start = \"2026-03-02T08:00:00Z\"); without one, write an offset such as \"90m\""
            ));
        };
        let offset = start.offset_of(text).map_err(|e| e.message)?;
        if offset > MAX_DURATION {
            return Err(format!(
                "{text:?} is {offset} after the start, above the limit of {MAX_DURATION} (MAX_DURATION)"
            ));
        }
        return Ok(offset);
    }
    match SimDuration::parse(text) {
        Ok(d) if d <= MAX_DURATION => Ok(d),
        Ok(_) => Err(format!(
            "{text:?} is above the limit of {MAX_DURATION} for any duration (MAX_DURATION); {}",
            limits::HOW_TO_RAISE
        )),
        Err(e) => Err(format!(
            "expected an offset with a unit such as \"90m\", or a clock time such as \"09:00\" (with `[simulation] start`), found {text:?}: {e}"
        )),
    }
}

/// A `Ty::Time` value: see [`time_of_text`].
pub(super) fn read_time(ctx: &mut Ctx<'_>, node: &Node, key: &str) -> Option<SimDuration> {
    match &node.value {
        Value::String(text) => match time_of_text(ctx.start.as_ref(), text) {
            Ok(d) => Some(d),
            Err(message) => {
                ctx.push(node.origin.clone(), key, message);
                None
            }
        },
        _ => read_duration(ctx, node, key),
    }
}

/// `[[schedules]]`, compiled over a run of `duration` (a profile needs the start).
pub(super) fn read_schedules(
    ctx: &mut Ctx<'_>,
    node: Option<&Node>,
    duration: Option<SimDuration>,
    names: &mut Names,
) -> Vec<Schedule> {
    let mut schedules = Vec::new();
    let Some(node) = node else {
        return schedules;
    };
    for mut obj in read_table_array(
        ctx,
        node,
        "schedules",
        &spec::SCHEDULES,
        &limits::MAX_SCHEDULES,
    ) {
        let name_node = obj.required(ctx, "name", "a schedule name");
        let name = name_node
            .and_then(|n| super::read_name(ctx, n, &obj.key("name")).map(|v| (v, n)))
            .filter(|(v, n)| claim_name(ctx, names, v, n, &obj.key("name"), "schedule"))
            .map(|(v, _)| v);
        let points_node = obj.node("points");
        let interpolation_node = obj.node("interpolation");
        let profile_node = obj.node("profile");
        let curve = match (points_node, profile_node) {
            (Some(points), None) => {
                let interpolation = match interpolation_node {
                    Some(n) => read_choice(
                        ctx,
                        n,
                        &obj.key("interpolation"),
                        &[
                            ("step", Interpolation::Step),
                            ("linear", Interpolation::Linear),
                        ],
                    ),
                    None => Some(Interpolation::Step),
                };
                interpolation.and_then(|i| read_points(ctx, points, &obj.key("points"), i))
            }
            (None, Some(profile)) => {
                if let Some(n) = interpolation_node {
                    ctx.push(
                        n.origin.clone(),
                        &obj.key("interpolation"),
                        "`interpolation` applies to `points`; a profile is smooth".into(),
                    );
                }
                read_profile(ctx, profile, &obj.key("profile"), duration)
            }
            (Some(n), Some(_)) => {
                ctx.push(
                    n.origin.clone(),
                    &obj.key("points"),
                    "a schedule has either `points` or `profile`, not both".into(),
                );
                None
            }
            (None, None) => {
                ctx.push(
                    obj_origin(&obj),
                    &obj.key("points"),
                    "a schedule needs `points` (a list of [time, multiplier]) or a `profile`"
                        .into(),
                );
                None
            }
        };
        obj.finish(ctx);
        if let (Some(name), Some(curve)) = (name, curve) {
            names.insert(name.clone(), Some(schedules.len()));
            schedules.push(Schedule { name, curve });
        }
    }
    schedules
}

fn obj_origin(obj: &Obj<'_>) -> crate::scenario::tree::Origin {
    obj.origin.clone()
}

/// A schedule's `points`: `[[time, multiplier], ...]`.
fn read_points(
    ctx: &mut Ctx<'_>,
    node: &Node,
    key: &str,
    interpolation: Interpolation,
) -> Option<RateCurve> {
    let what = "a list of [time, multiplier] pairs, such as [[\"0s\", 0.2], [\"09:00\", 1.0]]";
    let Value::Array(items) = &node.value else {
        type_error(ctx, node, key, what);
        return None;
    };
    if items.len() as u64 > limits::MAX_SCHEDULE_POINTS.max_int() {
        ctx.push(
            node.origin.clone(),
            key,
            format!(
                "too many points: {}",
                limits::MAX_SCHEDULE_POINTS.exceeded(items.len())
            ),
        );
        return None;
    }
    let mut points = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let item_key = format!("{key}[{i}]");
        let pair = match &item.value {
            Value::Array(pair) if pair.len() == 2 => pair,
            _ => {
                type_error(ctx, item, &item_key, "a pair [time, multiplier]");
                ok = false;
                continue;
            }
        };
        let at = read_time(ctx, &pair[0], &format!("{item_key}[0]"));
        let multiplier = match pair[1].value {
            Value::Integer(v) if v >= 0 => Some(v as f64),
            Value::Float(v) if v.is_finite() && v >= 0.0 => Some(v),
            _ => {
                type_error(
                    ctx,
                    &pair[1],
                    &format!("{item_key}[1]"),
                    "a multiplier of 0 or more",
                );
                None
            }
        };
        let multiplier = multiplier.filter(|&m| {
            let fits = m <= limits::MAX_MULTIPLIER.max;
            if !fits {
                ctx.push(
                    pair[1].origin.clone(),
                    &format!("{item_key}[1]"),
                    format!(
                        "expected a multiplier: {}",
                        limits::MAX_MULTIPLIER.exceeded(m)
                    ),
                );
            }
            fits
        });
        match (at, multiplier) {
            (Some(at), Some(m)) => points.push((SimTime::ZERO + at, m)),
            _ => ok = false,
        }
    }
    if !ok {
        return None;
    }
    match RateCurve::from_points(&points, interpolation) {
        Ok(curve) => Some(curve),
        Err(e) => {
            let origin = e
                .point
                .and_then(|i| items.get(i))
                .map_or(node.origin.clone(), |n| n.origin.clone());
            ctx.push(origin, key, e.to_string());
            None
        }
    }
}

/// A schedule's `profile`, compiled over `[0, duration]` from the start.
fn read_profile(
    ctx: &mut Ctx<'_>,
    node: &Node,
    key: &str,
    duration: Option<SimDuration>,
) -> Option<RateCurve> {
    let mut obj = read_table(ctx, node, key, "a profile table", &spec::PROFILE)?;
    let peak_node = obj.required(ctx, "peak", "a time of day such as \"14:00\"");
    let peak = peak_node.and_then(|n| {
        let text = read_string(ctx, n, &obj.key("peak"), "a time of day such as \"14:00\"")?;
        match crate::clock::time_of_day(&text) {
            Ok(d) => Some(d),
            Err(e) => {
                ctx.push(n.origin.clone(), &obj.key("peak"), e.message);
                None
            }
        }
    });
    let trough = obj
        .required(
            ctx,
            "trough_ratio",
            "the trough's share of the peak rate, 0 to 1",
        )
        .and_then(|n| {
            super::read_fraction(
                ctx,
                n,
                &obj.key("trough_ratio"),
                "the trough's share of the peak",
            )
        });
    let weekend = obj.or(ctx, "weekend_factor", 1.0, |c, n, k| {
        read_positive(c, n, k, &limits::MAX_MULTIPLIER, "a multiplier on weekends")
    });
    obj.finish(ctx);
    let (peak, trough, weekend, duration) = (peak?, trough?, weekend?, duration?);
    let Some(start) = ctx.start else {
        ctx.push(
            node.origin.clone(),
            key,
            "a daily profile needs `[simulation] start` (such as start = \"2026-03-02T08:00:00Z\"): the clock decides where the day's peak falls".into(),
        );
        return None;
    };
    match DailyProfile::new(peak, trough, weekend) {
        Ok(profile) => Some(profile.compile(&start, duration)),
        Err(e) => {
            ctx.push(node.origin.clone(), key, e);
            None
        }
    }
}

/// A tenant's `arrival` table, and its size law when `rate` is a size table.
pub(super) fn read_arrival(
    ctx: &mut Ctx<'_>,
    node: &Node,
    key: &str,
) -> Option<(Arrival, Option<SizeLaw>)> {
    let mut obj = read_table(ctx, node, key, "an arrival table", &spec::ARRIVAL)?;
    let what = "\"poisson\", \"constant\", \"mmpp\" or \"renewal\"";
    let kind = match obj.node("process") {
        Some(n) => {
            let word = read_string(ctx, n, &obj.key("process"), what)?;
            if !spec::PROCESSES.contains(&word.as_str()) {
                ctx.push(
                    n.origin.clone(),
                    &obj.key("process"),
                    format!("expected {what}, found {word:?}"),
                );
                return None;
            }
            word
        }
        None => "poisson".to_string(),
    };
    obj.set_variant(&kind);
    let result = match kind.as_str() {
        "mmpp" => read_mmpp(ctx, &mut obj).map(|(m, rate)| {
            (
                Arrival {
                    process: ArrivalProcess::Mmpp(m),
                    rate,
                },
                None,
            )
        }),
        _ => {
            let rate = obj
                .required(ctx, "rate", "requests per second")
                .and_then(|n| read_rate(ctx, n, &obj.key("rate")));
            let process = match kind.as_str() {
                "renewal" => read_renewal(ctx, &mut obj),
                "constant" => Some(ArrivalProcess::Constant),
                _ => Some(ArrivalProcess::Poisson),
            };
            match (rate, process) {
                (Some((rate, law)), Some(process)) => Some((Arrival { process, rate }, law)),
                _ => None,
            }
        }
    };
    obj.finish(ctx);
    result
}

/// A rate: a number, or a size table (`{ dist = "lognormal", median, p99 }`); for a size
/// table, the rate is the law's median-ish representative (replaced per member).
fn read_rate(ctx: &mut Ctx<'_>, node: &Node, key: &str) -> Option<(f64, Option<SizeLaw>)> {
    if !matches!(node.value, Value::Table(_)) {
        return read_positive(ctx, node, key, &limits::MAX_RATE, "requests per second")
            .map(|r| (r, None));
    }
    let mut obj = read_table(ctx, node, key, "a size table", &spec::SIZE)?;
    let laws = "\"lognormal\", \"pareto\" or \"zipf\"";
    let dist_node = obj.required(ctx, "dist", laws)?;
    let dist = read_string(ctx, dist_node, &obj.key("dist"), laws)?;
    obj.set_variant(&dist);
    let number = |obj: &mut Obj<'_>, ctx: &mut Ctx<'_>, name: &'static str, limit| {
        obj.required(ctx, name, "a positive number")
            .and_then(|n| read_positive(ctx, n, &obj.key(name), limit, "a positive number"))
    };
    let law = match dist.as_str() {
        "lognormal" => {
            let median = number(&mut obj, ctx, "median", &limits::MAX_RATE);
            let p99 = number(&mut obj, ctx, "p99", &limits::MAX_RATE);
            median.zip(p99).map(|(m, p)| SizeLaw::log_normal(m, p))
        }
        "pareto" => {
            let scale = number(&mut obj, ctx, "scale", &limits::MAX_RATE);
            let shape = number(&mut obj, ctx, "shape", &limits::MAX_ZIPF);
            let cap = obj.or(ctx, "cap", None, |c, n, k| {
                read_positive(c, n, k, &limits::MAX_RATE, "the largest rate").map(Some)
            });
            match (scale, shape, cap) {
                (Some(s), Some(a), Some(cap)) => Some(SizeLaw::pareto(s, a, cap)),
                _ => None,
            }
        }
        "zipf" => {
            let top = number(&mut obj, ctx, "top", &limits::MAX_RATE);
            let exponent = obj.or(ctx, "exponent", 1.0, |c, n, k| {
                read_positive(c, n, k, &limits::MAX_ZIPF, "an exponent")
            });
            top.zip(exponent).map(|(t, s)| SizeLaw::zipf(t, s))
        }
        other => {
            ctx.push(
                dist_node.origin.clone(),
                &obj.key("dist"),
                format!("unknown size law {other:?}; expected {laws}"),
            );
            None
        }
    };
    obj.finish(ctx);
    match law? {
        Ok(law) => {
            let representative = law.quantile(0.5);
            if law.quantile(0.999_999) > limits::MAX_RATE.max
                || matches!(law, SizeLaw::Zipf { top, .. } if top > limits::MAX_RATE.max)
            {
                ctx.push(
                    node.origin.clone(),
                    key,
                    format!(
                        "the size law reaches rates above the limit: {} (add a `cap` to a Pareto law)",
                        limits::MAX_RATE.exceeded(law.quantile(0.999_999))
                    ),
                );
                return None;
            }
            Some((representative, Some(law)))
        }
        Err(e) => {
            ctx.push(node.origin.clone(), key, e);
            None
        }
    }
}

fn read_mmpp(ctx: &mut Ctx<'_>, obj: &mut Obj<'_>) -> Option<(Mmpp, f64)> {
    let rates_node = obj.required(ctx, "rates", "two rates, such as [5, 200]");
    let sojourns_node = obj.required(ctx, "sojourns", "two durations, such as [\"10m\", \"30s\"]");
    let rates = rates_node.and_then(|n| {
        let pair = pair_of(ctx, n, &obj.key("rates"), "two rates, such as [5, 200]")?;
        let mut out = [0.0; 2];
        for (i, item) in pair.iter().enumerate() {
            let key = format!("{}[{i}]", obj.key("rates"));
            out[i] = match item.value {
                Value::Integer(v) if v >= 0 => v as f64,
                Value::Float(v) if v.is_finite() && v >= 0.0 => v,
                _ => {
                    type_error(ctx, item, &key, "a rate of 0 or more");
                    return None;
                }
            };
            if out[i] > limits::MAX_RATE.max {
                ctx.push(
                    item.origin.clone(),
                    &key,
                    format!("expected a rate: {}", limits::MAX_RATE.exceeded(out[i])),
                );
                return None;
            }
        }
        Some(out)
    });
    let sojourns = sojourns_node.and_then(|n| {
        let pair = pair_of(ctx, n, &obj.key("sojourns"), "two durations")?;
        let a = read_positive_duration(ctx, &pair[0], &format!("{}[0]", obj.key("sojourns")));
        let b = read_positive_duration(ctx, &pair[1], &format!("{}[1]", obj.key("sojourns")));
        Some([a?, b?])
    });
    let (rates, sojourns, node) = (rates?, sojourns?, rates_node?);
    match Mmpp::new(rates, sojourns) {
        Ok(m) => Some((m, m.mean_rate())),
        Err(e) => {
            ctx.push(node.origin.clone(), &obj.key("rates"), e);
            None
        }
    }
}

/// The two items of a two-element array.
fn pair_of<'n>(ctx: &mut Ctx<'_>, node: &'n Node, key: &str, what: &str) -> Option<&'n [Node]> {
    match &node.value {
        Value::Array(items) if items.len() == 2 => Some(items.as_slice()),
        _ => {
            type_error(ctx, node, key, what);
            None
        }
    }
}

fn read_renewal(ctx: &mut Ctx<'_>, obj: &mut Obj<'_>) -> Option<ArrivalProcess> {
    let cv_node = obj.required(ctx, "cv", "the gaps' coefficient of variation, such as 3");
    let cv = cv_node.and_then(|n| {
        read_positive(
            ctx,
            n,
            &obj.key("cv"),
            &limits::MAX_RENEWAL_CV,
            "a coefficient of variation",
        )
    });
    let law = obj.or(ctx, "gaps", GapLaw::Auto, |c, n, k| {
        read_choice(
            c,
            n,
            k,
            &[
                ("auto", GapLaw::Auto),
                ("gamma", GapLaw::Gamma),
                ("hyperexponential", GapLaw::Hyperexponential),
            ],
        )
    });
    let (cv, law, cv_node) = (cv?, law?, cv_node?);
    // The rate is checked and set by the caller; any positive one validates the shape.
    match Renewal::new(1.0, cv, law) {
        Ok(r) => Some(ArrivalProcess::Renewal(r)),
        Err(e) => {
            ctx.push(cv_node.origin.clone(), &obj.key("cv"), e);
            None
        }
    }
}
