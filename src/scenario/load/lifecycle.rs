//! Reading the tenant lifecycle: `[[workflows]]` (onboarding and offboarding sagas and their
//! steps), `[backups]`, and the `signup` / `deletion` tables of tenant groups, with the checks
//! that tie them together (a sign-up names an onboarding workflow, a step calls a dependency
//! that is not a cache, the limits on steps, sign-ups and providers).

use super::{
    Ctx, Names, Obj, claim_name, read_bool, read_choice, read_count, read_dist, read_name,
    read_positive, read_positive_duration, read_retry_table, read_table, read_table_array, resolve,
    topology,
};
use crate::components::retry::{Backoff, RetryPolicy};
use crate::model::dist::Dist;
use crate::model::lifecycle::{
    Backups, LifecycleLoad, Store, WorkflowKind, WorkflowSpec, WorkflowStep,
};
use crate::model::topology::{DependencyKind, DependencySpec};
use crate::scenario::limits;
use crate::scenario::spec::{self, TableSpec};
use crate::scenario::tree::{Node, Origin, Value};
use crate::time::{SimDuration, SimTime};

/// The retry policy of a workflow without a `retry` table: the table's defaults.
const DEFAULT_RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 3,
    backoff: Backoff::ExponentialFullJitter,
    base: SimDuration::from_millis(100),
    cap: SimDuration::from_secs(5),
};
/// Attempt timeout of a step without one.
const DEFAULT_TIMEOUT: SimDuration = SimDuration::from_secs(30);
/// Time of a step without a dependency.
const DEFAULT_STEP_TIME: Dist = Dist::Constant(SimDuration::from_millis(10));
/// Names refused at sign-up unless a workflow says otherwise.
const DEFAULT_RESERVED: [&str; 3] = ["www", "root", "admin"];

/// `[[workflows]]`; their names go into `names`.
pub(super) fn read_workflows(
    ctx: &mut Ctx<'_>,
    node: Option<&Node>,
    names: &mut Names,
    dependency_names: &Names,
    dependencies: &[DependencySpec],
) -> Vec<WorkflowSpec> {
    let Some(node) = node else {
        return Vec::new();
    };
    let mut workflows = Vec::new();
    for mut obj in read_table_array(
        ctx,
        node,
        "workflows",
        &spec::WORKFLOWS,
        &limits::MAX_WORKFLOWS,
    ) {
        let name = obj
            .required(ctx, "name", "a workflow name")
            .and_then(|n| read_name(ctx, n, &obj.key("name")).map(|v| (v, n)))
            .filter(|(v, n)| claim_name(ctx, names, v, n, &obj.key("name"), "workflow"))
            .map(|(v, _)| v);
        let kind = obj
            .required(ctx, "kind", "\"onboarding\" or \"offboarding\"")
            .and_then(|n| {
                read_choice(
                    ctx,
                    n,
                    &obj.key("kind"),
                    &[
                        ("onboarding", WorkflowKind::Onboarding),
                        ("offboarding", WorkflowKind::Offboarding),
                    ],
                )
            });
        if let Some(k) = kind {
            obj.set_variant(k.name());
        }
        let retry = obj.or(ctx, "retry", DEFAULT_RETRY, |c, n, k| {
            read_retry_table(c, n, k, &spec::WORKFLOW_RETRY).map(|(p, _)| p)
        });
        let timeout = obj.or(ctx, "timeout", DEFAULT_TIMEOUT, read_positive_duration);
        let bound = obj.or(ctx, "bound", None, |c, n, k| {
            read_positive_duration(c, n, k).map(Some)
        });
        let compensation = obj.or(ctx, "compensation", true, read_bool);
        let concurrency = obj.or(ctx, "concurrency", 0, |c, n, k| {
            read_count(c, n, k, 0, &limits::MAX_WORKERS, "a count of workflows")
        });
        let reserved_names = if kind == Some(WorkflowKind::Onboarding) {
            obj.or(
                ctx,
                "reserved_names",
                DEFAULT_RESERVED.iter().map(|s| (*s).to_string()).collect(),
                read_name_list,
            )
        } else {
            Some(Vec::new())
        };
        let steps_node = obj.required(ctx, "steps", "a list of steps");
        obj.finish(ctx);
        let (Some(kind), Some(retry), Some(timeout)) = (kind, retry, timeout) else {
            continue;
        };
        let context = StepContext {
            kind,
            retry,
            timeout,
            dependency_names,
            dependencies,
        };
        let steps = steps_node.and_then(|n| read_steps(ctx, n, &obj.key("steps"), &context));
        let (Some(name), Some(bound), Some(compensation), Some(concurrency)) =
            (name, bound, compensation, concurrency)
        else {
            continue;
        };
        let (Some(steps), Some(reserved_names), Some(steps_node)) =
            (steps, reserved_names, steps_node)
        else {
            continue;
        };
        let workflow = WorkflowSpec {
            name,
            kind,
            steps,
            bound,
            compensation,
            concurrency: concurrency as u32,
            reserved_names,
        };
        if let Err(e) = workflow.definition() {
            ctx.push(
                steps_node.origin.clone(),
                &obj.key("steps"),
                format!("invalid workflow: {e}"),
            );
            continue;
        }
        names.insert(workflow.name.clone(), Some(workflows.len()));
        workflows.push(workflow);
    }
    workflows
}

/// What a workflow's steps are read against.
struct StepContext<'a> {
    kind: WorkflowKind,
    retry: RetryPolicy,
    timeout: SimDuration,
    dependency_names: &'a Names,
    dependencies: &'a [DependencySpec],
}

/// A workflow's `steps`; `None` if any step had an error (already reported).
fn read_steps(
    ctx: &mut Ctx<'_>,
    node: &Node,
    key: &str,
    sc: &StepContext<'_>,
) -> Option<Vec<WorkflowStep>> {
    let objects = read_table_array(
        ctx,
        node,
        key,
        &spec::WORKFLOW_STEPS,
        &limits::MAX_WORKFLOW_STEPS,
    );
    if objects.is_empty() {
        if !matches!(&node.value, Value::Array(items) if items.is_empty()) {
            return None; // not an array, or too long: already reported
        }
        ctx.push(
            node.origin.clone(),
            key,
            "a workflow needs at least one step".into(),
        );
        return None;
    }
    let mut names = Names::new();
    let mut steps = Vec::new();
    let mut valid = true;
    for mut obj in objects {
        match read_step(ctx, &mut obj, &mut names, sc) {
            Some(step) => steps.push(step),
            None => valid = false,
        }
        obj.finish(ctx);
    }
    valid.then_some(steps)
}

fn read_step(
    ctx: &mut Ctx<'_>,
    obj: &mut Obj<'_>,
    names: &mut Names,
    sc: &StepContext<'_>,
) -> Option<WorkflowStep> {
    let onboarding = sc.kind == WorkflowKind::Onboarding;
    let name = obj
        .required(ctx, "name", "a step name")
        .and_then(|n| read_name(ctx, n, &obj.key("name")).map(|v| (v, n)))
        .filter(|(v, n)| claim_name(ctx, names, v, n, &obj.key("name"), "step"))
        .map(|(v, _)| v);
    let dependency_node = obj.node("dependency");
    let dependency = match dependency_node {
        Some(n) => resolve(
            ctx,
            sc.dependency_names,
            n,
            &obj.key("dependency"),
            "dependency",
        )
        .and_then(|d| {
            if sc.dependencies[d].kind == DependencyKind::Cache {
                ctx.push(
                    n.origin.clone(),
                    &obj.key("dependency"),
                    format!(
                        "{:?} is a cache; a workflow step calls object storage, search or a provider",
                        sc.dependencies[d].name
                    ),
                );
                return None;
            }
            Some(Some(d))
        }),
        None => Some(None),
    };
    let time_node = obj.node("time");
    let time = match time_node {
        Some(n) => read_dist(ctx, n, &obj.key("time")),
        None => Some(DEFAULT_STEP_TIME),
    };
    let retry = obj.or(ctx, "retry", sc.retry, |c, n, k| {
        read_retry_table(c, n, k, &spec::WORKFLOW_RETRY).map(|(p, _)| p)
    });
    let timeout = obj.or(ctx, "timeout", sc.timeout, read_positive_duration);
    let compensate = obj.or(ctx, "compensate", onboarding, read_bool);
    let ready_node = obj.node("ready_after");
    let ready_after = match ready_node {
        Some(n) => read_dist(ctx, n, &obj.key("ready_after")).map(Some),
        None => Some(None),
    };
    let gates_node = obj.node("gates_access");
    let gates_access = match gates_node {
        Some(n) => read_bool(ctx, n, &obj.key("gates_access")),
        None => Some(true),
    };
    let erases_node = obj.node("erases");
    let erases = match erases_node {
        Some(n) => read_choice(
            ctx,
            n,
            &obj.key("erases"),
            &[
                ("database", Store::Database),
                ("caches", Store::Caches),
                ("search", Store::Search),
                ("backups", Store::Backups),
                ("resources", Store::Resources),
            ],
        )
        .map(Some),
        None => Some(None),
    };
    let mut valid = true;
    let mut refuse = |ctx: &mut Ctx<'_>, node: Option<&Node>, key: &str, why: &str| {
        if let Some(n) = node {
            ctx.push(n.origin.clone(), &obj.key(key), why.to_string());
            valid = false;
        }
    };
    if let (Some(Some(_)), Some(_)) = (dependency, time_node) {
        refuse(
            ctx,
            time_node,
            "time",
            "`time` is the work of a step without a `dependency`; a call's time is its dependency's `latency`",
        );
    }
    if onboarding {
        refuse(
            ctx,
            erases_node,
            "erases",
            "`erases` belongs to offboarding workflows (an onboarding step creates, it does not erase)",
        );
        if ready_node.is_none() {
            refuse(
                ctx,
                gates_node,
                "gates_access",
                "`gates_access` needs `ready_after` (a resource that is ready at once gates nothing)",
            );
        }
    } else {
        let why = "belongs to onboarding workflows (offboarding steps erase, they create nothing to wait for)";
        refuse(
            ctx,
            ready_node,
            "ready_after",
            &format!("`ready_after` {why}"),
        );
        refuse(
            ctx,
            gates_node,
            "gates_access",
            &format!("`gates_access` {why}"),
        );
    }
    Some(WorkflowStep {
        name: name?,
        dependency: dependency?,
        time: time?,
        retry: retry?,
        timeout: timeout?,
        compensate: compensate?,
        ready_after: ready_after?,
        gates_access: gates_access?,
        erases: erases?,
    })
    .filter(|_| valid)
}

/// A list of names (`reserved_names`), at most [`limits::MAX_RESERVED_NAMES`].
fn read_name_list(ctx: &mut Ctx<'_>, node: &Node, key: &str) -> Option<Vec<String>> {
    let Value::Array(items) = &node.value else {
        ctx.push(
            node.origin.clone(),
            key,
            "expected a list of names, such as [\"www\", \"root\"]".into(),
        );
        return None;
    };
    let limit = &limits::MAX_RESERVED_NAMES;
    if items.len() > limit.max_int() as usize {
        ctx.push(
            node.origin.clone(),
            key,
            format!("too many names: {}", limit.exceeded(items.len())),
        );
        return None;
    }
    let names: Vec<Option<String>> = items
        .iter()
        .enumerate()
        .map(|(i, n)| read_name(ctx, n, &format!("{key}[{i}]")))
        .collect();
    names.into_iter().collect()
}

/// `[backups]`.
pub(super) fn read_backups(ctx: &mut Ctx<'_>, node: Option<&Node>) -> Option<Option<Backups>> {
    let Some(node) = node else {
        return Some(None);
    };
    let mut obj = read_table(
        ctx,
        node,
        "backups",
        "a backups table such as { every = \"1h\", retention = \"1d\" }",
        &spec::BACKUPS,
    )?;
    let every = obj
        .required(ctx, "every", "the time between snapshots, such as \"1h\"")
        .and_then(|n| read_positive_duration(ctx, n, &obj.key("every")));
    let retention = obj
        .required(
            ctx,
            "retention",
            "how long a snapshot is kept, such as \"1d\", or \"none\"",
        )
        .and_then(|n| topology::read_timeout(ctx, n, &obj.key("retention")));
    let scrub = obj.or(ctx, "scrub", false, read_bool);
    obj.finish(ctx);
    Some(Some(Backups {
        every: every?,
        retention: retention?,
        scrub: scrub?,
    }))
}

/// A tenant group's `signup` or `deletion` as written, before its group is known.
#[derive(Clone, Copy, Debug)]
pub(super) struct PendingLoad {
    workflow: usize,
    at: SimDuration,
    rate: Option<f64>,
}

/// Sign-ups and deletions of the tenant groups, with where each was written.
#[derive(Debug, Default)]
pub(super) struct Loads {
    pub(super) signups: Vec<LifecycleLoad>,
    pub(super) deletions: Vec<LifecycleLoad>,
    /// `(origin, key, at)` of each, to check against the run's length.
    written: Vec<(Origin, String, SimDuration)>,
    /// Tenants that sign up so far.
    signup_tenants: u64,
}

impl Loads {
    /// Records group `group`'s sign-ups (`signup`) or deletions, written at `origin` / `key`,
    /// for `members` tenants.
    pub(super) fn add(
        &mut self,
        ctx: &mut Ctx<'_>,
        (origin, key): (Origin, String),
        group: usize,
        members: u64,
        load: PendingLoad,
        signup: bool,
    ) {
        let entry = LifecycleLoad {
            group,
            workflow: load.workflow,
            at: SimTime::ZERO + load.at,
            rate: load.rate,
        };
        if signup {
            self.signup_tenants += members;
            if self.signup_tenants > limits::MAX_SIGNUPS.max_int() {
                ctx.push(
                    origin,
                    &key,
                    format!(
                        "{} tenants sign up: {}",
                        self.signup_tenants,
                        limits::MAX_SIGNUPS.exceeded(self.signup_tenants)
                    ),
                );
                return;
            }
            self.signups.push(entry);
        } else {
            self.deletions.push(entry);
        }
        self.written.push((origin, key, load.at));
    }

    /// Every sign-up and deletion starts before the end of the run.
    pub(super) fn check(&self, ctx: &mut Ctx<'_>, duration: SimDuration) {
        for (origin, key, at) in &self.written {
            if *at >= duration {
                ctx.push(
                    origin.clone(),
                    key,
                    format!("`at` is {at}, at or after the end of the run ({duration})"),
                );
            }
        }
    }
}

/// A tenant group's `signup` (`kind` onboarding) or `deletion` (offboarding) table.
pub(super) fn read_load(
    ctx: &mut Ctx<'_>,
    node: &Node,
    key: &str,
    kind: WorkflowKind,
    names: &Names,
    workflows: &[WorkflowSpec],
) -> Option<PendingLoad> {
    let (spec, example): (&'static TableSpec, &str) = match kind {
        WorkflowKind::Onboarding => (
            &spec::SIGNUP,
            "a signup table such as { workflow = \"onboarding\", at = \"1m\", rate = 5 }",
        ),
        WorkflowKind::Offboarding => (
            &spec::DELETION,
            "a deletion table such as { workflow = \"offboarding\", at = \"10m\" }",
        ),
    };
    let mut obj = read_table(ctx, node, key, example, spec)?;
    let workflow_node = obj.required(ctx, "workflow", "the name of a [[workflows]] entry");
    let workflow = workflow_node
        .and_then(|n| resolve(ctx, names, n, &obj.key("workflow"), "workflow"))
        .and_then(|w| {
            if workflows[w].kind != kind {
                ctx.push(
                    workflow_node.map_or(obj.origin.clone(), |n| n.origin.clone()),
                    &obj.key("workflow"),
                    format!(
                        "workflow {:?} is an {} workflow; `{}` needs an {} one",
                        workflows[w].name,
                        workflows[w].kind.name(),
                        if kind == WorkflowKind::Onboarding {
                            "signup"
                        } else {
                            "deletion"
                        },
                        kind.name()
                    ),
                );
                return None;
            }
            Some(w)
        });
    let at = obj.or(ctx, "at", SimDuration::ZERO, super::read_duration);
    let rate = obj.or(ctx, "rate", None, |c, n, k| {
        read_positive(c, n, k, &limits::MAX_RATE, "members per second").map(Some)
    });
    obj.finish(ctx);
    Some(PendingLoad {
        workflow: workflow?,
        at: at?,
        rate: rate?,
    })
}

/// At most [`limits::MAX_PROVIDERS`] dependencies of kind `provider`.
pub(super) fn check_providers(ctx: &mut Ctx<'_>, node: Option<&Node>, deps: &[DependencySpec]) {
    let providers = deps
        .iter()
        .filter(|d| d.kind == DependencyKind::Provider)
        .count();
    if providers > limits::MAX_PROVIDERS.max_int() as usize
        && let Some(node) = node
    {
        ctx.push(
            node.origin.clone(),
            "dependencies",
            format!(
                "{providers} dependencies are providers: {}",
                limits::MAX_PROVIDERS.exceeded(providers)
            ),
        );
    }
}
