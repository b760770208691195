//! Reading services and dependencies: `[[services]]` (pools, operations and their call
//! scripts), `[[dependencies]]` (object storage, search, providers, caches), and the checks
//! that keep a call tree finite (no cycle between services, bounded depth).

use std::collections::BTreeMap;

use super::{
    Ctx, Names, Obj, claim_name, read_choice, read_count, read_dist, read_duration, read_fraction,
    read_name, read_positive, read_string, read_table_array,
};
use crate::model::topology::{
    CacheIsolation, CacheSpec, CallTarget, DependencyKind, DependencySpec, Op, Operation, PoolSpec,
    Program, Scope, Service,
};
use crate::scenario::limits;
use crate::scenario::spec;
use crate::scenario::tree::{Node, Origin};
use crate::time::SimDuration;

/// A scope as written.
pub(super) fn read_scope(ctx: &mut Ctx<'_>, node: &Node, key: &str) -> Option<Scope> {
    read_choice(
        ctx,
        node,
        key,
        &[
            ("cell", Scope::Cell),
            ("region", Scope::Region),
            ("global", Scope::Global),
            ("tenant", Scope::Tenant),
        ],
    )
}

/// `[[dependencies]]`; their names go into `names` (shared with databases and services).
pub(super) fn read_dependencies(
    ctx: &mut Ctx<'_>,
    node: Option<&Node>,
    names: &mut Names,
    taken: &Names,
) -> Vec<DependencySpec> {
    let Some(node) = node else {
        return Vec::new();
    };
    let mut dependencies = Vec::new();
    for mut obj in read_table_array(
        ctx,
        node,
        "dependencies",
        &spec::DEPENDENCIES,
        &limits::MAX_DEPENDENCIES,
    ) {
        let name = read_fault_target_name(
            ctx,
            &mut obj,
            taken,
            names,
            "dependency",
            "a database's name",
        );
        let kinds = "\"object_storage\", \"search\", \"provider\" or \"cache\"";
        let kind_node = obj.required(ctx, "kind", kinds);
        let kind = kind_node.and_then(|n| {
            read_choice(
                ctx,
                n,
                &obj.key("kind"),
                &[
                    ("object_storage", DependencyKind::ObjectStorage),
                    ("search", DependencyKind::Search),
                    ("provider", DependencyKind::Provider),
                    ("cache", DependencyKind::Cache),
                ],
            )
        });
        if let Some(k) = kind {
            obj.set_variant(k.name());
        }
        let scope = obj.or(ctx, "scope", Scope::Global, read_scope);
        let concurrency = obj.or(ctx, "concurrency", 64, |c, n, k| {
            read_count(c, n, k, 1, &limits::MAX_CONNECTIONS, "a concurrency")
        });
        let latency = obj
            .required(ctx, "latency", "a distribution")
            .and_then(|n| read_dist(ctx, n, &obj.key("latency")));
        let error_rate = obj.or(ctx, "error_rate", 0.0, |c, n, k| {
            read_fraction(c, n, k, "a fraction of operations")
        });
        let per_tenant = obj.or(ctx, "max_in_flight_per_tenant", None, |c, n, k| {
            read_count(c, n, k, 1, &limits::MAX_PER_TENANT, "an operation count")
                .map(|m| Some(m as u32))
        });
        let rate_limit = obj.or(ctx, "rate_limit", None, |c, n, k| {
            read_positive(c, n, k, &limits::MAX_TIER_RATE, "operations per second").map(Some)
        });
        let permanent_error_rate = if kind == Some(DependencyKind::Provider) {
            obj.or(ctx, "permanent_error_rate", 0.0, |c, n, k| {
                read_fraction(c, n, k, "a fraction of operations")
            })
        } else {
            Some(0.0)
        };
        let cache = if kind == Some(DependencyKind::Cache) {
            read_cache(ctx, &mut obj)
        } else {
            Some(None)
        };
        obj.finish(ctx);
        if let (
            Some(name),
            Some(kind),
            Some(scope),
            Some(concurrency),
            Some(latency),
            Some(error_rate),
            Some(per_tenant),
            Some(rate_limit),
            Some(permanent_error_rate),
            Some(cache),
        ) = (
            name,
            kind,
            scope,
            concurrency,
            latency,
            error_rate,
            per_tenant,
            rate_limit,
            permanent_error_rate,
            cache,
        ) {
            names.insert(name.clone(), Some(dependencies.len()));
            dependencies.push(DependencySpec {
                name,
                kind,
                scope,
                concurrency: concurrency as u32,
                latency,
                error_rate,
                max_in_flight_per_tenant: per_tenant,
                rate_limit,
                permanent_error_rate,
                cache,
            });
        }
    }
    dependencies
}

/// The cache keys of a `kind = "cache"` dependency.
fn read_cache(ctx: &mut Ctx<'_>, obj: &mut Obj<'_>) -> Option<Option<CacheSpec>> {
    let capacity = obj
        .required(ctx, "capacity", "the entries one instance holds")
        .and_then(|n| {
            read_count(
                ctx,
                n,
                &obj.key("capacity"),
                1,
                &limits::MAX_CACHE_ENTRIES,
                "an entry count",
            )
        });
    let ttl = obj.or(ctx, "ttl", None, |c, n, k| {
        super::read_positive_duration(c, n, k).map(Some)
    });
    let isolation_node = obj.node("isolation");
    let isolation = match isolation_node {
        Some(n) => read_choice(
            ctx,
            n,
            &obj.key("isolation"),
            &[("shared", 0u8), ("quota", 1), ("partition", 2)],
        ),
        None => Some(0),
    };
    let quota_node = obj.node("quota");
    let quota = match quota_node {
        Some(n) => read_count(
            ctx,
            n,
            &obj.key("quota"),
            1,
            &limits::MAX_CACHE_ENTRIES,
            "entries per tenant",
        )
        .map(Some),
        None => Some(None),
    };
    let (capacity, isolation, quota) = (capacity?, isolation?, quota?);
    let isolation = match (isolation, quota) {
        (0, None) => CacheIsolation::Shared,
        (1, Some(q)) => CacheIsolation::Quota(q),
        (2, Some(q)) => CacheIsolation::Partition(q),
        (_, None) => {
            ctx.push(
                isolation_node.map_or(obj.origin.clone(), |n| n.origin.clone()),
                &obj.key("quota"),
                "`isolation = \"quota\"` or `\"partition\"` needs `quota`, the entries each tenant may hold".into(),
            );
            return None;
        }
        (_, Some(_)) => {
            ctx.push(
                quota_node.map_or(obj.origin.clone(), |n| n.origin.clone()),
                &obj.key("quota"),
                "`quota` applies only with `isolation = \"quota\"` or `\"partition\"`".into(),
            );
            return None;
        }
    };
    Some(Some(CacheSpec {
        capacity,
        ttl: ttl?,
        isolation,
    }))
}

/// A service whose operations' scripts are not compiled yet.
pub(super) struct PendingService<'t> {
    pub service: Service,
    /// Per operation: its `calls`, if any, compiled once every service is known.
    pub calls: Vec<Option<(&'t Node, String)>>,
}

/// `[[services]]` without their operations' scripts (see [`PendingService`]); names go into
/// `names` (shared with databases and dependencies), operation names into `operations`.
pub(super) fn read_services<'t>(
    ctx: &mut Ctx<'_>,
    node: Option<&'t Node>,
    names: &mut Names,
    taken: &Names,
    operations: &mut BTreeMap<usize, Names>,
) -> Vec<PendingService<'t>> {
    let Some(node) = node else {
        return Vec::new();
    };
    let mut services = Vec::new();
    for mut obj in read_table_array(
        ctx,
        node,
        "services",
        &spec::SERVICES,
        &limits::MAX_SERVICES,
    ) {
        let name = read_fault_target_name(
            ctx,
            &mut obj,
            taken,
            names,
            "service",
            "a database's or dependency's name",
        );
        let scope = obj.or(ctx, "scope", Scope::Cell, read_scope);
        let mut pool_names = Names::new();
        // Entries as written (`usize::MAX`: the list is missing, which `required` reports): an
        // empty list is an error of its own below; entries with errors were reported one by one.
        let mut written = (usize::MAX, usize::MAX);
        let pools: Vec<PoolSpec> = match obj.required(ctx, "pools", "a list of pools") {
            Some(n) => {
                let key = obj.key("pools");
                let tables =
                    read_table_array(ctx, n, &key, &spec::SERVICE_POOLS, &limits::MAX_POOLS);
                written.0 = tables.len();
                tables
                    .into_iter()
                    .filter_map(|mut p| {
                        let pool = super::topology::read_named_pool(ctx, &mut p, &mut pool_names);
                        p.finish(ctx);
                        pool
                    })
                    .collect()
            }
            None => Vec::new(),
        };
        let mut op_names = Names::new();
        let mut ops = Vec::new();
        let mut calls = Vec::new();
        if let Some(n) = obj.required(ctx, "operations", "a list of operations") {
            let key = obj.key("operations");
            let tables = read_table_array(ctx, n, &key, &spec::OPERATIONS, &limits::MAX_OPERATIONS);
            written.1 = tables.len();
            for mut op in tables {
                let op_name = op
                    .required(ctx, "name", "an operation name")
                    .and_then(|n| read_name(ctx, n, &op.key("name")).map(|v| (v, n)))
                    .filter(|(v, n)| {
                        claim_name(ctx, &mut op_names, v, n, &op.key("name"), "operation")
                    })
                    .map(|(v, _)| v);
                let pool = match op.node("pool") {
                    Some(n) => {
                        super::resolve(ctx, &pool_names, n, &op.key("pool"), "pool of this service")
                    }
                    None => Some(0),
                };
                let cpu = op.or(ctx, "cpu", None, |c, n, k| read_dist(c, n, k).map(Some));
                let op_calls = op.node("calls").map(|n| (n, op.key("calls")));
                op.finish(ctx);
                if let (Some(op_name), Some(pool), Some(cpu)) = (op_name, pool, cpu) {
                    op_names.insert(op_name.clone(), Some(ops.len()));
                    ops.push(Operation {
                        name: op_name,
                        pool,
                        cpu,
                        program: u32::MAX,
                    });
                    calls.push(op_calls);
                }
            }
        }
        obj.finish(ctx);
        if ops.is_empty() || pools.is_empty() {
            // Said once, for a service whose lists were written empty; a missing list, or
            // entries with errors, were reported already.
            if name.is_some() && (written.0 == 0 || written.1 == 0) {
                ctx.push(
                    obj.origin.clone(),
                    &obj.path,
                    "a service needs at least one pool and one operation".into(),
                );
            }
            continue;
        }
        if let (Some(name), Some(scope)) = (name, scope) {
            operations.insert(services.len(), op_names);
            names.insert(name.clone(), Some(services.len()));
            services.push(PendingService {
                service: Service {
                    name,
                    scope,
                    pools,
                    operations: ops,
                },
                calls,
            });
        }
    }
    services
}

/// What call steps resolve names against.
pub(super) struct CallNames<'a> {
    pub service_names: &'a Names,
    pub operations: &'a BTreeMap<usize, Names>,
    pub dependency_names: &'a Names,
    pub dependencies: &'a [DependencySpec],
}

/// The target of a `service` step: the service and its operation (`op`, or the first).
pub(super) fn service_target(
    ctx: &mut Ctx<'_>,
    service_node: &Node,
    op_node: Option<&Node>,
    key: &str,
    names: &CallNames<'_>,
) -> Option<CallTarget> {
    let service = super::resolve(ctx, names.service_names, service_node, key, "service")?;
    let operation = match op_node {
        Some(n) => {
            let ops = names.operations.get(&service)?;
            super::resolve(
                ctx,
                ops,
                n,
                &format!("{}.op", key.trim_end_matches(".service")),
                "operation of this service",
            )?
        }
        None => 0,
    };
    Some(CallTarget::Service { service, operation })
}

/// The target of a `dependency` step (not a cache) or the cache of a `cache` step.
pub(super) fn dependency_target(
    ctx: &mut Ctx<'_>,
    node: &Node,
    key: &str,
    names: &CallNames<'_>,
    want_cache: bool,
) -> Option<usize> {
    let index = super::resolve(ctx, names.dependency_names, node, key, "dependency")?;
    let is_cache = names.dependencies[index].kind == DependencyKind::Cache;
    if is_cache != want_cache {
        let name = read_string(ctx, node, key, "a dependency name")?;
        ctx.push(
            node.origin.clone(),
            key,
            if want_cache {
                format!("{name:?} is not a cache (`kind = \"cache\"`); call it with `dependency`")
            } else {
                format!("{name:?} is a cache; look it up with `cache`, not `dependency`")
            },
        );
        return None;
    }
    Some(index)
}

/// Checks that no service calls itself through any chain of calls, and that every call tree
/// is at most `MAX_CALL_DEPTH` deep; reports the first cycle by its names.
pub(super) fn check_call_graph(
    ctx: &mut Ctx<'_>,
    origin: Origin,
    services: &[Service],
    programs: &[Program],
) -> bool {
    // The services a program calls, through parallel branches too.
    fn called(programs: &[Program], program: u32, out: &mut Vec<usize>) {
        for op in &programs[program as usize].ops {
            match op {
                Op::Call {
                    target: CallTarget::Service { service, .. },
                    ..
                } => out.push(*service),
                Op::Parallel { branches, .. } => {
                    for &b in branches {
                        called(programs, b, out);
                    }
                }
                _ => {}
            }
        }
    }
    let edges: Vec<Vec<usize>> = services
        .iter()
        .map(|s| {
            let mut out = Vec::new();
            for op in &s.operations {
                if op.program != u32::MAX {
                    called(programs, op.program, &mut out);
                }
            }
            out.sort_unstable();
            out.dedup();
            out
        })
        .collect();
    // Depth-first search with colours; the stack gives the cycle.
    let mut colour = vec![0u8; services.len()];
    let mut depth = vec![0usize; services.len()];
    fn visit(
        s: usize,
        edges: &[Vec<usize>],
        colour: &mut [u8],
        depth: &mut [usize],
        stack: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        colour[s] = 1;
        stack.push(s);
        let mut deepest = 0;
        for &t in &edges[s] {
            match colour[t] {
                1 => {
                    let from = stack.iter().position(|&x| x == t).unwrap_or(0);
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(t);
                    return Some(cycle);
                }
                0 => {
                    if let Some(cycle) = visit(t, edges, colour, depth, stack) {
                        return Some(cycle);
                    }
                }
                _ => {}
            }
            deepest = deepest.max(depth[t]);
        }
        depth[s] = deepest + 1;
        stack.pop();
        colour[s] = 2;
        None
    }
    for s in 0..services.len() {
        if colour[s] == 0
            && let Some(cycle) = visit(s, &edges, &mut colour, &mut depth, &mut Vec::new())
        {
            let names: Vec<&str> = cycle.iter().map(|&i| services[i].name.as_str()).collect();
            ctx.push(
                origin,
                "services",
                format!(
                    "services call each other in a cycle: {} (a call tree must end)",
                    names.join(" → ")
                ),
            );
            return false;
        }
    }
    if let Some((s, d)) = depth.iter().enumerate().max_by_key(|(_, d)| **d)
        && *d > limits::MAX_CALL_DEPTH.max_int() as usize
    {
        ctx.push(
            origin,
            "services",
            format!(
                "calls through service {:?} nest {d} levels deep: {}",
                services[s].name,
                limits::MAX_CALL_DEPTH.exceeded(d)
            ),
        );
        return false;
    }
    true
}

/// Reads `timeout` of a step (durations only).
pub(super) fn read_step_timeout(ctx: &mut Ctx<'_>, node: &Node, key: &str) -> Option<SimDuration> {
    let d = read_duration(ctx, node, key)?;
    if d == SimDuration::ZERO {
        ctx.push(
            node.origin.clone(),
            key,
            "expected a timeout greater than zero".into(),
        );
        return None;
    }
    Some(d)
}

/// Checks that the pool instances (every cell's pools, every service instance's pools) and
/// the dependency instances a run may create stay within their limits: a tenant-scoped
/// service makes its pools once per tenant that calls it.
/// Where the instance limits' errors point: the first `[[pools]]`, `[[services]]` and
/// `[[dependencies]]` table (1:1 when the scenario has none).
pub(super) struct InstanceOrigins {
    pub pools: Origin,
    pub services: Origin,
    pub dependencies: Origin,
}

pub(super) fn check_instances(
    ctx: &mut Ctx<'_>,
    at: &InstanceOrigins,
    cells: &[crate::model::config::Cell],
    tenants: usize,
    pools: &[PoolSpec],
    services: &[Service],
    dependencies: &[DependencySpec],
) {
    let regions = {
        let mut names: Vec<&str> = cells.iter().map(|c| c.region.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        names.len()
    };
    let instances = |scope: Scope| -> u64 {
        match scope {
            Scope::Cell => cells.len() as u64,
            Scope::Region => regions as u64,
            Scope::Global => 1,
            Scope::Tenant => tenants as u64,
        }
    };
    let mut pool_instances = cells.len() as u64 * (1 + pools.len() as u64);
    for s in services {
        pool_instances += instances(s.scope) * s.pools.len() as u64;
    }
    if pool_instances > limits::MAX_POOL_INSTANCES.max_int() {
        let (origin, key) = if services.iter().any(|s| !s.pools.is_empty()) {
            (&at.services, "services")
        } else {
            (&at.pools, "pools")
        };
        ctx.push(
            origin.clone(),
            key,
            format!(
                "the scenario can make {pool_instances} pool instances (every cell's pools and every service instance's; a tenant-scoped service has one instance per tenant): {}",
                limits::MAX_POOL_INSTANCES.exceeded(pool_instances)
            ),
        );
    }
    let dependency_instances: u64 = dependencies.iter().map(|d| instances(d.scope)).sum();
    if dependency_instances > limits::MAX_DEPENDENCY_INSTANCES.max_int() {
        ctx.push(
            at.dependencies.clone(),
            "dependencies",
            format!(
                "the scenario can make {dependency_instances} dependency instances (a tenant-scoped dependency has one per tenant): {}",
                limits::MAX_DEPENDENCY_INSTANCES.exceeded(dependency_instances)
            ),
        );
    }
    // A cache instance's entries are bounded by its capacity; all of them together by this.
    let cache_entries: u64 = dependencies
        .iter()
        .filter_map(|d| {
            d.cache
                .map(|c| c.capacity.saturating_mul(instances(d.scope)))
        })
        .sum();
    if cache_entries > limits::MAX_CACHE_ENTRIES_TOTAL.max_int() {
        ctx.push(
            at.dependencies.clone(),
            "dependencies",
            format!(
                "the caches' capacities times their instances: {}",
                limits::MAX_CACHE_ENTRIES_TOTAL.exceeded(crate::text::thousands(cache_entries))
            ),
        );
    }
}

/// The `name` of a `what` (a dependency or a service) that faults' `dependency` may name:
/// claimed in `names`, and refused if `taken` (by `taken_as`) already holds it.
fn read_fault_target_name(
    ctx: &mut Ctx<'_>,
    obj: &mut Obj<'_>,
    taken: &Names,
    names: &mut Names,
    what: &str,
    taken_as: &str,
) -> Option<String> {
    let name_node = obj.required(ctx, "name", &format!("a {what} name"));
    name_node
        .and_then(|n| read_name(ctx, n, &obj.key("name")).map(|v| (v, n)))
        .filter(|(v, n)| {
            if taken.contains_key(v) {
                ctx.push(
                    n.origin.clone(),
                    &obj.key("name"),
                    format!(
                        "{v:?} is already {taken_as}; a fault's `dependency` must name one thing"
                    ),
                );
                return false;
            }
            claim_name(ctx, names, v, n, &obj.key("name"), what)
        })
        .map(|(v, _)| v)
}
