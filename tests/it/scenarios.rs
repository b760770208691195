//! Every scenario in `scenarios/`: passes as written, deterministically, with books that
//! balance; its failing twin (the `# twin:` line) fails with exit 1. Adding a file adds the test.

use std::path::{Path, PathBuf};

use crate::common::{code, read_report, relative, shell_words, simulate, text, toml_files};

/// The overrides on the scenario's `# twin:` line.
fn twin_args(path: &Path) -> Vec<String> {
    let source = std::fs::read_to_string(path).expect("scenario readable");
    let line = source
        .lines()
        .take_while(|l| l.starts_with('#') || l.trim().is_empty())
        .find_map(|l| l.strip_prefix("# twin:"))
        .unwrap_or_else(|| panic!("{} has no `# twin:` line in its header", path.display()));
    let args = shell_words(line);
    assert!(!args.is_empty(), "{}: empty `# twin:` line", path.display());
    args
}

fn run(path: &Path, extra: &[String], out: &Path) -> (i32, std::process::Output) {
    let file = relative(path);
    let out_arg = out.display().to_string();
    let mut args: Vec<&str> = vec![file.as_str(), "--quiet", "--out", out_arg.as_str()];
    args.extend(extra.iter().map(String::as_str));
    let output = simulate(&args);
    (code(&output), output)
}

fn scenarios() -> Vec<PathBuf> {
    let files = toml_files("scenarios");
    assert!(!files.is_empty(), "scenarios/ holds no scenario");
    files
}

fn assert_conservation(report: &serde_json::Value, what: &str) {
    let invariants = report["invariants"].as_array().expect("invariants array");
    let conservation = invariants
        .iter()
        .find(|i| i["name"] == "conservation")
        .unwrap_or_else(|| panic!("{what}: no conservation invariant in report.json"));
    assert_eq!(
        conservation["passed"], true,
        "{what}: conservation failed: {conservation}"
    );
    // Check the books from the per-tenant fields too.
    for t in report["tenants"].as_array().expect("tenants array") {
        let sum: u64 = [
            "ok",
            "throttled",
            "rejected",
            "failed",
            "timed_out",
            "in_flight",
        ]
        .iter()
        .map(|k| t[*k].as_u64().expect("count"))
        .sum();
        assert_eq!(
            t["requests"].as_u64(),
            Some(sum),
            "{what}: tenant {} does not add up",
            t["name"]
        );
    }
}

#[test]
fn every_scenario_passes_deterministically() {
    for path in scenarios() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let (first, output) = run(&path, &[], &a);
        assert_eq!(
            first,
            0,
            "{} should pass as written\n{}",
            path.display(),
            text(&output)
        );
        let (second, output) = run(&path, &[], &b);
        assert_eq!(
            second,
            0,
            "{} second run\n{}",
            path.display(),
            text(&output)
        );
        let bytes_a = std::fs::read(a.join("report.json")).expect("first report");
        let bytes_b = std::fs::read(b.join("report.json")).expect("second report");
        assert!(
            bytes_a == bytes_b,
            "{}: same seed, different report.json bytes",
            path.display()
        );
        assert_conservation(&read_report(&a), &relative(&path));
    }
}

#[test]
fn every_twin_fails() {
    for path in scenarios() {
        let dir = tempfile::tempdir().expect("temp dir");
        let twin = twin_args(&path);
        let (status, output) = run(&path, &twin, dir.path());
        assert_eq!(
            status,
            1,
            "{} with its twin {twin:?} should fail with exit 1\n{}",
            path.display(),
            text(&output)
        );
        let report = read_report(dir.path());
        assert_eq!(
            report["verdict"],
            "fail",
            "{}: twin verdict",
            path.display()
        );
        let failed_slos = report["slos"]
            .as_array()
            .expect("slos")
            .iter()
            .filter(|s| s["passed"] == false)
            .count();
        let failed_invariants = report["invariants"]
            .as_array()
            .expect("invariants")
            .iter()
            .filter(|i| i["passed"] == false)
            .count();
        assert!(
            failed_slos + failed_invariants > 0,
            "{}: twin failed without a failing SLO",
            path.display()
        );
    }
}

#[test]
fn another_seed_gives_another_run() {
    for path in scenarios() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        run(&path, &[], &a);
        let seed = read_report(&a)["seed"].as_u64().expect("seed");
        let other = (seed + 1).to_string();
        run(&path, &["--seed".to_string(), other.clone()], &b);
        let report_b = read_report(&b);
        assert_eq!(report_b["seed"].as_u64(), Some(seed + 1));
        assert_conservation(&report_b, &format!("{} --seed {other}", relative(&path)));
        let bytes_a = std::fs::read(a.join("report.json")).expect("report a");
        let bytes_b = std::fs::read(b.join("report.json")).expect("report b");
        assert!(
            bytes_a != bytes_b,
            "{}: seeds {seed} and {other} gave identical reports",
            path.display()
        );
        // And the second seed is itself reproducible.
        let c = dir.path().join("c");
        run(&path, &["--seed".to_string(), other], &c);
        assert!(
            std::fs::read(c.join("report.json")).expect("report c") == bytes_b,
            "{}: --seed {} is not reproducible",
            path.display(),
            seed + 1
        );
    }
}

#[test]
fn default_output_folder_and_repro_line() {
    // The README's first command: the report lands in reports/<name>/seed-<N>/ (relative to
    // the working folder) and the summary ends with the verdict and a repro command.
    let dir = tempfile::tempdir().expect("temp dir");
    let scenario = crate::common::root().join("scenarios/hot-tenant.toml");
    let output = crate::common::simulate_in(
        dir.path(),
        &[
            scenario.to_str().expect("utf-8 path"),
            "--set",
            "simulation.duration=\"60s\"",
        ],
    );
    assert_eq!(code(&output), 0, "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let tail: Vec<&str> = stdout.lines().rev().take(2).collect();
    assert!(tail[1].starts_with("Verdict: PASS"), "{stdout}");
    assert!(
        tail[0].starts_with("Reproduce: ") && tail[0].contains("--seed 42"),
        "{stdout}"
    );
    assert!(
        tail[0].contains("--set 'simulation.duration=\"60s\"'"),
        "{stdout}"
    );
    // A run with overrides lands beside the reference run, never on it.
    let runs: Vec<PathBuf> = std::fs::read_dir(dir.path().join("reports/hot-tenant"))
        .expect("reports/hot-tenant/ written")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let folder = runs[0]
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert!(
        folder.starts_with("seed-42-set-") && folder.len() == "seed-42-set-".len() + 8,
        "{folder}"
    );
    assert_eq!(read_report(&runs[0])["verdict"], "pass");
    for file in ["summary.md", "junit.xml", "index.html", "plots/latency.svg"] {
        assert!(runs[0].join(file).is_file(), "{folder}/{file}");
    }
}

#[test]
fn twin_summary_names_the_bystanders_that_broke() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().display().to_string();
    let output = simulate(&[
        "scenarios/hot-tenant.toml",
        "--set",
        "edge.rate_limiting=false",
        "--out",
        &out,
    ]);
    assert_eq!(code(&output), 1, "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("FAIL  bystanders keep their latency"),
        "{stdout}"
    );
    assert!(
        stdout.contains("✗ light-"),
        "the summary lists failing bystanders:\n{stdout}"
    );
    assert!(stdout.contains("error_rate < 0.01"), "{stdout}");
    // The heavy tenant is the fault's target, not a bystander: it is never judged here.
    let report = read_report(dir.path());
    let judged: Vec<&str> = report["slos"][0]["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| c["tenant"].as_str().expect("tenant"))
        .collect();
    assert!(
        !judged.contains(&"heavy") && judged.len() == 100,
        "{judged:?}"
    );
}
