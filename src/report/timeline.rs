//! What the report files need from a run besides the [`Report`](super::Report): the time
//! series, the fault windows, the SLO thresholds in time and the capacities of the shared pools.
//!
//! Built once from the scenario and the run's [`Series`]; the Markdown, JUnit, HTML and plot
//! renderers read it and never the model directly.

use crate::model::config::FaultKind;
use crate::model::series::{Place, Series};
use crate::scenario::Scenario;
use crate::scenario::expect::{Metric, Threshold};
use crate::time::SimTime;

/// A fault window.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultSpan {
    /// The fault's name (`spike`).
    pub name: String,
    /// What it does, for tables: `load spike ×10`.
    pub what: String,
    /// Tenants it names (they are not bystanders).
    pub targets: Vec<String>,
    /// Start, simulated seconds.
    pub start_s: f64,
    /// End, simulated seconds.
    pub end_s: f64,
}

/// What an SLO threshold line is drawn against.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LineMetric {
    /// A latency percentile of ok requests (value in milliseconds).
    Latency(f64),
    /// Error rate (value a fraction).
    ErrorRate,
    /// Throttle rate (value a fraction).
    ThrottleRate,
}

/// An SLO threshold over the SLO's window, drawn on the matching plot.
#[derive(Clone, Debug, PartialEq)]
pub struct SloLine {
    /// Which plot it belongs on.
    pub metric: LineMetric,
    /// Threshold: milliseconds for latencies, a fraction for rates.
    pub value: f64,
    /// The expectation as written: `p99 < 250ms`.
    pub expect: String,
    /// The SLO's selection as written: `bystanders`.
    pub selection: String,
    /// The SLO's window label: `during:spike`.
    pub window: String,
    /// Window start, simulated seconds.
    pub start_s: f64,
    /// Window end, simulated seconds.
    pub end_s: f64,
}

/// Everything about a run's course in time that the report files show.
#[derive(Clone, Debug)]
pub struct Timeline<'a> {
    /// Per class and bucket counts, latency and occupancy.
    pub series: &'a Series,
    /// Simulated seconds.
    pub duration_s: f64,
    /// Warmup seconds.
    pub warmup_s: f64,
    /// Fault windows, in file order.
    pub faults: Vec<FaultSpan>,
    /// SLO thresholds with their windows.
    pub slo_lines: Vec<SloLine>,
    /// Workers over every pool instance recorded.
    pub workers: u64,
    /// Connections over every station recorded.
    pub connections: u64,
    /// For each class of the series, how many tenants it stands for.
    pub class_sizes: Vec<u64>,
    /// The pool instances whose occupancy the series recorded (cells' pools, then service
    /// instances' pools), by the series' index.
    pub pools: &'a [Place],
    /// The stations the series recorded (databases' primaries, replicas, dependency
    /// instances), by the series' index.
    pub stations: &'a [Place],
    /// When the run starts, in seconds after midnight, if the scenario says (plots then label
    /// their time axes with clock time); `None`: simulated time from zero.
    pub clock_start_s: Option<f64>,
}

/// A short description of a fault for plot labels and tables.
fn describe_fault(system: &crate::model::config::System, kind: &FaultKind) -> String {
    let cells = |cells: &[usize]| {
        cells
            .iter()
            .map(|&c| system.cells[c].name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match kind {
        FaultKind::LoadSpike {
            multiplier, class, ..
        } => match class {
            Some(c) => format!("{} spike ×{multiplier}", system.class_name(*c)),
            None => format!("load spike ×{multiplier}"),
        },
        FaultKind::CellOutage { cells: c, .. } => format!("cell outage ({})", cells(c)),
        FaultKind::RegionOutage {
            region, cells: c, ..
        } => {
            format!("region outage {region} ({})", cells(c))
        }
        FaultKind::DbSlowdown {
            database, factor, ..
        } => format!(
            "database {} ×{factor} slower",
            system.databases[*database].name
        ),
        FaultKind::KmsKeyDisabled { .. } => "KMS key disabled".to_string(),
        FaultKind::Partition => "edge ↔ mapping store partition".to_string(),
        FaultKind::ControlPlaneOutage => "control plane down".to_string(),
        FaultKind::DependencyErrors {
            dependency, rate, ..
        } => {
            let name = match dependency {
                crate::model::config::Dependency::Kms => "KMS",
                d => system.dependency_name(*d),
            };
            format!("{name} errors {:.0}%", rate * 100.0)
        }
        FaultKind::DependencyOutage { dependency, .. } => {
            format!("{} down", system.dependency_name(*dependency))
        }
        FaultKind::DependencySlowdown {
            dependency, factor, ..
        } => format!("{} ×{factor} slower", system.dependency_name(*dependency)),
        FaultKind::CacheFlush { cache, .. } => {
            format!("cache {} flushed", system.dependencies[*cache].name)
        }
        FaultKind::PoolSlowdown { pool, factor, .. } => {
            format!("pool {} ×{factor} slower", system.cell_pool_name(*pool))
        }
        FaultKind::ReplicaLag { database, lag, .. } => {
            format!("{} replicas +{lag} lag", system.databases[*database].name)
        }
        FaultKind::ReplicaOutage {
            database, replica, ..
        } => match replica {
            Some(r) => format!("{} replica {r} down", system.databases[*database].name),
            None => format!("{} replicas down", system.databases[*database].name),
        },
        FaultKind::PoisonJobs { fraction, .. } => format!("poison jobs {:.0}%", fraction * 100.0),
        FaultKind::MigrateTenant { to, .. } => format!("migration to {}", system.cells[*to].name),
        FaultKind::RateLimit { dependency, rate } => format!(
            "{} rate limit {rate}/s",
            system.dependencies[*dependency].name
        ),
        FaultKind::RunnerCrash => "workflow runner down".to_string(),
    }
}

fn secs(t: SimTime) -> f64 {
    t.as_secs_f64()
}

impl<'a> Timeline<'a> {
    /// The timeline of a run of `scenario` that produced `series`.
    pub fn new(scenario: &Scenario, series: &'a Series) -> Timeline<'a> {
        let system = &scenario.system;
        let faults = system
            .faults
            .iter()
            .map(|f| FaultSpan {
                name: f.name.clone(),
                what: describe_fault(system, &f.kind),
                targets: f
                    .named_tenants()
                    .iter()
                    .map(|&t| system.tenants[t].name.clone())
                    .collect(),
                start_s: secs(f.at),
                end_s: secs(f.end()).min(system.simulation.duration.as_secs_f64()),
            })
            .collect();
        let mut slo_lines = Vec::new();
        for slo in &scenario.slos {
            let window = &system.windows[slo.window];
            let selection: String = if slo.selector.chars().count() > 24 {
                let mut s: String = slo.selector.chars().take(23).collect();
                s.push('…');
                s
            } else {
                slo.selector.clone()
            };
            let start_s = secs(window.start);
            let end_s = secs(window.end).min(system.simulation.duration.as_secs_f64());
            for e in &slo.expect {
                let (metric, value) = match (e.metric, e.threshold) {
                    (Metric::Percentile(p), Threshold::Duration(d)) => {
                        (LineMetric::Latency(p), d.as_millis_f64())
                    }
                    (Metric::ErrorRate, Threshold::Fraction(x)) => (LineMetric::ErrorRate, x),
                    (Metric::Availability, Threshold::Fraction(x)) => {
                        (LineMetric::ErrorRate, 1.0 - x)
                    }
                    (Metric::ThrottleRate, Threshold::Fraction(x)) => (LineMetric::ThrottleRate, x),
                    _ => continue,
                };
                slo_lines.push(SloLine {
                    metric,
                    value,
                    expect: e.text.clone(),
                    selection: selection.clone(),
                    window: window.label.clone(),
                    start_s,
                    end_s,
                });
            }
        }
        // The series knows each tenant's class: a search of the classes per tenant was
        // tenants × classes (a billion steps at a million tenants in a thousand tiers).
        let mut class_sizes = vec![0u64; series.classes.len()];
        for t in 0..system.tenants.len() {
            if let Some(size) = series.class_of(t).and_then(|c| class_sizes.get_mut(c)) {
                *size += 1;
            }
        }
        Timeline {
            series,
            duration_s: system.simulation.duration.as_secs_f64(),
            warmup_s: system.simulation.warmup.as_secs_f64(),
            faults,
            slo_lines,
            workers: series.pools.iter().map(|p| p.capacity).sum(),
            connections: series.stations.iter().map(|p| p.capacity).sum(),
            class_sizes,
            pools: &series.pools,
            stations: &series.stations,
            // With `[simulation] start`, the axis reads in clock time at the start's offset.
            clock_start_s: system
                .simulation
                .start
                .as_ref()
                .map(|start| start.nanos_of_day() as f64 / 1e9),
        }
    }

    /// The label a class is shown with: a tracked tenant's name, or `standard (46 others)`.
    pub fn class_label(&self, class: usize) -> String {
        let c = &self.series.classes[class];
        if c.tenant.is_some() {
            return c.label.clone();
        }
        let tier = c.label.trim_end_matches(" (others)");
        let n = self.class_sizes.get(class).copied().unwrap_or(0);
        let noun = if n == 1 { "tenant" } else { "tenants" };
        let n = crate::text::thousands(n);
        if c.label.ends_with(" (others)") {
            format!("{tier} ({n} other {noun})")
        } else {
            format!("{tier} (all {n} {noun})")
        }
    }

    /// Seconds covered by bucket `b` (the last may be cut short by the end of the run).
    pub fn bucket_span(&self, b: usize) -> (f64, f64) {
        let start = self.series.bucket_start(b).as_secs_f64();
        let end = (start + self.series.bucket.as_secs_f64()).min(self.duration_s);
        (start, end)
    }
}
