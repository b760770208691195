//! Policy A/B: the same scenario and seed as written (A) and with `--set` overrides (B). Common
//! random numbers make the arrivals and service times identical, so every difference comes from
//! the overrides. Renders the terminal view, `compare.md`, `index.html` and overlay plots: which
//! SLOs flip, and how far each tier and tracked tenant moved.

use std::fmt::Write;

use super::summary::{ms, percent};
use super::tables::{self, Cell, Column, Table};
use super::timeline::Timeline;
use super::{OutputFile, Report, html, markdown, plots};
use crate::text::thousands;

/// One side of the comparison.
#[derive(Clone, Copy, Debug)]
pub struct Side<'a> {
    /// The run's report.
    pub report: &'a Report,
    /// The run's course in time.
    pub timeline: &'a Timeline<'a>,
}

/// How B is described: its overrides.
pub fn b_label(b: &Report) -> String {
    let sets: Vec<String> = b.overrides.iter().map(|o| format!("--set {o}")).collect();
    sets.join(" ")
}

/// The command that reproduces the comparison (canonical, `simulate compare ...`).
pub fn repro(b: &Report) -> String {
    b.repro.replacen("simulate ", "simulate compare ", 1)
}

fn columns(spec: &[(&str, bool)]) -> Vec<Column> {
    spec.iter()
        .map(|(title, numeric)| Column {
            title: (*title).to_string(),
            numeric: *numeric,
        })
        .collect()
}

fn text(s: impl Into<String>) -> Cell {
    Cell::Text(s.into())
}

/// One row per SLO expectation: A and B status with checks passed and worst observed, and
/// whether it flips.
pub fn slo_table(a: &Report, b: &Report) -> Table {
    let mut t = Table {
        columns: columns(&[
            ("SLO", false),
            ("expected", false),
            ("A", false),
            ("A checks, worst", true),
            ("B", false),
            ("B checks, worst", true),
            ("change", false),
        ]),
        rows: Vec::new(),
    };
    for (i, slo_a) in a.slos.iter().enumerate() {
        let slo_b = b
            .slos
            .get(i)
            .filter(|s| s.name == slo_a.name)
            .or_else(|| b.slos.iter().find(|s| s.name == slo_a.name));
        for expect in &slo_a.expect {
            let status_a = tables::expectation_status(slo_a, expect);
            let detail = |slo: &super::SloReport| {
                format!(
                    "{}, {}",
                    tables::checks_passed(slo, expect),
                    tables::worst_observed(slo, expect)
                )
            };
            let (status_b, detail_b) = match slo_b.filter(|s| s.expect.contains(expect)) {
                Some(s) => (tables::expectation_status(s, expect), detail(s)),
                None => ("-", "not in B".to_string()),
            };
            let change = if status_b == "-" {
                String::new()
            } else if status_a != status_b {
                format!(
                    "flips {} → {}",
                    status_a.to_uppercase(),
                    status_b.to_uppercase()
                )
            } else {
                "same".to_string()
            };
            t.rows.push(vec![
                text(&slo_a.name),
                Cell::Code(expect.clone()),
                Cell::Status(status_a.to_string()),
                text(detail(slo_a)),
                Cell::Status(status_b.to_string()),
                text(detail_b),
                text(change),
            ]);
        }
    }
    t
}

/// One row per fault, then the failures no fault explains: the blast radius of A and of B, from
/// each run's report (the same computation as the runs' own files).
pub fn blast_table(a: &Report, b: &Report) -> Table {
    let mut t = Table {
        columns: columns(&[
            ("fault", false),
            ("targets failed A", true),
            ("targets failed B", true),
            ("affected A", true),
            ("affected B", true),
            ("in scope", true),
        ]),
        rows: Vec::new(),
    };
    let of = |r: &Report, fault: &str| r.blast_radius.iter().find(|x| x.fault == fault).cloned();
    let mut names: Vec<&str> = a.blast_radius.iter().map(|x| x.fault.as_str()).collect();
    for x in &b.blast_radius {
        if !names.contains(&x.fault.as_str()) {
            names.push(&x.fault);
        }
    }
    let count = |x: &Option<super::BlastRadius>, f: fn(&super::BlastRadius) -> u64| {
        x.as_ref().map_or("-".to_string(), |x| thousands(f(x)))
    };
    for name in names {
        let (fa, fb) = (of(a, name), of(b, name));
        let scope = fb.as_ref().or(fa.as_ref()).map_or(0, |x| x.in_scope);
        t.rows.push(vec![
            Cell::Code(name.to_string()),
            text(count(&fa, |x| x.targets_failed)),
            text(count(&fb, |x| x.targets_failed)),
            text(count(&fa, |x| x.affected)),
            text(count(&fb, |x| x.affected)),
            text(thousands(scope)),
        ]);
    }
    t.rows.push(vec![
        text("explained by no fault"),
        text(""),
        text(""),
        text(thousands(a.unexplained.count)),
        text(thousands(b.unexplained.count)),
        text(""),
    ]);
    t
}

/// Outcome numbers of a tier or tenant, for the class table.
struct Numbers {
    requests: u64,
    errors: u64,
    finished: u64,
    p99: Option<f64>,
}

fn tier_numbers(r: &Report, name: &str) -> Option<Numbers> {
    r.tiers.iter().find(|t| t.name == name).map(|t| {
        let errors = t.rejected + t.failed + t.timed_out;
        Numbers {
            requests: t.requests,
            errors,
            finished: t.ok + t.throttled + errors,
            p99: t.latency_ms.as_ref().map(|l| l.p99),
        }
    })
}

fn tenant_numbers(r: &Report, name: &str) -> Option<Numbers> {
    r.tenants.iter().find(|t| t.name == name).map(|t| {
        let errors = t.rejected + t.failed + t.timed_out;
        Numbers {
            requests: t.requests,
            errors,
            finished: t.ok + t.throttled + errors,
            p99: t.latency_ms.as_ref().map(|l| l.p99),
        }
    })
}

fn rate(n: &Numbers) -> Option<f64> {
    (n.finished > 0).then(|| n.errors as f64 / n.finished as f64)
}

/// One row per tier, then per tracked tenant: requests, error rate and p99 in A and B, and the
/// change.
pub fn class_table(a: Side<'_>, b: Side<'_>) -> Table {
    let mut t = Table {
        columns: columns(&[
            ("tier / tenant", false),
            ("requests A", true),
            ("requests B", true),
            ("error rate A", true),
            ("error rate B", true),
            ("change", true),
            ("p99 A", true),
            ("p99 B", true),
            ("change", true),
        ]),
        rows: Vec::new(),
    };
    let mut keys: Vec<(bool, String)> = Vec::new();
    for side in [a, b] {
        for tier in &side.report.tiers {
            if !keys.contains(&(true, tier.name.clone())) {
                keys.push((true, tier.name.clone()));
            }
        }
    }
    for side in [a, b] {
        for c in &side.timeline.series.classes {
            if c.tenant.is_some() && !keys.contains(&(false, c.label.clone())) {
                keys.push((false, c.label.clone()));
            }
        }
    }
    for (is_tier, name) in keys {
        let get = |r: &Report| {
            if is_tier {
                tier_numbers(r, &name)
            } else {
                tenant_numbers(r, &name)
            }
        };
        let (na, nb) = (get(a.report), get(b.report));
        let requests =
            |n: &Option<Numbers>| n.as_ref().map_or("-".into(), |n| thousands(n.requests));
        let err = |n: &Option<Numbers>| {
            n.as_ref()
                .map_or("-".into(), |n| percent(n.errors, n.finished))
        };
        let err_change = match (na.as_ref().and_then(rate), nb.as_ref().and_then(rate)) {
            (Some(x), Some(y)) => format!("{:+.2} pp", (y - x) * 100.0),
            _ => "-".to_string(),
        };
        let p99 = |n: &Option<Numbers>| n.as_ref().and_then(|n| n.p99).map_or("-".to_string(), ms);
        let p99_change = match (
            na.as_ref().and_then(|n| n.p99),
            nb.as_ref().and_then(|n| n.p99),
        ) {
            (Some(x), Some(y)) if x > 0.0 && y >= 2.0 * x => format!("×{:.1}", y / x),
            (Some(x), Some(y)) if x > 0.0 => format!("{:+.0}%", (y - x) / x * 100.0),
            _ => "-".to_string(),
        };
        t.rows.push(vec![
            if is_tier {
                text(format!("tier {name}"))
            } else {
                Cell::Code(name.clone())
            },
            text(requests(&na)),
            text(requests(&nb)),
            text(err(&na)),
            text(err(&nb)),
            text(err_change),
            text(p99(&na)),
            text(p99(&nb)),
            text(p99_change),
        ]);
    }
    t
}

/// A table for the terminal: columns padded, statuses upper-case.
pub fn plain(t: &Table, indent: &str) -> String {
    let cell = |c: &Cell| match c {
        Cell::Status(s) => s.to_uppercase(),
        other => other.text().to_string(),
    };
    let mut widths: Vec<usize> = t.columns.iter().map(|c| c.title.chars().count()).collect();
    for row in &t.rows {
        for (i, c) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell(c).chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::from(indent);
        for (i, c) in cells.iter().enumerate() {
            let w = widths.get(i).copied().unwrap_or(0);
            let pad = " ".repeat(w.saturating_sub(c.chars().count()));
            if i > 0 {
                s.push_str("  ");
            }
            if t.columns.get(i).is_some_and(|c| c.numeric) {
                s.push_str(&pad);
                s.push_str(c);
            } else {
                s.push_str(c);
                s.push_str(&pad);
            }
        }
        s.trim_end().to_string()
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}",
        line(t.columns.iter().map(|c| c.title.clone()).collect())
    );
    for row in &t.rows {
        let _ = writeln!(out, "{}", line(row.iter().map(cell).collect()));
    }
    out
}

fn verdicts(a: &Report, b: &Report) -> String {
    format!(
        "A {} → B {}",
        a.verdict.to_uppercase(),
        b.verdict.to_uppercase()
    )
}

fn flipped(a: &Report, b: &Report) -> Vec<String> {
    a.slos
        .iter()
        .filter_map(|sa| {
            let sb = b.slos.iter().find(|s| s.name == sa.name)?;
            (sa.status != sb.status).then(|| {
                format!(
                    "{} ({} → {})",
                    sa.name,
                    sa.status.to_uppercase(),
                    sb.status.to_uppercase()
                )
            })
        })
        .collect()
}

/// The terminal view. `command` is the repro command as the user can run it here;
/// `written` lists files written.
pub fn terminal(a: Side<'_>, b: Side<'_>, command: &str, written: &[String]) -> String {
    let (ra, rb) = (a.report, b.report);
    let mut out = String::new();
    let _ = writeln!(out, "{} — {}", ra.scenario, ra.description);
    let _ = writeln!(
        out,
        "A/B on seed {} (common random numbers: identical arrivals and service times)",
        ra.seed
    );
    let _ = writeln!(out, "  A  as written");
    let _ = writeln!(out, "  B  {}", b_label(rb));
    let _ = writeln!(out, "\nVerdict: {}", verdicts(ra, rb));
    let flips = flipped(ra, rb);
    if flips.is_empty() {
        let _ = writeln!(out, "No SLO flips.");
    } else {
        for f in &flips {
            let _ = writeln!(out, "Flips: {f}");
        }
    }
    let _ = writeln!(out, "\nSLOs (A → B)");
    if ra.slos.is_empty() {
        let _ = writeln!(out, "  (none defined)");
    }
    for slo_a in &ra.slos {
        let slo_b = rb.slos.iter().find(|s| s.name == slo_a.name);
        let change = match slo_b {
            Some(s) if s.status != slo_a.status => "FLIPS",
            Some(_) => "same ",
            None => "     ",
        };
        let _ = writeln!(
            out,
            "  {change} {}  [{}, {}, {}]",
            slo_a.name, slo_a.tenants, slo_a.scope, slo_a.window
        );
        let mut t = Table {
            columns: columns(&[("", false), ("A", false), ("B", false)]),
            rows: Vec::new(),
        };
        for expect in &slo_a.expect {
            let side =
                |slo: Option<&super::SloReport>| match slo.filter(|s| s.expect.contains(expect)) {
                    Some(s) => format!(
                        "{} {}, worst {}",
                        tables::expectation_status(s, expect).to_uppercase(),
                        tables::checks_passed(s, expect),
                        tables::worst_observed(s, expect)
                    ),
                    None => "not in B".to_string(),
                };
            t.rows.push(vec![
                text(expect.clone()),
                text(side(Some(slo_a))),
                text(side(slo_b)),
            ]);
        }
        let table = plain(&t, "        ");
        // Skip the empty heading line.
        out.push_str(table.split_once('\n').map_or("", |(_, rest)| rest));
    }
    let _ = writeln!(
        out,
        "\nTiers and tracked tenants (requests issued after warmup)"
    );
    out.push_str(&plain(&class_table(a, b), "  "));
    let _ = writeln!(out, "\nBlast radius (A → B)");
    out.push_str(&plain(&blast_table(ra, rb), "  "));
    if !written.is_empty() {
        let _ = writeln!(out);
        for path in written {
            let _ = writeln!(out, "wrote {path}");
        }
    }
    let _ = writeln!(
        out,
        "\nVerdict: B {} (A {})",
        rb.verdict.to_uppercase(),
        ra.verdict.to_uppercase()
    );
    let _ = writeln!(out, "Reproduce: {command}");
    out
}

/// `compare.md`.
pub fn markdown(a: Side<'_>, b: Side<'_>, plots: &[String]) -> String {
    let (ra, rb) = (a.report, b.report);
    let status = |s: &str| match s {
        "pass" => "✅ PASS".to_string(),
        "fail" => "❌ **FAIL**".to_string(),
        other => format!("⚠️ **{}**", other.to_uppercase()),
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# {}: A/B on seed {}\n",
        markdown::escape(&ra.scenario),
        ra.seed
    );
    if !ra.description.is_empty() {
        let _ = writeln!(out, "{}\n", markdown::escape(&ra.description));
    }
    let _ = writeln!(out, "| run | overrides | verdict |\n|---|---|---|");
    let _ = writeln!(out, "| A | as written | {} |", status(&ra.verdict));
    let _ = writeln!(
        out,
        "| B | {} | {} |\n",
        markdown::code(&b_label(rb)),
        status(&rb.verdict)
    );
    let _ = writeln!(
        out,
        "Same seed, common random numbers: both runs see identical arrivals and service times, \
         so every difference comes from the overrides.\n"
    );
    let flips = flipped(ra, rb);
    if flips.is_empty() {
        let _ = writeln!(out, "**No SLO flips.**\n");
    } else {
        for f in &flips {
            let _ = writeln!(out, "**Flips:** {}  ", markdown::escape(f));
        }
        out.push('\n');
    }
    let _ = writeln!(out, "## SLOs\n");
    if ra.slos.is_empty() {
        let _ = writeln!(out, "No SLOs defined.");
    } else {
        out.push_str(&markdown::table(&slo_table(ra, rb)));
    }
    let _ = writeln!(
        out,
        "\n## Tiers and tracked tenants (requests issued after warmup)\n"
    );
    out.push_str(&markdown::table(&class_table(a, b)));
    let _ = writeln!(out, "\n## Blast radius\n");
    out.push_str(&markdown::table(&blast_table(ra, rb)));
    let _ = writeln!(out, "\n## Plots (A solid, B dashed)\n");
    for p in plots {
        let _ = writeln!(out, "![{p}]({p})\n");
    }
    let _ = writeln!(out, "## Reproduce\n");
    let _ = writeln!(out, "```sh\n{}\n```\n", repro(rb));
    let _ = writeln!(
        out,
        "Runs: [A](a/index.html) ([summary](a/summary.md)) · [B](b/index.html) ([summary](b/summary.md))"
    );
    out
}

/// `index.html` of the comparison; `plots` are `(relative path, SVG)`, inlined.
pub fn html_page(a: Side<'_>, b: Side<'_>, plots: &[(String, String)]) -> String {
    let (ra, rb) = (a.report, b.report);
    let mut body = String::new();
    let _ = writeln!(
        body,
        "<h1>{}: A/B on seed {}</h1>",
        html::escape(&ra.scenario),
        ra.seed
    );
    if !ra.description.is_empty() {
        let _ = writeln!(body, "<p>{}</p>", html::escape(&ra.description));
    }
    let _ = writeln!(
        body,
        "<table>\n<thead><tr><th>run</th><th>overrides</th><th>verdict</th></tr></thead>\n<tbody>\n\
         <tr><td>A (solid)</td><td>as written</td><td>{}</td></tr>\n\
         <tr><td>B (dashed)</td><td><code>{}</code></td><td>{}</td></tr>\n</tbody>\n</table>",
        html::badge(&ra.verdict),
        html::escape(&b_label(rb)),
        html::badge(&rb.verdict)
    );
    let _ = writeln!(
        body,
        "<p class=\"meta\">Same seed, common random numbers: both runs see identical arrivals and \
         service times, so every difference comes from the overrides.</p>"
    );
    let flips = flipped(ra, rb);
    if flips.is_empty() {
        body.push_str("<p><b>No SLO flips.</b></p>\n");
    } else {
        for f in &flips {
            let _ = writeln!(body, "<p><b>Flips:</b> {}</p>", html::escape(f));
        }
    }
    body.push_str("<h2 id=\"slos\">SLOs</h2>\n");
    if ra.slos.is_empty() {
        body.push_str("<p>No SLOs defined.</p>\n");
    } else {
        body.push_str(&html::table(&slo_table(ra, rb)));
    }
    body.push_str("<h2 id=\"classes\">Tiers and tracked tenants</h2>\n");
    body.push_str(&html::table(&class_table(a, b)));
    body.push_str("<h2 id=\"blast\">Blast radius</h2>\n");
    body.push_str(&html::table(&blast_table(ra, rb)));
    body.push_str("<h2 id=\"plots\">Plots (A solid, B dashed)</h2>\n");
    body.push_str(&html::figures(plots));
    body.push_str("<h2 id=\"repro\">Reproduce</h2>\n");
    let _ = writeln!(body, "<pre><code>{}</code></pre>", html::escape(&repro(rb)));
    body.push_str(
        "<p class=\"meta\">Runs: <a href=\"a/index.html\">A</a> · <a href=\"b/index.html\">B</a> \
         · <a href=\"compare.md\">compare.md</a></p>\n",
    );
    html::page(
        &format!(
            "{} seed {}: A/B ({})",
            ra.scenario,
            ra.seed,
            verdicts(ra, rb)
        ),
        &body,
    )
}

/// Every file of a comparison's folder: `compare.md`, `index.html`, `plots/*.svg` (overlays),
/// and each run's own files under `a/` and `b/`.
pub fn files(a: Side<'_>, b: Side<'_>) -> Vec<OutputFile> {
    let runs = [
        plots::Run {
            timeline: a.timeline,
            name: "A: as written",
        },
        plots::Run {
            timeline: b.timeline,
            name: "B: with the overrides",
        },
    ];
    let plots: Vec<(String, String)> = plots::render_all(&runs, &a.report.scenario, a.report.seed)
        .into_iter()
        .map(|(name, svg)| (format!("plots/{name}"), svg))
        .collect();
    let paths: Vec<String> = plots.iter().map(|(p, _)| p.clone()).collect();
    let mut out = vec![
        OutputFile {
            path: "compare.md".to_string(),
            contents: markdown(a, b, &paths),
        },
        OutputFile {
            path: "index.html".to_string(),
            contents: html_page(a, b, &plots),
        },
    ];
    out.extend(
        plots
            .into_iter()
            .map(|(path, contents)| OutputFile { path, contents }),
    );
    for (prefix, side) in [("a", a), ("b", b)] {
        out.extend(
            super::files(side.report, side.timeline)
                .into_iter()
                .map(|f| OutputFile {
                    path: format!("{prefix}/{}", f.path),
                    contents: f.contents,
                }),
        );
    }
    out
}
