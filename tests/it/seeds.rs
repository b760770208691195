//! The seed workflow: sweeps are identical for any thread count, shards merge to the unsharded
//! result, replay reproduces a report byte for byte, `--check-determinism` catches a planted
//! nondeterminism, `check` exits with the worst code, traces are well-formed.

use std::path::Path;
use std::process::Command;

use crate::common::{code, read_report, root, simulate, text};

const SHORT: &str = "simulation.duration=\"60s\"";

fn sweep(dir: &Path, extra: &[&str], threads: &str) -> Vec<u8> {
    let out = dir.display().to_string();
    let mut args = vec![
        "sweep",
        "scenarios/hot-tenant.toml",
        "--seeds",
        "1..7",
        "--set",
        SHORT,
        "--out",
        &out,
        "--quiet",
    ];
    args.extend_from_slice(extra);
    let output = Command::new(env!("CARGO_BIN_EXE_simulate"))
        .args(&args)
        .current_dir(root())
        .env("RAYON_NUM_THREADS", threads)
        .output()
        .expect("runs");
    assert!(matches!(code(&output), 0 | 1 | 4), "{}", text(&output));
    std::fs::read(dir.join("sweep.json")).expect("sweep.json")
}

#[test]
fn sweep_is_identical_for_any_thread_count_and_shards_merge_exactly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let one = sweep(&dir.path().join("t1"), &[], "1");
    let two = sweep(&dir.path().join("t2"), &[], "2");
    assert!(one == two, "sweep.json differs between 1 and 2 threads");
    let json: serde_json::Value = serde_json::from_slice(&one).expect("json");
    assert_eq!(json["seeds"], serde_json::json!([1, 2, 3, 4, 5, 6]));
    assert_eq!(json["runs"].as_array().map(Vec::len), Some(6));
    assert!(json["violation_rate"]["upper_95"].as_f64().is_some());

    let mut shard_dirs = Vec::new();
    let mut covered = Vec::new();
    for i in 0..3 {
        let d = dir.path().join(format!("shard{i}"));
        let bytes = sweep(&d, &["--shard", &format!("{i}/3")], "2");
        let shard: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        covered.extend(
            shard["seeds"]
                .as_array()
                .expect("seeds")
                .iter()
                .map(|s| s.as_u64().expect("seed")),
        );
        shard_dirs.push(d.display().to_string());
    }
    covered.sort_unstable();
    assert_eq!(
        covered,
        vec![1, 2, 3, 4, 5, 6],
        "shards must partition the seeds"
    );
    let merged = dir.path().join("merged");
    let merged_arg = merged.display().to_string();
    let mut args = vec!["merge"];
    // In any order: an engine's shards finish when they finish.
    args.extend(shard_dirs.iter().rev().map(String::as_str));
    args.extend(["--out", &merged_arg]);
    let output = simulate(&args);
    assert!(matches!(code(&output), 0 | 1 | 4), "{}", text(&output));
    let merged_bytes = std::fs::read(merged.join("sweep.json")).expect("merged");
    assert!(
        merged_bytes == one,
        "merged shards differ from the unsharded sweep"
    );
    for file in ["summary.md", "junit.xml"] {
        let read = |d: &Path| std::fs::read(d.join(file)).expect(file);
        assert!(
            read(&merged) == read(&dir.path().join("t1")),
            "merged {file} differs from the unsharded sweep's"
        );
    }

    // A missing shard is refused.
    let output = simulate(&[
        "merge",
        &shard_dirs[0],
        &shard_dirs[1],
        "--out",
        &merged_arg,
    ]);
    assert_eq!(code(&output), 2);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("1 of 3 shards missing: 2/3") && stderr.contains("merge every shard"),
        "{stderr}"
    );
    // A shard given twice is named with both files.
    let output = simulate(&[
        "merge",
        &shard_dirs[0],
        &shard_dirs[1],
        &shard_dirs[2],
        &shard_dirs[1],
        "--out",
        &merged_arg,
    ]);
    assert_eq!(code(&output), 2);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "shard 1/3 given twice ({} and {})",
            shard_dirs[1], shard_dirs[1]
        )),
        "{stderr}"
    );
}

/// On an engine the shards run at different times, maybe on different checkouts: a scenario
/// edited between two shards must not merge, although its path, overrides and seeds agree.
#[test]
fn merge_refuses_shards_of_an_edited_scenario() {
    let dir = tempfile::tempdir().expect("temp dir");
    let scenario = dir.path().join("drill.toml");
    std::fs::copy(root().join("scenarios/hot-tenant.toml"), &scenario).expect("copy");
    let shard = |index: u32| {
        let output = crate::common::simulate_in(
            dir.path(),
            &[
                "sweep",
                "drill.toml",
                "--seeds",
                "1..3",
                "--shard",
                &format!("{index}/2"),
                "--set",
                SHORT,
                "--out",
                &format!("shard-{index}"),
                "--quiet",
            ],
        );
        assert!(matches!(code(&output), 0 | 1 | 4), "{}", text(&output));
    };
    shard(0);
    let mut text_now = std::fs::read_to_string(&scenario).expect("read");
    text_now.push_str("\n# edited after shard 0 ran\n");
    std::fs::write(&scenario, text_now).expect("write");
    shard(1);
    let output =
        crate::common::simulate_in(dir.path(), &["merge", "shard-0", "shard-1", "--out", "m"]);
    assert_eq!(code(&output), 2, "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr
            .contains("shard-1 and shard-0 are shards of different sweeps: scenario text (sha256)"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("m").exists(),
        "nothing is written on a refusal"
    );
}

#[test]
fn a_failing_sweep_lists_seeds_with_repro_commands() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().display().to_string();
    let output = simulate(&[
        "sweep",
        "scenarios/hot-tenant.toml",
        "--seeds",
        "3..=4",
        "--set",
        SHORT,
        "--set",
        "edge.rate_limiting=false",
        "--out",
        &out,
        "--quiet",
    ]);
    assert_eq!(code(&output), 1, "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("2 failing"), "{stdout}");
    assert!(
        stdout.contains(
            "--seed 4 --set 'simulation.duration=\"60s\"' --set edge.rate_limiting=false"
        ),
        "{stdout}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("sweep.json")).expect("file"))
            .expect("json");
    assert_eq!(json["failing_seeds"], serde_json::json!([3, 4]));
    assert_eq!(json["slo_failures"][0]["failures"], 2);
}

#[test]
fn replay_reproduces_a_report_and_notices_tampering() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().display().to_string();
    let output = simulate(&[
        "scenarios/hot-tenant.toml",
        "--seed",
        "9",
        "--set",
        SHORT,
        "--out",
        &out,
        "--quiet",
    ]);
    assert_eq!(code(&output), 0, "{}", text(&output));
    let report = dir.path().join("report.json");
    let report_arg = report.display().to_string();
    let output = simulate(&["replay", &report_arg]);
    assert_eq!(code(&output), 0, "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("identical report"));
    // Change an observed number: replay must say the report does not reproduce.
    let original = std::fs::read_to_string(&report).expect("read");
    let tampered = original.replacen("\"ok\": ", "\"ok\": 1", 1);
    std::fs::write(&report, tampered).expect("write");
    let output = simulate(&["replay", &report_arg]);
    assert_eq!(code(&output), 3, "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("differs from line"));
}

#[test]
fn check_determinism_passes_and_catches_a_planted_nondeterminism() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().display().to_string();
    let base = [
        "scenarios/hot-tenant.toml",
        "--set",
        SHORT,
        "--out",
        &out,
        "--quiet",
        "--check-determinism",
    ];
    let output = simulate(&base);
    assert_eq!(code(&output), 0, "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("identical event digests"));
    let mut planted = base.to_vec();
    planted.push("--plant-nondeterminism");
    let output = simulate(&planted);
    assert_eq!(code(&output), 3, "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("diverge at event #"), "{stderr}");
    assert!(
        stderr.contains("run 1: t=") && stderr.contains("run 2: t="),
        "{stderr}"
    );
}

#[test]
fn check_prints_a_line_per_scenario_and_exits_with_the_worst_code() {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = root().join("scenarios/hot-tenant.toml");
    let bad = root().join("tests/bad/negative-rate.toml");
    std::fs::copy(&good, dir.path().join("a-good.toml")).expect("copy");
    std::fs::copy(&bad, dir.path().join("b-bad.toml")).expect("copy");
    let folder = dir.path().display().to_string();
    let output = simulate(&["check", &folder, "--set", SHORT]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    // The bad file is invalid (exit 2), which outranks the pass.
    assert_eq!(code(&output), 2, "{}", text(&output));
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| !l.starts_with(' ') && !l.starts_with("error"))
        .collect();
    assert!(
        lines[0].starts_with("PASS") && lines[0].contains("a-good.toml"),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("ERROR") && lines[1].contains("b-bad.toml"),
        "{stdout}"
    );
    assert!(
        stdout.contains("2 scenario(s): 1 pass, 0 fail, 0 inconclusive, 1 invalid"),
        "{stdout}"
    );

    // Over seeds, with a violation-rate gate: the twin fails every seed.
    let output = simulate(&[
        "check",
        "scenarios/hot-tenant.toml",
        "--seeds",
        "1..3",
        "--set",
        SHORT,
        "--set",
        "edge.rate_limiting=false",
        "--max-violation-rate",
        "0.5",
        "--quiet",
    ]);
    assert_eq!(code(&output), 1, "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("2/2 seeds fail"));
}

#[test]
fn traces_are_well_formed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let chrome = dir.path().join("trace.json");
    let lines = dir.path().join("trace.jsonl");
    let out = dir.path().join("out").display().to_string();
    for (file, tenant) in [(&chrome, "light-001"), (&lines, "heavy")] {
        let f = file.display().to_string();
        let output = simulate(&[
            "scenarios/hot-tenant.toml",
            "--set",
            SHORT,
            "--out",
            &out,
            "--quiet",
            "--trace",
            &f,
            "--trace-tenant",
            tenant,
        ]);
        assert_eq!(code(&output), 0, "{}", text(&output));
    }
    let trace: serde_json::Value = serde_json::from_slice(&std::fs::read(&chrome).expect("trace"))
        .expect("Chrome trace is JSON");
    let events = trace["traceEvents"].as_array().expect("events");
    let begins = events.iter().filter(|e| e["ph"] == "b").count();
    let ends = events.iter().filter(|e| e["ph"] == "e").count();
    assert!(
        begins > 100 && begins == ends,
        "{begins} begins, {ends} ends"
    );
    assert!(
        events
            .iter()
            .any(|e| e["ph"] == "M" && e["args"]["name"] == "light-001")
    );
    let text = std::fs::read_to_string(&lines).expect("jsonl");
    let mut steps = std::collections::BTreeSet::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("each line is JSON");
        assert_eq!(v["tenant"], "heavy");
        steps.insert(v["step"].as_str().expect("step").to_string());
    }
    for step in [
        "issued",
        "attempt_start",
        "throttled",
        "admitted",
        "service_start",
        "query_start",
        "service_done",
        "finished",
    ] {
        assert!(
            steps.contains(step),
            "no {step} step in the heavy tenant's trace: {steps:?}"
        );
    }
}

#[test]
fn explore_is_deterministic_per_seed_and_lists_failing_schedules() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = |name: &str, threads: &str| {
        let out = dir.path().join(name);
        let out_arg = out.display().to_string();
        let output = Command::new(env!("CARGO_BIN_EXE_simulate"))
            .args([
                "explore",
                "scenarios/cell-outage.toml",
                "--seeds",
                "1..7",
                "--out",
                &out_arg,
                "--quiet",
            ])
            .current_dir(root())
            .env("RAYON_NUM_THREADS", threads)
            .output()
            .expect("runs");
        assert!(matches!(code(&output), 0 | 1), "{}", text(&output));
        (
            std::fs::read(out.join("explore.json")).expect("explore.json"),
            output,
        )
    };
    let (first, output) = run("a", "2");
    let (second, _) = run("a", "1");
    assert!(
        first == second,
        "explore.json differs between runs / thread counts"
    );
    let json: serde_json::Value = serde_json::from_slice(&first).expect("json");
    let runs = json["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 6);
    assert!(
        runs.iter()
            .all(|r| !r["drawn_faults"].as_array().expect("faults").is_empty())
    );
    // Every failing seed has its own scenario file, which fails on its own with the same seed.
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("explore.json") && !stdout.contains("sweep.json"),
        "explore names its own file, not a sweep's: {stdout}"
    );
    for seed in json["failing_seeds"].as_array().expect("failing") {
        let seed = seed.as_u64().expect("seed");
        let file = dir.path().join("a").join(format!("seed-{seed}.toml"));
        assert!(
            stdout.contains(&format!("seed-{seed}.toml --seed {seed}")),
            "{stdout}"
        );
        let rerun = simulate(&[
            file.to_str().expect("path"),
            "--seed",
            &seed.to_string(),
            "--quiet",
            "--out",
            dir.path().join("re").to_str().expect("path"),
        ]);
        assert_eq!(
            code(&rerun),
            1,
            "seed {seed} of explore must fail again from its file\n{}",
            text(&rerun)
        );
    }
}

#[test]
fn shrink_reaches_the_planted_cause() {
    // The hot-tenant twin (no rate limiting) fails because of the heavy tenant's spike. Plant
    // two irrelevant faults and a longer run: shrink must keep only the spike. By default the
    // drill's 60 s cut (53 runs to shrink); with TENANTSIM_SLOW=1 its full 120 s.
    let dir = tempfile::tempdir().expect("temp dir");
    let mut source =
        std::fs::read_to_string(root().join("scenarios/hot-tenant.toml")).expect("scenario");
    let mut light_noise_at = "95s";
    if !crate::common::slow() {
        source = source.replacen("duration = \"120s\"", "duration = \"60s\"", 1);
        light_noise_at = "45s";
    }
    let planted = format!(
        "{source}\n[[faults]]\nname = \"noise-cp\"\nkind = \"control_plane_outage\"\nat = \"20s\"\nduration = \"30s\"\n\
         \n[[faults]]\nname = \"noise-light\"\nkind = \"load_spike\"\ntenant = \"light-007\"\nmultiplier = 1.5\nat = \"{light_noise_at}\"\nduration = \"10s\"\n"
    );
    let file = dir.path().join("planted.toml");
    std::fs::write(&file, planted).expect("write");
    let out = dir.path().join("min.toml");
    let output = simulate(&[
        "shrink",
        file.to_str().expect("path"),
        "--seed",
        "42",
        "--set",
        "edge.rate_limiting=false",
        "--out",
        out.to_str().expect("path"),
    ]);
    assert_eq!(code(&output), 0, "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("faults 3 -> 1"), "{stdout}");
    let minimal = std::fs::read_to_string(&out).expect("minimal scenario");
    let faults: Vec<&str> = minimal
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .filter(|n| n.starts_with("spike") || n.starts_with("noise"))
        .collect();
    assert_eq!(faults, vec!["spike\""], "{minimal}");
    assert!(
        minimal.contains("rate_limiting = false"),
        "the overrides are baked in:\n{minimal}"
    );
    // It runs on its own and still fails the same SLO.
    let rerun = simulate(&[
        out.to_str().expect("path"),
        "--quiet",
        "--out",
        dir.path().join("r").to_str().expect("path"),
    ]);
    assert_eq!(code(&rerun), 1, "{}", text(&rerun));
    let report = read_report(&dir.path().join("r"));
    let failed: Vec<&str> = report["slos"]
        .as_array()
        .expect("slos")
        .iter()
        .filter(|s| s["status"] == "fail")
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(
        failed,
        vec!["bystanders keep their latency and errors during the spike"]
    );
}

/// `--seed` takes any u64, a TOML integer only up to i64::MAX: a failing seed above that
/// shrinks like any other (every candidate runs with it), and the file says to pass it.
#[test]
fn shrink_keeps_a_seed_no_file_can_hold() {
    let dir = tempfile::tempdir().expect("temp dir");
    let seed = (1u64 << 63).to_string();
    let out = dir.path().join("min.toml");
    let output = simulate(&[
        "shrink",
        "scenarios/hot-tenant.toml",
        "--seed",
        &seed,
        "--set",
        "edge.rate_limiting=false",
        "--max-runs",
        "2",
        "--out",
        out.to_str().expect("path"),
    ]);
    assert_eq!(code(&output), 0, "{}", text(&output));
    let minimal = std::fs::read_to_string(&out).expect("minimal scenario");
    assert!(
        minimal.contains(&format!("--seed {seed}")) && minimal.contains("cannot hold this seed"),
        "{minimal}"
    );
    let rerun = simulate(&[
        out.to_str().expect("path"),
        "--seed",
        &seed,
        "--quiet",
        "--out",
        dir.path().join("r").to_str().expect("path"),
    ]);
    assert_eq!(code(&rerun), 1, "{}", text(&rerun));
}
