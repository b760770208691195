//! Architecture rules that read the sources (ARCHITECTURE.md, "Invariants"): components import nothing
//! above them, and nothing below the CLI reads the wall clock, uses ambient randomness or
//! iterates a hash map. And the test build reuses the run build (Cargo.toml's features).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("source folder") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|x| x == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

fn code_lines(path: &Path) -> Vec<(usize, String)> {
    std::fs::read_to_string(path)
        .expect("readable")
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.to_string()))
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .collect()
}

#[test]
fn components_import_nothing_above_them() {
    let forbidden = [
        "kernel", "model", "scenario", "slo", "report", "cli", "pipeline", "analytic",
    ];
    let root = crate::common::root().join("src/components");
    let mut violations = Vec::new();
    for file in rust_files(&root) {
        for (n, line) in code_lines(&file) {
            for layer in forbidden {
                if line.contains(&format!("crate::{layer}"))
                    || line.contains(&format!("tenantsim::{layer}"))
                {
                    violations.push(format!("{}:{n}: {}", file.display(), line.trim()));
                }
            }
            if line.contains("super::super") {
                violations.push(format!(
                    "{}:{n}: reaches above components: {}",
                    file.display(),
                    line.trim()
                ));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "components must import only `time` and each other:\n{}",
        violations.join("\n")
    );
}

#[test]
fn nothing_below_the_cli_touches_clock_randomness_or_hash_order() {
    let banned = [
        "Instant::now",
        "SystemTime::now",
        "thread_rng",
        "rand::random",
        "rand::rng()",
        "HashMap",
        "HashSet",
        "std::fs",
        "std::env",
        "println!",
        "eprintln!",
    ];
    let src = crate::common::root().join("src");
    let mut violations = Vec::new();
    for file in rust_files(&src) {
        let relative = file
            .strip_prefix(&src)
            .expect("under src")
            .to_string_lossy()
            .replace('\\', "/");
        if relative.starts_with("cli/") || relative == "main.rs" {
            continue;
        }
        for (n, line) in code_lines(&file) {
            for word in banned {
                if line.contains(word) {
                    violations.push(format!("src/{relative}:{n}: {word}: {}", line.trim()));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "determinism and I/O rules (ARCHITECTURE.md, Invariants):\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_checker_catches_a_planted_violation() {
    // The rule above must be able to fail: plant an upward import in a scratch copy.
    let dir = tempfile::tempdir().expect("temp dir");
    let planted = dir.path().join("planted.rs");
    std::fs::write(&planted, "//! x\nuse crate::model::World;\n").expect("write");
    let hits: Vec<_> = code_lines(&planted)
        .into_iter()
        .filter(|(_, l)| l.contains("crate::model"))
        .collect();
    assert_eq!(hits.len(), 1);
}

/// Each package of the resolved dependency graph with its features, as `cargo tree` prints
/// them (offline: it reads Cargo.lock and the sources the build has already fetched).
fn resolved_features(edges: &str) -> BTreeMap<String, String> {
    let cargo = option_env!("CARGO").unwrap_or("cargo");
    let output = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["tree", "--offline", "--locked", "--prefix", "none"])
        .args(["-e", edges, "-f", "{p}|{f}"])
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree -e {edges}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let (package, features) = line.trim_end_matches(" (*)").split_once('|')?;
            Some((package.to_string(), features.to_string()))
        })
        .collect()
}

/// The README's two commands from a fresh clone, `cargo run --release` then
/// `cargo test --release`: the second reuses every artifact of the first only if no crate the
/// two builds share is resolved with other features once the dev-dependencies join (else it
/// and everything above it, tenantsim included, compile twice: minutes on two cores). A
/// dev-dependency that turns on a feature of a shared crate fails here, naming the crate; list
/// the feature on a normal dependency in Cargo.toml, as for rand and bitflags.
#[test]
fn the_test_build_reuses_the_run_build() {
    let run = resolved_features("normal,build");
    let test = resolved_features("normal,build,dev");
    assert!(run.len() > 20 && test.len() > run.len(), "{run:?}");
    let differing: Vec<String> = run
        .iter()
        .filter_map(|(package, features)| {
            let in_test = test.get(package)?;
            (in_test != features)
                .then(|| format!("{package}: run build [{features}], test build [{in_test}]"))
        })
        .collect();
    assert!(
        differing.is_empty(),
        "the test build would recompile these crates (and all that depends on them):\n{}",
        differing.join("\n")
    );
}
