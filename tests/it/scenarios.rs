//! Every scenario in `scenarios/`: passes as written, deterministically, with books that
//! balance; its failing twin (the `# twin:` line) fails with exit 1. Adding a file adds the test.
//!
//! The 12,000-tenant capstone (a scenario without a committed reference report) runs once in
//! the default test run (it passes, its books balance); its second run, its twin and its
//! second seed, about two minutes of CPU, run with `TENANTSIM_SLOW=1`.

use std::path::{Path, PathBuf};

use crate::common::{
    code, once_by_default, read_report, relative, shell_words, simulate, text, toml_files,
};

/// The overrides on the scenario's `# twin:` line.
pub(crate) fn twin_args(path: &Path) -> Vec<String> {
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

/// The SLO or invariant the twin must fail on (the `# twin-fails:` line).
fn twin_fails(path: &Path) -> String {
    let source = std::fs::read_to_string(path).expect("scenario readable");
    source
        .lines()
        .take_while(|l| l.starts_with('#') || l.trim().is_empty())
        .find_map(|l| l.strip_prefix("# twin-fails:"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| {
            panic!(
                "{} has no `# twin-fails:` line naming the SLO or invariant its twin breaks",
                path.display()
            )
        })
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
        if once_by_default(&path) {
            assert_conservation(&read_report(&a), &relative(&path));
            continue;
        }
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
    for path in scenarios().into_iter().filter(|p| !once_by_default(p)) {
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
        // It fails on the SLO or invariant its story is about, not by accident.
        let story = twin_fails(&path);
        let failed: Vec<&str> = report["slos"]
            .as_array()
            .expect("slos")
            .iter()
            .chain(report["invariants"].as_array().expect("invariants"))
            .filter(|s| s["passed"] == false && s["status"] != "inconclusive")
            .filter_map(|s| s["name"].as_str())
            .collect();
        assert!(
            failed.contains(&story.as_str()),
            "{}: the twin should fail {story:?}, but the failures were {failed:?}",
            path.display()
        );
    }
}

#[test]
fn another_seed_gives_another_run() {
    for path in scenarios().into_iter().filter(|p| !once_by_default(p)) {
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
    // the working folder) and the summary ends with the verdict and a repro command. A run
    // with overrides gets its own folder, so a twin never overwrites the run as written.
    let dir = tempfile::tempdir().expect("temp dir");
    let scenario = crate::common::root().join("scenarios/hot-tenant.toml");
    let scenario = scenario.to_str().expect("utf-8 path");
    let output = crate::common::simulate_in(dir.path(), &[scenario]);
    assert_eq!(code(&output), 0, "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let tail: Vec<&str> = stdout.lines().rev().take(2).collect();
    assert!(tail[1].starts_with("Verdict: PASS"), "{stdout}");
    assert!(
        tail[0].starts_with("Reproduce: ") && tail[0].ends_with("--seed 42"),
        "{stdout}"
    );
    let written = dir.path().join("reports/hot-tenant/seed-42");
    let first =
        std::fs::read(written.join("report.json")).expect("report.json in the default folder");

    let output =
        crate::common::simulate_in(dir.path(), &[scenario, "--set", "edge.rate_limiting=false"]);
    assert_eq!(code(&output), 1, "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout
            .lines()
            .last()
            .is_some_and(|l| l.ends_with("--set edge.rate_limiting=false")),
        "{stdout}"
    );
    let folders: Vec<String> = std::fs::read_dir(dir.path().join("reports/hot-tenant"))
        .expect("folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        folders.iter().any(|f| f.starts_with("seed-42-set-")),
        "{folders:?}"
    );
    assert!(
        std::fs::read(written.join("report.json")).expect("still there") == first,
        "the twin overwrote the run as written"
    );
    // The twin's folder holds the full set of report files too.
    let twin = folders
        .iter()
        .find(|f| f.starts_with("seed-42-set-"))
        .map(|f| dir.path().join("reports/hot-tenant").join(f))
        .expect("twin folder");
    for file in ["summary.md", "junit.xml", "index.html", "plots/latency.svg"] {
        assert!(twin.join(file).is_file(), "{}/{file}", twin.display());
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

#[test]
fn a_scenario_name_instead_of_a_file_suggests_the_file() {
    // `simulate acmedocs` from the repository root: no such file, but scenarios/acmedocs.toml
    // exists, and the error says so (without running anything).
    for file in toml_files("scenarios") {
        let name = file
            .file_stem()
            .expect("file stem")
            .to_string_lossy()
            .into_owned();
        let output = simulate(&[&name]);
        assert_eq!(code(&output), 2, "{}", text(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("cannot read {name}"))
                && stderr.contains(&format!("did you mean scenarios/{name}.toml?")),
            "{stderr}"
        );
    }
    // A name nothing matches gets no suggestion.
    let output = simulate(&["no-such-drill"]);
    assert_eq!(code(&output), 2, "{}", text(&output));
    assert!(
        !String::from_utf8_lossy(&output.stderr).contains("did you mean"),
        "{}",
        text(&output)
    );
}
