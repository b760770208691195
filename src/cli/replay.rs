//! `simulate replay`: rerun exactly what produced a report.json (its embedded scenario text,
//! overrides and seed) and check that the new report is byte-identical. A report whose own
//! fields contradict each other (`seed` and `repro`, `verdict` and the results) was edited:
//! exit 2 before any run. Any other difference is exit 3, which cannot tell nondeterminism
//! from an edit the report has no checksum to reveal, and says so.

use std::path::PathBuf;

use clap::Args;

use super::{Allow, EXIT_INVALID, EXIT_NONDETERMINISM, Plan, check_work, exit_code};
use crate::pipeline;
use crate::report::{self, Invocation, Report, VERSION};
use crate::scenario::{self, LoadOptions};
use crate::text::printable;

/// Options of `simulate replay`.
#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// A report.json written by `simulate run`.
    #[arg(value_name = "report.json")]
    report: PathBuf,
    #[command(flatten)]
    allow: Allow,
}

pub(super) fn replay_command(args: &ReplayArgs) -> u8 {
    // A report is input like any scenario file: a regular file, of bounded size, whose
    // strings are printed escaped (a tampered report.json must not drive the terminal).
    let limit = scenario::limits::MAX_REPORT_BYTES;
    let original = match super::input::read_capped(&args.report, &limit).and_then(|bytes| {
        String::from_utf8(bytes)
            .map_err(|_| format!("error: {} is not UTF-8 text", args.report.display()))
    }) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{}", printable(&e));
            return EXIT_INVALID;
        }
    };
    let report: Report = match serde_json::from_str(&original) {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "{}",
                printable(&format!(
                    "error: {} is not a report.json: {e}",
                    args.report.display()
                ))
            );
            return EXIT_INVALID;
        }
    };
    let same_version = report.version == VERSION;
    if !same_version {
        eprintln!(
            "warning: the report was made by tenantsim {}, this is {VERSION}; a different \
             version may legitimately give a different result",
            printable(&report.version)
        );
    } else if let Some(problem) = edited(&original, &report, &args.report.display().to_string()) {
        // Checked before the run: an edited report is bad input (exit 2), and a rerun could
        // only report it as a difference (exit 3), after spending the run's time.
        eprintln!("{}", printable(&problem));
        return EXIT_INVALID;
    }
    let options = LoadOptions {
        path: report.scenario_file.clone(),
        overrides: report.overrides.clone(),
        seed: Some(report.seed),
        files: super::input::beside(&report.scenario_file),
    };
    // The report is input like any scenario file: check its work before running it.
    let text_bytes = report.scenario_text.len();
    let checked = scenario::load(&report.scenario_text, &options)
        .map_err(|e| embedded(e, &report.scenario_file, &args.report))
        .and_then(|s| check_work(&s, text_bytes, Plan::ONE, args.allow, false).map(|()| s));
    let scenario = match checked {
        Ok(scenario) => scenario,
        Err(e) => {
            eprintln!("{}", printable_lines(&e));
            return EXIT_INVALID;
        }
    };
    if let Some(problem) = changed_inputs(&report.inputs, &scenario.inputs) {
        eprintln!("{}", printable(&problem));
        return EXIT_INVALID;
    }
    let executed = match pipeline::execute(&report.scenario_text, &options) {
        Ok(e) => e,
        Err(pipeline::PipelineError::Invalid(e)) => {
            eprintln!(
                "{}",
                printable_lines(&embedded(e, &report.scenario_file, &args.report))
            );
            return EXIT_INVALID;
        }
        Err(e) => {
            eprintln!("{}", printable_lines(&e.to_string()));
            return EXIT_INVALID;
        }
    };
    let replayed = report::to_json(&executed.report);
    if replayed == original {
        println!(
            "replay: {} seed {}: identical report ({} bytes); verdict {}",
            printable(&report.scenario),
            report.seed,
            replayed.len(),
            executed.report.verdict.to_uppercase()
        );
        return exit_code(executed.evaluation.verdict);
    }
    let (line, old, new) = original
        .lines()
        .zip(replayed.lines())
        .enumerate()
        .find(|(_, (a, b))| a != b)
        .map(|(i, (a, b))| (i + 1, a.to_string(), b.to_string()))
        .unwrap_or((
            original.lines().count().min(replayed.lines().count()) + 1,
            String::new(),
            String::new(),
        ));
    let fields = match differing_fields(&original, &replayed) {
        Some((names, _)) if names.is_empty() => "  no field differs in value: the text \
             differs in layout, key order or how a number is written"
            .to_string(),
        Some((names, count)) => format!(
            "  fields that differ: {}{}",
            names.join(", "),
            match count - names.len() {
                0 => String::new(),
                more => format!(", and {more} more"),
            }
        ),
        None => format!(
            "  fields not compared one by one: the report is over {} MiB",
            FIELD_DIFF_MAX_BYTES >> 20
        ),
    };
    eprintln!(
        "replay: {} seed {}: the report differs from line {line}\n  recorded: {}\n  replayed: {}\n{}",
        printable(&report.scenario),
        report.seed,
        printable(old.trim()),
        printable(new.trim()),
        printable(&fields)
    );
    // A run writes its seed into `seed` and `repro`, and the verdict of the results it records
    // (checked above): an edit of those alone is exit 2. Any other field carries no digest of
    // its own, so a changed number there cannot be told from a rerun that came out otherwise.
    eprintln!(
        "either the run is nondeterministic (a bug in tenantsim: please report it with this \
         report.json) or the report was edited after it was written{}",
        if same_version {
            "; its `seed`, `repro` and `verdict` agree with each other and with its results, but \
             its other fields carry no checksum that could tell the two apart"
                .to_string()
        } else {
            format!(
                ", or tenantsim {} computes otherwise",
                printable(&report.version)
            )
        }
    );
    EXIT_NONDETERMINISM
}

/// Why `report` cannot be what a run of this version wrote, from fields of the same report
/// that a run writes in agreement: `seed` is the seed in `repro` (which also spells out
/// `scenario_file` and `overrides`), and `verdict` follows from the `slos` and `invariants`
/// recorded beside it. A report that fails this was edited; one that passes may still have
/// been (any other number), which only the rerun can show (exit 3).
fn edited(original: &str, report: &Report, file: &str) -> Option<String> {
    let invocation = Invocation {
        scenario_file: report.scenario_file.clone(),
        scenario_text: String::new(),
        overrides: report.overrides.clone(),
    };
    if report.repro != invocation.repro(report.seed) {
        // The seed `repro` names, when with it the command is exactly the one a run writes
        // for this report's other fields (so only the seed was edited).
        let named = report
            .repro
            .split(' ')
            .skip_while(|word| *word != "--seed")
            .nth(1)
            .and_then(|seed| seed.parse::<u64>().ok())
            .filter(|&seed| invocation.repro(seed) == report.repro);
        return Some(match named {
            Some(seed) => format!(
                "error: {}: `seed`: {} does not match `repro`, which runs seed {seed} ({:?}); a \
                 run writes the same seed in both, so the report was edited: restore it, or run \
                 the scenario with the seed you want",
                field_location(original, file, "seed"),
                report.seed,
                report.repro
            ),
            None => format!(
                "error: {}: `repro`: {:?} is not the command a run writes for this report's \
                 `scenario_file`, `seed` and `overrides`, expected {:?}; the report was edited: \
                 restore it",
                field_location(original, file, "repro"),
                report.repro,
                invocation.repro(report.seed)
            ),
        });
    }
    let (verdict, why) = verdict_of(report);
    if report.verdict != verdict {
        return Some(format!(
            "error: {}: `verdict`: {:?} does not match the results recorded in the same report, \
             expected {verdict:?} ({why}); a run writes the verdict of its results, so the \
             report was edited: restore it",
            field_location(original, file, "verdict"),
            report.verdict
        ));
    }
    None
}

/// The verdict the report's own `slos` and `invariants` make, by the rule of `slo::evaluate`
/// (a failed invariant or SLO fails the run, else an inconclusive SLO makes it inconclusive),
/// and what decided it.
fn verdict_of(report: &Report) -> (&'static str, String) {
    if let Some(i) = report.invariants.iter().find(|i| !i.passed) {
        return ("fail", format!("invariant `{}` failed", i.name));
    }
    for (status, what) in [("fail", "failed"), ("inconclusive", "was inconclusive")] {
        if let Some(slo) = report.slos.iter().find(|s| s.status == status) {
            return (status, format!("SLO `{}` {what}", slo.name));
        }
    }
    ("pass", "every SLO and invariant held".to_string())
}

/// `file:line:col` of a top-level key of a report as a run writes it (two spaces in), or
/// just `file` when the key is not found so (a report laid out otherwise).
fn field_location(original: &str, file: &str, key: &str) -> String {
    let start = format!("  \"{key}\": ");
    original
        .lines()
        .position(|l| l.starts_with(&start))
        .map_or_else(|| file.to_string(), |i| format!("{file}:{}:3", i + 1))
}

/// Reports larger than this are not compared field by field when they differ: two JSON trees
/// take several times the text's memory, and the run's memory estimate counts the text only.
const FIELD_DIFF_MAX_BYTES: usize = 64 << 20;

/// How many differing fields the message names.
const FIELDS_NAMED: usize = 10;

/// The paths of the fields whose values differ (`tenants[3].ok`; the first
/// [`FIELDS_NAMED`]) and how many differ in all; `None` for a report too large to compare so.
fn differing_fields(recorded: &str, replayed: &str) -> Option<(Vec<String>, usize)> {
    if recorded.len().max(replayed.len()) > FIELD_DIFF_MAX_BYTES {
        return None;
    }
    let recorded: serde_json::Value = serde_json::from_str(recorded).ok()?;
    let replayed: serde_json::Value = serde_json::from_str(replayed).ok()?;
    let mut found = Differences::default();
    found.compare(String::new(), &recorded, &replayed);
    Some((found.names, found.count))
}

/// The fields found to differ: the first [`FIELDS_NAMED`] by path, and how many in all.
#[derive(Default)]
struct Differences {
    names: Vec<String>,
    count: usize,
}

impl Differences {
    fn note(&mut self, name: String) {
        self.count += 1;
        if self.names.len() < FIELDS_NAMED {
            self.names.push(name);
        }
    }

    fn compare(&mut self, path: String, a: &serde_json::Value, b: &serde_json::Value) {
        use serde_json::Value;
        let member = |key: &str| {
            if path.is_empty() {
                key.to_string()
            } else {
                format!("{path}.{key}")
            }
        };
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                for (key, va) in x {
                    match y.get(key) {
                        Some(vb) => self.compare(member(key), va, vb),
                        None => self.note(format!("{} (recorded only)", member(key))),
                    }
                }
                for key in y.keys().filter(|k| !x.contains_key(*k)) {
                    self.note(format!("{} (replayed only)", member(key)));
                }
            }
            (Value::Array(x), Value::Array(y)) => {
                for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                    self.compare(format!("{path}[{i}]"), va, vb);
                }
                if x.len() != y.len() {
                    self.note(format!(
                        "{path} ({} entries recorded, {} replayed)",
                        x.len(),
                        y.len()
                    ));
                }
            }
            _ if a != b => self.note(path),
            _ => {}
        }
    }
}

/// Why the files a report's run read differ from what the scenario reads now (a tenant
/// table or a replayed log changed, went or appeared), if they do.
fn changed_inputs(
    recorded: &[scenario::inputs::InputFile],
    now: &[scenario::inputs::InputFile],
) -> Option<String> {
    for was in recorded {
        match now.iter().find(|f| f.key == was.key) {
            Some(is) if is.digest != was.digest || is.path != was.path => {
                return Some(format!(
                    "error: {} (`{}`) changed since the report was written: {} ({} bytes) then, {} ({} bytes) now; restore the file to replay this report, or run the scenario again",
                    is.path, was.key, was.digest, was.bytes, is.digest, is.bytes
                ));
            }
            Some(_) => {}
            None => {
                return Some(format!(
                    "error: the report's run read {} (`{}`), which the scenario no longer names",
                    was.path, was.key
                ));
            }
        }
    }
    now.iter()
        .find(|is| !recorded.iter().any(|was| was.key == is.key))
        .map(|is| {
            format!(
                "error: the scenario now reads {} (`{}`), which the report's run did not",
                is.path, is.key
            )
        })
}

/// The loader's errors about a report's embedded scenario, placed in the report: the text
/// came from its `scenario_text`, not from `scenario_file` (which the user did not name and
/// which may differ or be gone), so `scenarios/x.toml:3:5` becomes `report.json: embedded
/// scenario, line 3, column 5` and `--set X` a recorded override. Errors in the files the
/// scenario reads (a tenant table, a log) keep their own file:line, which is real.
fn embedded(
    mut error: scenario::ScenarioError,
    scenario_file: &str,
    report: &std::path::Path,
) -> String {
    // The loader escapes the locations it writes; match the file name the same way.
    let prefix = format!("{}:", printable(scenario_file));
    let report = report.display().to_string();
    for d in &mut error.diagnostics {
        let position = d.location.strip_prefix(&prefix).and_then(|rest| {
            let (line, column) = rest.split_once(':')?;
            let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            (number(line) && number(column)).then(|| (line.to_string(), column.to_string()))
        });
        if let Some((line, column)) = position {
            d.location = format!("{report}: embedded scenario, line {line}, column {column}");
        } else if let Some(set) = d.location.strip_prefix("--set ") {
            d.location = format!("{report}: recorded override `--set {set}`");
        }
    }
    error.to_string()
}

/// Each line of `text` made printable, the line breaks kept (the loader's messages span lines
/// and escape what they quote already; the file name they start with comes from the report).
fn printable_lines(text: &str) -> String {
    text.lines().map(printable).collect::<Vec<_>>().join("\n")
}
