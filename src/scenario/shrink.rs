//! Shrinking a failing scenario to a minimal one that still fails the same way.
//!
//! Greedy delta debugging over the scenario tree: drop faults, drop tenant groups, halve group
//! counts, shorten faults, move them earlier, weaken them, shorten the run; keep every change
//! after which the caller's oracle (run it, check the same SLO still fails) says yes, and
//! repeat until a full pass changes nothing or the run budget is spent. Pure: the caller runs
//! the candidates.

use super::tree::{self, Node, Table, Value};
use crate::time::SimDuration;

/// The result of a shrink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shrunk {
    /// The minimal scenario, as TOML.
    pub text: String,
    /// Candidates run (the oracle's calls), the original included.
    pub runs: u32,
    /// The accepted changes, in order.
    pub steps: Vec<String>,
}

/// Why nothing could be shrunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShrinkError {
    /// The text (with overrides) is not valid TOML or an override does not apply.
    Invalid(String),
    /// The scenario as given does not fail the way the oracle checks.
    DoesNotFail,
}

/// One candidate change: its description and the changed tree.
struct Candidate {
    what: String,
    tree: Table,
}

fn seconds(node: Option<&Node>) -> Option<u64> {
    match node.map(|n| &n.value) {
        Some(Value::String(s)) => SimDuration::parse(s)
            .ok()
            .map(|d| d.as_nanos() / 1_000_000_000),
        _ => None,
    }
}

fn number(node: Option<&Node>) -> Option<f64> {
    match node.map(|n| &n.value) {
        Some(Value::Integer(i)) => Some(*i as f64),
        Some(Value::Float(x)) => Some(*x),
        _ => None,
    }
}

fn elements(root: &Table, key: &str) -> usize {
    match root.get(key).map(|n| &n.value) {
        Some(Value::Array(items)) => items.len(),
        _ => 0,
    }
}

fn element_mut<'a>(root: &'a mut Table, key: &str, i: usize) -> Option<&'a mut Table> {
    match &mut root.get_mut_node(key)?.value {
        Value::Array(items) => match &mut items.get_mut(i)?.value {
            Value::Table(t) => Some(t),
            _ => None,
        },
        _ => None,
    }
}

fn element<'a>(root: &'a Table, key: &str, i: usize) -> Option<&'a Table> {
    match &root.get(key)?.value {
        Value::Array(items) => match &items.get(i)?.value {
            Value::Table(t) => Some(t),
            _ => None,
        },
        _ => None,
    }
}

fn name_of(t: &Table) -> String {
    match t.get("name").map(|n| &n.value) {
        Some(Value::String(s)) => s.clone(),
        _ => "?".to_string(),
    }
}

fn without_element(root: &Table, key: &str, i: usize) -> Table {
    let mut tree = root.clone();
    if let Some(Node {
        value: Value::Array(items),
        ..
    }) = tree.get_mut_node(key)
    {
        items.remove(i);
        if items.is_empty() {
            tree.remove(key);
        }
    }
    tree
}

/// Every one-step simplification of `root`, most valuable first.
fn candidates(root: &Table) -> Vec<Candidate> {
    let mut out = Vec::new();
    let faults = elements(root, "faults");
    for i in (0..faults).rev() {
        let name = element(root, "faults", i).map(name_of).unwrap_or_default();
        out.push(Candidate {
            what: format!("drop fault {name}"),
            tree: without_element(root, "faults", i),
        });
    }
    let groups = elements(root, "tenants");
    if groups > 1 {
        for i in (0..groups).rev() {
            let name = element(root, "tenants", i).map(name_of).unwrap_or_default();
            out.push(Candidate {
                what: format!("drop tenants {name}"),
                tree: without_element(root, "tenants", i),
            });
        }
    }
    for i in 0..groups {
        let Some(t) = element(root, "tenants", i) else {
            continue;
        };
        if let Some(count) = number(t.get("count")).filter(|c| *c >= 2.0) {
            let half = (count / 2.0).floor() as i64;
            let mut tree = root.clone();
            if let Some(t) = element_mut(&mut tree, "tenants", i) {
                t.set("count", Value::Integer(half));
            }
            out.push(Candidate {
                what: format!("tenants {}: count {count} -> {half}", name_of(t)),
                tree,
            });
        }
    }
    let warmup = root
        .get("simulation")
        .and_then(|n| match &n.value {
            Value::Table(t) => seconds(t.get("warmup")),
            _ => None,
        })
        .unwrap_or(0);
    for i in 0..faults {
        let Some(f) = element(root, "faults", i) else {
            continue;
        };
        let name = name_of(f);
        if let Some(d) = seconds(f.get("duration")).filter(|d| *d >= 2) {
            let mut tree = root.clone();
            if let Some(f) = element_mut(&mut tree, "faults", i) {
                f.set("duration", Value::String(format!("{}s", d / 2)));
            }
            out.push(Candidate {
                what: format!("fault {name}: duration {d}s -> {}s", d / 2),
                tree,
            });
        }
        if let Some(at) = seconds(f.get("at")) {
            let earlier = (at / 2).max(warmup);
            if earlier < at {
                let mut tree = root.clone();
                if let Some(f) = element_mut(&mut tree, "faults", i) {
                    f.set("at", Value::String(format!("{earlier}s")));
                }
                out.push(Candidate {
                    what: format!("fault {name}: at {at}s -> {earlier}s"),
                    tree,
                });
            }
        }
        for (key, toward) in [
            ("multiplier", 1.0),
            ("factor", 1.0),
            ("rate", 0.0),
            ("fraction", 0.0),
        ] {
            let Some(x) = number(f.get(key)) else {
                continue;
            };
            let weaker = ((toward + (x - toward) / 2.0) * 100.0).round() / 100.0;
            if (weaker - x).abs() < 0.01 || weaker <= toward {
                continue;
            }
            let mut tree = root.clone();
            if let Some(f) = element_mut(&mut tree, "faults", i) {
                f.set(key, Value::Float(weaker));
            }
            out.push(Candidate {
                what: format!("fault {name}: {key} {x} -> {weaker}"),
                tree,
            });
        }
    }
    // A shorter run: just past the last fault, or half as long.
    if let Some(Node {
        value: Value::Table(sim),
        ..
    }) = root.get("simulation")
        && let Some(duration) = seconds(sim.get("duration"))
    {
        let last_fault_end = (0..faults)
            .filter_map(|i| element(root, "faults", i))
            .filter_map(|f| Some(seconds(f.get("at"))? + seconds(f.get("duration"))?))
            .max()
            .unwrap_or(0);
        for shorter in [last_fault_end.max(warmup + 1) + 1, duration / 2] {
            if shorter < duration && shorter > warmup {
                let mut tree = root.clone();
                if let Some(Node {
                    value: Value::Table(sim),
                    ..
                }) = tree.get_mut_node("simulation")
                {
                    sim.set("duration", Value::String(format!("{shorter}s")));
                }
                out.push(Candidate {
                    what: format!("run {duration}s -> {shorter}s"),
                    tree,
                });
            }
        }
    }
    out
}

/// Shrinks `text` (with `overrides` applied first) while `fails` holds, trying at most
/// `max_runs` candidates.
pub fn shrink(
    text: &str,
    overrides: &[String],
    max_runs: u32,
    mut fails: impl FnMut(&str) -> bool,
) -> Result<Shrunk, ShrinkError> {
    let mut tree = tree::parse_document(text).map_err(|e| ShrinkError::Invalid(e.message))?;
    for (i, raw) in overrides.iter().enumerate() {
        let (path, value) = raw
            .split_once('=')
            .ok_or_else(|| ShrinkError::Invalid(format!("--set {raw}: expected PATH=VALUE")))?;
        let node = tree::parse_override_value(value.trim(), i);
        tree::apply_override(&mut tree, path.trim(), node)
            .map_err(|e| ShrinkError::Invalid(format!("--set {raw}: {e}")))?;
    }
    // Only the explore table is dropped up front: it never affects a run.
    tree.remove("explore");
    let mut current = tree::to_toml(&tree);
    let mut runs = 1;
    if !fails(&current) {
        return Err(ShrinkError::DoesNotFail);
    }
    let mut steps = Vec::new();
    'passes: loop {
        for candidate in candidates(&tree) {
            if runs >= max_runs {
                break 'passes;
            }
            let text = tree::to_toml(&candidate.tree);
            if text == current {
                continue;
            }
            runs += 1;
            if fails(&text) {
                steps.push(candidate.what);
                tree = candidate.tree;
                current = text;
                // Candidates were computed from the old tree: start a new pass.
                continue 'passes;
            }
        }
        // A whole pass without an accepted change: minimal.
        break;
    }
    Ok(Shrunk {
        text: current,
        runs,
        steps,
    })
}
