//! Helpers shared by the integration tests: running the `simulate` binary and reading reports.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `simulate` with `args` from the repository root.
pub fn simulate(args: &[&str]) -> Output {
    simulate_in(&root(), args)
}

/// Runs `simulate` with `args` from `dir`.
pub fn simulate_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_simulate"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the simulate binary runs")
}

/// The exit code; a signal or panic (101) fails the test with the output.
pub fn code(output: &Output) -> i32 {
    let code = output.status.code().unwrap_or(-1);
    assert!(
        code != 101 && code >= 0,
        "simulate panicked or was killed (code {code}):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    code
}

/// Stdout and stderr, for failure messages.
pub fn text(output: &Output) -> String {
    format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Every `*.toml` in `dir` (relative to the root), sorted.
pub fn toml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("cannot read {dir}: {e}"))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

/// The path relative to the root, as a string for the command line.
pub fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Splits a command-line fragment on whitespace, honouring single and double quotes.
pub fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => current.push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            None => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(current);
    }
    words
}

/// Reads a report.json.
pub fn read_report(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report.json written");
    serde_json::from_str(&text).expect("report.json is JSON")
}

/// The `# reference-report:` line of a scenario's header, if any.
fn reference_line(path: &Path) -> Option<String> {
    let source = std::fs::read_to_string(path).expect("scenario readable");
    source
        .lines()
        .take_while(|l| l.starts_with('#') || l.trim().is_empty())
        .find_map(|l| l.strip_prefix("# reference-report:"))
        .map(|s| s.trim().to_string())
}

/// Whether a scenario's reports are committed under `reports/` (its header has no
/// `# reference-report: none` line; very large scenarios opt out, their report.json runs to
/// megabytes), in full or in part ([`full_reference_report`]).
pub fn has_reference_report(path: &Path) -> bool {
    !reference_line(path).is_some_and(|l| l.starts_with("none"))
}

/// Whether every report file of a scenario is committed; `# reference-report: plots` commits
/// the plots, summary.md and junit.xml only (report.json and index.html of a 10,000-tenant run
/// are megabytes).
pub fn full_reference_report(path: &Path) -> bool {
    reference_line(path).is_none()
}

/// Whether a committed reference of a scenario with a partial one
/// ([`full_reference_report`]) holds `file` (relative to its run folder).
pub fn in_partial_reference(file: &Path) -> bool {
    file.starts_with("plots") || file == Path::new("summary.md") || file == Path::new("junit.xml")
}

/// Whether the slow variants run (`TENANTSIM_SLOW=1`).
pub fn slow() -> bool {
    std::env::var_os("TENANTSIM_SLOW").is_some_and(|v| v == "1")
}

/// Whether the default test run runs `path` only once, as written (the capstone, the scenarios
/// without a committed reference report: about 16 s of CPU a run); `TENANTSIM_SLOW=1` runs it
/// in every data-driven test (twice for determinism, its twin, another seed, the fast paths).
pub fn once_by_default(path: &Path) -> bool {
    !has_reference_report(path) && !slow()
}
