//! SVG plots of a run over simulated time, drawn with plotters: latency percentiles per tenant
//! class, throughput / throttled / errors per class, who holds the API workers and database
//! connections (stacked by class), how busy each pool and database was (small multiples of the
//! busiest, the rest summarised), and the job backlog when there are jobs. The comparison
//! overlays two runs (A solid, B dashed).
//!
//! Made to stay readable at thousands of tenants and dozens of faults:
//! - a class is one tracked tenant or the rest of a tier, so a plot has a handful of lines;
//!   tracked tenants get distinct colours, a tier's remainder a grey of its own;
//! - fault windows are drawn once per figure in a strip of lanes above the panels (a bar per
//!   fault, named inside or beside it, numbered with a key in the legend when there is no room)
//!   and, when there are few, shaded in the panels too;
//! - a panel whose values span more than two orders of magnitude gets a log scale;
//! - the time axis is in seconds, minutes or hours as the run's length asks, or clock time when
//!   the scenario gives a start time ([`TimeAxis`]);
//! - a solid line or stacked area keeps only the points where it bends in pixels
//!   (`without_collinear`): the same drawing with about half the points to format.
//!
//! Output is a pure function of the inputs: same run, same bytes.

use plotters::coord::Shift;
use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::timeline::{LineMetric, SloLine, Timeline};
use crate::model::series::Place;
use crate::text::thousands;

/// Width of every plot, in pixels (the page shows them at this size).
pub const WIDTH: u32 = 960;
const LEGEND_W: u32 = 240;
const HEADER_H: u32 = 58;
const PANEL_H: u32 = 240;
/// Height of a panel of a small-multiples grid.
const SMALL_PANEL_H: u32 = 170;
/// Height of one lane of the fault strip.
const LANE_H: u32 = 16;
/// Most lanes in the fault strip; further overlapping faults share the least busy lane.
const MAX_LANES: usize = 8;
/// Up to this many faults, each is also shaded and edged in the panels; beyond it, only the
/// strip above the panels shows them.
const FEW_FAULTS: usize = 6;
/// Pools (and databases) drawn on their own in the occupancy grid; the rest are summarised.
const BUSIEST_POOLS: usize = 6;
const BUSIEST_DATABASES: usize = 4;
/// A panel whose largest positive value is more than this times its smallest gets a log scale.
const LOG_SPAN: f64 = 100.0;
const FONT: &str = "sans-serif";
/// Most SLO threshold lines drawn on one panel: each is a dashed line across the plot, so a
/// thousand SLOs would otherwise make a plot of hundreds of megabytes.
const MAX_THRESHOLD_LINES: usize = 40;
/// Most tenant classes and most SLO thresholds the legend lists; the rest are counted. The
/// legend sets the figure's height, and every dashed fault edge spans it: an unbounded legend
/// made a plot grow with classes × faults.
const MAX_LEGEND_CLASSES: usize = 40;
const MAX_LEGEND_THRESHOLDS: usize = 24;

/// Colours of tracked tenants: distinct hues (tab10 without its red, which marks faults, and
/// grey, which marks tiers; with teal and navy added).
const TENANT_PALETTE: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (188, 189, 34),
    (23, 190, 207),
    (0, 128, 128),
    (0, 0, 128),
];
/// Colours of a tier's remainder (many tenants as one line): greys, dark to light.
const TIER_PALETTE: [(u8, u8, u8); 4] =
    [(40, 40, 40), (110, 110, 110), (160, 160, 160), (75, 75, 75)];
const FAULT: RGBColor = RGBColor(214, 39, 40);
const FAULT_TEXT: RGBColor = RGBColor(160, 20, 20);
const GREY_TEXT: RGBColor = RGBColor(90, 90, 90);
const THRESHOLD: RGBColor = RGBColor(40, 40, 40);
const POOL: RGBColor = RGBColor(31, 119, 180);
const DATABASE: RGBColor = RGBColor(44, 160, 44);

fn rgb((r, g, b): (u8, u8, u8)) -> RGBColor {
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

/// How the time axis reads: seconds, minutes or hours of simulated time, or clock time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimeAxis {
    /// Seconds per axis unit (1, 60 or 3,600).
    pub unit_s: f64,
    /// When the run starts, seconds after midnight: the axis then shows clock time.
    pub clock_start_s: Option<f64>,
}

impl TimeAxis {
    /// The axis for a run of `duration_s` seconds: seconds up to 10 minutes, minutes up to 3
    /// hours, hours beyond; with `clock_start_s`, clock time (`09:30`) in minutes or hours.
    pub fn new(duration_s: f64, clock_start_s: Option<f64>) -> TimeAxis {
        let unit_s = if duration_s > 3.0 * 3600.0 {
            3600.0
        } else if duration_s > 600.0 || clock_start_s.is_some() {
            60.0
        } else {
            1.0
        };
        TimeAxis {
            unit_s,
            clock_start_s,
        }
    }

    /// The axis coordinate of `t` seconds into the run.
    pub fn x(&self, t_s: f64) -> f64 {
        (self.clock_start_s.unwrap_or(0.0) + t_s) / self.unit_s
    }

    /// The axis title.
    pub fn title(&self) -> &'static str {
        match (self.clock_start_s.is_some(), self.unit_s) {
            (true, _) => "clock time",
            (false, u) if u >= 3600.0 => "simulated time (h)",
            (false, u) if u >= 60.0 => "simulated time (min)",
            _ => "simulated time (s)",
        }
    }

    /// A tick label for axis coordinate `x`: `90`, `1.5`, or `09:30` in clock time (past
    /// midnight it wraps to the next day's hours).
    pub fn label(&self, x: f64) -> String {
        if self.clock_start_s.is_none() {
            return tick(x);
        }
        let minutes = (x * self.unit_s / 60.0).round() as i64;
        let minutes = minutes.rem_euclid(24 * 60);
        format!("{:02}:{:02}", minutes / 60, minutes % 60)
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

/// The label at a threshold line: `SLO < 250ms`, or `SLO < 1%` on a percentage axis (an
/// availability floor is drawn as the error-rate ceiling it implies: `>= 99.9%` is `<= 0.1%`).
fn short_threshold(t: &SloLine, percent: bool) -> String {
    let op = t
        .expect
        .find(['<', '>'])
        .map_or("", |i| &t.expect[i..])
        .split_whitespace()
        .next()
        .unwrap_or("");
    let flipped = match op {
        ">=" => "<=",
        ">" => "<",
        "<=" => ">=",
        _ => ">",
    };
    let op = if t.expect.trim_start().starts_with("availability") {
        flipped
    } else {
        op
    };
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

/// One line: a value per bucket midpoint (`None`: no data there), in axis units.
#[derive(Clone, Debug)]
struct Line {
    colour: RGBColor,
    width: u32,
    /// Run B of a comparison.
    dashed: bool,
    points: Vec<(f64, Option<f64>)>,
}

#[derive(Clone, Debug)]
struct Panel {
    title: String,
    y_desc: String,
    scale: Scale,
    /// Lines are cumulative from the first up, drawn as stacked areas.
    stacked: bool,
    lines: Vec<Line>,
    capacity: Option<(f64, String)>,
    thresholds: Vec<SloLine>,
    /// The y range never ends below this (so a flat zero still has a scale).
    min_top: f64,
    /// Values are percentages (SLO fractions are drawn as percentages).
    percent: bool,
    /// A gap in a grid: nothing is drawn.
    blank: bool,
    /// [`Panel::y_range`], computed at its first use, once the panel is built: the layout asks
    /// for it some six times per panel (label widths for the strip, the legend and the grid),
    /// and each asking went over every point.
    y_range: std::cell::OnceCell<(f64, f64)>,
}

/// A shaded span of a panel, in axis units.
#[derive(Clone, Debug, PartialEq)]
struct Band {
    start: f64,
    end: f64,
    fault: bool,
    /// Dashed edges (each fault's own, when there are few).
    edges: bool,
}

/// A fault in the strip above the panels, in axis units.
#[derive(Clone, Debug, PartialEq)]
struct Mark {
    label: String,
    /// Its number in the scenario's fault list (1-based), shown when the name does not fit.
    number: usize,
    start: f64,
    end: f64,
}

/// How a legend entry is drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Swatch {
    Line,
    Area,
}

#[derive(Clone, Debug)]
struct LegendEntry {
    label: String,
    colour: RGBColor,
    width: u32,
    swatch: Swatch,
}

#[derive(Clone, Debug)]
struct Figure {
    title: String,
    subtitle: String,
    panels: Vec<Panel>,
    /// Panels per row (1, or 2 for small multiples).
    columns: usize,
    legend_title: String,
    legend: Vec<LegendEntry>,
    /// Run names; two runs are drawn solid and dashed.
    runs: Vec<String>,
    bands: Vec<Band>,
    marks: Vec<Mark>,
    axis: TimeAxis,
    x_min: f64,
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
            blank: false,
            y_range: std::cell::OnceCell::new(),
        }
    }

    fn values(&self) -> impl Iterator<Item = f64> + '_ {
        self.lines
            .iter()
            .flat_map(|l| l.points.iter().filter_map(|p| p.1))
            .chain(self.thresholds.iter().map(|t| t.value))
            .chain(self.capacity.iter().map(|c| c.0))
    }

    /// A log scale when the data span more than [`LOG_SPAN`] (a small tenant's backlog beside
    /// a large one's, a p99 that jumps from milliseconds to seconds); stacked areas stay linear.
    fn auto_scale(mut self) -> Panel {
        // The range depends on the scale chosen here.
        self.y_range = std::cell::OnceCell::new();
        if self.stacked {
            return self;
        }
        let positive = self
            .lines
            .iter()
            .flat_map(|l| l.points.iter().filter_map(|p| p.1))
            .filter(|v| *v > 0.0);
        let (lo, hi) = positive.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        if lo.is_finite() && hi > lo * LOG_SPAN {
            self.scale = Scale::Log;
            if !self.title.contains("log scale") {
                self.title.push_str(" (log scale)");
            }
        }
        self
    }

    /// The y range: from 0 (or, on a log scale, a power of ten below the smallest positive
    /// value) to a little above the largest value.
    fn y_range(&self) -> (f64, f64) {
        *self.y_range.get_or_init(|| self.compute_y_range())
    }

    fn compute_y_range(&self) -> (f64, f64) {
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

    /// Pixels the widest y tick label needs.
    fn tick_width(&self) -> i32 {
        let (lo, hi) = self.y_range();
        text_width(&tick(hi), 13.0).max(text_width(&tick(lo), 13.0))
    }
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// A value per bucket midpoint (`None`: no data there), in axis units.
type Points = Vec<(f64, Option<f64>)>;

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

/// Assigns each mark a lane: the first lane free by its start (in order of start), at most
/// [`MAX_LANES`] (then the lane that frees first). A mark takes its bar or its label, whichever
/// is wider (`extent`, in axis units), so labels in a lane never overlap. Returns the lane of
/// each mark and the count.
fn lanes(marks: &[Mark], extent: &[f64]) -> (Vec<usize>, usize) {
    let mut order: Vec<usize> = (0..marks.len()).collect();
    order.sort_by(|&a, &b| marks[a].start.total_cmp(&marks[b].start).then(a.cmp(&b)));
    let mut ends: Vec<f64> = Vec::new();
    let mut lane = vec![0; marks.len()];
    for i in order {
        let m = &marks[i];
        let end = m.end.max(m.start + extent.get(i).copied().unwrap_or(0.0));
        let free = ends.iter().position(|&e| e <= m.start);
        let l = match free {
            Some(l) => l,
            None if ends.len() < MAX_LANES => {
                ends.push(f64::NEG_INFINITY);
                ends.len() - 1
            }
            None => (0..ends.len())
                .min_by(|&a, &b| ends[a].total_cmp(&ends[b]).then(a.cmp(&b)))
                .unwrap_or(0),
        };
        ends[l] = ends[l].max(end);
        lane[i] = l;
    }
    let count = ends.len();
    (lane, count)
}

/// The strip's layout: each mark's label (its name when the name fits inside its bar, else its
/// number, keyed in the legend), whether it is keyed, its lane, and the number of lanes.
struct StripLayout {
    labels: Vec<(String, bool)>,
    lane: Vec<usize>,
    lanes: usize,
}

fn strip_layout(fig: &Figure) -> StripLayout {
    let px_per_unit = strip_px_per_unit(fig).max(1e-9);
    let mut labels = Vec::new();
    let mut extent = Vec::new();
    for m in &fig.marks {
        let bar_px = (m.end - m.start) * px_per_unit;
        let name_px = f64::from(text_width(&m.label, 11.0)) + 8.0;
        let (label, keyed) = if name_px <= bar_px {
            (m.label.clone(), false)
        } else {
            (m.number.to_string(), true)
        };
        extent.push((f64::from(text_width(&label, 11.0)) + 8.0) / px_per_unit);
        labels.push((label, keyed));
    }
    let (lane, lanes) = lanes(&fig.marks, &extent);
    StripLayout {
        labels,
        lane,
        lanes,
    }
}

fn strip_height(fig: &Figure) -> u32 {
    if fig.marks.is_empty() {
        0
    } else {
        strip_layout(fig).lanes as u32 * LANE_H + 10
    }
}

/// Pixels per axis unit of the fault strip (the narrowest column's, so a label said to fit
/// fits in every column).
fn strip_px_per_unit(fig: &Figure) -> f64 {
    let columns = fig.columns.max(1);
    let column_w = f64::from(WIDTH - LEGEND_W) / columns as f64;
    let widest_labels = (0..columns)
        .map(|c| {
            let mine: Vec<&Panel> = fig.panels.iter().skip(c).step_by(columns).collect();
            y_label_area(&mine)
        })
        .max()
        .unwrap_or(68);
    (column_w - f64::from(widest_labels) - 14.0) / (fig.x_max - fig.x_min).max(1e-9)
}

/// The plotting area's horizontal span in pixels given the y label area of a column, so the
/// fault strip lines up with the panels under it.
fn y_label_area(panels: &[&Panel]) -> u32 {
    let widest = panels.iter().map(|p| p.tick_width()).max().unwrap_or(20);
    (widest + 40).max(68) as u32
}

fn draw(fig: &Figure, buf: &mut String) -> Result<(), String> {
    let columns = fig.columns.max(1);
    let rows = fig.panels.len().div_ceil(columns).max(1) as u32;
    let panel_h = if columns > 1 { SMALL_PANEL_H } else { PANEL_H };
    let strip_h = strip_height(fig);
    // Panels share the height; a long legend makes them taller rather than run off the page.
    let legend_h = draw_legend(fig, None)?.max(0) as u32 + 16;
    let height = HEADER_H + strip_h + (panel_h * rows).max(legend_h);
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
        let column_areas = plots.split_evenly((1, columns));
        for (c, column) in column_areas.iter().enumerate() {
            let mine: Vec<&Panel> = fig.panels.iter().skip(c).step_by(columns).collect();
            let label_area = y_label_area(&mine);
            let (strip, rest) = column.split_vertically(strip_h);
            if strip_h > 0 {
                draw_strip(fig, &strip, label_area, &root)?;
            }
            let (grid, _) = rest.split_vertically(panel_h * rows);
            let areas = grid.split_evenly((rows as usize, 1));
            for (panel, area) in mine.iter().zip(areas.iter()) {
                if panel.blank {
                    continue;
                }
                let (lo, hi) = panel.y_range();
                let mut builder = ChartBuilder::on(area);
                builder
                    .margin_top(30)
                    .margin_right(14)
                    .margin_bottom(6)
                    .x_label_area_size(38)
                    .y_label_area_size(label_area);
                match panel.scale {
                    Scale::Linear => {
                        let chart = builder
                            .build_cartesian_2d(fig.x_min..fig.x_max, lo..hi)
                            .map_err(err)?;
                        draw_panel(chart, fig, panel, &root, area)?;
                    }
                    Scale::Log => {
                        let chart = builder
                            .build_cartesian_2d(fig.x_min..fig.x_max, (lo..hi).log_scale())
                            .map_err(err)?;
                        draw_panel(chart, fig, panel, &root, area)?;
                    }
                }
            }
        }
        draw_legend(fig, Some(&legend))?;
        root.present().map_err(err)?;
    }
    Ok(())
}

/// The fault strip: a lane per overlapping group, a bar per fault, its name inside or beside
/// it, or a number keyed in the legend.
fn draw_strip<'a>(
    fig: &Figure,
    strip: &Area<'a>,
    label_area: u32,
    root: &Area<'a>,
) -> Result<(), String> {
    let layout = strip_layout(fig);
    let (lane, count, labels) = (&layout.lane, layout.lanes, &layout.labels);
    let chart = ChartBuilder::on(strip)
        .margin_top(6)
        .margin_right(14)
        .margin_bottom(4)
        .y_label_area_size(label_area)
        .build_cartesian_2d(fig.x_min..fig.x_max, 0.0..count as f64)
        .map_err(err)?;
    let base = strip.get_base_pixel();
    root.draw(&Text::new(
        "faults".to_string(),
        (
            base.0 + label_area as i32 - 8,
            base.1 + 6 + (count as i32 * LANE_H as i32) / 2,
        ),
        text_style(11.0, FAULT_TEXT).pos(Pos::new(HPos::Right, VPos::Center)),
    ))
    .map_err(err)?;
    for ((m, &l), (label, _)) in fig.marks.iter().zip(lane).zip(labels) {
        let top = count as f64 - l as f64;
        let (a, b) = (
            chart.plotting_area().map_coordinate(&(m.start, top - 0.12)),
            chart.plotting_area().map_coordinate(&(m.end, top - 0.88)),
        );
        // At least 2 px wide, so a short fault stays visible.
        let b = (b.0.max(a.0 + 2), b.1);
        root.draw(&Rectangle::new([a, b], FAULT.mix(0.28).filled()))
            .map_err(err)?;
        root.draw(&Rectangle::new([a, b], FAULT.mix(0.8).stroke_width(1)))
            .map_err(err)?;
        root.draw(&Text::new(
            label.clone(),
            (a.0 + 3, (a.1 + b.1) / 2),
            text_style(11.0, FAULT_TEXT).pos(Pos::new(HPos::Left, VPos::Center)),
        ))
        .map_err(err)?;
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
    let axis = fig.axis;
    let x_tick = move |v: &f64| axis.label(*v);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.08))
        .axis_style(BLACK.mix(0.6))
        .x_labels(if fig.columns > 1 { 6 } else { 12 })
        .y_labels(if fig.columns > 1 { 4 } else { 6 })
        .x_label_formatter(&x_tick)
        .y_label_formatter(&y_tick)
        .label_style(text_style(13.0, GREY_TEXT))
        .axis_desc_style(text_style(13.0, BLACK))
        .x_desc(fig.axis.title())
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
            let points: Vec<(f64, f64)> = line
                .points
                .iter()
                .map(|&(x, y)| (x, y.unwrap_or(0.0)))
                .collect();
            let area = chart.plotting_area();
            let points = without_collinear(points, |p| area.map_coordinate(p));
            chart
                .draw_series(
                    AreaSeries::new(points, 0.0, lighten(line.colour, 0.45).filled())
                        .border_style(line.colour.stroke_width(1)),
                )
                .map_err(err)?;
        }
    } else {
        for line in &panel.lines {
            let style = line.colour.stroke_width(line.width);
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
                            line.colour.filled(),
                        )))
                        .map_err(err)?;
                } else if !line.dashed {
                    // (A dashed line keeps its points: its dashes restart at each one.)
                    let area = chart.plotting_area();
                    let segment = without_collinear(segment, |p| area.map_coordinate(p));
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
                vec![(fig.x_min, *value), (fig.x_max, *value)],
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

    // Band edges over the data (each fault's own, when there are few).
    for band in fig.bands.iter().filter(|b| b.edges) {
        for x in [band.start, band.end] {
            if x > fig.x_min && x < fig.x_max {
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

    // The panel title, top left.
    let base = area.get_base_pixel();
    root.draw(&Text::new(
        panel.title.clone(),
        (base.0 + 8, base.1 + 6),
        bold_style(if fig.columns > 1 { 12.5 } else { 14.0 }).pos(Pos::new(HPos::Left, VPos::Top)),
    ))
    .map_err(err)?;
    Ok(())
}

/// `points` without those that lie, in pixels, on the straight segment between the point
/// kept before them and the next one: the polyline (and an area's outline) is drawn exactly as
/// before, with fewer points to format. A flat stretch of a series, an idle pool's zeros, a
/// steady rate, is one segment instead of a point per bucket: about half the points of a
/// plot of queues and rates, and most of its rendering time (each point costs plotters a
/// `format!` and an escape pass). `to_pixel` is the chart's own mapping, so the kept points
/// land on the same pixels as before.
fn without_collinear<P: Copy>(points: Vec<P>, to_pixel: impl Fn(&P) -> (i32, i32)) -> Vec<P> {
    if points.len() < 3 {
        return points;
    }
    let pixels: Vec<(i64, i64)> = points
        .iter()
        .map(|p| {
            let (x, y) = to_pixel(p);
            (i64::from(x), i64::from(y))
        })
        .collect();
    let mut kept = Vec::with_capacity(points.len());
    kept.push(points[0]);
    let mut last = pixels[0];
    for i in 1..points.len() - 1 {
        if !on_segment(last, pixels[i], pixels[i + 1]) {
            kept.push(points[i]);
            last = pixels[i];
        }
    }
    kept.push(points[points.len() - 1]);
    kept
}

/// Whether `middle` lies on the segment from `from` to `to` (ends included), in exact integer
/// arithmetic.
fn on_segment(from: (i64, i64), middle: (i64, i64), to: (i64, i64)) -> bool {
    let cross = (middle.0 - from.0) * (to.1 - from.1) - (to.0 - from.0) * (middle.1 - from.1);
    cross == 0
        && from.0.min(to.0) <= middle.0
        && middle.0 <= from.0.max(to.0)
        && from.1.min(to.1) <= middle.1
        && middle.1 <= from.1.max(to.1)
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
    let mut y = 44;
    let x = 10;
    let heading = |s: &str, y: i32| {
        Text::new(
            s.to_string(),
            (x, y),
            bold_style(13.0).pos(Pos::new(HPos::Left, VPos::Center)),
        )
    };
    put!(&heading(&fig.legend_title, y));
    y += 22;
    for entry in fig.legend.iter().take(MAX_LEGEND_CLASSES) {
        let c = entry.colour;
        match entry.swatch {
            Swatch::Area => {
                put!(&Rectangle::new(
                    [(x, y - 6), (x + 22, y + 6)],
                    lighten(c, 0.45).filled(),
                ));
                put!(&Rectangle::new(
                    [(x, y - 6), (x + 22, y + 6)],
                    c.stroke_width(1),
                ));
            }
            Swatch::Line => {
                put!(&PathElement::new(
                    vec![(x, y), (x + 22, y)],
                    c.stroke_width(entry.width + 1),
                ));
            }
        }
        // A long label wraps (a tenant name that cannot is cut short).
        for line in wrap(&entry.label, 28).iter().take(2) {
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
    // The key to faults numbered in the strip (their names did not fit beside their bars), as
    // many as the panels' height holds; the numbers are the scenario's fault order.
    let keyed: Vec<&Mark> = strip_layout(fig)
        .labels
        .into_iter()
        .zip(&fig.marks)
        .filter(|((_, keyed), _)| *keyed)
        .map(|(_, m)| m)
        .collect();
    if !keyed.is_empty() {
        y += 6;
        put!(&heading("faults (by number)", y));
        y += 20;
        let columns = fig.columns.max(1);
        let rows = fig.panels.len().div_ceil(columns).max(1) as i32;
        let panel_h = if columns > 1 { SMALL_PANEL_H } else { PANEL_H } as i32;
        let room = (strip_height(fig) as i32 + rows * panel_h - y - 24) / 15;
        let shown = (room.max(4) as usize).min(keyed.len());
        let shown = if shown + 1 == keyed.len() {
            keyed.len()
        } else {
            shown
        };
        for m in keyed.iter().take(shown) {
            put!(&Text::new(
                truncate(&format!("{}  {}", m.number, m.label), 32),
                (x, y),
                text_style(12.0, FAULT_TEXT).pos(Pos::new(HPos::Left, VPos::Center)),
            ));
            y += 15;
        }
        if keyed.len() > shown {
            put!(&Text::new(
                format!("… {} more: summary.md, Faults", keyed.len() - shown),
                (x, y),
                text_style(12.0, GREY_TEXT).pos(Pos::new(HPos::Left, VPos::Center)),
            ));
            y += 15;
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

/// The tenant classes of all runs, matched across runs by label: their legend entries, and for
/// each run the legend index of each of its classes. Tracked tenants take the tenant palette in
/// order, a tier's remainder a grey; a fault's target is drawn thicker than other tenants, a
/// tier's remainder thickest.
fn classes(runs: &[Run<'_>], swatch: Swatch) -> (Vec<LegendEntry>, Vec<Vec<usize>>) {
    let mut entries: Vec<LegendEntry> = Vec::new();
    let mut labels: Vec<String> = Vec::new();
    let (mut tenants, mut tiers) = (0usize, 0usize);
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
                    let (colour, width) = match class.tenant {
                        None => {
                            tiers += 1;
                            (rgb(TIER_PALETTE[(tiers - 1) % TIER_PALETTE.len()]), 3)
                        }
                        Some(_) => {
                            tenants += 1;
                            let colour = rgb(TENANT_PALETTE[(tenants - 1) % TENANT_PALETTE.len()]);
                            (colour, if target { 2 } else { 1 })
                        }
                    };
                    entries.push(LegendEntry {
                        label: label.clone(),
                        colour,
                        width,
                        swatch,
                    });
                    labels.push(label);
                    labels.len() - 1
                }
            };
            of_run.push(i);
        }
        index.push(of_run);
    }
    (entries, index)
}

/// The warmup and fault bands of the panels, and the marks of the fault strip, in axis units.
fn bands_and_marks(runs: &[Run<'_>], axis: TimeAxis) -> (Vec<Band>, Vec<Mark>) {
    let mut bands: Vec<Band> = Vec::new();
    let mut warmups: Vec<f64> = runs.iter().map(|r| r.timeline.warmup_s).collect();
    warmups.dedup();
    for w in &warmups {
        if *w > 0.0 {
            bands.push(Band {
                start: axis.x(0.0),
                end: axis.x(*w),
                fault: false,
                edges: false,
            });
        }
    }
    let mut marks: Vec<Mark> = Vec::new();
    for (r, run) in runs.iter().enumerate() {
        for (number, f) in run.timeline.faults.iter().enumerate() {
            let same_in_all = runs.iter().all(|o| {
                o.timeline
                    .faults
                    .iter()
                    .any(|g| g.name == f.name && g.start_s == f.start_s && g.end_s == f.end_s)
            });
            if same_in_all && r > 0 {
                continue;
            }
            marks.push(Mark {
                label: if same_in_all {
                    f.name.clone()
                } else {
                    format!("{} ({})", f.name, run.name)
                },
                number: number + 1,
                start: axis.x(f.start_s),
                end: axis.x(f.end_s),
            });
        }
    }
    // A few faults are shaded in the panels, each with its edges; many would shade nearly the
    // whole run and say nothing, so then the strip above the panels alone shows them.
    if marks.len() <= FEW_FAULTS {
        bands.extend(marks.iter().map(|m| Band {
            start: m.start,
            end: m.end,
            fault: true,
            edges: true,
        }));
    }
    (bands, marks)
}

fn bucket_text(runs: &[Run<'_>]) -> String {
    let mut widths: Vec<String> = runs
        .iter()
        .map(|r| tick(r.timeline.series.bucket.as_secs_f64()))
        .collect();
    widths.dedup();
    format!("{} s buckets", widths.join(" / "))
}

/// Values of one class of one run per bucket, at bucket midpoints in axis units.
fn points(
    timeline: &Timeline<'_>,
    axis: TimeAxis,
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
            (
                axis.x((start + end) / 2.0),
                value(bucket, (end - start).max(1e-9)),
            )
        })
        .collect()
}

/// The time axis of `runs` (the longest run's length decides the unit).
fn time_axis(runs: &[Run<'_>]) -> TimeAxis {
    let duration = runs
        .iter()
        .map(|r| r.timeline.duration_s)
        .fold(0.0f64, f64::max);
    let clock = runs.first().and_then(|r| r.timeline.clock_start_s);
    TimeAxis::new(duration, clock)
}

fn lines(
    runs: &[Run<'_>],
    entries: &[LegendEntry],
    index: &[Vec<usize>],
    value: impl Fn(&crate::model::series::Bucket, f64) -> Option<f64> + Copy,
) -> Vec<Line> {
    let axis = time_axis(runs);
    let mut out = Vec::new();
    for ((r, run), of_run) in runs.iter().enumerate().zip(index) {
        for (c, &class) in of_run.iter().enumerate() {
            let points = points(run.timeline, axis, c, value);
            if points.iter().any(|p| p.1.is_some()) {
                let entry = &entries[class];
                out.push(Line {
                    colour: entry.colour,
                    width: entry.width,
                    dashed: r > 0,
                    points,
                });
            }
        }
    }
    out
}

/// The distinct SLO lines of `metric`, in order, at most [`MAX_THRESHOLD_LINES`] of them.
fn thresholds(runs: &[Run<'_>], metric: LineMetric, scale: f64) -> Vec<SloLine> {
    let axis = time_axis(runs);
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
                start_s: axis.x(t.start_s),
                end_s: axis.x(t.end_s),
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

fn figure(
    runs: &[Run<'_>],
    title: String,
    detail: &str,
    panels: Vec<Panel>,
    legend: (String, Vec<LegendEntry>),
) -> Figure {
    let axis = time_axis(runs);
    let duration = runs
        .iter()
        .map(|r| r.timeline.duration_s)
        .fold(0.0f64, f64::max)
        .max(1e-3);
    let (bands, marks) = bands_and_marks(runs, axis);
    let shaded = if marks.len() > FEW_FAULTS {
        "shaded: warmup; faults: the strip above"
    } else {
        "shaded: warmup and fault windows"
    };
    let shading = if runs.len() > 1 {
        format!(
            "{detail} · {} · A solid, B dashed · {shaded}",
            bucket_text(runs)
        )
    } else {
        format!("{detail} · {} · {shaded}", bucket_text(runs))
    };
    Figure {
        title,
        subtitle: shading,
        panels,
        columns: 1,
        legend_title: legend.0,
        legend: legend.1,
        runs: runs.iter().map(|r| r.name.to_string()).collect(),
        bands,
        marks,
        axis,
        x_min: axis.x(0.0),
        x_max: axis.x(duration),
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
    let (entries, index) = classes(runs, Swatch::Line);
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
            panel.lines = lines(runs, &entries, &index, move |b, _| {
                b.latency_percentile(p).map(|d| d.as_millis_f64())
            });
            panel.thresholds = thresholds(runs, LineMetric::Latency(p), 1.0);
            panel.auto_scale()
        })
        .collect();
    figure(
        runs,
        title(runs, scenario, seed, "latency over time"),
        "end to end (retries included), per tenant class, by when requests finished",
        panels,
        ("tenant class".to_string(), entries),
    )
}

/// Ok responses per second (log scale), throttled and error shares of finished requests.
fn throughput(runs: &[Run<'_>], scenario: &str, seed: u64) -> Figure {
    let (entries, index) = classes(runs, Swatch::Line);
    let mut ok = Panel::new(
        "Throughput: ok responses per second (log scale)",
        "ok responses/s",
        Scale::Log,
    );
    ok.lines = lines(runs, &entries, &index, |b, secs| Some(b.ok as f64 / secs));
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
    throttled.lines = lines(runs, &entries, &index, share(|b| b.throttled));
    throttled.thresholds = thresholds(runs, LineMetric::ThrottleRate, 100.0);
    throttled.percent = true;
    let mut errors = Panel::new(
        "Errors (503, failed, timed out), % of finished requests",
        "errors (%)",
        Scale::Linear,
    );
    errors.lines = lines(runs, &entries, &index, share(|b| b.errors));
    errors.thresholds = thresholds(runs, LineMetric::ErrorRate, 100.0);
    errors.percent = true;
    figure(
        runs,
        title(runs, scenario, seed, "throughput, throttling and errors"),
        "outcomes by the time requests finished, per tenant class",
        vec![ok, throttled, errors],
        ("tenant class".to_string(), entries),
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

/// Average units held per bucket, per class: stacked areas for one run (`stack`), lines for two.
fn occupancy_panel(
    runs: &[Run<'_>],
    (entries, index): (&[LegendEntry], &[Vec<usize>]),
    what: Held,
    title: &str,
    y_desc: &str,
    stack: bool,
) -> Panel {
    let mut panel = Panel::new(title, y_desc, Scale::Linear);
    let average = move |b: &crate::model::series::Bucket, secs: f64| {
        Some(held(b, what) as f64 / (secs * 1e9))
    };
    let mut lines = lines(runs, entries, index, average);
    if runs.len() == 1 && stack {
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
    let swatch = if runs.len() == 1 {
        Swatch::Area
    } else {
        Swatch::Line
    };
    let (entries, index) = classes(runs, swatch);
    let first = runs.first().map(|r| r.timeline);
    let pools = first.map_or(0, |t| t.pools.len());
    let stations = first.map_or(0, |t| t.stations.len());
    let mut workers = occupancy_panel(
        runs,
        (&entries, &index),
        Held::Workers,
        &format!(
            "Workers held, all {} pool{} together (average busy per bucket)",
            thousands(pools as u64),
            if pools == 1 { "" } else { "s" }
        ),
        "busy workers",
        true,
    );
    if let Some(t) = first {
        workers.capacity = Some((
            t.workers as f64,
            format!("{} workers", thousands(t.workers)),
        ));
    }
    let mut connections = occupancy_panel(
        runs,
        (&entries, &index),
        Held::Connections,
        &format!(
            "Connections held, all {} database{} and dependenc{} together",
            thousands(stations as u64),
            if stations == 1 { "" } else { "s" },
            if stations == 1 { "y" } else { "ies" }
        ),
        "busy connections",
        true,
    );
    if let Some(t) = first {
        connections.capacity = Some((
            t.connections as f64,
            format!("{} connections", thousands(t.connections)),
        ));
    }
    let detail = if runs.len() > 1 {
        "who holds the shared pools, per tenant class (each pool, database and dependency: pools.svg)"
    } else {
        "who holds the shared pools: stacked by tenant class (each pool, database and dependency: pools.svg)"
    };
    figure(
        runs,
        title(runs, scenario, seed, "pool and connection occupancy"),
        detail,
        vec![workers, connections],
        ("tenant class".to_string(), entries),
    )
}

/// Utilisation of one place per bucket (busy units / capacity, in %), in axis units.
fn utilisation(
    timeline: &Timeline<'_>,
    axis: TimeAxis,
    ns: &[u64],
    capacity: u64,
) -> Vec<(f64, Option<f64>)> {
    ns.iter()
        .enumerate()
        .map(|(b, &held)| {
            let (start, end) = timeline.bucket_span(b);
            let secs = (end - start).max(1e-9);
            let busy = held as f64 / (secs * 1e9);
            (
                axis.x((start + end) / 2.0),
                Some(busy * 100.0 / capacity.max(1) as f64),
            )
        })
        .collect()
}

/// How the panels of one kind of place are titled.
#[derive(Clone, Copy)]
struct PlaceKind {
    /// Before the label: `pool `.
    prefix: &'static str,
    /// Of the capacity: `workers`.
    unit: &'static str,
    /// Of the rest: `pools`.
    plural: &'static str,
}

/// Small multiples of the busiest places (by peak utilisation) and one panel summarising the
/// others (their highest and their median utilisation per bucket).
fn place_panels(
    runs: &[Run<'_>],
    places_of: impl for<'t> Fn(&'t Timeline<'_>) -> &'t [Place],
    buckets_of: impl for<'t> Fn(&'t Timeline<'_>, usize) -> &'t [u64],
    (busiest, kind, colour): (usize, PlaceKind, RGBColor),
) -> Vec<Panel> {
    let axis = time_axis(runs);
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    let places = places_of(first.timeline);
    // Per place and run, the utilisation series (each run with its own capacities: a
    // comparison's B may resize a pool); a place's peak over every run ranks it.
    let series: Vec<Vec<Points>> = (0..places.len())
        .map(|p| {
            runs.iter()
                .map(|r| {
                    let capacity = places_of(r.timeline)
                        .get(p)
                        .map_or(places[p].capacity, |x| x.capacity);
                    utilisation(r.timeline, axis, buckets_of(r.timeline, p), capacity)
                })
                .collect()
        })
        .collect();
    let peak = |p: usize| {
        series[p]
            .iter()
            .flat_map(|s| s.iter().filter_map(|x| x.1))
            .fold(0.0f64, f64::max)
    };
    let mut order: Vec<usize> = (0..places.len()).collect();
    order.sort_by(|&a, &b| peak(b).total_cmp(&peak(a)).then(a.cmp(&b)));
    // All of them when one more panel would show them all.
    let shown = if places.len() <= busiest + 1 {
        places.len()
    } else {
        busiest
    };
    let mut panels = Vec::new();
    for &p in order.iter().take(shown) {
        let mut panel = Panel::new(
            &format!(
                "{}{} ({} {}), peak {:.0}%",
                kind.prefix,
                places[p].label,
                thousands(places[p].capacity),
                kind.unit,
                peak(p)
            ),
            "busy (%)",
            Scale::Linear,
        );
        panel.min_top = 100.0;
        panel.lines = series[p]
            .iter()
            .enumerate()
            .map(|(r, points)| Line {
                colour,
                width: 2,
                dashed: r > 0,
                points: points.clone(),
            })
            .collect();
        panels.push(panel);
    }
    let rest: Vec<usize> = order.iter().skip(shown).copied().collect();
    if !rest.is_empty() {
        let mut panel = Panel::new(
            &format!(
                "the other {} {}: highest and median",
                thousands(rest.len() as u64),
                kind.plural
            ),
            "busy (%)",
            Scale::Linear,
        );
        panel.min_top = 100.0;
        let buckets = first.timeline.series.buckets;
        for (r, _) in runs.iter().enumerate() {
            let mut max_points = Vec::new();
            let mut median_points = Vec::new();
            for b in 0..buckets {
                let mut values: Vec<f64> = rest
                    .iter()
                    .filter_map(|&p| series[p][r].get(b).and_then(|x| x.1))
                    .collect();
                values.sort_by(f64::total_cmp);
                let x = series[rest[0]][r].get(b).map_or(0.0, |x| x.0);
                max_points.push((x, values.last().copied()));
                median_points.push((x, values.get(values.len() / 2).copied()));
            }
            panel.lines.push(Line {
                colour: THRESHOLD,
                width: 2,
                dashed: r > 0,
                points: max_points,
            });
            panel.lines.push(Line {
                colour: lighten(colour, 0.35),
                width: 2,
                dashed: r > 0,
                points: median_points,
            });
        }
        panels.push(panel);
    }
    panels
}

/// How busy each pool and each database was: the busiest few on their own, the rest summarised.
fn pools(runs: &[Run<'_>], scenario: &str, seed: u64) -> Figure {
    let mut panels = place_panels(
        runs,
        |t| t.pools,
        |t, p| t.series.pool_buckets(p),
        (
            BUSIEST_POOLS,
            PlaceKind {
                prefix: "pool ",
                unit: "workers",
                plural: "pools",
            },
            POOL,
        ),
    );
    // Databases and dependencies start on a row of their own.
    if panels.len() % 2 == 1 {
        let mut blank = Panel::new("", "busy (%)", Scale::Linear);
        blank.blank = true;
        panels.push(blank);
    }
    panels.extend(place_panels(
        runs,
        |t| t.stations,
        |t, d| t.series.station_buckets(d),
        (
            BUSIEST_DATABASES,
            PlaceKind {
                prefix: "",
                unit: "connections",
                plural: "databases and dependencies",
            },
            DATABASE,
        ),
    ));
    let entry = |label: &str, colour: RGBColor| LegendEntry {
        label: label.to_string(),
        colour,
        width: 2,
        swatch: Swatch::Line,
    };
    let mut legend = vec![
        entry("pool: busy workers / workers", POOL),
        entry(
            "database or dependency: busy connections / connections",
            DATABASE,
        ),
    ];
    if panels.iter().any(|p| p.title.starts_with("the other")) {
        legend.push(entry("the others: the highest", THRESHOLD));
        legend.push(entry(
            "the others: the median (lighter)",
            lighten(POOL, 0.35),
        ));
    }
    let (pools_left, stations_left) = runs
        .iter()
        .map(|r| r.timeline.series.unrecorded)
        .fold((0, 0), |a, b| (a.0.max(b.0), a.1.max(b.1)));
    let mut detail =
        "average busy share per bucket; the busiest by peak, the rest summarised".to_string();
    if pools_left + stations_left > 0 {
        detail.push_str(&format!(
            " ({} pools and {} connection pools beyond the first {} not recorded)",
            thousands(pools_left),
            thousands(stations_left),
            thousands(crate::model::series::MAX_PLACES as u64)
        ));
    }
    let mut fig = figure(
        runs,
        title(runs, scenario, seed, "each pool, database and dependency"),
        &detail,
        panels,
        ("utilisation".to_string(), legend),
    );
    fig.columns = 2;
    fig
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

/// Queued jobs per class as lines (a small tenant's backlog beside a large one's calls for a
/// log scale, which stacked areas cannot have).
fn backlog(runs: &[Run<'_>], scenario: &str, seed: u64) -> Figure {
    let (entries, index) = classes(runs, Swatch::Line);
    let panel = occupancy_panel(
        runs,
        (&entries, &index),
        Held::Backlog,
        "Background jobs waiting (average queued jobs per bucket)",
        "queued jobs",
        false,
    )
    .auto_scale();
    figure(
        runs,
        title(runs, scenario, seed, "job backlog"),
        "job backlog per tenant class",
        vec![panel],
        ("tenant class".to_string(), entries),
    )
}

/// The plots of one run or an overlay of two (A solid, B dashed): `(file name, SVG)` pairs,
/// `latency.svg`, `throughput.svg`, `occupancy.svg`, `pools.svg`, and `backlog.svg` when jobs
/// queued. `scenario` and `seed` title them.
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
        (
            "pools.svg".to_string(),
            render(&pools(runs, scenario, seed)),
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
pub const FILE_NAMES: [&str; 5] = [
    "latency.svg",
    "throughput.svg",
    "occupancy.svg",
    "pools.svg",
    "backlog.svg",
];

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_flat_stretch_is_one_segment() {
        let points = vec![
            (0, 5),
            (1, 5),
            (2, 5),
            (3, 5),
            (4, 7),
            (5, 9),
            (6, 11),
            (7, 2),
        ];
        let kept = without_collinear(points, |&p| p);
        assert_eq!(kept, vec![(0, 5), (3, 5), (6, 11), (7, 2)]);
    }

    #[test]
    fn a_turn_back_is_kept() {
        // (2, 0) lies on the line from (0, 0) to (1, 0) but beyond it: dropping (2, 0) would
        // cut the spike off.
        let points = vec![(0, 0), (2, 0), (1, 0)];
        assert_eq!(without_collinear(points.clone(), |&p| p), points);
    }

    proptest! {
        /// The thinned polyline covers exactly the pixels of the original: the ends are kept,
        /// the kept points are in order, and the points dropped between two kept ones lie on
        /// the segment joining them, each no nearer its start than the one before (so the
        /// original ran straight along it, never back).
        #[test]
        fn thinning_draws_the_same_polyline(
            points in proptest::collection::vec((0i32..4, 0i32..4), 0..40),
        ) {
            let kept = without_collinear(points.clone(), |&p| p);
            if points.len() < 3 {
                prop_assert_eq!(&kept, &points);
                return Ok(());
            }
            prop_assert_eq!(kept.first(), points.first());
            prop_assert_eq!(kept.last(), points.last());
            let wide = |(x, y): (i32, i32)| (i64::from(x), i64::from(y));
            let mut next_kept = 1;
            let mut from = 0;
            let mut dropped: Vec<(i32, i32)> = Vec::new();
            for (i, &p) in points.iter().enumerate().skip(1) {
                let keeps = next_kept < kept.len() - 1 && kept[next_kept] == p
                    || i == points.len() - 1;
                if !keeps {
                    dropped.push(p);
                    continue;
                }
                let (a, c) = (wide(points[from]), wide(p));
                let mut reach = 0i64;
                for &d in &dropped {
                    let d = wide(d);
                    prop_assert!(on_segment(a, d, c), "{:?} off {:?}-{:?}", d, a, c);
                    let along = (d.0 - a.0) * (c.0 - a.0) + (d.1 - a.1) * (c.1 - a.1);
                    prop_assert!(along >= reach, "the original turned back at {:?}", d);
                    reach = along;
                }
                dropped.clear();
                from = i;
                if i < points.len() - 1 {
                    next_kept += 1;
                }
            }
            prop_assert_eq!(next_kept, kept.len() - 1);
        }
    }

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

    #[test]
    fn the_time_axis_follows_the_run_length_and_the_clock() {
        let short = TimeAxis::new(120.0, None);
        assert_eq!((short.unit_s, short.title()), (1.0, "simulated time (s)"));
        assert_eq!(short.label(90.0), "90");
        let long = TimeAxis::new(3_600.0, None);
        assert_eq!((long.unit_s, long.title()), (60.0, "simulated time (min)"));
        assert_eq!(long.x(1_800.0), 30.0);
        let day = TimeAxis::new(86_400.0, None);
        assert_eq!((day.unit_s, day.title()), (3_600.0, "simulated time (h)"));
        assert_eq!(day.label(day.x(5_400.0)), "1.5");
        // With a start time: clock time, wrapping past midnight.
        let clock = TimeAxis::new(7_200.0, Some(9.5 * 3_600.0));
        assert_eq!(clock.title(), "clock time");
        assert_eq!(clock.label(clock.x(0.0)), "09:30");
        assert_eq!(clock.label(clock.x(5_400.0)), "11:00");
        let night = TimeAxis::new(86_400.0, Some(23.0 * 3_600.0));
        assert_eq!(night.label(night.x(7_200.0)), "01:00");
    }

    #[test]
    fn overlapping_faults_take_lanes_and_fifty_stay_bounded() {
        let mark = |start: f64, end: f64| Mark {
            label: "f".into(),
            number: 1,
            start,
            end,
        };
        let three = [mark(0.0, 10.0), mark(5.0, 15.0), mark(10.0, 20.0)];
        let (lane, count) = lanes(&three, &[]);
        assert_eq!((lane, count), (vec![0, 1, 0], 2));
        // A label wider than its bar reserves its width: the third fault no longer fits
        // after the first in lane 0.
        let (lane, count) = lanes(&three, &[12.0, 0.0, 0.0]);
        assert_eq!((lane, count), (vec![0, 1, 2], 3));
        let many: Vec<Mark> = (0..50)
            .map(|i| mark(f64::from(i), f64::from(i) + 30.0))
            .collect();
        let (lane, count) = lanes(&many, &[]);
        assert_eq!(count, MAX_LANES);
        assert!(lane.iter().all(|&l| l < MAX_LANES));
    }

    #[test]
    fn a_span_of_orders_of_magnitude_gets_a_log_scale() {
        let line = |values: &[f64]| Line {
            colour: BLACK,
            width: 1,
            dashed: false,
            points: values
                .iter()
                .enumerate()
                .map(|(i, v)| (i as f64, Some(*v)))
                .collect(),
        };
        let mut narrow = Panel::new("p", "y", Scale::Linear);
        narrow.lines = vec![line(&[1.0, 50.0])];
        assert_eq!(narrow.auto_scale().scale, Scale::Linear);
        let mut wide = Panel::new("p", "y", Scale::Linear);
        wide.lines = vec![line(&[0.0, 0.5]), line(&[400.0])];
        let wide = wide.auto_scale();
        assert_eq!(wide.scale, Scale::Log);
        assert!(wide.title.ends_with("(log scale)"));
    }
}
