//! Tenant groups read from a CSV table (`[[tenants]] table = "tenants.csv"`): each row is a
//! tenant, resolved and checked as an inline tenant is, every problem reported at the row's
//! `file:line` with its column; and the reading of any file a scenario names, with its digest.

use super::{Ctx, Expansion, Names, TenantContext, db_problem, pin_problem, suggest};
use crate::model::arrivals::{Mmpp, SizeLaw};
use crate::model::config::{Arrival, ArrivalProcess, Tenant, TenantGroup};
use crate::model::topology::{ClassShare, Mix};
use crate::scenario::Diagnostic;
use crate::scenario::inputs::{Files, InputFile};
use crate::scenario::limits::{Limit, MAX_TABLE_BYTES, MAX_TENANTS};
use crate::scenario::table::{TenantRow, parse_tenant_table, table_digest};
use crate::scenario::tree::Origin;

/// A `[[tenants]]` entry with a `table`: what its rows share.
pub(super) struct TableGroup {
    /// The group's name (for selectors and faults).
    pub name: String,
    /// The scenario key of the table (`tenants.customers.table`).
    pub key: String,
    /// The path as written.
    pub path: String,
    /// Where `table` is written (for errors about the file as a whole).
    pub origin: Origin,
    /// The entry's `arrival`, if it has one: its process applies to every row, its rate to
    /// rows without a `rate`.
    pub arrival: Option<(Arrival, Option<SizeLaw>)>,
    /// Everything else every row gets (timeout, retry, queries, writes, jobs, default mix,
    /// default schedule); name, tier, cell, region, residency and rate come from the row.
    pub defaults: Tenant,
    /// Whether tiers route to their cells (`[placement] ignore_tier_cells` unset).
    pub tier_routing: bool,
}

/// Reads the file at `path` (as the scenario writes it) through the caller's file access,
/// recording its digest; `None` after reporting why it cannot be read.
pub(super) fn read_file(
    ctx: &mut Ctx<'_>,
    origin: &Origin,
    key: &str,
    path: &str,
    limit: &Limit,
) -> Option<Vec<u8>> {
    let files = file_access(ctx, origin, key, path)?;
    match files.0.read(path, limit) {
        Ok(bytes) => {
            ctx.inputs.push(InputFile {
                key: key.to_string(),
                path: path.to_string(),
                digest: table_digest(&bytes),
                bytes: bytes.len() as u64,
            });
            Some(bytes)
        }
        Err(message) => {
            ctx.push(origin.clone(), key, message);
            None
        }
    }
}

/// The caller's file access, to read `path` (named by `key`); `None` after reporting that the
/// scenario was loaded without one.
pub(super) fn file_access(
    ctx: &mut Ctx<'_>,
    origin: &Origin,
    key: &str,
    path: &str,
) -> Option<Files> {
    let files = ctx.files.cloned();
    if files.is_none() {
        ctx.push(
            origin.clone(),
            key,
            format!(
                "this scenario reads {path:?}, but it was loaded without file access (the `simulate` commands read files next to the scenario; a library caller passes `LoadOptions::files`)"
            ),
        );
    }
    files
}

/// A problem in a row, at `path:line`, key `key.column`.
fn row_error(
    ctx: &mut Ctx<'_>,
    group: &TableGroup,
    row: &TenantRow,
    column: &str,
    message: String,
) {
    ctx.push_located(
        &group.origin,
        Diagnostic {
            location: format!("{}:{}", ctx.beside(&group.path), row.line),
            key: format!("{}.{column}", group.key),
            message,
        },
    );
}

/// The index of `name` in `names` for a row's `column`, or the column and why not (no such
/// name, or one whose own errors were reported already).
fn resolve_column(
    names: &Names,
    name: &str,
    what: &str,
    column: &'static str,
) -> Result<usize, (&'static str, String)> {
    lookup(names, name, what)
        .map_err(|m| (column, m))?
        .ok_or_else(|| (column, format!("the {what} has errors (reported above)")))
}

/// A name of the scenario, or why the row's is not one.
pub(super) fn lookup(names: &Names, name: &str, what: &str) -> Result<Option<usize>, String> {
    match names.get(name) {
        Some(index) => Ok(*index),
        None => {
            let known: Vec<&str> = names.keys().map(String::as_str).collect();
            let suggestion = suggest(name, &known)
                .map(|s| format!("; did you mean {s:?}?"))
                .unwrap_or_default();
            Err(format!(
                "no {what} named {name:?}{suggestion} (defined: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))
        }
    }
}

/// Reads `group`'s table and appends a tenant per row (a group of them) to `out`.
pub(super) fn expand(
    ctx: &mut Ctx<'_>,
    tc: &TenantContext<'_>,
    out: &mut Expansion<'_>,
    group: TableGroup,
) {
    if let Some((_, Some(_))) = group.arrival {
        ctx.push(
            group.origin.clone(),
            &group.key,
            format!(
                "tenant group {:?} reads its tenants from a table, whose `rate` column gives each its rate; the entry's `arrival.rate` must be a number (the rate of rows without one), not a size table",
                group.name
            ),
        );
        return;
    }
    let Some(bytes) = read_file(
        ctx,
        &group.origin,
        &group.key,
        &group.path,
        &MAX_TABLE_BYTES,
    ) else {
        return;
    };
    let rows = match parse_tenant_table(&bytes, &ctx.beside(&group.path)) {
        Ok(rows) => rows,
        Err(errors) => {
            for error in errors {
                ctx.push_located(&group.origin, error.to_diagnostic(&group.key));
            }
            return;
        }
    };
    *out.total += rows.len() as u64;
    if *out.total > MAX_TENANTS.max_int() {
        ctx.push(
            group.origin.clone(),
            &group.key,
            format!(
                "the scenario expands to {} tenants or more: {}",
                *out.total,
                MAX_TENANTS.exceeded(*out.total)
            ),
        );
        return;
    }
    let index = out.groups.len();
    let first = out.tenants.len();
    let mut ok = true;
    for row in &rows {
        match tenant_of(tc, &group, row, index) {
            Ok(tenant) if out.targets.contains_key(&tenant.name) => {
                row_error(
                    ctx,
                    &group,
                    row,
                    "name",
                    format!(
                        "duplicate tenant name {:?} (a tenant, group or table row of that name exists); names must be unique",
                        tenant.name
                    ),
                );
                ok = false;
            }
            Ok(tenant) => {
                out.targets
                    .insert(tenant.name.clone(), Some(vec![out.tenants.len()]));
                out.tenants.push(tenant);
            }
            Err((column, message)) => {
                row_error(ctx, &group, row, column, message);
                ok = false;
            }
        }
    }
    if !ok {
        return;
    }
    out.targets.insert(
        group.name.clone(),
        Some((first..out.tenants.len()).collect()),
    );
    out.groups.push(TenantGroup {
        name: group.name,
        tenants: first..out.tenants.len(),
    });
}

/// The tenant a row describes, or the column at fault and why.
fn tenant_of(
    tc: &TenantContext<'_>,
    group: &TableGroup,
    row: &TenantRow,
    index: usize,
) -> Result<Tenant, (&'static str, String)> {
    let tier = resolve_column(tc.tier_names, &row.tier, "tier", "tier")?;
    let cell = match &row.cell {
        Some(name) => Some(resolve_column(tc.cell_names, name, "cell", "cell")?),
        None => None,
    };
    let schedule = match &row.schedule {
        Some(name) => Some(resolve_column(
            tc.schedule_names,
            name,
            "schedule",
            "schedule",
        )?),
        None => group.defaults.schedule,
    };
    let mix: Option<Mix> = match &row.mix {
        Some(shares) => {
            let mut resolved = Vec::with_capacity(shares.len());
            for (class, share) in shares {
                resolved.push(ClassShare {
                    class: resolve_column(tc.class_names, class, "class", "mix")? as u16,
                    share: *share,
                });
            }
            Some(resolved.into())
        }
        None => group.defaults.mix.clone(),
    };
    let (process, group_rate) = match group.arrival {
        Some((arrival, _)) => (arrival.process, Some(arrival.rate)),
        None => (ArrivalProcess::Poisson, None),
    };
    // In a replay, a row without a rate sends only the log's requests.
    let rate = match (row.rate.or(group_rate), tc.replaying) {
        (Some(rate), _) => rate,
        (None, true) => 0.0,
        (None, false) => {
            return Err((
                "rate",
                format!(
                    "tenant {:?} has no rate: give the row a `rate`, or the entry an `arrival` whose rate rows without one take",
                    row.name
                ),
            ));
        }
    };
    // An MMPP's rates are its own: a row's rate scales both states to that long-run mean, so
    // the row keeps the entry's burst shape at its own size.
    let process = match (process, row.rate) {
        (ArrivalProcess::Mmpp(mmpp), Some(rate)) => {
            let scale = rate / mmpp.mean_rate();
            let [calm, burst] = mmpp.rates();
            Mmpp::new([calm * scale, burst * scale], mmpp.mean_sojourns())
                .map(ArrivalProcess::Mmpp)
                .map_err(|e| ("rate", e))?
        }
        (process, _) => process,
    };
    if let Some(problem) = pin_problem(tc, group.tier_routing, &row.name, tier, cell, row.eu_only) {
        return Err(("cell", problem));
    }
    let db_queries = u64::from(group.defaults.db_queries);
    if let Some(problem) = db_problem(
        tc,
        group.tier_routing,
        &row.name,
        tier,
        cell,
        mix.as_ref(),
        db_queries,
    ) {
        return Err((if row.mix.is_some() { "mix" } else { "cell" }, problem));
    }
    Ok(Tenant {
        name: row.name.clone(),
        group: index,
        tier,
        cell: cell.unwrap_or(0),
        pinned: cell.is_some(),
        region: row.region.clone(),
        eu_only: row.eu_only,
        arrival: Arrival { process, rate },
        mix,
        schedule,
        ..group.defaults.clone()
    })
}
