//! The scenario loader: reads typed, validated values from the spanned tree.
//!
//! Strict by design: unknown keys (with a "did you mean"), wrong types, bad units, non-positive
//! rates and sizes, dangling references, duplicate names and empty windows are all errors. The
//! loader keeps going after an error so one run reports every problem it can find, each with
//! file, line, column, the dotted key and what was expected.

mod lifecycle;
mod replayed;
mod services;
mod tables;
mod topology;
mod workload;

use crate::text::printable;
use std::collections::{BTreeMap, BTreeSet};

use super::expect::parse_expectation;
use super::limits::{self, Limit, MAX_ATTEMPTS, MAX_DB_QUERIES, MAX_DURATION, MAX_TENANTS};
use super::spec::{self, TableSpec};
use super::tree::{self, Node, Origin, Table, Value};
use super::{Diagnostic, Scenario, ScenarioError, Scope, Slo};
use crate::components::limiter::Quota;
use crate::components::retry::{Backoff, BudgetConfig, RetryBudget, RetryPolicy};
use crate::model::config::{
    ApiPool, Arrival, BreakerKey, Breakers, Cell, ConfigLookup, Database, Dependency, Edge,
    Failover, FailoverPolicy, Fault, FaultKind, JobLoad, JobPool, Kms, MappingPolicy, Migration,
    Placement, SchedulerMode, Simulation, System, Tenant, TenantGroup, Tier, Window,
};
use crate::model::dist::Dist;
use crate::model::metrics::slot as metric_slot;
use crate::model::topology::{CellGroup, Class, Program};
use crate::time::{SimDuration, SimTime};

/// How to load a scenario.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// The file name used in messages.
    pub path: String,
    /// `--set PATH=VALUE` overrides, in order.
    pub overrides: Vec<String>,
    /// `--seed`, which replaces `simulation.seed`.
    pub seed: Option<u64>,
    /// Reads the files the scenario names (tenant tables, a replayed log); `None` refuses
    /// such scenarios with an error that says so.
    pub files: Option<super::inputs::Files>,
}

/// Default `min_samples` of an SLO.
pub const DEFAULT_MIN_SAMPLES: u64 = 100;

/// Reads a scenario from `text` (the contents of `options.path`) with the overrides applied.
pub fn load(text: &str, options: &LoadOptions) -> Result<Scenario, ScenarioError> {
    let mut ctx = Ctx {
        path: &options.path,
        text,
        overrides: &options.overrides,
        diagnostics: Vec::new(),
        start: None,
        files: options.files.as_ref(),
        inputs: Vec::new(),
    };
    if text.len() > limits::MAX_SCENARIO_BYTES.max_int() as usize {
        return Err(ScenarioError {
            diagnostics: vec![Diagnostic {
                location: format!("{}:1:1", options.path),
                key: String::new(),
                message: format!(
                    "the file is too large: {}",
                    limits::MAX_SCENARIO_BYTES.exceeded(text.len())
                ),
            }],
        });
    }
    if options.overrides.len() > limits::MAX_OVERRIDES.max_int() as usize {
        return Err(ScenarioError {
            diagnostics: vec![Diagnostic {
                location: "--set".to_string(),
                key: String::new(),
                message: format!(
                    "too many overrides: {}",
                    limits::MAX_OVERRIDES.exceeded(options.overrides.len())
                ),
            }],
        });
    }
    let mut root = match tree::parse_document(text) {
        Ok(root) => root,
        Err(e) => {
            // A parser error without a span is placed at the start of the file, so every
            // error still has a line and a column.
            let offset = e.span.as_ref().map_or(0, |s| s.start);
            return Err(ScenarioError {
                diagnostics: vec![Diagnostic {
                    location: printable(&ctx.location(&Origin::Span(offset..offset))),
                    key: printable(&tree::key_near(text, offset)),
                    message: printable(&format!("invalid TOML: {}", e.message)),
                }],
            });
        }
    };
    for (index, raw) in options.overrides.iter().enumerate() {
        let Some((path, value)) = raw.split_once('=') else {
            ctx.push(
                Origin::Override(index),
                raw,
                "an override is PATH=VALUE, as in `--set edge.rate_limiting=false`".into(),
            );
            continue;
        };
        let node = tree::parse_override_value(value.trim(), index);
        if let Err(message) = tree::apply_override(&mut root, path.trim(), node) {
            ctx.push(Origin::Override(index), path.trim(), message);
        }
    }
    let scenario = if ctx.diagnostics.is_empty() {
        read_scenario(&mut ctx, &root, options.seed)
    } else {
        None
    };
    match scenario {
        Some(s) if ctx.diagnostics.is_empty() => Ok(s),
        _ => {
            let mut diagnostics = ctx.diagnostics;
            diagnostics.sort_by_key(|(order, _)| *order);
            diagnostics.dedup_by(|a, b| a.1 == b.1);
            let hidden = diagnostics.len().saturating_sub(limits::MAX_DIAGNOSTICS);
            diagnostics.truncate(limits::MAX_DIAGNOSTICS);
            let mut diagnostics: Vec<Diagnostic> =
                diagnostics.into_iter().map(|(_, d)| d).collect();
            if hidden > 0 {
                diagnostics.push(Diagnostic {
                    location: format!("{}:1:1", options.path),
                    key: String::new(),
                    message: format!(
                        "{hidden} more errors not shown (at most {} are listed); fix these first",
                        limits::MAX_DIAGNOSTICS
                    ),
                });
            }
            Err(ScenarioError { diagnostics })
        }
    }
}

struct Ctx<'a> {
    path: &'a str,
    text: &'a str,
    overrides: &'a [String],
    diagnostics: Vec<((usize, usize), Diagnostic)>,
    /// `[simulation] start`, once read: clock times resolve against it.
    start: Option<crate::clock::ClockInstant>,
    /// Reads the files the scenario names.
    files: Option<&'a super::inputs::Files>,
    /// The files read so far, with their digests.
    inputs: Vec<super::inputs::InputFile>,
}

impl Ctx<'_> {
    /// `path` (as a scenario writes it) as seen from where the scenario was named: beside
    /// the scenario, so messages point at the file the user can open.
    fn beside(&self, path: &str) -> String {
        let file = std::path::Path::new(path);
        match std::path::Path::new(self.path).parent() {
            Some(folder) if file.is_relative() && !folder.as_os_str().is_empty() => {
                folder.join(file).display().to_string()
            }
            _ => path.to_string(),
        }
    }

    fn location(&self, origin: &Origin) -> String {
        match origin {
            Origin::Span(span) => {
                let (line, col) = tree::line_col(self.text, span.start);
                format!("{}:{line}:{col}", self.path)
            }
            Origin::Override(i) => format!(
                "--set {}",
                self.overrides.get(*i).map_or("?", String::as_str)
            ),
        }
    }

    /// A disagreement between the loader and its declaration in `spec`: a bug, reported like
    /// any error so it can never pass silently.
    fn internal(&mut self, origin: Origin, key: &str, what: &str) {
        self.push(
            origin,
            key,
            format!("internal error: {what} (a bug in tenantsim; please report it)"),
        );
    }

    /// A diagnostic located in another file (a tenant table, a request log), listed where
    /// the scenario names that file (`origin`).
    fn push_located(&mut self, origin: &Origin, diagnostic: Diagnostic) {
        let order = match origin {
            Origin::Span(span) => (0, span.start),
            Origin::Override(i) => (1, *i),
        };
        self.diagnostics.push((
            order,
            Diagnostic {
                location: printable(&diagnostic.location),
                key: printable(&diagnostic.key),
                message: printable(&diagnostic.message),
            },
        ));
    }

    fn push(&mut self, origin: Origin, key: &str, message: String) {
        let order = match &origin {
            Origin::Span(span) => (0, span.start),
            Origin::Override(i) => (1, *i),
        };
        // Keys and messages quote the file; control characters in them must not reach a
        // terminal (an escape sequence could rewrite what the user sees).
        let diagnostic = Diagnostic {
            location: printable(&self.location(&origin)),
            key: printable(key),
            message: printable(&message),
        };
        self.diagnostics.push((order, diagnostic));
    }
}

/// A table being read against its declaration in [`spec`]: keys the spec does not declare are
/// reported as unknown (with a suggestion), and the loader's own reads are checked against the
/// spec, so the schema and the loader cannot drift apart silently.
struct Obj<'t> {
    table: &'t Table,
    path: String,
    origin: Origin,
    spec: &'static TableSpec,
    /// The tag value that selects the table's variant keys (fault `kind`, `dist`).
    variant: Option<&'static str>,
    /// Keys the loader asked for.
    known: Vec<&'static str>,
}

impl<'t> Obj<'t> {
    fn new(table: &'t Table, path: String, origin: Origin, spec: &'static TableSpec) -> Self {
        Obj {
            table,
            path,
            origin,
            spec,
            variant: None,
            known: Vec::new(),
        }
    }

    fn key(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// Selects the variant keys for tag value `value` (one of the spec's cases).
    fn set_variant(&mut self, value: &str) {
        self.variant = self
            .spec
            .variants
            .and_then(|v| v.cases.iter().find(|c| c.value == value))
            .map(|c| c.value);
    }

    /// The declaration of `key`: a common key, or a key of any variant.
    fn declared(&self, key: &str) -> Option<&'static spec::Key> {
        self.spec.key(key, self.variant).or_else(|| {
            self.spec.variants.and_then(|v| {
                v.cases
                    .iter()
                    .find_map(|c| c.keys.iter().find(|k| k.name == key))
            })
        })
    }

    fn node(&mut self, key: &'static str) -> Option<&'t Node> {
        self.known.push(key);
        self.table.get(key)
    }

    fn required(&mut self, ctx: &mut Ctx<'_>, key: &'static str, what: &str) -> Option<&'t Node> {
        if !self.declared(key).is_some_and(|k| k.required) {
            ctx.internal(
                self.origin.clone(),
                &self.key(key),
                "the loader requires a key the scenario schema does not declare as required",
            );
        }
        self.needed(ctx, key, what)
    }

    /// A key the schema declares optional that this table needs (`tier` without `table`).
    fn needed(&mut self, ctx: &mut Ctx<'_>, key: &'static str, what: &str) -> Option<&'t Node> {
        let node = self.node(key);
        if node.is_none() {
            let place = if self.path.is_empty() {
                "the scenario".to_string()
            } else {
                format!("`{}`", self.path)
            };
            ctx.push(
                self.origin.clone(),
                &self.key(key),
                format!("missing required key `{key}` in {place}: expected {what}"),
            );
        }
        node
    }

    /// The value of an optional key read with `read`, or `default` when the key is absent.
    /// `None` means the key was present but invalid (already reported).
    fn or<T>(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: &'static str,
        default: T,
        read: impl FnOnce(&mut Ctx<'_>, &Node, &str) -> Option<T>,
    ) -> Option<T> {
        match self.node(key) {
            Some(n) => {
                let full = self.key(key);
                read(ctx, n, &full)
            }
            None => Some(default),
        }
    }

    /// Reports keys the spec does not declare (with a suggestion), and any disagreement
    /// between what the loader read and what the spec declares.
    fn finish(&self, ctx: &mut Ctx<'_>) {
        let accepted = self.spec.names(self.variant);
        for &read in &self.known {
            if self.declared(read).is_none() {
                ctx.internal(
                    self.origin.clone(),
                    &self.key(read),
                    "the loader reads a key the scenario schema does not declare",
                );
            }
        }
        for entry in &self.table.entries {
            let key = entry.key.as_str();
            if accepted.contains(&key) {
                if !self.known.contains(&key) {
                    ctx.internal(
                        entry.key_origin.clone(),
                        &self.key(key),
                        "the scenario schema declares this key but the loader did not read it",
                    );
                }
                continue;
            }
            let other_cases: Vec<&str> = self
                .spec
                .variants
                .map(|v| {
                    v.cases
                        .iter()
                        .filter(|c| c.keys.iter().any(|k| k.name == key))
                        .map(|c| c.value)
                        .collect()
                })
                .unwrap_or_default();
            let suggestion = match (other_cases.is_empty(), self.spec.variants) {
                (false, Some(v)) => format!(
                    "; `{key}` belongs to {} = {}",
                    v.tag,
                    other_cases
                        .iter()
                        .map(|c| format!("{c:?}"))
                        .collect::<Vec<_>>()
                        .join(" or ")
                ),
                _ => suggest(key, &accepted)
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default(),
            };
            let mut expected = accepted.clone();
            expected.sort_unstable();
            let what = match self.variant {
                Some(v) => format!(" for {v:?}"),
                None => String::new(),
            };
            ctx.push(
                entry.key_origin.clone(),
                &self.key(key),
                format!(
                    "unknown key `{key}`{suggestion} (expected{what} one of: {})",
                    expected.join(", ")
                ),
            );
        }
    }
}

/// The known word closest to `word`, if it is close enough to be a typo.
fn suggest<'k>(word: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(word, k), *k))
        .filter(|(distance, k)| *distance <= 2.max(k.len() / 4))
        .min()
        .map(|(_, k)| k)
}

fn type_error(ctx: &mut Ctx<'_>, node: &Node, key: &str, what: &str) {
    ctx.push(
        node.origin.clone(),
        key,
        format!("expected {what}, found {}", node.value.describe()),
    );
}

fn read_string(ctx: &mut Ctx<'_>, node: &Node, key: &str, what: &str) -> Option<String> {
    match &node.value {
        Value::String(s) => Some(s.clone()),
        _ => {
            type_error(ctx, node, key, what);
            None
        }
    }
}

/// Free text shown in reports: at most [`limits::MAX_TEXT`] characters, no control characters
/// (which could rewrite a terminal).
fn read_text(ctx: &mut Ctx<'_>, node: &Node, key: &str) -> Option<String> {
    let text = read_string(ctx, node, key, "a string")?;
    let length = text.chars().count();
    if length > limits::MAX_TEXT.max_int() as usize {
        ctx.push(
            node.origin.clone(),
            key,
            format!(
                "expected a shorter text, found {length} characters: {}",
                limits::MAX_TEXT.exceeded(length)
            ),
        );
        return None;
    }
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        ctx.push(
            node.origin.clone(),
            key,
            format!("expected text without control characters, found {c:?}"),
        );
        return None;
    }
    Some(text)
}

/// Whether `name` is a valid scenario, tier, cell, database, tenant, fault or region name:
/// `[a-z0-9-]`, not starting with a dash, 1 to 64 characters. Such a name is safe as a path
/// component: it can be neither `..`, nor absolute, nor contain a separator.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= limits::MAX_NAME.max_int() as usize
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
}

fn read_name(ctx: &mut Ctx<'_>, node: &Node, key: &str) -> Option<String> {
    let what = "a name of lowercase letters, digits and dashes, such as \"cell-a\"";
    let name = read_string(ctx, node, key, what)?;
    let max = limits::MAX_NAME.max_int() as usize;
    if name.chars().count() > max {
        ctx.push(
            node.origin.clone(),
            key,
            format!(
                "expected {what}, found a name of {} characters: {}",
                name.chars().count(),
                limits::MAX_NAME.exceeded(name.chars().count())
            ),
        );
        return None;
    }
    if is_valid_name(&name) {
        Some(name)
    } else {
        ctx.push(
            node.origin.clone(),
            key,
            format!("expected {what} (not starting with a dash), found {name:?}"),
        );
        None
    }
}

fn read_bool(ctx: &mut Ctx<'_>, node: &Node, key: &str) -> Option<bool> {
    match node.value {
        Value::Boolean(b) => Some(b),
        _ => {
            type_error(ctx, node, key, "true or false");
            None
        }
    }
}

fn read_int(
    ctx: &mut Ctx<'_>,
    node: &Node,
    key: &str,
    min: u64,
    max: u64,
    what: &str,
) -> Option<u64> {
    match node.value {
        Value::Integer(i) if i >= 0 && (i as u64) >= min && (i as u64) <= max => Some(i as u64),
        Value::Integer(i) => {
            ctx.push(
                node.origin.clone(),
                key,
                format!("expected {what} between {min} and {max}, found {i}"),
            );
            None
        }
        _ => {
            type_error(ctx, node, key, what);
            None
        }
    }
}

/// An integer from `min` up to `limit`; above the limit, an error naming it.
fn read_count(
    ctx: &mut Ctx<'_>,
    node: &Node,
    key: &str,
    min: u64,
    limit: &Limit,
    what: &str,
) -> Option<u64> {
    match node.value {
        Value::Integer(i) if i >= 0 && (i as u64) > limit.max_int() => {
            ctx.push(
                node.origin.clone(),
                key,
                format!("expected {what}: {}", limit.exceeded(i)),
            );
            None
        }
        _ => read_int(ctx, node, key, min, limit.max_int(), what),
    }
}

/// A positive number up to `limit`; above the limit, an error naming it.
fn read_positive(
    ctx: &mut Ctx<'_>,
    node: &Node,
    key: &str,
    limit: &Limit,
    what: &str,
) -> Option<f64> {
    let value = match node.value {
        Value::Integer(i) => i as f64,
        Value::Float(x) => x,
        _ => {
            type_error(ctx, node, key, what);
            return None;
        }
    };
    if value.is_finite() && value > limit.max {
        ctx.push(
            node.origin.clone(),
            key,
            format!("expected {what}: {}", limit.exceeded(value)),
        );
        None
    } else if value.is_finite() && value > 0.0 {
        Some(value)
    } else {
        ctx.push(
            node.origin.clone(),
            key,
            format!("expected {what} (a positive number), found {value}"),
        );
        None
    }
}

/// Reads one value of a fault's intensity (`value` of `kind`).
type IntensityReader = fn(&mut Ctx<'_>, &Node, &str) -> Option<f64>;

/// The reader of fault `kind`'s intensity key `name`, if it has one: shared by `[[faults]]`
/// and by `[explore]`'s ranges, whose drawn faults must meet the same rules.
fn fault_intensity(kind: &str, name: &str) -> Option<IntensityReader> {
    Some(match (kind, name) {
        ("load_spike", "multiplier") => {
            |c, n, k| read_positive(c, n, k, &limits::MAX_MULTIPLIER, "a multiplier")
        }
        ("db_slowdown", "factor") => {
            |c, n, k| read_positive(c, n, k, &limits::MAX_SLOWDOWN, "a slowdown factor")
        }
        ("region_outage", "fraction") => {
            |c, n, k| read_fraction(c, n, k, "a fraction of the region's cells")
        }
        ("dependency_errors", "rate") => |c, n, k| read_fraction(c, n, k, "a failure rate"),
        ("poison_jobs", "fraction") => |c, n, k| read_fraction(c, n, k, "a fraction of its jobs"),
        _ => return None,
    })
}

/// [`fault_intensity`]'s reader, for a key it has.
fn intensity(kind: &str, name: &str) -> IntensityReader {
    fault_intensity(kind, name).unwrap_or_else(|| unreachable!("{kind} has no {name}"))
}

/// Checks an `[explore]` table's ranges by the rules its drawn faults will meet, so that a
/// range that can draw an invalid fault is refused here, at its own line, rather than failing
/// the seeds that draw it (which would count as violations): every start before the end of the
/// run, and both ends of each intensity range valid for a fault of that kind.
fn check_explore_ranges(
    ctx: &mut Ctx<'_>,
    node: &Node,
    spec: &super::explore::ExploreSpec,
    simulation: &Simulation,
    declared_faults: usize,
    kms_enabled: bool,
) {
    let Value::Table(table) = &node.value else {
        return;
    };
    // The drawn faults are appended to the scenario's own: together they must stay within
    // MAX_FAULTS, or every seed's scenario would fail to load and count as failing.
    let most = declared_faults as u64 + u64::from(spec.count.1);
    if most > limits::MAX_FAULTS.max_int() {
        ctx.push(
            table.get("count").unwrap_or(node).origin.clone(),
            "explore.count",
            format!(
                "{declared_faults} [[faults]] of the scenario and up to {} drawn: {}",
                spec.count.1,
                limits::MAX_FAULTS.exceeded(most)
            ),
        );
    }
    if spec.at.1 >= simulation.duration
        && let Some(at) = table.get("at")
    {
        ctx.push(
            at.origin.clone(),
            "explore.at",
            format!(
                "the latest start, {}, is at or after the end of the run ({}): every drawn \
                 fault must start before it",
                spec.at.1, simulation.duration
            ),
        );
    }
    let Some(Value::Array(kinds)) = table.get("kinds").map(|n| &n.value) else {
        return;
    };
    for (k, kind_node) in kinds.iter().enumerate() {
        let Value::Table(kind_table) = &kind_node.value else {
            continue;
        };
        let Some(kind_name) = kind_table.get("kind") else {
            continue;
        };
        let Value::String(kind) = &kind_name.value else {
            continue;
        };
        if kind == "kms_key_disabled" && !kms_enabled {
            ctx.push(
                kind_name.origin.clone(),
                &format!("explore.kinds[{k}].kind"),
                KMS_OFF.to_string(),
            );
        }
        for entry in &kind_table.entries {
            let name = entry.key.as_str();
            let Value::Array(ends) = &entry.node.value else {
                continue;
            };
            let Some(read) = fault_intensity(kind, name) else {
                continue;
            };
            // Draws stay within the range (`explore::between`), so its ends are what to check;
            // the reader reports what is wrong, its value is not needed here.
            for (i, end) in ends.iter().enumerate() {
                let _ = read(ctx, end, &format!("explore.kinds[{k}].{name}[{i}]"));
            }
        }
    }
}

fn read_fraction(ctx: &mut Ctx<'_>, node: &Node, key: &str, what: &str) -> Option<f64> {
    let value = match node.value {
        Value::Integer(i) => i as f64,
        Value::Float(x) => x,
        _ => {
            type_error(ctx, node, key, what);
            return None;
        }
    };
    if (0.0..=1.0).contains(&value) {
        Some(value)
    } else {
        ctx.push(
            node.origin.clone(),
            key,
            format!("expected {what} (a fraction from 0 to 1), found {value}"),
        );
        None
    }
}

/// One of a fixed set of words.
fn read_choice<T: Copy>(
    ctx: &mut Ctx<'_>,
    node: &Node,
    key: &str,
    choices: &[(&str, T)],
) -> Option<T> {
    let what = choices
        .iter()
        .map(|(w, _)| format!("{w:?}"))
        .collect::<Vec<_>>()
        .join(" or ");
    let word = read_string(ctx, node, key, &what)?;
    match choices.iter().find(|(w, _)| *w == word) {
        Some((_, v)) => Some(*v),
        None => {
            let words: Vec<&str> = choices.iter().map(|(w, _)| *w).collect();
            let suggestion = suggest(&word, &words)
                .map(|s| format!("; did you mean {s:?}?"))
                .unwrap_or_default();
            ctx.push(
                node.origin.clone(),
                key,
                format!("expected {what}, found {word:?}{suggestion}"),
            );
            None
        }
    }
}

fn read_duration(ctx: &mut Ctx<'_>, node: &Node, key: &str) -> Option<SimDuration> {
    let what = "a duration with a unit, such as \"250ms\" or \"2s\"";
    match &node.value {
        Value::String(s) => match SimDuration::parse(s) {
            Ok(d) if d <= MAX_DURATION => Some(d),
            Ok(_) => {
                ctx.push(
                    node.origin.clone(),
                    key,
                    format!(
                        "expected {what}, found {s:?}: it is above the limit of {MAX_DURATION} \
                         for any duration (MAX_DURATION); {}",
                        limits::HOW_TO_RAISE
                    ),
                );
                None
            }
            Err(e) => {
                ctx.push(
                    node.origin.clone(),
                    key,
                    format!("expected {what}, found {s:?}: {e}"),
                );
                None
            }
        },
        Value::Integer(i) => {
            ctx.push(
                node.origin.clone(),
                key,
                format!("expected {what}; a bare number has no unit: write \"{i}s\" or \"{i}ms\""),
            );
            None
        }
        _ => {
            type_error(ctx, node, key, what);
            None
        }
    }
}

fn read_positive_duration(ctx: &mut Ctx<'_>, node: &Node, key: &str) -> Option<SimDuration> {
    let d = read_duration(ctx, node, key)?;
    if d == SimDuration::ZERO {
        ctx.push(
            node.origin.clone(),
            key,
            "expected a duration greater than zero".into(),
        );
        return None;
    }
    Some(d)
}

fn read_table<'t>(
    ctx: &mut Ctx<'_>,
    node: &'t Node,
    key: &str,
    what: &str,
    spec: &'static TableSpec,
) -> Option<Obj<'t>> {
    match &node.value {
        Value::Table(t) => Some(Obj::new(t, key.to_string(), node.origin.clone(), spec)),
        _ => {
            type_error(ctx, node, key, what);
            None
        }
    }
}

/// The tables of an array of tables, each with its dotted path (`tenants.heavy`, or
/// `tenants[3]` when it has no usable name). More than `limit` entries is an error naming the
/// limit; the first `limit` are still read (bounded work), so what refers to them resolves and
/// the one limit error is not followed by an error at every reference.
fn read_table_array<'t>(
    ctx: &mut Ctx<'_>,
    node: &'t Node,
    key: &str,
    spec: &'static TableSpec,
    limit: &Limit,
) -> Vec<Obj<'t>> {
    let Value::Array(items) = &node.value else {
        type_error(
            ctx,
            node,
            key,
            &format!("an array of tables, written [[{key}]]"),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    if items.len() > limit.max_int() as usize {
        let first_over = &items[limit.max_int() as usize];
        ctx.push(
            first_over.origin.clone(),
            key,
            format!(
                "expected at most {} entries (only the first {} are read): {}",
                limit.max_int(),
                limit.max_int(),
                limit.exceeded(items.len())
            ),
        );
    }
    for (i, item) in items.iter().enumerate().take(limit.max_int() as usize) {
        match &item.value {
            Value::Table(t) => {
                let label = match t.get("name").map(|n| &n.value) {
                    Some(Value::String(s))
                        if !s.trim().is_empty()
                            && !s.contains(['.', '[', ']'])
                            && !s.chars().any(char::is_control) =>
                    {
                        format!("{key}.{s}")
                    }
                    _ => format!("{key}[{i}]"),
                };
                out.push(Obj::new(t, label, item.origin.clone(), spec));
            }
            _ => type_error(ctx, item, &format!("{key}[{i}]"), "a table"),
        }
    }
    out
}

fn read_dist(ctx: &mut Ctx<'_>, node: &Node, key: &str) -> Option<Dist> {
    let mut obj = read_table(
        ctx,
        node,
        key,
        "a distribution table such as { dist = \"exponential\", mean = \"4ms\" }",
        &spec::DIST,
    )?;
    let kinds = "\"constant\", \"exponential\", \"lognormal\" or \"uniform\"";
    let kind_node = obj.required(ctx, "dist", kinds)?;
    let kind = read_string(ctx, kind_node, &obj.key("dist"), kinds)?;
    obj.set_variant(&kind);
    let dist = match kind.as_str() {
        "constant" => {
            let v = obj.required(ctx, "value", "a duration")?;
            Dist::Constant(read_duration(ctx, v, &obj.key("value"))?)
        }
        "exponential" => {
            let v = obj.required(ctx, "mean", "a duration")?;
            Dist::Exponential {
                mean: read_positive_duration(ctx, v, &obj.key("mean"))?,
            }
        }
        "lognormal" => {
            let median_node = obj.required(ctx, "median", "a duration");
            let p99_node = obj.required(ctx, "p99", "a duration");
            let median = read_positive_duration(ctx, median_node?, &obj.key("median"))?;
            let p99_node = p99_node?;
            let p99 = read_positive_duration(ctx, p99_node, &obj.key("p99"))?;
            if p99 <= median {
                ctx.push(
                    p99_node.origin.clone(),
                    &obj.key("p99"),
                    format!("expected a p99 above the median ({median}), found {p99}"),
                );
                return None;
            }
            Dist::log_normal(median, p99)
        }
        "uniform" => {
            let min_node = obj.required(ctx, "min", "a duration");
            let max_node = obj.required(ctx, "max", "a duration");
            let min = read_duration(ctx, min_node?, &obj.key("min"))?;
            let max_node = max_node?;
            let max = read_duration(ctx, max_node, &obj.key("max"))?;
            if max < min {
                ctx.push(
                    max_node.origin.clone(),
                    &obj.key("max"),
                    format!("expected max >= min ({min}), found {max}"),
                );
                return None;
            }
            Dist::Uniform { min, max }
        }
        other => {
            ctx.push(
                kind_node.origin.clone(),
                &obj.key("dist"),
                format!("unknown distribution {other:?}; expected {kinds}"),
            );
            return None;
        }
    };
    obj.finish(ctx);
    Some(dist)
}

/// Defined names: `Some(index)` for a valid entry, `None` for one that had errors (already
/// reported), so references to it are not reported a second time.
type Names = BTreeMap<String, Option<usize>>;

/// Registers a name as defined-but-not-yet-valid, reporting a duplicate. Returns whether it is
/// new.
fn claim_name(
    ctx: &mut Ctx<'_>,
    names: &mut Names,
    name: &str,
    node: &Node,
    key: &str,
    what: &str,
) -> bool {
    if names.contains_key(name) {
        ctx.push(
            node.origin.clone(),
            key,
            format!("duplicate {what} name {name:?}; names must be unique"),
        );
        return false;
    }
    names.insert(name.to_string(), None);
    true
}

fn resolve(ctx: &mut Ctx<'_>, names: &Names, node: &Node, key: &str, what: &str) -> Option<usize> {
    let name = read_string(ctx, node, key, &format!("the name of a {what}"))?;
    match names.get(&name) {
        Some(index) => *index,
        None => {
            let known: Vec<&str> = names.keys().map(String::as_str).collect();
            let suggestion = suggest(&name, &known)
                .map(|s| format!("; did you mean {s:?}?"))
                .unwrap_or_default();
            ctx.push(
                node.origin.clone(),
                key,
                format!(
                    "no {what} named {name:?}{suggestion} (defined: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            );
            None
        }
    }
}

fn read_scenario(ctx: &mut Ctx<'_>, root: &Table, seed: Option<u64>) -> Option<Scenario> {
    let root_origin = Origin::Span(0..0);
    let mut top = Obj::new(root, String::new(), root_origin, &spec::SCENARIO);

    let name = top
        .required(ctx, "name", "the scenario name, such as \"hot-tenant\"")
        .and_then(|n| read_name(ctx, n, "name"));
    let description = match top.node("description") {
        Some(n) => read_text(ctx, n, "description").unwrap_or_default(),
        None => String::new(),
    };

    let simulation = read_simulation(ctx, top.node("simulation"), seed);
    let edge = read_edge(ctx, top.node("edge"));
    let breakers = read_breakers(ctx, top.node("breakers"));
    let kms = read_kms(ctx, top.node("kms"));
    let failover = read_failover(ctx, top.node("failover"));
    let migration = read_migration(ctx, top.node("migration"));
    let placement = read_placement(ctx, top.node("placement"));

    let mut db_names = Names::new();
    let databases = read_databases(ctx, top.node("databases"), &mut db_names);
    let mut cell_names = Names::new();
    let cells_node = top.required(ctx, "cells", "at least one [[cells]] table");
    let (mut cells, job_scripts) = read_cells(ctx, cells_node, &db_names, &mut cell_names);
    let mut pool_names = Names::new();
    let pools = topology::read_pools(ctx, top.node("pools"), &mut pool_names);
    let mut group_names = Names::new();
    let cell_groups =
        topology::read_cell_groups(ctx, top.node("cell_groups"), &cell_names, &mut group_names);
    let mut tier_names = Names::new();
    let tiers_node = top.required(ctx, "tiers", "at least one [[tiers]] table");
    let tiers = read_tiers(
        ctx,
        tiers_node,
        &mut tier_names,
        &CellSets {
            cell_names: &cell_names,
            group_names: &group_names,
            groups: &cell_groups,
        },
    );
    // Databases, services and dependencies share one namespace: a fault's `dependency`
    // names one of them.
    let mut dependency_names = Names::new();
    let dependencies = services::read_dependencies(
        ctx,
        top.node("dependencies"),
        &mut dependency_names,
        &db_names,
    );
    lifecycle::check_providers(ctx, top.node("dependencies"), &dependencies);
    let mut workflow_names = Names::new();
    let workflows = lifecycle::read_workflows(
        ctx,
        top.node("workflows"),
        &mut workflow_names,
        &dependency_names,
        &dependencies,
    );
    let backups = lifecycle::read_backups(ctx, top.node("backups"));
    let mut service_names = Names::new();
    let mut operation_names = BTreeMap::new();
    let taken: Names = db_names
        .iter()
        .chain(dependency_names.iter())
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    let pending = services::read_services(
        ctx,
        top.node("services"),
        &mut service_names,
        &taken,
        &mut operation_names,
    );
    let class_context = topology::ClassContext {
        pool_names: &pool_names,
        db_names: &db_names,
        calls: services::CallNames {
            service_names: &service_names,
            operations: &operation_names,
            dependency_names: &dependency_names,
            dependencies: &dependencies,
        },
    };
    let mut programs: Vec<Program> = Vec::new();
    let mut services = Vec::new();
    for p in pending {
        let mut service = p.service;
        for (op, calls) in service.operations.iter_mut().zip(p.calls) {
            op.program = match calls {
                Some((node, key)) => {
                    topology::read_program(ctx, node, &key, &class_context, &mut programs)
                        .unwrap_or(u32::MAX)
                }
                None => {
                    programs.push(Program::default());
                    (programs.len() - 1) as u32
                }
            };
        }
        services.push(service);
    }
    if ctx.diagnostics.is_empty() {
        services::check_call_graph(
            ctx,
            top.node("services")
                .map_or(Origin::Span(0..0), |n| n.origin.clone()),
            &services,
            &programs,
        );
    }
    let mut class_names = Names::new();
    let classes = topology::read_classes(
        ctx,
        top.node("classes"),
        &class_context,
        &mut class_names,
        &mut programs,
    );
    compile_job_scripts(ctx, &mut cells, job_scripts, &class_context, &mut programs);
    let mut schedule_names = Names::new();
    let schedules = workload::read_schedules(
        ctx,
        top.node("schedules"),
        simulation.as_ref().map(|s| s.duration),
        &mut schedule_names,
    );
    let tenants_node = top.required(ctx, "tenants", "at least one [[tenants]] table");
    let mut loads = lifecycle::Loads::default();
    let tenant_context = TenantContext {
        tier_names: &tier_names,
        cell_names: &cell_names,
        cells: &cells,
        tiers: &tiers,
        class_names: &class_names,
        classes: &classes,
        programs: &programs,
        services: &services,
        placement: placement.as_ref(),
        schedule_names: &schedule_names,
        seed: simulation.as_ref().map_or(42, |s| s.seed),
        replaying: top.node("replay").is_some(),
        workflow_names: &workflow_names,
        workflows: &workflows,
    };
    let diagnostics_before_tenants = ctx.diagnostics.len();
    let (mut tenants, mut groups, mut target_names) =
        read_tenants(ctx, tenants_node, &mut loads, &tenant_context);
    let tenants_complete = ctx.diagnostics.len() == diagnostics_before_tenants;
    let replay = replayed::read_replay(
        ctx,
        top.node("replay"),
        &mut Expansion {
            tenants: &mut tenants,
            groups: &mut groups,
            targets: &mut target_names,
            total: &mut 0,
        },
        &tenant_context,
        tenants_complete,
    );
    let tenants_placed = place_tenants(ctx, tenants_node, &mut tenants, &groups, &tenant_context);
    let shares: f64 = tiers.iter().filter_map(|t| t.guaranteed_share).sum();
    if shares > 1.0 + 1e-9 {
        ctx.push(
            tiers_node.map_or(Origin::Span(0..0), |n| n.origin.clone()),
            "tiers",
            format!(
                "the tiers' guaranteed_share values add up to {shares}, more than a whole pool (1)"
            ),
        );
    }
    for group in &groups {
        let Some(first) = group.tenants.clone().next() else {
            continue;
        };
        let t = &tenants[first];
        // No cell when every cell was invalid (already reported).
        let Some(cell) = cells.get(t.cell) else {
            continue;
        };
        if t.jobs.is_some() && cell.jobs.is_none() {
            ctx.push(
                tenants_node.map_or(Origin::Span(0..0), |n| n.origin.clone()),
                &format!("tenants.{}.jobs", group.name),
                format!(
                    "tenants of {:?} submit background jobs but their cell {:?} has no `jobs` pool",
                    group.name, cell.name
                ),
            );
        }
    }

    let simulation = simulation?;
    loads.check(ctx, simulation.duration);
    // A [kms] table with errors counts as on: its own errors say what is wrong.
    let kms_enabled = kms.as_ref().is_none_or(|k| k.enabled);
    let faults_node = top.node("faults");
    let (faults, fault_names) = read_faults(
        ctx,
        faults_node,
        &FaultContext {
            targets: &target_names,
            tier_names: &tier_names,
            group_names: &group_names,
            cell_groups: &cell_groups,
            cell_names: &cell_names,
            db_names: &db_names,
            pool_names: &pool_names,
            class_names: &class_names,
            service_names: &service_names,
            dependency_names: &dependency_names,
            cells: &cells,
            tenants: &tenants,
            databases: &databases,
            classes: &classes,
            services: &services,
            dependencies: &dependencies,
            programs: &programs,
            simulation: &simulation,
            kms_enabled,
            tenants_placed,
        },
    );
    let (slos, windows) = read_slos(
        ctx,
        top.node("slo"),
        &SloContext {
            targets: &target_names,
            tenants: &tenants,
            tier_names: &tier_names,
            cell_names: &cell_names,
            group_names: &group_names,
            groups: &cell_groups,
            class_names: &class_names,
            pool_names: &pool_names,
            faults: &faults,
            fault_names: &fault_names,
            simulation: &simulation,
        },
    );
    let explore = match top.node("explore") {
        Some(n) => match super::explore::parse(n) {
            Ok(spec) => {
                let declared_faults = match faults_node.map(|f| &f.value) {
                    Some(Value::Array(items)) => items.len(),
                    _ => 0,
                };
                check_explore_ranges(ctx, n, &spec, &simulation, declared_faults, kms_enabled);
                Some(spec)
            }
            Err(errors) => {
                for (origin, key, message) in errors {
                    ctx.push(origin, &key, message);
                }
                None
            }
        },
        None => None,
    };
    // The instance limits' errors point at the first table of the kind that multiplies.
    let first_table = |node: Option<&Node>| match node.map(|n| &n.value) {
        Some(Value::Array(items)) if !items.is_empty() => items[0].origin.clone(),
        _ => node.map_or(Origin::Span(0..0), |n| n.origin.clone()),
    };
    let at = services::InstanceOrigins {
        pools: first_table(top.node("pools")),
        services: first_table(top.node("services")),
        dependencies: first_table(top.node("dependencies")),
    };
    services::check_instances(
        ctx,
        &at,
        &cells,
        tenants.len(),
        &pools,
        &services,
        &dependencies,
    );
    top.finish(ctx);

    if !ctx.diagnostics.is_empty() {
        return None;
    }
    Some(Scenario {
        name: name?,
        description,
        system: System {
            simulation,
            edge: edge?,
            breakers: breakers?,
            kms: kms?,
            failover: failover?,
            migration: migration?,
            placement: placement?,
            tiers,
            cells,
            databases,
            tenants,
            groups,
            faults,
            windows,
            classes,
            pools,
            services,
            dependencies,
            cell_groups,
            programs,
            schedules,
            lifecycle: crate::model::lifecycle::Lifecycle {
                workflows,
                signups: loads.signups,
                deletions: loads.deletions,
                backups: backups?,
            },
            replay: replay?,
        },
        slos,
        explore,
        inputs: std::mem::take(&mut ctx.inputs),
    })
}

/// Names that a set of cells may be given by.
struct CellSets<'a> {
    cell_names: &'a Names,
    group_names: &'a Names,
    groups: &'a [CellGroup],
}

fn read_simulation(
    ctx: &mut Ctx<'_>,
    node: Option<&Node>,
    seed: Option<u64>,
) -> Option<Simulation> {
    let mut sim = Simulation {
        seed: 42,
        duration: SimDuration::from_secs(60),
        warmup: SimDuration::ZERO,
        max_events: None,
        start: None,
    };
    let Some(node) = node else {
        sim.seed = seed.unwrap_or(sim.seed);
        return Some(sim);
    };
    let mut obj = read_table(
        ctx,
        node,
        "simulation",
        "the [simulation] table",
        &spec::SIMULATION,
    )?;
    let mut ok = true;
    if let Some(n) = obj.node("seed") {
        match read_int(ctx, n, "simulation.seed", 0, i64::MAX as u64, "a seed") {
            Some(s) => sim.seed = s,
            None => ok = false,
        }
    }
    if let Some(n) = obj.node("duration") {
        match read_positive_duration(ctx, n, "simulation.duration") {
            Some(d) => sim.duration = d,
            None => ok = false,
        }
    }
    let warmup_node = obj.node("warmup");
    if let Some(n) = warmup_node {
        match read_duration(ctx, n, "simulation.warmup") {
            Some(d) => sim.warmup = d,
            None => ok = false,
        }
    }
    if let Some(n) = obj.node("max_events") {
        match read_int(
            ctx,
            n,
            "simulation.max_events",
            1,
            i64::MAX as u64,
            "an event budget",
        ) {
            Some(m) => sim.max_events = Some(m),
            None => ok = false,
        }
    }
    if let Some(n) = obj.node("start") {
        match workload::read_start(ctx, n, "simulation.start") {
            Some(start) => {
                sim.start = Some(start);
                ctx.start = Some(start);
            }
            None => ok = false,
        }
    }
    if let Some(n) = warmup_node
        && ok
        && sim.warmup >= sim.duration
    {
        ctx.push(
            n.origin.clone(),
            "simulation.warmup",
            format!(
                "expected a warmup shorter than the duration ({}), found {}",
                sim.duration, sim.warmup
            ),
        );
        ok = false;
    }
    obj.finish(ctx);
    sim.seed = seed.unwrap_or(sim.seed);
    ok.then_some(sim)
}

fn read_edge(ctx: &mut Ctx<'_>, node: Option<&Node>) -> Option<Edge> {
    let defaults = Edge {
        rate_limiting: true,
        mapping_cache_ttl: SimDuration::from_secs(30),
        on_mapping_unavailable: MappingPolicy::ServeStale,
        max_staleness: SimDuration::from_secs(600),
        config_lookup: ConfigLookup::Cached,
        replicas: 1,
    };
    let Some(node) = node else {
        return Some(defaults);
    };
    let mut obj = read_table(ctx, node, "edge", "the [edge] table", &spec::EDGE)?;
    let rate_limiting = obj.or(ctx, "rate_limiting", defaults.rate_limiting, |c, n, k| {
        read_bool(c, n, k)
    });
    let ttl = obj.or(
        ctx,
        "mapping_cache_ttl",
        defaults.mapping_cache_ttl,
        read_duration,
    );
    let policy = obj.or(
        ctx,
        "on_mapping_unavailable",
        defaults.on_mapping_unavailable,
        |c, n, k| {
            read_choice(
                c,
                n,
                k,
                &[
                    ("serve_stale", MappingPolicy::ServeStale),
                    ("fail_closed", MappingPolicy::FailClosed),
                ],
            )
        },
    );
    let staleness_node = obj.node("max_staleness");
    let max_staleness = match staleness_node {
        Some(n) => read_duration(ctx, n, "edge.max_staleness"),
        None => Some(defaults.max_staleness),
    };
    let config_lookup = obj.or(ctx, "config_lookup", defaults.config_lookup, |c, n, k| {
        read_choice(
            c,
            n,
            k,
            &[
                ("cached", ConfigLookup::Cached),
                ("hot_path", ConfigLookup::HotPath),
            ],
        )
    });
    let replicas = obj.or(ctx, "replicas", 1, |c, n, k| {
        read_count(
            c,
            n,
            k,
            1,
            &limits::MAX_EDGE_REPLICAS,
            "a number of edge nodes",
        )
    });
    obj.finish(ctx);
    let (ttl, max_staleness) = (ttl?, max_staleness?);
    if max_staleness < ttl {
        ctx.push(
            staleness_node.map_or(node.origin.clone(), |n| n.origin.clone()),
            "edge.max_staleness",
            format!("expected a max_staleness of at least the mapping_cache_ttl ({ttl}), found {max_staleness}"),
        );
        return None;
    }
    Some(Edge {
        rate_limiting: rate_limiting?,
        mapping_cache_ttl: ttl,
        on_mapping_unavailable: policy?,
        max_staleness,
        config_lookup: config_lookup?,
        replicas: replicas? as u32,
    })
}

fn read_breakers(ctx: &mut Ctx<'_>, node: Option<&Node>) -> Option<Breakers> {
    let defaults = Breakers {
        enabled: true,
        key: BreakerKey::TenantDependency,
        failure_rate: 0.5,
        min_calls: 20,
        window: SimDuration::from_secs(10),
        open_for: SimDuration::from_secs(5),
        half_open_probes: 3,
        probe_timeout: SimDuration::from_secs(2),
    };
    let Some(node) = node else {
        return Some(defaults);
    };
    let mut obj = read_table(
        ctx,
        node,
        "breakers",
        "the [breakers] table",
        &spec::BREAKERS,
    )?;
    let enabled = obj.or(ctx, "enabled", defaults.enabled, |c, n, k| {
        read_bool(c, n, k)
    });
    let key = obj.or(ctx, "key", defaults.key, |c, n, k| {
        read_choice(
            c,
            n,
            k,
            &[
                ("tenant_dependency", BreakerKey::TenantDependency),
                ("dependency", BreakerKey::Dependency),
            ],
        )
    });
    let failure_rate = obj.or(ctx, "failure_rate", defaults.failure_rate, |c, n, k| {
        read_fraction(c, n, k, "a failure rate")
    });
    let min_calls = obj.or(
        ctx,
        "min_calls",
        u64::from(defaults.min_calls),
        |c, n, k| read_count(c, n, k, 1, &limits::MAX_SMALL_COUNT, "a call count"),
    );
    let window = obj.or(ctx, "window", defaults.window, |c, n, k| {
        read_positive_duration(c, n, k)
    });
    let open_for = obj.or(ctx, "open_for", defaults.open_for, |c, n, k| {
        read_positive_duration(c, n, k)
    });
    let probes = obj.or(
        ctx,
        "half_open_probes",
        u64::from(defaults.half_open_probes),
        |c, n, k| read_count(c, n, k, 1, &limits::MAX_SMALL_COUNT, "a probe count"),
    );
    let probe_timeout = obj.or(ctx, "probe_timeout", defaults.probe_timeout, |c, n, k| {
        read_positive_duration(c, n, k)
    });
    obj.finish(ctx);
    Some(Breakers {
        enabled: enabled?,
        key: key?,
        failure_rate: failure_rate?,
        min_calls: min_calls? as u32,
        window: window?,
        open_for: open_for?,
        half_open_probes: probes? as u32,
        probe_timeout: probe_timeout?,
    })
}

fn read_kms(ctx: &mut Ctx<'_>, node: Option<&Node>) -> Option<Kms> {
    let call_time = Dist::log_normal(SimDuration::from_millis(2), SimDuration::from_millis(20));
    let Some(node) = node else {
        return Some(Kms {
            enabled: false,
            call_time,
            data_key_ttl: SimDuration::from_secs(300),
        });
    };
    let mut obj = read_table(ctx, node, "kms", "the [kms] table", &spec::KMS)?;
    let enabled = obj.or(ctx, "enabled", true, read_bool);
    let call_time = obj.or(ctx, "call_time", call_time, read_dist);
    let ttl = obj.or(
        ctx,
        "data_key_ttl",
        SimDuration::from_secs(300),
        read_positive_duration,
    );
    obj.finish(ctx);
    Some(Kms {
        enabled: enabled?,
        call_time: call_time?,
        data_key_ttl: ttl?,
    })
}

fn read_failover(ctx: &mut Ctx<'_>, node: Option<&Node>) -> Option<Failover> {
    let defaults = Failover {
        policy: FailoverPolicy::Evacuate,
        detection: SimDuration::from_secs(30),
        enforce_residency: true,
    };
    let Some(node) = node else {
        return Some(defaults);
    };
    let mut obj = read_table(
        ctx,
        node,
        "failover",
        "the [failover] table",
        &spec::FAILOVER,
    )?;
    let policy = obj.or(ctx, "policy", defaults.policy, |c, n, k| {
        read_choice(
            c,
            n,
            k,
            &[
                ("evacuate", FailoverPolicy::Evacuate),
                ("none", FailoverPolicy::None),
            ],
        )
    });
    let detection = obj.or(ctx, "detection", defaults.detection, read_duration);
    let residency = obj.or(ctx, "residency", true, |c, n, k| {
        read_choice(c, n, k, &[("enforce", true), ("ignore", false)])
    });
    obj.finish(ctx);
    Some(Failover {
        policy: policy?,
        detection: detection?,
        enforce_residency: residency?,
    })
}

fn read_migration(ctx: &mut Ctx<'_>, node: Option<&Node>) -> Option<Migration> {
    let Some(node) = node else {
        return Some(Migration {
            fencing: true,
            dual_write: true,
        });
    };
    let mut obj = read_table(
        ctx,
        node,
        "migration",
        "the [migration] table",
        &spec::MIGRATION,
    )?;
    let fencing = obj.or(ctx, "fencing", true, read_bool);
    let dual_write = obj.or(ctx, "dual_write", true, read_bool);
    obj.finish(ctx);
    Some(Migration {
        fencing: fencing?,
        dual_write: dual_write?,
    })
}

fn read_placement(ctx: &mut Ctx<'_>, node: Option<&Node>) -> Option<Placement> {
    let Some(node) = node else {
        return Some(Placement::default());
    };
    let mut obj = read_table(
        ctx,
        node,
        "placement",
        "the [placement] table",
        &spec::PLACEMENT,
    )?;
    let shard_size = obj.or(ctx, "shard_size", None, |c, n, k| {
        read_int(c, n, k, 1, 1_000_000, "a number of cells per shuffle shard").map(Some)
    });
    let tier_routing = obj.or(ctx, "tier_routing", true, read_bool);
    obj.finish(ctx);
    Some(Placement {
        shard_size: shard_size?.map(|k| k as usize),
        ignore_tier_cells: !tier_routing?,
    })
}

fn read_tiers(
    ctx: &mut Ctx<'_>,
    node: Option<&Node>,
    names: &mut Names,
    sets: &CellSets<'_>,
) -> Vec<Tier> {
    let Some(node) = node else {
        return Vec::new();
    };
    let mut tiers = Vec::new();
    for mut obj in read_table_array(ctx, node, "tiers", &spec::TIERS, &limits::MAX_TIERS) {
        let name_node = obj.required(ctx, "name", "a tier name");
        let name = name_node
            .and_then(|n| read_name(ctx, n, &obj.key("name")).map(|v| (v, n)))
            .filter(|(v, n)| claim_name(ctx, names, v, n, &obj.key("name"), "tier"))
            .map(|(v, _)| v);
        let rate = obj
            .required(ctx, "rate", "sustained requests per second per tenant")
            .and_then(|n| {
                read_positive(
                    ctx,
                    n,
                    &obj.key("rate"),
                    &limits::MAX_TIER_RATE,
                    "requests per second",
                )
            });
        let burst = match obj.node("burst") {
            Some(n) => read_count(
                ctx,
                n,
                &obj.key("burst"),
                1,
                &limits::MAX_PER_TENANT,
                "a burst size",
            )
            .map(|b| b as u32),
            None => rate.map(|r| r.ceil().clamp(1.0, f64::from(u32::MAX)) as u32),
        };
        let max_in_flight = match obj.node("max_in_flight") {
            Some(n) => read_count(
                ctx,
                n,
                &obj.key("max_in_flight"),
                1,
                &limits::MAX_PER_TENANT,
                "a request count",
            )
            .map(|m| Some(m as u32)),
            None => Some(None),
        };
        let guaranteed_share = obj.or(ctx, "guaranteed_share", None, |c, n, k| {
            read_fraction(c, n, k, "a share of each API pool").map(Some)
        });
        let job_weight = obj.or(ctx, "job_weight", 1, |c, n, k| {
            read_count(c, n, k, 1, &limits::MAX_SMALL_COUNT, "a weight")
        });
        let max_running_jobs = obj.or(ctx, "max_running_jobs", None, |c, n, k| {
            read_count(c, n, k, 1, &limits::MAX_SMALL_COUNT, "a job count").map(|m| Some(m as u32))
        });
        let cells = obj.or(ctx, "cells", None, |c, n, k| {
            topology::read_cell_set(c, n, k, sets.cell_names, sets.group_names, sets.groups)
                .map(Some)
        });
        if let (
            Some(name),
            Some(rate),
            Some(burst),
            Some(max_in_flight),
            Some(guaranteed_share),
            Some(job_weight),
            Some(max_running_jobs),
            Some(cells),
        ) = (
            name,
            rate,
            burst,
            max_in_flight,
            guaranteed_share,
            job_weight,
            max_running_jobs,
            cells,
        ) {
            match Quota::per_second(rate, burst) {
                Ok(quota) => {
                    names.insert(name.clone(), Some(tiers.len()));
                    tiers.push(Tier {
                        name,
                        rate,
                        burst,
                        quota,
                        max_in_flight,
                        guaranteed_share,
                        job_weight: job_weight as u32,
                        max_running_jobs,
                        cells,
                    });
                }
                Err(_) => ctx.push(
                    obj.origin.clone(),
                    &obj.key("rate"),
                    format!("rate {rate} is above one request per nanosecond"),
                ),
            }
        }
        obj.finish(ctx);
    }
    tiers
}

fn read_databases(ctx: &mut Ctx<'_>, node: Option<&Node>, names: &mut Names) -> Vec<Database> {
    let Some(node) = node else {
        return Vec::new();
    };
    let mut databases = Vec::new();
    for mut obj in read_table_array(
        ctx,
        node,
        "databases",
        &spec::DATABASES,
        &limits::MAX_DATABASES,
    ) {
        let name_node = obj.required(ctx, "name", "a database name");
        let name = name_node
            .and_then(|n| read_name(ctx, n, &obj.key("name")).map(|v| (v, n)))
            .filter(|(v, n)| {
                if v == "cell" {
                    ctx.push(
                        n.origin.clone(),
                        &obj.key("name"),
                        "\"cell\" means a cell's own database in query steps (`db = \"cell\"`); give this database another name".into(),
                    );
                    return false;
                }
                claim_name(ctx, names, v, n, &obj.key("name"), "database")
            })
            .map(|(v, _)| v);
        let connections = obj
            .required(ctx, "connections", "the number of concurrent queries")
            .and_then(|n| {
                read_count(
                    ctx,
                    n,
                    &obj.key("connections"),
                    1,
                    &limits::MAX_CONNECTIONS,
                    "a connection count",
                )
            });
        let query_time = obj
            .required(ctx, "query_time", "a distribution")
            .and_then(|n| read_dist(ctx, n, &obj.key("query_time")));
        let replicas = obj.or(ctx, "replicas", None, |c, n, k| {
            topology::read_replicas(c, n, k, connections).map(Some)
        });
        let statement_timeout = obj.or(ctx, "statement_timeout", None, |c, n, k| {
            read_positive_duration(c, n, k).map(Some)
        });
        let per_tenant = obj.or(ctx, "max_connections_per_tenant", None, |c, n, k| {
            read_count(c, n, k, 1, &limits::MAX_CONNECTIONS, "a connection count")
                .map(|m| Some(m as u32))
        });
        if let (
            Some(name),
            Some(connections),
            Some(query_time),
            Some(replicas),
            Some(statement_timeout),
            Some(per_tenant),
        ) = (
            name,
            connections,
            query_time,
            replicas,
            statement_timeout,
            per_tenant,
        ) {
            names.insert(name.clone(), Some(databases.len()));
            databases.push(Database {
                name,
                connections: connections as u32,
                query_time,
                replicas,
                statement_timeout,
                max_connections_per_tenant: per_tenant,
            });
        }
        obj.finish(ctx);
    }
    databases
}

/// A cell's `jobs.calls` node and its key, if it has one.
type JobScript<'t> = Option<(&'t Node, String)>;

/// `[[cells]]`, and per cell the `jobs.calls` script still to compile (once services and
/// dependencies are known; see [`compile_job_scripts`]).
fn read_cells<'t>(
    ctx: &mut Ctx<'_>,
    node: Option<&'t Node>,
    db_names: &Names,
    names: &mut Names,
) -> (Vec<Cell>, Vec<JobScript<'t>>) {
    let Some(node) = node else {
        return (Vec::new(), Vec::new());
    };
    let mut cells = Vec::new();
    let mut scripts = Vec::new();
    for mut obj in read_table_array(ctx, node, "cells", &spec::CELLS, &limits::MAX_CELLS) {
        let name_node = obj.required(ctx, "name", "a cell name");
        let name = name_node
            .and_then(|n| read_name(ctx, n, &obj.key("name")).map(|v| (v, n)))
            .filter(|(v, n)| claim_name(ctx, names, v, n, &obj.key("name"), "cell"))
            .map(|(v, _)| v);
        let region = match obj.node("region") {
            Some(n) => read_name(ctx, n, &obj.key("region")),
            None => Some("default".to_string()),
        };
        let eu = match obj.node("eu") {
            Some(n) => read_bool(ctx, n, &obj.key("eu")),
            None => Some(false),
        };
        let db = match obj.node("db") {
            Some(n) => resolve(ctx, db_names, n, &obj.key("db"), "database").map(Some),
            None => Some(None),
        };
        let api = obj
            .required(ctx, "api", "the API pool, such as { workers = 32, queue = 512, service_time = { dist = \"exponential\", mean = \"4ms\" } }")
            .and_then(|n| read_api(ctx, n, &obj.key("api")));
        let jobs = obj.or(ctx, "jobs", None, |c, n, k| {
            read_job_pool(c, n, k).map(Some)
        });
        let script = obj
            .node("jobs")
            .and_then(|n| match &n.value {
                Value::Table(t) => t.get("calls"),
                _ => None,
            })
            .map(|n| (n, format!("{}.calls", obj.key("jobs"))));
        let capacity = obj.or(ctx, "capacity", None, |c, n, k| {
            read_positive(
                c,
                n,
                k,
                &limits::MAX_CAPACITY,
                "a capacity in requests per second",
            )
            .map(Some)
        });
        let max_tenants = obj.or(ctx, "max_tenants", None, |c, n, k| {
            read_count(c, n, k, 1, &MAX_TENANTS, "a tenant count").map(|m| Some(m as u32))
        });
        if let (
            Some(name),
            Some(region),
            Some(eu),
            Some(db),
            Some(api),
            Some(jobs),
            Some(capacity),
            Some(max_tenants),
        ) = (name, region, eu, db, api, jobs, capacity, max_tenants)
        {
            names.insert(name.clone(), Some(cells.len()));
            cells.push(Cell {
                name,
                region,
                eu,
                db,
                api,
                jobs,
                capacity,
                max_tenants,
            });
            scripts.push(script);
        }
        obj.finish(ctx);
    }
    (cells, scripts)
}

/// Compiles each cell's `jobs.calls` into a program of its job pool.
fn compile_job_scripts(
    ctx: &mut Ctx<'_>,
    cells: &mut [Cell],
    scripts: Vec<JobScript<'_>>,
    context: &topology::ClassContext<'_>,
    programs: &mut Vec<Program>,
) {
    for (cell, script) in cells.iter_mut().zip(scripts) {
        let (Some(pool), Some((node, key))) = (cell.jobs.as_mut(), script) else {
            continue;
        };
        pool.program = topology::read_program(ctx, node, &key, context, programs);
    }
}

fn read_api(ctx: &mut Ctx<'_>, node: &Node, key: &str) -> Option<ApiPool> {
    let mut obj = read_table(ctx, node, key, "the API pool table", &spec::API)?;
    let pool = topology::read_pool_core(ctx, &mut obj);
    obj.finish(ctx);
    pool
}

fn read_job_pool(ctx: &mut Ctx<'_>, node: &Node, key: &str) -> Option<JobPool> {
    let mut obj = read_table(
        ctx,
        node,
        key,
        "a job pool such as { workers = 4, job_time = { dist = \"exponential\", mean = \"200ms\" } }",
        &spec::JOB_POOL,
    )?;
    let workers = obj
        .required(ctx, "workers", "the number of concurrent jobs")
        .and_then(|n| {
            read_count(
                ctx,
                n,
                &obj.key("workers"),
                1,
                &limits::MAX_WORKERS,
                "a worker count",
            )
        });
    let scheduler = obj.or(ctx, "scheduler", SchedulerMode::Fair, |c, n, k| {
        read_choice(
            c,
            n,
            k,
            &[("fair", SchedulerMode::Fair), ("fifo", SchedulerMode::Fifo)],
        )
    });
    let job_time = obj
        .required(ctx, "job_time", "a distribution")
        .and_then(|n| read_dist(ctx, n, &obj.key("job_time")));
    // `calls` is compiled once services and dependencies are known (`compile_job_scripts`).
    let _ = obj.node("calls");
    let max_attempts = obj.or(ctx, "max_attempts", 3, |c, n, k| {
        read_count(
            c,
            n,
            k,
            0,
            &MAX_ATTEMPTS,
            "an attempt count (0 retries forever)",
        )
    });
    obj.finish(ctx);
    Some(JobPool {
        workers: workers? as u32,
        scheduler: scheduler?,
        job_time: job_time?,
        max_attempts: max_attempts? as u32,
        // Compiled later, with the classes' scripts (see `compile_job_scripts`).
        program: None,
    })
}

/// What `[[tenants]]` entries expand into, as they are read.
struct Expansion<'a> {
    tenants: &'a mut Vec<Tenant>,
    groups: &'a mut Vec<TenantGroup>,
    targets: &'a mut Targets,
    /// Tenants so far (for `MAX_TENANTS`).
    total: &'a mut u64,
}

/// Tenant and tenant-group names, for fault targets and SLO selectors: `None` marks an entry
/// that had errors (already reported).
type Targets = BTreeMap<String, Option<Vec<usize>>>;

/// What tenant tables are resolved against.
struct TenantContext<'a> {
    tier_names: &'a Names,
    cell_names: &'a Names,
    cells: &'a [Cell],
    tiers: &'a [Tier],
    class_names: &'a Names,
    classes: &'a [Class],
    programs: &'a [Program],
    services: &'a [crate::model::topology::Service],
    placement: Option<&'a Placement>,
    schedule_names: &'a Names,
    /// The run's seed: a `count` group's member sizes are drawn from streams of it.
    seed: u64,
    /// The scenario replays a request log: tenants may leave out `arrival` (the log is
    /// their traffic).
    replaying: bool,
    workflow_names: &'a Names,
    workflows: &'a [crate::model::lifecycle::WorkflowSpec],
}

fn read_tenants(
    ctx: &mut Ctx<'_>,
    node: Option<&Node>,
    loads: &mut lifecycle::Loads,
    tc: &TenantContext<'_>,
) -> (Vec<Tenant>, Vec<TenantGroup>, Targets) {
    let (tier_names, cell_names) = (tc.tier_names, tc.cell_names);
    let tier_routing = !tc.placement.is_some_and(|p| p.ignore_tier_cells);
    let mut tenants: Vec<Tenant> = Vec::new();
    let mut groups = Vec::new();
    let mut targets = Targets::new();
    let Some(node) = node else {
        return (tenants, groups, targets);
    };
    let mut total: u64 = 0;
    for mut obj in read_table_array(
        ctx,
        node,
        "tenants",
        &spec::TENANTS,
        &limits::MAX_TENANT_GROUPS,
    ) {
        let name_node = obj.required(ctx, "name", "a tenant name");
        let name = match name_node.and_then(|n| read_name(ctx, n, &obj.key("name")).map(|v| (v, n)))
        {
            Some((name, n)) if targets.contains_key(&name) => {
                ctx.push(
                    n.origin.clone(),
                    &obj.key("name"),
                    format!("duplicate tenant name {name:?}; names must be unique"),
                );
                None
            }
            Some((name, _)) => {
                targets.insert(name.clone(), None);
                Some(name)
            }
            None => None,
        };
        // A table's rows carry each tenant's name, tier, cell, region and residency; the
        // entry gives the group's name and what its rows share.
        let table_node = obj.node("table");
        let table = match table_node {
            Some(n) => read_string(
                ctx,
                n,
                &obj.key("table"),
                "the path of a CSV file, relative to the scenario, such as \"tenants.csv\"",
            )
            .map(|path| Some((path, n))),
            None => Some(None),
        };
        if table_node.is_some() {
            for (key, column) in [
                ("count", "one row per tenant"),
                ("tier", "its `tier` column"),
                ("cell", "its `cell` column"),
                ("region", "its `region` column"),
                ("eu_only", "its `eu_only` column"),
            ] {
                if let Some(n) = obj.node(key) {
                    ctx.push(
                        n.origin.clone(),
                        &obj.key(key),
                        format!(
                            "`{key}` comes from the table ({column}); a `[[tenants]]` entry with `table` cannot set it"
                        ),
                    );
                }
            }
        }
        let count_node = obj.node("count").filter(|_| table_node.is_none());
        let count = match count_node {
            Some(n) => {
                read_count(ctx, n, &obj.key("count"), 1, &MAX_TENANTS, "a tenant count").map(Some)
            }
            None => Some(None),
        };
        // A table group's tier is per row: the placeholder is never used.
        let tier = if table_node.is_some() {
            Some(usize::MAX)
        } else {
            obj.needed(ctx, "tier", "the name of a [[tiers]] entry")
                .and_then(|n| resolve(ctx, tier_names, n, &obj.key("tier"), "tier"))
        };
        let cell = match obj.node("cell").filter(|_| table_node.is_none()) {
            Some(n) => resolve(ctx, cell_names, n, &obj.key("cell"), "cell").map(Some),
            None => Some(None),
        };
        // Optional where rows or the log give the rates: a table's `rate` column, a replay.
        let arrival_node = if table_node.is_some() || tc.replaying {
            obj.node("arrival")
        } else {
            obj.needed(
                ctx,
                "arrival",
                "an arrival table such as { process = \"poisson\", rate = 10 }",
            )
        };
        let arrival = match arrival_node {
            Some(n) => workload::read_arrival(ctx, n, &obj.key("arrival")).map(Some),
            None => Some(None),
        };
        let schedule = match obj.node("schedule") {
            Some(n) => {
                resolve(ctx, tc.schedule_names, n, &obj.key("schedule"), "schedule").map(Some)
            }
            None => Some(None),
        };
        let db_queries_node = obj.node("db_queries");
        let db_queries = match db_queries_node {
            Some(n) => read_count(
                ctx,
                n,
                &obj.key("db_queries"),
                0,
                &MAX_DB_QUERIES,
                "a query count",
            ),
            None => Some(0),
        };
        let timeout = match obj.node("timeout") {
            Some(n) => topology::read_timeout(ctx, n, &obj.key("timeout")),
            None => Some(Some(SimDuration::from_secs(1))),
        };
        let retry = match obj.node("retry") {
            Some(n) => read_retry(ctx, n, &obj.key("retry")),
            None => Some((RetryPolicy::NEVER, None)),
        };
        let (region, eu_only) = if table_node.is_some() {
            (Some(None), Some(false))
        } else {
            (
                obj.or(ctx, "region", None, |c, n, k| read_name(c, n, k).map(Some)),
                obj.or(ctx, "eu_only", false, read_bool),
            )
        };
        let writes = obj.or(ctx, "writes", 0.0, |c, n, k| {
            read_fraction(c, n, k, "a fraction of requests")
        });
        let jobs = obj.or(ctx, "jobs", None, |c, n, k| {
            read_job_load(c, n, k).map(Some)
        });
        let mix_node = obj.node("requests");
        let mix = match mix_node {
            Some(n) => topology::read_mix(ctx, n, &obj.key("requests"), tc.class_names).map(Some),
            None => Some(None),
        };
        let lifecycle_load = |ctx: &mut Ctx<'_>, obj: &mut Obj<'_>, key, kind| {
            let node = obj.node(key);
            match node {
                Some(n) => lifecycle::read_load(
                    ctx,
                    n,
                    &obj.key(key),
                    kind,
                    tc.workflow_names,
                    tc.workflows,
                )
                .map(|l| Some((l, (n.origin.clone(), obj.key(key))))),
                None => Some(None),
            }
        };
        let signup = lifecycle_load(
            ctx,
            &mut obj,
            "signup",
            crate::model::lifecycle::WorkflowKind::Onboarding,
        );
        let deletion = lifecycle_load(
            ctx,
            &mut obj,
            "deletion",
            crate::model::lifecycle::WorkflowKind::Offboarding,
        );
        obj.finish(ctx);
        let (Some(signup), Some(deletion)) = (signup, deletion) else {
            continue;
        };
        let Some(table) = table else {
            continue;
        };
        let (
            Some(name),
            Some(count),
            Some(tier),
            Some(cell),
            Some(arrival),
            Some(db_queries),
            Some(timeout),
            Some((retry, retry_budget)),
            Some(region),
            Some(eu_only),
            Some(writes),
            Some(jobs),
            Some(mix),
            Some(name_node),
            Some(schedule),
        ) = (
            name, count, tier, cell, arrival, db_queries, timeout, retry, region, eu_only, writes,
            jobs, mix, name_node, schedule,
        )
        else {
            continue;
        };
        if let Some((path, node)) = table {
            if let Some((_, (origin, key))) = signup.as_ref().or(deletion.as_ref()) {
                ctx.push(
                    origin.clone(),
                    key,
                    "sign-ups and deletions are per `count` group; a table's tenants are active from the start".into(),
                );
                continue;
            }
            tables::expand(
                ctx,
                tc,
                &mut Expansion {
                    tenants: &mut tenants,
                    groups: &mut groups,
                    targets: &mut targets,
                    total: &mut total,
                },
                tables::TableGroup {
                    name,
                    key: obj.key("table"),
                    path,
                    origin: node.origin.clone(),
                    arrival,
                    defaults: Tenant {
                        name: String::new(),
                        group: 0,
                        tier: 0,
                        cell: 0,
                        pinned: false,
                        region: None,
                        eu_only: false,
                        arrival: Arrival::NONE,
                        writes,
                        db_queries: db_queries as u32,
                        timeout,
                        retry,
                        retry_budget,
                        jobs,
                        mix,
                        schedule,
                        sized: false,
                    },
                    tier_routing,
                },
            );
            continue;
        }
        // Without an arrival (a replay's tenant), the tenant sends only the log's requests.
        let (arrival, size_law) = arrival.unwrap_or((Arrival::NONE, None));
        if let (Some(_), None) = (size_law, count) {
            ctx.push(
                arrival_node.map_or(name_node.origin.clone(), |n| n.origin.clone()),
                &obj.key("arrival.rate"),
                format!(
                    "tenant {name:?} draws its rate from a size table, which needs a `count` group (a single tenant has one rate: write a number)"
                ),
            );
            continue;
        }
        if let Some(problem) = pin_problem(tc, tier_routing, &name, tier, cell, eu_only) {
            ctx.push(name_node.origin.clone(), &obj.key("cell"), problem);
            continue;
        }
        total += count.unwrap_or(1);
        if total > MAX_TENANTS.max_int() {
            ctx.push(
                count_node.unwrap_or(name_node).origin.clone(),
                &obj.key("count"),
                format!(
                    "the scenario expands to {total} tenants or more: {}",
                    MAX_TENANTS.exceeded(total)
                ),
            );
            break;
        }
        let members: Vec<String> = match count {
            None => vec![name.clone()],
            Some(n) => {
                let width = n.to_string().len().max(3);
                (1..=n).map(|i| format!("{name}-{i:0width$}")).collect()
            }
        };
        if let Some(clash) = members
            .iter()
            .find(|m| **m != name && targets.contains_key(*m))
        {
            ctx.push(
                name_node.origin.clone(),
                &obj.key("name"),
                format!(
                    "duplicate tenant name {clash:?} (from `count` expansion); names must be unique"
                ),
            );
            continue;
        }
        if let Some(problem) = db_problem(
            tc,
            tier_routing,
            &name,
            tier,
            cell,
            mix.as_ref(),
            db_queries,
        ) {
            let origin = match (&mix, db_queries_node, mix_node) {
                (None, Some(n), _) | (Some(_), _, Some(n)) => n.origin.clone(),
                _ => name_node.origin.clone(),
            };
            ctx.push(
                origin,
                &obj.key(if mix.is_some() {
                    "requests"
                } else {
                    "db_queries"
                }),
                problem,
            );
            continue;
        }
        let group = groups.len();
        let first = tenants.len();
        let member_rates = size_law.map(|law| {
            law.member_rates(
                &crate::kernel::rng::Streams::new(tc.seed),
                &name,
                members.len() as u64,
            )
        });
        for (m, member) in members.into_iter().enumerate() {
            let index = tenants.len();
            let mut arrival = arrival;
            if let Some(rates) = &member_rates {
                arrival.rate = rates[m];
            }
            if member != name {
                targets.insert(member.clone(), Some(vec![index]));
            }
            tenants.push(Tenant {
                name: member,
                group,
                tier,
                cell: cell.unwrap_or(0),
                pinned: cell.is_some(),
                region: region.clone(),
                eu_only,
                arrival,
                writes,
                db_queries: db_queries as u32,
                timeout,
                retry,
                retry_budget,
                jobs,
                mix: mix.clone(),
                schedule,
                sized: member_rates.is_some(),
            });
        }
        targets.insert(name.clone(), Some((first..tenants.len()).collect()));
        let members = (tenants.len() - first) as u64;
        for (load, is_signup) in [(signup, true), (deletion, false)] {
            if let Some((load, written)) = load {
                loads.add(ctx, written, groups.len(), members, load, is_signup);
            }
        }
        groups.push(TenantGroup {
            name,
            tenants: first..tenants.len(),
        });
    }
    (tenants, groups, targets)
}

/// Gives unpinned tenants their starting cell from placement now, so faults can name the
/// tenants a cell or database outage affects. Returns whether every tenant has its starting
/// cell (false when placement failed or could not run).
fn place_tenants(
    ctx: &mut Ctx<'_>,
    node: Option<&Node>,
    tenants: &mut [Tenant],
    groups: &[TenantGroup],
    tc: &TenantContext<'_>,
) -> bool {
    let (cell_names, cells) = (tc.cell_names, tc.cells);
    let shard_size = tc.placement.and_then(|p| p.shard_size);
    let tier_routing = !tc.placement.is_some_and(|p| p.ignore_tier_cells);
    let Some(node) = node else {
        return tenants.is_empty();
    };
    // With an invalid cell (already reported), placement would only add confusing errors.
    if cells.is_empty() || cell_names.values().any(Option::is_none) {
        return false;
    }
    let pinned: Vec<Option<usize>> = tenants.iter().map(|t| t.pinned.then_some(t.cell)).collect();
    let policy = crate::model::placing::policy(shard_size);
    let routing = crate::model::placing::Routing::new(cells, tc.tiers, tier_routing);
    match crate::model::placing::initial_cells(cells, tenants, &pinned, &policy, &routing) {
        Ok(placed) => {
            for (t, cell) in tenants.iter_mut().zip(placed) {
                t.cell = cell;
            }
            true
        }
        Err(t) => {
            let tenant = &tenants[t];
            let why = if let Some(tier_cells) = routing.allowed(tenant.tier) {
                format!(
                    "no cell among the {} cells of its tier {:?} has room (check their `max_tenants`, region and EU residency)",
                    tier_cells.iter().filter(|&&a| a).count(),
                    tc.tiers[tenant.tier].name
                )
            } else if cells.iter().any(|c| c.max_tenants.is_some()) {
                "every cell it may use is at its `max_tenants`".to_string()
            } else if tenant.eu_only {
                let shard = shard_size.map_or(String::new(), |k| {
                    format!(" among the {k} cells of its shuffle shard")
                });
                format!("it is eu_only and no EU cell{shard} fits its region")
            } else if let Some(k) = shard_size {
                format!(
                    "no cell of its shuffle shard ({k} cells) is in its region {:?}",
                    tenant.region.as_deref().unwrap_or("?")
                )
            } else {
                format!(
                    "no cell is in its region {:?}",
                    tenant.region.as_deref().unwrap_or("?")
                )
            };
            ctx.push(
                node.origin.clone(),
                &format!("tenants.{}", groups[tenant.group].name),
                format!("tenant {:?} cannot be placed: {why}", tenant.name),
            );
            false
        }
    }
}

/// Why a tenant may not be pinned to `cell`: outside its tier's cells (with routing by tier),
/// or an EU-only tenant on a cell outside the EU.
fn pin_problem(
    tc: &TenantContext<'_>,
    tier_routing: bool,
    name: &str,
    tier: usize,
    cell: Option<usize>,
    eu_only: bool,
) -> Option<String> {
    let c = cell?;
    let cells = tc.cells;
    if let (true, Some(allowed)) = (
        tier_routing,
        tc.tiers.get(tier).and_then(|t| t.cells.as_ref()),
    ) && !allowed.contains(&c)
    {
        return Some(format!(
            "tenant {name:?} is pinned to cell {:?}, which is not among the cells of its tier {:?}",
            cells[c].name, tc.tiers[tier].name
        ));
    }
    match cells.get(c) {
        Some(cell) if eu_only && !cell.eu => Some(format!(
            "tenant {name:?} is eu_only but is pinned to cell {:?}, which is not an EU cell",
            cell.name
        )),
        _ => None,
    }
}

/// Why a tenant cannot query its cell's database: a tenant without a pinned cell may be placed
/// in any cell (of its tier's, with routing by tier), so every candidate must have a database
/// if it queries one.
fn db_problem(
    tc: &TenantContext<'_>,
    tier_routing: bool,
    name: &str,
    tier: usize,
    cell: Option<usize>,
    mix: Option<&crate::model::topology::Mix>,
    db_queries: u64,
) -> Option<String> {
    let cells = tc.cells;
    let tier_cells = tc
        .tiers
        .get(tier)
        .and_then(|t| t.cells.as_ref())
        .filter(|_| tier_routing);
    let candidates: Vec<&Cell> = match (cell, tier_cells) {
        (Some(c), _) => vec![&cells[c]],
        (None, Some(allowed)) => allowed.iter().map(|&c| &cells[c]).collect(),
        (None, None) => cells.iter().collect(),
    };
    let querying = match mix {
        None => (db_queries > 0).then(|| "db_queries".to_string()),
        Some(shares) => shares.iter().find_map(|s| {
            let class = &tc.classes[s.class as usize];
            topology::queries_cell_db(class, tc.programs, tc.services, db_queries as u32)
                .then(|| format!("requests.{}", class.name))
        }),
    }?;
    let c = topology::first_cell_without_db(&candidates)?;
    Some(format!(
        "tenants of {name:?} query their cell's database (`{querying}`) but cell {:?} has no `db` (pin them to a cell with one)",
        c.name
    ))
}

fn read_retry(
    ctx: &mut Ctx<'_>,
    node: &Node,
    key: &str,
) -> Option<(RetryPolicy, Option<BudgetConfig>)> {
    read_retry_table(ctx, node, key, &spec::RETRY)
}

/// A retry table declared by `table` (a tenant's, with a budget; a class's, without).
fn read_retry_table(
    ctx: &mut Ctx<'_>,
    node: &Node,
    key: &str,
    table: &'static TableSpec,
) -> Option<(RetryPolicy, Option<BudgetConfig>)> {
    let mut obj = read_table(
        ctx,
        node,
        key,
        "a retry table such as { max_attempts = 3 }",
        table,
    )?;
    let max_attempts = obj.or(ctx, "max_attempts", 3, |c, n, k| {
        read_count(c, n, k, 1, &MAX_ATTEMPTS, "an attempt count")
    });
    let backoff = obj.or(ctx, "backoff", Backoff::ExponentialFullJitter, |c, n, k| {
        read_choice(
            c,
            n,
            k,
            &[
                ("none", Backoff::None),
                ("exponential", Backoff::Exponential),
                ("exponential_full_jitter", Backoff::ExponentialFullJitter),
                ("decorrelated_jitter", Backoff::DecorrelatedJitter),
            ],
        )
    });
    let base = obj.or(ctx, "base", SimDuration::from_millis(100), |c, n, k| {
        read_duration(c, n, k)
    });
    let cap = obj.or(ctx, "cap", SimDuration::from_secs(5), |c, n, k| {
        read_duration(c, n, k)
    });
    let budget = if table.key("budget", None).is_some() {
        obj.or(ctx, "budget", None, read_budget)
    } else {
        Some(None)
    };
    obj.finish(ctx);
    Some((
        RetryPolicy {
            max_attempts: max_attempts? as u32,
            backoff: backoff?,
            base: base?,
            cap: cap?,
        },
        budget?,
    ))
}

/// A retry budget table, or `false` for none (so an override can switch a budget off).
fn read_budget(ctx: &mut Ctx<'_>, node: &Node, key: &str) -> Option<Option<BudgetConfig>> {
    if let Value::Boolean(false) = node.value {
        return Some(None);
    }
    read_budget_table(ctx, node, key).map(Some)
}

fn read_budget_table(ctx: &mut Ctx<'_>, node: &Node, key: &str) -> Option<BudgetConfig> {
    let mut obj = read_table(
        ctx,
        node,
        key,
        "a retry budget such as { ratio = 0.1, reserve = 10 }, or false",
        &spec::BUDGET,
    )?;
    let ratio = obj.or(ctx, "ratio", 0.1, |c, n, k| {
        read_fraction(c, n, k, "retries per request")
    });
    let reserve = obj.or(ctx, "reserve", 10, |c, n, k| {
        read_count(c, n, k, 0, &limits::MAX_SMALL_COUNT, "a token count")
    });
    obj.finish(ctx);
    let config = BudgetConfig {
        ratio: ratio?,
        reserve: reserve? as u32,
        max_balance: None,
    };
    match RetryBudget::new(config) {
        Ok(_) => Some(config),
        Err(e) => {
            ctx.push(
                node.origin.clone(),
                key,
                format!("invalid retry budget: {e}"),
            );
            None
        }
    }
}

fn read_job_load(ctx: &mut Ctx<'_>, node: &Node, key: &str) -> Option<JobLoad> {
    let mut obj = read_table(
        ctx,
        node,
        key,
        "a jobs table such as { rate = 0.5 } or { batch = 1000, at = \"10s\" }",
        &spec::JOB_LOAD,
    )?;
    let rate = obj.or(ctx, "rate", 0.0, |c, n, k| {
        read_positive(c, n, k, &limits::MAX_RATE, "jobs per second")
    });
    let batch_node = obj.node("batch");
    let batch = match batch_node {
        Some(n) => read_count(
            ctx,
            n,
            &obj.key("batch"),
            1,
            &limits::MAX_JOB_BATCH,
            "a job count",
        )
        .map(Some),
        None => Some(None),
    };
    let at = obj.or(ctx, "at", SimDuration::ZERO, |c, n, k| {
        read_duration(c, n, k)
    });
    obj.finish(ctx);
    let (rate, batch, at) = (rate?, batch?, at?);
    if rate == 0.0 && batch.is_none() {
        ctx.push(
            node.origin.clone(),
            key,
            "expected `rate` (jobs per second) or `batch` (a count submitted at `at`)".into(),
        );
        return None;
    }
    Some(JobLoad {
        rate,
        batch: batch.map(|count| (count, SimTime::ZERO + at)),
    })
}

fn resolve_targets(
    ctx: &mut Ctx<'_>,
    targets: &Targets,
    node: &Node,
    key: &str,
) -> Option<Vec<usize>> {
    let name = read_string(ctx, node, key, "a tenant name")?;
    match targets.get(&name) {
        Some(ids) => ids.clone(),
        None => {
            let known: Vec<&str> = targets.keys().map(String::as_str).collect();
            let suggestion = suggest(&name, &known)
                .map(|s| format!("; did you mean {s:?}?"))
                .unwrap_or_default();
            ctx.push(
                node.origin.clone(),
                key,
                format!("no tenant or tenant group named {name:?}{suggestion}"),
            );
            None
        }
    }
}

/// Tenants whose starting cell satisfies `in_cell`.
fn tenants_in(tenants: &[Tenant], in_cell: impl Fn(usize) -> bool) -> Vec<usize> {
    (0..tenants.len())
        .filter(|&t| in_cell(tenants[t].cell))
        .collect()
}

/// What fault tables are resolved against.
struct FaultContext<'a> {
    targets: &'a Targets,
    tier_names: &'a Names,
    group_names: &'a Names,
    cell_groups: &'a [CellGroup],
    cell_names: &'a Names,
    db_names: &'a Names,
    pool_names: &'a Names,
    class_names: &'a Names,
    service_names: &'a Names,
    dependency_names: &'a Names,
    cells: &'a [Cell],
    tenants: &'a [Tenant],
    databases: &'a [Database],
    classes: &'a [Class],
    services: &'a [crate::model::topology::Service],
    dependencies: &'a [crate::model::topology::DependencySpec],
    programs: &'a [Program],
    simulation: &'a Simulation,
    /// Whether requests fetch data keys from a KMS (`[kms]` present and enabled): a KMS
    /// fault without one would change nothing.
    kms_enabled: bool,
    /// Whether every tenant has its starting cell (placement succeeded).
    tenants_placed: bool,
}

/// Why a fault on the KMS is refused when no request calls one.
const KMS_OFF: &str = "the scenario has no KMS (add a [kms] table, or set kms.enabled = true): \
     no request fetches a data key, so this fault would change nothing";

impl FaultContext<'_> {
    /// Tenants placed at the start in cells that use `database`.
    fn tenants_of_database(&self, database: usize) -> Vec<usize> {
        tenants_in(self.tenants, |c| {
            self.cells
                .get(c)
                .is_some_and(|cell| cell.db == Some(database))
        })
    }

    /// Whether a tenant's requests (its classes, or the implicit one) are served by cell pool
    /// `pool`.
    fn uses_pool(&self, tenant: usize, pool: usize) -> bool {
        match self.tenants[tenant].mix.as_deref() {
            None => pool == 0,
            Some(shares) => shares
                .iter()
                .any(|s| self.classes[s.class as usize].pool == pool),
        }
    }

    /// The fault's `dependency`: `kms` and databases only if `databases` (errors), services
    /// and `[[dependencies]]` always.
    fn dependency(
        &self,
        ctx: &mut Ctx<'_>,
        obj: &mut Obj<'_>,
        databases: bool,
    ) -> Option<Dependency> {
        let what = if databases {
            "\"kms\", a database, a service or a dependency"
        } else {
            "a service or a dependency"
        };
        let node = obj.required(ctx, "dependency", what)?;
        let key = obj.key("dependency");
        let name = read_string(ctx, node, &key, what)?;
        let found = if name == "kms" {
            if databases && !self.kms_enabled {
                ctx.push(node.origin.clone(), &key, KMS_OFF.to_string());
                return None;
            }
            Some(Dependency::Kms)
        } else if let Some(d) = self.db_names.get(&name) {
            d.map(Dependency::Database)
        } else if let Some(s) = self.service_names.get(&name) {
            s.map(Dependency::Service)
        } else if let Some(d) = self.dependency_names.get(&name) {
            d.map(Dependency::External)
        } else {
            let known: Vec<&str> = self
                .db_names
                .keys()
                .chain(self.service_names.keys())
                .chain(self.dependency_names.keys())
                .map(String::as_str)
                .collect();
            let suggestion = suggest(&name, &known)
                .map(|s| format!("; did you mean {s:?}?"))
                .unwrap_or_default();
            ctx.push(
                node.origin.clone(),
                &key,
                format!(
                    "no {} named {name:?}{suggestion}",
                    if databases {
                        "database, service or dependency (or \"kms\")"
                    } else {
                        "service or dependency"
                    }
                ),
            );
            return None;
        };
        match found {
            Some(Dependency::Kms | Dependency::Database(_)) if !databases => {
                ctx.push(
                    node.origin.clone(),
                    &key,
                    format!(
                        "expected {what}; for a database use `db_slowdown` or `dependency_errors`"
                    ),
                );
                None
            }
            other => other,
        }
    }

    /// The fault's optional `cell` (calls from that cell only).
    fn caller_cell(&self, ctx: &mut Ctx<'_>, obj: &mut Obj<'_>) -> Option<Option<usize>> {
        match obj.node("cell") {
            Some(n) => resolve(ctx, self.cell_names, n, &obj.key("cell"), "cell").map(Some),
            None => Some(None),
        }
    }

    /// Tenants placed at the start (in `cell`, if given) whose classes may call
    /// `dependency`, through any service.
    fn callers(&self, dependency: Dependency, cell: Option<usize>) -> Vec<usize> {
        use crate::model::topology::{CallTarget, Op};
        // Which programs reach the dependency (directly, through branches or services).
        fn reaches(
            programs: &[Program],
            services: &[crate::model::topology::Service],
            program: u32,
            target: Dependency,
            depth: usize,
        ) -> bool {
            if depth > 64 {
                return false;
            }
            programs[program as usize].ops.iter().any(|op| match op {
                Op::Call {
                    target: CallTarget::Service { service, operation },
                    ..
                } => {
                    target == Dependency::Service(*service)
                        || services
                            .get(*service)
                            .and_then(|s| s.operations.get(*operation))
                            .is_some_and(|o| {
                                o.program != u32::MAX
                                    && reaches(programs, services, o.program, target, depth + 1)
                            })
                }
                Op::Call {
                    target: CallTarget::Dependency(d),
                    ..
                } => target == Dependency::External(*d),
                Op::Cache { cache, .. } => target == Dependency::External(*cache),
                Op::Parallel { branches, .. } => branches
                    .iter()
                    .any(|&b| reaches(programs, services, b, target, depth + 1)),
                _ => false,
            })
        }
        let class_reaches: Vec<bool> = self
            .classes
            .iter()
            .map(|c| {
                c.program
                    .is_some_and(|p| reaches(self.programs, self.services, p, dependency, 0))
            })
            .collect();
        (0..self.tenants.len())
            .filter(|&t| cell.is_none_or(|c| self.tenants[t].cell == c))
            .filter(|&t| {
                self.tenants[t]
                    .mix
                    .as_deref()
                    .is_some_and(|m| m.iter().any(|s| class_reaches[s.class as usize]))
            })
            .collect()
    }

    /// A database with replicas, named by the fault's `database`.
    fn replicated_database(&self, ctx: &mut Ctx<'_>, obj: &mut Obj<'_>) -> Option<usize> {
        let node = obj.required(ctx, "database", "a database with replicas")?;
        let database = resolve(ctx, self.db_names, node, &obj.key("database"), "database")?;
        if self.databases[database].replicas.is_none() {
            ctx.push(
                node.origin.clone(),
                &obj.key("database"),
                format!(
                    "database {:?} has no replicas (give it `replicas = {{ count = 1 }}`)",
                    self.databases[database].name
                ),
            );
            return None;
        }
        Some(database)
    }
}

const FAULT_KINDS: &[&str] = spec::FAULT_KINDS;

fn read_faults(
    ctx: &mut Ctx<'_>,
    node: Option<&Node>,
    fc: &FaultContext<'_>,
) -> (Vec<Fault>, Names) {
    let mut faults = Vec::new();
    let mut names = Names::new();
    let Some(node) = node else {
        return (faults, names);
    };
    // Each fault keeps the list of tenants it names: bounded in total, checked as each list is
    // made (a thousand faults on a million-tenant group would be 8 GB of lists).
    let mut targets = 0u64;
    // Each migration's fault index and its `to`, checked once every fault's start is known.
    let mut migrations: Vec<(usize, Origin, String)> = Vec::new();
    for mut obj in read_table_array(ctx, node, "faults", &spec::FAULTS, &limits::MAX_FAULTS) {
        let name_node = obj.required(ctx, "name", "a fault name");
        let name = name_node
            .and_then(|n| read_name(ctx, n, &obj.key("name")).map(|v| (v, n)))
            .filter(|(v, n)| claim_name(ctx, &mut names, v, n, &obj.key("name"), "fault"))
            .map(|(v, _)| v);
        let kinds = FAULT_KINDS
            .iter()
            .map(|k| format!("{k:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let kind_node = obj.required(ctx, "kind", &kinds);
        let kind_name = kind_node.and_then(|n| read_string(ctx, n, &obj.key("kind"), &kinds));
        let at_node = obj.required(ctx, "at", "the start time, such as \"30s\"");
        let at = at_node.and_then(|n| workload::read_time(ctx, n, &obj.key("at")));
        let duration = obj
            .required(ctx, "duration", "how long the fault lasts, such as \"60s\"")
            .and_then(|n| read_positive_duration(ctx, n, &obj.key("duration")));
        let kind = match kind_name.as_deref() {
            Some(k) if FAULT_KINDS.contains(&k) => {
                obj.set_variant(k);
                let kind = read_fault_kind(ctx, &mut obj, k, fc);
                obj.finish(ctx);
                kind
            }
            Some(other) => {
                // The keys of an unknown kind cannot be judged; report the kind alone.
                if let Some(n) = kind_node {
                    let suggestion = suggest(other, FAULT_KINDS)
                        .map(|s| format!("; did you mean {s:?}?"))
                        .unwrap_or_default();
                    ctx.push(
                        n.origin.clone(),
                        &obj.key("kind"),
                        format!(
                            "unknown fault kind {other:?}{suggestion}; expected one of {kinds}"
                        ),
                    );
                }
                None
            }
            None => None,
        };
        if let (Some(at), Some(at_node)) = (at, at_node)
            && at >= fc.simulation.duration
        {
            ctx.push(
                at_node.origin.clone(),
                &obj.key("at"),
                format!(
                    "the fault starts at {at}, at or after the end of the run ({})",
                    fc.simulation.duration
                ),
            );
            continue;
        }
        if let (Some(name), Some(at), Some(duration), Some(kind)) = (name, at, duration, kind) {
            let fault = Fault {
                name,
                at: SimTime::ZERO + at,
                duration,
                kind,
            };
            targets += fault.named_tenants().len() as u64;
            if targets > limits::MAX_FAULT_TARGETS.max_int() {
                ctx.push(
                    obj.origin.clone(),
                    &obj.key("tenant"),
                    format!(
                        "the faults name too many tenants in total: {}",
                        limits::MAX_FAULT_TARGETS.exceeded(targets)
                    ),
                );
                break;
            }
            if matches!(fault.kind, FaultKind::MigrateTenant { .. })
                && let Some(to) = obj.table.get("to")
            {
                migrations.push((faults.len(), to.origin.clone(), obj.key("to")));
            }
            names.insert(fault.name.clone(), Some(faults.len()));
            faults.push(fault);
        }
    }
    // A tenant whose placement failed has no starting cell to compare with.
    if fc.tenants_placed {
        check_migrations_move(ctx, &faults, &migrations, fc.tenants);
    }
    (faults, names)
}

/// Refuses a migration to the cell its tenant starts in when nothing before it can have moved
/// the tenant (an earlier migration of it, or an outage, whose failover may move tenants): it
/// would move nothing, and a drill built on it could not fail.
fn check_migrations_move(
    ctx: &mut Ctx<'_>,
    faults: &[Fault],
    migrations: &[(usize, Origin, String)],
    tenants: &[Tenant],
) {
    for (index, origin, key) in migrations {
        let fault = &faults[*index];
        let FaultKind::MigrateTenant { tenant, to } = fault.kind else {
            continue;
        };
        if tenants[tenant].cell != to {
            continue;
        }
        let moved_before = faults.iter().any(|other| {
            other.at < fault.at
                && match &other.kind {
                    FaultKind::MigrateTenant { tenant: t, .. } => *t == tenant,
                    FaultKind::CellOutage { .. } | FaultKind::RegionOutage { .. } => true,
                    _ => false,
                }
        });
        if !moved_before {
            ctx.push(
                origin.clone(),
                key,
                format!(
                    "tenant {:?} already lives in this cell when the migration starts: it \
                     would move nothing (expected another cell)",
                    tenants[tenant].name
                ),
            );
        }
    }
}

/// A load spike's tenants: a `tenant` (or tenant group), every tenant of a `tier`, or every
/// tenant whose starting cell is in a `cell_group` (a marketing launch); exactly one.
fn spike_targets(
    ctx: &mut Ctx<'_>,
    obj: &mut Obj<'_>,
    fc: &FaultContext<'_>,
) -> Option<Vec<usize>> {
    let tenant = obj.node("tenant");
    let tier = obj.node("tier");
    let cell_group = obj.node("cell_group");
    let given = [tenant, tier, cell_group].iter().flatten().count();
    if given != 1 {
        let origin = [tenant, tier, cell_group]
            .iter()
            .flatten()
            .nth(1)
            .map_or(obj.origin.clone(), |n| n.origin.clone());
        ctx.push(
            origin,
            &obj.key("tenant"),
            format!(
                "a load spike targets exactly one of `tenant`, `tier` or `cell_group`; found {given}"
            ),
        );
        return None;
    }
    if let Some(n) = tenant {
        return resolve_targets(ctx, fc.targets, n, &obj.key("tenant"));
    }
    if let Some(n) = tier {
        let tier = resolve(ctx, fc.tier_names, n, &obj.key("tier"), "tier")?;
        return Some(
            (0..fc.tenants.len())
                .filter(|&t| fc.tenants[t].tier == tier)
                .collect(),
        );
    }
    let n = cell_group?;
    let group = resolve(ctx, fc.group_names, n, &obj.key("cell_group"), "cell group")?;
    let cells = &fc.cell_groups[group].cells;
    Some(tenants_in(fc.tenants, |c| cells.contains(&c)))
}

/// The kind-specific keys of a fault.
fn read_fault_kind(
    ctx: &mut Ctx<'_>,
    obj: &mut Obj<'_>,
    kind: &str,
    fc: &FaultContext<'_>,
) -> Option<FaultKind> {
    let tenants = |ctx: &mut Ctx<'_>, obj: &mut Obj<'_>, what: &str| {
        obj.required(ctx, "tenant", what)
            .and_then(|n| resolve_targets(ctx, fc.targets, n, &obj.key("tenant")))
    };
    match kind {
        "load_spike" => {
            let tenants = spike_targets(ctx, obj, fc);
            let multiplier = obj
                .required(ctx, "multiplier", "the arrival-rate multiplier, such as 10")
                .and_then(|n| intensity(kind, "multiplier")(ctx, n, &obj.key("multiplier")));
            let class = match obj.node("class") {
                Some(n) => {
                    let key = obj.key("class");
                    match read_string(ctx, n, &key, "a class name").as_deref() {
                        Some(crate::model::topology::DEFAULT_CLASS_NAME) => {
                            Some(Some(crate::model::topology::CLASS_DEFAULT))
                        }
                        Some(_) => {
                            resolve(ctx, fc.class_names, n, &key, "class").map(|c| Some(c as u16))
                        }
                        None => None,
                    }
                }
                None => Some(None),
            };
            Some(FaultKind::LoadSpike {
                tenants: tenants?,
                multiplier: multiplier?,
                class: class?,
            })
        }
        "cell_outage" => {
            let cell = obj
                .required(ctx, "cell", "the cell that fails")
                .and_then(|n| resolve(ctx, fc.cell_names, n, &obj.key("cell"), "cell"));
            let cell = cell?;
            Some(FaultKind::CellOutage {
                cells: vec![cell],
                tenants: tenants_in(fc.tenants, |c| c == cell),
            })
        }
        "region_outage" => {
            let region_node = obj.required(ctx, "region", "the region whose cells fail");
            let region = region_node.and_then(|n| read_name(ctx, n, &obj.key("region")));
            let fraction = obj.or(ctx, "fraction", 1.0, intensity(kind, "fraction"));
            let (region, fraction, region_node) = (region?, fraction?, region_node?);
            let mut members: Vec<usize> = (0..fc.cells.len())
                .filter(|&c| fc.cells[c].region == region)
                .collect();
            if members.is_empty() {
                let mut regions: Vec<&str> = fc.cells.iter().map(|c| c.region.as_str()).collect();
                regions.sort_unstable();
                regions.dedup();
                ctx.push(
                    region_node.origin.clone(),
                    &obj.key("region"),
                    format!(
                        "no cell is in region {region:?} (regions: {})",
                        regions.join(", ")
                    ),
                );
                return None;
            }
            members.sort_by(|&a, &b| fc.cells[a].name.cmp(&fc.cells[b].name));
            let failing = ((fraction * members.len() as f64).ceil() as usize).min(members.len());
            members.truncate(failing);
            let tenants = tenants_in(fc.tenants, |c| members.contains(&c));
            Some(FaultKind::RegionOutage {
                region,
                fraction,
                cells: members,
                tenants,
            })
        }
        "db_slowdown" => {
            let database = obj
                .required(ctx, "database", "the database that slows down")
                .and_then(|n| resolve(ctx, fc.db_names, n, &obj.key("database"), "database"));
            let factor = obj
                .required(
                    ctx,
                    "factor",
                    "how many times longer queries take, such as 10",
                )
                .and_then(|n| intensity(kind, "factor")(ctx, n, &obj.key("factor")));
            let database = database?;
            Some(FaultKind::DbSlowdown {
                database,
                factor: factor?,
                tenants: fc.tenants_of_database(database),
            })
        }
        "kms_key_disabled" => {
            let tenants = tenants(ctx, obj, "the tenant whose KMS key is disabled");
            if !fc.kms_enabled {
                if let Some(kind) = obj.node("kind") {
                    ctx.push(kind.origin.clone(), &obj.key("kind"), KMS_OFF.to_string());
                }
                return None;
            }
            Some(FaultKind::KmsKeyDisabled { tenants: tenants? })
        }
        "partition" => {
            let node = obj.required(ctx, "between", "[\"edge\", \"mapping_store\"]")?;
            let mut ends: Vec<String> = match &node.value {
                Value::Array(items) => items
                    .iter()
                    .filter_map(|i| match &i.value {
                        Value::String(s) => Some(s.clone()),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            ends.sort();
            if ends != ["edge", "mapping_store"] {
                ctx.push(
                    node.origin.clone(),
                    &obj.key("between"),
                    format!(
                        "expected [\"edge\", \"mapping_store\"] (the partition the model supports), found {}",
                        node.value.describe()
                    ),
                );
                return None;
            }
            Some(FaultKind::Partition)
        }
        "control_plane_outage" => Some(FaultKind::ControlPlaneOutage),
        "dependency_errors" => {
            let dependency = fc.dependency(ctx, obj, true);
            let rate = obj
                .required(ctx, "rate", "the fraction of calls that fail, such as 0.5")
                .and_then(|n| intensity(kind, "rate")(ctx, n, &obj.key("rate")));
            let cell = fc.caller_cell(ctx, obj);
            let (dependency, cell) = (dependency?, cell?);
            if let (Some(_), Dependency::Database(_) | Dependency::Kms) = (cell, dependency) {
                ctx.push(
                    obj.origin.clone(),
                    &obj.key("cell"),
                    "`cell` applies to services and `[[dependencies]]`, not to databases or KMS"
                        .into(),
                );
                return None;
            }
            let tenants = match dependency {
                // As in earlier versions, errors of the databases and KMS name no tenant.
                Dependency::Database(_) | Dependency::Kms => Vec::new(),
                d => fc.callers(d, cell),
            };
            Some(FaultKind::DependencyErrors {
                dependency,
                rate: rate?,
                cell,
                tenants,
            })
        }
        "dependency_outage" | "dependency_slowdown" => {
            let dependency = fc.dependency(ctx, obj, false);
            let factor = if kind == "dependency_slowdown" {
                obj.required(ctx, "factor", "how many times longer its operations take")
                    .and_then(|n| {
                        read_positive(
                            ctx,
                            n,
                            &obj.key("factor"),
                            &limits::MAX_SLOWDOWN,
                            "a slowdown factor",
                        )
                    })
            } else {
                Some(1.0)
            };
            let cell = fc.caller_cell(ctx, obj);
            let (dependency, cell, factor) = (dependency?, cell?, factor?);
            let tenants = fc.callers(dependency, cell);
            Some(if kind == "dependency_slowdown" {
                FaultKind::DependencySlowdown {
                    dependency,
                    factor,
                    cell,
                    tenants,
                }
            } else {
                FaultKind::DependencyOutage {
                    dependency,
                    cell,
                    tenants,
                }
            })
        }
        "cache_flush" => {
            let node = obj.required(ctx, "cache", "a cache's name")?;
            let cache = resolve(
                ctx,
                fc.dependency_names,
                node,
                &obj.key("cache"),
                "dependency",
            )?;
            if fc.dependencies[cache].cache.is_none() {
                ctx.push(
                    node.origin.clone(),
                    &obj.key("cache"),
                    format!("{:?} is not a cache", fc.dependencies[cache].name),
                );
                return None;
            }
            Some(FaultKind::CacheFlush {
                cache,
                tenants: fc.callers(Dependency::External(cache), None),
            })
        }
        "pool_slowdown" => {
            let pool = obj
                .required(ctx, "pool", "`api` or a [[pools]] name")
                .and_then(|n| resolve(ctx, fc.pool_names, n, &obj.key("pool"), "pool"));
            let cell = match obj.node("cell") {
                Some(n) => resolve(ctx, fc.cell_names, n, &obj.key("cell"), "cell").map(Some),
                None => Some(None),
            };
            let factor = obj
                .required(
                    ctx,
                    "factor",
                    "how many times longer its work takes, such as 5",
                )
                .and_then(|n| {
                    read_positive(
                        ctx,
                        n,
                        &obj.key("factor"),
                        &limits::MAX_SLOWDOWN,
                        "a slowdown factor",
                    )
                });
            let (pool, cell) = (pool?, cell?);
            let cells: Vec<usize> = match cell {
                Some(c) => vec![c],
                None => (0..fc.cells.len()).collect(),
            };
            let tenants = tenants_in(fc.tenants, |c| cells.contains(&c))
                .into_iter()
                .filter(|&t| fc.uses_pool(t, pool))
                .collect();
            Some(FaultKind::PoolSlowdown {
                pool,
                cells,
                factor: factor?,
                tenants,
            })
        }
        "replica_lag" => {
            let database = fc.replicated_database(ctx, obj);
            let lag = obj
                .required(ctx, "lag", "the added replication lag, such as \"30s\"")
                .and_then(|n| read_positive_duration(ctx, n, &obj.key("lag")));
            let database = database?;
            Some(FaultKind::ReplicaLag {
                database,
                lag: lag?,
                tenants: fc.tenants_of_database(database),
            })
        }
        "replica_outage" => {
            let database = fc.replicated_database(ctx, obj);
            let replica_node = obj.node("replica");
            let replica = match replica_node {
                Some(n) => read_count(
                    ctx,
                    n,
                    &obj.key("replica"),
                    0,
                    &limits::MAX_REPLICAS,
                    "a replica number (from 0)",
                )
                .map(|r| Some(r as u32)),
                None => Some(None),
            };
            let (database, replica) = (database?, replica?);
            let count = fc.databases[database].replicas.map_or(0, |r| r.count);
            if let (Some(r), Some(n)) = (replica, replica_node)
                && r >= count
            {
                ctx.push(
                    n.origin.clone(),
                    &obj.key("replica"),
                    format!(
                        "database {:?} has {count} replicas, numbered 0 to {}; found {r}",
                        fc.databases[database].name,
                        count.saturating_sub(1)
                    ),
                );
                return None;
            }
            Some(FaultKind::ReplicaOutage {
                database,
                replica,
                tenants: fc.tenants_of_database(database),
            })
        }
        "poison_jobs" => {
            let tenants_node = obj.node("tenant");
            let tenants = tenants(ctx, obj, "the tenant whose jobs are poisoned");
            let fraction = obj.or(ctx, "fraction", 1.0, intensity(kind, "fraction"));
            let tenants = tenants?;
            if let Some(&t) = tenants.iter().find(|&&t| fc.tenants[t].jobs.is_none()) {
                ctx.push(
                    tenants_node.map_or(obj.origin.clone(), |n| n.origin.clone()),
                    &obj.key("tenant"),
                    format!("tenant {:?} submits no background jobs (give it `jobs = {{ rate = ... }}`)", fc.tenants[t].name),
                );
                return None;
            }
            Some(FaultKind::PoisonJobs {
                tenants,
                fraction: fraction?,
            })
        }
        "migrate_tenant" => {
            let tenant_node = obj.node("tenant");
            let tenants = tenants(ctx, obj, "the tenant to move");
            let to_node = obj.required(ctx, "to", "the destination cell");
            let to = to_node.and_then(|n| resolve(ctx, fc.cell_names, n, &obj.key("to"), "cell"));
            let (tenants, to) = (tenants?, to?);
            let [tenant] = tenants[..] else {
                ctx.push(
                    tenant_node.map_or(obj.origin.clone(), |n| n.origin.clone()),
                    &obj.key("tenant"),
                    "expected one tenant, not a group".into(),
                );
                return None;
            };
            if fc.tenants[tenant].eu_only && !fc.cells[to].eu {
                ctx.push(
                    to_node.map_or(obj.origin.clone(), |n| n.origin.clone()),
                    &obj.key("to"),
                    format!(
                        "tenant {:?} is eu_only; cell {:?} is not an EU cell",
                        fc.tenants[tenant].name, fc.cells[to].name
                    ),
                );
                return None;
            }
            Some(FaultKind::MigrateTenant { tenant, to })
        }
        "rate_limit" => {
            let node = obj.required(ctx, "dependency", "a dependency's name");
            let dependency = node.and_then(|n| {
                resolve(
                    ctx,
                    fc.dependency_names,
                    n,
                    &obj.key("dependency"),
                    "dependency",
                )
            });
            let rate = obj
                .required(ctx, "rate", "operations per second")
                .and_then(|n| {
                    read_positive(
                        ctx,
                        n,
                        &obj.key("rate"),
                        &limits::MAX_TIER_RATE,
                        "operations per second",
                    )
                });
            let (dependency, rate) = (dependency?, rate?);
            if fc.dependencies[dependency].cache.is_some() {
                ctx.push(
                    node.map_or(obj.origin.clone(), |n| n.origin.clone()),
                    &obj.key("dependency"),
                    format!(
                        "{:?} is a cache; a rate limit applies to object storage, search or a provider",
                        fc.dependencies[dependency].name
                    ),
                );
                return None;
            }
            Some(FaultKind::RateLimit { dependency, rate })
        }
        "runner_crash" => Some(FaultKind::RunnerCrash),
        _ => None,
    }
}

/// What SLO tables are resolved against.
struct SloContext<'a> {
    targets: &'a Targets,
    tenants: &'a [Tenant],
    tier_names: &'a Names,
    cell_names: &'a Names,
    group_names: &'a Names,
    groups: &'a [CellGroup],
    class_names: &'a Names,
    pool_names: &'a Names,
    faults: &'a [Fault],
    fault_names: &'a Names,
    simulation: &'a Simulation,
}

fn read_slos(
    ctx: &mut Ctx<'_>,
    node: Option<&Node>,
    sc: &SloContext<'_>,
) -> (Vec<Slo>, Vec<Window>) {
    let run_end = SimTime::ZERO + sc.simulation.duration;
    let judged_from = SimTime::ZERO + sc.simulation.warmup;
    let mut windows = vec![Window {
        label: "whole".to_string(),
        start: judged_from,
        end: run_end,
    }];
    let Some(node) = node else {
        return (Vec::new(), windows);
    };
    let mut slos = Vec::new();
    let mut names = BTreeSet::new();
    let mut selections: u64 = 0;
    for mut obj in read_table_array(ctx, node, "slo", &spec::SLOS, &limits::MAX_SLOS) {
        let name_node = obj.required(ctx, "name", "a description of the objective");
        let name = name_node.and_then(|n| read_text(ctx, n, &obj.key("name")));
        // The name is how reports, junit.xml and `check` tell objectives apart: a blank one
        // would be an unnamed line in each.
        if let (Some(blank), Some(n)) = (&name, name_node)
            && blank.trim().is_empty()
        {
            ctx.push(
                n.origin.clone(),
                &obj.key("name"),
                "expected a description of the objective, found an empty name".to_string(),
            );
        }
        if let (Some(name), Some(n)) = (&name, name_node)
            && !names.insert(name.clone())
        {
            ctx.push(
                n.origin.clone(),
                &obj.key("name"),
                format!("duplicate SLO name {name:?}"),
            );
        }
        let (selector, selected) = match obj.node("tenants") {
            None => (
                "all".to_string(),
                Some((0..sc.tenants.len()).collect::<Vec<_>>()),
            ),
            Some(n) => read_selector(ctx, n, &obj.key("tenants"), sc),
        };
        let scope = match obj.node("scope") {
            None => Some(Scope::Each),
            Some(n) => {
                let what = "\"each\" or \"pooled\"";
                match read_string(ctx, n, &obj.key("scope"), what).as_deref() {
                    Some("each") => Some(Scope::Each),
                    Some("pooled") => Some(Scope::Pooled),
                    Some(other) => {
                        ctx.push(
                            n.origin.clone(),
                            &obj.key("scope"),
                            format!("expected {what}, found {other:?}"),
                        );
                        None
                    }
                    None => None,
                }
            }
        };
        let window = match obj.node("window") {
            None => Some(0),
            Some(n) => read_window(ctx, n, &obj.key("window"), sc, judged_from, run_end).map(|w| {
                match windows.iter().position(|x| x.label == w.label) {
                    Some(i) => i,
                    None => {
                        windows.push(w);
                        windows.len() - 1
                    }
                }
            }),
        };
        let expect = obj
            .required(
                ctx,
                "expect",
                "a list of expectations such as [\"p99 < 250ms\", \"error_rate < 0.01\"]",
            )
            .and_then(|n| read_expectations(ctx, n, &obj.key("expect")));
        let min_samples = match obj.node("min_samples") {
            Some(n) => read_int(
                ctx,
                n,
                &obj.key("min_samples"),
                1,
                u64::MAX >> 1,
                "a sample count",
            ),
            None => Some(DEFAULT_MIN_SAMPLES),
        };
        let class_node = obj.node("class");
        let pool_node = obj.node("pool");
        let filter = match (class_node, pool_node) {
            (Some(_), Some(p)) => {
                ctx.push(
                    p.origin.clone(),
                    &obj.key("pool"),
                    "expected `class` or `pool`, not both".into(),
                );
                None
            }
            (Some(n), None) => {
                let key = obj.key("class");
                match read_string(ctx, n, &key, "a class name").as_deref() {
                    Some(crate::model::topology::DEFAULT_CLASS_NAME) => Some((
                        metric_slot::class(crate::model::topology::CLASS_DEFAULT),
                        format!("class {}", crate::model::topology::DEFAULT_CLASS_NAME),
                    )),
                    Some(name) => resolve(ctx, sc.class_names, n, &key, "class")
                        .map(|c| (metric_slot::class(c as u16), format!("class {name}"))),
                    None => None,
                }
            }
            (None, Some(n)) => {
                let key = obj.key("pool");
                resolve(ctx, sc.pool_names, n, &key, "pool").map(|p| {
                    let name = match &n.value {
                        Value::String(s) => s.clone(),
                        _ => String::new(),
                    };
                    (metric_slot::pool(p), format!("pool {name}"))
                })
            }
            (None, None) => Some((metric_slot::ALL, String::new())),
        };
        obj.finish(ctx);
        if let (
            Some(name),
            Some(selected),
            Some(scope),
            Some(window),
            Some(expect),
            Some(min_samples),
            Some((filter, filter_label)),
        ) = (name, selected, scope, window, expect, min_samples, filter)
        {
            selections += selected.len() as u64;
            if selections > limits::MAX_SLO_SELECTIONS.max_int() {
                ctx.push(
                    obj.origin.clone(),
                    &obj.key("tenants"),
                    format!(
                        "the SLOs judge too many tenants in total: {}",
                        limits::MAX_SLO_SELECTIONS.exceeded(selections)
                    ),
                );
                break;
            }
            slos.push(Slo {
                name,
                selector,
                tenants: selected,
                scope,
                window,
                expect,
                min_samples,
                filter,
                filter_label,
            });
        }
    }
    (slos, windows)
}

fn read_selector(
    ctx: &mut Ctx<'_>,
    node: &Node,
    key: &str,
    sc: &SloContext<'_>,
) -> (String, Option<Vec<usize>>) {
    let what = "\"all\", \"bystanders\", a list of tenant names, or { tier = \"NAME\" }, { cell = \"NAME\" }, { cell_group = \"NAME\" }";
    let all = || (0..sc.tenants.len()).collect::<Vec<_>>();
    match &node.value {
        Value::String(s) if s == "all" => ("all".into(), Some(all())),
        Value::String(s) if s == "bystanders" => {
            // One pass over the faults, then one over the tenants: linear, so a million
            // tenants under a cell outage load in a blink.
            let mut named = vec![false; sc.tenants.len()];
            for fault in sc.faults {
                for &t in fault.named_tenants() {
                    if let Some(flag) = named.get_mut(t) {
                        *flag = true;
                    }
                }
            }
            let bystanders = all().into_iter().filter(|&t| !named[t]).collect();
            ("bystanders".into(), Some(bystanders))
        }
        Value::String(s) => {
            ctx.push(
                node.origin.clone(),
                key,
                format!("expected {what}, found {s:?}"),
            );
            (s.clone(), None)
        }
        Value::Array(items) => {
            let mut selected = BTreeSet::new();
            let mut ok = true;
            let mut labels = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match resolve_targets(ctx, sc.targets, item, &format!("{key}[{i}]")) {
                    Some(ids) => selected.extend(ids),
                    None => ok = false,
                }
                if let Value::String(s) = &item.value {
                    labels.push(s.clone());
                }
            }
            if items.is_empty() {
                ctx.push(
                    node.origin.clone(),
                    key,
                    "expected at least one tenant name".into(),
                );
                ok = false;
            }
            (
                format!("[{}]", labels.join(", ")),
                ok.then(|| selected.into_iter().collect()),
            )
        }
        Value::Table(t) => {
            let mut obj = Obj::new(
                t,
                key.to_string(),
                node.origin.clone(),
                &spec::TIER_SELECTOR,
            );
            let forms = ["tier", "cell", "cell_group"];
            let given: Vec<(&str, &Node)> = forms
                .iter()
                .filter_map(|&f| obj.node(f).map(|n| (f, n)))
                .collect();
            let result = match given[..] {
                [("tier", n)] => {
                    resolve(ctx, sc.tier_names, n, &obj.key("tier"), "tier").map(|tier| {
                        (
                            "tier",
                            n,
                            (0..sc.tenants.len())
                                .filter(|&i| sc.tenants[i].tier == tier)
                                .collect::<Vec<_>>(),
                        )
                    })
                }
                [("cell", n)] => resolve(ctx, sc.cell_names, n, &obj.key("cell"), "cell")
                    .map(|cell| ("cell", n, tenants_in(sc.tenants, |c| c == cell))),
                [(_, n)] => resolve(ctx, sc.group_names, n, &obj.key("cell_group"), "cell group")
                    .map(|g| {
                        let cells = &sc.groups[g].cells;
                        (
                            "cell group",
                            n,
                            tenants_in(sc.tenants, |c| cells.contains(&c)),
                        )
                    }),
                _ => {
                    ctx.push(
                        node.origin.clone(),
                        key,
                        format!(
                            "expected exactly one of `tier`, `cell` or `cell_group`, found {}",
                            if given.is_empty() {
                                "none".to_string()
                            } else {
                                given
                                    .iter()
                                    .map(|(f, _)| format!("`{f}`"))
                                    .collect::<Vec<_>>()
                                    .join(" and ")
                            }
                        ),
                    );
                    None
                }
            };
            obj.finish(ctx);
            match result {
                Some((label, n, tenants)) => match &n.value {
                    Value::String(name) => (format!("{label} {name}"), Some(tenants)),
                    _ => (String::new(), None),
                },
                None => (String::new(), None),
            }
        }
        _ => {
            type_error(ctx, node, key, what);
            (String::new(), None)
        }
    }
}

fn read_window(
    ctx: &mut Ctx<'_>,
    node: &Node,
    key: &str,
    sc: &SloContext<'_>,
    judged_from: SimTime,
    run_end: SimTime,
) -> Option<Window> {
    let what = "\"whole\", \"during:FAULT\", \"during:FAULT+DELAY\", \"after:FAULT\", \"after:FAULT+DELAY\" or \"FROM..TO\" (offsets, or clock times with `[simulation] start`)";
    let text = read_string(ctx, node, key, what)?;
    let (start, end) = if text == "whole" {
        (judged_from, run_end)
    } else if let Some((from, to)) = text.split_once("..") {
        // A span of the run: offsets, or clock times against `[simulation] start`.
        let mut at = |part: &str| match workload::time_of_text(ctx.start.as_ref(), part.trim()) {
            Ok(d) => Some(SimTime::ZERO + d),
            Err(message) => {
                ctx.push(
                    node.origin.clone(),
                    key,
                    format!("bad time in window {text:?}: {message}"),
                );
                None
            }
        };
        let (from, to) = (at(from)?, at(to)?);
        (from.max(judged_from), to.min(run_end))
    } else if let Some((mode, rest)) = text.split_once(':') {
        let (fault_name, delay) = match rest.split_once('+') {
            Some((f, d)) => match SimDuration::parse(d) {
                Ok(d) => (f, d),
                Err(e) => {
                    ctx.push(
                        node.origin.clone(),
                        key,
                        format!("bad delay in window {text:?}: {e}"),
                    );
                    return None;
                }
            },
            None => (rest, SimDuration::ZERO),
        };
        let fault = match sc.fault_names.get(fault_name) {
            Some(Some(i)) => &sc.faults[*i],
            Some(None) => return None, // the fault itself is invalid (already reported)
            None => {
                let known: Vec<&str> = sc.fault_names.keys().map(String::as_str).collect();
                ctx.push(
                    node.origin.clone(),
                    key,
                    format!(
                        "window {text:?} names no fault {fault_name:?} (faults: {})",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                );
                return None;
            }
        };
        match mode {
            "during" => (
                (fault.at + delay).max(judged_from),
                fault.end().min(run_end),
            ),
            "after" => ((fault.end() + delay).max(judged_from), run_end),
            _ => {
                ctx.push(
                    node.origin.clone(),
                    key,
                    format!("expected {what}, found {text:?}"),
                );
                return None;
            }
        }
    } else {
        ctx.push(
            node.origin.clone(),
            key,
            format!("expected {what}, found {text:?}"),
        );
        return None;
    };
    if start >= end {
        ctx.push(
            node.origin.clone(),
            key,
            format!(
                "window {text:?} is empty: it would judge requests issued from {start} to {end} \
                 (after warmup, before the end of the run)"
            ),
        );
        return None;
    }
    Some(Window {
        label: text,
        start,
        end,
    })
}

fn read_expectations(ctx: &mut Ctx<'_>, node: &Node, key: &str) -> Option<Vec<super::Expectation>> {
    let items: Vec<&Node> = match &node.value {
        Value::Array(items) => items.iter().collect(),
        Value::String(_) => vec![node],
        _ => {
            type_error(
                ctx,
                node,
                key,
                "a list of expectations such as [\"p99 < 250ms\"]",
            );
            return None;
        }
    };
    if items.is_empty() {
        ctx.push(
            node.origin.clone(),
            key,
            "expected at least one expectation".into(),
        );
        return None;
    }
    if items.len() > limits::MAX_EXPECTATIONS.max_int() as usize {
        ctx.push(
            node.origin.clone(),
            key,
            format!(
                "expected fewer expectations: {}",
                limits::MAX_EXPECTATIONS.exceeded(items.len())
            ),
        );
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let item_key = format!("{key}[{i}]");
        let Some(text) = read_string(
            ctx,
            item,
            &item_key,
            "an expectation such as \"p99 < 250ms\"",
        ) else {
            ok = false;
            continue;
        };
        match parse_expectation(&text) {
            Ok(e) => out.push(e),
            Err(message) => {
                ctx.push(item.origin.clone(), &item_key, message);
                ok = false;
            }
        }
    }
    ok.then_some(out)
}
