//! Swarm testing: the `[explore]` table says which faults a seed may draw (kinds, how many,
//! when, how long, how strong); each seed draws its own schedule, rendered as ordinary
//! `[[faults]]` tables appended to the scenario text, so an explored run is an ordinary,
//! replayable, shrinkable scenario.
//!
//! ```toml
//! [explore]
//! count = [1, 3]              # faults per seed
//! at = ["20s", "90s"]         # start times
//! duration = ["5s", "40s"]    # lengths
//! kinds = [
//!   { kind = "load_spike", multiplier = [2, 20] },
//!   { kind = "db_slowdown", factor = [2, 10] },
//!   { kind = "cell_outage" },
//! ]
//! ```
//! Targets (tenant, cell, database, region) are drawn among the scenario's own.

use rand::Rng;

use super::limits;
use super::tree::{Node, Origin, Table, Value};
use crate::kernel::rng::{Stream, Streams, unit_open};
use crate::model::config::System;
use crate::time::SimDuration;

/// One problem in an `[explore]` table: where, which key, what was expected.
pub type ExploreError = (Origin, String, String);

/// A kind of fault exploration may draw, with its intensity range.
#[derive(Clone, Debug, PartialEq)]
pub enum KindSpec {
    /// `load_spike` on a random tenant.
    LoadSpike {
        /// Multiplier range.
        multiplier: (f64, f64),
    },
    /// `cell_outage` of a random cell.
    CellOutage,
    /// `region_outage` of a random region.
    RegionOutage {
        /// Fraction range.
        fraction: (f64, f64),
    },
    /// `db_slowdown` of a random database.
    DbSlowdown {
        /// Factor range.
        factor: (f64, f64),
    },
    /// `kms_key_disabled` for a random tenant.
    KmsKeyDisabled,
    /// `partition` between the edge and the mapping store.
    Partition,
    /// `control_plane_outage`.
    ControlPlaneOutage,
    /// `dependency_errors` on KMS or a random database.
    DependencyErrors {
        /// Error-rate range.
        rate: (f64, f64),
    },
    /// `poison_jobs` for a random tenant that submits jobs.
    PoisonJobs {
        /// Poisoned-fraction range.
        fraction: (f64, f64),
    },
}

/// The `[explore]` table.
#[derive(Clone, Debug, PartialEq)]
pub struct ExploreSpec {
    /// Faults per seed, inclusive range.
    pub count: (u32, u32),
    /// Start-time range.
    pub at: (SimDuration, SimDuration),
    /// Duration range.
    pub duration: (SimDuration, SimDuration),
    /// Kinds to draw from (uniformly).
    pub kinds: Vec<KindSpec>,
}

/// One drawn fault, ready to render as a `[[faults]]` table.
#[derive(Clone, Debug, PartialEq)]
pub struct DrawnFault {
    /// `explore-1`, `explore-2`, ...
    pub name: String,
    /// Fault kind as written in scenario files.
    pub kind: &'static str,
    /// The kind-specific keys, rendered (`tenant = "heavy"`, `multiplier = 7.5`).
    pub fields: Vec<(String, String)>,
    /// Start.
    pub at: SimDuration,
    /// Length.
    pub duration: SimDuration,
    /// For a `load_spike`: the tenant (index) and the multiplier, so the work a seed will do
    /// can be estimated before it runs.
    pub spike: Option<(usize, f64)>,
}

fn err(node: &Node, key: &str, message: impl Into<String>) -> ExploreError {
    (node.origin.clone(), key.to_string(), message.into())
}

fn number(node: &Node) -> Option<f64> {
    match node.value {
        Value::Integer(i) => Some(i as f64),
        Value::Float(x) if x.is_finite() => Some(x),
        _ => None,
    }
}

fn range<T: PartialOrd + Copy>(
    node: &Node,
    key: &str,
    what: &str,
    item: impl Fn(&Node) -> Option<T>,
) -> Result<(T, T), ExploreError> {
    let bad = || err(node, key, format!("expected a range [min, max] of {what}"));
    let Value::Array(items) = &node.value else {
        return Err(bad());
    };
    let [lo, hi] = items.as_slice() else {
        return Err(bad());
    };
    let (lo, hi) = (item(lo).ok_or_else(bad)?, item(hi).ok_or_else(bad)?);
    if lo > hi {
        return Err(err(
            node,
            key,
            format!("expected min <= max in the range of {what}"),
        ));
    }
    Ok((lo, hi))
}

fn duration(node: &Node) -> Option<SimDuration> {
    match &node.value {
        Value::String(s) => SimDuration::parse(s).ok(),
        _ => None,
    }
}

/// Reads the `[explore]` table.
pub fn parse(node: &Node) -> Result<ExploreSpec, Vec<ExploreError>> {
    let Value::Table(table) = &node.value else {
        return Err(vec![err(node, "explore", "expected the [explore] table")]);
    };
    let mut errors = Vec::new();
    let known = ["count", "at", "duration", "kinds"];
    for e in &table.entries {
        if !known.contains(&e.key.as_str()) {
            errors.push((
                e.key_origin.clone(),
                format!("explore.{}", e.key),
                format!(
                    "unknown key `{}` (expected one of: {})",
                    e.key,
                    known.join(", ")
                ),
            ));
        }
    }
    let get = |key: &str| table.get(key);
    let count = match get("count") {
        Some(n) => range(n, "explore.count", "fault counts", |v| match v.value {
            Value::Integer(i) if i >= 0 => Some(i),
            _ => None,
        })
        .and_then(|(lo, hi)| {
            let limit = limits::MAX_EXPLORE_FAULTS;
            if hi > limit.max_int() as i64 {
                return Err(err(n, "explore.count", limit.exceeded(hi)));
            }
            // Both fit: at most the limit, which is far below u32::MAX.
            Ok((lo as u32, hi as u32))
        }),
        None => Ok((1, 1)),
    };
    let required = |key: &str, what: &str| {
        get(key).ok_or_else(|| {
            err(
                node,
                &format!("explore.{key}"),
                format!("missing `{key}`: expected {what}"),
            )
        })
    };
    let at = required("at", "a range of start times such as [\"20s\", \"90s\"]")
        .and_then(|n| range(n, "explore.at", "durations such as \"20s\"", duration));
    let length = required("duration", "a range of lengths such as [\"5s\", \"40s\"]")
        .and_then(|n| range(n, "explore.duration", "durations such as \"5s\"", duration));
    let kinds = required(
        "kinds",
        "a list such as [{ kind = \"load_spike\", multiplier = [2, 20] }]",
    )
    .map_err(|e| vec![e])
    .and_then(parse_kinds);
    let (count, at, length, kinds) = match (count, at, length, kinds) {
        (Ok(c), Ok(a), Ok(d), Ok(k)) => (c, a, d, k),
        (c, a, d, k) => {
            errors.extend(c.err());
            errors.extend(a.err());
            errors.extend(d.err());
            errors.extend(k.err().into_iter().flatten());
            return Err(errors);
        }
    };
    if length.0 == SimDuration::ZERO {
        errors.push(err(
            node,
            "explore.duration",
            "expected faults lasting more than 0s",
        ));
    }
    if errors.is_empty() {
        Ok(ExploreSpec {
            count,
            at,
            duration: length,
            kinds,
        })
    } else {
        Err(errors)
    }
}

fn parse_kinds(node: &Node) -> Result<Vec<KindSpec>, Vec<ExploreError>> {
    let Value::Array(items) = &node.value else {
        return Err(vec![err(
            node,
            "explore.kinds",
            "expected a list of { kind = ... } tables",
        )]);
    };
    if items.is_empty() {
        return Err(vec![err(
            node,
            "explore.kinds",
            "expected at least one kind",
        )]);
    }
    let mut kinds = Vec::new();
    let mut errors = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let key = format!("explore.kinds[{i}]");
        let Value::Table(t) = &item.value else {
            errors.push(err(
                item,
                &key,
                "expected a table such as { kind = \"cell_outage\" }",
            ));
            continue;
        };
        match parse_kind(item, t, &key) {
            Ok(k) => kinds.push(k),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(kinds)
    } else {
        Err(errors)
    }
}

/// The fault kinds `[explore]` can draw, as `kinds` names them (every one is parsed by
/// `parse_kind`; a test holds the two together).
pub const EXPLORABLE_KINDS: [&str; 9] = [
    "load_spike",
    "cell_outage",
    "region_outage",
    "db_slowdown",
    "kms_key_disabled",
    "partition",
    "control_plane_outage",
    "dependency_errors",
    "poison_jobs",
];

fn parse_kind(node: &Node, t: &Table, key: &str) -> Result<KindSpec, ExploreError> {
    let kind = match t.get("kind").map(|n| &n.value) {
        Some(Value::String(s)) => s.as_str(),
        _ => {
            return Err(err(
                node,
                &format!("{key}.kind"),
                "expected a fault kind such as \"load_spike\"",
            ));
        }
    };
    let intensity =
        |name: &str, default: (f64, f64), what: &str| -> Result<(f64, f64), ExploreError> {
            match t.get(name) {
                Some(n) => range(n, &format!("{key}.{name}"), what, number),
                None => Ok(default),
            }
        };
    let allowed: &[&str] = match kind {
        "load_spike" => &["kind", "multiplier"],
        "region_outage" => &["kind", "fraction"],
        "db_slowdown" => &["kind", "factor"],
        "dependency_errors" => &["kind", "rate"],
        "poison_jobs" => &["kind", "fraction"],
        _ => &["kind"],
    };
    if let Some(extra) = t
        .entries
        .iter()
        .find(|e| !allowed.contains(&e.key.as_str()))
    {
        return Err((
            extra.key_origin.clone(),
            format!("{key}.{}", extra.key),
            format!(
                "unknown key `{}` for {kind} (expected one of: {})",
                extra.key,
                allowed.join(", ")
            ),
        ));
    }
    Ok(match kind {
        "load_spike" => KindSpec::LoadSpike {
            multiplier: intensity("multiplier", (2.0, 10.0), "multipliers")?,
        },
        "cell_outage" => KindSpec::CellOutage,
        "region_outage" => KindSpec::RegionOutage {
            fraction: intensity("fraction", (0.5, 0.5), "fractions")?,
        },
        "db_slowdown" => KindSpec::DbSlowdown {
            factor: intensity("factor", (2.0, 10.0), "factors")?,
        },
        "kms_key_disabled" => KindSpec::KmsKeyDisabled,
        "partition" => KindSpec::Partition,
        "control_plane_outage" => KindSpec::ControlPlaneOutage,
        "dependency_errors" => KindSpec::DependencyErrors {
            rate: intensity("rate", (0.1, 0.5), "error rates")?,
        },
        "poison_jobs" => KindSpec::PoisonJobs {
            fraction: intensity("fraction", (1.0, 1.0), "fractions")?,
        },
        other => {
            // Only migrate_tenant gets the note: it is the one name users take for a fault.
            let why = if other == "migrate_tenant" {
                " (migrate_tenant is an operation, not a fault)"
            } else {
                ""
            };
            return Err(err(
                node,
                &format!("{key}.kind"),
                format!(
                    "fault kind {other:?} cannot be explored{why}; expected one of: {}",
                    EXPLORABLE_KINDS.join(", ")
                ),
            ));
        }
    })
}

fn pick(stream: &mut Stream, n: usize) -> usize {
    crate::components::draw::uniform_inclusive(stream.next_u64(), n as u64 - 1) as usize
}

/// A value in `[lo, hi]` at `decimals` places. Rounded, then kept within the range, so that a
/// range whose ends are valid for the fault (as the loader checks) never draws an invalid
/// value: `[0.01, 0.04]` would otherwise round to a multiplier of 0.
fn between(stream: &mut Stream, (lo, hi): (f64, f64), decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (((lo + (hi - lo) * unit_open(stream.next_u64())) * scale).round() / scale).clamp(lo, hi)
}

fn seconds_between(stream: &mut Stream, (lo, hi): (SimDuration, SimDuration)) -> SimDuration {
    let (lo, hi) = (lo.as_nanos() / 1_000_000_000, hi.as_nanos() / 1_000_000_000);
    SimDuration::from_secs(
        lo + crate::components::draw::uniform_inclusive(stream.next_u64(), hi.saturating_sub(lo)),
    )
}

/// Draws the fault schedule of `seed` (from the seed's own `explore` stream), with targets
/// among `system`'s tenants, cells, databases and regions. A kind with no possible target
/// (no database to slow down, no tenant with jobs to poison) is skipped.
pub fn draw(spec: &ExploreSpec, system: &System, seed: u64) -> Vec<DrawnFault> {
    let mut stream = Streams::new(seed).stream("explore", 0);
    let n = spec.count.0
        + crate::components::draw::uniform_inclusive(
            stream.next_u64(),
            u64::from(spec.count.1 - spec.count.0),
        ) as u32;
    let quote = |s: &str| format!("{s:?}");
    let mut regions: Vec<&str> = system.cells.iter().map(|c| c.region.as_str()).collect();
    regions.sort_unstable();
    regions.dedup();
    let job_tenants: Vec<usize> = (0..system.tenants.len())
        .filter(|&t| system.tenants[t].jobs.is_some())
        .collect();
    let mut faults = Vec::new();
    for i in 0..n {
        let kind = &spec.kinds[pick(&mut stream, spec.kinds.len())];
        let at = seconds_between(&mut stream, spec.at);
        let duration = seconds_between(&mut stream, spec.duration).max(SimDuration::from_secs(1));
        let tenant =
            |stream: &mut Stream| quote(&system.tenants[pick(stream, system.tenants.len())].name);
        let mut spike = None;
        let (name, fields): (&'static str, Vec<(String, String)>) = match kind {
            KindSpec::LoadSpike { multiplier } => {
                let target = pick(&mut stream, system.tenants.len());
                let multiplier = between(&mut stream, *multiplier, 1);
                spike = Some((target, multiplier));
                (
                    "load_spike",
                    vec![
                        ("tenant".into(), quote(&system.tenants[target].name)),
                        ("multiplier".into(), format!("{multiplier:?}")),
                    ],
                )
            }
            KindSpec::CellOutage => (
                "cell_outage",
                vec![(
                    "cell".into(),
                    quote(&system.cells[pick(&mut stream, system.cells.len())].name),
                )],
            ),
            KindSpec::RegionOutage { fraction } => (
                "region_outage",
                vec![
                    (
                        "region".into(),
                        quote(regions[pick(&mut stream, regions.len())]),
                    ),
                    (
                        "fraction".into(),
                        format!("{:?}", between(&mut stream, *fraction, 2)),
                    ),
                ],
            ),
            KindSpec::DbSlowdown { factor } if !system.databases.is_empty() => (
                "db_slowdown",
                vec![
                    (
                        "database".into(),
                        quote(&system.databases[pick(&mut stream, system.databases.len())].name),
                    ),
                    (
                        "factor".into(),
                        format!("{:?}", between(&mut stream, *factor, 1)),
                    ),
                ],
            ),
            KindSpec::KmsKeyDisabled => (
                "kms_key_disabled",
                vec![("tenant".into(), tenant(&mut stream))],
            ),
            KindSpec::Partition => (
                "partition",
                vec![("between".into(), "[\"edge\", \"mapping_store\"]".into())],
            ),
            KindSpec::ControlPlaneOutage => ("control_plane_outage", Vec::new()),
            KindSpec::DependencyErrors { rate } => {
                let choices = system.databases.len() + usize::from(system.kms.enabled);
                if choices == 0 {
                    continue;
                }
                let which = pick(&mut stream, choices);
                let dependency = match system.databases.get(which) {
                    Some(db) => quote(&db.name),
                    None => quote("kms"),
                };
                (
                    "dependency_errors",
                    vec![
                        ("dependency".into(), dependency),
                        (
                            "rate".into(),
                            format!("{:?}", between(&mut stream, *rate, 2)),
                        ),
                    ],
                )
            }
            KindSpec::PoisonJobs { fraction } if !job_tenants.is_empty() => (
                "poison_jobs",
                vec![
                    (
                        "tenant".into(),
                        quote(
                            &system.tenants[job_tenants[pick(&mut stream, job_tenants.len())]].name,
                        ),
                    ),
                    (
                        "fraction".into(),
                        format!("{:?}", between(&mut stream, *fraction, 2)),
                    ),
                ],
            ),
            KindSpec::DbSlowdown { .. } | KindSpec::PoisonJobs { .. } => continue,
        };
        faults.push(DrawnFault {
            name: format!("explore-{}", i + 1),
            kind: name,
            fields,
            at,
            duration,
            spike,
        });
    }
    faults
}

/// The comment line that heads the drawn faults of `seed` in its scenario file; the CLI
/// recognises the `seed-N.toml` files it wrote by it.
pub fn marker(seed: u64) -> String {
    format!("# Faults drawn by `simulate explore` for seed {seed}.")
}

/// The drawn faults as `[[faults]]` tables, to append to the scenario text.
pub fn render(faults: &[DrawnFault], seed: u64) -> String {
    let mut out = format!("\n{}\n", marker(seed));
    for f in faults {
        out.push_str(&format!(
            "\n[[faults]]\nname = \"{}\"\nkind = \"{}\"\n",
            f.name, f.kind
        ));
        for (k, v) in &f.fields {
            out.push_str(&format!("{k} = {v}\n"));
        }
        out.push_str(&format!(
            "at = \"{}\"\nduration = \"{}\"\n",
            f.at, f.duration
        ));
    }
    out
}

/// A one-line description of a drawn fault: `explore-1 load_spike tenant="a" multiplier=7.5 at 34s for 21s`.
pub fn describe(f: &DrawnFault) -> String {
    let fields: Vec<String> = f.fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(
        "{} {} {} at {} for {}",
        f.name,
        f.kind,
        fields.join(" "),
        f.at,
        f.duration
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A drawn intensity stays within its range even when the range's ends are finer than the
    /// draw's decimals (rounded alone, `[0.01, 0.04]` draws 0.0, a multiplier no fault may
    /// have), and lands on the draw's precision when the ends do.
    #[test]
    fn draws_stay_within_their_range() {
        let mut stream = Streams::new(7).stream("explore", 0);
        for _ in 0..1_000 {
            let fine = between(&mut stream, (0.01, 0.04), 1);
            assert!((0.01..=0.04).contains(&fine), "{fine}");
            let whole = between(&mut stream, (2.0, 30.0), 1);
            assert!((2.0..=30.0).contains(&whole), "{whole}");
            assert_eq!((whole * 10.0).round() / 10.0, whole);
        }
    }

    fn explore_table(text: &str) -> Node {
        let root = super::super::tree::parse_document(text).expect("valid TOML");
        root.get("explore").expect("an [explore] table").clone()
    }

    /// Every kind the refusal lists is one `parse_kind` reads, and a kind it cannot read is
    /// refused with that list.
    #[test]
    fn the_listed_kinds_are_the_explorable_ones() {
        for kind in EXPLORABLE_KINDS {
            let text = format!(
                "[explore]\nat = [\"1s\", \"2s\"]\nduration = [\"1s\", \"2s\"]\n\
                 kinds = [{{ kind = \"{kind}\" }}]\n"
            );
            assert!(parse(&explore_table(&text)).is_ok(), "{kind}");
        }
        let text = "[explore]\nat = [\"1s\", \"2s\"]\nduration = [\"1s\", \"2s\"]\n\
                    kinds = [{ kind = \"cache_flush\" }]\n";
        let errors = parse(&explore_table(text)).expect_err("cache_flush is not explorable");
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].2.contains("expected one of: load_spike"),
            "{}",
            errors[0].2
        );
        assert!(!errors[0].2.contains("migrate_tenant"), "{}", errors[0].2);
    }

    /// A count above the limit is refused naming the limit, not as a malformed range.
    #[test]
    fn a_count_above_the_limit_names_it() {
        let text = "[explore]\ncount = [1, 1000000]\nat = [\"1s\", \"2s\"]\n\
                    duration = [\"1s\", \"2s\"]\nkinds = [{ kind = \"cell_outage\" }]\n";
        let errors = parse(&explore_table(text)).expect_err("over the limit");
        assert!(
            errors[0].2.contains("MAX_EXPLORE_FAULTS"),
            "{}",
            errors[0].2
        );
        let at_limit = text.replace("1000000", "100");
        assert!(parse(&explore_table(&at_limit)).is_ok());
    }
}
