//! Architecture rules that read the sources (ARCHITECTURE.md, "Invariants"): components import nothing
//! above them, and nothing below the CLI reads the wall clock, uses ambient randomness or
//! iterates a hash map.

use std::path::{Path, PathBuf};

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
