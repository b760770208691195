//! Bad input: every file in `tests/bad/` is rejected with exit 2 and a message naming the file,
//! line, key and what was expected (each file's header says which); bad overrides likewise.
//! Nothing panics.

use crate::common::{code, relative, simulate, text, toml_files};

struct Expected {
    line: String,
    key: String,
    message: String,
}

fn expected(path: &std::path::Path) -> Expected {
    let source = std::fs::read_to_string(path).expect("readable");
    let field = |name: &str| {
        source
            .lines()
            .find_map(|l| l.strip_prefix(&format!("# expect-{name}: ")))
            .unwrap_or_else(|| panic!("{} lacks `# expect-{name}:`", path.display()))
            .trim()
            .to_string()
    };
    Expected {
        line: field("line"),
        key: field("key"),
        message: field("message"),
    }
}

#[test]
fn bad_scenarios_are_rejected_with_file_line_key_and_expectation() {
    let files = toml_files("tests/bad");
    assert!(
        files.len() >= 25,
        "the corpus should hold at least 25 bad files, has {}",
        files.len()
    );
    let mut problems = Vec::new();
    for path in &files {
        let want = expected(path);
        let file = relative(path);
        for args in [
            vec!["validate", file.as_str()],
            vec![file.as_str(), "--quiet"],
        ] {
            let output = simulate(&args);
            let status = code(&output);
            let stderr = String::from_utf8_lossy(&output.stderr);
            let location = format!("{file}:{}:", want.line);
            let key = format!("`{}`", want.key);
            let first_error = stderr
                .lines()
                .find(|l| l.starts_with("error:"))
                .unwrap_or("");
            if status != 2 {
                problems.push(format!(
                    "{file} ({args:?}): exit {status}, expected 2\n{}",
                    text(&output)
                ));
            } else if !first_error.contains(&location)
                || (!want.key.is_empty() && !first_error.contains(&key))
                || !first_error.contains(&want.message)
            {
                problems.push(format!(
                    "{file}: expected an error at {location} naming {key} with {:?}; got:\n{stderr}",
                    want.message
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[test]
fn bad_overrides_name_the_path() {
    let cases: [(&str, &str); 7] = [
        ("edge.rate_limitng=false", "did you mean `rate_limiting`"),
        ("tenants.hevy.arrival.rate=5", "no element named `hevy`"),
        ("tenants.heavy.arrival.rate=-5", "positive number"),
        ("tenants.heavy.timeout=5", "a bare number has no unit"),
        (
            "simulation.duration.value=3",
            "is the string \"120s\", not a table",
        ),
        ("tenants.heavy=3", "names a whole element"),
        ("no-equals-sign", "PATH=VALUE"),
    ];
    for (set, message) in cases {
        let output = simulate(&["scenarios/hot-tenant.toml", "--set", set]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(code(&output), 2, "--set {set}\n{}", text(&output));
        assert!(
            stderr.contains(&format!("--set {set}")),
            "--set {set}: location missing:\n{stderr}"
        );
        assert!(
            stderr.contains(message),
            "--set {set}: expected {message:?}:\n{stderr}"
        );
    }
}

#[test]
fn overrides_reach_array_elements_by_name_and_groups() {
    // Setting a count group's rate sets every member's; the run still passes.
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().display().to_string();
    let output = simulate(&[
        "scenarios/hot-tenant.toml",
        "--set",
        "tenants.light.arrival.rate=12",
        "--set",
        "simulation.duration=\"60s\"",
        "--out",
        &out,
        "--quiet",
    ]);
    assert_eq!(code(&output), 0, "{}", text(&output));
    let report = crate::common::read_report(dir.path());
    assert_eq!(report["overrides"][0], "tenants.light.arrival.rate=12");
    // 50 tenants at 12/s for 50 judged seconds: about 30,000 requests (10/s would give 25,000).
    let light: u64 = report["tenants"]
        .as_array()
        .expect("tenants")
        .iter()
        .filter(|t| t["tier"] == "standard")
        .map(|t| t["requests"].as_u64().expect("requests"))
        .sum();
    assert!((28_500..31_500).contains(&light), "light requests {light}");
}

#[test]
fn unreadable_file_and_usage_errors_exit_2() {
    let output = simulate(&["scenarios/no-such-file.toml"]);
    assert_eq!(code(&output), 2);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("cannot read scenarios/no-such-file.toml")
    );
    let output = simulate(&["run", "scenarios/hot-tenant.toml", "--seed", "minus-one"]);
    assert_eq!(code(&output), 2);
    let output = simulate(&["validate"]);
    assert_eq!(code(&output), 2);
}

#[test]
fn help_teaches_with_examples() {
    let output = simulate(&["--help"]);
    assert_eq!(code(&output), 0);
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(
        help.contains("simulate scenarios/hot-tenant.toml --set edge.rate_limiting=false"),
        "{help}"
    );
    assert!(help.contains("Exit codes"), "{help}");
}

#[test]
fn validate_accepts_every_shipped_scenario() {
    let output = simulate(&["validate", "scenarios", "benches/mmc-reference.toml"]);
    assert_eq!(code(&output), 0, "{}", text(&output));
}

#[test]
fn too_many_overrides_name_the_limit() {
    let sets: Vec<String> = (0..=tenantsim::scenario::limits::MAX_OVERRIDES.max_int())
        .map(|i| format!("tiers.standard.burst={}", i + 1))
        .collect();
    let mut args = vec!["scenarios/hot-tenant.toml"];
    for s in &sets {
        args.push("--set");
        args.push(s);
    }
    let output = simulate(&args);
    assert_eq!(code(&output), 2, "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("(MAX_OVERRIDES)"),
        "{}",
        text(&output)
    );
}

/// One error for one broken limit: past `MAX_FAULTS`, the faults within the limit are still
/// read, so an SLO window naming the first fault resolves instead of adding a false "names no
/// fault" error after the limit's.
#[test]
fn a_broken_limit_is_one_error_not_a_cascade() {
    let limit = tenantsim::scenario::limits::MAX_FAULTS.max_int();
    let mut scenario =
        std::fs::read_to_string(crate::common::root().join("benches/hot-tenant-full.toml"))
            .expect("readable");
    for i in 0..limit {
        scenario.push_str(&format!(
            "\n[[faults]]\nname = \"extra-{i}\"\nkind = \"load_spike\"\ntenant = \"heavy\"\n\
             multiplier = 2\nat = \"30s\"\nduration = \"1s\"\n"
        ));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("many-faults.toml");
    std::fs::write(&file, scenario).expect("writable");
    let output = simulate(&["validate", file.to_str().expect("utf-8 path")]);
    assert_eq!(code(&output), 2, "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("(MAX_FAULTS)"), "{stderr}");
}

/// Faults an exploration may draw count against `MAX_FAULTS` together with the scenario's
/// own: past it, the `[explore]` table is refused at load, rather than every seed's scenario
/// failing to load during `explore` and counting as a failing seed.
#[test]
fn explored_faults_count_against_the_fault_limit() {
    let limit = tenantsim::scenario::limits::MAX_FAULTS.max_int();
    let mut scenario =
        std::fs::read_to_string(crate::common::root().join("scenarios/cell-outage.toml"))
            .expect("readable")
            .replace("count = [1, 3]", "count = [1, 100]");
    assert!(
        scenario.contains("count = [1, 100]"),
        "the shipped [explore] changed"
    );
    for i in 0..limit - 50 {
        scenario.push_str(&format!(
            "\n[[faults]]\nname = \"extra-{i}\"\nkind = \"load_spike\"\ntenant = \"a\"\n\
             multiplier = 1\nat = \"30s\"\nduration = \"1s\"\n"
        ));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("explore-many-faults.toml");
    std::fs::write(&file, &scenario).expect("writable");
    let output = simulate(&["validate", file.to_str().expect("utf-8 path")]);
    assert_eq!(code(&output), 2, "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("`explore.count`") && stderr.contains("(MAX_FAULTS)"),
        "{stderr}"
    );
    // Within the limit the same file is valid.
    std::fs::write(
        &file,
        scenario.replace("count = [1, 100]", "count = [1, 49]"),
    )
    .expect("writable");
    let output = simulate(&["validate", file.to_str().expect("utf-8 path")]);
    assert_eq!(code(&output), 0, "{}", text(&output));
}

/// A migration back to the tenant's starting cell is valid once an earlier migration of the
/// tenant has moved it away (the file's order does not matter, the start times do); the same
/// migration with nothing before it is refused (tests/bad/migrate-to-own-cell.toml).
#[test]
fn a_migration_back_home_after_another_is_valid() {
    let bad =
        std::fs::read_to_string(crate::common::root().join("tests/bad/migrate-to-own-cell.toml"))
            .expect("readable");
    let away = "\n[[faults]]\nname = \"away\"\nkind = \"migrate_tenant\"\ntenant = \"t\"\n\
                to = \"cell-b\"\nat = \"5s\"\nduration = \"10s\"\n";
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("back-home.toml");
    std::fs::write(&file, format!("{bad}{away}")).expect("writable");
    let output = simulate(&["validate", file.to_str().expect("utf-8 path")]);
    assert_eq!(code(&output), 0, "{}", text(&output));
    // Starting after the move home, the move away no longer comes first.
    std::fs::write(&file, format!("{bad}{}", away.replace("\"5s\"", "\"40s\""))).expect("writable");
    let output = simulate(&["validate", file.to_str().expect("utf-8 path")]);
    assert_eq!(code(&output), 2, "{}", text(&output));
}
