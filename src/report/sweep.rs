//! `sweep.json`: the verdicts of one scenario over many seeds, with per-SLO failure counts and
//! the violation rate with a one-sided 95 % upper confidence bound.
//!
//! Runs are kept in seed order, so the file is byte-identical for any thread count, and shards
//! merged with [`merge`] give exactly the file one unsharded sweep writes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Report;

/// One seed's result.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SweepRun {
    /// The seed.
    pub seed: u64,
    /// `pass`, `fail`, `inconclusive`, or `error` (the run could not finish, e.g. a budget).
    pub verdict: String,
    /// Names of the SLOs that failed.
    pub failed_slos: Vec<String>,
    /// Names of the invariants that failed.
    pub failed_invariants: Vec<String>,
    /// Why the run could not finish, for `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `simulate explore`: the faults this seed drew.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drawn_faults: Vec<String>,
    /// `simulate explore`: the standalone scenario file written for a failing seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario_file: Option<String>,
}

impl SweepRun {
    /// The summary of a finished run.
    pub fn from_report(report: &Report) -> SweepRun {
        SweepRun {
            seed: report.seed,
            verdict: report.verdict.clone(),
            failed_slos: report
                .slos
                .iter()
                .filter(|s| s.status == "fail")
                .map(|s| s.name.clone())
                .collect(),
            failed_invariants: report
                .invariants
                .iter()
                .filter(|i| !i.passed)
                .map(|i| i.name.clone())
                .collect(),
            error: None,
            drawn_faults: Vec::new(),
            scenario_file: None,
        }
    }
}

/// Failures of one SLO across the sweep.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SloFailures {
    /// SLO (or invariant) name.
    pub name: String,
    /// Runs in which it failed.
    pub failures: u64,
}

/// How often the scenario failed, with a confidence bound.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ViolationRate {
    /// Runs that failed.
    pub failures: u64,
    /// Runs.
    pub runs: u64,
    /// failures / runs.
    pub rate: f64,
    /// One-sided 95 % upper bound (Wilson score interval, z = 1.645).
    pub upper_95: f64,
}

/// Which part of a sharded sweep a file holds.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Shard {
    /// 0-based shard index.
    pub index: u64,
    /// Number of shards.
    pub count: u64,
}

/// The whole `sweep.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SweepReport {
    /// Scenario name.
    pub scenario: String,
    /// Scenario file as given.
    pub scenario_file: String,
    /// `--set` overrides.
    pub overrides: Vec<String>,
    /// Program version.
    pub version: String,
    /// The seed range as given (`A..B`, B excluded, or `A..=B`).
    pub seed_range: String,
    /// Set in a shard's file only; a merged or unsharded sweep has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// Seeds run, in order.
    pub seeds: Vec<u64>,
    /// One entry per seed, in seed order.
    pub runs: Vec<SweepRun>,
    /// Seeds whose verdict is `fail` (or `error`).
    pub failing_seeds: Vec<u64>,
    /// Seeds whose verdict is `inconclusive`.
    pub inconclusive_seeds: Vec<u64>,
    /// Per SLO or invariant, the runs in which it failed (only those that failed at least once).
    pub slo_failures: Vec<SloFailures>,
    /// Violation rate over all runs.
    pub violation_rate: ViolationRate,
    /// Set when the sweep was interrupted (Ctrl-C): `runs` holds the seeds that finished, and
    /// the counts and rates cover only them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
    /// Seeds of the range (or shard) that did not finish because of the interruption.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub not_run: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The one-sided upper confidence bound of a binomial proportion (Wilson score interval).
pub fn wilson_upper(failures: u64, runs: u64, z: f64) -> f64 {
    if runs == 0 {
        return 1.0;
    }
    let n = runs as f64;
    let p = failures as f64 / n;
    let z2 = z * z;
    let centre = p + z2 / (2.0 * n);
    let spread = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre + spread) / (1.0 + z2 / n)).min(1.0)
}

/// z for a one-sided 95 % bound.
pub const Z_95_ONE_SIDED: f64 = 1.644_853_626_951_472_2;

/// Rounds to six decimals so the file diffs cleanly.
fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// Provenance shared by every run of a sweep.
#[derive(Clone, Debug, Default)]
pub struct SweepHeader {
    /// Scenario name.
    pub scenario: String,
    /// Scenario file as given.
    pub scenario_file: String,
    /// `--set` overrides.
    pub overrides: Vec<String>,
    /// The seed range as given.
    pub seed_range: String,
    /// Which shard, if sharded.
    pub shard: Option<Shard>,
}

/// Builds `sweep.json` from runs (any order; they are sorted by seed).
pub fn summarize(header: &SweepHeader, mut runs: Vec<SweepRun>) -> SweepReport {
    runs.sort_by_key(|r| r.seed);
    let failing: Vec<u64> = runs
        .iter()
        .filter(|r| r.verdict == "fail" || r.verdict == "error")
        .map(|r| r.seed)
        .collect();
    let inconclusive = runs
        .iter()
        .filter(|r| r.verdict == "inconclusive")
        .map(|r| r.seed)
        .collect();
    // Count in first-seen order of names, which is the scenario's SLO order for the first
    // failing run; then stable.
    let mut order: Vec<String> = Vec::new();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for run in &runs {
        for name in run.failed_slos.iter().chain(&run.failed_invariants) {
            if !counts.contains_key(name) {
                order.push(name.clone());
            }
            *counts.entry(name.clone()).or_default() += 1;
        }
    }
    let slo_failures = order
        .into_iter()
        .map(|name| SloFailures {
            failures: counts.get(&name).copied().unwrap_or(0),
            name,
        })
        .collect();
    let n = runs.len() as u64;
    let failures = failing.len() as u64;
    SweepReport {
        scenario: header.scenario.clone(),
        scenario_file: header.scenario_file.clone(),
        overrides: header.overrides.clone(),
        version: super::VERSION.to_string(),
        seed_range: header.seed_range.clone(),
        shard: header.shard,
        seeds: runs.iter().map(|r| r.seed).collect(),
        failing_seeds: failing,
        inconclusive_seeds: inconclusive,
        slo_failures,
        violation_rate: ViolationRate {
            failures,
            runs: n,
            rate: if n == 0 {
                0.0
            } else {
                round6(failures as f64 / n as f64)
            },
            upper_95: round6(wilson_upper(failures, n, Z_95_ONE_SIDED)),
        },
        runs,
        interrupted: false,
        not_run: 0,
    }
}

/// Why shard files cannot be merged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergeError(pub String);

impl std::fmt::Display for MergeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Merges shard files of one sweep into the report one unsharded sweep over `all_seeds`
/// would give. Every shard must come from the same scenario, overrides, seed range and shard
/// count, and together they must cover every seed exactly once.
pub fn merge(shards: &[SweepReport], all_seeds: &[u64]) -> Result<SweepReport, MergeError> {
    let Some(first) = shards.first() else {
        return Err(MergeError("no shard files given".into()));
    };
    let count = first.shard.map(|s| s.count);
    let mut seen_shards = Vec::new();
    for s in shards {
        let same = s.scenario == first.scenario
            && s.scenario_file == first.scenario_file
            && s.overrides == first.overrides
            && s.seed_range == first.seed_range
            && s.version == first.version;
        if !same {
            return Err(MergeError(format!(
                "shards differ: {} {:?} {} v{} vs {} {:?} {} v{}",
                first.scenario_file,
                first.overrides,
                first.seed_range,
                first.version,
                s.scenario_file,
                s.overrides,
                s.seed_range,
                s.version
            )));
        }
        if s.interrupted {
            return Err(MergeError(format!(
                "{} is from an interrupted sweep ({} seeds did not run): rerun that shard",
                s.shard
                    .map_or("a file".to_string(), |sh| format!("shard {}", sh.index)),
                s.not_run
            )));
        }
        let Some(shard) = s.shard else {
            return Err(MergeError(
                "a file without a shard (an unsharded sweep) cannot be merged".into(),
            ));
        };
        if Some(shard.count) != count {
            return Err(MergeError("shards of different shard counts".into()));
        }
        if seen_shards.contains(&shard.index) {
            return Err(MergeError(format!("shard {} given twice", shard.index)));
        }
        seen_shards.push(shard.index);
    }
    let runs: Vec<SweepRun> = shards.iter().flat_map(|s| s.runs.iter().cloned()).collect();
    let mut seeds: Vec<u64> = runs.iter().map(|r| r.seed).collect();
    seeds.sort_unstable();
    let mut expected = all_seeds.to_vec();
    expected.sort_unstable();
    if seeds != expected {
        let missing = expected
            .iter()
            .filter(|s| seeds.binary_search(s).is_err())
            .count();
        return Err(MergeError(format!(
            "the shards cover {} of {} seeds ({missing} missing): merge every shard of the sweep",
            seeds.len(),
            expected.len()
        )));
    }
    let header = SweepHeader {
        scenario: first.scenario.clone(),
        scenario_file: first.scenario_file.clone(),
        overrides: first.overrides.clone(),
        seed_range: first.seed_range.clone(),
        shard: None,
    };
    Ok(summarize(&header, runs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_bound_behaves() {
        // No failure in 100 runs: about 2.6 % (close to the "rule of three" 3/n).
        let u = wilson_upper(0, 100, Z_95_ONE_SIDED);
        assert!((0.02..0.03).contains(&u), "{u}");
        assert!(wilson_upper(50, 100, Z_95_ONE_SIDED) > 0.5);
        assert_eq!(wilson_upper(100, 100, Z_95_ONE_SIDED), 1.0);
        assert!(wilson_upper(0, 1000, Z_95_ONE_SIDED) < wilson_upper(0, 100, Z_95_ONE_SIDED));
    }
}
