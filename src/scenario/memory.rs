//! The memory a run of a scenario needs, estimated from the validated scenario before anything
//! is run: what the records cost per tenant and per judged window, the latency samples, the
//! requests and work that can be in flight at once, background jobs, the edge's mapping caches
//! and the report. An upper bound for a healthy run (like the work estimate): every tenant's
//! samples as many as its offered load allows, every queue full, every request backing off
//! as long as its retry policy and the servers' hints allow.
//!
//! The CLI prints it with the work estimate and refuses a command whose estimate is above
//! [`MEMORY_THRESHOLD_BYTES`] unless `--allow-large`, naming the part that drives it; so a
//! scenario inside every hard limit can still not exhaust memory by surprise (a batch of 10^8
//! jobs, a queue of 10^8 with slow service, 10,000 tenants × hundreds of SLOs × 32
//! expectations).

use super::Scenario;
use crate::model::config::System;
use crate::model::metrics::{self, RAW_SAMPLE_LIMIT};
use crate::model::spikes::{self, MAX_ARRIVALS_PER_SEC, SpikeIndex};
use crate::text::thousands;
use crate::time::SimDuration;

/// Commands whose estimated memory is above this need `--allow-large` (8 GiB: what a laptop
/// or a CI runner can give one command).
pub const MEMORY_THRESHOLD_BYTES: f64 = 8.0 * 1024.0 * 1024.0 * 1024.0;

/// Bytes of the scenario's parsed tree and validated system per byte of its text.
const TREE_BYTES_PER_TEXT_BYTE: f64 = 24.0;
/// Bytes per tenant besides the model's records: its names in the system, the world, the
/// report's tenant entry and the tables built from it, placement and series entries.
const TENANT_OVERHEAD_BYTES: f64 = 640.0;
/// Bytes a tenant's entry takes in report.json (pretty-printed, latency included), besides
/// its names.
const TENANT_JSON_BYTES: f64 = 460.0;
/// Bytes of one SLO check: its evaluation result, its entry in the report, and its text in
/// report.json (pretty-printed), besides the tenant name and expectation it repeats.
const CHECK_BYTES: f64 = 150.0 + 220.0;
/// Bytes beside each live request or work: its slab slot, its pending event, its timeout-lane
/// or queue entry.
const LIVE_OVERHEAD_BYTES: f64 = 64.0;
/// Bytes of a queued background job besides its record: its scheduler entry and slab slot.
const JOB_OVERHEAD_BYTES: f64 = 48.0;
/// Slabs, queues and lists grow by doubling: at worst half their capacity is unused, and while
/// one grows the old and the new buffer are both held.
const GROWTH: f64 = 2.0;
/// Bytes of one entry of an edge node's mapping cache (key, entry, index).
const CACHE_ENTRY_BYTES: f64 = 96.0;
/// Bytes of the plots and index.html whatever the run (frames, axes, legends, tables).
const FILES_FIXED_BYTES: f64 = 3.0 * 1024.0 * 1024.0;
/// Bytes the plots and index.html take per tenant class (a line or an area per panel, and its
/// time series).
const FILES_PER_CLASS_BYTES: f64 = 100.0 * 1024.0;
/// Bytes the plots and index.html take per fault (a band, its label and dashed edges on every
/// panel).
const FILES_PER_FAULT_BYTES: f64 = 400.0 * 1024.0;
/// Bytes of a seed's record in a sweep (`sweep.json` and the list it is built from), besides
/// the names of the SLOs and invariants it fails.
const SEED_RECORD_BYTES: f64 = 400.0;
/// Names of the always-on invariants a failing seed may list.
const INVARIANT_NAME_BYTES: f64 = 6.0 * 48.0;

/// One part of the estimate.
#[derive(Clone, Debug, PartialEq)]
pub struct Part {
    /// What it is ("latency samples").
    pub what: &'static str,
    /// Bytes.
    pub bytes: f64,
    /// What drives it, in the scenario's terms ("2,000 tenants × 3 judged windows").
    pub driver: String,
}

/// The estimate of one run, by part.
#[derive(Clone, Debug, PartialEq)]
pub struct MemoryEstimate {
    /// The parts, in a fixed order.
    pub parts: Vec<Part>,
}

impl MemoryEstimate {
    /// Bytes in total.
    pub fn total(&self) -> f64 {
        self.parts.iter().map(|p| p.bytes).sum()
    }

    /// The largest part (what to change first).
    pub fn largest(&self) -> Option<&Part> {
        self.parts.iter().max_by(|a, b| a.bytes.total_cmp(&b.bytes))
    }
}

/// `1.5 GiB`, `640 MiB`, `12 KiB`.
pub fn bytes_text(bytes: f64) -> String {
    const UNITS: [(&str, f64); 4] = [
        ("TiB", 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ("GiB", 1024.0 * 1024.0 * 1024.0),
        ("MiB", 1024.0 * 1024.0),
        ("KiB", 1024.0),
    ];
    for (unit, scale) in UNITS {
        if bytes >= scale {
            let value = bytes / scale;
            return if value >= 10_000.0 {
                format!("{} {unit}", thousands(value.ceil() as u64))
            } else if value >= 10.0 {
                format!("{value:.0} {unit}")
            } else {
                format!("{value:.1} {unit}")
            };
        }
    }
    format!("{} bytes", bytes.ceil() as u64)
}

/// Per tenant: requests it issues over the run (expected, spikes multiplied) and its highest
/// arrival rate.
fn offered(system: &System) -> Vec<(f64, f64)> {
    let index = SpikeIndex::new(system);
    let end = system.end();
    let mut mine = Vec::new();
    system
        .tenants
        .iter()
        .enumerate()
        .map(|(t, tenant)| {
            mine.clear();
            mine.extend(index.spikes_of(system, t, None));
            let rate = tenant.arrival.rate;
            let peak = spikes::segments(&mine)
                .iter()
                .map(|&(_, m)| m)
                .fold(1.0f64, f64::max);
            (
                spikes::expected_arrivals(rate, &mine, end),
                (rate * peak).min(MAX_ARRIVALS_PER_SEC),
            )
        })
        .collect()
}

/// The estimate of one run of `scenario`, `text_bytes` being the size of its text.
pub fn of_run(scenario: &Scenario, text_bytes: usize) -> MemoryEstimate {
    let system = &scenario.system;
    let duration = system.simulation.duration;
    let secs = duration.as_secs_f64();
    let n = system.tenants.len() as f64;
    let records = crate::model::record_bytes();
    let offered = offered(system);
    let mut parts = Vec::new();

    parts.push(Part {
        what: "scenario",
        bytes: text_bytes as f64 * TREE_BYTES_PER_TEXT_BYTE
            + 8.0
                * (system
                    .faults
                    .iter()
                    .map(|f| f.named_tenants().len())
                    .sum::<usize>()
                    + scenario.slos.iter().map(|s| s.tenants.len()).sum::<usize>())
                    as f64,
        driver: format!("{} bytes of scenario text", thousands(text_bytes as u64)),
    });

    let names: f64 = system
        .tenants
        .iter()
        .map(|t| 4.0 * (t.name.len() as f64 + 24.0))
        .sum();
    parts.push(Part {
        what: "tenant records",
        bytes: n * (crate::model::per_tenant_bytes() as f64 + TENANT_OVERHEAD_BYTES) + names,
        driver: format!("{} tenants", thousands(system.tenants.len() as u64)),
    });

    // Every (tenant, judged window) keeps a latency summary: raw samples (4 bytes each) up to
    // RAW_SAMPLE_LIMIT, then a histogram. A tenant can have no more samples in a window than
    // requests: twice its expected load, for the chance of a busier run.
    let histogram = metrics::histogram_bytes(duration) as f64;
    let raw_cap = (RAW_SAMPLE_LIMIT as f64 * 4.0 + 64.0).max(histogram);
    let per_window = |requests: f64| (requests * 2.0 * 4.0).min(raw_cap);
    let mut windows_of = vec![1u32; system.tenants.len()];
    let mut extra_windows = 0.0;
    for slo in &scenario.slos {
        if slo.window == 0 {
            continue;
        }
        extra_windows += slo.tenants.len() as f64;
        for &t in &slo.tenants {
            if let Some(w) = windows_of.get_mut(t) {
                *w += 1;
            }
        }
    }
    let samples: f64 = offered
        .iter()
        .zip(&windows_of)
        .map(|(&(requests, _), &w)| per_window(requests) * f64::from(w))
        .sum();
    parts.push(Part {
        what: "latency samples",
        bytes: samples + extra_windows * metrics::extra_window_bytes() as f64,
        driver: format!(
            "{} tenants × {} judged windows, each up to {}",
            thousands(system.tenants.len() as u64),
            format_args!("{:.1}", (n + extra_windows) / n.max(1.0)),
            bytes_text(raw_cap)
        ),
    });

    // Work in the cells: at most every worker busy and every queue full, and no more than
    // the attempts the run offers.
    let attempts: f64 = offered
        .iter()
        .zip(&system.tenants)
        .map(|(&(requests, _), t)| requests * f64::from(t.retry.max_attempts))
        .sum();
    let capacity: f64 = system
        .cells
        .iter()
        .map(|c| f64::from(c.api.workers) + f64::from(c.api.queue))
        .sum();
    let works = attempts.min(capacity);
    // Requests: those waiting on work in a cell, plus those between attempts, each for at
    // most its timeout and its longest wait (its backoff cap, or longer when a server asks:
    // the tier limiter's interval, a cell's 503 hint), never longer than the run.
    let hint = system
        .cells
        .iter()
        .map(|c| c.api.service_time.mean().max(SimDuration::from_millis(10)))
        .max()
        .unwrap_or(SimDuration::ZERO)
        .as_secs_f64();
    let between: f64 = offered
        .iter()
        .zip(&system.tenants)
        .map(|(&(requests, peak), t)| {
            let tier_interval = 1.0 / system.tiers[t.tier].rate.max(f64::MIN_POSITIVE);
            let wait = t.retry.cap.as_secs_f64().max(tier_interval).max(hint);
            let timeout = t.timeout.map_or(0.0, SimDuration::as_secs_f64);
            let lifetime = (f64::from(t.retry.max_attempts) * (timeout + wait)).min(secs);
            (peak * lifetime).min(requests * 2.0)
        })
        .sum();
    let live_requests = works + between;
    let (largest_queue, queue_cell) = system
        .cells
        .iter()
        .map(|c| (c.api.queue, c.name.as_str()))
        .max()
        .unwrap_or((0, ""));
    parts.push(Part {
        what: "requests and work in flight",
        bytes: GROWTH
            * (works * (records.work as f64 + LIVE_OVERHEAD_BYTES)
                + live_requests * (records.request as f64 + LIVE_OVERHEAD_BYTES)),
        driver: format!(
            "up to {} attempts in the cells' pools (largest queue {} in cell {queue_cell:?}) \
             and {} requests between attempts",
            thousands(works.ceil() as u64),
            thousands(u64::from(largest_queue)),
            thousands(between.ceil() as u64)
        ),
    });

    // Background jobs stay queued until they run: at most every job submitted.
    let mut jobs = 0.0;
    let mut largest_batch = (0u64, "");
    for t in &system.tenants {
        if let Some(load) = t.jobs {
            let batch = load.batch.map_or(0, |(count, _)| count);
            jobs += load.rate * secs + batch as f64;
            if batch > largest_batch.0 {
                largest_batch = (batch, t.name.as_str());
            }
        }
    }
    parts.push(Part {
        what: "background jobs",
        bytes: GROWTH * jobs * (records.job as f64 + JOB_OVERHEAD_BYTES),
        driver: if largest_batch.0 > 0 {
            format!(
                "{} jobs (largest batch {} of tenant {:?})",
                thousands(jobs.ceil() as u64),
                thousands(largest_batch.0),
                largest_batch.1
            )
        } else {
            format!("{} jobs", thousands(jobs.ceil() as u64))
        },
    });

    // Each edge node caches the mappings of the tenants that reach it.
    let requests: f64 = offered.iter().map(|&(r, _)| r).sum();
    let replicas = f64::from(system.edge.replicas.max(1));
    parts.push(Part {
        what: "edge mapping caches",
        bytes: replicas * n.min(requests * 2.0) * CACHE_ENTRY_BYTES,
        driver: format!(
            "{} edge nodes × up to {} tenants",
            thousands(u64::from(system.edge.replicas.max(1))),
            thousands(system.tenants.len() as u64)
        ),
    });

    // The files besides report.json, all in memory before they are written: plots and the
    // page that holds them have a fixed frame, a line per tenant class (each tier and up to
    // 16 tracked tenants) and a band, a label and dashed edges per fault; summary.md and
    // junit.xml add a little per check.
    let classes = (system.tiers.len() + crate::model::series::MAX_TRACKED) as f64;
    let faults = system.faults.len() as f64;
    let (checks, check_text) = checks(scenario);
    parts.push(Part {
        what: "plots and pages",
        bytes: FILES_FIXED_BYTES
            + classes * FILES_PER_CLASS_BYTES
            + faults * FILES_PER_FAULT_BYTES
            + checks * 160.0,
        driver: format!(
            "{} tenant classes and {} faults in the plots",
            thousands(classes as u64),
            thousands(system.faults.len() as u64)
        ),
    });

    // The report: twice, for `replay` holds the recorded one beside the new one.
    parts.push(Part {
        what: "report",
        bytes: 2.0 * report_json_bytes(scenario, text_bytes)
            + checks * 150.0
            + n * 300.0
            + check_text,
        driver: format!(
            "{} SLO checks ({} SLOs over up to {} tenants, up to {} expectations each) and {} \
             tenants",
            thousands(checks as u64),
            thousands(scenario.slos.len() as u64),
            thousands(
                scenario
                    .slos
                    .iter()
                    .map(|s| s.tenants.len())
                    .max()
                    .unwrap_or(0) as u64
            ),
            scenario
                .slos
                .iter()
                .map(|s| s.expect.len())
                .max()
                .unwrap_or(0),
            thousands(system.tenants.len() as u64)
        ),
    });
    MemoryEstimate { parts }
}

/// SLO checks of a run (one per selected tenant and expectation, or per expectation for a
/// pooled SLO), and the bytes of the names and expectations they repeat.
fn checks(scenario: &Scenario) -> (f64, f64) {
    let mut checks = 0.0;
    let mut text = 0.0;
    for slo in &scenario.slos {
        let expect: f64 = slo.expect.iter().map(|e| e.text.len() as f64 + 24.0).sum();
        let tenants: Vec<f64> = match slo.scope {
            super::Scope::Each => slo
                .tenants
                .iter()
                .map(|&t| scenario.system.tenants[t].name.len() as f64 + 24.0)
                .collect(),
            super::Scope::Pooled => vec![32.0],
        };
        let e = slo.expect.len() as f64;
        checks += tenants.len() as f64 * e;
        text += tenants.iter().map(|name| name * e + expect).sum::<f64>();
    }
    (checks, text)
}

/// Bytes of the run's report.json (an upper bound: every latency summary present), the
/// scenario's text being `text_bytes` long (embedded, escaped: at most six bytes per byte).
pub fn report_json_bytes(scenario: &Scenario, text_bytes: usize) -> f64 {
    let system = &scenario.system;
    let longest_cell = system.cells.iter().map(|c| c.name.len()).max().unwrap_or(0) as f64;
    let tenants: f64 = system
        .tenants
        .iter()
        .map(|t| {
            TENANT_JSON_BYTES
                + t.name.len() as f64
                + system.tiers[t.tier].name.len() as f64
                + longest_cell
        })
        .sum();
    let (checks, text) = checks(scenario);
    // Tiers, SLO headers, invariants and each fault's blast radius (up to 100 names).
    let entries = (system.tiers.len() + scenario.slos.len() + 8) as f64 * 600.0
        + system.faults.len() as f64 * (400.0 + 100.0 * 80.0);
    tenants + checks * CHECK_BYTES + text + 6.0 * text_bytes as f64 + entries
}

/// Bytes one seed's record takes in a sweep or an exploration (its entry in `sweep.json` and
/// in the list it is built from), at worst failing every SLO and invariant.
pub fn per_seed_bytes(scenario: &Scenario) -> f64 {
    let names: f64 = scenario
        .slos
        .iter()
        .map(|s| 2.0 * (s.name.len() as f64 + 32.0))
        .sum();
    SEED_RECORD_BYTES + names + INVARIANT_NAME_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{LoadOptions, load};

    fn part(estimate: &MemoryEstimate, what: &str) -> f64 {
        estimate
            .parts
            .iter()
            .find(|p| p.what == what)
            .map_or(0.0, |p| p.bytes)
    }

    #[test]
    fn requests_waiting_on_a_far_retry_hint_are_all_in_flight() {
        // Every request of `b` is throttled with a `retry_at` after the end (its tier's rate is
        // negligible), so all 60,000 stay in flight until the end.
        let text = "name = \"x\"\n[simulation]\nduration = \"60s\"\n[[tiers]]\nname = \"t\"\nrate = 1e-300\nburst = 1\n[[cells]]\nname = \"c\"\napi = { workers = 4, service_time = { dist = \"constant\", value = \"1ms\" } }\n[[tenants]]\nname = \"b\"\ntier = \"t\"\narrival = { rate = 1000 }\nretry = { max_attempts = 100, cap = \"168h\" }\n";
        let scenario = load(text, &LoadOptions::default()).expect("loads");
        let estimate = of_run(&scenario, text.len());
        let request = crate::model::record_bytes().request as f64;
        let in_flight = part(&estimate, "requests and work in flight");
        assert!(in_flight >= 60_000.0 * request, "{estimate:#?}");
    }
}
