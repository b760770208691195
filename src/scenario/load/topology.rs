//! Reading the architect's topology: `[[pools]]`, `[[cell_groups]]`, `[[classes]]` and their
//! call scripts (compiled into programs), tenants' request mixes, tiers' cells and databases'
//! replicas. Every name is resolved to a dense index here.

use std::sync::Arc;

use super::{
    Ctx, Names, Obj, claim_name, read_bool, read_count, read_dist, read_duration, read_fraction,
    read_name, read_positive, read_positive_duration, read_retry_table, read_string, read_table,
    read_table_array, resolve, suggest, type_error,
};
use crate::model::config::{ApiPool, Cell};
use crate::model::topology::{
    CellGroup, Class, ClassShare, DEFAULT_CLASS_NAME, DbTarget, Mix, Op, PoolSpec, Program,
    QueryCount, Replicas,
};
use crate::scenario::limits::{self, MAX_DB_QUERIES};
use crate::scenario::spec;
use crate::scenario::tree::{Node, Value};
use crate::time::SimDuration;

/// The name of a cell's own pool.
pub(super) const API_POOL_NAME: &str = "api";
/// What a query step's `db` says for the cell's own database.
const CELL_DB: &str = "cell";

/// `[[pools]]`: pool names go into `names` (`api` is 0, the first `[[pools]]` entry 1).
pub(super) fn read_pools(
    ctx: &mut Ctx<'_>,
    node: Option<&Node>,
    names: &mut Names,
) -> Vec<PoolSpec> {
    names.insert(API_POOL_NAME.to_string(), Some(0));
    let Some(node) = node else {
        return Vec::new();
    };
    let mut pools = Vec::new();
    for mut obj in read_table_array(ctx, node, "pools", &spec::POOLS, &limits::MAX_POOLS) {
        if let Some(pool) = read_named_pool(ctx, &mut obj, names) {
            pools.push(pool);
        }
        obj.finish(ctx);
    }
    pools
}

/// A pool table with its name; the name goes into `names` with the next index.
pub(super) fn read_named_pool(
    ctx: &mut Ctx<'_>,
    obj: &mut Obj<'_>,
    names: &mut Names,
) -> Option<PoolSpec> {
    let name_node = obj.required(ctx, "name", "a pool name");
    let name = name_node
        .and_then(|n| read_name(ctx, n, &obj.key("name")).map(|v| (v, n)))
        .filter(|(v, n)| claim_name(ctx, names, v, n, &obj.key("name"), "pool"))
        .map(|(v, _)| v);
    let pool = read_pool_body(ctx, obj);
    let (name, pool) = (name?, pool?);
    names.insert(
        name.clone(),
        Some(names.values().filter(|v| v.is_some()).count()),
    );
    Some(PoolSpec { name, ..pool })
}

/// The keys every worker pool has (a cell's `api` table, `[[pools]]`, a service's pools):
/// workers, queue, service time, admission, adaptive; every error is reported before `None`.
pub(super) fn read_pool_core(ctx: &mut Ctx<'_>, obj: &mut Obj<'_>) -> Option<ApiPool> {
    let workers = obj
        .required(ctx, "workers", "the number of concurrent requests")
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
    let queue = match obj.node("queue") {
        Some(n) => read_count(
            ctx,
            n,
            &obj.key("queue"),
            0,
            &limits::MAX_QUEUE,
            "a queue length",
        ),
        None => workers.map(|w| w * 16),
    };
    let service_time = obj
        .required(ctx, "service_time", "a distribution")
        .and_then(|n| read_dist(ctx, n, &obj.key("service_time")));
    let admission = obj.or(ctx, "admission", true, read_bool);
    let adaptive = obj.or(ctx, "adaptive", false, read_bool);
    Some(ApiPool {
        workers: workers? as u32,
        queue: queue? as u32,
        service_time: service_time?,
        admission: admission?,
        adaptive: adaptive?,
    })
}

/// The keys of a pool table other than its name.
fn read_pool_body(ctx: &mut Ctx<'_>, obj: &mut Obj<'_>) -> Option<PoolSpec> {
    let core = read_pool_core(ctx, obj);
    let cap = obj.or(ctx, "max_in_flight_per_tenant", None, |c, n, k| {
        read_count(c, n, k, 1, &limits::MAX_PER_TENANT, "a request count").map(|m| Some(m as u32))
    });
    let core = core?;
    Some(PoolSpec {
        name: String::new(),
        workers: core.workers,
        queue: core.queue,
        service_time: core.service_time,
        admission: core.admission,
        adaptive: core.adaptive,
        max_in_flight_per_tenant: cap?,
    })
}

/// `[[cell_groups]]`: group names go into `names`; a group may not share a cell's name.
pub(super) fn read_cell_groups(
    ctx: &mut Ctx<'_>,
    node: Option<&Node>,
    cell_names: &Names,
    names: &mut Names,
) -> Vec<CellGroup> {
    let Some(node) = node else {
        return Vec::new();
    };
    let mut groups = Vec::new();
    for mut obj in read_table_array(
        ctx,
        node,
        "cell_groups",
        &spec::CELL_GROUPS,
        &limits::MAX_CELL_GROUPS,
    ) {
        let name_node = obj.required(ctx, "name", "a cell group name");
        let name = name_node
            .and_then(|n| read_name(ctx, n, &obj.key("name")).map(|v| (v, n)))
            .filter(|(v, n)| {
                if cell_names.contains_key(v) {
                    ctx.push(
                        n.origin.clone(),
                        &obj.key("name"),
                        format!(
                            "cell group {v:?} has the name of a cell; give the group another name"
                        ),
                    );
                    return false;
                }
                claim_name(ctx, names, v, n, &obj.key("name"), "cell group")
            })
            .map(|(v, _)| v);
        let cells = obj
            .required(ctx, "cells", "a list of cell names")
            .and_then(|n| read_cell_list(ctx, n, &obj.key("cells"), cell_names));
        if let (Some(name), Some(cells)) = (name, cells) {
            names.insert(name.clone(), Some(groups.len()));
            groups.push(CellGroup { name, cells });
        }
        obj.finish(ctx);
    }
    groups
}

/// A non-empty list of distinct cell names.
fn read_cell_list(
    ctx: &mut Ctx<'_>,
    node: &Node,
    key: &str,
    cell_names: &Names,
) -> Option<Vec<usize>> {
    let Value::Array(items) = &node.value else {
        type_error(
            ctx,
            node,
            key,
            "a list of cell names, such as [\"cell-a\", \"cell-b\"]",
        );
        return None;
    };
    if items.is_empty() {
        ctx.push(
            node.origin.clone(),
            key,
            "expected at least one cell name, found an empty list".into(),
        );
        return None;
    }
    let mut cells = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        match resolve(ctx, cell_names, item, &format!("{key}[{i}]"), "cell") {
            Some(c) if cells.contains(&c) => {
                ctx.push(
                    item.origin.clone(),
                    &format!("{key}[{i}]"),
                    "expected distinct cells, found one twice".into(),
                );
                ok = false;
            }
            Some(c) => cells.push(c),
            None => ok = false,
        }
    }
    ok.then_some(cells)
}

/// A tier's `cells`: a cell group, a cell, or a list of cells.
pub(super) fn read_cell_set(
    ctx: &mut Ctx<'_>,
    node: &Node,
    key: &str,
    cell_names: &Names,
    group_names: &Names,
    groups: &[CellGroup],
) -> Option<Vec<usize>> {
    match &node.value {
        Value::String(name) => {
            if let Some(group) = group_names.get(name) {
                return group.map(|g| groups[g].cells.clone());
            }
            if let Some(cell) = cell_names.get(name) {
                return cell.map(|c| vec![c]);
            }
            let known: Vec<&str> = group_names
                .keys()
                .chain(cell_names.keys())
                .map(String::as_str)
                .collect();
            let suggestion = suggest(name, &known)
                .map(|s| format!("; did you mean {s:?}?"))
                .unwrap_or_default();
            ctx.push(
                node.origin.clone(),
                key,
                format!("no cell group or cell named {name:?}{suggestion}"),
            );
            None
        }
        Value::Array(_) => read_cell_list(ctx, node, key, cell_names),
        _ => {
            type_error(
                ctx,
                node,
                key,
                "a cell group name, a cell name, or a list of cell names",
            );
            None
        }
    }
}

/// A database's `replicas` table; `connections` is the database's own.
pub(super) fn read_replicas(
    ctx: &mut Ctx<'_>,
    node: &Node,
    key: &str,
    connections: Option<u64>,
) -> Option<Replicas> {
    let mut obj = read_table(
        ctx,
        node,
        key,
        "a replicas table such as { count = 2, lag = \"50ms\" }",
        &spec::REPLICAS,
    )?;
    let count = obj
        .required(ctx, "count", "the number of replicas")
        .and_then(|n| {
            read_count(
                ctx,
                n,
                &obj.key("count"),
                1,
                &limits::MAX_REPLICAS,
                "a replica count",
            )
        });
    let own = obj.or(ctx, "connections", None, |c, n, k| {
        read_count(c, n, k, 1, &limits::MAX_CONNECTIONS, "a connection count").map(Some)
    });
    let lag = obj.or(ctx, "lag", SimDuration::ZERO, read_duration);
    let apply_rate = obj.or(ctx, "apply_rate", None, |c, n, k| {
        read_positive(c, n, k, &limits::MAX_RATE, "writes per second").map(Some)
    });
    obj.finish(ctx);
    Some(Replicas {
        count: count? as u32,
        connections: own?.or(connections).unwrap_or(1) as u32,
        base_lag: lag?,
        apply_rate: apply_rate?,
    })
}

/// What the loader knows when it reads classes and compiles call scripts.
pub(super) struct ClassContext<'a> {
    pub pool_names: &'a Names,
    pub db_names: &'a Names,
    pub calls: super::services::CallNames<'a>,
}

/// `[[classes]]`, with their scripts compiled into `programs`.
pub(super) fn read_classes(
    ctx: &mut Ctx<'_>,
    node: Option<&Node>,
    context: &ClassContext<'_>,
    names: &mut Names,
    programs: &mut Vec<Program>,
) -> Vec<Class> {
    let Some(node) = node else {
        return Vec::new();
    };
    let mut classes = Vec::new();
    for mut obj in read_table_array(ctx, node, "classes", &spec::CLASSES, &limits::MAX_CLASSES) {
        let name_node = obj.required(ctx, "name", "a class name");
        let name = name_node
            .and_then(|n| read_name(ctx, n, &obj.key("name")).map(|v| (v, n)))
            .filter(|(v, n)| {
                if v == DEFAULT_CLASS_NAME {
                    ctx.push(
                        n.origin.clone(),
                        &obj.key("name"),
                        format!("{DEFAULT_CLASS_NAME:?} is the implicit class of tenants without `requests`; give this class another name"),
                    );
                    return false;
                }
                claim_name(ctx, names, v, n, &obj.key("name"), "class")
            })
            .map(|(v, _)| v);
        let pool = match obj.node("pool") {
            Some(n) => resolve(ctx, context.pool_names, n, &obj.key("pool"), "pool"),
            None => Some(0),
        };
        let cpu = obj.or(ctx, "cpu", None, |c, n, k| read_dist(c, n, k).map(Some));
        let writes = obj.or(ctx, "writes", None, |c, n, k| {
            read_fraction(c, n, k, "a fraction of requests").map(Some)
        });
        let timeout = obj.or(ctx, "timeout", None, |c, n, k| {
            read_timeout(c, n, k).map(Some)
        });
        let retry = obj.or(ctx, "retry", None, |c, n, k| {
            read_retry_table(c, n, k, &spec::CLASS_RETRY).map(|(policy, _)| Some(policy))
        });
        let cap = obj.or(ctx, "max_in_flight_per_tenant", None, |c, n, k| {
            read_count(c, n, k, 1, &limits::MAX_PER_TENANT, "a request count")
                .map(|m| Some(m as u32))
        });
        let program = obj.or(ctx, "calls", None, |c, n, k| {
            read_program(c, n, k, context, programs).map(Some)
        });
        if let (
            Some(name),
            Some(pool),
            Some(cpu),
            Some(writes),
            Some(timeout),
            Some(retry),
            Some(cap),
            Some(program),
        ) = (name, pool, cpu, writes, timeout, retry, cap, program)
        {
            names.insert(name.clone(), Some(classes.len()));
            classes.push(Class {
                name,
                pool,
                cpu,
                writes,
                timeout,
                retry,
                max_in_flight_per_tenant: cap,
                program,
            });
        }
        obj.finish(ctx);
    }
    classes
}

/// A client timeout: a positive duration or `"none"`.
pub(super) fn read_timeout(
    ctx: &mut Ctx<'_>,
    node: &Node,
    key: &str,
) -> Option<Option<SimDuration>> {
    match &node.value {
        Value::String(s) if s == "none" => Some(None),
        _ => read_positive_duration(ctx, node, key).map(Some),
    }
}

/// A list of steps, compiled into a new program; returns its index.
pub(super) fn read_program(
    ctx: &mut Ctx<'_>,
    node: &Node,
    key: &str,
    context: &ClassContext<'_>,
    programs: &mut Vec<Program>,
) -> Option<u32> {
    let ops = read_block(ctx, node, key, context, programs, 0)?;
    programs.push(Program { ops });
    Some((programs.len() - 1) as u32)
}

/// Steps compiled into ops whose cache indices count from 0 (see [`relocate`]); `depth` is
/// the nesting of `on_miss` and `parallel` so far.
fn read_block(
    ctx: &mut Ctx<'_>,
    node: &Node,
    key: &str,
    context: &ClassContext<'_>,
    programs: &mut Vec<Program>,
    depth: usize,
) -> Option<Vec<Op>> {
    if !matches!(node.value, Value::Array(_)) {
        type_error(
            ctx,
            node,
            key,
            "a list of steps, such as [{ db = \"cell\", queries = 2 }]",
        );
        return None;
    }
    if depth > limits::MAX_CALL_DEPTH.max_int() as usize {
        ctx.push(
            node.origin.clone(),
            key,
            format!(
                "steps nest too deep: {}",
                limits::MAX_CALL_DEPTH.exceeded(depth)
            ),
        );
        return None;
    }
    let mut ops: Vec<Op> = Vec::new();
    let mut ok = true;
    for mut obj in read_table_array(ctx, node, key, &spec::STEP, &limits::MAX_STEPS) {
        match read_step(ctx, &mut obj, context, programs, depth) {
            Some((block, count)) => {
                for _ in 0..count {
                    let base = ops.len() as u32;
                    ops.extend(block.iter().map(|op| relocate(op, base)));
                    if ops.len() > limits::MAX_STEPS.max_int() as usize {
                        break;
                    }
                }
            }
            None => ok = false,
        }
        obj.finish(ctx);
        if ops.len() > limits::MAX_STEPS.max_int() as usize {
            ctx.push(
                node.origin.clone(),
                key,
                format!(
                    "the script has too many steps with `count` unrolled: {}",
                    limits::MAX_STEPS.exceeded(ops.len())
                ),
            );
            return None;
        }
    }
    ok.then_some(ops)
}

/// `op` moved `base` places down a program (a cache block's indices are relative).
fn relocate(op: &Op, base: u32) -> Op {
    match op {
        Op::Cache {
            cache,
            keys,
            popularity,
            fill,
            probability,
        } => Op::Cache {
            cache: *cache,
            keys: *keys,
            popularity: *popularity,
            fill: fill + base,
            probability: *probability,
        },
        Op::CacheFill { lookup } => Op::CacheFill {
            lookup: lookup + base,
        },
        other => other.clone(),
    }
}

/// The step kinds, as the key that names each.
const STEP_KINDS: [&str; 5] = ["db", "service", "dependency", "cache", "parallel"];

/// One step (a block of ops: one, or a cache lookup with its miss path and fill) and its
/// `count`.
fn read_step(
    ctx: &mut Ctx<'_>,
    obj: &mut Obj<'_>,
    context: &ClassContext<'_>,
    programs: &mut Vec<Program>,
    depth: usize,
) -> Option<(Vec<Op>, u64)> {
    let probability = obj.or(ctx, "probability", 1.0, |c, n, k| {
        read_fraction(c, n, k, "a probability")
    });
    let count = obj.or(ctx, "count", 1, |c, n, k| {
        read_count(c, n, k, 1, &limits::MAX_STEPS, "a repeat count")
    });
    let given: Vec<&str> = STEP_KINDS
        .iter()
        .copied()
        .filter(|k| obj.table.get(k).is_some())
        .collect();
    let kind = match given[..] {
        [one] => one,
        _ => {
            ctx.push(
                obj.origin.clone(),
                &obj.path,
                format!(
                    "expected a step: exactly one of `db` (queries), `service`, `dependency`, `cache` or `parallel`, found {}",
                    if given.is_empty() {
                        "none".to_string()
                    } else {
                        given.iter().map(|g| format!("`{g}`")).collect::<Vec<_>>().join(" and ")
                    }
                ),
            );
            // Read every key so none is reported as unread.
            for k in spec::STEP.keys {
                obj.node(k.name);
            }
            return None;
        }
    };
    // Keys that belong to another kind of step are errors, not silently ignored.
    let belongs: &[(&str, &[&str])] = &[
        (
            "db",
            &[
                "queries",
                "replica",
                "query_time",
                "query_factor",
                "statement_timeout",
            ],
        ),
        ("service", &["op", "timeout"]),
        ("dependency", &["timeout"]),
        ("cache", &["keys", "popularity", "zipf", "on_miss"]),
        ("parallel", &[]),
    ];
    let own = belongs
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(&[][..], |(_, keys)| *keys);
    for (other, keys) in belongs {
        for &k in *keys {
            if !own.contains(&k)
                && let Some(n) = obj.table.get(k)
            {
                ctx.push(
                    n.origin.clone(),
                    &obj.key(k),
                    format!("`{k}` belongs to a `{other}` step, not to a `{kind}` step"),
                );
                obj.node(k);
            }
        }
    }
    // A bad probability still lets the step's own keys be read (checked, and none reported
    // as unread); the step is dropped at the end, as with a bad `count`.
    let (probability_read, probability) = (probability.is_some(), probability.unwrap_or(1.0));
    let ops = match kind {
        "db" => vec![read_query_step(ctx, obj, context, probability)?],
        "service" => {
            let service_node = obj.node("service")?;
            let op_node = obj.node("op");
            let timeout = obj.or(ctx, "timeout", None, |c, n, k| {
                super::services::read_step_timeout(c, n, k).map(Some)
            });
            let target = super::services::service_target(
                ctx,
                service_node,
                op_node,
                &obj.key("service"),
                &context.calls,
            );
            vec![Op::Call {
                target: target?,
                timeout: timeout?,
                probability,
            }]
        }
        "dependency" => {
            let node = obj.node("dependency")?;
            let timeout = obj.or(ctx, "timeout", None, |c, n, k| {
                super::services::read_step_timeout(c, n, k).map(Some)
            });
            let index = super::services::dependency_target(
                ctx,
                node,
                &obj.key("dependency"),
                &context.calls,
                false,
            );
            vec![Op::Call {
                target: crate::model::topology::CallTarget::Dependency(index?),
                timeout: timeout?,
                probability,
            }]
        }
        "cache" => {
            let node = obj.node("cache")?;
            let cache = super::services::dependency_target(
                ctx,
                node,
                &obj.key("cache"),
                &context.calls,
                true,
            );
            let keys = obj.or(ctx, "keys", 1000, |c, n, k| {
                read_count(c, n, k, 1, &limits::MAX_CACHE_KEYS, "a key count")
            });
            let popularity = obj.or(ctx, "popularity", true, |c, n, k| {
                super::read_choice(c, n, k, &[("zipf", true), ("uniform", false)])
            });
            let zipf = obj.or(ctx, "zipf", 1.0, |c, n, k| {
                read_positive(c, n, k, &limits::MAX_ZIPF, "a Zipf exponent")
            });
            let miss = match obj.node("on_miss") {
                Some(n) => read_block(ctx, n, &obj.key("on_miss"), context, programs, depth + 1),
                None => Some(Vec::new()),
            };
            let (cache, keys, popularity, zipf, miss) = (cache?, keys?, popularity?, zipf?, miss?);
            let mut block = Vec::with_capacity(miss.len() + 2);
            let fill = (miss.len() + 1) as u32;
            block.push(Op::Cache {
                cache,
                keys,
                popularity: if popularity {
                    crate::model::topology::Popularity::Zipf { exponent: zipf }
                } else {
                    crate::model::topology::Popularity::Uniform
                },
                fill,
                probability,
            });
            block.extend(miss.iter().map(|op| relocate(op, 1)));
            block.push(Op::CacheFill { lookup: 0 });
            block
        }
        _ => {
            let node = obj.node("parallel")?;
            let key = obj.key("parallel");
            let Value::Array(items) = &node.value else {
                type_error(ctx, node, &key, "a list of steps, one per branch");
                return None;
            };
            if items.is_empty() || items.len() > limits::MAX_FANOUT.max_int() as usize {
                ctx.push(
                    node.origin.clone(),
                    &key,
                    if items.is_empty() {
                        "expected at least one branch".to_string()
                    } else {
                        format!(
                            "too many branches: {}",
                            limits::MAX_FANOUT.exceeded(items.len())
                        )
                    },
                );
                return None;
            }
            // Each branch is one step (which may itself be a cache block or a parallel step).
            let mut branches = Vec::new();
            let mut ok = true;
            for (i, item) in items.iter().enumerate() {
                let one = Node {
                    value: Value::Array(vec![item.clone()]),
                    origin: item.origin.clone(),
                };
                match read_block(
                    ctx,
                    &one,
                    &format!("{key}[{i}]"),
                    context,
                    programs,
                    depth + 1,
                ) {
                    Some(ops) => {
                        programs.push(Program { ops });
                        branches.push((programs.len() - 1) as u32);
                    }
                    None => ok = false,
                }
            }
            if !ok {
                return None;
            }
            vec![Op::Parallel {
                branches,
                probability,
            }]
        }
    };
    let count = count?;
    probability_read.then_some((ops, count))
}

/// The keys of a query step.
fn read_query_step(
    ctx: &mut Ctx<'_>,
    obj: &mut Obj<'_>,
    context: &ClassContext<'_>,
    probability: f64,
) -> Option<Op> {
    let db_node = obj.node("db")?;
    let database = {
        let key = obj.key("db");
        match read_string(ctx, db_node, &key, "\"cell\" or a database name")?.as_str() {
            CELL_DB => Some(DbTarget::Cell),
            _ => resolve(ctx, context.db_names, db_node, &key, "database").map(DbTarget::Named),
        }
    };
    let queries = obj.or(ctx, "queries", 1, |c, n, k| {
        read_count(c, n, k, 1, &MAX_DB_QUERIES, "a query count")
    });
    let replica = obj.or(ctx, "replica", false, read_bool);
    let time = obj.or(ctx, "query_time", None, |c, n, k| {
        read_dist(c, n, k).map(Some)
    });
    let factor = obj.or(ctx, "query_factor", 1.0, |c, n, k| {
        read_positive(c, n, k, &limits::MAX_SLOWDOWN, "a factor")
    });
    let statement_timeout = obj.or(ctx, "statement_timeout", None, |c, n, k| {
        read_positive_duration(c, n, k).map(Some)
    });
    Some(Op::Query {
        database: database?,
        replica: replica?,
        count: QueryCount::Fixed(queries? as u32),
        time: time?,
        factor: factor?,
        statement_timeout: statement_timeout?,
        probability,
    })
}

/// A tenant's `requests`: shares of classes that add up to 1.
pub(super) fn read_mix(
    ctx: &mut Ctx<'_>,
    node: &Node,
    key: &str,
    class_names: &Names,
) -> Option<Mix> {
    let Value::Table(table) = &node.value else {
        type_error(
            ctx,
            node,
            key,
            "a table of class shares, such as { api = 0.9, report = 0.1 }",
        );
        return None;
    };
    if table.entries.is_empty() {
        ctx.push(
            node.origin.clone(),
            key,
            "expected at least one class share, found an empty table".into(),
        );
        return None;
    }
    let mut shares: Vec<ClassShare> = Vec::new();
    let mut ok = true;
    for entry in &table.entries {
        let entry_key = format!("{key}.{}", entry.key);
        let class = match class_names.get(entry.key.as_str()) {
            Some(index) => *index,
            None => {
                let known: Vec<&str> = class_names.keys().map(String::as_str).collect();
                let suggestion = suggest(&entry.key, &known)
                    .map(|s| format!("; did you mean {s:?}?"))
                    .unwrap_or_default();
                ctx.push(
                    entry.key_origin.clone(),
                    &entry_key,
                    format!(
                        "no class named {:?}{suggestion} (defined: {})",
                        entry.key,
                        if known.is_empty() {
                            "none: declare [[classes]] first".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                );
                ok = false;
                continue;
            }
        };
        let share = read_fraction(ctx, &entry.node, &entry_key, "a share of requests");
        if let (Some(class), Some(share)) = (class, share) {
            if share > 0.0 {
                shares.push(ClassShare {
                    class: class as u16,
                    share,
                });
            }
        } else {
            ok = false;
        }
    }
    if !ok {
        return None;
    }
    let total: f64 = shares.iter().map(|s| s.share).sum();
    if (total - 1.0).abs() > 1e-6 {
        ctx.push(
            node.origin.clone(),
            key,
            format!("expected shares that add up to 1, found {total} (a mix says which fraction of the tenant's requests each class is)"),
        );
        return None;
    }
    Some(Arc::from(shares))
}

/// Whether a class's call tree (through branches and services) queries its cell's own
/// database.
pub(super) fn queries_cell_db(
    class: &Class,
    programs: &[Program],
    services: &[crate::model::topology::Service],
    tenant_queries: u32,
) -> bool {
    fn reaches(
        programs: &[Program],
        services: &[crate::model::topology::Service],
        program: u32,
        depth: usize,
    ) -> bool {
        depth <= limits::MAX_CALL_DEPTH.max_int() as usize + 1
            && programs.get(program as usize).is_some_and(|p| {
                p.ops.iter().any(|op| match op {
                    Op::Query {
                        database: DbTarget::Cell,
                        ..
                    } => true,
                    Op::Parallel { branches, .. } => branches
                        .iter()
                        .any(|&b| reaches(programs, services, b, depth + 1)),
                    Op::Call {
                        target: crate::model::topology::CallTarget::Service { service, operation },
                        ..
                    } => services
                        .get(*service)
                        .and_then(|s| s.operations.get(*operation))
                        .is_some_and(|o| reaches(programs, services, o.program, depth + 1)),
                    _ => false,
                })
            })
    }
    match class.program {
        None => tenant_queries > 0,
        Some(p) => reaches(programs, services, p, 0),
    }
}

/// Cells a tenant may be placed in whose database is missing although its classes query it.
pub(super) fn first_cell_without_db<'c>(candidates: &[&'c Cell]) -> Option<&'c Cell> {
    candidates.iter().find(|c| c.db.is_none()).copied()
}
