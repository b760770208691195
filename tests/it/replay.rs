//! Tenant tables and replayed request logs, end to end: a `[[tenants]]` entry's `table`, a
//! `[replay]` log, their errors (file, line, column, key), the digests report.json records and
//! `simulate replay`'s refusal when a file changed since.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value as Json;
use tenantsim::scenario::inputs::MemoryFiles;
use tenantsim::scenario::{self, LoadOptions, Scenario};

use crate::common::{code, read_report, simulate_in, text};

/// A scenario with one `count` group (`small`, 2 tenants), a table group `listed` from
/// `tenants.csv` and, when `replay` is set, that `[replay]` table.
fn scenario_text(replay: &str) -> String {
    format!(
        r#"name = "listed"
description = "a tenant table and a replayed log"

[simulation]
seed = 7
duration = "20s"
{replay}

[[tiers]]
name = "gold"
rate = 1000
burst = 1000

[[tiers]]
name = "free"
rate = 1000
burst = 1000

[[cells]]
name = "cell-a"
region = "eu-west"
eu = true
db = "db-a"
api = {{ workers = 8, queue = 64, service_time = {{ dist = "exponential", mean = "2ms" }} }}

[[cells]]
name = "cell-b"
region = "us-east"
db = "db-b"
api = {{ workers = 8, queue = 64, service_time = {{ dist = "exponential", mean = "2ms" }} }}

[[databases]]
name = "db-a"
connections = 8
query_time = {{ dist = "exponential", mean = "1ms" }}

[[databases]]
name = "db-b"
connections = 8
query_time = {{ dist = "exponential", mean = "1ms" }}

[[classes]]
name = "read"
pool = "api"

[[classes]]
name = "write"
pool = "api"

[[tenants]]
name = "small"
count = 2
tier = "free"
requests = {{ read = 0.5, write = 0.5 }}
arrival = {{ rate = 3 }}

[[tenants]]
name = "listed"
table = "tenants.csv"
arrival = {{ rate = 4 }}
timeout = "2s"
"#
    )
}

const TABLE: &str = "\
# customers exported from billing
name,tier,rate,cell,region,eu_only,mix
acme,gold,12.5,cell-a,,true,read:0.5;write:0.5
globex,free,,,us-east,false,
initech,gold,0.5,cell-b,,,write:1
";

fn options(files: MemoryFiles, overrides: &[&str]) -> LoadOptions {
    LoadOptions {
        path: "scenarios/listed.toml".into(),
        overrides: overrides.iter().map(|s| s.to_string()).collect(),
        files: Some(files.into_files()),
        ..LoadOptions::default()
    }
}

fn load(text: &str, files: MemoryFiles, overrides: &[&str]) -> Result<Scenario, String> {
    scenario::load(text, &options(files, overrides)).map_err(|e| e.to_string())
}

/// Name → (tier, cell, rate, eu_only, mix shares by class name).
fn tenants(s: &Scenario) -> BTreeMap<String, (String, String, f64, bool, String)> {
    s.system
        .tenants
        .iter()
        .map(|t| {
            let mix = format!("{:?}", t.mix);
            (
                t.name.clone(),
                (
                    s.system.tiers[t.tier].name.clone(),
                    s.system.cells[t.cell].name.clone(),
                    t.arrival.rate,
                    t.eu_only,
                    mix,
                ),
            )
        })
        .collect()
}

#[test]
fn a_table_becomes_one_tenant_per_row_with_its_columns() {
    let files = MemoryFiles::new().with("tenants.csv", TABLE);
    let s = load(&scenario_text(""), files, &[]).expect("loads");
    let got = tenants(&s);
    let names: Vec<&str> = got.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["acme", "globex", "initech", "small-001", "small-002"],
        "{got:?}"
    );
    let acme = &got["acme"];
    assert_eq!((acme.0.as_str(), acme.1.as_str()), ("gold", "cell-a"));
    assert_eq!(acme.2, 12.5);
    assert!(acme.3, "eu_only column");
    // A row without a rate takes the entry's arrival rate; placement honours its region.
    let globex = &got["globex"];
    assert_eq!((globex.0.as_str(), globex.1.as_str()), ("free", "cell-b"));
    assert_eq!(globex.2, 4.0);
    assert_eq!(got["initech"].2, 0.5);
    assert_ne!(got["acme"].4, got["initech"].4, "the mix column applies");
    // The entry's other keys apply to every row.
    let listed = s
        .system
        .groups
        .iter()
        .find(|g| g.name == "listed")
        .expect("group");
    assert_eq!(listed.tenants.len(), 3);
    for i in listed.tenants.clone() {
        assert_eq!(
            s.system.tenants[i].timeout.map(|t| t.as_nanos()),
            Some(2_000_000_000)
        );
    }
    // The table's digest is recorded.
    assert_eq!(s.inputs.len(), 1);
    assert_eq!(s.inputs[0].key, "tenants.listed.table");
    assert_eq!(s.inputs[0].bytes, TABLE.len() as u64);
    assert!(s.inputs[0].digest.starts_with("sha256:"));
}

#[test]
fn table_errors_name_the_file_line_column_and_key() {
    let cases: [(&str, &str, &[&str]); 6] = [
        (
            "name,tier\nacme,gold\nglobex,platinum\n",
            "tenants.csv:3",
            &["platinum", "tier"],
        ),
        (
            "name,tier,rate\nacme,gold,fast\n",
            "tenants.csv:2",
            &["rate"],
        ),
        (
            "name,tier,cell\nacme,gold,cell-z\n",
            "tenants.csv:2",
            &["cell-z"],
        ),
        (
            "name,tier,mix\nacme,gold,read:1;delete:1\n",
            "tenants.csv:2",
            &["delete"],
        ),
        (
            "name,tier\nacme,gold\nacme,free\n",
            "tenants.csv:3",
            &["acme"],
        ),
        (
            "name,tier,colour\nacme,gold,red\n",
            "tenants.csv:1",
            &["colour"],
        ),
    ];
    for (table, at, words) in cases {
        let files = MemoryFiles::new().with("tenants.csv", table);
        let error = load(&scenario_text(""), files, &[]).expect_err(table);
        assert!(error.contains(at), "expected {at} in:\n{error}");
        assert!(
            error.contains("tenants.listed.table"),
            "the key is named:\n{error}"
        );
        for word in words {
            assert!(error.contains(word), "expected {word:?} in:\n{error}");
        }
    }
    // A table group cannot also be a count group, nor be sized per tenant by the entry.
    let text = scenario_text("").replacen(
        "table = \"tenants.csv\"",
        "table = \"tenants.csv\"\ncount = 3",
        1,
    );
    let files = MemoryFiles::new().with("tenants.csv", TABLE);
    let error = load(&text, files, &[]).expect_err("count with a table");
    assert!(error.contains("tenants.listed.count"), "{error}");
    // Without file access, the error says how to get it.
    let error = scenario::load(&scenario_text(""), &LoadOptions::default())
        .expect_err("no file access")
        .to_string();
    assert!(error.contains("without file access"), "{error}");
}

#[test]
fn an_override_of_the_table_path_reads_the_other_file() {
    let files = MemoryFiles::new()
        .with("tenants.csv", TABLE)
        .with("other.csv", "name,tier\nsolo,gold\n");
    let s = load(
        &scenario_text(""),
        files.clone(),
        &["tenants.listed.table=other.csv"],
    )
    .expect("loads");
    assert!(tenants(&s).contains_key("solo"));
    assert!(!tenants(&s).contains_key("acme"));
    let error = load(
        &scenario_text(""),
        files,
        &["tenants.listed.table=missing.csv"],
    )
    .expect_err("missing file");
    assert!(
        error.contains("missing.csv") && error.contains("tenants.listed.table"),
        "{error}"
    );
}

/// A log of `n` records over tenants acme, globex, small-001 at 13 ms steps, every third
/// without a class.
fn log(n: usize) -> (String, Vec<(u64, String)>) {
    let mut text = String::from("timestamp,tenant,class\n");
    let mut records = Vec::new();
    for i in 0..n {
        let tenant = ["acme", "globex", "small-001"][i % 3];
        let ms = 13 * i as u64;
        let class = match i % 3 {
            0 => "read",
            1 => "",
            _ => "write",
        };
        text.push_str(&format!(
            "{}.{:03},{tenant},{class}\n",
            ms / 1000,
            ms % 1000
        ));
        records.push((ms * 1_000_000, tenant.to_string()));
    }
    (text, records)
}

/// A scratch folder holding the scenario (with `replay`), its table and its log.
fn folder(replay: &str, log_text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    // Replayed tenants only: without `arrival`, the groups send nothing of their own.
    let text = scenario_text(replay)
        .replace("arrival = { rate = 3 }\n", "")
        .replace("arrival = { rate = 4 }\n", "");
    std::fs::write(dir.path().join("listed.toml"), text).expect("scenario");
    let table = "name,tier,cell,mix\nacme,gold,cell-a,read:0.5;write:0.5\n\
                 globex,free,cell-b,read:0.5;write:0.5\n";
    std::fs::write(dir.path().join("tenants.csv"), table).expect("table");
    std::fs::write(dir.path().join("traffic.csv"), log_text).expect("log");
    dir
}

/// `(time, tenant)` of every `issued` step of a traced run of `listed.toml` in `dir`.
fn issued(dir: &Path, extra: &[&str]) -> Vec<(u64, String)> {
    let mut args = vec![
        "run",
        "listed.toml",
        "--quiet",
        "--out",
        "out",
        "--force",
        "--trace",
        "trace.jsonl",
    ];
    args.extend_from_slice(extra);
    let output = simulate_in(dir, &args);
    assert_eq!(code(&output), 0, "{}", text(&output));
    let trace = std::fs::read_to_string(dir.join("trace.jsonl")).expect("trace");
    trace
        .lines()
        .map(|l| serde_json::from_str::<Json>(l).expect("a JSON line"))
        .filter(|j| j["step"] == "issued")
        .map(|j| {
            (
                j["t_ns"].as_u64().expect("t_ns"),
                j["tenant"].as_str().expect("tenant").to_string(),
            )
        })
        .collect()
}

#[test]
fn a_replayed_run_issues_exactly_the_logged_arrivals_at_speed_up_1_and_10() {
    let (log_text, records) = log(600);
    for (speedup, offset_s) in [(1u64, 0u64), (10, 0), (10, 3)] {
        let replay = format!(
            "\n[replay]\nlog = \"traffic.csv\"\nspeedup = {speedup}\noffset = \"{offset_s}s\"\n"
        );
        let dir = folder(&replay, &log_text);
        let mut got = issued(dir.path(), &[]);
        got.sort();
        let mut want: Vec<(u64, String)> = records
            .iter()
            .map(|(t, tenant)| (offset_s * 1_000_000_000 + t / speedup, tenant.clone()))
            .filter(|(t, _)| *t < 20_000_000_000)
            .collect();
        want.sort();
        assert!(!want.is_empty());
        assert_eq!(
            got.len(),
            want.len(),
            "speed-up {speedup}, offset {offset_s}s"
        );
        assert_eq!(got, want, "speed-up {speedup}, offset {offset_s}s");
        // report.json records the log and the table with their digests.
        let report = read_report(&dir.path().join("out"));
        let keys: Vec<&str> = report["inputs"]
            .as_array()
            .expect("inputs")
            .iter()
            .map(|i| i["key"].as_str().expect("key"))
            .collect();
        assert_eq!(keys, ["tenants.listed.table", "replay.log"], "{report:?}");
    }
}

#[test]
fn a_replayed_run_is_deterministic_and_replay_refuses_a_changed_log() {
    let (log_text, _) = log(300);
    let dir = folder("\n[replay]\nlog = \"traffic.csv\"\n", &log_text);
    let output = simulate_in(
        dir.path(),
        &[
            "run",
            "listed.toml",
            "--quiet",
            "--check-determinism",
            "--out",
            "out",
        ],
    );
    assert_eq!(code(&output), 0, "{}", text(&output));
    // `replay` reruns the report and checks the result byte for byte.
    let output = simulate_in(dir.path(), &["replay", "out/report.json"]);
    assert_eq!(code(&output), 0, "{}", text(&output));
    // One record moved by a millisecond: same size, other digest.
    let changed = log_text.replacen("0.013,globex", "0.014,globex", 1);
    assert_eq!(changed.len(), log_text.len());
    std::fs::write(dir.path().join("traffic.csv"), changed).expect("rewrite");
    let output = simulate_in(dir.path(), &["replay", "out/report.json"]);
    assert_eq!(code(&output), 2, "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("traffic.csv") && stderr.contains("replay.log"),
        "{stderr}"
    );
}

#[test]
fn log_errors_name_the_line_and_unknown_tenants_need_unknown_tier() {
    let bad: [(&str, &[&str]); 8] = [
        (
            "timestamp,tenant\n0.1,acme\n0.2,stranger\n",
            &["traffic.csv:3", "stranger", "unknown_tier"],
        ),
        (
            "timestamp,tenant,class\n0.1,acme,read\n0.2,acme,delete\n",
            &["traffic.csv:3", "delete"],
        ),
        (
            "timestamp,tenant\n0.1,acme\nsoon,acme\n",
            &["traffic.csv:3"],
        ),
        ("time,who\n0.1,acme\n", &["traffic.csv:1", "timestamp"]),
        (
            "timestamp,tenant\n1.0000000001,acme\n",
            &["traffic.csv:2:1", "timestamp", "at most 9 decimals"],
        ),
        (
            "timestamp,tenant\n99999999999999999999,acme\n",
            &["traffic.csv:2:1", "above the largest log time"],
        ),
        // A log that replays nothing: refused, not run with every objective inconclusive.
        ("timestamp,tenant\n", &["traffic.csv:1", "has no records"]),
        ("", &["traffic.csv:1", "has no records"]),
    ];
    for (log_text, words) in bad {
        let dir = folder("\n[replay]\nlog = \"traffic.csv\"\n", log_text);
        let output = simulate_in(dir.path(), &["run", "listed.toml", "--quiet"]);
        assert_eq!(code(&output), 2, "{log_text}\n{}", text(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        for word in words {
            assert!(stderr.contains(word), "expected {word:?} in:\n{stderr}");
        }
    }
    // A table row in error is reported once, not again as an unknown tenant of the log.
    let dir = folder(
        "\n[replay]\nlog = \"traffic.csv\"\n",
        "timestamp,tenant\n0.1,acme\n",
    );
    std::fs::write(dir.path().join("tenants.csv"), "name,tier\nacme,platinum\n").expect("table");
    let output = simulate_in(dir.path(), &["run", "listed.toml", "--quiet"]);
    assert_eq!(code(&output), 2, "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("tenants.csv:2"), "{stderr}");
    assert!(!stderr.contains("not in the scenario"), "{stderr}");
    // With `unknown_tier`, unknown tenants join a group `replayed` and are served.
    let dir = folder(
        "\n[replay]\nlog = \"traffic.csv\"\nunknown_tier = \"free\"\n",
        "timestamp,tenant\n0.1,acme\n0.2,stranger\n0.3,stranger\n",
    );
    let got = issued(dir.path(), &[]);
    assert_eq!(
        got.iter().filter(|(_, t)| t == "stranger").count(),
        2,
        "{got:?}"
    );
    let report = read_report(&dir.path().join("out"));
    let stranger = report["tenants"]
        .as_array()
        .expect("tenants")
        .iter()
        .find(|t| t["name"] == "stranger")
        .expect("the unknown tenant is reported");
    assert_eq!(stranger["tier"], "free");
}

#[test]
fn a_log_in_json_lines_with_clock_times_replays_like_its_csv() {
    let csv = "timestamp,tenant,class\n2026-03-02T09:00:01Z,acme,read\n\
               2026-03-02T09:00:02.5Z,globex,\n";
    let jsonl = "{\"timestamp\": \"2026-03-02T09:00:01Z\", \"tenant\": \"acme\", \"class\": \"read\"}\n\
                 {\"timestamp\": \"2026-03-02T09:00:02.5Z\", \"tenant\": \"globex\"}\n";
    let start = "start = \"2026-03-02T09:00:00Z\"\n";
    let mut runs = Vec::new();
    for (name, body) in [("traffic.csv", csv), ("traffic.jsonl", jsonl)] {
        let dir = folder(&format!("\n[replay]\nlog = \"{name}\"\n"), "");
        std::fs::write(dir.path().join(name), body).expect("log");
        let path = dir.path().join("listed.toml");
        let text = std::fs::read_to_string(&path).expect("scenario").replacen(
            "[simulation]\n",
            &format!("[simulation]\n{start}"),
            1,
        );
        std::fs::write(&path, text).expect("scenario");
        runs.push(issued(dir.path(), &[]));
    }
    assert_eq!(
        runs[0],
        [
            (1_000_000_000, "acme".to_string()),
            (2_500_000_000, "globex".to_string())
        ]
    );
    assert_eq!(runs[0], runs[1]);
}

#[test]
fn a_shrunk_scenario_written_elsewhere_still_finds_its_table_and_log() {
    let (log_text, _) = log(300);
    let dir = folder("\n[replay]\nlog = \"traffic.csv\"\n", &log_text);
    let path = dir.path().join("listed.toml");
    let scenario = std::fs::read_to_string(&path).expect("scenario")
        + "\n[[slo]]\nname = \"impossible\"\ntenants = [\"listed\"]\nexpect = [\"p99 < 1us\"]\n\
           min_samples = 1\n";
    std::fs::write(&path, scenario).expect("scenario");
    let output = simulate_in(
        dir.path(),
        &[
            "shrink",
            "listed.toml",
            "--seed",
            "7",
            "--set",
            "tenants.listed.timeout=2s",
            "--out",
            "deep/er/min.toml",
        ],
    );
    assert_eq!(code(&output), 0, "{}", text(&output));
    let shrunk = std::fs::read_to_string(dir.path().join("deep/er/min.toml")).expect("written");
    assert!(shrunk.contains("\"../../traffic.csv\""), "{shrunk}");
    let output = simulate_in(dir.path(), &["run", "deep/er/min.toml", "--quiet"]);
    assert_eq!(
        code(&output),
        1,
        "it runs and still fails:\n{}",
        text(&output)
    );
}

#[cfg(unix)]
#[test]
fn a_log_or_table_that_is_a_device_or_a_fifo_is_refused_without_blocking() {
    for (name, make) in [
        ("traffic.csv", "device"),
        ("traffic.csv", "fifo"),
        ("tenants.csv", "device"),
        ("tenants.csv", "fifo"),
    ] {
        let dir = folder("\n[replay]\nlog = \"traffic.csv\"\n", "timestamp,tenant\n");
        let path = dir.path().join(name);
        std::fs::remove_file(&path).expect("remove");
        if make == "device" {
            std::os::unix::fs::symlink("/dev/zero", &path).expect("symlink");
        } else {
            crate::hostile_io::mkfifo(&path);
        }
        let output = simulate_in(dir.path(), &["run", "listed.toml", "--quiet"]);
        assert_eq!(code(&output), 2, "{name} as a {make}: {}", text(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("not a regular file"), "{stderr}");
    }
}

#[test]
fn a_row_rate_scales_an_mmpp_entry_to_that_mean_and_keeps_its_shape() {
    use tenantsim::model::config::ArrivalProcess;
    let text = scenario_text("").replacen(
        "arrival = { rate = 4 }",
        "arrival = { process = \"mmpp\", rates = [1, 9], sojourns = [\"30s\", \"10s\"] }",
        1,
    );
    let files =
        MemoryFiles::new().with("tenants.csv", "name,tier,rate\nbig,gold,30\nplain,gold,\n");
    let s = load(&text, files, &[]).expect("loads");
    let mmpp = |name: &str| {
        let t = s
            .system
            .tenants
            .iter()
            .find(|t| t.name == name)
            .expect(name);
        match t.arrival.process {
            ArrivalProcess::Mmpp(m) => (m.mean_rate(), m.rates(), t.arrival.rate),
            other => panic!("{name}: {other:?}"),
        }
    };
    // The entry's MMPP: (1·30 + 9·10) / 40 = 3 per second; `big` is ten times that.
    let (mean, rates, rate) = mmpp("plain");
    assert!((mean - 3.0).abs() < 1e-9 && rates == [1.0, 9.0] && (rate - 3.0).abs() < 1e-9);
    let (mean, rates, rate) = mmpp("big");
    assert!((mean - 30.0).abs() < 1e-9, "{mean}");
    assert!(
        (rates[0] - 10.0).abs() < 1e-9 && (rates[1] - 90.0).abs() < 1e-9,
        "{rates:?}"
    );
    assert_eq!(rate, 30.0);
}

/// A scratch folder with a replayed log and the report.json of a run of it in `out/`.
fn recorded_run() -> tempfile::TempDir {
    let (log_text, _) = log(300);
    let dir = folder("\n[replay]\nlog = \"traffic.csv\"\n", &log_text);
    let output = simulate_in(
        dir.path(),
        &["run", "listed.toml", "--quiet", "--out", "out"],
    );
    assert_eq!(code(&output), 0, "{}", text(&output));
    dir
}

#[test]
fn replay_places_errors_of_the_embedded_scenario_in_the_report() {
    let dir = recorded_run();
    let path = dir.path().join("out/report.json");
    let original: Json =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("report")).expect("json");
    let scenario = original["scenario_text"].as_str().expect("scenario_text");
    let edited = scenario.replacen("[simulation]\n", "[simulation]\nbogus = 1\n", 1);
    let line = edited[..edited.find("bogus").expect("inserted")]
        .lines()
        .count()
        + 1;
    let mut report = original.clone();
    report["scenario_text"] = Json::from(edited);
    std::fs::write(&path, serde_json::to_string_pretty(&report).expect("json")).expect("write");
    let output = simulate_in(dir.path(), &["replay", "out/report.json"]);
    assert_eq!(code(&output), 2, "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "error: out/report.json: embedded scenario, line {line}, column 1: `simulation.bogus`: unknown key"
        )),
        "{stderr}"
    );
    // Not the scenario file the report names: the user gave the report, and the file may
    // hold something else by now.
    assert!(!stderr.contains("listed.toml"), "{stderr}");
    // Invalid TOML, and a recorded override that no longer applies, are placed the same way.
    let mut report = original.clone();
    report["scenario_text"] = Json::from(scenario.replacen("[simulation]\n", "[simulation\n", 1));
    std::fs::write(&path, serde_json::to_string_pretty(&report).expect("json")).expect("write");
    let output = simulate_in(dir.path(), &["replay", "out/report.json"]);
    assert_eq!(code(&output), 2, "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("error: out/report.json: embedded scenario, line ")
            && stderr.contains("invalid TOML")
            && !stderr.contains("listed.toml"),
        "{stderr}"
    );
    let mut report = original;
    report["overrides"] = serde_json::json!(["tenants.nobody.timeout=2s"]);
    // With the command to match, as a run with that override would have written it.
    report["repro"] = Json::from("simulate listed.toml --seed 7 --set tenants.nobody.timeout=2s");
    std::fs::write(&path, serde_json::to_string_pretty(&report).expect("json")).expect("write");
    let output = simulate_in(dir.path(), &["replay", "out/report.json"]);
    assert_eq!(code(&output), 2, "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "error: out/report.json: recorded override `--set tenants.nobody.timeout=2s`"
        ),
        "{stderr}"
    );
}

/// A report whose `seed` or `verdict` was edited disagrees with other fields of the same
/// report (`repro` names the seed; the verdict follows from `slos` and `invariants`): bad
/// input, exit 2, before any run. An edit no other field contradicts (a count) can only show
/// as a rerun that differs: exit 3, whose message names the fields and both explanations.
#[test]
fn replay_refuses_an_edited_seed_or_verdict_and_names_the_fields_that_differ() {
    let dir = recorded_run();
    let path = dir.path().join("out/report.json");
    let original = std::fs::read_to_string(&path).expect("report");
    let replay = |edited: &str| {
        std::fs::write(&path, edited).expect("write");
        let output = simulate_in(dir.path(), &["replay", "out/report.json"]);
        (
            code(&output),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let line_of = |start: &str| {
        original
            .lines()
            .position(|l| l.starts_with(start))
            .expect(start)
            + 1
    };
    assert_eq!(replay(&original).0, 0, "the report as written replays");

    let seed = original.replacen("\n  \"seed\": 7,\n", "\n  \"seed\": 8,\n", 1);
    assert_ne!(seed, original);
    let (exit, stderr) = replay(&seed);
    assert_eq!(exit, 2, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "error: out/report.json:{}:3: `seed`: 8 does not match `repro`, which runs seed 7",
            line_of("  \"seed\": ")
        )),
        "{stderr}"
    );

    let verdict = original.replacen(
        "\n  \"verdict\": \"pass\",\n",
        "\n  \"verdict\": \"fail\",\n",
        1,
    );
    assert_ne!(verdict, original);
    let (exit, stderr) = replay(&verdict);
    assert_eq!(exit, 2, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "error: out/report.json:{}:3: `verdict`: \"fail\" does not match the results recorded in the same report, expected \"pass\"",
            line_of("  \"verdict\": ")
        )),
        "{stderr}"
    );

    // A failing run's report turned into a pass.
    let failing = tempfile::tempdir().expect("temp dir");
    let (log_text, _) = log(300);
    let dir2 = folder("\n[replay]\nlog = \"traffic.csv\"\n", &log_text);
    let scenario = std::fs::read_to_string(dir2.path().join("listed.toml")).expect("scenario")
        + "\n[[slo]]\nname = \"impossible\"\ntenants = [\"listed\"]\nexpect = [\"p99 < 1us\"]\n\
           min_samples = 1\n";
    std::fs::write(dir2.path().join("listed.toml"), scenario).expect("scenario");
    let out = failing.path().display().to_string();
    let output = simulate_in(
        dir2.path(),
        &["run", "listed.toml", "--quiet", "--out", &out],
    );
    assert_eq!(code(&output), 1, "{}", text(&output));
    let written = failing.path().join("report.json");
    let report = std::fs::read_to_string(&written).expect("report");
    let passing = report.replacen(
        "\n  \"verdict\": \"fail\",\n",
        "\n  \"verdict\": \"pass\",\n",
        1,
    );
    assert_ne!(passing, report);
    std::fs::write(&written, passing).expect("write");
    let output = simulate_in(dir2.path(), &["replay", &written.display().to_string()]);
    assert_eq!(code(&output), 2, "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("`verdict`: \"pass\" does not match the results recorded in the same report, expected \"fail\" (SLO `impossible` failed)"),
        "{stderr}"
    );

    // An edited count (the first `ok` of the file, the first tier's): nothing in the report
    // contradicts it.
    let report: Json = serde_json::from_str(&original).expect("json");
    let ok = report["tiers"][0]["ok"].as_u64().expect("ok");
    let from = format!("\"ok\": {ok},");
    let count = original.replacen(&from, &format!("\"ok\": {},", ok + 1), 1);
    assert_ne!(count, original);
    let (exit, stderr) = replay(&count);
    assert_eq!(exit, 3, "{stderr}");
    assert!(
        stderr.contains("fields that differ: tiers[0].ok"),
        "{stderr}"
    );
    assert!(
        stderr.contains("either the run is nondeterministic")
            && stderr.contains("or the report was edited"),
        "{stderr}"
    );
}
