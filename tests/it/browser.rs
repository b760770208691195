//! Opt-in (`TENANTSIM_BROWSER=1`, with Debian's `chromium` installed: `apt-get install
//! chromium`): index.html rendered in headless Chromium. For a failing 51-tenant run and the
//! 10,000-tenant `bad-day-at-scale`, the page must load without a console error, show its four
//! plots at a real size, overflow the page sideways nowhere (wide tables scroll in their own
//! box), and its tenant table must draw a page of rows, sort on a header click and filter as
//! typed. A screenshot of each page is left in `target/browser/` for a person to look at.
//! `TENANTSIM_CHROMIUM=PATH` names another binary. The default test run skips it: it starts a
//! browser.
//!
//! A harness page loads index.html in a frame (same origin with
//! `--allow-file-access-from-files`), measures it, drives the table, and writes what it found
//! into its own DOM, which `--dump-dom` prints.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{code, root, simulate, text};

/// The harness: measures the framed page and writes a JSON result into `#result`.
const HARNESS: &str = r##"<!DOCTYPE html><html><body style="margin:0">
<iframe id="page" style="width:1200px;height:900px;border:0"></iframe>
<pre id="result">pending</pre>
<script>
var frame = document.getElementById("page");
frame.addEventListener("load", function () {
  var w = frame.contentWindow, doc = frame.contentDocument, out = {};
  try {
    var svgs = doc.querySelectorAll("svg");
    out.svgs = svgs.length;
    out.tinySvgs = Array.prototype.filter.call(svgs, function (s) {
      var r = s.getBoundingClientRect(); return r.width < 100 || r.height < 100;
    }).length;
    var width = doc.documentElement.clientWidth;
    out.pageOverflow = doc.documentElement.scrollWidth > width + 1;
    out.overflowing = [];
    doc.querySelectorAll("body *").forEach(function (e) {
      if (e.closest(".scroll") || e.closest("pre") || e.closest("svg")) return;
      var r = e.getBoundingClientRect();
      if (r.right > width + 1 && out.overflowing.length < 5)
        out.overflowing.push(e.tagName + (e.id ? "#" + e.id : "") + " right=" + Math.round(r.right));
    });
    out.rows = doc.querySelectorAll("#tenants tbody tr").length;
    out.info = (doc.querySelector("#tenants .info") || {}).textContent || "";
    var ths = doc.querySelectorAll("#tenants th"), col = -1;
    ths.forEach(function (t, i) { if (t.textContent === "requests") col = i; });
    out.sortColumn = col;
    if (col >= 0) {
      ths[col].click();
      out.sorted = Array.prototype.map.call(
        doc.querySelectorAll("#tenants tbody tr td:nth-child(" + (col + 1) + ")"),
        function (td) { return Number(td.textContent.replace(/,/g, "")); });
    }
    var first = doc.querySelector("#tenants tbody tr td");
    out.firstName = first ? first.textContent : "";
    var q = doc.querySelector("#tenants input[type=search]");
    if (q) {
      q.value = out.firstName; q.dispatchEvent(new w.Event("input"));
      out.filteredToFirst = doc.querySelectorAll("#tenants tbody tr").length;
      q.value = "no tenant has this name"; q.dispatchEvent(new w.Event("input"));
      out.filteredToNone = doc.querySelectorAll("#tenants tbody tr").length;
    }
  } catch (e) { out.harnessError = String(e); }
  document.getElementById("result").textContent = JSON.stringify(out);
});
frame.src = decodeURIComponent(location.hash.slice(1));
</script></body></html>
"##;

fn enabled() -> bool {
    std::env::var_os("TENANTSIM_BROWSER").is_some_and(|v| v == "1")
}

fn chromium() -> String {
    std::env::var("TENANTSIM_CHROMIUM").unwrap_or_else(|_| "chromium".to_string())
}

/// Runs chromium headless with `args` and the common flags; stdout and stderr.
fn run_chromium(args: &[String]) -> (String, String) {
    let output = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {} ({e}): install it with `apt-get install chromium`",
                chromium()
            )
        });
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Console messages chromium logged that are errors (its own start-up noise is not).
fn console_errors(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE") && (l.contains("Uncaught") || l.contains("Error")))
        .collect()
}

/// Writes `scenario`'s report (with `overrides`) into `out` and returns its index.html.
fn report(scenario: &str, overrides: &[&str], out: &Path) -> PathBuf {
    let out_arg = out.display().to_string();
    let mut args = vec![scenario, "--quiet", "--out", out_arg.as_str()];
    args.extend_from_slice(overrides);
    let output = simulate(&args);
    assert!(matches!(code(&output), 0 | 1), "{}", text(&output));
    out.join("index.html")
}

/// Renders `page` in the harness, checks what it found, and leaves a screenshot named `name`.
fn check_page(page: &Path, tenants: usize, name: &str, harness: &Path) {
    let url = format!("file://{}", page.display());
    let (dom, stderr) = run_chromium(&[
        "--allow-file-access-from-files".to_string(),
        "--virtual-time-budget=30000".to_string(),
        "--dump-dom".to_string(),
        format!("file://{}#{}", harness.display(), url),
    ]);
    let errors = console_errors(&stderr);
    assert!(
        errors.is_empty(),
        "{name}: console errors:\n{}",
        errors.join("\n")
    );
    let result = dom
        .split("<pre id=\"result\">")
        .nth(1)
        .and_then(|r| r.split("</pre>").next())
        .unwrap_or_else(|| panic!("{name}: the harness wrote no result:\n{dom}"))
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">");
    let r: serde_json::Value = serde_json::from_str(&result)
        .unwrap_or_else(|e| panic!("{name}: harness result {result:?}: {e}"));
    assert!(r.get("harnessError").is_none(), "{name}: {r}");
    assert_eq!(r["svgs"], 4, "{name}: four inline plots: {r}");
    assert_eq!(r["tinySvgs"], 0, "{name}: a plot rendered at no size: {r}");
    assert_eq!(
        r["pageOverflow"], false,
        "{name}: the page scrolls sideways: {r}"
    );
    assert_eq!(
        r["overflowing"].as_array().map(Vec::len),
        Some(0),
        "{name}: elements past the right edge: {r}"
    );
    let page_rows = tenants.min(200);
    assert_eq!(
        r["rows"], page_rows,
        "{name}: the tenant table's first page: {r}"
    );
    let info = r["info"].as_str().unwrap_or("");
    assert!(
        info.ends_with(&format!(
            "({} tenants)",
            tenantsim::text::thousands(tenants as u64)
        )),
        "{name}: {info}"
    );
    // A numeric column sorts largest first on the first click.
    let sorted: Vec<f64> = r["sorted"]
        .as_array()
        .map(|v| v.iter().filter_map(serde_json::Value::as_f64).collect())
        .unwrap_or_default();
    assert_eq!(sorted.len(), page_rows, "{name}: {r}");
    assert!(
        sorted.windows(2).all(|w| w[0] >= w[1]),
        "{name}: requests not sorted descending: {sorted:?}"
    );
    assert!(
        r["filteredToFirst"].as_u64().is_some_and(|n| n >= 1),
        "{name}: filtering by a tenant's name: {r}"
    );
    assert_eq!(
        r["filteredToNone"], 0,
        "{name}: a filter nothing matches: {r}"
    );

    let shots = root().join("target").join("browser");
    std::fs::create_dir_all(&shots).expect("target/browser");
    let shot = shots.join(format!("{name}.png"));
    let (_, stderr) = run_chromium(&[
        format!("--screenshot={}", shot.display()),
        "--window-size=1200,6000".to_string(),
        url,
    ]);
    assert!(
        std::fs::metadata(&shot).is_ok_and(|m| m.len() > 10_000),
        "{name}: no screenshot\n{stderr}"
    );
}

#[test]
fn index_html_renders_in_headless_chromium() {
    if !enabled() {
        eprintln!("skipped: set TENANTSIM_BROWSER=1 (needs `apt-get install chromium`)");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let harness = dir.path().join("harness.html");
    std::fs::write(&harness, HARNESS).expect("harness");
    let hot = report(
        "scenarios/hot-tenant.toml",
        &["--set", "edge.rate_limiting=false"],
        &dir.path().join("hot"),
    );
    check_page(&hot, 51, "hot-tenant-twin", &harness);
    let big = report(
        "scenarios/bad-day-at-scale.toml",
        &[],
        &dir.path().join("bad-day"),
    );
    check_page(&big, 10_000, "bad-day-at-scale", &harness);
}

/// The harness itself must see breakage: a page whose script throws, whose table overflows
/// and that has no plots fails every check it should.
#[test]
fn the_browser_harness_sees_breakage() {
    if !enabled() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let harness = dir.path().join("harness.html");
    std::fs::write(&harness, HARNESS).expect("harness");
    let broken = dir.path().join("broken.html");
    std::fs::write(
        &broken,
        "<!DOCTYPE html><html><body><div style=\"width:3000px\">wide</div>\
         <script>noSuchFunction();</script></body></html>",
    )
    .expect("broken page");
    let (dom, stderr) = run_chromium(&[
        "--allow-file-access-from-files".to_string(),
        "--virtual-time-budget=10000".to_string(),
        "--dump-dom".to_string(),
        format!("file://{}#file://{}", harness.display(), broken.display()),
    ]);
    assert!(
        !console_errors(&stderr).is_empty(),
        "no console error seen:\n{stderr}"
    );
    assert!(dom.contains("\"pageOverflow\":true"), "{dom}");
    assert!(dom.contains("\"svgs\":0"), "{dom}");
}
