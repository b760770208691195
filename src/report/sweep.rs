//! `sweep.json`: the verdicts of one scenario over many seeds, with per-SLO failure counts and
//! the violation rate with a one-sided 95 % upper confidence bound.
//!
//! Runs are kept in seed order, so the file is byte-identical for any thread count, and shards
//! merged with [`merge`] give exactly the file one unsharded sweep writes. [`merge`] is the
//! gate between a batch engine (Slurm, a CI matrix, Kubernetes) and the result: it refuses
//! shards of different sweeps (scenario text, overrides, version, seed range, shard count),
//! duplicate, missing or tampered shards, and verdicts it does not know, naming the file.
//!
//! A sweep's `summary.md` ([`markdown`]) and `junit.xml` ([`junit`]) are rendered from the
//! report alone, so merged shards give those files byte for byte too.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::{Deserialize, Serialize};

use super::{Invocation, Report};
use crate::text::thousands;

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
    /// SHA-256 of the scenario file's bytes (lowercase hex, as `sha256sum` prints it): shards
    /// run on different machines merge only if they ran the same text.
    pub scenario_sha256: String,
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
    /// SHA-256 of the scenario text ([`text_sha256`]).
    pub scenario_sha256: String,
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
        scenario_sha256: header.scenario_sha256.clone(),
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

/// The verdicts a run can have. [`merge`] refuses a file with any other: an unknown verdict
/// must never be counted as a pass.
pub const VERDICTS: [&str; 4] = ["pass", "fail", "inconclusive", "error"];

/// SHA-256 of a scenario's text in lowercase hex: what `sha256sum FILE` prints for the file.
pub fn text_sha256(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// The seeds of `shard` among `all` (a sweep's seeds in order): those at positions `index`,
/// `index + count`, `index + 2 × count`, ... `sweep --shard` runs these; [`merge`] checks that a
/// shard file holds exactly these.
pub fn shard_seeds(all: &[u64], shard: Shard) -> Vec<u64> {
    match (usize::try_from(shard.index), usize::try_from(shard.count)) {
        (Ok(index), Ok(count)) if count > 0 => {
            all.iter().skip(index).step_by(count).copied().collect()
        }
        _ => Vec::new(),
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

/// One shard file to merge: where it came from (named in every refusal) and what it holds.
#[derive(Clone, Copy, Debug)]
pub struct ShardFile<'a> {
    /// The file as the user named it.
    pub source: &'a str,
    /// Its contents.
    pub report: &'a SweepReport,
}

/// Most shard indices one refusal lists.
const LISTED_SHARDS: usize = 10;

/// What must be equal in every shard of one sweep: (what, this file's value, a reference
/// value). Strings from a file are shown quoted with escapes, as they may hold anything.
fn provenance_differences(a: &SweepReport, b: &SweepReport) -> Vec<String> {
    let mut differences = Vec::new();
    let mut differ = |what: &str, x: String, y: String| {
        if x != y {
            differences.push(format!("{what} {x} vs {y}"));
        }
    };
    differ(
        "scenario text (sha256)",
        format!("{:?}", a.scenario_sha256),
        format!("{:?}", b.scenario_sha256),
    );
    differ(
        "scenario file",
        format!("{:?}", a.scenario_file),
        format!("{:?}", b.scenario_file),
    );
    differ(
        "scenario name",
        format!("{:?}", a.scenario),
        format!("{:?}", b.scenario),
    );
    differ(
        "--set overrides",
        format!("{:?}", a.overrides),
        format!("{:?}", b.overrides),
    );
    differ(
        "--seeds",
        format!("{:?}", a.seed_range),
        format!("{:?}", b.seed_range),
    );
    differ(
        "version",
        format!("{:?}", a.version),
        format!("{:?}", b.version),
    );
    differ(
        "shard count",
        format!("{:?}", a.shard.map(|s| s.count)),
        format!("{:?}", b.shard.map(|s| s.count)),
    );
    differences
}

/// Checks one shard file on its own and against the first: a valid shard of the same sweep,
/// not interrupted, known verdicts, exactly its shard's seeds. Returns its shard.
fn check_shard_file(
    file: &ShardFile<'_>,
    first: &ShardFile<'_>,
    all_seeds: &[u64],
) -> Result<Shard, MergeError> {
    let (source, report) = (file.source, file.report);
    let refuse = |why: String| Err(MergeError(format!("{source}: {why}")));
    let Some(shard) = report.shard else {
        return refuse(
            "no \"shard\" field: an unsharded sweep (or a merged one) cannot be merged; merge the \
             sweep.json files of `simulate sweep --shard I/N`"
                .into(),
        );
    };
    if shard.count == 0 {
        return refuse("shard count 0: a sweep has at least one shard".into());
    }
    if shard.index >= shard.count {
        return refuse(format!(
            "shard index {} is not below the shard count {} (shards are 0-based: 0/{} to {}/{})",
            shard.index,
            shard.count,
            shard.count,
            shard.count - 1,
            shard.count
        ));
    }
    let differences = provenance_differences(report, first.report);
    if !differences.is_empty() {
        return Err(MergeError(format!(
            "{source} and {} are shards of different sweeps: {}; merge only shards of one sweep \
             (the same scenario text and file, --set overrides, --seeds, version and shard count)",
            first.source,
            differences.join("; ")
        )));
    }
    if report.interrupted {
        return refuse(format!(
            "shard {}/{} is from an interrupted sweep ({} seeds did not run): rerun that shard",
            shard.index, shard.count, report.not_run
        ));
    }
    if let Some(run) = report
        .runs
        .iter()
        .find(|r| !VERDICTS.contains(&r.verdict.as_str()))
    {
        return refuse(format!(
            "seed {} has the verdict {:?}, which is none of pass, fail, inconclusive, error; \
             refusing to count it",
            run.seed, run.verdict
        ));
    }
    let expected = shard_seeds(all_seeds, shard);
    let held: Vec<u64> = report.runs.iter().map(|r| r.seed).collect();
    for (what, seeds) in [("runs", &held), ("seeds", &report.seeds)] {
        if *seeds != expected {
            let position = seeds
                .iter()
                .zip(&expected)
                .position(|(a, b)| a != b)
                .unwrap_or(seeds.len().min(expected.len()));
            let detail = match (seeds.get(position), expected.get(position)) {
                (Some(found), Some(wanted)) => format!("seed {found} where seed {wanted} belongs"),
                (Some(found), None) => format!("seed {found}, which is not in the shard"),
                (None, Some(wanted)) => format!("no seed {wanted}"),
                (None, None) => "a different list".to_string(),
            };
            return refuse(format!(
                "its {what} are not the seeds of shard {}/{} of --seeds {:?} ({} expected, {} \
                 held; at position {position}: {detail}); was it edited?",
                shard.index,
                shard.count,
                report.seed_range,
                expected.len(),
                seeds.len()
            ));
        }
    }
    Ok(shard)
}

/// Up to `limit` shard indices below `count` that are not in `present` (sorted, unique).
fn missing_indices(present: &[u64], count: u64, limit: usize) -> Vec<u64> {
    let mut missing = Vec::new();
    let mut next = 0u64;
    for &index in present.iter().chain(std::iter::once(&count)) {
        while next < index && missing.len() < limit {
            missing.push(next);
            next += 1;
        }
        next = index.saturating_add(1);
    }
    missing
}

/// Merges the shard files of one sweep into the report one unsharded sweep over `all_seeds`
/// (the seeds of the shards' `--seeds` range) would give, in whatever order the files come.
///
/// Refuses, naming the file: a file that is not a shard, a shard count of 0 or an index not
/// below it, shards of different sweeps (scenario text or file, overrides, seed range, version
/// or shard count), an interrupted shard, a verdict other than [`VERDICTS`], a shard that does
/// not hold exactly its seeds; and, naming the shards, a shard given twice or missing.
pub fn merge(files: &[ShardFile<'_>], all_seeds: &[u64]) -> Result<SweepReport, MergeError> {
    let Some(first) = files.first() else {
        return Err(MergeError("no shard files given".into()));
    };
    let mut given: Vec<(u64, &str)> = Vec::with_capacity(files.len());
    let mut count = 1;
    for file in files {
        let shard = check_shard_file(file, first, all_seeds)?;
        given.push((shard.index, file.source));
        count = shard.count;
    }
    given.sort_unstable();
    if let Some(pair) = given.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        return Err(MergeError(format!(
            "shard {}/{count} given twice ({} and {}): give each shard once",
            pair[0].0, pair[0].1, pair[1].1
        )));
    }
    let present: Vec<u64> = given.iter().map(|(index, _)| *index).collect();
    let missing_count = count - present.len() as u64;
    if missing_count > 0 {
        let listed: Vec<String> = missing_indices(&present, count, LISTED_SHARDS)
            .iter()
            .map(|i| format!("{i}/{count}"))
            .collect();
        let held: usize = files.iter().map(|f| f.report.runs.len()).sum();
        return Err(MergeError(format!(
            "{} of {count} shards missing: {}{} ({} of {} seeds not covered); merge every shard \
             of the sweep",
            missing_count,
            listed.join(", "),
            if missing_count > listed.len() as u64 {
                ", …"
            } else {
                ""
            },
            all_seeds.len().saturating_sub(held),
            all_seeds.len()
        )));
    }
    let runs: Vec<SweepRun> = files
        .iter()
        .flat_map(|f| f.report.runs.iter().cloned())
        .collect();
    let report = first.report;
    let header = SweepHeader {
        scenario: report.scenario.clone(),
        scenario_file: report.scenario_file.clone(),
        scenario_sha256: report.scenario_sha256.clone(),
        overrides: report.overrides.clone(),
        seed_range: report.seed_range.clone(),
        shard: None,
    };
    Ok(summarize(&header, runs))
}

/// The sweep's overall verdict, as its exit code says it: `interrupted`, `fail` (a failing or
/// erroring seed), `inconclusive`, or `pass`.
pub fn overall_verdict(report: &SweepReport) -> &'static str {
    if report.interrupted {
        "interrupted"
    } else if !report.failing_seeds.is_empty() {
        "fail"
    } else if !report.inconclusive_seeds.is_empty() {
        "inconclusive"
    } else {
        "pass"
    }
}

/// The command that reproduces one seed of the sweep (canonical: `simulate ...`).
pub fn repro(report: &SweepReport, run: &SweepRun) -> String {
    Invocation {
        scenario_file: run
            .scenario_file
            .clone()
            .unwrap_or_else(|| report.scenario_file.clone()),
        overrides: report.overrides.clone(),
        ..Invocation::default()
    }
    .repro(run.seed)
}

/// Why a run did not pass, on one line: its error's first line, or the failed SLOs and
/// invariants.
pub fn failure_reason(run: &SweepRun) -> String {
    match &run.error {
        Some(e) => e.lines().next().unwrap_or("").to_string(),
        None => run
            .failed_slos
            .iter()
            .chain(&run.failed_invariants)
            .cloned()
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// How many failing seeds `summary.md` lists with their repro commands.
pub const LISTED_SEEDS: usize = 20;

/// Renders a sweep's `summary.md`: verdict, counts, violation rate, failures per SLO and the
/// first failing seeds with their repro commands (for a CI job summary).
pub fn markdown(report: &SweepReport) -> String {
    use super::markdown::{code, escape};
    let mut out = String::new();
    let verdict = match overall_verdict(report) {
        "pass" => "✅ PASS",
        "fail" => "❌ **FAIL**",
        "inconclusive" => "⚠️ **INCONCLUSIVE**",
        _ => "⏹ **INTERRUPTED**",
    };
    let _ = writeln!(out, "# {} sweep: {verdict}\n", escape(&report.scenario));
    let v = &report.violation_rate;
    let _ = writeln!(
        out,
        "{} · seeds {} · {} runs · tenantsim {} · scenario sha256 {}\n",
        code(&report.scenario_file),
        code(&report.seed_range),
        thousands(v.runs),
        escape(&report.version),
        code(&report.scenario_sha256)
    );
    if !report.overrides.is_empty() {
        let sets: Vec<String> = report
            .overrides
            .iter()
            .map(|o| code(&format!("--set {o}")))
            .collect();
        let _ = writeln!(out, "Overrides: {}\n", sets.join(" "));
    }
    if report.interrupted {
        let _ = writeln!(
            out,
            "Interrupted: {} seeds did not run; the counts cover the finished ones.\n",
            thousands(report.not_run)
        );
    }
    let errors = report.runs.iter().filter(|r| r.verdict == "error").count() as u64;
    let _ = writeln!(
        out,
        "| runs | pass | fail | error | inconclusive | violation rate | one-sided 95% upper bound |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|");
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} | {} | {:.2}% | {:.2}% |",
        thousands(v.runs),
        thousands(v.runs - v.failures - report.inconclusive_seeds.len() as u64),
        thousands(v.failures - errors),
        thousands(errors),
        thousands(report.inconclusive_seeds.len() as u64),
        v.rate * 100.0,
        v.upper_95 * 100.0
    );
    if !report.slo_failures.is_empty() {
        let _ = writeln!(out, "\n## Failures per SLO or invariant\n");
        let _ = writeln!(out, "| SLO or invariant | failing runs |\n|---|---:|");
        for f in &report.slo_failures {
            let _ = writeln!(out, "| {} | {} |", escape(&f.name), thousands(f.failures));
        }
    }
    let failing: Vec<&SweepRun> = report
        .runs
        .iter()
        .filter(|r| r.verdict == "fail" || r.verdict == "error")
        .collect();
    if !failing.is_empty() {
        let _ = writeln!(out, "\n## Failing seeds: reproduce on any machine\n");
        for run in failing.iter().take(LISTED_SEEDS) {
            let _ = writeln!(
                out,
                "- seed {} ({}): {}\n\n  ```sh\n  {}\n  ```\n",
                run.seed,
                escape(&run.verdict),
                escape(&failure_reason(run)),
                repro(report, run).replace(['\n', '\r'], " ")
            );
        }
        if failing.len() > LISTED_SEEDS {
            let _ = writeln!(
                out,
                "- … and {} more failing seeds (see `sweep.json` or `junit.xml`)\n",
                thousands((failing.len() - LISTED_SEEDS) as u64)
            );
        }
    }
    if !report.inconclusive_seeds.is_empty() {
        let shown: Vec<String> = report
            .inconclusive_seeds
            .iter()
            .take(LISTED_SEEDS)
            .map(u64::to_string)
            .collect();
        let _ = writeln!(
            out,
            "\nInconclusive seeds (an SLO had fewer samples than its `min_samples`): {}{}\n",
            shown.join(", "),
            if report.inconclusive_seeds.len() > LISTED_SEEDS {
                ", …"
            } else {
                ""
            }
        );
    }
    let _ = writeln!(
        out,
        "Files: [sweep.json](sweep.json) · [junit.xml](junit.xml)"
    );
    out
}

/// Most test cases in a sweep's `junit.xml`: beyond, the passing seeds are one grouped case,
/// and the failing ones past this many are another.
pub const MAX_SEED_CASES: usize = 1_000;

/// Renders a sweep's `junit.xml`: one test case per seed (failures carry the failed SLOs and
/// the repro command; an error is an error; inconclusive is skipped). Past [`MAX_SEED_CASES`]
/// seeds, the non-passing seeds come first and the rest are grouped, so the file stays small.
pub fn junit(report: &SweepReport) -> String {
    use super::junit::escape;
    let classname = escape(&format!("{}.seed", report.scenario));
    let mut cases = Vec::new();
    let (mut failures, mut errors, mut skipped) = (0usize, 0usize, 0usize);
    let not_passing = report.runs.iter().filter(|r| r.verdict != "pass");
    let mut grouped_not_passing = 0u64;
    for run in not_passing {
        if cases.len() >= MAX_SEED_CASES {
            grouped_not_passing += 1;
            continue;
        }
        let reason = escape(&failure_reason(run));
        let command = escape(&repro(report, run));
        let body = match run.verdict.as_str() {
            "error" => {
                errors += 1;
                format!("<error message=\"{reason}\" type=\"error\">{command}</error>")
            }
            "inconclusive" => {
                skipped += 1;
                format!(
                    "<skipped message=\"inconclusive: an SLO had fewer samples than its \
                     min_samples; {command}\"/>"
                )
            }
            _ => {
                failures += 1;
                format!("<failure message=\"{reason}\" type=\"slo\">{command}</failure>")
            }
        };
        cases.push((
            run.seed,
            format!(
                "    <testcase classname=\"{classname}\" name=\"seed {}\">\n      {body}\n    </testcase>\n",
                run.seed
            ),
        ));
    }
    if grouped_not_passing > 0 {
        failures += 1;
        cases.push((
            u64::MAX,
            format!(
                "    <testcase classname=\"{classname}\" name=\"{} more seeds that did not pass\">\n      \
                 <failure message=\"{} more seeds did not pass\" type=\"slo\">see sweep.json</failure>\n    \
                 </testcase>\n",
                grouped_not_passing, grouped_not_passing
            ),
        ));
    }
    let passing: Vec<u64> = report
        .runs
        .iter()
        .filter(|r| r.verdict == "pass")
        .map(|r| r.seed)
        .collect();
    let room = MAX_SEED_CASES.saturating_sub(cases.len());
    if passing.len() <= room {
        for seed in &passing {
            cases.push((
                *seed,
                format!("    <testcase classname=\"{classname}\" name=\"seed {seed}\"/>\n"),
            ));
        }
    } else {
        cases.push((
            u64::MAX,
            format!(
                "    <testcase classname=\"{classname}\" name=\"{} passing seeds\"/>\n",
                passing.len()
            ),
        ));
    }
    // Seed order when every seed has its case; otherwise non-passing first (already so).
    if passing.len() <= room && grouped_not_passing == 0 {
        cases.sort_by_key(|(seed, _)| *seed);
    }
    let name = escape(&format!(
        "{}: seeds {}{}",
        report.scenario,
        report.seed_range,
        report
            .shard
            .map(|s| format!(" shard {}/{}", s.index, s.count))
            .unwrap_or_default()
    ));
    let counts = format!(
        "tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\"",
        cases.len()
    );
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"{}\" {counts}>",
        escape(&format!(
            "tenantsim sweep {} ({})",
            report.scenario,
            overall_verdict(report)
        ))
    );
    let _ = writeln!(out, "  <testsuite name=\"{name}\" {counts}>");
    let _ = writeln!(
        out,
        "    <properties>\n      <property name=\"scenario_file\" value=\"{}\"/>\n      \
         <property name=\"scenario_sha256\" value=\"{}\"/>\n      <property name=\"seed_range\" \
         value=\"{}\"/>\n    </properties>",
        escape(&report.scenario_file),
        escape(&report.scenario_sha256),
        escape(&report.seed_range)
    );
    for (_, case) in &cases {
        out.push_str(case);
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(seed: u64, verdict: &str) -> SweepRun {
        SweepRun {
            seed,
            verdict: verdict.to_string(),
            failed_slos: if verdict == "fail" {
                vec![format!("slo-{}", seed % 3)]
            } else {
                Vec::new()
            },
            failed_invariants: Vec::new(),
            error: (verdict == "error").then(|| "budget exceeded\nsecond line".to_string()),
            drawn_faults: Vec::new(),
            scenario_file: None,
        }
    }

    fn header(shard: Option<Shard>) -> SweepHeader {
        SweepHeader {
            scenario: "demo".into(),
            scenario_file: "scenarios/demo.toml".into(),
            scenario_sha256: text_sha256("name = \"demo\""),
            overrides: vec!["edge.rate_limiting=false".into()],
            seed_range: "10..30".into(),
            shard,
        }
    }

    /// The shard files `sweep --shard I/count` would write for `runs` (the sweep's seeds).
    fn shard_files(runs: &[SweepRun], count: u64) -> Vec<SweepReport> {
        let all: Vec<u64> = runs.iter().map(|r| r.seed).collect();
        (0..count)
            .map(|index| {
                let shard = Shard { index, count };
                let seeds = shard_seeds(&all, shard);
                let mine = runs
                    .iter()
                    .filter(|r| seeds.contains(&r.seed))
                    .cloned()
                    .collect();
                summarize(&header(Some(shard)), mine)
            })
            .collect()
    }

    fn merge_all(reports: &[SweepReport], all: &[u64]) -> Result<SweepReport, MergeError> {
        let names: Vec<String> = (0..reports.len()).map(|i| format!("file{i}")).collect();
        let files: Vec<ShardFile<'_>> = names
            .iter()
            .zip(reports)
            .map(|(source, report)| ShardFile { source, report })
            .collect();
        merge(&files, all)
    }

    fn demo_runs() -> Vec<SweepRun> {
        (10..30)
            .map(|seed| {
                run(
                    seed,
                    ["pass", "fail", "pass", "inconclusive", "error"][seed as usize % 5],
                )
            })
            .collect()
    }

    fn refusal(reports: &[SweepReport]) -> String {
        let all: Vec<u64> = (10..30).collect();
        match merge_all(reports, &all) {
            Ok(_) => panic!("merged what it should refuse"),
            Err(e) => e.0,
        }
    }

    proptest! {
        /// Any seed range, any shard count (more shards than seeds too), any order of the
        /// files: the merge is byte for byte the unsharded sweep, summary.md and junit.xml
        /// included. Leaving one shard out or giving one twice is refused, naming it.
        #[test]
        fn merged_shards_are_the_unsharded_sweep(
            start in 0u64..1_000_000,
            verdicts in proptest::collection::vec(0usize..4, 1..60),
            count in 1u64..16,
            order in proptest::collection::vec(any::<u64>(), 16),
            dropped in any::<prop::sample::Index>(),
        ) {
            let runs: Vec<SweepRun> = verdicts
                .iter()
                .enumerate()
                .map(|(i, v)| run(start + i as u64, VERDICTS[*v]))
                .collect();
            let all: Vec<u64> = runs.iter().map(|r| r.seed).collect();
            let unsharded = summarize(&header(None), runs.clone());
            let mut shards = shard_files(&runs, count);
            shards.sort_by_key(|s| order[s.shard.map_or(0, |x| x.index) as usize]);
            let merged = merge_all(&shards, &all).expect("merges");
            prop_assert_eq!(
                serde_json::to_string_pretty(&merged).expect("json"),
                serde_json::to_string_pretty(&unsharded).expect("json")
            );
            prop_assert_eq!(markdown(&merged), markdown(&unsharded));
            prop_assert_eq!(junit(&merged), junit(&unsharded));

            let gone = dropped.index(shards.len());
            let gone_index = shards[gone].shard.map(|s| s.index).unwrap_or(0);
            let mut twice = shards.clone();
            twice.push(shards[gone].clone());
            let e = merge_all(&twice, &all).expect_err("duplicate refused");
            prop_assert!(e.0.contains(&format!("shard {gone_index}/{count} given twice")), "{}", e);
            if count > 1 {
                let mut short = shards.clone();
                short.remove(gone);
                let e = merge_all(&short, &all).expect_err("missing refused");
                prop_assert!(e.0.contains(&format!("missing: {gone_index}/{count}")), "{}", e);
            }
        }
    }

    #[test]
    fn shards_partition_the_seeds_in_order() {
        let all: Vec<u64> = (100..110).collect();
        let shard = |index, count| shard_seeds(&all, Shard { index, count });
        assert_eq!(shard(0, 3), vec![100, 103, 106, 109]);
        assert_eq!(shard(2, 3), vec![102, 105, 108]);
        assert_eq!(shard(11, 12), Vec::<u64>::new());
        assert_eq!(shard(0, 0), Vec::<u64>::new());
        assert_eq!(shard(u64::MAX - 1, u64::MAX), Vec::<u64>::new());
    }

    #[test]
    fn the_scenario_digest_is_sha256_as_sha256sum_prints_it() {
        assert_eq!(
            text_sha256("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn shard_count_zero_and_index_out_of_range_are_refused() {
        let mut shards = shard_files(&demo_runs(), 2);
        shards[1].shard = Some(Shard { index: 0, count: 0 });
        assert!(refusal(&shards).contains("file1: shard count 0"));
        shards[1].shard = Some(Shard { index: 2, count: 2 });
        assert!(refusal(&shards).contains("file1: shard index 2 is not below the shard count 2"));
        shards[1].shard = None;
        assert!(refusal(&shards).contains("file1: no \"shard\" field"));
    }

    #[test]
    fn an_unknown_verdict_is_refused_not_counted_as_a_pass() {
        let mut shards = shard_files(&demo_runs(), 2);
        shards[1].runs[2].verdict = "passed".into();
        let e = refusal(&shards);
        assert!(
            e.contains("file1: seed 15 has the verdict \"passed\""),
            "{e}"
        );
    }

    /// A change to one shard file, named by what it changes.
    type Edit = (&'static str, fn(&mut SweepReport));

    #[test]
    fn shards_of_different_sweeps_are_refused_naming_what_differs() {
        let edits: [Edit; 6] = [
            ("scenario text (sha256)", |r| {
                r.scenario_sha256 = text_sha256("other")
            }),
            ("scenario file", |r| {
                r.scenario_file = "elsewhere.toml".into()
            }),
            ("--set overrides", |r| r.overrides.clear()),
            ("--seeds", |r| r.seed_range = "10..=29".into()),
            ("version", |r| r.version = "0.0.9".into()),
            ("scenario name", |r| r.scenario = "other".into()),
        ];
        for (what, edit) in edits {
            let mut shards = shard_files(&demo_runs(), 3);
            edit(&mut shards[2]);
            let e = refusal(&shards);
            assert!(
                e.starts_with("file2 and file0 are shards of different sweeps") && e.contains(what),
                "{what}: {e}"
            );
        }
        let mut shards = shard_files(&demo_runs(), 3);
        shards[1].shard = Some(Shard { index: 1, count: 4 });
        assert!(refusal(&shards).contains("shard count Some(4) vs Some(3)"));
    }

    #[test]
    fn a_shard_with_seeds_not_its_own_or_interrupted_is_refused() {
        let mut shards = shard_files(&demo_runs(), 2);
        shards[0].runs[1].seed = 13;
        let e = refusal(&shards);
        assert!(
            e.contains("file0: its runs are not the seeds of shard 0/2"),
            "{e}"
        );
        assert!(e.contains("seed 13 where seed 12 belongs"), "{e}");
        let mut shards = shard_files(&demo_runs(), 2);
        shards[1].runs.pop();
        shards[1].seeds.pop();
        assert!(refusal(&shards).contains("no seed 29"));
        let mut shards = shard_files(&demo_runs(), 2);
        shards[1].seeds.push(31);
        assert!(refusal(&shards).contains("its seeds are not the seeds of shard 1/2"));
        let mut shards = shard_files(&demo_runs(), 2);
        shards[0].interrupted = true;
        assert!(refusal(&shards).contains("file0: shard 0/2 is from an interrupted sweep"));
    }

    #[test]
    fn missing_shards_are_listed_boundedly() {
        assert_eq!(missing_indices(&[1, 3], 5, 10), vec![0, 2, 4]);
        assert_eq!(
            missing_indices(&[0], u64::MAX, 10),
            (1..11).collect::<Vec<_>>()
        );
        assert_eq!(missing_indices(&[0, 1], 2, 10), Vec::<u64>::new());
        let mut shards = shard_files(&demo_runs(), 4);
        shards.remove(3);
        shards.remove(1);
        let e = refusal(&shards);
        assert!(
            e.contains("2 of 4 shards missing: 1/4, 3/4 (10 of 20 seeds not covered)"),
            "{e}"
        );
    }

    #[test]
    fn summary_and_junit_list_failing_seeds_with_repro_commands() {
        let report = summarize(&header(None), demo_runs());
        let md = markdown(&report);
        assert!(md.starts_with("# demo sweep: ❌ **FAIL**"), "{md}");
        assert!(md.contains("| 20 | 8 | 4 | 4 | 4 | 40.00% |"), "{md}");
        assert!(
            md.contains("simulate scenarios/demo.toml --seed 11 --set edge.rate_limiting=false"),
            "{md}"
        );
        let xml = junit(&report);
        assert!(
            xml.contains("tests=\"20\" failures=\"4\" errors=\"4\" skipped=\"4\""),
            "{xml}"
        );
        assert!(xml.contains("name=\"seed 14\">"), "{xml}");
        assert!(xml.contains("<error message=\"budget exceeded\""), "{xml}");
        // Thousands of seeds: the file stays bounded, the non-passing seeds come first.
        let many: Vec<SweepRun> = (0..5_000)
            .map(|s| run(s, if s % 1000 == 7 { "fail" } else { "pass" }))
            .collect();
        let xml = junit(&summarize(&header(None), many));
        assert!(xml.contains("tests=\"6\" failures=\"5\""), "{xml}");
        assert!(xml.contains("name=\"4995 passing seeds\""), "{xml}");
        assert!(xml.find("seed 7\"") < xml.find("passing seeds"));
    }

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
