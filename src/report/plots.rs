//! SVG plots of a run over simulated time, drawn with plotters: latency percentiles per tenant
//! class, throughput / throttled / errors per class, who holds the API workers and database
//! connections (stacked by class), and the job backlog when there are jobs. The comparison
//! overlays two runs (A solid, B dashed).
//!
//! Every time axis shades the warmup and each fault window (a light band with its name above
//! the plot, dashed edges drawn over the data so a band never hides it). A class is one tracked
//! tenant or the rest of a tier (the series keep at most 16 tracked tenants), so a plot never
//! has thousands of lines. Output is a pure function of the inputs: same run, same bytes.

use plotters::coord::Shift;
use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::timeline::{LineMetric, SloLine, Timeline};
use crate::text::thousands;

/// Width of every plot, in pixels (the page shows them at this size).
pub const WIDTH: u32 = 960;
const LEGEND_W: u32 = 240;
const HEADER_H: u32 = 58;
const PANEL_H: u32 = 240;
const FONT: &str = "sans-serif";
/// Most SLO threshold lines drawn on one panel: each is a dashed line across the plot, so a
/// thousand SLOs would otherwise make a plot of hundreds of megabytes.
const MAX_THRESHOLD_LINES: usize = 40;
/// Most tenant classes and most SLO thresholds the legend lists; the rest are counted. The
/// legend sets the figure's height, and every dashed fault edge spans it: an unbounded legend
/// made a plot grow with classes × faults.
const MAX_LEGEND_CLASSES: usize = 40;
const MAX_LEGEND_THRESHOLDS: usize = 24;

/// Line colours, one per class (tab10, then darker companions).
const PALETTE: [(u8, u8, u8); 20] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
    (57, 59, 121),
    (99, 121, 57),
    (140, 109, 49),
    (132, 60, 57),
    (123, 65, 115),
    (49, 130, 189),
    (230, 85, 13),
    (49, 163, 84),
    (117, 107, 177),
    (99, 99, 99),
];
const FAULT: RGBColor = RGBColor(214, 39, 40);
const FAULT_TEXT: RGBColor = RGBColor(160, 20, 20);
const GREY_TEXT: RGBColor = RGBColor(90, 90, 90);
const THRESHOLD: RGBColor = RGBColor(40, 40, 40);

fn colour(i: usize) -> RGBColor {
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    RGBColor(r, g, b)
}

/// `c` mixed with white: an opaque fill that stacks without blending.
fn lighten(c: RGBColor, amount: f64) -> RGBColor {
    let f = |x: u8| (f64::from(x) + (255.0 - f64::from(x)) * amount).round() as u8;
    RGBColor(f(c.0), f(c.1), f(c.2))
}

/// A number for an axis tick: `0.5`, `12`, `1,500`.
fn tick(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 {
        let s = thousands(a.round() as u64);
        if v < 0.0 { format!("-{s}") } else { s }
    } else if a >= 10.0 || a == 0.0 {
        format!("{v:.0}")
    } else {
        let s = if a >= 1.0 {
            format!("{v:.1}")
        } else {
            format!("{v:.2}")
        };
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn text_style(size: f64, colour: RGBColor) -> TextStyle<'static> {
    // plotters' SVG backend writes font-size = size / 1.24.
    (FONT, size * 1.24).into_font().color(&colour)
}

fn bold_style(size: f64) -> TextStyle<'static> {
    (FONT, size * 1.24)
        .into_font()
        .style(FontStyle::Bold)
        .color(&BLACK)
}

/// The label at a threshold line: `SLO < 250ms`, or `SLO < 1%` on a percentage axis.
fn short_threshold(t: &SloLine, percent: bool) -> String {
    let op = t
        .expect
        .find(['<', '>'])
        .map_or("", |i| &t.expect[i..])
        .split_whitespace()
        .next()
        .unwrap_or("");
    if percent {
        format!("SLO {op} {}%", tick(t.value))
    } else {
        let rhs = t.expect.find(['<', '>']).map_or("", |i| &t.expect[i..]);
        format!("SLO {}", rhs.trim())
    }
}

/// The legend entry of a threshold: `p99 < 250ms (bystanders, during:spike)`.
fn long_threshold(t: &SloLine) -> String {
    format!("{} ({}, {})", t.expect, t.selection, t.window)
}

/// Roughly how wide `text` is at `size` pixels in a sans-serif font.
fn text_width(text: &str, size: f64) -> i32 {
    (text.chars().count() as f64 * size * 0.58).ceil() as i32
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Scale {
    Linear,
    /// Logarithmic; zeros are drawn on the bottom edge, labelled 0.
    Log,
}

/// One line: a class of one run, value per bucket midpoint (`None`: no data there).
#[derive(Clone, Debug)]
struct Line {
    class: usize,
    run: usize,
    points: Vec<(f64, Option<f64>)>,
}

#[derive(Clone, Debug)]
struct Panel {
    title: String,
    y_desc: String,
    scale: Scale,
    /// Lines are cumulative from the first class up, drawn as stacked areas.
    stacked: bool,
    lines: Vec<Line>,
    capacity: Option<(f64, String)>,
    thresholds: Vec<SloLine>,
    /// The y range never ends below this (so a flat zero still has a scale).
    min_top: f64,
    /// Values are percentages (SLO fractions are drawn as percentages).
    percent: bool,
}

#[derive(Clone, Debug)]
struct Band {
    label: String,
    start: f64,
    end: f64,
    fault: bool,
}

#[derive(Clone, Debug)]
struct Figure {
    title: String,
    subtitle: String,
    panels: Vec<Panel>,
    /// Class labels, by legend index.
    legend: Vec<String>,
    /// Line width of each class (by legend index): a tier's remainder stands for many tenants
    /// (3), a fault's target is the tenant to watch (2), other tracked tenants are context (1).
    weight: Vec<u32>,
    /// Run names; two runs are drawn solid and dashed.
    runs: Vec<String>,
    bands: Vec<Band>,
    x_max: f64,
}

impl Panel {
    fn new(title: &str, y_desc: &str, scale: Scale) -> Panel {
        Panel {
            title: title.to_string(),
            y_desc: y_desc.to_string(),
            scale,
            stacked: false,
            lines: Vec::new(),
            capacity: None,
            thresholds: Vec::new(),
            min_top: 1.0,
            percent: false,
        }
    }

    fn values(&self) -> impl Iterator<Item = f64> + '_ {
        self.lines
            .iter()
            .flat_map(|l| l.points.iter().filter_map(|p| p.1))
            .chain(self.thresholds.iter().map(|t| t.value))
            .chain(self.capacity.iter().map(|c| c.0))
    }

    /// The y range: from 0 (or, on a log scale, a power of ten below the smallest positive
    /// value) to a little above the largest value.
    fn y_range(&self) -> (f64, f64) {
        let max = self.values().fold(0.0f64, f64::max).max(self.min_top);
        match self.scale {
            Scale::Linear => (0.0, max * 1.1),
            Scale::Log => {
                let min = self
                    .values()
                    .filter(|v| *v > 0.0)
                    .fold(f64::INFINITY, f64::min);
                let min = if min.is_finite() { min } else { 1.0 };
                let lo = 10f64.powi(min.log10().floor() as i32 - 1);
                let hi = 10f64.powi((max * 1.5).log10().ceil() as i32);
                (lo, hi)
            }
        }
    }
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// Renders a figure to an SVG document.
fn render(fig: &Figure) -> String {
    let mut svg = String::new();
    match draw(fig, &mut svg) {
        Ok(()) => svg,
        Err(e) => format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"60\">\
             <text x=\"10\" y=\"30\">plot failed: {}</text></svg>\n",
            super::junit::escape(&e)
        ),
    }
}

fn draw(fig: &Figure, buf: &mut String) -> Result<(), String> {
    // Panels share the height; a long legend makes them taller rather than run off the page.
    let legend_h = draw_legend(fig, None)?.max(0) as u32 + 16;
    let height = HEADER_H + (PANEL_H * fig.panels.len().max(1) as u32).max(legend_h);
    {
        let root = SVGBackend::with_string(buf, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        root.draw(&Text::new(
            fig.title.clone(),
            (14, 10),
            text_style(18.0, BLACK).pos(Pos::new(HPos::Left, VPos::Top)),
        ))
        .map_err(err)?;
        root.draw(&Text::new(
            fig.subtitle.clone(),
            (14, 34),
            text_style(12.5, GREY_TEXT).pos(Pos::new(HPos::Left, VPos::Top)),
        ))
        .map_err(err)?;
        let (_, body) = root.split_vertically(HEADER_H);
        let (plots, legend) = body.split_horizontally(WIDTH - LEGEND_W);
        let areas = plots.split_evenly((fig.panels.len().max(1), 1));
        for (panel, area) in fig.panels.iter().zip(areas.iter()) {
            let (lo, hi) = panel.y_range();
            // Room for the widest tick label (large counts such as 1,000,000) and the axis
            // title beside it.
            let widest = text_width(&tick(hi), 13.0).max(text_width(&tick(lo), 13.0));
            let mut builder = ChartBuilder::on(area);
            builder
                .margin_top(38)
                .margin_right(14)
                .margin_bottom(6)
                .x_label_area_size(38)
                .y_label_area_size((widest + 40).max(68) as u32);
            match panel.scale {
                Scale::Linear => {
                    let chart = builder
                        .build_cartesian_2d(0.0..fig.x_max, lo..hi)
                        .map_err(err)?;
                    draw_panel(chart, fig, panel, &root, area)?;
                }
                Scale::Log => {
                    let chart = builder
                        .build_cartesian_2d(0.0..fig.x_max, (lo..hi).log_scale())
                        .map_err(err)?;
                    draw_panel(chart, fig, panel, &root, area)?;
                }
            }
        }
        draw_legend(fig, Some(&legend))?;
        root.present().map_err(err)?;
    }
    Ok(())
}

fn draw_panel<'a, Y>(
    mut chart: ChartContext<'a, SVGBackend<'a>, Cartesian2d<RangedCoordf64, Y>>,
    fig: &Figure,
    panel: &Panel,
    root: &Area<'a>,
    area: &Area<'a>,
) -> Result<(), String>
where
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let (lo, hi) = panel.y_range();
    let log = panel.scale == Scale::Log;
    let y_tick = move |v: &f64| {
        if log && *v <= lo * 1.0001 {
            "0".to_string()
        } else {
            tick(*v)
        }
    };
    let x_tick = |v: &f64| tick(*v);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.08))
        .axis_style(BLACK.mix(0.6))
        .x_labels(12)
        .y_labels(6)
        .x_label_formatter(&x_tick)
        .y_label_formatter(&y_tick)
        .label_style(text_style(13.0, GREY_TEXT))
        .axis_desc_style(text_style(13.0, BLACK))
        .x_desc("simulated time (s)")
        .y_desc(panel.y_desc.clone())
        .draw()
        .map_err(err)?;

    // Bands behind the data.
    for band in &fig.bands {
        let fill = if band.fault {
            FAULT.mix(0.10)
        } else {
            BLACK.mix(0.06)
        };
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(band.start, lo), (band.end, hi)],
                fill.filled(),
            )))
            .map_err(err)?;
    }

    let clamp = |v: f64| if log { v.max(lo) } else { v };
    if panel.stacked {
        // Cumulative lines: draw the top one first, each lower one over it.
        for line in panel.lines.iter().rev() {
            let c = colour(line.class);
            let points: Vec<(f64, f64)> = line
                .points
                .iter()
                .map(|&(x, y)| (x, y.unwrap_or(0.0)))
                .collect();
            chart
                .draw_series(
                    AreaSeries::new(points, 0.0, lighten(c, 0.45).filled())
                        .border_style(c.stroke_width(1)),
                )
                .map_err(err)?;
        }
    } else {
        for line in &panel.lines {
            let width = fig.weight.get(line.class).copied().unwrap_or(2);
            let style = colour(line.class).stroke_width(width);
            // Consecutive buckets with data form one segment; a lone point is a dot.
            let mut segments: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
            for &(x, y) in &line.points {
                match y {
                    Some(y) => segments
                        .last_mut()
                        .map(|s| s.push((x, clamp(y))))
                        .unwrap_or(()),
                    None => segments.push(Vec::new()),
                }
            }
            for segment in segments.into_iter().filter(|s| !s.is_empty()) {
                if segment.len() == 1 {
                    chart
                        .draw_series(std::iter::once(Circle::new(
                            segment[0],
                            2,
                            colour(line.class).filled(),
                        )))
                        .map_err(err)?;
                } else if line.run == 0 {
                    chart
                        .draw_series(LineSeries::new(segment, style))
                        .map_err(err)?;
                } else {
                    chart
                        .draw_series(DashedLineSeries::new(segment, 7, 5, style))
                        .map_err(err)?;
                }
            }
        }
    }

    // Capacity and SLO thresholds over the data.
    if let Some((value, label)) = &panel.capacity {
        chart
            .draw_series(DashedLineSeries::new(
                vec![(0.0, *value), (fig.x_max, *value)],
                3,
                3,
                BLACK.mix(0.7).stroke_width(1),
            ))
            .map_err(err)?;
        let at = chart.plotting_area().map_coordinate(&(fig.x_max, *value));
        root.draw(&Text::new(
            label.clone(),
            (at.0 - 4, at.1 - 3),
            text_style(12.0, GREY_TEXT).pos(Pos::new(HPos::Right, VPos::Bottom)),
        ))
        .map_err(err)?;
    }
    let (x_px, y_px) = chart.plotting_area().get_pixel_range();
    // Label each threshold value once: two SLOs with the same threshold share a label.
    let mut labelled: Vec<String> = Vec::new();
    for t in &panel.thresholds {
        let points = vec![(t.start_s, t.value), (t.end_s, t.value)];
        // A white halo keeps the threshold visible over dense lines.
        chart
            .draw_series(LineSeries::new(
                points.clone(),
                WHITE.mix(0.85).stroke_width(5),
            ))
            .map_err(err)?;
        chart
            .draw_series(DashedLineSeries::new(
                points,
                9,
                4,
                THRESHOLD.stroke_width(2),
            ))
            .map_err(err)?;
        let end = chart.plotting_area().map_coordinate(&(t.end_s, t.value));
        let label = short_threshold(t, panel.percent);
        if labelled.contains(&label) {
            continue;
        }
        labelled.push(label.clone());
        let width = text_width(&label, 12.0);
        let start = chart.plotting_area().map_coordinate(&(t.start_s, t.value));
        // Beside the line where there is room (outside its window), else just above its end;
        // never below the bottom edge.
        let y = (end.1 - 10).max(y_px.start + 8);
        let (anchor, x, left) = if end.0 + 8 + width <= x_px.end {
            (HPos::Left, end.0 + 6, end.0 + 6)
        } else if start.0 - 8 - width >= x_px.start {
            (HPos::Right, start.0 - 6, start.0 - 6 - width)
        } else {
            (HPos::Right, end.0 - 4, end.0 - 4 - width)
        };
        root.draw(&Rectangle::new(
            [(left - 3, y - 8), (left + width + 3, y + 8)],
            WHITE.mix(0.85).filled(),
        ))
        .map_err(err)?;
        root.draw(&Text::new(
            label,
            (x, y),
            text_style(12.0, THRESHOLD).pos(Pos::new(anchor, VPos::Center)),
        ))
        .map_err(err)?;
    }

    // Band edges over the data, names above the plot.
    let mut next_free = i32::MIN;
    for band in &fig.bands {
        if band.fault {
            for x in [band.start, band.end] {
                if x > 0.0 && x < fig.x_max {
                    chart
                        .draw_series(DashedLineSeries::new(
                            vec![(x, lo), (x, hi)],
                            4,
                            4,
                            FAULT.mix(0.75).stroke_width(1),
                        ))
                        .map_err(err)?;
                }
            }
        }
        let left = chart.plotting_area().map_coordinate(&(band.start, hi)).0;
        let x = (left + 3).max(next_free).min(x_px.end - 20);
        let style = if band.fault {
            text_style(12.5, FAULT_TEXT)
        } else {
            text_style(12.5, GREY_TEXT)
        };
        root.draw(&Text::new(
            band.label.clone(),
            (x, y_px.start - 3),
            style.pos(Pos::new(HPos::Left, VPos::Bottom)),
        ))
        .map_err(err)?;
        next_free = x + text_width(&band.label, 12.5) + 10;
    }

    // The panel title, top left.
    let base = area.get_base_pixel();
    root.draw(&Text::new(
        panel.title.clone(),
        (base.0 + 8, base.1 + 6),
        bold_style(14.0).pos(Pos::new(HPos::Left, VPos::Top)),
    ))
    .map_err(err)?;
    Ok(())
}

fn truncate(label: &str, max: usize) -> String {
    if label.chars().count() <= max {
        label.to_string()
    } else {
        let mut s: String = label.chars().take(max - 1).collect();
        s.push('…');
        s
    }
}

/// Draws the legend into `area`, or with `None` only measures it; returns its height.
fn draw_legend(fig: &Figure, area: Option<&Area<'_>>) -> Result<i32, String> {
    macro_rules! put {
        ($element:expr) => {
            if let Some(area) = area {
                area.draw($element).map_err(err)?;
            }
        };
    }
    let stacked = fig.panels.iter().any(|p| p.stacked);
    let mut y = 44;
    let x = 10;
    let heading = |s: &str, y: i32| {
        Text::new(
            s.to_string(),
            (x, y),
            bold_style(13.0).pos(Pos::new(HPos::Left, VPos::Center)),
        )
    };
    put!(&heading("tenant class", y));
    y += 22;
    for (i, label) in fig.legend.iter().enumerate().take(MAX_LEGEND_CLASSES) {
        let c = colour(i);
        if stacked {
            put!(&Rectangle::new(
                [(x, y - 6), (x + 22, y + 6)],
                lighten(c, 0.45).filled(),
            ));
            put!(&Rectangle::new(
                [(x, y - 6), (x + 22, y + 6)],
                c.stroke_width(1),
            ));
        } else {
            let width = fig.weight.get(i).copied().unwrap_or(2) + 1;
            put!(&PathElement::new(
                vec![(x, y), (x + 22, y)],
                c.stroke_width(width),
            ));
        }
        // A long label wraps (a tenant name that cannot is cut short).
        for line in wrap(label, 28).iter().take(2) {
            put!(&Text::new(
                truncate(line, 30),
                (x + 30, y),
                text_style(13.0, BLACK).pos(Pos::new(HPos::Left, VPos::Center)),
            ));
            y += 16;
        }
        y += 4;
    }
    if fig.legend.len() > MAX_LEGEND_CLASSES {
        put!(&Text::new(
            format!(
                "… and {} more classes",
                thousands((fig.legend.len() - MAX_LEGEND_CLASSES) as u64)
            ),
            (x + 30, y),
            text_style(13.0, GREY_TEXT).pos(Pos::new(HPos::Left, VPos::Center)),
        ));
        y += 20;
    }
    y += 10;
    if fig.runs.len() > 1 {
        put!(&heading("run", y));
        y += 22;
        for (i, run) in fig.runs.iter().enumerate() {
            let style = BLACK.mix(0.8).stroke_width(2);
            if i == 0 {
                put!(&PathElement::new(vec![(x, y), (x + 22, y)], style));
            } else {
                for k in 0..2 {
                    let x0 = x + k * 13;
                    put!(&PathElement::new(vec![(x0, y), (x0 + 8, y)], style));
                }
            }
            put!(&Text::new(
                truncate(run, 28),
                (x + 30, y),
                text_style(13.0, BLACK).pos(Pos::new(HPos::Left, VPos::Center)),
            ));
            y += 20;
        }
        y += 10;
    }
    let mut marks: Vec<(u8, &str)> = Vec::new();
    if fig.bands.iter().any(|b| b.fault) {
        marks.push((0, "fault window"));
    }
    if fig.bands.iter().any(|b| !b.fault) {
        marks.push((1, "warmup (not judged)"));
    }
    let mut slo_entries: Vec<String> = Vec::new();
    let mut seen_entries = std::collections::BTreeSet::new();
    for t in fig.panels.iter().flat_map(|p| p.thresholds.iter()) {
        let entry = long_threshold(t);
        if seen_entries.insert(entry.clone()) {
            slo_entries.push(entry);
        }
    }
    let more_entries = slo_entries.len().saturating_sub(MAX_LEGEND_THRESHOLDS);
    slo_entries.truncate(MAX_LEGEND_THRESHOLDS);
    if !slo_entries.is_empty() {
        marks.push((2, "SLO threshold (its window):"));
    }
    if fig.panels.iter().any(|p| p.capacity.is_some()) {
        marks.push((3, "capacity"));
    }
    for (kind, label) in marks {
        match kind {
            0 => {
                put!(&Rectangle::new(
                    [(x, y - 7), (x + 22, y + 7)],
                    FAULT.mix(0.12).filled(),
                ));
                put!(&PathElement::new(
                    vec![(x, y - 7), (x, y + 7)],
                    FAULT.mix(0.75).stroke_width(1),
                ));
            }
            1 => {
                put!(&Rectangle::new(
                    [(x, y - 7), (x + 22, y + 7)],
                    BLACK.mix(0.08).filled(),
                ));
            }
            2 => {
                for k in 0..2 {
                    let x0 = x + k * 13;
                    put!(&PathElement::new(
                        vec![(x0, y), (x0 + 9, y)],
                        THRESHOLD.stroke_width(2),
                    ));
                }
            }
            _ => {
                for k in 0..4 {
                    let x0 = x + k * 6;
                    put!(&PathElement::new(
                        vec![(x0, y), (x0 + 3, y)],
                        BLACK.mix(0.7).stroke_width(1),
                    ));
                }
            }
        }
        put!(&Text::new(
            label.to_string(),
            (x + 30, y),
            text_style(13.0, BLACK).pos(Pos::new(HPos::Left, VPos::Center)),
        ));
        y += 20;
        if kind == 2 {
            for entry in &slo_entries {
                for line in wrap(entry, 30) {
                    put!(&Text::new(
                        line,
                        (x + 30, y),
                        text_style(12.0, GREY_TEXT).pos(Pos::new(HPos::Left, VPos::Center)),
                    ));
                    y += 16;
                }
                y += 4;
            }
            if more_entries > 0 {
                put!(&Text::new(
                    format!("… and {} more", thousands(more_entries as u64)),
                    (x + 30, y),
                    text_style(12.0, GREY_TEXT).pos(Pos::new(HPos::Left, VPos::Center)),
                ));
                y += 20;
            }
        }
    }
    Ok(y)
}

/// Splits `text` into lines of at most `width` characters at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// A run to draw: its timeline and its name in legends (`A: as written`).
#[derive(Clone, Copy, Debug)]
pub struct Run<'a> {
    /// The run's course in time.
    pub timeline: &'a Timeline<'a>,
    /// Short name for legends.
    pub name: &'a str,
}

/// Legend index of every class of every run, matched across runs by label.
fn legend(runs: &[Run<'_>]) -> (Vec<String>, Vec<Vec<usize>>) {
    let (labels, index, _) = legend_with_kinds(runs);
    (labels, index)
}

/// [`legend`], and the line width of each legend entry (see [`Figure::weight`]).
fn legend_with_kinds(runs: &[Run<'_>]) -> (Vec<String>, Vec<Vec<usize>>, Vec<u32>) {
    let mut labels: Vec<String> = Vec::new();
    let mut weight: Vec<u32> = Vec::new();
    let mut index = Vec::new();
    // Found through maps: searches per class were classes × (classes + fault targets).
    let mut label_index: std::collections::BTreeMap<String, usize> =
        std::collections::BTreeMap::new();
    for run in runs {
        let targets: std::collections::BTreeSet<&str> = run
            .timeline
            .faults
            .iter()
            .flat_map(|f| f.targets.iter().map(String::as_str))
            .collect();
        let mut of_run = Vec::new();
        for c in 0..run.timeline.series.classes.len() {
            let label = run.timeline.class_label(c);
            let i = match label_index.get(&label) {
                Some(&i) => i,
                None => {
                    let class = &run.timeline.series.classes[c];
                    let target = targets.contains(class.label.as_str());
                    label_index.insert(label.clone(), labels.len());
                    weight.push(match (class.tenant, target) {
                        (None, _) => 3,
                        (Some(_), true) => 2,
                        (Some(_), false) => 1,
                    });
                    labels.push(label);
                    labels.len() - 1
                }
            };
            of_run.push(i);
        }
        index.push(of_run);
    }
    (labels, index, weight)
}

fn bands(runs: &[Run<'_>]) -> Vec<Band> {
    let mut out: Vec<Band> = Vec::new();
    let mut warmups: Vec<f64> = runs.iter().map(|r| r.timeline.warmup_s).collect();
    warmups.dedup();
    for (i, w) in warmups.iter().enumerate() {
        if *w > 0.0 {
            out.push(Band {
                label: if warmups.len() > 1 {
                    format!("warmup ({})", runs[i].name)
                } else {
                    "warmup".to_string()
                },
                start: 0.0,
                end: *w,
                fault: false,
            });
        }
    }
    for (r, run) in runs.iter().enumerate() {
        for f in &run.timeline.faults {
            let same_in_all = runs.iter().all(|o| {
                o.timeline
                    .faults
                    .iter()
                    .any(|g| g.name == f.name && g.start_s == f.start_s && g.end_s == f.end_s)
            });
            if same_in_all && r > 0 {
                continue;
            }
            out.push(Band {
                label: if same_in_all {
                    f.name.clone()
                } else {
                    format!("{} ({})", f.name, run.name)
                },
                start: f.start_s,
                end: f.end_s,
                fault: true,
            });
        }
    }
    out
}

fn bucket_seconds(runs: &[Run<'_>]) -> String {
    let mut widths: Vec<String> = runs
        .iter()
        .map(|r| tick(r.timeline.series.bucket.as_secs_f64()))
        .collect();
    widths.dedup();
    format!("{} s buckets", widths.join(" / "))
}

/// Values of one class of one run per bucket, at bucket midpoints.
fn points(
    timeline: &Timeline<'_>,
    class: usize,
    value: impl Fn(&crate::model::series::Bucket, f64) -> Option<f64>,
) -> Vec<(f64, Option<f64>)> {
    timeline
        .series
        .class_buckets(class)
        .iter()
        .enumerate()
        .map(|(b, bucket)| {
            let (start, end) = timeline.bucket_span(b);
            ((start + end) / 2.0, value(bucket, (end - start).max(1e-9)))
        })
        .collect()
}

fn lines(
    runs: &[Run<'_>],
    index: &[Vec<usize>],
    value: impl Fn(&crate::model::series::Bucket, f64) -> Option<f64> + Copy,
) -> Vec<Line> {
    let mut out = Vec::new();
    for ((r, run), of_run) in runs.iter().enumerate().zip(index) {
        for (c, &class) in of_run.iter().enumerate() {
            let points = points(run.timeline, c, value);
            if points.iter().any(|p| p.1.is_some()) {
                out.push(Line {
                    class,
                    run: r,
                    points,
                });
            }
        }
    }
    out
}

/// The distinct SLO lines of `metric`, in order, at most [`MAX_THRESHOLD_LINES`] of them.
fn thresholds(runs: &[Run<'_>], metric: LineMetric, scale: f64) -> Vec<SloLine> {
    let mut out: Vec<SloLine> = Vec::new();
    // Seen lines by their fields (a search of `out` per line was quadratic in the SLO lines).
    let mut seen = std::collections::BTreeSet::new();
    for run in runs {
        for t in run.timeline.slo_lines.iter().filter(|t| t.metric == metric) {
            if out.len() == MAX_THRESHOLD_LINES {
                return out;
            }
            let t = SloLine {
                value: t.value * scale,
                ..t.clone()
            };
            let key = (
                t.value.to_bits(),
                t.start_s.to_bits(),
                t.end_s.to_bits(),
                t.expect.clone(),
                t.selection.clone(),
                t.window.clone(),
            );
            if seen.insert(key) {
                out.push(t);
            }
        }
    }
    out
}

fn figure(runs: &[Run<'_>], title: String, detail: &str, panels: Vec<Panel>) -> Figure {
    let (legend, _, weight) = legend_with_kinds(runs);
    let x_max = runs
        .iter()
        .map(|r| r.timeline.duration_s)
        .fold(0.0f64, f64::max)
        .max(1e-3);
    let subtitle = if runs.len() > 1 {
        format!(
            "{detail} · {} · A solid, B dashed · shaded: warmup and fault windows",
            bucket_seconds(runs)
        )
    } else {
        format!(
            "{detail} · {} · shaded: warmup and fault windows",
            bucket_seconds(runs)
        )
    };
    Figure {
        title,
        subtitle,
        panels,
        legend,
        weight,
        runs: runs.iter().map(|r| r.name.to_string()).collect(),
        bands: bands(runs),
        x_max,
    }
}

fn title(runs: &[Run<'_>], scenario: &str, seed: u64, what: &str) -> String {
    if runs.len() > 1 {
        format!("{scenario} · seed {seed} · A vs B: {what}")
    } else {
        format!("{scenario} · seed {seed}: {what}")
    }
}

/// Latency percentiles of ok requests per class: p99 and p50, and any percentile an SLO uses.
fn latency(runs: &[Run<'_>], scenario: &str, seed: u64) -> Figure {
    let (_, index) = legend(runs);
    let mut percentiles = vec![99.0, 50.0];
    for run in runs {
        for t in &run.timeline.slo_lines {
            if let LineMetric::Latency(p) = t.metric {
                percentiles.push(p);
            }
        }
    }
    // Sorted, then deduplicated: a search per SLO line was quadratic in the SLO lines.
    percentiles.sort_by(|a, b| b.total_cmp(a));
    percentiles.dedup();
    percentiles.truncate(4);
    let panels = percentiles
        .iter()
        .map(|&p| {
            let name = format!("p{}", tick(p));
            let mut panel = Panel::new(
                &format!("{name} latency of ok requests"),
                &format!("{name} latency (ms)"),
                Scale::Linear,
            );
            panel.lines = lines(runs, &index, move |b, _| {
                b.latency_percentile(p).map(|d| d.as_millis_f64())
            });
            panel.thresholds = thresholds(runs, LineMetric::Latency(p), 1.0);
            panel
        })
        .collect();
    figure(
        runs,
        title(runs, scenario, seed, "latency over time"),
        "end to end (retries included), per tenant class, by when requests finished",
        panels,
    )
}

/// Ok responses per second (log scale), throttled and error shares of finished requests.
fn throughput(runs: &[Run<'_>], scenario: &str, seed: u64) -> Figure {
    let (_, index) = legend(runs);
    let mut ok = Panel::new(
        "Throughput: ok responses per second (log scale)",
        "ok responses/s",
        Scale::Log,
    );
    ok.lines = lines(runs, &index, |b, secs| Some(b.ok as f64 / secs));
    let share = |part: fn(&crate::model::series::Bucket) -> u64| {
        move |b: &crate::model::series::Bucket, _: f64| {
            let finished = b.ok + b.throttled + b.errors;
            (finished > 0).then(|| part(b) as f64 * 100.0 / finished as f64)
        }
    };
    let mut throttled = Panel::new(
        "Throttled (429 after retries), % of finished requests",
        "throttled (%)",
        Scale::Linear,
    );
    throttled.lines = lines(runs, &index, share(|b| b.throttled));
    throttled.thresholds = thresholds(runs, LineMetric::ThrottleRate, 100.0);
    throttled.percent = true;
    let mut errors = Panel::new(
        "Errors (503, failed, timed out), % of finished requests",
        "errors (%)",
        Scale::Linear,
    );
    errors.lines = lines(runs, &index, share(|b| b.errors));
    errors.thresholds = thresholds(runs, LineMetric::ErrorRate, 100.0);
    errors.percent = true;
    figure(
        runs,
        title(runs, scenario, seed, "throughput, throttling and errors"),
        "outcomes by the time requests finished, per tenant class",
        vec![ok, throttled, errors],
    )
}

#[derive(Clone, Copy)]
enum Held {
    Workers,
    Connections,
    Backlog,
}

fn held(b: &crate::model::series::Bucket, what: Held) -> u64 {
    match what {
        Held::Workers => b.worker_ns,
        Held::Connections => b.connection_ns,
        Held::Backlog => b.backlog_ns,
    }
}

/// Average units held per bucket, per class: stacked areas for one run, lines for two.
fn occupancy_panel(
    runs: &[Run<'_>],
    index: &[Vec<usize>],
    what: Held,
    title: &str,
    y_desc: &str,
) -> Panel {
    let mut panel = Panel::new(title, y_desc, Scale::Linear);
    let average = move |b: &crate::model::series::Bucket, secs: f64| {
        Some(held(b, what) as f64 / (secs * 1e9))
    };
    let mut lines = lines(runs, index, average);
    if runs.len() == 1 {
        panel.stacked = true;
        let mut total: Vec<f64> = Vec::new();
        for line in &mut lines {
            total.resize(line.points.len(), 0.0);
            for (p, t) in line.points.iter_mut().zip(total.iter_mut()) {
                *t += p.1.unwrap_or(0.0);
                p.1 = Some(*t);
            }
        }
    }
    panel.lines = lines;
    panel
}

fn occupancy(runs: &[Run<'_>], scenario: &str, seed: u64) -> Figure {
    let (_, index) = legend(runs);
    let mut workers = occupancy_panel(
        runs,
        &index,
        Held::Workers,
        "API workers held (average busy workers per bucket)",
        "busy workers",
    );
    if let Some(r) = runs.first() {
        workers.capacity = Some((
            r.timeline.workers as f64,
            format!("{} workers", thousands(r.timeline.workers)),
        ));
    }
    let mut connections = occupancy_panel(
        runs,
        &index,
        Held::Connections,
        "Database connections held (average busy connections per bucket)",
        "busy connections",
    );
    if let Some(r) = runs.first() {
        connections.capacity = Some((
            r.timeline.connections as f64,
            format!("{} connections", thousands(r.timeline.connections)),
        ));
    }
    let detail = if runs.len() > 1 {
        "who holds the shared pools, per tenant class"
    } else {
        "who holds the shared pools: stacked by tenant class"
    };
    figure(
        runs,
        title(runs, scenario, seed, "API pool and database occupancy"),
        detail,
        vec![workers, connections],
    )
}

fn has_backlog(runs: &[Run<'_>]) -> bool {
    runs.iter().any(|r| {
        (0..r.timeline.series.classes.len()).any(|c| {
            r.timeline
                .series
                .class_buckets(c)
                .iter()
                .any(|b| b.backlog_ns > 0)
        })
    })
}

fn backlog(runs: &[Run<'_>], scenario: &str, seed: u64) -> Figure {
    let (_, index) = legend(runs);
    let panel = occupancy_panel(
        runs,
        &index,
        Held::Backlog,
        "Background jobs waiting (average queued jobs per bucket)",
        "queued jobs",
    );
    figure(
        runs,
        title(runs, scenario, seed, "job backlog"),
        "job backlog per tenant class",
        vec![panel],
    )
}

/// The plots of one run or an overlay of two (A solid, B dashed): `(file name, SVG)` pairs,
/// `latency.svg`, `throughput.svg`, `occupancy.svg`, and `backlog.svg` when jobs queued.
/// `scenario` and `seed` title them.
pub fn render_all(runs: &[Run<'_>], scenario: &str, seed: u64) -> Vec<(String, String)> {
    let mut out = vec![
        (
            "latency.svg".to_string(),
            render(&latency(runs, scenario, seed)),
        ),
        (
            "throughput.svg".to_string(),
            render(&throughput(runs, scenario, seed)),
        ),
        (
            "occupancy.svg".to_string(),
            render(&occupancy(runs, scenario, seed)),
        ),
    ];
    if has_backlog(runs) {
        out.push((
            "backlog.svg".to_string(),
            render(&backlog(runs, scenario, seed)),
        ));
    }
    out
}

/// Every plot file name [`render_all`] may produce, so stale ones can be removed.
pub const FILE_NAMES: [&str; 4] = [
    "latency.svg",
    "throughput.svg",
    "occupancy.svg",
    "backlog.svg",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_read_well() {
        assert_eq!(tick(0.0), "0");
        assert_eq!(tick(0.5), "0.5");
        assert_eq!(tick(2.0), "2");
        assert_eq!(tick(2.5), "2.5");
        assert_eq!(tick(250.0), "250");
        assert_eq!(tick(1500.0), "1,500");
    }

    #[test]
    fn lighten_goes_towards_white() {
        assert_eq!(lighten(RGBColor(0, 100, 255), 0.5), RGBColor(128, 178, 255));
    }
}
