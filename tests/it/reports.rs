//! The report files: the committed reference reports in `reports/` are exactly what the
//! current code writes; every run leaves a well-formed summary.md, junit.xml, index.html and
//! plots with the fault windows on them; `simulate compare` reports the SLO that flips.

use std::path::{Path, PathBuf};

use crate::common::{
    code, full_reference_report, has_reference_report, in_partial_reference, read_report, root,
    simulate, simulate_in, text, toml_files,
};

const REGENERATE: &str = "cargo run --release -- check scenarios/ --write-reports";

/// Every file under `dir`, relative to it, sorted.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                out.push(path.strip_prefix(base).expect("under base").to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A minimal XML well-formedness check: one root element, balanced and properly nested tags,
/// quoted attributes, no raw `<` in attribute values, `&` only as an entity.
fn check_xml(text: &str) -> Result<usize, String> {
    let entity_ok = |s: &str| -> bool {
        let mut rest = s;
        while let Some(i) = rest.find('&') {
            let after = &rest[i + 1..];
            let Some(end) = after.find(';') else {
                return false;
            };
            let name = &after[..end];
            let known = ["amp", "lt", "gt", "quot", "apos"].contains(&name)
                || (name.starts_with('#') && name[1..].chars().all(|c| c.is_ascii_digit()));
            if !known {
                return false;
            }
            rest = &after[end + 1..];
        }
        true
    };
    let mut rest = text.trim_start();
    if let Some(r) = rest.strip_prefix("<?xml") {
        let end = r.find("?>").ok_or("unterminated XML declaration")?;
        rest = &r[end + 2..];
    }
    let mut stack: Vec<String> = Vec::new();
    let mut roots = 0;
    let mut elements = 0;
    while !rest.is_empty() {
        let Some(open) = rest.find('<') else {
            if !entity_ok(rest) {
                return Err(format!(
                    "bad entity in text {:?}",
                    &rest[..rest.len().min(60)]
                ));
            }
            if !stack.is_empty() || !rest.trim().is_empty() {
                return Err(format!(
                    "text after the root or unclosed <{}>",
                    stack.join("><")
                ));
            }
            break;
        };
        let content = &rest[..open];
        if !entity_ok(content) {
            return Err(format!(
                "bad entity in text {:?}",
                &content[..content.len().min(60)]
            ));
        }
        if stack.is_empty() && !content.trim().is_empty() {
            return Err(format!("text outside the root: {:?}", content.trim()));
        }
        rest = &rest[open..];
        let close = rest.find('>').ok_or("unterminated tag")?;
        let tag = &rest[1..close];
        rest = &rest[close + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let expected = stack
                .pop()
                .ok_or(format!("</{name}> without an open tag"))?;
            if expected != name.trim() {
                return Err(format!("</{name}> closes <{expected}>"));
            }
            continue;
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let name_end = tag.find(char::is_whitespace).unwrap_or(tag.len());
        let name = &tag[..name_end];
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_alphanumeric() || "-_:.".contains(c))
        {
            return Err(format!("bad tag name {name:?}"));
        }
        // Attributes: name="value" pairs.
        let mut attrs = tag[name_end..].trim();
        while !attrs.is_empty() {
            let eq = attrs
                .find('=')
                .ok_or(format!("attribute without value in <{name}>"))?;
            let quoted = attrs[eq + 1..].trim_start();
            let q = quoted.chars().next().ok_or("missing attribute value")?;
            if q != '"' && q != '\'' {
                return Err(format!("unquoted attribute in <{name}>"));
            }
            let end = quoted[1..].find(q).ok_or("unterminated attribute value")?;
            let value = &quoted[1..1 + end];
            if value.contains('<') || !entity_ok(value) {
                return Err(format!("unescaped attribute value {value:?} in <{name}>"));
            }
            attrs = quoted[end + 2..].trim_start();
        }
        if stack.is_empty() {
            roots += 1;
        }
        elements += 1;
        if !self_closing {
            stack.push(name.to_string());
        }
    }
    if !stack.is_empty() {
        return Err(format!("unclosed <{}>", stack.join("> <")));
    }
    if roots != 1 {
        return Err(format!("{roots} root elements"));
    }
    Ok(elements)
}

#[test]
fn the_xml_checker_rejects_broken_documents() {
    assert!(check_xml("<a><b x=\"1\"/>t &amp; u</a>").is_ok());
    assert!(check_xml("<a><b></a>").is_err());
    assert!(check_xml("<a>x & y</a>").is_err());
    assert!(check_xml("<a x=\"<\"/>").is_err());
    assert!(check_xml("<a/><b/>").is_err());
    assert!(check_xml("<a x=1/>").is_err());
}

#[test]
fn reference_reports_are_up_to_date() {
    // Regenerate exactly as documented, in a scratch copy of the repository's scenarios, and
    // compare every file byte for byte with the committed reports.
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("scenarios")).expect("mkdir");
    for file in toml_files("scenarios")
        .into_iter()
        .filter(|f| has_reference_report(f))
    {
        let name = file.file_name().expect("file name");
        std::fs::copy(&file, dir.path().join("scenarios").join(name)).expect("copy scenario");
    }
    // The files scenarios name beside themselves (tenant tables, replayed logs).
    for entry in std::fs::read_dir(root().join("scenarios")).expect("scenarios") {
        let path = entry.expect("entry").path();
        if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("csv" | "jsonl" | "ndjson")
        ) {
            let name = path.file_name().expect("file name");
            std::fs::copy(&path, dir.path().join("scenarios").join(name)).expect("copy input");
        }
    }
    let output = simulate_in(dir.path(), &["check", "scenarios/", "--write-reports"]);
    assert!(
        matches!(code(&output), 0 | 1 | 4),
        "check --write-reports\n{}",
        text(&output)
    );
    let fresh_root = dir.path().join("reports");
    // A scenario with a partial reference (`# reference-report: plots`): its other files are
    // not compared (nor committed).
    let partial: Vec<String> = toml_files("scenarios")
        .into_iter()
        .filter(|f| has_reference_report(f) && !full_reference_report(f))
        .map(|f| scenario_name(&f))
        .collect();
    let fresh: Vec<PathBuf> = files_under(&fresh_root)
        .into_iter()
        .filter(|f| {
            let mut parts = f.components();
            let scenario = parts
                .next()
                .map(|c| c.as_os_str().to_string_lossy().into_owned());
            let _seed = parts.next();
            !scenario.is_some_and(|s| partial.contains(&s)) || in_partial_reference(parts.as_path())
        })
        .collect();
    assert!(!fresh.is_empty(), "nothing regenerated\n{}", text(&output));
    let mut problems = Vec::new();
    let mut folders: Vec<PathBuf> = Vec::new();
    for file in &fresh {
        let committed = root().join("reports").join(file);
        let new = std::fs::read(fresh_root.join(file)).expect("fresh file");
        match std::fs::read(&committed) {
            Ok(old) if old == new => {}
            Ok(_) => problems.push(format!("reports/{} is out of date", file.display())),
            Err(_) => problems.push(format!("reports/{} is missing", file.display())),
        }
        let folder = file.parent().map(Path::to_path_buf).unwrap_or_default();
        // The run folder is reports/<scenario>/seed-<N>/.
        let run_folder: PathBuf = folder.components().take(2).collect();
        if !folders.contains(&run_folder) {
            folders.push(run_folder);
        }
    }
    for folder in &folders {
        let scenario = folder
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy());
        let is_partial = scenario.is_some_and(|s| partial.iter().any(|p| *p == s));
        for file in files_under(&root().join("reports").join(folder)) {
            let relative = folder.join(&file);
            if is_partial && !in_partial_reference(&file) {
                // Written by --write-reports, ignored by git (.gitignore), not compared.
                continue;
            }
            if !fresh.contains(&relative) {
                problems.push(format!(
                    "reports/{} is no longer written (delete it)",
                    relative.display()
                ));
            }
        }
    }
    // Every scenario has its reference folder (unless it opts out).
    for file in toml_files("scenarios")
        .into_iter()
        .filter(|f| has_reference_report(f))
    {
        let name = scenario_name(&file);
        assert!(
            folders.iter().any(|f| f.starts_with(&name)),
            "no reference reports for {}",
            file.display()
        );
    }
    assert!(
        problems.is_empty(),
        "the reference reports differ from what the code writes:\n  {}\nregenerate them from \
         the repository root with:\n  {REGENERATE}\n(runs are deterministic: review the diff, \
         then commit it)",
        problems.join("\n  ")
    );
}

/// The `name = "..."` of a scenario file.
fn scenario_name(file: &Path) -> String {
    let text = std::fs::read_to_string(file).expect("scenario");
    text.lines()
        .find_map(|l| l.strip_prefix("name = "))
        .map(|n| n.trim().trim_matches('"').to_string())
        .expect("scenario name")
}

fn twin_run() -> (tempfile::TempDir, serde_json::Value) {
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
    for file in ["report.json", "summary.md", "junit.xml", "index.html"] {
        assert!(
            stdout.contains(&format!("wrote {}", dir.path().join(file).display())),
            "the terminal lists {file}:\n{stdout}"
        );
    }
    let report = read_report(dir.path());
    (dir, report)
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn a_run_leaves_summary_junit_html_and_plots() {
    let (dir, report) = twin_run();
    let dir = dir.path();

    let summary = read(dir, "summary.md");
    assert!(
        summary.starts_with("# hot-tenant: ❌ **FAIL**"),
        "{summary}"
    );
    assert!(
        summary.contains(
            "|  | SLO | tenants | window | expected | checks | worst observed |\n\
             |---|---|---|---|---|---:|---:|\n\
             | ❌ **FAIL** | bystanders keep their latency and errors during the spike | \
             bystanders (each) | `during:spike` | `p99 < 250ms` | 0 pass, 50 fail, 0 inconclusive |"
        ),
        "summary.md has the SLO table with observed vs expected:\n{summary}"
    );
    for section in [
        "## Blast radius",
        "## Tiers",
        "## Worst tenants",
        "## Faults",
    ] {
        assert!(summary.contains(section), "{section}:\n{summary}");
    }
    assert!(
        summary
            .contains("50 of 50 tenants judged by an SLO failed a check: 50 explained by a fault")
            && summary.contains("| `spike` | load_spike | 30s–90s |"),
        "{summary}"
    );
    assert!(
        summary.contains(&format!(
            "```sh\n{}\n```",
            report["repro"].as_str().expect("repro")
        )),
        "{summary}"
    );

    // An invariant the run never exercised (no EU-only tenant) is N/A everywhere, not held.
    let invariant = |name: &str| {
        report["invariants"]
            .as_array()
            .expect("invariants")
            .iter()
            .find(|i| i["name"] == name)
            .cloned()
            .expect("invariant")
    };
    assert_eq!(invariant("eu_residency")["status"], "n/a");
    assert_eq!(invariant("conservation")["status"], "pass");
    assert!(
        summary.contains("| ➖ N/A | eu_residency |")
            && summary.contains("invariants: 2 held, 0 violated, 4 N/A"),
        "{summary}"
    );

    let junit = read(dir, "junit.xml");
    check_xml(&junit).unwrap_or_else(|e| panic!("junit.xml is not well-formed: {e}\n{junit}"));
    let cases = junit.matches("<testcase ").count();
    let failures = junit.matches("<failure ").count();
    let invariants = report["invariants"].as_array().map_or(0, Vec::len);
    assert_eq!(
        cases,
        50 + invariants,
        "one case per judged bystander and one per invariant"
    );
    assert_eq!(failures, 50, "every bystander fails in the twin");
    assert!(
        junit.contains(&format!(
            "<testsuites name=\"tenantsim hot-tenant seed 42 (fail)\" tests=\"{}\" failures=\"50\"",
            50 + invariants
        )),
        "{junit}"
    );
    assert!(
        junit.contains(
            "name=\"light-001\">\n      <failure message=\"expected p99 &lt; 250ms, observed "
        ),
        "failures carry observed vs expected:\n{junit}"
    );

    let html = read(dir, "index.html");
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert_eq!(html.matches("<svg").count(), 4, "four plots inline");
    for banned in ["http://", "https://", "<link", "src=", "url("] {
        assert!(
            !html.contains(banned),
            "index.html must be self-contained; found {banned}"
        );
    }
    // Scripts: the tenant explorer's data and code, inline, nothing else.
    assert_eq!(
        html.matches("<script").count(),
        2,
        "the explorer's two inline scripts only"
    );
    assert!(html.contains("<script type=\"application/json\" id=\"tenant-data\">"));
    assert!(
        html.contains("<h2 id=\"slos\">SLOs</h2>\n<div class=\"scroll\"><table>"),
        "SLO table"
    );
    assert!(
        html.contains("<code>p99 &lt; 250ms</code>"),
        "escaped expectation"
    );
    let body = &html[html.find("<body>").expect("body")..html.find("</body>").expect("/body") + 7];
    // The body is XHTML-like apart from void elements; check the inline SVGs parse.
    for svg in body.split("<svg").skip(1) {
        let svg = format!(
            "<svg{}",
            &svg[..svg.find("</svg>").expect("closed svg") + 6]
        );
        check_xml(&svg).unwrap_or_else(|e| panic!("inline svg: {e}"));
    }

    let plots = files_under(&dir.join("plots"));
    let names: Vec<String> = plots.iter().map(|p| p.display().to_string()).collect();
    assert_eq!(
        names,
        vec![
            "latency.svg",
            "occupancy.svg",
            "pools.svg",
            "throughput.svg"
        ],
        "no jobs, so no backlog plot"
    );
    for name in &names {
        let svg = read(&dir.join("plots"), name);
        check_xml(&svg).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            svg.contains("simulated time (s)"),
            "{name}: time axis with unit"
        );
        // The fault window: a light red band on every time axis, and its name once, on its
        // bar in the fault strip above the panels; the warmup shaded and named in the legend.
        let panels = svg.matches("simulated time (s)").count();
        let bands = svg.matches("opacity=\"0.1\" fill=\"#D62728\"").count();
        let labels = svg.matches(">\nspike\n</text>").count();
        // pools.svg is two columns of small multiples, a strip over each.
        let strips = if name == "pools.svg" { 2 } else { 1 };
        assert!(
            panels >= 2 && bands == panels && labels == strips,
            "{name}: {panels} time axes, {bands} fault bands, {labels} fault labels"
        );
        assert!(
            svg.contains(">\nwarmup (not judged)\n</text>"),
            "{name}: the warmup is named in the legend"
        );
    }
    let latency = read(&dir.join("plots"), "latency.svg");
    assert!(latency.contains("p99 latency (ms)"), "latency axis in ms");
    assert!(
        latency.contains("SLO &lt; 250ms"),
        "the SLO threshold is drawn"
    );
    let occupancy = read(&dir.join("plots"), "occupancy.svg");
    assert!(occupancy.contains("busy workers") && occupancy.contains("64 workers"));
    assert!(occupancy.contains("busy connections") && occupancy.contains("40 connections"));
    let throughput = read(&dir.join("plots"), "throughput.svg");
    assert!(throughput.contains("ok responses/s") && throughput.contains("errors (%)"));
    for svg in [&latency, &occupancy, &throughput] {
        assert!(
            svg.contains(">\nstandard (41 other tenants)\n</text>"),
            "legend"
        );
    }
}

#[test]
fn hostile_names_are_escaped_everywhere() {
    let source = std::fs::read_to_string(root().join("scenarios/hot-tenant.toml"))
        .expect("scenario")
        .replace(
            "name = \"bystanders keep their latency and errors during the spike\"",
            "name = \"<b>bold</b> & 'quoted' | piped *starred* _under_\"",
        );
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("hostile.toml");
    std::fs::write(&file, source).expect("write scenario");
    let out = dir.path().join("out");
    let output = simulate(&[
        file.to_str().expect("utf-8"),
        "--set",
        "simulation.duration=\"40s\"",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert!(matches!(code(&output), 0 | 1 | 4), "{}", text(&output));
    let junit = read(&out, "junit.xml");
    check_xml(&junit).unwrap_or_else(|e| panic!("junit.xml: {e}\n{junit}"));
    assert!(
        junit.contains("&lt;b&gt;bold&lt;/b&gt; &amp; &apos;quoted&apos;"),
        "{junit}"
    );
    let html = read(&out, "index.html");
    assert!(!html.contains("<b>bold</b>"), "raw markup in index.html");
    assert!(html.contains("&lt;b&gt;bold&lt;/b&gt; &amp; &#39;quoted&#39;"));
    let summary = read(&out, "summary.md");
    assert!(
        summary.contains("\\<b>bold\\</b> & 'quoted' \\| piped \\*starred\\* \\_under\\_"),
        "{summary}"
    );
}

#[test]
fn compare_reports_the_flip_on_common_random_numbers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().display().to_string();
    let output = simulate(&[
        "compare",
        "scenarios/hot-tenant.toml",
        "--set",
        "edge.rate_limiting=false",
        "--out",
        &out,
    ]);
    assert_eq!(
        code(&output),
        1,
        "exit code of B's verdict\n{}",
        text(&output)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("Verdict: A PASS → B FAIL"), "{stdout}");
    assert!(
        stdout.contains("FLIPS bystanders keep their latency and errors during the spike"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Reproduce: ")
            && stdout.contains(
                "compare scenarios/hot-tenant.toml --seed 42 --set edge.rate_limiting=false"
            ),
        "{stdout}"
    );
    let md = read(dir.path(), "compare.md");
    assert!(
        md.contains("| `p99 < 250ms` | ✅ PASS | 50 pass, 0 fail, 0 inconclusive, 73.7ms (light-019) | ❌ **FAIL** |")
            && md.contains("flips PASS → FAIL"),
        "compare.md names the flip with A and B side by side:\n{md}"
    );
    assert!(md.contains("| tier standard |"), "per-tier change:\n{md}");

    // A is exactly the scenario as written: byte-identical to the reference report.
    let a = std::fs::read(dir.path().join("a/report.json")).expect("a/report.json");
    let reference =
        std::fs::read(root().join("reports/hot-tenant/seed-42/report.json")).expect("reference");
    assert!(a == reference, "run A differs from the reference run");
    // Common random numbers: every tenant issued the same requests in A and B.
    let (ra, rb) = (
        read_report(&dir.path().join("a")),
        read_report(&dir.path().join("b")),
    );
    assert_eq!(rb["verdict"], "fail");
    let requests = |r: &serde_json::Value| -> Vec<u64> {
        r["tenants"]
            .as_array()
            .expect("tenants")
            .iter()
            .map(|t| t["requests"].as_u64().expect("requests"))
            .collect()
    };
    assert_eq!(
        requests(&ra),
        requests(&rb),
        "arrivals differ between A and B"
    );

    let html = read(dir.path(), "index.html");
    assert_eq!(html.matches("<svg").count(), 4, "overlay plots inline");
    assert!(!html.contains("http://") && !html.contains("https://"));
    for name in [
        "latency.svg",
        "throughput.svg",
        "occupancy.svg",
        "pools.svg",
    ] {
        let svg = read(&dir.path().join("plots"), name);
        check_xml(&svg).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(svg.contains("B: with the overrides"), "{name}: run legend");
        assert!(svg.contains(">\nspike\n</text>"), "{name}: fault window");
    }
}

#[test]
fn compare_exit_codes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().display().to_string();
    // B passes too: exit 0, nothing flips.
    let output = simulate(&[
        "compare",
        "scenarios/hot-tenant.toml",
        "--set",
        "tiers.standard.burst=250",
        "--set",
        "simulation.duration=\"60s\"",
        "--out",
        &out,
    ]);
    assert_eq!(code(&output), 0, "{}", text(&output));
    let md = read(dir.path(), "compare.md");
    assert!(
        md.contains("**No SLO flips.**") && !md.contains("flips PASS"),
        "{md}"
    );
    // Without an override there is nothing to compare.
    let output = simulate(&["compare", "scenarios/hot-tenant.toml"]);
    assert_eq!(code(&output), 2, "{}", text(&output));
    // Both runs share one seed.
    let output = simulate(&[
        "compare",
        "scenarios/hot-tenant.toml",
        "--set",
        "simulation.seed=7",
        "--out",
        &out,
    ]);
    assert_eq!(code(&output), 2, "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("choose it with --seed"),
        "{}",
        text(&output)
    );
}

#[test]
fn blast_radius_blames_each_failure_on_its_own_cause() {
    // Two unrelated faults (dependency errors on cell A's database, a spike in cell B) and an
    // unrelated failure (a tenant in cell C with an impossible SLO), every failing window
    // overlapping both faults in time: each fault must be blamed for its own cell only, the
    // picky tenant for none, and every output must say the same.
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("run");
    let output = simulate(&[
        "tests/scenarios/blast-radius.toml",
        "--out",
        &out.display().to_string(),
    ]);
    assert_eq!(code(&output), 1, "{}", text(&output));
    let report = read_report(&out);
    let names = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .expect("names")
            .iter()
            .map(|n| n.as_str().expect("name").to_string())
            .collect()
    };
    let members = |group: &str, n: usize| -> Vec<String> {
        (1..=n).map(|i| format!("{group}-{i:03}")).collect()
    };
    let faults = report["blast_radius"].as_array().expect("blast_radius");
    assert_eq!(faults.len(), 2);
    let (errors, spike) = (&faults[0], &faults[1]);
    assert_eq!(errors["fault"], "db-errors");
    assert_eq!(names(&errors["touches"]), vec!["database db-a"]);
    assert_eq!(
        (
            errors["targeted"].as_u64(),
            errors["targets_failed"].as_u64()
        ),
        (Some(0), Some(0))
    );
    assert_eq!(errors["in_scope"], 5);
    assert_eq!(errors["affected"], 5);
    assert_eq!(names(&errors["tenants"]), members("a-light", 5));
    assert_eq!(spike["fault"], "spike");
    assert_eq!(
        (spike["targeted"].as_u64(), spike["targets_failed"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(spike["in_scope"], 5);
    assert_eq!(names(&spike["tenants"]), members("b-light", 5));
    assert_eq!(report["unexplained"]["count"], 1);
    assert_eq!(names(&report["unexplained"]["tenants"]), vec!["picky"]);
    let tier = &report["blast_tiers"][0];
    assert_eq!(
        [
            &tier["judged"],
            &tier["failed"],
            &tier["explained"],
            &tier["unexplained"]
        ],
        [16, 12, 11, 1]
    );

    // The terminal, summary.md and index.html show the same numbers.
    let stdout = String::from_utf8_lossy(&output.stdout);
    for line in [
        "targets      0 (0 failed)  affected      5 of 5 in scope: a-light-001,",
        "targets      1 (1 failed)  affected      5 of 5 in scope: b-light-001,",
        "failed, explained by no fault: 1: picky",
    ] {
        assert!(stdout.contains(line), "terminal lacks {line:?}:\n{stdout}");
    }
    let md = read(&out, "summary.md");
    for row in [
        "| `db-errors` | dependency_errors | 15s–25s | database db-a | 0 (0) | 5 | 5 | 100.00% |",
        "| `spike` | load_spike | 35s–45s | cell cell-b, pool cell-b/api | 1 (1) | 5 | 5 | 100.00% |",
        "| standard | 16 | 1 | 16 | 12 | 11 | 1 |",
        "**Failed, explained by no fault** (1): `picky`",
        "12 of 16 tenants judged by an SLO failed a check: 11 explained by a fault",
    ] {
        assert!(md.contains(row), "summary.md lacks {row:?}:\n{md}");
    }
    let html = read(&out, "index.html");
    for row in [
        "<tr><td><code>db-errors</code></td><td>dependency_errors</td><td class=\"num\">15s–25s</td><td>database db-a</td><td class=\"num\">0 (0)</td><td class=\"num\">5</td><td class=\"num\">5</td>",
        "<b>Failed, explained by no fault</b> (1): <code>picky</code>",
    ] {
        assert!(html.contains(row), "index.html lacks {row:?}");
    }

    // compare: with rate limiting on (B), the spike hurts nobody; the database errors and the
    // picky tenant are unchanged. The comparison reads both runs' own blast radius.
    let cmp = dir.path().join("cmp");
    let output = simulate(&[
        "compare",
        "tests/scenarios/blast-radius.toml",
        "--set",
        "edge.rate_limiting=true",
        "--out",
        &cmp.display().to_string(),
    ]);
    assert_eq!(code(&output), 1, "{}", text(&output));
    let md = read(&cmp, "compare.md");
    for row in [
        "| `db-errors` | 0 | 0 | 5 | 5 | 5 |",
        "| `spike` | 1 | 0 | 5 | 0 | 5 |",
        "| explained by no fault |  |  | 1 | 1 |  |",
    ] {
        assert!(md.contains(row), "compare.md lacks {row:?}:\n{md}");
    }
    let b = read_report(&cmp.join("b"));
    assert_eq!(b["blast_radius"][1]["affected"], 0);
}

#[test]
fn dead_letters_are_reported_and_judged_per_tenant_and_per_tier() {
    // The poison-jobs drill, with SLOs on dead letters: one tenant's own, and its tier's pooled.
    let dir = tempfile::tempdir().expect("temp dir");
    let mut scenario = std::fs::read_to_string(root().join("scenarios/poison-jobs.toml"))
        .expect("poison-jobs.toml");
    scenario.push_str(
        r#"
[[slo]]
name = "the poisoned tenant dead-letters nothing"
tenants = ["poisoned"]
expect = ["dead_letters < 1"]

[[slo]]
name = "the tier dead-letters at most a thousand"
tenants = { tier = "standard" }
scope = "pooled"
expect = ["dead_letters <= 1000"]
"#,
    );
    let file = dir.path().join("dead.toml");
    std::fs::write(&file, scenario).expect("write scenario");
    let out = dir.path().join("run");
    let output = simulate(&[
        &file.display().to_string(),
        "--out",
        &out.display().to_string(),
    ]);
    assert_eq!(code(&output), 1, "{}", text(&output));
    let report = read_report(&out);
    let tenant = report["tenants"]
        .as_array()
        .expect("tenants")
        .iter()
        .find(|t| t["name"] == "poisoned")
        .expect("poisoned")
        .clone();
    let dead = tenant["jobs"]["dead_lettered"]
        .as_u64()
        .expect("dead_lettered");
    let failed = tenant["jobs"]["failed_attempts"]
        .as_u64()
        .expect("failed_attempts");
    assert!(dead > 100, "{tenant}");
    // Three attempts per poison job (max_attempts = 3), each failing.
    assert!(failed >= 3 * dead, "{tenant}");
    let tier = &report["tiers"][0]["jobs"];
    assert_eq!(
        tier["dead_lettered"], dead,
        "only the poisoned tenant dead-letters"
    );
    // The SLO metric: the tenant's fails with its count observed; the tier's pooled one passes.
    let slo = |i: usize| &report["slos"][i];
    assert_eq!(slo(1)["status"], "fail");
    assert_eq!(slo(1)["checks"][0]["observed"].as_f64(), Some(dead as f64));
    assert_eq!(slo(2)["status"], "pass");
    assert_eq!(slo(2)["checks"][0]["tenant"], "(pooled)");

    let dead_text = tenantsim::text::thousands(dead);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("Background jobs (submitted after warmup)")
            && stdout.contains(&format!("most dead-lettered: poisoned {dead_text} of"))
            && stdout.contains(&format!("dead_letters < 1 observed {dead_text}")),
        "{stdout}"
    );
    let md = read(&out, "summary.md");
    assert!(
        md.contains("## Background jobs (submitted after warmup)")
            && md.contains(&format!("Most dead-lettered: `poisoned` {dead_text} of")),
        "{md}"
    );
    let html = read(&out, "index.html");
    assert!(
        html.contains(&format!(
            "Most dead-lettered: <code>poisoned</code> {dead_text} of"
        )),
        "index.html"
    );
}

#[test]
fn a_pooled_failure_of_one_class_is_blamed_through_the_shared_dependency() {
    // object-storage-outage's twin keys breakers by dependency: cell-a's cut-off from object
    // storage opens the one breaker for everyone, and the other cells' uploads fail. The
    // failed checks are pooled and judge uploads only (a class), so a tenant counts by its
    // own uploads; the other cells' tenants share the object store with the fault's targets,
    // so the fault explains them and nothing is left unexplained.
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("twin");
    let output = simulate(&[
        "scenarios/object-storage-outage.toml",
        "--set",
        "breakers.key=dependency",
        "--out",
        &out.display().to_string(),
    ]);
    assert_eq!(code(&output), 1, "{}", text(&output));
    let report = read_report(&out);
    let fault = &report["blast_radius"][0];
    assert_eq!(fault["fault"], "cut-off");
    assert!(
        fault["touches"]
            .as_array()
            .expect("touches")
            .iter()
            .any(|t| t == "calls from cell-a to objects"),
        "{fault}"
    );
    assert_eq!(fault["in_scope"], 40, "{fault}");
    assert!(
        fault["affected"].as_u64().is_some_and(|n| n >= 30),
        "the other cells' failed uploads count against the cut-off: {fault}"
    );
    assert_eq!(report["unexplained"]["count"], 0);
    let tier = &report["blast_tiers"][0];
    assert!(tier["failed"].as_u64().is_some_and(|n| n >= 30), "{tier}");
    assert_eq!(tier["failed"], tier["explained"], "{tier}");
}
