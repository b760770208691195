//! The documentation tells the truth: every example of a command's output in the README and
//! `docs/` (a ```text block whose first line is `$ cargo run --release -- ARGS`) is what the
//! command prints today.
//!
//! A block may elide lines with a line of its own reading `...`; every other line must appear
//! in the output, in order, and lines not separated by `...` must be consecutive. Examples
//! without elisions are regenerated with `TENANTSIM_BLESS=1 cargo test --test it docs` (review
//! the diff); an elided one prints the command's whole output to copy from.

use std::path::{Path, PathBuf};

use crate::common::{root, shell_words, simulate_in, toml_files};

/// The command prefix that marks a checked example.
const PROMPT: &str = "$ cargo run --release -- ";
/// How the examples show the binary in repro lines.
const SHOWN_BINARY: &str = "target/release/simulate";

/// One example: where it is, its command, its expected lines.
struct Example {
    file: PathBuf,
    /// Line index (0-based) of the `$` line in the file.
    line: usize,
    args: Vec<String>,
    expected: Vec<String>,
}

fn examples(file: &Path) -> Vec<Example> {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i] == "```text"
            && let Some(command) = lines.get(i + 1).and_then(|l| l.strip_prefix(PROMPT))
        {
            let body: Vec<String> = lines[i + 2..]
                .iter()
                .take_while(|l| **l != "```")
                .map(|l| (*l).to_string())
                .collect();
            out.push(Example {
                file: file.to_path_buf(),
                line: i + 1,
                args: shell_words(command),
                expected: body.clone(),
            });
            i += 2 + body.len();
        }
        i += 1;
    }
    out
}

/// Whether `expected` (with `...` elisions) matches `actual`; `Err` names the first expected
/// line that could not be placed.
fn matches(expected: &[String], actual: &[String]) -> Result<(), String> {
    // Segments of consecutive lines, split at elisions; whether each may float (an elision
    // before it) is known from the split.
    let mut segments: Vec<(bool, Vec<&str>)> = vec![(false, Vec::new())];
    for line in expected {
        if line.trim() == "..." {
            segments.push((true, Vec::new()));
        } else if let Some(last) = segments.last_mut() {
            last.1.push(line.as_str());
        }
    }
    let ends_open = expected.last().is_some_and(|l| l.trim() == "...");
    let mut at = 0;
    let count = segments.len();
    for (n, (floats, lines)) in segments.into_iter().enumerate() {
        if lines.is_empty() {
            continue;
        }
        let fits = |start: usize| {
            start + lines.len() <= actual.len()
                && lines.iter().zip(&actual[start..]).all(|(e, a)| *e == a)
        };
        let last = n + 1 == count && !ends_open;
        let start = if floats {
            // The first place it fits (the last segment must end the output).
            (at..=actual.len().saturating_sub(lines.len()))
                .find(|&s| fits(s) && (!last || s + lines.len() == actual.len()))
        } else {
            Some(at).filter(|&s| fits(s) && (!last || s + lines.len() == actual.len()))
        };
        match start {
            Some(s) => at = s + lines.len(),
            None => {
                // Name the first line of the segment that is not where it should be.
                let first_bad = lines
                    .iter()
                    .find(|l| !actual[at.min(actual.len())..].iter().any(|a| a == *l))
                    .unwrap_or(&lines[0]);
                return Err(format!("expected line not found in order: {first_bad:?}"));
            }
        }
    }
    Ok(())
}

/// Runs `args` the way the docs show it: from a folder holding a copy of `scenarios/`, so the
/// files it writes land under a scratch `reports/` with the paths the examples print.
fn run(args: &[String]) -> Vec<String> {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("scenarios")).expect("mkdir");
    for file in toml_files("scenarios") {
        let name = file.file_name().expect("file name");
        std::fs::copy(&file, dir.path().join("scenarios").join(name)).expect("copy scenario");
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = simulate_in(dir.path(), &args);
    let binary = env!("CARGO_BIN_EXE_simulate");
    String::from_utf8_lossy(&output.stdout)
        .replace(binary, SHOWN_BINARY)
        .lines()
        .map(|l| l.trim_end().to_string())
        .collect()
}

fn doc_files() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

#[test]
fn output_examples_in_the_docs_are_current() {
    let bless = std::env::var_os("TENANTSIM_BLESS").is_some();
    let all: Vec<Example> = doc_files().iter().flat_map(|f| examples(f)).collect();
    assert!(
        all.len() >= 3,
        "the README's run and twin and the compare example are checked ({} found)",
        all.len()
    );
    let mut problems = Vec::new();
    for example in &all {
        let actual = run(&example.args);
        let expected: Vec<String> = example
            .expected
            .iter()
            .map(|l| l.trim_end().to_string())
            .collect();
        let Err(why) = matches(&expected, &actual) else {
            continue;
        };
        let elided = expected.iter().any(|l| l.trim() == "...");
        if bless && !elided {
            let text = std::fs::read_to_string(&example.file).expect("doc");
            let mut lines: Vec<&str> = text.lines().collect();
            let from = example.line + 1;
            let to = from + example.expected.len();
            let fresh: Vec<&str> = actual.iter().map(String::as_str).collect();
            lines.splice(from..to, fresh);
            let mut new = lines.join("\n");
            new.push('\n');
            std::fs::write(&example.file, new).expect("write doc");
            continue;
        }
        problems.push(format!(
            "{}:{}: `{}{}`: {why}\n{}\n--- the command prints:\n{}",
            example
                .file
                .strip_prefix(root())
                .unwrap_or(&example.file)
                .display(),
            example.line + 1,
            PROMPT,
            example.args.join(" "),
            if elided {
                "(an example with `...` elisions: update it by hand from the output below)"
            } else {
                "(regenerate with TENANTSIM_BLESS=1 cargo test --test it docs, then review the diff)"
            },
            actual.join("\n")
        ));
    }
    assert!(
        problems.is_empty(),
        "stale output examples in the docs:\n\n{}",
        problems.join("\n\n")
    );
}

#[test]
fn the_example_matcher_places_lines_in_order() {
    let v = |s: &[&str]| s.iter().map(|x| (*x).to_string()).collect::<Vec<_>>();
    let out = v(&["a", "b", "c", "d"]);
    assert!(matches(&v(&["a", "b", "c", "d"]), &out).is_ok());
    assert!(matches(&v(&["a", "...", "d"]), &out).is_ok());
    assert!(matches(&v(&["...", "c", "..."]), &out).is_ok());
    assert!(
        matches(&v(&["a", "c", "...", "d"]), &out).is_err(),
        "a, c not consecutive"
    );
    assert!(
        matches(&v(&["a", "...", "c"]), &out).is_err(),
        "c does not end it"
    );
    assert!(
        matches(&v(&["...", "d", "...", "a"]), &out).is_err(),
        "out of order"
    );
    assert!(
        matches(&v(&["a", "...", "x", "..."]), &out).is_err(),
        "a line not printed"
    );
}
