//! `index.html`: one self-contained page (inline CSS, SVG and one inline script, no external
//! assets) with the verdict, the SLO table, the plots, the blast radius, tiers, worst tenants,
//! every tenant in a table to sort and filter, faults, invariants and the repro command. Opens
//! from disk in any browser, or as a CI artifact; without JavaScript only the tenant table is
//! missing.

use std::fmt::Write;

use super::Report;
use super::summary::{more_not_passing, not_passing, observed_text};
use super::tables::{self, Cell, Table};
use super::timeline::FaultSpan;
use crate::text::thousands;

/// How many tenants the worst-tenants table shows.
const WORST_TENANTS: usize = 10;
/// How many failing tenants each SLO lists.
const LISTED_FAILURES: usize = 50;

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0 auto;\
max-width:1000px;padding:16px 20px 48px;color:#1a1a1a;line-height:1.45}\
h1{font-size:1.6em;margin:.4em 0 .2em}h2{font-size:1.25em;margin:1.6em 0 .5em;\
border-bottom:1px solid #ddd;padding-bottom:.2em}\
.meta{color:#555;font-size:.92em}\
table{border-collapse:collapse;margin:.4em 0 .8em;font-size:.92em}\
th,td{padding:4px 10px;border-bottom:1px solid #e4e4e4;text-align:left;vertical-align:top;\
white-space:nowrap}td.wrap{white-space:normal;min-width:14em}\
th{background:#f5f5f5;font-weight:600}td.num,th.num{text-align:right;white-space:nowrap;\
font-variant-numeric:tabular-nums}\
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.92em}\
code{background:#f3f3f3;padding:0 3px;border-radius:3px}\
pre{background:#f6f8fa;padding:10px 12px;overflow-x:auto;border-radius:4px}\
.badge{display:inline-block;padding:1px 8px;border-radius:4px;font-weight:700;font-size:.85em;\
letter-spacing:.03em}\
.pass{background:#dcf5e3;color:#116329}.fail{background:#fde2e1;color:#a40e26}\
.inconclusive{background:#fff4d6;color:#7a5300}.na{background:#eee;color:#555}\
h1 .badge{font-size:.7em;vertical-align:middle}\
figure{margin:1em 0 1.6em}figure svg{max-width:100%;height:auto;display:block;\
border:1px solid #eee}\
nav a{margin-right:12px}ul.failures{font-size:.92em}\
#tenants th{cursor:pointer;user-select:none}#tenants .controls{margin:.4em 0}\
#tenants input[type=search]{width:18em}.scroll{overflow-x:auto}";

/// Tenant rows the explorer draws at once (more on request): a browser lays out a few hundred
/// rows at once, not ten thousand.
const EXPLORER_PAGE: usize = 200;

/// The explorer: sorts on a column header click (again: the other way), filters by a text
/// found in the name, tier or cell and by "failing only", draws the first rows that match.
/// Reads its data from the `tenant-data` JSON element; builds the rows with DOM calls (no
/// markup from data).
const EXPLORER_SCRIPT: &str = r#"(function(){
var d=JSON.parse(document.getElementById("tenant-data").textContent);
var root=document.getElementById("tenants"),q=root.querySelector("input[type=search]"),
f=root.querySelector("input[type=checkbox]"),tb=root.querySelector("tbody"),
info=root.querySelector(".info"),more=root.querySelector("button"),
ths=root.querySelectorAll("th"),key=-1,desc=false,limit=d.page,FAILED=d.failed;
function cmp(a,b){var x=a[key],y=b[key];if(x===y)return 0;if(x===null)return 1;
if(y===null)return -1;return (x<y?-1:1)*(desc?-1:1);}
function draw(){var s=q.value.toLowerCase(),only=f.checked,m=[];
for(var i=0;i<d.rows.length;i++){var r=d.rows[i];
if(only&&!(r[FAILED]>0))continue;
if(s&&(r[0]+" "+r[1]+" "+r[2]).toLowerCase().indexOf(s)<0)continue;m.push(r);}
if(key>=0)m.sort(cmp);
var n=Math.min(limit,m.length),frag=document.createDocumentFragment();
for(var i=0;i<n;i++){var tr=document.createElement("tr");
for(var j=0;j<m[i].length;j++){var td=document.createElement("td"),v=m[i][j];
if(d.numeric[j])td.className="num";
td.textContent=v===null?"–":(typeof v==="number"?v.toLocaleString("en-US"):v);
tr.appendChild(td);}frag.appendChild(tr);}
tb.replaceChildren(frag);
info.textContent="showing "+n.toLocaleString("en-US")+" of "+m.length.toLocaleString("en-US")+
" matching ("+d.rows.length.toLocaleString("en-US")+" tenants)";
more.hidden=m.length<=limit;}
for(var k=0;k<ths.length;k++){ths[k].addEventListener("click",(function(c){return function(){
desc=key===c?!desc:d.numeric[c];key=c;
for(var i=0;i<ths.length;i++)ths[i].removeAttribute("aria-sort");
ths[c].setAttribute("aria-sort",desc?"descending":"ascending");limit=d.page;draw();};})(k));}
q.addEventListener("input",function(){limit=d.page;draw();});
f.addEventListener("change",function(){limit=d.page;draw();});
more.addEventListener("click",function(){limit+=d.page;draw();});
draw();})();"#;

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A status badge: `pass`, `fail`, `inconclusive` or `n/a`.
pub fn badge(status: &str) -> String {
    let class = match status {
        "pass" | "fail" | "inconclusive" => status,
        "n/a" => "na",
        _ => "",
    };
    format!(
        "<span class=\"badge {class}\">{}</span>",
        escape(&status.to_uppercase())
    )
}

/// Renders a table, in a box that scrolls sideways when the table is wider than the page.
pub fn table(t: &Table) -> String {
    let mut out = String::from("<div class=\"scroll\"><table>\n<thead><tr>");
    for c in &t.columns {
        let class = if c.numeric { " class=\"num\"" } else { "" };
        let _ = write!(out, "<th{class}>{}</th>", escape(&c.title));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &t.rows {
        out.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            let numeric = t.columns.get(i).is_some_and(|c| c.numeric);
            // Long free text (an SLO's name, an invariant's detail) may wrap; the rest not.
            let class = if numeric {
                " class=\"num\""
            } else if cell.text().chars().count() > 32 {
                " class=\"wrap\""
            } else {
                ""
            };
            let inner = match cell {
                Cell::Text(s) => escape(s),
                Cell::Code(s) => format!("<code>{}</code>", escape(s)),
                Cell::Status(s) => badge(s),
            };
            let _ = write!(out, "<td{class}>{inner}</td>");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table></div>\n");
    out
}

/// An SVG document as an inline element: without the XML namespace attribute (HTML does not
/// need it), so the page holds no URL at all.
pub fn inline_svg(svg: &str) -> String {
    svg.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1)
}

/// A whole page around `body`.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        escape(title)
    )
}

/// The plots as figures with inline SVG; `plots` are `(relative path, SVG)`.
pub fn figures(plots: &[(String, String)]) -> String {
    let mut out = String::new();
    for (path, svg) in plots {
        let _ = write!(
            out,
            "<figure id=\"{}\">\n{}<figcaption class=\"meta\">{}</figcaption>\n</figure>\n",
            escape(path.trim_start_matches("plots/").trim_end_matches(".svg")),
            inline_svg(svg),
            escape(path)
        );
    }
    out
}

/// The tenants that did not pass an SLO, failing ones first, in a folded list per SLO.
fn failures(report: &Report) -> String {
    let mut out = String::new();
    for slo in report.slos.iter().filter(|s| s.status != "pass") {
        let listed = not_passing(slo);
        let failing = listed.iter().filter(|n| n.failed).count() as u64;
        let _ = writeln!(
            out,
            "<details><summary><b>{}</b>: {} tenant(s) failed, {} inconclusive</summary>\n<ul class=\"failures\">",
            escape(&slo.name),
            thousands(failing),
            thousands(listed.len() as u64 - failing)
        );
        for n in listed.iter().take(LISTED_FAILURES) {
            let items: Vec<String> = n
                .checks
                .iter()
                .map(|c| {
                    if c.status == "inconclusive" {
                        format!(
                            "<code>{}</code> inconclusive ({} samples)",
                            escape(&c.expect),
                            thousands(c.samples)
                        )
                    } else {
                        format!(
                            "<code>{}</code> observed {}",
                            escape(&c.expect),
                            escape(&observed_text(&c.expect, c.observed))
                        )
                    }
                })
                .collect();
            let _ = writeln!(
                out,
                "<li>{} <code>{}</code>: {}</li>",
                badge(if n.failed { "fail" } else { "inconclusive" }),
                escape(n.tenant),
                items.join("; ")
            );
        }
        if let Some(more) = more_not_passing(&listed, LISTED_FAILURES) {
            let _ = writeln!(out, "<li>… and {more} (see report.json or junit.xml)</li>");
        }
        out.push_str("</ul></details>\n");
    }
    out
}

/// The failed tenants no fault explains, if any.
fn unexplained(report: &Report) -> String {
    let u = &report.unexplained;
    if u.count == 0 {
        return String::new();
    }
    let names: Vec<String> = u
        .tenants
        .iter()
        .take(LISTED_FAILURES)
        .map(|t| format!("<code>{}</code>", escape(t)))
        .collect();
    let more = u.count.saturating_sub(names.len() as u64);
    format!(
        "<p><b>Failed, explained by no fault</b> ({}): {}{}</p>\n",
        thousands(u.count),
        names.join(", "),
        if more > 0 {
            format!(" and {} more", thousands(more))
        } else {
            String::new()
        }
    )
}

/// The header every page starts with: scenario, verdict, description, run facts.
pub fn header(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<h1>{} {}</h1>",
        escape(&report.scenario),
        badge(&report.verdict)
    );
    if !report.description.is_empty() {
        let _ = writeln!(out, "<p>{}</p>", escape(&report.description));
    }
    let _ = writeln!(
        out,
        "<p class=\"meta\">seed {} · {} simulated (warmup {}) · {} tenants · {} events · tenantsim {}</p>",
        report.seed,
        tables::seconds(report.run.duration_s),
        tables::seconds(report.run.warmup_s),
        thousands(report.tenants.len() as u64),
        thousands(report.run.events),
        escape(&report.version)
    );
    let _ = writeln!(
        out,
        "<p class=\"meta\">{}</p>",
        escape(&super::summary::verdict_counts(report))
    );
    if !report.overrides.is_empty() {
        let sets: Vec<String> = report
            .overrides
            .iter()
            .map(|o| format!("<code>--set {}</code>", escape(o)))
            .collect();
        let _ = writeln!(out, "<p>Overrides: {}</p>", sets.join(" "));
    }
    out
}

/// Every tenant, as the explorer's data and its empty table: name, tier, cell, requests, ok /
/// throttled / error shares (% of finished), p99 (ms), failed and inconclusive checks, and
/// dead-lettered jobs.
fn tenant_explorer(report: &Report) -> String {
    use std::collections::BTreeMap;
    let mut checks: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for slo in &report.slos {
        for c in &slo.checks {
            let entry = checks.entry(c.tenant.as_str()).or_default();
            match c.status.as_str() {
                "fail" => entry.0 += 1,
                "inconclusive" => entry.1 += 1,
                _ => {}
            }
        }
    }
    let share = |part: u64, whole: u64| -> serde_json::Value {
        if whole == 0 {
            serde_json::Value::Null
        } else {
            serde_json::json!((part as f64 * 10_000.0 / whole as f64).round() / 100.0)
        }
    };
    let rows: Vec<serde_json::Value> = report
        .tenants
        .iter()
        .map(|t| {
            let finished = super::summary::finished(t);
            let (failed, inconclusive) = checks.get(t.name.as_str()).copied().unwrap_or_default();
            serde_json::json!([
                t.name,
                t.tier,
                t.cell,
                t.requests,
                share(t.ok, finished),
                share(t.throttled, finished),
                share(super::summary::errors(t), finished),
                t.latency_ms.as_ref().map(|l| l.p99),
                failed,
                inconclusive,
                t.jobs.as_ref().map(|j| j.dead_lettered),
            ])
        })
        .collect();
    let columns: [(&str, bool); 11] = [
        ("tenant", false),
        ("tier", false),
        ("cell", false),
        ("requests", true),
        ("ok %", true),
        ("throttled %", true),
        ("errors %", true),
        ("p99 ms", true),
        ("failed checks", true),
        ("inconclusive", true),
        ("dead letters", true),
    ];
    let data = serde_json::json!({
        "page": EXPLORER_PAGE,
        "failed": 8,
        "numeric": columns.iter().map(|c| c.1).collect::<Vec<_>>(),
        "rows": rows,
    });
    // Inside a script element nothing may read as markup: `<` is written as an escape.
    let data = data.to_string().replace('<', "\\u003c");
    let mut out = String::from(
        "<div id=\"tenants\">\n<p class=\"controls\"><input type=\"search\" \
         placeholder=\"filter: name, tier or cell\" aria-label=\"filter tenants\"> \
         <label><input type=\"checkbox\"> failing only</label> \
         <span class=\"info meta\"></span></p>\n<div class=\"scroll\"><table>\n<thead><tr>",
    );
    for (title, numeric) in columns {
        let class = if numeric { " class=\"num\"" } else { "" };
        let _ = write!(out, "<th{class}>{}</th>", escape(title));
    }
    out.push_str("</tr></thead>\n<tbody></tbody>\n</table></div>\n");
    out.push_str("<p><button type=\"button\" hidden>show more</button></p>\n</div>\n");
    let _ = writeln!(
        out,
        "<script type=\"application/json\" id=\"tenant-data\">{data}</script>"
    );
    let _ = writeln!(out, "<script>{EXPLORER_SCRIPT}</script>");
    out
}

/// The page of one run: `plots` are `(relative path, SVG)` pairs, inlined.
pub fn run_page(report: &Report, faults: &[FaultSpan], plots: &[(String, String)]) -> String {
    let mut body = header(report);
    body.push_str(
        "<nav class=\"meta\"><a href=\"#slos\">SLOs</a><a href=\"#plots\">Plots</a>\
         <a href=\"#blast\">Blast radius</a><a href=\"#tiers\">Tiers</a>\
         <a href=\"#worst\">Worst tenants</a><a href=\"#all-tenants\">All tenants</a>\
         <a href=\"#repro\">Reproduce</a></nav>\n",
    );
    body.push_str("<h2 id=\"slos\">SLOs</h2>\n");
    if report.slos.is_empty() {
        body.push_str("<p>No SLOs defined.</p>\n");
    } else {
        body.push_str(&table(&tables::slos(report)));
        body.push_str(&failures(report));
    }
    body.push_str("<h2 id=\"plots\">Plots</h2>\n");
    body.push_str(&figures(plots));
    body.push_str("<h2 id=\"blast\">Blast radius</h2>\n");
    let _ = writeln!(body, "<p>{}</p>", escape(&tables::blast_sentence(report)));
    body.push_str(&table(&tables::blast_faults(report)));
    body.push_str(&table(&tables::blast_tiers(report)));
    body.push_str(&unexplained(report));
    body.push_str("<h2 id=\"tiers\">Tiers (requests issued after warmup)</h2>\n");
    body.push_str(&table(&tables::tiers(report)));
    if let Some(classes) = tables::classes(report) {
        body.push_str("<h2 id=\"classes\">Request classes</h2>\n");
        body.push_str(&table(&classes));
    }
    if let Some(counters) = tables::counters(report) {
        body.push_str("<h2 id=\"dependencies\">Databases and dependencies</h2>\n");
        body.push_str(&table(&counters));
    }
    for (title, t) in super::onboarding::tables(report) {
        body.push_str(&format!("<h2>{}</h2>\n", escape(title)));
        body.push_str(&table(&t));
    }
    body.push_str("<h2 id=\"worst\">Worst tenants</h2>\n");
    body.push_str(&table(&tables::worst_tenants(report, WORST_TENANTS)));
    body.push_str("<h2 id=\"all-tenants\">All tenants</h2>\n");
    body.push_str(
        "<p class=\"meta\">Click a column to sort (again: the other way); \
         shares are of finished requests.</p>\n",
    );
    body.push_str(&tenant_explorer(report));
    if let Some(jobs) = tables::jobs(report) {
        body.push_str("<h2 id=\"jobs\">Background jobs (submitted after warmup)</h2>\n");
        body.push_str(&table(&jobs));
        let worst = tables::dead_letter_tenants(report, WORST_TENANTS);
        if !worst.is_empty() {
            let listed: Vec<String> = worst
                .iter()
                .map(|(name, dead, submitted)| {
                    format!(
                        "<code>{}</code> {} of {}",
                        escape(name),
                        thousands(*dead),
                        thousands(*submitted)
                    )
                })
                .collect();
            let _ = writeln!(body, "<p>Most dead-lettered: {}</p>", listed.join(", "));
        }
    }
    if !faults.is_empty() {
        body.push_str("<h2 id=\"faults\">Faults</h2>\n");
        body.push_str(&table(&tables::faults(faults)));
    }
    body.push_str("<h2 id=\"invariants\">Invariants</h2>\n");
    body.push_str(&table(&tables::invariants(report)));
    body.push_str("<h2 id=\"repro\">Reproduce</h2>\n");
    let _ = writeln!(body, "<pre><code>{}</code></pre>", escape(&report.repro));
    body.push_str(
        "<p class=\"meta\">Files: <a href=\"report.json\">report.json</a> · \
         <a href=\"summary.md\">summary.md</a> · <a href=\"junit.xml\">junit.xml</a></p>\n",
    );
    page(
        &format!(
            "{} seed {}: {}",
            report.scenario,
            report.seed,
            report.verdict.to_uppercase()
        ),
        &body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(escape("<b>&'\""), "&lt;b&gt;&amp;&#39;&quot;");
    }

    #[test]
    fn inline_svg_drops_the_namespace_url() {
        let svg = "<svg width=\"1\" xmlns=\"http://www.w3.org/2000/svg\">\n</svg>\n";
        assert_eq!(inline_svg(svg), "<svg width=\"1\">\n</svg>\n");
    }
}
