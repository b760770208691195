//! Performance work must not change results: every fast path gives the same run, event for
//! event, as the general code it short-cuts, on every scenario and its twin.

use std::path::Path;

use tenantsim::model::RunOptions;
use tenantsim::pipeline::{self, Executed};
use tenantsim::report;
use tenantsim::scenario::LoadOptions;

use crate::common::{relative, toml_files};
use crate::scenarios::twin_args;

fn execute(path: &Path, overrides: &[String], general_paths: bool) -> Executed {
    let text = std::fs::read_to_string(path).expect("scenario readable");
    let options = LoadOptions {
        path: relative(path),
        overrides: overrides.to_vec(),
        ..LoadOptions::default()
    };
    let run = RunOptions {
        digest: true,
        general_paths,
        ..RunOptions::default()
    };
    pipeline::execute_with(&text, &options, run)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `--set` pairs from the twin line, as loader overrides.
fn overrides_of(args: &[String]) -> Vec<String> {
    args.chunks(2)
        .filter(|pair| pair[0] == "--set")
        .map(|pair| pair[1].clone())
        .collect()
}

#[test]
fn fast_paths_change_no_run() {
    let mut compared = 0;
    for path in toml_files("scenarios") {
        for overrides in [Vec::new(), overrides_of(&twin_args(&path))] {
            let fast = execute(&path, &overrides, false);
            let general = execute(&path, &overrides, true);
            assert_eq!(
                fast.output.digest,
                general.output.digest,
                "{} {overrides:?}: the fast paths changed the event sequence",
                path.display()
            );
            assert_eq!(
                report::to_json(&fast.report),
                report::to_json(&general.report),
                "{} {overrides:?}: the fast paths changed the report",
                path.display()
            );
            compared += 1;
        }
    }
    assert!(compared >= 2, "no scenario was compared");
}
